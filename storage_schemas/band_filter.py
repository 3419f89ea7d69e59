"""Which bands a dataset keeps, decided by wavelength so that any sensor's band table works.

SpectralEarth keeps 202 of the 224 operational EnMAP L2A bands: it drops the two water-vapour
absorption regions, layers 126-140 (1295-1519 nm) and 160-166 (1739-1968 nm). Stated as
wavelength ranges (bounds half-way between the last kept and the first dropped centre of the
operational table), the same rule gives the right subset for the 218-band table of early
products, for a reprocessed table whose centres moved by a nanometre, or for another sensor.
The filter in use is recorded in the patch store, by name and ranges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BandFilter:
    """Drop every band whose centre wavelength lies inside one of ``drop_nm`` (open ranges)."""

    name: str
    drop_nm: tuple[tuple[float, float], ...]

    def keep(self, wavelength_nm: np.ndarray) -> np.ndarray:
        """Boolean mask over the bands, True where the band is kept."""
        wl = np.asarray(wavelength_nm, dtype=float)
        dropped = np.zeros(wl.shape, dtype=bool)
        for lo, hi in self.drop_nm:
            dropped |= (wl > lo) & (wl < hi)
        return ~dropped

    def indexes(self, wavelength_nm: np.ndarray) -> np.ndarray:
        """0-based layer indexes of the kept bands, in layer order."""
        return np.flatnonzero(self.keep(wavelength_nm))

    def describe(self) -> dict:
        return {"name": self.name, "drop_nm": [list(r) for r in self.drop_nm]}


SPECTRAL_EARTH = BandFilter("spectralearth-water-vapour", ((1289.3, 1524.9), (1733.7, 1972.7)))
"""The SpectralEarth selection: 224 -> 202 for the operational EnMAP band table."""

KEEP_ALL = BandFilter("all-bands", ())
"""For sensors without bands in those regions (DESIS: 400-1000 nm)."""

BAND_FILTERS = {"enmap": SPECTRAL_EARTH, "desis": KEEP_ALL}
"""The filter per sensor."""
