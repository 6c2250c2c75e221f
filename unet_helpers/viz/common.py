"""What every viz figure shares: the colours, mask outlines and colourized masks, and the figure plumbing.

Colours are Okabe-Ito's, distinct for colour-blind readers. Pixels to ignore (``mask_classes.IGNORE_CLASS``
in a mask: a void class, an uncertain border) are drawn in one neutral mid gray, IGNORED_COLOR, named
"ignored" in the legend (:func:`ignored_legend`), never as a class or an error.

The private helpers (``_new_figure``, ``_show_image``, ``_finish``, ``_check_size``) give every figure of
the package the same look: a white background, panels without axes for images, a title and a legend below
the panels, and the figure closed (``plt.close``) so that Jupyter shows it once, as the cell's value.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from unet_helpers import metrics
from unet_helpers.errors import UnetTutorialError
from unet_helpers.mask_classes import IGNORE_CLASS

# One outline colour per foreground class (class 0, the background, gets none); bright enough on dark
# microscopy, distinct for colour-blind readers (Okabe-Ito), and drawn with a dark edge for light images.
CLASS_COLORS = ("#F0E442", "#56B4E9", "#E69F00", "#CC79A7", "#009E73", "#D55E00", "#0072B2")
BACKGROUND_COLOR = "#000000"  # the background in colorized masks
# Pixels to ignore: a mid gray, no class colour and no error colour, so that they read as "no label here".
IGNORED_COLOR = "#808080"
IGNORED_LABEL = "ignored"
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


def ignored_map(mask: Any) -> np.ndarray:
    """Where ``mask`` (class indices, any shape, e.g. (H, W) or (H, W, 1)) holds IGNORE_CLASS: a boolean
    array of its shape without a last axis of 1."""
    return metrics.drop_channel(np.asarray(mask)) == IGNORE_CLASS


def ignored_legend(masks: Iterable[Any]) -> tuple[list[Patch], list[str]]:
    """The legend entry for ignored pixels, ``([patch], ["ignored"])``, if any of ``masks`` holds one; else
    ``([], [])``. ``masks``: class-index masks of any shapes (a batch, or a list of masks)."""
    if not any(ignored_map(mask).any() for mask in masks):
        return [], []
    return [_ignored_patch()], [IGNORED_LABEL]


def _ignored_patch() -> Patch:
    return Patch(facecolor=IGNORED_COLOR, edgecolor="0.5", label=IGNORED_LABEL)


def _tint(region: np.ndarray, color: str, alpha: float) -> np.ndarray:
    """An RGBA overlay (H, W, 4): ``color`` at ``alpha`` where ``region`` (H, W) is true, clear elsewhere."""
    overlay = np.zeros((*region.shape, 4), np.float32)
    overlay[..., :3] = to_rgb(color)
    overlay[..., 3] = region.astype(np.float32) * alpha
    return overlay


def draw_mask_outline(
    axes: Axes,
    mask: np.ndarray,
    *,
    num_classes: int = 2,
    fill_alpha: float = 0.25,
    linestyle: str = "solid",
) -> list[Line2D]:
    """Draw each foreground class of ``mask`` on ``axes`` as an outline over a light fill.

    Pixels to ignore (IGNORE_CLASS) are painted IGNORED_COLOR, opaque; with ``fill_alpha=0`` (outlines
    only, e.g. over a probability map) they are outlined in it instead. Their legend entry comes from
    :func:`ignored_legend`.

    Args:
        axes: axes that already show the image.
        mask: (H, W) or (H, W, 1) class indices (binary: 0 or 1), IGNORE_CLASS at pixels to ignore.
        num_classes: classes including the background (2 for binary masks).
        fill_alpha: opacity of the fill inside each outline (0 for outlines only).
        linestyle: the outline's matplotlib line style ("solid", "dashed", ...).

    Returns:
        Legend handles, one per foreground class.
    """
    mask = np.asarray(mask).reshape(np.shape(mask)[:2])
    ignored = mask == IGNORE_CLASS
    if ignored.any() and fill_alpha > 0:
        axes.imshow(_tint(ignored, IGNORED_COLOR, 1.0), interpolation="nearest")
    elif ignored.any():  # outlines only: the image (or probability map) below stays visible
        _outline(axes, ignored, IGNORED_COLOR, linestyle)
    handles = []
    for class_index in range(1, num_classes):
        color = class_color(class_index)
        region = mask == class_index
        if fill_alpha > 0:
            axes.imshow(_tint(region, color, fill_alpha), interpolation="nearest")
        _outline(axes, region, color, linestyle)
        handles.append(Line2D([], [], color=color, linewidth=2, linestyle=linestyle))
    return handles


def _outline(axes: Axes, region: np.ndarray, color: str, linestyle: str) -> None:
    """The outline of ``region`` (H, W, boolean), if it is neither empty nor everything."""
    if region.any() and not region.all():
        axes.contour(
            region.astype(np.float32), levels=[0.5], colors=[color], linewidths=1.2, linestyles=linestyle
        )


def class_legend_handles(class_names: Sequence[str], *, ignored: bool = False) -> list[Patch]:
    """Legend handles for :func:`colorize_mask` images: one coloured patch per class, background first,
    then, with ``ignored``, one for the ignored pixels (IGNORED_COLOR).

    Use as ``figure.legend(handles=viz.class_legend_handles(class_names))``.
    """
    handles = [
        Patch(facecolor=class_color(index), edgecolor="0.5", label=name)
        for index, name in enumerate(class_names)
    ]
    return handles + ([_ignored_patch()] if ignored else [])


def colorize_mask(mask: Any, *, num_classes: int = 2) -> np.ndarray:
    """A mask as an RGB image: the background BACKGROUND_COLOR, class i its :func:`class_color`, pixels to
    ignore (IGNORE_CLASS) IGNORED_COLOR.

    Args:
        mask: class indices 0..num_classes-1 or IGNORE_CLASS, (H, W) or (H, W, 1); a batch (B, H, W[, 1])
            works too.
        num_classes: classes including the background.

    Returns:
        float32 RGB in [0, 1], shape (H, W, 3) (or (B, H, W, 3)).

    Raises:
        UnetTutorialError: values that are neither class indices 0..num_classes-1 nor IGNORE_CLASS.
    """
    mask = metrics.drop_channel(np.asarray(mask))
    ignored = mask == IGNORE_CLASS
    classes = np.where(ignored, 0, mask)
    if (
        not np.array_equal(classes, np.round(classes))
        or classes.min(initial=0) < 0
        or classes.max(initial=0) >= num_classes
    ):
        raise UnetTutorialError(
            f"mask holds values {np.unique(mask)[:8]}: pass class indices 0..{num_classes - 1} "
            f"(or {IGNORE_CLASS} for pixels to ignore; data.load_dataset maps stored values to classes), "
            "or set num_classes."
        )
    palette = np.array([to_rgb(class_color(index)) for index in range(num_classes)], np.float32)
    rgb = palette[classes.astype(np.int64)]
    rgb[ignored] = to_rgb(IGNORED_COLOR)
    return rgb


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
