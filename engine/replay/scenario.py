"""Scenario files for replays: format, loading (YAML or JSON) and validation.

A scenario describes a crisis to replay on the engine: the map, the hospitals, the ambulance
fleet, the incident calls (listed or generated), and a timeline of traffic and hospital events.
The format is documented in ``data/scenarios/README.md``; :data:`FORMAT` names its version.

Validation happens in two passes, both reporting *every* problem with the path of the bad field
(``timeline[3].location: latitude 95 is outside [-90, 90]``):

1. :func:`load_scenario` checks the structure and everything that needs no map (types, ranges,
   times inside the replay, bed types, GeoJSON shapes) and raises :class:`ScenarioError`;
2. building the simulated world (:mod:`engine.replay.world`) checks what needs the road graph and
   the hospitals (unknown hospital ids, closures touching no road), with the same error class.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import shapely
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from engine.errors import GyrophareError, UnknownBedType
from engine.hospitals import BedType, EDStatus, OffloadStatus

FORMAT: Final = "gyrophare-scenario/1"
DESTINATIONS = ("saturation_aware", "nearest")
DRIVINGS = ("priority", "normal")


class ScenarioError(GyrophareError, ValueError):
    """A scenario is invalid; ``errors`` lists every problem, each naming its field path."""

    def __init__(self, errors: list[str] | str, *, name: str = "") -> None:
        self.errors = [errors] if isinstance(errors, str) else list(errors)
        self.name = name
        head = f"invalid scenario {name!r}" if name else "invalid scenario"
        shown = self.errors[:20]
        more = f"\n  ... and {len(self.errors) - 20} more" if len(self.errors) > 20 else ""
        super().__init__(head + ":\n  " + "\n  ".join(shown) + more)


# ---------------------------------------------------------------------------- durations, times
_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(d|h|min|m|s)\s*", re.IGNORECASE)
_UNIT_S = {"d": 86400.0, "h": 3600.0, "min": 60.0, "m": 60.0, "s": 1.0}


def parse_duration(text: object) -> float:
    """``"6h"``, ``"2h30m"``, ``"90min"``, ``"1d12h"``, ``"45s"``, ``"0"`` -> seconds.

    Bare numbers are refused (is ``6`` hours, minutes or seconds?), except zero.
    """
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise ValueError(f"expected a duration such as '6h', '2h30m' or '90min', got {text!r}")
    if isinstance(text, int | float):
        if text == 0:
            return 0.0
        raise ValueError(f"duration {text!r} has no unit: write e.g. '{text}h', '{text}min' "
                         f"or '{text}s'")
    s = text.strip()
    if s in ("0", "+0"):
        return 0.0
    s = s.removeprefix("+")
    if re.fullmatch(r"\d+(?:\.\d+)?", s):
        raise ValueError(f"duration {text!r} has no unit: write e.g. '{s}h', '{s}min' or "
                         f"'{s}s'")
    pos, total = 0, 0.0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"cannot read duration {text!r}: expected e.g. '6h', '2h30m', "
                             "'90min', '1d', '45s'")
        total += float(m.group(1)) * _UNIT_S[m.group(2).lower()]
        pos = m.end()
    if not s:
        raise ValueError("empty duration")
    return total


def _aware(value: datetime, what: str = "time") -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} {value.isoformat()} has no time zone (write e.g. "
                         "2020-03-23T08:00:00+01:00 or ...Z)")
    return value


def parse_datetime(value: object) -> datetime:
    """An aware datetime from a YAML timestamp or an ISO 8601 string; naive ones refused."""
    if isinstance(value, datetime):
        return _aware(value)
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"not an ISO 8601 time: {value!r}") from None
        return _aware(dt)
    raise ValueError(f"expected an ISO 8601 time with a time zone, got {value!r}")


def _check_when(value: Any) -> Any:
    """A point in time: an offset from the start (``"2h30m"``) or an aware ISO datetime."""
    if isinstance(value, datetime):
        _aware(value)
        return value
    if isinstance(value, str):
        try:
            parse_duration(value)
            return value
        except ValueError:
            pass
        if re.match(r"^\s*\d{4}-\d{2}-\d{2}", value):
            parse_datetime(value)
            return value
        raise ValueError(f"cannot read time {value!r}: give an offset from the start "
                         "('2h30m', '1d6h') or an ISO 8601 time with a time zone")
    if isinstance(value, int | float) and not isinstance(value, bool) and value == 0:
        return "0"
    raise ValueError(f"expected an offset from the start ('2h30m') or an ISO 8601 time, "
                     f"got {value!r}")


def _check_duration(value: Any) -> Any:
    parse_duration(value)
    return value


When = Annotated[Any, AfterValidator(_check_when)]
Duration = Annotated[Any, AfterValidator(_check_duration)]


def _check_bed_type(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return BedType.parse(value).value
    except UnknownBedType:
        raise ValueError(f"{value!r} is not an EDXL-HAVE bed type (one of "
                         f"{', '.join(b.value for b in BedType)})") from None


BedTypeName = Annotated[str, AfterValidator(_check_bed_type)]


def _check_geojson(value: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    """A GeoJSON geometry (a Feature is unwrapped) of an allowed type, [lon, lat] in range."""
    if isinstance(value, Mapping) and value.get("type") == "Feature":
        value = value.get("geometry")
    if not isinstance(value, Mapping) or "type" not in value:
        raise ValueError("must be a GeoJSON geometry object with 'type' and 'coordinates'")
    if value["type"] not in allowed:
        raise ValueError(f"GeoJSON type {value['type']!r} not accepted here (expected "
                         f"{' or '.join(allowed)})")
    try:
        geom = shapely.geometry.shape(dict(value))
    except Exception as exc:  # shapely raises several types on malformed input
        raise ValueError(f"malformed {value['type']}: {exc}") from None
    if geom.is_empty:
        raise ValueError("empty geometry")
    coords = shapely.get_coordinates(geom)
    if not (coords == coords).all():
        raise ValueError("geometry has NaN coordinates")
    bad_lon = coords[(coords[:, 0] < -180) | (coords[:, 0] > 180), 0]
    bad_lat = coords[(coords[:, 1] < -90) | (coords[:, 1] > 90), 1]
    if len(bad_lat) or len(bad_lon):
        what = (f"latitude {bad_lat[0]:g} is outside [-90, 90]" if len(bad_lat)
                else f"longitude {bad_lon[0]:g} is outside [-180, 180]")
        raise ValueError(f"{what} (GeoJSON order is [lon, lat])")
    if not geom.is_valid:
        raise ValueError(f"invalid geometry: {shapely.is_valid_reason(geom)}")
    return dict(value)


def _polygon(value: Any) -> dict[str, Any]:
    return _check_geojson(value, ("Polygon", "MultiPolygon"))


def _closure_shape(value: Any) -> dict[str, Any]:
    return _check_geojson(value, ("Point", "LineString", "MultiLineString", "Polygon",
                                  "MultiPolygon"))


PolygonGeoJSON = Annotated[Any, AfterValidator(_polygon)]
ClosureGeoJSON = Annotated[Any, AfterValidator(_closure_shape)]


# ---------------------------------------------------------------------------- models
class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Location(_Model):
    """``{lat, lon}`` in degrees (WGS84)."""

    lat: float
    lon: float

    @model_validator(mode="after")
    def _range(self) -> Location:
        if not (math.isfinite(self.lat) and math.isfinite(self.lon)):
            raise ValueError(f"latitude/longitude must be finite, got ({self.lat}, {self.lon})")
        if not -90 <= self.lat <= 90:
            raise ValueError(f"latitude {self.lat:g} is outside [-90, 90]")
        if not -180 <= self.lon <= 180:
            raise ValueError(f"longitude {self.lon:g} is outside [-180, 180]")
        return self

    @property
    def pair(self) -> tuple[float, float]:
        return (self.lat, self.lon)


class NeedSpec(_Model):
    bed_type: BedTypeName | None = None
    capability: str | None = None

    @field_validator("capability")
    @classmethod
    def _cap(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("must be a non-empty string or absent")
        return None if v is None else v.strip().lower()


class MapSpec(_Model):
    osm: str | None = None
    place: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    sample: bool = False
    snap_radius_m: float = Field(500.0, gt=0)

    @model_validator(mode="after")
    def _one(self) -> MapSpec:
        given = [k for k in ("osm", "place", "bbox") if getattr(self, k)] + (
            ["sample"] if self.sample else [])
        if len(given) != 1:
            raise ValueError("give exactly one map source: osm (a file), place (a name to "
                             "download), bbox [west, south, east, north] (to download) or "
                             f"sample: true; got {given or 'none'}")
        if self.bbox is not None:
            w, s, e, n = self.bbox
            if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
                raise ValueError(f"bbox must be [west, south, east, north] in degrees with "
                                 f"west < east and south < north, got {list(self.bbox)}")
        return self


#: EDXL-HAVE statuses, checked and normalised to the standard's spelling
EDStatusName = Annotated[str | None, AfterValidator(
    lambda v: None if v is None else EDStatus.parse(v).value)]
OffloadStatusName = Annotated[str | None, AfterValidator(
    lambda v: None if v is None else OffloadStatus.parse(v).value)]


class Capacity(_Model):
    baseline: int = Field(ge=0)
    available: int = Field(ge=0)

    @model_validator(mode="after")
    def _le(self) -> Capacity:
        if self.available > self.baseline:
            raise ValueError(f"available ({self.available}) exceeds baseline ({self.baseline})")
        return self


class HospitalOverride(_Model):
    name: str | None = None
    capabilities: list[str] | None = None
    beds: dict[BedTypeName, Capacity] | None = None
    ed_status: EDStatusName = None
    offload_status: OffloadStatusName = None
    assumed: str | None = None


class SaturationSpec(_Model):
    tension: float = Field(0.85, gt=0, lt=1.5)
    saturated: float = Field(0.95, gt=0, lt=1.5)
    margin: float = Field(0.05, ge=0, lt=1)


class HospitalsSpec(_Model):
    """Where the hospitals come from, plus per-hospital overrides (capacities...)."""

    file: str | None = None
    from_graph: bool = False
    inline: list[dict[str, Any]] | None = None
    include: list[str] | None = None
    overrides: dict[str, HospitalOverride] = Field(default_factory=dict)
    stale_after_min: float | None = Field(None, gt=0)
    saturation: SaturationSpec = Field(default_factory=SaturationSpec)
    note: str = ""

    @model_validator(mode="after")
    def _one(self) -> HospitalsSpec:
        given = [k for k in ("file", "inline") if getattr(self, k)] + (
            ["from_graph"] if self.from_graph else [])
        if len(given) != 1:
            raise ValueError("give exactly one hospital source: file (data/hospitals format), "
                             f"from_graph: true (OSM amenity=hospital) or inline; got "
                             f"{given or 'none'}")
        return self


class Station(_Model):
    id: str = Field(min_length=1, pattern=r"^[^\s,<&]+$")
    name: str = ""
    location: Location
    ambulances: int = Field(ge=1, le=500)
    note: str = ""


class FleetSpec(_Model):
    stations: list[Station] = Field(min_length=1)
    dispatch_returning: bool = True

    @model_validator(mode="after")
    def _unique(self) -> FleetSpec:
        ids = [s.id for s in self.stations]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"duplicate station id(s): {', '.join(dup)}")
        return self


class TimingSpec(_Model):
    call_processing_s: float = Field(60.0, ge=0)
    turnout_s: float = Field(60.0, ge=0)
    on_scene_min: float = Field(15.0, ge=0)
    offload_min: float = Field(15.0, ge=0)
    offload_delayed_min: float = Field(40.0, ge=0)
    length_of_stay_h: dict[str, float] = Field(default_factory=lambda: {"default": 72.0})
    length_of_stay: Literal["exponential", "fixed"] = "exponential"
    drain: Duration = "12h"

    @field_validator("length_of_stay_h")
    @classmethod
    def _los(cls, v: dict[str, float]) -> dict[str, float]:
        out = {}
        for key, hours in v.items():
            name = key if key == "default" else _check_bed_type(key)
            if not (isinstance(hours, int | float) and math.isfinite(hours) and hours > 0):
                raise ValueError(f"{key}: length of stay must be a number of hours > 0, "
                                 f"got {hours!r}")
            out[str(name)] = float(hours)
        out.setdefault("default", 72.0)
        return out


class PolicySpec(_Model):
    destination: Literal["saturation_aware", "nearest"] = "saturation_aware"
    driving: Literal["priority", "normal"] = "priority"
    closures: bool = True


class MetricsSpec(_Model):
    targets_min: list[float] = Field(default_factory=lambda: [15.0, 30.0], min_length=1)

    @field_validator("targets_min")
    @classmethod
    def _pos(cls, v: list[float]) -> list[float]:
        for x in v:
            if not (math.isfinite(x) and x > 0):
                raise ValueError(f"targets must be minutes > 0, got {x!r}")
        return sorted(v)


class RateSegment(_Model):
    from_: When = Field(alias="from")
    per_hour: float = Field(ge=0)


class DailyProfile(_Model):
    per_day: float = Field(ge=0)
    hourly: list[float] = Field(min_length=24, max_length=24)

    @field_validator("hourly")
    @classmethod
    def _weights(cls, v: list[float]) -> list[float]:
        if any(not math.isfinite(x) or x < 0 for x in v) or sum(v) <= 0:
            raise ValueError("24 weights >= 0, not all zero")
        return v


class RateSpec(_Model):
    per_hour: float | None = Field(None, ge=0)
    piecewise: list[RateSegment] | None = Field(None, min_length=1)
    daily: DailyProfile | None = None

    @model_validator(mode="after")
    def _one(self) -> RateSpec:
        given = [k for k in ("per_hour", "piecewise", "daily") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of per_hour (constant), piecewise (list of "
                             f"{{from, per_hour}}) or daily (per_day + 24 hourly weights); "
                             f"got {given or 'none'}")
        return self


class Area(_Model):
    name: str = ""
    commune: str | None = Field(None, pattern=r"^\d[\dAB]\d{3}$")
    geometry: PolygonGeoJSON | None = None
    weight: float = Field(gt=0)
    note: str = ""

    @model_validator(mode="after")
    def _one(self) -> Area:
        if (self.commune is None) == (self.geometry is None):
            raise ValueError("give exactly one of commune (INSEE code, outline read from the "
                             "boundaries file) or geometry (GeoJSON Polygon)")
        return self

    @property
    def label(self) -> str:
        return self.name or (f"commune {self.commune}" if self.commune else "area")


class MixItem(_Model):
    weight: float = Field(gt=0)
    need: NeedSpec = Field(default_factory=NeedSpec)
    severity: str = ""


class Stream(_Model):
    name: str = Field(min_length=1)
    rate: RateSpec
    areas: list[Area] | None = Field(None, min_length=1)
    mix: list[MixItem] = Field(min_length=1)
    start: When = "0"
    end: When | None = None


class IncidentsSpec(_Model):
    boundaries: str = "boundaries/communes-21-cote-d-or.geojson"
    areas: list[Area] | None = Field(None, min_length=1)
    streams: list[Stream] = Field(default_factory=list)
    max_snap_m: float = Field(150.0, gt=0)

    @model_validator(mode="after")
    def _areas(self) -> IncidentsSpec:
        for s in self.streams:
            if s.areas is None and self.areas is None:
                raise ValueError(f"stream {s.name!r} has no areas and no default "
                                 "incidents.areas is given")
        return self


class _Event(_Model):
    at: When
    note: str = ""


class _Window(_Event):
    id: str | None = Field(None, min_length=1, pattern=r"^[^\s]+$")
    until: When | None = None
    duration: Duration | None = None
    source: str = "scenario"

    @model_validator(mode="after")
    def _window(self) -> _Window:
        if self.until is not None and self.duration is not None:
            raise ValueError("give until or duration, not both")
        return self


class IncidentEvent(_Event):
    type: Literal["incident"]
    id: str | None = None
    location: Location
    need: NeedSpec = Field(default_factory=NeedSpec)
    severity: str = ""


class ClosureEvent(_Window):
    type: Literal["closure"]
    geometry: ClosureGeoJSON
    radius_m: float = Field(25.0, gt=0, le=5000)


class TrafficEvent(_Window):
    type: Literal["traffic"]
    factor: float | None = Field(None, gt=0, le=4)
    area: PolygonGeoJSON | None = None
    classes: list[str] | None = Field(None, min_length=1)
    segments: list[tuple[int, int, float]] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _shape(self) -> TrafficEvent:
        if self.segments is not None:
            if self.area is not None or self.classes is not None or self.factor is not None:
                raise ValueError("segments (OSM node pairs with speeds) take no factor, area "
                                 "or classes")
        elif self.factor is None or (self.area is None and self.classes is None):
            raise ValueError("give a factor with an area and/or road classes, or segments "
                             "[[from_osm_id, to_osm_id, speed_kmh], ...]")
        if self.classes:
            from engine.extract.tags import HIGHWAY_CODE

            unknown = [c for c in self.classes if c not in HIGHWAY_CODE]
            if unknown:
                raise ValueError(f"unknown road class(es) {unknown}; known: "
                                 f"{', '.join(HIGHWAY_CODE)}")
        return self


class FieldReportEvent(_Window):
    type: Literal["field_report"]
    location: Location
    kind: Literal["blocked", "slowed"] = "blocked"
    factor: float = Field(0.3, gt=0, le=4)


class HospitalStatusEvent(_Event):
    type: Literal["hospital_status"]
    hospital: str = Field(min_length=1)
    beds: dict[BedTypeName, int | Capacity] | None = None
    ed_status: EDStatusName = None
    offload_status: OffloadStatusName = None

    @field_validator("beds")
    @classmethod
    def _beds(cls, v: dict[str, int | Capacity] | None) -> dict[str, int | Capacity] | None:
        for key, value in (v or {}).items():
            if isinstance(value, int) and value < 0:
                raise ValueError(f"{key}: available beds must be >= 0, got {value}")
        return v


class SurgeEvent(_Event):
    """Plan blanc: open extra beds (baseline and available both increase)."""

    type: Literal["surge"]
    hospital: str = Field(min_length=1)
    beds: dict[BedTypeName, Annotated[int, Field(gt=0, le=10000)]] = Field(min_length=1)


Event = Annotated[IncidentEvent | ClosureEvent | TrafficEvent | FieldReportEvent
                  | HospitalStatusEvent | SurgeEvent, Field(discriminator="type")]
EVENT_TYPES = ("incident", "closure", "traffic", "field_report", "hospital_status", "surge")


class ScenarioModel(_Model):
    format: Literal["gyrophare-scenario/1"] = FORMAT
    name: str = Field(min_length=1)
    description: str = ""
    assumptions: str = ""
    sources: list[str] = Field(default_factory=list)
    map: MapSpec
    start: datetime
    duration: Duration
    seed: int = 0
    hospitals: HospitalsSpec
    fleet: FleetSpec
    timing: TimingSpec = Field(default_factory=TimingSpec)
    policy: PolicySpec = Field(default_factory=PolicySpec)
    metrics: MetricsSpec = Field(default_factory=MetricsSpec)
    incidents: IncidentsSpec = Field(default_factory=IncidentsSpec)
    timeline: list[Event] = Field(default_factory=list)

    @field_validator("start", mode="before")
    @classmethod
    def _start(cls, v: Any) -> datetime:
        return parse_datetime(v)


# ---------------------------------------------------------------------------- error formatting
def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    items = list(loc)
    for k, part in enumerate(items):
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        # discriminated unions put the tag in the path: timeline[3].incident.location
        if k > 0 and isinstance(items[k - 1], int) and part in EVENT_TYPES and k >= 2 \
                and items[k - 2] == "timeline":
            continue
        if part in ("function-after[_check_when(), any]", "function-after[_polygon(), any]"):
            continue
        out += ("." if out else "") + str(part)
    return out or "(top level)"


def _message(err: Mapping[str, Any]) -> str:
    kind = err.get("type", "")
    msg = str(err.get("msg", ""))
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required"
    if kind == "union_tag_invalid":
        tag = (err.get("ctx") or {}).get("tag")
        return f"unknown event type {tag!r} (expected one of {', '.join(EVENT_TYPES)})"
    if kind == "union_tag_not_found":
        return f"missing 'type' (one of {', '.join(EVENT_TYPES)})"
    if kind == "literal_error" and "gyrophare-scenario" in msg:
        return f"must be {FORMAT!r}"
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    return msg


def format_validation_error(exc: ValidationError) -> list[str]:
    return [f"{_path(tuple(e['loc']))}: {_message(e)}" for e in exc.errors()]


# ---------------------------------------------------------------------------- resolved scenario
@dataclass(frozen=True)
class Variant:
    """A what-if: destination policy, driving, closures on/off."""

    destination: str = "saturation_aware"
    driving: str = "priority"
    closures: bool = True
    label: str = ""  #: the words the user wrote (``--compare priority normal``), if any

    @property
    def name(self) -> str:
        if self.label:
            return self.label
        parts = [self.destination]
        if self.driving != "priority":
            parts.append(self.driving)
        if not self.closures:
            parts.append("closures-off")
        return "+".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "destination": self.destination, "driving": self.driving,
                "closures": self.closures}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Variant:
        return cls(str(data["destination"]), str(data["driving"]), bool(data["closures"]),
                   str(data.get("name", "")))


def parse_variant(text: str | Variant | None, base: Variant | None = None) -> Variant:
    """``"nearest"``, ``"saturation_aware+normal"``, ``"closures-off"``... over ``base``.

    Words, joined by ``+``: a destination policy (``nearest``, ``saturation_aware``), a
    driving (``priority``, ``normal``), ``closures-on`` / ``closures-off``.
    """
    base = base or Variant()
    if text is None:
        return base
    if isinstance(text, Variant):
        return text
    dest, driving, closures = base.destination, base.driving, base.closures
    for word in str(text).replace(",", "+").split("+"):
        w = word.strip().lower().replace("-", "_")
        if w in ("nearest", "saturation_aware", "saturation"):
            dest = "saturation_aware" if w == "saturation" else w
        elif w in DRIVINGS:
            driving = w
        elif w in ("closures_off", "no_closures"):
            closures = False
        elif w in ("closures_on", "closures"):
            closures = True
        elif w == "":
            continue
        else:
            raise ScenarioError([f"--compare/policy: unknown variant word {word!r} in "
                                 f"{text!r}; use nearest, saturation_aware, priority, normal, "
                                 "closures-on, closures-off joined with '+'"])
    return Variant(dest, driving, closures, label=str(text).strip())


@dataclass
class Scenario:
    """A validated scenario: the model, where relative paths are resolved, the raw dict."""

    model: ScenarioModel
    raw: dict[str, Any]
    origin: str = "<dict>"
    map_override: str | None = None

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def start(self) -> datetime:
        return self.model.start.astimezone(UTC)

    @property
    def duration_s(self) -> float:
        return parse_duration(self.model.duration)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.duration_s)

    @property
    def default_variant(self) -> Variant:
        p = self.model.policy
        return Variant(p.destination, p.driving, p.closures)

    def offset(self, when: Any) -> float:
        """Seconds from the start of a :data:`When` value."""
        if isinstance(when, datetime):
            return (when.astimezone(UTC) - self.start).total_seconds()
        if isinstance(when, str) and re.match(r"^\s*\d{4}-\d{2}-\d{2}", when):
            return (parse_datetime(when).astimezone(UTC) - self.start).total_seconds()
        return parse_duration(when)

    def with_map(self, osm: str | None) -> Scenario:
        """The same scenario on another map file (``--osm FILE``)."""
        return Scenario(self.model, self.raw, self.origin, osm)

    def to_payload(self) -> dict[str, Any]:
        """What a worker needs to rebuild this scenario (plain, picklable)."""
        return {"raw": self.raw, "origin": self.origin, "map_override": self.map_override}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Scenario:
        sc = load_scenario(payload["raw"], origin=payload["origin"])
        return sc.with_map(payload["map_override"])


def expand_path(text: str, *, base: Path | None = None) -> Path:
    """``${GYROPHARE_DATA_DIR}/osm/x.pbf`` or ``osm/x.pbf`` (relative to the shared data dir,
    or to ``base`` when given) or an absolute path. Other ``${VAR}`` come from the
    environment and must be set."""
    from engine.io import shared_data_dir

    def sub(m: re.Match[str]) -> str:
        var = m.group(1)
        if var == "GYROPHARE_DATA_DIR":
            return str(shared_data_dir())
        if var not in os.environ:
            raise ValueError(f"environment variable {var} is not set (used in {text!r})")
        return os.environ[var]

    expanded = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", sub, text)
    path = Path(expanded).expanduser()
    if not path.is_absolute():
        path = (base if base is not None else shared_data_dir()) / path
    return path


def _semantic(model: ScenarioModel) -> list[str]:
    """Checks across fields (times inside the replay, windows) that need no map."""
    errors: list[str] = []
    start = model.start.astimezone(UTC)
    duration = parse_duration(model.duration)
    if duration <= 0:
        errors.append("duration: must be > 0")
    if duration > 60 * 86400:
        errors.append(f"duration: {duration / 86400:.0f} days is more than the 60-day limit")

    def offset(when: Any) -> float:
        if isinstance(when, datetime):
            return (when.astimezone(UTC) - start).total_seconds()
        if isinstance(when, str) and re.match(r"^\s*\d{4}-\d{2}-\d{2}", when):
            return (parse_datetime(when).astimezone(UTC) - start).total_seconds()
        return parse_duration(when)

    def inside(path: str, when: Any, *, allow_end: bool = False) -> float | None:
        t = offset(when)
        if t < 0 or t > duration or (t == duration and not allow_end):
            errors.append(f"{path}: {when} is outside the replay (start "
                          f"{model.start.isoformat()}, duration {model.duration})")
            return None
        return t

    for i, ev in enumerate(model.timeline):
        t = inside(f"timeline[{i}].at", ev.at)
        if isinstance(ev, _Window) and t is not None:
            if ev.until is not None:
                u = offset(ev.until)
                if u <= t:
                    errors.append(f"timeline[{i}].until: {ev.until} is not after at ({ev.at})")
            if ev.duration is not None and parse_duration(ev.duration) <= 0:
                errors.append(f"timeline[{i}].duration: must be > 0")
        if isinstance(ev, HospitalStatusEvent) and not (ev.beds or ev.ed_status
                                                        or ev.offload_status):
            errors.append(f"timeline[{i}]: a hospital_status event needs beds, ed_status or "
                          "offload_status")
    for i, s in enumerate(model.incidents.streams):
        a = inside(f"incidents.streams[{i}].start", s.start)
        b = inside(f"incidents.streams[{i}].end", s.end, allow_end=True) if s.end is not None \
            else duration
        if a is not None and b is not None and b <= a:
            errors.append(f"incidents.streams[{i}].end: must be after start")
        if s.rate.piecewise:
            prev = -1.0
            for k, seg in enumerate(s.rate.piecewise):
                t = inside(f"incidents.streams[{i}].rate.piecewise[{k}].from", seg.from_)
                if t is not None and t <= prev:
                    errors.append(f"incidents.streams[{i}].rate.piecewise[{k}].from: segments "
                                  "must be in increasing time order")
                prev = t if t is not None else prev
    for i, st in enumerate(model.fleet.stations):
        if st.id in ("",):
            errors.append(f"fleet.stations[{i}].id: required")
    return errors


def read_scenario_file(path: str | Path) -> dict[str, Any]:
    """Parse a ``.yaml``/``.yml``/``.json`` file into a dict (no validation)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ScenarioError([f"(file): no scenario file {path}"])
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ScenarioError([f"(file): {path.name} is not valid "
                             f"{'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {exc}"]
                            ) from None
    if not isinstance(data, dict):
        raise ScenarioError([f"(top level): {path.name} must hold one object (a mapping)"])
    return data


def load_scenario(source: str | Path | Mapping[str, Any] | Scenario, *,
                  origin: str | None = None) -> Scenario:
    """Read and validate a scenario (file path, dict, or an already loaded one).

    Raises
    ------
    ScenarioError
        Listing every problem with its field path.
    """
    if isinstance(source, Scenario):
        return source
    if isinstance(source, Mapping):
        raw = dict(source)
        where = origin or "<dict>"
    else:
        raw = read_scenario_file(source)
        where = origin or str(Path(source).resolve())
    name = str(raw.get("name", "")) if isinstance(raw.get("name"), str) else ""
    try:
        model = ScenarioModel.model_validate(raw)
    except ValidationError as exc:
        raise ScenarioError(format_validation_error(exc), name=name) from None
    errors = _semantic(model)
    if errors:
        raise ScenarioError(errors, name=name)
    return Scenario(model, raw, where)


__all__ = [
    "FORMAT", "Scenario", "ScenarioError", "ScenarioModel", "Variant", "expand_path",
    "load_scenario", "parse_datetime", "parse_duration", "parse_variant",
]
