"""The compiled road graph: flat arrays in CSR form, built once per map and never mutated.

Everything live (traffic, closures, vehicle profiles) is a *weight array* over these edges,
so a traffic update never rebuilds the graph, and Numba kernels only ever see arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.extract import Extract, tags
from engine.turns import TurnGraph, build_turn_graph

EARTH_RADIUS_M = 6_371_008.8

#: Names of the array fields stored in a cache file, in order.
ARRAY_FIELDS: tuple[str, ...] = (
    "first_out", "head", "tail", "first_in", "in_edge", "twin",
    "length_m", "time_s", "speed_kmh", "highway", "flags", "way_id", "name_id",
    "geom_offset", "geom_point",
    "point_lat", "point_lon", "point_osm_id", "point_signal", "point_control",
    "names",
)
#: Array fields a graph may lack (a DIMACS graph has no OSM tags): cached when present.
OPTIONAL_ARRAY_FIELDS: tuple[str, ...] = ("info_id", "infos")


def haversine_m(lat1: np.ndarray | float, lon1: np.ndarray | float,
                lat2: np.ndarray | float, lon2: np.ndarray | float) -> np.ndarray:
    """Great-circle distance in metres (vectorised)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(a, 1.0)))


def haversine_one(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """:func:`haversine_m` of one pair of points, in Python floats (no numpy call: a
    snap measures one distance, where numpy's overhead is most of the cost)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(a, 1.0)))


def bearing_deg(lat1: np.ndarray | float, lon1: np.ndarray | float,
                lat2: np.ndarray | float, lon2: np.ndarray | float) -> np.ndarray:
    """Initial great-circle bearing from point 1 to point 2, degrees clockwise from north
    in ``[0, 360)`` (vectorised)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dl = np.radians(np.asarray(lon2) - np.asarray(lon1))
    x = np.sin(dl) * np.cos(p2)
    y = np.cos(p1) * np.sin(p2) - np.sin(p1) * np.cos(p2) * np.cos(dl)
    return np.degrees(np.arctan2(x, y)) % 360.0


@dataclass(eq=False)
class RoadGraph:
    """A directed road graph as flat arrays.

    Nodes ``0..n-1`` are road junctions and ends; they are also the first ``n`` entries of the
    *point* table, which holds every OSM node along the roads (so routes can report them).
    Edge ``e`` runs ``tail[e] -> head[e]`` along points ``geom_point[geom_offset[e]:
    geom_offset[e+1]]``; ``twin[e]`` is the same road piece in the other direction or -1.

    Attributes
    ----------
    first_out, head : int32 arrays
        Forward CSR adjacency: the out-edges of ``u`` are ``first_out[u]:first_out[u+1]``.
    first_in, in_edge : int32 arrays
        Backward CSR: ``in_edge[first_in[v]:first_in[v+1]]`` are the ids of edges into ``v``.
    length_m, time_s : float64 arrays
        Length along the geometry and free-flow travel time.
    highway, flags : uint8 / uint32 arrays
        Highway class code (:data:`engine.extract.tags.HIGHWAY_CLASSES`) and access flags.
    """

    first_out: np.ndarray
    head: np.ndarray
    tail: np.ndarray
    first_in: np.ndarray
    in_edge: np.ndarray
    twin: np.ndarray
    length_m: np.ndarray
    time_s: np.ndarray
    speed_kmh: np.ndarray
    highway: np.ndarray
    flags: np.ndarray
    way_id: np.ndarray
    name_id: np.ndarray
    geom_offset: np.ndarray
    geom_point: np.ndarray
    point_lat: np.ndarray
    point_lon: np.ndarray
    point_osm_id: np.ndarray
    point_signal: np.ndarray
    point_control: np.ndarray
    names: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    #: guidance tags per edge: ``infos[info_id[e]]`` is JSON text (``""``: none), see
    #: :func:`engine.extract.tags.guidance_info` and :meth:`edge_info`
    info_id: np.ndarray | None = None
    infos: np.ndarray | None = None
    #: the turn graph routes are searched on (see :mod:`engine.turns`); built with the graph
    #: and cached with it, or on first use for a graph assembled by hand
    turns: TurnGraph | None = field(default=None, repr=False)
    #: (sorted OSM node ids of the points, their point indices): built on first lookup
    _osm_points: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False,
                                                              init=False)

    # ------------------------------------------------------------------ sizes and views
    @property
    def n_nodes(self) -> int:
        return len(self.first_out) - 1

    @property
    def n_edges(self) -> int:
        return len(self.head)

    @property
    def lat(self) -> np.ndarray:
        """Latitude of the graph nodes (a view on the point table)."""
        return self.point_lat[: self.n_nodes]

    @property
    def lon(self) -> np.ndarray:
        return self.point_lon[: self.n_nodes]

    @property
    def osm_id(self) -> np.ndarray:
        return self.point_osm_id[: self.n_nodes]

    @property
    def hospitals(self) -> list[dict[str, Any]]:
        """OSM ``amenity=hospital`` objects found in the source (as mapped, not verified)."""
        return list(self.meta.get("hospitals", []))

    def edge_points(self, e: int) -> np.ndarray:
        """Point indices along edge ``e``, tail to head."""
        return self.geom_point[self.geom_offset[e] : self.geom_offset[e + 1]]

    def edge_name(self, e: int) -> str:
        return str(self.names[self.name_id[e]])

    def edge_info(self, e: int) -> dict[str, str]:
        """Guidance tags of edge ``e`` (``ref``, ``destinations``, ``exits``,
        ``pronunciation``, ``lanes``): only those present."""
        if self.info_id is None or self.infos is None:
            return {}
        text = str(self.infos[self.info_id[e]])
        if not text:
            return {}
        import json

        return dict(json.loads(text))

    def bbox(self) -> tuple[float, float, float, float]:
        """``(west, south, east, north)`` of the graph's points."""
        return (float(self.point_lon.min()), float(self.point_lat.min()),
                float(self.point_lon.max()), float(self.point_lat.max()))

    def arrays(self) -> dict[str, np.ndarray]:
        out = {name: getattr(self, name) for name in ARRAY_FIELDS}
        out.update({name: getattr(self, name) for name in OPTIONAL_ARRAY_FIELDS
                    if getattr(self, name) is not None})
        return out

    def turn_graph(self) -> TurnGraph:
        """The turn graph (built now, without turn restrictions, if the graph has none)."""
        if self.turns is None:
            from engine.turns import build_turn_graph

            self.turns = build_turn_graph(self)
        return self.turns

    def point_of_osm_node(self, osm_id: int) -> int | None:
        """Index of a geometry point of OSM node ``osm_id`` (the first one, when the node was
        split at a barrier), or ``None`` when the node is not on the graph."""
        if self._osm_points is None:
            order = np.argsort(self.point_osm_id, kind="stable")
            self._osm_points = (self.point_osm_id[order], order)
        ids, order = self._osm_points
        k = int(np.searchsorted(ids, osm_id))
        if k >= len(ids) or ids[k] != osm_id:
            return None
        return int(order[k])

    def car_allowed(self) -> np.ndarray:
        """Boolean mask of the edges an ordinary car may drive."""
        return (self.flags & np.uint32(tags.CAR_FORBIDDEN)) == 0

    def __repr__(self) -> str:
        return (f"RoadGraph({self.meta.get('name', '?')!r}, nodes={self.n_nodes:,}, "
                f"edges={self.n_edges:,})")


def _morton_order(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Permutation sorting points along a Z-order curve: neighbours in space sit close in memory,
    which keeps Dijkstra's scattered reads in cache."""
    if len(lat) == 0:
        return np.zeros(0, dtype=np.int64)

    def scale(x: np.ndarray) -> np.ndarray:
        lo, hi = x.min(), x.max()
        return ((x - lo) / (hi - lo if hi > lo else 1.0) * 65535).astype(np.uint64)

    def spread(v: np.ndarray) -> np.ndarray:
        v = (v | (v << np.uint64(8))) & np.uint64(0x00FF00FF)
        v = (v | (v << np.uint64(4))) & np.uint64(0x0F0F0F0F)
        v = (v | (v << np.uint64(2))) & np.uint64(0x33333333)
        return (v | (v << np.uint64(1))) & np.uint64(0x55555555)

    code = spread(scale(lon)) | (spread(scale(lat)) << np.uint64(1))
    return np.argsort(code, kind="stable")


def build_csr(n: int, tail: np.ndarray, head: np.ndarray) -> tuple[np.ndarray, ...]:
    """Sort edges by tail into CSR; returns ``(order, first_out, first_in, in_edge)``.

    ``order`` is the permutation applied to the input edges; ``in_edge`` lists the (new) edge
    ids grouped by head, for backward searches.
    """
    order = np.argsort(tail, kind="stable")
    tail_sorted = tail[order]
    head_sorted = head[order]
    first_out = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.bincount(tail_sorted, minlength=n), out=first_out[1:])
    in_edge = np.argsort(head_sorted, kind="stable").astype(np.int32)
    first_in = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.bincount(head_sorted, minlength=n), out=first_in[1:])
    return order, first_out, first_in, in_edge


def compile_extract(ex: Extract, *, name: str = "", meta: dict[str, Any] | None = None,
                    progress: Any = None) -> RoadGraph:
    """Compile an :class:`~engine.extract.Extract` into a :class:`RoadGraph`.

    Graph nodes (edge end points) are numbered along a Z-order curve, edges are sorted by tail
    node, and lengths are measured along the OSM geometry.
    """
    m = len(ex.edge_points)
    n_points = len(ex.point_lat)
    lengths = np.fromiter((len(p) for p in ex.edge_points), dtype=np.int64, count=m)
    offsets = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.fromiter((q for p in ex.edge_points for q in p), dtype=np.int64,
                       count=int(offsets[-1]))
    point_lat = np.asarray(ex.point_lat, dtype=np.float64)
    point_lon = np.asarray(ex.point_lon, dtype=np.float64)

    # ---- renumber points: graph nodes first (Z-order), then the other geometry points
    tail_pt = flat[offsets[:-1]] if m else np.zeros(0, np.int64)
    head_pt = flat[offsets[1:] - 1] if m else np.zeros(0, np.int64)
    is_node = np.zeros(n_points, dtype=bool)
    is_node[tail_pt] = True
    is_node[head_pt] = True
    nodes = np.flatnonzero(is_node)
    nodes = nodes[_morton_order(point_lat[nodes], point_lon[nodes])]
    used = np.zeros(n_points, dtype=bool)
    used[flat] = True
    others = np.flatnonzero(used & ~is_node)
    new_order = np.concatenate([nodes, others])
    new_index = np.full(n_points, -1, dtype=np.int64)
    new_index[new_order] = np.arange(len(new_order))
    n = len(nodes)

    flat = new_index[flat]
    tail = new_index[tail_pt]
    head = new_index[head_pt]
    order, first_out, first_in, in_edge = build_csr(n, tail, head)
    inverse = np.empty(m, dtype=np.int64)
    inverse[order] = np.arange(m)

    # ---- per edge attributes, permuted into CSR order
    old_twin = np.asarray(ex.edge_twin, dtype=np.int64)
    twin = np.where(old_twin[order] >= 0, inverse[np.maximum(old_twin[order], 0)], -1)
    seg_len = haversine_m(point_lat[new_order][flat[:-1]], point_lon[new_order][flat[:-1]],
                          point_lat[new_order][flat[1:]], point_lon[new_order][flat[1:]]) \
        if len(flat) > 1 else np.zeros(0)
    # length of edge e = sum of segments offsets[e] .. offsets[e+1]-2
    cum = np.concatenate([[0.0], np.cumsum(seg_len)])
    length_old = cum[offsets[1:] - 1] - cum[offsets[:-1]]
    speed_old = np.asarray(ex.edge_speed, dtype=np.float64)
    names, name_inverse = np.unique(np.asarray(["", *ex.edge_name], dtype=str),
                                    return_inverse=True)
    edge_info = getattr(ex, "edge_info", None)
    if edge_info is None or len(edge_info) != m:
        edge_info = [""] * m
    infos, info_inverse = np.unique(np.asarray(["", *edge_info], dtype=str),
                                    return_inverse=True)

    new_lengths = lengths[order]
    geom_offset = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(new_lengths, out=geom_offset[1:])
    # positions in the old flat geometry, edge after edge in the new order (vectorised)
    gather = np.arange(int(geom_offset[-1]), dtype=np.int64) + np.repeat(
        offsets[:-1][order] - geom_offset[:-1], new_lengths
    )
    length_m = length_old[order]
    speed = speed_old[order]
    time_s = length_m / (speed / 3.6)

    graph = RoadGraph(
        first_out=first_out,
        head=head[order].astype(np.int32),
        tail=tail[order].astype(np.int32),
        first_in=first_in,
        in_edge=in_edge,
        twin=twin.astype(np.int32),
        length_m=length_m,
        time_s=time_s,
        speed_kmh=speed.astype(np.float32),
        highway=np.asarray(ex.edge_highway, dtype=np.uint8)[order],
        flags=np.asarray(ex.edge_flags, dtype=np.uint32)[order],
        way_id=np.asarray(ex.edge_way, dtype=np.int64)[order],
        name_id=name_inverse[1:].astype(np.int32)[order],
        geom_offset=geom_offset,
        geom_point=flat[gather].astype(np.int32),
        point_lat=point_lat[new_order],
        point_lon=point_lon[new_order],
        point_osm_id=np.asarray(ex.point_osm_id, dtype=np.int64)[new_order],
        point_signal=np.asarray(ex.point_signal, dtype=bool)[new_order],
        point_control=_point_controls(ex, n_points)[new_order],
        names=names,
        info_id=info_inverse[1:].astype(np.int32)[order],
        infos=infos,
        meta={"name": name, "hospitals": [h.as_dict() for h in ex.hospitals],
              **_locale(point_lat, point_lon), **(meta or {})},
    )
    graph.turns = build_turn_graph(graph, getattr(ex, "restrictions", ()),
                                   skipped=getattr(ex, "restriction_skipped", ()),
                                   progress=progress)
    return graph


def _point_controls(ex: Extract, n_points: int) -> np.ndarray:
    control = getattr(ex, "point_control", None)
    if control is None or len(control) != n_points:
        return np.where(np.asarray(ex.point_signal, dtype=bool), tags.CTRL_SIGNAL, 0
                        ).astype(np.uint8)
    return np.asarray(control, dtype=np.uint8)


def _locale(lat: np.ndarray, lon: np.ndarray) -> dict[str, str]:
    """Which side traffic keeps to and the local time zone, at the map's centre (see
    ``tags.driving_side`` and ``tags.local_timezone``)."""
    if not len(lat):
        return {"driving_side": "right", "timezone": "UTC"}
    la, lo = float(np.median(lat)), float(np.median(lon))
    return {"driving_side": tags.driving_side(la, lo), "timezone": tags.local_timezone(la, lo)}


def graph_stats(graph: RoadGraph) -> dict[str, Any]:
    """Figures a person checks after a build: size, road length, connectivity, signals."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    allowed = graph.car_allowed()
    one_dir = (graph.twin < 0) | (np.arange(graph.n_edges) < graph.twin)
    road = graph.highway != tags.HIGHWAY_CODE["barrier"]
    km = float(graph.length_m[one_dir & road].sum() / 1000.0)
    n = graph.n_nodes
    share = 0.0
    if n and allowed.any():
        mat = csr_matrix(
            (np.ones(int(allowed.sum())), (graph.tail[allowed], graph.head[allowed])),
            shape=(n, n),
        )
        _, labels = connected_components(mat, directed=True, connection="strong")
        # share among the nodes a car can reach at all (pedestrian-only ends do not count)
        on_car_road = np.zeros(n, dtype=bool)
        on_car_road[graph.tail[allowed]] = True
        on_car_road[graph.head[allowed]] = True
        share = float(np.bincount(labels[on_car_road]).max() / on_car_road.sum())
    signal_points = np.unique(graph.geom_point[graph.point_signal[graph.geom_point]])
    turns = graph.turn_graph()
    return {
        "name": graph.meta.get("name", ""),
        "nodes": n,
        "edges": graph.n_edges,
        "car_edges": int(allowed.sum()),
        "points": len(graph.point_lat),
        "road_km": round(km, 2),
        "largest_scc_share": round(share, 4),
        "traffic_signals": len(signal_points),
        "hospitals": len(graph.hospitals),
        "turn_nodes": turns.n_nodes,
        "turn_arcs": turns.n_edges,
        "restrictions": turns.meta.get("restrictions", {}),
        "driving_side": graph.meta.get("driving_side", "right"),
        "bbox": [round(v, 6) for v in graph.bbox()] if len(graph.point_lat) else None,
    }
