"""Response bodies of the routing endpoints (routes, dispatch decisions, ambulance
events, coverage), in the engine's ``to_dict`` shapes; positions are GeoJSON ``[lon, lat]``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.models.hospitals import Level, LonLat, Timestamp
from engine.dispatch import Coverage
from engine.hospitals.vocabulary import BedType


# ---------------------------------------------------------------------------- routes
class EtaOut(BaseModel):
    priority: float = Field(description="seconds with this profile's driving (lights and "
                            "sirens for an ambulance)")
    normal: float | None = Field(description="seconds on the same path at normal speed")


class GeoLineString(BaseModel):
    """A GeoJSON LineString."""

    type: Literal["LineString"]
    coordinates: list[LonLat]


class ManeuverOut(BaseModel):
    """What the driver does where the step starts (OSRM's StepManeuver vocabulary)."""

    type: Literal["depart", "turn", "new name", "continue", "merge", "on ramp", "off ramp",
                  "fork", "end of road", "roundabout", "rotary", "roundabout turn",
                  "exit roundabout", "exit rotary", "notification", "arrive"]
    modifier: Literal["uturn", "sharp right", "right", "slight right", "straight",
                      "slight left", "left", "sharp left"] | None
    location: LonLat
    bearing_before: int = Field(ge=0, lt=360, description="degrees clockwise from north")
    bearing_after: int = Field(ge=0, lt=360)
    exit: int | None = Field(None, description="roundabouts and rotaries: the exit taken "
                             "(absent: the route ends on the ring, or not a roundabout)")


class LaneOut(BaseModel):
    indications: list[str]
    valid: bool = Field(description="the lane leads where the route goes")


class IntersectionOut(BaseModel):
    """A junction passed: every road's bearing, which may be entered, arrived and left by."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True,
                              serialize_by_alias=True)

    location: LonLat
    bearings: list[int]
    entry: list[bool]
    in_: int | None = Field(None, alias="in", description="index of the bearing arrived by")
    out: int | None = Field(None, description="index of the bearing left by")
    classes: list[Literal["motorway", "toll", "tunnel", "restricted", "ferry"]] | None = None
    lanes: list[LaneOut] | None = Field(None, description="from turn:lanes, left to right")


class StepOut(BaseModel):
    """One instruction: a maneuver and the road driven until the next (the last step is
    ``arrive``)."""

    name: str
    distance_m: float
    duration_s: float
    location: LonLat = Field(description="where the step starts")
    turn_delay_s: float = Field(description="part of duration_s lost at junctions")
    maneuver: ManeuverOut
    intersections: list[IntersectionOut]
    ref: str = Field(description="road reference (empty: none)")
    destinations: str = Field(description="signposted destinations: destination:ref: "
                              "destination (empty: none)")
    exits: str = Field(description="junction:ref of the exit taken (empty: none)")
    rotary_name: str = Field(description="name of the rotary entered (empty: none)")
    pronunciation: str = Field(description="name:pronunciation (empty: none)")
    mode: Literal["driving", "contraflow"] = Field(
        description="contraflow: against a one-way street (ambulance, opted in)")
    instruction: str = Field(description="the step in words, in the request's language",
                             examples=["Turn left onto Avenue de la Costa"])


class RouteSignalOut(BaseModel):
    """A traffic signal on the route."""

    osm_id: int
    location: LonLat
    seconds_from_start: float
    distance_from_start_m: float
    approach_bearing: float = Field(description="degrees clockwise from north")
    exit_bearing: float


class SnapOut(BaseModel):
    """Where an input position was put on the road network."""

    location: LonLat
    input: LonLat
    snap_distance_m: float
    edge: int
    fallback: str | None = Field(None, description="present only when the nearest road was "
                                 "cut off and the main network was used instead: why")


class SignalPreemptionOut(BaseModel):
    """A traffic signal to turn green, with its hold window around the expected passage."""

    osm_id: int
    location: LonLat
    distance_from_start_m: float
    eta_s: float = Field(description="seconds from departure")
    eta_at: Timestamp
    approach_bearing: float
    exit_bearing: float
    hold_from: Timestamp
    hold_until: Timestamp


class RouteOut(BaseModel):
    """A found route: both ETAs, geometry, steps, signals (``engine.query.Route``)."""

    status: Literal["ok"]
    profile: str = Field(examples=["ambulance"])
    metric: Literal["time", "distance"]
    weights_version: int = Field(description="the traffic state the route used")
    duration_s: float
    eta_s: EtaOut
    turn_delay_s: float
    contraflow_edges: int
    restricted_turns: int
    distance_m: float
    osm_nodes: list[int]
    edges: list[int]
    geometry: GeoLineString
    steps: list[StepOut]
    signals: list[RouteSignalOut]
    origin: SnapOut
    destination: SnapOut
    notes: list[str] = Field(description="what a dispatcher should know, in words")
    attribution: str


class AlternativeInfo(BaseModel):
    """How an alternative compares with the best route (``engine.alternatives``)."""

    rank: int = Field(ge=1, description="1 for the first alternative, 2 for the second...")
    stretch: float = Field(ge=1, description="its cost (duration for the time metric) over "
                           "the best route's")
    shared: float = Field(ge=0, le=1, description="share of the best route's cost it shares "
                          "with the best route and the alternatives before it")


class AlternativeRouteOut(RouteOut):
    """An alternative route: a full route, with its own signal pre-emption plan."""

    alternative: AlternativeInfo
    signal_plan: list[SignalPreemptionOut]


class RouteFound(RouteOut):
    """``POST /v1/route`` when a path exists."""

    signal_plan: list[SignalPreemptionOut]
    stale: bool = Field(description="the state store is unreachable: last known traffic")
    alternatives: list[AlternativeRouteOut] | None = Field(
        None, description="only when asked (``alternatives`` > 0): up to that many "
        "alternative routes, best first (fewer, or none, when no other route qualifies)")


class RouteNotFound(BaseModel):
    """``POST /v1/route`` when both ends are on the road network but no allowed path joins
    them (``isolated`` says which end is cut off)."""

    status: Literal["unreachable"]
    profile: str
    metric: Literal["time", "distance"]
    weights_version: int
    reason: str
    isolated: Literal["origin", "destination", "both"] | None
    origin: SnapOut
    destination: SnapOut
    attribution: str
    stale: bool


RouteResponse = Annotated[RouteFound | RouteNotFound, Field(discriminator="status")]


# ---------------------------------------------------------------------------- dispatch
class NeedOut(BaseModel):
    bed_type: BedType | None
    capability: str | None
    severity: str


class HospitalOptionOut(BaseModel):
    """One ranked hospital: its ETA, its score (ETA plus saturation penalties) and why."""

    hospital_id: str
    name: str
    eta_s: float | None = Field(description="null: unreachable by road now")
    score: float | None
    level: Level
    occupancy: float | None
    en_route: int
    stale: bool
    reachable: bool
    reasons: list[str]


class AmbulanceChoiceOut(BaseModel):
    ambulance_id: str
    eta_s: float = Field(description="seconds to reach the incident")
    route: RouteOut


class DispatchResponse(BaseModel):
    """The chosen hospital, the ranking with reasons, the route, its signal plan and the
    registration of the ambulance as on its way."""

    incident: LonLat
    need: NeedOut
    at: Timestamp
    policy: Literal["saturation_aware", "nearest"]
    hospital_id: str
    hospital: HospitalOptionOut
    explanation: str
    ranking: list[HospitalOptionOut]
    route: RouteOut
    signal_plan: list[SignalPreemptionOut]
    ambulance_id: str | None
    registered: bool = Field(description="counted on the board as heading to the hospital")
    ambulance: AmbulanceChoiceOut | None = Field(description="the ambulance reaching the incident "
                                              "first, when positions were given")
    weights_version: int
    attribution: str
    stale: bool
    warning: str | None = Field(None, description="present only when the registration could "
                                "not be stored (the state store is unreachable)")
    alternatives: list[AlternativeRouteOut] | None = Field(
        None, description="only when asked (``alternatives`` > 0): alternative routes to the "
        "chosen hospital, best first")


# ---------------------------------------------------------------------------- ambulances
class AmbulanceEvent(BaseModel):
    """An ambulance arrival, cancellation or clearing, written to the shared state log."""

    ambulance_id: str
    status: Literal["arrived", "cancelled", "cleared"] = Field(
        description="cleared: an operator removed the registration (DELETE)")
    event: str = Field(description="id of the event in the state log")


# ---------------------------------------------------------------------------- coverage
class GeoFeature(BaseModel):
    """A GeoJSON Feature (here the covered area's polygon)."""

    type: Literal["Feature"]
    geometry: dict[str, Any]
    properties: dict[str, Any]


class CoverageResponse(BaseModel):
    """Road reachable within ``minutes`` from the nearest station, under current traffic."""

    minutes: float
    nodes: int = Field(description="road junctions reached")
    road_km: float
    share_of_network: float = Field(description="fraction of the usable road network")
    polygon: GeoFeature
    weights_version: int
    attribution: str
    stale: bool

    @classmethod
    def of(cls, coverage: Coverage, *, stale: bool) -> CoverageResponse:
        return cls.model_validate({**coverage.to_dict(), "stale": stale})
