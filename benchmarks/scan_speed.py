"""The dataset check before training, without and with its cache on disk, against decoding the data once.

    .venv/bin/python benchmarks/scan_speed.py [--pairs 3000] [--out FOLDER] [--results FILE]

Generates a dataset shaped like Oxford-IIIT Pet (into a temporary folder, or into ``--out``, which must be
new or empty and is kept): ``--pairs`` JPEG photos (quality 90, sides of 200 to 500 px in the usual photo
aspect ratios, about 2% with a long side of 1000 to 1600 px) and their 8-bit PNG trimaps (1 = pet,
2 = background, 3 = border). Then, in one run:

- the first ``data.scan_dataset`` (no cache: every pair is opened; the cache is written);
- the second (every report comes from ``unet_helpers.scan_cache``), the median of ``--repeats`` runs, and
  the ratio second / first (the target: at most 5%);
- the first epoch of ``data.load_dataset(..., image_size=128, batch_size=16, cache=False)`` (the training
  split, decoded and resized by ``tf.data``), as ``data.images_per_second(dataset, first_epoch=True)``.

Files modified less than ``scan_cache.SETTLE_SECONDS`` before a scan are not cached, so the script waits
that long after generating. Prints a table and writes benchmarks/results/scan_speed.json (``--results``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import machine
import numpy as np
from PIL import Image

from unet_helpers import data, scan_cache

RESULTS = Path(__file__).resolve().parent / "results" / "scan_speed.json"
# Oxford-IIIT Pet's trimaps: 1 = pet, 2 = background, 3 = border; as classes background 0, pet 1, border 2.
MASK_VALUES = {2: 0, 1: 1, 3: 2}
PET, BACKGROUND, BORDER = 1, 2, 3
# Width / height of the photos, both orientations.
ASPECTS = (4 / 3, 3 / 2, 1.0, 3 / 4, 2 / 3)


def photo_size(rng: np.random.Generator) -> tuple[int, int]:
    """(width, height) of one photo: the long side 200 to 500 px, in about 2% of photos 1000 to 1600 px."""
    long_side = int(rng.integers(1000, 1601) if rng.random() < 0.02 else rng.integers(200, 501))
    aspect = float(rng.choice(ASPECTS))
    if aspect >= 1:
        return long_side, max(round(long_side / aspect), 1)
    return max(round(long_side * aspect), 1), long_side


def write_pair(root: Path, index: int, seed: int) -> int:
    """Write one photo (a smooth background, an ellipse, noise) and its trimap; return their bytes."""
    rng = np.random.default_rng([seed, index])
    width, height = photo_size(rng)
    coarse = rng.integers(0, 256, size=(height // 64 + 2, width // 64 + 2, 3), dtype=np.uint8)
    background = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC))
    y, x = np.mgrid[0:height, 0:width]
    center_y, center_x = rng.uniform(0.35, 0.65, size=2) * (height, width)
    radius_y, radius_x = rng.uniform(0.2, 0.4, size=2) * (height, width)
    distance = np.sqrt(((y - center_y) / radius_y) ** 2 + ((x - center_x) / radius_x) ** 2)
    pet_colour = rng.integers(0, 256, size=3)
    photo = np.where((distance < 1.0)[..., None], pet_colour, background)
    photo = photo + rng.normal(0, 8, (height, width, 3))  # texture, which JPEG pays for as in photos
    trimap = np.full((height, width), BACKGROUND, np.uint8)
    trimap[distance < 1.1] = BORDER  # a band across the outline, as the annotators drew it
    trimap[distance < 0.9] = PET
    image_path = root / "images" / f"pet_{index:05d}.jpg"
    mask_path = root / "masks" / f"pet_{index:05d}.png"
    Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)).save(image_path, quality=90)
    Image.fromarray(trimap).save(mask_path)
    return image_path.stat().st_size + mask_path.stat().st_size


def generate(root: Path, pairs: int, seed: int) -> int:
    """Write ``pairs`` image/mask pairs into ``root/images`` and ``root/masks`` (in threads: PIL releases the
    GIL while it encodes); return the bytes written."""
    for folder in ("images", "masks"):
        (root / folder).mkdir(parents=True)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return sum(pool.map(lambda index: write_pair(root, index, seed), range(pairs)))


def timed_scan(root: Path) -> float:
    """Seconds of one ``data.scan_dataset`` of the generated folder."""
    start = time.perf_counter()
    data.scan_dataset(root, num_classes=3, mask_values=MASK_VALUES, progress=False)
    return time.perf_counter() - start


def measure(root: Path, repeats: int) -> dict:
    """The scans and the first epoch's decoding of the dataset in ``root``."""
    for path in scan_cache.cache_files(root):  # a first scan without cache, even in a reused temp path
        path.unlink(missing_ok=True)
    first = timed_scan(root)
    cached = len(scan_cache.load(root))
    second = statistics.median(timed_scan(root) for _ in range(repeats))
    cache_file = next(path for path in scan_cache.cache_files(root) if path.is_file())
    dataset = data.load_dataset(
        root,
        image_size=128,
        batch_size=16,
        cache=False,
        num_classes=3,
        mask_values=MASK_VALUES,
        progress=False,
    )
    return {
        "pairs_cached_after_first_scan": cached,
        "first_scan_s": round(first, 3),
        "second_scan_s": round(second, 4),
        "second_to_first_percent": round(100 * second / first, 2),
        "cache_file_bytes": cache_file.stat().st_size,
        "cache_file_in_root": cache_file.parent.resolve() == root.resolve(),
        "first_epoch_images_per_s": round(data.images_per_second(dataset, first_epoch=True), 1),
        "first_epoch_images": sum(int(images.shape[0]) for images, _ in dataset),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3000)
    parser.add_argument("--out", type=Path, help="generate here (a new or empty folder) and keep it")
    parser.add_argument("--repeats", type=int, default=5, help="timed second scans (the median is kept)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.out is not None and args.out.exists() and any(args.out.iterdir()):
        parser.error(f"--out {args.out} is not empty: give a new or empty folder")

    info = machine.describe()
    with tempfile.TemporaryDirectory() as temporary:
        root = args.out or Path(temporary) / "pets"
        start = time.perf_counter()
        data_bytes = generate(root, args.pairs, args.seed)
        seconds = time.perf_counter() - start
        print(f"generated {args.pairs:,} pairs ({data_bytes / 1e6:,.0f} MB) in {seconds:.0f} s", flush=True)
        time.sleep(scan_cache.SETTLE_SECONDS + 0.1)  # younger files would be inspected but not cached
        row = {
            "pairs": args.pairs,
            "data_megabytes": round(data_bytes / 1e6, 1),
            **measure(root, args.repeats),
        }
    info["load_average_1min_after"] = round(os.getloadavg()[0], 2)

    print(
        "\n| pairs | data | first scan | second scan (cache) | second / first | cache file "
        "| first epoch, 128x128 |\n|---|---|---|---|---|---|---|"
    )
    print(
        f"| {row['pairs']:,} | {row['data_megabytes']:,.0f} MB | {row['first_scan_s']:.1f} s "
        f"({row['pairs'] / row['first_scan_s']:,.0f} pairs/s) | {row['second_scan_s'] * 1000:,.0f} ms "
        f"| {row['second_to_first_percent']:.1f}% | {row['cache_file_bytes'] / 1e6:.2f} MB "
        f"| {row['first_epoch_images_per_s']:,.0f} images/s |"
    )
    settings = {"pairs": args.pairs, "repeats": args.repeats, "seed": args.seed}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(
        json.dumps({"machine": info, "settings": settings, "rows": [row]}, indent=2) + "\n"
    )
    print(f"\nwritten to {args.results}")


if __name__ == "__main__":
    main()
