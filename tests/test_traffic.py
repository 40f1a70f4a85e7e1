"""Live traffic overlay and vehicle profiles: exactness with overlays, expiry, two ETAs,
ambulance access rules, field reports, all-or-nothing validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import shapely

from engine.extract import tags as osm_tags
from engine.graph import haversine_m
from engine.io import load_graph
from engine.profiles import ambulance_weights, car_weights
from engine.query import Route, Router, Unreachable
from engine.traffic import (
    AreaFactor,
    ClassFactor,
    Closure,
    FieldReport,
    OpenBarriers,
    SegmentSpeeds,
    TrafficInputError,
    TrafficOverlay,
    UnknownEntry,
    WaySpeeds,
    closure_from_feature,
    parse_segment_speed_csv,
)
from oracle import oracle_route_cost, recompute_route_cost

FIXTURES = Path(__file__).parent / "fixtures" / "osm"
T0 = datetime(2026, 3, 17, 8, 0, tzinfo=UTC)  # a morning during the first lockdown


@pytest.fixture()
def router(monaco) -> Router:
    """A fresh router (and overlay) per test: overlays are state."""
    return Router(monaco)


def _car_nodes(g, w):
    return np.unique(g.tail[np.isfinite(w)])


# ------------------------------------------------------------------------ exactness
def test_routes_with_closures_match_oracle_and_avoid_closed_edges(router: Router, monaco) -> None:
    g = monaco
    rng = np.random.default_rng(17)
    base = router.weights("car").values
    nodes = _car_nodes(g, base)
    closures = [Closure(geometry={"type": "Point", "coordinates": [float(g.lon[v]),
                                                                   float(g.lat[v])]},
                        radius_m=40.0, source="test") for v in rng.choice(nodes, 25)]
    router.overlay.apply(closures, at=T0)
    W = router.weights("car", at=T0)
    closed = router.overlay._state.closed
    assert closed.sum() > 25 and np.all(np.isinf(W.values[closed]))
    checked = 0
    for a, b in rng.choice(nodes, size=(150, 2)):
        res = router.route((g.lat[a] + 1e-4, g.lon[a]), (g.lat[b], g.lon[b] - 1e-4), at=T0)
        expected = oracle_route_cost(g, W.values, W.turn, res.origin, res.destination)
        if isinstance(res, Unreachable):
            assert np.isinf(expected)
            continue
        np.testing.assert_allclose(res.cost, expected, rtol=1e-9)
        assert not closed[res.edges].any(), "a route drove through a closure"
        assert res.weights_version == W.version == router.overlay.version
        checked += 1
    assert checked > 60


def test_weights_of_another_overlay_are_not_taken_for_this_ones(router: Router, monaco) -> None:
    """A replay routes with a second overlay's weights (the same traffic without closures)
    on the router of the first: both overlays count their states from 0, so the hierarchy's
    metric cache must not take the other overlay's state 1 for its own (a route through the
    closures, or around closures that are not there)."""
    g = monaco
    rng = np.random.default_rng(23)
    other = TrafficOverlay(g, snapper=router.snapper)
    nodes = _car_nodes(g, router.weights("car").values)
    closures = [Closure(geometry={"type": "Point", "coordinates": [float(g.lon[v]),
                                                                   float(g.lat[v])]},
                        radius_m=60.0, source="test") for v in rng.choice(nodes, 30)]
    router.overlay.apply(closures, at=T0)
    other.apply([ClassFactor(classes=["primary", "secondary"], factor=0.5)], at=T0)
    mine, theirs = router.weights("car", at=T0), other.weights("car", at=T0)
    assert mine.state == theirs.state and mine.source != theirs.source
    checked = 0
    for a, b in rng.choice(nodes, size=(80, 2)):
        o, d = (g.lat[a] + 1e-4, g.lon[a]), (g.lat[b], g.lon[b] - 1e-4)
        for W in (mine, theirs, mine):  # alternating: each read after the other
            res = router.route(o, d, weights=W)
            expected = oracle_route_cost(g, W.values, W.turn, res.origin, res.destination)
            if isinstance(res, Unreachable):
                assert np.isinf(expected)
                continue
            np.testing.assert_allclose(res.cost, expected, rtol=1e-9)
            checked += 1
    assert checked > 100


def test_partial_updates_equal_full_recompute(monaco) -> None:
    """A random sequence of adds/removes over time gives the arrays a fresh overlay computes
    from scratch with the same active entries."""
    g = monaco
    rng = np.random.default_rng(4)
    live = TrafficOverlay(g)
    ids: list[str] = []
    for step in range(30):
        at = T0 + timedelta(minutes=step)
        if ids and rng.random() < 0.3:
            live.remove(ids.pop(int(rng.integers(len(ids)))), at=at)
        else:
            e = rng.integers(0, g.n_edges, size=int(rng.integers(1, 200)))
            kind = rng.integers(3)
            if kind == 0:
                change = Closure(edges=e.tolist(), expires_at=at + timedelta(minutes=7))
            elif kind == 1:
                change = ClassFactor(classes=["residential", "tertiary"],
                                     factor=float(rng.uniform(0.2, 1.0)))
            else:
                way = int(rng.choice(g.way_id[g.way_id > 0]))
                change = WaySpeeds(speeds={way: float(rng.uniform(5, 90))})
            ids += live.apply(change, at=at)
        for profile in ("car", "ambulance"):
            live.weights(profile, at=at)  # keep snapshots incremental
    at = T0 + timedelta(minutes=30)
    fresh = TrafficOverlay(g)
    for entry in live.entries(at=at, active_only=True):
        fresh._entries[entry.id] = entry
    fresh._advance(at, bump=True)
    for profile in ("car", "ambulance"):
        for metric in ("time", "distance"):
            got, want = live.weights(profile, metric, at=at), fresh.weights(profile, metric,
                                                                             at=at)
            np.testing.assert_array_equal(got.values, want.values)
            # turn-graph arcs, updated only where they enter a changed road
            np.testing.assert_array_equal(got.arc, want.arc)


def test_a_closed_destination_road_falls_back_to_the_nearest_open_one(router: Router,
                                                                     monaco) -> None:
    """Closing the destination's road does not strand the call: the route ends on the nearest
    road still connected, and says why."""
    a, b = (43.7384, 7.4246), (43.7313, 7.4197)
    assert router.route(a, b).reachable
    dest = router.snap(b)
    edges = [e for e in (dest.edge, dest.twin) if e >= 0]
    router.overlay.apply(Closure(edges=edges), at=T0)
    res = router.route(a, b, at=T0)
    assert isinstance(res, Route)
    assert res.destination.edge not in edges and res.destination.fallback
    assert "closed by live traffic" in res.destination.fallback
    assert res.destination.distance_m >= dest.distance_m
    assert res.to_dict()["destination"]["fallback"] == res.destination.fallback
    assert res.to_dict()["weights_version"] == router.overlay.version
    assert np.isinf(router.weights("car", at=T0).values[edges]).all()
    assert not set(res.edges) & set(edges)


def test_an_area_closed_beyond_the_snapping_radius_is_unreachable(monaco) -> None:
    """With every road within the snapping radius closed, no connected road serves the
    destination: an explicit Unreachable naming the isolated end."""
    router = Router(monaco, snap_radius_m=80.0, fallback_radius_m=100.0)
    a, b = (43.7384, 7.4246), (43.7313, 7.4197)
    router.overlay.apply(Closure(geometry={"type": "Point", "coordinates": [b[1], b[0]]},
                                 radius_m=150.0), at=T0)
    res = router.route(a, b, at=T0)
    assert isinstance(res, Unreachable) and res.status == "unreachable"
    assert res.isolated == "destination" and "destination" in res.reason
    assert res.to_dict()["isolated"] == "destination"


# ------------------------------------------------------------------------ time
def test_entries_expire_and_start_by_themselves(router: Router) -> None:
    a, b = (43.7384, 7.4246), (43.7313, 7.4197)
    free = router.route(a, b, at=T0)
    start, end = T0 + timedelta(minutes=10), T0 + timedelta(minutes=40)
    router.overlay.apply(ClassFactor(classes=list(osm_tags.HIGHWAY_CLASSES[:15]), factor=0.5,
                                     starts_at=start, expires_at=end, source="rain"), at=T0)
    before = router.route(a, b, at=T0 + timedelta(minutes=5))
    during = router.route(a, b, at=T0 + timedelta(minutes=20))
    after = router.route(a, b, at=T0 + timedelta(minutes=50))
    assert before.duration_s == pytest.approx(free.duration_s)
    assert after.duration_s == pytest.approx(free.duration_s)
    # half speed on every road: the route's road time doubles, its turn delays do not
    W = router.weights("car", at=T0)
    no_turns = np.zeros_like(W.turn)
    road_free = recompute_route_cost(during, W.values, no_turns, router.graph)
    assert during.duration_s - during.turn_delay_s == pytest.approx(2 * road_free, rel=1e-6)
    assert during.duration_s > free.duration_s
    # the public version counts changes to the entries: time alone does not change it
    assert before.weights_version == during.weights_version == after.weights_version
    # asking about the past again (a replay) gives the past answer
    assert router.route(a, b, at=T0 + timedelta(minutes=20)).duration_s == \
        pytest.approx(during.duration_s)


# ------------------------------------------------------------------------ profiles
def test_ambulance_two_etas(router: Router) -> None:
    a, b = (43.7384, 7.4246), (43.7313, 7.4197)
    car = router.route(a, b)
    amb = router.route(a, b, profile="ambulance")
    assert isinstance(amb, Route) and amb.profile == "ambulance"
    assert amb.eta_normal_s is not None and amb.duration_s < amb.eta_normal_s
    assert amb.duration_s < car.duration_s
    assert car.eta_normal_s == pytest.approx(car.duration_s)
    d = amb.to_dict()
    assert d["eta_s"]["priority"] < d["eta_s"]["normal"]
    # Ho & Casey: lights and sirens save up to ~38 % in town; our factors stay in that range
    assert 0.55 < amb.duration_s / amb.eta_normal_s < 0.95


def test_profile_access_rules_on_flags(monaco) -> None:
    g = monaco
    car, amb = car_weights(g), ambulance_weights(g)
    contra = ambulance_weights(g, contraflow=True)
    f = g.flags
    assert np.all(np.isinf(car[(f & osm_tags.CAR_FORBIDDEN) != 0]))
    against = (f & osm_tags.F_AGAINST_ONEWAY) != 0
    assert against.any() and np.all(np.isinf(amb[against]))
    motorway_like = np.isin(g.highway, [osm_tags.HIGHWAY_CODE[c] for c in ("motorway", "trunk",
                                                                     "motorway_link",
                                                                     "trunk_link")])
    ok_contra = against & ~motorway_like & ((f & osm_tags.F_EMERGENCY_NO) == 0) & \
        (((f & osm_tags.F_CAR_NO) == 0) | ((f & osm_tags.F_PSV) != 0))
    assert np.all(np.isfinite(contra[ok_contra]))
    assert np.all(np.isinf(contra[against & motorway_like]))
    both = np.isfinite(car) & np.isfinite(amb)
    assert np.all(amb[both] <= car[both] + 1e-12)  # priority never slower


def test_ambulance_uses_busway_and_emergency_links() -> None:
    g = load_graph(FIXTURES / "bus.osm", cache=False)
    r = Router(g)
    west, east = (47.3209, 5.04005), (47.3209, 5.04125)  # both ends of the busway 3-4
    car = r.route(west, east)
    amb = r.route(west, east, profile="ambulance")
    assert 1202 not in {int(g.way_id[e]) for e in car.edges}
    assert {int(g.way_id[e]) for e in amb.edges} == {1202}
    assert amb.distance_m < car.distance_m
    low_w, low_e = (47.3200, 5.04005), (47.3200, 5.04125)  # emergency access link 5-6
    assert 1203 in {int(g.way_id[e]) for e in r.route(low_w, low_e, profile="ambulance").edges}


def test_contraflow_is_opt_in_with_penalty() -> None:
    g = load_graph(FIXTURES / "oneway.osm", cache=False)
    r = Router(g)
    one = np.flatnonzero((g.flags & osm_tags.F_AGAINST_ONEWAY) != 0)
    assert len(one)
    e = int(one[0])
    pts = g.edge_points(e)
    a = (float(g.point_lat[pts[0]] * 0.8 + g.point_lat[pts[-1]] * 0.2),
         float(g.point_lon[pts[0]] * 0.8 + g.point_lon[pts[-1]] * 0.2))
    b = (float(g.point_lat[pts[0]] * 0.2 + g.point_lat[pts[-1]] * 0.8),
         float(g.point_lon[pts[0]] * 0.2 + g.point_lon[pts[-1]] * 0.8))
    normal = r.route(a, b, profile="ambulance")
    contra = r.route(a, b, profile="ambulance", contraflow=True)
    assert contra.reachable and contra.contraflow_edges >= 1
    assert (not normal.reachable) or normal.contraflow_edges == 0
    if normal.reachable:
        assert contra.duration_s <= normal.duration_s
    # the penalty: slower than driving that piece the legal way
    w_contra = ambulance_weights(g, contraflow=True)
    w_legal = ambulance_weights(g)
    twin = int(g.twin[e])
    assert w_contra[e] > w_legal[twin]


def test_bollards_open_only_when_lowerable_or_opened() -> None:
    g = load_graph(FIXTURES / "bollard.osm", cache=False)
    barrier = np.flatnonzero(g.highway == osm_tags.HIGHWAY_CODE["barrier"])
    fixed = barrier[(g.flags[barrier] & osm_tags.F_BARRIER_LOWERABLE) == 0]
    assert len(fixed)
    overlay = TrafficOverlay(g)
    w = overlay.weights("ambulance", at=T0).values
    assert np.all(np.isinf(w[fixed]))
    p = g.edge_points(int(fixed[0]))[0]
    overlay.apply(OpenBarriers(lat=float(g.point_lat[p]), lon=float(g.point_lon[p]),
                               source="command centre"), at=T0)
    w2 = overlay.weights("ambulance", at=T0).values
    assert np.all(np.isfinite(w2[fixed[(g.point_lat[g.geom_point[g.geom_offset[fixed]]]
                                        == g.point_lat[p])]]))
    assert np.all(np.isinf(overlay.weights("car", at=T0).values[fixed]))


# ------------------------------------------------------------------------ inputs
def test_segment_speed_csv_changes_the_edge_time(router: Router, monaco) -> None:
    g = monaco
    # an edge with an interior OSM node: the reported segment is part of the edge only
    counts = np.diff(g.geom_offset)
    e = int(np.flatnonzero((counts >= 3) & g.car_allowed() & (g.length_m > 50))[0])
    pts = g.edge_points(e)
    a, b = int(g.point_osm_id[pts[0]]), int(g.point_osm_id[pts[1]])
    share = float(haversine_m(g.point_lat[pts[0]], g.point_lon[pts[0]], g.point_lat[pts[1]],
                              g.point_lon[pts[1]]) / g.length_m[e])
    change = parse_segment_speed_csv(f"from_osm_id,to_osm_id,speed\n{a},{b},5\n",
                                     source="osrm-csv")
    router.overlay.apply(change, at=T0)
    w = router.weights("car", at=T0).values
    expected = g.time_s[e] * (1 - share) + share * g.length_m[e] / (5 / 3.6)
    assert w[e] == pytest.approx(expected, rel=1e-9)
    twin = int(g.twin[e])
    if twin >= 0 and np.isfinite(w[twin]):  # direction matters: the reverse is untouched
        assert w[twin] == pytest.approx(g.time_s[twin])


def test_field_report_snaps_to_the_nearest_road(router: Router, monaco) -> None:
    point = (43.7384, 7.4246)
    snap = router.snap(point)
    ids = router.overlay.apply(FieldReport(lat=point[0], lon=point[1], kind="blocked",
                                           source="refuse-truck-12"), at=T0)
    entry = router.overlay.get(ids[0])
    assert set(entry.edges.tolist()) == {e for e in (snap.edge, snap.twin) if e >= 0}
    assert entry.geometry["coordinates"] == pytest.approx([snap.lon, snap.lat])
    slowed = router.overlay.apply(FieldReport(lat=43.7313, lon=7.4197, kind="slowed"), at=T0)
    e2 = router.overlay.get(slowed[0]).edges
    w = router.weights("car", at=T0).values
    free = car_weights(monaco)
    ok = np.isfinite(free[e2])
    np.testing.assert_allclose(w[e2][ok], free[e2][ok] / 0.3)


def test_area_factor_and_geojson_closure(router: Router, monaco) -> None:
    square = {"type": "Polygon", "coordinates": [[[7.420, 43.735], [7.425, 43.735],
                                                  [7.425, 43.740], [7.420, 43.740],
                                                  [7.420, 43.735]]]}
    ids = router.overlay.apply(AreaFactor(geometry=square, factor=0.5,
                                          classes=["primary", "secondary", "tertiary"]),
                               at=T0)
    edges = router.overlay.get(ids[0]).edges
    assert len(edges) and set(monaco.highway[edges].tolist()) <= {
        osm_tags.HIGHWAY_CODE[c] for c in ("primary", "secondary", "tertiary")}
    inside = router.overlay._edges_touching(shapely.geometry.shape(square))
    assert len(inside) > len(edges)  # the class filter is selective
    # road works along a street, drawn on the map as a line following it
    e = int(np.flatnonzero(monaco.car_allowed() & (monaco.length_m > 80))[0])
    pts = monaco.edge_points(e)
    line = [[float(monaco.point_lon[p]), float(monaco.point_lat[p])] for p in pts]
    feature = {"type": "Feature", "geometry": {"type": "LineString", "coordinates": line},
               "properties": {"id": "works-1", "expires_at": "2026-03-17T12:00:00Z"}}
    cid = router.overlay.apply(closure_from_feature(feature), at=T0)
    assert cid == ["works-1"]
    closed = set(router.overlay.get("works-1").edges.tolist())
    assert e in closed and int(monaco.twin[e]) in closed | {-1}
    # a crossing street is not closed by a line that merely crosses it
    crossing = [c for c in closed
                if monaco.way_id[c] != monaco.way_id[e] and monaco.length_m[c] > 50]
    assert len(crossing) <= 2
    assert router.overlay.get("works-1").expires_at == datetime(2026, 3, 17, 12, tzinfo=UTC)
    router.overlay.remove("works-1", at=T0)
    with pytest.raises(UnknownEntry):
        router.overlay.get("works-1")


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (SegmentSpeeds(speeds=[(1, 2, 50.0)]), "unknown OSM node id"),
        (SegmentSpeeds(speeds=[(25239340, 25239343, 0.0)]), "outside (0, 250]"),
        (SegmentSpeeds(speeds=[(25239340, 25239343, 300.0)]), "outside (0, 250]"),
        (WaySpeeds(speeds={999999999999: 30.0}), "unknown OSM way id"),
        (Closure(geometry={"type": "Polygon", "coordinates": [[[7.42, 43.73]]]}), "at least 4"),
        (Closure(geometry={"type": "Point", "coordinates": [43.73, 7.42]}), "touches no road"),
        (Closure(geometry={"type": "Point", "coordinates": [200.0, 43.7]}), "[lon, lat]"),
        (Closure(geometry={"type": "Circle"}), "not accepted"),
        (Closure(edges=[-1, 5]), "unknown edge ids"),
        (ClassFactor(classes=["autobahn"], factor=0.5), "unknown road classes"),
        (ClassFactor(classes=["primary"], factor=0.0), "speed factor"),
        (FieldReport(lat=float("nan"), lon=7.42), "finite"),
        (FieldReport(lat=43.0, lon=7.4), "off the road network"),
        (Closure(edges=[1], starts_at=T0, expires_at=T0 - timedelta(hours=1)), "before"),
        (Closure(edges=[1], starts_at=datetime(2026, 1, 1)), "timezone"),
    ],
)
def test_bad_input_rejects_the_whole_batch(router: Router, change, needle: str) -> None:
    good = Closure(edges=[0, 1], source="good")
    version = router.overlay.version
    with pytest.raises(TrafficInputError) as info:
        router.overlay.apply([good, change], at=T0)
    assert needle in str(info.value)
    assert router.overlay.version == version and router.overlay.entries() == []


def test_batch_lists_every_error(router: Router) -> None:
    with pytest.raises(TrafficInputError) as info:
        router.overlay.apply([SegmentSpeeds(speeds=[(1, 2, 50.0), (3, 4, -1.0)]),
                              Closure(edges=[10**9])], at=T0)
    assert len(info.value.errors) == 3


def test_csv_parse_errors_name_the_line() -> None:
    with pytest.raises(TrafficInputError) as info:
        parse_segment_speed_csv("1,2,30\n3,x,40\n5,6\n7,8,fast\n")
    text = str(info.value)
    assert "line 2" in text and "line 3" in text and "line 4" in text
    with pytest.raises(TrafficInputError, match="no segment speed"):
        parse_segment_speed_csv("from,to,speed\n")


def test_duplicate_ids_are_rejected(router: Router) -> None:
    router.overlay.apply(Closure(edges=[3], id="c1"), at=T0)
    with pytest.raises(TrafficInputError, match="already exists"):
        router.overlay.apply(Closure(edges=[4], id="c1"), at=T0)
    with pytest.raises(UnknownEntry):
        router.overlay.remove(["c1", "nope"], at=T0)
    assert [e.id for e in router.overlay.entries()] == ["c1"]  # nothing removed


def test_changes_round_trip_through_json(router: Router) -> None:
    import json

    from engine.traffic import change_from_dict, change_to_dict

    changes = [
        SegmentSpeeds(speeds=[(25239340, 25239343, 20.0)], source="csv", id="s1"),
        WaySpeeds(speeds={int(router.graph.way_id[0]): 15.0}, starts_at=T0,
                  expires_at=T0 + timedelta(hours=1)),
        ClassFactor(classes=["primary"], factor=0.5),
        Closure(geometry={"type": "Point", "coordinates": [7.4246, 43.7384]}, radius_m=30),
        FieldReport(lat=43.7313, lon=7.4197, kind="slowed"),
    ]
    for change in changes:
        again = change_from_dict(json.loads(json.dumps(change_to_dict(change))))
        assert again == change
    with pytest.raises(TrafficInputError, match="unknown change type"):
        change_from_dict({"type": "Meteor"})
    with pytest.raises(TrafficInputError, match="unknown field"):
        change_from_dict({"type": "Closure", "edges": [1], "colour": "red"})
    with pytest.raises(TrafficInputError, match="time zone"):
        change_from_dict({"type": "Closure", "edges": [1], "starts_at": "2026-01-01T08:00"})


def test_closure_edges_as_integral_numbers_are_edge_ids(monaco) -> None:
    """JSON has one number type: ``150.0`` is edge 150 for the overlay as for the validator;
    ``150.5``, ``True`` and text are refused with the same message."""
    overlay = TrafficOverlay(monaco)
    entry = overlay.get(overlay.apply(Closure(edges=[150.0, 151]), at=T0)[0])
    assert entry.edges.tolist() == [150, 151] and entry.edges.dtype == np.int64
    for bad in ([150.5], [True], ["150"]):
        with pytest.raises(TrafficInputError, match="integer edge ids"):
            overlay.apply(Closure(edges=bad), at=T0)


def test_malformed_csv_is_a_traffic_input_error() -> None:
    with pytest.raises(TrafficInputError, match="malformed CSV"):
        parse_segment_speed_csv("1,2,30\r4,5,6")  # a lone carriage return inside a line
