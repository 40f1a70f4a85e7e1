"""Roads in a bounding box as GeoJSON, simplified for a map zoom level: the base map of the
pages, drawn from the road graph itself (no tile server needed).

The graph's directed edges become *road pieces* (one per two-way pair, one per one-way edge),
pieces become *chains* (joined through every node where exactly two pieces of the same class
meet), and a chain is drawn whole when its bounding box meets the requested one. Per zoom level
(Web Mercator, 256 px tiles) the chains met are simplified (Douglas-Peucker,
:func:`shapely.simplify`) to half a pixel, their coordinates rounded to a tenth of a pixel;
classes too minor for the zoom, and chains smaller than a pixel, are left out
(:data:`MIN_ZOOM`), and past :data:`MAX_POINTS` coordinates the smallest chains too (the
answer counts them in ``dropped``), which bounds an answer to about 1 MB. The answer is one
GeoJSON ``Feature`` per road class, a ``MultiLineString`` with the class in
``properties.class`` for styling.

Graphs without road classes (DIMACS: every edge has code 0 and no speed) are drawn as class
``road``.

Everything here is pure array code over :class:`engine.graph.RoadGraph`; the index is built
once per graph (:func:`road_index`, cached); each query is vectorised selection,
simplification of the chains met, and serialisation-ready numpy views.
"""

from __future__ import annotations

import math
import threading
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely

from engine.attribution import ATTRIBUTION
from engine.errors import GyrophareError
from engine.extract.tags import HIGHWAY_CLASSES
from engine.graph import RoadGraph

#: Lowest zoom at which a class is drawn (OSM Carto-like; Web Mercator zoom levels).
MIN_ZOOM: dict[str, int] = {
    "motorway": 0, "trunk": 0, "motorway_link": 10, "trunk_link": 10,
    "primary": 8, "primary_link": 12, "secondary": 10, "secondary_link": 13,
    "tertiary": 11, "tertiary_link": 13, "unclassified": 13, "residential": 13,
    "living_street": 14, "road": 12, "busway": 14, "service": 15, "pedestrian": 15,
    "track": 15,
}
#: Drawing order and importance (0 = most important), for styling and for the answer's order.
RANK: dict[str, int] = {name: i for i, name in enumerate((
    "motorway", "trunk", "primary", "secondary", "tertiary", "motorway_link", "trunk_link",
    "primary_link", "secondary_link", "tertiary_link", "unclassified", "residential", "road",
    "living_street", "busway", "service", "pedestrian", "track"))}
#: Zoom levels are clamped to this range: below it the whole map is one viewport anyway;
#: above it every point is kept (no simplification).
MIN_QUERY_ZOOM, FULL_DETAIL_ZOOM = 0, 16
MAX_ZOOM = 22
#: Coordinates one answer may carry (about 21 bytes each in JSON: ~0.9 MB).
MAX_POINTS = 42_000
_BARRIER = HIGHWAY_CLASSES.index("barrier")


class RoadLayerError(GyrophareError):
    """An invalid road-layer request (bounding box or zoom)."""


def pixel_deg(zoom: int, lat: float) -> float:
    """Size of one screen pixel at ``zoom`` in degrees of latitude near ``lat`` (the smaller
    of a Mercator pixel's two sides in degrees)."""
    return 360.0 / (256 * 2 ** zoom) * math.cos(math.radians(lat))


@dataclass
class RoadIndex:
    """Chains of one graph: class, bounding box and points (built by :func:`road_index`)."""

    classes: tuple[str, ...]  # class name per class code used in ``chain_class``
    chain_class: np.ndarray  # uint8 per chain
    west: np.ndarray
    south: np.ndarray
    east: np.ndarray
    north: np.ndarray
    xy: np.ndarray  # (points, 2) lon, lat
    offset: np.ndarray  # chain c: xy[offset[c]:offset[c + 1]]
    mid_lat: float
    pieces: int

    @property
    def n_chains(self) -> int:
        return len(self.chain_class)

    def query(self, west: float, south: float, east: float, north: float, zoom: int, *,
              max_points: int = MAX_POINTS) -> RoadLayer:
        """The roads whose chain meets the box, simplified for ``zoom``; beyond ``max_points``
        coordinates the smallest chains are left out (counted in ``RoadLayer.dropped``)."""
        check_bbox(west, south, east, north)
        if not (isinstance(zoom, int | np.integer) and MIN_QUERY_ZOOM <= zoom <= MAX_ZOOM):
            raise RoadLayerError(f"zoom must be an integer from {MIN_QUERY_ZOOM} to {MAX_ZOOM}, "
                                 f"got {zoom!r}")
        zoom = int(zoom)
        full = zoom >= FULL_DETAIL_ZOOM
        pixel = pixel_deg(zoom, self.mid_lat)
        visible_class = np.array([MIN_ZOOM.get(c, 15) <= zoom for c in self.classes])
        hit = (visible_class[self.chain_class] & (self.east >= west) & (self.west <= east)
               & (self.north >= south) & (self.south <= north))
        size = np.maximum(self.east - self.west, self.north - self.south)
        if not full:  # a chain smaller than a pixel shows as nothing
            hit &= size >= pixel
        chains = np.flatnonzero(hit)
        xy, counts = self._points(chains)
        tolerance = 0.0
        if not full and len(chains):
            tolerance = pixel / 2
            lines = shapely.linestrings(xy, indices=np.repeat(np.arange(len(chains)), counts))
            simple = shapely.simplify(lines, tolerance, preserve_topology=False)
            xy, which = shapely.get_coordinates(simple, return_index=True)
            xy = np.round(xy, max(4, min(7, math.ceil(-math.log10(pixel / 10)))))
            keep = np.ones(len(xy), dtype=bool)  # drop points that rounding made repeats
            keep[1:] = (which[1:] != which[:-1]) | np.any(xy[1:] != xy[:-1], axis=1)
            xy, which = xy[keep], which[keep]
            counts = np.bincount(which, minlength=len(chains))
        dropped = 0
        if counts.sum() > max_points:  # keep the largest chains within the budget
            order = np.argsort(-size[chains], kind="stable")
            fits = np.cumsum(counts[order]) <= max_points
            keep_chain = np.zeros(len(chains), dtype=bool)
            keep_chain[order[fits]] = True
            dropped = int((~keep_chain).sum())
            xy = xy[np.repeat(keep_chain, counts)]
            chains, counts = chains[keep_chain], counts[keep_chain]
        offset = np.zeros(len(chains) + 1, dtype=np.int64)
        np.cumsum(counts, out=offset[1:])
        ok = counts >= 2
        features: list[dict[str, Any]] = []
        codes = self.chain_class[chains]
        for code in sorted(set(codes[ok].tolist()),
                           key=lambda c: RANK.get(self.classes[c], 99), reverse=True):
            mine = np.flatnonzero(ok & (codes == code)).tolist()
            name = self.classes[code]
            features.append({"type": "Feature",
                             "properties": {"class": name, "rank": RANK.get(name, 99),
                                            "roads": len(mine)},
                             "geometry": {"type": "MultiLineString", "coordinates": [
                                 xy[offset[c]:offset[c + 1]] for c in mine]}})
        return RoadLayer(features=features, bbox=(west, south, east, north), zoom=zoom,
                         roads=int(ok.sum()), points=int(counts[ok].sum()),
                         tolerance_m=tolerance * 111_320.0, dropped=dropped)

    def _points(self, chains: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The points of ``chains``, concatenated, and their count per chain."""
        start = self.offset[chains]
        counts = self.offset[chains + 1] - start
        pos = np.zeros(len(chains) + 1, dtype=np.int64)
        np.cumsum(counts, out=pos[1:])
        idx = np.repeat(start - pos[:-1], counts) + np.arange(pos[-1])
        return self.xy[idx], counts


@dataclass(frozen=True)
class RoadLayer:
    """One answer: a GeoJSON FeatureCollection (one MultiLineString feature per class)."""

    features: list[dict[str, Any]]
    bbox: tuple[float, float, float, float]
    zoom: int
    roads: int
    points: int
    tolerance_m: float
    dropped: int = 0

    def to_geojson(self) -> dict[str, Any]:
        """JSON-ready (coordinates are numpy ``(k, 2)`` arrays: serialise with orjson's
        ``OPT_SERIALIZE_NUMPY``, or :func:`as_lists` first)."""
        return {"type": "FeatureCollection", "bbox": list(self.bbox), "zoom": self.zoom,
                "roads": self.roads, "points": self.points, "dropped": self.dropped,
                "tolerance_m": round(self.tolerance_m, 2), "attribution": ATTRIBUTION,
                "features": self.features}


def as_lists(geojson: dict[str, Any]) -> dict[str, Any]:
    """``geojson`` with its numpy coordinate arrays turned into plain lists."""
    out = dict(geojson)
    out["features"] = [{**f, "geometry": {**f["geometry"], "coordinates": [
        np.asarray(line).tolist() for line in f["geometry"]["coordinates"]]}}
        for f in geojson["features"]]
    return out


def check_bbox(west: float, south: float, east: float, north: float) -> None:
    values = (west, south, east, north)
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
        raise RoadLayerError(f"bbox must be four finite numbers, got {values!r}")
    if not (-180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= 90
            and -90 <= north <= 90):
        raise RoadLayerError(f"bbox out of range (lon -180..180, lat -90..90): {values!r}")
    if west > east or south > north:
        raise RoadLayerError("bbox must be west,south,east,north with west <= east and "
                             f"south <= north, got {values!r}")


# ------------------------------------------------------------------------------- the index
_INDEXES: weakref.WeakKeyDictionary[RoadGraph, RoadIndex] = weakref.WeakKeyDictionary()
_INDEX_LOCK = threading.Lock()


def road_index(graph: RoadGraph) -> RoadIndex:
    """The chain index of ``graph`` (built on first use, then cached while the graph lives)."""
    with _INDEX_LOCK:
        index = _INDEXES.get(graph)
        if index is None:
            index = build_index(graph)
            _INDEXES[graph] = index
    return index


def roads_in_bbox(graph: RoadGraph, bbox: tuple[float, float, float, float],
                  zoom: int) -> RoadLayer:
    """Roads of ``graph`` in ``bbox`` = ``(west, south, east, north)`` for map ``zoom``."""
    return road_index(graph).query(*bbox, zoom=zoom)


def road_pieces(graph: RoadGraph) -> np.ndarray:
    """Edge ids drawn as roads: one edge per two-way pair (the lower id), every one-way edge,
    none of the zero-length barrier crossings."""
    e = np.arange(graph.n_edges)
    twin = np.asarray(graph.twin)
    keep = ((twin < 0) | (e < twin)) & (np.asarray(graph.highway) != _BARRIER)
    return e[keep]


def build_index(graph: RoadGraph) -> RoadIndex:
    """Join road pieces into chains through nodes where exactly two pieces of one class meet."""
    pieces = road_pieces(graph)
    highway = np.asarray(graph.highway)
    classes_known = bool(np.any(np.asarray(graph.speed_kmh) > 0)) or bool(np.any(highway))
    if classes_known:
        classes: tuple[str, ...] = HIGHWAY_CLASSES
        piece_class = highway[pieces].astype(np.uint8)
    else:
        classes = ("road",)
        piece_class = np.zeros(len(pieces), dtype=np.uint8)
    tail = np.asarray(graph.tail)[pieces].astype(np.int64)
    head = np.asarray(graph.head)[pieces].astype(np.int64)
    n = graph.n_nodes
    k = len(pieces)
    # pieces at each node (a loop counts twice: its node is never a through node)
    ends = np.concatenate([tail, head])
    owner = np.concatenate([np.arange(k), np.arange(k)])
    order = np.argsort(ends, kind="stable")
    at_node = owner[order]
    first = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(ends, minlength=n), out=first[1:])
    degree = np.diff(first)
    through = degree == 2
    two = np.flatnonzero(through)
    a, b = at_node[first[two]], at_node[first[two] + 1]
    through[two] = (piece_class[a] == piece_class[b]) & (a != b)
    chain_piece, chain_forward, chain_start = _walk(tail, head, through, first, at_node, k)
    # gather the points of each chain in order, each joint once
    g_off = np.asarray(graph.geom_offset)[pieces]
    g_len = (np.asarray(graph.geom_offset)[pieces + 1] - g_off)[chain_piece]
    start = g_off[chain_piece]
    is_first = np.zeros(len(chain_piece), dtype=bool)
    is_first[chain_start[:-1]] = True
    take = np.where(is_first, g_len, g_len - 1)  # later pieces skip their first point
    pos = np.zeros(len(take) + 1, dtype=np.int64)
    np.cumsum(take, out=pos[1:])
    # the points piece j contributes: first_idx[j] + direction[j] * (0 .. take[j] - 1)
    first_idx = np.where(chain_forward, start + np.where(is_first, 0, 1),
                         start + g_len - 1 - np.where(is_first, 0, 1))
    direction = np.where(chain_forward, 1, -1)
    t = np.arange(pos[-1]) - np.repeat(pos[:-1], take)
    gather = np.repeat(first_idx, take) + np.repeat(direction, take) * t
    point = np.asarray(graph.geom_point)[gather]
    xy = np.column_stack([np.asarray(graph.point_lon)[point],
                          np.asarray(graph.point_lat)[point]]).astype(np.float64)
    chain_points = np.add.reduceat(take, chain_start[:-1]) if len(chain_piece) else take
    offset = np.zeros(len(chain_start), dtype=np.int64)
    np.cumsum(chain_points, out=offset[1:])
    if len(xy):
        west = np.minimum.reduceat(xy[:, 0], offset[:-1])
        east = np.maximum.reduceat(xy[:, 0], offset[:-1])
        south = np.minimum.reduceat(xy[:, 1], offset[:-1])
        north = np.maximum.reduceat(xy[:, 1], offset[:-1])
    else:
        west = east = south = north = np.zeros(0)
    chain_class = piece_class[chain_piece[chain_start[:-1]]] if len(chain_piece) else \
        np.zeros(0, dtype=np.uint8)
    mid_lat = float(np.median(graph.point_lat)) if len(graph.point_lat) else 0.0
    return RoadIndex(classes=classes, chain_class=chain_class, west=west, south=south,
                     east=east, north=north, xy=xy, offset=offset, mid_lat=mid_lat, pieces=k)


def _walk(tail: np.ndarray, head: np.ndarray, through: np.ndarray, first: np.ndarray,
          at_node: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chains as runs of pieces: piece ids, whether each is walked tail to head, and the
    start of each chain in those arrays (plus the end)."""
    used = np.zeros(k, dtype=bool)
    tail_l, head_l, through_l = tail.tolist(), head.tolist(), through.tolist()
    first_l, at_l = first.tolist(), at_node.tolist()
    out_piece: list[int] = []
    out_forward: list[bool] = []
    out_start: list[int] = []

    def other(node: int, piece: int) -> int:
        i = first_l[node]
        return at_l[i + 1] if at_l[i] == piece else at_l[i]

    def extend(piece: int, node: int) -> list[tuple[int, bool]]:
        """Pieces after ``piece`` leaving it at ``node``, oriented to walk away from it."""
        run: list[tuple[int, bool]] = []
        while through_l[node]:
            nxt = other(node, piece)
            if used[nxt]:
                break
            used[nxt] = True
            forward = tail_l[nxt] == node
            run.append((nxt, forward))
            node = head_l[nxt] if forward else tail_l[nxt]
            piece = nxt
        return run

    for p in range(k):
        if used[p]:
            continue
        used[p] = True
        after = extend(p, head_l[p])
        before = extend(p, tail_l[p])
        out_start.append(len(out_piece))
        for q, forward in reversed(before):  # walked away from p: reverse to lead into it
            out_piece.append(q)
            out_forward.append(not forward)
        out_piece.append(p)
        out_forward.append(True)
        for q, forward in after:
            out_piece.append(q)
            out_forward.append(forward)
    out_start.append(len(out_piece))
    return (np.asarray(out_piece, dtype=np.int64), np.asarray(out_forward, dtype=bool),
            np.asarray(out_start, dtype=np.int64))
