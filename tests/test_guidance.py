"""Turn-by-turn guidance (``engine.guidance``).

Part one follows the "Expected:" paragraph of the hand-written fixtures
``tests/fixtures/osm/guidance_*.osm`` (and the older ``roundabout.osm``): the maneuver
sequence (type, modifier, exit) of routes between OSM nodes, the OSM tags the steps carry,
the intersections and lanes, the instructions in English and French.

Part two runs on Monaco: no step hides a turn of 60 degrees or more at a junction with a
choice; the OSRM endpoint and /v1/route show the same steps; the ``language`` option.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conftest import road_midpoint_pairs
from engine.graph import RoadGraph
from engine.guidance import instruction, lanes, modifier, unannounced_turns
from engine.io import load_graph
from engine.query import Route, Router
from engine.results import Step

FIXTURES = Path(__file__).parent / "fixtures" / "osm"


class Fixture:
    def __init__(self, path: Path, cache: Path) -> None:
        self.graph: RoadGraph = load_graph(path, cache_dir=cache)
        self.router = Router(self.graph)

    def node(self, osm_id: int) -> tuple[float, float]:
        p = self.graph.point_of_osm_node(osm_id)
        assert p is not None, osm_id
        return float(self.graph.point_lat[p]), float(self.graph.point_lon[p])

    def mid(self, a: int, b: int) -> tuple[float, float]:
        (la, lo), (lb, lob) = self.node(a), self.node(b)
        return (la + lb) / 2, (lo + lob) / 2

    def trip(self, a: tuple[int, int], b: tuple[int, int]) -> Route:
        res = self.router.route(self.mid(*a), self.mid(*b), profile="car")
        assert isinstance(res, Route)
        return res


def seq(route: Route) -> list[tuple[str, str | None, int | None]]:
    out = []
    for s in route.all_steps:
        assert s.maneuver is not None
        out.append((s.maneuver.type, s.maneuver.modifier, s.maneuver.exit))
    return out


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    cache = tmp_path_factory.mktemp("guidance-fixtures")
    loaded: dict[str, Fixture] = {}

    def get(name: str) -> Fixture:
        if name not in loaded:
            loaded[name] = Fixture(FIXTURES / name, cache)
        return loaded[name]

    return get


# ------------------------------------------------------------------------------ modifiers
@pytest.mark.parametrize(("angle", "expected"), [
    (0.0, "straight"), (10.0, "straight"), (-10.0, "straight"), (10.5, "slight right"),
    (-40.0, "slight left"), (40.5, "right"), (-120.0, "left"), (121.0, "sharp right"),
    (-179.0, "sharp left"),
])
def test_modifier_follows_osrm_get_turn_direction(angle, expected):
    assert modifier(angle) == expected


def test_lanes_mark_the_lanes_of_the_move():
    assert lanes("left|through;right|right", "right") == [
        {"indications": ["left"], "valid": False},
        {"indications": ["through", "right"], "valid": True},
        {"indications": ["right"], "valid": True}]
    assert [x["valid"] for x in lanes("left||", "straight")] == [False, True, True]


# ------------------------------------------------------------------------------ roundabouts
@pytest.mark.parametrize(("a", "b", "exit_", "street"), [
    ((24, 14), (13, 23), 2, "Rue Sud"),  # the one-way west arm is no exit
    ((24, 14), (11, 21), 1, "Rue Nord"),
    ((22, 12), (14, 24), 2, "Rue Est"),
])
def test_roundabout_counts_the_exits_a_car_may_take(fx, a, b, exit_, street):
    m = fx("guidance_roundabout.osm")
    res = m.trip(a, b)
    assert seq(res) == [("depart", None, None), ("roundabout", "right", exit_),
                        ("exit roundabout", "right", exit_), ("arrive", None, None)]
    # as OSRM, the roundabout step is named after the road it leaves the ring by
    assert res.steps[1].name == street
    assert instruction(res.steps[1]) == (
        f"Enter the roundabout and take the {['first', 'second'][exit_ - 1]} exit onto "
        f"{street}")
    assert instruction(res.steps[1], "fr") == (
        f"Entrez dans le rond-point et prenez la {['première', 'deuxième'][exit_ - 1]} "
        f"sortie sur {street}")


def test_named_large_ring_is_a_rotary_and_keeps_the_street_steps(fx):
    m = fx("roundabout.osm")  # "Place de la République", radius ~45 m
    res = m.trip((24, 14), (11, 21))
    assert seq(res) == [("depart", None, None), ("rotary", "right", 1),
                        ("exit rotary", "right", 1), ("arrive", None, None)]
    assert res.steps[1].rotary_name == "Place de la République"
    # OSRM: the ring's name is the rotary_name, the step's name the road it leaves by
    assert [s.name for s in res.steps] == ["Est", "Nord", "Nord"]
    res = m.trip((21, 11), (14, 24))  # three quarters round
    assert [x[2] for x in seq(res)] == [None, 3, 3, None]
    assert instruction(res.steps[1]) == ("Enter Place de la République and take the third "
                                         f"exit onto {res.steps[1].name}")
    assert res.steps[1].name == res.steps[2].name != ""


# ------------------------------------------------------------------------------ motorway
def test_motorway_exit_ramp_then_end_of_road(fx):
    m = fx("guidance_motorway.osm")
    res = m.trip((1, 2), (7, 6))
    assert seq(res) == [("depart", None, None), ("off ramp", "slight right", None),
                        ("end of road", "right", None), ("arrive", None, None)]
    depart, ramp, end = res.steps
    assert (depart.name, depart.ref) == ("Autoroute", "A 31")
    assert (ramp.exits, ramp.destinations) == ("1", "Beaune")
    assert ramp.intersections[0].classes == ["motorway"]
    assert instruction(ramp) == "Take exit 1 on the right towards Beaune"
    assert instruction(ramp, "fr") == "Prenez la sortie 1 à droite en direction de Beaune"
    assert instruction(end) == "At the end of the road, turn right onto Route de Beaune"


def test_entry_ramp_then_merge_with_lanes_and_classes(fx):
    m = fx("guidance_motorway.osm")
    res = m.trip((7, 6), (3, 4))
    assert seq(res) == [("depart", None, None), ("on ramp", "left", None),
                        ("merge", "slight left", None), ("arrive", None, None)]
    depart, ramp, merge = res.steps
    assert ramp.destinations == "A 31: Dijon"
    # the primary's turn:lanes:forward "left|through": straight on at E, left at P2
    passed = depart.intersections[1]
    assert [lane["valid"] for lane in passed.lanes or []] == [False, True]
    assert [lane["valid"] for lane in ramp.intersections[0].lanes or []] == [True, False]
    assert merge.intersections[0].classes == ["motorway", "toll", "tunnel"]
    assert (merge.name, merge.ref) == ("Autoroute", "A 31")
    assert instruction(merge) == "Merge left onto Autoroute (A 31)"


# ------------------------------------------------------------------------------ junctions
@pytest.mark.parametrize(("a", "b", "expected"), [
    ((31, 32), (32, 33), [("fork", "slight left", None)]),
    ((31, 32), (32, 34), [("fork", "slight right", None)]),
    ((41, 42), (42, 44), [("end of road", "right", None)]),
    ((41, 42), (42, 43), [("end of road", "left", None)]),
    ((43, 42), (42, 44), []),  # straight on along the same street: nothing to say
    ((51, 52), (52, 54), [("turn", "sharp right", None)]),  # unnamed to unnamed
    ((51, 52), (52, 53), []),
])
def test_junction_maneuvers(fx, a, b, expected):
    m = fx("guidance_junctions.osm")
    res = m.trip(a, b)
    assert seq(res) == [("depart", None, None), *expected, ("arrive", None, None)]
    assert unannounced_turns(m.graph, res.edges, res.steps) == []


def test_intersections_list_every_road_with_in_and_out(fx):
    m = fx("guidance_junctions.osm")
    res = m.trip((41, 42), (42, 44))
    (inter,) = res.steps[1].intersections
    assert inter.bearings == [90, 180, 270]
    assert inter.entry == [True, False, True]  # no U-turn back down Rue du Stade
    assert (inter.in_, inter.out) == (1, 0)
    d = res.to_dict()
    assert d["steps"][-1]["maneuver"]["type"] == "arrive"
    assert d["steps"][1]["intersections"][0]["in"] == 1
    # the sharp turn between unnamed roads: a step of its own, its own instruction
    res = m.trip((51, 52), (52, 54))
    assert instruction(res.steps[1]) == "Turn sharply right"
    assert instruction(res.steps[1], "fr") == "Tournez franchement à droite"
    assert [s.first_edge for s in res.steps] == [0, 1]


def test_steps_add_up_to_the_route(fx):
    m = fx("guidance_motorway.osm")
    for a, b in (((1, 2), (7, 6)), ((7, 6), (3, 4))):
        res = m.trip(a, b)
        assert sum(s.distance_m for s in res.all_steps) == pytest.approx(res.distance_m)
        assert sum(s.duration_s for s in res.all_steps) == pytest.approx(res.duration_s)
        assert sum(s.turn_delay_s for s in res.steps) == pytest.approx(res.turn_delay_s)


def test_instruction_without_maneuver_is_the_name():
    assert instruction(Step("Rue X", 1.0, 1.0, [0.0, 0.0]), "fr") == "Rue X"


# ------------------------------------------------------------------------------ Monaco
def test_no_step_hides_a_turn_of_60_degrees_on_monaco(monaco, monaco_router):
    """At every junction where a car could go another way, a turn of 60 degrees or more
    starts a step (before guidance, ~8 % of steps hid one)."""
    steps = 0
    kinds: set[str] = set()
    for a, b in road_midpoint_pairs(monaco, 150, 13):
        res = monaco_router.route(a, b, profile="car")
        if not isinstance(res, Route):
            continue
        steps += len(res.steps)
        assert unannounced_turns(monaco, res.edges, res.steps) == []
        kinds |= {s.maneuver.type for s in res.all_steps if s.maneuver is not None}
        assert res.steps[0].maneuver is not None and res.steps[0].maneuver.type == "depart"
        assert res.arrival is not None
        assert [s.first_edge for s in res.steps] == sorted({s.first_edge for s in res.steps})
    assert steps > 500
    assert {"turn", "new name", "roundabout", "exit roundabout", "fork",
            "end of road"} <= kinds


@pytest.fixture()
def client(monaco, tmp_path: Path):
    from api.app import create_app
    from api.settings import Settings
    from api.store import EmbeddedStore

    app = create_app(Settings(), graph=monaco, store=EmbeddedStore(tmp_path / "state.jsonl"))
    with TestClient(app) as c:
        yield c


A = [7.4246, 43.7384]
B = [7.4197, 43.7313]


def test_route_language_option_and_osrm_steps_agree(client, monaco_router):
    en = client.post("/v1/route", json={"origin": A, "destination": B, "profile": "car"})
    fr = client.post("/v1/route", json={"origin": A, "destination": B, "profile": "car",
                                        "language": "fr"})
    assert en.status_code == 200 and fr.status_code == 200
    s_en, s_fr = en.json()["steps"], fr.json()["steps"]
    assert [s["maneuver"] for s in s_en] == [s["maneuver"] for s in s_fr]
    assert s_en[0]["instruction"].startswith("Head ")
    assert s_fr[0]["instruction"].startswith("Dirigez-vous vers ")
    assert s_en[-1]["instruction"] == "You have arrived at your destination"
    assert s_fr[-1]["instruction"] == "Vous êtes arrivé à destination"
    bad = client.post("/v1/route", json={"origin": A, "destination": B, "language": "de"})
    assert bad.status_code == 422
    osrm = client.get(f"/route/v1/driving/{A[0]},{A[1]};{B[0]},{B[1]}",
                      params={"steps": "true"}).json()
    o_steps = osrm["routes"][0]["legs"][0]["steps"]
    assert [(s["maneuver"]["type"], s["maneuver"].get("modifier")) for s in o_steps] == [
        (s["maneuver"]["type"], s["maneuver"]["modifier"]) for s in s_en]
    assert all("instruction" not in s for s in o_steps)  # OSRM's shape, unmodified


# ------------------------------------------------------------------------------ OSRM collapses
def _step(kind: str, mod: str | None, name: str, dist: float, first: int, *,
          in_b: int = 180, out_b: int = 0, entry: tuple[bool, ...] = (True, False, True),
          passed: int = 0) -> Step:
    from engine.results import Intersection, Maneuver

    bearings = sorted({in_b, out_b, (out_b + 90) % 360})
    inter = Intersection([0.0, 0.0], bearings, list(entry)[:len(bearings)],
                         in_=bearings.index(in_b), out=bearings.index(out_b))
    inters = [inter] + [Intersection([0.0, 0.0], [0, 180], [True, False], 0, 1)] * passed
    return Step(name, dist, dist / 10, [0.0, 0.0], 1.0,
                maneuver=Maneuver(kind, [0.0, 0.0], (in_b + 180) % 360, out_b, mod),
                intersections=inters,
                first_edge=first)


def test_short_name_segments_fold_into_the_step_before():
    from engine.guidance_collapse import collapse

    steps = [_step("depart", None, "A", 50.0, 0), _step("new name", "straight", "B", 60.0, 2),
             _step("turn", "left", "C", 200.0, 5), _step("new name", "straight", "D", 300.0, 9),
             _step("new name", "slight left", "D", 400.0, 12)]
    out = collapse(steps, lambda k: False)
    assert [(s.name, s.distance_m) for s in out] == [("A", 110.0), ("C", 200.0),
                                                     ("D", 700.0)]
    assert [s.first_edge for s in out] == [0, 5, 9]
    # a turn that must be announced stays
    kept = collapse([_step("depart", None, "A", 50.0, 0),
                     _step("new name", "straight", "B", 60.0, 2)], lambda k: k == 2)
    assert [s.name for s in kept] == ["A", "B"]


def test_uturn_over_a_median_is_one_step():
    from engine.guidance_collapse import collapse

    steps = [_step("depart", None, "Bd X", 100.0, 0),
             _step("turn", "sharp left", "", 20.0, 3, in_b=180, out_b=90),
             _step("turn", "sharp left", "Bd X", 150.0, 4, in_b=270, out_b=180),
             _step("turn", "right", "Rue Y", 80.0, 8)]
    out = collapse(steps, lambda k: False)
    assert [(s.maneuver.type, s.maneuver.modifier, s.name) for s in out
            if s.maneuver is not None] == [("depart", None, "Bd X"),
                                           ("continue", "uturn", "Bd X"),
                                           ("turn", "right", "Rue Y")]
    assert out[1].distance_m == 170.0 and len(out[1].intersections) == 2
    # the turn back is a turn with a choice of 60 degrees or more: it keeps its step
    assert len(collapse(steps, lambda k: k == 4)) == 4


def test_depart_and_arrive_say_on_which_side_the_point_lies():
    from engine.guidance_collapse import relative_side

    road = ([7.4200, 43.7300], [7.4200, 43.7310])  # driven north
    east = [7.4202, 43.7300]  # ~16 m east of the start
    assert relative_side(east, road[0], road[1], asked=east) == "right"
    west = [7.4198, 43.7310]
    assert relative_side(road[0], road[1], west, asked=west) == "left"
    near = [7.42000001, 43.7300]  # under 5 m: no modifier
    assert relative_side(near, road[0], road[1], asked=near) is None
