"""Customization: the metric-dependent weights of every upward arc.

For an arc ``a = (x, z)`` (``x < z`` in rank), ``up[a]`` is the cost ``x -> z`` and
``down[a]`` the cost ``z -> x`` of the cheapest path between them through lower-ranked nodes
only (``inf``: none). ``via_up[a]`` / ``via_down[a]`` say where that value came from, so a path
unpacks in time proportional to its length:

* ``>= 0``: a shortcut through the middle node ``w`` (``x -> w -> z``: arc ``(w, x)`` downward
  then ``(w, z)`` upward);
* ``<= -2``: the input edge ``-2 - via`` (the cheapest of the parallel edges);
* ``-1``: nothing (the value is ``inf``).

Ties keep the first candidate in a fixed order (input edges by id, then middle nodes by
increasing rank), so basic and partial customization give bit-identical results.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from engine.cch._util import key_pop as _pop
from engine.cch._util import key_push as _push

VIA_NONE = -1


@njit(cache=True, nogil=True)
def _init_input(weight, edge_slot, up, down, via_up, via_down):
    """Arcs start from their cheapest input edge in each direction (``inf`` if none)."""
    up[:] = np.inf
    down[:] = np.inf
    via_up[:] = VIA_NONE
    via_down[:] = VIA_NONE
    for e in range(len(edge_slot)):
        s = edge_slot[e]
        if s < 0:
            continue
        a = s >> 1
        w = weight[e]
        if s & 1 == 0:
            if w < up[a]:
                up[a] = w
                via_up[a] = -2 - e
        elif w < down[a]:
            down[a] = w
            via_down[a] = -2 - e


@njit(cache=True, nogil=True, inline="always")
def _customize_node(x, up_first, up_head, arc_tail, down_first, down_arc, up, down,
                    via_up, via_down, arc_of):
    """Final weights of every arc ``(x, z)`` from its lower triangles (``x -> y -> z``)."""
    a0, a1 = up_first[x], up_first[x + 1]
    if a0 == a1:
        return
    for a in range(a0, a1):
        arc_of[up_head[a]] = a
    for k in range(down_first[x], down_first[x + 1]):
        yx = down_arc[k]
        y = arc_tail[yx]
        d_xy = down[yx]  # x -> y
        u_yx = up[yx]  # y -> x
        if d_xy == np.inf and u_yx == np.inf:
            continue
        for yz in range(yx + 1, up_first[y + 1]):
            xz = arc_of[up_head[yz]]
            c = d_xy + up[yz]
            if c < up[xz]:
                up[xz] = c
                via_up[xz] = y
            c = down[yz] + u_yx
            if c < down[xz]:
                down[xz] = c
                via_down[xz] = y


@njit(cache=True, nogil=True)
def _customize_range(lo, hi, up_first, up_head, arc_tail, down_first, down_arc, up, down,
                     via_up, via_down, arc_of):
    for x in range(lo, hi):
        _customize_node(x, up_first, up_head, arc_tail, down_first, down_arc, up, down,
                        via_up, via_down, arc_of)


@njit(cache=True, nogil=True)
def _customize(weight, edge_slot, up_first, up_head, arc_tail, down_first, down_arc,
               up, down, via_up, via_down, arc_of):
    _init_input(weight, edge_slot, up, down, via_up, via_down)
    _customize_range(0, len(up_first) - 1, up_first, up_head, arc_tail, down_first, down_arc,
                     up, down, via_up, via_down, arc_of)


@njit(cache=True, nogil=True)
def _customize_nodes(nodes, up_first, up_head, arc_tail, down_first, down_arc, up, down,
                     via_up, via_down, arc_of):
    for i in range(len(nodes)):
        _customize_node(nodes[i], up_first, up_head, arc_tail, down_first, down_arc, up, down,
                        via_up, via_down, arc_of)


@njit(cache=True, nogil=True, parallel=True)
def _customize_parallel(weight, edge_slot, up_first, up_head, arc_tail, down_first, down_arc,
                        up, down, via_up, via_down, arc_of2d, part_first, part_nodes,
                        top_nodes):
    """Independent subtrees of the elimination tree in parallel, then the top sequentially.

    Part ``i`` is ``part_nodes[part_first[i]:part_first[i+1]]``: whole subtrees, in increasing
    rank; ``top_nodes`` is every other node, in increasing rank. A node's arcs depend only on
    the arcs of its descendants, so parts never race and the top comes last.
    """
    _init_input(weight, edge_slot, up, down, via_up, via_down)
    n_parts = len(part_first) - 1
    for i in prange(n_parts):
        _customize_nodes(part_nodes[part_first[i]:part_first[i + 1]], up_first, up_head,
                         arc_tail, down_first, down_arc, up, down, via_up, via_down,
                         arc_of2d[i])
    _customize_nodes(top_nodes, up_first, up_head, arc_tail, down_first, down_arc, up, down,
                     via_up, via_down, arc_of2d[0])


@njit(cache=True, nogil=True)
def _node_work(up_first, down_first, down_arc, arc_tail):
    """Triangles enumerated when customizing each node, plus its arcs."""
    n = len(up_first) - 1
    work = np.zeros(n, dtype=np.float64)
    for x in range(n):
        c = up_first[x + 1] - up_first[x]
        for k in range(down_first[x], down_first[x + 1]):
            yx = down_arc[k]
            c += up_first[arc_tail[yx] + 1] - yx
        work[x] = c
    return work


# ------------------------------------------------------------------------ partial customization
@njit(cache=True, nogil=True, inline="always")
def _input_values(a, weight, edge_slot, arc_edge_first, arc_edges):
    nu, nd = np.inf, np.inf
    vu, vd = VIA_NONE, VIA_NONE
    for k in range(arc_edge_first[a], arc_edge_first[a + 1]):
        e = arc_edges[k]
        w = weight[e]
        if edge_slot[e] & 1 == 0:
            if w < nu:
                nu = w
                vu = -2 - e
        elif w < nd:
            nd = w
            vd = -2 - e
    return nu, nd, vu, vd


@njit(cache=True, nogil=True)
def _partial(weight, changed, edge_slot, arc_edge_first, arc_edges, up_first, up_head,
             arc_tail, down_first, down_arc, down_tail, up, down, via_up, via_down, queued, heap,
             arc_of, batch, new_up, new_down, new_vu, new_vd, written):
    """Recompute the arcs whose input edges changed, and every arc whose value may depend on
    an arc that changed, in increasing arc id (= increasing tail rank, a topological order
    of the triangle dependencies). Returns ``(arcs recomputed, arcs changed)``; the ids of the
    recomputed arcs (every arc written) are left in ``written[:arcs recomputed]``.

    The queued arcs of one node are recomputed together: arc by arc (the lower triangles of
    ``(x, z)`` are the common entries of the sorted lists ``down(x)`` and ``down(z)``: one
    merge) when they are few, else in one sweep over the node's lower triangles as the full
    customization does. ``arc_of`` (int32[n], all -1) is left as found.
    """
    size = 0
    for i in range(len(changed)):
        s = edge_slot[changed[i]]
        if s >= 0 and queued[s >> 1] == 0:
            queued[s >> 1] = 1
            size = _push(heap, size, s >> 1)
    n_done = 0
    n_changed = 0
    while size > 0:
        a, size = _pop(heap, size)
        x = arc_tail[a]
        k = 0
        batch[k] = a
        k += 1
        while size > 0 and heap[0] < up_first[x + 1]:
            b, size = _pop(heap, size)
            batch[k] = b
            k += 1
        for i in range(k):
            written[n_done + i] = batch[i]
        n_done += k
        for i in range(k):
            b = batch[i]
            queued[b] = 0
            new_up[i], new_down[i], new_vu[i], new_vd[i] = _input_values(
                b, weight, edge_slot, arc_edge_first, arc_edges)
        d0, d1 = down_first[x], down_first[x + 1]
        sweep = 0
        for j in range(d0, d1):
            yx = down_arc[j]
            sweep += up_first[arc_tail[yx] + 1] - yx
        if 4 * sweep < k * (d1 - d0):  # measured on NY: the merge wins unless far cheaper
            for i in range(k):
                arc_of[up_head[batch[i]]] = i
            for j in range(d0, d1):
                yx = down_arc[j]
                y = arc_tail[yx]
                d_xy = down[yx]
                u_yx = up[yx]
                if d_xy == np.inf and u_yx == np.inf:
                    continue
                for yz in range(yx + 1, up_first[y + 1]):
                    i = arc_of[up_head[yz]]
                    if i < 0:
                        continue
                    c = d_xy + up[yz]
                    if c < new_up[i]:
                        new_up[i] = c
                        new_vu[i] = y
                    c = down[yz] + u_yx
                    if c < new_down[i]:
                        new_down[i] = c
                        new_vd[i] = y
            for i in range(k):
                arc_of[up_head[batch[i]]] = -1
        else:
            for i in range(k):
                z = up_head[batch[i]]
                nu, nd, vu, vd = new_up[i], new_down[i], new_vu[i], new_vd[i]
                p = d0
                q = down_first[z]
                q_end = down_first[z + 1]
                while p < d1 and q < q_end:
                    yp = down_tail[p]
                    yq = down_tail[q]
                    if yp < yq:
                        p += 1
                    elif yp > yq:
                        q += 1
                    else:
                        yx = down_arc[p]
                        yz = down_arc[q]
                        c = down[yx] + up[yz]
                        if c < nu:
                            nu = c
                            vu = yp
                        c = down[yz] + up[yx]
                        if c < nd:
                            nd = c
                            vd = yp
                        p += 1
                        q += 1
                new_up[i], new_down[i], new_vu[i], new_vd[i] = nu, nd, vu, vd
        # write back; cpos lists the positions (in x's sorted arc list) of the arcs that
        # changed, in increasing order (the batch is in increasing arc id)
        x0 = up_first[x]
        n_c = 0
        for i in range(k):
            a = batch[i]
            via_up[a] = new_vu[i]
            via_down[a] = new_vd[i]
            if new_up[i] == up[a] and new_down[i] == down[a]:
                continue
            up[a] = new_up[i]
            down[a] = new_down[i]
            batch[n_c] = a - x0
            n_c += 1
        if n_c == 0:
            continue
        n_changed += n_c
        # An arc (x, z) is a lower arc of the arc b joining z and any other upper neighbour
        # z2 of x, through the triangle z - x - z2. Visit each pair (zi, zj), i < j, with
        # (x, zi) or (x, zj) changed, once: b = (zi, zj) needs recomputing only if the
        # triangle now reaches b's value (improves it, or ties with a later middle node) or
        # if b's value came from it (via == x). Otherwise b's minimum and via stay.
        deg = up_first[x + 1] - x0
        c = 0  # next changed position
        for i in range(deg):
            is_changed = c < n_c and batch[c] == i
            if is_changed:
                c += 1
            elif c == n_c:
                break  # no changed arc at or after i
            ai = x0 + i
            zi = up_head[ai]
            d_xi = down[ai]  # zi -> x
            u_xi = up[ai]  # x -> zi
            p = up_first[zi]
            p_end = up_first[zi + 1]
            if is_changed:
                jj = i + 1
            else:
                jj = batch[c]
            cc = c
            while jj < deg:
                aj = x0 + jj
                zj = up_head[aj]
                if is_changed:  # every j > i: walk zi's list forward
                    while up_head[p] < zj:
                        p += 1
                else:  # only the changed j: binary search the rest of zi's list
                    lo, hi = p, p_end
                    while lo < hi:
                        mid = (lo + hi) >> 1
                        if up_head[mid] < zj:
                            lo = mid + 1
                        else:
                            hi = mid
                    p = lo
                b = p
                if queued[b] == 0:
                    cu = d_xi + up[aj]  # zi -> x -> zj
                    cd = down[aj] + u_xi  # zj -> x -> zi
                    vbu = via_up[b]
                    vbd = via_down[b]
                    if (vbu == x or vbd == x or cu < up[b] or cd < down[b]
                            or (cu == up[b] and vbu > x) or (cd == down[b] and vbd > x)):
                        queued[b] = 1
                        size = _push(heap, size, b)
                if is_changed:
                    jj += 1
                else:
                    cc += 1
                    if cc == n_c:
                        break
                    jj = batch[cc]
    return n_done, n_changed


@njit(cache=True, nogil=True)
def _copy_arcs(arcs, W, V, W2, V2):
    """Bring a metric's arrays (``W2``, ``V2``) up to date on ``arcs`` only."""
    for i in range(len(arcs)):
        a = arcs[i]
        W2[0, a] = W[0, a]
        W2[1, a] = W[1, a]
        V2[0, a] = V[0, a]
        V2[1, a] = V[1, a]
