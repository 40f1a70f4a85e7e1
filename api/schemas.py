"""Request bodies (pydantic, at the edge only). Coordinates are GeoJSON ``[lon, lat]``.

What ``/openapi.json`` declares for a request is as tight as the rules that refuse it: value
ranges, patterns, "exactly one of" alternatives and discriminated unions are stated in the
JSON Schema, so that a request the document calls valid is accepted (a request refused for a
rule no JSON Schema can state says so: a point off the map's roads, a time relative to now,
two values compared, such as a validity window or a ring closing on its first position).
Traffic bodies (closures, batches of changes) are validated by the engine alone
(:mod:`engine.changes`): their models here only document them (:class:`DocumentedAs`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    TypeAdapter,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from engine.changes import ENTRY_ID_PATTERN, MAX_RADIUS_M, MAX_SPEED_KMH
from engine.errors import InvalidTimestamp
from engine.extract.tags import HIGHWAY_CLASSES
from engine.hospitals import CAPABILITIES, BedType
from engine.hospitals.model import (
    AMBULANCE_ID_PATTERN,
    AMBULANCE_ID_RULE,
    InvalidAmbulanceId,
    check_ambulance_id,
)
from engine.timeutil import EARLIEST, EXAMPLE, LATEST, parse_time

_MAX_OSM_ID = 2**62


# ----------------------------------------------------------------------------- declared rules
def _lonlat(value: list[float]) -> list[float]:
    lon, lat = value
    if not -180.0 <= lon <= 180.0:
        raise ValueError(f"longitude {lon} is outside [-180, 180] (GeoJSON order is [lon, lat])")
    if not -90.0 <= lat <= 90.0:
        raise ValueError(f"latitude {lat} is outside [-90, 90] (GeoJSON order is [lon, lat])")
    return value


LONGITUDE: dict[str, Any] = {"type": "number", "minimum": -180, "maximum": 180,
                             "description": "longitude in degrees"}
LATITUDE: dict[str, Any] = {"type": "number", "minimum": -90, "maximum": 90,
                            "description": "latitude in degrees"}

LonLat = Annotated[list[Annotated[float, Field(allow_inf_nan=False)]],
                   Field(min_length=2, max_length=2),
                   AfterValidator(_lonlat),
                   WithJsonSchema({"type": "array", "prefixItems": [LONGITUDE, LATITUDE],
                                   "minItems": 2, "maxItems": 2,
                                   "description": "GeoJSON position [longitude, latitude]",
                                   "examples": [[7.4246, 43.7384]]})]


def _instant(value: object) -> datetime:
    try:
        return parse_time(value, what=None)
    except InvalidTimestamp as exc:
        raise PydanticCustomError("iso_time", "{reason}", {"reason": str(exc)}) from None


def _instant_pattern() -> str:
    """The RFC 3339 date-times :func:`engine.timeutil.parse_time` accepts, as a pattern to go
    with ``format: date-time``: upper-case ``T``, seconds without a leap second, an offset
    below 24 h, and the UTC time in [1970-01-01, 2200-01-01). On the two edge days the
    pattern keeps the offsets that cannot cross the bound (Z, and -hh:mm on 1970-01-01 and
    +hh:mm on 2199-12-31)."""
    day = "(?:0[1-9]|[12][0-9]|3[01])"
    month = "(?:0[1-9]|1[0-2])"
    time = r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?"
    hhmm = "(?:[01][0-9]|2[0-3]):[0-5][0-9]"
    offset = f"(?:[Zz]|[+-]{hhmm})"
    middle = "(?:197[1-9]|19[89][0-9]|20[0-9]{2}|21[0-8][0-9]|219[0-8])"
    return "^(?:" + "|".join((
        f"{middle}-{month}-{day}{time}{offset}",
        f"1970-(?:01-(?:0[2-9]|[12][0-9]|3[01])|(?:0[2-9]|1[0-2])-{day}){time}{offset}",
        rf"1970-01-01{time}(?:[Zz]|-{hhmm}|\+00:00)",
        f"2199-(?:(?:0[1-9]|1[01])-{day}|12-(?:0[1-9]|[12][0-9]|30)){time}{offset}",
        rf"2199-12-31{time}(?:[Zz]|\+{hhmm}|-00:00)",
    )) + ")$"


#: What an :data:`Instant` is, as a pattern (with ``format: date-time``).
INSTANT_PATTERN = _instant_pattern()


@cache
def printable_pattern() -> str:
    """``^[...]*$``: the characters a ``source`` or ``note`` may hold, i.e. those Python's
    :meth:`str.isprintable` admits, plus tab and line feed (:func:`engine.changes.check_change`),
    listed from this interpreter's Unicode tables so that the document says what this server
    accepts."""
    ranges: list[list[int]] = []
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        if char.isprintable() or char in "\t\n":
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])

    def literal(code: int) -> str:
        char = chr(code)
        return {"\t": r"\t", "\n": r"\n"}.get(char, "\\" + char if char in "\\]^-[" else char)

    body = "".join(literal(a) if a == b else literal(a) + ("-" if b > a + 1 else "") + literal(b)
                   for a, b in ranges)
    return f"^[{body}]*$"


#: Shared declarations, each a component of ``/openapi.json`` (referenced, not repeated).
_COMPONENTS: dict[str, Any] = {
    "Instant": lambda: {
        "type": "string", "format": "date-time", "pattern": INSTANT_PATTERN,
        "description": f"ISO 8601 (RFC 3339) time with a time zone, e.g. {EXAMPLE}, between "
                       f"{EARLIEST.date()} and {LATEST.date()} (UTC)"},
    "PrintableText": lambda: {
        "type": "string", "pattern": printable_pattern(),
        "description": "text of printable characters (letters, digits, punctuation, symbols, "
                       "spaces), tabs and line breaks; no control or format characters"},
}


@cache
def _component(name: str) -> CoreSchema:
    return core_schema.definitions_schema(
        core_schema.definition_reference_schema(name),
        [core_schema.any_schema(ref=name, metadata={"pydantic_js_updates": _COMPONENTS[name]()})])


@dataclass(frozen=True)
class _Declared:
    """Declares a field as the shared component ``name``, the field's own keywords (a length,
    a default, a description) beside the reference."""

    name: str

    def __get_pydantic_json_schema__(self, schema: CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        own = {key: value for key, value in handler(schema).items()
               if key not in ("type", "format")}
        return {**handler(_component(self.name)), **own}


#: A time as every request gives it: ISO 8601 text with a time zone, between 1970 and 2200
#: (:func:`engine.timeutil.parse_time`, the engine's one parser); numbers (Unix times) and
#: times without a zone are refused with the expected format, not guessed. Declared as an
#: RFC 3339 date-time within those years (:data:`INSTANT_PATTERN`).
Instant = Annotated[datetime, BeforeValidator(_instant), _Declared("Instant")]

#: Who says it (a traffic change's ``source``) and a free note, as the engine bounds them.
Source = Annotated[str, Field(max_length=200), _Declared("PrintableText")]
Note = Annotated[str, Field(max_length=2000), _Declared("PrintableText")]


def _printable(value: str) -> str:
    if not all(char.isprintable() or char in "\t\n" for char in value):
        raise PydanticCustomError("printable", "must be printable characters (tabs and line "
                                  "breaks allowed)")
    return value


#: A :data:`Source` checked here, for a parameter the engine may not read (a query string).
CheckedSource = Annotated[Source, AfterValidator(_printable)]


@dataclass(frozen=True)
class DocumentedAs:
    """A body validated elsewhere (by the engine), declared in ``/openapi.json`` as ``model``:
    ``Annotated[dict[str, Any], DocumentedAs(Model)]`` validates a JSON object and documents
    it as ``Model`` (its components included)."""

    model: Any

    def __get_pydantic_json_schema__(self, schema: CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return handler(TypeAdapter(self.model).core_schema)


def _uint(maximum: int) -> str:
    """A regular expression (unanchored) of the decimal integers 1..``maximum``, leading
    zeros allowed."""
    digits = str(maximum)
    parts = [f"[1-9][0-9]{{0,{len(digits) - 2}}}"] if len(digits) > 1 else []
    for i, d in enumerate(digits):  # as long as maximum: its prefix, a smaller digit, any rest
        low = 1 if i == 0 else 0
        if int(d) > low:
            rest = len(digits) - i - 1
            smaller = str(low) if int(d) - 1 == low else f"[{low}-{int(d) - 1}]"
            parts.append(digits[:i] + smaller + (f"[0-9]{{{rest}}}" if rest else ""))
    parts.append(digits)
    return "0*(?:" + "|".join(parts) + ")"


def uint_pattern(maximum: int) -> str:
    """A pattern of the decimal integers 1..``maximum`` (leading zeros allowed)."""
    return f"^{_uint(maximum)}$"


REF = "#/components/schemas/"
_REFERENCED: dict[str, type[BaseModel]] = {}


def component_ref(what: type[BaseModel] | str) -> dict[str, str]:
    """``{"$ref": ...}`` to a component of ``/openapi.json`` from hand-written OpenAPI (a body
    read by hand); a model referenced so is declared by :func:`referenced_components`."""
    if isinstance(what, str):
        return {"$ref": REF + what}
    _REFERENCED[what.__name__] = what
    return {"$ref": REF + what.__name__}


def referenced_components() -> dict[str, dict[str, Any]]:
    """The components hand-written OpenAPI may reference: the shared declarations
    (``Instant``, ``PrintableText``) and the models given to :func:`component_ref`, with
    theirs."""
    out = {name: schema() for name, schema in _COMPONENTS.items()}
    for name, model in _REFERENCED.items():
        schema = model.model_json_schema(ref_template=REF + "{model}")
        out.update(schema.pop("$defs", {}))
        out[name] = schema
    return out


# ----------------------------------------------------------------------------- small types
def _ambulance_id(value: object) -> str:
    try:
        return check_ambulance_id(value)
    except InvalidAmbulanceId as exc:
        raise PydanticCustomError("ambulance_id", "{reason}", {"reason": str(exc)}) from None


#: An ambulance id (:data:`engine.hospitals.model.AMBULANCE_ID_PATTERN`).
AmbulanceId = Annotated[str, BeforeValidator(_ambulance_id), Field(
    description=f"ambulance id: {AMBULANCE_ID_RULE}", examples=["SMUR-21:3"],
    json_schema_extra={"pattern": AMBULANCE_ID_PATTERN, "maxLength": 64})]

#: A traffic entry id a caller may choose (:data:`engine.changes.ENTRY_ID_PATTERN`).
EntryId = Annotated[str, Field(pattern=ENTRY_ID_PATTERN, description="the entry's id "
                               "(default: generated): 1 to 64 characters, ASCII letters, "
                               "digits, '.', '_', ':' or '-', starting with a letter or digit")]


def latlon(p: list[float]) -> tuple[float, float]:
    """GeoJSON ``[lon, lat]`` to the engine's ``(lat, lon)``."""
    return (p[1], p[0])


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RouteRequest(Strict):
    """A route request: ``origin`` and exactly one of ``destination`` (a position) or
    ``destination_hospital`` (a hospital id: the route ends at its entrance)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [
        {"required": ["destination"], "properties": {
            "destination": {"type": "array"}, "destination_hospital": {"type": "null"}}},
        {"required": ["destination_hospital"], "properties": {
            "destination_hospital": {"type": "string"}, "destination": {"type": "null"}}}]})

    origin: LonLat
    destination: LonLat | None = None
    destination_hospital: str | None = Field(None, description="a hospital id instead of "
                                             "coordinates: routes to its entrance")
    profile: Literal["car", "ambulance"] = "ambulance"
    metric: Literal["time", "distance"] = "time"
    departure: Instant | None = Field(None, description="traffic valid at this time "
                                      f"(default now; ISO 8601 with a time zone, e.g. {EXAMPLE})",
                                      examples=[EXAMPLE])
    contraflow: bool = Field(False, description="ambulance only: may drive against one-way "
                             "streets (x2 time, at most 30 km/h, never on motorways)")
    restricted_turns: bool = Field(False, description="ambulance only: may take turns that "
                                   "OSM restrictions forbid (+30 s each)")
    language: Literal["en", "fr"] = Field("en", description="language of the steps' "
                                          "instruction text (English or French)")
    algorithm: Literal["cch", "bidirectional", "dijkstra", "astar"] | None = None
    alternatives: int = Field(0, ge=0, le=3, description="also up to this many alternative "
                              "routes (engine.alternatives): each shares at most 80 % of the "
                              "best route's duration with it and the alternatives before it, "
                              "is locally optimal (no detour a shortest path would not take) "
                              "and takes at most 1.4x its duration; 0 (default): none")

    @model_validator(mode="after")
    def _one_destination(self) -> RouteRequest:
        if (self.destination is None) == (self.destination_hospital is None):
            raise ValueError("give exactly one of destination or destination_hospital")
        return self

    def target(self) -> tuple[float, float] | str:
        """The destination: ``(lat, lon)``, or the hospital id to route to."""
        if self.destination is not None:
            return latlon(self.destination)
        return str(self.destination_hospital)


#: An EDXL-HAVE bed type (:class:`engine.hospitals.BedType`; any case).
BedTypeName = Annotated[str, Field(
    description="EDXL-HAVE bed type (case-insensitive)",
    json_schema_extra={"enum": [b.value for b in BedType]})]


#: The standard capabilities (:data:`engine.hospitals.CAPABILITIES`), or none.
_CAPABILITY: dict[str, Any] = {"anyOf": [{"enum": sorted(CAPABILITIES)}, {"type": "null"}]}


class NeedModel(Strict):
    bed_type: BedTypeName | None = Field(None, examples=["AdultICU"])
    capability: str | None = Field(None, description="a capability the hospital must have "
                                   "(case-insensitive): a standard one, or one a hospital of "
                                   "the board lists", json_schema_extra=_CAPABILITY)
    severity: str = ""


def _ambulance_map(schema: dict[str, Any]) -> None:
    """``ambulances``: ids as the keys (their pattern), positions as the values."""
    mapping = schema["anyOf"][0]
    (position,) = mapping.pop("patternProperties").values()
    mapping["propertyNames"] = {"pattern": AMBULANCE_ID_PATTERN, "maxLength": 64}
    mapping["additionalProperties"] = position


class DispatchRequest(Strict):
    incident: LonLat
    need: NeedModel = Field(default_factory=NeedModel)
    ambulances: dict[AmbulanceId, LonLat] | None = Field(
        None, max_length=500, description="free ambulances: id -> [lon, lat]; the first to "
        "arrive is chosen (and registered en route under its id)",
        json_schema_extra=_ambulance_map)
    ambulance_id: AmbulanceId | None = Field(None, description="the id registered en route "
                                             f"(default: the chosen ambulance's, or a generated "
                                             f"one): {AMBULANCE_ID_RULE}")
    policy: Literal["saturation_aware", "nearest"] = "saturation_aware"
    contraflow: bool = False
    restricted_turns: bool = False
    register_en_route: bool = Field(True, alias="register",
                                    description="count the ambulance as on its way")
    alternatives: int = Field(0, ge=0, le=3, description="also up to this many alternative "
                              "routes to the chosen hospital (as POST /v1/route); 0: none")


class ArrivedRequest(Strict):
    admit: bool = True


class BedCount(Strict):
    baseline: int | None = Field(None, ge=0)
    available: int = Field(ge=0)


class HospitalStatus(Strict):
    """EDXL-HAVE-shaped status: bed capacity per BedType, EMS traffic and offload status. A
    report refreshes the hospital's status (clears its stale flag); a report that changes
    nothing must say so with ``heartbeat: true``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"anyOf": [
        {"required": ["beds"], "properties": {"beds": {"type": "object", "minProperties": 1}}},
        {"required": ["ed_status"], "properties": {"ed_status": {"type": "string"}}},
        {"required": ["offload_status"], "properties": {"offload_status": {"type": "string"}}},
        {"required": ["heartbeat"], "properties": {"heartbeat": {"const": True}}}]})

    beds: dict[BedTypeName, BedCount | Annotated[int, Field(ge=0)]] | None = Field(
        None, examples=[{"AdultICU": {"baseline": 20, "available": 3}, "MedicalSurgical": 40}],
        description="per EDXL-HAVE bed type (case-insensitive): {baseline, available}, or the "
        "available count of a bed type the hospital offers")
    ed_status: Literal["Normal", "Advisory", "Closed", "NotApplicable"] | None = None
    offload_status: Literal["Normal", "Delayed"] | None = None
    heartbeat: bool = Field(False, description="true: the hospital confirms its last status "
                            "is still right (nothing changed); required when the report gives "
                            "no beds and no status")

    @model_validator(mode="after")
    def _not_empty(self) -> HospitalStatus:
        if not self.beds and self.ed_status is None and self.offload_status is None \
                and not self.heartbeat:
            raise PydanticCustomError(
                "empty_report", "{reason}", {"reason": "empty status report: give beds, "
                "ed_status or offload_status, or send {\"heartbeat\": true} to confirm that "
                "nothing changed"})
        return self

    def beds_payload(self) -> dict[str, Any] | None:
        if self.beds is None:
            return None
        return {k: (v if isinstance(v, int) else v.model_dump(exclude_none=True))
                for k, v in self.beds.items()}


class Window(Strict):
    """Who says it and when it holds: from ``starts_at`` (default: when applied) to
    ``expires_at`` (default: until removed; at most 5 years after it starts, never already
    past)."""

    source: Source = "api"
    starts_at: Instant | None = None
    expires_at: Instant | None = None
    note: Note = ""

    def window(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "note": self.note}
        for key in ("starts_at", "expires_at"):
            value: datetime | None = getattr(self, key)
            if value is not None:
                out[key] = value.isoformat()
        return out


#: An OSM id: a positive integer (``25239340.5`` is refused, never truncated), read up to
#: 2^62 but declared up to 2^53 - 1, the largest integer every JSON reader holds exactly
#: (validators that compare in floating point cannot tell 2^62 + 95 from 2^62); no OSM object
#: has a larger id, so no map knows one.
OsmId = Annotated[int, Field(ge=1, le=_MAX_OSM_ID, description="OSM id (a positive integer)",
                             json_schema_extra={"maximum": 2**53 - 1})]
#: A speed in km/h as the engine takes it (checked there: in (0, 250]).
Speed = Annotated[float, Field(description="km/h", json_schema_extra={
    "exclusiveMinimum": 0, "maximum": MAX_SPEED_KMH})]
#: An OSM way id as a JSON object key.
WAY_KEY_PATTERN = uint_pattern(_MAX_OSM_ID)
#: OSRM's segment-speed CSV as :func:`engine.traffic.parse_segment_speed_csv` reads it (and
#: the engine checks it): ``from_osm_id,to_osm_id,speed_kmh[,rate]`` lines, OSM ids in
#: 1..2^62, speeds in (0, 250], an optional header line first.
_CSV_SPEED = (r"(?:0*250(?:\.0*)?|0*(?:2[0-4][0-9]|1[0-9]{2}|[1-9][0-9]?)(?:\.[0-9]*)?"
              r"|0*\.[0-9]*[1-9][0-9]*)")
_CSV_ROW = f"{_uint(_MAX_OSM_ID)},{_uint(_MAX_OSM_ID)},{_CSV_SPEED}(?:,[0-9.]*)?"
CSV_SPEEDS_PATTERN = (r"^(?:from_osm_id,to_osm_id,speed_kmh(?:,rate)?\r?\n)?"
                      rf"(?:{_CSV_ROW}\r?\n)*{_CSV_ROW}(?:\r?\n)?$")


def _segment_row(value: object) -> object:
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise PydanticCustomError("segment_row", "expected [from_osm_id, to_osm_id, speed_kmh]"
                                  ", three values")
    return value


#: One segment speed: ``[from_osm_id, to_osm_id, speed_kmh]``.
SegmentRow = Annotated[tuple[OsmId, OsmId, Speed], BeforeValidator(_segment_row)]
#: Speeds by OSM way id (an integer written as the key) in km/h.
WaySpeedMap = Annotated[dict[str, Speed], Field(json_schema_extra={
    "propertyNames": {"pattern": WAY_KEY_PATTERN}})]


class SpeedsRequest(Window):
    """Segment speeds and/or way speeds (at least one of them, not empty), with their
    validity window; speeds are in (0, 250] km/h, on segments and ways of the map."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "anyOf": [{"required": ["speeds"], "properties": {"speeds": {"type": "array",
                                                                     "minItems": 1}}},
                  {"required": ["ways"], "properties": {"ways": {"type": "object",
                                                                 "minProperties": 1}}}],
        "examples": [{"speeds": [[25239340, 25239343, 20.0]], "source": "traffic-centre",
                      "note": "roadworks, one lane"}]})

    speeds: list[SegmentRow] | None = Field(
        None, max_length=100_000, description="[from_osm_id, to_osm_id, speed_kmh] per segment",
        examples=[[[25239340, 25239343, 20.0]]])
    ways: WaySpeedMap | None = Field(None, description="OSM way id -> speed_kmh")


class ReportRequest(Window):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"location": [7.4197, 43.7313], "kind": "slowed", "factor": 0.3,
         "source": "crew SMUR-21", "note": "double-parked van"}]})

    location: LonLat
    kind: Literal["blocked", "slowed"] = "blocked"
    factor: float = Field(0.3, gt=0, le=4)


class CoverageRequest(Strict):
    stations: list[LonLat] = Field(min_length=1, max_length=200)
    minutes: float = Field(gt=0, le=240)
    profile: Literal["car", "ambulance"] = "ambulance"


# ----------------------------------------------------------------------------- GeoJSON (documented)
class _Documented(BaseModel):
    """A model that documents a body the engine validates (never used to validate)."""

    model_config = ConfigDict(extra="forbid")


class _Geometry(_Documented):
    model_config = ConfigDict(extra="allow")  # GeoJSON foreign members (``bbox``...) are ignored


#: A GeoJSON position: [longitude, latitude] or [longitude, latitude, altitude].
Position = Annotated[list[float], WithJsonSchema({
    "type": "array", "prefixItems": [LONGITUDE, LATITUDE, {"type": "number",
                                                           "description": "altitude"}],
    "minItems": 2, "maxItems": 3, "description": "GeoJSON position [longitude, latitude] "
    "(an altitude may follow)"})]
#: The positions of one line or ring are all 2D or all 3D (the engine refuses a mix).
_ONE_DIMENSION: dict[str, Any] = {"anyOf": [{"items": {"maxItems": 2}},
                                            {"items": {"minItems": 3}}]}
LinePositions = Annotated[list[Position], Field(min_length=2, json_schema_extra=_ONE_DIMENSION)]
#: A linear ring: four positions or more, the last repeating the first (RFC 7946 3.1.6).
Ring = Annotated[list[Position], Field(min_length=4, description="a closed ring: the last "
                                       "position repeats the first",
                                       json_schema_extra=_ONE_DIMENSION)]


class PointGeometry(_Geometry):
    type: Literal["Point"]
    coordinates: Position


class LineStringGeometry(_Geometry):
    type: Literal["LineString"]
    coordinates: LinePositions


class MultiLineStringGeometry(_Geometry):
    type: Literal["MultiLineString"]
    coordinates: Annotated[list[LinePositions], Field(min_length=1)]


class PolygonGeometry(_Geometry):
    """Closed rings (an unclosed one is refused, not closed silently), the first the outer
    boundary; a valid polygon (its boundary does not cross itself)."""

    type: Literal["Polygon"]
    coordinates: Annotated[list[Ring], Field(min_length=1)]


class MultiPolygonGeometry(_Geometry):
    type: Literal["MultiPolygon"]
    coordinates: Annotated[list[Annotated[list[Ring], Field(min_length=1)]], Field(min_length=1)]


#: What a closure may be drawn as (:func:`engine.changes.validate_geometry`).
ClosureGeometry = Annotated[PointGeometry | LineStringGeometry | MultiLineStringGeometry
                            | PolygonGeometry | MultiPolygonGeometry,
                            Field(discriminator="type")]
AreaGeometry = Annotated[PolygonGeometry | MultiPolygonGeometry, Field(discriminator="type")]
Radius = Annotated[float, Field(gt=0, le=MAX_RADIUS_M, description="metres")]


class ClosureProperties(_Documented):
    """A closure's metadata and validity window (each optional)."""

    id: EntryId | None = None
    source: Source = Field("api", description="who closes it")
    note: Note = ""
    starts_at: Instant | None = None
    expires_at: Instant | None = None
    radius_m: Radius | None = Field(None, description="Point only: roads within this many "
                                    "metres are closed (default 25; the answer's notes say so)")


class ClosureFeature(_Documented):
    """A road closure as a GeoJSON Feature (RFC 7946), ``[lon, lat]`` positions: a Point
    (with ``properties.radius_m``), a LineString (the roads running along it) or a Polygon
    (the roads inside), Multi- variants too. Validity from ``properties.starts_at`` to
    ``expires_at``: default now until deleted, ``expires_at`` after ``starts_at`` and not
    already past, at most 5 years. Other members of the Feature are ignored."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [7.4246, 43.7384]},
         "properties": {"radius_m": 30, "source": "police", "note": "burst water main"}}]})

    type: Literal["Feature"]
    geometry: ClosureGeometry
    properties: ClosureProperties | None = None


# ----------------------------------------------------------------------------- traffic changes
class _Change(_Documented):
    """What every change may say: its id, who says it, and when it holds."""

    id: EntryId | None = None
    source: Source = "unknown"
    starts_at: Instant | None = None
    expires_at: Instant | None = None
    note: Note = ""


#: An OSM highway class, as the graph knows them (:data:`engine.extract.tags.HIGHWAY_CLASSES`).
RoadClass = Annotated[str, Field(json_schema_extra={"enum": list(HIGHWAY_CLASSES)})]
Factor = Annotated[float, Field(gt=0, le=4, description="speed factor, in (0, 4]")]


class SegmentSpeedsChange(_Change):
    """Speeds on OSM node pairs, as OSRM's segment-speed file (direction from -> to)."""

    model_config = ConfigDict(title="SegmentSpeeds")
    type: Literal["SegmentSpeeds"]
    speeds: Annotated[list[tuple[OsmId, OsmId, Speed]], Field(
        min_length=1, description="[from_osm_id, to_osm_id, speed_kmh] per segment")]


class WaySpeedsChange(_Change):
    """Speeds (km/h) on whole OSM ways, both directions."""

    model_config = ConfigDict(title="WaySpeeds")
    type: Literal["WaySpeeds"]
    speeds: Annotated[WaySpeedMap, Field(min_length=1, description="OSM way id -> km/h")]


class AreaFactorChange(_Change):
    """Speeds multiplied by ``factor`` on the roads inside a polygon (of some classes)."""

    model_config = ConfigDict(title="AreaFactor")
    type: Literal["AreaFactor"]
    geometry: AreaGeometry
    factor: Factor
    classes: list[RoadClass] | None = None


class ClassFactorChange(_Change):
    """Speeds multiplied by ``factor`` on every road of the given classes."""

    model_config = ConfigDict(title="ClassFactor")
    type: Literal["ClassFactor"]
    classes: Annotated[list[RoadClass], Field(min_length=1)]
    factor: Factor


def _geometry_or_edges(schema: dict[str, Any]) -> None:
    """A Closure change names its roads by ``edges`` or, without edges, by ``geometry``: the
    geometry's schema applies only in the second case (with edges it is not read)."""
    properties = schema["properties"]
    geometry = properties["geometry"]
    properties["geometry"] = {"description": geometry.get("description", "")}
    given = next(s for s in geometry["anyOf"] if s.get("type") != "null")  # not null here
    schema["anyOf"] = [
        {"required": ["edges"], "properties": {"edges": {"type": "array"}}},
        {"required": ["geometry"], "properties": {"geometry": given, "edges": {"type": "null"}}}]


class ClosureChange(_Change):
    """Roads closed: a geometry (as a closure Feature's), or edge ids (then the geometry,
    if any, is not read)."""

    model_config = ConfigDict(title="Closure", json_schema_extra=_geometry_or_edges)
    type: Literal["Closure"]
    geometry: ClosureGeometry | None = Field(None, description="read when no edges are given")
    radius_m: Radius | None = Field(None, description="Point only (default 25)")
    edges: Annotated[list[Annotated[int, Field(ge=0, le=2**53 - 1)]], Field(
        min_length=1, description="graph edge ids")] | None = None


class FieldReportChange(_Change):
    """A report from the field: the nearest road (within 100 m) is blocked, or slowed by
    ``factor`` (in (0, 4] for a slowed one)."""

    model_config = ConfigDict(title="FieldReport", json_schema_extra={
        "if": {"required": ["kind"], "properties": {"kind": {"const": "slowed"}}},
        "then": {"properties": {"factor": {"exclusiveMinimum": 0, "maximum": 4}}}})
    type: Literal["FieldReport"]
    lat: Annotated[float, WithJsonSchema(LATITUDE)]
    lon: Annotated[float, WithJsonSchema(LONGITUDE)]
    kind: Literal["blocked", "slowed"] = "blocked"
    factor: float = 0.3


class OpenBarriersChange(_Change):
    """Barriers (bollards, gates) within ``radius_m`` of a point opened for emergency
    vehicles."""

    model_config = ConfigDict(title="OpenBarriers")
    type: Literal["OpenBarriers"]
    lat: Annotated[float, WithJsonSchema(LATITUDE)]
    lon: Annotated[float, WithJsonSchema(LONGITUDE)]
    radius_m: Radius = 20.0


#: One traffic change, by its ``type`` (:data:`engine.changes.CHANGE_TYPES`).
TrafficChange = Annotated[SegmentSpeedsChange | WaySpeedsChange | AreaFactorChange
                          | ClassFactorChange | ClosureChange | FieldReportChange
                          | OpenBarriersChange, Field(discriminator="type")]


class ChangesRequest(Strict):
    """Any batch of traffic changes (all or nothing), each ``{"type": ..., ...}`` as in
    :func:`engine.traffic.change_from_dict` (which validates them)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"changes": [
        {"type": "Closure", "geometry": {"type": "Point", "coordinates": [7.4197, 43.7313]},
         "radius_m": 20, "source": "police"},
        {"type": "ClassFactor", "classes": ["primary", "secondary"], "factor": 0.7,
         "source": "traffic-centre", "note": "rush hour"}]}]})

    changes: list[Annotated[dict[str, Any], DocumentedAs(TrafficChange)]] = Field(
        min_length=1, max_length=10_000)
