"""The version check that notebook 00 shows."""

import pytest

from unet_helpers import versions
from unet_helpers.versions import VersionCheck, check_versions


def test_everything_required_is_checked_and_met_here():
    checks = {check.name: check for check in check_versions()}
    assert {
        "python",
        "tensorflow",
        "keras",
        "numpy",
        "matplotlib",
        "opencv-python-headless",
        "pillow",
    } <= set(checks)
    # Optional extras (dev, gpu) are not requirements of the notebooks.
    assert "pytest" not in checks and "nbval" not in checks
    assert checks["tensorflow"].required.startswith(">=2.16")
    assert checks["keras"].required.startswith(">=3")
    assert all(check.ok for check in checks.values()), versions.format_checks(list(checks.values()))


@pytest.mark.parametrize(
    ("found", "ok"), [("3.15.1", True), ("3.0.5", True), ("2.15.0", False), ("4.0.0", False)]
)
def test_a_version_outside_the_range_fails_with_the_fix(found, ok):
    check = VersionCheck("keras", ">=3.0.5,<4", found)
    assert check.ok is ok
    assert check.advice == ("" if ok else f"{found} is installed: pip install 'keras>=3.0.5,<4'")


def test_a_missing_library_is_reported_not_raised(monkeypatch):
    real = versions._installed_version
    monkeypatch.setattr(
        versions, "_installed_version", lambda module: None if module == "cv2" else real(module)
    )
    checks = {check.name: check for check in check_versions()}
    opencv = checks["opencv-python-headless"]
    assert not opencv.ok
    assert opencv.advice.startswith("is not installed: pip install 'opencv-python-headless>=")
    assert "missing" in versions.format_checks([opencv])


def test_an_old_python_gets_a_clear_message():
    check = VersionCheck("python", ">=3.10", "3.9.18")
    assert not check.ok
    assert check.advice == "use Python >=3.10 (found 3.9.18); see the README's quick start"
