"""Training (``training``, ``run_folder``, ``devices``): resuming after a kill or Ctrl-C, the best model kept,
the GPU switches, several GPUs (several machines: tests/test_multi_worker.py). The command line is tested in
tests/test_train.py.

Everything trains a tiny UNet (base_filters=4) on a dozen synthetic 32x32 images for a few epochs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from training_cases import BATCH_SIZE, IMAGE_SIZE, TINY, epochs_in_history, file_state, tiny_cells

from unet_helpers import config, data, devices, export, losses, metrics, run_folder, training
from unet_helpers.errors import UnetTutorialError
from unet_helpers.model import build_unet, describe_layers, load_model


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    return tiny_cells(tmp_path_factory.mktemp("dataset") / "cells")


@pytest.fixture(scope="module")
def splits(dataset_dir):
    """(train, validation) batches of the tiny dataset, as the command line loads them."""
    options = {"image_size": IMAGE_SIZE, "batch_size": BATCH_SIZE, "seed": 0, "progress": False}
    return (
        data.load_dataset(dataset_dir, split="train", augment=True, **options),
        data.load_dataset(dataset_dir, split="validation", **options),
    )


def set_recorded_best(out_dir: Path, val_dice: float) -> None:
    record = json.loads((out_dir / run_folder.RUN_RECORD).read_text())
    record["best"][run_folder.MONITOR] = val_dice
    (out_dir / run_folder.RUN_RECORD).write_text(json.dumps(record))


# --- Keras's callbacks do what train_unet relies on -------------------------------------------------------


def tiny_dense_model() -> keras.Model:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(keras.optimizers.Adam(0.01), "binary_crossentropy")
    return model


class StopAtEpoch(keras.callbacks.Callback):
    """Raises at the start of an epoch, as a kill would end training (after the last epoch's backup)."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("killed")


def test_backup_and_restore_restores_epoch_optimizer_and_learning_rate(tmp_path):
    x = np.random.default_rng(0).random((32, 4), dtype=np.float32)
    y = (x.sum(axis=1) > 2).astype(np.float32)
    backup = str(tmp_path / "backup")
    halve_every_epoch = keras.callbacks.LearningRateScheduler(lambda epoch, rate: rate * 0.5)

    def backup_callback():
        return keras.callbacks.BackupAndRestore(backup, double_checkpoint=True, delete_checkpoint=False)

    model = tiny_dense_model()
    with pytest.raises(RuntimeError, match="killed"):
        model.fit(
            x,
            y,
            batch_size=8,
            epochs=6,
            verbose=0,
            callbacks=[StopAtEpoch(3), halve_every_epoch, backup_callback()],
        )
    # The state at the kill: that of the end of epoch 3, which the backup holds.
    weights = model.get_weights()
    optimizer_state = [variable.numpy() for variable in model.optimizer.variables]  # Adam's moments too
    learning_rate = float(model.optimizer.learning_rate)

    resumed = tiny_dense_model()  # a new process builds a new model
    seen = {}
    record_start = keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: seen.update(
            weights=resumed.get_weights(),
            optimizer=[variable.numpy() for variable in resumed.optimizer.variables],
            learning_rate=float(resumed.optimizer.learning_rate),
        )
    )
    history = resumed.fit(
        x, y, batch_size=8, epochs=6, verbose=0, callbacks=[backup_callback(), record_start]
    )
    # Restored before the first step of the resumed run.
    assert all(np.array_equal(a, b) for a, b in zip(seen["weights"], weights, strict=True))
    assert len(optimizer_state) > 2 and int(optimizer_state[0]) == 12  # iterations: 3 epochs of 4 steps
    assert all(np.array_equal(a, b) for a, b in zip(seen["optimizer"], optimizer_state, strict=True))
    assert seen["learning_rate"] == learning_rate == pytest.approx(0.01 * 0.5**3)  # halved 3 times
    assert len(history.history["loss"]) == 3  # epochs 4, 5 and 6 only
    assert history.epoch == [3, 4, 5]

    # After a finished run, delete_checkpoint=False keeps the state: the same epochs train nothing,
    # more epochs go on from the last one.
    again = tiny_dense_model()
    assert again.fit(x, y, batch_size=8, epochs=6, verbose=0, callbacks=[backup_callback()]).epoch == []
    assert again.fit(x, y, batch_size=8, epochs=8, verbose=0, callbacks=[backup_callback()]).epoch == [6, 7]

    # Keras's default (delete_checkpoint=True) deletes it when a run ends: a rerun would start over.
    default = tiny_dense_model()
    default.fit(x, y, batch_size=8, epochs=9, verbose=0, callbacks=[keras.callbacks.BackupAndRestore(backup)])
    assert not Path(backup).exists()


def test_model_checkpoint_threshold_and_early_stopping_baseline_use_the_earlier_best(tmp_path):
    x = np.random.default_rng(0).random((32, 4), dtype=np.float32)
    y = (x.sum(axis=1) > 2).astype(np.float32)
    model = tiny_dense_model()
    checkpoint = keras.callbacks.ModelCheckpoint(
        tmp_path / "best.keras", monitor="loss", mode="max", save_best_only=True, initial_value_threshold=1e9
    )
    stopping = keras.callbacks.EarlyStopping(monitor="loss", mode="max", patience=2, baseline=1e9)
    history = model.fit(x, y, batch_size=8, epochs=10, verbose=0, callbacks=[checkpoint, stopping])
    assert not (tmp_path / "best.keras").exists()  # no epoch beat the threshold
    assert len(history.epoch) == 2  # patience counts epochs that do not beat the baseline


# --- train_unet -----------------------------------------------------------------------------------------


def test_best_model_is_only_replaced_by_a_better_one(tmp_path, splits):
    out = tmp_path / "run"
    first = training.train_unet(train=splits[0], validation=splits[1], out_dir=out, epochs=2, **TINY)
    assert first.status == run_folder.FINISHED and first.epochs_completed == 2
    assert first.best_model_path == out / run_folder.BEST_MODEL
    assert first.best_val_dice == max(first.history[run_folder.MONITOR])

    # Resumed with a recorded best no epoch can reach: best.keras stays as it is.
    set_recorded_best(out, 0.99)
    before = file_state(out / run_folder.BEST_MODEL)
    # A row written after the last backup (a kill between the two): it is trained again, not duplicated.
    with open(out / run_folder.HISTORY, "a") as history:
        history.write("2" + ",0.5" * 11 + "\n")
    time.sleep(0.01)  # a rewrite within the same clock tick would keep the mtime
    resumed = training.train_unet(train=splits[0], validation=splits[1], out_dir=out, epochs=4, **TINY)
    assert "after epoch 2" in resumed.message  # continued from the finished run's last state
    assert file_state(out / run_folder.BEST_MODEL) == before
    assert resumed.best_val_dice == 0.99
    assert resumed.history["epoch"] == [0, 1, 2, 3]
    assert max(resumed.history[run_folder.MONITOR][2:]) < 0.99
    assert not (out / run_folder.BEST_MODEL_IN_PROGRESS).exists()

    # A better epoch does replace it, and its scores are recorded (-1 is below every Dice).
    set_recorded_best(out, -1.0)
    better = training.train_unet(train=splits[0], validation=splits[1], out_dir=out, epochs=5, **TINY)
    assert (out / run_folder.BEST_MODEL).read_bytes() != before[0]
    assert better.best_epoch == 5 and better.best_val_dice == better.history[run_folder.MONITOR][4]
    images = next(iter(splits[1]))[0]
    prediction = load_model(better.best_model_path).predict(images, verbose=0)
    assert prediction.shape == (len(images), IMAGE_SIZE, IMAGE_SIZE, 1)

    # The same call again trains nothing and says so; more epochs would train on.
    after = file_state(out / run_folder.BEST_MODEL)
    again = training.train_unet(train=splits[0], validation=splits[1], out_dir=out, epochs=5, **TINY)
    assert "nothing was trained" in again.message and "more than 5 epochs" in again.message
    assert again.history == better.history and file_state(out / run_folder.BEST_MODEL) == after

    # Other settings are refused, naming the difference.
    with pytest.raises(UnetTutorialError, match=r"base_filters=4 \(now 8\)"):
        training.train_unet(
            train=splits[0], validation=splits[1], out_dir=out, epochs=6, **(TINY | {"base_filters": 8})
        )


def test_a_backup_cut_short_falls_back_to_the_one_before_or_starts_over(tmp_path, splits, capsys):
    out = tmp_path / "run"
    training.train_unet(train=splits[0], validation=splits[1], out_dir=out, epochs=2, **TINY)
    backup = out / run_folder.BACKUP
    weights, metadata = backup / "latest.weights.h5", backup / run_folder.BACKUP_METADATA
    # Ctrl-C while Keras wrote the third epoch's backup: it had copied the second's to .bkp, and its new
    # weights file opens but holds no layer yet (Keras itself would fail on it).
    for path in (weights, metadata):
        shutil.copyfile(path, f"{path}.bkp")
    h5py.File(weights, "w").close()
    resumed = training.train_unet(train=splits[0], validation=splits[1], out_dir=out, epochs=3, **TINY)
    assert "cut short" in capsys.readouterr().out
    assert "Resuming" in resumed.message and "after epoch 2" in resumed.message
    assert resumed.history["epoch"] == [0, 1, 2]

    # A kill while Keras wrote its very first backup: half a weights file and no epoch record; nothing to
    # fall back on, so training starts over.
    for path in backup.iterdir():
        path.unlink()
    shutil.copyfile(out / run_folder.BEST_MODEL, weights)  # any bytes that are no weights file
    restarted = training.train_unet(train=splits[0], validation=splits[1], out_dir=out, epochs=4, **TINY)
    assert "Training for 4 epochs" in restarted.message
    assert restarted.history["epoch"] == [0, 1, 2, 3]


def test_ctrl_c_while_keras_saves_the_best_model_still_stops_training(tmp_path, splits, monkeypatch):
    # Keras's save_model (3.15) wraps its weights store in a bare "except:", which swallows a
    # KeyboardInterrupt raised there: a Ctrl-C landing while best.keras is written would be lost.
    from keras.src.saving import saving_lib

    interrupted = []

    class StoreThenCtrlC(saving_lib.H5IOStore):
        def __init__(self, *args, **kwargs):
            if kwargs.get("archive") is not None and not interrupted:  # inside a .keras file: best.keras
                interrupted.append(True)
                os.kill(os.getpid(), signal.SIGINT)  # handled at the next bytecode: inside Keras's try
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(saving_lib, "H5IOStore", StoreThenCtrlC)
    train_batches, validation_batches = splits
    out = tmp_path / "run"
    # As in a terminal or Jupyter (a shell that starts the tests in the background makes them ignore Ctrl-C).
    outside = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(training.TrainingInterrupted, match="Ctrl-C before epoch 2 of 6"):
            training.train_unet(
                train=train_batches, validation=validation_batches, out_dir=out, epochs=6, **TINY
            )
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back after training
    finally:
        signal.signal(signal.SIGINT, outside)
    assert interrupted and epochs_in_history(out) == [0]
    assert json.loads((out / run_folder.RUN_RECORD).read_text())["status"] == run_folder.INTERRUPTED


def test_early_stopping_ends_the_run_and_a_rerun_trains_nothing(tmp_path, splits):
    out = tmp_path / "run"
    # A learning rate too small to change any weight: val_dice stays where it started.
    stalled = {"learning_rate": 1e-12, "early_stopping_patience": 2, "epochs": 10} | TINY
    result = training.train_unet(train=splits[0], validation=splits[1], out_dir=out, **stalled)
    assert result.status == run_folder.STOPPED_EARLY and result.epochs_completed == 3
    again = training.train_unet(train=splits[0], validation=splits[1], out_dir=out, **stalled)
    assert "has stopped early after 3 epochs" in again.message and "more than 10 epochs" in again.message
    assert again.history == result.history


def test_auto_switches_are_off_on_the_cpu():
    if devices.gpus():
        pytest.skip("this machine has a GPU")
    assert devices.resolve_mixed_precision("auto") == "float32"
    assert devices.resolve_jit_compile("auto") is False
    assert devices.resolve_mixed_precision("float16") == "mixed_float16"
    assert devices.resolve_mixed_precision("bfloat16") == "mixed_bfloat16"
    with pytest.raises(UnetTutorialError, match="mixed_precision='half'"):
        devices.resolve_mixed_precision("half")


def test_forced_float16_trains_on_the_cpu_with_a_float32_output(tmp_path, splits):
    result = training.train_unet(
        train=splits[0],
        validation=splits[1],
        out_dir=tmp_path / "fp16",
        epochs=1,
        mixed_precision="float16",
        **TINY,
    )
    assert keras.config.dtype_policy().name == "float32"  # restored after building the model
    assert np.isfinite(result.history["loss"][0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "Skipping variable loading for optimizer"
        model = load_model(result.best_model_path)
    assert model.get_layer("enc1_conv1").dtype_policy.name == "mixed_float16"
    assert model.get_layer("enc1_conv1").compute_dtype == "float16"
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    images = next(iter(splits[1]))[0]
    assert keras.backend.standardize_dtype(model(images).dtype) == "float32"
    metrics = json.loads((tmp_path / "fp16" / run_folder.METRICS).read_text())
    assert metrics["device"]["mixed_precision"] == "mixed_float16"


def test_bfloat16_trains_on_the_cpu_and_its_model_predicts_and_exports_in_float32(tmp_path, splits):
    """The CPU option the README measures (`--mixed-precision bfloat16`): no loss scaling, a float32
    output, and a TensorFlow Lite export whose predictions match the model's within bfloat16 rounding."""
    result = training.train_unet(
        train=splits[0],
        validation=splits[1],
        out_dir=tmp_path / "bf16",
        epochs=1,
        mixed_precision="bfloat16",
        **TINY,
    )
    assert keras.config.dtype_policy().name == "float32"
    assert np.isfinite(result.history["loss"][0])
    model = load_model(result.best_model_path)
    assert model.get_layer("enc1_conv1").compute_dtype == "bfloat16"
    assert not isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    images = next(iter(splits[1]))[0].numpy()
    probabilities = keras.ops.convert_to_numpy(model(images))
    assert probabilities.dtype == np.float32
    exported = export.load_exported(export.export_tflite(model, tmp_path / "bf16.tflite"))
    assert np.abs(exported(images) - probabilities).max() < 0.05  # bfloat16 keeps 8 bits of mantissa


# --- several devices ------------------------------------------------------------------------------------

MIRRORED_SCRIPT = """
import json, sys
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from unet_helpers import data, training

options = {"image_size": 32, "batch_size": 4, "seed": 0, "progress": False}
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
result = training.train_unet(
    train=data.load_dataset(sys.argv[1], split="train", **options),
    validation=data.load_dataset(sys.argv[1], split="validation", **options),
    out_dir=sys.argv[2], num_classes=2, image_size=32, base_filters=4, epochs=2, learning_rate=3e-3,
    strategy=strategy, verbose=0,
)
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "loss": result.history["loss"]}))
"""


def test_mirrored_strategy_trains_on_two_logical_cpus(tmp_path, dataset_dir):
    completed = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, str(dataset_dir), str(tmp_path / "mirrored")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    assert report["loss"][1] < report["loss"][0]  # it learns
    metrics = json.loads((tmp_path / "mirrored" / run_folder.METRICS).read_text())
    assert metrics["device"]["replicas"] == 2 and metrics["device"]["strategy"] == "MirroredStrategy"
    assert (tmp_path / "mirrored" / run_folder.BEST_MODEL).is_file()


# --- notebook 04 fits by hand what train_unet fits ----------------------------------------------------------

NOTEBOOK_04 = Path(__file__).parents[1] / "notebooks" / "04_training.ipynb"


class FitCalled(Exception):
    """Raised by the stand-in for ``keras.Model.fit``: what it was called with, and nothing trained."""


@pytest.fixture
def fit_calls(monkeypatch) -> list[tuple[keras.Model, dict]]:
    calls = []

    def fit(model, *args, **kwargs):
        calls.append((model, kwargs))
        raise FitCalled

    monkeypatch.setattr(keras.Model, "fit", fit)
    return calls


def compared(callback: keras.callbacks.Callback) -> dict:
    """The settings of a Keras callback that decide what it does (not where it writes)."""
    names = ("monitor", "mode", "save_best_only", "factor", "patience", "min_lr", "min_delta", "baseline")
    return {name: getattr(callback, name) for name in names if hasattr(callback, name)}


def test_notebook_04_fits_by_hand_what_train_unet_fits(tmp_path, fit_calls, splits):
    cell = next(
        "".join(cell["source"])
        for cell in json.loads(NOTEBOOK_04.read_text())["cells"]
        if "fit-by-hand" in cell["metadata"].get("tags", [])
    )
    profile = {"image_size": IMAGE_SIZE, "base_filters": TINY["base_filters"], "name": "test"}
    namespace = {
        "keras": keras,
        "build_unet": build_unet,
        "losses": losses,
        "metrics": metrics,
        "config": config,
        "profile": type("Profile", (), profile),
        "num_classes": 2,
        "train_batches": splits[0],
        "validation_batches": splits[1],
    }
    with pytest.raises(FitCalled):
        exec(cell, namespace)
    with pytest.raises(FitCalled):
        training.train_unet(train=splits[0], validation=splits[1], out_dir=tmp_path / "run", epochs=2, **TINY)
    (by_hand, by_hand_fit), (packaged, packaged_fit) = fit_calls

    assert describe_layers(by_hand) == describe_layers(packaged)  # the same network
    assert describe_layers(packaged)[1]["name"] == "standardize"  # the recipe's, first after the input
    by_hand_config, packaged_config = by_hand.get_compile_config(), packaged.get_compile_config()
    for config_ in (by_hand_config, packaged_config):
        del config_["optimizer"]["config"]["name"]  # numbered by Keras: "adam", "adam_1", ...
    for part in ("optimizer", "loss", "metrics", "loss_weights", "weighted_metrics"):
        assert by_hand_config[part] == packaged_config[part], part
    assert by_hand_fit["validation_data"] is packaged_fit["validation_data"] is splits[1]
    packaged_callbacks = packaged_fit["callbacks"]
    for callback in by_hand_fit["callbacks"]:
        same_kind = [other for other in packaged_callbacks if type(other) is type(callback)]
        assert [compared(other) for other in same_kind] == [compared(callback)], type(callback).__name__
    assert {type(callback) for callback in by_hand_fit["callbacks"]} == {
        keras.callbacks.ModelCheckpoint,
        keras.callbacks.ReduceLROnPlateau,
        keras.callbacks.EarlyStopping,
    }


def test_under_a_time_limit_the_time_decides_and_early_stopping_is_off(tmp_path, fit_calls, splits):
    for time_limit, out in ((None, "unlimited"), (5.0, "limited")):
        with pytest.raises(FitCalled):
            training.train_unet(
                train=splits[0],
                validation=splits[1],
                out_dir=tmp_path / out,
                epochs=2,
                time_limit=time_limit,
                **TINY,
            )
    (_, unlimited), (_, limited) = fit_calls
    kinds = [{type(callback).__name__ for callback in fit["callbacks"]} for fit in (unlimited, limited)]
    assert kinds[0] - kinds[1] == {"EarlyStopping"}
    assert kinds[1] - kinds[0] == {"TimeBudget"}
    assert "ReduceLROnPlateau" in kinds[1]


# --- a time limit ----------------------------------------------------------------------------------------


def test_a_time_limit_stops_within_an_epoch_of_it_and_a_resumed_run_uses_only_what_is_left(tmp_path, splits):
    out = tmp_path / "run"
    options = {"train": splits[0], "validation": splits[1], "out_dir": out, "epochs": 1000, **TINY}
    options["early_stopping_patience"] = 1000  # only the time may end these runs
    limit = 0.15  # minutes: 9 s, several epochs of the tiny UNet

    first = training.train_unet(time_limit=limit, **options)
    seconds = first.history["seconds"]
    assert first.status == run_folder.TIME_LIMIT_REACHED and 3 <= len(seconds) < 1000
    assert first.best_model_path == out / run_folder.BEST_MODEL and first.best_model_path.is_file()
    assert limit * 60 - 1.5 * max(seconds) <= sum(seconds) <= limit * 60 + max(seconds)
    assert "reached its time limit of 0.15 min" in first.message

    # The same run with a limit twice as long trains about one limit more: only what is left of it.
    second = training.train_unet(time_limit=2 * limit, **options)
    all_seconds = second.history["seconds"]
    assert second.status == run_folder.TIME_LIMIT_REACHED
    assert all_seconds[: len(seconds)] == seconds and len(all_seconds) > len(seconds)
    assert 2 * limit * 60 - 1.5 * max(all_seconds) <= sum(all_seconds) <= 2 * limit * 60 + max(all_seconds)

    # Called again with the limit it has used up, it trains nothing and says so.
    again = training.train_unet(time_limit=2 * limit, **options)
    assert again.history == second.history and "nothing was trained" in again.message


def test_time_budget_expects_the_median_of_the_last_three_epochs_but_no_first_one():
    budget = training.TimeBudget(60.0, earlier=[30.0, 2.0, 3.0, 2.5])
    assert budget.next_epoch_seconds() == 2.5  # 2.0, 3.0, 2.5: the first, long epoch no longer counts
    budget.session = [9.0]  # this session's first epoch: it traces the step, so it says nothing yet
    assert budget.next_epoch_seconds() == 2.5
    budget.session = [9.0, 4.0, 4.5]
    assert budget.next_epoch_seconds() == 4.0  # 2.5, 4.0, 4.5
    assert training.TimeBudget(60.0).next_epoch_seconds() == 0.0  # nothing known: train an epoch


def test_time_budget_stops_before_an_epoch_that_would_not_end_in_time():
    budget = training.TimeBudget(10.0)
    budget.set_model(tiny_dense_model())
    trained = []
    for epoch, seconds in enumerate([3.0] + [1.0] * 20):  # the first epoch also traces the step
        budget.on_epoch_begin(epoch)
        budget.on_epoch_end(epoch, {"seconds": seconds})
        trained.append(seconds)
        if budget.model.stop_training:
            break
    assert budget.reached and sum(trained) == 10.0  # the 11th second would need an epoch that ends at 11
