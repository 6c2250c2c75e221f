"""Write index.html for the rendered tutorial: the notebooks in reading order, from their own first cells.

Each notebook opens with a markdown cell holding its title (`# NN · Title`), the "**You will learn**" bullets
and a "**Time:**" line (tests/test_project.py keeps them there). This reads them and links each notebook's
HTML page, which `make tutorial` renders beside the index: no list is kept by hand.

    python tools/tutorial_index.py --notebooks notebooks --out build/tutorial
"""

from __future__ import annotations

import html
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from unet_helpers.cli import ArgumentParser
from unet_helpers.errors import UnetTutorialError


@dataclass(frozen=True)
class NotebookEntry:
    """What the index says about one notebook: its file, title, goals (or a summary) and time line."""

    path: Path
    title: str
    goals: list[str]
    summary: str
    time: str


def read_entry(path: Path) -> NotebookEntry:
    """Read the title, "You will learn" bullets, first paragraph and "Time:" line of a notebook's first cell.

    Raises:
        UnetTutorialError: the file is not a notebook, or its first cell has no `# ` title.
    """
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError) as error:
        raise UnetTutorialError(f"{path}: not a readable notebook ({error}); fix or remove it.") from error
    intro = "".join(cells[0]["source"]) if cells and cells[0]["cell_type"] == "markdown" else ""
    lines = intro.splitlines()
    titles = [line[2:].strip() for line in lines if line.startswith("# ")]
    if not titles:
        raise UnetTutorialError(f"{path}: the first cell must be markdown that starts with a '# ' title.")
    paragraphs = [
        " ".join(line.strip() for line in block.splitlines()) for block in re.split(r"\n\s*\n", intro)
    ]
    body = [block for block in paragraphs if block and not block.startswith(("#", "**", "- ", "[!["))]
    time_line = next((block for block in paragraphs if block.startswith("**Time:**")), "")
    return NotebookEntry(
        path=path,
        title=titles[0],
        goals=_bullets_after("**You will learn**", lines),
        summary=body[0] if body else "",
        time=time_line.removeprefix("**Time:**").strip(),
    )


def _bullets_after(heading: str, lines: list[str]) -> list[str]:
    """The `- ` items that follow the line `heading`, each with its indented continuation lines joined."""
    if heading not in lines:
        return []
    bullets: list[str] = []
    for line in lines[lines.index(heading) + 1 :]:
        if line.startswith("- "):
            bullets.append(line[2:].strip())
        elif bullets and line.startswith(" ") and line.strip():
            bullets[-1] += " " + line.strip()
        else:
            break
    return bullets


def inline_markdown(text: str) -> str:
    """HTML for the inline markdown of the notebooks' intros: `code`, **bold**, *italic*; the rest escaped."""
    parts = re.split(r"(`[^`]*`)", text)
    rendered = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            rendered.append(f"<code>{html.escape(part[1:-1])}</code>")
            continue
        escaped = html.escape(part)
        escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
        rendered.append(re.sub(r"\*(.+?)\*", r"<em>\1</em>", escaped))
    return "".join(rendered)


def render_index(entries: list[NotebookEntry], *, profile: str) -> str:
    """The index page: one section per notebook, linking `<notebook name>.html` in the same folder."""
    sections = []
    for entry in entries:
        link = html.escape(entry.path.with_suffix(".html").name, quote=True)
        if entry.goals:
            items = "".join(f"<li>{inline_markdown(goal)}</li>" for goal in entry.goals)
            description = f"<p>You will learn</p><ul>{items}</ul>"
        else:
            description = f"<p>{inline_markdown(entry.summary)}</p>"
        time_line = (
            f'<p class="time"><strong>Time:</strong> {inline_markdown(entry.time)}</p>' if entry.time else ""
        )
        sections.append(
            f'<section><h2><a href="{link}">{html.escape(entry.title)}</a></h2>'
            f'<p class="file">{html.escape(entry.path.name)}</p>{description}{time_line}</section>'
        )
    caveat = " It runs in seconds; its numbers and figures show that the code works, not what a UNet learns."
    caveat = caveat if profile == "smoke" else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>unet-tutorial: the notebooks</title>
<style>
body {{ font-family: sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45;
       color: #222; background: #fff; }}
section {{ border-top: 1px solid #ddd; padding: 0.5rem 0; }}
h2 {{ margin-bottom: 0.2rem; }}
.file, .time {{ color: #555; }}
code {{ background: #f3f3f3; padding: 0 0.2rem; }}
</style>
</head>
<body>
<h1>unet-tutorial: image segmentation with a UNet</h1>
<p>The notebooks in reading order, executed in the <code>{html.escape(profile)}</code> profile.{caveat}</p>
{"".join(sections)}
</body>
</html>
"""


def write_index(*, notebooks: Path, out: Path, profile: str) -> Path:
    """Write `out`/index.html for the notebooks `notebooks`/*.ipynb (sorted by name) and return its path.

    Raises:
        UnetTutorialError: `notebooks` holds no notebook, or one of them has no title.
    """
    paths = sorted(notebooks.glob("*.ipynb"))
    if not paths:
        raise UnetTutorialError(f"{notebooks}: no .ipynb files; pass the folder that holds the notebooks.")
    page = render_index([read_entry(path) for path in paths], profile=profile)
    out.mkdir(parents=True, exist_ok=True)
    index = out / "index.html"
    # Written whole, then renamed, so that a browser never shows half a page.
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=out, suffix=".tmp", delete=False
    ) as temporary:
        temporary.write(page)
    os.replace(temporary.name, index)
    return index


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebooks", type=Path, default=Path("notebooks"), help="folder of the notebooks")
    parser.add_argument(
        "--out", type=Path, default=Path("build/tutorial"), help="folder of the rendered HTML"
    )
    parser.add_argument("--profile", help="the profile the notebooks ran in (default: the active one)")
    arguments = parser.parse_args(argv)
    try:
        profile = arguments.profile
        if profile is None:
            from unet_helpers import config

            profile, _ = config.resolve_profile_name()
        index = write_index(notebooks=arguments.notebooks, out=arguments.out, profile=profile)
    except UnetTutorialError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"index written to {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
