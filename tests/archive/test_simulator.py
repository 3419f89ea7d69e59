"""The archive simulator: products in DLR's layout that the catalog's reader takes as real ones.

Every test builds its own tiny archive (48 px tiles, a dozen products) under tmp_path; the
whole module runs in a few seconds and needs no ../shared folder.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely

from assets.archive.footprint import footprint_from_corners
from assets.archive.metadata_xml import MetadataError, read_metadata
from assets.archive.sources import gdal_path_of
from simulator import (
    FAULT_KINDS,
    catalog_frame,
    coverage_stats,
    plan_acquisitions,
    simulate_archive,
)
from simulator import archive as archive_module
from simulator.acquisitions import (
    LOCAL_SOLAR_TIME_H,
    ground_track_heading,
    swath_mask,
    utm_epsg,
)
from simulator.covers import draw_covers
from simulator.product_writer import DELIVERY, FOLDER, ZIP
from simulator.spectra import SURFACE_MATERIALS, spectral_library
from storage_schemas.enmap_product import (
    NO_SIGNAL_BANDS_NM,
    NODATA,
    PRODUCT_NAME,
    operational_band_table,
    parse_product_name,
    utm_epsg_for,
)

TILES, TILE_SIZE, SEED, FAULTS = 12, 48, 11, 6


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    summary = simulate_archive(out, tiles=TILES, tile_size=TILE_SIZE, seed=SEED, faults=FAULTS)
    return summary, plan_acquisitions(TILES, TILE_SIZE, SEED)


def _good_folders(summary) -> list[Path]:
    return [
        summary.archive / p
        for p in summary.products
        if p not in summary.faults and not p.endswith(".ZIP") and "!/" not in p
    ]


def _metadata(folder: Path):
    xml = folder / f"{folder.name}-METADATA.XML"
    with xml.open("rb") as f:
        return read_metadata(f, xml.stat().st_size)


def _plan_row(plan, name: str) -> int:
    parsed = parse_product_name(name)
    rows = np.flatnonzero((plan.datatake == parsed.datatake) & (plan.tile_number == parsed.tile_number))
    assert len(rows) == 1
    return int(rows[0])


def test_metadata_xml_round_trips_the_plan(simulated):
    summary, plan = simulated
    folders = _good_folders(summary)
    assert folders
    bands = operational_band_table()
    for folder in folders:
        meta = _metadata(folder)
        i = _plan_row(plan, folder.name)
        assert meta.name == folder.name and meta.level == "L2A" and meta.simulated
        assert meta.corners == tuple(zip(plan.corner_lon[i], plan.corner_lat[i], strict=True))
        assert meta.center == (plan.center_lon[i], plan.center_lat[i])
        assert np.datetime64(meta.start_time.replace(tzinfo=None), "us") == plan.start[i]
        assert np.datetime64(meta.stop_time.replace(tzinfo=None), "us") == plan.stop[i]
        assert (meta.epsg, meta.width, meta.height) == (plan.epsg[i], plan.width[i], plan.height[i])
        assert len(meta.bands) == 224
        assert np.array_equal(meta.bands.wavelength_nm, bands.wavelength_nm)
        assert np.array_equal(meta.bands.fwhm_nm, bands.fwhm_nm)
        assert set(meta.covers) == {
            "cloud_cover",
            "haze_cover",
            "cirrus_cover",
            "snow_cover",
            "cloud_shadow_cover",
        }
        assert 3.5e6 < (folder / f"{folder.name}-METADATA.XML").stat().st_size < 5e6  # like the real 4.17 MB


def test_image_is_l2a_shaped_on_the_utm_grid_of_its_centre(simulated):
    summary, plan = simulated
    wl = operational_band_table().wavelength_nm
    no_signal = np.zeros(len(wl), dtype=bool)
    for lo, hi in NO_SIGNAL_BANDS_NM:
        no_signal |= (wl >= lo) & (wl <= hi)
    assert no_signal.sum() == 6
    for folder in _good_folders(summary)[:3]:
        i = _plan_row(plan, folder.name)
        with rasterio.open(folder / f"{folder.name}-SPECTRAL_IMAGE.TIF") as ds:
            assert ds.count == 224 and ds.dtypes[0] == "int16" and ds.nodata == NODATA
            assert ds.profile["interleave"] == "band" and ds.compression is None
            assert ds.crs.to_epsg() == utm_epsg_for(plan.center_lon[i], plan.center_lat[i])
            assert ds.transform.a == 30 and ds.transform.e == -30
            assert ds.transform.c % 30 == 15 and ds.transform.f % 30 == 15
            assert float(ds.tags(1)["wavelength"]) == pytest.approx(wl[0])
            assert "SIMULATED" in ds.tags()["SIMULATED"]
            cube = ds.read()
        inside = swath_mask(plan.tile(i))
        assert 0.5 < inside.mean() < 0.95  # a rotated square inside its bounding box
        assert (cube[:, ~inside] == NODATA).all()
        assert (cube[no_signal] == NODATA).all()
        signal = cube[~no_signal][:, inside]
        assert (signal != NODATA).all()
        assert 100 < np.median(signal) < 6000  # reflectance x 10000


def test_cloud_mask_agrees_with_cloud_cover(simulated):
    summary, plan = simulated
    for folder in _good_folders(summary):
        meta = _metadata(folder)
        inside = swath_mask(plan.tile(_plan_row(plan, folder.name)))
        for key, suffix in (
            ("cloud_cover", "CLOUD"),
            ("cloud_shadow_cover", "CLOUDSHADOW"),
            ("haze_cover", "HAZE"),
        ):
            with rasterio.open(folder / f"{folder.name}-QL_QUALITY_{suffix}.TIF") as ds:
                mask = ds.read(1)
            assert mask[~inside].sum() == 0
            assert 100 * mask[inside].mean() == pytest.approx(meta.covers[key], abs=1.0)
        with rasterio.open(folder / f"{folder.name}-QL_QUALITY_CLASSES.TIF") as ds:
            classes = ds.read(1)
        assert (classes[~inside] == 3).all() and np.isin(classes[inside], (1, 2)).all()


def test_cloudy_pixels_look_like_clouds(tmp_path, monkeypatch):
    monkeypatch.setattr(archive_module, "PACKAGING_SHARES", {FOLDER: 1.0, ZIP: 0.0, DELIVERY: 0.0})
    seed = next(
        s
        for s in range(100)
        if (draw_covers(plan_acquisitions(6, 32, s), s, False)["cloud_cover"] > 20).any()
    )
    summary = simulate_archive(tmp_path, tiles=6, tile_size=32, seed=seed)
    cloudy = 0
    for path in summary.products:
        folder = summary.archive / path
        with rasterio.open(folder / f"{folder.name}-QL_QUALITY_CLOUD.TIF") as ds:
            cloud = ds.read(1).astype(bool)
        if cloud.mean() < 0.1:
            continue
        with rasterio.open(folder / f"{folder.name}-SPECTRAL_IMAGE.TIF") as ds:
            visible, swir = ds.read(20).astype(float), ds.read(200).astype(float)  # ~520 nm, ~2200 nm
        clear = ~cloud & (visible != NODATA)
        assert visible[cloud].mean() > 3 * visible[clear].mean()  # bright
        assert 0.5 < swir[cloud].mean() / visible[cloud].mean() < 1.0  # and fairly flat
        cloudy += 1
    assert cloudy


def test_same_seed_gives_the_same_bytes_whatever_the_workers(simulated, tmp_path):
    summary, _ = simulated
    again = simulate_archive(tmp_path, tiles=TILES, tile_size=TILE_SIZE, seed=SEED, faults=FAULTS, workers=2)

    def listing(root: Path) -> dict[str, tuple[bytes, int]]:
        return {
            p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }

    first, second = listing(summary.archive), listing(again.archive)
    assert first.keys() == second.keys()
    assert all(first[k] == second[k] for k in first)
    assert again.faults == summary.faults


def test_catalog_only_frame_has_the_geometry_pixel_mode_writes(simulated, tmp_path):
    summary, plan = simulated
    frame = catalog_frame(plan, draw_covers(plan, SEED, accepted_only=True)).set_index("tile_id")
    for folder in _good_folders(summary):
        meta = _metadata(folder)
        parsed = parse_product_name(folder.name)
        row = frame.loc[parsed.tile_id]
        footprint, split = footprint_from_corners(meta.corners)
        assert shapely.to_wkb(row.geometry) == shapely.to_wkb(footprint) and row.crosses_antimeridian == split
        assert (row.epsg, row.width, row.height) == (meta.epsg, meta.width, meta.height)
        assert (row.center_lon, row.center_lat) == meta.center
        assert row.product_name == folder.name
        assert row.product_path == folder.relative_to(summary.archive).as_posix()
        assert row.acquired == meta.start_time and row.stop_time == meta.stop_time
        with rasterio.open(folder / f"{folder.name}-SPECTRAL_IMAGE.TIF") as ds:
            assert (row.grid_x0, row.grid_y0) == (ds.transform.c, ds.transform.f)
        assert row.source_mtime_ns == (folder / f"{folder.name}-METADATA.XML").stat().st_mtime_ns
    # and it is what --catalog-only writes
    written = simulate_archive(tmp_path, tiles=TILES, tile_size=TILE_SIZE, seed=SEED, catalog_only=True)
    from assets.archive.catalog_io import read_tiles

    tiles = read_tiles(written.catalog).set_index("tile_id")
    assert len(tiles) == TILES and tiles.simulated.all() and (tiles.status == "present").all()
    assert (tiles.cloud_cover < 10).all()
    assert all(
        shapely.to_wkb(a) == shapely.to_wkb(b)
        for a, b in zip(tiles.geometry, frame.loc[tiles.index].geometry, strict=True)
    )


def test_footprints_are_valid_and_the_antimeridian_site_splits():
    plan = plan_acquisitions(300, 64, seed=4)
    split = 0
    for i in range(len(plan)):
        footprint, crosses = footprint_from_corners(
            list(zip(plan.corner_lon[i], plan.corner_lat[i], strict=True))
        )
        assert footprint.is_valid
        split += crosses
        if crosses:
            assert footprint.geom_type == "MultiPolygon"
            assert abs(plan.center_lat[i] + 16.8) < 0.1  # Taveuni, Fiji
    assert split >= 2
    assert (
        utm_epsg(plan.center_lon, plan.center_lat)
        == [utm_epsg_for(x, y) for x, y in zip(plan.center_lon, plan.center_lat, strict=True)]
    ).all()


def test_strips_have_consecutive_tile_numbers_and_times():
    plan = plan_acquisitions(500, 64, seed=1)
    names = plan.product_names()
    assert all(PRODUCT_NAME.match(n) for n in names) and len(set(plan.tile_ids())) == len(plan)
    for datatake in np.unique(plan.datatake):
        rows = np.flatnonzero(plan.datatake == datatake)
        assert (plan.tile_number[rows] == np.arange(1, len(rows) + 1)).all()
        assert (np.diff(plan.start[rows]) == plan.stop[rows[0]] - plan.start[rows[0]]).all()
    # datatake numbers are unique and increase with time
    first = np.flatnonzero(plan.tile_number == 1)
    assert (np.diff(plan.start[first]) > np.timedelta64(0)).all() and (
        np.diff(plan.datatake[first]) > 0
    ).all()
    assert (plan.grid_x0 % 30 == 15).all() and (plan.grid_y0 % 30 == 15).all()
    assert plan.start.min() >= np.datetime64("2022-04-01") and plan.stop.max() < np.datetime64("2024-05-01")
    local_h = (plan.start - plan.start.astype("datetime64[D]")).astype(
        np.int64
    ) / 3.6e9 + plan.center_lon / 15
    assert np.all((local_h % 24 > LOCAL_SOLAR_TIME_H[0] - 0.5) & (local_h % 24 < LOCAL_SOLAR_TIME_H[1] + 0.5))


def test_repeat_visits_exist_and_follow_the_mission_statistics():
    plan = plan_acquisitions(11_636, 1000, seed=0)
    stats = coverage_stats(plan)
    assert 0.12 < stats.multi_fraction < 0.25  # SpectralEarth: 17.5% of locations
    assert stats.twice_fraction > 0.5 * stats.multi_fraction  # mostly twice
    assert stats.over_25 >= 1  # a few long series
    assert 35 < stats.patches / len(plan) < 55  # SpectralEarth: 46 patches per tile


def test_ground_track_runs_south_south_west_as_in_real_products():
    # real sample product (47.6 N): sceneAzimuthAngle 14.29, upper_left -> lower_left runs SSW
    assert ground_track_heading(47.6216) == pytest.approx(194.29, abs=0.3)
    plan = plan_acquisitions(50, 64, seed=3)
    ul, ll = plan.corner_lat[:, 0], plan.corner_lat[:, 1]
    assert (ll < ul).all()


def test_pixel_mode_cloud_covers_exceed_the_limit_for_some_products():
    plan = plan_acquisitions(4000, 32, seed=5)
    cloud = draw_covers(plan, 5, accepted_only=False)["cloud_cover"]
    assert 0.12 < (cloud > 10).mean() < 0.18
    assert ((cloud <= 5).sum() / (cloud <= 10).sum()) > 0.7
    assert (draw_covers(plan, 5, accepted_only=True)["cloud_cover"] < 10).all()


def test_faults_are_injected_and_recorded(simulated):
    summary, _ = simulated
    assert sorted(summary.faults.values()) == sorted(FAULT_KINDS)
    by_kind = {kind: summary.archive / path for path, kind in summary.faults.items()}
    image = next(by_kind["truncated_image"].glob("*-SPECTRAL_IMAGE.TIF"))
    with rasterio.open(image) as ds:
        assert ds.count == 224
        with pytest.raises(rasterio.errors.RasterioIOError):
            ds.read(224)
    assert parse_product_name(by_kind["l1b_product"].name).level == "L1B"
    with rasterio.open(next(by_kind["band_count_mismatch"].glob("*-SPECTRAL_IMAGE.TIF"))) as ds:
        assert ds.count == 223
    with pytest.raises(MetadataError, match="malformed"):
        _metadata(by_kind["malformed_xml"])
    with zipfile.ZipFile(by_kind["zip_slip"]) as z:
        assert "../../evil.TIF" in z.namelist()
    copy = by_kind["duplicate"]
    original = summary.archive / summary.duplicates[copy.relative_to(summary.archive).as_posix()]
    with zipfile.ZipFile(copy) as z:
        for path in original.iterdir():
            assert z.read(f"{original.name}/{path.name}") == path.read_bytes()


def test_products_come_as_folders_zips_and_nested_delivery_zips(tmp_path, monkeypatch):
    monkeypatch.setattr(archive_module, "PACKAGING_SHARES", {FOLDER: 0.2, ZIP: 0.3, DELIVERY: 0.5})
    summary = simulate_archive(tmp_path, tiles=8, tile_size=32, seed=9)
    assert summary.folders + summary.zips + summary.delivered == 8 and summary.zips and summary.delivered
    for path in summary.products:
        if path.endswith(".ZIP") and "!/" not in path:
            name = path.rsplit("/", 1)[1].removesuffix(".ZIP")
            with zipfile.ZipFile(summary.archive / path) as z:
                assert f"{name}/{name}-METADATA.XML" in z.namelist()
                assert z.getinfo(f"{name}/{name}-SPECTRAL_IMAGE.TIF").compress_type == zipfile.ZIP_DEFLATED
    nested = [p for p in summary.products if "!/" in p]
    outer, inner = nested[0].split("!/")
    assert outer.startswith("deliveries/dims_op_oc_oc-en_") and outer.endswith("_1.zip")
    with zipfile.ZipFile(summary.archive / outer) as z:
        assert z.getinfo(inner).compress_type == zipfile.ZIP_STORED
    name = inner.rsplit("/", 1)[1].removesuffix(".ZIP")
    with rasterio.open(gdal_path_of(summary.archive, nested[0], f"{name}/{name}-SPECTRAL_IMAGE.TIF")) as ds:
        assert ds.count == 224 and ds.read(1, window=((0, 4), (0, 4))).shape == (4, 4)
    assert not (summary.archive / ".staging").exists()
    assert all(os.path.basename(p).startswith("ENMAP01-") for p in summary.products)


def test_analytic_spectra_work_without_real_data():
    wl = operational_band_table().wavelength_nm
    library = spectral_library(tuple(wl.tolist()), None)
    assert library.surface.shape == (len(SURFACE_MATERIALS), len(wl))
    assert ((library.surface > 0) & (library.surface < 1)).all()
    red, nir = np.argmin(abs(wl - 670)), np.argmin(abs(wl - 860))
    tree = library.surface[library.index("tree")]
    assert tree[nir] > 4 * tree[red]  # red edge
    assert library.cloud[red] > 0.6 and library.snow[np.argmin(abs(wl - 1650))] < 0.1
    assert all(source == "analytic" for source in library.sources.values())


def test_real_potsdam_tiles_give_the_endmembers(realdata):
    wl = operational_band_table().wavelength_nm
    library = spectral_library(tuple(wl.tolist()), realdata)
    real = {m for m, source in library.sources.items() if source.startswith("real")}
    assert real == {"roof", "pavement", "low_vegetation", "soil", "tree", "water"}
    red, nir = np.argmin(abs(wl - 670)), np.argmin(abs(wl - 860))
    tree, water = library.surface[library.index("tree")], library.surface[library.index("water")]
    assert tree[nir] > 4 * tree[red]  # the class named tree is dense vegetation
    assert water[nir] < 0.1 and np.isfinite(library.surface).all()
