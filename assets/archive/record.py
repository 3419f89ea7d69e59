"""The product record: what the reader learns about one product, one catalog row."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from shapely.geometry.base import BaseGeometry

from storage_schemas.enmap_product import BandTable


@dataclass(frozen=True)
class Fingerprint:
    """Identity of a product's container on disk; a re-scan re-reads only when it changes.

    ``size`` and ``mtime_ns`` are compared first (a stat, no read); only when they differ is the
    ``checksum`` recomputed (ZIP: the member names, sizes and CRC-32s of the central directory;
    folder: the METADATA.XML bytes and the member names and sizes), so that a touched but
    unchanged product keeps its row.
    """

    size: int
    mtime_ns: int
    checksum: str


@dataclass(frozen=True)
class ProductRecord:
    """One readable EnMAP product: identity, time, quality, geometry, bands and files."""

    tile_id: str
    product_name: str
    datatake: int
    tile_number: int
    processor_version: str
    processed: datetime
    level: str
    acquired: datetime
    stop_time: datetime
    covers: dict[str, float | None]
    epsg: int
    width: int
    height: int
    n_bands: int
    dtype: str
    pixel_size: float
    grid_x0: float
    grid_y0: float
    center_lon: float
    center_lat: float
    footprint: BaseGeometry
    crosses_antimeridian: bool
    bands: BandTable
    product_path: str
    files: dict[str, str]
    """File kind (``metadata``, ``image``, ``cloud``, ...) -> member path inside the product."""
    simulated: bool
    fingerprint: Fingerprint
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Refusal:
    """A product (or something that looked like one) that cannot be used, and why."""

    product_path: str
    reason: str
    file: str | None = None
    product_name: str | None = None
    fingerprint: Fingerprint | None = None
