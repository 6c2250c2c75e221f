"""Figures of images, masks and predictions that read well in light and dark notebook themes.

Every ``show_*`` and ``plot_*`` function returns a matplotlib Figure on a white background, already closed
(``plt.close``) so that Jupyter shows it once, as the cell's value. Colours are Okabe-Ito's, distinct for
colour-blind readers.

Predictions may be class indices, a binary model's sigmoid probabilities ((H, W) or (H, W, 1)) or a
multi-class model's softmax output ((H, W, K)): they become classes by the metrics' rule (class 1 where
``p > 0.5``, else the argmax; see :mod:`unet_helpers.metrics`), through :func:`class_maps`. Dice is always
:func:`unet_helpers.metrics.dice_score`'s: per image in panel titles, pooled over the set in curves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from unet_helpers import metrics
from unet_helpers.errors import UnetTutorialError

# One outline colour per foreground class (class 0, the background, gets none); bright enough on dark
# microscopy, distinct for colour-blind readers (Okabe-Ito), and drawn with a dark edge for light images.
CLASS_COLORS = ("#F0E442", "#56B4E9", "#E69F00", "#CC79A7", "#009E73", "#D55E00", "#0072B2")
BACKGROUND_COLOR = "#000000"  # the background in colorized masks
# Okabe-Ito as well: orange against blue stays apart for every kind of colour blindness.
ERROR_COLORS = {
    "true_positive": "#009E73",
    "false_positive": "#E69F00",
    "false_negative": "#0072B2",
    "wrong_class": "#CC79A7",
}
ERROR_LABELS = {
    "true_positive": "true positive (found)",
    "false_positive": "false positive (predicted, not in the truth)",
    "false_negative": "false negative (missed)",
    "wrong_class": "wrong class",
}
DEFAULT_THRESHOLDS = tuple(round(0.05 * step, 2) for step in range(1, 20))  # 0.05, 0.10, ..., 0.95
# Instance labels (colorize_instances): Okabe-Ito without vermillion and orange (too close to MARK_COLOR),
# then white and gray; enough for touching objects never to share a colour.
INSTANCE_COLORS = ("#56B4E9", "#009E73", "#F0E442", "#0072B2", "#CC79A7", "#FFFFFF", "#999999")
MARK_COLOR = "#D55E00"  # pixels marked on an image (show_images): vermillion, no instance colour
# Groups of values (plot_histograms), and the two regions of show_normalization: Okabe-Ito, dark ones first.
GROUP_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")

ImageBatch = Sequence[np.ndarray] | np.ndarray


def class_color(class_index: int) -> str:
    """The colour of a class, as '#RRGGBB': BACKGROUND_COLOR for class 0, then CLASS_COLORS in turn."""
    return BACKGROUND_COLOR if class_index == 0 else CLASS_COLORS[(class_index - 1) % len(CLASS_COLORS)]


def draw_mask_outline(
    axes: Axes,
    mask: np.ndarray,
    *,
    num_classes: int = 2,
    fill_alpha: float = 0.25,
    linestyle: str = "solid",
) -> list[Line2D]:
    """Draw each foreground class of ``mask`` on ``axes`` as an outline over a light fill.

    Args:
        axes: axes that already show the image.
        mask: (H, W) or (H, W, 1) class indices (binary: 0 or 1).
        num_classes: classes including the background (2 for binary masks).
        fill_alpha: opacity of the fill inside each outline (0 for outlines only).
        linestyle: the outline's matplotlib line style ("solid", "dashed", ...).

    Returns:
        Legend handles, one per foreground class.
    """
    mask = np.asarray(mask).reshape(np.shape(mask)[:2])
    handles = []
    for class_index in range(1, num_classes):
        color = class_color(class_index)
        region = (mask == class_index).astype(np.float32)
        if fill_alpha > 0:
            overlay = np.zeros((*region.shape, 4), np.float32)
            overlay[..., :3] = to_rgb(color)
            overlay[..., 3] = region * fill_alpha
            axes.imshow(overlay, interpolation="nearest")
        if region.any() and not region.all():
            axes.contour(region, levels=[0.5], colors=[color], linewidths=1.2, linestyles=linestyle)
        handles.append(Line2D([], [], color=color, linewidth=2, linestyle=linestyle))
    return handles


def class_legend_handles(class_names: Sequence[str]) -> list[Patch]:
    """Legend handles for :func:`colorize_mask` images: one coloured patch per class, background first.

    Use as ``figure.legend(handles=viz.class_legend_handles(class_names))``.
    """
    return [
        Patch(facecolor=class_color(index), edgecolor="0.5", label=name)
        for index, name in enumerate(class_names)
    ]


def colorize_mask(mask: Any, *, num_classes: int = 2) -> np.ndarray:
    """A mask as an RGB image: the background BACKGROUND_COLOR, class i its :func:`class_color`.

    Args:
        mask: class indices 0..num_classes-1, (H, W) or (H, W, 1); a batch (B, H, W[, 1]) works too.
        num_classes: classes including the background.

    Returns:
        float32 RGB in [0, 1], shape (H, W, 3) (or (B, H, W, 3)).

    Raises:
        UnetTutorialError: values that are not class indices 0..num_classes-1.
    """
    mask = metrics.drop_channel(np.asarray(mask))
    if (
        not np.array_equal(mask, np.round(mask))
        or mask.min(initial=0) < 0
        or mask.max(initial=0) >= num_classes
    ):
        raise UnetTutorialError(
            f"mask holds values {np.unique(mask)[:8]}: pass class indices 0..{num_classes - 1} "
            "(data.load_dataset maps stored values to classes), or set num_classes."
        )
    palette = np.array([to_rgb(class_color(index)) for index in range(num_classes)], np.float32)
    return palette[mask.astype(np.int64)]


def class_maps(masks: Any, predictions: Any, *, num_classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The true and the predicted class of every pixel, by the metrics' rule (``p > 0.5``, or argmax).

    Args:
        masks: class indices, (H, W), (H, W, 1), (B, H, W) or (B, H, W, 1).
        predictions: class indices of the same shape; for binary data sigmoid probabilities in [0, 1] of
            the same shape; or softmax probabilities with ``num_classes`` channels, (..., K).
        num_classes: classes including the background (2 for binary masks).

    Returns:
        Two int64 arrays (true classes, predicted classes), both shaped like ``masks`` without its channel.

    Raises:
        UnetTutorialError: shapes that do not fit, or fractional multi-class predictions.
    """
    num_classes = metrics.check_num_classes(num_classes)
    true, predicted = metrics.class_arrays(masks, predictions, num_classes)
    shape = metrics.drop_channel(np.asarray(masks)).shape
    return true.reshape(shape), predicted.reshape(shape)


class ErrorMaps(NamedTuple):
    """Boolean maps shaped like the mask without its channel; pixels whose truth is no class are in none."""

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
        :class:`ErrorMaps` of boolean (H, W) arrays; for binary data ``wrong_class`` is all False.
    """
    true, predicted = class_maps(mask, prediction, num_classes=num_classes)
    valid = (true >= 0) & (true < num_classes)  # other values are ignored, as in the metrics
    true_object = valid & (true > 0)
    return ErrorMaps(
        true_positive=true_object & (predicted == true),
        false_positive=valid & (true == 0) & (predicted > 0),
        false_negative=true_object & (predicted == 0),
        wrong_class=true_object & (predicted > 0) & (predicted != true),
    )


def error_image(
    mask: Any, prediction: Any, *, num_classes: int = 2, true_positive_alpha: float = 0.35
) -> np.ndarray:
    """The errors as an RGBA overlay in ERROR_COLORS, transparent where background is predicted right.

    Args:
        mask, prediction, num_classes: as for :func:`error_maps`.
        true_positive_alpha: opacity of the true positives, in [0, 1] (0 hides them); errors are opaque.

    Returns:
        float32 RGBA in [0, 1], shape (H, W, 4), for ``axes.imshow`` over the image.
    """
    maps = error_maps(mask, prediction, num_classes=num_classes)
    rgba = np.zeros((*maps.true_positive.shape, 4), np.float32)
    for name, region in maps._asdict().items():
        rgba[region] = (*to_rgb(ERROR_COLORS[name]), true_positive_alpha if name == "true_positive" else 1.0)
    return rgba


class DiceRanking(NamedTuple):
    """Images ranked by their own Dice."""

    order: np.ndarray  # int64 (N,): image indices, best Dice first; ties keep the input order
    scores: np.ndarray  # float64 (N,): each image's Dice in the input order, so scores[order] is descending


def rank_by_dice(masks: Any, predictions: Any, *, num_classes: int = 2) -> DiceRanking:
    """Rank images by their own Dice, best first.

    Each image's Dice is ``metrics.dice_score(per_image=True)``'s: an image with no object in the truth and
    none predicted scores 1, one with no object but a false positive scores 0.

    Args:
        masks: N masks, (N, H, W) or (N, H, W, 1) class indices (or a list of (H, W[, 1]) masks).
        predictions: N predictions, as for :func:`class_maps`.
        num_classes: classes including the background (2 for binary masks).

    Returns:
        :class:`DiceRanking` ``(order, scores)``.
    """
    scores = metrics.dice_score(
        np.asarray(masks), np.asarray(predictions), num_classes=num_classes, per_image=True
    )
    return DiceRanking(order=np.argsort(-scores, kind="stable"), scores=scores)


def dice_against_threshold(
    masks: Any, probabilities: Any, *, thresholds: Sequence[float] = DEFAULT_THRESHOLDS
) -> tuple[np.ndarray, np.ndarray]:
    """Pooled Dice of a binary model when class 1 is ``p > threshold``, for each threshold.

    Args:
        masks: 0/1 masks, (H, W[, 1]) or (N, H, W[, 1]).
        probabilities: the sigmoid output in [0, 1], the masks' shape (with or without the channel).
        thresholds: the thresholds tried, in [0, 1]; the metrics use 0.5.

    Returns:
        (thresholds, scores): two float64 arrays of shape (T,), the Dice pooled over all pixels, in [0, 1].

    Raises:
        UnetTutorialError: shapes that do not fit (e.g. a multi-class softmax), logits, bad thresholds.
    """
    masks, probabilities = np.asarray(masks), _check_probabilities(probabilities)
    if metrics.drop_channel(probabilities).shape != metrics.drop_channel(masks).shape:
        raise UnetTutorialError(
            f"probabilities has shape {probabilities.shape}, masks {masks.shape}: pass a binary model's "
            "1-channel sigmoid output for these masks (multi-class models have no threshold)."
        )
    thresholds = np.asarray(thresholds, np.float64)
    if thresholds.ndim != 1 or not thresholds.size or thresholds.min() < 0 or thresholds.max() > 1:
        raise UnetTutorialError(f"thresholds={thresholds}: pass one or more numbers in [0, 1].")
    # Compared in float32, as the Keras metric compares in the prediction's dtype: 0.8 is not above 0.8.
    scores = [
        metrics.dice_score(masks, (probabilities > np.float32(threshold)).astype(np.uint8))
        for threshold in thresholds
    ]
    return thresholds, np.array(scores, np.float64)


def confusion_matrix(masks: Any, predictions: Any, *, num_classes: int = 2) -> np.ndarray:
    """Pixel counts of each (true class, predicted class) pair, over all pixels of all images.

    Args:
        masks: class indices, (H, W[, 1]) or (N, H, W[, 1]); pixels whose value is no class are left out.
        predictions: as for :func:`class_maps`.
        num_classes: classes including the background (2 for binary masks).

    Returns:
        int64 (K, K), K = num_classes: rows are the true class, columns the predicted class.
    """
    true, predicted = class_maps(masks, predictions, num_classes=num_classes)
    if predicted.min(initial=0) < 0 or predicted.max(initial=0) >= num_classes:
        raise UnetTutorialError(f"predictions hold classes outside 0..{num_classes - 1}: check num_classes.")
    valid = (true >= 0) & (true < num_classes)
    # np.bincount is all it takes; tf.math.confusion_matrix gives the same (K, K) but wants tensors.
    pairs = num_classes * true[valid] + predicted[valid]
    return np.bincount(pairs, minlength=num_classes**2).reshape(num_classes, num_classes)


def show_predictions(
    images: ImageBatch,
    masks: ImageBatch,
    predictions: ImageBatch,
    *,
    title: str,
    class_names: Sequence[str] = ("background", "object"),
    titles: Sequence[str] | None = None,
    panel_size: float = 2.6,
) -> Figure:
    """One row per image: the image, its ground truth, the prediction with the image's own Dice.

    Args:
        images: N images, float in [0, 1], (H, W, C) with C in {1, 3}.
        masks: N masks of class indices, (H, W) or (H, W, 1).
        predictions: N predictions: class indices, sigmoid probabilities (H, W[, 1]) or softmax (H, W, K).
        title: the figure's title.
        class_names: one name per class, background first; their number is the number of classes.
        titles: an optional name per image (default "image <index>").
        panel_size: inches per panel.

    Returns:
        The figure (shown by Jupyter when it is the cell's last value).

    Raises:
        UnetTutorialError: counts or shapes that do not fit.
    """
    num_classes = len(class_names)
    ranking = _rank_batch(images, masks, predictions, num_classes)
    figure, axes_grid = _new_figure(len(images), 3, panel_size=panel_size)
    for index, row in enumerate(axes_grid):
        true, predicted = class_maps(masks[index], predictions[index], num_classes=num_classes)
        _show_image(row[0], images[index], title=titles[index] if titles is not None else f"image {index}")
        for axes, classes, panel_title in (
            (row[1], true, "ground truth"),
            (row[2], predicted, f"prediction: Dice {ranking.scores[index]:.3f}"),
        ):
            _show_image(axes, images[index], title=panel_title)
            handles = draw_mask_outline(axes, classes, num_classes=num_classes)
    return _finish(figure, title=title, handles=handles, labels=class_names[1:])


def show_overlay(
    image: np.ndarray,
    *,
    mask: Any = None,
    prediction: Any = None,
    title: str = "Ground truth and prediction",
    class_names: Sequence[str] = ("background", "object"),
    panel_size: float = 5.0,
) -> Figure:
    """One image with the outlines of its ground truth (solid, filled) and of a prediction (dashed).

    Args:
        image: float in [0, 1], (H, W, C) with C in {1, 3}.
        mask: class indices, (H, W) or (H, W, 1); optional.
        prediction: class indices, sigmoid probabilities (H, W[, 1]) or softmax (H, W, K); optional.
        title: the figure's title; with both mask and prediction, their Dice is added to it.
        class_names: one name per class, background first.
        panel_size: inches.

    Raises:
        UnetTutorialError: neither mask nor prediction, or shapes that do not fit.
    """
    if mask is None and prediction is None:
        raise UnetTutorialError("show_overlay needs mask=, prediction= or both.")
    figure, axes_grid = _new_figure(1, 1, panel_size=panel_size)
    height, width = np.shape(image)[:2]
    if width > height:  # a wide image: no empty bands above and below it
        figure.set_size_inches(panel_size, panel_size * height / width + 0.6)
    handles, labels = _draw_overlay(axes_grid[0, 0], image, mask, prediction, class_names=class_names)
    if mask is not None and prediction is not None:
        # In the figure's title: a panel title of its own would collide with it on large panels.
        score = metrics.dice_score(mask, prediction, num_classes=len(class_names))
        title = f"{title} (Dice {score:.3f})"
    return _finish(figure, title=title, handles=handles, labels=labels)


def show_errors(
    images: ImageBatch,
    masks: ImageBatch,
    predictions: ImageBatch,
    *,
    title: str = "Where the predictions are wrong",
    class_names: Sequence[str] = ("background", "object"),
    true_positive_alpha: float = 0.35,
    columns: int = 4,
    titles: Sequence[str] | None = None,
    panel_size: float = 2.6,
) -> Figure:
    """A grid of images with their false positives and false negatives (and wrong classes) coloured.

    Args:
        images, masks, predictions, class_names, titles, panel_size: as for :func:`show_predictions`.
        title: the figure's title.
        true_positive_alpha: opacity of the true positives, in [0, 1] (0 hides them).
        columns: panels per row.

    Returns:
        The figure; each panel's title gives the image's Dice, the legend the colours (ERROR_COLORS).
    """
    num_classes = len(class_names)
    ranking = _rank_batch(images, masks, predictions, num_classes)
    count = len(images)
    figure, axes_grid = _new_figure(-(-count // columns), min(columns, count), panel_size=panel_size)
    for index, axes in enumerate(axes_grid.flat):
        axes.axis("off")
        if index < count:
            name = titles[index] if titles is not None else f"image {index}"
            _show_image(axes, images[index], title=f"{name}: Dice {ranking.scores[index]:.3f}")
            overlay = error_image(
                masks[index],
                predictions[index],
                num_classes=num_classes,
                true_positive_alpha=true_positive_alpha,
            )
            axes.imshow(overlay, interpolation="nearest")
    shown = [name for name in ERROR_COLORS if name != "wrong_class" or num_classes > 2]
    if true_positive_alpha == 0:
        shown.remove("true_positive")
    handles = [
        Patch(facecolor=ERROR_COLORS[name], alpha=true_positive_alpha if name == "true_positive" else 1.0)
        for name in shown
    ]
    # hspace: room for each panel's title between rows (tight_layout leaves them touching the row above).
    labels = [ERROR_LABELS[name] for name in shown]
    return _finish(figure, title=title, handles=handles, labels=labels, hspace=0.3)


def show_best_and_worst(
    images: ImageBatch,
    masks: ImageBatch,
    predictions: ImageBatch,
    *,
    count: int = 3,
    title: str = "Best and worst images by Dice",
    class_names: Sequence[str] = ("background", "object"),
    titles: Sequence[str] | None = None,
    panel_size: float = 2.6,
) -> Figure:
    """The ``count`` images with the highest Dice (top row) and the lowest (bottom row, worst first).

    Each panel shows the truth's outline (solid) and the prediction's (dashed), titled with the image's
    index and Dice (see :func:`rank_by_dice`). ``count`` is capped at half the images, so no image is shown
    twice (a single image appears in both rows).

    Args:
        images, masks, predictions, class_names, titles, panel_size: as for :func:`show_predictions`.
        count: images per row.
        title: the figure's title.
    """
    ranking = _rank_batch(images, masks, predictions, len(class_names))
    count = max(1, min(count, len(images) // 2))
    figure, axes_grid = _new_figure(2, count, panel_size=panel_size)
    for axes_row, (label, indices) in zip(
        axes_grid, (("best", ranking.order[:count]), ("worst", ranking.order[::-1][:count])), strict=True
    ):
        for rank, (axes, index) in enumerate(zip(axes_row, indices, strict=True), start=1):
            handles, labels = _draw_overlay(
                axes, images[index], masks[index], predictions[index], class_names=class_names
            )
            name = titles[index] if titles is not None else f"image {index}"
            axes.set_title(f"{label} {rank}: {name}, Dice {ranking.scores[index]:.3f}", fontsize=9)
    return _finish(figure, title=title, handles=handles, labels=labels, hspace=0.25)  # room for titles


def show_probabilities(
    image: np.ndarray,
    probabilities: Any,
    *,
    mask: Any = None,
    title: str = "Predicted probabilities",
    class_names: Sequence[str] = ("background", "object"),
    colormap: str = "viridis",
    panel_size: float = 3.2,
) -> Figure:
    """The image, then each foreground class's probability map with a colour bar from 0 to 1.

    Args:
        image: float in [0, 1], (H, W, C) with C in {1, 3}.
        probabilities: a binary model's sigmoid output (H, W) or (H, W, 1), or a softmax output (H, W, K)
            with K = len(class_names); values in [0, 1].
        mask: class indices (H, W[, 1]); optional, its outline is drawn on every panel.
        title: the figure's title.
        class_names: one name per class, background first.
        colormap: a perceptually uniform matplotlib colormap ("viridis", "magma", ...).
        panel_size: inches per panel.

    Raises:
        UnetTutorialError: shapes that do not fit, or values outside [0, 1] (logits).
    """
    probabilities = _check_probabilities(probabilities)
    _check_size(image, probabilities, "probabilities")
    channels = 1 if probabilities.ndim == 2 else probabilities.shape[-1]
    if channels == 1 and len(class_names) == 2:
        maps = {class_names[1]: probabilities.reshape(probabilities.shape[:2])}
    elif channels == len(class_names) and probabilities.ndim == 3:
        maps = {name: probabilities[..., index] for index, name in enumerate(class_names) if index > 0}
    else:
        raise UnetTutorialError(
            f"probabilities has shape {probabilities.shape} for {len(class_names)} class_names: pass one "
            "image's sigmoid output (H, W, 1) for 2 classes, or its softmax output (H, W, K), K classes."
        )
    figure, axes_grid = _new_figure(1, 1 + len(maps), panel_size=panel_size)
    _show_image(axes_grid[0, 0], image, title="image")
    handles = []
    for axes, (name, probability) in zip(axes_grid[0, 1:], maps.items(), strict=True):
        picture = axes.imshow(probability, cmap=colormap, vmin=0, vmax=1, interpolation="nearest")
        axes.set_title(f"P({name})", fontsize=9)
        axes.axis("off")
        figure.colorbar(picture, ax=axes, fraction=0.046, pad=0.04, label=f"probability of {name}")
    if mask is not None:
        _check_size(image, mask, "mask")
        for axes in axes_grid.flat:
            handles = draw_mask_outline(axes, mask, num_classes=len(class_names), fill_alpha=0)
    return _finish(
        figure, title=title, handles=handles, labels=[f"{name} (truth)" for name in class_names[1:]]
    )


def plot_dice_against_threshold(
    thresholds: Any, scores: Any, *, title: str = "Pooled Dice against the threshold"
) -> Figure:
    """The curve from :func:`dice_against_threshold`, marking the metrics' 0.5 and the best threshold.

    Args:
        thresholds: (T,) thresholds in [0, 1].
        scores: (T,) pooled Dice in [0, 1], one per threshold.
        title: the figure's title.
    """
    thresholds, scores = np.asarray(thresholds, np.float64), np.asarray(scores, np.float64)
    if thresholds.shape != scores.shape or thresholds.ndim != 1 or not thresholds.size:
        raise UnetTutorialError(
            f"thresholds {thresholds.shape} and scores {scores.shape}: pass the two arrays that "
            "dice_against_threshold returns."
        )
    figure, axes_grid = _new_figure(1, 1, panel_size=4.5, width=1.4)
    axes = axes_grid[0, 0]
    axes.plot(thresholds, scores, marker="o", markersize=3, color=CLASS_COLORS[6], label="pooled Dice")
    at_half = np.isclose(thresholds, 0.5)
    half_label = (
        f"0.5, the metrics' rule: Dice {scores[at_half][0]:.3f}"
        if at_half.any()
        else "0.5, the metrics' rule"
    )
    axes.axvline(0.5, color="0.4", linestyle=":", label=half_label)
    best = int(np.argmax(scores))
    axes.plot(
        thresholds[best],
        scores[best],
        marker="*",
        markersize=14,
        linestyle="none",
        color=CLASS_COLORS[2],
        label=f"best: {thresholds[best]:.2f}, Dice {scores[best]:.3f}",
    )
    axes.set(
        xlabel="threshold (class 1 where p > threshold)", ylabel="pooled Dice", xlim=(0, 1), ylim=(0, 1.02)
    )
    axes.grid(alpha=0.3)
    axes.legend(loc="lower center", frameon=False)
    return _finish(figure, title=title)


def plot_confusion_matrix(
    matrix: Any,
    *,
    class_names: Sequence[str],
    normalize: str | None = "true",
    title: str = "Confusion matrix (pixels)",
) -> Figure:
    """A confusion matrix as a heat map, each cell annotated with its share and its pixel count.

    Args:
        matrix: (K, K) counts from :func:`confusion_matrix`; rows true class, columns predicted class.
        class_names: the K class names, background first.
        normalize: "true" (each row sums to 1: the share of a true class's pixels given each class),
            "pred" (each column sums to 1), "all" (the whole matrix sums to 1) or None (counts).
        title: the figure's title.

    Raises:
        UnetTutorialError: a matrix that is not (K, K) for K class names, or an unknown ``normalize``.
    """
    matrix = np.asarray(matrix, np.float64)
    size = len(class_names)
    if matrix.shape != (size, size):
        raise UnetTutorialError(
            f"matrix has shape {matrix.shape}: pass a ({size}, {size}) matrix for {size} class_names."
        )
    totals = {
        None: 1.0,
        "true": matrix.sum(axis=1, keepdims=True),
        "pred": matrix.sum(axis=0, keepdims=True),
        "all": matrix.sum(),
    }
    if normalize not in totals:
        raise UnetTutorialError(f'normalize={normalize!r}: use "true", "pred", "all" or None.')
    with np.errstate(invalid="ignore", divide="ignore"):  # a class absent from the truth: 0 / 0, no share
        shares = matrix / totals[normalize]
    figure, axes_grid = _new_figure(1, 1, panel_size=0.9 * size + 2.4, width=1.25)
    axes = axes_grid[0, 0]
    colormap = plt.get_cmap("viridis").with_extremes(bad="0.85")
    top = 1.0 if normalize is not None else max(matrix.max(), 1.0)
    picture = axes.imshow(shares, cmap=colormap, vmin=0, vmax=top)
    colorbar_labels = {
        None: "pixels",
        "true": "share of the true class's pixels",
        "pred": "share of the predicted class's pixels",
        "all": "share of all pixels",
    }
    figure.colorbar(picture, ax=axes, label=colorbar_labels[normalize])
    for (row, column), count in np.ndenumerate(matrix):
        share = shares[row, column]
        text = (
            f"{count:,.0f}"
            if normalize is None
            else ("n/a" if np.isnan(share) else f"{share:.2f}\n{count:,.0f}")
        )
        dark_cell = share < 0.5 * top  # False for NaN: black text on the light grey of an empty row
        axes.text(
            column, row, text, ha="center", va="center", fontsize=8, color="white" if dark_cell else "black"
        )
    axes.set_xticks(range(size), class_names, rotation=30, ha="right")
    axes.set_yticks(range(size), class_names)
    axes.set(xlabel="predicted class", ylabel="true class")
    return _finish(figure, title=title)


def show_pairs(
    images: ImageBatch,
    masks: ImageBatch,
    *,
    title: str,
    class_names: Sequence[str] = ("background", "object"),
    titles: Sequence[str] | None = None,
    columns: int = 4,
    panel_size: float = 2.6,
) -> Figure:
    """A grid of images, each with its mask's outline, and a legend of the classes.

    Args:
        images: N images, float in [0, 1], (H, W, C) with C in {1, 3}.
        masks: N masks of class indices, (H, W) or (H, W, 1).
        title: the figure's title.
        class_names: one name per class, background first; their number is the number of classes.
        titles: an optional title per panel.
        columns: panels per row.
        panel_size: inches per panel.

    Returns:
        The figure (shown by Jupyter when it is the cell's last value).
    """
    count = len(images)
    figure, axes_grid = _new_figure(-(-count // columns), min(columns, count), panel_size=panel_size)
    handles = []
    for index, axes in enumerate(axes_grid.flat):
        axes.axis("off")
        if index >= count:
            continue
        _show_image(axes, images[index], title=titles[index] if titles is not None else None)
        handles = draw_mask_outline(axes, masks[index], num_classes=len(class_names))
    return _finish(
        figure,
        title=title,
        handles=handles,
        labels=[f"{name} (mask outline)" for name in class_names[1:]],
        hspace=0.25 if titles is not None else 0.08,  # rows apart, titles readable
    )


def colorize_instances(labels: Any, *, reach: int = 2, reference: Any = None) -> np.ndarray:
    """An instance label map (one number per object, 0 = background) as an RGB image.

    The background is BACKGROUND_COLOR; each object gets one of INSTANCE_COLORS, and two objects that
    touch, or come within ``reach`` pixels of each other, never get the same colour (greedy colouring, the
    least used free colour first), so touching objects stay visibly apart. The colours say "another
    object", nothing more.

    Args:
        labels: (H, W) or (H, W, 1) non-negative integers (a 16-bit instance PNG read with PIL, say).
        reach: objects closer than this many pixels (along rows, columns or diagonals) count as neighbours.
        reference: another label map whose colouring to use, so that a label keeps its colour from one
            panel to the next (e.g. the map before a transform); labels it lacks get colours in turn.

    Returns:
        float32 RGB in [0, 1], shape (H, W, 3).

    Raises:
        UnetTutorialError: a map that is not 2-D, or holds negative or fractional values.
    """
    labels = _label_map(labels)
    colored = labels if reference is None else _label_map(reference)
    height, width = colored.shape
    neighbours: dict[int, set[int]] = {}
    for dy in range(reach + 1):
        for dx in range(-reach, reach + 1):
            if dy == 0 and dx <= 0:
                continue  # each offset once
            first = colored[: height - dy, max(0, -dx) : width - max(0, dx)]
            second = colored[dy:, max(0, dx) : width - max(0, -dx)]
            touching = (first != second) & (first > 0) & (second > 0)
            for a, b in set(zip(first[touching].tolist(), second[touching].tolist(), strict=True)):
                neighbours.setdefault(a, set()).add(b)
                neighbours.setdefault(b, set()).add(a)
    color_of: dict[int, int] = {}
    uses = [0] * len(INSTANCE_COLORS)
    for label in np.unique(colored[colored > 0]).tolist():
        taken = {color_of[other] for other in neighbours.get(label, ()) if other in color_of}
        free = [index for index in range(len(INSTANCE_COLORS)) if index not in taken]
        # The least used free colour: neighbours differ, and the colours spread over the whole map.
        color_of[label] = min(free, key=uses.__getitem__) if free else label % len(INSTANCE_COLORS)
        uses[color_of[label]] += 1
    palette = np.array(
        [
            to_rgb(INSTANCE_COLORS[color_of.get(label, label % len(INSTANCE_COLORS))])
            for label in range(labels.max(initial=0) + 1)
        ],
        np.float32,
    )
    palette[0] = to_rgb(BACKGROUND_COLOR)
    return palette[labels]


def _label_map(labels: Any) -> np.ndarray:
    """An instance label map as int64 (H, W), checked."""
    labels = metrics.drop_channel(np.asarray(labels))
    if labels.ndim != 2 or labels.min(initial=0) < 0 or not np.array_equal(labels, np.round(labels)):
        raise UnetTutorialError(
            f"labels have shape {np.shape(labels)} and values {np.unique(labels)[:6]}: pass one instance "
            "label map (H, W) of non-negative integers, 0 for the background."
        )
    return labels.astype(np.int64)


def show_images(
    images: ImageBatch,
    *,
    title: str,
    titles: Sequence[str] | None = None,
    columns: int = 4,
    panel_size: float = 2.6,
    marked: Sequence[Any] | None = None,
    marked_label: str | None = None,
) -> Figure:
    """A grid of images without masks (photos, masks, :func:`colorize_instances` maps), some pixels marked.

    Args:
        images: N images, float in [0, 1], (H, W), (H, W, 1) or (H, W, 3); gray ones are shown in gray.
        title: the figure's title.
        titles: an optional title per panel.
        columns: panels per row.
        panel_size: inches per panel.
        marked: optional, one boolean (H, W) or (H, W, 1) map per image (None for none): those pixels are
            painted MARK_COLOR, and the legend names them ``marked_label``.
        marked_label: what the marked pixels are; needed with ``marked``.

    Returns:
        The figure (shown by Jupyter when it is the cell's last value).

    Raises:
        UnetTutorialError: ``marked`` without ``marked_label``, or not one map per image of its size.
    """
    count = len(images)
    if marked is not None and (marked_label is None or len(marked) != count):
        raise UnetTutorialError(
            f"marked holds {len(marked)} maps for {count} images: pass one per image (None for none), "
            "and marked_label, which says what they mark."
        )
    figure, axes_grid = _new_figure(-(-count // columns), min(columns, count), panel_size=panel_size)
    for index, axes in enumerate(axes_grid.flat):
        axes.axis("off")
        if index >= count:
            continue
        _show_image(axes, np.asarray(images[index]), title=titles[index] if titles is not None else None)
        if marked is not None and marked[index] is not None:
            pixels = metrics.drop_channel(np.asarray(marked[index])).astype(bool)
            if pixels.shape != np.shape(images[index])[:2]:
                raise UnetTutorialError(
                    f"a marked map has shape {pixels.shape}, its image {np.shape(images[index])}: pass the "
                    "image's height and width."
                )
            overlay = np.zeros((*pixels.shape, 4), np.float32)
            overlay[..., :3], overlay[..., 3] = to_rgb(MARK_COLOR), pixels
            axes.imshow(overlay, interpolation="nearest")
    handles = [Patch(facecolor=MARK_COLOR)] if marked is not None else []
    return _finish(
        figure,
        title=title,
        handles=handles,
        labels=[marked_label] if marked is not None else [],
        hspace=0.25 if titles is not None else 0.08,
    )


def plot_histograms(
    groups: Mapping[str, Any],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    bins: int = 30,
    log: bool = False,
    lines: Mapping[str, float] | None = None,
) -> Figure:
    """Histograms of several groups of numbers on one axes, each in % of its own group.

    Each group is counted against its own size, so that a group of 200 values compares with one of 5,000;
    the legend gives each group's size. All groups share the same bins.

    Args:
        groups: name -> values (any shape; flattened), e.g. nucleus areas per kind of image.
        title: the figure's title.
        xlabel: what the values are, with their unit.
        ylabel: what the bars count, e.g. "% of the kind's nuclei".
        bins: number of bins, between the smallest and the largest value of all groups.
        log: logarithmic bins and x axis (values must be positive), for values spread over decades.
        lines: optional name -> value: a dashed vertical line at each value, named in the legend.

    Returns:
        The figure (shown by Jupyter when it is the cell's last value).

    Raises:
        UnetTutorialError: an empty group, or values that are not positive with ``log``.
    """
    values = {name: np.asarray(group, np.float64).ravel() for name, group in groups.items()}
    if not values or any(group.size == 0 for group in values.values()):
        raise UnetTutorialError(
            f"groups {', '.join(f'{name}: {group.size}' for name, group in values.items()) or 'none'}: "
            "pass at least one group, each with at least one value."
        )
    everything = np.concatenate(list(values.values()))
    if log and everything.min() <= 0:
        raise UnetTutorialError(
            f"log=True needs positive values; the smallest is {everything.min():g}. Pass log=False."
        )
    low, high = everything.min(), max(everything.max(), everything.min() * (1 + 1e-9) + 1e-12)
    edges = np.geomspace(low, high, bins + 1) if log else np.linspace(low, high, bins + 1)
    figure, axes = plt.subplots(figsize=(7.5, 3.8))
    figure.patch.set_facecolor("white")
    for index, (name, group) in enumerate(values.items()):
        axes.hist(
            group,
            bins=edges,
            weights=np.full(group.size, 100.0 / group.size),
            histtype="step",
            linewidth=2,
            color=GROUP_COLORS[index % len(GROUP_COLORS)],
            label=f"{name} ({group.size:,})",
        )
    for index, (name, value) in enumerate((lines or {}).items()):
        axes.axvline(value, color="black", linestyle=("--", ":", "-.")[index % 3], label=name)
    if log:
        axes.set_xscale("log")
    axes.set(xlabel=xlabel, ylabel=ylabel)
    axes.legend(fontsize=8)
    return _finish(figure, title=title)


def show_normalization(
    images: ImageBatch,
    normalized: ImageBatch,
    masks: ImageBatch,
    *,
    title: str,
    titles: Sequence[str],
    class_names: Sequence[str] = ("background", "object"),
    normalized_range: tuple[float, float] = (-5.0, 5.0),
) -> Figure:
    """Images before and after an intensity normalisation, each beside its histogram (object, background).

    One row per image: the image as stored (0 to 1), the histogram of its gray values (the mean of its
    channels) inside and outside the mask, the normalised image, and its histogram. Normalised images are
    all shown over the same ``normalized_range`` (values beyond it at its ends), so that they compare.

    Args:
        images: N images, float in [0, 1], (H, W, C).
        normalized: the same N images after the normalisation (e.g. ``tf.image.per_image_standardization``).
        masks: N binary masks (H, W) or (H, W, 1): 1 marks the object.
        title: the figure's title.
        titles: one name per image (row), e.g. its kind.
        class_names: the background's name and the object's.
        normalized_range: the values shown from black to white, and the histograms' range, after normalising.

    Returns:
        The figure (shown by Jupyter when it is the cell's last value).
    """
    low, high = normalized_range
    figure, axes_grid = _new_figure(len(images), 4, panel_size=2.9)
    for row, (image, after, mask) in enumerate(zip(images, normalized, masks, strict=True)):
        image, after = np.asarray(image, np.float32), np.asarray(after, np.float32)
        _check_size(image, mask, "a mask")
        _check_size(after, mask, "a normalized image")
        inside = metrics.drop_channel(np.asarray(mask)) > 0
        _show_image(axes_grid[row, 0], image, title=f"{titles[row]}: as stored")
        shown = np.clip((after - low) / (high - low), 0.0, 1.0)
        _show_image(axes_grid[row, 2], shown, title=f"{titles[row]}: normalized")
        for axes, values, (start, stop), name in (
            (axes_grid[row, 1], image.mean(axis=-1), (0.0, 1.0), "gray value as stored"),
            (axes_grid[row, 3], after.mean(axis=-1), (low, high), "gray value, normalized"),
        ):
            for region, color in ((~inside, GROUP_COLORS[0]), (inside, GROUP_COLORS[1])):
                if region.any():
                    axes.hist(
                        np.clip(values[region], start, stop),
                        bins=np.linspace(start, stop, 41),
                        weights=np.full(region.sum(), 100.0 / region.sum()),
                        histtype="stepfilled",
                        alpha=0.6,
                        color=color,
                    )
            axes.set_xlim(start, stop)
            axes.set_xlabel(name, fontsize=8)
            axes.set_ylabel("% of the region's pixels", fontsize=8)
            axes.tick_params(labelsize=7)
    handles = [Patch(facecolor=GROUP_COLORS[0], alpha=0.6), Patch(facecolor=GROUP_COLORS[1], alpha=0.6)]
    return _finish(figure, title=title, handles=handles, labels=list(class_names[:2]), hspace=0.45)


def show_deformation(
    shift_y: Any,
    shift_x: Any,
    warped_grid: Any,
    warped_image: Any,
    warped_mask: Any,
    *,
    title: str,
    grid_step: int,
    control_points: Sequence[float] = (),
    class_names: Sequence[str] = ("background", "object"),
) -> Figure:
    """A deformation in three panels: its displacement field, a regular grid deformed, an image deformed.

    Args:
        shift_y, shift_x: (H, W) displacement of every output pixel, in pixels: the point of the input it
            shows minus its own position (``augment.sampling_map`` minus the pixel grid).
        warped_grid: (H, W) or (H, W, 1) lines every ``grid_step`` pixels (the first at ``grid_step // 2``),
            deformed by the field; drawn dark on white.
        warped_image: (H, W, C) the image deformed by the same field, values in [0, 1].
        warped_mask: its (H, W) or (H, W, 1) class indices, deformed with it; drawn as outlines.
        title: the figure's title.
        grid_step: the grid's spacing; the field's arrows start where its lines cross, on the undeformed grid.
        control_points: where the field's control points lie along each axis (pixels); drawn as dots.
        class_names: one name per class, background first.

    Returns:
        The figure (shown by Jupyter when it is the cell's last value).
    """
    shift_y, shift_x = np.asarray(shift_y), np.asarray(shift_x)
    height, width = shift_y.shape
    lines = np.zeros((height, width), np.float32)
    lines[grid_step // 2 :: grid_step] = lines[:, grid_step // 2 :: grid_step] = 1.0
    figure, axes = plt.subplots(1, 3, figsize=(13, 4.8))
    figure.patch.set_facecolor("white")
    axes[0].imshow(lines, cmap="gray_r", vmin=0, vmax=3)  # the undeformed grid, faint
    crossings = (slice(grid_step // 2, None, grid_step), slice(grid_step // 2, None, grid_step))
    rows, columns = np.mgrid[0:height, 0:width]
    axes[0].quiver(
        columns[crossings],
        rows[crossings],
        shift_x[crossings],
        shift_y[crossings],
        color=MARK_COLOR,
        angles="xy",
        scale_units="xy",
        scale=1,
        width=0.004,
        label="displacement (pixels, to scale)",
    )
    if len(control_points):
        knots = np.meshgrid(control_points, control_points)
        axes[0].scatter(*knots, color="#0072B2", s=40, zorder=3, label="control points")
    axes[0].legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8, frameon=False)
    axes[1].imshow(metrics.drop_channel(np.asarray(warped_grid)), cmap="gray_r", vmin=0, vmax=1.5)
    _show_image(axes[2], np.asarray(warped_image))
    handles = draw_mask_outline(axes[2], np.asarray(warped_mask), num_classes=len(class_names))
    axes[2].legend(
        handles, class_names[1:], loc="upper center", bbox_to_anchor=(0.5, -0.12), fontsize=8, frameon=False
    )
    names = ("Displacement field", "A regular grid, deformed", "The image and its mask, deformed")
    for panel, name in zip(axes, names, strict=True):
        panel.axis("on")
        panel.set(title=name, xlabel="x (pixels)", ylabel="y (pixels)")
    return _finish(figure, title=title)


def show_tile_grid(image: np.ndarray, grid: Any, *, title: str, panel_size: float = 7.5) -> Figure:
    """The tiles of an overlap-tile prediction over the image and its mirrored border (drawn pale).

    Two neighbouring tiles of one row are filled, to show the band they share and blend.

    Args:
        image: float in [0, 1], (H, W, C) with C in {1, 3}: the image the tiles cut.
        grid: its tile grid, ``inference.tile_grid(model, image.shape)`` (an ``inference.TileGrid``).
        title: the figure's title.
        panel_size: the figure's width in inches.

    Raises:
        UnetTutorialError: an image that is not (H, W, C), or a grid made for another image size.
    """
    _check_size(image, np.zeros(grid.image_shape), "the grid's image")
    (top, bottom), (left, right) = grid.padding
    height, width = grid.image_shape
    padded = np.pad(np.asarray(image), ((top, bottom), (left, right), (0, 0)), mode="reflect")
    extent = (-left - 0.5, width + right - 0.5, height + bottom - 0.5, -top - 0.5)  # image coordinates
    figure, axes = plt.subplots(
        figsize=(panel_size, panel_size * padded.shape[0] / padded.shape[1] + 1.4), facecolor="white"
    )
    axes.imshow(
        padded[..., 0] if padded.shape[-1] == 1 else padded, cmap="gray", vmin=0, vmax=1, extent=extent
    )
    veil = np.zeros((*padded.shape[:2], 4))
    veil[..., :3], veil[..., 3] = 1.0, 0.55  # white: the mirrored border looks pale
    veil[top : top + height, left : left + width, 3] = 0
    axes.imshow(veil, extent=extent)
    tile_height, tile_width = grid.tile_size
    for row in grid.rows:
        for column in grid.columns:
            corner = (column - 0.5, row - 0.5)
            axes.add_patch(Rectangle(corner, tile_width, tile_height, fill=False, edgecolor=CLASS_COLORS[1]))
    row = grid.rows[min(1, len(grid.rows) - 1)]
    neighbours = grid.columns[1:3] if len(grid.columns) > 2 else grid.columns[:2]
    handles = [Patch(facecolor="none", edgecolor=CLASS_COLORS[1], label="tile edges")]
    for color, column, label in zip(
        (CLASS_COLORS[2], CLASS_COLORS[4]),
        neighbours,
        ("one tile", f"its neighbour: {grid.overlap[1]} columns shared"),
        strict=False,
    ):
        axes.add_patch(
            Rectangle((column - 0.5, row - 0.5), tile_width, tile_height, facecolor=color, alpha=0.4)
        )
        handles.append(Patch(facecolor=color, alpha=0.4, label=label))
    outline = Rectangle((-0.5, -0.5), width, height, fill=False, edgecolor=CLASS_COLORS[3], linewidth=2.5)
    axes.add_patch(outline)
    handles.append(Patch(facecolor="none", edgecolor=CLASS_COLORS[3], linewidth=2.5, label="the image"))
    handles.append(Patch(facecolor="white", edgecolor="0.5", label="its mirrored border (pale)"))
    axes.set(xlabel="column (pixels)", ylabel="row (pixels)")
    figure.legend(handles=handles, loc="lower center", ncol=3, fontsize=9, frameon=False)
    figure.suptitle(title)
    figure.tight_layout(rect=(0, 1.1 / figure.get_figheight(), 1, 1))
    plt.close(figure)
    return figure


def show_seam_differences(
    differences: Sequence[np.ndarray],
    grids: Sequence[Any],
    titles: Sequence[str],
    *,
    title: str,
    vmax: float = 0.5,
    panel_size: float = 6.0,
) -> Figure:
    """Maps of how far tiled predictions are from a whole-image prediction, with each tiling's edges dotted.

    Args:
        differences: one (H, W) map per tiling, e.g. ``np.abs(tiled - whole)[..., 0]``.
        grids: the ``inference.TileGrid`` of each tiling, for its tile edges (seams).
        titles: one panel title per tiling.
        title: the figure's title.
        vmax: the top of the shared colour scale.
        panel_size: inches per panel (its width).

    Raises:
        UnetTutorialError: counts that differ, or a map of another size than its grid's image.
    """
    if not len(differences) or len({len(differences), len(grids), len(titles)}) > 1:
        raise UnetTutorialError(
            f"{len(differences)} differences, {len(grids)} grids, {len(titles)} titles: pass one of each "
            "per tiling, at least one."
        )
    height, width = np.shape(differences[0])[:2]
    figure, axes_row = plt.subplots(
        1,
        len(differences),
        figsize=(panel_size * len(differences) + 1.2, panel_size * height / width + 1.2),
        squeeze=False,
        layout="constrained",
        facecolor="white",
    )
    for axes, difference, grid, panel_title in zip(axes_row[0], differences, grids, titles, strict=True):
        if np.shape(difference)[:2] != tuple(grid.image_shape):
            raise UnetTutorialError(
                f"a difference map has shape {np.shape(difference)}, its grid's image {grid.image_shape}: "
                "pass the grid of the tiling that made it."
            )
        picture = axes.imshow(difference, cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
        for seam in grid.seams(0):
            axes.axhline(seam - 0.5, color=CLASS_COLORS[1], linewidth=0.8, linestyle=":")
        for seam in grid.seams(1):
            axes.axvline(seam - 0.5, color=CLASS_COLORS[1], linewidth=0.8, linestyle=":")
        axes.set(title=panel_title, xlabel="column (pixels)", ylabel="row (pixels)")
    figure.colorbar(picture, ax=axes_row[0].tolist(), label="|tiled - whole-image| probability", shrink=0.85)
    seams = Line2D([], [], color=CLASS_COLORS[1], linestyle=":", label="tile edges (seams)")
    figure.legend(handles=[seams], loc="outside lower center", frameon=False)
    figure.suptitle(title)
    plt.close(figure)
    return figure


def plot_region_errors(
    rates: Mapping[str, float], *, object_regions: Sequence[str], title: str = "Errors by region"
) -> Figure:
    """Horizontal bars: the share of each region's pixels that the prediction gets wrong.

    Args:
        rates: region name -> share of its pixels predicted wrong, in [0, 1], drawn top to bottom.
        object_regions: the names of the regions that are object in the truth: their errors are false
            negatives (blue), the other regions' false positives (orange), as in :func:`show_errors`.
        title: the figure's title.

    Raises:
        UnetTutorialError: no region, or a rate outside [0, 1].
    """
    values = np.asarray(list(rates.values()), np.float64)
    if not values.size or values.min() < 0 or values.max() > 1:
        raise UnetTutorialError(f"rates {dict(rates)}: pass one share in [0, 1] per region, at least one.")
    kinds = ["false_negative" if name in object_regions else "false_positive" for name in rates]
    figure, axes_grid = _new_figure(1, 1, panel_size=4.0, width=1.8)
    axes = axes_grid[0, 0]
    axes.barh(list(rates), 100 * values, color=[ERROR_COLORS[kind] for kind in kinds], edgecolor="black")
    axes.invert_yaxis()  # the first region on top
    axes.set(xlabel="pixels of the region predicted wrong (%)")
    axes.grid(axis="x", alpha=0.3)
    labels = {
        "false_negative": "object pixels missed (false negatives)",
        "false_positive": "background called object (false positives)",
    }
    handles = [Patch(facecolor=ERROR_COLORS[kind], edgecolor="black") for kind in labels]
    return _finish(figure, title=title, handles=handles, labels=list(labels.values()))


def plot_found_against_contrast(
    contrasts: Any,
    found: Any,
    *,
    title: str = "Faint objects are the ones missed",
    missed_below: float = 0.5,
) -> Figure:
    """One dot per true object: its contrast against its surroundings, and the share of its pixels found.

    Args:
        contrasts: (N,) each object's contrast, e.g. the absolute difference between its mean brightness
            and that of the background around it, in [0, 1].
        found: (N,) the share of each object's pixels that the prediction calls object, in [0, 1].
        title: the figure's title.
        missed_below: an object with a smaller share found counts as missed (coloured as false negatives).

    Raises:
        UnetTutorialError: arrays of different lengths, or shares found outside [0, 1].
    """
    contrasts, found = np.asarray(contrasts, np.float64), np.asarray(found, np.float64)
    if contrasts.shape != found.shape or contrasts.ndim != 1:
        raise UnetTutorialError(
            f"contrasts {contrasts.shape} and found {found.shape}: pass one number of each per object."
        )
    if found.size and (found.min() < 0 or found.max() > 1):
        raise UnetTutorialError("found holds values outside [0, 1]: pass the share of each object's pixels.")
    figure, axes_grid = _new_figure(1, 1, panel_size=4.2, width=1.5)
    axes = axes_grid[0, 0]
    missed = found < missed_below
    for chosen, kind, label in (
        (~missed, "true_positive", "found"),
        (missed, "false_negative", f"missed (less than {missed_below:.0%} found)"),
    ):
        axes.scatter(
            contrasts[chosen], 100 * found[chosen], s=8, alpha=0.6, color=ERROR_COLORS[kind], label=label
        )
    axes.set(
        xlabel="contrast: |object brightness - brightness of the background around it|",
        ylabel="object pixels found (%)",
        ylim=(-3, 103),
    )
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    return _finish(figure, title=title)


def plot_dice_by_group(
    scores: Any,
    groups: Sequence[str],
    *,
    pooled: Mapping[str, float] | None = None,
    order: Sequence[str] | None = None,
    title: str = "Dice of each image, by group",
    ylabel: str = "group (images)",
) -> Figure:
    """Each image's Dice as a dot, one row per group (a kind of image, say), each group's pooled Dice marked.

    Args:
        scores: (N,) each image's own Dice (``metrics.dice_score(..., per_image=True)``).
        groups: N group names, one per image.
        pooled: group name -> the Dice pooled over that group's pixels, drawn as a vertical bar; optional.
        order: the groups, top to bottom (default: in order of first appearance).
        title: the figure's title.
        ylabel: what the groups are; each row is labelled with its group and its number of images.

    Raises:
        UnetTutorialError: counts that differ, or an ``order`` that misses a group.
    """
    scores, groups = np.asarray(scores, np.float64), [str(group) for group in groups]
    if scores.ndim != 1 or len(groups) != len(scores) or not len(scores):
        raise UnetTutorialError(f"{scores.size} scores and {len(groups)} groups: pass one group per image.")
    order = list(dict.fromkeys(groups)) if order is None else list(order)
    if set(groups) - set(order):
        raise UnetTutorialError(f"order {order} misses the groups {sorted(set(groups) - set(order))}.")
    figure, axes_grid = _new_figure(1, 1, panel_size=0.6 * len(order) + 1.6, width=3.4)
    axes = axes_grid[0, 0]
    jitter = np.random.default_rng(0).uniform(-0.18, 0.18, len(scores))  # dots apart, the same every run
    rows = np.array([order.index(group) for group in groups])
    axes.scatter(scores, rows + jitter, s=14, alpha=0.7, color=CLASS_COLORS[1])
    handles, labels = [Line2D([], [], marker="o", linestyle="none", color=CLASS_COLORS[1])], ["one image"]
    if pooled:
        for row, group in enumerate(order):
            if group in pooled:
                axes.plot([pooled[group]] * 2, [row - 0.35, row + 0.35], color=CLASS_COLORS[5], linewidth=2.5)
        handles.append(Line2D([], [], color=CLASS_COLORS[5], linewidth=2.5))
        labels.append("the group's pooled Dice")
    counts = [groups.count(group) for group in order]
    axes.set_yticks(
        range(len(order)), [f"{group} ({count})" for group, count in zip(order, counts, strict=True)]
    )
    axes.set(xlabel="Dice", ylabel=ylabel, xlim=(min(0.0, scores.min()) - 0.02, 1.02))
    axes.set_ylim(len(order) - 0.5, -0.5)  # the first group on top
    axes.grid(axis="x", alpha=0.3)
    return _finish(figure, title=title, handles=handles, labels=labels)  # the legend below, off the dots


def gap_line(
    mask: Any, point: Sequence[int], *, reach: int = 12
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A short line through ``point`` across the gap it lies in: the pixels and their signed distances.

    Of the four directions (along rows, along columns, the two diagonals) the line takes the one in which
    object pixels lie nearest on both sides of ``point`` (the narrowest crossing of the gap, not along it);
    if no direction meets objects on both sides, the one with the nearest object on either side, then rows.

    Args:
        mask: (H, W) or (H, W, 1), object where > 0.
        point: (row, column) of a pixel in the gap.
        reach: steps either way from ``point``.

    Returns:
        ``(rows, columns, distances)``: int arrays of the line's pixels inside the image, and float
        distances in pixels from ``point`` (negative on one side).
    """
    objects = metrics.drop_channel(np.asarray(mask)) > 0
    height, width = objects.shape
    row, column = (int(value) for value in point)
    if not (0 <= row < height and 0 <= column < width):
        raise UnetTutorialError(f"point {tuple(point)} lies outside the {height}x{width} mask.")
    steps = np.arange(-reach, reach + 1)

    def crossing(direction: tuple[int, int]) -> tuple[float, float]:
        ys, xs = row + steps * direction[0], column + steps * direction[1]
        inside = (ys >= 0) & (ys < height) & (xs >= 0) & (xs < width)
        hits = np.zeros(steps.shape, bool)
        hits[inside] = objects[ys[inside], xs[inside]]
        sides = [np.abs(steps[hits & (steps < 0)]), steps[hits & (steps > 0)]]
        nearest = [side.min() * np.hypot(*direction) if side.size else np.inf for side in sides]
        return (sum(nearest), min(nearest))  # in pixels: both sides first, then the nearer one

    directions = ((0, 1), (1, 0), (1, 1), (1, -1))
    dy, dx = min(directions, key=crossing)  # min keeps the first of equals: rows before columns
    ys, xs = row + steps * dy, column + steps * dx
    inside = (ys >= 0) & (ys < height) & (xs >= 0) & (xs < width)
    return ys[inside], xs[inside], steps[inside] * float(np.hypot(dy, dx))


def show_weight_map(
    weights: Any, mask: Any, *, point: Sequence[int], title: str, reach: int = 12, panel_size: float = 4.6
) -> Figure:
    """A per-pixel loss weight map with its colour bar, and the weights along a line across one gap.

    Left: the map and the line (:func:`gap_line` through ``point``, which is marked). Right: the weight at
    each pixel of the line against its distance from ``point``, object pixels shaded. The map carries no
    outlines: a colour at the top of the colour bar would hide the ridge they sit next to.

    Args:
        weights: (H, W) or (H, W, 1) weights, e.g. ``instances.border_weights``.
        mask: the objects, (H, W) or (H, W, 1), object where > 0; the same height and width.
        point: (row, column) of a pixel in a gap between two objects.
        title: the figure's title.
        reach: pixels of the line either side of ``point``.
        panel_size: inches per panel.

    Raises:
        UnetTutorialError: weights and mask of different sizes, or a point outside them.
    """
    weights = metrics.drop_channel(np.asarray(weights, np.float32))
    objects = metrics.drop_channel(np.asarray(mask)) > 0
    if weights.ndim != 2 or weights.shape != objects.shape:
        raise UnetTutorialError(
            f"weights {np.shape(weights)} and mask {np.shape(mask)}: pass one map and one mask of one size."
        )
    rows, columns, distances = gap_line(objects, point, reach=reach)
    figure, axes_grid = _new_figure(1, 2, panel_size=panel_size)
    map_axes, line_axes = axes_grid[0]
    shown = map_axes.imshow(weights, cmap="viridis", interpolation="nearest")
    figure.colorbar(shown, ax=map_axes, fraction=0.046, pad=0.03, label="weight")
    (line,) = map_axes.plot(columns, rows, color=MARK_COLOR, linewidth=2)
    (marker,) = map_axes.plot([point[1]], [point[0]], "o", color="white", markeredgecolor="black")
    map_axes.set(title="the weight map", xlabel="column (pixels)", ylabel="row (pixels)")
    step = abs(distances[1] - distances[0]) if len(distances) > 1 else 1.0  # pixels between samples
    for distance in distances[objects[rows, columns]]:  # one band per object pixel on the line
        line_axes.axvspan(distance - step / 2, distance + step / 2, color=CLASS_COLORS[0], alpha=0.35, lw=0)
    line_axes.plot(distances, weights[rows, columns], marker="o", markersize=3, color=MARK_COLOR)
    line_axes.set(
        title="the weight along the line",
        xlabel="distance from the gap's pixel (pixels)",
        ylabel="weight",
        ylim=(0, weights.max() * 1.08),
    )
    line_axes.grid(alpha=0.3)
    handles = [line, marker, Patch(facecolor=CLASS_COLORS[0], alpha=0.35)]
    labels = ["the line across the gap", "the gap's pixel (distance 0)", "object pixels on the line"]
    return _finish(figure, title=title, handles=handles, labels=labels)


def plot_grouped_scores(
    scores: Mapping[str, Mapping[str, float]],
    *,
    title: str,
    ylabel: str = "score",
    ylim: tuple[float, float] = (0.0, 1.0),
) -> Figure:
    """Bars of several scores for several models (or settings), grouped by score, each bar's value on it.

    Args:
        scores: score name -> {model name -> value}, every score with the same models, e.g.
            ``{"Dice": {"plain": 0.81, "weighted": 0.80}, "F1": {...}}``. Scores left to right, models in
            the order of the first score's.
        title: the figure's title.
        ylabel: what the values are.
        ylim: the value axis's range.

    Raises:
        UnetTutorialError: no score, or scores that do not name the same models.
    """
    names = list(scores)
    models = list(scores[names[0]]) if names else []
    if not models or any(list(scores[name]) != models for name in names):
        raise UnetTutorialError(
            f"scores {dict(scores)}: pass at least one score, each with the same models in the same order."
        )
    figure, axes_grid = _new_figure(1, 1, panel_size=3.6, width=max(1.5, 0.3 * len(names) * len(models)))
    axes = axes_grid[0, 0]
    width = 0.8 / len(models)
    handles = []
    for index, model in enumerate(models):
        positions = np.arange(len(names)) + (index - (len(models) - 1) / 2) * width
        values = [scores[name][model] for name in names]
        bars = axes.bar(
            positions, values, width, color=GROUP_COLORS[index % len(GROUP_COLORS)], edgecolor="black"
        )
        axes.bar_label(bars, labels=[f"{value:.3f}" for value in values], fontsize=8, padding=2)
        handles.append(bars)
    axes.set_xticks(range(len(names)), names)
    axes.set(ylabel=ylabel, ylim=(ylim[0], ylim[1] + 0.08 * (ylim[1] - ylim[0])))  # room for the values
    axes.grid(axis="y", alpha=0.3)
    return _finish(figure, title=title, handles=handles, labels=models)


def _check_size(image: Any, other: Any, name: str) -> None:
    image_shape, other_shape = np.shape(image), np.shape(other)
    if len(image_shape) != 3 or image_shape[-1] not in (1, 3):
        raise UnetTutorialError(
            f"an image has shape {image_shape}: pass images (H, W, C) with C 1 or 3; for a single image "
            "where a batch is expected, image[np.newaxis]."
        )
    if other_shape[:2] != image_shape[:2]:
        raise UnetTutorialError(
            f"{name} has shape {other_shape}, its image {image_shape}: pass the image's height and width."
        )


def _check_probabilities(probabilities: Any) -> np.ndarray:
    probabilities = np.asarray(probabilities, np.float32)
    low, high = probabilities.min(initial=0), probabilities.max(initial=0)
    if low < 0 or high > 1 + 1e-6:
        raise UnetTutorialError(
            f"probabilities range from {low:.3g} to {high:.3g}: pass the model's output after its sigmoid or "
            "softmax (values in [0, 1]), not logits."
        )
    return probabilities


def _rank_batch(
    images: ImageBatch, masks: ImageBatch, predictions: ImageBatch, num_classes: int
) -> DiceRanking:
    """Checks that images, masks and predictions pair up, then ranks them (see :func:`rank_by_dice`)."""
    counts = (len(images), len(masks), len(predictions))
    if len(set(counts)) > 1 or not counts[0]:
        raise UnetTutorialError(
            f"{counts[0]} images, {counts[1]} masks, {counts[2]} predictions: pass one mask and one "
            "prediction per image, at least one."
        )
    for image, mask in zip(images, masks, strict=True):
        _check_size(image, mask, "a mask")
    return rank_by_dice(masks, predictions, num_classes=num_classes)


def _new_figure(
    rows: int, columns: int, *, panel_size: float, width: float = 1.0
) -> tuple[Figure, np.ndarray]:
    """A figure with a (rows, columns) grid of axes, room for a legend below, white behind everything."""
    figure, axes_grid = plt.subplots(
        rows, columns, figsize=(panel_size * columns * width, panel_size * rows + 0.6), squeeze=False
    )
    figure.patch.set_facecolor("white")  # readable in dark themes too
    return figure, axes_grid


def _show_image(axes: Axes, image: np.ndarray, *, title: str | None = None) -> None:
    image = np.asarray(image)
    axes.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=1)
    axes.axis("off")
    if title is not None:
        axes.set_title(title, fontsize=9)


def _draw_overlay(
    axes: Axes, image: np.ndarray, mask: Any, prediction: Any, *, class_names: Sequence[str]
) -> tuple[list[Line2D], list[str]]:
    """The image with the truth's outline (solid, filled) and the prediction's (dashed); legend entries."""
    num_classes = len(class_names)
    _show_image(axes, image)
    handles, labels = [], []
    if mask is not None:
        _check_size(image, mask, "mask")
        handles += draw_mask_outline(axes, mask, num_classes=num_classes)
        labels += [f"{name}: truth" for name in class_names[1:]]
    if prediction is not None:
        _check_size(image, prediction, "prediction")
        _, predicted = class_maps(np.zeros(np.shape(image)[:2]), prediction, num_classes=num_classes)
        handles += draw_mask_outline(
            axes, predicted, num_classes=num_classes, fill_alpha=0, linestyle="dashed"
        )
        labels += [f"{name}: prediction" for name in class_names[1:]]
    return handles, labels


def _finish(
    figure: Figure,
    *,
    title: str,
    handles: Sequence[Any] = (),
    labels: Sequence[str] = (),
    hspace: float | None = None,
) -> Figure:
    """Title, a legend below the panels (if any handles), layout; closed so that Jupyter shows it once."""
    if handles:
        figure.legend(handles, labels, loc="lower center", ncol=min(4, len(handles)), frameon=False)
    figure.suptitle(title)
    figure.tight_layout(rect=(0, 0.06 if handles else 0, 1, 1))
    if hspace is not None:
        figure.subplots_adjust(hspace=hspace)
    plt.close(figure)  # Jupyter shows the returned figure once, not twice
    return figure
