"""OSRM in-process, for side-by-side benchmarks with gyrophare (``osrm-bindings`` wheel).

Import it the way the other scripts import ``_common`` (put ``benchmarks/`` on ``sys.path``)::

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _osrm

    engine = _osrm.open_engine("/work/shared/data/osm/monaco_osrm-bindings.osm.pbf")  # CH
    res = _osrm.route(engine, (43.7384, 7.4246), (43.7313, 7.4197))
    res["routes"][0]["duration"], res["routes"][0]["legs"][0]["annotation"]["nodes"]
    _osrm.duration_only(engine, (43.7384, 7.4246), (43.7313, 7.4197))   # -> 213.3

Needs ``pip install -e ".[bench-osrm]"`` in a Python >= 3.12 venv: ``osrm-bindings`` is only
published as a CPython 3.12 abi3 wheel. The wheel ships the OSRM tools (``osrm/bin``) and the
stock profiles (``osrm/share/profiles``); nothing else (no system OSRM) is needed.

Coordinates: the helpers take gyrophare's ``(lat, lon)`` tuples and swap them to OSRM's
``(lon, lat)`` internally. What comes back is OSRM's JSON untouched, so every coordinate *in a
result* (``waypoints[].location``, GeoJSON geometries, maneuver locations) is ``[lon, lat]``.

Data preparation (:func:`build`): ``osrm-extract`` with the wheel's ``car.lua`` then either
``osrm-contract`` (CH, the default) or ``osrm-partition`` + ``osrm-customize`` (MLD). Each
algorithm gets its own directory, so both can coexist::

    <cache>/osrm/<stem>-<sha16>/ch/<stem>.osrm.*     # <cache>: $GYROPHARE_CACHE_DIR or
    <cache>/osrm/<stem>-<sha16>/mld/<stem>.osrm.*    #          ~/.cache/gyrophare

``<sha16>`` is the first 16 hex digits of the SHA-256 of the ``.osm.pbf``. A build is written to
a temporary sibling directory and renamed into place only when every step succeeded, with a
``build.json`` stamp; it is reused as long as that stamp names the same osrm-bindings version
and profile. The tools' own output goes to ``build.log`` in the same directory (after a failed
build, to ``<cache>/osrm/<stem>-<sha16>/.<algorithm>-*.log``, named in the error).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

try:
    import osrm as _osrm_pkg
except ImportError:  # Python < 3.12, or the bench-osrm extra is not installed
    _osrm_pkg = None

if TYPE_CHECKING:
    import osrm

Algorithm = Literal["CH", "MLD"]
LatLon = tuple[float, float]
Log = Callable[[str], None]

#: Files whose presence means a step finished (besides the ``build.json`` stamp).
_FINAL_OUTPUTS: dict[str, tuple[str, ...]] = {
    "CH": (".osrm.hsgr",),
    "MLD": (".osrm.partition", ".osrm.cells", ".osrm.mldgr", ".osrm.cell_metrics"),
}


class OsrmUnavailable(RuntimeError):
    """``osrm-bindings`` is not importable in this interpreter."""


class OsrmBuildError(RuntimeError):
    """An OSRM preprocessing tool exited with an error (the message ends with its log tail)."""


# ------------------------------------------------------------------------------ environment
def available() -> bool:
    """True when ``import osrm`` works (Python >= 3.12 with the ``bench-osrm`` extra)."""
    return _osrm_pkg is not None


def _require() -> Any:
    if _osrm_pkg is None:
        raise OsrmUnavailable(
            "osrm-bindings is not installed in this interpreter "
            f"(Python {sys.version_info.major}.{sys.version_info.minor}); it needs Python >= 3.12: "
            '/root/.pyenv/versions/3.12.1/bin/python3.12 -m venv .venv312 && '
            '.venv312/bin/pip install -e ".[bench-osrm]"'
        )
    return _osrm_pkg


def package_dir() -> Path:
    """The installed ``osrm`` package directory (holds ``bin/`` and ``share/profiles/``)."""
    return Path(_require().__file__).resolve().parent


def tool(name: str) -> Path:
    """Path of an OSRM tool shipped in the wheel, e.g. ``tool("osrm-extract")``."""
    path = package_dir() / "bin" / name
    if not path.is_file():
        raise OsrmUnavailable(f"{name} not found in the osrm-bindings wheel ({path})")
    return path


def default_profile() -> Path:
    """The wheel's ``car.lua``. It ``require``\\ s modules from the ``lib/`` folder next to it,
    so it is used in place: a copy of the file alone fails with ``module 'lib/set' not found``."""
    return package_dir() / "share" / "profiles" / "car.lua"


def bindings_version() -> str:
    """Version of the ``osrm-bindings`` distribution (matches osrm-backend's), e.g. ``26.10.0``.
    The Python module itself has no ``__version__``."""
    return metadata.version("osrm-bindings")


def backend_version() -> str:
    """Version reported by the bundled tools (``osrm-extract --version``), e.g. ``v26.10.0``."""
    out = subprocess.run([str(tool("osrm-extract")), "--version"], capture_output=True,
                         text=True, check=True)
    return out.stdout.strip()


def default_cache_root() -> Path:
    """``$GYROPHARE_CACHE_DIR/osrm``, else ``$XDG_CACHE_HOME`` or ``~/.cache`` + ``gyrophare/osrm``
    (the same root as :func:`engine.io.default_cache_dir`, without importing the engine)."""
    env = os.environ.get("GYROPHARE_CACHE_DIR")
    base = Path(env) if env else (
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gyrophare")
    return base / "osrm"


def osm_stem(pbf: Path) -> str:
    """``monaco_osrm-bindings.osm.pbf`` -> ``monaco_osrm-bindings``."""
    name = pbf.name
    for suffix in (".osm.pbf", ".pbf", ".osm.bz2", ".osm"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return pbf.stem


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------------------------ build
@dataclass(frozen=True)
class OsrmBuild:
    """A prepared dataset: pass :attr:`base` and :attr:`algorithm` to :func:`load_engine`."""

    base: Path                      #: ``.../<stem>.osrm`` (the name OSRM's storage_config wants)
    algorithm: Algorithm
    reused: bool                    #: True when an earlier build was found and nothing ran
    seconds: dict[str, float] = field(default_factory=dict)  #: per tool, of the build that made it


def dataset_dir(pbf: str | Path, cache_root: str | Path | None = None) -> Path:
    """``<cache_root>/<stem>-<sha16>``: one directory per source file content."""
    pbf = Path(pbf)
    root = Path(cache_root) if cache_root is not None else default_cache_root()
    return root / f"{osm_stem(pbf)}-{_sha256(pbf)[:16]}"


def _run(cmd: list[str], log_file: Path, label: str, log: Log) -> float:
    """Run one tool, appending its output to ``log_file``; return its wall time in seconds."""
    log(f"osrm: {label} ...")
    t0 = time.perf_counter()
    with open(log_file, "a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, check=False)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-15:])
        raise OsrmBuildError(f"{label} failed (exit {proc.returncode}); see {log_file}:\n{tail}")
    log(f"osrm: {label} done in {dt:.2f} s")
    return dt


def _stamp_ok(
    target: Path, stem: str, algorithm: Algorithm, profile: Path
) -> dict[str, Any] | None:
    """The ``build.json`` of a finished build in ``target`` made by this osrm-bindings version
    with this profile and algorithm, or ``None`` (missing, stale, or outputs missing)."""
    stamp_path = target / "build.json"
    if not stamp_path.is_file():
        return None
    try:
        stamp = json.loads(stamp_path.read_text())
    except (OSError, ValueError):
        return None
    if (stamp.get("osrm_bindings") != bindings_version() or stamp.get("profile") != str(profile)
            or stamp.get("algorithm") != algorithm):
        return None
    if not all((target / f"{stem}{ext}").is_file() for ext in _FINAL_OUTPUTS[algorithm]):
        return None
    return stamp


def build(
    pbf: str | Path,
    algorithm: Algorithm = "CH",
    *,
    cache_root: str | Path | None = None,
    profile: str | Path | None = None,
    threads: int | None = None,
    force: bool = False,
    log: Log = print,
) -> OsrmBuild:
    """Prepare ``pbf`` for OSRM's ``algorithm`` unless a matching build is already cached.

    Parameters
    ----------
    pbf
        An ``.osm.pbf`` (referenced in place, never copied).
    algorithm
        ``"CH"`` (extract + contract) or ``"MLD"`` (extract + partition + customize).
    cache_root
        Defaults to :func:`default_cache_root`.
    profile
        A Lua profile; defaults to the wheel's ``car.lua`` (keep its ``lib/`` folder next to it).
    threads
        ``--threads`` for every tool (OSRM's default is the number of cores).
    force
        Rebuild even when a cached build is valid.
    log
        Receives one progress line per step (``print`` by default; pass ``lambda s: None``).
    """
    algorithm = algorithm.upper()  # type: ignore[assignment]
    if algorithm not in _FINAL_OUTPUTS:
        raise ValueError(f"algorithm must be 'CH' or 'MLD', not {algorithm!r}")
    pbf = Path(pbf).resolve()
    if not pbf.is_file():
        raise FileNotFoundError(pbf)
    profile_path = Path(profile).resolve() if profile is not None else default_profile()
    stem = osm_stem(pbf)
    digest = _sha256(pbf)
    ds_dir = (Path(cache_root) if cache_root is not None else default_cache_root()) / (
        f"{stem}-{digest[:16]}")  # = dataset_dir(pbf, cache_root), hashing the file once
    target = ds_dir / algorithm.lower()

    stamp = None if force else _stamp_ok(target, stem, algorithm, profile_path)
    if stamp is not None:
        log(f"osrm: reusing {algorithm} build {target}")
        return OsrmBuild(target / f"{stem}.osrm", algorithm, True, stamp.get("seconds", {}))

    ds_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{algorithm.lower()}-", dir=ds_dir))
    work.chmod(0o755)
    base = work / f"{stem}.osrm"
    log_file = ds_dir / f"{work.name}.log"  # outside ``work``: it survives a failed build
    thread_args = ["--threads", str(threads)] if threads else []
    log(f"osrm: building {algorithm} for {pbf.name} ({pbf.stat().st_size / 1e6:.1f} MB) "
        f"in {target}")
    seconds: dict[str, float] = {}
    try:
        seconds["extract"] = _run(
            [str(tool("osrm-extract")), "-p", str(profile_path), "-o", str(base),
             *thread_args, str(pbf)], log_file, "osrm-extract", log)
        if algorithm == "CH":
            steps = ["contract"]
        else:
            steps = ["partition", "customize"]
        for step in steps:
            seconds[step] = _run([str(tool(f"osrm-{step}")), *thread_args, str(base)],
                                 log_file, f"osrm-{step}", log)
        stamp = {
            "source": str(pbf),
            "source_sha256": digest,
            "algorithm": algorithm,
            "profile": str(profile_path),
            "osrm_bindings": bindings_version(),
            "seconds": seconds,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (work / "build.json").write_text(json.dumps(stamp, indent=2) + "\n")
        log_file.rename(work / "build.log")
        if target.exists():  # stale or forced: replace it
            shutil.rmtree(target)
        work.rename(target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    log(f"osrm: {algorithm} build ready in {sum(seconds.values()):.2f} s")
    return OsrmBuild(target / f"{stem}.osrm", algorithm, False, seconds)


# ----------------------------------------------------------------------------------- engine
def load_engine(base: str | Path, algorithm: Algorithm = "CH") -> osrm.OSRM:
    """An in-process ``osrm.OSRM`` over prepared files (``base`` = ``.../<stem>.osrm``).

    Calls ``osrm.OSRM(storage_config=str(base), algorithm=algorithm, use_shared_memory=False)``.
    The algorithm must match the preprocessing: CH data opened as MLD (or the reverse) raises
    ``RuntimeError: Could not find any metrics for MLD in the data``.
    """
    pkg = _require()
    return pkg.OSRM(storage_config=str(base), algorithm=algorithm.upper(),
                    use_shared_memory=False)


def open_engine(
    pbf: str | Path, algorithm: Algorithm = "CH", **build_kwargs: Any
) -> osrm.OSRM:
    """:func:`build` (or reuse) then :func:`load_engine`."""
    b = build(pbf, algorithm, **build_kwargs)
    return load_engine(b.base, b.algorithm)


# ---------------------------------------------------------------------------------- results
def to_python(value: Any) -> Any:
    """Deep-convert an ``osrm.Object`` / ``osrm.Array`` result into dicts and lists.

    The bindings return their own JSON containers (``Object``: keys by iteration, ``[key]``;
    ``Array``: iteration, ``[i]``); strings, numbers and booleans come out as ``str``, ``float``
    and ``bool``. Numbers are always ``float`` (even OSM node ids).

    Cost: every ``[key]``/``[i]``/iteration on a container *deep-copies* the sub-tree it returns
    (nanobind casts the C++ JSON value by value), so converting a result costs about its size
    times its depth: ~1.8 ms for a 6.6 km Monaco route with steps, GeoJSON and node annotations,
    against ~0.37 ms for the ``Route`` call itself. Time the raw call when comparing engines.
    """
    obj_t, arr_t = _require().Object, _osrm_pkg.Array

    def conv(v: Any) -> Any:
        t = type(v)
        if t is obj_t:
            return {k: conv(v[k]) for k in v}
        if t is arr_t:
            return [conv(x) for x in v]
        return v

    return conv(value)


def _lonlat(p: LatLon) -> tuple[float, float]:
    lat, lon = p
    return (float(lon), float(lat))


def route_params(
    a: LatLon,
    b: LatLon,
    *,
    steps: bool = True,
    geometry: str = "geojson",
    annotations: Sequence[str] = ("nodes",),
    overview: str = "full",
    generate_hints: bool = False,
) -> osrm.RouteParameters:
    """``osrm.RouteParameters`` for ``a`` -> ``b`` given as ``(lat, lon)``."""
    pkg = _require()
    return pkg.RouteParameters(
        coordinates=[_lonlat(a), _lonlat(b)],
        steps=steps,
        geometries=geometry,
        annotations=list(annotations),
        overview=overview,
        generate_hints=generate_hints,
    )


def route(
    engine: osrm.OSRM,
    a: LatLon,
    b: LatLon,
    *,
    steps: bool = True,
    geometry: str = "geojson",
    annotations: Sequence[str] = ("nodes",),
    overview: str = "full",
    generate_hints: bool = False,
) -> dict[str, Any]:
    """OSRM's route service from ``a`` to ``b`` (``(lat, lon)``), as a plain dict.

    ``geometry``: ``"geojson"``, ``"polyline"`` or ``"polyline6"``; ``annotations``: any of
    ``"nodes"``, ``"duration"``, ``"distance"``, ``"speed"``, ``"weight"``, ``"datasources"``
    (or ``["true"]`` for all); ``overview``: ``"full"``, ``"simplified"`` or ``"false"``.
    ``annotation.nodes`` (OSM node ids, floats in OSRM's JSON) is converted to ``int`` in every
    leg; everything else is OSRM's JSON as is (locations/geometries in ``[lon, lat]``).
    Raises ``RuntimeError("NoRoute - ...")`` and the like when OSRM answers with an error code.
    """
    res = to_python(engine.Route(route_params(
        a, b, steps=steps, geometry=geometry, annotations=annotations, overview=overview,
        generate_hints=generate_hints)))
    for r in res.get("routes", ()):
        for leg in r.get("legs", ()):
            ann = leg.get("annotation")
            if ann and "nodes" in ann:
                ann["nodes"] = [int(n) for n in ann["nodes"]]
    return res


def duration_only_route(engine: osrm.OSRM, a: LatLon, b: LatLon) -> float | None:
    """Duration (s) through the route service with nothing extra: ``overview='false'``, no
    steps, no annotations, no hints, ``skip_waypoints``. ``None`` when there is no route."""
    pkg = _require()
    params = pkg.RouteParameters(coordinates=[_lonlat(a), _lonlat(b)], overview="false",
                                 generate_hints=False)
    params.skip_waypoints = True
    try:
        res = engine.Route(params)
    except RuntimeError as exc:
        if str(exc).startswith("NoRoute"):
            return None
        raise
    return res["routes"][0]["duration"]


def duration_only_table(engine: osrm.OSRM, a: LatLon, b: LatLon) -> float | None:
    """Duration (s) through a 1x1 table request (no hints, ``skip_waypoints``). ``None`` when
    there is no route (the table answers ``null``)."""
    pkg = _require()
    params = pkg.TableParameters(coordinates=[_lonlat(a), _lonlat(b)], sources=[0],
                                 destinations=[1], generate_hints=False)
    params.skip_waypoints = True
    return engine.Table(params)["durations"][0][0]


def duration_only(engine: osrm.OSRM, a: LatLon, b: LatLon) -> float | None:
    """The fastest way found to get just the duration (s) from ``a`` to ``b`` (``(lat, lon)``).

    It is the 1x1 table (:func:`duration_only_table`): on Monaco/CH it is ~20 % faster than the
    leanest route request (:func:`duration_only_route`) and gave identical durations on 1,000
    random pairs, with both CH and MLD. ``None`` when there is no route.
    """
    return duration_only_table(engine, a, b)


def table(
    engine: osrm.OSRM,
    sources: Sequence[LatLon],
    destinations: Sequence[LatLon] | None = None,
    *,
    annotations: Sequence[str] = ("duration",),
) -> dict[str, Any]:
    """OSRM's table service between ``(lat, lon)`` points, as a plain dict.

    ``destinations=None`` means the square matrix ``sources x sources``. ``annotations``:
    ``"duration"`` and/or ``"distance"``. The result has ``durations`` (and ``distances``) as
    ``len(sources)`` rows of ``len(destinations)`` floats, ``None`` where unreachable, plus
    OSRM's ``sources``/``destinations`` snapped waypoints (``[lon, lat]``).
    """
    pkg = _require()
    if destinations is None:
        coords = [_lonlat(p) for p in sources]
        src_idx = list(range(len(coords)))
        dst_idx = src_idx
    else:
        coords = [_lonlat(p) for p in sources] + [_lonlat(p) for p in destinations]
        src_idx = list(range(len(sources)))
        dst_idx = list(range(len(sources), len(coords)))
    params = pkg.TableParameters(coordinates=coords, sources=src_idx, destinations=dst_idx,
                                 annotations=list(annotations), generate_hints=False)
    return to_python(engine.Table(params))
