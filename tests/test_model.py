"""The UNet: the classic architecture, each option of build_unet, and notebook 03's network."""

import ast
import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from IPython.core.inputtransformer2 import TransformerManager

from unet_helpers.errors import UnetTutorialError
from unet_helpers.model import (
    PerImageStandardization,
    build_unet,
    describe_layers,
    load_model,
    num_classes_of,
    output_channels,
    output_head,
    parameters_per_block,
)

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "03_building_unet.ipynb"
CLASSIC_PARAMETERS = 7_697_345


def conv(filters, inputs, kernel=3, activation="relu"):
    return {
        "type": "Conv2D",
        "filters": filters,
        "kernel_size": (kernel, kernel),
        "strides": (1, 1),
        "activation": activation,
        "padding": "same",
        "inputs": inputs,
    }


def pool(inputs):
    return {"type": "MaxPooling2D", "pool_size": (2, 2), "strides": (2, 2), "inputs": inputs}


def up(filters, inputs):
    return {
        "type": "Conv2DTranspose",
        "filters": filters,
        "kernel_size": (2, 2),
        "strides": (2, 2),
        "activation": "linear",
        "padding": "same",
        "inputs": inputs,
    }


def concat(skip, upsampled):
    return {"type": "Concatenate", "axis": -1, "inputs": [skip, upsampled]}


# The classic UNet at 128x128x3, written out by hand: (name, what the layer must be, its output shape).
REFERENCE = [
    ("input", {"type": "InputLayer", "inputs": []}, (128, 128, 3)),
    ("enc1_conv1", conv(64, ["input"]), (128, 128, 64)),
    ("enc1_conv2", conv(64, ["enc1_conv1"]), (128, 128, 64)),
    ("enc1_pool", pool(["enc1_conv2"]), (64, 64, 64)),
    ("enc2_conv1", conv(128, ["enc1_pool"]), (64, 64, 128)),
    ("enc2_conv2", conv(128, ["enc2_conv1"]), (64, 64, 128)),
    ("enc2_pool", pool(["enc2_conv2"]), (32, 32, 128)),
    ("enc3_conv1", conv(256, ["enc2_pool"]), (32, 32, 256)),
    ("enc3_conv2", conv(256, ["enc3_conv1"]), (32, 32, 256)),
    ("enc3_pool", pool(["enc3_conv2"]), (16, 16, 256)),
    ("bottleneck_conv1", conv(512, ["enc3_pool"]), (16, 16, 512)),
    ("bottleneck_conv2", conv(512, ["bottleneck_conv1"]), (16, 16, 512)),
    ("dec3_up", up(256, ["bottleneck_conv2"]), (32, 32, 256)),
    ("dec3_concat", concat("enc3_conv2", "dec3_up"), (32, 32, 512)),
    ("dec3_conv1", conv(256, ["dec3_concat"]), (32, 32, 256)),
    ("dec3_conv2", conv(256, ["dec3_conv1"]), (32, 32, 256)),
    ("dec2_up", up(128, ["dec3_conv2"]), (64, 64, 128)),
    ("dec2_concat", concat("enc2_conv2", "dec2_up"), (64, 64, 256)),
    ("dec2_conv1", conv(128, ["dec2_concat"]), (64, 64, 128)),
    ("dec2_conv2", conv(128, ["dec2_conv1"]), (64, 64, 128)),
    ("dec1_up", up(64, ["dec2_conv2"]), (128, 128, 64)),
    ("dec1_concat", concat("enc1_conv2", "dec1_up"), (128, 128, 128)),
    ("dec1_conv1", conv(64, ["dec1_concat"]), (128, 128, 64)),
    ("dec1_conv2", conv(64, ["dec1_conv1"]), (128, 128, 64)),
    ("head_conv", conv(1, ["dec1_conv2"], kernel=1, activation="linear"), (128, 128, 1)),
    (
        "output",
        {"type": "Activation", "activation": "sigmoid", "dtype": "float32", "inputs": ["head_conv"]},
        (128, 128, 1),
    ),
]


@pytest.fixture(scope="module")
def classic():
    return build_unet()


def small(**options):
    """A narrow UNet on small images: cheap to build and to run."""
    return build_unet(**{"input_shape": (32, 32, 3), "base_filters": 4, **options})


def layer(model, name):
    return next(row for row in describe_layers(model) if row["name"] == name)


def test_defaults_build_the_classic_unet_layer_by_layer(classic):
    rows = describe_layers(classic)
    assert [row["name"] for row in rows] == [name for name, _, _ in REFERENCE]
    for row, (name, expected, shape) in zip(rows, REFERENCE, strict=True):
        assert {key: row[key] for key in expected} == expected, name
        assert row["output_shape"] == (None, *shape), name


def test_classic_unet_has_the_published_parameter_count(classic):
    assert classic.count_params() == CLASSIC_PARAMETERS
    # The same count written out per block: 3x3 and 2x2 kernels with biases, a 1x1 head.
    per_block = {
        "enc1": (3 * 9 + 1) * 64 + (64 * 9 + 1) * 64,
        "enc2": (64 * 9 + 1) * 128 + (128 * 9 + 1) * 128,
        "enc3": (128 * 9 + 1) * 256 + (256 * 9 + 1) * 256,
        "bottleneck": (256 * 9 + 1) * 512 + (512 * 9 + 1) * 512,
        "dec3": (512 * 4 + 1) * 256 + (512 * 9 + 1) * 256 + (256 * 9 + 1) * 256,
        "dec2": (256 * 4 + 1) * 128 + (256 * 9 + 1) * 128 + (128 * 9 + 1) * 128,
        "dec1": (128 * 4 + 1) * 64 + (128 * 9 + 1) * 64 + (64 * 9 + 1) * 64,
        "head": 64 + 1,
    }
    assert parameters_per_block(classic) == per_block
    assert sum(per_block.values()) == CLASSIC_PARAMETERS


def test_forward_pass_gives_a_float32_probability_per_pixel():
    model = small()
    images = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype("float32")
    probabilities = model.predict(images, verbose=0)
    assert probabilities.shape == (2, 32, 32, 1)
    assert probabilities.dtype == np.float32
    assert probabilities.min() >= 0 and probabilities.max() <= 1


def test_depth_sets_the_number_of_levels():
    model = build_unet(depth=4)
    names = [row["name"] for row in describe_layers(model)]
    assert "enc4_pool" in names and "dec4_concat" in names and "enc5_conv1" not in names
    assert layer(model, "bottleneck_conv2")["output_shape"] == (None, 8, 8, 1024)
    assert model.count_params() == 31_031_745  # the original UNet's 23 convolutions, at 3 channels in

    shallow = small(depth=1)
    assert [row["name"] for row in describe_layers(shallow) if row["type"] == "Concatenate"] == [
        "dec1_concat"
    ]
    assert layer(shallow, "bottleneck_conv1")["filters"] == 8


def test_base_filters_sets_the_width_and_doubles_per_level():
    model = build_unet(base_filters=8)
    filters = {row["name"]: row["filters"] for row in describe_layers(model) if "filters" in row}
    assert filters["enc1_conv1"] == 8 and filters["enc2_conv2"] == 16 and filters["enc3_conv1"] == 32
    assert filters["bottleneck_conv2"] == 64
    assert filters["dec3_up"] == 32 and filters["dec2_conv1"] == 16 and filters["dec1_conv2"] == 8
    assert filters["head_conv"] == 1


def test_num_classes_counts_the_background_and_sets_the_output_channels_in_one_place():
    assert [output_channels(num_classes) for num_classes in (2, 3, 5)] == [1, 3, 5]
    for num_classes in (2, 3):
        model = small(num_classes=num_classes)
        assert model.output_shape[-1] == output_channels(num_classes)
        assert num_classes_of(model) == num_classes
    assert layer(small(), "output")["activation"] == "sigmoid"  # binary by default


def test_several_classes_get_a_softmax_over_the_channels():
    model = small(num_classes=3)
    assert layer(model, "output")["activation"] == "softmax"
    probabilities = model.predict(np.ones((1, 32, 32, 3), "float32"), verbose=0)
    assert probabilities.shape == (1, 32, 32, 3)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1, rtol=1e-5)


def test_batch_norm_goes_between_each_convolution_and_its_relu():
    model = small(batch_norm=True)
    rows = describe_layers(model)
    assert sum(row["type"] == "BatchNormalization" for row in rows) == 14  # 2 per level, 3 + 1 + 3 levels
    assert [(row["name"], row["inputs"]) for row in rows[1:4]] == [
        ("enc1_conv1", ["input"]),
        ("enc1_bn1", ["enc1_conv1"]),
        ("enc1_relu1", ["enc1_bn1"]),
    ]
    assert layer(model, "enc1_conv1")["activation"] == "linear"
    assert layer(model, "enc1_conv1")["use_bias"] is False
    assert layer(model, "enc1_relu1")["activation"] == "relu"
    assert layer(model, "enc1_pool")["inputs"] == ["enc1_relu2"]
    assert layer(model, "dec3_concat")["inputs"] == ["enc3_relu2", "dec3_up"]


def test_dropout_follows_the_bottleneck_only_when_asked():
    model = small(dropout=0.3)
    dropouts = [row for row in describe_layers(model) if row["type"] == "Dropout"]
    assert [(row["name"], row["rate"], row["inputs"]) for row in dropouts] == [
        ("bottleneck_dropout", 0.3, ["bottleneck_conv2"])
    ]
    assert layer(model, "dec3_up")["inputs"] == ["bottleneck_dropout"]
    assert not any(row["type"] == "Dropout" for row in describe_layers(small()))


def test_resize_upsampling_is_bilinear_then_a_convolution():
    model = small(upsampling="resize")
    assert {key: layer(model, "dec2_up")[key] for key in ("type", "size", "interpolation", "inputs")} == {
        "type": "UpSampling2D",
        "size": (2, 2),
        "interpolation": "bilinear",
        "inputs": ["dec3_conv2"],
    }
    upconv = layer(model, "dec2_upconv")
    assert (upconv["type"], upconv["filters"], upconv["kernel_size"]) == ("Conv2D", 8, (3, 3))
    assert layer(model, "dec2_concat")["inputs"] == ["enc2_conv2", "dec2_upconv"]
    assert model.predict(np.ones((1, 32, 32, 3), "float32"), verbose=0).shape == (1, 32, 32, 1)


def test_standardize_puts_a_layer_without_weights_first_that_gives_each_image_mean_0_and_sd_1():
    model = small(standardize=True)
    assert layer(model, "standardize")["type"] == "PerImageStandardization"
    assert layer(model, "enc1_conv1")["inputs"] == ["standardize"]
    assert model.count_params() == small().count_params()
    rng = np.random.default_rng(0)
    images = np.stack([rng.uniform(0.0, 0.2, (32, 32, 3)), rng.uniform(0.5, 1.0, (32, 32, 3))]).astype(
        "float32"
    )
    standardized = keras.ops.convert_to_numpy(PerImageStandardization()(images))
    np.testing.assert_allclose(standardized.mean(axis=(1, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(standardized.std(axis=(1, 2, 3)), 1.0, atol=1e-3)
    # Only the contrast within an image is left: brightness and contrast changes of a whole image vanish.
    np.testing.assert_allclose(PerImageStandardization()(images[:1] * 3 + 0.5), standardized[:1], atol=1e-4)
    # What notebook 01 shows with TensorFlow's function, inside the model.
    np.testing.assert_allclose(standardized, tf.image.per_image_standardization(images), atol=1e-4)


def test_a_flat_image_is_shifted_to_0_not_divided_by_0():
    flat = np.full((1, 8, 8, 3), 0.7, "float32")
    assert np.all(keras.ops.convert_to_numpy(PerImageStandardization()(flat)) == 0.0)


def test_a_standardizing_model_saves_and_loads_with_the_same_predictions(tmp_path):
    model = small(standardize=True)
    images = np.random.default_rng(1).uniform(size=(2, 32, 32, 3)).astype("float32")
    model.save(tmp_path / "model.keras")
    loaded = load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6)


@pytest.fixture
def mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    yield
    keras.mixed_precision.set_global_policy("float32")


def test_output_stays_float32_under_mixed_precision(mixed_precision):
    model = small()
    assert layer(model, "head_conv")["dtype"] == "mixed_float16"
    assert model.get_layer("head_conv").compute_dtype == "float16"
    assert model.output.dtype == "float32"
    probabilities = model.predict(np.ones((1, 32, 32, 3), "float32"), verbose=0)
    assert probabilities.dtype == np.float32
    # The image statistics stay float32 too: a float16 mean over a whole image loses digits.
    assert small(standardize=True).get_layer("standardize").compute_dtype == "float32"


@pytest.mark.parametrize(
    ("input_shape", "depth", "message"),
    [
        ((100, 128, 3), 3, "input height 100 is not divisible by 2**3 = 8; use 96 or 104"),
        ((128, 90, 3), 3, "input width 90 is not divisible by 2**3 = 8; use 88 or 96"),
        ((40, 48, 1), 4, "input height 40 is not divisible by 2**4 = 16; use 32 or 48"),
        ((4, 8, 3), 3, "input height 4 is not divisible by 2**3 = 8; use 8 "),
    ],
)
def test_a_size_the_poolings_cannot_halve_names_the_nearest_valid_sizes(input_shape, depth, message):
    with pytest.raises(UnetTutorialError) as error:
        build_unet(input_shape=input_shape, depth=depth)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"num_classes": 0}, "num_classes=0"),
        ({"num_classes": 1}, "num_classes=1"),
        ({"depth": 0}, "depth=0"),
        ({"base_filters": 2.5}, "base_filters=2.5"),
        ({"dropout": 1.0}, "dropout=1.0"),
        ({"upsampling": "nearest"}, "upsampling='nearest'"),
        ({"input_shape": (128, 128)}, "input_shape=(128, 128)"),
        ({"input_shape": (128, 128, None)}, "input_shape=(128, 128, None)"),
        ({"input_shape": (0, 128, 3)}, "input height 0"),
    ],
)
def test_a_bad_argument_is_a_one_line_error_that_names_it(options, named):
    with pytest.raises(UnetTutorialError) as error:
        build_unet(**options)
    assert str(error.value).startswith(named)
    assert "\n" not in str(error.value)


def test_none_height_and_width_accept_any_divisible_size():
    model = small(input_shape=(None, None, 1))
    assert model.input.shape == (None, None, None, 1)
    for height, width in ((32, 32), (24, 56)):
        probabilities = model.predict(np.ones((1, height, width, 1), "float32"), verbose=0)
        assert probabilities.shape == (1, height, width, 1)
    assert build_unet(input_shape=(None, 64, 3)).output.shape == (None, None, 64, 1)


def test_parameters_per_block_add_up_and_include_batch_norm_statistics():
    model = small(batch_norm=True, num_classes=3)
    counts = parameters_per_block(model)
    assert list(counts) == ["enc1", "enc2", "enc3", "bottleneck", "dec3", "dec2", "dec1", "head"]
    assert sum(counts.values()) == model.count_params()
    assert counts["head"] == 4 * 3 + 3


@pytest.fixture(scope="module")
def notebook():
    """The imports and function definitions of notebook 03's code cells, run in a fresh namespace.

    Only ``import`` and ``def`` statements run, so nothing is built or drawn; IPython's own transformer
    turns the setup cell's ``%pip`` into Python first.
    """
    namespace = {}
    for cell in json.loads(NOTEBOOK.read_text())["cells"]:
        if cell["cell_type"] == "code":
            tree = ast.parse(TransformerManager().transform_cell("".join(cell["source"])))
            definitions = [
                node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom | ast.FunctionDef)
            ]
            exec(compile(ast.Module(body=definitions, type_ignores=[]), str(NOTEBOOK), "exec"), namespace)
    return namespace


def test_notebook_teaches_the_package_blocks_by_name(notebook):
    for block in (
        "double_conv",
        "encoder_block",
        "bottleneck",
        "decoder_block",
        "output_head",
        "build_classic_unet",
    ):
        assert callable(notebook.get(block)), f"notebook 03 no longer defines {block}()"


def test_notebook_network_is_build_unet_layer_by_layer(notebook, classic):
    assert describe_layers(notebook["build_classic_unet"]()) == describe_layers(classic)
    other = {"input_shape": (64, 64, 1), "base_filters": 8, "depth": 2}
    assert describe_layers(notebook["build_classic_unet"](**other)) == describe_layers(build_unet(**other))


def test_notebook_output_head_is_the_package_one_for_each_class_count(notebook):
    for num_classes in (2, 3):
        ours, package = keras.Input((8, 8, 4), name="features"), keras.Input((8, 8, 4), name="features")
        ours = keras.Model(ours, notebook["output_head"](ours, num_classes))
        package = keras.Model(package, output_head(package, num_classes))
        assert describe_layers(ours) == describe_layers(package)
