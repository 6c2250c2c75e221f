"""Export for serving: a SavedModel and a TensorFlow Lite file reload with the model's predictions.

Untrained tiny models (base_filters=4) are enough: an export must reproduce whatever the model computes.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from model_cases import error_message, random_image, tiny_unet

from unet_helpers import devices, export, inference
from unet_helpers.model import build_unet


@pytest.fixture(scope="module")
def rgb_model() -> keras.Model:
    return tiny_unet((32, 32, 3), seed=1)


@pytest.fixture(scope="module")
def any_size_model() -> keras.Model:
    return tiny_unet((None, None, 3), seed=2)


def test_a_saved_model_reloads_with_the_same_predictions_and_replaces_only_when_asked(
    tmp_path, rgb_model, any_size_model
):
    path = tmp_path / "unet"
    path.mkdir()
    (path / "notes.txt").write_text("mine")
    assert "overwrite=True" in error_message(export.export_saved_model, rgb_model, path)
    assert [child.name for child in path.iterdir()] == ["notes.txt"]
    export.export_saved_model(rgb_model, path, overwrite=True)
    assert (path / export.SAVED_MODEL_FILE).is_file() and not (path / "notes.txt").exists()
    exported = export.load_exported(path)
    assert exported.format == "saved_model" and exported.input_shape == (None, 32, 32, 3)
    batch = np.stack([random_image(32, 32, seed=seed) for seed in range(3)])
    np.testing.assert_allclose(exported(batch), rgb_model(batch).numpy(), atol=1e-5)

    exported = export.load_exported(export.export_saved_model(any_size_model, tmp_path / "any"))
    assert exported.input_shape == (None, None, None, 3)
    batch = np.stack([random_image(48, 24, seed=seed) for seed in range(2)])
    np.testing.assert_allclose(exported(batch), any_size_model(batch).numpy(), atol=1e-5)
    assert sorted(child.name for child in tmp_path.iterdir()) == ["any", "unet"]  # no temporary leftovers


def test_a_tflite_file_reloads_with_the_same_predictions_and_replaces_only_when_asked(
    tmp_path, rgb_model, any_size_model
):
    """Measured difference to the Keras model: about 2e-7 (float32, XNNPACK on the CPU)."""
    path = tmp_path / "unet.tflite"
    path.write_bytes(b"mine")
    assert "already exists" in error_message(export.export_tflite, rgb_model, path)
    assert path.read_bytes() == b"mine"
    exported = export.load_exported(export.export_tflite(rgb_model, path, overwrite=True))
    assert exported.format == "tflite" and exported.input_shape == (None, 32, 32, 3)
    batch = np.stack([random_image(32, 32, seed=seed) for seed in range(3)])
    np.testing.assert_allclose(exported(batch), rgb_model(batch).numpy(), atol=1e-5)

    exported = export.load_exported(export.export_tflite(any_size_model, tmp_path / "any.tflite"))
    for height, width in [(32, 48), (16, 16)]:  # the interpreter is resized for each shape
        batch = np.stack([random_image(height, width, seed=seed) for seed in range(2)])
        np.testing.assert_allclose(exported(batch), any_size_model(batch).numpy(), atol=1e-5)
    assert sorted(child.name for child in tmp_path.iterdir()) == ["any.tflite", "unet.tflite"]


def test_a_mixed_precision_model_converts_to_tflite_as_its_float32_copy(tmp_path):
    keras.utils.set_random_seed(6)
    with devices.dtype_policy("mixed_float16"):
        model = build_unet((32, 32, 3), base_filters=4)
    exported = export.load_exported(export.export_tflite(model, tmp_path / "mixed.tflite"))
    batch = random_image(32, 32)[None]
    float32_model = build_unet((32, 32, 3), base_filters=4)
    float32_model.set_weights(model.get_weights())
    np.testing.assert_allclose(exported(batch), float32_model(batch).numpy(), atol=1e-5)
    np.testing.assert_allclose(exported(batch), model(batch).numpy(), atol=1e-2)  # float16 rounding


def test_a_resize_model_of_any_size_exports_for_a_fixed_size(tmp_path):
    keras.utils.set_random_seed(7)
    model = build_unet((None, None, 3), base_filters=4, upsampling="resize")
    assert "input_size=" in error_message(export.export_saved_model, model, tmp_path / "any")
    assert not (tmp_path / "any").exists() and not list(tmp_path.iterdir())
    exported = export.load_exported(export.export_saved_model(model, tmp_path / "fixed", input_size=32))
    assert exported.input_shape == (None, 32, 32, 3)
    batch = random_image(32, 32)[None]
    np.testing.assert_allclose(exported(batch), model(batch).numpy(), atol=1e-5)
    # predict_tiled calls it with several tile shapes (Keras's predict_on_batch would fail here).
    for shape in [(70, 20), (40, 40)]:
        assert inference.predict_tiled(model, random_image(*shape), tile_size=32).shape == (*shape, 1)


def test_load_exported_refuses_what_is_no_export(tmp_path):
    assert "does not exist" in error_message(export.load_exported, tmp_path / "missing")
    (tmp_path / "model.tflite").write_bytes(b"not a flat buffer")
    assert "neither" in error_message(export.load_exported, tmp_path / "model.tflite")
    assert "neither" in error_message(export.load_exported, tmp_path)
