"""Windows of images kept at their own size: random ones to train on, and the tiles that cover an image.

By default the series squeezes every image to ``image_size`` x ``image_size``, so a 520x696 image loses
nine pixels in ten and its objects shrink fourfold while a 256x256 one's shrink twofold. With
``data.load_splits(scale=1.0)`` every image keeps its own size (times ``scale``) instead: training sees
:func:`random_windows` of ``image_size``, validation the :func:`tiles` that cover each image once, so
the model learns and is scored at one scale, the scale ``predict --scale`` gives new images. The command
line's default, ``--scale auto`` (:mod:`~unet_helpers.scales`), does so for thin structures and for a
folder of several image sizes.

Images smaller than a window, and the last row and column of tiles, are filled out by mirroring the image
(as ``inference.predict_tiled`` fills its borders); the mask there holds ``IGNORE_CLASS``, so the filled
pixels count in no loss and no score: Dice pooled over the tiles is the Dice of the whole images.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from unet_helpers.mask_classes import IGNORE_CLASS

# Folded into each element's seed, so that the windows draw apart from the augmentation, which folds the
# same seeds with its own small stream numbers (augment._STREAMS).
_WINDOW_STREAM = 0x63726F70  # "crop" in ASCII


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """``height`` x ``width`` times ``scale``, rounded as :func:`scaled_size_in_graph` rounds (float32,
    half to even), at least 1 pixel."""
    sides = np.round(np.float32([height, width]) * np.float32(scale))
    return max(int(sides[0]), 1), max(int(sides[1]), 1)


def scaled_size_in_graph(shape: tf.Tensor, scale: float) -> tf.Tensor:
    """:func:`scaled_size` of an image's ``tf.shape`` (its first two entries), as an int32 tensor [2]."""
    sides = tf.round(tf.cast(shape[:2], tf.float32) * tf.constant(scale, tf.float32))
    return tf.maximum(tf.cast(sides, tf.int32), 1)


def tile_count(height: int, width: int, tile_size: int) -> int:
    """How many ``tile_size`` tiles :func:`tiles` cuts an image of ``height`` x ``width`` into."""
    return -(-height // tile_size) * -(-width // tile_size)


def _mirrored(image: tf.Tensor, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """``image`` (H, W, C) extended at the bottom and right to ``height`` x ``width`` by mirroring it
    (``abc`` -> ``abccba abc...``), as often as it takes."""

    def positions(size: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
        steps = tf.range(target) % (2 * size)
        return tf.where(steps < size, steps, 2 * size - 1 - steps)

    shape = tf.shape(image)
    image = tf.gather(image, positions(shape[0], height), axis=0)
    return tf.gather(image, positions(shape[1], width), axis=1)


def pad_pair(image: tf.Tensor, mask: tf.Tensor, height: tf.Tensor, width: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """A pair filled out to at least ``height`` x ``width``: the image (H, W, C) mirrored, the mask
    (H, W, 1) with ``IGNORE_CLASS`` in the new pixels."""
    shape = tf.shape(mask)
    height, width = tf.maximum(height, shape[0]), tf.maximum(width, shape[1])
    padding = [[0, height - shape[0]], [0, width - shape[1]], [0, 0]]
    return tf.cond(  # no copy of a pair that is large enough
        tf.reduce_any(tf.stack([height, width]) > shape[:2]),
        lambda: (_mirrored(image, height, width), tf.pad(mask, padding, constant_values=IGNORE_CLASS)),
        lambda: (image, mask),
    )


def random_windows(dataset: tf.data.Dataset, *, window_size: int, seed: int) -> tf.data.Dataset:
    """Every element of ``dataset`` (a tuple of (H, W, channels) tensors) cut to one random window.

    All parts of an element share one ``window_size`` x ``window_size`` window, so an image, its mask and
    its weights stay aligned pixel for pixel; each element may have a size of its own, at least
    ``window_size`` on both sides (:func:`pad_pair` fills smaller ones out). The windows come from
    ``tf.data.Dataset.random(seed, rerandomize_each_iteration=True)``: the same seed gives the same
    windows, and every epoch draws new ones.
    """
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

    def cut(parts: tuple[tf.Tensor, ...], element_seed: tf.Tensor) -> tuple[tf.Tensor, ...]:
        window_seed = tf.random.experimental.stateless_fold_in(element_seed, _WINDOW_STREAM)
        # A uniform draw in [0, 1) per axis, scaled to the positions a window can take on that axis.
        draws = tf.random.stateless_uniform([2], window_seed)
        room = tf.shape(parts[0])[:2] - window_size + 1
        corner = tf.minimum(tf.cast(draws * tf.cast(room, tf.float32), tf.int32), room - 1)  # float rounding
        return tuple(
            tf.slice(part, tf.concat([corner, [0]], 0), [window_size, window_size, -1]) for part in parts
        )

    return tf.data.Dataset.zip(dataset, seeds).map(
        cut, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )


def tiles(image: tf.Tensor, mask: tf.Tensor, *, tile_size: int) -> tf.data.Dataset:
    """The ``tile_size`` x ``tile_size`` tiles that cover a pair once, row by row, as a dataset of pairs.

    The image (H, W, C) is mirrored and the mask (H, W, 1) filled with ``IGNORE_CLASS`` out to the next
    multiples of ``tile_size``; :func:`tile_count` says how many tiles come out.
    """
    shape = tf.shape(mask)
    rows, columns = -(-shape[0] // tile_size), -(-shape[1] // tile_size)
    padded = pad_pair(image, mask, rows * tile_size, columns * tile_size)

    def cut(part: tf.Tensor) -> tf.Tensor:  # (rows * T, columns * T, C) -> (rows * columns, T, T, C)
        channels = part.shape[-1] or tf.shape(part)[-1]
        part = tf.reshape(part, [rows, tile_size, columns, tile_size, channels])
        return tf.reshape(
            tf.transpose(part, [0, 2, 1, 3, 4]), [rows * columns, tile_size, tile_size, channels]
        )

    return tf.data.Dataset.from_tensor_slices(tuple(cut(part) for part in padded))
