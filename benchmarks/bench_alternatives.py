"""Alternative routes (via-node alternatives on the CCH, :mod:`engine.alternatives`): query
time, how many pairs get 1, 2, 3 alternatives, their stretch and sharing.

Usage::

    python benchmarks/bench_alternatives.py                    # Monaco, Andorra, New York
    python benchmarks/bench_alternatives.py ../shared/data/dimacs/USA-road-t.NY.gr.gz \\
        --pairs 300 --out benchmarks/results/alternatives.md

Pairs: points near random junctions of car roads, jittered up to ~60 m (mid-road, as the
routing tests); on New York also *local* pairs, 2 to 8 km apart as the crow flies (an
ambulance's trips), whose smallest common nested-dissection cell is often small enough to
join the candidates (``max_cell``). Car, live weights without traffic, default parameters
(:data:`engine.alternatives.DEFAULT_PARAMS`).

Measured per pair, each a Python call, after the best route is known:

* **search**: :func:`engine.cch.via.via_alternatives` (the two elimination-tree walks, the
  exact passes, ranking, unpacking, the T-tests and detour queries) with its Python wrapper,
  for 2 alternatives: what finding alternatives costs;
* **with routes**: :func:`engine.alternatives.search_alternatives`, i.e. the search plus
  building each alternative as a full :class:`~engine.results.Route` (geometry, guidance
  steps, signals) with :func:`engine.assembly.assemble_route`;
* **end to end**: ``Router.alternatives(origin, destination, 2)``: snapping, the best route,
  the search and every route built.

Counts and quality come from ``n = 3``: pairs with 0 / 1 / 2 / 3 alternatives, and per
alternative its stretch (cost over the best route's) and sharing (share of the best route's
cost shared with the best route and the alternatives before it). The reference rows run the
same tests on every node of the map as a candidate, examined without limit (``max_cell`` and
``max_examined`` unbounded: Abraham et al.'s X-BDV with the same admissibility tests): how
many alternatives the default budget leaves out (on New York on the first 50 pairs only).
Costs are seconds on the OSM maps and the DIMACS file's travel-time units on New York.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numba

from benchmarks._common import emit
from engine import alternatives as alternatives_module
from engine.alternatives import DEFAULT_PARAMS, AlternativeParams, search_alternatives
from engine.graph import RoadGraph, haversine_m
from engine.io import load_graph, shared_data_dir
from engine.profiles import Weights
from engine.query import Route, Router

DEFAULT_SOURCES = ("osm/monaco_osrm-bindings.osm.pbf", "osm/andorra_graphhopper.osm.pbf",
                   "dimacs/USA-road-t.NY.gr.gz")
Pair = tuple[tuple[float, float], tuple[float, float]]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def random_pairs(g: RoadGraph, W: Weights, n: int, seed: int) -> list[Pair]:
    rng = np.random.default_rng(seed)
    nodes = np.unique(g.tail[np.isfinite(W.values)])
    idx = nodes[rng.integers(0, len(nodes), size=(n, 2))]
    jit = rng.uniform(-0.0005, 0.0005, size=(n, 2, 2))
    return [((g.lat[a] + j[0, 0], g.lon[a] + j[0, 1]), (g.lat[b] + j[1, 0], g.lon[b] + j[1, 1]))
            for (a, b), j in zip(idx, jit, strict=True)]


def local_pairs(g: RoadGraph, W: Weights, n: int, seed: int, lo_m: float = 2000.0,
                hi_m: float = 8000.0) -> list[Pair]:
    rng = np.random.default_rng(seed)
    nodes = np.unique(g.tail[np.isfinite(W.values)])
    out: list[Pair] = []
    while len(out) < n:
        a = nodes[rng.integers(0, len(nodes))]
        d = haversine_m(g.lat[a], g.lon[a], g.lat[nodes], g.lon[nodes])
        ring = nodes[(d >= lo_m) & (d <= hi_m)]
        if not len(ring):
            continue
        b = ring[rng.integers(0, len(ring))]
        j = rng.uniform(-0.0005, 0.0005, size=(2, 2))
        out.append(((g.lat[a] + j[0, 0], g.lon[a] + j[0, 1]),
                    (g.lat[b] + j[1, 0], g.lon[b] + j[1, 1])))
    return out


class Timed:
    """Times every call of :func:`engine.cch.via.via_alternatives` made through
    :mod:`engine.alternatives`."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._inner = alternatives_module.via_alternatives

    def __call__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        out = self._inner(*args, **kwargs)
        self.seconds.append(time.perf_counter() - t0)
        return out


def ms(values: list[float]) -> str:
    v = 1e3 * np.asarray(values)
    return (f"{np.median(v):.2f} | {np.percentile(v, 90):.2f} | {np.percentile(v, 99):.2f} | "
            f"{v.max():.2f}")


def run_case(router: Router, W: Weights, pairs: list[Pair], label: str,
             reference: int) -> list[str]:
    timed = Timed()
    alternatives_module.via_alternatives = timed  # type: ignore[assignment]
    try:
        bests: list[Route] = []
        for origin, destination in pairs:
            best = router.route(origin, destination, weights=W)
            if isinstance(best, Route) and best.cost > 0 and best.turn_arcs:
                bests.append(best)
        for best in bests[:5]:  # warm caches (workspace pool, metric)
            search_alternatives(router, best, W, 2)
        timed.seconds.clear()
        with_routes = []
        for best in bests:
            t0 = time.perf_counter()
            search_alternatives(router, best, W, 2)
            with_routes.append(time.perf_counter() - t0)
        search_2 = list(timed.seconds)
        end_to_end = []
        for origin, destination in pairs[:min(len(pairs), 100)]:
            t0 = time.perf_counter()
            router.alternatives(origin, destination, 2, weights=W)
            end_to_end.append(time.perf_counter() - t0)
        timed.seconds.clear()
        counts = np.zeros(4, dtype=int)
        stretch: list[list[float]] = [[], [], []]
        shared: list[list[float]] = [[], [], []]
        stats: dict[str, int] = {}
        for best in bests:
            found = search_alternatives(router, best, W, 3)
            counts[len(found.routes) - 1] += 1
            for alt in found.routes[1:]:
                info = alt.extra["alternative"]
                stretch[info["rank"] - 1].append(info["stretch"])
                shared[info["rank"] - 1].append(info["shared"])
            for k, v in found.stats.items():
                stats[k] = stats.get(k, 0) + v
        search_3 = list(timed.seconds)
        exhaustive = AlternativeParams(max_examined=10**9, max_cell=router.turns.n_nodes)
        ref_bests = bests[:reference]
        ref_counts = np.zeros(4, dtype=int)
        same_counts = np.zeros(4, dtype=int)
        for best in ref_bests:
            ref_counts[len(search_alternatives(router, best, W, 3,
                                               exhaustive).routes) - 1] += 1
            same_counts[len(search_alternatives(router, best, W, 3).routes) - 1] += 1
    finally:
        alternatives_module.via_alternatives = timed._inner  # type: ignore[assignment]
    n = len(bests)
    km = np.median([b.distance_m for b in bests]) / 1000
    cost = np.median([b.cost for b in bests])
    lines = [f"#### {label}: {n} pairs with a route (median {km:.1f} km, median best cost "
             f"{cost:,.0f})",
             "",
             "| query time, ms | median | p90 | p99 | max |", "|---|---:|---:|---:|---:|",
             f"| search, 2 alternatives | {ms(search_2)} |",
             f"| search, 3 alternatives | {ms(search_3)} |",
             f"| search + building the alternatives' routes, 2 | {ms(with_routes)} |",
             f"| end to end `Router.alternatives(o, d, 2)` ({len(end_to_end)} pairs) | "
             f"{ms(end_to_end)} |", "",
             "| alternatives found (n = 3) | 0 | 1 | 2 | 3 | at least 1 | at least 2 |",
             "|---|---:|---:|---:|---:|---:|---:|"]

    def row(name: str, c: np.ndarray) -> str:
        share = 100.0 * c / max(1, c.sum())
        return (f"| {name} | " + " | ".join(f"{x} ({p:.0f} %)" for x, p in zip(c, share,
                                                                               strict=True))
                + f" | {100.0 * c[1:].sum() / max(1, c.sum()):.0f} % | "
                f"{100.0 * c[2:].sum() / max(1, c.sum()):.0f} % |")

    lines.append(row("default parameters", counts))
    if len(ref_bests) == n:
        lines.append(row("reference: every node a candidate, no budget", ref_counts))
    elif len(ref_bests):
        lines.append(row(f"default parameters, first {len(ref_bests)} pairs", same_counts))
        lines.append(row(f"reference: every node a candidate, no budget, first "
                         f"{len(ref_bests)} pairs", ref_counts))
    lines += ["", "| alternative | count | stretch mean | p50 | max | sharing mean | p50 | max |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for k in range(3):
        if stretch[k]:
            s, h = np.asarray(stretch[k]), np.asarray(shared[k])
            lines.append(f"| {k + 1} | {len(s)} | {s.mean():.3f} | {np.median(s):.3f} | "
                         f"{s.max():.3f} | {h.mean():.2f} | {np.median(h):.2f} | "
                         f"{h.max():.2f} |")
    per = {k: v / max(1, n) for k, v in stats.items()}
    lines += ["", "Per query (n = 3), on average: " + ", ".join(
        f"{k.replace('_', ' ')} {v:.1f}" for k, v in per.items()) + " (candidates reachable "
        "both ways and within the stretch bound; examined = unpacked; skipped = on a route "
        "or a path tried before; rejections by test; the sharing count includes candidates "
        "refused on the hierarchy's lower bound, before unpacking).", ""]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sources", nargs="*", help="maps (default: Monaco, Andorra, New York)")
    ap.add_argument("--pairs", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--reference-pairs", type=int, default=50,
                    help="on maps over 50,000 turn nodes, the exhaustive reference runs on "
                         "this many pairs only (it takes about a second each on New York)")
    ap.add_argument("--out", help="write the Markdown table here too")
    args = ap.parse_args()
    sources = args.sources or [str(shared_data_dir() / s) for s in DEFAULT_SOURCES]
    p = DEFAULT_PARAMS
    lines = ["# Alternative routes: via-node alternatives on the CCH", "",
             "Command: `" + " ".join(["python benchmarks/bench_alternatives.py",
                                      *sys.argv[1:]]) + "`", "",
             f"Machine: {platform.machine()}, {numba.get_num_threads()} numba threads on a "
             f"shared machine (other jobs running: the tails are noisy); Python "
             f"{platform.python_version()}, numba {numba.__version__}. Parameters "
             f"(`engine.alternatives.DEFAULT_PARAMS`): max_stretch {p.max_stretch}, "
             f"max_sharing {p.max_sharing}, alpha {p.alpha} (T-test), max_detour "
             f"{p.max_detour}, max_examined {p.max_examined}, max_cell {p.max_cell:,}, anchors "
             f"{p.anchors} x anchor_cell {p.anchor_cell:,}. Car, "
             "free-flow live weights (turn costs and restrictions included); times are one "
             "Python call each, medians over the pairs. Method and definitions: "
             "`engine/alternatives.py`, `engine/cch/via.py`.", ""]
    for source in sources:
        log(f"loading {source}")
        g = load_graph(source)
        t0 = time.perf_counter()
        router = Router(g)
        log(f"router ready in {time.perf_counter() - t0:.1f} s")
        W = router.weights("car")
        tg = g.turns
        lines += [f"### {Path(source).name}: {g.n_nodes:,} junctions, {tg.n_nodes:,} turn "
                  f"nodes, {tg.n_edges:,} turn arcs", ""]
        small = tg.n_nodes <= 50_000
        lines += run_case(router, W, random_pairs(g, W, args.pairs, args.seed), "random pairs",
                          reference=args.pairs if small else args.reference_pairs)
        if not small:
            lines += run_case(router, W, local_pairs(g, W, args.pairs, args.seed),
                              "local pairs, 2-8 km apart", reference=args.reference_pairs)
    emit(lines, args.out)


if __name__ == "__main__":
    main()
