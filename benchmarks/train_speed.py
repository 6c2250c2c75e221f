"""Training images/s through ``training.train_unet`` against plain ``model.fit`` on NumPy arrays, in one run.

    .venv/bin/python benchmarks/train_speed.py [--image-size 128] [--num-samples 80] [--epochs 3]

Both sides train ``build_unet()`` with its defaults (the classic 64-filter network), compiled the same way
(``training.compile_unet``: Adam, cross-entropy + Dice, the series' metrics), with batches of 8. The code path
of the series feeds it from ``data.load_dataset`` (decode, cache, shuffle, batch, prefetch; with and
without the default augmentation) and runs its callbacks (checkpoints, CSV, TensorBoard, backups). The
plain side calls ``model.fit`` on in-memory NumPy arrays with no callbacks. Each figure is the median
images/s of the epochs after the first (which traces and compiles), training steps only (validation
excluded). Prints a table and writes benchmarks/results/train_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from unet_helpers import data, model, synthetic, training

RESULTS = Path(__file__).resolve().parent / "results" / "train_speed.json"


class EpochTimer(keras.callbacks.Callback):
    """Seconds per epoch of ``model.fit``'s training steps."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)

    def on_train_begin(self, logs=None):
        self.seconds = []


def plain_fit_rate(images: np.ndarray, masks: np.ndarray, *, batch_size: int, epochs: int) -> float:
    network = training.compile_unet(
        model.build_unet(input_shape=images.shape[1:]), num_classes=2, jit_compile=False
    )
    timer = EpochTimer()
    network.fit(images, masks, batch_size=batch_size, epochs=epochs, callbacks=[timer], verbose=0)
    return len(images) / statistics.median(timer.seconds[1:])


def series_rate(
    root: Path, out_dir: Path, *, image_size: int, batch_size: int, epochs: int, augment: bool
) -> float:
    options = {"image_size": image_size, "batch_size": batch_size, "progress": False}
    training = data.load_dataset(root, split="train", augment=augment, **options)
    result = training.train_unet(
        train=training,
        validation=data.load_dataset(root, split="validation", **options),
        out_dir=out_dir,
        num_classes=2,
        image_size=image_size,
        base_filters=64,
        epochs=epochs,
        mixed_precision="off",
        jit_compile="off",
        verbose=0,
    )
    seconds = result.history["train_seconds"][1:]
    return sum(int(images.shape[0]) for images, _ in training) / statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--num-samples", type=int, default=80)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        root = synthetic.generate_dataset(
            Path(folder) / "cells", num_samples=args.num_samples, image_size=args.image_size, progress=False
        )
        # The plain side gets exactly the training images of the series' split, decoded once into memory.
        pairs = list(
            data.load_dataset(
                root,
                image_size=args.image_size,
                batch_size=None,
                split="train",
                shuffle=False,
                progress=False,
            ).as_numpy_iterator()
        )
        images, masks = np.stack([image for image, _ in pairs]), np.stack([mask for _, mask in pairs])
        sizes = {"image_size": args.image_size, "batch_size": args.batch_size, "epochs": args.epochs}
        rates = {
            "model.fit on NumPy arrays": plain_fit_rate(
                images, masks, batch_size=args.batch_size, epochs=args.epochs
            ),
            "train_unet, no augmentation": series_rate(
                root, Path(folder) / "run_plain", augment=False, **sizes
            ),
            "train_unet, default augmentation": series_rate(
                root, Path(folder) / "run_augmented", augment=True, **sizes
            ),
        }

    reference = rates["model.fit on NumPy arrays"]
    size = args.image_size
    print(f"\n| path ({size}x{size}, batch {args.batch_size}) | images/s | ratio to model.fit |")
    print("|---|---|---|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:.2f} | {rate / reference:.2f}x |")
    RESULTS.parent.mkdir(exist_ok=True)
    machine = {
        "cores": os.cpu_count(),
        "tensorflow": tf.__version__,
        "gpus": len(tf.config.list_physical_devices("GPU")),
    }
    rows = [
        {"path": name, "images_per_s": round(rate, 3), "ratio": round(rate / reference, 3)}
        for name, rate in rates.items()
    ]
    settings = {**vars(args), "train_images": len(images)}
    RESULTS.write_text(json.dumps({"machine": machine, "settings": settings, "rows": rows}, indent=2) + "\n")
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
