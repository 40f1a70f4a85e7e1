"""Smoke test and micro-timings of in-process OSRM (osrm-bindings) on Monaco.

Usage (Python >= 3.12 venv with the ``bench-osrm`` extra, from the repository root)::

    .venv312/bin/python benchmarks/osrm_smoke.py
    .venv312/bin/python benchmarks/osrm_smoke.py --algorithm MLD --calls 1000

Builds (or reuses) the OSRM data for the Monaco extract, routes 20 random coordinate pairs in
the Monaco bbox (lon 7.41..7.44, lat 43.725..43.75, seed 1) and prints their duration and
distance, then times ``--calls`` full-route calls (steps, GeoJSON, node annotations, full
overview, converted to dicts), the same without the dict conversion, and duration-only calls
through the route service and through a 1x1 table (median and p99 in ms).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _osrm

BBOX = (7.41, 43.725, 7.44, 43.75)  # lon_min, lat_min, lon_max, lat_max


def default_pbf() -> Path:
    """The Monaco extract OSRM's own tests use, in the shared data directory:
    ``$GYROPHARE_DATA_DIR`` or ``<repo>/../shared/data``, the rule of
    ``engine.io.shared_data_dir()`` (not imported, so this script runs whatever state the
    engine package is in)."""
    env = os.environ.get("GYROPHARE_DATA_DIR")
    root = Path(env) if env else Path(__file__).resolve().parent.parent.parent / "shared" / "data"
    return root / "osm" / "monaco_osrm-bindings.osm.pbf"


def random_pairs(n: int, seed: int) -> list[tuple[_osrm.LatLon, _osrm.LatLon]]:
    """``n`` pairs of uniform random ``(lat, lon)`` points in :data:`BBOX`."""
    rng = random.Random(seed)
    lon0, lat0, lon1, lat1 = BBOX

    def point() -> _osrm.LatLon:
        lon = rng.uniform(lon0, lon1)
        lat = rng.uniform(lat0, lat1)
        return (lat, lon)

    return [(point(), point()) for _ in range(n)]


def time_calls(fn: Callable[[_osrm.LatLon, _osrm.LatLon], object],
               pairs: list[tuple[_osrm.LatLon, _osrm.LatLon]]) -> tuple[float, float]:
    """Median and p99 latency in ms of ``fn(a, b)`` over ``pairs`` (after 20 warm-up calls)."""
    for a, b in pairs[:20]:
        fn(a, b)
    times: list[float] = []
    for a, b in pairs:
        t0 = time.perf_counter()
        fn(a, b)
        times.append((time.perf_counter() - t0) * 1000.0)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pbf", nargs="?", type=Path, help="default: Monaco from the shared data dir")
    ap.add_argument("--algorithm", choices=["CH", "MLD"], default="CH")
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--force", action="store_true", help="rebuild the OSRM data")
    args = ap.parse_args(argv)

    if not _osrm.available():
        print(f"osrm-bindings is not importable here (Python {sys.version.split()[0]}); "
              "use a Python >= 3.12 venv with the bench-osrm extra", file=sys.stderr)
        return 2
    pbf = args.pbf or default_pbf()
    print(f"osrm-bindings {_osrm.bindings_version()}, OSRM tools {_osrm.backend_version()}, "
          f"Python {sys.version.split()[0]}")

    t0 = time.perf_counter()
    b = _osrm.build(pbf, args.algorithm, force=args.force)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    engine = _osrm.load_engine(b.base, b.algorithm)
    load_s = time.perf_counter() - t0
    steps = ", ".join(f"{k} {v:.2f} s" for k, v in b.seconds.items())
    print(f"build: {'reused' if b.reused else 'built'} in {build_s:.2f} s (tools: {steps}); "
          f"engine load {load_s * 1000:.1f} ms; data {b.base}")

    print(f"\n20 random pairs (seed {args.seed}), {args.algorithm}:")
    print(f"{'#':>3} {'from (lat, lon)':>22} {'to (lat, lon)':>22} {'duration s':>11} "
          f"{'distance m':>11} {'nodes':>6}")
    for i, (a, z) in enumerate(random_pairs(20, args.seed)):
        res = _osrm.route(engine, a, z)
        r = res["routes"][0]
        nodes = sum(len(leg["annotation"]["nodes"]) for leg in r["legs"])
        table_s = _osrm.duration_only(engine, a, z)
        mark = "" if table_s == r["duration"] else f"  (table says {table_s})"
        print(f"{i:>3} {a[0]:>10.5f},{a[1]:>10.5f} {z[0]:>10.5f},{z[1]:>10.5f} "
              f"{r['duration']:>11.1f} {r['distance']:>11.1f} {nodes:>6}{mark}")

    pairs = random_pairs(args.calls, args.seed + 1)
    cases: list[tuple[str, Callable[[_osrm.LatLon, _osrm.LatLon], object]]] = [
        ("route full (steps, geojson, nodes, overview=full) -> dict",
         lambda a, z: _osrm.route(engine, a, z)),
        ("route full, raw osrm.Object (no dict conversion)",
         lambda a, z: engine.Route(_osrm.route_params(a, z))),
        ("duration only: route overview=false, skip_waypoints",
         lambda a, z: _osrm.duration_only_route(engine, a, z)),
        ("duration only: table 1x1, skip_waypoints",
         lambda a, z: _osrm.duration_only_table(engine, a, z)),
    ]
    print(f"\n{args.calls} calls each, random pairs (seed {args.seed + 1}), {args.algorithm}, "
          "one thread, in-process:")
    print(f"| {'call':<58} | median ms | p99 ms |")
    print(f"|{'-' * 60}|-----------|--------|")
    results: dict[str, float] = {}
    for name, fn in cases:
        med, p99 = time_calls(fn, pairs)
        results[name] = med
        print(f"| {name:<58} | {med:>9.4f} | {p99:>6.4f} |")
    route_med = results[cases[2][0]]
    table_med = results[cases[3][0]]
    faster = "table 1x1" if table_med < route_med else "route overview=false"
    print(f"\nfastest duration-only call: {faster} "
          f"({min(route_med, table_med):.4f} vs {max(route_med, table_med):.4f} ms median)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
