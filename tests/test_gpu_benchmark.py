"""benchmarks/gpu.py: its reduced run prints every row with a unit (so the GPU run cannot rot unseen), and the
arithmetic it divides by is counted right."""

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu.py"
UNITS = {"TFLOP/s", "images/s", "MiB", "s", "min"}


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_training_flops_count_each_convolution_once_per_output_position():
    gpu = load_script()
    inputs = keras.Input((16, 16, 3))
    features = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    pooled = keras.layers.MaxPooling2D()(features)
    up = keras.layers.Conv2DTranspose(4, 2, strides=2)(pooled)
    network = keras.Model(inputs, keras.layers.Conv2D(1, 1)(up))
    forward = (
        2 * 16 * 16 * (3 * 3 * 3 * 8)  # the 3x3 convolution, at each of 16x16 outputs
        + 2 * 8 * 8 * (2 * 2 * 8 * 4)  # the transposed one, at each of its 8x8 inputs
        + 2 * 16 * 16 * (1 * 1 * 4 * 1)
    )
    assert gpu.training_flops_per_image(network) == 3 * forward


def test_training_flops_of_the_classic_unet_follow_from_its_parameters():
    """Every kernel weight of a stride-1 convolution is used once per pixel of its level; a cross-check
    from the parameter counts per level (the classic UNet at 128x128: 7,697,345 parameters)."""
    gpu = load_script()
    from unet_helpers.model import build_unet

    network = build_unet()
    flops = gpu.training_flops_per_image(network)
    kernels = sum(math.prod(layer.kernel.shape) for layer in network.layers if hasattr(layer, "kernel"))
    assert kernels == 7_697_345 - sum(
        math.prod(layer.bias.shape) for layer in network.layers if getattr(layer, "bias", None) is not None
    )
    # at most every weight at all 128x128 positions, at least at the bottleneck's 16x16
    assert 3 * 2 * 16 * 16 * kernels < flops < 3 * 2 * 128 * 128 * kernels


@pytest.mark.parametrize("device, factor", [("NVIDIA H200", 15.2), ("Tesla T4", 1.0), ("Some GPU", None)])
def test_scaling_to_a_t4_takes_the_larger_ratio_of_published_peaks(device, factor):
    result = load_script().t4_factor(device)
    assert result == factor if factor is None else result == pytest.approx(factor, abs=0.05)


def test_reduced_run_prints_every_row_with_its_unit(tmp_path):
    results = tmp_path / "gpu.json"
    finished = subprocess.run(
        [sys.executable, str(SCRIPT), "--reduced", "--results", str(results)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in finished.stdout.splitlines()
        if line.startswith("| ") and not line.startswith("| part")
    ]
    parts = {row[0] for row in rows}
    assert {"1 ceiling", "2 precision", "3 input", "4 memory", "5 full profile", "time"} <= parts
    for part, measurement, value, unit, _ in rows:
        assert unit in UNITS, f"{measurement}: unit {unit!r}"
        if part != "time":  # a part's seconds may round to 0.00; a measurement may not
            assert float(value.replace(",", "")) > 0, f"{measurement}: {value}"
    precision_rows = [row[1] for row in rows if row[0] == "2 precision"]
    assert [row.split(",")[0] for row in precision_rows] == list(load_script().SWITCHES)
    assert "Device: CPU" in finished.stdout
    assert finished.stdout.count("Check: ") == 2 and "Fastest at 32x32: " in finished.stdout
    written = json.loads(results.read_text())
    assert written["reduced"] is True and len(written["rows"]) == len(rows)
