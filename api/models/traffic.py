"""Response bodies of the live-traffic endpoints."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Applied(BaseModel):
    """A traffic batch accepted and applied."""

    ids: list[str] = Field(description="ids of the new entries, in the order sent")
    weights_version: int
    notes: list[str] = Field(default_factory=list, description="what was assumed or ignored "
                             "(e.g. the default radius of a Point closure given none), in "
                             "words; 'change i: ...' in a batch")


class EntryCreated(BaseModel):
    """One closure or field report accepted."""

    id: str
    edges: int = Field(description="road pieces (directed) it touches")
    weights_version: int
    snapped: dict[str, Any] | None = Field(None, description="field reports: the road point "
                                                             "the report was snapped to")
    notes: list[str] = Field(default_factory=list, description="what was assumed or ignored "
                             "(e.g. the default radius of a Point closure given none), in "
                             "words")


class Deleted(BaseModel):
    id: str
    deleted: bool = True
    weights_version: int


class Entry(BaseModel):
    """A traffic entry as the overlay holds it."""

    id: str
    type: str = Field(description="the change type (Closure, SegmentSpeeds, ...)")
    kind: str = Field(description="speed, factor, closure or open")
    source: str
    starts_at: str
    expires_at: str | None = None
    edges: int
    note: str = ""
    geometry: dict[str, Any] | None = None


class TrafficState(BaseModel):
    weights_version: int
    stale: bool = Field(description="the state store is unreachable: the last known state")
    entries: list[Entry]
