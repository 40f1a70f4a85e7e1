"""Queries over a customized CCH: elimination-tree searches, path unpacking, matrices.

A forward search from the seeds only ever climbs upward arcs (``up`` weights) and a backward
search from the targets climbs them against their direction (``down`` weights); in a CCH the
nodes a search can reach are exactly the ancestors of its start nodes in the elimination tree.
So no priority queue over distances is needed: the union of the ancestor chains is visited in
increasing rank, each node once, and its arcs relaxed. Several start nodes (a point mid-edge
gives two, a set of candidates many) merge their chains through a tiny heap of chain fronts.

The public functions (:func:`shortest_path`, :func:`distances`, :func:`many_to_many`) check
their entries, run a private kernel over the topology's arrays, a metric and a
:class:`CCHWorkspace` (one per thread; it stays clean between queries: each query resets
exactly the nodes it visited), and name what the kernel returns (:class:`QueryStatus`).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

import numpy as np
from numba import njit

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
from engine.cch.metric import CCHMetric
from engine.cch.topology import CCHTopology
from engine.kernels.checks import check_groups, float_array, index_array

#: chain flags of a node: reached from the seeds (forward) / from the targets (backward)
F_CHAIN = np.uint8(1)
B_CHAIN = np.uint8(2)


class QueryStatus(IntEnum):
    """What the point-to-point kernel says besides the cost."""

    #: done: the cost and the path (empty when nothing is reachable) are valid
    OK = 0
    #: a seed entry is bad (node out of range, or a cost < 0 or NaN): its index is returned
    BAD_SEED = 1
    #: a target entry is bad: its index is returned
    BAD_TARGET = 2
    #: the path does not fit in the workspace's ``out``: its length is returned
    OUT_TOO_SMALL = 3


# numba freezes module globals as constants: the kernel returns these plain ints (boxing an
# IntEnum member would cost more than a small city's whole query)
_OK = int(QueryStatus.OK)
_BAD_SEED = int(QueryStatus.BAD_SEED)
_BAD_TARGET = int(QueryStatus.BAD_TARGET)
_OUT_TOO_SMALL = int(QueryStatus.OUT_TOO_SMALL)

#: rows of :attr:`CCHWorkspace.dist`
FORWARD, BACKWARD = 0, 1
#: rows of :attr:`CCHWorkspace.ints`
PRED_F, PRED_B, HEAP, VISITED = 0, 1, 2, 3


class CCHWorkspace:
    """Per-thread query state over ``n`` nodes; every query leaves it clean.

    The distance rows are packed in ``dist`` and the int32 rows in ``ints`` because the
    point-to-point kernel takes them as two arguments (each array passed costs ~0.1 µs of
    dispatch, a third of a small city's query); the attributes named after each row are
    views of them, for the other kernels.
    """

    __slots__ = ("bdist", "bpred", "bucket_head", "dist", "fdist", "flag", "fpred", "heap",
                 "ints", "out", "stack", "visited")

    def __init__(self, n: int) -> None:
        #: float64[2, n], all inf: rows FORWARD / BACKWARD distances (``fdist``, ``bdist``)
        self.dist: Float64Array = np.full((2, n), np.inf)
        #: int32[4, n+1], all -1: rows PRED_F / PRED_B (the arc a node was reached by,
        #: ``-2 - i`` at entry ``i``), HEAP (chain fronts), VISITED (nodes to reset)
        self.ints: Int32Array = np.full((4, n + 1), -1, dtype=np.int32)
        self.fdist, self.bdist = self.dist[FORWARD], self.dist[BACKWARD]
        self.fpred, self.bpred = self.ints[PRED_F], self.ints[PRED_B]
        self.heap, self.visited = self.ints[HEAP], self.ints[VISITED]
        #: uint8[n], all 0: F_CHAIN / B_CHAIN flags
        self.flag: UInt8Array = np.zeros(n, dtype=np.uint8)
        #: int32[n], all -1: first bucket entry of a node (matrices)
        self.bucket_head: Int32Array = np.full(n, -1, dtype=np.int32)
        #: int64[2n+4]: path unpacking stack
        self.stack: Int64Array = np.zeros(2 * n + 4, dtype=np.int64)
        #: int32: receives path edges (replaced by a larger one when a path does not fit)
        self.out: Int32Array = np.zeros(max(1024, n), dtype=np.int32)


@njit(cache=True, nogil=True, inline="always")
def _seed(nodes: Int32Array, cost: Float64Array, rank: Int32Array, dist: Float64Array,
          pred: Int32Array, flag: UInt8Array, bit: Any, heap: Int32Array, size: int) -> int:
    """Start a chain at every entry (a node keeps its cheapest entry, ``pred = -2 - i``)."""
    for i in range(len(nodes)):
        x = rank[nodes[i]]
        if flag[x] == 0:
            size = key_push(heap, size, x)
        flag[x] |= bit
        if cost[i] < dist[x]:
            dist[x] = cost[i]
            pred[x] = -2 - i
    return size


@njit(cache=True, nogil=True)
def _reset(visited: Int32Array, n_visited: int, fdist: Float64Array, bdist: Float64Array,
           fpred: Int32Array, bpred: Int32Array, flag: UInt8Array) -> None:
    """Clean the workspace rows at the visited nodes."""
    for k in range(n_visited):
        x = visited[k]
        fdist[x] = np.inf
        bdist[x] = np.inf
        fpred[x] = -1
        bpred[x] = -1
        flag[x] = 0


@njit(cache=True, nogil=True)
def _query(f_first: UInt32Array, b_first: UInt32Array, head: UInt32Array, parent: Int32Array,
           rank: Int32Array, W: Float64Array, seeds: Int32Array, seed_cost: Float64Array,
           targets: Int32Array, target_cost: Float64Array, fdist: Float64Array,
           bdist: Float64Array, fpred: Int32Array, bpred: Int32Array, flag: UInt8Array,
           heap: Int32Array, visited: Int32Array) -> tuple[float, int, int]:
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
        x, size = key_pop(heap, size)
        visited[n_visited] = x
        n_visited += 1
        f = flag[x]
        p = parent[x]
        if p >= 0:
            if flag[p] == 0:
                size = key_push(heap, size, p)
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


@njit(cache=True, nogil=True)
def _unpack(f_first: UInt32Array, b_first: UInt32Array, head: UInt32Array, V: Int32Array,
            a: Any, x: Any, stack: Int64Array, out: Int32Array, n_out: int) -> int:
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
            first = find_in(head, b_first[y], b_first[y + 1], x)
            second = find_in(head, f_first[y], f_first[y + 1], z)
        else:  # z -> y (backward (y, z)), then y -> x (forward (y, x))
            first = find_in(head, b_first[y], b_first[y + 1], z)
            second = find_in(head, f_first[y], f_first[y + 1], x)
        stack[top] = (second << 32) | y  # pushed in reverse: first on top
        stack[top + 1] = (first << 32) | y
        top += 2
    return n_out


@njit(cache=True, nogil=True)
def _path(f_first: UInt32Array, b_first: UInt32Array, head: UInt32Array, V: Int32Array,
          meet: Any, fpred: Int32Array, bpred: Int32Array, stack: Int64Array,
          out: Int32Array) -> tuple[int, int, int]:
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
        x = tail_of(f_first, a)
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
        t = tail_of(b_first, a)
        n_out = _unpack(f_first, b_first, head, V, a, t, stack, out, n_out)
        x = t
    target_i = -2 - bpred[x]
    return n_out, seed_i, target_i


@njit(cache=True, nogil=True)
def _check_entries(nodes: Int32Array, cost: Float64Array, n: int) -> int:
    """Index of the first entry with a node out of range or a cost not >= 0 (NaN), or -1."""
    for i in range(len(nodes)):
        if nodes[i] < 0 or nodes[i] >= n or not cost[i] >= 0:
            return i
    return -1


@njit(cache=True, nogil=True)
def _query_path(firsts: UInt32Array, head: UInt32Array, parent_rank: Int32Array,
                W: Float64Array, V: Int32Array, seeds: Int32Array, seed_cost: Float64Array,
                targets: Int32Array, target_cost: Float64Array, dist: Float64Array,
                ints: Int32Array, flag: UInt8Array, stack: Int64Array, out: Int32Array
                ) -> tuple[int, float, int, int, int]:
    """Validated point-to-point query with its path. Returns ``(status, cost, n_edges,
    seed entry, target entry)``, status a :class:`QueryStatus`: for ``BAD_SEED`` /
    ``BAD_TARGET`` the bad entry's index is in the seed / target entry field, for
    ``OUT_TOO_SMALL`` ``n_edges`` is the size needed.

    Few arguments on purpose (each array passed costs ~0.1 µs of dispatch, a third of a
    small city's query): ``firsts`` / ``parent_rank`` are the topology's packed rows,
    ``dist`` / ``ints`` the workspace's.
    """
    f_first, b_first = firsts[0], firsts[1]
    parent, rank = parent_rank[0], parent_rank[1]
    fdist, bdist = dist[FORWARD], dist[BACKWARD]
    fpred, bpred, heap, visited = ints[PRED_F], ints[PRED_B], ints[HEAP], ints[VISITED]
    n = len(rank)
    bad = _check_entries(seeds, seed_cost, n)
    if bad >= 0:
        return _BAD_SEED, 0.0, 0, bad, -1
    bad = _check_entries(targets, target_cost, n)
    if bad >= 0:
        return _BAD_TARGET, 0.0, 0, -1, bad
    best, meet, n_visited = _query(f_first, b_first, head, parent, rank, W, seeds, seed_cost,
                                   targets, target_cost, fdist, bdist, fpred, bpred, flag,
                                   heap, visited)
    status = _OK
    n_out, seed_i, target_i = 0, -1, -1
    if meet >= 0:
        n_out, seed_i, target_i = _path(f_first, b_first, head, V, meet, fpred, bpred, stack,
                                        out)
        if n_out > len(out):
            status = _OUT_TOO_SMALL
    _reset(visited, n_visited, fdist, bdist, fpred, bpred, flag)
    return status, best, n_out, seed_i, target_i


@njit(cache=True, nogil=True)
def _query_many(f_first: UInt32Array, b_first: UInt32Array, head: UInt32Array,
                parent: Int32Array, rank: Int32Array, W: Float64Array, seed_first: Int32Array,
                seeds: Int32Array, seed_cost: Float64Array, target_first: Int32Array,
                targets: Int32Array, target_cost: Float64Array, fdist: Float64Array,
                bdist: Float64Array, fpred: Int32Array, bpred: Int32Array, flag: UInt8Array,
                heap: Int32Array, visited: Int32Array, out: Float64Array) -> None:
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
def upward_walk(first: UInt32Array, head: UInt32Array, parent: Int32Array, rank: Int32Array,
                W: Float64Array, nodes: Int32Array, cost: Float64Array, dist: Float64Array,
                pred: Int32Array, prev: Int32Array, flag: UInt8Array, bit: Any,
                heap: Int32Array, visited: Int32Array, n_visited: int, record: bool) -> int:
    """Full (unpruned) upward search from ``nodes`` over the arcs ``first[x]:first[x+1]``
    (forward arcs: a forward search, backward arcs: a backward one); appends the visited
    chain to ``visited`` in increasing rank and returns the new count. ``dist`` is final on
    it. A node joins the chain once its ``flag`` has ``bit`` (two walks may share ``flag``
    with different bits); entries get ``pred = -2 - i``; with ``record``, every improved
    node also gets ``pred`` (the arc it was reached by) and ``prev`` (the node it was
    reached from). The matrices and the via-node alternatives both walk with it."""
    size = 0
    for i in range(len(nodes)):
        x = rank[nodes[i]]
        if flag[x] & bit == 0:
            flag[x] |= bit
            size = key_push(heap, size, x)
        if cost[i] < dist[x]:
            dist[x] = cost[i]
            pred[x] = -2 - i
    while size > 0:
        x, size = key_pop(heap, size)
        visited[n_visited] = x
        n_visited += 1
        p = parent[x]
        if p >= 0 and flag[p] & bit == 0:
            flag[p] |= bit
            size = key_push(heap, size, p)
        d = dist[x]
        if d < np.inf:
            for a in range(first[x], first[x + 1]):
                y = head[a]
                nd = d + W[a]
                if nd < dist[y]:
                    dist[y] = nd
                    if record:
                        pred[y] = a
                        prev[y] = x
    return n_visited


@njit(cache=True, nogil=True)
def _many_to_many(f_first: UInt32Array, b_first: UInt32Array, head: UInt32Array,
                  parent: Int32Array, rank: Int32Array, W: Float64Array,
                  source_first: Int32Array, sources: Int32Array, source_cost: Float64Array,
                  target_first: Int32Array, targets: Int32Array, target_cost: Float64Array,
                  fdist: Float64Array, bdist: Float64Array, fpred: Int32Array,
                  bpred: Int32Array, flag: UInt8Array, heap: Int32Array, visited: Int32Array,
                  bucket_head: Int32Array, out: Float64Array) -> None:
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
        n_visited = upward_walk(b_first, head, parent, rank, W, targets[a:b],
                                target_cost[a:b], bdist, bpred, bpred, flag, F_CHAIN, heap,
                                visited, 0, False)
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
        n_visited = upward_walk(f_first, head, parent, rank, W, sources[a:b],
                                source_cost[a:b], fdist, fpred, fpred, flag, F_CHAIN, heap,
                                visited, 0, False)
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


# ------------------------------------------------------------------------ public wrappers
def entries(nodes: Any, cost: Any, name: str) -> tuple[Int32Array, Float64Array]:
    """Seeds or targets as int32 / float64 1-D arrays of one length (``name``: ``seeds`` or
    ``targets``, for the messages). Their values are checked by the query kernel, in the
    same pass that reads them."""
    if type(nodes) is not np.ndarray or nodes.dtype != np.int32 or nodes.ndim != 1:
        nodes = index_array(nodes, name)
    if type(cost) is not np.ndarray or cost.dtype != np.float64 or cost.ndim != 1:
        cost = float_array(cost, f"{name[:-1]}_cost")
    if len(nodes) != len(cost):
        raise ValueError(f"{name[:-1]}_cost has {len(cost)} entries but {name} has "
                         f"{len(nodes)}")
    return nodes, cost


def shortest_path(topology: CCHTopology, metric: CCHMetric, seeds: Any, seed_cost: Any,
                  targets: Any, target_cost: Any, ws: CCHWorkspace
                  ) -> tuple[float, Int32Array, int, int]:
    """Cheapest route from any seed to any target: ``(cost, input edge ids of the path,
    seed index, target index)``, the cost being ``seed_cost[i] + d(seeds[i], targets[j]) +
    target_cost[j]``; ``(inf, [], -1, -1)`` when no target is reachable. ``ValueError`` for
    a node out of range or a cost not ``>= 0`` (``inf`` allowed)."""
    seeds, seed_cost = entries(seeds, seed_cost, "seeds")
    targets, target_cost = entries(targets, target_cost, "targets")
    while True:
        status, cost, n_out, si, ti = _query_path(
            topology.firsts, topology.head, topology.parent_rank, metric.W, metric.V, seeds,
            seed_cost, targets, target_cost, ws.dist, ws.ints, ws.flag, ws.stack, ws.out)
        if status != _OUT_TOO_SMALL:
            break
        ws.out = np.empty(2 * n_out, dtype=np.int32)  # a path longer than n: rare
    if status != _OK:
        if status == _BAD_SEED:
            _bad_entry("seed", seeds, seed_cost, si, topology.n_nodes)
        _bad_entry("target", targets, target_cost, ti, topology.n_nodes)
    if ti < 0:
        return np.inf, np.zeros(0, dtype=np.int32), -1, -1
    return cost, ws.out[:n_out].copy(), si, ti


def _bad_entry(name: str, nodes: Int32Array, cost: Float64Array, i: int, n: int) -> None:
    if not 0 <= nodes[i] < n:
        raise ValueError(f"{name}s must be node ids in [0, {n}), got {nodes[i]} at index {i}")
    raise ValueError(f"{name}_cost must be >= 0 (inf allowed), got {cost[i]} at index {i}")


def distances(topology: CCHTopology, metric: CCHMetric, seed_first: Any, seeds: Any,
              seed_cost: Any, target_first: Any, targets: Any, target_cost: Any,
              ws: CCHWorkspace, *, trusted: bool = False) -> Float64Array:
    """A batch of point-to-point costs (no paths) in one call: query ``q`` from seed group
    ``q`` to target group ``q`` (groups as in :func:`engine.kernels.many_to_many`).
    ``trusted``: the caller built the groups itself (int32 firsts and nodes within range,
    float64 costs >= 0), so they are not checked again (the router's duration queries)."""
    t, n = topology, topology.n_nodes
    if trusted:
        sf, sn, sc, tf, tn, tc = (seed_first, seeds, seed_cost, target_first, targets,
                                  target_cost)
    else:
        sf, sn, sc = check_groups(seed_first, seeds, seed_cost, n, "seed")
        tf, tn, tc = check_groups(target_first, targets, target_cost, n, "target")
    if len(sf) != len(tf):
        raise ValueError("seed_first and target_first must describe as many queries")
    out = np.empty(len(sf) - 1)
    _query_many(t.f_first, t.b_first, t.head, t.parent, t.rank, metric.W, sf, sn, sc, tf, tn,
                tc, ws.fdist, ws.bdist, ws.fpred, ws.bpred, ws.flag, ws.heap, ws.visited, out)
    return out


def many_to_many(topology: CCHTopology, metric: CCHMetric, source_first: Any,
                 source_nodes: Any, source_cost: Any, target_first: Any, targets: Any,
                 target_cost: Any, ws: CCHWorkspace, *, trusted: bool = False
                 ) -> Float64Array:
    """Cost matrix between source groups and target groups (groups as in
    :func:`engine.kernels.many_to_many`), bucket-based: one upward search per group.
    ``trusted``: as :func:`distances`."""
    t, n = topology, topology.n_nodes
    if trusted:
        sf, sn, sc, tf, tn, tc = (source_first, source_nodes, source_cost, target_first,
                                  targets, target_cost)
    else:
        sf, sn, sc = check_groups(source_first, source_nodes, source_cost, n, "source")
        tf, tn, tc = check_groups(target_first, targets, target_cost, n, "target")
    out = np.empty((len(sf) - 1, len(tf) - 1))
    _many_to_many(t.f_first, t.b_first, t.head, t.parent, t.rank, metric.W, sf, sn, sc, tf,
                  tn, tc, ws.fdist, ws.bdist, ws.fpred, ws.bpred, ws.flag, ws.heap,
                  ws.visited, ws.bucket_head, out)
    return out
