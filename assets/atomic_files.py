"""Write a file so that readers never see it half-written: temp file beside it, then rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import pyarrow as pa
import pyarrow.parquet as pq


def replace_atomically(path: Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp)`` on a temporary path in the target folder, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; the UI or a reader may run as another user
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_parquet(table: pa.Table, path: Path) -> None:
    """A Parquet table (zstd), written atomically."""
    replace_atomically(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


def write_geoparquet(frame: gpd.GeoDataFrame, path: Path) -> None:
    """GeoParquet 1.1 with a bbox covering column (zstd), written atomically."""
    replace_atomically(
        path,
        lambda tmp: frame.to_parquet(
            tmp, index=False, schema_version="1.1.0", write_covering_bbox=True, compression="zstd"
        ),
    )
