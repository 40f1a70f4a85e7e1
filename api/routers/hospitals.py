"""Hospitals, saturation, alerts (JSON, CAP 1.2, Server-Sent Events)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import Response, StreamingResponse

from api.auth import CommandCentreRole, DispatcherRole
from api.deps import AppSettings, State
from api.schemas import HospitalStatus
from engine.hospitals import SaturationSignal

router = APIRouter(prefix="/v1", tags=["hospitals"])


def _hospital(state: State, hospital_id: str) -> dict[str, Any]:
    h = state.board.hospital(hospital_id)
    rows = [r.to_dict() for r in state.board.saturation() if r.hospital_id == hospital_id]
    return {**h.to_dict(), "location": [h.lon, h.lat],
            "entrance": None if h.entrance is None else [h.entrance[1], h.entrance[0]],
            "saturation": rows}


@router.get("/hospitals")
def hospitals(state: State, _: DispatcherRole) -> list[dict[str, Any]]:
    return [_hospital(state, h.id) for h in state.board.hospitals()]


@router.get("/hospitals/{hospital_id}")
def hospital(hospital_id: str, state: State, _: DispatcherRole) -> dict[str, Any]:
    return _hospital(state, hospital_id)


@router.put("/hospitals/{hospital_id}/status")
def update_status(hospital_id: str, body: HospitalStatus, state: State,
                  _: CommandCentreRole) -> dict[str, Any]:
    """Report a hospital's status (EDXL-HAVE shape); returns its new saturation levels and the
    signals the change raised."""
    state.board.hospital(hospital_id)  # 404 before anything is written
    before = {s.id for s in state.board.signals()}
    event = state.submit("hospital.status", {
        "hospital_id": hospital_id, "beds": body.beds_payload(),
        "ed_status": body.ed_status, "offload_status": body.offload_status})
    new = [s.to_dict() for s in state.board.signals(since=event.at) if s.id not in before
           and s.hospital_id == hospital_id]
    return {**_hospital(state, hospital_id), "signals": new,
            "weights_version": state.overlay.version}


@router.get("/saturation")
def saturation(state: State, _: DispatcherRole) -> dict[str, Any]:
    """Saturation table: per hospital the overall row, then one row per bed type."""
    return {"rows": [r.to_dict() for r in state.board.saturation()], "stale": state.stale}


@router.get("/alerts")
def alerts(state: State, _: DispatcherRole,
           since: Annotated[datetime | None, Query(description="ISO 8601 with time zone")]
           = None) -> list[dict[str, Any]]:
    if since is not None and since.tzinfo is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            "since needs a time zone, e.g. 2026-11-27T08:00:00Z")
    return [s.to_dict() for s in state.board.signals(since=since)]


@router.get("/alerts/stream")
async def alert_stream(request: Request, state: State, _: DispatcherRole) -> StreamingResponse:
    """Server-Sent Events: one ``saturation`` event (JSON) per level change, as it happens."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[SaturationSignal] = asyncio.Queue(maxsize=1000)

    def push(signal: SaturationSignal) -> None:
        loop.call_soon_threadsafe(_offer, queue, signal)

    remove = state.add_listener(push)

    async def events():
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

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _offer(queue: asyncio.Queue, signal: SaturationSignal) -> None:
    if not queue.full():
        queue.put_nowait(signal)


@router.get("/alerts/{alert_id}.cap", response_class=Response,
            responses={200: {"content": {"application/cap+xml": {}}}})
def alert_cap(alert_id: str, state: State, settings: AppSettings, _: DispatcherRole) -> Response:
    """One alert as an OASIS CAP 1.2 document."""
    for s in state.board.signals():
        if s.id == alert_id:
            status_ = "Exercise" if s.demo else "Actual"
            return Response(s.to_cap(sender=settings.sender, status=status_),
                            media_type="application/cap+xml")
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alert with id {alert_id!r}")
