"""The saturation board: hospitals, ambulances en route, levels per bed type and overall,
and the signals (with their history and subscribers) that every change of level raises.

Time is always explicit: every call that depends on time takes ``at`` (timezone-aware, UTC;
default now), so a replay passes simulated times and gets the same signals. Coordinates in
are ``(lat, lon)``; JSON out (``to_dict``) uses GeoJSON ``[lon, lat]``.
"""

from __future__ import annotations

import heapq
import logging
import threading
import uuid
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from engine.errors import (
    BedTypeNotOffered,
    DuplicateAmbulance,
    GyrophareError,
    HospitalDataError,
    InvalidCapacity,
    InvalidTimestamp,
    UnknownAmbulance,
    UnknownCapability,
    UnknownHospital,
)
from engine.hospitals import cap
from engine.hospitals.model import BedCapacity, EnRoute, Hospital, check_ambulance_id
from engine.hospitals.policy import SaturationPolicy
from engine.hospitals.vocabulary import (
    CAPABILITIES,
    BedType,
    EDStatus,
    OffloadStatus,
    SaturationLevel,
)
from engine.timeutil import iso, parse_time, to_utc

__all__ = [
    "BOARD_FORMAT",
    "Candidate",
    "HospitalBoard",
    "SaturationRow",
    "SaturationSignal",
    "Subscriber",
]

log = logging.getLogger(__name__)

#: ``format`` field of :meth:`HospitalBoard.to_dict`.
BOARD_FORMAT = "gyrophare-board/1"
#: How many expired en-route registrations the board remembers, and for how long after
#: their deadline (a late arrival of one of them is still recorded; see
#: :meth:`HospitalBoard.arrived`).
EXPIRED_MEMORY = 256
EXPIRED_KEPT = timedelta(hours=12)


# ---------------------------------------------------------------------------- outputs
@dataclass(frozen=True, slots=True)
class SaturationRow:
    """One line of the saturation table: a hospital's bed type, or (``bed_type=None``) the
    hospital overall.

    For the overall row, ``baseline``/``available`` are sums over offered bed types,
    ``en_route`` counts every ambulance bound there, and ``occupancy`` is the *worst* bed type's
    (the overall level is the worst unit's, see :class:`HospitalBoard`).
    """

    hospital_id: str
    hospital_name: str
    bed_type: BedType | None
    baseline: int
    available: int
    en_route: int
    occupancy: float | None
    level: SaturationLevel
    stale: bool
    ed_status: EDStatus
    offload_status: OffloadStatus | None
    updated_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "hospital_id": self.hospital_id, "hospital_name": self.hospital_name,
            "bed_type": None if self.bed_type is None else self.bed_type.value,
            "baseline": self.baseline, "available": self.available, "en_route": self.en_route,
            "occupancy": None if self.occupancy is None else round(self.occupancy, 4),
            "level": str(self.level), "stale": self.stale, "ed_status": self.ed_status.value,
            "offload_status": None if self.offload_status is None else self.offload_status.value,
            "updated_at": iso(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class Candidate:
    """A hospital that can take the patient, with what the dispatcher weighs."""

    hospital: Hospital
    level: SaturationLevel  #: overall level (never closed: closed hospitals are not candidates)
    bed: SaturationRow | None  #: the requested bed type's row, if a bed type was asked for
    stale: bool

    def to_dict(self) -> dict[str, Any]:
        lat, lon = self.hospital.destination
        return {"hospital_id": self.hospital.id, "name": self.hospital.name,
                "level": str(self.level), "stale": self.stale,
                "bed": None if self.bed is None else self.bed.to_dict(),
                "destination": [lon, lat]}


# CAP 1.2 mapping of levels (documented in HospitalBoard and the report):
# urgency: closed/saturated need a decision for the next patient now (Immediate); tension is
# "Expected" (responsive action within the next hour); back to normal is "Past" (responsive
# action no longer required). Severity: a closed ED or a saturated unit threatens patients who
# would be sent there (Severe); tension is Moderate; normal Minor. Certainty: a fresh report is
@dataclass(frozen=True, slots=True)
class SaturationSignal:
    """A change of saturation level (or of the stale flag) at a hospital.

    ``bed_type=None`` is the hospital's overall level. ``replaces`` is ``(id, at)`` of the
    previous signal for the same hospital and bed type, which CAP ``references`` cites.
    """

    id: str
    hospital_id: str
    hospital_name: str
    bed_type: BedType | None
    previous_level: SaturationLevel
    new_level: SaturationLevel
    occupancy: float | None
    en_route: int
    stale: bool
    at: datetime
    reason: str
    lat: float
    lon: float
    previous_stale: bool = False
    demo: bool = False
    replaces: tuple[str, datetime] | None = None

    @property
    def rise(self) -> bool:
        return self.new_level > self.previous_level

    @property
    def msg_type(self) -> str:
        """CAP ``msgType``: ``Alert`` for a rise, ``Update`` otherwise — but an update needs the
        message it updates, so a first signal for its hospital and bed type is an ``Alert``."""
        return "Alert" if self.rise or self.replaces is None else "Update"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; ``location`` is a GeoJSON Point, coordinates ``[lon, lat]``."""
        return {
            "id": self.id, "hospital_id": self.hospital_id, "hospital_name": self.hospital_name,
            "bed_type": None if self.bed_type is None else self.bed_type.value,
            "previous_level": str(self.previous_level), "new_level": str(self.new_level),
            "occupancy": self.occupancy,  # unrounded: the state round trip must be exact
            "en_route": self.en_route, "stale": self.stale, "previous_stale": self.previous_stale,
            "at": iso(self.at), "reason": self.reason, "msg_type": self.msg_type,
            "demo": self.demo,
            "replaces": (None if self.replaces is None
                         else {"id": self.replaces[0], "at": iso(self.replaces[1])}),
            "location": {"type": "Point", "coordinates": [self.lon, self.lat]},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "signal") -> SaturationSignal:
        """The signal :meth:`to_dict` wrote; :class:`HospitalDataError` if malformed."""
        try:
            lon, lat = data["location"]["coordinates"]
            rep = data.get("replaces")
            at = parse_time(data["at"], what=f"{where}.at")
            replaces = None
            if rep is not None:
                replaces = (str(rep["id"]), parse_time(rep["at"], what=f"{where}.replaces.at"))
            occ = data["occupancy"]
            return cls(
                id=str(data["id"]), hospital_id=str(data["hospital_id"]),
                hospital_name=str(data["hospital_name"]),
                bed_type=None if data["bed_type"] is None else BedType.parse(data["bed_type"]),
                previous_level=SaturationLevel.parse(data["previous_level"]),
                new_level=SaturationLevel.parse(data["new_level"]),
                occupancy=None if occ is None else float(occ), en_route=int(data["en_route"]),
                stale=bool(data["stale"]), at=at, reason=str(data["reason"]),
                lat=float(lat), lon=float(lon), previous_stale=bool(data["previous_stale"]),
                demo=bool(data.get("demo", False)), replaces=replaces)
        except (KeyError, TypeError, ValueError) as exc:
            raise HospitalDataError(where, f"bad signal record: {exc!r}") from exc

    # -------------------------------------------------------------------- CAP 1.2
    def headline(self) -> str:
        """CAP ``headline``: hospital, bed type and level change."""
        return cap.headline(self)

    def to_cap(self, *, sender: str = "gyrophare@localhost", status: str | None = "Actual",
               scope: str = "Restricted",
               restriction: str = "Emergency medical services and hospital command only",
               addresses: str | None = None, radius_km: float = 1.0) -> str:
        """This signal as an OASIS CAP 1.2 alert (XML text); see
        :func:`engine.hospitals.cap.alert_xml` for the options and the level mapping.
        ``status=None``: ``Exercise`` for a demonstration facility, else ``Actual``."""
        if status is None:
            status = "Exercise" if self.demo else "Actual"
        return cap.alert_xml(self, sender=sender, status=status, scope=scope,
                             restriction=restriction, addresses=addresses, radius_km=radius_km)


# ---------------------------------------------------------------------------- the board
Subscriber = Callable[[SaturationSignal], object]
_Key = tuple[str, BedType | None]


class HospitalBoard:
    """The hospitals of a city or département and their saturation, shared by all dispatchers.

    Levels
    ------
    - Per bed type: occupancy = (baseline - available + ambulances en route for that bed type)
      / baseline, classified by :meth:`SaturationPolicy.classify` with the bed type's previous
      level (hysteresis). Bed-type levels measure *capacity* only; they are never ``closed``
      while the type is offered. A type whose baseline drops to 0 goes to ``closed``.
    - Overall (``bed_type=None``): the worst of the offered bed types, raised to the floor the
      EDXL-HAVE statuses imply (ED Closed -> closed, Advisory or offload Delayed -> at least
      tension). The worst unit rather than an average, because the board is the command
      centre's warning light: a full ICU must show even if the wards are empty. Dispatch asks
      per bed type (:meth:`candidates`), so a full burn unit never hides a free ICU bed.
    - Stale: a flag on the hospital (no status report for ``policy.stale_after``, or never),
      carried by the overall signal; arrivals and en-route registrations are the board's own
      knowledge, not reports, and do not refresh it.
    - Ambulances en route expire: one neither reported arrived nor cancelled by its ETA plus
      ``policy.en_route_grace`` stops being counted. The deadline is a function of the
      registration (its logged time and ETA) alone, and the board drops the registration at
      the first call whose ``at`` reaches it (any change, :meth:`tick`, or a read given an
      explicit ``at``), once: the change of level it causes is signalled with the expiry as
      reason, :attr:`en_route_expired` counts it (per hospital) and it is logged. So every
      worker following the same log agrees on which ambulances count at any time, whenever
      its own clock ticks; an arrival or cancel logged *before* the deadline but applied after
      a worker's tick passed it is honoured as if the tick had not happened (the board keeps
      the last :data:`EXPIRED_MEMORY` expired registrations, for :data:`EXPIRED_KEPT`, for
      that and for late arrivals: an arrival after the deadline still takes its bed).

    Signals
    -------
    Each change (status update, en-route registration, arrival, cancel) recomputes the hospital
    and emits one signal per bed type whose level changed, then one overall signal if the
    overall level or the stale flag changed; :meth:`tick` emits stale-flag changes as time
    passes. Mutating methods return the signals they produced. Subscribers are called in signal
    order, outside the board's lock (a subscriber may read the board); an exception in one is
    logged and does not stop the others.

    Thread safety: every method takes the board's lock; an invalid call raises before anything
    changes (nothing is half-applied).
    """

    def __init__(self, hospitals: Iterable[Hospital] = (), *,
                 policy: SaturationPolicy | None = None, history: int = 1000,
                 board_id: str | None = None, at: datetime | None = None,
                 log_overflow: bool = True) -> None:
        at = to_utc(at)
        #: admissions beyond capacity, per (hospital id, bed type): a surge replay expects
        #: them (and counts them); a live board logs each one too unless ``log_overflow`` is off
        self.overflows: Counter[tuple[str, str]] = Counter()
        self.log_overflow = log_overflow
        if isinstance(history, bool) or not isinstance(history, int) or history < 1:
            raise ValueError(f"history must be a positive integer, got {history!r}")
        self.policy = policy if policy is not None else SaturationPolicy()
        self.board_id = board_id if board_id is not None else uuid.uuid4().hex[:12]
        if not cap.is_cap_token(self.board_id):
            raise ValueError(f"board_id {self.board_id!r} must be non-empty without spaces, "
                             "commas, '<' or '&'")
        self._lock = threading.RLock()
        self._hospitals: dict[str, Hospital] = {}
        self._en_route: dict[str, EnRoute] = {}
        #: en-route registrations dropped at their deadline (most recent last)
        self._expired: OrderedDict[str, EnRoute] = OrderedDict()
        #: en-route registrations expired (not arrived nor cancelled by ETA + grace), per
        #: hospital id: what /metrics exposes
        self.en_route_expired: Counter[str] = Counter()
        #: min-heap of (deadline, ambulance id) over the registrations en route, so that
        #: finding the expired ones costs O(expired), not O(en route), per change; stale
        #: items (closed or re-registered ambulances) are skipped when they surface
        self._deadlines: list[tuple[datetime, str]] = []
        self._deadline_grace: timedelta | None = None
        self._levels: dict[_Key, SaturationLevel] = {}
        self._stale: dict[str, bool] = {}
        self._last_signal: dict[_Key, tuple[str, datetime]] = {}
        self._history: deque[SaturationSignal] = deque(maxlen=history)
        self._seq = 0
        self._subscribers: tuple[Subscriber, ...] = ()
        self._outbox: deque[SaturationSignal] = deque()
        self._deliver_lock = threading.Lock()
        self._local = threading.local()
        for i, hospital in enumerate(hospitals):
            if not isinstance(hospital, Hospital):
                raise HospitalDataError(f"hospitals[{i}]", f"expected a Hospital, got "
                                        f"{type(hospital).__name__}")
            if hospital.id in self._hospitals:
                raise HospitalDataError(f"hospitals[{i}].id", f"duplicate id {hospital.id!r}")
            self._hospitals[hospital.id] = hospital
        for hid in self._hospitals:
            self._recompute(hid, at, "initial state", emit=False)

    # -------------------------------------------------------------------- lookups
    def __len__(self) -> int:
        return len(self._hospitals)

    def __contains__(self, hospital_id: object) -> bool:
        return hospital_id in self._hospitals

    def _get(self, hospital_id: object) -> Hospital:
        hospital = self._hospitals.get(hospital_id) if isinstance(hospital_id, str) else None
        if hospital is None:
            raise UnknownHospital(hospital_id, list(self._hospitals))
        return hospital

    def hospital(self, hospital_id: str) -> Hospital:
        """The hospital's current record (immutable; a later update makes a new one)."""
        with self._lock:
            return self._get(hospital_id)

    def hospitals(self) -> list[Hospital]:
        with self._lock:
            return list(self._hospitals.values())

    def en_route(self, hospital_id: str | None = None, *, at: datetime | None = None
                 ) -> list[EnRoute]:
        """Ambulances en route (to one hospital, or all), in registration order; with ``at``,
        registrations expired by then are dropped first (see the class notes)."""
        if at is not None:
            self.expire(at)
        with self._lock:
            if hospital_id is not None:
                self._get(hospital_id)
            return [e for e in self._en_route.values()
                    if hospital_id is None or e.hospital_id == hospital_id]

    def expires_at(self, entry: EnRoute) -> datetime:
        """When ``entry`` stops being counted (its ETA plus the policy's grace)."""
        return entry.expires_at(self.policy.en_route_grace)

    def expired(self) -> list[EnRoute]:
        """The most recent en-route registrations that expired (oldest first, at most
        :data:`EXPIRED_MEMORY`)."""
        with self._lock:
            return list(self._expired.values())

    # -------------------------------------------------------------------- computation
    def _counts(self, hospital_id: str) -> dict[BedType, int]:
        counts: dict[BedType, int] = {}
        for e in self._en_route.values():
            if e.hospital_id == hospital_id:
                counts[e.bed_type] = counts.get(e.bed_type, 0) + 1
        return counts

    @staticmethod
    def _occupancy(cap: BedCapacity, en_route: int) -> float:
        return (cap.baseline - cap.available + en_route) / cap.baseline

    def _row(self, hospital: Hospital, bed_type: BedType | None, at: datetime) -> SaturationRow:
        counts = self._counts(hospital.id)
        if bed_type is not None:
            cap = hospital.beds[bed_type]
            n = counts.get(bed_type, 0)
            baseline, available, en_route = cap.baseline, cap.available, n
            occupancy: float | None = self._occupancy(cap, n)
        else:
            offered = hospital.offered()
            occs = [self._occupancy(hospital.beds[bt], counts.get(bt, 0)) for bt in offered]
            baseline = sum(hospital.beds[bt].baseline for bt in offered)
            available = sum(hospital.beds[bt].available for bt in offered)
            en_route, occupancy = sum(counts.values()), max(occs) if occs else None
        return SaturationRow(
            hospital_id=hospital.id, hospital_name=hospital.name, bed_type=bed_type,
            baseline=baseline, available=available, en_route=en_route, occupancy=occupancy,
            level=self._levels[(hospital.id, bed_type)],
            stale=self.policy.is_stale(hospital.updated_at, at), ed_status=hospital.ed_status,
            offload_status=hospital.offload_status, updated_at=hospital.updated_at)

    def _recompute(self, hospital_id: str, at: datetime, reason: str, *,
                   emit: bool = True) -> list[SaturationSignal]:
        """Recompute one hospital's levels and stale flag; record and queue the signals."""
        h = self._hospitals[hospital_id]
        counts = self._counts(hospital_id)
        signals: list[SaturationSignal] = []
        worst = self.policy.floor(h.ed_status, h.offload_status)
        occupancies: list[float] = []
        for bt in BedType:
            key: _Key = (hospital_id, bt)
            previous = self._levels.get(key)
            if h.offers(bt):
                occ = self._occupancy(h.beds[bt], counts.get(bt, 0))
                new = self.policy.classify(occ, previous=previous)
                occupancies.append(occ)
                worst = max(worst, new)
            elif previous is not None:
                occ, new = None, SaturationLevel.CLOSED  # the unit stopped taking patients
            else:
                continue
            self._levels[key] = new
            if emit and new != (previous if previous is not None else SaturationLevel.CLOSED):
                signals.append(self._signal(
                    h, bt, previous if previous is not None else SaturationLevel.CLOSED, new,
                    occ, counts.get(bt, 0), self.policy.is_stale(h.updated_at, at),
                    self._stale.get(hospital_id, False), at, reason))
        stale = self.policy.is_stale(h.updated_at, at)
        overall: _Key = (hospital_id, None)
        previous = self._levels.get(overall)
        prev_stale = self._stale.get(hospital_id, stale)
        self._levels[overall] = SaturationLevel(worst)
        self._stale[hospital_id] = stale
        if emit and previous is not None and (previous != worst or prev_stale != stale):
            why = reason
            if stale and not prev_stale:
                why += "; " + self._stale_reason(h, at)
            elif prev_stale and not stale:
                why += "; status current again"
            signals.append(self._signal(h, None, previous, SaturationLevel(worst),
                                        max(occupancies) if occupancies else None,
                                        sum(counts.values()), stale, prev_stale, at, why))
        return signals

    def _stale_reason(self, h: Hospital, at: datetime) -> str:
        if h.updated_at is None:
            return "status never reported"
        minutes = (at - h.updated_at).total_seconds() / 60
        return (f"no status report for {minutes:.0f} min (stale after "
                f"{self.policy.stale_after.total_seconds() / 60:.0f} min)")

    def _signal(self, h: Hospital, bed_type: BedType | None, previous: SaturationLevel,
                new: SaturationLevel, occupancy: float | None, en_route: int, stale: bool,
                previous_stale: bool, at: datetime, reason: str) -> SaturationSignal:
        self._seq += 1
        key = (h.id, bed_type)
        signal = SaturationSignal(
            id=f"gyrophare-{self.board_id}-{self._seq}", hospital_id=h.id, hospital_name=h.name,
            bed_type=bed_type, previous_level=previous, new_level=new, occupancy=occupancy,
            en_route=en_route, stale=stale, at=at, reason=reason, lat=h.lat, lon=h.lon,
            previous_stale=previous_stale, demo=h.demo, replaces=self._last_signal.get(key))
        self._last_signal[key] = (signal.id, at)
        self._history.append(signal)
        self._outbox.append(signal)
        return signal

    def _deliver(self) -> None:
        """Call subscribers for queued signals, in order, outside the state lock."""
        if getattr(self._local, "delivering", False):
            return  # a subscriber changed the board: the running loop delivers the new signals
        with self._deliver_lock:
            self._local.delivering = True
            try:
                while self._outbox:
                    signal = self._outbox.popleft()
                    for callback in self._subscribers:
                        try:
                            callback(signal)
                        except Exception:
                            log.exception("saturation subscriber %r failed on signal %s",
                                          callback, signal.id)
            finally:
                self._local.delivering = False

    # -------------------------------------------------------------------- changes
    def update_status(self, hospital_id: str, *,
                      beds: Mapping[BedType | str, int | BedCapacity | Mapping[str, int]]
                      | None = None,
                      ed_status: EDStatus | str | None = None,
                      offload_status: OffloadStatus | str | None = None,
                      at: datetime | None = None) -> list[SaturationSignal]:
        """Record a status report from a hospital (and refresh its ``updated_at``).

        Parameters
        ----------
        beds
            Per bed type: an ``int`` (new ``available``, baseline unchanged), a
            :class:`BedCapacity`, or ``{"baseline": b, "available": a}`` (either key may be
            omitted to keep the current value; a bed type not yet offered needs both). A
            baseline of 0 closes the unit.
        ed_status, offload_status
            EDXL-HAVE values; ``None`` keeps the current one.
        at
            Time of the report. An empty update (no beds, no statuses) is a heartbeat: "nothing
            changed", which clears the stale flag. A report older than the last one is refused.

        Returns
        -------
        list[SaturationSignal]
            The level changes it caused.
        """
        at = to_utc(at)
        with self._lock:
            h = self._get(hospital_id)
            if h.updated_at is not None and at < h.updated_at:
                raise InvalidTimestamp(f"report at {at.isoformat()} for {hospital_id!r} is "
                                       f"older than its last report ({h.updated_at.isoformat()})")
            new_beds = dict(h.beds)
            notes: list[str] = []
            if beds is not None:
                if not isinstance(beds, Mapping):
                    raise InvalidCapacity("beds: must be a mapping bed type -> available count, "
                                          f"BedCapacity or {{baseline, available}}, got {beds!r}")
                for key, value in beds.items():
                    bt = BedType.parse(key, what=f"beds key {key!r}")
                    new_beds[bt] = self._new_capacity(h, bt, value)
                    notes.append(f"{bt.value} {new_beds[bt].available}/{new_beds[bt].baseline} "
                                 "available")
            ed = h.ed_status if ed_status is None else EDStatus.parse(ed_status)
            off = h.offload_status if offload_status is None else OffloadStatus.parse(
                offload_status)
            if ed != h.ed_status:
                notes.append(f"ED {ed.value}")
            if off != h.offload_status and off is not None:
                notes.append(f"offload {off.value}")
            signals = self._expire(at)
            self._hospitals[hospital_id] = replace(h, beds=new_beds, ed_status=ed,
                                                   offload_status=off, updated_at=at)
            signals += self._recompute(hospital_id, at, "status report: " + (
                "; ".join(notes) if notes else "no change"))
        self._deliver()
        return signals

    @staticmethod
    def _new_capacity(h: Hospital, bt: BedType, value: object) -> BedCapacity:
        where = f"beds.{bt.value}"
        old = h.beds.get(bt)
        if isinstance(value, BedCapacity):
            return value
        if isinstance(value, Mapping):
            extra = set(value) - {"baseline", "available"}
            if extra:
                raise InvalidCapacity(f"{where}: unknown key(s) {sorted(extra)}; expected "
                                      "'baseline' and/or 'available'")
            if old is None and not {"baseline", "available"} <= set(value):
                raise BedTypeNotOffered(f"{where}: {h.name!r} did not list {bt.value}; give "
                                        "both baseline and available to open it")
            baseline = value.get("baseline", old.baseline if old else None)
            available = value.get("available", old.available if old else None)
        elif old is None or not old.offered:
            raise BedTypeNotOffered(f"{where}: {h.name!r} does not offer {bt.value} (baseline 0);"
                                    " give {\"baseline\": b, \"available\": a} to open it")
        else:
            baseline, available = old.baseline, value
        try:
            return BedCapacity.of(baseline, available, where=where)
        except HospitalDataError as exc:  # a report, not a file: the capacity error
            raise InvalidCapacity(str(exc)) from None

    def register_en_route(self, ambulance_id: str, hospital_id: str,
                          bed_type: BedType | str, *, eta_s: float,
                          at: datetime | None = None) -> list[SaturationSignal]:
        """Count an ambulance bound for ``hospital_id`` as occupying a ``bed_type`` bed there.

        Raises :class:`DuplicateAmbulance` if the id is already en route (cancel it first),
        :class:`BedTypeNotOffered` if the hospital has no such beds. A closed hospital is
        accepted: the board records what crews do, dispatch decides where they go.
        """
        at = to_utc(at)
        with self._lock:
            check_ambulance_id(ambulance_id)
            current = self._live(ambulance_id, at)
            if current is not None:
                raise DuplicateAmbulance(f"ambulance {ambulance_id!r} is already en route to "
                                         f"{current.hospital_id!r}; cancel it or report its "
                                         "arrival first")
            h = self._get(hospital_id)
            bt = BedType.parse(bed_type)
            if not h.offers(bt):
                raise BedTypeNotOffered(f"{h.name!r} ({hospital_id}) does not offer {bt.value} "
                                        f"beds (offers: {', '.join(h.offered()) or 'none'})")
            entry = EnRoute(ambulance_id, hospital_id, bt, eta_s, at)  # checks eta_s
            signals = self._expire(at)
            self._expired.pop(ambulance_id, None)  # a new mission: the expired one is history
            self._en_route[ambulance_id] = entry
            if self._deadline_grace == self.policy.en_route_grace:
                heapq.heappush(self._deadlines,
                               (entry.expires_at(self.policy.en_route_grace), ambulance_id))
            signals += self._recompute(hospital_id, at, f"ambulance {ambulance_id} en route for"
                                       f" {bt.value} (ETA {entry.eta_s:.0f} s)")
        self._deliver()
        return signals

    def _live(self, ambulance_id: str, at: datetime) -> EnRoute | None:
        """The registration of ``ambulance_id`` still counted at ``at`` (whether or not a
        tick at a later time already dropped it), else ``None``."""
        entry = self._en_route.get(ambulance_id) or self._expired.get(ambulance_id)
        if entry is not None and self.expires_at(entry) > at:
            return entry
        return None

    def _closing(self, ambulance_id: str, at: datetime, *, late_ok: bool) -> EnRoute:
        """The registration an arrival or cancel at ``at`` closes (checked, nothing
        changed): counted at ``at``, or (``late_ok``) expired but remembered."""
        check_ambulance_id(ambulance_id)
        entry = self._en_route.get(ambulance_id) or self._expired.get(ambulance_id)
        if entry is None:
            known = ", ".join(repr(k) for k in list(self._en_route)[:5]) or "none"
            raise UnknownAmbulance(f"ambulance {ambulance_id!r} is not en route (en route: "
                                   f"{known})")
        deadline = self.expires_at(entry)
        if deadline <= at and not late_ok:
            raise UnknownAmbulance(
                f"ambulance {ambulance_id!r} is no longer en route: its registration to "
                f"{entry.hospital_id!r} expired at {deadline.isoformat()} (ETA "
                f"{entry.eta_at.isoformat()} + {_minutes(self.policy.en_route_grace)} grace) "
                "without an arrival or cancel")
        return entry

    def _close(self, entry: EnRoute, at: datetime) -> tuple[list[SaturationSignal], bool]:
        """Drop the registration ``entry`` (arrived or cancelled at ``at``) after expiring
        what expired by ``at``; returns those signals and whether ``entry`` had expired."""
        signals = self._expire(at)
        late = self.expires_at(entry) <= at
        if self._en_route.get(entry.ambulance_id) is entry:
            del self._en_route[entry.ambulance_id]
        else:  # expired: late (it stays counted), or dropped early by a tick (it does not)
            self._expired.pop(entry.ambulance_id, None)
            if not late:
                self.en_route_expired[entry.hospital_id] -= 1
                if self.en_route_expired[entry.hospital_id] <= 0:
                    del self.en_route_expired[entry.hospital_id]
        return signals, late

    def expire(self, at: datetime | None = None) -> list[SaturationSignal]:
        """Drop the en-route registrations whose ETA plus grace is at or before ``at``
        (default now): counted in :attr:`en_route_expired`, logged, and signalled when a
        level changes. Returns those signals."""
        at = to_utc(at)
        with self._lock:
            signals = self._expire(at)
        self._deliver()
        return signals

    def _due(self, at: datetime, grace: timedelta) -> list[EnRoute]:
        """The registrations en route whose deadline (ETA + ``grace``) is ``at`` or before."""
        heap = self._deadlines
        if (self._deadline_grace != grace or len(heap) < len(self._en_route)
                or len(heap) > 2 * len(self._en_route) + 64):
            # (re)built after a restore, a copy from a snapshot or a change of grace, and when
            # stale items outnumber live ones
            heap[:] = [(e.expires_at(grace), aid) for aid, e in self._en_route.items()]
            heapq.heapify(heap)
            self._deadline_grace = grace
        due: dict[str, EnRoute] = {}
        while heap and heap[0][0] <= at:
            when, aid = heapq.heappop(heap)
            entry = self._en_route.get(aid)
            if entry is not None and entry.expires_at(grace) == when:
                due[aid] = entry
        return list(due.values())

    def _expire(self, at: datetime) -> list[SaturationSignal]:
        grace = self.policy.en_route_grace
        while self._expired and (len(self._expired) > EXPIRED_MEMORY or next(
                iter(self._expired.values())).expires_at(grace) < at - EXPIRED_KEPT):
            self._expired.popitem(last=False)
        due = self._due(at, grace)
        if not due:
            return []
        hospitals: dict[str, list[str]] = {}
        for e in due:
            del self._en_route[e.ambulance_id]
            self._expired[e.ambulance_id] = e
            self._expired.move_to_end(e.ambulance_id)
            self.en_route_expired[e.hospital_id] += 1
            hospitals.setdefault(e.hospital_id, []).append(e.ambulance_id)
            if self.log_overflow:
                log.warning("ambulance %s: en-route registration to %s expired at %s (ETA %s + "
                            "%s grace) without an arrival or cancel", e.ambulance_id,
                            e.hospital_id, e.expires_at(grace).isoformat(),
                            e.eta_at.isoformat(), _minutes(grace))
        while len(self._expired) > EXPIRED_MEMORY:
            self._expired.popitem(last=False)
        signals: list[SaturationSignal] = []
        for hid, ids in hospitals.items():
            if hid in self._hospitals:
                signals += self._recompute(hid, at, f"en-route registration of ambulance"
                                           f"{'s' if len(ids) > 1 else ''} {', '.join(ids)} "
                                           f"expired (ETA + {_minutes(grace)} passed without "
                                           "an arrival or cancel)")
        return signals

    def arrived(self, ambulance_id: str, *, at: datetime | None = None,
                admit: bool = True) -> list[SaturationSignal]:
        """The ambulance reached its hospital. ``admit=True`` takes one available bed of its type
        (the patient now occupies it); ``admit=False`` (treated and released, or transferred)
        just frees the en-route count. Admitting into a unit with no free bed keeps
        ``available`` at 0 (overflow is real; the next report corrects the figure)."""
        at = to_utc(at)
        with self._lock:
            entry = self._closing(ambulance_id, at, late_ok=True)
            signals, late = self._close(entry, at)
            h = self._hospitals[entry.hospital_id]
            reason = f"ambulance {ambulance_id} arrived" + (
                " after its en-route registration expired" if late else "")
            cap = h.beds.get(entry.bed_type)
            if admit and cap is not None and cap.offered:
                if cap.available == 0:
                    self.overflows[(entry.hospital_id, entry.bed_type.value)] += 1
                    if self.log_overflow:
                        log.warning("ambulance %s admitted to %s %s with no bed available",
                                    ambulance_id, entry.hospital_id, entry.bed_type.value)
                    reason += f", admitted to {entry.bed_type.value} beyond capacity"
                else:
                    reason += f", admitted to {entry.bed_type.value}"
                new_beds = dict(h.beds)
                new_beds[entry.bed_type] = BedCapacity(cap.baseline, max(cap.available - 1, 0))
                self._hospitals[h.id] = replace(h, beds=new_beds)
            else:
                reason += ", not admitted"
            signals += self._recompute(entry.hospital_id, at, reason)
        self._deliver()
        return signals

    def cancel(self, ambulance_id: str, *, at: datetime | None = None, note: str = ""
               ) -> list[SaturationSignal]:
        """The ambulance no longer goes there (diverted, patient not transported, or an
        operator clearing a registration: ``note`` says so in the signal's reason).
        :class:`UnknownAmbulance` if it is not en route at ``at`` (never registered, closed,
        or expired: the message says which)."""
        at = to_utc(at)
        with self._lock:
            entry = self._closing(ambulance_id, at, late_ok=False)
            signals, _ = self._close(entry, at)
            signals += self._recompute(entry.hospital_id, at, f"ambulance {ambulance_id} "
                                       f"cancelled (was bound for {entry.bed_type.value})"
                                       + (f": {note}" if note else ""))
        self._deliver()
        return signals

    def tick(self, at: datetime | None = None) -> list[SaturationSignal]:
        """Let time pass: drop en-route registrations expired by ``at`` (see
        :meth:`expire`), flag hospitals whose status went stale (one overall signal each)."""
        at = to_utc(at)
        with self._lock:
            signals = self._expire(at)
            for hid, h in self._hospitals.items():
                if self.policy.is_stale(h.updated_at, at) != self._stale[hid]:
                    signals += self._recompute(hid, at, "clock")
        self._deliver()
        return signals

    def set_entrance(self, hospital_id: str, entrance: tuple[float, float], *,
                     note: str = "") -> Hospital:
        """Set where ambulances arrive (see :func:`snap_entrances`); levels are unaffected."""
        with self._lock:
            h = self._get(hospital_id)
            self._hospitals[hospital_id] = replace(h, entrance=entrance, entrance_note=note)
            return self._hospitals[hospital_id]

    # -------------------------------------------------------------------- reading
    def level(self, hospital_id: str, bed_type: BedType | str | None = None, *,
              at: datetime | None = None) -> SaturationRow:
        """The current level of a hospital (overall) or one of its bed types, with the stale flag
        evaluated at ``at`` (given: en-route registrations expired by then are dropped
        first)."""
        if at is not None:
            self.expire(at)
        at = to_utc(at)
        with self._lock:
            h = self._get(hospital_id)
            if bed_type is None:
                return self._row(h, None, at)
            bt = BedType.parse(bed_type)
            if not h.offers(bt):
                raise BedTypeNotOffered(f"{h.name!r} ({hospital_id}) does not offer {bt.value} "
                                        f"beds (offers: {', '.join(h.offered()) or 'none'})")
            return self._row(h, bt, at)

    def saturation(self, at: datetime | None = None, *, hospital_id: str | None = None
                   ) -> list[SaturationRow]:
        """The saturation table: per hospital its overall row, then one row per offered bed
        type (baseline, available, en route, occupancy, level, stale); only one hospital's
        rows with ``hospital_id``. With ``at``, en-route registrations expired by then are
        dropped first."""
        if at is not None:
            self.expire(at)
        at = to_utc(at)
        with self._lock:
            rows: list[SaturationRow] = []
            chosen = (self._hospitals.values() if hospital_id is None
                      else [self._get(hospital_id)])
            for h in chosen:
                rows.append(self._row(h, None, at))
                rows.extend(self._row(h, bt, at) for bt in h.offered())
            return rows

    def candidates(self, bed_type: BedType | str | None = None, capability: str | None = None,
                   *, at: datetime | None = None) -> list[Candidate]:
        """Hospitals that can take the patient: offer ``bed_type``, have ``capability``, and are
        not closed. Best first: lowest level of the bed type (else overall), then lowest
        occupancy, then id. Saturated and stale hospitals stay in the list, flagged: the
        dispatcher weighs them against travel time. With ``at``, en-route registrations
        expired by then are dropped first."""
        if at is not None:
            self.expire(at)
        at = to_utc(at)
        with self._lock:
            bt = None if bed_type is None else BedType.parse(bed_type)
            cap = None
            if capability is not None:
                cap = str(capability).strip().lower()
                known = CAPABILITIES.union(*(h.capabilities for h in self._hospitals.values()))
                if cap not in known:
                    raise UnknownCapability(f"capability {capability!r} is unknown (known: "
                                            f"{', '.join(sorted(known))})")
            found: list[tuple[int, int, float, str, Candidate]] = []
            for h in self._hospitals.values():
                overall = self._levels[(h.id, None)]
                if overall >= SaturationLevel.CLOSED:
                    continue
                if cap is not None and cap not in h.capabilities:
                    continue
                if bt is not None and not h.offers(bt):
                    continue
                row = self._row(h, bt, at)  # bt None: overall row (worst occupancy)
                candidate = Candidate(h, overall, row if bt is not None else None, row.stale)
                first = row.level if bt is not None else overall
                occ = row.occupancy if row.occupancy is not None else 0.0
                found.append((int(first), int(overall), occ, h.id, candidate))
        found.sort(key=lambda item: item[:4])
        return [item[4] for item in found]

    # -------------------------------------------------------------------- signals
    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(signal)`` for every future signal; returns the unsubscribe function
        (idempotent)."""
        if not callable(callback):
            raise TypeError(f"subscriber must be callable, got {callback!r}")
        with self._lock:
            self._subscribers = (*self._subscribers, callback)

        def unsubscribe() -> None:
            with self._lock:
                subs = list(self._subscribers)
                if callback in subs:
                    subs.remove(callback)
                    self._subscribers = tuple(subs)

        return unsubscribe

    def signals(self, since: datetime | None = None) -> list[SaturationSignal]:
        """Signals kept in the bounded history, oldest first; ``since`` keeps those at or after
        that time (inclusive, so a poller loses nothing; de-duplicate by ``id``)."""
        limit = None if since is None else to_utc(since, what="since")
        with self._lock:
            return [s for s in self._history if limit is None or s.at >= limit]

    def signal(self, signal_id: str) -> SaturationSignal | None:
        """The signal with this id, if the bounded history still holds it."""
        with self._lock:
            return next((s for s in self._history if s.id == signal_id), None)

    # -------------------------------------------------------------------- state
    def to_dict(self) -> dict[str, Any]:
        """The whole state, JSON-ready (for the API's state stores). Subscribers are not part
        of the state."""
        with self._lock:
            return {
                "format": BOARD_FORMAT,
                "board_id": self.board_id,
                "policy": self.policy.to_dict(),
                "history": self._history.maxlen,
                "seq": self._seq,
                "hospitals": [h.to_dict() for h in self._hospitals.values()],
                "en_route": [e.to_dict() for e in self._en_route.values()],
                "expired": [e.to_dict() for e in self._expired.values()],
                "en_route_expired": dict(self.en_route_expired),
                "levels": [{"hospital_id": hid, "bed_type": None if bt is None else bt.value,
                            "level": str(lv)} for (hid, bt), lv in self._levels.items()],
                "stale": dict(self._stale),
                "last_signal": [{"hospital_id": hid, "bed_type": None if bt is None else bt.value,
                                 "id": sid, "at": iso(sat)}
                                for (hid, bt), (sid, sat) in self._last_signal.items()],
                "signals": [s.to_dict() for s in self._history],
            }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HospitalBoard:
        """Rebuild a board from :meth:`to_dict` (levels, hysteresis memory, en-route ambulances,
        stale flags and signal history included)."""
        if not isinstance(data, Mapping) or data.get("format") != BOARD_FORMAT:
            raise HospitalDataError("format", f"expected {BOARD_FORMAT!r}")
        try:
            hospitals = [Hospital.from_dict(h, where=f"hospitals[{i}]")
                         for i, h in enumerate(data["hospitals"])]
            board = cls(hospitals, policy=SaturationPolicy.from_dict(data["policy"]),
                        history=int(data["history"]), board_id=str(data["board_id"]))
            for i, e in enumerate(data["en_route"]):
                entry = EnRoute.from_dict(e, where=f"en_route[{i}]")
                board._get(entry.hospital_id)
                board._en_route[entry.ambulance_id] = entry
            for i, e in enumerate(data.get("expired", ())):
                entry = EnRoute.from_dict(e, where=f"expired[{i}]")
                board._expired[entry.ambulance_id] = entry
            board.en_route_expired.update({str(k): int(v) for k, v in
                                           dict(data.get("en_route_expired", {})).items()})
            levels: dict[_Key, SaturationLevel] = {}
            for i, row in enumerate(data["levels"]):
                hid = board._get(row["hospital_id"]).id
                bt = None if row["bed_type"] is None else BedType.parse(row["bed_type"])
                levels[(hid, bt)] = SaturationLevel.parse(row["level"], what=f"levels[{i}]")
            board._levels = levels
            board._stale = {str(k): bool(v) for k, v in data["stale"].items()}
            for row in data["last_signal"]:
                bt = None if row["bed_type"] is None else BedType.parse(row["bed_type"])
                at = parse_time(row["at"], what="last_signal.at")
                board._last_signal[(str(row["hospital_id"]), bt)] = (str(row["id"]), at)
            board._history.extend(SaturationSignal.from_dict(s, where=f"signals[{i}]")
                                  for i, s in enumerate(data["signals"]))
            board._seq = int(data["seq"])
        except HospitalDataError:
            raise
        except (KeyError, TypeError, ValueError, GyrophareError) as exc:
            raise HospitalDataError("board", f"malformed board state: {exc!r}") from exc
        missing = [f"{hid}/{'overall' if bt is None else bt.value}"
                   for hid, h in board._hospitals.items() for bt in (None, *h.offered())
                   if (hid, bt) not in board._levels]
        missing += [f"{hid}/stale" for hid in board._hospitals if hid not in board._stale]
        if missing:
            raise HospitalDataError("levels", f"missing level or stale flag for {missing[:5]}")
        return board

    # attributes that are the board's machinery or configuration, not its state
    _NOT_STATE = frozenset({"_lock", "_deliver_lock", "_local", "_subscribers", "_outbox",
                            "board_id", "policy", "log_overflow"})

    def copy(self) -> HospitalBoard:
        """A detached copy of the state, to try a change on without touching this board: no
        subscribers, overflow warnings off. Cheap: the records (hospitals, ambulances,
        signals) are immutable and shared; only their containers are copied."""
        with self._lock:
            new = object.__new__(HospitalBoard)
            for name, value in vars(self).items():
                if isinstance(value, dict | set | list):  # OrderedDict, Counter included
                    value = value.copy()
                elif isinstance(value, deque):
                    value = deque(value, maxlen=value.maxlen)
                new.__dict__[name] = value
        new._lock, new._deliver_lock = threading.RLock(), threading.Lock()
        new._local, new._subscribers, new._outbox = threading.local(), (), deque()
        new.log_overflow = False
        return new

    def restore(self, data: Mapping[str, Any], *, at: datetime | None = None) -> None:
        """Take the state of :meth:`to_dict` ``data`` (a snapshot of the same service), in
        place: subscribers, ``board_id`` and policy stay this board's.

        Hospitals are this board's (its configuration: names, positions, entrances,
        capabilities) with the snapshot's reported state (beds, ED and offload statuses,
        time of the last report); a hospital the snapshot does not know keeps its initial
        state, one this board does not know is left out (with what refers to it), as a
        replay of the log would do. :class:`HospitalDataError` if ``data`` is malformed
        (nothing changed then)."""
        other = HospitalBoard.from_dict(data)
        at = to_utc(at)
        with self._lock:
            hospitals: dict[str, Hospital] = {}
            for hid, h in self._hospitals.items():
                s = other._hospitals.get(hid)
                hospitals[hid] = h if s is None else replace(
                    h, beds=s.beds, ed_status=s.ed_status, offload_status=s.offload_status,
                    updated_at=s.updated_at)
            for name, value in vars(other).items():
                if name not in self._NOT_STATE:
                    self.__dict__[name] = value
            self._hospitals = hospitals
            self._en_route = {k: e for k, e in self._en_route.items()
                              if e.hospital_id in hospitals}
            self._levels = {k: v for k, v in self._levels.items() if k[0] in hospitals}
            self._stale = {k: v for k, v in self._stale.items() if k in hospitals}
            self._last_signal = {k: v for k, v in self._last_signal.items()
                                 if k[0] in hospitals}
            for hid in hospitals:
                if hid not in other._hospitals:
                    self._levels = {k: v for k, v in self._levels.items() if k[0] != hid}
                    self._stale.pop(hid, None)
                    self._recompute(hid, at, "initial state", emit=False)


def _minutes(delta: timedelta) -> str:
    """A grace period in words (``30 min``)."""
    return f"{delta.total_seconds() / 60:g} min"
