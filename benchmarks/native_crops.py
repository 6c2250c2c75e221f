"""Train on random crops at the images' own scale, or on whole images squeezed to one size; score both alike.

    .venv/bin/python benchmarks/native_crops.py --data FOLDER [--train-on crops|squeezed] [--seconds 420] \\
        [--image-size 128] [--crops-per-image 2] [--mixed-precision off|bfloat16] [--flips] \\
        [--view NAME] [--no-shuffle-split]

The series trains by default on whole images squeezed to ``image_size`` (``data.load_splits``; since
this script, ``scale=1.0`` / ``--scale 1`` trains on windows as ``--train-on crops`` does): an image stored at
520x696 loses nine pixels in ten at 128x128 and its nuclei shrink fourfold, one stored at 256x256 only
twofold, so the network sees each kind of image at a scale of its own. This script trains the recipe's
network (``build_unet(base_filters=16, standardize=True)``, cross-entropy + Dice, Adam 1e-3 halved after
5 epochs without progress, no augmentation, seed 0) either way for a wall-clock budget, and after every
epoch scores the validation pairs (``data.split_pairs``: the series' split) against the masks at their
stored size, Dice pooled over all their pixels (probabilities > 0.5):

- ``--train-on squeezed`` (the series): an epoch is each training image ``--crops-per-image`` times,
  squeezed as the series does it (antialiased bilinear image, nearest-neighbour mask; once, before
  training, as the series caches them); a validation image is squeezed the same way and its
  probabilities are resized back to the mask's size (bilinear).
- ``--train-on crops``: an epoch is ``--crops-per-image`` random ``--image-size`` windows of each
  training image at its own size (an image smaller than the window is mirrored out to it); a validation
  image is predicted whole at its own size (mirrored out to a multiple of 8, the network's poolings).

``--flips`` turns each window by a random quarter turn and mirrors half of them. Both sides pay for
their validation inside the budget (the whole images cost the crops more). Binary masks only; the pairs
are held in memory. Each run appends its settings, best score and per-epoch curve (seconds, validation
Dice, training Dice) to benchmarks/results/native_crops.jsonl and prints one line. Run one at a time on a
quiet machine: the budget is wall-clock time.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from unet_helpers import data, devices, losses, mask_classes, metrics, model, train
from unet_helpers import images as image_files

RESULTS = Path(__file__).resolve().parent / "results" / "native_crops.jsonl"
Pairs = list[tuple[np.ndarray, np.ndarray]]


def load_pairs(scan: data.DatasetScan, *, split: str, shuffle_split: bool) -> Pairs:
    """The pairs of ``split`` at their stored size: float32 images (H, W, 3) in [0, 1] and masks
    (H, W, 1) in {0, 1}."""
    to_classes = mask_classes.class_lookup(
        scan.stored_values, scan.class_of_value, color_masks=scan.color_masks
    )
    pairs = []
    for pair in data.split_pairs(scan.pairs, split=split, shuffle_split=shuffle_split):
        image = data.read_image(pair.image).astype(np.float32) / 255
        mask = to_classes(image_files.decode_mask(str(pair.mask), pair.mask_via_python, scan.color_masks))
        pairs.append((image, mask.numpy().astype(np.float32).reshape(*image.shape[:2], 1)))
    return pairs


def mirrored_to(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """``array`` (H, W, C) mirrored out at the bottom and right to at least ``height`` x ``width``."""
    rows, columns = max(height - array.shape[0], 0), max(width - array.shape[1], 0)
    return np.pad(array, ((0, rows), (0, columns), (0, 0)), mode="reflect")


def squeeze(image: np.ndarray, mask: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A pair resized to ``size`` x ``size`` as ``data.load_splits`` resizes it."""
    return (
        tf.image.resize(image, [size, size], antialias=True).numpy(),
        tf.image.resize(mask, [size, size], method="nearest").numpy(),
    )


def training_batches(train_pairs: Pairs, args: argparse.Namespace) -> tf.data.Dataset:
    """Batches of ``args.batch_size`` pairs of ``args.image_size``, drawn anew every epoch (seed 0)."""
    rng, size = np.random.default_rng(0), args.image_size

    def epoch():
        order = np.repeat(np.arange(len(train_pairs)), args.crops_per_image)
        rng.shuffle(order)
        for index in order:
            image, mask = train_pairs[index]
            if args.train_on == "squeezed":  # squeezed once, in main
                yield image, mask
                continue
            image, mask = mirrored_to(image, size, size), mirrored_to(mask, size, size)
            top = rng.integers(0, image.shape[0] - size + 1)
            left = rng.integers(0, image.shape[1] - size + 1)
            window = (slice(top, top + size), slice(left, left + size))
            image, mask = image[window], mask[window]
            if args.flips:
                turns, mirror = rng.integers(0, 4), rng.integers(0, 2)
                image, mask = np.rot90(image, turns), np.rot90(mask, turns)
                image, mask = (image[:, ::-1], mask[:, ::-1]) if mirror else (image, mask)
            yield np.ascontiguousarray(image), np.ascontiguousarray(mask)

    spec = (tf.TensorSpec((size, size, 3), tf.float32), tf.TensorSpec((size, size, 1), tf.float32))
    return tf.data.Dataset.from_generator(epoch, output_signature=spec).batch(args.batch_size).prefetch(2)


def stored_size_dice(network: keras.Model, pairs: Pairs, args: argparse.Namespace) -> float:
    """Pooled Dice of ``network`` on ``pairs`` at the masks' stored size (module docstring)."""
    true, predicted = [], []
    for image, mask in pairs:
        height, width = mask.shape[:2]
        if args.train_on == "squeezed":  # the image squeezed once, in main; the mask at its stored size
            probabilities = tf.image.resize(network(image[np.newaxis], training=False)[0], [height, width])
        else:
            whole = mirrored_to(image, -(-height // 8) * 8, -(-width // 8) * 8)
            probabilities = network(whole[np.newaxis], training=False)[0, :height, :width]
        true.append(mask.ravel())
        predicted.append(np.asarray(probabilities, np.float32).ravel())
    # one row of all pixels: the pooled Dice of images of different sizes
    return metrics.dice_score(np.concatenate(true)[np.newaxis], np.concatenate(predicted)[np.newaxis])


class ScoreAndBudget(keras.callbacks.Callback):
    """Scores every epoch (``val_dice`` in the logs) and stops before an epoch would end after ``seconds``."""

    def __init__(self, validation_pairs: Pairs, args: argparse.Namespace) -> None:
        super().__init__()
        self.validation_pairs, self.args = validation_pairs, args
        self.start, self.previous, self.curve = time.perf_counter(), 0.0, []

    def on_epoch_end(self, epoch, logs=None):
        logs["val_dice"] = stored_size_dice(self.model, self.validation_pairs, self.args)
        now = time.perf_counter() - self.start
        self.curve.append([round(now, 1), round(logs["val_dice"], 4), round(float(logs["dice"]), 4)])
        if now + (now - self.previous) > self.args.seconds:
            self.model.stop_training = True
        self.previous = now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--data", type=Path, required=True, help="a folder with images/ and masks/")
    add("--view", choices=sorted(train.VIEW_NAMES), help="a known layout, as on the command line")
    add("--no-shuffle-split", action="store_true", help="validate on the last pairs in name order")
    add("--train-on", choices=["crops", "squeezed"], default="crops")
    add("--seconds", type=float, default=420.0)
    add("--image-size", type=int, default=128, help="the side of a training window or squeezed image")
    add("--crops-per-image", type=int, default=2, help="windows (or squeezed copies) of each image an epoch")
    add("--batch-size", type=int, default=16)
    add("--mixed-precision", choices=["off", "bfloat16"], default="off")
    add("--flips", action="store_true", help="a random quarter turn and mirror of each window")
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy(devices.resolve_mixed_precision(args.mixed_precision))
    view = train.VIEW_NAMES[args.view].as_kwargs() if args.view else {}
    scan = data.scan_dataset(args.data, progress=False, **view)
    if set(scan.class_of_value) != {0, 1}:
        parser.error(f"{args.data}: binary masks only (classes {sorted(set(scan.class_of_value))})")
    shuffle_split = not args.no_shuffle_split
    train_pairs = load_pairs(scan, split="train", shuffle_split=shuffle_split)
    validation_pairs = load_pairs(scan, split="validation", shuffle_split=shuffle_split)
    if args.train_on == "squeezed":  # once, as the series caches its squeezed pairs
        train_pairs = [squeeze(image, mask, args.image_size) for image, mask in train_pairs]
        validation_pairs = [
            (squeeze(image, mask, args.image_size)[0], mask) for image, mask in validation_pairs
        ]

    network = model.build_unet((None, None, 3), base_filters=16, standardize=True)
    network.compile(
        keras.optimizers.Adam(1e-3), losses.segmentation_loss(2), metrics=metrics.segmentation_metrics(2)
    )
    score = ScoreAndBudget(validation_pairs, args)
    plateau = keras.callbacks.ReduceLROnPlateau(
        monitor="val_dice", mode="max", factor=0.5, patience=5, min_lr=1e-6
    )
    # ScoreAndBudget first: it puts val_dice into the logs that ReduceLROnPlateau reads
    network.fit(training_batches(train_pairs, args), epochs=100_000, callbacks=[score, plateau], verbose=0)

    best = max(score.curve, key=lambda row: row[1])
    settings = {name: str(value) if isinstance(value, Path) else value for name, value in vars(args).items()}
    result = {
        **settings,
        "train_images": len(train_pairs),
        "validation_images": len(validation_pairs),
        "best": best[1],
        "best_at_seconds": best[0],
        "epochs": len(score.curve),
        "date": datetime.date.today().isoformat(),
    }
    print(json.dumps(result))
    with RESULTS.open("a") as results:
        results.write(json.dumps({**result, "curve": score.curve}) + "\n")


if __name__ == "__main__":
    main()
