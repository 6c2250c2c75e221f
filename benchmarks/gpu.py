"""What a GPU changes, in one run of at most 8 minutes: the ceiling, precision and XLA, the input pipeline,
memory, and the `full` profile's epochs.

    make gpu-benchmark                        # = .venv/bin/python benchmarks/gpu.py
    .venv/bin/python benchmarks/gpu.py --reduced   # tiny sizes, about a minute on a CPU (the tests run it)
    .venv/bin/python benchmarks/gpu.py --parts 4 5  # only some parts, after a lease cut a run short

On one GPU (the first TensorFlow sees) it measures, and prints as a table with the device named:

1. **The ceiling**: the float32 and bfloat16 rates of a square matrix product (8192, 20 products after
   3 warm-ups), in TFLOP/s.
2. **Training images/s** of the classic UNet (``build_unet()``'s 64 filters) at 128x128 and 256x256,
   batches of the ``full`` profile's 16, for float32, mixed float16, mixed float16 + XLA and mixed bfloat16 +
   XLA: ``model.fit`` on one batch held on the device, 30 steps after the steps that trace and compile.
   Each row's share of the ceiling is its arithmetic (3 x the forward pass's convolutions, the usual
   estimate of a training step; :func:`training_flops_per_image`) per second over the matrix-product rate
   of its precision (bfloat16's for both 16-bit kinds). The row the ``auto`` switches pick is marked.
3. **The input pipeline** with the default augmentation (``data.load_dataset(augment=True)`` on the
   embedded nuclei at 256x256): the images/s tf.data produces on the CPU alone (all cores, and 2 threads
   as on Colab), against training with it, and against training on unaugmented batches that
   ``augment_layer.RandomAugment`` augments on the GPU inside the training step.
4. **Memory per batch size** (8 to 64, 256x256, the auto switches): the peak GPU memory of a training
   step (``tf.config.experimental.get_memory_info``), beside the layer outputs' size it follows from.
5. **One epoch of the ``full`` profile** of notebook 04 (the embedded nuclei) and notebook 06 (its
   generated 3-class dataset, what it trains on without Oxford-IIIT Pet), through ``training.train_unet``
   for 2 epochs: the second epoch's seconds, and the notebook's training time that follows (its 50 epochs,
   an upper bound: early stopping can end it sooner), also scaled to a T4 by published peak figures.

``--reduced`` runs every part at tiny sizes (32x32, width 4, a few steps), so that it prints every row in
seconds on a CPU; its figures mean nothing. Results go to benchmarks/results/gpu.json (``--results``; a
reduced run writes only where told). The table ends with the seconds each part took, then the checks of
issue 16 (mixed precision + XLA at least 2x float32 at 256x256 and 40% of the bfloat16 ceiling; notebooks 04
and 06 under 30 minutes on a T4) and the fastest setting against the ``auto`` switches' choice.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import os
import platform
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from unet_helpers import augment_layer, config, data, datasets, devices, model, synthetic, training

RESULTS = Path(__file__).resolve().parent / "results" / "gpu.json"
# Published dense float16 tensor-core TFLOP/s and memory GB/s (no sparsity), to scale an epoch to a T4:
# by the larger of the two ratios, since a UNet's step is bound by arithmetic in places, by memory in others.
PUBLISHED = {
    "T4": (65, 320),
    "L4": (121, 300),
    "A10": (125, 600),
    "V100": (125, 900),
    "A100": (312, 2039),
    "H100": (989, 3350),
    "H200": (989, 4800),
}
SWITCHES = {  # row label: (Keras dtype policy, XLA)
    "float32": ("float32", False),
    "mixed float16": ("mixed_float16", False),
    "mixed float16 + XLA": ("mixed_float16", True),
    "mixed bfloat16 + XLA": ("mixed_bfloat16", True),
}


@dataclasses.dataclass(frozen=True)
class Sizes:
    """What one run measures at: the GPU's sizes, or ``--reduced``'s tiny ones."""

    matmul: int = 8192
    image_sizes: tuple[int, ...] = (128, 256)
    batch_size: int = 16
    base_filters: int = 64
    steps: int = 30
    memory_batches: tuple[int, ...] = (8, 16, 32, 64)
    pipeline_batches: int = 40
    profile: config.Profile = config.PROFILES["full"]
    limit: int | None = None  # nuclei read (all of them unless given)


REDUCED = Sizes(
    matmul=256,
    image_sizes=(32,),
    batch_size=2,
    base_filters=4,
    steps=2,
    memory_batches=(2, 4),
    pipeline_batches=3,
    profile=dataclasses.replace(config.PROFILES["full"], image_size=32, base_filters=4, num_samples=20),
    limit=20,
)


class Table:
    """Rows of (part, measurement, value, unit, note), printed as they come and kept for the results file,
    each with the seconds since the row before (what measuring it took)."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.last = time.perf_counter()

    def add(self, part: str, measurement: str, value: float, unit: str, note: str = "") -> float:
        now, self.last = self.last, time.perf_counter()
        self.rows.append(
            {
                "part": part,
                "measurement": measurement,
                "value": value,
                "unit": unit,
                "note": note,
                "seconds": round(self.last - now, 1),
            }
        )
        shown = f"{value:,.{2 if abs(value) < 10 else 1 if abs(value) < 100 else 0}f}"
        print(f"| {part} | {measurement} | {shown} | {unit} | {note} |", flush=True)
        return value


def matmul_rate(size: int, dtype: tf.DType, products: int = 20) -> float:
    """FLOP/s of ``size`` x ``size`` matrix products in ``dtype`` (each ``2 * size**3``), 3 warm-ups first."""
    a = tf.random.normal((size, size), dtype=tf.float32)
    a, b = tf.cast(a, dtype), tf.cast(tf.transpose(a), dtype)
    for _ in range(3):
        c = tf.linalg.matmul(a, b)
    float(c[0, 0])  # the GPU runs ahead of Python: reading a value waits for it
    start = time.perf_counter()
    for _ in range(products):
        c = tf.linalg.matmul(a, b)
    float(c[0, 0])
    return products * 2 * size**3 / (time.perf_counter() - start)


def training_flops_per_image(network: keras.Model) -> float:
    """Floating-point operations of one training step, per image: 3 x the forward pass's convolutions.

    A convolution's forward pass multiplies and adds each kernel weight once per output position (per
    input position for a transposed one: the smaller grid), 2 operations each; the backward pass takes
    about twice that (gradients of the inputs and of the weights). Pooling, activations and the loss add
    under 1% and are left out.
    """
    total = 0
    for layer in network.layers:
        if isinstance(layer, keras.layers.Conv2D | keras.layers.Conv2DTranspose):
            positions = min(math.prod(layer.input.shape[1:3]), math.prod(layer.output.shape[1:3]))
            total += 2 * math.prod(layer.kernel.shape) * positions
    return 3.0 * total


def auto_switches() -> tuple[str, bool]:
    """(dtype policy, XLA) that ``train_unet`` picks on this machine by default."""
    return devices.resolve_mixed_precision("auto"), devices.resolve_jit_compile("auto")


def compiled_unet(
    image_size: int, sizes: Sizes, switches: tuple[str, bool], model_class: type = keras.Model
) -> keras.Model:
    """The classic UNet at ``sizes.base_filters`` under ``switches`` (dtype policy, XLA), compiled as
    the series compiles it."""
    keras.backend.clear_session()
    gc.collect()
    policy, xla = switches
    with devices.dtype_policy(policy):
        unet = model.build_unet((image_size, image_size, 3), base_filters=sizes.base_filters)
    network = unet if model_class is keras.Model else model_class(inputs=unet.inputs, outputs=unet.outputs)
    return training.compile_unet(network, num_classes=2, jit_compile=xla)


def fit_rate(network: keras.Model, batches: tf.data.Dataset, steps: int, batch_size: int) -> float:
    """Training images/s of ``steps`` steps of ``model.fit`` after one call that traces and compiles."""
    network.fit(batches, steps_per_epoch=2, epochs=1, verbose=0, shuffle=False)
    start = time.perf_counter()
    network.fit(batches, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    return steps * batch_size / (time.perf_counter() - start)


def one_batch(image_size: int, batch_size: int) -> tf.data.Dataset:
    """One random batch repeated: the model's speed without an input pipeline."""
    rng = np.random.default_rng(0)
    images = rng.random((batch_size, image_size, image_size, 3), np.float32)
    masks = (rng.random((batch_size, image_size, image_size, 1)) > 0.7).astype(np.float32)
    return tf.data.Dataset.from_tensors((images, masks)).repeat()


def measure_precisions(
    table: Table, sizes: Sizes, ceilings: dict[str, float]
) -> dict[str, tuple[float, float]]:
    """Part 2: images/s per precision and size; returns ``{"<label> @ <size>": (images/s, share of the
    ceiling)}``."""
    rates = {}
    for image_size in sizes.image_sizes:
        for label, switches in SWITCHES.items():
            network = compiled_unet(image_size, sizes, switches)
            flops = training_flops_per_image(network)
            rate = fit_rate(network, one_batch(image_size, sizes.batch_size), sizes.steps, sizes.batch_size)
            kind = "float32" if switches[0] == "float32" else "bfloat16"
            share = rate * flops / ceilings[kind]
            note = f"{share:.0%} of the {kind} ceiling"
            table.add(
                "2 precision",
                f"{label}, {image_size}x{image_size}",
                rate,
                "images/s",
                note + ("; the auto switches" if switches == auto_switches() else ""),
            )
            rates[f"{label} @ {image_size}"] = rate, share
    return rates


def pipeline(sizes: Sizes, *, augment: bool, threads: int | None = None) -> tf.data.Dataset:
    """The embedded nuclei at the measured size as the series' loader gives them, repeated."""
    batches = data.load_dataset(
        datasets.nuclei(),
        image_size=sizes.image_sizes[-1],
        batch_size=sizes.batch_size,
        augment=augment,
        limit=sizes.limit,
        progress=False,
        **datasets.NUCLEI.as_kwargs(),
    ).repeat()
    if threads:
        options = tf.data.Options()
        options.threading.private_threadpool_size = threads
        batches = batches.with_options(options)
    return batches


def supply_rate(batches: tf.data.Dataset, count: int, batch_size: int) -> float:
    """Images/s that a pipeline produces alone, after one pass that fills its cache."""
    iterator = iter(batches)
    for _ in range(count):
        next(iterator)
    start = time.perf_counter()
    for _ in range(count):
        next(iterator)
    return count * batch_size / (time.perf_counter() - start)


class AugmentingModel(keras.Model):
    """The UNet with ``RandomAugment`` applied to each training batch inside the (compiled) training step."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.augment = augment_layer.RandomAugment(seed=0)

    def train_step(self, batch):
        return super().train_step(self.augment(*batch, training=True))


def measure_pipeline(table: Table, sizes: Sizes) -> None:
    """Part 3: does tf.data with the default augmentation keep up, and does augmenting on the GPU help."""
    size, batch, count = sizes.image_sizes[-1], sizes.batch_size, sizes.pipeline_batches
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    table.add(
        "3 input",
        f"tf.data + augmentation alone, {cores} cores",
        supply_rate(pipeline(sizes, augment=True), count, batch),
        "images/s",
    )
    table.add(
        "3 input",
        "tf.data + augmentation alone, 2 threads (as Colab)",
        supply_rate(pipeline(sizes, augment=True, threads=2), count, batch),
        "images/s",
    )
    network = compiled_unet(size, sizes, auto_switches())
    on_cpu = fit_rate(network, pipeline(sizes, augment=True), count, batch)
    table.add("3 input", "training, augmented by tf.data on the CPU", on_cpu, "images/s", "auto switches")
    network = compiled_unet(size, sizes, auto_switches(), model_class=AugmentingModel)
    on_device = fit_rate(network, pipeline(sizes, augment=False), count, batch)
    table.add(
        "3 input",
        "training, augmented by RandomAugment in the step",
        on_device,
        "images/s",
        f"{on_device / on_cpu:.2f}x the tf.data row",
    )


def activation_mebibytes(network: keras.Model, batch_size: int) -> float:
    """MiB of every layer's output for one batch (what the backward pass keeps), in the layers' dtypes."""
    total = 0
    for layer in network.layers[1:]:
        output = layer.output
        total += math.prod(output.shape[1:]) * np.dtype(output.dtype).itemsize
    return total * batch_size / 2**20


def measure_memory(table: Table, sizes: Sizes, on_gpu: bool) -> None:
    """Part 4: peak GPU memory of a training step per batch size (layer outputs only, on a CPU)."""
    for batch_size in sizes.memory_batches:
        network = compiled_unet(sizes.image_sizes[-1], sizes, auto_switches())
        outputs = activation_mebibytes(network, batch_size)
        if not on_gpu:
            table.add(
                "4 memory", f"batch {batch_size}: layer outputs", outputs, "MiB", "no GPU: not measured"
            )
            continue
        tf.config.experimental.reset_memory_stats("GPU:0")
        before = tf.config.experimental.get_memory_info("GPU:0")["current"]
        batches = one_batch(sizes.image_sizes[-1], batch_size)
        network.fit(batches, steps_per_epoch=2, epochs=1, verbose=0, shuffle=False)
        peak = (tf.config.experimental.get_memory_info("GPU:0")["peak"] - before) / 2**20
        table.add(
            "4 memory",
            f"batch {batch_size}: peak GPU memory",
            peak,
            "MiB",
            f"layer outputs {outputs:,.0f} MiB",
        )


def epoch_seconds(root: Path, profile: config.Profile, load_options: dict, num_classes: int) -> list[float]:
    """Seconds of each of 2 epochs of ``train_unet`` on a folder, at a profile's sizes, auto switches."""
    keras.backend.clear_session()
    splits = data.load_splits(
        root,
        image_size=profile.image_size,
        batch_size=profile.batch_size,
        augment=profile.augment,
        progress=False,
        **load_options,
    )
    with tempfile.TemporaryDirectory() as out_dir:
        result = training.train_unet(
            train=splits.train,
            validation=splits.validation,
            out_dir=out_dir,
            num_classes=num_classes,
            image_size=profile.image_size,
            base_filters=profile.base_filters,
            epochs=2,
            verbose=0,
        )
    return result.history["seconds"]


def t4_factor(device: str) -> float | None:
    """How many times longer a T4 takes than ``device`` by published peaks, or None for unknown devices."""
    for name, (tflops, bandwidth) in PUBLISHED.items():
        if name in device.upper():
            t4_tflops, t4_bandwidth = PUBLISHED["T4"]
            return max(tflops / t4_tflops, bandwidth / t4_bandwidth)
    return None


def measure_notebooks(table: Table, sizes: Sizes, device: str) -> dict[str, float]:
    """Part 5: one epoch of notebooks 04 and 06 in the ``full`` profile; returns their training minutes,
    scaled to a T4 where the device's published peaks are known."""
    profile, factor, minutes = sizes.profile, t4_factor(device), {}
    generated = synthetic.embedded_dataset(
        num_samples=profile.num_samples, image_size=profile.image_size, num_classes=3, progress=False
    )
    for notebook, root, options, num_classes in (
        ("04", datasets.nuclei(), {**datasets.NUCLEI.as_kwargs(), "limit": sizes.limit}, 2),
        ("06", generated, {"num_classes": 3}, 3),
    ):
        first, second = epoch_seconds(root, profile, options, num_classes)
        table.add(
            "5 full profile",
            f"notebook {notebook}: one epoch",
            second,
            "s",
            f"first epoch {first:.0f} s (compiles)",
        )
        here = (first + (profile.epochs - 1) * second) / 60
        minutes[notebook] = table.add(
            "5 full profile", f"notebook {notebook}: {profile.epochs} epochs", here, "min", "upper bound"
        )
        if factor:
            minutes[notebook] = table.add(
                "5 full profile",
                f"notebook {notebook}: {profile.epochs} epochs on a T4",
                here * factor,
                "min",
                f"scaled by {factor:.1f} (published peaks)",
            )
    return minutes


def print_checks(rates: dict[str, tuple[float, float]], minutes: dict[str, float], size: int) -> None:
    """Issue 16's targets, from what this run measured."""
    if rates:
        (fast, share), (slow, _) = rates[f"mixed float16 + XLA @ {size}"], rates[f"float32 @ {size}"]
        print(
            f"\nCheck: mixed float16 + XLA at {size}x{size}: {fast / slow:.2f}x float32 (target >= 2), "
            f"{share:.0%} of the bfloat16 ceiling (target >= 40%)"
        )
        fastest = max(rates, key=lambda label: rates[label][0] if label.endswith(f"@ {size}") else 0)
        print(f"Fastest at {size}x{size}: {fastest}; the auto switches: {auto_switches()}")
    if minutes:
        print(
            f"Check: the full profile's notebooks 04 and 06 train in {max(minutes.values()):.1f} min at most "
            "(on a T4 where scaled; target < 30)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reduced", action="store_true", help="tiny sizes: every row in seconds on a CPU")
    parser.add_argument("--results", type=Path, help=f"where to write the results (a GPU run: {RESULTS})")
    parser.add_argument(
        "--parts",
        type=int,
        nargs="+",
        choices=[2, 3, 4, 5],
        default=[2, 3, 4, 5],
        help="measure only these parts (the ceiling, part 1, always): to rerun what a short lease cut off",
    )
    args = parser.parse_args()
    sizes = REDUCED if args.reduced else Sizes()
    found = devices.gpus()
    device = found[0].model if found else f"CPU ({platform.processor() or platform.machine()})"
    if found:
        tf.config.experimental.set_memory_growth(tf.config.list_physical_devices("GPU")[0], True)
    print(
        f"Device: {device}; TensorFlow {tf.__version__}, Keras {keras.__version__}; sizes: "
        f"{'reduced' if args.reduced else 'full'}\n"
    )
    print("| part | measurement | value | unit | note |\n|---|---|---|---|---|")
    table = Table()
    ceilings = {
        name: table.add(
            "1 ceiling",
            f"{name} matrix product {sizes.matmul}",
            matmul_rate(sizes.matmul, dtype) / 1e12,
            "TFLOP/s",
        )
        for name, dtype in (("float32", tf.float32), ("bfloat16", tf.bfloat16))
    }
    ceilings = {name: value * 1e12 for name, value in ceilings.items()}
    rates = measure_precisions(table, sizes, ceilings) if 2 in args.parts else {}
    if 3 in args.parts:
        measure_pipeline(table, sizes)
    if 4 in args.parts:
        measure_memory(table, sizes, on_gpu=bool(found))
    minutes = measure_notebooks(table, sizes, device) if 5 in args.parts else {}
    for part in dict.fromkeys(row["part"] for row in table.rows):  # what fits into a GPU's few minutes
        table.add(
            "time", f"part {part}", sum(row["seconds"] for row in table.rows if row["part"] == part), "s"
        )
    print_checks(rates, minutes, sizes.image_sizes[-1])  # on a CPU too, so that it cannot rot unseen
    results = args.results or (None if args.reduced else RESULTS)
    if results:
        record = {
            "device": device,
            "date": time.strftime("%Y-%m-%d"),
            "reduced": args.reduced,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "rows": table.rows,
        }
        results.write_text(json.dumps(record, indent=1) + "\n")
        print(f"Written: {results}")


if __name__ == "__main__":
    main()
