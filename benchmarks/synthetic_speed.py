"""How fast the embedded dataset is generated: images/s written to disk as PNG files.

    .venv/bin/python benchmarks/synthetic_speed.py

OpenCV is limited to one thread, so the figures are for one core. Prints a table and writes
benchmarks/results/synthetic_speed.json.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from unet_helpers.synthetic import generate_dataset

RESULTS = Path(__file__).resolve().parent / "results" / "synthetic_speed.json"
# (num_samples, image_size, num_classes): the workshop profile's dataset, its 3-class variant, the full one's.
CASES = [(512, 128, 2), (512, 128, 3), (2000, 256, 2)]


def main() -> None:
    cv2.setNumThreads(1)
    rows = []
    for num_samples, image_size, num_classes in CASES:
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder) / "dataset"
            start = time.perf_counter()
            generate_dataset(
                root, num_samples=num_samples, image_size=image_size, num_classes=num_classes, progress=False
            )
            seconds = time.perf_counter() - start
            megabytes = sum(path.stat().st_size for path in root.rglob("*.png")) / 1e6
        rows.append(
            {
                "num_samples": num_samples,
                "image_size": image_size,
                "num_classes": num_classes,
                "seconds": round(seconds, 2),
                "images_per_s": round(num_samples / seconds),
                "megabytes": round(megabytes, 1),
            }
        )
    print("| images | size | classes | seconds | images/s | MB on disk |\n|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['num_samples']} | {row['image_size']}x{row['image_size']} | {row['num_classes']} "
            f"| {row['seconds']} | {row['images_per_s']} | {row['megabytes']} |"
        )
    RESULTS.parent.mkdir(exist_ok=True)
    machine = {"cores": os.cpu_count(), "opencv": cv2.__version__, "numpy": np.__version__}
    RESULTS.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n")
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
