"""Routes, dispatch, ambulances en route, coverage."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException, status

from api.auth import DispatcherRole
from api.deps import State
from api.responses import FastJSON
from api.schemas import (
    ArrivedRequest,
    CoverageRequest,
    DispatchRequest,
    RouteRequest,
    latlon,
)
from api.store import StoreUnavailable
from engine.dispatch import DispatchPolicy, Need, signal_plan
from engine.timeutil import utcnow

router = APIRouter(prefix="/v1", tags=["routing"])
log = logging.getLogger("gyrophare.api")


@router.post("/route", response_class=FastJSON)
def route(body: RouteRequest, state: State, _: DispatcherRole) -> FastJSON:
    """A route with both ETAs (priority and normal), geometry, steps, signal pre-emption plan."""
    if (body.destination is None) == (body.destination_hospital is None):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            "give exactly one of destination or destination_hospital")
    at = body.departure or utcnow()
    dest = (state.board.hospital(body.destination_hospital).destination
            if body.destination_hospital is not None else latlon(body.destination))
    result = state.router.route(latlon(body.origin), dest, profile=body.profile,
                                metric=body.metric, at=at, contraflow=body.contraflow,
                                restricted_turns=body.restricted_turns,
                                algorithm=body.algorithm)
    out = result.to_dict()
    if result.reachable:
        out["signal_plan"] = [s.to_dict() for s in signal_plan(result, departure=at)]
    out["stale"] = state.stale
    return FastJSON(out)


@router.post("/dispatch")
def dispatch(body: DispatchRequest, state: State, _: DispatcherRole) -> dict[str, Any]:
    """Choose the hospital (ETA and saturation), route there, plan the signals, and register
    the ambulance as on its way (unless ``register`` is false or the store is down)."""
    at = utcnow()
    need = Need(bed_type=body.need.bed_type, capability=body.need.capability,
                severity=body.need.severity)
    ambulances = ({k: latlon(v) for k, v in body.ambulances.items()}
                  if body.ambulances else None)
    decision = state.dispatcher.dispatch(
        latlon(body.incident), need, at=at, ambulances=ambulances, register=False,
        policy=DispatchPolicy(mode=body.policy), contraflow=body.contraflow,
        restricted_turns=body.restricted_turns, ambulance_id=body.ambulance_id)
    out = decision.to_dict()
    out["stale"] = state.stale
    if body.register_en_route:
        record = decision.en_route()
        try:
            state.submit("ambulance.en_route", record.payload(), at=at)
            out["ambulance_id"], out["registered"] = record.ambulance_id, True
        except StoreUnavailable as exc:
            out["registered"] = False
            out["stale"] = True
            out["warning"] = (f"the ambulance could not be registered as en route: {exc}; "
                              "the decision used the last known hospital load")
    return out


@router.get("/ambulances")
def ambulances(state: State, _: DispatcherRole) -> list[dict[str, Any]]:
    """Ambulances on their way to a hospital."""
    return [e.to_dict() for e in state.board.en_route()]


@router.post("/ambulances/{ambulance_id}/arrived")
def arrived(ambulance_id: str, state: State, _: DispatcherRole,
            body: ArrivedRequest | None = None) -> dict[str, Any]:
    """The ambulance reached the hospital (the patient takes a bed unless ``admit`` is false)."""
    event = state.submit("ambulance.arrived", {"ambulance_id": ambulance_id,
                                               "admit": body.admit if body else True})
    return {"ambulance_id": ambulance_id, "status": "arrived", "event": event.id}


@router.post("/ambulances/{ambulance_id}/cancel")
def cancel(ambulance_id: str, state: State, _: DispatcherRole) -> dict[str, Any]:
    event = state.submit("ambulance.cancel", {"ambulance_id": ambulance_id})
    return {"ambulance_id": ambulance_id, "status": "cancelled", "event": event.id}


@router.post("/coverage")
def coverage(body: CoverageRequest, state: State, _: DispatcherRole) -> dict[str, Any]:
    """Road reachable within ``minutes`` from the nearest station, under current traffic."""
    result = state.dispatcher.coverage([latlon(s) for s in body.stations],
                                       minutes=body.minutes, profile=body.profile)
    return {**result.to_dict(), "stale": state.stale}

