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

**Pixels to ignore** hold ``mask_classes.IGNORE_CLASS`` (255) in the truth (a dataset's void class, an
uncertain border). Every number here leaves them out, whatever the prediction says there: they are in no
TP, FP or FN count, no accuracy, no confusion matrix, no error map (so no figure calls them errors). A
true value that is no class of the data (IGNORE_CLASS among them) has an all-zero one-hot row, which is
how the metrics skip it; ``pixel_accuracy`` gives it weight 0. An image whose pixels are all ignored has
nothing to find and nothing found: per image, it scores 1.

**Where, not only how much.** The same rule, pixel by pixel and image by image, gives the numbers that
:mod:`unet_helpers.viz` draws: :func:`class_maps` (each pixel's true and predicted class),
:func:`error_maps` (true positives, false positives, false negatives, wrong classes), :func:`rank_by_dice`
(images by their own Dice), :func:`dice_against_threshold` (a binary model's pooled Dice when class 1 is
``p > threshold``) and :func:`confusion_matrix` (pixel counts of each true and predicted class). Objects
rather than pixels are counted in :mod:`unet_helpers.instance_metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import keras
import numpy as np
from keras import ops

from unet_helpers.errors import UnetTutorialError
from unet_helpers.mask_classes import IGNORE_CLASS

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


def _pixel_weights(sample_weight: Any, pixels: Any) -> Any:
    """``sample_weight`` per image (B,) or per pixel ((B, H, W) or (B, H, W, 1)), as float32 (B, H, W).

    ``pixels`` is any tensor of the pixels' shape (B, H, W), e.g. the true classes.
    """
    weights = ops.cast(ops.convert_to_tensor(sample_weight), "float32")
    if len(weights.shape) == len(pixels.shape) + 1 and weights.shape[-1] == 1:
        weights = ops.squeeze(weights, axis=-1)  # (B, H, W, 1), like the masks
    while len(weights.shape) < len(pixels.shape):
        weights = ops.expand_dims(weights, axis=-1)  # (B,): one weight per image
    return ops.broadcast_to(weights, ops.shape(pixels))


def _dice_fraction(true_positives: Any, false_positives: Any, false_negatives: Any) -> tuple[Any, Any]:
    return 2 * true_positives, 2 * true_positives + false_positives + false_negatives


def _iou_fraction(true_positives: Any, false_positives: Any, false_negatives: Any) -> tuple[Any, Any]:
    return true_positives, true_positives + false_positives + false_negatives


class PooledOverlap(keras.metrics.Metric):
    """Base of :class:`PooledDice` and :class:`PooledIoU`: per-class TP, FP and FN, pooled until reset.

    ``update_state(y_true, y_pred, sample_weight=None)``: ``y_true`` (B, H, W, 1) or (B, H, W), class
    indices 0..num_classes-1 (any dtype); pixels with another value, ``IGNORE_CLASS`` (255) among them, are
    ignored, whatever their prediction: they change neither Dice nor IoU (as in Keras's ``IoU``);
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
                "data needs a 1-channel sigmoid model, K classes a K-channel softmax: "
                "build_unet(num_classes=K) builds the right one (K=2 for binary)."
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
            weights = ops.reshape(_pixel_weights(sample_weight, true_classes), (-1, 1))
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


class _SkipsIgnored:
    """Mixin for Keras's accuracies: pixels whose truth is IGNORE_CLASS get weight 0, so they count in
    neither the matches nor the number of pixels."""

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        y_true = ops.convert_to_tensor(y_true)
        pixels = ops.squeeze(y_true, axis=-1) if len(y_true.shape) == 4 else y_true
        weights = ops.cast(ops.not_equal(pixels, ops.cast(IGNORE_CLASS, pixels.dtype)), "float32")
        if sample_weight is not None:
            weights = weights * _pixel_weights(sample_weight, pixels)
        return super().update_state(y_true, y_pred, sample_weight=weights)


@keras.saving.register_keras_serializable(package=PACKAGE)
class BinaryPixelAccuracy(_SkipsIgnored, keras.metrics.BinaryAccuracy):
    """``keras.metrics.BinaryAccuracy`` (class 1 where ``p > threshold``) over the pixels not ignored.

    ``y_true`` (B, H, W, 1) 0/1, ``IGNORE_CLASS`` at pixels to ignore; ``y_pred`` (B, H, W, 1) sigmoid
    probabilities. The share of counted pixels whose class is right, in [0, 1] (0 before any is counted).
    """


@keras.saving.register_keras_serializable(package=PACKAGE)
class PixelAccuracy(_SkipsIgnored, keras.metrics.SparseCategoricalAccuracy):
    """``keras.metrics.SparseCategoricalAccuracy`` (the argmax against the true class) over the pixels not
    ignored.

    ``y_true`` (B, H, W, 1) class indices, ``IGNORE_CLASS`` at pixels to ignore; ``y_pred`` (B, H, W, K)
    softmax probabilities. The share of counted pixels whose class is right, in [0, 1].
    """


def segmentation_metrics(num_classes: int, *, background: bool = True) -> list[keras.metrics.Metric]:
    """The metrics to compile a model with, for data with ``num_classes`` classes; all pooled.

    Binary data (2 classes, a 1-channel sigmoid model): ``dice`` and ``iou`` of the foreground, and
    ``pixel_accuracy`` (:class:`BinaryPixelAccuracy`: the share of pixels whose class, ``p > 0.5``, is
    right). Multi-class data (a ``num_classes``-channel softmax model): ``dice`` and ``iou`` averaged over
    the foreground classes 1..K-1, ``pixel_accuracy`` (:class:`PixelAccuracy` on the argmax, background
    included), then ``dice_<i>`` and ``iou_<i>`` for every class ``i``, background (0) included. Every one
    leaves out the pixels whose truth is ``IGNORE_CLASS``.

    Args:
        num_classes: classes in the data, background included (2 for binary masks).
        background: class 0 is a background, which ``dice`` and ``iou`` leave out; False for data whose
            classes are all things to find (CamVid's class 0 is the sky): then they average every class.

    Returns:
        New, unbuilt metric objects (a model needs its own; do not share them between models).

    Raises:
        UnetTutorialError: ``num_classes`` is not a whole number of 2 or more.
    """
    num_classes = check_num_classes(num_classes)
    scored = None if background else list(range(num_classes))
    if num_classes == 2:
        return [
            PooledDice(num_classes, class_ids=scored, name="dice"),
            PooledIoU(num_classes, class_ids=scored, name="iou"),
            BinaryPixelAccuracy(threshold=0.5, name="pixel_accuracy"),
        ]
    return [
        PooledDice(num_classes, class_ids=scored, name="dice"),
        PooledIoU(num_classes, class_ids=scored, name="iou"),
        PixelAccuracy(name="pixel_accuracy"),
        *(PooledDice(num_classes, class_ids=[index], name=f"dice_{index}") for index in range(num_classes)),
        *(PooledIoU(num_classes, class_ids=[index], name=f"iou_{index}") for index in range(num_classes)),
    ]


def drop_channel(mask: np.ndarray) -> np.ndarray:
    """``mask`` without its last axis if that axis has one channel: (..., H, W, 1) -> (..., H, W)."""
    return mask[..., 0] if mask.ndim >= 3 and mask.shape[-1] == 1 else mask


def class_arrays(true_mask: Any, predicted_mask: Any, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """True and predicted classes as int64 arrays of shape (images, pixels), by the rule above.

    ``true_mask``: class indices (H, W), (H, W, 1), (B, H, W) or (B, H, W, 1); ``IGNORE_CLASS`` (and any
    other value that is no class) is kept as it is, for the callers to leave out. ``predicted_mask``: class
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
    valid = (true >= 0) & (
        true < num_classes
    )  # IGNORE_CLASS and other values are left out, as in the metrics
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
        true_mask: class indices, (H, W), (H, W, 1), (B, H, W) or (B, H, W, 1); pixels holding
            ``IGNORE_CLASS`` are left out, whatever their prediction.
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


# Thresholds that dice_against_threshold tries by default: 0.05, 0.10, ..., 0.95.
DEFAULT_THRESHOLDS = tuple(round(0.05 * step, 2) for step in range(1, 20))


def check_probabilities(probabilities: Any) -> np.ndarray:
    """``probabilities`` as float32, or a one-line error if a value lies outside [0, 1] (logits, say).

    Args:
        probabilities: a model's sigmoid or softmax output, any shape.

    Returns:
        The same values as a float32 array of the same shape.
    """
    probabilities = np.asarray(probabilities, np.float32)
    low, high = probabilities.min(initial=0), probabilities.max(initial=0)
    if low < 0 or high > 1 + 1e-6:
        raise UnetTutorialError(
            f"probabilities range from {low:.3g} to {high:.3g}: pass the model's output after its sigmoid or "
            "softmax (values in [0, 1]), not logits."
        )
    return probabilities


def class_maps(masks: Any, predictions: Any, *, num_classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The true and the predicted class of every pixel, by the rule above (``p > 0.5``, or the argmax).

    Args:
        masks: class indices, (H, W), (H, W, 1), (B, H, W) or (B, H, W, 1).
        predictions: class indices of the same shape; for binary data sigmoid probabilities in [0, 1] of
            the same shape; or softmax probabilities with ``num_classes`` channels, (..., K).
        num_classes: classes including the background (2 for binary masks).

    Returns:
        Two int64 arrays (true classes, predicted classes), both shaped like ``masks`` without its channel;
        predicted classes lie in 0..num_classes-1, true ones are the masks' values as they are
        (``IGNORE_CLASS`` stays, so that figures can draw those pixels as ignored).

    Raises:
        UnetTutorialError: shapes that do not fit, or fractional multi-class predictions.
    """
    num_classes = check_num_classes(num_classes)
    true, predicted = class_arrays(masks, predictions, num_classes)
    shape = drop_channel(np.asarray(masks)).shape
    return true.reshape(shape), predicted.reshape(shape)


class ErrorMaps(NamedTuple):
    """Boolean maps shaped like the mask without its channel; pixels whose truth is no class (IGNORE_CLASS
    among them) are in none: whatever is predicted there is no error."""

    true_positive: np.ndarray  # an object pixel given its true class
    false_positive: np.ndarray  # background predicted as an object
    false_negative: np.ndarray  # an object predicted as background
    wrong_class: np.ndarray  # an object given another foreground class (multi-class data only)


def error_maps(mask: Any, prediction: Any, *, num_classes: int = 2) -> ErrorMaps:
    """Where a prediction is right and where it is wrong, pixel by pixel.

    Args:
        mask: class indices, (H, W) or (H, W, 1) (a batch (B, H, W[, 1]) works too).
        prediction: as for :func:`class_maps`.
        num_classes: classes including the background (2 for binary masks).

    Returns:
        :class:`ErrorMaps` of boolean arrays shaped like ``mask`` without its channel, e.g. (H, W); every
        object or background pixel is in at most one map; for binary data ``wrong_class`` is all False.
    """
    true, predicted = class_maps(mask, prediction, num_classes=num_classes)
    valid = (true >= 0) & (true < num_classes)  # IGNORE_CLASS and other values: no error, as in the metrics
    true_object = valid & (true > 0)
    return ErrorMaps(
        true_positive=true_object & (predicted == true),
        false_positive=valid & (true == 0) & (predicted > 0),
        false_negative=true_object & (predicted == 0),
        wrong_class=true_object & (predicted > 0) & (predicted != true),
    )


class DiceRanking(NamedTuple):
    """Images ranked by their own Dice."""

    order: np.ndarray  # int64 (N,): image indices, best Dice first; ties keep the input order
    scores: np.ndarray  # float64 (N,): each image's Dice in the input order, so scores[order] is descending


def rank_by_dice(masks: Any, predictions: Any, *, num_classes: int = 2) -> DiceRanking:
    """Rank images by their own Dice, best first.

    Each image's Dice is ``dice_score(per_image=True)``'s: an image with no object in the truth and none
    predicted scores 1, one with no object but a false positive scores 0; ignored pixels (``IGNORE_CLASS``)
    are left out, and an image with every pixel ignored scores 1.

    Args:
        masks: N masks, (N, H, W) or (N, H, W, 1) class indices (or a list of (H, W[, 1]) masks).
        predictions: N predictions, as for :func:`class_maps`.
        num_classes: classes including the background (2 for binary masks).

    Returns:
        :class:`DiceRanking` ``(order, scores)``, both of shape (N,); scores in [0, 1].
    """
    scores = dice_score(np.asarray(masks), np.asarray(predictions), num_classes=num_classes, per_image=True)
    return DiceRanking(order=np.argsort(-scores, kind="stable"), scores=scores)


def dice_against_threshold(
    masks: Any, probabilities: Any, *, thresholds: Sequence[float] = DEFAULT_THRESHOLDS
) -> tuple[np.ndarray, np.ndarray]:
    """Pooled Dice of a binary model when class 1 is ``p > threshold``, for each threshold.

    Args:
        masks: 0/1 masks, (H, W[, 1]) or (N, H, W[, 1]); ``IGNORE_CLASS`` pixels are left out.
        probabilities: the sigmoid output in [0, 1], the masks' shape (with or without the channel).
        thresholds: the thresholds tried, in [0, 1]; the metrics use 0.5.

    Returns:
        (thresholds, scores): two float64 arrays of shape (T,), the Dice pooled over all pixels, in [0, 1].

    Raises:
        UnetTutorialError: shapes that do not fit (e.g. a multi-class softmax), logits, bad thresholds.
    """
    masks, probabilities = np.asarray(masks), check_probabilities(probabilities)
    if drop_channel(probabilities).shape != drop_channel(masks).shape:
        raise UnetTutorialError(
            f"probabilities has shape {probabilities.shape}, masks {masks.shape}: pass a binary model's "
            "1-channel sigmoid output for these masks (multi-class models have no threshold)."
        )
    thresholds = np.asarray(thresholds, np.float64)
    if thresholds.ndim != 1 or not thresholds.size or thresholds.min() < 0 or thresholds.max() > 1:
        raise UnetTutorialError(f"thresholds={thresholds}: pass one or more numbers in [0, 1].")
    # Compared in float32, as the Keras metric compares in the prediction's dtype: 0.8 is not above 0.8.
    cuts = ((probabilities > np.float32(threshold)).astype(np.uint8) for threshold in thresholds)
    scores = [dice_score(masks, cut) for cut in cuts]
    return thresholds, np.array(scores, np.float64)


def confusion_matrix(masks: Any, predictions: Any, *, num_classes: int = 2) -> np.ndarray:
    """Pixel counts of each (true class, predicted class) pair, over all pixels of all images.

    Args:
        masks: class indices, (H, W[, 1]) or (N, H, W[, 1]); pixels whose value is no class
            (``IGNORE_CLASS`` among them) are left out.
        predictions: as for :func:`class_maps`.
        num_classes: classes including the background (2 for binary masks).

    Returns:
        int64 (K, K), K = num_classes, counts >= 0: rows are the true class, columns the predicted class.
    """
    true, predicted = class_maps(masks, predictions, num_classes=num_classes)
    if predicted.min(initial=0) < 0 or predicted.max(initial=0) >= num_classes:
        raise UnetTutorialError(f"predictions hold classes outside 0..{num_classes - 1}: check num_classes.")
    valid = (true >= 0) & (true < num_classes)
    # np.bincount is all it takes; tf.math.confusion_matrix gives the same (K, K) but wants tensors.
    pairs = num_classes * true[valid] + predicted[valid]
    return np.bincount(pairs, minlength=num_classes**2).reshape(num_classes, num_classes)
