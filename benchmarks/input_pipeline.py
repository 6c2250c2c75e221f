"""Input pipeline images/s against the default UNet's training images/s, measured in one run.

    .venv/bin/python benchmarks/input_pipeline.py [--sizes 128 256] [--num-samples 512]

For each image size: the embedded dataset is generated into a temporary folder, then
- the pipeline of ``unet_helpers.data.load_dataset`` (training split, batches of 32) is iterated: the first
  epoch decodes from disk (cold); the steady state reads the in-memory cache, without and with the default
  augmentation of ``unet_helpers.augment`` (``data.images_per_second``);
- ``build_unet()`` with its defaults (the classic 64-filter network) trains with ``model.fit`` on in-memory
  NumPy arrays, batches of 8.
The ratio pipeline / training says how many such models one CPU pipeline could feed. Each steady-state
figure is the median of several timed runs after a warm-up. Prints a table and writes
benchmarks/results/input_pipeline.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from unet_helpers import data, model, synthetic

RESULTS = Path(__file__).resolve().parent / "results" / "input_pipeline.json"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def training_rate(image_size: int, *, batch_size: int = 8, steps: int = 6, repeats: int = 3) -> float:
    """Median images/s of ``model.fit`` for the default UNet on in-memory arrays."""
    network = model.build_unet(input_shape=(image_size, image_size, 3))
    network.compile(optimizer="adam", loss="binary_crossentropy")
    rng = np.random.default_rng(0)
    images = rng.random((batch_size * steps, image_size, image_size, 3), dtype=np.float32)
    masks = (rng.random((batch_size * steps, image_size, image_size, 1)) > 0.5).astype(np.float32)
    network.fit(images, masks, batch_size=batch_size, epochs=1, verbose=0)  # warm-up: tracing, allocation
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        network.fit(images, masks, batch_size=batch_size, epochs=1, verbose=0)
        rates.append(len(images) / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--num-samples", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one timed run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per figure (the median is kept)")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for image_size in args.sizes:
            root = synthetic.generate_dataset(
                Path(folder) / f"cells_{image_size}",
                num_samples=args.num_samples,
                image_size=image_size,
                progress=False,
            )
            loaded = {
                augment: data.load_dataset(
                    root, image_size=image_size, batch_size=args.batch_size, augment=augment, progress=False
                )
                for augment in (False, True)
            }
            cold = data.images_per_second(loaded[False], first_epoch=True)
            cached = statistics.median(
                data.images_per_second(loaded[False], min_seconds=args.seconds) for _ in range(args.repeats)
            )
            augmented = statistics.median(
                data.images_per_second(loaded[True], min_seconds=args.seconds) for _ in range(args.repeats)
            )
            train = training_rate(image_size)
            rows.append(
                {
                    "image_size": image_size,
                    "train_images": sum(int(images.shape[0]) for images, _ in loaded[False]),
                    "pipeline_first_epoch_images_per_s": round(cold, 1),
                    "pipeline_cached_images_per_s": round(cached, 1),
                    "pipeline_augmented_images_per_s": round(augmented, 1),
                    "default_unet_training_images_per_s": round(train, 2),
                    "ratio_augmented_pipeline_to_training": round(augmented / train, 1),
                }
            )
            print(f"{image_size}px done", flush=True)

    header = (
        "| image size | first epoch (decode) | cached | cached + default augmentation "
        "| default UNet training | ratio |"
    )
    print("\n" + header + "\n|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['image_size']}x{row['image_size']} "
            f"| {row['pipeline_first_epoch_images_per_s']:,.0f}/s "
            f"| {row['pipeline_cached_images_per_s']:,.0f}/s "
            f"| {row['pipeline_augmented_images_per_s']:,.0f}/s "
            f"| {row['default_unet_training_images_per_s']:.1f}/s "
            f"| {row['ratio_augmented_pipeline_to_training']:,.0f}x |"
        )
    RESULTS.parent.mkdir(exist_ok=True)
    machine = {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "tensorflow": tf.__version__,
        "gpu": [device.name for device in tf.config.list_physical_devices("GPU")],
    }
    settings = {key: getattr(args, key) for key in ("num_samples", "batch_size", "seconds", "repeats")}
    RESULTS.write_text(json.dumps({"machine": machine, "settings": settings, "rows": rows}, indent=2) + "\n")
    print(
        f"\nwritten to {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}"
    )


if __name__ == "__main__":
    main()
