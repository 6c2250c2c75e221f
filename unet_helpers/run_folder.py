"""A training run's output folder: open it with the settings, see what is finished, restore, record the
best epoch, close it with the result.

What a run writes into its folder:

=======================  ==========================================================================
``best.keras``           the model of the epoch with the best validation Dice (``val_dice``), with its
                         optimizer; ``model.load_model`` reads it
``history.csv``          one row per epoch (Keras's ``CSVLogger``): losses, metrics, ``learning_rate``,
                         ``seconds`` (the whole epoch) and ``train_seconds`` (its training steps only).
                         Its ``epoch`` column counts from 0, as Keras writes it; everything printed and
                         ``metrics.json`` count from 1, as Keras's progress bar does
``metrics.json``         best validation dice / iou / pixel_accuracy and their epoch, the settings, the
                         devices, timing and training images per second
``learning_curves.png``  loss and Dice per epoch, training and validation (``viz.plot_learning_curves``)
``run.json``             what resuming needs: the settings, the best val_dice so far, the status
``backup/``              the last finished epoch: weights, optimizer state, epoch number (Keras's
                         ``BackupAndRestore``)
``logs/``                TensorBoard logs: ``tensorboard --logdir OUT/logs``
=======================  ==========================================================================

Every file is replaced in one atomic rename (or appended to, for ``history.csv``), so a kill never
leaves half a file; a folder that holds files this module did not write is refused, so nothing the user
made is overwritten.

The module loads no TensorFlow (the learning curves' figure module is imported when it draws), so that
the command line can check an output folder at once.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import statistics
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unet_helpers.errors import UnetTutorialError

if TYPE_CHECKING:
    import keras

BEST_MODEL = "best.keras"
BEST_MODEL_IN_PROGRESS = "best.partial.keras"  # ModelCheckpoint writes here; renamed to BEST_MODEL
HISTORY = "history.csv"
METRICS = "metrics.json"
LEARNING_CURVES = "learning_curves.png"
RUN_RECORD = "run.json"
BACKUP = "backup"
BACKUP_METADATA = "training_metadata.json"  # BackupAndRestore's record of the last finished epoch
TENSORBOARD_LOGS = "logs"
MONITOR = "val_dice"

GENERATOR = "unet_helpers.train"  # in run.json: which folders are a run's (kept from the first version)
RECORD_VERSION = 1
# Settings that may differ when a run is resumed: they change neither the model nor its saved state
# (squeezed_from, the one size of the images a run squeezed, is measured, and runs before it lack it).
RESUMABLE_CHANGES = frozenset(
    {"epochs", "time_limit", "jit_compile", "replicas", "profile"}
    | {"early_stopping_patience", "reduce_lr_patience", "squeezed_from"}
)

# The status of a run in run.json.
TRAINING = "training"  # in progress, or killed (the record cannot tell)
INTERRUPTED = "interrupted"  # stopped by Ctrl-C
FINISHED = "finished"  # trained all its epochs
STOPPED_EARLY = "stopped early"  # EarlyStopping ended it
TIME_LIMIT_REACHED = "reached its time limit"  # another epoch would not have ended within the time limit


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader (or a kill) sees the old file or the new, never half."""
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "w", newline="") as file:  # the line ends as given
        file.write(text)
    os.replace(partial, path)


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


def _as_json(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists, paths strings)."""
    return json.loads(json.dumps(value, default=str))


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _read_record(path: Path) -> dict[str, Any] | None:
    """The folder's run.json if this module wrote it, else None."""
    try:
        record = json.loads((path / RUN_RECORD).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("generator") == GENERATOR else None


def recorded_settings(path: str | Path) -> dict[str, Any]:
    """The settings of the run that folder ``path`` holds, as run.json keeps them; {} if it holds none."""
    return (_read_record(Path(path).expanduser()) or {}).get("settings") or {}


def check_folder(path: str | Path) -> Path:
    """``path`` if it can hold a run: new, empty, or a run folder; else a one-line error.

    Raises:
        UnetTutorialError: ``path`` is a file, or a folder that holds files this package did not write
            (nothing in it is changed).
    """
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise UnetTutorialError(f"output folder '{path}' is a file: choose a folder for the run's outputs.")
    if path.exists() and any(path.iterdir()) and _read_record(path) is None:
        found = ", ".join(sorted(child.name for child in path.iterdir())[:3])
        raise UnetTutorialError(
            f"output folder '{path}' already holds files that unet_helpers.train did not write ({found}, "
            "...): choose a new or empty folder; nothing in this one was changed."
        )
    return path


class RunFolder:
    """The output folder of one training run, and its record ``run.json``.

    Open it with :meth:`open`; then :meth:`restore` loads the last finished epoch into a model,
    :meth:`start` records that training begins, :meth:`record_best` notes each better epoch (the
    best-model callback calls it), and :meth:`close` writes ``metrics.json`` and the learning curves.

    Attributes:
        path: the folder.
        settings: what identifies the run (JSON values): compared when it is resumed.
        record: ``run.json`` as a dict (empty for a new run).
    """

    def __init__(self, path: Path, settings: Mapping[str, Any], record: dict[str, Any]) -> None:
        self.path, self.settings, self.record = path, dict(settings), record

    @classmethod
    def open(cls, path: str | Path, *, settings: Mapping[str, Any]) -> RunFolder:
        """The run folder ``path`` for a run with ``settings``: new, empty, or holding this run.

        Raises:
            UnetTutorialError: ``path`` is a file, holds files this module did not write, or holds a run
                with other settings (beyond :data:`RESUMABLE_CHANGES`) that has saved something.
        """
        folder = cls(check_folder(path), _as_json(settings), {})
        folder.record = _read_record(folder.path) or {}
        differences = folder._settings_differences()
        if differences and (folder.completed_epochs or (folder.path / BEST_MODEL).exists()):
            raise UnetTutorialError(
                f"'{folder.path}' holds a run with other settings: {'; '.join(differences)}. Resume it with "
                "its own settings, or choose another output folder."
            )
        return folder

    @property
    def completed_epochs(self) -> int:
        """Epochs whose state ``BackupAndRestore`` saved: training resumes after them."""
        try:
            return int(json.loads((self.path / BACKUP / BACKUP_METADATA).read_text())["epoch"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    @property
    def best(self) -> dict[str, Any] | None:
        """``{"epoch": counted from 1, "val_dice": ..., ...}`` of the best epoch so far, or None."""
        return self.record.get("best") if (self.path / BEST_MODEL).exists() else None

    @property
    def epoch_seconds(self) -> list[float]:
        """How long each finished epoch took (``seconds`` of history.csv), all sessions, in epoch order."""
        history, completed = read_history(self.path / HISTORY), self.completed_epochs
        rows = zip(history.get("epoch", []), history.get("seconds", []), strict=False)  # old runs: no seconds
        return [seconds for epoch, seconds in rows if epoch < completed]

    def describe_best(self) -> str:
        """ " (best val_dice so far 0.8123, at epoch 7)", or "" before any epoch has finished."""
        best = self.best
        return f" (best {MONITOR} so far {best[MONITOR]:.4f}, at epoch {best['epoch']})" if best else ""

    def finished_before(self, epochs: int) -> str | None:
        """If the run has finished and ``epochs`` asks for no more, a sentence saying so; else None."""
        completed = self.completed_epochs
        asked_before = max(self.record.get("epochs", 0), completed)
        if self.record.get("status") not in (FINISHED, STOPPED_EARLY) or epochs > asked_before:
            return None
        return (
            f"'{self.path}' holds a run that has {self.record['status']} after {completed} epochs"
            f"{self.describe_best()}; nothing was trained. To train on from epoch {completed + 1}, ask for "
            f"more than {asked_before} epochs."
        )

    def restore(self, model: keras.Model) -> int:
        """Load the last finished epoch into ``model`` (weights and optimizer); return it (0: none).

        A signal that lands while Keras writes its backup can leave a weights file that opens but lacks
        some layers, or no epoch record yet. ``BackupAndRestore`` falls back to the previous backup (the
        ``.bkp`` files that ``double_checkpoint`` keeps) only for a file that does not open at all, and
        fails on the rest. Here any failure falls back to it; with none usable, the backup is removed and
        training starts over (a failed load may have set some weights: reset them, as
        ``training._restored_model`` does). Build the optimizer first, inside the strategy's scope
        (``multi_worker.built_model``), and call this outside it: Keras's loading creates a throwaway
        optimizer, whose variables would otherwise be collective ones on several machines.
        """
        backup = self.path / BACKUP
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
                return self.completed_epochs
            except (OSError, ValueError, KeyError):
                if attempt == "previous" or not all(path.exists() for path in previous):
                    break
                print(
                    f"The last backup in '{backup}' was cut short while it was written; "
                    "using the one before it."
                )
                for source, target in zip(previous, (weights, metadata), strict=True):
                    shutil.copyfile(source, target)
        shutil.rmtree(backup, ignore_errors=True)
        return 0

    def start(self, epochs: int) -> None:
        """Record that training up to ``epochs`` begins, after tidying what a kill may have left."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.drop_unsaved_epochs()
        (self.path / BEST_MODEL_IN_PROGRESS).unlink(missing_ok=True)  # a kill while it was written
        self._update(settings=self.settings, epochs=epochs, status=TRAINING, best=self.best)

    def record_best(self, epoch: int, scores: Mapping[str, float]) -> dict[str, Any] | None:
        """Record a new best epoch (counted from 1) and its validation scores; return the previous best.

        Called before ``best.partial.keras`` is renamed to ``best.keras``: a kill between the two leaves
        a record above the file's score, which can only keep a worse model out, never let one in.
        """
        previous = self.record.get("best")
        self._update(best={"epoch": epoch, **{key: float(value) for key, value in scores.items()}})
        return previous

    def drop_unsaved_epochs(self) -> None:
        """Keep only the rows of ``history.csv`` whose epochs the backup holds: the others train again.

        CSVLogger writes an epoch's row before BackupAndRestore saves it, so a kill between the two leaves
        a row ahead of the backup; an interrupted write leaves a row cut short. With no epoch left, the
        file goes, header too, so that CSVLogger writes a fresh header for a run that starts over.
        """
        path, completed = self.path / HISTORY, self.completed_epochs
        try:
            with open(path, newline="") as file:  # as written: CSVLogger ends rows with \r\n
                lines = file.read().splitlines(keepends=True)
        except FileNotFoundError:
            return
        rows = lines[1:]
        kept = [
            row
            for row in rows
            if row.endswith("\n") and row.split(",", 1)[0].isdigit() and int(row.split(",", 1)[0]) < completed
        ]
        if not kept:
            path.unlink()
        elif len(kept) != len(rows):
            write_atomically(path, lines[0] + "".join(kept))

    def close(
        self, status: str, *, images_per_epoch: int | None, device: Mapping[str, Any]
    ) -> dict[str, list[float]]:
        """Record the run's ``status``, write ``metrics.json`` and the learning curves; return the history.

        Args:
            status: :data:`FINISHED`, :data:`STOPPED_EARLY`, :data:`TIME_LIMIT_REACHED`,
                :data:`INTERRUPTED`, or the recorded status
                again (for a run that had finished before).
            images_per_epoch: training images per epoch, for the images per second in metrics.json.
            device: what trained the run (``devices.describe``).
        """
        if status == INTERRUPTED:
            self.drop_unsaved_epochs()
        self._update(status=status)
        history = read_history(self.path / HISTORY)
        write_atomically(
            self.path / METRICS, json.dumps(self._report(history, images_per_epoch, device), indent=2) + "\n"
        )
        if history.get("epoch"):
            from unet_helpers import viz

            figure = viz.plot_learning_curves(history, title=f"Learning curves: {self.path.name}")
            figure.savefig(self.path / LEARNING_CURVES, dpi=100, facecolor="white")
        return history

    def _report(
        self, history: dict[str, list[float]], images_per_epoch: int | None, device: Mapping[str, Any]
    ) -> dict[str, Any]:
        seconds, train_seconds = history.get("seconds", []), history.get("train_seconds", [])
        # The first epoch also traces and compiles the step: leave it out of the speed when there are others.
        steady = _median(train_seconds[1:] or train_seconds)
        best = self.record.get("best")
        return {
            "best_epoch": best["epoch"] if best else None,
            "best": {key: value for key, value in best.items() if key != "epoch"} if best else None,
            "status": self.record.get("status"),
            "epochs_completed": len(history.get("epoch", [])),
            "epochs": self.record.get("epochs"),
            "settings": self.record.get("settings"),
            "device": dict(device),
            "timing": {
                "training_seconds": round(sum(seconds), 3),
                "seconds_per_epoch": _median(seconds[1:] or seconds),
                "train_images_per_epoch": images_per_epoch,
                "images_per_second": round(images_per_epoch / steady, 2)
                if images_per_epoch and steady
                else None,
                "note": "median over epochs after the first (which compiles the step); "
                "images/s: training steps",
            },
            "files": {
                "best_model": BEST_MODEL,
                "history": HISTORY,
                "learning_curves": LEARNING_CURVES,
                "tensorboard": TENSORBOARD_LOGS,
            },
        }

    def _update(self, **changes: Any) -> None:
        self.record = {"generator": GENERATOR, "version": RECORD_VERSION, **self.record, **changes}
        write_atomically(self.path / RUN_RECORD, json.dumps(self.record, indent=2) + "\n")

    def _settings_differences(self) -> list[str]:
        recorded = self.record.get("settings", {})
        names = sorted((set(recorded) | set(self.settings)) - RESUMABLE_CHANGES)
        return [
            f"{name}={recorded.get(name)!r} (now {self.settings.get(name)!r})"
            for name in names
            if recorded.get(name) != self.settings.get(name)
        ]
