"""OSRM-compatible endpoints ``/route/v1``, ``/table/v1`` and ``/nearest/v1``, each one parse
(:mod:`api.osrm.grammar`), one engine run (:mod:`api.osrm.plugins`) and one OSRM answer
(:mod:`api.osrm.format`), so that any OSRM client gets gyrophare's routes with live traffic,
closures and the ambulance profile.

URLs are limited to 65,535 bytes (path and query, :data:`api.osrm.grammar.MAX_URL_BYTES`):
uvicorn refuses longer ones itself with a plain-text 400 before the application sees them;
every URL it accepts gets an OSRM JSON answer (``TooBig`` when it asks for too many
coordinates, checked before they are parsed)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Path, Request, Security
from fastapi.responses import Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials

from api.auth import BEARER_KEY, HEADER_KEY, caller_role, require
from api.models.osrm import NearestResponse, RouteResponse, TableResponse, osrm_responses
from api.osrm import grammar, plugins
from api.osrm.errors import OsrmError
from api.osrm.format import nearest_body, route_body, table_body
from api.responses import FastJSON
from api.settings import Role
from api.state import LiveState
from engine.attribution import ATTRIBUTION

#: The ODbL credit of every OSRM answer, as a header (OSRM's JSON bodies stay OSRM's): ASCII,
#: since header values are latin-1 at best and many clients read only ASCII.
ATTRIBUTION_HEADER = "Map data " + ATTRIBUTION.replace("©", "(c)")
HEADERS = {"X-Attribution": ATTRIBUTION_HEADER}
_RESPONSES = osrm_responses()

# The URL's parts as declared: the grammar's own rules (api.osrm.grammar), never enforced by
# FastAPI, so that a bad part gets OSRM's answer (400 InvalidUrl, InvalidVersion...).
Version = Annotated[str, Path(description="API version: v1", json_schema_extra={
    "pattern": grammar.VERSION_PATTERN})]
Profile = Annotated[str, Path(description="driving or car (car), ambulance or emergency "
                              "(ambulance with lights and sirens)",
                              json_schema_extra={"pattern": grammar.PROFILE_PATTERN})]
_COORDINATES = ("``lon,lat;lon,lat...`` (WGS84 degrees, no exponent) or ``polyline(...)`` / "
                "``polyline6(...)`` (Google's encoding, precision 5 / 6), optionally followed by "
                "``.json``: ")
RouteCoordinates = Annotated[str, Path(
    description=_COORDINATES + f"2 to {grammar.MAX_ROUTE_COORDINATES} positions",
    json_schema_extra={"pattern": grammar.ROUTE_COORDINATES_PATTERN})]
#: the largest table is a setting: api.app.document_api writes its pattern
TableCoordinates = Annotated[str, Path(
    description=_COORDINATES + "at most max_table_coordinates positions (a setting, 200 by "
    "default)", json_schema_extra={"pattern": grammar.coordinates_pattern(1, 200)})]
NearestCoordinates = Annotated[str, Path(
    description=_COORDINATES + "one position",
    json_schema_extra={"pattern": grammar.NEAREST_COORDINATES_PATTERN})]


#: Routes with at most this many coordinates given as ``lon,lat`` (and no ``alternatives``)
#: are computed on the event loop itself: a Monaco route is a millisecond or two of
#: GIL-holding Python and numba, which the threadpool would only add a hand-off (and GIL
#: contention between the loop and its threads) to. Longer ones, polylines (up to 500
#: points) and tables go to the threadpool, so that one request never holds the loop long.
INLINE_MAX_COORDINATES = 3
_dispatcher = require(Role.dispatcher)


async def _caller(request: Request,
                  header: Annotated[str | None, Security(HEADER_KEY)] = None,
                  bearer: Annotated[HTTPAuthorizationCredentials | None,
                                    Security(BEARER_KEY)] = None) -> Role:
    """:data:`api.auth.DispatcherRole`, as a coroutine: FastAPI runs each ``def`` dependency
    in the threadpool, a hand-off that costs more than a Monaco route's search."""
    return _dispatcher(caller_role(request, header, bearer))


OsrmCaller = Annotated[Role, Depends(_caller)]


class OsrmRoute(APIRoute):
    """The OSRM endpoints' route class: the endpoint is called with its three URL parts, the
    request and the caller's role (:func:`_caller`, same checks) directly, without FastAPI's
    generic dependency solving (a tenth of a millisecond per request: more than parsing and
    answering a route). The declared signature still makes the OpenAPI operation; every
    endpoint of :data:`router` takes ``(version, profile, coordinates, request, role)``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            role = await _caller(request, await HEADER_KEY(request), await BEARER_KEY(request))
            path = request.path_params
            return await endpoint(path["version"], path["profile"], path["coordinates"],
                                  request, role)

        return handler


router = APIRouter(tags=["osrm"], route_class=OsrmRoute)


def _state(request: Request) -> LiveState:
    return request.app.state.live


async def _answer(request: Request, build: Callable[[], dict[str, Any]], *,
                  inline: bool) -> Response:
    """OSRM's answer: the body ``build`` returns, or its :class:`OsrmError` as HTTP 400
    (``TooBig`` at once for a URL longer than the server limit). ``inline``: run ``build``
    on the event loop, else in the threadpool."""
    try:
        grammar.check_url_length(len(request.scope.get("raw_path") or b"")
                                 + len(request.scope.get("query_string") or b"") + 1)
        body = build() if inline else await anyio.to_thread.run_sync(build)
    except OsrmError as exc:
        return FastJSON(exc.body(), status_code=400, headers=HEADERS)
    return FastJSON(body, headers=HEADERS)


def _inline_route(coordinates: str, query: str) -> bool:
    """A route cheap enough for the event loop: few coordinates, no alternatives."""
    return (coordinates.count(";") < INLINE_MAX_COORDINATES and "alternatives" not in query
            and not coordinates.startswith("polyline"))


@router.get("/route/{version}/{profile}/{coordinates}", response_model=RouteResponse,
            response_class=FastJSON, responses=_RESPONSES)
async def osrm_route(version: Version, profile: Profile, coordinates: RouteCoordinates,
                     request: Request, _: OsrmCaller) -> Response:
    """OSRM route service: ``lon,lat;lon,lat[;...]`` or ``polyline(...)``, options
    ``overview``, ``geometries``, ``steps``, ``annotations``, ``alternatives``,
    ``continue_straight``, ``waypoints``, ``radiuses``, ``bearings``, ``hints``,
    ``generate_hints``, ``approaches``, ``exclude``, ``snapping``, ``skip_waypoints``, as
    Project-OSRM's HTTP API (``docs/http.md``), plus ``api_key`` (clients that cannot set
    headers).

    Profiles: ``driving`` / ``car`` (car), ``ambulance`` / ``emergency`` (ambulance with lights
    and sirens); any other name is ``InvalidValue`` (``osrm-routed`` would serve its one
    dataset). ``weight_name`` is ``duration``: the weight *is* the travel time with live
    traffic. Accepted and checked but without effect: ``bearings``, ``approaches``, ``hints``
    (ours are empty strings), ``snapping``, ``continue_straight`` (each leg is routed on its
    own). ``alternatives=true|N`` (N at most 3) adds up to N alternative routes to
    ``routes`` for two coordinates (as OSRM; none is guaranteed): each shares at most 80 %
    of the best route's duration, is locally optimal and takes at most 1.4x its duration.
    ``radiuses`` are honoured up to the server's snap radius (``unlimited`` = that radius);
    at most 500 coordinates (``TooBig``), in a URL of at most 65,535 bytes (longer ones are
    refused by the HTTP server itself).
    ``exclude=motorway`` closes motorways and their links, ``exclude=ferry`` is trivially
    honoured (no ferries in the graph), other classes are refused as OSRM refuses unknown
    ones. Extra fields: ``weights_version`` (the traffic state used) and ``stale`` (the state
    store is unreachable: last known traffic); the ODbL credit is in the ``X-Attribution``
    header."""
    state = _state(request)
    return await _answer(request, lambda: _route(state, request, version, profile, coordinates),
                         inline=_inline_route(coordinates, request.url.query))


def _route(state: LiveState, request: Request, version: str, profile: str,
           coordinates: str) -> dict[str, Any]:
    query = grammar.parse_route(version, profile, coordinates, query=request.url.query,
                                options=request.query_params.multi_items())
    return route_body(state.graph, plugins.route(state.router, query), query,
                      stale=state.stale)


@router.get("/table/{version}/{profile}/{coordinates}", response_model=TableResponse,
            response_class=FastJSON, responses=_RESPONSES)
async def osrm_table(version: Version, profile: Profile, coordinates: TableCoordinates,
                     request: Request, _: OsrmCaller) -> Response:
    """OSRM table service: ``sources``, ``destinations`` (indices or ``all``),
    ``annotations`` (``duration``, ``distance``), ``fallback_speed``, ``fallback_coordinate``,
    ``scale_factor`` and the route service's general options. At most
    ``max_table_coordinates``² cells (``TooBig``; without ``sources`` / ``destinations``, so
    at most ``max_table_coordinates`` coordinates, counted before they are parsed).
    Distances are those of the *fastest* route, as OSRM's: each cell is routed for them, so a
    distance table holds at most 2,500 cells. URLs are limited to 65,535 bytes (about 3,000
    coordinates at 6 decimals; longer ones are refused by the HTTP server itself)."""
    state, settings = _state(request), request.app.state.settings
    return await _answer(request, lambda: _table(
        state, request, version, profile, coordinates,
        max_table_coordinates=int(settings.max_table_coordinates)), inline=False)


def _table(state: LiveState, request: Request, version: str, profile: str, coordinates: str,
           *, max_table_coordinates: int) -> dict[str, Any]:
    query = grammar.parse_table(version, profile, coordinates, query=request.url.query,
                                options=request.query_params.multi_items(),
                                max_table_coordinates=max_table_coordinates)
    return table_body(state.graph, plugins.table(state.router, query), query,
                      stale=state.stale)


@router.get("/nearest/{version}/{profile}/{coordinates}", response_model=NearestResponse,
            response_class=FastJSON, responses=_RESPONSES)
async def osrm_nearest(version: Version, profile: Profile, coordinates: NearestCoordinates,
                       request: Request, _: OsrmCaller) -> Response:
    """OSRM nearest service: the ``number`` nearest road pieces usable by the profile, with
    the OSM nodes of the snapped segment, within the coordinate's radius."""
    state = _state(request)
    return await _answer(request, lambda: _nearest(state, request, version, profile,
                                                   coordinates), inline=True)


def _nearest(state: LiveState, request: Request, version: str, profile: str,
             coordinates: str) -> dict[str, Any]:
    query = grammar.parse_nearest(version, profile, coordinates, query=request.url.query,
                                  options=request.query_params.multi_items())
    return nearest_body(state.graph, plugins.nearest(state.router, query), query,
                        stale=state.stale)


def _unknown_service(service: str) -> Callable[..., Coroutine[Any, Any, Response]]:
    async def handler(version: str, profile: str, coordinates: str, request: Request,
                      _: OsrmCaller) -> Response:
        return FastJSON(grammar.unknown_service(service).body(), status_code=400,
                        headers=HEADERS)

    return handler


for _service in ("match", "trip", "tile"):  # OSRM services gyrophare does not serve
    router.add_api_route(f"/{_service}/{{version}}/{{profile}}/{{coordinates}}",
                         _unknown_service(_service), methods=["GET"], include_in_schema=False)
