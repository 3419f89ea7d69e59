"""Where everything lives under the data root (DESIGN.md, "Files under the data root").

Configuration comes from the environment so that the CLI, `make demo`, the Dagster UI and the
nightly schedule all see the same files: ``SPECTRAL_DATA_ROOT`` (default ``./data``) and
``ENMAP_ARCHIVE`` (default ``$SPECTRAL_DATA_ROOT/archive``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DataLayout:
    """The files of one SpectralForge deployment, all derived from two roots."""

    root: Path
    archive: Path

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DataLayout:
        env = os.environ if environ is None else environ
        root = Path(env.get("SPECTRAL_DATA_ROOT") or "data").expanduser().absolute()
        archive = Path(env.get("ENMAP_ARCHIVE") or root / "archive").expanduser().absolute()
        return cls(root=root, archive=archive)

    @classmethod
    def at(cls, root: str | os.PathLike[str], archive: str | os.PathLike[str] | None = None) -> DataLayout:
        root = Path(root).absolute()
        return cls(root=root, archive=Path(archive).absolute() if archive else root / "archive")

    @property
    def catalog_dir(self) -> Path:
        return self.root / "catalog"

    @property
    def tiles(self) -> Path:
        """GeoParquet, one row per accepted product, footprint in EPSG:4326."""
        return self.catalog_dir / "tiles.parquet"

    @property
    def products(self) -> Path:
        """Every readable product (accepted or not), the scan's memory between re-scans."""
        return self.catalog_dir / "products.parquet"

    @property
    def quarantine(self) -> Path:
        """Products that were refused, with a reason that names the file and the fault."""
        return self.catalog_dir / "quarantine.parquet"

    @property
    def footprint_map(self) -> Path:
        return self.catalog_dir / "footprints.png"

    @property
    def plan_dir(self) -> Path:
        return self.root / "plan"

    @property
    def overlap_graph(self) -> Path:
        """Edges (tile_a, tile_b, epsg, area_m2, component) of the tile overlap graph."""
        return self.plan_dir / "overlap_graph.parquet"

    @property
    def intersections(self) -> Path:
        """Tile tuples of Algorithm 1 and their common valid area (GeoParquet)."""
        return self.plan_dir / "intersections.parquet"

    @property
    def locations(self) -> Path:
        """Non-overlapping 128 x 128 px windows, one row each (GeoParquet, EPSG:4326 outlines)."""
        return self.plan_dir / "locations.parquet"

    @property
    def patches(self) -> Path:
        """One row per (location, tile whose valid area contains it)."""
        return self.plan_dir / "patches.parquet"

    @property
    def timestamps_histogram(self) -> Path:
        return self.plan_dir / "timestamps_per_location.png"

    @property
    def tile_quality_dir(self) -> Path:
        """Per-tile quality records and quicklooks written by the ``tile_quality`` partitions."""
        return self.root / "tiles"

    @property
    def store(self) -> Path:
        """The patch store (Zarr v3, layout in ``storage_schemas.patch_store``)."""
        return self.root / "stores" / "spectral_earth.zarr"

    @property
    def releases(self) -> Path:
        """``<version>/`` folders of the SpectralEarth release and the ``LATEST`` pointer."""
        return self.root / "releases" / "spectral_earth"

    @property
    def label_sources(self) -> Path:
        """Label products in their native grids (CORINE, CDL, NLCD; paths in ``label_products``)."""
        return self.root / "label_sources"

    @property
    def labels(self) -> Path:
        """``<name>.zarr`` downstream label datasets (contract: ``storage_schemas.label_dataset``)."""
        return self.root / "labels"

    @property
    def extract_cache(self) -> Path:
        """Where members that cannot be read in place (compressed ZIPs inside ZIPs) are unpacked."""
        return self.root / "cache" / "extracted"


PROJECT_ROOT = Path(__file__).resolve().parent.parent


def realdata_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """The folder of real sample files: ``SPECTRAL_REALDATA`` if set (it must then exist), else
    ``../shared/realdata`` beside the project when present, else None (the project runs without).
    """
    env = os.environ if environ is None else environ
    if env.get("SPECTRAL_REALDATA"):
        path = Path(env["SPECTRAL_REALDATA"]).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"SPECTRAL_REALDATA={path} is not a folder")
        return path
    default = PROJECT_ROOT.parent / "shared" / "realdata"
    return default if default.is_dir() else None
