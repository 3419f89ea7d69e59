"""Write a release folder: ``releases/spectral_earth/<version>/`` (contract: storage_schemas.release).

The folder is built under a temporary name and renamed into place, so a reader sees a whole
release or none. On an object store it is built in a local temporary folder and PUT file by file,
``manifest.json`` last: a version counts as published only once its manifest is there (as
:func:`publish_release` asks), and ``LATEST`` moves after that.

A version that already exists is the same content (the version is its hash) and
is not written again. ``LATEST`` is replaced last. Nothing written depends on the clock, so the
same content gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from assets.atomic_files import (
    rename_folder_durably,
    replace_atomically,
    write_geoparquet,
    write_parquet,
    writer_alive,
)
from assets.geometry.plan_report import histogram_png
from assets.object_store import built_locally
from assets.patches.release import ReleaseContent
from assets.patches.release_figures import (
    acquisitions_per_month_png,
    coverage_map_png,
    pca_mosaic_png,
    pick_mosaic_slots,
)
from assets.patches.release_growth import Drops
from assets.patches.release_stac import (
    DATASETS,
    build_collection,
    iter_items,
    write_collection,
    write_items_geoparquet,
)
from storage_schemas.patch_reader import PatchReader
from storage_schemas.patch_store import LAYOUT_VERSION
from storage_schemas.paths import DataLayout, StoragePath, is_remote, relative_href
from storage_schemas.release import (  # noqa: F401  (ReleaseNotFoundError: re-exported for callers)
    COLLECTION,
    FIGURES,
    ITEMS,
    LATEST,
    LOCATIONS,
    MANIFEST,
    PATCH_INDEX,
    PATCH_INDEX_SCHEMA,
    STATISTICS,
    ReleaseNotFoundError,
    resolve_release,
)

MOSAIC_PATCHES = 16
MOSAIC_WIDTH_PX = 640
"""Small enough for the event log: the figure is also metadata of every release."""
FIGURE_FILES = {
    "coverage": "coverage_map.png",
    "timestamps": "timestamps_per_location.png",
    "months": "acquisitions_per_month.png",
    "mosaic": "pca_mosaic.png",
}
"""The paper's Figure 3, Figure 6, Figure 17 and Figure 2."""


@dataclass(frozen=True)
class PublishedRelease:
    folder: StoragePath
    version: str
    created: bool
    """False when the same version was already published."""
    figures: dict[str, bytes]


def publish_release(
    layout: DataLayout, content: ReleaseContent, drops: Drops | None = None
) -> PublishedRelease:
    """Write the release folder (unless that version exists) and point ``LATEST`` at it; ``drops``:
    what it drops of the previous release and why, for its manifest (checked by the caller)."""
    final = layout.releases / content.version
    if (final / MANIFEST).is_file():
        _point_latest(layout, content.version)
        figures = {k: (final / FIGURES / f).read_bytes() for k, f in FIGURE_FILES.items()}
        return PublishedRelease(final, content.version, False, figures)
    if is_remote(final):
        with built_locally(final, last=MANIFEST) as folder:
            (folder / FIGURES).mkdir()
            figures = _write_release(layout, content, folder, drops)
        _point_latest(layout, content.version)
        return PublishedRelease(final, content.version, True, figures)
    _remove_abandoned_folders(layout.releases)
    tmp = layout.releases / f".{content.version}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / FIGURES).mkdir(parents=True)
    try:
        figures = _write_release(layout, content, tmp, drops)
        rename_folder_durably(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _point_latest(layout, content.version)
    return PublishedRelease(final, content.version, True, figures)


def _remove_abandoned_folders(releases: Path) -> None:
    """Half-built release folders (``.<version>.tmp-<pid>``) of publishers that were killed: their
    pid is gone. A live publisher's folder is never touched."""
    for folder in releases.glob(".*.tmp-*"):
        pid = folder.name.rsplit("-", 1)[-1]
        if folder.is_dir() and pid.isdigit() and not writer_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _write_release(
    layout: DataLayout, content: ReleaseContent, folder: Path, drops: Drops | None
) -> dict[str, bytes]:
    index = content.index
    write_parquet(
        pa.Table.from_pandas(index, schema=PATCH_INDEX_SCHEMA, preserve_index=False), folder / PATCH_INDEX
    )
    write_geoparquet(content.locations, folder / LOCATIONS)
    content.statistics.to_csv(folder / STATISTICS, index=False, float_format="%.6f")
    store_href = relative_href(layout.store, layout.releases / content.version)
    bands = content.statistics[["band", "wavelength_nm", "fwhm_nm"]]
    collection = build_collection(
        content.version, index, content.locations, bands, content.statistics, store_href, layout.sensor
    )
    collection_id = DATASETS[layout.sensor].collection_id
    write_items_geoparquet(
        iter_items(content.version, index, content.locations, store_href, collection_id),
        folder / ITEMS,
        collection,
    )
    write_collection(collection, folder / COLLECTION)
    figures = {
        "coverage": coverage_map_png(content.locations),
        "timestamps": histogram_png(content.locations["n_timestamps"]),
        "months": acquisitions_per_month_png(index["time"], unit="patches"),
        "mosaic": pca_mosaic_png(_mosaic_patches(layout.store, index), width_px=MOSAIC_WIDTH_PX),
    }
    for key, png in figures.items():
        (folder / FIGURES / FIGURE_FILES[key]).write_bytes(png)
    manifest = {
        "name": DATASETS[layout.sensor].title,
        "version": content.version,
        "store": relative_href(layout.store, layout.root),
        "store_layout_version": LAYOUT_VERSION,
        "band_filter": content.band_filter,
        "counts": content.counts,
        "statistics": {
            "file": STATISTICS,
            "valid_pixels": int(content.statistics["valid_pixels"].iloc[0]) if len(content.statistics) else 0,
        },
        "scale": "reflectance x 10000, nodata -32768",
        "tiles": content.tiles,
        "tiles_withheld": content.withheld,
        "dropped_since_previous": drops.manifest_entry() if drops is not None else None,
        "files": {
            p.relative_to(folder).as_posix(): _sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()
        },
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return figures


def _mosaic_patches(store: Path, index) -> np.ndarray:
    with PatchReader(store) as reader:
        return reader.read_many(pick_mosaic_slots(index, n=MOSAIC_PATCHES))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _point_latest(layout: DataLayout, version: str) -> None:
    replace_atomically(layout.releases / LATEST, lambda tmp: Path(tmp).write_text(version + "\n"))


def release_folder(layout: DataLayout, version: str) -> Path:
    """The folder of a release, ``latest`` meaning the one ``LATEST`` names."""
    return resolve_release(layout.releases, version)
