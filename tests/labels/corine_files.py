"""CORINE files as Copernicus and national mapping agencies distribute them, written by tests over
the patches of a test release: GeoTIFFs in the regions' own CRSs with grid codes or 3-digit codes
and their no-data values, a value attribute table as ArcGIS writes it (``<raster>.tif.vat.dbf``,
dBase III, written byte by byte here, not by the code under test's reader), and a GeoPackage of
``Code_18`` polygons (text, as in the Copernicus vector product)."""

from __future__ import annotations

import struct
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from affine import Affine
from pyproj import Transformer

from storage_schemas.plan import PATCH_M

VAT_FIELDS = (("Value", "N", 9, 0), ("Count", "N", 10, 0), ("CODE_18", "C", 3, 0), ("LABEL3", "C", 80, 0))
"""The columns of the CLC 2018 raster's value table (ArcGIS: Value and Count numeric, CODE_18 and
LABEL3 text)."""


def write_dbf(path: Path, fields, rows) -> Path:
    """A dBase III table (version byte 3, no memo): the format of ArcGIS's ``.vat.dbf``."""
    header_len = 32 + 32 * len(fields) + 1
    record_len = 1 + sum(f[2] for f in fields)
    out = bytearray(struct.pack("<BBBBIHH20x", 3, 118, 1, 1, len(rows), header_len, record_len))
    for name, kind, length, decimals in fields:
        out += struct.pack("<11sc4xBB14x", name.encode("ascii"), kind.encode("ascii"), length, decimals)
    out += b"\r"
    for row in rows:
        out += b" "
        for (_, kind, length, _), value in zip(fields, row, strict=True):
            text = str(value)[:length]
            out += (text.rjust(length) if kind == "N" else text.ljust(length)).encode("latin-1")
    out += b"\x1a"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(out))
    return path


def write_vat(raster: Path, table: dict[int, int], values: np.ndarray) -> Path:
    """``<raster>.vat.dbf`` mapping each raster value to its CODE_18, with the pixel counts."""
    rows = [(v, int((values == v).sum()), f"{c:03d}", f"class {c}") for v, c in sorted(table.items())]
    return write_dbf(raster.with_name(raster.name + ".vat.dbf"), VAT_FIELDS, rows)


def fields(shape: tuple[int, int], codes, rng: np.random.Generator, parcel: int, dtype: str) -> np.ndarray:
    """Parcels of ``parcel`` cells of one code each, and single cells of another code sprinkled
    over them (1 in 300): small classes whose presence depends on exactly where a patch ends."""
    cells = (-(-shape[0] // parcel), -(-shape[1] // parcel))
    grid = rng.choice(np.asarray(codes, dtype=dtype), size=cells)
    values = np.kron(grid, np.ones((parcel, parcel), dtype=dtype))[: shape[0], : shape[1]]
    sprinkled = rng.random(shape) < 1 / 300
    values[sprinkled] = rng.choice(np.asarray(codes, dtype=dtype), size=int(sprinkled.sum()))
    return values


def write_polygons(
    path: Path, crs: str, bounds, side: float, codes, rng: np.random.Generator, extra=((), ())
) -> gpd.GeoDataFrame:
    """Squares of ``side`` metres over ``bounds`` (x0, y0, x1, y1 in ``crs``), then the ``extra``
    (polygons, codes); ``Code_18`` as text, as Copernicus writes it."""
    x0, y0, x1, y1 = bounds
    xs, ys = np.meshgrid(np.arange(x0, x1, side), np.arange(y0, y1, side))
    squares = shapely.box(xs.ravel(), ys.ravel(), xs.ravel() + side, ys.ravel() + side)
    labels = rng.choice(np.asarray(codes, dtype=object), size=len(squares))
    frame = gpd.GeoDataFrame(
        {"Code_18": np.concatenate([labels, np.asarray(extra[1], dtype=object)])},
        geometry=np.concatenate([squares, np.asarray(extra[0], dtype=object)]),
        crs=crs,
    )
    frame["Area_Ha"] = frame.area / 1e4
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_file(path, layer=path.stem, driver="GPKG")
    return frame


def footprint_in(crs: str, epsg: int, x0: float, y0: float, step_m: float = 40.0) -> shapely.Polygon:
    """The patch square at (x0, y0) of UTM ``epsg``, densified every ``step_m``, in ``crs``."""
    square = shapely.segmentize(shapely.box(x0, y0 - PATCH_M, x0 + PATCH_M, y0), step_m)
    to_crs = Transformer.from_crs(epsg, crs, always_xy=True)
    return shapely.transform(square, lambda xy: np.column_stack(to_crs.transform(xy[:, 0], xy[:, 1])))


def cell_boxes(transform: Affine, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The cells (rows, cols) of a north-up grid as polygons."""
    t = transform
    return shapely.box(t.c + cols * t.a, t.f + (rows + 1) * t.e, t.c + (cols + 1) * t.a, t.f + rows * t.e)


def mark_slivers(values: np.ndarray, transform: Affine, crs: str, patches, code: int) -> int:
    """Per patch, set to ``code`` the cell that overlaps its footprint the most while holding none
    of its 30 m pixel centres: a sliver along an edge, there for the multi-hot label only if
    presence counts every overlapping cell (the pixel centres never see it). Grids parallel to the
    patch's have such a cell only where an edge falls under 15 m into a cell; returns how many
    patches got one."""
    marked = 0
    for patch in patches.itertuples():
        footprint = footprint_in(crs, int(patch.epsg), patch.x0, patch.y0)
        centres = patch.x0 + 15 + 30 * np.arange(128), patch.y0 - 15 - 30 * np.arange(128)
        xs, ys = np.meshgrid(*centres)
        sx, sy = Transformer.from_crs(int(patch.epsg), crs, always_xy=True).transform(xs.ravel(), ys.ravel())
        cols, rows = ~transform * (np.asarray(sx), np.asarray(sy))
        seen = set(zip(np.floor(rows).astype(int).tolist(), np.floor(cols).astype(int).tolist(), strict=True))
        left, bottom, right, top = footprint.bounds
        c_lo, r_lo = ~transform * (left, top)
        c_hi, r_hi = ~transform * (right, bottom)
        r, c = np.mgrid[max(int(r_lo) - 1, 0) : min(int(r_hi) + 2, values.shape[0]),
                        max(int(c_lo) - 1, 0) : min(int(c_hi) + 2, values.shape[1])]  # fmt: skip
        r, c = r.ravel(), c.ravel()
        share = shapely.area(shapely.intersection(cell_boxes(transform, r, c), footprint))
        share = share / abs(transform.a * transform.e)
        free = np.array([(a, b) not in seen for a, b in zip(r.tolist(), c.tolist(), strict=True)])
        best = np.argmax(np.where(free, share, 0))
        if free[best] and share[best] > 0.01:
            values[r[best], c[best]] = code
            marked += 1
    return marked
