"""Split the elimination tree into independent subtrees for parallel customization.

A node's arcs are customized from the arcs of its descendants only, so disjoint subtrees can
be customized on different threads; the nodes above them (the top separators, which hold a
large share of the triangles under nested dissection) are done afterwards on one thread.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
from numba import njit

from engine.cch._util import Float64Array, Int32Array, Int64Array


@dataclass(frozen=True, eq=False)
class Partition:
    """Independent subtree groups of the elimination tree (rank space).

    Group ``i`` is ``part_nodes[part_first[i]:part_first[i+1]]``: whole subtrees, in
    increasing rank; ``top_nodes`` is every other node, in increasing rank (the ancestors of
    the groups). No groups (``part_first == [0]``, every node on top) means one thread."""

    part_first: Int32Array
    part_nodes: Int32Array
    top_nodes: Int32Array

    @classmethod
    def single(cls, n: int) -> Partition:
        """No groups: every node on top (customized on one thread)."""
        return cls(np.zeros(1, np.int32), np.zeros(0, np.int32), np.arange(n, dtype=np.int32))

    @property
    def n_parts(self) -> int:
        return len(self.part_first) - 1


@njit(cache=True, nogil=True)
def _subtree_sums(parent: Int32Array, work: Float64Array) -> Float64Array:
    """Work of every subtree (children have lower ranks than their parent)."""
    sub = work.copy()
    for x in range(len(parent)):
        p = parent[x]
        if p >= 0:
            sub[p] += sub[x]
    return sub


@njit(cache=True, nogil=True)
def _roots_below_top(parent: Int32Array, is_top: np.ndarray) -> Int64Array:
    """For every non-top node, the root of its subtree once the top is removed (-1 on top)."""
    n = len(parent)
    root_of = np.full(n, -1, dtype=np.int64)
    for x in range(n - 1, -1, -1):  # parents first
        if is_top[x]:
            continue
        p = parent[x]
        root_of[x] = x if p < 0 or is_top[p] else root_of[p]
    return root_of


def partition(parent: Int32Array, work: Float64Array, parts: int, *,
              max_splits: int = 100_000) -> Partition:
    """Up to ``parts`` groups of whole subtrees of the elimination tree ``parent`` and the
    top nodes above them, minimising ``max(group work) + top work`` for the modelled
    per-node ``work`` (:func:`engine.cch.contract.node_work`).

    The heaviest subtree is split (its root moves to the top) again and again; after each
    split that creates several subtrees, the subtrees are spread over ``parts`` groups
    (heaviest first onto the lightest) and the modelled time is kept if it is the best.
    """
    n = len(parent)
    if parts < 2 or n < 2:
        return Partition.single(n)
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
        return Partition.single(n)
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
    return Partition(part_first, part_nodes, np.flatnonzero(is_top).astype(np.int32))


def _lpt_makespan(loads: list[float], parts: int) -> float:
    bins = [0.0] * parts
    for w in sorted(loads, reverse=True):
        i = bins.index(min(bins))
        bins[i] += w
    return max(bins)


def _lpt_groups(loads: Float64Array, parts: int) -> Int64Array:
    bins = np.zeros(parts)
    out = np.empty(len(loads), dtype=np.int64)
    for i in np.argsort(-loads, kind="stable"):
        j = int(np.argmin(bins))
        out[i] = j
        bins[j] += loads[i]
    return out
