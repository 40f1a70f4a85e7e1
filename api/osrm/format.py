"""OSRM's JSON answers written from the plugins' engine results (osrm-backend's
``engine/api/{route,table,nearest}_api.hpp``): waypoints, routes, legs, steps, annotations and
geometry encodings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from itertools import chain, pairwise
from typing import Any

import numpy as np
import shapely

from api.osrm.grammar import OsrmNearestQuery, OsrmRouteQuery, OsrmTableQuery
from api.osrm.plugins import NearestResult, RouteResult, TableResult
from engine.graph import RoadGraph, haversine_m
from engine.query import Route
from engine.results import Step
from engine.snap import Snap


# ------------------------------------------------------------------------------ answers
def route_body(graph: RoadGraph, result: RouteResult, query: OsrmRouteQuery, *,
               stale: bool) -> dict[str, Any]:
    """The ``/route`` answer: one route, one leg per pair of ``waypoints`` (legs between
    other coordinates are joined), ``weight_name`` ``"duration"``; ``stale``: the live state
    is the last known one."""
    detail = query.steps or bool(query.annotations)
    legs = [_make_leg(graph, found, result.time, detail) for found in result.legs]
    snaps = result.waypoints
    if query.waypoints is not None:
        legs = [_merge(legs[i:j]) for i, j in pairwise(query.waypoints)]
        snaps = [snaps[i] for i in query.waypoints]
    out_legs = []
    for leg in legs:
        item: dict[str, Any] = {
            "steps": _steps(graph, leg, query.geometries) if query.steps else [],
            "summary": _summary(leg) if query.steps else "", "weight": leg.duration,
            "duration": leg.duration, "distance": leg.distance}
        if query.annotations:
            item["annotation"] = _annotation(leg, query.annotations)
        out_legs.append(item)
    duration = float(sum(leg.duration for leg in legs))
    route_obj: dict[str, Any] = {}
    if query.overview != "false":
        if (query.overview == "full" and len(legs) == 1 and len(legs[0].xy) >= 2
                and query.geometries != "geojson"):  # the steps' encoding, when there is one
            line = _leg_line(legs[0], 6 if query.geometries == "polyline6" else 5)
            route_obj["geometry"] = line.piece(0, len(legs[0].xy) - 1)
        else:
            shape = np.concatenate([legs[0].xy, *(leg.xy[1:] for leg in legs[1:])])
            if query.overview == "simplified":
                shape = _simplified(shape)
            route_obj["geometry"] = _geometry(shape, query.geometries)
    route_obj.update({"legs": out_legs, "weight_name": "duration", "weight": duration,
                      "duration": duration,
                      "distance": float(sum(leg.distance for leg in legs))})
    body: dict[str, Any] = {"code": "Ok", "routes": [route_obj]}
    for alt in result.alternatives:  # alternative routes (two coordinates), same shape
        body["routes"].append(route_body(graph, replace(result, legs=[alt], alternatives=[]),
                                         query, stale=stale)["routes"][0])
    if not query.skip_waypoints:
        body["waypoints"] = [waypoint(graph, s, hints=query.generate_hints) for s in snaps]
    body["weights_version"] = result.weights_version
    body["stale"] = stale
    return body


def table_body(graph: RoadGraph, result: TableResult, query: OsrmTableQuery, *,
               stale: bool) -> dict[str, Any]:
    """The ``/table`` answer: ``durations`` and / or ``distances``, the snapped sources and
    destinations, ``fallback_speed_cells`` when a fallback speed was given."""
    body: dict[str, Any] = {"code": "Ok"}
    if "duration" in query.annotations:
        body["durations"] = result.durations
    if result.distances is not None:
        body["distances"] = result.distances
    if not query.skip_waypoints:
        hints = query.generate_hints
        body["sources"] = [waypoint(graph, s, hints=hints) for s in result.sources]
        body["destinations"] = [waypoint(graph, d, hints=hints) for d in result.destinations]
    if result.fallback_cells is not None:
        body["fallback_speed_cells"] = result.fallback_cells
    body["weights_version"] = result.weights_version
    body["stale"] = stale
    return body


def nearest_body(graph: RoadGraph, result: NearestResult, query: OsrmNearestQuery, *,
                 stale: bool) -> dict[str, Any]:
    """The ``/nearest`` answer: one waypoint per road piece, with the OSM nodes of the
    snapped segment."""
    out = []
    for snap in result.roads:
        a, b = snap.segment
        wp: dict[str, Any] = {"nodes": [int(graph.point_osm_id[a]),
                                        int(graph.point_osm_id[b])]}
        if query.generate_hints:
            wp["hint"] = ""
        wp["distance"] = snap.distance_m
        wp["name"] = graph.edge_name(snap.edge)
        wp["location"] = [round(snap.lon, 6), round(snap.lat, 6)]
        out.append(wp)
    return {"code": "Ok", "waypoints": out, "weights_version": result.weights_version,
            "stale": stale}


def waypoint(graph: RoadGraph, snap: Snap, *, hints: bool) -> dict[str, Any]:
    """An OSRM waypoint: where a coordinate was snapped (our hints are empty strings)."""
    out: dict[str, Any] = {"hint": ""} if hints else {}
    out["distance"] = snap.distance_m
    out["name"] = graph.edge_name(snap.edge)
    out["location"] = [round(snap.lon, 6), round(snap.lat, 6)]
    return out


# ------------------------------------------------------------------------------ legs
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
    #: index in the route's ``edges`` of each segment's edge (to cut steps)
    seg_index: np.ndarray | None = None
    #: the engine's guidance steps (``engine.guidance``) and the segment each starts at
    steps: list[Step] = field(default_factory=list)
    step_seg: list[int] = field(default_factory=list)
    arrival: Step | None = None
    #: ``coords`` as an ``(n, 2)`` array
    xy: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    #: ``xy`` encoded, per polyline precision (:func:`_leg_line`)
    lines: dict[int, _EncodedLine] = field(default_factory=dict)


def _node_location(graph: RoadGraph, osm_id: int) -> list[float] | None:
    p = graph.point_of_osm_node(osm_id)
    if p is None:
        return None
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


def _make_leg(graph: RoadGraph, route: Route, time_w: np.ndarray, detail: bool) -> _Leg:
    coords = _aligned(graph, route)
    leg = _Leg(coords, list(route.osm_nodes), route.distance_m, route.duration_s,
               [(step.name, step.distance_m) for step in route.steps], xy=_points(coords))
    if detail:
        _segments(graph, route, time_w, leg)
        assert leg.seg_index is not None
        leg.steps = list(route.steps)
        leg.arrival = route.arrival
        firsts = np.array([s.first_edge for s in route.steps[1:]], dtype=np.int64)
        leg.step_seg = [0, *np.searchsorted(leg.seg_index, firsts, side="left").tolist()]
    return leg


def _segments(graph: RoadGraph, route: Route, time_w: np.ndarray, leg: _Leg) -> None:
    """Distance, duration and edge of every segment between consecutive coordinates, scaled
    so that they add up to the route's totals."""
    pts = leg.xy
    n = len(pts) - 1
    dist = (haversine_m(pts[:-1, 1], pts[:-1, 0], pts[1:, 1], pts[1:, 0])
            if n > 0 else np.zeros(0))
    edges = np.asarray(route.edges, dtype=np.int64)
    head = graph.head[edges]
    # the walk below reads Python lists: indexing numpy arrays one scalar at a time costs
    # several times more
    head_lon, head_lat = graph.lon[head].tolist(), graph.lat[head].tolist()
    barrier, edge_time = (graph.length_m[edges] == 0).tolist(), time_w[edges].tolist()
    coords, positive = leg.coords, (dist > 0).tolist()
    index, added = [0] * n, [0.0] * n
    ei, last = 0, len(edges) - 1
    for k in range(n):
        index[k] = ei
        nxt = coords[k + 1]
        if ei < last and nxt[0] == head_lon[ei] and nxt[1] == head_lat[ei] and positive[k]:
            ei += 1
            while ei < last and barrier[ei]:  # barrier crossings
                if k + 1 < n:
                    added[k + 1] += edge_time[ei]
                ei += 1
    seg_index = np.array(index, dtype=np.int64)
    seg_edge = edges[seg_index]
    extra = np.array(added, dtype=np.float64)
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
    leg.seg_index = seg_index


def _merge(legs: list[_Leg]) -> _Leg:
    """Legs between ``waypoints`` joined into one (OSRM's collapsed legs): the steps run on,
    the via point's depart folded into the step before it."""
    first = legs[0]
    out = _Leg(list(first.coords), list(first.nodes), first.distance, first.duration,
               list(first.names), first.seg_distance, first.seg_duration, first.seg_edge,
               first.seg_index, list(first.steps), list(first.step_seg), first.arrival,
               first.xy)
    for leg in legs[1:]:
        offset = len(out.coords) - 1
        out.coords += leg.coords[1:]
        out.xy = np.concatenate([out.xy, leg.xy[1:]])
        out.nodes += leg.nodes[1:]
        out.distance += leg.distance
        out.duration += leg.duration
        out.names += leg.names
        out.steps += leg.steps[1:]
        out.step_seg += [k + offset for k in leg.step_seg[1:]]
        out.arrival = leg.arrival
        if (out.seg_distance is not None and out.seg_duration is not None
                and out.seg_edge is not None and leg.seg_distance is not None
                and leg.seg_duration is not None and leg.seg_edge is not None):
            out.seg_distance = np.concatenate([out.seg_distance, leg.seg_distance])
            out.seg_duration = np.concatenate([out.seg_duration, leg.seg_duration])
            out.seg_edge = np.concatenate([out.seg_edge, leg.seg_edge])
    return out


def _summary(leg: _Leg) -> str:
    """Names of the two roads the leg follows longest, in route order (OSRM's summary,
    which OSRM only fills in when steps are asked for)."""
    total: dict[str, float] = {}
    for name, distance in leg.names:
        if name:
            total[name] = total.get(name, 0.0) + distance
    top = set(sorted(total, key=lambda name: -total[name])[:2])
    return ", ".join(name for name in total if name in top)


def _annotation(leg: _Leg, wanted: frozenset[str]) -> dict[str, Any]:
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


# ------------------------------------------------------------------------------ steps
def _deg(x: float) -> int:
    return round(x) % 360


def _maneuver(step: Step, location: list[float]) -> dict[str, Any]:
    m = step.maneuver
    assert m is not None
    out: dict[str, Any] = {"location": location, "bearing_before": _deg(m.bearing_before),
                           "bearing_after": _deg(m.bearing_after), "type": m.type}
    if m.modifier is not None:
        out["modifier"] = m.modifier
    if m.exit is not None:
        out["exit"] = m.exit
    return out


def _step(step: Step, location: list[float], geometry: Any, distance: float,
          duration: float, side: str) -> dict[str, Any]:
    """One OSRM step from an engine step: OSRM's field order, optional fields only when
    set, the first intersection at the step's own location."""
    out: dict[str, Any] = {"geometry": geometry, "maneuver": _maneuver(step, location),
                           "mode": "driving", "driving_side": side, "name": step.name}
    for key in ("ref", "destinations", "exits", "rotary_name", "pronunciation"):
        if getattr(step, key):
            out[key] = getattr(step, key)
    inters = [i.to_dict() for i in step.intersections]
    if inters:
        inters[0]["location"] = location
    out.update({"intersections": inters, "weight": duration, "duration": duration,
                "distance": distance})
    return out


def _steps(graph: RoadGraph, leg: _Leg, fmt: str) -> list[dict[str, Any]]:
    """The engine's guidance steps (:mod:`engine.guidance`) cut along the leg's geometry,
    then ``arrive``."""
    coords = leg.coords
    dist, dur = leg.seg_distance, leg.seg_duration
    assert dist is not None and dur is not None
    n = len(dist)
    side = str(graph.meta.get("driving_side", "right"))
    bounds = [*leg.step_seg[1:], n]
    # one encoding of the whole leg, cut per step (a step is a few points: encoding each on
    # its own cost more than the rest of the step)
    line = _leg_line(leg, 6 if fmt == "polyline6" else 5) if fmt != "geojson" else None

    def geometry(a: int, b: int) -> str | dict[str, Any]:
        if line is not None:
            return line.piece(a, b)
        return _geometry(coords[a:b + 1] if b > a else [coords[a], coords[a]], fmt)

    steps: list[dict[str, Any]] = []
    for k, (step, a, b) in enumerate(zip(leg.steps, leg.step_seg, bounds, strict=True)):
        a, b = min(a, n), max(min(b, n), min(a, n))
        location = [round(coords[a][0], 6), round(coords[a][1], 6)] if k == 0 else \
            (step.maneuver.location if step.maneuver is not None else
             [round(coords[a][0], 6), round(coords[a][1], 6)])
        steps.append(_step(step, location, geometry(a, b), float(dist[a:b].sum()),
                           float(dur[a:b].sum()), side))
    end = [round(coords[-1][0], 6), round(coords[-1][1], 6)]
    if leg.arrival is not None:
        last = len(coords) - 1
        arrive = _step(leg.arrival, end, geometry(last, last), 0.0, 0.0, side)
        arrive["name"] = steps[-1]["name"] if steps else ""
        steps.append(arrive)
    return steps


# ------------------------------------------------------------------------------ geometry
def _geometry(coords: Sequence[Sequence[float]] | np.ndarray, fmt: str) -> str | dict[str, Any]:
    if fmt == "geojson":
        arr = _points(coords)
        return {"type": "LineString", "coordinates": np.round(arr, 6).tolist()}
    return encode_polyline(coords, 6 if fmt == "polyline6" else 5)


_SHIFTS = np.arange(0, 35, 5, dtype=np.int64)


def _points(coords: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """``[[lon, lat], ...]`` as an ``(n, 2)`` float array: ``np.fromiter`` over the flattened
    pairs is ~5x faster than ``np.asarray`` on a list of lists (a route's geometry)."""
    if isinstance(coords, np.ndarray):
        return coords.astype(np.float64, copy=False).reshape(-1, 2)
    return np.fromiter(chain.from_iterable(coords), dtype=np.float64,
                       count=2 * len(coords)).reshape(-1, 2)


def _fixed(coords: Sequence[Sequence[float]] | np.ndarray, precision: int) -> np.ndarray:
    """``[lat, lon]`` integers of ``[lon, lat]`` points at ``precision`` decimals, rounded
    half away from zero (as the ``polyline`` package)."""
    arr = _points(coords)[:, ::-1] * (10.0 ** precision)
    return (np.floor(np.abs(arr) + 0.5) * np.sign(arr)).astype(np.int64)


def _chunks(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Google's 5-bit chunks of each signed integer of ``values``: the characters of all of
    them, in order, and how many characters each one takes."""
    zigzag = np.where(values < 0, ~(values << 1), values << 1)
    rest = zigzag[:, None] >> _SHIFTS[None, :]  # 7 chunks of 5 bits cover 35 bits
    more = np.zeros(rest.shape, dtype=bool)
    more[:, :-1] = rest[:, 1:] > 0
    keep = np.ones(rest.shape, dtype=bool)
    keep[:, 1:] = more[:, :-1]
    chars = (rest & 31) + np.where(more, 0x20, 0) + 63
    return chars[keep].astype(np.uint8), keep.sum(axis=1)


def encode_polyline(coords: Sequence[Sequence[float]] | np.ndarray, precision: int = 5) -> str:
    """Google's encoded polyline of ``[lon, lat]`` points (latitude first, as OSRM), the
    same string as the ``polyline`` package's ``encode`` (rounding half away from zero),
    vectorised: ~4x faster on a route."""
    ints = _fixed(coords, precision)
    deltas = np.diff(ints, axis=0, prepend=np.zeros((1, 2), dtype=np.int64)).ravel()
    return str(_chunks(deltas)[0].tobytes().decode("ascii"))


def _encode_int(value: int) -> str:
    """One signed integer in Google's encoding (pure Python: a handful of characters)."""
    value = ~(value << 1) if value < 0 else value << 1
    out = []
    while value >= 0x20:
        out.append(chr((0x20 | (value & 31)) + 63))
        value >>= 5
    out.append(chr(value + 63))
    return "".join(out)


def _leg_line(leg: _Leg, precision: int) -> _EncodedLine:
    """The leg's geometry encoded once (its steps and the route's full overview share it)."""
    line = leg.lines.get(precision)
    if line is None:
        line = leg.lines[precision] = _EncodedLine(leg.xy, precision)
    return line


class _EncodedLine:
    """A line's polyline encoded once, cut into the polylines of its pieces: the piece from
    point ``a`` to point ``b`` is point ``a`` in full, then the line's own deltas up to ``b``
    (the same string as :func:`encode_polyline` of those points)."""

    def __init__(self, coords: Sequence[Sequence[float]] | np.ndarray, precision: int) -> None:
        self.ints = _fixed(coords, precision)
        deltas = np.diff(self.ints, axis=0).ravel()
        chars, sizes = _chunks(deltas)
        self.text = chars.tobytes().decode("ascii")
        #: where the deltas from point ``i - 1`` to point ``i`` end in ``text`` (``i >= 1``)
        self.ends = np.concatenate([[0, 0], np.cumsum(sizes.reshape(-1, 2).sum(axis=1))])
        self.ends_list = self.ends.tolist()

    def piece(self, a: int, b: int) -> str:
        """Points ``a`` to ``b`` (``b > a``), or point ``a`` twice when ``b <= a``."""
        lat, lon = self.ints[a].tolist()
        head = _encode_int(lat) + _encode_int(lon)
        if b <= a:
            return head + "??"  # a zero delta twice
        return head + self.text[self.ends_list[a + 1]:self.ends_list[b + 1]]


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
