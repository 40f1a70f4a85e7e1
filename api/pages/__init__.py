"""Browser pages: the command centre (``/``), the phone field-report page (``/report``), the
road layer they draw as base map (``GET /v1/roads``), and offline ``/docs`` and ``/redoc``.

Everything a page loads ships with the Python packages: the pages' own ES modules and CSS
(``api/static``), Leaflet (the ``xstatic-leaflet`` package) and Swagger UI / ReDoc (the
``fastapi-offline`` package). No CDN is contacted at run time; a raster background is added
only when ``GYROPHARE_TILE_URL`` is set. Icons are an SVG sprite inlined into each page (no
emoji, no icon font: a wall screen or phone may lack them).

The road layer's chain index is built in a background thread as soon as the application has
started (:func:`warm_road_index`), so the first page load does not wait for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
#: URL prefixes of the mounted assets.
STATIC_URL, LEAFLET_URL, DOCS_ASSETS_URL = "/static", "/vendor/leaflet", "/vendor/docs"


def leaflet_dir() -> Path:
    import importlib

    leaflet = importlib.import_module("xstatic.pkg.leaflet")  # the xstatic-leaflet package
    return Path(leaflet.BASE_DIR)


def docs_assets_dir() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).resolve().parent / "static"


#: The one external asset of the ReDoc bundle (its "API docs by Redocly" logo), and ours.
REDOC_CDN_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@cache
def _redoc_js() -> bytes:
    """The ReDoc bundle with its logo read from this service, not a CDN."""
    text = (docs_assets_dir() / "redoc.standalone.js").read_text(encoding="utf-8")
    return text.replace(REDOC_CDN_LOGO, f"{STATIC_URL}/img/redoc-logo.svg").encode()


def _build_road_index(graph: Any) -> None:
    from engine.roads import road_index

    started = time.perf_counter()
    try:
        index = road_index(graph)
    except Exception:  # the road layer will say what is wrong on its first request
        log.exception("road layer: building the chain index failed")
        return
    log.info("road layer: %d chains indexed in %.2f s", index.n_chains,
             time.perf_counter() - started)


def warm_road_index(app: FastAPI) -> None:
    """Build the road layer's chain index in a background thread once ``app`` has started
    (after its own lifespan startup made ``app.state.live``): requests are served meanwhile,
    and a road-layer request that comes first waits for the same build, never repeats it."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: Any) -> AsyncIterator[Any]:
        async with inner(app_) as value:
            live = getattr(app_.state, "live", None)
            if live is not None:
                threading.Thread(target=_build_road_index, args=(live.graph,),
                                 name="road-index", daemon=True).start()
            yield value

    app.router.lifespan_context = lifespan


def install(app: FastAPI) -> None:
    """Add the pages, ``GET /v1/me``, the road layer, the static assets and offline /docs,
    /redoc to ``app`` (created with ``docs_url=None, redoc_url=None``), and build the road
    index at start-up (:func:`warm_road_index`)."""
    from api.pages.router import router

    app.include_router(router)
    warm_road_index(app)
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="static")
    app.mount(LEAFLET_URL, StaticFiles(directory=leaflet_dir()), name="leaflet")
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=docs_assets_dir()), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = "/docs/oauth2-redirect"
    favicon = f"{STATIC_URL}/img/favicon.svg"

    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{app.title} – API (Swagger UI)",
            swagger_js_url=f"{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=favicon, oauth2_redirect_url=redirect_url,
            swagger_ui_parameters={"persistAuthorization": True})

    @app.get(redirect_url, include_in_schema=False)
    def swagger_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/vendor/redoc.standalone.js", include_in_schema=False)
    def redoc_js() -> Response:
        return Response(_redoc_js(), media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=openapi_url, title=f"{app.title} – API (ReDoc)",
                              redoc_js_url="/vendor/redoc.standalone.js",
                              redoc_favicon_url=favicon, with_google_fonts=False)
