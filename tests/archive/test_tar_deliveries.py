"""DLR delivery tarballs (``dims_op_oc_oc-en_<order>_<n>.tar.gz``): catalogued from their staged
copy, patchified like folders, every bad member refused on its own, re-scans that read nothing."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from dagster import DagsterInstance, materialize

from assets.archive.catalog_io import read_tiles
from assets.archive.deliveries import MANIFEST, PARTIAL
from assets.archive.quality import inspect_tile
from assets.archive.scan import CatalogPolicy, delivery_ignored, scan_archive
from assets.archive.sources import gdal_path_of, staged_folder
from assets.geometry.plan_io import read_locations, read_patches
from assets.patches.release import collect_release
from simulator import simulate_archive
from simulator.packaging import (
    delivery_name,
    tar_member,
    unpack_deliveries_as_folders,
    write_product_zip,
    write_tar_delivery,
)
from storage_schemas.catalog import STAGE_READ, STATUS_MISSING, ZIP_SEPARATOR
from storage_schemas.paths import DataLayout
from tests.archive.test_scan import quarantined
from tests.copies import link_archive, replace_bytes
from tests.patches.conftest import ARCHIVE_MODEL, PLANNED, resources
from tests.patches.helpers import planned_tiles, run_tiles, tree_digest

LAX = CatalogPolicy(max_cloud_cover=100.0)
ORDER = 701234567
TOP = delivery_name(ORDER)
REAL_NAME = "ENMAP01-____L2A-DT0000326721_20170626T102020Z_001_V000204_20200406T201930Z"


def _tarballs(archive: Path) -> list[Path]:
    return sorted(archive.rglob("*.tar.gz"))


def _product_zips(tarball: Path, out: Path) -> dict[str, Path]:
    """The product ZIPs of a delivery, copied out with Python's tarfile: name -> path."""
    found = {}
    with tarfile.open(tarball) as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.upper().endswith(".ZIP"):
                path = out / Path(member.name).name
                path.write_bytes(tar.extractfile(member).read())
                found[path.stem] = path
    return found


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_ino) for p in root.rglob("*")}


@pytest.fixture(scope="module")
def tar_archive(tmp_path_factory) -> Path:
    """Six 64 px products, every one in a DLR delivery tarball (SIMULATED)."""
    root = tmp_path_factory.mktemp("tar") / "data"
    summary = simulate_archive(root, tiles=6, tile_size=64, seed=3, delivery="tar", delivered_share=1.0)
    assert summary.delivered == 6 and len(summary.deliveries) >= 2
    return root / "archive"


@pytest.fixture
def tar_layout(tmp_path, tar_archive) -> DataLayout:
    layout = DataLayout.at(tmp_path / "data")
    link_archive(tar_archive, layout.archive)
    return layout


def test_delivery_is_catalogued_with_member_paths_and_counted_ancillaries(tar_layout):
    layout = tar_layout
    archive_before = tree_digest(layout.archive)
    result = scan_archive(layout, LAX)
    tarballs = [p.relative_to(layout.archive).as_posix() for p in _tarballs(layout.archive)]
    products = read_tiles(layout.tiles)
    assert len(products) == 6 and len(result.quarantine) == 0
    for path, name in zip(products["product_path"], products["product_name"], strict=True):
        tarball, inner = path.split(ZIP_SEPARATOR)
        assert tarball in tarballs
        assert inner.endswith(f"/ENMAP.HSI.L2A/{name}/{name}.ZIP") and inner.startswith("dims_op_oc_oc-en_")
        assert inner.split("/")[0] == Path(tarball).name.removesuffix(".tar.gz")
    n = len(tarballs)
    assert result.stats["deliveries"] == n
    assert delivery_ignored(result.stats) == {
        "iif": n,
        "readme": n,
        "tools": 2 * n,
        # per order: the top folder, ENMAP.HSI.L2A, iif, tools and one item folder per product
        "folders": 4 * n + 6,
        "other": 0,
    }
    # pixels come from the staged copy; the archive itself is untouched, nothing is left half-done
    row = products.iloc[0]
    image = gdal_path_of(layout.archive, row["product_path"], json.loads(row["files"])["image"])
    assert image.startswith(str(layout.staging)) and Path(image).is_file()
    with rasterio.open(image) as ds:
        assert (ds.width, ds.height, ds.count) == (row["width"], row["height"], 224)
    quality = inspect_tile(layout.archive, row.to_dict())  # the tile_quality asset's reader
    assert quality.tile_id == row["tile_id"] and 0 < quality.valid_fraction <= 1
    assert tree_digest(layout.archive) == archive_before
    written = {p.relative_to(layout.root).parts[0] for p in layout.root.rglob("*") if p.is_file()}
    assert written == {"archive", "catalog", "staging"}
    assert not [p for p in layout.staging.rglob(f"*{PARTIAL}*")]


def _exited_pid() -> int:
    """The id of a process that has ended (a scan killed long ago)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_rescan_of_unchanged_delivery_reads_nothing(tar_layout):
    layout = tar_layout
    scan_archive(layout, LAX)
    staged = _snapshot(layout.staging)
    tiles = read_tiles(layout.tiles)
    before = _tarballs(layout.archive)[0].stat().st_mtime_ns
    again = scan_archive(layout, LAX)
    assert again.stats["containers_read"] == 0
    assert again.stats["delivery_members_ignored"] > 0  # counted from the staged manifests
    assert _snapshot(layout.staging) == staged, "nothing was unpacked again"
    pd.testing.assert_frame_equal(read_tiles(layout.tiles), tiles)

    # touched, same bytes: checked (unpacked again) but the rows stay as they were
    tarball = _tarballs(layout.archive)[0]
    replace_bytes(tarball, tarball.read_bytes())  # a file of its own: the archive is hard-linked
    os.utime(tarball, ns=(tarball.stat().st_atime_ns, before + 10**9))
    touched = scan_archive(layout, LAX)
    assert touched.stats["containers_read"] == 1 and touched.stats["containers_unchanged"] == 2
    assert set(read_tiles(layout.tiles)["checksum"]) == set(tiles["checksum"])

    # a staged copy that went away is unpacked again, even though the tarball did not change;
    # what a killed scan left beside it (its process gone) is removed on the way
    folder = staged_folder(layout.archive, tarball.relative_to(layout.archive).as_posix())
    shutil.rmtree(folder)
    leftover = folder.with_name(f"{folder.name}{PARTIAL}{_exited_pid()}-0123abcd")
    (leftover / "half").mkdir(parents=True)
    restaged = scan_archive(layout, LAX)
    assert restaged.stats["containers_read"] == 1
    assert not leftover.exists()
    row = read_tiles(layout.tiles).iloc[0]
    assert Path(
        gdal_path_of(layout.archive, row["product_path"], json.loads(row["files"])["image"])
    ).is_file()

    # a tarball that leaves the archive: its rows are kept as missing, its staged copy removed
    gone = tarball.relative_to(layout.archive).as_posix()
    tarball.unlink()
    left = scan_archive(layout, LAX)
    assert left.stats["staged_removed"] == 1 and not staged_folder(layout.archive, gone).exists()
    products = read_tiles(layout.products)
    in_gone = products["product_path"].str.startswith(gone + ZIP_SEPARATOR)
    assert in_gone.any() and (products.loc[in_gone, "status"] == STATUS_MISSING).all()
    for kept in _tarballs(layout.archive):
        assert staged_folder(layout.archive, kept.relative_to(layout.archive).as_posix()).is_dir()


def test_tgz_and_uncompressed_tar_deliveries_are_read_too(tar_layout):
    """The same delivery as ``.tgz`` and as an uncompressed ``.tar``: compression is told by the
    gzip magic, not by the name; the copies' products are read and refused as duplicates."""
    layout = tar_layout
    tarball = _tarballs(layout.archive)[0]
    (layout.archive / "other").mkdir()
    shutil.copy(tarball, layout.archive / "other" / tarball.name.replace(".tar.gz", ".tgz"))
    (layout.archive / "other" / tarball.name.replace(".tar.gz", ".tar")).write_bytes(
        gzip.decompress(tarball.read_bytes())
    )
    scan_archive(layout, LAX)
    products = read_tiles(layout.products)
    containers = products["product_path"].str.split(ZIP_SEPARATOR).str[0]
    per = containers.value_counts()
    first = tarball.relative_to(layout.archive).as_posix()
    stem = first.rsplit("/", 1)[-1].removesuffix(".tar.gz")
    assert per[f"other/{stem}.tgz"] == per[f"other/{stem}.tar"] == per[first] >= 2
    assert len(read_tiles(layout.tiles)) == 6
    reasons = quarantined(layout)
    assert all("the same product also lies at" in r for r in reasons.values()) and reasons


def _l1b_zip(good_zip: Path, out: Path) -> tuple[str, Path]:
    """A copy of a product ZIP with every name saying L1B (as an L1B product is named)."""
    name = good_zip.stem
    l1b = name.replace("L2A", "L1B")
    target = out / f"{l1b}.ZIP"
    with zipfile.ZipFile(good_zip) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename.replace(name, l1b), src.read(info))
    return l1b, target


def _member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", link: str = "") -> tuple:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname, info.mtime = kind, len(data), link, 1_700_000_000
    return info, (data if kind == tarfile.REGTYPE else None)


def test_bad_members_are_refused_one_by_one_and_the_rest_goes_on(tar_layout, tmp_path):
    layout = tar_layout
    tarballs = _tarballs(layout.archive)
    zips = _product_zips(tarballs[0], tmp_path)
    good_name, good_zip = sorted(zips.items())[0]
    l1b_name, l1b_zip = _l1b_zip(good_zip, tmp_path)
    not_a_product = tmp_path / "notes.ZIP"
    with zipfile.ZipFile(not_a_product, "w") as z:
        z.writestr("notes.txt", "a ZIP that holds no product")
    item = f"{TOP}/ENMAP.HSI.L2A/{good_name}"
    extra = [
        _member(f"{TOP}/../../escaped.TIF", data=b"II*\x00"),
        _member(f"{TOP}/ENMAP.HSI.L2A/link.ZIP", tarfile.SYMTYPE, link="/etc/passwd"),
        _member(f"{TOP}/ENMAP.HSI.L2A/hard.ZIP", tarfile.LNKTYPE, link=f"{item}/{good_name}.ZIP"),
        _member(f"{TOP}/ENMAP.HSI.L2A/notes/notes.ZIP", data=not_a_product.read_bytes()),
        _member(f"{TOP}/ENMAP.HSI.L2A/broken/broken.ZIP", data=b"PK\x03\x04 not really a ZIP"),
    ]
    bad = layout.archive / "orders" / f"{TOP}.tar.gz"
    bad.parent.mkdir()
    write_tar_delivery(
        bad,
        ORDER,
        [(good_name, "L2A", good_zip), (l1b_name, "L2A", l1b_zip), (good_name, "L1B", good_zip)],
        1_700_000_000,
        extra,
    )
    # a tarball cut in the middle of its gzip stream, and one with a corrupt header after the first member
    truncated = layout.archive / "orders" / "dims_op_oc_oc-en_701234568_1.tar.gz"
    truncated.write_bytes(tarballs[1].read_bytes()[: tarballs[1].stat().st_size // 2])
    with tarfile.open(tarballs[1]) as tar:
        plain = tar.getmembers()
    raw = bytearray(gzip.decompress(tarballs[1].read_bytes()))
    raw[plain[1].offset : plain[1].offset + 100] = b"\xff" * 100
    corrupt = layout.archive / "orders" / "dims_op_oc_oc-en_701234569_1.tar"
    corrupt.write_bytes(bytes(raw))

    scan_archive(layout, LAX)
    q = quarantined(layout)
    rel = "orders/" + bad.name
    assert "climbs out of the folder" in q[f"{rel}!/{TOP}/../../escaped.TIF"]
    assert "symbolic link" in q[f"{rel}!/{TOP}/ENMAP.HSI.L2A/link.ZIP"]
    assert "hard link" in q[f"{rel}!/{TOP}/ENMAP.HSI.L2A/hard.ZIP"]
    assert "holds no EnMAP product files" in q[f"{rel}!/{TOP}/ENMAP.HSI.L2A/notes/notes.ZIP"]
    assert "not a readable ZIP" in q[f"{rel}!/{TOP}/ENMAP.HSI.L2A/broken/broken.ZIP"]
    l1b_path = f"{rel}!/{TOP}/ENMAP.HSI.L2A/{l1b_name}/{l1b_name}.ZIP"
    assert "is a L1B product; only L2A products are accepted" in q[l1b_path]
    assert (
        "lies in the order's ENMAP.HSI.L1B folder"
        in q[f"{rel}!/{TOP}/ENMAP.HSI.L1B/{good_name}/{good_name}.ZIP"]
    )
    assert "unreadable or truncated tarball" in q[f"orders/{truncated.name}"]
    assert "corrupt tar header" in q[f"orders/{corrupt.name}"]
    full = pd.read_parquet(layout.quarantine)
    assert full.loc[full["product_path"] == f"orders/{truncated.name}", "file"].tolist() == [
        f"orders/{truncated.name}"
    ]
    assert (full["stage"] == STAGE_READ).sum() == 9
    assert len(full[full["product_path"].str.startswith(f"orders/{truncated.name}")]) == 1, "one row"

    # the good products still went through: the untouched deliveries and the good item of the bad one
    paths = set(read_tiles(layout.products)["product_path"])
    assert f"{rel}!/{item}/{good_name}.ZIP" in paths
    assert len(read_tiles(layout.tiles)) == 6
    # nothing landed outside the staging folder; no link was made, no half-unpacked folder left
    assert not list(tmp_path.rglob("escaped.TIF")) and not list(layout.root.parent.rglob("escaped.TIF"))
    assert not [p for p in layout.staging.rglob("*") if p.is_symlink()]
    assert not [p for p in layout.staging.rglob(f"*{PARTIAL}*")]
    assert not staged_folder(layout.archive, f"orders/{truncated.name}").exists()
    assert not (staged_folder(layout.archive, rel) / TOP / "ENMAP.HSI.L1B").exists(), "not unpacked"

    again = scan_archive(layout, LAX)
    assert again.stats["containers_read"] == 0, "refused tarballs are not retried while unchanged"


def test_tiles_of_a_delivery_patchify_like_the_same_products_as_folders(tmp_path):
    """Catalog, plan, store and every tile on a delivery and on the same products unpacked into
    folders by Python's tarfile and zipfile: the release content and the store's bytes are the same."""
    delivered = DataLayout.at(tmp_path / "delivered")
    simulate_archive(
        delivered.root,
        tiles=6,
        tile_size=192,
        seed=2,
        model=ARCHIVE_MODEL,
        delivered_share=1.0,
        delivery="tar",
    )
    folders = DataLayout.at(tmp_path / "folders")
    unpack_deliveries_as_folders(delivered.archive, folders.archive)
    releases, stores = [], []
    for layout in (delivered, folders):
        assert materialize(PLANNED, instance=DagsterInstance.ephemeral(), resources=resources(layout)).success
        tiles = planned_tiles(layout)
        assert len(tiles) >= 3, "the plan found patches in several tiles"
        outcomes = run_tiles(layout, tiles)
        assert not [o.error for o in outcomes if o.error]
        assert sum(o.written for o in outcomes) > 0
        releases.append(
            collect_release(layout.store, read_locations(layout.locations), read_patches(layout.patches))
        )
        stores.append({k: v for k, v in tree_digest(layout.store).items() if "/c/" in k})
    paths = set(read_tiles(delivered.tiles)["product_path"])
    assert all(ZIP_SEPARATOR in p and ".tar.gz" in p for p in paths)
    assert releases[0].version == releases[1].version
    pd.testing.assert_frame_equal(releases[0].index, releases[1].index)
    pd.testing.assert_frame_equal(releases[0].statistics, releases[1].statistics)
    assert stores[0] == stores[1] and stores[0], "the same shard bytes"


def _real_product_folder(realdata: Path, folder: Path) -> None:
    """The real qualification product with its 0-byte placeholders replaced: an empty (sparse,
    all no-data) SPECTRAL_IMAGE and masks of the size, bands and UTM zone its METADATA.XML gives."""
    with zipfile.ZipFile(realdata / "enmap-product" / "enmap_L2A_gtif_qualification.zip") as z:
        for info in z.infolist():
            if not info.is_dir():
                (folder / Path(info.filename).name).write_bytes(z.read(info))
    profile = {
        "driver": "GTiff",
        "width": 1128,
        "height": 1212,
        "crs": "EPSG:32632",
        "transform": Affine(30.0, 0.0, 633000.0, 0.0, -30.0, 5295000.0),
        "sparse_ok": True,
        "tiled": True,
    }
    with rasterio.open(
        folder / f"{REAL_NAME}-SPECTRAL_IMAGE.TIF", "w", count=218, dtype="int16", nodata=-32768, **profile
    ):
        pass
    for suffix in ("CLOUD", "CLOUDSHADOW", "HAZE", "SNOW", "CIRRUS"):
        with rasterio.open(
            folder / f"{REAL_NAME}-QL_QUALITY_{suffix}.TIF", "w", count=1, dtype="uint8", **profile
        ) as ds:
            ds.write(np.zeros((1, 1212, 1128), np.uint8))
    with rasterio.open(
        folder / f"{REAL_NAME}-QL_PIXELMASK.TIF", "w", count=1, dtype="uint8", **profile
    ) as ds:
        ds.write(np.zeros((1, 1212, 1128), np.uint8))


def test_real_product_in_a_dlr_tarball_is_catalogued_as_its_folder(realdata, tmp_path):
    as_folder = DataLayout.at(tmp_path / "folder")
    product = as_folder.archive / REAL_NAME
    product.mkdir(parents=True)
    _real_product_folder(realdata, product)
    scan_archive(as_folder, LAX)

    delivered = DataLayout.at(tmp_path / "delivered")
    delivered.archive.mkdir(parents=True)
    product_zip = tmp_path / f"{REAL_NAME}.ZIP"
    write_product_zip(product_zip, REAL_NAME, sorted(product.iterdir()), (2020, 4, 6, 20, 19, 30))
    write_tar_delivery(
        delivered.archive / f"{TOP}.tar.gz", ORDER, [(REAL_NAME, "L2A", product_zip)], 1_600_000_000
    )
    scan_archive(delivered, LAX)

    a, b = read_tiles(as_folder.tiles), read_tiles(delivered.tiles)
    assert len(a) == len(b) == 1
    assert b["product_path"].iloc[0] == f"{TOP}.tar.gz!/{tar_member(ORDER, REAL_NAME)}"
    assert a.geometry.iloc[0].equals(b.geometry.iloc[0])
    same = [
        c
        for c in a.columns
        if c not in ("product_path", "files", "source_size", "source_mtime_ns", "checksum", "geometry")
    ]
    for column in same:
        left, right = a[column].iloc[0], b[column].iloc[0]
        assert (
            np.array_equal(left, right)
            if isinstance(left, np.ndarray)
            else left == right or (pd.isna(left) and pd.isna(right))
        ), column
    assert not a["simulated"].iloc[0]
    files_a = json.loads(a["files"].iloc[0])
    files_b = json.loads(b["files"].iloc[0])
    assert {k: f"{REAL_NAME}/{v}" for k, v in files_a.items()} == files_b
    manifest = json.loads((staged_folder(delivered.archive, f"{TOP}.tar.gz") / MANIFEST).read_text())
    assert manifest["ignored"]["iif"] == 1 and manifest["products"] == [tar_member(ORDER, REAL_NAME)]
    digest = hashlib.sha256((product / f"{REAL_NAME}-METADATA.XML").read_bytes()).hexdigest()
    staged_xml = Path(gdal_path_of(delivered.archive, b["product_path"].iloc[0], files_b["metadata"]))
    assert hashlib.sha256(staged_xml.read_bytes()).hexdigest() == digest, "the staged XML is the real one"


def test_simulate_command_writes_dlr_tarballs_marked_simulated_and_the_same_bytes_twice(tmp_path):
    from spectralforge.cli import main

    digests = []
    for run in ("a", "b"):
        out = tmp_path / run
        args = ["simulate", "--out", str(out), "--tiles", "3", "--tile-size", "64", "--seed", "5"]
        assert (
            main([*args, "--workers", "1", "--no-labels", "--delivery", "tar", "--delivered-share", "1"]) == 0
        )
        tarballs = _tarballs(out / "archive")
        assert tarballs and all(p.name.startswith("dims_op_oc_oc-en_") for p in tarballs)
        digests.append([hashlib.sha256(p.read_bytes()).hexdigest() for p in tarballs])
    with tarfile.open(tarballs[0]) as tar:
        names = tar.getnames()
        top = names[0]
        order = top.split("_")[-2]
        assert f"{top}/iif/{order}_iif.xml" in names and f"{top}/readme.html" in names
        assert any(n.startswith(f"{top}/tools/") and n.endswith(".pdf") for n in names)
        for member in (f"{top}/iif/{order}_iif.xml", f"{top}/readme.html"):
            assert b"SIMULATED" in tar.extractfile(member).read()
        zips = [n for n in names if n.endswith(".ZIP")]
        assert zips and all(n.startswith(f"{top}/ENMAP.HSI.L2A/") for n in zips)
        assert all(n.split("/")[-2] == n.split("/")[-1].removesuffix(".ZIP") for n in zips), "item = product"
    assert digests[0] == digests[1], "the same seed gives the same bytes"
