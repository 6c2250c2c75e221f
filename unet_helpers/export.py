"""Export a trained model for serving, and load the export back.

:func:`export_saved_model` writes a TensorFlow SavedModel (for TensorFlow Serving, TF.js converters, or
``tf.saved_model.load`` without this package), :func:`export_tflite` a TensorFlow Lite flat buffer (phones,
edge devices); :func:`load_exported` reloads either as an :class:`ExportedModel`, called like the Keras model
on a batch of images. Exports refuse to replace an existing path unless ``overwrite=True`` and appear in one
rename, so an interrupted export never leaves half a model.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from unet_helpers.errors import UnetTutorialError
from unet_helpers.inference import check_multiple, size_multiple

if TYPE_CHECKING:
    import keras

SAVED_MODEL_FILE = "saved_model.pb"
# Bytes 4 to 8 of every TensorFlow Lite flat buffer.
TFLITE_IDENTIFIER = b"TFL3"


def _write_new(path: str | Path, *, overwrite: bool, write: Callable[[Path], None]) -> Path:
    """Call ``write(temporary_path)`` next to ``path``, then move the result to ``path`` in one rename.

    An existing ``path`` is refused unless ``overwrite``; then a file is replaced in one rename, and a
    folder is first moved aside into the temporary folder, which is deleted at the end.
    """
    path = Path(path).expanduser()
    if path.exists() and not overwrite:
        raise UnetTutorialError(
            f"'{path}' already exists: choose another path, or pass overwrite=True to replace it."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    workspace = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    try:
        written = workspace / path.name
        write(written)
        if path.is_dir() and not path.is_symlink():
            os.replace(path, workspace / "replaced")
        os.replace(written, path)
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
    return path


def _export_signature(model: keras.Model, input_size: int | None) -> list | None:
    """The input signature for ``model.export``: the model's own, or one with a fixed height and width."""
    import keras

    if input_size is None:
        return None
    _, height, width, channels = model.input_shape
    if (height or input_size) != input_size or (width or input_size) != input_size:
        raise UnetTutorialError(
            f"input_size={input_size}: this model takes {height}x{width} inputs only; leave input_size out."
        )
    check_multiple(input_size, size_multiple(model), "input_size")
    return [keras.InputSpec(shape=(None, input_size, input_size, channels), dtype="float32")]


def _save_model_folder(model: keras.Model, folder: Path, input_size: int | None) -> None:
    import tensorflow as tf

    try:
        model.export(
            str(folder),
            format="tf_saved_model",
            verbose=False,
            input_signature=_export_signature(model, input_size),
        )
    except tf.errors.OperatorNotAllowedInGraphError:
        # Keras's bilinear UpSampling2D (build_unet(upsampling="resize")) needs known sizes in a graph.
        raise UnetTutorialError(
            "this model cannot be exported for any input size (its UpSampling2D layers need known sizes): "
            "pass input_size=256 (or the tile size you predict with) to export it for that size."
        ) from None


def export_saved_model(
    model: keras.Model, path: str | Path, *, overwrite: bool = False, input_size: int | None = None
) -> Path:
    """Export ``model`` as a TensorFlow SavedModel folder (Keras's ``model.export(format="tf_saved_model")``).

    The folder's ``serve`` endpoint (and ``serving_default`` signature) maps float32 images
    (B, H, W, C) in [0, 1] to probabilities (B, H, W, channels); reload it with :func:`load_exported`
    or ``tf.saved_model.load``. A model that takes any size keeps taking any multiple of its pooling
    factor, except one built with ``upsampling="resize"``: export that one with ``input_size``.

    Args:
        model: a Keras model.
        path: the folder to create.
        overwrite: replace ``path`` if it exists (refused otherwise).
        input_size: fix the exported height and width (for a model built with None sizes).

    Returns:
        ``path``.

    Raises:
        UnetTutorialError: ``path`` exists and ``overwrite`` is False, or the model cannot be exported
            for any input size (pass ``input_size``).
    """
    return _write_new(
        path, overwrite=overwrite, write=lambda folder: _save_model_folder(model, folder, input_size)
    )


def _float32_copy(model: keras.Model) -> keras.Model:
    """The model with every layer computing in float32 and the same weights (which mixed precision keeps
    in float32 anyway); the model itself if it computes in float32 already."""
    import keras

    def with_float32(value: Any) -> Any:
        if isinstance(value, dict):
            if value.get("class_name") == "DTypePolicy" and value.get("config", {}).get("name") != "float32":
                return {**value, "config": {**value["config"], "name": "float32"}}
            return {key: with_float32(item) for key, item in value.items()}
        if isinstance(value, list):
            return [with_float32(item) for item in value]
        return value

    if all(layer.dtype_policy.name == "float32" for layer in model.layers):
        return model
    copy = keras.Model.from_config(with_float32(model.get_config()))
    copy.set_weights(model.get_weights())
    return copy


def _save_tflite(model: keras.Model, path: Path, input_size: int | None) -> None:
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as folder:
        saved_model = Path(folder) / "saved_model"
        _save_model_folder(_float32_copy(model), saved_model, input_size)
        try:
            flat_buffer = tf.lite.TFLiteConverter.from_saved_model(str(saved_model)).convert()
        except Exception as error:  # the converter raises ConverterError and others, with pages of MLIR
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise UnetTutorialError(
                f"TensorFlow Lite cannot convert this model ({first_line[:200]}); export a SavedModel "
                "instead."
            ) from None
    path.write_bytes(flat_buffer)


def export_tflite(
    model: keras.Model, path: str | Path, *, overwrite: bool = False, input_size: int | None = None
) -> Path:
    """Export ``model`` as a TensorFlow Lite flat buffer (``.tflite``), float32, no quantization.

    The model is exported as a SavedModel first and converted with
    ``tf.lite.TFLiteConverter.from_saved_model`` (``from_keras_model`` works too with Keras 3.15 and
    TensorFlow 2.21, but does the same through a SavedModel of its own and prints its endpoints). A
    mixed-precision model (``mixed_float16``, ``mixed_bfloat16``: what training on a recent GPU gives)
    is converted as a float32 copy with the same weights, because TensorFlow Lite has no float16
    convolution: its predictions equal the float32 model's, which differ from the float16 model's by
    float16 rounding. Sizes as for :func:`export_saved_model`: a model that takes any size gives a flat
    buffer that takes any multiple of its pooling factor (the interpreter is resized per batch).

    Args:
        model: a Keras model.
        path: the file to create, e.g. ``"unet.tflite"``.
        overwrite: replace ``path`` if it exists (refused otherwise).
        input_size: fix the exported height and width (for a model built with None sizes).

    Returns:
        ``path``.

    Raises:
        UnetTutorialError: ``path`` exists and ``overwrite`` is False, or the conversion fails.
    """
    return _write_new(path, overwrite=overwrite, write=lambda file: _save_tflite(model, file, input_size))


class ExportedModel:
    """A reloaded export, called like a model on a batch: ``exported(images)`` gives probabilities.

    Attributes:
        path: the SavedModel folder or the ``.tflite`` file.
        format: ``"saved_model"`` or ``"tflite"``.
        input_shape: (None, height, width, channels), None where any size is taken.
    """

    def __init__(self, path: Path, format: str, call: Callable[[np.ndarray], np.ndarray], input_shape: tuple):
        self.path, self.format, self._call, self.input_shape = path, format, call, input_shape

    def __call__(self, images: Any) -> np.ndarray:
        """Probabilities, float32 (B, H, W, channels), for float32 images (B, H, W, C) in [0, 1]."""
        return self._call(np.asarray(images, dtype=np.float32))

    def __repr__(self) -> str:
        return f"ExportedModel('{self.path}', format={self.format!r}, input_shape={self.input_shape})"


def _load_saved_model(path: Path) -> ExportedModel:
    import tensorflow as tf

    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    ((name, spec),) = signature.structured_input_signature[1].items()

    def call(images: np.ndarray) -> np.ndarray:
        (output,) = signature(**{name: tf.constant(images)}).values()
        return output.numpy()

    return ExportedModel(path, "saved_model", call, tuple(spec.shape.as_list()))


def _tflite_interpreter(path: Path) -> Any:
    try:  # TensorFlow's own interpreter is deprecated in favour of this package, if installed
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message=".*tf.lite.Interpreter is deprecated", category=UserWarning
            )
            return tf.lite.Interpreter(model_path=str(path))
    return Interpreter(model_path=str(path))


def _load_tflite(path: Path) -> ExportedModel:
    interpreter = _tflite_interpreter(path)
    (input_details,), (output_details,) = interpreter.get_input_details(), interpreter.get_output_details()
    shape_signature = [None if size < 0 else int(size) for size in input_details["shape_signature"]]

    def call(images: np.ndarray) -> np.ndarray:
        if tuple(interpreter.get_input_details()[0]["shape"]) != images.shape:
            interpreter.resize_tensor_input(input_details["index"], images.shape)
            interpreter.allocate_tensors()
        interpreter.set_tensor(input_details["index"], images)
        interpreter.invoke()
        return interpreter.get_tensor(output_details["index"]).copy()

    interpreter.allocate_tensors()
    return ExportedModel(path, "tflite", call, (None, *shape_signature[1:]))


def load_exported(path: str | Path) -> ExportedModel:
    """Reload what :func:`export_saved_model` or :func:`export_tflite` wrote.

    Returns:
        An :class:`ExportedModel`: ``exported(images)`` maps float32 (B, H, W, C) in [0, 1] to float32
        probabilities (B, H, W, channels), as the Keras model did.

    Raises:
        UnetTutorialError: ``path`` is neither a SavedModel folder nor a TensorFlow Lite file.
    """
    path = Path(path).expanduser()
    if path.is_dir() and (path / SAVED_MODEL_FILE).is_file():
        return _load_saved_model(path)
    if path.is_file():
        with open(path, "rb") as file:
            if file.read(8)[4:] == TFLITE_IDENTIFIER:
                return _load_tflite(path)
    what = (
        "does not exist" if not path.exists() else "is neither a SavedModel folder nor a TensorFlow Lite file"
    )
    raise UnetTutorialError(f"'{path}' {what}: pass what export_saved_model or export_tflite wrote.")
