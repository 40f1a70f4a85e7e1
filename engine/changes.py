"""Traffic changes: what a caller may say about the roads (speeds, factors, closures, field
reports, barriers opened), validated into small dataclasses with their JSON and CSV forms, and
the applied :class:`Entry` they become."""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from engine.errors import GyrophareError
from engine.extract import tags
from engine.timeutil import describe, parse_time

MAX_SPEED_KMH = 250.0
#: Speed factor of a "slowed" field report (a refuse truck, a double-parked van...).
SLOWED_FACTOR = 0.3
LINE_BUFFER_M = 8.0  #: how close a road must run to a closure LineString to be closed by it
#: Radius of a Point closure that gives none (the response says so: :func:`change_notes`).
DEFAULT_CLOSURE_RADIUS_M = 25.0
#: Largest radius of a Point closure or barrier opening (larger areas: a Polygon).
MAX_RADIUS_M = 5000.0
#: Longest validity window (``expires_at - starts_at``) and farthest start ahead of the time a
#: change is applied: beyond, it is a typo (year 2199) or not traffic but the map; an entry
#: that holds until removed gives no ``expires_at``.
MAX_VALIDITY = timedelta(days=5 * 365 + 1)
MAX_VALIDITY_TEXT = "5 years"
#: What a caller-given entry id may be: 1 to 64 characters, ASCII letters, digits, ``.``,
#: ``_``, ``:``, ``-``, starting with a letter or digit (it goes into URLs as it is:
#: ``DELETE /v1/closures/{id}``).
ENTRY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
_ENTRY_ID_RE = re.compile(ENTRY_ID_PATTERN.rstrip("$") + r"\Z")
_MAX_OSM_ID = 2**62


class TrafficInputError(GyrophareError, ValueError):
    """A traffic batch was rejected as a whole; ``errors`` lists every problem found."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        shown = "; ".join(self.errors[:10])
        more = f" (and {len(self.errors) - 10} more)" if len(self.errors) > 10 else ""
        super().__init__(f"traffic update rejected, nothing applied: {shown}{more}")


class UnknownEntry(GyrophareError, KeyError):
    """No traffic entry has this id."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


# ------------------------------------------------------------------------------ change specs
@dataclass(kw_only=True)
class Change:
    """Common fields: optional id (generated if empty), source, validity window."""

    id: str | None = None
    source: str = "unknown"
    starts_at: datetime | None = None  #: default: when it is applied
    expires_at: datetime | None = None  #: default: until removed
    note: str = ""


@dataclass(kw_only=True)
class SegmentSpeeds(Change):
    """Speeds on OSM node pairs, as OSRM's ``--segment-speed-file`` (direction from -> to)."""

    speeds: list[tuple[int, int, float]]


@dataclass(kw_only=True)
class WaySpeeds(Change):
    """Speeds (km/h) on whole OSM ways, both directions."""

    speeds: dict[int, float]


@dataclass(kw_only=True)
class AreaFactor(Change):
    """Multiply speeds by ``factor`` on roads inside a GeoJSON (Multi)Polygon."""

    geometry: Mapping[str, Any]
    factor: float
    classes: list[str] | None = None


@dataclass(kw_only=True)
class ClassFactor(Change):
    """Multiply speeds by ``factor`` on every road of the given highway classes."""

    classes: list[str]
    factor: float


@dataclass(kw_only=True)
class Closure(Change):
    """Roads closed: a GeoJSON Point (with ``radius_m``, default
    :data:`DEFAULT_CLOSURE_RADIUS_M`), LineString or Polygon, or edge ids."""

    geometry: Mapping[str, Any] | None = None
    radius_m: float | None = None
    edges: list[int] | None = None

    @property
    def radius(self) -> float:
        """The radius a Point closure uses."""
        return DEFAULT_CLOSURE_RADIUS_M if self.radius_m is None else float(self.radius_m)


@dataclass(kw_only=True)
class FieldReport(Change):
    """A one-click report from the field: the nearest road is ``blocked`` or ``slowed``."""

    lat: float
    lon: float
    kind: Literal["blocked", "slowed"] = "blocked"
    factor: float = SLOWED_FACTOR


@dataclass(kw_only=True)
class OpenBarriers(Change):
    """Barriers (bollards, gates) near a point that emergency vehicles may pass."""

    lat: float
    lon: float
    radius_m: float = 20.0


EntryKind = Literal["speed", "factor", "closure", "open"]  #: what an entry does to its edges


@dataclass(frozen=True)
class Entry:
    """An applied change: the edges it touches and what it does to them."""

    id: str
    kind: EntryKind
    source: str
    starts_at: datetime
    expires_at: datetime | None
    edges: np.ndarray
    values: np.ndarray  #: km/h for "speed", factor for "factor", unused otherwise
    seq: int
    note: str = ""
    geometry: Mapping[str, Any] | None = None
    change: str = ""

    def active(self, at: datetime) -> bool:
        return self.starts_at <= at and (self.expires_at is None or at < self.expires_at)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "type": self.change, "kind": self.kind, "source": self.source,
            "starts_at": self.starts_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "edges": len(self.edges), "note": self.note, "geometry": self.geometry,
        }


# ------------------------------------------------------------------------------ parsing
def change_to_dict(change: Change) -> dict[str, Any]:
    """A JSON-ready dict of a change (for event logs shared between workers)."""
    data = dataclasses.asdict(change)
    for key in ("starts_at", "expires_at"):
        if data.get(key) is not None:
            data[key] = data[key].isoformat()
    if isinstance(change, WaySpeeds):
        data["speeds"] = {str(k): v for k, v in change.speeds.items()}
    return {"type": type(change).__name__, **data}


def change_from_dict(data: Mapping[str, Any]) -> Change:
    """Inverse of :func:`change_to_dict`; also the JSON form the API accepts.

    Raises
    ------
    TrafficInputError
        Unknown ``type``, unknown or missing fields, unparsable times.
    """
    if not isinstance(data, Mapping):
        raise TrafficInputError(["a change must be a JSON object"])
    kind = data.get("type")
    cls = CHANGE_TYPES.get(str(kind))
    if cls is None:
        raise TrafficInputError([f"unknown change type {kind!r}; expected one of "
                                 f"{', '.join(CHANGE_TYPES)}"])
    fields = {f.name for f in dataclasses.fields(cls)}
    args = {k: v for k, v in data.items() if k != "type"}
    unknown = sorted(set(args) - fields)
    if unknown:
        raise TrafficInputError([f"{kind}: unknown field(s) {', '.join(unknown)}"])
    window, errors = _parse_window(args, where=str(kind))
    args.update(window)
    if cls is WaySpeeds and isinstance(args.get("speeds"), Mapping):
        speeds: dict[int, Any] = {}
        for k, v in args["speeds"].items():
            way = exact_integer(k, text=True)
            if way is None or not 0 < way <= _MAX_OSM_ID:
                errors.append(f"{kind}.speeds: {describe(k)} is not an OSM way id (a positive "
                              "integer)")
            else:
                speeds[way] = v
        args["speeds"] = speeds
    if cls is SegmentSpeeds and isinstance(args.get("speeds"), list):
        args["speeds"] = [tuple(row) if isinstance(row, list | tuple) else row
                          for row in args["speeds"]]
    if errors:
        raise TrafficInputError(errors)
    try:
        return cls(**args)
    except TypeError as exc:
        raise TrafficInputError([f"{kind}: {exc}"]) from None


def parse_segment_speed_csv(text: str, *, source: str = "csv", **window: Any) -> SegmentSpeeds:
    """Parse OSRM's segment-speed CSV (``from_osm_id,to_osm_id,speed_kmh[,rate]``).

    Raises
    ------
    TrafficInputError
        Listing every malformed line with its number.
    """
    rows: list[tuple[int, int, float]] = []
    errors: list[str] = []
    try:
        lines = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:  # e.g. a lone carriage return inside a field
        raise TrafficInputError([f"malformed CSV: {exc}"]) from None
    for lineno, row in enumerate(lines, start=1):
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        if len(row) < 3:
            errors.append(f"line {lineno}: expected from_osm_id,to_osm_id,speed_kmh, "
                          f"got {','.join(row)!r}")
            continue
        try:
            a, b = int(row[0]), int(row[1])
        except ValueError:
            if lineno == 1 and not _looks_numeric(row[0]):  # a header line
                continue
            errors.append(f"line {lineno}: OSM node ids must be integers, got {row[0]!r}, "
                          f"{row[1]!r}")
            continue
        try:
            speed = float(row[2])
        except ValueError:
            errors.append(f"line {lineno}: speed must be a number, got {row[2]!r}")
            continue
        rows.append((a, b, speed))
    if errors:
        raise TrafficInputError(errors)
    if not rows:
        raise TrafficInputError(["the CSV holds no segment speed"])
    return SegmentSpeeds(speeds=rows, source=source, **window)


#: The ``properties`` a closure Feature may carry.
FEATURE_PROPERTIES = ("id", "source", "note", "starts_at", "expires_at", "radius_m")


def closure_from_feature(feature: Mapping[str, Any], *, source: str = "api") -> Closure:
    """A GeoJSON Feature (Point + ``radius_m``, LineString, Polygon) to a :class:`Closure`.

    Validity and metadata come from ``properties``: ``starts_at``, ``expires_at`` (ISO 8601),
    ``radius_m`` (Point only; default :data:`DEFAULT_CLOSURE_RADIUS_M`, and
    :func:`change_notes` says so), ``id``, ``source``, ``note``.
    """
    if not isinstance(feature, Mapping) or feature.get("type") != "Feature":
        raise TrafficInputError(["expected a GeoJSON Feature ({\"type\": \"Feature\", "
                                 "\"geometry\": ..., \"properties\": ...})"])
    raw = feature.get("properties")
    if raw is not None and not isinstance(raw, Mapping):
        raise TrafficInputError([f"properties must be a JSON object, got {describe(raw)}"])
    props = dict(raw or {})
    unknown = sorted(str(k) for k in props if k not in FEATURE_PROPERTIES)
    if unknown:
        raise TrafficInputError([f"properties: unknown field(s) {', '.join(unknown)} (known: "
                                 f"{', '.join(FEATURE_PROPERTIES)})"])
    window, errors = _parse_window(props, where="properties")
    radius = props.get("radius_m")
    if radius is not None and (not _is_number(radius) or not 0 < radius <= MAX_RADIUS_M):
        errors.append(f"properties.radius_m must be a number of metres in (0, "
                      f"{MAX_RADIUS_M:.0f}], got {describe(radius)}")
    if errors:
        raise TrafficInputError(errors)
    return Closure(geometry=feature.get("geometry") or {},
                   radius_m=None if radius is None else float(radius),
                   id=props.get("id"), source=props.get("source", source),
                   note=props.get("note", ""), starts_at=window.get("starts_at"),
                   expires_at=window.get("expires_at"))


def change_notes(change: Change) -> list[str]:
    """What the engine assumed or ignored for ``change``, in words, for the caller's answer
    (a Point closure without ``radius_m`` closes roads within the default radius...)."""
    notes: list[str] = []
    if isinstance(change, Closure) and change.edges is None:
        kind = change.geometry.get("type") if isinstance(change.geometry, Mapping) else None
        if kind == "Point" and change.radius_m is None:
            notes.append(f"no radius_m given for the Point closure: roads within "
                         f"{DEFAULT_CLOSURE_RADIUS_M:.0f} m of the point are closed")
        elif kind not in (None, "Point") and change.radius_m is not None:
            notes.append(f"radius_m applies to Point closures only: ignored for a {kind}")
    return notes


def check_change(change: Change) -> list[str]:
    """Every problem with the types and ranges of ``change``'s own fields, in words (what
    the overlay checks against the map comes after): ids, texts, numbers, lists."""
    errors: list[str] = []
    if change.id is not None and (not isinstance(change.id, str)
                                  or _ENTRY_ID_RE.match(change.id) is None):
        errors.append(f"id {describe(change.id)} is not valid: 1 to 64 characters, ASCII "
                      "letters, digits, '.', '_', ':' or '-', starting with a letter or digit")
    for name, limit in (("source", 200), ("note", 2000)):
        value = getattr(change, name)
        if not isinstance(value, str):
            errors.append(f"{name} must be a string, got {describe(value)}")
        elif len(value) > limit or any(not ch.isprintable() and ch not in "\n\t"
                                       for ch in value):
            errors.append(f"{name} must be at most {limit} printable characters")
    if isinstance(change, SegmentSpeeds):
        errors += _check_segments(change.speeds)
    elif isinstance(change, WaySpeeds):
        if not isinstance(change.speeds, Mapping):
            errors.append("speeds must be an object: OSM way id -> speed in km/h, got "
                          f"{describe(change.speeds)}")
    elif isinstance(change, AreaFactor | ClassFactor):
        if not _is_number(change.factor):
            errors.append(f"factor must be a number in (0, 4], got {describe(change.factor)}")
        classes = change.classes
        if classes is not None or isinstance(change, ClassFactor):
            if not isinstance(classes, list | tuple) or not all(isinstance(c, str)
                                                                for c in classes):
                errors.append("classes must be a list of road class names (e.g. "
                              f"[\"primary\", \"secondary\"]), got {describe(classes)}")
    elif isinstance(change, Closure):
        if change.radius_m is not None and (not _is_number(change.radius_m)
                                            or not 0 < change.radius_m <= MAX_RADIUS_M):
            errors.append(f"radius_m must be a number of metres in (0, {MAX_RADIUS_M:.0f}], "
                          f"got {describe(change.radius_m)}")
        if change.edges is not None and (not isinstance(change.edges, list | tuple) or not all(
                exact_integer(e) is not None for e in change.edges)):
            errors.append("edges must be a list of integer edge ids")
        if change.edges is None and change.geometry is None:
            errors.append("give a geometry (GeoJSON Point, LineString or Polygon) or edges")
    elif isinstance(change, FieldReport | OpenBarriers):
        for name in ("lat", "lon"):
            value = getattr(change, name)
            if not _is_number(value):
                errors.append(f"{name} must be a finite number, got {describe(value)}")
        if isinstance(change, FieldReport):
            if not _is_number(change.factor):
                errors.append(f"factor must be a number in (0, 4], got "
                              f"{describe(change.factor)}")
        elif not _is_number(change.radius_m) or not 0 < change.radius_m <= MAX_RADIUS_M:
            errors.append(f"radius_m must be a number of metres in (0, {MAX_RADIUS_M:.0f}], "
                          f"got {describe(change.radius_m)}")
    return errors


def _check_segments(speeds: object) -> list[str]:
    """Rows ``(from_osm_id, to_osm_id, speed_kmh)``: two OSM ids (positive integers, never
    truncated from ``25239340.5``) and a number."""
    if not isinstance(speeds, list | tuple):
        return [f"speeds must be a list of [from_osm_id, to_osm_id, speed_kmh], got "
                f"{describe(speeds)}"]
    if not speeds:
        return ["speeds is empty"]
    errors: list[str] = []
    for k, row in enumerate(speeds):
        if not isinstance(row, list | tuple) or len(row) != 3:
            got = f"{len(row)} values" if isinstance(row, list | tuple) else describe(row)
            errors.append(f"segment {k}: expected [from_osm_id, to_osm_id, speed_kmh], got "
                          f"{got}")
        else:
            for name, value in (("from_osm_id", row[0]), ("to_osm_id", row[1])):
                osm = exact_integer(value)
                if osm is None or not 0 < osm <= _MAX_OSM_ID:
                    errors.append(f"segment {k}: {name} must be an OSM node id (a positive "
                                  f"integer), got {describe(value)}")
            if not _is_number(row[2]) or not math.isfinite(row[2]):
                errors.append(f"segment {k}: speed_kmh must be a number, got "
                              f"{describe(row[2])}")
        if len(errors) >= 20:
            errors.append("(more rows not checked)")
            break
    return errors


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(
        float(value))


def exact_integer(value: object, *, text: bool = False) -> int | None:
    """``value`` as an exact integer (``3``, ``3.0``, a NumPy integer; with ``text``, also
    ``"3"``: JSON object keys), else ``None`` (``3.5``, ``True``, ``"3"``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if text and isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value)  # (isdigit alone admits "²", which int() refuses)
    return None


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse_window(data: Mapping[str, Any], *, where: str
                  ) -> tuple[dict[str, datetime], list[str]]:
    """``starts_at`` / ``expires_at`` of a JSON object as aware datetimes, and the errors."""
    window: dict[str, datetime] = {}
    errors: list[str] = []
    for key in ("starts_at", "expires_at"):
        if data.get(key) is not None:
            try:
                window[key] = parse_time(data[key], what=f"{where}.{key}")
            except ValueError as exc:
                errors.append(str(exc))
    return window, errors


# ------------------------------------------------------------------------------ overlay


def check_factor(factor: float) -> None:
    """A speed factor in (0, 4], or :class:`TrafficInputError`."""
    if not isinstance(factor, int | float) or not math.isfinite(factor) or not 0 < factor <= 4:
        raise TrafficInputError([f"speed factor must be in (0, 4], got {factor!r}"])


def class_codes(classes: Sequence[str]) -> list[int]:
    """Highway class codes of class names, or :class:`TrafficInputError` naming the unknown."""
    unknown = [c for c in classes if c not in tags.HIGHWAY_CODE]
    if unknown or not classes:
        raise TrafficInputError([f"unknown road classes {unknown or classes}; known: "
                                 f"{', '.join(tags.HIGHWAY_CLASSES)}"])
    return [tags.HIGHWAY_CODE[c] for c in classes]


def validate_geometry(obj: Mapping[str, Any] | None, allowed: tuple[str, ...]) -> BaseGeometry:
    """A valid GeoJSON geometry of an allowed type, with [lon, lat] coordinates in range.

    The GeoJSON is checked as RFC 7946 writes it before any geometry is built (positions of
    two or three numbers, a LineString of two positions or more, closed rings of four
    positions or more: an unclosed ring is refused, not silently closed), so every problem
    is said in GeoJSON's words."""
    if not isinstance(obj, Mapping) or "type" not in obj:
        raise TrafficInputError(["geometry must be a GeoJSON geometry object ({\"type\": ..., "
                                 "\"coordinates\": ...})"])
    kind = obj.get("type")
    if kind not in allowed:
        raise TrafficInputError([f"geometry type {describe(kind)} not accepted here "
                                 f"(expected {', '.join(allowed)})"])
    problem = _geojson_problem(str(kind), obj.get("coordinates"))
    if problem:
        raise TrafficInputError([f"{kind}: {problem}"])
    try:
        geom = shapely.geometry.shape(dict(obj))
    except Exception:  # checked above: should not happen; never show shapely's words
        raise TrafficInputError([f"malformed {kind} geometry"]) from None
    if geom.is_empty:
        raise TrafficInputError(["geometry is empty"])
    if not geom.is_valid:
        raise TrafficInputError([f"invalid {kind}: {_invalid_reason(geom)}"])
    return geom


def _geojson_problem(kind: str, coordinates: object) -> str | None:
    """What is wrong with the ``coordinates`` of a GeoJSON geometry of type ``kind``."""
    depth = {"Point": 0, "LineString": 1, "MultiLineString": 2, "Polygon": 2,
             "MultiPolygon": 3}[kind]
    if coordinates is None:
        return "coordinates missing"

    def position(p: object, where: str) -> str | None:
        if not isinstance(p, list | tuple) or len(p) not in (2, 3) or not all(
                _is_number(v) for v in p):
            return f"{where} must be a position [longitude, latitude], got {describe(p)}"
        lon, lat = float(p[0]), float(p[1])
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            return (f"{where} [{lon:g}, {lat:g}] is out of range: GeoJSON order is [lon, lat] "
                    "(longitude in [-180, 180], latitude in [-90, 90])")
        return None

    def line(c: object, where: str, *, ring: bool) -> str | None:
        need = 4 if ring else 2
        what = "a linear ring" if ring else "a LineString"
        if not isinstance(c, list | tuple):
            return f"{where} must be a list of positions, got {describe(c)}"
        for i, p in enumerate(c):
            bad = position(p, f"{where} position {i}")
            if bad:
                return bad
        if ring and len(c) >= 2 and [float(v) for v in c[0][:2]] != [float(v)
                                                                     for v in c[-1][:2]]:
            return (f"{where} is not closed: its last position {list(c[-1])} must repeat its "
                    f"first {list(c[0])} (GeoJSON, RFC 7946 section 3.1.6)")
        if len(c) < need:
            return (f"{where} has {len(c)} position{'s' if len(c) != 1 else ''}: {what} needs "
                    f"at least {need}" + (" (the first one repeated last)" if ring else ""))
        return None

    def polygon(c: object, where: str) -> str | None:
        if not isinstance(c, list | tuple) or not c:
            return f"{where} must be a list of linear rings, got {describe(c)}"
        for i, ring in enumerate(c):
            bad = line(ring, f"{where} ring {i}", ring=True)
            if bad:
                return bad
        return None

    def many(c: object, check: Any, what: str) -> str | None:
        if not isinstance(c, list | tuple) or not c:
            return f"coordinates must be a non-empty list of {what}, got {describe(c)}"
        for i, part in enumerate(c):
            bad = check(part, f"part {i}")
            if bad:
                return bad
        return None

    if depth == 0:
        return position(coordinates, "coordinates")
    if kind == "LineString":
        return line(coordinates, "coordinates", ring=False)
    if kind == "Polygon":
        return polygon(coordinates, "polygon")
    if kind == "MultiLineString":
        return many(coordinates, lambda c, w: line(c, w, ring=False), "LineStrings")
    return many(coordinates, polygon, "polygons")


_INVALID = {"Self-intersection": "its boundary crosses itself",
            "Ring Self-intersection": "a ring touches itself",
            "Hole lies outside shell": "a hole lies outside the outer ring",
            "Nested shells": "one polygon lies inside another",
            "Interior is disconnected": "its inside is cut in pieces",
            "Duplicate Rings": "a ring is repeated",
            "Too few points": "too few distinct positions",
            "Nested holes": "a hole lies inside another"}


def _invalid_reason(geom: BaseGeometry) -> str:
    """Why shapely finds ``geom`` invalid, in words (``Self-intersection[7.42 43.73]``)."""
    reason = str(shapely.is_valid_reason(geom))
    name, _, where = reason.partition("[")
    text = _INVALID.get(name.strip(), name.strip().lower() or "invalid")
    if where:
        text += " near [" + ", ".join(where.rstrip("]").split()) + "]"
    return text


CHANGE_TYPES: dict[str, type[Change]] = {c.__name__: c for c in (
    SegmentSpeeds, WaySpeeds, AreaFactor, ClassFactor, Closure, FieldReport, OpenBarriers)}
