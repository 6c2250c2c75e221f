"""The embedded real nuclei (``datasets.nuclei()``): offline, complete, consistent, and inside the wheel.

These read the copy that ships in ``unet_helpers/embedded/dsb2018_nuclei/``, never ``../shared``.
"""

from __future__ import annotations

import csv
import shutil
import socket
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unet_helpers import data, datasets
from unet_helpers.errors import UnetTutorialError

PROJECT = Path(__file__).resolve().parent.parent
EXPECTED_KINDS = {"fluorescence": 231, "tissue": 45, "brightfield": 13}


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the embedded nuclei must load without the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def manifest() -> list[dict[str, str]]:
    with (datasets.nuclei() / "manifest.csv").open(newline="") as file:
        return list(csv.DictReader(file))


def test_embedded_nuclei_load_without_the_network(no_network):
    root = datasets.nuclei()
    assert root == datasets.NUCLEI_ROOT and root.is_relative_to(PROJECT / "unet_helpers")
    everything = data.load_dataset(
        root, image_size=64, batch_size=None, split="all", progress=False, **datasets.NUCLEI.as_kwargs()
    )
    pairs = [(image.numpy(), mask.numpy()) for image, mask in everything]
    assert len(pairs) == sum(EXPECTED_KINDS.values())
    images, masks = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
    assert images.shape[1:] == (64, 64, 3) and masks.shape[1:] == (64, 64, 1)
    assert set(np.unique(masks).tolist()) == {0.0, 1.0}
    assert 0.05 < masks.mean() < 0.4  # nuclei are about an eighth to a quarter of the pixels
    assert all(mask.any() for mask in masks)  # every image holds at least one nucleus


def test_every_kind_is_there_and_every_split_holds_each_kind():
    root = datasets.nuclei()
    names = [path.stem for path in sorted((root / "images").glob("*.png"))]
    assert Counter(datasets.nuclei_kind(name) for name in names) == EXPECTED_KINDS
    scan = data.scan_dataset(root, progress=False)
    for split in ("train", "validation"):
        kinds = {datasets.nuclei_kind(pair.image) for pair in data.split_pairs(scan.pairs, split=split)}
        assert kinds == set(datasets.NUCLEI_KINDS), split


def test_masks_are_the_union_of_the_instances_and_the_manifest_agrees():
    root = datasets.nuclei()
    rows = {row["name"]: row for row in manifest()}
    files = [path for path in sorted((root / "images").glob("*.png"))]
    files += sorted((root / "large" / "images").glob("*.png"))
    assert len(rows) == len(files)
    for image_path in files:
        folder = image_path.parent.parent
        name = image_path.stem if folder == root else f"{folder.name}/{image_path.stem}"
        row = rows[name]
        image = Image.open(image_path)
        mask = np.array(Image.open(folder / "masks" / image_path.name))
        instances = np.array(Image.open(folder / "instances" / image_path.name))
        assert image.mode == ("RGB" if row["kind"] == "tissue" else "L"), name
        assert (
            image.size == mask.shape[::-1] == instances.shape[::-1] == (int(row["width"]), int(row["height"]))
        )
        assert instances.dtype == np.uint16 or instances.dtype == np.int32, name  # 16-bit PNG
        assert np.array_equal(mask, np.where(instances > 0, 255, 0)), name
        labels = np.unique(instances[instances > 0])
        assert np.array_equal(labels, np.arange(1, int(row["nuclei"]) + 1)), name  # 1..N, none missing
        assert row["kind"] == datasets.nuclei_kind(image_path)
    source_ids = [row["source_id"] for row in rows.values()]
    assert len(set(source_ids)) == len(source_ids)  # no two files from one source image


def test_the_large_image_is_whole_and_kept_out_of_the_training_images():
    rows = manifest()
    (large,) = (row for row in rows if row["name"].startswith("large/"))
    assert (int(large["width"]), int(large["height"])) == (696, 520) and int(large["nuclei"]) > 300
    others = [row for row in rows if row is not large]
    assert len(others) == sum(EXPECTED_KINDS.values())
    assert large["source_id"] not in {row["source_id"] for row in others}


def test_provenance_license_and_citation_ship_with_the_data():
    readme = (datasets.nuclei() / "README.md").read_text()
    for text in ("CC0", "2018 Data Science Bowl", "Caicedo et al.", "Nature Methods", "BBBC038", "lopuhin"):
        assert text in readme, text
    assert "tools/make_nuclei_subset.py" in readme


def test_nuclei_kind_and_a_missing_installation_say_what_to_do(tmp_path, monkeypatch):
    assert datasets.nuclei_kind("tissue_0a1b2c3d.png") == "tissue"
    with pytest.raises(UnetTutorialError, match="does not start with a kind"):
        datasets.nuclei_kind("cell_07.png")
    monkeypatch.setattr(datasets, "NUCLEI_ROOT", tmp_path / "nowhere")
    with pytest.raises(UnetTutorialError, match="reinstall"):
        datasets.nuclei()


def test_the_wheel_carries_the_embedded_nuclei(tmp_path):
    """What `pip install git+...` (Colab's setup cell) installs: the wheel built from the checkout.

    Built from a copy, because setuptools writes build/ and *.egg-info/ into the folder it builds.
    """
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT / name, source / name)
    shutil.copytree(
        PROJECT / "unet_helpers", source / "unet_helpers", ignore=shutil.ignore_patterns("__pycache__")
    )
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path), "--quiet"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("unet_helpers-*.whl")
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    shipped = {
        path.relative_to(PROJECT).as_posix() for path in datasets.NUCLEI_ROOT.rglob("*") if path.is_file()
    }
    assert len(shipped) == 3 * (sum(EXPECTED_KINDS.values()) + 1) + 2
    assert shipped <= in_wheel, sorted(shipped - in_wheel)[:5]
