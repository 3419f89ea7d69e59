from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from assets.archive.sources import (
    FOLDER,
    ZIP,
    UnsafeArchiveError,
    check_member_names,
    find_containers,
    gdal_path_of,
)

NAME = "ENMAP01-____L2A-DT0000001049_20220612T105735Z_030_V010110_20220614T131305Z"


@pytest.mark.parametrize(
    "name", ["../evil.TIF", "a/../../evil.TIF", "/etc/passwd", "C:/x.TIF", "a\\..\\..\\x"]
)
def test_member_names_that_climb_out_are_refused(name):
    with pytest.raises(UnsafeArchiveError, match="climbs out"):
        check_member_names(["ok/file.TIF", name])


def test_ordinary_member_names_pass():
    check_member_names([f"{NAME}/{NAME}-METADATA.XML", f"{NAME}/"])


def test_containers_are_product_folders_and_zips(tmp_path: Path):
    folder = tmp_path / "2022" / "06" / NAME
    folder.mkdir(parents=True)
    (folder / f"{NAME}-METADATA.XML").write_bytes(b"<level_X/>")
    with zipfile.ZipFile(tmp_path / "2022" / "x.ZIP", "w") as z:
        z.writestr("a.txt", "x")
    (tmp_path / ".hidden").mkdir()
    found = {c.path: c.kind for c in find_containers(tmp_path)}
    assert found == {f"2022/06/{NAME}": FOLDER, "2022/x.ZIP": ZIP}


def test_gdal_paths_of_folder_zip_and_nested_zip(tmp_path: Path):
    member = f"{NAME}/{NAME}-SPECTRAL_IMAGE.TIF"
    assert gdal_path_of(tmp_path, f"2022/{NAME}", "f.TIF") == f"{tmp_path}/2022/{NAME}/f.TIF"
    assert gdal_path_of(tmp_path, "p.ZIP", member) == f"/vsizip/{tmp_path}/p.ZIP/{member}"
    assert (
        gdal_path_of(tmp_path, "d.zip!/in/p.ZIP", member)
        == f"/vsizip/{{/vsizip/{tmp_path}/d.zip/in/p.ZIP}}/{member}"
    )
