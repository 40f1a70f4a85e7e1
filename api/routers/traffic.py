"""Live traffic: segment speeds (JSON or OSRM CSV), closures, field reports, any batch."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.auth import CommandCentreRole, DispatcherRole
from api.deps import State
from api.models.errors import AUTH, error_responses
from api.models.traffic import Applied, Deleted, EntryCreated, TrafficState
from api.schemas import (
    CSV_SPEEDS_PATTERN,
    ChangesRequest,
    CheckedSource,
    ClosureFeature,
    DocumentedAs,
    Instant,
    ReportRequest,
    SpeedsRequest,
    component_ref,
)
from engine.changes import change_notes
from engine.traffic import change_from_dict, change_to_dict, closure_from_feature
from engine.traffic import parse_segment_speed_csv as parse_csv

router = APIRouter(prefix="/v1", tags=["traffic"])


def _apply(state: State, changes: list[dict[str, Any]]) -> dict[str, Any]:
    """Write a batch; the answer has the ids, the version and what was assumed (``notes``:
    a default radius...; numbered by change in a batch of several)."""
    event = state.submit("traffic.apply", {"changes": changes})
    written = event.payload["changes"]
    ids = [c["id"] for c in written]
    notes = [f"change {i}: {note}" if len(written) > 1 else note
             for i, c in enumerate(written) for note in change_notes(change_from_dict(c))]
    return {"ids": ids, "weights_version": state.overlay.version, "notes": notes}


_CSV_ONLY = "for a text/csv body (a JSON body gives its own)"


@router.post("/traffic/speeds", response_model=Applied, responses=error_responses(*AUTH, 503),
             openapi_extra={"requestBody": {"required": True, "content": {
    "application/json": {"schema": component_ref(SpeedsRequest)},
    "text/csv": {"schema": {"type": "string", "pattern": CSV_SPEEDS_PATTERN,
                            "description": "OSRM segment-speed CSV: from_osm_id,to_osm_id,"
                            "speed_kmh[,rate] per line (an optional header line first)"},
                 "example": "from_osm_id,to_osm_id,speed_kmh\n25239340,25239343,20\n"}}}})
async def speeds(request: Request, state: State, _: CommandCentreRole,
                 source: Annotated[CheckedSource | None, Query(
                     description="who says it, " + _CSV_ONLY)] = None,
                 starts_at: Annotated[Instant | None, Query(
                     description="valid from (default: when applied), " + _CSV_ONLY)] = None,
                 expires_at: Annotated[Instant | None, Query(
                     description="valid until (default: until removed), " + _CSV_ONLY)] = None,
                 ) -> dict[str, Any]:
    """Segment speeds as JSON (``speeds`` and/or ``ways``, at least one), or OSRM's
    segment-speed CSV as the body (``text/csv``, its validity window in the query string).
    Speeds are in (0, 250] km/h, on OSM segments and ways of the map; the window as in every
    traffic change (not already past, at most 5 years)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip()
    body = await request.body()
    if ctype in ("text/csv", "text/plain"):
        window = {key: value.isoformat() if isinstance(value, datetime) else value
                  for key, value in (("source", source), ("starts_at", starts_at),
                                     ("expires_at", expires_at)) if value is not None}
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                "the CSV body is not UTF-8 text") from None
        change = parse_csv(text, source="csv")
        data = change_to_dict(change)
        data.update(window)
        changes = [data]
    else:
        try:
            req = SpeedsRequest.model_validate_json(body)
        except ValidationError as exc:  # the app's 422 handler: ValidationErrorBody, as declared
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
        if not req.speeds and not req.ways:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                "give speeds (segments) or ways")
        changes = []
        if req.speeds:
            changes.append({"type": "SegmentSpeeds", **req.window(),
                            "speeds": [[int(a), int(b), float(v)] for a, b, v in req.speeds]})
        if req.ways:
            changes.append({"type": "WaySpeeds", **req.window(), "speeds": req.ways})
    return await run_in_threadpool(_apply, state, changes)


@router.post("/closures", status_code=status.HTTP_201_CREATED, response_model=EntryCreated,
             responses=error_responses(*AUTH, 503))
def closures(feature: Annotated[dict[str, Any], DocumentedAs(ClosureFeature)], state: State,
             _: CommandCentreRole) -> dict[str, Any]:
    """A closure as a GeoJSON Feature: Point (with ``properties.radius_m``: 25 m when not
    given, and ``notes`` says so), LineString or Polygon (closed rings, as GeoJSON requires:
    an unclosed ring is refused); validity in ``properties.starts_at`` / ``expires_at``
    (default: now until deleted; not already past, at most 5 years). Returns the closure's
    id."""
    change = closure_from_feature(feature)
    result = _apply(state, [change_to_dict(change)])
    entry = state.overlay.get(result["ids"][0])
    return {"id": entry.id, "edges": len(entry.edges),
            "weights_version": result["weights_version"], "notes": result["notes"]}


@router.delete("/closures/{entry_id}", response_model=Deleted,
               responses=error_responses(*AUTH, 404, 503))
def delete_closure(entry_id: str, state: State, _: CommandCentreRole) -> dict[str, Any]:
    entry = state.overlay.get(entry_id)
    state.submit("traffic.remove", {"ids": [entry.id]})
    return {"id": entry_id, "deleted": True, "weights_version": state.overlay.version}


@router.post("/reports", status_code=status.HTTP_201_CREATED, response_model=EntryCreated,
             responses=error_responses(*AUTH, 503))
def reports(body: ReportRequest, state: State, _: CommandCentreRole) -> dict[str, Any]:
    """A field report ("blocked" / "slowed" at a point), snapped to the nearest road."""
    lon, lat = body.location
    result = _apply(state, [{"type": "FieldReport", **body.window(), "lat": lat, "lon": lon,
                             "kind": body.kind, "factor": body.factor}])
    entry = state.overlay.get(result["ids"][0])
    return {"id": entry.id, "snapped": entry.geometry, "edges": len(entry.edges),
            "weights_version": result["weights_version"], "notes": result["notes"]}


@router.post("/traffic", status_code=status.HTTP_201_CREATED, response_model=Applied,
             responses=error_responses(*AUTH, 503))
def changes(body: ChangesRequest, state: State, _: CommandCentreRole) -> dict[str, Any]:
    """Any batch of changes (SegmentSpeeds, WaySpeeds, AreaFactor, ClassFactor, Closure,
    FieldReport, OpenBarriers), all or nothing."""
    return _apply(state, body.changes)


@router.get("/traffic", response_model=TrafficState, responses=error_responses(*AUTH))
def traffic(state: State, _: DispatcherRole, active_only: bool = False) -> dict[str, Any]:
    """Traffic entries and the current ``weights_version``."""
    return {"weights_version": state.overlay.version, "stale": state.stale,
            "entries": [e.to_dict() for e in state.overlay.entries(active_only=active_only)]}

