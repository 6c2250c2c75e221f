"""Which pairs of a dataset train, validate and test: a seeded split, or the dataset's own.

Most folders come without a split: :func:`split_pairs` keeps a seeded fraction for validation (the same
files for the same seed). Some datasets ship their own, and published results use it: Oxford-IIIT Pet
lists its photos in ``annotations/trainval.txt`` and ``test.txt``; CamVid keeps ``train/``, ``val/`` and
``test/`` folders. ``official_splits`` (a view's, or your own) names them, :func:`official_pairs` reads
them, and every pair then carries its split (``Pair.split``); :func:`split_pairs` keeps the dataset's
test pairs out of training and validation, and validates on the dataset's validation pairs if it has
them, else on a seeded fraction of its training pairs. :func:`take_subset` draws ``limit`` pairs
(seeded) before anything is opened, so a quick run of a large dataset checks only what it uses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np

from unet_helpers.errors import UnetTutorialError


class _InASplit(Protocol):
    """What :func:`split_pairs` needs of a pair (``data.Pair`` has it): the dataset's own split, or None."""

    split: str | None


Pair = TypeVar("Pair", bound=_InASplit)

SPLIT_NAMES = ("train", "validation", "test")
# What official_splits maps a split to: a text file of image names, or (images folder, masks folder).
SplitSource = str | tuple[str, str]


def _listed_names(list_file: Path) -> list[tuple[int, str]]:
    """``(line number, image name)`` per line of a split list (its first word); blank, ``#`` lines skipped."""
    if not list_file.is_file():
        raise UnetTutorialError(
            f"split list '{list_file}' does not exist: put the dataset's own list there, or pass "
            "official_splits=None to split by seed."
        )
    names = []
    for number, line in enumerate(list_file.read_text().splitlines(), start=1):
        words = line.split()
        if words and not words[0].startswith("#"):
            names.append((number, words[0]))
    return names


def official_pairs(
    root: Path,
    official_splits: Mapping[str, SplitSource],
    *,
    find_pairs: Callable[..., list[tuple[Path, Path]]],
    images: str,
    masks: str,
) -> tuple[list[tuple[Path, Path]], list[str]]:
    """The pairs of a dataset's own splits, and the split of each.

    Args:
        root: the dataset folder.
        official_splits: split name (``"train"``, ``"validation"``, ``"test"``) -> a text file of image
            names relative to ``root`` (the first word of each line, as in Pet's ``trainval.txt``), paired
            in the ``images`` and ``masks`` folders; or a pair of folders ``(images, masks)`` of its own.
        find_pairs: pairs the files of one images/masks folder pair (``pairing.find_pairs`` with the
            loader's naming options bound).
        images, masks: the folders that list files name.

    Returns:
        ``(pairs, split of each pair)``: list splits in the order of their lines, folder splits in
        natural name order; pairs that no list names are left out.

    Raises:
        UnetTutorialError: an unknown split name, a missing list, a name listed twice or with no pair.
    """
    unknown = sorted(set(official_splits) - set(SPLIT_NAMES))
    if unknown or not official_splits:
        raise UnetTutorialError(
            f"official_splits names {sorted(official_splits)}: use 'train', 'validation' and 'test'."
        )
    by_name: dict[str, tuple[Path, Path]] | None = None
    pairs: list[tuple[Path, Path]] = []
    split_of_pair: list[str] = []
    for split, source in official_splits.items():
        if isinstance(source, str):
            if by_name is None:
                by_name = {image.stem: (image, mask) for image, mask in find_pairs(root, images, masks)}
            chosen = _listed_pairs(root / source, by_name, images=images, masks=masks)
        else:
            chosen = find_pairs(root, *source)
        pairs += chosen
        split_of_pair += [split] * len(chosen)
    seen: dict[Path, str] = {}
    for (image, _), split in zip(pairs, split_of_pair, strict=True):
        if image in seen:
            raise UnetTutorialError(
                f"'{image}' is in both the {seen[image]} and the {split} split: a dataset's own splits "
                "must not share images; fix the lists."
            )
        seen[image] = split
    return pairs, split_of_pair


def _listed_pairs(
    list_file: Path, by_name: dict[str, tuple[Path, Path]], *, images: str, masks: str
) -> list[tuple[Path, Path]]:
    chosen, lines = [], {}
    for number, name in _listed_names(list_file):
        if name in lines:
            raise UnetTutorialError(
                f"'{list_file}' names '{name}' twice (lines {lines[name]} and {number}): keep one."
            )
        if name not in by_name:
            raise UnetTutorialError(
                f"'{list_file}' line {number} names '{name}', which has no image/mask pair in {images}/ "
                f"and {masks}/: add the files or remove the line."
            )
        lines[name] = number
        chosen.append(by_name[name])
    return chosen


def needed_splits(
    official_splits: Mapping[str, SplitSource] | None, split: str
) -> Mapping[str, SplitSource] | None:
    """The part of a dataset's own splits that ``split`` reads: its test split for ``"test"``, its training
    and validation splits for ``"train"`` and ``"validation"``, all for ``"all"``; so that a loader checks
    (and ``limit`` draws from) only the files it uses."""
    if not official_splits or split == "all":
        return official_splits
    wanted = ("test",) if split == "test" else ("train", "validation")
    needed = {name: source for name, source in official_splits.items() if name in wanted}
    if not needed:
        raise UnetTutorialError(
            f"split={split!r}: the dataset's own splits are {sorted(official_splits)}; pick one of those."
        )
    return needed


def take_subset(
    pairs: list[tuple[Path, Path]], split_of_pair: list[str] | None, *, limit: int | None, seed: int
) -> tuple[list[tuple[Path, Path]], list[str] | None]:
    """At most ``limit`` pairs, drawn at random with ``seed`` (the same pairs for the same seed), in their
    order; a dataset's own splits each keep their share (at least one pair each)."""
    if limit is None or limit >= len(pairs):
        return pairs, split_of_pair
    if limit < 1:
        raise UnetTutorialError(f"limit={limit}: take at least one pair, or None for all.")
    rng = np.random.default_rng(seed)
    groups = [np.arange(len(pairs))]
    if split_of_pair is not None:
        names = np.array(split_of_pair)
        groups = [np.flatnonzero(names == split) for split in dict.fromkeys(split_of_pair)]
    kept = np.concatenate(
        [
            rng.choice(group, size=max(1, round(limit * len(group) / len(pairs))), replace=False)
            for group in groups
        ]
    )
    kept.sort()
    return [pairs[i] for i in kept], None if split_of_pair is None else [split_of_pair[i] for i in kept]


def split_pairs(
    pairs: Sequence[Pair],
    *,
    split: str,
    validation_fraction: float = 0.2,
    seed: int = 0,
    shuffle_split: bool = True,
) -> list[Pair]:
    """The pairs of one split: ``"train"``, ``"validation"``, ``"test"`` or ``"all"``.

    The split is deterministic: the same files, fraction and seed always give the same split. With
    ``shuffle_split=False`` the validation set is the last pairs in natural name order, which keeps
    neighbouring slices of a stack (ISBI 2012) from landing on both sides.

    Pairs from a dataset's own splits (``pair.split`` set, see :func:`official_pairs`): ``"test"`` is the
    dataset's test pairs; ``"validation"`` its validation pairs, or, if it has none, ``validation_fraction``
    of its training pairs as above; ``"train"`` the rest of its training pairs. Without them ``"test"`` is
    an error: such a folder has no test split of its own.
    """
    if split not in (*SPLIT_NAMES, "all"):
        raise UnetTutorialError(f"split={split!r}: use 'train', 'validation', 'test' or 'all'.")
    if not 0.0 <= validation_fraction < 1.0:
        raise UnetTutorialError(f"validation_fraction={validation_fraction}: use a number in [0, 1).")
    if split == "all":
        return list(pairs)
    official = {pair.split for pair in pairs} - {None}
    if split == "test":
        if "test" not in official:
            raise UnetTutorialError(
                "split='test': this dataset has no test split of its own (give official_splits, e.g. a "
                "view's); use 'validation' to score held-out images."
            )
        return [pair for pair in pairs if pair.split == "test"]
    if "validation" in official:
        return [pair for pair in pairs if pair.split == split]
    pool = [pair for pair in pairs if pair.split == "train"] if official else list(pairs)
    count = len(pool)
    num_validation = round(count * validation_fraction)
    if validation_fraction > 0 and count >= 2:
        num_validation = min(max(num_validation, 1), count - 1)
    order = np.random.default_rng(seed).permutation(count) if shuffle_split else np.arange(count)
    chosen = set(order[count - num_validation :].tolist())
    if split == "train":
        chosen = set(range(count)) - chosen
    return [pair for index, pair in enumerate(pool) if index in chosen]
