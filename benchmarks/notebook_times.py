"""How long each notebook takes per profile, run as `make tutorial` runs it, and how fast the machine trains.

    .venv/bin/python benchmarks/notebook_times.py                      # smoke and workshop, every notebook
    .venv/bin/python benchmarks/notebook_times.py --profiles full --notebooks 00 01 02 03

Each notebook is executed and rendered by ``tools/render_streams.py`` (as ``make tutorial`` does), one after
the other in file order, with a fresh data folder (``UNET_DATA_DIR`` in a temporary folder: generated datasets
are made as a new user's first run makes them, and notebook 05 finds the model notebook 04 trained in that
profile). The training rate of the machine (``machine.training_rate``: the classic UNet in ``model.fit``)
is measured first: the training notebooks scale with it. Prints a table and writes
``results/notebook_times.json`` (one entry per profile, replaced when that profile is run again; with
``--notebooks``, those notebooks' times are added to it with the date and rate they were measured at): the
README's and each notebook's **Time** figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe, training_rate

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "notebook_times.json"


def run_notebook(notebook: Path, profile: str, data_dir: Path, out_dir: Path) -> float:
    """Seconds to execute and render ``notebook`` in ``profile``; raises if a cell fails."""
    environment = {**os.environ, "UNET_PROFILE": profile, "UNET_DATA_DIR": str(data_dir)}
    environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    command = [sys.executable, str(ROOT / "tools" / "render_streams.py"), "--to", "html", "--execute"]
    command += ["--ExecutePreprocessor.timeout=3600", "--output-dir", str(out_dir), str(notebook)]
    start = time.perf_counter()
    subprocess.run(command, env=environment, check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--profiles", nargs="+", default=["smoke", "workshop"], help="default: smoke workshop")
    add("--notebooks", nargs="+", metavar="NN", help="numbers to run, e.g. 00 04 (default: all)")
    arguments = parser.parse_args()
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if arguments.notebooks:
        notebooks = [path for path in notebooks if path.name[:2] in arguments.notebooks]

    machine = describe()
    rate = training_rate()
    print(f"classic UNet, model.fit: {rate:.1f} images/s (128x128, batches of 8)\n")
    times: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for profile in arguments.profiles:
            data_dir, out_dir = Path(scratch) / profile / "data", Path(scratch) / profile / "html"
            for notebook in notebooks:
                seconds = run_notebook(notebook, profile, data_dir, out_dir)
                times.setdefault(notebook.stem, {})[profile] = round(seconds, 1)
                print(f"{notebook.stem:32s} {profile:9s} {seconds:7.1f} s", flush=True)

    print(f"\n{'notebook':32s}" + "".join(f"{profile:>12s}" for profile in arguments.profiles))
    for name, by_profile in times.items():
        print(f"{name:32s}" + "".join(f"{by_profile[profile]:>10.1f} s" for profile in arguments.profiles))
    # One entry per profile, so that a run of some profiles keeps the others' figures; a run of some
    # notebooks adds theirs to the entry, with the date and machine rate they were measured at.
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for profile in arguments.profiles:
        seconds = {name: by_profile[profile] for name, by_profile in times.items()}
        measured = {"machine": machine, "classic_unet_images_per_second": round(rate, 2)}
        if arguments.notebooks and profile in results:
            results[profile]["seconds"].update(seconds)
            separately = results[profile].setdefault("measured_separately", {})
            separately.update({name: {**measured, "date": time.strftime("%Y-%m-%d")} for name in seconds})
        else:
            results[profile] = {**measured, "seconds": seconds}
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
