"""Charts of scores already computed: per threshold, per class, per group, per region, per epoch.

Each function takes the numbers as they come from :mod:`unet_helpers.metrics` (or a training history) and
only draws them: the Dice against the threshold, a confusion matrix, IoU and Dice per class, the Dice of
each image by group, errors by region, objects found against their contrast, scores of several models,
and learning curves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from unet_helpers.errors import UnetTutorialError
from unet_helpers.viz.common import (
    CLASS_COLORS,
    ERROR_COLORS,
    GROUP_COLORS,
    _finish,
    _new_figure,
)


def plot_dice_against_threshold(
    thresholds: Any, scores: Any, *, title: str = "Pooled Dice against the threshold"
) -> Figure:
    """The curve of :func:`unet_helpers.metrics.dice_against_threshold`, 0.5 and the best marked.

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
        matrix: (K, K) counts from :func:`unet_helpers.metrics.confusion_matrix`; rows true class, columns
            predicted class.
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


def plot_scores_per_class(
    per_class: Mapping[str, Sequence[float]],
    *,
    class_names: Sequence[str],
    foreground: Mapping[str, float] | None = None,
    title: str = "Scores per class",
    ylabel: str = "score",
) -> Figure:
    """Bars of one or more scores for every class, each bar's value on it, the foreground means dashed.

    Args:
        per_class: score name -> one value per class in [0, 1], background first, e.g.
            ``{"IoU": [0.97, 0.8, 0.6], "Dice": [...]}`` from ``metrics.iou_score(..., class_ids=[k])``.
        class_names: one name per class, background first.
        foreground: optional score name -> its mean over the foreground classes (the series' ``iou``,
            ``dice``): a dashed line in the score's colour.
        title: the figure's title.
        ylabel: what the values are.

    Raises:
        UnetTutorialError: no score, or a score without exactly one value per class.
    """
    if not per_class or any(len(values) != len(class_names) for values in per_class.values()):
        raise UnetTutorialError(
            f"per_class {dict(per_class)}: pass at least one score, each with one value per class of "
            f"{list(class_names)}."
        )
    figure, axes_grid = _new_figure(1, 1, panel_size=3.8, width=1.85)
    axes = axes_grid[0, 0]
    positions, width = np.arange(len(class_names)), 0.8 / len(per_class)
    handles, labels = [], []
    for index, (name, values) in enumerate(per_class.items()):
        color = GROUP_COLORS[index % len(GROUP_COLORS)]
        offset = (index - (len(per_class) - 1) / 2) * width
        bars = axes.bar(positions + offset, values, width=width, color=color, edgecolor="black")
        axes.bar_label(bars, fmt="%.2f", fontsize=8)
        handles.append(bars)
        labels.append(name)
        if foreground is not None and name in foreground:
            handles.append(axes.axhline(foreground[name], color=color, linestyle="--"))
            labels.append(f"foreground mean {name} {foreground[name]:.2f}")
    axes.set_xticks(positions, class_names)
    axes.set(xlabel="class", ylabel=ylabel, ylim=(0, 1.1))
    return _finish(figure, title=title, handles=handles, labels=labels)


def plot_learning_curves(history: Mapping[str, Sequence[float]], *, title: str = "Learning curves") -> Figure:
    """Loss and Dice per epoch, training and validation, the best validation Dice marked.

    Args:
        history: columns as :func:`unet_helpers.train.read_history` returns them (``epoch``, ``loss``,
            ``val_loss``, ``dice``, ``val_dice``); ``result.history`` of
            :func:`unet_helpers.train.train_unet`.
        title: the figure's title.

    Returns:
        A matplotlib Figure of two panels (it shows in a notebook; save it with ``savefig``).
    """
    epochs = [epoch + 1 for epoch in history.get("epoch", [])]
    # Made with pyplot, then closed: Jupyter renders it as a cell's value (a bare Figure shows as text).
    figure, panels = plt.subplots(1, 2, figsize=(10, 4), facecolor="white", layout="constrained")
    plt.close(figure)
    figure.suptitle(title)
    for axes, metric, label in ((panels[0], "loss", "Loss"), (panels[1], "dice", "Dice")):
        axes.set_facecolor("white")
        for name, style in ((metric, "-"), (f"val_{metric}", "--")):
            if name in history:
                who = "validation" if name.startswith("val_") else "training"
                axes.plot(epochs, history[name], style, marker="o", markersize=3, label=f"{label}, {who}")
        axes.set_xlabel("epoch")
        axes.set_ylabel(label)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_title(f"{label} per epoch")
        axes.grid(alpha=0.3)
    val_dice = history.get("val_dice", [])  # the score the training keeps the best model by
    if val_dice:
        best = max(range(len(val_dice)), key=lambda index: val_dice[index])
        panels[1].plot(
            [epochs[best]], [val_dice[best]], "*", markersize=14, color="black",
            label=f"best: {val_dice[best]:.3f} (epoch {epochs[best]})",
        )  # fmt: skip
        panels[1].set_ylim(0, 1)
    for axes in panels:
        if axes.get_legend_handles_labels()[0]:
            axes.legend()
    return figure
