"""Drive a real JupyterLab in a real Chromium: start a server, run a notebook through the UI, read the result.

Used by tests/test_browser.py. Run as a script, it prints the Chromium it would use, or (exit code 1) what to
install: the Makefile's `browser` target asks it before installing one.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CHROMIUM_VARIABLE = "UNET_CHROMIUM"
INSTALL_HINT = (
    "no Chromium for the browser test: install it (Debian/Ubuntu: apt-get install chromium, which "
    "`make test` does; macOS: brew install --cask chromium; or .venv/bin/playwright install chromium) and, "
    f"if it is not on the PATH as chromium, set {CHROMIUM_VARIABLE}=/path/to/chromium"
)
# Headless in a container: no sandbox (root), no GPU, and nothing that phones home while the test runs.
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
# JupyterLab user settings for the test's own settings folder: no news prompt, no update check, and every
# cell kept in the DOM (windowing would leave off-screen outputs unrendered).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def find_chromium() -> str | None:
    """Return the path of a Chromium to drive, or None.

    Looks, in order, at $UNET_CHROMIUM, `chromium` and `chromium-browser` on the PATH, and the Chromium that
    `playwright install chromium` puts in Playwright's own folder.
    """
    configured = os.environ.get(CHROMIUM_VARIABLE, "").strip()
    if configured:  # named on purpose: no other browser stands in for it
        return configured if Path(configured).is_file() else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    with sync_playwright() as playwright:
        bundled = playwright.chromium.executable_path
    return bundled if Path(bundled).is_file() else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class LabServer:
    """A running JupyterLab: its address, token and root folder (where notebooks to open must be)."""

    url: str
    token: str
    root: Path

    def notebook_url(self, name: str) -> str:
        """The address that opens notebook `name` alone, in a workspace of its own (no tabs restored)."""
        workspace = Path(name).stem
        return f"{self.url}lab/workspaces/{workspace}/tree/{name}?reset&token={self.token}"


@contextmanager
def running_jupyterlab(
    *, workdir: Path, environment: dict[str, str], timeout: float = 60
) -> Iterator[LabServer]:
    """Start JupyterLab on 127.0.0.1 with a token, rooted at `workdir`/root, and stop it on exit.

    Its Jupyter configuration, data, runtime and settings folders all live under `workdir`, so the user's
    own settings, kernels and workspaces neither change the test nor get changed by it. `environment` is
    added to the server's environment, which its kernels inherit.
    """
    root = workdir / "root"
    root.mkdir(parents=True, exist_ok=True)
    settings = workdir / "lab-settings"
    for relative, values in LAB_SETTINGS.items():
        path = settings / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port = _free_port()
    token = secrets.token_hex(16)
    log_path = workdir / "jupyterlab.log"
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",  # containers and CI run as root; harmless otherwise
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: run commands, read notebook models
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    env = {
        **os.environ,
        **environment,
        "JUPYTER_CONFIG_DIR": str(workdir / "config"),
        "JUPYTER_DATA_DIR": str(workdir / "data"),
        "JUPYTER_RUNTIME_DIR": str(workdir / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(workdir / "workspaces"),
    }
    with log_path.open("w") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_up(server, f"{url}api/status?token={token}", log_path, timeout)
        yield LabServer(url=url, token=token, root=root)
    finally:
        # SIGTERM: the server shuts its kernels down before it exits.
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_until_up(server: subprocess.Popen, status_url: str, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(status_url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s:\n{log_path.read_text()[-3000:]}")


@dataclass(frozen=True)
class NotebookRun:
    """What a notebook run in the browser left behind.

    Attributes:
        errors: one line per error output, `cell N: EName: message` (N counts code cells from 1).
        unexecuted: numbers of the code cells without an execution count (N counts code cells from 1).
        image_outputs: image/png or image/svg+xml outputs in the notebook model.
        rendered_images: images JupyterLab actually drew in the page (`.jp-RenderedImage img`).
        code_cells: how many code cells the notebook has.
    """

    errors: list[str]
    unexecuted: list[int]
    image_outputs: int
    rendered_images: int
    code_cells: int

    def problems(self, *, expect_figure: bool = True) -> list[str]:
        """Everything that makes this run a failure, one line each; empty when the notebook ran cleanly."""
        found = [f"error output in {error}" for error in self.errors]
        if self.unexecuted:
            found.append(f"code cells never executed: {self.unexecuted} of {self.code_cells}")
        if expect_figure and self.rendered_images == 0:
            found.append(
                f"no figure rendered in the page ({self.image_outputs} image outputs in the notebook model)"
            )
        return found


# Functions evaluated in the page, each given the notebook's path. They find the notebook's panel by path, not
# as "the current widget", so that another tab taking the focus cannot make them read the wrong notebook.
_FIND_PANEL = """(app, path) => [...app.shell.widgets('main')].find(
    (widget) => widget.context && widget.context.path === path && widget.content && widget.content.model
)"""
_KERNEL_IS_IDLE = f"""(path) => {{
    const app = window.jupyterapp;
    const panel = app && ({_FIND_PANEL})(app, path);
    const session = panel && panel.context.isReady && panel.sessionContext.session;
    return Boolean(session && session.kernel && session.kernel.status === 'idle');
}}"""
# "Run All" through the command registry, as the menu runs it; its promise settles after the last cell.
_START_RUN_ALL = f"""(path) => {{
    const app = window.jupyterapp;
    app.shell.activateById(({_FIND_PANEL})(app, path).id);
    window.__runAllDone = false;
    app.commands.execute('notebook:run-all-cells').then(
        () => {{ window.__runAllDone = true; }},
        (error) => {{ window.__runAllDone = true; window.__runAllError = String(error); }},
    );
}}"""
_RUN_ALL_FINISHED = f"(path) => window.__runAllDone === true && ({_KERNEL_IS_IDLE})(path)"
_PANEL_ID = f"(path) => ({_FIND_PANEL})(window.jupyterapp, path).id"
_NOTEBOOK_JSON = f"(path) => ({_FIND_PANEL})(window.jupyterapp, path).content.model.toJSON()"


def run_notebook_in_browser(
    page, *, server: LabServer, name: str, screenshot: Path, timeout: float = 300
) -> NotebookRun:
    """Open notebook `name` (in the server's root) in `page`, run all its cells through the UI, and report.

    Accepts JupyterLab's "Select Kernel" dialog if one opens, waits until "Run All" has finished and the
    kernel is idle, saves a screenshot of the page (scrolled to the first figure, if any) to `screenshot`,
    and reads the outputs from the notebook model that JupyterLab shows.
    """
    page.goto(server.notebook_url(name), wait_until="domcontentloaded")
    _wait_for_idle_kernel(page, name=name, timeout=90)
    page.evaluate(_START_RUN_ALL, name)
    page.wait_for_function(_RUN_ALL_FINISHED, arg=name, timeout=timeout * 1000, polling=500)
    failure = page.evaluate("() => window.__runAllError || null")
    if failure:
        raise RuntimeError(f"JupyterLab's run-all-cells command failed: {failure}")
    notebook = page.evaluate(_NOTEBOOK_JSON, name)
    panel_id = page.evaluate(_PANEL_ID, name)
    images = page.locator(f'[id="{panel_id}"] .jp-RenderedImage img')
    rendered_images = images.count()
    if rendered_images:
        images.first.scroll_into_view_if_needed()
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshot))
    return read_run(notebook, rendered_images=rendered_images)


def _wait_for_idle_kernel(page, *, name: str, timeout: float) -> None:
    """Wait until notebook `name`'s kernel is idle, clicking "Select" if JupyterLab asks for a kernel."""
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    deadline = time.monotonic() + timeout
    while not page.evaluate(_KERNEL_IS_IDLE, name):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the notebook's kernel was not idle within {timeout:.0f} s")
        if dialog.count():
            dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
        time.sleep(0.25)


def read_run(notebook: dict, *, rendered_images: int) -> NotebookRun:
    """Summarise an nbformat notebook (as JSON) after a run; see NotebookRun."""
    code_cells = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    errors = []
    unexecuted = []
    image_outputs = 0
    for number, cell in enumerate(code_cells, start=1):
        if cell.get("execution_count") is None:
            unexecuted.append(number)
        for output in cell.get("outputs", []):
            if output["output_type"] == "error":
                errors.append(f"cell {number}: {output['ename']}: {output['evalue']}")
            data = output.get("data", {})
            image_outputs += int("image/png" in data or "image/svg+xml" in data)
    return NotebookRun(
        errors=errors,
        unexecuted=unexecuted,
        image_outputs=image_outputs,
        rendered_images=rendered_images,
        code_cells=len(code_cells),
    )


if __name__ == "__main__":
    chromium = find_chromium()
    if chromium is None:
        print(INSTALL_HINT, file=sys.stderr)
        sys.exit(1)
    print(f"Chromium for the browser test: {chromium}")
