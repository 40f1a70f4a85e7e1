"""Response body of ``/health`` (the same shape with 200 ``ok`` and 503 ``degraded``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class GraphInfo(BaseModel):
    name: str | None = None
    nodes: int
    edges: int


class Persistence(BaseModel):
    """What survives a restart of the store (checked at start-up)."""

    model_config = ConfigDict(extra="allow")

    durable: bool | None = Field(description="acknowledged writes survive a restart of the "
                                 "store (None: could not be checked, e.g. CONFIG disabled)")
    detail: str = Field(description="in words, with what a crash may lose")
    appendonly: str | None = Field(None, description="redis: CONFIG GET appendonly")
    appendfsync: str | None = Field(None, description="redis: CONFIG GET appendfsync")
    save: str | None = Field(None, description="redis: CONFIG GET save (RDB snapshots)")


class StoreInfo(BaseModel):
    """The state store as this worker sees it; the fields after ``position`` depend on the
    store's kind (only those of the running store are sent)."""

    model_config = ConfigDict(extra="allow")  # a new store kind may describe itself more

    kind: str = Field(description="embedded or redis", examples=["redis"])
    ok: bool = Field(description="the store answers")
    error: str | None = Field(None, description="the last error talking to the store")
    position: str | None = Field(None, description="id of the last event this worker applied")
    events: int | None = Field(None, description="events in the log (None: store unreachable)")
    file: str | None = Field(None, description="embedded: its event file")
    url: str | None = Field(None, description="redis: its URL, password masked")
    prefix: str | None = Field(None, description="redis: the key prefix")
    persistence: Persistence | None = Field(None, description="durability of the store, "
                                            "checked at start-up")


class LogPosition(BaseModel):
    epoch: str | None = None
    seq: int


class LogResetInfo(BaseModel):
    """One reset of the state log this worker handled."""

    model_config = ConfigDict(extra="allow")

    at: str = Field(description="when it was handled (ISO 8601)")
    reason: str = Field(description="reset (no log), replaced (another generation) or "
                        "rollback (the log lost events this worker applied)")
    detected: str = Field(description="what was seen")
    was: LogPosition = Field(description="where this worker was")
    found: dict[str, object] = Field(description="the log as found")
    action: str = Field(description="what was done: re-seeded, adopted...")
    events_lost: int = Field(description="events this worker had applied that the log it "
                             "now follows does not have")


class LogInfo(BaseModel):
    """Where this worker is in the state log, and the resets it saw."""

    attached: bool = Field(description="false until the store answered once")
    epoch: str | None = Field(None, description="the log generation followed")
    seq: int = Field(description="number of the last event applied")
    snapshot_seq: int = Field(description="event number of the latest snapshot known")
    resets: int = Field(description="log resets handled since start")
    events_lost: int = Field(description="events applied here then missing from the log "
                             "after a reset (0 when every reset was healed)")
    events_missing: int = Field(description="event numbers the log skipped (deleted outside "
                                "the service)")
    last_reset: LogResetInfo | None = None


class Health(BaseModel):
    status: Literal["ok", "degraded"] = Field(description="degraded: the state store is "
                                              "unreachable (HTTP 503), answers use the last "
                                              "known state")
    graph: GraphInfo
    store: StoreInfo
    log: LogInfo
    weights_version: int
    stale: bool
    stale_hospitals: list[str]
    traffic_entries: int
    ambulances_en_route: int
