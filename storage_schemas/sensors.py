"""The sensors SpectralForge reads: what differs between EnMAP and DESIS products, in one record.

Readers, the scan, the archive simulator, band selection and the patch step take a
:class:`Sensor` instead of hard-coding EnMAP, so that a second sensor is a new entry in
:data:`SENSORS`, not a fork of the pipeline. Everything here is a fact (or, where marked, an
assumption) about a product format, never about SpectralForge's own files (those are in
``paths``).

DESIS (DLR Earth Sensing Imaging Spectrometer, on the ISS since 2018): 235 bands over
400-1000 nm, 30 m pixels, tiles of about 1024 x 1024 px (30 km), L2A reflectance as int16 x
10000. Real L2A products are named like ``DESIS-HSI-L2A-DT0483038728_001-20200813T234215-V0213``
and hold ``-SPECTRAL_IMAGE.tif``, ``-METADATA.xml``, ``-QUALITY.tif`` and ``-QL_IMAGE.tif``.
What we could not check against a real DESIS product (no sample is at hand) is marked as an
assumption below: the METADATA.xml schema (see ``assets.archive.metadata_readers``), the
layer order of QUALITY.tif (:data:`DESIS_MASKS`) and the physical reflectance range (EnMAP's,
:attr:`Sensor.reflectance_min`, is used).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from storage_schemas.band_filter import BAND_FILTERS, BandFilter
from storage_schemas.enmap_product import (
    IMAGE_SUFFIXES,
    METADATA_SUFFIX,
    NODATA,
    OTHER_FILES,
    PIXEL_SIZE_M,
    PRODUCT_NAME,
    QUALITY_MASKS,
    REFLECTANCE_SCALE,
    BandTable,
    ProductName,
    load_band_table,
    parse_product_name,
    product_name_of,
)

CLEANING_MASKS = ("cloud", "cloud_shadow", "haze")
"""The masks the patch step cleans with; a product must deliver them (or say it cannot)."""


@dataclass(frozen=True)
class MaskSource:
    """Where one per-pixel flag lies: a product file (by kind) and a 1-based layer of it."""

    file_kind: str
    band: int = 1


@dataclass(frozen=True)
class Sensor:
    """What differs between sensors: names, files, band table, band filter, pixel grid, scale."""

    name: str
    """Registry key and data-layout name: ``enmap``, ``desis``."""
    mission: str
    """As people write it: ``EnMAP``, ``DESIS``."""
    product_name: re.Pattern
    """Named groups ``level``, ``datatake``, ``acquired``, ``tile``, ``version``, optionally
    ``processed``."""
    name_parts: int
    """'-'-separated parts of a product name; the file kind follows after the next '-'."""
    name_template: str
    """``str.format`` template of a product name (``level``, ``datatake``, ``tile``,
    ``acquired``, ``version``, ``processed``; times as ``YYYYMMDDThhmmss``)."""
    metadata_suffix: str
    image_suffixes: tuple[str, ...]
    files: dict[str, str]
    """File kind -> suffix of every other file of a product (masks, quicklooks)."""
    masks: dict[str, MaskSource]
    """Mask kind (``cloud``, ``cloud_shadow``, ``haze``, ``snow``, ``cirrus``, ``classes``) -> where
    it lies. ``classes``: 1 land, 2 water, 3 background."""
    band_csv: str
    """The band table shipped in ``storage_schemas`` (nominal for DESIS, see the CSV header)."""
    metadata_format: str
    """Key of the METADATA parser in ``assets.archive.metadata_readers``."""
    quicklook_kinds: tuple[str, ...] = ()
    pixel_size_m: float = PIXEL_SIZE_M
    nodata: int = NODATA
    reflectance_scale: int = REFLECTANCE_SCALE
    reflectance_min: int = -1000
    """Lowest value (reflectance x ``reflectance_scale``) a real pixel of a kept band can have.
    No stored DLR document gives a valid range for L2A reflectance (the product specification
    gives only the encoding: int16, gain 0.0001, nodata -32768), so this is measured: the real
    Potsdam scene (realdata, 224 layers) has no value below 0 in the SpectralEarth bands and its
    lowest, -496, in the dropped water-vapour layers near 1950 nm, where the atmospheric
    correction is noisiest over dark ground. -0.1 leaves twice that margin; what lies below it is
    not a dark surface but damage (issue 16: inverted bytes turn 2592 into -2593)."""
    reflectance_max: int = 20000
    """Highest plausible value: reflectance 2.0. Surfaces exceed 1.0 only a little (fresh snow on
    sunlit slopes, specular glint, cloud tops: band maxima of 1.6-1.9 are reported for Sentinel-2
    L2A scenes, CNES/MAJA issue 13); the real Potsdam scene peaks at 0.78. Inverted nodata
    (-32768) reads 32767, far above."""
    accepted_level: str = "L2A"

    @property
    def band_filter(self) -> BandFilter:
        return BAND_FILTERS[self.name]

    def band_table(self) -> BandTable:
        return _band_table(self.band_csv, self.reflectance_scale)

    def parse_name(self, name: str) -> ProductName:
        return parse_product_name(name, self.product_name, self.mission)

    def product_name_of(self, file_name: str) -> str | None:
        return product_name_of(file_name, self.product_name, self.name_parts)

    def format_name(self, **parts) -> str:
        return self.name_template.format(**parts)

    def suffix_kinds(self) -> list[tuple[str, str]]:
        """(suffix, file kind) of every file a product can hold, the metadata first."""
        return [
            (self.metadata_suffix, "metadata"),
            *((s, "image") for s in self.image_suffixes),
            *((s, kind) for kind, s in self.files.items()),
        ]

    def file_names(self, name: str) -> dict[str, str]:
        """File kind -> file name of every file the simulator writes for a product."""
        names = {"metadata": name + self.metadata_suffix, "image": name + self.image_suffixes[0]}
        names.update({kind: name + suffix for kind, suffix in self.files.items()})
        return dict(sorted(names.items()))

    def mask_files(self) -> tuple[str, ...]:
        """File kinds the cleaning masks are read from (required in every product)."""
        return tuple(dict.fromkeys(self.masks[k].file_kind for k in CLEANING_MASKS if k in self.masks))


@cache
def _band_table(resource: str, scale: int) -> BandTable:
    return load_band_table(resource, scale)


ENMAP = Sensor(
    name="enmap",
    mission="EnMAP",
    product_name=PRODUCT_NAME,
    name_parts=3,
    name_template="ENMAP01-____{level}-DT{datatake:010d}_{acquired}Z_{tile:03d}_V{version}_{processed}Z",
    metadata_suffix=METADATA_SUFFIX,
    image_suffixes=IMAGE_SUFFIXES,
    files={**QUALITY_MASKS, **OTHER_FILES},
    masks={kind: MaskSource(kind) for kind in QUALITY_MASKS},
    band_csv="enmap_l2a_bands.csv",
    metadata_format="enmap",
    quicklook_kinds=("quicklook_vnir", "quicklook_swir"),
)

DESIS_PRODUCT_NAME = re.compile(
    r"^(?P<mission>DESIS)-HSI-(?P<level>L[0-9][A-C]?)-DT(?P<datatake>\d{10})_(?P<tile>\d{3})"
    r"-(?P<acquired>\d{8}T\d{6})-V(?P<version>\d{4})$"
)
"""``DESIS-HSI-L2A-DT<10 digits>_<tile 3 digits>-<YYYYMMDDThhmmss>-V<4 digits>``; the name holds
no processing time, so a reprocessing is told apart by its version alone."""

DESIS_MASKS = {
    "cloud": MaskSource("quality", 1),
    "cloud_shadow": MaskSource("quality", 2),
    "haze": MaskSource("quality", 3),
    "snow": MaskSource("quality", 4),
    "cirrus": MaskSource("quality", 5),
    "classes": MaskSource("quality", 6),
}
"""ASSUMPTION (no real DESIS QUALITY.tif at hand): one uint8 layer per flag, 1 = flagged, in this
order, and a sixth layer of classes (1 land, 2 water, 3 background) like EnMAP's
QL_QUALITY_CLASSES.
The simulator writes this layout; a reader of real products changes only this table."""

DESIS = Sensor(
    name="desis",
    mission="DESIS",
    product_name=DESIS_PRODUCT_NAME,
    name_parts=6,
    name_template="DESIS-HSI-{level}-DT{datatake:010d}_{tile:03d}-{acquired}-V{version}",
    metadata_suffix="-METADATA.xml",
    image_suffixes=("-SPECTRAL_IMAGE.tif",),
    files={"quality": "-QUALITY.tif", "quicklook": "-QL_IMAGE.tif"},
    masks=DESIS_MASKS,
    band_csv="desis_l2a_bands.csv",
    metadata_format="enmap-layout-stand-in",
    quicklook_kinds=("quicklook",),
)

SENSORS: dict[str, Sensor] = {s.name: s for s in (ENMAP, DESIS)}
"""Every sensor SpectralForge reads, by name (the ``sensor`` of a ``DataLayout``)."""


def sensor_named(name: str) -> Sensor:
    """The sensor of that name; ValueError lists the known ones."""
    try:
        return SENSORS[name]
    except KeyError:
        raise ValueError(f"unknown sensor {name!r}; known: {', '.join(SENSORS)}") from None
