"""Gyrophare's kernels against networkx (what osmnx users run) and scipy, same graph, same pairs.

Usage::

    python benchmarks/bench_kernels.py ../shared/data/osm/monaco_osrm-bindings.osm.pbf
    python benchmarks/bench_kernels.py ../shared/data/dimacs/USA-road-t.NY.gr.gz --nx-pairs 20
    ... --out benchmarks/results/monaco.md

Routes are searched on the turn graph (one node per directed road, one arc per turn; see
engine/turns.py), so that is the graph measured here: every implementation gets the same
turn-graph arrays with the car's live arc weights (turn cost + road entered; forbidden turns
``inf``; DIMACS graphs: U-turns banned but at dead ends, other turns free). Measures, on the
same ``--pairs`` random road pairs (fixed seed): point-to-point median and p99 for each
gyrophare kernel (CCH, Dijkstra, bidirectional, A*), the full router (snap + search + route
assembly, coordinates in), scipy ``csgraph.dijkstra`` (one source, all targets: scipy has no
target stop) and networkx ``shortest_path`` (bidirectional Dijkstra); a 50x50 matrix; graph
(+ turn graph) build and cache-load time; peak memory. Prints a Markdown table with ratios.
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit

from engine import kernels
from engine.io import load_graph
from engine.query import Router
from engine.traffic import TrafficOverlay


def timed(fn: Callable[[], object], repeat: int = 1) -> float:
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def per_pair(fn: Callable[[int, int], object], pairs: np.ndarray) -> np.ndarray:
    out = np.empty(len(pairs))
    for i, (s, t) in enumerate(pairs):
        t0 = time.perf_counter()
        fn(int(s), int(t))
        out[i] = time.perf_counter() - t0
    return out * 1000.0  # ms


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", help="map file (OSM, GraphML, DIMACS .gr)")
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--nx-pairs", type=int, default=200,
                    help="pairs for networkx (slow on large graphs)")
    ap.add_argument("--matrix", type=int, default=50)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", help="also write the table to this Markdown file")
    args = ap.parse_args(argv)

    import networkx as nx
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import dijkstra as sp_dijkstra

    with tempfile.TemporaryDirectory() as cache:
        build_s = timed(lambda: load_graph(args.source, cache_dir=cache))
        load_s = min(timed(lambda: load_graph(args.source, cache_dir=cache)) for _ in range(5))
        graph = load_graph(args.source, cache_dir=cache)
    road = graph
    g = road.turn_graph()  # what the searches run on
    n, m = g.n_nodes, g.n_edges
    is_osm = not str(args.source).endswith((".gr", ".gr.gz", ".gr.xz"))
    W = TrafficOverlay(road).weights("car", "time")
    w = np.array(W.arc)
    graph_mb = (sum(a.nbytes for a in road.arrays().values())
                + sum(a.nbytes for a in g.arcs().values())) / 1e6
    node_lat = road.lat[road.head[g.node_road]]
    node_lon = road.lon[road.head[g.node_road]]

    rng = np.random.default_rng(args.seed)
    ok = np.isfinite(w)
    car_nodes = np.flatnonzero(np.isfinite(W.values))  # roads the car may drive
    pairs = car_nodes[rng.integers(0, len(car_nodes), size=(args.pairs, 2))].astype(np.int32)

    # ---------------------------------------------------------------- gyrophare kernels
    t0 = time.perf_counter()
    kernels.warm_up()
    warm_s = time.perf_counter() - t0
    ws, ws2 = kernels.Workspace.for_graph(n), kernels.Workspace.for_graph(n)
    zero = np.zeros(1)
    factor = kernels.astar_factor(w, g.tail, g.head, node_lat, node_lon)
    one = {}

    def gy_dijkstra(s: int, t: int) -> None:
        one["d"] = kernels.dijkstra(g.first_out, g.head, w, np.array([s], np.int32), zero,
                              np.array([t], np.int32), zero, ws)
        if one["d"][1] >= 0:
            kernels.path_edges(ws.pred_edge, g.tail, t)

    def gy_bidir(s: int, t: int) -> None:
        c, meet = kernels.bidirectional_dijkstra(g.first_out, g.head, g.first_in, g.in_arc,
                                                 g.tail, w,
                                           np.array([s], np.int32), zero,
                                           np.array([t], np.int32), zero, ws, ws2)
        if np.isfinite(c):
            kernels.bidirectional_path_edges(ws, ws2, g.tail, g.head, meet)

    def gy_astar(s: int, t: int) -> None:
        _c, ti = kernels.astar(g.first_out, g.head, w, node_lat, node_lon,
                               np.array([s], np.int32), zero,
                        np.array([t], np.int32), zero, factor, ws)
        if ti >= 0:
            kernels.path_edges(ws.pred_edge, g.tail, t)

    from engine.cch import CCHIndex

    t0 = time.perf_counter()
    cch = CCHIndex.load_or_build(g)
    cch_s = time.perf_counter() - t0
    cch.warm_up()
    cch_metric = cch.customize(w)

    def gy_cch(s: int, t: int) -> None:
        cch.query(cch_metric, np.array([s], np.int32), zero, np.array([t], np.int32), zero)

    results = {}
    for name, fn in (("gyrophare CCH (query + path)", gy_cch),
                     ("gyrophare Dijkstra", gy_dijkstra),
                     ("gyrophare bidirectional", gy_bidir),
                     ("gyrophare A*", gy_astar)):
        results[name] = per_pair(fn, pairs)

    if is_osm:
        router = Router(road)
        frac = rng.uniform(0.05, 0.95, size=(args.pairs, 2))
        gp, off = road.geom_point, road.geom_offset

        def on_road(e: int, f: float) -> tuple[float, float]:
            """A point a fraction ``f`` along road ``e``'s geometry (by point index)."""
            pts = gp[off[e]:off[e + 1]]
            x = f * (len(pts) - 1)
            k = min(int(x), len(pts) - 2)
            u = x - k
            a, b = pts[k], pts[k + 1]
            return (float(road.point_lat[a] + u * (road.point_lat[b] - road.point_lat[a])),
                    float(road.point_lon[a] + u * (road.point_lon[b] - road.point_lon[a])))

        def gy_route(s: int, t: int, _i=[0]) -> None:  # noqa: B006 - counter
            i = _i[0] = (_i[0] + 1) % args.pairs
            router.route(on_road(s, frac[i, 0]), on_road(t, frac[i, 1]))

        for s_, t_ in pairs[:50]:
            gy_route(int(s_), int(t_))  # warm caches (reachability, metrics)
        results["gyrophare Router.route (coords, snap, geometry)"] = per_pair(gy_route, pairs)

    # ---------------------------------------------------------------- scipy
    t_, h_, c_ = g.tail[ok].astype(np.int64), g.head[ok].astype(np.int64), w[ok]
    order = np.lexsort((c_, t_ * n + h_))
    _, first = np.unique((t_ * n + h_)[order], return_index=True)
    keep = order[first]
    mat = csr_matrix((c_[keep], (t_[keep], h_[keep])), shape=(n, n))
    results["scipy csgraph.dijkstra (one source)"] = per_pair(
        lambda s, t: sp_dijkstra(mat, indices=s), pairs)

    # ---------------------------------------------------------------- networkx
    G = nx.DiGraph()
    G.add_weighted_edges_from(zip(t_[keep].tolist(), h_[keep].tolist(), c_[keep].tolist(),
                                  strict=True))

    def nx_path(s: int, t: int) -> None:
        try:
            nx.shortest_path(G, s, t, weight="weight")
        except nx.NetworkXNoPath:
            pass

    results["networkx shortest_path"] = per_pair(nx_path, pairs[: args.nx_pairs])

    # consistency: all implementations agree on the sampled costs
    check = pairs[: min(50, args.nx_pairs)]
    for s, t in check:
        d_sp = sp_dijkstra(mat, indices=int(s))[t]
        gy_dijkstra(int(s), int(t))
        assert np.isclose(one["d"][0], d_sp) or (np.isinf(d_sp) and np.isinf(one["d"][0]))

    # ---------------------------------------------------------------- 50x50 matrix
    k = args.matrix
    src = pairs[:k, 0].copy()
    dst = pairs[:k, 1].copy()
    first_g = np.arange(k + 1, dtype=np.int32)
    zk = np.zeros(k)
    kernels.many_to_many(g.first_out, g.head, w, first_g, src, zk, first_g, dst, zk, ws)
    mt = [timed(lambda: kernels.many_to_many(g.first_out, g.head, w, first_g, src, zk, first_g, dst,
                                       zk, ws)) * 1000 for _ in range(7)]
    st = [timed(lambda: sp_dijkstra(mat, indices=src)[:, dst]) * 1000 for _ in range(3)]
    nx_k = min(k, 10 if n > 100_000 else k)
    nt = timed(lambda: [nx.single_source_dijkstra_path_length(G, int(s))
                        for s in src[:nx_k]]) * 1000 * (k / nx_k)

    # ---------------------------------------------------------------- report
    best_p2p = min(np.median(results[x]) for x in
                   ("gyrophare CCH (query + path)", "gyrophare Dijkstra",
                    "gyrophare bidirectional", "gyrophare A*"))
    ct = [timed(lambda: cch.many_to_many(cch_metric, first_g, src, zk, first_g, dst, zk)) * 1000
          for _ in range(7)]
    lines = [
        f"# Kernel benchmark: {road.meta.get('name')} (turn graph)",
        "",
        f"- junction graph: {road.n_nodes:,} nodes, {road.n_edges:,} directed roads; turn graph "
        f"(what is searched): {n:,} nodes, {m:,} turn arcs ({int(ok.sum()):,} finite for the "
        f"car); arrays {graph_mb:.1f} MB; CCH {cch.n_arcs:,} arcs; peak RSS "
        f"{peak_rss_mb():.0f} MB",
        f"- build from source (graph + turn graph) {build_s:.2f} s; cached load "
        f"{load_s * 1000:.1f} ms; CCH load or build {cch_s:.2f} s; kernel warm-up (numba "
        f"cache) {warm_s:.2f} s",
        f"- {args.pairs} random road pairs (seed {args.seed}); networkx on the first "
        f"{min(args.nx_pairs, args.pairs)}; machine: {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}",
        "",
        "| task | implementation | median ms | p99 ms | ratio to best gyrophare p2p |",
        "|---|---|---:|---:|---:|",
    ]
    for name, times in results.items():
        med, p99 = np.median(times), np.percentile(times, 99)
        lines.append(f"| p2p | {name} | {med:.4f} | {p99:.4f} | {med / best_p2p:.1f}x |")
    gm = np.median(mt)
    lines += [
        f"| {k}x{k} matrix | gyrophare many_to_many (parallel) | {gm:.2f} | | 1.0x |",
        f"| {k}x{k} matrix | gyrophare CCH many_to_many | {np.median(ct):.2f} | | "
        f"{np.median(ct) / gm:.2f}x |",
        f"| {k}x{k} matrix | scipy csgraph.dijkstra (indices={k}) | {np.median(st):.2f} | | "
        f"{np.median(st) / gm:.1f}x |",
        f"| {k}x{k} matrix | networkx single_source_dijkstra x{k}"
        f"{' (extrapolated from ' + str(nx_k) + ')' if nx_k < k else ''} | {nt:.2f} | | "
        f"{nt / gm:.1f}x |",
    ]
    emit(lines, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
