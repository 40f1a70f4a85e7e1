"""Leaflet Routing Machine, the real and unmodified client, against gyrophare's OSRM endpoint
in Chromium (issue 13): on a Monaco route that takes roundabouts, its itinerary words each
roundabout with its exit ("Enter the traffic circle and take the 2nd exit", its
osrm-text-instructions 0.13.2 English) and it lists and draws the alternative.

LRM 3.2.12's dist files are vendored in ``tests/fixtures/lrm/`` (version, tarball checksums and
licenses in its README; their sha256 are checked here); Leaflet is the ``xstatic-leaflet``
package the pages use. The test mounts both, and a page with a map, on its own copy of the app
(the service's pages never load LRM), serves it with uvicorn on the Monaco extract, and fails
on any request leaving that server. Debian's Chromium (/usr/bin/chromium, never a downloaded
browser) through Playwright: outside CI a missing Chromium skips with the reason, under
CI=true it fails. The screenshot goes to tests/artifacts/lrm-monaco.png (gitignored);
docs/img/lrm-monaco.png is a copy of it."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser_harness import Watch, chromium, free_port, serve

LRM_DIR = Path(__file__).parent / "fixtures" / "lrm"
ARTIFACTS = Path(__file__).parent / "artifacts"
KEY = "lrm-key"  # a dispatcher's key, sent by LRM as ?api_key= (its requestParameters)
#: Monte-Carlo to La Condamine ([lon, lat]), the README's pair: its best route takes the
#: Giratoire Aureglia and more roundabouts, and it has an alternative (checked below from the
#: answer LRM gets, so that a change of the engine fails here with the reason).
A = [7.4246, 43.7384]
B = [7.4197, 43.7313]
PAGE_URL, VENDOR_URL = "/lrm-test/", "/lrm-test/vendor"
MINIMIZED = re.compile(r"\bleaflet-routing-alt-minimized\b")

try:
    from playwright.sync_api import Browser, expect
except ImportError:  # pragma: no cover - the test extra installs it (else chromium() skips)
    pass


#: The test page: Leaflet (global build) and LRM as any site would include them, gyrophare's
#: road layer as the base map (there are no tiles offline), and LRM's own control with
#: ``L.Routing.osrmv1`` pointed at this server's ``/route/v1``. What LRM found is kept in
#: ``window.lrm``; ``body[data-ready]`` says the view and its roads are drawn.
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Leaflet Routing Machine on gyrophare</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{LEAFLET}/leaflet.css">
<link rel="stylesheet" href="{VENDOR}/leaflet-routing-machine.css">
<style>html, body, #map {{ height: 100%; margin: 0; }} #map {{ background: #f4f3ef; }}</style>
</head><body><div id="map"></div>
<script src="{LEAFLET}/leaflet.js"></script>
<script src="{VENDOR}/leaflet-routing-machine.min.js"></script>
<script>
const CONFIG = {CONFIG};
const map = L.map('map', {{ zoomSnap: 1 }});
map.attributionControl.setPrefix(false);
map.attributionControl.addAttribution(CONFIG.attribution);
map.createPane('roads').style.zIndex = 250;  // under LRM's lines (overlay pane, 400)
const [a, b] = CONFIG.waypoints.map(([lon, lat]) => L.latLng(lat, lon));
map.fitBounds(L.latLngBounds([a, b]), {{ padding: [40, 40], animate: false }});
window.lrm = {{ routes: null, errors: [] }};

async function drawRoads() {{
  const z = map.getZoom(), bb = map.getBounds().pad(0.1);
  const bbox = [bb.getWest(), bb.getSouth(), bb.getEast(), bb.getNorth()]
    .map((v) => v.toFixed(5)).join(',');
  const answer = await fetch(`/v1/roads?bbox=${{bbox}}&zoom=${{z}}`,
                             {{ headers: {{ 'X-API-Key': CONFIG.key }} }});
  L.geoJSON(await answer.json(), {{
    pane: 'roads', renderer: L.canvas({{ pane: 'roads' }}), interactive: false,
    style: (f) => ({{ color: '#9a9a9a', opacity: 0.9,
                      weight: /^(primary|secondary|trunk|motorway)/.test(f.properties.class)
                        ? 4 : 2 }}),
  }}).addTo(map);
}}

const control = L.Routing.control({{
  waypoints: [a, b],
  router: L.Routing.osrmv1({{ serviceUrl: CONFIG.serviceUrl,
                             requestParameters: {{ api_key: CONFIG.key }} }}),
  showAlternatives: true,
  fitSelectedRoutes: false,
  lineOptions: {{ styles: [{{ color: 'black', opacity: 0.15, weight: 9 }},
                          {{ color: 'white', opacity: 0.8, weight: 6 }},
                          {{ color: '#d62728', opacity: 1, weight: 3,
                             className: 'lrm-route-line' }}] }},
  altLineOptions: {{ styles: [{{ color: 'black', opacity: 0.15, weight: 9 }},
                             {{ color: 'white', opacity: 0.8, weight: 6 }},
                             {{ color: '#1f77b4', opacity: 0.9, weight: 3,
                                className: 'lrm-alt-line' }}] }},
}}).addTo(map);
control.on('routingerror', (e) => window.lrm.errors.push(String(e.error && e.error.message)));
control.on('routesfound', async (e) => {{
  window.lrm.routes = e.routes.map((r) => ({{
    name: r.name, coordinates: r.coordinates.length,
    instructions: r.instructions.map((i) => ({{ type: i.type, text: i.text, exit: i.exit }})),
  }}));
  const all = L.latLngBounds([]);
  e.routes.forEach((r) => all.extend(L.latLngBounds(r.coordinates)));
  // the whole of every route in view, clear of the itinerary panel on the right
  map.fitBounds(all, {{ paddingTopLeft: [30, 30], paddingBottomRight: [330, 30],
                       animate: false }});
  await drawRoads();
  document.body.dataset.ready = 'true';
}});
</script></body></html>
"""

#: Per itinerary shown (``.leaflet-routing-alt``, in LRM's order): whether it is minimized and
#: the text of each of its instructions with the name of its icon.
ITINERARIES_JS = """() => [...document.querySelectorAll('.leaflet-routing-alt')].map((alt) => ({
  minimized: alt.classList.contains('leaflet-routing-alt-minimized'),
  rows: [...alt.querySelectorAll('tr')].map((tr) => ({
    icon: (tr.querySelector('.leaflet-routing-icon') || { className: '' }).className,
    text: tr.cells.length > 1 ? tr.cells[1].textContent : '' })),
}))"""


# ----------------------------------------------------------------------------- helpers
def ordinal(n: int) -> str:
    """osrm-text-instructions' English ``ordinalize`` (1st to 10th; nothing beyond)."""
    assert 1 <= n <= 10, f"exit {n}: osrm-text-instructions words exits 1 to 10 only"
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(n, f"{n}th")


def roundabout_texts(route: dict[str, Any]) -> list[str]:
    """How LRM's itinerary must begin the instruction of each ``roundabout`` or ``rotary``
    step of an OSRM route (the ones it gives the enter-roundabout icon): osrm-text-instructions
    0.13.2's English, which names the exit by its ordinal."""
    texts = []
    for step in (s for leg in route["legs"] for s in leg["steps"]):
        maneuver = step["maneuver"]
        if maneuver["type"] not in ("roundabout", "rotary"):
            continue
        ring = step.get("rotary_name") if maneuver["type"] == "rotary" else None
        head = f"Enter {ring}" if ring else "Enter the traffic circle"
        exit_ = maneuver.get("exit")
        texts.append(f"{head} and take the {ordinal(exit_)} exit" if exit_ else head)
    return texts


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def server(monaco, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on Monaco with a dispatcher's key, plus (on this copy only) LRM's files and
    the test page, served by uvicorn in a thread."""
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    from api.app import create_app
    from api.pages import LEAFLET_URL
    from api.settings import Settings
    from api.store import EmbeddedStore
    from engine.attribution import ATTRIBUTION_HTML

    store = EmbeddedStore(tmp_path_factory.mktemp("lrm") / "state.jsonl")
    app = create_app(Settings(api_keys={KEY: "dispatcher"}), graph=monaco, store=store)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = {"waypoints": [A, B], "serviceUrl": f"{base}/route/v1", "key": KEY,
              "attribution": ATTRIBUTION_HTML}
    html = PAGE.format(LEAFLET=LEAFLET_URL, VENDOR=VENDOR_URL,
                       CONFIG=json.dumps(config).replace("</", "<\\/"))
    app.mount(VENDOR_URL, StaticFiles(directory=LRM_DIR), name="lrm-test")
    app.add_api_route(PAGE_URL, lambda: HTMLResponse(html), include_in_schema=False)
    with serve(app, port) as served:
        assert served == base
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


# ----------------------------------------------------------------------------- tests
def test_vendored_lrm_is_the_pinned_release() -> None:
    """The vendored files are byte for byte those of leaflet-routing-machine 3.2.12's npm
    tarball, as listed in ``tests/fixtures/lrm/SHA256SUMS`` (see its README)."""
    sums = (LRM_DIR / "SHA256SUMS").read_text(encoding="utf-8").split("\n")
    listed = dict(reversed(line.split("  ", 1)) for line in sums if line.strip())
    assert {"leaflet-routing-machine.min.js", "leaflet-routing-machine.css",
            "LICENSE.md"} <= set(listed)
    for name, digest in listed.items():
        got = hashlib.sha256((LRM_DIR / name).read_bytes()).hexdigest()
        assert got == digest, f"{name} differs from the pinned release (README.md there)"
    assert "3.2.12" in (LRM_DIR / "README.md").read_text(encoding="utf-8")


def test_leaflet_routing_machine_shows_roundabout_exits_and_alternatives(
        browser: Browser, server: str) -> None:
    context = browser.new_context(viewport={"width": 960, "height": 600}, timezone_id="UTC")
    try:
        page = context.new_page()
        watch = Watch(page, server)
        with page.expect_response(lambda r: "/route/v1/driving/" in r.url) as answer:
            page.goto(server + PAGE_URL)
        request = answer.value.request.url
        # LRM's own request (L.Routing.OSRMv1.buildRouteUrl), with the key it was given
        assert "alternatives=true" in request and "steps=true" in request, request
        assert f"api_key={KEY}" in request, request
        body = answer.value.json()
        assert answer.value.status == 200 and body["code"] == "Ok", body
        routes = body["routes"]
        expected = [roundabout_texts(r) for r in routes]
        assert len(routes) >= 2, "no alternative for this pair: choose another (see A, B)"
        assert any(step["maneuver"]["type"] == "roundabout" and step["maneuver"].get("exit")
                   for step in routes[0]["legs"][0]["steps"]), \
            "the best route takes no roundabout with an exit: choose another pair (A, B)"
        expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=15000)

        # what LRM made of the answer: every route, each with its instructions
        found = page.evaluate("window.lrm")
        assert not found["errors"], found["errors"]
        assert len(found["routes"]) == len(routes) >= 2

        # the itinerary: one container per route, the best open, the alternatives minimized;
        # each roundabout of each route is an "enter roundabout" instruction with its exit
        itineraries = page.evaluate(ITINERARIES_JS)
        assert len(itineraries) == len(routes)
        assert [i["minimized"] for i in itineraries] == [False] + [True] * (len(routes) - 1)
        for shown, want in zip(itineraries, expected, strict=True):
            rows = [r["text"] for r in shown["rows"]
                    if "leaflet-routing-icon-enter-roundabout" in r["icon"]]
            assert len(rows) == len(want), (rows, want)
            for text, start in zip(rows, want, strict=True):
                assert text.startswith(start), (text, start)
        best = page.locator(".leaflet-routing-alt").first
        expect(best).to_contain_text(expected[0][0])
        expect(best.locator("tr", has_text=expected[0][0]).first).to_be_visible()

        # the map: the best route and each alternative drawn, on different lines
        lines = page.locator("path.lrm-route-line")
        alts = page.locator("path.lrm-alt-line")
        expect(lines).to_have_count(1)
        expect(alts).to_have_count(len(routes) - 1)
        shapes = [lines.first.get_attribute("d")] + [a.get_attribute("d") for a in alts.all()]
        assert all(shapes) and len(set(shapes)) == len(shapes), "routes drawn on one line"

        ARTIFACTS.mkdir(exist_ok=True)
        page.wait_for_timeout(200)  # the road layer's canvas
        page.screenshot(path=str(ARTIFACTS / "lrm-monaco.png"))

        # picking the alternative in the itinerary makes it the route LRM shows
        second = page.locator(".leaflet-routing-alt").nth(1)
        second.locator("h2").click()
        expect(second).not_to_have_class(MINIMIZED, timeout=5000)
        expect(best).to_have_class(MINIMIZED)
        expect(lines).to_have_count(1)
        assert lines.first.get_attribute("d") == shapes[1]
        watch.clean()
    finally:
        context.close()
