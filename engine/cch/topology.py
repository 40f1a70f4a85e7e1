"""The weight-independent half of a CCH as one frozen object, :class:`CCHTopology`: built
once per graph (order, contraction, subtree groups), saved and loaded with the graph cache.

Everything is in *rank space* (node ``r`` of the hierarchy is the graph node ``order[r]``);
:mod:`engine.cch.contract` explains the arc layout and the triangle lists. The arrays are
read-only and owned by the topology; customization and queries only read them.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from engine.cch._util import Int32Array, UInt32Array
from engine.cch.contract import contract, node_work
from engine.cch.order import nested_dissection_order, undirected_simple_graph
from engine.cch.partition import partition

#: Bump when the cached arrays change meaning.
CCH_FORMAT = "gyrophare-cch-2"

#: Arrays of a topology, as stored in its cache file (the fields of :class:`CCHTopology`
#: that are arrays, in this order).
TOPOLOGY_FIELDS: tuple[str, ...] = (
    "order", "rank", "parent", "lo", "f_first", "b_first", "head", "bin_first", "binp",
    "fin_first", "finp", "edge_slot", "in_first", "in_edge", "in_slot", "part_first",
    "part_nodes", "top_nodes",
)

#: ``progress(stage, done, total)``, as in :func:`engine.io.load_graph`
ProgressFn = Callable[[str, int, int | None], None]


def _code_version() -> str:
    """Hash of the code that computes the cached arrays: a change rebuilds the caches."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256(CCH_FORMAT.encode())
    for name in ("_util.py", "order.py", "contract.py", "partition.py", "topology.py"):
        h.update((root / name).read_bytes())
    return h.hexdigest()[:10]


CODE_VERSION = _code_version()


class GraphArrays(Protocol):
    """What a CCH needs from a graph (:class:`engine.turns.TurnGraph`,
    :class:`engine.graph.RoadGraph`): its size and its edges ``tail[e] -> head[e]``."""

    @property
    def n_nodes(self) -> int: ...

    @property
    def n_edges(self) -> int: ...

    @property
    def tail(self) -> np.ndarray: ...

    @property
    def head(self) -> np.ndarray: ...

    @property
    def first_out(self) -> np.ndarray: ...


def graph_key(graph: GraphArrays) -> str:
    """Hash of the graph's topology (node count, ``first_out``, ``head``): the CCH depends on
    nothing else."""
    h = hashlib.sha256(str(graph.n_nodes).encode())
    h.update(np.ascontiguousarray(graph.first_out, dtype=np.int32).tobytes())
    h.update(np.ascontiguousarray(graph.head, dtype=np.int32).tobytes())
    return h.hexdigest()[:20]


@dataclass(frozen=True, eq=False)
class CCHTopology:
    """Node order, directed arcs, elimination tree, triangle lists, input-edge map and
    subtree groups of one graph: everything of a CCH that does not depend on weights.

    Sizes: ``n`` nodes, ``m`` input edges, ``k`` directed arcs of which the first ``kf`` are
    forward (upward) arcs. A forward arc ``(x, z)``, ``x < z``, weighs the cost ``x -> z``, a
    backward arc ``(x, z)`` the cost ``z -> x``. Every array is C-contiguous, read-only and
    of the dtype given (the kernels are compiled for these dtypes; unsigned indices let
    numba drop negative-index code in the customization loops).
    """

    #: int32[n]: the graph node of every rank (METIS nested dissection: separators last)
    order: Int32Array
    #: int32[n]: the rank of every graph node (the inverse of ``order``)
    rank: Int32Array
    #: int32[n]: elimination-tree parent of every rank (its lowest upper neighbour), -1 at a
    #: root; a row of :attr:`parent_rank`
    parent: Int32Array
    #: uint32[n]: lowest rank in each node's elimination subtree (its lower neighbours have
    #: ranks in ``[lo[x], x)``)
    lo: UInt32Array
    #: uint32[n+1]: forward arcs of ``x`` are ``f_first[x]:f_first[x+1]`` (by head), ids
    #: ``0..kf-1``; a row of :attr:`firsts`
    f_first: UInt32Array
    #: uint32[n+1]: backward arcs of ``x`` are ``b_first[x]:b_first[x+1]`` (by head), ids
    #: ``kf..k-1``; a row of :attr:`firsts`
    b_first: UInt32Array
    #: uint32[k]: upper end of every arc
    head: UInt32Array
    #: uint32[n+1]: rows ``bin_first[x]:bin_first[x+1]`` of :attr:`binp` belong to ``x``
    bin_first: UInt32Array
    #: uint32[k-kf, 4]: per incoming backward arc ``(y, x)`` of ``x`` (increasing ``y``):
    #: ``(arc (y, x), y, first, end)`` where ``first:end`` are the forward arcs ``(y, z)``,
    #: ``z > x``: the triangles ``x -> y -> z`` of the forward arcs ``(x, z)``
    binp: UInt32Array
    #: uint32[n+1]: rows ``fin_first[x]:fin_first[x+1]`` of :attr:`finp` belong to ``x``
    fin_first: UInt32Array
    #: uint32[kf, 4]: per incoming forward arc ``(y, x)``: ``(arc (y, x), y, first, end)``
    #: where ``first:end`` are the backward arcs ``(y, z)``, ``z > x`` (triangles
    #: ``z -> y -> x`` of the backward arcs ``(x, z)``)
    finp: UInt32Array
    #: int32[m]: the arc of every input edge, -1 for a self-loop
    edge_slot: Int32Array
    #: uint32[n+1]: input edges of the arcs of ``x`` are ``in_first[x]:in_first[x+1]`` of
    #: :attr:`in_edge` / :attr:`in_slot`, by increasing edge id
    in_first: UInt32Array
    #: uint32[m']: input edge ids (self-loops left out)
    in_edge: UInt32Array
    #: uint32[m']: the arc of ``in_edge[i]``
    in_slot: UInt32Array
    #: int32[p+1]: subtree group ``i`` (parallel customization) is
    #: ``part_nodes[part_first[i]:part_first[i+1]]``; ``[0]``: no groups
    part_first: Int32Array
    #: int32: the nodes of every group, whole elimination subtrees, increasing rank
    part_nodes: Int32Array
    #: int32: every node in no group (their ancestors), increasing rank
    top_nodes: Int32Array
    #: nodes of the graph (= of the hierarchy)
    n_nodes: int
    #: input edges of the graph
    n_edges: int
    #: :func:`graph_key` of the graph: a metric customized on one topology is refused by
    #: another
    key: str
    #: arcs of the undirected chordal supergraph (statistics; -1 if unknown)
    undirected_arcs: int = -1
    #: how it was obtained (``source``: ``built`` or the cache file; stage seconds): not saved
    meta: dict[str, Any] = field(default_factory=dict, repr=False)
    #: uint32[2, n+1]: ``f_first`` and ``b_first`` in one array (one query-kernel argument
    #: instead of two: each array passed costs ~0.1 µs of dispatch)
    firsts: UInt32Array = field(init=False, repr=False)
    #: int32[2, n]: ``parent`` and ``rank`` in one array (same reason)
    parent_rank: Int32Array = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for name in TOPOLOGY_FIELDS:
            arr = np.ascontiguousarray(getattr(self, name))
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)
        self._check_layout()
        firsts = np.stack([self.f_first, self.b_first])
        parent_rank = np.stack([self.parent, self.rank])
        for arr, (a, b) in ((firsts, ("f_first", "b_first")),
                            (parent_rank, ("parent", "rank"))):
            arr.flags.writeable = False
            object.__setattr__(self, a, arr[0])
            object.__setattr__(self, b, arr[1])
        object.__setattr__(self, "firsts", firsts)
        object.__setattr__(self, "parent_rank", parent_rank)
        object.__setattr__(self, "meta", dict(self.meta))

    def _check_layout(self) -> None:
        """Dtypes and lengths of every array (values are trusted: they come from
        :meth:`build` or from a file :meth:`save` wrote with the same code version)."""
        n, m = self.n_nodes, self.n_edges
        if not len(self.f_first) == len(self.b_first) == len(self.in_first) == n + 1:
            raise ValueError(f"CCH arrays do not match the graph's size ({n} nodes)")
        k, kf = int(self.b_first[-1]), int(self.f_first[-1])
        n_in = int(self.in_first[-1])
        expected: dict[str, tuple[type, tuple[int, ...] | None]] = {
            "order": (np.int32, (n,)), "rank": (np.int32, (n,)), "parent": (np.int32, (n,)),
            "lo": (np.uint32, (n,)), "f_first": (np.uint32, (n + 1,)),
            "b_first": (np.uint32, (n + 1,)), "head": (np.uint32, (k,)),
            "bin_first": (np.uint32, (n + 1,)), "binp": (np.uint32, (k - kf, 4)),
            "fin_first": (np.uint32, (n + 1,)), "finp": (np.uint32, (kf, 4)),
            "edge_slot": (np.int32, (m,)), "in_first": (np.uint32, (n + 1,)),
            "in_edge": (np.uint32, (n_in,)), "in_slot": (np.uint32, (n_in,)),
            "part_first": (np.int32, None), "part_nodes": (np.int32, None),
            "top_nodes": (np.int32, None),
        }
        for name, (dtype, shape) in expected.items():
            arr = getattr(self, name)
            if arr.dtype != dtype or (shape is not None and arr.shape != shape):
                raise ValueError(f"CCH array {name}: {arr.dtype}{list(arr.shape)}, expected "
                                 f"{np.dtype(dtype)}{list(shape or ())} (graph: {n} nodes, "
                                 f"{m} edges)")
        if len(self.part_first) < 1 or len(self.part_nodes) + len(self.top_nodes) != n:
            raise ValueError("CCH subtree groups do not cover the nodes")

    # ------------------------------------------------------------------ sizes
    @property
    def n_arcs(self) -> int:
        """Directed arcs ``k``: forward, then backward."""
        return len(self.head)

    @property
    def n_forward(self) -> int:
        """Forward (upward) arcs ``kf``: arc ids ``0..kf-1``."""
        return int(self.f_first[-1])

    @property
    def n_parts(self) -> int:
        """Subtree groups customized in parallel (0: one thread)."""
        return len(self.part_first) - 1

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays (a metric adds :attr:`engine.cch.metric.CCHMetric.nbytes`)."""
        return sum(getattr(self, k).nbytes for k in TOPOLOGY_FIELDS)

    def arcs_per_node(self) -> np.ndarray:
        """int64[n]: forward plus backward arcs of every node."""
        if not self.n_nodes:
            return np.zeros(0, np.int64)
        return (np.diff(self.f_first.astype(np.int64))
                + np.diff(self.b_first.astype(np.int64)))

    # ------------------------------------------------------------------ build and cache
    @classmethod
    def build(cls, graph: GraphArrays, *, progress: ProgressFn | None = None,
              parallel_parts: int = 2) -> CCHTopology:
        """Order (METIS nested dissection) + contraction + subtree groups.

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
        c = contract(n, graph.tail, graph.head, order, xadj, adjncy)
        del xadj, adjncy
        work = node_work(c.bin_first, c.binp, c.fin_first, c.finp, c.f_first, c.b_first)
        groups = partition(c.parent, work, parallel_parts)
        t2 = time.perf_counter()
        if progress:
            progress("hierarchy: contraction", 1, 1)
        meta = {"order_seconds": round(t1 - t0, 4), "contract_seconds": round(t2 - t1, 4),
                "undirected_arcs": c.undirected_arcs, "source": "built"}
        return cls(order=c.order, rank=c.rank, parent=c.parent, lo=c.lo, f_first=c.f_first,
                   b_first=c.b_first, head=c.head, bin_first=c.bin_first, binp=c.binp,
                   fin_first=c.fin_first, finp=c.finp, edge_slot=c.edge_slot,
                   in_first=c.in_first, in_edge=c.in_edge, in_slot=c.in_slot,
                   part_first=groups.part_first, part_nodes=groups.part_nodes,
                   top_nodes=groups.top_nodes, n_nodes=n, n_edges=m, key=graph_key(graph),
                   undirected_arcs=c.undirected_arcs, meta=meta)

    @classmethod
    def load_or_build(cls, graph: GraphArrays, *, cache_dir: str | Path | None = None,
                      progress: ProgressFn | None = None) -> CCHTopology:
        """The cached topology of this graph (``cch-<graph key>-<code version>.npz`` in the
        graph cache directory), built and saved when missing or stale."""
        from engine.io import default_cache_dir

        root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        key = graph_key(graph)
        path = root / f"cch-{key}-{CODE_VERSION}.npz"
        if path.is_file():
            try:
                topology = cls.load(path)
                if topology.key == key and topology.n_edges == graph.n_edges:
                    return topology
            except (OSError, ValueError, KeyError):
                pass  # rebuilt below
        topology = cls.build(graph, progress=progress)
        try:
            topology.save(path)
        except OSError:
            pass  # a read-only cache directory only costs the rebuild next time
        return topology

    def save(self, path: str | Path) -> Path:
        """Write the arrays and a header (format, code version, key, sizes) to ``path``
        (``.npz``; written to a temporary file, then renamed)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
        header = np.array([CCH_FORMAT, CODE_VERSION, self.key, str(self.n_nodes),
                           str(self.n_edges), str(self.undirected_arcs)])
        np.savez(tmp, header=header, **{k: getattr(self, k) for k in TOPOLOGY_FIELDS})
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> CCHTopology:
        """A topology :meth:`save` wrote; ``ValueError`` if another format or code version
        wrote it, or its arrays do not fit together."""
        t0 = time.perf_counter()
        with np.load(path, allow_pickle=False) as data:
            fmt, code, key, n, m, und = (str(x) for x in data["header"])
            if fmt != CCH_FORMAT or code != CODE_VERSION:
                raise ValueError(f"{path}: CCH format {fmt}/{code}, expected "
                                 f"{CCH_FORMAT}/{CODE_VERSION}")
            arrays = {k: data[k] for k in TOPOLOGY_FIELDS}
        meta = {"source": str(path), "undirected_arcs": int(und),
                "load_seconds": round(time.perf_counter() - t0, 4)}
        return cls(**arrays, n_nodes=int(n), n_edges=int(m), key=key,
                   undirected_arcs=int(und), meta=meta)
