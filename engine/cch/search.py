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

from engine.cch._util import key_pop as _hpop
from engine.cch._util import key_push as _hpush
from engine.cch.contract import find_in as _find_in

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
def _query(f_first, b_first, head, parent, rank, W, seeds, seed_cost, targets, target_cost,
           fdist, bdist, fpred, bpred, flag, heap, visited):
    """Interleaved forward/backward elimination-tree search; returns ``(best, meet,
    n_visited)``. The forward search relaxes forward arcs, the backward search backward
    arcs. A node's arcs are relaxed only while its distance is below the best meeting cost
    found so far (nothing through it can do better)."""
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
            for a in range(f_first[x], f_first[x + 1]):
                y = head[a]
                nd = df + W[a]
                if nd < fdist[y]:
                    fdist[y] = nd
                    fpred[y] = a
        if db < best:
            for a in range(b_first[x], b_first[x + 1]):
                y = head[a]
                nd = db + W[a]
                if nd < bdist[y]:
                    bdist[y] = nd
                    bpred[y] = a
    return best, meet, n_visited


@njit(cache=True, nogil=True, inline="always")
def _tail(first, a):
    """The node whose arc list ``first[x]:first[x+1]`` holds arc ``a``."""
    lo = np.int64(0)
    hi = np.int64(len(first) - 1)
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if first[mid] <= a:
            lo = mid
        else:
            hi = mid
    return lo


@njit(cache=True, nogil=True)
def _unpack(f_first, b_first, head, V, a, x, stack, out, n_out):
    """Append the input edges of arc ``a`` (tail ``x``) in its direction to ``out``;
    returns the new count, which keeps counting past ``len(out)`` without writing.

    ``stack`` (int64) needs ``n + 1`` entries: the pending arcs on it have strictly
    decreasing tails (each shortcut's halves hang below its middle node); an entry is
    ``arc << 32 | tail``.
    """
    kf = np.int64(f_first[len(f_first) - 1])
    stack[0] = (np.int64(a) << 32) | np.int64(x)
    top = 1
    cap = len(out)
    while top > 0:
        top -= 1
        s = stack[top]
        a = s >> 32
        x = s & 0xFFFFFFFF
        via = np.int64(V[a])
        if via <= -2:
            if n_out < cap:
                out[n_out] = -2 - via
            n_out += 1
            continue
        y = via
        z = np.int64(head[a])
        if a < kf:  # x -> y (backward (y, x)), then y -> z (forward (y, z))
            first = _find_in(head, b_first[y], b_first[y + 1], x)
            second = _find_in(head, f_first[y], f_first[y + 1], z)
        else:  # z -> y (backward (y, z)), then y -> x (forward (y, x))
            first = _find_in(head, b_first[y], b_first[y + 1], z)
            second = _find_in(head, f_first[y], f_first[y + 1], x)
        stack[top] = (second << 32) | y  # pushed in reverse: first on top
        stack[top + 1] = (first << 32) | y
        top += 2
    return n_out


@njit(cache=True, nogil=True)
def _path(f_first, b_first, head, V, meet, fpred, bpred, stack, out):
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
        x = _tail(f_first, a)
        stack[end - n_f] = (np.int64(a) << 32) | x
    seed_i = -2 - fpred[x]
    n_out = 0
    for k in range(n_f):
        s = stack[end - n_f + k]
        n_out = _unpack(f_first, b_first, head, V, s >> 32, s & 0xFFFFFFFF,
                        stack[:end - n_f], out, n_out)
    x = meet
    while bpred[x] >= 0:
        a = bpred[x]
        t = _tail(b_first, a)
        n_out = _unpack(f_first, b_first, head, V, a, t, stack, out, n_out)
        x = t
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
def _query_path(firsts, head, pr2, W, V, seeds, seed_cost, targets, target_cost, D, ints, flag,
                stack, out):
    """Validated point-to-point query with its path. Returns ``(status, cost, n_edges,
    seed entry, target entry)``; status 0 ok, 1 / 2 a bad seed / target entry (index in the
    entry field), 3 ``out`` too small for the path (``n_edges`` is the size needed).

    Few arguments on purpose: each array passed costs ~0.1 µs of dispatch, a third of a
    small city's query. Rows: ``firsts`` = f_first, b_first; ``pr2`` = parent, rank; ``D``
    = forward, backward distances; ``ints`` = forward, backward predecessor arcs, heap,
    visited list.
    """
    n = pr2.shape[1]
    bad = _check_entries(seeds, seed_cost, n)
    if bad >= 0:
        return 1, 0.0, 0, bad, -1
    bad = _check_entries(targets, target_cost, n)
    if bad >= 0:
        return 2, 0.0, 0, -1, bad
    f_first, b_first = firsts[0], firsts[1]
    fpred, bpred = ints[0], ints[1]
    best, meet, n_visited = _query(f_first, b_first, head, pr2[0], pr2[1], W, seeds,
                                   seed_cost, targets, target_cost, D[0], D[1], fpred, bpred,
                                   flag, ints[2], ints[3])
    status = 0
    n_out, seed_i, target_i = 0, -1, -1
    if meet >= 0:
        n_out, seed_i, target_i = _path(f_first, b_first, head, V, meet, fpred, bpred, stack,
                                        out)
        if n_out > len(out):
            status = 3
    _reset(ints[3], n_visited, D[0], D[1], fpred, bpred, flag)
    return status, best, n_out, seed_i, target_i


@njit(cache=True, nogil=True)
def _query_many(f_first, b_first, head, parent, rank, W, seed_first, seeds, seed_cost,
                target_first, targets, target_cost, fdist, bdist, fpred, bpred, flag, heap,
                visited, out):
    """Distances only, for a batch of point-to-point queries (one call, no per-query
    overhead): query ``q`` goes from seed group ``q`` to target group ``q``."""
    for q in range(len(seed_first) - 1):
        a, b = seed_first[q], seed_first[q + 1]
        c, d = target_first[q], target_first[q + 1]
        best, _, n_visited = _query(f_first, b_first, head, parent, rank, W, seeds[a:b],
                                    seed_cost[a:b], targets[c:d], target_cost[c:d], fdist,
                                    bdist, fpred, bpred, flag, heap, visited)
        out[q] = best
        _reset(visited, n_visited, fdist, bdist, fpred, bpred, flag)


@njit(cache=True, nogil=True, inline="always")
def _walk(first, head, parent, rank, W, nodes, cost, dist, pred, flag, heap, visited,
          n_visited):
    """Full (unpruned) upward search from ``nodes`` over the arcs ``first[x]:first[x+1]``
    (forward arcs: a forward search, backward arcs: a backward one); appends the visited
    chain to ``visited`` in increasing rank and returns the new count. ``dist`` is final on
    it."""
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
            for a in range(first[x], first[x + 1]):
                y = head[a]
                nd = d + W[a]
                if nd < dist[y]:
                    dist[y] = nd
    return n_visited


@njit(cache=True, nogil=True)
def _many_to_many(f_first, b_first, head, parent, rank, W, source_first, sources,
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
        n_visited = _walk(b_first, head, parent, rank, W, targets[a:b],
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
        n_visited = _walk(f_first, head, parent, rank, W, sources[a:b], source_cost[a:b],
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
