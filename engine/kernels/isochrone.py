"""Isochrone: every node reachable within a cost budget."""

import numpy as np
from numba import njit

from .checks import check_graph, check_nodes, check_workspace
from .heap import heap_pop
from .workspace import _init_seeds, _relax, _reset


@njit(cache=True, nogil=True)
def _isochrone(first_out, head, weight, seeds, seed_cost, limit, ws):
    _reset(ws)
    dist = ws[0]
    heap_node, heap_key, heap_pos = ws[2], ws[3], ws[4]
    size = _init_seeds(ws, seeds, seed_cost)
    # The result grows by doubling: O(result) allocation, never O(n).
    nodes = np.empty(64, dtype=np.int32)
    count = 0
    while size > 0:
        u, d, size = heap_pop(heap_node, heap_key, heap_pos, size)
        if d > limit:
            break
        if count == len(nodes):
            grown = np.empty(2 * count, dtype=np.int32)
            grown[:count] = nodes
            nodes = grown
        nodes[count] = u
        count += 1
        for e in range(first_out[u], first_out[u + 1]):
            nd = d + weight[e]
            v = head[e]
            if nd <= limit and nd < dist[v]:  # never queue what lies beyond the limit
                size = _relax(ws, size, v, nd, nd, e)
    nodes = nodes[:count].copy()
    cost = np.empty(count)
    for k in range(count):
        cost[k] = dist[nodes[k]]
    return nodes, cost


def isochrone(first_out, head, weight, seeds, seed_cost, limit, ws):
    """Nodes whose cost from the seeds is ``<= limit``, in the order they were settled.

    Settle order is non-decreasing cost, so a caller can cut the result at any
    smaller limit with ``np.searchsorted(cost, x, side="right")``.

    Parameters
    ----------
    first_out, head, weight, seeds, seed_cost, ws
        As in :func:`~engine.kernels.dijkstra.dijkstra`.
    limit : float
        Cost budget (``inf`` gives every reachable node).

    Returns
    -------
    nodes : int32[k]
        Reached nodes; ``path_edges(ws.pred_edge, tail, v)`` gives the route to each.
    cost : float64[k]
        Their costs, non-decreasing.
    """
    first_out, head, weight, n = check_graph(first_out, head, weight)
    seeds, seed_cost = check_nodes(seeds, seed_cost, n, "seeds", "seed_cost")
    limit = float(limit)
    if not limit >= 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    w = check_workspace(ws, n)
    return _isochrone(first_out, head, weight, seeds, seed_cost, limit, w)
