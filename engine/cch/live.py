"""Customized metrics for the live-traffic overlay's weight snapshots (:class:`CCHMetrics`):
the cached one, a partial update of it, or a full customization."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from engine.cch.index import CCHIndex
from engine.cch.metric import CCHMetric

if TYPE_CHECKING:
    from engine.profiles import Weights


class ChangedArcs(Protocol):
    """What :class:`CCHMetrics` needs from the overlay (:class:`engine.traffic.TrafficOverlay`)."""

    def changed_arcs_since(self, state: int, /) -> np.ndarray | None:
        """Turn arcs whose weight may differ from overlay state ``state`` (None: unknown)."""
        ...


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

    def __init__(self, index: CCHIndex, overlay: ChangedArcs | None = None, *,
                 max_adhoc: int = 4, partial_limit: float = 0.002, partial_min: int = 64,
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
        self._current: dict[tuple[Any, ...], CCHMetric] = {}
        self._adhoc: dict[int, tuple[np.ndarray, CCHMetric]] = {}

    def get(self, w: Weights) -> CCHMetric:
        """The metric of the weight snapshot ``w`` (see the class docstring)."""
        values = w.arc
        if w.state < 0 or w.source != getattr(self.overlay, "uid", w.source):
            # weights of no overlay, or of another overlay than this one (whose states
            # mean nothing here): customized for the array itself
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
            if cur is not None and changed is not None and (
                    len(changed) <= self.partial_min
                    or len(changed) <= self.partial_limit * len(values)):
                new = self.index.update(cur, values, changed, key=key, state=w.state,
                                        budget=self.partial_budget)
            else:
                new = self.index.customize(values, key=key, state=w.state)
            if cur is None or w.state >= cur.state:
                self._current[key] = new
            return new

    def _get_adhoc(self, values: np.ndarray) -> CCHMetric:
        with self._lock:
            hit = self._adhoc.get(id(values))
            if hit is not None and hit[0] is values:
                return hit[1]
            metric = self.index.customize(values)
            if len(self._adhoc) >= self.max_adhoc:
                self._adhoc.pop(next(iter(self._adhoc)))
            self._adhoc[id(values)] = (values, metric)
            return metric
