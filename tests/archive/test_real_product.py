"""The reader on the real DLR sample product (../shared/realdata/enmap-product)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

import pytest

from assets.archive.catalog_io import read_quarantine
from assets.archive.metadata_xml import parse_metadata, read_metadata
from assets.archive.scan import ArchiveError, scan_archive

NAME = "ENMAP01-____L2A-DT0000326721_20170626T102020Z_001_V000204_20200406T201930Z"


@pytest.fixture
def real_xml(realdata):
    path = realdata / "enmap-product" / f"{NAME}-METADATA.XML"
    assert path.is_file(), f"{path} is missing from the real data folder"
    return path


def test_real_metadata_xml_fields(real_xml):
    with real_xml.open("rb") as f:
        meta = read_metadata(f, real_xml.stat().st_size)
    assert meta.name == NAME
    assert meta.level == "L2A"
    assert meta.corners[0] == (10.7960234, 47.7875252)  # upper_left
    assert meta.corners[2] == (11.0813528, 47.4554646)  # lower_right
    assert meta.center == (10.9392424, 47.6216059)
    assert meta.start_time == datetime(2017, 6, 26, 10, 20, 20, 999936, tzinfo=UTC)
    assert meta.stop_time == datetime(2017, 6, 26, 10, 20, 25, 545157, tzinfo=UTC)
    assert meta.covers["cloud_cover"] == 0.0
    assert meta.covers["cloud_shadow_cover"] == 8.0
    assert meta.epsg == 32632  # UTM_Zone32_North
    assert (meta.width, meta.height) == (1128, 1212)
    assert len(meta.bands) == 218
    assert meta.bands.wavelength_nm[0] == pytest.approx(423.03)
    assert meta.bands.fwhm_nm[0] == pytest.approx(6.93)
    assert meta.bands.gain[0] == pytest.approx(0.0001)
    assert meta.bands.wavelength_nm[-1] == pytest.approx(2438.6)
    assert (meta.bands.wavelength_nm[1:] > meta.bands.wavelength_nm[:-1]).sum() >= 200
    assert not meta.simulated


def test_real_metadata_partial_read_equals_full_parse(real_xml):
    data = real_xml.read_bytes()
    with real_xml.open("rb") as f:
        partial = read_metadata(f, len(data))
    full = parse_metadata(data)
    assert (partial.corners, partial.covers, partial.epsg, partial.start_time) == (
        full.corners,
        full.covers,
        full.epsg,
        full.start_time,
    )
    assert (partial.bands.wavelength_nm == full.bands.wavelength_nm).all()


def test_real_metadata_truncated_is_refused(real_xml):
    from assets.archive.metadata_xml import MetadataError

    data = real_xml.read_bytes()
    with pytest.raises(MetadataError, match="truncated"):
        parse_metadata(data[: len(data) // 2])


def test_real_qualification_zip_is_read_in_place_and_refused_for_its_empty_image(realdata, layout):
    """The qualification ZIP has a genuine METADATA.XML but a 0-byte SPECTRAL_IMAGE placeholder."""
    shutil.copy(realdata / "enmap-product" / "enmap_L2A_gtif_qualification.zip", layout.archive)
    with pytest.raises(ArchiveError, match="none of the 1 products"):
        scan_archive(layout)
    quarantine = read_quarantine(layout.quarantine)
    assert len(quarantine) == 1
    row = quarantine.iloc[0]
    assert row["product_path"] == "enmap_L2A_gtif_qualification.zip"
    assert row["product_name"] == NAME
    assert row["file"].endswith("-SPECTRAL_IMAGE.TIF")
    assert "empty SPECTRAL_IMAGE" in row["reason"]
    assert not any(p.suffix.upper() == ".XML" for p in layout.archive.rglob("*")), "nothing was extracted"
