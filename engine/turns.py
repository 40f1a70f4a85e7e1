"""The turn graph (edge-based graph): one node per directed road, one arc per turn.

Routes are searched on this graph rather than on the junction graph, so that a turn can be
forbidden (an OSM turn restriction) or cost time (its angle, a U-turn, a traffic signal at
the junction) exactly, as OSRM, Valhalla and GraphHopper do.

Numbering
---------
Turn node ``t < m`` *is* road edge ``t`` of the :class:`~engine.graph.RoadGraph` (so a
snapped road edge is directly a search seed). Nodes ``m, m+1, ...`` are copies of roads made
for via-way restrictions (a restriction "from A via B to C" needs to remember that B was
entered from A: the copy of B entered from A is a different node whose turn into C is
forbidden); :attr:`TurnGraph.node_road` maps every node back to its road.

Arc ``a`` runs from turn node ``tail[a]`` to ``head[a]`` and means "having driven road
``node_road[tail[a]]`` to its end, turn into road ``node_road[head[a]]`` and drive it to its
end". A search's distance at node ``t`` is therefore the cost of reaching the *end* of road
``t``, and the cost of an arc is ``turn cost + cost of the road entered``: a live change of
road ``r`` changes exactly the arcs entering ``r`` (:meth:`TurnGraph.arcs_into`).

The graph never changes after build; profiles price the arcs (:mod:`engine.profiles`): a
forbidden turn is an arc with an infinite cost for the vehicles it concerns, never a
missing arc, so the car, the ambulance and the ambulance allowed to take restricted turns
differ by weights only.

Every array here depends on the road graph and the restrictions only; the graph cache stores
them next to the road arrays.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.extract import tags

if TYPE_CHECKING:
    from engine.graph import RoadGraph

ProgressFn = Callable[[str, int, int | None], None]

# ---------------------------------------------------------------- arc kinds (uint8 bit field)
ARC_UTURN = 1 << 0  #: back onto the same road piece in the other direction
ARC_ROUNDABOUT = 1 << 1  #: one of the two roads is part of a roundabout
ARC_SIGNAL = 1 << 2  #: the junction has traffic signals (for the arriving road)
ARC_STOP = 1 << 3  #: a stop sign at the junction
ARC_GIVE_WAY = 1 << 4  #: a give-way sign at the junction
ARC_BARRIER = 1 << 5  #: one road is the zero-length link through a barrier (no angle)
ARC_GATE = 1 << 6  #: a gate to open at the junction
ARC_REVERSAL = 1 << 7  #: back the other way on a parallel carriageway of the same road

#: Geometry used for a road's bearing at a junction: the first geometry point at least this
#: far along it (or its far end). Short, so that on curves (roundabouts above all) the
#: bearing stays close to the tangent: OSRM's turn costs match the angle between the
#: segments adjacent to the junction (measured against osrm-backend on Monaco,
#: benchmarks/bench_osrm.py); not zero, so that a node a metre away does not decide it.
BEARING_LOOKAHEAD_M = 3.0

#: Turn nodes and arcs arrays stored in the graph cache (prefixed ``turn_``).
TURN_ARRAY_FIELDS: tuple[str, ...] = (
    "node_road", "first_out", "head", "tail", "first_in", "in_arc", "road_first", "road_arcs",
    "angle", "kind", "forbid", "cond_arc", "cond_classes", "cond_index", "conditions",
)


@dataclass(eq=False)
class TurnGraph:
    """Turn nodes (roads and road copies) and turn arcs, as flat arrays.

    Attributes
    ----------
    node_road : int32[nt]
        The road edge each turn node stands for (``node_road[t] == t`` for ``t < m``).
    first_out, head, tail : int32
        Forward CSR over turn nodes: the turns out of node ``t`` are arcs
        ``first_out[t]:first_out[t+1]``.
    first_in, in_arc : int32
        Backward CSR: ``in_arc[first_in[t]:first_in[t+1]]`` are the arcs into node ``t``.
    road_first, road_arcs : int32
        The arcs entering road ``r`` (or a copy of it): ``road_arcs[road_first[r]:
        road_first[r+1]]``. A live change of road ``r`` re-prices these arcs only.
    angle : float32[na]
        Turn angle in degrees, ``(-180, 180]``, 0 = straight on, positive = to the right;
        NaN where a road has no length (barrier links).
    kind : uint8[na]
        ``ARC_*`` bits.
    forbid : uint8[na]
        Vehicle classes (``RC_CAR``, ``RC_EMERGENCY``) for which an OSM restriction forbids
        the turn at all times.
    cond_arc, cond_classes, cond_index, conditions
        Time-conditional restrictions: arc ``cond_arc[k]`` is forbidden for classes
        ``cond_classes[k]`` while ``conditions[cond_index[k]]`` (an OSM opening_hours
        expression, in the map's local time) holds.
    meta
        Build statistics: restrictions read / applied / skipped by kind and reason.
    """

    node_road: np.ndarray
    first_out: np.ndarray
    head: np.ndarray
    tail: np.ndarray
    first_in: np.ndarray
    in_arc: np.ndarray
    road_first: np.ndarray
    road_arcs: np.ndarray
    angle: np.ndarray
    kind: np.ndarray
    forbid: np.ndarray
    cond_arc: np.ndarray
    cond_classes: np.ndarray
    cond_index: np.ndarray
    conditions: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    # the names the kernels and the CCH expect of "a graph"
    @property
    def n_nodes(self) -> int:
        """Turn nodes (roads and their copies)."""
        return len(self.node_road)

    @property
    def n_edges(self) -> int:
        """Turn arcs (what the kernels and the CCH call edges)."""
        return len(self.head)

    @property
    def in_edge(self) -> np.ndarray:
        """Alias of :attr:`in_arc` under the kernels' name."""
        return self.in_arc

    @property
    def n_roads(self) -> int:
        return len(self.road_first) - 1

    def from_road(self) -> np.ndarray:
        """Road left by each arc."""
        return self.node_road[self.tail]

    def to_road(self) -> np.ndarray:
        """Road entered by each arc."""
        return self.node_road[self.head]

    def arcs_into(self, roads: np.ndarray) -> np.ndarray:
        """Arcs entering any of ``roads`` (the arcs a change of those roads re-prices)."""
        roads = np.asarray(roads, dtype=np.int64)
        if not len(roads):
            return np.zeros(0, dtype=np.int64)
        lo, hi = self.road_first[roads], self.road_first[roads + 1]
        counts = hi - lo
        idx = np.arange(int(counts.sum())) + np.repeat(lo - np.cumsum(counts) + counts, counts)
        return self.road_arcs[idx].astype(np.int64)

    def arcs(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in TURN_ARRAY_FIELDS}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any] | None = None
                    ) -> TurnGraph:
        return cls(**{k: arrays[k] for k in TURN_ARRAY_FIELDS}, meta=dict(meta or {}))

    def path_roads(self, start: int, arcs: np.ndarray) -> np.ndarray:
        """Road edges of a path that starts at turn node ``start`` and takes ``arcs``."""
        return np.concatenate([[self.node_road[start]],
                               self.node_road[self.head[arcs]]]).astype(np.int64)

    def __repr__(self) -> str:
        return f"TurnGraph(nodes={self.n_nodes:,}, arcs={self.n_edges:,})"


# ------------------------------------------------------------------------------ geometry
def road_bearings(graph: RoadGraph, lookahead_m: float = BEARING_LOOKAHEAD_M
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``(leave, arrive)``: each road's bearing leaving its tail junction and arriving at its
    head junction (degrees clockwise from north), measured to / from the geometry point
    ``lookahead_m`` along it (or its far end); NaN for roads without length."""
    from engine.graph import bearing_deg, haversine_m

    gp, off = graph.geom_point, graph.geom_offset
    m = graph.n_edges
    leave = np.full(m, np.nan)
    arrive = np.full(m, np.nan)
    if m == 0:
        return leave, arrive
    lat, lon = graph.point_lat[gp], graph.point_lon[gp]
    seg = np.zeros(len(gp))
    seg[1:] = haversine_m(lat[:-1], lon[:-1], lat[1:], lon[1:])
    seg[off[:-1]] = 0.0  # no segment across two roads
    edge_of = np.repeat(np.arange(m), np.diff(off))
    cum = np.cumsum(seg)
    along = cum - cum[off[:-1]][edge_of]
    total = along[off[1:] - 1]
    span = float(total.max()) + 1.0
    key = edge_of * span + along  # non-decreasing: roads in order, metres along each
    first, last = off[:-1], off[1:] - 1
    ok = (total > 0) & (last > first)
    e = np.flatnonzero(ok)
    k_out = np.searchsorted(key, e * span + np.minimum(lookahead_m, total[e]), side="left")
    k_out = np.clip(k_out, first[e] + 1, last[e])
    leave[e] = bearing_deg(lat[first[e]], lon[first[e]], lat[k_out], lon[k_out])
    k_in = np.searchsorted(key, e * span + np.maximum(total[e] - lookahead_m, 0.0),
                           side="right") - 1
    k_in = np.clip(k_in, first[e], last[e] - 1)
    arrive[e] = bearing_deg(lat[k_in], lon[k_in], lat[last[e]], lon[last[e]])
    return leave, arrive


def _applies(control: np.ndarray, reversed_: np.ndarray) -> np.ndarray:
    """Whether a control point applies to a road in its direction (``*:direction`` tags)."""
    fwd_only = (control & tags.CTRL_FORWARD) != 0
    back_only = (control & tags.CTRL_BACKWARD) != 0
    return ~(fwd_only & reversed_) & ~(back_only & ~reversed_)


# ------------------------------------------------------------------------------ building
def build_turn_graph(graph: RoadGraph, restrictions: Iterable[Any] = (), *,
                     skipped: Iterable[tuple[str, str]] = (),
                     progress: ProgressFn | None = None) -> TurnGraph:
    """Expand ``graph`` into its turn graph and apply OSM turn restrictions.

    Parameters
    ----------
    restrictions
        :class:`engine.extract.restrictions.TurnRestriction` records (OSM ids). Those whose
        members are missing from a clipped extract, or that do not fit the roads (a via node
        not on the from way, via ways not joining from and to), are skipped and counted,
        never an error.
    skipped
        ``(kind, reason)`` pairs the extract already skipped, counted in the statistics.
    """
    m = graph.n_edges
    head_j = graph.head.astype(np.int64)
    outdeg = np.diff(graph.first_out).astype(np.int64)
    if progress:
        progress("turn graph", 0, 3)

    # ---- every (in-road, out-road) pair at every junction, sorted by the in-road
    cnt = outdeg[head_j] if m else np.zeros(0, np.int64)
    first = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(cnt, out=first[1:])
    na = int(first[-1])
    a_tail = np.repeat(np.arange(m, dtype=np.int64), cnt)
    a_head = graph.first_out[head_j][a_tail] + (np.arange(na) - first[a_tail])

    # ---- angles and kinds
    leave, arrive = road_bearings(graph)
    angle = ((leave[a_head] - arrive[a_tail] + 180.0) % 360.0) - 180.0
    angle[angle == -180.0] = 180.0
    twin = graph.twin.astype(np.int64)
    kind = np.zeros(na, dtype=np.uint8)
    uturn = twin[a_tail] == a_head
    kind[uturn] = ARC_UTURN
    angle[uturn & np.isnan(angle)] = 180.0
    # going back on the other carriageway of a dual road (same name, sharp reversal) is a
    # U-turn for the driver although the pieces differ (OSRM prices it so too)
    name = graph.name_id
    reversal = (~uturn & (name[a_tail] == name[a_head]) & (name[a_tail] > 0)
                & (np.abs(np.nan_to_num(angle)) >= 150.0))
    kind[reversal] |= ARC_REVERSAL
    flags = graph.flags
    roundabout = (flags & np.uint32(tags.F_ROUNDABOUT)) != 0
    kind[roundabout[a_tail] | roundabout[a_head]] |= ARC_ROUNDABOUT
    barrier = graph.highway == tags.HIGHWAY_CODE["barrier"]
    kind[barrier[a_tail] | barrier[a_head]] |= ARC_BARRIER
    control = _point_control(graph)
    if control.any():  # controls are graph nodes (the extract splits roads there)
        junction_control = control[head_j[a_tail]]
        reversed_ = (flags & np.uint32(tags.F_REVERSED)) != 0
        applies = _applies(junction_control, reversed_[a_tail])
        for bit, arc_bit in ((tags.CTRL_SIGNAL, ARC_SIGNAL), (tags.CTRL_STOP, ARC_STOP),
                             (tags.CTRL_GIVE_WAY, ARC_GIVE_WAY)):
            kind[((junction_control & bit) != 0) & applies] |= arc_bit
        kind[(junction_control & tags.CTRL_GATE) != 0] |= ARC_GATE  # both ways
    if progress:
        progress("turn graph", 1, 3)

    # ---- restrictions
    builder = _RestrictionBuilder(graph, first, a_head, angle)
    for kind_, reason in skipped:
        builder.skip(kind_, reason, extract=True)
    for r in restrictions:
        builder.add(r)
    node_road, a_tail, a_head, angle, kind, forbid, cond = builder.finish(
        a_tail, kind)
    if progress:
        progress("turn graph", 2, 3)

    # ---- CSRs: out (arcs are sorted by tail already), in, and by road entered
    nt = len(node_road)
    first_out = np.zeros(nt + 1, dtype=np.int64)
    np.cumsum(np.bincount(a_tail, minlength=nt), out=first_out[1:])
    in_arc = np.argsort(a_head, kind="stable")
    first_in = np.zeros(nt + 1, dtype=np.int64)
    np.cumsum(np.bincount(a_head, minlength=nt), out=first_in[1:])
    to_road = node_road[a_head]
    road_arcs = np.argsort(to_road, kind="stable")
    road_first = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(np.bincount(to_road, minlength=m), out=road_first[1:])
    cond_arc, cond_classes, cond_index, conditions = cond
    tg = TurnGraph(
        node_road=node_road.astype(np.int32),
        first_out=first_out.astype(np.int32),
        head=a_head.astype(np.int32),
        tail=a_tail.astype(np.int32),
        first_in=first_in.astype(np.int32),
        in_arc=in_arc.astype(np.int32),
        road_first=road_first.astype(np.int32),
        road_arcs=road_arcs.astype(np.int32),
        angle=angle.astype(np.float32),
        kind=kind,
        forbid=forbid,
        cond_arc=cond_arc, cond_classes=cond_classes, cond_index=cond_index,
        conditions=conditions,
        meta={"restrictions": builder.stats()},
    )
    if progress:
        progress("turn graph", 3, 3)
    return tg


def _point_control(graph: RoadGraph) -> np.ndarray:
    control = getattr(graph, "point_control", None)
    if control is None or len(control) != len(graph.point_lat):
        control = np.where(graph.point_signal, tags.CTRL_SIGNAL, 0).astype(np.uint8)
    return np.asarray(control, dtype=np.uint8)


# ------------------------------------------------------------------------------ restrictions
def _direction_ok(kind: str, angle: float, uturn: bool) -> bool:
    """Whether a turn of ``angle`` degrees fits a restriction named ``kind`` (used only to
    choose among several approaches when the via node lies inside a way)."""
    if kind.endswith("u_turn"):
        return uturn
    if uturn:
        return False
    if np.isnan(angle):
        return True
    if kind.endswith("left_turn"):
        return angle < -20.0
    if kind.endswith("right_turn"):
        return angle > 20.0
    if kind.endswith("straight_on"):
        return abs(angle) <= 60.0
    return True  # no_entry / no_exit: no direction


class _RestrictionBuilder:
    """Resolves OSM restrictions onto turn arcs; keeps the counts for ``graph build``."""

    def __init__(self, graph: RoadGraph, first: np.ndarray, a_head: np.ndarray,
                 angle: np.ndarray) -> None:
        self.g = graph
        self.m = graph.n_edges
        self.first = first  # arcs of road e: first[e]:first[e+1]
        self.a_head = a_head
        self.angle = angle
        self.forbid = np.zeros(len(a_head), dtype=np.uint8)
        self.cond: list[tuple[int, int, str]] = []  # (arc, classes, condition)
        self.read: Counter[str] = Counter()
        self.applied: Counter[str] = Counter()
        self.skipped: Counter[tuple[str, str]] = Counter()
        #: applied, with a caveat the extract reported ("kept unconditional")
        self.notes: Counter[tuple[str, str]] = Counter()
        self.via_way: list[tuple[Any, int, list[int], list[int]]] = []
        n = graph.n_nodes
        osm = graph.point_osm_id[:n]
        order = np.argsort(osm, kind="stable")
        self._node_osm, self._node_order = osm[order], order
        order = np.argsort(graph.way_id, kind="stable")
        self._way_sorted, self._way_order = graph.way_id[order], order

    # ---- lookups
    def nodes_of(self, osm_id: int) -> np.ndarray:
        lo = np.searchsorted(self._node_osm, osm_id, side="left")
        hi = np.searchsorted(self._node_osm, osm_id, side="right")
        return self._node_order[lo:hi]

    def roads_of(self, way: int) -> np.ndarray:
        lo = np.searchsorted(self._way_sorted, way, side="left")
        hi = np.searchsorted(self._way_sorted, way, side="right")
        return self._way_order[lo:hi]

    def arc(self, e: int, f: int) -> int:
        for a in range(int(self.first[e]), int(self.first[e + 1])):
            if self.a_head[a] == f:
                return a
        return -1

    def skip(self, kind: str, reason: str, *, extract: bool = False) -> None:
        """Count a restriction skipped here, or (``extract``) one the extract skipped, which
        ``add`` never saw. A restriction the extract kept with a caveat ("kept
        unconditional") is a note: it is read and applied like any other."""
        if extract and "kept" in reason:
            self.notes[(kind, reason)] += 1
            return
        if extract:
            self.read[kind] += 1
        self.skipped[(kind, reason)] += 1

    # ---- one restriction
    def add(self, r: Any) -> None:
        self.read[r.kind] += 1
        g = self.g
        missing = [name for name, way in (("from", r.from_way), ("to", r.to_way))
                   if not len(self.roads_of(way))]
        missing += ["via" for w in r.via_ways if not len(self.roads_of(w))]
        if r.via_node is not None and not len(self.nodes_of(r.via_node)):
            missing.append("via")
        if missing:
            self.skip(r.kind, f"member not among the map's roads ({', '.join(missing)}): "
                      "clipped extract, or a way no vehicle uses")
            return
        if r.via_node is None:
            self._add_via_ways(r)
            return
        junctions = set(self.nodes_of(r.via_node).tolist())
        froms = [int(e) for e in self.roads_of(r.from_way) if int(g.head[e]) in junctions]
        tos = [int(f) for f in self.roads_of(r.to_way) if int(g.tail[f]) in junctions]
        if not froms:
            self.skip(r.kind, "malformed: via node is not on the from way")
            return
        if not tos:
            self.skip(r.kind, "malformed: via node is not on the to way")
            return
        pairs = [(e, f, self.arc(e, f)) for e in froms for f in tos]
        pairs = [p for p in pairs if p[2] >= 0]
        if len(froms) > 1 or len(tos) > 1:  # via node inside a way: pick by direction
            pairs = [(e, f, a) for e, f, a in pairs
                     if _direction_ok(r.kind, float(self.angle[a]), int(g.twin[e]) == f)]
        if not pairs:
            self.skip(r.kind, "malformed: from and to ways do not meet at the via node")
            return
        for e in sorted({p[0] for p in pairs}):
            allowed = {a for ee, _, a in pairs if ee == e}
            arcs = (range(int(self.first[e]), int(self.first[e + 1])) if r.only else allowed)
            for a in arcs:
                if r.only and a in allowed:
                    continue
                self._forbid(a, r)
        self.applied[r.kind] += 1

    def _forbid(self, a: int, r: Any) -> None:
        if r.condition:
            self.cond.append((a, int(r.classes), str(r.condition)))
        else:
            self.forbid[a] |= np.uint8(r.classes)

    def _add_via_ways(self, r: Any) -> None:
        """Find the road path along the via ways from the from way to the to way; the
        restriction is applied on copies of those roads in :meth:`finish`."""
        g = self.g
        via = np.concatenate([self.roads_of(w) for w in r.via_ways])
        via_set = set(via.tolist())
        by_tail: dict[int, list[int]] = defaultdict(list)
        for v in via.tolist():
            by_tail[int(g.tail[v])].append(v)
        via_nodes = set(by_tail)
        tos = {int(f): int(g.tail[f]) for f in self.roads_of(r.to_way)}
        found: list[tuple[int, list[int], list[int]]] = []
        for e in self.roads_of(r.from_way).tolist():
            start = int(g.head[e])
            if start not in via_nodes:
                continue
            # breadth-first along via roads only, never back onto the from way
            paths: dict[int, list[int]] = {start: []}
            queue = [start]
            while queue:
                nxt = []
                for u in queue:
                    for v in by_tail[u]:
                        w = int(g.head[v])
                        if w not in paths and v != int(g.twin[e]):
                            paths[w] = [*paths[u], v]
                            nxt.append(w)
                queue = nxt
            ends = [(f, paths[t]) for f, t in tos.items() if t in paths and paths[t]
                    and f not in via_set and f != int(g.twin[paths[t][-1]])]
            for f, path in ends:
                found.append((e, path, [f]))
        if not found:
            self.skip(r.kind, "malformed: via ways do not join the from and to ways")
            return
        # several candidates only when the from / to way passes through: keep the shortest
        found.sort(key=lambda x: len(x[1]))
        e, path, fs = found[0]
        self.via_way.append((r, e, path, fs))
        self.applied[r.kind] += 1

    # ---- result
    def finish(self, a_tail: np.ndarray, kind: np.ndarray) -> tuple:
        """Apply via-way restrictions on road copies; return the final arrays."""
        m = self.m
        a_head = self.a_head.copy()
        angle = self.angle.copy()
        forbid = self.forbid
        cond_by_arc: dict[int, list[tuple[int, str]]] = defaultdict(list)
        for a, classes, when in self.cond:
            cond_by_arc[a].append((classes, when))
        node_road = list(range(m))
        new_tail: list[int] = []
        new_head: list[int] = []
        new_src: list[int] = []  # original arc each new arc mirrors
        new_forbid: list[int] = []
        # prefix tree per from-road: key (parent node, road) -> copy node
        copies: dict[tuple[int, int], int] = {}
        ends: dict[int, list[tuple[Any, int]]] = defaultdict(list)  # copy node -> (r, to road)
        for r, e, path, fs in self.via_way:
            parent = e
            for v in path:
                key = (parent, v)
                if key not in copies:
                    copies[key] = len(node_road)
                    node_road.append(v)
                parent = copies[key]
            for f in fs:
                ends[parent].append((r, f))
        if copies:
            first = self.first
            children: dict[int, dict[int, int]] = defaultdict(dict)
            for (parent, v), c in copies.items():
                children[parent][v] = c
            # the from-roads' own arcs now lead into the first copies
            for parent, kids in children.items():
                if parent < m:
                    for a in range(int(first[parent]), int(first[parent + 1])):
                        road = int(a_head[a])
                        if road in kids:
                            a_head[a] = kids[road]
            # every copy mirrors its road's turns (restrictions at its end included)
            for c in range(m, len(node_road)):
                v = node_road[c]
                for a in range(int(first[v]), int(first[v + 1])):
                    road = int(node_road[a_head[a]]) if a_head[a] >= m else int(a_head[a])
                    target = children[c].get(road, int(a_head[a]))
                    bits = int(forbid[a])
                    for r, f in ends.get(c, []):
                        hit = (road != f) if r.only else (road == f)
                        if hit and not r.condition:
                            bits |= int(r.classes)
                        elif hit:
                            cond_by_arc[len(a_tail) + len(new_tail)].append(
                                (int(r.classes), str(r.condition)))
                    for classes, cnd in cond_by_arc.get(a, []):
                        cond_by_arc[len(a_tail) + len(new_tail)].append((classes, cnd))
                    new_tail.append(c)
                    new_head.append(target)
                    new_src.append(a)
                    new_forbid.append(bits)
        src = np.asarray(new_src, dtype=np.int64)
        a_tail = np.concatenate([a_tail, np.asarray(new_tail, dtype=np.int64)])
        a_head = np.concatenate([a_head, np.asarray(new_head, dtype=np.int64)])
        angle = np.concatenate([angle, angle[src]])
        kind = np.concatenate([kind, kind[src]])
        forbid = np.concatenate([forbid, np.asarray(new_forbid, dtype=np.uint8)])
        conditions = sorted({c for lst in cond_by_arc.values() for _, c in lst})
        index = {c: i for i, c in enumerate(conditions)}
        rows = sorted((a, classes, index[c]) for a, lst in cond_by_arc.items()
                      for classes, c in lst)
        cond = (np.array([r[0] for r in rows], dtype=np.int32),
                np.array([r[1] for r in rows], dtype=np.uint8),
                np.array([r[2] for r in rows], dtype=np.int32),
                np.array(conditions, dtype=str) if conditions else np.zeros(0, dtype="<U1"))
        return (np.asarray(node_road, dtype=np.int64), a_tail, a_head, angle, kind, forbid,
                cond)

    def stats(self) -> dict[str, Any]:
        skipped: dict[str, dict[str, int]] = defaultdict(dict)
        for (kind, reason), n in sorted(self.skipped.items()):
            skipped[reason][kind] = n
        notes: dict[str, dict[str, int]] = defaultdict(dict)
        for (kind, reason), n in sorted(self.notes.items()):
            notes[reason][kind] = n
        return {
            "read": dict(sorted(self.read.items())),
            "applied": dict(sorted(self.applied.items())),
            "skipped": dict(skipped),
            "notes": dict(notes),
            "n_read": int(sum(self.read.values())),
            "n_applied": int(sum(self.applied.values())),
            "n_skipped": int(sum(self.skipped.values())),
        }
