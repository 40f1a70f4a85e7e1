"""Customized metrics (:class:`CCHMetric`) and the pool of recycled buffers behind them: who
owns which array, and when a buffer may be written again.

Ownership, in short:

* the **pool** (:class:`MetricBufferPool`, one per index) owns every :class:`MetricBuffer`,
  the only writable arc arrays; a buffer is written by exactly one customization, between
  :meth:`MetricBufferPool.writing` handing it out (``busy``) and
  :meth:`MetricBufferPool.publish` turning it into a metric;
* a **metric** owns nothing writable: its ``W`` / ``V`` are read-only arrays over a
  read-only memoryview of the buffer's arrays (``np.frombuffer``). Numpy makes every view
  taken from them (slices, reshapes, ``np.asarray``) keep *that* array as its ``base``, so
  ``W`` / ``V`` stay alive as long as the metric or anything derived from it does;
* the pool holds only **weak references** to a published metric's ``W`` / ``V``: once both
  are dead (and the buffer is not ``busy``) nobody can read the buffer any more and it is
  recycled. Nothing depends on reference counts, only on the weakref protocol.

A metric's two arrays are 12 bytes per arc (141 MB on New York's turn graph). Allocating
them afresh for every update costs page faults, and copying them costs ~20 ms: far more than
a partial customization. So a recycled buffer that holds an ancestor of the metric being
updated is brought up to date by copying only the arcs written since (the pool keeps, per
metric, its parent and the arcs it rewrote).
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from numba import njit

from engine.cch._util import Float64Array, Int32Array, UInt32Array


@dataclass(frozen=True, eq=False)
class CCHMetric:
    """An immutable customized metric: the arc weights (and middle nodes) for one weight
    array, made by :meth:`engine.cch.CCHIndex.customize` or :meth:`~engine.cch.CCHIndex.update`.

    ``W[a]`` is the weight of arc ``a``, ``V[a]`` its via (see :mod:`engine.cch.customize`);
    the first ``n_forward`` arcs are the forward (upward) arcs, the rest the backward ones.
    Queries only read it, so a query in flight keeps a consistent metric while an update
    builds the next one from it. ``W`` / ``V`` are read-only views of a buffer the index
    recycles once nobody holds them any more (not the metric, not an array or a view taken
    from it): see the module docstring.
    """

    #: float64[k], read-only: the weight of every arc (``inf``: no path)
    W: Float64Array
    #: int32[k], read-only: the via of every arc (middle node, ``-2 - edge`` or -1)
    V: Int32Array
    #: float64[m], read-only: the per-edge weights it was customized from
    weights: Float64Array = field(repr=False)
    #: the caller's label (:class:`engine.cch.CCHMetrics`: ``(profile, metric, options)``);
    #: buffers are preferably recycled within one key
    key: Any = None
    #: overlay state counter of the weights (``Weights.state``), -1 if unknown
    state: int = -1
    #: :attr:`engine.cch.topology.CCHTopology.key` of the topology it was customized on
    topology_key: str = ""
    #: how it was made: ``full`` or ``partial`` (with the arcs recomputed / changed) and seconds
    info: dict[str, Any] = field(default_factory=dict, compare=False)
    #: identity within its index (lineage of partial updates)
    uid: int = 0
    n_forward: int = 0

    @property
    def up(self) -> Float64Array:
        """Forward arcs' weights (cost from the lower end to the upper end)."""
        return self.W[:self.n_forward]

    @property
    def down(self) -> Float64Array:
        """Backward arcs' weights (cost from the upper end to the lower end)."""
        return self.W[self.n_forward:]

    @property
    def via_up(self) -> Int32Array:
        """Forward arcs' vias."""
        return self.V[:self.n_forward]

    @property
    def via_down(self) -> Int32Array:
        """Backward arcs' vias."""
        return self.V[self.n_forward:]

    @property
    def nbytes(self) -> int:
        return self.W.nbytes + self.V.nbytes


class MetricBuffer:
    """Writable arrays for one metric, owned by a :class:`MetricBufferPool`.

    Writable only while ``busy`` (handed out by :meth:`MetricBufferPool.writing`); once
    published, the metric's read-only views are its only readers, and the buffer is free
    again when both views are dead.
    """

    __slots__ = ("V", "W", "busy", "key", "pending", "refs", "uid", "used")

    def __init__(self, n_arcs: int) -> None:
        self.W: Float64Array = np.empty(n_arcs)
        self.V: Int32Array = np.empty(n_arcs, dtype=np.int32)
        #: being written (not free, whatever the references say)
        self.busy = False
        #: the key of the last metric published from it
        self.key: Any = None
        #: the uid of the metric whose values it holds (None: unknown content)
        self.uid: int | None = None
        #: weak references to the published metric's ``W`` and ``V``
        self.refs: tuple[weakref.ref[np.ndarray], ...] = ()
        #: recency (larger: used more recently)
        self.used = 0
        #: while being written for an update: the arc lists to copy from the source metric
        #: to bring it to the source (None: copy everything)
        self.pending: list[UInt32Array] | None = None

    def free(self) -> bool:
        return not self.busy and all(r() is None for r in self.refs)


class _Lineage(NamedTuple):
    """How a metric was made from its parent: the parent's uid and the arcs rewritten (both
    None for a full customization)."""

    parent: int | None
    written: UInt32Array | None


@njit(cache=True, nogil=True)
def _copy_arcs(arcs: UInt32Array, W: Float64Array, V: Int32Array, W2: Float64Array,
               V2: Int32Array) -> None:
    """Bring a metric's arrays (``W2``, ``V2``) up to date on ``arcs`` only."""
    for i in range(len(arcs)):
        a = arcs[i]
        W2[a] = W[a]
        V2[a] = V[a]


class MetricBufferPool:
    """The metric buffers of one index, recycled (see the module docstring). Thread-safe."""

    #: metric buffers kept for reuse (a metric on New York's turn graph is 141 MB): one
    #: spare per live lineage (car, ambulance) makes each update copy only the arcs the
    #: previous update wrote; past MAX_BUFFERS, another lineage's spare is taken over
    MAX_FREE_BUFFERS = 3
    MAX_BUFFERS = 5
    #: metrics whose lineage is remembered (older ones: their descendants copy in full)
    MAX_LINEAGE = 64

    def __init__(self, n_arcs: int, n_forward: int, topology_key: str) -> None:
        self.n_arcs = n_arcs
        self.n_forward = n_forward
        self.topology_key = topology_key
        self._buffers: list[MetricBuffer] = []
        self._lineage: dict[int, _Lineage] = {}
        self._uids = itertools.count(1)
        self._use = itertools.count(1)
        self._lock = threading.Lock()

    @contextmanager
    def writing(self, key: Any, source: CCHMetric | None) -> Iterator[MetricBuffer]:
        """A buffer to write a metric into, ``busy`` until :meth:`publish`; released if
        the block raises (or ends without publishing). For an update, ``source`` is the
        metric it starts from: :meth:`bring_to` then copies what differs."""
        buf = self._acquire(key, source)
        try:
            yield buf
        finally:
            if buf.busy:  # not published: its content is unknown
                with self._lock:
                    buf.uid = None
                    buf.pending = None
                    buf.busy = False

    def bring_to(self, buf: MetricBuffer, source: CCHMetric) -> int:
        """Make ``buf`` (from :meth:`writing`) equal to ``source``; returns the arcs copied
        (all of them unless the buffer held an ancestor of ``source``)."""
        if buf.pending is None:
            np.copyto(buf.W, source.W)
            np.copyto(buf.V, source.V)
            return self.n_arcs
        copied = 0
        for arcs in buf.pending:
            _copy_arcs(arcs, source.W, source.V, buf.W, buf.V)
            copied += len(arcs)
        buf.pending = None
        return copied

    def publish(self, buf: MetricBuffer, weights: Float64Array, *, key: Any, state: int,
                info: dict[str, Any], parent: CCHMetric | None = None,
                written: UInt32Array | None = None) -> CCHMetric:
        """The metric of the values written into ``buf``: read-only views, a new uid, and
        its lineage (``parent`` and the arcs ``written`` since it, for a partial update)."""
        W = np.frombuffer(buf.W.data.toreadonly(), dtype=np.float64)
        V = np.frombuffer(buf.V.data.toreadonly(), dtype=np.int32)
        with self._lock:
            uid = next(self._uids)
            self._lineage[uid] = _Lineage(parent.uid if parent is not None else None, written)
            while len(self._lineage) > self.MAX_LINEAGE:
                self._lineage.pop(next(iter(self._lineage)))
            buf.uid, buf.key = uid, key
            buf.refs = (weakref.ref(W), weakref.ref(V))
            buf.pending = None
            buf.busy = False
        return CCHMetric(W, V, weights=weights, key=key, state=state,
                         topology_key=self.topology_key, info=info, uid=uid,
                         n_forward=self.n_forward)

    def _acquire(self, key: Any, source: CCHMetric | None) -> MetricBuffer:
        """A free buffer (preferably one holding an ancestor of ``source``, else one of the
        same key) or a new one, marked busy; ``pending`` says what to copy from ``source``."""
        with self._lock:
            free = [b for b in self._buffers if b.free()]
            chosen: MetricBuffer | None = None
            pending: list[UInt32Array] | None = None
            if source is not None and free:
                held = {b.uid: b for b in free if b.uid is not None}
                path: list[UInt32Array] = []
                uid: int | None = source.uid
                while uid is not None and len(path) <= len(self._lineage):  # the ancestry
                    if uid in held:
                        chosen, pending = held[uid], path
                        break
                    step = self._lineage.get(uid)
                    if step is None or step.written is None:
                        break
                    path.append(step.written)
                    uid = step.parent
            if chosen is None and free:
                same = [b for b in free if b.key == key]
                if same:
                    chosen = max(same, key=lambda b: b.used)
                elif len(self._buffers) >= self.MAX_BUFFERS:
                    chosen = min(free, key=lambda b: b.used)  # another lineage's spare
            if chosen is None:
                chosen = MetricBuffer(self.n_arcs)
                self._buffers.append(chosen)
            chosen.busy = True
            chosen.pending = pending
            chosen.used = next(self._use)
            # keep a few free buffers, the most recently used
            spare = sorted((b for b in self._buffers if b.free()), key=lambda b: -b.used)
            for b in spare[self.MAX_FREE_BUFFERS:]:
                self._buffers.remove(b)
        return chosen
