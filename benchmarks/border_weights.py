"""The UNet paper's border weights against plain training, at equal training time, on the embedded nuclei.

    .venv/bin/python benchmarks/border_weights.py [--minutes 5] [--seeds 0 1 2] [--crop-size 128]
        [--base-filters 16] [--batch-size 16] [--no-augment]
    .venv/bin/python benchmarks/border_weights.py --weight-maps-only

``--weight-maps-only`` times ``instances.targets`` (separated mask and weight map) on each training image
(the best of 3 runs per image, which leaves out other programs' interruptions), prints the median and the
slowest per image, and writes benchmarks/results/weight_maps.json; nothing is trained.

Three arms, each trained for the same time: ``--minutes`` of training steps, counted by a Keras callback
around every batch (the data the step waits for included; the first step, which traces the graph, left
out, and so are building the dataset and scoring), which stops ``fit`` once the budget is spent:

(a) ``union``: the union masks (``masks/``: touching nuclei merge), no weights: what the rest of the series
    trains on;
(b) ``separated``: touching nuclei separated by 1-pixel lines (``instances.separate_touching``), no weights;
(c) ``separated + weights``: the same targets, with the paper's weight map (``instances.border_weights``:
    w0 = 10, sigma = 5 pixels, the training set's class weights) as Keras's per-pixel ``sample_weight``.

``--arms`` picks among these (named ``union``, ``separated``, ``weights``) and a fourth, ``class-weights``
(separated, weighted by the class weights alone, w0 = 0), which tells the ridge's part of (c) from the
class balance's.

Every arm: the embedded nuclei's training split (``instances.load_split``, the files of
``data.load_dataset``'s split with seed 0) at the images' own size (256x256), cut to random ``--crop-size``
windows drawn anew every epoch (``instances.weighted_dataset(crop_size=...)``); for one seed, the same
windows, order and augmentation in all three arms, and the same initial weights. The network is
``model.build_unet`` of ``--base-filters``, compiled by ``training.compile_unet`` (Adam 1e-3, cross-entropy +
Dice; weights multiply the cross-entropy only). Augmentation is on, as in the series, but
``instances.SEPARATION_SAFE`` in every arm: the series' default without rotations by any angle, zoom and
elastic deformation, which break the 1-pixel lines (``--no-augment`` turns it off).

Scores, on the validation split's 58 images whole, at their own size (``inference.predict_tiled`` in tiles
of ``--crop-size``): the pixel Dice against the union masks, pooled (``metrics.dice_score``); the nuclei
recovered as separate objects against the instance labels, precision, recall and F1 (connected components
of p > 0.5 matched one to one at IoU >= 0.5, ``instance_metrics.instance_scores``); and the merged
objects (predicted objects that hold most of two or more nuclei, ``instances.merged_objects``).
``--seeds`` repeats it all; each seed changes the initial weights, the windows, their order and the
augmentation. Prints a table per seed, then the mean and the standard deviation over seeds, and writes
benchmarks/results/border_weights.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import sys
import time
from pathlib import Path

import cv2
import keras
import machine
import numpy as np

from unet_helpers import datasets, inference, instance_metrics, instances, metrics, model, training

RESULTS = Path(__file__).resolve().parent / "results" / "border_weights.json"
WEIGHT_MAPS = RESULTS.with_name("weight_maps.json")
# --arms name -> the arm's name in the tables.
ARMS = {
    "union": "union",
    "separated": "separated",
    "class-weights": "separated + class weights",
    "weights": "separated + weights",
}
SCORES = ("dice", "precision", "recall", "f1", "merged", "epochs")


class TrainFor(keras.callbacks.Callback):
    """Stops ``fit`` once ``seconds`` were spent in training steps, the first (tracing) step left out."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds, self.spent, self.steps = seconds, 0.0, 0

    def on_train_batch_begin(self, batch, logs=None):
        self.started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.steps > 1:
            self.spent += time.perf_counter() - self.started
        if self.spent >= self.seconds:
            self.model.stop_training = True


def train_arm(arm: str, split: instances.InstanceSplit, arguments: argparse.Namespace, seed: int) -> tuple:
    """One arm (a key of ARMS) trained for the time budget: (the model, training seconds, steps, epochs)."""
    labels = split.instances > 0 if arm == "union" else split.instances  # one label per image: no lines
    batches = instances.weighted_dataset(
        split.images,
        labels,
        batch_size=arguments.batch_size,
        crop_size=arguments.crop_size,
        seed=seed,
        augment=arguments.augment,
        weights=arm in ("class-weights", "weights"),
        w0=0.0 if arm == "class-weights" else 10.0,
    )
    keras.utils.set_random_seed(seed)  # the same initial weights in every arm
    network = model.build_unet(
        input_shape=(arguments.crop_size, arguments.crop_size, split.images.shape[-1]),
        base_filters=arguments.base_filters,
    )
    training.compile_unet(network, num_classes=datasets.NUCLEI.num_classes)
    budget = TrainFor(arguments.minutes * 60)
    network.fit(batches, epochs=1_000_000, callbacks=[budget], verbose=0, shuffle=False)
    return network, budget.spent, budget.steps, budget.steps / len(batches)


def score(network: keras.Model, validation: instances.InstanceSplit) -> dict:
    """Pixel Dice against the union masks, nuclei precision / recall / F1, merged objects."""
    predictions = np.stack(
        [inference.predict_tiled(network, image, progress=False) for image in validation.images]
    )
    union = (validation.instances > 0)[..., np.newaxis].astype(np.float32)
    found = instance_metrics.instance_scores(validation.instances, predictions)
    merged = sum(
        cv2.connectedComponents(instances.merged_objects(truth, p).astype(np.uint8), connectivity=8)[0] - 1
        for truth, p in zip(validation.instances, predictions, strict=True)
    )
    return {
        "dice": metrics.dice_score(union, predictions),
        "precision": found.precision,
        "recall": found.recall,
        "f1": found.f1,
        "matched": found.counts.true_positives,
        "extra": found.counts.false_positives,
        "missed": found.counts.false_negatives,
        "merged": merged,
    }


def print_table(rows: list[dict], nuclei: int) -> None:
    columns = ("seed", "arm", "training s", "steps", "epochs", "pixel Dice", "precision", "recall", "F1")
    print("\n| " + " | ".join(columns) + f" | merged (of {nuclei} nuclei) |")
    print("|---" * (len(columns) + 1) + "|")
    for row in rows:
        cells = [
            row["seed"],
            row["arm"],
            f"{row['training_seconds']:.0f}",
            row["steps"],
            f"{row['epochs']:.1f}",
        ]
        cells += [f"{row[name]:.3f}" for name in ("dice", "precision", "recall", "f1")] + [row["merged"]]
        print("| " + " | ".join(str(cell) for cell in cells) + " |")


def summarize(rows: list[dict]) -> dict:
    """Per arm and score: the mean and the standard deviation over seeds (0 with one seed)."""
    summary = {}
    for arm in dict.fromkeys(row["arm"] for row in rows):
        values = {name: [row[name] for row in rows if row["arm"] == arm] for name in SCORES}
        summary[arm] = {
            name: {
                "mean": float(np.mean(found)),
                "std": float(np.std(found, ddof=1)) if len(found) > 1 else 0.0,
            }
            for name, found in values.items()
        }
    return summary


def time_weight_maps(split: instances.InstanceSplit, info: dict) -> None:
    """Times ``instances.targets`` per training image; prints and writes WEIGHT_MAPS."""
    milliseconds = []
    for labels in split.instances:
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            instances.targets(labels)
            runs.append(time.perf_counter() - start)
        milliseconds.append(1000 * min(runs))
    nuclei = [np.unique(labels).size - 1 for labels in split.instances]
    size = split.instances[0].shape
    result = {
        "machine": info,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "images": len(milliseconds),
        "image_size": list(size),
        "nuclei_median": float(np.median(nuclei)),
        "nuclei_max": int(max(nuclei)),
        "ms_median": round(float(np.median(milliseconds)), 2),
        "ms_max": round(max(milliseconds), 2),
    }
    print("| images | size | nuclei per image (median / max) | ms per image (median / slowest) |")
    print("|---|---|---|---|")
    print(
        f"| {result['images']} | {size[1]}x{size[0]} | {result['nuclei_median']:g} / {result['nuclei_max']} "
        f"| {result['ms_median']:.1f} / {result['ms_max']:.1f} |"
    )
    WEIGHT_MAPS.parent.mkdir(exist_ok=True)
    WEIGHT_MAPS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten to {WEIGHT_MAPS}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="training time per arm and seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--crop-size", type=int, default=128, help="training windows and prediction tiles")
    parser.add_argument("--base-filters", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--arms",
        nargs="+",
        choices=list(ARMS),
        default=["union", "separated", "weights"],
        help="which arms (see the docstring)",
    )
    parser.add_argument("--weight-maps-only", action="store_true", help="time the weight maps, train nothing")
    arguments = parser.parse_args()
    info = machine.describe()
    started = time.perf_counter()
    root = datasets.nuclei()
    native_size = instances.read_instances(next((root / "instances").glob("*.png"))).shape[0]
    splits = {
        split: instances.load_split(root, image_size=native_size, split=split, seed=0, progress=False)
        for split in ("train", "validation")
    }
    if arguments.weight_maps_only:
        time_weight_maps(splits["train"], info)
        return
    nuclei = sum(np.unique(labels).size - 1 for labels in splits["validation"].instances)
    print(
        f"{len(splits['train'].names)} training and {len(splits['validation'].names)} validation images "
        f"({nuclei} nuclei) of {native_size}x{native_size}; "
        f"{arguments.minutes:g} min of training per arm and seed",
        flush=True,
    )
    rows = []
    for seed in arguments.seeds:
        for arm in arguments.arms:
            network, seconds, steps, epochs = train_arm(arm, splits["train"], arguments, seed)
            row = {"seed": seed, "arm": ARMS[arm], "training_seconds": round(seconds, 1), "steps": steps}
            row |= {"epochs": round(epochs, 2), **score(network, splits["validation"])}
            rows.append(
                {name: round(value, 4) if isinstance(value, float) else value for name, value in row.items()}
            )
            print(
                f"seed {seed}, {ARMS[arm]}: {steps} steps, Dice {row['dice']:.3f}, F1 {row['f1']:.3f}",
                flush=True,
            )
            keras.backend.clear_session()
    print_table(rows, nuclei)
    summary = summarize(rows)
    print(f"\nMean (standard deviation) over {len(arguments.seeds)} seed(s):")
    print("| arm | epochs | pixel Dice | precision | recall | F1 | merged |")
    print("|---|---|---|---|---|---|---|")
    for arm, values in summary.items():
        cells = [f"{values[name]['mean']:.3f} ({values[name]['std']:.3f})" for name in SCORES[:4]]
        epochs, merged = values["epochs"], values["merged"]
        merged_cell = f"{merged['mean']:.1f} ({merged['std']:.1f})"
        print(f"| {arm} | {epochs['mean']:.1f} | {' | '.join(cells)} | {merged_cell} |")
    print(
        "\nA difference between two arms smaller than the standard deviation over seeds is noise"
        + (
            " (with one seed there is no spread to compare with: run several)."
            if len(arguments.seeds) < 2
            else "."
        )
    )
    results = {
        "machine": info,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "settings": {
            **vars(arguments),
            "augmentation": "instances.SEPARATION_SAFE" if arguments.augment else "none",
            "train_images": len(splits["train"].names),
            "validation_images": len(splits["validation"].names),
            "validation_nuclei": nuclei,
            "image_size": native_size,
        },
        "wall_seconds": round(time.perf_counter() - started, 1),
        "rows": rows,
        "summary": summary,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {RESULTS} ({results['wall_seconds']:.0f} s in all)")


if __name__ == "__main__":
    main()
