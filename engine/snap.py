"""Snapping: a coordinate to the nearest point on the nearest usable road *edge*.

Snapping to edges rather than nodes matters for ambulances: a call on a long avenue must not
start 300 m away at the next junction, and a one-way street's direction must be respected from
the exact point. Segments are indexed in a uniform grid in a local metric projection (Numba,
:mod:`engine.kernels.nearest`: ~30 µs a snap); a shapely STRtree over the same segments serves
geometry queries (which roads a closure polygon or line touches).

A snap must also never strand an incident: the nearest road may lie in a small piece of
network the vehicle cannot leave or enter (a private lane, a parking aisle, a one-way stub at
the extract's border, a neighbourhood cut off by a closure). :func:`reachability` tells, for
one weights snapshot, which roads connect to the *main network* (the largest strongly
connected piece of the turn graph under those weights); the router then falls back to the
nearest road that does, and says why (OSRM likewise keeps a nearest snap and a nearest snap
in a big component).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import shapely

from engine.errors import InvalidCoordinate, PointOffNetwork
from engine.graph import EARTH_RADIUS_M, RoadGraph, haversine_m, haversine_one
from engine.kernels import reachable
from engine.kernels.nearest import build_grid, nearest_edges, nearest_segments
from engine.turns import TurnGraph


@dataclass(frozen=True, slots=True)
class Snap:
    """Where a coordinate lands on the network.

    ``edge`` runs in its geometry's direction; ``fraction`` (0..1, by length) is the position
    along it. The router also uses ``twin`` (the reverse edge) when the road is two-way.
    """

    edge: int
    twin: int
    fraction: float
    lat: float
    lon: float
    distance_m: float
    input_lat: float
    input_lon: float
    #: other positions exactly as near, as ``(edge, twin, fraction)``: a point on a junction
    #: or on a bollard touches several road ends, and a route may use any of them
    ties: tuple[tuple[int, int, float], ...] = ()
    #: why this is not the nearest road (it was not connected to the main network for the
    #: vehicle), in words for the dispatcher; ``None`` when it is the nearest road
    fallback: str | None = None
    #: the geometry segment the snap lies on, as two point indices (``RoadGraph.point_*``)
    #: in the direction of the road's geometry (OSRM's ``nodes`` of a nearest answer)
    segment: tuple[int, int] = (-1, -1)

    def positions(self) -> list[tuple[int, int, float]]:
        """Every ``(edge, twin, fraction)`` this snap stands for."""
        return [(self.edge, self.twin, self.fraction), *self.ties]

    def location(self) -> list[float]:
        """GeoJSON order: ``[lon, lat]``."""
        return [self.lon, self.lat]


def validate_coordinate(lat: object, lon: object, *,
                        what: str = "coordinate") -> tuple[float, float]:
    """Check a (lat, lon) pair: numbers, finite, in range. Raise :class:`InvalidCoordinate`."""
    try:
        flat, flon = float(lat), float(lon)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise InvalidCoordinate(f"{what}: ({lat!r}, {lon!r}) is not a pair of numbers") from exc
    if not (math.isfinite(flat) and math.isfinite(flon)):
        raise InvalidCoordinate(f"{what}: latitude/longitude must be finite, got ({lat}, {lon})")
    if not -90.0 <= flat <= 90.0:
        raise InvalidCoordinate(f"{what}: latitude {flat} is outside [-90, 90]")
    if not -180.0 <= flon <= 180.0:
        raise InvalidCoordinate(f"{what}: longitude {flon} is outside [-180, 180]")
    return flat, flon


#: Grid cell of the snapping index (metres): segments are cut to this length at most.
GRID_CELL_M = 64.0


class Snapper:
    """Nearest-edge index over a :class:`RoadGraph`'s geometry.

    Each two-way road piece is indexed once; the snap gives both directions.
    """

    def __init__(self, graph: RoadGraph) -> None:
        self.graph = graph
        e_ids = np.arange(graph.n_edges)
        keep = (graph.twin < 0) | (e_ids < graph.twin)
        edges = e_ids[keep]
        counts = np.diff(graph.geom_offset)[edges] - 1  # segments per indexed edge
        starts = graph.geom_offset[:-1][edges]
        seg_edge = np.repeat(edges, counts)
        seg_first = np.arange(int(counts.sum())) + np.repeat(starts - np.cumsum(counts) + counts,
                                                             counts)
        a = graph.geom_point[seg_first]
        b = graph.geom_point[seg_first + 1]
        self._lat0 = float(np.mean(graph.point_lat)) if len(graph.point_lat) else 0.0
        self._lon0 = float(np.mean(graph.point_lon)) if len(graph.point_lon) else 0.0
        self._kx = EARTH_RADIUS_M * math.cos(math.radians(self._lat0)) * math.pi / 180.0
        self._ky = EARTH_RADIUS_M * math.pi / 180.0
        ax, ay = self._project(graph.point_lat[a], graph.point_lon[a])
        bx, by = self._project(graph.point_lat[b], graph.point_lon[b])
        self.seg_edge = seg_edge
        self.seg_a, self.seg_b = a, b
        self.ax, self.ay, self.bx, self.by = ax, ay, bx, by
        seg_len = haversine_m(graph.point_lat[a], graph.point_lon[a],
                              graph.point_lat[b], graph.point_lon[b])
        self.seg_len = seg_len
        # length along the edge before each segment
        cum = np.cumsum(seg_len)
        edge_start = np.repeat(np.cumsum(counts) - counts, counts)
        before = cum - seg_len
        self.seg_before = before - np.concatenate([[0.0], cum])[edge_start]
        self._grid = build_grid(ax, ay, bx, by, GRID_CELL_M)
        self._all = np.ones(graph.n_edges, dtype=bool)
        self._all.flags.writeable = False
        # compile (or load from numba's cache) the k-nearest kernel for these arrays now, not
        # in the first request that asks for it
        nearest_edges(self._grid, 0.0, 0.0, 0.0, self.seg_edge, graph.twin, self._all, 1)
        #: every edge (a mask for "the nearest road of any kind")
        self.everything = self._all
        self._tree: shapely.STRtree | None = None

    @property
    def tree(self) -> shapely.STRtree:
        """An STRtree of the segments, for geometric queries (closures by area or line);
        built on first use. Point snapping uses the faster grid."""
        if self._tree is None:
            coords = np.stack([np.stack([self.ax, self.ay], 1), np.stack([self.bx, self.by], 1)],
                              axis=1)
            self._tree = shapely.STRtree(np.asarray(shapely.linestrings(coords)))
        return self._tree

    def _project(self, lat: np.ndarray | float, lon: np.ndarray | float
                 ) -> tuple[np.ndarray, np.ndarray]:
        return ((np.asarray(lon) - self._lon0) * self._kx,
                (np.asarray(lat) - self._lat0) * self._ky)

    def _project_point(self, lat: float, lon: float) -> tuple[float, float]:
        """:meth:`_project` of one point, in Python floats (the same IEEE operations)."""
        return (lon - self._lon0) * self._kx, (lat - self._lat0) * self._ky

    def snap(
        self,
        lat: float,
        lon: float,
        *,
        usable: np.ndarray | None = None,
        radius_m: float = 500.0,
        what: str = "coordinate",
    ) -> Snap:
        """Snap ``(lat, lon)`` to the nearest edge usable in at least one direction.

        Parameters
        ----------
        usable
            Boolean mask over edges (e.g. finite weight for the profile); ``None`` = all.
        radius_m
            Farther than this from every usable road, the point is off the network.

        Raises
        ------
        InvalidCoordinate, PointOffNetwork
        """
        lat, lon = validate_coordinate(lat, lon, what=what)
        px, py = self._project_point(lat, lon)
        g = self.graph
        mask = self._all if usable is None else usable
        segs, ts, _ = nearest_segments(self._grid, px, py, radius_m, self.seg_edge, g.twin,
                                        mask)
        if len(segs) == 0:
            nearest = self.tree.query_nearest(shapely.Point(float(px), float(py)),
                                              return_distance=True)
            dist = float(nearest[1][0]) if len(nearest[1]) else float("inf")
            qualifier = "" if usable is None else " usable by this vehicle"
            raise PointOffNetwork(
                f"{what} ({lat:.6f}, {lon:.6f}) is off the road network: no road{qualifier} "
                f"within {radius_m:.0f} m (nearest road of any kind: {dist:.0f} m)",
                distance_m=dist, radius_m=radius_m,
            )
        seg, tk = int(segs[0]), float(ts[0])
        slat, slon = self._point(seg, tk)
        positions = []
        for sj, tj in zip(segs.tolist(), ts.tolist(), strict=True):  # ties within a millimetre
            edge = int(self.seg_edge[sj])
            positions.append((edge, int(g.twin[edge]), self._fraction(sj, tj)))
        positions = list(dict.fromkeys(positions))
        distance = haversine_one(lat, lon, slat, slon)
        edge, twin, fraction = positions[0]
        return Snap(edge, twin, fraction, slat, slon, distance, lat, lon,
                    tuple(positions[1:]), segment=self._segment(seg))

    def nearest(
        self,
        lat: float,
        lon: float,
        k: int = 1,
        *,
        usable: np.ndarray | None = None,
        radius_m: float = 500.0,
        what: str = "coordinate",
    ) -> list[Snap]:
        """The ``k`` nearest road pieces usable in at least one direction, nearest first:
        one snap per piece (a two-way road is one piece), on its nearest segment.

        Parameters
        ----------
        k
            How many pieces at most (fewer when fewer lie within ``radius_m``).
        usable
            Boolean mask over edges; ``None`` = all.
        radius_m
            Pieces farther than this are left out (an empty list: the point is off the
            network).

        Raises
        ------
        InvalidCoordinate
        """
        lat, lon = validate_coordinate(lat, lon, what=what)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        px, py = self._project_point(lat, lon)
        g = self.graph
        mask = self._all if usable is None else usable
        segs, ts, _ = nearest_edges(self._grid, px, py, radius_m, self.seg_edge, g.twin, mask,
                                    k)
        out = []
        for seg, t in zip(segs.tolist(), ts.tolist(), strict=True):
            edge = int(self.seg_edge[seg])
            slat, slon = self._point(seg, t)
            out.append(Snap(edge, int(g.twin[edge]), self._fraction(seg, t), slat, slon,
                            haversine_one(lat, lon, slat, slon), lat, lon,
                            segment=self._segment(seg)))
        return out

    def _point(self, seg: int, t: float) -> tuple[float, float]:
        """``(lat, lon)`` at ``t`` (0..1) along segment ``seg``."""
        g = self.graph
        sa, sb = self.seg_a[seg], self.seg_b[seg]
        return (float(g.point_lat[sa] + t * (g.point_lat[sb] - g.point_lat[sa])),
                float(g.point_lon[sa] + t * (g.point_lon[sb] - g.point_lon[sa])))

    def _segment(self, seg: int) -> tuple[int, int]:
        return int(self.seg_a[seg]), int(self.seg_b[seg])

    def _fraction(self, seg: int, t: float) -> float:
        """Position along the segment's edge (0..1), exact at the edge's ends."""
        edge = self.seg_edge[seg]
        length = float(self.graph.length_m[edge])
        if length <= 0:
            return 0.0
        fraction = float(self.seg_before[seg] + t * self.seg_len[seg]) / length
        if fraction < 1e-9:
            return 0.0
        if fraction > 1.0 - 1e-9:
            return 1.0
        return fraction


# ------------------------------------------------------------------------------ main network
@dataclass(frozen=True, eq=False)
class Reachability:
    """Which roads connect to the main network under one weights snapshot.

    ``leave[e]``: a vehicle on road ``e`` (driving its direction) can reach the main network;
    ``enter[e]``: road ``e`` can be reached from it. The main network is the largest strongly
    connected piece of the turn graph whose arcs have a finite weight.
    """

    leave: np.ndarray
    enter: np.ndarray
    main_nodes: int
    anchor: int

    def can_leave(self, snap: Snap) -> bool:
        return any(self.leave[e] or (t >= 0 and self.leave[t]) for e, t, _ in snap.positions())

    def can_enter(self, snap: Snap) -> bool:
        return any(self.enter[e] or (t >= 0 and self.enter[t]) for e, t, _ in snap.positions())


def reachability(turns: TurnGraph, arc: np.ndarray, road: np.ndarray, *,
                 anchor: int | None = None, in_tail: np.ndarray | None = None,
                 min_share: float = 0.5) -> Reachability:
    """Main-network membership of every road for turn-arc weights ``arc`` and road weights
    ``road`` (both ``inf`` where closed).

    Two breadth-first searches from ``anchor`` (a node of the main network under free-flow
    weights, kept by the caller) give the main network as the nodes both reached and
    reaching; when live closures cut the anchor off (its piece holds fewer than ``min_share``
    of the nodes last time), the strongly connected components are computed in full (scipy)
    and the largest one is used.
    """
    in_tail = turns.tail[turns.in_arc] if in_tail is None else in_tail
    arc_ids = np.arange(turns.n_edges, dtype=np.int32)

    def sweep(start: int) -> tuple[np.ndarray, np.ndarray]:
        fwd = reachable(turns.first_out, turns.head, arc_ids, arc, start)
        bwd = reachable(turns.first_in, in_tail, turns.in_arc, arc, start)
        return fwd, bwd

    fwd = bwd = None
    if anchor is not None:
        fwd, bwd = sweep(anchor)
        if (fwd & bwd).sum() < min_share * turns.n_nodes * _usable_share(arc, turns):
            fwd = None
    if fwd is None or bwd is None:
        anchor = _largest_component_node(turns, arc)
        fwd, bwd = sweep(anchor)
    m = turns.n_roads
    enter = np.zeros(m, dtype=bool)
    enter[turns.node_road[fwd]] = True
    leave = bwd[:m] & np.isfinite(road)
    for a in (enter, leave):
        a.flags.writeable = False
    assert anchor is not None  # set above whenever the sweep was redone
    return Reachability(leave, enter, int((fwd & bwd).sum()), int(anchor))


def _usable_share(arc: np.ndarray, turns: TurnGraph) -> float:
    """Share of turn nodes with a finite arc in (a cheap bound on the main network's size)."""
    has_in = np.zeros(turns.n_nodes, dtype=bool)
    has_in[turns.head[np.isfinite(arc)]] = True
    return float(has_in.mean()) if turns.n_nodes else 0.0


def _largest_component_node(turns: TurnGraph, arc: np.ndarray) -> int:
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    n = turns.n_nodes
    if n == 0:
        return 0
    ok = np.isfinite(arc)
    mat = csr_matrix((np.ones(int(ok.sum()), dtype=np.int8),
                      (turns.tail[ok], turns.head[ok])), shape=(n, n))
    _, labels = connected_components(mat, directed=True, connection="strong")
    main = int(np.argmax(np.bincount(labels)))
    return int(np.flatnonzero(labels == main)[0])


def with_fallback(snap: Snap, reason: str) -> Snap:
    """The same snap, marked as a fallback for ``reason``."""
    return replace(snap, fallback=reason)
