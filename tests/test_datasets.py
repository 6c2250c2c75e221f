"""Downloading Oxford-IIIT Pet (from a local fake server), the dataset views, and the ISBI 2012 layout.

No test touches the internet: a server on 127.0.0.1 serves archives that ``fake_datasets`` builds with
the real layout, and ``datasets.OXFORD_PET_ARCHIVES`` is patched to their sizes and checksums.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import inspect
import shutil
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
from fake_datasets import (
    MAT_FILE,
    ODD_IMAGES,
    fake_oxford_pet_stems,
    make_fake_oxford_pet,
    pack_fake_oxford_pet,
)
from PIL import Image

from unet_helpers import datasets
from unet_helpers.errors import UnetTutorialError

NUM_IMAGES = 6


class FakeServer:
    """Serves ``files`` (name -> bytes) under ``url`` and records each request's file name.

    Set ``truncate`` to send only half of each file after announcing its full length.
    """

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = dict(files)
        self.requests: list[str] = []
        self.truncate = False
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, self))
        self.url = f"http://127.0.0.1:{self._httpd.server_port}/vgg/pets/"
        threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    def stop(self) -> None:
        """Stop listening: connections are refused from now on, as offline."""
        self._httpd.shutdown()
        self._httpd.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    def __init__(self, server_state: FakeServer, *args, **kwargs) -> None:
        self.state = server_state
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        name = self.path.rsplit("/", 1)[-1]
        self.state.requests.append(name)
        body = self.state.files.get(name)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if self.state.truncate else body)

    def log_message(self, format, *args) -> None:  # keep the test output quiet
        pass


@pytest.fixture(scope="module")
def fake_archives(tmp_path_factory) -> tuple[Path, tuple[datasets.Archive, ...]]:
    """The folder holding the two fake archives, and their table entries (built once per module)."""
    base = tmp_path_factory.mktemp("fake_pet")
    root = make_fake_oxford_pet(base / "extracted", num_images=NUM_IMAGES, seed=0)
    return base / "archives", pack_fake_oxford_pet(root, base / "archives")


@pytest.fixture
def archives(fake_archives, monkeypatch) -> tuple[datasets.Archive, ...]:
    """The fake archives' table entries, patched into the module in place of the real ones."""
    monkeypatch.setattr(datasets, "OXFORD_PET_ARCHIVES", fake_archives[1])
    return fake_archives[1]


@pytest.fixture
def server(fake_archives, archives):
    folder, entries = fake_archives
    fake = FakeServer({entry.file_name: (folder / entry.file_name).read_bytes() for entry in entries})
    yield fake
    fake.stop()


def download(data_dir: Path, server: FakeServer, **kwargs) -> Path:
    return datasets.download_oxford_pet(data_dir=data_dir, base_url=server.url, progress=False, **kwargs)


def test_fake_archives_are_plain_tar_named_tar_gz_and_reproducible(fake_archives, tmp_path):
    folder, entries = fake_archives
    for entry in entries:
        assert entry.file_name.endswith(".tar.gz")
        with tarfile.open(folder / entry.file_name, "r:") as tar:  # "r:" opens only uncompressed tar
            assert tar.getnames()[0] == entry.folder
    again = pack_fake_oxford_pet(make_fake_oxford_pet(tmp_path / "x", num_images=NUM_IMAGES), tmp_path / "a")
    assert again == entries


def test_fake_dataset_has_the_real_oddities(tmp_path):
    root = make_fake_oxford_pet(tmp_path, num_images=NUM_IMAGES, seed=1)
    stems = fake_oxford_pet_stems(NUM_IMAGES)
    assert sorted(p.stem for p in (root / "images").glob("*.jpg")) == sorted(stems)
    assert (root / "images" / MAT_FILE).is_file()
    assert Path(MAT_FILE).stem in stems  # shares its stem with a photo, as in the real folder
    for stem, mode in ODD_IMAGES.items():
        path = root / "images" / f"{stem}.jpg"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert Image.open(path).mode == mode
    for stem in stems:
        trimap = np.asarray(Image.open(root / "annotations" / "trimaps" / f"{stem}.png"))
        assert trimap.dtype == np.uint8 and trimap.ndim == 2
        assert set(np.unique(trimap)) == {1, 2, 3}
        assert (root / "annotations" / "trimaps" / f"._{stem}.png").read_bytes()[:4] == b"\x00\x05\x16\x07"
    lists = [(root / "annotations" / name).read_text() for name in ("trainval.txt", "test.txt")]
    listed = [line.split()[0] for text in lists for line in text.splitlines()]
    assert sorted(listed) == sorted(stems)


def test_download_checks_and_extracts_the_real_layout(server, archives, tmp_path, capsys):
    root = datasets.download_oxford_pet(data_dir=tmp_path, base_url=server.url, progress=True)
    assert root == tmp_path / "oxford_iiit_pet"
    assert sorted(server.requests) == ["annotations.tar.gz", "images.tar.gz"]
    stems = fake_oxford_pet_stems(NUM_IMAGES)
    assert sorted(p.stem for p in (root / "images").glob("*.jpg")) == sorted(stems)
    assert sorted(p.stem for p in (root / "annotations" / "trimaps").iterdir()) == sorted(
        stems
    )  # no ._ files
    assert (root / "annotations" / "trainval.txt").is_file() and (root / "annotations" / "test.txt").is_file()
    for entry in archives:  # kept and intact, so a later extraction needs no network
        assert (root / entry.file_name).stat().st_size == entry.num_bytes
    assert sorted(p.name for p in root.iterdir()) == [
        "annotations",
        "annotations.tar.gz",
        "images",
        "images.tar.gz",
    ]
    progress = capsys.readouterr().err
    assert "Downloading images.tar.gz" in progress and "Extracting annotations.tar.gz" in progress


def test_second_call_is_a_cache_hit_without_network(server, tmp_path):
    first = download(tmp_path, server)
    server.requests.clear()
    assert download(tmp_path, server) == first
    assert server.requests == []
    server.stop()
    assert download(tmp_path, server) == first


def test_default_folder_is_the_data_dir(server, tmp_path, monkeypatch):
    monkeypatch.setenv("UNET_DATA_DIR", str(tmp_path / "from_env"))
    root = datasets.download_oxford_pet(base_url=server.url, progress=False)
    assert root == tmp_path / "from_env" / "oxford_iiit_pet"
    assert (root / "images").is_dir()


def assert_nothing_trusted_left(root: Path) -> None:
    """Only what a later call would check again (or nothing) is left in ``root``."""
    left = sorted(p.name for p in root.iterdir()) if root.exists() else []
    assert not {"images", "images.tar.gz", "images.tar.gz.part", ".images.tar.gz.extracting"} & set(left), (
        left
    )


def test_corrupted_download_is_deleted_and_reported(server, tmp_path):
    good = server.files["images.tar.gz"]
    server.files["images.tar.gz"] = good[:-1] + bytes([good[-1] ^ 1])  # same size, one bit flipped
    with pytest.raises(UnetTutorialError, match=r"images\.tar\.gz is incomplete or damaged") as error:
        download(tmp_path, server)
    assert "\n" not in str(error.value)
    assert "sha256" in str(error.value) and "deleted" in str(error.value)
    assert_nothing_trusted_left(tmp_path / "oxford_iiit_pet")
    server.files["images.tar.gz"] = good
    root = download(tmp_path, server)  # a later call downloads again instead of trusting a bad file
    assert (root / "images").is_dir()


def test_truncated_download_is_deleted_and_reported(server, tmp_path):
    server.truncate = True
    with pytest.raises(UnetTutorialError, match=r"images\.tar\.gz is incomplete or damaged") as error:
        download(tmp_path, server)
    assert "\n" not in str(error.value)
    assert f"{len(server.files['images.tar.gz']) // 2:,} bytes" in str(error.value)
    assert_nothing_trusted_left(tmp_path / "oxford_iiit_pet")


def test_offline_error_says_which_urls_and_where_to_put_them(server, tmp_path):
    server.stop()
    with pytest.raises(UnetTutorialError) as error:
        download(tmp_path, server)
    message = str(error.value)
    assert "\n" not in message
    root = tmp_path / "oxford_iiit_pet"
    assert f"put them in {root} " in message
    assert f"{server.url}images.tar.gz" in message and f"{server.url}annotations.tar.gz" in message
    assert "images/ and annotations/" in message
    assert datasets.OXFORD_PET_MIRROR_URL in message
    assert_nothing_trusted_left(root)


def test_missing_file_on_the_server_names_the_http_error(server, tmp_path):
    del server.files["annotations.tar.gz"]
    with pytest.raises(UnetTutorialError, match=r"annotations\.tar\.gz \(HTTP 404 Not Found\)"):
        download(tmp_path, server)


def test_archives_placed_by_hand_work_offline(server, fake_archives, tmp_path):
    server.stop()
    with pytest.raises(UnetTutorialError):
        download(tmp_path, server)
    root = tmp_path / "oxford_iiit_pet"  # the folder the message names
    for entry in fake_archives[1]:
        shutil.copy(fake_archives[0] / entry.file_name, root)
    assert download(tmp_path, server) == root
    assert len(list((root / "images").glob("*.jpg"))) == NUM_IMAGES
    assert (root / "annotations" / "trimaps").is_dir()


def test_extracted_folders_placed_by_hand_work_offline(server, tmp_path):
    server.stop()
    root = make_fake_oxford_pet(tmp_path / "oxford_iiit_pet")
    assert download(tmp_path, server) == root


def test_wrong_archive_placed_by_hand_is_reported_and_kept(server, tmp_path):
    root = tmp_path / "oxford_iiit_pet"
    root.mkdir()
    (root / "images.tar.gz").write_bytes(server.files["images.tar.gz"][:1000])  # an unfinished copy
    with pytest.raises(UnetTutorialError, match="is not the expected archive") as error:
        download(tmp_path, server)
    assert str(root / "images.tar.gz") in str(error.value)
    assert (root / "images.tar.gz").stat().st_size == 1000  # the user's file, not ours to delete
    assert server.requests == []


def test_interrupted_extraction_is_redone(server, tmp_path):
    root = tmp_path / "oxford_iiit_pet"
    staging = root / ".images.tar.gz.extracting" / "images"
    staging.mkdir(parents=True)  # what a killed extraction leaves
    (staging / "half_written.jpg").write_bytes(b"\xff\xd8")
    download(tmp_path, server)
    assert not (root / ".images.tar.gz.extracting").exists()
    assert not (root / "images" / "half_written.jpg").exists()
    assert len(list((root / "images").glob("*.jpg"))) == NUM_IMAGES


def test_archive_with_a_path_outside_its_folder_is_refused(server, tmp_path, monkeypatch):
    payload = tmp_path / "payload"
    payload.write_bytes(b"x")
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        tar.add(payload, arcname="images/a.jpg")
        tar.add(payload, arcname="../escaped.txt")
    data = evil.read_bytes()
    entry = datasets.Archive("images.tar.gz", len(data), hashlib.sha256(data).hexdigest(), "images")
    monkeypatch.setattr(
        datasets, "OXFORD_PET_ARCHIVES", (entry,)
    )  # the checksum passes: only the path is wrong
    server.files["images.tar.gz"] = data
    data_dir = tmp_path / "data"
    with pytest.raises(UnetTutorialError, match="outside its folder"):
        download(data_dir, server)
    assert not (data_dir / "escaped.txt").exists()
    root = data_dir / "oxford_iiit_pet"
    assert not (root / "images").exists()  # half an extraction is never trusted
    assert not (root / ".images.tar.gz.extracting").exists()


@pytest.mark.parametrize("view", list(datasets.VIEWS.values()), ids=list(datasets.VIEWS))
def test_views_map_every_stored_value_to_a_class(view):
    assert sorted(set(view.mask_values.values())) == list(range(view.num_classes))
    assert view.num_classes == len(view.class_names) >= 2
    kwargs = view.as_kwargs()
    assert kwargs == {
        "images": view.images,
        "masks": view.masks,
        "mask_values": dict(view.mask_values),
        "num_classes": view.num_classes,
        "ignore_values": view.ignore_values,
        "official_splits": dict(view.official_splits) if view.official_splits else None,
    }
    assert not set(view.ignore_values) & set(view.mask_values)  # a value is a class or ignored, not both
    kwargs["mask_values"][999] = 0  # the loader may change its copy ...
    assert 999 not in view.mask_values  # ... without changing the shared view


def test_oxford_views_read_the_trimaps_right():
    # Trimaps: 1 = pet, 2 = background, 3 = border (the dataset's README).
    assert datasets.OXFORD_PET_BINARY.mask_values == {1: 1, 2: 0, 3: 1}
    assert datasets.OXFORD_PET_BINARY.class_names == ("background", "pet")
    assert datasets.OXFORD_PET_TRIMAP.mask_values == {1: 1, 2: 0, 3: 2}
    assert datasets.OXFORD_PET_TRIMAP.class_names == ("background", "pet", "border")
    assert datasets.ISBI2012_MEMBRANE.mask_values == {0: 1, 255: 0}  # dark membrane = class 1


def test_views_fit_the_downloaded_layout(server, tmp_path):
    root = download(tmp_path, server)
    for view in (datasets.OXFORD_PET_BINARY, datasets.OXFORD_PET_IGNORE_BORDER, datasets.OXFORD_PET_TRIMAP):
        stems = {p.stem for p in (root / view.masks).glob("*.png")}
        assert stems == {p.stem for p in (root / view.images).glob("*.jpg")}
        values = {
            int(v) for s in stems for v in np.unique(np.asarray(Image.open(root / view.masks / f"{s}.png")))
        }
        assert values == set(view.mask_values) | set(view.ignore_values)
        assert all((root / listed).is_file() for listed in view.official_splits.values())


def test_views_fit_the_loader_signature(tmp_path):
    data = pytest.importorskip("unet_helpers.data", reason="the folder loader is not there yet")
    for view in datasets.VIEWS.values():
        inspect.signature(data.load_dataset).bind(tmp_path, image_size=64, batch_size=2, **view.as_kwargs())


def test_isbi2012_root_says_where_to_put_the_data(tmp_path):
    with pytest.raises(UnetTutorialError) as error:
        datasets.isbi2012_root(data_dir=tmp_path)
    message = str(error.value)
    assert "\n" not in message
    assert str(tmp_path / "isbi2012_membrane" / "images") in message
    assert "isbi2012_instructions()" in message
    root = tmp_path / "isbi2012_membrane"
    for folder in ("images", "masks"):
        (root / folder).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / folder / "0.png")
    assert datasets.isbi2012_root(data_dir=tmp_path) == root


def test_isbi2012_instructions_name_the_folders_and_sources(tmp_path):
    text = datasets.isbi2012_instructions(data_dir=tmp_path)
    root = tmp_path / "isbi2012_membrane"
    assert str(root) in text
    for needle in ("images/", "masks/", "0 = membrane", "github.com/zhixuhao/unet", "train-volume.tif"):
        assert needle in text
