"""The HTTP API on Monaco with the embedded store: every endpoint, bad input, auth matrix,
SSE, persistence across a restart."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from api.store import EmbeddedStore

A = [7.4246, 43.7384]  # [lon, lat]: Monte-Carlo
B = [7.4197, 43.7313]  # La Condamine


@pytest.fixture()
def client(monaco, tmp_path: Path):
    app = create_app(Settings(), graph=monaco, store=EmbeddedStore(tmp_path / "state.jsonl"))
    with TestClient(app) as c:
        yield c


def first_hospital(client: TestClient) -> str:
    hospitals = client.get("/v1/hospitals").json()
    assert len(hospitals) >= 3
    return hospitals[1]["id"]


# ----------------------------------------------------------------------------- routes
def test_route_with_both_etas_and_signal_plan(client: TestClient) -> None:
    r = client.post("/v1/route", json={"origin": A, "destination": B})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["profile"] == "ambulance" and body["status"] == "ok"
    assert body["eta_s"]["priority"] < body["eta_s"]["normal"]
    assert body["geometry"]["type"] == "LineString"
    assert body["geometry"]["coordinates"][0][0] == pytest.approx(A[0], abs=1e-3)
    assert isinstance(body["signal_plan"], list) and body["weights_version"] == 0
    assert body["stale"] is False and "OpenStreetMap" in body["attribution"]
    car = client.post("/v1/route", json={"origin": A, "destination": B, "profile": "car"})
    assert car.json()["duration_s"] > body["duration_s"]


def test_route_to_a_hospital_by_id(client: TestClient) -> None:
    hid = first_hospital(client)
    r = client.post("/v1/route", json={"origin": A, "destination_hospital": hid})
    assert r.status_code == 200
    entrance = client.get(f"/v1/hospitals/{hid}").json()["entrance"]
    assert r.json()["geometry"]["coordinates"][-1] == pytest.approx(entrance, abs=1e-6)


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"origin": [7.42, 93.0], "destination": B}, 422, "origin"),
        ({"origin": [43.73, 7.42], "destination": B}, 422, "off the road network"),
        ({"origin": [7.4], "destination": B}, 422, "origin"),
        ({"origin": A, "destination": B, "profile": "bicycle"}, 422, "profile"),
        ({"origin": A}, 422, "exactly one"),
        ({"origin": A, "destination_hospital": "nope"}, 404, "unknown hospital"),
        ({"origin": A, "destination": B, "colour": "red"}, 422, "colour"),
        ({"origin": A, "destination": B, "departure": "2026-03-17T08:00:00"}, 422,
         "departure"),
    ],
)
def test_route_bad_input(client: TestClient, body: dict, status: int, needle: str) -> None:
    r = client.post("/v1/route", json=body)
    assert r.status_code == status, r.text
    assert needle in json.dumps(r.json())


def test_body_size_limit(monaco, tmp_path: Path) -> None:
    app = create_app(Settings(max_body_bytes=2000), graph=monaco,
                     store=EmbeddedStore(tmp_path / "s.jsonl"))
    with TestClient(app) as c:
        r = c.post("/v1/traffic", json={"changes": [{"type": "Closure",
                                                      "edges": list(range(3000))}]})
        assert r.status_code == 413 and "2000 bytes" in r.json()["detail"]
        assert c.get("/v1/traffic").json()["entries"] == []


# ----------------------------------------------------------------------------- traffic
def test_closure_changes_routes_and_can_be_deleted(client: TestClient) -> None:
    before = client.post("/v1/route", json={"origin": A, "destination": B}).json()
    edge = before["edges"][len(before["edges"]) // 2]
    r = client.post("/v1/traffic", json={"changes": [{"type": "Closure", "edges": [edge],
                                                      "source": "police"}]})
    assert r.status_code == 201, r.text
    cid = r.json()["ids"][0]
    after = client.post("/v1/route", json={"origin": A, "destination": B}).json()
    assert edge not in after["edges"] and after["weights_version"] == 1
    assert after["duration_s"] >= before["duration_s"]
    assert client.delete(f"/v1/closures/{cid}").status_code == 200
    again = client.post("/v1/route", json={"origin": A, "destination": B}).json()
    assert again["duration_s"] == pytest.approx(before["duration_s"])
    assert again["weights_version"] == 2
    assert client.delete(f"/v1/closures/{cid}").status_code == 404


def test_geojson_closure_report_and_speeds(client: TestClient) -> None:
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": A},
               "properties": {"radius_m": 40, "expires_at": "2030-01-01T00:00:00Z",
                              "note": "gas leak"}}
    r = client.post("/v1/closures", json=feature)
    assert r.status_code == 201 and r.json()["edges"] > 0
    r = client.post("/v1/reports", json={"location": B, "kind": "slowed",
                                         "source": "refuse-truck-7"})
    assert r.status_code == 201
    assert r.json()["snapped"]["coordinates"] == pytest.approx(B, abs=5e-4)
    r = client.post("/v1/traffic/speeds", content="from_osm_id,to_osm_id,speed_kmh\n"
                    "25239340,25239343,20\n", headers={"content-type": "text/csv"})
    assert r.status_code == 200, r.text
    r = client.post("/v1/traffic/speeds", json={"speeds": [[25239340, 25239343, 15]]})
    assert r.status_code == 200
    listing = client.get("/v1/traffic").json()
    assert listing["weights_version"] == 4 and len(listing["entries"]) == 4
    assert {e["type"] for e in listing["entries"]} == {"Closure", "FieldReport",
                                                        "SegmentSpeeds"}


@pytest.mark.parametrize(
    ("path", "kwargs", "needle"),
    [
        ("/v1/closures", {"json": {"type": "Feature", "geometry": {"type": "Polygon",
                                                                  "coordinates": [[[1, 2]]]}}},
         "a linear ring needs at least 4"),
        ("/v1/closures", {"json": {"type": "FeatureCollection"}}, "Feature"),
        ("/v1/traffic/speeds", {"content": "1,2,30\n", "headers": {"content-type":
                                                                    "text/csv"}},
         "unknown OSM node id"),
        ("/v1/traffic/speeds", {"content": "1,2\n", "headers": {"content-type": "text/csv"}},
         "line 1"),
        ("/v1/traffic/speeds", {"json": {"speeds": [[25239340, 25239343, 900]]}},
         "outside (0, 250]"),
        ("/v1/traffic", {"json": {"changes": [{"type": "Closure", "edges": [1]},
                                              {"type": "Closure", "edges": [-4]}]}},
         "unknown edge ids"),
        ("/v1/reports", {"json": {"location": [7.4, 43.0]}}, "off the road network"),
    ],
)
def test_bad_traffic_is_rejected_whole(client: TestClient, path: str, kwargs: dict,
                                       needle: str) -> None:
    r = client.post(path, **kwargs)
    assert r.status_code == 422, r.text
    assert needle in json.dumps(r.json())
    assert client.get("/v1/traffic").json() == {"weights_version": 0, "stale": False,
                                                "entries": []}


# ----------------------------------------------------------------------------- hospitals
def test_hospital_status_levels_alerts_and_cap(client: TestClient) -> None:
    hid = first_hospital(client)
    r = client.put(f"/v1/hospitals/{hid}/status",
                   json={"beds": {"AdultICU": {"baseline": 10, "available": 0}},
                         "ed_status": "Normal"})
    assert r.status_code == 200, r.text
    levels = {s["bed_type"]: s["new_level"] for s in r.json()["signals"]}
    assert levels["AdultICU"] == "saturated"
    sat = client.get("/v1/saturation").json()["rows"]
    row = next(x for x in sat if x["hospital_id"] == hid and x["bed_type"] == "AdultICU")
    assert row["available"] == 0 and row["level"] == "saturated"
    alerts = client.get("/v1/alerts").json()
    assert any(a["hospital_id"] == hid for a in alerts)
    since = client.get("/v1/alerts", params={"since": "2100-01-01T00:00:00Z"}).json()
    assert since == []
    cap = client.get(f"/v1/alerts/{alerts[-1]['id']}.cap")
    assert cap.status_code == 200 and cap.headers["content-type"].startswith(
        "application/cap+xml")
    assert "urn:oasis:names:tc:emergency:cap:1.2" in cap.text
    assert client.get("/v1/alerts/nope.cap").status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"beds": {"AdultICU": -1}}, 422, "beds"),
        ({"beds": {"Helipad": 1}}, 422, "Helipad"),
        ({"ed_status": "Sunny"}, 422, "ed_status"),
        ({"beds": {"AdultICU": {"baseline": 2, "available": 5}}}, 422, "available"),
    ],
)
def test_bad_hospital_status(client: TestClient, body: dict, status: int,
                             needle: str) -> None:
    hid = first_hospital(client)
    before = client.get(f"/v1/hospitals/{hid}").json()
    r = client.put(f"/v1/hospitals/{hid}/status", json=body)
    assert r.status_code == status, r.text
    assert needle in json.dumps(r.json())
    assert client.get(f"/v1/hospitals/{hid}").json() == before
    assert client.put("/v1/hospitals/nope/status", json={"heartbeat": True}).status_code == 404


def test_dispatch_registers_and_next_dispatch_sees_it(client: TestClient) -> None:
    hospitals = client.get("/v1/hospitals").json()
    for h in hospitals:  # few ICU beds everywhere: one ambulance changes the picture
        client.put(f"/v1/hospitals/{h['id']}/status",
                   json={"beds": {"AdultICU": {"baseline": 2, "available": 1}}})
    first = client.post("/v1/dispatch", json={"incident": A, "need": {"bed_type": "AdultICU"},
                                              "ambulance_id": "SMUR-21"})
    assert first.status_code == 200, first.text
    d1 = first.json()
    assert d1["registered"] and d1["ambulance_id"] == "SMUR-21"
    assert d1["ranking"][0]["hospital_id"] == d1["hospital_id"]
    en_route = client.get("/v1/ambulances").json()
    assert [(e["ambulance_id"], e["hospital_id"]) for e in en_route] == [
        ("SMUR-21", d1["hospital_id"])]
    second = client.post("/v1/dispatch", json={"incident": A,
                                               "need": {"bed_type": "AdultICU"}}).json()
    assert second["hospital_id"] != d1["hospital_id"]
    seen = next(o for o in second["ranking"] if o["hospital_id"] == d1["hospital_id"])
    assert seen["en_route"] == 1
    assert client.post("/v1/ambulances/SMUR-21/arrived").status_code == 200
    assert client.post("/v1/ambulances/SMUR-21/arrived").status_code == 404
    assert client.post(f"/v1/ambulances/{second['ambulance_id']}/cancel").status_code == 200
    assert client.get("/v1/ambulances").json() == []


def test_dispatch_errors(client: TestClient) -> None:
    r = client.post("/v1/dispatch", json={"incident": A, "need": {"bed_type": "Burn"}})
    assert r.status_code == 409 and "Burn" in r.json()["detail"]
    r = client.post("/v1/dispatch", json={"incident": A, "need": {"bed_type": "Wings"}})
    assert r.status_code == 422
    r = client.post("/v1/dispatch", json={"incident": A, "ambulances": {"x": [7.0, 95.0]}})
    assert r.status_code == 422


def test_coverage(client: TestClient) -> None:
    r = client.post("/v1/coverage", json={"stations": [A, B], "minutes": 4})
    assert r.status_code == 200
    body = r.json()
    assert body["road_km"] > 1 and body["polygon"]["type"] == "Feature"
    assert client.post("/v1/coverage", json={"stations": [], "minutes": 4}).status_code == 422


# ----------------------------------------------------------------------------- service
def test_health_metrics_and_docs(client: TestClient) -> None:
    h = client.get("/health").json()
    assert h["status"] == "ok" and h["store"]["kind"] == "embedded" and h["graph"]["nodes"] > 0
    client.post("/v1/route", json={"origin": A, "destination": B})
    m = client.get("/metrics").text
    assert "gyrophare_weights_version 0.0" in m and "gyrophare_request_seconds" in m
    assert client.get("/openapi.json").json()["info"]["title"] == "gyrophare"
    d = client.post("/v1/dispatch", json={"incident": A, "ambulance_id": "M-1"}).json()
    m = client.get("/metrics").text
    assert f'gyrophare_en_route{{hospital="{d["hospital_id"]}"}} 1.0' in m, m[-2000:]


def test_sse_stream_delivers_a_level_change(client: TestClient) -> None:
    hid = first_hospital(client)
    got: list[dict[str, Any]] = []

    def listen() -> None:
        with client.stream("GET", "/v1/alerts/stream") as stream:
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    got.append(json.loads(line[6:]))
                    return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not client.app.state.live._listeners and time.time() < deadline:
        time.sleep(0.02)
    client.put(f"/v1/hospitals/{hid}/status", json={"ed_status": "Closed"})
    thread.join(timeout=10)
    assert got and got[0]["hospital_id"] == hid and got[0]["new_level"] == "closed"


def test_state_survives_a_restart(monaco, tmp_path: Path) -> None:
    path = tmp_path / "state.jsonl"
    app = create_app(Settings(), graph=monaco, store=EmbeddedStore(path))
    with TestClient(app) as c:
        hid = first_hospital(c)
        c.put(f"/v1/hospitals/{hid}/status", json={"ed_status": "Closed"})
        c.post("/v1/traffic", json={"changes": [{"type": "Closure", "edges": [5]}]})
        c.post("/v1/dispatch", json={"incident": A, "ambulance_id": "VSAV-3"})
    app = create_app(Settings(), graph=monaco, store=EmbeddedStore(path))
    with TestClient(app) as c:
        assert c.get("/v1/traffic").json()["weights_version"] == 1
        assert [e["ambulance_id"] for e in c.get("/v1/ambulances").json()] == ["VSAV-3"]
        rows = c.get("/v1/saturation").json()["rows"]
        assert next(r for r in rows if r["hospital_id"] == hid and r["bed_type"] is None
                    )["level"] == "closed"


# ----------------------------------------------------------------------------- auth
KEYS = {"k-disp": "dispatcher", "k-cc": "command_centre", "k-plan": "planner",
        "k-admin": "admin"}
ROLE_RANK = {"dispatcher": 1, "command_centre": 2, "planner": 3, "admin": 4}
ENDPOINTS = [  # (method, path, body, minimum role)
    ("post", "/v1/route", {"origin": A, "destination": B}, "dispatcher"),
    ("post", "/v1/dispatch", {"incident": A, "register": False}, "dispatcher"),
    ("get", "/v1/hospitals", None, "dispatcher"),
    ("get", "/v1/saturation", None, "dispatcher"),
    ("get", "/v1/alerts", None, "dispatcher"),
    ("get", "/v1/traffic", None, "dispatcher"),
    ("get", "/v1/ambulances", None, "dispatcher"),
    ("post", "/v1/coverage", {"stations": [A], "minutes": 2}, "dispatcher"),
    ("post", "/v1/traffic", {"changes": [{"type": "Closure", "edges": [7]}]},
     "command_centre"),
    ("post", "/v1/reports", {"location": B}, "command_centre"),
    ("post", "/v1/closures", {"type": "Feature", "geometry": {"type": "Point",
                                                              "coordinates": A}},
     "command_centre"),
    ("post", "/v1/traffic/speeds", {"speeds": [[25239340, 25239343, 30]]}, "command_centre"),
]


@pytest.fixture(scope="module")
def secured(monaco, tmp_path_factory):
    settings = Settings(api_keys=KEYS)
    app = create_app(settings, graph=monaco,
                     store=EmbeddedStore(tmp_path_factory.mktemp("auth") / "s.jsonl"))
    with TestClient(app) as c:
        yield c


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e[0]} {e[1]}")
def test_auth_matrix(secured: TestClient, endpoint) -> None:
    method, path, body, minimum = endpoint
    kwargs = {"json": body} if body is not None else {}
    r = getattr(secured, method)(path, **kwargs)
    assert r.status_code == 401 and "API key" in r.json()["detail"]
    r = getattr(secured, method)(path, headers={"X-API-Key": "wrong"}, **kwargs)
    assert r.status_code == 401 and "unknown API key" in r.json()["detail"]
    for key, role in KEYS.items():
        r = getattr(secured, method)(path, headers={"X-API-Key": key}, **kwargs)
        if ROLE_RANK[role] < ROLE_RANK[minimum]:
            assert r.status_code == 403, (role, r.text)
            assert minimum in r.json()["detail"] and role in r.json()["detail"]
        else:
            assert r.status_code in (200, 201), (role, r.text)
    bearer = getattr(secured, method)(path, headers={"Authorization": "Bearer k-admin"},
                                      **kwargs)
    assert bearer.status_code in (200, 201)


def test_hospital_status_needs_command_centre(secured: TestClient) -> None:
    hid = secured.get("/v1/hospitals", headers={"X-API-Key": "k-disp"}).json()[0]["id"]
    path = f"/v1/hospitals/{hid}/status"
    beat = {"heartbeat": True}
    assert secured.put(path, json=beat, headers={"X-API-Key": "k-disp"}).status_code == 403
    assert secured.put(path, json=beat, headers={"X-API-Key": "k-cc"}).status_code == 200


def test_scenario_runs_need_planner_and_report_results(monaco, tmp_path: Path) -> None:
    settings = Settings(api_keys={"k-cc": "command_centre", "k-plan": "planner"})
    app = create_app(settings, graph=monaco, store=EmbeddedStore(tmp_path / "s.jsonl"))
    with TestClient(app) as c:
        plan, cc = {"X-API-Key": "k-plan"}, {"X-API-Key": "k-cc"}
        body = {"name": "monaco-surge", "compare": ["nearest", "saturation_aware"]}
        assert c.post("/v1/scenarios/runs", json=body, headers=cc).status_code == 403
        assert "monaco-surge" in c.get("/v1/scenarios", headers=plan).json()["shipped"]
        bad = c.post("/v1/scenarios/runs", headers=plan,
                     json={"scenario": {"name": "x", "start": "yesterday"}})
        assert bad.status_code == 422 and "start" in json.dumps(bad.json())
        assert c.post("/v1/scenarios/runs", json={"name": "atlantis"},
                      headers=plan).status_code == 404
        r = c.post("/v1/scenarios/runs", json=body, headers=plan)
        assert r.status_code == 202, r.text
        run_id = r.json()["id"]
        deadline = time.time() + 120
        while time.time() < deadline:
            run = c.get(f"/v1/scenarios/runs/{run_id}", headers=plan).json()
            if run["status"] != "running":
                break
            time.sleep(0.2)
        assert run["status"] == "done", run
        variants = json.dumps(run["result"])
        assert "saturation_aware" in variants and "nearest" in variants
        assert c.get("/v1/scenarios/runs/run-999", headers=plan).status_code == 404
