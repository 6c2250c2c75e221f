"""Images at their own scale: training windows and validation tiles (``data.load_splits(scale=...)``,
``--scale`` on the command line)."""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from unet_helpers import data, metrics, model, run_folder, train, windows
from unet_helpers.errors import UnetTutorialError
from unet_helpers.mask_classes import IGNORE_CLASS

# (height, width) of the pairs: larger than a window, smaller on one side, smaller on both, odd sizes.
SIZES = [(70, 90), (40, 100), (20, 28), (33, 33)]
WINDOW = 32


def write_dataset(root: Path, sizes: list[tuple[int, int]] = SIZES) -> Path:
    """Pairs whose mask is, pixel for pixel, ``red > 127``: any misalignment between them shows.

    Red is random noise (no two windows alike); green and blue hold each pixel's row and column, so a
    test can tell where in its image a window came from.
    """
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for index, (height, width) in enumerate(sizes):
        rows, columns = np.mgrid[:height, :width]
        image = np.stack([rng.integers(0, 256, (height, width)), rows * 2, columns * 2], axis=-1)
        Image.fromarray(image.astype(np.uint8)).save(root / "images" / f"{index}.png")
        mask = np.where(image[..., 0] > 127, 255, 0).astype(np.uint8)
        Image.fromarray(mask).save(root / "masks" / f"{index}.png")
    return root


def pairs_of(dataset: tf.data.Dataset) -> list[tuple[np.ndarray, np.ndarray]]:
    return [
        (image, mask)
        for images, masks in dataset.as_numpy_iterator()
        for image, mask in zip(images, masks, strict=True)
    ]


def loaded(root: Path, split: str, **options) -> tf.data.Dataset:
    options = {"image_size": WINDOW, "batch_size": 3, "scale": 1.0, "progress": False} | options
    return data.load_dataset(root, split=split, **options)


def test_training_windows_keep_image_and_mask_aligned_and_mark_filled_pixels_ignored(tmp_path):
    root = write_dataset(tmp_path / "set")
    windows_seen = pairs_of(loaded(root, "train", validation_fraction=0.0, windows_per_image=3))
    assert len(windows_seen) == len(SIZES) * 3
    for image, mask in windows_seen:
        assert image.shape == (WINDOW, WINDOW, 3) and mask.shape == (WINDOW, WINDOW, 1)
        red = np.round(image[..., 0] * 255)
        stored = mask[..., 0] != IGNORE_CLASS
        np.testing.assert_array_equal(mask[..., 0][stored], (red > 127)[stored])
        # a window at the image's own scale: neighbouring rows and columns 1 apart (2 in the image)
        rows, columns = np.round(image[..., 1] * 255 / 2), np.round(image[..., 2] * 255 / 2)
        inside = stored[1:, :] & stored[:-1, :]
        assert np.all(np.abs(np.diff(rows, axis=0))[inside] == 1)
        assert np.all(np.abs(np.diff(columns, axis=1))[stored[:, 1:] & stored[:, :-1]] == 1)
    ignored = [np.mean(mask == IGNORE_CLASS) for _, mask in windows_seen]
    assert max(ignored) > 0.4  # the 20x28 image fills 55% of a window
    assert min(ignored) == 0.0


def test_windows_are_reproducible_and_new_every_epoch(tmp_path):
    root = write_dataset(tmp_path / "set")
    first = loaded(root, "train", validation_fraction=0.0)
    epoch_1, epoch_2 = pairs_of(first), pairs_of(first)
    again = pairs_of(loaded(root, "train", validation_fraction=0.0))
    np.testing.assert_array_equal(np.stack([i for i, _ in epoch_1]), np.stack([i for i, _ in again]))
    assert not np.array_equal(np.stack([i for i, _ in epoch_1]), np.stack([i for i, _ in epoch_2]))


def test_tiles_cover_each_image_once_so_pooled_dice_over_tiles_is_the_whole_images_dice(tmp_path):
    root = write_dataset(tmp_path / "set")
    tiles = loaded(root, "all")
    expected = sum(windows.tile_count(height, width, WINDOW) for height, width in SIZES)
    assert len(pairs_of(tiles)) == expected
    assert len(tiles) == -(-expected // 3)  # batches, known before iterating
    # Any prediction made pixel by pixel from the image scores the same on the tiles as on the images.
    predict = lambda image: (image[..., 1:2] + image[..., 2:3] > 0.4).astype(np.float32)  # noqa: E731
    tile_pairs = pairs_of(tiles)
    on_tiles = metrics.dice_score(
        np.stack([mask for _, mask in tile_pairs]), np.stack([predict(image) for image, _ in tile_pairs])
    )
    true, predicted = [], []
    for index in range(len(SIZES)):
        image = np.asarray(Image.open(root / "images" / f"{index}.png"), np.float32) / 255
        true.append((np.asarray(Image.open(root / "masks" / f"{index}.png")) > 0).ravel())
        predicted.append(predict(image).ravel())
    whole = metrics.dice_score(np.concatenate(true)[np.newaxis], np.concatenate(predicted)[np.newaxis])
    assert 0.1 < whole < 0.9
    assert on_tiles == pytest.approx(whole, abs=1e-12)


def test_tiles_are_the_image_row_by_row_and_mirrored_past_its_edges():
    image = tf.reshape(tf.range(5 * 7 * 2, dtype=tf.float32), [5, 7, 2])
    mask = tf.ones([5, 7, 1], tf.uint8)
    cut = list(windows.tiles(image, mask, tile_size=4).as_numpy_iterator())
    assert len(cut) == windows.tile_count(5, 7, 4) == 4
    rows = [np.concatenate([cut[0][0], cut[1][0]], axis=1), np.concatenate([cut[2][0], cut[3][0]], axis=1)]
    whole = np.concatenate(rows, axis=0)
    np.testing.assert_array_equal(whole[:5, :7], image.numpy())
    np.testing.assert_array_equal(whole[5:, :7], image.numpy()[[4, 3, 2]])  # mirrored, edge repeated
    np.testing.assert_array_equal(whole[:5, 7], image.numpy()[:, 6])
    masks = np.concatenate(
        [np.concatenate([cut[0][1], cut[1][1]], 1), np.concatenate([cut[2][1], cut[3][1]], 1)]
    )
    assert (
        np.all(masks[:5, :7] == 1)
        and np.all(masks[5:] == IGNORE_CLASS)
        and np.all(masks[:, 7:] == IGNORE_CLASS)
    )


def test_an_image_far_smaller_than_a_window_is_mirrored_as_often_as_it_takes():
    image = tf.reshape(tf.range(3, dtype=tf.float32), [1, 3, 1])
    padded, mask = windows.pad_pair(image, tf.zeros([1, 3, 1], tf.uint8), 2, 8)
    np.testing.assert_array_equal(padded.numpy()[0, :, 0], [0, 1, 2, 2, 1, 0, 0, 1])
    np.testing.assert_array_equal(padded.numpy()[1, :, 0], [0, 1, 2, 2, 1, 0, 0, 1])
    assert mask.numpy()[0, :3, 0].tolist() == [0, 0, 0] and np.all(mask.numpy()[:, 3:] == IGNORE_CLASS)
    assert np.all(mask.numpy()[1] == IGNORE_CLASS)


@pytest.mark.parametrize("scale", [0.37, 0.5, 1.5])
def test_a_scale_resizes_every_image_by_it_and_the_tile_count_holds(tmp_path, scale):
    root = write_dataset(tmp_path / "set", sizes=[(70, 91), (45, 33)])
    tiles = loaded(root, "all", scale=scale)
    sizes = [windows.scaled_size(height, width, scale) for height, width in [(70, 91), (45, 33)]]
    assert len(pairs_of(tiles)) == sum(windows.tile_count(height, width, WINDOW) for height, width in sizes)
    for (height, width), shape in zip(sizes, [(70, 91), (45, 33)], strict=True):
        in_graph = windows.scaled_size_in_graph(tf.constant([*shape, 3]), scale).numpy().tolist()
        assert in_graph == [height, width]
    stored = [mask for _, mask in pairs_of(tiles)]
    assert set(np.unique(np.stack(stored))) <= {0, 1, IGNORE_CLASS}  # masks resized by nearest neighbour


def test_load_splits_windows_the_training_split_and_tiles_the_validation_split(tmp_path):
    root = write_dataset(tmp_path / "set", sizes=SIZES * 3)
    splits = data.load_splits(
        root, image_size=WINDOW, batch_size=4, scale=1.0, windows_per_image=2, seed=1, progress=False
    )
    assert len(pairs_of(splits.train)) == 2 * splits.train_count
    validation = data.load_dataset(
        root, image_size=WINDOW, batch_size=4, scale=1.0, split="validation", seed=1, progress=False
    )
    np.testing.assert_array_equal(
        np.stack([i for i, _ in pairs_of(splits.validation)]), np.stack([i for i, _ in pairs_of(validation)])
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"scale": 0.0}, "scale=0.0"),
        ({"scale": -1.0}, "scale=-1.0"),
        ({"windows_per_image": 0}, "windows_per_image=0"),
    ],
)
def test_bad_scale_or_window_count_is_refused_in_one_line(tmp_path, options, message):
    root = write_dataset(tmp_path / "set")
    with pytest.raises(UnetTutorialError, match=message):
        loaded(root, "train", **options)


def test_command_line_trains_at_scale_scores_on_tiles_and_keeps_the_scale_on_resume(tmp_path, capsys):
    root = write_dataset(tmp_path / "set", sizes=SIZES * 3)
    out = tmp_path / "run"
    arguments = ["--data", str(root), "--out", str(out), "--image-size", str(WINDOW), "--batch-size", "4",
                 "--base-filters", "4", "--seed", "1"]  # fmt: skip
    assert train.main([*arguments, "--epochs", "2", "--scale", "1"]) == 0
    report = json.loads((out / run_folder.METRICS).read_text())
    assert report["settings"]["scale"] == 1.0
    splits = data.load_splits(root, image_size=WINDOW, batch_size=4, scale=1.0, seed=1, progress=False)
    assert report["timing"]["train_images_per_epoch"] == data.WINDOWS_PER_IMAGE * splits.train_count
    # The val_dice it reports is the best model's Dice on the tiles: the validation images' own size.
    masks = np.concatenate([mask for _, mask in splits.validation.as_numpy_iterator()])
    predicted = model.load_model(out / run_folder.BEST_MODEL).predict(splits.validation, verbose=0)
    assert report["best"]["val_dice"] == pytest.approx(metrics.dice_score(masks, predicted), abs=1e-5)

    capsys.readouterr()
    assert train.main([*arguments, "--epochs", "3", "--scale", "squeeze"]) == 2  # not the same run
    assert "scale=1.0 (now None)" in capsys.readouterr().err
