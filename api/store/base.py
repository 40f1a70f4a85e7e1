"""The store interface: an ordered event log in *generations*, with snapshots and an alert
mirror.

The log
    Every write is an :class:`Event` appended to the log; every worker applies the log in
    order. Each appended event gets a **sequence number** (``seq``: 1, 2, 3, ... with no
    gap) and a **position** (an opaque string, meaningful inside one generation only).

Generations
    A log belongs to a generation, named by a random ``epoch`` created with it. A worker
    follows one generation: it reads and appends with a :class:`Cursor` ``(epoch, seq,
    position)``, and the store refuses (:class:`LogReset`) any read or append whose epoch is
    not the log's, or whose ``seq`` is beyond the log's last one (the log lost events the
    worker applied: a Redis restarted without persistence, or from an older file). A new
    generation is either *empty* (first start) or *seeded* from a snapshot of a worker's
    applied state: its events then continue the numbering after the snapshot's ``seq``
    (:class:`LogHead` ``parent`` / ``seed_seq`` say which generation and how far).
    :mod:`api.state` decides what to do about a reset (re-seed, adopt, reload).

Snapshots and compaction
    A :class:`Snapshot` is a worker's applied state at a ``seq`` (``data`` is opaque to the
    store). The store keeps the latest one and may drop the events it covers; a reader
    behind the first event still kept gets :class:`LogTrimmed` and reloads the snapshot.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple


class StoreUnavailable(Exception):
    """The store cannot be reached: a write is NOT accepted (the API answers 503)."""


class StoreCorrupt(RuntimeError):
    """The store's data is damaged in a way that needs an operator (the message says where
    and how to repair); the service does not start on it."""


class LogReset(StoreUnavailable):
    """The log is not the one the reader or writer follows: it was reset (``reason``
    ``"reset"``: no log at all), replaced by another generation (``"replaced"``), or lost
    events the caller had applied (``"rollback"``). ``head`` is the log as it is now (None if
    it could not be read). ``rewritten_from``: for a rollback seen in the events, the first
    event number the log reused. A write refused for this reason is NOT accepted."""

    def __init__(self, message: str, *, reason: str, head: LogHead | None = None,
                 rewritten_from: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.head = head
        self.rewritten_from = rewritten_from


class LogTrimmed(StoreUnavailable):
    """The events right after the reader's position were compacted into the snapshot:
    reload the snapshot (:meth:`Store.load_snapshot`) and read on from it."""

    def __init__(self, message: str, *, head: LogHead | None = None) -> None:
        super().__init__(message)
        self.head = head


def new_epoch() -> str:
    """A fresh generation name."""
    return uuid.uuid4().hex[:16]


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


class Record(NamedTuple):
    """One event of the log as read: where it is, its number, the event."""

    position: str
    seq: int
    event: Event


@dataclass(frozen=True)
class Cursor:
    """Where a worker is: the generation it follows, the ``seq`` of the last event it applied
    (0: none), and that event's position (None: the start of the generation's events)."""

    epoch: str
    seq: int = 0
    position: str | None = None


@dataclass(frozen=True)
class LogHead:
    """The log as it is now.

    ``epoch`` None: there is no log (never created, or lost). ``seq``: the last event's
    number. ``base``: events up to ``base`` are no longer in the log (compacted into the
    snapshot, or before the seed). ``parent``/``seed_seq``: the generation this one was
    seeded from and the snapshot's seq (``parent`` None, ``seed_seq`` 0: created empty).
    ``snapshot_seq``: the seq of the latest snapshot (0: none). ``created_at``: ISO time.
    """

    epoch: str | None
    seq: int = 0
    base: int = 0
    parent: str | None = None
    seed_seq: int = 0
    snapshot_seq: int = 0
    created_at: str | None = None

    @property
    def unwritten(self) -> bool:
        """No event was appended since the generation was created or seeded."""
        return self.epoch is not None and self.seq == self.seed_seq

    def to_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "seq": self.seq, "base": self.base,
                "parent": self.parent, "seed_seq": self.seed_seq,
                "snapshot_seq": self.snapshot_seq, "created_at": self.created_at}


@dataclass(frozen=True)
class Snapshot:
    """A worker's applied state after event ``seq`` of generation ``epoch`` (``position``:
    that event's, None when it is the generation's seed)."""

    epoch: str
    seq: int
    position: str | None
    data: dict[str, Any]
    taken_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())


class Store(ABC):
    """An ordered log in generations, with its latest snapshot (see the module notes)."""

    name: str = "store"

    @abstractmethod
    def head(self) -> LogHead:
        """The log as it is now (``epoch`` None: no log)."""

    @abstractmethod
    def create(self, *, seed: Snapshot | None = None, replace: LogHead | None = None
               ) -> LogHead:
        """Start a new generation, atomically, and return the log's head afterwards.

        ``seed``: its snapshot (its events continue after ``seed.seq``; ``seed.epoch`` is
        recorded as the parent); None: an empty generation. ``replace``: the head of the log
        being replaced, which must still be exactly the log's (same epoch, unwritten or at
        the same ``seq``); None: only if there is no log. When the condition does not hold
        nothing is changed and the current head is returned (compare its epoch)."""

    @abstractmethod
    def append(self, event: Event, *, cursor: Cursor) -> Record:
        """Add an event; return it as a record once the store has accepted it (embedded:
        written and fsynced to its file; Redis: the server holds it, durability per its
        persistence settings). Raise :class:`LogReset` when the log is not ``cursor``'s
        generation or is behind ``cursor.seq``, :class:`StoreUnavailable` when it was not
        accepted."""

    @abstractmethod
    def read(self, cursor: Cursor, *, until: str | None = None,
             block_s: float = 0.0) -> list[Record]:
        """Events after ``cursor`` (up to position ``until``, inclusive), in order; waits up
        to ``block_s`` for new ones when there are none. :class:`LogReset` /
        :class:`LogTrimmed` as the module notes say."""

    @abstractmethod
    def last_record(self) -> Record | None:
        """The log's last event (None: no event since its base)."""

    @abstractmethod
    def load_snapshot(self) -> Snapshot | None:
        """The latest snapshot (None: none)."""

    @abstractmethod
    def save_snapshot(self, snapshot: Snapshot) -> bool:
        """Keep ``snapshot`` if it is of the current generation and newer than the one kept;
        the events it covers may then be dropped (each store says when). True if kept."""

    def publish_alerts(self, alerts: list[dict[str, Any]]) -> None:  # noqa: B027
        """Mirror saturation alerts (optional; the log already implies them)."""

    @abstractmethod
    def ping(self) -> bool:
        """True when the store answers now."""

    def persistence(self) -> dict[str, Any]:
        """How durable an acknowledged write is, for /health and start-up warnings:
        ``durable`` (True / False / None: unknown) and ``detail``."""
        return {"durable": None, "detail": "unknown"}

    def close(self) -> None:  # noqa: B027
        """Release connections."""

    def describe(self) -> dict[str, Any]:
        return {"kind": self.name}

    # ---------------------------------------------------------------- short-lived keys
    # A small key-value section beside the log, for request de-duplication
    # (:mod:`api.idempotency`): each store shares these keys exactly as widely as its log
    # (embedded: this process; Redis: every worker and instance). Values are strings; ``ttl_s``
    # is in seconds (fractions allowed); an expired key is as good as absent.

    def claim(self, key: str, value: str, ttl_s: float) -> bool:
        """Set ``key`` to ``value`` only if it is absent; True when this call set it."""
        raise NotImplementedError(f"{type(self).__name__} has no key-value section")

    def remember(self, key: str, value: str, ttl_s: float) -> None:
        """Set ``key`` to ``value`` (whether or not it is there)."""
        raise NotImplementedError(f"{type(self).__name__} has no key-value section")

    def recall(self, key: str) -> str | None:
        """The value of ``key``, or None when absent or expired."""
        raise NotImplementedError(f"{type(self).__name__} has no key-value section")

    def forget(self, key: str) -> None:
        """Remove ``key`` (nothing happens when it is absent)."""
        raise NotImplementedError(f"{type(self).__name__} has no key-value section")
