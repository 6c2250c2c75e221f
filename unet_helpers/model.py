"""The UNet, built from small named blocks with the Keras functional API.

The network reads like the figure in Ronneberger et al. (2015), "U-Net: Convolutional Networks for
Biomedical Image Segmentation": an encoder (:func:`encoder_block` per level: two 3x3 convolutions, then
2x2 max-pooling), a :func:`bottleneck`, a decoder (:func:`decoder_block` per level: 2x upsampling,
concatenation with the encoder's feature map of the same size, two 3x3 convolutions) and a 1x1
convolution (:func:`output_head`). Every layer is named after its block, so ``model.summary()`` reads
top to bottom as ``enc1_conv1, enc1_conv2, enc1_pool, ..., bottleneck_conv1, ..., dec1_conv2, head_conv,
output``. Decoder levels are numbered after the encoder level whose feature map they receive, so the
decoder runs ``dec3, dec2, dec1``.

Unlike the paper, every convolution pads its input ("same" padding): feature maps keep their size, the
output mask is as large as the input image, and no cropping is needed before the concatenation.

:func:`build_unet` with its defaults builds the classic network of the tutorial: 64, 128 and 256 filters
in the encoder, 512 in the bottleneck, transposed convolutions in the decoder and a sigmoid output;
7,697,345 parameters at 128x128x3.
"""

from __future__ import annotations

import json
import zipfile
from numbers import Integral
from pathlib import Path
from typing import Any, Literal, get_args

import keras
from keras import layers

from unet_helpers import losses, metrics  # noqa: F401  (importing them registers their classes with Keras)
from unet_helpers.devices import dtype_policy
from unet_helpers.errors import UnetTutorialError

Upsampling = Literal["transpose", "resize"]
UPSAMPLING_CHOICES: tuple[str, ...] = get_args(Upsampling)


@keras.saving.register_keras_serializable(package="unet_helpers")
class PerImageStandardization(layers.Layer):
    """Shifts and scales each image to mean 0 and standard deviation 1, over all its pixels and channels.

    Real collections mix exposures and modalities (the nuclei: dark fluorescence, bright brightfield,
    purple tissue); standardising each image on its own lets the first convolutions see contrast
    rather than brightness. It has no weights and sits inside the model, so prediction and export
    standardise exactly as training did. A flat image (standard deviation below ``epsilon``) is only
    shifted, not blown up.

    Input: float images ``(batch, height, width, channels)``, any range. Output: the same shape.
    """

    def __init__(self, epsilon: float = 1e-3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, images: Any) -> Any:
        mean = keras.ops.mean(images, axis=(1, 2, 3), keepdims=True)
        std = keras.ops.std(images, axis=(1, 2, 3), keepdims=True)
        return (images - mean) / keras.ops.maximum(std, self.epsilon)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "epsilon": self.epsilon}


def double_conv(
    x: keras.KerasTensor, filters: int, *, name: str, batch_norm: bool = False
) -> keras.KerasTensor:
    """Two 3x3 convolutions with ReLU, "same" padding: the unit every UNet level is made of.

    Layers ``{name}_conv1`` and ``{name}_conv2``. With ``batch_norm`` each convolution has no bias (the
    normalization's offset replaces it) and is followed by ``{name}_bn1`` and ``{name}_relu1`` (and 2):
    convolution, normalization, then ReLU.

    Args:
        x: feature map, shape ``(batch, height, width, channels)``.
        filters: channels of both convolutions' outputs.
        name: the block's name, the prefix of its layers' names.
        batch_norm: add batch normalization after each convolution.

    Returns:
        Feature map of shape ``(batch, height, width, filters)``.
    """
    for index in (1, 2):
        if batch_norm:
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{index}")(x)
            x = layers.BatchNormalization(name=f"{name}_bn{index}")(x)
            x = layers.Activation("relu", name=f"{name}_relu{index}")(x)
        else:
            x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv{index}")(x)
    return x


def encoder_block(
    x: keras.KerasTensor, filters: int, *, name: str, batch_norm: bool = False
) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """One encoder level: :func:`double_conv`, then 2x2 max-pooling (``{name}_pool``).

    Returns:
        ``(skip, pooled)``: the feature map before pooling, ``(batch, height, width, filters)``, which
        the decoder level of the same size receives; and the pooled one, ``(batch, height / 2,
        width / 2, filters)``, which goes on to the next level.
    """
    skip = double_conv(x, filters, name=name, batch_norm=batch_norm)
    pooled = layers.MaxPooling2D(2, name=f"{name}_pool")(skip)
    return skip, pooled


def bottleneck(
    x: keras.KerasTensor, filters: int, *, batch_norm: bool = False, dropout: float = 0.0
) -> keras.KerasTensor:
    """The bottom of the U: :func:`double_conv` named ``bottleneck``, at the coarsest resolution.

    With ``dropout > 0`` a ``bottleneck_dropout`` layer follows, at the end of the contracting path
    where the paper puts it.

    Returns:
        Feature map of shape ``(batch, height, width, filters)``, same size as ``x``.
    """
    x = double_conv(x, filters, name="bottleneck", batch_norm=batch_norm)
    if dropout > 0:
        x = layers.Dropout(dropout, name="bottleneck_dropout")(x)
    return x


def decoder_block(
    x: keras.KerasTensor,
    skip: keras.KerasTensor,
    filters: int,
    *,
    name: str,
    batch_norm: bool = False,
    upsampling: Upsampling = "transpose",
) -> keras.KerasTensor:
    """One decoder level: upsample 2x, concatenate with the encoder's ``skip``, then :func:`double_conv`.

    ``upsampling="transpose"`` learns the upsampling: a 2x2 transposed convolution with stride 2
    (``{name}_up``, ``filters`` channels, no activation), the paper's "up-convolution".
    ``upsampling="resize"`` doubles the size by bilinear interpolation (``{name}_up``, an
    ``UpSampling2D``), then a 3x3 convolution (``{name}_upconv``, ``filters`` channels, no activation)
    mixes the channels; the smooth resize avoids the checkerboard patterns transposed convolutions can
    leave. The concatenation (``{name}_concat``) puts the skip's channels first.

    Args:
        x: feature map from the level below, ``(batch, height / 2, width / 2, channels)``.
        skip: the encoder's feature map of this level, ``(batch, height, width, skip_channels)``.
        filters: channels after upsampling and of both convolutions.

    Returns:
        Feature map of shape ``(batch, height, width, filters)``.
    """
    if upsampling == "transpose":
        x = layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=f"{name}_up")(x)
    else:
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_up")(x)
        x = layers.Conv2D(filters, 3, padding="same", name=f"{name}_upconv")(x)
    x = layers.Concatenate(name=f"{name}_concat")([skip, x])
    return double_conv(x, filters, name=name, batch_norm=batch_norm)


def output_channels(num_classes: int) -> int:
    """The output channels of a UNet for ``num_classes`` classes, background included.

    Two classes (binary masks: background and object) need one channel, the object's probability
    through a sigmoid; three or more classes get one softmax channel each. This is the one place that
    turns a number of classes into channels; :func:`num_classes_of` goes back.
    """
    return 1 if num_classes == 2 else num_classes


def num_classes_of(model: keras.Model) -> int:
    """The classes a UNet predicts, background included: 2 for one sigmoid channel, else its channels."""
    channels = model.output_shape[-1]
    return 2 if channels == 1 else channels


def output_head(x: keras.KerasTensor, num_classes: int) -> keras.KerasTensor:
    """A 1x1 convolution (``head_conv``) to :func:`output_channels`, then the activation (``output``).

    Two classes get one channel and a sigmoid: the probability that a pixel is the object. More classes
    get a softmax over one channel per class: per pixel, probabilities that sum to 1. The activation is
    its own layer with ``dtype="float32"``, so the probabilities (and the loss computed from them) stay
    float32 when a mixed-precision policy computes everything else in float16.

    Returns:
        Probabilities in [0, 1], float32, shape ``(batch, height, width, output_channels(num_classes))``.
    """
    x = layers.Conv2D(output_channels(num_classes), 1, padding="same", name="head_conv")(x)
    activation = "sigmoid" if num_classes == 2 else "softmax"
    return layers.Activation(activation, dtype="float32", name="output")(x)


def _check_size(size: int | None, what: str, depth: int) -> None:
    if size is None:
        return
    if not isinstance(size, Integral) or size < 1:
        raise UnetTutorialError(f"input {what} {size!r} is not a positive whole number of pixels.")
    multiple = 2**depth
    if size % multiple:
        lower, upper = size - size % multiple, size - size % multiple + multiple
        sizes = f"{lower} or {upper}" if lower else f"{upper}"
        raise UnetTutorialError(
            f"input {what} {size} is not divisible by 2**{depth} = {multiple}; use {sizes} "
            f"(each of the depth={depth} poolings halves it)."
        )


def _check_arguments(
    input_shape: tuple[int | None, int | None, int],
    num_classes: int,
    base_filters: int,
    depth: int,
    dropout: float,
    upsampling: str,
) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, Integral) or num_classes < 2:
        raise UnetTutorialError(
            f"num_classes={num_classes!r}: count the classes, background included (2 for binary masks)."
        )
    for argument, value in (("base_filters", base_filters), ("depth", depth)):
        if not isinstance(value, Integral) or value < 1:
            raise UnetTutorialError(f"{argument}={value!r}: use a whole number of 1 or more.")
    if not 0 <= dropout < 1:
        raise UnetTutorialError(f"dropout={dropout!r}: use a rate from 0 (none) up to, not including, 1.")
    if upsampling not in UPSAMPLING_CHOICES:
        raise UnetTutorialError(f"upsampling={upsampling!r}: use one of {', '.join(UPSAMPLING_CHOICES)}.")
    if len(input_shape) != 3:
        raise UnetTutorialError(
            f"input_shape={input_shape!r}: use (height, width, channels), e.g. (128, 128, 3)."
        )
    height, width, channels = input_shape
    if not isinstance(channels, Integral) or channels < 1:
        raise UnetTutorialError(
            f"input_shape={input_shape!r}: channels must be a whole number (3 for RGB, 1 for grayscale)."
        )
    _check_size(height, "height", depth)
    _check_size(width, "width", depth)


def build_unet(
    input_shape: tuple[int | None, int | None, int] = (128, 128, 3),
    num_classes: int = 2,
    base_filters: int = 64,
    depth: int = 3,
    *,
    batch_norm: bool = False,
    dropout: float = 0.0,
    upsampling: Upsampling = "transpose",
    standardize: bool = False,
) -> keras.Model:
    """Build a UNet; the defaults give the classic network (7,697,345 parameters at 128x128x3).

    Args:
        input_shape: ``(height, width, channels)`` of the images. Height and width must be divisible
            by ``2**depth`` (each pooling halves them). Either may be ``None``: the network is fully
            convolutional, so it then accepts any height or width at call time, as long as that size
            is divisible by ``2**depth`` too (otherwise a concatenation fails on mismatched sizes).
        num_classes: classes in the masks, background included. 2 (binary masks): one sigmoid
            channel, the object's probability at each pixel. K > 2: K softmax channels, one
            probability per class and pixel (see :func:`output_channels`).
        base_filters: the width, filters of the first encoder level; each level below doubles it
            (64: 64, 128, 256, then 512 in the bottleneck).
        depth: encoder levels, that is poolings; the bottleneck works at ``1 / 2**depth`` of the
            input size.
        batch_norm: batch normalization after every 3x3 convolution (before its ReLU).
        dropout: rate of a dropout layer after the bottleneck; 0 adds none.
        upsampling: ``"transpose"`` (2x2 transposed convolutions, the paper's) or ``"resize"``
            (bilinear upsampling and a 3x3 convolution), see :func:`decoder_block`.
        standardize: start with a :class:`PerImageStandardization` layer (``standardize``, no weights),
            which the series' training recipe uses (``training.train_unet``).

    Returns:
        An uncompiled ``keras.Model`` named ``"unet"``: float images ``(batch, height, width,
        channels)`` in, float32 probabilities in [0, 1] ``(batch, height, width,
        output_channels(num_classes))`` out.

    Raises:
        UnetTutorialError: an argument is out of range, or a size is not divisible by ``2**depth``
            (the message names the nearest sizes that are).
    """
    _check_arguments(input_shape, num_classes, base_filters, depth, dropout, upsampling)
    inputs = keras.Input(shape=input_shape, name="input")
    # float32 under mixed precision too: a float16 mean over a whole image loses digits.
    x = PerImageStandardization(name="standardize", dtype="float32")(inputs) if standardize else inputs
    skips = []
    for level in range(1, depth + 1):
        skip, x = encoder_block(x, base_filters * 2 ** (level - 1), name=f"enc{level}", batch_norm=batch_norm)
        skips.append(skip)
    x = bottleneck(x, base_filters * 2**depth, batch_norm=batch_norm, dropout=dropout)
    for level in range(depth, 0, -1):
        x = decoder_block(
            x,
            skips[level - 1],
            base_filters * 2 ** (level - 1),
            name=f"dec{level}",
            batch_norm=batch_norm,
            upsampling=upsampling,
        )
    outputs = output_head(x, num_classes)
    return keras.Model(inputs, outputs, name="unet")


def load_model(path: str | Path) -> keras.Model:
    """Load a model that a run saved (``OUT/best.keras``), with the series' loss, metrics and optimizer.

    A model trained with mixed precision is loaded under its policy: Keras would otherwise give it a
    plain optimizer, skip the saved optimizer state and warn.

    Raises:
        UnetTutorialError: the file does not exist or is no Keras model.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise UnetTutorialError(
            f"'{path}' does not exist: pass the best.keras of a training run's output folder."
        )
    try:
        with dtype_policy(_saved_dtype_policy(path)):
            return keras.models.load_model(path)
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise UnetTutorialError(f"cannot read '{path}' as a Keras model ({error}).") from None


def _saved_dtype_policy(path: Path) -> str:
    """``"mixed_float16"`` or ``"mixed_bfloat16"`` if a layer of the saved model uses it, or ``"float32"``."""
    with zipfile.ZipFile(path) as archive:
        layers_config = json.loads(archive.read("config.json"))["config"].get("layers", [])
    policies = {str(layer.get("config", {}).get("dtype")) for layer in layers_config}
    return next(
        (name for name in ("mixed_float16", "mixed_bfloat16") if any(name in policy for policy in policies)),
        "float32",
    )


def block_name(layer_name: str) -> str:
    """The block a layer belongs to: ``"enc1_conv2"`` -> ``"enc1"``, ``"output"`` -> ``"output"``."""
    return layer_name.split("_", 1)[0]


def parameters_per_block(model: keras.Model) -> dict[str, int]:
    """Parameters of each block (``enc1``, ..., ``bottleneck``, ``dec3``, ..., ``head``), in layer order.

    Blocks are read from the layer names (see :func:`block_name`); blocks without parameters (the input,
    the final activation) are left out. Non-trainable parameters (batch normalization's moving
    statistics) count too, so the values add up to ``model.count_params()``.
    """
    counts: dict[str, int] = {}
    for layer in model.layers:
        if layer.count_params():
            block = block_name(layer.name)
            counts[block] = counts.get(block, 0) + layer.count_params()
    return counts


def _inbound_layer_names(structure: Any) -> list[str]:
    # Keras 3 serializes each input tensor of a layer call as {"keras_history": [layer, node, index]}.
    if isinstance(structure, dict):
        if "keras_history" in structure:
            return [structure["keras_history"][0]]
        return [name for value in structure.values() for name in _inbound_layer_names(value)]
    if isinstance(structure, list | tuple):
        return [name for value in structure for name in _inbound_layer_names(value)]
    return []


# What defines each kind of layer in a UNet, beyond its type and its inputs.
_ARCHITECTURE_KEYS = (
    "filters",
    "kernel_size",
    "strides",
    "padding",
    "activation",
    "use_bias",
    "pool_size",
    "size",
    "interpolation",
    "rate",
    "axis",
)


def describe_layers(model: keras.Model) -> list[dict[str, Any]]:
    """One plain dictionary per layer, in order: what two networks must share to be the same network.

    Each has the layer's ``name``, ``type`` (class name), ``inputs`` (names of the layers feeding it,
    in order) and ``output_shape``, plus those of ``filters``, ``kernel_size``, ``strides``,
    ``padding``, ``activation``, ``use_bias``, ``pool_size``, ``size``, ``interpolation``, ``rate``
    and ``axis`` that the layer has, and ``dtype`` (its dtype policy: ``"float32"``, or
    ``"mixed_float16"`` under mixed precision). Weights are not compared.
    """
    config = model.get_config()
    inputs_of = {
        layer["name"]: _inbound_layer_names(layer.get("inbound_nodes", [])) for layer in config["layers"]
    }
    rows = []
    for layer in model.layers:
        layer_config = layer.get_config()
        row = {
            "name": layer.name,
            "type": type(layer).__name__,
            "inputs": inputs_of[layer.name],
            "output_shape": tuple(layer.output.shape),
            "dtype": layer.dtype_policy.name,
        }
        row.update({key: layer_config[key] for key in _ARCHITECTURE_KEYS if key in layer_config})
        rows.append(row)
    return rows
