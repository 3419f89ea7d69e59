"""The value attribute table that ArcGIS-made CORINE rasters carry beside them: ``<raster>.vat.dbf``
(``U2018_CLC2018_V2020_20u1.tif.vat.dbf``), a dBase table with one row per raster value and the
columns ``Value``, ``Count``, ``CODE_18`` (the 3-digit CLC code, as text) and ``LABEL3``.

Where a table lies beside a raster it, not the CLC legend, says what each value means: an extract
may number its classes in its own way. Older vintages name the code column ``CODE_12``,
``CODE_06`` or ``CODE_00``; columns are matched without regard to case. The table is read with
pyogrio (GDAL's shapefile driver reads a lone ``.dbf`` as a table), which geopandas brings.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio

from assets.labels.align import LabelSourceError
from assets.object_store import ogr_path
from storage_schemas.label_classes import CORINE_NO_DATA_VALUES, CorineCodes, name_values

VAT_SUFFIX = ".vat.dbf"
CODE_COLUMN = re.compile(r"code_(18|12|06|00)", re.IGNORECASE)


def vat_beside(raster: Path) -> Path | None:
    """``<raster>.vat.dbf`` (any case of the suffix) when it exists."""
    for suffix in (VAT_SUFFIX, VAT_SUFFIX.upper()):
        path = raster.with_name(raster.name + suffix)
        if path.is_file():
            return path
    return None


def read_vat(path: Path, nodata: int | None) -> CorineCodes:
    """The conversion a value attribute table defines; a table that cannot be one is refused by name."""
    try:
        frame = pyogrio.read_dataframe(ogr_path(path), read_geometry=False)
    except Exception as exc:
        raise LabelSourceError(f"{path}: unreadable as a dBase value table: {exc}") from None
    columns = {str(c).lower(): c for c in frame.columns}
    code_columns = sorted((c for c in frame.columns if CODE_COLUMN.fullmatch(str(c))), reverse=True)
    if "value" not in columns or not code_columns:
        listed = ", ".join(map(str, frame.columns))
        raise LabelSourceError(f"{path}: a value table needs columns Value and CODE_18 (it has {listed})")
    values = frame[columns["value"]]
    codes = frame[code_columns[0]].astype("string").str.strip()
    if not pd.api.types.is_integer_dtype(values) or not codes.str.fullmatch(r"\d{3}").fillna(False).all():
        raise LabelSourceError(
            f"{path}: Value must hold integers and {code_columns[0]} 3-digit CLC codes "
            f"(found {values.dtype} and {sorted(set(codes.dropna()))[:5]})"
        )
    if values.duplicated().any():
        raise LabelSourceError(f"{path}: values {name_values(values[values.duplicated()])} are listed twice")
    try:
        return CorineCodes.from_table(dict(zip(values.astype(int), codes.astype(int), strict=True)), nodata)
    except ValueError as exc:
        raise LabelSourceError(f"{path}: {exc}") from None


def check_raster_against_vat(vat: Path, raster: Path, codes: CorineCodes, values: np.ndarray) -> None:
    """Refuse a table that does not describe its raster: raster values (a decimated view, its
    nodata and the published no-data values set aside) that the table does not list."""
    found = set(np.unique(values).tolist()) - set(CORINE_NO_DATA_VALUES)
    missing = found - codes.values()
    if missing:
        listed = sorted(codes.values() - codes.no_data)
        raise LabelSourceError(
            f"{vat}: {raster.name} holds values {name_values(missing)} that its value table does not "
            f"list (the table has {name_values(listed)}); the table does not describe this raster"
        )
