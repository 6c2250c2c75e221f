"""Shared test settings."""

import pytest


@pytest.fixture(autouse=True)
def data_dir_in_tmp(tmp_path_factory, monkeypatch):
    """Unit tests never write into the user's data folder: UNET_DATA_DIR points at a fresh one."""
    monkeypatch.setenv("UNET_DATA_DIR", str(tmp_path_factory.mktemp("data")))
