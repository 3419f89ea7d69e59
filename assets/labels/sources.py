"""Find and describe the files of a label source (CORINE, CDL, NLCD rasters; polygons) under the
label-source root.

A product entry (``storage_schemas.label_products``) names its files by a pattern relative to the
root: ``cdl/{year}_30m_cdls.tif`` for a product released per year, ``corine/**/*`` for a set of
files. A pattern may match several files: Copernicus distributes CORINE as a mainland raster
(EPSG:3035) and one raster per outermost region in that region's CRS, and national products and
extracts (3-digit codes, GeoPackage polygons) may lie beside them; ``source_choice`` says which
file labels a patch. Of what a pattern matches, rasters (``.tif``) and vector files (``.gpkg``,
GeoParquet, ...) are sources, chosen by file type; value tables, ``.aux.xml`` and documents are
not. Every source file is opened and checked here (one band, integer codes, a CRS read from the
file, for CORINE its conversion to CLC codes and its value table against its values) before any
patch is labelled, so a bad file is named once, up front, with its fault, and the others go on;
a missing year is reported, not guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from pyproj import Geod, Transformer
from rasterio.crs import CRS as RioCRS
from rasterio.errors import RasterioError
from rasterio.warp import transform_bounds

from assets.labels.align import LabelRaster, LabelSourceError, describe_label_raster
from assets.labels.corine_vat import vat_beside
from assets.labels.label_patch import source_convention
from assets.labels.vector_labels import VECTOR_SUFFIXES, VectorSourceError, read_label_vector
from assets.object_store import open_raster
from storage_schemas.label_classes import CorineCodes
from storage_schemas.label_products import LabelProduct

RASTER_SUFFIXES = (".tif", ".tiff")
RASTER, VECTOR = "raster", "vector"


@dataclass(frozen=True, eq=False)
class SourceFile:
    """One file of a label source and what is needed to pick and trust it."""

    year: int
    """Product year, 0 for a source with a single product."""
    name: str
    """The file's path under the label-source root (what provenance and messages name)."""
    kind: str
    """``raster`` or ``vector``, by the file's type."""
    raster: LabelRaster
    """CRS, nodata and dtype (for polygons: their CRS and the code attribute's dtype)."""
    bounds_lonlat: tuple[float, float, float, float]
    cell_m: float
    """Side of a source cell in metres at the file's centre (polygons: 0, the finest)."""
    codes: CorineCodes | None
    """CORINE: how the file's values become 3-digit CLC codes; None for other sources."""
    size_bytes: int
    mtime_ns: int
    """The later of the file's and its value table's modification times: a new table is a new
    version of the source as much as a new raster is."""
    vat: str = ""
    """The value table that converts the raster's values (its name under the root), or empty."""

    @property
    def path(self) -> Path:
        return self.raster.path

    def describe(self) -> dict:
        return {
            "year": self.year,
            "file": str(self.path),
            "name": self.name,
            "kind": self.kind,
            "crs": self.raster.crs_name,
            "nodata": self.raster.nodata,
            "dtype": self.raster.dtype,
            "cell_m": round(self.cell_m, 2),
            "convention": self.codes.convention if self.codes is not None else "native",
            "value_table": self.vat or None,
            "size_bytes": self.size_bytes,
            "simulated": self.raster.simulated,
        }


@dataclass
class SourceFiles:
    """The usable files of one product's source, and the reasons for the ones that are not."""

    files: list[SourceFile] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def years(self) -> set[int]:
        return {f.year for f in self.files}

    def of_year(self, year: int) -> list[SourceFile]:
        return [f for f in self.files if f.year == year]

    def fingerprint(self) -> str:
        """Names, sizes and modification times: a cheap version of multi-GB rasters."""
        return ";".join(f"{f.year}:{f.name}:{f.size_bytes}:{f.mtime_ns}" for f in self.files)


def is_source_file(path: Path) -> bool:
    """A raster or a vector file (not a value table, ``.aux.xml``, overview or document)."""
    return path.is_file() and path.suffix.lower() in (*RASTER_SUFFIXES, *VECTOR_SUFFIXES)


def find_source_files(root: Path, product: LabelProduct) -> SourceFiles:
    """Every source file the product's pattern names under ``root``, checked; faults become problems."""
    found = SourceFiles()
    wanted = [(y, product.path_pattern.format(year=y)) for y in product.years] or [(0, product.path_pattern)]
    for year, pattern in wanted:
        matches = [m for m in sorted(root.glob(pattern)) if is_source_file(m)]
        if not matches:
            what = f"for {year} " if year else ""
            found.problems.append(f"{product.source}: no raster {what}at {root / pattern}")
            continue
        for match in matches:
            try:
                found.files.append(_describe(root, match, year, product))
            except (LabelSourceError, VectorSourceError) as exc:
                found.problems.append(str(exc))
    return found


def _describe(root: Path, path: Path, year: int, product: LabelProduct) -> SourceFile:
    name = path.relative_to(root).as_posix()
    if path.suffix.lower() in VECTOR_SUFFIXES:
        vector = read_label_vector(path, product)
        if not len(vector.codes):
            raise VectorSourceError(f"{path}: no polygons")
        raster = LabelRaster(path, RioCRS.from_wkt(vector.crs.to_wkt()), None, str(vector.codes.dtype))
        bounds = transform_bounds(raster.crs, "EPSG:4326", *vector.bounds, densify_pts=21)
        kind, cell_m, codes = VECTOR, 0.0, source_convention(vector, product)
    else:
        raster = describe_label_raster(path)
        try:
            with open_raster(path) as ds:
                bounds = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds, densify_pts=21)
                kind, cell_m, codes = RASTER, _cell_m(ds), source_convention(ds, product)
        except RasterioError as exc:
            raise LabelSourceError(f"{path}: unreadable: {exc}") from None
    stat = path.stat()
    vat = vat_beside(path) if codes is not None and codes.convention == "vat" else None
    mtime = max(stat.st_mtime_ns, vat.stat().st_mtime_ns) if vat else stat.st_mtime_ns
    lonlat = tuple(float(b) for b in bounds)
    table = vat.relative_to(root).as_posix() if vat else ""
    return SourceFile(year, name, kind, raster, lonlat, cell_m, codes, stat.st_size, mtime, table)


def _cell_m(ds: rasterio.DatasetReader) -> float:
    """The side of the square of the same area as the raster's centre cell, on the WGS84
    ellipsoid: comparable across CRSs (metres, feet, degrees)."""
    col, row = ds.width // 2, ds.height // 2
    corners = [ds.transform * (col + dc, row + dr) for dc, dr in ((0, 0), (1, 0), (1, 1), (0, 1))]
    xs, ys = zip(*corners, strict=True)
    lon, lat = Transformer.from_crs(ds.crs, "EPSG:4326", always_xy=True).transform(xs, ys)
    area, _ = Geod(ellps="WGS84").polygon_area_perimeter(lon, lat)
    return float(np.sqrt(abs(area)))
