"""One lever of the training recipe at a time: best validation Dice after a fixed number of seconds.

    .venv/bin/python benchmarks/recipe_levers.py --data DIR [--view NAME] [--no-shuffle-split] \\
        [--seconds 180] [--standardize] [--augment none|orientations|light|all] \\
        [--schedule plateau|cosine|constant] [--learning-rate 1e-3] [--batch-size 16] [--loss series|bce] \\
        [--augment-after-stall N] [--ema MOMENTUM] [--weight-decay W] [--base-filters N] \\
        [--mixed-precision off|bfloat16|float16] [--image-size 128] [--score-native]

The screening behind the series' recipe (README, "The training recipe"). One run trains one recipe with
``model.fit`` on the series' pipeline (``data.load_splits``, seed 0) until the next epoch would end after
``--seconds`` (the rule of ``--time-limit``), and reports the best epoch's ``val_dice`` (pooled Dice of the
foreground, as everywhere in the series). Every lever not given stays at the series' values before issue
14: notebook 02's augmentation (``all``), Adam 1e-3 halved after 5 epochs without a better ``val_dice``,
cross-entropy + Dice, batch 16, width 16, 128x128, no standardisation. ``--schedule cosine`` decays the
learning rate over the seconds, from the start value to 1% of it (set before each epoch from the time
used). ``--ema 0.99`` keeps Adam's exponential moving average of the weights and scores (and would save)
the averaged weights (``use_ema=True`` with ``keras.callbacks.SwapEMAWeights``); ``--weight-decay`` trains
with AdamW instead of Adam. ``--mixed-precision bfloat16`` computes in bfloat16 with float32 weights
(fast on CPUs with AVX512-BF16 or AMX, emulated and slow on others). ``--score-native`` also scores the
best epoch's weights against the validation masks at their stored size (each image squeezed to
``--image-size`` as in training, the probabilities resized back bilinearly, then > 0.5; pooled Dice): a
score that does not depend on the size the network was trained at, so that image sizes can be compared;
binary masks only. Each run appends its settings, score
and per-epoch curve to benchmarks/results/recipe_levers.jsonl and prints one line. Run one at a time on a
quiet machine: the budget is wall-clock time.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from unet_helpers import augment, data, devices, losses, mask_classes, metrics, model, train
from unet_helpers import images as image_files

RESULTS = Path(__file__).resolve().parent / "results" / "recipe_levers.jsonl"
AUGMENTATIONS = {
    "none": False,
    "orientations": augment.AugmentOptions.only("flip", "rotate90"),
    "light": augment.AugmentOptions.only("flip", "rotate90", "zoom", "translate"),
    "all": True,
}


class StopWhenStalled(keras.callbacks.Callback):
    """Stops ``fit`` after ``patience`` epochs without a better ``val_dice`` and records the epoch."""

    def __init__(self, patience: int) -> None:
        super().__init__()
        self.patience, self.best, self.wait, self.stalled_at = patience, -1.0, 0, None
        self.epochs = 0

    def on_epoch_end(self, epoch, logs=None):
        self.epochs += 1
        self.best, self.wait = (
            (logs["val_dice"], 0) if logs["val_dice"] > self.best else (self.best, self.wait + 1)
        )
        if self.wait >= self.patience:
            self.stalled_at, self.model.stop_training = self.epochs, True


class Budget(keras.callbacks.Callback):
    """Stops after the epoch that leaves too little of ``seconds`` for another (median of the last three
    epochs after the first), optionally decays the learning rate along a cosine over the seconds, and
    records ``(seconds since the start, val_dice)`` after each epoch."""

    def __init__(self, seconds: float, *, cosine: bool) -> None:
        super().__init__()
        self.seconds, self.cosine, self.curve, self.epoch_seconds = seconds, cosine, [], []

    def on_train_begin(self, logs=None):
        if not self.curve:  # a second fit (after --augment-after-stall) continues the same clock
            self.start = time.perf_counter()
            self.peak = float(self.model.optimizer.learning_rate)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.perf_counter()
        if self.cosine:
            progress = min(1.0, (self.epoch_start - self.start) / self.seconds)
            self.model.optimizer.learning_rate.assign(
                self.peak * (0.01 + 0.99 * (1 + math.cos(math.pi * progress)) / 2)
            )

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self.epoch_seconds.append(now - self.epoch_start)
        self.curve.append((round(now - self.start, 1), round(float(logs["val_dice"]), 4)))
        expected = float(np.median(self.epoch_seconds[1:][-3:])) if len(self.epoch_seconds) > 1 else 0.0
        if now - self.start + expected > self.seconds:
            self.model.stop_training = True


class KeepBest(keras.callbacks.Callback):
    """Keeps the weights of the epoch with the best ``val_dice`` (in memory)."""

    def __init__(self) -> None:
        super().__init__()
        self.best, self.weights = -1.0, None

    def on_epoch_end(self, epoch, logs=None):
        if logs["val_dice"] > self.best:
            self.best, self.weights = logs["val_dice"], self.model.get_weights()


def native_dice(network: keras.Model, scan: data.DatasetScan, args: argparse.Namespace) -> float:
    """Pooled Dice of ``network`` on the validation pairs at the masks' stored size (module docstring)."""
    to_classes = mask_classes.class_lookup(
        scan.stored_values, scan.class_of_value, color_masks=scan.color_masks
    )
    pairs = data.split_pairs(scan.pairs, split="validation", shuffle_split=not args.no_shuffle_split)
    true, predicted = [], []
    for pair in pairs:
        image = data.read_image(pair.image)
        mask = to_classes(image_files.decode_mask(str(pair.mask), pair.mask_via_python, scan.color_masks))
        squeezed = tf.image.resize(image, [args.image_size] * 2, antialias=True)
        probabilities = network.predict(squeezed[tf.newaxis], verbose=0)[0].astype(np.float32)
        true.append(mask.numpy().ravel())
        predicted.append(tf.image.resize(probabilities, mask.shape[:2]).numpy().ravel())
    # one row of all pixels: the pooled Dice of images of different sizes
    return metrics.dice_score(np.concatenate(true)[np.newaxis], np.concatenate(predicted)[np.newaxis])


def load_splits(args: argparse.Namespace, augment: str) -> data.Splits:
    return data.load_splits(
        args.data,
        image_size=args.image_size,
        batch_size=args.batch_size,
        augment=AUGMENTATIONS[augment],
        shuffle_split=not args.no_shuffle_split,
        progress=False,
        **(train.VIEW_NAMES[args.view].as_kwargs() if args.view else {}),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--data", type=Path, required=True, help="a folder with images/ and masks/")
    add("--view", choices=list(train.VIEW_NAMES), help="a known dataset's layout")
    add("--no-shuffle-split", action="store_true", help="validate on the last fifth in name order")
    add("--seconds", type=float, default=180.0)
    add("--standardize", action="store_true", help="build_unet(standardize=True)")
    add("--augment", choices=list(AUGMENTATIONS), default="all")
    add("--schedule", choices=["plateau", "cosine", "constant"], default="plateau")
    add("--learning-rate", type=float, default=1e-3)
    add("--batch-size", type=int, default=16)
    add("--base-filters", type=int, default=16)
    add("--image-size", type=int, default=128)
    add("--ema", type=float, metavar="MOMENTUM", help="score an exponential moving average of the weights")
    add("--weight-decay", type=float, help="AdamW with this decoupled weight decay instead of Adam")
    add("--mixed-precision", choices=["off", "bfloat16", "float16"], default="off")
    add("--score-native", action="store_true", help="also score at the masks' stored size (binary masks)")
    add("--loss", choices=["series", "bce"], default="series", help="cross-entropy + Dice, or BCE alone")
    add(
        "--augment-after-stall",
        type=int,
        metavar="N",
        help="train without augmentation until val_dice has not improved for N epochs, then go on with "
        "--augment and the learning rate back at its start (an augmentation ramp)",
    )
    args = parser.parse_args()
    if args.score_native and args.ema:
        parser.error("--score-native keeps the best epoch's own weights, not their average: drop --ema")

    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy(devices.resolve_mixed_precision(args.mixed_precision))
    splits = load_splits(args, args.augment)
    network = model.build_unet(
        (args.image_size, args.image_size, 3), base_filters=args.base_filters, standardize=args.standardize
    )
    ema = {"use_ema": True, "ema_momentum": args.ema} if args.ema else {}
    optimizer = (
        keras.optimizers.AdamW(args.learning_rate, weight_decay=args.weight_decay, **ema)
        if args.weight_decay
        else keras.optimizers.Adam(args.learning_rate, **ema)
    )
    network.compile(
        optimizer,
        losses.segmentation_loss(2) if args.loss == "series" else "binary_crossentropy",
        metrics=metrics.segmentation_metrics(2),
    )
    budget, best = Budget(args.seconds, cosine=args.schedule == "cosine"), KeepBest()
    # SwapEMAWeights goes first, so that the others read the averaged weights' scores
    callbacks = [keras.callbacks.SwapEMAWeights()] * bool(args.ema) + [budget, best]
    if args.schedule == "plateau":
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_dice", mode="max", factor=0.5, patience=5, min_lr=1e-6
            )
        )
    stall = StopWhenStalled(args.augment_after_stall) if args.augment_after_stall else None
    first = load_splits(args, "none") if stall else splits
    network.fit(
        first.train,
        validation_data=first.validation,
        epochs=100_000,
        callbacks=callbacks + [stall] * bool(stall),
        verbose=0,
    )
    if stall and stall.stalled_at:
        network.optimizer.learning_rate.assign(args.learning_rate)
        network.fit(
            splits.train, validation_data=splits.validation, epochs=100_000, callbacks=callbacks, verbose=0
        )
    settings = {name: str(value) if isinstance(value, Path) else value for name, value in vars(args).items()}
    result = {**settings, "best": max(dice for _, dice in budget.curve), "epochs": len(budget.curve)}
    if args.score_native:
        network.set_weights(best.weights)
        result["native_best"] = round(native_dice(network, splits.scan, args), 4)
    if stall:
        result["augmented_from_epoch"] = stall.stalled_at and stall.stalled_at + 1
    print(json.dumps(result))
    RESULTS.parent.mkdir(exist_ok=True)
    with RESULTS.open("a") as results:
        results.write(json.dumps({**result, "date": time.strftime("%Y-%m-%d"), "curve": budget.curve}) + "\n")


if __name__ == "__main__":
    main()
