"""The saturation policy: how occupancy and EDXL-HAVE statuses become levels, with hysteresis
so that a level does not flap on every bed freed or taken, and when a status goes stale."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from engine.errors import HospitalDataError
from engine.hospitals.vocabulary import EDStatus, OffloadStatus, SaturationLevel

__all__ = ["DEFAULT_EN_ROUTE_GRACE", "SaturationPolicy"]

_EPS = 1e-9  # occupancy comparisons: 17/20 must count as 0.85 whatever the float rounding
_DEFAULT_ED_FLOOR = MappingProxyType({EDStatus.CLOSED: SaturationLevel.CLOSED,
                                      EDStatus.ADVISORY: SaturationLevel.TENSION})
_DEFAULT_OFFLOAD_FLOOR = MappingProxyType({OffloadStatus.DELAYED: SaturationLevel.TENSION})
#: Default :attr:`SaturationPolicy.en_route_grace`: 30 minutes after the ETA.
DEFAULT_EN_ROUTE_GRACE = timedelta(minutes=30)


@dataclass(frozen=True)
class SaturationPolicy:
    """How occupancy and statuses become levels.

    Parameters
    ----------
    tension, saturated
        Occupancy thresholds (fractions of the baseline, en-route ambulances included). At or
        above ``saturated`` a bed type is saturated; at or above ``tension`` it is in tension.
    margin
        Hysteresis: to go *down* from a level, occupancy must fall *below* that level's
        threshold minus ``margin``. Going up uses the plain thresholds. Without it, one bed freed
        and taken again would send two signals to every screen in the command centre.
    stale_after
        A hospital whose status was not reported for this long is flagged stale (a flag on its
        level, not a level: an old "normal" is still the best information there is).
    ed_floor, offload_floor
        Minimum overall level implied by the EDXL-HAVE statuses: ED ``Closed`` (requesting
        re-route of EMS traffic) -> closed, ``Advisory`` -> at least tension; offload
        ``Delayed`` (crews wait at the door) -> at least tension.
    en_route_grace
        An ambulance registered en route and neither reported arrived nor cancelled by its
        ETA plus this grace is no longer counted (its registration expires): a crew that
        forgot to press "arrived" must not hold a bed on the board forever.
    """

    tension: float = 0.85
    saturated: float = 0.95
    margin: float = 0.05
    stale_after: timedelta = timedelta(minutes=30)
    ed_floor: Mapping[EDStatus, SaturationLevel] = field(
        default_factory=lambda: _DEFAULT_ED_FLOOR)
    offload_floor: Mapping[OffloadStatus, SaturationLevel] = field(
        default_factory=lambda: _DEFAULT_OFFLOAD_FLOOR)
    en_route_grace: timedelta = DEFAULT_EN_ROUTE_GRACE

    def __post_init__(self) -> None:
        for name in ("tension", "saturated", "margin"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
                    value):
                raise ValueError(f"SaturationPolicy.{name} must be a finite number, got {value!r}")
        if not 0.0 < self.tension < self.saturated:
            raise ValueError(f"SaturationPolicy: need 0 < tension ({self.tension}) < saturated "
                             f"({self.saturated})")
        if not 0.0 <= self.margin < self.tension:
            raise ValueError(f"SaturationPolicy: need 0 <= margin ({self.margin}) < tension "
                             f"({self.tension})")
        if not isinstance(self.stale_after, timedelta) or self.stale_after <= timedelta(0):
            raise ValueError(f"SaturationPolicy.stale_after must be a positive timedelta, got "
                             f"{self.stale_after!r}")
        if not isinstance(self.en_route_grace, timedelta) or not (
                timedelta(0) <= self.en_route_grace <= timedelta(days=1)):
            raise ValueError("SaturationPolicy.en_route_grace must be a timedelta between 0 and "
                             f"1 day, got {self.en_route_grace!r}")
        object.__setattr__(self, "ed_floor", MappingProxyType(
            {EDStatus.parse(k): SaturationLevel.parse(v) for k, v in self.ed_floor.items()}))
        object.__setattr__(self, "offload_floor", MappingProxyType(
            {OffloadStatus.parse(k): SaturationLevel.parse(v)
             for k, v in self.offload_floor.items()}))

    def classify(self, occupancy: float, *, previous: SaturationLevel | None = None
                 ) -> SaturationLevel:
        """Level of one bed type at ``occupancy``, given its ``previous`` level (hysteresis).

        ``previous=None`` (or ``closed``: the type was not offered) means no history: plain
        thresholds. For a fixed ``previous`` the result is monotone in ``occupancy``.
        """
        if isinstance(occupancy, bool) or not isinstance(occupancy, int | float) or math.isnan(
                occupancy):
            raise ValueError(f"occupancy must be a number, got {occupancy!r}")
        prev = None if previous in (None, SaturationLevel.CLOSED) else previous
        for level, threshold in ((SaturationLevel.SATURATED, self.saturated),
                                 (SaturationLevel.TENSION, self.tension)):
            if prev is not None and level <= prev:
                threshold -= self.margin  # staying at (or dropping to) a level below prev
            if occupancy >= threshold - _EPS:
                return level
        return SaturationLevel.NORMAL

    def floor(self, ed_status: EDStatus, offload_status: OffloadStatus | None
              ) -> SaturationLevel:
        """Minimum overall level implied by the hospital's EDXL-HAVE statuses."""
        level = self.ed_floor.get(ed_status, SaturationLevel.NORMAL)
        if offload_status is not None:
            level = max(level, self.offload_floor.get(offload_status, SaturationLevel.NORMAL))
        return SaturationLevel(level)

    def is_stale(self, updated_at: datetime | None, at: datetime) -> bool:
        """Never reported, or last reported ``stale_after`` or more before ``at``."""
        return updated_at is None or at - updated_at >= self.stale_after

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (part of the board's state)."""
        return {
            "tension": self.tension, "saturated": self.saturated, "margin": self.margin,
            "stale_after_s": self.stale_after.total_seconds(),
            "ed_floor": {k.value: str(v) for k, v in self.ed_floor.items()},
            "offload_floor": {k.value: str(v) for k, v in self.offload_floor.items()},
            "en_route_grace_s": self.en_route_grace.total_seconds(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SaturationPolicy:
        """The policy :meth:`to_dict` wrote; :class:`HospitalDataError` if malformed."""
        try:
            return cls(tension=data["tension"], saturated=data["saturated"],
                       margin=data["margin"],
                       stale_after=timedelta(seconds=float(data["stale_after_s"])),
                       ed_floor=dict(data["ed_floor"]), offload_floor=dict(data["offload_floor"]),
                       en_route_grace=timedelta(seconds=float(data.get(
                           "en_route_grace_s", DEFAULT_EN_ROUTE_GRACE.total_seconds()))))
        except (KeyError, TypeError, ValueError) as exc:
            raise HospitalDataError("policy", str(exc)) from exc
