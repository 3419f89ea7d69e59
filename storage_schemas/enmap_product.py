"""The EnMAP L2A product format as DLR delivers it: names, files, projections, band table.

Everything here is a fact about the product format (DLR's EnMAP Level-2A product specification,
checked against the sample product and the real operational product DT0000001049 in
``../shared/realdata``), not about SpectralForge. Readers and the archive simulator both build on
it, so the two cannot drift apart.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources

import numpy as np

NODATA = -32768
"""Fill value of SPECTRAL_IMAGE outside the swath and in bands without signal."""

REFLECTANCE_SCALE = 10000
"""L2A stores reflectance x 10000 as int16 (``GainOfBand`` 0.0001, ``OffsetOfBand`` 0)."""

PIXEL_SIZE_M = 30.0

PRODUCT_NAME = re.compile(
    r"^(?P<mission>ENMAP01)-_{4}(?P<level>L[0-9][A-C]?)-DT(?P<datatake>\d{10})"
    r"_(?P<acquired>\d{8}T\d{6})Z_(?P<tile>\d{3})_V(?P<version>\d{6})_(?P<processed>\d{8}T\d{6})Z$"
)
"""``ENMAP01-____L2A-DT<10 digits>_<YYYYMMDDThhmmss>Z_<tile>_V<6>_<YYYYMMDDThhmmss>Z``."""

METADATA_SUFFIX = "-METADATA.XML"
IMAGE_SUFFIXES = ("-SPECTRAL_IMAGE.TIF", "-SPECTRAL_IMAGE_COG.tiff", "-SPECTRAL_IMAGE.tif")
QUALITY_MASKS = {
    "cloud": "-QL_QUALITY_CLOUD.TIF",
    "cloud_shadow": "-QL_QUALITY_CLOUDSHADOW.TIF",
    "haze": "-QL_QUALITY_HAZE.TIF",
    "snow": "-QL_QUALITY_SNOW.TIF",
    "cirrus": "-QL_QUALITY_CIRRUS.TIF",
    "classes": "-QL_QUALITY_CLASSES.TIF",
}
"""Per-pixel quality layers (uint8, 1 = flagged; CLASSES: 1 land, 2 water, 3 background)."""
OTHER_FILES = {
    "pixelmask": "-QL_PIXELMASK.TIF",
    "quicklook_vnir": "-QL_VNIR.TIF",
    "quicklook_swir": "-QL_SWIR.TIF",
}
QUALITY_CLASS_BACKGROUND = 3
ACCEPTED_LEVEL = "L2A"


@dataclass(frozen=True)
class ProductName:
    """The parts of a product name; the tile id is datatake + tile number, unique per acquisition."""

    name: str
    level: str
    datatake: int
    acquired: datetime
    tile_number: int
    processor_version: str
    processed: datetime

    @property
    def tile_id(self) -> str:
        """Stable id of the acquired tile, the same for every reprocessing of it."""
        return f"DT{self.datatake:010d}_{self.tile_number:03d}"


def parse_product_name(name: str, pattern: re.Pattern = PRODUCT_NAME, mission: str = "EnMAP") -> ProductName:
    """Split a product name into its parts; ``ValueError`` names what does not match.

    ``pattern`` has the groups ``level``, ``datatake``, ``acquired``, ``tile``, ``version`` and
    optionally ``processed``; a name without a processing time (DESIS) gets the acquisition time.
    """
    m = pattern.match(name)
    if m is None:
        article = "an" if mission[:1] in "AEIOU" else "a"
        raise ValueError(f"{name!r} is not {article} {mission} product name (expected {pattern.pattern})")

    def stamp(text: str) -> datetime:
        return datetime.strptime(text, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)

    acquired = stamp(m["acquired"])
    processed = m.groupdict().get("processed")
    return ProductName(
        name=name,
        level=m["level"],
        datatake=int(m["datatake"]),
        acquired=acquired,
        tile_number=int(m["tile"]),
        processor_version=m["version"],
        processed=stamp(processed) if processed else acquired,
    )


def product_name_of(file_name: str, pattern: re.Pattern = PRODUCT_NAME, name_parts: int = 3) -> str | None:
    """The product name a file of a product belongs to, or None if it is no product file.

    The name itself holds ``name_parts`` '-'-separated parts (EnMAP: ``ENMAP01-____L2A-DT...``,
    three); the file kind follows the next '-'."""
    parts = file_name.rsplit("/", 1)[-1].split("-")
    if len(parts) <= name_parts:
        return None
    name = "-".join(parts[:name_parts])
    return name if pattern.match(name) else None


_PROJECTION = re.compile(r"^UTM_Zone(?P<zone>\d{1,2})_(?P<hemisphere>North|South)$")
_OTHER_PROJECTIONS = {"Geographic": 4326, "LAEA-ETRS89": 3035, "LAEA_ETRS89": 3035}


def projection_to_epsg(projection: str) -> int:
    """``UTM_Zone33_North`` -> 32633, ``UTM_Zone19_South`` -> 32719; ValueError otherwise."""
    text = projection.strip()
    if text in _OTHER_PROJECTIONS:
        return _OTHER_PROJECTIONS[text]
    m = _PROJECTION.match(text)
    if m is None or not 1 <= int(m["zone"]) <= 60:
        raise ValueError(f"unknown map projection {projection!r}")
    return (32600 if m["hemisphere"] == "North" else 32700) + int(m["zone"])


def epsg_to_projection(epsg: int) -> str:
    """Inverse of :func:`projection_to_epsg` for UTM zones."""
    zone, north = epsg % 100, epsg // 100 == 326
    if epsg // 100 not in (326, 327) or not 1 <= zone <= 60:
        raise ValueError(f"EPSG:{epsg} is not a WGS84 UTM zone")
    return f"UTM_Zone{zone}_{'North' if north else 'South'}"


def utm_epsg_for(lon: float, lat: float) -> int:
    """EPSG of the UTM zone of a point (the scene centre decides a product's zone)."""
    lon = (lon + 180.0) % 360.0 - 180.0
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return (32600 if lat >= 0 else 32700) + zone


@dataclass(frozen=True)
class BandTable:
    """Per-band wavelength centre and FWHM (nm), gain and offset, in layer order."""

    wavelength_nm: np.ndarray
    fwhm_nm: np.ndarray
    gain: np.ndarray
    offset: np.ndarray

    def __len__(self) -> int:
        return len(self.wavelength_nm)


def load_band_table(resource: str, scale: float = REFLECTANCE_SCALE) -> BandTable:
    """A band table shipped with ``storage_schemas`` (CSV with ``wavelength_nm`` and ``fwhm_nm``
    columns, ``#`` comment lines saying where the values come from)."""
    wl, fwhm = [], []
    with resources.files("storage_schemas").joinpath(resource).open() as f:
        for row in csv.DictReader(line for line in f if not line.startswith("#")):
            wl.append(float(row["wavelength_nm"]))
            fwhm.append(float(row["fwhm_nm"]))
    n = len(wl)
    return BandTable(
        wavelength_nm=np.array(wl),
        fwhm_nm=np.array(fwhm),
        gain=np.full(n, 1.0 / scale),
        offset=np.zeros(n),
    )


@cache
def operational_band_table() -> BandTable:
    """The 224-band table of operational L2A products (real product DT0000001049)."""
    return load_band_table("enmap_l2a_bands.csv")


NO_SIGNAL_BANDS_NM = ((1320.0, 1400.0),)
"""Wavelength ranges that real L2A products deliver as nodata (deep water-vapour absorption;
the real Potsdam scene has layers 129-134, 1331-1391 nm, all -32768)."""
