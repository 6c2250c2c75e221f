"""What a benchmark ran on: cores, processor, versions and the load before it started (for results/*.json).

    .venv/bin/python benchmarks/machine.py

run on its own, prints that and how fast this machine trains now: plain ``model.fit`` of ``build_unet()``
with its defaults (the classic 64-filter network) compiled by ``training.compile_unet``, at 128x128, batches
of 8: the median images/s of three epochs of 32 images after a warm-up epoch (1 to 3 minutes on 2
cores). Shared machines differ from day to day: compare a notebook's time with the rate of the day it was
measured (it is ``train_speed.py``'s "model.fit on NumPy arrays" row).
"""

from __future__ import annotations

import os
import platform

import keras
import numpy as np
import tensorflow as tf


def describe() -> dict:
    """The machine and library versions, and the 1-minute load average now (other processes' share)."""
    return {
        "cpu_count": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "gpus_visible": len(tf.config.list_physical_devices("GPU")),
        "load_average_1min_before": round(os.getloadavg()[0], 2),
    }


def training_rate(images: int = 32) -> float:
    """Images/s of ``model.fit`` of the classic UNet (128x128, batches of 8), the median of 3 epochs.

    The same measurement as ``train_speed.py``'s "model.fit on NumPy arrays" row (``plain_fit_rate``):
    4 epochs, the first (which traces the step) left out.
    """
    from train_speed import plain_fit_rate

    rng = np.random.default_rng(0)
    x = rng.random((images, 128, 128, 3), np.float32)
    y = (rng.random((images, 128, 128, 1)) > 0.8).astype(np.float32)
    return plain_fit_rate(x, y, batch_size=8, epochs=4)


if __name__ == "__main__":
    for name, value in describe().items():
        print(f"{name:26s} {value}")
    print(f"{'classic UNet, model.fit':26s} {training_rate():.1f} images/s (128x128, batches of 8)")
