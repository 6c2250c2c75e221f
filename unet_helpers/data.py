"""Load a folder of images and masks as a ``tf.data.Dataset`` of ``(image, mask)`` batches.

Layout: ``root/images/`` and ``root/masks/`` (other names with ``images=`` and ``masks=``), paired by file
stem (``cell_07.png`` with ``cell_07.png`` or ``cell_07.tif``; with ``mask_suffix="_mask"``, with
``cell_07_mask.png``). Images: PNG, JPEG, TIFF, BMP or GIF; 1, 2, 3 or 4 channels; 8 or 16 bits. Masks: 0/1,
0/255, class indices, a palette PNG (its indices are the values), or colours mapped with ``mask_values``.

Loading happens in two steps:

1. :func:`scan_dataset` reads every file once, in Python, before anything trains, and raises a one-line
   :class:`~unet_helpers.errors.UnetTutorialError` that names the file for every mistake a user makes (a
   wrong path, an unpaired or unreadable file, a mask of another size or with values that are no class).
2. :func:`load_dataset` (one split) or :func:`load_splits` (both, from one scan) builds the ``tf.data``
   pipeline from small public steps: :func:`pair_files`, :func:`pair_reader` (decode in the graph, resize),
   cache, shuffle, :func:`to_float`, batch, augment, prefetch.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from unet_helpers import images as image_files  # `images` names the image folder argument here
from unet_helpers import mask_classes
from unet_helpers.errors import UnetTutorialError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif")
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


class Splits(NamedTuple):
    """The training and validation pipelines of one dataset folder, scanned once (:func:`load_splits`).

    Attributes:
        train: the training batches, shuffled every epoch (and augmented if asked).
        validation: the validation batches, in name order, never augmented.
        train_count: the number of training pairs (images per epoch).
        validation_count: the number of validation pairs.
        scan: what :func:`scan_dataset` found, every pair of both splits included.
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset
    train_count: int
    validation_count: int
    scan: DatasetScan


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


def list_images(folder: Path) -> list[Path]:
    """The image files of ``folder`` in natural name order (``2`` before ``10``), hidden files skipped."""
    return sorted(_list_files(folder).values(), key=lambda path: _natural_key(path.stem))


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


def read_image(path: str | Path, *, channels: int = 3) -> np.ndarray:
    """Read one image file exactly as the pipeline does, without resizing.

    Returns:
        float32 array of shape (H, W, channels) with values in [0, 1]; 8-bit files are divided by 255,
        16-bit files by 65535. Gray images are repeated to 3 channels, alpha channels are dropped.

    Raises:
        UnetTutorialError: the file is missing, damaged or not an image.
    """
    path = Path(path)
    via_python = not image_files.decodes_with_tensorflow(image_files.open_image(path))
    return image_files.decode_image(tf.constant(str(path)), tf.constant(via_python), channels).numpy()


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
    rule = mask_classes.class_rule(
        num_classes=num_classes, mask_values=mask_values, mask_threshold=mask_threshold, invert=invert
    )
    files = find_pairs(root, images=images, masks=masks, mask_suffix=mask_suffix)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        reports = list(
            tqdm(
                pool.map(lambda pair: image_files.inspect_pair(*pair), files),
                total=len(files),
                desc=f"Checking {len(files)} image/mask pairs",
                disable=not progress or len(files) < 64,
                unit="pair",
            )
        )
    stored_values, class_of_value, color_masks = mask_classes.classes_of_values(
        [(mask, report.values, report.rgb_mask) for (_, mask), report in zip(files, reports, strict=True)],
        rule,
        num_classes=num_classes,
        mask_values=mask_values,
    )
    return DatasetScan(
        root=Path(root).expanduser(),
        pairs=tuple(
            Pair(image, mask, report.image_via_python, report.mask_via_python)
            for (image, mask), report in zip(files, reports, strict=True)
        ),
        stored_values=stored_values,
        class_of_value=class_of_value,
        color_masks=color_masks,
    )


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


def _pairs_of_split(
    scan: DatasetScan, split: str, *, validation_fraction: float, seed: int, shuffle_split: bool
) -> list[Pair]:
    """:func:`split_pairs` of a scan, refusing an empty split."""
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
    return pairs


def pair_files(pairs: list[Pair] | tuple[Pair, ...]) -> tf.data.Dataset:
    """The first step of the pipeline: one element per pair, its file names and how to read them.

    Returns:
        A dataset of ``(image_path, mask_path, image_via_python, mask_via_python)`` (strings and bools), the
        input of :func:`pair_reader`.
    """
    return tf.data.Dataset.from_tensor_slices(
        (
            [str(pair.image) for pair in pairs],
            [str(pair.mask) for pair in pairs],
            [pair.image_via_python for pair in pairs],
            [pair.mask_via_python for pair in pairs],
        )
    )


def pair_reader(
    scan: DatasetScan, *, image_size: int, channels: int = 3
) -> Callable[[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]]:
    """The function the pipeline maps over :func:`pair_files`: read, decode and resize one pair.

    Images are resized bilinearly with antialiasing, masks with nearest neighbour (so no new label values
    appear), both to ``image_size`` x ``image_size`` (the aspect ratio is not kept); mask values become
    classes with the scan's lookup table.

    Returns:
        A graph function that gives ``(image, mask)``: the image uint16 (image_size, image_size, channels),
        [0, 1] scaled to [0, 65535]; the mask uint8 (image_size, image_size, 1), class indices. A third of
        float32's memory in the cache, exact for 8- and 16-bit images; :func:`to_float` converts them.
    """
    to_classes = mask_classes.class_lookup(
        scan.stored_values, scan.class_of_value, color_masks=scan.color_masks
    )

    def read_pair(image_path, mask_path, image_via_python, mask_via_python):
        image = image_files.decode_image(image_path, image_via_python, channels)
        image = tf.image.resize(image, [image_size, image_size], method="bilinear", antialias=True)
        mask = to_classes(image_files.decode_mask(mask_path, mask_via_python, scan.color_masks))
        mask = tf.image.resize(mask[..., tf.newaxis], [image_size, image_size], method="nearest")
        return tf.cast(tf.round(tf.clip_by_value(image, 0.0, 1.0) * 65535.0), tf.uint16), mask

    return read_pair


def to_float(image: tf.Tensor, mask: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """What :func:`pair_reader` gives (cached compactly) as the model takes it: float32 image in [0, 1],
    float32 mask of class indices."""
    return tf.cast(image, tf.float32) / 65535.0, tf.cast(mask, tf.float32)


def _fits_in_memory(num_bytes: int) -> bool:
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # no sysconf (Windows): assume a small machine
        total = 8 * 2**30
    return num_bytes < CACHE_MEMORY_SHARE * total


def _check_sizes(image_size: int, batch_size: int | None, channels: int, augment: bool | object) -> None:
    if image_size < 1 or (batch_size is not None and batch_size < 1):
        raise UnetTutorialError(f"image_size={image_size}, batch_size={batch_size}: both must be positive.")
    if channels not in (1, 3):
        raise UnetTutorialError(f"channels={channels}: use 3 (colour) or 1 (gray).")
    if augment is not False and augment is not None and batch_size is None:
        raise UnetTutorialError("augment works on batches: pass batch_size too.")


def _pipeline(
    scan: DatasetScan,
    pairs: list[Pair],
    *,
    image_size: int,
    batch_size: int | None,
    seed: int,
    augment: bool | object,
    shuffle: bool,
    channels: int,
    cache: bool | str,
) -> tf.data.Dataset:
    """The ``tf.data`` chain of :func:`load_dataset` over ``pairs``, step by step."""
    dataset = pair_files(pairs).map(
        pair_reader(scan, image_size=image_size, channels=channels), num_parallel_calls=tf.data.AUTOTUNE
    )
    cache_bytes = len(pairs) * image_size**2 * (2 * channels + 1)
    if isinstance(cache, str) and cache != "auto":
        dataset = dataset.cache(cache)
    elif cache is True or (cache == "auto" and _fits_in_memory(cache_bytes)):
        dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(len(pairs), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
    if batch_size is not None:
        dataset = dataset.batch(batch_size, num_parallel_calls=tf.data.AUTOTUNE)
    if augment is not False and augment is not None:
        from unet_helpers.augment import AugmentOptions, augment_dataset

        options = AugmentOptions() if augment is True else augment
        dataset = augment_dataset(dataset, seed=seed, options=options)
    return dataset.prefetch(tf.data.AUTOTUNE)


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

    The pipeline, in order: the list of pairs (:func:`pair_files`), decode in parallel and resize to
    ``image_size`` x ``image_size`` (:func:`pair_reader`: images bilinear with antialiasing, masks nearest
    neighbour, so no new label values appear; the aspect ratio is not kept), cache, shuffle, convert to
    float (:func:`to_float`), batch, augment, prefetch. For both training and validation, prefer
    :func:`load_splits`, which checks the folder once.

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
    _check_sizes(image_size, batch_size, channels, augment)
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
    pairs = _pairs_of_split(
        scan, split, validation_fraction=validation_fraction, seed=seed, shuffle_split=shuffle_split
    )
    return _pipeline(
        scan,
        pairs,
        image_size=image_size,
        batch_size=batch_size,
        seed=seed,
        augment=augment,
        shuffle=shuffle if shuffle is not None else split == "train",
        channels=channels,
        cache=cache,
    )


def load_splits(
    root: str | Path,
    *,
    image_size: int,
    batch_size: int | None,
    validation_fraction: float = 0.2,
    seed: int = 0,
    augment: bool | object = False,
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
) -> Splits:
    """The training and validation pipelines of a folder dataset, as a :class:`Splits`, from one scan.

    Each split is what :func:`load_dataset` gives for it with the same arguments (the same batches for the
    same ``seed``): the training split reshuffled every epoch and augmented if ``augment`` says so, the
    validation split in name order, never augmented. The arguments are :func:`load_dataset`'s.

    Raises:
        UnetTutorialError: any problem :func:`scan_dataset` finds, an empty split, a bad argument.
    """
    _check_sizes(image_size, batch_size, channels, augment)
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
    splitting = {"validation_fraction": validation_fraction, "seed": seed, "shuffle_split": shuffle_split}
    train_pairs = _pairs_of_split(scan, "train", **splitting)
    validation_pairs = _pairs_of_split(scan, "validation", **splitting)
    loading = {
        "image_size": image_size,
        "batch_size": batch_size,
        "seed": seed,
        "channels": channels,
        "cache": cache,
    }
    return Splits(
        train=_pipeline(scan, train_pairs, augment=augment, shuffle=True, **loading),
        validation=_pipeline(scan, validation_pairs, augment=False, shuffle=False, **loading),
        train_count=len(train_pairs),
        validation_count=len(validation_pairs),
        scan=scan,
    )


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
