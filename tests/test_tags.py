"""OSM tag interpretation (engine.extract.tags), table-driven, plus Hypothesis properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from engine.extract import tags as osm_tags
from engine.extract.tags import interpret_barrier, interpret_way, parse_maxspeed

MPH = 1.609344


# ------------------------------------------------------------------------------ maxspeed
@pytest.mark.parametrize(
    ("value", "kmh"),
    [
        # numbers and units
        ("50", 50.0),
        ("30", 30.0),
        (" 70 ", 70.0),
        ("50.5", 50.5),
        ("50 km/h", 50.0),
        ("50km/h", 50.0),
        ("90 kmh", 90.0),
        ("110 kph", 110.0),
        ("30 mph", 30 * MPH),
        ("30 MPH", 30 * MPH),
        ("70mph", 70 * MPH),
        ("10 knots", 18.52),
        # country zones
        ("FR:urban", 50.0),
        ("FR:rural", 80.0),
        ("FR:motorway", 130.0),
        ("fr:urban", 50.0),
        ("DE:urban", 50.0),
        ("DE:rural", 100.0),
        ("DE:motorway", 130.0),
        ("DE:living_street", 7.0),
        ("FR:living_street", 20.0),
        ("DE:zone30", 30.0),
        ("DE:zone:30", 30.0),
        ("FR:zone30", 30.0),
        ("FR:zone:20", 20.0),
        ("BE:rural", 90.0),
        ("GB:nsl_single", 60 * MPH),
        ("GB:nsl_dual", 70 * MPH),
        ("IT:urban", 50.0),  # no country override: the generic urban value
        # words
        ("walk", 7.0),  # documented: walking pace
        ("none", 130.0),  # documented: no limit -> advisory 130 km/h
        ("NONE", 130.0),
        ("signals", None),
        ("variable", None),
        ("fast", None),
        ("50 km", None),
        ("-30", None),
        ("FR:nowhere", None),
        ("FRA:urban", None),
        ("0", None),
        ("DE:zone0", None),  # a zero limit is no usable number (was 0.0)
        ("FR:0", None),
        ("9" * 400, None),  # overflows to inf (was inf: zero travel time)
        ("DE:zone" + "9" * 400, None),
        ("", None),
        ("   ", None),
        (None, None),
        # several values: the lowest one
        ("50;70", 50.0),
        ("70;50", 50.0),
        ("signals;30", 30.0),
        ("30 mph;50", 30 * MPH),
        ("80|FR:urban", 50.0),
        ("signals;variable", None),
    ],
)
def test_parse_maxspeed(value, kmh):
    got = parse_maxspeed(value)
    if kmh is None:
        assert got is None
    else:
        assert isinstance(got, float)
        assert got == pytest.approx(kmh, rel=1e-9)


def _check_speed(value: str) -> None:
    got = parse_maxspeed(value)
    assert got is None or (isinstance(got, float) and math.isfinite(got) and got > 0), (
        value, got)


@given(st.text())
@example("DE:zone0")
@example("FR:0")
@example("0 mph")
@example("9" * 400)
@example("DE:" + "9" * 400)
@example("0;0")
def test_parse_maxspeed_never_raises_and_is_positive(value):
    _check_speed(value)


_maxspeed_like = st.builds(
    "".join,
    st.lists(
        st.sampled_from(["0", "5", "9", ".", " ", ":", ";", "|", "zone", "mph", "km/h",
                         "knots", "FR", "DE", "GB", "urban", "rural", "walk", "none",
                         "nsl_single", "x", "_"]),
        max_size=8,
    ),
)


@given(_maxspeed_like)
def test_parse_maxspeed_on_tag_like_text(value):
    _check_speed(value)


# ------------------------------------------------------------------------------ oneway
def rule(**tags: str) -> osm_tags.WayRule:
    r = interpret_way({"highway": "residential", **tags})
    assert r is not None
    return r


def is_forward_only(r: osm_tags.WayRule) -> bool:
    return bool(r.flags_forward & osm_tags.F_ONEWAY and r.flags_backward & osm_tags.F_AGAINST_ONEWAY
                and not r.flags_forward & osm_tags.F_AGAINST_ONEWAY
                and not r.flags_backward & osm_tags.F_ONEWAY)


def is_backward_only(r: osm_tags.WayRule) -> bool:
    return bool(r.flags_backward & osm_tags.F_ONEWAY and r.flags_forward & osm_tags.F_AGAINST_ONEWAY
                and not r.flags_backward & osm_tags.F_AGAINST_ONEWAY
                and not r.flags_forward & osm_tags.F_ONEWAY)


def is_two_way(r: osm_tags.WayRule) -> bool:
    both = r.flags_forward | r.flags_backward
    return not both & (osm_tags.F_ONEWAY | osm_tags.F_AGAINST_ONEWAY | osm_tags.F_REVERSIBLE)


@pytest.mark.parametrize("value", ["yes", "1", "true", "YES", "True"])
def test_oneway_forward(value):
    assert is_forward_only(rule(oneway=value))


@pytest.mark.parametrize("value", ["-1", "reverse"])
def test_oneway_backward(value):
    assert is_backward_only(rule(oneway=value))


@pytest.mark.parametrize("value", ["reversible", "alternating"])
def test_oneway_reversible_closes_both_directions_to_cars(value):
    r = rule(oneway=value)
    assert r.flags_forward & osm_tags.F_REVERSIBLE and r.flags_backward & osm_tags.F_REVERSIBLE
    assert r.flags_forward & osm_tags.CAR_FORBIDDEN and r.flags_backward & osm_tags.CAR_FORBIDDEN
    assert not (r.flags_forward | r.flags_backward) & (osm_tags.F_ONEWAY | osm_tags.F_AGAINST_ONEWAY)


@pytest.mark.parametrize("value", [None, "no", "false", "0", "", "maybe"])
def test_two_way(value):
    tags = {} if value is None else {"oneway": value}
    r = rule(**tags)
    assert is_two_way(r)
    assert r.flags_forward == r.flags_backward == 0


@pytest.mark.parametrize(
    "tags",
    [
        {"highway": "motorway"},
        {"highway": "motorway_link"},
        {"highway": "primary", "junction": "roundabout"},
        {"highway": "residential", "junction": "circular"},
    ],
)
def test_implied_oneway(tags):
    r = interpret_way(tags)
    assert r is not None and is_forward_only(r)


@pytest.mark.parametrize(
    "tags",
    [
        {"highway": "motorway", "oneway": "no"},
        {"highway": "motorway_link", "oneway": "no"},
        {"highway": "tertiary", "junction": "roundabout", "oneway": "no"},
    ],
)
def test_oneway_no_overrides_implied_oneway(tags):
    r = interpret_way(tags)
    assert r is not None and is_two_way(r)


def test_roundabout_flag_and_explicit_direction():
    r = interpret_way({"highway": "tertiary", "junction": "roundabout"})
    assert r.flags_forward & osm_tags.F_ROUNDABOUT and r.flags_backward & osm_tags.F_ROUNDABOUT
    r = interpret_way({"highway": "tertiary", "junction": "roundabout", "oneway": "-1"})
    assert is_backward_only(r) and r.flags_forward & osm_tags.F_ROUNDABOUT
    assert not interpret_way({"highway": "trunk"}).flags_backward & osm_tags.F_AGAINST_ONEWAY


# ------------------------------------------------------------------------------ access
@pytest.mark.parametrize(
    ("tags", "car_no"),
    [
        ({"access": "no"}, True),
        ({"access": "private"}, True),
        ({"access": "agricultural"}, True),
        ({"access": "psv"}, True),
        ({"access": "yes"}, False),
        ({"access": "permissive"}, False),
        ({"access": "destination"}, False),
        ({"motor_vehicle": "no"}, True),
        ({"vehicle": "no"}, True),
        ({"motorcar": "no"}, True),
        # the most specific tag wins: motorcar > motor_vehicle > vehicle > access
        ({"access": "no", "motor_vehicle": "yes"}, False),
        ({"access": "no", "vehicle": "yes"}, False),
        ({"access": "no", "motorcar": "designated"}, False),
        ({"access": "yes", "motor_vehicle": "no"}, True),
        ({"motor_vehicle": "no", "motorcar": "yes"}, False),
        ({"vehicle": "no", "motor_vehicle": "destination"}, False),
        ({"motor_vehicle": "yes", "motorcar": "private"}, True),
        ({"access": "No"}, True),
    ],
)
def test_access_hierarchy(tags, car_no):
    r = rule(**tags)
    for flags in (r.flags_forward, r.flags_backward):
        assert bool(flags & osm_tags.F_CAR_NO) is car_no
        assert bool(flags & osm_tags.CAR_FORBIDDEN) is car_no


def test_access_side_flags():
    assert rule(access="private").flags_forward & osm_tags.F_PRIVATE
    r = rule(access="destination")
    assert r.flags_forward & osm_tags.F_DESTINATION and not r.flags_forward & osm_tags.F_CAR_NO
    assert rule(emergency="yes").flags_forward == osm_tags.F_EMERGENCY_YES
    assert rule(emergency="designated").flags_forward == osm_tags.F_EMERGENCY_YES
    r = rule(emergency="no")
    # emergency=no keeps ordinary cars (only emergency profiles read it)
    assert r.flags_forward == osm_tags.F_EMERGENCY_NO and not r.flags_forward & osm_tags.CAR_FORBIDDEN
    r = rule(motor_vehicle="no", emergency="yes")
    assert r.flags_forward == r.flags_backward == osm_tags.F_CAR_NO | osm_tags.F_EMERGENCY_YES
    assert rule(psv="yes").flags_forward & osm_tags.F_PSV
    assert rule(bus="designated").flags_forward & osm_tags.F_PSV
    assert rule(service="driveway").flags_forward == osm_tags.F_SERVICE_DRIVEWAY


# ------------------------------------------------------------------------------ classes kept
@pytest.mark.parametrize("highway", ["footway", "cycleway", "pedestrian", "track", "path",
                                     "steps", "bridleway", "construction", "proposed",
                                     "platform", "bus_stop", "elevator"])
def test_non_roads_are_dropped(highway):
    assert interpret_way({"highway": highway}) is None


def test_no_highway_is_dropped():
    assert interpret_way({}) is None
    assert interpret_way({"railway": "tram", "name": "T1"}) is None


@pytest.mark.parametrize(("highway", "cls"), [("footway", "pedestrian"),
                                              ("cycleway", "pedestrian"),
                                              ("pedestrian", "pedestrian"),
                                              ("track", "track")])
@pytest.mark.parametrize("emergency", ["yes", "designated"])
def test_emergency_only_classes_kept_with_emergency_yes(highway, cls, emergency):
    r = interpret_way({"highway": highway, "emergency": emergency})
    assert r is not None
    assert r.highway == cls
    assert r.speed_forward == r.speed_backward == 10.0
    for flags in (r.flags_forward, r.flags_backward):
        assert flags & osm_tags.F_CAR_NO and flags & osm_tags.F_EMERGENCY_YES


def test_track_open_to_motor_vehicles_is_a_car_road():
    r = interpret_way({"highway": "track", "motor_vehicle": "yes"})
    assert r is not None and r.highway == "track"
    assert not r.flags_forward & osm_tags.CAR_FORBIDDEN


@pytest.mark.parametrize("tags", [
    {"highway": "pedestrian", "area": "yes", "emergency": "yes"},
    {"highway": "residential", "area": "yes"},
    {"highway": "service", "area": "yes", "motor_vehicle": "yes"},
])
def test_areas_are_dropped(tags):
    assert interpret_way(tags) is None


def test_area_no_is_a_road():
    assert interpret_way({"highway": "residential", "area": "no"}) is not None


@pytest.mark.parametrize("highway", osm_tags.HIGHWAY_CLASSES[:15])
def test_motor_classes_default_speed(highway):
    r = interpret_way({"highway": highway})
    assert r is not None and r.highway == highway
    assert r.speed_forward == r.speed_backward == osm_tags.DEFAULT_SPEED_KMH[highway] > 0
    assert not r.flags_forward & (osm_tags.CAR_FORBIDDEN & ~osm_tags.F_AGAINST_ONEWAY)


def test_default_speeds_follow_osrm_car_profile():
    expected = {"motorway": 90, "trunk": 85, "primary": 65, "secondary": 55, "tertiary": 40,
                "unclassified": 25, "residential": 25, "living_street": 10, "service": 15}
    for highway, kmh in expected.items():
        assert interpret_way({"highway": highway}).speed_forward == kmh


def test_highway_class_table():
    assert len(osm_tags.HIGHWAY_CLASSES) == len(set(osm_tags.HIGHWAY_CLASSES)) < 256  # uint8 codes
    assert set(osm_tags.DEFAULT_SPEED_KMH) == set(osm_tags.HIGHWAY_CLASSES)
    assert all(v > 0 for v in osm_tags.DEFAULT_SPEED_KMH.values())
    assert all(osm_tags.HIGHWAY_CODE[c] == i for i, c in enumerate(osm_tags.HIGHWAY_CLASSES))


# ------------------------------------------------------------------------------ speeds, names
def test_way_maxspeed_and_directional_maxspeed():
    # a limit is not the speed driven: OSRM car.lua drives 0.8 x the tagged speed
    r = rule(maxspeed="30")
    assert r.speed_forward == r.speed_backward == 0.8 * 30.0
    r = rule(maxspeed="50", **{"maxspeed:forward": "70", "maxspeed:backward": "30 mph"})
    assert r.speed_forward == 0.8 * 70.0 and r.speed_backward == pytest.approx(0.8 * 30 * MPH)
    r = rule(maxspeed="FR:urban", **{"maxspeed:backward": "signals"})
    assert r.speed_forward == r.speed_backward == 0.8 * 50.0
    # car.lua reads maxspeed:advisory first, then maxspeed, source:maxspeed, maxspeed:type
    assert rule(maxspeed="50", **{"maxspeed:advisory": "30"}).speed_forward == 0.8 * 30.0
    assert rule(**{"source:maxspeed": "FR:urban"}).speed_forward == 0.8 * 50.0
    r = rule(maxspeed="signals")
    assert r.speed_forward == 25.0  # unusable value: class default
    assert rule(maxspeed="9" * 400).speed_forward == 25.0  # not inf (free edges)
    assert isinstance(r.speed_forward, float)


def test_name_and_ref():
    assert rule(name="Rue de la Liberté").name == "Rue de la Liberté"
    assert rule(ref="D 974").name == "D 974"
    assert rule(name="Avenue", ref="D 1").name == "Avenue"
    assert rule().name == ""


def test_osmnx_list_and_graphml_values():
    r = interpret_way({"highway": ["secondary", "residential"], "oneway": ["yes", "no"],
                       "name": ["A", "B"]})
    assert r.highway == "secondary" and is_forward_only(r) and r.name == "A"
    r = interpret_way({"highway": "['service', 'residential']", "maxspeed": "['30', '50']"})
    assert r.highway == "service" and r.speed_forward == 0.8 * 30.0


# ------------------------------------------------------------------------------ bus, busway
def test_busway_and_emergency_access():
    r = interpret_way({"highway": "busway"})
    assert r.highway == "busway"
    for flags in (r.flags_forward, r.flags_backward):
        assert flags & osm_tags.F_BUSWAY and flags & osm_tags.F_PSV and flags & osm_tags.F_CAR_NO
    r = interpret_way({"highway": "busway", "motor_vehicle": "yes"})
    assert r.flags_forward & osm_tags.F_CAR_NO  # a busway stays closed to cars
    r = interpret_way({"highway": "service", "service": "emergency_access"})
    for flags in (r.flags_forward, r.flags_backward):
        assert flags & osm_tags.F_EMERGENCY_ACCESS and flags & osm_tags.F_CAR_NO


@pytest.mark.parametrize(
    ("tags", "fwd", "bwd"),
    [
        ({"busway": "lane"}, True, True),
        ({"busway:both": "lane"}, True, True),
        ({"busway:right": "lane"}, True, False),
        ({"busway:left": "lane"}, False, True),  # two-way, right-hand traffic
        ({"busway:left": "lane", "oneway": "yes"}, True, False),
        ({"lanes:bus": "1"}, True, True),
        ({"lanes:psv:forward": "1"}, True, False),
        ({"lanes:bus:backward": "2"}, False, True),
        ({"lanes:bus": "0"}, False, False),
        ({"lanes:bus": "many"}, False, False),
        ({"bus:lanes": "designated|none"}, True, True),
        ({"bus:lanes:forward": "none|designated"}, True, False),
        ({"psv:lanes:backward": "designated"}, False, True),
        ({"bus:lanes:forward": "none|none"}, False, False),
        ({}, False, False),
    ],
)
def test_bus_lanes(tags, fwd, bwd):
    r = rule(**tags)
    assert bool(r.flags_forward & osm_tags.F_BUS_LANE) is fwd
    assert bool(r.flags_backward & osm_tags.F_BUS_LANE) is bwd
    assert not (r.flags_forward | r.flags_backward) & osm_tags.F_CAR_NO  # cars still drive there


# ------------------------------------------------------------------------------ barriers
@pytest.mark.parametrize(
    ("tags", "flags"),
    [
        ({}, 0),
        ({"highway": "traffic_signals"}, 0),
        ({"barrier": "bollard"}, osm_tags.F_BARRIER),
        ({"barrier": "block"}, osm_tags.F_BARRIER),
        ({"barrier": "jersey_barrier"}, osm_tags.F_BARRIER),
        ({"barrier": "bollard", "bollard": "rising"}, osm_tags.F_BARRIER | osm_tags.F_BARRIER_LOWERABLE),
        ({"barrier": "bollard", "bollard": "removable"},
         osm_tags.F_BARRIER | osm_tags.F_BARRIER_LOWERABLE),
        ({"barrier": "bollard", "bollard": "fixed"}, osm_tags.F_BARRIER),
        ({"barrier": "bollard", "emergency": "yes"}, osm_tags.F_BARRIER | osm_tags.F_BARRIER_LOWERABLE),
        ({"barrier": "bollard", "motor_vehicle": "yes"}, 0),
        ({"barrier": "bollard", "access": "no", "motorcar": "yes"}, 0),
        ({"barrier": "gate"}, 0),
        ({"barrier": "gate", "access": "no"}, osm_tags.F_BARRIER),  # OSRM: locked gate stops cars
        ({"barrier": "gate", "access": "private"}, osm_tags.F_BARRIER),
        ({"barrier": "lift_gate", "access": "private", "emergency": "yes"},
         osm_tags.F_BARRIER | osm_tags.F_BARRIER_LOWERABLE),
        ({"barrier": "lift_gate"}, 0),
        ({"barrier": "cattle_grid"}, 0),
        ({"barrier": "toll_booth"}, 0),
        ({"barrier": "kerb"}, 0),
    ],
)
def test_interpret_barrier(tags, flags):
    assert interpret_barrier(tags) == flags


def test_is_traffic_signal():
    assert osm_tags.is_traffic_signal({"highway": "traffic_signals"})
    assert not osm_tags.is_traffic_signal({"highway": "stop"})
    assert not osm_tags.is_traffic_signal({})


# ------------------------------------------------------------------------------ flags
def test_toll_and_tunnel_flags_and_guidance_tags():
    rule = osm_tags.interpret_way({"highway": "motorway", "toll": "yes", "tunnel": "yes",
                                   "ref": "A 8", "destination": "Nice;Menton",
                                   "destination:ref": "A 8", "junction:ref": "57",
                                   "turn:lanes": "through|through|right"})
    assert rule is not None
    assert rule.flags_forward & osm_tags.F_TOLL and rule.flags_forward & osm_tags.F_TUNNEL
    assert not osm_tags.CAR_FORBIDDEN & (osm_tags.F_TOLL | osm_tags.F_TUNNEL)
    import json

    fwd, bwd = rule.info
    assert json.loads(fwd) == {"ref": "A 8", "exits": "57", "destinations": "A 8: Nice, Menton",
                               "lanes": "through|through|right"}
    assert json.loads(bwd) == {"ref": "A 8", "exits": "57"}  # one-way: not the other way
    two_way = osm_tags.interpret_way({"highway": "primary", "turn:lanes:backward": "left|"})
    assert two_way is not None and two_way.info == ("", '{"lanes": "left|"}')


def test_car_forbidden_mask():
    for bit in (osm_tags.F_AGAINST_ONEWAY, osm_tags.F_REVERSIBLE, osm_tags.F_CAR_NO, osm_tags.F_BARRIER):
        assert osm_tags.CAR_FORBIDDEN & bit
    for bit in (osm_tags.F_ONEWAY, osm_tags.F_ROUNDABOUT, osm_tags.F_DESTINATION, osm_tags.F_EMERGENCY_YES,
                osm_tags.F_PSV, osm_tags.F_EMERGENCY_NO, osm_tags.F_BUS_LANE, osm_tags.F_BARRIER_LOWERABLE,
                osm_tags.F_SERVICE_DRIVEWAY, osm_tags.F_REVERSED):
        assert not osm_tags.CAR_FORBIDDEN & bit


def test_flag_bits_are_distinct_and_named():
    bits = list(osm_tags.FLAG_NAMES)
    assert len(bits) == len(set(bits)) == 19  # toll and tunnel: guidance's classes
    assert all(b > 0 and b & (b - 1) == 0 for b in bits)  # single bits
    assert max(bits) < 2**32  # uint32 edge flags
    assert osm_tags.describe_flags(osm_tags.F_ONEWAY | osm_tags.F_ROUNDABOUT) == ["oneway", "roundabout"]
    assert osm_tags.describe_flags(0) == []
    # the 17th bit: the edge runs against its way's node order (for *:direction controls)
    assert osm_tags.F_REVERSED == 1 << 16 and osm_tags.FLAG_NAMES[osm_tags.F_REVERSED] == "reversed"
    assert osm_tags.describe_flags(osm_tags.F_ONEWAY | osm_tags.F_REVERSED) == ["oneway", "reversed"]


@given(st.dictionaries(
    st.sampled_from(["highway", "oneway", "junction", "access", "motor_vehicle", "motorcar",
                     "vehicle", "emergency", "maxspeed", "maxspeed:forward", "busway",
                     "service", "area", "lanes:bus", "bus:lanes", "psv", "name"]),
    st.text(max_size=12) | st.sampled_from(["yes", "no", "-1", "residential", "footway",
                                            "busway", "roundabout", "lane", "designated",
                                            "emergency_access", "50", "FR:zone0"]),
))
def test_interpret_way_is_total(tags):
    r = interpret_way(tags)
    if r is None:
        return
    assert r.highway in osm_tags.HIGHWAY_CODE
    for speed in (r.speed_forward, r.speed_backward):
        assert isinstance(speed, float) and math.isfinite(speed) and speed > 0
    for flags in (r.flags_forward, r.flags_backward):
        assert 0 <= flags < 1 << 16
        assert not (flags & osm_tags.F_ONEWAY and flags & osm_tags.F_AGAINST_ONEWAY)
