"""Check that Python and the libraries installed meet what the series needs.

The requirements are read from this package's own metadata (``pyproject.toml``), so they are written
in one place only. Versions are read from the imported modules, not from the distributions, so that
equivalent builds count (``opencv-python`` for ``opencv-python-headless``, ``tensorflow-cpu`` or
Colab's own TensorFlow for ``tensorflow``).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import platform
from dataclasses import dataclass

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from unet_helpers.errors import UnetTutorialError

DISTRIBUTION = "unet-helpers"

# The module each requirement is imported as.
MODULE_OF_REQUIREMENT = {
    "tensorflow": "tensorflow",
    "keras": "keras",
    "numpy": "numpy",
    "matplotlib": "matplotlib",
    "opencv-python-headless": "cv2",
    "pillow": "PIL",
    "packaging": "packaging",
    "tqdm": "tqdm",
}


@dataclass(frozen=True)
class VersionCheck:
    """One requirement and what is installed.

    Attributes:
        name: ``"python"`` or a distribution name from ``pyproject.toml``.
        required: the version specifier, e.g. ``">=2.16.1,<3"``.
        found: the installed version, or ``None`` when the module does not import.
    """

    name: str
    required: str
    found: str | None

    @property
    def ok(self) -> bool:
        """Whether the installed version meets the requirement."""
        return self.found is not None and SpecifierSet(self.required).contains(self.found, prereleases=True)

    @property
    def advice(self) -> str:
        """What to do about a failed check (empty when it passed)."""
        if self.ok:
            return ""
        if self.name == "python":
            return f"use Python {self.required} (found {self.found}); see the README's quick start"
        state = "is not installed" if self.found is None else f"{self.found} is installed"
        return f"{state}: pip install '{self.name}{self.required}'"


def _installed_version(module_name: str) -> str | None:
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    return str(getattr(module, "__version__", "unknown"))


def check_versions() -> list[VersionCheck]:
    """Compare Python and every required library with the versions the series needs.

    Returns:
        One :class:`VersionCheck` per requirement, Python first. Nothing is raised for a version that
        is off: the caller shows the checks and their :attr:`VersionCheck.advice`.

    Raises:
        UnetTutorialError: this package is not installed, so its requirements cannot be read.
    """
    try:
        metadata = importlib.metadata.metadata(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise UnetTutorialError(
            f"{DISTRIBUTION} is not installed: run `make lab` in the checkout "
            "(or `pip install -e .`), then restart the kernel."
        ) from None
    checks = [VersionCheck("python", metadata["Requires-Python"], platform.python_version())]
    for line in metadata.get_all("Requires-Dist") or []:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue  # an optional extra (dev, gpu), not needed to run the notebooks
        module_name = MODULE_OF_REQUIREMENT.get(requirement.name, requirement.name)
        # Reverse order puts the lower bound first: ">=2.16.1,<3".
        required = ",".join(sorted(map(str, requirement.specifier), reverse=True))
        checks.append(VersionCheck(requirement.name, required, _installed_version(module_name)))
    return checks


def format_checks(checks: list[VersionCheck]) -> str:
    """The checks as a plain-text table: name, required, found, and ``ok`` or what to do."""
    rows = [
        (check.name, check.required, check.found or "missing", "ok" if check.ok else check.advice)
        for check in checks
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        f"{name.ljust(widths[0])}  {required.ljust(widths[1])}  {found.ljust(widths[2])}  {status}"
        for name, required, found, status in rows
    )
