"""Declared contracts: ``/openapi.json`` documents every answer of every endpoint (success body,
media type, each error status with its body), and real answers match the declared models.

To cover another router module, add one test function that calls :func:`check_router` with
the module and a table ``"METHOD /path" -> Answer`` of its endpoints (every endpoint of the
module must be listed), and, when it can, :func:`conforms` on real answers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from api.app import create_app
from api.models import hospitals as hospital_models
from api.models import routing as routing_models
from api.models.errors import ErrorBody
from api.routers import hospitals, routing
from api.settings import Settings
from api.store import EmbeddedStore
from engine.graph import RoadGraph

A = [7.4246, 43.7384]  # [lon, lat]: Monte-Carlo
B = [7.4197, 43.7313]  # La Condamine
REF = "#/components/schemas/"


# ----------------------------------------------------------------------------- helpers
@dataclass(frozen=True)
class Answer:
    """What an endpoint answers: the schema(s) of its success body (component names; empty
    for a body that is not JSON), its media type and status, and its error statuses."""

    schemas: tuple[str, ...]
    errors: tuple[int, ...]
    media_type: str = "application/json"
    status: int = 200


AUTH = (401, 403, 413, 422)


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
    JSON error body (``ValidationErrorBody`` for 422, ``ErrorBody`` otherwise)."""
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
            body = "ValidationErrorBody" if code == 422 else "ErrorBody"
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
        "POST /v1/route": Answer(("RouteFound", "RouteNotFound"), (*AUTH, 404)),
        "POST /v1/dispatch": Answer(("DispatchResponse",), (*AUTH, 409)),
        "GET /v1/ambulances": Answer(("EnRouteOut",), AUTH),
        "POST /v1/ambulances/{ambulance_id}/arrived": Answer(("AmbulanceEvent",),
                                                             (*AUTH, 404, 503)),
        "POST /v1/ambulances/{ambulance_id}/cancel": Answer(("AmbulanceEvent",),
                                                            (*AUTH, 404, 503)),
        "POST /v1/coverage": Answer(("CoverageResponse",), AUTH),
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
                                                         (*AUTH, 404, 503)),
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
