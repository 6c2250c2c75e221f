"""The synthetic dataset: files and formats, determinism, caching, safety of user folders, difficulty."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from unet_helpers import synthetic
from unet_helpers.errors import UnetTutorialError


def file_bytes(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder``, by relative path."""
    return {
        path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()
    }


def best_threshold_dice(grays: list[np.ndarray], truths: list[np.ndarray]) -> float:
    """The best Dice that one global threshold reaches over all images together.

    Tries all 256 thresholds in both polarities (object = brighter than t, or darker than t) and pools
    the pixels of every image into one Dice.
    """
    gray = np.concatenate([image.ravel() for image in grays])
    truth = np.concatenate([mask.ravel() for mask in truths]).astype(bool)
    object_histogram = np.bincount(gray[truth], minlength=256)
    histogram = np.bincount(gray, minlength=256)
    dice = []
    for order in (slice(None, None, -1), slice(None)):  # brighter-than-t, then darker-than-t
        true_positives = object_histogram[order].cumsum()
        predicted = histogram[order].cumsum()
        dice.append(2 * true_positives / (predicted + truth.sum()))
    return float(np.max(dice))


def test_best_threshold_dice_finds_a_separating_threshold():
    # The baseline must be able to succeed, or a low score below would mean nothing.
    masks = [np.arange(64).reshape(8, 8) % 3 == 0 for _ in range(2)]
    assert best_threshold_dice([np.where(m, 200, 90).astype(np.uint8) for m in masks], masks) == 1.0
    assert best_threshold_dice([np.where(m, 90, 200).astype(np.uint8) for m in masks], masks) == 1.0


def test_binary_dataset_layout_formats_and_metadata(tmp_path):
    root = synthetic.generate_dataset(
        tmp_path / "binary", num_samples=3, image_size=48, seed=5, progress=False
    )
    assert root == tmp_path / "binary"
    names = ["0000.png", "0001.png", "0002.png"]
    assert sorted(path.name for path in (root / "images").iterdir()) == names
    assert sorted(path.name for path in (root / "masks").iterdir()) == names
    mask_values = set()
    for name in names:
        with Image.open(root / "images" / name) as image:
            assert (image.format, image.mode, image.size) == ("PNG", "RGB", (48, 48))
        with Image.open(root / "masks" / name) as mask:
            assert (mask.format, mask.mode, mask.size) == ("PNG", "L", (48, 48))
            mask_values |= set(np.unique(np.asarray(mask)).tolist())
    assert mask_values == {0, 255}
    metadata = json.loads((root / "dataset.json").read_text())
    assert metadata["generator"] == "unet_helpers.synthetic"
    assert metadata["version"] == synthetic.GENERATOR_VERSION
    assert {key: metadata[key] for key in ("num_samples", "image_size", "num_classes", "seed")} == {
        "num_samples": 3,
        "image_size": 48,
        "num_classes": 2,
        "seed": 5,
    }
    assert metadata["class_names"] == ["background", "object"]
    assert "255 = object" in metadata["mask_encoding"]
    assert len(metadata["class_fractions"]) == 2 and sum(metadata["class_fractions"]) == pytest.approx(
        1, 1e-3
    )
    assert not list(tmp_path.glob(".*partial*"))


def test_files_hold_what_make_sample_returns(tmp_path):
    root = synthetic.generate_dataset(tmp_path / "d", num_samples=2, image_size=32, progress=False)
    image, mask = synthetic.make_sample(seed=0, index=1, image_size=32)
    assert (image.shape, image.dtype, mask.shape, mask.dtype) == ((32, 32, 3), np.uint8, (32, 32), np.uint8)
    with Image.open(root / "images" / "0001.png") as stored_image:
        np.testing.assert_array_equal(np.asarray(stored_image), image)  # RGB order, not OpenCV's BGR
    with Image.open(root / "masks" / "0001.png") as stored_mask:
        np.testing.assert_array_equal(np.asarray(stored_mask), mask)


def test_three_class_masks_hold_every_class_and_share_the_binary_images(tmp_path):
    root = synthetic.generate_dataset(tmp_path / "3class", num_samples=4, image_size=64, num_classes=3)
    masks = [np.asarray(Image.open(path)) for path in sorted((root / "masks").glob("*.png"))]
    assert set(np.unique(np.stack(masks)).tolist()) == {0, 1, 2}
    metadata = json.loads((root / "dataset.json").read_text())
    assert metadata["class_names"] == ["background", "round", "elongated"] == list(synthetic.CLASS_NAMES[3])
    assert all(fraction > 0.02 for fraction in metadata["class_fractions"])
    # Same scene in both variants: the binary mask is the union of the classes.
    for index in range(4):
        image3, mask3 = synthetic.make_sample(seed=0, index=index, image_size=64, num_classes=3)
        image2, mask2 = synthetic.make_sample(seed=0, index=index, image_size=64, num_classes=2)
        np.testing.assert_array_equal(image3, image2)
        np.testing.assert_array_equal(mask2, np.where(mask3 > 0, 255, 0))


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(tmp_path):
    first = synthetic.generate_dataset(tmp_path / "a", num_samples=3, image_size=32, seed=1, progress=False)
    again = synthetic.generate_dataset(tmp_path / "b", num_samples=3, image_size=32, seed=1, progress=False)
    other = synthetic.generate_dataset(tmp_path / "c", num_samples=3, image_size=32, seed=2, progress=False)
    assert file_bytes(first) == file_bytes(again)
    first_files, other_files = file_bytes(first), file_bytes(other)
    for name in ("images/0000.png", "masks/0000.png", "images/0002.png"):
        assert first_files[name] != other_files[name]


def test_a_sample_depends_only_on_seed_and_index(tmp_path):
    short = synthetic.generate_dataset(tmp_path / "short", num_samples=2, image_size=32, progress=False)
    long = synthetic.generate_dataset(tmp_path / "long", num_samples=4, image_size=32, progress=False)
    for name in ("images/0000.png", "images/0001.png", "masks/0001.png"):
        assert (short / name).read_bytes() == (long / name).read_bytes()


def test_progress_bar_is_shown_on_request(tmp_path, capsys):
    synthetic.generate_dataset(tmp_path / "quiet", num_samples=2, image_size=32, progress=False)
    assert "Generating" not in capsys.readouterr().err
    synthetic.generate_dataset(tmp_path / "loud", num_samples=2, image_size=32, progress=True)
    assert "Generating loud" in capsys.readouterr().err


def test_embedded_dataset_is_generated_once_then_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("UNET_DATA_DIR", str(tmp_path / "data"))
    root = synthetic.embedded_dataset(num_samples=3, image_size=32, progress=False)
    assert root == tmp_path / "data" / "synthetic_binary_3x32"
    modified = {path: path.stat().st_mtime_ns for path in root.rglob("*")}

    def must_not_run(**_):
        raise AssertionError("a complete dataset was generated again")

    monkeypatch.setattr(synthetic, "make_sample", must_not_run)
    assert synthetic.embedded_dataset(num_samples=3, image_size=32, progress=False) == root
    assert {path: path.stat().st_mtime_ns for path in root.rglob("*")} == modified


def test_dataset_names_say_variant_size_and_seed():
    assert synthetic.dataset_name(num_samples=512, image_size=128) == "synthetic_binary_512x128"
    assert (
        synthetic.dataset_name(num_samples=512, image_size=128, num_classes=3) == "synthetic_3class_512x128"
    )
    assert synthetic.dataset_name(num_samples=32, image_size=64, seed=7) == "synthetic_binary_32x64_seed7"


@pytest.mark.parametrize(
    "user_files",
    [
        {"notes.txt": b"my notes"},
        {"images/0000.png": b"my image", "masks/0000.png": b"my mask"},  # same layout, but not ours
        {"dataset.json": b'{"name": "my dataset"}', "images/0000.png": b"my image"},
    ],
    ids=["other-files", "same-layout", "foreign-json"],
)
def test_refuses_to_write_into_a_folder_with_user_files(tmp_path, user_files):
    root = tmp_path / "mine"
    for name, content in user_files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    with pytest.raises(UnetTutorialError) as error:
        synthetic.generate_dataset(root, num_samples=2, image_size=32, progress=False)
    message = str(error.value)
    assert str(root) in message and "\n" not in message
    assert "choose a new or empty folder" in message
    assert file_bytes(root) == user_files
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mine"]  # no partial folder either


def test_a_user_file_added_to_a_generated_dataset_is_never_deleted(tmp_path):
    root = synthetic.generate_dataset(tmp_path / "d", num_samples=3, image_size=32, progress=False)
    (root / "images" / "my_cell.png").write_bytes(b"mine")
    (root / "masks" / "0001.png").unlink()  # incomplete: would otherwise be generated again
    before = file_bytes(root)
    with pytest.raises(UnetTutorialError, match="did not write"):
        synthetic.generate_dataset(root, num_samples=3, image_size=32, progress=False)
    assert file_bytes(root) == before


def test_refuses_a_partial_folder_holding_user_files(tmp_path):
    (tmp_path / ".d.partial").mkdir()
    (tmp_path / ".d.partial" / "notes.txt").write_text("mine")
    with pytest.raises(UnetTutorialError, match=r"\.d\.partial holds files"):
        synthetic.generate_dataset(tmp_path / "d", num_samples=2, image_size=32, progress=False)
    assert (tmp_path / ".d.partial" / "notes.txt").read_text() == "mine"


def test_refuses_a_synthetic_dataset_with_other_parameters(tmp_path):
    root = synthetic.generate_dataset(tmp_path / "d", num_samples=2, image_size=32, seed=0, progress=False)
    before = file_bytes(root)
    with pytest.raises(UnetTutorialError, match=r"other parameters: seed=0 \(not 1\)"):
        synthetic.generate_dataset(root, num_samples=2, image_size=32, seed=1, progress=False)
    assert file_bytes(root) == before


def test_writes_into_an_existing_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    root = synthetic.generate_dataset(tmp_path / "empty", num_samples=2, image_size=32, progress=False)
    assert len(list((root / "images").glob("*.png"))) == 2


def test_interrupted_generation_leaves_no_dataset_and_is_redone(tmp_path, monkeypatch):
    reference = file_bytes(synthetic.generate_dataset(tmp_path / "reference", num_samples=4, image_size=32))
    render = synthetic.make_sample

    def interrupted_at_third(**arguments):
        if arguments["index"] == 2:
            raise KeyboardInterrupt
        return render(**arguments)

    monkeypatch.setattr(synthetic, "make_sample", interrupted_at_third)
    root = tmp_path / "d"
    with pytest.raises(KeyboardInterrupt):
        synthetic.generate_dataset(root, num_samples=4, image_size=32, progress=False)
    assert not root.exists()  # only the hidden partial folder holds the first two samples
    monkeypatch.setattr(synthetic, "make_sample", render)
    synthetic.generate_dataset(root, num_samples=4, image_size=32, progress=False)
    assert file_bytes(root) == reference
    assert sorted(path.name for path in tmp_path.iterdir()) == ["d", "reference"]


def test_a_dataset_missing_files_is_regenerated(tmp_path):
    root = synthetic.generate_dataset(tmp_path / "d", num_samples=3, image_size=32, progress=False)
    before = file_bytes(root)
    (root / "masks" / "0001.png").unlink()
    synthetic.generate_dataset(root, num_samples=3, image_size=32, progress=False)
    assert file_bytes(root) == before


@pytest.mark.parametrize(
    ("argument", "value"),
    [("num_samples", 0), ("image_size", 16), ("image_size", 64.0), ("num_classes", 4), ("seed", -1)],
)
def test_bad_arguments_are_one_line_errors(tmp_path, argument, value):
    arguments = {"num_samples": 2, "image_size": 32, "num_classes": 2, "seed": 0, argument: value}
    with pytest.raises(UnetTutorialError) as error:
        synthetic.generate_dataset(tmp_path / "d", progress=False, **arguments)
    assert str(error.value).startswith(f"{argument}={value!r}") and "\n" not in str(error.value)
    assert not (tmp_path / "d").exists()


@pytest.fixture(scope="module")
def workshop_like_samples():
    """Twenty binary samples at the workshop image size, as (grayscale image, object mask) pairs."""
    samples = [synthetic.make_sample(seed=0, index=index, image_size=128) for index in range(20)]
    return [(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), mask > 0) for image, mask in samples]


def test_a_global_threshold_does_not_solve_it(workshop_like_samples):
    grays, masks = zip(*workshop_like_samples, strict=True)
    assert best_threshold_dice(list(grays), list(masks)) < 0.85


def test_objects_are_brighter_than_their_surroundings(workshop_like_samples):
    # The labels match the pictures: in every image, objects are brighter than the background on average.
    for gray, mask in workshop_like_samples:
        assert gray[mask].mean() > gray[~mask].mean() + 20


def test_foreground_fraction_is_realistic(workshop_like_samples):
    fractions = np.array([mask.mean() for _, mask in workshop_like_samples])
    assert 0.10 <= fractions.mean() <= 0.45
    assert fractions.min() > 0.03 and fractions.max() < 0.6


def run_command_line(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "unet_helpers.synthetic", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_command_line_generates_a_dataset(tmp_path):
    result = run_command_line("--out", str(tmp_path / "d"), "--num-samples", "2", "--image-size", "32")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "d")
    assert len(list((tmp_path / "d" / "masks").glob("*.png"))) == 2


@pytest.mark.parametrize(
    "arguments",
    [["--num-samples", "2", "--num-classes", "5"], ["--num-samples", "two"], ["--image-size", "64"]],
    ids=["bad-value", "not-a-number", "missing-argument"],
)
def test_command_line_rejects_bad_arguments_with_one_line(tmp_path, arguments):
    result = run_command_line("--out", str(tmp_path / "d"), *arguments)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: ")
    assert not (tmp_path / "d").exists()
