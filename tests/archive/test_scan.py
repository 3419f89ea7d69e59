"""The scan on simulated archives: acceptance, every kind of bad input, and re-scans."""

from __future__ import annotations

import os
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from shapely.geometry import Point

from assets.archive.catalog_io import read_quarantine, read_tiles
from assets.archive.scan import ArchiveError, CatalogPolicy, scan_archive
from storage_schemas.catalog import STATUS_MISSING, STATUS_PRESENT
from storage_schemas.paths import DataLayout

LAX = CatalogPolicy(max_cloud_cover=100.0)
"""Accept any cloud cover, so that a test's refusal can only come from its own damage."""


def product_folders(layout: DataLayout) -> list[Path]:
    return sorted(p.parent for p in layout.archive.rglob("*-METADATA.XML"))


def product_folders_any(layout: DataLayout) -> list[Path]:
    """Product folders, also those whose METADATA.XML a test removed."""
    return sorted(p.parent for p in layout.archive.rglob("*-SPECTRAL_IMAGE.TIF"))


def member(folder: Path, suffix: str) -> Path:
    return folder / f"{folder.name}{suffix}"


def quarantined(layout: DataLayout) -> dict[str, str]:
    q = read_quarantine(layout.quarantine)
    return dict(zip(q["product_path"], q["reason"], strict=True))


def rel(layout: DataLayout, path: Path) -> str:
    return path.relative_to(layout.archive).as_posix()


def test_simulated_archive_is_catalogued(sim_layout: DataLayout):
    result = scan_archive(sim_layout, LAX)
    tiles = read_tiles(sim_layout.tiles)
    assert len(tiles) == len(result.tiles) > 0
    assert tiles["tile_id"].is_unique
    assert tiles["simulated"].all()
    assert (tiles["n_bands"] == 224).all() and (tiles["dtype"] == "int16").all()
    assert tiles["acquired"].dt.tz is not None
    assert tiles.crs.to_epsg() == 4326 and tiles.geometry.is_valid.all()
    assert ((tiles["grid_x0"] - 15) % 30 == 0).all(), "EnMAP pixel edges sit at 15 m offsets"
    assert set(tiles["epsg"] // 100) <= {326, 327}
    for row in tiles.itertuples():
        assert row.geometry.buffer(0.01).contains(Point(row.center_lon, row.center_lat))
    # the file is GeoParquet that plain pyarrow also reads, with the footprint as WKB
    import pyarrow.parquet as pq

    meta = pq.read_schema(sim_layout.tiles).metadata
    assert b"geo" in meta
    # products in ZIPs and delivery ZIPs are read in place
    kinds = {"zip" if ".zip" in p.lower() else "folder" for p in tiles["product_path"]}
    assert "folder" in kinds


def test_cloud_limit_quarantines_with_the_cover_in_the_reason(sim_layout: DataLayout):
    strict = scan_archive(sim_layout, CatalogPolicy(max_cloud_cover=0.5))
    reasons = quarantined(sim_layout)
    cloudy = [r for r in reasons.values() if "exceeds the limit of 0.5%" in r]
    assert cloudy, "some simulated tiles have more than 0.5% cloud"
    assert (strict.tiles["cloud_cover"] <= 0.5).all()


@pytest.mark.parametrize(
    ("damage", "file_suffix", "pattern"),
    [
        ("truncate_image", "-SPECTRAL_IMAGE.TIF", r"truncated GeoTIFF: its pixel data runs to byte [\d,]+"),
        ("garbage_image", "-SPECTRAL_IMAGE.TIF", r"unreadable GeoTIFF: not a readable TIFF"),
        ("drop_xml", "-METADATA.XML", r"missing: the product has no METADATA\.XML"),
        ("malformed_xml", "-METADATA.XML", r"malformed METADATA\.XML: malformed XML"),
        ("truncate_xml", "-METADATA.XML", r"malformed METADATA\.XML: truncated"),
        ("drop_band_in_xml", "-SPECTRAL_IMAGE.TIF", r"has 224 bands but METADATA\.XML describes 223"),
        ("bowtie_footprint", "-METADATA.XML", r"footprint is invalid: Self-intersection"),
        ("zero_area_footprint", "-METADATA.XML", r"footprint has zero area|footprint is invalid"),
        ("drop_cloud_mask", "-QL_QUALITY_CLOUD.TIF", r"missing quality mask"),
        ("wrong_projection", "-SPECTRAL_IMAGE.TIF", r"is in EPSG:\d+ but METADATA\.XML says EPSG:\d+"),
    ],
)
def test_bad_product_is_quarantined_and_the_rest_goes_on(sim_layout, damage, file_suffix, pattern):
    folders = product_folders(sim_layout)
    victim = folders[0]
    DAMAGE[damage](victim)
    scan_archive(sim_layout, LAX)
    reasons = quarantined(sim_layout)
    assert rel(sim_layout, victim) in reasons, reasons
    reason = reasons[rel(sim_layout, victim)]
    assert re.search(pattern, reason), reason
    q = read_quarantine(sim_layout.quarantine).set_index("product_path").loc[rel(sim_layout, victim)]
    assert q["file"].endswith(file_suffix), q["file"]
    tiles = read_tiles(sim_layout.tiles)
    assert rel(sim_layout, victim) not in set(tiles["product_path"])
    assert len(tiles) >= len(folders) - 1, "every other product is still accepted"


def _rewrite_xml(folder: Path, edit) -> None:
    path = member(folder, "-METADATA.XML")
    path.write_bytes(edit(path.read_bytes()))


def _set_corner(xml: bytes, frame: str, lon: float, lat: float) -> bytes:
    pattern = re.compile(
        rb"(<frame>"
        + frame.encode()
        + rb"</frame>\s*<latitude[^>]*>)[^<]*(</latitude>\s*<longitude[^>]*>)[^<]*"
    )
    return pattern.sub(lambda m: m[1] + str(lat).encode() + m[2] + str(lon).encode(), xml, count=1)


def _corner(xml: bytes, frame: str) -> tuple[float, float]:
    m = re.search(
        rb"<frame>"
        + frame.encode()
        + rb"</frame>\s*<latitude[^>]*>([^<]*)</latitude>\s*<longitude[^>]*>([^<]*)<",
        xml,
    )
    return float(m[2]), float(m[1])


def _bowtie(xml: bytes) -> bytes:
    ul, ll = _corner(xml, "upper_left"), _corner(xml, "lower_left")
    xml = _set_corner(xml, "upper_left", *ll)
    return _set_corner(xml, "lower_left", *ul)


def _zero_area(xml: bytes) -> bytes:
    ul = _corner(xml, "upper_left")
    for frame in ("lower_left", "lower_right", "upper_right"):
        xml = _set_corner(xml, frame, *ul)
    return xml


def _drop_last_band(xml: bytes) -> bytes:
    start = xml.rfind(b"<bandID", 0, xml.find(b"</bandCharacterisation>"))
    end = xml.find(b"</bandID>", start) + len(b"</bandID>")
    return xml[:start] + xml[end:]


def _wrong_projection(folder: Path) -> None:
    path = member(folder, "-SPECTRAL_IMAGE.TIF")
    with rasterio.open(path, "r+") as ds:
        epsg = ds.crs.to_epsg()
        ds.crs = rasterio.crs.CRS.from_epsg(epsg + 1 if epsg % 100 < 60 else epsg - 1)


DAMAGE = {
    "truncate_image": lambda f: os.truncate(member(f, "-SPECTRAL_IMAGE.TIF"), 40_000),
    "garbage_image": lambda f: member(f, "-SPECTRAL_IMAGE.TIF").write_bytes(b"not a tiff" * 1000),
    "drop_xml": lambda f: member(f, "-METADATA.XML").unlink(),
    "malformed_xml": lambda f: _rewrite_xml(f, lambda x: x.replace(b"<base>", b"<base", 1)),
    "truncate_xml": lambda f: _rewrite_xml(f, lambda x: x[: len(x) // 3]),
    "drop_band_in_xml": lambda f: _rewrite_xml(f, _drop_last_band),
    "bowtie_footprint": lambda f: _rewrite_xml(f, _bowtie),
    "zero_area_footprint": lambda f: _rewrite_xml(f, _zero_area),
    "drop_cloud_mask": lambda f: member(f, "-QL_QUALITY_CLOUD.TIF").unlink(),
    "wrong_projection": _wrong_projection,
}


def test_antimeridian_products_are_accepted_with_split_footprints(sim_layout):
    scan_archive(sim_layout, LAX)
    tiles = read_tiles(sim_layout.tiles)
    crossing = tiles[tiles["crosses_antimeridian"]]
    assert len(crossing) >= 1, "the simulator always images Taveuni, on the antimeridian"
    for geometry in crossing.geometry:
        assert geometry.geom_type == "MultiPolygon"
        for part in geometry.geoms:
            minx, _, maxx, _ = part.bounds
            assert minx >= -180.0 and maxx <= 180.0 and maxx - minx < 2.0
    assert (tiles.loc[~tiles["crosses_antimeridian"]].geometry.geom_type == "Polygon").all()


def test_cloud_optimised_geotiff_name_is_read(sim_layout):
    folder = product_folders(sim_layout)[0]
    member(folder, "-SPECTRAL_IMAGE.TIF").rename(member(folder, "-SPECTRAL_IMAGE_COG.tiff"))
    scan_archive(sim_layout, LAX)
    row = read_tiles(sim_layout.tiles).set_index("product_path").loc[rel(sim_layout, folder)]
    assert row["files"].count("_COG.tiff") == 1


@pytest.mark.parametrize("level", ["L1B", "L1C"])
def test_products_that_are_not_l2a_are_refused(sim_layout, level):
    folder = product_folders(sim_layout)[0]
    l1b_name = folder.name.replace("L2A", level)
    target = folder.parent / l1b_name
    folder.rename(target)
    for f in target.iterdir():
        f.rename(target / f.name.replace(folder.name, l1b_name))
    scan_archive(sim_layout, LAX)
    reason = quarantined(sim_layout)[rel(sim_layout, target)]
    assert f"is a {level} product; only L2A products are accepted" in reason


def test_zip_with_climbing_member_names_is_refused_whole(sim_layout):
    folder = product_folders(sim_layout)[0]
    evil = sim_layout.archive / "evil.ZIP"
    with zipfile.ZipFile(evil, "w") as z:
        for f in sorted(folder.iterdir()):
            z.write(f, f"{folder.name}/{f.name}")
        z.writestr("../../escaped.TIF", b"x")
    scan_archive(sim_layout, LAX)
    assert "member '../../escaped.TIF' climbs out of the folder" in quarantined(sim_layout)["evil.ZIP"]
    assert not (sim_layout.root.parent / "escaped.TIF").exists()


def test_same_product_under_two_paths_keeps_one_and_names_the_other(sim_layout):
    folder = product_folders(sim_layout)[0]
    copy = sim_layout.archive / "copies" / folder.name
    shutil.copytree(folder, copy)
    scan_archive(sim_layout, LAX)
    tiles = read_tiles(sim_layout.tiles)
    rows = tiles[tiles["product_name"] == folder.name]
    assert len(rows) == 1 and rows.iloc[0]["product_path"] == rel(sim_layout, folder)
    reason = quarantined(sim_layout)[rel(sim_layout, copy)]
    assert f"the same product also lies at {rel(sim_layout, folder)}" in reason


def test_newer_processing_of_a_tile_supersedes_the_older(sim_layout):
    folder = product_folders(sim_layout)[0]
    newer_name = re.sub(r"_V\d{6}_", "_V019999_", folder.name)
    newer = folder.parent.parent / newer_name
    shutil.copytree(folder, newer)
    for f in newer.iterdir():
        f.rename(newer / f.name.replace(folder.name, newer_name))
    _rewrite_xml(newer, lambda x: x.replace(folder.name.encode(), newer_name.encode()))
    scan_archive(sim_layout, LAX)
    tiles = read_tiles(sim_layout.tiles).set_index("product_name")
    assert newer_name in tiles.index and folder.name not in tiles.index
    assert "superseded by the newer processing" in quarantined(sim_layout)[rel(sim_layout, folder)]


def test_unreadable_zip_is_quarantined(sim_layout):
    (sim_layout.archive / "broken.ZIP").write_bytes(b"PK\x03\x04 but nothing more")
    scan_archive(sim_layout, LAX)
    assert quarantined(sim_layout)["broken.ZIP"].startswith("unreadable:")


def test_missing_or_empty_archive_root_fails_the_scan_clearly(layout):
    with pytest.raises(ArchiveError, match="holds no EnMAP products"):
        scan_archive(layout)
    shutil.rmtree(layout.archive)
    with pytest.raises(ArchiveError, match="does not exist"):
        scan_archive(layout)


def test_archive_of_only_bad_products_fails_and_says_where_to_look(sim_layout):
    for folder in product_folders(sim_layout):
        member(folder, "-METADATA.XML").unlink()
    for z in sim_layout.archive.rglob("*.[zZ][iI][pP]"):
        z.unlink()
    with pytest.raises(ArchiveError, match=r"is usable.*quarantine\.parquet"):
        scan_archive(sim_layout, LAX)
    reasons = read_quarantine(sim_layout.quarantine)["reason"]
    assert reasons.str.contains("no METADATA.XML").sum() == len(product_folders_any(sim_layout))


def test_rescan_of_unchanged_archive_reads_nothing_and_changes_nothing(sim_layout):
    first = scan_archive(sim_layout, LAX)
    before = read_tiles(sim_layout.tiles)
    second = scan_archive(sim_layout, LAX)
    assert second.stats["containers_read"] == 0
    assert second.stats["containers_unchanged"] == first.stats["containers"]
    after = read_tiles(sim_layout.tiles)
    assert before.drop(columns="geometry").equals(after.drop(columns="geometry"))
    assert before.geometry.equals(after.geometry)


def test_touched_product_is_rechecked_but_keeps_its_row(sim_layout):
    scan_archive(sim_layout, LAX)
    folder = product_folders(sim_layout)[0]
    xml = member(folder, "-METADATA.XML")
    os.utime(xml, ns=(xml.stat().st_atime_ns, xml.stat().st_mtime_ns + 10**9))
    result = scan_archive(sim_layout, LAX)
    assert result.stats["containers_read"] == 1
    row = read_tiles(sim_layout.tiles).set_index("product_path").loc[rel(sim_layout, folder)]
    assert row["source_mtime_ns"] == xml.stat().st_mtime_ns


def test_changed_product_is_reread(sim_layout):
    scan_archive(sim_layout, LAX)
    folder = product_folders(sim_layout)[0]
    _rewrite_xml(folder, lambda x: re.sub(rb"<cloudCover>[^<]*<", b"<cloudCover>42.5<", x))
    result = scan_archive(sim_layout, LAX)
    assert result.stats["containers_read"] == 1
    row = read_tiles(sim_layout.tiles).set_index("product_path").loc[rel(sim_layout, folder)]
    assert row["cloud_cover"] == pytest.approx(42.5)


def test_product_leaving_the_archive_is_marked_missing_then_present_again(sim_layout, tmp_path):
    scan_archive(sim_layout, LAX)
    folder = product_folders(sim_layout)[0]
    tile_id = read_tiles(sim_layout.tiles).set_index("product_path").loc[rel(sim_layout, folder), "tile_id"]
    parked = tmp_path / "parked"
    shutil.move(folder, parked)
    result = scan_archive(sim_layout, LAX)
    assert result.stats["newly_missing"] == 1
    row = read_tiles(sim_layout.tiles).set_index("tile_id").loc[tile_id]
    assert row["status"] == STATUS_MISSING and row["missing_since"] is not None
    again = scan_archive(sim_layout, LAX)
    assert again.stats["newly_missing"] == 0
    assert (
        read_tiles(sim_layout.tiles).set_index("tile_id").loc[tile_id, "missing_since"]
        == row["missing_since"]
    )
    shutil.move(parked, folder)
    scan_archive(sim_layout, LAX)
    assert read_tiles(sim_layout.tiles).set_index("tile_id").loc[tile_id, "status"] == STATUS_PRESENT


def test_new_products_are_added_and_old_ids_kept(sim_layout, tmp_path):
    folders = product_folders(sim_layout)
    parked = tmp_path / "later"
    shutil.move(folders[-1], parked)
    scan_archive(sim_layout, LAX)
    before = read_tiles(sim_layout.tiles)
    shutil.move(parked, folders[-1])
    result = scan_archive(sim_layout, LAX)
    assert result.stats["containers_read"] == 1
    after = read_tiles(sim_layout.tiles).set_index("tile_id")
    assert set(before["tile_id"]) < set(after.index)
    for row in before.itertuples():
        assert after.loc[row.tile_id, "product_path"] == row.product_path


def test_parallel_scan_gives_the_same_catalog(sim_layout, tmp_path):
    from concurrent.futures import ProcessPoolExecutor

    serial = scan_archive(sim_layout, LAX, write=False)
    with ProcessPoolExecutor(2) as pool:
        parallel = scan_archive(sim_layout, LAX, pool.map, write=False)
    cols = ["tile_id", "product_path", "cloud_cover", "epsg", "grid_x0", "checksum"]
    a = serial.tiles[cols].sort_values("tile_id").reset_index(drop=True)
    b = parallel.tiles[cols].sort_values("tile_id").reset_index(drop=True)
    assert a.equals(b)
    assert np.array_equal(
        serial.tiles.sort_values("tile_id").geometry.to_wkb().values,
        parallel.tiles.sort_values("tile_id").geometry.to_wkb().values,
    )
