"""The SpectralEarth band filter chooses by wavelength: 224 -> 202, and right for other tables."""

from __future__ import annotations

import csv
from importlib import resources

import numpy as np

from storage_schemas.band_filter import BAND_FILTERS, KEEP_ALL, SPECTRAL_EARTH
from storage_schemas.enmap_product import operational_band_table


def published_selection() -> list[int]:
    """Layers the band table file marks with a SpectralEarth index (from the paper's release)."""
    with resources.files("storage_schemas").joinpath("enmap_l2a_bands.csv").open() as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    return [int(r["layer"]) for r in rows if r["spectralearth_index"]]


def test_operational_table_keeps_the_published_202_bands():
    kept = SPECTRAL_EARTH.indexes(operational_band_table().wavelength_nm)
    assert len(kept) == 202
    assert kept.tolist() == published_selection()
    dropped = sorted(set(range(224)) - set(kept.tolist()))
    assert dropped == list(range(126, 141)) + list(range(160, 167))


def test_other_band_tables_get_the_subset_outside_the_absorption_regions():
    table = operational_band_table().wavelength_nm
    shifted = table + 1.5  # a reprocessed table whose centres moved
    assert len(SPECTRAL_EARTH.indexes(shifted)) == 202
    early = np.delete(table, [129, 130, 131, 132, 133, 134])  # 218 bands, the deep-absorption ones gone
    kept = SPECTRAL_EARTH.keep(early)
    assert kept.sum() == 202
    assert not ((early[kept] > 1290) & (early[kept] < 1525)).any()


def test_desis_keeps_every_band():
    desis = np.linspace(401.9, 999.0, 235)
    assert BAND_FILTERS["desis"] is KEEP_ALL
    assert KEEP_ALL.keep(desis).all()
    assert SPECTRAL_EARTH.keep(desis).all()  # the EnMAP rule has nothing to drop below 1000 nm


def test_real_band_table_selection_matches_the_published_one(realdata):
    """Against ``realdata/enmap-product/band_table_224_to_202.md`` itself, not our copy of it."""
    lines = (realdata / "enmap-product" / "band_table_224_to_202.md").read_text().splitlines()
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines if line.startswith("| ")]
    rows = [r for r in rows if r[1].isdigit()]
    assert len(rows) == 224
    wavelengths = np.array([float(r[2]) for r in rows])
    published = [int(r[1]) for r in rows if r[4].isdigit()]
    assert len(published) == 202
    assert SPECTRAL_EARTH.indexes(wavelengths).tolist() == published
