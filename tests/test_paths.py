from __future__ import annotations

from pathlib import Path

import pytest

from storage_schemas.paths import DataLayout, realdata_dir


def test_layout_defaults_follow_the_data_root(tmp_path: Path):
    layout = DataLayout.from_env({"SPECTRAL_DATA_ROOT": str(tmp_path)})
    assert layout.archive == tmp_path / "archive"
    assert layout.tiles == tmp_path / "catalog" / "tiles.parquet"
    assert layout.quarantine == tmp_path / "catalog" / "quarantine.parquet"


def test_archive_can_live_elsewhere(tmp_path: Path):
    layout = DataLayout.from_env(
        {"SPECTRAL_DATA_ROOT": str(tmp_path / "d"), "ENMAP_ARCHIVE": str(tmp_path / "a")}
    )
    assert layout.archive == tmp_path / "a"


def test_a_wrong_realdata_folder_fails_loudly(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="SPECTRAL_REALDATA"):
        realdata_dir({"SPECTRAL_REALDATA": str(tmp_path / "nope")})
