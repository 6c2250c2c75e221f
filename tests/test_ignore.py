"""Pixels to ignore (``mask_classes.IGNORE_CLASS``, a dataset's void): the losses and metrics leave them
out, whatever is predicted there; augmentation keeps them with their image; figures draw them in gray."""

import math

import keras
import matplotlib
import numpy as np
import pytest
import tensorflow as tf
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb, to_rgba

from unet_helpers import augment, losses, metrics, viz
from unet_helpers.mask_classes import IGNORE_CLASS
from unet_helpers.model import build_unet

matplotlib.use("Agg")

VOID_CLASSES = 11  # CamVid: classes 0-10, then a void class stored as 11 and loaded as IGNORE_CLASS


def probabilities(rng, shape, channels):
    """Random probabilities (*shape, channels): sigmoid outputs for 1 channel, softmax outputs otherwise."""
    if channels == 1:
        return rng.uniform(0.02, 0.98, (*shape, 1)).astype(np.float32)
    logits = rng.normal(scale=2, size=(*shape, channels)).astype(np.float32)
    return keras.ops.convert_to_numpy(keras.ops.softmax(logits))


def case(num_classes, seed=0):
    """y_true (4, 6, 6, 1) and y_pred: image 0 has a void band, image 1 none, image 2 scattered void pixels,
    image 3 nothing but void. y_pred has 1 sigmoid channel for 2 classes, else ``num_classes`` channels."""
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, num_classes, (4, 6, 6, 1)).astype(np.float32)
    y_true[0, :2] = IGNORE_CLASS
    y_true[2][rng.random((6, 6, 1)) < 0.3] = IGNORE_CLASS
    y_true[3] = IGNORE_CLASS
    channels = 1 if num_classes == 2 else num_classes
    return y_true, probabilities(rng, (4, 6, 6), channels)


def garbage_variants(y_true, y_pred):
    """y_pred with other values at ignored pixels: random, hard 0/1 (log 0), all 0 (no distribution)."""
    ignored = y_true == IGNORE_CLASS
    random = probabilities(np.random.default_rng(99), y_true.shape[:3], y_pred.shape[-1])
    hard = (random > 0.5).astype(np.float32)
    return [np.where(ignored, other, y_pred) for other in (random, hard, np.zeros_like(y_pred))]


def loss_and_gradient(loss, y_true, y_pred, **kwargs):
    y_pred = tf.constant(y_pred)
    with tf.GradientTape() as tape:
        tape.watch(y_pred)
        value = loss(y_true, y_pred, **kwargs)
    return float(value), tape.gradient(value, y_pred).numpy()


def valid_pixels_only(loss, y_true, y_pred, sample_weight=None):
    """The loss (mean over images) and its gradient, each image scored on its valid pixels alone: a batch
    (1, 1, n, C) that holds no ignored pixel. An image without a valid pixel adds 0."""
    value, gradient = 0.0, np.zeros_like(y_pred)
    for index in range(len(y_true)):
        valid = y_true[index, ..., 0] != IGNORE_CLASS
        if not valid.any():
            continue
        kwargs = {} if sample_weight is None else {"sample_weight": sample_weight[index][valid][None, None]}
        image_value, image_gradient = loss_and_gradient(
            loss, y_true[index][valid][None, None], y_pred[index][valid][None, None], **kwargs
        )
        value += image_value / len(y_true)
        gradient[index][valid] = image_gradient[0, 0] / len(y_true)
    return value, gradient


LOSSES = {
    "bce_dice": (2, losses.bce_dice_loss),
    "dice": (2, losses.DiceLoss),
    "dice_unsmoothed": (2, lambda: losses.DiceLoss(smooth=0)),
    "cce_dice": (VOID_CLASSES, losses.cce_dice_loss),
    "multiclass_dice": (VOID_CLASSES, losses.MulticlassDiceLoss),
}


# --- (a) losses ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LOSSES)
def test_garbage_at_ignored_pixels_changes_neither_the_loss_nor_its_gradient(name):
    num_classes, make_loss = LOSSES[name]
    y_true, y_pred = case(num_classes)
    value, gradient = loss_and_gradient(make_loss(), y_true, y_pred)
    assert np.isfinite(value) and np.isfinite(gradient).all()
    ignored = np.broadcast_to(y_true == IGNORE_CLASS, gradient.shape)
    assert np.all(gradient[ignored] == 0) and np.any(gradient[~ignored] != 0)
    for other in garbage_variants(y_true, y_pred):
        other_value, other_gradient = loss_and_gradient(make_loss(), y_true, other)
        assert other_value == value
        np.testing.assert_array_equal(other_gradient, gradient)


@pytest.mark.parametrize("name", LOSSES)
def test_the_loss_is_the_loss_of_each_images_valid_pixels_alone(name):
    num_classes, make_loss = LOSSES[name]
    y_true, y_pred = case(num_classes, seed=1)
    value, gradient = loss_and_gradient(make_loss(), y_true, y_pred)
    expected_value, expected_gradient = valid_pixels_only(make_loss(), y_true, y_pred)
    assert value == pytest.approx(expected_value, rel=1e-5)
    np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("loss_class", [losses.DiceLoss, losses.MulticlassDiceLoss])
def test_pooled_dice_is_the_dice_of_all_valid_pixels_together(loss_class):
    y_true, y_pred = case(2 if loss_class is losses.DiceLoss else VOID_CLASSES, seed=2)
    valid = y_true[..., 0] != IGNORE_CLASS
    loss = loss_class(per_image=False)
    expected = float(loss(y_true[valid][None, None], y_pred[valid][None, None]))
    assert float(loss(y_true, y_pred)) == pytest.approx(expected, rel=1e-6)


def test_bce_dice_by_hand_with_one_ignored_pixel():
    y_true = np.array([[[1], [IGNORE_CLASS]], [[0], [0]]], np.float32)[None]
    for garbage in (0.0, 0.5, 1.0):
        y_pred = np.array([[[0.8], [garbage]], [[0.3], [0.1]]], np.float32)[None]
        cross_entropy = -(math.log(0.8) + math.log(0.7) + math.log(0.9)) / 3  # 3 valid pixels, not 4
        dice = 1 - (2 * 0.8 + 1) / (1 + (0.8 + 0.3 + 0.1) + 1)
        assert float(losses.bce_dice_loss()(y_true, y_pred)) == pytest.approx(cross_entropy + dice, rel=1e-5)


def test_cce_dice_by_hand_with_one_ignored_pixel():
    y_true = np.array([[[0], [IGNORE_CLASS]], [[2], [1]]], np.float32)[None]
    valid = [[0.7, 0.2, 0.1], [0.2, 0.2, 0.6], [0.1, 0.8, 0.1]]  # classes 0, 2, 1
    cross_entropy = -(math.log(0.7) + math.log(0.6) + math.log(0.8)) / 3
    # Per class over the 3 valid pixels: (2 * intersection + 1) / (sum(t) + sum(p) + 1).
    dice = [(2 * 0.7 + 1) / (1 + 1.0 + 1), (2 * 0.8 + 1) / (1 + 1.2 + 1), (2 * 0.6 + 1) / (1 + 0.8 + 1)]
    for garbage in ([0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1 / 3] * 3):
        y_pred = np.array([[valid[0], garbage], valid[1:]], np.float32)[None]
        expected = cross_entropy + 1 - np.mean(dice)
        assert float(losses.cce_dice_loss()(y_true, y_pred)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("num_classes", [2, VOID_CLASSES])
def test_per_pixel_weights_at_ignored_pixels_count_as_zero(num_classes):
    y_true, y_pred = case(num_classes, seed=3)
    loss = losses.segmentation_loss(num_classes)
    weights = np.random.default_rng(3).uniform(0.5, 5.0, y_true.shape).astype(np.float32)
    ignored = y_true == IGNORE_CLASS
    value, gradient = loss_and_gradient(loss, y_true, y_pred, sample_weight=weights)
    for at_ignored in (0.0, 1000.0):
        other = loss_and_gradient(loss, y_true, y_pred, sample_weight=np.where(ignored, at_ignored, weights))
        assert other[0] == value
        np.testing.assert_array_equal(other[1], gradient)
    expected_value, expected_gradient = valid_pixels_only(loss, y_true, y_pred, sample_weight=weights)
    assert value == pytest.approx(expected_value, rel=1e-5)
    np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("name", LOSSES)
def test_an_image_with_every_pixel_ignored_contributes_zero(name):
    num_classes, make_loss = LOSSES[name]
    y_true, y_pred = case(num_classes, seed=4)
    pair = [1, 3]  # image 3 is all void
    value, gradient = loss_and_gradient(make_loss(), y_true[pair], y_pred[pair])
    assert value == pytest.approx(float(make_loss()(y_true[1:2], y_pred[1:2])) / 2, rel=1e-6)
    assert np.all(gradient[1] == 0) and np.isfinite(gradient).all()


@pytest.mark.parametrize("num_classes", [2, VOID_CLASSES])
def test_float16_predictions_with_ignored_pixels_give_the_float32_loss(num_classes):
    y_true, y_pred = case(num_classes, seed=5)
    loss = losses.segmentation_loss(num_classes)
    result = loss(y_true, y_pred.astype(np.float16))
    assert result.dtype == "float32"
    assert float(result) == pytest.approx(float(loss(y_true, y_pred)), rel=1e-3)


def test_keras_ignore_class_averages_over_the_batch_not_per_image():
    """Why the losses do not use SparseCategoricalCrossentropy(ignore_class=...): it averages over the
    valid pixels of the whole batch, so an image with a large void weighs less than the others."""
    y_true, y_pred = case(VOID_CLASSES, seed=6)
    y_true, y_pred = y_true[:2], y_pred[:2]  # image 0: 12 of 36 pixels void; image 1: none
    valid = y_true[..., 0] != IGNORE_CLASS
    picked = np.take_along_axis(y_pred, np.where(valid, y_true[..., 0], 0).astype(int)[..., None], -1)
    cross_entropy = -np.log(picked[..., 0])
    keras_value = float(keras.losses.SparseCategoricalCrossentropy(ignore_class=IGNORE_CLASS)(y_true, y_pred))
    assert keras_value == pytest.approx(cross_entropy[valid].mean(), rel=1e-5)
    per_image = np.mean([cross_entropy[index][valid[index]].mean() for index in range(2)])
    ours = losses.LossSum([keras.losses.SparseCategoricalCrossentropy()])
    assert float(ours(y_true, y_pred)) == pytest.approx(per_image, rel=1e-5)
    assert abs(per_image - cross_entropy[valid].mean()) > 1e-3


# --- (b) a void class in an 11-class model ------------------------------------------------------------


def metric_values(metric_list, y_true, y_pred):
    values = {}
    for metric in metric_list:
        metric.update_state(y_true, y_pred)
        values[metric.name] = float(metric.result())
    return values


def test_a_void_class_trains_and_is_left_out_of_the_metrics():
    rng = np.random.default_rng(0)
    images = rng.random((2, 16, 16, 3), dtype=np.float32)
    masks = rng.integers(0, VOID_CLASSES, (2, 16, 16, 1)).astype(np.float32)
    masks[0, :5] = IGNORE_CLASS
    masks[1, :, 10:] = IGNORE_CLASS
    model = build_unet((16, 16, 3), num_classes=VOID_CLASSES, base_filters=4, depth=1)
    model.compile(
        optimizer="adam",
        loss=losses.segmentation_loss(VOID_CLASSES),
        metrics=metrics.segmentation_metrics(VOID_CLASSES),
    )
    history = model.fit(images, masks, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert all(np.isfinite(weight).all() for weight in model.get_weights())
    logged = model.evaluate(images, masks, batch_size=2, verbose=0, return_dict=True)
    predictions = model.predict(images, batch_size=2, verbose=0)
    valid = masks[..., 0] != IGNORE_CLASS
    expected = metric_values(
        metrics.segmentation_metrics(VOID_CLASSES), masks[valid][None, None], predictions[valid][None, None]
    )
    assert {name: logged[name] for name in expected} == pytest.approx(expected, abs=1e-6)
    expected_loss, _ = valid_pixels_only(model.loss, masks, predictions)
    assert logged["loss"] == pytest.approx(expected_loss, rel=1e-4)


# --- (c) metrics --------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_classes", [2, VOID_CLASSES])
def test_keras_metrics_leave_ignored_pixels_out(num_classes):
    y_true, y_pred = case(num_classes, seed=7)
    valid = y_true[..., 0] != IGNORE_CLASS
    expected = metric_values(
        metrics.segmentation_metrics(num_classes), y_true[valid][None, None], y_pred[valid][None, None]
    )
    for other in [y_pred, *garbage_variants(y_true, y_pred)]:
        assert metric_values(metrics.segmentation_metrics(num_classes), y_true, other) == pytest.approx(
            expected, abs=1e-7
        )
    assert set(expected) >= {"dice", "iou", "pixel_accuracy"}


@pytest.mark.parametrize("num_classes", [2, VOID_CLASSES])
def test_numpy_scores_leave_ignored_pixels_out(num_classes):
    y_true, y_pred = case(num_classes, seed=8)
    valid = y_true[..., 0] != IGNORE_CLASS
    scores = (metrics.dice_score, metrics.iou_score)
    expected = [score(y_true[valid][None], y_pred[valid][None], num_classes=num_classes) for score in scores]
    per_image = [
        [
            score(y_true[i][valid[i]][None], y_pred[i][valid[i]][None], num_classes=num_classes)
            for i in (0, 1, 2)
        ]
        + [1.0]  # image 3, all void: nothing to find, nothing found
        for score in scores
    ]
    matrix = metrics.confusion_matrix(y_true[valid][None], y_pred[valid][None], num_classes=num_classes)
    for other in [y_pred, *garbage_variants(y_true, y_pred)]:
        for score, pooled, images in zip(scores, expected, per_image, strict=True):
            assert score(y_true, other, num_classes=num_classes) == pytest.approx(pooled)
            np.testing.assert_allclose(score(y_true, other, num_classes=num_classes, per_image=True), images)
        ranking = metrics.rank_by_dice(y_true, other, num_classes=num_classes)
        np.testing.assert_allclose(ranking.scores, per_image[0])
        np.testing.assert_array_equal(
            metrics.confusion_matrix(y_true, other, num_classes=num_classes), matrix
        )
        maps = metrics.error_maps(y_true, other, num_classes=num_classes)
        assert not np.any(np.any(list(maps), axis=0)[~valid])
        true_classes, _ = metrics.class_maps(y_true, other, num_classes=num_classes)
        np.testing.assert_array_equal(true_classes == IGNORE_CLASS, ~valid)
    assert matrix.sum() == valid.sum()


def test_dice_against_threshold_leaves_ignored_pixels_out():
    y_true, y_pred = case(2, seed=9)
    valid = y_true[..., 0] != IGNORE_CLASS
    expected = metrics.dice_against_threshold(y_true[valid][None], y_pred[valid][None])[1]
    for other in garbage_variants(y_true, y_pred):
        np.testing.assert_allclose(metrics.dice_against_threshold(y_true, other)[1], expected)


def test_pixel_accuracies_survive_a_save_and_a_load():
    for metric in metrics.segmentation_metrics(2)[2:] + metrics.segmentation_metrics(3)[2:3]:
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
        assert type(restored) is type(metric) and restored.get_config() == metric.get_config()


# --- (d) augmentation ---------------------------------------------------------------------------------


def void_batch(dtype):
    """Images whose channel 0 is 1 exactly where the mask is void (blocks of void, class 1 and class 0)."""
    masks = np.zeros((8, 32, 32, 1), np.float32)
    masks[:, 4:14, 6:20] = IGNORE_CLASS
    masks[:, 18:28, 10:26] = 1
    masks[1::2] = np.rot90(masks[1::2], axes=(1, 2))  # not the same layout in every image
    images = np.concatenate([masks == IGNORE_CLASS, masks == 1, np.zeros_like(masks)], axis=-1)
    return images.astype(np.float32), masks.astype(dtype)


def check_aligned(images, masks):
    """Where the image reads only void pixels (bilinear weight 1), the mask, their nearest one, is void;
    where it reads none, the mask is not void."""
    images, masks = np.asarray(images), np.asarray(masks, np.float32)
    assert set(np.unique(masks)) <= {0.0, 1.0, IGNORE_CLASS}
    void = masks[..., 0] == IGNORE_CLASS
    assert np.all(void[images[..., 0] == 1.0]) and not np.any(void[images[..., 0] == 0.0])
    assert void.any()


@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_augmentation_moves_ignored_pixels_with_their_image(dtype):
    images, masks = void_batch(dtype)
    geometry = augment.AugmentOptions.only(*augment.GEOMETRIC, max_rotation=30, elastic_std=0.05)
    for seed in ([1, 2], [3, 4], [5, 6]):
        out_images, out_masks = augment.augment_batch(images, masks, seed=seed, options=geometry)
        assert out_masks.dtype == dtype
        check_aligned(out_images, out_masks)
    dataset = tf.data.Dataset.from_tensor_slices((images, masks)).batch(4)
    for out_images, out_masks in augment.augment_dataset(dataset, seed=7, options=geometry):
        check_aligned(out_images, out_masks)


def test_outside_label_ignore_class_marks_pixels_from_outside_the_image_as_ignored():
    images, masks = void_batch(np.float32)
    options = augment.AugmentOptions.only(
        "translate", "zoom", max_translation=0.3, outside_label=IGNORE_CLASS
    )
    _, out_masks = augment.augment_batch(images, masks, seed=[7, 11], options=options)
    source_y, source_x = (
        coordinate.numpy()
        for coordinate in augment.sampling_map(8, 32, 32, seed=tf.constant([7, 11]), options=options)
    )
    outside = (np.abs(source_y - 15.5) > 16) | (np.abs(source_x - 15.5) > 16)
    assert outside.any()
    out_masks = out_masks.numpy()[..., 0]
    assert np.all(out_masks[outside] == IGNORE_CLASS)
    reflected = augment.augment_batch(
        images, masks, seed=[7, 11], options=options.replace(outside_label=None)
    )[1]
    np.testing.assert_array_equal(out_masks[~outside], reflected.numpy()[..., 0][~outside])


# --- (e) figures --------------------------------------------------------------------------------------

GRAY = to_rgb(viz.IGNORED_COLOR)


def rendered_pixel(figure, axes, row, column):
    """The colour a figure shows at pixel (row, column) of the image drawn on ``axes``, as RGB in [0, 1]."""
    canvas = FigureCanvasAgg(figure)  # the figure comes closed, without a canvas to draw on
    canvas.draw()
    x, y = axes.transData.transform((column, row))
    buffer = np.asarray(canvas.buffer_rgba())
    return tuple(buffer[buffer.shape[0] - round(y), round(x), :3] / 255)


def voided_mask():
    mask = np.zeros((16, 16), np.float32)
    mask[4:12, 2:8] = 1
    mask[:, 10:] = IGNORE_CLASS
    return mask


def test_colorize_mask_and_the_legend_draw_ignored_pixels_gray():
    assert viz.IGNORED_COLOR == "#808080"  # one neutral mid gray
    rgb = viz.colorize_mask(np.array([[0, 1], [2, IGNORE_CLASS]]), num_classes=3)
    np.testing.assert_allclose(rgb[1, 1], GRAY)
    np.testing.assert_allclose(rgb[0, 1], to_rgb(viz.class_color(1)))
    handles = viz.class_legend_handles(("background", "a", "b"), ignored=True)
    assert handles[-1].get_label() == "ignored" and handles[-1].get_facecolor() == to_rgba(viz.IGNORED_COLOR)


def test_show_pairs_paints_ignored_pixels_gray_and_names_them():
    mask = voided_mask()
    figure = viz.show_pairs(np.full((1, 16, 16, 1), 0.9, np.float32), mask[None], title="Void")
    assert [text.get_text() for text in figure.legends[0].get_texts()] == ["object (mask outline)", "ignored"]
    assert figure.legends[0].legend_handles[-1].get_facecolor() == to_rgba(viz.IGNORED_COLOR)
    axes = figure.axes[0]
    assert rendered_pixel(figure, axes, 8, 13) == pytest.approx(GRAY, abs=2 / 255)
    assert rendered_pixel(figure, axes, 1, 4) == pytest.approx((0.9, 0.9, 0.9), abs=2 / 255)


def test_error_figures_call_no_ignored_pixel_an_error():
    mask = voided_mask()
    prediction = np.where(mask == IGNORE_CLASS, 1.0, mask)  # "object" all over the void: no false positive
    rgba = viz.error_image(mask, prediction)
    np.testing.assert_allclose(rgba[mask == IGNORE_CLASS], [(*GRAY, 1.0)] * int((mask == IGNORE_CLASS).sum()))
    figure = viz.show_errors(
        np.full((1, 16, 16, 1), 0.9, np.float32), mask[None], prediction[None], title="E"
    )
    texts = [text.get_text() for text in figure.legends[0].get_texts()]
    assert texts[-1] == "ignored" and "Dice 1.000" in figure.axes[0].get_title()
    assert rendered_pixel(figure, figure.axes[0], 8, 13) == pytest.approx(GRAY, abs=2 / 255)


def test_prediction_figures_name_ignored_pixels_in_their_legends():
    mask = voided_mask()
    images = np.full((1, 16, 16, 3), 0.9, np.float32)
    shown = viz.show_predictions(images, mask[None], mask[None] == 1, title="P")
    assert [text.get_text() for text in shown.legends[0].get_texts()] == ["object", "ignored"]
    overlay = viz.show_overlay(images[0], mask=mask, prediction=mask == 1)
    assert [text.get_text() for text in overlay.legends[0].get_texts()][-1] == "ignored"
    assert rendered_pixel(overlay, overlay.axes[0], 8, 13) == pytest.approx(GRAY, abs=2 / 255)
    probability = np.where(mask == 1, 0.8, 0.1)[..., None].astype(np.float32)
    outlined = viz.show_probabilities(images[0], probability, mask=mask)
    assert [text.get_text() for text in outlined.legends[0].get_texts()] == ["object (truth)", "ignored"]
