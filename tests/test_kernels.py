"""Kernels of engine.kernels checked against scipy.sparse.csgraph.dijkstra.

scipy is an independent oracle: every cost the kernels report is compared with
it, and every returned path is re-walked and re-priced edge by edge.
"""

import itertools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import dijkstra as scipy_dijkstra

from engine.kernels import (
    Workspace,
    astar,
    astar_factor,
    bidirectional_dijkstra,
    bidirectional_path_edges,
    dijkstra,
    isochrone,
    many_to_many,
    one_to_many,
    path_edges,
    validate_graph,
    validate_weight,
    warm_up,
)

RTOL = 1e-9


# --------------------------------------------------------------------------- graphs


class Graph:
    """CSR graph built from an edge list (edge ids follow a stable sort by tail)."""

    def __init__(self, n, tail, head, weight, lat, lon):
        order = np.argsort(tail, kind="stable")
        self.n = n
        self.tail = np.asarray(tail, dtype=np.int32)[order]
        self.head = np.asarray(head, dtype=np.int32)[order]
        self.weight = np.asarray(weight, dtype=np.float64)[order]
        self.first_out = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(np.bincount(self.tail, minlength=n), out=self.first_out[1:])
        self.in_edge = np.argsort(self.head, kind="stable").astype(np.int32)
        self.first_in = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(np.bincount(self.head, minlength=n), out=self.first_in[1:])
        self.lat = np.asarray(lat, dtype=np.float64)
        self.lon = np.asarray(lon, dtype=np.float64)

    def scipy_matrix(self, weight=None):
        """Finite edges only, one entry per (u, v) holding the minimum weight."""
        w = self.weight if weight is None else weight
        keep = np.isfinite(w) & (self.tail != self.head)
        u, v, w = self.tail[keep], self.head[keep], w[keep]
        order = np.lexsort((w, v, u))  # by u, then v, then weight
        u, v, w = u[order], v[order], w[order]
        first = np.ones(len(u), dtype=bool)
        first[1:] = (u[1:] != u[:-1]) | (v[1:] != v[:-1])
        return sp.csr_matrix((w[first], (u[first], v[first])), shape=(self.n, self.n))

    def oracle(self, seeds, seed_cost, weight=None):
        """Distance of every node from the seeds (with offsets), by scipy."""
        if len(seeds) == 0:
            return np.full(self.n, np.inf)
        d = scipy_dijkstra(self.scipy_matrix(weight), indices=np.asarray(seeds))
        return (np.asarray(seed_cost)[:, None] + d.reshape(len(seeds), self.n)).min(axis=0)


def haversine(lat1, lon1, lat2, lon2):
    la1, la2 = np.radians(lat1), np.radians(lat2)
    a = (
        np.sin((la2 - la1) / 2) ** 2
        + np.cos(la1) * np.cos(la2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371008.8 * np.arcsin(np.sqrt(np.minimum(a, 1.0)))


def random_graph(seed, n=300, m=1200, zero_frac=0.05, inf_frac=0.05):
    """Directed graph in a 5 km box: weights are travel times (m / speed).

    Has multi-edges, self-loops, zero-length edges between nodes sharing a
    position (weight 0 while A* keeps a positive factor), closed (inf) edges
    and, if ``zero_frac > 0``, zero weights on ordinary edges.
    """
    rng = np.random.default_rng(seed)
    lat = 48.85 + rng.uniform(0, 0.045, n)
    lon = 2.30 + rng.uniform(0, 0.07, n)
    twins = rng.choice(n, size=(n // 20, 2))
    lat[twins[:, 1]], lon[twins[:, 1]] = lat[twins[:, 0]], lon[twins[:, 0]]
    tail = rng.integers(0, n, m)
    head = rng.integers(0, n, m)
    dup = rng.choice(m, m // 10)  # multi-edges with another weight
    tail = np.concatenate([tail, tail[dup], twins[:, 0], twins[:, 1], rng.integers(0, n, 5)])
    head = np.concatenate([head, head[dup], twins[:, 1], twins[:, 0], np.zeros(5, int)])
    head[-5:] = tail[-5:]  # self-loops
    weight = haversine(lat[tail], lon[tail], lat[head], lon[head]) / rng.uniform(5, 30, len(tail))
    weight[rng.random(len(tail)) < zero_frac] = 0.0
    weight[rng.random(len(tail)) < inf_frac] = np.inf
    return Graph(n, tail, head, weight, lat, lon)


GRAPHS = [random_graph(1), random_graph(2, zero_frac=0.0), random_graph(3, n=200, m=400)]


def random_points(rng, g, k, max_per_group=2, max_cost=30.0):
    """``k`` groups of 1..max_per_group nodes with offsets, as CSR arrays."""
    sizes = rng.integers(1, max_per_group + 1, k)
    first = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32)
    nodes = rng.integers(0, g.n, first[-1]).astype(np.int32)
    cost = rng.uniform(0, max_cost, first[-1])
    cost[rng.random(len(cost)) < 0.2] = 0.0
    return first, nodes, cost


def queries(seed, g, count):
    """Random (seeds, seed_cost, targets, target_cost), sometimes overlapping."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        _, s, sc = random_points(rng, g, 1, 3)
        _, t, tc = random_points(rng, g, 1, 3)
        if rng.random() < 0.1:
            t[0] = s[0]  # a seed that is also a target
        yield s, sc, t, tc


def expected(g, s, sc, t, tc, weight=None):
    return (g.oracle(s, sc, weight)[t] + tc).min()


def check_path(g, edges, s, sc, t, tc, cost, node=None, weight=None):
    """The path is connected, runs from a seed to a target and costs ``cost``.

    ``node`` names the seed-and-target node an empty path stands for.
    """
    w = g.weight if weight is None else weight
    s, sc, t, tc = (np.asarray(x) for x in (s, sc, t, tc))
    assert edges.dtype == np.int32
    if len(edges):
        assert np.array_equal(g.head[edges[:-1]], g.tail[edges[1:]]), "path not connected"
        first, last = g.tail[edges[0]], g.head[edges[-1]]
    else:
        first = last = node
    assert np.isfinite(w[edges]).all(), "path uses a closed edge"
    assert first in s and last in t
    start_cost, end_cost = sc[s == first].min(), tc[t == last].min()
    np.testing.assert_allclose(start_cost + w[edges].sum() + end_cost, cost, rtol=RTOL)
    return last


@pytest.fixture(scope="module", autouse=True)
def _compiled():
    warm_up()


# --------------------------------------------------------------------------- p2p kernels


@pytest.mark.parametrize("gi", range(len(GRAPHS)))
def test_dijkstra_matches_scipy(gi):
    g = GRAPHS[gi]
    ws = Workspace.for_graph(g.n)
    n_inf = 0
    for s, sc, t, tc in queries(gi, g, 40):
        cost, ti = dijkstra(g.first_out, g.head, g.weight, s, sc, t, tc, ws)
        np.testing.assert_allclose(cost, expected(g, s, sc, t, tc), rtol=RTOL)
        if np.isinf(cost):
            n_inf += 1
            assert ti == -1
            continue
        np.testing.assert_allclose(ws.dist[t[ti]] + tc[ti], cost, rtol=RTOL)
        edges = path_edges(ws.pred_edge, g.tail, t[ti])
        assert check_path(g, edges, s, sc, t, tc, cost, node=t[ti]) == t[ti]
    assert n_inf < 40  # the queries are not all trivially unreachable


@pytest.mark.parametrize("gi", range(len(GRAPHS)))
def test_bidirectional_matches_scipy(gi):
    g = GRAPHS[gi]
    wf, wb = Workspace.for_graph(g.n), Workspace.for_graph(g.n)
    for s, sc, t, tc in queries(10 + gi, g, 40):
        cost, meet = bidirectional_dijkstra(
            g.first_out, g.head, g.first_in, g.in_edge, g.tail, g.weight, s, sc, t, tc, wf, wb
        )
        np.testing.assert_allclose(cost, expected(g, s, sc, t, tc), rtol=RTOL)
        if np.isinf(cost):
            assert meet == -1
            continue
        np.testing.assert_allclose(wf.dist[meet] + wb.dist[meet], cost, rtol=RTOL)
        edges = bidirectional_path_edges(wf, wb, g.tail, g.head, meet)
        check_path(g, edges, s, sc, t, tc, cost, node=meet)


def test_astar_factor_is_admissible_and_tight():
    g = GRAPHS[1]  # no zero weights except on zero-length edges
    factor = astar_factor(g.weight, g.tail, g.head, g.lat, g.lon)
    d = haversine(g.lat[g.tail], g.lon[g.tail], g.lat[g.head], g.lon[g.head])
    ok = np.isfinite(g.weight) & (d > 0)
    assert factor > 0
    assert (factor * d[ok] <= g.weight[ok]).all()
    np.testing.assert_allclose(factor, (g.weight[ok] / d[ok]).min(), rtol=1e-8)
    # A zero weight on an edge of positive length forces the trivial bound.
    g0 = GRAPHS[0]
    assert astar_factor(g0.weight, g0.tail, g0.head, g0.lat, g0.lon) == 0.0


@pytest.mark.parametrize("gi", range(len(GRAPHS)))
def test_astar_matches_scipy(gi):
    g = GRAPHS[gi]
    ws = Workspace.for_graph(g.n)
    factor = astar_factor(g.weight, g.tail, g.head, g.lat, g.lon)
    for f in (factor, 0.0):
        for s, sc, t, tc in queries(20 + gi, g, 30):
            cost, ti = astar(g.first_out, g.head, g.weight, g.lat, g.lon, s, sc, t, tc, f, ws)
            np.testing.assert_allclose(cost, expected(g, s, sc, t, tc), rtol=RTOL)
            if np.isinf(cost):
                assert ti == -1
                continue
            edges = path_edges(ws.pred_edge, g.tail, t[ti])
            assert check_path(g, edges, s, sc, t, tc, cost, node=t[ti]) == t[ti]


def test_astar_scans_fewer_nodes_than_dijkstra():
    """The heuristic must actually guide the search (here on a geometric grid)."""
    g = grid_graph(30)
    ws = Workspace.for_graph(g.n)
    factor = astar_factor(g.weight, g.tail, g.head, g.lat, g.lon)
    s, t, z = np.array([15 * 30], np.int32), np.array([15 * 30 + 29], np.int32), np.zeros(1)
    c1, _ = astar(g.first_out, g.head, g.weight, g.lat, g.lon, s, z, t, z, factor, ws)
    scanned_astar = ws.n_touched[0]
    c2, _ = dijkstra(g.first_out, g.head, g.weight, s, z, t, z, ws)
    np.testing.assert_allclose(c1, c2, rtol=RTOL)
    assert scanned_astar < ws.n_touched[0]


def grid_graph(k):
    """k x k bidirected grid, 100 m spacing, random speeds."""
    rng = np.random.default_rng(k)
    idx = np.arange(k * k).reshape(k, k)
    pairs = [(idx[:, :-1], idx[:, 1:]), (idx[:-1, :], idx[1:, :])]
    tail = np.concatenate([a.ravel() for a, b in pairs] + [b.ravel() for a, b in pairs])
    head = np.concatenate([b.ravel() for a, b in pairs] + [a.ravel() for a, b in pairs])
    lat = 48.8 + (idx // k).ravel() * 0.0009
    lon = 2.3 + (idx % k).ravel() * 0.00137
    w = haversine(lat[tail], lon[tail], lat[head], lon[head]) / rng.uniform(8, 14, len(tail))
    return Graph(k * k, tail, head, w, lat, lon)


# --------------------------------------------------------------------------- groups


@pytest.mark.parametrize("gi", range(len(GRAPHS)))
def test_one_to_many_matches_scipy(gi):
    g = GRAPHS[gi]
    rng = np.random.default_rng(30 + gi)
    ws = Workspace.for_graph(g.n)
    for _ in range(10):
        _, s, sc = random_points(rng, g, 1)
        # wide offsets: a group's later-settled candidate often wins
        tf, t, tc = random_points(rng, g, 25, max_cost=400.0)
        tf = np.concatenate([tf, tf[-1:]])  # plus an empty group
        out = np.empty(len(tf) - 1)
        res = one_to_many(g.first_out, g.head, g.weight, s, sc, tf, t, tc, ws, out)
        assert res is out
        total = g.oracle(s, sc)[t] + tc
        want = [total[a:b].min() if b > a else np.inf for a, b in itertools.pairwise(tf)]
        np.testing.assert_allclose(out, want, rtol=RTOL)
        assert np.isinf(out[-1])


def test_one_to_many_stops_early_on_an_unreachable_candidate():
    """A group whose second candidate is unreachable must not force a full scan."""
    g = grid_graph(30)
    ws = Workspace.for_graph(g.n)
    w = g.weight.copy()
    w[g.head == g.n - 1] = np.inf  # last node cannot be reached at all
    s, z = np.array([0], np.int32), np.zeros(1)
    tf, t, tc = np.array([0, 2], np.int32), np.array([1, g.n - 1], np.int32), np.zeros(2)
    out = one_to_many(g.first_out, g.head, w, s, z, tf, t, tc, ws, np.empty(1))
    np.testing.assert_allclose(out, g.oracle(s, z, w)[[1]], rtol=RTOL)
    assert ws.n_touched[0] < g.n // 4


@pytest.mark.parametrize("gi", range(len(GRAPHS)))
def test_many_to_many_matches_scipy(gi):
    g = GRAPHS[gi]
    rng = np.random.default_rng(40 + gi)
    ws = Workspace.for_graph(g.n)
    sf, s, sc = random_points(rng, g, 7)  # more sources than threads
    tf, t, tc = random_points(rng, g, 9, max_cost=400.0)
    mat = many_to_many(g.first_out, g.head, g.weight, sf, s, sc, tf, t, tc, ws)
    assert mat.shape == (7, 9)
    for a in range(7):
        d = g.oracle(s[sf[a] : sf[a + 1]], sc[sf[a] : sf[a + 1]])[t] + tc
        want = [d[tf[b] : tf[b + 1]].min() for b in range(9)]
        np.testing.assert_allclose(mat[a], want, rtol=RTOL)
    pool = ws.pool()
    again = many_to_many(g.first_out, g.head, g.weight, sf, s, sc, tf, t, tc, ws)
    assert ws.pool() is pool  # per-thread workspaces are cached, not reallocated
    np.testing.assert_array_equal(again, mat)


@pytest.mark.parametrize("gi", range(len(GRAPHS)))
def test_isochrone_matches_scipy(gi):
    g = GRAPHS[gi]
    rng = np.random.default_rng(50 + gi)
    ws = Workspace.for_graph(g.n)
    for limit in (0.0, 200.0, 600.0, np.inf):
        _, s, sc = random_points(rng, g, 1, 3)
        nodes, cost = isochrone(g.first_out, g.head, g.weight, s, sc, limit, ws)
        dist = g.oracle(s, sc)
        assert set(nodes.tolist()) == set(
            np.flatnonzero(np.isfinite(dist) & (dist <= limit)).tolist()
        )
        assert len(set(nodes.tolist())) == len(nodes)
        np.testing.assert_allclose(cost, dist[nodes], rtol=RTOL)
        assert (np.diff(cost) >= 0).all(), "not in settle order"
        for v, c in zip(nodes[::7], cost[::7], strict=True):
            check_path(g, path_edges(ws.pred_edge, g.tail, v), s, sc, [v], [0.0], c, node=v)


# --------------------------------------------------------------------------- edge cases


def tiny():
    """0 -> 1 (0 s) -> 2 (5 s); 2 -> 3 closed; 4 isolated; 1 -> 1 self-loop; 0 => 1 twice."""
    tail = [0, 0, 1, 1, 2]
    head = [1, 1, 2, 1, 3]
    weight = [0.0, 3.0, 5.0, 1.0, np.inf]
    return Graph(5, tail, head, weight, np.full(5, 48.0), np.linspace(2, 2.01, 5))


def run_all(g, s, sc, t, tc):
    """(cost, path, node) from dijkstra, bidirectional and A*.

    ``node`` is the target reached (meeting node for bidirectional), -1 if none.
    """
    wf, wb = Workspace.for_graph(g.n), Workspace.for_graph(g.n)
    s, t = np.asarray(s, np.int32), np.asarray(t, np.int32)
    sc, tc = np.asarray(sc, np.float64), np.asarray(tc, np.float64)

    def found(cost, ti):
        if ti < 0:
            return cost, None, -1
        return cost, path_edges(wf.pred_edge, g.tail, t[ti]), t[ti]

    out = [found(*dijkstra(g.first_out, g.head, g.weight, s, sc, t, tc, wf))]
    c, meet = bidirectional_dijkstra(
        g.first_out, g.head, g.first_in, g.in_edge, g.tail, g.weight, s, sc, t, tc, wf, wb
    )
    path = bidirectional_path_edges(wf, wb, g.tail, g.head, meet) if meet >= 0 else None
    out.append((c, path, meet))
    f = astar_factor(g.weight, g.tail, g.head, g.lat, g.lon)
    out.append(found(*astar(g.first_out, g.head, g.weight, g.lat, g.lon, s, sc, t, tc, f, wf)))
    return out


def test_unreachable_closed_edge_and_isolated_node():
    g = tiny()
    for target in (3, 4):  # behind an inf edge / isolated
        for cost, path, _ in run_all(g, [0], [0.0], [target], [0.0]):
            assert cost == np.inf and path is None
    ws = Workspace.for_graph(g.n)
    cost, ti = dijkstra(g.first_out, g.head, g.weight, [0], [0.0], [4], [0.0], ws)
    assert (cost, ti) == (np.inf, -1)
    _, meet = bidirectional_dijkstra(
        g.first_out, g.head, g.first_in, g.in_edge, g.tail, g.weight,
        [0], [0.0], [4], [0.0], ws, Workspace.for_graph(g.n),
    )  # fmt: skip
    assert meet == -1
    out = one_to_many(g.first_out, g.head, g.weight, [0], [0.0], [0, 1, 2], [3, 2], [0.0, 1.0],
                      ws, np.empty(2))  # fmt: skip
    np.testing.assert_array_equal(out, [np.inf, 6.0])
    nodes, _ = isochrone(g.first_out, g.head, g.weight, [0], [0.0], np.inf, ws)
    assert sorted(nodes.tolist()) == [0, 1, 2]


def test_empty_seed_or_target_set_is_unreachable_without_scanning():
    g = GRAPHS[0]
    for s, t in (([], [3]), ([3], [])):
        e = np.zeros(len(s)), np.zeros(len(t))
        for cost, path, node in run_all(
            g, np.array(s, np.int32), e[0], np.array(t, np.int32), e[1]
        ):
            assert (cost, path, node) == (np.inf, None, -1)
        ws = Workspace.for_graph(g.n)
        dijkstra(g.first_out, g.head, g.weight, s, e[0], t, e[1], ws)
        assert ws.n_touched[0] <= 1
        astar(g.first_out, g.head, g.weight, g.lat, g.lon, s, e[0], t, e[1], 0.0, ws)
        assert ws.n_touched[0] <= 1


def test_threads_with_their_own_workspaces_do_not_interfere():
    """Kernels release the GIL; one workspace per thread must be enough."""
    g = GRAPHS[0]
    qs = list(queries(5, g, 60))

    def run(chunk):
        ws = Workspace.for_graph(g.n)
        return [dijkstra(g.first_out, g.head, g.weight, *q, ws)[0] for q in chunk]

    with ThreadPoolExecutor(2) as pool:
        got = [c for part in pool.map(run, [qs[0::2], qs[1::2]]) for c in part]
    want = run(qs[0::2]) + run(qs[1::2])
    assert got == want
    np.testing.assert_allclose(got[:3], [expected(g, *q) for q in qs[0:6:2]], rtol=RTOL)


def test_seed_equals_target_and_zero_weights():
    g = tiny()
    for cost, path, _ in run_all(g, [2], [1.5], [2], [2.5]):
        assert cost == 4.0 and len(path) == 0
    for cost, path, _ in run_all(g, [0], [0.0], [1], [0.0]):  # zero-weight edge, not the 3 s twin
        assert cost == 0.0 and g.tail[path].tolist() == [0]
        assert g.weight[path].tolist() == [0.0]


def test_several_seeds_and_targets_pick_the_best_combination():
    g = tiny()
    # from 0: reach 2 at 5 (+10) or 1 at 0 (+7); from 2 with offset 9: 2 at 9 (+10)
    for cost, path, _ in run_all(g, [0, 2], [0.0, 9.0], [2, 1], [10.0, 7.0]):
        assert cost == 7.0
        assert g.head[path[-1]] == 1


def test_workspace_reuse_matches_fresh_workspaces():
    """200 mixed queries on one workspace == the same queries on fresh ones."""
    g = GRAPHS[0]
    rng = np.random.default_rng(99)
    ws, wb = Workspace.for_graph(g.n), Workspace.for_graph(g.n)
    factor = astar_factor(g.weight, g.tail, g.head, g.lat, g.lon)
    args = (g.first_out, g.head, g.weight)
    for i, (s, sc, t, tc) in enumerate(queries(7, g, 200)):
        fresh, fresh_b = Workspace.for_graph(g.n), Workspace.for_graph(g.n)
        kind = i % 5
        if kind == 0:
            got = dijkstra(*args, s, sc, t, tc, ws)
            want = dijkstra(*args, s, sc, t, tc, fresh)
        elif kind == 1:
            rev = (g.first_in, g.in_edge, g.tail)
            got = bidirectional_dijkstra(g.first_out, g.head, *rev, g.weight, s, sc, t, tc, ws, wb)
            want = bidirectional_dijkstra(
                g.first_out, g.head, *rev, g.weight, s, sc, t, tc, fresh, fresh_b
            )
        elif kind == 2:
            geo = (g.lat, g.lon)
            got = astar(*args, *geo, s, sc, t, tc, factor, ws)
            want = astar(*args, *geo, s, sc, t, tc, factor, fresh)
        elif kind == 3:
            tf = np.array([0, 1, len(t)], np.int32)
            got = tuple(one_to_many(*args, s, sc, tf, t, tc, ws, np.empty(2)))
            want = tuple(one_to_many(*args, s, sc, tf, t, tc, fresh, np.empty(2)))
        else:
            limit = rng.uniform(0, 200)
            got = tuple(map(tuple, isochrone(*args, s, sc, limit, ws)))
            want = tuple(map(tuple, isochrone(*args, s, sc, limit, fresh)))
        assert got == want, f"query {i} (kind {kind})"
        np.testing.assert_array_equal(ws.dist, fresh.dist)
        np.testing.assert_array_equal(ws.pred_edge, fresh.pred_edge)
        assert (ws.target_mark == -1).all()
    # Whatever kernel ran before, reset restores the pristine state.
    dijkstra(*args, [], [], [], [], ws)
    assert np.isinf(ws.dist).all() and (ws.pred_edge == -1).all() and (ws.heap_pos == -1).all()


# --------------------------------------------------------------------------- validation


def test_wrappers_reject_bad_input():
    g = tiny()
    ws = Workspace.for_graph(g.n)
    a = (g.first_out, g.head, g.weight)
    bad = [
        lambda: dijkstra(*a, [0.5], [0.0], [1], [0.0], ws),  # float node id
        lambda: dijkstra(*a, [5], [0.0], [1], [0.0], ws),  # out of range
        lambda: dijkstra(*a, [-1], [0.0], [1], [0.0], ws),
        lambda: dijkstra(*a, [0], [-1.0], [1], [0.0], ws),  # negative offset
        lambda: dijkstra(*a, [0], [np.nan], [1], [0.0], ws),
        lambda: dijkstra(*a, [0], [0.0, 1.0], [1], [0.0], ws),  # length mismatch
        lambda: dijkstra(*a, [[0]], [[0.0]], [1], [0.0], ws),  # 2-D
        lambda: dijkstra(g.first_out, g.head, g.weight[:-1], [0], [0.0], [1], [0.0], ws),
        lambda: dijkstra(*a, [0], [0.0], [1], [0.0], Workspace.for_graph(4)),
        lambda: dijkstra(*a, [0], [0.0], [1], [0.0], ws.arrays()),
        lambda: bidirectional_dijkstra(
            *a[:2], g.first_in, g.in_edge, g.tail, g.weight, [0], [0.0], [1], [0.0], ws, ws
        ),
        lambda: astar(*a, g.lat, g.lon, [0], [0.0], [1], [0.0], -1.0, ws),
        lambda: astar(*a, g.lat[:-1], g.lon, [0], [0.0], [1], [0.0], 0.0, ws),
        lambda: one_to_many(*a, [0], [0.0], [0, 3], [1], [0.0], ws, np.empty(1)),
        lambda: one_to_many(*a, [0], [0.0], [0, 1], [1], [0.0], ws, np.empty(2)),
        lambda: many_to_many(*a, [1, 0], [0], [0.0], [0, 1], [1], [0.0], ws),
        lambda: isochrone(*a, [0], [0.0], np.nan, ws),
        lambda: path_edges(ws.pred_edge, g.tail, 5),
        lambda: validate_graph(g.first_out, g.head + 10),
        lambda: validate_graph(g.first_out, g.head, tail=g.head),
        lambda: validate_graph(g.first_out, g.head, g.tail, g.first_in, g.in_edge[::-1]),
        lambda: validate_weight(np.array([1.0, -1.0, 0, 0, 0]), 5),
        lambda: validate_weight(np.array([1.0, np.nan, 0, 0, 0]), 5),
    ]
    for i, call in enumerate(bad):
        with pytest.raises(ValueError):
            call()
            pytest.fail(f"bad input #{i} accepted")
    validate_graph(g.first_out, g.head, g.tail, g.first_in, g.in_edge)
    validate_weight(g.weight, len(g.head))
    # int64 / list inputs are converted rather than rejected
    cost, _ = dijkstra(g.first_out.astype(np.int64), list(g.head), g.weight, [0], [0], [2], [0], ws)
    assert cost == 5.0


# --------------------------------------------------------------------------- property test


@st.composite
def small_problem(draw):
    n = draw(st.integers(1, 12))
    node = st.integers(0, n - 1)
    edges = draw(
        st.lists(
            st.tuples(node, node, st.sampled_from([0.0, 1.0, 2.5, 7.0, np.inf]) | st.floats(0, 50)),
            max_size=40,
        )
    )
    coords = draw(st.lists(st.tuples(st.floats(-1, 1), st.floats(-1, 1)), min_size=n, max_size=n))
    pts = st.lists(st.tuples(node, st.sampled_from([0.0, 3.0]) | st.floats(0, 20)), min_size=1,
                   max_size=3)  # fmt: skip
    tail = [e[0] for e in edges]
    head = [e[1] for e in edges]
    weight = [e[2] for e in edges]
    lat = [48 + c[0] * 0.01 for c in coords]
    lon = [2 + c[1] * 0.01 for c in coords]
    g = Graph(n, np.array(tail, int), np.array(head, int), weight, lat, lon)
    seeds, targets = draw(pts), draw(pts)
    return g, *zip(*seeds, strict=True), *zip(*targets, strict=True)


@settings(max_examples=200, deadline=None)
@given(small_problem())
def test_property_all_point_to_point_kernels_agree_with_scipy(problem):
    g, s, sc, t, tc = problem
    s, t = np.array(s, np.int32), np.array(t, np.int32)
    sc, tc = np.array(sc), np.array(tc)
    want = expected(g, s, sc, t, tc)
    results = run_all(g, s, sc, t, tc)
    for name, (cost, path, node) in zip(
        ("dijkstra", "bidirectional", "astar"), results, strict=True
    ):
        np.testing.assert_allclose(cost, want, rtol=RTOL, err_msg=name)
        if np.isfinite(want):
            check_path(g, path, s, sc, t, tc, cost, node=node)
        else:
            assert path is None, name
    # one_to_many with every target alone, then all of them as a single group
    ws = Workspace.for_graph(g.n)
    tf = np.array([*range(len(t) + 1), 2 * len(t)], np.int32)
    t2, tc2 = np.concatenate([t, t]), np.concatenate([tc, tc])
    out = one_to_many(g.first_out, g.head, g.weight, s, sc, tf, t2, tc2, ws, np.empty(len(t) + 1))
    np.testing.assert_allclose(out, [*(g.oracle(s, sc)[t] + tc), want], rtol=RTOL)
