"""Generated data: synthetic fluorescence-microscopy-like images with exact masks.

The series trains on real nuclei (``datasets.nuclei()``); generated images serve what real ones cannot:
exact ground truth, the multi-class chapter (three classes of object) and fast tests.

Each image shows cell nuclei: round and elongated blobs of varied size, shape and brightness, some touching
or overlapping, with internal texture. Around them are things that are *not* labelled: dim out-of-focus
cells and small bright debris. The whole field is lit unevenly, blurred by the optics and noisy. A single
intensity threshold therefore cannot separate objects from background (the tests check that the best one
scores a Dice below 0.85), while a small UNet, which sees shape, sharpness and context, learns it.

Two variants share the same images and differ only in their masks:

- binary (``num_classes=2``): mask pixel 0 = background, 255 = object;
- three classes (``num_classes=3``): mask pixel = class index, 0 = background, 1 = round, 2 = elongated;
  where objects overlap, the one drawn later is on top.

:func:`generate_dataset` writes ``images/0000.png ...`` (RGB, 8-bit), ``masks/0000.png ...`` (8-bit
grayscale) and ``dataset.json`` into a folder, so that the loader reads it like a real dataset.
:func:`embedded_dataset` does the same in the data folder (:func:`unet_helpers.config.data_dir`) and reuses
what is already there. Sample ``i`` depends only on ``(seed, i)``: the files are the same, byte for byte,
every time. Object sizes scale with ``image_size``, so every size shows the same kind of scene.

Command line::

    python -m unet_helpers.synthetic --out DIR --num-samples N --image-size S --num-classes K --seed S
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from unet_helpers import config
from unet_helpers.cli import ArgumentParser
from unet_helpers.errors import UnetTutorialError

GENERATOR_NAME = "unet_helpers.synthetic"
# Bump when a change alters the generated files: folders written by another version are then refused.
GENERATOR_VERSION = 1
METADATA_FILE = "dataset.json"
CLASS_NAMES: dict[int, tuple[str, ...]] = {
    2: ("background", "object"),
    3: ("background", "round", "elongated"),
}
MASK_ENCODING: dict[int, str] = {
    2: "8-bit grayscale PNG: 0 = background, 255 = object",
    3: "8-bit grayscale PNG: pixel value = class index (0 = background, 1 = round, 2 = elongated)",
}
MIN_IMAGE_SIZE = 32

# Parameters of one scene, in pixels of a 128 x 128 image (scaled to other sizes).
_SHIFT = 4  # OpenCV draws polygons with 1/16-pixel vertex precision
_NUM_OBJECTS = (10, 26)
_ELONGATED_FRACTION = 0.4
_ROUND_RADIUS = (5.0, 12.0)
_ROUND_ASPECT = (1.0, 1.4)
_ELONGATED_HALF_LENGTH = (9.0, 18.0)
_ELONGATED_ASPECT = (2.5, 4.0)
_OBJECT_BRIGHTNESS = (0.15, 0.9)
_TOUCHING_FRACTION = 0.45
_NUM_HAZE_BLOBS = (2, 6)
_NUM_DEBRIS = (3, 12)


@dataclass(frozen=True)
class _SceneObject:
    outline: np.ndarray  # (n, 2) int32 polygon vertices in 1/16 pixels (x, y)
    class_index: int  # 1 = round, 2 = elongated
    brightness: float


def _outline(
    rng: np.random.Generator,
    *,
    center: np.ndarray,
    semi_axes: tuple[float, float],
    angle: float,
    wobble: float,
    bend: float,
) -> np.ndarray:
    """A closed, slightly irregular (and, for rods, bent) ellipse as fixed-point polygon vertices."""
    theta = np.linspace(0.0, 2.0 * np.pi, 40, endpoint=False)
    harmonics = np.arange(2, 6)[:, None]
    amplitudes = wobble * rng.uniform(-1.0, 1.0, size=(4, 1)) / harmonics * 2.0
    phases = rng.uniform(0.0, 2.0 * np.pi, size=(4, 1))
    radius = 1.0 + (amplitudes * np.cos(harmonics * theta + phases)).sum(axis=0)
    x = semi_axes[0] * np.cos(theta) * radius
    y = semi_axes[1] * np.sin(theta) * radius + bend * x**2 / semi_axes[0]
    cos, sin = np.cos(angle), np.sin(angle)
    points = np.stack([center[0] + cos * x - sin * y, center[1] + sin * x + cos * y], axis=1)
    return np.round(points * (1 << _SHIFT)).astype(np.int32)


def _place_objects(rng: np.random.Generator, *, image_size: int, scale: float) -> list[_SceneObject]:
    """Random nuclei, some placed against an earlier one so that they touch or overlap a little."""
    objects: list[_SceneObject] = []
    centers: list[np.ndarray] = []
    radii: list[float] = []  # a typical radius per object, for spacing
    for _ in range(rng.integers(*_NUM_OBJECTS, endpoint=True)):
        if rng.random() < _ELONGATED_FRACTION:
            class_index = 2
            half_length = rng.uniform(*_ELONGATED_HALF_LENGTH) * scale
            semi_axes = (half_length, half_length / rng.uniform(*_ELONGATED_ASPECT))
            wobble, bend = rng.uniform(0.01, 0.04), rng.uniform(-0.2, 0.2)
            radius = 0.5 * (semi_axes[0] + semi_axes[1])
        else:
            class_index = 1
            mean_radius = rng.uniform(*_ROUND_RADIUS) * scale
            aspect = np.sqrt(rng.uniform(*_ROUND_ASPECT))
            semi_axes = (mean_radius * aspect, mean_radius / aspect)
            wobble, bend = rng.uniform(0.03, 0.08), 0.0
            radius = mean_radius
        touching = bool(centers) and rng.random() < _TOUCHING_FRACTION
        for _attempt in range(20):
            if touching:
                neighbour = rng.integers(len(centers))
                direction = rng.uniform(0.0, 2.0 * np.pi)
                distance = (radii[neighbour] + radius) * rng.uniform(0.75, 1.0)
                center = centers[neighbour] + distance * np.array([np.cos(direction), np.sin(direction)])
                min_gap = 0.7
            else:
                center = rng.uniform(0.0, image_size, size=2)
                min_gap = 1.05
            if all(
                np.hypot(*(center - c)) >= min_gap * (r + radius) for c, r in zip(centers, radii, strict=True)
            ):
                break
        else:
            continue  # no room left for this one
        outline = _outline(
            rng,
            center=center,
            semi_axes=semi_axes,
            angle=rng.uniform(0.0, np.pi),
            wobble=wobble,
            bend=bend,
        )
        objects.append(_SceneObject(outline, class_index, float(rng.uniform(*_OBJECT_BRIGHTNESS))))
        centers.append(center)
        radii.append(radius)
    return objects


def _add_filled(layer: np.ndarray, outline: np.ndarray, value: float) -> None:
    """Add ``value`` inside the polygon to ``layer`` (float32), so that overlapping nuclei add up."""
    size = layer.shape[0]
    low = np.clip((outline.min(axis=0) >> _SHIFT) - 1, 0, size)
    high = np.clip((outline.max(axis=0) >> _SHIFT) + 2, 0, size)
    if np.any(high <= low):
        return
    patch = np.zeros((high[1] - low[1], high[0] - low[0]), np.uint8)
    # Offsetting by whole pixels keeps the rasterisation identical to the mask's.
    cv2.fillPoly(patch, [outline - (low << _SHIFT)], 1, lineType=cv2.LINE_8, shift=_SHIFT)
    layer[low[1] : high[1], low[0] : high[0]] += value * patch


def _smooth_noise(rng: np.random.Generator, *, image_size: int, cells: int) -> np.ndarray:
    """Zero-mean noise of standard deviation about 1, smooth over ``image_size / cells`` pixels."""
    coarse = rng.standard_normal((cells, cells), dtype=np.float32)
    return cv2.resize(coarse, (image_size, image_size), interpolation=cv2.INTER_CUBIC)


def _illumination(rng: np.random.Generator, *, image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """A multiplicative light field in [0.25, 1] (vignetting off-centre) and an additive stray-light ramp."""
    grid = np.linspace(-1.0, 1.0, image_size, dtype=np.float32)
    center = rng.uniform(-1.0, 1.0, size=2)
    distance2 = (grid[None, :] - center[0]) ** 2 + (grid[:, None] - center[1]) ** 2
    light = 1.0 - rng.uniform(0.4, 0.75) * distance2 / distance2.max()
    direction = rng.uniform(0.0, 2.0 * np.pi)
    ramp = np.cos(direction) * grid[None, :] + np.sin(direction) * grid[:, None]
    stray = rng.uniform(0.0, 0.25) * (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    return light.astype(np.float32), stray.astype(np.float32)


def make_sample(
    *, seed: int, index: int, image_size: int, num_classes: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Render sample ``index`` of the dataset with ``seed``; the same arguments give the same arrays.

    Returns:
        ``(image, mask)``: ``image`` of shape ``(image_size, image_size, 3)``, RGB, uint8 in [0, 255];
        ``mask`` of shape ``(image_size, image_size)``, uint8, with values in {0, 255} for
        ``num_classes=2`` and class indices in {0, 1, 2} for ``num_classes=3`` (see :data:`CLASS_NAMES`).
    """
    _check_arguments(image_size=image_size, num_classes=num_classes, seed=seed)
    if not _is_whole_number(index) or index < 0:
        raise UnetTutorialError(f"index={index!r}: give a whole number, 0 or more.")
    rng = np.random.default_rng([seed, index])
    scale = image_size / 128
    shape = (image_size, image_size)

    # Labelled nuclei: sharp-edged, textured; the mask is exactly their union.
    nuclei = np.zeros(shape, np.float32)
    classes = np.zeros(shape, np.uint8)
    for scene_object in _place_objects(rng, image_size=image_size, scale=scale):
        _add_filled(nuclei, scene_object.outline, scene_object.brightness)
        cv2.fillPoly(classes, [scene_object.outline], scene_object.class_index, cv2.LINE_8, shift=_SHIFT)
    texture = _smooth_noise(rng, image_size=image_size, cells=max(image_size // 5, 4))
    nuclei *= 1.0 + rng.uniform(0.15, 0.35) * texture

    # Unlabelled debris: small bright specks, in focus like the nuclei.
    for _ in range(rng.integers(*_NUM_DEBRIS, endpoint=True)):
        center = np.round(rng.uniform(0.0, image_size, size=2) * (1 << _SHIFT)).astype(int)
        radius = round(rng.uniform(0.8, 2.0) * scale * (1 << _SHIFT))
        brightness = float(rng.uniform(0.5, 1.1))
        cv2.circle(nuclei, tuple(center), radius, brightness, -1, cv2.LINE_8, shift=_SHIFT)
    signal = cv2.GaussianBlur(nuclei, (0, 0), sigmaX=rng.uniform(0.6, 1.2) * scale)

    # Unlabelled out-of-focus cells: as bright as dim nuclei, but with soft edges.
    haze = np.zeros(shape, np.float32)
    for _ in range(rng.integers(*_NUM_HAZE_BLOBS, endpoint=True)):
        center = tuple(int(v) for v in rng.uniform(0.0, image_size, size=2))
        axes = tuple(int(v) for v in rng.uniform(6.0, 14.0, size=2) * scale)
        angle = float(rng.uniform(0.0, 180.0))
        cv2.ellipse(haze, center, axes, angle, 0.0, 360.0, float(rng.uniform(0.15, 0.6)), -1)
    signal += cv2.GaussianBlur(haze, (0, 0), sigmaX=rng.uniform(2.5, 4.5) * scale)

    light, stray = _illumination(rng, image_size=image_size)
    background = rng.uniform(0.03, 0.2)
    intensity = rng.uniform(0.5, 1.5) * light * (background + signal) + stray

    # Camera noise, independent per colour channel: read noise plus signal-dependent shot noise.
    tint = np.array([0.35, 1.0, 0.8], np.float32) + rng.uniform(-0.1, 0.1, size=3).astype(np.float32)
    rgb = intensity[..., None] * tint
    noise_scale = rng.uniform(0.015, 0.04) + rng.uniform(0.02, 0.05) * np.sqrt(np.maximum(rgb, 0.0))
    rgb += noise_scale * rng.standard_normal((*shape, 3), dtype=np.float32)
    image = np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)
    mask = np.where(classes > 0, 255, 0).astype(np.uint8) if num_classes == 2 else classes
    return image, mask


def dataset_name(*, num_samples: int, image_size: int, num_classes: int = 2, seed: int = 0) -> str:
    """The folder name :func:`embedded_dataset` uses, e.g. ``synthetic_binary_512x128``.

    ``synthetic_3class_...`` for three classes; ``..._seed7`` is appended for a seed other than 0.
    """
    variant = "binary" if num_classes == 2 else f"{num_classes}class"
    suffix = f"_seed{seed}" if seed else ""
    return f"synthetic_{variant}_{num_samples}x{image_size}{suffix}"


def _is_whole_number(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_arguments(
    *, image_size: object, num_classes: object, seed: object, num_samples: object = 1
) -> None:
    """Raise a one-line :class:`UnetTutorialError` naming the first invalid argument."""
    if not _is_whole_number(num_samples) or num_samples < 1:
        raise UnetTutorialError(f"num_samples={num_samples!r}: give a whole number of images, 1 or more.")
    if not _is_whole_number(image_size) or image_size < MIN_IMAGE_SIZE:
        raise UnetTutorialError(
            f"image_size={image_size!r}: give a whole number of pixels, {MIN_IMAGE_SIZE} or more."
        )
    if not _is_whole_number(num_classes) or num_classes not in CLASS_NAMES:
        raise UnetTutorialError(
            f"num_classes={num_classes!r}: the synthetic dataset has {' or '.join(map(str, CLASS_NAMES))} "
            "classes (binary, or background / round / elongated)."
        )
    if not _is_whole_number(seed) or seed < 0:
        raise UnetTutorialError(f"seed={seed!r}: give a whole number, 0 or more.")


def _parameters(*, num_samples: int, image_size: int, num_classes: int, seed: int) -> dict:
    """What identifies a generated dataset: two folders with the same parameters hold the same files."""
    return {
        "generator": GENERATOR_NAME,
        "version": GENERATOR_VERSION,
        "num_samples": int(num_samples),
        "image_size": int(image_size),
        "num_classes": int(num_classes),
        "seed": int(seed),
    }


def _file_names(num_samples: int) -> list[str]:
    return [f"{index:04d}.png" for index in range(num_samples)]


def _dataset_files(num_samples: int) -> set[str]:
    """The relative paths of everything a complete dataset folder holds, folders included."""
    names = _file_names(num_samples)
    return {"images", "masks", METADATA_FILE} | {
        f"{part}/{name}" for part in ("images", "masks") for name in names
    }


def _contents(folder: Path) -> set[str]:
    return {path.relative_to(folder).as_posix() for path in folder.rglob("*")}


_PARTIAL_FILE = re.compile(r"images|masks|(images|masks)/\d{4,}\.png|" + re.escape(METADATA_FILE))


def _read_metadata(folder: Path) -> dict | None:
    """The folder's ``dataset.json`` if this module wrote it, else ``None``."""
    try:
        metadata = json.loads((folder / METADATA_FILE).read_text())
    except (OSError, ValueError):
        return None
    return metadata if isinstance(metadata, dict) and metadata.get("generator") == GENERATOR_NAME else None


def _is_our_incomplete_dataset(folder: Path, num_samples: int) -> bool:
    """Whether ``folder`` holds a dataset.json of ours and nothing but files of that dataset, some missing."""
    contents = _contents(folder)
    return _read_metadata(folder) is not None and contents < _dataset_files(num_samples)


def _write_png(path: Path, array: np.ndarray) -> None:
    # OpenCV stores colour as BGR; the arrays here are RGB.
    pixels = array[..., ::-1] if array.ndim == 3 else array
    if not cv2.imwrite(str(path), np.ascontiguousarray(pixels)):
        raise UnetTutorialError(f"Could not write {path}: check that the disk is not full and is writable.")


def generate_dataset(
    root: str | Path,
    *,
    num_samples: int,
    image_size: int = 256,
    num_classes: int = 2,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """Write the synthetic dataset into ``root`` and return ``root``; return at once if it is already there.

    Layout: ``root/images/0000.png ...`` (RGB, 8-bit, ``image_size`` x ``image_size``),
    ``root/masks/0000.png ...`` (8-bit grayscale, encoded as :data:`MASK_ENCODING` says) and
    ``root/dataset.json`` (the parameters, class names, mask encoding and measured class fractions).

    The files are written into a temporary sibling folder ``.<name>.partial`` that is renamed to ``root``
    when complete, so an interrupted run leaves no half dataset behind, and the next call starts over.

    Raises:
        UnetTutorialError: an argument is invalid, or ``root`` holds files this function did not write
            (or a synthetic dataset with other parameters). Nothing in such a folder is changed.
    """
    _check_arguments(num_samples=num_samples, image_size=image_size, num_classes=num_classes, seed=seed)
    root = Path(root).expanduser()
    parameters = _parameters(
        num_samples=num_samples, image_size=image_size, num_classes=num_classes, seed=seed
    )
    if root.exists():
        if not root.is_dir():
            raise UnetTutorialError(f"{root} is a file, not a folder: choose another folder for the dataset.")
        metadata = _read_metadata(root)
        if metadata is not None:
            found = {key: metadata.get(key) for key in parameters}
            if found != parameters:
                differences = ", ".join(
                    f"{key}={found[key]!r} (not {value!r})"
                    for key, value in parameters.items()
                    if found[key] != value
                )
                raise UnetTutorialError(
                    f"{root} holds a synthetic dataset with other parameters: {differences}; "
                    "delete that folder to replace it, or choose another folder."
                )
            if _contents(root) == _dataset_files(num_samples):
                return root
        if any(root.iterdir()) and not _is_our_incomplete_dataset(root, num_samples):
            raise UnetTutorialError(
                f"{root} already holds files that generate_dataset did not write; "
                "choose a new or empty folder (nothing in this one was changed)."
            )

    partial = root.with_name(f".{root.name}.partial")
    if partial.exists():
        if not partial.is_dir() or not all(_PARTIAL_FILE.fullmatch(name) for name in _contents(partial)):
            raise UnetTutorialError(
                f"{partial} holds files that generate_dataset did not write: move them away, then run again."
            )
        shutil.rmtree(partial)  # left over from an interrupted run
    (partial / "images").mkdir(parents=True)
    (partial / "masks").mkdir()

    pixels_per_class = np.zeros(num_classes, np.int64)
    names = _file_names(num_samples)
    for index in tqdm(range(num_samples), desc=f"Generating {root.name}", unit="image", disable=not progress):
        image, mask = make_sample(seed=seed, index=index, image_size=image_size, num_classes=num_classes)
        _write_png(partial / "images" / names[index], image)
        _write_png(partial / "masks" / names[index], mask)
        labels = mask // 255 if num_classes == 2 else mask
        pixels_per_class += np.bincount(labels.ravel(), minlength=num_classes)

    metadata = {
        **parameters,
        "class_names": list(CLASS_NAMES[num_classes]),
        "mask_encoding": MASK_ENCODING[num_classes],
        "image_encoding": "RGB PNG, 8 bits per channel",
        "class_fractions": [round(float(count), 4) for count in pixels_per_class / pixels_per_class.sum()],
    }
    (partial / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    if root.exists():
        # Checked again right before deleting: rmdir() refuses anything but an empty folder.
        shutil.rmtree(root) if _is_our_incomplete_dataset(root, num_samples) else root.rmdir()
    partial.rename(root)
    return root


def embedded_dataset(
    *, num_samples: int, image_size: int, num_classes: int = 2, seed: int = 0, progress: bool = True
) -> Path:
    """The synthetic dataset in the data folder, generated on first use and reused afterwards.

    The folder is ``config.data_dir() / dataset_name(...)``, e.g. ``data/synthetic_binary_512x128``.
    A call for a dataset that is already complete returns at once; an interrupted one is redone.

    Raises:
        UnetTutorialError: as :func:`generate_dataset`.
    """
    _check_arguments(num_samples=num_samples, image_size=image_size, num_classes=num_classes, seed=seed)
    name = dataset_name(num_samples=num_samples, image_size=image_size, num_classes=num_classes, seed=seed)
    return generate_dataset(
        config.data_dir() / name,
        num_samples=num_samples,
        image_size=image_size,
        num_classes=num_classes,
        seed=seed,
        progress=progress,
    )


def main(argv: list[str] | None = None) -> int:
    """Generate a dataset from the command line and print its folder; exit 2, with one line, on an error."""
    parser = ArgumentParser(
        prog="python -m unet_helpers.synthetic",
        description="Write the synthetic microscopy dataset (images/, masks/, dataset.json) into a folder.",
    )
    parser.add_argument("--out", required=True, type=Path, help="the folder to create")
    parser.add_argument("--num-samples", required=True, type=int, help="how many images")
    parser.add_argument("--image-size", type=int, default=256, help="height and width in pixels (256)")
    parser.add_argument("--num-classes", type=int, default=2, help="2 (binary) or 3 (round / elongated)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    arguments = parser.parse_args(argv)
    try:
        root = generate_dataset(
            arguments.out,
            num_samples=arguments.num_samples,
            image_size=arguments.image_size,
            num_classes=arguments.num_classes,
            seed=arguments.seed,
            progress=not arguments.quiet,
        )
    except UnetTutorialError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
