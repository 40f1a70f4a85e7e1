"""The CCH index: build once per graph, customize per weight array, query in microseconds.

    index = CCHIndex.load_or_build(graph)           # order + contraction, cached on disk
    metric = index.customize(weights)               # O(triangles), ~tens of ms on a city
    cost, edges = index.query(metric, seeds, seed_cost, targets, target_cost)
    metric2 = index.update(metric, new_weights, changed_edges)  # partial, metric stays valid

Node ids, edge ids, seeds/targets with offsets and ``inf`` conventions are those of
:mod:`engine.kernels`: the CCH is a drop-in for the Dijkstra kernels, with the same answers.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.kernels._checks import _float_array, _index_array, check_groups

from . import customize as C
from . import search as S
from .contract import contract
from .order import nested_dissection_order, undirected_simple_graph
from .partition import partition

#: Bump when the cached arrays change meaning.
CCH_FORMAT = "gyrophare-cch-1"

#: Arrays of a CCH topology, as stored in its cache file.
TOPOLOGY_FIELDS: tuple[str, ...] = (
    "order", "rank", "parent", "up_first", "up_head", "arc_tail", "down_first", "down_arc",
    "down_tail",
    "edge_slot", "arc_edge_first", "arc_edges", "part_first", "part_nodes", "top_nodes",
)

ProgressFn = Callable[[str, int, int | None], None]


def _code_version() -> str:
    root = Path(__file__).resolve().parent
    h = hashlib.sha256(CCH_FORMAT.encode())
    for name in ("order.py", "contract.py", "partition.py", "router.py"):
        h.update((root / name).read_bytes())
    return h.hexdigest()[:10]


CODE_VERSION = _code_version()


def graph_key(graph: Any) -> str:
    """Hash of the graph's topology (node count, ``first_out``, ``head``): the CCH depends on
    nothing else."""
    h = hashlib.sha256(str(graph.n_nodes).encode())
    h.update(np.ascontiguousarray(graph.first_out, dtype=np.int32).tobytes())
    h.update(np.ascontiguousarray(graph.head, dtype=np.int32).tobytes())
    return h.hexdigest()[:20]


@dataclass(frozen=True, eq=False)
class Metric:
    """An immutable customized metric: the arc weights (and middle nodes) for one weight array.

    ``W[0]`` / ``W[1]`` are the up / down weights of every upward arc, ``V[0]`` / ``V[1]``
    their vias (see :mod:`engine.cch.customize`). Queries only read it, so a query in flight
    keeps a consistent metric while :meth:`CCHIndex.update` builds the next one from it.
    """

    W: np.ndarray
    V: np.ndarray
    weights: np.ndarray = field(repr=False)
    key: Any = None
    #: overlay state counter of the weights (``Weights.state``), -1 if unknown
    state: int = -1
    topology: str = ""
    #: how it was made: ``full`` or ``partial`` (with the arcs recomputed / changed) and seconds
    info: dict[str, Any] = field(default_factory=dict, compare=False)
    #: identity within its index (lineage of partial updates)
    uid: int = 0

    @property
    def up(self) -> np.ndarray:
        return self.W[0]

    @property
    def down(self) -> np.ndarray:
        return self.W[1]

    @property
    def via_up(self) -> np.ndarray:
        return self.V[0]

    @property
    def via_down(self) -> np.ndarray:
        return self.V[1]

    @property
    def nbytes(self) -> int:
        return self.W.nbytes + self.V.nbytes


class CCHWorkspace:
    """Per-thread query state over ``n`` nodes; every query leaves it clean.

    ``D`` rows: forward / backward distances (inf); ``ints`` rows: forward / backward
    predecessor arcs (-1), heap, visited list; ``stack`` (2n + 4) unpacks paths; ``out``
    receives path edges (grown when a path does not fit).
    """

    __slots__ = ("D", "bucket_head", "flag", "ints", "out", "stack")

    def __init__(self, n: int) -> None:
        self.D = np.full((2, n), np.inf)
        self.ints = np.full((4, n + 1), -1, dtype=np.int32)
        self.flag = np.zeros(n, dtype=np.uint8)
        self.bucket_head = np.full(n, -1, dtype=np.int32)
        self.stack = np.zeros(2 * n + 4, dtype=np.int32)
        self.out = np.zeros(max(1024, n), dtype=np.int32)

    def search_arrays(self) -> tuple:
        D, ints = self.D, self.ints
        return (D[0], D[1], ints[0], ints[1], self.flag, ints[2], ints[3])


class CCHIndex:
    """A Customizable Contraction Hierarchy over one :class:`~engine.graph.RoadGraph`.

    The topology (node order, upward arcs, elimination tree, edge -> arc map) depends on the
    graph only; every weight array gives a :class:`Metric` (:meth:`customize`,
    :meth:`update`). Thread-safe: queries use one workspace per thread and never write the
    index or a metric.
    """

    def __init__(self, arrays: dict[str, np.ndarray], *, n_nodes: int, n_edges: int,
                 key: str = "", meta: dict[str, Any] | None = None) -> None:
        for name in TOPOLOGY_FIELDS:
            arr = np.ascontiguousarray(arrays[name])
            arr.flags.writeable = False
            setattr(self, name, arr)
        self.n_nodes = int(n_nodes)
        self.n_edges = int(n_edges)
        # packed copies for the query kernels (fewer arguments = less dispatch time); the
        # named arrays are views on them
        self._arcs2 = np.stack([self.up_head, self.arc_tail])
        self._pr2 = np.stack([self.parent, self.rank])
        for arr in (self._arcs2, self._pr2):
            arr.flags.writeable = False
        self.up_head, self.arc_tail = self._arcs2
        self.parent, self.rank = self._pr2
        self.n_arcs = len(self.up_head)
        self.max_degree = int(np.diff(self.up_first).max()) if self.n_nodes else 0
        self.key = key
        self.meta = dict(meta or {})
        self._local = threading.local()
        self._recycled: list[tuple[int, tuple[np.ndarray, ...]]] = []
        self._history: dict[int, tuple[int | None, np.ndarray | None]] = {}
        self._next_uid = 1
        self._recycle_lock = threading.Lock()
        self._update_lock = threading.Lock()
        self._scratch_arrays: tuple[np.ndarray, ...] | None = None
        if len(self.edge_slot) != self.n_edges or len(self.rank) != self.n_nodes:
            raise ValueError("CCH arrays do not match the graph's size")

    # ------------------------------------------------------------------ build and cache
    @classmethod
    def build(cls, graph: Any, *, progress: ProgressFn | None = None,
              parallel_parts: int = 2) -> CCHIndex:
        """Order (METIS nested dissection) + contraction; weight independent.

        ``graph`` needs ``n_nodes``, ``n_edges``, ``tail``, ``head`` and ``first_out``;
        ``progress(stage, done, total)`` is called as in :func:`engine.io.load_graph`;
        ``parallel_parts``: how many independent subtree groups full customization may run
        in parallel (the machine has 2 cores).
        """
        n, m = graph.n_nodes, graph.n_edges
        t0 = time.perf_counter()
        if progress:
            progress("cch", 0, 2)
        xadj, adjncy = undirected_simple_graph(n, graph.tail, graph.head)
        order = nested_dissection_order(n, graph.tail, graph.head, adjacency=(xadj, adjncy))
        t1 = time.perf_counter()
        if progress:
            progress("cch", 1, 2)
        arrays = contract(n, graph.tail, graph.head, order, xadj, adjncy)
        arrays.update(partition(arrays, parallel_parts))
        t2 = time.perf_counter()
        if progress:
            progress("cch", 2, 2)
        meta = {"order_seconds": round(t1 - t0, 4), "contract_seconds": round(t2 - t1, 4),
                "source": "built"}
        return cls(arrays, n_nodes=n, n_edges=m, key=graph_key(graph), meta=meta)

    @classmethod
    def load_or_build(cls, graph: Any, *, cache_dir: str | Path | None = None) -> CCHIndex:
        """The cached index of this graph topology (``cch-<hash>.npz`` in the graph cache
        directory), built and saved when missing or stale."""
        from engine.io import default_cache_dir

        root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        key = graph_key(graph)
        path = root / f"cch-{key}-{CODE_VERSION}.npz"
        if path.is_file():
            try:
                index = cls.load(path)
                if index.key == key and index.n_edges == graph.n_edges:
                    return index
            except (OSError, ValueError, KeyError):
                pass  # rebuilt below
        index = cls.build(graph)
        try:
            index.save(path)
        except OSError:
            pass  # a read-only cache directory only costs the rebuild next time
        return index

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
        header = np.array([CCH_FORMAT, CODE_VERSION, self.key, str(self.n_nodes),
                           str(self.n_edges)])
        np.savez(tmp, header=header, **{k: getattr(self, k) for k in TOPOLOGY_FIELDS})
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> CCHIndex:
        t0 = time.perf_counter()
        with np.load(path, allow_pickle=False) as data:
            fmt, code, key, n, m = (str(x) for x in data["header"])
            if fmt != CCH_FORMAT or code != CODE_VERSION:
                raise ValueError(f"{path}: CCH format {fmt}/{code}, expected "
                                 f"{CCH_FORMAT}/{CODE_VERSION}")
            arrays = {k: data[k] for k in TOPOLOGY_FIELDS}
        return cls(arrays, n_nodes=int(n), n_edges=int(m), key=key,
                   meta={"source": str(path),
                         "load_seconds": round(time.perf_counter() - t0, 4)})

    @property
    def nbytes(self) -> int:
        """Bytes of the topology arrays (a metric adds :attr:`Metric.nbytes`)."""
        return sum(getattr(self, k).nbytes for k in TOPOLOGY_FIELDS)

    # ------------------------------------------------------------------ customization
    def _check_weights(self, weights: Any, edges: np.ndarray | None = None) -> np.ndarray:
        """The weight array as read-only float64; values checked on ``edges`` (all if None:
        an update trusts the unchanged edges, checked when their metric was made)."""
        w = _float_array(weights, "weights")
        if w.shape != (self.n_edges,):
            raise ValueError(f"weights must have one entry per edge ({self.n_edges}), "
                             f"got shape {w.shape}")
        if not (w >= 0).all() if edges is None else not (w[edges] >= 0).all():
            raise ValueError("weights must be >= 0 or inf (no NaN, no negative values)")
        if w.flags.writeable:  # the metric keeps the array it was customized from
            w = w.copy()
            w.flags.writeable = False
        return w

    # A metric's four arrays are 24 bytes per arc (32 MB on NY). Allocating them afresh for
    # every update costs page faults, and copying them costs ~2.5 ms: more than a partial
    # customization. So the arrays of dead metrics are recycled, and a recycled set that
    # holds an ancestor of the metric being updated is brought up to date by copying only
    # the arcs written since (``_history``: per metric, its parent and the arcs it rewrote).
    def _take_buffers(self, source: Metric | None
                      ) -> tuple[tuple[np.ndarray, ...], list[np.ndarray] | None]:
        """A writable set of metric arrays, and the arc lists to copy from ``source`` to
        bring it to ``source`` (``None``: copy everything)."""
        with self._recycle_lock:
            # an array somebody still holds (``a = metric.up`` kept after the metric died)
            # must never be overwritten: references here are the tuple, the generator's
            # variable and getrefcount's argument
            self._recycled = [(u, b) for u, b in self._recycled
                              if not any(sys.getrefcount(x) > 3 for x in b)]
            if source is not None and self._recycled:
                held = {u: i for i, (u, _) in enumerate(self._recycled)}
                lists: list[np.ndarray] = []
                uid: int | None = source.uid
                for _ in range(65):  # walk source's ancestry until a recycled set holds one
                    if uid in held:
                        return self._recycled.pop(held[uid])[1], lists
                    parent, arcs = self._history.get(uid, (None, None))  # type: ignore[arg-type]
                    if arcs is None:
                        break
                    lists.append(arcs)
                    uid = parent
            if self._recycled:
                return self._recycled.pop()[1], None
        k = self.n_arcs
        return (np.empty((2, k)), np.empty((2, k), dtype=np.int32)), None

    def _metric(self, bufs: tuple[np.ndarray, ...], w: np.ndarray, key: Any, state: int,
                info: dict[str, Any], parent: int | None, written: np.ndarray | None
                ) -> Metric:
        for b in bufs:
            b.flags.writeable = False
        with self._recycle_lock:
            uid = self._next_uid
            self._next_uid += 1
            self._history[uid] = (parent, written)
            while len(self._history) > 64:
                self._history.pop(next(iter(self._history)))
        metric = Metric(bufs[0], bufs[1], weights=w, key=key, state=state, topology=self.key,
                        info=info, uid=uid)
        weakref.finalize(metric, self._recycle, uid, bufs)
        return metric

    def _recycle(self, uid: int, bufs: tuple[np.ndarray, ...]) -> None:
        """Called when a metric dies: keep its arrays for :meth:`_take_buffers`."""
        with self._recycle_lock:
            self._recycled.append((uid, bufs))
            del self._recycled[:-2]  # at most two spare sets (2 x 24 bytes per arc)

    def customize(self, weights: np.ndarray, *, key: Any = None, state: int = -1,
                  parallel: bool | None = None) -> Metric:
        """Full customization of a per-edge weight array (``inf`` = closed edge).

        ``parallel`` (default: on graphs with >= 200k arcs when numba has >= 2 threads)
        customizes independent subtrees of the elimination tree on separate threads.
        """
        t0 = time.perf_counter()
        w = self._check_weights(weights)
        bufs, _ = self._take_buffers(None)
        for b in bufs:
            b.flags.writeable = True
        (up, down), (via_up, via_down) = bufs  # views made after: writable
        parts = len(self.part_first) - 1
        if parallel is None:
            import numba

            parallel = self.n_arcs >= 200_000 and numba.get_num_threads() >= 2
        if parallel and parts >= 2:
            from engine.kernels.matrix import _PARALLEL_LOCK

            arc_of = np.empty((parts, self.n_nodes), dtype=np.int32)
            with _PARALLEL_LOCK:  # numba's workqueue layer is not re-entrant
                C._customize_parallel(w, self.edge_slot, self.up_first, self.up_head,
                                      self.arc_tail, self.down_first, self.down_arc, up, down,
                                      via_up, via_down, arc_of, self.part_first,
                                      self.part_nodes, self.top_nodes)
            mode = f"full, {parts} subtree groups in parallel"
        else:
            arc_of = np.empty(self.n_nodes, dtype=np.int32)
            C._customize(w, self.edge_slot, self.up_first, self.up_head, self.arc_tail,
                         self.down_first, self.down_arc, up, down, via_up, via_down, arc_of)
            mode = "full"
        info = {"mode": mode, "seconds": time.perf_counter() - t0}
        return self._metric(bufs, w, key, state, info, None, None)

    def update(self, metric: Metric, weights: np.ndarray, changed_edges: np.ndarray, *,
               key: Any = None, state: int = -1) -> Metric:
        """Partial customization: a new :class:`Metric` for ``weights``, which must equal the
        weights ``metric`` was customized from except (at most) on ``changed_edges``.

        Only the arcs of the changed edges, and the arcs whose value may depend on an arc
        that changed, are recomputed (bottom-up, in rank order); the result is identical to
        a full customization of ``weights``. ``metric`` is not modified.
        """
        t0 = time.perf_counter()
        self._check_metric(metric)
        changed = np.asarray(changed_edges)
        if changed.ndim != 1 or (changed.dtype.kind not in "iu" and len(changed)):
            raise ValueError("changed_edges must be a 1-D array of edge ids")
        if len(changed) and (changed.min() < 0 or changed.max() >= self.n_edges):
            raise ValueError(f"changed_edges must be edge ids in [0, {self.n_edges})")
        changed = np.ascontiguousarray(changed, dtype=np.int32)
        w = self._check_weights(weights, changed)
        t1 = time.perf_counter()
        bufs, lists = self._take_buffers(metric)
        for b in bufs:
            b.flags.writeable = True
        if lists is None:
            np.copyto(bufs[0], metric.W)
            np.copyto(bufs[1], metric.V)
            copied = self.n_arcs
        else:
            copied = 0
            for arcs in lists:
                C._copy_arcs(arcs, metric.W, metric.V, *bufs)
                copied += len(arcs)
        t2 = time.perf_counter()
        with self._update_lock:
            sc = self._scratch()
            done, n_changed = C._partial(w, changed, self.edge_slot, self.arc_edge_first,
                                         self.arc_edges, self.up_first, self.up_head,
                                         self.arc_tail, self.down_first, self.down_arc,
                                         self.down_tail, *bufs[0], *bufs[1], *sc)
            written = sc[-1][:done].copy()
        t3 = time.perf_counter()
        info = {"mode": "partial", "changed_edges": len(changed), "arcs_recomputed": int(done),
                "arcs_changed": int(n_changed), "arcs_copied": copied, "seconds": t3 - t0,
                "check_seconds": t1 - t0, "copy_seconds": t2 - t1, "kernel_seconds": t3 - t2}
        return self._metric(bufs, w, metric.key if key is None else key, state, info,
                            metric.uid, written)

    def _scratch(self) -> tuple[np.ndarray, ...]:
        """Work arrays of partial customization, kept between calls (``_update_lock``); the
        kernel leaves ``queued`` all 0 and ``arc_of`` all -1."""
        if self._scratch_arrays is None:
            k, d = self.n_arcs, self.max_degree
            self._scratch_arrays = (
                np.zeros(k, dtype=np.uint8), np.empty(k, dtype=np.int32),
                np.full(self.n_nodes, -1, dtype=np.int32), np.empty(d, dtype=np.int32),
                np.empty(d), np.empty(d), np.empty(d, dtype=np.int32),
                np.empty(d, dtype=np.int32), np.empty(k, dtype=np.int32))
        return self._scratch_arrays

    def _check_metric(self, metric: Metric) -> None:
        if not isinstance(metric, Metric):
            raise ValueError(f"expected a Metric, got {type(metric).__name__}")
        if metric.topology != self.key or len(metric.up) != self.n_arcs:
            raise ValueError("this metric was customized on another CCH")

    # ------------------------------------------------------------------ queries
    def workspace(self) -> CCHWorkspace:
        """This thread's workspace (allocated on first use)."""
        ws = getattr(self._local, "ws", None)
        if ws is None:
            ws = self._local.ws = CCHWorkspace(self.n_nodes)
        return ws

    def nearest(self, metric: Metric, seeds: Any, seed_cost: Any, targets: Any,
                target_cost: Any) -> tuple[float, np.ndarray, int, int]:
        """Cheapest route from any seed to any target: ``(cost, input edge ids of the path,
        seed index, target index)``; ``(inf, [], -1, -1)`` when no target is reachable.
        This is also nearest-of-a-set: every candidate's entries as targets (or seeds)."""
        if type(metric) is not Metric or metric.topology != self.key:
            self._check_metric(metric)
        seeds, seed_cost = _entries(seeds, seed_cost, "seeds")
        targets, target_cost = _entries(targets, target_cost, "targets")
        ws = self.workspace()
        while True:
            status, cost, n_out, si, ti = S._query_path(
                self.up_first, self._arcs2, self._pr2, metric.W, metric.V, seeds, seed_cost,
                targets, target_cost, ws.D, ws.ints, ws.flag, ws.stack, ws.out)
            if status != 3:
                break
            ws.out = np.empty(2 * n_out, dtype=np.int32)  # a path longer than n: rare
        if status:
            nodes, cost_, name = (seeds, seed_cost, "seed") if status == 1 else \
                (targets, target_cost, "target")
            i = si if status == 1 else ti
            if not 0 <= nodes[i] < self.n_nodes:
                raise ValueError(f"{name}s must be node ids in [0, {self.n_nodes}), got "
                                 f"{nodes[i]} at index {i}")
            raise ValueError(f"{name}_cost must be >= 0 (inf allowed), got {cost_[i]} at "
                             f"index {i}")
        if ti < 0:
            return np.inf, np.zeros(0, dtype=np.int32), -1, -1
        return cost, ws.out[:n_out].copy(), si, ti

    def query(self, metric: Metric, seeds: Any, seed_cost: Any, targets: Any,
              target_cost: Any) -> tuple[float, np.ndarray]:
        """``(cost, input edge ids of the path)`` from the best seed to the best target
        (``min seed_cost[i] + d(seeds[i], targets[j]) + target_cost[j]``); the path is empty
        when the seed is the target, and ``(inf, [])`` when unreachable."""
        cost, edges, _, _ = self.nearest(metric, seeds, seed_cost, targets, target_cost)
        return cost, edges

    def distances(self, metric: Metric, seed_first: Any, seeds: Any, seed_cost: Any,
                  target_first: Any, targets: Any, target_cost: Any) -> np.ndarray:
        """A batch of point-to-point costs (no paths), query ``q`` from seed group ``q`` to
        target group ``q``, in one call."""
        self._check_metric(metric)
        n = self.n_nodes
        sf, sn, sc = check_groups(seed_first, seeds, seed_cost, n, "seed")
        tf, tn, tc = check_groups(target_first, targets, target_cost, n, "target")
        if len(sf) != len(tf):
            raise ValueError("seed_first and target_first must describe as many queries")
        out = np.empty(len(sf) - 1)
        S._query_many(self.up_first, self.up_head, self.parent, self.rank, metric.W[0],
                      metric.W[1], sf, sn, sc, tf, tn, tc, *self.workspace().search_arrays(),
                      out)
        return out

    def many_to_many(self, metric: Metric, source_first: Any, source_nodes: Any,
                     source_cost: Any, target_first: Any, targets: Any,
                     target_cost: Any) -> np.ndarray:
        """Cost matrix between source groups and target groups (groups as in
        :func:`engine.kernels.many_to_many`), bucket-based: one upward search per group."""
        self._check_metric(metric)
        n = self.n_nodes
        sf, sn, sc = check_groups(source_first, source_nodes, source_cost, n, "source")
        tf, tn, tc = check_groups(target_first, targets, target_cost, n, "target")
        ws = self.workspace()
        out = np.empty((len(sf) - 1, len(tf) - 1))
        S._many_to_many(self.up_first, self.up_head, self.parent, self.rank, metric.W[0],
                        metric.W[1], sf, sn, sc, tf, tn, tc, *ws.search_arrays(),
                        ws.bucket_head, out)
        return out

    def one_to_many(self, metric: Metric, seeds: Any, seed_cost: Any, target_first: Any,
                    targets: Any, target_cost: Any) -> np.ndarray:
        """Cost from the seeds to every target group (``inf``: unreachable or empty group)."""
        seeds = _index_array(seeds, "seeds")
        first = np.array([0, len(seeds)], dtype=np.int32)
        return self.many_to_many(metric, first, seeds, seed_cost, target_first, targets,
                                 target_cost)[0]

    def warm_up(self) -> None:
        """Compile / load every kernel (call once at start-up, never in a request)."""
        warm_up()


def _entries(nodes: Any, cost: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Seeds or targets as int32 / float64 1-D arrays of one length (values are checked by
    the kernel: ranges and costs, in the same pass that reads them)."""
    if type(nodes) is not np.ndarray or nodes.dtype != np.int32 or nodes.ndim != 1:
        nodes = _index_array(nodes, name)
    if type(cost) is not np.ndarray or cost.dtype != np.float64 or cost.ndim != 1:
        cost = _float_array(cost, f"{name[:-1]}_cost")
    if len(nodes) != len(cost):
        raise ValueError(f"{name[:-1]}_cost has {len(cost)} entries but {name} has "
                         f"{len(nodes)}")
    return nodes, cost


# ---------------------------------------------------------------------------- metrics cache
class CCHMetrics:
    """Customized metrics for the overlay's weight snapshots, one current metric per
    ``(profile, metric, options)``.

    ``get(W)`` returns the metric of the :class:`~engine.profiles.Weights` snapshot ``W``:
    the cached one when ``W.state`` matches, a partial customization from the cached one
    when the overlay still knows which edges changed in between
    (``overlay.changed_edges_since``), else a full customization. Arrays without an overlay
    state (``W.state < 0``: weights given by the caller) are customized in full and kept in a
    small cache keyed by the array's identity.
    """

    def __init__(self, index: CCHIndex, overlay: Any = None, *, max_adhoc: int = 4,
                 partial_limit: float = 0.003, partial_min: int = 64) -> None:
        self.index = index
        self.overlay = overlay
        self.max_adhoc = max_adhoc
        #: above this share of changed edges (and more than ``partial_min`` edges) a full
        #: customization is cheaper (NY, random edges: 100 -> ~10 ms partial, 10,000 ->
        #: ~150 ms, full ~45-75 ms; real changes are local and cheaper than random ones)
        self.partial_limit = partial_limit
        self.partial_min = partial_min
        self._lock = threading.Lock()
        self._current: dict[tuple, Metric] = {}
        self._adhoc: dict[int, tuple[np.ndarray, Metric]] = {}

    def get(self, w: Any) -> Metric:
        values = w.values
        if w.state < 0:
            return self._get_adhoc(values)
        key = (w.profile, w.metric, w.options)
        with self._lock:
            cur = self._current.get(key)
            if cur is not None and cur.state == w.state:
                return cur
            changed = None
            if cur is not None and self.overlay is not None:
                # edges changed since the older of the two states: covers every difference
                changed = self.overlay.changed_edges_since(min(cur.state, w.state))
            if changed is not None and (len(changed) <= self.partial_min or
                                        len(changed) <= self.partial_limit * len(values)):
                new = self.index.update(cur, values, changed, key=key, state=w.state)
            else:
                new = self.index.customize(values, key=key, state=w.state)
            if cur is None or w.state >= cur.state:
                self._current[key] = new
            return new

    def _get_adhoc(self, values: np.ndarray) -> Metric:
        with self._lock:
            hit = self._adhoc.get(id(values))
            if hit is not None and hit[0] is values:
                return hit[1]
            metric = self.index.customize(values)
            if len(self._adhoc) >= self.max_adhoc:
                self._adhoc.pop(next(iter(self._adhoc)))
            self._adhoc[id(values)] = (values, metric)
            return metric


def warm_up() -> None:
    """Compile (or load from numba's cache) every CCH kernel on a 4-node graph."""
    tail = np.array([0, 1, 1, 2, 2, 3, 0], dtype=np.int32)
    head = np.array([1, 0, 2, 1, 3, 2, 2], dtype=np.int32)
    first_out = np.array([0, 2, 4, 6, 7], dtype=np.int32)

    class _G:
        n_nodes, n_edges = 4, 7

    g = _G()
    g.tail, g.head, g.first_out = tail, head, first_out  # type: ignore[attr-defined]
    index = CCHIndex.build(g)
    w = np.array([1.0, 1.0, 2.0, 2.0, 1.0, np.inf, 5.0])
    metric = index.customize(w, parallel=False)
    metric2 = index.update(metric, w * 2, np.arange(7))
    # the kernels the small graph does not reach: parallel customization, delta copies
    W, V = np.empty((2, index.n_arcs)), np.empty((2, index.n_arcs), dtype=np.int32)
    from engine.kernels.matrix import _PARALLEL_LOCK

    with _PARALLEL_LOCK:
        C._customize_parallel(w, index.edge_slot, index.up_first, index.up_head,
                              index.arc_tail, index.down_first, index.down_arc, W[0], W[1],
                              V[0], V[1], np.empty((2, 4), dtype=np.int32),
                              np.zeros(3, dtype=np.int32), np.zeros(0, dtype=np.int32),
                              np.arange(4, dtype=np.int32))
    C._copy_arcs(np.arange(index.n_arcs, dtype=np.int32), metric.W, metric.V, W, V)
    one = np.ones(1)
    s, t = np.array([0], dtype=np.int32), np.array([3], dtype=np.int32)
    index.query(metric2, s, one, t, one)
    idx = np.array([0, 1], dtype=np.int32)
    index.many_to_many(metric2, idx, s, one, idx, t, one)
    index.distances(metric2, idx, s, one, idx, t, one)
