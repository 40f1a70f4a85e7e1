"""Independent oracles shared by the exactness tests: scipy all-pairs and the composition of
mid-edge starts and ends around it (written from the definitions, not from the router)."""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra as scipy_dijkstra

from engine.graph import RoadGraph


def oracle_matrix(graph: RoadGraph, w: np.ndarray) -> np.ndarray:
    """All-pairs distances with scipy; parallel edges keep their cheapest weight."""
    n = graph.n_nodes
    ok = np.isfinite(w)
    t, h, c = graph.tail[ok].astype(np.int64), graph.head[ok].astype(np.int64), w[ok]
    order = np.lexsort((c, t * n + h))
    _, first = np.unique((t * n + h)[order], return_index=True)
    keep = order[first]
    mat = csr_matrix((c[keep], (t[keep], h[keep])), shape=(n, n))
    return scipy_dijkstra(mat, directed=True)


def oracle_route_cost(graph: RoadGraph, D: np.ndarray, w: np.ndarray, o, d) -> float:
    """Leave the snapped origin along its edge (either direction allowed), any node-to-node
    shortest path (scipy), arrive along the destination's edge; or drive straight along a
    shared edge."""
    g = graph
    best = np.inf
    starts, ends = [], []
    for edge, twin, f in o.positions():
        if np.isfinite(w[edge]):
            starts.append((g.head[edge], (1 - f) * w[edge]))
        if twin >= 0 and np.isfinite(w[twin]):
            starts.append((g.head[twin], f * w[twin]))
    for edge, twin, f in d.positions():
        if np.isfinite(w[edge]):
            ends.append((g.tail[edge], f * w[edge]))
        if twin >= 0 and np.isfinite(w[twin]):
            ends.append((g.tail[twin], (1 - f) * w[twin]))
    for u, cu in starts:
        for v, cv in ends:
            best = min(best, cu + D[u, v] + cv)
    for oe, ot, of in o.positions():
        for de, _, df in d.positions():
            if oe == de and df >= of and np.isfinite(w[oe]):
                best = min(best, (df - of) * w[oe])
            if oe == de and ot >= 0 and of >= df and np.isfinite(w[ot]):
                best = min(best, (of - df) * w[ot])
    return best
