"""The plan's files, byte for byte, before and after a change to the plan code.

    PYTHONPATH=. .venv/bin/python benchmarks/plan_identity.py --data DIR [--tiles 11636] [--seed 0]
                                                              [--save FILE | --against FILE]

Why: speeding up the plan stage (``assets/geometry``) must not move a single window or patch:
locations are content-addressed and a release names its plan, so "faster" is only allowed when
the output is the same bytes. The tests in ``tests/geometry`` check properties on small archives;
this checks identity on an archive of the paper's size.

What: the catalog-only simulated archive of ``benchmarks/plan.py`` (cached under ``--data``) goes
through ``build_overlap_graph``, ``temporal_intersections`` (in-process) and ``build_patch_plan``,
and the four tables are written with the asset's own writers (``write_overlap_graph``,
``write_intersections``, ``write_plan``) into a scratch data root. The SHA-256 of each file is
printed; ``--save`` keeps them (run it on the code before the change), ``--against`` compares
with a saved run and exits 1 naming every file that differs. Ends with one ``RESULT`` line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

from plan import cached_catalog

FILES = ("overlap_graph", "intersections", "locations", "patches")


def plan_files(catalog: Path, root: Path) -> tuple[dict[str, Path], float]:
    """Write the four plan tables for ``catalog`` under the data root ``root``; their paths and
    the seconds the three stages took (writing excluded)."""
    from assets.archive.catalog_io import read_tiles
    from assets.geometry.intersections import temporal_intersections
    from assets.geometry.overlap_graph import build_overlap_graph, write_overlap_graph
    from assets.geometry.patch_plan import build_patch_plan
    from assets.geometry.plan_io import write_intersections, write_plan
    from storage_schemas.paths import DataLayout

    layout = DataLayout.at(root)
    tiles = read_tiles(catalog)
    t = time.perf_counter()
    graph = build_overlap_graph(tiles)
    found = temporal_intersections(tiles, graph)
    plan = build_patch_plan(tiles, found.table)
    seconds = time.perf_counter() - t
    paths = {name: getattr(layout, name) for name in FILES}
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    write_overlap_graph(graph, paths["overlap_graph"])
    write_intersections(found.table, paths["intersections"])
    write_plan(plan, layout)
    return paths, seconds


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the simulated catalogs (cached)")
    parser.add_argument("--tiles", type=int, default=11_636)
    parser.add_argument("--seed", type=int, default=0)
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--save", type=Path, help="write the digests here (the run before the change)")
    what.add_argument("--against", type=Path, help="compare with digests saved by --save")
    args = parser.parse_args()

    catalog, _ = cached_catalog(args.data, args.tiles, args.seed)
    with tempfile.TemporaryDirectory(prefix="sf-plan-identity-") as scratch:
        paths, seconds = plan_files(catalog, Path(scratch))
        digests = {name: sha256(path) for name, path in paths.items()}
        sizes = {name: path.stat().st_size for name, path in paths.items()}
    for name in FILES:
        print(f"{name:14} {sizes[name]:>12,} bytes  {digests[name]}")
    if args.save:
        args.save.write_text(
            json.dumps({"tiles": args.tiles, "seed": args.seed, "sha256": digests}, indent=1)
        )
    differ: list[str] = []
    if args.against:
        saved = json.loads(args.against.read_text())
        if (saved["tiles"], saved["seed"]) != (args.tiles, args.seed):
            raise SystemExit(f"{args.against}: saved for {saved['tiles']} tiles, seed {saved['seed']}")
        differ = [name for name in FILES if saved["sha256"][name] != digests[name]]
        for name in differ:
            print(f"DIFFERS: {name} ({paths[name].name}) against {args.against}", file=sys.stderr)
    print(
        f"RESULT tiles={args.tiles} plan_s={seconds:.2f} compared={int(bool(args.against))} "
        f"identical={int(not differ)}"
    )
    if differ:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
