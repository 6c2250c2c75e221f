"""What a benchmark ran on: cores, processor, versions and the load before it started (for results/*.json)."""

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
