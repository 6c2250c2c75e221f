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
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from unet_helpers import images as image_files  # `images` names the image folder argument here
from unet_helpers import mask_classes, scales, scan_cache, windows
from unet_helpers.errors import UnetTutorialError
from unet_helpers.pairing import find_pairs
from unet_helpers.splits import SplitSource, needed_splits, official_pairs, split_pairs, take_subset

# "auto" caches in memory when the cache takes less than this share of the machine's memory.
CACHE_MEMORY_SHARE = 0.25
# With a scale, the training windows of each image per epoch (benchmarks/native_crops.py measured 2).
WINDOWS_PER_IMAGE = 2


@dataclass(frozen=True)
class Pair:
    """One image and its mask, and what :func:`scan_dataset` learnt about them.

    Attributes:
        image: path of the image file.
        mask: path of the mask file.
        image_via_python: the image is read with PIL (TensorFlow cannot decode it).
        mask_via_python: the mask is read with PIL (palette, 16-bit or 1-bit masks, TIFF).
        split: the dataset's own split that lists the pair (``"train"``, ``"validation"``, ``"test"``),
            or None when the dataset is split by seed (see :mod:`unet_helpers.splits`).
    """

    image: Path
    mask: Path
    image_via_python: bool
    mask_via_python: bool
    split: str | None = None


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
        train_count: the number of training pairs (images per epoch, or times ``windows_per_image``).
        validation_count: the number of validation pairs.
        scan: what :func:`scan_dataset` found, every pair of both splits included.
        scale: what the pairs were loaded at: None squeezed, else a factor of their own size.
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset
    train_count: int
    validation_count: int
    scan: DatasetScan
    scale: float | None


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
    ignore_values: Sequence[int | tuple[int, int, int]] = (),
    image_pattern: str = "{id}",
    mask_pattern: str = "{id}",
    pairs_file: str | Path | None = None,
    official_splits: Mapping[str, SplitSource] | None = None,
    limit: int | None = None,
    seed: int = 0,
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
        ignore_values: stored mask values whose pixels no class describes (CamVid's void, VOC's 255
            border): they become :data:`~unet_helpers.mask_classes.IGNORE_CLASS` (255) in the masks, and
            the losses, the metrics and the figures leave them out.
        image_pattern, mask_pattern: how file stems pair when masks are named differently from their
            images: ``"{id}_training"`` with ``"{id}_manual1"`` pairs ``21_training.tif`` with
            ``21_manual1.gif`` (DRIVE); see :func:`unet_helpers.pairing.find_pairs`.
        pairs_file: a CSV or text file that lists the pairs instead (see ``find_pairs``).
        official_splits: the dataset's own splits (see :func:`unet_helpers.splits.official_pairs`): each
            pair then carries its split, which :func:`split_pairs` keeps.
        limit: check and keep at most this many pairs, drawn with ``seed`` (a quick run of a large
            dataset, without copying files); a dataset's own splits each keep their share.
        seed: seeds ``limit``'s draw.
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
        num_classes=num_classes,
        mask_values=mask_values,
        mask_threshold=mask_threshold,
        invert=invert,
        ignore_values=ignore_values,
    )
    root = Path(root).expanduser()
    naming = {"mask_suffix": mask_suffix, "image_pattern": image_pattern, "mask_pattern": mask_pattern}
    split_of_pair = None
    if official_splits:
        files, split_of_pair = official_pairs(
            root,
            official_splits,
            find_pairs=lambda root, images, masks: find_pairs(root, images=images, masks=masks, **naming),
            images=images,
            masks=masks,
        )
    else:
        files = find_pairs(root, images=images, masks=masks, pairs_file=pairs_file, **naming)
    files, split_of_pair = take_subset(files, split_of_pair, limit=limit, seed=seed)
    reports = scan_cache.inspect_pairs(files, root=root, progress=progress)
    stored_values, class_of_value, color_masks = mask_classes.classes_of_values(
        [(mask, report.values, report.rgb_mask) for (_, mask), report in zip(files, reports, strict=True)],
        rule,
        num_classes=num_classes,
        mask_values=mask_values,
        mask_threshold=mask_threshold,
    )
    return DatasetScan(
        root=root,
        pairs=tuple(
            Pair(image, mask, report.image_via_python, report.mask_via_python, split)
            for (image, mask), report, split in zip(
                files, reports, split_of_pair or [None] * len(files), strict=True
            )
        ),
        stored_values=stored_values,
        class_of_value=class_of_value,
        color_masks=color_masks,
    )


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
    scan: DatasetScan, *, image_size: int, channels: int = 3, scale: float | None = None
) -> Callable[[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]]:
    """The function the pipeline maps over :func:`pair_files`: read, decode and resize one pair.

    Images are resized bilinearly with antialiasing, masks with nearest neighbour (so no new label values
    appear): with ``scale`` None, both to ``image_size`` x ``image_size`` (the aspect ratio is not kept);
    with a ``scale``, by that factor (:func:`~unet_helpers.windows.scaled_size`; 1 keeps the stored size).
    Mask values become classes with the scan's lookup table.

    Returns:
        A graph function that gives ``(image, mask)``: the image uint16 (height, width, channels), [0, 1]
        scaled to [0, 65535]; the mask uint8 (height, width, 1), class indices. A third of float32's
        memory in the cache, exact for 8- and 16-bit images; :func:`to_float` converts them.
    """
    to_classes = mask_classes.class_lookup(
        scan.stored_values, scan.class_of_value, color_masks=scan.color_masks
    )

    def read_pair(image_path, mask_path, image_via_python, mask_via_python):
        image = image_files.decode_image(image_path, image_via_python, channels)
        mask = to_classes(image_files.decode_mask(mask_path, mask_via_python, scan.color_masks))[
            ..., tf.newaxis
        ]
        if scale is None:
            size = [image_size, image_size]
        else:
            size = windows.scaled_size_in_graph(tf.shape(image), scale)
        if scale != 1:
            image = tf.image.resize(image, size, method="bilinear", antialias=True)
            mask = tf.image.resize(mask, size, method="nearest")
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


def _check_sizes(
    image_size: int,
    batch_size: int | None,
    channels: int,
    augment: bool | object,
    scale: float | str | None,
    windows_per_image: int,
) -> None:
    if image_size < 1 or (batch_size is not None and batch_size < 1):
        raise UnetTutorialError(f"image_size={image_size}, batch_size={batch_size}: both must be positive.")
    if channels not in (1, 3):
        raise UnetTutorialError(f"channels={channels}: use 3 (colour) or 1 (gray).")
    if augment is not False and augment is not None and batch_size is None:
        raise UnetTutorialError("augment works on batches: pass batch_size too.")
    if scale not in (None, "auto") and not (isinstance(scale, int | float) and 0 < scale <= 16):
        raise UnetTutorialError(
            f"scale={scale!r}: give a factor above 0 (1 keeps each image's own size), None to squeeze "
            "every image to image_size, or 'auto' to choose between them."
        )
    if windows_per_image < 1:
        raise UnetTutorialError(f"windows_per_image={windows_per_image}: give 1 or more.")


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
    scale: float | None = None,
    windows_per_image: int = 0,
) -> tf.data.Dataset:
    """The ``tf.data`` chain of :func:`load_dataset` over ``pairs``, step by step.

    With a ``scale``, pairs keep their own size (times ``scale``) and become ``windows_per_image`` random
    windows of ``image_size`` each (training), or, with ``windows_per_image`` 0, the tiles that cover them.
    """
    dataset = pair_files(pairs).map(
        pair_reader(scan, image_size=image_size, channels=channels, scale=scale),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    own_sizes = scales.image_sizes(pairs) if scale is not None else [(image_size, image_size)] * len(pairs)
    sizes = [windows.scaled_size(height, width, scale or 1) for height, width in own_sizes]
    cache_bytes = sum(height * width for height, width in sizes) * (2 * channels + 1)
    if isinstance(cache, str) and cache != "auto":
        dataset = dataset.cache(cache)
    elif cache is True or (cache == "auto" and _fits_in_memory(cache_bytes)):
        dataset = dataset.cache()
    windowed = scale is not None and windows_per_image > 0
    if windowed:
        dataset = dataset.repeat(windows_per_image)
    if shuffle:
        buffer = len(pairs) * (windows_per_image if windowed else 1)
        dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if windowed:
        dataset = dataset.map(
            lambda image, mask: windows.pad_pair(image, mask, image_size, image_size),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        dataset = windows.random_windows(dataset, window_size=image_size, seed=seed)
    elif scale is not None:
        count = sum(windows.tile_count(height, width, image_size) for height, width in sizes)
        dataset = dataset.flat_map(lambda image, mask: windows.tiles(image, mask, tile_size=image_size))
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(count))
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
    ignore_values: Sequence[int | tuple[int, int, int]] = (),
    image_pattern: str = "{id}",
    mask_pattern: str = "{id}",
    pairs_file: str | Path | None = None,
    official_splits: Mapping[str, SplitSource] | None = None,
    limit: int | None = None,
    channels: int = 3,
    shuffle_split: bool = True,
    cache: bool | str = "auto",
    scale: float | str | None = None,
    windows_per_image: int = WINDOWS_PER_IMAGE,
    progress: bool = True,
) -> tf.data.Dataset:
    """A folder dataset as a ``tf.data.Dataset`` of ``(image, mask)``, checked before it is returned.

    The pipeline, in order: the list of pairs (:func:`pair_files`), decode in parallel and resize to
    ``image_size`` x ``image_size`` (:func:`pair_reader`: images bilinear with antialiasing, masks nearest
    neighbour, so no new label values appear; the aspect ratio is not kept), cache, shuffle, convert to
    float (:func:`to_float`), batch, augment, prefetch. For both training and validation, prefer
    :func:`load_splits`, which checks the folder once.

    Args:
        root: the dataset folder (see :func:`scan_dataset` for the layout and the options that say how
            to read it: ``images``, ``masks``, ``mask_suffix``, ``image_pattern``, ``mask_pattern``,
            ``pairs_file``, ``num_classes``, ``mask_values``, ``mask_threshold``, ``invert``,
            ``ignore_values``, ``official_splits``, ``limit``).
        image_size: height and width of every output image and mask, in pixels.
        batch_size: images per batch, or None for single examples.
        split: ``"train"``, ``"validation"``, ``"test"`` (a dataset's own test split) or ``"all"`` (see
            :func:`~unet_helpers.splits.split_pairs`).
        validation_fraction: the share of pairs in the validation split.
        seed: seeds the split, the shuffling, the augmentation and ``limit``'s draw.
        augment: False for none, True for the default augmentation, or an ``AugmentOptions`` from
            ``unet_helpers.augment``; meant for the training split. Needs ``batch_size``.
        shuffle: reshuffle every epoch; by default only the training split is shuffled.
        channels: 3 (gray images are repeated) or 1 (colour images are converted to gray).
        shuffle_split: False puts the last pairs (in natural name order) in the validation split.
        cache: ``"auto"`` caches decoded, resized pairs in memory if they take less than a quarter of
            the machine's memory; True always, False never; a path caches to that file.
        scale: None squeezes every image to ``image_size``; a factor keeps it at its own size times that
            (1: as stored), cut into random ``image_size`` windows (training split, ``windows_per_image``
            per image and epoch) or into the tiles that cover it once (:mod:`~unet_helpers.windows`);
            ``"auto"``: one of the two for the folder (:func:`~unet_helpers.scales.choose_scale`).
        progress: show a progress bar while the files are checked.

    Returns:
        A dataset of ``(image, mask)``: ``image`` float32 (B, image_size, image_size, channels) in [0, 1];
        ``mask`` float32 (B, image_size, image_size, 1) holding class indices (binary: 0 or 1), and 255
        (``IGNORE_CLASS``) where ``ignore_values`` says (or a tile reaches past its image). Without
        ``batch_size`` the leading B is absent. ``len(dataset)`` is the number of batches.

    Raises:
        UnetTutorialError: any problem :func:`scan_dataset` finds, or an argument out of range.
    """
    _check_sizes(image_size, batch_size, channels, augment, scale, windows_per_image)
    scan = scan_dataset(
        root,
        images=images,
        masks=masks,
        mask_suffix=mask_suffix,
        num_classes=num_classes,
        mask_values=mask_values,
        mask_threshold=mask_threshold,
        invert=invert,
        ignore_values=ignore_values,
        image_pattern=image_pattern,
        mask_pattern=mask_pattern,
        pairs_file=pairs_file,
        official_splits=needed_splits(official_splits, split),
        limit=limit,
        seed=seed,
        progress=progress,
    )
    pairs = _pairs_of_split(
        scan, split, validation_fraction=validation_fraction, seed=seed, shuffle_split=shuffle_split
    )
    scale = scales.resolve(scale, scan, image_size=image_size, say=progress)
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
        scale=scale,
        windows_per_image=windows_per_image if split == "train" else 0,
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
    ignore_values: Sequence[int | tuple[int, int, int]] = (),
    image_pattern: str = "{id}",
    mask_pattern: str = "{id}",
    pairs_file: str | Path | None = None,
    official_splits: Mapping[str, SplitSource] | None = None,
    limit: int | None = None,
    channels: int = 3,
    shuffle_split: bool = True,
    cache: bool | str = "auto",
    scale: float | str | None = None,
    windows_per_image: int = WINDOWS_PER_IMAGE,
    progress: bool = True,
) -> Splits:
    """The training and validation pipelines of a folder dataset, as a :class:`Splits`, from one scan.

    Each split is what :func:`load_dataset` gives for it with the same arguments (the same batches for the
    same ``seed``): the training split reshuffled every epoch and augmented if ``augment`` says so, the
    validation split in name order, never augmented (with a ``scale``: windows and tiles at the images'
    own scale). The arguments are :func:`load_dataset`'s.

    Raises:
        UnetTutorialError: any problem :func:`scan_dataset` finds, an empty split, a bad argument.
    """
    _check_sizes(image_size, batch_size, channels, augment, scale, windows_per_image)
    scan = scan_dataset(
        root,
        images=images,
        masks=masks,
        mask_suffix=mask_suffix,
        num_classes=num_classes,
        mask_values=mask_values,
        mask_threshold=mask_threshold,
        invert=invert,
        ignore_values=ignore_values,
        image_pattern=image_pattern,
        mask_pattern=mask_pattern,
        pairs_file=pairs_file,
        official_splits=needed_splits(official_splits, "train"),
        limit=limit,
        seed=seed,
        progress=progress,
    )
    scale = scales.resolve(scale, scan, image_size=image_size, say=progress)
    splitting = {"validation_fraction": validation_fraction, "seed": seed, "shuffle_split": shuffle_split}
    train_pairs = _pairs_of_split(scan, "train", **splitting)
    validation_pairs = _pairs_of_split(scan, "validation", **splitting)
    loading = {
        "image_size": image_size,
        "batch_size": batch_size,
        "seed": seed,
        "channels": channels,
        "cache": cache,
        "scale": scale,
    }
    return Splits(
        train=_pipeline(
            scan, train_pairs, augment=augment, shuffle=True, windows_per_image=windows_per_image, **loading
        ),
        validation=_pipeline(scan, validation_pairs, augment=False, shuffle=False, **loading),
        train_count=len(train_pairs),
        validation_count=len(validation_pairs),
        scan=scan,
        scale=scale,
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
