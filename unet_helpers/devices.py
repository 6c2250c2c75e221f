"""What the machine has and how training uses it: GPUs, mixed precision, XLA, ``tf.distribute`` strategies.

Notebook 00 reports the GPUs with :func:`gpus`, the profile's automatic choice asks :func:`gpus` too,
and a training run resolves its switches here:

- ``mixed_precision="auto"`` (:func:`resolve_mixed_precision`) computes in float16, keeping float32
  weights and a float32 output layer, on GPUs of compute capability 7.0 or newer, whose tensor cores run
  it faster than float32 with half the memory for activations; it stays float32 on older GPUs and on the
  CPU. ``"bfloat16"`` (Ampere or newer GPUs, TPUs) has float32's range, so it needs no loss scaling.
- ``jit_compile="auto"`` (:func:`resolve_jit_compile`) compiles each training step with XLA on a GPU,
  which fuses its operations into fewer kernels.
- ``strategy="auto"`` (:func:`make_strategy`) trains on every GPU of the machine with
  ``MirroredStrategy`` when TensorFlow sees more than one: each GPU holds a copy of the model and gets
  ``batch_size / GPUs`` images of every batch, and their gradients are averaged before each update.
- ``strategy="multi-worker"`` trains on several machines with ``MultiWorkerMirroredStrategy``, each told
  by the ``TF_CONFIG`` variable which worker it is (:func:`check_tf_config` checks it first; training
  goes through :mod:`unet_helpers.multi_worker`).

TensorFlow is imported when a function first needs it, not with this module, so that the profile
(``config``) and the command lines answer a question or a wrong argument at once, and print no
TensorFlow start-up lines before a one-line error.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from unet_helpers.errors import UnetTutorialError

if TYPE_CHECKING:
    import tensorflow as tf

MIXED_PRECISION_CHOICES = ("auto", "off", "float16", "bfloat16")
XLA_CHOICES = ("auto", "on", "off")
STRATEGY_CHOICES = ("auto", "none", "mirrored", "multi-worker")
TF_CONFIG_EXAMPLE = (
    """TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", """
    """"index": 0}}' (index 1 on host2; see docs/multi_worker.md)"""
)


class Gpu(NamedTuple):
    """A GPU that TensorFlow sees: ``name`` ("/physical_device:GPU:0"), ``model`` ("NVIDIA H100 ..."),
    and its CUDA ``compute_capability`` such as ``(9, 0)`` (``(0, 0)`` when TensorFlow does not say)."""

    name: str
    model: str
    compute_capability: tuple[int, int]


def gpus() -> list[Gpu]:
    """The GPUs TensorFlow sees, in its order; empty on a machine without one (or without CUDA libraries)."""
    import tensorflow as tf

    found = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        capability = tuple(details.get("compute_capability") or (0, 0))
        found.append(Gpu(device.name, details.get("device_name", "GPU"), capability))
    return found


def resolve_mixed_precision(setting: str = "auto") -> str:
    """The Keras dtype policy for a mixed-precision setting.

    Args:
        setting: ``"auto"``: ``"mixed_float16"`` if every GPU has compute capability 7.0 or more
            (tensor cores), else ``"float32"`` (older GPUs run float16 no faster, and the CPU runs it
            slower); ``"off"``: ``"float32"``; ``"float16"``: ``"mixed_float16"``; ``"bfloat16"``:
            ``"mixed_bfloat16"`` (fast on Ampere or newer GPUs and TPUs, needs no loss scaling).

    Returns:
        ``"float32"``, ``"mixed_float16"`` or ``"mixed_bfloat16"``.
    """
    if setting not in MIXED_PRECISION_CHOICES:
        raise UnetTutorialError(
            f"mixed_precision={setting!r}: use one of {', '.join(MIXED_PRECISION_CHOICES)}."
        )
    if setting == "auto":
        capabilities = [gpu.compute_capability for gpu in gpus()]
        return "mixed_float16" if capabilities and min(capabilities) >= (7, 0) else "float32"
    return {"off": "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}[setting]


def resolve_jit_compile(setting: str | bool = "auto") -> bool:
    """Whether to compile training steps with XLA: ``"auto"`` on a GPU, ``"on"``/True, ``"off"``/False.

    XLA fuses a step's operations into fewer GPU kernels; on the CPU it gains little and adds a
    compilation of tens of seconds, so ``"auto"`` leaves it off there.
    """
    if isinstance(setting, bool):
        return setting
    if setting not in XLA_CHOICES:
        raise UnetTutorialError(
            f"jit_compile={setting!r}: use one of {', '.join(XLA_CHOICES)}, or True/False."
        )
    return bool(gpus()) if setting == "auto" else setting == "on"


def check_tf_config(text: str | None) -> None:
    """Check that ``TF_CONFIG`` (the environment variable's text) describes this worker of a cluster.

    It must be JSON of the form ``{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker",
    "index": i}}`` (a ``"chief"`` job of one address may come first), with ``i`` this machine's place in
    its job's list, counted from 0, and the same cluster on every machine.

    Raises:
        UnetTutorialError: it is unset, not JSON, or lacks a cluster of ``host:port`` addresses or a task
            in it; the message names what to set.
    """
    if not text:
        raise UnetTutorialError(
            f"--strategy multi-worker needs TF_CONFIG: set it on each machine, e.g. {TF_CONFIG_EXAMPLE}."
        )
    try:
        tf_config = json.loads(text)
    except ValueError as error:
        raise UnetTutorialError(f"TF_CONFIG is not JSON ({error}): set it as {TF_CONFIG_EXAMPLE}.") from None
    cluster = tf_config.get("cluster") if isinstance(tf_config, dict) else None
    jobs = list(cluster.values()) if isinstance(cluster, dict) else []
    addresses = [address for job in jobs if isinstance(job, list) for address in job]
    if (
        not addresses
        or not all(isinstance(job, list) for job in jobs)
        or not all(isinstance(address, str) and address.rpartition(":")[2].isdigit() for address in addresses)
    ):
        raise UnetTutorialError(
            f"TF_CONFIG has no cluster of host:port addresses: set it as {TF_CONFIG_EXAMPLE}."
        )
    task = tf_config.get("task") if isinstance(tf_config.get("task"), dict) else {}
    job = cluster.get(task.get("type")) if isinstance(task.get("type"), str) else None
    index = task.get("index")
    if job is None or isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(job):
        raise UnetTutorialError(
            f"TF_CONFIG's task {task!r} names no place in its cluster (jobs: {', '.join(cluster)}; the index "
            f"counts from 0): set it as {TF_CONFIG_EXAMPLE}."
        )


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """A ``tf.distribute`` strategy by name: ``"auto"`` (``MirroredStrategy`` if TensorFlow sees several
    GPUs, else the default), ``"none"`` (the default strategy: one device), ``"mirrored"`` or
    ``"multi-worker"`` (``MultiWorkerMirroredStrategy``, from ``TF_CONFIG``, see :func:`check_tf_config`).

    Call it before anything else runs TensorFlow: ``MultiWorkerMirroredStrategy`` must set up TensorFlow's
    runtime itself. It waits until every worker of ``TF_CONFIG`` has started.
    """
    if name not in STRATEGY_CHOICES:
        raise UnetTutorialError(f"strategy={name!r}: use one of {', '.join(STRATEGY_CHOICES)}.")
    if name == "multi-worker":
        check_tf_config(os.environ.get("TF_CONFIG"))
    import tensorflow as tf

    if name == "multi-worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored" or (name == "auto" and len(gpus()) > 1):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def strategy_name(strategy: tf.distribute.Strategy) -> str:
    """``strategy``'s class as users know it: "MirroredStrategy", "MultiWorkerMirroredStrategy" (whose class
    TensorFlow names CollectiveAllReduceStrategy), "DefaultDistributionStrategy"."""
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "MultiWorkerMirroredStrategy"
    return type(strategy).__name__.lstrip("_")


def worker_count(strategy: tf.distribute.Strategy) -> int:
    """The machines (workers) ``strategy`` trains on: those of its cluster, or 1."""
    resolver = strategy.cluster_resolver  # None on one machine
    return sum(map(len, resolver.cluster_spec().as_dict().values())) if resolver else 1


@contextlib.contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Set Keras's global dtype policy (e.g. ``"mixed_float16"``) inside the block, and restore it after.

    Layers take the policy that is set when they are created, so build the model inside the block; the
    model keeps its policy after the block ends.
    """
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def describe(strategy: tf.distribute.Strategy, policy: str, jit_compile: bool) -> dict[str, Any]:
    """What a run trains on, as recorded in its ``metrics.json``: replicas (all workers together), workers
    (machines), strategy, GPU models (this machine's), dtype policy, XLA, TensorFlow and Keras versions."""
    import keras
    import tensorflow as tf

    return {
        "replicas": strategy.num_replicas_in_sync,
        "workers": worker_count(strategy),
        "strategy": strategy_name(strategy),
        "gpus": [gpu.model for gpu in gpus()],
        "mixed_precision": policy,
        "jit_compile": jit_compile,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }
