"""Exactness on real road data: every kernel and the router against scipy / networkx oracles.

Routes are searched on the turn graph (one node per directed road, one arc per turn), so the
oracle is ``scipy.sparse.csgraph.dijkstra`` on the same turn-graph arrays (rows from the
sampled sources), composed with mid-edge starts and ends written from the definitions in
``tests/oracle.py``. The kernels are also checked as plain graph algorithms on the junction
graph, with networkx, including networkx on the osmnx GraphML graph of Saint-Germain-en-Laye
(an independent reading of the map).
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from engine import kernels
from engine.profiles import car_weights
from engine.query import Route, Router, Unreachable
from oracle import oracle_route_cost, recompute_route_cost, turn_rows

N_PAIRS = 500


@pytest.fixture(scope="module", params=["monaco", "andorra"])
def case(request: pytest.FixtureRequest):
    """A real extract, its router, and the car's live weights: per road and per turn arc."""
    graph = request.getfixturevalue(request.param)
    router = Router(graph)
    W = router.weights("car")
    return request.param, graph, router, W


def _pairs(n: int, seed: int, k: int = N_PAIRS) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(k, 2)).astype(np.int32)


def _check_path(tg, w: np.ndarray, path: np.ndarray, s: int, t: int, cost: float) -> None:
    if s == t:
        assert len(path) == 0
        return
    assert tg.tail[path[0]] == s and tg.head[path[-1]] == t
    assert np.all(tg.head[path[:-1]] == tg.tail[path[1:]]), "arcs do not connect"
    np.testing.assert_allclose(w[path].sum(), cost, rtol=1e-9)


@pytest.mark.parametrize("kernel", ["dijkstra", "bidirectional", "astar"])
def test_p2p_kernels_match_scipy_on_the_turn_graph(case, kernel: str) -> None:
    name, g, router, W = case
    tg, w = g.turns, W.arc
    pairs = _pairs(tg.n_nodes, seed=11)
    sources, row = np.unique(pairs[:, 0], return_inverse=True)
    D = turn_rows(g, w, sources)
    ws, ws2 = kernels.Workspace.for_graph(tg.n_nodes), kernels.Workspace.for_graph(tg.n_nodes)
    lat, lon = router._node_lat, router._node_lon
    factor = kernels.astar_factor(w, tg.tail, tg.head, lat, lon)
    zero = np.zeros(1)
    unreachable = 0
    for k, (s, t) in enumerate(pairs):
        seeds, targets = np.array([s], np.int32), np.array([t], np.int32)
        if kernel == "dijkstra":
            cost, ti = kernels.dijkstra(tg.first_out, tg.head, w, seeds, zero, targets, zero, ws)
            path = kernels.path_edges(ws.pred_edge, tg.tail, int(t)) if ti >= 0 else None
        elif kernel == "astar":
            cost, ti = kernels.astar(tg.first_out, tg.head, w, lat, lon, seeds, zero, targets, zero,
                               factor, ws)
            path = kernels.path_edges(ws.pred_edge, tg.tail, int(t)) if ti >= 0 else None
        else:
            cost, meet = kernels.bidirectional_dijkstra(tg.first_out, tg.head, tg.first_in,
                                                  tg.in_arc, tg.tail, w, seeds, zero, targets,
                                                  zero, ws, ws2)
            path = (kernels.bidirectional_path_edges(ws, ws2, tg.tail, tg.head, meet)
                    if np.isfinite(cost) else None)
        expected = D[row[k], t]
        if np.isinf(expected):
            unreachable += 1
            assert np.isinf(cost) and path is None
            continue
        np.testing.assert_allclose(cost, expected, rtol=1e-9, err_msg=f"{name} {s}->{t}")
        _check_path(tg, w, path, int(s), int(t), cost)
    assert unreachable < N_PAIRS // 2, "the sample should mostly be routable"


def test_matrix_and_one_to_many_match_scipy(case) -> None:
    _, g, _, W = case
    tg, w = g.turns, W.arc
    rng = np.random.default_rng(5)
    src = rng.integers(0, tg.n_nodes, 50).astype(np.int32)
    dst = rng.integers(0, tg.n_nodes, 50).astype(np.int32)
    D = turn_rows(g, w, src)
    first = np.arange(51, dtype=np.int32)
    zero = np.zeros(50)
    ws = kernels.Workspace.for_graph(tg.n_nodes)
    M = kernels.many_to_many(tg.first_out, tg.head, w, first, src, zero, first, dst, zero, ws)
    np.testing.assert_allclose(M, D[:, dst], rtol=1e-9)
    out = np.empty(50)
    kernels.one_to_many(tg.first_out, tg.head, w, src[:1], zero[:1], first, dst, zero, ws, out)
    np.testing.assert_allclose(out, D[0, dst], rtol=1e-9)


def test_isochrone_matches_scipy(case) -> None:
    _, g, _, W = case
    tg, w = g.turns, W.arc
    ws = kernels.Workspace.for_graph(tg.n_nodes)
    for s, limit in ((3, 60.0), (tg.n_nodes // 2, 180.0), (tg.n_nodes - 1, 600.0)):
        D = turn_rows(g, w, np.array([s]))[0]
        nodes, costs = kernels.isochrone(tg.first_out, tg.head, w, np.array([s], np.int32),
                                   np.zeros(1), limit, ws)
        expected = np.flatnonzero(D <= limit)
        assert set(nodes.tolist()) == set(expected.tolist())
        np.testing.assert_allclose(costs, D[nodes], rtol=1e-9)


# ----------------------------------------------------------------------------- the router
@pytest.mark.parametrize("algorithm", ["cch", "bidirectional", "dijkstra", "astar"])
def test_router_coordinates_match_oracle(case, algorithm: str) -> None:
    name, g, router, W = case
    rng = np.random.default_rng(7)
    # points near junctions of car roads, jittered up to ~60 m so they land mid-edge
    car_nodes = np.unique(g.tail[np.isfinite(W.values)])
    idx = car_nodes[rng.integers(0, len(car_nodes), size=(N_PAIRS, 2))]
    jitter = rng.uniform(-0.0005, 0.0005, size=(N_PAIRS, 2, 2))
    checked = 0
    for k in range(N_PAIRS if algorithm in ("cch", "bidirectional") else 150):
        a = (g.lat[idx[k, 0]] + jitter[k, 0, 0], g.lon[idx[k, 0]] + jitter[k, 0, 1])
        b = (g.lat[idx[k, 1]] + jitter[k, 1, 0], g.lon[idx[k, 1]] + jitter[k, 1, 1])
        result = router.route(a, b, algorithm=algorithm)
        expected = oracle_route_cost(g, W.values, W.turn, result.origin, result.destination)
        if isinstance(result, Unreachable):
            assert np.isinf(expected), f"{name}: router says unreachable, oracle {expected}"
            continue
        assert isinstance(result, Route)
        np.testing.assert_allclose(result.cost, expected, rtol=1e-9, atol=1e-9)
        # the cost recomputes from the route's own legs and turns
        np.testing.assert_allclose(recompute_route_cost(result, W.values, W.turn, g),
                                   result.cost, rtol=1e-9, atol=1e-9)
        # duration = time along the legs + turn delays (time metric: equals the cost)
        np.testing.assert_allclose(result.duration_s, result.cost, rtol=1e-9, atol=1e-9)
        assert result.turn_delay_s == pytest.approx(float(W.turn[result.turn_arcs].sum()))
        assert result.coordinates[0] == pytest.approx(result.origin.location())
        assert result.coordinates[-1] == pytest.approx(result.destination.location())
        interior = result.edges[1:-1]
        if interior:
            assert np.all(g.head[interior[:-1]] == g.tail[interior[1:]])
        checked += 1
    assert checked > 50


def test_distance_metric_is_never_longer(monaco_router: Router, monaco) -> None:
    rng = np.random.default_rng(3)
    idx = rng.integers(0, monaco.n_nodes, size=(60, 2))
    compared = 0
    for s, t in idx:
        a, b = (monaco.lat[s], monaco.lon[s]), (monaco.lat[t], monaco.lon[t])
        fast = monaco_router.route(a, b, metric="time")
        short = monaco_router.route(a, b, metric="distance")
        assert fast.reachable == short.reachable
        if fast.reachable:
            assert short.distance_m <= fast.distance_m + 1e-6
            assert fast.duration_s <= short.duration_s + 1e-6
            np.testing.assert_allclose(short.cost, short.distance_m, rtol=1e-9)
            compared += 1
    assert compared > 20


def test_table_matches_individual_routes(monaco_router: Router, monaco) -> None:
    rng = np.random.default_rng(9)
    idx = rng.integers(0, monaco.n_nodes, size=12)
    pts = [(monaco.lat[i] + 2e-4, monaco.lon[i] - 1e-4) for i in idx]
    table = monaco_router.table(pts[:6], pts[6:])
    for i in range(6):
        for j in range(6):
            r = monaco_router.route(pts[i], pts[6 + j])
            expected = r.cost if r.reachable else np.inf
            np.testing.assert_allclose(table.values[i, j], expected, rtol=1e-9)


def test_closest_agrees_with_table(monaco_router: Router, monaco) -> None:
    hospitals = [(h["lat"], h["lon"]) for h in monaco.hospitals]
    assert len(hospitals) >= 3
    incident = (43.7384, 7.4246)
    i, route = monaco_router.closest(incident, hospitals)
    row = monaco_router.table([incident], hospitals).values[0]
    assert i == int(np.argmin(row))
    np.testing.assert_allclose(route.cost, row.min(), rtol=1e-9)
    # the other direction: which candidate reaches the incident first
    j, back = monaco_router.closest(incident, hospitals, direction="to")
    col = monaco_router.table(hospitals, [incident]).values[:, 0]
    assert j == int(np.argmin(col))
    np.testing.assert_allclose(back.cost, col.min(), rtol=1e-9)


# ----------------------------------------------------------------------------- networkx
def test_networkx_on_same_arrays(monaco) -> None:
    w = car_weights(monaco, "time")
    G = nx.DiGraph()
    for e in np.flatnonzero(np.isfinite(w)):
        u, v = int(monaco.tail[e]), int(monaco.head[e])
        if not G.has_edge(u, v) or G[u][v]["weight"] > w[e]:
            G.add_edge(u, v, weight=float(w[e]))
    ws = kernels.Workspace.for_graph(monaco.n_nodes)
    zero = np.zeros(1)
    for s, t in _pairs(monaco.n_nodes, seed=21, k=60):
        cost, _ = kernels.dijkstra(monaco.first_out, monaco.head, w, np.array([s], np.int32), zero,
                             np.array([t], np.int32), zero, ws)
        try:
            expected = nx.dijkstra_path_length(G, int(s), int(t))
        except (nx.NetworkXNoPath, nx.NodeNotFound):
            expected = np.inf
        np.testing.assert_allclose(cost, expected, rtol=1e-9)


def test_networkx_on_osmnx_graphml() -> None:
    """Our reading of an osmnx GraphML vs networkx on osmnx's own graph (osmnx lengths)."""
    import osmnx as ox

    from conftest import shared_file
    from engine.extract import tags as osm_tags
    from engine.io import load_graph

    path = shared_file("osm_fr/saint-germain-en-laye_osmnx_all.graphml.gz")
    graph = load_graph(path)
    import gzip

    with gzip.open(path, "rt", encoding="utf-8") as fh:
        G = ox.load_graphml(graphml_str=fh.read())
    H = nx.DiGraph()
    for u, v, d in G.edges(data=True):
        way = dict(d)
        way["oneway"] = "no"
        rule = osm_tags.interpret_way(way)
        if rule is None or rule.flags_forward & osm_tags.CAR_FORBIDDEN:
            continue
        if not H.has_edge(u, v) or H[u][v]["weight"] > d["length"]:
            H.add_edge(u, v, weight=float(d["length"]))
    w = car_weights(graph, "distance")
    node_of = {int(o): i for i, o in enumerate(graph.osm_id)}
    rng = np.random.default_rng(2)
    nodes = list(H.nodes)
    ws = kernels.Workspace.for_graph(graph.n_nodes)
    zero = np.zeros(1)
    compared = 0
    for _ in range(80):
        a, b = (nodes[i] for i in rng.integers(0, len(nodes), 2))
        cost, _ = kernels.dijkstra(graph.first_out, graph.head, w,
                             np.array([node_of[a]], np.int32), zero,
                             np.array([node_of[b]], np.int32), zero, ws)
        try:
            expected = nx.dijkstra_path_length(H, a, b)
        except nx.NetworkXNoPath:
            expected = np.inf
        if np.isinf(expected):
            assert np.isinf(cost)
            continue
        # our lengths are re-measured along the geometry; osmnx rounds its own
        np.testing.assert_allclose(cost, expected, rtol=2e-3)
        compared += 1
    assert compared > 30
