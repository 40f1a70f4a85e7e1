"""The FastAPI application: ``create_app()`` wires settings, engine, store and routers.

The graph is loaded and the kernels are warmed **before** the first request is accepted
(lifespan); kernel calls run in sync handlers, i.e. FastAPI's threadpool, except short OSRM
routes and ``/nearest``, which run on the event loop (:mod:`api.routers.osrm`).

Middleware, outermost first: CORS (``Settings.cors_origins``; off by default), the heap frozen
once started (:class:`FrozenHeap`, lifespan only), the loopback guard when no API keys are
configured (:class:`LoopbackOnly`), the body limit, request timing, ``Idempotency-Key``
replays (:mod:`api.idempotency`).
"""

from __future__ import annotations

import functools
import gc
import ipaddress
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.auth import QUERY_KEY, QUERY_KEY_TAG
from api.events import InvalidEvent
from api.idempotency import REPLAYED, WRITE_METHODS, Idempotency
from api.idempotency import parameter as idempotency_parameter
from api.idempotency import responses as idempotency_responses
from api.osrm.grammar import coordinates_pattern
from api.runs import ScenarioRuns
from api.schemas import referenced_components
from api.settings import Settings
from api.state import LiveState
from api.store import Store, StoreUnavailable, make_store
from engine.attribution import ATTRIBUTION
from engine.errors import (
    BedTypeNotOffered,
    DuplicateAmbulance,
    GyrophareError,
    InvalidCoordinate,
    PointOffNetwork,
    UnknownAmbulance,
    UnknownHospital,
)
from engine.graph import RoadGraph
from engine.progress import StartupLog
from engine.warmup import KernelCompiler

if TYPE_CHECKING:
    from engine.query import Router

log = logging.getLogger("gyrophare.api")



def start_engine(settings: Settings, log: StartupLog,
                 compiler: KernelCompiler) -> tuple[RoadGraph, Router]:
    """The server's own start: the map, the turn graph, the hierarchy and the kernels, one
    progress line per stage on stderr (the kernels of the first requests ready; the others
    follow in the background, :class:`engine.warmup.KernelCompiler`)."""
    from engine.cch import CCHIndex
    from engine.io import load_graph, tqdm_progress
    from engine.query import Router

    source = settings.osm or settings.graph
    what = source or settings.place or "the embedded sample city"
    with log.stage(f"loading the map ({what})") as note:
        graph = load_graph(source, place=settings.place, progress=True)
        note["done"] = f"{graph.n_nodes:,} junctions, {graph.n_edges:,} road pieces"
    with log.stage("building the turn graph") as note:
        turns = graph.turn_graph()
        note["done"] = f"{turns.n_edges:,} turns"
    with log.stage("routing hierarchy (CCH)") as note:
        index = CCHIndex.load_or_build(turns, progress=tqdm_progress())
        note["done"] = "built" if index.meta.get("source") == "built" else "cached"
    compiler.start()
    with log.stage("router (snapping grid, reachability)"):
        router = Router(graph, snap_radius_m=settings.snap_radius_m, cch=index, warm_up=False)
    compiler.warm_router(router)
    return graph, router


def build_state(settings: Settings, *, graph: RoadGraph | None = None,
                store: Store | None = None, hospitals: list | None = None,
                router: Router | None = None) -> LiveState:
    """Load the map, warm the kernels, load hospitals, connect the store, replay its log
    (``graph`` and ``router``: already prepared, by :func:`start_engine` or a test)."""
    from engine.hospitals import (
        HospitalBoard,
        SaturationPolicy,
        hospitals_from_graph,
        load_hospitals,
        project_data_path,
        snap_entrances,
    )
    from engine.io import load_graph, sample_city_path
    from engine.query import Router

    if router is not None:
        graph = router.graph
    if graph is None:
        source = settings.osm or settings.graph
        graph = load_graph(source, place=settings.place, progress=True)
    if router is None:
        router = Router(graph, snap_radius_m=settings.snap_radius_m)  # JIT warm-up here
    if hospitals is None:
        if settings.hospitals:
            hospitals = load_hospitals(settings.hospitals)
        elif graph.hospitals:
            hospitals = hospitals_from_graph(graph)
        elif Path(str(graph.meta.get("source", ""))) == sample_city_path() or \
                graph.meta.get("name") == "Helsinki.osm.pbf":
            hospitals = load_hospitals(project_data_path("hospitals/helsinki-demo.json"))
        else:
            hospitals = []
    board = HospitalBoard(hospitals, policy=SaturationPolicy(
        en_route_grace=timedelta(minutes=settings.en_route_grace_min)))
    snap_entrances(board, router)
    if store is None:
        if settings.state_file is None and not settings.redis_url:
            from engine.io import default_cache_dir

            key = str(graph.meta.get("sha256", graph.meta.get("name", "graph")))[:16]
            settings.state_file = default_cache_dir() / f"state-{key}.jsonl"
        store = make_store(settings)
    state = LiveState(graph, router, board, store, follow_timeout_s=settings.follow_timeout_s)
    state.start()
    return state


class BodyLimit:
    """Reject request bodies larger than ``limit`` bytes (413), streamed or not."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = None
        for name, value in scope.get("headers") or ():
            if name == b"content-length":  # the last one, as before (a dict of the headers)
                length = value
        if length is not None and length.isascii() and length.isdigit() and \
                int(length) > self.limit:
            return await self._reject(send)
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._reject(send)

    async def _reject(self, send: Any) -> None:
        body = (f'{{"detail": "request body larger than {self.limit} bytes"}}').encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


class Timing:
    """Request latency per route template into a Prometheus histogram (pure ASGI: Starlette's
    ``BaseHTTPMiddleware`` costs more per request than a CCH route query)."""

    def __init__(self, app: Any, histogram: Histogram) -> None:
        self.app, self.histogram = app, histogram
        #: the histogram's child per (route template, status): ``labels()`` takes a lock and
        #: checks its arguments on every call
        self.children: dict[tuple[str, int], Any] = {}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = [500]

        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            key = (getattr(route, "path", "unmatched"), status[0])
            child = self.children.get(key)
            if child is None:
                child = self.children[key] = self.histogram.labels(key[0], str(key[1]))
            child.observe(time.perf_counter() - t0)


class FrozenHeap:
    """Once start-up is complete, move every object alive into the garbage collector's
    permanent generation (:func:`gc.freeze`), and back at shutdown.

    Why: the map and the engine are some 300,000 long-lived Python objects (lists, dicts)
    that a full collection walks every time, ~250 ms on Monaco during which no request is
    served; under load a full collection comes every thousand requests or so, the p99 of a
    route then *is* that pause. Frozen, they are skipped (a full pass takes a few ms); they
    are never garbage anyway. A pure ASGI wrapper of the lifespan messages (HTTP requests
    pass straight through), so that every way of starting the app gets it.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            return await self.app(scope, receive, send)

        async def sending(message: dict) -> None:
            if message["type"] == "lifespan.startup.complete":
                gc.collect()
                gc.freeze()
            elif message["type"] == "lifespan.shutdown.complete":
                gc.unfreeze()
            await send(message)

        await self.app(scope, receive, sending)


class LoopbackOnly:
    """Without API keys every caller is admin: answer loopback callers only, 403 to others.

    Why in the app: every way of starting the service builds it (``gyrophare serve``,
    ``uvicorn api.app:app_from_env --factory --host 0.0.0.0``, gunicorn, tests), and only the
    app sees who calls; the address the server listens on is invisible to it. Refusing to
    build the app without keys would also refuse local use, which needs none; refusing the
    request does not. So a request is refused when its peer address is not loopback
    (127.0.0.0/8, ::1, IPv4-mapped loopback), or when a proxy relayed it for such a caller
    (``Forwarded``, ``X-Forwarded-For``, ``X-Real-IP`` naming anything but a loopback
    address: a proxy on this machine connects from loopback). A peer with no address is
    local by construction: a Unix socket (no ``client``) or the in-process test clients of
    Starlette and schemathesis (``"testclient"``); any other name is refused.
    """

    #: Peers without an IP address that are in-process test clients.
    LOCAL_NAMES = frozenset({"testclient"})
    MESSAGE = ("no API keys are configured (GYROPHARE_API_KEYS), so every caller would be "
               "admin: this service answers loopback callers only. To serve other machines, "
               "configure keys, e.g. GYROPHARE_API_KEYS='{\"<a long random secret>\": "
               "\"dispatcher\"}' (roles: dispatcher, command_centre, planner, admin), and "
               "send one in the X-API-Key header")

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket") and not self.local(scope):
            if scope["type"] == "websocket":
                return await send({"type": "websocket.close", "code": 1008})
            body = JSONResponse({"detail": self.MESSAGE}, status_code=403)
            return await body(scope, receive, send)
        return await self.app(scope, receive, send)

    @classmethod
    def local(cls, scope: dict) -> bool:
        client = scope.get("client")
        if client and client[0] not in cls.LOCAL_NAMES and not _loopback(client[0]):
            return False
        for name, value in scope.get("headers") or ():
            if name in (b"x-forwarded-for", b"x-real-ip"):
                relayed = value.decode("latin-1").split(",")
            elif name == b"forwarded":
                relayed = re.findall(r"for=(\"[^\"]*\"|[^;,\s]*)", value.decode("latin-1"),
                                     re.IGNORECASE)
            else:
                continue
            if not all(_loopback(address) for address in relayed):
                return False
        return True


@functools.lru_cache(maxsize=1024)
def _loopback(address: str) -> bool:
    """``address`` (an IP, maybe quoted, bracketed or with a port) is a loopback address."""
    host = address.strip().strip('"')
    if host.startswith("["):
        host = host[1:host.find("]")]
    elif host.count(":") == 1:  # IPv4 with a port
        host = host.split(":")[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return (mapped or ip).is_loopback


def document_api(openapi: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Complete the generated ``/openapi.json``: FastAPI derives the header and bearer key
    schemes, and where they apply, from :func:`api.auth.caller_role`; this adds the query key
    to the OSRM GET operations (the only ones that accept it), marks the key optional when no
    keys are configured (loopback open access), and documents ``Idempotency-Key`` on every
    write, ``Idempotent-Replayed`` on its success answer and the 409 and 503 its middleware
    may answer; it declares the components that hand-written parts reference
    (:func:`api.schemas.referenced_components`)."""
    components = openapi.setdefault("components", {})
    for name, schema in referenced_components().items():
        components.setdefault("schemas", {}).setdefault(name, schema)
    table = openapi.get("paths", {}).get("/table/{version}/{profile}/{coordinates}", {})
    for parameter in table.get("get", {}).get("parameters", ()):
        if parameter["name"] == "coordinates":  # the largest table is a setting
            parameter["schema"]["pattern"] = coordinates_pattern(
                1, int(settings.max_table_coordinates))
    schemes = components.setdefault("securitySchemes", {})
    schemes[QUERY_KEY.scheme_name] = QUERY_KEY.model.model_dump(
        mode="json", by_alias=True, exclude_none=True)
    replayed = {REPLAYED: {"description": "`true` on a replay of an earlier answer (same "
                                          "Idempotency-Key)", "schema": {"type": "string"}}}
    for item in openapi.get("paths", {}).values():
        for method, operation in item.items():
            security = operation.get("security")
            if security:
                if method == "get" and QUERY_KEY_TAG in operation.get("tags", ()):
                    security.append({QUERY_KEY.scheme_name: []})
                if settings.open_access:
                    security.append({})
            if method.upper() in WRITE_METHODS:
                operation.setdefault("parameters", []).append(
                    idempotency_parameter(settings.idempotency_ttl_s))
                answers = operation.setdefault("responses", {})
                for code, response in answers.items():
                    if code.startswith("2"):
                        response.setdefault("headers", {}).update(replayed)
                for code, response in idempotency_responses().items():
                    own = answers.get(code)
                    if own is None:
                        answers[code] = response
                        continue
                    # the handler's own 409 / 503: both reasons (one, if it says the same)
                    if not response["description"].startswith(own["description"]):
                        response = {**response, "description": own["description"] + "; or "
                                    + response["description"]}
                    answers[code] = {**own, **response}
                operation["responses"] = dict(sorted(answers.items()))
    return openapi


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (several workers): settings from the environment."""
    return create_app(Settings())


def create_app(settings: Settings | None = None, *, graph: RoadGraph | None = None,
               store: Store | None = None, hospitals: list | None = None,
               state: LiveState | None = None) -> FastAPI:
    """The application. Tests pass a prepared ``graph``/``store``/``state``; the server builds
    everything from the settings at startup."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.open_access:
            log.warning("no API keys configured (GYROPHARE_API_KEYS): every caller is admin, "
                        "so only loopback callers are served (others get 403)")
        import anyio.to_thread

        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threadpool_size
        compiler = None
        if state is None and graph is None:  # the server's own map: say what start-up does
            startup = StartupLog()
            compiler = KernelCompiler(startup, workers=settings.compile_workers or None,
                                      map_spec={"source": settings.osm or settings.graph,
                                                "place": settings.place})
            compiler.begin()  # on a fresh machine, compile processes start now
            _, router = start_engine(settings, startup, compiler)
            live = build_state(settings, store=store, hospitals=hospitals, router=router)
        else:
            live = state or build_state(settings, graph=graph, store=store,
                                        hospitals=hospitals)
        app.state.live = live
        app.state.runs.store = live.store  # scenario runs are kept where the log is
        if compiler is not None:
            compiler.background()  # the kernels no first request needs
            startup.line(f"ready in {startup.elapsed():.1f} s")
        try:
            yield
        finally:
            if compiler is not None:
                compiler.close()
            if state is None:
                live.stop()

    app = FastAPI(
        title="gyrophare",
        version="0.1.0",
        summary="Emergency routing, live traffic and hospital saturation. " + ATTRIBUTION,
        lifespan=lifespan,
        docs_url=None, redoc_url=None,  # served from local assets by api.pages (#12)
    )
    app.state.settings = settings
    app.state.runs = ScenarioRuns()
    registry = CollectorRegistry()
    latency = Histogram("gyrophare_request_seconds", "request latency", ["route", "status"],
                        registry=registry,
                        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5))
    app.state.metrics_registry = registry

    # added innermost first
    app.add_middleware(Idempotency, store=lambda: app.state.live.store,
                       ttl_s=settings.idempotency_ttl_s)
    app.add_middleware(Timing, histogram=latency)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    if settings.open_access:
        app.add_middleware(LoopbackOnly)
    app.add_middleware(FrozenHeap)
    if settings.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        # keys travel in headers, never cookies: no credentials mode
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_credentials=False,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["X-API-Key", "Authorization", "Content-Type", "Idempotency-Key"],
            expose_headers=["X-Attribution", REPLAYED, "Retry-After", "WWW-Authenticate"],
            max_age=600)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_api(FastAPI.openapi(app), settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    def error(status: int, message: str, **extra: Any) -> JSONResponse:
        return JSONResponse({"detail": message, **extra}, status_code=status)

    @app.exception_handler(StoreUnavailable)
    async def store_down(request: Request, exc: StoreUnavailable) -> JSONResponse:
        return error(503, f"state store unavailable, the write was NOT accepted: {exc}",
                     stale=True)

    @app.exception_handler(GyrophareError)
    async def engine_error(request: Request, exc: GyrophareError) -> JSONResponse:
        from engine.dispatch import NoHospitalAvailable
        from engine.traffic import TrafficInputError, UnknownEntry

        if isinstance(exc, UnknownHospital | UnknownEntry | UnknownAmbulance):
            return error(404, str(exc))
        if isinstance(exc, DuplicateAmbulance | NoHospitalAvailable):
            return error(409, str(exc))
        if isinstance(exc, TrafficInputError):
            return error(422, str(exc), errors=exc.errors)
        if isinstance(exc, InvalidCoordinate | PointOffNetwork | BedTypeNotOffered):
            return error(422, str(exc))
        return error(422, str(exc))

    @app.exception_handler(InvalidEvent)
    async def invalid_event(request: Request, exc: InvalidEvent) -> JSONResponse:
        # a write whose event does not validate: refused before it reaches the log
        return error(422, f"invalid request: {exc}")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
                  for e in exc.errors()]
        where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        return error(422, f"invalid request: {where}", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # FastAPI answers a JSON body it cannot even decode (not UTF-8) with a bare 400 that no
        # endpoint declares; it is invalid input like any malformed JSON: 422, same body
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            message = "the body is not valid JSON (UTF-8 text expected)"
            return error(422, f"invalid request: body: {message}",
                         errors=[{"loc": ["body"], "msg": message, "type": "json_invalid"}])
        if exc.status_code == 404 and exc.detail == "Not Found":
            # no route matched (FastAPI's bare 404): say what exists instead
            return error(404, f"no endpoint at {request.url.path} (see /docs for the API; an "
                         "id with '/' in it cannot be used in a path)")
        return await http_exception_handler(request, exc)

    from api.routers import health, osrm, routing, scenarios, traffic
    from api.routers import hospitals as hospitals_router

    # the OSRM routes first: Starlette tries routes in order, and they are the hot path
    # (about 22 routes checked before them cost 0.15-0.25 ms a request)
    for module in (osrm, routing, hospitals_router, traffic, scenarios, health):
        app.include_router(module.router)

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Any:
        from api.routers.health import state_metrics

        body = state_metrics(request.app.state.live) + generate_latest(registry)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    # pages (#12): the command centre at /, /report, /api (JSON service description),
    # GET /v1/roads, static assets, offline /docs and /redoc
    from api.pages import install as install_pages

    install_pages(app)

    return app
