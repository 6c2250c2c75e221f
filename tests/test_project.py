"""Promises the project makes to its users: notebook structure, the README, and what CI runs."""

import ast
import importlib
import importlib.metadata
import inspect
import json
import re
import shlex
import sys
import types
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


def test_readme_gives_both_commands_on_its_first_screen_and_stays_short():
    first_screen = README.splitlines()[:25]
    assert "make lab" in "\n".join(first_screen) and "make test" in "\n".join(first_screen)
    assert len(README.splitlines()) < 150  # reference material lives in docs/


@pytest.mark.parametrize("page", ["README.md", *sorted(path.name for path in (ROOT / "docs").glob("*.md"))])
def test_relative_links_of_the_readme_and_docs_lead_to_files_and_sections_that_exist(page):
    path = ROOT / page if page == "README.md" else ROOT / "docs" / page
    text = path.read_text()
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):  # https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        assert linked.exists(), f"{page}: {target} leads nowhere"
        if anchor and linked.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", linked.read_text(), flags=re.MULTILINE)
            slugs = {re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-") for heading in headings}
            assert anchor in slugs, f"{page}: {target}: no such section"


# --- Colab: the badge and the setup cell ------------------------------------------------------------------

PYPROJECT_URLS = (ROOT / "pyproject.toml").read_text().split("[project.urls]", 1)[1].split("\n[", 1)[0]
REPOSITORY = re.search(r'^Repository\s*=\s*"([^"]+)"', PYPROJECT_URLS, flags=re.MULTILINE).group(1)
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
# pip options that would let the Colab install replace packages Colab already has (its TensorFlow above all).
REPLACING_OPTIONS = {"-U", "--upgrade", "--force-reinstall", "-I", "--ignore-installed", "--upgrade-strategy"}


def test_pyproject_repository_is_on_github():
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", REPOSITORY), REPOSITORY


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_colab_badge_under_the_title_opens_this_notebook(path):
    lines = [line for line in source(cells(path)[0]).splitlines() if line.strip()]
    owner_and_name = REPOSITORY.removeprefix("https://github.com/")
    colab = f"https://colab.research.google.com/github/{owner_and_name}/blob/main/notebooks/{path.name}"
    assert lines[1] == f"[![Open In Colab]({COLAB_BADGE})]({colab})", "the line after the # title"


def setup_cell(path: Path) -> ast.Module:
    """The setup cell as Python: IPython's own transformer turns `%pip ...` into a get_ipython() call."""
    from IPython.core.inputtransformer2 import TransformerManager

    return ast.parse(TransformerManager().transform_cell(source(cells(path)[1])))


def is_colab_guard(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and ast.unparse(node.test) == "'google.colab' in sys.modules"


def magic_calls(node: ast.AST) -> list[ast.Call]:
    """Magics and shell escapes (`%pip`, `!pip`), which IPython runs through get_ipython()."""
    return [
        call
        for call in ast.walk(node)
        if isinstance(call, ast.Call) and "get_ipython()" in ast.unparse(call.func)
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_setup_cell_installs_from_the_pyproject_repository(path):
    (assignment,) = [
        node
        for node in setup_cell(path).body
        if isinstance(node, ast.Assign) and [ast.unparse(target) for target in node.targets] == ["REPO_URL"]
    ]
    assert ast.literal_eval(assignment.value) == REPOSITORY


def run_setup_until_installed(path: Path, *, in_colab: bool, monkeypatch) -> list[str]:
    """Run the setup cell up to its Colab block, without IPython; return the pip commands it would run."""
    from IPython.utils.text import DollarFormatter

    tree = setup_cell(path)
    guard = next(index for index, node in enumerate(tree.body) if is_colab_guard(node))
    commands = []

    class Shell:
        def run_line_magic(self, name, line, _stack_depth=1):
            # IPython expands {expressions} in a magic's line from the cell's variables, like this.
            commands.append(f"{name} {DollarFormatter().vformat(line, args=[], kwargs=namespace)}")

    namespace = {"get_ipython": Shell}
    if in_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(compile(ast.Module(body=tree.body[: guard + 1], type_ignores=[]), str(path), "exec"), namespace)
    return commands


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_setup_cell_installs_nothing_outside_colab(path, monkeypatch):
    tree = setup_cell(path)
    guards = [node for node in tree.body if is_colab_guard(node)]
    assert len(guards) == 1, 'one `if "google.colab" in sys.modules:` block at the top level'
    guarded = {id(call) for call in magic_calls(guards[0])}
    assert all(id(call) in guarded for call in magic_calls(tree)), "a magic outside the Colab block"
    assert run_setup_until_installed(path, in_colab=False, monkeypatch=monkeypatch) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_colab_install_keeps_colabs_tensorflow(path, monkeypatch):
    (command,) = run_setup_until_installed(path, in_colab=True, monkeypatch=monkeypatch)
    name, *arguments = shlex.split(command)
    assert [name, arguments[0]] == ["pip", "install"]
    assert not REPLACING_OPTIONS & set(arguments), f"an option that replaces installed packages: {command}"
    requirements = [argument for argument in arguments[1:] if not argument.startswith("-")]
    # Without the pin, pip may move TensorFlow to satisfy another requirement (a newer opencv needing NumPy 2,
    # say); Colab's build matches its CUDA, so it has to stay. The pin is the version installed now.
    assert requirements == [
        f"unet-helpers @ git+{REPOSITORY}",
        f"tensorflow=={importlib.metadata.version('tensorflow')}",
    ]


# --- Workshops: exercises with hidden solutions ------------------------------------------------------------

SOLUTION_METADATA = {"jupyter": {"source_hidden": True}, "tags": ["solution"], "cellView": "form"}


def exercises(path: Path) -> list[tuple[dict, dict]]:
    """(task cell, the cell after it) for each "### Exercise N" cell, after checking the section's place."""
    all_cells = cells(path)
    headings = [
        (index, line)
        for index, cell in enumerate(all_cells)
        if cell["cell_type"] == "markdown"
        for line in source(cell).splitlines()
        if line.startswith("## ")
    ]
    assert [line for _, line in headings[-2:]] == ["## Exercises", "## Next"], (
        "the last two sections: ## Exercises, then ## Next"
    )
    start, end = headings[-2][0], headings[-1][0]
    return [
        (cell, all_cells[index + 1])
        for index, cell in enumerate(all_cells[start:end], start=start)
        if cell["cell_type"] == "markdown" and source(cell).startswith("### Exercise")
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_ends_with_exercises_then_next(path):
    tasks = [source(task).splitlines()[0] for task, _ in exercises(path)]
    assert 1 <= len(tasks) <= 3, tasks
    for number, heading in enumerate(tasks, start=1):
        assert re.fullmatch(rf"### Exercise {number}: \S.*", heading), heading


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_every_exercise_has_a_hidden_solution_that_checks_itself(path):
    for number, (_, solution) in enumerate(exercises(path), start=1):
        assert solution["cell_type"] == "code", f"exercise {number}: a solution cell right after the task"
        assert solution["metadata"] == SOLUTION_METADATA, (
            f"exercise {number}: collapsed in JupyterLab and Colab"
        )
        lines = source(solution).splitlines()
        # Colab shows a `cellView: form` cell as its @title alone; the code opens on a double-click.
        assert lines[0] == f"# @title Solution to exercise {number} (double-click to show)"
        # nbval runs the solution, so a claim it asserts cannot go stale unnoticed.
        checks = [node for node in ast.walk(ast.parse(source(solution))) if isinstance(node, ast.Assert)]
        assert checks, f"exercise {number}: the solution asserts nothing"


# --- Workshops: the instructor's guide ----------------------------------------------------------------------

INSTRUCTOR_GUIDE = ROOT / "docs" / "instructor.md"


def test_instructor_guide_names_only_what_the_package_has():
    """Every `unet_helpers.module.name(argument=...)` in backticks exists, with those keyword arguments."""
    cited = re.findall(r"`unet_helpers\.(\w+)\.([\w.]+)(?:\(([^`]*)\))?`", INSTRUCTOR_GUIDE.read_text())
    assert len(cited) >= 10
    for module_name, attributes, arguments in cited:
        name = f"unet_helpers.{module_name}.{attributes}"
        found = importlib.import_module(f"unet_helpers.{module_name}")
        for attribute in attributes.split("."):
            assert hasattr(found, attribute), f"{name} does not exist"
            found = getattr(found, attribute)
        keywords = re.findall(r"(\w+)=(?!=)", arguments or "")
        if keywords:
            parameters = inspect.signature(found).parameters
            assert not set(keywords) - set(parameters), (
                f"{name} has no argument {set(keywords) - set(parameters)}"
            )


def test_instructor_guide_cites_sections_the_notebooks_have():
    """Links like [01 · 6. Your own data](../notebooks/01_data_loading.ipynb) name a real section."""
    cited = re.findall(
        r"\[(\d\d) · ([^\]]+)\]\(\.\./notebooks/((\d\d)_\w+\.ipynb)\)", INSTRUCTOR_GUIDE.read_text()
    )
    assert len(cited) >= 10
    for number, section, name, file_number in cited:
        assert number == file_number, f"{number} · {section} links to {name}"
        path = ROOT / "notebooks" / name
        assert path.is_file(), f"the guide links to {name}, which does not exist"
        headings = {
            line.lstrip("#").strip()
            for cell in cells(path)
            if cell["cell_type"] == "markdown"
            for line in source(cell).splitlines()
            if line.startswith("##")
        }
        assert section in headings, f"{name} has no section {section!r}"
