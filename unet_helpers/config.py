"""Profiles: one setting that picks the size of every run in the series.

``smoke``     CI and quick checks: tiny images, model and data; every notebook runs in seconds.
``workshop``  a 2-core laptop CPU: a few minutes per notebook, results that look right.
``full``      a GPU: the classic model width and real training.

The profile comes from the ``UNET_PROFILE`` environment variable; without it, ``smoke`` when the ``CI``
variable is set (to anything but ``""``, ``0`` or ``false``), else ``full`` when TensorFlow sees a GPU,
else ``workshop``. Notebooks call :func:`get_profile` and read every size from it, so that no size is
written down twice.

Run ``python -m unet_helpers.config`` to see the active profile and why it was chosen.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from unet_helpers import devices
from unet_helpers.errors import UnetTutorialError

PROFILE_VARIABLE = "UNET_PROFILE"
DATA_DIR_VARIABLE = "UNET_DATA_DIR"


@dataclass(frozen=True)
class Profile:
    """Every size a notebook uses, for one profile.

    Attributes:
        name: ``"smoke"``, ``"workshop"`` or ``"full"``.
        description: what the profile is for, in a few words.
        image_size: height and width, in pixels, that images are resized to; a multiple of 2**3 so
            that the UNet's three poolings divide it evenly.
        batch_size: images per training step.
        epochs: passes over the training set.
        num_samples: images in the generated dataset (training and validation together); the embedded
            nuclei (``datasets.nuclei()``) are used whole in every profile.
        base_filters: the model width: filters of the first encoder level (64 in the classic UNet),
            doubled at each level below it.
        time_limit: minutes that notebook 04's training may take (``train_unet(time_limit=...)``): it
            stops after ``epochs`` or when another epoch would not end in time, whichever comes first, so
            that a slow laptop still finishes within a workshop's slot; None: only ``epochs`` decides.
        augment: whether training augments its images (``data.load_splits(augment=...)``, the command
            line's default). Off where training lasts minutes: there the network is still learning the
            data it has, and augmentation slowed it on both real datasets measured (the README's "The
            training recipe"); on for the long runs of ``full``, where it keeps the network from
            memorising a few hundred images.
    """

    name: str
    description: str
    image_size: int
    batch_size: int
    epochs: int
    num_samples: int
    base_filters: int
    time_limit: float | None
    augment: bool


PROFILES: dict[str, Profile] = {
    profile.name: profile
    for profile in (
        Profile(
            name="smoke",
            description="CI and quick checks: seconds per notebook",
            image_size=64,
            batch_size=8,
            epochs=1,
            num_samples=32,
            base_filters=8,
            time_limit=None,
            augment=False,
        ),
        Profile(
            name="workshop",
            description="a 2-core laptop CPU: a few minutes per notebook",
            image_size=128,
            batch_size=16,
            epochs=20,
            num_samples=512,
            base_filters=16,
            time_limit=6,
            augment=False,
        ),
        Profile(
            name="full",
            description="a GPU: the classic model width and real training",
            image_size=256,
            batch_size=16,
            epochs=50,
            num_samples=2000,
            base_filters=64,
            time_limit=None,
            augment=True,
        ),
    )
}


def _ci_is_set() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def gpu_is_visible() -> bool:
    """Whether TensorFlow sees at least one GPU (imports TensorFlow, which takes a few seconds)."""
    return bool(devices.gpus())


def resolve_profile_name() -> tuple[str, str]:
    """Return ``(name, reason)``: the active profile's name and why it was chosen.

    Raises:
        UnetTutorialError: ``UNET_PROFILE`` names no profile (the message lists the valid ones).
    """
    requested = os.environ.get(PROFILE_VARIABLE, "").strip()
    if requested:
        name = requested.lower()
        if name not in PROFILES:
            raise UnetTutorialError(
                f"{PROFILE_VARIABLE}={requested!r} is not a profile; "
                f"set it to one of: {', '.join(PROFILES)} (or unset it to pick one automatically)."
            )
        return name, f"set by {PROFILE_VARIABLE}"
    if _ci_is_set():
        return "smoke", "CI is set"
    if gpu_is_visible():
        return "full", "a GPU is visible"
    return "workshop", "no GPU is visible"


def get_profile(name: str | None = None) -> Profile:
    """Return the profile called ``name``, or the active one (see the module docstring) if ``None``.

    Raises:
        UnetTutorialError: the name (given or from ``UNET_PROFILE``) is not a profile.
    """
    if name is None:
        name, _ = resolve_profile_name()
    profile = PROFILES.get(name.strip().lower())
    if profile is None:
        raise UnetTutorialError(f"{name!r} is not a profile; choose one of: {', '.join(PROFILES)}.")
    return profile


def in_colab() -> bool:
    """Whether this Python runs in Google Colab."""
    return "google.colab" in sys.modules


def project_root() -> Path | None:
    """The checkout this package was installed from (with ``pip install -e``), or ``None``."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() and (root / "notebooks").is_dir() else None


def data_dir() -> Path:
    """The folder that datasets are generated, downloaded and cached in.

    ``$UNET_DATA_DIR`` if set; else ``/content/data`` in Colab (the runtime's disk, lost when the
    runtime is recycled); else ``data/`` in the project checkout; else ``~/unet-tutorial-data``.
    The folder is not created here.
    """
    if os.environ.get(DATA_DIR_VARIABLE):
        return Path(os.environ[DATA_DIR_VARIABLE]).expanduser()
    if in_colab():
        return Path("/content/data")
    root = project_root()
    if root is not None:
        return root / "data"
    return Path.home() / "unet-tutorial-data"


def profile_table() -> str:
    """All profiles as a plain-text table, one row per profile and one column per size."""
    columns = [field.name for field in fields(Profile) if field.name != "description"]
    rows = [[str(asdict(profile)[column]) for column in columns] for profile in PROFILES.values()]
    widths = [max(len(column), *(len(row[i]) for row in rows)) for i, column in enumerate(columns)]
    lines = ["  ".join(column.ljust(width) for column, width in zip(columns, widths, strict=True))]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def main() -> int:
    """Print the active profile, why it was chosen, and all profiles; exit 2 on a bad ``UNET_PROFILE``."""
    try:
        name, reason = resolve_profile_name()
    except UnetTutorialError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"Active profile: {name} ({reason}): {PROFILES[name].description}")
    print(f"Data folder:    {data_dir()}")
    print(f"Change it with: export {PROFILE_VARIABLE}=smoke|workshop|full\n")
    print(profile_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
