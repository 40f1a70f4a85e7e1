"""Time-conditional turn restrictions (``restriction:conditional``, ``day_on`` / ``hour_on``):
which hold at a given time, in the map's local time zone, and the turn costs they give."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

from engine.profiles import TurnCosts


class TurnConditions:
    """Time-conditional turn restrictions (``restriction:conditional``, ``day_on`` /
    ``hour_on``): which conditions hold at a given time, in the map's local time zone.

    Owned by a :class:`TrafficOverlay`, which asks at every state advance which arcs
    changed, so conditional restrictions start and stop by themselves like validity windows.
    """

    def __init__(self, turns: Any, timezone: str | None) -> None:
        from zoneinfo import ZoneInfo

        self.turns = turns
        self.conditions = [str(c) for c in turns.conditions]
        self.active = np.zeros(len(self.conditions), dtype=bool)
        try:
            self.tz = ZoneInfo(timezone) if timezone else UTC
        except (KeyError, ValueError):
            self.tz = UTC
        self._minute: datetime | None = None

    def advance(self, at: datetime) -> np.ndarray:
        """Re-evaluate at ``at``; return the arcs whose conditions changed."""
        if not self.conditions:
            return np.zeros(0, dtype=np.int64)
        minute = at.replace(second=0, microsecond=0)
        if minute == self._minute:
            return np.zeros(0, dtype=np.int64)
        self._minute = minute
        from engine.extract.restrictions import condition_active

        local = at.astimezone(self.tz).replace(tzinfo=None)
        now = np.array([condition_active(c, local) for c in self.conditions], dtype=bool)
        flipped = np.flatnonzero(now != self.active)
        self.active = now
        if not len(flipped):
            return np.zeros(0, dtype=np.int64)
        hit = np.isin(self.turns.cond_index, flipped)
        return np.unique(self.turns.cond_arc[hit]).astype(np.int64)

    def apply(self, tc: TurnCosts, metric: str) -> np.ndarray:
        """The turn costs of ``tc`` for ``metric`` with the conditions now in force."""
        base = tc.metric(metric)
        if not self.active.any():
            return base
        tg = self.turns
        hit = self.active[tg.cond_index] & ((tg.cond_classes & np.uint8(tc.classes)) != 0)
        if not hit.any():
            return base
        arcs = tg.cond_arc[hit]
        out = base.copy()
        if tc.restricted_penalty_s is None:
            out[arcs] = np.inf
        elif metric == "time":
            out[arcs] = base[arcs] + tc.restricted_penalty_s
        return out
