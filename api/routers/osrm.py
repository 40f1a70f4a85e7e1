"""OSRM-compatible endpoints: ``/route/v1``, ``/table/v1`` and ``/nearest/v1``.

Any OSRM client (routingpy, osrm-frontend, Leaflet Routing Machine, OSRM-speaking dispatch
software) can point at gyrophare and get its routes — with live traffic, closures and the
ambulance profile. Shapes, option grammar, error codes and limits follow Project-OSRM's HTTP
API (``docs/http.md``) and ``osrm-routed``'s parameter grammar:

- every error is HTTP 400 with ``{"code", "message"}``: ``InvalidUrl`` (characters outside the
  URL grammar), ``InvalidQuery`` (coordinates or options that do not parse, unknown options),
  ``InvalidOptions`` (parsed but inconsistent: per-coordinate lists of the wrong length, too
  few coordinates, out-of-range bearings / radiuses / indices; table and nearest also answer
  it for coordinates out of range), ``InvalidValue`` (route: coordinate out of range;
  unsupported ``exclude`` classes; unknown profile), ``InvalidVersion``, ``InvalidService``,
  ``NoSegment`` (a point farther than its radius, or the server's snap radius, from every
  usable road), ``NoRoute``, ``TooBig``;
- profiles: ``driving``/``car`` → car, ``ambulance``/``emergency`` → ambulance (lights and
  sirens). ``osrm-routed`` ignores the profile segment and serves the one dataset it was
  built with; gyrophare holds two profiles and refuses any other name (``InvalidValue``)
  rather than answer a ``foot`` or ``bike`` request with car routes;
- ``weight_name`` is ``"duration"``: the weight *is* the travel time (with live traffic);
- accepted and validated but without effect: ``bearings``, ``approaches``, ``hints`` (our
  hints are empty strings), ``snapping``, ``continue_straight`` (each leg is routed on its
  own), ``alternatives`` (at most one route is returned — OSRM never guarantees
  alternatives); ``radiuses`` are honoured up to the server's snap radius (``unlimited`` =
  that radius); ``exclude=motorway`` is honoured, ``exclude=ferry`` trivially (no ferries in
  the graph), other classes are refused as OSRM refuses unknown ones;
- table ``distances`` are those of the *fastest* route, as OSRM's: gyrophare routes each
  pair for them (only when ``annotations`` asks for ``distance``), so a distance table is
  limited to ``MAX_DISTANCE_CELLS`` cells;
- extra top-level fields ``weights_version`` (traffic state the answer used) and ``stale``
  (the state store is unreachable: last known traffic); the ODbL credit is in the
  ``X-Attribution`` response header of every answer (JSON bodies stay OSRM's);
- ``api_key`` is accepted as an extra query option (clients that cannot set headers).
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any
from weakref import WeakKeyDictionary

import numpy as np
import polyline as polyline_codec
import shapely
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from api.auth import DispatcherRole
from api.deps import State
from engine.errors import InvalidCoordinate, PointOffNetwork
from engine.extract.tags import HIGHWAY_CODE
from engine.graph import RoadGraph, haversine_m
from engine.profiles import Weights
from engine.query import Route

router = APIRouter(tags=["osrm"])

#: OSRM profile names -> gyrophare profiles
PROFILES: dict[str, str] = {"driving": "car", "car": "car",
                            "ambulance": "ambulance", "emergency": "ambulance"}
MAX_ROUTE_COORDINATES = 500  #: osrm-routed's default --max-viaroute-size
MAX_ALTERNATIVES = 3  #: osrm-routed's default --max-alternatives
MAX_NEAREST = 100  #: osrm-routed's default --max-nearest-size
MAX_DISTANCE_CELLS = 2500  #: table cells when distances are asked (each cell is one route)
#: classes ``exclude`` may name, and the highway classes they close
EXCLUDABLE: dict[str, tuple[str, ...]] = {"motorway": ("motorway", "motorway_link"),
                                          "ferry": ()}
ATTRIBUTION = "Map data (c) OpenStreetMap contributors, ODbL 1.0"
HEADERS = {"X-Attribution": ATTRIBUTION}
#: gyrophare's own query options, accepted besides OSRM's
EXTENSION_OPTIONS = frozenset({"api_key"})

_BASE_OPTIONS = frozenset({"radiuses", "hints", "bearings", "generate_hints", "approaches",
                           "exclude", "snapping", "skip_waypoints"})
_ROUTE_OPTIONS = _BASE_OPTIONS | {"alternatives", "continue_straight", "waypoints", "steps",
                                  "geometries", "overview", "annotations"}
_TABLE_OPTIONS = _BASE_OPTIONS | {"sources", "destinations", "annotations", "fallback_speed",
                                  "fallback_coordinate", "scale_factor"}
_NEAREST_OPTIONS = _BASE_OPTIONS | {"number"}
_ROUTE_ANNOTATIONS = ("duration", "nodes", "distance", "weight", "datasources", "speed")
_SIZE_MISMATCH = "Number of elements in {} size {} does not match coordinate size {}"

_NUM = r"[+-]?(?:\d+\.?\d*|\.\d+)"  # OSRM's doubles: no exponent, no nan/inf
_NUM_RE = re.compile(_NUM + r"\Z")
_LOCATION_RE = re.compile(rf"({_NUM}),({_NUM})\Z")
_UINT_RE = re.compile(r"\d+\Z")
_BEARING_RE = re.compile(r"([+-]?\d+),([+-]?\d+)\Z")
_POLYLINE_RE = re.compile(r"(polyline6?)\(([A-Za-z0-9_.\-\[\]{}@?|\\%~`^]+)\)\Z")
_HINT_RE = re.compile(r"[A-Za-z0-9\-_=+/]*\Z")
_CLASS_RE = re.compile(r"[A-Za-z0-9]+\Z")
_IDENTIFIER_RE = re.compile(r"[A-Za-z0-9_.~:-]+\Z")
_URL_CHARS_RE = re.compile(r"[A-Za-z0-9_.\-\[\]{}@?|\\~`^=,;:&()+%]*")


class OsrmError(Exception):
    """An OSRM error answer: HTTP 400 with ``{"code": ..., "message": ...}``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _answer(build: Callable[[], dict[str, Any]]) -> Response:
    try:
        body = build()
    except OsrmError as exc:
        return JSONResponse({"code": exc.code, "message": exc.message}, status_code=400,
                            headers=HEADERS)
    return JSONResponse(body, headers=HEADERS)


# ============================================================================ request parsing
@dataclass
class _Url:
    service: str
    profile: str  # gyrophare profile
    coordinates: list[tuple[float, float]]  # (lon, lat) as given
    prefix: int  # length of "/service/v1/profile/", for error positions
    raw: str  # the coordinates segment


def _parse_url(service: str, version: str, profile: str, coordinates: str) -> _Url:
    prefix = f"/{service}/{version}/{profile}/"
    for part, offset in ((version, len(service) + 2), (profile, len(service) + len(version) + 3)):
        if not _IDENTIFIER_RE.match(part):
            bad = next((i for i, ch in enumerate(part) if not _IDENTIFIER_RE.match(ch)), 0)
            _invalid_url(prefix + coordinates, offset + bad)
    if not re.fullmatch(r"v\d+", version):
        _invalid_url(prefix + coordinates, len(service) + 2)
    if version != "v1":
        raise OsrmError("InvalidVersion", f"Service {service} not found!")
    ok = _URL_CHARS_RE.match(coordinates)
    if ok is None or ok.end() != len(coordinates):
        _invalid_url(prefix + coordinates, len(prefix) + (ok.end() if ok else 0))
    gy_profile = PROFILES.get(profile)
    if gy_profile is None:
        raise OsrmError("InvalidValue", f"Unknown profile {profile!r}: this server routes "
                        "'driving' or 'car' (car) and 'ambulance' or 'emergency' (ambulance "
                        "with lights and sirens)")
    return _Url(service, gy_profile, _parse_coordinates(coordinates, len(prefix)),
                len(prefix), coordinates)


def _invalid_url(url: str, position: int) -> None:
    context = url[max(0, position - 3): position + 3]
    raise OsrmError("InvalidUrl", f'URL string malformed close to position {position}: '
                                  f'"{context}"')


def _invalid_query(position: int, detail: str = "") -> OsrmError:
    message = f"Query string malformed close to position {position}"
    return OsrmError("InvalidQuery", message + (f" ({detail})" if detail else ""))


def _parse_coordinates(raw: str, prefix: int) -> list[tuple[float, float]]:
    text = raw
    if text.endswith(".json"):
        text = text[:-5]
    elif text.endswith(".flatbuffers"):
        raise OsrmError("InvalidOptions", "only the json format is served here")
    m = _POLYLINE_RE.match(text)
    if m is not None:
        try:
            points = polyline_codec.decode(m.group(2), 6 if m.group(1) == "polyline6" else 5)
        except Exception:  # a truncated polyline: IndexError, ValueError...
            raise _invalid_query(prefix, "undecodable polyline") from None
        if not points:
            raise _invalid_query(prefix, "empty polyline")
        return [(float(lon), float(lat)) for lat, lon in points]
    if text.startswith("polyline"):
        raise _invalid_query(prefix, "expected polyline(...) or polyline6(...)")
    out, position = [], prefix
    for item in text.split(";"):
        m = _LOCATION_RE.match(item)
        if m is None:
            raise _invalid_query(position, f"expected longitude,latitude, got {item!r}")
        out.append((float(m.group(1)), float(m.group(2))))
        position += len(item) + 1
    return out


def _valid_coordinates(coords: Sequence[tuple[float, float]]) -> bool:
    return all(-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0 for lon, lat in coords)


class _Options:
    """The query options of one request, OSRM's grammar (last value wins on repeats)."""

    def __init__(self, request: Request, allowed: frozenset[str], url: _Url) -> None:
        self.values: dict[str, str] = {}
        self.url = url
        raw = request.url.query
        for key, value in request.query_params.multi_items():
            if key not in allowed and key not in EXTENSION_OPTIONS:
                raise _invalid_query(self._position(raw, key), f"unknown option {key!r}")
            self.values[key] = value
        self._raw = raw

    def _position(self, raw: str, key: str) -> int:
        at = raw.find(f"{key}=")
        return self.url.prefix + len(self.url.raw) + 1 + max(at, 0)

    def error(self, key: str, detail: str) -> OsrmError:
        return _invalid_query(self._position(self._raw, key), f"{key}: {detail}")

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.values.get(key)
        if value is None:
            return default
        if value not in ("true", "false"):
            raise self.error(key, f"expected true or false, got {value!r}")
        return value == "true"

    def choice(self, key: str, choices: Sequence[str], default: str) -> str:
        value = self.values.get(key)
        if value is None:
            return default
        if value not in choices:
            raise self.error(key, f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    def number(self, key: str) -> float | None:
        value = self.values.get(key)
        if value is None:
            return None
        if not _NUM_RE.match(value):
            raise self.error(key, f"expected a number, got {value!r}")
        return float(value)

    def indices(self, key: str, *, allow_all: bool) -> list[int] | None:
        """``i;j;k`` (or ``all`` when allowed: ``None``)."""
        value = self.values.get(key)
        if value is None or (allow_all and value == "all"):
            return None
        items = value.split(";")
        if not all(_UINT_RE.match(i) for i in items):
            raise self.error(key, f"expected indices separated by ';', got {value!r}")
        return [int(i) for i in items]

    def per_coordinate(self, key: str, parse: Callable[[str], Any]) -> list[Any] | None:
        """``a;b;;d``: one element per coordinate (empty = default), parsed by ``parse``
        (which returns ``None`` when the element does not parse)."""
        value = self.values.get(key)
        if value is None:
            return None
        out = []
        for item in value.split(";"):
            if item == "":
                out.append(None)
                continue
            parsed = parse(item)
            if parsed is None:
                raise self.error(key, f"malformed element {item!r}")
            out.append(parsed)
        return out


@dataclass
class _Base:
    """Options every service takes."""

    radiuses: list[float | None]
    generate_hints: bool
    skip_waypoints: bool
    exclude: frozenset[str]


def _radius(item: str) -> float | None:
    if item == "unlimited":
        return math.inf
    return float(item) if _NUM_RE.match(item) else None


def _bearing(item: str) -> tuple[int, int] | None:
    m = _BEARING_RE.match(item)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _parse_base(opts: _Options, n: int) -> _Base:
    radiuses = opts.per_coordinate("radiuses", _radius)
    bearings = opts.per_coordinate("bearings", _bearing)
    hints = opts.per_coordinate("hints", lambda h: h if _HINT_RE.match(h) else None)
    approaches = opts.per_coordinate(
        "approaches", lambda a: a if a in ("curb", "unrestricted", "opposite") else None)
    generate_hints = opts.boolean("generate_hints", True)
    skip_waypoints = opts.boolean("skip_waypoints", False)
    opts.choice("snapping", ("default", "any"), "default")
    exclude: frozenset[str] = frozenset()
    if (raw := opts.get("exclude")) is not None:
        classes = raw.split(",")
        if not all(_CLASS_RE.match(c) for c in classes):
            raise opts.error("exclude", f"expected class names separated by ',', got {raw!r}")
        exclude = frozenset(classes)
    # the "IsValid" stage: list sizes, ranges
    for key, values in (("hints", hints), ("bearings", bearings), ("radiuses", radiuses),
                        ("approaches", approaches)):
        if values is not None and len(values) != n:
            raise OsrmError("InvalidOptions", _SIZE_MISMATCH.format(key, len(values), n))
    for b in bearings or ():
        if b is not None and not (0 <= b[0] <= 360 and 0 <= b[1] <= 180):
            raise OsrmError("InvalidOptions", f"bearing {b[0]},{b[1]} is invalid: value must "
                            "be in 0..360 and range in 0..180")
    for r in radiuses or ():
        if r is not None and r < 0:
            raise OsrmError("InvalidOptions", f"radius {r} is invalid: it must be >= 0")
    return _Base(radiuses or [None] * n, generate_hints, skip_waypoints, exclude)


# ============================================================================ engine side
_exclude_lock = threading.Lock()
_exclude_cache: dict[tuple, tuple[np.ndarray, Weights]] = {}


def _weights(state: Any, profile: str, exclude: frozenset[str]) -> Weights:
    """The weights of this request: live traffic now, minus the excluded classes."""
    unknown = sorted(exclude - EXCLUDABLE.keys() - {"none"})
    if unknown:
        raise OsrmError("InvalidValue", "Exclude flag combination is not supported. "
                        f"(unknown class {', '.join(unknown)}; supported: "
                        f"{', '.join(EXCLUDABLE)})")
    base = state.router.weights(profile, "time")
    classes = sorted({c for name in exclude if name != "none" for c in EXCLUDABLE[name]})
    if not classes:
        return base
    key = (id(state.router), id(base.values), base.version, tuple(classes))
    hit = _exclude_cache.get(key)
    if hit is not None and hit[0] is base.values:
        return hit[1]
    graph = state.graph
    closed = np.isin(graph.highway, [HIGHWAY_CODE[c] for c in classes])
    values = np.array(base.values, dtype=np.float64)
    values[closed] = np.inf
    weights = Weights.build(values, profile=base.profile, metric=base.metric,
                            version=base.version, normal_time=base.normal_time,
                            state=-1, snappable=base.snappable & ~closed,
                            options=base.options, turns=base.turns, turn=base.turn,
                            to_road=state.router.turns.to_road())
    with _exclude_lock:
        if len(_exclude_cache) > 32:
            _exclude_cache.clear()
        _exclude_cache[key] = (base.values, weights)
    return weights


def _snap_all(state: Any, coords: Sequence[tuple[float, float]], weights: Weights,
              radiuses: Sequence[float | None]) -> list[Any]:
    """Snap every coordinate in order; the first that fails is OSRM's ``NoSegment``."""
    snaps = []
    for i, (lon, lat) in enumerate(coords):
        try:
            snap = state.router.snap((lat, lon), weights=weights, what=f"coordinate {i}")
        except PointOffNetwork:
            raise OsrmError("NoSegment", "Could not find a matching segment for coordinate "
                            f"{i}") from None
        except InvalidCoordinate as exc:
            raise OsrmError("InvalidValue", str(exc)) from None
        radius = radiuses[i]
        if radius is not None and snap.distance_m > radius:
            raise OsrmError("NoSegment", "Could not find a matching segment for coordinate "
                            f"{i}")
        snaps.append(snap)
    return snaps


def _waypoint(graph: RoadGraph, snap: Any, hints: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"hint": ""} if hints else {}
    out["distance"] = snap.distance_m
    out["name"] = graph.edge_name(snap.edge)
    out["location"] = [round(snap.lon, 6), round(snap.lat, 6)]
    return out


# ---------------------------------------------------------------------------- route geometry
_osm_index: WeakKeyDictionary = WeakKeyDictionary()


def _node_location(graph: RoadGraph, osm_id: int) -> list[float] | None:
    index = _osm_index.get(graph)
    if index is None:
        order = np.argsort(graph.point_osm_id, kind="stable")
        index = _osm_index[graph] = (graph.point_osm_id[order], order)
    ids, order = index
    k = int(np.searchsorted(ids, osm_id))
    if k >= len(ids) or ids[k] != osm_id:
        return None
    p = order[k]
    return [float(graph.point_lon[p]), float(graph.point_lat[p])]


def _aligned(graph: RoadGraph, route: Route) -> list[list[float]]:
    """The route's coordinates, one per entry of ``osm_nodes`` (OSRM's annotation layout):
    when the origin (destination) lies exactly on an OSM node, the engine lists the node
    before (after) it too; the geometry then repeats that point (a zero-length segment)."""
    coords, nodes = route.coordinates, route.osm_nodes
    if len(nodes) == len(coords) or len(nodes) < 2:
        return coords
    if len(nodes) == len(coords) + 1:
        if _node_location(graph, nodes[1]) == coords[0]:
            return [coords[0], *coords]
        if _node_location(graph, nodes[-2]) == coords[-1]:
            return [*coords, coords[-1]]
    inner = [_node_location(graph, n) for n in nodes[1:-1]]
    if any(p is None for p in inner):
        return coords
    return [coords[0], *inner, coords[-1]]  # type: ignore[list-item]


def _bearings(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Initial bearing of each segment, degrees clockwise from north."""
    p1, p2 = np.radians(lat[:-1]), np.radians(lat[1:])
    dl = np.radians(lon[1:] - lon[:-1])
    x = np.sin(dl) * np.cos(p2)
    y = np.cos(p1) * np.sin(p2) - np.sin(p1) * np.cos(p2) * np.cos(dl)
    return np.degrees(np.arctan2(x, y)) % 360.0


@dataclass
class _Leg:
    """One OSRM leg: aligned geometry, OSM nodes, and (when asked) per-segment figures."""

    coords: list[list[float]]
    nodes: list[int]
    distance: float
    duration: float
    names: list[tuple[str, float]]  #: street names followed and distance on each
    seg_distance: np.ndarray | None = None
    seg_duration: np.ndarray | None = None
    seg_edge: np.ndarray | None = None


def _make_leg(graph: RoadGraph, route: Route, time_w: np.ndarray, detail: bool) -> _Leg:
    coords = _aligned(graph, route)
    leg = _Leg(coords, list(route.osm_nodes), route.distance_m, route.duration_s,
               [(step.name, step.distance_m) for step in route.steps])
    if detail:
        _segments(graph, route, time_w, leg)
    return leg


def _segments(graph: RoadGraph, route: Route, time_w: np.ndarray, leg: _Leg) -> None:
    """Distance, duration and edge of every segment between consecutive coordinates, scaled
    so that they add up to the route's totals."""
    pts = np.asarray(leg.coords, dtype=np.float64)
    n = len(pts) - 1
    dist = (haversine_m(pts[:-1, 1], pts[:-1, 0], pts[1:, 1], pts[1:, 0])
            if n > 0 else np.zeros(0))
    edges = route.edges
    seg_edge = np.empty(n, dtype=np.int64)
    extra = np.zeros(n)
    head = graph.head[edges]
    head_lon, head_lat = graph.lon[head], graph.lat[head]
    ei, last = 0, len(edges) - 1
    for k in range(n):
        seg_edge[k] = edges[ei]
        nxt = leg.coords[k + 1]
        if ei < last and nxt[0] == head_lon[ei] and nxt[1] == head_lat[ei] and dist[k] > 0:
            ei += 1
            while ei < last and graph.length_m[edges[ei]] == 0:  # barrier crossings
                if k + 1 < n:
                    extra[k + 1] += time_w[edges[ei]]
                ei += 1
    length = graph.length_m[seg_edge]
    rate = np.divide(time_w[seg_edge], length, out=np.zeros(n), where=length > 0)
    dur = dist * rate + np.where(np.isfinite(extra), extra, 0.0)
    total_d, total_t = float(dist.sum()), float(dur.sum())
    if total_d > 0:
        dist = dist * (leg.distance / total_d)
    if total_t > 0:
        dur = dur * (leg.duration / total_t)
    elif n and leg.duration > 0:
        dur = np.full(n, leg.duration / n)
    leg.seg_distance, leg.seg_duration, leg.seg_edge = dist, dur, seg_edge


def _merge(legs: list[_Leg]) -> _Leg:
    """Legs between ``waypoints`` joined into one (OSRM's collapsed legs)."""
    first = legs[0]
    out = _Leg(list(first.coords), list(first.nodes), first.distance, first.duration,
               list(first.names), first.seg_distance, first.seg_duration, first.seg_edge)
    for leg in legs[1:]:
        out.coords += leg.coords[1:]
        out.nodes += leg.nodes[1:]
        out.distance += leg.distance
        out.duration += leg.duration
        out.names += leg.names
        if out.seg_distance is not None and leg.seg_distance is not None:
            out.seg_distance = np.concatenate([out.seg_distance, leg.seg_distance])
            out.seg_duration = np.concatenate([out.seg_duration, leg.seg_duration])
            out.seg_edge = np.concatenate([out.seg_edge, leg.seg_edge])
    return out


def _geometry(coords: Sequence[Sequence[float]] | np.ndarray, fmt: str) -> Any:
    if fmt == "geojson":
        arr = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
        return {"type": "LineString", "coordinates": np.round(arr, 6).tolist()}
    return encode_polyline(coords, 6 if fmt == "polyline6" else 5)


_SHIFTS = np.arange(0, 35, 5, dtype=np.int64)


def encode_polyline(coords: Sequence[Sequence[float]], precision: int = 5) -> str:
    """Google's encoded polyline of ``[lon, lat]`` points (latitude first, as OSRM), the
    same string as the ``polyline`` package's ``encode`` (rounding half away from zero),
    vectorised: ~4x faster on a route."""
    arr = np.asarray(coords, dtype=np.float64).reshape(-1, 2)[:, ::-1] * (10.0 ** precision)
    ints = (np.floor(np.abs(arr) + 0.5) * np.sign(arr)).astype(np.int64)
    deltas = np.diff(ints, axis=0, prepend=np.zeros((1, 2), dtype=np.int64)).ravel()
    zigzag = np.where(deltas < 0, ~(deltas << 1), deltas << 1)
    rest = zigzag[:, None] >> _SHIFTS[None, :]  # 7 chunks of 5 bits cover 35 bits
    more = np.zeros(rest.shape, dtype=bool)
    more[:, :-1] = rest[:, 1:] > 0
    keep = np.ones(rest.shape, dtype=bool)
    keep[:, 1:] = more[:, :-1]
    chars = (rest & 31) + np.where(more, 0x20, 0) + 63
    return chars[keep].astype(np.uint8).tobytes().decode("ascii")


def _simplified(arr: np.ndarray) -> np.ndarray:
    """Douglas-Peucker with a tolerance of 1/1000 of the route's extent (about one pixel
    at the zoom level showing the whole route, as OSRM's zoom-level simplification)."""
    if len(arr) < 3:
        return arr
    extent = float(np.max(arr.max(axis=0) - arr.min(axis=0)))
    tolerance = max(5e-6, extent / 1000.0)
    line = shapely.simplify(shapely.linestrings(arr), tolerance, preserve_topology=False)
    out = shapely.get_coordinates(line)
    return out if len(out) >= 2 else arr[[0, -1]]


_MODIFIERS = ((20.0, "straight"), (60.0, "slight {}"), (140.0, "{}"), (170.0, "sharp {}"))


def _modifier(before: float, after: float) -> str:
    turn = (after - before + 180.0) % 360.0 - 180.0  # -180..180, positive = right
    side = "right" if turn > 0 else "left"
    for limit, name in _MODIFIERS:
        if abs(turn) < limit:
            return name.format(side)
    return "uturn"


def _deg(x: float) -> int:
    return round(x) % 360


def _steps(graph: RoadGraph, leg: _Leg, fmt: str) -> list[dict[str, Any]]:
    """One step per street-name change, then ``arrive``."""
    coords = leg.coords
    dist, dur, seg_edge = leg.seg_distance, leg.seg_duration, leg.seg_edge
    assert dist is not None and dur is not None and seg_edge is not None
    arr = np.asarray(coords, dtype=np.float64)
    n = len(dist)
    bearing = _bearings(arr[:, 0], arr[:, 1]) if n else np.zeros(0)
    moving = dist > 0
    names = graph.name_id[seg_edge] if n else np.zeros(0, dtype=np.int64)
    starts = (np.flatnonzero(np.concatenate([[True], names[1:] != names[:-1]]))
              if n else np.zeros(1, dtype=np.int64))
    ends = [*starts[1:].tolist(), n]
    steps: list[dict[str, Any]] = []
    before = None  # bearing of travel arriving at the current step
    for k, (a, b) in enumerate(zip(starts.tolist(), ends, strict=True)):
        run = np.flatnonzero(moving[a:b])
        after = float(bearing[a + run[0]]) if len(run) else (before or 0.0)
        name = graph.edge_name(int(seg_edge[a])) if n else ""
        location = [round(coords[a][0], 6), round(coords[a][1], 6)]
        if k == 0:
            maneuver = {"location": location, "bearing_before": 0,
                        "bearing_after": _deg(after), "type": "depart"}
            intersection = {"location": location, "bearings": [_deg(after)],
                            "entry": [True], "out": 0}
        else:
            modifier = _modifier(before or 0.0, after)
            maneuver = {"location": location, "bearing_before": _deg(before or 0.0),
                        "bearing_after": _deg(after),
                        "type": "new name" if modifier == "straight" else "turn",
                        "modifier": modifier}
            intersection = _intersection(location, before or 0.0, after)
        step_d = float(dist[a:b].sum())
        step_t = float(dur[a:b].sum())
        steps.append({"geometry": _geometry(coords[a:b + 1], fmt), "maneuver": maneuver,
                      "mode": "driving", "driving_side": "right", "name": name,
                      "intersections": [intersection], "weight": step_t,
                      "duration": step_t, "distance": step_d})
        if len(run):
            before = float(bearing[a + run[-1]])
    end = [round(coords[-1][0], 6), round(coords[-1][1], 6)]
    arrive_from = before or 0.0
    steps.append({"geometry": _geometry([coords[-1], coords[-1]], fmt),
                  "maneuver": {"location": end, "bearing_before": _deg(arrive_from),
                               "bearing_after": 0, "type": "arrive"},
                  "mode": "driving", "driving_side": "right",
                  "name": steps[-1]["name"] if steps else "",
                  "intersections": [{"location": end,
                                     "bearings": [_deg(arrive_from + 180.0)],
                                     "entry": [True], "in": 0}],
                  "weight": 0.0, "duration": 0.0, "distance": 0.0})
    return steps


def _intersection(location: list[float], before: float, after: float) -> dict[str, Any]:
    back, out = _deg(before + 180.0), _deg(after)
    bearings = sorted({back, out})
    return {"location": location, "bearings": bearings,
            "entry": [b == out for b in bearings],
            "in": bearings.index(back), "out": bearings.index(out)}


def _summary(leg: _Leg) -> str:
    """Names of the two roads the leg follows longest, in route order (OSRM's summary,
    which OSRM only fills in when steps are asked for)."""
    total: dict[str, float] = {}
    for name, distance in leg.names:
        if name:
            total[name] = total.get(name, 0.0) + distance
    top = set(sorted(total, key=lambda name: -total[name])[:2])
    return ", ".join(name for name in total if name in top)


def _annotation(leg: _Leg, wanted: set[str]) -> dict[str, Any]:
    assert leg.seg_distance is not None and leg.seg_duration is not None
    dist, dur = leg.seg_distance, leg.seg_duration
    out: dict[str, Any] = {}
    if "distance" in wanted:
        out["distance"] = dist.tolist()
    if "duration" in wanted:
        out["duration"] = dur.tolist()
    if "datasources" in wanted:
        out["datasources"] = [0] * len(dist)
    if "nodes" in wanted:
        out["nodes"] = leg.nodes
    if "weight" in wanted:
        out["weight"] = dur.tolist()
    if "speed" in wanted:
        speed = np.divide(dist, dur, out=np.zeros(len(dist)), where=dur > 0)
        out["speed"] = np.round(speed, 1).tolist()
    if "datasources" in wanted:
        out["metadata"] = {"datasource_names": ["profile"]}
    return out


# ============================================================================ endpoints
@router.get("/route/{version}/{profile}/{coordinates}")
def osrm_route(version: str, profile: str, coordinates: str, request: Request, state: State,
               _: DispatcherRole) -> Response:
    """OSRM route service: ``lon,lat;lon,lat[;...]`` or ``polyline(...)``, options
    ``overview``, ``geometries``, ``steps``, ``annotations``, ``alternatives``,
    ``continue_straight``, ``waypoints``, ``radiuses``, ``bearings``, ``hints``,
    ``generate_hints``, ``approaches``, ``exclude``, ``snapping``, ``skip_waypoints``."""
    return _answer(lambda: _route(state, request, version, profile, coordinates))


def _route(state: Any, request: Request, version: str, profile: str,
           coordinates: str) -> dict[str, Any]:
    url = _parse_url("route", version, profile, coordinates)
    opts = _Options(request, _ROUTE_OPTIONS, url)
    n = len(url.coordinates)
    base = _parse_base(opts, n)
    steps = opts.boolean("steps", False)
    geometries = opts.choice("geometries", ("polyline", "polyline6", "geojson"), "polyline")
    overview = opts.choice("overview", ("simplified", "full", "false"), "simplified")
    opts.choice("continue_straight", ("default", "true", "false"), "default")
    alternatives = opts.get("alternatives")
    n_alternatives = 0
    if alternatives is not None:
        if alternatives in ("true", "false"):
            n_alternatives = int(alternatives == "true")
        elif _UINT_RE.match(alternatives):
            n_alternatives = int(alternatives)
        else:
            raise opts.error("alternatives", f"expected true, false or a number, "
                                             f"got {alternatives!r}")
    annotations: set[str] = set()
    if (raw := opts.get("annotations")) is not None:
        if raw == "true":
            annotations = set(_ROUTE_ANNOTATIONS)
        elif raw != "false":
            annotations = set(raw.split(","))
            if not annotations <= set(_ROUTE_ANNOTATIONS):
                raise opts.error("annotations", f"expected true, false or a list of "
                                 f"{', '.join(_ROUTE_ANNOTATIONS)}, got {raw!r}")
    waypoints = opts.indices("waypoints", allow_all=False)
    # the "IsValid" stage
    if n < 2:
        raise OsrmError("InvalidOptions", "Number of coordinates needs to be at least two.")
    if waypoints is not None and (any(w >= n for w in waypoints)
                                  or any(b <= a for a, b in pairwise(waypoints))):
        raise OsrmError("InvalidOptions", "waypoints must be increasing indices of the "
                        "coordinates")
    # the plugin stage
    if n > MAX_ROUTE_COORDINATES:
        raise OsrmError("TooBig", f"Number of entries {n} is higher than current maximum "
                        f"({MAX_ROUTE_COORDINATES})")
    if n_alternatives > MAX_ALTERNATIVES:
        raise OsrmError("TooBig", "Requested number of alternatives is higher than current "
                        f"maximum ({MAX_ALTERNATIVES})")
    if not _valid_coordinates(url.coordinates):
        raise OsrmError("InvalidValue", "Invalid coordinate value.")
    if waypoints is not None and (waypoints[0] != 0 or waypoints[-1] != n - 1):
        raise OsrmError("InvalidValue", "First and last coordinates must be specified as "
                        "waypoints.")
    weights = _weights(state, url.profile, base.exclude)
    snaps = _snap_all(state, url.coordinates, weights, base.radiuses)
    graph = state.graph
    detail = steps or bool(annotations)
    legs: list[_Leg] = []
    version_used = weights.version
    for k, (a, b) in enumerate(pairwise(url.coordinates)):
        found = state.router.route((a[1], a[0]), (b[1], b[0]), weights=weights)
        if not found.reachable:
            raise OsrmError("NoRoute", "No route found between points")
        version_used = max(version_used, found.weights_version)
        legs.append(_make_leg(graph, found, weights.time, detail))
        # the snaps the route really used (a fallback from a cut-off road moves them)
        if k == 0:
            snaps[0] = found.origin
        snaps[k + 1] = found.destination
    if waypoints is not None:
        legs = [_merge(legs[i:j]) for i, j in pairwise(waypoints)]
        snaps = [snaps[i] for i in waypoints]
    route_coords = list(legs[0].coords)
    for leg in legs[1:]:
        route_coords += leg.coords[1:]
    out_legs = []
    for leg in legs:
        item: dict[str, Any] = {
            "steps": _steps(graph, leg, geometries) if steps else [],
            "summary": _summary(leg) if steps else "", "weight": leg.duration,
            "duration": leg.duration, "distance": leg.distance}
        if annotations:
            item["annotation"] = _annotation(leg, annotations)
        out_legs.append(item)
    duration = float(sum(leg.duration for leg in legs))
    route_obj: dict[str, Any] = {}
    if overview != "false":
        shape = np.asarray(route_coords, dtype=np.float64)
        if overview == "simplified":
            shape = _simplified(shape)
        route_obj["geometry"] = _geometry(shape, geometries)
    route_obj.update({"legs": out_legs, "weight_name": "duration", "weight": duration,
                      "duration": duration,
                      "distance": float(sum(leg.distance for leg in legs))})
    body: dict[str, Any] = {"code": "Ok", "routes": [route_obj]}
    if not base.skip_waypoints:
        body["waypoints"] = [_waypoint(graph, s, base.generate_hints) for s in snaps]
    body["weights_version"] = version_used
    body["stale"] = state.stale
    return body


@router.get("/table/{version}/{profile}/{coordinates}")
def osrm_table(version: str, profile: str, coordinates: str, request: Request, state: State,
               _: DispatcherRole) -> Response:
    """OSRM table service: ``sources``, ``destinations`` (indices or ``all``),
    ``annotations`` (``duration``, ``distance`` — of the fastest route, each pair routed),
    ``fallback_speed``, ``fallback_coordinate``, ``scale_factor`` and the general options.
    At most ``max_table_coordinates``² cells (``TooBig``)."""
    return _answer(lambda: _table(state, request, version, profile, coordinates))


def _table(state: Any, request: Request, version: str, profile: str,
           coordinates: str) -> dict[str, Any]:
    url = _parse_url("table", version, profile, coordinates)
    opts = _Options(request, _TABLE_OPTIONS, url)
    n = len(url.coordinates)
    base = _parse_base(opts, n)
    sources = opts.indices("sources", allow_all=True)
    destinations = opts.indices("destinations", allow_all=True)
    wanted = ["duration"]
    if (raw := opts.get("annotations")) is not None:
        wanted = raw.split(",")
        if not set(wanted) <= {"duration", "distance"}:
            raise opts.error("annotations", f"expected duration, distance or "
                             f"duration,distance, got {raw!r}")
    fallback_speed = opts.number("fallback_speed")
    fallback_coordinate = opts.choice("fallback_coordinate", ("input", "snapped"), "input")
    scale_factor = opts.number("scale_factor")
    # the "IsValid" stage
    for key, idx in (("sources", sources), ("destinations", destinations)):
        if idx is not None and any(i >= n for i in idx):
            raise OsrmError("InvalidOptions", f"{key}: every index must be lower than the "
                            f"number of coordinates ({n})")
    if fallback_speed is not None and fallback_speed <= 0:
        raise OsrmError("InvalidOptions", "fallback_speed must be > 0")
    if scale_factor is not None and scale_factor <= 0:
        raise OsrmError("InvalidOptions", "scale_factor must be > 0")
    # the plugin stage
    if not _valid_coordinates(url.coordinates):
        raise OsrmError("InvalidOptions", "Coordinates are invalid")
    src = list(range(n)) if sources is None else sources
    dst = list(range(n)) if destinations is None else destinations
    limit = int(request.app.state.settings.max_table_coordinates)
    if len(src) * len(dst) > limit * limit:
        raise OsrmError("TooBig", "Too many table coordinates")
    if "distance" in wanted and len(src) * len(dst) > MAX_DISTANCE_CELLS:
        raise OsrmError("TooBig", "Too many table coordinates for annotations=distance "
                        f"(each cell is routed: at most {MAX_DISTANCE_CELLS} cells)")
    weights = _weights(state, url.profile, base.exclude)
    snaps = _snap_all(state, url.coordinates, weights, base.radiuses)
    latlon = [(lat, lon) for lon, lat in url.coordinates]
    table = state.router.table([latlon[i] for i in src], [latlon[j] for j in dst],
                               weights=weights)
    values = table.values
    durations: list[list[float | None]] = [
        [float(v) if np.isfinite(v) else None for v in row] for row in values]
    distances: list[list[float | None]] | None = None
    if "distance" in wanted:
        distances = [[None] * len(dst) for _ in src]
        for i, s in enumerate(src):
            for j, d in enumerate(dst):
                if durations[i][j] is None:
                    continue
                if s == d or url.coordinates[s] == url.coordinates[d]:
                    distances[i][j] = 0.0
                    continue
                found = state.router.route(latlon[s], latlon[d], weights=weights)
                distances[i][j] = found.distance_m if found.reachable else None
    fallback_cells = []
    if fallback_speed is not None:
        for i, s in enumerate(src):
            for j, d in enumerate(dst):
                if durations[i][j] is not None:
                    continue
                if fallback_coordinate == "snapped":
                    a = (snaps[s].lat, snaps[s].lon)
                    b = (snaps[d].lat, snaps[d].lon)
                else:
                    a, b = latlon[s], latlon[d]
                crow = float(haversine_m(a[0], a[1], b[0], b[1]))
                durations[i][j] = crow / fallback_speed
                if distances is not None:
                    distances[i][j] = crow
                fallback_cells.append([i, j])
    if scale_factor is not None and scale_factor != 1:
        durations = [[None if v is None else v * scale_factor for v in row]
                     for row in durations]
    graph = state.graph
    body: dict[str, Any] = {"code": "Ok"}
    if "duration" in wanted:
        body["durations"] = durations
    if distances is not None:
        body["distances"] = distances
    if not base.skip_waypoints:
        # the snaps the table used (a fallback from a cut-off road moves them)
        body["sources"] = [_waypoint(graph, s, base.generate_hints) for s in table.sources]
        body["destinations"] = [_waypoint(graph, d, base.generate_hints)
                                for d in table.destinations]
    if fallback_speed is not None:
        body["fallback_speed_cells"] = fallback_cells
    body["weights_version"] = table.weights_version
    body["stale"] = state.stale
    return body


@router.get("/nearest/{version}/{profile}/{coordinates}")
def osrm_nearest(version: str, profile: str, coordinates: str, request: Request, state: State,
                 _: DispatcherRole) -> Response:
    """OSRM nearest service: the ``number`` nearest road pieces usable by the profile, with
    the OSM nodes of the snapped segment."""
    return _answer(lambda: _nearest(state, request, version, profile, coordinates))


def _nearest(state: Any, request: Request, version: str, profile: str,
             coordinates: str) -> dict[str, Any]:
    url = _parse_url("nearest", version, profile, coordinates)
    opts = _Options(request, _NEAREST_OPTIONS, url)
    n = len(url.coordinates)
    base = _parse_base(opts, n)
    raw = opts.get("number")
    if raw is not None and not _UINT_RE.match(raw):
        raise opts.error("number", f"expected an integer >= 1, got {raw!r}")
    number = 1 if raw is None else int(raw)
    if number < 1:
        raise OsrmError("InvalidOptions", "number must be an integer >= 1")
    if number > MAX_NEAREST:
        raise OsrmError("TooBig", f"Number of results {number} is higher than current "
                        f"maximum ({MAX_NEAREST})")
    if not _valid_coordinates(url.coordinates):
        raise OsrmError("InvalidOptions", "Coordinates are invalid")
    if n != 1:
        raise OsrmError("InvalidOptions", "Only one input coordinate is supported")
    weights = _weights(state, url.profile, base.exclude)
    lon, lat = url.coordinates[0]
    radius = state.router.snap_radius_m
    if base.radiuses[0] is not None:
        radius = min(radius, base.radiuses[0])
    found = _nearest_segments(state.router, lat, lon, weights.snappable, number, radius)
    if not found:
        raise OsrmError("NoSegment", "Could not find a matching segments for coordinate")
    graph = state.graph
    waypoints = []
    for seg, snap_lat, snap_lon in found:
        wp: dict[str, Any] = {"nodes": [int(graph.point_osm_id[state.router.snapper.seg_a[seg]]),
                                        int(graph.point_osm_id[state.router.snapper.seg_b[seg]])]}
        if base.generate_hints:
            wp["hint"] = ""
        wp["distance"] = float(haversine_m(lat, lon, snap_lat, snap_lon))
        wp["name"] = graph.edge_name(int(state.router.snapper.seg_edge[seg]))
        wp["location"] = [round(snap_lon, 6), round(snap_lat, 6)]
        waypoints.append(wp)
    body: dict[str, Any] = {"code": "Ok", "waypoints": waypoints,
                            "weights_version": weights.version, "stale": state.stale}
    return body


def _nearest_segments(router_: Any, lat: float, lon: float, usable: np.ndarray, number: int,
                      radius: float) -> list[tuple[int, float, float]]:
    """The ``number`` nearest road pieces (one segment each: the nearest of the piece) usable
    in at least one direction, within ``radius`` metres; as ``(segment, lat, lon)``."""
    snapper = router_.snapper
    graph = snapper.graph
    px, py = snapper._project(lat, lon)
    point = shapely.Point(float(px), float(py))
    search = 32.0
    while True:
        search = min(search, radius)
        cand = snapper.tree.query(point, predicate="dwithin", distance=search)
        if len(cand):
            e = snapper.seg_edge[cand]
            tw = graph.twin[e]
            cand = cand[usable[e] | ((tw >= 0) & usable[np.maximum(tw, 0)])]
        if len(np.unique(snapper.seg_edge[cand])) >= number or search >= radius:
            break
        search *= 4.0
    if not len(cand):
        return []
    ax, ay = snapper.ax[cand], snapper.ay[cand]
    dx, dy = snapper.bx[cand] - ax, snapper.by[cand] - ay
    den = dx * dx + dy * dy
    t = np.where(den > 0, ((px - ax) * dx + (py - ay) * dy) / np.where(den > 0, den, 1), 0)
    t = np.clip(t, 0.0, 1.0)
    d2 = (ax + t * dx - px) ** 2 + (ay + t * dy - py) ** 2
    order = np.argsort(d2, kind="stable")
    seen: set[int] = set()
    out = []
    for k in order.tolist():
        edge = int(snapper.seg_edge[cand[k]])
        if edge in seen:
            continue
        seen.add(edge)
        seg = int(cand[k])
        a, b = snapper.seg_a[seg], snapper.seg_b[seg]
        tk = float(t[k])
        out.append((seg, float(graph.point_lat[a] + tk * (graph.point_lat[b] - graph.point_lat[a])),
                    float(graph.point_lon[a] + tk * (graph.point_lon[b] - graph.point_lon[a]))))
        if len(out) == number:
            break
    return out


def _unknown_service(service: str) -> Callable[..., Response]:
    def handler(version: str, profile: str, coordinates: str, _: DispatcherRole) -> Response:
        return _answer(lambda: _raise(OsrmError("InvalidService",
                                                f"Service {service} not found!")))

    return handler


def _raise(exc: Exception) -> dict[str, Any]:
    raise exc


for _service in ("match", "trip", "tile"):  # OSRM services gyrophare does not serve
    router.add_api_route(f"/{_service}/{{version}}/{{profile}}/{{coordinates}}",
                         _unknown_service(_service), methods=["GET"], include_in_schema=False)
