"""Full customization: the weight and middle node of every directed arc for one weight array.

For a forward arc ``a = (x, z)`` (``x < z`` in rank) ``W[a]`` is the cost ``x -> z``, for a
backward arc the cost ``z -> x``, of the cheapest path between them through lower-ranked nodes
only (``inf``: none); see :mod:`engine.cch.contract` for the arc layout. ``V[a]`` says where
that value came from, so a path unpacks in time proportional to its length:

* ``>= 0``: a shortcut through the middle node ``y`` (forward ``x -> y -> z``: the backward
  arc ``(y, x)`` then the forward arc ``(y, z)``; backward ``z -> y -> x``: the backward arc
  ``(y, z)`` then the forward arc ``(y, x)``);
* ``<= -2``: the input edge ``-2 - via`` (the cheapest of the parallel edges);
* ``-1``: nothing (the value is ``inf``).

Ties keep the first candidate in a fixed order (input edges by id, then middle nodes by
increasing rank), so full, parallel and partial customization give bit-identical results.

Full customization lives here (:func:`customize_full`); partial customization after a few
edges changed in :mod:`engine.cch.partial`.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from engine.cch._util import (
    Float64Array,
    Int32Array,
    UInt32Array,
    numba_threads,
    select_lt,
)
from engine.cch.topology import CCHTopology
from engine.kernels.matrix import PARALLEL_LOCK

#: ``V[a]`` of an arc with no path (its weight is ``inf``)
VIA_NONE = -1
#: below this many arcs, full customization stays on one thread by default (the threads'
#: start-up costs more than they save)
PARALLEL_MIN_ARCS = 200_000


# ------------------------------------------------------------------------ full customization
@njit(cache=True, nogil=True, inline="always")
def _customize_node(x: int, weight: Float64Array, f_first: UInt32Array, b_first: UInt32Array,
                    head: UInt32Array, bin_first: UInt32Array, binp: UInt32Array,
                    fin_first: UInt32Array, finp: UInt32Array, in_first: UInt32Array,
                    in_edge: UInt32Array, in_slot: UInt32Array, W: Float64Array,
                    V: Int32Array, fof: UInt32Array, bof: UInt32Array) -> None:
    """Final weights of every arc of ``x`` from its input edges and its lower triangles.
    ``fof`` / ``bof``: node -> forward / backward arc of ``x`` (scratch, any content)."""
    for a in range(f_first[x], f_first[x + 1]):
        W[a] = np.inf
        V[a] = VIA_NONE
        fof[head[a]] = a
    for a in range(b_first[x], b_first[x + 1]):
        W[a] = np.inf
        V[a] = VIA_NONE
        bof[head[a]] = a
    for i in range(in_first[x], in_first[x + 1]):
        s = in_slot[i]
        e = in_edge[i]
        w = weight[e]
        if w < W[s]:
            W[s] = w
            V[s] = -2 - np.int64(e)
    # forward arcs (x, z): x -> y (backward arc (y, x)) then y -> z (forward arcs of y above
    # x); the minimum and its via are updated without branches (see ``_util.select_lt``)
    for k in range(bin_first[x], bin_first[x + 1]):
        p0 = binp[k, 2]
        p1 = binp[k, 3]
        if p0 == p1:
            continue
        d = W[binp[k, 0]]
        if d == np.inf:
            continue
        y = np.int64(binp[k, 1])
        for p in range(p0, p1):
            c = d + W[p]
            t = fof[head[p]]
            old = W[t]
            W[t] = c if c < old else old
            V[t] = select_lt(c, old, y, np.int64(V[t]))
    # backward arcs (x, z): z -> y (backward arcs of y above x) then y -> x (forward (y, x))
    for k in range(fin_first[x], fin_first[x + 1]):
        p0 = finp[k, 2]
        p1 = finp[k, 3]
        if p0 == p1:
            continue
        u = W[finp[k, 0]]
        if u == np.inf:
            continue
        y = np.int64(finp[k, 1])
        for p in range(p0, p1):
            c = W[p] + u
            t = bof[head[p]]
            old = W[t]
            W[t] = c if c < old else old
            V[t] = select_lt(c, old, y, np.int64(V[t]))


@njit(cache=True, nogil=True)
def _customize_nodes(nodes: Int32Array, weight: Float64Array, f_first: UInt32Array,
                     b_first: UInt32Array, head: UInt32Array, bin_first: UInt32Array,
                     binp: UInt32Array, fin_first: UInt32Array, finp: UInt32Array,
                     in_first: UInt32Array, in_edge: UInt32Array, in_slot: UInt32Array,
                     W: Float64Array, V: Int32Array, fof: UInt32Array, bof: UInt32Array
                     ) -> None:
    """The nodes ``nodes`` in this order (increasing rank), on this thread."""
    for i in range(len(nodes)):
        _customize_node(nodes[i], weight, f_first, b_first, head, bin_first, binp, fin_first,
                        finp, in_first, in_edge, in_slot, W, V, fof, bof)


@njit(cache=True, nogil=True)
def _customize(weight: Float64Array, f_first: UInt32Array, b_first: UInt32Array,
               head: UInt32Array, bin_first: UInt32Array, binp: UInt32Array,
               fin_first: UInt32Array, finp: UInt32Array, in_first: UInt32Array,
               in_edge: UInt32Array, in_slot: UInt32Array, W: Float64Array, V: Int32Array,
               fof: UInt32Array, bof: UInt32Array) -> None:
    """Every node in increasing rank, on this thread."""
    for x in range(len(f_first) - 1):
        _customize_node(x, weight, f_first, b_first, head, bin_first, binp, fin_first, finp,
                        in_first, in_edge, in_slot, W, V, fof, bof)


@njit(cache=True, nogil=True, parallel=True)
def _customize_parallel(weight: Float64Array, f_first: UInt32Array, b_first: UInt32Array,
                        head: UInt32Array, bin_first: UInt32Array, binp: UInt32Array,
                        fin_first: UInt32Array, finp: UInt32Array, in_first: UInt32Array,
                        in_edge: UInt32Array, in_slot: UInt32Array, W: Float64Array,
                        V: Int32Array, fof2: UInt32Array, bof2: UInt32Array,
                        part_first: Int32Array, part_nodes: Int32Array, top_nodes: Int32Array
                        ) -> None:
    """Independent subtrees of the elimination tree in parallel, then the top sequentially.

    Part ``i`` is ``part_nodes[part_first[i]:part_first[i+1]]``: whole subtrees, in increasing
    rank; ``top_nodes`` is every other node, in increasing rank. A node's arcs depend only on
    its own input edges and the arcs of its descendants, so parts never race and the top
    comes last. Row ``i`` of ``fof2`` / ``bof2`` is part ``i``'s scratch.
    """
    n_parts = len(part_first) - 1
    for i in prange(n_parts):
        _customize_nodes(part_nodes[part_first[i]:part_first[i + 1]], weight, f_first,
                         b_first, head, bin_first, binp, fin_first, finp, in_first, in_edge,
                         in_slot, W, V, fof2[i], bof2[i])
    _customize_nodes(top_nodes, weight, f_first, b_first, head, bin_first, binp, fin_first,
                     finp, in_first, in_edge, in_slot, W, V, fof2[0], bof2[0])


def customize_full(topology: CCHTopology, weight: Float64Array, W: Float64Array,
                   V: Int32Array, *, parallel: bool | None = None) -> str:
    """Write the weight and via of every arc for the per-edge ``weight`` (float64[m], ``inf``:
    closed, no NaN, no negative value: the caller checks) into ``W`` / ``V`` (length
    ``n_arcs``, any content). Returns how it ran (``full`` or ``full, <p> subtree groups in
    parallel``).

    ``parallel`` (default: from :data:`PARALLEL_MIN_ARCS` arcs when numba has >= 2 threads)
    customizes the topology's subtree groups on separate threads, then the top nodes.
    """
    t = topology
    n, parts = t.n_nodes, t.n_parts
    if parallel is None:
        parallel = t.n_arcs >= PARALLEL_MIN_ARCS and numba_threads() >= 2
    if parallel and parts >= 2:
        # scratch, one row per group: node -> forward / backward arc of the node customized
        forward_arc_to, backward_arc_to = np.empty((2, parts, n), dtype=np.uint32)
        with PARALLEL_LOCK:  # numba's workqueue layer is not re-entrant
            _customize_parallel(weight, t.f_first, t.b_first, t.head, t.bin_first, t.binp,
                                t.fin_first, t.finp, t.in_first, t.in_edge, t.in_slot, W, V,
                                forward_arc_to, backward_arc_to, t.part_first, t.part_nodes,
                                t.top_nodes)
        return f"full, {parts} subtree groups in parallel"
    forward_arc_to, backward_arc_to = np.empty((2, n), dtype=np.uint32)
    _customize(weight, t.f_first, t.b_first, t.head, t.bin_first, t.binp, t.fin_first, t.finp,
               t.in_first, t.in_edge, t.in_slot, W, V, forward_arc_to, backward_arc_to)
    return "full"
