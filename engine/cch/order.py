"""Nested-dissection node order (METIS) over the undirected simple graph of a road graph.

A CCH is only as good as its order: the fill-in, hence every later cost (customization, query),
grows with the separators the order puts on top. METIS' multilevel nested dissection
(``METIS_NodeND`` through :func:`pymetis.nested_dissection`) gives small separators fast.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from engine.cch._util import Int32Array


@njit(cache=True, nogil=True)
def _undirected_simple(n: int, tail: Int32Array, head: Int32Array
                       ) -> tuple[Int32Array, Int32Array]:
    """Symmetric adjacency without self-loops or duplicates, as CSR ``(xadj, adjncy)``."""
    m = len(tail)
    deg = np.zeros(n + 1, dtype=np.int64)
    for e in range(m):
        u, v = tail[e], head[e]
        if u != v:
            deg[u + 1] += 1
            deg[v + 1] += 1
    for u in range(n):
        deg[u + 1] += deg[u]
    fill = deg[:-1].copy()
    adj = np.empty(deg[n], dtype=np.int32)
    for e in range(m):
        u, v = tail[e], head[e]
        if u != v:
            adj[fill[u]] = v
            fill[u] += 1
            adj[fill[v]] = u
            fill[v] += 1
    # dedupe each list in place with a marker, then compact
    mark = np.full(n, -1, dtype=np.int32)
    xadj = np.empty(n + 1, dtype=np.int32)
    pos = 0
    for u in range(n):
        xadj[u] = pos
        for k in range(deg[u], deg[u + 1]):
            v = adj[k]
            if mark[v] != u:
                mark[v] = u
                adj[pos] = v
                pos += 1
    xadj[n] = pos
    return xadj, adj[:pos].copy()


def undirected_simple_graph(n: int, tail: np.ndarray, head: np.ndarray
                            ) -> tuple[Int32Array, Int32Array]:
    """``(xadj, adjncy)`` int32: the graph with every edge in both directions, once, no loops."""
    tail = np.ascontiguousarray(tail, dtype=np.int32)
    head = np.ascontiguousarray(head, dtype=np.int32)
    if len(tail) != len(head):
        raise ValueError("tail and head must have the same length")
    if len(tail) and (min(tail.min(), head.min()) < 0 or max(tail.max(), head.max()) >= n):
        raise ValueError(f"edge ends must be node ids in [0, {n})")
    return _undirected_simple(int(n), tail, head)


def nested_dissection_order(n: int, tail: np.ndarray, head: np.ndarray, *, seed: int = 0,
                            adjacency: tuple[Int32Array, Int32Array] | None = None
                            ) -> Int32Array:
    """The contraction order: ``order[r]`` is the node of rank ``r`` (int32[n]).

    ``pymetis.nested_dissection`` returns ``(perm, iperm)`` as ``METIS_NodeND`` defines them:
    row ``i`` of the permuted matrix is row ``perm[i]`` of the original, so ``perm`` maps
    rank -> node (separators last, i.e. highest) and ``iperm`` node -> rank. METIS is
    deterministic for a given ``seed``. ``adjacency``: the result of
    :func:`undirected_simple_graph` when the caller has it already.
    """
    import pymetis

    if n == 0:
        return np.zeros(0, dtype=np.int32)
    xadj, adjncy = adjacency if adjacency is not None else undirected_simple_graph(n, tail, head)
    if len(adjncy) == 0:
        return np.arange(n, dtype=np.int32)
    opts = pymetis.Options(seed=seed)
    if hasattr(pymetis, "CSRAdjacency"):  # pymetis >= 2025.2 (xadj=/adjncy= deprecated)
        graph = pymetis.CSRAdjacency(adj_starts=xadj, adjacent=adjncy)
        perm, iperm = pymetis.nested_dissection(graph, options=opts)
    else:
        perm, iperm = pymetis.nested_dissection(xadj=xadj, adjncy=adjncy, options=opts)
    order = np.asarray(perm, dtype=np.int32)
    rank = np.asarray(iperm, dtype=np.int32)
    check = np.empty(n, dtype=np.int32)
    check[order] = np.arange(n, dtype=np.int32)
    if not np.array_equal(check, rank):
        raise RuntimeError("METIS returned an inconsistent permutation")
    return order
