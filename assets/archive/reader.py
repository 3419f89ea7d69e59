"""Read L2A products as delivered (EnMAP, DESIS: see ``storage_schemas.sensors``) into product
records, or refuse them with a reason.

The unit of work is a container (a product folder, a ZIP file or a delivery tarball, see
``sources``). Reading one costs a stat of its files, the head and tail of METADATA.XML, the
directory of the GeoTIFF and a GDAL open: no pixel is read. A delivery tarball is first unpacked
into the staging folder (``deliveries``; once per version of the tarball), then read from there.
Every fault becomes a :class:`Refusal` that names the file and what is wrong with it; no
exception escapes for a bad product, so one bad product never stops a scan.
"""

from __future__ import annotations

import zipfile
from collections import defaultdict
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

import rasterio
from rasterio.errors import RasterioError

from assets.archive.content_hash import ContentChange, content_changes
from assets.archive.deliveries import DeliveryError, StagedDelivery, current_staging, stage_delivery
from assets.archive.footprint import FootprintError, footprint_from_corners
from assets.archive.metadata_readers import METADATA_READERS
from assets.archive.metadata_xml import MetadataError
from assets.archive.record import Fingerprint, ProductRecord, Refusal
from assets.archive.sources import (
    FOLDER,
    TAR,
    Container,
    FolderFiles,
    ProductFiles,
    TreeFiles,
    UnsafeArchiveError,
    ZipFiles,
    check_member_names,
    folder_checksum,
    folder_entries,
    gdal_env,
    is_zip_name,
    nested_path,
    open_zip,
    staged_folder,
    vsi_nested,
    zip_checksum,
)
from assets.archive.tiff_extent import NotATiffError, tiff_data_extent
from assets.environment_faults import writing_under
from assets.object_store import gdal_path
from storage_schemas.sensors import CLEANING_MASKS, ENMAP, Sensor

REQUIRED_MASKS = CLEANING_MASKS
"""Masks the patch stage cleans with; a product without the files holding them cannot be cleaned."""
ACCEPTED_DTYPES = ("int16", "float32")


class ProductError(ValueError):
    """A fault in one file of a product."""

    def __init__(self, file: str | None, reason: str):
        super().__init__(f"{file}: {reason}" if file else reason)
        self.file = file
        self.reason = reason


@dataclass
class ContainerResult:
    """What reading one container gave: records and refusals, or 'unchanged' (checksum equal)."""

    container: Container
    checksum: str = ""
    unchanged: bool = False
    records: list[ProductRecord] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    ignored: dict[str, int] = field(default_factory=dict)
    """Members of a delivery tarball ignored on purpose, per kind (iif, readme, tools, folders)."""


def file_kind(member: str, sensor: Sensor = ENMAP) -> str | None:
    base = member.rsplit("/", 1)[-1]
    for suffix, kind in sensor.suffix_kinds():
        if base.endswith(suffix):
            return kind
    return None


def read_container(
    root: Path,
    container: Container,
    previous_checksum: str | None = None,
    sensor: Sensor = ENMAP,
    recorded: Sequence[RecordedSources] = (),
) -> ContainerResult:
    """Read every product of ``sensor`` in a container; never raises for a bad product or a bad
    container. ``recorded``: the file digests the tile step recorded for products of this
    container; their files are hashed whole and a product whose bytes changed is refused as
    damaged (:mod:`assets.archive.content_hash`), however equal the cheap checksum is."""
    result = ContainerResult(container)
    damage: dict[tuple[str, str], list[ContentChange]] = {}
    try:
        with gdal_env():
            if container.kind == FOLDER:
                folder = root / container.path
                entries = folder_entries(folder)  # listed once for the checksum and the read
                result.checksum = folder_checksum(folder, sensor, entries)
                damage = _damage(root, recorded)
                if result.checksum == previous_checksum and not damage:
                    result.unchanged = True
                    return result
                _read_products(FolderFiles(folder, entries), container.path, result, folder.name, sensor)
            elif container.kind == TAR:
                damage = _read_delivery(root, container, previous_checksum, result, sensor, recorded)
                if result.unchanged:
                    return result
            else:
                with ExitStack() as stack:
                    archive = open_zip(root / container.path, stack)
                    result.checksum = zip_checksum(archive)
                    damage = _damage(root, recorded)
                    if result.checksum == previous_checksum and not damage:
                        result.unchanged = True
                        return result
                    _read_zip(archive, gdal_path(root / container.path), container.path, result, sensor)
            _refuse_damaged(result, damage)
    except (
        OSError,
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        UnsafeArchiveError,
        DeliveryError,
        RuntimeError,
    ) as exc:
        fault = str(exc) if isinstance(exc, UnsafeArchiveError | DeliveryError) else f"unreadable: {exc}"
        result.records.clear()
        result.refusals = [Refusal(container.path, fault, file=container.path)]
    fingerprint = Fingerprint(container.size, container.mtime_ns, result.checksum)
    # the cheap checksum cannot see the damage: a damaged product's refusal keeps a checksum no
    # container has, so that its next change of size or mtime (a restore) is read again in full
    damaged = replace(fingerprint, checksum=DAMAGED_CHECKSUM)
    result.refusals = [
        _with_fingerprint(q, damaged if (q.product_path, q.product_name) in damage else fingerprint)
        for q in result.refusals
    ]
    result.records = [_record_fingerprint(r, fingerprint) for r in result.records]
    return result


DAMAGED_CHECKSUM = "content-changed"
"""The fingerprint checksum of a product refused for content that changed under its name."""
RecordedSources = tuple[str, str, dict[str, str]]
"""(product_path, product_name, member -> digest) of a product the tile step has hashed."""


def _damage(root: Path, recorded: Sequence[RecordedSources]) -> dict[tuple[str, str], list[ContentChange]]:
    """(product_path, product_name) -> the files whose content changed, for damaged products."""
    found = {}
    for product_path, name, sources in recorded:
        if changes := content_changes(root, product_path, sources):
            found[(product_path, name)] = changes
    return found


def _refuse_damaged(result: ContainerResult, damage: dict[tuple[str, str], list[ContentChange]]) -> None:
    """Damaged products are refused (quarantined, so broken in the catalog) whatever else their
    read found: the message names the first changed file and both digests."""
    if not damage:
        return
    result.records = [r for r in result.records if (r.product_path, r.product_name) not in damage]
    result.refusals = [q for q in result.refusals if (q.product_path, q.product_name) not in damage]
    for (product_path, name), changes in sorted(damage.items()):
        more = f" (and {len(changes) - 1} more of its files)" if len(changes) > 1 else ""
        reason = changes[0].describe() + more
        result.refusals.append(Refusal(product_path, reason, file=changes[0].file, product_name=name))


def _with_fingerprint(q: Refusal, fp: Fingerprint) -> Refusal:
    return Refusal(q.product_path, q.reason, q.file, q.product_name, fp)


def _record_fingerprint(r: ProductRecord, fp: Fingerprint) -> ProductRecord:
    return replace(r, fingerprint=fp)


def staged_delivery(root: Path, container: Container, sensor: Sensor = ENMAP) -> StagedDelivery:
    """The delivery tarball ``container`` unpacked in the staging folder: as it is when its
    manifest names this size and mtime of the tarball, else unpacked (again) now. DeliveryError
    for a bad tarball; EnvironmentFault (naming the staging folder) when the folder cannot be written
    (no space, permission, read-only file system), which fails the scan instead of quarantining."""
    folder = staged_folder(root, container.path)
    staged = current_staging(folder, container.size, container.mtime_ns)
    if staged is not None:
        return staged
    try:
        with writing_under(folder.parent, "an unpacked delivery"):  # no space: not the tarball's fault
            return stage_delivery(
                root / container.path, folder, container.size, container.mtime_ns, sensor.accepted_level
            )
    except OSError as exc:
        raise OSError(f"cannot unpack the delivery into the staging folder {folder}: {exc}") from None


def _read_delivery(
    root: Path,
    container: Container,
    previous_checksum: str | None,
    result: ContainerResult,
    sensor: Sensor,
    recorded: Sequence[RecordedSources],
) -> dict[tuple[str, str], list[ContentChange]]:
    """Read the products of a delivery tarball from its staged copy; returns the damaged ones."""
    staged = staged_delivery(root, container, sensor)
    result.checksum = staged.checksum
    result.ignored = staged.ignored
    damage = _damage(root, recorded)
    if staged.checksum == previous_checksum and not damage:
        result.unchanged = True
        return damage
    for member, reason in staged.refusals:
        result.refusals.append(Refusal(nested_path(container.path, member), reason, file=member))
    for member in staged.products:
        product_path = nested_path(container.path, member)
        found = _read_products(TreeFiles(staged.folder / member), product_path, result, None, sensor)
        if not found:
            result.refusals.append(
                Refusal(product_path, f"ZIP in the delivery holds no {sensor.mission} product files", member)
            )
    return damage


def _read_zip(
    archive: zipfile.ZipFile, vsi: str, product_path: str, result: ContainerResult, sensor: Sensor
) -> None:
    names = [i.filename for i in archive.infolist()]
    check_member_names(names)
    files = ZipFiles(archive, vsi)
    inner_zips = [n for n in names if is_zip_name(n)]
    for inner in inner_zips:
        inner_path = nested_path(product_path, inner)
        try:
            with archive.open(inner) as stream, zipfile.ZipFile(stream) as nested:
                _read_zip(nested, vsi_nested(vsi, inner), inner_path, result, sensor)
        except (zipfile.BadZipFile, OSError) as exc:
            result.refusals.append(Refusal(inner_path, f"unreadable ZIP: {exc}", file=inner))
    found = _read_products(files, product_path, result, None, sensor, allow_empty=bool(inner_zips))
    if not found and not inner_zips:
        result.refusals.append(
            Refusal(product_path, f"holds no {sensor.mission} product files", file=product_path)
        )


def _read_products(
    files: ProductFiles,
    product_path: str,
    result: ContainerResult,
    folder_name: str | None,
    sensor: Sensor,
    allow_empty=False,
) -> int:
    sizes = files.names()
    groups: dict[str, dict[str, str]] = defaultdict(dict)
    for member in sizes:
        name = sensor.product_name_of(member)
        kind = file_kind(member, sensor)
        if name and kind:
            groups[name][kind] = member
    if not groups and folder_name is not None and not allow_empty:
        result.refusals.append(
            Refusal(
                product_path, "product folder holds no METADATA.XML or other product files", file=product_path
            )
        )
    for name, members in sorted(groups.items()):
        try:
            result.records.append(read_product(files, name, members, sizes, product_path, sensor))
        except ProductError as exc:
            result.refusals.append(Refusal(product_path, exc.reason, file=exc.file, product_name=name))
    return len(groups)


_PENDING = Fingerprint(-1, -1, "")


def read_product(
    files: ProductFiles,
    name: str,
    members: dict[str, str],
    sizes: dict[str, int],
    product_path: str,
    sensor: Sensor = ENMAP,
) -> ProductRecord:
    """Read one product's metadata and check its image; raise ProductError naming the fault."""
    accepted = sensor.accepted_level
    try:
        parsed = sensor.parse_name(name)
    except ValueError as exc:
        raise ProductError(name, str(exc)) from None
    if parsed.level != accepted:
        raise ProductError(name, f"is a {parsed.level} product; only {accepted} products are accepted")

    xml = members.get("metadata")
    if xml is None:
        raise ProductError(name + sensor.metadata_suffix, "missing: the product has no METADATA.XML")
    try:
        with files.open(xml) as stream:
            meta = METADATA_READERS[sensor.metadata_format](stream, sizes[xml])
    except MetadataError as exc:
        raise ProductError(xml, f"malformed METADATA.XML: {exc}") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ProductError(xml, f"unreadable: {exc}") from None
    if meta.name != name:
        raise ProductError(xml, f"describes product {meta.name!r}, but its files are named {name!r}")
    if meta.level != accepted:
        raise ProductError(xml, f"is a {meta.level} product; only {accepted} products are accepted")
    try:
        footprint, split = footprint_from_corners(meta.corners)
    except FootprintError as exc:
        raise ProductError(xml, str(exc)) from None

    image = members.get("image")
    if image is None:
        raise ProductError(name + sensor.image_suffixes[0], "missing: the product has no SPECTRAL_IMAGE")
    grid = _check_image(files, image, sizes[image], meta)
    for kind in sensor.mask_files():
        member = members.get(kind)
        if member is None:
            raise ProductError(name + sensor.files[kind], "missing quality mask")
        if sizes[member] == 0:
            raise ProductError(member, "empty quality mask (0 bytes)")

    return ProductRecord(
        tile_id=parsed.tile_id,
        product_name=name,
        datatake=parsed.datatake,
        tile_number=parsed.tile_number,
        processor_version=parsed.processor_version,
        processed=parsed.processed,
        level=meta.level,
        acquired=meta.start_time,
        stop_time=meta.stop_time,
        covers=meta.covers,
        epsg=meta.epsg,
        width=meta.width,
        height=meta.height,
        n_bands=len(meta.bands),
        dtype=grid["dtype"],
        pixel_size=grid["pixel_size"],
        grid_x0=grid["x0"],
        grid_y0=grid["y0"],
        center_lon=meta.center[0],
        center_lat=meta.center[1],
        footprint=footprint,
        crosses_antimeridian=split,
        bands=meta.bands,
        product_path=product_path,
        files=dict(sorted(members.items())),
        simulated=meta.simulated,
        fingerprint=_PENDING,
    )


def _check_image(files: ProductFiles, image: str, size: int, meta) -> dict:
    if size == 0:
        raise ProductError(image, "empty SPECTRAL_IMAGE (0 bytes)")
    try:
        with files.open(image) as stream:
            extent = tiff_data_extent(stream)
    except (NotATiffError, OSError, zipfile.BadZipFile) as exc:
        raise ProductError(image, f"unreadable GeoTIFF: {exc}") from None
    if extent > size:
        raise ProductError(
            image,
            f"truncated GeoTIFF: its pixel data runs to byte {extent:,} but the file has {size:,} bytes",
        )
    try:
        with rasterio.open(files.gdal_path(image)) as ds:
            count, width, height = ds.count, ds.width, ds.height
            dtype, transform = ds.dtypes[0], ds.transform
            epsg = ds.crs.to_epsg() if ds.crs else None
    except RasterioError as exc:
        raise ProductError(image, f"unreadable GeoTIFF: {exc}") from None
    if count != len(meta.bands):
        raise ProductError(
            image, f"has {count} bands but METADATA.XML describes {len(meta.bands)} (bandCharacterisation)"
        )
    if (width, height) != (meta.width, meta.height):
        raise ProductError(
            image,
            f"is {width} x {height} px but METADATA.XML says {meta.width} x {meta.height} "
            "(widthOfOrthoScene x heightOfOrthoScene)",
        )
    if epsg != meta.epsg:
        raise ProductError(image, f"is in EPSG:{epsg} but METADATA.XML says EPSG:{meta.epsg}")
    if dtype not in ACCEPTED_DTYPES:
        raise ProductError(image, f"has data type {dtype}; expected one of {', '.join(ACCEPTED_DTYPES)}")
    if transform.b != 0 or transform.d != 0 or transform.a != -transform.e:
        raise ProductError(image, f"has a rotated or non-square pixel grid: {tuple(transform)[:6]}")
    return {"dtype": dtype, "pixel_size": transform.a, "x0": transform.c, "y0": transform.f}
