"""The index page of `make tutorial` (tools/tutorial_index.py), built from notebooks that are not run."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "tutorial_index.py"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

_spec = importlib.util.spec_from_file_location("tutorial_index", SCRIPT)
tutorial_index = importlib.util.module_from_spec(_spec)
sys.modules["tutorial_index"] = tutorial_index  # dataclasses look their module up there
_spec.loader.exec_module(tutorial_index)


class _Sections(HTMLParser):
    """Collects, per <section>, the link of its <h2>, the heading's text, its list items and all its text."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[dict] = []
        self._open: list[str] = []

    def handle_starttag(self, tag, attrs):
        self._open.append(tag)
        if tag == "section":
            self.sections.append({"href": None, "title": "", "items": [], "text": ""})
        elif tag == "a" and "h2" in self._open:
            self.sections[-1]["href"] = dict(attrs)["href"]
        elif tag == "li":
            self.sections[-1]["items"].append("")

    def handle_endtag(self, tag):
        self._open.pop()

    def handle_data(self, data):
        if "section" not in self._open:
            return
        section = self.sections[-1]
        section["text"] += data
        if "h2" in self._open:
            section["title"] += data
        if "li" in self._open:
            section["items"][-1] += data


def sections_of(index: Path) -> list[dict]:
    parser = _Sections()
    parser.feed(index.read_text(encoding="utf-8"))
    return parser.sections


def first_cell_lines(path: Path) -> list[str]:
    return "".join(json.loads(path.read_text())["cells"][0]["source"]).splitlines()


def test_index_links_every_notebook_in_order_with_its_title_goals_and_time(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--notebooks", str(ROOT / "notebooks"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "UNET_PROFILE": "smoke"},
        check=False,
    )
    assert result.returncode == 0, result.stderr

    sections = sections_of(tmp_path / "index.html")
    assert [section["href"] for section in sections] == [f"{path.stem}.html" for path in NOTEBOOKS]
    for path, section in zip(NOTEBOOKS, sections, strict=True):
        lines = first_cell_lines(path)
        assert section["title"] == lines[0].removeprefix("# ")
        after = lines[lines.index("**You will learn**") + 1 :]
        goals = after[: after.index("")]
        assert len(section["items"]) == sum(line.startswith("- ") for line in goals)
        # Every word of the goals, continuation lines included, with the markdown marks gone.
        words = " ".join(line.removeprefix("- ") for line in goals).replace("`", "").replace("*", "")
        assert " ".join(section["items"]).split() == words.split()
        assert "Time:" in section["text"] and "(smoke)" in section["text"]


def test_a_notebook_without_goals_gets_its_first_paragraph_and_markup_is_escaped(tmp_path):
    intro = "# 07 · <Odd> & new\n\nOne `paragraph` with *emphasis* & a <tag>.\n\n**Time:** about 1 s."
    notebook = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": intro}], "metadata": {}}
    (tmp_path / "07_odd.ipynb").write_text(json.dumps(notebook))

    index = tutorial_index.write_index(notebooks=tmp_path, out=tmp_path / "html", profile="workshop")

    page = index.read_text(encoding="utf-8")
    assert '<a href="07_odd.html">07 · &lt;Odd&gt; &amp; new</a>' in page
    assert "<p>One <code>paragraph</code> with <em>emphasis</em> &amp; a &lt;tag&gt;.</p>" in page
    assert "<strong>Time:</strong> about 1 s." in page
    assert list((tmp_path / "html").iterdir()) == [index]  # nothing left behind but the page


def test_a_folder_without_notebooks_is_one_line_and_exit_code_2(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--notebooks", str(tmp_path), "--out", str(tmp_path / "html")],
        capture_output=True,
        text=True,
        env={**os.environ, "UNET_PROFILE": "smoke"},
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert not (tmp_path / "html").exists()
