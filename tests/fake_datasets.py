"""Fake datasets for tests: tiny copies of real layouts, with the oddities of the real files.

``make_fake_oxford_pet`` writes the extracted Oxford-IIIT Pet layout with a few small images:

    root/images/<stem>.jpg                 JPEG photos (a coloured ellipse, the "pet", on a noisy background),
                                           except ODD_IMAGES: PNG bytes named .jpg, one with an alpha channel
    root/images/Abyssinian_100.mat         a non-image file with a photo's stem, as in the real folder
    root/annotations/trimaps/<stem>.png    8-bit grayscale trimaps: 1 = pet, 2 = background, 3 = border
    root/annotations/trimaps/._<stem>.png  macOS metadata junk (not a PNG), as in the real archive
    root/annotations/xmls/<stem>.xml       head boxes, for the trainval images only
    root/annotations/trainval.txt, test.txt, list.txt   lines "stem class-id species breed-id"

``pack_fake_oxford_pet`` packs that into ``images.tar.gz`` and ``annotations.tar.gz``: plain tar despite
the name, like the real archives, byte-identical for the same folder. Import with
``from fake_datasets import ...`` (pytest puts ``tests/`` on the path).
"""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from unet_helpers.datasets import Archive

# breed -> (class id 1..37, species 1 = cat / 2 = dog, breed id within its species), as in the real lists.
_BREED_IDS = {
    "Abyssinian": (1, 1, 1),
    "american_bulldog": (2, 2, 1),
    "Bengal": (6, 1, 2),
    "beagle": (5, 2, 4),
    "Birman": (7, 1, 3),
    "boxer": (9, 2, 5),
    "Egyptian_Mau": (12, 1, 6),
}
_ORDINARY_BREEDS = ("Abyssinian", "american_bulldog", "Bengal", "beagle", "Birman", "boxer")

# Stems whose .jpg holds PNG bytes (the real dataset has about a dozen such files), and what each holds.
ODD_IMAGES = {"Abyssinian_34": "RGB", "Egyptian_Mau_14": "RGBA"}
# The real images/ folder holds three MATLAB files with the stems of photos; one is enough here.
MAT_FILE = "Abyssinian_100.mat"
PET, BACKGROUND, BORDER = 1, 2, 3

# The start of an AppleDouble file, which macOS writes as ._<name> next to a file on foreign disks.
_APPLE_DOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(56)


def fake_oxford_pet_stems(num_images: int = 6) -> list[str]:
    """The image stems ``make_fake_oxford_pet`` writes: ``num_images - 2`` ordinary ones, then ODD_IMAGES."""
    if num_images < 3:
        raise ValueError(f"num_images={num_images}: need at least 3 (one JPEG and the two odd images).")
    breeds = _ORDINARY_BREEDS
    ordinary = [f"{breeds[i % len(breeds)]}_{100 + i // len(breeds)}" for i in range(num_images - 2)]
    return ordinary + list(ODD_IMAGES)


def _image_and_trimap(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random (height, width, 3) uint8 image of an ellipse on noise, and its (height, width) trimap."""
    height, width = rng.integers(40, 81, size=2)
    y, x = np.mgrid[0:height, 0:width]
    center_y, center_x = rng.uniform(0.35, 0.65, size=2) * (height, width)
    radius_y, radius_x = rng.uniform(0.2, 0.35, size=2) * (height, width)
    distance = np.sqrt(((y - center_y) / radius_y) ** 2 + ((x - center_x) / radius_x) ** 2)
    trimap = np.full((height, width), BACKGROUND, np.uint8)
    trimap[distance < 1.15] = BORDER  # a band across the outline, as the annotators drew it
    trimap[distance < 0.85] = PET
    background, pet = rng.integers(0, 256, size=(2, 3))
    image = np.where((distance < 1.0)[..., None], pet, background) + rng.normal(0, 12, (height, width, 3))
    return np.clip(image, 0, 255).astype(np.uint8), trimap


def _list_line(stem: str) -> str:
    return " ".join([stem, *map(str, _BREED_IDS[stem.rsplit("_", 1)[0]])]) + "\n"


def make_fake_oxford_pet(root: Path, *, num_images: int = 6, seed: int = 0) -> Path:
    """Write a small Oxford-IIIT Pet in its extracted layout under ``root`` (see the module docstring).

    Images are 40 to 80 pixels high and wide (each its own size); every one has a trimap with all
    three values. Every second image (counting from the first) is in trainval.txt, the others in
    test.txt. The same ``num_images`` and ``seed`` give the same files.

    Returns:
        ``root``, which holds ``images/`` and ``annotations/``.
    """
    rng = np.random.default_rng(seed)
    images, annotations = root / "images", root / "annotations"
    trimaps, xmls = annotations / "trimaps", annotations / "xmls"
    for folder in (images, trimaps, xmls):
        folder.mkdir(parents=True, exist_ok=True)
    stems = fake_oxford_pet_stems(num_images)
    for stem in stems:
        image, trimap = _image_and_trimap(rng)
        if ODD_IMAGES.get(stem) == "RGBA":
            image = np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])
        if stem in ODD_IMAGES:
            Image.fromarray(image).save(images / f"{stem}.jpg", format="PNG")
        else:
            Image.fromarray(image).save(images / f"{stem}.jpg", format="JPEG", quality=90)
        Image.fromarray(trimap).save(trimaps / f"{stem}.png")
        (trimaps / f"._{stem}.png").write_bytes(_APPLE_DOUBLE)
    (images / MAT_FILE).write_bytes(b"MATLAB 5.0 MAT-file, fake")
    trainval, test = stems[0::2], stems[1::2]
    for stem in trainval:
        (xmls / f"{stem}.xml").write_text(
            f"<annotation><filename>{stem}.jpg</filename><object><name>head</name></object></annotation>\n"
        )
    (annotations / "trainval.txt").write_text("".join(map(_list_line, trainval)))
    (annotations / "test.txt").write_text("".join(map(_list_line, test)))
    header = "#Image CLASS-ID SPECIES BREED-ID\n#SPECIES: 1 = cat, 2 = dog\n"
    (annotations / "list.txt").write_text(header + "".join(map(_list_line, stems)))
    return root


def _normalized(member: tarfile.TarInfo) -> tarfile.TarInfo:
    # Fixed owner and time: the same folder packs to the same bytes, so its checksum is stable.
    member.uid = member.gid = 0
    member.uname = member.gname = ""
    member.mtime = 0
    return member


def pack_fake_oxford_pet(root: Path, archive_dir: Path) -> tuple[Archive, ...]:
    """Pack ``root/images`` and ``root/annotations`` into ``images.tar.gz`` and ``annotations.tar.gz``.

    The archives go to ``archive_dir``; both are plain (uncompressed) tar, like the real ones.

    Returns:
        One :class:`unet_helpers.datasets.Archive` per archive with its size and sha256: a stand-in
        for ``datasets.OXFORD_PET_ARCHIVES`` (monkeypatch it).
    """
    archive_dir.mkdir(parents=True, exist_ok=True)
    archives = []
    for folder in ("images", "annotations"):
        path = archive_dir / f"{folder}.tar.gz"
        with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
            tar.add(root / folder, arcname=folder, filter=_normalized)
        data = path.read_bytes()
        archives.append(
            Archive(
                file_name=path.name,
                num_bytes=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                folder=folder,
            )
        )
    return tuple(archives)


CAMVID_VOID = 11


def make_fake_camvid(root: Path, *, counts: tuple[int, int, int] = (4, 2, 2), seed: int = 0) -> Path:
    """Write a small CamVid in SegNet's layout under ``root``: ``train/``, ``val/``, ``test/`` (PNG photos,
    48x64) and ``trainannot/``, ``valannot/``, ``testannot/`` (8-bit masks of class indices 0..10, with
    11 = void in a band along the top and left edges, as in the real unlabelled borders). ``counts`` are
    the images per split; file names as in the real set (``0001TP_006690.png``).

    Returns:
        ``root``.
    """
    rng = np.random.default_rng(seed)
    number = 6690
    for (images, masks), count in zip(
        (("train", "trainannot"), ("val", "valannot"), ("test", "testannot")), counts, strict=True
    ):
        (root / images).mkdir(parents=True, exist_ok=True)
        (root / masks).mkdir(parents=True, exist_ok=True)
        for _ in range(count):
            mask = np.repeat(np.repeat(rng.integers(0, 11, size=(6, 8)), 8, axis=0), 8, axis=1).astype(
                np.uint8
            )
            mask[:5], mask[:, :3] = CAMVID_VOID, CAMVID_VOID
            image = (mask[..., None] * 20 + rng.integers(0, 30, size=(*mask.shape, 3))).astype(np.uint8)
            name = f"0001TP_{number:06d}.png"
            Image.fromarray(image).save(root / images / name)
            Image.fromarray(mask).save(root / masks / name)
            number += 30
    return root
