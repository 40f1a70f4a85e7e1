"""Routes, dispatch, ambulances en route, coverage."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from api.auth import CommandCentreRole, DispatcherRole
from api.deps import State
from api.models.errors import AUTH, error_responses
from api.models.hospitals import EnRouteOut
from api.models.routing import (
    AmbulanceEvent,
    CoverageResponse,
    DispatchResponse,
    RouteResponse,
)
from api.responses import FastJSON
from api.schemas import (
    AmbulanceId,
    ArrivedRequest,
    CoverageRequest,
    DispatchRequest,
    RouteRequest,
    latlon,
)
from api.store import StoreUnavailable
from engine.alternatives import search_alternatives
from engine.dispatch import DispatchPolicy, Need, signal_plan
from engine.query import Route
from engine.timeutil import utcnow

router = APIRouter(prefix="/v1", tags=["routing"])

#: An ambulance id in a URL: refused with 422 and the rule (not 404) when malformed.
AmbulancePath = Annotated[AmbulanceId, Path(description="the ambulance's id (1 to 64 "
                                            "characters: letters, digits, '.', '_', ':', '-')")]


@router.post("/route", response_class=FastJSON, response_model=RouteResponse,
             responses=error_responses(*AUTH, 404))
def route(body: RouteRequest, state: State, _: DispatcherRole) -> FastJSON:
    """A route with both ETAs (priority and normal), geometry, steps, signal pre-emption plan;
    with ``alternatives: N`` also up to N alternative routes, each with its own plan;
    ``status: "unreachable"`` (200) when no allowed path joins the two points. 404: unknown
    ``destination_hospital``; 422: a point off the road network."""
    at = body.departure or utcnow()
    target = body.target()
    dest = state.board.hospital(target).destination if isinstance(target, str) else target
    routes = state.router.alternatives(  # the best route first (none: unreachable)
        latlon(body.origin), dest, body.alternatives, profile=body.profile,
        metric=body.metric, at=at, contraflow=body.contraflow,
        restricted_turns=body.restricted_turns,
        algorithm=body.algorithm) if body.alternatives else []
    result = routes[0] if routes else state.router.route(
        latlon(body.origin), dest, profile=body.profile, metric=body.metric, at=at,
        contraflow=body.contraflow, restricted_turns=body.restricted_turns,
        algorithm=body.algorithm)
    out = (result.to_dict(language=body.language) if isinstance(result, Route)
           else result.to_dict())
    if isinstance(result, Route):
        out["signal_plan"] = [s.to_dict() for s in signal_plan(result, departure=at)]
        if body.alternatives:
            out["alternatives"] = [
                {**alt.to_dict(language=body.language),
                 "signal_plan": [s.to_dict() for s in signal_plan(alt, departure=at)]}
                for alt in routes[1:]]
    out["stale"] = state.stale
    return FastJSON(out)  # pre-serialised (orjson): the hot path skips response validation


@router.post("/dispatch", response_class=FastJSON, response_model=DispatchResponse,
             responses=error_responses(*AUTH, 409))
def dispatch(body: DispatchRequest, state: State, _: DispatcherRole) -> FastJSON:
    """Choose the hospital (ETA and saturation), route there, plan the signals, and register
    the ambulance as on its way (unless ``register`` is false or the store is down: then
    ``registered`` is false and ``warning`` says why); ``alternatives: N`` adds up to N
    alternative routes to the chosen hospital, as ``POST /v1/route``. 409: no hospital can
    take the patient, or ``ambulance_id`` is already en route; 422: unknown bed type, a point
    off the road."""
    at = utcnow()
    need = Need(bed_type=body.need.bed_type, capability=body.need.capability,
                severity=body.need.severity)
    ambulances = ({k: latlon(v) for k, v in body.ambulances.items()}
                  if body.ambulances else None)
    decision = state.dispatcher.dispatch(
        latlon(body.incident), need, at=at, ambulances=ambulances, register=False,
        policy=DispatchPolicy(mode=body.policy), contraflow=body.contraflow,
        restricted_turns=body.restricted_turns, ambulance_id=body.ambulance_id)
    out: dict[str, Any] = {**decision.to_dict(), "stale": state.stale}
    if body.alternatives:  # to the chosen hospital, on the weights the decision used
        weights = state.router.weights("ambulance", at=at, contraflow=body.contraflow,
                                       restricted_turns=body.restricted_turns)
        found = search_alternatives(state.router, decision.route, weights, body.alternatives)
        out["alternatives"] = [
            {**alt.to_dict(), "signal_plan": [s.to_dict() for s in signal_plan(alt, departure=at)]}
            for alt in found.routes[1:]]
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
    return FastJSON(out)  # pre-serialised (orjson): two routes in one body


@router.get("/ambulances", response_model=list[EnRouteOut], responses=error_responses(*AUTH))
def ambulances(state: State, _: DispatcherRole) -> list[EnRouteOut]:
    """Ambulances on their way to a hospital, in registration order, each with the time its
    registration expires (``expires_at``: ETA plus the board's grace, 30 min by default; an
    ambulance neither arrived nor cancelled by then is no longer counted)."""
    board = state.board
    return [EnRouteOut.of(e, expires_at=board.expires_at(e))
            for e in board.en_route(at=utcnow())]


@router.post("/ambulances/{ambulance_id}/arrived", response_model=AmbulanceEvent,
             responses=error_responses(*AUTH, 404, 503))
def arrived(ambulance_id: AmbulancePath, state: State, _: DispatcherRole,
            body: ArrivedRequest | None = None) -> AmbulanceEvent:
    """The ambulance reached the hospital (the patient takes a bed unless ``admit`` is false;
    also after its registration expired). 404: not en route; 422: malformed id; 503: not
    stored."""
    event = state.submit("ambulance.arrived", {"ambulance_id": ambulance_id,
                                               "admit": body.admit if body else True})
    return AmbulanceEvent(ambulance_id=ambulance_id, status="arrived", event=event.id)


@router.post("/ambulances/{ambulance_id}/cancel", response_model=AmbulanceEvent,
             responses=error_responses(*AUTH, 404, 503))
def cancel(ambulance_id: AmbulancePath, state: State, _: DispatcherRole) -> AmbulanceEvent:
    """The ambulance no longer goes to its hospital (diverted, patient not transported).
    404: not en route (or its registration expired: the message says when); 422: malformed
    id; 503: not stored."""
    event = state.submit("ambulance.cancel", {"ambulance_id": ambulance_id})
    return AmbulanceEvent(ambulance_id=ambulance_id, status="cancelled", event=event.id)


@router.delete("/ambulances/{ambulance_id}", response_model=AmbulanceEvent,
               responses=error_responses(*AUTH, 404, 503))
def clear(ambulance_id: AmbulancePath, state: State, _: CommandCentreRole) -> AmbulanceEvent:
    """Command centre: clear an en-route registration nobody closed (the crew forgot to
    report its arrival, the dispatch was a mistake...): the ambulance stops being counted at
    its hospital at once, the saturation signal's reason says an operator cleared it. List
    them with ``GET /v1/ambulances``. 404: not en route; 422: malformed id; 503: not
    stored."""
    event = state.submit("ambulance.cancel", {"ambulance_id": ambulance_id,
                                              "note": "cleared by an operator"})
    return AmbulanceEvent(ambulance_id=ambulance_id, status="cleared", event=event.id)


@router.post("/coverage", response_model=CoverageResponse, responses=error_responses(*AUTH))
def coverage(body: CoverageRequest, state: State, _: DispatcherRole) -> CoverageResponse:
    """Road reachable within ``minutes`` from the nearest station, under current traffic.
    422: a station off the road network."""
    result = state.dispatcher.coverage([latlon(s) for s in body.stations],
                                       minutes=body.minutes, profile=body.profile)
    return CoverageResponse.of(result, stale=state.stale)
