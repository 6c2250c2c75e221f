"""Pairing images with masks named otherwise: by name pattern (DRIVE), by a list of pairs, and the errors.

The DRIVE-like files are generated: RGB TIFF images and single-frame GIF masks holding 0/255, the way the
real dataset stores them, and read back through the package's own readers.
"""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from unet_helpers import images
from unet_helpers.errors import UnetTutorialError
from unet_helpers.pairing import find_pairs, list_images, natural_key

DRIVE_IDS = ("21", "3", "22")  # natural order: 3, 21, 22


def write_rgb_tiff(path: Path, rgb: np.ndarray, compression: str = "raw") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, compression=compression)


def write_gif_mask(path: Path, mask: np.ndarray, mode: str) -> None:
    """A single-frame GIF holding ``mask`` (0/255) as stored values, opened by PIL in ``mode``.

    PIL opens a GIF whose palette is the gray ramp (index i is gray i) as "L"; one palette entry that is no
    gray keeps it "P", with the same indices. ``optimize=False``: PIL would otherwise shrink the palette
    and store 0/255 as indices 0/1.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    palette = [value for index in range(256) for value in (index, index, index)]
    if mode == "P":
        palette[3:6] = [255, 0, 0]  # index 1, unused, red
    gif = Image.frombytes("P", (mask.shape[1], mask.shape[0]), mask.tobytes())
    gif.putpalette(palette)
    gif.save(path, optimize=False)


def vessel_mask(height: int, width: int, seed: int) -> np.ndarray:
    return np.where(np.random.default_rng(seed).random((height, width)) > 0.8, 255, 0).astype(np.uint8)


def drive_like(root: Path, ids: tuple[str, ...] = DRIVE_IDS) -> dict[str, np.ndarray]:
    """DRIVE's training layout: ``training/images/ID_training.tif``, ``training/1st_manual/ID_manual1.gif``.

    Each pair has its own size, so that a mask paired with another's image fails ``inspect_pair``.
    Returns the mask of each id.
    """
    masks = {}
    for index, id_ in enumerate(ids):
        height, width = 20 + index, 24 + 2 * index
        rgb = np.random.default_rng(index).integers(0, 256, (height, width, 3), dtype=np.uint8)
        write_rgb_tiff(root / "training" / "images" / f"{id_}_training.tif", rgb)
        masks[id_] = vessel_mask(height, width, seed=index)
        write_gif_mask(root / "training" / "1st_manual" / f"{id_}_manual1.gif", masks[id_], mode="L")
    return masks


DRIVE = {"images": "training/images", "masks": "training/1st_manual"}
DRIVE_PATTERNS = {"image_pattern": "{id}_training", "mask_pattern": "{id}_manual1"}


def error_of(root: Path, **options) -> str:
    """The message of the error find_pairs raises, checked to be one line."""
    with pytest.raises(UnetTutorialError) as error:
        find_pairs(root, **options)
    message = str(error.value)
    assert "\n" not in message
    return message


def names(pairs: list[tuple[Path, Path]]) -> list[tuple[str, str]]:
    return [(image.name, mask.name) for image, mask in pairs]


# --- by name pattern ----------------------------------------------------------------------------------


def test_drive_names_pair_by_pattern_in_natural_order(tmp_path):
    drive_like(tmp_path)
    expected = [(f"{id_}_training.tif", f"{id_}_manual1.gif") for id_ in ("3", "21", "22")]
    assert names(find_pairs(tmp_path, **DRIVE, **DRIVE_PATTERNS)) == expected
    # mask_suffix is short for mask_pattern="{id}<suffix>".
    suffixed = find_pairs(tmp_path, **DRIVE, image_pattern="{id}_training", mask_suffix="_manual1")
    assert names(suffixed) == expected


def test_pattern_text_is_literal_and_the_id_may_come_first_or_last(tmp_path):
    for id_ in ("10", "2"):
        write_rgb_tiff(tmp_path / "images" / f"img.{id_}(a).tif", np.zeros((4, 4, 3), np.uint8))
        write_gif_mask(tmp_path / "masks" / f"label_{id_}.gif", np.zeros((4, 4), np.uint8), mode="L")
    pairs = find_pairs(tmp_path, image_pattern="img.{id}(a)", mask_pattern="label_{id}")
    assert names(pairs) == [("img.2(a).tif", "label_2.gif"), ("img.10(a).tif", "label_10.gif")]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"image_pattern": "training"}, r"image_pattern='training' must hold '{id}' once"),
        ({"mask_pattern": "{id}_{id}"}, r"mask_pattern='{id}_{id}' must hold '{id}' once"),
        ({"mask_pattern": "{id}_manual1.gif"}, r"mask_pattern='{id}_manual1.gif' ends in '.gif'"),
        ({"image_pattern": "images/{id}"}, r"image_pattern='images/{id}' holds a folder"),
        (
            {"mask_suffix": "_manual1", "mask_pattern": "{id}_manual1"},
            r"mask_suffix='_manual1' and mask_pattern='{id}_manual1' both name the masks: pass one",
        ),
    ],
)
def test_bad_patterns_are_refused_before_the_folders_are_read(tmp_path, options, expected):
    assert expected in error_of(tmp_path / "not there", **options)


def test_files_that_do_not_follow_their_pattern_are_named(tmp_path):
    drive_like(tmp_path)
    write_rgb_tiff(tmp_path / "training" / "images" / "01_test.tif", np.zeros((4, 4, 3), np.uint8))
    message = error_of(tmp_path, **DRIVE, **DRIVE_PATTERNS)
    assert "1 image(s) in" in message and "01_test.tif" in message
    assert "do not match image_pattern='{id}_training'" in message
    (tmp_path / "training" / "images" / "01_test.tif").unlink()
    write_gif_mask(tmp_path / "training" / "1st_manual" / "21_manual2.gif", np.zeros((4, 4), np.uint8), "L")
    message = error_of(tmp_path, **DRIVE, **DRIVE_PATTERNS)
    assert "1 mask(s) in" in message and "21_manual2.gif" in message and "mask_pattern=" in message
    message = error_of(tmp_path, **DRIVE, image_pattern="{id}_training", mask_suffix="_manual1")
    assert "21_manual2.gif" in message and "do not match mask_suffix='_manual1'" in message


def test_missing_mask_and_missing_image_with_patterns(tmp_path):
    drive_like(tmp_path)
    (tmp_path / "training" / "1st_manual" / "22_manual1.gif").unlink()
    message = error_of(tmp_path, **DRIVE, **DRIVE_PATTERNS)
    assert "1 image(s)" in message and "22_training.tif" in message and "'22_manual1.*'" in message
    drive_like(tmp_path)
    (tmp_path / "training" / "images" / "3_training.tif").unlink()
    message = error_of(tmp_path, **DRIVE, **DRIVE_PATTERNS)
    assert "1 mask(s)" in message and "3_manual1.gif" in message and "have no image" in message


@pytest.mark.parametrize(
    ("image", "mask", "hint"),
    [
        ("21_training", "21_manual1", "pass image_pattern='{id}_training', mask_pattern='{id}_manual1'"),
        ("img_001", "mask_001", "pass image_pattern='img_{id}', mask_pattern='mask_{id}'"),
        ("21_training", "22_manual1", None),  # nothing shared: no guess
    ],
)
def test_unpaired_images_suggest_the_patterns_the_names_follow(tmp_path, image, mask, hint):
    write_rgb_tiff(tmp_path / "images" / f"{image}.tif", np.zeros((4, 4, 3), np.uint8))
    write_gif_mask(tmp_path / "masks" / f"{mask}.gif", np.zeros((4, 4), np.uint8), mode="L")
    message = error_of(tmp_path)
    assert f"{image}.tif" in message and "have no mask" in message
    if hint is None:
        assert "pattern=" not in message and "mask_suffix" not in message
    else:
        assert message.endswith(f"; if '{image}.tif' goes with '{mask}.gif', {hint}.")
        image_pattern, mask_pattern = hint.removeprefix("pass image_pattern=").split(", mask_pattern=")
        pairs = find_pairs(
            tmp_path, image_pattern=image_pattern.strip("'"), mask_pattern=mask_pattern.strip("'")
        )
        assert names(pairs) == [(f"{image}.tif", f"{mask}.gif")]  # the suggestion works


def test_with_the_image_pattern_alone_the_hint_is_the_mask_suffix(tmp_path):
    drive_like(tmp_path)
    message = error_of(tmp_path, **DRIVE, image_pattern="{id}_training")
    assert "named '3.*' for '3_training.tif'" in message
    assert message.endswith("if masks are named like '3_manual1', pass mask_suffix='_manual1'.")


# --- by a list of pairs -------------------------------------------------------------------------------


def drive_with_test_split(root: Path) -> None:
    """DRIVE's two folders: ``training/`` (ids 21, 3, 22) and ``test/`` (id 01), one pair each."""
    drive_like(root)
    write_rgb_tiff(root / "test" / "images" / "01_test.tif", np.zeros((4, 4, 3), np.uint8))
    write_gif_mask(root / "test" / "1st_manual" / "01_manual1.gif", np.zeros((4, 4), np.uint8), mode="L")


PAIRS_CSV = """image,mask
training/images/21_training.tif,training/1st_manual/21_manual1.gif
# the test split too
test/images/01_test.tif,test/1st_manual/01_manual1.gif

training/images/3_training.tif, "training/1st_manual/3_manual1.gif"
"""
PAIRS_TEXT = """# image mask
training/images/21_training.tif\ttraining/1st_manual/21_manual1.gif
test/images/01_test.tif   test/1st_manual/01_manual1.gif

training/images/3_training.tif training/1st_manual/3_manual1.gif
"""


@pytest.mark.parametrize(
    ("file_name", "text"),
    [
        ("pairs.csv", PAIRS_CSV),
        ("pairs.csv", PAIRS_CSV.removeprefix("image,mask\n")),
        ("lists/pairs.txt", PAIRS_TEXT),
    ],
    ids=["csv with header", "csv", "whitespace"],
)
def test_a_pairs_file_lists_the_pairs_in_natural_order(tmp_path, file_name, text):
    drive_with_test_split(tmp_path)
    (tmp_path / file_name).parent.mkdir(exist_ok=True)
    (tmp_path / file_name).write_text(text)
    expected = [
        (tmp_path / "test/images/01_test.tif", tmp_path / "test/1st_manual/01_manual1.gif"),
        (tmp_path / "training/images/3_training.tif", tmp_path / "training/1st_manual/3_manual1.gif"),
        (tmp_path / "training/images/21_training.tif", tmp_path / "training/1st_manual/21_manual1.gif"),
    ]
    assert find_pairs(tmp_path, pairs_file=file_name) == expected
    assert find_pairs(tmp_path, pairs_file=tmp_path / file_name) == expected  # absolute


def test_a_pairs_file_takes_paths_with_spaces_in_csv_and_a_mask_for_several_images(tmp_path):
    for name in ("scan 1.tif", "scan 2.tif"):
        write_rgb_tiff(tmp_path / "my images" / name, np.zeros((4, 4, 3), np.uint8))
    write_gif_mask(tmp_path / "labels" / "shared, v2.gif", np.zeros((4, 4), np.uint8), mode="L")
    (tmp_path / "pairs.csv").write_text(
        '\ufeffmy images/scan 2.tif,"labels/shared, v2.gif"\nmy images/scan 1.tif,"labels/shared, v2.gif"\n'
    )  # with the byte-order mark Excel writes
    pairs = find_pairs(tmp_path, pairs_file="pairs.csv")
    assert names(pairs) == [("scan 1.tif", "shared, v2.gif"), ("scan 2.tif", "shared, v2.gif")]


LINE = "training/images/21_training.tif,training/1st_manual/21_manual1.gif"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"{LINE}\n\n{LINE}\n",
            "line 3: image 'training/images/21_training.tif' is already paired on line 1",
        ),
        (
            "image,mask\ntraining/images/21_training.tif\n",
            "line 2: expected an image path and a mask path, found 1",
        ),
        (f"{LINE},extra\n", "line 1: expected an image path and a mask path, found 3"),
        ("training/images/21_training.tif,\n", "line 1: expected an image path and a mask path, found 1"),
        ("# only a comment\n\n", "lists no pairs"),
        (f"{LINE}\ntraining/images/22_training.tif,masks/22.gif\n", "line 2: no file '"),
        ("image_path,mask_path\n", "line 1: no file '"),
        (f"../{LINE}\n", "line 1: '../training/images/21_training.tif' is outside the dataset folder"),
        ("/etc/hostname,training/1st_manual/21_manual1.gif\n", "line 1: '/etc/hostname' is outside"),
    ],
    ids=[
        "doubled image",
        "one column",
        "three columns",
        "empty column",
        "empty",
        "missing file",
        "header",
        "outside",
        "absolute outside",
    ],
)
def test_pairs_file_errors_name_the_file_and_the_line(tmp_path, text, expected):
    drive_like(tmp_path)
    (tmp_path / "pairs.csv").write_text(text)
    message = error_of(tmp_path, pairs_file="pairs.csv")
    assert f"'{tmp_path / 'pairs.csv'}' " in message and expected in message


def test_pairs_file_errors_about_the_file_itself(tmp_path):
    drive_like(tmp_path)
    assert f"pairs file '{tmp_path / 'nope.csv'}' does not exist" in error_of(tmp_path, pairs_file="nope.csv")
    (tmp_path / "pairs.csv").write_text("image_path,mask_path\n")
    assert "if line 1 is a header, name its columns image,mask" in error_of(tmp_path, pairs_file="pairs.csv")
    (tmp_path / "pairs.csv").write_text(f"{LINE}\n")
    message = error_of(tmp_path, pairs_file="pairs.csv", masks="labels", image_pattern="{id}_training")
    assert "masks='labels', image_pattern='{id}_training' would not be used" in message
    assert "dataset folder" in error_of(tmp_path / "nope", pairs_file="pairs.csv")


# --- DRIVE's files, read as stored --------------------------------------------------------------------


@pytest.mark.parametrize(("mask_mode", "compression"), [("L", "raw"), ("P", "tiff_lzw")])
def test_gif_masks_and_tiff_images_read_as_stored(tmp_path, mask_mode, compression):
    rgb = np.random.default_rng(1).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    mask = vessel_mask(20, 24, seed=1)
    image_path, mask_path = tmp_path / "21_training.tif", tmp_path / "21_manual1.gif"
    write_rgb_tiff(image_path, rgb, compression)
    write_gif_mask(mask_path, mask, mask_mode)
    with Image.open(mask_path) as gif:  # the files are what the test means them to be
        assert (gif.format, gif.mode, gif.n_frames) == ("GIF", mask_mode, 1)
    report = images.inspect_pair(image_path, mask_path)
    assert report.values == {0, 255} and not report.rgb_mask
    assert report.image_via_python  # TensorFlow does not decode TIFF
    assert report.mask_via_python == (mask_mode == "P")  # palette indices through PIL
    # TensorFlow's own GIF decoder gives frames (4-D); decode_mask must give one (H, W) mask.
    assert tf.io.decode_gif(tf.io.read_file(str(mask_path))).shape == (1, 20, 24, 3)

    def read(path: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = images.decode_image(path[0], tf.constant(report.image_via_python), channels=3)
        return image, images.decode_mask(path[1], tf.constant(report.mask_via_python), color_masks=False)

    # In a tf.data graph, as the pipeline runs it.
    pipeline = tf.data.Dataset.from_tensor_slices([[str(image_path), str(mask_path)]]).map(read)
    image, decoded = next(pipeline.as_numpy_iterator())
    np.testing.assert_array_equal(np.round(image * 255).astype(np.uint8), rgb)
    np.testing.assert_array_equal(decoded, mask)
    for via_python in (False, True):  # both readers agree, whichever inspect_pair chose
        both = images.decode_mask(tf.constant(str(mask_path)), tf.constant(via_python), color_masks=False)
        np.testing.assert_array_equal(both.numpy(), mask)


def test_pairs_found_by_pattern_load_with_their_own_masks(tmp_path):
    masks = drive_like(tmp_path)
    pairs = find_pairs(tmp_path, **DRIVE, **DRIVE_PATTERNS)
    assert len(pairs) == len(masks)
    for image_path, mask_path in pairs:
        report = images.inspect_pair(image_path, mask_path)  # sizes differ per pair: a mix-up fails here
        assert report.values == {0, 255}
        decoded = images.decode_mask(tf.constant(str(mask_path)), tf.constant(report.mask_via_python), False)
        np.testing.assert_array_equal(decoded.numpy(), masks[image_path.stem.removesuffix("_training")])


# --- what predict.py and data.py use ------------------------------------------------------------------


def test_list_images_in_natural_order_without_hidden_files(tmp_path):
    for name in ("10.png", "2.tif", "1.gif", ".DS_Store", "._3.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [path.name for path in list_images(tmp_path)] == ["1.gif", "2.tif", "10.png"]
    assert sorted(["b10", "B2", "a"], key=natural_key) == ["a", "B2", "b10"]
