"""The loopback S3 server of a test module, and the AWS environment that points at it."""

from __future__ import annotations

import fsspec
import pytest

from tests.s3_server import S3Server, s3_server


@pytest.fixture(scope="module")
def s3(tmp_path_factory) -> S3Server:
    with s3_server(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server


@pytest.fixture
def aws(s3: S3Server, monkeypatch: pytest.MonkeyPatch):
    """The AWS environment of the module's server, in this process; fsspec's cached clients are
    dropped before and after, so each test reaches its own server with its own keys."""
    for name in ("AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_MAX_ATTEMPTS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in s3.environ.items():
        monkeypatch.setenv(name, value)
    fsspec.filesystem("s3").clear_instance_cache()
    yield monkeypatch
    fsspec.filesystem("s3").clear_instance_cache()
