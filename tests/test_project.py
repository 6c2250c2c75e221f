"""Promises the project makes to its users: notebook structure, the README, and what CI runs."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
README = (ROOT / "README.md").read_text()


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def test_notebooks_are_numbered_in_reading_order():
    names = [path.name for path in NOTEBOOKS]
    assert names and names[0] == "00_setup.ipynb"
    numbers = [re.match(r"(\d\d)_[a-z0-9_]+\.ipynb$", name) for name in names]
    assert all(numbers), f"every notebook is named NN_lowercase_words.ipynb: {names}"
    assert len({number.group(1) for number in numbers}) == len(names), (
        f"two notebooks share a number: {names}"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_opens_with_title_goals_time_and_setup(path):
    first, second = cells(path)[:2]
    intro = source(first)
    assert first["cell_type"] == "markdown" and intro.startswith("# "), "first cell: a # title"
    assert "**You will learn**" in intro
    assert "**Time:**" in intro
    assert second["cell_type"] == "code" and 'if "google.colab" in sys.modules:' in source(second)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_is_committed_without_outputs(path):
    for cell in cells(path):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


def test_readme_lists_exactly_the_notebooks():
    listed = re.findall(r"\[`?(\d\d_\w+\.ipynb)`?\]", README)
    assert listed == [path.name for path in NOTEBOOKS]


def test_ci_runs_the_readme_test_command():
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^(make \w+)", quick_start, flags=re.MULTILINE)
    assert commands == ["make lab", "make test"]
    ci_commands = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert "make test" in ci_commands
