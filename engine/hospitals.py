"""Hospital saturation board: where an ambulance can still take its patient.

During the Covid-19 crisis Dijon's command centre watched hospital saturation so that patients
were not all sent to the same full hospital. This module is that board:

- hospitals with their bed capacities per EDXL-HAVE bed type, emergency-department status and
  ambulance offload status;
- ambulances registered *en route* count as already occupying a bed at their destination, so two
  crews are not sent to the last free bed;
- a saturation level per hospital and bed type (normal < tension < saturated < closed) with
  hysteresis, so a level does not flap on every bed freed or taken;
- a signal on every level change, delivered to subscribers, kept in a bounded history and
  exportable as an OASIS CAP 1.2 alert;
- loaders for OSM ``amenity=hospital`` objects and for a documented JSON format.

Time is always explicit: every call that depends on time takes ``at`` (timezone-aware, UTC;
default :func:`utcnow`), so a replay passes simulated times and gets the same signals.

Coordinates in are ``(lat, lon)``; JSON out (``to_dict``) uses GeoJSON ``[lon, lat]``; CAP
writes ``lat,lon`` (its own convention).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import uuid
import xml.etree.ElementTree as ET
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import IntEnum, StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from engine.errors import (
    BedTypeNotOffered,
    DuplicateAmbulance,
    GyrophareError,
    HospitalDataError,
    InvalidCapacity,
    InvalidCoordinate,
    InvalidStatus,
    InvalidTimestamp,
    UnknownAmbulance,
    UnknownBedType,
    UnknownCapability,
    UnknownHospital,
)
from engine.snap import validate_coordinate

if TYPE_CHECKING:
    from engine.query import Router

__all__ = [
    "BOARD_FORMAT",
    "CAPABILITIES",
    "CAP_NAMESPACE",
    "DEFAULT_ASSUMED_BEDS",
    "FILE_FORMAT",
    "BedCapacity",
    "BedType",
    "Candidate",
    "EDStatus",
    "EnRoute",
    "Hospital",
    "HospitalBoard",
    "OffloadStatus",
    "SaturationLevel",
    "SaturationPolicy",
    "SaturationRow",
    "SaturationSignal",
    "cap_datetime",
    "dump_hospitals",
    "hospitals_from_dict",
    "hospitals_from_graph",
    "load_hospitals",
    "project_data_path",
    "snap_entrances",
    "utcnow",
]

log = logging.getLogger(__name__)

#: ``format`` field of a hospital file (see ``data/hospitals/README.md``).
FILE_FORMAT = "gyrophare-hospitals/1"
#: ``format`` field of :meth:`HospitalBoard.to_dict`.
BOARD_FORMAT = "gyrophare-board/1"
CAP_NAMESPACE = "urn:oasis:names:tc:emergency:cap:1.2"
_DATA_DIR = Path(__file__).resolve().parent.parent / "data"
_EPS = 1e-9  # occupancy comparisons: 17/20 must count as 0.85 whatever the float rounding


# ---------------------------------------------------------------------------- time and paths
def utcnow() -> datetime:
    """The current time, timezone-aware UTC: the default ``at`` of every call."""
    return datetime.now(UTC)


def _utc(at: object, what: str = "at") -> datetime:
    """``at`` as an aware UTC datetime (``None`` = now); naive times are refused, not guessed."""
    if at is None:
        return utcnow()
    if not isinstance(at, datetime):
        raise InvalidTimestamp(f"{what}: expected a timezone-aware datetime, got {at!r}")
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidTimestamp(f"{what}: {at.isoformat()} has no timezone; pass an aware UTC "
                               "datetime (e.g. datetime.now(UTC))")
    return at.astimezone(UTC)


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat()


def _parse_time(value: object, where: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise HospitalDataError(where, f"must be an ISO 8601 time string or null, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise HospitalDataError(where, f"not an ISO 8601 time: {value!r}") from exc
    if parsed.tzinfo is None:
        raise HospitalDataError(where, f"{value!r} has no timezone offset")
    return parsed.astimezone(UTC)


def cap_datetime(at: datetime) -> str:
    """A time in CAP 1.2 form: ``2026-11-27T21:00:00-00:00``.

    CAP 1.2 (section 3.3.2, ``sent``) wants ``YYYY-MM-DDThh:mm:ssXzh:zm`` with no fractional
    seconds, forbids the ``Z`` designator and writes UTC as ``-00:00`` (not ``+00:00``).
    """
    return _utc(at).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%S") + "-00:00"


def project_data_path(name: str) -> Path:
    """Path of a file shipped in the repository's ``data/`` directory, e.g.
    ``project_data_path("hospitals/dijon-metropole.json")``.

    The package is installed editable, so ``data/`` sits next to ``engine/``. Absolute names and
    ``..`` are refused: the name may come from an API request.
    """
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise ValueError(f"data file name must be relative to data/ without '..': {name!r}")
    path = _DATA_DIR / relative
    if not path.exists():
        raise FileNotFoundError(f"no data file {name!r} (looked for {path})")
    return path


# ---------------------------------------------------------------------------- vocabulary
# EDXL-HAVE code lists, checked against:
# - OASIS EDXL-HAVE 1.0, OASIS Standard incorporating Approved Errata, 22 Dec 2009
#   (http://docs.oasis-open.org/emergency/edxl-have/v1.0/errata/edxl-have-v1.0-os-errata-os.html),
#   as published in NIEM's code list "have-codes" (release.niem.gov/niem/codes/edxl_have/4.0/
#   have-codes.xsd): BedCategoryCodeSimpleType has 9 codes (AdultICU, Burn, MedicalSurgical,
#   NegativeFlowIsolation, OperatingRooms, OtherIsolation, PediatricICU, Pediatrics,
#   Psychiatric); EMSTrafficStatusCodeSimpleType has Normal ("accepting all EMS traffic"),
#   Advisory ("specific resource limitations which may affect transport of some EMS traffic"),
#   Closed ("requesting re-route of EMS traffic to other facilities"), NotApplicable ("does not
#   have an emergency department"); EMSOffloadStatusCodeSimpleType has Normal and Delayed
#   ("the time required to offload the patient is longer than typical").
# - EDXL-HAVE 2.0 (CS02, 18 March 2019) keeps the EMS traffic and offload values; its bed list
#   (as implemented by EDXLSharp's EDXLHAVE_2_0Lib) adds NeonatalICU, EmergencyDepartment,
#   NurseryBeds, RehabLongTermCare and splits Psychiatric into Adult/PediatricPsychiatric.
#   gyrophare uses the 1.0 list of 9, which every 2.0 list can be mapped onto.
_E = TypeVar("_E", bound=StrEnum)


def _parse_enum(cls: type[_E], value: object, what: str, error: type[Exception]) -> _E:
    if isinstance(value, cls):
        return value
    if isinstance(value, str):
        for member in cls:
            if value == member.value or value.strip().lower() == member.value.lower():
                return member
    valid = ", ".join(m.value for m in cls)
    raise error(f"{what}: {value!r} is not one of {valid}")


class BedType(StrEnum):
    """EDXL-HAVE 1.0 bed categories (values are the standard's codes)."""

    ADULT_ICU = "AdultICU"
    PEDIATRIC_ICU = "PediatricICU"
    MEDICAL_SURGICAL = "MedicalSurgical"
    BURN = "Burn"
    PEDIATRICS = "Pediatrics"
    PSYCHIATRIC = "Psychiatric"
    NEGATIVE_FLOW_ISOLATION = "NegativeFlowIsolation"
    OTHER_ISOLATION = "OtherIsolation"
    OPERATING_ROOMS = "OperatingRooms"

    @classmethod
    def parse(cls, value: object, *, what: str = "bed type") -> BedType:
        """A member from its code (case-insensitive); :class:`UnknownBedType` otherwise."""
        return _parse_enum(cls, value, what, UnknownBedType)


class EDStatus(StrEnum):
    """EDXL-HAVE ``EMSTrafficStatus``: may ambulances bring patients to the ED?"""

    NORMAL = "Normal"
    ADVISORY = "Advisory"
    CLOSED = "Closed"
    NOT_APPLICABLE = "NotApplicable"

    @classmethod
    def parse(cls, value: object, *, what: str = "ed_status") -> EDStatus:
        return _parse_enum(cls, value, what, InvalidStatus)


class OffloadStatus(StrEnum):
    """EDXL-HAVE ``EMSOffloadStatus``: do crews wait longer than usual to hand patients over?"""

    NORMAL = "Normal"
    DELAYED = "Delayed"

    @classmethod
    def parse(cls, value: object, *, what: str = "offload_status") -> OffloadStatus:
        return _parse_enum(cls, value, what, InvalidStatus)


class SaturationLevel(IntEnum):
    """Ordered levels: ``normal < tension < saturated < closed``. ``str()`` gives the name."""

    NORMAL = 0
    TENSION = 1
    SATURATED = 2
    CLOSED = 3

    def __str__(self) -> str:
        return self.name.lower()

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: object, *, what: str = "level") -> SaturationLevel:
        if isinstance(value, SaturationLevel):
            return value
        if isinstance(value, str) and value.strip().upper() in cls.__members__:
            return cls[value.strip().upper()]
        raise HospitalDataError(what, f"{value!r} is not one of normal, tension, saturated, "
                                "closed")


#: Capabilities gyrophare knows; hospitals may carry others (they then become valid filters).
CAPABILITIES: frozenset[str] = frozenset({
    "emergency", "trauma", "stroke", "cardiology", "burn", "pediatrics", "maternity",
    "psychiatry", "oncology", "surgery", "geriatrics", "rehabilitation",
})


# ---------------------------------------------------------------------------- capacities
def _count(value: object, where: str, error: type[Exception] = InvalidCapacity) -> int:
    """An integer >= 0 (``bool`` is not a count, and ``2.0`` is not an integer here)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        if error is HospitalDataError:
            raise HospitalDataError(where, f"must be an integer >= 0, got {value!r}")
        raise error(f"{where}: must be an integer >= 0, got {value!r}")
    return int(value)


@dataclass(frozen=True, slots=True)
class BedCapacity:
    """Beds of one type: ``baseline`` staffed beds, ``available`` free right now.

    A baseline of 0 means the hospital does not offer this bed type.
    """

    baseline: int
    available: int

    def __post_init__(self) -> None:
        _count(self.baseline, "baseline")
        _count(self.available, "available")
        if self.available > self.baseline:
            raise InvalidCapacity(f"available ({self.available}) exceeds baseline "
                                  f"({self.baseline})")

    @property
    def offered(self) -> bool:
        return self.baseline > 0

    def to_dict(self) -> dict[str, int]:
        return {"baseline": self.baseline, "available": self.available}


def _capacity(baseline: object, available: object, where: str,
              error: type[Exception] = InvalidCapacity) -> BedCapacity:
    b = _count(baseline, f"{where}.baseline", error)
    a = _count(available, f"{where}.available", error)
    if a > b:
        problem = f"available ({a}) must not exceed baseline ({b})"
        if error is HospitalDataError:
            raise HospitalDataError(f"{where}.available", problem)
        raise error(f"{where}.available: {problem}")
    return BedCapacity(b, a)


# ---------------------------------------------------------------------------- hospitals
@dataclass(frozen=True, slots=True)
class Hospital:
    """A hospital as the board sees it. Immutable: the board replaces it on every update.

    Attributes
    ----------
    lat, lon
        The building (FINESS / OSM position).
    entrance
        Where an ambulance arrives on the road network, set by :func:`snap_entrances`;
        ``None`` until then. :attr:`destination` is what routing should use.
    entrance_note
        How the entrance was obtained (snap distance) or why snapping failed.
    capabilities
        Lower-case tags such as ``"emergency"``, ``"stroke"``: what the hospital treats.
    beds
        Capacity per EDXL-HAVE bed type (read-only mapping).
    updated_at
        Time of the last status report from the hospital; ``None`` = never reported (stale).
    source, capacity_assumed, assumed
        Provenance: where the record comes from, whether the capacities are assumptions rather
        than reported figures, and what exactly is assumed.
    demo
        A demonstration facility, not a real hospital (CAP export refuses ``status="Actual"``).
    """

    id: str
    name: str
    lat: float
    lon: float
    capabilities: frozenset[str] = frozenset()
    beds: Mapping[BedType, BedCapacity] = field(default_factory=dict)
    ed_status: EDStatus = EDStatus.NORMAL
    offload_status: OffloadStatus | None = None
    updated_at: datetime | None = None
    entrance: tuple[float, float] | None = None
    entrance_note: str = ""
    source: str = ""
    capacity_assumed: bool = False
    assumed: str = ""
    demo: bool = False
    address: str = ""
    external_ids: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.strip():
            raise HospitalDataError("id", f"must be a non-empty string, got {self.id!r}")
        if any(c in self.id for c in " ,<&\t\n"):
            raise HospitalDataError("id", f"{self.id!r} must not contain spaces, commas, '<' "
                                    "or '&' (it becomes part of CAP identifiers)")
        lat, lon = validate_coordinate(self.lat, self.lon, what=f"hospital {self.id!r}")
        object.__setattr__(self, "lat", lat)
        object.__setattr__(self, "lon", lon)
        object.__setattr__(self, "capabilities",
                           frozenset(str(c).strip().lower() for c in self.capabilities))
        beds: dict[BedType, BedCapacity] = {}
        for key, cap in dict(self.beds).items():
            if not isinstance(cap, BedCapacity):
                raise InvalidCapacity(f"beds.{key}: expected a BedCapacity, got {cap!r}")
            beds[BedType.parse(key, what=f"beds.{key}")] = cap
        object.__setattr__(self, "beds", MappingProxyType(beds))
        object.__setattr__(self, "ed_status", EDStatus.parse(self.ed_status))
        if self.offload_status is not None:
            object.__setattr__(self, "offload_status", OffloadStatus.parse(self.offload_status))
        if self.updated_at is not None:
            object.__setattr__(self, "updated_at", _utc(self.updated_at, "updated_at"))
        if self.entrance is not None:
            object.__setattr__(self, "entrance", validate_coordinate(
                *self.entrance, what=f"hospital {self.id!r} entrance"))
        object.__setattr__(self, "external_ids", MappingProxyType(
            {str(k): str(v) for k, v in dict(self.external_ids).items()}))

    @property
    def destination(self) -> tuple[float, float]:
        """``(lat, lon)`` to route to: the snapped entrance, else the building itself."""
        return self.entrance if self.entrance is not None else (self.lat, self.lon)

    def offers(self, bed_type: BedType) -> bool:
        cap = self.beds.get(bed_type)
        return cap is not None and cap.offered

    def offered(self) -> list[BedType]:
        """Bed types with a baseline above 0, in :class:`BedType` order."""
        return [bt for bt in BedType if self.offers(bt)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record, the format of ``data/hospitals/*.json`` entries."""
        return {
            "id": self.id,
            "name": self.name,
            "lat": self.lat,
            "lon": self.lon,
            "address": self.address,
            "external_ids": dict(self.external_ids),
            "capabilities": sorted(self.capabilities),
            "beds": {bt.value: self.beds[bt].to_dict() for bt in BedType if bt in self.beds},
            "ed_status": self.ed_status.value,
            "offload_status": None if self.offload_status is None else self.offload_status.value,
            "updated_at": _iso(self.updated_at),
            "entrance": (None if self.entrance is None
                         else {"lat": self.entrance[0], "lon": self.entrance[1]}),
            "entrance_note": self.entrance_note,
            "source": self.source,
            "capacity_assumed": self.capacity_assumed,
            "assumed": self.assumed,
            "demo": self.demo,
        }

    @classmethod
    def from_dict(cls, data: object, *, where: str = "hospital") -> Hospital:
        """Validate a record; every problem is a :class:`HospitalDataError` naming the field,
        e.g. ``hospitals[2].beds.AdultICU.available: must be an integer >= 0``."""
        if not isinstance(data, Mapping):
            raise HospitalDataError(where, f"must be an object, got {type(data).__name__}")
        unknown = sorted(set(data) - _HOSPITAL_FIELDS)
        if unknown:
            raise HospitalDataError(f"{where}.{unknown[0]}", "unknown field (known: "
                                    f"{', '.join(sorted(_HOSPITAL_FIELDS))})")
        for required in ("id", "name", "lat", "lon"):
            if required not in data:
                raise HospitalDataError(f"{where}.{required}", "required")
        hid = data["id"]
        if not isinstance(hid, str) or not hid.strip():
            raise HospitalDataError(f"{where}.id", f"must be a non-empty string, got {hid!r}")
        name = data["name"]
        if not isinstance(name, str) or not name.strip():
            raise HospitalDataError(f"{where}.name", f"must be a non-empty string, got {name!r}")
        for key in ("lat", "lon"):
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise HospitalDataError(f"{where}.{key}", f"must be a number, got {value!r}")
        try:
            validate_coordinate(data["lat"], data["lon"])
        except InvalidCoordinate as exc:
            raise HospitalDataError(f"{where}.lat/lon", str(exc)) from exc
        caps = data.get("capabilities", [])
        if not isinstance(caps, list) or not all(isinstance(c, str) and c.strip() for c in caps):
            raise HospitalDataError(f"{where}.capabilities",
                                    f"must be a list of non-empty strings, got {caps!r}")
        beds_in = data.get("beds", {})
        if not isinstance(beds_in, Mapping):
            raise HospitalDataError(f"{where}.beds", "must be an object bed type -> "
                                    "{baseline, available}")
        beds: dict[BedType, BedCapacity] = {}
        for key, value in beds_in.items():
            try:
                bt = BedType.parse(key)
            except UnknownBedType as exc:
                raise HospitalDataError(f"{where}.beds.{key}", str(exc)) from exc
            bwhere = f"{where}.beds.{bt.value}"
            if not isinstance(value, Mapping) or set(value) != {"baseline", "available"}:
                raise HospitalDataError(bwhere, "must be an object with exactly 'baseline' and "
                                        f"'available', got {value!r}")
            beds[bt] = _capacity(value["baseline"], value["available"], bwhere,
                                 HospitalDataError)
        statuses: dict[str, Any] = {}
        for key, parser in (("ed_status", EDStatus.parse), ("offload_status",
                                                            OffloadStatus.parse)):
            raw = data.get(key)
            if raw is None:
                statuses[key] = EDStatus.NORMAL if key == "ed_status" else None
                continue
            try:
                statuses[key] = parser(raw, what=f"{where}.{key}")
            except InvalidStatus as exc:
                raise HospitalDataError(f"{where}.{key}", str(exc).split(": ", 1)[1]) from exc
        entrance_in = data.get("entrance")
        entrance = None
        if entrance_in is not None:
            if not isinstance(entrance_in, Mapping) or set(entrance_in) != {"lat", "lon"}:
                raise HospitalDataError(f"{where}.entrance",
                                        "must be null or an object with 'lat' and 'lon'")
            try:
                entrance = validate_coordinate(entrance_in["lat"], entrance_in["lon"])
            except InvalidCoordinate as exc:
                raise HospitalDataError(f"{where}.entrance", str(exc)) from exc
        for key in ("entrance_note", "source", "assumed", "address"):
            if not isinstance(data.get(key, ""), str):
                raise HospitalDataError(f"{where}.{key}", "must be a string")
        for key in ("capacity_assumed", "demo"):
            if not isinstance(data.get(key, False), bool):
                raise HospitalDataError(f"{where}.{key}", "must be true or false")
        ext = data.get("external_ids", {})
        if not isinstance(ext, Mapping) or not all(isinstance(k, str) and isinstance(v, str)
                                                   for k, v in ext.items()):
            raise HospitalDataError(f"{where}.external_ids", "must be an object of strings")
        updated_at = _parse_time(data.get("updated_at"), f"{where}.updated_at")
        try:
            return cls(
                id=hid, name=name, lat=float(data["lat"]), lon=float(data["lon"]),
                capabilities=frozenset(caps), beds=beds,
                ed_status=statuses["ed_status"], offload_status=statuses["offload_status"],
                updated_at=updated_at,
                entrance=entrance, entrance_note=data.get("entrance_note", ""),
                source=data.get("source", ""), capacity_assumed=data.get("capacity_assumed",
                                                                         False),
                assumed=data.get("assumed", ""), demo=data.get("demo", False),
                address=data.get("address", ""), external_ids=ext,
            )
        except HospitalDataError as exc:
            raise HospitalDataError(f"{where}.{exc.field}", exc.problem) from exc


_HOSPITAL_FIELDS = frozenset({
    "id", "name", "lat", "lon", "address", "external_ids", "capabilities", "beds", "ed_status",
    "offload_status", "updated_at", "entrance", "entrance_note", "source", "capacity_assumed",
    "assumed", "demo",
})


@dataclass(frozen=True, slots=True)
class EnRoute:
    """An ambulance bringing a patient who will need a ``bed_type`` bed at ``hospital_id``."""

    ambulance_id: str
    hospital_id: str
    bed_type: BedType
    eta_s: float
    registered_at: datetime

    @property
    def eta_at(self) -> datetime:
        return self.registered_at + timedelta(seconds=self.eta_s)

    def to_dict(self) -> dict[str, Any]:
        return {"ambulance_id": self.ambulance_id, "hospital_id": self.hospital_id,
                "bed_type": self.bed_type.value, "eta_s": self.eta_s,
                "registered_at": _iso(self.registered_at), "eta_at": _iso(self.eta_at)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "en_route") -> EnRoute:
        try:
            registered = _parse_time(data["registered_at"], f"{where}.registered_at")
            assert registered is not None
            return cls(str(data["ambulance_id"]), str(data["hospital_id"]),
                       BedType.parse(data["bed_type"]), _eta(data["eta_s"]), registered)
        except (KeyError, AssertionError, GyrophareError) as exc:
            raise HospitalDataError(where, f"bad en-route record {dict(data)!r}: {exc}") from exc


def _eta(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
            value) or value < 0:
        raise ValueError(f"eta_s: must be a finite number of seconds >= 0, got {value!r}")
    return float(value)


# ---------------------------------------------------------------------------- policy
_DEFAULT_ED_FLOOR = MappingProxyType({EDStatus.CLOSED: SaturationLevel.CLOSED,
                                      EDStatus.ADVISORY: SaturationLevel.TENSION})
_DEFAULT_OFFLOAD_FLOOR = MappingProxyType({OffloadStatus.DELAYED: SaturationLevel.TENSION})


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
    """

    tension: float = 0.85
    saturated: float = 0.95
    margin: float = 0.05
    stale_after: timedelta = timedelta(minutes=30)
    ed_floor: Mapping[EDStatus, SaturationLevel] = field(
        default_factory=lambda: _DEFAULT_ED_FLOOR)
    offload_floor: Mapping[OffloadStatus, SaturationLevel] = field(
        default_factory=lambda: _DEFAULT_OFFLOAD_FLOOR)

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
        return {
            "tension": self.tension, "saturated": self.saturated, "margin": self.margin,
            "stale_after_s": self.stale_after.total_seconds(),
            "ed_floor": {k.value: str(v) for k, v in self.ed_floor.items()},
            "offload_floor": {k.value: str(v) for k, v in self.offload_floor.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SaturationPolicy:
        try:
            return cls(tension=data["tension"], saturated=data["saturated"],
                       margin=data["margin"],
                       stale_after=timedelta(seconds=float(data["stale_after_s"])),
                       ed_floor=dict(data["ed_floor"]), offload_floor=dict(data["offload_floor"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise HospitalDataError("policy", str(exc)) from exc


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
            "updated_at": _iso(self.updated_at),
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
# Observed; a stale one is only Likely still true.
_CAP_URGENCY = {SaturationLevel.CLOSED: "Immediate", SaturationLevel.SATURATED: "Immediate",
                SaturationLevel.TENSION: "Expected", SaturationLevel.NORMAL: "Past"}
_CAP_SEVERITY = {SaturationLevel.CLOSED: "Severe", SaturationLevel.SATURATED: "Severe",
                 SaturationLevel.TENSION: "Moderate", SaturationLevel.NORMAL: "Minor"}
_CAP_INSTRUCTION = {
    SaturationLevel.CLOSED: "Do not route ambulances here: re-route to another facility.",
    SaturationLevel.SATURATED: "Prefer another suitable hospital for this bed type.",
    SaturationLevel.TENSION: "Check alternatives before dispatching here.",
}
_CAP_STATUSES = ("Actual", "Exercise", "System", "Test", "Draft")
_CAP_SCOPES = ("Public", "Restricted", "Private")
_CAP_FORBIDDEN = (" ", ",", "<", "&", "\t", "\n")


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
            "at": _iso(self.at), "reason": self.reason, "msg_type": self.msg_type,
            "demo": self.demo,
            "replaces": (None if self.replaces is None
                         else {"id": self.replaces[0], "at": _iso(self.replaces[1])}),
            "location": {"type": "Point", "coordinates": [self.lon, self.lat]},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "signal") -> SaturationSignal:
        try:
            lon, lat = data["location"]["coordinates"]
            rep = data.get("replaces")
            at = _parse_time(data["at"], f"{where}.at")
            assert at is not None
            replaces = None
            if rep is not None:
                rep_at = _parse_time(rep["at"], f"{where}.replaces.at")
                assert rep_at is not None
                replaces = (str(rep["id"]), rep_at)
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
        except (KeyError, TypeError, ValueError, AssertionError) as exc:
            raise HospitalDataError(where, f"bad signal record: {exc!r}") from exc

    # -------------------------------------------------------------------- CAP 1.2
    def headline(self) -> str:
        what = self.bed_type.value if self.bed_type is not None else "overall"
        change = (f"{self.previous_level} -> {self.new_level}"
                  if self.new_level != self.previous_level else f"still {self.new_level}")
        stale = " (status stale)" if self.stale else ""
        return f"{self.hospital_name}: {what} {change}{stale}"[:160]

    def to_cap(self, *, sender: str = "gyrophare@localhost", status: str = "Actual",
               scope: str = "Restricted",
               restriction: str = "Emergency medical services and hospital command only",
               addresses: str | None = None, radius_km: float = 1.0) -> str:
        """This signal as an OASIS CAP 1.2 alert (an XML document, as text).

        Parameters
        ----------
        sender
            CAP ``sender`` (no spaces, commas, ``<`` or ``&``); also used in ``references``.
        status
            ``Actual`` or ``Exercise`` (also ``System``, ``Test``, ``Draft``). A signal about a
            demonstration facility refuses ``Actual``: no real alert about a fictitious hospital.
        scope, restriction, addresses
            CAP requires ``restriction`` when scope is ``Restricted`` and ``addresses`` when it is
            ``Private``.
        radius_km
            Radius of the alert ``circle`` around the hospital, written ``"lat,lon radius"``
            (CAP's order: latitude first, unlike GeoJSON).

        Notes
        -----
        ``msgType`` is ``Alert`` for a rise, otherwise ``Update`` with ``references`` to the
        previous signal for the same hospital and bed type (``Alert`` if there is none).
        ``urgency``/``severity`` follow the new level (closed, saturated: Immediate / Severe;
        tension: Expected / Moderate; normal: Past / Minor); ``certainty`` is ``Observed`` for a
        fresh status and ``Likely`` for a stale one.
        """
        for name, value in (("sender", sender), ("identifier", self.id)):
            if not value or any(c in value for c in _CAP_FORBIDDEN):
                raise ValueError(f"CAP {name} {value!r} must be non-empty without spaces, "
                                 "commas, '<' or '&'")
        if status not in _CAP_STATUSES:
            raise ValueError(f"CAP status {status!r} is not one of {', '.join(_CAP_STATUSES)}")
        if self.demo and status == "Actual":
            raise ValueError(f"{self.hospital_name!r} is a demonstration facility: export with "
                             "status='Exercise' (or 'Test'), never 'Actual'")
        if scope not in _CAP_SCOPES:
            raise ValueError(f"CAP scope {scope!r} is not one of {', '.join(_CAP_SCOPES)}")
        if scope == "Restricted" and not restriction:
            raise ValueError("CAP scope 'Restricted' needs a restriction text")
        if scope == "Private" and not addresses:
            raise ValueError("CAP scope 'Private' needs addresses")
        if (isinstance(radius_km, bool) or not isinstance(radius_km, int | float)
                or not math.isfinite(radius_km) or radius_km <= 0):
            raise ValueError(f"radius_km must be a positive number, got {radius_km!r}")

        def sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
            el = ET.SubElement(parent, f"{{{CAP_NAMESPACE}}}{tag}")
            if text is not None:
                el.text = text
            return el

        # element order follows the CAP 1.2 schema (xs:sequence)
        alert = ET.Element(f"{{{CAP_NAMESPACE}}}alert")
        sub(alert, "identifier", self.id)
        sub(alert, "sender", sender)
        sub(alert, "sent", cap_datetime(self.at))
        sub(alert, "status", status)
        sub(alert, "msgType", self.msg_type)
        sub(alert, "source", "gyrophare hospital saturation board")
        sub(alert, "scope", scope)
        if scope == "Restricted":
            sub(alert, "restriction", restriction)
        if scope == "Private":
            sub(alert, "addresses", addresses)
        if status != "Actual" or self.demo:
            note = "Exercise or test message."
            if self.demo:
                note = "Demonstration facility, not a real hospital."
            sub(alert, "note", note)
        if self.msg_type == "Update" and self.replaces is not None:
            sub(alert, "references",
                f"{sender},{self.replaces[0]},{cap_datetime(self.replaces[1])}")
        info = sub(alert, "info")
        sub(info, "category", "Health")
        sub(info, "event", "Hospital saturation")
        sub(info, "urgency", _CAP_URGENCY[self.new_level])
        sub(info, "severity", _CAP_SEVERITY[self.new_level])
        sub(info, "certainty", "Likely" if self.stale else "Observed")
        sub(info, "senderName", "gyrophare hospital saturation board")
        sub(info, "headline", self.headline())
        occupancy = "n/a" if self.occupancy is None else f"{self.occupancy:.0%}"
        sub(info, "description",
            f"{self.hospital_name} ({self.hospital_id}), "
            f"{self.bed_type.value if self.bed_type else 'overall'}: level {self.previous_level}"
            f" -> {self.new_level}; occupancy {occupancy} including {self.en_route} ambulance(s)"
            f" en route; {'status stale' if self.stale else 'status current'}. "
            f"Reason: {self.reason}")
        if self.new_level in _CAP_INSTRUCTION:
            sub(info, "instruction", _CAP_INSTRUCTION[self.new_level])
        for name, value in (
            ("level", str(self.new_level)),
            ("previousLevel", str(self.previous_level)),
            ("occupancy", "" if self.occupancy is None else f"{self.occupancy:.4f}"),
            ("bedType", self.bed_type.value if self.bed_type is not None else "overall"),
            ("hospitalId", self.hospital_id),
            ("enRoute", str(self.en_route)),
            ("stale", "true" if self.stale else "false"),
        ):
            param = sub(info, "parameter")
            sub(param, "valueName", name)
            sub(param, "value", value)
        area = sub(info, "area")
        sub(area, "areaDesc", self.hospital_name)
        sub(area, "circle", f"{self.lat:.6f},{self.lon:.6f} {float(radius_km):g}")
        body = ET.tostring(alert, encoding="unicode", default_namespace=CAP_NAMESPACE)
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + body


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
        at = _utc(at)
        #: admissions beyond capacity, per (hospital id, bed type): a surge replay expects
        #: them (and counts them); a live board logs each one too unless ``log_overflow`` is off
        self.overflows: Counter[tuple[str, str]] = Counter()
        self.log_overflow = log_overflow
        if isinstance(history, bool) or not isinstance(history, int) or history < 1:
            raise ValueError(f"history must be a positive integer, got {history!r}")
        self.policy = policy if policy is not None else SaturationPolicy()
        self.board_id = board_id if board_id is not None else uuid.uuid4().hex[:12]
        if not self.board_id or any(c in self.board_id for c in _CAP_FORBIDDEN):
            raise ValueError(f"board_id {self.board_id!r} must be non-empty without spaces, "
                             "commas, '<' or '&'")
        self._lock = threading.RLock()
        self._hospitals: dict[str, Hospital] = {}
        self._en_route: dict[str, EnRoute] = {}
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

    def en_route(self, hospital_id: str | None = None) -> list[EnRoute]:
        """Ambulances en route (to one hospital, or all), in registration order."""
        with self._lock:
            if hospital_id is not None:
                self._get(hospital_id)
            return [e for e in self._en_route.values()
                    if hospital_id is None or e.hospital_id == hospital_id]

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
        stale = self.policy.is_stale(hospital.updated_at, at)
        common = dict(hospital_id=hospital.id, hospital_name=hospital.name, stale=stale,
                      ed_status=hospital.ed_status, offload_status=hospital.offload_status,
                      updated_at=hospital.updated_at)
        if bed_type is not None:
            cap = hospital.beds[bed_type]
            n = counts.get(bed_type, 0)
            return SaturationRow(bed_type=bed_type, baseline=cap.baseline,
                                 available=cap.available, en_route=n,
                                 occupancy=self._occupancy(cap, n),
                                 level=self._levels[(hospital.id, bed_type)], **common)
        offered = hospital.offered()
        occs = [self._occupancy(hospital.beds[bt], counts.get(bt, 0)) for bt in offered]
        return SaturationRow(
            bed_type=None, baseline=sum(hospital.beds[bt].baseline for bt in offered),
            available=sum(hospital.beds[bt].available for bt in offered),
            en_route=sum(counts.values()), occupancy=max(occs) if occs else None,
            level=self._levels[(hospital.id, None)], **common)

    def _recompute(self, hospital_id: str, at: datetime, reason: str, *,
                   emit: bool = True) -> list[SaturationSignal]:
        """Recompute one hospital's levels and stale flag; record and queue the signals."""
        h = self._hospitals[hospital_id]
        counts = self._counts(hospital_id)
        signals: list[SaturationSignal] = []
        worst = self.policy.floor(h.ed_status, h.offload_status)
        occupancies: list[float] = []
        for bt in BedType:
            key = (hospital_id, bt)
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
        key = (hospital_id, None)
        previous = self._levels.get(key)
        prev_stale = self._stale.get(hospital_id, stale)
        self._levels[key] = SaturationLevel(worst)
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
        at = _utc(at)
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
            self._hospitals[hospital_id] = replace(h, beds=new_beds, ed_status=ed,
                                                   offload_status=off, updated_at=at)
            signals = self._recompute(hospital_id, at, "status report: " + (
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
            return _capacity(baseline, available, where)
        if old is None or not old.offered:
            raise BedTypeNotOffered(f"{where}: {h.name!r} does not offer {bt.value} (baseline 0);"
                                    " give {'baseline': b, 'available': a} to open it")
        return _capacity(old.baseline, value, where)

    def register_en_route(self, ambulance_id: str, hospital_id: str,
                          bed_type: BedType | str, *, eta_s: float,
                          at: datetime | None = None) -> list[SaturationSignal]:
        """Count an ambulance bound for ``hospital_id`` as occupying a ``bed_type`` bed there.

        Raises :class:`DuplicateAmbulance` if the id is already en route (cancel it first),
        :class:`BedTypeNotOffered` if the hospital has no such beds. A closed hospital is
        accepted: the board records what crews do, dispatch decides where they go.
        """
        at = _utc(at)
        with self._lock:
            if not isinstance(ambulance_id, str) or not ambulance_id.strip():
                raise UnknownAmbulance(f"ambulance id must be a non-empty string, got "
                                       f"{ambulance_id!r}")
            if ambulance_id in self._en_route:
                current = self._en_route[ambulance_id]
                raise DuplicateAmbulance(f"ambulance {ambulance_id!r} is already en route to "
                                         f"{current.hospital_id!r}; cancel it or report its "
                                         "arrival first")
            h = self._get(hospital_id)
            bt = BedType.parse(bed_type)
            if not h.offers(bt):
                raise BedTypeNotOffered(f"{h.name!r} ({hospital_id}) does not offer {bt.value} "
                                        f"beds (offers: {', '.join(h.offered()) or 'none'})")
            eta = _eta(eta_s)
            self._en_route[ambulance_id] = EnRoute(ambulance_id, hospital_id, bt, eta, at)
            signals = self._recompute(hospital_id, at, f"ambulance {ambulance_id} en route for "
                                      f"{bt.value} (ETA {eta:.0f} s)")
        self._deliver()
        return signals

    def _pop(self, ambulance_id: str) -> EnRoute:
        entry = self._en_route.get(ambulance_id) if isinstance(ambulance_id, str) else None
        if entry is None:
            known = ", ".join(repr(k) for k in list(self._en_route)[:5]) or "none"
            raise UnknownAmbulance(f"ambulance {ambulance_id!r} is not en route (en route: "
                                   f"{known})")
        return entry

    def arrived(self, ambulance_id: str, *, at: datetime | None = None,
                admit: bool = True) -> list[SaturationSignal]:
        """The ambulance reached its hospital. ``admit=True`` takes one available bed of its type
        (the patient now occupies it); ``admit=False`` (treated and released, or transferred)
        just frees the en-route count. Admitting into a unit with no free bed keeps
        ``available`` at 0 (overflow is real; the next report corrects the figure)."""
        at = _utc(at)
        with self._lock:
            entry = self._pop(ambulance_id)
            h = self._hospitals[entry.hospital_id]
            del self._en_route[ambulance_id]
            reason = f"ambulance {ambulance_id} arrived"
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
            signals = self._recompute(entry.hospital_id, at, reason)
        self._deliver()
        return signals

    def cancel(self, ambulance_id: str, *, at: datetime | None = None
               ) -> list[SaturationSignal]:
        """The ambulance no longer goes there (diverted, patient not transported)."""
        at = _utc(at)
        with self._lock:
            entry = self._pop(ambulance_id)
            del self._en_route[ambulance_id]
            signals = self._recompute(entry.hospital_id, at, f"ambulance {ambulance_id} "
                                      f"cancelled (was bound for {entry.bed_type.value})")
        self._deliver()
        return signals

    def tick(self, at: datetime | None = None) -> list[SaturationSignal]:
        """Let time pass: flag hospitals whose status went stale (one overall signal each)."""
        at = _utc(at)
        with self._lock:
            signals: list[SaturationSignal] = []
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
        evaluated at ``at``."""
        at = _utc(at)
        with self._lock:
            h = self._get(hospital_id)
            if bed_type is None:
                return self._row(h, None, at)
            bt = BedType.parse(bed_type)
            if not h.offers(bt):
                raise BedTypeNotOffered(f"{h.name!r} ({hospital_id}) does not offer {bt.value} "
                                        f"beds (offers: {', '.join(h.offered()) or 'none'})")
            return self._row(h, bt, at)

    def saturation(self, at: datetime | None = None) -> list[SaturationRow]:
        """The saturation table: per hospital its overall row, then one row per offered bed
        type (baseline, available, en route, occupancy, level, stale)."""
        at = _utc(at)
        with self._lock:
            rows: list[SaturationRow] = []
            for h in self._hospitals.values():
                rows.append(self._row(h, None, at))
                rows.extend(self._row(h, bt, at) for bt in h.offered())
            return rows

    def candidates(self, bed_type: BedType | str | None = None, capability: str | None = None,
                   *, at: datetime | None = None) -> list[Candidate]:
        """Hospitals that can take the patient: offer ``bed_type``, have ``capability``, and are
        not closed. Best first: lowest level of the bed type (else overall), then lowest
        occupancy, then id. Saturated and stale hospitals stay in the list, flagged: the
        dispatcher weighs them against travel time."""
        at = _utc(at)
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
        limit = None if since is None else _utc(since, "since")
        with self._lock:
            return [s for s in self._history if limit is None or s.at >= limit]

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
                "levels": [{"hospital_id": hid, "bed_type": None if bt is None else bt.value,
                            "level": str(lv)} for (hid, bt), lv in self._levels.items()],
                "stale": dict(self._stale),
                "last_signal": [{"hospital_id": hid, "bed_type": None if bt is None else bt.value,
                                 "id": sid, "at": _iso(sat)}
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
            levels: dict[_Key, SaturationLevel] = {}
            for i, row in enumerate(data["levels"]):
                hid = board._get(row["hospital_id"]).id
                bt = None if row["bed_type"] is None else BedType.parse(row["bed_type"])
                levels[(hid, bt)] = SaturationLevel.parse(row["level"], what=f"levels[{i}]")
            board._levels = levels
            board._stale = {str(k): bool(v) for k, v in data["stale"].items()}
            for row in data["last_signal"]:
                bt = None if row["bed_type"] is None else BedType.parse(row["bed_type"])
                at = _parse_time(row["at"], "last_signal.at")
                assert at is not None
                board._last_signal[(str(row["hospital_id"]), bt)] = (str(row["id"]), at)
            board._history.extend(SaturationSignal.from_dict(s, where=f"signals[{i}]")
                                  for i, s in enumerate(data["signals"]))
            board._seq = int(data["seq"])
        except HospitalDataError:
            raise
        except (KeyError, TypeError, ValueError, AssertionError, GyrophareError) as exc:
            raise HospitalDataError("board", f"malformed board state: {exc!r}") from exc
        missing = [f"{hid}/{'overall' if bt is None else bt.value}"
                   for hid, h in board._hospitals.items() for bt in (None, *h.offered())
                   if (hid, bt) not in board._levels]
        missing += [f"{hid}/stale" for hid in board._hospitals if hid not in board._stale]
        if missing:
            raise HospitalDataError("levels", f"missing level or stale flag for {missing[:5]}")
        return board


# ---------------------------------------------------------------------------- loaders
#: Capacities given to OSM hospitals, which carry none: a placeholder so the board works,
#: always flagged ``capacity_assumed`` (empty units: replace with real reports).
DEFAULT_ASSUMED_BEDS: Mapping[BedType, BedCapacity] = MappingProxyType({
    BedType.MEDICAL_SURGICAL: BedCapacity(baseline=50, available=50),
    BedType.ADULT_ICU: BedCapacity(baseline=8, available=8),
})


def hospitals_from_graph(graph: Any, *,
                         default_beds: Mapping[BedType | str, BedCapacity] = DEFAULT_ASSUMED_BEDS
                         ) -> list[Hospital]:
    """Hospitals from the OSM ``amenity=hospital`` objects of a road graph (``graph.hospitals``).

    OSM gives names, positions and ``emergency=*``, never bed counts: every hospital gets
    ``default_beds`` and ``capacity_assumed=True``. ``emergency=yes`` -> capability
    ``"emergency"`` and ED ``Normal``; ``emergency=no`` -> no capability and ED
    ``NotApplicable``; no tag -> no ``"emergency"`` capability (unknown) and ED ``Normal``.
    Objects are kept as mapped (OSM sometimes tags a pharmacy as a hospital).
    """
    beds = {BedType.parse(k): v for k, v in default_beds.items()}
    for bt, cap in beds.items():
        if not isinstance(cap, BedCapacity):
            raise InvalidCapacity(f"default_beds.{bt.value}: expected a BedCapacity, got {cap!r}")
    out: list[Hospital] = []
    seen: set[str] = set()
    for i, obj in enumerate(getattr(graph, "hospitals", graph)):
        where = f"graph.hospitals[{i}]"
        try:
            hid, lat, lon = str(obj["id"]), obj["lat"], obj["lon"]
        except (KeyError, TypeError) as exc:
            raise HospitalDataError(where, f"needs id, lat, lon: {obj!r}") from exc
        if hid in seen:
            continue
        seen.add(hid)
        emergency = obj.get("emergency")
        name = str(obj.get("name") or "").strip()
        note = "bed capacities are placeholders (OSM has none)"
        if not name:
            name = f"Unnamed hospital ({hid})"
        if emergency == "yes":
            caps, ed = frozenset({"emergency"}), EDStatus.NORMAL
        elif emergency == "no":
            caps, ed = frozenset(), EDStatus.NOT_APPLICABLE
        else:
            caps, ed = frozenset(), EDStatus.NORMAL
            note += "; no emergency=* tag: emergency department unknown"
        out.append(Hospital(
            id=hid, name=name, lat=lat, lon=lon, capabilities=caps, beds=beds, ed_status=ed,
            source="OpenStreetMap amenity=hospital (© OpenStreetMap contributors, ODbL 1.0)",
            capacity_assumed=True, assumed=note,
            external_ids={"osm": f"{obj.get('osm_type', '')}/{obj.get('osm_id', '')}"},
        ))
    return out


def snap_entrances(board: HospitalBoard, router: Router) -> dict[str, str]:
    """Put each hospital's ``entrance`` on the road network with ``router.snap``.

    Snapping uses the router's car weights, so an entrance lands on a road an ambulance may
    drive (not a footway inside the grounds). When snapping fails (off the network, bad
    coordinate) the building's own point is kept and the reason recorded in
    ``entrance_note``. Returns ``{hospital_id: note}``.
    """
    notes: dict[str, str] = {}
    for h in board.hospitals():
        try:
            snap = router.snap((h.lat, h.lon), what=f"hospital {h.id!r}")
        except (GyrophareError, ValueError) as exc:
            note = f"not snapped, building point kept: {exc}"
            board.set_entrance(h.id, (h.lat, h.lon), note=note)
        else:
            note = f"snapped {snap.distance_m:.0f} m to the road network"
            board.set_entrance(h.id, (snap.lat, snap.lon), note=note)
        notes[h.id] = note
    return notes


_FILE_FIELDS = frozenset({"format", "name", "description", "sources", "assumptions", "license",
                          "hospitals"})


def load_hospitals(path: str | Path) -> list[Hospital]:
    """Read a hospital file (format in ``data/hospitals/README.md``), validating every field.

    Raises
    ------
    HospitalDataError
        Naming the bad field, e.g. ``hospitals[2].beds.AdultICU.available: must be an integer
        >= 0, got -1``.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise HospitalDataError(str(path), f"not valid JSON: {exc}") from exc
    return hospitals_from_dict(data)


def hospitals_from_dict(data: object) -> list[Hospital]:
    """Validate the content of a hospital file (already parsed JSON)."""
    if not isinstance(data, Mapping):
        raise HospitalDataError("(top level)", "must be an object")
    unknown = sorted(set(data) - _FILE_FIELDS)
    if unknown:
        raise HospitalDataError(unknown[0], "unknown field (known: "
                                f"{', '.join(sorted(_FILE_FIELDS))})")
    if data.get("format") != FILE_FORMAT:
        raise HospitalDataError("format", f"must be {FILE_FORMAT!r}, got {data.get('format')!r}")
    items = data.get("hospitals")
    if not isinstance(items, list):
        raise HospitalDataError("hospitals", "required: a list of hospital objects")
    hospitals: list[Hospital] = []
    first_index: dict[str, int] = {}
    for i, item in enumerate(items):
        h = Hospital.from_dict(item, where=f"hospitals[{i}]")
        if h.id in first_index:
            raise HospitalDataError(f"hospitals[{i}].id", f"duplicate id {h.id!r} (also "
                                    f"hospitals[{first_index[h.id]}])")
        first_index[h.id] = i
        hospitals.append(h)
    return hospitals


def dump_hospitals(hospitals: Iterable[Hospital], path: str | Path | None = None, *,
                   name: str = "", description: str = "", sources: Iterable[str] = (),
                   assumptions: str = "", license: str = "") -> dict[str, Any]:
    """Hospitals as a hospital-file dict; written to ``path`` (UTF-8 JSON) when given."""
    data: dict[str, Any] = {"format": FILE_FORMAT}
    for key, value in (("name", name), ("description", description), ("license", license),
                       ("assumptions", assumptions)):
        if value:
            data[key] = value
    if sources:
        data["sources"] = list(sources)
    data["hospitals"] = [h.to_dict() for h in hospitals]
    hospitals_from_dict(data)  # never write a file load_hospitals would refuse
    if path is not None:
        Path(path).write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n",
                              encoding="utf-8")
    return data
