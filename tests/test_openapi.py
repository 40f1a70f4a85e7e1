"""Declared contracts: ``/openapi.json`` documents every answer of every endpoint (success body,
media type, each error status with its body), and real answers match the declared models.

To cover another router module, add one test function that calls :func:`check_router` with
the module and a table ``"METHOD /path" -> Answer`` of its endpoints (every endpoint of the
module must be listed), and, when it can, :func:`conforms` on real answers.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import polyline as polyline_codec
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from api.app import create_app
from api.auth import DispatcherRole, caller_role
from api.models import hospitals as hospital_models
from api.models import routing as routing_models
from api.models import scenarios as scenario_models
from api.models import traffic as traffic_models
from api.models.errors import ErrorBody, ValidationErrorBody, error_responses
from api.models.health import Health
from api.routers import health, hospitals, routing, scenarios, traffic
from api.settings import Settings
from api.store import EmbeddedStore, StoreUnavailable
from engine.graph import RoadGraph

A = [7.4246, 43.7384]  # [lon, lat]: Monte-Carlo
B = [7.4197, 43.7313]  # La Condamine
REF = "#/components/schemas/"


# ----------------------------------------------------------------------------- helpers
@dataclass(frozen=True)
class Answer:
    """What an endpoint answers: the schema(s) of its success body (component names; empty
    for a body that is not JSON), its media type and status, and its error statuses (their
    body is ``ValidationErrorBody`` for 422, ``ErrorBody`` otherwise, unless ``bodies`` names
    another component for a status)."""

    schemas: tuple[str, ...]
    errors: tuple[int, ...]
    media_type: str = "application/json"
    status: int = 200
    bodies: tuple[tuple[int, str], ...] = ()


AUTH = (401, 403, 413, 422)
#: What every write can also answer (api.idempotency): 409, a request with the same
#: Idempotency-Key still in progress; 503, the state store unreachable.
WRITE = (*AUTH, 409, 503)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def check_router(openapi: dict[str, Any], module: ModuleType,
                 expected: dict[str, Answer]) -> None:
    """Every endpoint of ``module.router`` is listed in ``expected`` and documented as it
    says: success media type and schema, exactly the listed error statuses, each with the
    JSON error body (``ValidationErrorBody`` for 422, ``ErrorBody`` otherwise, or as
    ``Answer.bodies`` says)."""
    endpoints = {f"{method} {route.path}" for route in module.router.routes
                 if isinstance(route, APIRoute) for method in route.methods or ()}
    assert endpoints == set(expected), "list every endpoint of the module, no more"
    for endpoint, answer in expected.items():
        method, path = endpoint.split(" ", 1)
        operation = openapi["paths"][path][method.lower()]
        responses = operation["responses"]
        assert set(responses) == {str(answer.status), *map(str, answer.errors)}, endpoint
        ok = responses[str(answer.status)]
        assert ok.get("description"), endpoint
        assert list(ok["content"]) == [answer.media_type], endpoint
        found = set(_refs(ok["content"][answer.media_type]))
        assert found >= {REF + name for name in answer.schemas}, (endpoint, found)
        if not answer.schemas:
            assert ok["content"][answer.media_type]["schema"] == {"type": "string"}, endpoint
        for code in answer.errors:
            error = responses[str(code)]
            body = dict(answer.bodies).get(
                code, "ValidationErrorBody" if code == 422 else "ErrorBody")
            assert error["content"] == {"application/json": {"schema": {"$ref": REF + body}}}, (
                endpoint, code)
            assert error.get("description"), (endpoint, code)
    assert_refs_resolve(openapi)


def assert_refs_resolve(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    for ref in set(_refs(openapi["paths"])) | set(_refs(schemas)):
        assert ref.startswith(REF) and ref.removeprefix(REF) in schemas, ref


def conforms(body: Any, model: Any) -> None:
    """``body`` (a JSON answer) validates against ``model`` and holds nothing it does not
    declare: dumping the validated value gives the body back."""
    adapter = TypeAdapter(model)
    value = adapter.validate_python(body)
    assert json.loads(adapter.dump_json(value, exclude_unset=True)) == body


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return create_app(Settings()).openapi()


@pytest.fixture()
def client(monaco: RoadGraph, tmp_path: Path) -> Iterable[TestClient]:
    app = create_app(Settings(), graph=monaco, store=EmbeddedStore(tmp_path / "state.jsonl"))
    with TestClient(app) as c:
        yield c


# ----------------------------------------------------------------------------- routers
def test_routing_router_documents_every_answer(openapi: dict[str, Any],
                                               client: TestClient) -> None:
    check_router(openapi, routing, {
        "POST /v1/route": Answer(("RouteFound", "RouteNotFound"), (*WRITE, 404)),
        "POST /v1/dispatch": Answer(("DispatchResponse",), WRITE),
        "GET /v1/ambulances": Answer(("EnRouteOut",), AUTH),
        "POST /v1/ambulances/{ambulance_id}/arrived": Answer(("AmbulanceEvent",),
                                                             (*WRITE, 404)),
        "POST /v1/ambulances/{ambulance_id}/cancel": Answer(("AmbulanceEvent",),
                                                            (*WRITE, 404)),
        "DELETE /v1/ambulances/{ambulance_id}": Answer(("AmbulanceEvent",), (*WRITE, 404)),
        "POST /v1/coverage": Answer(("CoverageResponse",), WRITE),
    })
    route = client.post("/v1/route", json={"origin": A, "destination": B}).json()
    conforms(route, routing_models.RouteResponse)
    decision = client.post("/v1/dispatch", json={
        "incident": A, "ambulances": {"x": B}, "need": {"bed_type": "AdultICU"}}).json()
    conforms(decision, routing_models.DispatchResponse)
    assert decision["ambulance"] is not None and decision["registered"]
    conforms(client.get("/v1/ambulances").json(), list[hospital_models.EnRouteOut])
    arrived = client.post(f"/v1/ambulances/{decision['ambulance_id']}/arrived")
    conforms(arrived.json(), routing_models.AmbulanceEvent)
    again = client.post("/v1/dispatch", json={"incident": A, "need": {"bed_type": "AdultICU"}})
    cleared = client.delete(f"/v1/ambulances/{again.json()['ambulance_id']}")
    assert cleared.status_code == 200, cleared.text
    conforms(cleared.json(), routing_models.AmbulanceEvent)
    conforms(client.post("/v1/coverage", json={"stations": [A], "minutes": 3}).json(),
             routing_models.CoverageResponse)
    for error in (client.post("/v1/route", json={"origin": A, "destination_hospital": "x"}),
                  client.post("/v1/ambulances/nope/cancel"),
                  client.post("/v1/dispatch", json={"incident": A,
                                                    "need": {"bed_type": "Burn"}})):
        assert error.status_code in (404, 409)
        conforms(error.json(), ErrorBody)


def test_hospitals_router_documents_every_answer(openapi: dict[str, Any],
                                                 client: TestClient) -> None:
    check_router(openapi, hospitals, {
        "GET /v1/hospitals": Answer(("HospitalOut",), AUTH),
        "GET /v1/hospitals/{hospital_id}": Answer(("HospitalOut",), (*AUTH, 404)),
        "PUT /v1/hospitals/{hospital_id}/status": Answer(("HospitalStatusResponse",),
                                                         (*WRITE, 404)),
        "GET /v1/saturation": Answer(("SaturationResponse",), AUTH),
        "GET /v1/alerts": Answer(("SignalOut",), AUTH),
        "GET /v1/alerts/stream": Answer((), AUTH, media_type="text/event-stream"),
        "GET /v1/alerts/{alert_id}.cap": Answer((), (*AUTH, 404),
                                                media_type="application/cap+xml"),
    })
    stream = openapi["paths"]["/v1/alerts/stream"]["get"]["responses"]["200"]
    assert "saturation" in stream["description"]
    listed = client.get("/v1/hospitals").json()
    conforms(listed, list[hospital_models.HospitalOut])
    hid = listed[1]["id"]
    conforms(client.get(f"/v1/hospitals/{hid}").json(), hospital_models.HospitalOut)
    report = client.put(f"/v1/hospitals/{hid}/status",
                        json={"beds": {"AdultICU": {"baseline": 10, "available": 0}}}).json()
    conforms(report, hospital_models.HospitalStatusResponse)
    assert report["signals"]
    conforms(client.get("/v1/saturation").json(), hospital_models.SaturationResponse)
    alerts = client.get("/v1/alerts").json()
    conforms(alerts, list[hospital_models.SignalOut])
    cap = client.get(f"/v1/alerts/{alerts[0]['id']}.cap")
    assert cap.headers["content-type"].startswith("application/cap+xml")
    missing = client.get("/v1/alerts/nope.cap")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/json"


def test_osrm_router_documents_every_answer(openapi: dict[str, Any],
                                            client: TestClient) -> None:
    """OSRM's services: OSRM's body per service, OSRM's ``{"code", "message"}`` on 400 (not the
    service's ``ErrorBody``, so checked here rather than by :func:`check_router`), the errors
    of every authenticated endpoint; real answers, errors included, match."""
    from api.models import osrm as osrm_models
    from api.routers import osrm

    expected = {f"GET /{service}/{{version}}/{{profile}}/{{coordinates}}": model
                for service, model in (("route", "RouteResponse"), ("table", "TableResponse"),
                                       ("nearest", "NearestResponse"))}
    documented = {f"{method} {route.path}" for route in osrm.router.routes
                  if isinstance(route, APIRoute) and route.include_in_schema
                  for method in route.methods}
    assert documented == set(expected)  # match / trip / tile: InvalidService, undocumented
    for endpoint, model in expected.items():
        method, path = endpoint.split(" ", 1)
        responses = openapi["paths"][path][method.lower()]["responses"]
        assert set(responses) == {"200", "400", *map(str, AUTH)}, endpoint
        ok = responses["200"]["content"]
        assert list(ok) == ["application/json"] and set(_refs(ok)) == {REF + model}, endpoint
        for code, body in (("400", "OsrmErrorBody"), ("401", "ErrorBody"),
                           ("403", "ErrorBody"), ("413", "ErrorBody"),
                           ("422", "ValidationErrorBody")):
            assert responses[code]["content"] == {
                "application/json": {"schema": {"$ref": REF + body}}}, (endpoint, code)
            assert responses[code].get("description"), (endpoint, code)
    assert_refs_resolve(openapi)

    points = ";".join(f"{lon},{lat}" for lon, lat in (A, [7.4200, 43.7350], B))
    for params in ({}, {"steps": "true", "annotations": "true", "geometries": "geojson",
                        "overview": "full"},
                   {"steps": "true", "geometries": "polyline6", "overview": "false",
                    "generate_hints": "false", "skip_waypoints": "true",
                    "annotations": "nodes,speed", "waypoints": "0;2"}):
        route = client.get(f"/route/v1/driving/{points}", params=params)
        assert route.status_code == 200, route.text
        conforms(route.json(), osrm_models.RouteResponse)
    table = client.get(f"/table/v1/driving/{points}",
                       params={"annotations": "duration,distance", "fallback_speed": "10"})
    conforms(table.json(), osrm_models.TableResponse)
    nearest = client.get(f"/nearest/v1/driving/{A[0]},{A[1]}", params={"number": "3"})
    conforms(nearest.json(), osrm_models.NearestResponse)
    for url in (f"/route/v1/driving/{A[0]},{A[1]};7.44,43.72",  # NoSegment: in the sea
                f"/route/v1/driving/{points}?steps=maybe", f"/route/v2/driving/{points}",
                f"/nearest/v1/driving/{A[0]},{A[1]}?number=101"):
        error = client.get(url)
        assert error.status_code == 400
        conforms(error.json(), osrm_models.OsrmErrorBody)


def test_traffic_router_documents_every_answer(openapi: dict[str, Any], client: TestClient,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    check_router(openapi, traffic, {
        "POST /v1/traffic/speeds": Answer(("Applied",), WRITE),
        "POST /v1/closures": Answer(("EntryCreated",), WRITE, status=201),
        "DELETE /v1/closures/{entry_id}": Answer(("Deleted",), (*WRITE, 404)),
        "POST /v1/reports": Answer(("EntryCreated",), WRITE, status=201),
        "POST /v1/traffic": Answer(("Applied",), WRITE, status=201),
        "GET /v1/traffic": Answer(("TrafficState",), AUTH),
    })
    body = openapi["paths"]["/v1/traffic/speeds"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "text/csv"}  # the body is read by hand

    csv = client.post("/v1/traffic/speeds", content="from_osm_id,to_osm_id,speed_kmh\n"
                      "25239340,25239343,20\n", headers={"content-type": "text/csv"})
    assert csv.status_code == 200, csv.text
    conforms(csv.json(), traffic_models.Applied)
    speeds = client.post("/v1/traffic/speeds", json={"speeds": [[25239340, 25239343, 15]]})
    conforms(speeds.json(), traffic_models.Applied)
    closure = client.post("/v1/closures", json={
        "type": "Feature", "geometry": {"type": "Point", "coordinates": A},
        "properties": {"radius_m": 30}})
    assert closure.status_code == 201, closure.text
    conforms(closure.json(), traffic_models.EntryCreated)
    report = client.post("/v1/reports", json={"location": B, "kind": "slowed"})
    assert report.status_code == 201, report.text
    conforms(report.json(), traffic_models.EntryCreated)
    assert report.json()["snapped"]["type"] == "Point"
    batch = client.post("/v1/traffic", json={"changes": [
        {"type": "Closure", "geometry": {"type": "Point", "coordinates": B}, "radius_m": 20}]})
    assert batch.status_code == 201, batch.text
    conforms(batch.json(), traffic_models.Applied)
    listing = client.get("/v1/traffic").json()
    conforms(listing, traffic_models.TrafficState)
    assert len(listing["entries"]) == 5
    deleted = client.delete(f"/v1/closures/{closure.json()['id']}")
    assert deleted.status_code == 200, deleted.text
    conforms(deleted.json(), traffic_models.Deleted)

    missing = client.delete("/v1/closures/unknown")
    assert missing.status_code == 404
    conforms(missing.json(), ErrorBody)
    for error in (
        client.post("/v1/closures", json={"type": "Feature", "geometry": {"type": "Hexagon"}}),
        client.post("/v1/closures", json=[1]),
        client.post("/v1/traffic/speeds", json={"speeds": [[1, 2]]}),  # read by hand
        client.post("/v1/traffic/speeds", content="{", headers={"content-type":
                                                                 "application/json"}),
        client.post("/v1/traffic/speeds", json={}),
        client.post("/v1/traffic/speeds", content="1,2\n", headers={"content-type": "text/csv"}),
        client.post("/v1/reports", json={"location": [500, 1]}),
        client.post("/v1/traffic", json={"changes": [{"type": "Nope"}]}),
    ):
        assert error.status_code == 422, error.text
        conforms(error.json(), ValidationErrorBody)
    assert client.post("/v1/traffic/speeds", json={"speeds": [[1, 2]]}).json()["errors"][0][
        "loc"] == ["body", "speeds", 0]

    def down(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable("connection refused")

    monkeypatch.setattr(client.app.state.live.store, "append", down)  # type: ignore[attr-defined]
    refused = client.post("/v1/reports", json={"location": A})
    assert refused.status_code == 503
    conforms(refused.json(), ErrorBody)
    assert refused.json()["stale"] is True


def test_health_router_documents_every_answer(openapi: dict[str, Any], client: TestClient,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    check_router(openapi, health, {
        "GET /health": Answer(("Health",), (503,), bodies=((503, "Health"),)),
    })
    ok = client.get("/health")
    assert ok.status_code == 200
    conforms(ok.json(), Health)
    assert ok.json()["status"] == "ok" and ok.json()["store"]["kind"] == "embedded"
    monkeypatch.setattr(client.app.state.live.store, "ping",  # type: ignore[attr-defined]
                        lambda: False)
    degraded = client.get("/health")
    assert degraded.status_code == 503
    conforms(degraded.json(), Health)
    assert degraded.json()["status"] == "degraded" and degraded.json()["stale"] is True


def test_scenarios_router_documents_every_answer(openapi: dict[str, Any],
                                                 client: TestClient) -> None:
    check_router(openapi, scenarios, {
        "GET /v1/scenarios": Answer(("ScenarioList",), AUTH),
        "POST /v1/scenarios/runs": Answer(("RunStatus",), (*WRITE, 404, 429), status=202),
        "GET /v1/scenarios/runs/{run_id}": Answer(("RunStatus",), (*AUTH, 404)),
        "POST /v1/scenarios/runs/{run_id}/cancel": Answer(("RunStatus",), (*WRITE, 404)),
        "GET /v1/scenarios/runs/{run_id}/report": Answer((), (*AUTH, 404),
                                                         media_type="text/html"),
    })
    listed = client.get("/v1/scenarios").json()
    conforms(listed, scenario_models.ScenarioList)
    assert "monaco-surge" in listed["shipped"] and listed["runs"] == []
    started = client.post("/v1/scenarios/runs", json={"name": "monaco-surge",
                                                      "compare": ["nearest"]})
    assert started.status_code == 202, started.text
    conforms(started.json(), scenario_models.RunStatus)
    run_id = started.json()["id"]
    deadline = time.time() + 120
    while (run := client.get(f"/v1/scenarios/runs/{run_id}").json())["status"] == "running":
        conforms(run, scenario_models.RunStatus)
        assert time.time() < deadline, run
        time.sleep(0.1)
    conforms(run, scenario_models.RunStatus)
    assert run["status"] == "done" and run["result"]["scenario"] == "monaco-surge", run
    listed = client.get("/v1/scenarios").json()
    conforms(listed, scenario_models.ScenarioList)
    assert [r["id"] for r in listed["runs"]] == [run_id]

    conforms(client.post(f"/v1/scenarios/runs/{run_id}/cancel").json(),
             scenario_models.RunStatus)
    for error in (client.get("/v1/scenarios/runs/nope"),
                  client.post("/v1/scenarios/runs/nope/cancel"),
                  client.post("/v1/scenarios/runs", json={"name": "atlantis"})):
        assert error.status_code == 404
        conforms(error.json(), ErrorBody)
    for error in (client.post("/v1/scenarios/runs", json={}),
                  client.post("/v1/scenarios/runs", json={"name": "monaco-surge",
                                                          "scenario": {}}),
                  client.post("/v1/scenarios/runs", json={"name": "monaco-surge", "seeds": 0}),
                  client.post("/v1/scenarios/runs", json={"name": "monaco-surge",
                                                          "compare": ["fastest"]}),
                  client.post("/v1/scenarios/runs",
                              json={"scenario": {"name": "x", "start": "yesterday"}})):
        assert error.status_code == 422, error.text
        conforms(error.json(), ValidationErrorBody)


def test_auth_and_size_errors_are_error_bodies(monaco: RoadGraph, tmp_path: Path) -> None:
    """401, 403 (FastAPI's ``HTTPException`` handler) and 413 (the body-limit middleware) send
    the declared ``ErrorBody``, on the traffic, scenarios and every other authenticated
    router."""
    settings = Settings(api_keys={"k-disp": "dispatcher"}, max_body_bytes=1000)
    app = create_app(settings, graph=monaco, store=EmbeddedStore(tmp_path / "state.jsonl"))
    disp = {"X-API-Key": "k-disp"}
    with TestClient(app) as c:
        for error, code in (
            (c.get("/v1/traffic"), 401),
            (c.get("/v1/traffic", headers={"X-API-Key": "nope"}), 401),
            (c.get("/v1/scenarios", headers=disp), 403),
            (c.delete("/v1/closures/unknown", headers=disp), 403),
            (c.post("/v1/traffic", headers=disp, json={"changes": [{"note": "x" * 2000}]}), 413),
        ):
            assert error.status_code == code, error.text
            conforms(error.json(), ErrorBody)
        assert c.get("/v1/traffic", headers=disp).status_code == 200


# ----------------------------------------------------------------------------- every endpoint
def _documented_routes(app: FastAPI) -> list[Any]:
    """Every endpoint of ``app`` in ``/openapi.json``, with its effective path, methods,
    status and dependencies (FastAPI keeps included routers as such in ``app.routes``:
    :func:`fastapi.routing.iter_route_contexts` walks into them)."""
    return [context for context in iter_route_contexts(app.routes)
            if isinstance(context.original_route, APIRoute) and context.include_in_schema]


def _authenticated(context: Any) -> bool:
    """The endpoint asks for the caller's role (an API key), directly or through a role."""
    pending = list(context.dependant.dependencies)
    while pending:
        dependency = pending.pop()
        if dependency.call is caller_role:
            return True
        pending.extend(dependency.dependencies)
    return False


def check_every_endpoint(app: FastAPI) -> None:
    """Each documented endpoint of ``app`` has its success body's schema, each error status a
    description and a body ``$ref`` (422: ``ValidationErrorBody``, the body the app's handler
    sends, never FastAPI's ``HTTPValidationError``), and each authenticated one its 401, 403
    and 422."""
    openapi = app.openapi()
    for route in _documented_routes(app):
        for method in route.methods or ():
            endpoint = f"{method} {route.path}"
            responses = openapi["paths"][route.path][method.lower()]["responses"]
            success = [code for code in responses if code.startswith("2")]
            assert success == [str(route.status_code or 200)], (endpoint, list(responses))
            ok = responses[success[0]]
            assert ok.get("description") and ok.get("content"), endpoint
            for media_type, content in ok["content"].items():
                schema = content.get("schema", {})  # a bare title says nothing of the body
                assert set(schema) - {"title", "description"}, (endpoint, media_type, schema)
            for code, error in responses.items():
                if code.startswith(("4", "5")):
                    assert error.get("description"), (endpoint, code)
                    assert list(error.get("content", {})) == ["application/json"], (endpoint,
                                                                                     code)
                    schema = error["content"]["application/json"]["schema"]
                    assert set(schema) == {"$ref"}, (endpoint, code)
                    if code == "422":
                        assert schema["$ref"] == REF + "ValidationErrorBody", endpoint
                else:
                    assert code.startswith("2"), (endpoint, code)  # no "default", no 1xx/3xx
            if _authenticated(route):
                assert {"401", "403", "422"} <= set(responses), (endpoint, list(responses))
    assert "HTTPValidationError" not in openapi["components"]["schemas"]
    assert_refs_resolve(openapi)


def test_every_endpoint_documents_its_answers() -> None:
    """Guards endpoints to come: every endpoint of the app, whatever its router."""
    app = create_app(Settings())
    routes = _documented_routes(app)
    assert len(routes) > 20
    assert any(not _authenticated(route) for route in routes)  # /health
    check_every_endpoint(app)


def test_every_endpoint_check_catches_undeclared_answers() -> None:
    """The guard itself: an endpoint without a response model, or an authenticated one
    without its error statuses, fails it; a declared one passes."""
    bare = create_app(Settings())

    @bare.get("/v1/new")
    def no_model() -> Any:
        return {}

    with pytest.raises(AssertionError, match="application/json"):
        check_every_endpoint(bare)

    for responses, fails in (({}, True), (error_responses(*AUTH), False)):
        app = create_app(Settings())

        @app.get("/v1/new", response_model=traffic_models.Applied, responses=responses)
        def no_errors(_: DispatcherRole) -> Any:
            return {}

        if fails:
            with pytest.raises(AssertionError, match=r"\['200'\]"):
                check_every_endpoint(app)
        else:
            check_every_endpoint(app)


# ----------------------------------------------------------------------------- declared rules
# What /openapi.json declares as patterns, checked both ways against the code that enforces
# the rule: a value the pattern admits is accepted, and a value accepted matches the pattern.
_DECLARED = settings(max_examples=300, deadline=None, derandomize=True, database=None)


def _osrm_accepts(service: str, coordinates: str) -> bool:
    """The grammar takes ``coordinates`` (OSRM's answer to the URL, ranges included)."""
    from api.osrm import grammar
    from api.osrm.errors import OsrmError

    parse = {"route": grammar.parse_route, "nearest": grammar.parse_nearest,
             "table": partial(grammar.parse_table, max_table_coordinates=200)}[service]
    try:
        parse("v1", "driving", coordinates, query="", options=[])
    except OsrmError:
        return False
    return True


def _osrm_pattern(service: str) -> str:
    path = f"/{service}/{{version}}/{{profile}}/{{coordinates}}"
    parameters = create_app(Settings()).openapi()["paths"][path]["get"]["parameters"]
    return next(p["schema"]["pattern"] for p in parameters if p["name"] == "coordinates")


@pytest.mark.parametrize("service", ["route", "table", "nearest"])
def test_osrm_url_parts_are_declared_as_the_grammar_reads_them(service: str) -> None:
    """``{coordinates}``: the positions the grammar accepts, in number and range; a polyline
    of whole pairs (decoding out of range is the one thing no pattern can bound). Version
    and profile are the grammar's too."""
    from api.osrm import grammar

    pattern = re.compile(_osrm_pattern(service))
    number = st.from_regex(r"\A[+-]?(?:[0-9]{1,4}(?:\.[0-9]{0,3})?|\.[0-9]{1,3})\Z")
    position = st.builds(lambda lon, lat: f"{lon},{lat}", number, number)

    @_DECLARED
    @given(st.lists(position, min_size=1, max_size=3).map(";".join),
           st.sampled_from(["", ".json"]))
    def listed(coordinates: str, suffix: str) -> None:
        text = coordinates + suffix
        assert bool(pattern.fullmatch(text)) == _osrm_accepts(service, text), text

    @_DECLARED
    @given(st.from_regex(pattern, fullmatch=True))
    def declared(coordinates: str) -> None:
        accepted = _osrm_accepts(service, coordinates)
        if not accepted:  # only a polyline decoding out of WGS84 range is refused
            assert coordinates.startswith("polyline"), coordinates
            points = polyline_codec.decode(
                coordinates.split("(", 1)[1].rsplit(")", 1)[0],
                6 if coordinates.startswith("polyline6") else 5)
            assert any(not (-90 <= lat <= 90 and -180 <= lon <= 180) for lat, lon in points)

    listed()
    declared()
    for version, ok in (("v1", True), ("v2", False), ("v1 ", False)):
        assert bool(re.fullmatch(grammar.VERSION_PATTERN, version)) == ok
    for profile in ("driving", "car", "ambulance", "emergency", "bike", "Driving"):
        assert bool(re.fullmatch(grammar.PROFILE_PATTERN, profile)) == (
            profile in grammar.PROFILES)


def test_instant_is_declared_as_parse_time_reads_it() -> None:
    """``Instant``: an RFC 3339 date-time that the pattern admits is accepted, and one that
    the service accepts matches the pattern (but on the two edge days, where only offsets
    that cannot cross 1970 / 2200 are declared)."""
    import jsonschema_rs

    from api.schemas import INSTANT_PATTERN
    from engine.timeutil import parse_time

    declared = jsonschema_rs.validator_for(
        {"type": "string", "format": "date-time", "pattern": INSTANT_PATTERN},
        validate_formats=True)

    def accepted(text: str) -> bool:
        try:
            parse_time(text)
        except ValueError:
            return False
        return True

    @_DECLARED
    @given(st.from_regex(INSTANT_PATTERN, fullmatch=True))
    def admitted(text: str) -> None:
        if declared.is_valid(text):  # the pattern leaves calendar dates to format
            assert accepted(text), text

    offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(
        lambda m: timezone(timedelta(minutes=m)))

    @_DECLARED
    @given(st.datetimes(datetime(1960, 1, 1), datetime(2210, 12, 31), timezones=offsets),
           st.booleans())
    def read(at: datetime, zulu: bool) -> None:
        text = at.isoformat()
        if zulu and at.utcoffset() == timedelta(0):
            text = text[:-6] + "Z"
        edge = text.startswith(("1970-01-01", "2199-12-31"))
        if not edge:
            assert declared.is_valid(text) == accepted(text), text

    admitted()
    read()
    for text, ok in (("2026-11-27T08:00:00Z", True), ("1969-12-31T23:59:59Z", False),
                     ("2200-01-01T00:00:00Z", False), ("2026-11-27T08:00:60Z", False),
                     ("2026-11-27t08:00:00Z", False), ("1970-01-01T00:00:00-01:00", True)):
        assert declared.is_valid(text) == ok == accepted(text), text


def test_printable_text_is_declared_as_the_engine_checks_it() -> None:
    """``PrintableText``: the characters a traffic change's ``source`` / ``note`` may hold."""
    from api.schemas import printable_pattern
    from engine.changes import ClassFactor, check_change

    pattern = re.compile(printable_pattern())

    @_DECLARED
    @given(st.text(max_size=20))
    def same(text: str) -> None:
        refused = check_change(ClassFactor(classes=["primary"], factor=1.0, note=text))
        assert bool(pattern.fullmatch(text)) == (not refused), text

    same()
    for text, ok in (("Pont Sainte-Dévote\tfermé\n", True), ("a\x00", False),
                     ("zero\u200bwidth", False), ("nbsp\u00a0", False), ("日本", True)):
        assert bool(pattern.fullmatch(text)) == ok, text


def test_integer_keys_are_declared_up_to_their_bound() -> None:
    from api.schemas import WAY_KEY_PATTERN, uint_pattern

    for bound in (9, 10, 305, 2**62):
        pattern = re.compile(uint_pattern(bound))
        for n in (*range(0, 1100), bound - 1, bound, bound + 1, bound * 10):
            assert bool(pattern.fullmatch(str(n))) == (1 <= n <= bound), (bound, n)
    assert re.fullmatch(WAY_KEY_PATTERN, "0025239340") and not re.fullmatch(WAY_KEY_PATTERN, "0")


def test_write_errors_of_the_idempotency_middleware_are_declared(
        openapi: dict[str, Any]) -> None:
    """Every write documents the 409 (same Idempotency-Key in progress, with Retry-After)
    and the 503 (store unreachable) its middleware answers; reads do not."""
    for path, item in openapi["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            if method.upper() in ("POST", "PUT", "PATCH", "DELETE"):
                assert {"409", "503"} <= set(responses), (method, path)
                assert "Retry-After" in responses["409"]["headers"], (method, path)
                assert "Idempotency-Key" in responses["409"]["description"]
            elif path not in ("/health",):
                assert "409" not in responses, (method, path)
