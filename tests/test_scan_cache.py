"""The dataset check's cache on disk: reused while nothing changed, redone for exactly what changed.

Files younger than ``scan_cache.SETTLE_SECONDS`` are not cached, so the tests date the files they write an
hour back (:func:`age`), as files are that were downloaded or unpacked before a notebook runs.
"""

import json
import os
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unet_helpers import config, data, images, scan_cache, synthetic
from unet_helpers.errors import UnetTutorialError

SIZE = 8
# One time for every aged file, so that ageing a file again leaves it unchanged in the cache's eyes.
AN_HOUR_AGO = time.time_ns() - 3600 * 10**9


def write_pair(root: Path, stem: str, values: tuple[int, ...] = (0, 1), *, seed: int = 0) -> None:
    """An 8x8 RGB PNG and its 8-bit mask holding ``values`` in stripes."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).save(
        root / "images" / f"{stem}.png"
    )
    write_mask(root / "masks" / f"{stem}.png", values)


def write_mask(path: Path, values: tuple[int, ...]) -> None:
    mask = np.resize(np.array(values, np.uint8), SIZE * SIZE).reshape(SIZE, SIZE)
    Image.fromarray(mask).save(path)


def dataset(root: Path, stems: str = "abcd") -> Path:
    for index, stem in enumerate(stems):
        write_pair(root, stem, seed=index)
    return age(root)


def age(path: Path, mtime_ns: int = AN_HOUR_AGO) -> Path:
    """Set the modification time of the file ``path``, or of every file under the folder ``path``."""
    for file in [path] if path.is_file() else path.rglob("*"):
        if file.is_file():
            os.utime(file, ns=(mtime_ns, mtime_ns))
    return path


@pytest.fixture
def inspected(monkeypatch) -> list[str]:
    """The image names that ``images.inspect_pair`` opens, in the order it opens them (threads aside)."""
    names: list[str] = []
    inspect_pair = images.inspect_pair

    def counting(image_path: Path, mask_path: Path) -> images.PairReport:
        names.append(image_path.stem)
        return inspect_pair(image_path, mask_path)

    monkeypatch.setattr(images, "inspect_pair", counting)
    return names


def scan(root: Path, **options) -> data.DatasetScan:
    return data.scan_dataset(root, progress=False, **options)


def cached_names(path: Path) -> set[str]:
    return {Path(item["image"]).stem for item in json.loads(path.read_text())["pairs"]}


def fallback_files() -> list[Path]:
    return sorted((config.data_dir() / scan_cache.FALLBACK_FOLDER).glob("*.json"))


def test_the_second_scan_opens_no_file_and_finds_the_same(tmp_path, inspected):
    root = tmp_path / "cells"
    for index, stem in enumerate("abc"):
        write_pair(root, stem, (0, 1, 2), seed=index)
    # Every field of a report round trip: a palette mask (read with PIL), a TIFF image (read with OpenCV).
    Image.fromarray(np.array([[0, 1], [2, 1]] * 4, np.uint8).repeat(4, axis=1), mode="P").save(
        root / "masks" / "b.png"
    )
    Image.open(root / "images" / "c.png").save(root / "images" / "c.tif")
    (root / "images" / "c.png").unlink()
    age(root)

    first = scan(root, num_classes=3)
    assert sorted(inspected) == ["a", "b", "c"]
    assert (root / scan_cache.CACHE_NAME).is_file() and fallback_files() == []
    inspected.clear()
    second = scan(root, num_classes=3)
    assert inspected == [], "every report comes from the cache"
    assert second == first
    assert [(pair.image_via_python, pair.mask_via_python) for pair in first.pairs] == [
        (False, False),
        (False, True),
        (True, False),
    ]
    assert first.stored_values == (0, 1, 2)


@pytest.mark.parametrize("role", ["mask", "image"])
def test_a_changed_file_is_inspected_again_alone(tmp_path, inspected, role):
    root = dataset(tmp_path)
    scan(root)
    inspected.clear()
    changed = root / f"{role}s" / "c.png"
    if role == "mask":
        write_mask(changed, (0, 2))  # still 8x8, other values: 2 is no class of a binary mask
    else:
        Image.open(changed).save(changed, format="TIFF")  # read with OpenCV from now on
    with pytest.raises(UnetTutorialError, match=r"c\.png") if role == "mask" else nullcontext():
        scan(root)
    assert inspected == ["c"]

    age(changed, AN_HOUR_AGO + 10**9)  # another time than the cached one, and old enough to be cached
    inspected.clear()
    found = scan(root, num_classes=3)
    assert inspected == ["c"]
    if role == "mask":
        assert found.stored_values == (0, 1, 2)
    else:
        assert [pair.image_via_python for pair in found.pairs] == [False, False, True, False]
    inspected.clear()
    assert scan(root, num_classes=3) == found and inspected == []


def test_the_same_folder_named_another_way_uses_the_same_cache(tmp_path, inspected, monkeypatch):
    root = dataset(tmp_path / "cells")
    first = scan(root)
    (tmp_path / "link").symlink_to(root)
    monkeypatch.chdir(tmp_path)
    inspected.clear()
    assert [scan(Path(name)).stored_values for name in ("cells", "link", "link/../cells")] == [(0, 1)] * 3
    assert scan(root) == first and inspected == []


def test_a_file_rewritten_within_a_clock_tick_is_not_mistaken_for_the_old_one(tmp_path, inspected):
    """Fresh files are inspected on every scan until they are SETTLE_SECONDS old: a mask rewritten at the same
    size and within the same tick of the file system's clock looks unchanged to a stat."""
    root = tmp_path
    for stem in "ab":
        write_pair(root, stem)
    assert scan(root).stored_values == (0, 1)
    mask = root / "masks" / "b.png"
    before = mask.stat()
    write_mask(mask, (0, 2))
    os.utime(mask, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert mask.stat().st_size == before.st_size, "the test needs a rewrite that a stat cannot see"
    inspected.clear()
    assert scan(root, num_classes=3).stored_values == (0, 1, 2)
    assert sorted(inspected) == ["a", "b"]


def test_added_pairs_are_inspected_and_removed_ones_dropped_from_the_cache(tmp_path, inspected):
    root = dataset(tmp_path)
    scan(root)
    write_pair(root, "e", seed=9)
    age(root / "images" / "e.png")
    age(root / "masks" / "e.png")
    for folder in ("images", "masks"):
        (root / folder / "a.png").unlink()
    inspected.clear()
    found = scan(root)
    assert inspected == ["e"]
    assert [pair.image.stem for pair in found.pairs] == ["b", "c", "d", "e"]
    assert cached_names(root / scan_cache.CACHE_NAME) == {"b", "c", "d", "e"}


def test_entries_of_another_pairing_of_the_same_root_are_kept_while_their_files_are(tmp_path, inspected):
    root = dataset(tmp_path, stems="ab")
    (root / "labels").mkdir()
    for stem in "ab":
        write_mask(root / "labels" / f"{stem}.png", (0, 255))
    age(root / "labels")
    scan(root)
    scan(root, masks="labels")
    inspected.clear()
    scan(root)
    scan(root, masks="labels")
    assert inspected == [], "neither folder's reports push out the other's"


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b'{"format": "unet_helpers scan cache", "pairs": [',
        b"\xff\xfe\x00",
        b"[]",
        b"null",
        "version",
        "values",
    ],
)
def test_a_corrupt_or_other_version_cache_is_ignored_and_replaced(tmp_path, inspected, content):
    root = dataset(tmp_path)
    first = scan(root)
    cache = root / scan_cache.CACHE_NAME
    if isinstance(content, str):  # a valid file with one field changed: another version, or a wrong type
        written = json.loads(cache.read_text())
        written[content] = written["version"] + 1 if content == "version" else None
        if content == "values":
            written["pairs"][0]["values"] = ["0", "1"]
        cache.write_text(json.dumps(written))
    else:
        cache.write_bytes(content)
    inspected.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert scan(root) == first
    assert sorted(inspected) == ["a", "b", "c", "d"]
    inspected.clear()
    assert scan(root) == first and inspected == [], "the cache was written again"


def test_failures_are_not_cached_but_the_other_pairs_are(tmp_path, inspected):
    root = dataset(tmp_path, stems="abc")
    image = root / "images" / "b.png"
    image.write_bytes(image.read_bytes()[:40])  # truncated
    age(image)
    for _ in range(2):
        with pytest.raises(UnetTutorialError, match=r"cannot read .*b\.png"):
            scan(root)
    assert sorted(inspected) == ["a", "b", "b", "c"], "b again, a and c from the cache"
    assert cached_names(root / scan_cache.CACHE_NAME) == {"a", "c"}
    write_pair(root, "b", seed=1)
    age(root / "images" / "b.png")
    inspected.clear()
    assert len(scan(root).pairs) == 3 and inspected == ["b"]


def test_a_read_only_root_is_cached_in_the_data_folder(tmp_path, inspected, monkeypatch):
    """A read-only dataset folder (a mount, a shared drive), simulated: chmod cannot stop root, which CI
    runs as, so the file system's refusal is what this test makes, for that folder only."""
    root = dataset(tmp_path / "ro")
    make_temporary_file = scan_cache.tempfile.mkstemp

    def read_only_root(*args, dir, **kwargs):
        if Path(dir).resolve() == root.resolve():
            raise PermissionError(30, "Read-only file system", str(dir))
        return make_temporary_file(*args, dir=dir, **kwargs)

    monkeypatch.setattr(scan_cache.tempfile, "mkstemp", read_only_root)
    first = scan(root)
    inspected.clear()
    assert scan(root) == first and inspected == []
    assert not (root / scan_cache.CACHE_NAME).exists()
    assert len(fallback_files()) == 1 and cached_names(fallback_files()[0]) == set("abcd")


def test_a_root_that_refuses_the_cache_file_is_cached_in_the_data_folder_and_left_alone(tmp_path, inspected):
    """Anything in the cache's place that is not a cache (here a folder) stays as it is."""
    root = dataset(tmp_path)
    (root / scan_cache.CACHE_NAME).mkdir()
    (root / scan_cache.CACHE_NAME / "keep.txt").write_text("mine")
    first = scan(root)
    inspected.clear()
    assert scan(root) == first and inspected == []
    assert (root / scan_cache.CACHE_NAME / "keep.txt").read_text() == "mine"
    assert sorted(path.name for path in root.iterdir()) == [scan_cache.CACHE_NAME, "images", "masks"]
    [fallback] = fallback_files()
    assert fallback.name.startswith(f"{root.name}-")
    assert json.loads(fallback.read_text())["root"] == str(root.resolve())


def test_a_fallback_file_is_used_for_its_own_root_only(tmp_path, inspected):
    """Fallback files are named by a hash of the root: one found under another root's name is not used."""
    roots = [tmp_path / "one", tmp_path / "two"]
    for root in roots:
        dataset(root)
        (root / scan_cache.CACHE_NAME).mkdir()  # both are cached in the data folder
    scan(roots[0])
    [first_file] = fallback_files()
    second_file = scan_cache.cache_files(roots[1])[-1]
    second_file.write_bytes(first_file.read_bytes())  # the same names, sizes and times: only "root" differs
    inspected.clear()
    scan(roots[1])
    assert sorted(inspected) == ["a", "b", "c", "d"]


def test_the_packages_own_data_is_cached_in_the_data_folder(tmp_path, inspected, monkeypatch):
    monkeypatch.setattr(scan_cache, "PACKAGE_FOLDER", tmp_path / "unet_helpers")
    root = dataset(tmp_path / "unet_helpers" / "embedded" / "cells")
    first = scan(root)
    inspected.clear()
    assert scan(root) == first and inspected == []
    assert sorted(path.name for path in root.iterdir()) == ["images", "masks"]
    assert len(fallback_files()) == 1


def test_datasets_in_the_data_folder_are_cached_beside_them_and_still_reused(inspected):
    """synthetic.generate_dataset reuses a folder that holds exactly its files: the next kernel's call must
    not find a cache file inside it."""
    root = age(synthetic.embedded_dataset(num_samples=4, image_size=32, progress=False))
    first = scan(root)
    assert sorted(path.name for path in root.iterdir()) == ["dataset.json", "images", "masks"]
    assert synthetic.embedded_dataset(num_samples=4, image_size=32, progress=False) == root
    inspected.clear()
    assert scan(root) == first and inspected == []
    assert len(fallback_files()) == 1


def test_a_failed_write_keeps_the_old_cache_whole_and_says_so_once(tmp_path, inspected, monkeypatch):
    root = dataset(tmp_path)
    scan(root)
    old = (root / scan_cache.CACHE_NAME).read_bytes()
    write_pair(root, "e", seed=9)
    age(root)

    def no_space(source, destination):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(scan_cache.os, "replace", no_space)
    inspected.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            assert len(scan(root).pairs) == 5
    assert [str(warning.message) for warning in caught] == [
        "the dataset check is not cached ([Errno 28] No space left on device): each scan reads every file."
    ]
    assert (root / scan_cache.CACHE_NAME).read_bytes() == old
    assert sorted(path.name for path in root.iterdir()) == [scan_cache.CACHE_NAME, "images", "masks"]
    assert not list(config.data_dir().rglob("*.tmp"))
    assert inspected == ["e", "e"], "the old cache is still used"


def test_the_progress_bar_counts_the_pairs_inspected_and_says_how_many_were_cached(
    tmp_path, monkeypatch, capsys
):
    root = dataset(tmp_path)
    monkeypatch.setattr(scan_cache, "PROGRESS_MIN_PAIRS", 1)
    data.scan_dataset(root)
    assert "Checking 4 image/mask pairs: 100%" in capsys.readouterr().err
    write_pair(root, "e", seed=9)
    age(root)
    data.scan_dataset(root)
    assert "Checking 1 new image/mask pairs (4 cached): 100%" in capsys.readouterr().err
    data.scan_dataset(root)
    assert capsys.readouterr().err == "", "nothing to inspect, nothing to show"
