"""OSRM-compatible endpoints on Monaco: shapes, agreement with the engine, errors, and a real
OSRM client (routingpy) against the service under uvicorn."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import polyline
import pytest
from fastapi.testclient import TestClient
from osm_reader import read_osm

from api.app import create_app
from api.settings import Settings
from api.store import EmbeddedStore
from engine.errors import PointOffNetwork
from engine.extract.tags import HIGHWAY_CODE
from engine.graph import haversine_m
from engine.io import load_graph

FIXTURES = Path(__file__).parent / "fixtures" / "osm"
A = (7.4246, 43.7384)  # (lon, lat): README's route across Monaco
B = (7.4197, 43.7313)
C = (7.4200, 43.7350)
D = (7.4150, 43.7330)
SEA = (7.4400, 43.7200)  # 1.5 km from the nearest road
ERROR_CODES = {"InvalidUrl", "InvalidService", "InvalidVersion", "InvalidOptions",
               "InvalidQuery", "InvalidValue", "NoSegment", "TooBig", "NoRoute"}


def coords(*points: tuple[float, float]) -> str:
    return ";".join(f"{lon},{lat}" for lon, lat in points)


def latlon(p: tuple[float, float]) -> tuple[float, float]:
    return (p[1], p[0])


@pytest.fixture(scope="module")
def client(monaco):
    app = create_app(Settings(), graph=monaco, store=EmbeddedStore(None))
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def router(client):
    return client.app.state.live.router


@pytest.fixture(scope="module")
def pairs(router, monaco):
    """Reachable (lon, lat) pairs: near junctions, exactly on junctions, and exactly on OSM
    nodes inside a road piece (there the engine lists the node before the origin as well,
    one node more than coordinates: the geometry must repeat the point)."""
    rng = np.random.default_rng(11)
    usable = np.flatnonzero(np.isfinite(router.weights("car").values))
    junctions = np.unique(monaco.tail[usable])
    edge_of = np.repeat(np.arange(monaco.n_edges), np.diff(monaco.geom_offset))
    inner = np.setdiff1d(monaco.geom_point[np.isin(edge_of, usable)],
                         np.arange(monaco.n_nodes))
    out = []
    while len(out) < 45:
        kind = len(out) % 3
        a, b = rng.choice(inner if kind == 2 else junctions, 2)
        jitter = 1e-4 if kind == 0 else 0.0
        o = (float(monaco.point_lon[a] + jitter * rng.normal()),
             float(monaco.point_lat[a] + jitter * rng.normal()))
        d = (float(monaco.point_lon[b] + jitter * rng.normal()),
             float(monaco.point_lat[b] + jitter * rng.normal()))
        if router.route(latlon(o), latlon(d)).reachable:
            out.append((o, d))
    return out


def ok_json(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def ok(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == "Ok"
    return body


# ------------------------------------------------------------------------------------ route
def test_route_shape(client, router):
    r = client.get(f"/route/v1/driving/{coords(A, B)}")
    body = ok(r)
    assert r.headers["X-Attribution"].startswith("Map data (c) OpenStreetMap contributors")
    assert set(body) == {"code", "routes", "waypoints", "weights_version", "stale"}
    assert body["stale"] is False and isinstance(body["weights_version"], int)
    (route,) = body["routes"]
    assert set(route) == {"geometry", "legs", "weight_name", "weight", "duration", "distance"}
    assert isinstance(route["geometry"], str)  # polyline by default
    assert route["weight_name"] == "duration" and route["weight"] == route["duration"]
    (leg,) = route["legs"]
    assert set(leg) == {"steps", "summary", "weight", "duration", "distance"}
    assert leg["steps"] == [] and leg["summary"] == ""  # OSRM: a summary comes with steps
    assert len(body["waypoints"]) == 2
    for wp, point in zip(body["waypoints"], (A, B)):
        assert set(wp) == {"hint", "distance", "name", "location"}
        snap = router.snap(latlon(point))
        assert wp["location"] == [round(snap.lon, 6), round(snap.lat, 6)]
        assert wp["distance"] == pytest.approx(snap.distance_m)
        assert wp["name"] == client.app.state.live.graph.edge_name(snap.edge)
    engine = router.route(latlon(A), latlon(B))
    assert route["duration"] == pytest.approx(engine.duration_s, rel=1e-12)
    assert route["distance"] == pytest.approx(engine.distance_m, rel=1e-12)
    assert body["weights_version"] == engine.weights_version


def test_route_durations_equal_engine(client, router, pairs):
    for o, d in pairs[:15]:
        body = ok(client.get(f"/route/v1/car/{coords(o, d)}", params={"overview": "false"}))
        engine = router.route(latlon(o), latlon(d))
        route = body["routes"][0]
        assert "geometry" not in route
        assert route["duration"] == pytest.approx(engine.duration_s, rel=1e-12)
        assert route["distance"] == pytest.approx(engine.distance_m, rel=1e-12)


def test_geometry_formats_decode_to_the_same_points(client, router):
    got = {}
    for fmt in ("polyline", "polyline6", "geojson"):
        body = ok(client.get(f"/route/v1/driving/{coords(A, B)}",
                             params={"geometries": fmt, "overview": "full"}))
        got[fmt] = body["routes"][0]["geometry"]
    geo = np.array(got["geojson"]["coordinates"])
    assert got["geojson"]["type"] == "LineString"
    p5 = np.array(polyline.decode(got["polyline"], 5, geojson=True))
    p6 = np.array(polyline.decode(got["polyline6"], 6, geojson=True))
    assert p5.shape == p6.shape == geo.shape
    assert np.abs(p6 - geo).max() <= 1.1e-6
    assert np.abs(p5 - geo).max() <= 1.1e-5
    engine = np.array(router.route(latlon(A), latlon(B)).coordinates)
    assert np.abs(geo - engine).max() <= 1e-6  # full overview: the engine's geometry


def test_simplified_overview(client):
    full = ok(client.get(f"/route/v1/driving/{coords(A, B)}",
                         params={"geometries": "geojson", "overview": "full"}))
    simple = ok(client.get(f"/route/v1/driving/{coords(A, B)}",
                           params={"geometries": "geojson"}))  # default: simplified
    f = full["routes"][0]["geometry"]["coordinates"]
    s = simple["routes"][0]["geometry"]["coordinates"]
    assert 2 <= len(s) <= len(f)
    assert s[0] == f[0] and s[-1] == f[-1]
    assert all(p in f for p in s)


def test_annotations(client, router, pairs):
    one_more_node = 0
    for o, d in pairs:
        body = ok(client.get(f"/route/v1/driving/{coords(o, d)}",
                             params={"annotations": "true", "overview": "full",
                                     "geometries": "geojson"}))
        engine = router.route(latlon(o), latlon(d))
        one_more_node += len(engine.osm_nodes) == len(engine.coordinates) + 1
        route = body["routes"][0]
        ann = route["legs"][0]["annotation"]
        assert set(ann) == {"nodes", "distance", "duration", "weight", "speed", "datasources",
                            "metadata"}
        assert ann["nodes"] == engine.osm_nodes
        n = len(ann["nodes"]) - 1
        for key in ("distance", "duration", "weight", "speed", "datasources"):
            assert len(ann[key]) == n, key
        # one coordinate per node: the annotation indexes the full geometry
        assert len(route["geometry"]["coordinates"]) == len(ann["nodes"])
        assert sum(ann["distance"]) == pytest.approx(engine.distance_m, rel=1e-9)
        assert sum(ann["duration"]) == pytest.approx(engine.duration_s, rel=1e-9)
        assert min(ann["distance"]) >= 0 and min(ann["duration"]) >= 0
        speeds = [s for s, t in zip(ann["speed"], ann["duration"]) if t > 0]
        assert max(speeds) < 60  # m/s: nothing absurd
    assert one_more_node > 0  # the repeated-point case was exercised


def test_annotation_subset(client):
    body = ok(client.get(f"/route/v1/driving/{coords(A, B)}",
                         params={"annotations": "nodes,distance"}))
    ann = body["routes"][0]["legs"][0]["annotation"]
    assert set(ann) == {"nodes", "distance"}
    assert len(ann["distance"]) == len(ann["nodes"]) - 1
    body = ok(client.get(f"/route/v1/driving/{coords(A, B)}", params={"annotations": "false"}))
    assert "annotation" not in body["routes"][0]["legs"][0]


def test_steps(client, router, pairs):
    for o, d in [(A, B), *pairs[:10]]:
        body = ok(client.get(f"/route/v1/driving/{coords(o, d)}",
                             params={"steps": "true"}))
        engine = router.route(latlon(o), latlon(d))
        leg = body["routes"][0]["legs"][0]
        steps = leg["steps"]
        named = {s.name for s in engine.steps if s.name}
        assert set(leg["summary"].split(", ")) <= named if named else leg["summary"] == ""
        assert steps[0]["maneuver"]["type"] == "depart"
        assert steps[-1]["maneuver"]["type"] == "arrive"
        assert [s["name"] for s in steps[:-1]] == [s.name for s in engine.steps]
        assert sum(s["distance"] for s in steps) == pytest.approx(leg["distance"], rel=1e-9)
        assert sum(s["duration"] for s in steps) == pytest.approx(leg["duration"], rel=1e-9)
        for s in steps:
            assert {"geometry", "maneuver", "mode", "driving_side", "name", "intersections",
                    "weight", "duration", "distance"} <= set(s)
            assert s["mode"] == "driving" and s["driving_side"] == "right"
            assert len(polyline.decode(s["geometry"])) >= 2
            m = s["maneuver"]
            assert {"location", "bearing_before", "bearing_after", "type"} <= set(m)
            assert all(isinstance(m[k], int) and 0 <= m[k] < 360
                       for k in ("bearing_before", "bearing_after"))
            if m["type"] not in ("depart", "arrive"):
                assert m["modifier"] in ("uturn", "sharp right", "right", "slight right",
                                         "straight", "slight left", "left", "sharp left")
            first = s["intersections"][0]
            assert first["location"] == m["location"]
            assert len(first["bearings"]) == len(first["entry"])
            for key in ("in", "out"):
                if key in first:
                    assert 0 <= first[key] < len(first["bearings"])


def test_several_waypoints_one_leg_per_pair(client, router):
    points = (A, C, B)
    body = ok(client.get(f"/route/v1/driving/{coords(*points)}",
                         params={"overview": "full", "geometries": "geojson",
                                 "annotations": "nodes"}))
    route = body["routes"][0]
    assert len(route["legs"]) == 2 and len(body["waypoints"]) == 3
    for leg, (o, d) in zip(route["legs"], [(A, C), (C, B)]):
        engine = router.route(latlon(o), latlon(d))
        assert leg["duration"] == pytest.approx(engine.duration_s, rel=1e-12)
        assert leg["annotation"]["nodes"] == engine.osm_nodes
    assert route["duration"] == pytest.approx(sum(leg["duration"] for leg in route["legs"]))
    line = route["geometry"]["coordinates"]
    assert line[0] == body["waypoints"][0]["location"]
    assert line[-1] == body["waypoints"][2]["location"]
    # waypoints=0;2: the via point stays, but the legs are collapsed into one
    body = ok(client.get(f"/route/v1/driving/{coords(*points)}",
                         params={"waypoints": "0;2", "steps": "true"}))
    (leg,) = body["routes"][0]["legs"]
    assert leg["duration"] == pytest.approx(route["duration"], rel=1e-12)
    assert len(body["waypoints"]) == 2


def test_polyline_coordinates(client):
    plain = ok(client.get(f"/route/v1/driving/{coords(A, B)}"))
    for name, precision in (("polyline", 5), ("polyline6", 6)):
        encoded = polyline.encode([latlon(A), latlon(B)], precision)
        body = ok(client.get(f"/route/v1/driving/{name}({encoded})"))
        assert body["routes"][0]["duration"] == pytest.approx(
            plain["routes"][0]["duration"], abs=1.0)


def test_json_suffix_and_ambulance_profile(client, router):
    body = ok(client.get(f"/route/v1/ambulance/{coords(A, B)}.json"))
    engine = router.route(latlon(A), latlon(B), profile="ambulance")
    assert body["routes"][0]["duration"] == pytest.approx(engine.duration_s, rel=1e-12)
    car = ok(client.get(f"/route/v1/car/{coords(A, B)}"))
    assert body["routes"][0]["duration"] < car["routes"][0]["duration"]


def test_accepted_options(client):
    body = ok(client.get(f"/route/v1/driving/{coords(A, B)}", params={
        "alternatives": "true", "continue_straight": "false", "radiuses": "50;unlimited",
        "bearings": "90,20;", "hints": ";", "generate_hints": "false",
        "approaches": "curb;unrestricted", "snapping": "any", "exclude": "ferry"}))
    assert 1 <= len(body["routes"]) <= 2  # alternatives=true: at most one alternative
    assert all("hint" not in wp for wp in body["waypoints"])
    body = ok(client.get(f"/route/v1/driving/{coords(A, B)}",
                         params={"skip_waypoints": "true", "alternatives": "2"}))
    assert "waypoints" not in body


def test_exclude_motorway(client, router, monaco):
    motorway = np.isin(monaco.highway, [HIGHWAY_CODE["motorway"], HIGHWAY_CODE["motorway_link"]])
    rng = np.random.default_rng(5)
    nodes = np.unique(monaco.tail[np.isfinite(router.weights("car").values) & ~motorway])
    found = None
    for _ in range(2000):
        a, b = rng.choice(nodes, 2)
        o, d = (float(monaco.lon[a]), float(monaco.lat[a])), (float(monaco.lon[b]),
                                                               float(monaco.lat[b]))
        route = router.route(latlon(o), latlon(d))
        if (route.reachable and motorway[route.edges].any()
                and not motorway[[route.origin.edge, route.destination.edge]].any()):
            found = (o, d, route)
            break
    assert found is not None, "no Monaco route over a motorway found"
    o, d, route = found
    r = client.get(f"/route/v1/driving/{coords(o, d)}",
                   params={"exclude": "motorway", "annotations": "nodes"})
    if r.status_code == 200:
        body = r.json()
        assert body["routes"][0]["duration"] > route.duration_s
        assert body["routes"][0]["legs"][0]["annotation"]["nodes"] != route.osm_nodes
    else:
        assert r.json()["code"] == "NoRoute"


def test_polyline_encoder_matches_the_polyline_package():
    from api.osrm.format import encode_polyline

    rng = np.random.default_rng(0)
    for trial in range(500):
        n = int(rng.integers(1, 30))
        pts = np.column_stack([rng.uniform(-180, 180, n), rng.uniform(-90, 90, n)])
        if trial % 2:  # values exactly half-way between two encodable numbers
            pts = np.round(pts, 5) + rng.choice([0.0, 5e-6, -5e-6, 5e-7], size=pts.shape)
        for precision in (5, 6):
            assert encode_polyline(pts.tolist(), precision) == polyline.encode(
                [(lat, lon) for lon, lat in pts], precision)


def test_polyline_pieces_match_the_polyline_package():
    """A step's geometry is cut from its leg's encoding (``_EncodedLine``): every piece is the
    ``polyline`` package's encoding of those points, a one-point piece the point twice."""
    from api.osrm.format import _EncodedLine, encode_polyline

    rng = np.random.default_rng(1)
    for trial in range(200):
        n = int(rng.integers(1, 40))
        pts = np.column_stack([rng.uniform(7.40, 7.45, n), rng.uniform(43.72, 43.76, n)])
        if trial % 2:  # repeated points and half-way values
            pts[rng.integers(0, n, n // 3)] = pts[0]
            pts = np.round(pts, 5) + rng.choice([0.0, 5e-6, -5e-6], size=pts.shape)
        for precision in (5, 6):
            line = _EncodedLine(pts, precision)
            assert line.piece(0, n - 1) == encode_polyline(pts, precision) or n == 1
            for _ in range(10):
                a, b = sorted(int(x) for x in rng.integers(0, n, 2))
                shape = pts[a:b + 1] if b > a else pts[[a, a]]
                assert line.piece(a, b) == polyline.encode(
                    [(lat, lon) for lon, lat in shape], precision), (trial, a, b)


def _segments_reference(graph, route, time_w, coords):
    """The plain walk along the leg (the slow twin of ``api.osrm.format._segments``): per
    segment its edge, its index in ``route.edges`` and the time of the barriers crossed."""
    from engine.graph import haversine_m as distance

    pts = np.asarray(coords, dtype=np.float64)
    n = len(pts) - 1
    dist = distance(pts[:-1, 1], pts[:-1, 0], pts[1:, 1], pts[1:, 0])
    edges = route.edges
    seg_edge, seg_index, extra = np.empty(n, np.int64), np.empty(n, np.int64), np.zeros(n)
    ei, last = 0, len(edges) - 1
    for k in range(n):
        seg_edge[k], seg_index[k] = edges[ei], ei
        head = graph.head[edges[ei]]
        if ei < last and coords[k + 1][0] == graph.lon[head] and \
                coords[k + 1][1] == graph.lat[head] and dist[k] > 0:
            ei += 1
            while ei < last and graph.length_m[edges[ei]] == 0:
                if k + 1 < n:
                    extra[k + 1] += time_w[edges[ei]]
                ei += 1
    length = graph.length_m[seg_edge]
    rate = np.divide(time_w[seg_edge], length, out=np.zeros(n), where=length > 0)
    return seg_edge, seg_index, dist * rate + np.where(np.isfinite(extra), extra, 0.0), dist


def test_segments_match_the_plain_walk(router, monaco, pairs):
    """``_segments`` walks Python lists: the same edges, indices and (unscaled) figures as the
    plain walk over numpy arrays, on every test pair."""
    from api.osrm.format import _make_leg

    time_w = router.weights("car").values
    for o, d in pairs:
        route = router.route(latlon(o), latlon(d))
        leg = _make_leg(monaco, route, time_w, True)
        seg_edge, seg_index, dur, dist = _segments_reference(monaco, route, time_w, leg.coords)
        assert np.array_equal(leg.seg_edge, seg_edge)
        assert np.array_equal(leg.seg_index, seg_index)
        if dist.sum() > 0:
            assert np.array_equal(leg.seg_distance, dist * (leg.distance / float(dist.sum())))
        if dur.sum() > 0:
            assert np.array_equal(leg.seg_duration, dur * (leg.duration / float(dur.sum())))
        assert leg.step_seg == [0] + [int(np.searchsorted(leg.seg_index, s.first_edge))
                                      for s in route.steps[1:]]


def test_inline_and_threadpool_answers_are_the_same(client, pairs, monkeypatch):
    """Short routes run on the event loop, others in the threadpool: the same answers."""
    from api.routers import osrm

    urls = [f"/route/v1/driving/{coords(o, d)}?steps=true&overview=full&annotations=true"
            for o, d in pairs[:6]]
    urls.append(f"/route/v1/driving/{coords(A, C, B)}?steps=true&waypoints=0;2")
    urls.append(f"/route/v1/driving/{coords(A, SEA)}")  # NoSegment
    inline = [client.get(url) for url in urls]
    monkeypatch.setattr(osrm, "INLINE_MAX_COORDINATES", 0)
    threaded = [client.get(url) for url in urls]
    for a, b in zip(inline, threaded, strict=True):
        assert (a.status_code, a.content) == (b.status_code, b.content)
    assert inline[-1].status_code == 400


def test_openapi_lists_the_osrm_services(client):
    paths = ok_json(client.get("/openapi.json"))["paths"]
    for service in ("route", "table", "nearest"):
        assert f"/{service}/{{version}}/{{profile}}/{{coordinates}}" in paths


# ------------------------------------------------------------------------------------ table
def test_table_equals_engine(client, router):
    points = (A, B, C, D)
    body = ok(client.get(f"/table/v1/driving/{coords(*points)}"))
    assert set(body) == {"code", "durations", "sources", "destinations", "weights_version",
                         "stale"}
    expected = router.table([latlon(p) for p in points]).values
    assert np.allclose(np.array(body["durations"], dtype=float), expected, rtol=1e-12)
    assert len(body["sources"]) == len(body["destinations"]) == 4
    assert set(body["sources"][0]) == {"hint", "distance", "name", "location"}
    # subsets, in the order given
    body = ok(client.get(f"/table/v1/driving/{coords(*points)}",
                         params={"sources": "2;0", "destinations": "1;3;0"}))
    assert np.allclose(np.array(body["durations"], dtype=float),
                       expected[np.ix_([2, 0], [1, 3, 0])], rtol=1e-12)
    assert body["sources"][0]["location"] == ok(client.get(
        f"/table/v1/driving/{coords(*points)}"))["sources"][2]["location"]
    assert len(body["destinations"]) == 3


def test_table_distances_are_those_of_the_fastest_route(client, router):
    points = (A, B, C)
    body = ok(client.get(f"/table/v1/driving/{coords(*points)}",
                         params={"annotations": "duration,distance"}))
    for i, o in enumerate(points):
        for j, d in enumerate(points):
            if i == j:
                assert body["distances"][i][j] == 0.0
                continue
            engine = router.route(latlon(o), latlon(d))
            assert body["distances"][i][j] == pytest.approx(engine.distance_m, rel=1e-12)
            assert body["durations"][i][j] == pytest.approx(engine.duration_s, rel=1e-9)
    only = ok(client.get(f"/table/v1/driving/{coords(*points)}",
                         params={"annotations": "distance"}))
    assert "durations" not in only and only["distances"] == body["distances"]


def test_table_scale_factor_and_fallback(client):
    base = ok(client.get(f"/table/v1/driving/{coords(A, B)}"))
    scaled = ok(client.get(f"/table/v1/driving/{coords(A, B)}", params={"scale_factor": "2"}))
    assert scaled["durations"][0][1] == pytest.approx(2 * base["durations"][0][1])
    body = ok(client.get(f"/table/v1/driving/{coords(A, B)}",
                         params={"fallback_speed": "10"}))
    assert body["fallback_speed_cells"] == []  # everything routable here


def test_table_too_big(client, monkeypatch):
    monkeypatch.setattr(client.app.state.settings, "max_table_coordinates", 2)
    r = client.get(f"/table/v1/driving/{coords(A, B, C)}")
    assert r.status_code == 400 and r.json()["code"] == "TooBig"
    # OSRM counts cells (sources x destinations), not coordinates
    ok(client.get(f"/table/v1/driving/{coords(A, B, C)}",
                  params={"sources": "0;1", "destinations": "1;2"}))


# ------------------------------------------------------------------------------------ nearest
def test_nearest(client, router, monaco):
    body = ok(client.get(f"/nearest/v1/driving/{coords(A)}", params={"number": "3"}))
    assert set(body) == {"code", "waypoints", "weights_version", "stale"}
    wps = body["waypoints"]
    assert len(wps) == 3
    distances = [wp["distance"] for wp in wps]
    assert distances == sorted(distances)
    snap = router.snap(latlon(A))
    assert wps[0]["location"] == [round(snap.lon, 6), round(snap.lat, 6)]
    assert wps[0]["distance"] == pytest.approx(snap.distance_m, abs=0.01)
    known = set(monaco.point_osm_id.tolist())
    for wp in wps:
        assert set(wp) == {"nodes", "hint", "distance", "name", "location"}
        assert len(wp["nodes"]) == 2 and set(wp["nodes"]) <= known
    one = ok(client.get(f"/nearest/v1/car/{coords(A)}"))
    assert one["waypoints"] == wps[:1]


# ------------------------------------------------------------------------------------ errors
ERRORS = [
    ("/route/v1/driving/7.42 46,43.73;7.41,43.73", "InvalidUrl"),
    ("/route/v1/driving/abc;def", "InvalidQuery"),
    ("/route/v1/driving/7.42,43.73;7.41", "InvalidQuery"),
    ("/route/v1/driving/1e1,43.73;7.41,43.73", "InvalidQuery"),
    (f"/route/v1/driving/{coords(A, B)}?overview=maybe", "InvalidQuery"),
    (f"/route/v1/driving/{coords(A, B)}?steps=yes", "InvalidQuery"),
    (f"/route/v1/driving/{coords(A, B)}?geometries=wkt", "InvalidQuery"),
    (f"/route/v1/driving/{coords(A, B)}?annotations=nodes,colour", "InvalidQuery"),
    (f"/route/v1/driving/{coords(A, B)}?colour=red", "InvalidQuery"),
    (f"/route/v1/driving/{coords(A, B)}?radiuses=a;b", "InvalidQuery"),
    ("/route/v1/driving/polyline(@@@)", "InvalidQuery"),
    ("/route/v1/driving/7.42,95.0;7.41,43.73", "InvalidValue"),
    ("/route/v1/driving/190.0,43.73;7.41,43.73", "InvalidValue"),
    (f"/route/v1/foot/{coords(A, B)}", "InvalidValue"),
    (f"/route/v1/driving/{coords(A, B)}?exclude=toll", "InvalidValue"),
    (f"/route/v1/driving/{coords(A)}", "InvalidOptions"),
    (f"/route/v1/driving/{coords(A, B)}?radiuses=10", "InvalidOptions"),
    (f"/route/v1/driving/{coords(A, B)}?bearings=400,10;", "InvalidOptions"),
    (f"/route/v1/driving/{coords(A, B)}?radiuses=-1;", "InvalidOptions"),
    (f"/route/v1/driving/{coords(A, C, B)}?waypoints=1;2", "InvalidValue"),
    ("/table/v1/driving/7.42,95.0;7.41,43.73", "InvalidOptions"),
    (f"/table/v1/driving/{coords(A, B)}?sources=0;2", "InvalidOptions"),
    (f"/table/v1/driving/{coords(A, B)}?annotations=speed", "InvalidQuery"),
    (f"/table/v1/driving/{coords(A, B)}?fallback_speed=0", "InvalidOptions"),
    ("/nearest/v1/driving/7.42,95.0", "InvalidOptions"),
    (f"/nearest/v1/driving/{coords(A, B)}", "InvalidOptions"),
    (f"/nearest/v1/driving/{coords(A)}?number=0", "InvalidOptions"),
    (f"/nearest/v1/driving/{coords(A)}?number=101", "TooBig"),
    (f"/route/v1/driving/{coords(A, B)}?alternatives=4", "TooBig"),
    (f"/route/v2/driving/{coords(A, B)}", "InvalidVersion"),
    (f"/trip/v1/driving/{coords(A, B)}", "InvalidService"),
    (f"/route/v1/driving/{coords(SEA, B)}", "NoSegment"),
    (f"/route/v1/driving/{coords(A, SEA)}?radiuses=;", "NoSegment"),
    (f"/route/v1/driving/{coords(A, B)}?radiuses=0.5;", "NoSegment"),
    (f"/table/v1/driving/{coords(A, B, SEA)}?sources=0&destinations=1", "NoSegment"),
    (f"/nearest/v1/driving/{coords(SEA)}", "NoSegment"),
]


@pytest.mark.parametrize(("url", "code"), ERRORS)
def test_errors(client, url, code):
    r = client.get(url)
    assert r.status_code == 400, r.text
    body = r.json()
    assert set(body) == {"code", "message"} and body["code"] in ERROR_CODES
    assert body["code"] == code, body["message"]
    assert body["message"]


def test_no_segment_names_the_coordinate(client, router):
    with pytest.raises(PointOffNetwork):
        router.snap(latlon(SEA))
    r = client.get(f"/route/v1/driving/{coords(A, B, SEA)}")
    assert r.json() == {"code": "NoSegment",
                        "message": "Could not find a matching segment for coordinate 2"}


def test_no_route_on_monaco(client, router, monaco):
    """A pair of valid points the engine cannot join (Monaco's extract is clipped)."""
    rng = np.random.default_rng(2)
    usable = np.flatnonzero(np.isfinite(router.weights("car").values))
    nodes = np.unique(monaco.tail[usable])
    for _ in range(500):
        a, b = rng.choice(nodes, 2)
        o = (float(monaco.lon[a]), float(monaco.lat[a]))
        d = (float(monaco.lon[b]), float(monaco.lat[b]))
        if not router.route(latlon(o), latlon(d)).reachable:
            break
    else:
        pytest.fail("no unreachable pair found on Monaco")
    r = client.get(f"/route/v1/driving/{coords(o, d)}")
    assert r.status_code == 400
    assert r.json() == {"code": "NoRoute", "message": "No route found between points"}
    body = ok(client.get(f"/table/v1/driving/{coords(o, d)}"))
    assert body["durations"][0][1] is None


def test_disconnected_fixture():
    """Two straight streets ~930 m apart (``fixtures/osm/disconnected.osm``), pieces of one
    size: one is the main network (the engine may pick either). With the default snap radius
    (500 m, so a 1000 m fallback radius) a point on the other piece is served from the
    nearest point of the main one: 200, and that waypoint's ``distance`` is the snap used (the
    gap). With a 400 m snap radius (800 m fallback) that end is isolated: NoRoute."""
    path = FIXTURES / "disconnected.osm"
    graph = load_graph(path, cache=False)
    nodes = {k: (lon, lat) for k, (lat, lon) in read_osm(path).nodes.items()}  # (lon, lat)
    west, east = (5.0405, 47.3200), (5.0535, 47.3200)  # on streets 1-2 and 3-4

    def crow(p: tuple[float, float], q: tuple[float, float]) -> float:
        return float(haversine_m(p[1], p[0], q[1], q[0]))

    app = create_app(Settings(), graph=graph, store=EmbeddedStore(None))
    with TestClient(app) as c:
        body = ok(c.get(f"/route/v1/driving/{coords(west, east)}"))
        wp = body["waypoints"]
        if wp[1]["distance"] > 0:  # west is the main piece: the destination moves to node 2
            moved, kept, foot, main_name = 1, 0, nodes[2], "Rue Ouest"
        else:  # east is: the origin moves to node 3
            moved, kept, foot, main_name = 0, 1, nodes[3], "Rue Est"
        points = (west, east)
        assert wp[kept]["distance"] == pytest.approx(0.0, abs=0.01)
        assert wp[kept]["location"] == pytest.approx(list(points[kept]), abs=1e-6)
        assert wp[moved]["distance"] == pytest.approx(crow(points[moved], foot), rel=1e-3)
        assert 900 < wp[moved]["distance"] < 1000
        assert wp[moved]["location"] == pytest.approx(list(foot), abs=1e-6)
        assert wp[0]["name"] == wp[1]["name"] == main_name
        metres = crow(points[kept], foot)  # straight along the main piece, no turn
        assert body["routes"][0]["distance"] == pytest.approx(metres, rel=1e-6)
        assert body["routes"][0]["duration"] == pytest.approx(metres / (25 / 3.6), rel=1e-6)
        # the table uses the same snaps
        body = ok(c.get(f"/table/v1/driving/{coords(west, east)}",
                        params={"annotations": "duration,distance"}))
        assert body["durations"][0][1] == pytest.approx(metres / (25 / 3.6), rel=1e-6)
        assert body["distances"][0][1] == pytest.approx(metres, rel=1e-6)
        for key in ("sources", "destinations"):
            assert body[key][moved]["distance"] == pytest.approx(wp[moved]["distance"])
            assert body[key][moved]["location"] == pytest.approx(wp[moved]["location"])
            assert body[key][kept]["distance"] == pytest.approx(0.0, abs=0.01)

    app = create_app(Settings(snap_radius_m=400.0), graph=graph, store=EmbeddedStore(None))
    with TestClient(app) as c:
        r = c.get(f"/route/v1/driving/{coords(west, east)}")
        assert r.status_code == 400 and r.json()["code"] == "NoRoute"
        body = ok(c.get(f"/table/v1/driving/{coords(west, east)}",
                        params={"annotations": "duration,distance"}))
        assert body["durations"][0][0] == 0.0 and body["durations"][0][1] is None
        assert body["distances"][1][0] is None
        body = ok(c.get(f"/table/v1/driving/{coords(west, east)}",
                        params={"fallback_speed": "10", "sources": "0",
                                "destinations": "1"}))
        assert body["fallback_speed_cells"] == [[0, 0]]
        assert body["durations"][0][0] == pytest.approx(crow(west, east) / 10)
        assert body["sources"][0]["name"] == "Rue Ouest"
        assert body["destinations"][0]["name"] == "Rue Est"
        assert body["sources"][0]["distance"] == body["destinations"][0]["distance"] == 0.0


def test_api_key(monaco):
    settings = Settings(api_keys={"k-dispatch": "dispatcher"})
    app = create_app(settings, graph=monaco, store=EmbeddedStore(None))
    with TestClient(app) as c:
        assert c.get(f"/route/v1/driving/{coords(A, B)}").status_code == 401
        ok(c.get(f"/route/v1/driving/{coords(A, B)}", params={"api_key": "k-dispatch"}))
        ok(c.get(f"/table/v1/driving/{coords(A, B)}",
                 headers={"X-API-Key": "k-dispatch"}))


# ------------------------------------------------------------------------------------ routingpy
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(monaco):
    """The service under uvicorn on a loopback port, in a background thread."""
    import uvicorn

    port = _free_port()
    app = create_app(Settings(), graph=monaco, store=EmbeddedStore(None))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    yield base, app
    server.should_exit = True
    thread.join(timeout=10)


def test_routingpy_directions(served):
    import routingpy

    base, app = served
    router = app.state.live.router
    client = routingpy.OSRM(base_url=base, timeout=30)
    engine = router.route(latlon(A), latlon(B))
    for fmt in ("polyline", "polyline6", "geojson"):
        direction = client.directions(locations=[list(A), list(B)], profile="driving",
                                      geometries=fmt, overview="full", steps=True,
                                      annotations=True)
        assert direction.duration == int(engine.duration_s)
        assert direction.distance == int(engine.distance_m)
        geometry = np.array(direction.geometry, dtype=float)
        tolerance = 1.1e-5 if fmt == "polyline" else 1.1e-6
        assert geometry.shape == np.array(engine.coordinates).shape
        assert np.abs(geometry - np.array(engine.coordinates)).max() <= tolerance
        raw = direction.raw["routes"][0]
        assert raw["legs"][0]["annotation"]["nodes"] == engine.osm_nodes
    three = client.directions(locations=[list(A), list(C), list(B)], profile="driving",
                              alternatives=False, continue_straight=True)
    legs = [router.route(latlon(o), latlon(d)) for o, d in [(A, C), (C, B)]]
    assert three.duration == int(sum(leg.duration_s for leg in legs))


def test_routingpy_matrix(served):
    import routingpy

    base, app = served
    router = app.state.live.router
    client = routingpy.OSRM(base_url=base, timeout=30)
    points = [list(A), list(B), list(C), list(D)]
    matrix = client.matrix(locations=points, profile="driving", sources=[0, 1],
                           destinations=[2, 3], annotations=["duration", "distance"])
    expected = router.table([latlon(A), latlon(B)], [latlon(C), latlon(D)]).values
    assert np.allclose(np.array(matrix.durations, dtype=float), expected, rtol=1e-12)
    for i, o in enumerate((A, B)):
        for j, d in enumerate((C, D)):
            assert matrix.distances[i][j] == pytest.approx(
                router.route(latlon(o), latlon(d)).distance_m, rel=1e-12)
    full = client.matrix(locations=points, profile="driving")
    assert np.allclose(np.array(full.durations, dtype=float),
                       router.table([latlon(tuple(p)) for p in points]).values, rtol=1e-12)


def test_routingpy_error(served):
    import routingpy
    from routingpy.exceptions import RouterApiError

    base, _ = served
    client = routingpy.OSRM(base_url=base, timeout=30)
    with pytest.raises(RouterApiError) as info:
        client.directions(locations=[list(A), list(SEA)], profile="driving")
    assert info.value.status == 400
    assert "NoSegment" in str(info.value.message)
