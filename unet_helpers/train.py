"""The training command line: ``python -m unet_helpers.train``.

    python -m unet_helpers.train --out runs/first             # the embedded real nuclei
    python -m unet_helpers.train --data my_dataset --out runs/mine --epochs 30 --batch-size 16
    python -m unet_helpers.train --out runs/five --time-limit 5   # as many epochs as fit in 5 minutes

It reads the dataset (``data.load_splits``: scanned once, split into training and validation), then
calls ``training.train_unet``, which writes the run folder (``run_folder`` lists its files) and resumes
it when the same command runs again. Sizes default to the active profile's (:mod:`unet_helpers.config`);
``--help`` lists every option. Mistakes (a missing folder, an image without a mask, an ``--out`` that
holds other files) print one line and exit with code 2; Ctrl-C saves and exits with 130. Training prints
one line per epoch when its output goes to a file or a pipe (a log), a progress bar in a terminal.
``--strategy multi-worker`` trains on several machines, each running the same command with its own
``TF_CONFIG`` (docs/multi_worker.md); only the chief (worker 0) writes ``--out``.

Everything that needs no TensorFlow is checked before TensorFlow loads (``training``, ``data`` and
``synthetic`` are imported after the checks), so that a wrong argument is answered at once, in one line,
without TensorFlow's start-up messages.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unet_helpers import config, datasets, devices, run_folder
from unet_helpers.cli import (
    ArgumentParser,
    fraction,
    mask_value,
    positive_float,
    positive_int,
    scale_argument,
)
from unet_helpers.errors import TrainingInterrupted, UnetTutorialError

if TYPE_CHECKING:
    from unet_helpers.training import TrainingResult

VIEW_NAMES = {name.replace("_", "-"): view for name, view in datasets.VIEWS.items()}
# With --time-limit and no --epochs, the time decides: this many epochs is more than any limit allows.
EPOCHS_UNDER_A_TIME_LIMIT = 1000
SCALE_HELP = (
    "squeeze: each image to --image-size; FACTOR: keep each image at its own size times FACTOR (1: as "
    "stored), train on random --image-size windows of it, validate on tiles of it; auto (default): 1 where "
    "squeezing would thin structures out or images of several sizes hold small objects, else squeeze"
)


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m unet_helpers.train",
        description="Train a UNet on a folder of images and masks (or the embedded real nuclei), "
        "writing best.keras, history.csv, metrics.json and learning_curves.png to --out. Run the same "
        "command again to resume an interrupted run. Sizes default to the profile's.",
    )
    add = parser.add_argument
    add(
        "--data",
        type=Path,
        metavar="DIR",
        help="dataset folder with images/ and masks/ (default: the embedded nuclei; with --num-classes 3 "
        "and more, the generated multi-class cells)",
    )
    add("--out", type=Path, metavar="DIR", required=True, help="output folder: new, empty, or this run's")
    add("--profile", choices=list(config.PROFILES), help="the sizes to default to (default: the active one)")
    add("--epochs", type=positive_int, metavar="N", help="epochs to train up to, earlier sessions included")
    add(
        "--time-limit",
        type=positive_float,
        metavar="MINUTES",
        help="stop after the epoch that leaves too little of MINUTES (earlier sessions included) for "
        f"another, best model saved; without --epochs, up to {EPOCHS_UNDER_A_TIME_LIMIT} epochs",
    )
    add("--image-size", type=positive_int, metavar="PIXELS", help="height and width, a multiple of 8")
    add("--scale", type=scale_argument, default="auto", metavar="auto|squeeze|FACTOR", help=SCALE_HELP)
    add(
        "--batch-size", type=positive_int, metavar="N", help="images per step, all GPUs and machines together"
    )
    add("--base-filters", type=positive_int, metavar="N", help="model width: filters of the first level")
    add(
        "--num-classes",
        type=int,
        metavar="K",
        help="classes, background included (default: 2, or the --view's)",
    )
    add("--learning-rate", type=positive_float, default=1e-3, metavar="RATE", help="Adam's, at first (1e-3)")
    add(
        "--seed",
        type=int,
        default=0,
        help="seeds the split, shuffling, augmentation and weights (default: 0)",
    )
    add(
        "--validation-fraction",
        type=fraction,
        default=0.2,
        metavar="F",
        help="share of images (default: 0.2)",
    )
    add(
        "--augment",
        action=argparse.BooleanOptionalAction,
        help="augment training images (default: the profile's, on in full only)",
    )
    add(
        "--standardize",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="standardise each image to mean 0, SD 1 inside the model (--no-standardize: the classic UNet)",
    )
    add(
        "--patience",
        type=positive_int,
        default=10,
        metavar="N",
        help="stop after N epochs without a better val_dice (not under --time-limit); halve the learning "
        "rate after N/2 (default: 10)",
    )
    _add_reading_options(parser)
    _add_selection_options(parser)
    _add_device_options(parser)
    return parser


def _add_reading_options(parser: argparse.ArgumentParser) -> None:
    masks = parser.add_argument_group(
        "reading the dataset", "how --data stores its images and masks (see data.scan_dataset)"
    )
    masks.add_argument(
        "--view",
        choices=sorted(VIEW_NAMES),
        help="a known layout: sets --images, --masks, the mask values, ignored values, --num-classes and "
        "the dataset's own split (oxford-pet-binary: pet vs background; oxford-pet-ignore-border: the "
        "same, the uncertain border ignored; oxford-pet-trimap: 3 classes; camvid: 11 street classes, "
        "void ignored; isbi2012-membrane: membrane, stored dark, is class 1)",
    )
    masks.add_argument("--images", metavar="SUBDIR", help="image folder inside --data (default: images)")
    masks.add_argument("--masks", metavar="SUBDIR", help="mask folder inside --data (default: masks)")
    masks.add_argument(
        "--mask-suffix", default="", metavar="TEXT", help="a mask's file name adds this: cell_07_mask.png"
    )
    masks.add_argument(
        "--image-pattern",
        default="{id}",
        metavar="PATTERN",
        help="image file names as a pattern of {id}, the part a mask shares: {id}_training (DRIVE)",
    )
    masks.add_argument(
        "--mask-pattern",
        default="{id}",
        metavar="PATTERN",
        help="mask file names as a pattern of the same {id}: {id}_manual1 pairs 21_manual1.gif with "
        "21_training.tif",
    )
    masks.add_argument(
        "--pairs-file",
        metavar="FILE",
        help="a CSV or text file inside --data that lists image,mask pairs, instead of pairing by name",
    )
    masks.add_argument(
        "--mask-values",
        type=Path,
        metavar="FILE",
        help="a CSV that says which stored mask value is which class: lines value,class or r,g,b,class, or "
        "name,r,g,b with one class per line in order (class_dict.csv); sets --num-classes",
    )
    masks.add_argument(
        "--ignore-value",
        type=mask_value,
        action="append",
        default=[],
        metavar="VALUE",
        help="a stored mask value, gray (11) or colour (0,0,0), whose pixels no class describes (a void "
        "class, an uncertain border): left out of training and scores; repeat for several",
    )
    masks.add_argument(
        "--invert",
        action="store_true",
        help="binary masks store the object as 0 (dark) and the background as 1/255: swap them",
    )
    masks.add_argument(
        "--mask-threshold",
        type=int,
        metavar="VALUE",
        help="binary masks saved as JPEG: stored values >= VALUE are the object",
    )
    masks.add_argument(
        "--channels", type=int, choices=(1, 3), default=3, help="image channels for the model (default: 3)"
    )


def _add_selection_options(parser: argparse.ArgumentParser) -> None:
    pairs = parser.add_argument_group("which pairs", "which of --data's pairs train and validate")
    pairs.add_argument(
        "--limit",
        type=positive_int,
        metavar="N",
        help="train on N pairs of the dataset, a fixed random choice (a quick run of a large dataset)",
    )
    pairs.add_argument(
        "--official-split",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="a --view's own training and validation images where the dataset has a split of its own "
        "(Oxford-IIIT Pet's trainval list, CamVid's train/ and val/; default); --no-official-split "
        "splits by --seed",
    )
    pairs.add_argument(
        "--shuffle-split",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="pick validation images at random (default); --no-shuffle-split takes the last ones in "
        "file-name order, for slices of one stack whose neighbours look alike (ISBI 2012)",
    )


def _add_device_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("devices", "how training uses the machine (see unet_helpers.devices)")
    add = group.add_argument
    add(
        "--mixed-precision",
        choices=devices.MIXED_PRECISION_CHOICES,
        default="auto",
        help="auto: float16 on a GPU (compute capability 7.0+)",
    )
    add("--xla", choices=devices.XLA_CHOICES, default="auto", help="compile training steps; auto: on a GPU")
    add(
        "--strategy",
        choices=devices.STRATEGY_CHOICES,
        default="auto",
        help="auto: MirroredStrategy if TensorFlow sees several GPUs; none: one device; multi-worker: "
        "several machines, each running this command with TF_CONFIG saying which it is "
        "(docs/multi_worker.md)",
    )


def _dataset_options(arguments: argparse.Namespace) -> dict[str, Any]:
    """The loader's options for reading ``--data``: a ``--view``'s, then those given on the command line."""
    if arguments.view is not None and arguments.data is None:
        raise UnetTutorialError(f"--view {arguments.view} needs --data: the folder that holds that dataset.")
    view = VIEW_NAMES[arguments.view].as_kwargs() if arguments.view else {}
    if arguments.mask_values is not None:
        view = _mask_values_file(arguments)
    num_classes = view.get("num_classes", 2)
    if arguments.num_classes is not None:
        if view and arguments.num_classes != num_classes:
            source = (
                f"--mask-values {arguments.mask_values}"
                if arguments.mask_values
                else f"--view {arguments.view}"
            )
            raise UnetTutorialError(
                f"--num-classes {arguments.num_classes} disagrees with {source}, whose masks "
                f"hold {num_classes} classes: leave --num-classes out."
            )
        num_classes = arguments.num_classes
    if num_classes < 2:
        raise UnetTutorialError(
            f"--num-classes {num_classes}: count the background too (2 for binary masks)."
        )
    binary_only = {"--invert": arguments.invert, "--mask-threshold": arguments.mask_threshold is not None}
    for option, given in binary_only.items():
        if given and num_classes != 2:
            raise UnetTutorialError(f"{option} is for binary masks; these have {num_classes} classes.")
    if arguments.invert and view:
        raise UnetTutorialError(
            f"--view {arguments.view} already says which stored value is the object: leave --invert out."
        )
    official_splits = view.get("official_splits") if arguments.official_split else None
    return {
        "images": arguments.images or view.get("images", "images"),
        "masks": arguments.masks or view.get("masks", "masks"),
        "mask_suffix": arguments.mask_suffix,
        "image_pattern": arguments.image_pattern,
        "mask_pattern": arguments.mask_pattern,
        "pairs_file": arguments.pairs_file,
        "num_classes": num_classes,
        "mask_values": view.get("mask_values"),
        "mask_threshold": arguments.mask_threshold,
        "invert": arguments.invert,
        # Lists, as run.json stores them, so that a resumed run finds the same settings.
        "ignore_values": sorted(
            {*view.get("ignore_values", ()), *arguments.ignore_value},
            key=lambda value: (isinstance(value, tuple), value),  # gray values, then colours
        ),
        "official_splits": {
            split: source if isinstance(source, str) else list(source)
            for split, source in official_splits.items()
        }
        if official_splits
        else None,
        "limit": arguments.limit,
    }


def _mask_values_path(arguments: argparse.Namespace) -> Path:
    """``--mask-values`` as given, or inside ``--data`` if it is not found as given."""
    path = arguments.mask_values
    if not path.is_file() and arguments.data is not None and (arguments.data / path).is_file():
        return arguments.data / path
    return path


def _mask_values_file(arguments: argparse.Namespace) -> dict[str, Any]:
    """What ``--mask-values FILE`` says, as a view's options: ``mask_values``, ``num_classes`` and the
    ``class_names`` of a ``name,r,g,b`` file (else None)."""
    from unet_helpers import mask_classes  # TensorFlow: loaded only when the file is given

    if arguments.view:
        raise UnetTutorialError(
            f"--view {arguments.view} says which stored value is which class: leave --mask-values out."
        )
    mask_values, class_names = mask_classes.read_mask_values(
        _mask_values_path(arguments), ignore_values=arguments.ignore_value
    )
    return {
        "mask_values": mask_values,
        "num_classes": max(mask_values.values()) + 1,
        "class_names": class_names,
    }


def _has_background(arguments: argparse.Namespace) -> bool:
    """Whether class 0 is a background the mean scores leave out: not for a view that says so (CamVid),
    nor for a ``--mask-values`` file of named classes (``name,r,g,b``), every one a thing to find."""
    if arguments.view:
        return VIEW_NAMES[arguments.view].background
    if arguments.mask_values is not None:
        return _mask_values_file(arguments)["class_names"] is None
    return True


def _check_before_loading(arguments: argparse.Namespace) -> dict[str, Any]:
    """Check what needs no TensorFlow, so that a mistake is reported at once; return the reading options."""
    if arguments.data is not None and not arguments.data.is_dir():
        raise UnetTutorialError(
            f"--data '{arguments.data}' is not a folder: pass the dataset folder that holds images/ "
            "and masks/."
        )
    reading = _dataset_options(arguments)
    if arguments.image_size is not None and arguments.image_size % 8:
        lower = arguments.image_size - arguments.image_size % 8
        raise UnetTutorialError(
            f"--image-size {arguments.image_size} is not a multiple of 8 (the UNet halves it three times); "
            f"use {f'{lower} or ' if lower else ''}{lower + 8}."
        )
    run_folder.check_folder(arguments.out)
    return reading


def _run(arguments: argparse.Namespace) -> TrainingResult:
    reading = _check_before_loading(arguments)
    num_classes = reading["num_classes"]
    # First TensorFlow: MultiWorkerMirroredStrategy must set up the runtime before anything uses it.
    strategy = devices.make_strategy(arguments.strategy)
    # Without --profile and UNET_PROFILE this looks for a GPU.
    profile = config.get_profile(arguments.profile)
    image_size = arguments.image_size or profile.image_size
    batch_size = arguments.batch_size or profile.batch_size
    import keras

    from unet_helpers import data, scales, synthetic, training

    if arguments.data is not None:
        root = arguments.data
    elif num_classes == 2:
        root = datasets.nuclei()
    else:
        root = synthetic.embedded_dataset(
            num_samples=profile.num_samples, image_size=image_size, num_classes=num_classes
        )
    splitting = {
        "seed": arguments.seed,
        "validation_fraction": arguments.validation_fraction,
        "shuffle_split": arguments.shuffle_split,
        "channels": arguments.channels,
        # auto resumes a run at the scale it began with.
        "scale": run_folder.recorded_settings(arguments.out).get("scale", arguments.scale)
        if arguments.scale == "auto"
        else arguments.scale,
    }
    augment = profile.augment if arguments.augment is None else arguments.augment
    splits = data.load_splits(
        root, image_size=image_size, batch_size=batch_size, augment=augment, **splitting, **reading
    )
    splitting["scale"] = splits.scale
    if splits.scale is None:  # predict gives new images the factor of a squeeze of one size (--scale auto)
        sizes = set(scales.image_sizes(splits.scan.pairs))
        splitting["squeezed_from"] = list(sizes.pop()) if len(sizes) == 1 else None
    keras.utils.set_random_seed(arguments.seed)
    return training.train_unet(
        train=splits.train,
        validation=splits.validation,
        out_dir=arguments.out,
        num_classes=num_classes,
        image_size=image_size,
        base_filters=arguments.base_filters or profile.base_filters,
        epochs=arguments.epochs or (EPOCHS_UNDER_A_TIME_LIMIT if arguments.time_limit else profile.epochs),
        time_limit=arguments.time_limit,
        learning_rate=arguments.learning_rate,
        standardize=arguments.standardize,
        background=_has_background(arguments),
        mixed_precision=arguments.mixed_precision,
        jit_compile=arguments.xla,
        strategy=strategy,
        early_stopping_patience=arguments.patience,
        reduce_lr_patience=max(arguments.patience // 2, 1),
        images_per_epoch=splits.train_count * (data.WINDOWS_PER_IMAGE if splits.scale else 1),
        settings={
            "data": str(Path(root).resolve()),
            "batch_size": batch_size,
            "augment": augment,
            **splitting,
            **reading,
            # As run.json keeps them: keys as text (colours included), compared when the run resumes.
            "mask_values": {str(key): value for key, value in (reading["mask_values"] or {}).items()} or None,
            "profile": profile.name,
        },
        verbose=1 if sys.stdout.isatty() else 2,
    )


def main(argv: list[str] | None = None) -> int:
    """Train from the command line; exit 0 when done, 2 with one line for a mistake, 130 on Ctrl-C."""
    arguments = _parser().parse_args(argv)
    try:
        result = _run(arguments)
    except TrainingInterrupted as error:
        print(f"\n{error}", file=sys.stderr)
        return 130
    except UnetTutorialError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nstopped by Ctrl-C before training started; what was saved before is kept.", file=sys.stderr)
        return 130
    if result.best_model_path is not None:
        files = (run_folder.BEST_MODEL, run_folder.HISTORY, run_folder.METRICS, run_folder.LEARNING_CURVES)
        print(
            f"Best {run_folder.MONITOR}: {result.best_val_dice:.4f} at epoch {result.best_epoch} "
            f"({result.epochs_completed} epochs, {result.status}). In '{result.out_dir}': "
            f"{', '.join(files)}, {run_folder.TENSORBOARD_LOGS}/."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
