"""Bad input, service-wide ("Service hardening"): every case is a request, the status it must
get and a fragment of the message that says what was wrong. Never a 500, never an internal
name in an answer (``np.str_('a')``, ``IllegalArgumentException``, a traceback). Then the
ambulances en route that nobody closes (they expire; operators list and clear them), the
OSRM URL limit, and the command line's bad input."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.osrm import grammar
from api.osrm.errors import OsrmError
from api.settings import Settings
from api.store import EmbeddedStore
from engine.cli import EXIT_BAD_INPUT, main
from engine.timeutil import utcnow

A = [7.4246, 43.7384]  # [lon, lat]: Monte-Carlo
B = [7.4197, 43.7313]  # La Condamine
SWAPPED = [43.7384, 7.4246]  # A as [lat, lon]: off the map, but its swap is on it
SQUARE = [[7.420, 43.735], [7.425, 43.735], [7.425, 43.739], [7.420, 43.739], [7.420, 43.735]]

#: what an answer must never show: Python / NumPy reprs, Java-style exception names (GEOS's),
#: tracebacks, memory addresses
INTERNALS = re.compile(r"np\.\w+\(|numpy\.|Traceback|\b\w+(Exception|Error)\b(?!Body)|"
                       r"object at 0x|<class ")


def feature(geometry: dict[str, Any], **properties: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def point(lonlat: list[float]) -> dict[str, Any]:
    return {"type": "Point", "coordinates": lonlat}


def batch(**change: Any) -> dict[str, Any]:
    return {"json": {"changes": [change]}}


def route(**extra: Any) -> dict[str, Any]:
    return {"json": {"origin": A, "destination": B, **extra}}


def speeds(**extra: Any) -> dict[str, Any]:
    return {"json": {"speeds": [[25239340, 25239343, 20]], **extra}}


def csv(text: str | bytes) -> dict[str, Any]:
    return {"content": text, "headers": {"content-type": "text/csv"}}


def osrm_coords(*points: list[float]) -> str:
    return ";".join(f"{lon},{lat}" for lon, lat in points)


CASES = [
    # --- 1. dates outside 1970..2200 (were OverflowErrors: 500), and dates that are not
    # ISO 8601 (a number was read as a Unix time)
    pytest.param("POST", "/v1/route", route(departure="9999-12-31T23:59:59Z"), 422,
                 "outside the accepted range 1970-01-01 .. 2200-01-01", id="departure-9999"),
    pytest.param("POST", "/v1/route", route(departure="0001-01-01T00:00:00Z"), 422,
                 "outside the accepted range 1970-01-01 .. 2200-01-01", id="departure-year-1"),
    pytest.param("POST", "/v1/route", route(departure=1767225600), 422,
                 "expected an ISO 8601 time string", id="departure-unix-time"),
    pytest.param("POST", "/v1/route", route(departure="2026-03-17T08:00:00"), 422,
                 "has no time zone", id="departure-naive"),
    pytest.param("GET", "/v1/alerts?since=0001-01-01T00:42:00%2B01:00", {}, 422,
                 "outside the accepted range", id="since-year-1-offset"),
    pytest.param("GET", "/v1/alerts?since=9999-12-31T23:59:00-01:00", {}, 422,
                 "outside the accepted range", id="since-9999-offset"),
    pytest.param("GET", "/v1/alerts?since=36762", {}, 422,
                 "not an ISO 8601 time: '36762'", id="since-unix-time"),
    pytest.param("GET", "/v1/alerts?since=2026-11-27", {}, 422,
                 "expected date and time with a time zone", id="since-date-only"),
    pytest.param("GET", "/v1/alerts?since=2026-11-27T08:00:00Z", {}, 200, "", id="since-ok"),
    pytest.param("POST", "/v1/traffic/speeds", speeds(expires_at="9999-12-31T00:00:00Z"), 422,
                 "outside the accepted range", id="speeds-expires-9999"),
    pytest.param("POST", "/v1/reports", {"json": {"location": B,
                                                  "starts_at": "0001-01-01T00:00:00Z"}}, 422,
                 "outside the accepted range", id="report-starts-year-1"),
    pytest.param("POST", "/v1/closures",
                 {"json": feature(point(A), radius_m=30, expires_at="9999-12-31T00:00:00Z")},
                 422, "outside the accepted range", id="closure-expires-9999"),
    pytest.param("POST", "/v1/traffic", batch(type="Closure", geometry=point(A),
                                              starts_at="0001-01-01T00:00:00+01:00"), 422,
                 "outside the accepted range", id="batch-starts-year-1-offset"),
    # --- 2. traffic windows: already over, or absurdly long
    pytest.param("POST", "/v1/traffic/speeds", speeds(expires_at="2001-01-01T00:00:00Z"), 422,
                 "is already past", id="speeds-already-expired"),
    pytest.param("POST", "/v1/traffic", batch(type="Closure", geometry=point(A), radius_m=30,
                                              starts_at="2000-01-01T00:00:00Z",
                                              expires_at="2001-01-01T00:00:00Z"), 422,
                 "is already past", id="closure-window-in-the-past"),
    pytest.param("POST", "/v1/traffic/speeds", speeds(expires_at="2199-01-01T00:00:00Z"), 422,
                 "more than 5 years after the change starts", id="speeds-expires-2199"),
    pytest.param("POST", "/v1/closures", {"json": feature(point(A), radius_m=30,
                                                          starts_at="2150-01-01T00:00:00Z")},
                 422, "more than 5 years ahead", id="closure-starts-2150"),
    # --- 2. GeoJSON: closed rings, enough positions, in GeoJSON's words (no GEOS exception)
    pytest.param("POST", "/v1/closures", {"json": feature({"type": "Polygon", "coordinates": [
        [[7.42, 43.73], [7.43, 43.73], [7.43, 43.74]]]})}, 422,
                 "ring 0 is not closed: its last position [7.43, 43.74] must repeat its first",
                 id="polygon-unclosed"),
    pytest.param("POST", "/v1/traffic", batch(type="AreaFactor", factor=0.5, geometry={
        "type": "Polygon", "coordinates": [SQUARE[:4]]}), 422, "is not closed",
                 id="area-polygon-unclosed"),
    pytest.param("POST", "/v1/closures", {"json": feature({"type": "Polygon", "coordinates": [
        [[7.42, 43.73], [7.43, 43.73], [7.42, 43.73]]]})}, 422,
                 "a linear ring needs at least 4", id="polygon-ring-too-short"),
    pytest.param("POST", "/v1/closures", {"json": feature({"type": "LineString",
                                                           "coordinates": [A]})}, 422,
                 "a LineString needs at least 2", id="linestring-one-position"),
    pytest.param("POST", "/v1/closures", {"json": feature({"type": "Polygon", "coordinates": [
        [[43.735, 7.42], [43.735, 7.425], [43.739, 7.425], [43.735, 7.42]]]})}, 422,
                 "touches no road of the network; did you swap latitude and longitude?",
                 id="polygon-swapped"),
    pytest.param("POST", "/v1/closures", {"json": feature({"type": "Polygon", "coordinates": [
        [[7.42, 93.0], [7.43, 93.0], [7.43, 94.0], [7.42, 93.0]]]})}, 422,
                 "GeoJSON order is [lon, lat]", id="polygon-latitude-out-of-range"),
    pytest.param("POST", "/v1/closures", {"json": feature({"type": "Polygon", "coordinates": [
        [[7.420, 43.735], [7.425, 43.739], [7.425, 43.735], [7.420, 43.739],
         [7.420, 43.735]]]})}, 422, "its boundary crosses itself near [",
                 id="polygon-bow-tie"),
    # --- 2. a Point closure without radius says which radius it used
    pytest.param("POST", "/v1/closures", {"json": feature(point(A))}, 201,
                 "no radius_m given for the Point closure: roads within 25 m",
                 id="closure-point-default-radius"),
    pytest.param("POST", "/v1/traffic", batch(type="Closure", geometry=point(B)), 201,
                 "no radius_m given", id="batch-point-default-radius"),
    pytest.param("POST", "/v1/closures", {"json": feature(
        {"type": "LineString", "coordinates": [A, B]}, radius_m=50)}, 201,
                 "radius_m applies to Point closures only", id="closure-line-radius-ignored"),
    pytest.param("POST", "/v1/closures", {"json": feature(point(A), radius_m="x")}, 422,
                 "radius_m must be a number of metres", id="closure-radius-text"),
    pytest.param("POST", "/v1/closures", {"json": feature(point(A), radius_m=1e6)}, 422,
                 "(0, 5000]", id="closure-radius-huge"),
    pytest.param("POST", "/v1/closures", {"json": feature(point(A), radius=30)}, 422,
                 "unknown field(s) radius", id="closure-property-typo"),
    pytest.param("POST", "/v1/closures", {"json": {"type": "Feature", "geometry": point(A),
                                                   "properties": "x"}}, 422,
                 "properties must be a JSON object", id="closure-properties-text"),
    pytest.param("POST", "/v1/closures", {"json": feature(point(A), id="works/1")}, 422,
                 "id 'works/1' is not valid", id="closure-id-with-slash"),
    # --- 2. fields of the wrong type: a clear 422, never a 500
    pytest.param("POST", "/v1/traffic", batch(type="WaySpeeds", speeds=[1, 2]), 422,
                 "speeds must be an object: OSM way id -> speed", id="way-speeds-list"),
    pytest.param("POST", "/v1/traffic", batch(type="WaySpeeds", speeds={"\u00b2": 30}), 422,
                 "", id="way-speeds-superscript-key"),
    pytest.param("POST", "/v1/traffic", batch(type="Closure", geometry=point(A), radius_m="x"),
                 422, "radius_m must be a number", id="batch-radius-text"),
    pytest.param("POST", "/v1/traffic", batch(type="OpenBarriers", lat=43.73, lon=7.42,
                                              radius_m="x"), 422, "radius_m must be a number",
                 id="barriers-radius-text"),
    pytest.param("POST", "/v1/traffic", batch(type="Closure", geometry=point(A), id=5), 422,
                 "id 5 is not valid", id="batch-id-number"),
    pytest.param("POST", "/v1/traffic", batch(type="Closure", geometry=point(A),
                                              source=["x"]), 422,
                 "source must be a string", id="batch-source-list"),
    pytest.param("POST", "/v1/traffic", batch(type="ClassFactor", classes="primary",
                                              factor=0.5), 422,
                 "classes must be a list of road class names", id="class-factor-text"),
    pytest.param("POST", "/v1/traffic/speeds", csv(b"25239340,25239343,\xff\n"), 422,
                 "not UTF-8 text", id="csv-not-utf8"),
    pytest.param("PUT", "/v1/hospitals/{hid}/status", {"json": {"beds": {"Nope": 3}}}, 422,
                 "'Nope' is not one of AdultICU", id="status-unknown-bed-type"),
    # --- 2. OSM ids: integers, never truncated
    pytest.param("POST", "/v1/traffic/speeds", {"json": {"speeds": [[25239340.5, 25239343,
                                                                     20]]}}, 422,
                 "got a number with a fractional part", id="speeds-float-node-id"),
    pytest.param("POST", "/v1/traffic", batch(type="SegmentSpeeds",
                                              speeds=[[25239340.5, 25239343, 20]]), 422,
                 "from_osm_id must be an OSM node id (a positive integer), got 25239340.5",
                 id="batch-float-node-id"),
    pytest.param("POST", "/v1/traffic", batch(type="SegmentSpeeds",
                                              speeds=[[1e30, 25239343, 20]]), 422,
                 "a positive integer), got 1e+30", id="batch-huge-node-id"),
    pytest.param("POST", "/v1/traffic", batch(type="WaySpeeds", speeds={"4229652.5": 20}), 422,
                 "'4229652.5' is not an OSM way id", id="batch-float-way-id"),
    pytest.param("POST", "/v1/traffic/speeds", csv("25239340.5,25239343,20\n"), 422,
                 "OSM node ids must be integers", id="csv-float-node-id"),
    # --- 2. hospital status: {} is not a report (an explicit heartbeat is)
    pytest.param("PUT", "/v1/hospitals/{hid}/status", {"json": {}}, 422,
                 'empty status report', id="status-empty"),
    pytest.param("PUT", "/v1/hospitals/{hid}/status", {"json": {"beds": {}}}, 422,
                 'send {"heartbeat": true}', id="status-empty-beds"),
    pytest.param("PUT", "/v1/hospitals/{hid}/status", {"json": {"heartbeat": True}}, 200,
                 "status report: no change", id="status-heartbeat"),
    # --- 2. swapped latitude and longitude
    pytest.param("POST", "/v1/route", {"json": {"origin": SWAPPED, "destination": B}}, 422,
                 "did you swap latitude and longitude? latitude 43.738400, longitude 7.424600 "
                 "is on the map", id="route-swapped"),
    pytest.param("POST", "/v1/coverage", {"json": {"stations": [SWAPPED], "minutes": 3}}, 422,
                 "did you swap latitude and longitude?", id="coverage-swapped"),
    pytest.param("POST", "/v1/dispatch", {"json": {"incident": SWAPPED}}, 422,
                 "did you swap latitude and longitude?", id="dispatch-swapped"),
    pytest.param("POST", "/v1/dispatch", {"json": {"incident": A, "ambulances": {
        "smur-1": SWAPPED}}}, 422, "ambulance 'smur-1'", id="dispatch-ambulance-swapped"),
    pytest.param("POST", "/v1/route", {"json": {"origin": [7.44, 43.72], "destination": B}},
                 422, "off the road network", id="route-in-the-sea-no-swap-hint"),
    pytest.param("GET", f"/route/v1/driving/{osrm_coords(A, SWAPPED)}", {}, 400,
                 "coordinate 1: did you swap latitude and longitude?", id="osrm-route-swapped"),
    pytest.param("GET", f"/nearest/v1/driving/{osrm_coords(SWAPPED)}", {}, 400,
                 "did you swap latitude and longitude?", id="osrm-nearest-swapped"),
    # --- 2. OSRM limits: a JSON TooBig, counted before the coordinates are parsed
    pytest.param("GET", "/table/v1/driving/" + ";".join(["7,43"] * 10_000), {}, 400,
                 "Too many table coordinates", id="osrm-table-10000"),
    pytest.param("GET", "/table/v1/driving/" + ";".join(["7.4246,43.7384"] * 201), {}, 400,
                 "Too many table coordinates", id="osrm-table-201"),
    pytest.param("GET", "/route/v1/driving/" + ";".join(["7.4246,43.7384"] * 501), {}, 400,
                 "Number of entries 501 is higher than current maximum (500)",
                 id="osrm-route-501"),
    # --- 3. ambulance ids: a documented pattern and length, wherever an id enters
    pytest.param("POST", "/v1/dispatch", {"json": {"incident": A, "ambulance_id": "unit/7"}},
                 422, "ambulance id 'unit/7' is not valid: 1 to 64 characters",
                 id="dispatch-id-slash"),
    pytest.param("POST", "/v1/dispatch", {"json": {"incident": A, "ambulance_id": "x\u0007y"}},
                 422, "(with control characters) is not valid", id="dispatch-id-control"),
    pytest.param("POST", "/v1/dispatch", {"json": {"incident": A, "ambulance_id": "x" * 5000}},
                 422, "(5000 characters) is not valid", id="dispatch-id-5000"),
    pytest.param("POST", "/v1/dispatch", {"json": {"incident": A, "ambulances": {
        "unit 7": B}}}, 422, "ambulance id 'unit 7' is not valid", id="dispatch-fleet-id"),
    pytest.param("POST", "/v1/ambulances/unit%207/arrived", {}, 422,
                 "ambulance id 'unit 7' is not valid", id="arrived-id-space"),
    pytest.param("POST", "/v1/ambulances/.x/cancel", {}, 422,
                 "starting with a letter or digit", id="cancel-id-dot"),
    pytest.param("DELETE", "/v1/ambulances/" + "x" * 65, {}, 422, "(65 characters)",
                 id="clear-id-65"),
    pytest.param("DELETE", "/v1/ambulances/nope", {}, 404, "ambulance 'nope' is not en route",
                 id="clear-unknown"),
    pytest.param("POST", "/v1/ambulances/nope/arrived", {}, 404, "is not en route",
                 id="arrived-unknown"),
    # --- 2. scenario runs: an unknown variant is refused before the run starts (not 202)
    pytest.param("POST", "/v1/scenarios/runs", {"json": {"name": "monaco-surge",
                                                         "compare": ["fastest"]}}, 422,
                 "unknown variant word 'fastest'", id="scenario-unknown-variant"),
]


@pytest.fixture(scope="module")
def client(monaco, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    path = tmp_path_factory.mktemp("bad-input") / "state.jsonl"
    app = create_app(Settings(), graph=monaco, store=EmbeddedStore(path))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def hid(client: TestClient) -> str:
    return str(client.get("/v1/hospitals").json()[1]["id"])


def texts(body: Any) -> Iterator[str]:
    """Every string of a JSON answer (messages, notes, reasons)."""
    if isinstance(body, str):
        yield body
    elif isinstance(body, dict):
        for value in body.values():
            yield from texts(value)
    elif isinstance(body, list):
        for value in body:
            yield from texts(value)


@pytest.mark.parametrize(("method", "url", "request_kwargs", "status", "fragment"), CASES)
def test_bad_input(client: TestClient, hid: str, method: str, url: str,
                   request_kwargs: dict[str, Any], status: int, fragment: str) -> None:
    r = client.request(method, url.replace("{hid}", hid), **request_kwargs)
    assert r.status_code == status, r.text[:2000]
    assert r.headers["content-type"].startswith("application/json"), r.text[:200]
    words = "\n".join(texts(r.json()))
    assert fragment in words, words[:2000]
    leaked = INTERNALS.search(words)
    assert leaked is None, f"internal name {leaked.group(0)!r} in: {words[:2000]}"


# ----------------------------------------------------------------------------- OSRM URL limit
def test_osrm_url_limit_is_the_servers_and_answers_too_big() -> None:
    """uvicorn (httptools) refuses a request target longer than 65,535 bytes itself, with a
    plain-text 400 the application never sees; the grammar enforces the same limit, so a
    server that passes longer URLs gets OSRM's TooBig, and every shorter URL is parsed."""
    assert grammar.MAX_URL_BYTES == 65_535
    grammar.check_url_length(65_535)
    with pytest.raises(OsrmError) as info:
        grammar.check_url_length(65_536)
    assert info.value.code == "TooBig" and "65535 bytes" in info.value.message
    # the largest table uvicorn accepts is parsed and refused by count, as JSON
    coords = ";".join(["7,43"] * ((65_535 - 40) // 5))
    with pytest.raises(OsrmError) as info:
        grammar.parse_table("v1", "driving", coords, query="", options=[],
                            max_table_coordinates=200)
    assert info.value.code == "TooBig"


# ----------------------------------------------------------------------------- ambulances
def test_ambulances_en_route_expire_are_listed_and_cleared(client: TestClient) -> None:
    state = client.app.state.live  # type: ignore[attr-defined]
    board = state.board
    hospitals = [h for h in board.hospitals() if h.offers("AdultICU")]
    grace = board.policy.en_route_grace
    expired_before = sum(board.en_route_expired.values())
    # a registration whose ETA + grace is already over (logged 2 h ago, ETA 10 min)
    state.submit("ambulance.en_route", {"ambulance_id": "smur-old", "hospital_id":
                                        hospitals[0].id, "bed_type": "AdultICU",
                                        "eta_s": 600.0}, at=utcnow() - timedelta(hours=2))
    decision = client.post("/v1/dispatch", json={"incident": A, "ambulance_id": "smur-new",
                                                 "need": {"bed_type": "AdultICU"}})
    assert decision.status_code == 200, decision.text
    listed = client.get("/v1/ambulances").json()
    assert [a["ambulance_id"] for a in listed] == ["smur-new"]  # the old one expired
    assert sum(board.en_route_expired.values()) == expired_before + 1
    assert [e.ambulance_id for e in board.expired()][-1] == "smur-old"
    new = listed[0]
    assert new["expires_at"] > new["eta_at"]  # ISO 8601, same offset: ordered as text
    assert grace == timedelta(minutes=30)
    # an operator clears the live one; it is gone, the answer says so
    cleared = client.delete("/v1/ambulances/smur-new")
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["status"] == "cleared"
    assert client.get("/v1/ambulances").json() == []
    again = client.delete("/v1/ambulances/smur-new")
    assert again.status_code == 404 and "not en route" in again.json()["detail"]
    # a crew reporting late still has its patient admitted; a late cancel is explained
    arrived = client.post("/v1/ambulances/smur-old/arrived")
    assert arrived.status_code == 200, arrived.text
    state.submit("ambulance.en_route", {"ambulance_id": "smur-late", "hospital_id":
                                        hospitals[0].id, "bed_type": "AdultICU",
                                        "eta_s": 60.0}, at=utcnow() - timedelta(hours=1))
    late = client.post("/v1/ambulances/smur-late/cancel")
    assert late.status_code == 404
    assert "expired at" in late.json()["detail"] and "30 min grace" in late.json()["detail"]


def test_en_route_registrations_expire_after_a_restart(monaco, tmp_path: Path) -> None:
    """An en-route registration survives a restart (the log is replayed), and expires all the
    same: its deadline comes from the logged registration, not from the restart."""
    path = tmp_path / "state.jsonl"
    app = create_app(Settings(), graph=monaco, store=EmbeddedStore(path))
    with TestClient(app) as c:
        state = c.app.state.live  # type: ignore[attr-defined]
        hid = next(h.id for h in state.board.hospitals() if h.offers("AdultICU"))
        state.submit("ambulance.en_route", {"ambulance_id": "smur-9", "hospital_id": hid,
                                            "bed_type": "AdultICU", "eta_s": 300.0},
                     at=utcnow() - timedelta(minutes=50))
    app = create_app(Settings(), graph=monaco, store=EmbeddedStore(path))
    with TestClient(app) as c:
        assert c.get("/v1/ambulances").json() == []
        board = c.app.state.live.board  # type: ignore[attr-defined]
        assert board.en_route_expired[hid] == 1


# ----------------------------------------------------------------------------- command line
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--osm", "{dir}"], "is a directory: give a map file"),
        (["--graph", "{dir}"], "is a directory"),
        (["--snap-radius", "-5"], "must be a positive number of metres, got -5"),
        (["--snap-radius", "0"], "must be a positive number of metres, got 0"),
        (["--snap-radius", "nan"], "must be a positive number of metres"),
        (["--snap-radius", "abc"], "expected a number of metres"),
    ],
)
def test_cli_bad_input_exits_2_with_a_message(args: list[str], fragment: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "map.osm.pbf"  # a folder named like a map
    folder.mkdir()
    argv = ["route", "--from", "43.7384,7.4246", "--to", "43.7313,7.4197",
            *[a.replace("{dir}", str(folder)) for a in args]]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own exit for a bad option value
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT, err
    assert fragment in err
    assert "Traceback" not in err
