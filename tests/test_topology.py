"""Topology scenarios on tiny hand-written OSM maps, in the spirit of OSRM's cucumber
features and Valhalla's gurka maps.

Every map in ``tests/fixtures/osm/`` has an ASCII drawing in its XML comment. Expected
lengths are recomputed here from the node coordinates read straight from the XML (not from
the engine), expected speeds are written out as numbers (OSRM car.lua defaults), and
expected routes are OSM node id sequences.

Routes start and end *inside* streets (a fraction along a segment), as real calls do. With
OSRM semantics ``osm_nodes`` lists the nodes of every segment the route touches, so a route
from inside segment 1-2 to inside segment 3-4 reports ``[1, 2, ..., 3, 4]``.

Routes are searched on the turn graph and pay for their turns: every expected duration is the
road time plus the turn costs of the expected node sequence, priced by the independent oracle
``tests/turn_oracle.py`` from the fixture's XML (never from the engine's arrays). A point
whose nearest road is cut off from the main network (the largest strongly connected piece) is
routed from / to the nearest connected road within the fallback radius; the expected snap is
the nearest point of that piece, computed here from the XML.
"""

from __future__ import annotations

import bz2
import gzip
import itertools
import math
import re
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from turn_oracle import TurnOracle

from engine.errors import InvalidCoordinate, PointOffNetwork
from engine.extract import read_osm_file
from engine.extract import tags as osm_tags
from engine.graph import ARRAY_FIELDS, RoadGraph, compile_extract, graph_stats
from engine.io import load_graph
from engine.profiles import car_weights
from engine.query import Route, Router, Unreachable

FIXTURES = Path(__file__).parent / "fixtures" / "osm"
EARTH_RADIUS_M = 6_371_008.8  # IUGG mean radius
REL = 1e-6  # lengths: the engine and this file both use great-circle distances

# OSRM car.lua default speeds (km/h) used by the fixtures
RESIDENTIAL = 25.0
TERTIARY = 40.0
SECONDARY = 55.0
SERVICE = 15.0
PEDESTRIAN = 10.0


# ------------------------------------------------------------------------------ helpers
def read_nodes(name: str) -> dict[int, tuple[float, float]]:
    """OSM node id -> (lat, lon), read from the fixture's XML (independent of the engine)."""
    root = ET.parse(FIXTURES / name).getroot()
    return {int(n.get("id")): (float(n.get("lat")), float(n.get("lon")))
            for n in root.iter("node")}


def haversine(p: tuple[float, float], q: tuple[float, float]) -> float:
    la1, lo1, la2, lo2 = map(math.radians, (*p, *q))
    a = (math.sin((la2 - la1) / 2) ** 2
         + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2)
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def seconds(metres: float, kmh: float) -> float:
    return metres / (kmh / 3.6)


@dataclass
class Map:
    name: str
    graph: RoadGraph
    router: Router
    nodes: dict[int, tuple[float, float]]
    oracle: TurnOracle

    def at(self, a: int, b: int, t: float) -> tuple[float, float]:
        """The point ``t`` of the way from node ``a`` to node ``b`` (straight segment)."""
        (la, lo), (lb, lob) = self.nodes[a], self.nodes[b]
        return (la + t * (lb - la), lo + t * (lob - lo))

    def length(self, *ids: int) -> float:
        """Length of the polyline through these OSM nodes, from the XML coordinates."""
        return sum(haversine(self.nodes[a], self.nodes[b]) for a, b in itertools.pairwise(ids))

    def edges(self, way: int, a: int | None = None, b: int | None = None) -> np.ndarray:
        """Edge ids of ``way`` (optionally only the one(s) from OSM node a to OSM node b)."""
        g = self.graph
        sel = g.way_id == way
        if a is not None:
            sel &= g.point_osm_id[g.tail] == a
        if b is not None:
            sel &= g.point_osm_id[g.head] == b
        return np.flatnonzero(sel)

    def edge(self, way: int, a: int, b: int) -> int:
        found = self.edges(way, a, b)
        assert len(found) == 1, f"expected one edge {a}->{b} on way {way}, got {found}"
        return int(found[0])

    def pairs(self, way: int) -> set[tuple[int, int]]:
        """(tail, head) OSM ids of every edge of ``way``."""
        g = self.graph
        e = self.edges(way)
        return set(zip(g.point_osm_id[g.tail[e]].tolist(), g.point_osm_id[g.head[e]].tolist(),
                       strict=True))

    def route(self, origin, destination, **kw) -> Route | Unreachable:
        return self.router.route(origin, destination, **kw)

    def ok(self, origin, destination, **kw) -> Route:
        res = self.route(origin, destination, **kw)
        assert isinstance(res, Route), f"expected a route, got {res!r}"
        assert res.status == "ok" and res.reachable
        return res

    def flags(self, e: int) -> int:
        """Edge flags without ``F_REVERSED`` (which only says how the edge runs along its
        way: see :meth:`assert_reversed`)."""
        return int(self.graph.flags[e]) & ~osm_tags.F_REVERSED

    def assert_reversed(self, way: int) -> None:
        """``F_REVERSED`` is set exactly on the edges of ``way`` drawn against the way's node
        order in the XML."""
        g = self.graph
        along = set(itertools.pairwise(self.oracle.data.ways[way]))
        edges = self.edges(way)
        assert len(edges)
        for e in edges:
            first = g.geom_offset[e]
            a, b = (int(g.point_osm_id[g.geom_point[first + k]]) for k in (0, 1))
            assert ((a, b) in along) != ((b, a) in along), (way, a, b)
            assert bool(g.flags[e] & osm_tags.F_REVERSED) == ((b, a) in along), (way, a, b)

    def turn_s(self, nodes: list[int], vehicle: str = "car") -> float:
        """Turn costs of a route through these OSM nodes, by the independent oracle."""
        return self.oracle.route(nodes, vehicle)

    def expect(self, res: Route, nodes: list[int], metres: float, road_s: float,
               vehicle: str = "car") -> None:
        """``res`` runs through ``nodes``, is ``metres`` long and lasts ``road_s`` on the
        road plus the oracle's turn costs of ``nodes`` (what ``turn_delay_s`` reports)."""
        turns = self.turn_s(nodes, vehicle)
        assert_route(res, nodes, metres, road_s + turns)
        assert res.turn_delay_s == pytest.approx(turns, rel=REL, abs=1e-9)


def assert_route(res: Route, nodes: list[int], metres: float, secs: float) -> None:
    assert res.osm_nodes == nodes
    assert res.distance_m == pytest.approx(metres, rel=REL)
    assert res.duration_s == pytest.approx(secs, rel=REL)
    # the geometry runs from the snapped origin to the snapped destination
    assert res.coordinates[0] == pytest.approx(res.origin.location(), abs=1e-9)
    assert res.coordinates[-1] == pytest.approx(res.destination.location(), abs=1e-9)


def assert_unreachable(res: object) -> None:
    assert res is not None
    assert isinstance(res, Unreachable)
    assert res.status == "unreachable"
    assert res.reachable is False
    assert res.to_dict()["status"] == "unreachable"


# ------------------------------------------------------------------ main network, fallback
@dataclass(frozen=True)
class Piece:
    """A straight street between OSM nodes ``a`` and ``b``, cut off from the rest."""

    a: int
    b: int
    name: str


def foot(m: Map, p: tuple[float, float], piece: Piece) -> tuple[tuple[float, float], float,
                                                               float]:
    """Nearest point of ``piece`` to ``p``, its distance in metres and its position (0 at
    ``a``, 1 at ``b``), from the XML coordinates in a local planar projection."""
    (la, loa), (lb, lob) = m.nodes[piece.a], m.nodes[piece.b]
    k = math.cos(math.radians(p[0]))
    ax, ay, bx, by = (loa - p[1]) * k, la - p[0], (lob - p[1]) * k, lb - p[0]
    dx, dy = bx - ax, by - ay
    t = min(1.0, max(0.0, -(ax * dx + ay * dy) / (dx * dx + dy * dy)))
    q = (la + t * (lb - la), loa + t * (lob - loa))
    return q, haversine(p, q), t


def assert_fallback(m: Map, res: object, origin: tuple[float, float],
                    destination: tuple[float, float], pieces: list[Piece]
                    ) -> tuple[Piece, list[str]]:
    """``res`` runs on one of ``pieces``, the main network (pieces of one size tie: the engine
    may pick any of them); an end whose point lies on another piece starts / ends at the
    nearest point of the main one, and its snap says why and how far. The route is then the
    straight drive between the two snaps. Returns the main piece and the ends moved."""
    assert isinstance(res, Route), f"expected a fallback route, got {res!r}"
    main = [pc for pc in pieces if set(res.osm_nodes) <= {pc.a, pc.b}]
    assert len(main) == 1, res.osm_nodes
    pc = main[0]
    moved, at = [], []
    for end, snap, p in (("origin", res.origin, origin),
                         ("destination", res.destination, destination)):
        q, gap, t = foot(m, p, pc)
        at.append((q, t))
        assert (snap.lat, snap.lon) == pytest.approx(q, abs=1e-7)
        if gap < 0.01:  # on the main network: kept
            assert snap.fallback is None and snap.distance_m < 0.01
            continue
        moved.append(end)
        own = next(x for x in pieces if foot(m, p, x)[1] < 0.01)
        assert snap.distance_m == pytest.approx(gap, rel=1e-3)
        assert snap.fallback is not None
        assert snap.fallback.startswith(f"{end}: the nearest road, {own.name} (")
        assert "main road network" in snap.fallback
        found = re.search(r"the route (starts|ends) (\d+) m away on (.+)$", snap.fallback)
        assert found, snap.fallback
        assert found[1] == ("starts" if end == "origin" else "ends")
        assert abs(int(found[2]) - gap) <= 1.0 and found[3] == pc.name
    assert moved, "a fallback route moves at least one end"
    (qo, to), (qd, td) = at
    metres = haversine(qo, qd)
    m.expect(res, [pc.a, pc.b] if td >= to else [pc.b, pc.a], metres,
             seconds(metres, RESIDENTIAL))
    return pc, moved


def assert_isolated(m: Map, origin: tuple[float, float], destination: tuple[float, float],
                    moved: list[str], radius_m: float, **kw) -> None:
    """With a fallback radius shorter than the gap, the same ends are isolated instead."""
    router = Router(m.graph, fallback_radius_m=radius_m, cch=m.router.cch)
    res = router.route(origin, destination, **kw)
    assert_unreachable(res)
    assert res.isolated == (moved[0] if len(moved) == 1 else "both")
    assert f"within {radius_m:.0f} m" in res.reason
    for snap in (res.origin, res.destination):  # the nearest roads, unmoved
        assert snap.fallback is None and snap.distance_m < 0.01
    assert res.to_dict()["isolated"] == res.isolated


def ambulance_weights(graph: RoadGraph, *, open_barriers: bool = False) -> np.ndarray:
    """Car weights, plus roads closed to cars only by access tags (``F_CAR_NO``) and, if
    asked, lowerable bollards: what an emergency profile opens by changing weights."""
    forbidden = osm_tags.CAR_FORBIDDEN & ~osm_tags.F_CAR_NO
    allowed = (graph.flags & np.uint32(forbidden)) == 0
    if open_barriers:
        allowed |= (graph.flags & np.uint32(osm_tags.F_BARRIER_LOWERABLE)) != 0
    return np.where(allowed, graph.time_s, np.inf)


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module", autouse=True)
def cache_dir(tmp_path_factory):
    """Graph cache in a temporary directory (never the user's ~/.cache)."""
    path = tmp_path_factory.mktemp("gyrophare-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GYROPHARE_CACHE_DIR", str(path))
        yield path


@pytest.fixture(scope="module")
def maps(cache_dir):
    """Map loader: each fixture is built (and its router created) once per module."""
    loaded: dict[str, Map] = {}

    def get(name: str) -> Map:
        if name not in loaded:
            graph = load_graph(FIXTURES / name, cache_dir=cache_dir)
            loaded[name] = Map(name, graph, Router(graph), read_nodes(name),
                               TurnOracle(FIXTURES / name))
        return loaded[name]

    return get


def test_every_fixture_is_small_valid_osm_with_a_drawing():
    files = sorted(FIXTURES.glob("*.osm"))
    assert len(files) >= 13
    for f in files:
        text = f.read_text(encoding="utf-8")
        root = ET.fromstring(text.encode())
        assert root.tag == "osm" and root.get("version") == "0.6", f.name
        assert "<!--" in text, f"{f.name} has no ASCII drawing"
        assert len(root.findall("node")) <= 20, f.name


# ------------------------------------------------------------------------------ oneway
ONEWAY_ROWS = [(101, 1, 2, "yes"), (102, 3, 4, "1"), (103, 5, 6, "true")]


@pytest.mark.parametrize(("way", "a", "b", "value"), ONEWAY_ROWS)
def test_oneway_flags(maps, way, a, b, value):
    m = maps("oneway.osm")
    g = m.graph
    fwd, bwd = m.edge(way, a, b), m.edge(way, b, a)
    assert g.flags[fwd] & osm_tags.F_ONEWAY and not g.flags[fwd] & osm_tags.F_AGAINST_ONEWAY, value
    assert g.flags[bwd] & osm_tags.F_AGAINST_ONEWAY and not g.flags[bwd] & osm_tags.F_ONEWAY, value
    assert g.twin[fwd] == bwd and g.twin[bwd] == fwd
    w = car_weights(g, "time")
    assert np.isfinite(w[fwd]) and np.isinf(w[bwd])


def test_two_way_row_has_no_oneway_flags(maps):
    m = maps("oneway.osm")
    for e in (m.edge(104, 7, 8), m.edge(104, 8, 7)):
        assert m.graph.flags[e] & (osm_tags.F_ONEWAY | osm_tags.F_AGAINST_ONEWAY) == 0


@pytest.mark.parametrize(("way", "a", "b", "value"), ONEWAY_ROWS)
def test_oneway_with_traffic_is_direct(maps, way, a, b, value):
    m = maps("oneway.osm")
    res = m.ok(m.at(a, b, 0.25), m.at(a, b, 0.75))
    length = m.length(a, b)
    m.expect(res, [a, b], 0.5 * length, seconds(0.5 * length, RESIDENTIAL))
    assert [m.graph.way_id[e] for e in res.edges] == [way]


@pytest.mark.parametrize(
    ("a", "b", "detour"),
    [
        (1, 2, [1, 2, 4, 6, 8, 7, 5, 3, 1, 2]),  # only the bottom row runs west
        (3, 4, [3, 4, 6, 8, 7, 5, 3, 4]),
        (5, 6, [5, 6, 8, 7, 5, 6]),
    ],
)
def test_oneway_against_traffic_takes_the_detour(maps, a, b, detour):
    m = maps("oneway.osm")
    res = m.ok(m.at(a, b, 0.75), m.at(a, b, 0.25))
    # leave forward to b, go round the block, come back in from a
    metres = m.length(*detour) - 2 * 0.75 * m.length(a, b)
    m.expect(res, detour, metres, seconds(metres, RESIDENTIAL))
    assert res.distance_m > 3 * m.length(a, b)  # much longer than the forbidden 49 m
    # no edge of the route is driven against a one-way street
    assert all(m.graph.flags[e] & osm_tags.CAR_FORBIDDEN == 0 for e in res.edges)


def test_two_way_row_both_directions(maps):
    m = maps("oneway.osm")
    length = m.length(7, 8)
    m.expect(m.ok(m.at(7, 8, 0.25), m.at(7, 8, 0.75)), [7, 8], 0.5 * length,
                 seconds(0.5 * length, RESIDENTIAL))
    m.expect(m.ok(m.at(7, 8, 0.75), m.at(7, 8, 0.25)), [8, 7], 0.5 * length,
                 seconds(0.5 * length, RESIDENTIAL))


def test_ways_are_split_at_junctions(maps):
    m = maps("oneway.osm")
    g = m.graph
    assert m.pairs(110) == {(1, 3), (3, 1), (3, 5), (5, 3), (5, 7), (7, 5)}
    assert m.pairs(111) == {(2, 4), (4, 2), (4, 6), (6, 4), (6, 8), (8, 6)}
    assert m.pairs(101) == {(1, 2), (2, 1)}
    assert g.n_nodes == 8 and g.n_edges == 20
    # graph nodes are the first n points; every OSM node is a junction here
    assert sorted(g.point_osm_id[: g.n_nodes].tolist()) == list(range(1, 9))
    assert np.array_equal(g.point_osm_id[: g.n_nodes], g.osm_id)
    e = m.edge(110, 3, 5)
    assert g.length_m[e] == pytest.approx(m.length(3, 5), rel=REL)
    assert g.time_s[e] == pytest.approx(seconds(m.length(3, 5), RESIDENTIAL), rel=REL)
    assert g.edge_name(e) == "Rue Ouest"


@pytest.mark.parametrize("algorithm", ["bidirectional", "dijkstra", "astar"])
@pytest.mark.parametrize("metric", ["time", "distance"])
def test_algorithms_and_metrics_agree_on_the_detour(maps, algorithm, metric):
    m = maps("oneway.osm")
    detour = [3, 4, 6, 8, 7, 5, 3, 4]
    res = m.ok(m.at(3, 4, 0.75), m.at(3, 4, 0.25), algorithm=algorithm, metric=metric)
    metres = m.length(*detour) - 1.5 * m.length(3, 4)
    m.expect(res, detour, metres, seconds(metres, RESIDENTIAL))
    assert res.cost == pytest.approx(metres if metric == "distance" else res.duration_s,
                                     rel=REL)


# ------------------------------------------------------------------------------ oneway=-1
def test_oneway_minus_one_flags(maps):
    m = maps("oneway_reverse.osm")
    g = m.graph
    drawn, legal = m.edge(201, 1, 2), m.edge(201, 2, 1)
    assert g.flags[drawn] & osm_tags.F_AGAINST_ONEWAY and not g.flags[drawn] & osm_tags.F_ONEWAY
    assert g.flags[legal] & osm_tags.F_ONEWAY and not g.flags[legal] & osm_tags.F_AGAINST_ONEWAY


def test_oneway_minus_one_routes(maps):
    m = maps("oneway_reverse.osm")
    length = m.length(1, 2)
    # against the drawing (legal): straight
    res = m.ok(m.at(1, 2, 0.75), m.at(1, 2, 0.25))
    m.expect(res, [2, 1], 0.5 * length, seconds(0.5 * length, RESIDENTIAL))
    # along the drawing (illegal): round the block by way 202
    res = m.ok(m.at(1, 2, 0.25), m.at(1, 2, 0.75))
    metres = 0.25 * length + m.length(1, 4, 3, 2) + 0.25 * length
    m.expect(res, [2, 1, 4, 3, 2, 1], metres, seconds(metres, RESIDENTIAL))


# ------------------------------------------------------------------------------ reversible
def test_reversible_is_closed_to_cars_both_ways(maps):
    m = maps("reversible.osm")
    g = m.graph
    w = car_weights(g, "time")
    for e in (m.edge(301, 1, 2), m.edge(301, 2, 1)):
        assert g.flags[e] & osm_tags.F_REVERSIBLE
        assert not g.flags[e] & (osm_tags.F_ONEWAY | osm_tags.F_AGAINST_ONEWAY)
        assert np.isinf(w[e])
        assert g.speed_kmh[e] == TERTIARY
    # a call in the middle of the reversible street lands on the usable loop road
    snap = m.router.snap(m.at(1, 2, 0.5))
    assert g.way_id[snap.edge] == 302
    assert snap.distance_m == pytest.approx(0.5 * m.length(1, 2), rel=1e-3)


@pytest.mark.parametrize("direction", ["west_to_east", "east_to_west"])
def test_reversible_detour_both_directions(maps, direction):
    m = maps("reversible.osm")
    west, east = m.at(1, 4, 0.5), m.at(2, 3, 0.5)
    metres = 0.5 * m.length(1, 4) + m.length(4, 3) + 0.5 * m.length(3, 2)
    if direction == "west_to_east":
        res, nodes = m.ok(west, east), [1, 4, 3, 2]
    else:
        res, nodes = m.ok(east, west), [2, 3, 4, 1]
    m.expect(res, nodes, metres, seconds(metres, RESIDENTIAL))
    assert 301 not in {int(m.graph.way_id[e]) for e in res.edges}


# ------------------------------------------------------------------------------ roundabout
RING = [11, 12, 13, 14, 11]  # drawing order = driving order (counter-clockwise)


def test_roundabout_flags_and_split(maps):
    m = maps("roundabout.osm")
    g = m.graph
    assert len(m.edges(401)) == 8  # 4 pieces (split at each arm), 2 directions
    for a, b in itertools.pairwise(RING):
        fwd, bwd = m.edge(401, a, b), m.edge(401, b, a)
        assert g.flags[fwd] & osm_tags.F_ROUNDABOUT and g.flags[fwd] & osm_tags.F_ONEWAY
        assert g.flags[bwd] & osm_tags.F_ROUNDABOUT and g.flags[bwd] & osm_tags.F_AGAINST_ONEWAY
        assert g.speed_kmh[fwd] == TERTIARY
    for way in (411, 412, 413, 414):
        assert all(m.flags(e) == 0 for e in m.edges(way))
        m.assert_reversed(way)
    m.assert_reversed(401)


def test_roundabout_short_way_round(maps):
    m = maps("roundabout.osm")
    res = m.ok(m.at(24, 14, 0.5), m.at(11, 21, 0.5))  # east arm -> north arm: 1/4 turn
    arms = 0.5 * m.length(24, 14) + 0.5 * m.length(11, 21)
    ring = m.length(14, 11)
    m.expect(res, [24, 14, 11, 21], arms + ring,
                 seconds(arms, RESIDENTIAL) + seconds(ring, TERTIARY))
    # the rotary step is named after the road it leaves by, as OSRM's (the ring's name is
    # its rotary_name)
    assert [s.name for s in res.steps] == ["Est", "Nord", "Nord"]
    assert res.steps[1].rotary_name == "Place de la République"


def test_roundabout_long_way_round(maps):
    m = maps("roundabout.osm")
    res = m.ok(m.at(21, 11, 0.5), m.at(14, 24, 0.5))  # north arm -> east arm: 3/4 turn
    arms = 0.5 * m.length(21, 11) + 0.5 * m.length(14, 24)
    ring = m.length(11, 12, 13, 14)
    m.expect(res, [21, 11, 12, 13, 14, 24], arms + ring,
                 seconds(arms, RESIDENTIAL) + seconds(ring, TERTIARY))
    assert ring > 2.5 * m.length(11, 14)  # it did not cut back against the ring


# ------------------------------------------------------------------------------ access
def test_access_no_flags_and_hierarchy(maps):
    m = maps("access.osm")
    g = m.graph
    w = car_weights(g, "time")
    for e in m.edges(501):
        assert g.flags[e] & osm_tags.F_CAR_NO and np.isinf(w[e])
    assert len(m.edges(503)) == 2
    for e in m.edges(503):  # access=no + motor_vehicle=yes: the specific tag wins
        assert not g.flags[e] & osm_tags.F_CAR_NO and np.isfinite(w[e])


def test_access_no_road_is_avoided(maps):
    m = maps("access.osm")
    res = m.ok(m.at(1, 3, 0.25), m.at(2, 4, 0.25))
    metres = 0.75 * m.length(1, 3) + m.length(3, 4) + 0.75 * m.length(4, 2)
    m.expect(res, [1, 3, 4, 2], metres, seconds(metres, RESIDENTIAL))
    forbidden = 0.25 * m.length(1, 3) + m.length(1, 2) + 0.25 * m.length(2, 4)
    assert res.distance_m > forbidden + 90


def test_motor_vehicle_yes_beats_access_no(maps):
    m = maps("access.osm")
    length = m.length(5, 6)
    res = m.ok(m.at(5, 6, 0.25), m.at(5, 6, 0.75))
    m.expect(res, [5, 6], 0.5 * length, seconds(0.5 * length, RESIDENTIAL))
    assert [s.name for s in res.steps] == ["Rue Ouverte"]


# ------------------------------------------------------------------------------ emergency only
def test_motor_vehicle_no_emergency_yes_flags(maps):
    m = maps("emergency.osm")
    g = m.graph
    for e in m.edges(601):
        assert g.flags[e] & osm_tags.F_CAR_NO and g.flags[e] & osm_tags.F_EMERGENCY_YES
    # footway with emergency=yes: kept, as a pedestrian-class road cars may not use
    assert m.pairs(604) == {(3, 5), (5, 3)}
    for e in m.edges(604):
        assert osm_tags.HIGHWAY_CLASSES[g.highway[e]] == "pedestrian"
        assert g.flags[e] & osm_tags.F_CAR_NO and g.flags[e] & osm_tags.F_EMERGENCY_YES
        assert g.speed_kmh[e] == PEDESTRIAN
    # a plain footway is not a road at all
    assert len(m.edges(605)) == 0
    assert 6 not in g.point_osm_id.tolist()


def test_car_cannot_cross_emergency_only_link(maps):
    """Without the link the car's network is two equal pieces: a route between them starts
    or ends on the main one (the nearest point, 147 m away), never crossing way 601."""
    m = maps("emergency.osm")
    pieces = [Piece(4, 1, "Rue A"), Piece(2, 3, "Rue B")]
    west, east = m.at(4, 1, 0.5), m.at(2, 3, 0.5)
    mains = set()
    for o, d in ((west, east), (east, west)):
        res = m.route(o, d)
        main, moved = assert_fallback(m, res, o, d, pieces)
        mains.add(main)
        assert 601 not in {int(m.graph.way_id[e]) for e in res.edges}
        assert_isolated(m, o, d, moved, 100.0)
    assert len(mains) == 1  # one main network for one weights snapshot


def test_emergency_weights_open_the_link(maps):
    m = maps("emergency.osm")
    res = m.ok(m.at(4, 1, 0.5), m.at(2, 3, 0.5), weights=ambulance_weights(m.graph))
    metres = 0.5 * m.length(4, 1) + m.length(1, 2) + 0.5 * m.length(2, 3)
    m.expect(res, [4, 1, 2, 3], metres, seconds(metres, RESIDENTIAL))
    assert any(m.graph.way_id[e] == 601 for e in res.edges)


# ------------------------------------------------------------------------------ bollards
def barrier_edges(m: Map) -> np.ndarray:
    return np.flatnonzero(m.graph.highway == osm_tags.HIGHWAY_CODE["barrier"])


def test_bollard_node_is_split_with_zero_length_barrier_edges(maps):
    m = maps("bollard.osm")
    g = m.graph
    edges = barrier_edges(m)
    assert len(edges) == 4  # one pair per bollard
    assert np.all(g.length_m[edges] == 0.0) and np.all(g.time_s[edges] == 0.0)
    assert np.all(g.way_id[edges] == 0)
    assert np.all(g.tail[edges] != g.head[edges])  # between two copies of the node
    osm = g.point_osm_id
    assert np.array_equal(osm[g.tail[edges]], osm[g.head[edges]])
    assert sorted(osm[g.tail[edges]].tolist()) == [2, 2, 7, 7]
    # one copy of each bollard per road end meeting it, at the bollard's position
    for nid in (2, 7):
        copies = np.flatnonzero(osm == nid)
        assert len(copies) == 2
        assert np.all(g.point_lat[copies] == pytest.approx(m.nodes[nid][0], abs=1e-7))
    for e in edges:
        assert g.twin[g.twin[e]] == e and g.twin[e] in edges
    # the street still ends at the bollard on both sides
    assert m.pairs(701) == {(1, 2), (2, 1), (2, 3), (3, 2)}


def test_bollard_flags(maps):
    m = maps("bollard.osm")
    g = m.graph
    for e in barrier_edges(m):
        nid = int(g.point_osm_id[g.tail[e]])
        if nid == 2:  # barrier=bollard
            assert m.flags(e) == osm_tags.F_BARRIER
        else:  # barrier=bollard + bollard=rising
            assert m.flags(e) == osm_tags.F_BARRIER | osm_tags.F_BARRIER_LOWERABLE
        assert not g.car_allowed()[e]
    # the road edges touching the bollard are ordinary
    assert all(m.flags(e) == 0 for e in m.edges(701))
    m.assert_reversed(701)


def test_car_reaches_the_bollard_from_both_sides(maps):
    m = maps("bollard.osm")
    west = m.ok(m.at(1, 4, 0.5), m.at(1, 2, 0.8))
    metres = 0.5 * m.length(1, 4) + 0.8 * m.length(1, 2)
    m.expect(west, [4, 1, 2], metres, seconds(metres, RESIDENTIAL))
    east = m.ok(m.at(5, 3, 0.5), m.at(3, 2, 0.8))
    metres = 0.5 * m.length(5, 3) + 0.8 * m.length(3, 2)
    m.expect(east, [5, 3, 2], metres, seconds(metres, RESIDENTIAL))


def test_car_cannot_pass_the_bollard(maps):
    m = maps("bollard.osm")
    res = m.ok(m.at(1, 2, 0.8), m.at(3, 2, 0.8))  # 10 m either side of the bollard
    nodes = [2, 1, 4, 5, 3, 2]
    metres = 0.8 * m.length(2, 1) + m.length(1, 4, 5, 3) + 0.8 * m.length(3, 2)
    m.expect(res, nodes, metres, seconds(metres, RESIDENTIAL))
    assert all(m.graph.highway[e] != osm_tags.HIGHWAY_CODE["barrier"] for e in res.edges)


def test_rising_bollard_blocks_cars_but_opens_for_emergency_weights(maps):
    m = maps("bollard.osm")
    a, b = m.at(6, 7, 0.8), m.at(8, 7, 0.8)
    car = m.ok(a, b)
    assert car.osm_nodes == [7, 6, 4, 5, 8, 7]
    w = ambulance_weights(m.graph, open_barriers=True)
    amb = m.ok(a, b, weights=w)
    metres = 0.2 * m.length(6, 7) + 0.2 * m.length(7, 8)
    m.expect(amb, [6, 7, 8], metres, seconds(metres, RESIDENTIAL))
    assert sum(m.graph.highway[e] == osm_tags.HIGHWAY_CODE["barrier"] for e in amb.edges) == 1
    # a fixed bollard stays closed with the same weights
    fixed = m.ok(m.at(1, 2, 0.8), m.at(3, 2, 0.8), weights=w)
    assert fixed.osm_nodes == [2, 1, 4, 5, 3, 2]


# ------------------------------------------------------------------------------ clipped
def test_clipped_ways_load_and_are_cut_at_missing_nodes(maps):
    m = maps("clipped.osm")
    g = m.graph
    assert m.pairs(801) == {(1, 2), (2, 1), (3, 4), (4, 3)}
    assert m.pairs(802) == {(5, 6), (6, 5)}
    assert len(m.edges(803)) == 0  # one node left: no edge
    ids = set(g.point_osm_id.tolist())
    assert ids == {1, 2, 3, 4, 5, 6}
    assert g.n_nodes == 6
    for e in m.edges(801):
        assert g.length_m[e] == pytest.approx(m.length(1, 2), rel=1e-3)  # no jump across


def test_clipped_way_pieces_route_but_do_not_connect(maps):
    m = maps("clipped.osm")
    length = m.length(1, 2)
    m.expect(m.ok(m.at(1, 2, 0.25), m.at(1, 2, 0.75)), [1, 2], 0.5 * length,
             seconds(0.5 * length, RESIDENTIAL))
    # three pieces of one size: the route runs on the main one, moving what is not on it
    o, d = m.at(1, 2, 0.5), m.at(3, 4, 0.5)
    pieces = [Piece(1, 2, "Rue Coupée"), Piece(3, 4, "Rue Coupée"), Piece(5, 6, "Rue du Bord")]
    _, moved = assert_fallback(m, m.route(o, d), o, d, pieces)
    assert_isolated(m, o, d, moved, 90.0)  # every gap here is 98 m or more


# ------------------------------------------------------------------------------ components
@pytest.mark.parametrize("algorithm", ["cch", "bidirectional", "dijkstra", "astar"])
@pytest.mark.parametrize("metric", ["time", "distance"])
def test_disconnected_components_fall_back_or_are_isolated(maps, algorithm, metric):
    """The pieces are ~930 m apart: within the default fallback radius (2 x 500 m) the route
    runs on the main piece from / to its nearest point; with a 500 m radius the moved end is
    isolated."""
    m = maps("disconnected.osm")
    o, d = m.at(1, 2, 0.5), m.at(3, 4, 0.5)
    assert m.router.fallback_radius_m == 1000.0
    res = m.route(o, d, algorithm=algorithm, metric=metric)
    _, moved = assert_fallback(m, res, o, d, [Piece(1, 2, "Rue Ouest"), Piece(3, 4, "Rue Est")])
    assert len(moved) == 1
    assert res.metric == metric
    if metric == "distance":
        assert res.cost == pytest.approx(res.distance_m, rel=REL)
    assert_isolated(m, o, d, moved, 500.0, algorithm=algorithm, metric=metric)
    far = Router(m.graph, fallback_radius_m=500.0, cch=m.router.cch).route(o, d, metric=metric)
    assert far.metric == metric
    assert m.graph.way_id[far.origin.edge] == 901
    assert m.graph.way_id[far.destination.edge] == 902


def test_disconnected_graph_stats(maps):
    stats = graph_stats(maps("disconnected.osm").graph)
    assert stats["nodes"] == 4 and stats["edges"] == 4
    assert stats["largest_scc_share"] == 0.5


def test_point_far_from_every_road_is_off_network(maps):
    m = maps("disconnected.osm")
    far = (47.3300, 5.0400)  # 1.1 km north of node 1
    with pytest.raises(PointOffNetwork) as info:
        m.route(far, m.at(1, 2, 0.5))
    assert info.value.distance_m == pytest.approx(haversine(far, m.nodes[1]), rel=0.01)
    assert info.value.distance_m > info.value.radius_m == 500.0
    with pytest.raises(PointOffNetwork):
        m.route(m.at(1, 2, 0.5), far)


@pytest.mark.parametrize(
    "bad",
    [(95.0, 5.04), (float("nan"), 5.04), (47.32, 181.0), (47.32, float("inf")),
     ("abc", 5.04), (47.32,), None],
)
def test_invalid_coordinates_raise(maps, bad):
    m = maps("disconnected.osm")
    with pytest.raises(InvalidCoordinate):
        m.route(bad, m.at(1, 2, 0.5))
    with pytest.raises(InvalidCoordinate):
        m.route(m.at(1, 2, 0.5), bad)


# ------------------------------------------------------------------------------ signals
def test_signal_points(maps):
    m = maps("signals.osm")
    g = m.graph
    assert sorted(g.point_osm_id[g.point_signal].tolist()) == [2, 3]
    # a signal is a graph node even mid-street: the extract splits way 1001 there, so its
    # delay falls on the turns through it (node 3 is the junction of ways 1001 and 1002)
    assert {2, 3} <= set(g.osm_id.tolist())
    assert m.pairs(1001) == {(1, 2), (2, 1), (2, 3), (3, 2)}
    assert m.pairs(1002) == {(3, 4), (4, 3)}
    assert graph_stats(g)["traffic_signals"] == 2


def test_mid_street_signal_is_reported_with_its_time(maps):
    m = maps("signals.osm")
    res = m.ok(m.at(1, 2, 0.1), m.at(2, 3, 0.5))
    to_signal = 0.9 * m.length(1, 2)
    metres = to_signal + 0.5 * m.length(2, 3)
    m.expect(res, [1, 2, 3], metres, seconds(metres, SECONDARY))
    assert res.turn_delay_s == pytest.approx(2.0)  # the car's 2 s at the signal, no angle
    assert len(res.signals) == 1
    sig = res.signals[0]
    assert sig.osm_id == 2
    assert (sig.lat, sig.lon) == pytest.approx(m.nodes[2], abs=1e-7)
    assert 0.0 < sig.seconds_from_start < res.duration_s
    # reached before its own delay
    assert sig.seconds_from_start == pytest.approx(seconds(to_signal, SECONDARY), rel=REL)


@pytest.mark.parametrize("direction", ["east", "west"])
def test_signals_in_driving_order(maps, direction):
    m = maps("signals.osm")
    west, east = m.at(1, 2, 0.1), m.at(3, 4, 0.5)
    if direction == "east":
        res, nodes = m.ok(west, east), [1, 2, 3, 4]
        expected = [(2, 0.9 * m.length(1, 2)), (3, 0.9 * m.length(1, 2) + m.length(2, 3))]
    else:
        res, nodes = m.ok(east, west), [4, 3, 2, 1]
        expected = [(3, 0.5 * m.length(4, 3)), (2, 0.5 * m.length(4, 3) + m.length(3, 2))]
    metres = expected[-1][1] + (0.9 if direction == "west" else 0.5) * m.length(nodes[-2],
                                                                                 nodes[-1])
    m.expect(res, nodes, metres, seconds(metres, SECONDARY))
    assert res.turn_delay_s == pytest.approx(4.0)  # two signals, 2 s each
    assert [s.osm_id for s in res.signals] == [nid for nid, _ in expected]
    for sig, (nid, metres) in zip(res.signals, expected, strict=True):
        # the time on the road plus the delays of the signals passed before this one
        waited = m.oracle.before(nodes, nodes.index(nid))
        assert sig.seconds_from_start == pytest.approx(seconds(metres, SECONDARY) + waited,
                                                       rel=REL)
        assert sig.distance_from_start_m == pytest.approx(metres, rel=REL)
        assert 0.0 < sig.seconds_from_start < res.duration_s
    assert [d["osm_id"] for d in res.to_dict()["signals"]] == [nid for nid, _ in expected]


def test_route_without_signals(maps):
    m = maps("signals.osm")
    res = m.ok(m.at(3, 4, 0.2), m.at(3, 4, 0.8))
    assert res.osm_nodes == [3, 4]
    assert res.signals == []


# ------------------------------------------------------------------------------ maxspeed
MPH = 1.609344
#: a tagged limit is driven at 0.8 x (OSRM car.lua ``speed_reduction``); class defaults as is
R = 0.8
MAXSPEEDS = [  # way, first node, last node, km/h forward, km/h backward
    (1101, 11, 12, R * 50.0, R * 50.0),  # 50
    (1102, 21, 22, R * 30 * MPH, R * 30 * MPH),  # 30 mph
    (1103, 31, 32, R * 50.0, R * 50.0),  # FR:urban
    (1104, 41, 42, R * 80.0, R * 80.0),  # FR:rural
    (1105, 51, 52, R * 30.0, R * 30.0),  # FR:zone30
    (1106, 61, 62, R * 50.0, R * 50.0),  # 50;70: the lower one
    (1107, 71, 72, RESIDENTIAL, RESIDENTIAL),  # garbage: class default
    (1108, 81, 82, R * 70.0, R * 30.0),  # maxspeed:forward / :backward beat maxspeed
    (1109, 91, 92, 65.0, 65.0),  # primary, no maxspeed
]


@pytest.mark.parametrize(("way", "a", "b", "fwd", "bwd"), MAXSPEEDS)
def test_maxspeed_on_edges(maps, way, a, b, fwd, bwd):
    m = maps("maxspeed.osm")
    g = m.graph
    for e, kmh in ((m.edge(way, a, b), fwd), (m.edge(way, b, a), bwd)):
        assert g.speed_kmh[e] == pytest.approx(kmh, rel=1e-6)
        assert g.time_s[e] == pytest.approx(seconds(m.length(a, b), kmh), rel=REL)


@pytest.mark.parametrize(("way", "a", "b", "fwd", "bwd"), MAXSPEEDS)
def test_maxspeed_route_durations(maps, way, a, b, fwd, bwd):
    m = maps("maxspeed.osm")
    half = 0.5 * m.length(a, b)
    m.expect(m.ok(m.at(a, b, 0.25), m.at(a, b, 0.75)), [a, b], half, seconds(half, fwd))
    m.expect(m.ok(m.at(a, b, 0.75), m.at(a, b, 0.25)), [b, a], half, seconds(half, bwd))


# ------------------------------------------------------------------------------ bus, busway
def test_bus_lane_busway_emergency_access_flags(maps):
    m = maps("bus.osm")
    g = m.graph
    east, west = m.edge(1201, 1, 2), m.edge(1201, 2, 1)
    assert g.flags[east] & osm_tags.F_BUS_LANE and not g.flags[west] & osm_tags.F_BUS_LANE
    assert not (g.flags[east] | g.flags[west]) & osm_tags.CAR_FORBIDDEN  # cars share the road
    for e in m.edges(1202):
        assert osm_tags.HIGHWAY_CLASSES[g.highway[e]] == "busway"
        assert g.flags[e] & osm_tags.F_BUSWAY and g.flags[e] & osm_tags.F_PSV and g.flags[e] & osm_tags.F_CAR_NO
    for e in m.edges(1203):
        assert osm_tags.HIGHWAY_CLASSES[g.highway[e]] == "service"
        assert g.flags[e] & osm_tags.F_EMERGENCY_ACCESS and g.flags[e] & osm_tags.F_CAR_NO
        assert g.speed_kmh[e] == SERVICE
    w = car_weights(g, "time")
    assert np.all(np.isinf(w[m.edges(1202)])) and np.all(np.isinf(w[m.edges(1203)]))
    assert len(m.edges(1202)) == len(m.edges(1203)) == 2


def test_car_avoids_busway(maps):
    m = maps("bus.osm")
    res = m.ok(m.at(3, 1, 0.25), m.at(4, 2, 0.25))
    metres = 0.75 * m.length(3, 1) + m.length(1, 2) + 0.75 * m.length(2, 4)
    m.expect(res, [3, 1, 2, 4], metres, seconds(metres, RESIDENTIAL))


def test_car_avoids_emergency_access(maps):
    m = maps("bus.osm")
    res = m.ok(m.at(5, 3, 0.25), m.at(6, 4, 0.25))
    metres = (0.75 * m.length(5, 3) + m.length(3, 1, 2, 4) + 0.75 * m.length(4, 6))
    m.expect(res, [5, 3, 1, 2, 4, 6], metres, seconds(metres, RESIDENTIAL))
    # with emergency weights the 100 m link is used instead
    amb = m.ok(m.at(5, 3, 0.25), m.at(6, 4, 0.25), weights=ambulance_weights(m.graph))
    assert any(m.graph.way_id[e] == 1203 for e in amb.edges)
    assert amb.distance_m == pytest.approx(
        0.25 * m.length(5, 3) + m.length(5, 6) + 0.25 * m.length(6, 4), rel=REL)


# ------------------------------------------------------------------------------ hospitals
def polygon_centroid(ring: list[tuple[float, float]]) -> tuple[float, float]:
    """Planar (lat, lon) centroid of a simple polygon, by the shoelace formula."""
    area = cy = cx = 0.0
    for (y0, x0), (y1, x1) in itertools.pairwise([*ring, ring[0]]):
        cross = x0 * y1 - x1 * y0
        area += cross
        cx += (x0 + x1) * cross
        cy += (y0 + y1) * cross
    return (cy / (3 * area), cx / (3 * area))


def test_hospitals_node_and_way(maps):
    m = maps("hospitals.osm")
    g = m.graph
    by_id = {h["id"]: h for h in g.hospitals}
    assert set(by_id) == {"osm-node-50", "osm-way-1301"}
    node = by_id["osm-node-50"]
    assert (node["osm_type"], node["osm_id"]) == ("node", 50)
    assert node["name"] == "CHU Dijon Bourgogne" and node["emergency"] == "yes"
    assert (node["lat"], node["lon"]) == pytest.approx(m.nodes[50], abs=1e-7)
    way = by_id["osm-way-1301"]
    assert (way["osm_type"], way["osm_id"]) == ("way", 1301)
    assert way["name"] == "Clinique de Fontaine" and way["emergency"] is None
    centroid = polygon_centroid([m.nodes[i] for i in (60, 61, 62, 63)])
    assert (way["lat"], way["lon"]) == pytest.approx(centroid, abs=1e-7)
    # a trapezoid: the centroid is not the middle of the bounding box
    assert abs(centroid[1] - 5.0421) > 1e-5
    # the outline is not a road
    assert not {60, 61, 62, 63} & set(g.point_osm_id.tolist())
    assert graph_stats(g)["hospitals"] == 2


def test_hospital_is_routable_and_survives_the_cache(maps, cache_dir):
    m = maps("hospitals.osm")
    h = next(h for h in m.graph.hospitals if h["osm_type"] == "node")
    res = m.ok(m.at(1, 2, 0.1), (h["lat"], h["lon"]))  # the hospital is east of it
    foot = (m.nodes[1][0], h["lon"])  # the street runs due east at node 1's latitude
    assert res.destination.distance_m == pytest.approx(haversine(foot, m.nodes[50]), abs=0.5)
    assert res.osm_nodes == [1, 2]
    cached = load_graph(FIXTURES / "hospitals.osm", cache_dir=cache_dir)
    assert cached.meta.get("cache_file") is None  # this one came from the cache
    assert list(cache_dir.glob("hospitals-*.npz"))
    assert cached.hospitals == m.graph.hospitals
    for name in ARRAY_FIELDS:
        assert np.array_equal(getattr(cached, name), getattr(m.graph, name)), name


# ------------------------------------------------------------------------------ compressed
@pytest.mark.parametrize("name", ["bollard.osm", "hospitals.osm"])
def test_gzip_and_bzip2_copies_read_identically(tmp_path, name):
    src = FIXTURES / name
    plain = compile_extract(read_osm_file(src))
    gz, bz = tmp_path / f"{name}.gz", tmp_path / f"{name}.bz2"
    with open(src, "rb") as fh, gzip.open(gz, "wb") as out:
        shutil.copyfileobj(fh, out)
    with open(src, "rb") as fh, bz2.open(bz, "wb") as out:
        shutil.copyfileobj(fh, out)
    assert gz.read_bytes()[:2] == b"\x1f\x8b" and bz.read_bytes()[:3] == b"BZh"
    for path in (gz, bz):
        graph = compile_extract(read_osm_file(path))
        for field in ARRAY_FIELDS:
            assert np.array_equal(getattr(graph, field), getattr(plain, field)), (path, field)
        assert graph.hospitals == plain.hospitals
        loaded = load_graph(path, cache_dir=tmp_path / "cache")
        assert np.array_equal(loaded.flags, plain.flags)
    assert plain.n_edges > 0


# ------------------------------------------------------------------ exact node positions
def test_route_between_exact_node_positions(maps):
    m = maps("oneway.osm")
    res = m.ok(m.nodes[1], m.nodes[2])
    assert res.osm_nodes == [1, 2]
    assert [s.name for s in res.steps] == ["Rue Yes"]
    assert [int(m.graph.way_id[e]) for e in res.edges] == [101]


def test_destination_on_a_bollard_is_reached_from_the_near_side(maps):
    m = maps("bollard.osm")
    res = m.ok(m.at(5, 3, 0.5), m.nodes[2])
    assert res.distance_m == pytest.approx(0.5 * m.length(5, 3) + m.length(3, 2), rel=REL)
