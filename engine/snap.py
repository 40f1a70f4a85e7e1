"""Snapping: a coordinate to the nearest point on the nearest usable road *edge*.

Snapping to edges rather than nodes matters for ambulances: a call on a long avenue must not
start 300 m away at the next junction, and a one-way street's direction must be respected from
the exact point. Segments live in a shapely STRtree in a local metric projection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely

from engine.errors import InvalidCoordinate, PointOffNetwork
from engine.graph import EARTH_RADIUS_M, RoadGraph, haversine_m


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
        coords = np.stack([np.stack([ax, ay], 1), np.stack([bx, by], 1)], axis=1)
        self.tree = shapely.STRtree(shapely.linestrings(coords))

    def _project(self, lat: np.ndarray | float, lon: np.ndarray | float) -> tuple:
        return ((np.asarray(lon) - self._lon0) * self._kx,
                (np.asarray(lat) - self._lat0) * self._ky)

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
        px, py = self._project(lat, lon)
        point = shapely.Point(float(px), float(py))
        # widen the search step by step: most calls are a few metres from a road
        search = 32.0
        while True:
            search = min(search, radius_m)
            cand = self.tree.query(point, predicate="dwithin", distance=search)
            if usable is not None and len(cand):
                e = self.seg_edge[cand]
                tw = self.graph.twin[e]
                cand = cand[usable[e] | ((tw >= 0) & usable[np.maximum(tw, 0)])]
            if len(cand) or search >= radius_m:
                break
            search *= 4.0
        if len(cand) == 0:
            nearest = self.tree.query_nearest(point, return_distance=True)
            dist = float(nearest[1][0]) if len(nearest[1]) else float("inf")
            qualifier = "" if usable is None else " usable by this vehicle"
            raise PointOffNetwork(
                f"{what} ({lat:.6f}, {lon:.6f}) is off the road network: no road{qualifier} "
                f"within {radius_m:.0f} m (nearest road of any kind: {dist:.0f} m)",
                distance_m=dist, radius_m=radius_m,
            )
        ax, ay = self.ax[cand], self.ay[cand]
        dx, dy = self.bx[cand] - ax, self.by[cand] - ay
        den = dx * dx + dy * dy
        t = np.where(den > 0, ((px - ax) * dx + (py - ay) * dy) / np.where(den > 0, den, 1), 0)
        t = np.clip(t, 0.0, 1.0)
        qx, qy = ax + t * dx, ay + t * dy
        d2 = (qx - px) ** 2 + (qy - py) ** 2
        k = int(np.argmin(d2))
        g = self.graph
        seg = int(cand[k])
        sa, sb = self.seg_a[seg], self.seg_b[seg]
        tk = float(t[k])
        slat = g.point_lat[sa] + tk * (g.point_lat[sb] - g.point_lat[sa])
        slon = g.point_lon[sa] + tk * (g.point_lon[sb] - g.point_lon[sa])
        positions = []
        for j in np.flatnonzero(d2 <= d2[k] + 1e-6):  # ties within a millimetre
            edge = int(self.seg_edge[cand[j]])
            if usable is not None and not (usable[edge] or (g.twin[edge] >= 0
                                                          and usable[g.twin[edge]])):
                continue
            positions.append((edge, int(g.twin[edge]), self._fraction(int(cand[j]),
                                                                      float(t[j]))))
        if not positions:  # the nearest segment itself is always usable here
            positions.append((int(self.seg_edge[seg]), int(g.twin[self.seg_edge[seg]]),
                              self._fraction(seg, tk)))
        distance = float(haversine_m(lat, lon, slat, slon))
        edge, twin, fraction = positions[0]
        return Snap(edge, twin, fraction, float(slat), float(slon), distance, lat, lon,
                    tuple(dict.fromkeys(positions[1:])))

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
