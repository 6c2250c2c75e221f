"""Tiny untrained UNets, random images and the one-line error check: shared by inference and export tests."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from unet_helpers.errors import UnetTutorialError
from unet_helpers.model import build_unet


def random_image(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """Uniform float32 noise in [0, 1], (height, width, channels)."""
    return np.random.default_rng(seed).random((height, width, channels), dtype=np.float32)


def error_message(call, *args, **kwargs) -> str:
    """The message of the UnetTutorialError that ``call(*args, **kwargs)`` raises, checked to be one line."""
    with pytest.raises(UnetTutorialError) as error:
        call(*args, **kwargs)
    message = str(error.value)
    assert "\n" not in message, message
    return message


def tiny_unet(input_shape: tuple, *, seed: int) -> keras.Model:
    """An untrained 4-filter UNet, the same for the same seed."""
    keras.utils.set_random_seed(seed)
    return build_unet(input_shape, base_filters=4)
