"""Augmentation that keeps every mask aligned with its image, in the ``tf.data`` pipeline or on the GPU.

Geometric transforms (flip, 90-degree rotation, small rotation, zoom, translation, elastic deformation)
move pixels, so they must move the image and its mask in exactly the same way. Here they are *composed*
into one sampling map per image: for every output pixel, the point of the input it comes from (an affine
part plus a smooth elastic displacement). The image is then read at those points with bilinear
interpolation, and the mask takes the label of the nearest of the same four pixels the image blends. A
mask therefore cannot drift from its image, and it keeps its label set exactly: nearest neighbour
copies labels, it never blends them. Per-pixel loss weights (the UNet paper's border weights, from
``unet_helpers.instances``) may come along: each output pixel takes the weight of the very pixel its mask
label comes from, so a weight stays with its label.

Points that fall outside the image are reflected back in (``dcba|abcd|dcba``), for the image and the
mask alike, so the mask's labels match the reflected image. With ``AugmentOptions(outside_label=...)``
the mask holds that label there instead (``mask_classes.IGNORE_CLASS``: no label, skipped everywhere).

Photometric transforms (blur, brightness, contrast, gamma, noise) change the image only; the result is
clipped to [0, 1].

Speed: everything is vectorised over the batch (no Python per image or pixel). The elastic field is drawn
on a coarse grid and interpolated with two small matrix products; the image is read with 1-D gathers;
and the resampling and the per-pixel photometric steps are compiled together with XLA, which fuses them
into a few loops. The random numbers are drawn outside that compiled step, so the same seed gives the
same result eagerly, in ``tf.function`` and in ``tf.data``. Measured speeds: ``benchmarks/augment_speed.py``.

Entry points:

- :func:`augment_batch`: a pure function of ``(images, masks, seed)`` (and optional ``weights``); use it
  in ``Dataset.map``.
- :func:`augment_dataset`: adds a seed stream to a dataset of batches and maps :func:`augment_batch`
  over it, with new draws every epoch.
- ``unet_helpers.augment_layer.RandomAugment``: a Keras layer over :func:`augment_batch` for the
  accelerator (a custom ``train_step`` or a preprocessing model).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from unet_helpers.errors import UnetTutorialError

GEOMETRIC = ("flip", "rotate90", "rotate", "zoom", "translate", "elastic")
PHOTOMETRIC = ("blur", "brightness", "contrast", "gamma", "noise")
# One random stream per drawn quantity, folded into the caller's seed, so that turning one transform off
# does not change what the others draw.
_STREAMS = {
    name: index
    for index, name in enumerate(
        (*GEOMETRIC, "blur", "brightness", "contrast", "gamma", "noise_std", "noise")
    )
}


@dataclass(frozen=True)
class AugmentOptions:
    """Which transforms run and how strong they are; the defaults are the default pipeline.

    Every image draws its own parameters, every time it is augmented, uniformly in the ranges below
    (log-uniformly where stated).

    Geometric (image and mask together):
        flip: mirror left-right with probability 0.5. Together with ``rotate90`` this reaches all eight
            orientations of the square (up-down mirrors included).
        rotate90: rotate by 0, 90, 180 or 270 degrees, each with probability 0.25 (0 or 180 degrees for
            images that are not square). Turn it off for photos with a natural "up".
        rotate: rotate by an angle in [-max_rotation, max_rotation] degrees.
        max_rotation: degrees, in [0, 180]; default 10.
        zoom: scale by a factor in [1 / (1 + max_zoom), 1 + max_zoom] (log-uniform; above 1 zooms in).
        max_zoom: in [0, 1]; default 0.1.
        translate: shift by up to ``max_translation`` times the image side, in each direction.
        max_translation: fraction of the side, in [0, 0.5]; default 0.05.
        elastic: a smooth random deformation, as in the UNet paper: displacement vectors drawn on a
            coarse ``elastic_grid`` x ``elastic_grid`` grid of control points (corners included) from a
            normal distribution, interpolated to every pixel with bicubic interpolation.
        elastic_std: standard deviation of each control-point displacement, as a fraction of the image
            side, in [0, 0.2]; default 0.02 (the paper: 10 pixels on 512-pixel images). Displacements
            much larger than the grid spacing fold the image over itself.
        elastic_grid: control points per side, an integer in [2, 32]; default 3 (the paper's). Fewer
            points give a smoother, larger-scale deformation.
        outside_label: the mask value where the source point lies outside the image, or ``None``
            (default) to reflect the mask like the image. ``mask_classes.IGNORE_CLASS`` (255) is the way to
            say "no label here": the losses, metrics and figures skip such pixels (as they skip pixels the
            masks already hold as ignored, which move with the image); it is the one value the mask may gain.

    Photometric (image only, in this order; the image is clipped to [0, 1] at the end):
        blur: Gaussian blur with a standard deviation in [0, max_blur_sigma] pixels. It is applied
            before the geometric resampling (the only step that is), for speed; a blur commutes with
            the geometry up to the zoom factor.
        max_blur_sigma: pixels, in [0, 5]; default 1.0.
        brightness: add a value in [-max_brightness, max_brightness].
        max_brightness: in [0, 1] (image values are in [0, 1]); default 0.1.
        contrast: scale the distance to the image's mean by a factor in [1 - max_contrast,
            1 + max_contrast] (the mean itself stays).
        max_contrast: in [0, 1); default 0.2.
        gamma: raise to a power in [1 / (1 + max_gamma), 1 + max_gamma] (log-uniform).
        max_gamma: in [0, 1]; default 0.2.
        noise: add Gaussian noise whose standard deviation is drawn in [0, max_noise_std].
        max_noise_std: in [0, 0.5]; default 0.03.
    """

    flip: bool = True
    rotate90: bool = True
    rotate: bool = True
    max_rotation: float = 10.0
    zoom: bool = True
    max_zoom: float = 0.1
    translate: bool = True
    max_translation: float = 0.05
    elastic: bool = True
    elastic_std: float = 0.02
    elastic_grid: int = 3
    outside_label: float | None = None
    blur: bool = True
    max_blur_sigma: float = 1.0
    brightness: bool = True
    max_brightness: float = 0.1
    contrast: bool = True
    max_contrast: float = 0.2
    gamma: bool = True
    max_gamma: float = 0.2
    noise: bool = True
    max_noise_std: float = 0.03

    def __post_init__(self) -> None:
        ranges = {
            "max_rotation": (0.0, 180.0),
            "max_zoom": (0.0, 1.0),
            "max_translation": (0.0, 0.5),
            "elastic_std": (0.0, 0.2),
            "max_blur_sigma": (0.0, 5.0),
            "max_brightness": (0.0, 1.0),
            "max_contrast": (0.0, 0.999),
            "max_gamma": (0.0, 1.0),
            "max_noise_std": (0.0, 0.5),
        }
        for name, (low, high) in ranges.items():
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not low <= value <= high:
                raise UnetTutorialError(
                    f"AugmentOptions: {name}={value!r} is out of range; give a number in [{low}, {high}]."
                )
        if not isinstance(self.elastic_grid, int) or not 2 <= self.elastic_grid <= 32:
            raise UnetTutorialError(
                f"AugmentOptions: elastic_grid={self.elastic_grid!r}; give an integer from 2 to 32."
            )
        if self.outside_label is not None and not isinstance(self.outside_label, (int, float)):
            raise UnetTutorialError(
                f"AugmentOptions: outside_label={self.outside_label!r}; give a number or None (reflect)."
            )

    @classmethod
    def only(cls, *switches: str, **strengths: float) -> AugmentOptions:
        """Options with every transform off except ``switches`` (names from GEOMETRIC and PHOTOMETRIC).

        ``AugmentOptions.only("elastic", elastic_std=0.05)`` deforms and does nothing else.
        """
        unknown = [name for name in switches if name not in GEOMETRIC + PHOTOMETRIC]
        if unknown:
            raise UnetTutorialError(
                f"AugmentOptions.only: no transform called {unknown[0]!r}; "
                f"choose from {', '.join(GEOMETRIC + PHOTOMETRIC)}."
            )
        off = {name: name in switches for name in GEOMETRIC + PHOTOMETRIC}
        return cls(**off, **strengths)

    def replace(self, **changes) -> AugmentOptions:
        """A copy with ``changes`` applied, e.g. ``options.replace(rotate90=False)``."""
        return dataclasses.replace(self, **changes)


def _uniform(seed: tf.Tensor, stream: str, shape, low: float, high: float) -> tf.Tensor:
    stream_seed = tf.random.experimental.stateless_fold_in(seed, _STREAMS[stream])
    return tf.random.stateless_uniform(shape, stream_seed, minval=low, maxval=high)


def _cubic_weights(size: tf.Tensor, knots: int) -> tf.Tensor:
    """(size, knots) float32 weights that interpolate ``knots`` control points to ``size`` pixels.

    Keys' bicubic kernel (a = -0.5, the usual "bicubic"), control points spread from the first pixel to
    the last; beyond the edge, the edge point is repeated. Computed in the graph so that ``size`` may be
    unknown until run time.
    """
    position = tf.linspace(0.0, float(knots - 1), size)[:, None]
    padded_knots = tf.range(-1.0, knots + 1.0)[None, :]
    distance = tf.abs(position - padded_knots)
    near = (1.5 * distance - 2.5) * distance**2 + 1.0
    far = ((-0.5 * distance + 2.5) * distance - 4.0) * distance + 2.0
    weights = tf.where(distance <= 1.0, near, tf.where(distance < 2.0, far, 0.0))
    # Fold the two padding points (copies of the edge points) onto the edge points.
    fold = np.zeros((knots + 2, knots), np.float32)
    fold[np.arange(1, knots + 1), np.arange(knots)] = 1.0
    fold[0, 0] = fold[-1, -1] = 1.0
    return weights @ fold


def _reflect(coordinate: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    """Fold pixel coordinates into [-0.5, size - 0.5] by mirroring at the image's outer edges."""
    period = 2.0 * size
    shifted = coordinate + 0.5
    wrapped = shifted - period * tf.floor(shifted * (1.0 / period))  # floormod, at a third of its cost
    return tf.minimum(wrapped, period - wrapped) - 0.5


def _draw_geometry(
    batch: tf.Tensor, height: tf.Tensor, width: tf.Tensor, *, seed: tf.Tensor, options: AugmentOptions
) -> dict[str, tf.Tensor]:
    """The random numbers of the geometric transforms that ``options`` turns on, per image.

    Drawn outside XLA: under XLA the same seed gives other numbers, and its generator is slow on the CPU.
    """
    draws = {}
    if options.flip:
        draws["mirror"] = tf.where(_uniform(seed, "flip", [batch], 0.0, 1.0) < 0.5, -1.0, 1.0)
    if options.rotate90:
        quarter_turns = tf.floor(_uniform(seed, "rotate90", [batch], 0.0, 4.0))
        # Images that are not square keep their shape only under 0 and 180 degrees.
        quarter_turns = tf.where(tf.equal(height, width), quarter_turns, 2.0 * tf.floor(quarter_turns / 2.0))
        draws["quarter_turns"] = tf.cast(quarter_turns, tf.int32)
    if options.rotate:
        limit = math.radians(options.max_rotation)
        draws["angle"] = _uniform(seed, "rotate", [batch], -limit, limit)
    if options.zoom:
        limit = math.log1p(options.max_zoom)
        draws["log_zoom"] = _uniform(seed, "zoom", [batch], -limit, limit)
    if options.translate:
        limit = options.max_translation
        draws["shift"] = _uniform(seed, "translate", [2, batch], -limit, limit)
    if options.elastic:
        stream_seed = tf.random.experimental.stateless_fold_in(seed, _STREAMS["elastic"])
        knots = options.elastic_grid
        draws["control"] = tf.random.stateless_normal([batch, 2, knots, knots], stream_seed)
    return draws


def _map_from_draws(
    draws: dict[str, tf.Tensor],
    batch: tf.Tensor,
    height: tf.Tensor,
    width: tf.Tensor,
    options: AugmentOptions,
) -> tuple[tf.Tensor, tf.Tensor]:
    """The sampling map of :func:`sampling_map`, from the numbers :func:`_draw_geometry` drew."""
    one, zero = tf.ones([batch]), tf.zeros([batch])
    # The linear part L as its four entries, each (batch,): [[yy, yx], [xy, xx]] acting on (row, column).
    yy, yx, xy, xx = one, zero, zero, one
    if options.flip:
        yx, xx = yx * draws["mirror"], xx * draws["mirror"]
    if options.rotate90:
        # cos and sin of multiples of 90 degrees, exactly, so that these turns move whole pixels.
        cos = tf.gather([1.0, 0.0, -1.0, 0.0], draws["quarter_turns"])
        sin = tf.gather([0.0, 1.0, 0.0, -1.0], draws["quarter_turns"])
        yy, yx, xy, xx = cos * yy - sin * xy, cos * yx - sin * xx, sin * yy + cos * xy, sin * yx + cos * xx
    if options.rotate:
        cos, sin = tf.cos(draws["angle"]), tf.sin(draws["angle"])
        yy, yx, xy, xx = cos * yy - sin * xy, cos * yx - sin * xx, sin * yy + cos * xy, sin * yx + cos * xx
    if options.zoom:
        # Reading from a point closer to the centre enlarges the image: divide by the zoom factor.
        shrink = tf.exp(-draws["log_zoom"])
        yy, yx, xy, xx = yy * shrink, yx * shrink, xy * shrink, xx * shrink

    height_f, width_f = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    centre_y, centre_x = (height_f - 1.0) / 2.0, (width_f - 1.0) / 2.0
    shift_y = shift_x = zero
    if options.translate:
        shift_y, shift_x = draws["shift"][0] * height_f, draws["shift"][1] * width_f

    # The affine part is a sum of a function of the row and a function of the column: build both
    # small, and add them once at full size.
    rows = tf.range(height_f)[None, :, None] - centre_y
    columns = tf.range(width_f)[None, None, :] - centre_x
    column = (slice(None), None, None)
    source_y = (yy[column] * rows + (centre_y + shift_y)[column]) + yx[column] * columns
    source_x = (xy[column] * rows + (centre_x + shift_x)[column]) + xx[column] * columns

    if options.elastic:
        knots = options.elastic_grid
        std = options.elastic_std * tf.stack([height_f, width_f])
        control = draws["control"] * std[None, :, None, None]
        # Apply L to the displacements on the coarse grid (L is linear, so this commutes with the
        # interpolation), then interpolate both components to every pixel with two small matrix products.
        control = tf.stack(
            [
                yy[:, None, None] * control[:, 0] + yx[:, None, None] * control[:, 1],
                xy[:, None, None] * control[:, 0] + xx[:, None, None] * control[:, 1],
            ],
            axis=1,
        )
        field = tf.einsum(
            "hk,bckl,wl->bchw", _cubic_weights(height, knots), control, _cubic_weights(width, knots)
        )
        source_y, source_x = source_y + field[:, 0], source_x + field[:, 1]
    return source_y, source_x


def sampling_map(
    batch: tf.Tensor, height: tf.Tensor, width: tf.Tensor, *, seed: tf.Tensor, options: AugmentOptions
) -> tuple[tf.Tensor, tf.Tensor] | None:
    """Where each output pixel reads the input: ``(source_y, source_x)``, each (batch, height, width).

    float32 pixel coordinates (row, column; pixel centres at integers), before reflection at the
    borders. All geometric transforms of ``options`` are composed here, in one map per image:
    ``source = L (p - centre + elastic(p)) + centre + shift``, where ``L`` combines flip, 90-degree
    rotation, rotation and zoom. :func:`augment_batch` reads images and masks at exactly these points
    for the same ``seed``. ``None`` when ``options`` has no geometric transform on.
    """
    if not any(getattr(options, name) for name in GEOMETRIC):
        return None
    draws = _draw_geometry(batch, height, width, seed=seed, options=options)
    return _map_from_draws(draws, batch, height, width, options)


def _sample(
    images: tf.Tensor,
    masks: tf.Tensor,
    weights: tf.Tensor | None,
    source_y: tf.Tensor,
    source_x: tf.Tensor,
    outside_label,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor | None]:
    """Read images (bilinear), masks and weights (nearest neighbour) at the same reflected points."""
    shape = tf.shape(images)
    batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    height_f, width_f = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    # Mirrored at the outer pixel edges, a point within half a pixel of the edge takes the edge pixel's
    # value, for bilinear and nearest alike: clamping to the outer pixel centres changes nothing, and it
    # keeps every neighbour inside the image.
    y = tf.clip_by_value(_reflect(source_y, height_f), 0.0, height_f - 1.0)
    x = tf.clip_by_value(_reflect(source_x, width_f), 0.0, width_f - 1.0)
    y_floor, x_floor = tf.floor(y), tf.floor(x)
    fraction_y, fraction_x = y - y_floor, x - x_floor
    y0, x0 = tf.cast(y_floor, tf.int32), tf.cast(x_floor, tf.int32)
    y1, x1 = tf.minimum(y0 + 1, height - 1), tf.minimum(x0 + 1, width - 1)
    # Indices into the whole batch, flattened to single values: 1-D gathers are what XLA does fastest.
    row0 = (tf.range(batch) * height)[:, None, None] + y0
    row0, row1 = row0 * width, (row0 + (y1 - y0)) * width
    # The mask reads the nearest of the image's four neighbours.
    nearest = tf.where(fraction_y < 0.5, row0, row1) + tf.where(fraction_x < 0.5, x0, x1)
    masks = tf.gather(tf.reshape(masks, [-1]), nearest)[..., None]
    if weights is not None:  # the same pixel as the mask: a weight stays with its label
        weights = tf.gather(tf.reshape(weights, [-1]), nearest)[..., None]

    flat_images, channel = tf.reshape(images, [-1]), tf.range(channels)

    def read(pixel: tf.Tensor) -> tf.Tensor:
        return tf.gather(flat_images, pixel[..., None] * channels + channel)

    fraction_y, fraction_x = fraction_y[..., None], fraction_x[..., None]
    top_left, top_right, bottom_left, bottom_right = (
        read(row0 + x0),
        read(row0 + x1),
        read(row1 + x0),
        read(row1 + x1),
    )
    top = top_left + fraction_x * (top_right - top_left)
    bottom = bottom_left + fraction_x * (bottom_right - bottom_left)
    images = top + fraction_y * (bottom - top)
    if outside_label is not None:
        outside = (
            (source_y < -0.5) | (source_y > height_f - 0.5) | (source_x < -0.5) | (source_x > width_f - 0.5)
        )
        masks = tf.where(outside[..., None], tf.cast(outside_label, masks.dtype), masks)
        if weights is not None:  # no label there, so no weight: a weighted loss skips these pixels
            weights = tf.where(outside[..., None], 0.0, weights)
    return images, masks, weights


def _blur(images: tf.Tensor, sigma: tf.Tensor, radius: int) -> tf.Tensor:
    """Gaussian blur with one standard deviation per image: a separable depthwise convolution."""
    shape = tf.shape(images)
    batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    taps = tf.range(-radius, radius + 1, dtype=tf.float32)[None, :]
    kernel = tf.exp(-0.5 * (taps / tf.maximum(sigma, 1e-3)[:, None]) ** 2)  # sigma 0 gives a delta
    kernel = kernel / tf.reduce_sum(kernel, axis=1, keepdims=True)
    kernel = tf.repeat(kernel, channels, axis=0)  # (batch * channels, taps)
    # Every (image, channel) pair becomes a channel of one image, so each gets its own kernel.
    stacked = tf.reshape(tf.transpose(images, [1, 2, 0, 3]), [1, height, width, -1])
    padding = [[0, 0], [radius, radius], [radius, radius], [0, 0]]
    stacked = tf.pad(stacked, padding, mode="REFLECT")
    kernel_t = tf.transpose(kernel)
    stacked = tf.nn.depthwise_conv2d(stacked, kernel_t[:, None, :, None], [1, 1, 1, 1], "VALID")
    stacked = tf.nn.depthwise_conv2d(stacked, kernel_t[None, :, :, None], [1, 1, 1, 1], "VALID")
    return tf.transpose(tf.reshape(stacked, [height, width, batch, channels]), [2, 0, 1, 3])


def _draw_photometric(shape: tf.Tensor, *, seed: tf.Tensor, options: AugmentOptions) -> dict[str, tf.Tensor]:
    """The random numbers of brightness, contrast, gamma and noise, per image (noise: per value)."""
    per_image = [shape[0], 1, 1, 1]
    draws = {}
    if options.brightness:
        limit = options.max_brightness
        draws["brightness"] = _uniform(seed, "brightness", per_image, -limit, limit)
    if options.contrast:
        limit = options.max_contrast
        draws["contrast"] = _uniform(seed, "contrast", per_image, 1.0 - limit, 1.0 + limit)
    if options.gamma:
        limit = math.log1p(options.max_gamma)
        draws["gamma"] = tf.exp(_uniform(seed, "gamma", per_image, -limit, limit))
    if options.noise:
        draws["noise_std"] = _uniform(seed, "noise_std", per_image, 0.0, options.max_noise_std)
        # Uniform numbers in (0, 1), one per value, turned into Gaussian noise by the inverse normal CDF
        # under XLA: a third of the cost of drawing normal numbers directly.
        stream_seed = tf.random.experimental.stateless_fold_in(seed, _STREAMS["noise"])
        draws["noise_uniform"] = tf.random.stateless_uniform(shape, stream_seed, minval=1e-7, maxval=1.0)
    return draws


def _warp_and_adjust(
    images: tf.Tensor,
    masks: tf.Tensor,
    weights: tf.Tensor | None,
    draws: dict[str, tf.Tensor],
    *,
    options: AugmentOptions,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor | None]:
    """Geometry, then brightness, contrast, gamma and noise, from drawn numbers: the XLA-compiled part."""
    shape = tf.shape(images)
    if any(getattr(options, name) for name in GEOMETRIC):
        source_y, source_x = _map_from_draws(draws, shape[0], shape[1], shape[2], options)
        images, masks, weights = _sample(
            images, masks, weights, source_y, source_x, outside_label=options.outside_label
        )
    if options.brightness or options.contrast:
        # Brightness b, then contrast c about the new mean m + b: c x + (1 - c) m + b, in one step (XLA
        # would otherwise compute the resampled image once for the mean and again for the result).
        offset = draws.get("brightness", 0.0)
        if options.contrast:
            mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
            offset += (1.0 - draws["contrast"]) * mean
        images = draws.get("contrast", 1.0) * images + offset
    if options.gamma:
        # exp(log(x) * g) is x ** g (0 stays 0), and cheaper than a broadcasting pow.
        images = tf.exp(tf.math.log(tf.clip_by_value(images, 0.0, 1.0)) * draws["gamma"])
    if options.noise:
        images = images + draws["noise_std"] * tf.math.ndtri(draws["noise_uniform"])
    if any(getattr(options, name) for name in PHOTOMETRIC):
        images = tf.clip_by_value(images, 0.0, 1.0)
    return images, masks, weights


@functools.lru_cache(maxsize=64)
def _compiled(options: AugmentOptions):
    """``_warp_and_adjust`` for ``options``, compiled with XLA, which fuses its element-wise steps into a
    few loops: three times faster on a CPU than running them one by one (and fine on a GPU)."""
    return tf.function(
        functools.partial(_warp_and_adjust, options=options), jit_compile=True, reduce_retracing=True
    )


def _check_inputs(images: tf.Tensor, masks: tf.Tensor, seed: tf.Tensor) -> None:
    """One-line errors for wrong shapes, from the static shapes (free inside a graph)."""
    if images.shape.rank != 4 or images.shape[-1] not in (1, 3):
        raise UnetTutorialError(
            f"augment_batch: images have shape {images.shape}; give a batch (batch, height, width, "
            "channels) with 1 or 3 channels (add a batch axis with images[None] for one image)."
        )
    if masks.shape.rank != 4 or masks.shape[-1] != 1:
        raise UnetTutorialError(
            f"augment_batch: masks have shape {masks.shape}; give (batch, height, width, 1) class indices."
        )
    if not images.shape[:3].is_compatible_with(masks.shape[:3]):
        raise UnetTutorialError(
            f"augment_batch: images {images.shape} and masks {masks.shape} differ in batch, height or "
            "width; give each image its own mask of the same size."
        )
    if not seed.shape.is_compatible_with([2]) or not seed.dtype.is_integer:
        raise UnetTutorialError(
            f"augment_batch: seed is {seed.dtype.name} of shape {seed.shape}; give two integers, e.g. "
            "seed=[1, 2] or one element of tf.data.Dataset.random(seed=...).batch(2)."
        )


def _check_weights(weights: tf.Tensor, masks: tf.Tensor) -> None:
    if not weights.dtype.is_floating:
        raise UnetTutorialError(
            f"augment_batch: weights are {weights.dtype.name}; give float weights (e.g. float32)."
        )
    if weights.shape.rank != 4 or not weights.shape.is_compatible_with(masks.shape):
        raise UnetTutorialError(
            f"augment_batch: weights have shape {weights.shape}, masks {masks.shape}; give one weight per "
            "mask pixel, (batch, height, width, 1)."
        )


def augment_batch(
    images, masks, *, seed, options: AugmentOptions = AugmentOptions(), weights=None
) -> tuple[tf.Tensor, tf.Tensor] | tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Augment a batch of images and their masks (and per-pixel weights), each image with its own draw.

    Pure: the result depends only on the arguments, so the same ``seed`` gives the same batch, and it
    runs in eager mode, inside ``tf.function`` and inside ``tf.data.Dataset.map``. Passing ``weights``
    changes nothing in the images and masks: the same seed gives the same images and masks with or
    without them.

    Args:
        images: float32 (batch, height, width, channels), channels 1 or 3, values in [0, 1].
        masks: (batch, height, width, 1) class indices (0/1, or 0..K-1), any real or integer dtype.
        seed: two integers, shape [2], int32 or int64 (as ``tf.random.stateless_*`` take).
        options: which transforms run and how strongly; the default is the default pipeline.
        weights: optional per-pixel loss weights, float (batch, height, width, 1), e.g. the UNet paper's
            border weights (``unet_helpers.instances``). The geometric transforms move them exactly as
            the masks: each output pixel takes the weight of the input pixel its mask label comes from,
            so a weight stays with its label. Photometric transforms leave them alone. Where
            ``options.outside_label`` marks a mask pixel, its weight is 0 (no label, no weight).

    Returns:
        ``(images, masks)``, or ``(images, masks, weights)`` when ``weights`` are given: images float32
        of the same shape, values in [0, 1]; masks of the same shape and dtype, holding only values of the
        input masks (plus ``options.outside_label`` if set); weights of the same shape and dtype, holding
        only values of the input weights (plus 0 where ``outside_label`` marks a pixel).

    Raises:
        UnetTutorialError: a shape, a dtype or the seed is wrong (checked on the static shapes).
    """
    images = tf.convert_to_tensor(images)
    masks = tf.convert_to_tensor(masks)
    seed = tf.convert_to_tensor(seed)
    _check_inputs(images, masks, seed)
    if not images.dtype.is_floating:
        raise UnetTutorialError(
            f"augment_batch: images are {images.dtype.name}; convert them to float32 in [0, 1] first "
            "(e.g. tf.image.convert_image_dtype(images, tf.float32))."
        )
    weights_dtype = None
    if weights is not None:
        weights = tf.convert_to_tensor(weights)
        _check_weights(weights, masks)
        weights_dtype = weights.dtype
        weights = tf.cast(weights, tf.float32)
    blur_radius = math.ceil(3 * options.max_blur_sigma) if options.blur else 0
    if min(images.shape[1] or blur_radius + 1, images.shape[2] or blur_radius + 1) <= blur_radius:
        raise UnetTutorialError(
            f"augment_batch: images of {images.shape[1]}x{images.shape[2]} pixels are too small to blur with "
            f"max_blur_sigma={options.max_blur_sigma}; lower it or set blur=False."
        )
    images = tf.cast(images, tf.float32)
    mask_dtype = masks.dtype
    masks = tf.cast(masks, tf.float32)
    if any(getattr(options, name) for name in GEOMETRIC + PHOTOMETRIC):
        shape = tf.shape(images)
        if options.blur and options.max_blur_sigma > 0:
            # Blur comes first, before the resampling: what follows then compiles into one XLA step (XLA's
            # depthwise convolution is slow on the CPU). A blur commutes with the geometry up to the zoom.
            sigma = _uniform(seed, "blur", [shape[0]], 0.0, options.max_blur_sigma)
            images = _blur(images, sigma, radius=blur_radius)
        draws = {
            **_draw_geometry(shape[0], shape[1], shape[2], seed=seed, options=options),
            **_draw_photometric(shape, seed=seed, options=options),
        }
        if draws:
            static_images, static_masks = images.shape, masks.shape
            images, masks, weights = _compiled(options)(images, masks, weights, draws)
            # The compiled step may be traced for unknown sizes; keep what the caller's shapes said.
            images, masks = tf.ensure_shape(images, static_images), tf.ensure_shape(masks, static_masks)
            if weights is not None:
                weights = tf.ensure_shape(weights, static_masks)
    if weights is None:
        return images, tf.cast(masks, mask_dtype)
    return images, tf.cast(masks, mask_dtype), tf.cast(weights, weights_dtype)


def augment_dataset(
    dataset: tf.data.Dataset, *, seed: int, options: AugmentOptions = AugmentOptions()
) -> tf.data.Dataset:
    """Map :func:`augment_batch` over a dataset of batches, new draws every epoch.

    The batches are ``(images, masks)`` or ``(images, masks, weights)`` (per-pixel weights, moved with
    the masks; see :func:`augment_batch`); the result has the same structure. Each batch gets a seed from
    ``tf.data.Dataset.random(seed, rerandomize_each_iteration=True)``: the same ``seed`` gives the same
    epochs, in order, and every epoch differs from the last (a plain ``Dataset.random(seed)`` would repeat
    the first epoch's augmentation in every epoch). Batches are augmented in parallel and kept in order.
    Augment after ``cache()`` and ``batch()``, so that cached data is unaugmented and the work is
    vectorised over whole batches.
    """
    if len(dataset.element_spec) not in (2, 3):
        raise UnetTutorialError(
            f"augment_dataset: batches have {len(dataset.element_spec)} parts; give (images, masks) or "
            "(images, masks, weights)."
        )
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

    def augment(batch: tuple[tf.Tensor, ...], batch_seed: tf.Tensor) -> tuple[tf.Tensor, ...]:
        weights = batch[2] if len(batch) == 3 else None
        return augment_batch(batch[0], batch[1], seed=batch_seed, options=options, weights=weights)

    return tf.data.Dataset.zip(dataset, seeds).map(
        augment, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
