"""Simulated CORINE, CDL and NLCD rasters over a simulated archive's footprints.

No real CDL raster (and no continental CORINE or NLCD) can be had offline, so the simulator
writes label products in their genuine CRS, grid, data type, code convention and file name
(``label_grids``), with classes derived from the same simulated landscape the products are
rendered from (``ground_cover``, ``label_codes``), so a model can learn them from the pixels.
Every file is tagged ``SIMULATED`` and the label root gets a README saying what each file is.

The rasters span their official continental grids (a CONUS CDL is 153,811 x 96,523 cells) but
are tiled (512 x 512), DEFLATE-compressed and sparse (GDAL ``SPARSE_OK``): only blocks within
``MARGIN_M`` of a footprint hold data; the others are never written and
read as no data. A file costs its block index (8 bytes per block: ~90 kB for CORINE, ~450-520 kB
for CDL and NLCD) plus ~10-50 kB per written block.

Determinism: a block's values depend only on (seed, product, year, block position). The blocks
a file holds are listed in its ``SPECTRALFORGE_BLOCKS`` tag; another call with more footprints
rewrites the file with the union of old and new blocks, in row-major order (old blocks copied,
new ones rendered), so the same set of footprints gives the same bytes whatever the order and
grouping of the calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
import shapely
from pyproj import Transformer
from rasterio.windows import Window
from rasterio.windows import transform as window_transform
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from assets.archive.footprint import footprint_from_corners
from assets.atomic_files import replace_atomically
from simulator.acquisitions import AcquisitionPlan
from simulator.ground_cover import GroundCover, ground_cover
from simulator.label_codes import cdl_codes, corine_grid_codes, nlcd_codes
from simulator.label_grids import (
    BLOCK_PX,
    CDL_FILE_PATTERN,
    CDL_GRID,
    CDL_YEARS,
    CLC_COLOURS,
    CORINE_FILE_NAME,
    CORINE_GRID,
    NLCD_COLOURS,
    NLCD_FILE_PATTERN,
    NLCD_GRID,
    NLCD_YEARS,
    LabelGrid,
)
from storage_schemas.paths import DataLayout

Block = tuple[int, int]
"""(block row, block column) on a product grid."""
SIMULATED_TAG = "SIMULATED"
BLOCKS_TAG = "SPECTRALFORGE_BLOCKS"
SEED_TAG = "SPECTRALFORGE_SEED"
README = "README.md"
MARGIN_M = 3840.0
"""Blocks within this distance of a footprint are rendered too: one patch width (128 x 30 m),
so a patch that touches a footprint lies wholly on rendered blocks."""
_PRODUCT_NAMES = {
    "corine": "CORINE Land Cover",
    "cdl": "USDA NASS Cropland Data Layer",
    "nlcd": "USGS NLCD land cover",
}


@dataclass(frozen=True)
class _LabelFile:
    grid: LabelGrid
    relative: str
    """Path under the label root, as ``storage_schemas.label_products`` patterns name it."""
    year: int | None
    colours: dict[int, tuple[int, int, int]] | None

    def codes(self, cover: GroundCover) -> np.ndarray:
        """This file's codes for one block's ground cover."""
        if self.grid.product == "corine":
            return corine_grid_codes(cover)
        if self.grid.product == "cdl":
            return cdl_codes(cover, int(self.year))
        return nlcd_codes(cover, int(self.year))


@dataclass
class LabelRasterSummary:
    """What a call wrote: per file (relative to the label root) the blocks it holds and the
    blocks this call rendered."""

    label_root: Path
    blocks: dict[str, int] = field(default_factory=dict)
    rendered: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        lines = [f"simulated label rasters under {self.label_root} (SIMULATED):"]
        lines += [
            f"  {name}: {n} blocks of {BLOCK_PX} px ({self.rendered.get(name, 0)} new)"
            for name, n in sorted(self.blocks.items())
        ]
        return "\n".join(lines)


def label_files(
    cdl_years: Sequence[int] = CDL_YEARS, nlcd_years: Sequence[int] = NLCD_YEARS
) -> list[_LabelFile]:
    """Every simulated file: one CORINE, one CDL per ``cdl_years``, one NLCD per ``nlcd_years``."""
    files = [_LabelFile(CORINE_GRID, f"corine/{CORINE_FILE_NAME}", None, CLC_COLOURS)]
    files += [_LabelFile(CDL_GRID, "cdl/" + CDL_FILE_PATTERN.format(year=y), y, None) for y in cdl_years]
    files += [
        _LabelFile(NLCD_GRID, "nlcd/" + NLCD_FILE_PATTERN.format(year=y), y, NLCD_COLOURS) for y in nlcd_years
    ]
    return files


def block_cover(grid: LabelGrid, seed: int, block: Block) -> GroundCover:
    """Ground cover of one block: what every file on ``grid`` derives that block from."""
    window = block_window(grid, block)
    transform = window_transform(window, grid.transform)
    return ground_cover(seed, grid.crs_text, transform, int(window.height), int(window.width))


def block_window(grid: LabelGrid, block: Block) -> Window:
    row, col = block
    x0, y0 = col * BLOCK_PX, row * BLOCK_PX
    return Window(x0, y0, min(BLOCK_PX, grid.width - x0), min(BLOCK_PX, grid.height - y0))


def footprint_blocks(
    grid: LabelGrid, footprints: Iterable[BaseGeometry], margin_m: float = MARGIN_M
) -> set[Block]:
    """Blocks of ``grid`` within ``margin_m`` of a footprint (EPSG:4326) that lies in the
    product's region."""
    region = box(*grid.region)
    to_grid = Transformer.from_crs(4326, grid.crs, always_xy=True)
    inverse = ~grid.transform
    size = BLOCK_PX * grid.resolution
    blocks: set[Block] = set()
    for footprint in footprints:
        if not footprint.intersects(region):
            continue
        part = footprint.intersection(region).segmentize(0.01)
        projected = shapely.transform(
            part, lambda xy: np.column_stack(to_grid.transform(xy[:, 0], xy[:, 1]))
        ).buffer(margin_m)
        minx, miny, maxx, maxy = projected.bounds
        c0, r0 = inverse @ (minx, maxy)
        c1, r1 = inverse @ (maxx, miny)
        for row in range(max(0, int(r0 // BLOCK_PX)), min(grid.blocks_y, int(r1 // BLOCK_PX) + 1)):
            for col in range(max(0, int(c0 // BLOCK_PX)), min(grid.blocks_x, int(c1 // BLOCK_PX) + 1)):
                bx, by = grid.transform @ (col * BLOCK_PX, row * BLOCK_PX)
                if projected.intersects(box(bx, by - size, bx + size, by)):
                    blocks.add((row, col))
    return blocks


def written_blocks(path: Path, seed: int) -> set[Block]:
    """Blocks a simulated file holds (its ``SPECTRALFORGE_BLOCKS`` tag); none if it does not
    exist. A file written with another seed is refused: its blocks would not fit the new ones."""
    if not path.exists():
        return set()
    with rasterio.open(path) as ds:
        tags = ds.tags()
    if SIMULATED_TAG not in tags or BLOCKS_TAG not in tags:
        raise ValueError(f"{path}: not a simulated label raster; will not overwrite it")
    if int(tags.get(SEED_TAG, -1)) != seed:
        raise ValueError(f"{path}: simulated with seed {tags.get(SEED_TAG)}, not {seed}; remove it first")
    text = tags[BLOCKS_TAG].strip()
    return {(int(r), int(c)) for r, c in (item.split(",") for item in text.split(";"))} if text else set()


def _creation_profile(grid: LabelGrid) -> dict:
    return {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": 1,
        "dtype": "uint8",
        "crs": grid.crs,
        "transform": grid.transform,
        "nodata": grid.nodata,
        "tiled": True,
        "blockxsize": BLOCK_PX,
        "blockysize": BLOCK_PX,
        "compress": "deflate",
        "sparse_ok": True,
    }


def _tags(spec: _LabelFile, seed: int, blocks: list[Block]) -> dict[str, str]:
    grid = spec.grid
    year = f", {spec.year}" if spec.year is not None else ""
    return {
        SIMULATED_TAG: f"SpectralForge simulator, not a real {_PRODUCT_NAMES[grid.product]} product",
        SEED_TAG: str(seed),
        BLOCKS_TAG: ";".join(f"{r},{c}" for r, c in blocks),
        "TIFFTAG_IMAGEDESCRIPTION": f"SIMULATED {grid.description}{year}",
    }


def _write_grid_files(
    label_root: Path, specs: list[_LabelFile], seed: int, blocks: set[Block]
) -> dict[str, int]:
    """(Re)write the files of one grid that lack some of ``blocks``, all in one pass over the
    blocks so each new block's ground cover is computed once for all of them (five CDL years):
    old blocks are copied, new ones rendered, every file in row-major block order. Returns the
    number of blocks rendered per file."""
    grid = specs[0].grid
    paths = [label_root / spec.relative for spec in specs]
    old = [written_blocks(path, seed) for path in paths]
    todo = [i for i, path in enumerate(paths) if not path.exists() or blocks - old[i]]
    if not todo:
        return {}
    targets = {i: sorted(old[i] | blocks) for i in todo}

    def write_all(tmps: dict[int, str]) -> None:
        with ExitStack() as stack:
            sources = {i: stack.enter_context(rasterio.open(paths[i])) for i in todo if old[i]}
            profile = _creation_profile(grid)
            sinks = {i: stack.enter_context(rasterio.open(tmps[i], "w", **profile)) for i in todo}
            for i, dst in sinks.items():
                dst.update_tags(**_tags(specs[i], seed, targets[i]))
                if specs[i].colours:
                    dst.write_colormap(1, {k: (*rgb, 255) for k, rgb in specs[i].colours.items()})
            for block in sorted(set().union(*targets.values())):
                window = block_window(grid, block)
                needs = [i for i in todo if block in targets[i]]
                cover = block_cover(grid, seed, block) if any(block not in old[i] for i in needs) else None
                for i in needs:
                    data = sources[i].read(1, window=window) if block in old[i] else specs[i].codes(cover)
                    sinks[i].write(data, 1, window=window)

    def nest(pending: list[int], tmps: dict[int, str]) -> None:
        # Each file goes through replace_atomically; all are written in the innermost call and
        # renamed into place one after the other as the calls return.
        if not pending:
            write_all(tmps)
            return
        i = pending[0]
        replace_atomically(paths[i], lambda tmp: nest(pending[1:], {**tmps, i: tmp}))

    nest(todo, {})
    return {specs[i].relative: len(blocks - old[i]) for i in todo}


def write_label_rasters(
    label_root: Path,
    footprints: Iterable[BaseGeometry],
    seed: int,
    cdl_years: Sequence[int] = CDL_YEARS,
    nlcd_years: Sequence[int] = NLCD_YEARS,
    margin_m: float = MARGIN_M,
) -> LabelRasterSummary:
    """Write (or extend) the simulated CORINE, CDL and NLCD rasters under ``label_root`` so that
    they cover ``footprints`` (shapely geometries in EPSG:4326, e.g. tile footprints of any
    sensor's simulated archive). ``seed`` must be the archive simulator's seed: the labels are
    read from the landscape its products were rendered from. Blocks within ``margin_m`` of a
    footprint are rendered."""
    label_root = Path(label_root)
    footprints = list(footprints)
    summary = LabelRasterSummary(label_root)
    files = label_files(cdl_years, nlcd_years)
    for grid in (CORINE_GRID, CDL_GRID, NLCD_GRID):
        specs = [spec for spec in files if spec.grid == grid]
        blocks = footprint_blocks(grid, footprints, margin_m)
        if blocks:
            summary.rendered.update(_write_grid_files(label_root, specs, seed, blocks))
        for spec in specs:
            path = label_root / spec.relative
            if path.exists():
                summary.blocks[spec.relative] = len(written_blocks(path, seed))
    _write_readme(label_root)
    return summary


def plan_footprints(plan: AcquisitionPlan) -> list[BaseGeometry]:
    """The footprint (EPSG:4326) of every tile of an acquisition plan."""
    corners = np.stack([plan.corner_lon, plan.corner_lat], axis=-1)
    return [footprint_from_corners([tuple(c) for c in tile.tolist()])[0] for tile in corners]


def write_label_rasters_for_archive(data_root: Path, plan: AcquisitionPlan) -> LabelRasterSummary:
    """The hook for ``spectralforge simulate``: label rasters over every tile of the plan the
    archive was simulated from, under ``<data_root>/label_sources`` (``DataLayout.label_sources``),
    with the plan's seed."""
    return write_label_rasters(DataLayout.at(data_root).label_sources, plan_footprints(plan), plan.seed)


def _write_readme(label_root: Path) -> None:
    """``README.md`` naming every simulated file present under the label root."""
    lines = [
        "# Simulated label sources (SpectralForge simulator)",
        "",
        "Every raster here is SIMULATED: written by the SpectralForge archive simulator",
        "(`simulator/label_rasters.py`), not a real CORINE, CDL or NLCD product.",
        "Each file has the genuine CRS, grid, data type, no-data value, code convention and file name",
        "of the real product, holds data only in 512 x 512 blocks near the simulated archive's",
        "footprints (the rest is sparse: no data), and carries the GeoTIFF tag `SIMULATED`.",
        "Classes are derived from the simulated landscape the EnMAP products were rendered from",
        "(read in the UTM zone of each label cell: products imaged from a neighbouring zone show",
        "another landscape there). No data: CORINE 128, CDL 0, NLCD 0; all uint8.",
        "",
        "| file | what it simulates | CRS | grid |",
        "|---|---|---|---|",
    ]
    grids = {g.product: g for g in (CORINE_GRID, CDL_GRID, NLCD_GRID)}
    for path in sorted(label_root.glob("*/*.tif")):
        g = grids.get(path.parent.name)
        if g is None:
            continue
        crs = g.crs_text if g.crs_text.startswith("EPSG") else "NLCD Albers (WGS84 datum, no EPSG code)"
        lines.append(
            f"| `{path.parent.name}/{path.name}` | {g.description} | {crs} | {g.resolution:g} m, "
            f"upper-left ({g.x0:,.0f}, {g.y0:,.0f}), {g.width:,} x {g.height:,} cells |"
        )
    text = "\n".join(lines) + "\n"
    path = label_root / README
    if not path.exists() or path.read_text() != text:
        replace_atomically(path, lambda tmp: Path(tmp).write_text(text))
