"""Dagster metadata helpers shared by the stages' ``defs.py`` (Dagster-side, like ``resources``).

Two rules keep what the UI shows true and the event log small: a table's column schema comes
from its contract in ``storage_schemas`` (never a second list of columns), and a figure is a file
with a link to it, at most one small thumbnail of it inline (metadata lives in the event log
once per materialisation, and per partition for per-tile assets).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Mapping
from pathlib import Path

import pyarrow as pa
from dagster import MetadataValue, TableColumn, TableColumnConstraints, TableSchema

THUMBNAIL_PX = 256
"""Longer side of an inline thumbnail: with 64 colours a few tens of kB."""
THUMBNAIL_COLOURS = 64

COLUMN_SCHEMA = "dagster/column_schema"
"""The metadata key the UI reads a table's columns from (``TableMetadataSet.column_schema``)."""
GEOMETRY_COLUMN = "geometry"
"""The column GeoParquet adds to a table's declared fields (WKB)."""


def png_markdown(png: bytes, alt: str, below: str = "") -> MetadataValue:
    """A PNG shown inline in the asset's metadata (kept small: it lives in the event log)."""
    image = f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"
    return MetadataValue.md(f"{image}\n\n{below}" if below else image)


ColumnSpec = pa.Schema | Iterable[pa.Field] | Mapping[str, str]
"""How ``storage_schemas`` declares a table's columns."""


def table_schema(columns: ColumnSpec, geometry: str = "") -> TableSchema:
    """The UI's column schema (``dagster/column_schema``) of a table declared in ``storage_schemas``.

    ``columns`` is what the contract declares: a pyarrow schema or list of fields (types and
    nullability), or a ``name -> dtype`` mapping (the label datasets' per-sample coordinates).
    ``geometry`` describes the GeoParquet geometry column where the table has one.
    """
    if isinstance(columns, Mapping):
        out = [TableColumn(name, dtype) for name, dtype in columns.items()]
    else:
        out = [
            TableColumn(f.name, str(f.type), constraints=TableColumnConstraints(nullable=f.nullable))
            for f in columns
        ]
    if geometry:
        out.append(TableColumn(GEOMETRY_COLUMN, "geometry (WKB)", description=geometry))
    return TableSchema(columns=out)


def schema_metadata(columns: ColumnSpec, geometry: str = "", table: str = "") -> dict[str, MetadataValue]:
    """Definition metadata that shows a table's columns in the UI: ``dagster/column_schema`` for the
    asset's main table, ``<table>_column_schema`` for another table it writes."""
    key = f"{table}_column_schema" if table else COLUMN_SCHEMA
    return {key: MetadataValue.table_schema(table_schema(columns, geometry))}


def png_thumbnail(png: bytes, max_px: int = THUMBNAIL_PX) -> bytes:
    """A PNG scaled down to ``max_px`` on its longer side, in an adaptive palette."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        small = image.convert("RGB")
        small.thumbnail((max_px, max_px))
        small = small.quantize(colors=THUMBNAIL_COLOURS)
        buffer = io.BytesIO()
        small.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def figure_metadata(figures: Mapping[str, Path], inline: str = "", alt: str = "") -> dict[str, MetadataValue]:
    """A link per figure file (``name -> path``), and ``thumbnail``: the figure named ``inline``
    shown small, when one is named."""
    metadata: dict[str, MetadataValue] = {name: MetadataValue.path(str(p)) for name, p in figures.items()}
    if inline:
        metadata["thumbnail"] = png_markdown(png_thumbnail(figures[inline].read_bytes()), alt or inline)
    return metadata
