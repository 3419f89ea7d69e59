"""Which parser reads a sensor's METADATA file (``Sensor.metadata_format`` -> parser).

EnMAP: DLR's METADATA.XML (``metadata_xml``). DESIS: STAND-IN. We have no real DESIS L2A product,
and its METADATA.xml schema differs from EnMAP's. The archive simulator therefore writes DESIS
products with genuine DESIS names and files but a METADATA.xml in the EnMAP layout (the fields
the catalog needs: footprint, times, cover percentages, band table, projection, size), and this
entry reads it with the EnMAP parser. A parser of the real DESIS schema, returning the same
:class:`ProductMetadata`, replaces the ``enmap-layout-stand-in`` entry; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO

from assets.archive.metadata_xml import ProductMetadata, read_metadata

MetadataReader = Callable[[BinaryIO, int], ProductMetadata]
"""``reader(stream, size)``: the parsed metadata, or ``MetadataError`` naming the fault."""

METADATA_READERS: dict[str, MetadataReader] = {
    "enmap": read_metadata,
    "enmap-layout-stand-in": read_metadata,
}
