"""Broken is not missing: a re-scan hashes the files the tile step recorded and calls a product
whose bytes changed under the same name (or that can no longer be read) ``broken``, with the
file and both digests, while its tile keeps its commit; a product that left the archive is
``missing``. Releases keep the broken products' patches unless told otherwise, and explain every
patch they drop."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import xxhash

from assets.archive.catalog_io import read_quarantine, read_tiles
from assets.archive.scan import scan_archive
from assets.archive.tile_registry import plan_registration
from assets.geometry.plan_io import read_locations, read_patches
from assets.patches.commit import commit_path
from assets.patches.release import collect_release
from assets.patches.release_growth import ReleaseWouldShrinkError, check_growth, dropped_patches
from storage_schemas.catalog import STATUS_BROKEN, STATUS_MISSING, STATUS_PRESENT
from storage_schemas.patch_store import CommitRecord
from tests.copies import replace_bytes
from tests.patches.helpers import planned_tiles, run_tiles
from tests.patches.test_source_integrity import _file, _flipped, _tiles_by_kind


def _status(layout, tile: str) -> tuple[str, str | None]:
    row = read_tiles(layout.tiles).set_index("tile_id").loc[tile]
    return row["status"], None if pd.isna(row["status_reason"]) else row["status_reason"]


def _release(layout, exclude_broken: bool = False):
    return collect_release(
        layout.store,
        read_locations(layout.locations),
        read_patches(layout.patches),
        catalog=read_tiles(layout.tiles),
        exclude_broken=exclude_broken,
    )


@pytest.fixture
def committed(planned):
    """Every planned tile committed, a first scan's fingerprints in the catalog."""
    errors = [o.error for o in run_tiles(planned, planned_tiles(planned)) if o.error]
    assert not errors, errors
    return planned


def test_same_size_damage_makes_the_product_broken_naming_the_file_and_both_digests(committed):
    tile = _tiles_by_kind(committed)["folder"]
    record = commit_path(committed.store, tile).read_bytes()
    image = _file(committed, tile, "image")
    recorded = CommitRecord.read(commit_path(committed.store, tile)).sources[image.name]
    damaged = _flipped(image)
    replace_bytes(image, damaged)

    result = scan_archive(committed)
    status, reason = _status(committed, tile)
    found = f"xxh3-128:{xxhash.xxh3_128_hexdigest(damaged)}"
    assert status == STATUS_BROKEN
    assert reason.startswith(f"{image}: content changed under the same product name")
    assert f"recorded {recorded}, found {found}" in reason
    assert result.stats["broken"] == 1 and result.stats["newly_missing"] == 0
    assert result.stats["products_hashed"] == 1  # only the container that changed is hashed whole
    quarantined = read_quarantine(committed.quarantine).set_index("file")
    assert quarantined.loc[str(image), "stage"] == "read"
    assert commit_path(committed.store, tile).read_bytes() == record  # the last good commit stays

    # the tile sensor's bookkeeping: broken, not "left the archive"
    registration = plan_registration(read_tiles(committed.tiles), planned_tiles(committed), 64, 64)
    assert registration.broken == [tile] and registration.missing == []

    assert scan_archive(committed).stats["containers_read"] == 0  # stays broken without re-reading
    assert _status(committed, tile)[0] == STATUS_BROKEN


def test_damage_inside_a_zip_product_is_found_by_its_content(committed):
    tile = _tiles_by_kind(committed)["zip"]
    row = read_tiles(committed.tiles).set_index("tile_id").loc[tile]
    container = committed.archive / row["product_path"]
    replace_bytes(container, _flipped(container, 4096))
    scan_archive(committed)
    status, reason = _status(committed, tile)
    assert status == STATUS_BROKEN and "content changed under the same product name" in reason
    assert "-SPECTRAL_IMAGE" in reason or "-QL_" in reason


def test_touched_but_identical_files_stay_present_and_restored_bytes_heal(committed):
    tile = _tiles_by_kind(committed)["folder"]
    image = _file(committed, tile, "image")
    original = image.read_bytes()
    later = image.stat().st_mtime_ns + 10**10
    os.utime(image, ns=(later, later))  # the container's mtime changes, not its bytes
    result = scan_archive(committed)
    assert result.stats["products_hashed"] == 1 and _status(committed, tile) == (STATUS_PRESENT, None)

    replace_bytes(image, _flipped(image))
    scan_archive(committed)
    assert _status(committed, tile)[0] == STATUS_BROKEN
    replace_bytes(image, original)
    scan_archive(committed)
    assert _status(committed, tile) == (STATUS_PRESENT, None)
    assert run_tiles(committed, [tile])[0].error == ""


def test_a_truncated_product_is_broken_and_one_that_left_is_missing(committed):
    tiles = _tiles_by_kind(committed)
    image = _file(committed, tiles["folder"], "image")
    replace_bytes(image, image.read_bytes()[: image.stat().st_size // 2])  # never in place: hard links
    row = read_tiles(committed.tiles).set_index("tile_id").loc[tiles["zip"]]
    (committed.archive / row["product_path"]).unlink()

    result = scan_archive(committed)
    status, reason = _status(committed, tiles["folder"])
    assert status == STATUS_BROKEN and str(image) in reason
    assert _status(committed, tiles["zip"]) == (STATUS_MISSING, None)
    assert result.stats["broken"] == 1 and result.stats["newly_missing"] == 1


def test_a_release_keeps_broken_products_unless_told_and_says_why_it_drops(committed):
    before = _release(committed)
    tile = _tiles_by_kind(committed)["folder"]
    image = _file(committed, tile, "image")
    replace_bytes(image, _flipped(image))
    scan_archive(committed)

    kept = _release(committed)
    pd.testing.assert_frame_equal(kept.index, before.index)  # the damaged bytes never reach a release
    assert kept.version != before.version  # a release that says the product is broken
    (broken,) = kept.tiles["broken"]
    assert broken["tile_id"] == tile and broken["patches"] == int((before.index["tile_id"] == tile).sum())
    assert "content changed under the same product name" in broken["reason"]

    excluded = _release(committed, exclude_broken=True)
    assert tile in excluded.withheld and tile not in set(excluded.index["tile_id"])
    drops = dropped_patches(
        before.version,
        before.index,
        excluded,
        read_tiles(committed.tiles),
        read_patches(committed.patches),
        {},
    )
    assert set(drops.patches["tile_id"]) == {tile} and drops.patches["expected"].all()
    check_growth(drops, allow_fewer=False)  # a drop the user asked for moves LATEST
    assert drops.manifest_entry()["patches"] == broken["patches"]


def _index(pairs: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(pairs, columns=["location_id", "tile_id"])


def test_every_drop_has_a_reason_and_only_pipeline_faults_block_latest(committed):
    content = _release(committed)
    catalog = pd.DataFrame(
        {
            "tile_id": ["gone", "kept", "uncommitted"],
            "status": [STATUS_MISSING, STATUS_PRESENT, STATUS_PRESENT],
        }
    )
    plan = _index([("l1", "kept"), ("l2", "uncommitted")])
    record = CommitRecord(
        "kept", "p", 1, "f", [0], ["l1"], ["dropped"], ["too cloudy"], [0.9], [""], 0, [], []
    )
    previous = _index(
        [("l0", "gone"), ("l1", "kept"), ("l2", "uncommitted"), ("l3", "kept"), ("l4", "refused")]
    )
    drops = dropped_patches("v1", previous, content, catalog, plan, {"kept": record})
    why = dict(zip(drops.patches["location_id"], drops.patches["reason"], strict=True))
    assert why["l0"] == "its product left the archive"
    assert why["l1"] == "the tile's latest run dropped it: too cloudy"
    assert why["l2"].startswith("its tile has no commit record")
    assert why["l3"] == "its location is no longer in the plan"
    assert why["l4"].startswith("its product is no longer accepted by the catalog")
    assert list(drops.unexpected["location_id"]) == ["l2"]
    with pytest.raises(ReleaseWouldShrinkError, match=r"drop 1 patches of 1 tiles .* LATEST stays at v1"):
        check_growth(drops, allow_fewer=False)
    check_growth(drops, allow_fewer=True)


def test_scan_without_a_store_hashes_nothing(planned, tmp_path: Path):
    """The catalog comes before any store: nothing recorded, nothing to hash."""
    assert scan_archive(planned).stats["products_hashed"] == 0
