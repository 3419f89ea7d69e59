"""Simulate a whole archive: plan, decide packaging and faults, write products, bundle deliveries.

Every decision is drawn up front from the seed (plan, covers, packaging, faults, delivery
groups), and every product is written from its own spec with its own random streams, so the
bytes do not depend on the number of workers or the order in which they finish.
"""

from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simulator import faults as fault_kinds
from simulator.acquisitions import (
    DEFAULT_VISIT_MODEL,
    MISSIONS,
    AcquisitionPlan,
    VisitModel,
    plan_acquisitions,
)
from simulator.catalog_only import write_catalog_only
from simulator.covers import COVER_KEYS, draw_covers
from simulator.packaging import (
    delivery_member,
    delivery_name,
    tar_member,
    write_delivery,
    write_tar_delivery,
    zip_time,
)
from simulator.product_writer import (
    DELIVERY,
    FOLDER,
    STAGING,
    ZIP,
    DatatakeInfo,
    ProductSpec,
    WrittenProduct,
    write_product,
)
from storage_schemas.catalog import ZIP_SEPARATOR
from storage_schemas.paths import DataLayout, realdata_dir

PACKAGING_SHARES = {FOLDER: 0.80, ZIP: 0.14, DELIVERY: 0.06}
"""How products arrive: unpacked folders, product ZIPs, or inside a delivery (ZIP or tarball)."""
DELIVERY_SIZE = (2, 4)
"""Product ZIPs per delivery (inclusive range)."""
DELIVERY_FORMATS = {
    "zip": ".zip",
    "tar": ".tar.gz",
}
"""How deliveries are packed: a delivery ZIP nesting stored product ZIPs (``zip``), or DLR's
order tarball ``dims_op_oc_oc-en_<order>_1.tar.gz`` (``tar``, EnMAP only)."""
FIRST_ORDER = 700_000_001
DELIVERIES = "deliveries"


@dataclass
class SimulationSummary:
    """What a simulation wrote: counts, paths, and the faults injected on purpose."""

    out: Path
    archive: Path | None
    catalog: Path | None
    tiles: int
    tile_size: int
    seed: int
    products: list[str] = field(default_factory=list)
    """Archive-relative ``product_path`` of every product written, in plan order."""
    folders: int = 0
    zips: int = 0
    delivered: int = 0
    deliveries: list[str] = field(default_factory=list)
    faults: dict[str, str] = field(default_factory=dict)
    """``product_path`` -> fault kind (see ``faults.FAULT_KINDS``) of each faulty product; for a
    duplicate, the path of the second copy (the first is a good product)."""
    duplicates: dict[str, str] = field(default_factory=dict)
    """Path of a duplicate copy -> path of the product it copies."""
    cloudy: int = 0
    """Products whose cloud cover is above 10% (the catalog quarantines them)."""
    endmembers: str = ""
    seconds: float = 0.0

    @property
    def good(self) -> int:
        """Products a scan should accept (all but the faulty and the cloudy ones)."""
        unusable = [p for p, kind in self.faults.items() if kind != fault_kinds.DUPLICATE]
        return len(self.products) - len(unusable) - self.cloudy

    def _delivery_kind(self) -> str:
        tar = any(d.endswith(DELIVERY_FORMATS["tar"]) for d in self.deliveries)
        return "DLR delivery tarballs" if tar else "delivery ZIPs"

    def describe(self) -> str:
        if self.archive is None:
            return (
                f"catalog-only: {self.tiles:,} tiles ({self.tile_size} px) -> {self.catalog} "
                f"in {self.seconds:.1f} s (SIMULATED)"
            )
        lines = [
            f"simulated {len(self.products)} products ({self.tile_size} px) into {self.archive} "
            f"in {self.seconds:.1f} s (SIMULATED, {self.endmembers})",
            f"  {self.folders} folders, {self.zips} ZIPs, "
            f"{self.delivered} in {len(self.deliveries)} {self._delivery_kind()}",
            f"  {self.cloudy} with more than 10% cloud, {len(self.faults)} faulty on purpose:",
        ]
        lines += [
            f"    {kind:>20}: {path}" for path, kind in sorted(self.faults.items(), key=lambda kv: kv[1])
        ]
        return "\n".join(lines)


def _datatakes(plan: AcquisitionPlan) -> dict[int, DatatakeInfo]:
    """First and last tile of every datatake (its tiles are consecutive in the plan)."""
    info = {}
    change = np.flatnonzero(np.diff(plan.datatake) != 0) + 1
    starts = np.concatenate([[0], change])
    stops = np.concatenate([change, [len(plan)]]) - 1
    for first, last in zip(starts.tolist(), stops.tolist(), strict=True):
        lon_a, lon_b = float(plan.center_lon[first]), float(plan.center_lon[last])
        if abs(lon_b - lon_a) > 180:  # the strip crosses the antimeridian
            lon_b += 360.0 if lon_b < lon_a else -360.0
        mid_lon = (lon_a + lon_b) / 2
        info[int(plan.datatake[first])] = DatatakeInfo(
            corner_lon=(
                float(plan.corner_lon[first, 0]),
                float(plan.corner_lon[last, 1]),
                float(plan.corner_lon[last, 2]),
                float(plan.corner_lon[first, 3]),
            ),
            corner_lat=(
                float(plan.corner_lat[first, 0]),
                float(plan.corner_lat[last, 1]),
                float(plan.corner_lat[last, 2]),
                float(plan.corner_lat[first, 3]),
            ),
            center_lon=round((mid_lon + 180.0) % 360.0 - 180.0, 7),
            center_lat=round((float(plan.center_lat[first]) + float(plan.center_lat[last])) / 2, 7),
            start=plan.start[first],
            stop=plan.stop[last],
        )
    return info


def packaging_shares(delivered_share: float | None = None) -> dict[str, float]:
    """``PACKAGING_SHARES``, or with ``delivered_share`` of the products in deliveries and the
    rest split between folders and product ZIPs as there."""
    if delivered_share is None:
        return PACKAGING_SHARES
    if not 0.0 <= delivered_share <= 1.0:
        raise ValueError(f"the delivered share must be between 0 and 1, got {delivered_share}")
    rest = PACKAGING_SHARES[FOLDER] + PACKAGING_SHARES[ZIP]
    scale = (1.0 - delivered_share) / rest
    return {
        FOLDER: PACKAGING_SHARES[FOLDER] * scale,
        ZIP: PACKAGING_SHARES[ZIP] * scale,
        DELIVERY: delivered_share,
    }


def delivery_file(order: int, delivery: str) -> str:
    """Archive path of a delivery."""
    return f"{DELIVERIES}/{delivery_name(order)}{DELIVERY_FORMATS[delivery]}"


def product_specs(
    plan: AcquisitionPlan,
    seed: int,
    faults: int,
    delivery: str = "zip",
    delivered_share: float | None = None,
) -> tuple[list[ProductSpec], dict[int, list[int]]]:
    """The spec of every product, and the delivery groups (order number -> plan indices).

    Faulty products are never delivered (they keep a folder or, for the zip slip, a ZIP of their
    own), so ``delivered_share=1`` puts every good product into deliveries."""
    n = len(plan)
    if not 0 <= faults <= n:
        raise ValueError(f"faults must be between 0 and the number of tiles ({n}), got {faults}")
    if delivery not in DELIVERY_FORMATS:
        raise ValueError(f"delivery must be one of {', '.join(DELIVERY_FORMATS)}, got {delivery!r}")
    if delivery == "tar" and plan.mission.sensor.name != "enmap":
        raise ValueError("tar deliveries are DLR's EnMAP orders; simulate them for EnMAP only")
    rng = np.random.default_rng([seed, 0x5041434B])  # "PACK"
    shares = np.array(list(packaging_shares(delivered_share).values()))
    packaging = np.array(list(packaging_shares(delivered_share)))[
        np.searchsorted(np.cumsum(shares), rng.random(n) * shares.sum())
    ]
    fault_of: dict[int, str] = {}
    if faults:
        chosen = np.sort(rng.choice(n, size=faults, replace=False))
        fault_of = dict(zip(chosen.tolist(), fault_kinds.fault_cycle(faults), strict=True))
    for i, kind in fault_of.items():
        packaging[i] = ZIP if kind == fault_kinds.ZIP_SLIP else FOLDER
    groups: dict[int, list[int]] = {}
    delivered = [i for i in range(n) if packaging[i] == DELIVERY]
    order = FIRST_ORDER
    while delivered:
        size = int(rng.integers(DELIVERY_SIZE[0], DELIVERY_SIZE[1] + 1))
        groups[order], delivered = delivered[:size], delivered[size:]
        order += int(rng.integers(1, 40))
    delivery_of = {i: o for o, members in groups.items() for i in members}

    covers = draw_covers(plan, seed, accepted_only=False)
    l2a, l1b = plan.product_names("L2A"), plan.product_names("L1B")
    months = plan.month_folders()
    datatakes = _datatakes(plan)
    specs = []
    for i in range(n):
        fault = fault_of.get(i)
        level = "L1B" if fault == fault_kinds.L1B_PRODUCT else "L2A"
        name = l1b[i] if level == "L1B" else l2a[i]
        kind = str(packaging[i])
        if kind == DELIVERY:
            order = delivery_of[i]
            folder = DELIVERIES
            member = tar_member(order, name, level) if delivery == "tar" else delivery_member(order, name)
            path = f"{delivery_file(order, delivery)}{ZIP_SEPARATOR}{member}"
        else:
            folder = months[i]
            path = f"{folder}/{name}" + (".ZIP" if kind == ZIP else "")
        specs.append(
            ProductSpec(
                tile=plan.tile(i),
                name=name,
                level=level,
                folder=folder,
                packaging=kind,
                product_path=path,
                targets={k: float(covers[k][i]) for k in COVER_KEYS},
                datatake=datatakes[int(plan.datatake[i])],
                seed=seed,
                fault=fault,
                mission=plan.mission,
            )
        )
    return specs, groups


_WORKER_REALDATA: Path | None = None


def _init_worker(realdata: Path | None) -> None:
    global _WORKER_REALDATA
    _WORKER_REALDATA = realdata


def _write(args: tuple[Path, ProductSpec]) -> WrittenProduct:
    archive, spec = args
    return write_product(archive, spec, _WORKER_REALDATA)


def simulate_archive(
    out: Path,
    tiles: int,
    tile_size: int = 1000,
    catalog_only: bool = False,
    seed: int = 0,
    faults: int = 0,
    workers: int = 1,
    model: VisitModel = DEFAULT_VISIT_MODEL,
    sensor: str = "enmap",
    delivery: str = "zip",
    delivered_share: float | None = None,
) -> SimulationSummary:
    """Write a simulated archive of ``sensor`` under ``<out>/archive`` (EnMAP) or
    ``<out>/archive_desis`` (DESIS), or only the sensor's ``catalog/tiles.parquet``.

    Products are genuine in layout and names and marked SIMULATED in METADATA.XML and in every
    GeoTIFF. The same arguments give the same bytes, whatever ``workers`` is. ``delivery``
    (``DELIVERY_FORMATS``) packs the delivered products (``delivered_share`` of them, default
    ``PACKAGING_SHARES``; faulty products never) as delivery ZIPs or as DLR order tarballs.
    """
    started = time.perf_counter()
    out = Path(out)
    layout = DataLayout.at(out, sensor=sensor)
    plan = plan_acquisitions(tiles, tile_size, seed, model, MISSIONS[sensor])
    if catalog_only:
        catalog = write_catalog_only(layout, plan, draw_covers(plan, seed, accepted_only=True))
        return SimulationSummary(
            out=out,
            archive=None,
            catalog=catalog,
            tiles=len(plan),
            tile_size=tile_size,
            seed=seed,
            seconds=time.perf_counter() - started,
        )

    archive = layout.archive
    archive.mkdir(parents=True, exist_ok=True)
    specs, groups = product_specs(plan, seed, faults, delivery, delivered_share)
    realdata = realdata_dir()
    jobs = [(archive, spec) for spec in specs]
    if workers > 1:
        with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(realdata,)) as pool:
            written = list(pool.map(_write, jobs, chunksize=4))
    else:
        _init_worker(realdata)
        written = [_write(job) for job in jobs]

    for order, members in groups.items():
        target = archive / delivery_file(order, delivery)
        target.parent.mkdir(parents=True, exist_ok=True)
        when = max(written[i].spec.tile.processed for i in members) + np.timedelta64(1, "D")
        if delivery == "tar":
            items = [(written[i].spec.name, written[i].spec.level, written[i].container) for i in members]
            write_tar_delivery(target, order, items, int(np.datetime64(when, "s").astype(np.int64)))
        else:
            inner = [(written[i].spec.name, written[i].container) for i in members]
            write_delivery(target, order, inner, zip_time(when))
        mtime = int(np.datetime64(when, "ns").astype(np.int64))
        os.utime(target, ns=(mtime, mtime))
    shutil.rmtree(archive / STAGING, ignore_errors=True)

    summary = SimulationSummary(
        out=out,
        archive=archive,
        catalog=None,
        tiles=len(plan),
        tile_size=tile_size,
        seed=seed,
        products=[w.spec.product_path for w in written],
        folders=sum(w.spec.packaging == FOLDER for w in written),
        zips=sum(w.spec.packaging == ZIP for w in written),
        delivered=sum(w.spec.packaging == DELIVERY for w in written),
        deliveries=[delivery_file(o, delivery) for o in groups],
        endmembers=written[0].endmembers if written else "",
    )
    for w in written:
        if w.spec.fault and w.spec.fault != fault_kinds.DUPLICATE:
            summary.faults[w.spec.product_path] = w.spec.fault
        for copy in w.extra:
            summary.faults[copy] = fault_kinds.DUPLICATE
            summary.duplicates[copy] = w.spec.product_path
        if w.spec.fault in (None, fault_kinds.DUPLICATE) and w.covers["cloud_cover"] > 10:
            summary.cloudy += 1
    summary.seconds = time.perf_counter() - started
    return summary
