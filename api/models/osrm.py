"""The bodies of the OSRM-compatible endpoints (``/route/v1``, ``/table/v1``, ``/nearest/v1``
and OSRM's error body) in OSRM's JSON shape (osrm-backend ``docs/http.md``), declared for
``/openapi.json`` (the endpoints send pre-serialised bodies of exactly this shape)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.models.errors import AUTH, error_responses
from api.osrm.errors import Code


def _location() -> Any:
    return Field(description="[longitude, latitude], rounded to 6 decimals", min_length=2,
                 max_length=2, examples=[[7.4246, 43.7384]])


class OsrmErrorBody(BaseModel):
    """Every OSRM error (HTTP 400), with OSRM's codes."""

    code: Code = Field(
        description="InvalidUrl: characters outside the URL grammar; InvalidQuery: "
                    "coordinates or options that do not parse, unknown options; "
                    "InvalidOptions: parsed but inconsistent (list sizes, ranges, too few "
                    "coordinates); InvalidValue: a value refused (coordinate out of range, "
                    "exclude class, profile); NoSegment: a point off the road network or "
                    "beyond its radius; NoRoute; TooBig: over a size limit")
    message: str = Field(examples=["Could not find a matching segment for coordinate 1"])


class Waypoint(BaseModel):
    """Where a coordinate was snapped."""

    hint: str | None = Field(None, description="always empty (absent with "
                                               "generate_hints=false)")
    distance: float = Field(description="metres from the input coordinate to the snap")
    name: str = Field(description="name of the road snapped to")
    location: list[float] = _location()


class NearestWaypoint(Waypoint):
    """A road piece near the coordinate."""

    nodes: list[int] = Field(description="OSM ids of the snapped segment's two nodes",
                             min_length=2, max_length=2)


class LineString(BaseModel):
    """A GeoJSON line (``geometries=geojson``)."""

    type: Literal["LineString"]
    coordinates: list[list[float]]


#: ``polyline`` / ``polyline6`` (an encoded string) or GeoJSON
Geometry = str | LineString


class Maneuver(BaseModel):
    location: list[float] = _location()
    bearing_before: int = Field(ge=0, lt=360)
    bearing_after: int = Field(ge=0, lt=360)
    type: Literal["depart", "turn", "new name", "continue", "merge", "on ramp", "off ramp",
                  "fork", "end of road", "roundabout", "rotary", "roundabout turn",
                  "exit roundabout", "exit rotary", "notification", "arrive"]
    modifier: Literal["uturn", "sharp right", "right", "slight right", "straight",
                      "slight left", "left", "sharp left"] | None = None
    exit: int | None = Field(None, description="roundabouts and rotaries: the exit taken")


class Lane(BaseModel):
    indications: list[str] = Field(description="turn:lanes values of the lane")
    valid: bool = Field(description="the lane leads where the route goes")


class Intersection(BaseModel):
    # ``in`` is a Python keyword: the field is ``in_``, its JSON name ``in``
    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True,
                              serialize_by_alias=True)

    location: list[float] = _location()
    bearings: list[int]
    entry: list[bool]
    in_: int | None = Field(None, alias="in", description="index of the bearing arrived by")
    out: int | None = Field(None, description="index of the bearing left by")
    classes: list[Literal["motorway", "toll", "tunnel", "restricted", "ferry"]] | None = Field(
        None, description="classes of the road left (absent: none)")
    lanes: list[Lane] | None = Field(None, description="from the arriving road's turn:lanes")


class Step(BaseModel):
    """One maneuver and the road driven until the next (``steps=true``, guidance by
    ``engine.guidance``), the last one ``arrive``."""

    geometry: Geometry
    maneuver: Maneuver
    mode: Literal["driving"]
    driving_side: Literal["right", "left"]
    name: str
    ref: str | None = Field(None, description="road reference (absent: none)")
    destinations: str | None = Field(None, description="destination:ref: destination")
    exits: str | None = Field(None, description="junction:ref of the exit taken")
    rotary_name: str | None = Field(None, description="name of the rotary entered")
    pronunciation: str | None = Field(None, description="name:pronunciation")
    intersections: list[Intersection]
    weight: float
    duration: float
    distance: float


class AnnotationMetadata(BaseModel):
    datasource_names: list[str]


class Annotation(BaseModel):
    """Per segment of the leg's geometry (``annotations=``); ``nodes`` has one more entry."""

    distance: list[float] | None = None
    duration: list[float] | None = None
    datasources: list[int] | None = None
    nodes: list[int] | None = Field(None, description="OSM node ids along the leg")
    weight: list[float] | None = None
    speed: list[float] | None = Field(None, description="m/s")
    metadata: AnnotationMetadata | None = None


class RouteLeg(BaseModel):
    """The route between two waypoints."""

    steps: list[Step] = Field(description="empty unless steps=true")
    summary: str = Field(description="the two longest roads (empty unless steps=true)")
    weight: float
    duration: float = Field(description="seconds, with live traffic")
    distance: float = Field(description="metres")
    annotation: Annotation | None = None


class RouteObject(BaseModel):
    """A route through every waypoint."""

    geometry: Geometry | None = Field(None, description="absent with overview=false")
    legs: list[RouteLeg]
    weight_name: Literal["duration"]
    weight: float
    duration: float
    distance: float


class _Answer(BaseModel):
    code: Literal["Ok"]
    weights_version: int = Field(description="the traffic state the answer used (gyrophare)")
    stale: bool = Field(description="the state store is unreachable: last known traffic "
                                    "(gyrophare)")


class RouteResponse(_Answer):
    """``/route/v1``: the best route, then any alternatives found (``alternatives=``, two
    coordinates only; never guaranteed, as in OSRM)."""

    routes: list[RouteObject]
    waypoints: list[Waypoint] | None = Field(None, description="absent with "
                                                               "skip_waypoints=true")


class TableResponse(_Answer):
    """``/table/v1``: cells ``[source][destination]``, ``null`` where no route."""

    durations: list[list[float | None]] | None = Field(None, description="seconds")
    distances: list[list[float | None]] | None = Field(
        None, description="metres of the fastest route (annotations=distance)")
    sources: list[Waypoint] | None = None
    destinations: list[Waypoint] | None = None
    fallback_speed_cells: list[list[int]] | None = Field(
        None, description="[row, column] of the cells estimated at fallback_speed")


class NearestResponse(_Answer):
    """``/nearest/v1``: the nearest road pieces, nearest first."""

    waypoints: list[NearestWaypoint]


def osrm_responses() -> dict[int | str, dict[str, Any]]:
    """``responses=`` of an OSRM endpoint: OSRM's error body, and the errors of every
    authenticated endpoint (the API key, the body limit, FastAPI's validation)."""
    return {400: {"model": OsrmErrorBody, "description": "OSRM error (code and message)"},
            **error_responses(*AUTH)}
