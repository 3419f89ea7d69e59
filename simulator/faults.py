"""Faulty products, injected on purpose so that the catalog's quarantine has something to catch.

Each kind is a fault met in real archives; the scan must refuse the product with a reason a
person can act on and go on with the others. ``--faults K`` turns K planned products faulty,
cycling through the kinds in this order.
"""

from __future__ import annotations

import os
from pathlib import Path

TRUNCATED_IMAGE = "truncated_image"
L1B_PRODUCT = "l1b_product"
BAND_COUNT_MISMATCH = "band_count_mismatch"
MALFORMED_XML = "malformed_xml"
ZIP_SLIP = "zip_slip"
DUPLICATE = "duplicate"

FAULT_KINDS: dict[str, str] = {
    TRUNCATED_IMAGE: "SPECTRAL_IMAGE.TIF cut to half its size (an interrupted download)",
    L1B_PRODUCT: "an L1B product (name and METADATA.XML say L1B) among the L2A products",
    BAND_COUNT_MISMATCH: "SPECTRAL_IMAGE.TIF has one band fewer than METADATA.XML describes",
    MALFORMED_XML: "METADATA.XML is not well-formed (a closing tag misspelt)",
    ZIP_SLIP: "a product ZIP with a member named ../../evil.TIF that climbs out of its folder",
    DUPLICATE: "the same product a second time, as <name>.ZIP beside its folder",
}
FAULT_ORDER = tuple(FAULT_KINDS)

EVIL_MEMBER = "../../evil.TIF"


def fault_cycle(count: int) -> list[str]:
    """The kinds of ``count`` injected faults: the kinds in turn, repeated."""
    return [FAULT_ORDER[k % len(FAULT_ORDER)] for k in range(count)]


def truncate_to_half(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def malform(xml: bytes) -> bytes:
    """Misspell one closing tag in the header sections, where every reader parses."""
    broken = xml.replace(b"</cloudCover>", b"</cloudcover>", 1)
    if broken == xml:
        raise ValueError("no <cloudCover> element to break")
    return broken
