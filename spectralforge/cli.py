"""``spectralforge``: the commands that are not Dagster jobs.

``simulate`` writes an archive (or only its catalog) for demos, tests and benchmarks; ``scan``
builds the catalog without Dagster (the same code the ``tile_catalog`` asset runs); ``summary``
prints what a catalog holds; ``validate`` checks a patch store; ``export`` writes a release in the
published SpectralEarth file layout; ``import-checkpoint`` converts published SpectralEarth weights
into an ``encoder.pt`` (``training.import_checkpoint``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from storage_schemas.label_products import LABEL_PRODUCTS
from storage_schemas.paths import DataLayout, storage_path


def _simulate(args: argparse.Namespace) -> int:
    from simulator import VISIT_MODELS, simulate_archive

    summary = simulate_archive(
        Path(args.out),
        tiles=args.tiles,
        tile_size=args.tile_size,
        catalog_only=args.catalog_only,
        seed=args.seed,
        faults=args.faults,
        workers=args.workers,
        model=VISIT_MODELS[args.visit_model],
        sensor=args.sensor,
        delivery=args.delivery,
        delivered_share=args.delivered_share,
    )
    print(summary.describe())
    if not args.catalog_only and not args.no_labels:
        from simulator.acquisitions import MISSIONS, plan_acquisitions
        from simulator.label_rasters import write_label_rasters_for_archive

        model, mission = VISIT_MODELS[args.visit_model], MISSIONS[args.sensor]
        plan = plan_acquisitions(args.tiles, args.tile_size, args.seed, model, mission)
        print(write_label_rasters_for_archive(Path(args.out), plan).describe())
    return 0


def _scan(args: argparse.Namespace) -> int:
    from concurrent.futures import ProcessPoolExecutor

    from assets.archive.scan import ArchiveError, CatalogPolicy, scan_archive

    layout = DataLayout.from_env()
    try:
        with ProcessPoolExecutor(args.workers) as pool:
            result = scan_archive(layout, CatalogPolicy(args.max_cloud_cover), pool.map, full=args.full)
    except ArchiveError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for key, value in result.stats.items():
        print(f"{key:>22}: {value:.2f}" if isinstance(value, float) else f"{key:>22}: {value}")
    return 0


def _summary(args: argparse.Namespace) -> int:
    print(catalog_summary(DataLayout.from_env()))
    return 0


def catalog_summary(layout: DataLayout) -> str:
    """What the catalog holds, in a few lines a person reads after ``make demo``."""
    from assets.archive.catalog_io import read_quarantine, read_tiles
    from storage_schemas.catalog import STATUS_PRESENT

    tiles, quarantine = read_tiles(layout.tiles), read_quarantine(layout.quarantine)
    present = tiles[tiles["status"] == STATUS_PRESENT]
    lines = [
        f"archive      {layout.archive}",
        f"found        {len(present) + len(quarantine)} products",
        f"accepted     {len(present)} tiles ({int(present['simulated'].sum())} simulated), "
        f"{len(tiles) - len(present)} missing from the archive",
        f"quarantined  {len(quarantine)}",
    ]
    for row in quarantine.sort_values("product_path").itertuples():
        lines.append(f"  - {row.product_path}: {row.reason}")
    if len(present):
        lines.append(
            f"acquired     {present['acquired'].min():%Y-%m-%d} .. {present['acquired'].max():%Y-%m-%d}, "
            f"{present['epsg'].nunique()} UTM zones, {present['datatake'].nunique()} datatakes"
        )
    if layout.locations.exists():
        from assets.geometry.plan_io import read_locations, read_patches

        n = read_locations(layout.locations)["n_timestamps"]
        patches = read_patches(layout.patches)
        lines.append(
            f"plan         {len(n)} locations, {len(patches)} patches, {(n > 1).mean() if len(n) else 0:.1%} "
            f"with more than one timestamp, longest series {n.max() if len(n) else 0}"
        )
    lines += [
        f"catalog      {layout.tiles}",
        f"quarantine   {layout.quarantine}",
        f"footprints   {layout.footprint_map}",
        f"plan         {layout.plan_dir}/ (locations.parquet, patches.parquet, intersections.parquet)",
        f"per tile     {layout.tile_quality_dir}/<tile_id>/",
    ]
    return "\n".join(lines)


def _validate(args: argparse.Namespace) -> int:
    from storage_schemas.store_validator import validate_store

    report = validate_store(storage_path(args.store), deep=args.deep)
    for key, value in report.summary.items():
        print(f"{key:<22} {value}")
    for problem in report.problems:
        print(f"PROBLEM  {problem}")
    print(f"{report.path}: {'valid' if report.ok else f'{len(report.problems)} problem(s)'}")
    return 0 if report.ok else 1


def _export(args: argparse.Namespace) -> int:
    from assets.patches.export import export_release
    from assets.patches.release_publish import ReleaseNotFoundError

    layout = DataLayout.from_env()
    if args.dataset != "spectral-earth":
        return _export_labels(layout, args)
    try:
        summary = export_release(layout, args.release, storage_path(args.out), workers=args.workers)
    except ReleaseNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"exported release {summary.version}: {summary.files} GeoTIFFs under {summary.out}/enmap/")
    return 0


def _export_labels(layout: DataLayout, args: argparse.Namespace) -> int:
    from assets.labels.export import export_label_dataset
    from storage_schemas.label_dataset import dataset_path

    try:
        summary = export_label_dataset(
            dataset_path(layout.labels, args.dataset), storage_path(args.out), args.workers
        )
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 1
    splits = ", ".join(f"{k} {v}" for k, v in summary.per_split.items())
    print(
        f"exported {summary.name} {summary.version}: {summary.samples} image/mask pairs ({splits}) "
        f"under {summary.out}"
    )
    return 0


def _import_checkpoint(args: argparse.Namespace) -> int:
    from training.import_checkpoint import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spectralforge", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser(
        "simulate", help="write a simulated EnMAP or DESIS archive (genuine names, marked SIMULATED)"
    )
    sim.add_argument(
        "--out",
        required=True,
        help="data root to write <out>/archive (EnMAP) or <out>/archive_desis (DESIS) into",
    )
    sim.add_argument(
        "--sensor",
        choices=["enmap", "desis"],
        default="enmap",
        help="enmap: global sites, 2022-2024; desis: CONUS sites (DESIS-CDL), 2019-2023, ISS orbit",
    )
    sim.add_argument("--tiles", type=int, required=True, help="number of products")
    sim.add_argument("--tile-size", type=int, default=1000, help="swath width in pixels (real: ~1000)")
    sim.add_argument("--catalog-only", action="store_true", help="write only <out>/catalog/tiles.parquet")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--faults", type=int, default=0, help="inject this many faulty products")
    sim.add_argument("--workers", type=int, default=2)
    sim.add_argument(
        "--no-labels",
        action="store_true",
        help="do not write simulated CORINE, CDL and NLCD rasters under <out>/label_sources",
    )
    sim.add_argument(
        "--visit-model",
        choices=["mission", "demo"],
        default="mission",
        help="mission: revisit statistics of the real archive; demo: few sites, each seen several times",
    )
    sim.add_argument(
        "--delivery",
        choices=["zip", "tar"],
        default="zip",
        help="how delivered products are packed: zip: delivery ZIPs nesting product ZIPs; tar: DLR order "
        "tarballs dims_op_oc_oc-en_<order>_1.tar.gz (ENMAP.HSI.L2A/<item>/<name>.ZIP, iif/, readme.html, "
        "tools/)",
    )
    sim.add_argument(
        "--delivered-share",
        type=float,
        default=None,
        help="share of the products packed into deliveries (default 0.06; 1: every product that is not "
        "faulty on purpose)",
    )
    sim.set_defaults(run=_simulate)

    scan = sub.add_parser("scan", help="scan ENMAP_ARCHIVE into $SPECTRAL_DATA_ROOT/catalog without Dagster")
    scan.add_argument("--max-cloud-cover", type=float, default=10.0)
    scan.add_argument("--full", action="store_true", help="re-read every product")
    scan.add_argument("--workers", type=int, default=2)
    scan.set_defaults(run=_scan)

    summary = sub.add_parser("summary", help="print what the catalog under SPECTRAL_DATA_ROOT holds")
    summary.set_defaults(run=_summary)

    validate = sub.add_parser("validate", help="check that a folder is an intact patch store of this layout")
    validate.add_argument("store", help="path of the store, e.g. data/stores/spectral_earth.zarr")
    validate.add_argument("--deep", action="store_true", help="also re-hash every committed patch")
    validate.set_defaults(run=_validate)

    export = sub.add_parser("export", help="write a release in a published file layout")
    export.add_argument(
        "dataset",
        choices=["spectral-earth", *LABEL_PRODUCTS],
        help="the SpectralEarth release, or a label dataset (DIR/<name>/, DIR/data/splits/<name>/)",
    )
    export.add_argument("--release", default="latest", help="release version, or 'latest'")
    export.add_argument("--out", required=True, help="folder to write the published layout into")
    export.add_argument("--workers", type=int, default=2)
    export.set_defaults(run=_export)

    imported = sub.add_parser(
        "import-checkpoint",
        help="convert published SpectralEarth weights (backbone .pth, MoCo/DINO/MAE .ckpt) into an "
        "encoder.pt; a bad file exits 2 and writes nothing",
    )
    imported.add_argument("src", help="the published file: a backbone .pth or a Lightning .ckpt")
    imported.add_argument("--model", required=True, help="our encoder name, e.g. spec_resnet50, spec_vit_s")
    imported.add_argument("--out", required=True, help="the encoder.pt to write")
    imported.add_argument(
        "--layout",
        choices=["auto", "plain", "moco", "dino", "mae"],
        default="auto",
        help="auto: from the keys",
    )
    imported.add_argument(
        "--branch",
        default=None,
        help="moco: query (default, backbone.*) or key (backbone_momentum.*); dino: teacher (default, DINO "
        "exports the teacher) or student",
    )
    imported.add_argument("--bands", type=int, default=202, help="input bands (published: 202)")
    imported.add_argument("--sensor", default="enmap", help="its pretraining sensor (published: enmap)")
    imported.add_argument(
        "--trust-pickle",
        action="store_true",
        help="load a file that pickles Python objects besides tensors (runs code from it: trusted files "
        "only); without it the file is read with torch.load(weights_only=True)",
    )
    imported.set_defaults(run=_import_checkpoint)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
