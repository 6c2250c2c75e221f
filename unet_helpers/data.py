"""Load a folder of images and masks as a ``tf.data.Dataset`` of ``(image, mask)`` batches.

Layout: ``root/images/`` and ``root/masks/`` (other names with ``images=`` and ``masks=``), paired by file
stem (``cell_07.png`` with ``cell_07.png`` or ``cell_07.tif``; with ``mask_suffix="_mask"``, with
``cell_07_mask.png``). Images: PNG, JPEG, TIFF, BMP or GIF; 1, 2, 3 or 4 channels; 8 or 16 bits. Masks: 0/1,
0/255, class indices, a palette PNG (its indices are the values), or colours mapped with ``mask_values``.

Loading happens in two steps:

1. :func:`scan_dataset` reads every file once, in Python, before anything trains. It raises a one-line
   :class:`~unet_helpers.errors.UnetTutorialError` that names the file for every mistake a user makes: a
   wrong path, an empty folder, an image without a mask (or the reverse), an unreadable or truncated file, a
   mask of another size than its image, mask values outside the declared classes. It also collects the
   values the masks hold, so that one lookup table maps stored values to classes.
2. :func:`load_dataset` builds the pipeline: decode in parallel inside the TensorFlow graph (PIL only for
   the few files TensorFlow cannot decode: TIFF images, palette or 16-bit masks), resize (masks with nearest
   neighbour, so no new label values appear), cache in memory where it fits, shuffle, augment, batch,
   prefetch.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf
from PIL import Image
from tqdm.auto import tqdm

from unet_helpers.errors import UnetTutorialError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif")
# Formats tf.io.decode_image reads (it looks at the bytes, not the file name; MPO is a multi-picture JPEG).
TF_FORMATS = {"PNG", "JPEG", "MPO", "BMP", "GIF"}
# Mask modes that tf.io.decode_image returns unchanged as 8-bit values. Palette ("P") masks are not among
# them: TensorFlow expands a palette to its colours, PIL keeps the indices, which are the labels.
TF_MASK_MODES = {"L", "RGB", "RGBA"}
# With num_classes=2 and no mask_values, these stored values are understood (0/1 and 0/255 masks).
BINARY_VALUES = {0: 0, 1: 1, 255: 1}
# Colours are stored as one integer, R * 65536 + G * 256 + B, so that one lookup table maps every mask.
COLOR_SCALE = (65536, 256, 1)
# "auto" caches in memory when the cache takes less than this share of the machine's memory.
CACHE_MEMORY_SHARE = 0.25


@dataclass(frozen=True)
class Pair:
    """One image and its mask, and what :func:`scan_dataset` learnt about them.

    Attributes:
        image: path of the image file.
        mask: path of the mask file.
        image_via_python: the image is read with PIL (TensorFlow cannot decode it).
        mask_via_python: the mask is read with PIL (palette, 16-bit or 1-bit masks, TIFF).
    """

    image: Path
    mask: Path
    image_via_python: bool
    mask_via_python: bool


@dataclass(frozen=True)
class DatasetScan:
    """Everything :func:`scan_dataset` found: the pairs and how masks map to classes.

    Attributes:
        root: the dataset folder.
        pairs: the image/mask pairs, sorted by file stem in natural order (``2`` before ``10``).
        stored_values: every value the masks hold (colours as ``R * 65536 + G * 256 + B``), sorted.
        class_of_value: the class index of each stored value, in the order of ``stored_values``.
        color_masks: whether the masks are colour-coded (RGB with differing channels).
    """

    root: Path
    pairs: tuple[Pair, ...]
    stored_values: tuple[int, ...]
    class_of_value: tuple[int, ...]
    color_masks: bool


def _natural_key(name: str) -> list[int | str]:
    """Sort key that puts ``2`` before ``10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


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


def _names(paths: list[Path], limit: int = 3) -> str:
    shown = ", ".join(path.name for path in paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def find_pairs(
    root: str | Path, *, images: str = "images", masks: str = "masks", mask_suffix: str = ""
) -> list[tuple[Path, Path]]:
    """Pair the files in ``root/images`` with those in ``root/masks`` by file stem.

    A mask's stem is its image's stem plus ``mask_suffix`` (``"cell_07"`` + ``"_mask"``). Files whose
    names start with a dot are skipped (macOS and editor leftovers).

    Returns:
        ``(image_path, mask_path)`` pairs, sorted in natural order of the image names.

    Raises:
        UnetTutorialError: a folder is missing or empty, or a file has no partner.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UnetTutorialError(
            f"dataset folder '{root}' does not exist: pass the folder that holds {images}/ and {masks}/."
        )
    folders = {}
    for role, name in (("images", images), ("masks", masks)):
        folder = root / name
        if not folder.is_dir():
            found = sorted(path.name for path in root.iterdir() if path.is_dir()) or ["none"]
            raise UnetTutorialError(
                f"'{folder}' does not exist (subfolders of '{root}': {', '.join(found)}); "
                f"pass {role}='...' with the folder that holds the {role}."
            )
        folders[role] = folder
    image_files = _list_files(folders["images"])
    if not image_files:
        raise UnetTutorialError(
            f"no images in '{folders['images']}': expected files ending in {', '.join(IMAGE_SUFFIXES)}."
        )
    mask_files = {
        stem.removesuffix(mask_suffix): path
        for stem, path in _list_files(folders["masks"]).items()
        if stem.endswith(mask_suffix)
    }
    unpaired_images = sorted(
        (path for stem, path in image_files.items() if stem not in mask_files),
        key=lambda path: _natural_key(path.stem),
    )
    if unpaired_images:
        first = unpaired_images[0].stem
        # A common layout names masks after their image plus a suffix (cell_07_mask.png): say so.
        lookalikes = [path.stem for path in folders["masks"].iterdir() if path.stem.startswith(first + "_")]
        hint = f"; if masks are named like '{lookalikes[0]}', pass mask_suffix=..." if lookalikes else ""
        raise UnetTutorialError(
            f"{len(unpaired_images)} image(s) in '{folders['images']}' have no mask in "
            f"'{folders['masks']}': {_names(unpaired_images)}; add the masks (same file name) "
            f"or move these images out{hint}."
        )
    unpaired_masks = sorted(
        (path for stem, path in mask_files.items() if stem not in image_files),
        key=lambda path: _natural_key(path.stem),
    )
    if unpaired_masks:
        raise UnetTutorialError(
            f"{len(unpaired_masks)} mask(s) in '{folders['masks']}' have no image in "
            f"'{folders['images']}': {_names(unpaired_masks)}; add the images or move these masks out."
        )
    return [(image_files[stem], mask_files[stem]) for stem in sorted(image_files, key=_natural_key)]


def _open(path: Path) -> Image.Image:
    """Open and fully decode an image file, so that a truncated file fails here and not mid-epoch."""
    try:
        with Image.open(path) as image:
            image.load()
            return image
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise UnetTutorialError(
            f"cannot read '{path}' ({error}): the file is damaged, truncated or not an image; "
            "export it again or move it out of the folder."
        ) from None


def _to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """(H, W) or (H, W, C) with C in 1..4 to (H, W, channels), as :func:`_decode_image` does in the graph."""
    if image.ndim == 2:
        image = image[..., np.newaxis]
    if image.shape[-1] < 3:  # gray, or gray + alpha
        gray = image[..., :1]
        return gray if channels == 1 else np.repeat(gray, 3, axis=-1)
    rgb = image[..., :3]
    if channels == 3:
        return rgb
    # The weights of tf.image.rgb_to_grayscale (ITU-R 601), so that both paths agree.
    return (rgb @ np.array([0.2989, 0.5870, 0.1140], dtype=np.float32))[..., np.newaxis]


def _read_image_without_tensorflow(path: Path) -> np.ndarray:
    """A file TensorFlow cannot decode (TIFF, CMYK JPEG) as float32 in [0, 1], (H, W) or (H, W, C).

    OpenCV first: unlike PIL, it keeps 16 bits per channel in colour images.
    """
    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if array is None:  # a format OpenCV does not read: PIL, converted to 8-bit RGB or gray
        image = _open(path)
        array = np.asarray(image.convert("L" if image.mode in ("1", "L", "LA") else "RGB"))
    elif array.ndim == 3:
        array = array[..., [2, 1, 0, 3][: array.shape[-1]]] if array.shape[-1] >= 3 else array  # BGR(A)
    if array.dtype not in (np.uint8, np.uint16):
        raise UnetTutorialError(
            f"'{path}' holds {array.dtype} pixels, whose range is unknown: save it as an 8- or 16-bit image."
        )
    return array.astype(np.float32) / (255.0 if array.dtype == np.uint8 else 65535.0)


def _decodes_with_tensorflow(image: Image.Image) -> bool:
    return image.format in TF_FORMATS and image.mode != "CMYK"


def read_image(path: str | Path, *, channels: int = 3) -> np.ndarray:
    """Read one image file exactly as the pipeline does, without resizing.

    Returns:
        float32 array of shape (H, W, channels) with values in [0, 1]; 8-bit files are divided by 255,
        16-bit files by 65535. Gray images are repeated to 3 channels, alpha channels are dropped.

    Raises:
        UnetTutorialError: the file is missing, damaged or not an image.
    """
    path = Path(path)
    via_python = not _decodes_with_tensorflow(_open(path))
    return _decode_image(tf.constant(str(path)), tf.constant(via_python), channels).numpy()


def _stored_mask_values(image: Image.Image, path: Path) -> tuple[np.ndarray, bool]:
    """The values a mask file stores, as int64 (H, W), and whether it is an RGB mask.

    Palette masks give their indices, RGB masks their colours as ``R * 65536 + G * 256 + B``.
    """
    if image.mode == "1":
        image = image.convert("L")  # 0/255, as TensorFlow decodes a 1-bit PNG
    array = np.asarray(image)
    if image.mode in ("RGB", "RGBA"):
        return array[..., :3].astype(np.int64) @ np.array(COLOR_SCALE, dtype=np.int64), True
    if image.mode == "LA":
        array = array[..., 0]
    if array.ndim != 2:
        raise UnetTutorialError(
            f"mask '{path}' has PIL mode {image.mode}, which is no label image: save masks as 8-bit "
            "grayscale PNGs (or palette/RGB PNGs with mask_values)."
        )
    return array.astype(np.int64), False


# A gray value v saved as RGB is stored as v * GRAY_AS_COLOR.
GRAY_AS_COLOR = sum(COLOR_SCALE)


@dataclass(frozen=True)
class _FileReport:
    image_via_python: bool
    mask_via_python: bool
    values: frozenset[int]  # stored mask values; colours for RGB masks
    rgb_mask: bool


def _inspect_pair(image_path: Path, mask_path: Path) -> _FileReport:
    image = _open(image_path)
    mask = _open(mask_path)
    if image.size != mask.size:
        raise UnetTutorialError(
            f"mask '{mask_path}' is {mask.size[0]}x{mask.size[1]} pixels but its image '{image_path}' is "
            f"{image.size[0]}x{image.size[1]}: a mask must match its image pixel for pixel; "
            "resize the mask with nearest-neighbour interpolation, or re-export the pair."
        )
    values, rgb_mask = _stored_mask_values(mask, mask_path)
    return _FileReport(
        image_via_python=not _decodes_with_tensorflow(image),
        mask_via_python=mask.format not in TF_FORMATS or mask.mode not in TF_MASK_MODES,
        values=frozenset(np.unique(values).tolist()),
        rgb_mask=rgb_mask,
    )


def _mapping_key(value: int | tuple[int, int, int]) -> int:
    if isinstance(value, tuple):
        return int(np.dot(value, COLOR_SCALE))
    return int(value)


def _class_rule(
    *,
    num_classes: int,
    mask_values: Mapping[int | tuple[int, int, int], int] | None,
    mask_threshold: int | None,
    invert: bool,
) -> Callable[[int], int | None]:
    """The class of a stored mask value, or None when the value is no class."""
    if mask_values is not None:
        mapping = {_mapping_key(key): int(value) for key, value in mask_values.items()}
        bad = sorted({value for value in mapping.values() if not 0 <= value < num_classes})
        if bad:
            raise UnetTutorialError(
                f"mask_values maps to {bad}, which are not classes of num_classes={num_classes}: "
                f"use class indices 0 to {num_classes - 1}."
            )
        base = mapping.get
    elif mask_threshold is not None:
        base = lambda value: int(value >= mask_threshold)  # noqa: E731
    elif num_classes == 2:
        base = BINARY_VALUES.get
    else:
        base = lambda value: value if 0 <= value < num_classes else None  # noqa: E731
    if not invert:
        return base
    return lambda value: None if base(value) is None else 1 - base(value)


def _describe(value: int, color: bool) -> str:
    if not color:
        return str(value)
    return str(tuple(int(value) // scale % 256 for scale in COLOR_SCALE))


def scan_dataset(
    root: str | Path,
    *,
    images: str = "images",
    masks: str = "masks",
    mask_suffix: str = "",
    num_classes: int = 2,
    mask_values: Mapping[int | tuple[int, int, int], int] | None = None,
    mask_threshold: int | None = None,
    invert: bool = False,
    progress: bool = True,
) -> DatasetScan:
    """Check every image/mask pair of a dataset folder before anything trains.

    Each file is decoded once (in threads), so that a damaged file is found now rather than mid-epoch.
    Results are kept for the session: a second call on unchanged files returns at once.

    Args:
        root: the dataset folder.
        images, masks: the subfolders of ``root`` that hold the images and the masks.
        mask_suffix: what a mask's file stem adds to its image's (``"_mask"`` for ``cell_07_mask.png``).
        num_classes: 2 for binary masks (object vs background), more for multi-class masks.
        mask_values: maps stored mask values to classes, e.g. ``{255: 1, 0: 0}``, ``{1: 1, 2: 0, 3: 2}``, or
            colours ``{(255, 0, 0): 1, (0, 0, 0): 0}``. Without it, binary masks may hold 0/1 or 0/255 and
            multi-class masks must hold the class indices (palette PNGs hold indices).
        mask_threshold: for binary masks saved lossily (JPEG): stored values >= it are class 1.
        invert: for binary masks: swap the classes, for datasets whose object of interest is stored as 0
            (dark), such as ISBI 2012 membranes.
        progress: show a progress bar for datasets of more than a few dozen pairs.

    Raises:
        UnetTutorialError: a wrong path, an empty folder, an unpaired file, an unreadable or truncated
            file, a mask of another size than its image, or mask values that are no class. The message
            names the file and says what to do.
    """
    if num_classes < 2:
        raise UnetTutorialError(f"num_classes={num_classes}: use 2 for binary masks, more for multi-class.")
    if (invert or mask_threshold is not None) and num_classes != 2:
        raise UnetTutorialError("invert and mask_threshold apply to binary masks only (num_classes=2).")
    rule = _class_rule(
        num_classes=num_classes, mask_values=mask_values, mask_threshold=mask_threshold, invert=invert
    )
    files = find_pairs(root, images=images, masks=masks, mask_suffix=mask_suffix)
    signature = tuple(
        (str(path), path.stat().st_size, path.stat().st_mtime_ns) for pair in files for path in pair
    )
    options = (num_classes, repr(sorted((mask_values or {}).items(), key=repr)), mask_threshold, invert)
    key = (signature, options)
    if key in _SCANS:
        return _SCANS[key]

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        reports = list(
            tqdm(
                pool.map(lambda pair: _inspect_pair(*pair), files),
                total=len(files),
                desc=f"Checking {len(files)} image/mask pairs",
                disable=not progress or len(files) < 64,
                unit="pair",
            )
        )
    color_masks = any(report.rgb_mask and any(v % GRAY_AS_COLOR for v in report.values) for report in reports)
    if color_masks and mask_values is None:
        path, report = next((p, r) for p, r in zip(files, reports, strict=True) if r.rgb_mask)
        colours = ", ".join(_describe(value, True) for value in sorted(report.values)[:4])
        raise UnetTutorialError(
            f"mask '{path[1]}' is colour-coded ({colours}): pass mask_values={{(r, g, b): class, ...}} "
            "with one entry per colour."
        )
    if not color_masks:  # gray values saved as RGB: use the gray value
        reports = [
            replace(r, values=frozenset(v // GRAY_AS_COLOR for v in r.values)) if r.rgb_mask else r
            for r in reports
        ]
    stored_values = sorted(set().union(*(report.values for report in reports)))
    bad_values = {value for value in stored_values if rule(value) is None}
    if bad_values:
        offending = [
            pair[1] for pair, report in zip(files, reports, strict=True) if report.values & bad_values
        ]
        first = next(r for r in reports if r.values & bad_values)
        shown = ", ".join(_describe(value, color_masks) for value in sorted(first.values & bad_values)[:6])
        understood = (
            f"mask_values covers {', '.join(_describe(_mapping_key(k), color_masks) for k in mask_values)}"
            if mask_values is not None
            else "binary masks may hold 0/1 or 0/255"
            if num_classes == 2
            else f"num_classes={num_classes} expects class indices 0 to {num_classes - 1}"
        )
        raise UnetTutorialError(
            f"mask '{offending[0]}' holds values {{{shown}}} that are no class ({understood})"
            + (f"; {len(offending) - 1} more mask(s) too" if len(offending) > 1 else "")
            + "; pass mask_values={stored value: class, ...} to map them"
            + (", or mask_threshold=128 for masks saved as JPEG." if num_classes == 2 else ".")
        )
    scan = DatasetScan(
        root=Path(root).expanduser(),
        pairs=tuple(
            Pair(image, mask, r.image_via_python, r.mask_via_python)
            for (image, mask), r in zip(files, reports, strict=True)
        ),
        stored_values=tuple(stored_values),
        class_of_value=tuple(rule(value) for value in stored_values),
        color_masks=color_masks,
    )
    _SCANS[key] = scan
    return scan


_SCANS: dict[tuple, DatasetScan] = {}


def split_pairs(
    pairs: tuple[Pair, ...] | list[Pair],
    *,
    split: str,
    validation_fraction: float = 0.2,
    seed: int = 0,
    shuffle_split: bool = True,
) -> list[Pair]:
    """The pairs of one split: ``"train"``, ``"validation"`` or ``"all"``.

    The split is deterministic: the same files, fraction and seed always give the same split. With
    ``shuffle_split=False`` the validation set is the last pairs in natural name order, which keeps
    neighbouring slices of a stack (ISBI 2012) from landing on both sides.
    """
    if split not in ("train", "validation", "all"):
        raise UnetTutorialError(f"split={split!r}: use 'train', 'validation' or 'all'.")
    if not 0.0 <= validation_fraction < 1.0:
        raise UnetTutorialError(f"validation_fraction={validation_fraction}: use a number in [0, 1).")
    if split == "all":
        return list(pairs)
    count = len(pairs)
    num_validation = round(count * validation_fraction)
    if validation_fraction > 0 and count >= 2:
        num_validation = min(max(num_validation, 1), count - 1)
    order = np.random.default_rng(seed).permutation(count) if shuffle_split else np.arange(count)
    chosen = set(order[count - num_validation :].tolist())
    if split == "train":
        chosen = set(range(count)) - chosen
    return [pair for index, pair in enumerate(pairs) if index in chosen]


def _as_path(path: bytes | np.ndarray) -> Path:
    """A path handed over by tf.numpy_function: bytes in a graph, a 0-d array when run eagerly."""
    return Path((path.item() if isinstance(path, np.ndarray) else path).decode())


def _decode_image(path: tf.Tensor, via_python: tf.Tensor, channels: int) -> tf.Tensor:
    """float32 (H, W, channels) in [0, 1]; graph mode."""

    def with_tensorflow() -> tf.Tensor:
        image = tf.io.decode_image(tf.io.read_file(path), dtype=tf.float32, expand_animations=False)
        num_channels = tf.shape(image)[-1]
        if channels == 3:
            return tf.cond(
                num_channels < 3, lambda: tf.repeat(image[..., :1], 3, axis=-1), lambda: image[..., :3]
            )
        return tf.cond(
            num_channels < 3, lambda: image[..., :1], lambda: tf.image.rgb_to_grayscale(image[..., :3])
        )

    def with_python() -> tf.Tensor:
        image = tf.numpy_function(
            lambda p: _to_channels(_read_image_without_tensorflow(_as_path(p)), channels),
            [path],
            tf.float32,
            stateful=False,
        )
        return tf.ensure_shape(image, [None, None, channels])

    # The channel count is only known per file, so tf.cond loses it: restore it for the ops downstream.
    return tf.ensure_shape(tf.cond(via_python, with_python, with_tensorflow), [None, None, channels])


def _decode_mask(path: tf.Tensor, via_python: tf.Tensor, color_masks: bool) -> tf.Tensor:
    """Stored mask values, int64 (H, W); colours as R * 65536 + G * 256 + B; graph mode."""

    def with_tensorflow() -> tf.Tensor:
        mask = tf.cast(tf.io.decode_image(tf.io.read_file(path), expand_animations=False), tf.int64)
        if color_masks:
            rgb = tf.cond(
                tf.shape(mask)[-1] < 3, lambda: tf.repeat(mask[..., :1], 3, axis=-1), lambda: mask[..., :3]
            )
            return tf.reduce_sum(rgb * tf.constant(COLOR_SCALE, tf.int64), axis=-1)
        return mask[..., 0]

    def with_python() -> tf.Tensor:
        def read(p: bytes | np.ndarray) -> np.ndarray:
            values, rgb_mask = _stored_mask_values(_open(_as_path(p)), _as_path(p))
            return values if color_masks or not rgb_mask else values // GRAY_AS_COLOR

        return tf.ensure_shape(tf.numpy_function(read, [path], tf.int64, stateful=False), [None, None])

    return tf.cond(via_python, with_python, with_tensorflow)


def _class_lookup(scan: DatasetScan) -> Callable[[tf.Tensor], tf.Tensor]:
    """A graph function from stored values (int64) to class indices (uint8)."""
    keys = tf.constant(scan.stored_values, tf.int64)
    classes = tf.constant(scan.class_of_value, tf.int64)
    if not scan.color_masks and scan.stored_values[-1] < 65536:
        # A dense table indexed by the value: much faster than hashing every pixel.
        table = tf.scatter_nd(keys[:, None], classes, [scan.stored_values[-1] + 1])
        return lambda values: tf.cast(tf.gather(table, values), tf.uint8)
    hashed = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, classes), default_value=0)
    return lambda values: tf.cast(hashed.lookup(values), tf.uint8)


def _fits_in_memory(num_bytes: int) -> bool:
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # no sysconf (Windows): assume a small machine
        total = 8 * 2**30
    return num_bytes < CACHE_MEMORY_SHARE * total


def load_dataset(
    root: str | Path,
    *,
    image_size: int,
    batch_size: int | None,
    split: str = "train",
    validation_fraction: float = 0.2,
    seed: int = 0,
    augment: bool | object = False,
    shuffle: bool | None = None,
    images: str = "images",
    masks: str = "masks",
    mask_suffix: str = "",
    num_classes: int = 2,
    mask_values: Mapping[int | tuple[int, int, int], int] | None = None,
    mask_threshold: int | None = None,
    invert: bool = False,
    channels: int = 3,
    shuffle_split: bool = True,
    cache: bool | str = "auto",
    progress: bool = True,
) -> tf.data.Dataset:
    """A folder dataset as a ``tf.data.Dataset`` of ``(image, mask)``, checked before it is returned.

    The pipeline, in order: decode in parallel, resize to ``image_size`` x ``image_size`` (images
    bilinear with antialiasing, masks nearest neighbour, so no new label values appear; the aspect ratio
    is not kept), cache, shuffle, batch, augment, prefetch.

    Args:
        root: the dataset folder (see :func:`scan_dataset` for the layout and the mask options
            ``images``, ``masks``, ``mask_suffix``, ``num_classes``, ``mask_values``, ``mask_threshold``,
            ``invert``).
        image_size: height and width of every output image and mask, in pixels.
        batch_size: images per batch, or None for single examples.
        split: ``"train"``, ``"validation"`` or ``"all"`` (see :func:`split_pairs`).
        validation_fraction: the share of pairs in the validation split.
        seed: seeds the split, the shuffling and the augmentation.
        augment: False for none, True for the default augmentation, or an ``AugmentOptions`` from
            ``unet_helpers.augment``; meant for the training split. Needs ``batch_size``.
        shuffle: reshuffle every epoch; by default only the training split is shuffled.
        channels: 3 (gray images are repeated) or 1 (colour images are converted to gray).
        shuffle_split: False puts the last pairs (in natural name order) in the validation split.
        cache: ``"auto"`` caches decoded, resized pairs in memory if they take less than a quarter of
            the machine's memory; True always, False never; a path caches to that file.
        progress: show a progress bar while the files are checked.

    Returns:
        A dataset of ``(image, mask)``: ``image`` float32 (B, image_size, image_size, channels) in [0, 1];
        ``mask`` float32 (B, image_size, image_size, 1) holding class indices (binary: 0 or 1). Without
        ``batch_size`` the leading B is absent. ``len(dataset)`` is the number of batches.

    Raises:
        UnetTutorialError: any problem :func:`scan_dataset` finds, or an argument out of range.
    """
    if image_size < 1 or (batch_size is not None and batch_size < 1):
        raise UnetTutorialError(f"image_size={image_size}, batch_size={batch_size}: both must be positive.")
    if channels not in (1, 3):
        raise UnetTutorialError(f"channels={channels}: use 3 (colour) or 1 (gray).")
    if augment is not False and augment is not None and batch_size is None:
        raise UnetTutorialError("augment works on batches: pass batch_size too.")
    scan = scan_dataset(
        root,
        images=images,
        masks=masks,
        mask_suffix=mask_suffix,
        num_classes=num_classes,
        mask_values=mask_values,
        mask_threshold=mask_threshold,
        invert=invert,
        progress=progress,
    )
    pairs = split_pairs(
        scan.pairs,
        split=split,
        validation_fraction=validation_fraction,
        seed=seed,
        shuffle_split=shuffle_split,
    )
    if not pairs:
        raise UnetTutorialError(
            f"the {split} split of '{scan.root}' is empty ({len(scan.pairs)} pairs, "
            f"validation_fraction={validation_fraction}): add images or change validation_fraction."
        )
    to_classes = _class_lookup(scan)

    def load_pair(image_path, mask_path, image_via_python, mask_via_python):
        image = _decode_image(image_path, image_via_python, channels)
        image = tf.image.resize(image, [image_size, image_size], method="bilinear", antialias=True)
        mask = to_classes(_decode_mask(mask_path, mask_via_python, scan.color_masks))[..., tf.newaxis]
        mask = tf.image.resize(mask, [image_size, image_size], method="nearest")
        # Cached as uint16 and uint8: a third of float32's memory, exact for 8- and 16-bit images.
        return tf.cast(tf.round(tf.clip_by_value(image, 0.0, 1.0) * 65535.0), tf.uint16), mask

    columns = (
        [str(pair.image) for pair in pairs],
        [str(pair.mask) for pair in pairs],
        [pair.image_via_python for pair in pairs],
        [pair.mask_via_python for pair in pairs],
    )
    dataset = tf.data.Dataset.from_tensor_slices(columns).map(load_pair, num_parallel_calls=tf.data.AUTOTUNE)
    cache_bytes = len(pairs) * image_size**2 * (2 * channels + 1)
    if isinstance(cache, str) and cache != "auto":
        dataset = dataset.cache(cache)
    elif cache is True or (cache == "auto" and _fits_in_memory(cache_bytes)):
        dataset = dataset.cache()
    if shuffle if shuffle is not None else split == "train":
        dataset = dataset.shuffle(len(pairs), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.map(
        lambda image, mask: (tf.cast(image, tf.float32) / 65535.0, tf.cast(mask, tf.float32)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    if batch_size is not None:
        dataset = dataset.batch(batch_size, num_parallel_calls=tf.data.AUTOTUNE)
    if augment is not False and augment is not None:
        from unet_helpers.augment import AugmentOptions, augment_dataset

        options = AugmentOptions() if augment is True else augment
        dataset = augment_dataset(dataset, seed=seed, options=options)
    return dataset.prefetch(tf.data.AUTOTUNE)


def images_per_second(
    dataset: tf.data.Dataset, *, first_epoch: bool = False, min_seconds: float = 2.0
) -> float:
    """How fast a dataset of ``(images, masks)`` batches delivers images, in images per second.

    Args:
        dataset: batches whose first element has the batch size as its leading dimension.
        first_epoch: time exactly one pass over a dataset not iterated before (with a cache, the only pass
            that reads and decodes files).
        min_seconds: otherwise, the steady state: after one warm-up epoch (which fills the cache), batches
            of the repeated dataset are counted from one iterator for at least this long, as a long
            training run sees them.
    """
    if first_epoch:
        start, count = time.perf_counter(), 0
        for images, _ in dataset:
            count += int(images.shape[0])
        return count / (time.perf_counter() - start)
    warmup_batches = max(int(dataset.cardinality()), 1)
    batches = iter(dataset.repeat())
    for _ in range(warmup_batches):
        next(batches)
    start, count = time.perf_counter(), 0
    while time.perf_counter() - start < min_seconds:
        count += int(next(batches)[0].shape[0])
    return count / (time.perf_counter() - start)
