"""Train a UNet: compile, fit with checkpoints that survive interruption, on one GPU, several, or the CPU.

Notebook 04 first compiles and fits a UNet by hand; :func:`train_unet` is the same, plus resuming and a
tidy run folder (:mod:`unet_helpers.run_folder` lists what it writes). Its pieces are plain functions a
notebook can use on their own: :func:`compile_unet` (Adam, the series' loss and metrics) and
:func:`make_callbacks`. The GPU switches (mixed precision, XLA, several GPUs) live in
:mod:`unet_helpers.devices`; ``python -m unet_helpers.train`` (:mod:`unet_helpers.train`) is the command line.

**Interruptions.** Ctrl-C, a killed process or a Colab disconnect lose at most the epoch in progress:
calling :func:`train_unet` again with the same ``out_dir`` (or the same command) restores the last
finished epoch's weights, optimizer state and learning rate, and trains on from the next epoch.
``best.keras`` is only ever replaced by a model with a higher ``val_dice`` than every epoch before it,
resumed sessions included (``ModelCheckpoint``'s ``initial_value_threshold`` is the best value recorded
in ``run.json``), and the replacement is one atomic rename, so a kill never leaves half a file. A run
that has finished is not trained over: the call says so and returns its result; pass more ``epochs`` to
train on from where it stopped. A folder that holds files this package did not write is refused.

**Several GPUs, one machine**: pass ``strategy=tf.distribute.MirroredStrategy()`` (the command line
does when it sees more than one GPU); scale ``batch_size`` with the number of GPUs to keep each busy.
**Several machines**: pass ``strategy=tf.distribute.MultiWorkerMirroredStrategy()`` on each, with the same
arguments; Keras's ``fit`` fails under it, so :mod:`unet_helpers.multi_worker` trains with a loop of its own
that calls the same callbacks, and only the chief (worker 0) writes ``out_dir`` (docs/multi_worker.md).
"""

from __future__ import annotations

import contextlib
import functools
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from unet_helpers import devices, losses, metrics, multi_worker
from unet_helpers.errors import TrainingInterrupted, UnetTutorialError
from unet_helpers.model import build_unet, output_channels
from unet_helpers.run_folder import (
    BACKUP,
    BEST_MODEL,
    BEST_MODEL_IN_PROGRESS,
    FINISHED,
    HISTORY,
    INTERRUPTED,
    MONITOR,
    STOPPED_EARLY,
    TENSORBOARD_LOGS,
    TIME_LIMIT_REACHED,
    TRAINING,
    RunFolder,
)


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

    On a worker other than the chief of several machines: the history of this session, no best model.
    """

    history: dict[str, list[float]]
    best_model_path: Path | None
    best_val_dice: float | None
    best_epoch: int | None
    epochs_completed: int
    status: str
    message: str
    out_dir: Path


# --- compile and callbacks ------------------------------------------------------------------------------


def compile_unet(
    model: keras.Model,
    *,
    num_classes: int,
    learning_rate: float = 1e-3,
    jit_compile: str | bool = "auto",
    background: bool = True,
) -> keras.Model:
    """Compile ``model`` for segmentation with Adam, the series' loss and its metrics; return it.

    Args:
        model: a UNet from ``build_unet(num_classes=num_classes)``. Under a ``tf.distribute`` strategy,
            call this inside ``strategy.scope()``, as the model was built.
        num_classes: classes in the data, background included (2 for binary masks).
        learning_rate: Adam's initial step size.
        jit_compile: ``"auto"``, ``"on"``, ``"off"`` or a bool (see ``devices.resolve_jit_compile``).
        background: class 0 is a background that the mean ``dice`` and ``iou`` leave out (see
            ``metrics.segmentation_metrics``).

    The loss is ``losses.segmentation_loss(num_classes)`` (cross-entropy + Dice); the metrics are
    ``metrics.segmentation_metrics(num_classes)``: ``dice``, ``iou`` and ``pixel_accuracy``, pooled over
    all pixels (``val_dice`` etc. on the validation set). A model whose layers were built under a
    ``mixed_float16`` policy gets Keras's loss scaling automatically.
    """
    channels = model.output_shape[-1]
    if channels != output_channels(num_classes):
        raise UnetTutorialError(
            f"the model has {channels} output channel(s) but num_classes={num_classes} needs "
            f"{output_channels(num_classes)}: build it with build_unet(num_classes={num_classes})."
        )
    if not learning_rate > 0:
        raise UnetTutorialError(f"learning_rate={learning_rate!r}: use a positive number such as 1e-3.")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=losses.segmentation_loss(num_classes),
        metrics=metrics.segmentation_metrics(num_classes, background=background),
        jit_compile=devices.resolve_jit_compile(jit_compile),
    )
    return model


def _epoch_timer() -> keras.callbacks.Callback:
    """Adds ``seconds`` (the whole epoch) and ``train_seconds`` (its training steps) to each epoch's logs.

    It must come before ``CSVLogger`` in the callback list, which then writes both to history.csv.
    Validation starts with ``on_test_begin``: that is where the training steps end.
    """
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


def _best_model_mover(folder: RunFolder) -> keras.callbacks.Callback:
    """Moves the model ``ModelCheckpoint`` just wrote to ``best.keras``, after recording its scores.

    Keras writes a model straight into its file, so a kill while it writes would leave a broken
    ``best.keras``. ModelCheckpoint therefore writes ``best.partial.keras`` and this callback renames it
    (``Path.replace`` is atomic), after ``folder.record_best`` has written the scores to run.json.
    """
    in_progress, best = folder.path / BEST_MODEL_IN_PROGRESS, folder.path / BEST_MODEL

    def on_epoch_end(epoch: int, logs: dict | None = None) -> None:
        if not in_progress.exists():
            return  # no improvement this epoch
        scores = {key: value for key, value in (logs or {}).items() if key.startswith("val_")}
        previous = folder.record_best(epoch + 1, scores)
        in_progress.replace(best)
        before = f"from {previous[MONITOR]:.4f} " if previous else ""
        print(f"\nEpoch {epoch + 1}: {MONITOR} improved {before}to {scores[MONITOR]:.4f}; saved {best}")

    return keras.callbacks.LambdaCallback(on_epoch_end=on_epoch_end)


def make_callbacks(
    folder: RunFolder,
    *,
    early_stopping_patience: int = 10,
    reduce_lr_patience: int = 5,
    reduce_lr_factor: float = 0.5,
    min_learning_rate: float = 1e-6,
) -> list[keras.callbacks.Callback]:
    """The callbacks of a training run, in the order they must run at the end of each epoch.

    1. ``ModelCheckpoint``: saves the model when ``val_dice`` beats every earlier epoch, earlier
       sessions of the run included (``folder.best``); written to ``best.partial.keras``, then
    2. moved to ``best.keras`` in one step, its scores recorded in ``run.json``;
    3. an epoch timer: adds ``seconds`` and ``train_seconds`` to the epoch's logs;
    4. ``ReduceLROnPlateau``: halves the learning rate after ``reduce_lr_patience`` epochs without a
       better ``val_dice`` (and adds ``learning_rate`` to the logs);
    5. ``EarlyStopping``: ends training after ``early_stopping_patience`` epochs without one (after a
       resume, an epoch must beat the earlier sessions' best to reset the count);
    6. ``TensorBoard``: logs to ``out_dir/logs``;
    7. ``CSVLogger``: appends the epoch's row to ``history.csv``;
    8. ``BackupAndRestore``: saves weights, optimizer state and epoch number to ``out_dir/backup``, and
       restores them when training starts again. Last, so that a backup never gets ahead of
       ``history.csv`` (a row ahead of the backup is dropped on resume).

    Args:
        folder: the run's folder (``RunFolder.open``).
        early_stopping_patience: epochs without a better ``val_dice`` before training stops.
        reduce_lr_patience: epochs without a better ``val_dice`` before the learning rate drops.
        reduce_lr_factor: what the learning rate is multiplied by when it drops.
        min_learning_rate: the learning rate never drops below this.

    Returns:
        The list to pass to ``model.fit(callbacks=...)``.
    """
    out_dir, best = folder.path, folder.best
    best_val_dice = best[MONITOR] if best else None
    return [
        keras.callbacks.ModelCheckpoint(
            out_dir / BEST_MODEL_IN_PROGRESS,
            monitor=MONITOR,
            mode="max",
            save_best_only=True,
            initial_value_threshold=best_val_dice,
        ),
        _best_model_mover(folder),
        _epoch_timer(),
        keras.callbacks.ReduceLROnPlateau(
            monitor=MONITOR,
            mode="max",
            factor=reduce_lr_factor,
            patience=reduce_lr_patience,
            min_lr=min_learning_rate,
            verbose=1,
        ),
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


class TimeBudget(keras.callbacks.Callback):
    """Stops training after the epoch that leaves too little of ``seconds`` for one more.

    The next epoch is expected to last the median of the last three known ones: ``earlier`` (the run's
    epochs in earlier sessions, in seconds), then this session's, leaving out its first, which also traces
    and compiles the step and can take several times as long. Training stops when this session's epochs
    plus that estimate would pass ``seconds``: a run ends less than about one epoch before its limit, and
    after it only by as much as its last epoch ran longer than expected (or, in a new run, when the second
    epoch does not fit). An epoch's length is the ``seconds`` the epoch timer of :func:`make_callbacks`
    adds to its logs (so it matches history.csv, from which a resumed run counts what it has used), or the
    callback's own measurement without it. ``reached`` says whether it stopped training.
    """

    def __init__(self, seconds: float, *, earlier: list[float] | None = None) -> None:
        super().__init__()
        self.seconds, self.earlier, self.session, self.reached = seconds, list(earlier or []), [], False

    def next_epoch_seconds(self) -> float:
        """The expected length of the next epoch in seconds (0 while nothing is known: train one)."""
        recent = sorted([*self.earlier, *self.session[1:]][-3:])
        return recent[len(recent) // 2] if recent else 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.session.append((logs or {}).get("seconds", time.perf_counter() - self.epoch_start))
        if sum(self.session) + self.next_epoch_seconds() > self.seconds:
            self.model.stop_training, self.reached = True, True


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


# --- one run --------------------------------------------------------------------------------------------


def _check_arguments(train: tf.data.Dataset, **values: Any) -> None:
    """One-line errors for arguments of :func:`train_unet` out of range, before anything is built."""
    for name in ("epochs", "learning_rate", "image_size", "base_filters", "time_limit"):
        value = values[name]
        if value is None and name == "time_limit":
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise UnetTutorialError(f"{name}={value!r}: use a positive number.")
    if not isinstance(values["epochs"], int):
        raise UnetTutorialError(f"epochs={values['epochs']!r}: use a whole number.")
    num_classes, image_size = values["num_classes"], values["image_size"]
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise UnetTutorialError(
            f"num_classes={num_classes!r}: count the classes in the data, background included (2 for binary)."
        )
    shape = train.element_spec[0].shape
    if shape.rank != 4 or not shape[1:3].is_compatible_with([image_size, image_size]):
        raise UnetTutorialError(
            f"the training images have shape {shape}, not (batch, {image_size}, {image_size}, channels): "
            "load them with data.load_dataset(..., image_size=image_size, batch_size=...)."
        )


def _restored_model(
    folder: RunFolder, new_model: Callable[[], keras.Model], strategy: tf.distribute.Strategy
) -> tuple[keras.Model, int]:
    """A compiled model with the last finished epoch of ``folder`` loaded, and that epoch (0: none).

    Every variable is created first, as on the other workers of several machines (``built_model``), and
    the load runs outside the strategy's scope, where the throwaway optimizer Keras's loading creates is
    no collective. A failed load may have set some variables: they get their new values back.
    """
    model = multi_worker.built_model(strategy, new_model)
    if not (folder.path / BACKUP).exists():
        return model, 0
    variables = [*model.variables, *model.optimizer.variables]
    new_values = [variable.numpy() for variable in variables]
    if not (completed := folder.restore(model)):
        for variable, value in zip(variables, new_values, strict=True):
            variable.assign(value)
    return model, completed


def _start_message(folder: RunFolder, completed: int, epochs: int, budget: TimeBudget | None) -> str:
    within = f" or {budget.seconds / 60:.1f} min, whichever ends first" if budget else ""
    if completed >= epochs:
        return (
            f"'{folder.path}' already holds {completed} epochs, the {epochs} asked for; nothing was trained."
        )
    if completed:
        return (
            f"Resuming '{folder.path}' after epoch {completed}: training epochs {completed + 1} to {epochs}"
            f"{within}{folder.describe_best()}."
        )
    return f"Training for {epochs} epochs{within}; writing to '{folder.path}'."


def _fit(model: keras.Model, callbacks: list, **fit_options: Any) -> str:
    """``model.fit`` (on several machines ``multi_worker.fit``); the run's status after it
    (:data:`INTERRUPTED` after Ctrl-C)."""
    try:
        with _ctrl_c_between_steps() as ctrl_c:
            multi_worker.fit_function(model)(callbacks=[*callbacks, ctrl_c], **fit_options)
    except KeyboardInterrupt:
        return INTERRUPTED
    if any(isinstance(callback, TimeBudget) and callback.reached for callback in callbacks):
        return TIME_LIMIT_REACHED
    early_stopping = next((cb for cb in callbacks if isinstance(cb, keras.callbacks.EarlyStopping)), None)
    return STOPPED_EARLY if early_stopping and early_stopping.stopped_epoch > 0 else FINISHED


def _nothing_to_train(
    folder: RunFolder, epochs: int, time_limit: float | None, budget: TimeBudget | None
) -> str | None:
    """Why this call trains nothing (the run has finished, or its time limit is used up), or None."""
    if (finished := folder.finished_before(epochs)) is not None:
        return finished
    if budget is None:
        return None
    limit_reached_before = folder.record.get("status") == TIME_LIMIT_REACHED and time_limit <= (
        folder.record.get("settings", {}).get("time_limit") or 0
    )
    if not limit_reached_before and budget.seconds >= max(budget.next_epoch_seconds(), 1e-9):
        return None
    used = sum(budget.earlier)
    return (
        f"'{folder.path}' has used {used / 60:.1f} of its {(used + budget.seconds) / 60:.1f} minutes, less "
        f"than another epoch needs{folder.describe_best()}; nothing was trained. Pass a longer time_limit "
        "(--time-limit) to train on."
    )


def _end_message(folder: RunFolder, status: str, epochs: int, time_limit: float | None) -> str:
    """What a call says once training has ended; Ctrl-C raises :class:`TrainingInterrupted` instead."""
    saved = folder.completed_epochs
    if status == INTERRUPTED:
        kept = f"epochs 1 to {saved} are saved in '{folder.path}'" if saved else "no epoch had finished yet"
        raise TrainingInterrupted(
            f"training stopped by Ctrl-C before epoch {saved + 1} of {epochs} was done; {kept}: run the same "
            f"command (or train_unet with the same out_dir) again to resume from epoch {saved + 1}."
        )
    best = folder.record.get("best")
    if not best:
        return ""
    used = ""
    if status == TIME_LIMIT_REACHED:
        used = f" of {time_limit:g} min ({sum(folder.epoch_seconds) / 60:.1f} min of epochs)"
    return (
        f" The run has {status}{used} after {saved} epochs: best "
        f"{MONITOR} {best[MONITOR]:.4f} at epoch {best['epoch']}."
    )


def _result(folder: RunFolder, history: dict[str, list[float]], message: str) -> TrainingResult:
    best = folder.record.get("best")
    best_path = folder.path / BEST_MODEL
    return TrainingResult(
        history=history,
        best_model_path=best_path if best_path.exists() else None,
        best_val_dice=best[MONITOR] if best else None,
        best_epoch=best["epoch"] if best else None,
        epochs_completed=len(history.get("epoch", [])),
        status=folder.record.get("status", TRAINING),
        message=message,
        out_dir=folder.path,
    )


def _worker_result(history: dict[str, list[float]], out_dir: Path) -> TrainingResult:
    """What :func:`train_unet` returns on a worker other than the chief, which writes nothing."""
    done = history["epoch"][-1] + 1 if history.get("epoch") else 0
    message = "The chief (worker 0) wrote the run, into its own out_dir."
    return TrainingResult(history, None, None, None, done, FINISHED if done else TRAINING, message, out_dir)


def train_unet(
    *,
    train: tf.data.Dataset,
    validation: tf.data.Dataset,
    out_dir: str | Path,
    num_classes: int,
    image_size: int,
    base_filters: int,
    epochs: int,
    time_limit: float | None = None,
    learning_rate: float = 1e-3,
    standardize: bool = True,
    background: bool = True,
    mixed_precision: str = "auto",
    jit_compile: str | bool = "auto",
    strategy: tf.distribute.Strategy | None = None,
    early_stopping_patience: int = 10,
    reduce_lr_patience: int = 5,
    images_per_epoch: int | None = None,
    settings: dict[str, Any] | None = None,
    verbose: str | int = "auto",
) -> TrainingResult:
    """Build, compile and train a UNet, writing everything into ``out_dir``; resume if it holds this run.

    Args:
        train: training batches ``(images, masks)`` from ``data.load_dataset(..., split="train",
            augment=profile.augment)``: images float32 (B, image_size, image_size, channels) in [0, 1], masks
            float32 class indices (B, image_size, image_size, 1).
        validation: validation batches of the same kind, without augmentation.
        out_dir: the output folder (``run_folder`` lists what goes in it). A new or empty folder
            starts a run; a folder of an earlier call with the same settings resumes it.
        num_classes: classes in the data, background included: 2 for binary masks (the model gets one
            sigmoid channel), K > 2 for K softmax channels.
        image_size: height and width of the images, a multiple of 8.
        base_filters: the UNet's width, filters of its first level (64 in the paper).
        epochs: the epoch to train up to, counted over all sessions of the run: a run interrupted after
            epoch 4 of 10 trains epochs 5 to 10 when called again; a finished run of 10 trains on to
            15 when called with 15.
        time_limit: minutes of epochs the run may take, earlier sessions included, or None for no limit.
            Training stops after the epoch that leaves too little time for another (:class:`TimeBudget`),
            not earlier (no early stopping: the learning rate still halves on a plateau), with the best
            model saved and the status ``"reached its time limit"``; called again with the
            same limit, a run that has used it trains nothing, and a longer limit trains on. Keep
            ``epochs`` as the most it may train (e.g. 1000 to let the time decide).
        learning_rate: Adam's initial step size; it halves when ``val_dice`` stalls.
        standardize: start the model with per-image standardisation (``build_unet(standardize=True)``),
            which learns faster on collections of mixed exposures and stains (see the README's
            measurements); False builds the network exactly as ``build_unet()`` does.
        background: class 0 is a background, left out of the mean ``dice`` and ``iou``; False for data
            whose classes are all things to find (CamVid: class 0 is the sky), scored over every class.
        mixed_precision: ``"auto"``, ``"off"``, ``"float16"`` or ``"bfloat16"`` (see
            ``devices.resolve_mixed_precision``).
        jit_compile: XLA compilation, ``"auto"``, ``"on"``, ``"off"`` or a bool (see
            ``devices.resolve_jit_compile``).
        strategy: a ``tf.distribute`` strategy to train under (``MirroredStrategy()`` for several GPUs,
            ``MultiWorkerMirroredStrategy()`` on each of several machines, the same call on every one: the
            chief writes ``out_dir``, see :mod:`unet_helpers.multi_worker`); None for TensorFlow's default.
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
    sizes = {"num_classes": num_classes, "image_size": image_size, "base_filters": base_filters}
    _check_arguments(train, epochs=epochs, learning_rate=learning_rate, time_limit=time_limit, **sizes)
    policy = devices.resolve_mixed_precision(mixed_precision)
    use_xla = devices.resolve_jit_compile(jit_compile)
    strategy = strategy or tf.distribute.get_strategy()
    device = devices.describe(strategy, policy, use_xla)
    patience = {"early_stopping_patience": early_stopping_patience, "reduce_lr_patience": reduce_lr_patience}
    run_settings = {
        **sizes,
        "learning_rate": learning_rate,
        "standardize": standardize,
        "mixed_precision": policy,
        **patience,
        **(settings or {}),
        # Only when False: runs recorded before this setting existed resume as they are.
        **({} if background else {"background": False}),
        "epochs": epochs,
        "time_limit": time_limit,
        "jit_compile": use_xla,
        "replicas": strategy.num_replicas_in_sync,
    }
    channels = train.element_spec[0].shape[-1] or 3
    new_model = functools.partial(
        _compiled_unet, (image_size, image_size, channels), num_classes, base_filters, learning_rate,
        standardize=standardize, strategy=strategy, policy=policy, jit_compile=use_xla, background=background,
    )  # fmt: skip
    fit_options = {"x": train, "validation_data": validation, "epochs": epochs, "verbose": verbose}
    if not multi_worker.is_chief(strategy):
        history = multi_worker.follow_chief(strategy, new_model, settings=run_settings, **fit_options)
        return _worker_result(history, Path(out_dir))
    folder = RunFolder.open(out_dir, settings=run_settings)
    report = {"images_per_epoch": images_per_epoch, "device": device}
    earlier = folder.epoch_seconds
    budget = TimeBudget(time_limit * 60 - sum(earlier), earlier=earlier) if time_limit else None
    nothing = _nothing_to_train(folder, epochs, time_limit, budget)
    if not multi_worker.agree_to_start(strategy, run_settings, train=nothing is None):
        print(nothing)
        return _result(folder, folder.close(folder.record.get("status", TRAINING), **report), nothing)

    model, completed = _restored_model(folder, new_model, strategy)
    folder.start(epochs)
    message = _start_message(folder, completed, epochs, budget)
    print(message)
    callbacks = make_callbacks(folder, **patience)
    if budget:
        # The time decides: patience counted in epochs is 20 seconds of 2-second epochs on ISBI 2012, and
        # would end a 10-minute run after 2 (README, "The training recipe").
        callbacks = [*(c for c in callbacks if not isinstance(c, keras.callbacks.EarlyStopping)), budget]
    status = _fit(model, callbacks, initial_epoch=completed, **fit_options)
    history = folder.close(status, **report)
    return _result(folder, history, message + _end_message(folder, status, epochs, time_limit))


def _compiled_unet(
    input_shape: tuple[int, int, int],
    num_classes: int,
    base_filters: int,
    learning_rate: float,
    *,
    standardize: bool,
    strategy: tf.distribute.Strategy,
    policy: str,
    jit_compile: bool,
    background: bool,
) -> keras.Model:
    """``build_unet`` then :func:`compile_unet`, inside the strategy's scope and the dtype policy."""
    with strategy.scope(), devices.dtype_policy(policy):
        model = build_unet(
            input_shape, num_classes=num_classes, base_filters=base_filters, standardize=standardize
        )
        return compile_unet(
            model,
            num_classes=num_classes,
            learning_rate=learning_rate,
            jit_compile=jit_compile,
            background=background,
        )
