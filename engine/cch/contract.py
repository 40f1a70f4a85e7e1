"""Weight-independent CCH structure: chordal supergraph, elimination tree, triangles, edge map.

Everything here is in *rank space* (node ``r`` is the node of rank ``r``). An upward arc
``a = (x, y)`` with ``x < y`` is stored once, at position ``a`` of the CSR ``up_first`` /
``up_head`` (arcs of ``x`` sorted by head), and carries two weights: *up* (cost ``x -> y``)
and *down* (cost ``y -> x``).

Lower triangles: for the arc ``(u, v)``, every ``w < u`` adjacent to both gives the detours
``u -> w -> v`` (``down(w,u) + up(w,v)``) and ``v -> w -> u`` (``down(w,v) + up(w,u)``).
They are not stored (9.6 M triangles on NY would be 77 MB of arc-id pairs, 2.5x the rest of
the hierarchy): the arcs ``(w, u)`` of ``u`` are listed by the CSR ``down_first`` /
``down_arc`` (sorted by ``w``), and the chordal graph guarantees that the arcs of ``w`` after
``(w, u)`` in its sorted list are exactly the ``(w, v)`` with ``v > u`` adjacent to ``u``. So
the lower triangles of all the arcs of ``u`` are enumerated by walking, for each ``(w, u)``,
the rest of ``w``'s list (RoutingKit's scheme), with a node -> arc marker for ``(u, v)``.
Every triangle costs one sequential read; nothing is searched.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from engine.cch._util import find_arc as _find_arc


@njit(cache=True, nogil=True, inline="always")
def _append(buf, pos, cap, y):
    """Append ``y`` to a growable int32 buffer (doubling); returns ``(buf, pos, cap)``."""
    if pos == cap:
        cap *= 2
        grown = np.empty(cap, dtype=np.int32)
        grown[:pos] = buf[:pos]
        buf = grown
    buf[pos] = y
    return buf, pos + 1, cap


@njit(cache=True, nogil=True)
def _chordal_supergraph(n, xadj, adjncy, order, rank):
    """Symbolic elimination in rank order.

    ``N+(x)`` = original upper neighbours of ``x`` plus ``N+(c) - {x}`` for every child ``c``
    of ``x`` in the elimination tree (``parent(c)`` = lowest upper neighbour of ``c``).
    Returns ``(up_first int64[n+1], up_head int32[arcs], parent int32[n])``.
    """
    cap = max(16, 2 * len(adjncy))
    buf = np.empty(cap, dtype=np.int32)
    up_first = np.empty(n + 1, dtype=np.int64)
    parent = np.full(n, -1, dtype=np.int32)
    child_first = np.full(n, -1, dtype=np.int32)
    next_sibling = np.full(n, -1, dtype=np.int32)
    mark = np.full(n, -1, dtype=np.int32)
    pos = 0
    for x in range(n):
        up_first[x] = pos
        mark[x] = x
        node = order[x]
        for k in range(xadj[node], xadj[node + 1]):
            y = rank[adjncy[k]]
            if y > x and mark[y] != x:
                mark[y] = x
                buf, pos, cap = _append(buf, pos, cap, y)
        c = child_first[x]
        while c >= 0:
            for k in range(up_first[c], up_first[c + 1]):
                y = buf[k]
                if mark[y] != x:  # y == x is marked already
                    mark[y] = x
                    buf, pos, cap = _append(buf, pos, cap, y)
            c = next_sibling[c]
        start = up_first[x]
        if pos > start:
            buf[start:pos].sort()
            p = buf[start]
            parent[x] = p
            next_sibling[x] = child_first[p]
            child_first[p] = x
    up_first[n] = pos
    return up_first, buf[:pos].copy(), parent


@njit(cache=True, nogil=True)
def _down_lists(n, up_first, up_head):
    """Arcs grouped by their upper end: ``down_first[v]``, ``down_arc[k]`` sorted by lower end."""
    n_arcs = len(up_head)
    down_first = np.zeros(n + 1, dtype=np.int64)
    for a in range(n_arcs):
        down_first[up_head[a] + 1] += 1
    for v in range(n):
        down_first[v + 1] += down_first[v]
    fill = down_first[:-1].copy()
    down_arc = np.empty(n_arcs, dtype=np.int32)
    arc_tail = np.empty(n_arcs, dtype=np.int32)
    for x in range(n):  # arcs in increasing tail: each list ends sorted by tail
        for a in range(up_first[x], up_first[x + 1]):
            arc_tail[a] = x
            v = up_head[a]
            down_arc[fill[v]] = a
            fill[v] += 1
    return down_first, down_arc, arc_tail


@njit(cache=True, nogil=True)
def _map_edges(n_arcs, tail, head, rank, up_first, up_head):
    """Input edge -> ``arc * 2 + dir`` (dir 0: up slot, the edge runs low -> high rank;
    dir 1: down slot), -1 for self-loops; and the CSR ``arc_edge_first`` / ``arc_edges``
    listing the input edges of each arc (for partial customization)."""
    m = len(tail)
    edge_slot = np.full(m, -1, dtype=np.int32)
    count = np.zeros(n_arcs + 1, dtype=np.int64)
    for e in range(m):
        x, y = rank[tail[e]], rank[head[e]]
        if x == y:
            continue
        d = 0
        if x > y:
            x, y = y, x
            d = 1
        a = _find_arc(up_first, up_head, x, y)
        edge_slot[e] = 2 * a + d
        count[a + 1] += 1
    for a in range(n_arcs):
        count[a + 1] += count[a]
    fill = count[:-1].copy()
    arc_edges = np.empty(count[n_arcs], dtype=np.int32)
    for e in range(m):
        s = edge_slot[e]
        if s >= 0:
            a = s >> 1
            arc_edges[fill[a]] = e
            fill[a] += 1
    return edge_slot, count, arc_edges


@njit(cache=True, nogil=True)
def _levels(n, parent):
    """Height of every node in the elimination tree (leaves 0)."""
    level = np.zeros(n, dtype=np.int32)
    for x in range(n):
        p = parent[x]
        if p >= 0 and level[p] < level[x] + 1:
            level[p] = level[x] + 1
    return level


def contract(n: int, tail: np.ndarray, head: np.ndarray, order: np.ndarray,
             xadj: np.ndarray, adjncy: np.ndarray) -> dict[str, np.ndarray]:
    """All weight-independent arrays of a CCH (see the module docstring)."""
    order = np.ascontiguousarray(order, dtype=np.int32)
    rank = np.empty(n, dtype=np.int32)
    rank[order] = np.arange(n, dtype=np.int32)
    up_first, up_head, parent = _chordal_supergraph(n, xadj, adjncy, order, rank)
    down_first, down_arc, arc_tail = _down_lists(n, up_first, up_head)
    down_tail = arc_tail[down_arc]  # lower end of each listed arc: merges read it in order
    edge_slot, arc_edge_first, arc_edges = _map_edges(
        len(up_head), np.ascontiguousarray(tail, dtype=np.int32),
        np.ascontiguousarray(head, dtype=np.int32), rank, up_first, up_head)
    return {
        "order": order, "rank": rank, "parent": parent,
        "up_first": up_first, "up_head": up_head, "arc_tail": arc_tail,
        "down_first": down_first, "down_arc": down_arc, "down_tail": down_tail,
        "edge_slot": edge_slot, "arc_edge_first": arc_edge_first, "arc_edges": arc_edges,
    }
