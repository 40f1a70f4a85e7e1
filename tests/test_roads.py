"""The road layer (engine/roads.py, GET /v1/roads), checked against the graph arrays."""

from __future__ import annotations

import gzip
import itertools
import math
from pathlib import Path

import pytest
import shapely
from fastapi.testclient import TestClient

from engine.extract.tags import HIGHWAY_CLASSES
from engine.roads import MIN_ZOOM, RoadLayerError, as_lists, build_index, roads_in_bbox

BOX = (7.41, 43.725, 7.435, 43.745)  # Monaco, west south east north


def segments_of_graph(graph, box, classes=None) -> dict[frozenset, str]:
    """Every undirected road segment (pair of consecutive geometry points) of an edge with
    both ends inside ``box``, with its class: straight from the CSR arrays."""
    west, south, east, north = box
    out: dict[frozenset, str] = {}
    for e in range(graph.n_edges):
        cls = HIGHWAY_CLASSES[graph.highway[e]]
        if cls == "barrier" or (classes is not None and cls not in classes):
            continue
        pts = graph.geom_point[graph.geom_offset[e]:graph.geom_offset[e + 1]]
        lon, lat = graph.point_lon[pts], graph.point_lat[pts]
        if not ((lon >= west) & (lon <= east) & (lat >= south) & (lat <= north)).all():
            continue
        for i in range(len(pts) - 1):
            a = (round(float(lon[i]), 7), round(float(lat[i]), 7))
            b = (round(float(lon[i + 1]), 7), round(float(lat[i + 1]), 7))
            if a != b:
                out[frozenset((a, b))] = cls
    return out


def segments_of_layer(geojson) -> dict[frozenset, str]:
    out: dict[frozenset, str] = {}
    for feature in as_lists(geojson)["features"]:
        for line in feature["geometry"]["coordinates"]:
            for a, b in itertools.pairwise(line):
                key = frozenset(((round(a[0], 7), round(a[1], 7)),
                                 (round(b[0], 7), round(b[1], 7))))
                out[key] = feature["properties"]["class"]
    return out


def all_graph_segments(graph) -> set[frozenset]:
    return set(segments_of_graph(graph, (-180, -90, 180, 90)))


def test_full_detail_layer_is_exactly_the_graphs_roads(monaco) -> None:
    layer = roads_in_bbox(monaco, BOX, 17).to_geojson()
    assert layer["type"] == "FeatureCollection" and layer["tolerance_m"] == 0
    assert "OpenStreetMap" in layer["attribution"]
    drawn = segments_of_layer(layer)
    inside = segments_of_graph(monaco, BOX)
    assert len(inside) > 500
    # every segment inside the box is drawn, with the class of its edge
    missing = [s for s in inside if s not in drawn]
    assert not missing, missing[:5]
    assert all(drawn[s] == cls for s, cls in inside.items())
    # and nothing is drawn that is not a segment of the graph
    assert set(drawn) <= all_graph_segments(monaco)
    # each chain is drawn once: no segment twice
    total = sum(len(line) - 1 for f in as_lists(layer)["features"]
                for line in f["geometry"]["coordinates"])
    assert total == len(drawn)


def test_chains_cover_every_road_piece_once(monaco) -> None:
    index = build_index(monaco)
    assert index.n_chains < index.pieces  # pieces were joined
    pieces = {}
    twin = monaco.twin
    for e in range(monaco.n_edges):
        if HIGHWAY_CLASSES[monaco.highway[e]] != "barrier" and (twin[e] < 0 or e < twin[e]):
            pieces[e] = len(monaco.edge_points(e)) - 1
    assert index.pieces == len(pieces)
    assert len(index.xy) - index.n_chains == sum(pieces.values())  # points = segments + chains


@pytest.mark.parametrize("zoom", [11, 13, 14, 15])
def test_simplified_layer_stays_within_tolerance_and_drops_minor_classes(monaco,
                                                                         zoom: int) -> None:
    layer = roads_in_bbox(monaco, BOX, zoom)
    geo = as_lists(layer.to_geojson())
    classes = {f["properties"]["class"] for f in geo["features"]}
    assert classes and all(MIN_ZOOM[c] <= zoom for c in classes)
    visible = {c for c, z in MIN_ZOOM.items() if z <= zoom}
    # every visible road inside the box is within the tolerance (+ rounding) of the drawing
    drawn = shapely.union_all([shapely.MultiLineString(f["geometry"]["coordinates"])
                               for f in geo["features"]])
    tolerance_deg = layer.tolerance_m / 111_320 + 10 ** -5
    pixel = 360 / (256 * 2 ** zoom) * math.cos(math.radians(43.73))
    checked = 0
    for seg, _cls in segments_of_graph(monaco, BOX, visible).items():
        line = shapely.LineString(list(seg))
        if line.length < pixel:  # parts of sub-pixel roads may be left out
            continue
        assert line.distance(drawn) <= tolerance_deg * 1.01, (seg, zoom)
        checked += 1
    assert checked > 50
    full = roads_in_bbox(monaco, BOX, 17)
    assert layer.points < full.points


def test_bad_boxes_and_zooms_are_refused(monaco) -> None:
    for box in [(7.5, 43.7, 7.4, 43.8), (7.4, 43.8, 7.5, 43.7), (7.4, 43.7, 200, 43.8),
                (float("nan"), 43.7, 7.5, 43.8)]:
        with pytest.raises(RoadLayerError):
            roads_in_bbox(monaco, box, 14)
    with pytest.raises(RoadLayerError, match="zoom"):
        roads_in_bbox(monaco, BOX, 40)
    empty = roads_in_bbox(monaco, (0.0, 0.0, 0.01, 0.01), 14)
    assert empty.roads == 0 and empty.features == []


def test_graph_without_classes_is_drawn_as_road(tmp_path: Path) -> None:
    """DIMACS graphs have no road class: every road is drawn as ``road``; a path of
    degree-2 nodes is one chain."""
    from engine.io import read_dimacs

    gr, co = tmp_path / "t.gr", tmp_path / "t.co"
    gr.write_text("p sp 4 6\na 1 2 10\na 2 1 10\na 2 3 10\na 3 2 10\na 3 4 10\na 4 3 10\n")
    co.write_text("p aux sp co 4\n" + "".join(f"v {i + 1} {7410000 + 1000 * i} {43730000 + 500 * i}\n"
                                               for i in range(4)))
    graph = read_dimacs(gr, co)
    layer = roads_in_bbox(graph, (7.4, 43.7, 7.5, 43.8), 16)
    assert [f["properties"]["class"] for f in layer.features] == ["road"]
    assert layer.roads == 1 and layer.points == 4


# ----------------------------------------------------------------------------- the endpoint
@pytest.fixture()
def client(monaco, tmp_path: Path):
    from api.app import create_app
    from api.settings import Settings
    from api.store import EmbeddedStore

    app = create_app(Settings(api_keys={"k": "dispatcher"}), graph=monaco,
                     store=EmbeddedStore(tmp_path / "state.jsonl"))
    with TestClient(app) as c:
        yield c


def test_roads_endpoint(client: TestClient, monaco) -> None:
    key = {"X-API-Key": "k"}
    bbox = ",".join(map(str, BOX))
    assert client.get("/v1/roads", params={"bbox": bbox, "zoom": 15}).status_code == 401
    r = client.get("/v1/roads", params={"bbox": bbox, "zoom": 17}, headers=key)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.headers.get("content-encoding") == "gzip"  # httpx asked for it and decoded it
    body = r.json()
    engine = as_lists(roads_in_bbox(monaco, BOX, 17).to_geojson())
    assert body["features"] == engine["features"] and body["roads"] == engine["roads"]
    raw = client.get("/v1/roads", params={"bbox": bbox, "zoom": 17},
                     headers={**key, "Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers
    assert len(gzip.compress(raw.content)) < len(raw.content)
    for params in ({"bbox": "1,2,3", "zoom": 14}, {"bbox": "a,b,c,d", "zoom": 14},
                   {"bbox": "7.5,43.7,7.4,43.8", "zoom": 14}, {"bbox": bbox, "zoom": 99},
                   {"bbox": bbox}):
        bad = client.get("/v1/roads", params=params, headers=key)
        assert bad.status_code == 422 and bad.json()["detail"], params


def test_service_description_and_pages(client: TestClient) -> None:
    info = client.get("/api").json()
    assert info["service"] == "gyrophare" and info["docs"] == "/docs"
    assert info["map"]["timezone"] == "Europe/Paris" and info["open_access"] is False
    assert "ODbL" in info["attribution"]
    for path, needle in (("/", "command centre"), ("/report", "Field report"),
                         ("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        page = client.get(path)
        assert page.status_code == 200 and needle in page.text, path
        assert "cdn." not in page.text and "fonts.googleapis" not in page.text, path
    assert "cdn.redoc.ly" not in client.get("/vendor/redoc.standalone.js").text
    for asset in ("/vendor/leaflet/leaflet-src.esm.js", "/vendor/leaflet/leaflet.css",
                  "/vendor/docs/swagger-ui-bundle.js", "/static/js/command.js",
                  "/static/js/report.js", "/static/css/app.css"):
        assert client.get(asset).status_code == 200, asset
    paths = client.get("/openapi.json").json()["paths"]
    assert "/v1/roads" in paths and "/api" in paths and "/" not in paths
