"""Validation Dice against minutes of training: the series' default recipe and plain ``model.fit``, same data.

    .venv/bin/python benchmarks/time_budget.py [--isbi ../shared/data/isbi2012_membrane] \\
        [--budgets 1 3 5 10] [--data DIR ...] [--no-nuclei] [--scale auto|squeeze|S]

For each dataset (the embedded real nuclei unless ``--no-nuclei``; ISBI 2012 with ``--isbi``; any folder
of images/ and masks/ with ``--data``), in one run on one machine:

1. **The series' default**: ``python -m unet_helpers.train --time-limit B --profile workshop`` in a
   subprocess, exactly as a user runs it, once per budget B (each run is its own, as a user would start
   it). Its score is the best epoch's ``val_dice`` from metrics.json, checked
   against a prediction of the saved ``best.keras`` on the validation arrays.
2. **Plain Keras**: the same network (``model.build_unet`` at the same width, no input standardisation),
   Adam 1e-3, binary cross-entropy, no augmentation, ``model.fit`` on the same training images as NumPy
   arrays (read once by the series' loader, so both sides see the same pixels), for the longest budget.
   After each epoch it is scored on the validation arrays; its score at budget B is its best epoch among
   those that ended within B (the selection the series makes) and, to be fair both ways, its last.

Both clocks count epochs, validation included, from the first step (the command line's start-up, before
its first epoch, is not counted; neither is reading plain Keras's arrays). Both sides use the same image
size, batch size and width (the profile's, unless given), the same split (the command line's: a seeded
fifth for validation, or the last fifth in name order with ``--no-shuffle-split``) and the same score:
``metrics.dice_score``, pooled Dice of the foreground, prediction > 0.5. Prints a table and writes
benchmarks/results/time_budget.json (one entry per dataset, kept across runs).

The command line's scale is its default, ``--scale auto`` (``scales.choose_scale``: the embedded nuclei, one
image size, squeezed; ISBI's thin membranes and the held-out nuclei's several sizes at scale 1), or ``--scale
S`` here. Where it trains on windows of the images at their own size times S (validation on the tiles that
cover them: its ``val_dice`` is the Dice at that size), plain Keras still trains on the squeezed images, and
both sides are scored at the masks' stored size times S: plain Keras's probabilities are resized back to it
(bilinear) before they are counted. Such entries are named ``"<dataset>, scale S"``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from unet_helpers import config, data, datasets, metrics, model, run_folder, scales, train
from unet_helpers.cli import scale_argument

RESULTS = Path(__file__).resolve().parent / "results" / "time_budget.json"


def read_arrays(
    root: Path, view: str | None, *, image_size: int, shuffle_split: bool
) -> tuple[np.ndarray, ...]:
    """(train images, train masks, validation images, validation masks) as the command line splits them,
    unaugmented, so that both sides learn from and are scored on the same pixels."""
    splits = data.load_splits(
        root,
        image_size=image_size,
        batch_size=None,
        shuffle_split=shuffle_split,
        progress=False,
        **view_of(view),
    )
    arrays = []
    for split in (splits.train, splits.validation):
        pairs = list(split.as_numpy_iterator())
        arrays += [np.stack([image for image, _ in pairs]), np.stack([mask for _, mask in pairs])]
    return tuple(arrays)


def view_of(view: str | None) -> dict:
    return train.VIEW_NAMES[view].as_kwargs() if view else {}


def own_size_masks(root: Path, view: str | None, *, scale: float, shuffle_split: bool) -> list[np.ndarray]:
    """The validation masks at their stored size times ``scale``, (H, W, 1) each, as the command line with
    ``--scale`` scores them (its tiles cover each mask once)."""
    scan, masks = data.scan_dataset(root, progress=False, **view_of(view)), []
    pairs = data.split_pairs(scan.pairs, split="validation", shuffle_split=shuffle_split)
    read = data.pair_reader(scan, image_size=1, scale=scale)
    for files in data.pair_files(pairs):
        masks.append(read(*files)[1].numpy())
    return masks


def scaled_back_dice(network: keras.Model, images: np.ndarray, masks: list[np.ndarray]) -> float:
    """Pooled Dice of ``network`` on squeezed ``images``, its probabilities resized (bilinear) to the
    size of each of ``masks``."""
    probabilities = network.predict(images, verbose=0)
    true, predicted = [], []
    for probability, mask in zip(probabilities, masks, strict=True):
        predicted.append(np.asarray(tf.image.resize(probability, mask.shape[:2])).ravel())
        true.append(mask.ravel())
    return metrics.dice_score(np.concatenate(true)[np.newaxis], np.concatenate(predicted)[np.newaxis])


class ScoreEachEpoch(keras.callbacks.Callback):
    """Scores the model with ``score`` after every epoch and stops ``fit`` after ``seconds``."""

    def __init__(self, seconds: float, score: Callable[[keras.Model], float]) -> None:
        super().__init__()
        self.seconds, self.score = seconds, score
        self.epochs: list[tuple[float, float]] = []  # (seconds since the first step, val Dice)

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        dice = self.score(self.model)
        elapsed = time.perf_counter() - self.start
        self.epochs.append((elapsed, dice))
        if elapsed > self.seconds:
            self.model.stop_training = True


def plain_keras(
    arrays: tuple[np.ndarray, ...],
    *,
    seconds: float,
    batch_size: int,
    base_filters: int,
    score: Callable[[keras.Model], float],
) -> list:
    """Plain ``model.fit`` for ``seconds``: [(seconds since the first step, val Dice)] after each epoch."""
    train_images, train_masks = arrays[:2]
    keras.utils.set_random_seed(0)
    plain = model.build_unet(input_shape=train_images.shape[1:], base_filters=base_filters)
    plain.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
    scorer = ScoreEachEpoch(seconds, score)
    plain.fit(train_images, train_masks, batch_size=batch_size, epochs=100_000, callbacks=[scorer], verbose=0)
    return scorer.epochs


def series_default(
    source: list[str],
    *,
    minutes: float,
    profile: str,
    sizes: dict[str, int],
    score: Callable[[keras.Model], float],
) -> dict:
    """The command line with ``--time-limit minutes``, the profile's defaults and ``sizes``."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "run"
        command = [sys.executable, "-m", "unet_helpers.train", *source, "--out", str(out), "--time-limit",
                   str(minutes), "--profile", profile,
                   *(f"--{name.replace('_', '-')}={value}" for name, value in sizes.items())]  # fmt: skip
        print("$", " ".join(command[1:]), flush=True)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        report = json.loads((out / run_folder.METRICS).read_text())
        history = run_folder.read_history(out / run_folder.HISTORY)
        best = model.load_model(out / run_folder.BEST_MODEL)
        return {
            "epochs": report["epochs_completed"],
            "seconds": round(sum(history["seconds"]), 1),
            "best_epoch": report["best_epoch"],
            "val_dice": round(report["best"]["val_dice"], 4),
            "val_dice_same_arrays": round(score(best), 4),
        }


def earlier_plain(earlier: dict | None, sizes: dict[str, int], seconds: float) -> list | None:
    """The plain side of an earlier run of this dataset, if it used the same sizes and lasted ``seconds``."""
    if not earlier or any(earlier.get(key) != value for key, value in sizes.items()):
        return None
    epochs = [tuple(row) for row in earlier["plain_per_epoch"]]
    return epochs if epochs[-1][0] >= seconds else None


def scorers(
    root: Path,
    view: str | None,
    validation: tuple[np.ndarray, np.ndarray],
    sizes: dict[str, int],
    scale: float | None,
    shuffle_split: bool,
) -> tuple[Callable[[keras.Model], float], Callable[[keras.Model], float]]:
    """How plain Keras's model and the series' ``best.keras`` are scored: on the squeezed validation
    arrays; with a ``scale``, both at the masks' stored size times it (the series' on its tiles)."""

    def on_arrays(network: keras.Model) -> float:
        return metrics.dice_score(validation[1], network.predict(validation[0], verbose=0))

    if scale is None:
        return on_arrays, on_arrays
    masks = own_size_masks(root, view, scale=scale, shuffle_split=shuffle_split)
    tiles = data.load_dataset(
        root, split="validation", image_size=sizes["image_size"], batch_size=sizes["batch_size"],
        scale=scale, shuffle_split=shuffle_split, progress=False, **view_of(view),
    )  # fmt: skip
    tile_masks = np.concatenate([mask for _, mask in tiles.as_numpy_iterator()])

    def scaled_back(network: keras.Model) -> float:
        return scaled_back_dice(network, validation[0], masks)

    def on_tiles(network: keras.Model) -> float:
        return metrics.dice_score(tile_masks, network.predict(tiles, verbose=0))

    return scaled_back, on_tiles


def chosen_scale(root: Path, view: str | None, scale: float | str | None, image_size: int) -> float | None:
    """The scale the command line trains ``root`` at with ``--scale scale`` (``auto``: what it chooses)."""
    if scale != "auto":
        return scale
    return scales.choose_scale(
        data.scan_dataset(root, progress=False, **view_of(view)), image_size=image_size
    ).scale


def measure(
    name: str,
    source: list[str],
    root: Path,
    view: str | None,
    args: argparse.Namespace,
    sizes: dict[str, int],
    scale: float | None,
    earlier: dict | None,
) -> dict:
    shuffle_split = "--no-shuffle-split" not in source
    arrays = read_arrays(root, view, image_size=sizes["image_size"], shuffle_split=shuffle_split)
    validation = arrays[2:]
    score_plain, score_series = scorers(root, view, validation, sizes, scale, shuffle_split)
    sizes["scale"] = "squeeze" if scale is None else scale
    seconds = max(args.budgets) * 60
    plain = earlier_plain(earlier, sizes, seconds) if args.reuse_plain else None
    plain_date = earlier.get("plain_date", earlier["date"]) if plain else time.strftime("%Y-%m-%d")
    if plain is None:
        plain = plain_keras(
            arrays,
            seconds=seconds,
            batch_size=sizes["batch_size"],
            base_filters=sizes["base_filters"],
            score=score_plain,
        )
    rows = []
    for minutes in args.budgets:
        within = [dice for seconds, dice in plain if seconds <= minutes * 60] or [0.0]
        default = series_default(
            source, minutes=minutes, profile=args.profile, sizes=sizes, score=score_series
        )
        rows.append(
            {
                "minutes": minutes,
                "date": time.strftime("%Y-%m-%d %H:%M"),
                "default": default,
                "plain_epochs": len([1 for seconds, _ in plain if seconds <= minutes * 60]),
                "plain_best": round(max(within), 4),
                "plain_last": round(within[-1], 4),
            }
        )
        print_row(name, rows[-1])
    return {
        "train_images": len(arrays[0]),
        "validation_images": len(validation[0]),
        **sizes,
        "budgets": rows,
        "plain_date": plain_date,
        "plain_per_epoch": [[round(seconds, 1), round(dice, 4)] for seconds, dice in plain],
    }


def print_row(name: str, row: dict) -> None:
    default = row["default"]
    print(
        f"{name:10s} {row['minutes']:5g} {default['epochs']:7d} {default['val_dice']:8.4f} "
        f"{row['plain_epochs']:7d} {row['plain_best']:8.4f} {row['plain_last']:8.4f} "
        f"{default['val_dice'] - row['plain_best']:+8.4f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    profile = config.PROFILES["workshop"]  # the sizes' defaults
    parser.add_argument("--profile", choices=list(config.PROFILES), default="workshop", help="the recipe's")
    parser.add_argument("--budgets", type=float, nargs="+", default=[1, 3, 5, 10], help="minutes of training")
    parser.add_argument("--isbi", type=Path, help="the ISBI 2012 folder (images/, masks/)")
    parser.add_argument("--data", type=Path, nargs="*", default=[], help="more folders of images/ and masks/")
    parser.add_argument(
        "--reuse-plain",
        action="store_true",
        help="take plain Keras's epochs from the results of an earlier run with the same sizes (to measure "
        "a change to the series' side only), and keep that run's rows for the budgets not given",
    )
    parser.add_argument("--no-nuclei", action="store_true", help="leave out the embedded nuclei")
    parser.add_argument("--image-size", type=int, default=profile.image_size)
    parser.add_argument("--isbi-image-size", type=int, default=256, help="ISBI's 512-pixel slices resized to")
    parser.add_argument("--batch-size", type=int, default=profile.batch_size)
    parser.add_argument("--base-filters", type=int, default=profile.base_filters)
    parser.add_argument(
        "--scale",
        type=scale_argument,
        default="auto",
        help="the command line's --scale (default auto: what it chooses for each folder); with windows, both "
        "sides are scored at the masks' stored size times it, plain Keras's probabilities resized back to it",
    )
    args = parser.parse_args()

    sources = [] if args.no_nuclei else [("nuclei", [], datasets.nuclei(), None)]
    if args.isbi:
        # The last fifth of the stack in slice order, not a seeded fifth: neighbouring slices look alike.
        source = ["--data", str(args.isbi), "--view", "isbi2012-membrane", "--no-shuffle-split"]
        sources.append(("isbi2012", source, args.isbi, "isbi2012-membrane"))
    sources += [(folder.name, ["--data", str(folder)], folder, None) for folder in args.data]

    print(f"{'dataset':10s} {'min':>5s} {'epochs':>7s} {'default':>8s} {'epochs':>7s} {'plain':>8s} "
          f"{'(last)':>8s} {'gain':>8s}")  # fmt: skip
    runs = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for dataset, source, root, view in sources:
        sizes = {
            "image_size": args.image_size,
            "batch_size": args.batch_size,
            "base_filters": args.base_filters,
        }
        if dataset == "isbi2012" and args.isbi_image_size:
            sizes["image_size"] = args.isbi_image_size
        scale = chosen_scale(root, view, args.scale, sizes["image_size"])
        name = dataset if scale is None else f"{dataset}, scale {scale:g}"
        measured = measure(dataset, source, root, view, args, sizes, scale, runs.get(name))
        # Budgets not measured now keep their earlier rows (with --reuse-plain, against the same plain run).
        kept = [row for row in runs.get(name, {}).get("budgets", []) if row["minutes"] not in args.budgets]
        if args.reuse_plain and kept:
            measured["budgets"] = sorted(kept + measured["budgets"], key=lambda row: row["minutes"])
        runs[name] = {
            **measured,
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
            "date": time.strftime("%Y-%m-%d"),
        }
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(runs, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
