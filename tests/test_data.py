"""The folder loader: formats, mask encodings, pairing, the split, the pipeline, and the user's mistakes."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from unet_helpers import data
from unet_helpers.errors import UnetTutorialError

RNG = np.random.default_rng(0)


def smooth_image(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth float image in [0, 1], (H, W), whose threshold makes a mask with real borders."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((max(height // 8, 2), max(width // 8, 2))).astype(np.float32)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 1)


def write_pair(
    root: Path,
    stem: str,
    *,
    image: np.ndarray,
    mask: np.ndarray,
    image_suffix: str = ".png",
    mask_suffix: str = ".png",
    mask_mode: str | None = None,
) -> tuple[Path, Path]:
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    image_path = root / "images" / f"{stem}{image_suffix}"
    mask_path = root / "masks" / f"{stem}{mask_suffix}"
    if image.dtype == np.uint16:
        cv2.imwrite(str(image_path), image if image.ndim == 2 else image[..., ::-1])
    else:
        Image.fromarray(image).save(image_path)
    Image.fromarray(mask, mode=mask_mode).save(mask_path) if mask_mode else Image.fromarray(mask).save(
        mask_path
    )
    return image_path, mask_path


def binary_dataset(root: Path, count: int = 6, size: int = 32) -> Path:
    for index in range(count):
        gray = smooth_image(size, size, index)
        image = (np.stack([gray, 1 - gray, gray**2], axis=-1) * 255).astype(np.uint8)
        write_pair(root, f"{index}", image=image, mask=np.where(gray > 0.5, 255, 0).astype(np.uint8))
    return root


def load_all(root: Path, **options) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of the split, unbatched, as NumPy arrays in file order."""
    options = {"image_size": 32, "batch_size": None, "split": "all", "progress": False} | options
    pairs = list(data.load_dataset(root, **options).as_numpy_iterator())
    return np.stack([image for image, _ in pairs]), np.stack([mask for _, mask in pairs])


# --- image formats ------------------------------------------------------------------------------------


def image_variants(size: int = 32) -> dict[str, tuple[np.ndarray, str]]:
    gray = smooth_image(size, size, 1)
    rgb = np.stack([gray, 1 - gray, gray**2], axis=-1)
    return {
        "png-gray8": ((gray * 255).astype(np.uint8), ".png"),
        "png-rgb8": ((rgb * 255).astype(np.uint8), ".png"),
        "png-rgba8": ((np.dstack([rgb, np.full_like(gray, 0.5)]) * 255).astype(np.uint8), ".png"),
        "png-gray16": ((gray * 65535).astype(np.uint16), ".png"),
        "png-rgb16": ((rgb * 65535).astype(np.uint16), ".png"),
        "jpeg-rgb": ((rgb * 255).astype(np.uint8), ".jpg"),
        "tiff-rgb8": ((rgb * 255).astype(np.uint8), ".tif"),
        "tiff-gray16": ((gray * 65535).astype(np.uint16), ".tiff"),
        "bmp-rgb": ((rgb * 255).astype(np.uint8), ".bmp"),
    }


@pytest.mark.parametrize("variant", list(image_variants()))
def test_every_image_format_loads_as_float_rgb_in_0_1(tmp_path, variant):
    image, suffix = image_variants()[variant]
    mask = (RNG.random(image.shape[:2]) > 0.5).astype(np.uint8)
    image_path, _ = write_pair(tmp_path, "a", image=image, mask=mask, image_suffix=suffix)
    images, masks = load_all(tmp_path)
    assert images.shape == (1, 32, 32, 3) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    # The pipeline decodes what read_image decodes (JPEG decoders may differ by a level or so).
    expected = data.read_image(image_path)
    tolerance = 2.5 / 255 if suffix == ".jpg" else 1e-4
    np.testing.assert_allclose(images[0], expected, atol=tolerance)
    # And that is the file's content, scaled by its bit depth (JPEG: what survives its compression).
    scale = 65535.0 if image.dtype == np.uint16 else 255.0
    channels = image[..., :3] if image.ndim == 3 else np.repeat(image[..., None], 3, axis=-1)
    if suffix == ".jpg":
        assert np.abs(expected - channels / scale).mean() < 0.03
    else:
        np.testing.assert_allclose(expected, channels / scale, atol=tolerance)
    np.testing.assert_array_equal(masks[0, ..., 0], mask)


def test_png_named_jpg_and_a_grayscale_dataset_with_one_channel(tmp_path):
    gray = (smooth_image(32, 32, 3) * 255).astype(np.uint8)
    image_path = tmp_path / "images" / "a.jpg"
    write_pair(tmp_path, "a", image=gray, mask=np.zeros((32, 32), np.uint8))
    (tmp_path / "images" / "a.png").rename(image_path)  # PNG bytes behind a .jpg name, as in Oxford Pet
    images, _ = load_all(tmp_path, channels=1)
    assert images.shape == (1, 32, 32, 1)
    np.testing.assert_allclose(images[0, ..., 0], gray / 255.0, atol=1e-4)


def test_colour_to_gray_agrees_between_tensorflow_and_python_paths(tmp_path):
    rgb = (np.stack([smooth_image(32, 32, seed) for seed in (4, 5, 6)], axis=-1) * 255).astype(np.uint8)
    write_pair(tmp_path, "png", image=rgb, mask=np.zeros((32, 32), np.uint8))
    write_pair(tmp_path, "tif", image=rgb, mask=np.zeros((32, 32), np.uint8), image_suffix=".tif")
    images, _ = load_all(tmp_path, channels=1)
    np.testing.assert_allclose(images[0], images[1], atol=1e-3)


# --- mask encodings -----------------------------------------------------------------------------------


def labels(size: int = 32, num_classes: int = 3, seed: int = 0) -> np.ndarray:
    """Class indices (H, W) uint8 with smooth regions of every class."""
    return np.minimum((smooth_image(size, size, seed) * num_classes).astype(np.uint8), num_classes - 1)


def gray_image(size: int = 32) -> np.ndarray:
    return (smooth_image(size, size, 9) * 255).astype(np.uint8)


@pytest.mark.parametrize("stored", ["0/1", "0/255", "1-bit"])
def test_binary_masks_as_0_1_or_0_255_or_1_bit(tmp_path, stored):
    classes = labels(num_classes=2)
    if stored == "1-bit":
        write_pair(tmp_path, "a", image=gray_image(), mask=classes * 255)
        Image.fromarray(classes * 255).convert("1").save(tmp_path / "masks" / "a.png")
    else:
        write_pair(tmp_path, "a", image=gray_image(), mask=classes * (255 if stored == "0/255" else 1))
    _, masks = load_all(tmp_path)
    assert masks.dtype == np.float32 and masks.shape == (1, 32, 32, 1)
    np.testing.assert_array_equal(masks[0, ..., 0], classes)


def test_class_index_masks_and_palette_masks(tmp_path):
    classes = labels(num_classes=3)
    write_pair(tmp_path, "indices", image=gray_image(), mask=classes)
    palette = Image.fromarray(classes, mode="P")
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    write_pair(tmp_path, "palette", image=gray_image(), mask=classes)
    palette.save(tmp_path / "masks" / "palette.png")
    _, masks = load_all(tmp_path, num_classes=3)
    np.testing.assert_array_equal(masks[0, ..., 0], classes)
    np.testing.assert_array_equal(masks[1, ..., 0], classes)  # indices, not the palette's colours


def test_explicit_mapping_trimap_style(tmp_path):
    classes = labels(num_classes=3)
    trimap = np.array([2, 1, 3], np.uint8)[classes]  # stored 1 = pet, 2 = background, 3 = border
    write_pair(tmp_path, "a", image=gray_image(), mask=trimap)
    _, masks = load_all(tmp_path, num_classes=3, mask_values={2: 0, 1: 1, 3: 2})
    np.testing.assert_array_equal(masks[0, ..., 0], classes)
    _, binary = load_all(tmp_path, mask_values={2: 0, 1: 1, 3: 1})
    np.testing.assert_array_equal(binary[0, ..., 0], classes > 0)


def test_colour_masks_with_a_colour_mapping(tmp_path):
    classes = labels(num_classes=3)
    colours = np.array([[0, 0, 0], [255, 0, 0], [0, 128, 255]], np.uint8)
    write_pair(tmp_path, "a", image=gray_image(), mask=colours[classes])
    mapping = {(0, 0, 0): 0, (255, 0, 0): 1, (0, 128, 255): 2}
    _, masks = load_all(tmp_path, num_classes=3, mask_values=mapping)
    np.testing.assert_array_equal(masks[0, ..., 0], classes)


def test_gray_masks_saved_as_rgb_are_read_as_gray(tmp_path):
    classes = labels(num_classes=2)
    write_pair(tmp_path, "a", image=gray_image(), mask=np.repeat((classes * 255)[..., None], 3, axis=-1))
    _, masks = load_all(tmp_path)
    np.testing.assert_array_equal(masks[0, ..., 0], classes)


def test_sixteen_bit_label_masks(tmp_path):
    classes = labels(num_classes=3)
    write_pair(tmp_path, "a", image=gray_image(), mask=np.zeros((32, 32), np.uint8))
    cv2.imwrite(str(tmp_path / "masks" / "a.png"), (classes.astype(np.uint16) * 1000))
    _, masks = load_all(tmp_path, num_classes=3, mask_values={0: 0, 1000: 1, 2000: 2})
    np.testing.assert_array_equal(masks[0, ..., 0], classes)


def test_invert_for_a_dark_foreground(tmp_path):
    classes = labels(num_classes=2)
    write_pair(tmp_path, "a", image=gray_image(), mask=classes * 255)
    _, masks = load_all(tmp_path, invert=True)
    np.testing.assert_array_equal(masks[0, ..., 0], 1 - classes)


def test_jpeg_masks_with_a_threshold(tmp_path):
    classes = labels(num_classes=2)
    write_pair(tmp_path, "a", image=gray_image(), mask=classes * 255, mask_suffix=".jpg")
    with pytest.raises(UnetTutorialError, match=r"a\.jpg.*mask_threshold=128"):
        load_all(tmp_path)
    _, masks = load_all(tmp_path, mask_threshold=128)
    # JPEG blurs the border by a pixel or so; the regions themselves survive.
    assert (masks[0, ..., 0] == classes).mean() > 0.97


def test_resizing_keeps_the_label_set_exactly(tmp_path):
    for index, (height, width) in enumerate([(50, 37), (61, 90), (32, 32)]):
        classes = labels(size=max(height, width), num_classes=3, seed=index)[:height, :width]
        image = (smooth_image(height, width, index) * 255).astype(np.uint8)
        write_pair(tmp_path, f"{index}", image=image, mask=classes)
    images, masks = load_all(tmp_path, num_classes=3, image_size=24)
    assert images.shape == (3, 24, 24, 3) and masks.shape == (3, 24, 24, 1)
    assert set(np.unique(masks).tolist()) == {0.0, 1.0, 2.0}


def test_batches_shapes_and_length(tmp_path):
    binary_dataset(tmp_path, count=10)
    dataset = data.load_dataset(
        tmp_path, image_size=16, batch_size=4, split="all", shuffle=False, progress=False
    )
    # Static shapes: a Keras model or an augmentation layer downstream needs to know the channels.
    assert dataset.element_spec[0].shape.as_list() == [None, 16, 16, 3]
    assert dataset.element_spec[1].shape.as_list() == [None, 16, 16, 1]
    batches = list(dataset.as_numpy_iterator())
    assert len(dataset) == 3 == len(batches)
    assert [images.shape for images, _ in batches] == [(4, 16, 16, 3)] * 2 + [(2, 16, 16, 3)]
    assert all(masks.shape[-1] == 1 and set(np.unique(masks)) <= {0.0, 1.0} for _, masks in batches)


@pytest.mark.parametrize("cache", [False, True, "file"])
def test_cache_settings_give_the_same_data(tmp_path, cache):
    root = binary_dataset(tmp_path / "set", count=3)
    cache = str(tmp_path / "cache") if cache == "file" else cache
    reference = load_all(root, cache=False)
    for _ in range(2):  # the second pass reads the cache
        for got, expected in zip(load_all(root, cache=cache), reference, strict=True):
            np.testing.assert_array_equal(got, expected)


# --- pairing and the split ----------------------------------------------------------------------------


def test_pairs_by_stem_across_formats_in_natural_order_and_skips_hidden_files(tmp_path):
    for stem in ("10", "2", "1"):
        write_pair(tmp_path, stem, image=gray_image(), mask=np.zeros((32, 32), np.uint8), image_suffix=".jpg")
    (tmp_path / "masks" / "._2.png").write_bytes(b"\x00\x05macOS resource fork")
    (tmp_path / "images" / ".DS_Store").write_bytes(b"junk")
    (tmp_path / "images" / "notes.txt").write_text("not an image")
    pairs = data.find_pairs(tmp_path)
    assert [(image.name, mask.name) for image, mask in pairs] == [
        ("1.jpg", "1.png"),
        ("2.jpg", "2.png"),
        ("10.jpg", "10.png"),
    ]


def test_mask_suffix_and_other_folder_names(tmp_path):
    root = tmp_path / "carvana"
    (root / "train").mkdir(parents=True)
    (root / "train_masks").mkdir()
    Image.fromarray(gray_image()).save(root / "train" / "car_01.jpg")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(root / "train_masks" / "car_01_mask.gif")
    with pytest.raises(UnetTutorialError, match=r"car_01\.jpg.*mask_suffix"):
        data.find_pairs(root, images="train", masks="train_masks")
    pairs = data.find_pairs(root, images="train", masks="train_masks", mask_suffix="_mask")
    assert [(image.name, mask.name) for image, mask in pairs] == [("car_01.jpg", "car_01_mask.gif")]
    images, masks = load_all(root, images="train", masks="train_masks", mask_suffix="_mask")
    assert images.shape == (1, 32, 32, 3) and masks.max() == 0


def test_split_is_deterministic_disjoint_and_complete(tmp_path):
    binary_dataset(tmp_path, count=20, size=8)
    pairs = data.scan_dataset(tmp_path, progress=False).pairs

    def names(split, **options):
        return [pair.image.name for pair in data.split_pairs(pairs, split=split, **options)]

    train, validation = names("train"), names("validation")
    assert len(validation) == 4 and len(train) == 16
    assert set(train).isdisjoint(validation) and set(train) | set(validation) == set(names("all"))
    assert names("validation") == validation  # same seed, same split
    assert names("validation", seed=1) != validation
    assert names("validation", shuffle_split=False) == ["16.png", "17.png", "18.png", "19.png"]
    assert len(names("validation", validation_fraction=0.01)) == 1  # never an empty validation set


def test_training_split_is_reshuffled_each_epoch_reproducibly(tmp_path):
    binary_dataset(tmp_path, count=12, size=8)

    def epochs(seed):
        dataset = data.load_dataset(tmp_path, image_size=8, batch_size=None, seed=seed, progress=False)
        return [[float(image.sum()) for image, _ in dataset.as_numpy_iterator()] for _ in range(2)]

    first, second = epochs(seed=0)
    assert sorted(first) == sorted(second) and first != second
    assert epochs(seed=0) == [first, second]


def batches_of(dataset, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(images.numpy(), masks.numpy()) for images, masks in dataset.take(count)]


def assert_same_batches(got: list, expected: list) -> None:
    assert len(got) == len(expected)
    for (images, masks), (expected_images, expected_masks) in zip(got, expected, strict=True):
        np.testing.assert_array_equal(images, expected_images)
        np.testing.assert_array_equal(masks, expected_masks)


def test_load_splits_scans_the_folder_once_and_gives_load_datasets_batches(tmp_path, monkeypatch):
    binary_dataset(tmp_path, count=12, size=16)
    scans, inspected = [], []
    scan_dataset, inspect_pair = data.scan_dataset, data.image_files.inspect_pair
    monkeypatch.setattr(
        data, "scan_dataset", lambda *args, **kwargs: scans.append(1) or scan_dataset(*args, **kwargs)
    )
    monkeypatch.setattr(
        data.image_files, "inspect_pair", lambda *pair: inspected.append(pair) or inspect_pair(*pair)
    )
    options = {"image_size": 16, "batch_size": 3, "seed": 4, "progress": False}
    splits = data.load_splits(tmp_path, augment=True, **options)
    assert len(scans) == 1 and len(inspected) == 12, "every file is read once"

    by_split = {
        split: data.split_pairs(splits.scan.pairs, split=split, seed=4) for split in ("train", "validation")
    }
    assert splits.train_count == len(by_split["train"]) == 10
    assert splits.validation_count == len(by_split["validation"]) == 2
    names = {split: {pair.image.name for pair in pairs} for split, pairs in by_split.items()}
    assert names["train"].isdisjoint(names["validation"])
    assert names["train"] | names["validation"] == {pair.image.name for pair in splits.scan.pairs}

    train = data.load_dataset(tmp_path, split="train", augment=True, **options)
    validation = data.load_dataset(tmp_path, split="validation", **options)
    assert_same_batches(batches_of(splits.train, 4), batches_of(train, 4))
    assert_same_batches(batches_of(splits.validation, 1), batches_of(validation, 1))
    assert len(splits.train) == 4 and len(splits.validation) == 1


def test_the_pipeline_built_step_by_step_as_notebook_01_shows_it_equals_load_dataset(tmp_path):
    """Notebook 01 builds the chain from data's public steps and asserts the same under nbval."""
    from unet_helpers import augment

    binary_dataset(tmp_path, count=10, size=24)
    seed, image_size, batch_size = 3, 16, 4
    scan = data.scan_dataset(tmp_path, progress=False)
    train_pairs = data.split_pairs(scan.pairs, split="train", seed=seed)
    dataset = data.pair_files(train_pairs)
    dataset = dataset.map(data.pair_reader(scan, image_size=image_size), num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.cache()
    dataset = dataset.shuffle(len(train_pairs), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.map(data.to_float, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch_size, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = augment.augment_dataset(dataset, seed=seed)
    dataset = dataset.prefetch(tf.data.AUTOTUNE)

    loaded = data.load_dataset(
        tmp_path, image_size=image_size, batch_size=batch_size, seed=seed, augment=True, progress=False
    )
    for _ in range(2):  # two epochs: the same reshuffling and new augmentation draws in both
        assert_same_batches(batches_of(dataset, 2), batches_of(loaded, 2))


# --- the user's mistakes ------------------------------------------------------------------------------


def error_of(root: Path, **options) -> str:
    options = {"image_size": 16, "batch_size": 2, "progress": False} | options
    with pytest.raises(UnetTutorialError) as error:
        data.load_dataset(root, **options)  # raised when the dataset is made, before any training
    message = str(error.value)
    assert "\n" not in message
    return message


def test_wrong_path(tmp_path):
    assert f"'{tmp_path / 'nope'}' does not exist" in error_of(tmp_path / "nope")


def test_missing_masks_folder_lists_what_is_there(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    message = error_of(tmp_path)
    assert "masks' does not exist" in message and "labels" in message and "masks='...'" in message


def test_empty_folder(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    assert f"no images in '{tmp_path / 'images'}'" in error_of(tmp_path)


def test_image_without_mask_and_mask_without_image(tmp_path):
    binary_dataset(tmp_path, count=3, size=8)
    (tmp_path / "masks" / "1.png").unlink()
    assert "1 image(s)" in (message := error_of(tmp_path)) and "1.png" in message
    binary_dataset(tmp_path, count=3, size=8)
    (tmp_path / "images" / "2.png").unlink()
    assert "1 mask(s)" in (message := error_of(tmp_path)) and "2.png" in message


def test_truncated_and_unreadable_files(tmp_path):
    binary_dataset(tmp_path, count=3, size=32)
    truncated = tmp_path / "images" / "1.png"
    truncated.write_bytes(truncated.read_bytes()[:-40])
    assert f"cannot read '{truncated}'" in error_of(tmp_path)
    binary_dataset(tmp_path, count=3, size=32)
    not_an_image = tmp_path / "masks" / "2.png"
    not_an_image.write_text("<html>404 Not Found</html>")
    assert f"cannot read '{not_an_image}'" in error_of(tmp_path)


def test_mask_of_another_size(tmp_path):
    binary_dataset(tmp_path, count=2, size=32)
    Image.fromarray(np.zeros((30, 32), np.uint8)).save(tmp_path / "masks" / "1.png")
    message = error_of(tmp_path)
    assert "mask '" in message and "1.png' is 32x30" in message and "is 32x32" in message


def test_mask_values_outside_the_classes(tmp_path):
    binary_dataset(tmp_path, count=3, size=8)
    Image.fromarray(np.full((8, 8), 128, np.uint8)).save(tmp_path / "masks" / "2.png")
    message = error_of(tmp_path)
    assert "2.png' holds values {128}" in message and "mask_values" in message
    multi = tmp_path / "multi"
    write_pair(multi, "a", image=gray_image(), mask=labels(num_classes=3) + 3)  # values 3..5
    assert "expects class indices 0 to 2" in error_of(multi, num_classes=3)


def test_colour_masks_without_mapping_and_bad_mapping(tmp_path):
    colours = np.array([[0, 0, 0], [255, 0, 0]], np.uint8)
    write_pair(tmp_path, "a", image=gray_image(), mask=colours[labels(num_classes=2)])
    assert "colour-coded" in (message := error_of(tmp_path)) and "(255, 0, 0)" in message
    assert "not classes" in error_of(tmp_path, mask_values={(0, 0, 0): 0, (255, 0, 0): 7})


def test_duplicate_names(tmp_path):
    binary_dataset(tmp_path, count=2, size=8)
    Image.fromarray(gray_image()).save(tmp_path / "images" / "1.jpg")
    assert "same name" in error_of(tmp_path)


def test_bad_arguments(tmp_path):
    binary_dataset(tmp_path, count=2, size=8)
    assert "split='test'" in error_of(tmp_path, split="test")
    assert "validation_fraction=1.5" in error_of(tmp_path, validation_fraction=1.5)
    assert "channels=4" in error_of(tmp_path, channels=4)
    assert "binary masks only" in error_of(tmp_path, invert=True, num_classes=3)
