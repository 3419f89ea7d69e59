"""Label class maps (storage_schemas.label_classes) against hand-computed masks and DESIGN.md."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from storage_schemas.label_classes import (
    CDL_14,
    CLASS_MAPS,
    CLC_CODES,
    CORINE_BIGEARTHNET19,
    CORINE_GRID_TO_CLC,
    DESIS_CDL,
    NLCD_15,
    ClassMap,
    CorineCodes,
    detect_corine_convention,
)

# The BigEarthNet-19 groups exactly as DESIGN.md lists them, in class order.
DESIGN_CORINE_GROUPS = [
    {111, 112},
    {121},
    {211, 212, 213},
    {221, 222, 223, 241},
    {231},
    {242},
    {243},
    {244},
    {311},
    {312},
    {313},
    {321, 333},
    {322, 323},
    {324},
    {331},
    {411, 412},
    {421, 422},
    {511, 512},
    {521, 522, 523},
]
CORINE_IGNORED = {122, 123, 124, 131, 132, 133, 141, 142, 332, 334, 335, 423}


# --- CORINE grid codes and conventions ------------------------------------------------------


def test_grid_table_is_the_clc_legend_order() -> None:
    assert len(CORINE_GRID_TO_CLC) == 44
    assert list(CORINE_GRID_TO_CLC) == list(range(1, 45))
    expected = {1: 111, 2: 112, 3: 121, 11: 142, 12: 211, 18: 231, 19: 241, 22: 244, 23: 311}
    expected |= {34: 335, 35: 411, 39: 423, 40: 511, 44: 523}
    for grid, clc in expected.items():
        assert CORINE_GRID_TO_CLC[grid] == clc


def test_corine_grid_to_clc_hand_mask() -> None:
    grid = np.array([[1, 2, 12], [48, 44, 255], [49, 50, 23], [128, 0, 45]], dtype=np.uint8)
    clc, unknown = CorineCodes.legend("grid").convert(grid)
    assert clc.dtype == np.uint16
    np.testing.assert_array_equal(clc, [[111, 112, 211], [0, 523, 0], [0, 0, 311], [0, 0, 0]])
    np.testing.assert_array_equal(unknown[3], [False, True, True])  # 0 and 45 are no grid codes
    assert not unknown[:3].any()


def test_corine_clc_convention_keeps_codes_and_blanks_no_label() -> None:
    values = np.array([111, 523, 999, 990, 995, 4294967295, 150, 0], dtype=np.uint32)
    clc, unknown = CorineCodes.legend("clc").convert(values)
    np.testing.assert_array_equal(clc, [111, 523, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(unknown, [False] * 6 + [True, True])


def test_a_files_own_nodata_is_no_data_and_0_only_where_the_file_says_so() -> None:
    values = np.array([0, -128, 7], dtype=np.int16)
    _, unknown = CorineCodes.legend("grid", nodata=0).convert(values)
    np.testing.assert_array_equal(unknown, [False, False, False])
    _, unknown = CorineCodes.legend("grid").convert(values)
    np.testing.assert_array_equal(unknown, [True, False, False])


def test_a_value_table_decides_over_the_legend() -> None:
    codes = CorineCodes.from_table({1: 311, 2: 512, 3: 999, 255: 211})
    clc, unknown = codes.convert(np.array([1, 2, 3, 4, 255, 48], dtype=np.uint8))
    np.testing.assert_array_equal(clc, [311, 512, 0, 0, 211, 0])
    np.testing.assert_array_equal(unknown, [False, False, False, True, False, False])
    with pytest.raises(ValueError, match="150"):
        CorineCodes.from_table({1: 150})
    with pytest.raises(ValueError, match="convention"):
        CorineCodes.legend("lccs")


def test_detect_convention() -> None:
    assert detect_corine_convention(np.array([[1, 44], [48, 255]], dtype=np.uint8)) == "grid"
    assert detect_corine_convention(np.array([50, 49, 2])) == "grid"
    assert detect_corine_convention(np.array([[111, 523], [999, 311]], dtype=np.uint16)) == "clc"
    assert detect_corine_convention(np.array([211, 311, 4294967295], dtype=np.uint32)) == "clc"
    # stray values of neither convention do not decide: they are unknown codes of the file
    assert detect_corine_convention(np.array([0, 1, 2, 128])) == "grid"
    assert detect_corine_convention(np.array([111, 700, 211])) == "clc"


def test_detect_refuses_a_raster_mixing_both_in_equal_parts_naming_the_values() -> None:
    mixed = np.array([[12, 12], [211, 311]], dtype=np.uint16)
    with pytest.raises(ValueError, match="mixes") as err:
        detect_corine_convention(mixed)
    assert "12" in str(err.value) and "211" in str(err.value) and "311" in str(err.value)


def test_detect_refuses_values_of_neither_convention() -> None:
    with pytest.raises(ValueError, match="700"):
        detect_corine_convention(np.array([700, 0]))
    with pytest.raises(ValueError, match="no value other than no data"):
        detect_corine_convention(np.array([48, 255], dtype=np.uint8))
    with pytest.raises(ValueError, match="no value other than no data"):
        detect_corine_convention(np.array([], dtype=np.uint8))


# --- CORINE BigEarthNet-19 ------------------------------------------------------------------


def test_corine_groups_are_the_design_groups() -> None:
    assert CORINE_BIGEARTHNET19.task == "multilabel"
    assert CORINE_BIGEARTHNET19.ignore_index is None
    assert len(CORINE_BIGEARTHNET19.classes) == 19
    assert [set(g) for g in CORINE_BIGEARTHNET19.codes] == DESIGN_CORINE_GROUPS
    assert CORINE_BIGEARTHNET19.source_codes_known == frozenset(CLC_CODES)
    table = CORINE_BIGEARTHNET19.lookup_table()
    for index, group in enumerate(DESIGN_CORINE_GROUPS):
        for code in group:
            assert table[code] == index, code
    for code in CORINE_IGNORED:
        assert table[code] == -1, code
    assert CORINE_IGNORED | set().union(*DESIGN_CORINE_GROUPS) == set(CLC_CODES)


def test_corine_multi_hot_of_a_hand_made_patch() -> None:
    patch = np.array([[111, 112, 211], [311, 122, 523], [211, 212, 999]], dtype=np.uint16)
    hot, unknown = CORINE_BIGEARTHNET19.multi_hot(patch)
    assert hot.dtype == np.bool_ and hot.shape == (19,)
    # 111/112 urban fabric (0), 211/212 arable (2), 311 broad-leaved (8), 523 marine (18);
    # 122 is an ignored CLC class; 999 is not a CLC class and is counted.
    assert np.flatnonzero(hot).tolist() == [0, 2, 8, 18]
    assert unknown == 1


def test_corine_unknown_codes_are_counted_never_mapped() -> None:
    values = np.array([999, 111, 0, 65535, -3, 70000], dtype=np.int64)
    indexes, unknown = CORINE_BIGEARTHNET19.to_indexes(values)
    assert indexes.tolist() == [-1, 0, -1, -1, -1, -1]
    assert unknown == 5


# --- CDL ------------------------------------------------------------------------------------


def test_cdl_order_and_background() -> None:
    crops = [1, 2, 3, 4, 5, 6, 45, 54, 69, 72, 75, 76, 204, 210]
    assert [g for g in CDL_14.codes[:14]] == [(c,) for c in crops]
    assert CDL_14.classes[14] == "Background" and CDL_14.ignore_index == 14
    assert CDL_14.task == "segmentation"
    assert CDL_14.source_codes_known == frozenset(range(256))
    assert set(CDL_14.codes[14]) == set(range(256)) - set(crops)


def test_cdl_hand_mask() -> None:
    mask = np.array([[204, 210, 24], [1, 0, 76]], dtype=np.uint8)
    indexes, unknown = CDL_14.to_indexes(mask)
    prunes = CDL_14.classes.index("Prunes")
    assert prunes == 13  # the 14th crop
    np.testing.assert_array_equal(indexes, [[12, prunes, 14], [0, 14, 11]])
    assert CDL_14.classes[12] == "Pistachios"
    assert unknown == 0


def test_cdl_pistachio_and_winter_wheat_as_in_the_brief() -> None:
    table = CDL_14.lookup_table()
    assert table[204] == CDL_14.classes.index("Pistachios")
    assert table[210] == CDL_14.classes.index("Prunes") == 13
    assert table[24] == 14  # Winter Wheat is background


def test_cdl_unknown_codes() -> None:
    indexes, unknown = CDL_14.to_indexes(np.array([300, 1, 1000], dtype=np.uint16))
    assert indexes.tolist() == [14, 0, 14]
    assert unknown == 2


def test_desis_cdl_zero_is_ignored_background() -> None:
    crops = [1, 2, 3, 5, 42, 43, 49, 54, 56, 68, 69, 75, 76, 204]
    assert [g for g in DESIS_CDL.codes[:14]] == [(c,) for c in crops]
    assert DESIS_CDL.classes[:5] == ("Corn", "Cotton", "Rice", "Soybeans", "Dry Beans")
    assert DESIS_CDL.classes[13] == "Pistachios"
    assert DESIS_CDL.ignore_index == 14 and DESIS_CDL.classes[14] == "Background"
    indexes, unknown = DESIS_CDL.to_indexes(np.array([0, 204, 56, 4, 210], dtype=np.uint8))
    assert indexes.tolist() == [14, 13, 8, 14, 14]
    assert unknown == 0


# --- NLCD -----------------------------------------------------------------------------------


def test_nlcd_hand_mask() -> None:
    order = [11, 21, 22, 23, 24, 31, 41, 42, 43, 52, 71, 81, 82, 90, 95]
    assert [g for g in NLCD_15.codes[:15]] == [(c,) for c in order]
    assert NLCD_15.ignore_index == 15 and NLCD_15.classes[15] == "Background"
    assert NLCD_15.classes[0] == "Open Water" and NLCD_15.classes[14] == "Emergent Herbaceous Wetlands"
    mask = np.array([[12, 95, 11], [99, 51, 82]], dtype=np.uint8)
    indexes, unknown = NLCD_15.to_indexes(mask)
    np.testing.assert_array_equal(indexes, [[15, 14, 0], [15, 15, 12]])
    assert unknown == 1  # 99 is no NLCD code


def test_nlcd_known_codes_are_the_legend() -> None:
    legend = {11, 12, 21, 22, 23, 24, 31, 41, 42, 43, 51, 52, 71, 72, 73, 74, 81, 82, 90, 95}
    assert NLCD_15.source_codes_known == frozenset(legend)
    assert set(NLCD_15.codes[15]) == {12, 51, 72, 73, 74}


# --- ClassMap mechanics ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CLASS_MAPS))
def test_lookup_table_dtype_and_size(name: str) -> None:
    cmap = CLASS_MAPS[name]
    table = cmap.lookup_table()
    assert table.dtype == np.int16 and table.shape == (65536,)
    small = cmap.lookup_table(600)
    assert small.shape == (601,)
    np.testing.assert_array_equal(small, table[:601])
    fill = -1 if cmap.ignore_index is None else cmap.ignore_index
    assert table[60000] == fill


def test_lookup_table_too_small_is_refused() -> None:
    with pytest.raises(ValueError, match="max_code"):
        CDL_14.lookup_table(100)


def test_class_maps_registry() -> None:
    assert CLASS_MAPS == {
        "corine": CORINE_BIGEARTHNET19,
        "cdl": CDL_14,
        "nlcd": NLCD_15,
        "desis_cdl": DESIS_CDL,
    }
    for name, cmap in CLASS_MAPS.items():
        assert cmap.name == name


def test_unknown_codes_never_reach_a_real_class_in_any_map() -> None:
    for cmap in CLASS_MAPS.values():
        unknown_codes = np.array([c for c in range(70000) if c not in cmap.source_codes_known][:5000])
        indexes, unknown = cmap.to_indexes(unknown_codes)
        assert unknown == unknown_codes.size
        fill = -1 if cmap.ignore_index is None else cmap.ignore_index
        assert np.all(indexes == fill)


def test_segmentation_multi_hot_leaves_out_the_ignored_class() -> None:
    hot, unknown = NLCD_15.multi_hot(np.array([12, 11, 11, 95]))
    assert np.flatnonzero(hot).tolist() == [0, 14]
    assert unknown == 0


def test_invalid_maps_are_refused() -> None:
    with pytest.raises(ValueError, match="claimed twice"):
        ClassMap("x", ("a", "b"), ((1,), (1,)), None, "multilabel", frozenset({1}))
    with pytest.raises(ValueError, match="source_codes_known"):
        ClassMap("x", ("a",), ((2,),), None, "multilabel", frozenset({1}))
    with pytest.raises(ValueError, match="task"):
        ClassMap("x", ("a",), ((1,),), None, "detection", frozenset({1}))
    with pytest.raises(TypeError):
        CDL_14.to_indexes(np.array([1.0, 2.0]))


# --- real CORINE sample ---------------------------------------------------------------------


def test_real_corine_hannover_grid_codes(realdata: Path) -> None:
    import rasterio

    path = realdata / "corine" / "clc_hannover_epsg3035_25m.tif"
    assert path.is_file(), f"missing real sample {path}"
    with rasterio.open(path) as src:
        grid = src.read(1)
    assert detect_corine_convention(grid) == "grid"
    clc, outside = CorineCodes.legend("grid").convert(grid)
    assert not outside.any()
    hot, unknown = CORINE_BIGEARTHNET19.multi_hot(clc[clc != 0])
    assert unknown == 0
    assert hot.any()
    # Near Hannover: arable land and discontinuous urban fabric dominate the sample.
    assert hot[CORINE_BIGEARTHNET19.classes.index("Arable land")]
    assert hot[CORINE_BIGEARTHNET19.classes.index("Urban fabric")]
    assert not hot[CORINE_BIGEARTHNET19.classes.index("Marine waters")]
