"""The FastAPI application: ``create_app()`` wires settings, engine, store and routers.

The graph is loaded and the kernels are warmed **before** the first request is accepted
(lifespan); every kernel call runs in sync handlers, i.e. FastAPI's threadpool.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from api.runs import ScenarioRuns
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

log = logging.getLogger("gyrophare.api")



def build_state(settings: Settings, *, graph: RoadGraph | None = None,
                store: Store | None = None, hospitals: list | None = None) -> LiveState:
    """Load the map, warm the kernels, load hospitals, connect the store, replay its log."""
    from engine.hospitals import (
        HospitalBoard,
        hospitals_from_graph,
        load_hospitals,
        project_data_path,
        snap_entrances,
    )
    from engine.io import load_graph, sample_city_path
    from engine.query import Router

    if graph is None:
        source = settings.osm or settings.graph
        graph = load_graph(source, place=settings.place, progress=True)
    router = Router(graph, snap_radius_m=settings.snap_radius_m)  # JIT warm-up happens here
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
    board = HospitalBoard(hospitals)
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
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
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
            path = getattr(route, "path", "unmatched")
            self.histogram.labels(path, str(status[0])).observe(time.perf_counter() - t0)


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
            log.warning("no API keys configured (GYROPHARE_API_KEYS): every caller is admin; "
                        "listen on localhost only")
        import anyio.to_thread

        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threadpool_size
        live = state or build_state(settings, graph=graph, store=store, hospitals=hospitals)
        app.state.live = live
        yield
        if state is None:
            live.stop()

    app = FastAPI(
        title="gyrophare",
        version="0.1.0",
        summary="Emergency routing, live traffic and hospital saturation. " + ATTRIBUTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.runs = ScenarioRuns()
    registry = CollectorRegistry()
    latency = Histogram("gyrophare_request_seconds", "request latency", ["route", "status"],
                        registry=registry,
                        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5))
    app.state.metrics_registry = registry

    app.add_middleware(Timing, histogram=latency)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)

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

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
                  for e in exc.errors()]
        where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        return error(422, f"invalid request: {where}", errors=errors)

    from api.routers import health, osrm, routing, scenarios, traffic
    from api.routers import hospitals as hospitals_router

    for module in (routing, hospitals_router, traffic, osrm, scenarios, health):
        app.include_router(module.router)

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Any:
        from fastapi import Response

        from api.routers.health import state_metrics

        body = state_metrics(request.app.state.live) + generate_latest(registry)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/", include_in_schema=False)
    def root() -> dict[str, Any]:
        return {"service": "gyrophare", "docs": "/docs", "health": "/health",
                "attribution": ATTRIBUTION}

    return app
