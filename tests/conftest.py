"""Shared fixtures: the real sample files (when present) and a Dagster-free data layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage_schemas.paths import DataLayout, realdata_dir


@pytest.fixture(scope="session")
def realdata() -> Path:
    """``../shared/realdata`` or ``SPECTRAL_REALDATA``. Skips when neither exists (a fresh clone
    without the shared folder); fails when SPECTRAL_REALDATA is set but wrong."""
    folder = realdata_dir()
    if folder is None:
        pytest.skip("no ../shared/realdata beside the project and SPECTRAL_REALDATA unset")
    if not (folder / "enmap-product").is_dir():
        pytest.fail(f"{folder} does not hold enmap-product/: SPECTRAL_REALDATA points at the wrong folder")
    return folder


@pytest.fixture
def layout(tmp_path: Path) -> DataLayout:
    layout = DataLayout.at(tmp_path / "data")
    layout.archive.mkdir(parents=True)
    return layout
