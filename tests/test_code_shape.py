"""The shape of the code that readers meet: modules of one job and readable length, functions that fit on a
screen, an import graph without cycles, and notebook code cells short enough to read (issue 13).

The limits are the project's rules of thumb, measured on the source itself, so that the next change that
breaks one says so here instead of in a review.
"""

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "unet_helpers"
MODULES = sorted(PACKAGE.rglob("*.py"))
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80  # without its docstring
MAX_CELL_LINES = 25  # exercise solutions (tag "solution") excepted


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def function_lengths(tree: ast.AST) -> dict[str, int]:
    """Lines of every function and method, its docstring left out."""
    lengths = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines = node.end_lineno - node.lineno + 1
            if ast.get_docstring(node) is not None:
                docstring = node.body[0]
                lines -= docstring.end_lineno - docstring.lineno + 1
            lengths[f"{node.name} (line {node.lineno})"] = lines
    return lengths


def package_imports(path: Path) -> set[str]:
    """The package modules that ``path`` imports anywhere (top level or inside functions), by full name."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:  # relative: from the importing module's package
                package = module_name(path).split(".")[: -node.level or None]
                base = ".".join([*package, node.module])
            imported.add(base)
            imported |= {f"{base}.{alias.name}" for alias in node.names}
    known = {module_name(module) for module in MODULES}
    return {name for name in imported if name in known and name != "unet_helpers"}


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(ROOT)))
def test_module_is_at_most_600_lines(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.name} has {lines} lines: split it by job"


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(ROOT)))
def test_functions_fit_on_a_screen(path):
    lengths = function_lengths(ast.parse(path.read_text()))
    too_long = {name: lines for name, lines in lengths.items() if lines > MAX_FUNCTION_LINES}
    assert not too_long, f"{path.name}: functions over {MAX_FUNCTION_LINES} lines: {too_long}"


def test_function_length_counts_code_not_docstrings():
    body = "\n".join(f"    x{index} = {index}" for index in range(81))
    documented = f'def f():\n    """One\n    two\n    three."""\n{body}\n'
    assert function_lengths(ast.parse(documented)) == {"f (line 1)": 82}  # the def line and 81 statements


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle of ``graph``, each as the path that closes it."""
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for neighbour in sorted(graph.get(node, ())):
            if state.get(neighbour) == "open":
                found.append([*path[path.index(neighbour) :], neighbour])
            elif neighbour not in state:
                visit(neighbour, [*path, neighbour])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_the_package_has_no_import_cycle():
    graph = {module_name(path): package_imports(path) for path in MODULES}
    assert graph["unet_helpers.training"] >= {"unet_helpers.run_folder", "unet_helpers.devices"}
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]


def test_viz_only_draws_and_metrics_never_draws():
    for path in MODULES:
        imported = package_imports(path)
        if module_name(path).startswith("unet_helpers.viz"):
            continue
        if module_name(path) in ("unet_helpers.metrics", "unet_helpers.instance_metrics"):
            assert not {name for name in imported if name.startswith("unet_helpers.viz")}, path.name
            assert "matplotlib" not in path.read_text(), path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_code_cells_are_short(path):
    long_cells = {
        index: len("".join(cell["source"]).splitlines())
        for index, cell in enumerate(json.loads(path.read_text())["cells"])
        if cell["cell_type"] == "code"
        and "solution" not in cell["metadata"].get("tags", [])
        and len("".join(cell["source"]).splitlines()) > MAX_CELL_LINES
    }
    assert not long_cells, f"{path.name}: code cells over {MAX_CELL_LINES} lines (index: lines): {long_cells}"
