"""The archive simulator: a stand-in for the EnMAP archive, which cannot be had offline.

It writes products in DLR's genuine layout and names (folders, product ZIPs, delivery ZIPs that
nest product ZIPs), marked SIMULATED in METADATA.XML and in every GeoTIFF, from an acquisition
plan that copies how the mission acquires (sun-synchronous descending passes, datatake strips,
repeat visits with across-track pointing, UTM zone of the scene centre, the 15 m-offset 30 m
grid). With ``catalog_only`` it writes just the tile catalog of the same plan, for benchmarks at
mission scale. Modules:

- ``acquisitions``: the plan (geometry, time, names) and the visit model to calibrate.
- ``sites``: areas of interest on land, the antimeridian anchor site (Taveuni, Fiji) and the
  demo model's label anchors (US Corn Belt in summer 2022/2023, northern Germany).
- ``coverage``: how many tiles cover each 128 px location (the calibration yardstick).
- ``covers``: cloud/haze/cirrus/snow/shadow cover per tile.
- ``spectra``: endmembers (real Potsdam classes when ``../shared/realdata`` is there, analytic).
- ``scene``: the pixels and quality masks of one product.
- ``sun``: solar position.
- ``metadata_writer``: METADATA.XML.
- ``product_writer``: one product's files, packaged.
- ``packaging``: deterministic product and delivery ZIPs.
- ``faults``: faulty products injected on purpose.
- ``catalog_only``: ``catalog/tiles.parquet`` straight from the plan.
- ``archive``: ``simulate_archive``, which ties them together.
- ``label_rasters``: simulated CORINE, CDL and NLCD rasters over an archive's footprints
  (``label_grids``: the real products' grids and conventions; ``ground_cover``: the landscape
  at any point; ``label_codes``: ground cover -> product codes).
"""

from simulator.acquisitions import (
    DEFAULT_VISIT_MODEL,
    DEMO_VISIT_MODEL,
    STRIP_LENGTH_PMF,
    VISIT_COUNT_PMF,
    VISIT_MODELS,
    AcquisitionPlan,
    VisitModel,
    plan_acquisitions,
)
from simulator.archive import SimulationSummary, simulate_archive
from simulator.catalog_only import catalog_frame
from simulator.coverage import coverage_stats, location_visit_counts
from simulator.faults import FAULT_KINDS

__all__ = [
    "DEFAULT_VISIT_MODEL",
    "DEMO_VISIT_MODEL",
    "FAULT_KINDS",
    "STRIP_LENGTH_PMF",
    "VISIT_COUNT_PMF",
    "VISIT_MODELS",
    "AcquisitionPlan",
    "SimulationSummary",
    "VisitModel",
    "catalog_frame",
    "coverage_stats",
    "location_visit_counts",
    "plan_acquisitions",
    "simulate_archive",
]
