"""Turn the values mask files store into class indices: the rule, the check of every value, the lookup table.

A dataset's masks may store class indices (0/1, 0..K-1, a palette PNG's indices), 0/255, lossy values to
threshold (JPEG), or colours. :func:`class_rule` says which class each stored value is, from the loader's
options; :func:`classes_of_values` checks every value the masks of a dataset hold against it, with an error
that names a mask file; :func:`class_lookup` maps stored values to classes inside the TensorFlow graph.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from unet_helpers.errors import UnetTutorialError
from unet_helpers.images import COLOR_SCALE, GRAY_AS_COLOR

# The class index of pixels to ignore (a dataset's void, an uncertain border): the losses, the metrics
# and the figures leave such pixels out. 255 fits the uint8 masks of the pipeline and no model has
# 256 classes.
IGNORE_CLASS = 255
# With num_classes=2 and no mask_values, these stored values are understood (0/1 and 0/255 masks).
BINARY_VALUES = {0: 0, 1: 1, 255: 1}


def _mapping_key(value: int | tuple[int, int, int]) -> int:
    if isinstance(value, tuple):
        return int(np.dot(value, COLOR_SCALE))
    return int(value)


def class_rule(
    *,
    num_classes: int,
    mask_values: Mapping[int | tuple[int, int, int], int] | None,
    mask_threshold: int | None,
    invert: bool,
    ignore_values: Sequence[int | tuple[int, int, int]] = (),
) -> Callable[[int], int | None]:
    """The class of a stored mask value (colours as ``R * 65536 + G * 256 + B``), or None when it is no class.

    The options are :func:`unet_helpers.data.scan_dataset`'s. A value in ``ignore_values`` is
    :data:`IGNORE_CLASS`, whatever the other options say of it.

    Raises:
        UnetTutorialError: ``mask_values`` maps a value to a class outside ``num_classes``.
    """
    rule = _class_rule(
        num_classes=num_classes, mask_values=mask_values, mask_threshold=mask_threshold, invert=invert
    )
    ignored = {_mapping_key(value) for value in ignore_values}
    if not ignored:
        return rule
    return lambda value: IGNORE_CLASS if value in ignored else rule(value)


def _class_rule(
    *,
    num_classes: int,
    mask_values: Mapping[int | tuple[int, int, int], int] | None,
    mask_threshold: int | None,
    invert: bool,
) -> Callable[[int], int | None]:
    """:func:`class_rule` without ignored values."""
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


def _no_class_error(
    offending: list[Path],
    values: set[int],
    color_masks: bool,
    *,
    num_classes: int,
    mask_values: Mapping[int | tuple[int, int, int], int] | None,
) -> UnetTutorialError:
    shown = ", ".join(_describe(value, color_masks) for value in sorted(values)[:6])
    understood = (
        f"mask_values covers {', '.join(_describe(_mapping_key(k), color_masks) for k in mask_values)}"
        if mask_values is not None
        else "binary masks may hold 0/1 or 0/255"
        if num_classes == 2
        else f"num_classes={num_classes} expects class indices 0 to {num_classes - 1}"
    )
    return UnetTutorialError(
        f"mask '{offending[0]}' holds values {{{shown}}} that are no class ({understood})"
        + (f"; {len(offending) - 1} more mask(s) too" if len(offending) > 1 else "")
        + "; pass mask_values={stored value: class, ...} to map them, ignore_values=[value, ...] to leave "
        + "such pixels out of training and scores (a void class, an uncertain border)"
        + (", or mask_threshold=128 for masks saved as JPEG." if num_classes == 2 else ".")
    )


def classes_of_values(
    masks: Sequence[tuple[Path, frozenset[int], bool]],
    rule: Callable[[int], int | None],
    *,
    num_classes: int,
    mask_values: Mapping[int | tuple[int, int, int], int] | None,
    mask_threshold: int | None = None,
) -> tuple[tuple[int, ...], tuple[int, ...], bool]:
    """Check every value a dataset's masks store against ``rule`` (from :func:`class_rule`).

    Args:
        masks: per mask file, its path, the values it stores and whether it is an RGB mask
            (:func:`unet_helpers.images.stored_mask_values`).
        rule: the class of each stored value.
        num_classes, mask_values: the options ``rule`` was made from, for the error message.
        mask_threshold: given for masks saved lossily (JPEG), whose RGB channels differ by the
            compression's noise: RGB masks are then gray, never colour-coded.

    Returns:
        ``(stored_values, class_of_value, color_masks)``: every stored value, sorted (gray values for gray
        masks saved as RGB); the class of each; whether the masks are colour-coded (RGB with differing
        channels).

    Raises:
        UnetTutorialError: colour-coded masks without ``mask_values``, or values that are no class; the
            message names the first such mask.
    """
    color_masks = mask_threshold is None and any(
        rgb and any(value % GRAY_AS_COLOR for value in values) for _, values, rgb in masks
    )
    if color_masks and mask_values is None:
        path, values, _ = next(mask for mask in masks if mask[2])
        colours = ", ".join(_describe(value, True) for value in sorted(values)[:4])
        raise UnetTutorialError(
            f"mask '{path}' is colour-coded ({colours}): pass mask_values={{(r, g, b): class, ...}} "
            "with one entry per colour."
        )
    if not color_masks:  # gray values saved as RGB: the red channel's, as the pipeline reads them
        masks = [
            (path, frozenset(value // COLOR_SCALE[0] for value in values) if rgb else values, rgb)
            for path, values, rgb in masks
        ]
    stored_values = sorted(set().union(*(values for _, values, _ in masks)))
    bad_values = {value for value in stored_values if rule(value) is None}
    if bad_values:
        offending = [(path, values & bad_values) for path, values, _ in masks if values & bad_values]
        raise _no_class_error(
            [path for path, _ in offending],
            offending[0][1],
            color_masks,
            num_classes=num_classes,
            mask_values=mask_values,
        )
    return tuple(stored_values), tuple(rule(value) for value in stored_values), color_masks


def class_lookup(
    stored_values: Sequence[int], class_of_value: Sequence[int], *, color_masks: bool
) -> Callable[[tf.Tensor], tf.Tensor]:
    """A graph function from stored values (int64) to class indices (uint8); the arguments as
    :func:`classes_of_values` returns them."""
    keys = tf.constant(stored_values, tf.int64)
    classes = tf.constant(class_of_value, tf.int64)
    if not color_masks and stored_values[-1] < 65536:
        # A dense table indexed by the value: much faster than hashing every pixel.
        table = tf.scatter_nd(keys[:, None], classes, [stored_values[-1] + 1])
        return lambda values: tf.cast(tf.gather(table, values), tf.uint8)
    hashed = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, classes), default_value=0)
    return lambda values: tf.cast(hashed.lookup(values), tf.uint8)


def parse_stored_value(text: str) -> int | tuple[int, int, int]:
    """A stored mask value written as text: ``"11"`` -> 11, ``"64,128,64"`` -> (64, 128, 64).

    Raises:
        ValueError: neither a gray value (0 to 65535) nor a colour R,G,B (0 to 255 each).
    """
    try:
        parts = [int(part) for part in re.split(r"[,;: ]+", text.strip())]
    except ValueError:
        parts = []
    if len(parts) == 1 and 0 <= parts[0] < 65536:
        return parts[0]
    if len(parts) == 3 and all(0 <= part < 256 for part in parts):
        return (parts[0], parts[1], parts[2])
    raise ValueError(f"'{text}' is no mask value: give a gray value (0 to 65535) or a colour R,G,B")


def _is_header(cells: list[str]) -> bool:
    """A first line of column names (``name,r,g,b``, ``value,class``): its last cell is no number."""
    return not cells[-1].lstrip("-").isdigit()


def read_mask_values(
    path: Path, *, ignore_values: Sequence[int | tuple[int, int, int]] = ()
) -> tuple[dict[int | tuple[int, int, int], int], tuple[str, ...] | None]:
    """A file that says which stored mask value is which class, as ``mask_values`` for the loader.

    Two forms of CSV (a header line is optional; ``#`` lines are comments):

    - ``value,class`` or ``r,g,b,class`` per line: a stored gray value or colour and its class index;
    - ``name,r,g,b`` per line (``class_dict.csv`` as Kaggle's CamVid and many other datasets ship it): one
      class per line, in order; lines whose colour is in ``ignore_values`` (a void colour) are no class
      and do not count.

    Returns:
        ``(mask_values, class_names)``: class names for the second form, else None.

    Raises:
        UnetTutorialError: a missing file, or a line that is neither form; the message names the line.
    """
    if not path.is_file():
        raise UnetTutorialError(f"mask values file '{path}' does not exist: give the CSV of stored values.")
    ignored = {_mapping_key(value) for value in ignore_values}
    mapping: dict[int | tuple[int, int, int], int] = {}
    names: list[str] = []
    for number, row in enumerate(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()), start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells) or cells[0].startswith("#") or (number == 1 and _is_header(cells)):
            continue  # blank, a comment, or the header
        try:
            if len(cells) == 4 and not cells[0].lstrip("-").isdigit():  # name,r,g,b
                colour = parse_stored_value(",".join(cells[1:]))
                if _mapping_key(colour) not in ignored:
                    mapping[colour], names = len(names), [*names, cells[0]]
            elif len(cells) in (2, 4):
                mapping[parse_stored_value(",".join(cells[:-1]))] = int(cells[-1])
            else:
                raise ValueError("expected value,class or r,g,b,class or name,r,g,b")
        except ValueError as error:
            raise UnetTutorialError(f"'{path}' line {number} ({','.join(cells)}): {error}.") from None
    if not mapping:
        raise UnetTutorialError(f"'{path}' maps no mask value to a class: one line per value or class.")
    return mapping, tuple(names) or None
