"""Partial customization: after a few input edges changed, recompute only the arcs whose
weight or via may change, and get exactly the metric a full customization would give.

The arcs of the changed edges are queued; a node's queued arcs are recomputed (from its input
edges and lower triangles, as :mod:`engine.cch.customize` does) in increasing rank, and every
arc of an upper triangle through an arc that changed is queued in turn. With subtree groups
(:attr:`engine.cch.topology.CCHTopology.part_first`) the groups run on separate threads, then
the top nodes. :class:`PartialCustomizer` owns the scratch arrays (:class:`PartialScratch`) and
runs one update at a time; the caller owns the metric arrays it writes into.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from engine.cch._util import (
    Float64Array,
    Int32Array,
    Int64Array,
    UInt8Array,
    UInt32Array,
    find_in,
    key_pop,
    key_push,
    tail_of,
)
from engine.cch.customize import VIA_NONE
from engine.cch.topology import CCHTopology
from engine.kernels.matrix import PARALLEL_LOCK

Int8Array = NDArray[np.int8]


# ------------------------------------------------------------------------ kernels
@njit(cache=True, nogil=True, inline="always")
def _first_y_at_least(rows: UInt32Array, lo: Any, hi: Any, y: Any) -> np.int64:
    """First row in ``rows[lo:hi]`` (sorted by column 1) whose ``y`` is ``>= y``."""
    lo = np.int64(lo)
    hi = np.int64(hi)
    while lo < hi:
        mid = (lo + hi) >> 1
        if rows[mid, 1] < y:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, nogil=True, inline="always")
def _check(T: Any, cand: float, x: int, W: Float64Array, V: Int32Array,
           arc_queued: UInt8Array, node_queued: UInt8Array, c: Any, heap: Int64Array,
           size: int, me: int, part_of: Int8Array, out: Int64Array, n_out: int
           ) -> tuple[int, int]:
    """Queue arc ``T`` (tail ``c``) if the triangle through ``x`` (worth ``cand`` now) may
    change its value or via: it improves on it, ties with it from a lower middle node than
    the recorded one, or the recorded value came through ``x``. A node of this run's part
    ``me`` goes on its heap, a node of the top (``part_of == -1``, while a part runs) on
    ``out`` (every ancestor of a part's node is in that part or in the top). Returns the new
    heap size and ``out`` count."""
    u = np.uint64(T)  # unsigned: no negative-index wraparound code
    if arc_queued[u] == 0:
        vT = V[u]
        wT = W[u]
        if vT == x or cand < wT or (cand == wT and vT > x):
            arc_queued[u] = 1
            if part_of[c] == me:
                if node_queued[c] == 0:
                    node_queued[c] = 1
                    size = key_push(heap, size, c)
            else:
                out[n_out] = c
                n_out += 1
    return size, n_out


@njit(cache=True, nogil=True)
def _partial_run(me: int, part_of: Int8Array, heap: Int64Array, size: int,
                 weight: Float64Array, f_first: UInt32Array, b_first: UInt32Array,
                 head: UInt32Array, bin_first: UInt32Array, binp: UInt32Array,
                 fin_first: UInt32Array, finp: UInt32Array, in_first: UInt32Array,
                 in_edge: UInt32Array, in_slot: UInt32Array, lo: UInt32Array, W: Float64Array,
                 V: Int32Array, arc_queued: UInt8Array, node_queued: UInt8Array,
                 mark: Int64Array, batch: Int64Array, new_w: Float64Array, new_v: Int64Array,
                 loc: Int64Array, chmask: UInt8Array, written: UInt32Array, out: Int64Array,
                 budget: int) -> tuple[int, int, int]:
    """Recompute the queued arcs of the nodes on ``heap``, and every arc whose value may
    depend on an arc that changed, node by node in increasing rank (a topological order of
    the triangle dependencies). Returns ``(arcs recomputed, arcs changed, nodes put on
    out)``; the recomputed arcs (every arc written) are left in ``written``. Gives up
    (arcs recomputed = -1) once more than ``budget`` arcs were recomputed: a full
    customization is cheaper then (the flags ``arc_queued`` / ``node_queued`` are left dirty).

    A queued forward arc ``(x, z)`` is recomputed from its input edges and the triangles
    ``x -> y -> z``: the backward arcs ``(y, x)`` of ``x`` are marked once per node
    (``mark[y]``), then the forward arcs ``(y, z)`` into ``z`` with ``y`` in ``x``'s subtree
    (ranks ``[lo[x], x)``) are looked up in the marks; backward arcs symmetrically. Scratch:
    ``arc_queued`` (all 0), ``node_queued`` (all 0), ``mark`` (all -1), ``loc`` (all -1),
    ``chmask`` (all 0) are left as found (``arc_queued`` / ``node_queued`` for the nodes this
    run handles).
    """
    n_out = 0
    n_done = 0
    n_changed = 0
    while size > 0:
        if n_done > budget:
            return -1, n_changed, n_out
        x, size = key_pop(heap, size)
        node_queued[x] = 0
        f0, f1 = np.int64(f_first[x]), np.int64(f_first[x + 1])
        b0, b1 = np.int64(b_first[x]), np.int64(b_first[x + 1])
        nF = f1 - f0
        k = 0
        for a in range(f0, f1):
            if arc_queued[a]:
                batch[k] = a
                k += 1
        nf = k
        for a in range(b0, b1):
            if arc_queued[a]:
                batch[k] = a
                k += 1
        for i in range(k):
            a = batch[i]
            arc_queued[a] = 0
            written[n_done + i] = a
            loc[a - f0 if a < f1 else nF + a - b0] = i
            new_w[i] = np.inf
            new_v[i] = VIA_NONE
        n_done += k
        for j in range(in_first[x], in_first[x + 1]):
            s = np.int64(in_slot[j])
            i = loc[s - f0 if s < f1 else nF + s - b0]
            if i < 0:
                continue
            e = in_edge[j]
            w = weight[e]
            if w < new_w[i]:
                new_w[i] = w
                new_v[i] = -2 - np.int64(e)
        for i in range(k):
            a = batch[i]
            loc[a - f0 if a < f1 else nF + a - b0] = -1
        lox = lo[x]
        if nf > 0:  # forward (x, z): backward (y, x) + forward (y, z)
            for j in range(bin_first[x], bin_first[x + 1]):
                mark[binp[j, 1]] = binp[j, 0]
            for i in range(nf):
                z = head[batch[i]]
                nu = new_w[i]
                vu = new_v[i]
                j1 = fin_first[z + 1]
                for j in range(_first_y_at_least(finp, fin_first[z], j1, lox), j1):
                    y = finp[j, 1]
                    if y >= x:
                        break
                    yx = mark[y]
                    if yx >= 0:
                        c = W[np.uint64(yx)] + W[finp[j, 0]]
                        if c < nu:
                            nu = c
                            vu = y
                new_w[i] = nu
                new_v[i] = vu
            for j in range(bin_first[x], bin_first[x + 1]):
                mark[binp[j, 1]] = -1
        if k > nf:  # backward (x, z): backward (y, z) + forward (y, x)
            for j in range(fin_first[x], fin_first[x + 1]):
                mark[finp[j, 1]] = finp[j, 0]
            for i in range(nf, k):
                z = head[batch[i]]
                nd = new_w[i]
                vd = new_v[i]
                j1 = bin_first[z + 1]
                for j in range(_first_y_at_least(binp, bin_first[z], j1, lox), j1):
                    y = binp[j, 1]
                    if y >= x:
                        break
                    yx = mark[y]
                    if yx >= 0:
                        c = W[binp[j, 0]] + W[np.uint64(yx)]
                        if c < nd:
                            nd = c
                            vd = y
                new_w[i] = nd
                new_v[i] = vd
            for j in range(fin_first[x], fin_first[x + 1]):
                mark[finp[j, 1]] = -1
        # write back; chmask flags the arcs of x whose weight changed, and loc lists them
        # (forward ones first, each part in increasing head: the batch order)
        n_c = 0
        ncf = 0
        max_changed = np.int64(-1)
        for i in range(k):
            a = batch[i]
            V[a] = new_v[i]
            if new_w[i] == W[a]:
                continue
            W[a] = new_w[i]
            chmask[a - f0 if a < f1 else nF + a - b0] = 1
            loc[n_c] = a
            n_c += 1
            if a < f1:
                ncf = n_c
            if head[a] > max_changed:
                max_changed = head[a]
        if n_c == 0:
            continue
        n_changed += n_c
        # An arc of x is a lower arc of every arc joining its head c and another upper
        # neighbour z of x (c < z), through the triangle c - x - z:
        #   forward (c, z) <- backward (x, c) + forward (x, z)   [c -> x -> z]
        #   backward (c, z) <- backward (x, z) + forward (x, c)  [z -> x -> c]
        # Visit the upper neighbours c in increasing order; for each, the pairs with a
        # changed arc: every z above c when an arc (x, c) changed (walk c's list), else the
        # changed z only (``loc[iF:ncf]`` / ``loc[iB:n_c]``, binary searches).
        pf = f0
        pb = b0
        iF = 0
        iB = ncf
        while pf < f1 or pb < b1:
            cf = head[pf] if pf < f1 else np.uint32(0xFFFFFFFF)
            cb = head[pb] if pb < b1 else np.uint32(0xFFFFFFFF)
            c = min(cf, cb)
            if c > max_changed:
                break
            hasF = cf == c
            hasB = cb == c
            while iF < ncf and head[loc[iF]] <= c:
                iF += 1
            while iB < n_c and head[loc[iB]] <= c:
                iB += 1
            if hasB:  # forward (c, z) for forward (x, z), z > c
                dB = W[pb]
                r = np.int64(f_first[c])
                if chmask[nF + pb - b0] == 1:  # backward (x, c) changed: every z
                    for q in range(pf + 1 if hasF else pf, f1):
                        z = head[np.uint64(q)]
                        while head[np.uint64(r)] < z:
                            r += 1
                        size, n_out = _check(r, dB + W[np.uint64(q)], x, W, V, arc_queued,
                                             node_queued, c, heap, size, me, part_of, out,
                                             n_out)
                else:
                    r1 = np.int64(f_first[c + 1])
                    for j in range(iF, ncf):
                        q = loc[j]
                        r = find_in(head, r, r1, head[np.uint64(q)])
                        size, n_out = _check(r, dB + W[np.uint64(q)], x, W, V, arc_queued,
                                             node_queued, c, heap, size, me, part_of, out,
                                             n_out)
            if hasF:  # backward (c, z) for backward (x, z), z > c
                uF = W[pf]
                r = np.int64(b_first[c])
                if chmask[pf - f0] == 1:  # forward (x, c) changed: every z
                    for q in range(pb + 1 if hasB else pb, b1):
                        z = head[np.uint64(q)]
                        while head[np.uint64(r)] < z:
                            r += 1
                        size, n_out = _check(r, W[np.uint64(q)] + uF, x, W, V, arc_queued,
                                             node_queued, c, heap, size, me, part_of, out,
                                             n_out)
                else:
                    r1 = np.int64(b_first[c + 1])
                    for j in range(iB, n_c):
                        q = loc[j]
                        r = find_in(head, r, r1, head[np.uint64(q)])
                        size, n_out = _check(r, W[np.uint64(q)] + uF, x, W, V, arc_queued,
                                             node_queued, c, heap, size, me, part_of, out,
                                             n_out)
            if hasF:
                pf += 1
            if hasB:
                pb += 1
        for i in range(n_c):
            a = loc[i]
            chmask[a - f0 if a < f1 else nF + a - b0] = 0
            loc[i] = -1
    return n_done, n_changed, n_out


@njit(cache=True, nogil=True)
def _seed(changed: Int32Array, edge_slot: Int32Array, f_first: UInt32Array,
          b_first: UInt32Array, part_of: Int8Array, arc_queued: UInt8Array,
          node_queued: UInt8Array, heaps: Int64Array, sizes: Int64Array) -> None:
    """Queue the arcs of the changed edges; their tails go on the heap of their part (row
    ``part + 1`` of ``heaps``; row 0: the top)."""
    kf = f_first[len(f_first) - 1]
    for i in range(len(changed)):
        s = edge_slot[changed[i]]
        if s < 0 or arc_queued[s]:
            continue
        arc_queued[s] = 1
        x = tail_of(f_first, s) if s < kf else tail_of(b_first, s)
        if node_queued[x] == 0:
            node_queued[x] = 1
            r = part_of[x] + 1
            sizes[r] = key_push(heaps[r], sizes[r], x)


@njit(cache=True, nogil=True)
def _partial(weight: Float64Array, changed: Int32Array, edge_slot: Int32Array,
             f_first: UInt32Array, b_first: UInt32Array, head: UInt32Array,
             bin_first: UInt32Array, binp: UInt32Array, fin_first: UInt32Array,
             finp: UInt32Array, in_first: UInt32Array, in_edge: UInt32Array,
             in_slot: UInt32Array, lo: UInt32Array, W: Float64Array, V: Int32Array,
             arc_queued: UInt8Array, node_queued: UInt8Array, heaps: Int64Array,
             marks: Int64Array, batch: Int64Array, new_w: Float64Array, new_v: Int64Array,
             loc: Int64Array, chmask: UInt8Array, written: UInt32Array, outs: Int64Array,
             part_of: Int8Array, written_at: Int64Array, budget: int) -> tuple[int, int]:
    """Partial customization on this thread: every queued node, parts and top alike
    (``part_of`` must be all -1). Returns ``(arcs recomputed, arcs changed)``, the
    recomputed arcs in ``written``; -1 arcs recomputed when it gave up past ``budget`` (see
    :func:`_partial_run`)."""
    sizes = np.zeros(len(heaps), dtype=np.int64)
    # part_of: all -1 here (one part: everything is "top")
    _seed(changed, edge_slot, f_first, b_first, part_of, arc_queued, node_queued, heaps,
          sizes)
    done, n_changed, _ = _partial_run(
        -1, part_of, heaps[0], sizes[0], weight, f_first, b_first, head, bin_first, binp,
        fin_first, finp, in_first, in_edge, in_slot, lo, W, V, arc_queued, node_queued,
        marks[0], batch[0], new_w[0], new_v[0], loc[0], chmask[0], written, outs[0], budget)
    return done, n_changed


@njit(cache=True, nogil=True, parallel=True)
def _partial_parallel(weight: Float64Array, changed: Int32Array, edge_slot: Int32Array,
                      f_first: UInt32Array, b_first: UInt32Array, head: UInt32Array,
                      bin_first: UInt32Array, binp: UInt32Array, fin_first: UInt32Array,
                      finp: UInt32Array, in_first: UInt32Array, in_edge: UInt32Array,
                      in_slot: UInt32Array, lo: UInt32Array, W: Float64Array, V: Int32Array,
                      arc_queued: UInt8Array, node_queued: UInt8Array, heaps: Int64Array,
                      marks: Int64Array, batch: Int64Array, new_w: Float64Array,
                      new_v: Int64Array, loc: Int64Array, chmask: UInt8Array,
                      written: UInt32Array, outs: Int64Array, part_of: Int8Array,
                      written_at: Int64Array, budget: int) -> tuple[int, int]:
    """Partial customization with the independent subtree groups of the full customization
    on separate threads, then the top on this one. A part's arcs depend only on arcs of the
    same part, and a part only queues nodes of its own or of the top; top nodes it queues
    are collected in its row of ``outs`` (both parts may queue the same top arc: the flags
    they write are identical). Part ``i`` writes its recomputed arcs from
    ``written_at[i + 1]`` on (each part's arcs fit; the top's from ``written_at[0]``).
    Returns ``(arcs recomputed, arcs changed)``; the recomputed arcs are compacted to the
    front of ``written``; -1 arcs recomputed when a part or the top gave up (``budget``
    split evenly between the parts)."""
    n_parts = len(heaps) - 1
    sizes = np.zeros(n_parts + 1, dtype=np.int64)
    _seed(changed, edge_slot, f_first, b_first, part_of, arc_queued, node_queued, heaps,
          sizes)
    res = np.zeros((n_parts, 3), dtype=np.int64)
    for i in prange(n_parts):
        d0, c0, o0 = _partial_run(
            i, part_of, heaps[i + 1], sizes[i + 1], weight, f_first, b_first, head,
            bin_first, binp, fin_first, finp, in_first, in_edge, in_slot, lo, W, V,
            arc_queued, node_queued, marks[i], batch[i], new_w[i], new_v[i], loc[i],
            chmask[i], written[written_at[i + 1]:], outs[i], budget // n_parts)
        res[i, 0] = d0
        res[i, 1] = c0
        res[i, 2] = o0
    if np.any(res[:, 0] < 0):
        return -1, 0
    size = sizes[0]
    top = heaps[0]
    for i in range(n_parts):
        for j in range(res[i, 2]):
            c = outs[i][j]
            if node_queued[c] == 0:
                node_queued[c] = 1
                size = key_push(top, size, c)
    d_top, c_top, _ = _partial_run(
        -1, part_of, top, size, weight, f_first, b_first, head, bin_first, binp, fin_first,
        finp, in_first, in_edge, in_slot, lo, W, V, arc_queued, node_queued, marks[0],
        batch[0], new_w[0], new_v[0], loc[0], chmask[0], written[written_at[0]:], outs[0],
        budget - res[:, 0].sum())
    if d_top < 0:
        return -1, 0
    # compact: top's arcs first (they are at written_at[0]), then each part's
    done = 0
    for j in range(d_top):
        written[done] = written[written_at[0] + j]
        done += 1
    n_changed = c_top
    for i in range(n_parts):
        base = written_at[i + 1]
        for j in range(res[i, 0]):
            written[done] = written[base + j]
            done += 1
        n_changed += res[i, 1]
    return done, n_changed


# ------------------------------------------------------------------------ public wrapper
class PartialScratch:
    """Work arrays of partial customization, kept between runs (``p`` = number of subtree
    groups, at least 1 row; ``d`` = the largest arc count of a node). The kernels leave them
    as they found them: flags 0, maps -1."""

    __slots__ = ("arc_queued", "batch", "chmask", "heaps", "loc", "marks", "new_v", "new_w",
                 "node_queued", "outs", "written")

    def __init__(self, n_nodes: int, n_arcs: int, n_parts: int, max_degree: int,
                 top_arcs: int) -> None:
        k, n, d = n_arcs, n_nodes, max(1, max_degree)
        rows = max(1, n_parts)
        #: uint8[k], all 0: arc queued for recomputation
        self.arc_queued = np.zeros(k, dtype=np.uint8)
        #: uint8[n], all 0: node on a heap
        self.node_queued = np.zeros(n, dtype=np.uint8)
        #: int64[p+1, n]: row 0 the top's heap of nodes, row ``i + 1`` group ``i``'s
        self.heaps = np.empty((rows + 1, max(1, n)), dtype=np.int64)
        #: int64[p, n], all -1, per group: node ``y`` -> the arc ``(y, x)`` of the node ``x``
        #: being recomputed
        self.marks = np.full((rows, n), -1, dtype=np.int64)
        #: int64[p, d], per group: the queued arcs of the node being recomputed
        self.batch = np.empty((rows, d), dtype=np.int64)
        #: float64[p, d] / int64[p, d], per group: their new weights and vias
        self.new_w = np.empty((rows, d))
        self.new_v = np.empty((rows, d), dtype=np.int64)
        #: int64[p, d], all -1, per group: arc of the node -> position in ``batch``, then
        #: the list of its arcs that changed
        self.loc = np.full((rows, d), -1, dtype=np.int64)
        #: uint8[p, d], all 0, per group: arc of the node changed
        self.chmask = np.zeros((rows, d), dtype=np.uint8)
        #: uint32[k]: every arc recomputed (groups at :attr:`PartialCustomizer.written_at`,
        #: compacted to the front at the end)
        self.written = np.empty(k, dtype=np.uint32)
        #: int64[p, top arcs + 1], per group: top nodes it queued
        self.outs = np.empty((rows, top_arcs + 1), dtype=np.int64)


@dataclass(frozen=True)
class PartialResult:
    """What a partial customization did."""

    #: arcs recomputed (every arc written)
    arcs_recomputed: int
    #: arcs whose weight changed
    arcs_changed: int
    #: uint32: the recomputed arcs (the lineage of the new metric)
    written: UInt32Array


class PartialCustomizer:
    """Partial customization over one topology. Thread-safe: runs are serialised (they share
    :class:`PartialScratch`); the metric arrays written belong to the caller."""

    def __init__(self, topology: CCHTopology) -> None:
        t = self.topology = topology
        n = t.n_nodes
        arcs_of = t.arcs_per_node()
        #: the largest arc count of a node (scratch row length)
        self.max_degree = int(arcs_of.max()) if len(arcs_of) else 0
        #: int8[n]: subtree group of every node, -1 for the top
        self.part_of = np.full(n, -1, dtype=np.int8)
        # where each group's run writes its arc list in ``written``: the top first, then the
        # groups in order (each gets room for all of its arcs)
        at = [0, int(arcs_of[t.top_nodes].sum())]
        for i in range(t.n_parts):
            nodes = t.part_nodes[t.part_first[i]:t.part_first[i + 1]]
            self.part_of[nodes] = i
            at.append(at[-1] + int(arcs_of[nodes].sum()))
        #: int64[p+1]: offset of the top's (0) and of each group's arc list in ``written``
        self.written_at = np.array(at[:-1] if len(at) > 2 else [0], dtype=np.int64)
        #: int8[n], all -1: every node "top" (the sequential run)
        self._no_parts = np.full(n, -1, dtype=np.int8)
        self._lock = threading.Lock()
        self._scratch: PartialScratch | None = None

    def scratch(self) -> PartialScratch:
        """The scratch arrays, allocated on first use (hold the run lock to use them)."""
        if self._scratch is None:
            t = self.topology
            top_arcs = int(self.written_at[1]) if len(self.written_at) > 1 else t.n_arcs
            self._scratch = PartialScratch(t.n_nodes, t.n_arcs, t.n_parts, self.max_degree,
                                           top_arcs)
        return self._scratch

    def run(self, weight: Float64Array, changed: Int32Array, W: Float64Array, V: Int32Array,
            *, budget: int | None = None, parallel: bool = False) -> PartialResult | None:
        """Bring ``W`` / ``V`` (a metric of weights equal to ``weight`` except on the edges
        ``changed``) to the metric of ``weight``, in place.

        ``parallel``: run the subtree groups on separate threads (if the topology has
        some). Returns None, with ``W`` / ``V`` half updated, once more than ``budget`` arcs
        were recomputed: a full customization is cheaper then.
        """
        t = self.topology
        limit = t.n_arcs + 1 if budget is None else int(budget)
        with self._lock:
            s = self.scratch()
            if parallel and t.n_parts >= 2:
                with PARALLEL_LOCK:  # numba's workqueue layer is not re-entrant
                    done, n_changed = _partial_parallel(
                        weight, changed, t.edge_slot, t.f_first, t.b_first, t.head,
                        t.bin_first, t.binp, t.fin_first, t.finp, t.in_first, t.in_edge,
                        t.in_slot, t.lo, W, V, s.arc_queued, s.node_queued, s.heaps, s.marks,
                        s.batch, s.new_w, s.new_v, s.loc, s.chmask, s.written, s.outs,
                        self.part_of, self.written_at, limit)
            else:
                done, n_changed = _partial(
                    weight, changed, t.edge_slot, t.f_first, t.b_first, t.head, t.bin_first,
                    t.binp, t.fin_first, t.finp, t.in_first, t.in_edge, t.in_slot, t.lo, W, V,
                    s.arc_queued, s.node_queued, s.heaps, s.marks, s.batch, s.new_w, s.new_v,
                    s.loc, s.chmask, s.written, s.outs, self._no_parts, self.written_at, limit)
            if done < 0:  # gave up: clean the flags it left
                s.arc_queued[:] = 0
                s.node_queued[:] = 0
                return None
            return PartialResult(int(done), int(n_changed), s.written[:done].copy())
