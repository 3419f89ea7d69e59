"""Write a product's METADATA.XML in DLR's operational layout, about 4 MB, in milliseconds.

The layout follows the real sample (``realdata/enmap-product/*-METADATA.XML``) section by
section: ``metadata``, ``processing``, ``base``, ``specific`` (footprint, times, quality flags,
band characterisation, scene size) and ``product`` with its bulky parts, which are 95% of a real
file and which is what makes reading METADATA.XML slow: orbit state vectors at 1 s spacing for a
whole orbit (``calibration/orbit``), attitude quaternions, per-band RPC coefficients
(``navigation/RPC/bandID``), per-line frame times (``time``), then ``ortho``,
``productFileInformation`` and ``bandStatistics`` at the end, as in real files. A reader that
parses only the head and the tail (``assets.archive.metadata_xml``) is tested against realistic
sizes and positions this way.

The document is built from strings (one ``%`` format per bulky section), not a DOM: a 4 MB file
costs about 30 ms. Values that the catalog reads are written so they read back exactly: degrees
with ``repr`` of the plan's rounded doubles, times in microseconds, covers in whole percent.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from assets.archive.metadata_xml import SIMULATED_MARK
from simulator.acquisitions import (
    EARTH_RADIUS_M,
    EARTH_ROTATION_RAD_S,
    GM_M3_S2,
    INCLINATION_DEG,
    LINE_TIME_S,
    ORBIT_ALTITUDE_M,
    PROCESSOR_VERSION,
    Tile,
)
from simulator.scene import QUICKLOOK_SWIR_NM, QUICKLOOK_VNIR_NM
from simulator.sun import solar_position
from storage_schemas.enmap_product import BandTable, epsg_to_projection
from storage_schemas.sensors import ENMAP, Sensor

SIMULATED_COMMENT = f"{SIMULATED_MARK} by SpectralForge, not a DLR product"
COPYRIGHT = f"(c) DLR EnMAP format; content {SIMULATED_MARK} by SpectralForge, not a DLR product"
SCHEMA = "metadata_Lx_00-06-00.xsd"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
ORBIT_SECONDS = 6030
"""State vectors per file: one orbit at 1 s spacing, as in the real sample (6030 vectors, 3 MB)."""
GPS_EPOCH = np.datetime64("1980-01-06T00:00:00", "us")
GPS_LEAP_SECONDS = 18
_CORNERS = ("upper_left", "lower_left", "lower_right", "upper_right")


@dataclass(frozen=True)
class MetadataContent:
    """What METADATA.XML says beyond the plan: measured covers, statistics, file sizes."""

    name: str
    level: str
    covers: dict[str, float]
    water_cover: float
    band_mean: np.ndarray
    band_std: np.ndarray
    file_sizes: dict[str, int]
    """File name -> bytes, for ``productFileInformation`` (the XML's own size is estimated)."""
    datatake_corner_lon: tuple[float, ...]
    datatake_corner_lat: tuple[float, ...]
    datatake_center_lon: float
    datatake_center_lat: float
    datatake_start: np.datetime64
    datatake_stop: np.datetime64
    biome: str = "mixed"
    endmembers: str = "analytic endmembers"


def _t(value: np.datetime64) -> str:
    return f"{np.datetime_as_string(np.datetime64(value, 'us'), unit='us')}Z"


def _deg(value: float) -> str:
    """Exactly the double the plan holds: repr round-trips, and the plan rounded to 7 decimals."""
    return repr(float(value))


def _point(frame: str, lon: float, lat: float, time: str, indent: str) -> str:
    return (
        f"{indent}<point>\n"
        f"{indent}  <frame>{frame}</frame>\n"
        f'{indent}  <latitude unit="DEG">{_deg(lat)}</latitude>\n'
        f'{indent}  <longitude unit="DEG">{_deg(lon)}</longitude>\n'
        f"{indent}  <utcTime>{time}</utcTime>\n"
        f"{indent}</point>\n"
    )


def _polygon(lons, lats, center, times, indent: str) -> str:
    """Corners in DLR's frame order, upper_left repeated to close the ring, then the centre."""
    parts = [_point(f, lons[k], lats[k], times[k], indent) for k, f in enumerate(_CORNERS)]
    parts.append(_point("upper_left", lons[0], lats[0], times[0], indent))
    parts.append(_point("center", center[0], center[1], times[4], indent))
    return "".join(parts)


def _angles(tag: str, values: dict[str, float], indent: str) -> str:
    inner = "".join(
        f'{indent}  <{k} unit="DEG">{values[k]:.6f}</{k}>\n'
        for k in ("upper_left", "upper_right", "lower_right", "lower_left", "center")
    )
    return f"{indent}<{tag}>\n{inner}{indent}</{tag}>\n"


def _band_characterisation(bands: BandTable) -> str:
    rows = []
    for k in range(len(bands)):
        rows.append(
            f'      <bandID number="{k + 1}">\n'
            f"        <wavelengthCenterOfBand>{bands.wavelength_nm[k]:g}</wavelengthCenterOfBand>\n"
            f"        <FWHMOfBand>{bands.fwhm_nm[k]:g}</FWHMOfBand>\n"
            f"        <GainOfBand>{bands.gain[k]:g}</GainOfBand>\n"
            f"        <OffsetOfBand>{bands.offset[k]:g}</OffsetOfBand>\n"
            "      </bandID>\n"
        )
    return "".join(rows)


_STATE_VECTOR = (
    '        <stateVector num="%d" maneuver="0" qualInd="1">\n'
    "          <timeUTC>%sZ</timeUTC>\n"
    "          <timeGPS>%d</timeGPS>\n"
    "          <timeGPSFraction>0.0</timeGPSFraction>\n"
    "          <posX>%.5f</posX>\n"
    "          <posY>%.5f</posY>\n"
    "          <posZ>%.5f</posZ>\n"
    "          <velX>%.8f</velX>\n"
    "          <velY>%.8f</velY>\n"
    "          <velZ>%.8f</velZ>\n"
    "        </stateVector>\n"
)


def orbit_state_vectors(
    center_lon: float, center_lat: float, mid: np.datetime64, seconds: int = ORBIT_SECONDS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Times (datetime64[us]) and ECEF positions/velocities (m, m/s), 1 s apart, of a circular
    orbit of the mission's inclination whose descending pass is over the given point at ``mid``."""
    t_mid = np.datetime64(mid, "s")
    times = t_mid - np.timedelta64(seconds // 2, "s") + np.arange(seconds).astype("timedelta64[s]")
    dt = (times - np.datetime64(mid, "us")).astype(np.float64) / 1e6
    r = EARTH_RADIUS_M + ORBIT_ALTITUDE_M
    n = np.sqrt(GM_M3_S2 / r**3)
    inc = np.radians(INCLINATION_DEG)
    lat, lon = np.radians(center_lat), np.radians(center_lon)
    u0 = np.pi - np.arcsin(np.clip(np.sin(lat) / np.sin(inc), -1, 1))  # descending: u in (90, 270) deg
    node = lon - np.arctan2(np.sin(u0) * np.cos(inc), np.cos(u0))
    u = u0 + n * dt
    x = r * (np.cos(node) * np.cos(u) - np.sin(node) * np.sin(u) * np.cos(inc))
    y = r * (np.sin(node) * np.cos(u) + np.cos(node) * np.sin(u) * np.cos(inc))
    z = r * np.sin(u) * np.sin(inc)
    vx = r * n * (-np.cos(node) * np.sin(u) - np.sin(node) * np.cos(u) * np.cos(inc))
    vy = r * n * (-np.sin(node) * np.sin(u) + np.cos(node) * np.cos(u) * np.cos(inc))
    vz = r * n * np.cos(u) * np.sin(inc)
    theta = -EARTH_ROTATION_RAD_S * dt  # inertial -> Earth-fixed (frames aligned at mid time)
    c, s = np.cos(theta), np.sin(theta)
    px, py = c * x - s * y, s * x + c * y
    qx, qy = c * vx - s * vy, s * vx + c * vy
    qx, qy = qx + EARTH_ROTATION_RAD_S * py, qy - EARTH_ROTATION_RAD_S * px
    return times, np.stack([px, py, z], axis=1), np.stack([qx, qy, vz], axis=1)


@lru_cache(maxsize=4)
def _orbit(datatake: int, center_lon: float, center_lat: float, mid_us: int) -> str:
    """The orbit section; the same for every tile of a datatake (as in real products), so cached:
    consecutive tiles of a strip are written one after the other."""
    times, pos, vel = orbit_state_vectors(center_lon, center_lat, np.datetime64(mid_us, "us"))
    n = len(times)
    values = np.empty((n, 9), dtype=object)
    values[:, 0] = np.arange(1, n + 1).tolist()
    values[:, 1] = np.datetime_as_string(times.astype("datetime64[us]"), unit="us").tolist()
    gps = (times.astype("datetime64[s]") - GPS_EPOCH.astype("datetime64[s]")).astype(
        np.int64
    ) + GPS_LEAP_SECONDS
    values[:, 2] = gps.tolist()
    values[:, 3:6] = pos
    values[:, 6:9] = vel
    body = (_STATE_VECTOR * n) % tuple(values.ravel().tolist())
    return (
        "      <orbit>\n"
        + body
        + f"        <absOrbit>{13842 + datatake // 3}</absOrbit>\n"
        + "        <phase>1</phase>\n        <timeInterval>1.0</timeInterval>\n"
        "        <positionAccuracy>10.0</positionAccuracy>\n"
        "        <velocityAccuracy>0.01</velocityAccuracy>\n"
        "      </orbit>\n"
    )


_ATTITUDE = (
    '        <stateVector num="%d" sensor="STS1" qualInd="1">\n'
    "          <timeUTC>%sZ</timeUTC>\n"
    "          <timeGPS>%d</timeGPS>\n"
    "          <timeGPSFraction>0.00359988212585</timeGPSFraction>\n"
    "          <q0>%.12f</q0>\n"
    "          <q1>%.12f</q1>\n"
    "          <q2>%.12f</q2>\n"
    "          <q3>%.12f</q3>\n"
    "        </stateVector>\n"
)


def _attitude(tile: Tile, content: MetadataContent, rng: np.random.Generator) -> str:
    start = np.datetime64(content.datatake_start, "s") - np.timedelta64(14, "s")
    seconds = int((np.datetime64(content.datatake_stop, "s") - start).astype(np.int64)) + 18
    times = start + np.arange(seconds).astype("timedelta64[s]") + np.timedelta64(3600, "us")
    q = np.array([0.930678, 0.125109, -0.329259, 0.098866]) + np.cumsum(
        rng.normal(0, 2e-4, (seconds, 4)), axis=0
    )
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    gps = (times.astype("datetime64[s]") - GPS_EPOCH.astype("datetime64[s]")).astype(
        np.int64
    ) + GPS_LEAP_SECONDS
    values = np.empty((seconds, 7), dtype=object)
    values[:, 0] = np.arange(1, seconds + 1).tolist()
    values[:, 1] = np.datetime_as_string(times, unit="us").tolist()
    values[:, 2] = gps.tolist()
    values[:, 3:] = q
    return (
        "      <attitude>\n        <attitudeDataRefFrames>\n          <fromFrame>MECH</fromFrame>\n"
        "          <toFrame>WGS84</toFrame>\n        </attitudeDataRefFrames>\n"
        + (_ATTITUDE * seconds) % tuple(values.ravel().tolist())
        + "        <accuracy>0.01</accuracy>\n        <timeInterval>1.000</timeInterval>\n      </attitude>\n"
    )


_RPC_TERMS = [
    f"{kind}_{part}_{k:02d}" for kind in ("ROW", "COL") for part in ("NUM", "DEN") for k in range(1, 21)
]
_RPC_HEAD = (
    '        <bandID number="%d">\n'
    "          <ROW_OFF>%.10f</ROW_OFF>\n          <COL_OFF>%.10f</COL_OFF>\n"
    "          <LAT_OFF>%.10f</LAT_OFF>\n          <LONG_OFF>%.10f</LONG_OFF>\n"
    "          <HEIGHT_OFF>%.10f</HEIGHT_OFF>\n          <ROW_SCALE>%.10f</ROW_SCALE>\n"
    "          <COL_SCALE>%.10f</COL_SCALE>\n          <LAT_SCALE>%.10f</LAT_SCALE>\n"
    "          <LONG_SCALE>%.10f</LONG_SCALE>\n          <HEIGHT_SCALE>%.10f</HEIGHT_SCALE>\n"
)
VNIR_MAX_NM = 1000.0
"""Bands up to here come from the VNIR detector (the two detectors overlap near 900-1000 nm)."""


def _rpc(tile: Tile, wavelength_nm: np.ndarray, rng: np.random.Generator) -> str:
    """Rational polynomial coefficients per band. The linear terms follow the scene rotation and
    the rest are small; the polynomial is one per detector (VNIR, SWIR) and the offsets differ
    slightly per band (band-to-band registration). One polynomial text per detector keeps this
    1 MB section cheap to write."""
    rot = np.radians(tile.heading_deg - 180.0)
    polynomials = []
    for _ in range(2):
        c = rng.normal(0, 1e-2, 80) * np.tile(np.logspace(-1, -4, 20), 4)
        c[0], c[1], c[2] = rng.normal(0, 5e-3), -np.sin(rot), -np.cos(rot)  # ROW_NUM 01..03
        c[40], c[41], c[42] = rng.normal(0, 2e-2), np.cos(rot), -np.sin(rot)  # COL_NUM 01..03
        c[20] = c[60] = 1.0  # ROW_DEN_01, COL_DEN_01
        polynomials.append(
            "".join(f"          <{t}>{v:.15e}</{t}>\n" for t, v in zip(_RPC_TERMS, c, strict=True))
            + "        </bandID>\n"
        )
    half_deg = tile.side_m / 2 / 111_320.0
    head = np.array(
        [
            tile.height / 2,
            tile.width / 2,
            tile.center_lat,
            tile.center_lon,
            500.0,
            tile.height / 2 + 5,
            tile.width / 2 + 5,
            half_deg,
            half_deg / max(np.cos(np.radians(tile.center_lat)), 0.05),
            1500.0,
        ]
    )
    n_bands = len(wavelength_nm)
    jitter = rng.normal(0, 1e-6, (n_bands, 10)) * np.array([0, 0, 1, 1, 100, 0, 0, 0, 0, 0])
    heads = (head[None, :] + jitter).tolist()
    parts = ["      <RPC>\n"]
    for k, (values, wl) in enumerate(zip(heads, wavelength_nm.tolist(), strict=True)):
        parts.append(_RPC_HEAD % (k + 1, *values))
        parts.append(polynomials[0 if wl <= VNIR_MAX_NM else 1])
    parts.append("      </RPC>\n")
    return "".join(parts)


_NAVIGATION_HEAD = (
    "    <navigation>\n      <boresight>\n"
    + "".join(
        f"        <{sensor}>\n          <instrumentMountingAngles>\n            <initialValues>\n"
        '              <OMEGA_INIT unit="DEG">0.0</OMEGA_INIT>\n'
        '              <PHI_INIT unit="DEG">0.0</PHI_INIT>\n'
        '              <KAPPA_INIT unit="DEG">0.0</KAPPA_INIT>\n'
        "            </initialValues>\n            <variationValues>\n"
        + "".join(f"              <N_{a}_{k}>0.0</N_{a}_{k}>\n" for k in range(11) for a in "XYZ")
        + "            </variationValues>\n            <estimatedValues>\n"
        '              <OMEGA_EST unit="DEG">0.002003</OMEGA_EST>\n'
        '              <PHI_EST unit="DEG">-0.002993</PHI_EST>\n'
        '              <KAPPA_EST unit="DEG">0.00892</KAPPA_EST>\n'
        "            </estimatedValues>\n          </instrumentMountingAngles>\n"
        f"        </{sensor}>\n"
        for sensor in ("swir", "vnir")
    )
    + "      </boresight>\n      <interiorOrientation>\n"
    + "".join(
        f"        <{sensor}>\n"
        + "".join(
            f"          <{c}_{k}_{a}>{v}</{c}_{k}_{a}>\n"
            for c, vals in (
                ("A", ("0.026857394", "-1.317634195")),
                ("B", ("-0.000107322", "0.002627372")),
                ("C", ("1.07215e-07", "5.262e-09")),
            )
            for k in (1, 2, 3)
            for a, v in zip("XY", vals if k == 1 else ("0.0", "0.0"), strict=True)
        )
        + f"        </{sensor}>\n"
        for sensor in ("vnir", "swir")
    )
    + "      </interiorOrientation>\n"
)


def _frame_times(tile: Tile, rng: np.random.Generator) -> str:
    lines = tile.tile_size
    times = tile.start + np.round(np.arange(lines) * LINE_TIME_S * 1e6).astype("timedelta64[us]")
    stamps = np.datetime_as_string(times, unit="us").tolist()
    numbers = list(range(1, lines + 1))
    swir = "".join(
        f'        <frameTime number="{k}">{t}Z</frameTime>\n' for k, t in zip(numbers, stamps, strict=True)
    )
    jitter = np.abs(rng.normal(5e-5, 1e-5, lines)).tolist()
    vnir = "".join(
        f'        <frameTime number="{k}">{t}Z</frameTime>\n        <jitter number="{k}">{j:.12g}</jitter>\n'
        for k, t, j in zip(numbers, stamps, jitter, strict=True)
    )
    return f"    <time>\n      <swir>\n{swir}      </swir>\n      <vnir>\n{vnir}      </vnir>\n    </time>\n"


def _file_information(content: MetadataContent) -> str:
    rows = []
    for k, (name, size) in enumerate(sorted(content.file_sizes.items()), start=1):
        fmt = "xml" if name.endswith(".XML") else "binary"
        rows.append(
            f'      <file number="{k}">\n        <name>{name}</name>\n'
            f'        <size unit="Kbyte">{max(1, round(size / 1024))}</size>\n'
            f"        <version>{_dotted(PROCESSOR_VERSION)}</version>\n"
            f"        <format>{fmt}</format>\n      </file>\n"
        )
    return "    <productFileInformation>\n" + "".join(rows) + "    </productFileInformation>\n"


def _band_statistics(bands: BandTable, content: MetadataContent) -> str:
    rows = [
        f'      <bandID number="{k + 1}">\n        <waveLength>{bands.wavelength_nm[k]:g}</waveLength>\n'
        f"        <mean>{content.band_mean[k]:.6g}</mean>\n"
        f"        <stdDeviation>{content.band_std[k]:.6g}</stdDeviation>\n      </bandID>\n"
        for k in range(len(bands))
    ]
    return "    <bandStatistics>\n" + "".join(rows) + "    </bandStatistics>\n"


def _dotted(version: str) -> str:
    return f"{version[0:2]}.{version[2:4]}.{version[4:6]}"


def _ql(
    tag: str, name: str, channels: tuple[float, float, float], tile: Tile, size: int, extra: str = ""
) -> str:
    red, green, blue = channels
    return (
        f"      <{tag}>\n        <channels>3</channels>\n        <qlChannels>\n"
        f"          <red>{red:g}</red>\n          <green>{green:g}</green>\n          <blue>{blue:g}</blue>\n"
        f"        </qlChannels>\n        <name>{name}</name>\n"
        f'        <size unit="Kbyte">{max(1, round(size / 1024))}</size>\n'
        f"        <version>{_dotted(PROCESSOR_VERSION)}</version>\n        <format>binary</format>\n"
        f"        <dimension>\n          <columns>{tile.width}</columns>\n"
        f"          <rows>{tile.height}</rows>\n"
        f"        </dimension>\n{extra}      </{tag}>\n"
    )


_QUICKLOOKS = {
    "enmap": (
        ("vnir", "quicklook_vnir", QUICKLOOK_VNIR_NM),
        ("swir", "quicklook_swir", QUICKLOOK_SWIR_NM),
    ),
    "desis": (("image", "quicklook", QUICKLOOK_VNIR_NM),),
}
"""Quicklooks per sensor: (tag, file kind, red/green/blue nm) as ``product/quicklook`` lists them."""


def _ortho(tile: Tile) -> str:
    return (
        f"    <ortho>\n      <projection>{epsg_to_projection(tile.epsg)}</projection>\n"
        "      <resolution>30</resolution>\n      <resampling>bilinear</resampling>\n    </ortho>\n"
    )


def metadata_xml(
    tile: Tile, content: MetadataContent, bands: BandTable, rng: np.random.Generator, sensor: Sensor = ENMAP
) -> bytes:
    """The whole METADATA.XML of one product.

    For a sensor other than EnMAP this is a STAND-IN (see ``assets.archive.metadata_readers``):
    the EnMAP layout with the sensor's mission, names and quicklook, and without the bulky orbit,
    attitude, RPC and line-time sections, which describe EnMAP's platform."""
    name, level = content.name, content.level
    files = sensor.file_names(name)
    mid = tile.start + (tile.stop - tile.start) // 2
    start, stop, centre_t = _t(tile.start), _t(tile.stop), _t(mid)
    corner_times = (start, stop, stop, start, centre_t)
    lons, lats = tile.corner_lon, tile.corner_lat
    dlons, dlats = content.datatake_corner_lon, content.datatake_corner_lat
    dstart, dstop = _t(content.datatake_start), _t(content.datatake_stop)
    dmid_t = content.datatake_start + (content.datatake_stop - content.datatake_start) // 2
    dmid = _t(dmid_t)
    d_lon_c, d_lat_c = content.datatake_center_lon, content.datatake_center_lat
    processed = np.datetime64(tile.processed, "us")
    version = _dotted(PROCESSOR_VERSION)
    points_lon = np.array([*lons, tile.center_lon])
    points_lat = np.array([*lats, tile.center_lat])
    times = np.array([tile.start, tile.stop, tile.stop, tile.start, mid], dtype="datetime64[us]")
    elevation, azimuth = solar_position(points_lon, points_lat, times)
    frames = (*_CORNERS, "center")
    sun_el = {f: float(elevation[k]) for k, f in enumerate(frames)}
    sun_az = {f: float(azimuth[k]) for k, f in enumerate(frames)}
    pointing = tile.pointing_deg
    half_fov = 2.63  # deg: 30 km swath from 653 km
    across = {
        "upper_left": pointing + half_fov,
        "upper_right": pointing - half_fov,
        "lower_right": pointing - half_fov,
        "lower_left": pointing + half_fov,
        "center": pointing,
    }
    along = dict.fromkeys(across, -0.1)
    azim = dict.fromkeys(across, (tile.heading_deg - 180.0) % 360.0)
    covers = content.covers
    bands_count = len(bands)
    sizes = content.file_sizes
    image_name = files["image"]
    dim_geo = tile.side_m / 111_320.0 * 1.1

    root = f'<level_X xmlns:xsi="{XSI}" xsi:noNamespaceSchemaLocation="{SCHEMA}">'
    comment = (
        f"{SIMULATED_COMMENT}. {sensor.mission} Level {level[1:]} Product of datatake {tile.datatake}, "
        f"tile {tile.tile_number}"
    )
    datatake_polygon = _polygon(
        dlons, dlats, (d_lon_c, d_lat_c), (dstart, dstop, dstop, dstart, dmid), " " * 8
    )
    angles = "".join(
        _angles(tag, values, "    ")
        for tag, values in (
            ("sunElevationAngle", sun_el),
            ("sunAzimuthAngle", sun_az),
            ("acrossOffNadirAngle", across),
            ("alongOffNadirAngle", along),
            ("sceneAzimuthAngle", azim),
        )
    )
    head = f"""{root}
  <metadata>
    <schema>
      <copyright>{COPYRIGHT}</copyright>
      <versionSchema>00.06.00</versionSchema>
      <name>{SCHEMA}</name>
      <crc>1EACA5A7</crc>
      <processingLevel>{level}</processingLevel>
    </schema>
    <name>{files["metadata"]}</name>
    <comment>{comment}</comment>
    <copyright>{COPYRIGHT}</copyright>
    <citation>SpectralForge archive simulator: {SIMULATED_MARK} product, no DOI</citation>
  </metadata>
  <processing>
    <terrainCorrection>Yes</terrainCorrection>
    <ozoneValue>300</ozoneValue>
    <season>{"summer" if 3 < int(str(tile.start)[5:7]) < 10 else "winter"}</season>
    <productFormat>GeoTIFF+Metadata</productFormat>
    <mapProjection>UTM_Zone_of_Scene_Center</mapProjection>
    <imageResampling>Bilinear_Interpolation</imageResampling>
    <DEMDBVersion>SRTM_C1ARC</DEMDBVersion>
    <correctionType>Land_Mode</correctionType>
    <cirrusHazeRemoval>No</cirrusHazeRemoval>
    <bandInterpolation>No</bandInterpolation>
    <waterType>Clear</waterType>
  </processing>
  <base>
    <spatialCoverage>
      <boundingPolygon>
{_polygon(lons, lats, (tile.center_lon, tile.center_lat), corner_times, "        ")}      </boundingPolygon>
    </spatialCoverage>
    <temporalCoverage>
      <startTime>{start}</startTime>
      <stopTime>{stop}</stopTime>
    </temporalCoverage>
    <revision>{version}</revision>
    <altitudeCoverage>{ORBIT_ALTITUDE_M:.2f}</altitudeCoverage>
    <sphere>earth</sphere>
    <format>{sensor.mission.upper()}_{level}</format>
    <level>{level}</level>
    <size>{sum(sizes.values())}</size>
    <archivedVersion>{version}</archivedVersion>
  </base>
  <specific>
    <spatialCoverageOfDatatake>
      <boundingPolygon>
{datatake_polygon}      </boundingPolygon>
    </spatialCoverageOfDatatake>
    <qualityFlag>
      <spare_1>-999</spare_1>
      <spare_2>-999</spare_2>
      <spare_3>-999</spare_3>
      <overallQualityVNIR>0</overallQualityVNIR>
      <overallQualitySWIR>0</overallQualitySWIR>
      <overallQuality>1</overallQuality>
      <numTilesUsed>{tile.tiles_in_datatake}</numTilesUsed>
      <orthoResidual>10</orthoResidual>
      <orthoRMSE>30</orthoRMSE>
      <sceneSZA>{90.0 - sun_el["center"]:.6f}</sceneSZA>
      <qualityAtmosphere>1</qualityAtmosphere>
      <sceneSunglint>-999</sceneSunglint>
      <cloudCover>{covers["cloud_cover"]:.0f}</cloudCover>
      <hazeCover>{covers["haze_cover"]:.0f}</hazeCover>
      <cirrusCover>{covers["cirrus_cover"]:.0f}</cirrusCover>
      <snowCover>{covers["snow_cover"]:.0f}</snowCover>
      <waterCover>{content.water_cover:.0f}</waterCover>
      <cloudShadow>{covers["cloud_shadow_cover"]:.0f}</cloudShadow>
      <noncloudShadow>0</noncloudShadow>
      <sceneWV>1800</sceneWV>
      <sceneAOT>150</sceneAOT>
    </qualityFlag>
    <instrumentStatus>
      <statusOK>true</statusOK>
      <statusVNIR>on</statusVNIR>
      <statusSWIR>on</statusSWIR>
      <configVNIR>standard</configVNIR>
      <configSWIR>standard</configSWIR>
    </instrumentStatus>
    <missionPhase>operational</missionPhase>
    <processingCenter>OP</processingCenter>
    <processingNode>spectralforge-simulator</processingNode>
    <processingDateTime>{_t(processed)}</processingDateTime>
    <mission>{sensor.mission}</mission>
    <satelliteID>01</satelliteID>
    <sensor>HSI</sensor>
    <datatakeID>{tile.datatake:010d}</datatakeID>
    <acquisitionType>EARTH</acquisitionType>
    <productType>STANDARD_ALL</productType>
    <datatakeStart>{dstart}</datatakeStart>
    <datatakeStop>{dstop}</datatakeStop>
    <backgroundValue>0</backgroundValue>
    <tileID>{tile.tile_number:02d}</tileID>
    <numberOfTiles>{tile.tiles_in_datatake:02d}</numberOfTiles>
    <widthOfScene unit="pixel">{tile.tile_size}</widthOfScene>
    <heightOfScene unit="pixel">{tile.tile_size}</heightOfScene>
    <status>NOMINAL</status>
    <meanGroundElevation>500.0</meanGroundElevation>
    <digitalElevationModelDatabase>SRTM_C1ARC</digitalElevationModelDatabase>
    <referenceDatabase>S2</referenceDatabase>
{angles}    <orbitDirection>DESCENDING</orbitDirection>
    <pixelSize>30</pixelSize>
    <biomeType>{content.biome}</biomeType>
    <simulation>{SIMULATED_MARK}: {content.endmembers}</simulation>
    <code>{level}</code>
    <bandCharacterisation>
{_band_characterisation(bands)}    </bandCharacterisation>
    <pixelSizeOfOrthoScene>30</pixelSizeOfOrthoScene>
    <widthOfOrthoScene>{tile.width}</widthOfOrthoScene>
    <heightOfOrthoScene>{tile.height}</heightOfOrthoScene>
    <meanSlope>5.0</meanSlope>
  </specific>
  <product>
    <image>
      <merge>
        <channels>{bands_count}</channels>
        <name>{image_name}</name>
        <size unit="Kbyte">{max(1, round(sizes.get(image_name, 0) / 1024))}</size>
        <version>{version}</version>
        <format>binary</format>
        <dimension>
          <columns>{tile.width}</columns>
          <rows>{tile.height}</rows>
        </dimension>
        <dimensionGeographic>
          <longitude unit="DEG">{dim_geo:.7f}</longitude>
          <latitude unit="DEG">{dim_geo:.7f}</latitude>
        </dimensionGeographic>
      </merge>
    </image>
    <quicklook>
"""
    quicklooks = "".join(
        _ql(tag, files[kind], channels, tile, sizes.get(files[kind], 0))
        for tag, kind, channels in _QUICKLOOKS[sensor.name]
    )
    if sensor.metadata_format != "enmap":
        parts = [head, quicklooks, "    </quicklook>\n", _ortho(tile), _file_information(content)]
        parts += [_band_statistics(bands, content), "  </product>\n</level_X>\n"]
        return "".join(parts).encode("utf-8")
    parts = [
        head,
        quicklooks,
        "    </quicklook>\n    <calibration>\n",
        _orbit(
            tile.datatake,
            content.datatake_center_lon,
            content.datatake_center_lat,
            int(np.datetime64(dmid_t, "us").astype(np.int64)),
        ),
        _attitude(tile, content, rng),
        "    </calibration>\n",
        _NAVIGATION_HEAD,
        _rpc(tile, bands.wavelength_nm, rng),
        "    </navigation>\n",
        _frame_times(tile, rng),
        _ortho(tile),
        _file_information(content),
        _band_statistics(bands, content),
        "  </product>\n</level_X>\n",
    ]
    return "".join(parts).encode("utf-8")
