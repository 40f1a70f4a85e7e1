"""Health and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from api.deps import State
from api.models.health import Health

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, response_model_exclude_unset=True,
            responses={503: {"model": Health,
                             "description": "degraded: the state store is unreachable"}})
def health(state: State, response: Response) -> dict[str, Any]:
    """``ok`` or ``degraded`` (store unreachable: answers use the last known state), graph
    figures, store connectivity and durability, position in the state log and the resets
    handled (``log``), ``weights_version``, stale hospital statuses."""
    info = state.health()
    store_ok = info["store"]["ok"] and state.store.ping()
    stale_hospitals = [r.hospital_id for r in state.board.saturation()
                       if r.bed_type is None and r.stale]
    status = "ok" if store_ok else "degraded"
    if not store_ok:
        response.status_code = 503
    g = state.graph
    return {"status": status, "graph": {"name": g.meta.get("name"), "nodes": g.n_nodes,
                                        "edges": g.n_edges},
            "store": {**info["store"], "ok": store_ok}, "log": info["log"],
            "weights_version": info["weights_version"],
            "stale": not store_ok, "stale_hospitals": stale_hospitals,
            "traffic_entries": len(state.overlay.entries()),
            "ambulances_en_route": len(state.board.en_route())}


def state_metrics(state: State) -> bytes:
    """Prometheus text for the live state: store events, weights version, saturation levels
    (request latencies come from the app's middleware registry)."""
    registry = CollectorRegistry()
    c = state.counters
    for name, value, doc in (
        ("gyrophare_events_applied", c.events_applied, "store events applied by this worker"),
        ("gyrophare_events_written", c.events_written, "writes acknowledged by the store"),
        ("gyrophare_writes_rejected_store_unavailable", c.write_rejected_store,
         "writes refused because the store was unreachable"),
        ("gyrophare_follower_errors", c.follower_errors, "events that failed to apply"),
        ("gyrophare_weights_version", state.overlay.version, "traffic weights version"),
        ("gyrophare_store_up", 0 if state.stale else 1, "1 when the state store answers"),
        ("gyrophare_log_seq", state.seq, "number of the last state-log event applied"),
        ("gyrophare_snapshots_taken", c.snapshots_taken, "state snapshots this worker stored"),
        ("gyrophare_log_resets", c.log_resets, "state-log resets handled (healed or adopted)"),
        ("gyrophare_events_lost", c.events_lost,
         "events applied here then missing from the state log after a reset"),
    ):
        Gauge(name, doc, registry=registry).set(value)
    en_route = Gauge("gyrophare_en_route", "ambulances registered en route, per hospital",
                     ["hospital"], registry=registry)
    expired = Gauge("gyrophare_en_route_expired", "en-route registrations that expired (ETA "
                    "+ grace passed without an arrival or cancel), per hospital", ["hospital"],
                    registry=registry)
    counts: dict[str, int] = {}
    for entry in state.board.en_route():
        counts[entry.hospital_id] = counts.get(entry.hospital_id, 0) + 1
    for hid, n in counts.items():
        en_route.labels(hid).set(n)
    for hid, n in state.board.en_route_expired.items():
        expired.labels(hid).set(n)
    level = Gauge("gyrophare_hospital_level", "saturation level (0 normal .. 3 closed)",
                  ["hospital", "bed_type"], registry=registry)
    for row in state.board.saturation():
        level.labels(row.hospital_id, str(row.bed_type or "overall")).set(int(row.level))
    return generate_latest(registry)
