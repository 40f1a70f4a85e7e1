"""Weight-independent CCH structure: chordal supergraph, directed arcs, triangles, edge map.

Everything here is in *rank space* (node ``r`` is the node of rank ``r``).

1. **Symbolic elimination** (:func:`_chordal_supergraph`) of the undirected graph in rank
   order gives the upward neighbourhoods of a chordal supergraph and the elimination tree
   (``parent`` = lowest upper neighbour).
2. **Directions that can never be finite are dropped** (:func:`_reachable`): the input graph
   is directed, so the shortcut ``x -> z`` (``x < z``) exists only if some directed path
   ``x -> ... -> z`` through lower-ranked nodes exists, whatever the weights. On turn graphs
   (one node per directed road, one arc per turn) a shortcut is very often usable in one
   direction only: on New York's turn graph 10.5 M undirected arcs give 5.9 M upward
   (*forward*, ``F``) and 5.8 M downward (*backward*, ``B``) arcs, and the lower triangles
   that customization must evaluate fall from 2 x 183 M to 119 M (the "directed CCH" of
   rust_road_router and of Buchhold, Wagner, Zeitz and Zündorf's turn-cost CCH).
3. Arc ids: forward arcs first, by tail then head (``f_first[x]:f_first[x+1]``), then backward
   arcs, by tail then head (``b_first[x]:b_first[x+1]``, ids from ``f_first[n]``). A forward
   arc ``(x, z)`` weighs the cost ``x -> z``, a backward arc ``(x, z)`` the cost ``z -> x``;
   ``head`` is the upper end ``z`` of both.
4. **Lower triangles** are not stored (119 M on New York would be 1 GB): the forward arc
   ``(x, z)`` gets ``x -> y -> z`` from the backward arc ``(y, x)`` and the forward arc
   ``(y, z)`` for every ``y < x`` adjacent to both. ``bin_*`` lists, per node ``x``, its
   incoming backward arcs ``(y, x)`` (by increasing ``y``) with the slice of ``y``'s forward
   list whose heads are above ``x``; in a chordal graph those heads are exactly the ``z`` of
   the triangles, so one sequential walk per ``(y, x)`` enumerates them (RoutingKit's scheme,
   per direction). ``fin_*`` does the same for backward arcs (``z -> y -> x`` from the
   backward arc ``(y, z)`` and the forward arc ``(y, x)``). Rows of ``binp`` / ``finp``:
   ``(arc (y, x), y, first arc of the slice, end of the slice)``.
5. Input edges: ``edge_slot[e]`` is the arc of edge ``e`` (-1 for a self-loop); per node the
   input edges of its arcs (``in_first`` / ``in_edge`` / ``in_slot``, by edge id).
6. ``lo[x]``: the lowest rank in ``x``'s elimination subtree (every lower neighbour of ``x``
   is a descendant, so its rank is in ``[lo[x], x)``).

Index arrays walked by the customization loops are ``uint32``: with unsigned indices Numba
emits no negative-index wraparound, which made the triangle loop 1.5x faster on New York.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from engine.cch._util import (
    Float64Array,
    Int32Array,
    Int64Array,
    UInt8Array,
    UInt32Array,
    find_arc,
    find_in,
)


@njit(cache=True, nogil=True, inline="always")
def _append(buf: Int32Array, pos: int, cap: int, y: Any) -> tuple[Int32Array, int, int]:
    """Append ``y`` to a growable int32 buffer (doubling); returns ``(buf, pos, cap)``."""
    if pos == cap:
        cap *= 2
        grown = np.empty(cap, dtype=np.int32)
        grown[:pos] = buf[:pos]
        buf = grown
    buf[pos] = y
    return buf, pos + 1, cap


@njit(cache=True, nogil=True)
def _chordal_supergraph(n: int, xadj: Int32Array, adjncy: Int32Array, order: Int32Array,
                        rank: Int32Array) -> tuple[Int64Array, Int32Array, Int32Array]:
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
def _down_lists(n: int, up_first: Int64Array, up_head: Int32Array
                ) -> tuple[Int64Array, Int64Array, Int32Array]:
    """Arcs grouped by their upper end: ``down_first[v]``, ``down_arc[k]`` sorted by lower end;
    and the tail of every arc."""
    n_arcs = len(up_head)
    down_first = np.zeros(n + 1, dtype=np.int64)
    for a in range(n_arcs):
        down_first[up_head[a] + 1] += 1
    for v in range(n):
        down_first[v + 1] += down_first[v]
    fill = down_first[:-1].copy()
    down_arc = np.empty(n_arcs, dtype=np.int64)
    arc_tail = np.empty(n_arcs, dtype=np.int32)
    for x in range(n):  # arcs in increasing tail: each list ends sorted by tail
        for a in range(up_first[x], up_first[x + 1]):
            arc_tail[a] = x
            v = up_head[a]
            down_arc[fill[v]] = a
            fill[v] += 1
    return down_first, down_arc, arc_tail


@njit(cache=True, nogil=True)
def _reachable(n: int, up_first: Int64Array, up_head: Int32Array, arc_tail: Int32Array,
               down_first: Int64Array, down_arc: Int64Array, tail: Int32Array, head: Int32Array,
               rank: Int32Array) -> tuple[UInt8Array, UInt8Array]:
    """Per undirected arc ``(x, z)``: can ``x -> z`` (``ok_up``) / ``z -> x`` (``ok_dn``)
    ever be finite, i.e. is there a directed path through lower-ranked nodes, whatever the
    weights (a boolean customization with every input edge usable)."""
    k = len(up_head)
    ok_up = np.zeros(k, dtype=np.uint8)
    ok_dn = np.zeros(k, dtype=np.uint8)
    for e in range(len(tail)):
        x, y = rank[tail[e]], rank[head[e]]
        if x < y:
            ok_up[find_arc(up_first, up_head, x, y)] = 1
        elif x > y:
            ok_dn[find_arc(up_first, up_head, y, x)] = 1
    arc_of = np.empty(n, dtype=np.int64)
    for x in range(n):
        for a in range(up_first[x], up_first[x + 1]):
            arc_of[up_head[a]] = a
        for j in range(down_first[x], down_first[x + 1]):
            yx = down_arc[j]
            y = arc_tail[yx]
            d = ok_dn[yx]  # x -> y
            u = ok_up[yx]  # y -> x
            if d == 0 and u == 0:
                continue
            for yz in range(yx + 1, up_first[y + 1]):
                xz = arc_of[up_head[yz]]
                if d and ok_up[yz]:
                    ok_up[xz] = 1
                if u and ok_dn[yz]:
                    ok_dn[xz] = 1
    return ok_up, ok_dn


@njit(cache=True, nogil=True)
def _directed(n: int, up_first: Int64Array, up_head: Int32Array, ok_up: UInt8Array,
              ok_dn: UInt8Array) -> tuple[UInt32Array, UInt32Array, UInt32Array]:
    """Forward then backward arcs (see the module docstring): ``(f_first, b_first, head)``."""
    f_first = np.zeros(n + 1, dtype=np.uint32)
    b_first = np.zeros(n + 1, dtype=np.uint32)
    for x in range(n):
        cf = 0
        cb = 0
        for a in range(up_first[x], up_first[x + 1]):
            cf += ok_up[a]
            cb += ok_dn[a]
        f_first[x + 1] = f_first[x] + cf
        b_first[x + 1] = b_first[x] + cb
    kf = f_first[n]
    for x in range(n + 1):
        b_first[x] += kf
    head = np.empty(b_first[n], dtype=np.uint32)
    pf = 0
    pb = kf
    for a in range(len(up_head)):
        if ok_up[a]:
            head[pf] = up_head[a]
            pf += 1
        if ok_dn[a]:
            head[pb] = up_head[a]
            pb += 1
    return f_first, b_first, head


@njit(cache=True, nogil=True)
def _entries(n: int, f_first: UInt32Array, b_first: UInt32Array, head: UInt32Array
             ) -> tuple[UInt32Array, UInt32Array, UInt32Array, UInt32Array]:
    """``bin_first`` / ``binp`` and ``fin_first`` / ``finp`` (see the module docstring)."""
    kf = f_first[n]
    k = b_first[n]
    bin_first = np.zeros(n + 1, dtype=np.uint32)
    fin_first = np.zeros(n + 1, dtype=np.uint32)
    for a in range(kf):
        fin_first[head[a] + 1] += 1
    for a in range(kf, k):
        bin_first[head[a] + 1] += 1
    for x in range(n):
        bin_first[x + 1] += bin_first[x]
        fin_first[x + 1] += fin_first[x]
    binp = np.empty((k - kf, 4), dtype=np.uint32)
    finp = np.empty((kf, 4), dtype=np.uint32)
    bfill = bin_first[:n].copy()
    ffill = fin_first[:n].copy()
    for y in range(n):  # increasing y: every node's entries end sorted by y
        f0, f1 = f_first[y], f_first[y + 1]
        b0, b1 = b_first[y], b_first[y + 1]
        p = f0
        for a in range(b0, b1):  # backward arcs (y, x): the forward heads of y above x
            x = head[a]
            while p < f1 and head[p] <= x:
                p += 1
            i = bfill[x]
            bfill[x] += 1
            binp[i, 0] = a
            binp[i, 1] = y
            binp[i, 2] = p
            binp[i, 3] = f1
        p = b0
        for a in range(f0, f1):  # forward arcs (y, x): the backward heads of y above x
            x = head[a]
            while p < b1 and head[p] <= x:
                p += 1
            i = ffill[x]
            ffill[x] += 1
            finp[i, 0] = a
            finp[i, 1] = y
            finp[i, 2] = p
            finp[i, 3] = b1
    return bin_first, binp, fin_first, finp


@njit(cache=True, nogil=True)
def _map_edges(n: int, tail: Int32Array, head_nodes: Int32Array, rank: Int32Array,
               f_first: UInt32Array, b_first: UInt32Array, head: UInt32Array
               ) -> tuple[Int32Array, UInt32Array, UInt32Array, UInt32Array]:
    """``edge_slot`` (arc of every input edge, -1 for self-loops) and, per node, the input
    edges of its arcs in increasing edge id: ``in_first`` / ``in_edge`` / ``in_slot``."""
    m = len(tail)
    edge_slot = np.full(m, -1, dtype=np.int32)
    owner = np.empty(m, dtype=np.int64)
    in_first = np.zeros(n + 1, dtype=np.uint32)
    for e in range(m):
        x, z = rank[tail[e]], rank[head_nodes[e]]
        if x == z:
            continue
        if x < z:
            a = find_in(head, f_first[x], f_first[x + 1], z)
        else:
            x, z = z, x
            a = find_in(head, b_first[x], b_first[x + 1], z)
        if a < 0:
            raise RuntimeError("an input edge has no arc: inconsistent CCH")
        edge_slot[e] = a
        owner[e] = x
        in_first[x + 1] += 1
    for x in range(n):
        in_first[x + 1] += in_first[x]
    fill = in_first[:n].copy()
    in_edge = np.empty(in_first[n], dtype=np.uint32)
    in_slot = np.empty(in_first[n], dtype=np.uint32)
    for e in range(m):
        if edge_slot[e] < 0:
            continue
        x = owner[e]
        i = fill[x]
        fill[x] += 1
        in_edge[i] = e
        in_slot[i] = edge_slot[e]
    return edge_slot, in_first, in_edge, in_slot


@njit(cache=True, nogil=True)
def _subtree_low(parent: Int32Array) -> UInt32Array:
    """Lowest rank of every elimination subtree (children have lower ranks)."""
    n = len(parent)
    lo = np.arange(n).astype(np.uint32)
    for x in range(n):
        p = parent[x]
        if p >= 0 and lo[x] < lo[p]:
            lo[p] = lo[x]
    return lo


@njit(cache=True, nogil=True)
def node_work(bin_first: UInt32Array, binp: UInt32Array, fin_first: UInt32Array,
              finp: UInt32Array, f_first: UInt32Array, b_first: UInt32Array) -> Float64Array:
    """Modelled cost of customizing each node: triangles walked, plus per node, per entry
    and per arc overheads (fitted on New York's turn graph: a node costs about 120
    triangles, an entry about 4)."""
    n = len(f_first) - 1
    work = np.zeros(n, dtype=np.float64)
    for x in range(n):
        c = 120.0 + (f_first[x + 1] - f_first[x] + b_first[x + 1] - b_first[x])
        for k in range(bin_first[x], bin_first[x + 1]):
            c += 4.0 + (binp[k, 3] - binp[k, 2])
        for k in range(fin_first[x], fin_first[x + 1]):
            c += 4.0 + (finp[k, 3] - finp[k, 2])
        work[x] = c
    return work


@dataclass(frozen=True, eq=False)
class Contraction:
    """The weight-independent arrays :func:`contract` computes, in rank space (see the
    module docstring for the arc layout); :class:`engine.cch.topology.CCHTopology` documents
    every field and adds the subtree partition."""

    order: Int32Array
    rank: Int32Array
    parent: Int32Array
    lo: UInt32Array
    f_first: UInt32Array
    b_first: UInt32Array
    head: UInt32Array
    bin_first: UInt32Array
    binp: UInt32Array
    fin_first: UInt32Array
    finp: UInt32Array
    edge_slot: Int32Array
    in_first: UInt32Array
    in_edge: UInt32Array
    in_slot: UInt32Array
    #: arcs of the undirected chordal supergraph (before unusable directions are dropped)
    undirected_arcs: int


def contract(n: int, tail: np.ndarray, head: np.ndarray, order: np.ndarray,
             xadj: Int32Array, adjncy: Int32Array) -> Contraction:
    """All weight-independent arrays of a CCH (see the module docstring) for the node order
    ``order`` (rank -> node) of the graph ``tail`` / ``head`` with the undirected adjacency
    ``xadj`` / ``adjncy`` (:func:`engine.cch.order.undirected_simple_graph`)."""
    order = np.ascontiguousarray(order, dtype=np.int32)
    tail = np.ascontiguousarray(tail, dtype=np.int32)
    head = np.ascontiguousarray(head, dtype=np.int32)
    rank = np.empty(n, dtype=np.int32)
    rank[order] = np.arange(n, dtype=np.int32)
    up_first, up_head, parent = _chordal_supergraph(n, xadj, adjncy, order, rank)
    down_first, down_arc, arc_tail = _down_lists(n, up_first, up_head)
    ok_up, ok_dn = _reachable(n, up_first, up_head, arc_tail, down_first, down_arc, tail,
                              head, rank)
    n_undirected = len(up_head)
    del down_first, down_arc, arc_tail
    f_first, b_first, arc_head = _directed(n, up_first, up_head, ok_up, ok_dn)
    del up_first, up_head, ok_up, ok_dn
    bin_first, binp, fin_first, finp = _entries(n, f_first, b_first, arc_head)
    edge_slot, in_first, in_edge, in_slot = _map_edges(n, tail, head, rank, f_first, b_first,
                                                       arc_head)
    return Contraction(
        order=order, rank=rank, parent=parent, lo=_subtree_low(parent),
        f_first=f_first, b_first=b_first, head=arc_head,
        bin_first=bin_first, binp=binp, fin_first=fin_first, finp=finp,
        edge_slot=edge_slot, in_first=in_first, in_edge=in_edge, in_slot=in_slot,
        undirected_arcs=n_undirected,
    )


def undirected_arcs(n: int, tail: np.ndarray, head: np.ndarray, order: np.ndarray,
                    xadj: Int32Array, adjncy: Int32Array
                    ) -> tuple[Int64Array, Int32Array, Int32Array, UInt8Array, UInt8Array]:
    """The undirected chordal supergraph ``(up_first, up_head, parent)`` of an order and the
    per-arc directions that can be finite ``(ok_up, ok_dn)``: for tests and statistics."""
    order = np.ascontiguousarray(order, dtype=np.int32)
    rank = np.empty(n, dtype=np.int32)
    rank[order] = np.arange(n, dtype=np.int32)
    up_first, up_head, parent = _chordal_supergraph(n, xadj, adjncy, order, rank)
    down_first, down_arc, arc_tail = _down_lists(n, up_first, up_head)
    ok_up, ok_dn = _reachable(n, up_first, up_head, arc_tail, down_first, down_arc,
                              np.ascontiguousarray(tail, dtype=np.int32),
                              np.ascontiguousarray(head, dtype=np.int32), rank)
    return up_first, up_head, parent, ok_up, ok_dn
