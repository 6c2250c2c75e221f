"""The predict command line: one mask and one overlay per input, at its size; mistakes exit 2 with one line.

Tiny saved models (base_filters=4, 32x32 inputs, trained for one step so that they load like a training
run's best.keras) predict a handful of small images of every supported kind. ``predict.main`` runs in
this process; one test runs the command in a subprocess, as a user would.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from unet_helpers import data, inference, predict, run_folder, synthetic, training
from unet_helpers.model import build_unet, load_model

# name: (height, width) of each input, of every kind the loader reads.
INPUTS = {
    "rgb.png": (50, 70),
    "gray.jpg": (96, 96),
    "gray16.tif": (33, 20),
    "rgba.png": (40, 40),
    "x.bmp": (37, 29),
}


def save_model(path: Path, *, channels: int = 3, num_classes: int = 2) -> Path:
    keras.utils.set_random_seed(0)
    model = build_unet((32, 32, channels), num_classes=num_classes, base_filters=4)
    training.compile_unet(model, num_classes=num_classes, jit_compile=False)
    images = np.random.default_rng(0).random((2, 32, 32, channels), dtype=np.float32)
    model.fit(images, np.zeros((2, 32, 32, 1), np.float32), epochs=1, verbose=0)
    model.save(path)
    return path


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    return save_model(tmp_path_factory.mktemp("model") / "best.keras")


@pytest.fixture(scope="module")
def three_class_model_file(tmp_path_factory) -> Path:
    return save_model(tmp_path_factory.mktemp("model") / "three.keras", num_classes=3)


@pytest.fixture
def inputs(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    image, _ = synthetic.make_sample(seed=0, index=0, image_size=96)
    for name, (height, width) in INPUTS.items():
        pixels = image[:height, :width]
        if name.startswith("gray16"):
            pixels = pixels[..., 1].astype(np.uint16) * 257
        elif name.startswith("gray"):
            pixels = pixels[..., 1]
        elif name.startswith("rgba"):
            pixels = np.dstack([pixels, np.full((height, width), 200, np.uint8)])
        Image.fromarray(pixels).save(folder / name)
    (folder / "notes.txt").write_text("not an image")
    return folder


def run_main(capsys, *arguments: object) -> tuple[int, str, str]:
    code = predict.main([str(argument) for argument in arguments])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def state(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in sorted(folder.iterdir())}


def test_one_mask_and_one_overlay_per_input_at_its_size(tmp_path, capsys, model_file, inputs):
    before = state(inputs)
    out = tmp_path / "out"
    code, stdout, stderr = run_main(capsys, "--model", model_file, "--input", inputs, "--out", out)
    assert code == 0, stderr
    model = load_model(model_file)
    for name in INPUTS:
        stem = Path(name).stem
        mask = np.asarray(Image.open(out / "masks" / f"{stem}.png"))
        overlay = Image.open(out / "overlays" / f"{stem}.png")
        assert mask.shape == INPUTS[name] and mask.dtype == np.uint8
        assert overlay.mode == "RGB" and overlay.size[::-1] == INPUTS[name]
        assert set(np.unique(mask)) <= {0, 255}
        # The mask is predict_image's on the image as read_image reads it: 0/1 written as 0/255.
        expected = inference.predict_image(model, data.read_image(inputs / name, channels=3))
        np.testing.assert_array_equal(mask, expected * 255)
        assert f"/{len(INPUTS)}] {name}: {INPUTS[name][1]}x{INPUTS[name][0]}, " in stdout
    assert sorted(path.name for path in (out / "masks").iterdir()) == sorted(
        f"{Path(name).stem}.png" for name in INPUTS
    )
    assert "[5/5]" in stdout and "Wrote 5 masks (0 and 255)" in stdout
    assert state(inputs) == before


def test_multi_class_masks_hold_class_indices(tmp_path, capsys, three_class_model_file, inputs):
    out = tmp_path / "out"
    code, stdout, stderr = run_main(
        capsys, "--model", three_class_model_file, "--input", inputs / "rgb.png", "--out", out
    )
    assert code == 0, stderr
    mask = np.asarray(Image.open(out / "masks" / "rgb.png"))
    model = load_model(three_class_model_file)
    np.testing.assert_array_equal(mask, inference.predict_image(model, data.read_image(inputs / "rgb.png")))
    assert set(np.unique(mask)) <= {0, 1, 2} and "class indices 0 to 2" in stdout
    assert [path.name for path in (out / "masks").iterdir()] == ["rgb.png"]

    code, _, stderr = run_main(
        capsys, "--model", three_class_model_file, "--input", inputs, "--out", out, "--threshold", "0.3"
    )
    assert code == 2 and stderr.count("\n") == 1 and "--threshold" in stderr


def test_threshold_tiles_and_overlap_reach_the_prediction(tmp_path, capsys, model_file, inputs):
    out = tmp_path / "out"
    arguments = ["--model", model_file, "--input", inputs / "gray.jpg", "--out", out]
    code, _, stderr = run_main(
        capsys, *arguments, "--threshold", "0.3", "--overlap", "0", "--batch-size", "3"
    )
    assert code == 0, stderr
    model = load_model(model_file)
    probabilities = inference.predict_tiled(model, data.read_image(inputs / "gray.jpg"), overlap=0)
    np.testing.assert_array_equal(
        np.asarray(Image.open(out / "masks" / "gray.png")),
        inference.to_mask(probabilities, threshold=0.3) * 255,
    )
    code, _, stderr = run_main(capsys, *arguments, "--tile-size", "64")
    assert code == 2 and stderr.count("\n") == 1 and "32x32" in stderr
    code, _, stderr = run_main(capsys, *arguments, "--scale", "0.5")
    assert code == 0, stderr
    scaled = inference.predict_tiled(model, data.read_image(inputs / "gray.jpg"), scale=0.5)
    mask = np.asarray(Image.open(out / "masks" / "gray.png"))
    np.testing.assert_array_equal(mask, inference.to_mask(scaled) * 255)
    assert mask.shape == Image.open(inputs / "gray.jpg").size[::-1]


@pytest.mark.parametrize(
    ("settings", "extra", "says", "how"),
    [
        ({"scale": 0.5}, [], "Predicting at scale 0.5, the scale the run", {"scale": 0.5}),
        ({"scale": 0.5}, ["--scale", "1"], None, {}),
        # Squeezed from one square size: its factor; from several sizes (or before runs said): squeezed.
        (
            {"scale": None, "image_size": 32, "squeezed_from": [64, 64]},
            [],
            "at scale 0.5: the",
            {"scale": 0.5},
        ),
        (
            {"scale": None, "image_size": 32, "squeezed_from": None},
            [],
            "squeezed to 32x32",
            {"squeeze_to": 32},
        ),
        ({"scale": None, "image_size": 32}, [], "squeezed to 32x32", {"squeeze_to": 32}),
        ({"image_size": 32}, [], None, {}),  # train_unet's own runs do not say how they saw their images
        ({}, ["--scale", "squeeze"], None, {"squeeze_to": 32}),  # the model's input size
    ],
)
def test_the_default_scale_is_how_the_run_saw_its_images(
    tmp_path, capsys, model_file, inputs, settings, extra, says, how
):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(model_file, run / "best.keras")
    record = {"generator": run_folder.GENERATOR, "settings": settings}
    (run / run_folder.RUN_RECORD).write_text(json.dumps(record))
    model, image = load_model(model_file), data.read_image(inputs / "rgb.png")  # 50x70: not square
    out = tmp_path / "out"
    code, stdout, stderr = run_main(
        capsys, "--model", run / "best.keras", "--input", inputs / "rgb.png", "--out", out, *extra
    )
    assert code == 0, stderr
    assert ("Predicting" in stdout) == (says is not None) and (says or "") in stdout
    expected = inference.to_mask(inference.predict_tiled(model, image, **how)) * 255
    np.testing.assert_array_equal(np.asarray(Image.open(out / "masks" / "rgb.png")), expected)


def test_squeeze_without_a_size_to_squeeze_to_is_one_line(tmp_path, capsys, inputs):
    """A model that takes any size, outside a run folder: nothing says what --scale squeeze means."""
    model = build_unet((None, None, 3), base_filters=4)
    model.save(tmp_path / "any.keras")
    out = tmp_path / "out"
    code, _, stderr = run_main(
        capsys,
        "--model",
        tmp_path / "any.keras",
        "--input",
        inputs / "rgb.png",
        "--out",
        out,
        "--scale",
        "squeeze",
    )
    assert code == 2 and stderr.count("\n") == 1 and "any.keras" in stderr and "--scale FACTOR" in stderr
    assert not out.exists()


def test_only_this_commands_own_files_are_replaced_in_out(tmp_path, capsys, model_file, inputs):
    out = tmp_path / "out"
    (out / "masks").mkdir(parents=True)
    (out / "masks" / "rgb.png").write_bytes(b"an earlier prediction")
    (out / "masks" / "mine.png").write_bytes(b"my own mask")
    (out / "notes.txt").write_text("my notes")
    code, _, stderr = run_main(capsys, "--model", model_file, "--input", inputs / "rgb.png", "--out", out)
    assert code == 0, stderr
    assert Image.open(out / "masks" / "rgb.png").size == (70, 50)
    assert (out / "masks" / "mine.png").read_bytes() == b"my own mask"
    assert (out / "notes.txt").read_text() == "my notes"
    assert sorted(path.name for path in (out / "masks").iterdir()) == ["mine.png", "rgb.png"]  # no leftovers


def test_mistakes_exit_2_with_one_line_that_names_the_file(tmp_path, capsys, model_file, inputs):
    out = tmp_path / "out"

    def fails(*arguments: object, says: str) -> None:
        code, _, stderr = run_main(capsys, *arguments)
        assert code == 2 and stderr.count("\n") == 1 and stderr.startswith("error:"), stderr
        assert says in stderr, stderr
        assert not (out / "masks").exists() or not any((out / "masks").iterdir())

    fails("--model", tmp_path / "missing.keras", "--input", inputs, "--out", out, says="missing.keras")
    not_a_model = tmp_path / "model.keras"
    not_a_model.write_text("not a model")
    fails("--model", not_a_model, "--input", inputs, "--out", out, says=f"'{not_a_model}' as a Keras model")
    fails(
        "--model", model_file, "--input", tmp_path / "nowhere", "--out", out, says="nowhere' does not exist"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    fails("--model", model_file, "--input", empty, "--out", out, says=f"no images in '{empty}'")
    fails("--model", model_file, "--input", inputs / "notes.txt", "--out", out, says="notes.txt' is no image")
    # A damaged file stops the command before anything is written, naming the file (last in order).
    (inputs / "zz_broken.png").write_bytes((inputs / "rgb.png").read_bytes()[:300])
    fails("--model", model_file, "--input", inputs, "--out", out, says="zz_broken.png")
    (inputs / "zz_broken.png").unlink()
    four_channels = tmp_path / "four.keras"
    build_unet((32, 32, 4), base_filters=4).save(four_channels)
    fails(
        "--model", four_channels, "--input", inputs, "--out", out, says="four.keras' takes 4-channel images"
    )
    fails("--model", model_file, "--input", inputs, "--out", inputs, says="is the input folder")
    earlier = tmp_path / "earlier"  # masks of an earlier run, given as input with that run's --out
    (earlier / "masks").mkdir(parents=True)
    (earlier / "masks" / "rgb.png").write_bytes((inputs / "rgb.png").read_bytes())
    fails("--model", model_file, "--input", earlier / "masks", "--out", earlier, says="would overwrite it")
    valid = ["--model", str(model_file), "--input", str(inputs), "--out", str(out)]
    for arguments in (
        [*valid, "--batch-size", "0"],
        [*valid, "--threshold", "1.5"],
        [*valid, "--overlap", "-8"],
        [*valid, "--scale", "0"],
        ["--model", str(model_file)],
    ):
        with pytest.raises(SystemExit) as exit_info:
            predict.main(arguments)
        stderr = capsys.readouterr().err
        assert exit_info.value.code == 2 and stderr.count("\n") == 1 and stderr.startswith("error:"), stderr


def test_help_says_what_the_masks_hold(capsys):
    with pytest.raises(SystemExit) as exit_info:
        predict.main(["--help"])
    assert exit_info.value.code == 0
    assert "0 and 255" in capsys.readouterr().out


def test_the_command_runs_as_a_module(tmp_path, model_file, inputs):
    out = tmp_path / "out"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "unet_helpers.predict",
            "--model",
            model_file,
            "--input",
            inputs,
            "--out",
            out,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert len(list((out / "masks").iterdir())) == len(INPUTS) == len(list((out / "overlays").iterdir()))
    assert "Wrote 5 masks" in completed.stdout
