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


SIM_TILES = 8
SIM_TILE_SIZE = 64


@pytest.fixture(scope="session")
def simulated_archive_template(tmp_path_factory) -> Path:
    """A small simulated archive, built once per session; tests get copies they may damage."""
    from simulator import simulate_archive

    out = tmp_path_factory.mktemp("sim") / "data"
    simulate_archive(out, tiles=SIM_TILES, tile_size=SIM_TILE_SIZE, seed=3, workers=1)
    return out / "archive"


@pytest.fixture
def sim_layout(layout: DataLayout, simulated_archive_template: Path) -> DataLayout:
    """A fresh copy of the simulated archive under a fresh data root."""
    import shutil

    shutil.rmtree(layout.archive)
    shutil.copytree(simulated_archive_template, layout.archive, symlinks=True)
    return layout
