"""Which file of a label source labels a patch, when the product's pattern matches several.

Copernicus distributes CLC as a mainland raster (EPSG:3035) whose extent box reaches over the
outermost regions, where it holds only no data, and one raster per region in the region's own
CRS; national products and extracts may cover the same ground again. Every file of the patch's
product year whose lon/lat box meets the patch is a candidate (``selection``), the patch is
labelled from each, and the rule is:

1. the file whose valid area covers most of the patch (the highest labelled fraction: outside a
   file's extent and on its no data the patch is unlabelled);
2. among those that cover as much, the finer one (``SourceFile.cell_m``, the cell side in metres
   at the file's centre, to the metre: a 100 m UTM cell is not finer than a 100 m LAEA one for
   its projection's scale factor; polygons count as the finest);
3. then the first by name (the path under the label-source root).

One file labels the whole patch: masks are never stitched from two sources. Where two candidates
both label pixels of the patch and give different codes on some of them, the inputs disagree: the
patch keeps the rule's choice, and the overlap is reported (``overlap_problems``) naming both files.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from assets.labels.label_patch import NO_CODE, PatchLabel

DISAGREEMENT_EXAMPLES = 3


@dataclass(frozen=True)
class Overlap:
    """Two files that both label pixels of one patch and differ on some of them."""

    chosen: str
    other: str
    shared_px: int
    """Patch pixels both label."""
    differing_px: int


def rank(name: str, cell_m: float, label: PatchLabel) -> tuple:
    """The rule as a sort key: most of the patch labelled, then the finer cells, then the name."""
    return (-label.labelled_fraction, round(cell_m), name)


def choose_label(candidates: list[tuple[str, float, PatchLabel]]) -> tuple[PatchLabel, list[Overlap]]:
    """The label of the rule's file (``(name, cell_m, label)`` per candidate), its ``source`` set,
    and the candidates that disagree with it where both label the patch."""
    ranked = sorted(candidates, key=lambda c: rank(*c))
    name, _, label = ranked[0]
    label.source = name
    overlaps = []
    labelled = label.mask != NO_CODE
    for other, _, other_label in ranked[1:]:
        shared = labelled & (other_label.mask != NO_CODE)
        differing = int(np.count_nonzero(shared & (label.mask != other_label.mask)))
        if differing:
            overlaps.append(Overlap(name, other, int(shared.sum()), differing))
    return label, overlaps


def overlap_problems(overlaps: list[tuple[str, Overlap]]) -> list[str]:
    """One message per pair of files that disagree, with how many patches and pixels, and examples."""
    by_pair: dict[tuple[str, str], list[tuple[str, Overlap]]] = defaultdict(list)
    for sample, overlap in overlaps:
        by_pair[(overlap.chosen, overlap.other)].append((sample, overlap))
    problems = []
    for (chosen, other), found in sorted(by_pair.items()):
        shared = sum(o.shared_px for _, o in found)
        differing = sum(o.differing_px for _, o in found)
        examples = ", ".join(s for s, _ in found[:DISAGREEMENT_EXAMPLES])
        problems.append(
            f"{chosen} and {other} overlap with different codes: {len(found)} patches, "
            f"{differing / shared:.0%} of the pixels both label differ (e.g. {examples}); "
            f"labelled from {chosen} (more of the patch covered, then the finer cells, then the name)"
        )
    return problems
