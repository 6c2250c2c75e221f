"""viz: the numbers its figures show, against hand counts, and the figures' titles, labels and legends."""

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_rgb

from unet_helpers import metrics, viz
from unet_helpers.errors import UnetTutorialError

matplotlib.use("Agg")

OBJECT = ("background", "object")
THREE = ("background", "cell", "border")

# Binary 4x4: 4 object pixels; the prediction finds 3 (TP), adds (1, 3) (FP) and misses (2, 2) (FN).
# (0, 0) is exactly 0.5: background by the metrics' rule p > 0.5.
TRUE = np.array([[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]], np.float32)
PROBABILITIES = np.array(
    [[0.5, 0.2, 0.0, 0.0], [0.0, 0.9, 0.8, 0.7], [0.0, 0.6, 0.4, 0.0], [0.0, 0.0, 0.3, 0.0]], np.float32
)


def pixels(boolean_map):
    return {tuple(int(i) for i in index) for index in np.argwhere(boolean_map)}


def images_like(masks, channels=1):
    return np.full((*np.shape(masks)[:3], channels), 0.5, np.float32)


def legend_texts(figure):
    return [text.get_text() for legend in figure.legends for text in legend.get_texts()]


def assert_figure(figure, title):
    """Every figure: white, titled, closed (Jupyter shows the returned figure once)."""
    assert figure.get_facecolor()[:3] == (1.0, 1.0, 1.0)
    assert figure.get_suptitle() == title
    assert figure.number not in plt.get_fignums()


def one_line_error(function, *args, **kwargs):
    with pytest.raises(UnetTutorialError) as caught:
        function(*args, **kwargs)
    assert "\n" not in str(caught.value)
    return str(caught.value)


# --- numbers ------------------------------------------------------------------------------------------


def test_error_maps_land_on_the_hand_counted_pixels():
    maps = viz.error_maps(TRUE, PROBABILITIES)
    assert pixels(maps.true_positive) == {(1, 1), (1, 2), (2, 1)}
    assert pixels(maps.false_positive) == {(1, 3)}  # not (0, 0), whose p is exactly 0.5
    assert pixels(maps.false_negative) == {(2, 2)}
    assert not maps.wrong_class.any()


def test_error_image_colours_false_positives_orange_and_false_negatives_blue():
    rgba = viz.error_image(TRUE[..., None], PROBABILITIES[..., None], true_positive_alpha=0.3)
    assert rgba.shape == (4, 4, 4) and rgba.dtype == np.float32
    np.testing.assert_allclose(rgba[1, 3], (*to_rgb("#E69F00"), 1.0))  # false positive: Okabe-Ito orange
    np.testing.assert_allclose(rgba[2, 2], (*to_rgb("#0072B2"), 1.0))  # false negative: Okabe-Ito blue
    np.testing.assert_allclose(rgba[1, 1], (*to_rgb(viz.ERROR_COLORS["true_positive"]), 0.3))
    drawn = np.zeros((4, 4), bool)
    drawn[[1, 1, 2, 1, 2], [1, 2, 1, 3, 2]] = True
    assert (rgba[~drawn, 3] == 0).all()  # right background stays transparent
    assert set(viz.ERROR_COLORS.values()) <= set(viz.CLASS_COLORS)  # Okabe-Ito


def test_error_maps_multi_class_from_softmax():
    true = np.array([[0, 1, 1], [2, 2, 0]])
    predicted = np.array([[1, 1, 2], [2, 0, 0]])  # FP (0,0); wrong class (0,2); FN (1,1)
    softmax = np.eye(3, dtype=np.float32)[predicted] * 0.5 + 0.5 / 3
    maps = viz.error_maps(true[..., None], softmax, num_classes=3)
    assert pixels(maps.false_positive) == {(0, 0)}
    assert pixels(maps.wrong_class) == {(0, 2)}
    assert pixels(maps.false_negative) == {(1, 1)}
    assert pixels(maps.true_positive) == {(0, 1), (1, 0)}


def ranking_case():
    """Five 4x4 images whose Dice is counted by hand (binary, masks (N, H, W, 1))."""
    masks = np.zeros((5, 4, 4, 1), np.float32)
    predictions = np.zeros_like(masks)
    masks[[0, 1, 4], 1:3, 1:3] = 1
    predictions[0, 1:3, 1:3] = 1  # perfect: 1
    predictions[1, 1, 1:3] = 1  # 2 of 4 found: 2*2 / (2*2 + 0 + 2) = 2/3
    # image 2: nothing in the truth, nothing predicted: 1 by the metrics' convention
    predictions[3, 0, 0] = 1  # nothing in the truth, 1 false positive: 0
    predictions[4, 1:3, 2:4] = 1  # shifted: TP 2, FP 2, FN 2: 4 / 8
    return masks, predictions, [1.0, 2 / 3, 1.0, 0.0, 0.5]


def test_rank_by_dice_orders_best_first_with_hand_counted_scores():
    masks, predictions, expected = ranking_case()
    order, scores = viz.rank_by_dice(masks, predictions)
    np.testing.assert_allclose(scores, expected)
    assert order.tolist() == [0, 2, 1, 4, 3]  # ties keep the input order


def test_confusion_matrix_rows_are_truth_and_an_absent_class_is_a_zero_row_and_column():
    true = np.array([[0, 0, 1, 1], [2, 2, 0, 1]])
    predicted = np.array([[0, 1, 1, 1], [2, 0, 0, 2]])
    expected = [[2, 1, 0, 0], [0, 2, 1, 0], [1, 0, 1, 0], [0, 0, 0, 0]]  # class 3 in neither
    matrix = viz.confusion_matrix(true, predicted, num_classes=4)
    assert matrix.dtype == np.int64 and matrix.tolist() == expected
    softmax = np.eye(4, dtype=np.float32)[predicted] * 0.6 + 0.1
    assert viz.confusion_matrix(true[None, ..., None], softmax[None], num_classes=4).tolist() == expected
    ignored = true.copy()
    ignored[0, 0] = 255  # not a class: left out, as in the metrics
    assert viz.confusion_matrix(ignored, predicted, num_classes=4).sum() == 7


def test_confusion_matrix_binary_uses_p_above_one_half():
    assert viz.confusion_matrix(TRUE, PROBABILITIES).tolist() == [[11, 1], [1, 3]]


def threshold_case():
    """8x8: object pixels at 0.8 and 0.35 (4 each), background at 0.25 (4) and 0.1 (52)."""
    mask = np.zeros((8, 8), np.float32)
    probabilities = np.full((8, 8), 0.1, np.float32)
    mask[0, :8] = 1
    probabilities[0, :4], probabilities[0, 4:] = 0.8, 0.35
    probabilities[1, :4] = 0.25
    return mask, probabilities


def test_dice_against_threshold_peaks_where_only_the_objects_are_above_it():
    mask, probabilities = threshold_case()
    thresholds, scores = viz.dice_against_threshold(mask[None, ..., None], probabilities[None, ..., None])
    assert thresholds.tolist() == list(viz.DEFAULT_THRESHOLDS) and 0.5 in thresholds
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


def test_colorize_mask_gives_each_class_its_colour():
    rgb = viz.colorize_mask(np.array([[0, 1], [2, 3]])[..., None], num_classes=4)
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.float32
    expected = [to_rgb(color) for color in (viz.BACKGROUND_COLOR, *viz.CLASS_COLORS[:3])]
    np.testing.assert_allclose(rgb.reshape(4, 3), expected)
    handles = viz.class_legend_handles(("background", "a", "b", "c"))
    assert [handle.get_label() for handle in handles] == ["background", "a", "b", "c"]
    np.testing.assert_allclose([handle.get_facecolor()[:3] for handle in handles], expected)


@pytest.mark.parametrize(
    ("mask", "prediction", "num_classes"),
    [
        (TRUE, PROBABILITIES, 2),  # (H, W), (H, W)
        (TRUE[..., None], PROBABILITIES[..., None], 2),  # (H, W, 1), (H, W, 1) sigmoid
        (TRUE, PROBABILITIES[..., None], 2),
        (TRUE[..., None], np.stack([1 - PROBABILITIES, PROBABILITIES], axis=-1), 2),  # 2-channel softmax
        (TRUE[..., None], np.eye(3)[(PROBABILITIES > 0.5).astype(int)], 3),  # softmax (H, W, K)
    ],
)
def test_class_maps_accepts_every_documented_shape(mask, prediction, num_classes):
    true, predicted = viz.class_maps(mask, prediction, num_classes=num_classes)
    assert true.shape == predicted.shape == (4, 4)
    assert predicted.tolist() == (PROBABILITIES > 0.5).astype(int).tolist()


# --- mistakes -------------------------------------------------------------------------------------------


def test_mismatched_inputs_raise_one_line():
    images, masks = images_like(np.zeros((2, 4, 4))), np.zeros((2, 4, 4))
    assert "predicted_mask" in one_line_error(viz.class_maps, TRUE, np.zeros((5, 5)))
    assert "2 images, 2 masks, 3 predictions" in one_line_error(
        viz.show_predictions, images, masks, np.zeros((3, 4, 4)), title="t"
    )
    assert "mask has shape (5, 5)" in one_line_error(
        viz.show_predictions, images, np.zeros((2, 5, 5)), np.zeros((2, 5, 5)), title="t"
    )
    assert "np.newaxis" in one_line_error(viz.show_errors, images[0], masks[0], masks[0])
    assert "sigmoid" in one_line_error(viz.dice_against_threshold, masks, np.full((2, 4, 4, 2), 0.5))
    assert "logits" in one_line_error(viz.dice_against_threshold, masks, np.full((2, 4, 4), 3.0))
    assert "softmax" in one_line_error(
        viz.show_probabilities, images[0], np.full((4, 4, 2), 0.5), class_names=THREE
    )
    assert "(3, 3)" in one_line_error(viz.plot_confusion_matrix, np.zeros((2, 2)), class_names=THREE)
    assert "normalize" in one_line_error(
        viz.plot_confusion_matrix, np.ones((2, 2)), class_names=OBJECT, normalize="rows"
    )
    assert "mask=" in one_line_error(viz.show_overlay, images[0])
    assert "class indices" in one_line_error(viz.colorize_mask, np.array([[0, 5]]), num_classes=3)


# --- figures --------------------------------------------------------------------------------------------


def test_show_predictions_has_three_panels_per_row_with_each_images_dice():
    masks, predictions, expected = ranking_case()
    figure = viz.show_predictions(images_like(masks), masks, predictions, title="Validation")
    assert_figure(figure, "Validation")
    assert len(figure.axes) == 3 * len(masks)
    titles = [axes.get_title() for axes in figure.axes]
    assert titles[:3] == ["image 0", "ground truth", "prediction: Dice 1.000"]
    assert titles[2::3] == [f"prediction: Dice {dice:.3f}" for dice in expected]
    assert legend_texts(figure) == ["object"]


def test_show_predictions_multi_class_softmax_and_rgb_images():
    true = np.array([[[0, 1], [2, 2]]] * 2)
    softmax = np.eye(3, dtype=np.float32)[true]
    figure = viz.show_predictions(
        images_like(true, channels=3), true, softmax, title="t", class_names=THREE, titles=["a.png", "b.png"]
    )
    assert len(figure.axes) == 6 and figure.axes[3].get_title() == "b.png"
    assert legend_texts(figure) == ["cell", "border"]


def test_show_overlay_draws_truth_and_prediction_in_two_styles():
    figure = viz.show_overlay(images_like(TRUE[None])[0], mask=TRUE, prediction=PROBABILITIES, title="One")
    assert_figure(figure, "One (Dice 0.750)")  # 2*3 / (2*3 + 1 + 1)
    assert len(figure.axes) == 1
    assert legend_texts(figure) == ["object: truth", "object: prediction"]
    truth, prediction = figure.legends[0].legend_handles
    assert truth.get_linestyle() != prediction.get_linestyle()
    only_prediction = viz.show_overlay(images_like(TRUE[None])[0], prediction=PROBABILITIES[..., None])
    assert legend_texts(only_prediction) == ["object: prediction"]


def test_show_errors_legend_names_the_error_colours():
    masks, predictions, expected = ranking_case()
    figure = viz.show_errors(images_like(masks), masks, predictions, title="Errors", columns=3)
    assert_figure(figure, "Errors")
    assert len(figure.axes) == 6  # 5 panels on a 2x3 grid
    assert figure.axes[1].get_title() == f"image 1: Dice {expected[1]:.3f}"
    texts = legend_texts(figure)
    assert len(texts) == 3 and texts[1].startswith("false positive") and texts[2].startswith("false negative")
    true = np.array([[[0, 1], [2, 2]]])
    multi = viz.show_errors(images_like(true), true, true, class_names=THREE, true_positive_alpha=0)
    assert [text.split(" ")[:2] for text in legend_texts(multi)] == [
        ["false", "positive"],
        ["false", "negative"],
        ["wrong", "class"],
    ]


def test_show_best_and_worst_shows_the_extremes_with_their_dice():
    masks, predictions, _ = ranking_case()
    figure = viz.show_best_and_worst(images_like(masks), masks, predictions, count=2, title="Extremes")
    assert_figure(figure, "Extremes")
    assert [axes.get_title() for axes in figure.axes] == [
        "best 1: image 0, Dice 1.000",
        "best 2: image 2, Dice 1.000",
        "worst 1: image 3, Dice 0.000",
        "worst 2: image 4, Dice 0.500",
    ]
    assert legend_texts(figure) == ["object: truth", "object: prediction"]
    capped = viz.show_best_and_worst(images_like(masks), masks, predictions, count=10)
    assert len(capped.axes) == 4  # at most half the images per row: none shown twice


def test_show_probabilities_has_a_labelled_colour_bar_per_class():
    image = images_like(TRUE[None])[0]
    figure = viz.show_probabilities(image, PROBABILITIES[..., None], mask=TRUE, title="P")
    assert_figure(figure, "P")
    assert len(figure.axes) == 3  # image, probability map, its colour bar
    picture = figure.axes[1].get_images()[0]
    assert picture.get_clim() == (0, 1) and picture.get_cmap().name == "viridis"
    assert figure.axes[2].get_ylabel() == "probability of object"
    assert legend_texts(figure) == ["object (truth)"]
    softmax = np.full((4, 4, 3), 1 / 3, np.float32)
    multi = viz.show_probabilities(image, softmax, class_names=THREE, colormap="magma")
    assert [axes.get_ylabel() for axes in multi.axes[3:]] == ["probability of cell", "probability of border"]


def test_plot_dice_against_threshold_marks_one_half_and_the_best():
    mask, probabilities = threshold_case()
    figure = viz.plot_dice_against_threshold(*viz.dice_against_threshold(mask, probabilities), title="Curve")
    assert_figure(figure, "Curve")
    axes = figure.axes[0]
    assert axes.get_xlabel().startswith("threshold") and axes.get_ylabel() == "pooled Dice"
    texts = [text.get_text() for text in axes.get_legend().get_texts()]
    assert texts[1] == "0.5, the metrics' rule: Dice 0.667"
    assert texts[2] == "best: 0.25, Dice 1.000"


def test_plot_confusion_matrix_annotates_shares_and_counts():
    matrix = np.array([[2, 1, 0], [0, 2, 1], [0, 0, 0]])
    figure = viz.plot_confusion_matrix(matrix, class_names=THREE, title="Confusion")
    assert_figure(figure, "Confusion")
    axes, colorbar = figure.axes
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("predicted class", "true class")
    assert [label.get_text() for label in axes.get_yticklabels()] == list(THREE)
    assert colorbar.get_ylabel() == "share of the true class's pixels"
    cells = [text.get_text() for text in axes.texts]
    assert cells[:3] == ["0.67\n2", "0.33\n1", "0.00\n0"]  # rows: true class, normalized to 1
    assert cells[6:] == ["n/a"] * 3  # no pixel of this class in the truth
    counts = viz.plot_confusion_matrix(matrix, class_names=THREE, normalize=None)
    assert [text.get_text() for text in counts.axes[0].texts][:2] == ["2", "1"]


def test_show_pairs_keeps_its_layout_and_legend():
    masks = np.zeros((5, 4, 4, 1), np.float32)
    masks[:, 1:3, 1:3] = 1
    figure = viz.show_pairs(images_like(masks), masks, title="Pairs", columns=3)
    assert_figure(figure, "Pairs")
    assert len(figure.axes) == 6
    assert legend_texts(figure) == ["object (mask outline)"]
