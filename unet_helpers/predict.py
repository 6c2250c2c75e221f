"""Predict masks for a folder of images, or one image, with a trained UNet, each at its own size.

    python -m unet_helpers.predict --model runs/first/best.keras --input my_images --out predictions

Every image is predicted whole, in tiles of the model's input size (:func:`inference.predict_tiled`:
overlapping tiles, mirrored borders, blended seams), so an image of any size gets a mask of its own size.
A network learns objects at a size in pixels, so each image is predicted as the model's training run
saw its images, read from the run folder that holds ``--model`` (``--scale auto``, the default): at the
run's scale (``train --scale``, or ``auto`` choosing one); for a run that squeezed images of one square
size, at the scale that squeeze was (0.5 for 256x256 images squeezed to ``--image-size 128``, such as
the embedded nuclei); for one that squeezed images of several sizes, squeezed whole to its
``--image-size`` too. A model outside a run folder is predicted at scale 1. ``--scale FACTOR`` resizes
each image by FACTOR first, ``--scale squeeze`` squeezes it to the model's size; the mask is always
brought back to the image's size.
What the command writes into ``--out``, for an input ``NAME.ext``:

=====================  ==========================================================================
``masks/NAME.png``     the predicted mask, 8-bit gray, as large as the input. A binary model's
                       masks hold 0 (background) and 255 (object), visible in any image viewer; a
                       K-class model's hold the class indices 0 to K-1 (nearly black: look at the
                       overlays). Both are mask formats ``data.load_dataset`` reads, so corrected
                       predictions can join a training set.
``overlays/NAME.png``  the image, RGB, with each predicted class's outline over a light fill, in
                       the colours of ``viz.CLASS_COLORS`` (yellow for class 1, sky blue for 2, ...)
=====================  ==========================================================================

**Inputs**: PNG, JPEG, TIFF, BMP or GIF files; gray, RGB or RGBA; 8 or 16 bits per channel. They are
read by ``data.read_image``, as training read them: converted to the model's channels (gray repeated
to RGB, colour to gray), alpha dropped, 8-bit values divided by 255 and 16-bit ones by 65535. A
folder's image files are all predicted, in natural order of their names; its subfolders and hidden
files are not.

**Safety**: every input is opened and decoded before the first prediction, so a damaged or unreadable
file stops the command (one line naming it, exit code 2) before anything is written. Inputs are never
written: ``--out`` may not be the input folder, nor the input's folder its ``masks/`` or
``overlays/``. In ``--out``, the command writes only ``masks/NAME.png`` and ``overlays/NAME.png`` for
its inputs, replacing files of those names from an earlier run; other files stay as they are. Each
file appears in one rename, so Ctrl-C leaves no half-written file.

Exit codes: 0 done; 2 a mistake (a missing or unreadable file, a model that does not fit), with one
line on stderr saying what to do; 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from unet_helpers import run_folder
from unet_helpers.cli import ArgumentParser, fraction, non_negative_int, positive_int, scale_argument
from unet_helpers.errors import UnetTutorialError

if TYPE_CHECKING:
    import keras

MASKS = "masks"
OVERLAYS = "overlays"
# Overlays are drawn with matplotlib at one figure pixel per image pixel.
OVERLAY_DPI = 100
# A progress bar checks the inputs from this many files on.
CHECK_PROGRESS_MIN_FILES = 64


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m unet_helpers.predict",
        description="Predict a mask for every image of a folder (or one image file) with a trained UNet, "
        "each at the image's own size, in overlapping tiles of the model's input size. Writes "
        "OUT/masks/NAME.png (binary models: 0 and 255; K classes: class indices 0 to K-1; 8-bit, the "
        "input's size) and OUT/overlays/NAME.png (the image with the predicted outlines).",
        epilog="Only OUT/masks/NAME.png and OUT/overlays/NAME.png of the inputs are written (files of "
        "those names from an earlier run are replaced); inputs are never written. An unreadable input "
        "stops the command before anything is written. Exit codes: 0 done, 2 a mistake, 130 Ctrl-C.",
    )
    add = parser.add_argument
    add("--model", type=Path, required=True, metavar="FILE", help="a trained model: a run's best.keras")
    add("--input", type=Path, required=True, metavar="PATH", help="an image file, or a folder of images")
    add("--out", type=Path, required=True, metavar="DIR", help="output folder (created if missing)")
    add(
        "--threshold",
        type=fraction,
        metavar="P",
        help="binary models: object where the predicted probability is above P (default: 0.5)",
    )
    add(
        "--tile-size",
        type=positive_int,
        metavar="PIXELS",
        help="tile height and width for a model that takes any size (default: 256); "
        "a model trained on fixed sizes uses its own",
    )
    add(
        "--overlap",
        type=non_negative_int,
        metavar="PIXELS",
        help="pixels neighbouring tiles share, up to half a tile (default: a quarter of the tile)",
    )
    add("--batch-size", type=positive_int, default=8, metavar="N", help="tiles per step (default: 8)")
    add(
        "--scale",
        type=scale_argument,
        default="auto",
        metavar="auto|squeeze|FACTOR",
        help="resize each image by FACTOR before predicting, or squeeze it whole to the model's size "
        "(masks keep the image's size); default auto: as the run in the folder that holds --model saw "
        "its images (a model outside a run folder: 1)",
    )
    return parser


def _check_paths(arguments: argparse.Namespace) -> tuple[Path, Path, Path]:
    """The model file, the input and the output folder, checked without TensorFlow (fast)."""
    model_path, source, out = (
        path.expanduser() for path in (arguments.model, arguments.input, arguments.out)
    )
    if not model_path.is_file():
        raise UnetTutorialError(
            f"--model '{model_path}' does not exist: pass a trained model, such as a training run's "
            "best.keras."
        )
    if not source.exists():
        raise UnetTutorialError(
            f"--input '{source}' does not exist: pass an image file or a folder of images."
        )
    if out.exists() and not out.is_dir():
        raise UnetTutorialError(f"--out '{out}' is a file: pass a folder for the masks and overlays.")
    folder = (source if source.is_dir() else source.parent).resolve()
    if folder == out.resolve():
        raise UnetTutorialError(
            f"--out '{out}' is the input folder: choose another folder, such as '{folder.name}_predictions' "
            "next to it."
        )
    if folder in ((out / MASKS).resolve(), (out / OVERLAYS).resolve()):
        raise UnetTutorialError(
            f"--input '{source}' lies in --out's {folder.name}/ folder, where predictions would overwrite "
            "it: choose another --out."
        )
    return model_path, source, out


def _input_files(source: Path) -> list[Path]:
    """The images to predict, each opened and decoded once so that a damaged file is found now."""
    from tqdm.auto import tqdm

    from unet_helpers import images, pairing

    if source.is_dir():
        files = pairing.list_images(source)
        if not files:
            raise UnetTutorialError(
                f"no images in '{source}': expected files ending in {', '.join(pairing.IMAGE_SUFFIXES)}."
            )
    elif source.suffix.lower() in pairing.IMAGE_SUFFIXES:
        files = [source]
    else:
        raise UnetTutorialError(
            f"--input '{source}' is no image file: pass a file ending in "
            f"{', '.join(pairing.IMAGE_SUFFIXES)}, or a folder."
        )
    show = len(files) >= CHECK_PROGRESS_MIN_FILES
    for path in tqdm(files, desc=f"Checking {len(files)} images", unit="image", disable=not show):
        images.open_image(path)  # raises a one-line error that names a damaged file
    return files


def _check_model(model: keras.Model, num_classes: int, model_path: Path, threshold: float | None) -> int:
    """The model's input channels, after checking that the command can use the model."""
    channels = model.input_shape[-1]
    if channels not in (1, 3):
        raise UnetTutorialError(
            f"the model '{model_path}' takes {channels}-channel images, but images are read as gray (1) or "
            "RGB (3): predict them in Python with inference.predict_tiled."
        )
    if num_classes > 2 and threshold is not None:
        raise UnetTutorialError(
            f"--threshold applies to binary models, but '{model_path}' predicts {num_classes} classes (each "
            "pixel gets its most probable class): leave --threshold out."
        )
    return channels


def _write_png(path: Path, pixels: np.ndarray) -> None:
    """Write an 8-bit PNG so that the file appears complete or not at all."""
    from PIL import Image

    partial = path.with_name(f".{path.name}.partial")
    Image.fromarray(pixels).save(partial, format="PNG")
    os.replace(partial, path)


def overlay(image: np.ndarray, mask: np.ndarray, *, num_classes: int) -> np.ndarray:
    """The image with each foreground class of ``mask`` drawn by ``viz.draw_mask_outline``, pixel for pixel.

    Args:
        image: float (H, W, C) in [0, 1], C in {1, 3}.
        mask: class indices (H, W).
        num_classes: classes including the background (2 for binary masks).

    Returns:
        uint8 RGB pixels (H, W, 3).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from unet_helpers import viz

    height, width = mask.shape
    # A hundredth of a pixel more, so that rounding down the figure's size in pixels gives the image's.
    size = ((width + 0.01) / OVERLAY_DPI, (height + 0.01) / OVERLAY_DPI)
    figure = Figure(figsize=size, dpi=OVERLAY_DPI, facecolor="white")
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_axis_off()
    shown = image[..., 0] if image.shape[-1] == 1 else image
    axes.imshow(shown, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    viz.draw_mask_outline(axes, mask, num_classes=num_classes)
    axes.set_xlim(-0.5, width - 0.5)
    axes.set_ylim(height - 0.5, -0.5)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[:height, :width, :3].copy()


def _prediction_scale(
    requested: float | str | None, model_path: Path, model: keras.Model
) -> tuple[float, int | None]:
    """``(scale, squeeze_to)`` for ``inference.predict_tiled``: as ``--scale`` asks (auto|squeeze|FACTOR).

    ``auto`` follows the run folder that holds the model (the command line records every run's scale,
    None for squeezed images, and the one size of the images it squeezed): a model trained on images at
    a scale is given new ones at it, whatever their size.
    """
    if requested not in ("auto", None):
        return float(requested), None
    settings = run_folder.recorded_settings(model_path.parent)
    size = model.input_shape[1] or settings.get("image_size")
    if requested is None:
        if size is None:
            raise UnetTutorialError(
                f"--scale squeeze: '{model_path}' takes images of any size and its folder holds no run "
                "that says which size it trained at; pass --scale FACTOR."
            )
        return 1.0, size
    run = f"the run in '{model_path.parent}'"
    if "scale" not in settings:  # not a run of the command line: nothing says how it saw its images
        return 1.0, None
    if settings["scale"]:
        print(f"Predicting at scale {settings['scale']:g}, the scale {run} trained at.")
        return settings["scale"], None
    height, width = settings.get("squeezed_from") or (None, None)
    if height is not None and height == width:
        scale = size / height
        print(f"Predicting at scale {scale:g}: {run} squeezed its {height}x{width} images to {size}x{size}.")
        return scale, None
    print(f"Predicting each image squeezed to {size}x{size}, as {run} squeezed its images.")
    return 1.0, size


def _run(arguments: argparse.Namespace) -> int:
    """Predict every input; return how many images were written."""
    model_path, source, out = _check_paths(arguments)
    files = _input_files(source)
    from unet_helpers import data, inference
    from unet_helpers import model as unet

    model = unet.load_model(model_path)
    scale, squeeze_to = _prediction_scale(arguments.scale, model_path, model)
    num_classes = unet.num_classes_of(model)
    channels = _check_model(model, num_classes, model_path, arguments.threshold)
    tiling = {"tile_size": arguments.tile_size, "overlap": arguments.overlap}
    inference.tile_grid(model, (1, 1), **tiling)  # a wrong --tile-size or --overlap fails before writing
    for folder in (MASKS, OVERLAYS):
        (out / folder).mkdir(parents=True, exist_ok=True)
    for number, path in enumerate(files, start=1):
        start = time.perf_counter()
        image = data.read_image(path, channels=channels)
        probabilities = inference.predict_tiled(
            model, image, batch_size=arguments.batch_size, scale=scale, squeeze_to=squeeze_to, **tiling
        )
        mask = inference.to_mask(probabilities, threshold=arguments.threshold or 0.5)
        _write_png(out / MASKS / f"{path.stem}.png", mask * np.uint8(255) if num_classes == 2 else mask)
        _write_png(out / OVERLAYS / f"{path.stem}.png", overlay(image, mask, num_classes=num_classes))
        height, width = mask.shape
        print(
            f"[{number}/{len(files)}] {path.name}: {width}x{height}, {np.mean(mask > 0):.1%} predicted as "
            f"objects, {time.perf_counter() - start:.1f} s",
            flush=True,
        )
    values = "0 and 255" if num_classes == 2 else f"class indices 0 to {num_classes - 1}"
    masks = f"{len(files)} mask{'s' if len(files) > 1 else ''}"
    print(f"Wrote {masks} ({values}) to '{out / MASKS}' and the overlays to '{out / OVERLAYS}'.")
    return len(files)


def main(argv: list[str] | None = None) -> int:
    """Predict from the command line; exit 0 when done, 2 with one line for a mistake, 130 on Ctrl-C."""
    arguments = _parser().parse_args(argv)
    try:
        _run(arguments)
    except UnetTutorialError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nstopped by Ctrl-C; every mask and overlay written so far is complete.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
