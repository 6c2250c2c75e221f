"""Figures of images, masks, predictions and scores that read well in light and dark notebook themes.

viz only draws: every number it shows comes from :mod:`unet_helpers.metrics` (Dice, error maps, rankings,
confusion matrices) or is passed in. Every ``show_*``, ``plot_*`` and ``draw_*`` function returns a
matplotlib Figure on a white background, already closed (``plt.close``) so that Jupyter shows it once, as
the cell's value. Notebooks use the package as one namespace (``viz.show_pairs(...)``); the functions live
in modules of one job each:

- :mod:`~unet_helpers.viz.common`: the colours, mask outlines and colourized masks, and the plumbing every
  figure shares (title, legend below the panels, white background); pixels to ignore
  (``mask_classes.IGNORE_CLASS``) are drawn in one mid gray, IGNORED_COLOR, never as a class or an error;
- :mod:`~unet_helpers.viz.data`: the data before any model: image and mask pairs, marked images, instance
  labels in colour, histograms, an intensity normalisation, an elastic deformation;
- :mod:`~unet_helpers.viz.network`: the network itself: the U of a UNet, receptive fields;
- :mod:`~unet_helpers.viz.predictions`: predictions against the truth: outlines, error maps, the best and
  worst images, probability maps;
- :mod:`~unet_helpers.viz.scores`: charts of scores: against the threshold, per class, per group, per region,
  a confusion matrix, several models side by side, learning curves;
- :mod:`~unet_helpers.viz.tiles`: overlap-tile prediction: the tile grid, the seams;
- :mod:`~unet_helpers.viz.weights`: per-pixel loss weights and their profile across a gap.
"""

from unet_helpers.viz.common import (
    BACKGROUND_COLOR,
    CLASS_COLORS,
    ERROR_COLORS,
    ERROR_LABELS,
    GROUP_COLORS,
    IGNORED_COLOR,
    IGNORED_LABEL,
    INSTANCE_COLORS,
    MARK_COLOR,
    class_color,
    class_legend_handles,
    colorize_mask,
    draw_mask_outline,
    ignored_legend,
    ignored_map,
)
from unet_helpers.viz.data import (
    colorize_instances,
    plot_histograms,
    show_deformation,
    show_images,
    show_normalization,
    show_pairs,
)
from unet_helpers.viz.network import draw_unet, show_receptive_fields
from unet_helpers.viz.predictions import (
    error_image,
    show_best_and_worst,
    show_errors,
    show_overlay,
    show_predictions,
    show_probabilities,
)
from unet_helpers.viz.scores import (
    plot_confusion_matrix,
    plot_dice_against_threshold,
    plot_dice_by_group,
    plot_found_against_contrast,
    plot_grouped_scores,
    plot_learning_curves,
    plot_region_errors,
    plot_scores_per_class,
)
from unet_helpers.viz.tiles import show_seam_differences, show_tile_grid
from unet_helpers.viz.weights import gap_line, show_weight_map

__all__ = [
    "BACKGROUND_COLOR",
    "CLASS_COLORS",
    "ERROR_COLORS",
    "ERROR_LABELS",
    "GROUP_COLORS",
    "IGNORED_COLOR",
    "IGNORED_LABEL",
    "INSTANCE_COLORS",
    "MARK_COLOR",
    "class_color",
    "class_legend_handles",
    "colorize_instances",
    "colorize_mask",
    "draw_mask_outline",
    "draw_unet",
    "error_image",
    "gap_line",
    "ignored_legend",
    "ignored_map",
    "plot_confusion_matrix",
    "plot_dice_against_threshold",
    "plot_dice_by_group",
    "plot_found_against_contrast",
    "plot_grouped_scores",
    "plot_histograms",
    "plot_learning_curves",
    "plot_region_errors",
    "plot_scores_per_class",
    "show_best_and_worst",
    "show_deformation",
    "show_errors",
    "show_images",
    "show_normalization",
    "show_overlay",
    "show_pairs",
    "show_predictions",
    "show_probabilities",
    "show_receptive_fields",
    "show_seam_differences",
    "show_tile_grid",
    "show_weight_map",
]
