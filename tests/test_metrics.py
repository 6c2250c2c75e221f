"""Metrics against values computed by hand, against Keras's IoU metrics, and inside model.fit."""

import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from segmentation_cases import pitfall_batch, ranking_case, threshold_case

from unet_helpers import losses, metrics
from unet_helpers.errors import UnetTutorialError
from unet_helpers.model import build_unet


def batch(*masks):
    """Masks written as nested lists of rows -> float32 (B, H, W, 1)."""
    return np.array(masks, dtype=np.float32)[..., np.newaxis]


def results(metric_list, y_true, y_pred, sample_weight=None):
    """{name: result} of fresh metrics after one update."""
    values = {}
    for metric in metric_list:
        metric.update_state(y_true, y_pred, sample_weight=sample_weight)
        values[metric.name] = float(metric.result())
    return values


# Binary: a 4x4 mask with 4 object pixels; the prediction finds 3 of them and 1 pixel too many.
TRUE = batch([[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]])
PROBABILITIES = batch(
    [[0.1, 0.2, 0.0, 0.0], [0.0, 0.9, 0.8, 0.7], [0.0, 0.6, 0.4, 0.0], [0.0, 0.0, 0.3, 0.0]]
)  # TP 3, FP 1 (0.7), FN 1 (0.4)


def test_binary_metrics_by_hand():
    values = results(metrics.segmentation_metrics(2), TRUE, PROBABILITIES)
    assert values == pytest.approx(
        {"dice": 2 * 3 / (2 * 3 + 1 + 1), "iou": 3 / (3 + 1 + 1), "pixel_accuracy": 14 / 16}
    )


def test_binary_metrics_of_a_perfect_and_an_all_wrong_prediction():
    assert results(metrics.segmentation_metrics(2), TRUE, TRUE) == {"dice": 1, "iou": 1, "pixel_accuracy": 1}
    assert results(metrics.segmentation_metrics(2), TRUE, 1 - TRUE) == {
        "dice": 0,
        "iou": 0,
        "pixel_accuracy": 0,
    }


def test_empty_mask_with_one_false_positive_pooled_and_per_image():
    y_true, y_pred = pitfall_batch()
    # Pooled over both images: TP 8, FP 1, FN 0.
    values = results(metrics.segmentation_metrics(2), y_true, y_pred)
    assert values == pytest.approx({"dice": 16 / 17, "iou": 8 / 9, "pixel_accuracy": 31 / 32})
    assert metrics.dice_score(y_true, y_pred) == pytest.approx(16 / 17)
    # Per image: the empty image with one false positive scores 0 (TP 0, FP 1).
    np.testing.assert_allclose(metrics.dice_score(y_true, y_pred, per_image=True), [1.0, 0.0])
    np.testing.assert_allclose(metrics.iou_score(y_true, y_pred, per_image=True), [1.0, 0.0])


def test_nothing_to_find_and_nothing_found_scores_one_where_keras_says_zero():
    empty = np.zeros((1, 4, 4, 1), np.float32)
    assert results(metrics.segmentation_metrics(2), empty, empty) == {
        "dice": 1,
        "iou": 1,
        "pixel_accuracy": 1,
    }
    keras_iou = keras.metrics.BinaryIoU(target_class_ids=[1])
    keras_iou.update_state(empty, empty)
    assert float(keras_iou.result()) == 0.0


def test_a_probability_of_exactly_one_half_is_background_as_in_binary_accuracy():
    y_true, y_pred = batch([[1, 0]]), batch([[0.5, 0.0]])
    values = results(metrics.segmentation_metrics(2), y_true, y_pred)
    assert values == {"dice": 0, "iou": 0, "pixel_accuracy": 0.5}
    assert metrics.dice_score(y_true, y_pred) == 0.0
    # keras.metrics.BinaryIoU counts p >= 0.5 as foreground instead.
    keras_iou = keras.metrics.BinaryIoU(target_class_ids=[1], threshold=0.5)
    keras_iou.update_state(y_true, y_pred)
    assert float(keras_iou.result()) == pytest.approx(1.0)


# Multi-class: 3x3 masks with classes 0 (background), 1 and 2.
TRUE_3 = batch([[0, 0, 1], [0, 1, 1], [2, 2, 1]])
PREDICTED_3 = batch([[0, 1, 1], [0, 1, 0], [2, 2, 1]])
SOFTMAX_3 = (
    keras.ops.convert_to_numpy(keras.ops.one_hot(PREDICTED_3[..., 0], 3)) * 0.6 + 0.2
)  # argmax: PREDICTED_3
# Per class, by counting pixels: class 0 TP 2 FP 1 FN 1; class 1 TP 3 FP 1 FN 1; class 2 TP 2.
DICE_3 = [4 / 6, 6 / 8, 1.0]
IOU_3 = [2 / 4, 3 / 5, 1.0]


def test_multiclass_metrics_by_hand_per_class():
    values = results(metrics.segmentation_metrics(3), TRUE_3, SOFTMAX_3)
    assert values == pytest.approx(
        {
            "dice": (DICE_3[1] + DICE_3[2]) / 2,  # foreground classes only
            "iou": (IOU_3[1] + IOU_3[2]) / 2,
            "pixel_accuracy": 7 / 9,
            **{f"dice_{index}": dice for index, dice in enumerate(DICE_3)},
            **{f"iou_{index}": iou for index, iou in enumerate(IOU_3)},
        }
    )


def test_multiclass_scores_agree_with_keras_iou_and_mean_iou_after_argmax():
    keras_foreground = keras.metrics.IoU(num_classes=3, target_class_ids=[1, 2], sparse_y_pred=False)
    keras_foreground.update_state(TRUE_3, SOFTMAX_3)
    mean_iou = keras.metrics.MeanIoU(num_classes=3)
    mean_iou.update_state(TRUE_3, np.argmax(SOFTMAX_3, axis=-1))
    assert float(mean_iou.result()) == pytest.approx(sum(IOU_3) / 3)
    assert float(keras_foreground.result()) == pytest.approx((IOU_3[1] + IOU_3[2]) / 2)
    with pytest.raises(tf.errors.InvalidArgumentError):  # MeanIoU takes class indices, not softmax outputs
        keras.metrics.MeanIoU(num_classes=3).update_state(TRUE_3, SOFTMAX_3)


def test_multiclass_numpy_scores_by_hand():
    assert metrics.dice_score(TRUE_3, SOFTMAX_3, num_classes=3) == pytest.approx((DICE_3[1] + DICE_3[2]) / 2)
    assert metrics.iou_score(TRUE_3, PREDICTED_3, num_classes=3) == pytest.approx((IOU_3[1] + IOU_3[2]) / 2)
    for index in range(3):
        assert metrics.dice_score(TRUE_3[0, ..., 0], PREDICTED_3[0], num_classes=3, class_ids=[index]) == (
            pytest.approx(DICE_3[index])
        )


def test_a_class_absent_and_not_predicted_is_left_out_of_the_mean():
    y_true = batch([[0, 1], [1, 1]])  # class 2 nowhere, and not predicted
    y_pred = batch([[0, 1], [0, 1]])  # class 1: TP 2, FN 1 -> Dice 4 / 5
    assert metrics.dice_score(y_true, y_pred, num_classes=3) == pytest.approx(4 / 5)
    assert metrics.dice_score(y_true, y_pred, num_classes=3, class_ids=[2]) == 1.0
    dice = metrics.PooledDice(3)
    dice.update_state(y_true, keras.ops.one_hot(y_pred[..., 0], 3))
    assert float(dice.result()) == pytest.approx(4 / 5)


# Keras's IoU metrics, and pooling.


def random_binary(seed, images=3, size=8):
    rng = np.random.default_rng(seed)
    y_true = (rng.random((images, size, size, 1)) < 0.3).astype(np.float32)
    return y_true, rng.random((images, size, size, 1)).astype(np.float32)


def random_multiclass(seed, num_classes=4, images=3, size=8):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, num_classes, (images, size, size, 1)).astype(np.float32)
    logits = rng.normal(size=(images, size, size, num_classes)).astype(np.float32)
    return y_true, keras.ops.convert_to_numpy(keras.ops.softmax(logits))


def test_binary_scores_agree_with_keras_binary_iou():
    y_true, y_pred = random_binary(0)
    keras_iou = keras.metrics.BinaryIoU(target_class_ids=[1], threshold=0.5)
    keras_iou.update_state(y_true, y_pred)
    jaccard = float(keras_iou.result())
    values = results(metrics.segmentation_metrics(2), y_true, y_pred)
    assert values["iou"] == pytest.approx(jaccard, rel=1e-5)
    assert values["dice"] == pytest.approx(2 * jaccard / (1 + jaccard), rel=1e-5)  # pooled Dice from IoU
    assert 0 < jaccard < 1


def test_metrics_pool_over_updates_until_reset():
    y_true, y_pred = random_multiclass(1)
    pooled = metrics.PooledDice(4)
    for index in range(3):
        pooled.update_state(y_true[index : index + 1], y_pred[index : index + 1])
    once = metrics.PooledDice(4)
    once.update_state(y_true, y_pred)
    assert float(pooled.result()) == pytest.approx(float(once.result()))
    per_image_mean = np.mean(metrics.dice_score(y_true, y_pred, num_classes=4, per_image=True))
    assert float(pooled.result()) != pytest.approx(per_image_mean)  # pooled is not the mean over images
    pooled.reset_state()
    assert float(pooled.result()) == 1.0  # nothing counted: nothing to find, nothing found
    pooled.update_state(y_true[:1], y_pred[:1])
    assert float(pooled.result()) == pytest.approx(metrics.dice_score(y_true[:1], y_pred[:1], num_classes=4))


def test_sample_weights_weight_images_and_pixels():
    y_true, y_pred = pitfall_batch()
    first_image = results([metrics.PooledDice(2)], y_true[:1], y_pred[:1])
    assert results([metrics.PooledDice(2)], y_true, y_pred, np.array([1.0, 0.0])) == first_image
    pixel_weights = np.ones_like(y_true)
    pixel_weights[1, 0, 0, 0] = 0  # hide the false positive
    assert results([metrics.PooledIoU(2)], y_true, y_pred, pixel_weights) == {"iou": 1.0}


@pytest.mark.parametrize("num_classes", [2, 4])
def test_numpy_scores_agree_with_the_keras_metrics(num_classes):
    y_true, y_pred = random_binary(2) if num_classes == 2 else random_multiclass(2, num_classes)
    values = results(metrics.segmentation_metrics(num_classes), y_true, y_pred)
    assert metrics.dice_score(y_true, y_pred, num_classes=num_classes) == pytest.approx(
        values["dice"], rel=1e-6
    )
    assert metrics.iou_score(y_true, y_pred, num_classes=num_classes) == pytest.approx(
        values["iou"], rel=1e-6
    )
    if num_classes > 2:
        for index in range(num_classes):
            score = metrics.dice_score(y_true, y_pred, num_classes=num_classes, class_ids=[index])
            assert score == pytest.approx(values[f"dice_{index}"], rel=1e-6)


def test_numpy_scores_take_masks_with_or_without_batch_and_channel_axes():
    hard = (PROBABILITIES > 0.5).astype(np.uint8)
    expected = 6 / 8
    assert metrics.dice_score(TRUE, PROBABILITIES) == pytest.approx(expected)
    assert metrics.dice_score(TRUE[0], hard[0]) == pytest.approx(expected)  # (H, W, 1)
    assert metrics.dice_score(TRUE[0, ..., 0], hard[0, ..., 0]) == pytest.approx(expected)  # (H, W)
    assert metrics.dice_score(TRUE[..., 0], PROBABILITIES) == pytest.approx(expected)  # (B, H, W)
    assert metrics.dice_score(TRUE, hard, per_image=True).shape == (1,)


def test_true_values_that_are_no_class_are_ignored_as_in_keras_iou():
    y_true = batch([[0, 1], [255, 1]])  # 255: "void", as some datasets mark pixels to ignore
    y_pred = batch([[0, 1], [1, 1]])
    values = results(metrics.segmentation_metrics(3)[:2], y_true, keras.ops.one_hot(y_pred[..., 0], 3))
    assert values == {"dice": 1.0, "iou": 1.0}
    assert metrics.dice_score(y_true, y_pred, num_classes=3) == 1.0
    keras_iou = keras.metrics.IoU(num_classes=3, target_class_ids=[1])
    keras_iou.update_state(y_true, y_pred)
    assert float(keras_iou.result()) == pytest.approx(1.0)


def test_mistakes_are_reported_in_one_line():
    with pytest.raises(UnetTutorialError, match="number of classes in the data"):
        metrics.segmentation_metrics(1)
    with pytest.raises(UnetTutorialError, match="do not fit num_classes=3"):
        metrics.PooledDice(3).update_state(TRUE_3, np.full((1, 3, 3, 1), 0.5, np.float32))
    with pytest.raises(UnetTutorialError, match="same shape"):
        metrics.dice_score(TRUE, np.zeros((1, 4, 5, 1)))
    with pytest.raises(UnetTutorialError, match="holds fractions"):
        metrics.dice_score(TRUE_3, np.full((1, 3, 3, 1), 0.5), num_classes=3)
    with pytest.raises(UnetTutorialError, match="class_ids"):
        metrics.PooledIoU(3, class_ids=[3])


# In graphs, under XLA, mixed precision and a distribution strategy.


def test_float16_predictions_and_xla_give_the_same_scores():
    y_true, y_pred = random_multiclass(3)
    eager = results(metrics.segmentation_metrics(4), y_true, y_pred)
    compiled = metrics.segmentation_metrics(4)

    @tf.function(jit_compile=True)
    def update(y_true, y_pred):
        for metric in compiled:
            metric.update_state(y_true, y_pred)

    update(tf.constant(y_true), tf.constant(y_pred, dtype=tf.float16))
    assert {metric.name: float(metric.result()) for metric in compiled} == pytest.approx(eager)


def tiny_unet(num_classes):
    return build_unet((16, 16, 3), num_classes=num_classes, base_filters=2, depth=1)


def tiny_data(num_classes, images=4):
    rng = np.random.default_rng(num_classes)
    return (
        rng.random((images, 16, 16, 3), dtype=np.float32),
        rng.integers(0, num_classes, (images, 16, 16, 1)).astype(np.float32),
    )


def check_fit_and_evaluate(model, num_classes):
    images, masks = tiny_data(num_classes)
    history = model.fit(images, masks, batch_size=2, epochs=1, validation_data=(images, masks), verbose=0)
    names = ["dice", "iou", "pixel_accuracy"]
    if num_classes > 2:
        names += [f"dice_{index}" for index in range(num_classes)] + [
            f"iou_{index}" for index in range(num_classes)
        ]
    assert {f"val_{name}" for name in names} <= set(history.history)
    # evaluate pools over its two batches: the same number as the NumPy function on all predictions.
    values = model.evaluate(images, masks, batch_size=2, verbose=0, return_dict=True)
    predictions = model.predict(images, batch_size=2, verbose=0)
    assert values["dice"] == pytest.approx(
        metrics.dice_score(masks, predictions, num_classes=num_classes), abs=1e-6
    )
    assert values["iou"] == pytest.approx(
        metrics.iou_score(masks, predictions, num_classes=num_classes), abs=1e-6
    )


def test_metrics_in_model_fit_with_xla():
    # Multi-class metrics under XLA: test_float16_predictions_and_xla_give_the_same_scores.
    model = tiny_unet(2)
    model.compile(
        optimizer="adam",
        loss=losses.segmentation_loss(2),
        metrics=metrics.segmentation_metrics(2),
        jit_compile=True,
    )
    check_fit_and_evaluate(model, 2)


def test_metrics_in_model_fit_with_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = tiny_unet(3)
        model.compile(
            optimizer="adam", loss=losses.segmentation_loss(3), metrics=metrics.segmentation_metrics(3)
        )
        check_fit_and_evaluate(model, 3)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_metrics_sum_over_two_replicas_in_fit_and_evaluate():
    # Two logical CPU devices must be set up before TensorFlow starts, so this runs in its own process.
    script = textwrap.dedent(
        """
        import numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from unet_helpers import metrics
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        y_true = np.zeros((2, 4, 4, 1), np.float32)
        y_true[0, :2] = 1
        y_pred = y_true.copy()
        y_pred[1, 0, 0, 0] = 1
        with strategy.scope():
            dice = metrics.PooledDice(2)
        pairs = tf.data.Dataset.from_tensor_slices((y_true, y_pred)).batch(2)
        dataset = strategy.experimental_distribute_dataset(pairs)
        for batch in dataset:
            strategy.run(tf.function(lambda t, p: dice.update_state(t, p)), args=batch)
        print(strategy.num_replicas_in_sync, float(dice.result()))
        dice.reset_state()
        print(float(dice.result()))

        # The series' loss and metrics in Model.fit and evaluate, each batch split over the two replicas.
        from unet_helpers import losses, model
        rng = np.random.default_rng(0)
        images = rng.random((4, 16, 16, 3), dtype=np.float32)
        masks = rng.integers(0, 2, (4, 16, 16, 1)).astype(np.float32)
        with strategy.scope():
            unet = model.build_unet(input_shape=(16, 16, 3), base_filters=4)
            unet.compile(
                optimizer="adam", loss=losses.segmentation_loss(2), metrics=metrics.segmentation_metrics(2)
            )
        unet.fit(images, masks, batch_size=2, epochs=1, validation_data=(images, masks), verbose=0)
        values = unet.evaluate(images, masks, batch_size=2, verbose=0, return_dict=True)
        predictions = unet.predict(images, batch_size=2, verbose=0)
        print(values["dice"], metrics.dice_score(masks, predictions))
        print(values["iou"], metrics.iou_score(masks, predictions))
        """
    )
    output = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    ).stdout.split()
    # Image 0 on one replica, image 1 on the other: the pooled Dice of both, 16 / 17; after reset, 1.
    assert output[0] == "2"
    assert float(output[1]) == pytest.approx(16 / 17)
    assert float(output[2]) == 1.0
    # evaluate pools over both replicas and both batches: the NumPy functions' numbers on all predictions.
    keras_dice, numpy_dice, keras_iou, numpy_iou = map(float, output[3:7])
    assert keras_dice == pytest.approx(numpy_dice, abs=1e-6) and keras_iou == pytest.approx(
        numpy_iou, abs=1e-6
    )


def test_model_with_the_metrics_saves_and_loads(tmp_path):
    model = tiny_unet(3)
    model.compile(optimizer="adam", loss=losses.segmentation_loss(3), metrics=metrics.segmentation_metrics(3))
    model.optimizer.build(model.trainable_variables)  # saved as it would be after training
    images, masks = tiny_data(3)
    model.save(tmp_path / "unet.keras")
    loaded = keras.models.load_model(tmp_path / "unet.keras")
    expected = model.evaluate(images, masks, verbose=0, return_dict=True)
    assert loaded.evaluate(images, masks, verbose=0, return_dict=True) == pytest.approx(expected)
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(metrics.PooledIoU(3, class_ids=[2], threshold=0.4, name="iou_2"))
    )
    assert (type(restored), restored.class_ids, restored.threshold, restored.name) == (
        metrics.PooledIoU,
        [2],
        0.4,
        "iou_2",
    )


# Pixel maps: where a prediction is right and wrong, images ranked, thresholds, confusion matrices.

# Binary 4x4: 4 object pixels; the prediction finds 3 (TP), adds (1, 3) (FP) and misses (2, 2) (FN).
# (0, 0) is exactly 0.5: background by the metrics' rule p > 0.5.
MAP_TRUE = np.array([[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]], np.float32)
MAP_PROBABILITIES = np.array(
    [[0.5, 0.2, 0.0, 0.0], [0.0, 0.9, 0.8, 0.7], [0.0, 0.6, 0.4, 0.0], [0.0, 0.0, 0.3, 0.0]], np.float32
)


def pixels(boolean_map):
    return {tuple(int(i) for i in index) for index in np.argwhere(boolean_map)}


def test_error_maps_land_on_the_hand_counted_pixels():
    maps = metrics.error_maps(MAP_TRUE, MAP_PROBABILITIES)
    assert pixels(maps.true_positive) == {(1, 1), (1, 2), (2, 1)}
    assert pixels(maps.false_positive) == {(1, 3)}  # not (0, 0), whose p is exactly 0.5
    assert pixels(maps.false_negative) == {(2, 2)}
    assert not maps.wrong_class.any()


def test_error_maps_multi_class_from_softmax():
    true = np.array([[0, 1, 1], [2, 2, 0]])
    predicted = np.array([[1, 1, 2], [2, 0, 0]])  # FP (0,0); wrong class (0,2); FN (1,1)
    softmax = np.eye(3, dtype=np.float32)[predicted] * 0.5 + 0.5 / 3
    maps = metrics.error_maps(true[..., None], softmax, num_classes=3)
    assert pixels(maps.false_positive) == {(0, 0)}
    assert pixels(maps.wrong_class) == {(0, 2)}
    assert pixels(maps.false_negative) == {(1, 1)}
    assert pixels(maps.true_positive) == {(0, 1), (1, 0)}


def test_rank_by_dice_orders_best_first_with_hand_counted_scores():
    masks, predictions, expected = ranking_case()
    order, scores = metrics.rank_by_dice(masks, predictions)
    np.testing.assert_allclose(scores, expected)
    assert order.tolist() == [0, 2, 1, 4, 3]  # ties keep the input order


def test_confusion_matrix_rows_are_truth_and_an_absent_class_is_a_zero_row_and_column():
    true = np.array([[0, 0, 1, 1], [2, 2, 0, 1]])
    predicted = np.array([[0, 1, 1, 1], [2, 0, 0, 2]])
    expected = [[2, 1, 0, 0], [0, 2, 1, 0], [1, 0, 1, 0], [0, 0, 0, 0]]  # class 3 in neither
    matrix = metrics.confusion_matrix(true, predicted, num_classes=4)
    assert matrix.dtype == np.int64 and matrix.tolist() == expected
    softmax = np.eye(4, dtype=np.float32)[predicted] * 0.6 + 0.1
    assert metrics.confusion_matrix(true[None, ..., None], softmax[None], num_classes=4).tolist() == expected
    ignored = true.copy()
    ignored[0, 0] = 255  # not a class: left out, as in the metrics
    assert metrics.confusion_matrix(ignored, predicted, num_classes=4).sum() == 7


def test_confusion_matrix_binary_uses_p_above_one_half():
    assert metrics.confusion_matrix(MAP_TRUE, MAP_PROBABILITIES).tolist() == [[11, 1], [1, 3]]


def test_dice_against_threshold_peaks_where_only_the_objects_are_above_it():
    mask, probabilities = threshold_case()
    thresholds, scores = metrics.dice_against_threshold(mask[None, ..., None], probabilities[None, ..., None])
    assert thresholds.tolist() == list(metrics.DEFAULT_THRESHOLDS) and 0.5 in thresholds
    by_threshold = dict(zip(np.round(thresholds, 2).tolist(), scores.tolist(), strict=True))
    # Dice = 2 TP / (2 TP + FP + FN); 0.25 is not above 0.25, so that threshold already scores 1.
    # float32 0.8 is not above the threshold 0.8: compared in float32, as the Keras metric does.
    expected = {0.05: 16 / 72, 0.2: 16 / 20, 0.25: 1.0, 0.3: 1.0, 0.4: 8 / 12, 0.5: 8 / 12, 0.8: 0.0}
    for threshold, dice in expected.items():
        assert by_threshold[threshold] == pytest.approx(dice), threshold
    assert thresholds[np.argmax(scores)] == pytest.approx(0.25)
    for threshold in (0.25, 0.8):  # the same numbers as the Keras metric at that threshold
        metric = metrics.PooledDice(threshold=threshold)
        metric.update_state(mask[None, ..., None], probabilities[None, ..., None])
        assert float(metric.result()) == pytest.approx(by_threshold[threshold])


@pytest.mark.parametrize(
    ("mask", "prediction", "num_classes"),
    [
        (MAP_TRUE, MAP_PROBABILITIES, 2),  # (H, W), (H, W)
        (MAP_TRUE[..., None], MAP_PROBABILITIES[..., None], 2),  # (H, W, 1), (H, W, 1) sigmoid
        (MAP_TRUE, MAP_PROBABILITIES[..., None], 2),
        (
            MAP_TRUE[..., None],
            np.stack([1 - MAP_PROBABILITIES, MAP_PROBABILITIES], axis=-1),
            2,
        ),  # 2-channel softmax
        (MAP_TRUE[..., None], np.eye(3)[(MAP_PROBABILITIES > 0.5).astype(int)], 3),  # softmax (H, W, K)
    ],
)
def test_class_maps_accepts_every_documented_shape(mask, prediction, num_classes):
    true, predicted = metrics.class_maps(mask, prediction, num_classes=num_classes)
    assert true.shape == predicted.shape == (4, 4)
    assert predicted.tolist() == (MAP_PROBABILITIES > 0.5).astype(int).tolist()


def test_pixel_map_mistakes_are_reported_in_one_line():
    masks = np.zeros((2, 4, 4))
    for function, args, options, words in (
        (metrics.class_maps, (MAP_TRUE, np.zeros((5, 5))), {}, "predicted_mask"),
        (metrics.dice_against_threshold, (masks, np.full((2, 4, 4, 2), 0.5)), {}, "sigmoid"),
        (metrics.dice_against_threshold, (masks, np.full((2, 4, 4), 3.0)), {}, "logits"),
        (metrics.dice_against_threshold, (masks, masks), {"thresholds": [0.5, 1.5]}, "thresholds="),
        (metrics.confusion_matrix, (masks, np.full((2, 4, 4), 5)), {"num_classes": 3}, "outside 0..2"),
    ):
        with pytest.raises(UnetTutorialError, match=re.escape(words)) as caught:
            function(*args, **options)
        assert "\n" not in str(caught.value)
