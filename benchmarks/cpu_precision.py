"""Training images/s on the CPU in float32 and mixed bfloat16, with and without bfloat16 instructions.

    .venv/bin/python benchmarks/cpu_precision.py [--widths 16 32] [--steps 24] [--repeats 3]

Some CPUs compute bfloat16 natively (the ``avx512_bf16`` or ``amx_bf16`` flags of ``/proc/cpuinfo``: AMD Zen 4
and newer, Intel Xeon Sapphire Rapids and newer); on the others TensorFlow emulates it. Each row trains
``build_unet(base_filters=W, standardize=True)`` at 128x128, batch 16 (the workshop profile's network at
W=16), compiled by ``training.compile_unet`` (Adam, cross-entropy + Dice, the series' metrics), on random
arrays, in a fresh process: one warm-up epoch, then ``--steps`` timed steps; float32 and bfloat16 take
turns, ``--repeats`` times, and each figure is the median (a shared machine's speed drifts).
``ONEDNN_MAX_CPU_ISA`` caps the instructions oneDNN (TensorFlow's CPU kernels) may use, so one machine
measures both kinds of CPU: ``AVX512_CORE_VNNI`` leaves bfloat16 out, ``ALL`` (the default) allows what the
CPU has. Prints a table and writes benchmarks/results/cpu_precision.json. Run on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "cpu_precision.json"
ISAS = {"ALL": "every instruction the CPU has", "AVX512_CORE_VNNI": "AVX-512 without bfloat16"}
ONE_RUN = """
import json, sys, time
import keras, numpy as np
from unet_helpers import model, training
policy, width, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
keras.mixed_precision.set_global_policy(policy)
network = model.build_unet((128, 128, 3), base_filters=width, standardize=True)
training.compile_unet(network, num_classes=2)
rng = np.random.default_rng(0)
images = rng.random((16 * steps, 128, 128, 3), dtype="float32")
masks = (rng.random((16 * steps, 128, 128, 1)) > 0.8).astype("float32")
network.fit(images[:32], masks[:32], batch_size=16, epochs=1, verbose=0)  # traces the step
start = time.perf_counter()
network.fit(images, masks, batch_size=16, epochs=1, verbose=0)
print(json.dumps({"images_per_second": len(images) / (time.perf_counter() - start)}))
"""


def cpu_description() -> tuple[str, list[str]]:
    """The CPU's model name and its bfloat16 flags, from /proc/cpuinfo (Linux; elsewhere the machine type)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.machine(), []
    name = next(
        (line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), ""
    )
    return name or platform.machine(), sorted(set(info.split()) & {"avx512_bf16", "amx_bf16"})


def measure(policy: str, width: int, steps: int, isa: str) -> float:
    environment = {**os.environ, "ONEDNN_MAX_CPU_ISA": isa, "TF_CPP_MIN_LOG_LEVEL": "2"}
    finished = subprocess.run(
        [sys.executable, "-c", ONE_RUN, policy, str(width), str(steps)],
        capture_output=True,
        text=True,
        env=environment,
        check=True,
    )
    return json.loads(finished.stdout.strip().splitlines()[-1])["images_per_second"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[16], help="base_filters to measure")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each precision per row (median)")
    parser.add_argument("--steps", type=int, default=24, help="timed steps of 16 images per row")
    args = parser.parse_args()
    rows, (cpu, flags) = [], cpu_description()
    print(f"CPU: {cpu}, {os.cpu_count()} cores, bfloat16 flags: {', '.join(flags) or 'none'}")
    print(f"{'instructions':<18} {'width':>5} {'float32':>9} {'bfloat16':>9} {'ratio':>6}  (images/s)")
    for isa in ISAS:
        for width in args.widths:
            runs = {"float32": [], "mixed_bfloat16": []}
            for _ in range(args.repeats):
                for policy, speeds in runs.items():
                    speeds.append(measure(policy, width, args.steps, isa))
            float32, bfloat16 = (statistics.median(speeds) for speeds in runs.values())
            row = {"isa": isa, "width": width, "float32": float32, "mixed_bfloat16": bfloat16, "runs": runs}
            rows.append(row)
            print(f"{isa:<18} {width:>5} {float32:>9.1f} {bfloat16:>9.1f} {bfloat16 / float32:>6.2f}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "date": time.strftime("%Y-%m-%d"),
                "cpu": cpu,
                "cpu_cores": os.cpu_count(),
                "bfloat16_flags": flags,
                "steps": args.steps,
                "repeats": args.repeats,
                "isa_meaning": ISAS,
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
