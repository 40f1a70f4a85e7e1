"""Traffic changes: what a caller may say about the roads (speeds, factors, closures, field
reports, barriers opened), validated into small dataclasses with their JSON and CSV forms, and
the applied :class:`Entry` they become."""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from engine.errors import GyrophareError
from engine.extract import tags
from engine.timeutil import parse_time

MAX_SPEED_KMH = 250.0
#: Speed factor of a "slowed" field report (a refuse truck, a double-parked van...).
SLOWED_FACTOR = 0.3
LINE_BUFFER_M = 8.0  #: how close a road must run to a closure LineString to be closed by it


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
    """Roads closed: a GeoJSON Point (with ``radius_m``), LineString or Polygon, or edge ids."""

    geometry: Mapping[str, Any] | None = None
    radius_m: float = 25.0
    edges: list[int] | None = None


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
        try:
            args["speeds"] = {int(k): v for k, v in args["speeds"].items()}
        except (TypeError, ValueError):
            errors.append(f"{kind}.speeds: keys must be OSM way ids (integers)")
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
    for lineno, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        if len(row) < 3:
            errors.append(f"line {lineno}: expected from_osm_id,to_osm_id,speed_kmh, "
                          f"got {','.join(row)!r}")
            continue
        try:
            a, b = int(row[0]), int(row[1])
        except ValueError:
            if lineno == 1:  # a header line
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


def closure_from_feature(feature: Mapping[str, Any], *, source: str = "api") -> Closure:
    """A GeoJSON Feature (Point + ``radius_m``, LineString, Polygon) to a :class:`Closure`.

    Validity and metadata come from ``properties``: ``starts_at``, ``expires_at`` (ISO 8601),
    ``radius_m``, ``id``, ``source``, ``note``.
    """
    if not isinstance(feature, Mapping) or feature.get("type") != "Feature":
        raise TrafficInputError(["expected a GeoJSON Feature"])
    props = dict(feature.get("properties") or {})
    window, errors = _parse_window(props, where="properties")
    radius = props.get("radius_m", 25.0)
    if not isinstance(radius, int | float) or not math.isfinite(radius) or radius <= 0:
        errors.append(f"properties.radius_m must be a positive number, got {radius!r}")
    if errors:
        raise TrafficInputError(errors)
    return Closure(geometry=feature.get("geometry") or {}, radius_m=float(radius),
                   id=props.get("id"), source=str(props.get("source", source)),
                   note=str(props.get("note", "")), starts_at=window.get("starts_at"),
                   expires_at=window.get("expires_at"))


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
    """A valid GeoJSON geometry of an allowed type, with [lon, lat] coordinates in range."""
    if not isinstance(obj, Mapping) or "type" not in obj:
        raise TrafficInputError(["geometry must be a GeoJSON geometry object"])
    if obj.get("type") not in allowed:
        raise TrafficInputError([f"geometry type {obj.get('type')!r} not accepted here "
                                 f"(expected {', '.join(allowed)})"])
    try:
        geom = shapely.geometry.shape(dict(obj))
    except Exception as exc:  # shapely raises several types on malformed input
        raise TrafficInputError([f"malformed {obj.get('type')} geometry: {exc}"]) from None
    if geom.is_empty:
        raise TrafficInputError(["geometry is empty"])
    coords = shapely.get_coordinates(geom)
    if not np.isfinite(coords).all():
        raise TrafficInputError(["geometry has non-finite coordinates"])
    if (np.abs(coords[:, 0]) > 180).any() or (np.abs(coords[:, 1]) > 90).any():
        raise TrafficInputError(["geometry coordinates must be [lon, lat] in range "
                                 "(GeoJSON order: longitude first)"])
    if not geom.is_valid:
        raise TrafficInputError([f"invalid geometry: {shapely.is_valid_reason(geom)}"])
    return geom


CHANGE_TYPES: dict[str, type[Change]] = {c.__name__: c for c in (
    SegmentSpeeds, WaySpeeds, AreaFactor, ClassFactor, Closure, FieldReport, OpenBarriers)}
