"""Pages (HTML, not in the OpenAPI document), the service description, the caller's role
(``GET /v1/me``, so that a page offers only what the key may do) and the road layer."""

from __future__ import annotations

import gzip
from functools import cache
from typing import Annotated, cast

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.concurrency import run_in_threadpool

from api.auth import DispatcherRole, caller_role
from api.deps import AppSettings, State
from api.models.errors import AUTH, error_responses
from api.pages import LEAFLET_URL, STATIC_DIR, STATIC_URL, TEMPLATE_DIR
from api.pages.models import MapInfo, RoadLayerOut, RoleName, ServiceInfo, WhoAmI
from api.responses import FastJSON
from api.settings import Role
from engine.attribution import ATTRIBUTION, ATTRIBUTION_HTML
from engine.roads import MAX_ZOOM, RoadLayerError, road_index

router = APIRouter()


class PageSettings(BaseSettings):
    """``GYROPHARE_TILE_URL``: a raster tile URL template (``{z}/{x}/{y}``) drawn under the
    road layer where the deployment reaches a tile server; ``GYROPHARE_TILE_ATTRIBUTION``:
    its credit (the OSM credit is always shown)."""

    model_config = SettingsConfigDict(env_prefix="GYROPHARE_", env_file=".env", extra="ignore")

    tile_url: str | None = None
    tile_attribution: str | None = None


@cache
def _template(name: str) -> str:
    return (TEMPLATE_DIR / name).read_text(encoding="utf-8")


@cache
def _icons() -> str:
    """The icon sprite, inlined into each page (no font, request or network needed)."""
    return (STATIC_DIR / "img" / "icons.svg").read_text(encoding="utf-8").strip()


def _page(name: str) -> HTMLResponse:
    html = (_template(name).replace("{{STATIC}}", STATIC_URL)
            .replace("{{LEAFLET}}", LEAFLET_URL).replace("{{ATTRIBUTION_HTML}}", ATTRIBUTION_HTML)
            .replace("{{ICONS}}", _icons()))
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


@router.get("/", include_in_schema=False, response_class=HTMLResponse)
def command_centre() -> HTMLResponse:
    """The command-centre page."""
    return _page("command.html")


@router.get("/report", include_in_schema=False, response_class=HTMLResponse)
def field_report() -> HTMLResponse:
    """The field-report page for phones."""
    return _page("report.html")


@router.get("/api", response_model=ServiceInfo, tags=["pages"])
def service(request: Request, state: State, settings: AppSettings) -> ServiceInfo:
    """What the service is and where things are: docs, health, pages, the map (bounding box,
    time zone, optional raster tiles). No key needed."""
    graph = state.graph
    west, south, east, north = graph.bbox()
    pages = PageSettings()
    return ServiceInfo(
        service="gyrophare", version=request.app.version, attribution=ATTRIBUTION,
        attribution_html=ATTRIBUTION_HTML, docs="/docs", redoc="/redoc",
        openapi=request.app.openapi_url or "/openapi.json", health="/health",
        pages={"command_centre": "/", "field_report": "/report"},
        open_access=settings.open_access,
        map=MapInfo(name=str(graph.meta.get("name", "")), bbox=[west, south, east, north],
                    center=((west + east) / 2, (south + north) / 2),
                    timezone=str(graph.meta.get("timezone") or "UTC"),
                    tile_url=pages.tile_url, tile_attribution=pages.tile_attribution))


@router.get("/v1/me", response_model=WhoAmI, tags=["pages"], summary="The caller's role",
            responses=error_responses(*AUTH))
def whoami(role: Annotated[Role, Depends(caller_role)], settings: AppSettings) -> WhoAmI:
    """The role of the caller's key (any valid key; 401 for a missing or unknown one), for
    pages and clients that show only the actions the role may take. Roles are cumulative:
    dispatcher < command_centre < planner < admin."""
    return WhoAmI(role=cast(RoleName, role.name), open_access=settings.open_access)


BBox = Annotated[str, Query(description="west,south,east,north in degrees",
                            examples=["7.41,43.72,7.44,43.75"],
                            pattern=r"^-?(?:180(?:\.0+)?|(?:1[0-7][0-9]|[1-9]?[0-9])(?:\.[0-9]+)?),"
                            r"-?(?:90(?:\.0+)?|[1-8]?[0-9](?:\.[0-9]+)?),"
                            r"-?(?:180(?:\.0+)?|(?:1[0-7][0-9]|[1-9]?[0-9])(?:\.[0-9]+)?),"
                            r"-?(?:90(?:\.0+)?|[1-8]?[0-9](?:\.[0-9]+)?)$")]
Zoom = Annotated[int, Query(ge=0, le=MAX_ZOOM, description="map zoom level (Web Mercator)")]


@router.get("/v1/roads", response_class=FastJSON, response_model=RoadLayerOut, tags=["pages"],
            responses=error_responses(*AUTH))
async def roads(request: Request, bbox: BBox, zoom: Zoom, state: State,
                _: DispatcherRole) -> Response:
    """The roads of the map in ``bbox`` as GeoJSON for a base map: one MultiLineString
    feature per road class (``properties.class``), simplified to half a pixel at ``zoom``,
    minor classes left out at low zoom. Gzip-compressed when the client accepts it.
    422: a malformed bounding box."""
    try:
        values = [float(v) for v in bbox.split(",")]
    except ValueError:
        values = []
    if len(values) != 4:
        raise RoadLayerError(f"bbox must be west,south,east,north (four numbers), got {bbox!r}")
    body = await run_in_threadpool(_layer, state, values, zoom)
    headers = {"Cache-Control": "private, max-age=300", "Vary": "Accept-Encoding, X-API-Key"}
    if len(body) > 2048 and "gzip" in request.headers.get("accept-encoding", ""):
        body = gzip.compress(body, compresslevel=4)
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type="application/json", headers=headers)


def _layer(state: State, bbox: list[float], zoom: int) -> bytes:
    west, south, east, north = bbox
    layer = road_index(state.graph).query(west, south, east, north, zoom)
    return orjson.dumps(layer.to_geojson(), option=orjson.OPT_SERIALIZE_NUMPY)
