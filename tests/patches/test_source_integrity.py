"""Content the tile step can vouch for (issue 16): the commit record names the bytes each tile was
cut from, a re-run refuses bytes that changed under the same product name and leaves the last good
commit as it was, and physically impossible reflectance is masked, counted, and refuses a tile
that holds too much of it; the real EnMAP pixels hold none."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xxhash

from assets.archive.catalog_io import read_tiles
from assets.archive.sources import gdal_path_of, is_in_zip, open_zip_member
from assets.patches.commit import commit_path
from assets.patches.patchify import TileJob, patchify_or_explain, tile_jobs
from assets.patches.tile_pixels import DEFAULT_MAX_IMPOSSIBLE, mask_impossible, read_tile
from storage_schemas.band_filter import SPECTRAL_EARTH
from storage_schemas.enmap_product import NODATA
from storage_schemas.patch_store import CommitRecord
from storage_schemas.sensors import ENMAP
from tests.copies import replace_bytes
from tests.patches.helpers import planned_tiles, run_tiles, tree_digest
from tests.patches.test_real_potsdam_pixels import PRODUCT, _potsdam_canvas, _product, _store_one_patch

EMPTY_FILE = hashlib.sha256(b"").hexdigest()
FLIP_BYTES = 1 << 20
"""Issue 16's damage: 1 MiB in the middle of the image, every byte inverted, size kept."""


def _job(layout, tile: str, max_impossible: float = DEFAULT_MAX_IMPOSSIBLE) -> TileJob:
    (job,) = tile_jobs(layout, [tile], SPECTRAL_EARTH, 0.1, max_impossible)
    return job


def _tiles_by_kind(layout) -> dict[str, str]:
    """A planned tile of each kind of product the fixture holds: ``folder`` and ``zip``."""
    catalog = read_tiles(layout.tiles).set_index("tile_id")
    kinds = {}
    for tile in planned_tiles(layout):
        kinds.setdefault("zip" if is_in_zip(catalog.at[tile, "product_path"]) else "folder", tile)
    return kinds


def _file(layout, tile: str, kind: str) -> Path:
    row = read_tiles(layout.tiles).set_index("tile_id").loc[tile]
    return Path(gdal_path_of(layout.archive, row["product_path"], json.loads(row["files"])[kind]))


def _independent_digests(layout, row: dict) -> dict[str, str]:
    """XXH3-128 of each image and mask file's content, computed here without the project's code
    (a ZIP member's uncompressed content, read by zipfile)."""
    files = json.loads(row["files"])
    out = {}
    for kind in ("image", "cloud", "cloud_shadow", "haze"):
        member = files[kind]
        if is_in_zip(row["product_path"]):
            with open_zip_member(layout.archive, row["product_path"], member) as (_, stream):
                data = stream.read()
        else:
            data = Path(gdal_path_of(layout.archive, row["product_path"], member)).read_bytes()
        out[member] = f"xxh3-128:{xxhash.xxh3_128_hexdigest(data)}"
    return out


def _flipped(path: Path, size: int = FLIP_BYTES) -> bytes:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2 - size // 2
    block = np.frombuffer(data, dtype=np.uint8, count=size, offset=middle)
    data[middle : middle + size] = (block ^ 0xFF).tobytes()
    return bytes(data)


def test_the_fixture_holds_folder_and_zip_products(planned):
    assert set(_tiles_by_kind(planned)) == {"folder", "zip"}


@pytest.mark.parametrize("kind", ["folder", "zip"])
def test_the_commit_record_holds_the_xxh3_128_of_every_file_read(planned, kind):
    tile = _tiles_by_kind(planned)[kind]
    job = _job(planned, tile)
    if kind == "zip":  # the fixture deflates its ZIP members: hashed from the bytes inflated for GDAL
        image = json.loads(job.row["files"])["image"]
        with open_zip_member(planned.archive, job.row["product_path"], image) as (info, _):
            assert info.compress_type == zipfile.ZIP_DEFLATED
    (outcome,) = run_tiles(planned, [tile])
    assert outcome.error == ""
    record = CommitRecord.read(commit_path(planned.store, tile))
    assert record.sources == _independent_digests(planned, job.row)
    assert len(record.sources) == 4  # the image and the three cleaning masks


@pytest.mark.parametrize(("kind", "size"), [("image", FLIP_BYTES), ("cloud", 4096)])
def test_bytes_changed_after_the_commit_fail_the_rerun_naming_the_file_and_leave_the_store(
    planned, kind, size
):
    tile = _tiles_by_kind(planned)["folder"]
    assert run_tiles(planned, [tile])[0].error == ""
    recorded = CommitRecord.read(commit_path(planned.store, tile)).sources
    before = tree_digest(planned.store)
    path = _file(planned, tile, kind)
    damaged = _flipped(path, size)
    assert len(damaged) == path.stat().st_size
    replace_bytes(path, damaged)

    (outcome,) = run_tiles(planned, [tile])
    found = f"xxh3-128:{xxhash.xxh3_128_hexdigest(damaged)}"
    assert outcome.error.startswith(f"{path}: content changed under the same product name")
    assert f"(recorded {recorded[path.name]}, found {found})" in outcome.error
    assert outcome.written == 0
    assert tree_digest(planned.store) == before  # the last good commit and its shards, untouched


def test_a_record_of_another_product_is_not_compared(planned):
    """A tile re-delivered as a new product (a reprocessing) has new bytes by right."""
    tile = _tiles_by_kind(planned)["folder"]
    assert run_tiles(planned, [tile])[0].error == ""
    path = commit_path(planned.store, tile)
    record = CommitRecord.read(path)
    record.product_name += "_OTHER"
    record.sources = dict.fromkeys(record.sources, "xxh3-128:" + "0" * 32)
    path.write_text(record.to_json())
    (outcome,) = run_tiles(planned, [tile])
    assert outcome.error == ""


def _set_values(path: Path, values: list[tuple[int, int, int, int]]) -> None:
    """Give the striped, uncompressed int16 image at ``path`` the ``(layer (0-based), row, col,
    value)`` pixels, byte by byte where GDAL says each strip lies (a new file: see replace_bytes)."""
    data = bytearray(path.read_bytes())
    with rasterio.open(path) as ds:
        strip, _ = ds.block_shapes[0]
        assert ds.dtypes[0] == "int16" and ds.tags(ns="IMAGE_STRUCTURE").get("COMPRESSION") is None
        for layer, row, col, value in values:
            start = int(ds.get_tag_item(f"BLOCK_OFFSET_0_{row // strip}", "TIFF", bidx=layer + 1))
            at = start + 2 * ((row % strip) * ds.width + col)
            data[at : at + 2] = np.int16(value).astype("<i2").tobytes()
    replace_bytes(path, bytes(data))


def test_impossible_values_are_masked_and_counted_per_tile_and_per_band(planned):
    tile = _tiles_by_kind(planned)["folder"]
    job = _job(planned, tile)
    kept = SPECTRAL_EARTH.indexes(np.asarray(job.row["wavelength_nm"]))
    a, b = int(kept[10]), int(kept[100])
    bad = [(a, 50, 60, -5000), (a, 51, 60, 25000), (b, 50, 60, 32767), (b, 120, 130, -1001)]
    plausible = [(a, 140, 140, -999), (b, 141, 141, 19999)]
    _set_values(_file(planned, tile, "image"), bad + plausible)

    pixels = read_tile(planned.archive, job.row, job.bands, SPECTRAL_EARTH)
    band_of = {int(layer): i for i, layer in enumerate(np.sort(kept))}
    for layer, row, col, _ in bad:
        assert pixels.data[band_of[layer], row, col] == NODATA
    for layer, row, col, value in plausible:
        assert pixels.data[band_of[layer], row, col] == value
    assert pixels.faults == {"impossible_pixels": 3, "impossible_values": 4}

    (outcome,) = run_tiles(planned, [tile])
    assert outcome.error == "" and outcome.faults == pixels.faults  # the partition's pixel_faults
    record = CommitRecord.read(commit_path(planned.store, tile))
    assert record.faults == {
        "impossible_pixels": 3,
        "impossible_values": 4,
        f"impossible_values_band_{a + 1}": 2,
        f"impossible_values_band_{b + 1}": 2,
    }


def test_a_tile_over_the_impossible_share_is_refused_before_anything_is_written(planned):
    tile = _tiles_by_kind(planned)["folder"]
    before = tree_digest(planned.store)
    path = _file(planned, tile, "image")
    replace_bytes(path, _flipped(path))  # damaged before its first commit: no hash to compare with

    outcome = patchify_or_explain(_job(planned, tile))
    assert outcome.error.startswith(f"{path}: 100.0% of the tile's pixels")
    assert "physically impossible reflectance (below -1000 or above 20000" in outcome.error
    assert f"over the limit of {DEFAULT_MAX_IMPOSSIBLE:.1%}" in outcome.error
    assert not commit_path(planned.store, tile).exists()
    after = tree_digest(planned.store)
    assert after.pop(f"commits/{tile}.lock") == EMPTY_FILE  # the writer lock, as every run leaves it
    assert after == before

    allowed = patchify_or_explain(_job(planned, tile, max_impossible=1.0))  # the limit is the setting's
    assert allowed.error == "" and allowed.faults["impossible_pixels"] > 0


def test_real_potsdam_pixels_hold_no_impossible_reflectance_in_any_layer(realdata):
    files = sorted((realdata / "enmap-potsdam" / "images").glob("enmap_potsdam_tile_*.tif"))
    assert len(files) == 10, files
    for path in files:
        with rasterio.open(path) as ds:
            pixels = np.rint(ds.read()).astype(np.int16)
        found = mask_impossible(pixels, np.arange(pixels.shape[0]), ENMAP)
        assert found.pixels == 0, (path, found.per_layer)


def test_real_potsdam_product_commits_its_sources_and_no_fault(realdata, tmp_path):
    canvas, wavelengths, transform = _potsdam_canvas(realdata)
    row = _product(tmp_path / "archive" / PRODUCT, canvas, transform, 32633, wavelengths)
    x0, y0 = transform.c + 32 * 30, transform.f - 32 * 30
    outcome, _ = _store_one_patch(tmp_path, row, x0, y0)
    assert outcome.error == "" and outcome.written == 1 and outcome.faults == {}
    record = CommitRecord.read(commit_path(tmp_path / "store.zarr", row["tile_id"]))
    folder = tmp_path / "archive" / PRODUCT
    assert record.sources == {
        name: f"xxh3-128:{xxhash.xxh3_128_hexdigest((folder / name).read_bytes())}"
        for name in json.loads(row["files"]).values()
    }
    assert record.faults == {}
