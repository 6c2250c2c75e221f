"""The training command line (``python -m unet_helpers.train``): resuming after a kill or Ctrl-C, every file
written, one-line mistakes, the dataset options.

It trains a tiny UNet (base_filters=4) on a dozen synthetic 32x32 images, in subprocesses where a test must
kill it, in this process (``train.main``) elsewhere.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from training_cases import BASE_FILTERS, BATCH_SIZE, IMAGE_SIZE, epochs_in_history, file_state, tiny_cells

from unet_helpers import config, data, run_folder, train, training
from unet_helpers.errors import UnetTutorialError


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    return tiny_cells(tmp_path_factory.mktemp("dataset") / "cells")


# --- the command line -----------------------------------------------------------------------------------


def cli_arguments(dataset_dir: Path, out: Path, epochs: int) -> list[str]:
    return [
        sys.executable, "-m", "unet_helpers.train", "--data", str(dataset_dir), "--out", str(out),
        "--epochs", str(epochs), "--image-size", str(IMAGE_SIZE), "--batch-size", str(BATCH_SIZE),
        "--base-filters", str(BASE_FILTERS), "--patience", "50",
    ]  # fmt: skip


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
        run_folder.BEST_MODEL, run_folder.HISTORY, run_folder.METRICS, run_folder.LEARNING_CURVES,
        run_folder.TENSORBOARD_LOGS,
    }  # fmt: skip
    metrics = json.loads((out / run_folder.METRICS).read_text())
    assert set(metrics["best"]) >= {"val_dice", "val_iou", "val_pixel_accuracy"}
    history = run_folder.read_history(out / run_folder.HISTORY)
    assert {"loss", "val_loss", "dice", "val_dice", "learning_rate", "seconds", "train_seconds"} <= set(
        history
    )
    assert metrics["best"]["val_dice"] == max(history["val_dice"])
    assert history["val_dice"][metrics["best_epoch"] - 1] == metrics["best"]["val_dice"]
    assert (
        metrics["settings"]["data"] == str(dataset_dir.resolve()) and metrics["settings"]["epochs"] == epochs
    )
    assert metrics["timing"]["images_per_second"] > 0 and metrics["timing"]["train_images_per_epoch"] == 10
    assert (out / run_folder.LEARNING_CURVES).read_bytes().startswith(b"\x89PNG")


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
    assert json.loads((out / run_folder.RUN_RECORD).read_text())["status"] == run_folder.INTERRUPTED

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

    monkeypatch.setattr(training, "train_unet", capture)
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
    # In the settings as run.json keeps them (keys as text), so that a resumed run compares equal.
    assert by_view["settings"]["mask_values"] == {"0": 1, "255": 0} and by_view["num_classes"] == 2

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


def test_command_line_time_limit_lets_the_time_decide_the_epochs(tmp_path, dataset_dir, monkeypatch, capsys):
    common = ("--data", str(dataset_dir), "--out", str(tmp_path / "out"), "--time-limit", "0.5")
    handed = loaded_by_the_command_line(monkeypatch, capsys, *common)
    assert handed["time_limit"] == 0.5 and handed["epochs"] == train.EPOCHS_UNDER_A_TIME_LIMIT
    assert loaded_by_the_command_line(monkeypatch, capsys, *common, "--epochs", "7")["epochs"] == 7
    assert loaded_by_the_command_line(monkeypatch, capsys, *common[:4])["time_limit"] is None


def test_command_line_standardizes_and_augments_as_profiles_say(tmp_path, dataset_dir, monkeypatch, capsys):
    common = ("--data", str(dataset_dir), "--out", str(tmp_path / "out"))
    for profile in config.PROFILES.values():
        handed = loaded_by_the_command_line(monkeypatch, capsys, *common, "--profile", profile.name)
        assert handed["settings"]["augment"] is profile.augment, profile.name
        assert handed["standardize"] is True
    assert {profile.augment for profile in config.PROFILES.values()} == {True, False}  # both ways tested
    chosen = loaded_by_the_command_line(
        monkeypatch, capsys, *common, "--profile", "workshop", "--augment", "--no-standardize"
    )
    assert chosen["settings"]["augment"] is True and chosen["standardize"] is False


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
