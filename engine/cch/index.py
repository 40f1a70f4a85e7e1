"""The public CCH entry point, :class:`CCHIndex`: one topology, its metrics and its queries.

    index = CCHIndex.load_or_build(graph)           # order + contraction, cached on disk
    metric = index.customize(weights)               # O(triangles), ~ms on a city
    cost, edges = index.query(metric, seeds, seed_cost, targets, target_cost)
    metric2 = index.update(metric, new_weights, changed_edges)  # partial, metric stays valid

Node ids, edge ids, seeds/targets with offsets and ``inf`` conventions are those of
:mod:`engine.kernels`: the CCH is a drop-in for the Dijkstra kernels, with the same answers.
The phases and who owns what, as RoutingKit writes them down:

========================  ==============================  =================================
phase                     object (module)                 owns
========================  ==============================  =================================
topology                  :class:`CCHTopology`            read-only order, arcs, triangle
                          (:mod:`.topology`)              lists, edge map, subtree groups
metric                    :class:`CCHMetric`              nothing writable: read-only views
                          (:mod:`.metric`)                of a pooled buffer
metric buffers            :class:`MetricBufferPool`       the writable arc arrays, recycled
                          (:mod:`.metric`)                once no metric view is alive
full customization        :func:`customize_full`          per-call scratch
                          (:mod:`.customize`)
partial customization     :class:`PartialCustomizer`      its scratch (one run at a time)
                          (:mod:`.partial`)
query                     :class:`CCHWorkspace`           per-thread search arrays
                          (:mod:`.search`)
========================  ==============================  =================================
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from engine.cch._util import Float64Array, Int32Array, numba_threads
from engine.cch.customize import customize_full
from engine.cch.metric import CCHMetric, MetricBufferPool
from engine.cch.partial import PartialCustomizer
from engine.cch.search import (
    CCHWorkspace,
    distances,
    many_to_many,
    shortest_path,
)
from engine.cch.topology import CCHTopology, GraphArrays, ProgressFn
from engine.cch.via import warm_up as warm_up_via
from engine.kernels.checks import float_array, index_array


class CCHIndex:
    """A Customizable Contraction Hierarchy over a graph (the router's turn graph).

    The :class:`CCHTopology` (node order, directed upward arcs, elimination tree, edge -> arc
    map) depends on the graph only; every weight array gives a :class:`CCHMetric`
    (:meth:`customize`, :meth:`update`). Thread-safe: queries use one workspace per thread
    and never write the index or a metric; updates are serialised where they share scratch.
    """

    #: partial customizations from this many changed edges run the subtree groups on
    #: separate threads (below, the threads' start-up costs more than they save)
    PARALLEL_UPDATE = 64

    def __init__(self, topology: CCHTopology) -> None:
        #: the weight-independent arrays (read-only)
        self.topology = topology
        self._pool = MetricBufferPool(topology.n_arcs, topology.n_forward, topology.key)
        self._partial = PartialCustomizer(topology)
        self._local = threading.local()

    # ------------------------------------------------------------------ sizes and names
    @property
    def key(self) -> str:
        """The graph's :func:`~engine.cch.topology.graph_key`."""
        return self.topology.key

    @property
    def n_nodes(self) -> int:
        return self.topology.n_nodes

    @property
    def n_edges(self) -> int:
        return self.topology.n_edges

    @property
    def n_arcs(self) -> int:
        """Directed arcs of the hierarchy (forward, then backward)."""
        return self.topology.n_arcs

    @property
    def n_forward(self) -> int:
        """Forward (upward) arcs: arc ids ``0..n_forward-1``."""
        return self.topology.n_forward

    @property
    def order(self) -> Int32Array:
        """The node order, rank -> graph node (to give another CCH the same order)."""
        return self.topology.order

    @property
    def rank(self) -> Int32Array:
        """Graph node -> rank."""
        return self.topology.rank

    @property
    def meta(self) -> dict[str, Any]:
        """How the topology was obtained (``source``, stage seconds, ``undirected_arcs``)."""
        return self.topology.meta

    @property
    def nbytes(self) -> int:
        """Bytes of the topology arrays (a metric adds :attr:`CCHMetric.nbytes`)."""
        return self.topology.nbytes

    # ------------------------------------------------------------------ build and cache
    @classmethod
    def build(cls, graph: GraphArrays, *, progress: ProgressFn | None = None,
              parallel_parts: int = 2) -> CCHIndex:
        """Order (METIS nested dissection) + contraction; see :meth:`CCHTopology.build`."""
        return cls(CCHTopology.build(graph, progress=progress, parallel_parts=parallel_parts))

    @classmethod
    def load_or_build(cls, graph: GraphArrays, *, cache_dir: str | Path | None = None,
                      progress: ProgressFn | None = None) -> CCHIndex:
        """The index of this graph's cached topology, built and saved when missing or stale
        (see :meth:`CCHTopology.load_or_build`)."""
        return cls(CCHTopology.load_or_build(graph, cache_dir=cache_dir, progress=progress))

    def save(self, path: str | Path) -> Path:
        """Save the topology (metrics are not saved: customizing is cheap)."""
        return self.topology.save(path)

    @classmethod
    def load(cls, path: str | Path) -> CCHIndex:
        return cls(CCHTopology.load(path))

    # ------------------------------------------------------------------ customization
    def customize(self, weights: Any, *, key: Any = None, state: int = -1,
                  parallel: bool | None = None) -> CCHMetric:
        """Full customization of a per-edge weight array (``inf`` = closed edge).

        ``parallel`` (default: on graphs with >= 200k arcs when numba has >= 2 threads)
        customizes independent subtrees of the elimination tree on separate threads.
        ``key`` labels the metric (buffers are recycled within a key first); ``state`` is
        stored on it (:class:`CCHMetrics`: the overlay state of the weights).
        """
        t0 = time.perf_counter()
        w = self._check_weights(weights)
        with self._pool.writing(key, None) as buf:
            mode = customize_full(self.topology, w, buf.W, buf.V, parallel=parallel)
            info = {"mode": mode, "seconds": time.perf_counter() - t0}
            return self._pool.publish(buf, w, key=key, state=state, info=info)

    def update(self, metric: CCHMetric, weights: Any, changed_edges: Any, *,
               key: Any = None, state: int = -1, budget: int | None = None) -> CCHMetric:
        """Partial customization: a new :class:`CCHMetric` for ``weights``, which must equal
        the weights ``metric`` was customized from except (at most) on ``changed_edges``.

        Only the arcs of the changed edges, and the arcs whose value may depend on an arc
        that changed, are recomputed (bottom-up, in rank order); the result is identical to
        a full customization of ``weights``. ``metric`` is not modified. ``budget``: past
        this many recomputed arcs, give up and customize in full (the same result; the
        info's mode says so).
        """
        t0 = time.perf_counter()
        self._check_metric(metric)
        changed = self._check_edges(changed_edges)
        w = self._check_weights(weights, changed)
        key = metric.key if key is None else key
        t1 = time.perf_counter()
        with self._pool.writing(key, metric) as buf:
            copied = self._pool.bring_to(buf, metric)
            t2 = time.perf_counter()
            parallel = len(changed) >= self.PARALLEL_UPDATE and numba_threads() >= 2
            done = self._partial.run(w, changed, buf.W, buf.V, budget=budget,
                                     parallel=parallel)
            if done is None:  # gave up: the same metric, in full
                mode = customize_full(self.topology, w, buf.W, buf.V)
                info = {"mode": f"{mode} (partial gave up past {budget} arcs)",
                        "changed_edges": len(changed), "seconds": time.perf_counter() - t0}
                return self._pool.publish(buf, w, key=key, state=state, info=info)
            t3 = time.perf_counter()
            info = {"mode": "partial", "changed_edges": len(changed),
                    "arcs_recomputed": done.arcs_recomputed, "arcs_changed": done.arcs_changed,
                    "arcs_copied": copied, "seconds": t3 - t0, "check_seconds": t1 - t0,
                    "copy_seconds": t2 - t1, "kernel_seconds": t3 - t2}
            return self._pool.publish(buf, w, key=key, state=state, info=info, parent=metric,
                                      written=done.written)

    def _check_weights(self, weights: Any, edges: Int32Array | None = None) -> Float64Array:
        """The weight array as read-only float64; values checked on ``edges`` (all if None:
        an update trusts the unchanged edges, checked when their metric was made)."""
        w = float_array(weights, "weights")
        if w.shape != (self.n_edges,):
            raise ValueError(f"weights must have one entry per edge ({self.n_edges}), "
                             f"got shape {w.shape}")
        if not (w >= 0).all() if edges is None else not (w[edges] >= 0).all():
            raise ValueError("weights must be >= 0 or inf (no NaN, no negative values)")
        if w.flags.writeable:  # the metric keeps the array it was customized from
            w = w.copy()
            w.flags.writeable = False
        return w

    def _check_edges(self, changed_edges: Any) -> Int32Array:
        changed = np.asarray(changed_edges)
        if changed.ndim != 1 or (changed.dtype.kind not in "iu" and len(changed)):
            raise ValueError("changed_edges must be a 1-D array of edge ids")
        if len(changed) and (changed.min() < 0 or changed.max() >= self.n_edges):
            raise ValueError(f"changed_edges must be edge ids in [0, {self.n_edges})")
        return np.ascontiguousarray(changed, dtype=np.int32)

    def _check_metric(self, metric: CCHMetric) -> None:
        if not isinstance(metric, CCHMetric):
            raise ValueError(f"expected a CCHMetric, got {type(metric).__name__}")
        if metric.topology_key != self.key or len(metric.W) != self.n_arcs:
            raise ValueError("this metric was customized on another CCH")

    # ------------------------------------------------------------------ queries
    def workspace(self) -> CCHWorkspace:
        """This thread's workspace (allocated on first use)."""
        ws: CCHWorkspace | None = getattr(self._local, "ws", None)
        if ws is None:
            ws = self._local.ws = CCHWorkspace(self.n_nodes)
        return ws

    def nearest(self, metric: CCHMetric, seeds: Any, seed_cost: Any, targets: Any,
                target_cost: Any) -> tuple[float, Int32Array, int, int]:
        """Cheapest route from any seed to any target: ``(cost, input edge ids of the path,
        seed index, target index)``; ``(inf, [], -1, -1)`` when no target is reachable.
        This is also nearest-of-a-set: every candidate's entries as targets (or seeds)."""
        if type(metric) is not CCHMetric or metric.topology_key != self.topology.key:
            self._check_metric(metric)
        return shortest_path(self.topology, metric, seeds, seed_cost, targets, target_cost,
                             self.workspace())

    def query(self, metric: CCHMetric, seeds: Any, seed_cost: Any, targets: Any,
              target_cost: Any) -> tuple[float, Int32Array]:
        """``(cost, input edge ids of the path)`` from the best seed to the best target
        (``min seed_cost[i] + d(seeds[i], targets[j]) + target_cost[j]``); the path is empty
        when the seed is the target, and ``(inf, [])`` when unreachable."""
        cost, edges, _, _ = self.nearest(metric, seeds, seed_cost, targets, target_cost)
        return cost, edges

    def distances(self, metric: CCHMetric, seed_first: Any, seeds: Any, seed_cost: Any,
                  target_first: Any, targets: Any, target_cost: Any, *,
                  trusted: bool = False) -> Float64Array:
        """A batch of point-to-point costs (no paths), query ``q`` from seed group ``q`` to
        target group ``q``, in one call. ``trusted``: the groups are the caller's own
        int32 / float64 arrays, already valid (not checked again)."""
        self._check_metric(metric)
        return distances(self.topology, metric, seed_first, seeds, seed_cost, target_first,
                         targets, target_cost, self.workspace(), trusted=trusted)

    def many_to_many(self, metric: CCHMetric, source_first: Any, source_nodes: Any,
                     source_cost: Any, target_first: Any, targets: Any,
                     target_cost: Any, *, trusted: bool = False) -> Float64Array:
        """Cost matrix between source groups and target groups (groups as in
        :func:`engine.kernels.many_to_many`), bucket-based: one upward search per group.
        ``trusted``: as :meth:`distances`."""
        self._check_metric(metric)
        return many_to_many(self.topology, metric, source_first, source_nodes, source_cost,
                            target_first, targets, target_cost, self.workspace(),
                            trusted=trusted)

    def one_to_many(self, metric: CCHMetric, seeds: Any, seed_cost: Any, target_first: Any,
                    targets: Any, target_cost: Any) -> Float64Array:
        """Cost from the seeds to every target group (``inf``: unreachable or empty group)."""
        seeds = index_array(seeds, "seeds")
        first = np.array([0, len(seeds)], dtype=np.int32)
        row: Float64Array = self.many_to_many(metric, first, seeds, seed_cost, target_first,
                                              targets, target_cost)[0]
        return row

    def warm_up(self) -> None:
        """Compile / load every kernel (call once at start-up, never in a request)."""
        warm_up()


class _TinyGraph:
    """Two components (a 3-node cycle with a chord, a 2-node pair with a loop): their
    elimination forest has at least two leaves, and every kernel has some work."""

    n_nodes, n_edges = 5, 8
    tail = np.array([0, 0, 1, 1, 2, 3, 4, 4], dtype=np.int32)
    head = np.array([1, 2, 0, 2, 0, 4, 3, 4], dtype=np.int32)
    first_out = np.array([0, 2, 4, 5, 6, 8], dtype=np.int32)


def warm_up() -> None:
    """Compile (or load from numba's cache) every CCH kernel, through the public functions
    with the argument types of the service, on a 5-node graph.

    The graph is too small for subtree groups, so a copy of its topology gets two one-node
    groups (two leaves of the elimination forest, under a top of the other nodes: a valid
    split) to reach the parallel kernels. ``tests/test_cch.py`` checks that no kernel
    compiles after this.
    """
    graph = _TinyGraph()
    top = CCHTopology.build(graph)
    children = np.bincount(top.parent[top.parent >= 0], minlength=top.n_nodes)
    leaves = np.flatnonzero(children == 0)[:2].astype(np.int32)
    rest = np.setdiff1d(np.arange(top.n_nodes), leaves).astype(np.int32)
    index = CCHIndex(replace(top, part_first=np.arange(3, dtype=np.int32), part_nodes=leaves,
                             top_nodes=rest))
    w = np.array([1.0, 5.0, 1.0, 2.0, 2.0, 1.0, np.inf, 0.5])
    for parallel in (False, True):
        metric = index.customize(w, parallel=parallel)
    # partial, on one thread then on the groups; the second update finds the first
    # update's source buffer free and copies only the arcs written since (delta copy)
    edges = np.arange(graph.n_edges)
    update = index.update(metric, w * 2, edges)
    del metric
    index.PARALLEL_UPDATE = 1
    try:
        update = index.update(update, w * 3, edges)
        index.update(update, w * 4, edges, budget=0)  # gives up: the full fallback
    finally:
        del index.PARALLEL_UPDATE
    one = np.ones(1)
    s, t = np.array([0], dtype=np.int32), np.array([2], dtype=np.int32)
    index.query(update, s, one, t, one)
    groups = np.array([0, 1], dtype=np.int32)
    index.many_to_many(update, groups, s, one, groups, t, one)
    index.distances(update, groups, s, one, groups, t, one)
    warm_up_via()  # via-node alternative routes (engine.cch.via)
