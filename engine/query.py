"""The router: coordinates in, routes / tables / isochrones / nearest-of-a-set out.

It validates and snaps the input (falling back to the main network, :mod:`engine.snap`),
runs a search on the turn graph (CCH or a Dijkstra-family kernel, so routes obey turn
restrictions and pay for turns) and hands the path to :mod:`engine.assembly`; the answers
are the types of :mod:`engine.results`. Unreachable destinations are an explicit
:class:`Unreachable` result, never ``None``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

import numpy as np

from engine import alternatives as alternative_routes
from engine import kernels
from engine.alternatives import DEFAULT_PARAMS, AlternativeParams
from engine.assembly import along_fraction, assemble_route, bearing
from engine.cch import CCHIndex, CCHMetric, CCHMetrics
from engine.errors import GyrophareError, PointOffNetwork
from engine.extract import tags
from engine.graph import RoadGraph
from engine.profiles import Metric, ProfileOptions, Weights
from engine.results import Isochrone, Leg, Route, Signal, Step, Table, Unreachable
from engine.snap import Reachability, Snap, Snapper, reachability, with_fallback
from engine.traffic import TrafficOverlay

Algorithm = Literal["cch", "bidirectional", "dijkstra", "astar"]
ALGORITHMS: tuple[str, ...] = ("cch", "bidirectional", "dijkstra", "astar")
Coordinate = tuple[float, float]  # (lat, lon): what people type; JSON output is [lon, lat]

# the answers live in engine.results and assembly in engine.assembly; their names stay
# importable from here, where callers have always found them
__all__ = ["ALGORITHMS", "Algorithm", "Coordinate", "Isochrone", "Leg", "Route", "Router",
           "Signal", "Step", "Table", "Unreachable", "bearing", "warm_up_kernels"]

def warm_up_kernels() -> None:
    """Compile / load every kernel (never on a request path): seconds the first time in a
    process, ~20 ms once numba holds them."""
    kernels.warm_up()


@dataclass(frozen=True, slots=True)
class _End:
    """Where a search may start (a seed) or stop (a target) on the turn graph.

    A seed is the turn node of the road the origin lies on (``cost``: driving the rest of
    it); a target is the turn node of a road *before* the destination's, with ``arc`` the
    turn into the destination road (``cost``: that turn plus driving up to the point).
    """

    node: int
    cost: float
    leg: Leg
    arc: int = -1


class Router:
    """Shortest paths over one :class:`RoadGraph`, searched on its turn graph.

    Parameters
    ----------
    graph
        The compiled graph (its turn graph is built on first use if it has none).
    snap_radius_m
        A point farther than this from every usable road is rejected as off the network.
    fallback_radius_m
        How far from the point a route may start or end on the main network when the
        nearest road is cut off from it (default: twice ``snap_radius_m``); beyond, that end
        is isolated (:class:`Unreachable`).
    overlay
        The live traffic overlay whose weights routes use (default: a new, empty one).
    cch
        The routing hierarchy: a built :class:`~engine.cch.CCHIndex`, ``True`` to load or
        build it (default), ``False`` / ``None`` to search with Dijkstra-family kernels only.
    warm_up
        Compile the kernels now (default): a request must never pay the JIT.

    Notes
    -----
    Searches run on the turn graph (:mod:`engine.turns`): seeds are the roads the origin
    lies on, targets the turns into the destination's road, so every route obeys turn
    restrictions and pays its turn costs. Safe to share between threads: search workspaces
    are per thread; matrix calls are serialised (numba's default threading layer is not
    re-entrant).
    """

    def __init__(self, graph: RoadGraph, *, snap_radius_m: float = 500.0,
                 fallback_radius_m: float | None = None,
                 overlay: TrafficOverlay | None = None, cch: bool | CCHIndex = True,
                 warm_up: bool = True) -> None:
        self.graph = graph
        if not isinstance(snap_radius_m, int | float) or not 0 < snap_radius_m < float("inf"):
            raise ValueError(f"snap_radius_m must be a positive number of metres, got "
                             f"{snap_radius_m!r}")
        self.snap_radius_m = float(snap_radius_m)
        self.fallback_radius_m = float(2.0 * self.snap_radius_m if fallback_radius_m is None
                                       else fallback_radius_m)
        tg = self.turns = graph.turn_graph()
        kernels.validate_graph(tg.first_out, tg.head, tg.tail, tg.first_in, tg.in_arc)
        self.snapper = overlay.snapper if overlay is not None else Snapper(graph)
        self.overlay = overlay if overlay is not None else TrafficOverlay(graph,
                                                                          snapper=self.snapper)
        self._local = threading.local()
        self._matrix_lock = threading.Lock()
        self._factors: dict[int, float] = {}
        self._snaps: dict[tuple, tuple[np.ndarray, Snap]] = {}
        self._reach: dict[int, tuple[np.ndarray, Reachability]] = {}
        self._anchors: dict[tuple, int] = {}
        self._along_frac = along_fraction(graph)
        self._to_road = tg.to_road()
        self._in_tail = tg.tail[tg.in_arc]
        node_junction = graph.head[tg.node_road]
        self._node_lat, self._node_lon = graph.lat[node_junction], graph.lon[node_junction]
        # Customizable Contraction Hierarchy over the turn graph: built (or loaded from the
        # cache) once per map, customized per profile and traffic state
        self.cch = cch if isinstance(cch, CCHIndex) else (
            CCHIndex.load_or_build(tg) if cch else None)
        self._cch_metrics = CCHMetrics(self.cch, self.overlay) if self.cch is not None else None
        if warm_up:
            warm_up_kernels()
            if self.cch is not None:
                self.cch.warm_up()
                self.prepare()

    def prepare(self, *, at: datetime | None = None) -> None:
        """Customize the CCH for the live car and ambulance weights now, so the first query
        after a traffic change does not pay for it (the service calls this after each write)."""
        if self._cch_metrics is None:
            return
        for profile in ("car", "ambulance"):
            self._cch_metrics.get(self.weights(profile, at=at))

    # ------------------------------------------------------------------ helpers
    def weights(self, profile: str = "car", metric: Metric = "time", *,
                at: datetime | None = None, contraflow: bool = False,
                restricted_turns: bool = False) -> Weights:
        """The weights a query would use now (or ``at``): profile + live traffic."""
        return self.overlay.weights(profile, metric, at=at, options=ProfileOptions(
            contraflow=contraflow, restricted_turns=restricted_turns))

    def _workspaces(self) -> tuple[kernels.Workspace, kernels.Workspace]:
        ws = getattr(self._local, "ws", None)
        if ws is None:
            n = self.turns.n_nodes
            ws = self._local.ws = (kernels.Workspace.for_graph(n), kernels.Workspace.for_graph(n))
        return ws

    def _resolve(self, profile: str, metric: Metric, weights: Weights | np.ndarray | None,
                 at: datetime | None, options: ProfileOptions) -> Weights:
        """The :class:`Weights` of a query: given, wrapped from an array, or from the overlay."""
        if isinstance(weights, Weights):
            return weights
        if weights is None:
            return self.overlay.weights(profile, metric, at=at, options=options)
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (self.graph.n_edges,):
            raise ValueError(f"weights must have one entry per edge "
                             f"({self.graph.n_edges}), got shape {w.shape}")
        kernels.validate_weight(w, self.graph.n_edges)  # O(m), as building the usable mask is
        base = self.overlay.weights(profile, metric, at=at, options=options)
        time = w if metric == "time" else self.overlay.weights(profile, "time", at=at,
                                                               options=options).time
        return Weights.build(w, profile=profile, metric=metric, version=-1,
                             normal_time=base.normal_time, time=time, turns=base.turns,
                             turn=base.turn, to_road=self._to_road, options=options)

    def _cch_metric(self, W: Weights) -> CCHMetric:
        """The hierarchy's metric for ``W`` (customized on first use, then kept)."""
        assert self._cch_metrics is not None, "this router has no hierarchy"
        return self._cch_metrics.get(W)

    def _snap(self, lat: float, lon: float, *, usable: np.ndarray, radius_m: float,
              what: str) -> Snap:
        """Snap with a small cache: hospitals, stations and ambulances snap again and again."""
        try:
            key = (float(lat), float(lon), id(usable), radius_m)
        except (TypeError, ValueError):
            key = None
        if key is not None:
            hit = self._snaps.get(key)
            if hit is not None and hit[0] is usable:
                return hit[1]
        try:
            snap = self.snapper.snap(lat, lon, usable=usable, radius_m=radius_m, what=what)
        except PointOffNetwork as exc:
            hint = self.swap_hint(lat, lon, usable=usable, radius_m=radius_m)
            if hint is None:
                raise
            raise PointOffNetwork(f"{exc}; {hint}", distance_m=exc.distance_m,
                                  radius_m=exc.radius_m) from None
        if key is not None:
            if len(self._snaps) >= 4096:
                self._snaps.clear()
            self._snaps[key] = (usable, snap)
        return snap

    def swap_hint(self, lat: object, lon: object, *, usable: np.ndarray | None = None,
                  radius_m: float | None = None) -> str | None:
        """For a point off the map: "did you swap latitude and longitude?" when the swapped
        point lies within ``radius_m`` of a (``usable``) road, else ``None``."""
        try:
            flat, flon = float(lat), float(lon)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
        if flat == flon or not -90.0 <= flon <= 90.0:
            return None
        try:
            self.snapper.snap(flon, flat, usable=usable,
                              radius_m=self.snap_radius_m if radius_m is None else radius_m,
                              what="swapped point")
        except GyrophareError:
            return None
        return (f"did you swap latitude and longitude? latitude {flon:.6f}, longitude "
                f"{flat:.6f} is on the map")

    def _astar_factor(self, w: Weights) -> float:
        key = id(w.arc)
        factor = self._factors.get(key)
        if factor is None:
            tg = self.turns
            factor = kernels.astar_factor(w.arc, tg.tail, tg.head, self._node_lat, self._node_lon)
            if len(self._factors) > 64:
                self._factors.clear()
            self._factors[key] = factor
        return factor

    def reachability(self, W: Weights) -> Reachability:
        """Which roads connect to the main network under ``W`` (cached per snapshot)."""
        hit = self._reach.get(id(W.arc))
        if hit is not None and hit[0] is W.arc:
            return hit[1]
        key = (W.profile, W.metric, W.options)
        reach = reachability(self.turns, W.arc, W.values, anchor=self._anchors.get(key),
                             in_tail=self._in_tail)
        self._anchors[key] = reach.anchor
        if len(self._reach) >= 16:
            self._reach.clear()
        self._reach[id(W.arc)] = (W.arc, reach)
        return reach

    def snap(self, point: Coordinate, *, profile: str = "car", metric: Metric = "time",
             weights: Weights | np.ndarray | None = None, at: datetime | None = None,
             what: str = "coordinate", end: Literal["origin", "destination"] | None = None
             ) -> Snap:
        """Snap a ``(lat, lon)`` to the nearest road usable with these weights; with ``end``,
        to the nearest road a route can leave from (``"origin"``) or arrive on
        (``"destination"``), falling back from a road cut off from the main network."""
        W = self._resolve(profile, metric, weights, at, ProfileOptions())
        lat, lon = _pair(point, what)
        s = self._snap(lat, lon, usable=W.snappable, radius_m=self.snap_radius_m, what=what)
        if end is None:
            return s
        return self._connected(s, W, end) or s

    #: a usable road farther than this from the point: look for a nearer road the vehicle
    #: may not use (a private lane, a pedestrian street) and say why the route is not there
    UNUSABLE_CHECK_M = 15.0

    def _usable_snap(self, lat: float, lon: float, W: Weights, what: str) -> Snap:
        """The nearest road the vehicle may use; when a road it may not use lies clearly
        nearer (the call is on a private lane, say), the snap says so."""
        s = self._snap(lat, lon, usable=W.snappable, radius_m=self.snap_radius_m, what=what)
        if s.distance_m <= self.UNUSABLE_CHECK_M or s.fallback:
            return s
        try:  # (distances here are great-circle, the index's are projected: a margin)
            near = self._snap(lat, lon, usable=self.snapper.everything,
                              radius_m=s.distance_m * 1.01 + 1.0, what=what)
        except PointOffNetwork:
            return s
        if near.distance_m >= s.distance_m - 10.0 or near.edge in (s.edge, s.twin):
            return s
        end = what.split(" ")[0]
        place = "ends" if end == "destination" else "starts"
        name, alt_name = self.graph.edge_name(near.edge), self.graph.edge_name(s.edge)
        reason = (f"{what}: the nearest road, {name or 'an unnamed road'} "
                  f"({self._road_kind(near.edge, W)}, {near.distance_m:.0f} m away), is not "
                  f"open to this vehicle; the route {place} {s.distance_m:.0f} m away on "
                  f"{alt_name or 'an unnamed road'}")
        return with_fallback(s, reason)

    def _road_kind(self, e: int, W: Weights) -> str:
        """A few words on why a road is closed or cut off for this vehicle."""
        g = self.graph
        t = int(g.twin[e])
        closed = not np.isfinite(W.values[e]) and (t < 0 or not np.isfinite(W.values[t]))
        flags = int(g.flags[e])
        if closed and (W.snappable[e] or (t >= 0 and W.snappable[t])):
            return "closed by live traffic"
        if flags & tags.F_PRIVATE:
            return "a private road"
        if flags & (tags.F_CAR_NO | tags.F_DESTINATION):
            return "a restricted-access road"
        if flags & tags.F_BARRIER:
            return "a barrier"
        if g.highway[e] in (tags.HIGHWAY_CODE["pedestrian"], tags.HIGHWAY_CODE["track"]):
            return f"a {tags.HIGHWAY_CLASSES[g.highway[e]]} way"
        if flags & tags.F_SERVICE_DRIVEWAY:
            return "a driveway or parking aisle"
        if flags & (tags.F_ONEWAY | tags.F_AGAINST_ONEWAY):
            return "a one-way street"
        return "a road"

    def _connected(self, s: Snap, W: Weights, end: str) -> Snap | None:
        """``s`` if a route can leave (origin) / reach (destination) it through the main
        network, else the nearest snap that can, with the reason; ``None`` if none is within
        the snapping radius."""
        reach = self.reachability(W)
        ok = reach.can_leave(s) if end == "origin" else reach.can_enter(s)
        if ok:
            return s
        mask = reach.leave if end == "origin" else reach.enter
        try:
            alt = self._snap(s.input_lat, s.input_lon, usable=mask,
                             radius_m=self.fallback_radius_m, what=end)
        except PointOffNetwork:
            return None
        return with_fallback(alt, self._fallback_reason(s, alt, W, end))

    def _fallback_reason(self, near: Snap, alt: Snap, W: Weights, end: str) -> str:
        g = self.graph
        name = g.edge_name(near.edge) or "an unnamed road"
        alt_name = g.edge_name(alt.edge) or "an unnamed road"
        verb = "left for" if end == "origin" else "reached from"
        place = "starts" if end == "origin" else "ends"
        return (f"{end}: the nearest road, {name} ({self._road_kind(near.edge, W)}, "
                f"{near.distance_m:.0f} m away), cannot be {verb} the main road network by "
                f"this vehicle; the route {place} {alt.distance_m:.0f} m away on {alt_name}")

    def _sources(self, s: Snap, W: Weights) -> list[_End]:
        """Where a search may start: the snapped road(s), leaving the point in their
        direction."""
        w = W.values
        out = []
        for edge, twin, f in s.positions():
            if np.isfinite(w[edge]):
                out.append(_End(edge, (1.0 - f) * w[edge], Leg(edge, f, 1.0)))
            if twin >= 0 and np.isfinite(w[twin]):
                out.append(_End(twin, f * w[twin], Leg(twin, 1.0 - f, 1.0)))
        return out

    def _targets(self, s: Snap, W: Weights) -> list[_End]:
        """Where a search may stop: every allowed turn into the snapped road(s), then driving
        up to the point."""
        w, turn, tg = W.values, W.turn, self.turns
        out = []
        for edge, twin, f in s.positions():
            for road, frac in ((edge, f), (twin, 1.0 - f)):
                if road < 0 or not np.isfinite(w[road]):
                    continue
                leg = Leg(road, 0.0, frac)
                for a in tg.road_arcs[tg.road_first[road]:tg.road_first[road + 1]]:
                    c = turn[a]
                    if c < np.inf:
                        out.append(_End(int(tg.tail[a]), float(c + frac * w[road]), leg, int(a)))
        return out

    @staticmethod
    def _direct(o: Snap, d: Snap, w: np.ndarray) -> tuple[float, Leg | None]:
        """Origin and destination on the same road piece: drive straight along it."""
        best, leg = np.inf, None
        for oe, ot, of in o.positions():
            for de, _, df in d.positions():
                if oe != de:
                    continue
                if df >= of and np.isfinite(w[oe]) and (df - of) * w[oe] < best:
                    best, leg = (df - of) * w[oe], Leg(oe, of, df)
                if ot >= 0 and of >= df and np.isfinite(w[ot]) and (of - df) * w[ot] < best:
                    best, leg = (of - df) * w[ot], Leg(ot, 1.0 - of, 1.0 - df)
        return best, leg

    # ------------------------------------------------------------------ route
    def route(
        self,
        origin: Coordinate,
        destination: Coordinate,
        *,
        profile: str = "car",
        metric: Metric = "time",
        at: datetime | None = None,
        contraflow: bool = False,
        restricted_turns: bool = False,
        weights: Weights | np.ndarray | None = None,
        algorithm: Algorithm | None = None,
    ) -> Route | Unreachable:
        """Shortest route between two ``(lat, lon)`` coordinates.

        Parameters
        ----------
        profile
            ``"car"`` or ``"ambulance"`` (lights and sirens; see :mod:`engine.profiles`).
        metric
            ``"time"`` (fastest) or ``"distance"`` (shortest).
        at
            The time whose live traffic applies (default now; replays pass simulated times).
        contraflow, restricted_turns
            Ambulance only: allow driving against one-way streets / taking turns that OSM
            restrictions forbid, each at a documented penalty.
        weights
            Weights replacing the overlay's (a :class:`~engine.profiles.Weights` or a bare
            per-edge array; ``inf`` closes an edge). Turn costs stay the profile's.
        algorithm
            ``"cch"`` (default), ``"bidirectional"``, ``"dijkstra"`` or ``"astar"``.

        Notes
        -----
        A point whose nearest road is cut off from the main network for this vehicle (a
        private lane, a parking aisle, a one-way stub, a closure) is routed from / to the
        nearest road that is not, and the snap says why; two points inside the same small
        piece still get the direct route between them.

        Raises
        ------
        InvalidCoordinate, PointOffNetwork
            Bad input; nothing is routed.
        """
        if algorithm is None:
            algorithm = "cch" if self.cch is not None else "bidirectional"
        if algorithm not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {algorithm!r}: expected one of {ALGORITHMS}")
        if algorithm == "cch" and self.cch is None:
            raise ValueError("this Router was built without a CCH (Router(graph, cch=True))")
        options = ProfileOptions(contraflow=contraflow, restricted_turns=restricted_turns)
        W = self._resolve(profile, metric, weights, at, options)
        lat_o, lon_o = _pair(origin, "origin")
        lat_d, lon_d = _pair(destination, "destination")
        o = self._usable_snap(lat_o, lon_o, W, "origin")
        d = self._usable_snap(lat_d, lon_d, W, "destination")
        reach = self.reachability(W)
        if reach.can_leave(o) and reach.can_enter(d):
            found = self._route_between(o, d, W, algorithm)
            return found or Unreachable(o, d, W.metric, profile=W.profile,
                                        weights_version=W.version)
        found = self._route_between(o, d, W, algorithm)  # both inside one small piece?
        if found is not None:
            return found
        o2, d2 = self._connected(o, W, "origin"), self._connected(d, W, "destination")
        if o2 is None or d2 is None:
            isolated = "both" if o2 is None and d2 is None else (
                "origin" if o2 is None else "destination")
            return Unreachable(o, d, W.metric, profile=W.profile, weights_version=W.version,
                               isolated=isolated, reason=self._isolated_reason(
                                   o if o2 is None else None, d if d2 is None else None))
        return self._route_between(o2, d2, W, algorithm) or Unreachable(
            o2, d2, W.metric, profile=W.profile, weights_version=W.version)

    def _isolated_reason(self, o: Snap | None, d: Snap | None) -> str:
        ends = [name for name, s in (("origin", o), ("destination", d)) if s is not None]
        return (f"no route: the {' and the '.join(ends)} "
                f"{'is' if len(ends) == 1 else 'are'} on roads cut off from the main road "
                f"network for this vehicle, with no connected road within "
                f"{self.fallback_radius_m:.0f} m (an island, a closed-off area, a piece of "
                "network that the map's border cuts off)")

    def _route_between(self, o: Snap, d: Snap, W: Weights, algorithm: str) -> Route | None:
        """The best route between two snaps, or ``None``."""
        src, dst = self._sources(o, W), self._targets(d, W)
        direct_cost, direct_leg = self._direct(o, d, W.values)
        cost, found = np.inf, None
        if src and dst:
            cost, arcs, si, ti = self._search(algorithm, W, src, dst)
            if np.isfinite(cost):
                found = (src[si], arcs, dst[ti])
        if direct_leg is not None and direct_cost <= cost:
            leg = direct_leg
            return self._assemble(np.array([leg.edge]), np.array([leg.start]),
                                  np.array([leg.end]), np.zeros(0, dtype=np.int64),
                                  direct_cost, W, o, d)
        if found is None:
            return None
        return self._assemble(*self._legs(*found), cost, W, o, d)

    def _legs(self, first: _End, arcs: np.ndarray, last: _End
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Leg arrays ``(edges, starts, ends, turn arcs)`` of a search result."""
        roads = self.turns.node_road[self.turns.head[arcs]]
        k = len(roads)
        E = np.concatenate([[first.leg.edge], roads, [last.leg.edge]]).astype(np.int64)
        S = np.concatenate([[first.leg.start], np.zeros(k), [0.0]])
        T = np.concatenate([[1.0], np.ones(k), [last.leg.end]])
        turn_arcs = np.concatenate([arcs, [last.arc]]).astype(np.int64)
        return E, S, T, turn_arcs

    def _search(self, algorithm: str, W: Weights, src: list[_End], dst: list[_End]
                ) -> tuple[float, np.ndarray, int, int]:
        """``(cost, turn arcs, seed index, target index)`` of the best seed-to-target path."""
        tg = self.turns
        seeds = np.array([e.node for e in src], dtype=np.int32)
        seed_cost = np.array([e.cost for e in src])
        targets = np.array([e.node for e in dst], dtype=np.int32)
        target_cost = np.array([e.cost for e in dst])
        w = W.arc
        empty = np.zeros(0, dtype=np.int32)
        if algorithm == "cch":
            assert self.cch is not None
            cost, arcs, si, ti = self.cch.nearest(self._cch_metric(W), seeds, seed_cost,
                                                  targets, target_cost)
            return cost, arcs, si, ti
        ws, ws2 = self._workspaces()
        if algorithm == "bidirectional":
            cost, meet = kernels.bidirectional_dijkstra(
                tg.first_out, tg.head, tg.first_in, tg.in_arc,
                                                  tg.tail, w, seeds, seed_cost, targets,
                                                  target_cost, ws, ws2)
            if not np.isfinite(cost):
                return np.inf, empty, -1, -1
            arcs = kernels.bidirectional_path_edges(ws, ws2, tg.tail, tg.head, meet)
            return (cost, arcs, *_match_ends(arcs, tg, w, seeds, seed_cost, targets,
                                             target_cost, cost))
        if algorithm == "astar":
            factor = self._astar_factor(W)
            cost, ti = kernels.astar(tg.first_out, tg.head, w, self._node_lat, self._node_lon,
                                     seeds,
                               seed_cost, targets, target_cost, factor, ws)
        else:
            cost, ti = kernels.dijkstra(tg.first_out, tg.head, w, seeds, seed_cost, targets,
                                  target_cost, ws)
        if ti < 0:
            return np.inf, empty, -1, -1
        arcs = kernels.path_edges(ws.pred_edge, tg.tail, int(targets[ti]))
        start = int(tg.tail[arcs[0]]) if len(arcs) else int(targets[ti])
        return cost, arcs, _best_seed(seeds, seed_cost, start), ti

    def _assemble(self, E: np.ndarray, S: np.ndarray, T: np.ndarray, turn_arcs: np.ndarray,
                  cost: float, W: Weights, o: Snap, d: Snap) -> Route:
        return assemble_route(self.graph, self._along_frac, E, S, T, turn_arcs, cost, W, o, d)

    # ------------------------------------------------------------------ many
    def _groups(self, snaps: Sequence[Snap], W: Weights, *, sources: bool
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[_End]]:
        first, entries = [0], []
        for s in snaps:
            entries.extend(self._sources(s, W) if sources else self._targets(s, W))
            first.append(len(entries))
        return (np.array(first, dtype=np.int32),
                np.array([e.node for e in entries], dtype=np.int32),
                np.array([e.cost for e in entries], dtype=np.float64), entries)

    def _snap_all(self, points: Sequence[Coordinate], W: Weights, what: str,
                  end: Literal["origin", "destination"] | None,
                  names: Sequence[str] | None = None) -> list[Snap]:
        """Snap every point; with ``end``, falling back from roads cut off from the main
        network. ``names`` (one per point) replace ``what i`` in messages."""
        out = []
        for i, p in enumerate(points):
            label = names[i] if names is not None and i < len(names) else f"{what} {i}"
            s = self._usable_snap(*_pair(p, label), W, label)
            out.append(self._connected(s, W, end) or s if end else s)
        return out

    def table(
        self,
        sources: Sequence[Coordinate],
        destinations: Sequence[Coordinate] | None = None,
        *,
        profile: str = "car",
        metric: Metric = "time",
        at: datetime | None = None,
        contraflow: bool = False,
        restricted_turns: bool = False,
        weights: Weights | np.ndarray | None = None,
    ) -> Table:
        """Cost matrix from every source to every destination (``inf`` where no path).

        Points whose nearest road is cut off from the main network are moved to the nearest
        connected road (see :meth:`route`; the snaps say so)."""
        W = self._resolve(profile, metric, weights, at,
                          ProfileOptions(contraflow=contraflow, restricted_turns=restricted_turns))
        destinations = sources if destinations is None else destinations
        if not len(sources) or not len(destinations):
            raise ValueError("a table needs at least one source and one destination")
        near_src = self._snap_all(sources, W, "source", None)
        near_dst = self._snap_all(destinations, W, "destination", None)
        src = [self._connected(s, W, "origin") or s for s in near_src]
        dst = [self._connected(d, W, "destination") or d for d in near_dst]
        values = self._matrix(src, dst, W)
        # as route(): two points inside one small piece keep the direct route between them
        rows = [i for i, s in enumerate(src) if s is not near_src[i]]
        cols = [j for j, d in enumerate(dst) if d is not near_dst[j]]
        if rows:
            near = self._matrix([near_src[i] for i in rows], near_dst, W)
            values[rows] = np.where(np.isfinite(near), near, values[rows])
        if cols:
            near = self._matrix(near_src, [near_dst[j] for j in cols], W)
            values[:, cols] = np.where(np.isfinite(near), near, values[:, cols])
        return Table(values, W.metric, src, dst, profile=W.profile, weights_version=W.version)

    def _matrix(self, src: list[Snap], dst: list[Snap], W: Weights) -> np.ndarray:
        """Costs between snapped points (one bucket search per source group; one pruned
        point-to-point query for a single pair)."""
        sf, sn, sc, _ = self._groups(src, W, sources=True)
        tf, tn, tc, _ = self._groups(dst, W, sources=False)
        tg = self.turns
        if self.cch is not None and len(src) == 1 and len(dst) == 1:
            # one pair: the pruned point-to-point query beats the bucket walks
            values = self.cch.distances(self._cch_metric(W), sf, sn, sc, tf, tn, tc,
                                        trusted=True).reshape(1, 1)
        elif self.cch is not None:
            values = self.cch.many_to_many(self._cch_metric(W), sf, sn, sc, tf, tn, tc,
                                           trusted=True)
        else:
            ws, _ = self._workspaces()
            with self._matrix_lock:
                values = kernels.many_to_many(tg.first_out, tg.head, W.arc, sf, sn, sc, tf, tn,
                                              tc, ws)
        for i, o in enumerate(src):  # same road piece: driving straight may be shorter
            for j, d in enumerate(dst):
                values[i, j] = min(values[i, j], self._direct(o, d, W.values)[0])
        return values

    def closest(
        self,
        origin: Coordinate,
        candidates: Sequence[Coordinate],
        *,
        direction: Literal["from", "to"] = "from",
        profile: str = "car",
        metric: Metric = "time",
        at: datetime | None = None,
        contraflow: bool = False,
        restricted_turns: bool = False,
        weights: Weights | np.ndarray | None = None,
        names: Sequence[str] | None = None,
    ) -> tuple[int, Route | Unreachable]:
        """The candidate reached fastest from ``origin`` (``direction="from"``, e.g. which
        hospital) or reaching ``origin`` fastest (``"to"``, e.g. which ambulance), with the
        route, both from one multi-target (or multi-source) search. Returns
        ``(-1, Unreachable)`` when none connects. ``names`` name the candidates in error
        messages (default ``candidate i``).
        """
        if not len(candidates):
            raise ValueError("closest() needs at least one candidate")
        if direction not in ("from", "to"):
            raise ValueError(f"direction must be 'from' or 'to', got {direction!r}")
        W = self._resolve(profile, metric, weights, at,
                          ProfileOptions(contraflow=contraflow, restricted_turns=restricted_turns))
        out = direction == "from"
        snap = self._snap_all([origin], W, "origin", "origin" if out else "destination")[0]
        others = self._snap_all(candidates, W, "candidate", "destination" if out else "origin",
                                names=names)
        sf, sn, sc, src = self._groups([snap] if out else others, W, sources=True)
        tf, tn, tc, dst = self._groups(others if out else [snap], W, sources=False)
        tg = self.turns
        best_i, best_cost, best = -1, np.inf, None
        si = ti = -1
        arcs = np.zeros(0, dtype=np.int32)
        cost = np.inf
        if len(sn) and len(tn):
            if self.cch is not None:
                cost, arcs, si, ti = self.cch.nearest(self._cch_metric(W), sn, sc, tn, tc)
            else:
                ws, _ = self._workspaces()
                cost, ti = kernels.dijkstra(tg.first_out, tg.head, W.arc, sn, sc, tn, tc, ws)
                if ti >= 0:
                    arcs = kernels.path_edges(ws.pred_edge, tg.tail, int(tn[ti]))
                    start = int(tg.tail[arcs[0]]) if len(arcs) else int(tn[ti])
                    si = _best_seed(sn, sc, start)
        if ti >= 0 and np.isfinite(cost):
            group = (np.searchsorted(tf, ti, side="right") - 1 if out
                     else np.searchsorted(sf, si, side="right") - 1)
            best_i, best_cost, best = int(group), float(cost), (src[si], arcs, dst[ti])
        direct = None
        for i, other in enumerate(others):  # same road piece as the origin
            pair = (snap, other) if out else (other, snap)
            c, leg = self._direct(*pair, W.values)
            if c < best_cost and leg is not None:
                best_i, best_cost, direct = i, c, leg
        if best_i < 0:
            return -1, Unreachable(snap, others[0], W.metric, profile=W.profile,
                                   weights_version=W.version,
                                   reason="no candidate is connected to the origin")
        o, d = (snap, others[best_i]) if out else (others[best_i], snap)
        if direct is not None:
            return best_i, self._assemble(np.array([direct.edge]), np.array([direct.start]),
                                          np.array([direct.end]), np.zeros(0, dtype=np.int64),
                                          best_cost, W, o, d)
        assert best is not None
        return best_i, self._assemble(*self._legs(*best), best_cost, W, o, d)

    def alternatives(
        self,
        origin: Coordinate,
        destination: Coordinate,
        n: int = 2,
        *,
        profile: str = "car",
        metric: Metric = "time",
        at: datetime | None = None,
        contraflow: bool = False,
        restricted_turns: bool = False,
        weights: Weights | np.ndarray | None = None,
        algorithm: Algorithm | None = None,
        params: AlternativeParams = DEFAULT_PARAMS,
    ) -> list[Route]:
        """The best route and up to ``n`` admissible alternatives (limited sharing, local
        optimality, bounded stretch: :mod:`engine.alternatives`, via-node alternatives on the
        CCH), best first; ``[]`` when no route joins the points (:meth:`route` says why).
        ``params``: an :class:`engine.alternatives.AlternativeParams` (default thresholds
        1.4x stretch, 80 % sharing, T-test at 25 %)."""
        return alternative_routes.alternatives(
            self, origin, destination, n, profile=profile, metric=metric, at=at,
            contraflow=contraflow, restricted_turns=restricted_turns, weights=weights,
            algorithm=algorithm, params=params)

    def isochrone(
        self,
        origins: Coordinate | Sequence[Coordinate],
        limit: float,
        *,
        profile: str = "car",
        metric: Metric = "time",
        at: datetime | None = None,
        contraflow: bool = False,
        restricted_turns: bool = False,
        weights: Weights | np.ndarray | None = None,
    ) -> Isochrone:
        """Every junction reachable within ``limit`` seconds (or metres), turn costs
        included, from one origin or from the nearest of several (stations: coverage)."""
        if not np.isfinite(limit) or limit < 0:
            raise ValueError(f"isochrone limit must be a finite number >= 0, got {limit}")
        W = self._resolve(profile, metric, weights, at,
                          ProfileOptions(contraflow=contraflow, restricted_turns=restricted_turns))
        many = len(origins) > 0 and isinstance(origins[0], Sequence | np.ndarray)
        points = cast("Sequence[Coordinate]", origins) if many else [cast("Coordinate", origins)]
        snaps = self._snap_all(points, W, "origin", "origin")
        _, seeds, seed_cost, _ = self._groups(snaps, W, sources=True)
        ws, _ = self._workspaces()
        tg, g = self.turns, self.graph
        reached, costs = kernels.isochrone(tg.first_out, tg.head, W.arc, seeds, seed_cost,
                                     float(limit), ws)
        # a turn node is reached at the end of its road: that junction, at the best cost
        junction = g.head[tg.node_road[reached]].astype(np.int64)
        order = np.lexsort((costs, junction))
        junction, costs = junction[order], costs[order]
        first = np.concatenate([[True], junction[1:] != junction[:-1]]) if len(junction) \
            else np.zeros(0, dtype=bool)
        nodes, costs = junction[first].astype(np.int32), costs[first]
        return Isochrone(float(limit), W.metric, nodes, costs, g.lat[nodes], g.lon[nodes],
                         snaps[0], origins=snaps, weights_version=W.version)


# ---------------------------------------------------------------------------- small helpers
def _pair(point: object, what: str) -> tuple[float, float]:
    from engine.errors import InvalidCoordinate

    try:
        lat, lon = cast("tuple[float, float]", point)
    except (TypeError, ValueError) as exc:
        raise InvalidCoordinate(f"{what}: expected a (lat, lon) pair, got {point!r}") from exc
    return lat, lon


def _best_seed(seeds: np.ndarray, seed_cost: np.ndarray, node: int) -> int:
    """The seed a search started from at ``node`` (the cheapest one there)."""
    at = np.flatnonzero(seeds == node)
    return int(at[np.argmin(seed_cost[at])])


def _match_ends(arcs: np.ndarray, tg: Any, w: np.ndarray, seeds: np.ndarray,
                seed_cost: np.ndarray, targets: np.ndarray, target_cost: np.ndarray,
                cost: float) -> tuple[int, int]:
    """Seed and target of a path found by a search that reports only its cost and arcs:
    the cheapest seed at its first node, the target at its last node whose cost closes the
    total (two targets at one node differ by the turn they stand for)."""
    start = int(tg.tail[arcs[0]]) if len(arcs) else None
    end = int(tg.head[arcs[-1]]) if len(arcs) else None
    inner = float(w[arcs].sum()) if len(arcs) else 0.0
    best, best_err = (-1, -1), np.inf
    for i in range(len(seeds)):
        if start is not None and seeds[i] != start:
            continue
        for j in range(len(targets)):
            if targets[j] != (seeds[i] if end is None else end):
                continue
            err = abs(seed_cost[i] + inner + target_cost[j] - cost)
            if err < best_err:
                best, best_err = (i, j), err
    return best
