"""Instance labels (one number per nucleus) and what training takes from them.

Why: a union mask (0 = background, 1 = nucleus) merges nuclei that touch. Where two nuclei meet, the mask
says "nucleus" on both sides, so it holds one blob where there are two nuclei, and no loss can teach a
network to separate what its target merges. The instance labels (``instances/<name>.png``: 0 =
background, 1..N one number per nucleus) keep them apart, and training takes two things from them
(Ronneberger et al. 2015, section 3):

1. a target in which touching nuclei are separable: :func:`separate_touching` puts a 1-pixel background
   line wherever two nuclei touch, so that every 8-connected component of the target lies within one
   nucleus, and a prediction of it can be counted nucleus by nucleus (``instance_metrics.match_instances``);
2. a reason for the network to get those lines right. They are a handful of pixels among thousands, so
   the plain cross-entropy hardly notices them; the paper's weight map (:func:`border_weights`) makes a
   background pixel between two close nuclei weigh up to ``w0`` (10) more than other background pixels.
   The weights reach the loss as Keras's per-pixel ``sample_weight`` (see ``losses.LossSum``).

The steps, in order: :func:`read_instances` (one file) or :func:`load_split` (a dataset folder, the same
split as ``data.load_dataset``), then :func:`targets` (separate, then weigh), then
:func:`weighted_dataset` (``(image, mask, weights)`` batches, augmented with the weights kept aligned)
for ``model.fit`` with ``losses.bce_dice_loss()``.

Separate and weigh at the **training resolution**, after resizing the labels: a 1-pixel line drawn at
full size disappears or thickens when the mask is resized, and ``sigma`` is in pixels of the image the
network sees. Labels are resized with nearest neighbour, which keeps every label number exact. Small
nuclei suffer from any shrinking (at half size, about 200 of the 1,711 embedded validation nuclei are 3
pixels across or less, and a 1-pixel line takes a large share of such a nucleus), so the better road keeps
the images at their own size and trains on random crops of them (``weighted_dataset(crop_size=...)``):
masks and weights are computed once at full size and cropped with the images.

**Augmentation** must keep the 1-pixel lines: resampling a mask with nearest neighbour after a rotation
by any angle, a zoom or an elastic deformation breaks them here and there, and merged nuclei come back
(on the embedded validation images, about 8% of the separated objects contained two nuclei after the
default augmentation; rotation, elastic deformation and zoom each did it, flips, quarter turns and
shifts never). So :func:`weighted_dataset` augments with :data:`SEPARATION_SAFE` by default: every
photometric transform, and only the geometric ones that move whole pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import tensorflow as tf
from PIL import Image

from unet_helpers import data, windows
from unet_helpers.augment import AugmentOptions, augment_dataset
from unet_helpers.errors import UnetTutorialError

# The default augmentation of weighted_dataset: the series' default without the transforms that resample a
# mask between pixels (any-angle rotation, zoom, elastic deformation), which break the 1-pixel lines.
SEPARATION_SAFE = AugmentOptions(rotate=False, zoom=False, elastic=False)
# PIL modes of an image of integer labels: 8-bit gray, palette indices, 16- and 32-bit integers.
LABEL_MODES = {"L", "P", "I", "I;16", "I;16L", "I;16B", "I;16N"}
# The ridge is computed within this many sigmas of each nucleus: beyond, d1 + d2 exceeds it and the ridge
# is below w0 * 1e-6 (exp(-5.26**2 / 2) = 1e-6), so it is left out.
RIDGE_REACH = math.sqrt(2.0 * math.log(1e6))


def _labels(instances: np.ndarray, caller: str) -> np.ndarray:
    """``instances`` as int32 (H, W), or a one-line error if it is no label image."""
    labels = np.asarray(instances)
    shape = labels.shape
    if labels.ndim == 3 and shape[-1] == 1:
        labels = labels[..., 0]
    if labels.ndim != 2:
        raise UnetTutorialError(f"{caller} takes one label image, (H, W) or (H, W, 1); got shape {shape}.")
    if labels.dtype.kind == "f" and not np.array_equal(labels, np.round(labels)):
        raise UnetTutorialError(f"{caller}: the labels hold fractions; give whole numbers, 0 = background.")
    if labels.dtype.kind not in "biuf" or (labels.size and (labels.min() < 0 or labels.max() >= 2**31)):
        raise UnetTutorialError(
            f"{caller}: give labels as whole numbers from 0 (background) to 2**31 - 1; got {labels.dtype} "
            f"values from {labels.min()} to {labels.max()}."
        )
    return labels.astype(np.int32)


def separate_touching(instances: np.ndarray) -> np.ndarray:
    """The union of the instances with a 1-pixel background line wherever two of them touch.

    Of any two 8-adjacent pixels of different instances, the pixel of the larger instance (more pixels;
    at equal size, the higher label) becomes background: the larger one can spare a pixel, while small
    nuclei, a few pixels at training resolution, would vanish. So no two pixels of different instances
    stay 8-adjacent, and every 8-connected component of the result lies within one instance. Instances
    that touch nothing are kept whole; one that is all border (a thin sliver along a smaller one) can lose
    pixels, split, or vanish.

    Args:
        instances: (H, W) or (H, W, 1) whole numbers, 0 = background, 1..N one number per instance.

    Returns:
        uint8 (H, W) mask, 0 = background, 1 = object.
    """
    labels = _labels(instances, "separate_touching")
    values, index, areas = np.unique(labels, return_inverse=True, return_counts=True)
    # Rank the instances by area, then label (a strict order: of two touching pixels exactly one goes).
    order = np.lexsort((values, areas))
    rank = np.empty(order.size, np.int64)
    rank[order] = np.arange(1, order.size + 1)
    ranked = np.where(labels > 0, rank[index.reshape(labels.shape)], 0)
    height, width = labels.shape
    padded = np.pad(ranked, 1)
    line = np.zeros(labels.shape, bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            neighbour = padded[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]
            line |= (neighbour > 0) & (neighbour < ranked)
    return ((labels > 0) & ~line).astype(np.uint8)


def class_balance(masks: np.ndarray) -> tuple[float, float]:
    """The paper's class-balancing weights ``(background, object)`` of one mask or a whole set of masks.

    Each class weighs ``pixels / (2 * pixels of that class)``, so both classes carry half the total weight
    (1 each when they are equally common); a class without pixels gets 0.

    Args:
        masks: any shape, 0 = background, anything else = object.
    """
    objects = np.count_nonzero(masks)
    total = np.size(masks)
    counts = (total - objects, objects)
    return tuple(total / (2.0 * count) if count else 0.0 for count in counts)


def _bounding_boxes(labels: np.ndarray) -> list[tuple[int, ...]]:
    """``(label, top, bottom, left, right)`` of every nonzero label, bounds inclusive."""
    rows, columns = np.nonzero(labels)
    if rows.size == 0:
        return []
    values = labels[rows, columns]
    order = np.argsort(values, kind="stable")  # each label's pixels in one run
    rows, columns, values = rows[order], columns[order], values[order]
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    boxes = zip(
        values[starts],
        np.minimum.reduceat(rows, starts),
        np.maximum.reduceat(rows, starts),
        np.minimum.reduceat(columns, starts),
        np.maximum.reduceat(columns, starts),
        strict=True,
    )
    return [tuple(int(value) for value in box) for box in boxes]


def _two_nearest(labels: np.ndarray, reach: int) -> tuple[np.ndarray, np.ndarray]:
    """Distances (float32, pixels) to the nearest and second-nearest instance; inf beyond ``reach``."""
    height, width = labels.shape
    nearest = np.full(labels.shape, np.inf, np.float32)
    second = np.full(labels.shape, np.inf, np.float32)
    for label, top, bottom, left, right in _bounding_boxes(labels):
        # Only within `reach` of the instance can it be the nearest or second nearest that matters.
        window = (
            slice(max(top - reach, 0), min(bottom + reach + 1, height)),
            slice(max(left - reach, 0), min(right + reach + 1, width)),
        )
        outside = (labels[window] != label).astype(np.uint8)
        # Euclidean distance to the nearest pixel of this instance (0 on it). OpenCV's is a bit off in the
        # last place at some pixels, and which ones varies from call to call (5.0, measured); the squared
        # distance is a whole number, so rounding it gives the exact distance, the same on every call.
        distance = cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE).astype(np.float64)
        distance = np.sqrt(np.round(distance**2)).astype(np.float32)
        near, far = nearest[window], second[window]  # views: updated in place
        np.minimum(far, np.maximum(near, distance), out=far)
        np.minimum(near, distance, out=near)
    return nearest, second


def border_weights(
    instances: np.ndarray,
    *,
    w0: float = 10.0,
    sigma: float = 5.0,
    class_weights: tuple[float, float] | None = None,
) -> np.ndarray:
    """The UNet paper's weight map: class balance plus a ridge between instances that nearly touch.

    ``w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))**2 / (2 * sigma**2))`` on background pixels, and
    ``w_c(x)`` on object pixels (Ronneberger et al. 2015, eq. 2). ``d1`` and ``d2`` are the Euclidean
    distances, in pixels between pixel centres, to the nearest pixel of the nearest and of the
    second-nearest *instance*, from the labels: two touching nuclei are two instances, where the connected
    components of a union mask would see one. With fewer than two instances there is no ridge. The ridge
    is left out where ``d1 + d2`` exceeds ``RIDGE_REACH * sigma`` (5.3 sigma), where it is below
    ``w0 * 1e-6``: far from any pair of nuclei the weight is exactly ``w_c``.

    Give it labels with gaps between touching instances (:func:`targets` does that): on the labels as
    read, touching instances have no background pixel between them to carry the ridge.

    Speed: one distance transform per instance, within its bounding box widened by 5.3 sigma. With
    :func:`separate_touching` (:func:`targets`), on the embedded nuclei's 256x256 training images: 11 ms
    per image in the median, 27 ms for the slowest (129 nuclei), on a 2-core CPU
    (``benchmarks/border_weights.py --weight-maps-only``).

    Args:
        instances: (H, W) or (H, W, 1) whole numbers, 0 = background, 1..N one number per instance.
        w0: height of the ridge (10 in the paper).
        sigma: width of the ridge, in pixels (5 in the paper, for about 512x512 images).
        class_weights: ``(background, object)`` weights ``w_c``; default: this image's own, as in the
            paper (:func:`class_balance`). Per image they explode on an image with one small nucleus,
            so for training pass the weights of the whole set (:func:`weighted_dataset` does).

    Returns:
        float32 (H, W) weights, > 0 wherever ``w_c`` is.

    Raises:
        UnetTutorialError: no label image, or ``w0``, ``sigma`` or ``class_weights`` out of range.
    """
    labels = _labels(instances, "border_weights")
    if not w0 >= 0 or not sigma > 0:
        raise UnetTutorialError(f"border_weights: w0={w0}, sigma={sigma}; give w0 >= 0 and sigma > 0.")
    objects = labels > 0
    if class_weights is None:
        class_weights = class_balance(objects)
    elif len(class_weights) != 2 or not all(weight >= 0 for weight in class_weights):
        raise UnetTutorialError(
            f"border_weights: class_weights={class_weights!r}; give (background, object), two numbers >= 0."
        )
    weights = np.where(objects, np.float32(class_weights[1]), np.float32(class_weights[0]))
    if w0 > 0:
        nearest, second = _two_nearest(labels, reach=math.ceil(RIDGE_REACH * sigma))
        ridge = w0 * np.exp(-((nearest + second) ** 2) / (2.0 * sigma**2))
        weights = weights + np.where(objects, 0.0, ridge)
    return weights.astype(np.float32)


def targets(
    instances: np.ndarray,
    *,
    w0: float = 10.0,
    sigma: float = 5.0,
    class_weights: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The training target and weights of one label image, at the resolution it is given in.

    :func:`separate_touching`, then :func:`border_weights` of the separated labels, so the ridge lies
    in the new 1-pixel lines between touching nuclei (there d1 = d2 = 1) and in the narrow gaps.

    Args:
        instances: (H, W) or (H, W, 1) whole numbers, 0 = background, 1..N one number per instance, at
            the training resolution (resize first, see the module docstring).
        w0, sigma, class_weights: as for :func:`border_weights`.

    Returns:
        ``(mask, weights)``: uint8 (H, W) 0/1 separated mask; float32 (H, W) weights.
    """
    labels = _labels(instances, "targets")
    separated = labels * separate_touching(labels)
    weights = border_weights(separated, w0=w0, sigma=sigma, class_weights=class_weights)
    return (separated > 0).astype(np.uint8), weights


def merged_objects(
    true_instances: np.ndarray, predicted: np.ndarray, *, min_share: float = 0.5
) -> np.ndarray:
    """The predicted objects that merge nuclei: each holds more than ``min_share`` of two or more of them.

    The objects are the 8-connected components of the predicted mask, as ``instance_metrics.match_instances``
    counts them. An object that holds most of two nuclei matches at most one of them (IoU >= 0.5 with
    neither, usually), so each merge costs at least one nucleus in the instance counts, while the pixel
    Dice can stay high: every pixel of both nuclei is "found".

    Args:
        true_instances: (H, W) or (H, W, 1) labels, 0 = background, 1..N one number per nucleus.
        predicted: the same height and width: a 0/1 (or bool) mask, or probabilities (object where > 0.5).
        min_share: the share of a nucleus's pixels an object must hold to count as holding it, in
            [0.5, 1): from 0.5 up, a nucleus is held by one object at most.

    Returns:
        bool (H, W): True on the pixels of every merging object.

    Raises:
        UnetTutorialError: shapes that differ, or ``min_share`` out of range.
    """
    labels = _labels(true_instances, "merged_objects")
    found = np.asarray(predicted)
    if found.ndim == 3 and found.shape[-1] == 1:
        found = found[..., 0]
    if found.shape != labels.shape:
        raise UnetTutorialError(
            f"merged_objects: true_instances {np.shape(true_instances)} and predicted {np.shape(predicted)} "
            "differ in size; give one label image and one prediction of the same image."
        )
    if not 0.5 <= min_share < 1:
        raise UnetTutorialError(f"merged_objects: min_share={min_share}; give a share in [0.5, 1).")
    found = found > 0.5 if found.dtype.kind == "f" else found > 0
    _, components = cv2.connectedComponents(found.astype(np.uint8), connectivity=8)
    # Shared pixels of every (nucleus, object) pair, from the pixels where both are present.
    both = (labels > 0) & (components > 0)
    if not both.any():
        return np.zeros(labels.shape, bool)
    pairs, shared = np.unique(np.stack([labels[both], components[both]]), axis=1, return_counts=True)
    label_ids, areas = np.unique(labels, return_counts=True)
    nucleus_areas = areas[np.searchsorted(label_ids, pairs[0])]
    held = pairs[1][shared > min_share * nucleus_areas]  # the object of every nucleus it holds
    objects, counts = np.unique(held, return_counts=True)
    return np.isin(components, objects[counts >= 2])


def _resize_labels(labels: np.ndarray, image_size: int) -> np.ndarray:
    # Nearest neighbour copies label numbers, never blends them; the same rule data.load_dataset resizes
    # masks with, so the resized labels cover exactly the resized mask's nucleus pixels.
    resized = tf.image.resize(labels[..., np.newaxis], [image_size, image_size], method="nearest")
    return resized.numpy()[..., 0]


def read_instances(path: str | Path, *, image_size: int | None = None) -> np.ndarray:
    """Read an instance-label PNG (16- or 8-bit gray: 0 = background, 1..N one number per nucleus).

    Args:
        path: the file.
        image_size: resize to ``image_size`` x ``image_size`` with nearest neighbour (label numbers stay
            exact; the aspect ratio is not kept, as in ``data.load_dataset``); None keeps the file's size.

    Returns:
        int32 (H, W) labels, >= 0.

    Raises:
        UnetTutorialError: the file is missing, unreadable, or holds no integer labels (colour, float).
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            mode, labels = image.mode, np.asarray(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise UnetTutorialError(
            f"cannot read instance labels '{path}' ({error}): export it again as a 16-bit gray PNG."
        ) from None
    if mode not in LABEL_MODES or labels.min() < 0:
        raise UnetTutorialError(
            f"'{path}' holds {mode} pixels, which are no instance labels: save it as a 16-bit gray PNG, "
            "0 = background and 1..N one number per nucleus."
        )
    labels = labels.astype(np.int32)
    return labels if image_size is None else _resize_labels(labels, image_size)


class InstanceSplit(NamedTuple):
    """One split of a dataset folder with instance labels, as :func:`load_split` returns it.

    Attributes:
        images: float32 (N, S, S, 3) in [0, 1], exactly as ``data.load_dataset`` gives them.
        instances: int32 (N, S, S) labels, 0 = background, resized with nearest neighbour.
        names: the N file stems, in the order of the arrays.
    """

    images: np.ndarray
    instances: np.ndarray
    names: list[str]


def _instance_files(folder: Path, pairs: Sequence[data.Pair]) -> list[Path]:
    """The instance file of every pair's image (same stem), or a one-line error naming the missing."""
    if not folder.is_dir():
        raise UnetTutorialError(
            f"'{folder}' does not exist: pass instances='...' with the folder of instance-label PNGs."
        )
    files = {path.stem: path for path in folder.iterdir() if not path.name.startswith(".")}
    missing = [pair.image for pair in pairs if pair.image.stem not in files]
    if missing:
        raise UnetTutorialError(
            f"{len(missing)} image(s) have no instance labels in '{folder}': '{missing[0].name}' "
            f"(expected '{missing[0].stem}.png'); add them or move these images out."
        )
    return [files[pair.image.stem] for pair in pairs]


def load_split(
    root: str | Path,
    *,
    image_size: int,
    split: str = "train",
    seed: int = 0,
    validation_fraction: float = 0.2,
    images: str = "images",
    masks: str = "masks",
    instances: str = "instances",
    progress: bool = True,
) -> InstanceSplit:
    """One split of a dataset folder with ``images/``, ``masks/`` and ``instances/``, as NumPy arrays.

    The split holds exactly the files ``data.load_dataset(root, split=split, seed=seed,
    validation_fraction=validation_fraction)`` holds (the same ``data.scan_dataset`` and
    ``data.split_pairs``), in natural name order, and the images are resized as there (bilinear with
    antialiasing, to S x S, stored to 16 bits), so both loaders give the same images.

    Args:
        root: the dataset folder; every image needs a mask (for the split) and an instance file of the
            same stem.
        image_size: S, the height and width of every output image and label image.
        split, seed, validation_fraction: as for ``data.load_dataset``.
        images, masks, instances: the subfolders of ``root``.
        progress: show a progress bar while the files are checked.

    Returns:
        :class:`InstanceSplit` ``(images, instances, names)``.

    Raises:
        UnetTutorialError: what ``data.scan_dataset`` finds, a missing instance file, or an instance file
            of another size than its image; the message names the file.
    """
    scan = data.scan_dataset(root, images=images, masks=masks, progress=progress)
    pairs = data.split_pairs(scan.pairs, split=split, validation_fraction=validation_fraction, seed=seed)
    if not pairs:
        raise UnetTutorialError(
            f"the {split} split of '{scan.root}' is empty ({len(scan.pairs)} pairs, "
            f"validation_fraction={validation_fraction}): add images or change validation_fraction."
        )
    label_files = _instance_files(scan.root / instances, pairs)
    image_arrays, label_arrays = [], []
    for pair, label_file in zip(pairs, label_files, strict=True):
        image = data.read_image(pair.image)
        labels = read_instances(label_file)
        if labels.shape != image.shape[:2]:
            raise UnetTutorialError(
                f"instance labels '{label_file}' are {labels.shape[1]}x{labels.shape[0]} pixels but their "
                f"image '{pair.image}' is {image.shape[1]}x{image.shape[0]}: they must match pixel for pixel."
            )
        resized = tf.image.resize(image, [image_size, image_size], method="bilinear", antialias=True)
        # Rounded to 16 bits, as data.load_dataset caches images: both loaders give identical images.
        image_arrays.append(tf.round(tf.clip_by_value(resized, 0.0, 1.0) * 65535.0).numpy() / 65535.0)
        label_arrays.append(_resize_labels(labels, image_size))
    return InstanceSplit(
        images=np.stack(image_arrays).astype(np.float32),
        instances=np.stack(label_arrays),
        names=[pair.image.stem for pair in pairs],
    )


def weighted_dataset(
    images: np.ndarray,
    instances: np.ndarray,
    *,
    batch_size: int,
    seed: int = 0,
    augment: bool | AugmentOptions = False,
    shuffle: bool = True,
    weights: bool = True,
    w0: float = 10.0,
    sigma: float = 5.0,
    class_weights: tuple[float, float] | None = None,
    crop_size: int | None = None,
) -> tf.data.Dataset:
    """A ``tf.data.Dataset`` of ``(image, mask, weights)`` batches for ``model.fit``, from instance labels.

    Each label image becomes its :func:`targets` (separated mask and border weights) once, in NumPy, at the
    size it is given in; then one chain: from_tensor_slices, shuffle, random crops (with ``crop_size``),
    batch, augment (the weights move with the masks), prefetch. Keras passes the third element to the loss
    as per-pixel ``sample_weight``; the compiled metrics stay unweighted (``metrics=`` are updated without
    sample weights).

    The class weights ``w_c`` are those of the whole given set (:func:`class_balance` of all its
    separated masks, before any crop), the same for every image: per image, as in the paper, an image with
    one small nucleus would give that nucleus a weight in the hundreds.

    Two datasets made with the same ``seed`` from images of the same number and size give the same images
    and masks in the same order, crops and augmentation included, whatever ``weights`` and the labels are:
    ``weights=False`` and ``weights=True`` train on the same pixels, and so does the union mask (labels
    ``instances > 0``: one label per image, nothing to separate).

    Args:
        images: float32 (N, S, S, C) in [0, 1], e.g. :func:`load_split`'s.
        instances: (N, S, S) or (N, S, S, 1) labels at the same resolution.
        batch_size: images per batch.
        seed: seeds the shuffling, the crops and the augmentation.
        augment: False; True for :data:`SEPARATION_SAFE` (the series' default without the transforms that
            break the separating lines, see the module docstring); or an ``augment.AugmentOptions``.
        shuffle: reshuffle every epoch (False for validation).
        weights: False gives ``(image, mask)`` batches with the same separated masks, e.g. for
            validation data, whose loss then matches the plain loss.
        w0, sigma: as for :func:`border_weights`.
        class_weights: ``(background, object)``; default: the whole set's.
        crop_size: cut every image (with its mask and weights) to a random ``crop_size`` x ``crop_size``
            window, drawn anew every epoch, e.g. to train at the images' own scale on a network of the
            profile's size; at most S (S gives the images whole). None: the images whole.

    Returns:
        Batches of images float32 (B, S', S', C), masks float32 (B, S', S', 1) 0/1, and (with ``weights``)
        weights float32 (B, S', S', 1) > 0, where S' is ``crop_size`` or S.

    Raises:
        UnetTutorialError: labels that do not fit the images, or ``crop_size`` out of range.
    """
    images = np.asarray(images, np.float32)
    labels = [_labels(one, "weighted_dataset") for one in instances]
    if images.ndim != 4 or [one.shape for one in labels] != [images.shape[1:3]] * len(images):
        raise UnetTutorialError(
            f"weighted_dataset: images {images.shape} and instances {np.shape(instances)} do not fit: give "
            "images (N, S, S, C) and one label image (S, S) per image."
        )
    if crop_size is not None and not (
        isinstance(crop_size, int | np.integer) and 1 <= crop_size <= min(images.shape[1:3])
    ):
        raise UnetTutorialError(
            f"weighted_dataset: crop_size={crop_size!r} for images of {images.shape[2]}x{images.shape[1]}; "
            "give a whole number from 1 to their size, or None for whole images."
        )
    # What targets() does, in two passes: the set's class weights need all separated masks first.
    separated = [one * separate_touching(one) for one in labels]
    masks = np.stack(separated)[..., np.newaxis] > 0
    columns = (images, masks.astype(np.float32))
    if weights:
        class_weights = class_balance(masks) if class_weights is None else class_weights
        maps = [border_weights(one, w0=w0, sigma=sigma, class_weights=class_weights) for one in separated]
        columns += (np.stack(maps)[..., np.newaxis],)

    dataset = tf.data.Dataset.from_tensor_slices(columns)
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    if crop_size is not None:
        dataset = windows.random_windows(dataset, window_size=int(crop_size), seed=seed)
    dataset = dataset.batch(batch_size)
    if augment is not False and augment is not None:
        options = SEPARATION_SAFE if augment is True else augment
        dataset = augment_dataset(dataset, seed=seed, options=options)
    return dataset.prefetch(tf.data.AUTOTUNE)
