"""Validation Dice of a training run's best.keras at the masks' own size, whatever size it trained at.

    .venv/bin/python benchmarks/own_size_dice.py RUN [RUN ...]

A run's ``val_dice`` is measured at the size it trained at: squeezed images (128x128 for the workshop
profile) or, with ``--scale S``, tiles of the images at their own size times S. This script scores each
run's best model on the same validation images at the size the masks are stored at, so that runs of
different scales compare: ``inference.predict_tiled`` predicts each image whole, squeezed to the run's
``--image-size`` for a squeezed run (``squeeze_to``: its probabilities resized back to the image's size,
bilinear, as ``benchmarks/time_budget.py`` scores plain ``fit``), at the run's scale for the others (as
``predict`` does). Both against the stored masks: pooled Dice of the foreground, prediction > 0.5
(``metrics.dice_score``). Writes benchmarks/results/own_size_dice.json (one entry per run folder, kept
across runs).

The split and the folder come from the run's ``run.json`` (binary folders of images/ and masks/ read with
the default options or gray ``mask_values``: the embedded nuclei, ISBI 2012's view). Prints one line per run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from unet_helpers import data, inference, metrics, model, run_folder

RESULTS = Path(__file__).resolve().parent / "results" / "own_size_dice.json"
# Options a folder can be read with that this script does not pass on: it refuses runs that set them.
UNSUPPORTED = ("mask_threshold", "pairs_file", "official_splits", "limit", "ignore_values")


def own_size_dice(run: Path) -> tuple[float, float, float | None]:
    """(Dice at the masks' own size, the run's best val_dice, its scale) for the run folder ``run``."""
    settings = json.loads((run / run_folder.RUN_RECORD).read_text())["settings"]
    if (
        settings["num_classes"] != 2
        or settings.get("invert")
        or any(settings.get(key) for key in UNSUPPORTED)
    ):
        raise SystemExit(f"{run}: only binary runs on folders read with the default options are supported")
    # Gray mask values only (run.json keeps the keys as text): ISBI 2012's view, for one.
    mask_values = {int(key): value for key, value in (settings.get("mask_values") or {}).items()} or None
    scan = data.scan_dataset(
        settings["data"],
        images=settings["images"],
        masks=settings["masks"],
        mask_values=mask_values,
        progress=False,
    )
    pairs = data.split_pairs(
        scan.pairs,
        split="validation",
        validation_fraction=settings["validation_fraction"],
        seed=settings["seed"],
        shuffle_split=settings["shuffle_split"],
    )
    read = data.pair_reader(scan, image_size=1, channels=settings["channels"], scale=1.0)
    network, scale, size = (
        model.load_model(run / run_folder.BEST_MODEL),
        settings.get("scale"),
        settings["image_size"],
    )
    # As predict gives new images to the run's model: squeezed whole, or at the run's scale.
    options = {"squeeze_to": size} if scale is None else {"scale": scale}
    true, predicted = [], []
    for files in data.pair_files(pairs):
        image, mask = data.to_float(*read(*files))
        probabilities = inference.predict_tiled(network, image.numpy(), progress=False, **options)
        true.append(mask.numpy().ravel())
        predicted.append(np.asarray(probabilities)[..., -1].ravel())
    dice = metrics.dice_score(np.concatenate(true)[np.newaxis], np.concatenate(predicted)[np.newaxis])
    report = json.loads((run / run_folder.METRICS).read_text())
    return dice, report["best"]["val_dice"], scale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="run folders of unet_helpers.train")
    print(f"{'run':40s} {'scale':>8s} {'val_dice':>9s} {'own size':>9s}")
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for run in parser.parse_args().runs:
        dice, val_dice, scale = own_size_dice(run)
        print(f"{run!s:40s} {'squeeze' if scale is None else f'{scale:g}':>8s} {val_dice:9.4f} {dice:9.4f}")
        settings = json.loads((run / run_folder.RUN_RECORD).read_text())["settings"]
        results[str(run)] = {
            "data": settings["data"],
            "scale": scale,
            "val_dice": round(val_dice, 4),
            "own_size_dice": round(dice, 4),
            "date": time.strftime("%Y-%m-%d"),
        }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
