"""Figures of the network itself: the U of a UNet built by ``model.build_unet``, and receptive fields."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyBboxPatch, Patch, Rectangle

from unet_helpers.errors import UnetTutorialError
from unet_helpers.viz.common import (
    CLASS_COLORS,
    MARK_COLOR,
    _finish,
    _new_figure,
)

UNET_COLORS = {"pool": "#D55E00", "up": "#009E73", "skip": "#0072B2", "conv": "#555555", "head": "#CC79A7"}
STAGE_FACE, STAGE_EDGE = "#dbe8f6", "#1f3b5c"


def _unet_stages(model: Any) -> tuple[int, dict[str, tuple[int, int]], dict[str, tuple[int, ...]]]:
    """The depth of a UNet, each stage's (column, row) on the U, and its output shape (H, W, C)."""
    depth = sum(layer.name.endswith("_pool") for layer in model.layers)
    if not depth:
        raise UnetTutorialError(
            f"{model.name} has no layer named '*_pool': pass a UNet built from the series' blocks "
            "(model.build_unet, or notebook 03's encoder and decoder levels)."
        )
    # Down the left side, across the bottom, up the right side.
    places = {"input": (0, 0), "bottleneck": (depth + 1, -depth), "output": (2 * depth + 2, 0)}
    for level in range(1, depth + 1):
        places[f"enc{level}"] = (level, 1 - level)
        places[f"dec{level}"] = (2 * depth + 2 - level, 1 - level)
    shapes = {"input": tuple(model.input.shape[1:]), "output": tuple(model.output.shape[1:])}
    for stage in places:
        if stage not in shapes:
            shapes[stage] = tuple(model.get_layer(f"{stage}_conv2").output.shape[1:])
    return depth, places, shapes


def draw_unet(model: Any, *, title: str, box: tuple[float, float] = (0.8, 0.6)) -> Figure:
    """A UNet as the U of the paper's figure: one box per stage (filters, size), arrows between stages.

    Every number is read from the model: the number of poolings (layers named ``*_pool``), and each
    stage's filters and size from its last convolution (``enc1_conv2``, ..., ``bottleneck_conv2``,
    ``dec1_conv2``, ...).

    Args:
        model: a UNet built by ``model.build_unet`` or from notebook 03's blocks.
        title: the figure's title.
        box: width and height of a stage's box, in stages.

    Raises:
        UnetTutorialError: a model without the series' layer names.
    """
    depth, places, shapes = _unet_stages(model)
    width, height = box
    figure, axes = plt.subplots(figsize=(12, 5.5), facecolor="white")
    for stage, (column, row) in places.items():
        rows, columns, channels = shapes[stage]
        kind = "filters" if stage not in ("input", "output") else "channel" if channels == 1 else "channels"
        corner = (column - width / 2, row - height / 2)
        axes.add_patch(
            FancyBboxPatch(
                corner, width, height, boxstyle="round,pad=0.02", facecolor=STAGE_FACE, edgecolor=STAGE_EDGE
            )
        )
        text = f"{stage}\n{channels} {kind}\n{rows}x{columns}"
        axes.text(column, row, text, ha="center", va="center", fontsize=9, color="black")

    def arrow(start: tuple[float, float], end: tuple[float, float], kind: str, style: str = "-") -> None:
        properties = {"arrowstyle": "->", "color": UNET_COLORS[kind], "lw": 2, "linestyle": style}
        axes.annotate("", xy=end, xytext=start, arrowprops=properties)

    right = 2 * depth + 2  # the output's column: the U is symmetric about its middle
    arrow((width / 2, 0), (1 - width / 2, 0), "conv")
    for level in range(1, depth + 1):
        (column, row), (below_column, below_row) = places[f"enc{level}"], (level + 1, -level)
        arrow((column, row - height / 2), (below_column, below_row + height / 2), "pool")
        arrow((right - below_column, below_row + height / 2), (right - column, row - height / 2), "up")
        arrow((column + width / 2, row), (right - column - width / 2, row), "skip", "--")
    arrow((right - 1 + width / 2, 0), (right - width / 2, 0), "head")
    activation = "sigmoid" if shapes["output"][-1] == 1 else "softmax"
    legend = [
        Patch(facecolor=STAGE_FACE, edgecolor=STAGE_EDGE, label="stage: two 3x3 convolutions + ReLU"),
        Line2D([], [], color=UNET_COLORS["conv"], lw=2, label="the image goes in"),
        Line2D([], [], color=UNET_COLORS["pool"], lw=2, label="2x2 max-pooling (halves the size)"),
        Line2D([], [], color=UNET_COLORS["up"], lw=2, label="2x2 transposed convolution (doubles the size)"),
        Line2D([], [], color=UNET_COLORS["skip"], lw=2, ls="--", label="skip connection: concatenate"),
        Line2D([], [], color=UNET_COLORS["head"], lw=2, label=f"1x1 convolution + {activation}"),
    ]
    axes.legend(handles=legend, loc="lower center", bbox_to_anchor=(0.5, -0.12), ncol=3, frameon=False)
    axes.set(xlim=(-0.6, right + 0.6), ylim=(-depth - 0.6, 0.6), aspect="equal")
    axes.axis("off")
    return _finish(figure, title=title)


def show_receptive_fields(
    seen: Mapping[tuple[int, int], Any], *, title: str, panel_size: float = 5.0
) -> Figure:
    """For each output pixel, the input pixels that can change it (its receptive field), one panel each.

    Args:
        seen: (row, column) of an output pixel -> a boolean (H, W) map of the input pixels that can change
            it (e.g. where the gradient of that pixel with respect to the input is not zero).
        title: the figure's title.
        panel_size: inches per panel.

    Returns:
        The figure; each panel's title gives the field's height and width in input pixels.

    Raises:
        UnetTutorialError: no pixel, or a map that is not 2-D or marks no pixel.
    """
    if not seen:
        raise UnetTutorialError(
            "seen is empty: pass {(row, column): boolean (H, W) map} for one pixel or more."
        )
    figure, axes_grid = _new_figure(1, len(seen), panel_size=panel_size)
    field_color = CLASS_COLORS[1]  # sky blue: the output pixel (vermillion) stands out on it
    for axes, ((row, column), pixels) in zip(axes_grid[0], seen.items(), strict=True):
        pixels = np.asarray(pixels, bool)
        if pixels.ndim != 2 or not pixels.any():
            raise UnetTutorialError(
                f"the map of pixel ({row}, {column}) has shape {pixels.shape} and {pixels.sum()} pixels set: "
                "pass a 2-D boolean map with the pixels that change the output pixel."
            )
        rows, columns = np.nonzero(pixels)
        size = f"{rows.max() - rows.min() + 1}x{columns.max() - columns.min() + 1}"
        axes.imshow(pixels, cmap=ListedColormap(["white", field_color]), vmin=0, vmax=1)
        axes.add_patch(
            Rectangle((-0.5, -0.5), pixels.shape[1], pixels.shape[0], fill=False, edgecolor="black")
        )
        axes.plot(column, row, "s", color=MARK_COLOR, markersize=5)
        axes.set(
            title=f"Output pixel ({row}, {column}): {size} input pixels",
            xlabel="input column (pixels)",
            ylabel="input row (pixels)",
        )
    handles = [Patch(facecolor=field_color), Line2D([], [], marker="s", color=MARK_COLOR, linestyle="")]
    labels = ["input pixels that can change the output pixel", "the output pixel"]
    return _finish(figure, title=title, handles=handles, labels=labels)
