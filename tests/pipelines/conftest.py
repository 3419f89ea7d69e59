"""Fixtures and steps the tile-partition tests share: a growing archive, the nightly chain, a
sensor tick and what the daemon does with it, the partition status the UI reads, and a webhook
that records the alerts it is sent."""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, build_sensor_context, materialize
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value

from assets.archive.catalog_io import read_tiles
from assets.archive.defs import enmap_tiles, tile_quality
from assets.patches.defs import tile_patches
from assets.resources import DataRoot
from pipelines.sensors import enmap_tiles_sensor
from storage_schemas.paths import DataLayout
from tests.copies import link_archive, replace_bytes
from tests.patches.conftest import PLANNED, planned_template, resources  # noqa: F401

HELD_BACK = 3
"""Products kept out of the first scan: the 'new tiles' of the next night."""


@pytest.fixture(scope="session")
def archive_template(planned_template: Path) -> Path:  # noqa: F811
    """The planned root's archive, as simulated: the pipeline never writes into an archive."""
    return planned_template / "archive"


@pytest.fixture
def growing(archive_template: Path, tmp_path: Path) -> tuple[DataLayout, Path]:
    """A data root whose archive lacks its last products; they wait in the returned folder."""
    layout = DataLayout.at(tmp_path / "data")
    link_archive(archive_template, layout.archive)
    later = tmp_path / "later"
    for product in sorted(layout.archive.glob("*/*/ENMAP01-*"))[-HELD_BACK:]:
        (later / product.parent.relative_to(layout.archive)).mkdir(parents=True, exist_ok=True)
        shutil.move(product, later / product.relative_to(layout.archive))
    return layout, later


def truncate_image(layout: DataLayout, tile_id: str, keep: float, spare: Path) -> Path:
    """Cut a catalogued product's SPECTRAL_IMAGE to ``keep`` of its size (a delivery broken after
    the scan); the intact file is kept at ``spare``. Returns the image's path."""
    row = read_tiles(layout.tiles).set_index("tile_id").loc[tile_id]
    image = layout.archive / row["product_path"] / json.loads(row["files"])["image"]
    shutil.copy(image, spare)
    replace_bytes(image, spare.read_bytes()[: int(spare.stat().st_size * keep)])
    return image


def deliver(later: Path, archive: Path) -> None:
    """The held-back products arrive in the archive."""
    shutil.copytree(later, archive, dirs_exist_ok=True)


def nightly(layout: DataLayout, instance: DagsterInstance) -> None:
    assert materialize(PLANNED, instance=instance, resources=resources(layout)).success


def first_night(layout: DataLayout, instance: DagsterInstance):
    """The nightly chain, then the sensor's first tick: its result and the tiles it registers."""
    nightly(layout, instance)
    first = tick(layout, instance)
    return first, list(first.dynamic_partitions_requests[0].partition_keys)


def tick(layout: DataLayout, instance: DagsterInstance, cursor: str | None = None):
    context = build_sensor_context(
        instance=instance, cursor=cursor, resources={"data_root": DataRoot(data_root=str(layout.root))}
    )
    return enmap_tiles_sensor(context)


def run_requests(
    layout: DataLayout, instance: DagsterInstance, result, with_resources: dict | None = None
) -> list:
    """What the daemon does with a tick's result: add the partitions, launch the runs (with
    ``with_resources``, else the in-process test resources)."""
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return [
        materialize(
            [tile_quality, tile_patches],
            instance=instance,
            resources=with_resources or resources(layout),
            tags=request.tags,
            raise_on_error=False,
        )
        for request in result.run_requests
    ]


def partition_status(instance: DagsterInstance, key: AssetKey) -> tuple[set[str], set[str]]:
    """(materialised, failed) partitions as the UI's partition view reads them."""
    value = get_and_update_asset_status_cache_value(instance, key, enmap_tiles)
    materialised = value.deserialize_materialized_partition_subsets(enmap_tiles)
    failed = value.deserialize_failed_partition_subsets(enmap_tiles)
    return set(materialised.get_partition_keys()), set(failed.get_partition_keys())


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.headers["Content-Type"], json.loads(body)))
        self.send_response(self.server.status)
        self.end_headers()

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def webhook():
    """A webhook on 127.0.0.1 that records what it is sent and answers ``server.status``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received, server.status = [], 200
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/spectralforge"
    yield server
    server.shutdown()
    server.server_close()
