"""A published release of a small simulated archive, once per session (tests get copies), and a
writer of label rasters in real label-product CRSs placed over its patches."""

from __future__ import annotations

from pathlib import Path

import pytest

from assets.geometry.plan_io import read_locations, read_patches
from assets.patches.release import collect_release
from assets.patches.release_publish import publish_release
from storage_schemas.paths import DataLayout
from tests.copies import copy_data_root
from tests.patches.conftest import planned_template  # noqa: F401  (the shared session fixture)
from tests.patches.helpers import planned_tiles, run_tiles


@pytest.fixture(scope="session")
def released_template(planned_template: Path, tmp_path_factory) -> Path:  # noqa: F811
    root = tmp_path_factory.mktemp("released") / "data"
    copy_data_root(planned_template, root)
    layout = DataLayout.at(root)
    run_tiles(layout, planned_tiles(layout))
    content = collect_release(layout.store, read_locations(layout.locations), read_patches(layout.patches))
    publish_release(layout, content)
    return root


@pytest.fixture
def released(released_template: Path, tmp_path: Path) -> DataLayout:
    """A fresh copy of a data root with a published release and its store."""
    root = tmp_path / "data"
    return DataLayout.at(copy_data_root(released_template, root))
