"""The CCH index: build once per graph, customize per weight array, query in microseconds.

    index = CCHIndex.load_or_build(graph)           # order + contraction, cached on disk
    metric = index.customize(weights)               # O(triangles), ~ms on a city
    cost, edges = index.query(metric, seeds, seed_cost, targets, target_cost)
    metric2 = index.update(metric, new_weights, changed_edges)  # partial, metric stays valid

Node ids, edge ids, seeds/targets with offsets and ``inf`` conventions are those of
:mod:`engine.kernels`: the CCH is a drop-in for the Dijkstra kernels, with the same answers.
"""

from __future__ import annotations

import hashlib
import itertools
import os
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
CCH_FORMAT = "gyrophare-cch-2"

#: Arrays of a CCH topology, as stored in its cache file.
TOPOLOGY_FIELDS: tuple[str, ...] = (
    "order", "rank", "parent", "lo", "f_first", "b_first", "head", "bin_first", "binp",
    "fin_first", "finp", "edge_slot", "in_first", "in_edge", "in_slot", "part_first",
    "part_nodes", "top_nodes",
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

    ``W[a]`` is the weight of arc ``a``, ``V[a]`` its via (see :mod:`engine.cch.customize`);
    the first ``n_forward`` arcs are the forward (upward) arcs, the rest the backward ones.
    Queries only read it, so a query in flight keeps a consistent metric while
    :meth:`CCHIndex.update` builds the next one from it. The arrays are read-only views of
    buffers the index recycles once nobody holds them any more (not the metric, not an array
    or a view taken from it).
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
    n_forward: int = 0

    @property
    def up(self) -> np.ndarray:
        """Forward arcs' weights (cost from the lower end to the upper end)."""
        return self.W[:self.n_forward]

    @property
    def down(self) -> np.ndarray:
        """Backward arcs' weights (cost from the upper end to the lower end)."""
        return self.W[self.n_forward:]

    @property
    def via_up(self) -> np.ndarray:
        return self.V[:self.n_forward]

    @property
    def via_down(self) -> np.ndarray:
        return self.V[self.n_forward:]

    @property
    def nbytes(self) -> int:
        return self.W.nbytes + self.V.nbytes


class CCHWorkspace:
    """Per-thread query state over ``n`` nodes; every query leaves it clean.

    ``D`` rows: forward / backward distances (inf); ``ints`` rows: forward / backward
    predecessor arcs (-1), heap, visited list; ``stack`` (2n + 4, int64) unpacks paths;
    ``out`` receives path edges (grown when a path does not fit).
    """

    __slots__ = ("D", "bucket_head", "flag", "ints", "out", "stack")

    def __init__(self, n: int) -> None:
        self.D = np.full((2, n), np.inf)
        self.ints = np.full((4, n + 1), -1, dtype=np.int32)
        self.flag = np.zeros(n, dtype=np.uint8)
        self.bucket_head = np.full(n, -1, dtype=np.int32)
        self.stack = np.zeros(2 * n + 4, dtype=np.int64)
        self.out = np.zeros(max(1024, n), dtype=np.int32)

    def search_arrays(self) -> tuple:
        D, ints = self.D, self.ints
        return (D[0], D[1], ints[0], ints[1], self.flag, ints[2], ints[3])


class _Buffer:
    """The private, writable arrays behind metrics; a metric's ``W`` / ``V`` are read-only
    views of them (``np.frombuffer`` over a read-only memoryview, so every further view of
    a metric array keeps that array alive). The buffer is free again once both views are
    dead (weak references) and it is not being written (``busy``)."""

    __slots__ = ("V", "W", "busy", "key", "refs", "uid", "used")

    def __init__(self, k: int) -> None:
        self.W = np.empty(k)
        self.V = np.empty(k, dtype=np.int32)
        self.busy = False
        self.key: Any = None
        self.uid: int | None = None  #: the metric whose values it holds
        self.refs: tuple[weakref.ref, ...] = ()
        self.used = 0

    def free(self) -> bool:
        return not self.busy and all(r() is None for r in self.refs)


class CCHIndex:
    """A Customizable Contraction Hierarchy over a graph (the router's turn graph).

    The topology (node order, directed upward arcs, elimination tree, edge -> arc map)
    depends on the graph only; every weight array gives a :class:`Metric` (:meth:`customize`,
    :meth:`update`). Thread-safe: queries use one workspace per thread and never write the
    index or a metric.
    """

    #: metric buffers kept for reuse (a metric on New York's turn graph is 141 MB): one
    #: spare per live lineage (car, ambulance) makes each update copy only the arcs the
    #: previous update wrote; past MAX_BUFFERS, another lineage's spare is taken over
    MAX_FREE_BUFFERS = 3
    MAX_BUFFERS = 5
    #: partial customizations from this many changed edges run the subtree groups on
    #: separate threads (below, the threads' start-up costs more than they save)
    PARALLEL_UPDATE = 64

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
        self._firsts = np.stack([self.f_first, self.b_first])
        self._pr2 = np.stack([self.parent, self.rank])
        for arr in (self._firsts, self._pr2):
            arr.flags.writeable = False
        self.f_first, self.b_first = self._firsts
        self.parent, self.rank = self._pr2
        self.n_arcs = len(self.head)
        self.n_forward = int(self.f_first[-1]) if self.n_nodes else 0
        deg = (np.diff(self.f_first.astype(np.int64)) + np.diff(self.b_first.astype(np.int64))
               if self.n_nodes else np.zeros(1, np.int64))
        self.max_degree = int(deg.max()) if len(deg) else 0
        # subtree group of every node (-1: the top) and where each group's partial
        # customization writes its arc list (top first, then the groups in order)
        self._part_of = np.full(self.n_nodes, -1, dtype=np.int8)
        arcs_of = deg if self.n_nodes else np.zeros(0, np.int64)
        at = [0, int(arcs_of[self.top_nodes].sum())]
        for i in range(len(self.part_first) - 1):
            nodes = self.part_nodes[self.part_first[i]:self.part_first[i + 1]]
            self._part_of[nodes] = i
            at.append(at[-1] + int(arcs_of[nodes].sum()))
        self._written_at = np.array(at[:-1] if len(at) > 2 else [0], dtype=np.int64)
        self._no_parts = np.full(self.n_nodes, -1, dtype=np.int8)
        self.key = key
        self.meta = dict(meta or {})
        self._local = threading.local()
        self._buffers: list[_Buffer] = []
        self._history: dict[int, tuple[int | None, np.ndarray | None]] = {}
        self._uids = itertools.count(1)
        self._use = itertools.count(1)
        self._pool_lock = threading.Lock()
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
            progress("hierarchy: ordering (METIS)", 0, 1)
        xadj, adjncy = undirected_simple_graph(n, graph.tail, graph.head)
        order = nested_dissection_order(n, graph.tail, graph.head, adjacency=(xadj, adjncy))
        del xadj, adjncy  # the contraction rebuilds them from the ordered graph
        t1 = time.perf_counter()
        if progress:
            progress("hierarchy: ordering (METIS)", 1, 1)
            progress("hierarchy: contraction", 0, 1)
        xadj, adjncy = undirected_simple_graph(n, graph.tail, graph.head)
        arrays = contract(n, graph.tail, graph.head, order, xadj, adjncy)
        del xadj, adjncy
        arrays.update(partition(arrays, parallel_parts))
        t2 = time.perf_counter()
        if progress:
            progress("hierarchy: contraction", 1, 1)
        meta = {"order_seconds": round(t1 - t0, 4), "contract_seconds": round(t2 - t1, 4),
                "undirected_arcs": int(arrays["undirected_arcs"]), "source": "built"}
        return cls(arrays, n_nodes=n, n_edges=m, key=graph_key(graph), meta=meta)

    @classmethod
    def load_or_build(cls, graph: Any, *, cache_dir: str | Path | None = None,
                      progress: ProgressFn | None = None) -> CCHIndex:
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
        index = cls.build(graph, progress=progress)
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
                           str(self.n_edges), str(self.meta.get("undirected_arcs", -1))])
        np.savez(tmp, header=header, **{k: getattr(self, k) for k in TOPOLOGY_FIELDS})
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> CCHIndex:
        t0 = time.perf_counter()
        with np.load(path, allow_pickle=False) as data:
            fmt, code, key, n, m, und = (str(x) for x in data["header"])
            if fmt != CCH_FORMAT or code != CODE_VERSION:
                raise ValueError(f"{path}: CCH format {fmt}/{code}, expected "
                                 f"{CCH_FORMAT}/{CODE_VERSION}")
            arrays = {k: data[k] for k in TOPOLOGY_FIELDS}
        return cls(arrays, n_nodes=int(n), n_edges=int(m), key=key,
                   meta={"source": str(path), "undirected_arcs": int(und),
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

    # A metric's two arrays are 12 bytes per arc (141 MB on New York's turn graph).
    # Allocating them afresh for every update costs page faults, and copying them costs
    # ~20 ms: far more than a partial customization. So metric buffers are recycled once
    # nobody holds their metric (nor an array of it), and a recycled buffer that holds an
    # ancestor of the metric being updated is brought up to date by copying only the arcs
    # written since (``_history``: per metric, its parent and the arcs it rewrote).
    def _acquire(self, key: Any, source: Metric | None
                 ) -> tuple[_Buffer, list[np.ndarray] | None]:
        """A buffer to write a metric into, and the arc lists to copy from ``source`` to
        bring it to ``source`` (``None``: its content is unrelated)."""
        with self._pool_lock:
            free = [b for b in self._buffers if b.free()]
            chosen: _Buffer | None = None
            lists: list[np.ndarray] | None = None
            if source is not None and free:
                held = {b.uid: b for b in free if b.uid is not None}
                path: list[np.ndarray] = []
                uid: int | None = source.uid
                for _ in range(len(self._history) + 1):  # source's ancestry
                    if uid in held:
                        chosen, lists = held[uid], path
                        break
                    parent, arcs = self._history.get(uid, (None, None))  # type: ignore[arg-type]
                    if arcs is None:
                        break
                    path.append(arcs)
                    uid = parent
            if chosen is None and free:
                same = [b for b in free if b.key == key]
                if same:
                    chosen = max(same, key=lambda b: b.used)
                elif len(self._buffers) >= self.MAX_BUFFERS:
                    chosen = min(free, key=lambda b: b.used)  # another lineage's spare
            if chosen is None:
                chosen = _Buffer(self.n_arcs)
                self._buffers.append(chosen)
            chosen.busy = True
            chosen.used = next(self._use)
            # keep a few free buffers, the most recently used
            spare = sorted((b for b in self._buffers if b.free()), key=lambda b: -b.used)
            for b in spare[self.MAX_FREE_BUFFERS:]:
                self._buffers.remove(b)
        return chosen, lists

    def _publish(self, buf: _Buffer, w: np.ndarray, key: Any, state: int,
                 info: dict[str, Any], parent: int | None, written: np.ndarray | None
                 ) -> Metric:
        W = np.frombuffer(memoryview(buf.W).toreadonly(), dtype=np.float64)
        V = np.frombuffer(memoryview(buf.V).toreadonly(), dtype=np.int32)
        with self._pool_lock:
            uid = next(self._uids)
            self._history[uid] = (parent, written)
            while len(self._history) > 64:
                self._history.pop(next(iter(self._history)))
            buf.uid, buf.key = uid, key
            buf.refs = (weakref.ref(W), weakref.ref(V))
            buf.busy = False
        return Metric(W, V, weights=w, key=key, state=state, topology=self.key, info=info,
                      uid=uid, n_forward=self.n_forward)

    def _abandon(self, buf: _Buffer) -> None:
        with self._pool_lock:
            buf.uid = None
            buf.busy = False

    def customize(self, weights: np.ndarray, *, key: Any = None, state: int = -1,
                  parallel: bool | None = None) -> Metric:
        """Full customization of a per-edge weight array (``inf`` = closed edge).

        ``parallel`` (default: on graphs with >= 200k arcs when numba has >= 2 threads)
        customizes independent subtrees of the elimination tree on separate threads.
        """
        t0 = time.perf_counter()
        w = self._check_weights(weights)
        buf, _ = self._acquire(key, None)
        try:
            mode = self._full(w, buf, parallel)
        except BaseException:
            self._abandon(buf)
            raise
        info = {"mode": mode, "seconds": time.perf_counter() - t0}
        return self._publish(buf, w, key, state, info, None, None)

    def _full(self, w: np.ndarray, buf: _Buffer, parallel: bool | None) -> str:
        """Full customization of ``w`` into ``buf``; returns the mode."""
        parts = len(self.part_first) - 1
        if parallel is None:
            parallel = self.n_arcs >= 200_000 and _threads() >= 2
        n = self.n_nodes
        args = (w, self.f_first, self.b_first, self.head, self.bin_first, self.binp,
                self.fin_first, self.finp, self.in_first, self.in_edge, self.in_slot,
                buf.W, buf.V)
        if parallel and parts >= 2:
            from engine.kernels.matrix import _PARALLEL_LOCK

            marks = np.empty((2, parts, n), dtype=np.uint32)
            with _PARALLEL_LOCK:  # numba's workqueue layer is not re-entrant
                C._customize_parallel(*args, marks[0], marks[1], self.part_first,
                                      self.part_nodes, self.top_nodes)
            return f"full, {parts} subtree groups in parallel"
        marks = np.empty((2, n), dtype=np.uint32)
        C._customize(*args, marks[0], marks[1])
        return "full"

    def update(self, metric: Metric, weights: np.ndarray, changed_edges: np.ndarray, *,
               key: Any = None, state: int = -1, budget: int | None = None) -> Metric:
        """Partial customization: a new :class:`Metric` for ``weights``, which must equal the
        weights ``metric`` was customized from except (at most) on ``changed_edges``.

        Only the arcs of the changed edges, and the arcs whose value may depend on an arc
        that changed, are recomputed (bottom-up, in rank order); the result is identical to
        a full customization of ``weights``. ``metric`` is not modified. ``budget``: past
        this many recomputed arcs, give up and customize in full (the same result; the
        info's mode says so).
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
        key = metric.key if key is None else key
        t1 = time.perf_counter()
        buf, lists = self._acquire(key, metric)
        try:
            if lists is None:
                np.copyto(buf.W, metric.W)
                np.copyto(buf.V, metric.V)
                copied = self.n_arcs
            else:
                copied = 0
                for arcs in lists:
                    C._copy_arcs(arcs, metric.W, metric.V, buf.W, buf.V)
                    copied += len(arcs)
            t2 = time.perf_counter()
            with self._update_lock:
                sc = self._scratch()
                args = (w, changed, self.edge_slot, self.f_first, self.b_first, self.head,
                        self.bin_first, self.binp, self.fin_first, self.finp, self.in_first,
                        self.in_edge, self.in_slot, self.lo, buf.W, buf.V, *sc)
                limit = self.n_arcs + 1 if budget is None else int(budget)
                parallel = (len(self.part_first) > 2 and len(changed) >= self.PARALLEL_UPDATE
                            and _threads() >= 2)
                if parallel:
                    from engine.kernels.matrix import _PARALLEL_LOCK

                    with _PARALLEL_LOCK:
                        done, n_changed = C._partial_parallel(*args, self._part_of,
                                                              self._written_at, limit)
                else:
                    done, n_changed = C._partial(*args, self._no_parts, self._written_at,
                                                 limit)
                if done < 0:  # gave up: clean the flags it left
                    sc[0][:] = 0
                    sc[1][:] = 0
                else:
                    written = sc[-2][:done].copy()
        except BaseException:
            self._abandon(buf)
            raise
        if done < 0:
            try:
                mode = self._full(w, buf, None)
            except BaseException:
                self._abandon(buf)
                raise
            info = {"mode": f"{mode} (partial gave up past {budget} arcs)",
                    "changed_edges": len(changed), "seconds": time.perf_counter() - t0}
            return self._publish(buf, w, key, state, info, None, None)
        t3 = time.perf_counter()
        info = {"mode": "partial", "changed_edges": len(changed), "arcs_recomputed": int(done),
                "arcs_changed": int(n_changed), "arcs_copied": copied, "seconds": t3 - t0,
                "check_seconds": t1 - t0, "copy_seconds": t2 - t1, "kernel_seconds": t3 - t2}
        return self._publish(buf, w, key, state, info, metric.uid, written)

    def _scratch(self) -> tuple[np.ndarray, ...]:
        """Work arrays of partial customization (one row per subtree group), kept between
        calls (``_update_lock``); the kernels leave the flags 0 and the maps -1."""
        if self._scratch_arrays is None:
            k, n, d = self.n_arcs, self.n_nodes, max(1, self.max_degree)
            rows = max(1, len(self.part_first) - 1)
            top_arcs = int(self._written_at[1]) if len(self._written_at) > 1 else k
            self._scratch_arrays = (
                np.zeros(k, dtype=np.uint8), np.zeros(n, dtype=np.uint8),
                np.empty((rows + 1, max(1, n)), dtype=np.int64),
                np.full((rows, n), -1, dtype=np.int64), np.empty((rows, d), dtype=np.int64),
                np.empty((rows, d)), np.empty((rows, d), dtype=np.int64),
                np.full((rows, d), -1, dtype=np.int64), np.zeros((rows, d), dtype=np.uint8),
                np.empty(k, dtype=np.uint32), np.empty((rows, top_arcs + 1), dtype=np.int64))
        return self._scratch_arrays

    def _check_metric(self, metric: Metric) -> None:
        if not isinstance(metric, Metric):
            raise ValueError(f"expected a Metric, got {type(metric).__name__}")
        if metric.topology != self.key or len(metric.W) != self.n_arcs:
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
                self._firsts, self.head, self._pr2, metric.W, metric.V, seeds, seed_cost,
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
        S._query_many(self.f_first, self.b_first, self.head, self.parent, self.rank, metric.W,
                      sf, sn, sc, tf, tn, tc, *self.workspace().search_arrays(), out)
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
        S._many_to_many(self.f_first, self.b_first, self.head, self.parent, self.rank,
                        metric.W, sf, sn, sc, tf, tn, tc, *ws.search_arrays(),
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


def _threads() -> int:
    import numba

    return numba.get_num_threads()


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
    (``overlay.changed_arcs_since``), else a full customization. The index is over the turn
    graph: the customized weights are ``Weights.arc``. Arrays without an overlay
    state (``W.state < 0``: weights given by the caller) are customized in full and kept in a
    small cache keyed by the array's identity.
    """

    def __init__(self, index: CCHIndex, overlay: Any = None, *, max_adhoc: int = 4,
                 partial_limit: float = 0.002, partial_min: int = 64,
                 partial_budget: float = 0.005) -> None:
        self.index = index
        self.overlay = overlay
        self.max_adhoc = max_adhoc
        #: above this share of changed edges (and more than ``partial_min`` edges) a full
        #: customization is cheaper. New York's turn graph (full: ~160-200 ms on 2 threads):
        #: closing 100 random roads (~315 turn arcs) changes ~13k shortcuts, ~25 ms;
        #: 1,000 random roads ~270 ms; 1,000 roads around one junction ~16 ms: the cost
        #: follows the shortcuts changed, which the edges do not predict well, so ...
        self.partial_limit = partial_limit
        self.partial_min = partial_min
        #: ... a partial customization also gives up (and customizes in full) once it has
        #: recomputed this share of the arcs (at least 10,000): ~59k arcs, ~90 ms on NY
        self.partial_budget = max(10_000, int(partial_budget * index.n_arcs))
        self._lock = threading.Lock()
        self._current: dict[tuple, Metric] = {}
        self._adhoc: dict[int, tuple[np.ndarray, Metric]] = {}

    def get(self, w: Any) -> Metric:
        values = w.arc
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
                changed = self.overlay.changed_arcs_since(min(cur.state, w.state))
            if changed is not None and (len(changed) <= self.partial_min or
                                        len(changed) <= self.partial_limit * len(values)):
                new = self.index.update(cur, values, changed, key=key, state=w.state,
                                        budget=self.partial_budget)
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
    index.update(metric, w * 3, np.arange(7), budget=0)  # gives up: the full fallback
    # the kernels the small graph does not reach: parallel customization, delta copies
    W, V = np.empty(index.n_arcs), np.empty(index.n_arcs, dtype=np.int32)
    from engine.kernels.matrix import _PARALLEL_LOCK

    marks = np.empty((2, 2, index.n_nodes), dtype=np.uint32)
    with _PARALLEL_LOCK:
        C._customize_parallel(w, index.f_first, index.b_first, index.head, index.bin_first,
                              index.binp, index.fin_first, index.finp, index.in_first,
                              index.in_edge, index.in_slot, W, V, marks[0], marks[1],
                              np.zeros(3, dtype=np.int32), np.zeros(0, dtype=np.int32),
                              np.arange(4, dtype=np.int32))
    C._copy_arcs(np.arange(index.n_arcs, dtype=np.uint32), metric.W, metric.V, W, V)
    # parallel partial customization: the 4 nodes as two one-node groups and a top
    part_of = np.array([0, 1, -1, -1], dtype=np.int8)
    sc = index._scratch()
    n, d = index.n_nodes, max(1, index.max_degree)
    rows = (np.zeros(index.n_arcs, np.uint8), np.zeros(n, np.uint8),
            np.empty((3, n), np.int64), np.full((2, n), -1, np.int64),
            np.empty((2, d), np.int64), np.empty((2, d)), np.empty((2, d), np.int64),
            np.full((2, d), -1, np.int64), np.zeros((2, d), np.uint8),
            np.empty(3 * index.n_arcs, np.uint32), np.empty((2, index.n_arcs + 1), np.int64))
    with _PARALLEL_LOCK:
        C._partial_parallel(w * 3, np.arange(7, dtype=np.int32), index.edge_slot,
                            index.f_first, index.b_first, index.head, index.bin_first,
                            index.binp, index.fin_first, index.finp, index.in_first,
                            index.in_edge, index.in_slot, index.lo, W, V, *rows, part_of,
                            np.array([0, index.n_arcs, 2 * index.n_arcs], dtype=np.int64),
                            index.n_arcs + 1)
    del sc
    one = np.ones(1)
    s, t = np.array([0], dtype=np.int32), np.array([3], dtype=np.int32)
    index.query(metric2, s, one, t, one)
    idx = np.array([0, 1], dtype=np.int32)
    index.many_to_many(metric2, idx, s, one, idx, t, one)
    index.distances(metric2, idx, s, one, idx, t, one)
