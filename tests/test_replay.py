"""Scenario replay: validation with field paths, determinism, the what-if switches
(saturation-aware vs nearest, closures on/off, priority vs normal driving), Dask = serial,
the CLI outputs, and the Dijon scenario (validation, incidents inside the métropole's
communes, a clear and fast failure without network)."""

from __future__ import annotations

import copy
import json
import socket
import time
from pathlib import Path

import pytest
import shapely
import yaml

from conftest import shared_file
from engine.replay import ScenarioError, compare, generator, load_scenario, parse_variant, run
from engine.replay.cli import main as replay_main
from engine.replay.scenario import parse_duration

ROOT = Path(__file__).resolve().parent.parent
MONACO_YAML = ROOT / "data/scenarios/monaco-surge.yaml"
DIJON_YAML = ROOT / "data/scenarios/dijon-covid.yaml"
DIJON_CODES = ("21003 21105 21106 21166 21171 21192 21213 21223 21231 21263 21270 21278 "
               "21315 21355 21370 21390 21452 21473 21481 21485 21515 21540 21605 21617"
               ).split()
PG, CCM, MENTON = "osm-node-25237989", "osm-node-1794111144", "osm-node-2169430533"
MONTE_CARLO_BOX = {"type": "Polygon", "coordinates": [[[7.4235, 43.7385], [7.4300, 43.7385],
                                                       [7.4300, 43.7425], [7.4235, 43.7425],
                                                       [7.4235, 43.7385]]]}


@pytest.fixture(scope="module")
def monaco_raw(monaco_path: Path) -> dict:
    raw = yaml.safe_load(MONACO_YAML.read_text(encoding="utf-8"))
    raw["map"] = {"osm": str(monaco_path)}
    return raw


def minimal(monaco_path: Path, **over) -> dict:
    """A small valid scenario on Monaco, to break field by field."""
    raw = {
        "name": "mini", "map": {"osm": str(monaco_path)},
        "start": "2026-06-13T10:00:00+02:00", "duration": "3h", "seed": 1,
        "hospitals": {"from_graph": True, "include": [PG, CCM],
                      "overrides": {PG: {"beds": {"AdultICU": {"baseline": 20,
                                                               "available": 15}}},
                                    CCM: {"beds": {"AdultICU": {"baseline": 4,
                                                                "available": 1}}}}},
        "fleet": {"stations": [{"id": "mc", "location": {"lat": 43.7415, "lon": 7.4262},
                                "ambulances": 6}]},
        "timing": {"length_of_stay": "fixed", "length_of_stay_h": {"default": 1000}},
        "incidents": {"areas": [{"name": "Monte-Carlo", "weight": 1,
                                 "geometry": MONTE_CARLO_BOX}],
                      "streams": [{"name": "icu", "rate": {"per_hour": 6},
                                   "mix": [{"weight": 1, "need": {"bed_type": "AdultICU"},
                                            "severity": "critical"}]}]},
    }
    raw.update(over)
    return raw


# ---------------------------------------------------------------------------- validation
def test_validation_names_the_path_of_every_bad_field(monaco_path: Path) -> None:
    raw = minimal(monaco_path)
    raw["duration"] = "6"
    raw["fleet"]["stations"][0]["ambulances"] = 0
    raw["incidents"]["streams"][0]["mix"][0]["need"]["bed_type"] = "ICU"
    raw["timeline"] = [
        {"type": "incident", "at": "1h", "location": {"lat": 43.74, "lon": 7.42}},
        {"type": "incident", "at": "1h", "location": {"lat": 95, "lon": 7.42}},
        {"type": "closur", "at": "1h"},
        {"type": "closure", "at": "1h", "radius_m": 40, "colour": "red",
         "geometry": {"type": "Point", "coordinates": [7.42, 43.74]}},
        {"type": "surge", "at": "2026-06-13T11:00:00", "hospital": PG, "beds": {"AdultICU": 2}},
    ]
    with pytest.raises(ScenarioError) as info:
        load_scenario(raw)
    errors = info.value.errors
    text = str(info.value)
    expected = {
        "timeline[1].location": "latitude 95 is outside [-90, 90]",
        "timeline[2]": "unknown event type 'closur'",
        "timeline[3].colour": "unknown field",
        "timeline[4].at": "has no time zone",
        "fleet.stations[0].ambulances": "greater than or equal to 1",
        "incidents.streams[0].mix[0].need.bed_type": "'ICU' is not an EDXL-HAVE bed type",
        "duration": "has no unit",
    }
    for path, message in expected.items():
        assert any(e.startswith(f"{path}: ") and message in e for e in errors), (path, errors)
    assert "timeline[1].location: latitude 95 is outside [-90, 90]" in text
    assert not any(e.startswith("timeline[0]") for e in errors)


def test_semantic_errors_times_outside_and_windows(monaco_path: Path) -> None:
    raw = minimal(monaco_path, timeline=[
        {"type": "closure", "at": "4h", "geometry": {"type": "Point",
                                                      "coordinates": [7.42, 43.74]}},
        {"type": "traffic", "at": "1h", "until": "30min", "classes": ["primary"],
         "factor": 0.5},
        {"type": "hospital_status", "at": "1h", "hospital": PG},
    ])
    with pytest.raises(ScenarioError) as info:
        load_scenario(raw)
    errors = info.value.errors
    assert any(e.startswith("timeline[0].at: 4h is outside the replay") for e in errors)
    assert any(e.startswith("timeline[1].until: 30min is not after") for e in errors)
    assert any(e.startswith("timeline[2]: a hospital_status event needs") for e in errors)
    raw["timeline"] = [{"type": "traffic", "at": "1h", "factor": 0.5}]
    with pytest.raises(ScenarioError, match=r"timeline\[0\]: give a factor with an area"):
        load_scenario(raw)


def test_map_dependent_errors_name_the_event(monaco_path: Path) -> None:
    raw = minimal(monaco_path, timeline=[
        {"type": "surge", "at": "1h", "hospital": "nowhere", "beds": {"AdultICU": 2}},
        {"type": "closure", "at": "1h", "geometry": {"type": "Point",
                                                      "coordinates": [7.0, 43.0]}},
    ])
    raw["hospitals"]["include"] = [PG, "osm-node-0"]
    with pytest.raises(ScenarioError) as info:
        run(raw)
    errors = info.value.errors
    assert any(e.startswith("hospitals.include[1]: no hospital 'osm-node-0'") for e in errors)
    raw["hospitals"]["include"] = [PG, CCM]
    raw["timeline"] += [
        {"type": "hospital_status", "at": "1h", "hospital": PG, "beds": {"AdultICU": 99}},
        {"type": "surge", "at": "1h", "hospital": CCM, "beds": {"AdultICU": 10}},
        {"type": "hospital_status", "at": "2h", "hospital": CCM, "beds": {"AdultICU": 12}},
    ]
    with pytest.raises(ScenarioError) as info:
        run(raw)
    errors = info.value.errors
    assert any(e.startswith("timeline[2].beds.AdultICU: 99 available exceeds the baseline "
                            "(20)") for e in errors)
    assert not any(e.startswith("timeline[4]") for e in errors)  # 12 <= 4 + 10 after surge
    assert any(e.startswith("timeline[0].hospital: unknown hospital 'nowhere'") for e in errors)
    assert any(e.startswith("timeline[1] (closure): it touches no road") for e in errors)


def test_durations_and_variants() -> None:
    assert parse_duration("2h30m") == 9000 and parse_duration("1d6h") == 108000
    assert parse_duration("90min") == 5400 and parse_duration(0) == 0
    for bad in ("6", "h", 6, "2 hours"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    v = parse_variant("nearest+normal+closures-off")
    assert (v.destination, v.driving, v.closures) == ("nearest", "normal", False)
    assert v.name == "nearest+normal+closures-off"
    with pytest.raises(ScenarioError, match="unknown variant word"):
        parse_variant("fastest")


# ---------------------------------------------------------------------------- simulation
def test_same_seed_same_metrics_other_seed_differs(monaco_raw: dict) -> None:
    a = run(monaco_raw, seed=11)
    b = run(monaco_raw, seed=11)
    c = run(monaco_raw, seed=12)
    assert a.metrics == b.metrics and a.trips == b.trips
    assert a.metrics != c.metrics
    json.dumps(a.to_dict())  # JSON-serialisable as is
    m = a.metrics
    assert m["calls"] == m["completed"] + m["not_transported"] + m["unserved"] \
        + m["in_progress_at_end"]
    assert m["response_s"]["n"] > 10 and 0 < m["response_s"]["p50"] <= m["response_s"]["p90"]
    assert set(m["response_within_target"]) == {"8min", "15min"}
    # every completed trip went through the board: admissions match transports
    assert sum(h["admissions"] for h in m["hospitals"].values()) == m["completed"]
    # the plan blanc (surge at 4h) shows in the capacity timeline of the ICU
    icu = a.to_dict()["occupancy"][f"{PG}|AdultICU"]
    assert icu[0][2] == 10 and icu[-1][2] == 14


def test_saturation_aware_lowers_the_peak_of_the_nearest_hospital(monaco_path: Path) -> None:
    raw = minimal(monaco_path)
    cmp = compare(raw, ["nearest", "saturation_aware"])
    near, sat = (r.metrics for r in cmp.results)
    assert near["calls"] == sat["calls"] >= 10  # the same calls for both policies
    peak_near = near["hospitals"][CCM]["beds"]["AdultICU"]["peak_occupancy"]
    peak_sat = sat["hospitals"][CCM]["beds"]["AdultICU"]["peak_occupancy"]
    assert peak_near > 2.0  # everyone went to the nearest, far beyond its 4 beds
    assert peak_sat < peak_near
    assert near["diversions"]["count"] == 0 and sat["diversions"]["count"] > 0
    assert sat["hospitals"][PG]["transports"] > near["hospitals"][PG]["transports"]
    assert sat["hospitals"][CCM]["time_at_level_s"]["AdultICU"]["saturated"] > 0


def _closure_scenario(monaco_path: Path) -> dict:
    """One crew, calls two hours apart (no queue), all routes across the closed bridge."""
    raw = minimal(monaco_path, duration="8h")
    raw["hospitals"]["include"] = [PG]
    raw["hospitals"]["overrides"] = {PG: {"beds": {"MedicalSurgical": {"baseline": 50,
                                                                       "available": 40}}}}
    raw["fleet"]["stations"] = [{"id": "pg", "location": {"lat": 43.7306, "lon": 7.4122},
                                 "ambulances": 1}]
    raw["incidents"] = {"streams": []}
    raw["timeline"] = [
        {"type": "incident", "at": f"{h}h", "location": {"lat": 43.7400, "lon": 7.4270},
         "need": {"bed_type": "MedicalSurgical"}} for h in (1, 3, 5)]
    raw["timeline"].append({"type": "closure", "at": "30min", "until": "7h", "radius_m": 40,
                            "geometry": {"type": "Point", "coordinates": [7.4194, 43.73842]}})
    return raw


def test_closures_lengthen_travel(monaco_path: Path) -> None:
    cmp = compare(_closure_scenario(monaco_path), ["closures-on", "closures-off"])
    on, off = cmp.results
    assert on.variant.closures and not off.variant.closures
    assert [t["id"] for t in on.trips] == [t["id"] for t in off.trips]
    for a, b in zip(on.trips, off.trips):
        assert a["status"] == b["status"] == "completed"
        travel_on = a["to_scene_s"] + a["transport_s"]
        travel_off = b["to_scene_s"] + b["transport_s"]
        assert travel_on > travel_off
        # the per-trip counterfactual (routes without the closures) equals the paired run
        assert a["closure_extra_s"] == pytest.approx(travel_on - travel_off, abs=0.01)
        assert b["closure_extra_s"] == 0.0
    assert on.metrics["closures"]["trips_affected"] == 3
    assert on.metrics["response_s"]["mean"] > off.metrics["response_s"]["mean"]
    assert on.metrics["transport_s"]["mean"] > off.metrics["transport_s"]["mean"]
    assert on.to_dict()["geo"]["closures"][0]["edges"]  # closed roads kept for the map


def test_priority_driving_shortens_response_times(monaco_raw: dict) -> None:
    cmp = compare(monaco_raw, ["priority", "normal"])
    pri, nor = (r.metrics for r in cmp.results)
    assert pri["calls"] == nor["calls"]
    assert pri["response_s"]["mean"] < nor["response_s"]["mean"]
    assert pri["response_s"]["p50"] < nor["response_s"]["p50"]
    assert pri["transport_s"]["mean"] < nor["transport_s"]["mean"]


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_dask_gives_the_serial_metrics(monaco_raw: dict, dask_client) -> None:
    variants = ["nearest", "saturation_aware"]
    serial = compare(monaco_raw, variants, seeds=2)
    parallel = compare(monaco_raw, variants, seeds=2, client=dask_client)
    assert [(r.variant.name, r.seed) for r in parallel.results] == \
        [(r.variant.name, r.seed) for r in serial.results]
    for a, b in zip(serial.results, parallel.results):
        assert a.metrics == b.metrics
        assert a.trips == b.trips
    assert parallel.summary == serial.summary
    assert parallel.info["executor"] == "dask"
    # an existing scheduler, by address (--scheduler ADDRESS)
    remote = compare(monaco_raw, ["nearest"], seeds=1,
                     scheduler=dask_client.scheduler.address)
    assert remote.results[0].metrics == serial.results[0].metrics


# ---------------------------------------------------------------------------- CLI
def test_cli_writes_json_csv_and_a_self_contained_report(monaco_path: Path, tmp_path: Path,
                                                          capsys) -> None:
    out = tmp_path / "out"
    code = replay_main(["replay", str(MONACO_YAML), "--osm", str(monaco_path), "--compare",
                        "nearest", "saturation_aware", "--out", str(out), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    for name in ("metrics.json", "metrics.csv", "trips.csv", "occupancy.csv", "result.json",
                 "report.html"):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["summary"]) == {"nearest", "saturation_aware"}
    csv_lines = (out / "metrics.csv").read_text().splitlines()
    assert csv_lines[0].startswith("variant,seed,calls") and len(csv_lines) == 1 + 2 + 2
    html = (out / "report.html").read_text()
    assert html.count("src='data:image/png;base64,") >= 4
    assert "<img" in html and "http" not in html.split("<body>")[1].split("<footer>")[0]
    assert "© OpenStreetMap contributors, ODbL" in html


def test_cli_bad_scenario_exits_2_with_the_path(tmp_path: Path, monaco_path: Path,
                                                capsys) -> None:
    raw = minimal(monaco_path)
    raw["timeline"] = [{"type": "incident", "at": "1h",
                        "location": {"lat": 95, "lon": 7.42}}]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(raw))
    code = replay_main(["replay", str(bad), "--out", str(tmp_path / "o"), "--no-progress"])
    assert code == 2
    assert "timeline[0].location: latitude 95 is outside [-90, 90]" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------- Dijon
def test_dijon_scenario_validates_and_draws_calls_inside_the_metropole() -> None:
    boundaries = shared_file("boundaries/communes-21-cote-d-or.geojson")
    sc = load_scenario(DIJON_YAML)
    assert sc.model.hospitals.file == "hospitals/dijon-metropole.json"
    assert sorted(a.commune for a in sc.model.incidents.areas) == sorted(DIJON_CODES)
    assert sc.duration_s == 5 * 86400
    calls = generator.incidents(sc, sc.model.seed)
    assert 300 < len(calls) < 600
    assert calls == generator.incidents(sc, sc.model.seed)
    features = json.loads(boundaries.read_text(encoding="utf-8"))["features"]
    metropole = shapely.union_all([shapely.geometry.shape(f["geometry"]) for f in features
                                   if f["properties"]["code"] in DIJON_CODES])
    lon = [c.lon for c in calls]
    lat = [c.lat for c in calls]
    assert shapely.contains_xy(metropole, lon, lat).all()
    # Dijon itself gets most calls (population weights), and ICU demand rises day by day
    assert sum(c.area == "Dijon" for c in calls) > len(calls) / 2
    icu = [sum(1 for c in calls if c.bed_type == "AdultICU" and d * 86400 <= c.t
               < (d + 1) * 86400) for d in range(5)]
    assert icu[-1] > icu[0]


def _network_reachable() -> bool:
    try:
        socket.getaddrinfo("overpass-api.de", 443)
    except OSError:
        return False
    return True


def test_dijon_without_network_fails_fast_and_clearly(tmp_path: Path, capsys) -> None:
    if _network_reachable():
        pytest.skip("network reachable here: the offline failure cannot be shown")
    t0 = time.perf_counter()
    code = replay_main(["replay", str(DIJON_YAML), "--out", str(tmp_path / "o"),
                        "--no-progress"])
    elapsed = time.perf_counter() - t0
    err = capsys.readouterr().err
    assert code == 2
    assert elapsed < 15
    assert "dijon-covid" in err and "needs the road network" in err and "--osm FILE" in err


def test_generator_rate_model_is_piecewise_poisson(monaco_path: Path) -> None:
    raw = minimal(monaco_path, duration="2d")
    raw["incidents"]["streams"] = [
        {"name": "steps", "rate": {"piecewise": [{"from": "0h", "per_hour": 0},
                                                 {"from": "1d", "per_hour": 30}]},
         "mix": [{"weight": 1}]},
        {"name": "daily", "rate": {"daily": {"per_day": 240, "hourly": [0] * 12 + [1] * 12}},
         "mix": [{"weight": 1}]},
    ]
    sc = load_scenario(raw)
    assert generator.expected_calls(sc) == pytest.approx(30 * 24 + 2 * 240)
    calls = generator.generate(sc, 3)
    steps = [c.t for c in calls if c.stream == "steps"]
    assert min(steps) >= 86400 and abs(len(steps) - 720) < 4 * 720 ** 0.5
    # the daily profile counts hours in the start's own time zone (+02:00 here)
    hours = {int((c.t / 3600 + 10) % 24) for c in calls if c.stream == "daily"}
    assert hours <= set(range(12, 24))
    assert all(shapely.contains_xy(shapely.geometry.shape(MONTE_CARLO_BOX), c.lon, c.lat)
               for c in calls)
    again = copy.deepcopy(raw)
    assert generator.generate(load_scenario(again), 3) == calls
