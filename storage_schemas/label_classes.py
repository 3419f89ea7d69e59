"""Label class maps: how the codes of a land-cover or crop product become training classes.

This is the data contract for the SpectralEarth downstream labels (DESIGN.md, "Label class maps
(as published with SpectralEarth)"; paper ``papers/spectralearth.md`` section 3.2). Every table
below names where it comes from:

- CORINE Land Cover (CLC): the 44 three-digit classes of the CLC nomenclature (Copernicus Land
  Monitoring Service, CLC legend) and the integer grid codes 1-44 (plus 48 NODATA, 49/50
  UNCLASSIFIED) that the official CLC *raster* stores instead of the 3-digit codes, and the
  no-data values the distributed products use. :class:`CorineCodes` converts a file's values
  (through its value attribute table, or the legend) into 3-digit codes.
- BigEarthNet-19: the aggregation of the 44 CLC classes into 19 classes used by BigEarthNet-MM
  (Sumbul et al., cited as [58] in the paper); the code groups are those listed in DESIGN.md.
- USDA NASS Cropland Data Layer (CDL): the CDL legend codes and crop names.
- USGS National Land Cover Database (NLCD): the NLCD legend codes 11-95 and class names.

The class order, the background class and the ignore index of the segmentation maps follow
DESIGN.md, which matches what the authors published with the paper (their public repository,
``configs/data/enmap_{cdl,nlcd}.yaml``, ``configs/data/desis_cdl.yaml`` and
``configs/experiment/downstream/*/base.yaml``: the product code 0 is moved to the end of the class
list and becomes the background class, which is the ``ignore_index`` of the loss and metric).

Only numpy and the standard library are imported: this module is part of ``storage_schemas``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

__all__ = [
    "CDL_14",
    "CDL_KNOWN_CODES",
    "CLASS_MAPS",
    "CLC_CODES",
    "CLC_LEGEND",
    "CLC_NO_LABEL_CODES",
    "CORINE_BIGEARTHNET19",
    "CORINE_GRID_NO_LABEL",
    "CORINE_GRID_TO_CLC",
    "CORINE_NO_DATA_VALUES",
    "DESIS_CDL",
    "NLCD_15",
    "NLCD_LEGEND",
    "ClassMap",
    "CorineCodes",
    "detect_corine_convention",
    "name_values",
]

# --------------------------------------------------------------------------------------------
# CORINE Land Cover
# --------------------------------------------------------------------------------------------

CLC_LEGEND: Mapping[int, str] = {
    111: "Continuous urban fabric",
    112: "Discontinuous urban fabric",
    121: "Industrial or commercial units",
    122: "Road and rail networks and associated land",
    123: "Port areas",
    124: "Airports",
    131: "Mineral extraction sites",
    132: "Dump sites",
    133: "Construction sites",
    141: "Green urban areas",
    142: "Sport and leisure facilities",
    211: "Non-irrigated arable land",
    212: "Permanently irrigated land",
    213: "Rice fields",
    221: "Vineyards",
    222: "Fruit trees and berry plantations",
    223: "Olive groves",
    231: "Pastures",
    241: "Annual crops associated with permanent crops",
    242: "Complex cultivation patterns",
    243: "Land principally occupied by agriculture, with significant areas of natural vegetation",
    244: "Agro-forestry areas",
    311: "Broad-leaved forest",
    312: "Coniferous forest",
    313: "Mixed forest",
    321: "Natural grasslands",
    322: "Moors and heathland",
    323: "Sclerophyllous vegetation",
    324: "Transitional woodland-shrub",
    331: "Beaches, dunes, sands",
    332: "Bare rocks",
    333: "Sparsely vegetated areas",
    334: "Burnt areas",
    335: "Glaciers and perpetual snow",
    411: "Inland marshes",
    412: "Peat bogs",
    421: "Salt marshes",
    422: "Salines",
    423: "Intertidal flats",
    511: "Water courses",
    512: "Water bodies",
    521: "Coastal lagoons",
    522: "Estuaries",
    523: "Sea and ocean",
}
"""The 44 classes of the CLC nomenclature, 3-digit code -> name, in legend order (CLC legend)."""

CLC_CODES: tuple[int, ...] = tuple(CLC_LEGEND)
"""The 44 three-digit CLC codes in legend order."""

CORINE_GRID_TO_CLC: Mapping[int, int] = {grid: clc for grid, clc in enumerate(CLC_CODES, start=1)}
"""Official CLC raster grid code (1..44) -> 3-digit CLC code.

The official CLC raster products number the 44 legend classes 1..44 in legend order (CLC raster
legend, ``clc_legend.csv`` ``GRID_CODE`` column): 1:111, 2:112, 3:121, ... 44:523."""

CORINE_GRID_NO_LABEL: frozenset[int] = frozenset({48, 49, 50})
"""Grid codes of the CLC raster legend that carry no land-cover class: 48 NODATA, 49 UNCLASSIFIED
LAND SURFACE, 50 UNCLASSIFIED WATER BODIES (CLC raster legend)."""

CLC_NO_LABEL_CODES: frozenset[int] = frozenset({990, 995, 999})
"""3-digit CLC codes that carry no land-cover class: 990 UNCLASSIFIED LAND SURFACE,
995 UNCLASSIFIED WATER BODIES, 999 NODATA (CLC legend; grid codes 49, 50, 48)."""

UINT32_NO_DATA = 4294967295
CORINE_NO_DATA_VALUES: frozenset[int] = frozenset({48, 128, -128, 255, UINT32_NO_DATA})
"""Values the distributed CORINE products use for "no data", whether or not a file declares them:
48 (NODATA in the raster legend), 128 (the outside value of the 100 m rasters, which store it as
int8 -128), 255 (the outside value of 8-bit extracts and national rasters) and the uint32 maximum
(3-digit national products). 0 is no data only where a file's own nodata says so; a file's nodata
always is (see :class:`CorineCodes`)."""

CLC_LOOKUP_SIZE = 1000
"""Every grid code and every 3-digit CLC code is below this: the size of the lookup tables."""

CORINE_CONVENTIONS = ("grid", "clc")
"""How a CORINE file without a value attribute table stores its classes: ``grid`` codes 1-44 of the
CLC raster legend, or the 3-digit ``clc`` codes themselves."""


def _check_integer(values: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(values)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{what} must hold integer codes, got dtype {arr.dtype}")
    return arr


def name_values(values: Iterable[int], limit: int = 20) -> str:
    """``[1, 2, ...] (n distinct)``: how messages name a set of codes."""
    ordered = sorted(int(v) for v in values)
    shown = ", ".join(str(v) for v in ordered[:limit])
    return f"[{shown}{', ...' if len(ordered) > limit else ''}] ({len(ordered)} distinct)"


_CONVENTION_VALUES = {
    "grid": frozenset(CORINE_GRID_TO_CLC) | CORINE_GRID_NO_LABEL,
    "clc": frozenset(CLC_CODES) | CLC_NO_LABEL_CODES,
}


def detect_corine_convention(values: np.ndarray) -> str:
    """Decide whether a CORINE file holds grid codes or 3-digit CLC codes: ``"grid"`` or ``"clc"``,
    whichever explains more of ``values`` (grid: 1-44 and 48-50; clc: the 44 legend codes and 990,
    995, 999), the published no-data values (:data:`CORINE_NO_DATA_VALUES`) set aside.

    Values that neither convention defines (a stray 0, a 3-digit value that is no legend code) do
    not decide: they become unknown codes of the file, counted where they reach a patch. Raises
    ``ValueError`` naming the values when no value is of either convention, when both explain as
    many pixels (a raster that mixes them), or when there is nothing but no data.
    """
    arr = _check_integer(values, "CORINE values").ravel()
    arr = arr[~np.isin(arr, tuple(CORINE_NO_DATA_VALUES))]
    if arr.size == 0:
        raise ValueError("cannot detect the CORINE convention: no value other than no data")
    found, counts = np.unique(arr, return_counts=True)
    explained = {c: int(counts[np.isin(found, tuple(v))].sum()) for c, v in _CONVENTION_VALUES.items()}
    if not any(explained.values()):
        raise ValueError(
            f"CORINE values {name_values(found)} are neither CLC raster grid codes (1-44, 48-50) "
            "nor 3-digit CLC codes (the 44 legend codes, 990, 995, 999)"
        )
    if explained["grid"] == explained["clc"]:
        grid = [v for v in found if v in _CONVENTION_VALUES["grid"]]
        clc = [v for v in found if v in _CONVENTION_VALUES["clc"]]
        raise ValueError(
            f"CORINE raster mixes conventions: grid codes {name_values(grid)} together with "
            f"3-digit CLC codes {name_values(clc)} in equal parts"
        )
    return max(explained, key=explained.__getitem__)


@dataclass(frozen=True, eq=False)
class CorineCodes:
    """How the values of one CORINE file become 3-digit CLC codes.

    ``convention`` says where the conversion comes from: ``vat`` (the file's own value attribute
    table, ``<raster>.tif.vat.dbf``: raster value -> ``CODE_18``), ``grid`` (the CLC raster legend,
    :data:`CORINE_GRID_TO_CLC`) or ``clc`` (the values are the codes). :meth:`convert` gives 0 for
    no label (the no-label classes, :data:`CORINE_NO_DATA_VALUES`, the file's nodata) and flags
    every other value the conversion does not define as unknown: counted, never a class.
    """

    convention: str
    clc: np.ndarray
    """(CLC_LOOKUP_SIZE,) uint16: the CLC code of each value, 0 for no label."""
    known: np.ndarray
    """(CLC_LOOKUP_SIZE,) bool: the value is defined (a class or no label)."""
    no_data: frozenset[int]
    """No-data values, those outside the table included."""

    @classmethod
    def legend(cls, convention: str, nodata: int | None = None) -> CorineCodes:
        """The conversion of the CLC legend for ``grid`` or ``clc`` values."""
        if convention not in CORINE_CONVENTIONS:
            raise ValueError(f"convention must be one of {CORINE_CONVENTIONS}, got {convention!r}")
        if convention == "grid":
            table = {**CORINE_GRID_TO_CLC, **dict.fromkeys(CORINE_GRID_NO_LABEL, 999)}
        else:
            table = {code: code for code in (*CLC_CODES, *CLC_NO_LABEL_CODES)}
        return cls._of(convention, table, nodata)

    @classmethod
    def from_table(cls, table: Mapping[int, int], nodata: int | None = None) -> CorineCodes:
        """The conversion of a value attribute table (value -> 3-digit code); the table wins over
        the published no-data values for the values it lists."""
        bad = {c for c in table.values() if c not in CLC_LEGEND and c not in CLC_NO_LABEL_CODES}
        if bad:
            raise ValueError(f"codes {name_values(bad)} are not 3-digit CLC codes")
        return cls._of("vat", table, nodata)

    @classmethod
    def _of(cls, convention: str, table: Mapping[int, int], nodata: int | None) -> CorineCodes:
        no_data = set(CORINE_NO_DATA_VALUES) - set(table)
        if nodata is not None:
            no_data.add(int(nodata))
        clc = np.zeros(CLC_LOOKUP_SIZE, dtype=np.uint16)
        known = np.zeros(CLC_LOOKUP_SIZE, dtype=bool)
        for value in no_data:
            if 0 <= value < CLC_LOOKUP_SIZE:
                known[value] = True
        for value, code in table.items():
            if not 0 <= value < CLC_LOOKUP_SIZE:
                raise ValueError(f"value {value} is outside 0..{CLC_LOOKUP_SIZE - 1}")
            known[value] = True
            clc[value] = 0 if code in CLC_NO_LABEL_CODES else code
        clc.flags.writeable = False
        known.flags.writeable = False
        return cls(convention, clc, known, frozenset(no_data))

    def convert(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """CLC codes (uint16, 0 for no label and for unknown values) and the mask of unknown values."""
        arr = _check_integer(values, "CORINE values")
        inside = (arr >= 0) & (arr < CLC_LOOKUP_SIZE)
        index = np.where(inside, arr, 0).astype(np.intp)
        known = np.where(inside, self.known[index], np.isin(arr, tuple(self.no_data)))
        return np.where(inside, self.clc[index], 0).astype(np.uint16), ~known

    def values(self) -> frozenset[int]:
        """The values the conversion defines (the no-data values included)."""
        return frozenset(np.flatnonzero(self.known).tolist()) | self.no_data


# --------------------------------------------------------------------------------------------
# ClassMap
# --------------------------------------------------------------------------------------------

_TASKS = ("multilabel", "segmentation")
_INDEX_DTYPE = np.int16


@dataclass(frozen=True)
class ClassMap:
    """How the codes of one label product become the classes of one benchmark.

    Attributes:
        name: short identifier (the key in :data:`CLASS_MAPS`).
        classes: class names in output order; the output index of a class is its position here.
        codes: for each class (same order), the source codes that map to it. Codes are disjoint
            between classes and all belong to ``source_codes_known``.
        ignore_index: index of the background/ignored class of a segmentation map (it receives
            every known code that no other class claims), or None. Multilabel maps have none.
        task: ``"multilabel"`` (one multi-hot vector per patch) or ``"segmentation"`` (one class
            index per pixel).
        source_codes_known: every code the source product defines. Codes outside this set are
            *unknown*: they are counted by :meth:`to_indexes` and never mapped to a real class.
    """

    name: str
    classes: tuple[str, ...]
    codes: tuple[tuple[int, ...], ...]
    ignore_index: int | None
    task: str
    source_codes_known: frozenset[int] = field(repr=False)

    def __post_init__(self) -> None:
        if self.task not in _TASKS:
            raise ValueError(f"{self.name}: task must be one of {_TASKS}, got {self.task!r}")
        if not self.classes or len(self.classes) != len(self.codes):
            raise ValueError(f"{self.name}: {len(self.classes)} classes but {len(self.codes)} code groups")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"{self.name}: duplicate class names")
        if self.task == "multilabel" and self.ignore_index is not None:
            raise ValueError(f"{self.name}: a multilabel map has no ignored class")
        if self.ignore_index is not None and not 0 <= self.ignore_index < len(self.classes):
            raise ValueError(
                f"{self.name}: ignore_index {self.ignore_index} outside 0..{len(self.classes) - 1}"
            )
        if len(self.classes) > np.iinfo(_INDEX_DTYPE).max:
            raise ValueError(f"{self.name}: too many classes")
        seen: set[int] = set()
        for name, group in zip(self.classes, self.codes, strict=True):
            dup = seen.intersection(group)
            if dup:
                raise ValueError(f"{self.name}: codes {sorted(dup)} claimed twice (again by {name!r})")
            seen.update(group)
        if any(c < 0 for c in seen):
            raise ValueError(f"{self.name}: negative source codes")
        stray = seen - self.source_codes_known
        if stray:
            raise ValueError(f"{self.name}: codes {sorted(stray)} are not in source_codes_known")

    @property
    def num_classes(self) -> int:
        """Number of output classes, the ignored class included."""
        return len(self.classes)

    @property
    def fill_index(self) -> int:
        """Index given to codes that map to no class: ``ignore_index``, or -1 when there is none."""
        return -1 if self.ignore_index is None else self.ignore_index

    def code_to_index(self) -> dict[int, int]:
        """Source code -> class index for every code that some class claims."""
        return {code: i for i, group in enumerate(self.codes) for code in group}

    def lookup_table(self, max_code: int = 65535) -> np.ndarray:
        """``int16`` array of length ``max_code + 1``: entry ``c`` is the class index of code ``c``.

        Codes no class claims get :attr:`fill_index` (the ignore index for segmentation, -1 for
        multilabel). The table does not tell unknown codes apart; :meth:`to_indexes` does.
        """
        mapping = self.code_to_index()
        if mapping and max(mapping) > max_code:
            raise ValueError(f"{self.name}: max_code {max_code} below the largest class code {max(mapping)}")
        table = np.full(max_code + 1, self.fill_index, dtype=_INDEX_DTYPE)
        for code, index in mapping.items():
            table[code] = index
        return table

    @cached_property
    def _tables(self) -> tuple[np.ndarray, np.ndarray]:
        top = max(max(self.source_codes_known, default=0), max(self.code_to_index(), default=0))
        index = self.lookup_table(top)
        known = np.zeros(top + 1, dtype=bool)
        known[list(self.source_codes_known)] = True
        index.flags.writeable = False
        known.flags.writeable = False
        return index, known

    def to_indexes(self, values: np.ndarray) -> tuple[np.ndarray, int]:
        """Per-pixel class index (``int16``, same shape as ``values``) and the unknown-code count.

        A pixel whose code is not in ``source_codes_known`` is counted and gets
        :attr:`fill_index`, never a real class. Known codes that no class claims get
        :attr:`fill_index` without being counted (multilabel: -1; segmentation: the background
        class already claims them).
        """
        arr = _check_integer(values, f"{self.name} codes")
        index_table, known_table = self._tables
        if arr.size == 0:
            return np.empty(arr.shape, dtype=_INDEX_DTYPE), 0
        lo, hi = int(arr.min()), int(arr.max())
        if lo >= 0 and hi < len(index_table):
            flat = arr.astype(np.intp, copy=False)
            return index_table[flat], int(arr.size - np.count_nonzero(known_table[flat]))
        in_range = (arr >= 0) & (arr < len(index_table))
        safe = np.where(in_range, arr, 0).astype(np.intp)
        known = in_range & known_table[safe]
        out = np.where(known, index_table[safe], self.fill_index).astype(_INDEX_DTYPE)
        return out, int(arr.size - np.count_nonzero(known))

    def multi_hot(self, values: np.ndarray) -> tuple[np.ndarray, int]:
        """Bool vector over :attr:`classes`, True for every class present in ``values``, and the
        unknown-code count (as :meth:`to_indexes`).

        Meant for multilabel maps (the EnMAP-CORINE label of a patch). On a segmentation map it
        gives the classes present, the ignored class never set.
        """
        indexes, unknown = self.to_indexes(values)
        present = np.zeros(len(self.classes), dtype=bool)
        found = np.unique(indexes)
        found = found[(found >= 0) & (found != self.fill_index)]
        present[found] = True
        return present, unknown


# --------------------------------------------------------------------------------------------
# The published maps
# --------------------------------------------------------------------------------------------

CORINE_BIGEARTHNET19 = ClassMap(
    name="corine",
    classes=(
        "Urban fabric",
        "Industrial or commercial units",
        "Arable land",
        "Permanent crops",
        "Pastures",
        "Complex cultivation patterns",
        "Land principally occupied by agriculture, with significant areas of natural vegetation",
        "Agro-forestry areas",
        "Broad-leaved forest",
        "Coniferous forest",
        "Mixed forest",
        "Natural grassland and sparsely vegetated areas",
        "Moors, heathland and sclerophyllous vegetation",
        "Transitional woodland, shrub",
        "Beaches, dunes, sands",
        "Inland wetlands",
        "Coastal wetlands",
        "Inland waters",
        "Marine waters",
    ),
    codes=(
        (111, 112),
        (121,),
        (211, 212, 213),
        (221, 222, 223, 241),
        (231,),
        (242,),
        (243,),
        (244,),
        (311,),
        (312,),
        (313,),
        (321, 333),
        (322, 323),
        (324,),
        (331,),
        (411, 412),
        (421, 422),
        (511, 512),
        (521, 522, 523),
    ),
    ignore_index=None,
    task="multilabel",
    source_codes_known=frozenset(CLC_CODES),
)
"""EnMAP-CORINE: the 44 CLC classes (3-digit codes; convert grid rasters with
:class:`CorineCodes` first) aggregated into the 19 BigEarthNet classes (BigEarthNet-MM taxonomy,
paper section 3.2; code groups from DESIGN.md). The label of a patch is the multi-hot vector of
the classes present. CLC codes in no group (122, 123, 124, 131, 132, 133, 141, 142, 332, 334,
335, 423) are ignored (-1). Known codes are the 44 CLC legend codes only: 0 (no label after
:class:`CorineCodes`) is counted as unknown, so mask no-label pixels first if they are expected."""

CDL_KNOWN_CODES: frozenset[int] = frozenset(range(256))
"""Codes treated as defined by the CDL. The CDL is distributed as an 8-bit raster whose legend
(USDA NASS CDL attribute table) assigns names to a subset of 0..255 that changes between release
years (0 Background, 1 Corn ... 254 Dbl Crop Barley/Soybeans, with gaps such as 7-9, 15-20, 40,
78-80, 93-110, 255). No single year-independent defined set could be stated exactly here, so every
8-bit value 0..255 counts as known; only values outside 0..255 are counted as unknown."""


def _background(known: frozenset[int], claimed: Iterable[tuple[int, ...]]) -> tuple[int, ...]:
    taken = {c for group in claimed for c in group}
    return tuple(sorted(known - taken))


_CDL_CROPS: tuple[tuple[str, int], ...] = (
    ("Corn", 1),
    ("Cotton", 2),
    ("Rice", 3),
    ("Sorghum", 4),
    ("Soybeans", 5),
    ("Sunflower", 6),
    ("Sugarcane", 45),
    ("Tomatoes", 54),
    ("Grapes", 69),
    ("Citrus", 72),
    ("Almonds", 75),
    ("Walnuts", 76),
    ("Pistachios", 204),
    ("Prunes", 210),
)

CDL_14 = ClassMap(
    name="cdl",
    classes=(*(n for n, _ in _CDL_CROPS), "Background"),
    codes=(
        *((c,) for _, c in _CDL_CROPS),
        _background(CDL_KNOWN_CODES, ((c,) for _, c in _CDL_CROPS)),
    ),
    ignore_index=len(_CDL_CROPS),
    task="segmentation",
    source_codes_known=CDL_KNOWN_CODES,
)
"""EnMAP-CDL: 14 crop classes in the DESIGN.md order (CDL legend codes and names: 1 Corn,
2 Cotton, 3 Rice, 4 Sorghum, 5 Soybeans, 6 Sunflower, 45 Sugarcane, 54 Tomatoes, 69 Grapes,
72 Citrus, 75 Almonds, 76 Walnuts, 204 Pistachios, 210 Prunes), then "Background" at index 14,
which takes every other CDL code (0 and, e.g., 24 Winter Wheat) and is the ignore index. The
paper's "20 classes" for EnMAP-CDL does not match the published configuration (14 classes,
ignore_index 14), which DESIGN.md follows. Known codes: :data:`CDL_KNOWN_CODES` (0..255)."""

_DESIS_CROPS: tuple[tuple[str, int], ...] = (
    ("Corn", 1),
    ("Cotton", 2),
    ("Rice", 3),
    ("Soybeans", 5),
    ("Dry Beans", 42),
    ("Potatoes", 43),
    ("Onions", 49),
    ("Tomatoes", 54),
    ("Hops", 56),
    ("Apples", 68),
    ("Grapes", 69),
    ("Almonds", 75),
    ("Walnuts", 76),
    ("Pistachios", 204),
)

DESIS_CDL = ClassMap(
    name="desis_cdl",
    classes=(*(n for n, _ in _DESIS_CROPS), "Background"),
    codes=(
        *((c,) for _, c in _DESIS_CROPS),
        _background(CDL_KNOWN_CODES, ((c,) for _, c in _DESIS_CROPS)),
    ),
    ignore_index=len(_DESIS_CROPS),
    task="segmentation",
    source_codes_known=CDL_KNOWN_CODES,
)
"""DESIS-CDL: DESIGN.md lists the CDL codes 0,1,2,3,5,42,43,49,54,56,68,69,75,76,204. Code 0 is
the CDL "Background" value, not a crop: the list has the same form as the EnMAP-CDL and NLCD lists
the authors published (code 0 first), and their loader moves 0 to the end of the list and uses it
as the background, ignored class (published config: num_classes 14, ignore_index 14). So the map
has 14 crop classes (names from the CDL legend) and "Background" at index 14, ignored, which takes
0 and every other CDL code. The paper's "19 classes" (section 3.2) matches neither the list nor
the published configuration. Known codes: :data:`CDL_KNOWN_CODES` (0..255)."""

NLCD_LEGEND: Mapping[int, str] = {
    11: "Open Water",
    12: "Perennial Ice/Snow",
    21: "Developed, Open Space",
    22: "Developed, Low Intensity",
    23: "Developed, Medium Intensity",
    24: "Developed, High Intensity",
    31: "Barren Land (Rock/Sand/Clay)",
    41: "Deciduous Forest",
    42: "Evergreen Forest",
    43: "Mixed Forest",
    51: "Dwarf Scrub",
    52: "Shrub/Scrub",
    71: "Grassland/Herbaceous",
    72: "Sedge/Herbaceous",
    73: "Lichens",
    74: "Moss",
    81: "Pasture/Hay",
    82: "Cultivated Crops",
    90: "Woody Wetlands",
    95: "Emergent Herbaceous Wetlands",
}
"""The NLCD land-cover legend (USGS NLCD class definitions), code -> name. 51, 72, 73 and 74 occur
in Alaska only."""

_NLCD_CLASSES: tuple[int, ...] = (11, 21, 22, 23, 24, 31, 41, 42, 43, 52, 71, 81, 82, 90, 95)

NLCD_15 = ClassMap(
    name="nlcd",
    classes=(*(NLCD_LEGEND[c] for c in _NLCD_CLASSES), "Background"),
    codes=(
        *((c,) for c in _NLCD_CLASSES),
        _background(frozenset(NLCD_LEGEND), ((c,) for c in _NLCD_CLASSES)),
    ),
    ignore_index=len(_NLCD_CLASSES),
    task="segmentation",
    source_codes_known=frozenset(NLCD_LEGEND),
)
"""EnMAP-NLCD: 15 NLCD classes in the DESIGN.md order (11, 21, 22, 23, 24, 31, 41, 42, 43, 52, 71,
81, 82, 90, 95; names from the NLCD legend), then "Background" at index 15, ignored, which takes
the other legend codes (12 Perennial Ice/Snow and the Alaska-only 51, 72, 73, 74). Known codes are
the 20 NLCD legend codes: 0 (the NLCD file nodata) is counted as unknown, so mask nodata first."""

CLASS_MAPS: Mapping[str, ClassMap] = {
    "corine": CORINE_BIGEARTHNET19,
    "cdl": CDL_14,
    "nlcd": NLCD_15,
    "desis_cdl": DESIS_CDL,
}
"""The published label class maps by name."""


INLINE_KNOWN_CODES: frozenset[int] = frozenset(range(1 << 16))
"""Codes of a product configured inline: every 16-bit value is known (no legend to check against)."""


def inline_class_map(name: str, task: str, classes: Iterable[tuple[str, tuple[int, ...]]]) -> ClassMap:
    """A class map given in a product's configuration: (class name, codes) per class. A
    segmentation map gets a last "Background" class that takes every other code and is ignored,
    as the published CDL and NLCD maps do."""
    names = tuple(n for n, _ in classes)
    codes = tuple(tuple(c) for _, c in classes)
    if task == "segmentation":
        return ClassMap(
            name=name,
            classes=(*names, "Background"),
            codes=(*codes, _background(INLINE_KNOWN_CODES, codes)),
            ignore_index=len(names),
            task=task,
            source_codes_known=INLINE_KNOWN_CODES,
        )
    return ClassMap(name, names, codes, None, task, INLINE_KNOWN_CODES)
