"""Code and data versions of the curation chain, so that the UI's "out of date" means something.

Dagster marks an asset stale when its code version differs from the one its last materialisation
recorded, or when an upstream asset's data version differs from the one it was computed from.
Both are plain strings; this module makes them (no Dagster import, the stage ``defs.py`` use it):

- a *code version* is a hash of the stage's own source files (``assets/<stage>/**/*.py``,
  ``storage_schemas.source_versions``): edit the stage and its assets read "code changed", with
  nobody having to remember to bump a constant.
- a *data version* is a hash of what a step wrote, read back from its tables, blind to what only
  says *when* it ran (a scan time): an unchanged nightly re-scan gives the same data version, so
  nothing downstream turns stale, while one new product changes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from storage_schemas.paths import readable
from storage_schemas.source_versions import VERSION_CHARS, source_version

__all__ = ["data_version", "source_version", "table_digest"]


def table_digest(table: pa.Table, ignore: Iterable[str] = ()) -> str:
    """A hash of a table's columns and values, without the columns in ``ignore``, without schema and
    field metadata (pandas and GeoParquet notes that say nothing about the rows) and blind to how
    the same values are laid out (``string`` or ``large_string``: pandas writes either, by history)."""
    kept = table.drop_columns([c for c in ignore if c in table.column_names])
    plain = pa.schema([pa.field(f.name, _plain(f.type), f.nullable) for f in kept.schema])
    kept = kept.cast(plain).combine_chunks()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, kept.schema) as writer:
        writer.write_table(kept)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


def _plain(dtype: pa.DataType) -> pa.DataType:
    """The 32-bit-offset twin of a large string, binary or list type (the same values)."""
    if pa.types.is_large_string(dtype):
        return pa.string()
    if pa.types.is_large_binary(dtype):
        return pa.binary()
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        return pa.list_(_plain(dtype.value_type))
    return dtype


def parquet_digest(path: Path, ignore: Iterable[str] = ()) -> str:
    """:func:`table_digest` of a Parquet file; ``"absent"`` when there is none yet."""
    return table_digest(pq.read_table(readable(path)), ignore) if path.exists() else "absent"


def data_version(*digests: str) -> str:
    """One data version from the digests of everything a step wrote."""
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()[:VERSION_CHARS]
