"""The scale a folder trains at when none is given (``scale="auto"``, the command line's default).

Squeezing every image to ``image_size`` x ``image_size`` suits a folder of one image size: every image
shrinks by the same factor, and new images of that size are predicted at it. When sizes differ, each image
shrinks by its own factor (a 520x696 nucleus image fourfold, a 256x256 one twofold), so the network
learns the same objects at several sizes and no one prediction scale matches them all. Such a folder
trains at the images' own size instead (:mod:`~unet_helpers.windows`: random windows, validation on the
tiles that cover each image), unless its objects are too large for a window (a skin lesion filling a
photograph): then squeezing keeps each one whole. Measured in benchmarks/README.md ("Windows at the
images' own scale").
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

import cv2
import numpy as np
import tensorflow as tf
from PIL import Image

from unet_helpers import images as image_files
from unet_helpers import mask_classes

# Objects wider than this share of a window (median, as a disc of the same area) are cut apart by most
# windows: squeeze instead. DSB 2018 nuclei are 15 to 25 pixels across at their own size, polyps and skin
# lesions hundreds.
OBJECT_SHARE_OF_WINDOW = 1 / 3
# Regions of fewer pixels are specks (a JPEG mask's noise, a stray label), not objects: not measured.
SPECK_PIXELS = 16
# Masks read to measure the objects: evenly spread over the folder, enough for a stable median.
MASKS_MEASURED = 48


class Pair(Protocol):
    """What this module reads of a ``data.Pair`` (``data`` imports this module, so not that class)."""

    image: Path
    mask: Path
    mask_via_python: bool


class Scan(Protocol):
    """What this module reads of a ``data.DatasetScan``."""

    pairs: tuple[Pair, ...]
    stored_values: tuple[int, ...]
    class_of_value: tuple[int, ...]
    color_masks: bool


class ScaleChoice(NamedTuple):
    """What :func:`choose_scale` decided: ``scale`` (None: squeeze; a factor: windows at the images' own
    size times it) and ``reason``, one sentence for the user."""

    scale: float | None
    reason: str


def image_sizes(pairs: Sequence[Pair]) -> list[tuple[int, int]]:
    """Each pair's image (height, width), read from the file headers only."""
    sizes = []
    for pair in pairs:
        with Image.open(pair.image) as image:
            sizes.append((image.height, image.width))
    return sizes


def object_diameters(scan: Scan, *, count: int = MASKS_MEASURED) -> np.ndarray:
    """Sizes of the objects in ``count`` masks spread evenly over the scan, in pixels at their own size.

    An object is a connected region (8-neighbours) of any class but 0 (background) and ``IGNORE_CLASS``;
    its size is the diameter of a disc of the same area. Returns float64 (number of objects,).
    """
    to_classes = mask_classes.class_lookup(
        scan.stored_values, scan.class_of_value, color_masks=scan.color_masks
    )
    picked = np.unique(np.linspace(0, len(scan.pairs) - 1, min(count, len(scan.pairs))).round().astype(int))
    areas = []
    for index in picked:
        pair = scan.pairs[index]
        stored = image_files.decode_mask(
            tf.constant(str(pair.mask)), tf.constant(pair.mask_via_python), scan.color_masks
        )
        classes = to_classes(stored).numpy()
        foreground = ((classes != 0) & (classes != mask_classes.IGNORE_CLASS)).astype(np.uint8)
        _, _, stats, _ = cv2.connectedComponentsWithStats(foreground, connectivity=8)
        areas.append(stats[1:, cv2.CC_STAT_AREA])  # row 0 is the background
    return np.sqrt(4 / np.pi * np.concatenate(areas).astype(np.float64))


def choose_scale(scan: Scan, *, image_size: int) -> ScaleChoice:
    """Squeeze a folder of one image size, or of large objects; else train at the images' own size.

    Args:
        scan: what ``data.scan_dataset`` found (every pair: both splits decide alike).
        image_size: the side of the squeezed images and of the windows, in pixels.
    """
    sizes = image_sizes(scan.pairs)
    if len(set(sizes)) == 1:
        return ScaleChoice(
            None, f"every image is {sizes[0][0]}x{sizes[0][1]}: squeezed to {image_size} pixels"
        )
    heights, widths = np.array(sizes).T
    if np.median(np.minimum(heights, widths)) < image_size:
        return ScaleChoice(None, f"most images are narrower than {image_size} pixels: squeezed to it")
    diameters = object_diameters(scan)
    diameters = diameters[np.pi / 4 * diameters**2 >= SPECK_PIXELS]
    if not diameters.size:
        return ScaleChoice(None, "the masks measured hold no objects: squeezed")
    median = float(np.median(diameters))
    if median > OBJECT_SHARE_OF_WINDOW * image_size:
        return ScaleChoice(
            None, f"objects are large (median {median:.0f} pixels across): squeezed to {image_size} pixels"
        )
    return ScaleChoice(
        1.0,
        f"images of {len(set(sizes))} sizes with small objects (median {median:.0f} pixels across): "
        f"trained on {image_size}x{image_size} windows at their own size (scale 1)",
    )
