"""``scale="auto"`` (the command line's default ``--scale auto``): train at the images' own size where
squeezing would thin structures out or mix magnifications, squeeze otherwise (``unet_helpers.scales``)."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unet_helpers import data, inference, model, predict, run_folder, scales, train

WINDOW = 48
# Squeezed to 48, these shrink by 1 to 1.5: 8-pixel squares stay over 5 pixels wide (not thin), and are
# 9 pixels across, under a third of a window (small objects).
MIXED_SIZES = [(64, 80), (48, 48), (72, 48), (56, 96)]


def write_folder(root: Path, sizes: list[tuple[int, int]], object_side: int, specks: int = 0) -> Path:
    """Noise images whose masks hold squares of ``object_side`` pixels, 4 to 12 of them per image, and
    ``specks`` single pixels (a JPEG mask's noise) in the first column."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for index, (height, width) in enumerate(sizes * 3):
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        mask = np.zeros((height, width), np.uint8)
        for row in range(0, height - object_side, 2 * object_side or height):
            for column in range(0, width - object_side, 2 * object_side or width):
                mask[row : row + object_side, column : column + object_side] = 255
        mask[height - 2 * specks : height : 2, 0] = 255
        Image.fromarray(image).save(root / "images" / f"{index}.png")
        Image.fromarray(mask).save(root / "masks" / f"{index}.png")
    return root


def choice(root: Path) -> scales.ScaleChoice:
    return scales.choose_scale(data.scan_dataset(root, progress=False), image_size=WINDOW)


def test_object_diameters_are_those_of_discs_of_the_same_area_per_connected_region(tmp_path):
    mask = np.zeros((40, 40), np.uint8)
    mask[2:6, 2:6] = 1  # 16 pixels
    mask[10:12, 10:12] = 1  # 4 pixels, and 2 more touching it only at a corner: one region of 6
    mask[12, 12] = mask[13, 13] = 1
    mask[20:30, 20:30] = 1  # 100 pixels
    mask[35:38, 35:38] = 2  # a second class counts as objects too: 9 pixels
    diameters = np.sort(scales.object_diameters([mask]))
    np.testing.assert_allclose(diameters, np.sqrt(4 / np.pi * np.array([6.0, 9.0, 16.0, 100.0])))


def test_structure_width_is_the_narrower_sides_and_specks_do_not_count():
    mask = np.zeros((40, 40), np.uint8)
    mask[:, 10:16] = 1  # a stripe 6 pixels wide; the background beside it is 10 and 24 wide
    assert scales.structure_width(mask) == pytest.approx(6, abs=0.1)
    mask[:, 30] = mask[5:8, 2] = 255  # an ignored line (background) and a speck of 3 pixels
    assert scales.structure_width(mask) == pytest.approx(6, abs=0.1)
    mask[20:22, 12:14] = 0  # a hole of 4 pixels in the stripe
    assert scales.structure_width(mask) == pytest.approx(6, abs=0.1)
    assert scales.structure_width(np.zeros((40, 40), np.uint8)) is None


def test_one_image_size_is_squeezed(tmp_path):
    picked = choice(write_folder(tmp_path / "set", [(64, 80)], object_side=8))
    assert picked.scale is None and "every image is 64x80" in picked.reason


def test_thin_structures_of_one_image_size_train_at_their_own_size(tmp_path):
    picked = choice(write_folder(tmp_path / "set", [(64, 80)], object_side=4))  # 2.7 pixels squeezed
    assert picked.scale == 1.0 and "thin structures" in picked.reason


def test_several_sizes_with_small_objects_train_at_their_own_size(tmp_path):
    picked = choice(write_folder(tmp_path / "set", MIXED_SIZES, object_side=8))
    assert picked.scale == 1.0 and "4 sizes" in picked.reason


@pytest.mark.parametrize(
    ("sizes", "object_side", "specks", "reason"),
    [
        (MIXED_SIZES, 16, 0, "objects are large"),  # 18 pixels across: more than a third of a window
        (MIXED_SIZES, 16, 10, "objects are large"),  # more specks than objects: specks do not count
        ([(20, 30), (24, 24), (64, 64)], 8, 0, "narrower than 48"),
        (MIXED_SIZES, 0, 0, "no objects"),
        (MIXED_SIZES, 0, 10, "no objects"),
    ],
)
def test_several_sizes_are_squeezed_for_large_objects_small_images_or_empty_masks(
    tmp_path, sizes, object_side, specks, reason
):
    picked = choice(write_folder(tmp_path / "set", sizes, object_side=object_side, specks=specks))
    assert picked.scale is None and reason in picked.reason


def test_load_splits_auto_gives_what_it_chose(tmp_path):
    mixed = write_folder(tmp_path / "mixed", MIXED_SIZES, object_side=8)
    options = {"image_size": WINDOW, "batch_size": 4, "seed": 1, "progress": False}
    splits = data.load_splits(mixed, scale="auto", **options)
    assert splits.scale == 1.0
    assert len(list(splits.train.unbatch())) == data.WINDOWS_PER_IMAGE * splits.train_count
    uniform = write_folder(tmp_path / "uniform", [(64, 80)], object_side=8)
    auto, squeezed = (data.load_splits(uniform, scale=scale, **options) for scale in ("auto", None))
    assert auto.scale is None
    for ours, theirs in zip(auto.train, squeezed.train, strict=True):
        np.testing.assert_array_equal(ours[0], theirs[0])


def test_command_line_chooses_says_records_and_resumes_at_the_scale_it_began_with(tmp_path, capsys):
    root = write_folder(tmp_path / "set", MIXED_SIZES, object_side=8)
    out = tmp_path / "run"
    arguments = ["--data", str(root), "--out", str(out), "--image-size", str(WINDOW), "--batch-size", "4",
                 "--base-filters", "4", "--seed", "1"]  # fmt: skip
    assert train.main([*arguments, "--epochs", "1"]) == 0
    assert "scale auto: images of 4 sizes with small objects" in capsys.readouterr().out
    report = json.loads((out / run_folder.METRICS).read_text())
    assert report["settings"]["scale"] == 1.0
    assert report["timing"]["train_images_per_epoch"] == data.WINDOWS_PER_IMAGE * 10  # 12 pairs, 2 validate

    assert train.main([*arguments, "--epochs", "2"]) == 0  # auto again: the run goes on at scale 1
    assert json.loads((out / run_folder.METRICS).read_text())["epochs_completed"] == 2
    capsys.readouterr()
    assert train.main([*arguments, "--epochs", "3", "--scale", "squeeze"]) == 2
    assert "scale=1.0 (now None)" in capsys.readouterr().err


def test_a_squeezed_run_of_several_sizes_resumes_squeezed_under_auto(tmp_path, capsys):
    root = write_folder(tmp_path / "set", MIXED_SIZES, object_side=8)
    out = tmp_path / "run"
    arguments = ["--data", str(root), "--out", str(out), "--image-size", str(WINDOW), "--batch-size", "4",
                 "--base-filters", "4", "--seed", "1"]  # fmt: skip
    assert train.main([*arguments, "--epochs", "1", "--scale", "squeeze"]) == 0
    assert train.main([*arguments, "--epochs", "2"]) == 0
    report = json.loads((out / run_folder.METRICS).read_text())
    assert report["settings"]["scale"] is None and report["epochs_completed"] == 2
    assert report["settings"]["squeezed_from"] is None  # several sizes: no one factor for predict
    assert "scale auto" not in capsys.readouterr().out


def test_a_squeezed_run_of_one_size_tells_predict_its_factor_and_older_runs_resume(tmp_path, capsys):
    root = write_folder(tmp_path / "set", [(64, 64)], object_side=16)
    out = tmp_path / "run"
    arguments = ["--data", str(root), "--out", str(out), "--image-size", str(WINDOW), "--batch-size", "4",
                 "--base-filters", "4", "--seed", "1"]  # fmt: skip
    assert train.main([*arguments, "--epochs", "1"]) == 0
    record = json.loads((out / run_folder.RUN_RECORD).read_text())
    assert record["settings"]["scale"] is None and record["settings"]["squeezed_from"] == [64, 64]
    capsys.readouterr()
    image = root / "images" / "0.png"
    assert (
        predict.main(
            ["--model", str(out / "best.keras"), "--input", str(image), "--out", str(tmp_path / "p")]
        )
        == 0
    )
    assert "Predicting at scale 0.75: the run in" in capsys.readouterr().out  # 64 squeezed to 48
    network = model.load_model(out / "best.keras")
    expected = inference.predict_image(network, data.read_image(image), scale=0.75)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "p" / "masks" / "0.png")), expected * 255)

    del record["settings"]["squeezed_from"]  # a run recorded before squeezed_from resumes
    (out / run_folder.RUN_RECORD).write_text(json.dumps(record))
    assert train.main([*arguments, "--epochs", "2"]) == 0
    assert json.loads((out / run_folder.METRICS).read_text())["epochs_completed"] == 2


@pytest.mark.parametrize("text", ["big", "0", "-1"])
def test_a_bad_scale_on_the_command_line_is_one_line(tmp_path, capsys, text):
    with pytest.raises(SystemExit) as stopped:
        train.main(["--out", str(tmp_path / "run"), "--scale", text])
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("error: argument --scale") and len(error.strip().splitlines()) == 1
