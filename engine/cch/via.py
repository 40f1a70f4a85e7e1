"""Via-node alternative routes over a customized CCH: exact distances on the two
elimination-tree search spaces, ranked candidate via nodes, and the admissibility tests, in
one kernel.

Method: the via-node alternatives of Abraham, Delling, Goldberg & Werneck, "Alternative routes
in road networks" (SEA 2010; ACM J. Exp. Algorithmics 18, 2013), evaluated with the CCH much
as their variant X-CHV evaluates them with a contraction hierarchy (candidates are the nodes
of the two searches' spaces), but with exact distances, and with their plateau ranking:

1. **Search spaces.** One unpruned upward walk from the seeds and one from the targets: the
   ancestors of each in the elimination tree (:mod:`engine.cch.search`). Their union holds
   the common ancestors, among them a nested-dissection separator that every path between
   the two ends crosses, and is closed upwards: a node's upper neighbours are its ancestors.
   When the smallest cell holding both ends (the elimination subtree of the lowest common
   node, a contiguous rank range) has at most ``max_cell`` nodes, it joins the union, which
   stays closed upwards: short trips get every node around them as a candidate. Otherwise
   the cells of at most ``anchor_cell`` nodes around a few ``anchors`` (nodes of the best
   route) join it, with their ancestors: the corridors alongside a long route.
2. **Exact distances on the union.** An upward distance is only an upper bound (the shortest
   path to ``v`` may climb past ``v`` and come down). One pass over the union in
   *decreasing* rank relaxes every downward arc: ``D_s(v) = min(up_s(v), min over upper
   neighbours z of D_s(z) + w(z -> v))``, and the mirror pass gives ``D_t(v)``. Every
   shortest path has an up-down form whose nodes all lie in the union (Dibbelt, Strasser &
   Wagner 2016), so ``D_s(v) = d(s, v)`` and ``D_t(v) = d(v, t)`` exactly for every ``v``
   of the union, and ``D_s(v) + D_t(v)`` is the exact cost of the best path via ``v``
   ("verify each candidate's cost" is built in). Its path ``P_v`` unpacks from the
   predecessors the walks and the passes recorded.
3. **Candidates and ranking.** The nodes of the union whose via cost is within
   ``max_stretch`` of the best cost, ranked by Abraham et al.'s ``f(v) = 2 l(v) + sigma(v)
   - pl(v)`` where, before any unpacking, ``sigma`` is a lower bound of the sharing (the
   cost of the hierarchy arcs ``P_v`` has in common with the best path: an identical
   shortcut unpacks to identical roads) and ``pl`` the plateau seen from the hierarchy (see
   :func:`_hierarchy_arcs`). A candidate on the best route, on an accepted alternative or
   on a path already rejected is skipped: its via path is that path again, since
   candidates are tried in order and a path through ``v`` bounds its via cost. So is one
   whose sharing lower bound is already too high.
4. **Admissibility** (Abraham et al.), for each remaining candidate's unpacked ``P_v``:

   * a *simple* path (no road twice);
   * *limited sharing*: the cost ``P_v`` shares with the best route and the alternatives
     already accepted is at most ``max_sharing`` times the best cost (a shared road counts
     for the overlap of the fractions both drive, a shared turn for its turn cost);
   * *local optimality*: ``s -> v`` and ``v -> t`` are shortest paths by construction, so
     only the stretches around ``v`` can fail. When the plateau is at least
     ``T = alpha * best cost`` long, every stretch of length ``T`` is a shortest path
     (proof in :func:`_hierarchy_arcs`); otherwise their T-test: ``u``, the node before
     ``v`` nearest to it with ``l(P_v[u, v]) >= T`` (else the start), ``w`` likewise after
     ``v``, and ``P_v[u, w]`` must be a shortest path (one pruned point-to-point CCH query;
     a 2-approximation of T-local optimality);
   * *bounded stretch*: the total cost is within ``max_stretch`` by step 3, and the detour,
     from the last node of ``P_v``'s prefix on the best route to the first node of its
     suffix on it, costs at most ``max_detour`` times the shortest path between those two
     nodes (one more query; their approximation of uniformly bounded stretch; skipped when
     ``max_detour`` is inf).

At most ``max_examined`` candidates are unpacked. The public :func:`via_alternatives` checks
its entries and runs :func:`_alternatives`, which keeps every scratch array in a
:class:`ViaWorkspace` and leaves it clean.
"""

from __future__ import annotations

import threading
from typing import Any, NamedTuple

import numpy as np
from numba import njit

from engine.cch._util import (
    Float64Array,
    Int32Array,
    Int64Array,
    UInt8Array,
)
from engine.cch.metric import CCHMetric
from engine.cch.search import CCHWorkspace, _query, _reset, _unpack, entries, upward_walk
from engine.cch.topology import CCHTopology

#: rows of :attr:`ViaWorkspace.pred`
PRED_F, PRED_B, DOWN_F, DOWN_B, PREV_F, PREV_B = 0, 1, 2, 3, 4, 5
#: entries of the statistics the kernel returns (:attr:`ViaResult.stats`)
STATS: tuple[str, ...] = ("reachable", "within_stretch", "examined", "skipped", "not_simple",
                          "sharing", "not_local_optimal", "detour", "accepted")
_REACHABLE, _WITHIN, _EXAMINED, _SKIPPED, _NOT_SIMPLE, _SHARING, _LOCAL, _DETOUR, _ACCEPTED = (
    range(9))


class ViaWorkspace:
    """Scratch arrays of :func:`via_alternatives` over ``n`` nodes, ``n_groups`` node groups
    (roads) and ``n_edges`` input edges; every call leaves it clean."""

    __slots__ = ("arc_mark", "cov", "dist", "flag", "group_seen", "heap", "node_cost",
                 "node_mark", "out", "pred", "stack", "visited")

    def __init__(self, n: int, n_groups: int, n_edges: int) -> None:
        #: float64[2, n], inf: exact distances from the seeds / to the targets (rank space)
        self.dist: Float64Array = np.full((2, n), np.inf)
        #: int32[6, n], -1: upward predecessors (arc, or ``-2 - entry``), the downward arc of
        #: the exact pass, and the upward predecessors' nodes, forward and backward (rows
        #: PRED_F, PRED_B, DOWN_F, DOWN_B, PREV_F, PREV_B)
        self.pred: Int32Array = np.full((6, n), -1, dtype=np.int32)
        #: uint8[n]: bit 1 on the seeds' walk, bit 2 on the targets' walk
        self.flag: UInt8Array = np.zeros(n, dtype=np.uint8)
        self.heap: Int32Array = np.zeros(n + 1, dtype=np.int32)
        #: int32[2n]: the two walks' nodes, increasing rank each
        self.visited: Int32Array = np.zeros(2 * n + 2, dtype=np.int32)
        self.stack: Int64Array = np.zeros(2 * n + 4, dtype=np.int64)
        #: int32: a candidate's unpacked path (grown when a path does not fit)
        self.out: Int32Array = np.zeros(4096, dtype=np.int32)
        #: float64[2, n_groups]: the fraction of each group (road) covered by the routes so
        #: far, as one interval ``[lo, hi]`` (empty: ``lo > hi``)
        self.cov: Float64Array = np.empty((2, n_groups))
        self.cov[0], self.cov[1] = np.inf, -np.inf
        #: uint8[n_edges]: edges (turns) taken by the routes so far
        self.arc_mark: UInt8Array = np.zeros(n_edges, dtype=np.uint8)
        #: uint8[n_groups]: groups met on the current candidate (simple-path test)
        self.group_seen: UInt8Array = np.zeros(n_groups, dtype=np.uint8)
        #: uint8[n] (graph nodes): bit 1 on the best route, 2 on an accepted alternative, 4
        #: on a rejected candidate's path
        self.node_mark: UInt8Array = np.zeros(n, dtype=np.uint8)
        #: float64[n] (graph nodes), inf: the cheapest accepted or rejected path through it
        self.node_cost: Float64Array = np.full(n, np.inf)


class ViaResult(NamedTuple):
    """What :func:`via_alternatives` found, best alternative first."""

    #: input edges of every alternative's path, seed node to target node: alternative ``k``
    #: is ``edges[first[k]:first[k+1]]``
    edges: Int32Array
    first: Int64Array
    seed: Int64Array  #: the seed entry each alternative starts from
    target: Int64Array  #: the target entry each ends at
    cost: Float64Array  #: exact costs (seed and target costs included)
    shared: Float64Array  #: the cost each shares with the best route and those before it
    via: Int64Array  #: the via node of each (graph node)
    stats: Int64Array  #: counts named by :data:`STATS`


# ------------------------------------------------------------------------------ kernels
@njit(cache=True, nogil=True)
def _exact(down_first: Any, head: Any, W: Any, visited: Any, lo: int, hi: int, dist: Any,
           down: Any) -> None:
    """Make a walk's distances exact: over ``visited[lo:hi]`` in decreasing rank, relax the
    arcs ``down_first[x]:down_first[x+1]`` from the upper neighbours (backward arcs for the
    seeds' walk: cost upper -> x; forward arcs for the targets': cost x -> upper)."""
    for k in range(hi - 1, lo - 1, -1):
        x = visited[k]
        best = dist[x]
        arg = -1
        for a in range(down_first[x], down_first[x + 1]):
            nd = dist[head[a]] + W[a]
            if nd < best:
                best = nd
                arg = a
        dist[x] = best
        down[x] = arg


@njit(cache=True, nogil=True)
def _via_path(f_first: Any, b_first: Any, head: Any, V: Any, x: int, fpred: Any, bpred: Any,
              fprev: Any, bprev: Any, fdown: Any, bdown: Any, stack: Any,
              out: Any) -> tuple[int, int, int, int]:
    """Input edges of the best path seed -> ``x`` -> target into ``out``; returns ``(count,
    edges before x, seed entry, target entry)`` (the count runs past ``len(out)`` without
    writing when it does not fit)."""
    # seeds' half: downward arcs x <- ... <- y0, then upward arcs y0 <- ... <- seed, kept at
    # the end of the stack array and unpacked in travel order (the reverse)
    end = len(stack)
    n_f = 0
    y = np.int64(x)
    while fdown[y] >= 0:
        b = fdown[y]  # backward arc of y: travel head -> y
        n_f += 1
        stack[end - n_f] = (np.int64(b) << 32) | y
        y = np.int64(head[b])
    while fpred[y] >= 0:
        a = fpred[y]  # forward arc of its tail: travel tail -> y
        t = np.int64(fprev[y])
        n_f += 1
        stack[end - n_f] = (np.int64(a) << 32) | t
        y = t
    seed_i = -2 - fpred[y]
    n_out = 0
    for k in range(n_f):
        s = stack[end - n_f + k]
        n_out = _unpack(f_first, b_first, head, V, s >> 32, s & 0xFFFFFFFF,
                        stack[:end - n_f], out, n_out)
    n_before = n_out
    # targets' half: upward arcs x -> ... -> y0, then downward arcs y0 -> ... -> target
    y = np.int64(x)
    while bdown[y] >= 0:
        a = bdown[y]  # forward arc of y: travel y -> head
        n_out = _unpack(f_first, b_first, head, V, a, y, stack, out, n_out)
        y = np.int64(head[a])
    while bpred[y] >= 0:
        a = bpred[y]  # backward arc of its tail t: travel y -> t
        t = np.int64(bprev[y])
        n_out = _unpack(f_first, b_first, head, V, a, t, stack, out, n_out)
        y = t
    target_i = -2 - bpred[y]
    return n_out, n_before, seed_i, target_i


@njit(cache=True, nogil=True, inline="always")
def _overlap(cov: Any, g: Any, lo: float, hi: float) -> float:
    """The part of ``[lo, hi]`` (fractions of group ``g``) the routes so far cover."""
    a = max(lo, cov[0, g])
    b = min(hi, cov[1, g])
    return b - a if b > a else 0.0


@njit(cache=True, nogil=True, inline="always")
def _cover(cov: Any, g: Any, lo: float, hi: float) -> None:
    if lo < cov[0, g]:
        cov[0, g] = lo
    if hi > cov[1, g]:
        cov[1, g] = hi


@njit(cache=True, nogil=True)
def _p2p(firsts: Any, head: Any, parent_rank: Any, W: Any, u: int, w: int, qdist: Any,
         qints: Any, qflag: Any, one: Any, zero: Any) -> float:
    """Exact cost from node ``u`` to node ``w`` (a pruned CCH query, workspace left clean)."""
    one[0] = u
    one[1] = w
    best, _, n_visited = _query(firsts[0], firsts[1], head, parent_rank[0], parent_rank[1], W,
                                one[0:1], zero, one[1:2], zero, qdist[0], qdist[1], qints[0],
                                qints[1], qflag, qints[2], qints[3])
    _reset(qints[3], n_visited, qdist[0], qdist[1], qints[0], qints[1], qflag)
    return best


@njit(cache=True, nogil=True)
def _hierarchy_arcs(head: Any, x: int, fdist: Any, bdist: Any, fpred: Any, bpred: Any,
                    fprev: Any, bprev: Any, fdown: Any, bdown: Any,
                    arcs: Any) -> tuple[int, float]:
    """The hierarchy arcs (shortcuts, before unpacking) of the best path seed -> ``x`` ->
    target into ``arcs`` (sized for two elimination-tree chains), and the length of its
    plateau seen from the hierarchy; returns ``(count, plateau)``.

    Every node ``y`` of that compressed path is on the two walks, with exact ``D_s(y)``
    and ``D_t(y)``, and the path reaches it at cost ``D_s(y)`` (before ``x``) or leaves it
    at ``D_t(y)`` (after). When ``D_s(y) + D_t(y)`` equals the path's cost, the path from
    ``y`` on (before ``x``) or up to ``y`` (after) is a shortest path: Abraham et al.'s
    plateau. With ``y1`` the earliest and ``y2`` the latest such node, every stretch of the
    path no longer than ``l(P[y1, y2])`` lies in ``P[y1, t]`` or in ``P[s, y2]``, so is a
    shortest path: the path is that long locally optimal, without a query."""
    total = fdist[x] + bdist[x]
    tol = total - 1e-9 * max(1.0, total)
    lo_s = fdist[x]
    lo_t = bdist[x]
    n = 0
    y = np.int64(x)
    down = True  # first the downward arcs of the exact pass, then the upward walk's
    while True:
        if fdist[y] + bdist[y] >= tol and fdist[y] < lo_s:
            lo_s = fdist[y]
        if down and fdown[y] >= 0:
            arcs[n] = fdown[y]
            y = np.int64(head[fdown[y]])
        elif fpred[y] >= 0:
            down = False
            arcs[n] = fpred[y]
            y = np.int64(fprev[y])
        else:
            break
        n += 1
    y = np.int64(x)
    down = True
    while True:
        if fdist[y] + bdist[y] >= tol and bdist[y] < lo_t:
            lo_t = bdist[y]
        if down and bdown[y] >= 0:
            arcs[n] = bdown[y]
            y = np.int64(head[bdown[y]])
        elif bpred[y] >= 0:
            down = False
            arcs[n] = bpred[y]
            y = np.int64(bprev[y])
        else:
            break
        n += 1
    return n, (fdist[x] - lo_s) + (bdist[x] - lo_t)


@njit(cache=True, nogil=True)
def _shared_lower_bound(arcs: Any, n: int, known: Any, n_known: int, W: Any) -> float:
    """Cost of the hierarchy arcs ``arcs[:n]`` that are among ``known[:n_known]`` (sorted):
    an identical shortcut unpacks to an identical piece of road, so this is at most what
    the path shares with the routes ``known`` came from."""
    total = 0.0
    for k in range(n):
        a = arcs[k]
        lo, hi = 0, n_known
        while lo < hi:
            mid = (lo + hi) >> 1
            if known[mid] < a:
                lo = mid + 1
            else:
                hi = mid
        if lo < n_known and known[lo] == a:
            total += W[a]
    return total


@njit(cache=True, nogil=True)
def _admissible(firsts: Any, head: Any, parent_rank: Any, W: Any, g_head: Any, group: Any,
                group_w: Any, extra: Any, nodes: Any, cum: Any, out: Any, n_out: int,
                n_before: int, start: float, te: Any, end: float, ref: float,
                max_share: float, T: float, max_detour: float, cov: Any, arc_mark: Any,
                group_seen: Any, node_mark: Any, qdist: Any, qints: Any, qflag: Any,
                one: Any, zero: Any) -> tuple[int, float]:
    """The tests of a candidate path (``nodes[0..n_out]``, edges ``out[:n_out]``, the via
    node at ``n_before``, ``cum`` the cost of reaching each node; driven from fraction
    ``start`` of the first road, through edge ``te`` into the last road up to ``end``):
    ``(_ACCEPTED or the failed test's stats index, cost shared)``."""
    last = n_out
    # simple: no road twice
    simple = True
    for k in range(last + 1):
        g = group[nodes[k]]
        if group_seen[g]:
            simple = False
        group_seen[g] = 1
    for k in range(last + 1):
        group_seen[group[nodes[k]]] = 0
    if not simple:
        return _NOT_SIMPLE, 0.0
    # sharing with the best route and the alternatives accepted so far
    shared = _overlap(cov, group[nodes[0]], start, 1.0) * group_w[group[nodes[0]]]
    for k in range(n_out):
        a = out[k]
        g = group[g_head[a]]
        shared += _overlap(cov, g, 0.0, 1.0) * group_w[g]
        if arc_mark[a]:
            shared += extra[a]
    g = group[g_head[te]]
    shared += _overlap(cov, g, 0.0, end) * group_w[g]
    if arc_mark[te]:
        shared += extra[te]
    if shared > max_share * ref:
        return _SHARING, shared
    # local optimality: the T-test around the via node
    p = n_before
    u = p
    while u > 0 and cum[p] - cum[u] < T:
        u -= 1
    w = p
    while w < last and cum[w] - cum[p] < T:
        w += 1
    if u < w:
        d = _p2p(firsts, head, parent_rank, W, nodes[u], nodes[w], qdist, qints, qflag, one,
                 zero)
        length = cum[w] - cum[u]
        if d < length - 1e-9 * max(1.0, length):
            return _LOCAL, shared
    # bounded detour: between the last node of the prefix on the best route and the first
    # node of the suffix on it
    if max_detour < np.inf:
        a0 = 0
        if node_mark[nodes[0]] & 1:
            while a0 < last and node_mark[nodes[a0 + 1]] & 1:
                a0 += 1
        b0 = last
        if node_mark[nodes[last]] & 1:
            while b0 > a0 and node_mark[nodes[b0 - 1]] & 1:
                b0 -= 1
        if b0 > a0:
            d = _p2p(firsts, head, parent_rank, W, nodes[a0], nodes[b0], qdist, qints, qflag,
                     one, zero)
            length = cum[b0] - cum[a0]
            if length > max_detour * d + 1e-9 * max(1.0, length):
                return _DETOUR, shared
    return _ACCEPTED, shared


@njit(cache=True, nogil=True)
def _merge(a: Any, b: Any, out: Any) -> int:
    """Merge two increasing arrays into ``out`` without repeats; returns the count."""
    i, j, n = 0, 0, 0
    while i < len(a) or j < len(b):
        if j >= len(b) or (i < len(a) and a[i] < b[j]):
            out[n] = a[i]
            i += 1
        elif i >= len(a) or b[j] < a[i]:
            out[n] = b[j]
            j += 1
        else:
            out[n] = a[i]
            i += 1
            j += 1
        n += 1
    return n


@njit(cache=True, nogil=True)
def _add_range(nodes: Any, first: Any, last: Any) -> Any:
    """``nodes`` (increasing) with every rank ``first..last`` added."""
    extra = np.arange(np.int64(first), np.int64(last) + 1).astype(np.int32)
    out = np.empty(len(nodes) + len(extra), dtype=np.int32)
    n = _merge(nodes, extra, out)
    return out[:n]


@njit(cache=True, nogil=True)
def _alternatives(firsts: Any, head: Any, parent_rank: Any, order: Any, lo: Any, W: Any, V: Any,
                  g_head: Any, w_edge: Any, group: Any, group_w: Any, extra: Any,
                  seeds: Any, seed_cost: Any, seed_start: Any, targets: Any,
                  target_cost: Any, target_edge: Any, target_end: Any, best_groups: Any,
                  best_lo: Any, best_hi: Any, best_edges: Any, best_nodes: Any, anchors: Any,
                  params: Any, n_alt: int, max_examined: int, max_cell: int,
                  anchor_cell: int, dist: Any,
                  pred: Any,
                  flag: Any, heap: Any, visited: Any, stack: Any, out: Any, cov: Any,
                  arc_mark: Any, group_seen: Any, node_mark: Any, node_cost: Any,
                  qdist: Any, qints: Any, qflag: Any) -> tuple[Any, ...]:
    """Up to ``n_alt`` admissible via-node alternatives (see the module docstring).

    ``params``: best cost, max stretch, max sharing (share of the best cost), alpha (the
    T-test's share of the best cost), max detour stretch. The graph is described by
    ``g_head`` (head node of every input edge), ``w_edge`` (its weight), ``group`` (node ->
    road), ``group_w`` (road -> cost to drive it) and ``extra`` (edge -> its part of the
    weight beyond the road entered: the turn cost); the best route by its legs
    (``best_groups`` driven from ``best_lo`` to ``best_hi``), edges and nodes. Returns
    ``(count, edges, first, seed, target, cost, shared, via, stats, out)``, ``out`` being
    the workspace's path buffer (replaced when it had to grow).
    """
    f_first, b_first = firsts[0], firsts[1]
    parent, rank = parent_rank[0], parent_rank[1]
    fdist, bdist = dist[0], dist[1]
    fpred, bpred, fdown, bdown = pred[0], pred[1], pred[2], pred[3]
    fprev, bprev = pred[4], pred[5]
    ref, max_stretch, max_share, alpha, max_detour = (params[0], params[1], params[2],
                                                      params[3], params[4])
    stats = np.zeros(9, dtype=np.int64)
    n_f = upward_walk(f_first, head, parent, rank, W, seeds, seed_cost, fdist, fpred, fprev,
                      flag, np.uint8(1), heap, visited, 0, True)
    n_all = upward_walk(b_first, head, parent, rank, W, targets, target_cost, bdist, bpred,
                        bprev, flag, np.uint8(2), heap, visited, n_f, True)
    # the union of the two walks, increasing rank (each is sorted), and the smallest cell of
    # the nested dissection holding both ends when it is small: the elimination subtree of
    # the lowest common node (a contiguous rank range). The result is closed upwards (a
    # node's upper neighbours are its ancestors), so one decreasing-rank pass makes the
    # distances from the seeds and to the targets exact on all of it
    walks = np.empty(n_all, dtype=np.int32)
    n_w = _merge(visited[:n_f], visited[n_f:n_all], walks)
    union = walks[:n_w]
    if max_cell >= len(rank):  # every node (an exhaustive reference)
        union = _add_range(union, 0, len(rank) - 1)
    else:
        lowest = -1  # the lowest common node (the walks' meeting point in the tree)
        for k in range(n_f, n_all):
            if flag[visited[k]] == 3:
                lowest = visited[k]
                break
        if lowest >= 0 and lowest - lo[lowest] + 1 <= max_cell:
            union = _add_range(union, lo[lowest], lowest)
        elif anchor_cell > 0:
            # a long trip: the largest cells (of at most anchor_cell nodes) around points
            # of the best route, with their ancestors, where the corridors alongside it run
            for k in range(len(anchors)):
                y = rank[anchors[k]]
                while parent[y] >= 0 and parent[y] - lo[parent[y]] + 1 <= anchor_cell:
                    y = parent[y]
                if y - lo[y] + 1 > anchor_cell:
                    continue
                union = _add_range(union, lo[y], y)
                n_up = 0
                z = parent[y]
                while z >= 0:
                    n_up += 1
                    z = parent[z]
                up = np.empty(n_up, dtype=np.int32)
                z = parent[y]
                for i in range(n_up):
                    up[i] = z
                    z = parent[z]
                merged = np.empty(len(union) + n_up, dtype=np.int32)
                n_m = _merge(union, up, merged)
                union = merged[:n_m]
    n_u = len(union)
    _exact(b_first, head, W, union, 0, n_u, fdist, fdown)
    _exact(f_first, head, W, union, 0, n_u, bdist, bdown)
    # candidates: finite both ways, within the stretch bound, cheapest first
    limit = ref * max_stretch * (1.0 + 1e-12)
    cand = np.empty(n_u, dtype=np.int64)
    cand_cost = np.empty(n_u)
    n_cand = 0
    for k in range(n_u):
        x = union[k]
        c = fdist[x] + bdist[x]
        if c < np.inf:
            stats[_REACHABLE] += 1
            if c <= limit:
                cand[n_cand] = x
                cand_cost[n_cand] = c
                n_cand += 1
    stats[_WITHIN] = n_cand
    # the best route covers its roads, turns and nodes
    for k in range(len(best_groups)):
        _cover(cov, best_groups[k], best_lo[k], best_hi[k])
    for k in range(len(best_edges)):
        arc_mark[best_edges[k]] = 1
    for k in range(len(best_nodes)):
        node_mark[best_nodes[k]] |= 1
    found_edges = np.empty(1024, dtype=np.int32)
    first = np.zeros(n_alt + 1, dtype=np.int64)
    f_seed = np.empty(n_alt, dtype=np.int64)
    f_target = np.empty(n_alt, dtype=np.int64)
    f_cost = np.empty(n_alt)
    f_shared = np.empty(n_alt)
    f_via = np.empty(n_alt, dtype=np.int64)
    n_found = 0
    one = np.empty(2, dtype=np.int32)
    zero = np.zeros(1)
    T = alpha * ref
    cum = np.empty(64)
    nodes = np.empty(64, dtype=np.int64)
    marked = np.empty(256, dtype=np.int64)
    n_marked = 0
    # the hierarchy arcs of the best path (via the cheapest candidate) and of the accepted
    # alternatives, sorted: a lower bound of a candidate's sharing before unpacking it
    chain = np.empty(4 * (n_u + 1), dtype=np.int64)
    known = np.empty(4 * (n_u + 1) * (n_alt + 1), dtype=np.int64)
    n_known = 0
    best_k = np.argmin(cand_cost[:n_cand]) if n_cand > 0 else -1
    if best_k >= 0 and cand_cost[best_k] <= ref * (1.0 + 1e-9):
        n_known, _ = _hierarchy_arcs(head, cand[best_k], fdist, bdist, fpred, bpred,
                                     fprev, bprev, fdown, bdown, known)
        known[:n_known] = np.sort(known[:n_known])
    # Abraham et al.'s ranking f(v) = 2 l(v) + sigma(v) - pl(v), halved, with the sharing
    # and the plateau seen from the hierarchy
    key = np.empty(n_cand)
    plateau = np.empty(n_cand)
    for k in range(n_cand):
        n_chain, plateau[k] = _hierarchy_arcs(head, cand[k], fdist, bdist, fpred, bpred,
                                              fprev, bprev, fdown, bdown, chain)
        key[k] = (cand_cost[k] + 0.5 * _shared_lower_bound(chain, n_chain, known, n_known, W)
                  - 0.5 * plateau[k])
    rank_order = np.argsort(key, kind="mergesort")
    for r in range(n_cand):
        if n_found >= n_alt or stats[_EXAMINED] >= max_examined:
            break
        x = cand[rank_order[r]]
        v = order[x]
        if node_mark[v] & 1 or (node_mark[v] & 6 and cand_cost[rank_order[r]]
                                >= node_cost[v] * (1.0 - 1e-12)):
            # on the best route, or on a path tried before that is a best path via it
            stats[_SKIPPED] += 1
            continue
        n_chain, _ = _hierarchy_arcs(head, x, fdist, bdist, fpred, bpred, fprev, bprev,
                                     fdown, bdown, chain)
        if _shared_lower_bound(chain, n_chain, known, n_known, W) > max_share * ref:
            stats[_SHARING] += 1
            continue
        stats[_EXAMINED] += 1
        n_out, n_before, si, ti = _via_path(f_first, b_first, head, V, x, fpred, bpred, fprev,
                                            bprev, fdown, bdown, stack, out)
        if n_out > len(out):
            out = np.empty(2 * n_out, dtype=np.int32)
            n_out, n_before, si, ti = _via_path(f_first, b_first, head, V, x, fpred, bpred,
                                                fprev, bprev, fdown, bdown, stack, out)
        if n_out + 1 > len(nodes):
            nodes = np.empty(2 * (n_out + 1), dtype=np.int64)
            cum = np.empty(2 * (n_out + 1))
        # the path's nodes and the cost of reaching the end of each
        nodes[0] = seeds[si]
        cum[0] = seed_cost[si]
        for k in range(n_out):
            nodes[k + 1] = g_head[out[k]]
            cum[k + 1] = cum[k] + w_edge[out[k]]
        last = n_out
        te = target_edge[ti]
        reason, shared = _admissible(
            firsts, head, parent_rank, W, g_head, group, group_w, extra, nodes, cum, out,
            n_out, n_before, seed_start[si], te, target_end[ti], ref, max_share,
            0.0 if plateau[rank_order[r]] >= T else T, max_detour, cov, arc_mark, group_seen,
            node_mark, qdist, qints, qflag, one, zero)
        total = cum[last] + target_cost[ti]
        # a later candidate on this path whose via cost equals the path's would give it
        # again: remember the path's cost on its nodes
        bit = np.uint8(2) if reason == _ACCEPTED else np.uint8(4)
        for k in range(last + 1):
            v = nodes[k]
            if node_cost[v] == np.inf:
                if n_marked == len(marked):
                    grown64 = np.empty(2 * n_marked, dtype=np.int64)
                    grown64[:n_marked] = marked[:n_marked]
                    marked = grown64
                marked[n_marked] = v
                n_marked += 1
            if total < node_cost[v]:
                node_cost[v] = total
            node_mark[v] |= bit
        if reason != _ACCEPTED:
            stats[reason] += 1
            continue
        # accepted
        start = first[n_found]
        if start + n_out > len(found_edges):
            grown = np.empty(2 * (start + n_out), dtype=np.int32)
            grown[:start] = found_edges[:start]
            found_edges = grown
        found_edges[start:start + n_out] = out[:n_out]
        first[n_found + 1] = start + n_out
        f_seed[n_found] = si
        f_target[n_found] = ti
        f_cost[n_found] = total
        f_shared[n_found] = shared
        f_via[n_found] = order[x]
        n_found += 1
        _cover(cov, group[nodes[0]], seed_start[si], 1.0)
        for k in range(n_out):
            _cover(cov, group[nodes[k + 1]], 0.0, 1.0)
            arc_mark[out[k]] = 1
        _cover(cov, group[g_head[te]], 0.0, target_end[ti])
        arc_mark[te] = 1
        known[n_known:n_known + n_chain] = chain[:n_chain]
        n_known += n_chain
        known[:n_known] = np.sort(known[:n_known])
    stats[_ACCEPTED] = n_found
    # leave the workspace clean
    for k in range(len(best_groups)):
        cov[0, best_groups[k]] = np.inf
        cov[1, best_groups[k]] = -np.inf
    for k in range(len(best_edges)):
        arc_mark[best_edges[k]] = 0
    for k in range(len(best_nodes)):
        node_mark[best_nodes[k]] = 0
    for k in range(n_marked):
        node_mark[marked[k]] = 0
        node_cost[marked[k]] = np.inf
    for q in range(n_found):
        si = f_seed[q]
        te = target_edge[f_target[q]]
        for g in (group[seeds[si]], group[g_head[te]]):
            cov[0, g] = np.inf
            cov[1, g] = -np.inf
        node_mark[seeds[si]] = 0
        arc_mark[te] = 0
        for k in range(first[q], first[q + 1]):
            a = found_edges[k]
            g = group[g_head[a]]
            cov[0, g] = np.inf
            cov[1, g] = -np.inf
            arc_mark[a] = 0
            node_mark[g_head[a]] = 0
    for k in range(n_u):
        x = union[k]
        fdist[x] = np.inf
        bdist[x] = np.inf
        fdown[x] = -1
        bdown[x] = -1
    for k in range(n_all):
        x = visited[k]
        fdist[x] = np.inf
        bdist[x] = np.inf
        fpred[x] = -1
        bpred[x] = -1
        fdown[x] = -1
        bdown[x] = -1
        fprev[x] = -1
        bprev[x] = -1
        flag[x] = 0
    return (n_found, found_edges[:first[n_found]].copy(), first[:n_found + 1].copy(),
            f_seed[:n_found].copy(), f_target[:n_found].copy(), f_cost[:n_found].copy(),
            f_shared[:n_found].copy(), f_via[:n_found].copy(), stats, out)


# ------------------------------------------------------------------------ public wrapper
def _ro(a: np.ndarray) -> np.ndarray:
    """A read-only view (no copy): the kernel is compiled for read-only inputs only."""
    if not a.flags.writeable:
        return a
    v = a.view()
    v.flags.writeable = False
    return v


def _array(a: Any, dtype: Any, name: str, n: int | None = None) -> np.ndarray:
    out = np.ascontiguousarray(a, dtype=dtype)
    if out.ndim != 1 or (n is not None and len(out) != n):
        raise ValueError(f"{name} must be a 1-D array" + (f" of {n} entries" if n else ""))
    return out


def via_alternatives(topology: CCHTopology, metric: CCHMetric, *, edge_head: Any,
                     group: Any, group_weight: Any, edge_extra: Any, seeds: Any,
                     seed_cost: Any, seed_start: Any, targets: Any, target_cost: Any,
                     target_edge: Any, target_end: Any, best_cost: float, best_groups: Any,
                     best_lo: Any, best_hi: Any, best_edges: Any, best_nodes: Any,
                     anchors: Any, n: int,
                     max_stretch: float, max_sharing: float, alpha: float,
                     max_detour: float, max_examined: int, max_cell: int,
                     ws: ViaWorkspace, anchor_cell: int = 0,
                     query_ws: CCHWorkspace) -> ViaResult:
    """Up to ``n`` via-node alternatives to a best route of cost ``best_cost`` (see the
    module docstring), on the graph the topology was built from.

    The graph's input edge ``e`` enters node ``edge_head[e]`` and weighs
    ``metric.weights[e] = edge_extra[e] + group_weight[group[edge_head[e]]]`` (on the turn
    graph: a turn arc costs its turn plus the road entered; ``group`` maps a turn node to
    its road). A route starts at seed entry ``i``: node ``seeds[i]``, having driven its road
    from fraction ``seed_start[i]`` (``seed_cost[i]``), and ends at target entry ``j``: from
    node ``targets[j]`` through edge ``target_edge[j]`` into a road driven up to fraction
    ``target_end[j]`` (``target_cost[j]``, the edge's extra included). The best route is
    given by its legs (``best_groups`` from ``best_lo`` to ``best_hi``), its edges and its
    nodes. ``ValueError`` for entries out of range or of mismatched lengths.
    """
    nn, m = topology.n_nodes, topology.n_edges
    seeds, seed_cost = entries(seeds, seed_cost, "seeds")
    targets, target_cost = entries(targets, target_cost, "targets")
    seed_start = _array(seed_start, np.float64, "seed_start", len(seeds))
    target_edge = _array(target_edge, np.int64, "target_edge", len(targets))
    target_end = _array(target_end, np.float64, "target_end", len(targets))
    edge_head = _array(edge_head, np.int32, "edge_head", m)
    group = _array(group, np.int32, "group", nn)
    group_weight = _array(group_weight, np.float64, "group_weight")
    edge_extra = _array(edge_extra, np.float64, "edge_extra", m)
    best_groups = _array(best_groups, np.int64, "best_groups")
    best_lo = _array(best_lo, np.float64, "best_lo", len(best_groups))
    best_hi = _array(best_hi, np.float64, "best_hi", len(best_groups))
    best_edges = _array(best_edges, np.int64, "best_edges")
    best_nodes = _array(best_nodes, np.int64, "best_nodes")
    anchors = _array(anchors, np.int32, "anchors")
    n_groups = len(group_weight)
    for name, arr, size in (("seeds", seeds, nn), ("targets", targets, nn),
                            ("target_edge", target_edge, m), ("best_groups", best_groups,
                                                              n_groups),
                            ("best_edges", best_edges, m), ("best_nodes", best_nodes, nn),
                            ("anchors", anchors, nn)):
        if len(arr) and (arr.min() < 0 or arr.max() >= size):
            raise ValueError(f"{name} must be ids in [0, {size})")
    if not (seed_cost >= 0).all() or not (target_cost >= 0).all():
        raise ValueError("seed and target costs must be >= 0 (inf allowed)")
    if ws.cov.shape[1] != n_groups or len(ws.arc_mark) != m or len(ws.flag) != nn:
        raise ValueError("the workspace was made for another graph")
    if not np.isfinite(best_cost) or best_cost < 0:
        raise ValueError(f"best_cost must be a finite cost >= 0, got {best_cost}")
    if not (max_stretch >= 1 and 0 <= max_sharing and alpha >= 0 and max_detour >= 1):
        raise ValueError("expected max_stretch >= 1, max_sharing >= 0, alpha >= 0, "
                         "max_detour >= 1")
    if len(metric.weights) != m or len(metric.W) != topology.n_arcs:
        raise ValueError("this metric was customized on another graph")
    empty = ViaResult(np.zeros(0, np.int32), np.zeros(1, np.int64), np.zeros(0, np.int64),
                      np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0, np.int64),
                      np.zeros(len(STATS), np.int64))
    if n <= 0 or not len(seeds) or not len(targets):
        return empty
    params = np.array([best_cost, max_stretch, max_sharing, alpha, max_detour])
    t = topology
    (_, edges, first, seed, target, cost, shared, via, stats,
     out) = _alternatives(
        t.firsts, t.head, t.parent_rank, t.order, t.lo, _ro(metric.W), _ro(metric.V),
        _ro(edge_head), _ro(metric.weights), _ro(group), _ro(group_weight), _ro(edge_extra),
        _ro(seeds), _ro(seed_cost), _ro(seed_start), _ro(targets), _ro(target_cost),
        _ro(target_edge), _ro(target_end), _ro(best_groups), _ro(best_lo), _ro(best_hi),
        _ro(best_edges), _ro(best_nodes), _ro(anchors), _ro(params), int(n),
        int(max_examined),
        int(max_cell), int(anchor_cell), ws.dist,
        ws.pred, ws.flag, ws.heap, ws.visited, ws.stack, ws.out, ws.cov, ws.arc_mark,
        ws.group_seen, ws.node_mark, ws.node_cost, query_ws.dist, query_ws.ints,
        query_ws.flag)
    ws.out = out
    return ViaResult(edges, first, seed, target, cost, shared, via, stats)


class WorkspacePool:
    """:class:`ViaWorkspace` objects of one graph, lent one per running call (memory grows
    with the calls in flight, not with the threads that ever ran one)."""

    def __init__(self, n: int, n_groups: int, n_edges: int) -> None:
        self.shape = (n, n_groups, n_edges)
        self._free: list[ViaWorkspace] = []
        self._lock = threading.Lock()

    def acquire(self) -> ViaWorkspace:
        with self._lock:
            if self._free:
                return self._free.pop()
        return ViaWorkspace(*self.shape)

    def release(self, ws: ViaWorkspace) -> None:
        with self._lock:
            if len(self._free) < 4:
                self._free.append(ws)


def warm_up() -> None:
    """Compile (or load from numba's cache) the kernel with the service's argument types, on
    a 4-node cycle with two roads per node group."""
    from engine.cch.index import CCHIndex

    class _Cycle:
        n_nodes, n_edges = 4, 5
        tail = np.array([0, 0, 1, 2, 3], dtype=np.int32)
        head = np.array([1, 2, 2, 3, 0], dtype=np.int32)
        first_out = np.array([0, 2, 3, 4, 5], dtype=np.int32)

    graph = _Cycle()
    index = CCHIndex.build(graph)
    w = np.array([1.0, 2.5, 1.0, 1.0, 1.0])
    w.flags.writeable = False
    metric = index.customize(w)
    group = np.arange(4, dtype=np.int32)
    group_weight = np.ones(4)
    extra = w - group_weight[graph.head]
    ws = ViaWorkspace(4, 4, 5)
    via_alternatives(index.topology, metric, edge_head=graph.head, group=group,
                     group_weight=group_weight, edge_extra=extra,
                     seeds=np.array([0], np.int32), seed_cost=np.zeros(1),
                     seed_start=np.zeros(1), targets=np.array([2], np.int32),
                     target_cost=np.zeros(1), target_edge=np.array([3], np.int64),
                     target_end=np.zeros(1), best_cost=2.0,
                     best_groups=np.array([0, 1, 2, 3], np.int64), best_lo=np.zeros(4),
                     best_hi=np.array([1.0, 1.0, 1.0, 0.0]),
                     best_edges=np.array([0, 2, 3], np.int64),
                     best_nodes=np.array([0, 1, 2], np.int64),
                     anchors=np.array([1], np.int32), n=2, max_stretch=2.0,
                     max_sharing=0.8, alpha=0.25, max_detour=2.0, max_examined=8,
                     max_cell=100, ws=ws,
                     query_ws=index.workspace())
