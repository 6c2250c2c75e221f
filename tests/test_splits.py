"""Datasets as people store them: their own splits, a subset with ``limit``, and mask values to ignore."""

from pathlib import Path

import numpy as np
import pytest
from fake_datasets import CAMVID_VOID, make_fake_camvid, make_fake_oxford_pet
from PIL import Image

from unet_helpers import data, datasets, mask_classes, metrics, scan_cache, train
from unet_helpers.errors import UnetTutorialError

PET = datasets.OXFORD_PET_IGNORE_BORDER


def listed(root: Path, name: str) -> list[str]:
    return [line.split()[0] for line in (root / "annotations" / name).read_text().splitlines()]


def names(pairs) -> list[str]:
    return [pair.image.stem for pair in pairs]


def all_masks(dataset) -> np.ndarray:
    return np.concatenate([masks for _, masks in dataset.as_numpy_iterator()])


def test_pet_lists_decide_the_test_split_and_training_never_sees_it(tmp_path):
    root = make_fake_oxford_pet(tmp_path, num_images=12)
    scan = data.scan_dataset(root, progress=False, **datasets.OXFORD_PET_TRIMAP.as_kwargs())
    trainval, test = listed(root, "trainval.txt"), listed(root, "test.txt")
    assert names(data.split_pairs(scan.pairs, split="test")) == test  # in the list's order
    train_names = names(data.split_pairs(scan.pairs, split="train", seed=3))
    validation_names = names(data.split_pairs(scan.pairs, split="validation", seed=3))
    assert sorted(train_names + validation_names) == sorted(trainval)
    assert len(validation_names) == round(0.2 * len(trainval))  # a seeded fifth of trainval
    assert validation_names != names(data.split_pairs(scan.pairs, split="validation", seed=4))
    splits = data.load_splits(root, image_size=32, batch_size=2, progress=False, **PET.as_kwargs())
    assert {pair.split for pair in splits.scan.pairs} == {"train"}  # load_splits checks only trainval
    assert splits.train_count + splits.validation_count == len(trainval)


def test_without_its_own_splits_a_view_splits_by_seed_as_before(tmp_path):
    root = make_fake_oxford_pet(tmp_path, num_images=12)
    options = {**PET.as_kwargs(), "official_splits": None}
    scan = data.scan_dataset(root, progress=False, **options)
    assert {pair.split for pair in scan.pairs} == {None} and len(scan.pairs) == 12
    with pytest.raises(UnetTutorialError, match="no test split of its own"):
        data.split_pairs(scan.pairs, split="test")


def test_camvid_folders_give_train_validation_and_test_and_void_is_ignored(tmp_path):
    root = make_fake_camvid(tmp_path, counts=(4, 2, 3))
    splits = data.load_splits(
        root, image_size=32, batch_size=2, progress=False, **datasets.CAMVID.as_kwargs()
    )
    assert (splits.train_count, splits.validation_count) == (4, 2)
    assert all(
        pair.image.parent.name == "val" for pair in data.split_pairs(splits.scan.pairs, split="validation")
    )
    masks = all_masks(splits.validation)
    assert set(np.unique(masks)) <= {*range(11), mask_classes.IGNORE_CLASS}
    stored = np.stack([np.asarray(Image.open(path)) for path in sorted((root / "valannot").iterdir())])
    # Void pixels (nearest-neighbour resizing keeps them whole) are exactly the ignored ones.
    assert np.array_equal(
        masks[:, 0, :, 0] == mask_classes.IGNORE_CLASS, stored[:, 0, ::2][:, :32] == CAMVID_VOID
    )
    test = data.load_dataset(
        root, image_size=32, batch_size=None, split="test", progress=False, **datasets.CAMVID.as_kwargs()
    )
    assert len(list(test)) == 3


def test_a_mistake_in_a_split_list_names_the_list_and_line(tmp_path):
    root = make_fake_oxford_pet(tmp_path, num_images=8)
    lists = root / "annotations"
    with (lists / "test.txt").open("a") as test_list:
        test_list.write("Sphynx_999 33 1 10\n")
    line = len((lists / "test.txt").read_text().splitlines())
    with pytest.raises(
        UnetTutorialError, match=rf"test\.txt' line {line} names 'Sphynx_999'.*remove the line"
    ):
        data.scan_dataset(root, progress=False, **PET.as_kwargs())
    first_trainval = listed(root, "trainval.txt")[0]
    (lists / "test.txt").write_text(f"{first_trainval} 1 1 1\n")
    with pytest.raises(
        UnetTutorialError, match=rf"'.*{first_trainval}.jpg' is in both the train and the test"
    ):
        data.scan_dataset(root, progress=False, **PET.as_kwargs())
    (lists / "trainval.txt").unlink()
    with pytest.raises(UnetTutorialError, match=r"split list '.*trainval\.txt' does not exist"):
        data.scan_dataset(root, progress=False, **PET.as_kwargs())


def test_limit_draws_the_same_pairs_for_the_same_seed_and_checks_only_those(tmp_path, monkeypatch):
    root = make_fake_oxford_pet(tmp_path, num_images=16)
    options = {**PET.as_kwargs(), "official_splits": None, "progress": False}
    first = names(data.scan_dataset(root, limit=5, seed=1, **options).pairs)
    assert first == names(data.scan_dataset(root, limit=5, seed=1, **options).pairs)
    assert len(first) == 5 and first != names(data.scan_dataset(root, limit=5, seed=2, **options).pairs)
    everything = names(data.scan_dataset(root, **options).pairs)
    assert first == [name for name in everything if name in first]  # kept in name order
    inspected = []
    inspect = scan_cache.inspect_pairs
    monkeypatch.setattr(
        scan_cache, "inspect_pairs", lambda files, **kw: inspected.extend(files) or inspect(files, **kw)
    )
    data.scan_dataset(root, limit=5, seed=1, **options)
    assert len(inspected) == 5
    with pytest.raises(UnetTutorialError, match="limit=0"):
        data.scan_dataset(root, limit=0, **options)


def test_limit_keeps_each_official_split_s_share(tmp_path):
    root = make_fake_camvid(tmp_path, counts=(12, 6, 6))
    scan = data.scan_dataset(root, limit=12, progress=False, **datasets.CAMVID.as_kwargs())
    assert [pair.split for pair in scan.pairs].count("train") == 6
    assert [pair.split for pair in scan.pairs].count("validation") == 3


def test_ignored_values_become_the_ignore_class_and_others_still_fail(tmp_path):
    root = make_fake_oxford_pet(tmp_path, num_images=6)
    without_border = {"mask_values": {1: 1, 2: 0}, "images": "images", "masks": "annotations/trimaps"}
    with pytest.raises(UnetTutorialError, match=r"values \{3\} that are no class.*ignore_values="):
        data.scan_dataset(root, progress=False, **without_border)
    scan = data.scan_dataset(root, progress=False, ignore_values=[3], **without_border)
    assert dict(zip(scan.stored_values, scan.class_of_value, strict=True)) == {1: 1, 2: 0, 3: 255}
    dataset = data.load_dataset(
        root, image_size=32, batch_size=None, split="all", progress=False, ignore_values=[3], **without_border
    )
    trimap = np.asarray(Image.open(root / "annotations" / "trimaps" / f"{scan.pairs[0].image.stem}.png"))
    assert (trimap == 3).any() and set(np.unique(all_masks(dataset.batch(8)))) == {0, 1, 255}


def test_invert_leaves_ignored_pixels_ignored(tmp_path):
    rule = mask_classes.class_rule(
        num_classes=2, mask_values=None, mask_threshold=None, invert=True, ignore_values=[128]
    )
    assert (rule(0), rule(255), rule(128), rule(7)) == (1, 0, mask_classes.IGNORE_CLASS, None)


def reading_options(*arguments: str) -> dict:
    parsed = train._parser().parse_args(["--data", "somewhere", "--out", "run", *arguments])
    return train._dataset_options(parsed)


def test_the_command_line_takes_ignore_values_limit_and_the_views_own_split():
    camvid = reading_options("--view", "camvid", "--limit", "40")
    assert camvid["ignore_values"] == [CAMVID_VOID] and camvid["limit"] == 40 and camvid["num_classes"] == 11
    assert camvid["official_splits"]["validation"] == ["val", "valannot"]  # lists, as run.json keeps them
    assert reading_options("--view", "camvid", "--no-official-split")["official_splits"] is None
    both = reading_options("--view", "oxford-pet-ignore-border", "--ignore-value", "0")
    assert both["ignore_values"] == [0, 3]
    assert reading_options("--ignore-value", "255", "--ignore-value", "9")["ignore_values"] == [9, 255]


def test_a_class_dict_file_gives_the_command_line_colour_classes_and_a_void_colour_to_ignore(tmp_path):
    class_dict = tmp_path / "class_dict.csv"
    class_dict.write_text("name,r,g,b\nAnimal,64,128,64\nVoid,0,0,0\nSky,128,128,128\nRoad,128,64,128\n")
    reading = reading_options("--mask-values", str(class_dict), "--ignore-value", "0,0,0")
    # Void is no class: the three others are 0, 1, 2 in the file's order, and black is ignored.
    assert reading["mask_values"] == {(64, 128, 64): 0, (128, 128, 128): 1, (128, 64, 128): 2}
    assert reading["num_classes"] == 3 and reading["ignore_values"] == [(0, 0, 0)]
    parsed = train._parser().parse_args(["--data", "d", "--out", "o", "--mask-values", str(class_dict)])
    assert not train._has_background(parsed)  # named classes are all things to find: all scored
    values = tmp_path / "values.csv"
    values.write_text("# stored,class\n0,0\n255,1\n")
    assert reading_options("--mask-values", str(values))["mask_values"] == {0: 0, 255: 1}
    values.write_text("0,0\n255\n")
    with pytest.raises(UnetTutorialError, match=r"values\.csv' line 2 \(255\)"):
        reading_options("--mask-values", str(values))


def test_colour_masks_train_with_a_void_colour_ignored(tmp_path):
    colours = np.array([[0, 0, 0], [64, 128, 64], [128, 128, 128]], np.uint8)  # void, animal, sky
    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
    rng = np.random.default_rng(0)
    for index in range(3):
        labels = rng.integers(0, 3, size=(16, 16))
        Image.fromarray(colours[labels]).save(tmp_path / "masks" / f"{index}.png")
        Image.fromarray((labels * 80).astype(np.uint8)).save(tmp_path / "images" / f"{index}.png")
    masks = all_masks(
        data.load_dataset(
            tmp_path,
            image_size=16,
            batch_size=3,
            split="all",
            progress=False,
            num_classes=2,
            mask_values={(64, 128, 64): 0, (128, 128, 128): 1},
            ignore_values=[(0, 0, 0)],
        )
    )
    stored = np.stack([np.asarray(Image.open(tmp_path / "masks" / f"{index}.png")) for index in range(3)])
    assert np.array_equal(masks[..., 0] == mask_classes.IGNORE_CLASS, (stored == 0).all(axis=-1))
    assert set(np.unique(masks)) == {0, 1, mask_classes.IGNORE_CLASS}


def test_scores_average_every_class_where_class_0_is_no_background():
    def arguments(*given: str):
        return train._parser().parse_args(["--data", "somewhere", "--out", "run", *given])

    assert train._has_background(arguments("--view", "oxford-pet-trimap"))
    assert not train._has_background(arguments("--view", "camvid"))  # class 0 is the sky
    with_background, every_class = (
        metrics.segmentation_metrics(3, background=background)[0] for background in (True, False)
    )
    assert (with_background.class_ids, every_class.class_ids) == ([1, 2], [0, 1, 2])


def test_lossy_rgb_masks_whose_channels_differ_are_thresholded_not_called_colour_coded(tmp_path):
    """Kvasir-SEG stores its masks as RGB JPEGs: after compression the channels differ a little."""
    rng = np.random.default_rng(0)
    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
    red_channels = []
    for index in range(2):
        red = np.where(
            rng.random((24, 32)) < 0.3, rng.integers(200, 256, (24, 32)), rng.integers(0, 40, (24, 32))
        )
        noisy = np.clip(red[..., None] + rng.integers(-3, 4, (24, 32, 3)), 0, 255)
        noisy[..., 0] = red
        Image.fromarray(noisy.astype(np.uint8)).save(tmp_path / "masks" / f"cju{index}.png")
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(
            tmp_path / "images" / f"cju{index}.jpg"
        )
        red_channels.append(red)
    with pytest.raises(UnetTutorialError, match="colour-coded"):
        data.scan_dataset(tmp_path, progress=False)
    masks = all_masks(
        data.load_dataset(
            tmp_path, image_size=32, batch_size=2, split="all", progress=False, mask_threshold=128
        )
    )
    # 32 is the stored width; the 24 rows are resized to 32 (nearest neighbour): row 0 stays row 0.
    assert set(np.unique(masks)) == {0, 1}
    assert np.array_equal(masks[:, 0, :, 0], (np.stack(red_channels)[:, 0, :] >= 128).astype(np.float32))
