"""What one replay run returns: the record of every call (:class:`Trip`), the layers of its
map (closures, a sample of routes) and the JSON-ready result assembled from them with the
metrics of :mod:`engine.replay.metrics`.

The result (``format: gyrophare-replay-result/1``) is what :func:`engine.replay.sim.simulate`
returns, what Dask workers send back, what :mod:`engine.replay.report` draws and what the
HTTP service serves; it holds plain JSON types only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.attribution import ATTRIBUTION
from engine.graph import RoadGraph
from engine.hospitals import HospitalBoard
from engine.query import Route
from engine.replay.metrics import compute_metrics
from engine.replay.scenario import Scenario, Variant
from engine.replay.world import map_label
from engine.timeutil import iso
from engine.traffic import Entry

FORMAT = "gyrophare-replay-result/1"
ROUTE_SAMPLE = 150  #: routes of each kind kept for the map
MAX_ROUTE_POINTS = 400  #: points kept per sampled route
MAX_CLOSURE_EDGES = 2000  #: road pieces drawn per closure

#: ``[lon, lat]`` pairs of a line, rounded to 6 decimals (about 0.1 m)
Line = list[list[float]]


@dataclass
class Trip:
    """What happened to one call (times in seconds from the start of the scenario); the
    replay fills it in as the call goes, :meth:`to_dict` is its row in the result."""

    id: str
    stream: str
    severity: str
    bed_type: str | None
    capability: str | None
    lat: float
    lon: float
    area: str
    t_call: float
    status: str = "waiting"  #: completed, not_transported, unserved, in_progress_at_end
    reason: str = ""
    ambulance: str | None = None
    station: str | None = None
    t_assigned: float | None = None
    t_on_scene: float | None = None
    response_s: float | None = None
    to_scene_s: float | None = None
    queue_wait_s: float | None = None
    t_leave_scene: float | None = None
    hospital: str | None = None
    nearest_hospital: str | None = None
    diverted: bool = False
    diversion_extra_eta_s: float = 0.0
    bed_type_used: str | None = None
    transport_s: float | None = None
    t_at_hospital: float | None = None
    over_capacity: bool = False  #: admitted beyond capacity (the board's count)
    closure_extra_s: float = 0.0
    closure_extra_scene_s: float = 0.0
    closure_extra_transport_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The JSON row: every field, times rounded to the millisecond."""
        out: dict[str, Any] = {}
        for k, v in self.__dict__.items():
            out[k] = round(v, 3) if isinstance(v, float) and k not in ("lat", "lon") else v
        return out


def route_coords(route: Route, max_points: int = MAX_ROUTE_POINTS) -> Line:
    """A route's line for the map, thinned to about ``max_points`` (the end kept)."""
    pts = route.coordinates
    if len(pts) > max_points:
        step = math.ceil(len(pts) / max_points)
        pts = [*pts[::step], pts[-1]]
    return [[round(p[0], 6), round(p[1], 6)] for p in pts]


@dataclass
class MapLayers:
    """What the report's map draws besides hospitals and stations: the closures applied and
    the first :data:`ROUTE_SAMPLE` routes to the scene and to hospital."""

    closures: list[dict[str, Any]] = field(default_factory=list)
    scene_routes: list[Line] = field(default_factory=list)
    transport_routes: list[Line] = field(default_factory=list)

    def add_scene_route(self, route: Route) -> None:
        if len(self.scene_routes) < ROUTE_SAMPLE:
            self.scene_routes.append(route_coords(route))

    def add_transport_route(self, route: Route) -> None:
        if len(self.transport_routes) < ROUTE_SAMPLE:
            self.transport_routes.append(route_coords(route))

    def add_closure(self, graph: RoadGraph, entry: Entry, *, timeline: int, from_s: float,
                    until_s: float | None) -> None:
        """A closure as applied: its outline and the road pieces it closed (one direction
        of each two-way road)."""
        twin = graph.twin[entry.edges]
        edges = entry.edges[(twin < 0) | (entry.edges < twin)]
        lines = [[[round(float(graph.point_lon[p]), 6), round(float(graph.point_lat[p]), 6)]
                  for p in graph.edge_points(int(e))] for e in edges[:MAX_CLOSURE_EDGES]]
        self.closures.append({"id": entry.id, "timeline": timeline, "from_s": from_s,
                              "until_s": until_s, "geometry": entry.geometry, "edges": lines})


def run_result(*, scenario: Scenario, variant: Variant, seed: int, horizon_s: float,
               trips: Sequence[Trip], occupancy: Mapping[tuple[str, str], list[list[float]]],
               level_changes: Sequence[tuple[float, str, str | None, int]],
               initial_levels: Mapping[tuple[str, str | None], int],
               fleet: Mapping[str, tuple[float, int]], max_queue: int,
               board: HospitalBoard, layers: MapLayers) -> dict[str, Any]:
    """The JSON-ready result of one run.

    Parameters
    ----------
    horizon_s
        End of the run, seconds from the start (the scenario's end or the last event of the
        drain, whichever is later): the span of the time-weighted metrics.
    occupancy
        Per (hospital id, bed type), the step series ``[t, occupied, baseline, en_route]``.
    level_changes, initial_levels
        Saturation levels: ``(t, hospital id, bed type or None, level)`` after the start, and
        per (hospital id, bed type or None) at the start.
    fleet
        Per ambulance: seconds busy (dispatch to end of offload) and missions.
    board
        The run's board, after the run: hospitals and admissions beyond capacity.
    """
    hospitals = board.hospitals()
    rows = [t.to_dict() for t in trips]
    metrics = compute_metrics(
        trips=rows, occupancy=occupancy, level_changes=level_changes,
        initial_levels=initial_levels, horizon_s=horizon_s,
        targets_min=scenario.model.metrics.targets_min, ambulances=fleet,
        max_queue=max_queue, hospital_names={h.id: h.name for h in hospitals},
        over_capacity=board.overflows)
    return {
        "format": FORMAT,
        "scenario": scenario.name,
        "variant": variant.to_dict(),
        "seed": seed,
        "start": iso(scenario.start),
        "duration_s": scenario.duration_s,
        "horizon_s": round(horizon_s, 3),
        "map": map_label(scenario),
        "metrics": metrics,
        "trips": rows,
        "occupancy": {f"{hid}|{bt}": series for (hid, bt), series in occupancy.items()},
        "levels": {"initial": [[hid, bt, lv] for (hid, bt), lv in initial_levels.items()],
                   "changes": [list(c) for c in level_changes]},
        "geo": {
            "hospitals": [{"id": h.id, "name": h.name, "lat": h.lat, "lon": h.lon}
                          for h in hospitals],
            "stations": [{"id": s.id, "name": s.name, "lat": s.location.lat,
                          "lon": s.location.lon, "ambulances": s.ambulances}
                         for s in scenario.model.fleet.stations],
            "closures": layers.closures,
            "scene_routes": layers.scene_routes,
            "transport_routes": layers.transport_routes,
        },
        "attribution": ATTRIBUTION,
    }


__all__ = ["FORMAT", "ROUTE_SAMPLE", "MapLayers", "Trip", "route_coords", "run_result"]
