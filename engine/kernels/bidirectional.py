"""Bidirectional Dijkstra: a forward search from the seeds meets a backward one from the targets.

Why: on road networks two balls of radius d/2 hold far fewer nodes than one
of radius d, so a point-to-point query scans roughly half as much. The backward
search runs on the reverse CSR, with the target offsets as initial costs.
"""

import numpy as np
from numba import njit

from .checks import check_graph, check_nodes, check_reverse, check_workspace
from .dijkstra import path_edges
from .heap import heap_pop
from .workspace import _init_seeds, _relax, _reset


@njit(cache=True, nogil=True)
def _bidirectional(
    first_out, head, first_in, in_edge, tail, weight,
    seeds, seed_cost, targets, target_cost, wf, wb,
):  # fmt: skip
    _reset(wf)
    _reset(wb)
    df, db = wf[0], wb[0]
    size_f = _init_seeds(wf, seeds, seed_cost)
    size_b = _init_seeds(wb, targets, target_cost)
    best = np.inf
    meet = -1
    for t in targets:  # a seed that is also a target
        if df[t] + db[t] < best:
            best = df[t] + db[t]
            meet = t
    # Invariant: best == min over v of df[v] + db[v], because every label change
    # below re-checks its node. Stop once no path through unscanned nodes can win.
    while True:
        top_f = wf[3][0] if size_f > 0 else np.inf
        top_b = wb[3][0] if size_b > 0 else np.inf
        if top_f + top_b >= best:
            break
        if top_f <= top_b:
            u, d, size_f = heap_pop(wf[2], wf[3], wf[4], size_f)
            for e in range(first_out[u], first_out[u + 1]):
                v = head[e]
                nd = d + weight[e]
                if nd < df[v]:
                    size_f = _relax(wf, size_f, v, nd, nd, e)
                    if nd + db[v] < best:
                        best = nd + db[v]
                        meet = v
        else:
            u, d, size_b = heap_pop(wb[2], wb[3], wb[4], size_b)
            for k in range(first_in[u], first_in[u + 1]):
                e = in_edge[k]
                v = tail[e]
                nd = d + weight[e]
                if nd < db[v]:
                    size_b = _relax(wb, size_b, v, nd, nd, e)
                    if nd + df[v] < best:
                        best = nd + df[v]
                        meet = v
    return best, meet


def bidirectional_dijkstra(
    first_out, head, first_in, in_edge, tail, weight,
    seeds, seed_cost, targets, target_cost, ws_fwd, ws_bwd,
):  # fmt: skip
    """Same answer as :func:`dijkstra`, found by searching from both ends.

    The side with the smaller queue key is expanded, and the search stops when
    ``top_fwd + top_bwd >= best``: any better route would have to pass through
    a node unscanned by both sides, costing at least that sum.

    Parameters
    ----------
    first_out, head, weight, seeds, seed_cost, targets, target_cost
        As in :func:`dijkstra`.
    first_in : int32[n+1]
        Reverse CSR offsets.
    in_edge : int32[m]
        Forward edge ids grouped by head node; the backward neighbours of ``v``
        are ``tail[in_edge[k]]`` for ``k`` in ``first_in[v]:first_in[v+1]``.
    tail : int32[m]
        Tail node of each edge.
    ws_fwd, ws_bwd : Workspace
        Two distinct workspaces. Afterwards ``ws_fwd.pred_edge`` leads from the
        meeting node back to a seed and ``ws_bwd.pred_edge`` holds "successor
        edges" leading from the meeting node on to a target.

    Returns
    -------
    cost : float
        Best total cost, ``inf`` if unreachable.
    meeting_node : int
        A node on the best route (``-1`` if unreachable); pass it to
        :func:`bidirectional_path_edges`.
    """
    first_out, head, weight, n = check_graph(first_out, head, weight)
    first_in, in_edge, tail = check_reverse(first_in, in_edge, tail, n, len(head))
    seeds, seed_cost = check_nodes(seeds, seed_cost, n, "seeds", "seed_cost")
    targets, target_cost = check_nodes(targets, target_cost, n, "targets", "target_cost")
    if ws_fwd is ws_bwd:
        raise ValueError("ws_fwd and ws_bwd must be two different workspaces")
    wf = check_workspace(ws_fwd, n, "ws_fwd")
    wb = check_workspace(ws_bwd, n, "ws_bwd")
    cost, meet = _bidirectional(
        first_out, head, first_in, in_edge, tail, weight,
        seeds, seed_cost, targets, target_cost, wf, wb,
    )  # fmt: skip
    return float(cost), int(meet)


@njit(cache=True, nogil=True)
def _succ_edges(succ_edge, head, node):
    count = 0
    v = node
    while succ_edge[v] >= 0:
        v = head[succ_edge[v]]
        count += 1
        if count > len(succ_edge):
            return np.empty(0, dtype=np.int32), False
    out = np.empty(count, dtype=np.int32)
    v = node
    for k in range(count):
        out[k] = succ_edge[v]
        v = head[out[k]]
    return out, True


def bidirectional_path_edges(ws_fwd, ws_bwd, tail, head, meeting_node):
    """Edge ids of the route found by :func:`bidirectional_dijkstra`, seed to target.

    Parameters
    ----------
    ws_fwd, ws_bwd : Workspace
        The workspaces of that search, untouched since.
    tail, head : int32[m]
        Endpoints of each edge.
    meeting_node : int
        Returned by the search (must not be ``-1``).

    Returns
    -------
    int32[k]
        Connected edge sequence; ``tail[out[0]]`` is a seed and ``head[out[-1]]``
        a target (empty when the meeting node is both).
    """
    meeting_node = int(meeting_node)
    if meeting_node < 0:
        raise ValueError("meeting_node is -1: the target was unreachable, there is no path")
    before = path_edges(ws_fwd.pred_edge, tail, meeting_node)
    after, ok = _succ_edges(ws_bwd.pred_edge, np.ascontiguousarray(head, np.int32), meeting_node)
    if not ok:
        raise RuntimeError("ws_bwd.pred_edge contains a cycle; was the workspace reused?")
    return np.concatenate((before, after))
