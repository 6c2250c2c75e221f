"""The training command line on a real dataset against a plain Keras UNet trained for the same time.

    .venv/bin/python benchmarks/real_dataset.py --data ../shared/data/isbi2012_membrane \\
        [--view isbi2012-membrane] [--image-size 256] [--base-filters 16] [--batch-size 4] [--epochs 60]

1. The series' way: ``python -m unet_helpers.train --data DIR --view VIEW --no-shuffle-split ...`` in a
   subprocess, exactly as a user runs it (cross-entropy + Dice, default augmentation, best model by
   validation Dice, early stopping, learning-rate halving). Its training time T is the sum of its epochs'
   seconds (validation included), from history.csv.
2. A plain Keras UNet: the same network (``model.build_unet`` at the same width), Adam 1e-3 and binary
   cross-entropy, ``model.fit`` on the same training images as NumPy arrays (read once by the series'
   loader, so that both sides see the same pixels), no augmentation, stopped after T seconds of ``fit``.
   It is scored at its last epoch, and also at its best epoch by validation Dice (the selection the
   series makes), to be fair both ways.

Both are scored on the same validation arrays (the last 20% of the slices in file-name order, as
``--no-shuffle-split`` picks them and the loader reads them) with ``metrics.dice_score``: pooled Dice of
the membrane class, prediction > 0.5. Prints a table and writes benchmarks/results/real_dataset.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from unet_helpers import data, metrics, model, run_folder, train

RESULTS = Path(__file__).resolve().parent / "results" / "real_dataset.json"


def read_arrays(root: Path, view: str, *, image_size: int) -> tuple[np.ndarray, ...]:
    """(train images, train masks, validation images, validation masks) from the series' loader, unaugmented,
    so that both sides learn from and are scored on the same pixels."""
    options = {"image_size": image_size, "batch_size": None, "shuffle": False, "progress": False}
    arrays = []
    for split in ("train", "validation"):
        pairs = list(
            data.load_dataset(
                root, split=split, shuffle_split=False, **options, **train.VIEW_NAMES[view].as_kwargs()
            ).as_numpy_iterator()
        )
        arrays += [np.stack([image for image, _ in pairs]), np.stack([mask for _, mask in pairs])]
    return tuple(arrays)


class StopAfter(keras.callbacks.Callback):
    """Stops ``fit`` once ``seconds`` have passed, and scores the model after every epoch."""

    def __init__(self, seconds: float, validation: tuple[np.ndarray, np.ndarray]) -> None:
        super().__init__()
        self.seconds, self.validation = seconds, validation
        self.dice_per_epoch: list[float] = []

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if time.perf_counter() - self.start > self.seconds:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        images, masks = self.validation
        predictions = self.model.predict(images, verbose=0)
        self.dice_per_epoch.append(metrics.dice_score(masks, predictions))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--view", default="isbi2012-membrane", choices=sorted(train.VIEW_NAMES))
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--base-filters", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--patience", type=int, default=20)
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True)
    arguments = parser.parse_args()
    sizes = {"image_size": arguments.image_size}
    train_images, train_masks, validation_images, validation_masks = read_arrays(
        arguments.data, arguments.view, **sizes
    )

    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "run"
        command = [
            sys.executable, "-m", "unet_helpers.train", "--data", str(arguments.data),
            "--view", arguments.view, "--no-shuffle-split", "--out", str(out),
            "--image-size", str(arguments.image_size),
            "--base-filters", str(arguments.base_filters), "--batch-size", str(arguments.batch_size),
            "--epochs", str(arguments.epochs), "--patience", str(arguments.patience),
            "--augment" if arguments.augment else "--no-augment",
        ]  # fmt: skip
        print("$", " ".join(command[1:]), flush=True)
        started = time.perf_counter()
        subprocess.run(
            command, check=True, stdout=subprocess.DEVNULL, env=dict(os.environ, UNET_PROFILE="full")
        )
        command_wall_seconds = time.perf_counter() - started
        report = json.loads((out / run_folder.METRICS).read_text())
        history = run_folder.read_history(out / run_folder.HISTORY)
        series_model = model.load_model(out / run_folder.BEST_MODEL)
        series_dice = metrics.dice_score(validation_masks, series_model.predict(validation_images, verbose=0))
    training_seconds = sum(history["seconds"])

    keras.utils.set_random_seed(0)
    plain = model.build_unet(input_shape=train_images.shape[1:], base_filters=arguments.base_filters)
    plain.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
    stopper = StopAfter(training_seconds, (validation_images, validation_masks))
    plain.fit(
        train_images,
        train_masks,
        batch_size=arguments.batch_size,
        epochs=100_000,
        callbacks=[stopper],
        verbose=0,
    )

    results = {
        "dataset": str(arguments.data.name),
        "view": arguments.view,
        "train_images": len(train_images),
        "validation_images": len(validation_images),
        "image_size": arguments.image_size,
        "base_filters": arguments.base_filters,
        "batch_size": arguments.batch_size,
        "series_augment": arguments.augment,
        "training_seconds_each": round(training_seconds, 1),
        "series": {
            "command_wall_seconds": round(command_wall_seconds, 1),
            "epochs": report["epochs_completed"],
            "status": report["status"],
            "best_epoch": report["best_epoch"],
            "val_dice_metrics_json": round(report["best"]["val_dice"], 4),
            "val_dice_same_arrays": round(series_dice, 4),
            "val_dice_per_epoch": [round(value, 4) for value in history["val_dice"]],
        },
        "plain_keras": {
            "epochs": len(stopper.dice_per_epoch),
            "val_dice_last_epoch": round(stopper.dice_per_epoch[-1], 4),
            "val_dice_best_epoch": round(max(stopper.dice_per_epoch), 4),
            "best_epoch": int(np.argmax(stopper.dice_per_epoch)) + 1,
            "val_dice_per_epoch": [round(value, 4) for value in stopper.dice_per_epoch],
        },
        "cpu_count": os.cpu_count(),
    }
    size = f"{arguments.image_size}x{arguments.image_size}"
    print(
        f"\n{results['dataset']}, {results['train_images']} training / {results['validation_images']} "
        f"validation images at {size}, width {arguments.base_filters}, "
        f"{training_seconds:.0f} s of training each:"
    )
    print(f"{'':34s} {'epochs':>6s} {'val Dice':>9s}")
    series = results["series"]
    print(
        f"{'unet_helpers.train (best epoch)':34s} {series['epochs']:6d} {series['val_dice_same_arrays']:9.4f}"
    )
    plain = results["plain_keras"]
    print(f"{'plain Keras (last epoch)':34s} {plain['epochs']:6d} {plain['val_dice_last_epoch']:9.4f}")
    print(f"{'plain Keras (best epoch)':34s} {'':6s} {plain['val_dice_best_epoch']:9.4f}")
    # One entry per setting (augmentation on or off, epochs), so that runs of several settings are kept.
    runs = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    runs[f"{'augment' if arguments.augment else 'no_augment'}_{arguments.epochs}_epochs"] = results
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(runs, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}")


if __name__ == "__main__":
    main()
