"""What a query answers: routes (with their legs, steps and signals), explicit unreachable
results, tables and isochrones, each with its JSON form."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.attribution import ATTRIBUTION
from engine.snap import Snap


@dataclass(frozen=True, slots=True)
class Leg:
    """A piece of one edge: from ``start`` to ``end`` (fractions of the edge's length)."""

    edge: int
    start: float
    end: float


@dataclass
class Maneuver:
    """What the driver does where a step starts, in OSRM's vocabulary (``type``: depart,
    turn, new name, continue, merge, on ramp, off ramp, fork, end of road, roundabout,
    rotary, roundabout turn, exit roundabout, exit rotary, notification, arrive;
    ``modifier``: uturn, sharp/slight right/left, right, left, straight)."""

    type: str
    location: list[float]  # [lon, lat]
    bearing_before: float = 0.0
    bearing_after: float = 0.0
    modifier: str | None = None
    #: roundabouts and rotaries: the number of the exit taken (None: the route ends on it)
    exit: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "modifier": self.modifier,
                               "location": self.location,
                               "bearing_before": round(self.bearing_before) % 360,
                               "bearing_after": round(self.bearing_after) % 360}
        if self.exit is not None:
            out["exit"] = self.exit
        return out


@dataclass
class Intersection:
    """A junction passed in a step (OSRM's intersection object): the bearings of every road
    there (degrees clockwise from north, ascending), which may be entered, the one arrived
    by (``in``) and left by (``out``); ``classes`` of the road left (motorway, tunnel, toll,
    restricted); ``lanes`` from the arriving road's ``turn:lanes``."""

    location: list[float]
    bearings: list[int]
    entry: list[bool]
    in_: int | None = None
    out: int | None = None
    classes: list[str] = field(default_factory=list)
    #: ``[{"indications": [...], "valid": bool}, ...]``, left to right
    lanes: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"location": self.location, "bearings": self.bearings,
                               "entry": self.entry}
        if self.in_ is not None:
            out["in"] = self.in_
        if self.out is not None:
            out["out"] = self.out
        if self.classes:
            out["classes"] = self.classes
        if self.lanes is not None:
            out["lanes"] = self.lanes
        return out


@dataclass
class Step:
    """One instruction: a maneuver and the road driven until the next one
    (:mod:`engine.guidance`)."""

    name: str
    distance_m: float
    duration_s: float
    location: list[float]  # [lon, lat] where the step starts
    #: seconds of the step's duration spent turning and at junction controls (the turn that
    #: starts it included): what a driver loses at junctions, not on the road
    turn_delay_s: float = 0.0
    maneuver: Maneuver | None = None
    intersections: list[Intersection] = field(default_factory=list)
    ref: str = ""
    destinations: str = ""
    exits: str = ""
    rotary_name: str = ""
    pronunciation: str = ""
    mode: str = "driving"
    #: index in ``Route.edges`` of the first edge the step drives (-1: none, the arrival)
    first_edge: int = 0

    def to_dict(self, language: str = "en") -> dict[str, Any]:
        """JSON form; ``instruction``: the step in words, in ``language`` (``en``, ``fr``)."""
        out: dict[str, Any] = {
            "name": self.name, "distance_m": round(self.distance_m, 1),
            "duration_s": round(self.duration_s, 1), "location": self.location,
            "turn_delay_s": round(self.turn_delay_s, 1)}
        if self.maneuver is not None:
            out.update({
                "maneuver": self.maneuver.to_dict(),
                "intersections": [i.to_dict() for i in self.intersections],
                "ref": self.ref, "destinations": self.destinations, "exits": self.exits,
                "rotary_name": self.rotary_name, "pronunciation": self.pronunciation,
                "mode": self.mode})
            from engine.guidance import instruction

            out["instruction"] = instruction(self, language)
        return out


@dataclass
class Signal:
    """A traffic signal on the route: where, when the vehicle reaches it, from which
    direction it arrives and leaves (degrees clockwise from north)."""

    osm_id: int
    lat: float
    lon: float
    seconds_from_start: float
    distance_from_start_m: float = 0.0
    approach_bearing: float = 0.0
    exit_bearing: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"osm_id": self.osm_id, "location": [self.lon, self.lat],
                "seconds_from_start": round(self.seconds_from_start, 1),
                "distance_from_start_m": round(self.distance_from_start_m, 1),
                "approach_bearing": round(self.approach_bearing, 1),
                "exit_bearing": round(self.exit_bearing, 1)}


@dataclass
class Route:
    """A found route. ``duration_s`` and ``distance_m`` are both given whatever the metric;
    durations include the time lost at turns, U-turns and junction controls."""

    duration_s: float
    distance_m: float
    cost: float
    metric: str
    edges: list[int]
    osm_nodes: list[int]
    coordinates: list[list[float]]  # [[lon, lat], ...]
    signals: list[Signal]
    origin: Snap
    destination: Snap
    profile: str = "car"
    weights_version: int = 0
    #: the same path at normal traffic speed (for an ambulance: without lights and sirens)
    eta_normal_s: float | None = None
    contraflow_edges: int = 0
    status: str = "ok"
    extra: dict[str, Any] = field(default_factory=dict)
    #: the turn-graph arcs taken: ``turn_arcs[k]`` leads from leg ``k`` to leg ``k + 1``
    turn_arcs: list[int] = field(default_factory=list)
    #: every leg as arrays ``(edge, start fraction, end fraction)``, including a zero-length
    #: first or last piece that ``edges`` leaves out (so costs recompute from legs and turns)
    legs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    turn_delay_s: float = 0.0  #: part of ``duration_s`` spent at junctions
    #: turns an OSM restriction forbids that this route takes (ambulance, opt-in only)
    restricted_turns: int = 0
    #: builds ``(steps, arrival)`` when they are first read (turn-by-turn guidance is most
    #: of a route's assembly, and dispatch rankings, replays or an OSRM query without
    #: ``steps`` never read it); ``None``: no steps
    guidance: Callable[[], tuple[list[Step], Step | None]] | None = field(
        default=None, repr=False, compare=False)
    _guided: tuple[list[Step], Step | None] | None = field(
        default=None, init=False, repr=False, compare=False)

    @property
    def reachable(self) -> bool:
        return True

    def _guide(self) -> tuple[list[Step], Step | None]:
        if self._guided is None:
            self._guided = self.guidance() if self.guidance is not None else ([], None)
            self.guidance = None  # (drops what the builder held)
        return self._guided

    @property
    def steps(self) -> list[Step]:
        """Turn-by-turn guidance: one step per decision point (:mod:`engine.guidance`),
        built on first read."""
        return self._guide()[0]

    @property
    def arrival(self) -> Step | None:
        """The ``arrive`` step (zero length) that follows ``steps``; the JSON lists it
        last."""
        return self._guide()[1]

    @property
    def eta_priority_s(self) -> float:
        """ETA with this profile's driving (lights and sirens for an ambulance)."""
        return self.duration_s

    @property
    def all_steps(self) -> list[Step]:
        """``steps`` then the arrival (what a driver reads, in order)."""
        return [*self.steps, self.arrival] if self.arrival is not None else list(self.steps)

    @property
    def geometry(self) -> dict[str, Any]:
        """GeoJSON LineString, ``[lon, lat]`` order."""
        return {"type": "LineString", "coordinates": self.coordinates}

    @property
    def notes(self) -> list[str]:
        """What a dispatcher should know about this route, in words."""
        out = [s.fallback for s in (self.origin, self.destination) if s.fallback]
        if self.restricted_turns:
            out.append(f"takes {self.restricted_turns} turn(s) that traffic rules forbid "
                       "(emergency vehicle, opted in)")
        return out

    def to_dict(self, language: str = "en") -> dict[str, Any]:
        """JSON form; ``language`` (``en``, ``fr``) of the steps' instructions."""
        return {
            "status": self.status,
            "profile": self.profile,
            "metric": self.metric,
            "weights_version": self.weights_version,
            "duration_s": round(self.duration_s, 2),
            "eta_s": {"priority": round(self.duration_s, 2),
                      "normal": None if self.eta_normal_s is None
                      else round(self.eta_normal_s, 2)},
            "turn_delay_s": round(self.turn_delay_s, 2),
            "contraflow_edges": self.contraflow_edges,
            "restricted_turns": self.restricted_turns,
            "distance_m": round(self.distance_m, 2),
            "osm_nodes": self.osm_nodes,
            "edges": self.edges,
            "geometry": self.geometry,
            "steps": [s.to_dict(language) for s in self.all_steps],
            "signals": [s.to_dict() for s in self.signals],
            "origin": _snap_dict(self.origin),
            "destination": _snap_dict(self.destination),
            "notes": self.notes,
            "attribution": ATTRIBUTION,
            **self.extra,
        }


@dataclass
class Unreachable:
    """Both points are on the road network, but no allowed path joins them, not even from
    the main network (``isolated`` says which end is cut off)."""

    origin: Snap
    destination: Snap
    metric: str
    profile: str = "car"
    weights_version: int = 0
    reason: str = ("no path joins origin and destination for this vehicle: the network is "
                   "split here (disconnected roads, one-way streets, access restrictions or "
                   "closures)")
    status: str = "unreachable"
    #: ``"origin"``, ``"destination"`` or ``"both"``: the end(s) no main-network road serves
    isolated: str | None = None

    @property
    def reachable(self) -> bool:
        return False

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "profile": self.profile, "metric": self.metric,
                "weights_version": self.weights_version, "reason": self.reason,
                "isolated": self.isolated,
                "origin": _snap_dict(self.origin),
                "destination": _snap_dict(self.destination), "attribution": ATTRIBUTION}


def _snap_dict(s: Snap) -> dict[str, Any]:
    out = {"location": s.location(), "input": [s.input_lon, s.input_lat],
           "snap_distance_m": round(s.distance_m, 1), "edge": s.edge}
    if s.fallback:
        out["fallback"] = s.fallback
    return out


@dataclass
class Table:
    """A cost matrix: ``values[i, j]`` from source ``i`` to destination ``j`` (inf: no path)."""

    values: np.ndarray
    metric: str
    sources: list[Snap]
    destinations: list[Snap]
    profile: str = "car"
    weights_version: int = 0

    def to_dict(self) -> dict[str, Any]:
        rows = [[None if not np.isfinite(v) else round(float(v), 2) for v in row]
                for row in self.values]
        key = "durations" if self.metric == "time" else "distances"
        return {key: rows, "metric": self.metric, "profile": self.profile,
                "weights_version": self.weights_version,
                "sources": [_snap_dict(s) for s in self.sources],
                "destinations": [_snap_dict(s) for s in self.destinations]}


@dataclass
class Isochrone:
    """Every graph node reachable within ``limit`` (seconds or metres)."""

    limit: float
    metric: str
    nodes: np.ndarray
    costs: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    origin: Snap
    origins: list[Snap] = field(default_factory=list)
    weights_version: int = 0

    def to_geojson(self, *, ratio: float = 0.3) -> dict[str, Any]:
        """A polygon around the reached nodes (shapely's concave hull), as a GeoJSON Feature."""
        import shapely

        pts = shapely.multipoints(np.stack([self.lon, self.lat], axis=1)) if len(self.lat) \
            else shapely.Point(self.origin.lon, self.origin.lat)
        hull = shapely.concave_hull(pts, ratio=ratio)
        assert isinstance(hull, shapely.Geometry)
        return {"type": "Feature", "geometry": shapely.geometry.mapping(hull),
                "properties": {"limit": self.limit, "metric": self.metric,
                               "nodes": len(self.nodes), "attribution": ATTRIBUTION}}
