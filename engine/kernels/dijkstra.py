"""Point-to-point Dijkstra with multiple seeds and targets, and path extraction."""

import numpy as np
from numba import njit

from .checks import check_graph, check_nodes, check_workspace, index_array
from .heap import heap_pop
from .workspace import _init_seeds, _mark_targets, _relax, _reset, _unmark_targets


@njit(cache=True, nogil=True)
def _dijkstra(first_out, head, weight, seeds, seed_cost, targets, target_cost, ws):
    _reset(ws)
    dist = ws[0]
    heap_node, heap_key, heap_pos = ws[2], ws[3], ws[4]
    mark = ws[7]
    size = _init_seeds(ws, seeds, seed_cost)
    next_entry, remaining = _mark_targets(ws, targets)
    best = np.inf
    best_i = -1
    while size > 0 and remaining > 0:  # `remaining` also skips target-less queries
        u, d, size = heap_pop(heap_node, heap_key, heap_pos, size)
        if d >= best:
            break  # every later target costs at least d (target_cost >= 0)
        i = mark[u]
        if i >= 0:
            while i >= 0:
                if d + target_cost[i] < best:
                    best = d + target_cost[i]
                    best_i = i
                i = next_entry[i]
            remaining -= 1  # each node is popped once: its label is final
            if remaining == 0:
                break
        for e in range(first_out[u], first_out[u + 1]):
            nd = d + weight[e]
            v = head[e]
            if nd < dist[v]:  # inf weights never pass this test
                size = _relax(ws, size, v, nd, nd, e)
    _unmark_targets(ws, targets)
    return best, best_i


def dijkstra(first_out, head, weight, seeds, seed_cost, targets, target_cost, ws):
    """Cheapest route from any seed to any target (point-to-point, nearest-of-a-set).

    Seeds and targets carry offsets so a route can start and end mid-edge: the
    answer is ``min over seeds s, targets t of seed_cost[s] + d(s, t) + target_cost[t]``.
    The search stops as soon as the popped key reaches the best answer found,
    so it only explores the ball around the seeds that the answer needs.

    Parameters
    ----------
    first_out : int32[n+1]
        Forward CSR offsets; edges of ``u`` are ``first_out[u]:first_out[u+1]``.
    head : int32[m]
        Head node of each edge.
    weight : float64[m]
        Edge costs for this query, ``>= 0``; ``inf`` closes an edge. Given per
        call so live traffic can swap weight arrays without rebuilding anything.
    seeds, seed_cost : int32[k], float64[k]
        Start nodes and their initial costs (``>= 0``; ``inf`` disables a seed).
    targets, target_cost : int32[j], float64[j]
        Goal nodes and the cost added on arriving there (``>= 0``).
    ws : Workspace
        Sized for this graph; overwritten. Afterwards ``ws.pred_edge`` encodes
        the shortest-path tree, see :func:`path_edges`.

    Returns
    -------
    cost : float
        Best total cost, ``inf`` if no target is reachable.
    target_index : int
        Index into ``targets`` of the best target, ``-1`` if unreachable.
        The route's edges are ``path_edges(ws.pred_edge, tail, targets[target_index])``.
    """
    first_out, head, weight, n = check_graph(first_out, head, weight)
    seeds, seed_cost = check_nodes(seeds, seed_cost, n, "seeds", "seed_cost")
    targets, target_cost = check_nodes(targets, target_cost, n, "targets", "target_cost")
    w = check_workspace(ws, n)
    cost, idx = _dijkstra(first_out, head, weight, seeds, seed_cost, targets, target_cost, w)
    return float(cost), int(idx)


@njit(cache=True, nogil=True)
def _path_edges(pred_edge, tail, node):
    count = 0
    v = node
    while pred_edge[v] >= 0:
        v = tail[pred_edge[v]]
        count += 1
        if count > len(pred_edge):
            return np.empty(0, dtype=np.int32), False  # cycle: corrupted workspace
    out = np.empty(count, dtype=np.int32)
    v = node
    for k in range(count - 1, -1, -1):
        out[k] = pred_edge[v]
        v = tail[out[k]]
    return out, True


def path_edges(pred_edge, tail, node):
    """Edge ids from the seed to ``node``, in travel order, from a search tree.

    Walks ``pred_edge`` back from ``node`` until ``-1``. The result is empty
    when ``node`` is itself the chosen seed, and also when it was never reached,
    so check the reported cost for ``inf`` first.

    Parameters
    ----------
    pred_edge : int32[n]
        ``ws.pred_edge`` right after a search.
    tail : int32[m]
        Tail node of each edge.
    node : int
        End of the path, normally a target reported by the search.

    Returns
    -------
    int32[k]
        Edge ids; ``tail[out[0]]`` is a seed and ``head[out[-1]] == node``.
    """
    pred_edge = index_array(pred_edge, "pred_edge")
    tail = index_array(tail, "tail")
    node = int(node)
    if not 0 <= node < len(pred_edge):
        raise ValueError(f"node must be in [0, {len(pred_edge)}), got {node}")
    edges, ok = _path_edges(pred_edge, tail, node)
    if not ok:
        raise RuntimeError("pred_edge contains a cycle; was the workspace reused meanwhile?")
    return edges
