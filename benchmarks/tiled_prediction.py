"""Tiled prediction: megapixels/s of ``inference.predict_tiled``, and its distance from a whole-image one.

    .venv/bin/python benchmarks/tiled_prediction.py [--sizes 512 1024] [--tile-size 128] [--overlaps 32 0]

The model is ``build_unet((None, None, 3))`` with its defaults (the classic 64-filter network), untrained
(seeded), so that one network can predict an image both in tiles and whole. Each image is a synthetic
micrograph (``synthetic.make_sample``) of the given size. For each size and overlap: the median seconds of
``--repeats`` runs of ``predict_tiled`` (after one warm-up run, which traces the model) and its megapixels
per second, the same for one whole-image call of the model (on the image mirrored as the tiles see it, so
that only the tiling differs), and the absolute difference between the two probability maps, maximum and
mean, over all pixels and within 4 pixels of a tile edge. An untrained UNet predicts about 0.5 everywhere
(the ``spread`` column: the standard deviation of the whole-image probabilities), which keeps its
differences small; ``tests/test_inference.py`` measures a trained one. Prints a table and writes
benchmarks/results/tiled_prediction.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from unet_helpers import inference, model, synthetic

RESULTS = Path(__file__).resolve().parent / "results" / "tiled_prediction.json"
SEAM_DISTANCE = 4  # pixels either side of a tile edge


def median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(
    network: keras.Model, image: np.ndarray, *, tile_size: int, overlap: int, batch_size: int, repeats: int
) -> dict:
    options = {"tile_size": tile_size, "overlap": overlap, "batch_size": batch_size, "progress": False}
    grid = inference.tile_grid(network, image.shape, tile_size=tile_size, overlap=overlap)
    tiled = inference.predict_tiled(network, image, **options)  # the warm-up: traces the model
    tiled_seconds = median_seconds(lambda: inference.predict_tiled(network, image, **options), repeats)
    (top, _), (left, _) = grid.padding
    mirrored = np.pad(image, (*grid.padding, (0, 0)), mode="reflect")[np.newaxis]
    height, width = image.shape[:2]
    whole = keras.ops.convert_to_numpy(
        network(mirrored, training=False)
    )[  # also the warm-up
        0, top : top + height, left : left + width
    ]
    whole_seconds = median_seconds(lambda: network(mirrored, training=False), repeats)
    difference = np.abs(tiled - whole)[..., 0]
    near = grid.near_seams(SEAM_DISTANCE)
    megapixels = height * width / 1e6
    return {
        "size": f"{height}x{width}",
        "overlap": overlap,
        "tiles": grid.num_tiles,
        "tiled_seconds": round(tiled_seconds, 3),
        "tiled_megapixels_per_s": round(megapixels / tiled_seconds, 4),
        "whole_seconds": round(whole_seconds, 3),
        "whole_megapixels_per_s": round(megapixels / whole_seconds, 4),
        "max_difference": float(f"{difference.max():.3g}"),
        "mean_difference": float(f"{difference.mean():.3g}"),
        "seam_max_difference": float(f"{difference[near].max():.3g}"),
        "seam_mean_difference": float(f"{difference[near].mean():.3g}"),
        "spread": float(f"{whole.std():.3g}"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--tile-size", type=int, default=128)
    parser.add_argument("--overlaps", type=int, nargs="+", default=[32, 0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--base-filters", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    network = model.build_unet((None, None, 3), base_filters=args.base_filters)
    rows = []
    for size in args.sizes:
        image = synthetic.make_sample(seed=0, index=0, image_size=size)[0].astype(np.float32) / 255
        for overlap in args.overlaps:
            rows.append(
                measure(
                    network,
                    image,
                    tile_size=args.tile_size,
                    overlap=overlap,
                    batch_size=args.batch_size,
                    repeats=args.repeats,
                )
            )
            print(f"measured {rows[-1]['size']}, overlap {overlap}", flush=True)

    print(
        f"\n| image | overlap | tiles ({args.tile_size}px) | tiled MP/s | whole-image MP/s | max diff | "
        f"mean diff | max diff near seams | mean diff near seams | spread |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        speeds = f"{row['tiled_megapixels_per_s']:.3f} | {row['whole_megapixels_per_s']:.3f}"
        differences = " | ".join(
            f"{row[key]:.2g}"
            for key in ("max_difference", "mean_difference", "seam_max_difference", "seam_mean_difference")
        )
        image = f"{row['size']} | {row['overlap']} | {row['tiles']}"
        print(f"| {image} | {speeds} | {differences} | {row['spread']:.2g} |")
    RESULTS.parent.mkdir(exist_ok=True)
    machine = {
        "cores": os.cpu_count(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "gpus": len(tf.config.list_physical_devices("GPU")),
    }
    settings = {**vars(args), "seam_distance": SEAM_DISTANCE, "parameters": network.count_params()}
    RESULTS.write_text(json.dumps({"machine": machine, "settings": settings, "rows": rows}, indent=2) + "\n")
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
