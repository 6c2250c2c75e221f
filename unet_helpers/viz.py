"""Figures of images and masks that read well in light and dark notebook themes."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

# One outline colour per foreground class (class 0, the background, gets none); bright enough on dark
# microscopy, distinct for colour-blind readers (Okabe-Ito), and drawn with a dark edge for light images.
CLASS_COLORS = ("#F0E442", "#56B4E9", "#E69F00", "#CC79A7", "#009E73", "#D55E00", "#0072B2")


def draw_mask_outline(
    axes: plt.Axes, mask: np.ndarray, *, num_classes: int = 2, fill_alpha: float = 0.25
) -> list[Line2D]:
    """Draw each foreground class of ``mask`` on ``axes`` as an outline over a light fill.

    Args:
        axes: axes that already show the image.
        mask: (H, W) or (H, W, 1) class indices (binary: 0 or 1).
        num_classes: classes including the background (2 for binary masks).
        fill_alpha: opacity of the fill inside each outline (0 for outlines only).

    Returns:
        Legend handles, one per foreground class.
    """
    mask = np.asarray(mask).reshape(np.shape(mask)[:2])
    handles = []
    for class_index in range(1, num_classes):
        color = CLASS_COLORS[(class_index - 1) % len(CLASS_COLORS)]
        region = (mask == class_index).astype(np.float32)
        if fill_alpha > 0:
            overlay = np.zeros((*region.shape, 4), np.float32)
            overlay[..., :3] = np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)]) / 255.0
            overlay[..., 3] = region * fill_alpha
            axes.imshow(overlay, interpolation="nearest")
        if region.any() and not region.all():
            axes.contour(region, levels=[0.5], colors=[color], linewidths=1.2)
        handles.append(Line2D([], [], color=color, linewidth=2))
    return handles


def show_pairs(
    images: Sequence[np.ndarray] | np.ndarray,
    masks: Sequence[np.ndarray] | np.ndarray,
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
    rows = -(-count // columns)
    columns = min(columns, count)
    figure, axes_grid = plt.subplots(
        rows, columns, figsize=(panel_size * columns, panel_size * rows + 0.6), squeeze=False
    )
    figure.patch.set_facecolor("white")  # readable in dark themes too
    handles = []
    for index, axes in enumerate(axes_grid.flat):
        axes.axis("off")
        if index >= count:
            continue
        image = np.asarray(images[index])
        axes.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=1)
        handles = draw_mask_outline(axes, masks[index], num_classes=len(class_names))
        if titles is not None:
            axes.set_title(titles[index], fontsize=9)
    figure.legend(
        handles,
        [f"{name} (mask outline)" for name in class_names[1:]],
        loc="lower center",
        ncol=4,
        frameon=False,
    )
    figure.suptitle(title)
    figure.tight_layout(rect=(0, 0.06, 1, 1))
    figure.subplots_adjust(hspace=0.25 if titles is not None else 0.08)  # rows apart, titles readable
    plt.close(figure)  # Jupyter shows the returned figure once, not twice
    return figure
