"""Split the elimination tree into independent subtrees for parallel customization.

A node's arcs are customized from the arcs of its descendants only, so disjoint subtrees can
be customized on different threads; the nodes above them (the top separators, which hold a
large share of the triangles under nested dissection) are done afterwards on one thread.
"""

from __future__ import annotations

import heapq

import numpy as np
from numba import njit

from .contract import node_work


@njit(cache=True, nogil=True)
def _subtree_sums(parent, work):
    """Work of every subtree (children have lower ranks than their parent)."""
    sub = work.copy()
    for x in range(len(parent)):
        p = parent[x]
        if p >= 0:
            sub[p] += sub[x]
    return sub


@njit(cache=True, nogil=True)
def _roots_below_top(parent, is_top):
    """For every non-top node, the root of its subtree once the top is removed (-1 on top)."""
    n = len(parent)
    root_of = np.full(n, -1, dtype=np.int64)
    for x in range(n - 1, -1, -1):  # parents first
        if is_top[x]:
            continue
        p = parent[x]
        root_of[x] = x if p < 0 or is_top[p] else root_of[p]
    return root_of


def partition(arrays: dict[str, np.ndarray], parts: int, *, max_splits: int = 100_000
              ) -> dict[str, np.ndarray]:
    """``part_first`` / ``part_nodes`` (the nodes of each part, increasing rank) and
    ``top_nodes`` (the rest, increasing rank), minimising ``max(part work) + top work``.

    The heaviest subtree is split (its root moves to the top) again and again; after each
    split that creates several subtrees, the subtrees are spread over ``parts`` groups
    (heaviest first onto the lightest) and the modelled time is kept if it is the best.
    """
    parent = arrays["parent"]
    n = len(parent)
    none = {"part_first": np.zeros(1, np.int32), "part_nodes": np.zeros(0, np.int32),
            "top_nodes": np.arange(n, dtype=np.int32)}
    if parts < 2 or n < 2:
        return none
    work = node_work(arrays["bin_first"], arrays["binp"], arrays["fin_first"], arrays["finp"],
                     arrays["f_first"], arrays["b_first"])
    sub = _subtree_sums(parent, work)
    has_parent = parent >= 0
    kids_order = np.argsort(parent[has_parent], kind="stable")
    kids = np.flatnonzero(has_parent)[kids_order]
    kid_first = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(parent[has_parent], minlength=n), out=kid_first[1:])
    roots = np.flatnonzero(~has_parent)
    total = float(work.sum())
    frontier = [(-float(sub[r]), int(r)) for r in roots]
    heapq.heapify(frontier)
    top_work = 0.0
    top: list[int] = []
    best_cost, best_top = np.inf, 0
    branched = True
    for _ in range(max_splits):
        if branched and len(frontier) >= 2:
            cost = _lpt_makespan([-w for w, _ in frontier], parts) + top_work
            if cost < best_cost:
                best_cost, best_top = cost, len(top)
        if not frontier or -frontier[0][0] < (total - top_work) / (4 * parts):
            break  # subtrees already small: splitting further only grows the top
        _, r = heapq.heappop(frontier)
        top.append(r)
        top_work += float(work[r])
        branched = kid_first[r + 1] - kid_first[r] >= 2
        for c in kids[kid_first[r]:kid_first[r + 1]]:
            heapq.heappush(frontier, (-float(sub[c]), int(c)))
    if best_cost >= total:  # no gain over one thread
        return none
    is_top = np.zeros(n, dtype=bool)
    is_top[top[:best_top]] = True
    # subtree roots = non-top nodes whose parent is top (or none)
    root_of = _roots_below_top(parent, is_top)
    sub_roots = np.flatnonzero(root_of == np.arange(n))
    group = _lpt_groups(sub[sub_roots], parts)
    group_of = np.full(n, -1, dtype=np.int64)
    group_of[sub_roots] = group
    node_group = np.where(is_top, -1, group_of[np.maximum(root_of, 0)])
    order = np.lexsort((np.arange(n), node_group))  # by group, then rank
    counts = np.bincount(node_group[~is_top], minlength=parts)
    part_first = np.zeros(parts + 1, dtype=np.int32)
    np.cumsum(counts, out=part_first[1:])
    part_nodes = order[np.sum(is_top):].astype(np.int32)
    return {"part_first": part_first, "part_nodes": part_nodes,
            "top_nodes": np.flatnonzero(is_top).astype(np.int32)}


def _lpt_makespan(loads: list[float], parts: int) -> float:
    bins = [0.0] * parts
    for w in sorted(loads, reverse=True):
        i = bins.index(min(bins))
        bins[i] += w
    return max(bins)


def _lpt_groups(loads: np.ndarray, parts: int) -> np.ndarray:
    bins = np.zeros(parts)
    out = np.empty(len(loads), dtype=np.int64)
    for i in np.argsort(-loads, kind="stable"):
        j = int(np.argmin(bins))
        out[i] = j
        bins[j] += loads[i]
    return out
