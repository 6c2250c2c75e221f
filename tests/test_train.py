"""Training: resuming after a kill or Ctrl-C, the best model kept, the GPU switches, several devices, the CLI.

Everything trains a tiny UNet (base_filters=4) on a dozen synthetic 32x32 images for a few epochs. The
command line runs in subprocesses where a test must kill it or needs a fresh TensorFlow; elsewhere
``train_unet`` and ``main`` run in this process.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from unet_helpers import data, synthetic, train
from unet_helpers.errors import UnetTutorialError

IMAGE_SIZE = 32
BASE_FILTERS = 4
BATCH_SIZE = 4
NUM_IMAGES = 12
TINY = {"num_classes": 2, "image_size": IMAGE_SIZE, "base_filters": BASE_FILTERS, "verbose": 0}


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    return synthetic.generate_dataset(
        tmp_path_factory.mktemp("dataset") / "cells",
        num_samples=NUM_IMAGES,
        image_size=IMAGE_SIZE,
        progress=False,
    )


@pytest.fixture(scope="module")
def splits(dataset_dir):
    """(train, validation) batches of the tiny dataset, as the command line loads them."""
    options = {"image_size": IMAGE_SIZE, "batch_size": BATCH_SIZE, "seed": 0, "progress": False}
    return (
        data.load_dataset(dataset_dir, split="train", augment=True, **options),
        data.load_dataset(dataset_dir, split="validation", **options),
    )


def file_state(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def set_recorded_best(out_dir: Path, val_dice: float) -> None:
    record = json.loads((out_dir / train.RUN_RECORD).read_text())
    record["best"][train.MONITOR] = val_dice
    (out_dir / train.RUN_RECORD).write_text(json.dumps(record))


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
    first = train.train_unet(train=splits[0], validation=splits[1], out_dir=out, epochs=2, **TINY)
    assert first.status == train.FINISHED and first.epochs_completed == 2
    assert first.best_model_path == out / train.BEST_MODEL
    assert first.best_val_dice == max(first.history[train.MONITOR])

    # Resumed with a recorded best no epoch can reach: best.keras stays as it is.
    set_recorded_best(out, 0.99)
    before = file_state(out / train.BEST_MODEL)
    # A row written after the last backup (a kill between the two): it is trained again, not duplicated.
    with open(out / train.HISTORY, "a") as history:
        history.write("2" + ",0.5" * 11 + "\n")
    time.sleep(0.01)  # a rewrite within the same clock tick would keep the mtime
    resumed = train.train_unet(train=splits[0], validation=splits[1], out_dir=out, epochs=4, **TINY)
    assert "after epoch 2" in resumed.message  # continued from the finished run's last state
    assert file_state(out / train.BEST_MODEL) == before
    assert resumed.best_val_dice == 0.99
    assert resumed.history["epoch"] == [0, 1, 2, 3]
    assert max(resumed.history[train.MONITOR][2:]) < 0.99
    assert not (out / train.BEST_MODEL_IN_PROGRESS).exists()

    # A better epoch does replace it, and its scores are recorded (-1 is below every Dice).
    set_recorded_best(out, -1.0)
    better = train.train_unet(train=splits[0], validation=splits[1], out_dir=out, epochs=5, **TINY)
    assert (out / train.BEST_MODEL).read_bytes() != before[0]
    assert better.best_epoch == 5 and better.best_val_dice == better.history[train.MONITOR][4]
    images = next(iter(splits[1]))[0]
    prediction = train.load_model(better.best_model_path).predict(images, verbose=0)
    assert prediction.shape == (len(images), IMAGE_SIZE, IMAGE_SIZE, 1)

    # The same call again trains nothing and says so; more epochs would train on.
    after = file_state(out / train.BEST_MODEL)
    again = train.train_unet(train=splits[0], validation=splits[1], out_dir=out, epochs=5, **TINY)
    assert "nothing was trained" in again.message and "more than 5 epochs" in again.message
    assert again.history == better.history and file_state(out / train.BEST_MODEL) == after

    # Other settings are refused, naming the difference.
    with pytest.raises(UnetTutorialError, match=r"base_filters=4 \(now 8\)"):
        train.train_unet(
            train=splits[0], validation=splits[1], out_dir=out, epochs=6, **(TINY | {"base_filters": 8})
        )


def test_a_backup_cut_short_falls_back_to_the_one_before_or_starts_over(tmp_path, splits, capsys):
    out = tmp_path / "run"
    train.train_unet(train=splits[0], validation=splits[1], out_dir=out, epochs=2, **TINY)
    backup = out / train.BACKUP
    weights, metadata = backup / "latest.weights.h5", backup / train.BACKUP_METADATA
    # Ctrl-C while Keras wrote the third epoch's backup: it had copied the second's to .bkp, and its new
    # weights file opens but holds no layer yet (Keras itself would fail on it).
    for path in (weights, metadata):
        shutil.copyfile(path, f"{path}.bkp")
    h5py.File(weights, "w").close()
    resumed = train.train_unet(train=splits[0], validation=splits[1], out_dir=out, epochs=3, **TINY)
    assert "cut short" in capsys.readouterr().out
    assert "Resuming" in resumed.message and "after epoch 2" in resumed.message
    assert resumed.history["epoch"] == [0, 1, 2]

    # A kill while Keras wrote its very first backup: half a weights file and no epoch record; nothing to
    # fall back on, so training starts over.
    for path in backup.iterdir():
        path.unlink()
    shutil.copyfile(out / train.BEST_MODEL, weights)  # any bytes that are no weights file
    restarted = train.train_unet(train=splits[0], validation=splits[1], out_dir=out, epochs=4, **TINY)
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
        with pytest.raises(train.TrainingInterrupted, match="Ctrl-C before epoch 2 of 6"):
            train.train_unet(
                train=train_batches, validation=validation_batches, out_dir=out, epochs=6, **TINY
            )
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back after training
    finally:
        signal.signal(signal.SIGINT, outside)
    assert interrupted and epochs_in_history(out) == [0]
    assert json.loads((out / train.RUN_RECORD).read_text())["status"] == train.INTERRUPTED


def test_early_stopping_ends_the_run_and_a_rerun_trains_nothing(tmp_path, splits):
    out = tmp_path / "run"
    # A learning rate too small to change any weight: val_dice stays where it started.
    stalled = {"learning_rate": 1e-12, "early_stopping_patience": 2, "epochs": 10} | TINY
    result = train.train_unet(train=splits[0], validation=splits[1], out_dir=out, **stalled)
    assert result.status == train.STOPPED_EARLY and result.epochs_completed == 3
    again = train.train_unet(train=splits[0], validation=splits[1], out_dir=out, **stalled)
    assert "has stopped early after 3 epochs" in again.message and "more than 10 epochs" in again.message
    assert again.history == result.history


def test_auto_switches_are_off_on_the_cpu():
    if train.gpu_compute_capabilities():
        pytest.skip("this machine has a GPU")
    assert train.resolve_mixed_precision("auto") == "float32"
    assert train.resolve_jit_compile("auto") is False
    assert train.resolve_mixed_precision("float16") == "mixed_float16"
    assert train.resolve_mixed_precision("bfloat16") == "mixed_bfloat16"
    with pytest.raises(UnetTutorialError, match="mixed_precision='half'"):
        train.resolve_mixed_precision("half")


def test_forced_float16_trains_on_the_cpu_with_a_float32_output(tmp_path, splits):
    result = train.train_unet(
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
        model = train.load_model(result.best_model_path)
    assert model.get_layer("enc1_conv1").dtype_policy.name == "mixed_float16"
    assert model.get_layer("enc1_conv1").compute_dtype == "float16"
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    images = next(iter(splits[1]))[0]
    assert keras.backend.standardize_dtype(model(images).dtype) == "float32"
    metrics = json.loads((tmp_path / "fp16" / train.METRICS).read_text())
    assert metrics["device"]["mixed_precision"] == "mixed_float16"


def test_learning_curves_figure_has_titles_labels_and_legends():
    history = {"epoch": [0, 1, 2], "loss": [1.0, 0.8, 0.7], "val_loss": [1.1, 0.9, 0.8]}
    history |= {"dice": [0.2, 0.4, 0.5], "val_dice": [0.3, 0.5, 0.45]}
    figure = train.plot_learning_curves(history, title="Run A")
    assert figure.get_suptitle() == "Run A"
    for axes in figure.axes:
        assert axes.get_title() and axes.get_xlabel() == "epoch" and axes.get_ylabel()
        assert axes.get_legend() is not None
    labels = [text.get_text() for text in figure.axes[1].get_legend().get_texts()]
    assert "best: 0.500 (epoch 2)" in labels


# --- several devices ------------------------------------------------------------------------------------

MIRRORED_SCRIPT = """
import json, sys
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from unet_helpers import data, train

options = {"image_size": 32, "batch_size": 4, "seed": 0, "progress": False}
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
result = train.train_unet(
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
    metrics = json.loads((tmp_path / "mirrored" / train.METRICS).read_text())
    assert metrics["device"]["replicas"] == 2 and metrics["device"]["strategy"] == "MirroredStrategy"
    assert (tmp_path / "mirrored" / train.BEST_MODEL).is_file()


MULTI_WORKER_SCRIPT = """
import json, sys
import tensorflow as tf

strategy = tf.distribute.MultiWorkerMirroredStrategy()  # reads TF_CONFIG; first, as it must be
import keras
from unet_helpers import train
from unet_helpers.errors import UnetTutorialError

report = {"replicas": strategy.num_replicas_in_sync}
batches = tf.data.Dataset.from_tensor_slices((tf.zeros((8, 32, 32, 3)), tf.zeros((8, 32, 32, 1)))).batch(4)
try:
    train.train_unet(train=batches, validation=batches, out_dir=sys.argv[1], num_classes=2, image_size=32,
                     base_filters=4, epochs=1, strategy=strategy)
except UnetTutorialError as error:
    report["train_unet"] = str(error)
with strategy.scope():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
try:
    model.fit(tf.data.Dataset.from_tensors((tf.zeros(4), tf.zeros(1))).repeat(8).batch(4), verbose=0)
    report["keras_fit"] = "trained"
except ValueError as error:
    report["keras_fit"] = str(error)[:300]
print(json.dumps(report))
"""


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("localhost", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def test_multi_worker_strategy_is_refused_because_keras_fit_fails_with_it(tmp_path):
    """Two workers on this machine. When Keras's own fit trains here, lift the refusal in train_unet."""
    workers = [f"localhost:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", MULTI_WORKER_SCRIPT, str(tmp_path / f"worker{index}")],
                env={**os.environ, "TF_CONFIG": json.dumps(tf_config)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = [process.communicate(timeout=240) for process in processes]
    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr[-3000:]
        report = json.loads(stdout.strip().splitlines()[-1])
        assert report["replicas"] == 2
        assert report["train_unet"] == train.MULTI_WORKER_UNSUPPORTED
        assert "PerReplica" in report["keras_fit"]  # Keras's failure, as seen with Keras 3.15.1


# --- the command line -----------------------------------------------------------------------------------


def cli_arguments(dataset_dir: Path, out: Path, epochs: int) -> list[str]:
    return [
        sys.executable, "-m", "unet_helpers.train", "--data", str(dataset_dir), "--out", str(out),
        "--epochs", str(epochs), "--image-size", str(IMAGE_SIZE), "--batch-size", str(BATCH_SIZE),
        "--base-filters", str(BASE_FILTERS), "--patience", "50",
    ]  # fmt: skip


def epochs_in_history(out: Path) -> list[int]:
    try:
        lines = (out / train.HISTORY).read_text().splitlines()[1:]
    except FileNotFoundError:
        return []
    return [int(line.split(",")[0]) for line in lines if line.strip()]


def handle_ctrl_c_by_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_and_wait_for_two_epochs(arguments: list[str], out: Path, log: Path) -> subprocess.Popen:
    """Start the command line (output to files: a full pipe would block it) and wait for two epochs.

    The second row of history.csv is written after the first epoch's backup is complete, and just before
    the second epoch's backup is written: a signal sent now interrupts that backup, or training.
    """
    with open(log.with_suffix(".out"), "w") as stdout, open(log.with_suffix(".err"), "w") as stderr:
        # As from a terminal: a shell that starts the tests in the background makes them ignore Ctrl-C,
        # and a child would inherit that.
        process = subprocess.Popen(
            arguments, stdout=stdout, stderr=stderr, text=True, preexec_fn=handle_ctrl_c_by_default
        )
    deadline = time.monotonic() + 240
    while len(epochs_in_history(out)) < 2:
        assert process.poll() is None, log.with_suffix(".err").read_text()[-3000:]
        assert time.monotonic() < deadline, "no epoch finished in time"
        time.sleep(0.02)
    return process


def first_epoch_trained(stdout: str) -> int:
    """The first epoch of Keras's progress lines, "Epoch 5/12", counted from 1."""
    return int(re.search(r"^Epoch (\d+)/\d+$", stdout, flags=re.MULTILINE).group(1))


def test_command_line_resumes_after_a_kill_and_writes_every_file(tmp_path, dataset_dir):
    out, epochs = tmp_path / "run", 12
    process = start_and_wait_for_two_epochs(cli_arguments(dataset_dir, out, epochs), out, tmp_path / "first")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    seen_before_kill = epochs_in_history(out)
    assert 2 <= len(seen_before_kill) < epochs, "the run ended before it was killed"

    completed = subprocess.run(
        cli_arguments(dataset_dir, out, epochs), capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    restarted_at = first_epoch_trained(completed.stdout)
    assert f"Resuming '{out}' after epoch {restarted_at - 1}:" in completed.stdout
    # It goes on after the last saved epoch, losing at most the one being written when it was killed.
    assert len(seen_before_kill) - 1 <= restarted_at - 1 <= len(seen_before_kill)
    assert epochs_in_history(out) == list(range(epochs))

    assert {path.name for path in out.iterdir()} >= {
        train.BEST_MODEL, train.HISTORY, train.METRICS, train.LEARNING_CURVES, train.TENSORBOARD_LOGS
    }  # fmt: skip
    metrics = json.loads((out / train.METRICS).read_text())
    assert set(metrics["best"]) >= {"val_dice", "val_iou", "val_pixel_accuracy"}
    history = train.read_history(out / train.HISTORY)
    assert {"loss", "val_loss", "dice", "val_dice", "learning_rate", "seconds", "train_seconds"} <= set(
        history
    )
    assert metrics["best"]["val_dice"] == max(history["val_dice"])
    assert history["val_dice"][metrics["best_epoch"] - 1] == metrics["best"]["val_dice"]
    assert (
        metrics["settings"]["data"] == str(dataset_dir.resolve()) and metrics["settings"]["epochs"] == epochs
    )
    assert metrics["timing"]["images_per_second"] > 0 and metrics["timing"]["train_images_per_epoch"] == 10
    assert (out / train.LEARNING_CURVES).read_bytes().startswith(b"\x89PNG")


def test_ctrl_c_saves_says_how_to_resume_and_resumes(tmp_path, dataset_dir):
    out, epochs = tmp_path / "run", 12
    process = start_and_wait_for_two_epochs(cli_arguments(dataset_dir, out, epochs), out, tmp_path / "first")
    process.send_signal(signal.SIGINT)
    process.wait(timeout=120)
    stderr = (tmp_path / "first.err").read_text()
    assert process.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr
    message = stderr.strip().splitlines()[-1]
    assert "Ctrl-C" in message and "run the same command" in message and "to resume from epoch" in message
    assert json.loads((out / train.RUN_RECORD).read_text())["status"] == train.INTERRUPTED

    completed = subprocess.run(
        cli_arguments(dataset_dir, out, epochs), capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "Resuming" in completed.stdout
    assert epochs_in_history(out) == list(range(epochs))


def run_main(capsys, *arguments: str) -> tuple[int, str]:
    code = train.main(list(arguments))
    return code, capsys.readouterr().err


def test_command_line_refuses_an_out_folder_with_other_files(tmp_path, dataset_dir, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    (out / "best.keras").write_bytes(b"my own model")
    before = {path.name: file_state(path) for path in out.iterdir()}
    code, stderr = run_main(capsys, "--data", str(dataset_dir), "--out", str(out), "--epochs", "1")
    assert code == 2
    assert stderr.count("\n") == 1 and "did not write" in stderr and str(out) in stderr
    assert {path.name: file_state(path) for path in out.iterdir()} == before


def test_command_line_mistakes_give_one_line_and_exit_2(tmp_path, dataset_dir, capsys):
    out = str(tmp_path / "out")
    code, stderr = run_main(capsys, "--data", str(tmp_path / "missing"), "--out", out)
    assert code == 2 and stderr.count("\n") == 1 and "missing" in stderr and "is not a folder" in stderr

    unpaired = tmp_path / "unpaired"
    for part in ("images", "masks"):
        (unpaired / part).mkdir(parents=True)
        for name in os.listdir(dataset_dir / part):
            (unpaired / part / name).write_bytes((dataset_dir / part / name).read_bytes())
    (unpaired / "masks" / "0003.png").unlink()
    code, stderr = run_main(
        capsys, "--data", str(unpaired), "--out", out, "--image-size", "32", "--epochs", "1"
    )
    assert code == 2 and stderr.count("\n") == 1 and "0003.png" in stderr and "no mask" in stderr
    assert not Path(out).exists() or not any(Path(out).iterdir())

    code, stderr = run_main(capsys, "--out", out, "--image-size", "30")
    assert code == 2 and "--image-size 30" in stderr and "24 or 32" in stderr
    for arguments in (["--epochs", "0"], ["--mixed-precision", "half"], ["--xla", "maybe"], []):
        with pytest.raises(SystemExit) as exit_info:
            train.main(["--out", out, *arguments] if arguments else [])
        stderr = capsys.readouterr().err
        assert exit_info.value.code == 2 and stderr.count("\n") == 1 and stderr.startswith("error:")


@pytest.fixture(scope="module")
def dark_object_dataset(tmp_path_factory, dataset_dir) -> Path:
    """The tiny dataset with its masks stored the other way round: object 0 (dark), background 255."""
    root = tmp_path_factory.mktemp("dark") / "cells"
    shutil.copytree(dataset_dir / "images", root / "images")
    (root / "masks").mkdir()
    for path in sorted((dataset_dir / "masks").glob("*.png")):
        mask = np.asarray(keras.utils.load_img(path, color_mode="grayscale"))
        keras.utils.save_img(root / "masks" / path.name, (255 * (mask == 0))[..., None], scale=False)
    return root


def loaded_by_the_command_line(monkeypatch, capsys, *arguments: str) -> dict:
    """What the command line hands to train_unet, without training."""
    handed = {}

    def capture(**kwargs):
        handed.update(kwargs)
        raise UnetTutorialError("captured")

    monkeypatch.setattr(train, "train_unet", capture)
    code, stderr = run_main(capsys, "--image-size", str(IMAGE_SIZE), "--batch-size", "4", *arguments)
    assert code == 2 and "captured" in stderr, stderr
    return handed


def object_fraction(batches) -> float:
    masks = np.concatenate([masks for _, masks in batches])
    assert set(np.unique(masks)) <= {0.0, 1.0}
    return float(masks.mean())


def test_command_line_reads_dark_objects_with_invert_or_a_view(tmp_path, dataset_dir, dark_object_dataset,
                                                               monkeypatch, capsys):  # fmt: skip
    options = {"image_size": IMAGE_SIZE, "batch_size": 4, "progress": False}
    truth = object_fraction(data.load_dataset(dataset_dir, split="validation", **options))
    assert 0.05 < truth < 0.45
    out = str(tmp_path / "out")
    common = ("--data", str(dark_object_dataset), "--out", out)

    as_stored = loaded_by_the_command_line(monkeypatch, capsys, *common)
    assert object_fraction(as_stored["validation"]) == pytest.approx(1 - truth)  # what --invert is for
    inverted = loaded_by_the_command_line(monkeypatch, capsys, *common, "--invert")
    assert object_fraction(inverted["validation"]) == pytest.approx(truth)
    assert inverted["settings"]["invert"] is True
    by_view = loaded_by_the_command_line(monkeypatch, capsys, *common, "--view", "isbi2012-membrane")
    assert object_fraction(by_view["validation"]) == pytest.approx(truth)
    assert by_view["settings"]["mask_values"] == {0: 1, 255: 0} and by_view["num_classes"] == 2

    # --no-shuffle-split validates on the last files in name order, as for slices of one stack.
    in_order = loaded_by_the_command_line(monkeypatch, capsys, *common, "--invert", "--no-shuffle-split")
    expected = data.load_dataset(dataset_dir, split="validation", shuffle_split=False, **options)
    assert np.array_equal(
        np.concatenate([masks for _, masks in in_order["validation"]]),
        np.concatenate([masks for _, masks in expected]),
    )


def test_command_line_reads_other_folder_names_and_suffixes(tmp_path, dataset_dir, monkeypatch, capsys):
    root = tmp_path / "renamed"
    shutil.copytree(dataset_dir / "images", root / "scans")
    (root / "labels").mkdir()
    for path in (dataset_dir / "masks").glob("*.png"):
        shutil.copy(path, root / "labels" / f"{path.stem}_mask.png")
    handed = loaded_by_the_command_line(
        monkeypatch, capsys, "--data", str(root), "--out", str(tmp_path / "out"),
        "--images", "scans", "--masks", "labels", "--mask-suffix", "_mask", "--channels", "1",
    )  # fmt: skip
    images, _ = next(iter(handed["validation"]))
    assert images.shape[-1] == 1 and handed["images_per_epoch"] == 10
    assert handed["settings"]["masks"] == "labels" and handed["settings"]["mask_suffix"] == "_mask"


def test_command_line_dataset_option_mistakes(tmp_path, dataset_dir, capsys):
    out = str(tmp_path / "out")
    mistakes = {
        ("--view", "isbi2012-membrane"): "needs --data",
        ("--data", str(dataset_dir), "--view", "oxford-pet-trimap", "--num-classes", "2"): "disagrees",
        ("--data", str(dataset_dir), "--num-classes", "3", "--invert"): "for binary masks",
        ("--data", str(dataset_dir), "--view", "isbi2012-membrane", "--invert"): "leave --invert out",
        ("--data", str(dataset_dir), "--num-classes", "1"): "count the background",
    }
    for arguments, expected in mistakes.items():
        code, stderr = run_main(capsys, "--out", out, *arguments)
        assert code == 2 and stderr.count("\n") == 1 and expected in stderr, (arguments, stderr)
    assert not Path(out).exists()
