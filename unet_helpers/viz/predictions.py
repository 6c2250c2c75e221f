"""Figures of a model's predictions against the truth: outlines, error maps, best and worst, probabilities.

Predictions may be class indices, a binary model's sigmoid probabilities ((H, W) or (H, W, 1)) or a
multi-class model's softmax output ((H, W, K)): they become classes by the metrics' rule (class 1 where
``p > 0.5``, else the argmax), through :func:`unet_helpers.metrics.class_maps`. Every number drawn comes from
:mod:`unet_helpers.metrics`: each image's Dice from :func:`unet_helpers.metrics.rank_by_dice`, the error
colours from :func:`unet_helpers.metrics.error_maps`. Pixels to ignore (``mask_classes.IGNORE_CLASS`` in
a mask) are no error and count in no Dice; they are drawn in IGNORED_COLOR, named "ignored" in the legend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from unet_helpers import metrics
from unet_helpers.errors import UnetTutorialError
from unet_helpers.viz.common import (
    ERROR_COLORS,
    ERROR_LABELS,
    IGNORED_COLOR,
    ImageBatch,
    _check_size,
    _finish,
    _new_figure,
    _show_image,
    draw_mask_outline,
    ignored_legend,
    ignored_map,
)


def error_image(
    mask: Any, prediction: Any, *, num_classes: int = 2, true_positive_alpha: float = 0.35
) -> np.ndarray:
    """The errors as an RGBA overlay in ERROR_COLORS, transparent where background is predicted right.

    Pixels to ignore (IGNORE_CLASS in ``mask``) are no error, whatever is predicted there: they are
    IGNORED_COLOR, opaque.

    Args:
        mask, prediction, num_classes: as for :func:`unet_helpers.metrics.error_maps`.
        true_positive_alpha: opacity of the true positives, in [0, 1] (0 hides them); errors are opaque.

    Returns:
        float32 RGBA in [0, 1], shape (H, W, 4), for ``axes.imshow`` over the image.
    """
    maps = metrics.error_maps(mask, prediction, num_classes=num_classes)
    rgba = np.zeros((*maps.true_positive.shape, 4), np.float32)
    for name, region in maps._asdict().items():
        rgba[region] = (*to_rgb(ERROR_COLORS[name]), true_positive_alpha if name == "true_positive" else 1.0)
    rgba[ignored_map(mask)] = (*to_rgb(IGNORED_COLOR), 1.0)
    return rgba


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
        masks: N masks of class indices, (H, W) or (H, W, 1); IGNORE_CLASS at pixels to ignore (gray).
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
        true, predicted = metrics.class_maps(masks[index], predictions[index], num_classes=num_classes)
        _show_image(row[0], images[index], title=titles[index] if titles is not None else f"image {index}")
        for axes, classes, panel_title in (
            (row[1], true, "ground truth"),
            (row[2], predicted, f"prediction: Dice {ranking.scores[index]:.3f}"),
        ):
            _show_image(axes, images[index], title=panel_title)
            handles = draw_mask_outline(axes, classes, num_classes=num_classes)
    ignored_handles, ignored_labels = ignored_legend(masks)
    return _finish(
        figure, title=title, handles=handles + ignored_handles, labels=[*class_names[1:], *ignored_labels]
    )


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
        mask: class indices, (H, W) or (H, W, 1), IGNORE_CLASS at pixels to ignore (gray); optional.
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
    ignored_handles, ignored_labels = ignored_legend([] if mask is None else [mask])
    handles, labels = handles + ignored_handles, labels + ignored_labels
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
        The figure; each panel's title gives the image's Dice, the legend the colours (ERROR_COLORS, and
        IGNORED_COLOR if a mask holds pixels to ignore: no error there).
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
    ignored_handles, ignored_labels = ignored_legend(masks)
    # hspace: room for each panel's title between rows (tight_layout leaves them touching the row above).
    labels = [ERROR_LABELS[name] for name in shown] + ignored_labels
    return _finish(figure, title=title, handles=handles + ignored_handles, labels=labels, hspace=0.3)


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
    index and Dice (see :func:`unet_helpers.metrics.rank_by_dice`). ``count`` is capped at half the
    images, so no image is shown twice (a single image appears in both rows).

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
    shown = np.unique(np.concatenate([ranking.order[:count], ranking.order[::-1][:count]]))
    ignored_handles, ignored_labels = ignored_legend(masks[index] for index in shown)
    handles, labels = handles + ignored_handles, labels + ignored_labels
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
        mask: class indices (H, W[, 1]); optional, its outline is drawn on every panel, and the outline of
            its pixels to ignore (IGNORE_CLASS) in IGNORED_COLOR.
        title: the figure's title.
        class_names: one name per class, background first.
        colormap: a perceptually uniform matplotlib colormap ("viridis", "magma", ...).
        panel_size: inches per panel.

    Raises:
        UnetTutorialError: shapes that do not fit, or values outside [0, 1] (logits).
    """
    probabilities = metrics.check_probabilities(probabilities)
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
    labels = []
    if mask is not None:
        _check_size(image, mask, "mask")
        for axes in axes_grid.flat:
            handles = draw_mask_outline(axes, mask, num_classes=len(class_names), fill_alpha=0)
        ignored_handles, ignored_labels = ignored_legend([mask])
        handles += ignored_handles
        labels = [f"{name} (truth)" for name in class_names[1:]] + ignored_labels
    return _finish(figure, title=title, handles=handles, labels=labels)


def _rank_batch(
    images: ImageBatch, masks: ImageBatch, predictions: ImageBatch, num_classes: int
) -> metrics.DiceRanking:
    """Checks that the images drawn, masks and predictions pair up, then ranks them by their Dice.

    The ranking is :func:`unet_helpers.metrics.rank_by_dice`'s; the check of the images is the figure's.
    """
    counts = (len(images), len(masks), len(predictions))
    if len(set(counts)) > 1 or not counts[0]:
        raise UnetTutorialError(
            f"{counts[0]} images, {counts[1]} masks, {counts[2]} predictions: pass one mask and one "
            "prediction per image, at least one."
        )
    for image, mask in zip(images, masks, strict=True):
        _check_size(image, mask, "a mask")
    return metrics.rank_by_dice(masks, predictions, num_classes=num_classes)


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
        _, predicted = metrics.class_maps(np.zeros(np.shape(image)[:2]), prediction, num_classes=num_classes)
        handles += draw_mask_outline(
            axes, predicted, num_classes=num_classes, fill_alpha=0, linestyle="dashed"
        )
        labels += [f"{name}: prediction" for name in class_names[1:]]
    return handles, labels
