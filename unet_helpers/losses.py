"""Segmentation losses: cross-entropy, Dice and their sum, with optional per-pixel weights.

:func:`segmentation_loss` picks the loss the series trains with, from the number of classes in the data:

- 2 classes (binary masks, a 1-channel sigmoid model): binary cross-entropy + Dice (:func:`bce_dice_loss`);
- 3 or more (a softmax model with one channel per class): sparse categorical cross-entropy + multi-class
  Dice (:func:`cce_dice_loss`).

Cross-entropy scores every pixel on its own, so a small object among many background pixels hardly moves
it; Dice scores the overlap of the predicted and the true object, whatever their size. Their sum trains
stably (cross-entropy) and cares about small objects (Dice).

The cross-entropies are Keras's own (``keras.losses.BinaryCrossentropy`` and
``SparseCategoricalCrossentropy``, checked against hand-computed values in ``tests/test_losses.py``). The
Dice losses are ours: ``keras.losses.Dice`` has no smoothing term, so an image with an empty mask predicted
perfectly (nothing there, nothing found) costs it the maximal loss of 1; see :class:`DiceLoss`.

**Per-pixel weights** (the UNet paper's border weights, made by ``unet_helpers.instances``) reach the loss
as Keras's ``sample_weight`` when a dataset yields ``(image, mask, weights)``; :class:`LossSum` multiplies
the cross-entropy of each pixel by its weight and leaves the Dice alone (see there why).

**Pixels to ignore** (a dataset's void class, an uncertain border) hold ``mask_classes.IGNORE_CLASS``
(255) in ``y_true``. Every loss here skips them: they change neither the loss nor its gradient, which is
exactly 0 at those pixels (the prediction there is replaced by a constant before any loss sees it).
Ignoring is not calling them background: background is a class the model is trained to predict, so a
border pixel that is half pet would teach it to shrink every pet, and a Dice would count an object
predicted there as a false positive. Ignored pixels teach nothing either way; the model's output there
is free. How each loss leaves them out:

- cross-entropy: the mean over each image's *valid* pixels (per image, as :class:`LossSum` averages
  every loss), so an image with a large void counts as much as one without; an image with every pixel
  ignored contributes 0. ``keras.losses.SparseCategoricalCrossentropy(ignore_class=255)`` is not used:
  it averages over the valid pixels of the whole batch (one image's void shifts the weight of the
  others), and through ``call``, as :class:`LossSum` uses it, it averages over all pixels;
- Dice: ignored pixels are left out of both sums (intersection and totals); an image (or, pooled, a
  batch) with no valid pixel contributes 0.

Every class here is registered with Keras, so a model compiled with these losses saves
(``model.save("unet.keras")``) and loads (``keras.models.load_model``) without ``custom_objects``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from unet_helpers.errors import UnetTutorialError
from unet_helpers.mask_classes import IGNORE_CLASS

PACKAGE = "unet_helpers"


def soft_dice(y_true: Any, y_pred: Any, *, axis: Sequence[int] | None, smooth: float) -> Any:
    """The soft Dice coefficient ``(2 * sum(t * p) + smooth) / (sum(t) + sum(p) + smooth)``.

    Args:
        y_true: 0/1 targets, float.
        y_pred: probabilities in [0, 1], same shape and dtype as ``y_true``.
        axis: the axes summed over; the others are kept. None sums everything.
        smooth: added to the numerator and the denominator (see :class:`DiceLoss`). With 0, Keras's
            epsilon (1e-7) keeps the denominator above 0, and empty targets with empty predictions score 0.

    Returns:
        Dice in [0, 1] (1: perfect overlap), shaped like ``y_true`` without the ``axis`` axes.
    """
    intersection = ops.sum(y_true * y_pred, axis=axis)
    total = ops.sum(y_true, axis=axis) + ops.sum(y_pred, axis=axis)
    return (2.0 * intersection + smooth) / (total + (smooth or keras.backend.epsilon()))


def _without_ignored(y_true: Any, y_pred: Any) -> tuple[Any, Any, Any]:
    """Cut the pixels to ignore (``IGNORE_CLASS`` in ``y_true``) out of a batch, so no loss can see them.

    Args:
        y_true: (B, H, W, 1) or (B, H, W) class indices; IGNORE_CLASS at pixels to ignore.
        y_pred: (B, H, W, C) probabilities, C = 1 (sigmoid) or K (softmax).

    Returns:
        ``(y_true, y_pred, valid)``: ``y_true`` in ``y_pred``'s dtype, class 0 at ignored pixels;
        ``y_pred`` with a sure prediction of class 0 there (0 for one channel, (1, 0, ..., 0) for K): a
        constant, so any cross-entropy there is finite and no gradient reaches the prediction (``where``
        passes none to the branch it does not take); ``valid``, (B, H, W, 1) in ``y_pred``'s dtype, 1
        where a pixel counts and 0 where it is ignored.
    """
    y_true = ops.cast(y_true, y_pred.dtype)
    ignored = ops.equal(y_true, IGNORE_CLASS)
    y_true = ops.where(ignored, ops.zeros_like(y_true), y_true)
    if len(ignored.shape) < len(y_pred.shape):
        ignored = ops.expand_dims(ignored, axis=-1)
    channels = y_pred.shape[-1]
    sure_class_0 = np.eye(1, channels)[0] if channels > 1 else np.zeros(1)
    y_pred = ops.where(ignored, ops.cast(sure_class_0, y_pred.dtype), y_pred)
    return y_true, y_pred, 1.0 - ops.cast(ignored, y_pred.dtype)


def _check_channels(y_pred: Any, *, binary: bool) -> None:
    channels = y_pred.shape[-1]
    if binary and channels != 1:
        raise UnetTutorialError(
            f"binary losses expect a 1-channel sigmoid output, got {channels} channels: for "
            f"{channels}-class masks use segmentation_loss({channels}); for binary masks, "
            "build_unet(num_classes=2)."
        )
    if not binary and channels == 1:
        raise UnetTutorialError(
            "multi-class losses expect a softmax output with one channel per class, got 1 channel: "
            "build the model with build_unet(num_classes=K) for K classes, or use the binary losses."
        )


class _SoftDiceLossBase(keras.losses.Loss):
    """What both Dice losses share: the ``smooth`` and ``per_image`` settings, and their config."""

    # They leave IGNORE_CLASS pixels out themselves: LossSum hands them y_true as it is (see there).
    skips_ignored = True

    def __init__(
        self,
        smooth: float = 1.0,
        per_image: bool = True,
        name: str = "dice_loss",
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.smooth = float(smooth)
        self.per_image = bool(per_image)

    def _loss(self, dice: Any, valid: Any) -> Any:
        """``1 - dice`` per image (B,), or for the batch (), from the Dice and ``valid`` (B, H, W, 1); 0 for
        an image (a batch) without a valid pixel, which has nothing to score (unsmoothed, it would cost 1)."""
        scored = ops.sum(valid, axis=tuple(range(1, len(valid.shape))) if self.per_image else None) > 0
        return ops.where(scored, 1.0 - dice, 0.0)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "smooth": self.smooth, "per_image": self.per_image}


@keras.saving.register_keras_serializable(package=PACKAGE)
class DiceLoss(_SoftDiceLossBase):
    """``1 - soft Dice`` for binary masks and a 1-channel sigmoid output.

    Inputs: ``y_true`` (B, H, W, 1), 0/1 float (the data's masks), ``IGNORE_CLASS`` (255) at pixels to
    ignore, which are left out of both sums; ``y_pred`` (B, H, W, 1), probabilities in [0, 1]. The loss is
    in [0, 1]: 0 for a perfect prediction, and for an image with no pixel to score.

    **Per image, then averaged over the batch** (``per_image=True``, the default): each image gets its own
    Dice, so a small object in one image counts as much as a large one in another, and the training signal
    does not depend on which images share a batch. Pooled (``per_image=False``) sums every pixel of the
    batch into one Dice, which a large object dominates: a batch of an image with 8 object pixels, predicted
    perfectly, and an image with an empty mask and one false-positive pixel: without smoothing, pooled
    gives 0.06 and per image 0.5 (``keras.losses.Dice`` with ``axis=None`` and with ``axis=(1, 2, 3)``);
    per image with ``smooth=1`` gives 0.25, the false positive costing its own image 0.5.

    **Smoothing**: ``smooth`` (1 pixel by default) is added to the numerator and the denominator, so an
    image with nothing to find and nothing found scores Dice 1 (loss 0), and ``n`` false-positive pixels on
    an empty image cost ``n / (n + 1)`` (with a gradient that pushes them down). Without it (``smooth=0``,
    what ``keras.losses.Dice`` computes) a perfect prediction of an empty mask costs the maximal loss 1.

    Args:
        smooth: pixels added to the numerator and denominator of every Dice; 0 for the plain formula.
        per_image: one Dice per image, averaged over the batch (True), or one for the whole batch (False).
        name, reduction, dtype: as for every ``keras.losses.Loss``. With ``per_image``, ``call`` returns
            one value per image, so sample weights are per image, shape (B,).
    """

    def call(self, y_true: Any, y_pred: Any) -> Any:
        """Loss per image, shape (B,), with ``per_image``; else one value for the batch, shape ()."""
        _check_channels(y_pred, binary=True)
        y_true, y_pred, valid = _without_ignored(y_true, y_pred)
        axis = tuple(range(1, len(y_pred.shape))) if self.per_image else None
        # Ignored pixels now hold class 0 and a prediction of 0: they add nothing to either sum.
        return self._loss(soft_dice(y_true, y_pred, axis=axis, smooth=self.smooth), valid)


@keras.saving.register_keras_serializable(package=PACKAGE)
class MulticlassDiceLoss(_SoftDiceLossBase):
    """``1 - soft Dice``, averaged over all classes (background included), for a softmax output.

    Inputs: ``y_true`` (B, H, W, 1), float class indices 0..K-1 (the data's masks), one-hot encoded here,
    ``IGNORE_CLASS`` (255) at pixels to ignore, which are left out of every sum; ``y_pred`` (B, H, W, K),
    softmax probabilities. K is read from ``y_pred``. The loss is in [0, 1].

    Each class gets the soft Dice of its channel against its one-hot target, per image by default (see
    :class:`DiceLoss` for why, and for ``smooth``), and the loss is ``1 -`` their mean over the K classes.
    Smoothing also makes a class that is absent from an image and not predicted there score Dice 1 instead
    of 0, so images are not penalized for classes they do not contain. Background counts like any class
    here, which keeps a gradient on every channel; the *metrics* leave it out (see ``unet_helpers.metrics``).

    Args:
        smooth: pixels added to the numerator and denominator of every Dice.
        per_image: a Dice per image and class (True), or per class over the whole batch (False).
        name, reduction, dtype: as for every ``keras.losses.Loss``.
    """

    def __init__(
        self, smooth: float = 1.0, per_image: bool = True, name: str = "multiclass_dice_loss", **kwargs: Any
    ) -> None:
        super().__init__(smooth=smooth, per_image=per_image, name=name, **kwargs)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        """Loss per image, shape (B,), with ``per_image``; else one value for the batch, shape ()."""
        _check_channels(y_pred, binary=False)
        num_classes = y_pred.shape[-1]
        y_true, y_pred, valid = _without_ignored(y_true, y_pred)
        if len(y_true.shape) == len(y_pred.shape):
            y_true = ops.squeeze(y_true, axis=-1)
        one_hot = ops.one_hot(ops.cast(y_true, "int32"), num_classes, dtype=y_pred.dtype)
        spatial = tuple(range(1, len(y_pred.shape) - 1))
        axis = spatial if self.per_image else (0, *spatial)
        dice_per_class = soft_dice(one_hot * valid, y_pred * valid, axis=axis, smooth=self.smooth)
        return self._loss(ops.mean(dice_per_class, axis=-1), valid)


class _GivenValues(keras.losses.Loss):
    """A "loss" whose values are ``y_pred`` itself: lends :class:`LossSum` Keras's own reduction."""

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return y_pred


def _pixel_weights_like(weights: Any, values: Any) -> Any:
    """Per-pixel weights (B, H, W, 1) or (B, H, W) in the shape of per-pixel loss values (B, H, W)."""
    weights = ops.cast(weights, values.dtype)
    if len(weights.shape) == len(values.shape) + 1 and weights.shape[-1] == 1:
        weights = ops.squeeze(weights, axis=-1)
    if len(weights.shape) != len(values.shape):
        raise UnetTutorialError(
            f"per-pixel sample weights of shape {tuple(weights.shape)} do not fit loss values of shape "
            f"{tuple(values.shape)}: give one weight per mask pixel, (B, H, W, 1) or (B, H, W)."
        )
    return weights


def _mean_over_valid(values: Any, valid: Any, pixel_weights: Any = None) -> Any:
    """Per-pixel loss values (B, H, W) -> (B,): each image's mean of ``weight * value`` over its valid pixels.

    ``valid`` (B, H, W, 1) is 1 where a pixel counts, 0 where it is ignored; ``pixel_weights`` (optional)
    (B, H, W, 1) or (B, H, W). Ignored pixels count in neither the sum nor the number of pixels, whatever
    their weight; an image without a valid pixel gives 0. With every pixel valid, the plain mean.
    """
    valid = _pixel_weights_like(valid, values)
    if pixel_weights is not None:
        values = values * _pixel_weights_like(pixel_weights, values)
    axis = tuple(range(1, len(values.shape)))
    total = ops.sum(ops.where(valid > 0, values, 0.0), axis=axis)
    return total / ops.maximum(ops.sum(valid, axis=axis), 1.0)


@keras.saving.register_keras_serializable(package=PACKAGE)
class LossSum(keras.losses.Loss):
    """The sum of several losses, each reduced to one value per image first.

    ``call`` returns, per image, the sum over ``losses`` of each loss's values averaged over that image
    (a pooled loss, with one value for the batch, adds that value to every image); the reduction then
    averages over the batch. For images of one size this equals the sum of the losses computed on their
    own: the mean of per-image mean cross-entropies is the mean over all pixels.

    **Pixels to ignore** (``IGNORE_CLASS`` in ``y_true``): a loss that leaves them out itself (one with
    ``skips_ignored = True``, as both Dice losses here) gets ``y_true`` as it is. Any other loss (Keras's
    cross-entropies) never sees them: it gets class 0 there and a constant prediction of class 0, and its
    per-pixel values are averaged over each image's valid pixels only (0 for an image with none). A loss
    from elsewhere that gives one value per image, such as ``keras.losses.Dice``, cannot be corrected that
    way: those pixels would count as background predicted right.

    **Sample weights** (``loss(y_true, y_pred, sample_weight=...)``, or the third element of a dataset's
    batches in ``model.fit``):

    - per image, shape (B,): each image's summed loss is multiplied by its weight, as Keras does;
    - per pixel, shape (B, H, W, 1) or (B, H, W), e.g. the paper's border weights: every loss that
      gives a value per pixel (the cross-entropies) contributes the mean over the image's pixels of
      ``weight * loss`` (the valid pixels', when some are ignored; a weight at an ignored pixel counts as
      0), as ``keras.losses.BinaryCrossentropy`` does with such weights; losses with one
      value per image (the Dice losses) are added unweighted. A Dice is a ratio of sums over the whole
      image, with no loss per pixel to weight; weighting its sums would change what it measures, not
      which pixels matter. With all weights 1 the result equals the unweighted loss.

    Predictions of any float dtype (float16 under mixed precision) are computed in the loss's dtype
    (float32 by default), weighted or not.

    Args:
        losses: the ``keras.losses.Loss`` instances to add; their own reductions are not used.
        name, reduction, dtype: as for every ``keras.losses.Loss``.
    """

    def __init__(
        self,
        losses: Sequence[keras.losses.Loss],
        name: str = "loss_sum",
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.losses = list(losses)

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        """The reduced loss; per-pixel ``sample_weight`` (rank 3 or more) weights the per-pixel losses."""
        if sample_weight is not None:
            sample_weight = ops.convert_to_tensor(sample_weight)
        if sample_weight is None or len(sample_weight.shape) < 3:
            return super().__call__(y_true, y_pred, sample_weight=sample_weight)
        # As keras.losses.Loss.__call__ does: float16 predictions are computed in float32.
        y_pred = ops.convert_to_tensor(y_pred, dtype=self.dtype)
        y_true = ops.convert_to_tensor(y_true, dtype=self.dtype)
        per_image = self._per_image(y_true, y_pred, pixel_weights=sample_weight)
        # Keras's reduction (and its scaling under tf.distribute), applied to the per-image values.
        return _GivenValues(reduction=self.reduction, dtype=self.dtype)(per_image, per_image)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        """Summed loss per image, shape (B,)."""
        return self._per_image(y_true, y_pred)

    def _per_image(self, y_true: Any, y_pred: Any, pixel_weights: Any = None) -> Any:
        batch_size = ops.shape(y_pred)[0]
        clean_true, clean_pred, valid = _without_ignored(y_true, y_pred)
        total = 0.0
        for loss in self.losses:
            if getattr(loss, "skips_ignored", False):
                values = loss.call(y_true, y_pred)
            else:
                values = loss.call(clean_true, clean_pred)
            if len(values.shape) == 0:
                values = ops.broadcast_to(values, (batch_size,))
            elif len(values.shape) > 1:  # a loss per pixel: weight it, mean over the valid pixels
                values = _mean_over_valid(values, valid, pixel_weights)
            total = total + values
        return total

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "losses": [keras.saving.serialize_keras_object(loss) for loss in self.losses],
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LossSum:
        losses = [keras.saving.deserialize_keras_object(loss) for loss in config.pop("losses")]
        return cls(losses=losses, **config)


def dice_loss(*, smooth: float = 1.0, per_image: bool = True) -> DiceLoss:
    """The binary Dice loss, :class:`DiceLoss`: 1-channel sigmoid output, per image by default."""
    return DiceLoss(smooth=smooth, per_image=per_image)


def bce_dice_loss(*, smooth: float = 1.0, per_image: bool = True) -> LossSum:
    """Binary cross-entropy + Dice, for binary masks and a 1-channel sigmoid output.

    ``y_true`` (B, H, W, 1) 0/1 float, ``y_pred`` (B, H, W, 1) probabilities in [0, 1]. The cross-entropy
    (``keras.losses.BinaryCrossentropy``, mean over pixels, >= 0) plus :class:`DiceLoss` (in [0, 1], per
    image by default): one value, >= 0, averaged over the batch. Per-pixel sample weights, (B, H, W, 1),
    weight the cross-entropy only (see :class:`LossSum`).
    """
    # Dice first: it checks the model's output channels and says what to change.
    return LossSum(
        [DiceLoss(smooth=smooth, per_image=per_image), keras.losses.BinaryCrossentropy()], name="bce_dice"
    )


def cce_dice_loss(*, smooth: float = 1.0, per_image: bool = True) -> LossSum:
    """Sparse categorical cross-entropy + multi-class Dice, for a K-channel softmax output.

    ``y_true`` (B, H, W, 1) float class indices, ``y_pred`` (B, H, W, K) softmax probabilities. The
    cross-entropy (``keras.losses.SparseCategoricalCrossentropy``, mean over pixels, >= 0) plus
    :class:`MulticlassDiceLoss` (mean over all K classes, in [0, 1], per image by default).
    """
    return LossSum(
        [
            MulticlassDiceLoss(smooth=smooth, per_image=per_image),
            keras.losses.SparseCategoricalCrossentropy(),
        ],
        name="cce_dice",
    )


def segmentation_loss(num_classes: int) -> keras.losses.Loss:
    """The loss the series trains with, for data with ``num_classes`` classes.

    Args:
        num_classes: classes in the data (background included): 2 for binary masks, which the model
            predicts with one sigmoid channel; 3 or more for a model with one softmax channel per class
            (``build_unet(num_classes=num_classes)`` builds the right one).

    Returns:
        :func:`bce_dice_loss` for 2 classes, :func:`cce_dice_loss` for more; Dice per image, smoothed by 1.

    Raises:
        UnetTutorialError: ``num_classes`` is not a whole number of 2 or more.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer) or num_classes < 2:
        raise UnetTutorialError(
            f"num_classes={num_classes!r}: pass the number of classes in the data, background included "
            "(2 for binary masks, whose model has one sigmoid channel)."
        )
    return bce_dice_loss() if num_classes == 2 else cce_dice_loss()
