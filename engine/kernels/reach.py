"""Reachability: which nodes a start node reaches (or is reached from) over finite weights."""

import numpy as np
from numba import njit

from .checks import index_array


@njit(cache=True, nogil=True)
def _reach(first, nbr, arc, weight, start, seen):
    """Breadth-first search from ``start`` over ``nbr[first[u]:first[u+1]]``, crossing only
    arcs ``arc[k]`` with a finite weight; marks ``seen`` and returns how many it reached."""
    n = len(first) - 1
    queue = np.empty(n, dtype=np.int32)
    queue[0] = start
    seen[start] = True
    lo, hi = 0, 1
    while lo < hi:
        u = queue[lo]
        lo += 1
        for k in range(first[u], first[u + 1]):
            v = nbr[k]
            if not seen[v] and weight[arc[k]] < np.inf:
                seen[v] = True
                queue[hi] = v
                hi += 1
    return hi


def reachable(first, nbr, arc, weight, start):
    """Boolean mask of the nodes reachable from ``start`` over arcs of finite weight.

    Forward: ``reachable(first_out, head, arange(m), weight, s)``. Backward (the nodes that
    can reach ``s``): ``reachable(first_in, tail[in_edge], in_edge, weight, s)``.
    """
    first = index_array(first, "first")
    nbr = index_array(nbr, "nbr")
    arc = index_array(arc, "arc")
    weight = np.ascontiguousarray(weight, dtype=np.float64)
    n = len(first) - 1
    if n < 0 or first[0] != 0 or first[-1] != len(nbr) or len(arc) != len(nbr):
        raise ValueError("first / nbr / arc do not describe one CSR adjacency")
    if len(arc) and (arc.min() < 0 or arc.max() >= len(weight)):
        raise ValueError(f"arc ids must be in [0, {len(weight)})")
    start = int(start)
    if not 0 <= start < n:
        raise ValueError(f"start must be a node in [0, {n}), got {start}")
    seen = np.zeros(n, dtype=np.bool_)
    _reach(first, nbr, arc, weight, start, seen)
    return seen
