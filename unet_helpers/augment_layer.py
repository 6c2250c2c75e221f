"""A Keras layer that augments images and masks together (:mod:`unet_helpers.augment`), on the accelerator."""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from unet_helpers.augment import AugmentOptions, augment_batch


class RandomAugment(keras.layers.Layer):
    """:func:`augment_batch` as a Keras layer, to augment on the accelerator.

    ``images, masks = layer(images, masks, training=True)`` augments (a new draw on every call, from
    ``seed``); with ``training`` false or unset it returns its inputs. Use it where a CPU ``tf.data``
    pipeline cannot keep a GPU busy: in a custom ``train_step``, which Keras compiles (with XLA on a
    GPU) and runs on the accelerator, so that ``predict`` and ``evaluate`` see unaugmented data::

        class AugmentingModel(keras.Model):
            def __init__(self, augment, **kwargs):
                super().__init__(**kwargs)
                self.augment = augment

            def train_step(self, data):
                return super().train_step(self.augment(*data, training=True))

        model = AugmentingModel(RandomAugment(seed=0), inputs=unet.inputs, outputs=unet.outputs)

    or as a preprocessing model with two inputs, ``keras.Model([images, masks], layer(images, masks))``.
    Under XLA the random numbers come from XLA's generator: the same seed then gives other (equally
    random) draws than :func:`augment_batch` on the CPU.

    Args:
        options: the transforms, as for :func:`augment_batch`; None for the default pipeline.
        seed: an integer for reproducible draws, or ``None`` for a random start.
    """

    def __init__(self, options: AugmentOptions | None = None, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.options = AugmentOptions() if options is None else options
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, masks, training=None):
        if not training:
            return images, masks
        seed = tf.cast(self.seed_generator.next(), tf.int64)
        return augment_batch(images, masks, seed=seed, options=self.options)

    def compute_output_shape(self, images_shape, masks_shape):
        return images_shape, masks_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "options": dataclasses.asdict(self.options), "seed": self.seed}

    @classmethod
    def from_config(cls, config: dict) -> RandomAugment:
        return cls(**{**config, "options": AugmentOptions(**config["options"])})
