"""Pair the image files of a dataset with their mask files.

Three ways, from the simplest:

- by file stem: ``root/images/cell_07.png`` with ``root/masks/cell_07.png`` (or ``cell_07.tif``), or with
  ``cell_07_mask.png`` given ``mask_suffix="_mask"`` (other folder names with ``images=`` and ``masks=``);
- by name pattern, for datasets that name masks otherwise: DRIVE pairs ``images/21_training.tif`` with
  ``1st_manual/21_manual1.gif``, which ``image_pattern="{id}_training", mask_pattern="{id}_manual1"``
  describes (``{id}`` is the part an image and its mask share);
- by a list of pairs, ``pairs_file="pairs.csv"``, for any other layout.

:func:`find_pairs` gives the pairs in natural order (``2`` before ``10``) and raises a one-line error that
names the files without a partner and says what to do.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator
from pathlib import Path

from unet_helpers.errors import UnetTutorialError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif")
# Where a pattern puts the part of a file stem that an image and its mask share.
ID = "{id}"
# The folder arguments of find_pairs, which a pairs file replaces: passing others with it is a mistake.
FOLDER_DEFAULTS = {
    "images": "images",
    "masks": "masks",
    "mask_suffix": "",
    "image_pattern": ID,
    "mask_pattern": ID,
}
# The optional first line of a pairs file.
PAIRS_HEADER = ["image", "mask"]


def natural_key(name: str) -> list[int | str]:
    """Sort key that puts ``2`` before ``10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _in_natural_order(paths: list[Path]) -> list[Path]:
    """``paths`` sorted by file stem in natural order."""
    return sorted(paths, key=lambda path: natural_key(path.stem))


def _list_files(folder: Path) -> dict[str, Path]:
    """Image files in ``folder`` by stem; hidden files (``.DS_Store``, ``._x.png``) are skipped."""
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if path.stem in files:
            raise UnetTutorialError(
                f"'{files[path.stem]}' and '{path}' have the same name: keep one of them, "
                "images and masks are paired by file name."
            )
        files[path.stem] = path
    return files


def list_images(folder: Path) -> list[Path]:
    """The image files of ``folder`` in natural name order (``2`` before ``10``), hidden files skipped."""
    return _in_natural_order(list(_list_files(folder).values()))


def _names(paths: list[Path], limit: int = 3) -> str:
    shown = ", ".join(path.name for path in paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def find_pairs(
    root: str | Path,
    *,
    images: str = "images",
    masks: str = "masks",
    mask_suffix: str = "",
    image_pattern: str = "{id}",
    mask_pattern: str = "{id}",
    pairs_file: str | Path | None = None,
) -> list[tuple[Path, Path]]:
    """Pair every image file of a dataset with its mask file.

    Files whose names start with a dot are skipped (macOS and editor leftovers).

    Args:
        root: the dataset folder.
        images, masks: the subfolders of ``root`` that hold the images and the masks.
        mask_suffix: what a mask's file stem adds to its image's (``"_mask"`` for ``cell_07_mask.png``);
            short for ``mask_pattern="{id}_mask"``, so pass one of the two.
        image_pattern, mask_pattern: the file stems (names without extension) of the images and of the
            masks, with ``{id}`` where the part an image and its mask share goes: DRIVE's
            ``21_training.tif`` and ``21_manual1.gif`` are ``image_pattern="{id}_training"``,
            ``mask_pattern="{id}_manual1"``. Every file of both folders must follow its pattern. The
            default, ``"{id}"``, pairs files of the same stem (``cell_07.png`` with ``cell_07.tif``).
        pairs_file: a file that lists the pairs, for layouts no pattern describes; the folders and
            patterns are then not used. Its path is relative to ``root``, or absolute. One pair per line:
            an image path and a mask path, both relative to ``root`` and inside it. A line with a comma
            is read as CSV (paths may hold spaces; a path that holds a comma goes in double quotes), any
            other line is split at spaces or tabs. An optional first line ``image,mask`` is a header;
            blank lines and lines starting with ``#`` are skipped. An image may appear once, a mask may
            serve several images.

    Returns:
        ``(image_path, mask_path)`` pairs, sorted in natural order (``2`` before ``10``) of the image
        names (with ``pairs_file``, of the image paths relative to ``root``).

    Raises:
        UnetTutorialError: a folder or the pairs file is missing, a folder holds no images, a file has no
            partner or does not follow its pattern, a pattern has no ``{id}``, or a line of the pairs file
            is wrong (the message names the file and the line).
    """
    root = Path(root).expanduser()
    if pairs_file is not None:
        _refuse_folder_arguments(
            pairs_file,
            images=images,
            masks=masks,
            mask_suffix=mask_suffix,
            image_pattern=image_pattern,
            mask_pattern=mask_pattern,
        )
        _check_root(root, f"the files that {pairs_file} lists")
        return _pairs_from_file(root, pairs_file)
    image_stem = _stem_regex(image_pattern, f"image_pattern={image_pattern!r}")
    if mask_suffix and mask_pattern != ID:
        raise UnetTutorialError(
            f"mask_suffix={mask_suffix!r} and mask_pattern={mask_pattern!r} both name the masks: pass one, "
            f"mask_suffix={mask_suffix!r} means mask_pattern='{ID}{mask_suffix}'."
        )
    mask_setting = f"mask_suffix={mask_suffix!r}" if mask_suffix else f"mask_pattern={mask_pattern!r}"
    mask_pattern = ID + mask_suffix if mask_suffix else mask_pattern
    mask_stem = _stem_regex(mask_pattern, mask_setting)
    _check_root(root, f"{images}/ and {masks}/")
    image_folder, mask_folder = _folder(root, "images", images), _folder(root, "masks", masks)
    image_files = _list_files(image_folder)
    if not image_files:
        raise UnetTutorialError(
            f"no images in '{image_folder}': expected files ending in {', '.join(IMAGE_SUFFIXES)}."
        )
    images_by_id = _by_id(image_files, image_stem, "image", f"image_pattern={image_pattern!r}", image_folder)
    masks_by_id = _by_id(_list_files(mask_folder), mask_stem, "mask", mask_setting, mask_folder)
    _check_every_image_has_a_mask(images_by_id, masks_by_id, mask_pattern, image_folder, mask_folder)
    unpaired_masks = _in_natural_order([path for id_, path in masks_by_id.items() if id_ not in images_by_id])
    if unpaired_masks:
        raise UnetTutorialError(
            f"{len(unpaired_masks)} mask(s) in '{mask_folder}' have no image in "
            f"'{image_folder}': {_names(unpaired_masks)}; add the images or move these masks out."
        )
    ids = sorted(images_by_id, key=lambda id_: natural_key(images_by_id[id_].stem))
    return [(images_by_id[id_], masks_by_id[id_]) for id_ in ids]


def _check_root(root: Path, holds: str) -> None:
    """Refuse a dataset folder that does not exist."""
    if not root.is_dir():
        raise UnetTutorialError(
            f"dataset folder '{root}' does not exist: pass the folder that holds {holds}."
        )


def _folder(root: Path, role: str, name: str) -> Path:
    """``root/name``, or an error that lists the subfolders there are."""
    folder = root / name
    if not folder.is_dir():
        found = sorted(path.name for path in root.iterdir() if path.is_dir()) or ["none"]
        raise UnetTutorialError(
            f"'{folder}' does not exist (subfolders of '{root}': {', '.join(found)}); "
            f"pass {role}='...' with the folder that holds the {role}."
        )
    return folder


# --- name patterns ------------------------------------------------------------------------------------


def _stem_regex(pattern: str, setting: str) -> re.Pattern[str]:
    """The regular expression of a file-stem pattern: its text as it is, ``{id}`` any non-empty part.

    ``setting`` is the argument as the user wrote it (``"mask_pattern='{id}_manual1'"``), for errors.
    """
    if pattern.count(ID) != 1:
        raise UnetTutorialError(
            f"{setting} must hold '{ID}' once, where the part an image and its mask share goes: "
            f"DRIVE's 21_training.tif and 21_manual1.gif are image_pattern='{ID}_training', "
            f"mask_pattern='{ID}_manual1'."
        )
    if "/" in pattern or "\\" in pattern:
        raise UnetTutorialError(
            f"{setting} holds a folder: patterns are file names; pass the folders as images= and masks=."
        )
    extension = os.path.splitext(pattern)[1]
    if extension.lower() in IMAGE_SUFFIXES:
        raise UnetTutorialError(
            f"{setting} ends in '{extension}': patterns are file names without extension "
            f"(any of {', '.join(IMAGE_SUFFIXES)} is found); drop '{extension}'."
        )
    before, after = pattern.split(ID)
    return re.compile(f"{re.escape(before)}(?P<id>.+){re.escape(after)}")


def _by_id(
    files: dict[str, Path], stem: re.Pattern[str], role: str, setting: str, folder: Path
) -> dict[str, Path]:
    """The files of one folder by the ``{id}`` of their stem; an error names those whose stem does not fit."""
    by_id, strays = {}, []
    for name, path in files.items():
        match = stem.fullmatch(name)
        if match:
            by_id[match["id"]] = path
        else:
            strays.append(path)
    if strays:
        argument = setting.split("=")[0]
        raise UnetTutorialError(
            f"{len(strays)} {role}(s) in '{folder}' do not match {setting}: "
            f"{_names(_in_natural_order(strays))}; move them out, or pass the {argument} that every "
            f"{role} name follows."
        )
    return by_id


def _check_every_image_has_a_mask(
    images_by_id: dict[str, Path],
    masks_by_id: dict[str, Path],
    mask_pattern: str,
    image_folder: Path,
    mask_folder: Path,
) -> None:
    """Raise an error that names the images without a mask, with a hint if masks seem named otherwise."""
    unpaired = sorted(
        (id_ for id_ in images_by_id if id_ not in masks_by_id),
        key=lambda id_: natural_key(images_by_id[id_].stem),
    )
    if not unpaired:
        return
    paths = [images_by_id[id_] for id_ in unpaired]
    wanted = mask_pattern.replace(ID, unpaired[0])
    hint = ""
    if mask_pattern == ID:  # neither mask_suffix nor mask_pattern given: maybe one is needed
        hint = _naming_hint(
            paths[0], wanted, _in_natural_order(list(masks_by_id.values())), len(paths) == len(images_by_id)
        )
    raise UnetTutorialError(
        f"{len(paths)} image(s) in '{image_folder}' have no mask in '{mask_folder}': {_names(paths)}; "
        f"add their masks (named '{wanted}.*' for '{paths[0].name}') or move these images out{hint}."
    )


def _naming_hint(image: Path, wanted: str, masks: list[Path], none_paired: bool) -> str:
    """The end of the unpaired-image error when masks seem to follow another name: which argument fits.

    A mask named after the image plus a suffix (``cell_07_mask.png``) asks for ``mask_suffix``; when no
    image has a mask, the first image and the first mask may share a word or number (DRIVE's
    ``21_training`` and ``21_manual1``) that patterns describe.
    """
    lookalikes = [mask.stem for mask in masks if mask.stem.startswith(wanted + "_")]
    if lookalikes:
        return (
            f"; if masks are named like '{lookalikes[0]}', pass mask_suffix={lookalikes[0][len(wanted) :]!r}"
        )
    patterns = _guess_patterns(image.stem, masks[0].stem) if none_paired and masks else None
    if patterns is None:
        return ""
    return (
        f"; if '{image.name}' goes with '{masks[0].name}', "
        f"pass image_pattern={patterns[0]!r}, mask_pattern={patterns[1]!r}"
    )


def _guess_patterns(image_stem: str, mask_stem: str) -> tuple[str, str] | None:
    """Patterns for two stems that start (or else end) with the same word or number, or None."""
    shared = _shared_start(image_stem, mask_stem)
    if shared:
        return ID + image_stem[shared:], ID + mask_stem[shared:]
    shared = _shared_start(image_stem[::-1], mask_stem[::-1])
    if shared:
        return image_stem[:-shared] + ID, mask_stem[:-shared] + ID
    return None


def _shared_start(first: str, second: str) -> int:
    """The length of the longest start of both strings that ends at the end of a word or number in both."""

    def ends_a_word(text: str, length: int) -> bool:
        return text[length - 1].isalnum() and (length == len(text) or not text[length].isalnum())

    length = next(
        (index for index, (a, b) in enumerate(zip(first, second, strict=False)) if a != b),
        min(len(first), len(second)),
    )
    while length and not (ends_a_word(first, length) and ends_a_word(second, length)):
        length -= 1
    return length


# --- a file of pairs ----------------------------------------------------------------------------------


def _refuse_folder_arguments(pairs_file: str | Path, **given: str) -> None:
    """Refuse folder and pattern arguments next to a pairs file, which would be silently ignored."""
    changed = [f"{name}={value!r}" for name, value in given.items() if value != FOLDER_DEFAULTS[name]]
    if changed:
        raise UnetTutorialError(
            f"pairs_file={str(pairs_file)!r} lists the pairs itself, so {', '.join(changed)} would not be "
            "used: pass either pairs_file or the folder and pattern arguments."
        )


def _pairs_from_file(root: Path, pairs_file: str | Path) -> list[tuple[Path, Path]]:
    """The pairs that ``pairs_file`` lists (see :func:`find_pairs`), in natural order of the image paths."""
    path = root / Path(pairs_file).expanduser()  # an absolute pairs_file stays as it is
    if not path.is_file():
        raise UnetTutorialError(
            f"pairs file '{path}' does not exist: pass pairs_file= a CSV or text file of image,mask paths, "
            f"relative to '{root}' or absolute."
        )
    base = Path(os.path.normpath(root))
    pairs: dict[Path, Path] = {}
    line_of: dict[Path, int] = {}
    for index, (number, image_text, mask_text) in enumerate(_pair_lines(path)):
        header_hint = f"; if line {number} is a header, name its columns image,mask" if index == 0 else ""
        image = _listed_file(base, image_text, f"'{path}' line {number}", header_hint)
        mask = _listed_file(base, mask_text, f"'{path}' line {number}", header_hint)
        if image in pairs:
            raise UnetTutorialError(
                f"'{path}' line {number}: image '{image_text}' is already paired on line {line_of[image]}: "
                "keep one of the two lines (an image has one mask)."
            )
        pairs[image], line_of[image] = mask, number
    if not pairs:
        raise UnetTutorialError(
            f"pairs file '{path}' lists no pairs: write one pair per line, 'images/a.png,masks/a.png', "
            f"paths relative to '{root}'."
        )
    return sorted(pairs.items(), key=lambda pair: natural_key(pair[0].relative_to(base).as_posix()))


def _pair_lines(path: Path) -> Iterator[tuple[int, str, str]]:
    """``(line number, image path, mask path)`` of each pair line of a pairs file, as written there."""
    header_allowed = True
    # utf-8-sig: a CSV saved by Excel starts with a byte-order mark.
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        # A comma makes it a CSV line (csv reads quoted paths); otherwise spaces or tabs separate.
        fields = (
            [field.strip() for field in next(csv.reader([text], skipinitialspace=True))]
            if "," in text
            else text.split()
        )
        if header_allowed and [field.lower() for field in fields] == PAIRS_HEADER:
            header_allowed = False
            continue
        header_allowed = False
        if len(fields) != 2 or not all(fields):
            raise UnetTutorialError(
                f"'{path}' line {number}: expected an image path and a mask path, found "
                f"{sum(map(bool, fields))} column(s) in {text[:80]!r}: write 'images/a.png,masks/a.png' "
                "(with a comma, paths may hold spaces) or 'images/a.png masks/a.png'."
            )
        yield number, fields[0], fields[1]


def _listed_file(base: Path, text: str, where: str, hint: str) -> Path:
    """The file a pairs-file line names, relative to ``base``; an error if it is outside or missing.

    The path is normalised (``a/../b`` is ``b``) but symbolic links are kept: a file linked in from
    elsewhere is in the dataset.
    """
    path = Path(os.path.normpath(base / Path(text).expanduser()))
    if not path.is_relative_to(base):
        raise UnetTutorialError(
            f"{where}: '{text}' is outside the dataset folder '{base}': move the file into it, "
            "or pass the folder that holds every listed file as the dataset folder."
        )
    if not path.is_file():
        raise UnetTutorialError(
            f"{where}: no file '{path}': fix the path (relative to '{base}') or remove the line{hint}."
        )
    return path
