"""Tiled prediction: one tile equals the plain prediction, seams are invisible, any size; masks.

The seam test trains a 4-filter UNet for a few seconds on synthetic 64x64 images, because an untrained
UNet predicts about 0.5 everywhere, where any tiling looks seamless. Everything else uses untrained tiny
models (base_filters=4).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from model_cases import error_message, random_image, tiny_unet

from unet_helpers import inference, metrics, synthetic, training
from unet_helpers.model import build_unet

SEAM_BAND = 4  # pixels either side of a tile edge


def plain(model: keras.Model, image: np.ndarray) -> np.ndarray:
    return keras.ops.convert_to_numpy(model(image[np.newaxis], training=False))[0]


@pytest.fixture(scope="module")
def rgb_model() -> keras.Model:
    return tiny_unet((32, 32, 3), seed=1)


@pytest.fixture(scope="module")
def any_size_model() -> keras.Model:
    return tiny_unet((None, None, 3), seed=2)


def trained(*, standardize: bool) -> keras.Model:
    """A 4-filter UNet that takes any size, trained for six epochs: its outputs span 0 to 1."""
    keras.utils.set_random_seed(0)
    samples = [synthetic.make_sample(seed=0, index=index, image_size=64) for index in range(48)]
    images = np.stack([image for image, _ in samples]).astype(np.float32) / 255
    masks = np.stack([mask > 0 for _, mask in samples])[..., np.newaxis].astype(np.float32)
    model = build_unet((None, None, 3), base_filters=4, standardize=standardize)
    training.compile_unet(model, num_classes=2, learning_rate=3e-3, jit_compile=False)
    model.fit(images, masks, batch_size=8, epochs=6, verbose=0)
    return model


@pytest.fixture(scope="module")
def trained_model() -> keras.Model:
    return trained(standardize=False)


# --- one tile, the grid, sizes ------------------------------------------------------------------------


def test_an_image_of_one_tile_is_predicted_exactly_as_the_model_predicts_it(rgb_model, any_size_model):
    image = random_image(32, 32)
    np.testing.assert_allclose(inference.predict_tiled(rgb_model, image), plain(rgb_model, image), atol=1e-5)
    image = random_image(40, 56, seed=1)  # smaller than the default 256-pixel tile, multiples of 8
    np.testing.assert_allclose(
        inference.predict_tiled(any_size_model, image), plain(any_size_model, image), atol=1e-5
    )


def test_a_smaller_image_is_mirrored_up_to_the_tile_and_cropped_back(rgb_model, any_size_model):
    image = random_image(20, 26)
    # Fixed 32x32 model: 6 + 6 and 3 + 3 mirrored pixels, the image centred in the tile.
    padded = np.pad(image, ((6, 6), (3, 3), (0, 0)), mode="reflect")
    np.testing.assert_allclose(
        inference.predict_tiled(rgb_model, image), plain(rgb_model, padded)[6:26, 3:29], atol=1e-5
    )
    # Any-size model: only up to the next multiple of 8, 24x32.
    padded = np.pad(image, ((2, 2), (3, 3), (0, 0)), mode="reflect")
    np.testing.assert_allclose(
        inference.predict_tiled(any_size_model, image), plain(any_size_model, padded)[2:22, 3:29], atol=1e-5
    )


def test_the_tile_grid_steps_by_tile_minus_overlap_on_the_pooling_grid(any_size_model):
    grid = inference.tile_grid(any_size_model, (160, 100), tile_size=64, overlap=16)
    assert grid.tile_size == (64, 64) and grid.overlap == (16, 16)
    # Half an overlap (8 pixels) of mirrored context before the image; the last tile ends past it.
    assert grid.rows == (-8, 40, 88, 136) and grid.columns == (-8, 40, 88)
    assert grid.padding == ((8, 40), (8, 52)) and grid.num_tiles == 12
    assert grid.seams(0) == [40, 56, 88, 104, 136, 152] and grid.seams(1) == [40, 56, 88]
    near = grid.near_seams(2)
    assert near.shape == (160, 100) and near[38:42].all() and near[:, 86:90].all()
    assert not near[42:54, 42:54].any() and near.sum() == 160 * 100 - (160 - 24) * (100 - 12)
    grid = inference.tile_grid(any_size_model, (300, 50))  # defaults: 256-pixel tiles, overlap 64
    assert grid.tile_size == (256, 56) and grid.overlap == (64, 0) and grid.rows == (-32, 160)


def test_any_size_gives_probabilities_of_that_size():
    keras.utils.set_random_seed(3)
    gray_model = build_unet((32, 32, 1), base_filters=4)
    for shape in [(37, 53), (1, 1), (100, 7), (33, 32), (64, 96)]:
        probabilities = inference.predict_tiled(gray_model, random_image(*shape, channels=1))
        assert probabilities.shape == (*shape, 1) and probabilities.dtype == np.float32
        assert np.isfinite(probabilities).all() and 0 <= probabilities.min() <= probabilities.max() <= 1
    # A 2-D gray image gets its channel axis.
    image = random_image(45, 45, channels=1)
    np.testing.assert_array_equal(
        inference.predict_tiled(gray_model, image[..., 0]), inference.predict_tiled(gray_model, image)
    )


def test_scale_predicts_at_the_training_scale_and_returns_the_image_size(trained_model):
    """A model trained on images shrunk by the loader sees new images shrunk the same way."""
    image = synthetic.make_sample(seed=3, index=0, image_size=160)[0].astype(np.float32) / 255
    image = image[:150]  # not square, and 150 * 0.5 is not a multiple of the pooling factor
    halved = inference.predict_tiled(trained_model, image, scale=0.5, tile_size=64)
    assert halved.shape == (150, 160, 1)
    # The same as shrinking it as load_dataset does, predicting, and enlarging the probabilities.
    small = tf.image.resize(image, (75, 80), method="bilinear", antialias=True).numpy()
    np.testing.assert_allclose(inference.rescale(image, 0.5), np.clip(small, 0, 1))
    by_hand = tf.image.resize(inference.predict_tiled(trained_model, small, tile_size=64), (150, 160)).numpy()
    np.testing.assert_allclose(halved, by_hand, atol=1e-6)
    # At another scale the network sees other object sizes, so its answer differs.
    assert np.mean(np.abs(halved - inference.predict_tiled(trained_model, image, tile_size=64))) > 0.01
    mask = inference.predict_image(trained_model, image, scale=0.5, tile_size=64)
    np.testing.assert_array_equal(mask, inference.to_mask(halved))
    for scale in (0, -1, 100):
        assert "scale" in error_message(inference.predict_tiled, trained_model, image, scale=scale)


def test_squeeze_to_predicts_the_whole_image_squeezed_as_the_loader_squeezes(trained_model):
    """A model trained on images squeezed to one size sees a new image squeezed whole the same way."""
    image = synthetic.make_sample(seed=3, index=0, image_size=160)[0].astype(np.float32) / 255
    image = image[:150]  # not square: the squeeze changes its aspect ratio, as training's did
    squeezed = inference.predict_tiled(trained_model, image, squeeze_to=64, tile_size=64)
    small = tf.image.resize(image, (64, 64), method="bilinear", antialias=True).numpy()
    np.testing.assert_allclose(inference.squeeze(image, 64), np.clip(small, 0, 1))
    by_hand = tf.image.resize(plain(trained_model, np.clip(small, 0, 1)), (150, 160)).numpy()
    np.testing.assert_allclose(squeezed, by_hand, atol=1e-5)
    mask = inference.predict_image(trained_model, image, squeeze_to=64, tile_size=64)
    np.testing.assert_array_equal(mask, inference.to_mask(squeezed))
    for options in ({"squeeze_to": 0}, {"squeeze_to": 64.0}, {"squeeze_to": 64, "scale": 0.5}):
        assert "squeeze_to" in error_message(inference.predict_tiled, trained_model, image, **options)


def test_multi_class_probabilities_sum_to_one_and_masks_are_their_argmax():
    keras.utils.set_random_seed(4)
    model = build_unet((None, None, 3), num_classes=3, base_filters=4)
    image = random_image(70, 45)
    probabilities = inference.predict_tiled(model, image, tile_size=32, overlap=8)
    assert probabilities.shape == (70, 45, 3)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1, atol=1e-5)
    mask = inference.predict_image(model, image, tile_size=32, overlap=8)
    assert mask.shape == (70, 45) and mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, np.argmax(probabilities, axis=-1))


# --- seams ------------------------------------------------------------------------------------------


def seam_differences(model: keras.Model, image: np.ndarray, *, tile_size: int, overlap: int) -> dict:
    """Tiled against whole-image prediction of the same mirrored image: near tile edges and elsewhere."""
    grid = inference.tile_grid(model, image.shape, tile_size=tile_size, overlap=overlap)
    tiled = inference.predict_tiled(model, image, tile_size=tile_size, overlap=overlap)[..., 0]
    (top, _), (left, _) = grid.padding
    padded = np.pad(image, (*grid.padding, (0, 0)), mode="reflect")
    whole = plain(model, padded)[top : top + image.shape[0], left : left + image.shape[1], 0]
    difference = np.abs(tiled - whole)
    near = grid.near_seams(SEAM_BAND)
    return {
        "seam_mean": float(difference[near].mean()),
        "seam_max": float(difference[near].max()),
        "elsewhere_mean": float(difference[~near].mean()),
        "mask_agreement": float(np.mean((tiled > 0.5) == (whole > 0.5))),
    }


def test_tile_seams_are_invisible(trained_model):
    """Measured on these two images (160x160, 64-pixel tiles, overlap 16), within 4 pixels of a tile edge:
    mean difference from the whole-image prediction 0.012 and 0.004 (at most 0.19), elsewhere 0.011 and
    0.005; masks agree on 99.2 and 99.6 % of pixels. Tiles that only touch (overlap 0): 0.12 and 0.06 at
    the seams (at most 0.78), 5 and 9 times elsewhere."""
    images = [synthetic.make_sample(seed=5, index=index, image_size=160)[0] / 255 for index in range(2)]
    blended = [seam_differences(trained_model, image, tile_size=64, overlap=16) for image in images]
    touching = [seam_differences(trained_model, image, tile_size=64, overlap=0) for image in images]
    for result in blended:
        assert result["seam_mean"] < 0.03 and result["mask_agreement"] > 0.98, result
        # No worse at the seams than inside the tiles: nothing marks where one tile meets the next.
        assert result["seam_mean"] < 1.5 * result["elsewhere_mean"], result
    for without, with_overlap in zip(touching, blended, strict=True):
        assert without["seam_mean"] > 2 * without["elsewhere_mean"], without
        assert without["seam_mean"] > 4 * with_overlap["seam_mean"]


def test_the_whole_image_is_predicted_with_mirrored_borders(trained_model):
    """Measured, within 8 pixels of the image's border: 0.0008 from the whole mirrored image's prediction,
    0.016 from the whole zero-padded image's."""
    # Inverted, the image is bright at its borders, where zeros would differ most from its mirror image.
    image = 1 - synthetic.make_sample(seed=5, index=2, image_size=96)[0] / 255
    grid = inference.tile_grid(trained_model, image.shape, tile_size=64, overlap=16)
    (top, bottom), (left, right) = grid.padding
    tiled = inference.predict_tiled(trained_model, image, tile_size=64, overlap=16)
    border = np.ones(image.shape[:2], bool)
    border[8:-8, 8:-8] = False
    difference = {}
    for mode in ("reflect", "constant"):
        padded = np.pad(image, ((top, bottom), (left, right), (0, 0)), mode=mode)
        whole = plain(trained_model, padded)[top : top + 96, left : left + 96]
        difference[mode] = float(np.abs(tiled - whole)[border].mean())
    assert difference["reflect"] < 0.004 and difference["constant"] > 5 * difference["reflect"], difference


def test_a_standardizing_model_sees_the_whole_images_statistics_in_every_tile():
    """Standardised on their own, tiles of faint background have their noise stretched to the contrast of
    cells; predict_tiled standardises the whole image once, as the model was trained."""
    model = trained(standardize=True)
    cells = synthetic.make_sample(seed=5, index=0, image_size=96)[0] / 255
    image = np.pad(cells, ((0, 64), (0, 64), (0, 0)), mode="edge")  # margins with nothing in them
    noise = np.random.default_rng(0).normal(0, 0.01, image.shape)
    image = np.clip(image + noise, 0, 1).astype(np.float32)
    tiled = inference.predict_tiled(model, image, tile_size=32, overlap=8)
    whole = plain(model, image)
    assert np.abs(tiled - whole).mean() < 0.03
    assert np.mean((tiled > 0.5) == (whole > 0.5)) > 0.98


# --- masks and inputs -------------------------------------------------------------------------------


def test_masks_count_above_the_threshold_as_the_metrics_do():
    probabilities = np.array([[0.5, np.nextafter(np.float32(0.5), 1)], [0.2, 0.9]], np.float32)[..., None]
    mask = inference.to_mask(probabilities)
    np.testing.assert_array_equal(mask, [[0, 1], [0, 1]])
    assert mask.dtype == np.uint8
    assert metrics.dice_score(mask, probabilities) == 1.0  # the metrics decide each pixel the same way
    np.testing.assert_array_equal(inference.to_mask(probabilities, threshold=0.1), [[1, 1], [1, 1]])
    np.testing.assert_array_equal(inference.to_mask(probabilities[..., 0]), mask)
    softmax = np.array([[[0.2, 0.5, 0.3], [0.1, 0.1, 0.8]]], np.float32)
    np.testing.assert_array_equal(inference.to_mask(softmax), [[1, 2]])
    assert "between 0 and 1" in error_message(inference.to_mask, probabilities, threshold=1.5)


def test_8_and_16_bit_images_are_scaled_as_read_image_scales_them(rgb_model):
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    np.testing.assert_array_equal(
        inference.predict_tiled(rgb_model, pixels),
        inference.predict_tiled(rgb_model, pixels.astype(np.float32) / 255),
    )
    np.testing.assert_allclose(
        inference.check_image(pixels.astype(np.uint16) * 257, channels=3), pixels / 255, atol=1e-6
    )


def test_mistakes_give_one_line_saying_what_to_do(rgb_model):
    gray = random_image(32, 32, channels=1)
    assert "1 channel(s)" in error_message(inference.predict_tiled, rgb_model, gray)
    assert "np.repeat" in error_message(inference.predict_tiled, rgb_model, gray)
    assert "alpha" in error_message(inference.predict_tiled, rgb_model, random_image(32, 32, channels=4))
    assert "divide by 255" in error_message(inference.predict_tiled, rgb_model, random_image(32, 32) * 255)
    assert "range from -" in error_message(inference.predict_tiled, rgb_model, random_image(32, 32) - 0.5)
    nan_image = random_image(32, 32)
    nan_image[3, 4, 1] = np.nan
    assert "NaN" in error_message(inference.predict_tiled, rgb_model, nan_image)
    assert "one image" in error_message(inference.predict_tiled, rgb_model, random_image(32, 32)[None])
    assert "int32" in error_message(inference.predict_tiled, rgb_model, np.zeros((32, 32, 3), np.int32))
    assert "no pixels" in error_message(inference.predict_tiled, rgb_model, np.zeros((0, 5, 3), np.float32))
    image = random_image(40, 40)
    assert "24 or 32" in error_message(inference.predict_tiled, rgb_model, image, tile_size=30)
    assert "32x32" in error_message(inference.predict_tiled, rgb_model, image, tile_size=64)
    assert "8 or 16" in error_message(inference.predict_tiled, rgb_model, image, overlap=12)
    assert "half" in error_message(inference.predict_tiled, rgb_model, image, overlap=24)
    assert "batch_size=0" in error_message(inference.predict_tiled, rgb_model, image, batch_size=0)


def test_a_progress_bar_shows_for_many_tiles_only(capsys):
    keras.utils.set_random_seed(5)
    model = build_unet((8, 8, 1), base_filters=4, depth=1)  # 8-pixel tiles: many of them, fast
    inference.predict_tiled(model, random_image(8, 8, channels=1))
    assert "Predicting tiles" not in capsys.readouterr().err
    inference.predict_tiled(model, random_image(48, 48, channels=1), batch_size=16)  # 8x8 tiles
    assert "Predicting tiles" in capsys.readouterr().err
    inference.predict_tiled(model, random_image(48, 48, channels=1), progress=False)
    assert "Predicting tiles" not in capsys.readouterr().err


def test_batch_size_does_not_change_the_prediction(any_size_model):
    image = random_image(90, 70)
    one = inference.predict_tiled(any_size_model, image, tile_size=32, batch_size=1)
    many = inference.predict_tiled(any_size_model, image, tile_size=32, batch_size=5)
    np.testing.assert_allclose(one, many, atol=1e-6)
