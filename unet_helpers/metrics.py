"""Segmentation metrics: Dice, IoU and pixel accuracy, pooled over every pixel evaluated.

:func:`segmentation_metrics` gives the metrics the series compiles with, named ``dice``, ``iou`` and
``pixel_accuracy`` (Keras logs them as ``val_dice``, ``val_iou``, ``val_pixel_accuracy``), plus
``dice_<i>`` and ``iou_<i>`` for each class ``i`` of multi-class data. :func:`dice_score` and
:func:`iou_score` compute the same numbers on NumPy arrays, for figures and benchmarks.

**One definition everywhere.** A prediction becomes classes first: a 1-channel sigmoid probability is
class 1 where it is above 0.5 (``p > 0.5``, as ``keras.metrics.BinaryAccuracy`` decides; note that
``keras.metrics.BinaryIoU`` counts ``p >= 0.5``), a K-channel softmax output is the argmax. Then, for each
class, true positives (TP), false positives (FP) and false negatives (FN) are **pooled**: counted over every
pixel of every image since the last reset (a whole validation set in ``model.fit``), like Keras's
``BinaryIoU`` and ``MeanIoU``. From them::

    Dice = 2 TP / (2 TP + FP + FN)        IoU = TP / (TP + FP + FN)

``dice`` and ``iou`` are the mean over the **foreground classes** 1..K-1 (for binary data, class 1 alone):
the background is left out because it covers most pixels and would make every model look good. A class
with no pixel in the truth and none predicted (0 / 0) has nothing to score and is left out of the mean, as
Keras's ``MeanIoU`` does; if no class is left, the score is 1 (nothing to find, nothing found), where Keras
returns 0. Pooled over a whole set, that only happens when the set holds no object at all.

Pooled is not per image: a set of one large and one small object scores close to the large object's Dice.
``dice_score(..., per_image=True)`` gives each image's own score.

**Objects, not pixels.** A pixel score does not say whether two touching nuclei came out as one blob.
:func:`match_instances` counts objects: each predicted object (an 8-connected component of a predicted
mask, or a label of a label image) is matched to at most one true instance, and the other way round, when
their IoU is at least 0.5; matches are true positives, unmatched predictions false positives, unmatched
true instances false negatives. :func:`instance_scores` sums these counts over a set of images, then
gives precision, recall and F1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import cv2
import keras
import numpy as np
from keras import ops

from unet_helpers.errors import UnetTutorialError

PACKAGE = "unet_helpers"


def check_num_classes(num_classes: int) -> int:
    """``num_classes`` as an int, or a one-line error if it is not a whole number of 2 or more."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer) or num_classes < 2:
        raise UnetTutorialError(
            f"num_classes={num_classes!r}: pass the number of classes in the data, background included "
            "(2 for binary masks, whose model has one sigmoid channel)."
        )
    return int(num_classes)


def _check_class_ids(class_ids: Sequence[int] | None, num_classes: int) -> list[int]:
    if class_ids is None:
        return list(range(1, num_classes))
    class_ids = [int(class_id) for class_id in class_ids]
    if not class_ids or not all(0 <= class_id < num_classes for class_id in class_ids):
        raise UnetTutorialError(
            f"class_ids={class_ids}: use one or more classes from 0 to {num_classes - 1}."
        )
    return class_ids


def _mean_over_classes(numerator: Any, denominator: Any) -> Any:
    """Mean of ``numerator / denominator`` over the last axis, leaving out 0 / 0 classes; 1 if none is left.

    Works on tensors and NumPy arrays alike (Keras ops), so the metrics and :func:`dice_score` share it.
    """
    numerator, denominator = ops.convert_to_tensor(numerator), ops.convert_to_tensor(denominator)
    present = ops.greater(denominator, 0)
    ratio = ops.where(present, numerator / ops.where(present, denominator, 1), 0)
    count = ops.sum(ops.cast(present, ratio.dtype), axis=-1)
    return ops.where(count > 0, ops.sum(ratio, axis=-1) / ops.maximum(count, 1), 1)


def _dice_fraction(true_positives: Any, false_positives: Any, false_negatives: Any) -> tuple[Any, Any]:
    return 2 * true_positives, 2 * true_positives + false_positives + false_negatives


def _iou_fraction(true_positives: Any, false_positives: Any, false_negatives: Any) -> tuple[Any, Any]:
    return true_positives, true_positives + false_positives + false_negatives


class PooledOverlap(keras.metrics.Metric):
    """Base of :class:`PooledDice` and :class:`PooledIoU`: per-class TP, FP and FN, pooled until reset.

    ``update_state(y_true, y_pred, sample_weight=None)``: ``y_true`` (B, H, W, 1) or (B, H, W), class
    indices 0..num_classes-1 (any dtype; pixels with other values are ignored, as in Keras's ``IoU``);
    ``y_pred`` (B, H, W, 1) sigmoid probabilities (binary data), or (B, H, W, num_classes) softmax
    probabilities, any float dtype (float16 under mixed precision too). ``sample_weight``, if given,
    weights pixels or images: shape (B,), (B, H, W) or (B, H, W, 1). The counts are float32 variables
    (exact up to 2**24 pixels per class, off by about 1e-7 of the total beyond), summed over replicas
    under a ``tf.distribute`` strategy.

    Args:
        num_classes: classes in the data, background included (2 for binary masks).
        class_ids: the classes averaged by ``result()``; default the foreground classes 1..num_classes-1.
        threshold: a 1-channel prediction is class 1 where it is above this.
        name: the metric's name in Keras's logs; default ``"dice"`` or ``"iou"``.
        dtype: as for every ``keras.metrics.Metric``.
    """

    def __init__(
        self,
        num_classes: int = 2,
        class_ids: Sequence[int] | None = None,
        threshold: float = 0.5,
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name or self.default_name, dtype=dtype)
        self.num_classes = check_num_classes(num_classes)
        self.class_ids = _check_class_ids(class_ids, self.num_classes)
        self.threshold = float(threshold)
        self.true_positives, self.false_positives, self.false_negatives = (
            self.add_variable(shape=(self.num_classes,), initializer="zeros", dtype="float32", name=count)
            for count in ("true_positives", "false_positives", "false_negatives")
        )

    def _classes(self, y_true: Any, y_pred: Any) -> tuple[Any, Any]:
        """True and predicted class indices, int32, both shaped like the pixels: (B, H, W)."""
        channels = y_pred.shape[-1]
        if channels not in (1, self.num_classes) or (channels == 1 and self.num_classes > 2):
            raise UnetTutorialError(
                f"predictions with {channels} channels do not fit num_classes={self.num_classes}: binary "
                "data needs a 1-channel sigmoid model (build_unet(num_classes=1)), K classes a K-channel "
                "softmax (build_unet(num_classes=K))."
            )
        if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == 1:
            y_true = ops.squeeze(y_true, axis=-1)
        if channels == 1:
            predicted = ops.squeeze(ops.greater(y_pred, ops.cast(self.threshold, y_pred.dtype)), axis=-1)
        else:
            predicted = ops.argmax(y_pred, axis=-1)
        return ops.cast(y_true, "int32"), ops.cast(predicted, "int32")

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        true_classes, predicted_classes = self._classes(
            ops.convert_to_tensor(y_true), ops.convert_to_tensor(y_pred)
        )
        true_one_hot = ops.one_hot(ops.reshape(true_classes, (-1,)), self.num_classes, dtype="float32")
        # Pixels whose true value is no class have an all-zero one-hot row: leave their prediction out too.
        predicted_one_hot = ops.one_hot(
            ops.reshape(predicted_classes, (-1,)), self.num_classes, dtype="float32"
        ) * ops.sum(true_one_hot, axis=-1, keepdims=True)
        weights = 1.0
        if sample_weight is not None:
            weights = ops.cast(ops.convert_to_tensor(sample_weight), "float32")
            pixels = true_classes.shape
            if len(weights.shape) == len(pixels) + 1 and weights.shape[-1] == 1:
                weights = ops.squeeze(weights, axis=-1)  # (B, H, W, 1), like the masks
            while len(weights.shape) < len(pixels):
                weights = ops.expand_dims(weights, axis=-1)  # (B,): one weight per image
            weights = ops.reshape(ops.broadcast_to(weights, ops.shape(true_classes)), (-1, 1))
        true_positives = ops.sum(true_one_hot * predicted_one_hot * weights, axis=0)
        self.true_positives.assign_add(true_positives)
        self.false_positives.assign_add(ops.sum(predicted_one_hot * weights, axis=0) - true_positives)
        self.false_negatives.assign_add(ops.sum(true_one_hot * weights, axis=0) - true_positives)

    def result(self) -> Any:
        """The mean score over ``class_ids`` (0 / 0 classes left out; 1 if none is left), a float32 scalar."""
        counts = [
            ops.take(variable, self.class_ids)
            for variable in (self.true_positives, self.false_positives, self.false_negatives)
        ]
        return ops.cast(_mean_over_classes(*self.fraction(*counts)), self.dtype)

    def reset_state(self) -> None:
        for variable in (self.true_positives, self.false_positives, self.false_negatives):
            variable.assign(ops.zeros_like(variable))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "class_ids": self.class_ids,
            "threshold": self.threshold,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class PooledDice(PooledOverlap):
    """Dice ``2 TP / (2 TP + FP + FN)``, pooled over every pixel since the last reset, in [0, 1].

    Mean over ``class_ids`` (default: the foreground classes); see :class:`PooledOverlap` for the inputs and
    the module docstring for the definition.
    """

    default_name = "dice"
    fraction = staticmethod(_dice_fraction)


@keras.saving.register_keras_serializable(package=PACKAGE)
class PooledIoU(PooledOverlap):
    """IoU (Jaccard) ``TP / (TP + FP + FN)``, pooled over every pixel since the last reset, in [0, 1].

    Mean over ``class_ids`` (default: the foreground classes); see :class:`PooledOverlap` for the inputs and
    the module docstring for the definition. Agrees with ``keras.metrics.IoU`` (and ``BinaryIoU``,
    ``MeanIoU``) except at a prediction of exactly 0.5 and when every class is 0 / 0.
    """

    default_name = "iou"
    fraction = staticmethod(_iou_fraction)


def segmentation_metrics(num_classes: int) -> list[keras.metrics.Metric]:
    """The metrics to compile a model with, for data with ``num_classes`` classes; all pooled.

    Binary data (2 classes, a 1-channel sigmoid model): ``dice`` and ``iou`` of the foreground, and
    ``pixel_accuracy`` (``keras.metrics.BinaryAccuracy``: the share of pixels whose class, ``p > 0.5``, is
    right). Multi-class data (a ``num_classes``-channel softmax model): ``dice`` and ``iou`` averaged over
    the foreground classes 1..K-1, ``pixel_accuracy`` (``keras.metrics.SparseCategoricalAccuracy`` on the
    argmax, background included), then ``dice_<i>`` and ``iou_<i>`` for every class ``i``, background (0)
    included.

    Args:
        num_classes: classes in the data, background included (2 for binary masks).

    Returns:
        New, unbuilt metric objects (a model needs its own; do not share them between models).

    Raises:
        UnetTutorialError: ``num_classes`` is not a whole number of 2 or more.
    """
    num_classes = check_num_classes(num_classes)
    if num_classes == 2:
        return [
            PooledDice(num_classes, name="dice"),
            PooledIoU(num_classes, name="iou"),
            keras.metrics.BinaryAccuracy(threshold=0.5, name="pixel_accuracy"),
        ]
    return [
        PooledDice(num_classes, name="dice"),
        PooledIoU(num_classes, name="iou"),
        keras.metrics.SparseCategoricalAccuracy(name="pixel_accuracy"),
        *(PooledDice(num_classes, class_ids=[index], name=f"dice_{index}") for index in range(num_classes)),
        *(PooledIoU(num_classes, class_ids=[index], name=f"iou_{index}") for index in range(num_classes)),
    ]


def drop_channel(mask: np.ndarray) -> np.ndarray:
    """``mask`` without its last axis if that axis has one channel: (..., H, W, 1) -> (..., H, W)."""
    return mask[..., 0] if mask.ndim >= 3 and mask.shape[-1] == 1 else mask


def class_arrays(true_mask: Any, predicted_mask: Any, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """True and predicted classes as int64 arrays of shape (images, pixels), by the rule above.

    ``true_mask``: class indices (H, W), (H, W, 1), (B, H, W) or (B, H, W, 1). ``predicted_mask``: class
    indices or (binary) probabilities of the same shape, or softmax outputs with ``num_classes`` channels.
    """
    true = drop_channel(np.asarray(true_mask))
    if true.ndim not in (2, 3):
        raise UnetTutorialError(
            f"true_mask has shape {np.shape(true_mask)}: pass one mask (H, W) or (H, W, 1), or a batch "
            "(B, H, W) or (B, H, W, 1)."
        )
    predicted = np.asarray(predicted_mask)
    if predicted.shape == (*true.shape, num_classes):
        predicted = np.argmax(predicted, axis=-1)
    else:
        predicted = drop_channel(predicted)
        if predicted.shape != true.shape:
            raise UnetTutorialError(
                f"predicted_mask has shape {np.shape(predicted_mask)}, true_mask {np.shape(true_mask)}: pass "
                f"class indices or probabilities of the same shape, or softmax outputs with {num_classes} "
                "channels."
            )
        if num_classes == 2:
            predicted = predicted > 0.5  # sigmoid probabilities, or 0/1 classes
        elif not np.array_equal(predicted, np.round(predicted)):
            raise UnetTutorialError(
                f"predicted_mask holds fractions: for num_classes={num_classes} pass class indices, or the "
                f"softmax output with {num_classes} channels."
            )
    images = 1 if true.ndim == 2 else true.shape[0]
    return true.reshape(images, -1).astype(np.int64), predicted.reshape(images, -1).astype(np.int64)


def _score(
    fraction: Any,
    true_mask: Any,
    predicted_mask: Any,
    *,
    num_classes: int,
    per_image: bool,
    class_ids: Sequence[int] | None,
) -> float | np.ndarray:
    num_classes = check_num_classes(num_classes)
    class_ids = _check_class_ids(class_ids, num_classes)
    true, predicted = class_arrays(true_mask, predicted_mask, num_classes)
    counts = np.zeros((len(true), 3, len(class_ids)))
    valid = (true >= 0) & (true < num_classes)  # other true values are ignored, as in the metrics
    for column, class_id in enumerate(class_ids):
        is_true, is_predicted = true == class_id, (predicted == class_id) & valid
        counts[:, 0, column] = np.sum(is_true & is_predicted, axis=1)
        counts[:, 1, column] = np.sum(~is_true & is_predicted, axis=1)
        counts[:, 2, column] = np.sum(is_true & ~is_predicted, axis=1)
    if not per_image:
        counts = counts.sum(axis=0)
    scores = ops.convert_to_numpy(_mean_over_classes(*fraction(*np.moveaxis(counts, -2, 0))))
    return scores.astype(np.float64) if per_image else float(scores)


def dice_score(
    true_mask: Any,
    predicted_mask: Any,
    *,
    num_classes: int = 2,
    per_image: bool = False,
    class_ids: Sequence[int] | None = None,
) -> float | np.ndarray:
    """Dice of NumPy masks, defined exactly as the ``dice`` metric (see the module docstring).

    Args:
        true_mask: class indices, (H, W), (H, W, 1), (B, H, W) or (B, H, W, 1).
        predicted_mask: class indices of the same shape; or, for binary data, sigmoid probabilities
            (class 1 where above 0.5); or softmax probabilities with ``num_classes`` channels, (..., K).
        num_classes: classes in the data, background included (2 for binary masks).
        per_image: one score per image instead of one pooled over all pixels of all images.
        class_ids: the classes averaged; default the foreground classes 1..num_classes-1.

    Returns:
        A float in [0, 1] pooled over all pixels; with ``per_image``, a float64 array of shape (B,).

    Raises:
        UnetTutorialError: shapes that do not fit, or fractional multi-class predictions.
    """
    return _score(
        _dice_fraction,
        true_mask,
        predicted_mask,
        num_classes=num_classes,
        per_image=per_image,
        class_ids=class_ids,
    )


def iou_score(
    true_mask: Any,
    predicted_mask: Any,
    *,
    num_classes: int = 2,
    per_image: bool = False,
    class_ids: Sequence[int] | None = None,
) -> float | np.ndarray:
    """IoU of NumPy masks, defined exactly as the ``iou`` metric; arguments as for :func:`dice_score`."""
    return _score(
        _iou_fraction,
        true_mask,
        predicted_mask,
        num_classes=num_classes,
        per_image=per_image,
        class_ids=class_ids,
    )


class InstanceCounts(NamedTuple):
    """Objects counted by :func:`match_instances`: matched, predicted but unmatched, true but unmatched."""

    true_positives: int
    false_positives: int
    false_negatives: int


class InstanceScores(NamedTuple):
    """Object precision, recall and F1, and the counts they come from (:func:`instance_scores`)."""

    precision: float
    recall: float
    f1: float
    counts: InstanceCounts


def _instance_labels(array: Any, role: str) -> np.ndarray:
    """One image's objects as int64 (H, W) labels, 0 = background.

    Probabilities (fractions) become a mask by ``p > 0.5``, as the pixel metrics decide; a 0/1 mask's
    objects are its 8-connected components; whole numbers above 1 are labels, one object per number.
    """
    array = drop_channel(np.asarray(array))
    if array.ndim != 2:
        raise UnetTutorialError(
            f"{role} has shape {array.shape}: pass one image, (H, W) or (H, W, 1), per true instance image."
        )
    if array.dtype.kind == "f" and not np.array_equal(array, np.round(array)):
        array = array > 0.5
    if array.size and array.min() < 0:
        raise UnetTutorialError(f"{role} holds negative values: labels are 0 (background) and 1..N.")
    if array.dtype == bool or (array.size and array.max() <= 1):
        return cv2.connectedComponents(array.astype(np.uint8), connectivity=8)[1].astype(np.int64)
    return array.astype(np.int64)


def match_instances(true_instances: Any, predicted: Any, *, iou_threshold: float = 0.5) -> InstanceCounts:
    """Count the true instances of one image that a prediction finds, one to one.

    A predicted object and a true instance match when their IoU (shared pixels / pixels of either) is at
    least ``iou_threshold``; each object matches at most once, pairs taken in order of descending IoU (at
    equal IoU, lower true label first, then lower predicted label). Above 0.5 the matching is unique:
    IoU > 0.5 means the two share more than half of each one's pixels, and no other object, disjoint from
    the first, can share more than half too. At exactly 0.5 one object can reach two: a prediction that
    merges two equal nuclei has IoU 0.5 with each, matches one, and the other counts as missed.

    Args:
        true_instances: (H, W) or (H, W, 1) labels, 0 = background, 1..N one number per instance.
        predicted: the same shape: a 0/1 (or bool) mask, whose 8-connected components are the objects;
            sigmoid probabilities (fractions; object where ``p > 0.5``); or a label image (whole numbers,
            one object per number; a label image whose only label is 1 is read as a mask).
        iou_threshold: the IoU a match needs, in (0, 1]; 0.5 is the usual choice.

    Returns:
        :class:`InstanceCounts` ``(true_positives, false_positives, false_negatives)``.

    Raises:
        UnetTutorialError: shapes that differ, or a threshold out of range.
    """
    if not 0 < iou_threshold <= 1:
        raise UnetTutorialError(f"iou_threshold={iou_threshold}: give a number in (0, 1], usually 0.5.")
    true = _instance_labels(true_instances, "true_instances")
    found = _instance_labels(predicted, "predicted")
    if true.shape != found.shape:
        raise UnetTutorialError(
            f"true_instances {np.shape(true_instances)} and predicted {np.shape(predicted)} differ in size."
        )
    true_ids, true_index, true_areas = np.unique(true, return_inverse=True, return_counts=True)
    found_ids, found_index, found_areas = np.unique(found, return_inverse=True, return_counts=True)
    # Shared pixels of every (true, predicted) pair, background (id 0, always first if present) included.
    pairs = true_index.ravel() * found_ids.size + found_index.ravel()
    shared = np.bincount(pairs, minlength=true_ids.size * found_ids.size).reshape(true_ids.size, -1)
    union = true_areas[:, None] + found_areas[None, :] - shared
    iou = np.where(shared > 0, shared / np.maximum(union, 1), 0.0)
    iou[true_ids == 0, :] = 0.0  # background is no object
    iou[:, found_ids == 0] = 0.0
    matched_true, matched_found = set(), set()
    rows, columns = np.nonzero(iou >= iou_threshold)
    for row, column in sorted(zip(rows, columns, strict=True), key=lambda rc: (-iou[rc], rc[0], rc[1])):
        if row not in matched_true and column not in matched_found:
            matched_true.add(row)
            matched_found.add(column)
    true_count, found_count = int(np.count_nonzero(true_ids)), int(np.count_nonzero(found_ids))
    matches = len(matched_true)
    return InstanceCounts(matches, found_count - matches, true_count - matches)


def instance_scores(true_instances: Any, predicted: Any, *, iou_threshold: float = 0.5) -> InstanceScores:
    """Object-level precision, recall and F1 over a set of images, from counts pooled over all of them.

    The counts of :func:`match_instances` are summed over the images first, so every nucleus counts
    once, whichever image it is in. Then ``precision = TP / (TP + FP)`` (the share of predicted objects
    that are nuclei), ``recall = TP / (TP + FN)`` (the share of nuclei found) and ``F1 = 2 TP / (2 TP +
    FP + FN)``. A ratio with nothing to count (0 / 0) is 1: no predicted object means no false claim
    (precision 1), no true instance means nothing missed (recall 1), neither means F1 1 (nothing to find,
    nothing found, as for the pixel scores).

    Args:
        true_instances: (N, H, W) or (N, H, W, 1) labels, or a list of (H, W) label images (sizes may
            differ).
        predicted: the predictions in the same layout, each as :func:`match_instances` takes it (a 0/1
            mask, probabilities, or labels), e.g. a model's (N, H, W, 1) sigmoid output.
        iou_threshold: as for :func:`match_instances`.

    Returns:
        :class:`InstanceScores` ``(precision, recall, f1, counts)``.
    """
    if len(true_instances) != len(predicted):
        raise UnetTutorialError(
            f"{len(true_instances)} true label images but {len(predicted)} predictions: give one each."
        )
    counts = np.zeros(3, np.int64)
    for true, found in zip(true_instances, predicted, strict=True):
        counts += match_instances(true, found, iou_threshold=iou_threshold)
    true_positives, false_positives, false_negatives = (int(count) for count in counts)

    def ratio(numerator: int, denominator: int) -> float:
        return numerator / denominator if denominator else 1.0

    return InstanceScores(
        precision=ratio(true_positives, true_positives + false_positives),
        recall=ratio(true_positives, true_positives + false_negatives),
        f1=ratio(2 * true_positives, 2 * true_positives + false_positives + false_negatives),
        counts=InstanceCounts(true_positives, false_positives, false_negatives),
    )
