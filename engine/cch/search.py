"""Elimination-tree searches over a customized CCH, and path unpacking.

A forward search from the seeds only ever climbs upward arcs (``up`` weights) and a backward
search from the targets climbs them against their direction (``down`` weights); in a CCH the
nodes a search can reach are exactly the ancestors of its start nodes in the elimination tree.
So no priority queue over distances is needed: the union of the ancestor chains is visited in
increasing rank, each node once, and its arcs relaxed. Several start nodes (a point mid-edge
gives two, a set of candidates many) merge their chains through a tiny heap of chain fronts.

Workspace arrays (one set per thread, see :class:`engine.cch.router.CCHWorkspace`) stay clean
between queries: each query resets exactly the nodes it visited.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from engine.cch._util import find_arc as _find_arc
from engine.cch._util import key_pop as _hpop
from engine.cch._util import key_push as _hpush

F_CHAIN = np.uint8(1)
B_CHAIN = np.uint8(2)


@njit(cache=True, nogil=True, inline="always")
def _seed(nodes, cost, rank, dist, pred, flag, bit, heap, size):
    """Start a chain at every entry (a node keeps its cheapest entry, ``pred = -2 - i``)."""
    for i in range(len(nodes)):
        x = rank[nodes[i]]
        if flag[x] == 0:
            size = _hpush(heap, size, x)
        flag[x] |= bit
        if cost[i] < dist[x]:
            dist[x] = cost[i]
            pred[x] = -2 - i
    return size


@njit(cache=True, nogil=True)
def _reset(visited, n_visited, fdist, bdist, fpred, bpred, flag):
    for k in range(n_visited):
        x = visited[k]
        fdist[x] = np.inf
        bdist[x] = np.inf
        fpred[x] = -1
        bpred[x] = -1
        flag[x] = 0


@njit(cache=True, nogil=True)
def _query(up_first, up_head, parent, rank, up, down, seeds, seed_cost, targets, target_cost,
           fdist, bdist, fpred, bpred, flag, heap, visited):
    """Interleaved forward/backward elimination-tree search; returns ``(best, meet,
    n_visited)``. A node's arcs are relaxed only while its distance is below the best
    meeting cost found so far (nothing through it can do better)."""
    size = _seed(seeds, seed_cost, rank, fdist, fpred, flag, F_CHAIN, heap, 0)
    size = _seed(targets, target_cost, rank, bdist, bpred, flag, B_CHAIN, heap, size)
    best = np.inf
    meet = -1
    n_visited = 0
    while size > 0:
        x, size = _hpop(heap, size)
        visited[n_visited] = x
        n_visited += 1
        f = flag[x]
        p = parent[x]
        if p >= 0:
            if flag[p] == 0:
                size = _hpush(heap, size, p)
            flag[p] |= f
        df = fdist[x]
        db = bdist[x]
        if df + db < best:
            best = df + db
            meet = x
        if df < best:
            for a in range(up_first[x], up_first[x + 1]):
                y = up_head[a]
                nd = df + up[a]
                if nd < fdist[y]:
                    fdist[y] = nd
                    fpred[y] = a
        if db < best:
            for a in range(up_first[x], up_first[x + 1]):
                y = up_head[a]
                nd = db + down[a]
                if nd < bdist[y]:
                    bdist[y] = nd
                    bpred[y] = a
    return best, meet, n_visited


@njit(cache=True, nogil=True)
def _unpack(up_first, up_head, arc_tail, via_up, via_down, a, d, stack, out, n_out):
    """Append the input edges of arc ``a`` in direction ``d`` (0 up, 1 down) to ``out``;
    returns the new count, which keeps counting past ``len(out)`` without writing.

    ``stack`` needs ``n + 1`` entries: the pending arcs on it have strictly decreasing
    tails (each shortcut's halves hang below its middle node).
    """
    stack[0] = 2 * a + d
    top = 1
    cap = len(out)
    while top > 0:
        top -= 1
        s = stack[top]
        a = s >> 1
        d = s & 1
        via = via_up[a] if d == 0 else via_down[a]
        if via <= -2:
            if n_out < cap:
                out[n_out] = -2 - via
            n_out += 1
            continue
        x = arc_tail[a]
        z = up_head[a]
        wx = _find_arc(up_first, up_head, via, x)
        wz = _find_arc(up_first, up_head, via, z)
        if d == 0:  # x -> w (down (w,x)), then w -> z (up (w,z)): push in reverse
            stack[top] = 2 * wz
            stack[top + 1] = 2 * wx + 1
        else:  # z -> w (down (w,z)), then w -> x (up (w,x))
            stack[top] = 2 * wx
            stack[top + 1] = 2 * wz + 1
        top += 2
    return n_out


@njit(cache=True, nogil=True)
def _path(up_first, up_head, arc_tail, via_up, via_down, meet, fpred, bpred, stack, out):
    """Input edges seed -> meet -> target into ``out`` (see :func:`_unpack`); returns
    ``(count, seed entry, target entry)``."""
    # forward half: the arcs meet -> seed, kept on the end of the stack array, unpacked in
    # travel order (seed -> meet); the unpacking stack needs far less than its length
    n_f = 0
    x = meet
    end = len(stack)
    while fpred[x] >= 0:
        a = fpred[x]
        n_f += 1
        stack[end - n_f] = a
        x = arc_tail[a]
    seed_i = -2 - fpred[x]
    n_out = 0
    for k in range(n_f):
        a = stack[end - n_f + k]
        n_out = _unpack(up_first, up_head, arc_tail, via_up, via_down, a, 0, stack[:end - n_f],
                        out, n_out)
    x = meet
    while bpred[x] >= 0:
        a = bpred[x]
        n_out = _unpack(up_first, up_head, arc_tail, via_up, via_down, a, 1, stack, out,
                        n_out)
        x = arc_tail[a]
    target_i = -2 - bpred[x]
    return n_out, seed_i, target_i


@njit(cache=True, nogil=True)
def _check_entries(nodes, cost, n):
    """Index of the first entry with a node out of range or a cost not >= 0 (NaN), or -1."""
    for i in range(len(nodes)):
        if nodes[i] < 0 or nodes[i] >= n or not cost[i] >= 0:
            return i
    return -1


@njit(cache=True, nogil=True)
def _query_path(up_first, arcs2, pr2, W, V, seeds, seed_cost, targets, target_cost, D,
                ints, flag, stack, out):
    """Validated point-to-point query with its path. Returns ``(status, cost, n_edges,
    seed entry, target entry)``; status 0 ok, 1 / 2 a bad seed / target entry (index in the
    entry field), 3 ``out`` too small for the path (``n_edges`` is the size needed).

    Few arguments on purpose: each array passed costs ~0.1 µs of dispatch, a third of a
    small city's query. Rows: ``arcs2`` = up_head, arc_tail; ``pr2`` = parent, rank; ``W``
    = up, down weights; ``V`` = their vias; ``D`` = forward, backward distances; ``ints`` =
    forward, backward predecessor arcs, heap, visited list (``ints``).
    """
    n = pr2.shape[1]
    bad = _check_entries(seeds, seed_cost, n)
    if bad >= 0:
        return 1, 0.0, 0, bad, -1
    bad = _check_entries(targets, target_cost, n)
    if bad >= 0:
        return 2, 0.0, 0, -1, bad
    up_head, arc_tail = arcs2[0], arcs2[1]
    fpred, bpred = ints[0], ints[1]
    best, meet, n_visited = _query(up_first, up_head, pr2[0], pr2[1], W[0], W[1], seeds,
                                   seed_cost, targets, target_cost, D[0], D[1], fpred, bpred,
                                   flag, ints[2], ints[3])
    status = 0
    n_out, seed_i, target_i = 0, -1, -1
    if meet >= 0:
        n_out, seed_i, target_i = _path(up_first, up_head, arc_tail, V[0], V[1], meet, fpred,
                                        bpred, stack, out)
        if n_out > len(out):
            status = 3
    _reset(ints[3], n_visited, D[0], D[1], fpred, bpred, flag)
    return status, best, n_out, seed_i, target_i


@njit(cache=True, nogil=True)
def _query_many(up_first, up_head, parent, rank, up, down, seed_first, seeds, seed_cost,
                target_first, targets, target_cost, fdist, bdist, fpred, bpred, flag, heap,
                visited, out):
    """Distances only, for a batch of point-to-point queries (one call, no per-query
    overhead): query ``q`` goes from seed group ``q`` to target group ``q``."""
    for q in range(len(seed_first) - 1):
        a, b = seed_first[q], seed_first[q + 1]
        c, d = target_first[q], target_first[q + 1]
        best, _, n_visited = _query(up_first, up_head, parent, rank, up, down, seeds[a:b],
                                    seed_cost[a:b], targets[c:d], target_cost[c:d], fdist,
                                    bdist, fpred, bpred, flag, heap, visited)
        out[q] = best
        _reset(visited, n_visited, fdist, bdist, fpred, bpred, flag)


@njit(cache=True, nogil=True, inline="always")
def _walk(up_first, up_head, parent, rank, w, nodes, cost, dist, pred, flag, heap, visited,
          n_visited):
    """Full (unpruned) upward search from ``nodes``; appends the visited chain to
    ``visited`` in increasing rank and returns the new count. ``dist`` is final on it."""
    size = _seed(nodes, cost, rank, dist, pred, flag, F_CHAIN, heap, 0)
    while size > 0:
        x, size = _hpop(heap, size)
        visited[n_visited] = x
        n_visited += 1
        p = parent[x]
        if p >= 0 and flag[p] == 0:
            flag[p] = F_CHAIN
            size = _hpush(heap, size, p)
        d = dist[x]
        if d < np.inf:
            for a in range(up_first[x], up_first[x + 1]):
                y = up_head[a]
                nd = d + w[a]
                if nd < dist[y]:
                    dist[y] = nd
    return n_visited


@njit(cache=True, nogil=True)
def _many_to_many(up_first, up_head, parent, rank, up, down, source_first, sources,
                  source_cost, target_first, targets, target_cost,
                  fdist, bdist, fpred, bpred, flag, heap, visited, bucket_head, out):
    """Bucket-based matrix: one backward walk per target group leaves ``(group, cost)`` in a
    bucket at every node of its chain; one forward walk per source group scans the buckets
    of its own chain."""
    n_s = len(source_first) - 1
    n_t = len(target_first) - 1
    out[:, :] = np.inf
    cap = 64
    ent_group = np.empty(cap, dtype=np.int32)
    ent_cost = np.empty(cap, dtype=np.float64)
    ent_next = np.empty(cap, dtype=np.int32)
    n_ent = 0
    n_touched = 0
    bucket_nodes = np.empty(64, dtype=np.int32)
    for j in range(n_t):
        a, b = target_first[j], target_first[j + 1]
        n_visited = _walk(up_first, up_head, parent, rank, down, targets[a:b],
                          target_cost[a:b], bdist, bpred, flag, heap, visited, 0)
        for k in range(n_visited):
            x = visited[k]
            d = bdist[x]
            if d == np.inf:
                continue
            if n_ent == cap:
                cap *= 2
                g2 = np.empty(cap, dtype=np.int32)
                c2 = np.empty(cap, dtype=np.float64)
                x2 = np.empty(cap, dtype=np.int32)
                g2[:n_ent] = ent_group[:n_ent]
                c2[:n_ent] = ent_cost[:n_ent]
                x2[:n_ent] = ent_next[:n_ent]
                ent_group, ent_cost, ent_next = g2, c2, x2
            if bucket_head[x] < 0:
                if n_touched == len(bucket_nodes):
                    t2 = np.empty(2 * n_touched, dtype=np.int32)
                    t2[:n_touched] = bucket_nodes[:n_touched]
                    bucket_nodes = t2
                bucket_nodes[n_touched] = x
                n_touched += 1
            ent_group[n_ent] = j
            ent_cost[n_ent] = d
            ent_next[n_ent] = bucket_head[x]
            bucket_head[x] = n_ent
            n_ent += 1
        _reset(visited, n_visited, fdist, bdist, fpred, bpred, flag)
    for i in range(n_s):
        a, b = source_first[i], source_first[i + 1]
        n_visited = _walk(up_first, up_head, parent, rank, up, sources[a:b], source_cost[a:b],
                          fdist, fpred, flag, heap, visited, 0)
        row = out[i]
        for k in range(n_visited):
            x = visited[k]
            d = fdist[x]
            if d == np.inf:
                continue
            e = bucket_head[x]
            while e >= 0:
                c = d + ent_cost[e]
                g = ent_group[e]
                if c < row[g]:
                    row[g] = c
                e = ent_next[e]
        _reset(visited, n_visited, fdist, bdist, fpred, bpred, flag)
    for k in range(n_touched):
        bucket_head[bucket_nodes[k]] = -1
