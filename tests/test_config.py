"""The profiles: how one is chosen, what they hold, and the error for a bad UNET_PROFILE."""

import subprocess
import sys
from pathlib import Path

import pytest

from unet_helpers import config
from unet_helpers.errors import UnetTutorialError


@pytest.fixture
def clean_environment(monkeypatch):
    """No UNET_PROFILE, no CI, no UNET_DATA_DIR, no GPU: each test sets what it needs."""
    for variable in ("UNET_PROFILE", "CI", "UNET_DATA_DIR"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(config, "gpu_is_visible", lambda: False)
    return monkeypatch


def test_unet_profile_wins_over_ci_and_gpu(clean_environment):
    clean_environment.setenv("CI", "true")
    clean_environment.setattr(config, "gpu_is_visible", lambda: True)
    clean_environment.setenv("UNET_PROFILE", "workshop")
    assert config.resolve_profile_name() == ("workshop", "set by UNET_PROFILE")
    assert config.get_profile().name == "workshop"


def test_unet_profile_ignores_case_and_spaces(clean_environment):
    clean_environment.setenv("UNET_PROFILE", " Full ")
    assert config.get_profile().name == "full"


def test_ci_picks_smoke(clean_environment):
    clean_environment.setenv("CI", "true")
    clean_environment.setattr(config, "gpu_is_visible", lambda: True)
    assert config.resolve_profile_name() == ("smoke", "CI is set")


@pytest.mark.parametrize("value", ["", "0", "false", "False", "no"])
def test_ci_set_to_false_does_not_count(clean_environment, value):
    clean_environment.setenv("CI", value)
    assert config.resolve_profile_name()[0] == "workshop"


def test_gpu_picks_full_and_no_gpu_picks_workshop(clean_environment):
    assert config.get_profile().name == "workshop"
    clean_environment.setattr(config, "gpu_is_visible", lambda: True)
    assert config.get_profile().name == "full"


def test_bogus_profile_is_a_one_line_error_listing_the_profiles(clean_environment):
    clean_environment.setenv("UNET_PROFILE", "bogus")
    with pytest.raises(UnetTutorialError) as error:
        config.get_profile()
    message = str(error.value)
    assert "\n" not in message
    assert "bogus" in message
    for name in ("smoke", "workshop", "full"):
        assert name in message


def test_bogus_profile_on_the_command_line_exits_2_with_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "unet_helpers.config"],
        env={"UNET_PROFILE": "bogus", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "error: UNET_PROFILE='bogus' is not a profile; set it to one of: smoke, workshop, full "
        "(or unset it to pick one automatically)."
    ]


def test_command_line_prints_the_active_profile_and_the_table():
    result = subprocess.run(
        [sys.executable, "-m", "unet_helpers.config"],
        env={"UNET_PROFILE": "smoke", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Active profile: smoke (set by UNET_PROFILE)")
    assert "workshop" in result.stdout and "full" in result.stdout


def test_error_shows_as_one_line_in_jupyter():
    assert UnetTutorialError("fix it")._render_traceback_() == ["UnetTutorialError: fix it"]


def test_get_profile_by_name_rejects_unknown_names():
    assert config.get_profile("smoke").name == "smoke"
    with pytest.raises(UnetTutorialError, match="smoke, workshop, full"):
        config.get_profile("medium")


@pytest.mark.parametrize("profile", config.PROFILES.values(), ids=config.PROFILES)
def test_profile_sizes_are_usable(profile):
    # Three 2x2 poolings must divide the image evenly; every size must be positive.
    assert profile.image_size % 2**3 == 0
    for size in (profile.image_size, profile.batch_size, profile.epochs, profile.base_filters):
        assert size > 0
    # Both the training and the validation split need at least one full batch.
    assert profile.num_samples >= 2 * profile.batch_size
    assert profile.time_limit is None or profile.time_limit > 0


def test_profiles_grow_from_smoke_to_full():
    smoke, workshop, full = (config.PROFILES[name] for name in ("smoke", "workshop", "full"))
    for size in ("image_size", "epochs", "num_samples", "base_filters"):
        assert getattr(smoke, size) < getattr(workshop, size) <= getattr(full, size)
    assert full.base_filters == 64  # the classic UNet's width


def test_data_dir_order(clean_environment, tmp_path):
    assert config.data_dir() == Path(__file__).resolve().parent.parent / "data"
    clean_environment.setitem(sys.modules, "google.colab", object())
    assert config.data_dir() == Path("/content/data")
    clean_environment.setenv("UNET_DATA_DIR", str(tmp_path))
    assert config.data_dir() == tmp_path
