"""OSRM's plugins: a checked query run on the engine's public API (live weights with the
excluded classes closed, snaps within the radiuses, one route per leg, table cells, the nearest
roads), raising OSRM's ``NoSegment`` and ``NoRoute``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from api.osrm.errors import OsrmError
from api.osrm.grammar import LonLat, OsrmNearestQuery, OsrmRouteQuery, OsrmTableQuery
from engine.errors import InvalidCoordinate, PointOffNetwork
from engine.graph import haversine_m
from engine.profiles import ProfileOptions, Weights
from engine.query import Route, Router
from engine.snap import Snap


@dataclass(frozen=True, slots=True)
class RouteResult:
    """What the route plugin found."""

    legs: list[Route]  #: one per pair of consecutive coordinates
    waypoints: list[Snap]  #: one per coordinate: the snaps the legs really used
    time: np.ndarray  #: seconds per road edge under the weights used (for annotations)
    weights_version: int
    #: alternative routes to the one leg (``alternatives=``, two coordinates only), best first
    alternatives: list[Route] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TableResult:
    """What the table plugin found, cells ``[source][destination]`` in the order asked."""

    durations: list[list[float | None]]  #: seconds (scaled), ``None``: no route, no fallback
    distances: list[list[float | None]] | None  #: metres of the fastest route, when asked
    fallback_cells: list[list[int]] | None  #: cells estimated at ``fallback_speed`` (if set)
    sources: list[Snap]  #: the snaps the table used
    destinations: list[Snap]
    weights_version: int


@dataclass(frozen=True, slots=True)
class NearestResult:
    """What the nearest plugin found."""

    roads: list[Snap]  #: nearest first, one per road piece
    weights_version: int


def request_weights(router: Router, profile: str, exclude: frozenset[str]) -> Weights:
    """The weights of a request: live traffic now, the ``exclude`` highway classes closed."""
    return router.overlay.weights(profile, "time", options=ProfileOptions(exclude=exclude))


def snap_all(router: Router, coordinates: Sequence[LonLat], weights: Weights,
             radiuses: Sequence[float | None]) -> list[Snap]:
    """Snap every coordinate in order; the first that fails is OSRM's ``NoSegment``."""
    snaps = []
    for i, (lon, lat) in enumerate(coordinates):
        try:
            snap = router.snap((lat, lon), weights=weights, what=f"coordinate {i}")
        except PointOffNetwork:
            raise _no_segment(i, router.swap_hint(lat, lon, usable=weights.snappable)) from None
        except InvalidCoordinate as exc:
            raise OsrmError("InvalidValue", str(exc)) from None
        radius = radiuses[i]
        if radius is not None and snap.distance_m > radius:
            raise _no_segment(i)
        snaps.append(snap)
    return snaps


def route(router: Router, query: OsrmRouteQuery) -> RouteResult:
    """One route per pair of consecutive coordinates (``continue_straight`` has no effect:
    each leg is routed on its own); a leg without a route is ``NoRoute``. With
    ``alternatives`` and two coordinates, also up to that many alternative routes
    (:mod:`engine.alternatives`; OSRM, too, searches them for two coordinates only)."""
    w = request_weights(router, query.profile, query.exclude)
    snaps = snap_all(router, query.coordinates, w, query.radiuses)
    legs: list[Route] = []
    version = w.version
    others: list[Route] = []
    for k, (a, b) in enumerate(pairwise(query.coordinates)):
        if query.alternatives and len(query.coordinates) == 2:
            routes = router.alternatives((a[1], a[0]), (b[1], b[0]), query.alternatives,
                                         weights=w)
            others = routes[1:]
            found = routes[0] if routes else router.route((a[1], a[0]), (b[1], b[0]),
                                                          weights=w)
        else:
            found = router.route((a[1], a[0]), (b[1], b[0]), weights=w)
        if not isinstance(found, Route):
            raise OsrmError("NoRoute", "No route found between points")
        version = max(version, found.weights_version)
        legs.append(found)
        # the snaps the route really used (a fallback from a cut-off road moves them)
        if k == 0:
            snaps[0] = found.origin
        snaps[k + 1] = found.destination
    return RouteResult(legs, snaps, w.time, version, others)


def table(router: Router, query: OsrmTableQuery) -> TableResult:
    """Durations of the fastest routes (one matrix search), distances of those routes (each
    cell routed, only when asked), then OSRM's fallback speed and scale factor."""
    w = request_weights(router, query.profile, query.exclude)
    coords = query.coordinates
    snaps = snap_all(router, coords, w, query.radiuses)
    src, dst = query.sources, query.destinations
    latlon = [(lat, lon) for lon, lat in coords]
    found = router.table([latlon[i] for i in src], [latlon[j] for j in dst], weights=w)
    durations: list[list[float | None]] = [
        [float(v) if np.isfinite(v) else None for v in row] for row in found.values]
    distances: list[list[float | None]] | None = None
    if "distance" in query.annotations:
        distances = [[None] * len(dst) for _ in src]
        for i, s in enumerate(src):
            for j, d in enumerate(dst):
                if durations[i][j] is None:
                    continue
                if s == d or coords[s] == coords[d]:
                    distances[i][j] = 0.0
                    continue
                leg = router.route(latlon[s], latlon[d], weights=w)
                distances[i][j] = leg.distance_m if isinstance(leg, Route) else None
    fallback_cells: list[list[int]] | None = None
    if query.fallback_speed is not None:
        fallback_cells = []
        for i, s in enumerate(src):
            for j, d in enumerate(dst):
                if durations[i][j] is not None:
                    continue
                if query.fallback_coordinate == "snapped":
                    a, b = (snaps[s].lat, snaps[s].lon), (snaps[d].lat, snaps[d].lon)
                else:
                    a, b = latlon[s], latlon[d]
                crow = float(haversine_m(a[0], a[1], b[0], b[1]))
                durations[i][j] = crow / query.fallback_speed
                if distances is not None:
                    distances[i][j] = crow
                fallback_cells.append([i, j])
    scale = query.scale_factor
    if scale is not None and scale != 1:
        durations = [[None if v is None else v * scale for v in row] for row in durations]
    # the snaps the table used (a fallback from a cut-off road moves them)
    return TableResult(durations, distances, fallback_cells, list(found.sources),
                       list(found.destinations), found.weights_version)


def nearest(router: Router, query: OsrmNearestQuery) -> NearestResult:
    """The ``number`` nearest road pieces usable by the profile (in at least one direction)
    within the coordinate's radius (at most the server's snap radius)."""
    w = request_weights(router, query.profile, query.exclude)
    lon, lat = query.coordinates[0]
    radius = router.snap_radius_m
    if query.radiuses[0] is not None:
        radius = min(radius, query.radiuses[0])
    roads = router.snapper.nearest(lat, lon, query.number, usable=w.snappable, radius_m=radius)
    if not roads:
        hint = router.swap_hint(lat, lon, usable=w.snappable, radius_m=radius)
        raise OsrmError("NoSegment", "Could not find a matching segments for coordinate"
                        + (f": {hint} (OSRM coordinates are longitude,latitude)" if hint else ""))
    return NearestResult(roads, w.version)


def _no_segment(i: int, hint: str | None = None) -> OsrmError:
    """OSRM's ``NoSegment`` for coordinate ``i``, with the swap ``hint`` when there is one."""
    return OsrmError("NoSegment", f"Could not find a matching segment for coordinate {i}"
                     + (f": {hint} (OSRM coordinates are longitude,latitude)" if hint else ""))
