"""Augmentation: masks stay aligned with their images, keep their labels, and draws are reproducible.

The alignment check: images whose mask is a known function of the image (class = which band of grey
levels a pixel lies in). After augmentation the mask must still be that function of the augmented image,
everywhere except a thin band along label borders, where interpolation legitimately differs.
"""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from unet_helpers.augment import (
    GEOMETRIC,
    PHOTOMETRIC,
    AugmentOptions,
    augment_batch,
    augment_dataset,
    sampling_map,
)
from unet_helpers.augment_layer import RandomAugment
from unet_helpers.errors import UnetTutorialError

SIZE = 64
BATCH = 64  # one call augments 64 images, each with its own draw
BORDER_BAND = 2  # pixels on each side of a label border where image and mask may disagree


def smooth_images(*, num_classes: int = 2, channels: int = 1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A batch of smooth random images with blobs, and masks that are a function of them.

    The image steps steeply but smoothly between grey plateaus (one per class); the mask is the index of
    the plateau, i.e. the band of grey levels, a pixel lies in. Returns float32 (BATCH, SIZE, SIZE,
    channels) in [0, 1] and float32 (BATCH, SIZE, SIZE, 1) class indices.
    """
    rng = np.random.default_rng(seed)
    coarse = rng.normal(size=(BATCH, 6, 6, 1)).astype(np.float32)
    field = tf.image.resize(coarse, (SIZE, SIZE), method="bicubic").numpy()
    levels = np.quantile(field, np.linspace(0, 1, num_classes + 1)[1:-1], axis=(1, 2, 3), keepdims=True)
    masks = (field[None] > levels).sum(axis=0).astype(np.float32)
    # Steep sigmoids (about a pixel wide) around the same levels: the image's plateau index is the mask.
    steps = 1.0 / (1.0 + np.exp(-(field[None] - levels) * 40.0))
    images = 0.1 + 0.8 * steps.sum(axis=0) / (num_classes - 1)
    return np.repeat(images, channels, axis=-1).astype(np.float32), masks


def classes_of(images: np.ndarray, num_classes: int) -> np.ndarray:
    """The class that `smooth_images` gives each pixel, read back from an (augmented) image.

    Grey levels are compared with thresholds halfway between each image's own darkest and brightest
    plateaus, so the function survives brightness, contrast and gamma changes as well as geometry.
    """
    grey = images.mean(axis=-1, keepdims=True)
    low = np.quantile(grey, 0.02, axis=(1, 2, 3), keepdims=True)
    high = np.quantile(grey, 0.98, axis=(1, 2, 3), keepdims=True)
    position = (grey - low) / (high - low)
    return np.clip(np.floor(position * (num_classes - 1) + 0.5), 0, num_classes - 1)


def border_band(masks: np.ndarray, radius: int) -> np.ndarray:
    """True within `radius` pixels of a label border (where the window's labels are not all one)."""
    window = 2 * radius + 1
    masks = tf.constant(masks)
    largest = tf.nn.max_pool2d(masks, window, 1, "SAME")
    smallest = -tf.nn.max_pool2d(-masks, window, 1, "SAME")
    return (largest != smallest).numpy()


def alignment_errors(images: np.ndarray, masks: np.ndarray, num_classes: int) -> tuple[float, float]:
    """How far the masks are from the images' classes: ``(far, total)`` shares of all pixels.

    ``far``: pixels where they disagree although neither has a label border within BORDER_BAND pixels;
    0 for any correct transform. ``total``: pixels where they disagree at all. For two classes,
    interpolation makes about 1% of pixels, all along borders, disagree; a mask that is off by one pixel,
    or rounded down instead of to the nearest pixel, makes it 3 to 5%.
    """
    classes = classes_of(images, num_classes)
    disagree = classes != masks
    far = disagree & ~border_band(masks, BORDER_BAND) & ~border_band(classes, BORDER_BAND)
    return float(far.mean()), float(disagree.mean())


def assert_aligned(images: np.ndarray, masks: np.ndarray, num_classes: int = 2) -> None:
    far, total = alignment_errors(images, masks, num_classes)
    assert far == 0.0, f"{far:.3%} of pixels disagree away from borders"
    limit = 0.02 * (num_classes - 1)  # interpolation along borders: about 1% per boundary level
    assert total < limit, f"{total:.2%} of pixels disagree, more than interpolation explains ({limit:.0%})"


def augment(images, masks, options, seed=(7, 11)):
    augmented = augment_batch(images, masks, seed=tf.constant(seed, tf.int64), options=options)
    return [tensor.numpy() for tensor in augmented]


ALIGNMENT_CASES = {
    "flip": AugmentOptions.only("flip"),
    "rotate90": AugmentOptions.only("rotate90"),
    "rotate": AugmentOptions.only("rotate", max_rotation=45.0),
    "zoom": AugmentOptions.only("zoom", max_zoom=0.5),
    "translate": AugmentOptions.only("translate", max_translation=0.3),
    "elastic": AugmentOptions.only("elastic", elastic_std=0.06, elastic_grid=4),
    "all geometric": AugmentOptions.only(*GEOMETRIC),
    "default pipeline": AugmentOptions(),
}


def test_smooth_images_mask_is_a_function_of_the_image():
    for num_classes in (2, 4):
        images, masks = smooth_images(num_classes=num_classes)
        far, total = alignment_errors(images, masks, num_classes)
        assert far == 0.0 and total < 1e-4
        assert set(np.unique(masks)) == set(range(num_classes))


@pytest.mark.parametrize("options", ALIGNMENT_CASES.values(), ids=ALIGNMENT_CASES.keys())
def test_masks_stay_aligned_with_their_images(options):
    images, masks = smooth_images()
    for seed in [(0, 1), (5, 9), (123, 456)]:
        augmented_images, augmented_masks = augment(images, masks, options, seed)
        assert_aligned(augmented_images, augmented_masks)
        moved = np.mean(augmented_masks != masks)
        assert moved > 0.05, f"seed {seed}: the transform hardly changed the masks ({moved:.1%})"


def test_images_that_are_not_square_keep_their_shape_and_alignment():
    images, masks = smooth_images()
    images, masks = images[:, :, :40], masks[:, :, :40]  # 64 x 40
    augmented_images, augmented_masks = augment(images, masks, AugmentOptions())
    assert augmented_images.shape == images.shape and augmented_masks.shape == masks.shape
    assert_aligned(augmented_images, augmented_masks)
    turned, _ = augment(images, masks, AugmentOptions.only("rotate90"))
    upright = [np.allclose(after, before) for before, after in zip(images, turned, strict=True)]
    upside_down = [
        np.allclose(after, before[::-1, ::-1]) for before, after in zip(images, turned, strict=True)
    ]
    assert all(np.logical_xor(upright, upside_down)) and any(upright) and any(upside_down)


def test_alignment_check_catches_a_mask_warped_with_another_field():
    """The check above has teeth: the bug it exists for (pitfalls.md, Keras RandomElasticTransform)."""
    images, masks = smooth_images()
    for options in (ALIGNMENT_CASES["elastic"], AugmentOptions()):
        augmented_images, _ = augment(images, masks, options, seed=(1, 2))
        _, masks_from_another_draw = augment(images, masks, options, seed=(1, 3))
        far, total = alignment_errors(augmented_images, masks_from_another_draw, 2)
        assert far > 0.01 and total > 0.05


def test_multiclass_masks_keep_their_labels_and_alignment():
    images, masks = smooth_images(num_classes=4, channels=3)
    for options in (AugmentOptions.only(*GEOMETRIC), AugmentOptions()):
        augmented_images, augmented_masks = augment(images, masks, options)
        assert_aligned(augmented_images, augmented_masks, num_classes=4)
        for before, after in zip(masks, augmented_masks, strict=True):
            assert set(np.unique(after)) <= set(np.unique(before))
        assert set(np.unique(augmented_masks)) == {0.0, 1.0, 2.0, 3.0}


def test_flips_and_quarter_turns_move_whole_pixels():
    images, masks = smooth_images()
    augmented_images, augmented_masks = augment(images, masks, AugmentOptions.only("flip", "rotate90"))
    seen = set()
    for image, mask, augmented_image, augmented_mask in zip(
        images, masks, augmented_images, augmented_masks, strict=True
    ):
        candidates = [
            (turns, flipped, np.rot90(np.fliplr(image) if flipped else image, turns))
            for turns in range(4)
            for flipped in (False, True)
        ]
        matches = [(turns, flipped) for turns, flipped, c in candidates if np.allclose(c, augmented_image)]
        assert len(matches) == 1
        turns, flipped = matches[0]
        np.testing.assert_array_equal(np.rot90(np.fliplr(mask) if flipped else mask, turns), augmented_mask)
        seen.add(matches[0])
    assert len(seen) == 8, "all eight orientations are drawn"


def test_sampling_map_draws_rotation_zoom_and_shift_in_their_ranges():
    batch, centre = 256, (SIZE - 1) / 2
    options = AugmentOptions.only("rotate", "zoom", "translate", max_rotation=20.0, max_zoom=0.25)
    source_y, source_x = sampling_map(batch, SIZE, SIZE, seed=tf.constant([3, 4]), options=options)
    source_y, source_x = source_y.numpy(), source_x.numpy()
    # The map is affine: read its linear part from steps along a row and a column.
    step_x = np.stack([source_y[:, 0, 1] - source_y[:, 0, 0], source_x[:, 0, 1] - source_x[:, 0, 0]], -1)
    shrink = np.linalg.norm(step_x, axis=-1)
    angle = np.degrees(np.arctan2(-step_x[:, 0], step_x[:, 1]))
    # The centre of the image (between the four central pixels) moves by the shift alone.
    middle = slice(SIZE // 2 - 1, SIZE // 2 + 1)
    shift = np.stack([source_y[:, middle, middle].mean((1, 2)), source_x[:, middle, middle].mean((1, 2))], -1)
    shift -= centre
    assert np.all(np.abs(angle) <= 20.0 + 1e-3) and np.ptp(angle) > 30.0
    assert np.all((shrink >= 1 / 1.25 - 1e-5) & (shrink <= 1.25 + 1e-5)) and np.ptp(shrink) > 0.3
    assert np.all(np.abs(shift) <= 0.05 * SIZE + 1e-3) and np.ptp(shift) > 0.05 * SIZE


def test_elastic_displacements_have_the_requested_strength_and_are_smooth():
    batch = 512
    for std, grid in [(0.02, 3), (0.05, 5)]:
        options = AugmentOptions.only("elastic", elastic_std=std, elastic_grid=grid)
        source_y, source_x = sampling_map(batch, SIZE, SIZE, seed=tf.constant([5, 6]), options=options)
        rows, columns = np.meshgrid(np.arange(SIZE), np.arange(SIZE), indexing="ij")
        displacement = np.stack([source_y.numpy() - rows, source_x.numpy() - columns])
        # Bicubic interpolation passes through the control points, four of which are the corners.
        corners = displacement[:, :, [0, 0, -1, -1], [0, -1, 0, -1]]
        assert np.std(corners) == pytest.approx(std * SIZE, rel=0.1)
        # Smooth: neighbouring pixels move almost together (per-pixel noise would give about 1.4).
        steps = np.concatenate(
            [np.diff(displacement, axis=-1).ravel(), np.diff(displacement, axis=-2).ravel()]
        )
        assert np.std(steps) < 0.2 * np.std(displacement)


def test_images_stay_in_the_unit_range():
    images, masks = smooth_images(channels=3)
    images = np.where(images > 0.5, 1.0, 0.0).astype(np.float32)  # plateaus at 0 and 1
    strongest = AugmentOptions(
        max_blur_sigma=5.0, max_brightness=1.0, max_contrast=0.99, max_gamma=1.0, max_noise_std=0.5
    )
    augmented_images, _ = augment(images, masks, strongest)
    assert augmented_images.min() >= 0.0 and augmented_images.max() <= 1.0
    assert augmented_images.dtype == np.float32


def test_photometric_transforms_leave_masks_alone():
    images, masks = smooth_images()
    augmented_images, augmented_masks = augment(images, masks, AugmentOptions.only(*PHOTOMETRIC))
    np.testing.assert_array_equal(augmented_masks, masks)
    assert np.abs(augmented_images - images).mean() > 0.01


def test_photometric_transforms_have_their_documented_strengths():
    rng = np.random.default_rng(1)
    images = rng.uniform(0.3, 0.7, size=(BATCH, SIZE, SIZE, 1)).astype(np.float32)  # never clipped
    masks = np.zeros_like(images)
    mean, spread = images.mean(axis=(1, 2, 3)), images.std(axis=(1, 2, 3))

    def change(**strengths):
        switches = [name for name in PHOTOMETRIC if name in strengths]
        values = {key: value for key, value in strengths.items() if key not in switches}
        return augment(images, masks, AugmentOptions.only(*switches, **values))[0]

    shifted = change(brightness=True, max_brightness=0.1)
    shift = (shifted - images).mean(axis=(1, 2, 3))
    assert np.allclose(shifted - images, shift[:, None, None, None], atol=1e-5)
    assert np.all(np.abs(shift) <= 0.1 + 1e-6) and np.ptp(shift) > 0.15

    stretched = change(contrast=True, max_contrast=0.2)
    assert np.allclose(stretched.mean(axis=(1, 2, 3)), mean, atol=1e-4)
    ratio = stretched.std(axis=(1, 2, 3)) / spread
    assert np.all((ratio >= 0.8 - 1e-4) & (ratio <= 1.2 + 1e-4)) and np.ptp(ratio) > 0.3

    both = change(brightness=True, contrast=True, max_brightness=0.1, max_contrast=0.2)
    assert np.allclose(both.mean(axis=(1, 2, 3)) - mean, shift, atol=1e-4), "contrast keeps the new mean"

    powered = change(gamma=True, max_gamma=0.2)
    exponent = np.log(powered[:, 0, 0, 0]) / np.log(images[:, 0, 0, 0])
    np.testing.assert_allclose(powered, images ** exponent[:, None, None, None], atol=1e-4)
    assert np.all((exponent >= 1 / 1.2 - 1e-4) & (exponent <= 1.2 + 1e-4)) and np.ptp(exponent) > 0.3

    noise = change(noise=True, max_noise_std=0.03) - images
    std = noise.std(axis=(1, 2, 3))
    assert np.all(std <= 0.03 * 1.02) and np.ptp(std) > 0.02
    assert np.abs(noise.mean(axis=(1, 2, 3))).max() < 0.002
    strongest = noise[np.argmax(std)]
    within_one_std = np.mean(np.abs(strongest) < strongest.std())
    assert within_one_std == pytest.approx(0.683, abs=0.025), "Gaussian: 68% within one standard deviation"

    blurred = change(blur=True, max_blur_sigma=1.0)
    smoothing = blurred.std(axis=(1, 2, 3)) / spread
    assert np.all(smoothing <= 1.0 + 1e-4) and smoothing.min() < 0.5 and smoothing.max() > 0.95


def test_everything_off_is_the_identity():
    images, masks = smooth_images(channels=3)
    augmented_images, augmented_masks = augment(images, masks, AugmentOptions.only())
    np.testing.assert_array_equal(augmented_images, images)
    np.testing.assert_array_equal(augmented_masks, masks)


def test_draws_are_reproducible_and_each_image_gets_its_own():
    images, masks = smooth_images()
    same_image = np.repeat(images[:1], 8, axis=0)
    same_mask = np.repeat(masks[:1], 8, axis=0)
    first = augment(same_image, same_mask, AugmentOptions(), seed=(1, 2))
    again = augment(same_image, same_mask, AugmentOptions(), seed=(1, 2))
    other = augment(same_image, same_mask, AugmentOptions(), seed=(1, 3))
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.allclose(first[0], other[0])
    distinct = {augmented.tobytes() for augmented in first[1]}
    assert len(distinct) == 8, "every image in the batch is transformed differently"


def test_images_are_read_bilinearly_and_masks_by_nearest_neighbour_from_a_mirrored_canvas():
    """Compare with a plain reference: mirror the image onto a large canvas, then read the canvas."""
    images, masks = smooth_images(num_classes=3, channels=3)
    images = images * np.linspace(0.5, 1.0, SIZE, dtype=np.float32)[:, None, None]  # no two sides alike
    options = AugmentOptions.only("rotate", "zoom", "translate", max_rotation=30.0, max_translation=0.3)
    seed = tf.constant([8, 9])
    augmented_images, augmented_masks = augment(images, masks, options, seed=(8, 9))
    source_y, source_x = (
        coordinate.numpy() + SIZE
        for coordinate in sampling_map(BATCH, SIZE, SIZE, seed=seed, options=options)
    )
    pad = [(0, 0), (SIZE, SIZE), (SIZE, SIZE), (0, 0)]
    image_canvas, mask_canvas = np.pad(images, pad, mode="symmetric"), np.pad(masks, pad, mode="symmetric")
    batch = np.arange(BATCH)[:, None, None]
    y0, x0 = np.floor(source_y).astype(int), np.floor(source_x).astype(int)
    weight_y, weight_x = (source_y - y0)[..., None], (source_x - x0)[..., None]
    top = (1 - weight_x) * image_canvas[batch, y0, x0] + weight_x * image_canvas[batch, y0, x0 + 1]
    bottom = (1 - weight_x) * image_canvas[batch, y0 + 1, x0] + weight_x * image_canvas[batch, y0 + 1, x0 + 1]
    np.testing.assert_allclose(augmented_images, (1 - weight_y) * top + weight_y * bottom, atol=1e-4)
    nearest = mask_canvas[batch, np.round(source_y).astype(int), np.round(source_x).astype(int)]
    np.testing.assert_array_equal(augmented_masks, nearest)


def test_reflect_is_the_default_and_outside_label_marks_only_outside_pixels():
    images, _ = smooth_images()
    ones = np.ones((BATCH, SIZE, SIZE, 1), np.float32)
    shifted = AugmentOptions.only("translate", max_translation=0.3)
    _, reflected = augment(images, ones, shifted)
    assert set(np.unique(reflected)) == {1.0}
    _, marked = augment(images, ones, shifted.replace(outside_label=255))
    assert set(np.unique(marked)) == {1.0, 255.0}
    # A shift moves whole rows and columns out: the marked pixels of each image form bands at the edges.
    marked_rows = (marked == 255).all(axis=2)[..., 0]
    marked_columns = (marked == 255).all(axis=1)[..., 0]
    covered = marked_rows[:, :, None] | marked_columns[:, None, :]
    np.testing.assert_array_equal(covered, marked[..., 0] == 255)
    # Exactly the pixels whose source lies more than half a pixel beyond the outer pixel centres.
    source_y, source_x = (
        coordinate.numpy()
        for coordinate in sampling_map(BATCH, SIZE, SIZE, seed=tf.constant([7, 11]), options=shifted)
    )
    outside = (np.abs(source_y - (SIZE - 1) / 2) > SIZE / 2) | (np.abs(source_x - (SIZE - 1) / 2) > SIZE / 2)
    np.testing.assert_array_equal(marked[..., 0] == 255, outside)
    _, unshifted = augment(images, ones, AugmentOptions.only("flip", "rotate90", outside_label=255))
    assert set(np.unique(unshifted)) == {1.0}


def test_runs_in_a_dataset_map_and_a_tf_function_with_unknown_batch_size():
    images, masks = smooth_images()
    seed = tf.constant([4, 2], tf.int64)
    eager = augment(images[:6], masks[:6], AugmentOptions(), seed=(4, 2))
    dataset = tf.data.Dataset.from_tensor_slices((images[:10], masks[:10])).batch(6)  # 6, then 4
    assert dataset.element_spec[0].shape[0] is None
    mapped = dataset.map(lambda i, m: augment_batch(i, m, seed=seed))
    assert mapped.element_spec[0].shape.as_list() == [None, SIZE, SIZE, 1]
    assert mapped.element_spec[1].shape.as_list() == [None, SIZE, SIZE, 1]
    batches = list(mapped.as_numpy_iterator())
    assert [len(b[0]) for b in batches] == [6, 4]
    np.testing.assert_array_equal(batches[0][1], eager[1])
    np.testing.assert_allclose(batches[0][0], eager[0], atol=1e-5)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 1]), tf.TensorSpec([None, None, None, 1])])
    def unknown_shapes(i, m):
        return augment_batch(i, m, seed=seed)

    graph_images, graph_masks = unknown_shapes(images[:6], masks[:6])
    np.testing.assert_array_equal(graph_masks.numpy(), eager[1])
    np.testing.assert_allclose(graph_images.numpy(), eager[0], atol=1e-5)


def test_augment_dataset_draws_anew_each_epoch_and_repeats_with_the_same_seed():
    images, masks = smooth_images()
    batches = tf.data.Dataset.from_tensor_slices((images[:16], masks[:16])).batch(8)

    def epoch(dataset):
        return np.concatenate([m for _, m in dataset.as_numpy_iterator()])

    augmented = augment_dataset(batches, seed=5)
    first, second = epoch(augmented), epoch(augmented)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(epoch(augment_dataset(batches, seed=5)), first)
    assert not np.array_equal(epoch(augment_dataset(batches, seed=6)), first)


def test_random_augment_layer_trains_with_augmentation_and_predicts_without():
    images, masks = smooth_images()
    layer = RandomAugment(AugmentOptions(), seed=3)
    same = layer(images, masks)
    np.testing.assert_array_equal(same[1], masks)
    first = [tensor.numpy() for tensor in layer(images, masks, training=True)]
    second = [tensor.numpy() for tensor in layer(images, masks, training=True)]
    assert not np.array_equal(first[1], second[1]), "a new draw on every call"
    assert_aligned(*first)
    again = RandomAugment(AugmentOptions(), seed=3)
    np.testing.assert_array_equal(again(images, masks, training=True)[1].numpy(), first[1])
    restored = RandomAugment.from_config(layer.get_config())
    assert restored.options == layer.options

    # Inside a compiled graph, as in a custom train_step.
    @tf.function
    def step(i, m):
        return layer(i, m, training=True)

    graph_images, graph_masks = step(images, masks)
    assert_aligned(graph_images.numpy(), graph_masks.numpy())


def test_random_augment_layer_runs_in_a_compiled_train_step():
    """As on a GPU: Keras compiles the training step with XLA (jit_compile), augmentation included."""
    images, masks = smooth_images()

    class AugmentingModel(keras.Model):
        def __init__(self, augment, **kwargs):
            super().__init__(**kwargs)
            self.augment = augment

        def train_step(self, data):
            return super().train_step(self.augment(*data, training=True))

    compiled_layer = tf.function(RandomAugment(seed=4).__call__, jit_compile=True)
    assert_aligned(*(tensor.numpy() for tensor in compiled_layer(images, masks, training=True)))

    inputs = keras.Input((SIZE, SIZE, 1))
    outputs = keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(inputs)
    model = AugmentingModel(RandomAugment(seed=5), inputs=inputs, outputs=outputs)
    model.compile(optimizer="adam", loss="binary_crossentropy", jit_compile=True)
    history = model.fit(images[:16], masks[:16], batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert model.predict(images[:2], verbose=0).shape == (2, SIZE, SIZE, 1)


@pytest.mark.parametrize(
    ("images_shape", "masks_shape", "message"),
    [
        ((SIZE, SIZE, 1), (SIZE, SIZE, 1), "add a batch axis"),
        ((2, SIZE, SIZE, 2), (2, SIZE, SIZE, 1), "1 or 3 channels"),
        ((2, SIZE, SIZE, 1), (2, SIZE, SIZE, 3), "class indices"),
        ((2, SIZE, SIZE, 1), (2, SIZE, 32, 1), "differ in batch, height or width"),
    ],
)
def test_wrong_shapes_raise_one_line_errors(images_shape, masks_shape, message):
    with pytest.raises(UnetTutorialError, match=message):
        augment_batch(np.zeros(images_shape, np.float32), np.zeros(masks_shape, np.float32), seed=[1, 2])


def test_wrong_dtype_seed_and_options_raise_one_line_errors():
    images, masks = np.zeros((2, 8, 8, 1), np.float32), np.zeros((2, 8, 8, 1), np.float32)
    with pytest.raises(UnetTutorialError, match="convert them to float32"):
        augment_batch(images.astype(np.uint8), masks, seed=[1, 2])
    with pytest.raises(UnetTutorialError, match="give two integers"):
        augment_batch(images, masks, seed=[1, 2, 3])
    with pytest.raises(UnetTutorialError, match="give two integers"):
        augment_batch(images, masks, seed=[1.0, 2.0])
    with pytest.raises(UnetTutorialError, match="max_rotation=200"):
        AugmentOptions(max_rotation=200)
    with pytest.raises(UnetTutorialError, match="elastic_grid=1"):
        AugmentOptions(elastic_grid=1)
    with pytest.raises(UnetTutorialError, match="no transform called 'shear'"):
        AugmentOptions.only("shear")
    with pytest.raises(dataclasses.FrozenInstanceError):
        AugmentOptions().flip = False


# Per-pixel weights (the paper's border weights) move with the masks.


def weights_of(masks: np.ndarray) -> np.ndarray:
    """Weights derived from the masks, every one distinct: ``3 * mask + 1 + position / (2 * pixels)``.

    From a weight one reads both the mask value it was made from (``floor((w - 1) / 3)``) and its pixel.
    """
    position = np.arange(masks[0].size, dtype=np.float32).reshape(masks.shape[1:]) / (2 * masks[0].size)
    return (3 * masks + 1 + position).astype(np.float32)


@pytest.mark.parametrize("options", ALIGNMENT_CASES.values(), ids=ALIGNMENT_CASES.keys())
def test_weights_move_exactly_with_the_masks(options):
    images, masks = smooth_images(num_classes=3)
    weights = weights_of(masks)
    seed = tf.constant([5, 9], tf.int64)
    augmented = [t.numpy() for t in augment_batch(images, masks, seed=seed, options=options, weights=weights)]
    without = augment(images, masks, options, seed=(5, 9))
    np.testing.assert_array_equal(augmented[0], without[0])  # the weights change nothing else
    np.testing.assert_array_equal(augmented[1], without[1])
    out_weights = augmented[2]
    assert out_weights.dtype == np.float32 and out_weights.shape == masks.shape
    # Every weight is one of its own image's input weights, and it came with its mask label.
    for index in range(BATCH):
        assert np.all(np.isin(out_weights[index], weights[index]))
    np.testing.assert_array_equal(np.floor((out_weights - 1) / 3), augmented[1])
    assert np.mean(out_weights != weights) > 0.05


@pytest.mark.parametrize("options", ALIGNMENT_CASES.values(), ids=ALIGNMENT_CASES.keys())
def test_weights_come_from_the_very_pixel_the_mask_value_comes_from(options):
    """Masks that number their pixels (0..4095) and weights 2 * number + 0.5: after any transform, each
    pixel's weight must still be 2 * its mask value + 0.5 (the masks test checks the pixel itself)."""
    images, _ = smooth_images()
    numbers = np.broadcast_to(
        np.arange(SIZE * SIZE, dtype=np.float32).reshape(1, SIZE, SIZE, 1), images.shape
    )
    _, masks, weights = augment_batch(
        images, numbers, seed=[3, 4], options=options, weights=2 * numbers + 0.5
    )
    np.testing.assert_array_equal(weights.numpy(), 2 * masks.numpy() + 0.5)
    assert np.mean(masks.numpy() != numbers) > 0.05


def test_photometric_transforms_leave_weights_alone_and_outside_pixels_weigh_nothing():
    images, masks = smooth_images()
    weights = weights_of(masks)
    _, _, photometric = augment_batch(
        images, masks, seed=[1, 2], options=AugmentOptions.only(*PHOTOMETRIC), weights=weights
    )
    np.testing.assert_array_equal(photometric.numpy(), weights)
    shifted = AugmentOptions.only("translate", max_translation=0.3, outside_label=255)
    _, marked, out_weights = augment_batch(images, masks, seed=[7, 11], options=shifted, weights=weights)
    outside = marked.numpy() == 255
    assert outside.any() and np.all(out_weights.numpy()[outside] == 0)
    assert np.all(out_weights.numpy()[~outside] >= 1)
    float16 = augment_batch(images, masks, seed=[1, 2], weights=weights.astype(np.float16))[2]
    assert float16.dtype == tf.float16


def test_augment_dataset_takes_batches_with_weights():
    images, masks = smooth_images()
    weights = weights_of(masks)
    batches = tf.data.Dataset.from_tensor_slices((images[:16], masks[:16], weights[:16])).batch(8)
    augmented = augment_dataset(batches, seed=5)
    assert len(augmented.element_spec) == 3
    plain = augment_dataset(tf.data.Dataset.from_tensor_slices((images[:16], masks[:16])).batch(8), seed=5)
    for (_, with_masks, with_weights), (_, plain_masks) in zip(augmented, plain, strict=True):
        np.testing.assert_array_equal(with_masks, plain_masks)
        np.testing.assert_array_equal(np.floor((with_weights.numpy() - 1) / 3), with_masks)


def test_weights_of_the_wrong_shape_or_dtype_raise_one_line_errors():
    images, masks = np.zeros((2, 8, 8, 1), np.float32), np.zeros((2, 8, 8, 1), np.float32)
    with pytest.raises(UnetTutorialError, match="one weight per mask pixel"):
        augment_batch(images, masks, seed=[1, 2], weights=np.ones((2, 8, 8), np.float32))
    with pytest.raises(UnetTutorialError, match="give float weights"):
        augment_batch(images, masks, seed=[1, 2], weights=np.ones((2, 8, 8, 1), np.int32))
    with pytest.raises(UnetTutorialError, match="parts"):
        augment_dataset(tf.data.Dataset.from_tensor_slices((images,)), seed=1)
