"""The scale a folder trains at when none is given (``scale="auto"``, the command line's default).

Squeezing every image to ``image_size`` x ``image_size`` suits a folder of one image size: every image
shrinks by the same factor, and new images of that size are predicted at it. When sizes differ, each image
shrinks by its own factor (a 520x696 nucleus image fourfold, a 256x256 one twofold), so the network
learns the same objects at several sizes and no one prediction scale matches them all. Such a folder
trains at the images' own size instead (:mod:`~unet_helpers.windows`: random windows, validation on the
tiles that cover each image), unless its objects are too large for a window (a skin lesion filling a
photograph): then squeezing keeps each one whole. A folder of one size trains at its own size too when
squeezing would thin its structures out (membranes, vessels, the gaps between cells: under
``THIN_PIXELS`` wide once squeezed). Measured in benchmarks/README.md ("Windows at the images' own scale").
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
# Structures narrower than this once squeezed (pixels, median) lose their shape in the squeezed mask: train at
# the images' own size. ISBI 2012's membranes, 6 pixels wide, are 3 at 256 and 1.5 at 128; the embedded
# nuclei (13) 6.6 at 128.
THIN_PIXELS = 4
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


def read_masks(scan: Scan, *, count: int = MASKS_MEASURED) -> list[np.ndarray]:
    """``count`` masks spread evenly over the scan (all of them if fewer): class indices, uint8 (H, W)."""
    to_classes = mask_classes.class_lookup(
        scan.stored_values, scan.class_of_value, color_masks=scan.color_masks
    )
    picked = np.unique(np.linspace(0, len(scan.pairs) - 1, min(count, len(scan.pairs))).round().astype(int))
    masks = []
    for index in picked:
        pair = scan.pairs[index]
        stored = image_files.decode_mask(
            tf.constant(str(pair.mask)), tf.constant(pair.mask_via_python), scan.color_masks
        )
        masks.append(to_classes(stored).numpy())
    return masks


def _foreground(mask: np.ndarray) -> np.ndarray:
    return ((mask != 0) & (mask != mask_classes.IGNORE_CLASS)).astype(np.uint8)


def object_diameters(masks: list[np.ndarray], *, min_pixels: int = 1) -> np.ndarray:
    """The size of every object of ``min_pixels`` or more in ``masks``, in pixels: the diameter of a disc
    of the same area.

    An object is a connected region (8-neighbours) of any class but 0 (background) and ``IGNORE_CLASS``.
    Returns float64 (number of objects,).
    """
    areas = np.concatenate(
        [cv2.connectedComponentsWithStats(_foreground(mask), connectivity=8)[2][1:, cv2.CC_STAT_AREA]
         for mask in masks]
    )  # fmt: skip
    return np.sqrt(4 / np.pi * areas[areas >= min_pixels].astype(np.float64))


def _regions_over(side: np.ndarray, pixels: int) -> np.ndarray:
    """The connected regions (8-neighbours) of the 0/1 array ``side`` of at least ``pixels`` pixels."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats(side, connectivity=8)
    kept = stats[:, cv2.CC_STAT_AREA] >= pixels
    kept[0] = False  # label 0: what is not ``side``
    return kept[labels].astype(np.uint8)


def structure_width(mask: np.ndarray) -> float | None:
    """How wide the narrower side of ``mask`` is, in pixels: foreground (every class but 0) or background.

    A side's width is the median, over the ridge of its distance map (the pixels farthest from the other
    side locally), of twice the distance to the other side: a membrane 6 pixels wide gives 6. Thin
    structures (membranes, vessels, the gaps between cells) give a small width. Ignored pixels count as
    background. None if one side is empty.
    """
    # Specks of either side (a JPEG mask's noise) join the other side first.
    foreground = 1 - _regions_over(1 - _regions_over(_foreground(mask), SPECK_PIXELS), SPECK_PIXELS)
    widths = []
    for side in (foreground, 1 - foreground):
        distance = cv2.distanceTransform(side, cv2.DIST_L2, 5)
        ridge = (distance > 0) & (distance >= cv2.dilate(distance, np.ones((3, 3), np.uint8)))
        if not ridge.any():
            return None
        widths.append(float(np.median(2 * distance[ridge])))
    return min(widths)


def choose_scale(scan: Scan, *, image_size: int) -> ScaleChoice:
    """Train at the images' own size where squeezing thins structures out or mixes magnifications.

    Args:
        scan: what ``data.scan_dataset`` found (every pair: both splits decide alike).
        image_size: the side of the squeezed images and of the windows, in pixels.
    """
    sizes = image_sizes(scan.pairs)
    heights, widths = np.array(sizes).T
    if np.median(np.minimum(heights, widths)) < image_size:
        return ScaleChoice(None, f"most images are narrower than {image_size} pixels: squeezing them to it")
    masks = read_masks(scan)
    # Each mask's narrower side as squeezing leaves it: shrunk by the geometric mean of the two factors.
    squeezed = [
        width * image_size / np.sqrt(mask.size)
        for mask in masks
        if (width := structure_width(mask)) is not None
    ]
    thin = float(np.median(squeezed)) if squeezed else None
    if thin is not None and thin < THIN_PIXELS:
        return ScaleChoice(
            1.0,
            f"thin structures ({thin:.1f} pixels wide once squeezed to {image_size}, median): training on "
            f"{image_size}x{image_size} windows at the images' own size (scale 1)",
        )
    if len(set(sizes)) == 1:
        return ScaleChoice(
            None, f"every image is {sizes[0][0]}x{sizes[0][1]}: squeezing them to {image_size} pixels"
        )
    diameters = object_diameters(masks, min_pixels=SPECK_PIXELS)
    if not diameters.size:
        return ScaleChoice(None, "the masks measured hold no objects: squeezing the images")
    median = float(np.median(diameters))
    if median > OBJECT_SHARE_OF_WINDOW * image_size:
        return ScaleChoice(
            None,
            f"objects are large (median {median:.0f} pixels across): squeezing them to {image_size} pixels",
        )
    return ScaleChoice(
        1.0,
        f"images of {len(set(sizes))} sizes with small objects (median {median:.0f} pixels across): "
        f"training on {image_size}x{image_size} windows at their own size (scale 1)",
    )


def resolve(scale: float | str | None, scan: Scan, *, image_size: int, say: bool = True) -> float | None:
    """``scale`` itself, or for ``"auto"`` :func:`choose_scale`'s choice, said in one line if ``say``."""
    if scale != "auto":
        return scale
    choice = choose_scale(scan, image_size=image_size)
    if say:
        print(f"scale auto: {choice.reason}.", flush=True)
    return choice.scale
