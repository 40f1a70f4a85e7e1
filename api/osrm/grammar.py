"""OSRM's request grammar: the URL and query options of ``/route``, ``/table`` and ``/nearest``
parsed and checked into typed queries, raising OSRM's error codes in OSRM's order (syntax as
``server/api/*_parameters_grammar.hpp``, then the ``IsValid`` checks, then the limits that
OSRM's plugins check).

Size limits come first, before anything is parsed: a URL longer than :data:`MAX_URL_BYTES`
and a coordinate count above the service's maximum are ``TooBig`` at once (counted, not
parsed). :data:`MAX_URL_BYTES` is the request-target limit of uvicorn's default HTTP parser
(httptools): a longer URL never reaches the application, the server itself answers a
plain-text 400 ``Invalid HTTP request received.``; at 6 decimals a ``lon,lat;`` takes about
20 bytes, so about 3,000 coordinates fit in one URL. Every URL the server accepts gets a JSON
answer (``TooBig`` with the limit when it asks too much).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal, TypeVar, cast

import polyline as polyline_codec

from api.osrm.errors import OsrmError

#: OSRM profile names -> gyrophare profiles
PROFILES: dict[str, str] = {"driving": "car", "car": "car",
                            "ambulance": "ambulance", "emergency": "ambulance"}
MAX_ROUTE_COORDINATES = 500  #: osrm-routed's default --max-viaroute-size
MAX_ALTERNATIVES = 3  #: osrm-routed's default --max-alternatives
MAX_NEAREST = 100  #: osrm-routed's default --max-nearest-size
MAX_DISTANCE_CELLS = 2500  #: table cells when distances are asked (each cell is one route)
#: Longest URL (path and query) served: uvicorn's (httptools') limit, checked here too so that
#: the answer is the same whatever server runs the app.
MAX_URL_BYTES = 65_535
#: classes ``exclude`` may name, and the highway classes they close (no ferries in the graph)
EXCLUDABLE: dict[str, frozenset[str]] = {
    "motorway": frozenset({"motorway", "motorway_link"}), "ferry": frozenset()}
#: gyrophare's own query options, accepted besides OSRM's
EXTENSION_OPTIONS = frozenset({"api_key"})
ROUTE_ANNOTATIONS = ("duration", "nodes", "distance", "weight", "datasources", "speed")

_BASE_OPTIONS = frozenset({"radiuses", "hints", "bearings", "generate_hints", "approaches",
                           "exclude", "snapping", "skip_waypoints"})
_ROUTE_OPTIONS = _BASE_OPTIONS | {"alternatives", "continue_straight", "waypoints", "steps",
                                  "geometries", "overview", "annotations"}
_TABLE_OPTIONS = _BASE_OPTIONS | {"sources", "destinations", "annotations", "fallback_speed",
                                  "fallback_coordinate", "scale_factor"}
_NEAREST_OPTIONS = _BASE_OPTIONS | {"number"}
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

LonLat = tuple[float, float]

# ------------------------------------------------------------------------------ declared
# What /openapi.json declares for the URL's parts: exactly the strings this grammar accepts
# (tests/test_openapi.py checks both ways), but for two rules no pattern can
# state: a coordinate must be near a road of the map (NoSegment), and a polyline's points,
# a running sum of deltas, must decode within WGS84 ranges.
#: ``{version}``: only v1 exists.
VERSION_PATTERN = "^v1$"
#: ``{profile}``: the names of :data:`PROFILES`.
PROFILE_PATTERN = "^(?:" + "|".join(PROFILES) + ")$"
#: A longitude / latitude in OSRM's number syntax (``_NUM``), within range.
_LON = r"[+-]?(?:0*180(?:\.0*)?|0*(?:1[0-7][0-9]|[1-9]?[0-9])(?:\.[0-9]*)?|\.[0-9]+)"
_LAT = r"[+-]?(?:0*90(?:\.0*)?|0*[1-8]?[0-9](?:\.[0-9]*)?|\.[0-9]+)"
_POINT = f"{_LON},{_LAT}"
#: One polyline value: continuation characters (0x5F-0x7E), then a final one (0x3F-0x5E).
_VALUE = "[_-~]*[?-^]"


def coordinates_pattern(least: int, most: int) -> str:
    """``{coordinates}`` of ``least`` to ``most`` positions: ``lon,lat;lon,lat...`` (ranges
    checked) or ``polyline(...)`` / ``polyline6(...)`` holding whole (lat, lon) pairs, either
    with an optional ``.json``."""
    more = f"(?:;{_POINT}){{{least - 1},{most - 1}}}" if most > 1 else ""
    pairs = f"(?:{_VALUE}{_VALUE}){{{least},{most}}}" if most > 1 else _VALUE + _VALUE
    listed, encoded = _POINT + more, rf"polyline6?\({pairs}\)"
    return rf"^(?:{listed}|{encoded})(?:\.json)?$"


#: ``{coordinates}`` per service (the table's maximum is a setting: see
#: :func:`api.app.document_api`).
ROUTE_COORDINATES_PATTERN = coordinates_pattern(2, MAX_ROUTE_COORDINATES)
NEAREST_COORDINATES_PATTERN = coordinates_pattern(1, 1)
Geometries = Literal["polyline", "polyline6", "geojson"]
Overview = Literal["simplified", "full", "false"]
_T = TypeVar("_T")


# ------------------------------------------------------------------------------ typed queries
@dataclass(frozen=True, slots=True)
class Query:
    """What every service takes, checked."""

    profile: str  #: gyrophare's profile (``car``, ``ambulance``)
    coordinates: list[LonLat]  #: as given, ``(lon, lat)``
    radiuses: list[float | None]  #: one per coordinate (``None``: the server's snap radius)
    generate_hints: bool
    skip_waypoints: bool
    exclude: frozenset[str]  #: highway classes closed for the request (engine vocabulary)


@dataclass(frozen=True, slots=True)
class OsrmRouteQuery(Query):
    steps: bool
    geometries: Geometries
    overview: Overview
    annotations: frozenset[str]  #: of :data:`ROUTE_ANNOTATIONS`
    waypoints: list[int] | None  #: coordinates that end a leg (``None``: all)
    #: alternative routes wanted besides the best (``alternatives=true`` is 1; two
    #: coordinates only, as OSRM)
    alternatives: int = 0


@dataclass(frozen=True, slots=True)
class OsrmTableQuery(Query):
    sources: list[int]  #: coordinate indices, in the order asked
    destinations: list[int]
    annotations: frozenset[str]  #: ``duration`` and/or ``distance``
    fallback_speed: float | None  #: m/s, for cells without a route
    fallback_coordinate: Literal["input", "snapped"]
    scale_factor: float | None


@dataclass(frozen=True, slots=True)
class OsrmNearestQuery(Query):
    number: int


# ------------------------------------------------------------------------------ services
def check_url_length(length: int) -> None:
    """``TooBig`` for a URL (path and query) longer than :data:`MAX_URL_BYTES`."""
    if length > MAX_URL_BYTES:
        raise OsrmError("TooBig", f"URL of {length} bytes is longer than the {MAX_URL_BYTES} "
                        "bytes served: send fewer coordinates, fewer decimals (6 is 10 cm) or "
                        "a polyline")


def parse_route(version: str, profile: str, coordinates: str, *, query: str,
                options: Iterable[tuple[str, str]]) -> OsrmRouteQuery:
    """``/route/{version}/{profile}/{coordinates}?{query}`` (``options``: the query's
    ``(key, value)`` pairs, in order)."""
    url = _parse_url("route", version, profile, coordinates,
                     max_coordinates=MAX_ROUTE_COORDINATES)
    opts = _Options(query, options, _ROUTE_OPTIONS, url)
    n = len(url.coordinates)
    base = _parse_base(opts, n)
    steps = opts.boolean("steps", False)
    geometries = cast(Geometries, opts.choice("geometries", ("polyline", "polyline6", "geojson"),
                                              "polyline"))
    overview = cast(Overview, opts.choice("overview", ("simplified", "full", "false"),
                                          "simplified"))
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
    annotations: frozenset[str] = frozenset()
    if (raw := opts.get("annotations")) is not None:
        if raw == "true":
            annotations = frozenset(ROUTE_ANNOTATIONS)
        elif raw != "false":
            annotations = frozenset(raw.split(","))
            if not annotations <= set(ROUTE_ANNOTATIONS):
                raise opts.error("annotations", f"expected true, false or a list of "
                                 f"{', '.join(ROUTE_ANNOTATIONS)}, got {raw!r}")
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
    return OsrmRouteQuery(url.profile, url.coordinates, base.radiuses, base.generate_hints,
                      base.skip_waypoints, _excluded_classes(base.exclude), steps,
                      geometries, overview, annotations, waypoints, n_alternatives)


def parse_table(version: str, profile: str, coordinates: str, *, query: str,
                options: Iterable[tuple[str, str]], max_table_coordinates: int) -> OsrmTableQuery:
    """``/table/{version}/{profile}/{coordinates}?{query}``; at most
    ``max_table_coordinates``² cells (OSRM counts sources x destinations)."""
    options = list(options)
    # all x all (no sources / destinations): n coordinates are n² cells, known before parsing
    subset = any(key in ("sources", "destinations") for key, _ in options)
    url = _parse_url("table", version, profile, coordinates,
                     max_coordinates=max_table_coordinates ** 2 if subset
                     else max_table_coordinates,
                     too_big="Too many table coordinates")
    opts = _Options(query, options, _TABLE_OPTIONS, url)
    n = len(url.coordinates)
    base = _parse_base(opts, n)
    sources = opts.indices("sources", allow_all=True)
    destinations = opts.indices("destinations", allow_all=True)
    wanted = frozenset({"duration"})
    if (raw := opts.get("annotations")) is not None:
        wanted = frozenset(raw.split(","))
        if not wanted <= {"duration", "distance"}:
            raise opts.error("annotations", f"expected duration, distance or "
                             f"duration,distance, got {raw!r}")
    fallback_speed = opts.number("fallback_speed")
    fallback_coordinate = cast(Literal["input", "snapped"],
                               opts.choice("fallback_coordinate", ("input", "snapped"), "input"))
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
    if len(src) * len(dst) > max_table_coordinates * max_table_coordinates:
        raise OsrmError("TooBig", "Too many table coordinates")
    if "distance" in wanted and len(src) * len(dst) > MAX_DISTANCE_CELLS:
        raise OsrmError("TooBig", "Too many table coordinates for annotations=distance "
                        f"(each cell is routed: at most {MAX_DISTANCE_CELLS} cells)")
    return OsrmTableQuery(url.profile, url.coordinates, base.radiuses, base.generate_hints,
                      base.skip_waypoints, _excluded_classes(base.exclude), src, dst, wanted,
                      fallback_speed, fallback_coordinate, scale_factor)


def parse_nearest(version: str, profile: str, coordinates: str, *, query: str,
                  options: Iterable[tuple[str, str]]) -> OsrmNearestQuery:
    """``/nearest/{version}/{profile}/{coordinates}?{query}``."""
    url = _parse_url("nearest", version, profile, coordinates)
    opts = _Options(query, options, _NEAREST_OPTIONS, url)
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
    return OsrmNearestQuery(url.profile, url.coordinates, base.radiuses, base.generate_hints,
                        base.skip_waypoints, _excluded_classes(base.exclude), number)


def unknown_service(service: str) -> OsrmError:
    """The answer to an OSRM service gyrophare does not serve (``match``, ``trip``, ``tile``)."""
    return OsrmError("InvalidService", f"Service {service} not found!")


def _excluded_classes(names: frozenset[str]) -> frozenset[str]:
    """OSRM's ``exclude`` names -> the highway classes they close (``InvalidValue`` for a
    class this server cannot exclude, as OSRM refuses an unknown one)."""
    unknown = sorted(names - EXCLUDABLE.keys() - {"none"})
    if unknown:
        raise OsrmError("InvalidValue", "Exclude flag combination is not supported. "
                        f"(unknown class {', '.join(unknown)}; supported: "
                        f"{', '.join(EXCLUDABLE)})")
    return frozenset().union(*(EXCLUDABLE[name] for name in names if name != "none"))


# ------------------------------------------------------------------------------ the URL
@dataclass(frozen=True, slots=True)
class _Url:
    service: str
    profile: str  # gyrophare profile
    coordinates: list[LonLat]  # (lon, lat) as given
    prefix: int  # length of "/service/v1/profile/", for error positions
    raw: str  # the coordinates segment


def _parse_url(service: str, version: str, profile: str, coordinates: str, *,
               max_coordinates: int | None = None, too_big: str | None = None) -> _Url:
    prefix = f"/{service}/{version}/{profile}/"
    for part, offset in ((version, len(service) + 2), (profile, len(service) + len(version) + 3)):
        if not _IDENTIFIER_RE.match(part):
            bad = next((i for i, ch in enumerate(part) if not _IDENTIFIER_RE.match(ch)), 0)
            raise _invalid_url(prefix + coordinates, offset + bad)
    if not re.fullmatch(r"v\d+", version):
        raise _invalid_url(prefix + coordinates, len(service) + 2)
    if version != "v1":
        raise OsrmError("InvalidVersion", f"Service {service} not found!")
    ok = _URL_CHARS_RE.match(coordinates)
    if ok is None or ok.end() != len(coordinates):
        raise _invalid_url(prefix + coordinates, len(prefix) + (ok.end() if ok else 0))
    gy_profile = PROFILES.get(profile)
    if gy_profile is None:
        raise OsrmError("InvalidValue", f"Unknown profile {profile!r}: this server routes "
                        "'driving' or 'car' (car) and 'ambulance' or 'emergency' (ambulance "
                        "with lights and sirens)")
    if max_coordinates is not None and not coordinates.startswith("polyline"):
        n = coordinates.count(";") + 1  # counted, not parsed: a huge list costs nothing
        if n > max_coordinates:
            raise OsrmError("TooBig", too_big or f"Number of entries {n} is higher than "
                            f"current maximum ({max_coordinates})")
    return _Url(service, gy_profile, _parse_coordinates(coordinates, len(prefix)),
                len(prefix), coordinates)


def _invalid_url(url: str, position: int) -> OsrmError:
    context = url[max(0, position - 3): position + 3]
    return OsrmError("InvalidUrl", f'URL string malformed close to position {position}: '
                                   f'"{context}"')


def _invalid_query(position: int, detail: str = "") -> OsrmError:
    message = f"Query string malformed close to position {position}"
    return OsrmError("InvalidQuery", message + (f" ({detail})" if detail else ""))


def _parse_coordinates(raw: str, prefix: int) -> list[LonLat]:
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


def _valid_coordinates(coords: Sequence[LonLat]) -> bool:
    return all(-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0 for lon, lat in coords)


# ------------------------------------------------------------------------------ the options
class _Options:
    """The query options of one request, OSRM's grammar (last value wins on repeats)."""

    def __init__(self, query: str, items: Iterable[tuple[str, str]], allowed: frozenset[str],
                 url: _Url) -> None:
        self.values: dict[str, str] = {}
        self.url = url
        self._raw = query
        for key, value in items:
            if key not in allowed and key not in EXTENSION_OPTIONS:
                raise _invalid_query(self._position(key), f"unknown option {key!r}")
            self.values[key] = value

    def _position(self, key: str) -> int:
        at = self._raw.find(f"{key}=")
        return self.url.prefix + len(self.url.raw) + 1 + max(at, 0)

    def error(self, key: str, detail: str) -> OsrmError:
        return _invalid_query(self._position(key), f"{key}: {detail}")

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

    def per_coordinate(self, key: str, parse: Callable[[str], _T | None]
                       ) -> list[_T | None] | None:
        """``a;b;;d``: one element per coordinate (empty = default), parsed by ``parse``
        (which returns ``None`` when the element does not parse)."""
        value = self.values.get(key)
        if value is None:
            return None
        out: list[_T | None] = []
        for item in value.split(";"):
            if item == "":
                out.append(None)
                continue
            parsed = parse(item)
            if parsed is None:
                raise self.error(key, f"malformed element {item!r}")
            out.append(parsed)
        return out


@dataclass(frozen=True, slots=True)
class _Base:
    """Options every service takes."""

    radiuses: list[float | None]
    generate_hints: bool
    skip_waypoints: bool
    exclude: frozenset[str]  # OSRM's names


def _radius(item: str) -> float | None:
    if item == "unlimited":
        return math.inf
    return float(item) if _NUM_RE.match(item) else None


def _bearing(item: str) -> tuple[int, int] | None:
    m = _BEARING_RE.match(item)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _hint(item: str) -> str | None:
    return item if _HINT_RE.match(item) else None


def _approach(item: str) -> str | None:
    return item if item in ("curb", "unrestricted", "opposite") else None


def _parse_base(opts: _Options, n: int) -> _Base:
    radiuses = opts.per_coordinate("radiuses", _radius)
    bearings = opts.per_coordinate("bearings", _bearing)
    hints = opts.per_coordinate("hints", _hint)
    approaches = opts.per_coordinate("approaches", _approach)
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
    sized: tuple[tuple[str, Sequence[object] | None], ...] = (
        ("hints", hints), ("bearings", bearings), ("radiuses", radiuses),
        ("approaches", approaches))
    for key, values in sized:
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
