"""Training on several machines (``multi_worker``, ``--strategy multi-worker``): two workers on this machine
(127.0.0.1), each a command-line process with its own TF_CONFIG, train as one machine does on the same global
batch; a killed worker stops the other at once, and the same commands resume. Keras's own ``fit`` still
fails under the strategy (the reason for the custom loop).

Everything trains a tiny UNet (base_filters=4) on a dozen synthetic 32x32 images, in subprocesses.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from training_cases import BASE_FILTERS, IMAGE_SIZE, epochs_in_history, tiny_cells

from unet_helpers import run_folder, train
from unet_helpers.model import load_model

TRAIN_IMAGES = 10  # of tiny_cells' 12; 2 validate
# Global batch 3: batches of 3, 3, 3 and 1 images, split 2 + 1 and 1 + 0 between the two workers, so that
# the steps differ from a mean of the workers' means, and one worker meets an empty batch.
GLOBAL_BATCH = 3
# Two workers against one process fitting the same batches: the same numbers up to the order of float32
# additions (each worker sums the gradients of its part of a batch, then the all-reduce sums the parts).
# Measured: epoch 1 (4 steps) identical in every column; later, Adam magnifies those differences where a
# gradient is near 0 (its step is about learning_rate * sign): 1e-4 on the loss after 12 steps, up to 3.4e-3
# on the scores, whose pixels near p = 0.5 flip class. Mistakes move epoch 1 by 1.5e-5 (each worker's mean
# loss instead of the whole batch's) to 1e-2 (scores of one worker's part alone).
FIRST_EPOCH_TOLERANCE = 1e-6
LOSS_TOLERANCE = 1e-3
SCORE_TOLERANCE = 2e-2


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    return tiny_cells(tmp_path_factory.mktemp("dataset") / "cells")


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def tf_configs(count: int) -> list[str]:
    """TF_CONFIG for each of ``count`` workers on this machine, as each machine of a cluster would set it."""
    workers = [f"127.0.0.1:{port}" for port in free_ports(count)]
    return [
        json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        for index in range(count)
    ]


def command(dataset_dir: Path, out: Path, epochs: int, strategy: str = "multi-worker") -> list[str]:
    return [
        sys.executable, "-m", "unet_helpers.train", "--data", str(dataset_dir), "--out", str(out),
        "--epochs", str(epochs), "--image-size", str(IMAGE_SIZE), "--batch-size", str(GLOBAL_BATCH),
        "--base-filters", str(BASE_FILTERS), "--patience", "50", "--strategy", strategy,
    ]  # fmt: skip


def start(arguments: list[str], log: Path, tf_config: str | None = None) -> subprocess.Popen:
    """Start a command line with its output in files (a full pipe would block it)."""
    env = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    env |= {"TF_CONFIG": tf_config} if tf_config else {}
    with open(log.with_suffix(".out"), "w") as stdout, open(log.with_suffix(".err"), "w") as stderr:
        return subprocess.Popen(arguments, stdout=stdout, stderr=stderr, text=True, env=env)


def finish(process: subprocess.Popen, log: Path, timeout: float = 300) -> tuple[int, str, str]:
    """Wait for a process started by :func:`start` (kill it if it hangs); its code, stdout and stderr."""
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    return process.returncode, log.with_suffix(".out").read_text(), log.with_suffix(".err").read_text()


def start_workers(dataset_dir: Path, outs: list[Path], epochs: int, configs: list[str], logs: Path):
    return [
        start(command(dataset_dir, out, epochs), logs / f"worker{index}", config)
        for index, (out, config) in enumerate(zip(outs, configs, strict=True))
    ]


def test_two_workers_train_as_one_machine_does_on_the_same_global_batch(tmp_path, dataset_dir):
    epochs, outs = 3, [tmp_path / "chief", tmp_path / "worker"]
    single = start(command(dataset_dir, tmp_path / "single", epochs, strategy="none"), tmp_path / "single")
    workers = start_workers(dataset_dir, outs, epochs, tf_configs(2), tmp_path)
    for index, process in enumerate(workers):
        code, stdout, stderr = finish(process, tmp_path / f"worker{index}")
        assert code == 0, stderr[-3000:]
    code, _, stderr = finish(single, tmp_path / "single")
    assert code == 0, stderr[-3000:]

    # Only the chief writes: one best.keras, and nothing in the other worker's --out.
    assert (outs[0] / run_folder.BEST_MODEL).is_file() and not outs[1].exists()
    assert "training in step with the chief" in stdout
    metrics = json.loads((outs[0] / run_folder.METRICS).read_text())
    assert metrics["device"]["strategy"] == "MultiWorkerMirroredStrategy"
    assert metrics["device"]["workers"] == 2 and metrics["device"]["replicas"] == 2
    assert metrics["settings"]["batch_size"] == GLOBAL_BATCH and metrics["epochs_completed"] == epochs

    # The combined batch: one optimizer step per global batch of 3, as on one machine.
    steps = math.ceil(TRAIN_IMAGES / GLOBAL_BATCH)
    for out in (outs[0], tmp_path / "single"):
        best_epoch = json.loads((out / run_folder.METRICS).read_text())["best_epoch"]
        assert int(load_model(out / run_folder.BEST_MODEL).optimizer.iterations) == best_epoch * steps

    # The same scores, epoch by epoch, as one process fitting the same batches (metrics reduced over both
    # workers: each alone saw half of every batch and one of the two validation images).
    two, one = (run_folder.read_history(out / run_folder.HISTORY) for out in (outs[0], tmp_path / "single"))
    assert set(two) == set(one) and two["epoch"] == one["epoch"] == list(range(epochs))
    for name in ("loss", "dice", "val_loss", "val_dice", "val_iou", "val_pixel_accuracy", "learning_rate"):
        assert two[name][0] == pytest.approx(one[name][0], abs=FIRST_EPOCH_TOLERANCE), (name, two, one)
        tolerance = LOSS_TOLERANCE if name.endswith("loss") else SCORE_TOLERANCE
        assert np.allclose(two[name], one[name], rtol=0, atol=tolerance), (name, two[name], one[name])
    assert two["loss"][-1] < two["loss"][0]  # it learns


def test_a_killed_worker_stops_the_other_within_a_minute_and_the_same_commands_resume(tmp_path, dataset_dir):
    epochs, outs, configs = 6, [tmp_path / "chief", tmp_path / "worker"], tf_configs(2)
    chief, worker = start_workers(dataset_dir, outs, epochs, configs, tmp_path)
    deadline = time.monotonic() + 240
    while len(epochs_in_history(outs[0])) < 2:  # in epoch 3 now
        assert chief.poll() is None, (tmp_path / "worker0.err").read_text()[-3000:]
        assert time.monotonic() < deadline, "no epoch finished in time"
        time.sleep(0.02)
    worker.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    code, _, stderr = finish(chief, tmp_path / "worker0", timeout=120)
    stopped_after = time.monotonic() - killed
    assert code != 0 and stopped_after < 60, (code, stopped_after)
    assert "Traceback" not in stderr
    message = stderr.strip().splitlines()[-1]
    saved = len(epochs_in_history(outs[0]))
    assert 2 <= saved < epochs, "the run ended before the kill"
    assert message.startswith("error: worker 0 of 2: another worker stopped during epoch")
    assert f"epochs 1 to {saved} are saved" in message and f"to resume from epoch {saved + 1}." in message

    # The same commands again, on both "machines": the run goes on after the last saved epoch.
    (tmp_path / "again").mkdir()
    rerun = start_workers(dataset_dir, outs, epochs, configs, tmp_path / "again")
    results = [finish(process, tmp_path / "again" / f"worker{index}") for index, process in enumerate(rerun)]
    for code, _, stderr in results:
        assert code == 0, stderr[-3000:]
    assert f"Resuming '{outs[0]}' after epoch {saved}:" in results[0][1]
    assert f"Epoch {saved + 1}/{epochs}" in results[1][1]  # the other worker too started there
    assert epochs_in_history(outs[0]) == list(range(epochs)) and not outs[1].exists()


@pytest.mark.parametrize(
    "tf_config, expected",
    [
        (None, "needs TF_CONFIG"),
        ("{cluster", "is not JSON"),
        ('{"task": {"type": "worker", "index": 0}}', "no cluster of host:port"),
        (
            '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}',
            "names no place in its cluster",
        ),
    ],
)
def test_a_missing_or_wrong_tf_config_is_one_line_naming_what_to_set(
    tmp_path, capsys, monkeypatch, tf_config, expected
):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    code = train.main(["--out", str(tmp_path / "out"), "--strategy", "multi-worker"])
    stderr = capsys.readouterr().err
    assert code == 2 and stderr.count("\n") == 1 and expected in stderr and "TF_CONFIG=" in stderr, stderr
    assert not (tmp_path / "out").exists()


KERAS_FIT_SCRIPT = """
import json
import tensorflow as tf

strategy = tf.distribute.MultiWorkerMirroredStrategy()  # reads TF_CONFIG; first, as it must be
import keras

with strategy.scope():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
try:
    model.fit(tf.data.Dataset.from_tensors((tf.zeros(4), tf.zeros(1))).repeat(8).batch(4), verbose=0)
    report = "trained"
except ValueError as error:
    report = str(error)[:300]
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "keras_fit": report}))
"""


def test_keras_fit_still_fails_under_multi_worker_strategy(tmp_path):
    """keras-team/keras issue 20585, with two workers on this machine. When Keras's own fit trains here,
    ``multi_worker.fit_function`` can return ``model.fit`` for this strategy too."""
    processes = [
        start([sys.executable, "-c", KERAS_FIT_SCRIPT], tmp_path / f"worker{index}", config)
        for index, config in enumerate(tf_configs(2))
    ]
    for index, process in enumerate(processes):
        code, stdout, stderr = finish(process, tmp_path / f"worker{index}", timeout=240)
        assert code == 0, stderr[-3000:]
        report = json.loads(stdout.strip().splitlines()[-1])
        assert report["replicas"] == 2
        assert "PerReplica" in report["keras_fit"]  # Keras's failure, as seen with Keras 3.15.1
