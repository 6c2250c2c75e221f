"""Figures of per-pixel loss weights (``instances.border_weights``): the map, and its profile across a gap.

:func:`gap_line` finds the pixels of a short line across the gap between two objects, for the profile.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from unet_helpers import metrics
from unet_helpers.errors import UnetTutorialError
from unet_helpers.viz.common import (
    CLASS_COLORS,
    MARK_COLOR,
    _finish,
    _new_figure,
)


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
