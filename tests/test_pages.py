"""The pages in a real browser: Playwright driving Debian's Chromium (/usr/bin/chromium, never a
downloaded browser) against the service on the Monaco extract, served by uvicorn in a thread.

Outside CI a missing Chromium or Playwright skips these tests with the reason; under CI=true
they fail. Screenshots go to tests/artifacts/ (gitignored); the README's are copies of
command-centre.png, field-report.png and dispatch.png from there (docs/img/)."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from browser_harness import Watch, chromium, free_port, serve

ARTIFACTS = Path(__file__).parent / "artifacts"
KEYS = {"cc-key": "command_centre", "planner-key": "planner", "disp-key": "dispatcher"}
A = [7.4246, 43.7384]  # [lon, lat]: Monte-Carlo
B = [7.4197, 43.7313]  # La Condamine
PAGES = Path(__file__).resolve().parent.parent / "api"
#: Non-ASCII characters the pages may show besides letters of the Latin script (names, time
#: zones): ones every default font has. Emoji and rarer symbols render as empty boxes where
#: no emoji font is installed (a wall screen, Debian's Chromium): the pages use the inlined
#: SVG icons instead.
ALLOWED_GLYPHS = frozenset("✓▲■✕●•·–—…“”‘’→±×°−©«»\u00a0\u202f\u2009")
#: Every non-ASCII character of the page's visible text (and title) outside the Latin script.
VISIBLE_SYMBOLS_JS = """() => [...new Set([...(document.title + document.body.innerText)]
    .filter((c) => c > '\\x7f' && !/\\p{Script=Latin}/u.test(c)))]"""


try:
    from playwright.sync_api import Browser, BrowserContext, Page, expect
except ImportError:  # pragma: no cover - the test extra installs it (else chromium() skips)
    pass


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def server(monaco, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from api.app import create_app
    from api.settings import Settings
    from api.store import EmbeddedStore

    store = EmbeddedStore(tmp_path_factory.mktemp("pages") / "state.jsonl")
    app = create_app(Settings(api_keys=KEYS), graph=monaco, store=store)
    with serve(app, free_port()) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture()
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, timezone_id="UTC")
    yield ctx
    ctx.close()


def shot(page: Page, name: str, **kw: Any) -> None:
    """A screenshot once the map has settled: no zoom animation, the road layer of the view."""
    if page.evaluate("Boolean(window.gyrophare && window.gyrophare.map)"):
        page.wait_for_function("""() => { const m = window.gyrophare.map;
          return !m._animatingZoom && document.getElementById('map').dataset.roadsZoom
            === String(Math.round(m.getZoom())); }""")
        page.wait_for_timeout(300)  # the canvas redraw
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), **kw)


def open_command_centre(page: Page, server: str, key: str = "cc-key") -> Watch:
    watch = Watch(page, server)
    page.goto(server + "/")
    page.locator("#key-input").fill(key)
    page.locator("#key-save").click()
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=15000)
    return watch


def api(server: str, method: str, path: str, key: str = "cc-key", **kw: Any) -> httpx.Response:
    return httpx.request(method, server + path, headers={"X-API-Key": key}, timeout=30, **kw)


def metres(a: list[float], b: list[float]) -> float:
    dx = (a[0] - b[0]) * 111_320 * math.cos(math.radians(a[1]))
    return math.hypot(dx, (a[1] - b[1]) * 111_320)


def assert_known_glyphs(page: Page) -> None:
    """What the page shows has no emoji or other character a default font may lack."""
    shown = page.evaluate(VISIBLE_SYMBOLS_JS)
    assert not set(shown) - ALLOWED_GLYPHS, sorted(set(shown) - ALLOWED_GLYPHS)


def assert_fits_width(page: Page, width: int) -> None:
    """No horizontal scrolling: the page (and a mobile browser's layout viewport, which grows
    when content overflows) is exactly as wide as the screen."""
    sizes = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth, "
                          "document.body.scrollWidth]")
    assert sizes[1] == width and sizes[0] <= width and sizes[2] <= width, (width, sizes)


#: Rectangles (x0, y0, x1, y1) of the hospital labels shown and of every hospital dot.
LABELS_JS = """() => {
  const rect = (e) => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  const boxes = [...document.querySelectorAll('.hosp')];
  return {
    labels: boxes.filter((b) => !b.classList.contains('collapsed'))
      .map((b) => ({ id: b.dataset.hospital, rect: rect(b.querySelector('.hosp-label')) })),
    dots: boxes.map((b) => ({ id: b.dataset.hospital, rect: rect(b.querySelector('.hosp-dot')) })),
    map: rect(document.getElementById('map')),
  };
}"""


def hospital_labels(page: Page) -> dict[str, Any]:
    """The labels shown, after checking that none covers another label or any dot."""
    got = page.evaluate(LABELS_JS)

    def overlap(a: list[float], b: list[float]) -> bool:
        return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]

    labels = got["labels"]
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            assert not overlap(a["rect"], b["rect"]), ("labels overlap", a, b)
        for dot in got["dots"]:
            assert not overlap(a["rect"], dot["rect"]), ("label covers a dot", a, dot)
    return got


# ----------------------------------------------------------------------------- tests
def test_command_centre_loads_offline_with_road_layer(context: BrowserContext,
                                                      server: str) -> None:
    page = context.new_page()
    watch = open_command_centre(page, server)
    roads = int(page.locator("#map").get_attribute("data-roads") or 0)
    assert roads > 100  # the base layer comes from the road graph
    markers = page.locator(".hosp")
    expect(markers).to_have_count(5)
    expect(markers.first).to_contain_text("NORMAL")  # level in words, not colour alone
    expect(page.locator("#weights-version")).to_have_text("0")
    expect(page.locator("#state")).to_contain_text("live")
    expect(page.locator("#clock")).to_contain_text("Europe/Paris")
    expect(page.locator(".leaflet-control-attribution")).to_contain_text(
        "OpenStreetMap contributors, ODbL")
    expect(page.locator("#stream-state")).to_have_text("live")
    expect(page.locator("#role-name")).to_have_text("command_centre")
    assert_known_glyphs(page)
    # the README's picture: hospitals and a route (across the map, to the hospital farthest
    # from A), the whole of both in view
    hospitals = api(server, "GET", "/v1/hospitals").json()
    far = max(hospitals, key=lambda h: metres([h["lon"], h["lat"]], A))
    page.locator("#tab-route").click()
    page.locator("#route-origin").fill(f"{A[1]}, {A[0]}")
    page.locator("#route-destination").fill(f"{far['lat']}, {far['lon']}")
    page.locator("#route-submit").click()
    expect(page.locator("#eta-priority")).to_contain_text("min", timeout=10000)
    points = [[h["lon"], h["lat"]] for h in hospitals]
    points += page.evaluate("window.gyrophare.lastRoute.geometry.coordinates")
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    page.wait_for_function("!window.gyrophare.map._animatingZoom")  # Leaflet ignores a new
    placed = page.evaluate("window.gyrophare.placements")  # view while it animates a zoom
    page.evaluate("(b) => window.gyrophare.map.fitBounds(b, { padding: [30, 30], "
                  "animate: false })", [[min(lats), min(lons)], [max(lats), max(lons)]])
    page.wait_for_function(f"window.gyrophare.placements > {placed}")  # moved: labels placed
    page.wait_for_timeout(600)  # the road layer of the new view
    hospital_labels(page)
    assert_known_glyphs(page)
    shot(page, "command-centre.png")
    watch.clean()


def test_docs_and_redoc_render_offline(context: BrowserContext, server: str) -> None:
    page = context.new_page()
    watch = Watch(page, server)
    page.goto(server + "/docs")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible(timeout=15000)
    expect(page.locator(".swagger-ui .title")).to_contain_text("gyrophare")
    shot(page, "docs.png")
    page.goto(server + "/redoc")
    expect(page.get_by_text("/v1/route").first).to_be_attached(timeout=15000)
    watch.clean()


def test_status_update_changes_marker_label_and_alert_within_2s(context: BrowserContext,
                                                                 server: str) -> None:
    page = context.new_page()
    watch = open_command_centre(page, server)
    expect(page.locator("#stream-state")).to_have_text("live")
    hospital = api(server, "GET", "/v1/hospitals").json()[2]
    marker = page.locator(f'.hosp[data-hospital="{hospital["id"]}"]')
    expect(marker).not_to_contain_text("SATURATED")
    t0 = time.monotonic()
    r = api(server, "PUT", f"/v1/hospitals/{hospital['id']}/status",
            json={"beds": {"AdultICU": 0, "MedicalSurgical": 1}})
    assert r.status_code == 200, r.text
    expect(marker).to_contain_text("SATURATED", timeout=2000)
    banner = page.locator("#alert-banner")
    expect(banner).to_be_visible(timeout=2000)
    expect(banner).to_contain_text(hospital["name"])
    assert time.monotonic() - t0 < 2.5
    page.locator("#banner-open").click()
    item = page.locator("#alert-list li", has_text=hospital["name"]).first
    expect(item).to_contain_text("SATURATED")
    cap = item.locator("a.cap-link")
    assert cap.get_attribute("href", timeout=2000).endswith(".cap")
    cap.click()
    expect(page.locator("#doc-body")).to_contain_text("urn:oasis:names:tc:emergency:cap:1.2")
    page.keyboard.press("Escape")
    # the detail: beds per type with units, and the status form a command centre may use
    page.locator("#tab-hospitals").click()
    page.locator(f'#hospital-list button[data-hospital="{hospital["id"]}"]').click()
    detail = page.locator("#hospital-detail")
    expect(detail).to_contain_text("0 of 8 beds free")
    detail.locator('input[data-bed="AdultICU"]').fill("8")
    detail.locator('input[data-bed="MedicalSurgical"]').fill("50")
    detail.get_by_role("button", name="Send status").click()
    expect(marker).to_contain_text("NORMAL", timeout=3000)
    shot(page, "alert.png")
    watch.clean()


def test_closure_drawn_on_the_route_makes_the_next_route_avoid_it(context: BrowserContext,
                                                                  server: str) -> None:
    page = context.new_page()
    watch = open_command_centre(page, server)
    page.locator("#tab-route").click()
    page.locator("#route-origin").fill(f"{A[1]}, {A[0]}")
    page.locator("#route-destination").fill(f"{B[1]}, {B[0]}")
    page.locator("#route-submit").click()
    expect(page.locator("#eta-priority")).to_contain_text("min", timeout=10000)
    expect(page.locator("#eta-normal")).to_contain_text("s")
    expect(page.locator("#route-distance")).to_contain_text("km")
    first = page.evaluate("window.gyrophare.lastRoute")
    coords = first["geometry"]["coordinates"]
    target = coords[len(coords) // 2]
    # draw the closure: a point on the route's path, 25 m around it
    page.locator("#tab-traffic").click()
    page.locator("#closure-shape").select_option("Point")
    page.locator("#closure-radius").fill("25")
    page.locator("#closure-note").fill("test closure")
    page.locator("#closure-draw").click()
    xy = page.evaluate("([lon, lat]) => { const p = window.gyrophare.map"
                       ".latLngToContainerPoint([lat, lon]); return [p.x, p.y]; }", target)
    page.locator("#map").click(position={"x": xy[0], "y": xy[1]})
    page.locator("#closure-submit").click()
    entry = page.locator('#traffic-list li[data-type="Closure"]', has_text="test closure")
    expect(entry).to_be_visible(timeout=5000)
    expect(page.locator("#weights-version")).not_to_have_text("0", timeout=5000)
    drawn = [e for e in api(server, "GET", "/v1/traffic").json()["entries"]
             if e["note"] == "test closure"]
    assert drawn and drawn[0]["edges"] > 0 and drawn[0]["expires_at"]
    assert metres(drawn[0]["geometry"]["coordinates"], target) < 5  # where it was drawn
    # the next route in the page goes around it
    page.locator("#tab-route").click()
    page.locator("#route-submit").click()
    expect(page.locator("#route-result")).not_to_have_attribute(
        "data-version", str(first["weights_version"]), timeout=10000)
    second = page.evaluate("window.gyrophare.lastRoute")
    assert second["status"] == "ok"
    assert second["geometry"]["coordinates"] != coords
    assert min(metres(c, target) for c in second["geometry"]["coordinates"]) > 20
    assert_known_glyphs(page)
    shot(page, "closure-route.png")
    # remove it again
    page.locator("#tab-traffic").click()
    entry.get_by_role("button", name="Remove").click()
    expect(entry).to_have_count(0, timeout=5000)
    watch.clean()


def test_field_report_from_a_phone_appears_on_the_command_centre(
        browser: Browser, context: BrowserContext, server: str) -> None:
    phone = browser.new_context(viewport={"width": 375, "height": 812}, is_mobile=True,
                                has_touch=True, geolocation={"latitude": B[1], "longitude": B[0]},
                                permissions=["geolocation"])
    try:
        page = phone.new_page()
        watch = Watch(page, server)
        page.goto(server + "/report")
        page.locator("#key-input").fill("cc-key")
        page.locator("#key-save").click()
        expect(page.locator("#position")).to_contain_text("GPS", timeout=10000)
        expect(page.locator("#map")).to_have_attribute("data-roads", __import__("re").compile(
            r"[1-9]"), timeout=10000)
        send = page.locator("#send")
        expect(send).to_be_disabled()
        page.get_by_role("button", name="Road blocked").tap()
        page.locator("#note").fill("lorry across the road")
        box = send.bounding_box()
        assert box and box["height"] >= 48 and box["width"] >= 300  # one thumb, big target
        send.tap()
        expect(page.locator("#confirm")).to_contain_text("Report sent", timeout=5000)
        assert_fits_width(page, 375)
        assert_known_glyphs(page)
        page.evaluate("window.scrollTo(0, 0)")
        page.mouse.move(5, 5)  # no button left looking hovered under the pointer
        shot(page, "field-report.png", full_page=True)
        watch.clean()
        # network gone: kept on the phone, sent when it returns
        phone.set_offline(True)
        page.get_by_role("button", name="Hazard").tap()
        send.tap()
        expect(page.locator("#confirm")).to_contain_text("Saved on this phone", timeout=5000)
        expect(page.locator("#queue")).to_contain_text("1 report waiting")
        assert_known_glyphs(page)
        assert_fits_width(page, 375)
        phone.set_offline(False)
        expect(page.locator("#confirm")).to_contain_text("Report sent", timeout=10000)
        expect(page.locator("#queue")).to_have_text("")
    finally:
        phone.close()
    # on the command centre within seconds
    centre = context.new_page()
    open_command_centre(centre, server)
    centre.locator("#tab-traffic").click()
    reports = centre.locator('#traffic-list li[data-type="FieldReport"]')
    expect(reports.filter(has_text="lorry across the road")).to_have_count(1, timeout=5000)
    expect(reports.filter(has_text="Hazard")).to_have_count(1, timeout=5000)
    expect(centre.locator(".report-marker").first).to_be_visible()
    assert_known_glyphs(centre)


def test_dispatch_tool_explains_the_ranking_and_registers_the_ambulance(
        context: BrowserContext, server: str) -> None:
    page = context.new_page()
    watch = open_command_centre(page, server, key="disp-key")
    page.locator("#tab-dispatch").click()
    page.locator("#dispatch-incident").fill(f"{A[1]}, {A[0]}")
    page.locator("#dispatch-bed").select_option("AdultICU")
    page.locator("#dispatch-ambulance").fill("amb-test-1")
    page.locator("#dispatch-submit").click()
    result = page.locator("#dispatch-result")
    expect(result.locator(".explanation")).not_to_be_empty(timeout=10000)
    rows = result.locator("table.ranking tbody tr")
    expect(rows.first).to_contain_text("ETA")  # the reasons, in words
    assert rows.count() >= 2
    expect(result.locator("#dispatch-registered")).to_contain_text("amb-test-1")
    expect(result.locator("#eta-priority")).to_contain_text("s")
    expect(page.locator("#role-name")).to_have_text("dispatcher")
    assert_known_glyphs(page)
    shot(page, "dispatch.png")
    page.locator("#tab-ambulances").click()
    item = page.locator('#ambulance-list li[data-ambulance="amb-test-1"]')
    expect(item).to_be_visible(timeout=5000)
    item.get_by_role("button", name="Arrived").click()
    expect(item).to_have_count(0, timeout=5000)
    watch.clean()


def test_coverage_and_scenarios_by_role(context: BrowserContext, server: str) -> None:
    page = context.new_page()
    watch = open_command_centre(page, server, key="planner-key")
    page.locator("#tab-coverage").click()
    page.locator("#coverage-stations").fill(f"{A[1]}, {A[0]}")
    page.locator("#coverage-minutes").fill("2")
    page.locator("#coverage-form button[type=submit]").click()
    expect(page.locator("#coverage-result")).to_contain_text("road km", timeout=10000)
    page.locator("#tab-scenarios").click()
    expect(page.locator("#scenario-name option").first).to_be_attached(timeout=5000)
    page.locator("#scenario-name").select_option("monaco-surge")
    page.locator("#scenario-form button[type=submit]").click()
    done = page.locator("#scenario-runs li", has_text="monaco-surge – done")
    expect(done.first).to_be_visible(timeout=90000)
    with context.expect_page() as opened:
        done.first.locator(".open-report").click()
    report = opened.value
    report.wait_for_load_state()
    expect(report.locator("body")).to_contain_text("monaco-surge")
    assert report.locator("img").count() > 0  # the replay's plots
    watch.clean()


def test_keyboard_reaches_the_tools(context: BrowserContext, server: str) -> None:
    page = context.new_page()
    open_command_centre(page, server)
    page.locator("#tab-hospitals").focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#tab-alerts")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#pane-alerts")).to_be_visible()
    page.locator("#tab-hospitals").click()
    page.locator("#hospital-list button").first.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#hospital-detail")).to_be_visible()


# ------------------------------------------------------------- phones, glyphs, labels, roles
@pytest.mark.parametrize("width", [320, 375, 414])
def test_field_report_fits_phone_screens_before_and_after_sending(browser: Browser, server: str,
                                                                   width: int) -> None:
    phone = browser.new_context(viewport={"width": width, "height": 700}, is_mobile=True,
                                has_touch=True, geolocation={"latitude": A[1], "longitude": A[0]},
                                permissions=["geolocation"])
    try:
        page = phone.new_page()
        watch = Watch(page, server)
        page.goto(server + "/report")
        page.locator("#key-input").fill("cc-key")
        page.locator("#key-save").click()
        expect(page.locator("#position")).to_contain_text("GPS", timeout=10000)
        expect(page.locator("#map")).to_have_attribute("data-roads", re.compile(r"[1-9]"),
                                                       timeout=10000)
        assert_fits_width(page, width)
        # every control a thumb may need is at least 48 px each way
        small = page.evaluate("""() => [...document.querySelectorAll(
            'button, textarea, input, select, .leaflet-control-zoom a')]
          .filter((e) => e.offsetParent !== null)
          .map((e) => { const r = e.getBoundingClientRect();
                        return [e.id || e.className || e.textContent, r.width, r.height]; })
          .filter(([, w, h]) => w < 48 || h < 48)""")
        assert not small, small
        page.get_by_role("button", name="Damaged road or furniture").tap()
        page.locator("#note").fill(f"phone width check {width}: " + "kerb-stones-loose " * 6)
        page.locator("#send").tap()
        confirm = page.locator("#confirm")
        expect(confirm).to_contain_text("Report sent", timeout=5000)
        assert_fits_width(page, width)
        box = confirm.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= width
        lines = page.evaluate("(e) => e.scrollHeight / parseFloat(getComputedStyle(e).lineHeight)",
                              confirm.element_handle())
        assert lines >= 2  # the sentence wraps instead of running off the screen
        assert_known_glyphs(page)
        watch.clean()
    finally:
        phone.close()


def test_static_pages_and_scripts_use_no_emoji() -> None:
    """The sources themselves: a symbol on a code path no browser test reaches is caught
    too (letters with accents are fine; everything else outside ASCII is listed)."""
    import unicodedata

    files = [*PAGES.glob("pages/templates/*.html"), *PAGES.glob("static/js/*.js"),
             *PAGES.glob("static/css/*.css"), *PAGES.glob("static/img/icons.svg")]
    assert len(files) >= 8
    for path in files:
        odd = {c for c in path.read_text(encoding="utf-8") if ord(c) > 0x7F
               and c not in ALLOWED_GLYPHS and "LATIN" not in unicodedata.name(c, "")}
        assert not odd, (path.name, sorted(odd))


def test_hospital_labels_stay_readable_and_keyboard_opens_the_card(browser: Browser,
                                                                   server: str) -> None:
    ctx = browser.new_context(viewport={"width": 1024, "height": 700}, timezone_id="UTC")
    try:
        page = ctx.new_page()
        watch = open_command_centre(page, server)
        got = hospital_labels(page)  # the whole map: no label covers another, or a dot
        assert len(got["labels"]) >= 3, got
        hospitals = {h["id"]: h for h in api(server, "GET", "/v1/hospitals").json()}
        for label in got["labels"]:  # short labels; the full name is the marker's name
            box = page.locator(f'.hosp[data-hospital="{label["id"]}"]')
            expect(box.locator(".hosp-label")).to_contain_text("NORMAL")
            assert label["rect"][2] - label["rect"][0] < 220
            marker = page.locator(".leaflet-marker-icon", has=box)
            expect(marker).to_have_attribute("aria-label", re.compile(
                re.escape(hospitals[label["id"]]["name"]) + ": NORMAL"))
        for _ in range(2):  # zoomed out, then in: still no overlap, labels folded if need be
            placed = page.evaluate("window.gyrophare.placements")
            page.evaluate("window.gyrophare.map.zoomOut(1, { animate: false })" if _ == 0 else
                          "window.gyrophare.map.setZoom(16, { animate: false })")
            page.wait_for_function(f"window.gyrophare.placements > {placed}")
            hospital_labels(page)
        # keyboard: Tab from the map reaches a hospital marker; focus shows its card, Enter
        # opens its details
        page.wait_for_function("!window.gyrophare.map._animatingZoom")
        page.evaluate("window.gyrophare.map.fitBounds(window.gyrophare.hospitals.map("
                      "(h) => [h.lat, h.lon]), { animate: false, padding: [40, 40] })")
        page.locator("#map").focus()
        for _ in range(30):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.classList.contains('hosp-icon')"):
                break
        else:
            pytest.fail("Tab never reached a hospital marker")
        focused = page.evaluate("document.activeElement.querySelector('.hosp').dataset.hospital")
        name = hospitals[focused]["name"]
        card = page.locator(".leaflet-tooltip.hosp-tooltip")
        expect(card).to_be_visible()
        expect(card).to_contain_text(name)
        expect(card).to_contain_text("occupied")
        page.keyboard.press("Enter")
        expect(page.locator("#hospital-detail")).to_be_visible()
        expect(page.locator("#hospital-detail h3")).to_have_text(name)
        expect(page.locator(".leaflet-popup")).to_contain_text(name)
        assert_known_glyphs(page)
        watch.clean()
    finally:
        ctx.close()


def test_whoami_tells_the_role_of_the_key(server: str) -> None:
    for key, role in KEYS.items():
        r = api(server, "GET", "/v1/me", key=key)
        assert r.status_code == 200 and r.json() == {"role": role, "open_access": False}
    assert httpx.get(server + "/v1/me").status_code == 401
    assert api(server, "GET", "/v1/me", key="nope").status_code == 401
    from api.app import create_app
    from api.pages.models import RoleName
    from api.settings import Role, Settings

    assert list(RoleName.__args__) == [r.name for r in sorted(Role)]  # type: ignore[attr-defined]
    anyone = TestClient(create_app(Settings())).get("/v1/me")  # no keys: loopback is admin
    assert anyone.status_code == 200 and anyone.json() == {"role": "admin", "open_access": True}


def test_pages_offer_only_what_the_role_may_do(browser: Browser, context: BrowserContext,
                                               server: str) -> None:
    closure = api(server, "POST", "/v1/closures", json={
        "type": "Feature", "geometry": {"type": "Point", "coordinates": A},
        "properties": {"radius_m": 15, "note": "role check closure"}})
    assert closure.status_code == 201, closure.text
    try:
        page = context.new_page()
        watch = open_command_centre(page, server, key="disp-key")  # dispatcher
        expect(page.locator("#role-name")).to_have_text("dispatcher")
        page.locator("#tab-traffic").click()
        expect(page.locator("#closure-submit")).to_be_disabled()  # its fieldset is
        expect(page.locator("#pane-traffic .role-hint")).to_contain_text(
            "needs the command_centre role or higher; this key has the dispatcher role")
        entry = page.locator("#traffic-list li", has_text="role check closure")
        expect(entry).to_be_visible(timeout=5000)
        expect(entry.get_by_role("button", name="Remove")).to_have_count(0)
        page.locator("#tab-scenarios").click()
        expect(page.locator("#scenario-form button[type=submit]")).to_be_disabled()
        expect(page.locator("#pane-scenarios .role-hint")).to_contain_text("planner role")
        page.locator("#tab-hospitals").click()
        page.locator("#hospital-list button").first.click()
        detail = page.locator("#hospital-detail")
        expect(detail.locator(".role-hint")).to_contain_text("command_centre role")
        expect(detail.get_by_role("button", name="Send status")).to_be_disabled()
        # what a dispatcher may do stays open
        page.locator("#tab-route").click()
        expect(page.locator("#route-submit")).to_be_enabled()
        page.wait_for_timeout(500)
        watch.clean()  # and no action was tried only to be refused (no 403)

        page = context.new_page()
        watch = open_command_centre(page, server)  # command_centre: traffic yes, scenarios no
        page.locator("#tab-traffic").click()
        expect(page.locator("#closure-submit")).to_be_enabled()
        expect(page.locator("#pane-traffic .role-hint")).to_have_count(0)
        expect(page.locator("#traffic-list li", has_text="role check closure")
               .get_by_role("button", name="Remove")).to_have_count(1)
        page.locator("#tab-scenarios").click()
        expect(page.locator("#scenario-form button[type=submit]")).to_be_disabled()
        watch.clean()

        phone = browser.new_context(viewport={"width": 375, "height": 700}, is_mobile=True,
                                    has_touch=True)
        try:
            report = phone.new_page()
            watch = Watch(report, server)
            report.goto(server + "/report")
            report.locator("#key-input").fill("disp-key")
            report.locator("#key-save").click()
            hint = report.locator("#role-hint")
            expect(hint).to_contain_text("Sending field reports needs the command_centre role")
            expect(report.get_by_role("button", name="Road blocked")).to_be_disabled()
            expect(report.locator("#send")).to_be_disabled()
            # a field key on the same page: the hint goes, the categories open
            report.locator("#key-button").click()
            report.locator("#key-input").fill("cc-key")
            report.locator("#key-save").click()
            expect(hint).to_be_hidden()
            expect(report.get_by_role("button", name="Road blocked")).to_be_enabled()
            watch.clean()
        finally:
            phone.close()
    finally:
        api(server, "DELETE", f"/v1/closures/{closure.json()['id']}")


def test_road_index_is_built_when_the_service_starts(monaco, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import api.pages
    from api.app import create_app
    from api.settings import Settings
    from api.store import EmbeddedStore

    built: list[Any] = []
    monkeypatch.setattr(api.pages, "_build_road_index", built.append)
    app = create_app(Settings(api_keys=KEYS), graph=monaco,
                     store=EmbeddedStore(tmp_path / "state.jsonl"))
    assert not built
    with TestClient(app) as client:
        deadline = time.monotonic() + 10
        while not built:
            assert time.monotonic() < deadline, "the road index was not built at start-up"
            time.sleep(0.02)
        assert built == [monaco]
        assert client.get("/health").status_code == 200  # the app's own start-up still ran
