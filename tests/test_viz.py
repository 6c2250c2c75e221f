"""viz: the numbers its figures show, against hand counts, and the figures' titles, labels and legends."""

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_rgb
from segmentation_cases import ranking_case, threshold_case

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


# --- colours ------------------------------------------------------------------------------------------


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


def test_colorize_mask_gives_each_class_its_colour():
    rgb = viz.colorize_mask(np.array([[0, 1], [2, 3]])[..., None], num_classes=4)
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.float32
    expected = [to_rgb(color) for color in (viz.BACKGROUND_COLOR, *viz.CLASS_COLORS[:3])]
    np.testing.assert_allclose(rgb.reshape(4, 3), expected)
    handles = viz.class_legend_handles(("background", "a", "b", "c"))
    assert [handle.get_label() for handle in handles] == ["background", "a", "b", "c"]
    np.testing.assert_allclose([handle.get_facecolor()[:3] for handle in handles], expected)


# --- mistakes -------------------------------------------------------------------------------------------


def test_mismatched_inputs_raise_one_line():
    images, masks = images_like(np.zeros((2, 4, 4))), np.zeros((2, 4, 4))
    assert "2 images, 2 masks, 3 predictions" in one_line_error(
        viz.show_predictions, images, masks, np.zeros((3, 4, 4)), title="t"
    )
    assert "mask has shape (5, 5)" in one_line_error(
        viz.show_predictions, images, np.zeros((2, 5, 5)), np.zeros((2, 5, 5)), title="t"
    )
    assert "np.newaxis" in one_line_error(viz.show_errors, images[0], masks[0], masks[0])
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
    wide = viz.show_overlay(np.zeros((4, 8, 1)), mask=np.zeros((4, 8)), panel_size=6)
    assert tuple(wide.get_size_inches()) == pytest.approx((6, 3.6))  # no empty bands above and below


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
    figure = viz.plot_dice_against_threshold(
        *metrics.dice_against_threshold(mask, probabilities), title="Curve"
    )
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


def test_show_errors_and_best_and_worst_take_a_name_per_image():
    masks, predictions, expected = ranking_case()
    names = [f"cell_{index}" for index in range(len(masks))]
    errors = viz.show_errors(images_like(masks), masks, predictions, titles=names, columns=5)
    assert [axes.get_title() for axes in errors.axes] == [
        f"cell_{index}: Dice {dice:.3f}" for index, dice in enumerate(expected)
    ]
    extremes = viz.show_best_and_worst(images_like(masks), masks, predictions, count=1, titles=names)
    assert [axes.get_title() for axes in extremes.axes] == [
        "best 1: cell_0, Dice 1.000",
        "worst 1: cell_3, Dice 0.000",
    ]


def small_grid():
    """A 24x40 image in 16-pixel tiles that advance by 8: 3 rows and 5 columns, 4 mirrored pixels around."""
    from unet_helpers.inference import TileGrid

    return TileGrid(
        image_shape=(24, 40),
        tile_size=(16, 16),
        overlap=(8, 8),
        padding=((4, 4), (4, 4)),
        rows=(-4, 4, 12),
        columns=(-4, 4, 12, 20, 28),
    )


def test_show_tile_grid_draws_every_tile_two_neighbours_and_the_image():
    grid = small_grid()
    figure = viz.show_tile_grid(np.full((24, 40, 1), 0.5, np.float32), grid, title="Tiles")
    assert_figure(figure, "Tiles")
    axes = figure.axes[0]
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("column (pixels)", "row (pixels)")
    outlines = [patch for patch in axes.patches if not patch.get_fill()]
    filled = [patch for patch in axes.patches if patch.get_fill()]
    assert len(outlines) == grid.num_tiles + 1  # every tile, and the image
    assert [patch.get_xy() for patch in filled] == [(3.5, 3.5), (11.5, 3.5)]  # columns 4 and 12, row 4
    assert "its neighbour: 8 columns shared" in legend_texts(figure)
    assert axes.get_images()[0].get_array().shape[:2] == (32, 48)  # the image and its mirrored border
    assert "(24, 40)" in one_line_error(viz.show_tile_grid, np.zeros((20, 40, 3)), grid, title="t")


def test_show_seam_differences_dots_each_tilings_seams_on_one_colour_scale():
    grid = small_grid()
    touching = TileGridLike(image_shape=(24, 40), rows=(0, 16), columns=(0, 16, 32))
    differences = [np.zeros((24, 40)), np.full((24, 40), 0.1)]
    figure = viz.show_seam_differences(differences, [grid, touching], ["blended", "touching"], title="Seams")
    assert_figure(figure, "Seams")
    panels, colorbar = figure.axes[:2], figure.axes[2]
    assert [axes.get_title() for axes in panels] == ["blended", "touching"]
    assert len(panels[0].lines) == len(grid.seams(0)) + len(grid.seams(1))
    assert len(panels[1].lines) == 1 + 2  # a seam at row 16; at columns 16 and 32
    assert all(axes.get_images()[0].get_clim() == (0, 0.5) for axes in panels)
    assert colorbar.get_ylabel() == "|tiled - whole-image| probability"
    assert legend_texts(figure) == ["tile edges (seams)"]
    assert "2 grids, 1 titles" in one_line_error(
        viz.show_seam_differences, differences, [grid, touching], ["one"], title="t"
    )


class TileGridLike:
    """Tiles of 16 that only touch: what show_seam_differences reads of a grid."""

    def __init__(self, image_shape, rows, columns):
        self.image_shape, self.rows, self.columns = image_shape, rows, columns

    def seams(self, axis):
        starts = self.rows if axis == 0 else self.columns
        return sorted({edge for start in starts for edge in (start, start + 16) if 0 < edge < 24 + 16 * axis})


def test_plot_region_errors_colours_missed_object_pixels_apart_from_false_positives():
    rates = {"object": 0.1, "border": 0.4, "background": 0.02}
    figure = viz.plot_region_errors(rates, object_regions=["object"], title="Regions")
    assert_figure(figure, "Regions")
    bars = figure.axes[0].patches
    assert [bar.get_width() for bar in bars] == pytest.approx([10, 40, 2])
    assert [bar.get_facecolor()[:3] for bar in bars] == [
        to_rgb(viz.ERROR_COLORS["false_negative"]),
        to_rgb(viz.ERROR_COLORS["false_positive"]),
        to_rgb(viz.ERROR_COLORS["false_positive"]),
    ]
    assert figure.axes[0].get_xlabel() == "pixels of the region predicted wrong (%)"
    assert legend_texts(figure)[0].startswith("object pixels missed")
    assert "[0, 1]" in one_line_error(viz.plot_region_errors, {"a": 40.0}, object_regions=[])


def test_plot_found_against_contrast_splits_found_and_missed_objects():
    contrasts, found = np.array([0.05, 0.3, 0.4, 0.02]), np.array([0.1, 1.0, 0.6, 0.5])
    figure = viz.plot_found_against_contrast(contrasts, found, title="Objects")
    assert_figure(figure, "Objects")
    axes = figure.axes[0]
    found_dots, missed_dots = (collection.get_offsets() for collection in axes.collections)
    np.testing.assert_allclose(found_dots, [[0.3, 100], [0.4, 60], [0.02, 50]])  # 0.5 found is not missed
    np.testing.assert_allclose(missed_dots, [[0.05, 10]])
    assert [text.get_text() for text in axes.get_legend().get_texts()] == [
        "found",
        "missed (less than 50% found)",
    ]
    assert axes.get_ylabel() == "object pixels found (%)"
    assert "per object" in one_line_error(viz.plot_found_against_contrast, contrasts, found[:2])


def test_plot_dice_by_group_puts_each_image_on_its_groups_row():
    scores, groups = [0.9, 0.5, 0.8, 0.7], ["a", "b", "a", "c"]
    figure = viz.plot_dice_by_group(
        scores, groups, pooled={"a": 0.85, "b": 0.5}, order=["c", "a", "b"], title="Groups"
    )
    assert_figure(figure, "Groups")
    axes = figure.axes[0]
    assert [label.get_text() for label in axes.get_yticklabels()] == ["c (1)", "a (2)", "b (1)"]
    dots = axes.collections[0].get_offsets()
    np.testing.assert_allclose(dots[:, 0], scores)
    np.testing.assert_array_equal(np.round(dots[:, 1]), [1, 2, 1, 0])  # the row of each image's group
    assert [line.get_xdata()[0] for line in axes.lines] == [0.85, 0.5]  # the pooled Dice of a and b
    assert legend_texts(figure) == ["one image", "the group's pooled Dice"]
    assert axes.get_ylabel() == "group (images)"
    assert "misses the groups ['b']" in one_line_error(
        viz.plot_dice_by_group, scores, groups, order=["a", "c"]
    )


def test_colorize_instances_gives_touching_objects_different_colours():
    labels = np.zeros((6, 9), np.uint16)
    labels[1:5, 1:4] = 7  # 7 and 3 touch: different colours
    labels[1:5, 4:6] = 3
    labels[2:4, 8] = 9  # apart from both
    rgb = viz.colorize_instances(labels[..., None])
    assert rgb.shape == (6, 9, 3) and rgb.dtype == np.float32
    assert np.array_equal(rgb[0, 0], to_rgb(viz.BACKGROUND_COLOR))
    colours = {label: tuple(rgb[labels == label][0]) for label in (3, 7, 9)}
    assert all((rgb[labels == label] == colours[label]).all() for label in colours)  # one colour per object
    assert colours[3] != colours[7]
    assert set(colours.values()) <= {tuple(np.float32(to_rgb(colour))) for colour in viz.INSTANCE_COLORS}
    moved = np.roll(labels, 1, axis=1)  # the same objects elsewhere keep their colours with reference=
    assert np.array_equal(viz.colorize_instances(moved, reference=labels)[:, 1:], rgb[:, :-1])
    assert "non-negative integers" in one_line_error(viz.colorize_instances, labels - 0.5)


def test_show_images_marks_pixels_and_names_them_in_the_legend():
    images = [np.zeros((4, 4)), np.zeros((4, 4, 3)), np.zeros((4, 4, 1))]
    marked = [None, np.eye(4, dtype=bool), None]
    figure = viz.show_images(
        images, title="Images", titles=["a", "b", "c"], marked=marked, marked_label="odd"
    )
    assert_figure(figure, "Images")
    assert [axes.get_title() for axes in figure.axes] == ["a", "b", "c"]
    assert len(figure.axes[1].images) == 2 and len(figure.axes[0].images) == 1
    assert legend_texts(figure) == ["odd"]
    assert legend_texts(viz.show_images(images, title="Plain")) == []
    assert "marked_label" in one_line_error(viz.show_images, images, title="x", marked=marked)
    assert "height and width" in one_line_error(
        viz.show_images, images[:1], title="x", marked=[np.ones((3, 3))], marked_label="odd"
    )


def test_plot_histograms_counts_each_group_in_percent_of_itself():
    figure = viz.plot_histograms(
        {"few": [1, 1, 2, 10], "many": np.full(100, 5.0)},
        title="Sizes",
        xlabel="area (pixels)",
        ylabel="% of the group",
        bins=3,
        lines={"median": 4.0},
    )
    assert_figure(figure, "Sizes")
    (axes,) = figure.axes
    few, many = (patch.get_xy()[:, 1].max() for patch in axes.patches)
    assert few == 75.0 and many == 100.0  # 3 of 4 values in the first bin; all 100 in the middle one
    assert [text.get_text() for text in axes.get_legend().get_texts()] == ["few (4)", "many (100)", "median"]
    assert axes.get_xlabel() == "area (pixels)" and axes.get_ylabel() == "% of the group"
    logarithmic = viz.plot_histograms({"a": [1, 10, 100]}, title="Log", xlabel="x", ylabel="y", log=True)
    assert logarithmic.axes[0].get_xscale() == "log"
    labels = {"title": "x", "xlabel": "", "ylabel": ""}
    assert "positive" in one_line_error(viz.plot_histograms, {"a": [0, 1]}, log=True, **labels)
    assert "at least one value" in one_line_error(viz.plot_histograms, {"a": []}, **labels)


def test_show_normalization_has_an_image_and_a_histogram_before_and_after_per_row():
    images = np.random.default_rng(0).uniform(size=(2, 8, 8, 3)).astype(np.float32)
    masks = np.zeros((2, 8, 8, 1), np.float32)
    masks[:, 2:6, 2:6] = 1
    normalized = (images - images.mean()) / images.std()
    figure = viz.show_normalization(
        images, normalized, masks, title="Normalised", titles=["one", "two"], class_names=OBJECT
    )
    assert_figure(figure, "Normalised")
    assert len(figure.axes) == 8
    assert [figure.axes[index].get_title() for index in (0, 2, 4)] == [
        "one: as stored",
        "one: normalized",
        "two: as stored",
    ]
    histogram = figure.axes[3]
    assert histogram.get_xlim() == (-5.0, 5.0) and histogram.get_ylabel() == "% of the region's pixels"
    assert len(histogram.patches) == 2  # background and object
    assert legend_texts(figure) == ["background", "object"]
    assert "normalized image" in one_line_error(
        viz.show_normalization, images, normalized[:, :4], masks, title="x", titles=["a", "b"]
    )


def test_show_deformation_draws_one_arrow_per_grid_crossing_and_names_its_parts():
    shift = np.ones((16, 16), np.float32)
    mask = np.zeros((16, 16, 1), np.float32)
    mask[4:12, 4:12] = 1
    figure = viz.show_deformation(
        shift,
        -shift,
        np.zeros((16, 16, 1)),
        images_like(mask[None], channels=3)[0],
        mask,
        title="Elastic",
        grid_step=4,
        control_points=(0, 7.5, 15),
        class_names=OBJECT,
    )
    assert_figure(figure, "Elastic")
    field, grid, image = figure.axes
    assert [axes.get_title() for axes in figure.axes] == [
        "Displacement field",
        "A regular grid, deformed",
        "The image and its mask, deformed",
    ]
    (arrows,) = [item for item in field.collections if hasattr(item, "U")]
    assert arrows.U.size == 16 and np.allclose(arrows.U, -1) and np.allclose(arrows.V, 1)  # 4x4 crossings
    assert [text.get_text() for text in field.get_legend().get_texts()] == [
        "displacement (pixels, to scale)",
        "control points",
    ]
    assert [text.get_text() for text in image.get_legend().get_texts()] == ["object"]
    assert all(axes.get_xlabel() == "x (pixels)" for axes in (field, grid, image))


def test_gap_line_crosses_the_gap_not_along_it():
    mask = np.zeros((12, 20), np.uint8)
    mask[2:10, 2:8] = 1  # two blocks, a gap of columns 8 and 9 between them
    mask[2:10, 10:16] = 1
    rows, columns, distances = viz.gap_line(mask, (5, 8), reach=4)
    assert set(rows.tolist()) == {5}  # across the gap: along the row
    assert columns.tolist() == list(range(4, 13)) and distances.tolist() == list(range(-4, 5))
    # A horizontal gap (rows 6 and 7) is crossed along a column; near the image's edge the line is cut.
    horizontal = np.zeros((12, 12), np.uint8)
    horizontal[:6] = horizontal[8:] = 1
    rows, columns, distances = viz.gap_line(horizontal, (6, 1), reach=8)
    assert set(columns.tolist()) == {1} and rows.tolist() == list(range(12)) and distances[0] == -6
    diagonal_rows, diagonal_columns, diagonal = viz.gap_line(
        np.eye(9, k=4) + np.eye(9, k=-4), (4, 4), reach=2
    )
    assert diagonal_rows.tolist() == [2, 3, 4, 5, 6] and diagonal_columns.tolist() == [6, 5, 4, 3, 2]
    assert diagonal[-1] == pytest.approx(2 * np.sqrt(2))
    # Gaps are measured in pixels: 4 steps along a row (4 px each side) beat 3 diagonal ones (4.2 px).
    dots = np.zeros((21, 21), np.uint8)
    dots[10, 6] = dots[10, 14] = dots[7, 13] = dots[13, 7] = 1
    assert set(viz.gap_line(dots, (10, 10), reach=5)[0].tolist()) == {10}
    assert "outside" in one_line_error(viz.gap_line, mask, (12, 0))


def test_show_weight_map_has_a_colour_bar_the_line_and_its_weights():
    mask = np.zeros((12, 20), np.uint8)
    mask[2:10, 2:8] = 1
    mask[2:10, 10:16] = 1
    weights = np.where(mask > 0, 2.0, 0.5).astype(np.float32)
    weights[:, 8:10] = 9.0  # the ridge in the gap
    figure = viz.show_weight_map(weights[..., None], mask, point=(5, 8), reach=4, title="Weights")
    assert_figure(figure, "Weights")
    map_axes, line_axes, colour_bar = figure.axes
    assert colour_bar.get_ylabel() == "weight"
    assert map_axes.get_title() == "the weight map" and map_axes.get_xlabel() == "column (pixels)"
    drawn, marker = map_axes.get_lines()
    assert set(drawn.get_ydata()) == {5} and drawn.get_color() == viz.MARK_COLOR
    assert (marker.get_xdata()[0], marker.get_ydata()[0]) == (8, 5)
    (profile,) = line_axes.get_lines()
    assert profile.get_xdata().tolist() == list(range(-4, 5))
    assert profile.get_ydata().tolist() == [2.0] * 4 + [9.0] * 2 + [2.0] * 3
    assert len(line_axes.patches) == 7  # one band per object pixel on the line
    assert line_axes.get_ylabel() == "weight" and "distance" in line_axes.get_xlabel()
    assert legend_texts(figure) == [
        "the line across the gap",
        "the gap's pixel (distance 0)",
        "object pixels on the line",
    ]
    assert "one size" in one_line_error(viz.show_weight_map, weights, mask[:, 1:], point=(5, 8), title="x")


def test_plot_grouped_scores_puts_each_value_on_its_bar():
    scores = {"Dice": {"plain": 0.8, "weighted": 0.75}, "F1": {"plain": 0.6, "weighted": 0.7}}
    figure = viz.plot_grouped_scores(scores, title="Scores", ylabel="score on validation")
    assert_figure(figure, "Scores")
    (axes,) = figure.axes
    heights = [patch.get_height() for patch in axes.patches]
    assert heights == pytest.approx([0.8, 0.6, 0.75, 0.7])  # model by model, scores left to right
    assert [text.get_text() for text in axes.texts] == ["0.800", "0.600", "0.750", "0.700"]
    assert [label.get_text() for label in axes.get_xticklabels()] == ["Dice", "F1"]
    assert legend_texts(figure) == ["plain", "weighted"] and axes.get_ylabel() == "score on validation"
    assert "same models" in one_line_error(
        viz.plot_grouped_scores, {"Dice": {"a": 1.0}, "F1": {"b": 1.0}}, title="x"
    )
    assert "at least one" in one_line_error(viz.plot_grouped_scores, {}, title="x")


def test_plot_scores_per_class_puts_each_value_on_its_bar_and_dashes_the_foreground_means():
    per_class = {"IoU": [0.9, 0.6, 0.3], "Dice": [0.95, 0.75, 0.46]}
    figure = viz.plot_scores_per_class(
        per_class, class_names=THREE, foreground={"IoU": 0.45}, title="Per class", ylabel="on validation"
    )
    assert_figure(figure, "Per class")
    (axes,) = figure.axes
    heights = [patch.get_height() for patch in axes.patches]
    assert heights == pytest.approx([0.9, 0.6, 0.3, 0.95, 0.75, 0.46])  # score by score, classes in order
    assert [text.get_text() for text in axes.texts] == ["0.90", "0.60", "0.30", "0.95", "0.75", "0.46"]
    assert [label.get_text() for label in axes.get_xticklabels()] == list(THREE)
    (mean_line,) = axes.lines
    assert mean_line.get_ydata()[0] == 0.45 and mean_line.get_linestyle() == "--"
    assert legend_texts(figure) == ["IoU", "foreground mean IoU 0.45", "Dice"]
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("class", "on validation")
    assert "one value per class" in one_line_error(
        viz.plot_scores_per_class, {"IoU": [0.5]}, class_names=THREE, title="x"
    )


def test_learning_curves_figure_has_titles_labels_and_legends():
    history = {"epoch": [0, 1, 2], "loss": [1.0, 0.8, 0.7], "val_loss": [1.1, 0.9, 0.8]}
    history |= {"dice": [0.2, 0.4, 0.5], "val_dice": [0.3, 0.5, 0.45]}
    figure = viz.plot_learning_curves(history, title="Run A")
    assert figure.get_suptitle() == "Run A"
    for axes in figure.axes:
        assert axes.get_title() and axes.get_xlabel() == "epoch" and axes.get_ylabel()
        assert axes.get_legend() is not None
    labels = [text.get_text() for text in figure.axes[1].get_legend().get_texts()]
    assert "best: 0.500 (epoch 2)" in labels


def test_draw_unet_draws_one_box_per_stage_with_the_models_own_shapes():
    from unet_helpers.model import build_unet

    model = build_unet((32, 32, 3), base_filters=4, depth=2)
    figure = viz.draw_unet(model, title="The U")
    assert_figure(figure, "The U")
    (axes,) = figure.axes
    boxes = [text.get_text() for text in axes.texts if text.get_text()]
    assert boxes == [
        "input\n3 channels\n32x32",
        "bottleneck\n16 filters\n8x8",
        "output\n1 channel\n32x32",
        "enc1\n4 filters\n32x32",
        "dec1\n4 filters\n32x32",
        "enc2\n8 filters\n16x16",
        "dec2\n8 filters\n16x16",
    ]
    assert len(axes.patches) == 7
    arrows = [text for text in axes.texts if not text.get_text()]
    assert len(arrows) == 2 + 3 * 2  # in, head; a pooling, an up-convolution and a skip per level
    legend = [text.get_text() for text in axes.get_legend().get_texts()]
    assert legend[2] == "2x2 max-pooling (halves the size)" and legend[-1] == "1x1 convolution + sigmoid"
    assert "'*_pool'" in one_line_error(viz.draw_unet, keras_dense_model(), title="x")


def keras_dense_model():
    import keras

    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(1)(inputs))


def test_show_receptive_fields_has_a_panel_per_pixel_titled_with_the_fields_size():
    first, second = np.zeros((16, 16), bool), np.zeros((16, 16), bool)
    first[2:10, 3:9] = True  # 8 rows, 6 columns
    second[4:16, 4:16] = True
    figure = viz.show_receptive_fields({(5, 6): first, (9, 9): second}, title="Fields")
    assert_figure(figure, "Fields")
    assert [axes.get_title() for axes in figure.axes] == [
        "Output pixel (5, 6): 8x6 input pixels",
        "Output pixel (9, 9): 12x12 input pixels",
    ]
    np.testing.assert_array_equal(figure.axes[0].get_images()[0].get_array(), first)
    (marker,) = figure.axes[0].get_lines()
    assert (marker.get_xdata()[0], marker.get_ydata()[0]) == (6, 5)  # x is the column
    assert figure.axes[1].get_xlabel() == "input column (pixels)"
    assert legend_texts(figure) == ["input pixels that can change the output pixel", "the output pixel"]
    assert "2-D boolean map" in one_line_error(viz.show_receptive_fields, {(0, 0): first[0]}, title="x")
