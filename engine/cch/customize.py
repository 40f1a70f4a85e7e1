"""Customization: the metric-dependent weight of every (directed) arc.

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
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from engine.cch._util import key_pop as _pop
from engine.cch._util import key_push as _push
from engine.cch._util import select_lt as _select_lt
from engine.cch.contract import find_in as _find_in

VIA_NONE = -1


# ------------------------------------------------------------------------ full customization
@njit(cache=True, nogil=True, inline="always")
def _customize_node(x, weight, f_first, b_first, head, bin_first, binp, fin_first, finp,
                    in_first, in_edge, in_slot, W, V, fof, bof):
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
    # x); the minimum and its via are updated without branches (see _util.select_lt)
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
            V[t] = _select_lt(c, old, y, np.int64(V[t]))
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
            V[t] = _select_lt(c, old, y, np.int64(V[t]))


@njit(cache=True, nogil=True)
def _customize_nodes(nodes, weight, f_first, b_first, head, bin_first, binp, fin_first, finp,
                     in_first, in_edge, in_slot, W, V, fof, bof):
    for i in range(len(nodes)):
        _customize_node(nodes[i], weight, f_first, b_first, head, bin_first, binp, fin_first,
                        finp, in_first, in_edge, in_slot, W, V, fof, bof)


@njit(cache=True, nogil=True)
def _customize(weight, f_first, b_first, head, bin_first, binp, fin_first, finp, in_first,
               in_edge, in_slot, W, V, fof, bof):
    """Every node in increasing rank, on this thread."""
    for x in range(len(f_first) - 1):
        _customize_node(x, weight, f_first, b_first, head, bin_first, binp, fin_first, finp,
                        in_first, in_edge, in_slot, W, V, fof, bof)


@njit(cache=True, nogil=True, parallel=True)
def _customize_parallel(weight, f_first, b_first, head, bin_first, binp, fin_first, finp,
                        in_first, in_edge, in_slot, W, V, fof2, bof2, part_first, part_nodes,
                        top_nodes):
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


# ------------------------------------------------------------------------ partial customization
@njit(cache=True, nogil=True, inline="always")
def _tail_of(first, a):
    """The node whose arc list ``first[x]:first[x+1]`` holds arc ``a``."""
    lo = np.int64(0)
    hi = np.int64(len(first) - 1)
    while hi - lo > 1:  # first[lo] <= a < first[hi]
        mid = (lo + hi) >> 1
        if first[mid] <= a:
            lo = mid
        else:
            hi = mid
    return lo


@njit(cache=True, nogil=True, inline="always")
def _first_y_at_least(rows, lo, hi, y):
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
def _check(T, cand, x, W, V, arc_queued, node_queued, c, heap, size, me, part_of, out,
           n_out):
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
                    size = _push(heap, size, c)
            else:
                out[n_out] = c
                n_out += 1
    return size, n_out


@njit(cache=True, nogil=True)
def _partial_run(me, part_of, heap, size, weight, f_first, b_first, head, bin_first, binp,
                 fin_first, finp, in_first, in_edge, in_slot, lo, W, V, arc_queued,
                 node_queued, mark, batch, new_w, new_v, loc, chmask, written, out, budget):
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
        x, size = _pop(heap, size)
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
                        r = _find_in(head, r, r1, head[np.uint64(q)])
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
                        r = _find_in(head, r, r1, head[np.uint64(q)])
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
def _seed(changed, edge_slot, f_first, b_first, part_of, arc_queued, node_queued, heaps,
          sizes):
    """Queue the arcs of the changed edges; their tails go on the heap of their part (row
    ``part + 1`` of ``heaps``; row 0: the top)."""
    kf = f_first[len(f_first) - 1]
    for i in range(len(changed)):
        s = edge_slot[changed[i]]
        if s < 0 or arc_queued[s]:
            continue
        arc_queued[s] = 1
        x = _tail_of(f_first, s) if s < kf else _tail_of(b_first, s)
        if node_queued[x] == 0:
            node_queued[x] = 1
            r = part_of[x] + 1
            sizes[r] = _push(heaps[r], sizes[r], x)


@njit(cache=True, nogil=True)
def _partial(weight, changed, edge_slot, f_first, b_first, head, bin_first, binp, fin_first,
             finp, in_first, in_edge, in_slot, lo, W, V, arc_queued, node_queued, heaps,
             marks, batch, new_w, new_v, loc, chmask, written, outs, part_of, written_at,
             budget):
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
def _partial_parallel(weight, changed, edge_slot, f_first, b_first, head, bin_first, binp,
                      fin_first, finp, in_first, in_edge, in_slot, lo, W, V, arc_queued,
                      node_queued, heaps, marks, batch, new_w, new_v, loc, chmask, written,
                      outs, part_of, written_at, budget):
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
                size = _push(top, size, c)
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


@njit(cache=True, nogil=True)
def _copy_arcs(arcs, W, V, W2, V2):
    """Bring a metric's arrays (``W2``, ``V2``) up to date on ``arcs`` only."""
    for i in range(len(arcs)):
        a = arcs[i]
        W2[a] = W[a]
        V2[a] = V[a]
