"""Cut one patch out of a tile held in memory, clean it, and measure it.

A patch on the tile's own grid is a slice. A patch whose location lies in another UTM zone than
the tile (``same_grid`` False in the plan, about 0.2% of patches) is resampled onto the
location's grid, nearest neighbour so that every output spectrum is a measured one.

Cleaning: a pixel is masked when any kept band is nodata or when the QL cloud, cloud-shadow or
haze mask flags it. A patch whose masked share exceeds the limit is dropped, with the reason; a
kept patch has its masked pixels set to nodata, so nothing flagged reaches training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import Resampling, reproject, transform_bounds

from assets.patches.tile_pixels import TilePixels
from storage_schemas.enmap_product import NODATA
from storage_schemas.patch_store import transform_of
from storage_schemas.plan import PATCH_PX, PIXEL_M

MASK_NAMES = {"nodata": "nodata", "cloud": "cloud", "cloud_shadow": "cloud shadow", "haze": "haze"}


@dataclass(frozen=True)
class Window:
    """Where a slot's patch lies: the location's CRS and upper-left corner."""

    epsg: int
    x0: float
    y0: float
    same_grid: bool


@dataclass
class Cut:
    """A cleaned patch and what was found in it."""

    pixels: np.ndarray | None
    """(bands, 128, 128) int16, masked pixels set to nodata; None when dropped."""
    masked_fraction: float
    reason: str
    cause: str = ""
    """Short key of ``reason`` for counting: ``masked`` or ``off_tile``."""
    valid: np.ndarray | None = None
    """(128, 128) bool of the pixels that count in statistics."""


def cut(tile: TilePixels, window: Window, max_masked: float) -> Cut:
    """The patch of ``window``, cleaned; dropped (``pixels`` None, ``reason`` set) when more than
    ``max_masked`` of it is masked or when it does not lie on the tile."""
    on_grid = window.same_grid and window.epsg == tile.epsg
    found = _slice(tile, window) if on_grid else _resample(tile, window)
    if found is None:
        return Cut(None, 1.0, "window is not on the tile's pixels", "off_tile")
    patch, flags = found
    flags["nodata"] = (patch == NODATA).any(axis=0)
    masked = np.zeros((PATCH_PX, PATCH_PX), dtype=bool)
    for flag in flags.values():
        masked |= flag
    share = float(masked.mean())
    if share > max_masked:
        parts = ", ".join(f"{MASK_NAMES[k]} {v.mean():.0%}" for k, v in flags.items() if v.any())
        return Cut(None, share, f"masked {share:.1%} > {max_masked:.0%} ({parts})", "masked")
    if masked.any():
        patch[:, masked] = NODATA
    return Cut(patch, share, "", "", ~masked)


def _slice(tile: TilePixels, w: Window) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
    col = round((w.x0 - tile.x0) / tile.pixel_size)
    row = round((tile.y0 - w.y0) / tile.pixel_size)
    height, width = tile.data.shape[1:]
    if col < 0 or row < 0 or col + PATCH_PX > width or row + PATCH_PX > height:
        return None
    rows, cols = slice(row, row + PATCH_PX), slice(col, col + PATCH_PX)
    # one contiguous copy: the checks, sums, hash and encoder then all read it without copying
    return np.ascontiguousarray(tile.data[:, rows, cols]), {k: m[rows, cols] for k, m in tile.masks.items()}


def _resample(tile: TilePixels, w: Window) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
    dst_crs, src_crs = CRS.from_epsg(w.epsg), CRS.from_epsg(tile.epsg)
    side = PATCH_PX * PIXEL_M
    left, bottom, right, top = transform_bounds(dst_crs, src_crs, w.x0, w.y0 - side, w.x0 + side, w.y0)
    margin = 2 * tile.pixel_size
    height, width = tile.data.shape[1:]
    c0 = max(int(np.floor((left - margin - tile.x0) / tile.pixel_size)), 0)
    c1 = min(int(np.ceil((right + margin - tile.x0) / tile.pixel_size)), width)
    r0 = max(int(np.floor((tile.y0 - top - margin) / tile.pixel_size)), 0)
    r1 = min(int(np.ceil((tile.y0 - bottom + margin) / tile.pixel_size)), height)
    if c1 <= c0 or r1 <= r0:
        return None
    src_transform = Affine(
        tile.pixel_size,
        0,
        tile.x0 + c0 * tile.pixel_size,
        0,
        -tile.pixel_size,
        tile.y0 - r0 * tile.pixel_size,
    )
    dst_transform = Affine(*transform_of(w.x0, w.y0))

    def warp(source: np.ndarray, nodata: int) -> np.ndarray:
        out = np.full((source.shape[0], PATCH_PX, PATCH_PX), nodata, dtype=source.dtype)
        reproject(
            source,
            out,
            src_transform=src_transform,
            src_crs=src_crs,
            src_nodata=nodata,
            dst_transform=dst_transform,
            dst_crs=dst_crs,
            dst_nodata=nodata,
            resampling=Resampling.nearest,
        )
        return out

    patch = warp(np.ascontiguousarray(tile.data[:, r0:r1, c0:c1]), NODATA)
    stack = np.stack([m[r0:r1, c0:c1] for m in tile.masks.values()]).astype(np.uint8)
    flags = warp(stack, 255)
    return patch, {k: flags[i] != 0 for i, k in enumerate(tile.masks)}


def band_sums(patch: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-band sum and sum of squares over the valid pixels, exact: every partial sum of a
    128 x 128 int16 patch is an integer below 2**53, so float64 holds it exactly, and the caller
    adds patches as Python integers. Worked in blocks of bands to stay in cache (~3 ms a patch)."""
    if not valid.all():
        patch = np.where(valid, patch, 0)
    flat = patch.reshape(patch.shape[0], -1)
    ones = np.ones(flat.shape[1])
    total = np.empty(flat.shape[0])
    squares = np.empty(flat.shape[0])
    for b in range(0, flat.shape[0], _BAND_BLOCK):
        block = flat[b : b + _BAND_BLOCK].astype(np.float64)
        total[b : b + _BAND_BLOCK] = block @ ones
        squares[b : b + _BAND_BLOCK] = np.einsum("ij,ij->i", block, block)
    return total.astype(np.int64), squares.astype(np.int64)


_BAND_BLOCK = 8
