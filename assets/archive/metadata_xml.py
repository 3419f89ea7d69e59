"""Parse an EnMAP ``METADATA.XML`` into the fields the catalog needs, fast.

A real METADATA.XML is about 4 MB, and 95% of it is orbit state vectors, attitude, per-band RPC
coefficients and per-line frame times that the catalog never uses. Everything the catalog needs
sits in ``metadata``, ``processing``, ``base`` and ``specific`` (the first ~70 kB) and in
``product/ortho`` (near the end). So the reader reads the head up to ``<product>`` and a tail
window holding ``<ortho>`` and the closing ``</level_X>``, and parses only those: a scan costs
about 200 kB of I/O per product instead of 4 MB. When the sections are not where expected, it
falls back to reading the whole file.

Both layouts are handled: the sample schema (``metadata_Lx_00-02-00``, 218 bands) and the
operational one (``metadata_Lx_00-06-00`` and later, 224 bands ordered by wavelength).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

import numpy as np
from lxml import etree

from assets.archive.sources import HEAD_BYTES, TAIL_BYTES
from storage_schemas.enmap_product import BandTable, projection_to_epsg

SIMULATED_MARK = "SIMULATED"
"""Text the archive simulator puts in ``metadata/comment``: simulated products say so."""

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_blank_text=True)
_CORNERS = ("upper_left", "lower_left", "lower_right", "upper_right")
_COVERS = {
    "cloud_cover": "cloudCover",
    "haze_cover": "hazeCover",
    "cirrus_cover": "cirrusCover",
    "snow_cover": "snowCover",
    "cloud_shadow_cover": "cloudShadow",
}


class MetadataError(ValueError):
    """METADATA.XML is missing, malformed or lacks a field; the message says which."""


@dataclass(frozen=True)
class ProductMetadata:
    """What the catalog keeps of one METADATA.XML."""

    name: str
    level: str
    corners: tuple[tuple[float, float], ...]
    """(lon, lat) of upper_left, lower_left, lower_right, upper_right, in that order."""
    center: tuple[float, float]
    start_time: datetime
    stop_time: datetime
    covers: dict[str, float | None]
    """Percentages: cloud_cover, haze_cover, cirrus_cover, snow_cover, cloud_shadow_cover."""
    epsg: int
    width: int
    height: int
    bands: BandTable
    simulated: bool


def read_metadata(stream: BinaryIO, size: int) -> ProductMetadata:
    """Read head and tail of a METADATA.XML stream of ``size`` bytes and parse them."""
    if size <= HEAD_BYTES + TAIL_BYTES:
        return parse_metadata(stream.read())
    head = stream.read(HEAD_BYTES)
    stream.seek(size - TAIL_BYTES)
    tail = stream.read()
    try:
        return _parse_sections(head, tail)
    except _SectionsNotFound:
        stream.seek(0)
        return parse_metadata(stream.read())


def parse_metadata(data: bytes) -> ProductMetadata:
    """Parse a complete METADATA.XML document."""
    try:
        return _parse_sections(data, data)
    except _SectionsNotFound:
        # No <product> section at all: parse the whole document and let the field checks speak.
        return _fields(_parse(data, "document"), None)


class _SectionsNotFound(Exception):
    pass


def _parse_sections(head: bytes, tail: bytes) -> ProductMetadata:
    end = tail.rstrip()
    if not end.endswith(b"</level_X>"):
        if b"<level_X" not in head[:4096]:
            raise MetadataError("not an EnMAP METADATA.XML: no <level_X> root element")
        raise MetadataError("truncated: the document does not end with </level_X>")
    cut = head.find(b"<product>")
    ortho_start, ortho_end = tail.find(b"<ortho>"), tail.find(b"</ortho>")
    if cut < 0 or ortho_start < 0 or ortho_end < 0:
        raise _SectionsNotFound
    root = _parse(head[:cut] + b"</level_X>", "header sections")
    ortho = _parse(tail[ortho_start : ortho_end + len(b"</ortho>")], "product/ortho")
    return _fields(root, ortho)


def _parse(data: bytes, what: str) -> etree._Element:
    try:
        return etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise MetadataError(f"malformed XML in {what}: {exc}") from None


def _text(root: etree._Element, path: str) -> str:
    el = root.find(path)
    if el is None or el.text is None or not el.text.strip():
        raise MetadataError(f"missing element {path}")
    return el.text.strip()


def _number(root: etree._Element, path: str, kind: type = float) -> float:
    text = _text(root, path)
    try:
        return kind(float(text)) if kind is int else kind(text)
    except ValueError:
        raise MetadataError(f"element {path} is not a number: {text!r}") from None


_FRACTION = re.compile(r"\.(\d+)")
_METADATA_NAME = re.compile(r"-METADATA\.XML$", re.IGNORECASE)
"""EnMAP writes ``-METADATA.XML``, DESIS ``-METADATA.xml``."""


def parse_utc(text: str) -> datetime:
    """ISO time as DLR writes it: ``2017-06-26T10:20:20.999936Z``, also with 9 or no decimals."""
    clean = _FRACTION.sub(lambda m: "." + m[1][:6].ljust(6, "0"), text.strip().rstrip("Z"))
    try:
        return datetime.fromisoformat(clean).replace(tzinfo=UTC)
    except ValueError:
        raise MetadataError(f"not a UTC time: {text!r}") from None


def _fields(root: etree._Element, ortho: etree._Element | None) -> ProductMetadata:
    if root.tag != "level_X":
        raise MetadataError(f"root element is <{root.tag}>, expected <level_X>")
    name = _METADATA_NAME.sub("", _text(root, "metadata/name"))
    level_el = root.find("base/level")
    if level_el is None or not (level_el.text or "").strip():
        level_el = root.find("metadata/schema/processingLevel")
    if level_el is None or not (level_el.text or "").strip():
        raise MetadataError("missing element base/level")
    level = level_el.text.strip()

    points: dict[str, tuple[float, float]] = {}
    for point in root.iterfind("base/spatialCoverage/boundingPolygon/point"):
        frame = (point.findtext("frame") or "").strip()
        if frame in points or not frame:
            continue  # the polygon repeats upper_left to close the ring
        points[frame] = (_number(point, "longitude"), _number(point, "latitude"))
    missing = [f for f in (*_CORNERS, "center") if f not in points]
    if missing:
        raise MetadataError(f"base/spatialCoverage/boundingPolygon lacks the point(s) {', '.join(missing)}")
    for frame, (lon, lat) in points.items():
        if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
            raise MetadataError(f"footprint point {frame} is off the globe: lon {lon}, lat {lat}")

    covers: dict[str, float | None] = {}
    for key, tag in _COVERS.items():
        el = root.find(f"specific/qualityFlag/{tag}")
        value = None
        if el is not None and el.text and el.text.strip():
            try:
                value = float(el.text)
            except ValueError:
                raise MetadataError(f"specific/qualityFlag/{tag} is not a number: {el.text!r}") from None
        covers[key] = None if value is None or value < 0 else value  # -999 = not assessed

    bands = _band_table(root)
    projection_el = ortho if ortho is not None else root.find("product/ortho")
    if projection_el is None:
        raise MetadataError("missing element product/ortho/projection")
    try:
        epsg = projection_to_epsg(_text(projection_el, "projection"))
    except ValueError as exc:
        raise MetadataError(f"product/ortho/projection: {exc}") from None

    return ProductMetadata(
        name=name,
        level=level,
        corners=tuple(points[f] for f in _CORNERS),
        center=points["center"],
        start_time=parse_utc(_text(root, "base/temporalCoverage/startTime")),
        stop_time=parse_utc(_text(root, "base/temporalCoverage/stopTime")),
        covers=covers,
        epsg=epsg,
        width=int(_number(root, "specific/widthOfOrthoScene", int)),
        height=int(_number(root, "specific/heightOfOrthoScene", int)),
        bands=bands,
        simulated=SIMULATED_MARK in (root.findtext("metadata/comment") or ""),
    )


def _band_table(root: etree._Element) -> BandTable:
    rows = []
    for band in root.iterfind("specific/bandCharacterisation/bandID"):
        try:
            number = int(band.get("number", ""))
        except ValueError:
            raise MetadataError(f"bandID without a valid number attribute: {band.get('number')!r}") from None
        rows.append(
            (
                number,
                _number(band, "wavelengthCenterOfBand"),
                _number(band, "FWHMOfBand"),
                _number(band, "GainOfBand"),
                _number(band, "OffsetOfBand"),
            )
        )
    if not rows:
        raise MetadataError("specific/bandCharacterisation holds no bandID")
    rows.sort()
    numbers = [r[0] for r in rows]
    if numbers != list(range(1, len(rows) + 1)):
        raise MetadataError(f"bandID numbers are not 1..{len(rows)} without gaps or repeats")
    table = np.array([r[1:] for r in rows], dtype=np.float64)
    return BandTable(wavelength_nm=table[:, 0], fwhm_nm=table[:, 1], gain=table[:, 2], offset=table[:, 3])
