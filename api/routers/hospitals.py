"""Hospitals, saturation, alerts (JSON, CAP 1.2, Server-Sent Events)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import Response, StreamingResponse

from api.auth import CommandCentreRole, DispatcherRole
from api.deps import AppSettings, State
from api.models.errors import AUTH, error_responses, json_error_responses
from api.models.hospitals import (
    HospitalOut,
    HospitalStatusResponse,
    SaturationResponse,
    SignalOut,
)
from api.schemas import HospitalStatus, Instant
from engine.hospitals.board import SaturationSignal

router = APIRouter(prefix="/v1", tags=["hospitals"])


class EventStream(StreamingResponse):
    """Server-Sent Events."""

    media_type = "text/event-stream"


class CapXml(Response):
    """An OASIS CAP 1.2 document."""

    media_type = "application/cap+xml"


@router.get("/hospitals", response_model=list[HospitalOut], responses=error_responses(*AUTH))
def hospitals(state: State, _: DispatcherRole) -> list[HospitalOut]:
    """Every hospital on the board with its saturation rows."""
    rows = state.board.saturation()
    return [HospitalOut.of(h, rows) for h in state.board.hospitals()]


@router.get("/hospitals/{hospital_id}", response_model=HospitalOut,
            responses=error_responses(*AUTH, 404))
def hospital(hospital_id: str, state: State, _: DispatcherRole) -> HospitalOut:
    """One hospital with its saturation rows. 404: unknown id."""
    return HospitalOut.of(state.board.hospital(hospital_id),
                          state.board.saturation(hospital_id=hospital_id))


@router.put("/hospitals/{hospital_id}/status", response_model=HospitalStatusResponse,
            responses=error_responses(*AUTH, 404, 503))
def update_status(hospital_id: str, body: HospitalStatus, state: State,
                  _: CommandCentreRole) -> HospitalStatusResponse:
    """Report a hospital's status (EDXL-HAVE shape); returns its new saturation levels and the
    signals the change raised. A report refreshes the status (clears the stale flag); one
    that changes nothing is ``{"heartbeat": true}`` (an empty ``{}`` is refused). 404:
    unknown id; 422: unknown bed type, bad count or status, empty report (nothing is
    written); 503: not stored."""
    state.board.hospital(hospital_id)  # 404 before anything is written
    before = {s.id for s in state.board.signals()}
    event = state.submit("hospital.status", {
        "hospital_id": hospital_id, "beds": body.beds_payload(),
        "ed_status": body.ed_status, "offload_status": body.offload_status})
    raised = [s for s in state.board.signals(since=event.at)
              if s.id not in before and s.hospital_id == hospital_id]
    return HospitalStatusResponse.after(
        state.board.hospital(hospital_id), state.board.saturation(hospital_id=hospital_id),
        raised, weights_version=state.overlay.version)


@router.get("/saturation", response_model=SaturationResponse, responses=error_responses(*AUTH))
def saturation(state: State, _: DispatcherRole) -> SaturationResponse:
    """Saturation table: per hospital the overall row, then one row per bed type."""
    return SaturationResponse.model_validate(
        {"rows": [r.to_dict() for r in state.board.saturation()], "stale": state.stale})


@router.get("/alerts", response_model=list[SignalOut], responses=error_responses(*AUTH))
def alerts(state: State, _: DispatcherRole,
           since: Annotated[Instant | None,
                            Query(description="only signals at or after this time (ISO 8601 "
                                  "with time zone, e.g. 2026-11-27T08:00:00Z; not a Unix "
                                  "time)")] = None
           ) -> list[SignalOut]:
    """Saturation signals kept in the board's bounded history, oldest first."""
    return [SignalOut.of(s) for s in state.board.signals(since=since)]


_SSE_DOC = ("One ``saturation`` event per level change, as it happens: ``id:`` the signal id, "
            "``event: saturation``, ``data:`` the signal as JSON (the schema of "
            "``GET /v1/alerts`` items); a comment line every 15 s keeps the connection alive.")


@router.get("/alerts/stream", response_class=EventStream,
            responses={200: {"description": _SSE_DOC,
                             "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                       **json_error_responses(*AUTH)})
async def alert_stream(request: Request, state: State, _: DispatcherRole) -> EventStream:
    """Server-Sent Events: one ``saturation`` event (JSON) per level change, as it happens."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[SaturationSignal] = asyncio.Queue(maxsize=1000)

    def push(signal: SaturationSignal) -> None:
        loop.call_soon_threadsafe(_offer, queue, signal)

    remove = state.add_listener(push)

    async def events() -> AsyncIterator[str]:
        try:
            yield ": gyrophare saturation alerts\n\n"
            while True:
                if await request.is_disconnected():
                    break
                try:
                    signal = await asyncio.wait_for(queue.get(), timeout=15.0)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                data = json.dumps(signal.to_dict())
                yield f"id: {signal.id}\nevent: saturation\ndata: {data}\n\n"
        finally:
            remove()

    return EventStream(events(), headers={"Cache-Control": "no-cache",
                                          "X-Accel-Buffering": "no"})


def _offer(queue: asyncio.Queue[SaturationSignal], signal: SaturationSignal) -> None:
    if not queue.full():
        queue.put_nowait(signal)


@router.get("/alerts/{alert_id}.cap", response_class=CapXml,
            responses={200: {"description": "the signal as an OASIS CAP 1.2 alert; status "
                                            "Exercise for a demonstration facility",
                             "content": {"application/cap+xml": {"schema": {"type": "string"}}}},
                       **json_error_responses(*AUTH, 404)})
def alert_cap(alert_id: str, state: State, settings: AppSettings, _: DispatcherRole) -> CapXml:
    """One alert as an OASIS CAP 1.2 document. 404: no such signal in the history."""
    signal = state.board.signal(alert_id)
    if signal is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alert with id {alert_id!r}")
    return CapXml(signal.to_cap(sender=settings.sender, status=None))
