"""Where everything lives under the data root (DESIGN.md, "Files under the data root").

Configuration comes from the environment so that the CLI, `make demo`, the Dagster UI and the
nightly schedule all see the same files: ``SPECTRAL_DATA_ROOT`` (default ``./data``) and
``ENMAP_ARCHIVE`` (default ``$SPECTRAL_DATA_ROOT/archive``).

Every root may also be an object-store URL (``s3://bucket/prefix``): it is then a
:class:`upath.UPath` over fsspec, and everything below it is an object key (:func:`storage_path`).
Credentials and endpoint come from the usual AWS environment (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, ...); nothing is kept here.

Each sensor has its own archive, catalog, plan, store and releases, so that EnMAP and DESIS data
never mix. EnMAP keeps the paths it always had; DESIS lives under ``$SPECTRAL_DATA_ROOT/desis/``
(catalog, plan, per-tile files), ``stores/desis.zarr`` and ``releases/desis/``, with its archive
at ``DESIS_ARCHIVE`` (default ``$SPECTRAL_DATA_ROOT/archive_desis``).
"""

from __future__ import annotations

import io
import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from upath import UPath

StoragePath: TypeAlias = Path | UPath
"""A local path (a plain :class:`~pathlib.Path`) or an object-store location (a remote UPath)."""

OBJECT_STORE_SCHEMES = ("s3",)
"""URL schemes a root may use besides local paths."""


def storage_path(text: str | os.PathLike[str]) -> StoragePath:
    """``s3://bucket/prefix`` as a UPath (no trailing slash), anything else as an absolute local
    Path (``~`` expanded). A URL of a scheme not in :data:`OBJECT_STORE_SCHEMES` is refused."""
    if isinstance(text, UPath) and not isinstance(text, Path):
        return text
    value = os.fspath(text) if not isinstance(text, str) else text
    scheme, sep, rest = value.partition("://")
    if sep:
        if scheme not in OBJECT_STORE_SCHEMES:
            raise ValueError(f"{value}: unsupported storage URL scheme {scheme!r} (local paths or s3://)")
        if not rest.strip("/"):
            raise ValueError(f"{value}: no bucket in the URL (s3://bucket/prefix)")
        return UPath(f"{scheme}://{rest.rstrip('/')}")
    return Path(value).expanduser().absolute()


def is_remote(path: StoragePath) -> bool:
    """Whether ``path`` lies on an object store (no rename, no flock, no fsync there)."""
    return not isinstance(path, Path)


def readable(path: StoragePath) -> Path | io.BytesIO:
    """What a table reader (pyarrow, pandas, geopandas) takes for ``path``: the local Path, or the
    object's bytes fetched in one GET (catalog, plan and index tables are megabytes, read whole)."""
    return io.BytesIO(path.read_bytes()) if is_remote(path) else path


def relative_href(target: StoragePath, base: StoragePath) -> str:
    """``target`` relative to the folder ``base`` ('/'-separated), for links inside a release
    that hold wherever its root is (both local or both on one object store)."""
    if is_remote(target) != is_remote(base):
        raise ValueError(f"{target} and {base} are not on the same storage: no relative link between them")
    if is_remote(target):
        return posixpath.relpath(target.path, base.path)
    return os.path.relpath(target, base)


def zarr_location(path: StoragePath) -> str | Path:
    """What ``zarr.open_group`` and ``xarray.open_zarr`` take for ``path``: the local Path, or
    the URL (zarr then opens an fsspec store with the AWS environment's credentials)."""
    return str(path) if is_remote(path) else path


@dataclass(frozen=True)
class SensorPaths:
    """Where one sensor's files lie under the data root."""

    archive_env: str
    """Environment variable of the archive root."""
    archive_dir: str
    """Default archive folder under the data root."""
    work_dir: str
    """Folder of catalog, plan and per-tile files under the data root ("" = the root itself)."""
    dataset: str
    """Name of the store (``stores/<dataset>.zarr``) and of the releases (``releases/<dataset>/``)."""


SENSOR_PATHS = {
    "enmap": SensorPaths("ENMAP_ARCHIVE", "archive", "", "spectral_earth"),
    "desis": SensorPaths("DESIS_ARCHIVE", "archive_desis", "desis", "desis"),
}
"""Per sensor (``storage_schemas.sensors.SENSORS``): EnMAP's paths are the historical ones."""


def sensor_paths(sensor: str) -> SensorPaths:
    try:
        return SENSOR_PATHS[sensor]
    except KeyError:
        raise ValueError(f"unknown sensor {sensor!r}; known: {', '.join(SENSOR_PATHS)}") from None


@dataclass(frozen=True)
class DataLayout:
    """The files of one sensor in one SpectralForge deployment, derived from two roots."""

    root: StoragePath
    archive: StoragePath
    sensor: str = "enmap"

    def __post_init__(self) -> None:
        sensor_paths(self.sensor)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, sensor: str = "enmap") -> DataLayout:
        env = os.environ if environ is None else environ
        paths = sensor_paths(sensor)
        root = storage_path(env.get("SPECTRAL_DATA_ROOT") or "data")
        archive = storage_path(env.get(paths.archive_env) or root / paths.archive_dir)
        return cls(root=root, archive=archive, sensor=sensor)

    @classmethod
    def at(
        cls,
        root: str | os.PathLike[str],
        archive: str | os.PathLike[str] | None = None,
        sensor: str = "enmap",
    ) -> DataLayout:
        root = storage_path(root)
        default = root / sensor_paths(sensor).archive_dir
        return cls(root=root, archive=storage_path(archive) if archive else default, sensor=sensor)

    def for_sensor(self, sensor: str, environ: Mapping[str, str] | None = None) -> DataLayout:
        """The layout of another sensor under the same data root; its archive from its own
        environment variable, else its default folder under the root."""
        if sensor == self.sensor:
            return self
        env = os.environ if environ is None else environ
        paths = sensor_paths(sensor)
        archive = storage_path(env.get(paths.archive_env) or self.root / paths.archive_dir)
        return DataLayout(root=self.root, archive=archive, sensor=sensor)

    @property
    def work_dir(self) -> StoragePath:
        """Catalog, plan and per-tile files of this sensor (the data root itself for EnMAP)."""
        sub = sensor_paths(self.sensor).work_dir
        return self.root / sub if sub else self.root

    @property
    def catalog_dir(self) -> StoragePath:
        return self.work_dir / "catalog"

    @property
    def tiles(self) -> StoragePath:
        """GeoParquet, one row per accepted product, footprint in EPSG:4326."""
        return self.catalog_dir / "tiles.parquet"

    @property
    def products(self) -> StoragePath:
        """Every readable product (accepted or not), the scan's memory between re-scans."""
        return self.catalog_dir / "products.parquet"

    @property
    def quarantine(self) -> StoragePath:
        """Products that were refused, with a reason that names the file and the fault."""
        return self.catalog_dir / "quarantine.parquet"

    @property
    def footprint_map(self) -> StoragePath:
        return self.catalog_dir / "footprints.png"

    @property
    def plan_dir(self) -> StoragePath:
        return self.work_dir / "plan"

    @property
    def overlap_graph(self) -> StoragePath:
        """Edges (tile_a, tile_b, epsg, area_m2, component) of the tile overlap graph."""
        return self.plan_dir / "overlap_graph.parquet"

    @property
    def intersections(self) -> StoragePath:
        """Tile tuples of Algorithm 1 and their common valid area (GeoParquet)."""
        return self.plan_dir / "intersections.parquet"

    @property
    def locations(self) -> StoragePath:
        """Non-overlapping 128 x 128 px windows, one row each (GeoParquet, EPSG:4326 outlines)."""
        return self.plan_dir / "locations.parquet"

    @property
    def patches(self) -> StoragePath:
        """One row per (location, tile whose valid area contains it)."""
        return self.plan_dir / "patches.parquet"

    @property
    def timestamps_histogram(self) -> StoragePath:
        return self.plan_dir / "timestamps_per_location.png"

    @property
    def tile_quality_dir(self) -> StoragePath:
        """Per-tile quality records and quicklooks written by the ``tile_quality`` partitions."""
        return self.work_dir / "tiles"

    @property
    def store(self) -> StoragePath:
        """The patch store (Zarr v3, layout in ``storage_schemas.patch_store``)."""
        return self.root / "stores" / f"{sensor_paths(self.sensor).dataset}.zarr"

    @property
    def releases(self) -> StoragePath:
        """``<version>/`` folders of the sensor's releases and the ``LATEST`` pointer."""
        return self.root / "releases" / sensor_paths(self.sensor).dataset

    @property
    def label_sources(self) -> StoragePath:
        """Label products in their native grids (CORINE, CDL, NLCD; paths in ``label_products``)."""
        return self.root / "label_sources"

    @property
    def labels(self) -> StoragePath:
        """``<name>.zarr`` downstream label datasets (contract: ``storage_schemas.label_dataset``)."""
        return self.root / "labels"

    @property
    def staging(self) -> StoragePath:
        """Where the archive's delivery tarballs are unpacked (:func:`staging_root`)."""
        return staging_root(self.archive)

    @property
    def extract_cache(self) -> StoragePath:
        """Where members that cannot be read in place (compressed ZIPs inside ZIPs) are unpacked."""
        return self.root / "cache" / "extracted"


STAGING_ENV = "SPECTRAL_STAGING"


REMOTE_STAGING_DEFAULT = "~/.cache/spectralforge/staging"
"""Where the tarballs of an object-store archive are unpacked without ``SPECTRAL_STAGING``: this
host only; a cluster needs ``SPECTRAL_STAGING`` on a folder every worker mounts."""


def staging_root(archive: StoragePath, environ: Mapping[str, str] | None = None) -> Path:
    """Where the delivery tarballs of the archive ``archive`` are unpacked, each into
    ``<staging root>/<its archive-relative path>/``: ``$SPECTRAL_STAGING/<archive folder name>``
    if set, else ``staging/<archive folder name>`` beside the archive (with the default layout
    ``$SPECTRAL_DATA_ROOT/staging/archive``). A function of the archive root alone, so that every
    process that reads a product (scan, quality, patch step, on any worker) finds the same files
    from the catalog's ``product_path``. Two archives sharing ``SPECTRAL_STAGING`` need folder
    names of their own (a scan removes the staged copies of tarballs its archive no longer has).
    An archive on an object store stages to ``$SPECTRAL_STAGING/<bucket>/<prefix>``, by default
    under :data:`REMOTE_STAGING_DEFAULT`: always a local (or mounted) folder."""
    env = os.environ if environ is None else environ
    if is_remote(archive):  # gzip has no random access: unpacked to a (shared) local folder
        base = Path(env.get(STAGING_ENV) or REMOTE_STAGING_DEFAULT).expanduser().absolute()
        return base / archive.path
    if env.get(STAGING_ENV):
        return Path(env[STAGING_ENV]).expanduser().absolute() / archive.name
    return archive.parent / "staging" / archive.name


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
