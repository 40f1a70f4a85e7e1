"""Response body of ``/health``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class GraphInfo(BaseModel):
    name: str | None = None
    nodes: int
    edges: int


class Health(BaseModel):
    status: Literal["ok", "degraded"] = Field(description="degraded: the state store is "
                                              "unreachable (HTTP 503), answers use the last "
                                              "known state")
    graph: GraphInfo
    store: dict[str, Any]
    weights_version: int
    stale: bool
    stale_hospitals: list[str]
    traffic_entries: int
    ambulances_en_route: int
