"""The store interface: an append-only, ordered event log plus an alert mirror."""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


class StoreUnavailable(Exception):
    """The store cannot be reached: a write is NOT accepted (the API answers 503)."""


@dataclass(frozen=True)
class Event:
    """One write, as every worker applies it: a type, a JSON payload, the time it happened."""

    type: str
    payload: dict[str, Any]
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "payload": self.payload, "at": self.at.isoformat(),
                "id": self.id}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        return cls(type=data["type"], payload=data["payload"],
                   at=datetime.fromisoformat(data["at"]), id=data["id"])


class Store(ABC):
    """An ordered log. Positions are opaque strings that sort in log order per store."""

    name: str = "store"

    @abstractmethod
    def append(self, event: Event) -> str:
        """Add an event; return its position once the store has accepted it (embedded: written
        and fsynced to its file; Redis: the server holds it, durability per its persistence
        settings — deploy with ``appendonly yes``). Raise :class:`StoreUnavailable` when it
        was not accepted."""

    @abstractmethod
    def read_after(self, position: str | None, *, until: str | None = None,
                   block_s: float = 0.0) -> list[tuple[str, Event]]:
        """Events after ``position`` (all with ``None``), in order, up to ``until``;
        waits up to ``block_s`` for new ones when there are none."""

    def publish_alerts(self, alerts: list[dict[str, Any]]) -> None:  # noqa: B027
        """Mirror saturation alerts (optional; the log already implies them)."""

    @abstractmethod
    def ping(self) -> bool:
        """True when the store answers now."""

    def close(self) -> None:  # noqa: B027
        """Release connections."""

    def describe(self) -> dict[str, Any]:
        return {"kind": self.name}
