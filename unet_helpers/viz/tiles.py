"""Figures of overlap-tile prediction (:mod:`unet_helpers.inference`): the tile grid and its seams."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from unet_helpers.errors import UnetTutorialError
from unet_helpers.viz.common import (
    CLASS_COLORS,
    _check_size,
)


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
