"""The router: coordinates in, routes / tables / isochrones / nearest-of-a-set out.

It validates and snaps the input, picks the kernel, and turns edge paths into
:class:`Route` objects with everything a dispatcher or a map needs (both metrics, OSM nodes,
GeoJSON geometry, street-name steps, traffic signals passed with their time from start).
Unreachable destinations are an explicit :class:`Unreachable` result, never ``None``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np

from engine import kernels as K
from engine.cch import CCHIndex, CCHMetrics
from engine.extract.tags import F_AGAINST_ONEWAY
from engine.graph import RoadGraph, haversine_m
from engine.profiles import Metric, ProfileOptions, Weights
from engine.snap import Snap, Snapper
from engine.traffic import TrafficOverlay

Algorithm = Literal["cch", "bidirectional", "dijkstra", "astar"]
ALGORITHMS: tuple[str, ...] = ("cch", "bidirectional", "dijkstra", "astar")
ATTRIBUTION = "© OpenStreetMap contributors, ODbL 1.0"
Coordinate = tuple[float, float]  # (lat, lon): what people type; JSON output is [lon, lat]

_warm_lock = threading.Lock()
_warmed = False


def warm_up_kernels() -> None:
    """Compile / load every kernel once per process (never on a request path)."""
    global _warmed
    with _warm_lock:
        if not _warmed:
            K.warm_up()
            _warmed = True


@dataclass(frozen=True, slots=True)
class Leg:
    """A piece of one edge: from ``start`` to ``end`` (fractions of the edge's length)."""

    edge: int
    start: float
    end: float


@dataclass
class Step:
    name: str
    distance_m: float
    duration_s: float
    location: list[float]  # [lon, lat] where the step starts

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "distance_m": round(self.distance_m, 1),
                "duration_s": round(self.duration_s, 1), "location": self.location}


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
    """A found route. ``duration_s`` and ``distance_m`` are both given whatever the metric."""

    duration_s: float
    distance_m: float
    cost: float
    metric: str
    edges: list[int]
    osm_nodes: list[int]
    coordinates: list[list[float]]  # [[lon, lat], ...]
    steps: list[Step]
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

    @property
    def reachable(self) -> bool:
        return True

    @property
    def eta_priority_s(self) -> float:
        """ETA with this profile's driving (lights and sirens for an ambulance)."""
        return self.duration_s

    @property
    def geometry(self) -> dict[str, Any]:
        """GeoJSON LineString, ``[lon, lat]`` order."""
        return {"type": "LineString", "coordinates": self.coordinates}

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "profile": self.profile,
            "metric": self.metric,
            "weights_version": self.weights_version,
            "duration_s": round(self.duration_s, 2),
            "eta_s": {"priority": round(self.duration_s, 2),
                      "normal": None if self.eta_normal_s is None
                      else round(self.eta_normal_s, 2)},
            "contraflow_edges": self.contraflow_edges,
            "distance_m": round(self.distance_m, 2),
            "osm_nodes": self.osm_nodes,
            "edges": self.edges,
            "geometry": self.geometry,
            "steps": [s.to_dict() for s in self.steps],
            "signals": [s.to_dict() for s in self.signals],
            "origin": _snap_dict(self.origin),
            "destination": _snap_dict(self.destination),
            "attribution": ATTRIBUTION,
            **self.extra,
        }


@dataclass
class Unreachable:
    """Both points are on the road network, but no allowed path joins them."""

    origin: Snap
    destination: Snap
    metric: str
    profile: str = "car"
    weights_version: int = 0
    reason: str = ("no path joins origin and destination for this vehicle: the network is "
                   "split here (disconnected roads, one-way streets, access restrictions or "
                   "closures)")
    status: str = "unreachable"

    @property
    def reachable(self) -> bool:
        return False

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "profile": self.profile, "metric": self.metric,
                "weights_version": self.weights_version, "reason": self.reason,
                "origin": _snap_dict(self.origin),
                "destination": _snap_dict(self.destination), "attribution": ATTRIBUTION}


def _snap_dict(s: Snap) -> dict[str, Any]:
    return {"location": s.location(), "input": [s.input_lon, s.input_lat],
            "snap_distance_m": round(s.distance_m, 1), "edge": s.edge}


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
        return {"type": "Feature", "geometry": shapely.geometry.mapping(hull),
                "properties": {"limit": self.limit, "metric": self.metric,
                               "nodes": len(self.nodes), "attribution": ATTRIBUTION}}


class Router:
    """Shortest paths over one :class:`RoadGraph`.

    Parameters
    ----------
    graph
        The compiled graph.
    snap_radius_m
        A point farther than this from every usable road is rejected as off the network.
    warm_up
        Compile the kernels now (default): a request must never pay the JIT.

    Notes
    -----
    Safe to share between threads: search workspaces are per thread; matrix calls are
    serialised (numba's default threading layer is not re-entrant).
    """

    def __init__(self, graph: RoadGraph, *, snap_radius_m: float = 500.0,
                 overlay: TrafficOverlay | None = None, cch: bool | CCHIndex = True,
                 warm_up: bool = True) -> None:
        self.graph = graph
        self.snap_radius_m = float(snap_radius_m)
        K.validate_graph(graph.first_out, graph.head, graph.tail, graph.first_in,
                         graph.in_edge)
        self.snapper = overlay.snapper if overlay is not None else Snapper(graph)
        self.overlay = overlay if overlay is not None else TrafficOverlay(graph,
                                                                          snapper=self.snapper)
        self._local = threading.local()
        self._matrix_lock = threading.Lock()
        self._factors: dict[int, float] = {}
        self._snaps: dict[tuple, tuple[np.ndarray, Snap]] = {}
        self._along_frac = _along_fraction(graph)
        # Customizable Contraction Hierarchy: built (or loaded from the cache) once per map,
        # customized per profile and traffic state; queries in microseconds
        self.cch = cch if isinstance(cch, CCHIndex) else (
            CCHIndex.load_or_build(graph) if cch else None)
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
                at: datetime | None = None, contraflow: bool = False) -> Weights:
        """The weights a query would use now (or ``at``): profile + live traffic."""
        return self.overlay.weights(profile, metric, at=at,
                                    options=ProfileOptions(contraflow=contraflow))

    def _workspaces(self) -> tuple[K.Workspace, K.Workspace]:
        ws = getattr(self._local, "ws", None)
        if ws is None:
            n = self.graph.n_nodes
            ws = self._local.ws = (K.Workspace.for_graph(n), K.Workspace.for_graph(n))
        return ws

    def _resolve(self, profile: str, metric: Metric, weights: Weights | np.ndarray | None,
                 at: datetime | None, contraflow: bool) -> Weights:
        """The :class:`Weights` of a query: given, wrapped from an array, or from the overlay."""
        if isinstance(weights, Weights):
            return weights
        if weights is None:
            return self.weights(profile, metric, at=at, contraflow=contraflow)
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (self.graph.n_edges,):
            raise ValueError(f"weights must have one entry per edge "
                             f"({self.graph.n_edges}), got shape {w.shape}")
        K.validate_weight(w, self.graph.n_edges)  # O(m), as building the usable mask is
        base = self.weights(profile, "time", at=at, contraflow=contraflow)
        return Weights.build(w, profile=profile, metric=metric, version=-1,
                             normal_time=base.normal_time,
                             time=w if metric == "time" else base.time)

    def _snap(self, lat: object, lon: object, *, usable: np.ndarray, radius_m: float,
              what: str) -> Snap:
        """Snap with a small cache: hospitals, stations and ambulances snap again and again."""
        try:
            key = (float(lat), float(lon), id(usable), radius_m)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            key = None
        if key is not None:
            hit = self._snaps.get(key)
            if hit is not None and hit[0] is usable:
                return hit[1]
        snap = self.snapper.snap(lat, lon, usable=usable, radius_m=radius_m, what=what)
        if key is not None:
            if len(self._snaps) >= 4096:
                self._snaps.clear()
            self._snaps[key] = (usable, snap)
        return snap

    def _astar_factor(self, w: Weights) -> float:
        key = id(w.values)
        factor = self._factors.get(key)
        if factor is None:
            g = self.graph
            factor = K.astar_factor(w.values, g.tail, g.head, g.lat, g.lon)
            if len(self._factors) > 64:
                self._factors.clear()
            self._factors[key] = factor
        return factor

    def snap(self, point: Coordinate, *, profile: str = "car", metric: Metric = "time",
             weights: Weights | np.ndarray | None = None, at: datetime | None = None,
             what: str = "coordinate") -> Snap:
        """Snap a ``(lat, lon)`` to the nearest road usable with these weights."""
        usable = self._resolve(profile, metric, weights, at, False).snappable
        lat, lon = _pair(point, what)
        return self._snap(lat, lon, usable=usable, radius_m=self.snap_radius_m,
                                 what=what)

    @staticmethod
    def _sources(s: Snap, w: np.ndarray, head: np.ndarray) -> list[tuple[int, float, Leg]]:
        """Nodes a search may start from, leaving the snapped point along its edge(s)."""
        out = []
        for edge, twin, f in s.positions():
            if np.isfinite(w[edge]):
                out.append((int(head[edge]), (1.0 - f) * w[edge], Leg(edge, f, 1.0)))
            if twin >= 0 and np.isfinite(w[twin]):
                out.append((int(head[twin]), f * w[twin], Leg(twin, 1.0 - f, 1.0)))
        return out

    @staticmethod
    def _targets(s: Snap, w: np.ndarray, tail: np.ndarray) -> list[tuple[int, float, Leg]]:
        """Nodes a search may end at, then driving along the edge to the snapped point."""
        out = []
        for edge, twin, f in s.positions():
            if np.isfinite(w[edge]):
                out.append((int(tail[edge]), f * w[edge], Leg(edge, 0.0, f)))
            if twin >= 0 and np.isfinite(w[twin]):
                out.append((int(tail[twin]), (1.0 - f) * w[twin], Leg(twin, 0.0, 1.0 - f)))
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
        contraflow
            Ambulance only: allow driving against one-way streets, with a penalty.
        weights
            Weights replacing the overlay's (a :class:`~engine.profiles.Weights` or a bare
            per-edge array; ``inf`` closes an edge).
        algorithm
            ``"bidirectional"`` (default, fastest here), ``"dijkstra"`` or ``"astar"``.

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
        W = self._resolve(profile, metric, weights, at, contraflow)
        w, usable = W.values, W.snappable
        lat_o, lon_o = _pair(origin, "origin")
        lat_d, lon_d = _pair(destination, "destination")
        o = self._snap(lat_o, lon_o, usable=usable, radius_m=self.snap_radius_m,
                              what="origin")
        d = self._snap(lat_d, lon_d, usable=usable, radius_m=self.snap_radius_m,
                              what="destination")
        g = self.graph
        src = self._sources(o, w, g.head)
        dst = self._targets(d, w, g.tail)
        direct_cost, direct_leg = self._direct(o, d, w)
        cost, legs = np.inf, None
        if src and dst:
            seeds = np.array([s[0] for s in src], dtype=np.int32)
            seed_cost = np.array([s[1] for s in src])
            targets = np.array([t[0] for t in dst], dtype=np.int32)
            target_cost = np.array([t[1] for t in dst])
            cost, path = self._search(algorithm, W, seeds, seed_cost, targets, target_cost)
            if np.isfinite(cost):
                start = int(g.tail[path[0]]) if len(path) else None
                end = int(g.head[path[-1]]) if len(path) else None
                first = _pick(src, start, cost, path, w, dst, end, seeds=True)
                last = _pick(dst, end, cost, path, w, src, start, seeds=False)
                legs = (np.concatenate([[first.edge], path, [last.edge]]).astype(np.int64),
                        np.concatenate([[first.start], np.zeros(len(path)), [last.start]]),
                        np.concatenate([[first.end], np.ones(len(path)), [last.end]]))
        if direct_cost <= cost and direct_leg is not None:
            leg = direct_leg
            cost, legs = direct_cost, (np.array([leg.edge]), np.array([leg.start]),
                                       np.array([leg.end]))
        if legs is None or not np.isfinite(cost):
            return Unreachable(o, d, metric, profile=W.profile, weights_version=W.version)
        return self._assemble(*legs, cost, W, o, d)

    def _search(self, algorithm: str, W: Weights, seeds: np.ndarray, seed_cost: np.ndarray,
                targets: np.ndarray, target_cost: np.ndarray) -> tuple[float, np.ndarray]:
        g = self.graph
        w = W.values
        ws, ws2 = self._workspaces()
        if algorithm == "cch":
            return self.cch.query(self._cch_metrics.get(W), seeds, seed_cost, targets,
                                  target_cost)
        if algorithm == "bidirectional":
            cost, meet = K.bidirectional_dijkstra(g.first_out, g.head, g.first_in, g.in_edge,
                                                  g.tail, w, seeds, seed_cost, targets,
                                                  target_cost, ws, ws2)
            if not np.isfinite(cost):
                return cost, np.zeros(0, dtype=np.int32)
            return cost, K.bidirectional_path_edges(ws, ws2, g.tail, g.head, meet)
        if algorithm == "astar":
            factor = self._astar_factor(W)
            cost, ti = K.astar(g.first_out, g.head, w, g.lat, g.lon, seeds, seed_cost, targets,
                               target_cost, factor, ws)
        else:
            cost, ti = K.dijkstra(g.first_out, g.head, w, seeds, seed_cost, targets,
                                  target_cost, ws)
        if ti < 0:
            return np.inf, np.zeros(0, dtype=np.int32)
        return cost, K.path_edges(ws.pred_edge, g.tail, int(targets[ti]))

    def _assemble(self, E: np.ndarray, S: np.ndarray, T: np.ndarray, cost: float,
                  W: Weights, o: Snap, d: Snap) -> Route:
        """Turn legs (edge ``E[k]`` from fraction ``S[k]`` to ``T[k]``) into a :class:`Route`,
        vectorised over every geometry point of the path."""
        g = self.graph
        keep_leg = T > S
        if not keep_leg.any():  # origin and destination at the same point
            keep_leg[0] = True
        E, S, T = E[keep_leg], S[keep_leg], T[keep_leg]
        span = T - S
        time_w = W.time
        leg_len = g.length_m[E] * span
        leg_time = time_w[E] * span
        before = np.concatenate([[0.0], np.cumsum(leg_time)[:-1]])
        before_m = np.concatenate([[0.0], np.cumsum(leg_len)[:-1]])
        # every geometry entry of every leg's edge, with its position along the edge
        lo, hi = g.geom_offset[E], g.geom_offset[E + 1]
        counts = hi - lo
        leg_of = np.repeat(np.arange(len(E)), counts)
        entry = np.arange(int(counts.sum())) + np.repeat(lo - np.cumsum(counts) + counts, counts)
        pos = self._along_frac[entry]
        inside = (pos >= S[leg_of] - 1e-12) & (pos <= T[leg_of] + 1e-12)
        pts = g.geom_point[entry[inside]]
        legk = leg_of[inside]
        t_at = before[legk] + (pos[inside] - S[legk]) * time_w[E[legk]]
        m_at = before_m[legk] + (pos[inside] - S[legk]) * g.length_m[E[legk]]
        # consecutive legs share their junction: keep it once
        dup = np.zeros(len(pts), dtype=bool)
        dup[1:] = pts[1:] == pts[:-1]
        pts, t_at, m_at = pts[~dup], t_at[~dup], m_at[~dup]

        lon, lat = g.point_lon[pts], g.point_lat[pts]
        coords = [o.location()]
        coords += np.stack([lon, lat], axis=1).tolist()
        coords.append(d.location())
        coords = [c for k, c in enumerate(coords) if k == 0 or c != coords[k - 1]]
        if len(coords) == 1:
            coords.append(coords[0])
        # OSM nodes: as OSRM, the nodes of every segment touched (incl. around the snaps)
        node_pts = pts
        first_entry = entry[leg_of == 0]
        last_entry = entry[leg_of == len(E) - 1]
        if len(first_entry) and S[0] > 0:
            k = np.searchsorted(self._along_frac[first_entry], S[0], side="left") - 1
            if k >= 0 and (not len(pts) or g.geom_point[first_entry[k]] != pts[0]):
                node_pts = np.concatenate([[g.geom_point[first_entry[k]]], node_pts])
        if len(last_entry) and T[-1] < 1:
            k = np.searchsorted(self._along_frac[last_entry], T[-1], side="right")
            if k < len(last_entry) and (not len(pts) or g.geom_point[last_entry[k]] != pts[-1]):
                node_pts = np.concatenate([node_pts, [g.geom_point[last_entry[k]]]])
        ids = g.point_osm_id[node_pts]
        ids = ids[ids >= 0]
        if len(ids):
            ids = ids[np.concatenate([[True], ids[1:] != ids[:-1]])]
        # traffic signals reached after the start (barrier copies share an OSM id)
        sig = np.flatnonzero(g.point_signal[pts] & (t_at > 0))
        signals: list[Signal] = []
        for k in sig:
            oid = int(g.point_osm_id[pts[k]])
            if not signals or signals[-1].osm_id != oid:
                prev = (lat[k - 1], lon[k - 1]) if k > 0 else (o.lat, o.lon)
                nxt = (lat[k + 1], lon[k + 1]) if k + 1 < len(pts) else (d.lat, d.lon)
                signals.append(Signal(oid, float(lat[k]), float(lon[k]), float(t_at[k]),
                                      float(m_at[k]), bearing(*prev, lat[k], lon[k]),
                                      bearing(lat[k], lon[k], *nxt)))
        # steps: consecutive legs on the same street name
        name_ids = g.name_id[E]
        starts = np.flatnonzero(np.concatenate([[True], name_ids[1:] != name_ids[:-1]]))
        dist_sum = np.add.reduceat(leg_len, starts)
        time_sum = np.add.reduceat(leg_time, starts)
        steps = []
        for k, a in enumerate(starts):
            loc = o.location() if a == 0 else [float(g.lon[g.tail[E[a]]]),
                                               float(g.lat[g.tail[E[a]]])]
            steps.append(Step(str(g.names[name_ids[a]]), float(dist_sum[k]),
                              float(time_sum[k]), loc))
        return Route(duration_s=float(leg_time.sum()), distance_m=float(leg_len.sum()),
                     cost=float(cost), metric=W.metric, edges=E.tolist(), osm_nodes=ids.tolist(),
                     coordinates=coords, steps=steps, signals=signals, origin=o, destination=d,
                     profile=W.profile, weights_version=W.version,
                     eta_normal_s=float((W.normal_time[E] * span).sum()),
                     contraflow_edges=int(((g.flags[E] & np.uint32(F_AGAINST_ONEWAY)) != 0).sum()))

    # ------------------------------------------------------------------ many
    def _groups(self, snaps: Sequence[Snap], w: np.ndarray, *, sources: bool
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        first, nodes, costs = [0], [], []
        for s in snaps:
            entries = (self._sources(s, w, self.graph.head) if sources
                       else self._targets(s, w, self.graph.tail))
            nodes.extend(x[0] for x in entries)
            costs.extend(x[1] for x in entries)
            first.append(len(nodes))
        return (np.array(first, dtype=np.int32), np.array(nodes, dtype=np.int32),
                np.array(costs, dtype=np.float64))

    def _snap_all(self, points: Sequence[Coordinate], usable: np.ndarray, what: str
                  ) -> list[Snap]:
        return [self._snap(*_pair(p, f"{what} {i}"), usable=usable,
                                  radius_m=self.snap_radius_m, what=f"{what} {i}")
                for i, p in enumerate(points)]

    def table(
        self,
        sources: Sequence[Coordinate],
        destinations: Sequence[Coordinate] | None = None,
        *,
        profile: str = "car",
        metric: Metric = "time",
        at: datetime | None = None,
        contraflow: bool = False,
        weights: Weights | np.ndarray | None = None,
    ) -> Table:
        """Cost matrix from every source to every destination (``inf`` where no path)."""
        W = self._resolve(profile, metric, weights, at, contraflow)
        w = W.values
        destinations = sources if destinations is None else destinations
        if not len(sources) or not len(destinations):
            raise ValueError("a table needs at least one source and one destination")
        src = self._snap_all(sources, W.snappable, "source")
        dst = self._snap_all(destinations, W.snappable, "destination")
        sf, sn, sc = self._groups(src, w, sources=True)
        tf, tn, tc = self._groups(dst, w, sources=False)
        ws, _ = self._workspaces()
        g = self.graph
        if self.cch is not None:
            values = self.cch.many_to_many(self._cch_metrics.get(W), sf, sn, sc, tf, tn, tc)
        else:
            with self._matrix_lock:
                values = K.many_to_many(g.first_out, g.head, w, sf, sn, sc, tf, tn, tc, ws)
        for i, o in enumerate(src):  # same road piece: driving straight may be shorter
            for j, d in enumerate(dst):
                values[i, j] = min(values[i, j], self._direct(o, d, w)[0])
        return Table(values, W.metric, src, dst, profile=W.profile, weights_version=W.version)

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
        weights: Weights | np.ndarray | None = None,
    ) -> tuple[int, Route | Unreachable]:
        """The candidate reached fastest from ``origin`` (``direction="from"``, e.g. which
        hospital) or reaching ``origin`` fastest (``"to"``, e.g. which ambulance), with the
        route. One multi-target (or multi-source) search, not one search per candidate.
        Returns ``(-1, Unreachable)`` when none connects.
        """
        if not len(candidates):
            raise ValueError("closest() needs at least one candidate")
        if direction not in ("from", "to"):
            raise ValueError(f"direction must be 'from' or 'to', got {direction!r}")
        W = self._resolve(profile, metric, weights, at, contraflow)
        w = W.values
        snap = self._snap_all([origin], W.snappable, "origin")[0]
        others = self._snap_all(candidates, W.snappable, "candidate")
        sf, sn, sc = self._groups([snap] if direction == "from" else others, w,
                                  sources=True)
        tf, tn, tc = self._groups(others if direction == "from" else [snap], w,
                                  sources=False)
        g = self.graph
        best_i, best_cost = -1, np.inf
        if self.cch is not None:
            cost, _, si, ti = self.cch.nearest(self._cch_metrics.get(W), sn, sc, tn, tc)
            if ti >= 0:
                group = (np.searchsorted(tf, ti, side="right") - 1 if direction == "from"
                         else np.searchsorted(sf, si, side="right") - 1)
                best_i, best_cost = int(group), float(cost)
        else:
            ws, _ = self._workspaces()
            cost, ti = K.dijkstra(g.first_out, g.head, w, sn, sc, tn, tc, ws)
            if ti >= 0:
                path = K.path_edges(ws.pred_edge, g.tail, int(tn[ti]))
                root = int(g.tail[path[0]]) if len(path) else int(tn[ti])
                group = (np.searchsorted(tf, ti, side="right") - 1 if direction == "from"
                         else _group_of_seed(sf, sn, sc, root, ws.dist))
                best_i, best_cost = int(group), float(cost)
        for i, other in enumerate(others):  # same road piece as the origin
            pair = (snap, other) if direction == "from" else (other, snap)
            c = self._direct(*pair, w)[0]
            if c < best_cost:
                best_i, best_cost = i, c
        if best_i < 0:
            return -1, Unreachable(snap, others[0], W.metric, profile=W.profile,
                                   weights_version=W.version,
                                   reason="no candidate is connected to the origin")
        pair = (origin, candidates[best_i]) if direction == "from" else \
            (candidates[best_i], origin)
        return best_i, self.route(*pair, weights=W)

    def isochrone(
        self,
        origins: Coordinate | Sequence[Coordinate],
        limit: float,
        *,
        profile: str = "car",
        metric: Metric = "time",
        at: datetime | None = None,
        contraflow: bool = False,
        weights: Weights | np.ndarray | None = None,
    ) -> Isochrone:
        """Every node reachable within ``limit`` seconds (or metres) from one origin or from
        the nearest of several (stations: coverage)."""
        if not np.isfinite(limit) or limit < 0:
            raise ValueError(f"isochrone limit must be a finite number >= 0, got {limit}")
        W = self._resolve(profile, metric, weights, at, contraflow)
        many = len(origins) > 0 and isinstance(origins[0], Sequence | np.ndarray)
        snaps = self._snap_all(origins if many else [origins], W.snappable, "origin")
        _, seeds, seed_cost = self._groups(snaps, W.values, sources=True)
        ws, _ = self._workspaces()
        g = self.graph
        nodes, costs = K.isochrone(g.first_out, g.head, W.values, seeds, seed_cost,
                                   float(limit), ws)
        return Isochrone(float(limit), W.metric, nodes, costs, g.lat[nodes], g.lon[nodes],
                         snaps[0], origins=snaps, weights_version=W.version)


# ---------------------------------------------------------------------------- small helpers
def _pair(point: object, what: str) -> tuple[float, float]:
    from engine.errors import InvalidCoordinate

    try:
        lat, lon = point  # type: ignore[misc]
    except (TypeError, ValueError) as exc:
        raise InvalidCoordinate(f"{what}: expected a (lat, lon) pair, got {point!r}") from exc
    return lat, lon


def bearing(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial great-circle bearing from point 1 to point 2, degrees clockwise from north."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dl = np.radians(lon2 - lon1)
    x = np.sin(dl) * np.cos(p2)
    y = np.cos(p1) * np.sin(p2) - np.sin(p1) * np.cos(p2) * np.cos(dl)
    return float(np.degrees(np.arctan2(x, y)) % 360.0)


def _along_fraction(graph: RoadGraph) -> np.ndarray:
    """Position (0..1 of the edge's length) of every geometry entry along its edge."""
    gp = graph.geom_point
    seg = np.zeros(len(gp))
    if len(gp) > 1:
        seg[1:] = haversine_m(graph.point_lat[gp[:-1]], graph.point_lon[gp[:-1]],
                              graph.point_lat[gp[1:]], graph.point_lon[gp[1:]])
    seg[graph.geom_offset[:-1]] = 0.0  # no segment across two edges
    cum = np.cumsum(seg)
    edge_of = np.repeat(np.arange(graph.n_edges), np.diff(graph.geom_offset))
    along = cum - cum[graph.geom_offset[:-1]][edge_of]
    total = along[graph.geom_offset[1:] - 1][edge_of]
    return np.where(total > 0, along / np.where(total > 0, total, 1.0),
                    (np.arange(len(gp)) > graph.geom_offset[:-1][edge_of]).astype(float))


def _pick(entries: list[tuple[int, float, Leg]], node: int | None, cost: float,
          path: np.ndarray, w: np.ndarray, others: list[tuple[int, float, Leg]],
          other_node: int | None, *, seeds: bool) -> Leg:
    """Which seed (or target) entry the search used: the one at the path's end node whose
    offset makes the total equal the reported cost (two entries can share a node)."""
    inner = float(w[path].sum()) if len(path) else 0.0
    best, best_err = None, np.inf
    for n, c, leg in entries:
        if node is not None and n != node:
            continue
        for n2, c2, _ in others:
            if other_node is not None and n2 != other_node:
                continue
            if node is None and n2 != n:
                continue
            err = abs(c + c2 + inner - cost)
            if err < best_err:
                best, best_err = leg, err
    assert best is not None, "search result does not match its seeds/targets"
    return best


def _group_of_seed(first: np.ndarray, nodes: np.ndarray, costs: np.ndarray, root: int,
                   dist: np.ndarray) -> int:
    """The seed group whose entry at ``root`` gave ``root`` its distance."""
    for k in np.flatnonzero(nodes == root):
        if costs[k] == dist[root]:
            return int(np.searchsorted(first, k, side="right") - 1)
    return int(np.searchsorted(first, int(np.flatnonzero(nodes == root)[0]), side="right") - 1)
