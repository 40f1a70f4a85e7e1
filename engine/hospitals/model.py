"""The hospital record (Hospital, BedCapacity, EnRoute): immutable dataclasses whose
constructors are the one place a record is validated, whether it comes from code or from JSON.

Every field error is a :class:`HospitalDataError` naming the field (``beds.AdultICU.available:
must be an integer >= 0, got -1``); ``from_dict`` only adds where the record was
(``hospitals[2].``) and refuses unknown or missing keys. The constructors accept the JSON
shapes as well as the Python ones (``{"baseline": b, "available": a}`` for a
:class:`BedCapacity`, ``{"lat": .., "lon": ..}`` for an entrance, ISO 8601 text for a time),
so ``Hospital(**json_record)`` and ``Hospital.from_dict(json_record)`` run the same checks.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any, TypeGuard, TypeVar

from engine.errors import (
    GyrophareError,
    HospitalDataError,
    InvalidCapacity,
    InvalidCoordinate,
    InvalidTimestamp,
)
from engine.hospitals.cap import is_cap_token
from engine.hospitals.vocabulary import BedType, EDStatus, OffloadStatus, code, not_a_code
from engine.snap import validate_coordinate
from engine.timeutil import iso, parse_time

__all__ = ["AMBULANCE_ID_PATTERN", "MAX_ETA_S", "BedCapacity", "EnRoute", "Hospital",
           "InvalidAmbulanceId", "check_ambulance_id", "check_record"]

_E = TypeVar("_E", bound=StrEnum)
_MAPPINGS = dict | MappingProxyType  # checked first: isinstance(x, Mapping) is slower


# ---------------------------------------------------------------------------- ambulance ids
#: What an ambulance id may be: 1 to 64 characters, ASCII letters, digits, ``.``, ``_``, ``:``,
#: ``-``, starting with a letter or digit. It goes into URLs (``/v1/ambulances/{id}/arrived``),
#: logs and CAP reasons as it is, so nothing there needs escaping (no ``/``, no spaces, no
#: control characters).
AMBULANCE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
AMBULANCE_ID_RULE = ("1 to 64 characters: ASCII letters, digits, '.', '_', ':' or '-', "
                     "starting with a letter or digit")
_AMBULANCE_ID_RE = re.compile(AMBULANCE_ID_PATTERN.rstrip("$") + r"\Z")
#: An en-route ETA longer than this (12 h) is not a transport but a typo or a unit mix-up.
MAX_ETA_S = 12 * 3600.0


class InvalidAmbulanceId(GyrophareError, ValueError):
    """An ambulance id outside :data:`AMBULANCE_ID_PATTERN`."""


def check_ambulance_id(value: object, *, what: str = "ambulance id") -> str:
    """``value`` if it is a valid ambulance id (:data:`AMBULANCE_ID_PATTERN`), else
    :class:`InvalidAmbulanceId` saying what is wrong in words."""
    if not isinstance(value, str):
        raise InvalidAmbulanceId(f"{what} must be a string ({AMBULANCE_ID_RULE})")
    if _AMBULANCE_ID_RE.match(value) is None:
        if len(value) > 64:
            shown = f"{value[:20]!r}... ({len(value)} characters)"
        elif any(not ch.isprintable() for ch in value):
            shown = "'" + value.encode("unicode_escape").decode("ascii") + \
                "' (with control characters)"
        else:
            shown = repr(value)
        raise InvalidAmbulanceId(f"{what} {shown} is not valid: {AMBULANCE_ID_RULE}")
    return value


# ---------------------------------------------------------------------------- field rules
def check_record(data: object, *, known: Collection[str], required: Iterable[str] = (),
                 where: str = "") -> Mapping[str, Any]:
    """``data`` if it is a JSON object with only ``known`` keys and every ``required`` one;
    otherwise :class:`HospitalDataError` naming the first problem (``where.key``)."""
    prefix = f"{where}." if where else ""
    if not isinstance(data, Mapping):
        raise HospitalDataError(where or "(top level)",
                                f"must be an object, got {type(data).__name__}")
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise HospitalDataError(f"{prefix}{unknown[0]}", "unknown field (known: "
                                f"{', '.join(sorted(known))})")
    for name in required:
        if name not in data:
            raise HospitalDataError(f"{prefix}{name}", "required")
    return data


def _within(where: str, exc: HospitalDataError) -> HospitalDataError:
    return HospitalDataError(f"{where}.{exc.field}", exc.problem)


def _is_count(value: object) -> TypeGuard[int]:
    """An integer >= 0 (``bool`` is not a count, and ``2.0`` is not an integer here)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _text(name: str, value: object, *, required: bool = False) -> str:
    if required and (not isinstance(value, str) or not value.strip()):
        raise HospitalDataError(name, f"must be a non-empty string, got {value!r}")
    if not isinstance(value, str):
        raise HospitalDataError(name, "must be a string")
    return str(value)  # a plain str: a NumPy string would print as np.str_('...')


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise HospitalDataError(name, "must be true or false")
    return value


def _code(cls: type[_E], name: str, value: object) -> _E:
    member = code(cls, value)
    if member is None:
        raise HospitalDataError(name, not_a_code(cls, value))
    return member


def _time(name: str, value: object) -> datetime:
    """An aware datetime, or ISO 8601 text with a UTC offset (:func:`~engine.timeutil.\
parse_time`: its sane window applies)."""
    if isinstance(value, str) and _naive_text(value):
        raise HospitalDataError(name, f"{value!r} has no timezone offset")
    try:
        return parse_time(value, what=name)
    except InvalidTimestamp as exc:
        raise HospitalDataError(name, str(exc).removeprefix(f"{name}: ")) from exc


def _naive_text(value: str) -> bool:
    try:
        return datetime.fromisoformat(value.strip()).tzinfo is None
    except ValueError:
        return False


def _position(name: str, lat: object, lon: object) -> tuple[float, float]:
    try:
        return validate_coordinate(lat, lon)
    except InvalidCoordinate as exc:
        raise HospitalDataError(name, str(exc)) from exc


# ---------------------------------------------------------------------------- capacities
def _counts(baseline: object, available: object) -> tuple[int, int]:
    if not _is_count(baseline):
        raise HospitalDataError("baseline", f"must be an integer >= 0, got {baseline!r}")
    if not _is_count(available):
        raise HospitalDataError("available", f"must be an integer >= 0, got {available!r}")
    if available > baseline:
        raise HospitalDataError("available", f"available ({available}) must not exceed "
                                f"baseline ({baseline})")
    return baseline, available


@dataclass(frozen=True, slots=True)
class BedCapacity:
    """Beds of one type: ``baseline`` staffed beds, ``available`` free right now.

    A baseline of 0 means the hospital does not offer this bed type. Counts are integers
    ``>= 0`` with ``available <= baseline`` (:class:`InvalidCapacity` otherwise).
    """

    baseline: int
    available: int

    def __post_init__(self) -> None:
        try:
            _counts(self.baseline, self.available)
        except HospitalDataError as exc:
            raise InvalidCapacity(str(exc)) from None

    @classmethod
    def of(cls, baseline: object, available: object, *, where: str) -> BedCapacity:
        """Beds from raw counts (a report, a file); a :class:`HospitalDataError` names
        ``{where}.baseline`` or ``{where}.available`` when they are wrong."""
        try:
            return cls(*_counts(baseline, available))
        except HospitalDataError as exc:
            raise _within(where, exc) from None

    @property
    def offered(self) -> bool:
        return self.baseline > 0

    def to_dict(self) -> dict[str, int]:
        return {"baseline": self.baseline, "available": self.available}


def _capacity(name: str, value: object) -> BedCapacity:
    if isinstance(value, BedCapacity):
        return value
    if not isinstance(value, Mapping) or set(value) != {"baseline", "available"}:
        raise HospitalDataError(name, "must be an object with exactly 'baseline' and "
                                f"'available', got {value!r}")
    return BedCapacity.of(value["baseline"], value["available"], where=name)


def _beds(value: object) -> Mapping[BedType, BedCapacity]:
    if not isinstance(value, _MAPPINGS) and not isinstance(value, Mapping):
        raise HospitalDataError("beds", "must be an object bed type -> {baseline, available}")
    beds: dict[BedType, BedCapacity] = {}
    for key, cap in value.items():
        bed_type = code(BedType, key)
        if bed_type is None:
            raise HospitalDataError(f"beds.{key}", not_a_code(BedType, key))
        beds[bed_type] = (cap if isinstance(cap, BedCapacity)
                          else _capacity(f"beds.{bed_type.value}", cap))
    return MappingProxyType(beds)


# ---------------------------------------------------------------------------- hospitals
def _identifier(value: object) -> str:
    hid = _text("id", value, required=True)
    if not is_cap_token(hid):
        raise HospitalDataError("id", f"{hid!r} must not contain spaces, commas, '<' or '&' "
                                "(it becomes part of CAP identifiers)")
    return hid


def _capabilities(value: object) -> frozenset[str]:
    if not isinstance(value, frozenset | set | list | tuple) or not all(
            isinstance(c, str) and c.strip() for c in value):
        raise HospitalDataError("capabilities",
                                f"must be a list of non-empty strings, got {value!r}")
    return frozenset(c.strip().lower() for c in value)


def _coordinate(lat: object, lon: object) -> tuple[float, float]:
    for name, value in (("lat", lat), ("lon", lon)):
        if not _is_number(value):
            raise HospitalDataError(name, f"must be a number, got {value!r}")
    return _position("lat/lon", lat, lon)


def _entrance(value: object) -> tuple[float, float] | None:
    if value is None:
        return None
    if isinstance(value, Mapping) and set(value) == {"lat", "lon"}:
        return _position("entrance", value["lat"], value["lon"])
    if isinstance(value, tuple) and len(value) == 2:
        return _position("entrance", *value)
    raise HospitalDataError("entrance", "must be null or an object with 'lat' and 'lon' (in "
                            "Python also a (lat, lon) tuple)")


def _external_ids(value: object) -> Mapping[str, str]:
    if not isinstance(value, _MAPPINGS | Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise HospitalDataError("external_ids", "must be an object of strings")
    return MappingProxyType(dict(value))


@dataclass(frozen=True, slots=True)
class Hospital:
    """A hospital as the board sees it. Immutable: the board replaces it on every update.

    The constructor validates every field (see the module docstring); the JSON form is
    :meth:`to_dict` / :meth:`from_dict`, the format of ``data/hospitals/*.json`` entries.

    Attributes
    ----------
    lat, lon
        The building (FINESS / OSM position).
    entrance
        Where an ambulance arrives on the road network, set by
        :func:`~engine.hospitals.loaders.snap_entrances`; ``None`` until then.
        :attr:`destination` is what routing should use.
    entrance_note
        How the entrance was obtained (snap distance) or why snapping failed.
    capabilities
        Lower-case tags such as ``"emergency"``, ``"stroke"``: what the hospital treats.
    beds
        Capacity per EDXL-HAVE bed type (read-only mapping).
    ed_status, offload_status
        EDXL-HAVE statuses (``None`` ED status means ``Normal``; offload ``None`` = not
        reported).
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
        put = object.__setattr__
        put(self, "id", _identifier(self.id))
        put(self, "name", _text("name", self.name, required=True))
        lat, lon = _coordinate(self.lat, self.lon)
        put(self, "lat", lat)
        put(self, "lon", lon)
        put(self, "capabilities", _capabilities(self.capabilities))
        put(self, "beds", _beds(self.beds))
        put(self, "ed_status", EDStatus.NORMAL if self.ed_status is None
            else _code(EDStatus, "ed_status", self.ed_status))
        if self.offload_status is not None:
            put(self, "offload_status", _code(OffloadStatus, "offload_status",
                                              self.offload_status))
        if self.updated_at is not None:
            put(self, "updated_at", _time("updated_at", self.updated_at))
        put(self, "entrance", _entrance(self.entrance))
        put(self, "external_ids", _external_ids(self.external_ids))
        for name in ("entrance_note", "source", "assumed", "address"):
            _text(name, getattr(self, name))
        _flag("capacity_assumed", self.capacity_assumed)
        _flag("demo", self.demo)

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
            "updated_at": iso(self.updated_at),
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
        """Validate a JSON record; every problem is a :class:`HospitalDataError` naming the
        field, e.g. ``hospitals[2].beds.AdultICU.available: must be an integer >= 0``."""
        record = check_record(data, known=_HOSPITAL_FIELDS, required=_HOSPITAL_REQUIRED,
                              where=where)
        try:
            return cls(**record)
        except HospitalDataError as exc:
            raise _within(where, exc) from exc


_HOSPITAL_FIELDS = frozenset(f.name for f in fields(Hospital))
_HOSPITAL_REQUIRED = ("id", "name", "lat", "lon")


# ---------------------------------------------------------------------------- en route
def _seconds(name: str, value: object) -> float:
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        raise HospitalDataError(name, f"must be a finite number of seconds >= 0, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class EnRoute:
    """An ambulance bringing a patient who will need a ``bed_type`` bed at ``hospital_id``."""

    ambulance_id: str
    hospital_id: str
    bed_type: BedType
    eta_s: float
    registered_at: datetime

    def __post_init__(self) -> None:
        put = object.__setattr__
        try:
            check_ambulance_id(self.ambulance_id)
        except InvalidAmbulanceId as exc:
            raise HospitalDataError("ambulance_id", str(exc)) from None
        _text("hospital_id", self.hospital_id, required=True)
        put(self, "bed_type", _code(BedType, "bed_type", self.bed_type))
        eta = _seconds("eta_s", self.eta_s)
        if eta > MAX_ETA_S:
            raise HospitalDataError("eta_s", f"{eta:.0f} s is more than {MAX_ETA_S / 3600:.0f} h"
                                    ": an ETA in seconds from registration was expected")
        put(self, "eta_s", eta)
        put(self, "registered_at", _time("registered_at", self.registered_at))

    @property
    def eta_at(self) -> datetime:
        return self.registered_at + timedelta(seconds=self.eta_s)

    def expires_at(self, grace: timedelta) -> datetime:
        """When the board stops counting it: its ETA plus ``grace`` (no arrival nor cancel
        reported by then). A function of the logged registration alone, so every worker
        drops it at the same moment of the log's time."""
        return self.eta_at + grace

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``eta_at`` is derived, and ignored by :meth:`from_dict`)."""
        return {"ambulance_id": self.ambulance_id, "hospital_id": self.hospital_id,
                "bed_type": self.bed_type.value, "eta_s": self.eta_s,
                "registered_at": iso(self.registered_at), "eta_at": iso(self.eta_at)}

    @classmethod
    def from_dict(cls, data: object, *, where: str = "en_route") -> EnRoute:
        """Validate a JSON record (:meth:`to_dict`'s); :class:`HospitalDataError` otherwise."""
        record = check_record(data, known={*_EN_ROUTE_FIELDS, "eta_at"},
                              required=_EN_ROUTE_FIELDS, where=where)
        try:
            return cls(**{k: v for k, v in record.items() if k != "eta_at"})
        except HospitalDataError as exc:
            raise _within(where, exc) from exc


_EN_ROUTE_FIELDS = tuple(f.name for f in fields(EnRoute))
