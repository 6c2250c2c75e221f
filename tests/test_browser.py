"""A notebook of the series, run in a real JupyterLab in a real Chromium, as a learner runs it.

nbval runs the notebooks in a kernel; this checks what nbval cannot: that JupyterLab opens the notebook, that
"Run All" from the UI gets through every cell without an error, and that the figures are drawn in the page.
The server, its settings and the notebook copy live in a temporary folder; the repository's notebooks are
never opened in place, so no outputs are saved into them. Screenshots go to build/browser/.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from jupyterlab_browser import (
    CHROMIUM_FLAGS,
    INSTALL_HINT,
    find_chromium,
    run_notebook_in_browser,
    running_jupyterlab,
)

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "build" / "browser"
# Draws figures and runs in about 15 s in the smoke profile.
NOTEBOOK = ROOT / "notebooks" / "01_data_loading.ipynb"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("jupyterlab")
    environment = {"UNET_PROFILE": "smoke", "UNET_DATA_DIR": str(workdir / "unet-data")}
    with running_jupyterlab(workdir=workdir, environment=environment) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "Playwright is missing: run `make test`, or pip install -e '.[dev]' in the .venv", pytrace=False
        )
    chromium = find_chromium()
    if chromium is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=list(CHROMIUM_FLAGS))
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A page in a fresh browser context: no storage or open tabs carried over from another test."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    yield context.new_page()
    context.close()


def test_notebook_runs_in_jupyterlab_and_draws_figures(lab_server, page, capsys):
    shutil.copy(NOTEBOOK, lab_server.root / NOTEBOOK.name)
    screenshot = SCREENSHOTS / f"{NOTEBOOK.stem}.png"

    run = run_notebook_in_browser(page, server=lab_server, name=NOTEBOOK.name, screenshot=screenshot)

    with capsys.disabled():
        print(f"\nscreenshot of {NOTEBOOK.name} in JupyterLab: {screenshot}")
    assert run.problems() == []
    assert run.code_cells > 0 and run.rendered_images >= 1


def test_a_cell_that_raises_fails_the_check(lab_server, page):
    # No kernelspec in the metadata: JupyterLab asks for a kernel, as it does for a notebook made elsewhere.
    notebook = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            _code_cell(number, source)
            for number, source in enumerate(
                [
                    "print('before the failure')",
                    "raise ValueError('a deliberate failure')",
                    "print('never runs')",
                ]
            )
        ],
    }
    (lab_server.root / "failing.ipynb").write_text(json.dumps(notebook))

    run = run_notebook_in_browser(
        page, server=lab_server, name="failing.ipynb", screenshot=SCREENSHOTS / "failing.png"
    )

    assert run.problems() == [
        "error output in cell 2: ValueError: a deliberate failure",
        "code cells never executed: [3] of 3",
        "no figure rendered in the page (0 image outputs in the notebook model)",
    ]


def _code_cell(number: int, source: str) -> dict:
    return {
        "cell_type": "code",
        "id": f"cell-{number}",
        "metadata": {},
        "source": source,
        "outputs": [],
        "execution_count": None,
    }
