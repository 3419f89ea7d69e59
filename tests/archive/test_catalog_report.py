"""Quarantine reasons grouped by kind, on the reasons a real scan gives for every injected fault."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from assets.archive.catalog_report import reason_counts, reason_kind, reasons_markdown
from assets.archive.scan import CatalogPolicy, scan_archive
from simulator import simulate_archive
from simulator.faults import FAULT_KINDS
from storage_schemas.paths import DataLayout

STANDALONE_NUMBER = re.compile(r"(?<![\w-])-?\d")


@pytest.fixture(scope="module")
def quarantine(tmp_path_factory) -> pd.DataFrame:
    """Two products of every fault kind, refused by the scan with its own reason texts."""
    out = tmp_path_factory.mktemp("faults") / "data"
    simulate_archive(out, tiles=2 * len(FAULT_KINDS) + 2, tile_size=48, seed=5, faults=2 * len(FAULT_KINDS))
    return scan_archive(DataLayout.at(out), CatalogPolicy(max_cloud_cover=100.0)).quarantine


def test_each_fault_kind_is_one_group_whatever_its_numbers_paths_and_names(quarantine):
    kinds = reason_counts(quarantine)
    # the duplicate's reason names the other copy's path: two duplicates, one kind
    assert len(quarantine) == 2 * (len(FAULT_KINDS) - 1) + 2
    assert all(count == 2 for count in kinds.values()), kinds
    assert len(kinds) == len(FAULT_KINDS)
    assert quarantine["reason"].nunique() > len(kinds), "the raw reasons differ within a kind"


def test_product_levels_stay_and_details_are_blanked(quarantine):
    kinds = reason_counts(quarantine)
    assert "is a L1B product; only L2A products are accepted" in kinds
    for kind in kinds:
        assert not STANDALONE_NUMBER.search(kind), kind
        assert "ENMAP01-" not in kind and "/" not in kind and "evil" not in kind, kind
    truncated = next(k for k in kinds if k.startswith("truncated GeoTIFF"))
    assert truncated == "truncated GeoTIFF: its pixel data runs to byte … but the file has … bytes"


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        (
            "superseded by the newer processing "
            "ENMAP01-____L2A-DT0000000114_20240422T224601Z_002_V010502_20240425T172323Z at "
            "2024/04/ENMAP01-____L2A-DT0000000114_20240422T224601Z_002_V010502_20240425T172323Z.ZIP",
            "superseded by the newer processing … at …",
        ),
        ("is in EPSG:32633 but METADATA.XML says EPSG:32632", "is in EPSG:… but METADATA.XML says EPSG:…"),
        (
            "specific/qualityFlag/cloudCover is not a number: 'n/a'",
            "specific/qualityFlag/cloudCover is not a number: …",
        ),
        (
            "footprint point upper_left is off the globe: lon 200.5, lat -91.0",
            "footprint point upper_left is off the globe: lon …, lat …",
        ),
        ("DESIS-HSI-L1B-DT0483021708_002-20200815T115235-V0220 is a L1B product", "… is a L1B product"),
        (
            "cloud cover 55.0% (METADATA.XML cloudCover) exceeds the limit of 10%",
            "cloud cover …% (METADATA.XML cloudCover) exceeds the limit of …%",
        ),
    ],
)  # fmt: skip
def test_reasons_of_the_reader_keep_their_words(reason, kind):
    assert reason_kind(reason) == kind


def test_the_reasons_table_escapes_what_markdown_would_eat(quarantine):
    table = reasons_markdown(reason_counts(quarantine))
    malformed = next(line for line in table.splitlines() if "malformed METADATA.XML" in line)
    assert "(&lt;string&gt;, line …)" in malformed and "<string>" not in table
    assert reasons_markdown({"a | b": 1}).splitlines()[-1] == "| a \\| b | 1 |"
