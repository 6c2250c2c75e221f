"""How many images per second the augmentation delivers on this machine's CPU.

Measures, with batches of 32:

- each transform alone, and the default pipeline, as ``augment_batch`` in a ``tf.function`` (all cores
  work on one batch), at 128x128, for 1 and 3 channels;
- the default pipeline inside a ``tf.data`` pipeline (``augment_dataset`` over batches cached in memory,
  batches augmented in parallel, prefetched), at 128x128 and 256x256: the most a training input
  pipeline can deliver with augmentation on, before decoding or reading files costs anything;
- the same pipeline without augmentation, for comparison.

Warm-up (tracing, the first batches) is excluded; each figure is the median of several timed runs.
Prints a Markdown table and writes ``benchmarks/results/augment_speed.json`` with the machine's details.
Other programs running at the same time slow it down: the JSON records the load average.

Run from the project folder: ``.venv/bin/python benchmarks/augment_speed.py`` (about two minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import machine
import numpy as np
import tensorflow as tf

from unet_helpers.augment import GEOMETRIC, PHOTOMETRIC, AugmentOptions, augment_batch, augment_dataset

BATCH_SIZE = 32
RESULTS = Path(__file__).resolve().parent / "results" / "augment_speed.json"


def random_batch(size: int, channels: int, count: int = BATCH_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Random images in [0, 1] and binary masks; the content does not change the cost."""
    rng = np.random.default_rng(0)
    images = rng.random((count, size, size, channels), dtype=np.float32)
    masks = (rng.random((count, size, size, 1)) > 0.5).astype(np.float32)
    return images, masks


def median_rate(step, *, warmup: int, batches: int, runs: int) -> float:
    """Images per second: the median over ``runs`` timed runs of ``batches`` calls of ``step``."""
    for _ in range(warmup):
        step()
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(batches):
            step()
        rates.append(batches * BATCH_SIZE / (time.perf_counter() - start))
    return statistics.median(rates)


def function_rate(options: AugmentOptions, size: int, channels: int, *, batches: int, runs: int) -> float:
    """augment_batch on one batch in a tf.function, a new seed on every call."""
    images, masks = (tf.constant(array) for array in random_batch(size, channels))
    augment = tf.function(lambda seed: augment_batch(images, masks, seed=seed, options=options))
    seeds = iter(tf.data.Dataset.random(seed=0).batch(2).repeat())
    return median_rate(lambda: augment(next(seeds)), warmup=3, batches=batches, runs=runs)


def pipeline_rate(
    options: AugmentOptions | None, size: int, channels: int, *, batches: int, runs: int
) -> float:
    """A tf.data pipeline over cached batches, with augment_dataset (or none), prefetched."""
    images, masks = random_batch(size, channels, count=8 * BATCH_SIZE)
    dataset = tf.data.Dataset.from_tensor_slices((images, masks)).cache().repeat().batch(BATCH_SIZE)
    if options is not None:
        dataset = augment_dataset(dataset, seed=0, options=options)
    iterator = iter(dataset.prefetch(tf.data.AUTOTUNE))
    return median_rate(lambda: next(iterator), warmup=10, batches=batches, runs=runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per figure (the median is kept)")
    parser.add_argument("--batches", type=int, default=10, help="batches per timed run")
    args = parser.parse_args()
    info = machine.describe()
    rows = []

    def measure(name: str, kind: str, size: int, channels: int, rate: float) -> None:
        rows.append(
            {"what": name, "how": kind, "size": size, "channels": channels, "images_per_s": round(rate)}
        )
        print(f"{name:32s} {kind:10s} {size:4d}x{size:<4d} C={channels}  {rate:8.0f} images/s", flush=True)

    timing = {"batches": args.batches, "runs": args.runs}
    for channels in (1, 3):
        for name in GEOMETRIC + PHOTOMETRIC:
            rate = function_rate(AugmentOptions.only(name), 128, channels, **timing)
            measure(name, "function", 128, channels, rate)
        measure(
            "all geometric",
            "function",
            128,
            channels,
            function_rate(AugmentOptions.only(*GEOMETRIC), 128, channels, **timing),
        )
        measure(
            "all photometric",
            "function",
            128,
            channels,
            function_rate(AugmentOptions.only(*PHOTOMETRIC), 128, channels, **timing),
        )
        measure(
            "default pipeline",
            "function",
            128,
            channels,
            function_rate(AugmentOptions(), 128, channels, **timing),
        )
    for size in (128, 256):
        for channels in (1, 3):
            measure(
                "tf.data, no augmentation",
                "tf.data",
                size,
                channels,
                pipeline_rate(None, size, channels, **timing),
            )
            measure(
                "tf.data, default pipeline",
                "tf.data",
                size,
                channels,
                pipeline_rate(AugmentOptions(), size, channels, **timing),
            )
    info["load_average_1min_after"] = round(os.getloadavg()[0], 2)

    print("\n| transform | 128x128, 1 channel | 128x128, 3 channels |\n|---|---:|---:|")
    by_key = {(row["what"], row["how"], row["size"], row["channels"]): row["images_per_s"] for row in rows}
    for name in (*GEOMETRIC, *PHOTOMETRIC, "all geometric", "all photometric", "default pipeline"):
        print(f"| {name} | {by_key[name, 'function', 128, 1]:,} | {by_key[name, 'function', 128, 3]:,} |")
    print("\n| tf.data pipeline over cached batches | 1 channel | 3 channels |\n|---|---:|---:|")
    for size in (128, 256):
        for name in ("tf.data, no augmentation", "tf.data, default pipeline"):
            print(
                f"| {name.removeprefix('tf.data, ')}, {size}x{size} | {by_key[name, 'tf.data', size, 1]:,} "
                f"| {by_key[name, 'tf.data', size, 3]:,} |"
            )
    print(
        f"\nimages/s, batches of {BATCH_SIZE}, median of {args.runs} runs of {args.batches} batches; "
        f"{info['usable_cores']} cores, TensorFlow {info['tensorflow']}, load average "
        f"{info['load_average_1min_before']} before, {info['load_average_1min_after']} after."
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    result = {"machine": info, "batch_size": BATCH_SIZE, **timing, "results": rows}
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"Wrote {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}")


if __name__ == "__main__":
    main()
