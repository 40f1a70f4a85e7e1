"""The live state of one service worker: engine objects plus the store they follow.

Every write goes through :meth:`LiveState.submit`: validate against the current state (nothing
is half-applied), append to the store (the write is acknowledged only once the store has it),
then apply every event up to and including it, in log order. A follower thread applies the
events other workers write. So all workers hold the same overlay and board, and serve the
same ``weights_version``.

When the store is unreachable, reads keep working on the last known state and say
``stale``; writes raise :class:`~api.store.StoreUnavailable` (the API answers 503).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from api.events import EVENT_TYPES, LogEvent, TrafficApply, parse_event
from api.store import Event, Store, StoreUnavailable
from engine.dispatch import Dispatcher
from engine.graph import RoadGraph
from engine.hospitals import HospitalBoard, SaturationSignal
from engine.query import Router
from engine.timeutil import utcnow
from engine.traffic import TrafficOverlay

log = logging.getLogger("gyrophare.state")


@dataclass
class Counters:
    """Figures exposed on /metrics."""

    events_applied: int = 0
    events_written: int = 0
    write_rejected_store: int = 0
    follower_errors: int = 0
    last_event_applied_at: float = 0.0
    extra: dict[str, int] = field(default_factory=dict)


class LiveState:
    """Graph, router (with its traffic overlay), hospital board and dispatcher of one worker,
    kept in step with a :class:`~api.store.Store`."""

    def __init__(self, graph: RoadGraph, router: Router, board: HospitalBoard, store: Store,
                 *, follow_timeout_s: float = 0.05) -> None:
        self.graph = graph
        self.router = router
        self.overlay = router.overlay
        self.board = board
        self.dispatcher = Dispatcher(router, board)
        self.store = store
        self.follow_timeout_s = follow_timeout_s
        self.position: str | None = None
        self.counters = Counters()
        self._apply_lock = threading.RLock()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._follower: threading.Thread | None = None
        self._store_ok = True
        self._store_error = ""
        self._listeners: list[Callable[[SaturationSignal], None]] = []
        board.subscribe(self._on_signal)

    # ---------------------------------------------------------------- health
    @property
    def stale(self) -> bool:
        """True while the store is unreachable: answers use the last known state."""
        return not self._store_ok

    def health(self) -> dict[str, Any]:
        return {"store": {**self.store.describe(), "ok": self._store_ok,
                          "error": self._store_error or None, "position": self.position},
                "weights_version": self.overlay.version, "stale": self.stale}

    # ---------------------------------------------------------------- signals fan-out
    def add_listener(self, fn: Callable[[SaturationSignal], None]) -> Callable[[], None]:
        self._listeners.append(fn)
        return lambda: self._listeners.remove(fn) if fn in self._listeners else None

    def _on_signal(self, signal: SaturationSignal) -> None:
        for fn in list(self._listeners):
            try:
                fn(signal)
            except Exception:  # a slow or gone SSE client never breaks the board
                log.exception("signal listener failed")

    # ---------------------------------------------------------------- applying events
    def catch_up(self, *, until: str | None = None, block_s: float = 0.0) -> int:
        """Apply the store's events after our position (up to ``until``), in order."""
        try:
            events = self.store.read_after(self.position, until=until, block_s=block_s)
        except StoreUnavailable as exc:
            self._mark(False, str(exc))
            raise
        self._mark(True)
        applied = 0
        with self._apply_lock:
            for position, event in events:
                if self.position is not None and position <= self.position:
                    continue  # applied meanwhile by another thread
                try:
                    self._apply(event)
                except Exception:  # validated before it was written: log, never stall
                    log.exception("event %s (%s) could not be applied", event.id, event.type)
                    self.counters.follower_errors += 1
                self.position = position
                applied += 1
        if applied:
            self.counters.events_applied += applied
            self.counters.last_event_applied_at = time.time()
            self.router.prepare()  # re-customize now, not on the next request
        return applied

    def _apply(self, event: Event) -> Any:
        return apply_event(event, self.overlay, self.board)

    def _mark(self, ok: bool, error: str = "") -> None:
        if ok != self._store_ok:
            log.warning("state store %s%s", "back" if ok else "unavailable: ", error)
        self._store_ok, self._store_error = ok, error

    # ---------------------------------------------------------------- writing
    def submit(self, event: LogEvent | str, payload: dict[str, Any] | None = None, *,
               at: datetime | None = None) -> Event:
        """Validate, write to the store, apply locally (with everything before it).

        ``event`` is a typed event (:mod:`api.events`), or its type name with its payload.

        Raises
        ------
        InvalidEvent, TrafficInputError, GyrophareError, ValueError
            Invalid write (nothing written, nothing applied).
        StoreUnavailable
            The store did not take it (nothing applied: the write is not accepted).
        """
        typed = parse_event(event, payload or {}) if isinstance(event, str) else event
        if isinstance(typed, TrafficApply):  # ids fixed by the writer: equal on every worker
            typed = TrafficApply(changes=[
                {**c, "id": c.get("id") or f"{c.get('type', 'change').lower()}-"
                 f"{uuid.uuid4().hex[:10]}"} for c in typed.changes])
        return self._write(typed, at or utcnow())

    def _write(self, typed: LogEvent, at: datetime) -> Event:
        event = Event(typed.type, typed.payload(), at)
        with self._write_lock:
            try:
                self.catch_up()  # validate against every write before ours, not a stale view
            except StoreUnavailable:
                self.counters.write_rejected_store += 1
                raise
            self.validate(event, typed)
            try:
                position = self.store.append(event)
            except StoreUnavailable as exc:
                self.counters.write_rejected_store += 1
                self._mark(False, str(exc))
                raise
            self.counters.events_written += 1
            try:
                self.catch_up(until=position)
            except StoreUnavailable:
                pass  # written and accepted: the follower applies it when the store answers
        return event

    def validate(self, event: Event, typed: LogEvent | None = None) -> None:
        """Check an event against the current state without changing it."""
        typed = typed or parse_event(event.type, event.payload)
        if isinstance(typed, TrafficApply):
            self.overlay.validate(typed.changes_list(), at=event.at)
        elif typed.type == "traffic.remove":
            for entry_id in typed.ids:
                self.overlay.get(entry_id)
        else:  # hospital and ambulance events: try them on a copy of the board
            typed.apply(self.overlay, HospitalBoard.from_dict(self.board.to_dict()), event.at)

    # ---------------------------------------------------------------- follower
    def start(self) -> None:
        """Replay the log, then follow it in a background thread."""
        try:
            self.catch_up()
        except StoreUnavailable:
            log.warning("state store unavailable at start: serving the map without live state")
        self._follower = threading.Thread(target=self._follow, name="gyrophare-follower",
                                          daemon=True)
        self._follower.start()

    def _follow(self) -> None:
        backoff = self.follow_timeout_s
        while not self._stop.is_set():
            try:
                self.catch_up(block_s=self.follow_timeout_s)
                backoff = self.follow_timeout_s
                if hasattr(self.board, "tick"):
                    self.board.tick(utcnow())
            except StoreUnavailable:
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)
            except Exception:
                log.exception("follower error")
                self.counters.follower_errors += 1
                self._stop.wait(0.5)

    def stop(self) -> None:
        self._stop.set()
        if self._follower is not None:
            self._follower.join(timeout=2)
        self.store.close()


def apply_event(event: Event, overlay: TrafficOverlay, board: HospitalBoard) -> Any:
    """Apply one logged write to an overlay and a board (what every worker does); the
    entry is validated as its typed event first (:class:`~api.events.InvalidEvent`)."""
    return parse_event(event.type, event.payload).apply(overlay, board, event.at)


__all__ = ["EVENT_TYPES", "Counters", "LiveState", "apply_event"]
