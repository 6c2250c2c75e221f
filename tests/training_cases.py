"""The tiny dataset and sizes that the training tests share (tests/test_training.py, tests/test_train.py)."""

from pathlib import Path

from unet_helpers import run_folder, synthetic

IMAGE_SIZE = 32
BASE_FILTERS = 4
BATCH_SIZE = 4
NUM_IMAGES = 12
TINY = {"num_classes": 2, "image_size": IMAGE_SIZE, "base_filters": BASE_FILTERS, "verbose": 0}


def tiny_cells(folder: Path) -> Path:
    """A dozen synthetic 32x32 images and masks in ``folder``: a 4-filter UNet trains on them in seconds."""
    return synthetic.generate_dataset(folder, num_samples=NUM_IMAGES, image_size=IMAGE_SIZE, progress=False)


def file_state(path: Path) -> tuple[bytes, int]:
    """A file's bytes and modification time: equal before and after means it was not touched."""
    return path.read_bytes(), path.stat().st_mtime_ns


def epochs_in_history(out: Path) -> list[int]:
    """The ``epoch`` column of a run folder's history.csv (counted from 0); empty without the file."""
    try:
        lines = (out / run_folder.HISTORY).read_text().splitlines()[1:]
    except FileNotFoundError:
        return []
    return [int(line.split(",")[0]) for line in lines if line.strip()]
