"""Read image and mask files, in Python to check them and inside the TensorFlow graph to train on them.

Both ways give the same values. Images become float32 in [0, 1] (8-bit files divided by 255, 16-bit files
by 65535) with 1 or 3 channels: gray is repeated to 3, colour is converted to gray with the weights of
``tf.image.rgb_to_grayscale``, alpha is dropped. Masks become the values they store, int64: a palette PNG
gives its indices (which are the labels), an RGB mask its colours as one integer, ``R * 65536 + G * 256 + B``.
TensorFlow decodes most files in the graph, in parallel; the few it cannot (TIFF, CMYK JPEG, palette,
16-bit or 1-bit masks) are read with OpenCV or PIL through ``tf.numpy_function``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf
from PIL import Image

from unet_helpers.errors import UnetTutorialError

# Formats tf.io.decode_image reads (it looks at the bytes, not the file name; MPO is a multi-picture JPEG).
TF_FORMATS = {"PNG", "JPEG", "MPO", "BMP", "GIF"}
# Mask modes that tf.io.decode_image returns unchanged as 8-bit values. Palette ("P") masks are not among
# them: TensorFlow expands a palette to its colours, PIL keeps the indices, which are the labels.
TF_MASK_MODES = {"L", "RGB", "RGBA"}
# Colours are stored as one integer, R * 65536 + G * 256 + B, so that one lookup table maps every mask.
COLOR_SCALE = (65536, 256, 1)
# A gray value v saved as RGB is stored as v * GRAY_AS_COLOR.
GRAY_AS_COLOR = sum(COLOR_SCALE)


def open_image(path: Path) -> Image.Image:
    """Open and fully decode an image file, so that a truncated file fails here and not mid-epoch.

    Raises:
        UnetTutorialError: the file is missing, damaged, truncated or not an image; the message names it.
    """
    try:
        with Image.open(path) as image:
            image.load()
            return image
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise UnetTutorialError(
            f"cannot read '{path}' ({error}): the file is damaged, truncated or not an image; "
            "export it again or move it out of the folder."
        ) from None


def decodes_with_tensorflow(image: Image.Image) -> bool:
    """Whether TensorFlow decodes this opened image file itself (otherwise it is read with OpenCV or PIL)."""
    return image.format in TF_FORMATS and image.mode != "CMYK"


def _to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """(H, W) or (H, W, C) with C in 1..4 to (H, W, channels), as :func:`decode_image` does in the graph."""
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
        image = open_image(path)
        array = np.asarray(image.convert("L" if image.mode in ("1", "L", "LA") else "RGB"))
    elif array.ndim == 3:
        array = array[..., [2, 1, 0, 3][: array.shape[-1]]] if array.shape[-1] >= 3 else array  # BGR(A)
    if array.dtype not in (np.uint8, np.uint16):
        raise UnetTutorialError(
            f"'{path}' holds {array.dtype} pixels, whose range is unknown: save it as an 8- or 16-bit image."
        )
    return array.astype(np.float32) / (255.0 if array.dtype == np.uint8 else 65535.0)


def stored_mask_values(mask: Image.Image, path: Path) -> tuple[np.ndarray, bool]:
    """The values an opened mask file stores, as int64 (H, W), and whether it is an RGB mask.

    Palette masks give their indices, RGB masks their colours as ``R * 65536 + G * 256 + B``.

    Raises:
        UnetTutorialError: the mask has several channels that are no colour (no label image).
    """
    if mask.mode == "1":
        mask = mask.convert("L")  # 0/255, as TensorFlow decodes a 1-bit PNG
    array = np.asarray(mask)
    if mask.mode in ("RGB", "RGBA"):
        return array[..., :3].astype(np.int64) @ np.array(COLOR_SCALE, dtype=np.int64), True
    if mask.mode == "LA":
        array = array[..., 0]
    if array.ndim != 2:
        raise UnetTutorialError(
            f"mask '{path}' has PIL mode {mask.mode}, which is no label image: save masks as 8-bit "
            "grayscale PNGs (or palette/RGB PNGs with mask_values)."
        )
    return array.astype(np.int64), False


def _as_path(path: bytes | np.ndarray) -> Path:
    """A path handed over by tf.numpy_function: bytes in a graph, a 0-d array when run eagerly."""
    return Path((path.item() if isinstance(path, np.ndarray) else path).decode())


def decode_image(path: tf.Tensor, via_python: tf.Tensor, channels: int) -> tf.Tensor:
    """Read the image file at ``path`` inside the graph: float32 (H, W, channels) in [0, 1].

    ``via_python`` (a bool tensor, from :func:`decodes_with_tensorflow`) reads it with OpenCV or PIL.
    """

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


def decode_mask(path: tf.Tensor, via_python: tf.Tensor, color_masks: bool) -> tf.Tensor:
    """Read the mask file at ``path`` inside the graph: its stored values, int64 (H, W).

    With ``color_masks`` the values are colours, ``R * 65536 + G * 256 + B``; otherwise a gray mask saved as
    RGB gives its gray values. ``via_python`` (a bool tensor, from :func:`mask_decodes_with_tensorflow`)
    reads it with PIL.
    """

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
            values, rgb_mask = stored_mask_values(open_image(_as_path(p)), _as_path(p))
            # A gray mask saved as RGB: its red channel, as decode_image gives it (lossy masks may differ
            # slightly from channel to channel).
            return values if color_masks or not rgb_mask else values // COLOR_SCALE[0]

        return tf.ensure_shape(tf.numpy_function(read, [path], tf.int64, stateful=False), [None, None])

    return tf.cond(via_python, with_python, with_tensorflow)


@dataclass(frozen=True)
class PairReport:
    """What :func:`inspect_pair` found in an image file and its mask file.

    Attributes:
        image_via_python: TensorFlow cannot decode the image; :func:`decode_image` uses OpenCV or PIL.
        mask_via_python: TensorFlow cannot decode the mask to its stored values; :func:`decode_mask` uses PIL.
        values: every value the mask stores (colours for RGB masks, see :func:`stored_mask_values`).
        rgb_mask: the mask is stored as RGB.
    """

    image_via_python: bool
    mask_via_python: bool
    values: frozenset[int]
    rgb_mask: bool


def inspect_pair(image_path: Path, mask_path: Path) -> PairReport:
    """Open an image and its mask once, in full: check that they match, and learn how to read them.

    Raises:
        UnetTutorialError: a file is unreadable, or the mask is not the size of its image.
    """
    image = open_image(image_path)
    mask = open_image(mask_path)
    if image.size != mask.size:
        raise UnetTutorialError(
            f"mask '{mask_path}' is {mask.size[0]}x{mask.size[1]} pixels but its image '{image_path}' is "
            f"{image.size[0]}x{image.size[1]}: a mask must match its image pixel for pixel; "
            "resize the mask with nearest-neighbour interpolation, or re-export the pair."
        )
    values, rgb_mask = stored_mask_values(mask, mask_path)
    return PairReport(
        image_via_python=not decodes_with_tensorflow(image),
        mask_via_python=mask.format not in TF_FORMATS or mask.mode not in TF_MASK_MODES,
        values=frozenset(np.unique(values).tolist()),
        rgb_mask=rgb_mask,
    )
