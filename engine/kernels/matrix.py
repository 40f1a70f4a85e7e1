"""One-to-many and many-to-many costs between groups of candidate nodes.

A "point" (an incident, a vehicle) snaps to up to two candidate nodes, the
ends of the edge it lies on, each with an offset. Groups are CSR-like:
candidates of group ``g`` are ``nodes[first[g]:first[g+1]]`` with costs
``cost[first[g]:first[g+1]]``; a group's cost is the min over its candidates.
"""

import threading

import numpy as np
from numba import njit, prange

from .checks import check_graph, check_groups, check_nodes, check_workspace
from .heap import heap_pop
from .workspace import _init_seeds, _mark_targets, _relax, _reset, _row, _unmark_targets

PARALLEL_LOCK = threading.Lock()


@njit(cache=True, nogil=True)
def _one_to_many(
    first_out, head, weight, seeds, seed_cost, target_first, targets, target_cost, ws, out
):
    _reset(ws)
    dist = ws[0]
    heap_node, heap_key, heap_pos = ws[2], ws[3], ws[4]
    mark = ws[7]
    n_groups = len(target_first) - 1
    group = np.empty(len(targets), dtype=np.int32)
    n_open = 0  # non-empty groups whose cost is still inf
    for g in range(n_groups):
        out[g] = np.inf
        group[target_first[g] : target_first[g + 1]] = g
        if target_first[g + 1] > target_first[g]:
            n_open += 1
    size = _init_seeds(ws, seeds, seed_cost)
    next_entry, remaining = _mark_targets(ws, targets)
    bound = np.inf  # max over groups of out[g], once none is inf
    while size > 0 and remaining > 0:
        u, d, size = heap_pop(heap_node, heap_key, heap_pos, size)
        if d >= bound:
            break  # no group can still improve: later candidates cost >= d
        i = mark[u]
        if i >= 0:
            stale = False
            while i >= 0:
                g = group[i]
                c = d + target_cost[i]
                if c < out[g]:
                    if out[g] == np.inf:
                        n_open -= 1
                    stale |= out[g] >= bound  # the maximum may have dropped
                    out[g] = c
                i = next_entry[i]
            remaining -= 1
            if stale and n_open == 0:
                bound = out.max()
        for e in range(first_out[u], first_out[u + 1]):
            nd = d + weight[e]
            v = head[e]
            if nd < dist[v]:
                size = _relax(ws, size, v, nd, nd, e)
    _unmark_targets(ws, targets)


def one_to_many(
    first_out, head, weight, seeds, seed_cost, target_first, targets, target_cost, ws, out
):
    """Cost from the seeds to every target group, in one Dijkstra sweep.

    Why one sweep: it settles nodes in cost order, so all targets are answered
    by a single search that stops when every candidate node is settled, or when
    the queue key reaches the largest group cost found (nothing can improve).

    Parameters
    ----------
    first_out, head, weight, seeds, seed_cost, ws
        As in :func:`~engine.kernels.dijkstra.dijkstra`.
    target_first : int32[p+1]
        Group offsets into ``targets``.
    targets, target_cost : int32[j], float64[j]
        Candidate nodes of all groups and their arrival offsets (``>= 0``).
    out : float64[p]
        Filled in place with each group's cost (``inf`` if unreachable or empty),
        so repeated calls allocate nothing of size p.

    Returns
    -------
    float64[p]
        ``out``.
    """
    first_out, head, weight, n = check_graph(first_out, head, weight)
    seeds, seed_cost = check_nodes(seeds, seed_cost, n, "seeds", "seed_cost")
    target_first, targets, target_cost = check_groups(
        target_first, targets, target_cost, n, "target"
    )
    w = check_workspace(ws, n)
    if not (isinstance(out, np.ndarray) and out.dtype == np.float64 and out.flags.c_contiguous):
        raise ValueError("out must be a C-contiguous float64 numpy array")
    if out.shape != (len(target_first) - 1,):
        raise ValueError(f"out must have shape ({len(target_first) - 1},), got {out.shape}")
    _one_to_many(
        first_out, head, weight, seeds, seed_cost, target_first, targets, target_cost, w, out
    )
    return out


#: Fewer source groups than this run sequentially in the calling thread.
SEQUENTIAL_BELOW = 4


@njit(cache=True, nogil=True, parallel=True)
def _many_to_many(
    first_out, head, weight, source_first, source_nodes, source_cost,
    target_first, targets, target_cost, pool, out,
):  # fmt: skip
    # One chunk per workspace row (= per thread); sources are dealt round-robin
    # so that expensive neighbouring sources spread over the threads.
    n_chunks = pool[0].shape[0]
    n_sources = len(source_first) - 1
    for c in prange(n_chunks):
        ws = _row(pool, c)
        for s in range(c, n_sources, n_chunks):
            a, b = source_first[s], source_first[s + 1]
            _one_to_many(
                first_out, head, weight, source_nodes[a:b], source_cost[a:b],
                target_first, targets, target_cost, ws, out[s],
            )  # fmt: skip


def many_to_many(
    first_out, head, weight, source_first, source_nodes, source_cost,
    target_first, targets, target_cost, ws,
):  # fmt: skip
    """Cost matrix between source groups and target groups.

    Runs :func:`one_to_many` once per source group, spread over the numba
    threads (``prange`` over one chunk per thread). Each thread needs its own
    search state; those per-thread workspaces are allocated on the first call
    and cached on ``ws`` (see :meth:`Workspace.pool`), so later calls only
    allocate the result.

    Parameters
    ----------
    first_out, head, weight
        As in :func:`~engine.kernels.dijkstra.dijkstra`.
    source_first, source_nodes, source_cost : int32[s+1], int32[k], float64[k]
        Source groups (candidate nodes and their start offsets).
    target_first, targets, target_cost : int32[p+1], int32[j], float64[j]
        Target groups.
    ws : Workspace
        Owned by the calling thread; only its cached pool is used.

    Returns
    -------
    float64[s, p]
        ``out[a, b]`` is the cost from source group ``a`` to target group ``b``.

    Notes
    -----
    Measured on 2 cores (20k-node grid, 50x50 groups): 71 ms with ``prange``
    against 143 ms for a sequential loop over :func:`one_to_many`, so the
    parallel version is kept. numba's default "workqueue" threading layer
    aborts the process if two Python threads enter parallel code at once, so
    calls are serialised by a module lock; each call already uses every core.
    """
    first_out, head, weight, n = check_graph(first_out, head, weight)
    source_first, source_nodes, source_cost = check_groups(
        source_first, source_nodes, source_cost, n, "source"
    )
    target_first, targets, target_cost = check_groups(
        target_first, targets, target_cost, n, "target"
    )
    arrays = check_workspace(ws, n)
    out = np.empty((len(source_first) - 1, len(target_first) - 1))
    if len(source_first) - 1 < SEQUENTIAL_BELOW:
        # waking the thread pool costs more than a few searches (measured: one row 1.8 ms
        # parallel vs 0.46 ms sequential on Monaco); the caller's workspace is enough
        for s in range(len(source_first) - 1):
            a, b = source_first[s], source_first[s + 1]
            _one_to_many(first_out, head, weight, source_nodes[a:b], source_cost[a:b],
                         target_first, targets, target_cost, arrays, out[s])
        return out
    with PARALLEL_LOCK:
        _many_to_many(
            first_out, head, weight, source_first, source_nodes, source_cost,
            target_first, targets, target_cost, ws.pool().arrays(), out,
        )  # fmt: skip
    return out
