"""Train a UNet: compile, fit with checkpoints that survive interruption, on one GPU, several, or the CPU.

One call does a whole run (:func:`train_unet`); the pieces it is made of are plain functions that a
notebook can use on their own: :func:`compile_unet`, :func:`make_callbacks`, :func:`resolve_mixed_precision`,
:func:`resolve_jit_compile`, :func:`read_history`, :func:`plot_learning_curves`.

What a run writes into its output folder ``out_dir``:

=======================  ==========================================================================
``best.keras``           the model of the epoch with the best validation Dice (``val_dice``), with its
                         optimizer; :func:`load_model` reads it (or ``keras.models.load_model`` after
                         importing ``unet_helpers.losses`` and ``unet_helpers.metrics``)
``history.csv``          one row per epoch (Keras's ``CSVLogger``): losses, metrics, ``learning_rate``,
                         ``seconds`` (the whole epoch) and ``train_seconds`` (its training steps only).
                         Its ``epoch`` column counts from 0, as Keras writes it; everything printed and
                         ``metrics.json`` count from 1, as Keras's progress bar does
``metrics.json``         best validation dice / iou / pixel_accuracy and their epoch, the settings, the
                         devices, timing and training images per second
``learning_curves.png``  loss and Dice per epoch, training and validation
``run.json``             what resuming needs: the settings, the best val_dice so far, the status
``backup/``              the last finished epoch: weights, optimizer state, epoch number (Keras's
                         ``BackupAndRestore``)
``logs/``                TensorBoard logs: ``tensorboard --logdir OUT/logs``
=======================  ==========================================================================

**Interruptions.** Ctrl-C, a killed process or a Colab disconnect lose at most the epoch in progress:
calling :func:`train_unet` again with the same ``out_dir`` (or the same command) restores the last
finished epoch's weights, optimizer state and learning rate, and trains on from the next epoch.
``best.keras`` is only ever replaced by a model with a higher ``val_dice`` than every epoch before it,
resumed sessions included (``ModelCheckpoint``'s ``initial_value_threshold`` is the best value recorded
in ``run.json``), and the replacement is one atomic rename, so a kill never leaves half a file. A run
that has finished is not trained over: the call says so and returns its result; pass more ``epochs`` to
train on from where it stopped. A folder that holds files this module did not write is refused.

**GPU speed.** ``mixed_precision="auto"`` computes in float16 (keeping float32 weights and a float32
output layer) on GPUs of compute capability 7.0 or newer, whose tensor cores run it faster than float32,
with half the memory for activations; it stays float32 on older GPUs and on the CPU. ``"bfloat16"``
(Ampere or newer GPUs, TPUs) has float32's range, so it needs no loss scaling. ``jit_compile="auto"``
compiles each training step with XLA on a GPU, which fuses its operations into fewer kernels.

**Several GPUs, one machine**: pass ``strategy=tf.distribute.MirroredStrategy()`` (the command line
does when it sees more than one GPU). Each GPU holds a copy of the model and gets ``batch_size / GPUs``
images of every batch; their gradients are averaged before each update, so a step equals one step on a
single GPU with the whole batch. Scale ``batch_size`` with the number of GPUs to keep each one busy.

**Several machines** (``tf.distribute.MultiWorkerMirroredStrategy``) do not work with Keras 3 up to
3.15 at least: ``Model.fit`` fails before its first step, reducing the first batch across workers
(reproduced in ``tests/test_train.py`` with two workers on one machine).
:func:`train_unet` refuses that strategy with a one-line message instead; use one machine with several GPUs.

**Command line**::

    python -m unet_helpers.train --out runs/first             # the embedded real nuclei
    python -m unet_helpers.train --data my_dataset --out runs/mine --epochs 30 --batch-size 16

Sizes default to the active profile's (:mod:`unet_helpers.config`); ``--help`` lists every option.
Mistakes (a missing folder, an image without a mask, an ``--out`` that holds other files) print one
line and exit with code 2; Ctrl-C saves and exits with 130.

TensorFlow is imported inside the functions that need it, so that the command line answers a wrong
argument at once instead of after the seconds TensorFlow takes to load.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import shutil
import signal
import statistics
import sys
import threading
import time
import warnings
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unet_helpers import config, datasets
from unet_helpers.errors import ArgumentParser, UnetTutorialError, fraction, positive_float, positive_int

if TYPE_CHECKING:
    import keras
    import tensorflow as tf
    from matplotlib.figure import Figure

BEST_MODEL = "best.keras"
HISTORY = "history.csv"
METRICS = "metrics.json"
LEARNING_CURVES = "learning_curves.png"
RUN_RECORD = "run.json"
BACKUP = "backup"
TENSORBOARD_LOGS = "logs"
# ModelCheckpoint writes here; the file is then renamed to best.keras in one step (see make_callbacks).
BEST_MODEL_IN_PROGRESS = "best.partial.keras"
# Written by keras.callbacks.BackupAndRestore: {"epoch": finished epochs, "batch": ...}.
BACKUP_METADATA = "training_metadata.json"

GENERATOR = "unet_helpers.train"
RECORD_VERSION = 1
MONITOR = "val_dice"
MIXED_PRECISION_CHOICES = ("auto", "off", "float16", "bfloat16")
XLA_CHOICES = ("auto", "on", "off")
STRATEGY_CHOICES = ("auto", "none", "mirrored")
# The command line's --view names: datasets.VIEWS with dashes (oxford-pet-binary, isbi2012-membrane, ...).
VIEW_NAMES = {name.replace("_", "-"): view for name, view in datasets.VIEWS.items()}
# Settings that may differ when a run is resumed: they change neither the model nor its saved state.
RESUMABLE_CHANGES = frozenset(
    {"epochs", "jit_compile", "replicas", "profile", "early_stopping_patience", "reduce_lr_patience"}
)

MULTI_WORKER_UNSUPPORTED = (
    "Keras 3 cannot train with MultiWorkerMirroredStrategy (Model.fit fails before its first step): "
    "train on one machine, with MirroredStrategy for several GPUs."
)

# Status of a run in run.json.
TRAINING = "training"  # in progress, or killed (the record cannot tell)
INTERRUPTED = "interrupted"  # stopped by Ctrl-C
FINISHED = "finished"  # trained all its epochs
STOPPED_EARLY = "stopped early"  # EarlyStopping ended it


class TrainingInterrupted(UnetTutorialError):
    """Training was stopped by Ctrl-C; the message says what is saved and how to resume."""


@dataclass(frozen=True)
class TrainingResult:
    """What a call of :func:`train_unet` leaves behind.

    Attributes:
        history: every column of ``history.csv`` (all epochs of the run, resumed sessions included),
            as lists of floats in epoch order: ``loss``, ``dice``, ..., ``val_dice``, ...,
            ``learning_rate``, ``seconds``, ``train_seconds``; ``epoch`` counts from 0.
        best_model_path: ``out_dir / "best.keras"``, or None if no epoch has finished.
        best_val_dice: the best validation Dice, in [0, 1], or None.
        best_epoch: the epoch that reached it, counted from 1, or None.
        epochs_completed: epochs trained so far, all sessions together.
        status: ``"finished"``, ``"stopped early"`` (by early stopping) or ``"interrupted"``.
        message: one sentence on what this call did, e.g. that the run had already finished.
        out_dir: the output folder.
    """

    history: dict[str, list[float]]
    best_model_path: Path | None
    best_val_dice: float | None
    best_epoch: int | None
    epochs_completed: int
    status: str
    message: str
    out_dir: Path


# --- GPU switches ---------------------------------------------------------------------------------------


def gpu_compute_capabilities() -> list[tuple[int, int]]:
    """The CUDA compute capability of each GPU TensorFlow sees, e.g. ``[(8, 0)]``; empty without a GPU."""
    import tensorflow as tf

    details = [
        tf.config.experimental.get_device_details(gpu) for gpu in tf.config.list_physical_devices("GPU")
    ]
    return [tuple(detail.get("compute_capability") or (0, 0)) for detail in details]


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
        capabilities = gpu_compute_capabilities()
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
    if setting == "auto":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    return setting == "on"


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


# --- compile and callbacks ------------------------------------------------------------------------------


def compile_unet(
    model: keras.Model, *, num_classes: int, learning_rate: float = 1e-3, jit_compile: str | bool = "auto"
) -> keras.Model:
    """Compile ``model`` for segmentation with Adam, the series' loss and its metrics; return it.

    Args:
        model: a UNet from ``build_unet``: one sigmoid channel for binary data, ``num_classes`` softmax
            channels for more classes. Under a ``tf.distribute`` strategy, call this inside
            ``strategy.scope()``, as the model was built.
        num_classes: classes in the data, background included (2 for binary masks).
        learning_rate: Adam's initial step size.
        jit_compile: ``"auto"``, ``"on"``, ``"off"`` or a bool (see :func:`resolve_jit_compile`).

    The loss is ``losses.segmentation_loss(num_classes)`` (cross-entropy + Dice); the metrics are
    ``metrics.segmentation_metrics(num_classes)``: ``dice``, ``iou`` and ``pixel_accuracy``, pooled over
    all pixels (``val_dice`` etc. on the validation set). A model whose layers were built under a
    ``mixed_float16`` policy gets Keras's loss scaling automatically.
    """
    import keras

    from unet_helpers import losses, metrics

    expected_channels = 1 if num_classes == 2 else num_classes
    channels = model.output_shape[-1]
    if channels != expected_channels:
        raise UnetTutorialError(
            f"the model has {channels} output channel(s) but num_classes={num_classes} needs "
            f"{expected_channels}: build it with build_unet(num_classes={expected_channels})."
        )
    if not learning_rate > 0:
        raise UnetTutorialError(f"learning_rate={learning_rate!r}: use a positive number such as 1e-3.")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=losses.segmentation_loss(num_classes),
        metrics=metrics.segmentation_metrics(num_classes),
        jit_compile=resolve_jit_compile(jit_compile),
    )
    return model


def _epoch_timer() -> keras.callbacks.Callback:
    """Adds ``seconds`` (the whole epoch) and ``train_seconds`` (its training steps) to each epoch's logs.

    It must come before ``CSVLogger`` in the callback list, which then writes both to history.csv.
    Validation starts with ``on_test_begin``: that is where the training steps end.
    """
    import keras

    times: dict[str, float | None] = {}

    def on_epoch_begin(epoch: int, logs: dict | None = None) -> None:
        times.update(start=time.perf_counter(), validation=None)

    def on_test_begin(logs: dict | None = None) -> None:
        if times.get("validation") is None:
            times["validation"] = time.perf_counter()

    def on_epoch_end(epoch: int, logs: dict | None = None) -> None:
        end = time.perf_counter()
        logs["seconds"] = end - times["start"]
        logs["train_seconds"] = (times["validation"] or end) - times["start"]

    return keras.callbacks.LambdaCallback(
        on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end, on_test_begin=on_test_begin
    )


def _best_model_mover(out_dir: Path) -> keras.callbacks.Callback:
    """Moves the model ``ModelCheckpoint`` just wrote to ``best.keras``, after recording its scores.

    Keras writes a model straight into its file, so a kill while it writes would leave a broken
    ``best.keras``. ModelCheckpoint therefore writes ``best.partial.keras`` and this callback renames it
    (``os.replace`` is atomic). The scores go into run.json first: a kill between the two steps leaves a
    record above the file's score, which can only keep a worse model out, never let one in.
    """
    import keras

    in_progress, best = out_dir / BEST_MODEL_IN_PROGRESS, out_dir / BEST_MODEL

    def on_epoch_end(epoch: int, logs: dict | None = None) -> None:
        if not in_progress.exists():
            return  # no improvement this epoch
        scores = {key: float(value) for key, value in (logs or {}).items() if key.startswith("val_")}
        previous = (_read_record(out_dir) or {}).get("best")
        _update_record(out_dir, best={"epoch": epoch + 1, **scores})
        os.replace(in_progress, best)
        before = f"from {previous[MONITOR]:.4f} " if previous else ""
        print(f"\nEpoch {epoch + 1}: {MONITOR} improved {before}to {scores[MONITOR]:.4f}; saved {best}")

    return keras.callbacks.LambdaCallback(on_epoch_end=on_epoch_end)


def make_callbacks(
    out_dir: str | Path,
    *,
    best_val_dice: float | None = None,
    early_stopping_patience: int = 10,
    reduce_lr_patience: int = 5,
    reduce_lr_factor: float = 0.5,
    min_learning_rate: float = 1e-6,
) -> list[keras.callbacks.Callback]:
    """The callbacks of a training run, in the order they must run at the end of each epoch.

    1. ``ModelCheckpoint``: saves the model when ``val_dice`` beats every earlier epoch and
       ``best_val_dice``; written to ``best.partial.keras``, then
    2. moved to ``best.keras`` in one step, its scores recorded in ``run.json``;
    3. an epoch timer: adds ``seconds`` and ``train_seconds`` to the epoch's logs;
    4. ``ReduceLROnPlateau``: halves the learning rate after ``reduce_lr_patience`` epochs without a
       better ``val_dice`` (and adds ``learning_rate`` to the logs);
    5. ``EarlyStopping``: ends training after ``early_stopping_patience`` epochs without one;
    6. ``TensorBoard``: logs to ``out_dir/logs``;
    7. ``CSVLogger``: appends the epoch's row to ``history.csv``;
    8. ``BackupAndRestore``: saves weights, optimizer state and epoch number to ``out_dir/backup``, and
       restores them when training starts again. Last, so that a backup never gets ahead of
       ``history.csv`` (a row ahead of the backup is dropped on resume, see :func:`train_unet`).

    Args:
        out_dir: the run's output folder.
        best_val_dice: the best ``val_dice`` of earlier sessions of this run: an epoch must beat it to
            replace ``best.keras``, and early stopping counts epochs that do not. None for a new run.
        early_stopping_patience: epochs without a better ``val_dice`` before training stops.
        reduce_lr_patience: epochs without a better ``val_dice`` before the learning rate drops.
        reduce_lr_factor: what the learning rate is multiplied by when it drops.
        min_learning_rate: the learning rate never drops below this.

    Returns:
        The list to pass to ``model.fit(callbacks=...)``.
    """
    import keras

    out_dir = Path(out_dir)
    return [
        keras.callbacks.ModelCheckpoint(
            out_dir / BEST_MODEL_IN_PROGRESS,
            monitor=MONITOR,
            mode="max",
            save_best_only=True,
            initial_value_threshold=best_val_dice,
        ),
        _best_model_mover(out_dir),
        _epoch_timer(),
        keras.callbacks.ReduceLROnPlateau(
            monitor=MONITOR,
            mode="max",
            factor=reduce_lr_factor,
            patience=reduce_lr_patience,
            min_lr=min_learning_rate,
            verbose=1,
        ),
        # baseline: after a resume, an epoch must beat the best of the earlier sessions to reset patience.
        keras.callbacks.EarlyStopping(
            monitor=MONITOR, mode="max", patience=early_stopping_patience, baseline=best_val_dice, verbose=1
        ),
        keras.callbacks.TensorBoard(log_dir=str(out_dir / TENSORBOARD_LOGS), write_graph=False),
        keras.callbacks.CSVLogger(out_dir / HISTORY, append=True),
        # delete_checkpoint=False keeps the last epoch's state after a finished run, to train on from it;
        # double_checkpoint keeps the one before too, in case a kill breaks the newest file.
        keras.callbacks.BackupAndRestore(
            str(out_dir / BACKUP), double_checkpoint=True, delete_checkpoint=False
        ),
    ]


def load_model(path: str | Path) -> keras.Model:
    """Load a model that a run saved (``OUT/best.keras``), with the series' loss, metrics and optimizer.

    A model trained with mixed precision is loaded under its policy: Keras would otherwise give it a
    plain optimizer, skip the saved optimizer state and warn.

    Raises:
        UnetTutorialError: the file does not exist or is no Keras model.
    """
    import keras

    from unet_helpers import losses, metrics  # noqa: F401  (importing them registers their classes with Keras)

    path = Path(path).expanduser()
    if not path.is_file():
        raise UnetTutorialError(
            f"'{path}' does not exist: pass the best.keras of a training run's output folder."
        )
    try:
        with dtype_policy(_saved_dtype_policy(path)):
            return keras.models.load_model(path)
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise UnetTutorialError(f"cannot read '{path}' as a Keras model ({error}).") from None


def _saved_dtype_policy(path: Path) -> str:
    """``"mixed_float16"`` or ``"mixed_bfloat16"`` if a layer of the saved model uses it, or ``"float32"``."""
    with zipfile.ZipFile(path) as archive:
        layers = json.loads(archive.read("config.json"))["config"].get("layers", [])
    policies = {str(layer.get("config", {}).get("dtype")) for layer in layers}
    return next(
        (name for name in ("mixed_float16", "mixed_bfloat16") if any(name in policy for policy in policies)),
        "float32",
    )


# --- the run's files ------------------------------------------------------------------------------------


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader (or a kill) sees the old file or the new, never half."""
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "w", newline="") as file:  # the line ends as given
        file.write(text)
    os.replace(partial, path)


def _read_record(out_dir: Path) -> dict | None:
    """The folder's run.json if this module wrote it, else None."""
    try:
        record = json.loads((out_dir / RUN_RECORD).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("generator") == GENERATOR else None


def _update_record(out_dir: Path, **changes: Any) -> dict:
    record = {"generator": GENERATOR, "version": RECORD_VERSION, **(_read_record(out_dir) or {}), **changes}
    _write_atomically(out_dir / RUN_RECORD, json.dumps(record, indent=2) + "\n")
    return record


def _completed_epochs(out_dir: Path) -> int:
    """Epochs whose state BackupAndRestore saved: training resumes after them."""
    try:
        return int(json.loads((out_dir / BACKUP / BACKUP_METADATA).read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def read_history(path: str | Path) -> dict[str, list[float]]:
    """``history.csv`` as one list per column, in epoch order; ``epoch`` counts from 0. Empty if missing."""
    try:
        with open(path, newline="") as file:
            rows = list(csv.DictReader(file))
    except FileNotFoundError:
        return {}
    columns: dict[str, list[float]] = {name: [] for name in (rows[0] if rows else {})}
    for row in rows:
        for name, value in row.items():
            columns[name].append(int(value) if name == "epoch" else _as_float(value))
    return columns


def _as_float(text: str | None) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):  # "NA" (CSVLogger: a value the epoch lacked), None (a cut-off row)
        return float("nan")


def _restore_point(out_dir: Path, model: keras.Model) -> int:
    """Check that the backup in ``out_dir`` loads into ``model``; return the epochs it holds (0: none).

    A signal that lands while Keras writes its backup can leave a weights file that opens but lacks some
    layers, or no epoch record yet. ``BackupAndRestore`` falls back to the previous backup (the ``.bkp``
    files that ``double_checkpoint`` keeps) only for a file that does not open at all, and fails on the
    rest. Here any failure falls back to it; with none usable, the backup is removed and training starts
    over. Call it inside the strategy's scope (it may build the optimizer).
    """
    backup = out_dir / BACKUP
    weights, metadata = backup / "latest.weights.h5", backup / BACKUP_METADATA
    previous = [backup / f"{path.name}.bkp" for path in (weights, metadata)]
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)  # its state is part of the backup
    for attempt in ("latest", "previous"):
        if not (weights.exists() and metadata.exists()):
            break
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Keras warns about each layer it cannot find
                model.load_weights(weights)
            return _completed_epochs(out_dir)
        except (OSError, ValueError, KeyError):
            if attempt == "previous" or not all(path.exists() for path in previous):
                break
            print(
                f"The last backup in '{backup}' was cut short while it was written; using the one before it."
            )
            for source, target in zip(previous, (weights, metadata), strict=True):
                shutil.copyfile(source, target)
    shutil.rmtree(backup, ignore_errors=True)
    return 0


def _drop_unsaved_epochs(history_path: Path, completed: int) -> None:
    """Keep only the rows of the ``completed`` epochs that the backup holds: the others are trained again.

    CSVLogger writes an epoch's row before BackupAndRestore saves it, so a kill between the two leaves a
    row ahead of the backup; an interrupted write leaves a row cut short. With no epoch left, the file
    goes, header too, so that CSVLogger writes a fresh header for a run that starts over.
    """
    try:
        with open(history_path, newline="") as file:  # as written: CSVLogger ends rows with \r\n
            lines = file.read().splitlines(keepends=True)
    except FileNotFoundError:
        return
    rows = lines[1:]
    epochs = [row.split(",", 1)[0] for row in rows]
    kept = [
        row
        for row, epoch in zip(rows, epochs, strict=True)
        if row.endswith("\n") and epoch.isdigit() and int(epoch) < completed
    ]
    if not kept:
        history_path.unlink()
    elif len(kept) != len(rows):
        _write_atomically(history_path, lines[0] + "".join(kept))


def _check_out_dir(out_dir: Path) -> dict | None:
    """The run record of ``out_dir``, or None for a new or empty folder; refuse anything else."""
    if not out_dir.exists():
        return None
    if not out_dir.is_dir():
        raise UnetTutorialError(
            f"output folder '{out_dir}' is a file: choose a folder for the run's outputs."
        )
    record = _read_record(out_dir)
    if record is None and any(out_dir.iterdir()):
        found = ", ".join(sorted(path.name for path in out_dir.iterdir())[:3])
        raise UnetTutorialError(
            f"output folder '{out_dir}' already holds files that unet_helpers.train did not write ({found}, "
            "...): choose a new or empty folder; nothing in this one was changed."
        )
    return record


def _as_json(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists, paths strings)."""
    return json.loads(json.dumps(value, default=str))


def _settings_differences(recorded: Mapping[str, Any], requested: Mapping[str, Any]) -> list[str]:
    names = sorted((set(recorded) | set(requested)) - RESUMABLE_CHANGES)
    return [
        f"{name}={recorded.get(name)!r} (now {requested.get(name)!r})"
        for name in names
        if recorded.get(name) != requested.get(name)
    ]


# --- the report -----------------------------------------------------------------------------------------


def plot_learning_curves(history: Mapping[str, Sequence[float]], *, title: str = "Learning curves") -> Figure:
    """Loss and Dice per epoch, training and validation, the best validation Dice marked.

    Args:
        history: columns as :func:`read_history` returns them (``epoch``, ``loss``, ``val_loss``,
            ``dice``, ``val_dice``); ``result.history`` of :func:`train_unet`.
        title: the figure's title.

    Returns:
        A matplotlib Figure of two panels (it shows in a notebook; save it with ``savefig``).
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [epoch + 1 for epoch in history.get("epoch", [])]
    # Made with pyplot, then closed: Jupyter renders it as a cell's value (a bare Figure shows as text).
    figure, panels = plt.subplots(1, 2, figsize=(10, 4), facecolor="white", layout="constrained")
    plt.close(figure)
    figure.suptitle(title)
    for axes, metric, label in ((panels[0], "loss", "Loss"), (panels[1], "dice", "Dice")):
        axes.set_facecolor("white")
        for name, style in ((metric, "-"), (f"val_{metric}", "--")):
            if name in history:
                who = "validation" if name.startswith("val_") else "training"
                axes.plot(epochs, history[name], style, marker="o", markersize=3, label=f"{label}, {who}")
        axes.set_xlabel("epoch")
        axes.set_ylabel(label)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_title(f"{label} per epoch")
        axes.grid(alpha=0.3)
    val_dice = history.get(MONITOR, [])
    if val_dice:
        best = max(range(len(val_dice)), key=lambda index: val_dice[index])
        panels[1].plot(
            [epochs[best]], [val_dice[best]], "*", markersize=14, color="black",
            label=f"best: {val_dice[best]:.3f} (epoch {epochs[best]})",
        )  # fmt: skip
        panels[1].set_ylim(0, 1)
    for axes in panels:
        if axes.get_legend_handles_labels()[0]:
            axes.legend()
    return figure


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _write_report(
    out_dir: Path, record: Mapping[str, Any], *, images_per_epoch: int | None, device: Mapping[str, Any]
) -> dict[str, list[float]]:
    """Write metrics.json and learning_curves.png from history.csv and run.json; return the history."""
    history = read_history(out_dir / HISTORY)
    train_seconds = history.get("train_seconds", [])
    # The first epoch also traces and compiles the step: leave it out of the speed when there are others.
    steady = _median(train_seconds[1:] or train_seconds)
    best = record.get("best")
    report = {
        "best_epoch": best["epoch"] if best else None,
        "best": {key: value for key, value in best.items() if key != "epoch"} if best else None,
        "status": record.get("status"),
        "epochs_completed": len(history.get("epoch", [])),
        "epochs": record.get("epochs"),
        "settings": record.get("settings"),
        "device": dict(device),
        "timing": {
            "training_seconds": round(sum(history.get("seconds", [])), 3),
            "seconds_per_epoch": _median(history.get("seconds", [])[1:] or history.get("seconds", [])),
            "train_images_per_epoch": images_per_epoch,
            "images_per_second": round(images_per_epoch / steady, 2) if images_per_epoch and steady else None,
            "note": "median over epochs after the first (which compiles the step); images/s: training steps",
        },
        "files": {
            "best_model": BEST_MODEL,
            "history": HISTORY,
            "learning_curves": LEARNING_CURVES,
            "tensorboard": TENSORBOARD_LOGS,
        },
    }
    _write_atomically(out_dir / METRICS, json.dumps(report, indent=2) + "\n")
    if history.get("epoch"):
        figure = plot_learning_curves(history, title=f"Learning curves: {out_dir.name}")
        figure.savefig(out_dir / LEARNING_CURVES, dpi=100, facecolor="white")
    return history


def _best_so_far(best: Mapping[str, Any] | None) -> str:
    return f" (best {MONITOR} so far {best[MONITOR]:.4f}, at epoch {best['epoch']})" if best else ""


def _result(out_dir: Path, record: Mapping[str, Any], history: dict, message: str) -> TrainingResult:
    best = record.get("best")
    best_path = out_dir / BEST_MODEL
    return TrainingResult(
        history=history,
        best_model_path=best_path if best_path.exists() else None,
        best_val_dice=best[MONITOR] if best else None,
        best_epoch=best["epoch"] if best else None,
        epochs_completed=len(history.get("epoch", [])),
        status=record.get("status", TRAINING),
        message=message,
        out_dir=out_dir,
    )


def _describe_devices(strategy: tf.distribute.Strategy, policy: str, jit_compile: bool) -> dict[str, Any]:
    import keras
    import tensorflow as tf

    gpus = [
        tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
        for gpu in tf.config.list_physical_devices("GPU")
    ]
    return {
        "replicas": strategy.num_replicas_in_sync,
        "strategy": type(strategy).__name__.lstrip("_"),
        "gpus": gpus,
        "mixed_precision": policy,
        "jit_compile": jit_compile,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }


# --- one run --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _ctrl_c_between_steps() -> Iterator[keras.callbacks.Callback]:
    """Catch Ctrl-C during ``fit`` and raise it as KeyboardInterrupt from a callback, between steps.

    Keras's saving code (3.15) has a bare ``except:`` around the temporary file it writes a ``.keras``
    model into, so a KeyboardInterrupt raised while ModelCheckpoint saves is swallowed and training goes
    on, as if Ctrl-C had not been pressed. Here the signal only records the request; the yielded callback
    raises it at the next batch or epoch boundary, outside Keras's code. A second Ctrl-C raises at once.
    Outside the main thread, where Python cannot handle signals, and where Ctrl-C is ignored (a program
    started in the background by a shell), nothing changes.
    """
    import keras

    requested = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()

    class RaiseWhenRequested(keras.callbacks.Callback):
        def raise_if_requested(self, *args: Any, **kwargs: Any) -> None:
            if requested.is_set():
                raise KeyboardInterrupt

        on_train_batch_end = on_test_batch_end = on_epoch_begin = on_epoch_end = raise_if_requested

    in_main_thread = threading.current_thread() is threading.main_thread()
    if not in_main_thread or signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        yield RaiseWhenRequested()
        return
    previous = signal.signal(signal.SIGINT, on_signal)
    try:
        yield RaiseWhenRequested()
    finally:
        signal.signal(signal.SIGINT, previous)


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise UnetTutorialError(f"{name}={value!r}: use a positive number.")


def train_unet(
    *,
    train: tf.data.Dataset,
    validation: tf.data.Dataset,
    out_dir: str | Path,
    num_classes: int,
    image_size: int,
    base_filters: int,
    epochs: int,
    learning_rate: float = 1e-3,
    mixed_precision: str = "auto",
    jit_compile: str | bool = "auto",
    strategy: tf.distribute.Strategy | None = None,
    early_stopping_patience: int = 10,
    reduce_lr_patience: int = 5,
    images_per_epoch: int | None = None,
    settings: Mapping[str, Any] | None = None,
    verbose: str | int = "auto",
) -> TrainingResult:
    """Build, compile and train a UNet, writing everything into ``out_dir``; resume if it holds this run.

    Args:
        train: training batches ``(images, masks)`` from ``data.load_dataset(..., split="train",
            augment=True)``: images float32 (B, image_size, image_size, channels) in [0, 1], masks
            float32 class indices (B, image_size, image_size, 1).
        validation: validation batches of the same kind, without augmentation.
        out_dir: the output folder (see the module docstring for what goes in it). A new or empty
            folder starts a run; a folder of an earlier call with the same settings resumes it.
        num_classes: classes in the data, background included: 2 for binary masks (the model gets one
            sigmoid channel), K > 2 for K softmax channels.
        image_size: height and width of the images, a multiple of 8.
        base_filters: the UNet's width, filters of its first level (64 in the paper).
        epochs: the epoch to train up to, counted over all sessions of the run: a run interrupted after
            epoch 4 of 10 trains epochs 5 to 10 when called again; a finished run of 10 trains on to
            15 when called with 15.
        learning_rate: Adam's initial step size; it halves when ``val_dice`` stalls.
        mixed_precision: ``"auto"``, ``"off"``, ``"float16"`` or ``"bfloat16"`` (see
            :func:`resolve_mixed_precision`).
        jit_compile: XLA compilation, ``"auto"``, ``"on"``, ``"off"`` or a bool (see
            :func:`resolve_jit_compile`).
        strategy: a ``tf.distribute`` strategy to train under (``MirroredStrategy()`` for several GPUs);
            None for TensorFlow's default (one device).
        early_stopping_patience, reduce_lr_patience: epochs without a better ``val_dice`` before
            training stops, and before the learning rate halves.
        images_per_epoch: training images per epoch, to report images per second in metrics.json.
        settings: anything else that identifies the run (data folder, batch size, seed, augmentation):
            recorded in run.json and metrics.json, and compared when the run is resumed.
        verbose: Keras's ``verbose``: ``"auto"`` or 1 for a progress bar, 2 for one line per epoch.

    Returns:
        A :class:`TrainingResult`: the history of all epochs, the best model's path and score.

    Raises:
        UnetTutorialError: an argument is out of range, ``out_dir`` holds other files or a run with
            other settings.
        TrainingInterrupted: Ctrl-C stopped training; the message says how to resume.
    """
    import keras
    import tensorflow as tf

    from unet_helpers.model import build_unet

    _check_positive(
        epochs=epochs, learning_rate=learning_rate, image_size=image_size, base_filters=base_filters
    )
    if not isinstance(epochs, int):
        raise UnetTutorialError(f"epochs={epochs!r}: use a whole number.")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise UnetTutorialError(
            f"num_classes={num_classes!r}: count the classes in the data, background included (2 for binary)."
        )
    image_spec = train.element_spec[0]
    if image_spec.shape.rank != 4 or not image_spec.shape[1:3].is_compatible_with([image_size, image_size]):
        raise UnetTutorialError(
            f"the training images have shape {image_spec.shape}, not (batch, {image_size}, {image_size}, "
            "channels): load them with data.load_dataset(..., image_size=image_size, batch_size=...)."
        )
    out_dir = Path(out_dir).expanduser()
    policy = resolve_mixed_precision(mixed_precision)
    use_xla = resolve_jit_compile(jit_compile)
    strategy = strategy or tf.distribute.get_strategy()
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        raise UnetTutorialError(MULTI_WORKER_UNSUPPORTED)
    requested = _as_json(
        {
            "num_classes": num_classes,
            "image_size": image_size,
            "base_filters": base_filters,
            "learning_rate": learning_rate,
            "mixed_precision": policy,
            "early_stopping_patience": early_stopping_patience,
            "reduce_lr_patience": reduce_lr_patience,
            **(settings or {}),
            "epochs": epochs,
            "jit_compile": use_xla,
            "replicas": strategy.num_replicas_in_sync,
        }
    )
    device = _describe_devices(strategy, policy, use_xla)

    record = _check_out_dir(out_dir)
    completed = _completed_epochs(out_dir)
    if record is not None:
        differences = _settings_differences(record.get("settings", {}), requested)
        something_saved = completed > 0 or (out_dir / BEST_MODEL).exists()
        if differences and something_saved:
            raise UnetTutorialError(
                f"'{out_dir}' holds a run with other settings: {'; '.join(differences)}. Resume it with its "
                "own settings, or choose another output folder."
            )
        asked_before = max(record.get("epochs", 0), completed)
        if record.get("status") in (FINISHED, STOPPED_EARLY) and epochs <= asked_before:
            history = _write_report(out_dir, record, images_per_epoch=images_per_epoch, device=device)
            message = (
                f"'{out_dir}' holds a run that has {record['status']} after {completed} epochs"
                f"{_best_so_far(record.get('best'))}; nothing was trained. To train on from epoch "
                f"{completed + 1}, ask for more than {asked_before} epochs."
            )
            print(message)
            return _result(out_dir, record, history, message)

    def new_model() -> keras.Model:
        with strategy.scope(), dtype_policy(policy):
            model = build_unet(
                (image_size, image_size, image_spec.shape[-1] or 3),
                num_classes=1 if num_classes == 2 else num_classes,
                base_filters=base_filters,
            )
            return compile_unet(
                model, num_classes=num_classes, learning_rate=learning_rate, jit_compile=use_xla
            )

    out_dir.mkdir(parents=True, exist_ok=True)
    model = new_model()
    if (out_dir / BACKUP).exists():
        with strategy.scope():
            completed = _restore_point(out_dir, model)
        if not completed:
            model = new_model()  # a failed load may have set some of its weights
    _drop_unsaved_epochs(out_dir / HISTORY, completed)
    (out_dir / BEST_MODEL_IN_PROGRESS).unlink(missing_ok=True)  # left by a kill while it was written
    best = record.get("best") if record and (out_dir / BEST_MODEL).exists() else None
    record = _update_record(out_dir, settings=requested, epochs=epochs, status=TRAINING, best=best)
    if completed >= epochs:
        message = (
            f"'{out_dir}' already holds {completed} epochs, the {epochs} asked for; nothing was trained."
        )
    elif completed:
        message = (
            f"Resuming '{out_dir}' after epoch {completed}: training epochs {completed + 1} to {epochs}"
            f"{_best_so_far(best)}."
        )
    else:
        message = f"Training for {epochs} epochs; writing to '{out_dir}'."
    print(message)

    callbacks = make_callbacks(
        out_dir,
        best_val_dice=best[MONITOR] if best else None,
        early_stopping_patience=early_stopping_patience,
        reduce_lr_patience=reduce_lr_patience,
    )
    early_stopping = next(cb for cb in callbacks if isinstance(cb, keras.callbacks.EarlyStopping))
    try:
        with _ctrl_c_between_steps() as ctrl_c:
            # shuffle=False: the dataset shuffles itself (Keras cannot shuffle a tf.data.Dataset, and warns).
            model.fit(
                train,
                validation_data=validation,
                epochs=epochs,
                callbacks=[*callbacks, ctrl_c],  # last: after an epoch's files are saved
                verbose=verbose,
                shuffle=False,
            )
    except KeyboardInterrupt:
        saved = _completed_epochs(out_dir)
        _drop_unsaved_epochs(out_dir / HISTORY, saved)
        record = _update_record(out_dir, status=INTERRUPTED)
        _write_report(out_dir, record, images_per_epoch=images_per_epoch, device=device)
        kept = f"epochs 1 to {saved} are saved in '{out_dir}'" if saved else "no epoch had finished yet"
        raise TrainingInterrupted(
            f"training stopped by Ctrl-C before epoch {saved + 1} of {epochs} was done; {kept}: run the same "
            f"command (or train_unet with the same out_dir) again to resume from epoch {saved + 1}."
        ) from None
    status = STOPPED_EARLY if early_stopping.stopped_epoch > 0 else FINISHED
    record = _update_record(out_dir, status=status)
    history = _write_report(out_dir, record, images_per_epoch=images_per_epoch, device=device)
    if record.get("best"):
        message += (
            f" The run has {status} after {_completed_epochs(out_dir)} epochs: best {MONITOR} "
            f"{record['best'][MONITOR]:.4f} at epoch {record['best']['epoch']}."
        )
    return _result(out_dir, record, history, message)


# --- command line ---------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m unet_helpers.train",
        description="Train a UNet on a folder of images and masks (or the embedded real nuclei), "
        "writing best.keras, history.csv, metrics.json and learning_curves.png to --out. Run the same "
        "command again to resume an interrupted run. Sizes default to the profile's.",
    )
    add = parser.add_argument
    add(
        "--data",
        type=Path,
        metavar="DIR",
        help="dataset folder with images/ and masks/ (default: the embedded nuclei; with --num-classes 3 "
        "and more, the generated multi-class cells)",
    )
    add("--out", type=Path, metavar="DIR", required=True, help="output folder: new, empty, or this run's")
    add("--profile", choices=list(config.PROFILES), help="the sizes to default to (default: the active one)")
    add("--epochs", type=positive_int, metavar="N", help="epochs to train up to, earlier sessions included")
    add("--image-size", type=positive_int, metavar="PIXELS", help="height and width, a multiple of 8")
    add("--batch-size", type=positive_int, metavar="N", help="images per step, all GPUs together")
    add("--base-filters", type=positive_int, metavar="N", help="model width: filters of the first level")
    add(
        "--num-classes",
        type=int,
        metavar="K",
        help="classes, background included (default: 2, or the --view's)",
    )
    add("--learning-rate", type=positive_float, default=1e-3, metavar="RATE", help="Adam's, at first (1e-3)")
    add(
        "--seed",
        type=int,
        default=0,
        help="seeds the split, shuffling, augmentation and weights (default: 0)",
    )
    add(
        "--validation-fraction",
        type=fraction,
        default=0.2,
        metavar="F",
        help="share of images (default: 0.2)",
    )
    add("--augment", action=argparse.BooleanOptionalAction, default=True, help="augment training images")
    masks = parser.add_argument_group(
        "reading the dataset", "how --data stores its images and masks (see data.scan_dataset)"
    )
    masks.add_argument(
        "--view",
        choices=sorted(VIEW_NAMES),
        help="a known layout: sets --images, --masks, the mask values and --num-classes "
        "(oxford-pet-binary: pet vs background; oxford-pet-trimap: 3 classes; isbi2012-membrane: "
        "membrane, stored dark, is class 1)",
    )
    masks.add_argument("--images", metavar="SUBDIR", help="image folder inside --data (default: images)")
    masks.add_argument("--masks", metavar="SUBDIR", help="mask folder inside --data (default: masks)")
    masks.add_argument(
        "--mask-suffix", default="", metavar="TEXT", help="a mask's file name adds this: cell_07_mask.png"
    )
    masks.add_argument(
        "--invert",
        action="store_true",
        help="binary masks store the object as 0 (dark) and the background as 1/255: swap them",
    )
    masks.add_argument(
        "--mask-threshold",
        type=int,
        metavar="VALUE",
        help="binary masks saved as JPEG: stored values >= VALUE are the object",
    )
    masks.add_argument(
        "--channels", type=int, choices=(1, 3), default=3, help="image channels for the model (default: 3)"
    )
    masks.add_argument(
        "--shuffle-split",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="pick validation images at random (default); --no-shuffle-split takes the last ones in "
        "file-name order, for slices of one stack whose neighbours look alike (ISBI 2012)",
    )
    add(
        "--patience",
        type=positive_int,
        default=10,
        metavar="N",
        help="stop after N epochs without a better val_dice; halve the learning rate after N/2 (default: 10)",
    )
    add(
        "--mixed-precision",
        choices=MIXED_PRECISION_CHOICES,
        default="auto",
        help="auto: float16 on a GPU (compute capability 7.0+)",
    )
    add("--xla", choices=XLA_CHOICES, default="auto", help="compile training steps; auto: on a GPU")
    add(
        "--strategy",
        choices=STRATEGY_CHOICES,
        default="auto",
        help="auto: MirroredStrategy if TensorFlow sees several GPUs; none: one device",
    )
    return parser


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """A ``tf.distribute`` strategy by name: ``"auto"`` (``MirroredStrategy`` if TensorFlow sees several
    GPUs, else the default), ``"none"`` (the default strategy: one device) or ``"mirrored"``."""
    import tensorflow as tf

    if name not in STRATEGY_CHOICES:
        raise UnetTutorialError(f"strategy={name!r}: use one of {', '.join(STRATEGY_CHOICES)}.")
    if name == "mirrored" or (name == "auto" and len(tf.config.list_physical_devices("GPU")) > 1):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _dataset_options(arguments: argparse.Namespace) -> dict[str, Any]:
    """The loader's options for reading ``--data``: a ``--view``'s, then those given on the command line."""
    if arguments.view is not None and arguments.data is None:
        raise UnetTutorialError(f"--view {arguments.view} needs --data: the folder that holds that dataset.")
    view = VIEW_NAMES[arguments.view].as_kwargs() if arguments.view else {}
    num_classes = view.get("num_classes", 2)
    if arguments.num_classes is not None:
        if view and arguments.num_classes != num_classes:
            raise UnetTutorialError(
                f"--num-classes {arguments.num_classes} disagrees with --view {arguments.view}, whose masks "
                f"hold {num_classes} classes: leave --num-classes out."
            )
        num_classes = arguments.num_classes
    if num_classes < 2:
        raise UnetTutorialError(
            f"--num-classes {num_classes}: count the background too (2 for binary masks)."
        )
    binary_only = {"--invert": arguments.invert, "--mask-threshold": arguments.mask_threshold is not None}
    for option, given in binary_only.items():
        if given and num_classes != 2:
            raise UnetTutorialError(f"{option} is for binary masks; these have {num_classes} classes.")
    if arguments.invert and view:
        raise UnetTutorialError(
            f"--view {arguments.view} already says which stored value is the object: leave --invert out."
        )
    return {
        "images": arguments.images or view.get("images", "images"),
        "masks": arguments.masks or view.get("masks", "masks"),
        "mask_suffix": arguments.mask_suffix,
        "num_classes": num_classes,
        "mask_values": view.get("mask_values"),
        "mask_threshold": arguments.mask_threshold,
        "invert": arguments.invert,
    }


def _run(arguments: argparse.Namespace) -> TrainingResult:
    # Everything that needs no TensorFlow is checked first, so that a mistake is reported at once.
    if arguments.data is not None and not arguments.data.is_dir():
        raise UnetTutorialError(
            f"--data '{arguments.data}' is not a folder: pass the dataset folder that holds images/ "
            "and masks/."
        )
    reading = _dataset_options(arguments)
    num_classes = reading["num_classes"]
    if arguments.image_size is not None and arguments.image_size % 8:
        lower = arguments.image_size - arguments.image_size % 8
        raise UnetTutorialError(
            f"--image-size {arguments.image_size} is not a multiple of 8 (the UNet halves it three times); "
            f"use {f'{lower} or ' if lower else ''}{lower + 8}."
        )
    _check_out_dir(arguments.out)
    # Without --profile and UNET_PROFILE this looks for a GPU, which loads TensorFlow.
    profile = config.get_profile(arguments.profile)
    image_size = arguments.image_size or profile.image_size

    strategy = make_strategy(arguments.strategy)
    import keras

    from unet_helpers import data, datasets, synthetic

    if arguments.data is None and num_classes == 2:
        root = datasets.nuclei()
    elif arguments.data is None:
        root = synthetic.embedded_dataset(
            num_samples=profile.num_samples, image_size=image_size, num_classes=num_classes
        )
    else:
        root = arguments.data
    batch_size = arguments.batch_size or profile.batch_size
    options = {
        "image_size": image_size,
        "batch_size": batch_size,
        "seed": arguments.seed,
        "validation_fraction": arguments.validation_fraction,
        "shuffle_split": arguments.shuffle_split,
        "channels": arguments.channels,
        **reading,
    }
    train = data.load_dataset(root, split="train", augment=arguments.augment, **options)
    validation = data.load_dataset(root, split="validation", **options)
    scan = data.scan_dataset(root, progress=False, **reading)
    train_pairs = data.split_pairs(
        scan.pairs,
        split="train",
        validation_fraction=arguments.validation_fraction,
        seed=arguments.seed,
        shuffle_split=arguments.shuffle_split,
    )
    keras.utils.set_random_seed(arguments.seed)
    return train_unet(
        train=train,
        validation=validation,
        out_dir=arguments.out,
        num_classes=num_classes,
        image_size=image_size,
        base_filters=arguments.base_filters or profile.base_filters,
        epochs=arguments.epochs or profile.epochs,
        learning_rate=arguments.learning_rate,
        mixed_precision=arguments.mixed_precision,
        jit_compile=arguments.xla,
        strategy=strategy,
        early_stopping_patience=arguments.patience,
        reduce_lr_patience=max(arguments.patience // 2, 1),
        images_per_epoch=len(train_pairs),
        settings={
            "data": str(Path(root).resolve()),
            "batch_size": batch_size,
            "seed": arguments.seed,
            "augment": arguments.augment,
            "validation_fraction": arguments.validation_fraction,
            "shuffle_split": arguments.shuffle_split,
            "channels": arguments.channels,
            **reading,
            "profile": profile.name,
        },
        verbose=1 if sys.stdout.isatty() else 2,
    )


def main(argv: list[str] | None = None) -> int:
    """Train from the command line; exit 0 when done, 2 with one line for a mistake, 130 on Ctrl-C."""
    arguments = _parser().parse_args(argv)
    try:
        result = _run(arguments)
    except TrainingInterrupted as error:
        print(f"\n{error}", file=sys.stderr)
        return 130
    except UnetTutorialError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nstopped by Ctrl-C before training started; what was saved before is kept.", file=sys.stderr)
        return 130
    if result.best_model_path is not None:
        print(
            f"Best {MONITOR}: {result.best_val_dice:.4f} at epoch {result.best_epoch} "
            f"({result.epochs_completed} epochs, {result.status}). In '{result.out_dir}': {BEST_MODEL}, "
            f"{HISTORY}, {METRICS}, {LEARNING_CURVES}, {TENSORBOARD_LOGS}/."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
