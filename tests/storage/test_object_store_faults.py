"""Object-store faults, against the loopback S3 server: a wrong bucket and missing credentials
fail at once naming the URL; a throttling store is retried and the data lands whole; a store that
keeps failing is named, with the URL, in bounded time; and nothing half-written is ever visible."""

from __future__ import annotations

import fsspec
import numpy as np
import pytest
from dagster import DagsterInstance, materialize

from assets.archive.defs import tile_catalog
from assets.object_store import ObjectStoreError, check_reachable, gdal_s3_options, put_bytes
from assets.patches.patchify import _write_shard
from assets.resources import DaskCluster, DataRoot
from storage_schemas.paths import DataLayout, storage_path
from storage_schemas.shard_codec import encode_chunk
from tests.s3_server import S3Server
from tests.storage.flaky_proxy import FlakyProxy


@pytest.fixture(scope="module", autouse=True)
def faults_bucket(s3: S3Server) -> None:
    s3.create_bucket("faults")


def _catalog_failure(layout: DataLayout) -> str:
    result = materialize(
        [tile_catalog],
        instance=DagsterInstance.ephemeral(),
        resources={
            "data_root": DataRoot(data_root=str(layout.root), archive=str(layout.archive)),
            "dask": DaskCluster(n_workers=0),
        },
        raise_on_error=False,
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    return failure.step_failure_data.error.message if failure.step_failure_data.error else str(failure)


def test_a_wrong_bucket_fails_the_catalog_at_once_naming_the_url(aws):
    layout = DataLayout.at("s3://no-such-bucket/spectralforge", "s3://no-such-bucket/archive")
    message = _catalog_failure(layout)
    assert "s3://no-such-bucket/archive" in message and "does not exist" in message


def test_missing_credentials_are_named(aws, tmp_path):
    aws.delenv("AWS_ACCESS_KEY_ID")
    aws.delenv("AWS_SECRET_ACCESS_KEY")
    aws.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    with pytest.raises(ObjectStoreError, match=r"s3://faults/archive .*no AWS credentials"):
        check_reachable(storage_path("s3://faults/archive"), "the EnMAP archive")


def test_a_throttled_put_is_retried_and_lands_whole(s3: S3Server, aws):
    seen = {"puts": 0}

    def first_puts_fail(method: str, path: str) -> bool:
        if method != "PUT" or "/shard-retried/" not in path:
            return False
        seen["puts"] += 1
        return seen["puts"] <= 3

    with FlakyProxy(s3.endpoint, first_puts_fail) as proxy:
        aws.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        fsspec.filesystem("s3").clear_instance_cache()
        store = storage_path("s3://faults/shard-retried/store.zarr")
        chunks = [encode_chunk(np.full((3, 128, 128), i, dtype=np.int16)) for i in range(4)]
        _write_shard(store, 0, chunks)
    assert len(proxy.failed) == 3
    body = s3.client().get_object(Bucket="faults", Key="shard-retried/store.zarr/reflectance/c/0/0/0/0")
    assert body["Body"].read().startswith(chunks[0])


def test_a_store_that_keeps_failing_is_named_with_the_url(s3: S3Server, aws):
    aws.setenv("AWS_MAX_ATTEMPTS", "2")
    with FlakyProxy(s3.endpoint, lambda method, path: method == "PUT") as proxy:
        aws.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        fsspec.filesystem("s3").clear_instance_cache()
        target = storage_path("s3://faults/always-failing/commits/t.json")
        with pytest.raises(ObjectStoreError) as raised:
            put_bytes(target, b"{}")
    message = str(raised.value)
    assert message.startswith("s3://faults/always-failing/commits/t.json: PUT failed after 3 attempts")
    assert "SlowDown" in message or "reduce your request rate" in message
    listed = s3.client().list_objects_v2(Bucket="faults", Prefix="always-failing/")
    assert listed.get("KeyCount", 0) == 0, "a failed PUT leaves no object"


def test_gdal_gets_the_endpoint_from_aws_endpoint_url():
    options = gdal_s3_options({"AWS_ENDPOINT_URL": "https://minio.example.org:9000"})
    assert options["AWS_S3_ENDPOINT"] == "minio.example.org:9000"
    assert options["AWS_HTTPS"] == "YES" and options["AWS_VIRTUAL_HOSTING"] == "FALSE"
    assert "AWS_S3_ENDPOINT" not in gdal_s3_options({})
