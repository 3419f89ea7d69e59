"""The grids, file names, data types and no-data values of the real label products we simulate.

A simulated label raster must be read by exactly the code that reads the real one, so every
fact here copies the real product (sources in each docstring). The simulated files are written
on the official continental grids, block-sparse (only blocks near the archive's footprints hold
data), see ``label_rasters``.
"""

from __future__ import annotations

from dataclasses import dataclass

from affine import Affine
from rasterio.crs import CRS

BLOCK_PX = 512
"""Tile size of the simulated GeoTIFFs: only whole blocks are rendered, the rest stays sparse."""

NLCD_LEGACY_ALBERS_WKT = (
    'PROJCS["Albers Conical Equal Area",GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,'
    '298.257223563,AUTHORITY["EPSG","7030"]],AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0],'
    'UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]],AUTHORITY["EPSG","4326"]],'
    'PROJECTION["Albers_Conic_Equal_Area"],PARAMETER["latitude_of_center",23],'
    'PARAMETER["longitude_of_center",-96],PARAMETER["standard_parallel_1",29.5],'
    'PARAMETER["standard_parallel_2",45.5],PARAMETER["false_easting",0],PARAMETER["false_northing",0],'
    'UNIT["metre",1,AUTHORITY["EPSG","9001"]],AXIS["Easting",EAST],AXIS["Northing",NORTH]]'
)
"""The CRS of the real NLCD sample (``realdata/nlcd/augusta_nlcd_2011.tif``): the legacy NLCD
Albers on the WGS84 datum, EPSG:5070's parameters without an EPSG code. Simulated NLCD keeps it,
so the no-EPSG path of ``assets.labels.align`` is exercised by the demo as by the real files."""


@dataclass(frozen=True)
class LabelGrid:
    """One product's raster: CRS, the upper-left corner and size of the official continental
    grid, cell size, and how codes are stored."""

    product: str
    """``corine``, ``cdl`` or ``nlcd``: the label-source folder under the label root."""
    crs_text: str
    x0: float
    y0: float
    width: int
    height: int
    resolution: float
    nodata: int
    region: tuple[float, float, float, float]
    """(lon_min, lat_min, lon_max, lat_max) of the area the product maps: footprints outside it
    get no blocks (a coarse box; the real products end at national borders and coasts)."""
    description: str

    @property
    def crs(self) -> CRS:
        return CRS.from_user_input(self.crs_text)

    @property
    def transform(self) -> Affine:
        return Affine(self.resolution, 0.0, self.x0, 0.0, -self.resolution, self.y0)

    @property
    def blocks_x(self) -> int:
        return -(-self.width // BLOCK_PX)

    @property
    def blocks_y(self) -> int:
        return -(-self.height // BLOCK_PX)


CORINE_GRID = LabelGrid(
    product="corine",
    crs_text="EPSG:3035",
    x0=900_000.0,
    y0=5_500_000.0,
    width=65_000,
    height=46_000,
    resolution=100.0,
    nodata=128,
    region=(-25.0, 34.0, 45.0, 72.0),
    description="CORINE Land Cover 2018, 100 m raster (CLC grid codes 1-44)",
)
"""CLC2018 100 m raster ``U2018_CLC2018_V2020_20u1.tif``: EPSG:3035, extent x 900,000..7,400,000,
y 900,000..5,500,000 (65,000 x 46,000 cells, EEA39), 8-bit grid codes 1-44 in legend order with
48 NODATA; outside the mapped area the raster holds its no-data value 128 (-128 read as signed)."""
CORINE_FILE_NAME = "U2018_CLC2018_V2020_20u1.tif"

CDL_GRID = LabelGrid(
    product="cdl",
    crs_text="EPSG:5070",
    x0=-2_356_095.0,
    y0=3_172_605.0,
    width=153_811,
    height=96_523,
    resolution=30.0,
    nodata=0,
    region=(-125.0, 24.0, -66.5, 49.5),
    description="USDA NASS Cropland Data Layer, CONUS 30 m (CDL codes, 0 background)",
)
"""The national CDL GeoTIFF ``{year}_30m_cdls.tif``: NAD83 / Conus Albers (EPSG:5070), upper-left
corner (-2,356,095, 3,172,605), 153,811 x 96,523 cells of 30 m, uint8 codes, 0 = background /
no data. Cell edges lie at 15 m + multiples of 30 m, as NLCD's."""
CDL_FILE_PATTERN = "{year}_30m_cdls.tif"

NLCD_GRID = LabelGrid(
    product="nlcd",
    crs_text=NLCD_LEGACY_ALBERS_WKT,
    x0=-2_493_045.0,
    y0=3_310_005.0,
    width=161_190,
    height=104_424,
    resolution=30.0,
    nodata=0,
    region=(-125.0, 24.0, -66.5, 49.5),
    description="USGS National Land Cover Database, CONUS 30 m (NLCD codes 11-95)",
)
"""The CONUS NLCD land cover (2019, 2021 releases): 30 m Albers, upper-left corner
(-2,493,045, 3,310,005), 161,190 x 104,424 cells, uint8, 0 = unclassified / no data. The real
sample's corner (1,249,665, 1,260,015) lies on this grid (124,757 columns, 68,333 rows in)."""
NLCD_FILE_PATTERN = "nlcd_{year}_land_cover.tif"

CDL_YEARS = (2019, 2020, 2021, 2022, 2023)
NLCD_YEARS = (2019, 2021)

CLC_COLOURS: dict[int, tuple[int, int, int]] = {
    1: (230, 0, 77), 2: (255, 0, 0), 3: (204, 77, 242), 4: (204, 0, 0), 5: (230, 204, 204),
    6: (230, 204, 230), 7: (166, 0, 204), 8: (166, 77, 0), 9: (255, 77, 255), 10: (255, 166, 255),
    11: (255, 230, 255), 12: (255, 255, 166), 13: (255, 255, 0), 14: (230, 230, 0),
    15: (230, 128, 0), 16: (242, 166, 77), 17: (230, 166, 0), 18: (230, 230, 77),
    19: (255, 230, 166), 20: (255, 230, 77), 21: (230, 204, 77), 22: (242, 204, 166),
    23: (128, 255, 0), 24: (0, 166, 0), 25: (77, 255, 0), 26: (204, 242, 77), 27: (166, 255, 128),
    28: (166, 230, 77), 29: (166, 242, 0), 30: (230, 230, 230), 31: (204, 204, 204),
    32: (204, 255, 204), 33: (0, 0, 0), 34: (166, 230, 204), 35: (166, 166, 255),
    36: (77, 77, 255), 37: (204, 204, 255), 38: (230, 230, 255), 39: (166, 166, 230),
    40: (0, 204, 242), 41: (128, 242, 230), 42: (0, 255, 166), 43: (166, 255, 230),
    44: (230, 242, 255),
}  # fmt: skip
"""The CLC legend colours of grid codes 1-44, as the real CORINE sample's colour table holds them."""

NLCD_COLOURS: dict[int, tuple[int, int, int]] = {
    11: (70, 107, 159), 12: (209, 222, 248), 21: (222, 197, 197), 22: (217, 146, 130),
    23: (235, 0, 0), 24: (171, 0, 0), 31: (179, 172, 159), 41: (104, 171, 95), 42: (28, 95, 44),
    43: (181, 197, 143), 52: (204, 184, 121), 71: (223, 223, 194), 81: (220, 217, 57),
    82: (171, 108, 40), 90: (184, 217, 235), 95: (108, 159, 184),
}  # fmt: skip
"""The NLCD legend colours (the colour table of the USGS NLCD 2019/2021 rasters; the real sample
was converted from R and lost its table)."""
