"""What lies on the ground at any point, in the simulated world: the source of simulated labels.

Simulated products mix their pixels from abundance fields pinned to the ground in UTM
coordinates (``scene.surface_abundance``, keyed by seed and UTM zone). A label raster in another
CRS (CORINE in EPSG:3035, CDL and NLCD in Albers) reads the same fields: each label cell centre
is taken to longitude/latitude, then into the UTM zone of *its own* longitude, and the fields are
evaluated there. Labels therefore agree with the pixels of every product imaged in the zone the
label cell lies in. A product whose centre lies in the neighbouring zone was rendered from that
zone's fields (another landscape: fields are hashed per zone), so near a zone boundary its
pixels and the labels of the cells across the boundary do not match, as two overlapping
products in different zones do not match each other.

Labels describe the leaf-on landscape (the biome prior at the peak of the growing season, as
land-cover products are mapped from leaf-on imagery), evaluated on the lattice of product pixel
centres (multiples of 30 m in UTM; every third one, 90 m, for 100 m CORINE cells) and taken from
the lattice node nearest to each label cell centre. Two things
the pixels carry no trace of are drawn from hashes and smooth fields of their own, also pinned
to the ground: the leaf type of forests (broad-leaved, needle-leaved, mixed) and the field
parcels that get a crop each (``label_codes``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from affine import Affine
from pyproj import Transformer
from rasterio.crs import CRS

from simulator.acquisitions import PIXEL_SIZE_M, utm_epsg
from simulator.scene import (
    biome_of,
    ground_fields,
    landscape_bias,
    landscape_key,
    splitmix64,
    surface_abundance,
)
from simulator.spectra import SURFACE_MATERIALS

PEAK_SEASON_DOY = {True: 196, False: 14}
"""Day of year of the peak of the growing season, northern (True) and southern hemisphere: the
day the scene's seasonal shift is largest in favour of vegetation."""
PARCEL_M = 600.0
"""Field parcels: cells of a 600 m lattice in UTM, each split in two (300 x 600 m or 600 x
300 m, by a hash), so parcels are 18 ha, one crop each."""
LEAF_SCALES = ((6000.0, 1.0), (1500.0, 0.5))
"""Lattices of the forest leaf-type field: stands of one type a few kilometres across."""
LATTICE_PX = 16
"""Cells between exact coordinate transforms (see ``_interpolated``)."""
_LEAF_SALT = 0x4C454146  # "LEAF"
_PARCEL_SALT = 0x50415243  # "PARC"


@dataclass
class GroundCover:
    """Ground cover at the cell centres of one label block; all arrays (rows, cols)."""

    abundance: np.ndarray
    """(materials, rows, cols) float32, summing to 1 (``SURFACE_MATERIALS`` order)."""
    leaf: np.ndarray
    """Forest leaf-type field, roughly in [-1.5, 1.5]."""
    parcel: np.ndarray
    """uint64 hash of the field parcel the cell lies in (per seed and UTM zone)."""
    lat: np.ndarray

    @property
    def material(self) -> np.ndarray:
        """Index of the dominant material (as the scene's water mask takes it)."""
        return self.abundance.argmax(axis=0)

    def share(self, *materials: str) -> np.ndarray:
        return sum(self.abundance[SURFACE_MATERIALS.index(m)] for m in materials)


def unit_interval(h: np.ndarray) -> np.ndarray:
    """uint64 hashes -> float64 uniform in [0, 1)."""
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)


@cache
def _to_lonlat(crs_text: str) -> Transformer:
    return Transformer.from_crs(CRS.from_user_input(crs_text), 4326, always_xy=True)


@cache
def _to_utm(epsg: int) -> Transformer:
    return Transformer.from_crs(4326, int(epsg), always_xy=True)


def ground_cover(seed: int, crs_text: str, transform: Affine, rows: int, cols: int) -> GroundCover:
    """Ground cover at the centres of a ``rows`` x ``cols`` window whose upper-left corner and
    cell size ``transform`` gives, in ``crs_text``; ``seed`` is the archive simulator's seed."""
    lon, lat = _interpolated(lambda x, y: _to_lonlat(crs_text).transform(x, y), transform, rows, cols)
    mid = (rows // 2, cols // 2)
    north = bool(lat[mid] >= 0)
    bias = landscape_bias(biome_of(float(lon[mid]), float(lat[mid])), PEAK_SEASON_DOY[north], float(lat[mid]))
    k = len(SURFACE_MATERIALS)
    abundance = np.empty((k, rows, cols), dtype=np.float32)
    leaf = np.empty((rows, cols), dtype=np.float32)
    parcel = np.empty((rows, cols), dtype=np.uint64)
    zones = utm_epsg(lon, lat)
    step = PIXEL_SIZE_M * max(1, int(abs(transform.a) // PIXEL_SIZE_M))
    for epsg in np.unique(zones).tolist():
        sel = zones == epsg
        to_utm = _to_utm(epsg)
        ux, uy = (
            v[sel]
            for v in _interpolated(
                lambda x, y, to_utm=to_utm: to_utm.transform(*_to_lonlat(crs_text).transform(x, y)),
                transform,
                rows,
                cols,
            )
        )
        gx = np.arange(np.floor(ux.min() / step), np.ceil(ux.max() / step) + 1) * step
        gy = np.arange(np.floor(uy.min() / step), np.ceil(uy.max() / step) + 1) * step
        ix = np.rint((ux - gx[0]) / step).astype(np.int64)
        iy = np.rint((uy - gy[0]) / step).astype(np.int64)
        fields, _ = surface_abundance(seed, epsg, gx, gy, bias)
        abundance[:, sel] = fields[:, iy, ix]
        with np.errstate(over="ignore"):
            key = int(splitmix64(np.uint64(landscape_key(seed, epsg) ^ _LEAF_SALT)))
        leaf[sel] = ground_fields(key, 1, gx, gy, scales=LEAF_SCALES)[0][iy, ix]
        parcel[sel] = _parcels(landscape_key(seed, epsg), ux, uy)
    return GroundCover(abundance=abundance, leaf=leaf, parcel=parcel, lat=lat)


def _linear_weights(at: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """(len(at), len(nodes)) weights of piecewise-linear interpolation between sorted nodes."""
    i = np.clip(np.searchsorted(nodes, at, side="right") - 1, 0, len(nodes) - 2)
    t = (at - nodes[i]) / (nodes[i + 1] - nodes[i])
    m = np.zeros((len(at), len(nodes)))
    m[np.arange(len(at)), i] = 1 - t
    m[np.arange(len(at)), i + 1] = t
    return m


def _interpolated(project, transform: Affine, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """``project(x, y)`` at every cell centre of the window, computed exactly on a lattice of
    every ``LATTICE_PX``-th centre and interpolated bilinearly between (map projections are
    smooth: the error over 16 cells is far below a millimetre), 250x fewer pyproj calls."""
    node_r = np.unique(np.append(np.arange(0.5, rows, LATTICE_PX), rows - 0.5))
    node_c = np.unique(np.append(np.arange(0.5, cols, LATTICE_PX), cols - 0.5))
    c, r = np.meshgrid(node_c, node_r)
    x, y = transform.a * c + transform.b * r + transform.c, transform.d * c + transform.e * r + transform.f
    a, b = (np.asarray(v, dtype=np.float64) for v in project(x, y))
    if len(node_r) == 1 or len(node_c) == 1:
        a, b = np.broadcast_to(a, (len(node_r), len(node_c))), np.broadcast_to(b, (len(node_r), len(node_c)))
    wr = _linear_weights(np.arange(rows) + 0.5, node_r) if len(node_r) > 1 else np.ones((rows, 1))
    wc = _linear_weights(np.arange(cols) + 0.5, node_c) if len(node_c) > 1 else np.ones((cols, 1))
    return wr @ a @ wc.T, wr @ b @ wc.T


def _parcels(key: int, ux: np.ndarray, uy: np.ndarray) -> np.ndarray:
    """Hash of the parcel each UTM point lies in: its 600 m cell, halved along x or y."""
    fx, fy = ux / PARCEL_M, uy / PARCEL_M
    cx, cy = np.floor(fx).astype(np.int64), np.floor(fy).astype(np.int64)
    with np.errstate(over="ignore"):
        node = (cy.astype(np.uint64) << np.uint64(32)) ^ (cx.astype(np.uint64) & np.uint64(0xFFFFFFFF))
        cell = splitmix64(np.uint64(key ^ _PARCEL_SALT) ^ splitmix64(node))
        along_x = (cell & np.uint64(1)).astype(bool)
        half = np.where(along_x, fx - cx >= 0.5, fy - cy >= 0.5)
        return splitmix64(cell + half.astype(np.uint64))
