"""Reusable per-thread search state, and the njit helpers every search shares.

Why workspaces: a road graph has millions of nodes but a typical emergency
route touches a few thousand. Allocating and filling ``dist`` etc. per query
would make every query O(n). Instead a :class:`Workspace` is allocated once per
graph and per thread; each kernel records the nodes it touches and, on its next
call, resets only those entries. The cost of a query is therefore proportional
to the part of the graph it explores.

Kernels receive the workspace as the tuple returned by :meth:`Workspace.arrays`
(numba cannot take arbitrary Python objects), in this fixed order::

    (dist, pred_edge, heap_node, heap_key, heap_pos, touched, n_touched, target_mark)
"""

import numba
import numpy as np
from numba import njit

from .heap import heap_push_or_decrease


class Workspace:
    """Preallocated arrays for one search over a graph of ``n`` nodes.

    Not thread-safe: a query overwrites the arrays, so every thread (and each
    direction of a bidirectional search) needs its own workspace. The kernels
    release the GIL, so threads holding separate workspaces run in parallel.

    After a query the arrays keep its result: ``dist[v]`` is the tentative (for
    settled nodes, final) cost of ``v`` and ``pred_edge[v]`` the edge it was
    reached by (``-1`` for seeds and unreached nodes), until the next query.

    Attributes
    ----------
    dist : float64[n]
        Tentative distance, ``inf`` when untouched.
    pred_edge : int32[n]
        Edge id by which the node was reached, ``-1`` if none.
    heap_node, heap_key, heap_pos : int32[n], float64[n], int32[n]
        Indexed binary heap (see :mod:`engine.kernels.heap`).
    touched : int32[n]
        Nodes whose ``dist`` left ``inf`` during the last query.
    n_touched : int64[1]
        Number of valid entries in ``touched``.
    target_mark : int32[n]
        Per-node head of the target list of the running query (``-1`` elsewhere);
        gives an O(1) "is this a target?" test. Cleared by each kernel before it returns.
    """

    _ARRAYS = (
        "dist",
        "heap_key",
        "heap_node",
        "heap_pos",
        "n_touched",
        "pred_edge",
        "target_mark",
        "touched",
    )
    __slots__ = (*_ARRAYS, "_pool")

    def __init__(self, n: int):
        n = int(n)
        if n < 0:
            raise ValueError(f"workspace size must be >= 0, got {n}")
        self.dist = np.full(n, np.inf)
        self.pred_edge = np.full(n, -1, dtype=np.int32)
        self.heap_node = np.zeros(n, dtype=np.int32)
        self.heap_key = np.zeros(n, dtype=np.float64)
        self.heap_pos = np.full(n, -1, dtype=np.int32)
        self.touched = np.zeros(n, dtype=np.int32)
        self.n_touched = np.zeros(1, dtype=np.int64)
        self.target_mark = np.full(n, -1, dtype=np.int32)
        self._pool: WorkspacePool | None = None

    @classmethod
    def for_graph(cls, n: int) -> "Workspace":
        """Allocate a workspace for a graph with ``n`` nodes (``len(first_out) - 1``)."""
        return cls(n)

    @property
    def n(self) -> int:
        return len(self.dist)

    def arrays(self) -> tuple:
        """The arrays in the order the kernels expect."""
        return (
            self.dist,
            self.pred_edge,
            self.heap_node,
            self.heap_key,
            self.heap_pos,
            self.touched,
            self.n_touched,
            self.target_mark,
        )

    def pool(self) -> "WorkspacePool":
        """One workspace per numba thread, allocated on first use and kept.

        Used by the parallel many-to-many kernel. It hangs off this workspace so
        that it inherits its one-per-thread ownership.
        """
        k = numba.get_num_threads()
        if self._pool is None or self._pool.dist.shape != (k, self.n):
            self._pool = WorkspacePool(k, self.n)
        return self._pool


class WorkspacePool:
    """``k`` workspaces stored as rows of 2-D arrays, for ``prange`` kernels.

    Row ``c`` of each array is a C-contiguous 1-D view, so the sequential
    kernels run unchanged on ``_row(pool_arrays, c)`` inside a parallel loop.
    """

    __slots__ = Workspace._ARRAYS

    def __init__(self, k: int, n: int):
        self.dist = np.full((k, n), np.inf)
        self.pred_edge = np.full((k, n), -1, dtype=np.int32)
        self.heap_node = np.zeros((k, n), dtype=np.int32)
        self.heap_key = np.zeros((k, n), dtype=np.float64)
        self.heap_pos = np.full((k, n), -1, dtype=np.int32)
        self.touched = np.zeros((k, n), dtype=np.int32)
        self.n_touched = np.zeros((k, 1), dtype=np.int64)
        self.target_mark = np.full((k, n), -1, dtype=np.int32)

    arrays = Workspace.arrays


@njit(cache=True, nogil=True)
def _row(pool, c):
    """Workspace tuple of row ``c`` of a pool tuple (inside njit code)."""
    return (
        pool[0][c],
        pool[1][c],
        pool[2][c],
        pool[3][c],
        pool[4][c],
        pool[5][c],
        pool[6][c],
        pool[7][c],
    )


@njit(cache=True, nogil=True)
def _reset(ws):
    """Undo the previous query: O(nodes it touched), not O(n)."""
    dist, pred_edge, _, _, heap_pos, touched, n_touched, _ = ws
    for i in range(n_touched[0]):
        v = touched[i]
        dist[v] = np.inf
        pred_edge[v] = -1
        heap_pos[v] = -1
    n_touched[0] = 0


@njit(cache=True, nogil=True, inline="always")
def _relax(ws, size, v, cost, key, edge):
    """Set ``dist[v] = cost`` (a strict improvement) and queue ``v`` with ``key``.

    ``key`` differs from ``cost`` only in A*. Returns the new heap size. A node
    popped earlier is simply queued again, which keeps A* correct even if float
    rounding makes the heuristic very slightly inconsistent.
    """
    dist, pred_edge, heap_node, heap_key, heap_pos, touched, n_touched, _ = ws
    if dist[v] == np.inf:
        touched[n_touched[0]] = v
        n_touched[0] += 1
    dist[v] = cost
    pred_edge[v] = edge
    return heap_push_or_decrease(heap_node, heap_key, heap_pos, size, v, key)


@njit(cache=True, nogil=True)
def _init_seeds(ws, seeds, seed_cost):
    """Queue every seed at its own initial cost (duplicates keep the minimum)."""
    dist = ws[0]
    size = 0
    for i in range(len(seeds)):
        v = seeds[i]
        if seed_cost[i] < dist[v]:
            size = _relax(ws, size, v, seed_cost[i], seed_cost[i], -1)
    return size


@njit(cache=True, nogil=True)
def _mark_targets(ws, targets):
    """Link the target entries per node through ``target_mark`` and ``next_entry``.

    Returns ``(next_entry, n_distinct)``: entries of node ``v`` are
    ``i = target_mark[v]``, then ``next_entry[i]`` ... until ``-1``. The O(j)
    array is fine on the hot path; only O(n) allocations are banned.
    """
    mark = ws[7]
    next_entry = np.empty(len(targets), dtype=np.int32)
    n_distinct = 0
    for i in range(len(targets)):
        t = targets[i]
        if mark[t] < 0:
            n_distinct += 1
        next_entry[i] = mark[t]
        mark[t] = i
    return next_entry, n_distinct


@njit(cache=True, nogil=True)
def _unmark_targets(ws, targets):
    mark = ws[7]
    for i in range(len(targets)):
        mark[targets[i]] = -1
