"""Independent oracles shared by the exactness tests: scipy's Dijkstra on the same arrays, and
the composition of mid-edge starts and ends around it, written from the definitions (not from
the router).

Two graphs are in play: the junction graph (``RoadGraph``: nodes are junctions, edges are
roads) on which the kernels are also tested as plain graph algorithms, and the turn graph
(``RoadGraph.turns``: nodes are roads, arcs are turns) on which routes are searched. On the
turn graph an arc ``a`` costs ``turn[a] + w[road entered]``; a route from a point at fraction
``f`` of road ``e`` starts at turn node ``e`` having paid ``(1 - f) w[e]`` and ends, on road
``r`` at fraction ``g``, through any allowed turn ``a`` into ``r`` for ``turn[a] + g w[r]``.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra as scipy_dijkstra

from engine.graph import RoadGraph


def _csr(n: int, tail: np.ndarray, head: np.ndarray, w: np.ndarray) -> csr_matrix:
    """Sparse adjacency; parallel arcs keep their cheapest weight, ``inf`` arcs are left out
    (explicit zeros stay edges)."""
    ok = np.isfinite(w)
    t, h, c = tail[ok].astype(np.int64), head[ok].astype(np.int64), w[ok]
    order = np.lexsort((c, t * n + h))
    _, first = np.unique((t * n + h)[order], return_index=True)
    keep = order[first]
    return csr_matrix((c[keep], (t[keep], h[keep])), shape=(n, n))


def oracle_matrix(graph: RoadGraph, w: np.ndarray) -> np.ndarray:
    """All-pairs distances on the junction graph with scipy."""
    return scipy_dijkstra(_csr(graph.n_nodes, graph.tail, graph.head, w), directed=True)


def turn_arc_weights(graph: RoadGraph, turn: np.ndarray, road: np.ndarray) -> np.ndarray:
    """Arc weights of the turn graph, from the definition: turn cost + road entered."""
    tg = graph.turns
    return turn + road[tg.node_road[tg.head]]


def turn_rows(graph: RoadGraph, arc_w: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """Distances on the turn graph from each of ``sources`` (turn nodes) to every turn node."""
    tg = graph.turns
    mat = _csr(tg.n_nodes, tg.tail, tg.head, arc_w)
    return scipy_dijkstra(mat, directed=True, indices=np.asarray(sources, dtype=np.int64))


def oracle_route_cost(graph: RoadGraph, road: np.ndarray, turn: np.ndarray, o, d) -> float:
    """Cheapest route between two snaps on the turn graph: leave the origin along its road
    (either direction), any path of turns, arrive through any allowed turn into the
    destination's road; or drive straight along one shared road."""
    g, tg = graph, graph.turns
    arc_w = turn_arc_weights(g, turn, road)
    starts: list[tuple[int, float]] = []
    for edge, twin, f in o.positions():
        if np.isfinite(road[edge]):
            starts.append((edge, (1 - f) * road[edge]))
        if twin >= 0 and np.isfinite(road[twin]):
            starts.append((twin, f * road[twin]))
    ends: list[tuple[int, float]] = []  # (road, cost of driving it up to the point)
    for edge, twin, f in d.positions():
        if np.isfinite(road[edge]):
            ends.append((edge, f * road[edge]))
        if twin >= 0 and np.isfinite(road[twin]):
            ends.append((twin, (1 - f) * road[twin]))
    best = np.inf
    if starts and ends:
        D = turn_rows(g, arc_w, np.array([s for s, _ in starts]))
        entered = tg.node_road[tg.head]
        for r, cr in ends:
            into = np.flatnonzero((entered == r) & np.isfinite(turn))
            for i, (_, cs) in enumerate(starts):
                if len(into):
                    best = min(best, float((cs + D[i, tg.tail[into]] + turn[into]).min() + cr))
    for oe, ot, of in o.positions():
        for de, _, df in d.positions():
            if oe == de and df >= of and np.isfinite(road[oe]):
                best = min(best, (df - of) * road[oe])
            if oe == de and ot >= 0 and of >= df and np.isfinite(road[ot]):
                best = min(best, (of - df) * road[ot])
    return best


def recompute_route_cost(route, road: np.ndarray, turn: np.ndarray, graph: RoadGraph) -> float:
    """A route's cost from its own legs and turns: every road piece at its weight times the
    share driven, plus every turn taken; each turn must join the legs it sits between."""
    tg = graph.turns
    E, S, T = route.legs
    arcs = np.asarray(route.turn_arcs, dtype=np.int64)
    assert len(arcs) == len(E) - 1, "one turn between consecutive legs"
    np.testing.assert_array_equal(tg.node_road[tg.tail[arcs]], E[:-1])
    np.testing.assert_array_equal(tg.node_road[tg.head[arcs]], E[1:])
    return float((road[E] * (T - S)).sum() + turn[arcs].sum())
