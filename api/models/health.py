"""Response body of ``/health`` (the same shape with 200 ``ok`` and 503 ``degraded``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class GraphInfo(BaseModel):
    name: str | None = None
    nodes: int
    edges: int


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


class Health(BaseModel):
    status: Literal["ok", "degraded"] = Field(description="degraded: the state store is "
                                              "unreachable (HTTP 503), answers use the last "
                                              "known state")
    graph: GraphInfo
    store: StoreInfo
    weights_version: int
    stale: bool
    stale_hospitals: list[str]
    traffic_entries: int
    ambulances_en_route: int
