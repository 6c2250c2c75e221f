"""Losses against values computed by hand from their formulas on tiny masks, and Keras's pieces we use;
per-pixel weights, in the loss and in model.fit."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from segmentation_cases import pitfall_batch

from unet_helpers import losses, metrics
from unet_helpers.errors import UnetTutorialError
from unet_helpers.model import build_unet
from unet_helpers.training import compile_unet


def batch(*masks):
    """Masks written as nested lists of rows -> float32 (B, H, W, 1)."""
    return np.array(masks, dtype=np.float32)[..., np.newaxis]


def value(loss, y_true, y_pred, **kwargs):
    return float(keras.ops.convert_to_numpy(loss(y_true, y_pred, **kwargs)))


# A 2x2 mask with its top row foreground, and a prediction with one sure and two unsure pixels.
MASK = batch([[1, 1], [0, 0]])
PREDICTION = batch([[1.0, 0.5], [0.0, 0.5]])


# Keras's cross-entropies, checked before we build on them.


def test_keras_binary_crossentropy_is_the_mean_over_pixels():
    y_true = batch([[1, 0], [1, 0]])
    y_pred = batch([[0.9, 0.1], [0.1, 0.9]])  # two right, two wrong, each with 0.9 confidence
    assert value(keras.losses.BinaryCrossentropy(), y_true, y_pred) == pytest.approx(
        (2 * -math.log(0.9) + 2 * -math.log(0.1)) / 4, rel=1e-5
    )
    assert value(keras.losses.BinaryCrossentropy(), y_true, y_true) == pytest.approx(0.0, abs=1e-6)
    all_wrong = batch([[0.1, 0.9], [0.1, 0.9]])
    assert value(keras.losses.BinaryCrossentropy(), y_true, all_wrong) == pytest.approx(
        -math.log(0.1), rel=1e-5
    )


def test_keras_binary_crossentropy_takes_per_pixel_weights_as_a_weighted_mean_over_pixels():
    y_true = batch([[1, 0], [1, 0]])
    y_pred = batch([[0.9, 0.1], [0.1, 0.9]])
    weights = batch([[1, 2], [3, 4]])  # (B, H, W, 1), like instances.border_weights of each mask
    expected = (1 * -math.log(0.9) + 2 * -math.log(0.9) + 3 * -math.log(0.1) + 4 * -math.log(0.1)) / 4
    loss = value(keras.losses.BinaryCrossentropy(), y_true, y_pred, sample_weight=weights)
    assert loss == pytest.approx(expected, rel=1e-5)


def test_keras_sparse_categorical_crossentropy_takes_float_index_masks_with_a_channel_axis():
    y_true = batch([[0, 1], [2, 1]])  # (1, 2, 2, 1) float32 class indices, as the data gives them
    y_pred = np.array(
        [[[[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]], [[0.2, 0.2, 0.6], [0.5, 0.25, 0.25]]]], np.float32
    )
    expected = -(math.log(0.7) + math.log(0.8) + math.log(0.6) + math.log(0.25)) / 4
    assert value(keras.losses.SparseCategoricalCrossentropy(), y_true, y_pred) == pytest.approx(
        expected, rel=1e-5
    )


# Dice.


def test_dice_loss_by_hand():
    # intersection = 1 + 0.5 = 1.5, sum(t) = 2, sum(p) = 2
    assert value(losses.DiceLoss(), MASK, PREDICTION) == pytest.approx(1 - (2 * 1.5 + 1) / (2 + 2 + 1))
    assert value(losses.DiceLoss(smooth=0), MASK, PREDICTION) == pytest.approx(1 - 2 * 1.5 / 4)


def test_dice_loss_of_a_perfect_and_an_all_wrong_prediction():
    assert value(losses.DiceLoss(), MASK, MASK) == pytest.approx(0.0)
    # all wrong: intersection 0, sum(t) = 2, sum(p) = 2
    assert value(losses.DiceLoss(), MASK, 1 - MASK) == pytest.approx(1 - 1 / 5)
    assert value(losses.DiceLoss(smooth=0), MASK, 1 - MASK) == pytest.approx(1.0)


def test_empty_mask_predicted_empty_costs_nothing_unlike_keras_dice():
    empty = batch([[0, 0], [0, 0]])
    assert value(losses.DiceLoss(), empty, empty) == pytest.approx(0.0)
    # keras.losses.Dice has no smoothing: a perfect prediction of an empty mask costs the maximum.
    assert value(keras.losses.Dice(axis=(1, 2, 3)), empty, empty) == pytest.approx(1.0)
    # n false positives on an empty image cost n / (n + 1)
    assert value(losses.DiceLoss(), empty, batch([[1, 0], [0, 0]])) == pytest.approx(1 / 2)
    assert value(losses.DiceLoss(), empty, batch([[1, 1], [1, 0]])) == pytest.approx(3 / 4)


def test_pitfall_batch_pooled_against_per_image_dice():
    y_true, y_pred = pitfall_batch()
    pooled = 1 - 2 * 8 / (8 + 9)  # one Dice over both images: 0.06
    per_image = (0 + 1) / 2  # image 0 perfect (0), image 1 all wrong (1): 0.5
    assert value(keras.losses.Dice(), y_true, y_pred) == pytest.approx(pooled)
    assert value(keras.losses.Dice(axis=(1, 2, 3)), y_true, y_pred) == pytest.approx(per_image)
    assert value(losses.DiceLoss(smooth=0, per_image=False), y_true, y_pred) == pytest.approx(pooled)
    assert value(losses.DiceLoss(smooth=0), y_true, y_pred) == pytest.approx(per_image)
    # The default: per image, smoothed by 1; the false positive costs its image 1 - 1 / 2.
    assert value(losses.DiceLoss(), y_true, y_pred) == pytest.approx((0 + 0.5) / 2)


def test_dice_loss_returns_one_value_per_image():
    y_true, y_pred = pitfall_batch()
    per_image = losses.DiceLoss(reduction=None)(y_true, y_pred)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(per_image), [0.0, 0.5], atol=1e-6)


def test_multiclass_dice_loss_by_hand_per_class():
    y_true = batch([[0, 1], [2, 1]])
    y_pred = np.array([[[[1, 0, 0], [0, 1, 0]], [[0, 0.5, 0.5], [0, 1, 0]]]], np.float32)
    # Pixels in reading order; per class: intersection, sum(t), sum(p), Dice with smooth 1.
    class_0 = (2 * 1 + 1) / (1 + 1 + 1)  # t = 1000, p = 1000
    class_1 = (2 * 2 + 1) / (2 + 2.5 + 1)  # t = 0101, p = 0 1 .5 1
    class_2 = (2 * 0.5 + 1) / (1 + 0.5 + 1)  # t = 0010, p = 0 0 .5 0
    expected = 1 - (class_0 + class_1 + class_2) / 3
    assert value(losses.MulticlassDiceLoss(), y_true, y_pred) == pytest.approx(expected, rel=1e-6)
    assert value(losses.MulticlassDiceLoss(), y_true, keras.ops.one_hot(y_true[..., 0], 3)) == pytest.approx(
        0.0
    )


def test_multiclass_dice_scores_a_class_absent_and_not_predicted_as_perfect():
    y_true = batch([[0, 1], [1, 1]])  # no class 2 in this image
    one_hot = keras.ops.one_hot(y_true[..., 0], 3)
    assert value(losses.MulticlassDiceLoss(), y_true, one_hot) == pytest.approx(0.0)
    # all wrong: class 0 predicted where 1 is, and the other way round; class 2 still absent (Dice 1)
    swapped = keras.ops.one_hot(1 - y_true[..., 0], 3)
    expected = 1 - ((0 + 1) / (1 + 3 + 1) + (0 + 1) / (3 + 1 + 1) + 1) / 3
    assert value(losses.MulticlassDiceLoss(), y_true, swapped) == pytest.approx(expected, rel=1e-6)


# The sums and segmentation_loss.


def test_bce_dice_is_keras_binary_crossentropy_plus_dice():
    y_true, y_pred = pitfall_batch()
    y_pred = np.clip(y_pred, 0.2, 0.7)
    expected = value(keras.losses.BinaryCrossentropy(), y_true, y_pred) + value(
        losses.DiceLoss(), y_true, y_pred
    )
    assert value(losses.bce_dice_loss(), y_true, y_pred) == pytest.approx(expected, rel=1e-6)


def test_cce_dice_is_keras_sparse_categorical_crossentropy_plus_multiclass_dice():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, (2, 4, 4, 1)).astype(np.float32)
    y_pred = keras.ops.convert_to_numpy(keras.ops.softmax(rng.normal(size=(2, 4, 4, 3)).astype(np.float32)))
    expected = value(keras.losses.SparseCategoricalCrossentropy(), y_true, y_pred) + value(
        losses.MulticlassDiceLoss(), y_true, y_pred
    )
    assert value(losses.cce_dice_loss(), y_true, y_pred) == pytest.approx(expected, rel=1e-6)


def test_loss_sum_weights_whole_images():
    y_true, y_pred = pitfall_batch()
    y_pred = np.clip(y_pred, 0.2, 0.7)
    first_alone = value(losses.bce_dice_loss(), y_true[:1], y_pred[:1])
    weighted = value(losses.bce_dice_loss(), y_true, y_pred, sample_weight=np.array([2.0, 0.0]))
    assert weighted == pytest.approx(2 * first_alone / 2, rel=1e-6)  # mean over the 2 images


def test_segmentation_loss_picks_by_the_data_classes():
    binary = losses.segmentation_loss(2)
    assert [type(part) for part in binary.losses] == [losses.DiceLoss, keras.losses.BinaryCrossentropy]
    multi = losses.segmentation_loss(4)
    assert [type(part) for part in multi.losses] == [
        losses.MulticlassDiceLoss,
        keras.losses.SparseCategoricalCrossentropy,
    ]


@pytest.mark.parametrize("num_classes", [1, 0, 2.0, True])
def test_segmentation_loss_rejects_a_class_count_that_is_no_data_class_count(num_classes):
    with pytest.raises(UnetTutorialError, match="number of classes in the data"):
        losses.segmentation_loss(num_classes)


def test_losses_name_a_model_head_that_does_not_fit():
    y_true = batch([[0, 1], [2, 1]])
    with pytest.raises(UnetTutorialError, match="1-channel sigmoid"):
        losses.bce_dice_loss()(y_true, np.full((1, 2, 2, 3), 1 / 3, np.float32))
    with pytest.raises(UnetTutorialError, match="one channel per class"):
        losses.cce_dice_loss()(y_true, np.full((1, 2, 2, 1), 0.5, np.float32))


def test_float16_predictions_give_the_float32_loss():
    loss = losses.bce_dice_loss()
    expected = value(loss, MASK, PREDICTION)
    result = loss(MASK, PREDICTION.astype(np.float16))
    assert result.dtype == "float32"
    assert float(result) == pytest.approx(expected, rel=1e-3)


@pytest.mark.parametrize("num_classes", [2, 3])
def test_model_with_the_loss_saves_and_loads(tmp_path, num_classes):
    model = build_unet((16, 16, 3), num_classes=num_classes, base_filters=2, depth=1)
    model.compile(optimizer="adam", loss=losses.segmentation_loss(num_classes))
    rng = np.random.default_rng(0)
    images = rng.random((2, 16, 16, 3), dtype=np.float32)
    masks = rng.integers(0, num_classes, (2, 16, 16, 1)).astype(np.float32)
    model.fit(images, masks, epochs=1, verbose=0)
    path = tmp_path / "unet.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.loss) is losses.LossSum
    assert loaded.loss.get_config() == model.loss.get_config()
    assert loaded.evaluate(images, masks, verbose=0) == pytest.approx(
        model.evaluate(images, masks, verbose=0)
    )


def test_dice_loss_config_round_trip_keeps_its_settings():
    loss = losses.DiceLoss(smooth=0.5, per_image=False)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert (type(restored), restored.smooth, restored.per_image) == (losses.DiceLoss, 0.5, False)


# Per-pixel weights (the paper's border weights): they weight the cross-entropy, not the Dice.


def random_case(num_classes, seed=0):
    """y_true (2, 6, 6, 1) float class indices and y_pred probabilities: 1 sigmoid or K softmax channels."""
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, num_classes, (2, 6, 6, 1)).astype(np.float32)
    if num_classes == 2:
        return y_true, rng.uniform(0.05, 0.95, (2, 6, 6, 1)).astype(np.float32)
    logits = rng.normal(size=(2, 6, 6, num_classes)).astype(np.float32)
    return y_true, keras.ops.convert_to_numpy(keras.ops.softmax(logits))


@pytest.mark.parametrize("num_classes", [2, 3])
@pytest.mark.parametrize("shape", [(2, 6, 6, 1), (2, 6, 6)])
def test_weighted_loss_with_all_weights_one_is_the_plain_loss(num_classes, shape):
    y_true, y_pred = random_case(num_classes)
    loss = losses.segmentation_loss(num_classes)
    plain = value(loss, y_true, y_pred)
    assert value(loss, y_true, y_pred, sample_weight=np.ones(shape, np.float32)) == pytest.approx(
        plain, rel=1e-6
    )


@pytest.mark.parametrize("num_classes", [2, 3])
def test_weights_of_two_double_the_cross_entropy_and_leave_the_dice(num_classes):
    y_true, y_pred = random_case(num_classes, seed=1)
    loss = losses.segmentation_loss(num_classes)
    cross_entropy = value(loss.losses[1], y_true, y_pred)
    doubled = value(loss, y_true, y_pred, sample_weight=np.full((2, 6, 6, 1), 2.0, np.float32))
    assert doubled == pytest.approx(value(loss, y_true, y_pred) + cross_entropy, rel=1e-6)


def test_per_pixel_weights_by_hand():
    weights = batch([[1, 2], [3, 4]])
    # Cross-entropy per pixel of MASK against PREDICTION (Keras clips 1.0 and 0.0 to 1 - 1e-7 and 1e-7).
    per_pixel = [-math.log(1 - 1e-7), -math.log(0.5), -math.log(1 - 1e-7), -math.log(0.5)]
    weighted_cross_entropy = (1 * per_pixel[0] + 2 * per_pixel[1] + 3 * per_pixel[2] + 4 * per_pixel[3]) / 4
    dice = 1 - (2 * 1.5 + 1) / (2 + 2 + 1)  # unweighted, as in test_dice_loss_by_hand
    loss = value(losses.bce_dice_loss(), MASK, PREDICTION, sample_weight=weights)
    assert loss == pytest.approx(weighted_cross_entropy + dice, rel=1e-5)
    # Two images: the mean over the batch of each image's weighted cross-entropy + Dice.
    two = value(
        losses.bce_dice_loss(),
        np.concatenate([MASK, MASK]),
        np.concatenate([PREDICTION, MASK]),
        sample_weight=np.concatenate([weights, weights]),
    )
    perfect = (1 + 2 + 3 + 4) * -math.log(1 - 1e-7) / 4
    assert two == pytest.approx((weighted_cross_entropy + dice + perfect) / 2, rel=1e-5)


def test_per_pixel_weights_of_another_shape_raise_one_line_errors():
    with pytest.raises(UnetTutorialError, match="one weight per mask pixel"):
        losses.bce_dice_loss()(MASK, PREDICTION, sample_weight=np.ones((1, 2, 2, 2), np.float32))


def test_float16_predictions_with_per_pixel_weights_give_the_float32_loss():
    weights = batch([[1, 2], [3, 4]])
    loss = losses.bce_dice_loss()
    expected = value(loss, MASK, PREDICTION, sample_weight=weights)
    result = loss(MASK, PREDICTION.astype(np.float16), sample_weight=weights)
    assert result.dtype == "float32"
    assert float(result) == pytest.approx(expected, rel=1e-3)


def test_fit_on_image_mask_weight_batches_weights_the_loss_and_not_the_metrics():
    """A dataset of (image, mask, weights) in model.fit: Keras passes the weights to the loss as
    sample_weight, and updates the ``metrics=`` of compile_unet without them (keras/src/trainers/
    compile_utils.py: only ``weighted_metrics=`` get them)."""
    rng = np.random.default_rng(0)
    images = rng.random((4, 16, 16, 3), dtype=np.float32)
    masks = (rng.random((4, 16, 16, 1)) > 0.6).astype(np.float32)
    weights = (1 + 9 * rng.random((4, 16, 16, 1))).astype(np.float32)
    dataset = tf.data.Dataset.from_tensor_slices((images, masks, weights)).batch(2)
    model = compile_unet(build_unet((16, 16, 3), num_classes=2, base_filters=2, depth=1), num_classes=2)
    history = model.fit(dataset, epochs=1, shuffle=False, verbose=0)  # the dataset shuffles, if anything
    assert np.isfinite(history.history["loss"][0])

    logged = model.evaluate(dataset, verbose=0, return_dict=True)
    predictions = model.predict(images, batch_size=2, verbose=0)
    assert logged["dice"] == pytest.approx(metrics.dice_score(masks, predictions), abs=1e-6)
    weighted = np.mean(
        [
            value(model.loss, masks[i : i + 2], predictions[i : i + 2], sample_weight=weights[i : i + 2])
            for i in (0, 2)
        ]
    )
    plain = value(model.loss, masks, predictions)
    assert logged["loss"] == pytest.approx(weighted, rel=1e-4)
    assert abs(weighted - plain) > 0.1  # the weights did change the loss
