"""Road layer (base map of the pages) and page start-up.

Usage::

    python benchmarks/bench_roads.py --out benchmarks/results/roads.md
    python benchmarks/bench_roads.py --graph ../shared/data/dimacs/USA-road-t.NY.gr.gz \\
        --monaco ../shared/data/osm/monaco_osrm-bindings.osm.pbf --no-browser

Measures:

* the one-off chain index of the graph (``engine.roads.build_index``);
* ``GET /v1/roads`` server time (the handler's work: selection, simplification, JSON
  serialisation) and body size, raw and gzip, for a 1280 x 800 px viewport at zoom 12-15 over
  five centres of the DIMACS NY graph (first, median and max of 5 repeats per view);
* the same round trip through the app (``TestClient``, gzip), for reference;
* the command-centre page on Monaco in Chromium from a cold cache (a fresh browser context
  each time): navigation start to hospitals drawn, road layer drawn, the page marked ready.
"""

from __future__ import annotations

import argparse
import gzip
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import emit
from engine.io import load_graph
from engine.roads import build_index, road_index

NY_CENTRES = {"Midtown Manhattan": (-73.985, 40.755), "Downtown Brooklyn": (-73.99, 40.69),
              "Queens (Jamaica)": (-73.80, 40.70), "Newark": (-74.17, 40.735),
              "Staten Island": (-74.15, 40.58)}


def viewport(lon: float, lat: float, zoom: int, width: int = 1280,
             height: int = 800) -> tuple[float, float, float, float]:
    deg = 360 / (256 * 2 ** zoom)
    dlon, dlat = width * deg / 2, height * deg * math.cos(math.radians(lat)) / 2
    return (lon - dlon, lat - dlat, lon + dlon, lat + dlat)


def road_rows(graph_path: str, repeats: int) -> list[str]:
    t = time.perf_counter()
    graph = load_graph(graph_path)
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    build_index(graph)
    index_s = time.perf_counter() - t
    index = road_index(graph)
    lines = [f"Graph: `{Path(graph_path).name}` ({graph.n_nodes:,} nodes, {graph.n_edges:,} "
             f"edges; load {load_s:.1f} s). Chain index: {index.pieces:,} road pieces -> "
             f"{index.n_chains:,} chains, {len(index.xy):,} points, built in "
             f"{1000 * index_s:.0f} ms (once per graph).", "",
             "| zoom | view | roads | points | left out | body | gzip | "
             "server time first / median / max (ms) |", "|---|---|---|---|---|---|---|---|"]
    for zoom in (12, 13, 14, 15):
        for name, (lon, lat) in NY_CENTRES.items():
            box = viewport(lon, lat, zoom)
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                layer = index.query(*box, zoom=zoom)
                body = orjson.dumps(layer.to_geojson(), option=orjson.OPT_SERIALIZE_NUMPY)
                times.append(1000 * (time.perf_counter() - t))
            packed = len(gzip.compress(body, compresslevel=4))
            lines.append(f"| {zoom} | {name} | {layer.roads:,} | {layer.points:,} | "
                         f"{layer.dropped:,} | {len(body) / 1e6:.2f} MB | "
                         f"{packed / 1e6:.2f} MB | {times[0]:.1f} / "
                         f"{statistics.median(times):.1f} / {max(times):.1f} |")
    return lines


def http_rows(graph_path: str, repeats: int) -> list[str]:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import Settings
    from api.store import EmbeddedStore

    graph = load_graph(graph_path)
    store = EmbeddedStore(Path(tempfile.mkdtemp()) / "state.jsonl")
    lines = ["", "Through the app (TestClient, gzip; includes the HTTP stack and the "
             "client's decoding):", "", "| zoom | view | round trip median (ms) |",
             "|---|---|---|"]
    with TestClient(create_app(Settings(), graph=graph, store=store, hospitals=[])) as client:
        for zoom in (13,):
            for name, (lon, lat) in list(NY_CENTRES.items())[:2]:
                bbox = ",".join(f"{v:.5f}" for v in viewport(lon, lat, zoom))
                times = []
                for _ in range(repeats):
                    t = time.perf_counter()
                    r = client.get("/v1/roads", params={"bbox": bbox, "zoom": zoom})
                    assert r.status_code == 200, r.text
                    times.append(1000 * (time.perf_counter() - t))
                lines.append(f"| {zoom} | {name} | {statistics.median(times):.0f} |")
    return lines


def page_rows(monaco_path: str, runs: int) -> list[str]:
    import threading

    import uvicorn
    from playwright.sync_api import sync_playwright

    from api.app import create_app
    from api.settings import Settings
    from api.store import EmbeddedStore

    graph = load_graph(monaco_path)
    store = EmbeddedStore(Path(tempfile.mkdtemp()) / "state.jsonl")
    app = create_app(Settings(api_keys={"bench": "command_centre"}), graph=graph, store=store)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=8765, log_level="warning",
                                           timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    rows = {"hospitals": [], "roads": [], "ready": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        for _ in range(runs):
            ctx = browser.new_context(viewport={"width": 1280, "height": 800})  # cold cache
            ctx.add_init_script("sessionStorage.setItem('gyrophare.apiKey', 'bench')")
            page = ctx.new_page()
            t = time.perf_counter()
            page.goto("http://127.0.0.1:8765/")
            page.wait_for_selector("#map[data-roads]")
            rows["roads"].append(time.perf_counter() - t)
            page.wait_for_selector(".hosp")
            rows["hospitals"].append(time.perf_counter() - t)
            page.wait_for_selector("body[data-ready=true]")
            rows["ready"].append(time.perf_counter() - t)
            ctx.close()
        browser.close()
    server.should_exit = True
    thread.join(5)
    out = ["", f"Command-centre page on Monaco, Chromium, cold cache ({runs} fresh contexts; "
           "from navigation start):", "", "| milestone | median (ms) | max (ms) |",
           "|---|---|---|"]
    for name, label in (("roads", "road layer drawn"), ("hospitals", "hospital markers drawn"),
                        ("ready", "page ready (traffic, alerts stream)")):
        out.append(f"| {label} | {1000 * statistics.median(rows[name]):.0f} | "
                   f"{1000 * max(rows[name]):.0f} |")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", default="../shared/data/dimacs/USA-road-t.NY.gr.gz")
    parser.add_argument("--monaco", default="../shared/data/osm/monaco_osrm-bindings.osm.pbf")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--out")
    args = parser.parse_args()
    lines = ["# Road layer and page start-up", "",
             "`python benchmarks/bench_roads.py --out benchmarks/results/roads.md`. Budget "
             "(#12): road layer <= 200 ms server time and <= 1 MB at city zoom (13) on the "
             "DIMACS NY graph; page interactive within 2 s on Monaco from a cold cache.", ""]
    lines += road_rows(args.graph, args.repeats)
    lines += http_rows(args.graph, args.repeats)
    if not args.no_browser:
        lines += page_rows(args.monaco, args.repeats)
    emit(lines, args.out)


if __name__ == "__main__":
    main()
