"""Instance labels: touching nuclei separated, the paper's weight map by hand, the loader and the dataset."""

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from unet_helpers import data, instances
from unet_helpers.errors import UnetTutorialError

W0, SIGMA = 10.0, 5.0


def ridge(d1: float, d2: float) -> float:
    """The paper's extra weight of a background pixel at distances d1 and d2 from two instances."""
    return W0 * math.exp(-((d1 + d2) ** 2) / (2 * SIGMA**2))


def two_squares(gap: int, size: tuple[int, int] = (12, 20)) -> np.ndarray:
    """Labels 1 and 2: two 6x6 squares side by side, ``gap`` background columns apart (0: touching)."""
    labels = np.zeros(size, np.int32)
    labels[3:9, 2:8] = 1
    labels[3:9, 8 + gap : 14 + gap] = 2
    return labels


def background_weight(labels: np.ndarray) -> float:
    return labels.size / (2 * np.count_nonzero(labels == 0))


# The weight map.


def test_border_weights_by_hand_in_a_two_pixel_gap():
    labels = two_squares(gap=2)  # gap columns 8 and 9
    weights = instances.border_weights(labels, w0=W0, sigma=SIGMA)
    w_c = background_weight(labels)
    # Column 8: 1 pixel from the left square, 2 from the right one; column 9 the other way round.
    assert weights[5, 8] == pytest.approx(w_c + ridge(1, 2), rel=1e-6)
    assert weights[5, 9] == pytest.approx(w_c + ridge(2, 1), rel=1e-6)
    # A row above the squares: the nearest pixels are diagonal, at sqrt(1 + 1) and sqrt(1 + 4).
    assert weights[2, 8] == pytest.approx(w_c + ridge(math.sqrt(2), math.sqrt(5)), rel=1e-6)
    # Object pixels get their class weight only; both classes carry half the total weight.
    assert weights[5, 4] == pytest.approx(labels.size / (2 * 72))
    assert weights.dtype == np.float32 and weights.shape == labels.shape


def test_no_extra_weight_far_from_any_nucleus_or_with_a_single_one():
    labels = two_squares(gap=2, size=(100, 100))
    weights = instances.border_weights(labels)
    w_c = background_weight(labels)
    assert weights[99, 99] == np.float32(w_c)  # exactly: 90 pixels away, the ridge is left out
    # 7 pixels from the right square, 15 from the left: d1 + d2 = 4.4 sigma, a trace of ridge remains.
    assert weights[5, 22] == pytest.approx(w_c + ridge(7, 15), rel=1e-6)
    assert weights[5, 22] - np.float32(w_c) > 5e-4
    single = np.where(labels == 1, 1, 0)
    assert np.unique(instances.border_weights(single)).size == 2  # class weights only
    empty = instances.border_weights(np.zeros((8, 8), np.uint16))
    np.testing.assert_array_equal(empty, np.full((8, 8), 0.5, np.float32))  # 64 / (2 * 64)


def test_ridge_falls_off_with_the_gap():
    near = instances.border_weights(two_squares(gap=1))[5, 8]  # d1 = d2 = 1
    far = instances.border_weights(two_squares(gap=5))[5, 10]  # the middle of the gap: d1 = d2 = 3
    assert near > far > instances.border_weights(two_squares(gap=5))[0, 0]


def test_border_weights_use_the_labels_not_connected_components():
    # Two instances joined by one pixel at the bottom: the union is one component, and a gap column
    # (x = 8, rows 3 to 7) lies between them. Components would see one object and put no ridge there.
    labels = two_squares(gap=1)
    labels[8, 8] = 2
    assert cv2.connectedComponents((labels > 0).astype(np.uint8), connectivity=8)[0] == 2  # one + background
    weights = instances.border_weights(labels)
    assert weights[5, 8] == pytest.approx(background_weight(labels) + ridge(1, 1), rel=1e-6)


def test_given_class_weights_replace_the_image_own():
    labels = two_squares(gap=2)
    weights = instances.border_weights(labels, class_weights=(0.25, 4.0))
    assert weights[5, 4] == 4.0
    assert weights[5, 8] == pytest.approx(0.25 + ridge(1, 2), rel=1e-6)


def test_border_weights_reject_what_is_no_label_image():
    with pytest.raises(UnetTutorialError, match="one label image"):
        instances.border_weights(np.zeros((2, 8, 8), np.int32))
    with pytest.raises(UnetTutorialError, match="fractions"):
        instances.border_weights(np.full((8, 8), 0.5, np.float32))
    with pytest.raises(UnetTutorialError, match="sigma"):
        instances.border_weights(two_squares(gap=2), sigma=0)


def test_distances_are_exact_and_the_same_on_every_call():
    """d1 and d2 against a brute-force search, to the last bit, call after call.

    OpenCV's precise distance transform is a bit off in the last place at some pixels (10 of these 576),
    and which ones varies from call to call (5.0, measured): two datasets of the same labels disagreed.
    """
    labels = random_nuclei(1, 24, seed=4)[0]
    rows, columns = np.mgrid[:24, :24]
    squared = np.stack(
        [
            (
                (rows[..., None] - rows[labels == label]) ** 2
                + (columns[..., None] - columns[labels == label]) ** 2
            ).min(-1)
            for label in np.unique(labels[labels > 0])
        ]
    )
    exact = np.sort(np.sqrt(squared.astype(np.float64)).astype(np.float32), axis=0)
    for _ in range(200):
        nearest, second = instances._two_nearest(labels, reach=100)
        np.testing.assert_array_equal(nearest, exact[0])
        np.testing.assert_array_equal(second, exact[1])


# Separating touching instances.


def test_touching_instances_are_separated_and_targets_put_the_ridge_in_the_new_gap():
    labels = two_squares(gap=0)  # columns 2-7 and 8-13, touching
    mask, weights = instances.targets(labels, w0=W0, sigma=SIGMA)
    # Equal areas: the higher label gives up its first column.
    expected = (labels > 0).astype(np.uint8)
    expected[3:9, 8] = 0
    np.testing.assert_array_equal(mask, expected)
    assert mask.dtype == np.uint8
    assert cv2.connectedComponents(mask, connectivity=8)[0] - 1 == 2
    w_c = labels.size / (2 * np.count_nonzero(mask == 0))
    assert weights[5, 8] == pytest.approx(w_c + ridge(1, 1), rel=1e-6)


def test_diagonal_contact_is_separated_and_the_larger_instance_gives_up_the_pixel():
    labels = np.zeros((8, 8), np.int32)
    labels[1:4, 1:4] = 1  # 9 pixels
    labels[4, 4] = 2  # 1 pixel, touching only the corner (3, 3); the higher label, yet it stays
    mask = instances.separate_touching(labels)
    assert mask[4, 4] == 1 and mask[3, 3] == 0  # the small one stays whole
    assert np.count_nonzero(mask) == 9
    assert cv2.connectedComponents(mask, connectivity=8)[0] - 1 == 2


def test_no_two_instances_stay_adjacent_and_untouched_pixels_stay():
    rng = np.random.default_rng(1)
    # Blocks of random labels (0 included): many instances touching along edges and corners.
    labels = np.kron(rng.integers(0, 12, (12, 12)), np.ones((3, 3), np.int32))
    mask = instances.separate_touching(labels)
    count, components = cv2.connectedComponents(mask, connectivity=8)
    for component in range(1, count):
        assert np.unique(labels[components == component]).size == 1
    # Pixels with no 8-neighbour of another instance are kept.
    size = labels.shape[0]
    padded = np.pad(labels, 1)
    touching = np.zeros(labels.shape, bool)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            neighbour = padded[dy : dy + size, dx : dx + size]
            touching |= (neighbour > 0) & (neighbour != labels)
    assert np.all(mask[(labels > 0) & ~touching] == 1)
    assert np.any(mask[(labels > 0) & touching] == 1)  # and only one side of each contact goes
    assert np.all(mask[labels == 0] == 0)


# Reading instance files.


def write_labels(path: Path, labels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(labels.astype(np.uint16)).save(path)  # a 16-bit gray PNG
    return path


def test_read_instances_keeps_sixteen_bit_labels_exact_and_resizes_with_nearest_neighbour(tmp_path):
    labels = np.kron(np.array([[0, 300], [1000, 65535]]), np.ones((10, 15), np.int64))
    path = write_labels(tmp_path / "a.png", labels)
    read = instances.read_instances(path)
    assert read.dtype == np.int32
    np.testing.assert_array_equal(read, labels)
    small = instances.read_instances(path, image_size=8)
    assert small.shape == (8, 8) and set(np.unique(small)) == {0, 300, 1000, 65535}
    np.testing.assert_array_equal(small, np.kron(np.array([[0, 300], [1000, 65535]]), np.ones((4, 4))))


def test_read_instances_names_a_file_that_holds_no_labels(tmp_path):
    colour = tmp_path / "colour.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(colour)
    with pytest.raises(UnetTutorialError, match=r"colour\.png' holds RGB pixels") as error:
        instances.read_instances(colour)
    assert "\n" not in str(error.value)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(UnetTutorialError, match=r"cannot read instance labels '.*broken\.png'"):
        instances.read_instances(broken)


# A dataset folder.


def nuclei_folder(root: Path, count: int = 7) -> Path:
    """``count`` images of different sizes with masks (0/255) and 16-bit instances, the DSB layout."""
    rng = np.random.default_rng(0)
    for index in range(count):
        height, width = 20 + 2 * index, 24 - index
        labels = np.zeros((height, width), np.int32)
        for label in range(1, 4):
            y, x = rng.integers(0, height - 6), rng.integers(0, width - 6)
            labels[y : y + 6, x : x + 6] = label
        image = (rng.random((height, width, 3)) * 255).astype(np.uint8)
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "masks").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / "images" / f"n{index}.png")
        Image.fromarray(np.where(labels > 0, 255, 0).astype(np.uint8)).save(root / "masks" / f"n{index}.png")
        write_labels(root / "instances" / f"n{index}.png", labels)
    return root


@pytest.mark.parametrize("split", ["train", "validation"])
def test_load_split_picks_the_same_files_and_images_as_load_dataset(tmp_path, split):
    root = nuclei_folder(tmp_path)
    options = {"split": split, "seed": 3, "validation_fraction": 0.3}
    loaded = instances.load_split(root, image_size=16, progress=False, **options)
    scan = data.scan_dataset(root, progress=False)
    expected = [pair.image.stem for pair in data.split_pairs(scan.pairs, **options)]
    assert loaded.names == expected and len(expected) == (2 if split == "validation" else 5)
    pipeline = data.load_dataset(
        root, image_size=16, batch_size=None, shuffle=False, progress=False, **options
    )
    pairs = list(pipeline.as_numpy_iterator())
    np.testing.assert_array_equal(loaded.images, np.stack([image for image, _ in pairs]))
    np.testing.assert_array_equal(loaded.instances > 0, np.stack([mask[..., 0] for _, mask in pairs]) > 0)
    assert loaded.images.dtype == np.float32 and loaded.images.shape == (len(expected), 16, 16, 3)
    assert loaded.instances.dtype == np.int32 and loaded.instances.shape == (len(expected), 16, 16)


def test_load_split_names_a_missing_or_misfit_instance_file(tmp_path):
    root = nuclei_folder(tmp_path, count=3)
    (root / "instances" / "n1.png").unlink()
    with pytest.raises(UnetTutorialError, match=r"no instance labels in '.*instances'.*'n1\.png'") as error:
        instances.load_split(root, image_size=16, split="all", progress=False)
    assert "\n" not in str(error.value)
    write_labels(root / "instances" / "n1.png", np.zeros((5, 5)))
    with pytest.raises(UnetTutorialError, match=r"n1\.png' are 5x5 pixels but their image"):
        instances.load_split(root, image_size=16, split="all", progress=False)


# The dataset for model.fit.


def test_weighted_dataset_yields_separated_masks_and_weights_of_the_promised_shapes():
    labels = np.stack([two_squares(gap=0, size=(64, 64)), two_squares(gap=3, size=(64, 64))])
    images = np.random.default_rng(0).random((2, 64, 64, 3), dtype=np.float32)
    dataset = instances.weighted_dataset(images, labels, batch_size=2, shuffle=False)
    assert [spec.shape.as_list() for spec in dataset.element_spec] == [
        [None, 64, 64, 3],
        [None, 64, 64, 1],
        [None, 64, 64, 1],
    ]
    (batch_images, masks, weights) = next(dataset.as_numpy_iterator())
    assert batch_images.dtype == masks.dtype == weights.dtype == np.float32
    np.testing.assert_array_equal(batch_images, images)
    np.testing.assert_array_equal(masks[0, ..., 0], instances.separate_touching(labels[0]))
    np.testing.assert_array_equal(masks[1, ..., 0], labels[1] > 0)
    # One pair of class weights for the whole set, where each image's own would differ (66 and 72 object
    # pixels): the same far from nuclei, and on nuclei, in both images.
    background, foreground = instances.class_balance(masks)
    assert weights[0, 63, 63, 0] == weights[1, 63, 63, 0] == np.float32(background)
    assert weights[0, 5, 4, 0] == weights[1, 5, 4, 0] == np.float32(foreground)
    assert weights[0, 5, 8, 0] == pytest.approx(background + ridge(1, 1), rel=1e-6)
    assert np.all(weights > 0)

    plain = instances.weighted_dataset(images, labels, batch_size=1, weights=False, shuffle=False)
    assert len(plain.element_spec) == 2
    np.testing.assert_array_equal(next(plain.as_numpy_iterator())[1], masks[:1])


def test_weighted_dataset_augments_weights_with_their_masks():
    labels = np.stack([two_squares(gap=0, size=(20, 20))] * 4)
    images = np.random.default_rng(0).random((4, 20, 20, 3), dtype=np.float32)
    plain = next(instances.weighted_dataset(images, labels, batch_size=4, shuffle=False).as_numpy_iterator())
    augmented = instances.weighted_dataset(images, labels, batch_size=4, shuffle=False, augment=True)
    _, masks, weights = next(augmented.as_numpy_iterator())
    assert not np.array_equal(masks, plain[1])
    # Every weight keeps its class: object pixels the object weight, background pixels background weights.
    object_weight = plain[2][plain[1] == 1][0]
    np.testing.assert_array_equal(weights[masks == 1], object_weight)
    assert np.all(np.isin(weights[masks == 0], plain[2][plain[1] == 0]))


def test_weighted_dataset_rejects_labels_that_do_not_fit_the_images():
    with pytest.raises(UnetTutorialError, match="do not fit"):
        instances.weighted_dataset(np.zeros((2, 8, 8, 3)), np.zeros((2, 8, 9)), batch_size=1)


def coordinate_images(count: int, size: int) -> np.ndarray:
    """Images whose pixels say where they are: channel 0 the row, 1 the column, 2 the image's number."""
    rows, columns = np.mgrid[:size, :size].astype(np.float32)
    return np.stack(
        [np.stack([rows, columns, np.full((size, size), index, np.float32)], -1) for index in range(count)]
    ) / np.float32(size)


def random_nuclei(count: int, size: int, seed: int = 0) -> np.ndarray:
    """``count`` label images of overlapping discs: many instances touching along edges and corners."""
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[:size, :size]
    labels = np.zeros((count, size, size), np.int32)
    for image in labels:
        for label in range(1, size // 2):
            y, x, radius = rng.integers(0, size), rng.integers(0, size), rng.integers(3, 7)
            image[(rows - y) ** 2 + (columns - x) ** 2 <= radius**2] = label
    return labels


def test_crops_cut_image_mask_and_weights_at_one_window_new_every_epoch():
    size, crop, count = 24, 8, 6
    images, labels = coordinate_images(count, size), random_nuclei(count, size)
    whole = next(
        instances.weighted_dataset(images, labels, batch_size=count, shuffle=False).as_numpy_iterator()
    )
    cropped = instances.weighted_dataset(images, labels, batch_size=count, crop_size=crop, seed=3)
    assert [spec.shape.as_list() for spec in cropped.element_spec] == [
        [None, crop, crop, 3],
        [None, crop, crop, 1],
        [None, crop, crop, 1],
    ]
    corners = []
    for batch_images, masks, weights in cropped.repeat(4).as_numpy_iterator():  # four epochs
        for image, mask, weight in zip(batch_images, masks, weights, strict=True):
            top, left, index = np.round(image[0, 0] * size).astype(int)
            window = (index, slice(top, top + crop), slice(left, left + crop))
            np.testing.assert_array_equal(image, images[window])  # a window, not a resampled one
            np.testing.assert_array_equal(mask, whole[1][window])
            np.testing.assert_array_equal(weight, whole[2][window])
            corners.append((index, top, left))
    assert len(corners) == 4 * count
    assert all(0 <= top <= size - crop and 0 <= left <= size - crop for _, top, left in corners)
    # Each image got a new window in (almost) every epoch: 17 x 17 places to choose from.
    assert len(set(corners)) > 3 * count


def test_a_crop_of_the_whole_size_is_the_identity():
    images, labels = coordinate_images(3, 16), random_nuclei(3, 16)
    whole = instances.weighted_dataset(images, labels, batch_size=3, shuffle=False)
    cropped = instances.weighted_dataset(images, labels, batch_size=3, shuffle=False, crop_size=16)
    for expected, got in zip(next(whole.as_numpy_iterator()), next(cropped.as_numpy_iterator()), strict=True):
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(next(cropped.as_numpy_iterator())[0], images)


def test_one_seed_gives_the_same_pixels_with_or_without_weights_and_for_the_union():
    images, labels = coordinate_images(8, 32), random_nuclei(8, 32)
    options = {"batch_size": 4, "crop_size": 16, "seed": 5, "augment": True}
    weighted = list(instances.weighted_dataset(images, labels, **options).as_numpy_iterator())
    plain = list(instances.weighted_dataset(images, labels, weights=False, **options).as_numpy_iterator())
    union = list(instances.weighted_dataset(images, labels > 0, weights=False, **options).as_numpy_iterator())
    for (image, mask, _), (plain_image, plain_mask), (union_image, union_mask) in zip(
        weighted, plain, union, strict=True
    ):
        np.testing.assert_array_equal(plain_image, image)
        np.testing.assert_array_equal(plain_mask, mask)
        np.testing.assert_array_equal(union_image, image)
        # The union keeps the separating lines' pixels, and only those differ.
        assert np.all(union_mask >= mask) and np.any(union_mask > mask)


def test_crop_size_out_of_range_is_one_line():
    images, labels = coordinate_images(2, 16), random_nuclei(2, 16)
    for crop_size in (0, 17, 8.5):
        with pytest.raises(UnetTutorialError, match="crop_size") as error:
            instances.weighted_dataset(images, labels, batch_size=2, crop_size=crop_size)
        assert "\n" not in str(error.value)


def objects_holding_two_labels(masks: np.ndarray, labels: np.ndarray) -> int:
    """8-connected components of the masks that hold pixels of more than one label."""
    merged = 0
    for mask, label in zip(masks[..., 0], labels[..., 0], strict=True):
        count, components = cv2.connectedComponents((mask > 0).astype(np.uint8), connectivity=8)
        merged += sum(np.unique(label[(components == one) & (label > 0)]).size > 1 for one in range(1, count))
    return merged


def test_the_default_augmentation_of_weighted_datasets_keeps_separated_nuclei_apart():
    from unet_helpers.augment import AugmentOptions, augment_batch

    labels = random_nuclei(16, 48, seed=2)
    separated = np.stack([one * instances.separate_touching(one) for one in labels])[..., np.newaxis]
    images = np.zeros((*separated.shape[:3], 3), np.float32)
    masks = (separated > 0).astype(np.float32)
    carried = separated.astype(np.float32)  # the labels ride along as "weights": moved as the masks are
    assert objects_holding_two_labels(masks, carried) == 0
    for seed in range(3):
        _, safe_masks, safe_labels = augment_batch(
            images, masks, seed=[seed, 0], options=instances.SEPARATION_SAFE, weights=carried
        )
        assert objects_holding_two_labels(safe_masks.numpy(), safe_labels.numpy()) == 0
    # Why the default is not the series' own: resampling between pixels breaks the 1-pixel lines.
    _, masks_after, labels_after = augment_batch(
        images, masks, seed=[0, 0], options=AugmentOptions(), weights=carried
    )
    assert objects_holding_two_labels(masks_after.numpy(), labels_after.numpy()) > 0


# Merged objects.


def test_merged_objects_marks_an_object_that_holds_most_of_two_nuclei():
    labels = two_squares(gap=0)  # two touching 6x6 squares
    union = labels > 0
    np.testing.assert_array_equal(instances.merged_objects(labels, union), union)
    np.testing.assert_array_equal(instances.merged_objects(labels, union.astype(np.float32) * 0.9), union)
    separated = instances.separate_touching(labels)
    assert not instances.merged_objects(labels, separated).any()
    # One square whole and a third of the other: it holds one nucleus only.
    partial = (labels == 1).copy()
    partial[3:9, 8:10] = True
    assert not instances.merged_objects(labels, partial).any()
    # An object elsewhere and an empty prediction merge nothing.
    assert not instances.merged_objects(labels, np.zeros_like(union)).any()
    with pytest.raises(UnetTutorialError, match="differ in size"):
        instances.merged_objects(labels, union[:, :-1])
    with pytest.raises(UnetTutorialError, match="min_share"):
        instances.merged_objects(labels, union, min_share=0.4)
