"""Check every image/mask pair of a dataset once, and remember what was found in a file next to the data.

Opening every file of a dataset takes seconds to minutes (18 s for 664 nuclei images of mixed sizes) and
would be paid again in every new kernel. :func:`inspect_pairs` keeps each pair's
:class:`~unet_helpers.images.PairReport` in a cache file and opens again only the pairs whose files changed.

Where: ``root/.unet_helpers_scan.json`` (hidden, so the pairing skips it). When that cannot be written (a
read-only folder), and for the folders the package manages (its embedded data, shipped in the wheel; the
datasets it generates and downloads into ``config.data_dir()``, whose contents it checks file by file), a
file named after the root and a hash of its resolved path in ``config.data_dir()/.scan_cache/``. To check
every file again, delete that file.

When a report is reused: only when the image and the mask have the same paths (relative to the root),
sizes and modification times (``st_mtime_ns``) as when they were inspected. Files modified less than
``SETTLE_SECONDS`` before a scan are inspected but not remembered: a file rewritten at the same size within
one tick of the file system's clock would keep its modification time, and with it its old report. Failures
are never remembered, so a broken pair raises the same error on every scan.

The file is JSON: ``{"format": FORMAT, "version": VERSION, "root": "<resolved root>", "pairs": [...]}``,
one object per pair with ``image``, ``image_size``, ``image_mtime_ns``, ``mask``, ``mask_size``,
``mask_mtime_ns`` and the report's fields (``values`` as a sorted list). It is replaced atomically (a
temporary file, then ``os.replace``); a file that is not this format and version, or does not parse, is
ignored and rewritten.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from tqdm.auto import tqdm

from unet_helpers import config
from unet_helpers import images as image_files

CACHE_NAME = ".unet_helpers_scan.json"
FALLBACK_FOLDER = ".scan_cache"
FORMAT = "unet_helpers scan cache"
# Bump whenever images.inspect_pair reports differently on the same files: older caches are then ignored.
VERSION = 1
# FAT stores modification times in steps of 2 s, the coarsest clock of the file systems in common use.
SETTLE_SECONDS = 2.0
# Never written into: the package's embedded data is installed with it (and is part of the checkout).
PACKAGE_FOLDER = Path(__file__).resolve().parent
# A progress bar from this many pairs to inspect on.
PROGRESS_MIN_PAIRS = 64

# A file as the cache knows it: (path relative to the root, size in bytes, st_mtime_ns).
FileKey = tuple[str, int, int]
# A pair's name in the cache: (image path, mask path), both relative to the root.
PairName = tuple[str, str]

# Roots whose cache could not be written, said once per process rather than on every scan.
_unsaved_roots: set[Path] = set()


@dataclass(frozen=True)
class Entry:
    """One pair's report and the keys of the files it was made from."""

    image: FileKey
    mask: FileKey
    report: image_files.PairReport


def _relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root``, with ``/``; absolute where there is no relative path (another drive)."""
    text, prefix = str(path), os.path.join(str(root), "")
    if text.startswith(prefix):  # the usual case (``root / folder / name``): 10 times faster than relpath
        return text[len(prefix) :].replace(os.sep, "/")
    try:
        return Path(os.path.relpath(path, root)).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def file_key(path: Path, name: str) -> FileKey | None:
    """The key of the file at ``path``, called ``name`` (relative to the root) in the cache; None when it
    cannot be read (nothing is then reused)."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return name, stat.st_size, stat.st_mtime_ns


def cache_files(root: Path) -> list[Path]:
    """The cache files of ``root``, in order of preference: read from the first valid one, written to the
    first that accepts it."""
    resolved = root.resolve()
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:16]
    fallback = config.data_dir() / FALLBACK_FOLDER / f"{resolved.name}-{digest}.json"
    # synthetic.generate_dataset reuses a folder only if it holds exactly the files it wrote.
    managed = (PACKAGE_FOLDER, config.data_dir().resolve())
    if any(resolved == folder or folder in resolved.parents for folder in managed):
        return [fallback]
    return [root / CACHE_NAME, fallback]


def _entry_from_json(item: dict) -> Entry:
    """An entry of the file; raises ValueError, KeyError or TypeError on anything else."""
    image = (item["image"], item["image_size"], item["image_mtime_ns"])
    mask = (item["mask"], item["mask_size"], item["mask_mtime_ns"])
    flags = (item["image_via_python"], item["mask_via_python"], item["rgb_mask"])
    values = item["values"]
    # Sets of types rather than all(isinstance(...)): this runs for every pair of every scan.
    if not (
        isinstance(image[0], str)
        and isinstance(mask[0], str)
        and isinstance(values, list)
        and {type(number) for number in (*image[1:], *mask[1:], *values)} <= {int}
        and {type(flag) for flag in flags} == {bool}
    ):
        raise ValueError("not a scan cache entry")
    report = image_files.PairReport(
        image_via_python=flags[0], mask_via_python=flags[1], values=frozenset(values), rgb_mask=flags[2]
    )
    return Entry(image=image, mask=mask, report=report)


def _entry_to_json(entry: Entry) -> dict:
    item: dict = {}
    for role, (path, size, mtime_ns) in (("image", entry.image), ("mask", entry.mask)):
        item |= {role: path, f"{role}_size": size, f"{role}_mtime_ns": mtime_ns}
    report = entry.report
    return item | {
        "image_via_python": report.image_via_python,
        "mask_via_python": report.mask_via_python,
        "rgb_mask": report.rgb_mask,
        "values": sorted(report.values),
    }


def load(root: Path) -> dict[PairName, Entry]:
    """The entries of the first valid cache file of ``root``; none if there is none (missing, unreadable,
    corrupt, another format or version: the pairs are then inspected again)."""
    for path in cache_files(root):
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
            if content["format"] != FORMAT or content["version"] != VERSION:
                continue
            # A fallback file is named by a hash: make sure it is this root's.
            if path.name != CACHE_NAME and content["root"] != str(root.resolve()):
                continue
            entries = [_entry_from_json(item) for item in content["pairs"]]
        except (OSError, ValueError, KeyError, TypeError):  # JSON and Unicode errors are ValueErrors
            continue
        return {(entry.image[0], entry.mask[0]): entry for entry in entries}
    return {}


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder, so that readers see the old
    file or the new one, never a part. Without fsync: after a crash the file may be empty, which only costs
    a scan."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        # mkstemp makes it private; others who may read the dataset may read what it holds.
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def save(root: Path, entries: dict[PairName, Entry]) -> Path | None:
    """Write the cache of ``root`` to the first of :func:`cache_files` that accepts it; return that file, or
    None (with one short warning per root and process) when none does."""
    text = json.dumps(
        {
            "format": FORMAT,
            "version": VERSION,
            "root": str(root.resolve()),
            "pairs": [_entry_to_json(entry) for entry in entries.values()],
        },
        separators=(",", ":"),
    )
    error: OSError | None = None
    for path in cache_files(root):
        try:
            _write_atomically(path, text)
            return path
        except OSError as failure:
            error = failure
    if root.resolve() not in _unsaved_roots:
        _unsaved_roots.add(root.resolve())
        warnings.warn(f"the dataset check is not cached ({error}): each scan reads every file.", stacklevel=3)
    return None


def _inspect_or_fail(pair: tuple[Path, Path]) -> image_files.PairReport | Exception:
    """The report of one pair, or what inspecting it raised (raised again once the good reports are saved)."""
    try:
        return image_files.inspect_pair(*pair)
    except Exception as error:
        return error


def _inspect(
    files: list[tuple[Path, Path]], *, progress: bool, cached: int
) -> list[image_files.PairReport | Exception]:
    """Inspect ``files`` in threads, in order, with a progress bar that says how many pairs were cached."""
    if not files:
        return []
    new = f"{len(files):,} new" if cached else f"{len(files):,}"
    desc = f"Checking {new} image/mask pairs" + (f" ({cached:,} cached)" if cached else "")
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return list(
            tqdm(
                pool.map(_inspect_or_fail, files),
                total=len(files),
                desc=desc,
                disable=not progress or len(files) < PROGRESS_MIN_PAIRS,
                unit="pair",
            )
        )


def _still_valid(old: dict[PairName, Entry], root: Path, skip: set[PairName]) -> dict[PairName, Entry]:
    """The entries of ``old`` (other than ``skip``) whose files are unchanged: kept for scans of the same
    root with other folders or suffixes; those of files changed or gone are dropped."""
    return {
        name: entry
        for name, entry in old.items()
        if name not in skip
        and file_key(root / entry.image[0], entry.image[0]) == entry.image
        and file_key(root / entry.mask[0], entry.mask[0]) == entry.mask
    }


def inspect_pairs(
    files: list[tuple[Path, Path]], *, root: Path, progress: bool = True
) -> list[image_files.PairReport]:
    """:func:`unet_helpers.images.inspect_pair` of every ``(image, mask)`` pair, in the order given: reused
    from the cache of ``root`` where both files are unchanged, inspected (in threads) otherwise.

    Raises:
        UnetTutorialError: what :func:`~unet_helpers.images.inspect_pair` raised for the first broken pair,
            after the cache has kept the reports of the others.
    """
    settled_before = time.time_ns() - int(SETTLE_SECONDS * 1e9)
    names = [(_relative(image, root), _relative(mask, root)) for image, mask in files]
    keys = [
        (file_key(image, image_name), file_key(mask, mask_name))
        for (image, mask), (image_name, mask_name) in zip(files, names, strict=True)
    ]
    old = load(root)
    reports: list[image_files.PairReport | Exception | None] = []
    for name, (image_key, mask_key) in zip(names, keys, strict=True):
        entry = old.get(name)
        hit = entry is not None and (entry.image, entry.mask) == (image_key, mask_key)
        reports.append(entry.report if hit else None)
    missing = [index for index, report in enumerate(reports) if report is None]
    cached = len(files) - len(missing)
    inspected = _inspect([files[index] for index in missing], progress=progress, cached=cached)
    for index, report in zip(missing, inspected, strict=True):
        reports[index] = report

    entries = _still_valid(old, root, skip=set(names))
    for name, (image_key, mask_key), report in zip(names, keys, reports, strict=True):
        if (
            isinstance(report, image_files.PairReport)
            and image_key is not None
            and mask_key is not None
            and max(image_key[2], mask_key[2]) < settled_before
        ):
            entries[name] = Entry(image_key, mask_key, report)
    if entries != old:
        save(root, entries)
    for report in reports:
        if isinstance(report, Exception):
            raise report
    return cast("list[image_files.PairReport]", reports)  # neither None nor an Exception is left
