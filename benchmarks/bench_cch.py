"""gyrophare's Numba CCH against RoutingKit's C++ CCH (pyroutingkit) on the turn graphs the
router searches, same order, same weights.

Usage::

    python benchmarks/bench_cch.py                  # Monaco, NY, PACE 2016 Florida turn graphs
    python benchmarks/bench_cch.py ../shared/data/dimacs/USA-road-t.NY.gr.gz --pairs 2000
    ... --out benchmarks/results/cch-turns.md

Routes are searched on the turn graph (one node per directed road, one arc per turn; see
:mod:`engine.turns`), so both libraries get the *turn graph* of each map: its arcs
(``tail`` / ``head``), gyrophare's node order (METIS nested dissection of the turn graph,
written in RoutingKit's topology format and loaded, so RoutingKit contracts the same order),
and the same integer weights (RoutingKit takes uint32): the car's turn-arc weights in
deciseconds on Monaco and New York (turn cost + road entered, from the live overlay; closed
or forbidden: RoutingKit's INF_WEIGHT / gyrophare's inf), seeded uniform 1..1000 on the
unweighted PACE Florida topology. Distances of both are compared on every benchmark pair and
matrix cell (they must be equal).

Measured: preprocessing (order + contraction; RoutingKit's contraction on the same order, and
with ``--rk-order`` RoutingKit's own inertial-flow order with road midpoints as coordinates),
full customization (gyrophare's default 2 threads and 1 thread; RoutingKit 1 thread),
partial customization after closing 1 / 100 / 1,000 random roads (every turn arc entering
them; chained updates, as live traffic does), point-to-point with the path (median and p99,
each a Python call), a 50x50 matrix, memory per turn node. For Monaco and New York also the
service's write-to-routable time: ``overlay.apply(Closure)`` then, for the car and the
ambulance, ``overlay.weights`` and ``CCHMetrics.get`` (what ``Router.prepare`` does after a
write), for random roads and for a local cluster of roads. The machine is shared: every
timing is the median of several repeats.
"""

from __future__ import annotations

import argparse
import gc
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.cch import CCHIndex, CCHMetrics
from engine.cch import warm_up as cch_warm_up
from engine.io import load_graph, shared_data_dir

DEFAULT_SOURCES = ("osm/monaco_osrm-bindings.osm.pbf", "dimacs/USA-road-t.NY.gr.gz",
                   "dimacs/pace2016_FLA.gr.xz")
T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def progress(stage: str, done: int, total: int | None) -> None:
    if done == 0:
        log(f"  {stage} ...")


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return float(np.median(out)) * 1000


def load(source: Path) -> tuple:
    """Road graph, turn graph and integer turn-arc weights (float64 with inf, and uint32)."""
    import pyroutingkit as rk

    from engine.traffic import TrafficOverlay

    graph = load_graph(source)
    tg = graph.turns
    if source.name.startswith("pace"):
        w = np.random.default_rng(1).integers(1, 1001, tg.n_edges).astype(np.float64)
        kind = "uniform 1..1000 per turn arc (seeded) on the PACE topology's turn graph"
    else:
        w = np.round(np.array(TrafficOverlay(graph).weights("car", at=T0).arc) * 10.0)
        kind = "car turn-arc weights (turn cost + road entered), deciseconds"
    w_rk = np.where(np.isfinite(w), w, rk.INF_WEIGHT).astype(np.uint32)
    return graph, tg, w, w_rk, kind


def rk_topology(tg, order: np.ndarray, rank: np.ndarray, directory: str):
    """RoutingKit's CCH built on our order: write its topology files, then load them (the
    load runs RoutingKit's contraction)."""
    import pyroutingkit as rk

    d = Path(directory)
    np.array([tg.n_nodes], np.uint32).tofile(d / "node_count")
    order.astype(np.uint32).tofile(d / "order")
    rank.astype(np.uint32).tofile(d / "rank")
    tg.tail.astype(np.uint32).tofile(d / "tail")
    tg.head.astype(np.uint32).tofile(d / "head")
    topo = rk.CCHTopology()
    topo.load(str(d))
    return topo


_MEMORY_PROBE = """
import sys, numpy as np
sys.path.insert(0, {root!r})
def rss():
    with open('/proc/self/statm') as fh:
        return int(fh.read().split()[1]) * 4096
kind, d = sys.argv[1], sys.argv[2]
w = np.load(d + '/w.npy')
if kind == 'gy':
    from engine.cch import CCHIndex, warm_up
    warm_up()  # numba's code is loaded before measuring: only the data counts
    r0 = rss()
    ix = CCHIndex.load(d + '/gy.npz')
    m = ix.customize(w, parallel=False)
else:
    import pyroutingkit as rk
    wr = np.where(np.isfinite(w), w, rk.INF_WEIGHT).astype(np.uint32)
    r0 = rss()
    t = rk.CCHTopology(); t.load(d)
    m = rk.CCHMetric(t); m.customize(wr)
print(rss() - r0)
"""


def _rss_growth(kind: str, directory: str) -> float:
    """Bytes a fresh process grows by loading the hierarchy and customizing one metric."""
    import subprocess

    code = _MEMORY_PROBE.format(root=str(Path(__file__).resolve().parent.parent))
    out = subprocess.run([sys.executable, "-c", code, kind, directory], check=True,
                         capture_output=True, text=True).stdout
    return float(out.split()[-1]) / 1e6


def bench_graph(source: Path, args: argparse.Namespace) -> dict:
    import pyroutingkit as rk

    res: dict = {"name": source.name}
    log(f"{source.name}: loading the graph and its turn graph")
    t0 = time.perf_counter()
    graph, tg, w, w_rk, kind = load(source)
    res["load_s"] = time.perf_counter() - t0
    n, m = tg.n_nodes, tg.n_edges
    w.flags.writeable = False
    res.update(n=n, m=m, junctions=graph.n_nodes, kind=kind)
    log(f"  {graph.n_nodes:,} junctions, {n:,} turn nodes (roads), {m:,} turn arcs")
    rng = np.random.default_rng(args.seed)
    reps = args.repeat if n < 1_000_000 else max(3, args.repeat // 2)

    # ------------------------------------------------------------ preprocessing
    builds = []
    for i in range(1 if n > 1_000_000 else 2):
        log(f"  gyrophare build {i + 1}")
        index = CCHIndex.build(tg, progress=progress)
        builds.append((index.meta["order_seconds"], index.meta["contract_seconds"]))
        if i + 1 < (1 if n > 1_000_000 else 2):
            del index
            gc.collect()
    res.update(order_s=float(np.median([b[0] for b in builds])),
               contract_s=float(np.median([b[1] for b in builds])),
               arcs=index.n_arcs, forward=index.n_forward,
               undirected=index.meta["undirected_arcs"], topo_bytes=index.nbytes)
    log(f"  {index.meta['undirected_arcs']:,} undirected arcs -> {index.n_arcs:,} directed")
    metric = index.customize(w)
    res["gy_bytes"] = index.nbytes + metric.nbytes

    with tempfile.TemporaryDirectory() as tmp:
        log("  RoutingKit contraction on the same order")
        rk_contracts = []
        for _ in range(2):
            t0 = time.perf_counter()
            topo = rk_topology(tg, index.order, index.rank, tmp)
            rk_contracts.append(time.perf_counter() - t0)
        res["rk_contract_s"] = float(np.median(rk_contracts))
        rk_metric = rk.CCHMetric(topo)
        rk_metric.customize(w_rk)
        log("  memory probes (fresh processes)")
        index.save(Path(tmp) / "gy.npz")
        np.save(Path(tmp) / "w.npy", w)
        res["gy_rss"] = _rss_growth("gy", tmp)
        res["rk_rss"] = _rss_growth("rk", tmp)
    if args.rk_order and not source.name.startswith("pace"):
        log("  RoutingKit's own order (inertial flow on road midpoints)")
        r = tg.node_road
        lat = ((graph.lat[graph.tail[r]] + graph.lat[graph.head[r]]) / 2).astype(np.float32)
        lon = ((graph.lon[graph.tail[r]] + graph.lon[graph.head[r]]) / 2).astype(np.float32)
        t0 = time.perf_counter()
        own = rk.CCHTopology()
        own.build(tg.tail.astype(np.uint32), tg.head.astype(np.uint32), lat, lon, n)
        res["rk_own_build_s"] = time.perf_counter() - t0
        del own

    # ------------------------------------------------------------ full customization
    log("  full customization")
    for _ in range(2):  # page in the recycled metric buffers
        index.customize(w)
    res["gy_full_ms"] = median_ms(lambda: index.customize(w), 2 * reps)
    res["gy_full_seq_ms"] = median_ms(lambda: index.customize(w, parallel=False), 2 * reps)
    res["rk_full_ms"] = median_ms(lambda: rk_metric.customize(w_rk), max(3, reps // 2))
    if args.rk_threads:
        res["rk_full_2t_ms"] = median_ms(lambda: rk_metric.customize(w_rk, thread_count=2),
                                         max(2, reps // 2))
    rk_metric.customize(w_rk)

    # ------------------------------------------------------------ partial customization
    # chained: each update starts from the previous metric (as the overlay does); the same
    # closed roads (every turn arc entering them) and new weights for both
    log("  partial customization")
    current = w.copy()
    gy_m = index.customize(current)
    for k in (1, 100, 1000):
        gy_t, rk_t, arcs, changed = [], [], [], []
        for _ in range(reps):
            roads = rng.choice(tg.n_roads, k, replace=False)
            edges = tg.arcs_into(roads)
            new = rng.integers(1, 1001, len(edges)).astype(np.float64)
            new[rng.random(len(edges)) < 0.5] = np.inf  # half closed, half re-priced
            nxt = current.copy()
            nxt[edges] = new
            nxt.flags.writeable = False
            t0 = time.perf_counter()
            gy_m = index.update(gy_m, nxt, edges)
            gy_t.append(time.perf_counter() - t0)
            arcs.append(gy_m.info["arcs_changed"])
            changed.append(len(edges))
            e32 = edges.astype(np.uint32)
            n32 = np.where(np.isfinite(new), new, rk.INF_WEIGHT).astype(np.uint32)
            t0 = time.perf_counter()
            rk_metric.update_weights(e32, n32)
            rk_t.append(time.perf_counter() - t0)
            current = nxt
        res[f"partial_{k}_edges"] = int(np.median(changed))
        res[f"gy_partial_{k}_ms"] = float(np.median(gy_t)) * 1000
        res[f"rk_partial_{k}_ms"] = float(np.median(rk_t)) * 1000
        res[f"partial_{k}_arcs"] = int(np.median(arcs))
    # the chained partial updates equal a full customization of the final weights
    full_now = index.customize(current)
    assert np.array_equal(gy_m.W, full_now.W) and np.array_equal(gy_m.V, full_now.V)
    del gy_m, full_now
    # queries on the original weights (the updates closed many roads)
    rk_metric.customize(w_rk)
    metric = index.customize(w)

    # ------------------------------------------------------------ point to point with path
    log("  queries")
    # pairs of turn nodes a car can leave and enter (Monaco has many footways)
    fin = np.isfinite(w)
    usable = (np.bincount(tg.tail[fin], minlength=n) > 0) & (np.bincount(tg.head[fin],
                                                                          minlength=n) > 0)
    pairs = rng.choice(np.flatnonzero(usable), (args.pairs, 2))
    zero = np.zeros(1)
    mismatches, path_len = 0, []
    seeds = [np.array([s], dtype=np.int32) for s in pairs[:, 0]]
    targets = [np.array([t], dtype=np.int32) for t in pairs[:, 1]]
    for _ in range(2):  # warm caches once, keep the second round
        gy_q, rk_q, mismatches, path_len = [], [], 0, []
        for i, (s, t) in enumerate(pairs):
            s, t = int(s), int(t)
            t0 = time.perf_counter()
            c, edges = index.query(metric, seeds[i], zero, targets[i], zero)
            t1 = time.perf_counter()
            d_rk, _nodes, _arcs = rk_metric.query(s, t)
            t2 = time.perf_counter()
            gy_q.append(t1 - t0)
            rk_q.append(t2 - t1)
            if (c if np.isfinite(c) else rk.INF_WEIGHT) != d_rk:
                mismatches += 1
            path_len.append(len(edges))
    gy_q, rk_q = np.array(gy_q) * 1000, np.array(rk_q) * 1000
    res.update(gy_q_med=np.median(gy_q), gy_q_p99=np.percentile(gy_q, 99),
               rk_q_med=np.median(rk_q), rk_q_p99=np.percentile(rk_q, 99),
               mismatches=mismatches, reachable=int(np.sum(np.array(path_len) > 0)),
               path_edges=float(np.mean([p for p in path_len if p > 0] or [0])),
               n_pairs=len(pairs))
    first = np.arange(len(pairs) + 1, dtype=np.int32)
    s32, t32 = pairs[:, 0].astype(np.int32), pairs[:, 1].astype(np.int32)
    zeros = np.zeros(len(pairs))
    res["gy_batch_us"] = median_ms(
        lambda: index.distances(metric, first, s32, zeros, first, t32, zeros), 3
    ) * 1000 / len(pairs)

    # ------------------------------------------------------------ matrix
    k = args.matrix
    src = pairs[:k, 0].astype(np.int32)
    dst = pairs[:k, 1].astype(np.int32)
    fk = np.arange(k + 1, dtype=np.int32)
    zk = np.zeros(k)
    gy_mat = index.many_to_many(metric, fk, src, zk, fk, dst, zk)
    rk_mat = rk_metric.distances_many_to_many(src.astype(np.uint32), dst.astype(np.uint32))
    res["matrix_mismatches"] = int(np.sum(np.where(np.isfinite(gy_mat), gy_mat, rk.INF_WEIGHT)
                                          != rk_mat))
    res["gy_mat_ms"] = median_ms(lambda: index.many_to_many(metric, fk, src, zk, fk, dst, zk),
                                 reps * 2)
    res["rk_mat_ms"] = median_ms(
        lambda: rk_metric.distances_many_to_many(src.astype(np.uint32), dst.astype(np.uint32)),
        reps * 2)
    rk_metric = topo = metric = None  # free them before the live measurements
    gc.collect()

    # ------------------------------------------------------------ write-to-routable
    if not source.name.startswith("pace") and not args.skip_live:
        res.update(live(graph, index, args))
    return res


def _local_roads(graph, rng: np.random.Generator, k: int) -> np.ndarray:
    """About ``k`` roads around a random junction (breadth-first over junctions)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import breadth_first_order

    n = graph.n_nodes
    adj = csr_matrix((np.ones(graph.n_edges), (graph.tail, graph.head)), shape=(n, n))
    while True:
        order = breadth_first_order(adj, int(rng.integers(n)), directed=False,
                                    return_predecessors=False)
        for j in range(k // 2 + 1, len(order) + 1, max(1, k // 4)):
            near = np.zeros(n, dtype=bool)
            near[order[:j]] = True
            roads = np.flatnonzero(near[graph.tail] & near[graph.head])
            if len(roads) >= k:
                return roads[:k]


def live(graph, index: CCHIndex, args: argparse.Namespace) -> dict:
    """``overlay.apply(Closure)``, then ``overlay.weights`` + ``CCHMetrics.get`` for the car
    and the ambulance: the service's write-to-routable time."""
    from engine.traffic import Closure, TrafficOverlay

    log("  write-to-routable (overlay + CCHMetrics, car and ambulance)")
    overlay = TrafficOverlay(graph)
    metrics = CCHMetrics(index, overlay)
    for p in ("car", "ambulance"):
        metrics.get(overlay.weights(p, at=T0))
    rng = np.random.default_rng(args.seed + 1)
    out: dict = {}
    for mode in ("random", "local"):
        for k in (1, 100, 1000):
            total, parts, infos = [], [], []
            for _ in range(args.repeat):
                roads = (rng.choice(graph.n_edges, k, replace=False) if mode == "random"
                         else _local_roads(graph, rng, k))
                t0 = time.perf_counter()
                overlay.apply(Closure(edges=roads.tolist()), at=T0)
                row = [time.perf_counter() - t0]
                for p in ("car", "ambulance"):
                    t1 = time.perf_counter()
                    W = overlay.weights(p, at=T0)
                    t2 = time.perf_counter()
                    m = metrics.get(W)
                    row += [t2 - t1, time.perf_counter() - t2]
                    infos.append(m.info)
                total.append(time.perf_counter() - t0)
                parts.append(row)
            med = np.median(parts, axis=0) * 1000
            out[f"live_{mode}_{k}"] = {
                "total_ms": float(np.median(total)) * 1000, "apply_ms": med[0],
                "weights_ms": med[1] + med[3], "cch_ms": med[2] + med[4],
                "arcs_changed": int(np.median([i.get("arcs_changed", -1) for i in infos])),
                "modes": sorted({i["mode"].split(",")[0] for i in infos})}
    return out


def table(results: list[dict]) -> list[str]:
    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}" if b > 0 else "n/a"

    lines = []
    for r in results:
        n = r["n"]
        rows = [
            ("order (METIS ND of the turn graph, gyrophare for both)", r["order_s"] * 1000,
             None),
            ("contraction on that order", r["contract_s"] * 1000, r["rk_contract_s"] * 1000),
        ]
        if "rk_own_build_s" in r:
            rows.append(("preprocessing = order + contraction (RK: its own inertial flow)",
                         (r["order_s"] + r["contract_s"]) * 1000, r["rk_own_build_s"] * 1000))
        rows += [
            ("full customization (gyrophare 2 threads; RK 1 thread)", r["gy_full_ms"],
             r["rk_full_ms"]),
            ("full customization, both 1 thread", r["gy_full_seq_ms"], r["rk_full_ms"]),
        ]
        if "rk_full_2t_ms" in r:
            rows.append(("full customization, RK thread_count=2", r["gy_full_ms"],
                         r["rk_full_2t_ms"]))
        for k in (1, 100, 1000):
            rows.append((f"partial customization, {k:,} road{'s' if k > 1 else ''} "
                         f"({r[f'partial_{k}_edges']:,} turn arcs; "
                         f"~{r[f'partial_{k}_arcs']:,} CCH arcs changed)",
                         r[f"gy_partial_{k}_ms"], r[f"rk_partial_{k}_ms"]))
        rows += [
            ("point-to-point with path, median", r["gy_q_med"], r["rk_q_med"]),
            ("point-to-point with path, p99", r["gy_q_p99"], r["rk_q_p99"]),
            ("50x50 matrix", r["gy_mat_ms"], r["rk_mat_ms"]),
            ("memory per turn node, bytes (fresh process: load hierarchy + 1 metric)",
             r["gy_rss"] * 1e6 / n, r["rk_rss"] * 1e6 / n),
        ]
        lines += [
            f"### {r['name']}: turn graph of {r['junctions']:,} junctions: {n:,} turn nodes "
            f"(roads), {r['m']:,} turn arcs",
            "",
            f"Weights: {r['kind']}. Hierarchy: {r['undirected']:,} undirected arcs; "
            f"gyrophare keeps the {r['arcs']:,} directions "
            f"that can ever be finite ({r['forward']:,} upward, "
            f"{r['arcs'] - r['forward']:,} downward). "
            f"Distances: {r['mismatches']} mismatches in {r['n_pairs']} point-to-point pairs, "
            f"{r['matrix_mismatches']} in the matrix. {r['reachable']} pairs connected, their "
            f"paths average {r['path_edges']:.0f} turn arcs. gyrophare arrays: "
            f"{r['topo_bytes'] / n:.0f} bytes/turn node of "
            f"topology + {(r['gy_bytes'] - r['topo_bytes']) / n:.0f} per metric; batched "
            f"distance-only queries: {r['gy_batch_us']:.1f} µs each. Graph + turn graph "
            f"load: {r['load_s']:.1f} s.",
            "",
            "| measure | gyrophare ms | RoutingKit ms | gyrophare / RoutingKit |",
            "|---|---:|---:|---:|",
        ]
        for name, a, b in rows:
            if b is None:
                lines.append(f"| {name} | {a:.3f} | | |")
            elif np.isnan(b):
                lines.append(f"| {name} | {a:.3f} | n/a | |")
            else:
                lines.append(f"| {name} | {a:.3f} | {b:.3f} | {ratio(a, b)} |")
        lines.append("")
        if any(k.startswith("live_") for k in r):
            lines += [
                "Write-to-routable (the service after a write): `overlay.apply(Closure)`, "
                "then `overlay.weights(p)` and `CCHMetrics.get` for p = car and ambulance "
                "(medians; ms):",
                "",
                "| roads closed | total | apply | weights (both) | CCH (both) | "
                "CCH arcs changed (per profile) | customization |",
                "|---|---:|---:|---:|---:|---:|---|",
            ]
            for mode in ("random", "local"):
                for k in (1, 100, 1000):
                    x = r.get(f"live_{mode}_{k}")
                    if x:
                        lines.append(
                            f"| {k:,} {mode} | {x['total_ms']:.1f} | {x['apply_ms']:.1f} | "
                            f"{x['weights_ms']:.1f} | {x['cch_ms']:.1f} | "
                            f"{x['arcs_changed']:,} | {', '.join(x['modes'])} |")
            lines.append("")
    return lines


def floors(results: list[dict]) -> list[str]:
    """The issue's floors (New York's turn graph, 2 threads), checked on this run."""
    checks = []
    for r in results:
        if r["name"].startswith("USA-road-t.NY"):
            checks += [("NY full customization <= 200 ms", r["gy_full_ms"], 200.0),
                       ("NY point-to-point with path, median <= 0.3 ms", r["gy_q_med"], 0.3),
                       ("NY order + contraction <= 60 s (with graph load)",
                        (r["order_s"] + r["contract_s"] + r["load_s"]) * 1000, 60_000.0)]
            for mode in ("random", "local"):
                x = r.get(f"live_{mode}_100")
                if x:
                    checks.append((f"NY 100 {mode} roads write-to-routable, car + ambulance "
                                   "<= 15 ms", x["total_ms"], 15.0))
    if not checks:
        return []
    lines = ["## Floors", "", "| floor | measured ms | |", "|---|---:|---|"]
    lines += [f"| {name} | {v:.3f} | {'ok' if v <= lim else 'MISSED'} |"
              for name, v, lim in checks]
    return [*lines, ""]


NOTES = [
    "## Reading the ratios",
    "",
    "- Both hierarchies contract the same order of the same turn graph. gyrophare then drops "
    "every arc direction that no weights can ever make finite (a shortcut `x -> z` exists "
    "only if some directed path through lower ranks does): turn graphs are one-way almost "
    "everywhere, so half the directions go and the lower triangles customization evaluates "
    "fall by ~3x (New York: 2 x 183 M -> 119 M). RoutingKit customizes every undirected arc "
    "in both directions.",
    "- Full customization: 0.3-0.45x RoutingKit's single thread on one thread, helped by "
    "unsigned indices (no negative-index code in the triangle loop) and a branch-free "
    "minimum-and-via update (ucomisd + cmov). Independent elimination-tree subtrees run on "
    "the 2 cores: ~1.5x, not 2x, as one core already streams most of what the machine's "
    "memory delivers (~7.5 GB/s). Weights are float64 seconds (exact against the float64 "
    "oracle) where RoutingKit uses uint32.",
    "- Partial customization is 1.1-1.6x RoutingKit: RoutingKit updates its uint32 metric in "
    "place, gyrophare writes a new float64 metric with middle nodes (queries in flight keep "
    "theirs) into a recycled buffer, copying only the arcs the previous update wrote, and "
    "keeps ties bit-identical to a full customization. Random roads are the worst case: "
    "each closed road changes ~100-130 shortcuts spread over the whole hierarchy (New "
    "York, 100 random roads: ~13k shortcuts, ~800k upper triangles checked, latency-bound "
    "random accesses); roads around one junction change ~30 each. The subtree groups are "
    "updated on the 2 cores (1.6-1.9x from 64 changed arcs), and past a budget of "
    "recomputed arcs the service customizes in full instead.",
    "- Write-to-routable also pays the overlay: `apply` (not CCH code) and the weight "
    "snapshots, now written into recycled buffers (only the roads changed since the state a "
    "buffer held are recomputed: ~1 ms per profile on New York instead of ~4.5 ms of "
    "copies).",
    "- Queries relax only the directions that exist and unpack paths through the recorded "
    "middle node of every shortcut. The machine is shared and its speed varies by 20-40% "
    "between runs (RoutingKit's figures move with ours).",
    "",
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sources", nargs="*", help="graphs (default: Monaco, NY, PACE Florida)")
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--matrix", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--rk-threads", action="store_true",
                    help="also time RoutingKit's OpenMP customization with 2 threads")
    ap.add_argument("--rk-order", action="store_true",
                    help="also build RoutingKit's own inertial-flow order (slow)")
    ap.add_argument("--skip-live", action="store_true",
                    help="skip the overlay write-to-routable measurements")
    ap.add_argument("--out", help="also write the Markdown to this file")
    args = ap.parse_args(argv)
    import numba
    import pyroutingkit  # noqa: F401  (fail early when the bench extra is missing)

    sources = [Path(s) for s in args.sources] or [shared_data_dir() / s
                                                  for s in DEFAULT_SOURCES]
    t0 = time.perf_counter()
    cch_warm_up()
    warm = time.perf_counter() - t0
    results = []
    for s in sources:
        results.append(bench_graph(s, args))
        gc.collect()
    lines = [
        "# CCH benchmark on turn graphs: gyrophare (Numba) vs RoutingKit (C++, pyroutingkit)",
        "",
        f"Machine: {platform.machine()}, {numba.config.NUMBA_NUM_THREADS} cores shared with "
        f"other jobs; Python {platform.python_version()}, numba {numba.__version__}. Medians "
        f"of {args.repeat} repeats ({args.pairs} random pairs of turn nodes for queries); "
        f"kernel warm-up (numba cache) {warm:.2f} s. Both use the same METIS order of the "
        "same turn graph and the same weights; query times are one Python call each "
        "(validation + search + path unpacking to turn arcs for gyrophare; search + node "
        "and arc paths for RoutingKit). Command: `python benchmarks/bench_cch.py "
        f"{' '.join(argv if argv is not None else sys.argv[1:])}`.",
        "",
        *table(results),
        *floors(results),
        *NOTES,
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
