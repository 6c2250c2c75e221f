"""Figures of the data before any model: images with their masks, instance labels, statistics, augmentation.

Image and mask pairs (:func:`show_pairs`), images with pixels marked (:func:`show_images`), instance label
maps in colour (:func:`colorize_instances`), histograms of groups of values (:func:`plot_histograms`), an
intensity normalisation (:func:`show_normalization`) and an elastic deformation (:func:`show_deformation`).
Pixels to ignore (``mask_classes.IGNORE_CLASS`` in a mask) are drawn in IGNORED_COLOR and named "ignored"
in the legend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from unet_helpers import metrics
from unet_helpers.errors import UnetTutorialError
from unet_helpers.mask_classes import IGNORE_CLASS
from unet_helpers.viz.common import (
    BACKGROUND_COLOR,
    GROUP_COLORS,
    INSTANCE_COLORS,
    MARK_COLOR,
    ImageBatch,
    _check_size,
    _finish,
    _new_figure,
    _show_image,
    draw_mask_outline,
    ignored_legend,
)


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
        masks: N masks of class indices, (H, W) or (H, W, 1); IGNORE_CLASS at pixels to ignore (gray).
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
    ignored_handles, ignored_labels = ignored_legend(masks)
    return _finish(
        figure,
        title=title,
        handles=handles + ignored_handles,
        labels=[f"{name} (mask outline)" for name in class_names[1:]] + ignored_labels,
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
        masks: N binary masks (H, W) or (H, W, 1): 1 marks the object; pixels to ignore (IGNORE_CLASS)
            are in neither histogram.
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
        classes = metrics.drop_channel(np.asarray(mask))
        inside, outside = (classes > 0) & (classes != IGNORE_CLASS), classes == 0
        _show_image(axes_grid[row, 0], image, title=f"{titles[row]}: as stored")
        shown = np.clip((after - low) / (high - low), 0.0, 1.0)
        _show_image(axes_grid[row, 2], shown, title=f"{titles[row]}: normalized")
        for axes, values, (start, stop), name in (
            (axes_grid[row, 1], image.mean(axis=-1), (0.0, 1.0), "gray value as stored"),
            (axes_grid[row, 3], after.mean(axis=-1), (low, high), "gray value, normalized"),
        ):
            for region, color in ((outside, GROUP_COLORS[0]), (inside, GROUP_COLORS[1])):
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
        warped_mask: its (H, W) or (H, W, 1) class indices, deformed with it; drawn as outlines, pixels to
            ignore (e.g. ``AugmentOptions(outside_label=IGNORE_CLASS)``) in IGNORED_COLOR.
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
    ignored_handles, ignored_labels = ignored_legend([warped_mask])
    axes[2].legend(
        handles + ignored_handles,
        [*class_names[1:], *ignored_labels],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.12),
        fontsize=8,
        frameon=False,
    )
    names = ("Displacement field", "A regular grid, deformed", "The image and its mask, deformed")
    for panel, name in zip(axes, names, strict=True):
        panel.axis("on")
        panel.set(title=name, xlabel="x (pixels)", ylabel="y (pixels)")
    return _finish(figure, title=title)
