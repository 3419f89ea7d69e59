"""The sensor records and the per-sensor data layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage_schemas.paths import DataLayout
from storage_schemas.sensors import DESIS, ENMAP, SENSORS, sensor_named

REAL_DESIS_NAME = "DESIS-HSI-L2A-DT0483038728_001-20200813T234215-V0213"


def test_a_real_desis_name_parses_and_its_files_belong_to_it():
    parsed = DESIS.parse_name(REAL_DESIS_NAME)
    assert (parsed.level, parsed.datatake, parsed.tile_number, parsed.processor_version) == (
        "L2A",
        483038728,
        1,
        "0213",
    )
    assert parsed.acquired.isoformat() == "2020-08-13T23:42:15+00:00" == parsed.processed.isoformat()
    assert DESIS.product_name_of(f"x/{REAL_DESIS_NAME}-QUALITY.tif") == REAL_DESIS_NAME
    assert ENMAP.product_name_of(f"{REAL_DESIS_NAME}-QUALITY.tif") is None
    with pytest.raises(ValueError, match="not a DESIS product name"):
        DESIS.parse_name("ENMAP01-____L2A-DT0000001049_20220612T105735Z_001_V010111_20220614T154426Z")


def test_format_and_parse_round_trip_for_every_sensor():
    for sensor in SENSORS.values():
        name = sensor.format_name(
            level="L2A",
            datatake=42,
            tile=3,
            acquired="20210102T030405",
            version="0" * 6,
            processed="20210105T000000",
        )
        if sensor is DESIS:
            name = name.replace("V000000", "V0000")
        assert sensor.parse_name(name).datatake == 42


def test_band_tables_and_filters():
    desis = DESIS.band_table()
    assert len(desis) == 235 and desis.wavelength_nm[0] == pytest.approx(401.8)
    assert desis.wavelength_nm[-1] == pytest.approx(999.3)
    assert DESIS.band_filter.keep(desis.wavelength_nm).all()
    assert len(ENMAP.band_filter.indexes(ENMAP.band_table().wavelength_nm)) == 202
    assert DESIS.mask_files() == ("quality",) and ENMAP.mask_files() == ("cloud", "cloud_shadow", "haze")
    with pytest.raises(ValueError, match="unknown sensor"):
        sensor_named("prisma")


def test_enmap_paths_stay_and_desis_gets_its_own(tmp_path: Path):
    env = {"SPECTRAL_DATA_ROOT": str(tmp_path)}
    enmap = DataLayout.from_env(env)
    assert (enmap.archive, enmap.tiles, enmap.store, enmap.releases) == (
        tmp_path / "archive",
        tmp_path / "catalog" / "tiles.parquet",
        tmp_path / "stores" / "spectral_earth.zarr",
        tmp_path / "releases" / "spectral_earth",
    )
    desis = DataLayout.from_env({**env, "DESIS_ARCHIVE": str(tmp_path / "d")}, sensor="desis")
    assert desis.archive == tmp_path / "d"
    assert desis.tiles == tmp_path / "desis" / "catalog" / "tiles.parquet"
    assert desis.locations == tmp_path / "desis" / "plan" / "locations.parquet"
    assert (desis.store, desis.releases) == (
        tmp_path / "stores" / "desis.zarr",
        tmp_path / "releases" / "desis",
    )
    assert enmap.for_sensor("desis", environ={}).archive == tmp_path / "archive_desis"
    assert DataLayout.at(tmp_path, sensor="desis") == DataLayout(
        tmp_path, tmp_path / "archive_desis", "desis"
    )
