"""The live state of one service worker: engine objects plus the store they follow.

Every write goes through :meth:`LiveState.submit`: validate against the current state (nothing
is half-applied), append to the store (the write is acknowledged only once the store has it),
then apply every event up to and including it, in log order. A follower thread applies the
events other workers write. So all workers hold the same overlay and board, and serve the
same ``weights_version``.

When the store is unreachable, reads keep working on the last known state and say
``stale``; writes raise :class:`~api.store.StoreUnavailable` (the API answers 503).

Where a worker is
    A :class:`~api.store.Cursor`: the log generation it follows (``epoch``), the number of
    the last event it applied (``seq``) and that event's position. The store refuses a read
    or an append whose cursor is not the log's (:class:`~api.store.LogReset`).

Snapshots
    Every :attr:`LiveState.snapshot_every` events (0: never) the follower thread takes a
    snapshot of the applied state (:meth:`LiveState.snapshot`: traffic entries with
    ``weights_version`` and counters, hospital board with statuses, ambulances en route,
    levels and signal history) and hands it to the store, which keeps the latest and drops
    the events before it; :meth:`LiveState.stop` leaves one too. A worker starting loads
    the snapshot and replays only what follows, so its start-up time and memory follow the
    live state, not the history. A worker that fell behind the compacted part reloads the
    snapshot (:class:`~api.store.LogTrimmed`).

When the log was reset (healing)
    Redis restarted without persistence (or from an older file) gives a log that lacks
    events this worker applied. The worker that notices (any read or write checks) heals it
    at once, in this order of preference:

    1. no log at all, a generation nobody has written to yet that knows less than this
       worker, or this worker's generation ending before its position with nothing written
       over the lost part (its last event is the one this worker applied at that number):
       **re-seed** it, atomically, with a snapshot of this worker's state (a new generation
       whose events continue the numbering); other workers with the same state adopt it
       without reloading, those behind reload its snapshot;
    2. a generation seeded from this worker's generation at or beyond its position:
       **adopt** it;
    3. otherwise (others already wrote to a log that lacks this worker's events): **adopt**
       it all the same, so that every worker serves one state, and report the events lost.

    Writes that meet a reset are refused (503) until it is healed, then retried once. Each
    reset, its reason and what was done are logged (warning; error when events were lost)
    and shown under ``log`` in :meth:`LiveState.health`. Why re-seed rather than refuse
    writes until an operator acts: an emergency service cannot wait for someone to be
    woken up, and the surviving workers hold exactly the acknowledged state (they applied
    every write before acknowledging it); re-seeding from one of them restores it for
    every worker, including those started later.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from api.events import EVENT_TYPES, LogEvent, TrafficApply, parse_event
from api.store import (
    Cursor,
    Event,
    LogHead,
    LogReset,
    LogTrimmed,
    Record,
    Snapshot,
    Store,
    StoreCorrupt,
    StoreUnavailable,
)
from engine.dispatch import Dispatcher
from engine.graph import RoadGraph
from engine.hospitals import HospitalBoard, SaturationSignal
from engine.query import Router
from engine.timeutil import utcnow
from engine.traffic import TrafficOverlay

log = logging.getLogger("gyrophare.state")

#: ``format`` of :meth:`LiveState.snapshot` data
STATE_FORMAT = "gyrophare-state/1"
#: events between two snapshots (a restart replays at most about this many)
SNAPSHOT_EVERY = 1000
#: ids of the last events applied that a worker remembers (see LiveState._on_reset)
RECENT_IDS = 4096


@dataclass
class Counters:
    """Figures exposed on /metrics."""

    events_applied: int = 0
    events_written: int = 0
    write_rejected_store: int = 0
    follower_errors: int = 0
    last_event_applied_at: float = 0.0
    snapshots_taken: int = 0
    snapshots_loaded: int = 0
    log_resets: int = 0
    events_lost: int = 0  #: applied here, then missing from the log everyone follows
    events_missing: int = 0  #: numbers skipped in the log (deleted by something else)
    extra: dict[str, int] = field(default_factory=dict)


class LiveState:
    """Graph, router (with its traffic overlay), hospital board and dispatcher of one worker,
    kept in step with a :class:`~api.store.Store`."""

    def __init__(self, graph: RoadGraph, router: Router, board: HospitalBoard, store: Store,
                 *, follow_timeout_s: float = 0.05, snapshot_every: int = SNAPSHOT_EVERY
                 ) -> None:
        self.graph = graph
        self.router = router
        self.overlay = router.overlay
        self.board = board
        self.dispatcher = Dispatcher(router, board)
        self.store = store
        self.follow_timeout_s = follow_timeout_s
        self.snapshot_every = snapshot_every
        self.cursor: Cursor | None = None  #: None until attached to the log
        self.counters = Counters()
        self.resets: deque[dict[str, Any]] = deque(maxlen=10)  #: the last resets handled
        self.persistence: dict[str, Any] | None = None
        self._snapshot_seq = 0  #: the store's latest snapshot, as far as this worker knows
        #: (seq, event id) of the last events applied: is a log that lost events a prefix of
        #: what this worker applied, or did others write over the lost part?
        self._recent: deque[tuple[int, str]] = deque(maxlen=RECENT_IDS)
        self._initial = {"overlay": self.overlay.snapshot(), "board": board.to_dict()}
        self._apply_lock = threading.RLock()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._follower: threading.Thread | None = None
        self._store_ok = True
        self._store_error = ""
        self._listeners: list[Callable[[SaturationSignal], None]] = []
        board.subscribe(self._on_signal)

    @property
    def position(self) -> str | None:
        """Position of the last event applied (None: none, or the start of a generation)."""
        return self.cursor.position if self.cursor else None

    @property
    def seq(self) -> int:
        """Number of the last event applied (0: none)."""
        return self.cursor.seq if self.cursor else 0

    # ---------------------------------------------------------------- health
    @property
    def stale(self) -> bool:
        """True while the store is unreachable: answers use the last known state."""
        return not self._store_ok

    def health(self) -> dict[str, Any]:
        cursor = self.cursor
        return {"store": {**self.store.describe(), "ok": self._store_ok,
                          "error": self._store_error or None, "position": self.position,
                          "persistence": self.persistence},
                "log": {"attached": cursor is not None,
                        "epoch": cursor.epoch if cursor else None, "seq": self.seq,
                        "snapshot_seq": self._snapshot_seq,
                        "resets": self.counters.log_resets,
                        "events_lost": self.counters.events_lost,
                        "events_missing": self.counters.events_missing,
                        "last_reset": self.resets[-1] if self.resets else None},
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

    # ---------------------------------------------------------------- snapshots
    def snapshot(self) -> Snapshot:
        """The applied state at the current position (see the module notes). The apply lock
        is held only to take references (entries and board records are immutable); the
        serialisation happens after."""
        with self._apply_lock:
            cursor = self.cursor
            if cursor is None:
                raise StoreUnavailable("not attached to the state log yet")
            overlay = self.overlay.snapshot()
            board = self.board.copy()
        data = {"format": STATE_FORMAT, "graph": self._graph_key(), "overlay": overlay,
                "board": board.to_dict()}
        return Snapshot(cursor.epoch, cursor.seq, cursor.position, data)

    def _graph_key(self) -> dict[str, Any]:
        return {"name": self.graph.meta.get("name"), "sha256": self.graph.meta.get("sha256"),
                "edges": self.graph.n_edges}

    def _restore(self, data: dict[str, Any]) -> None:
        """Replace the overlay and board by a snapshot's (called under the apply lock)."""
        if data.get("format") != STATE_FORMAT:
            raise StoreCorrupt(f"the state snapshot has format {data.get('format')!r}, "
                               f"expected {STATE_FORMAT!r}")
        theirs, mine = data.get("graph") or {}, self._graph_key()
        if (theirs.get("sha256") and mine["sha256"] and theirs["sha256"] != mine["sha256"]) \
                or theirs.get("edges") != mine["edges"]:
            raise StoreCorrupt(
                f"the state snapshot was taken on another map ({theirs.get('name')}, "
                f"{theirs.get('edges')} edges) than this worker's ({mine['name']}, "
                f"{mine['edges']} edges): its traffic entries name that map's roads. Give "
                "each map its own state file or Redis prefix.")
        now = utcnow()
        try:
            self.overlay.restore(data["overlay"], at=now)
            self.board.restore(data["board"], at=now)
        except (KeyError, ValueError) as exc:
            raise StoreCorrupt(f"the state snapshot is malformed: {exc}") from exc
        self.router.prepare()

    def _load(self, head: LogHead) -> None:
        """Take the log's state: its snapshot (or, on a reload, the initial state when it has
        none), then a cursor right after it; the events that follow are applied by
        :meth:`catch_up`. Called under the apply lock."""
        assert head.epoch is not None
        self._recent.clear()
        snap = self.store.load_snapshot() if head.snapshot_seq else None
        if snap is not None and snap.epoch == head.epoch and snap.seq >= head.base:
            self._restore(snap.data)
            self.cursor = Cursor(head.epoch, snap.seq, snap.position)
            self.counters.snapshots_loaded += 1
            log.info("state log: loaded the snapshot at event %d (generation %s)", snap.seq,
                     head.epoch)
        else:
            if self.cursor is not None:  # a reload: back to the state before any event
                self._restore({"format": STATE_FORMAT, "graph": self._graph_key(),
                               **self._initial})
            self.cursor = Cursor(head.epoch, head.base, None)
            if head.base:
                self.counters.events_missing += head.base
                log.error("state log: events 1..%d are gone and there is no snapshot of "
                          "them; serving the events after them only", head.base)
        self._snapshot_seq = head.snapshot_seq

    def _maybe_snapshot(self) -> None:
        """Hand a snapshot to the store when ``snapshot_every`` events passed since the
        latest one (asking the store first: another worker may have taken it)."""
        cursor = self.cursor
        if cursor is None or self.snapshot_every <= 0 \
                or cursor.seq - self._snapshot_seq < self.snapshot_every:
            return
        self._snapshot_seq = max(self._snapshot_seq, self.store.head().snapshot_seq)
        if cursor.seq - self._snapshot_seq < self.snapshot_every:
            return
        self._save_snapshot()

    def _save_snapshot(self) -> bool:
        snap = self.snapshot()
        t0 = time.perf_counter()
        kept = self.store.save_snapshot(snap)
        if kept:
            self._snapshot_seq = snap.seq
            self.counters.snapshots_taken += 1
            log.info("state log: snapshot at event %d kept (%.0f ms)", snap.seq,
                     (time.perf_counter() - t0) * 1000)
        return kept

    # ---------------------------------------------------------------- applying events
    def _attach(self) -> None:
        """Find the log (create an empty one if there is none) and load its state."""
        with self._apply_lock:
            if self.cursor is not None:
                return
            head = self.store.head()
            if head.epoch is None:
                head = self.store.create()
                log.warning("state log: none found, created generation %s (%s). If this is "
                            "not the first start, the store lost its data (see store."
                            "persistence on /health)", head.epoch,
                            f"kept {head.seq} events of an older format" if head.seq
                            else "empty")
            self._load(head)

    def catch_up(self, *, until: str | None = None, block_s: float = 0.0) -> int:
        """Apply the store's events after our position (up to position ``until``), in
        order; heals or reloads first when the log was reset or compacted past us."""
        try:
            if self.cursor is None:
                self._attach()
            cursor = self.cursor
            assert cursor is not None
            try:
                records = self.store.read(cursor, until=until, block_s=block_s)
            except LogTrimmed:
                self._reload(cursor)
                cursor, records = self._read_again(until)
            except LogReset as exc:
                self._on_reset(exc, cursor)
                cursor, records = self._read_again(until)
        except StoreUnavailable as exc:
            self._mark(False, str(exc))
            raise
        self._mark(True)
        return self._apply_records(cursor.epoch, records)

    def _read_again(self, until: str | None) -> tuple[Cursor, list[Record]]:
        cursor = self.cursor
        assert cursor is not None
        if until is not None and cursor.position is not None and until <= cursor.position:
            until = None  # the position is of another generation now
        return cursor, self.store.read(cursor, until=until)

    def _apply_records(self, epoch: str, records: list[Record]) -> int:
        """Apply the records read in generation ``epoch`` that this worker has not applied
        yet (none if it moved to another generation meanwhile)."""
        applied = 0
        with self._apply_lock:
            for record in records:
                cursor = self.cursor
                assert cursor is not None
                if cursor.epoch != epoch:
                    break
                if record.seq == 0:  # not written by a store: skip, never stall on it
                    if cursor.position is None or record.position > cursor.position:
                        log.error("state log: entry %s is not an event of this service; "
                                  "skipped", record.position)
                        self.counters.follower_errors += 1
                        self.cursor = Cursor(cursor.epoch, cursor.seq, record.position)
                    continue
                if record.seq <= cursor.seq:
                    continue  # applied meanwhile by another thread
                if record.seq > cursor.seq + 1:
                    missing = record.seq - cursor.seq - 1
                    self.counters.events_missing += missing
                    log.error("state log: events %d..%d are missing (deleted outside this "
                              "service?); applying the next ones", cursor.seq + 1,
                              record.seq - 1)
                try:
                    self._apply(record.event)
                except Exception:  # validated before it was written: log, never stall
                    log.exception("event %s (%s) could not be applied", record.event.id,
                                  record.event.type)
                    self.counters.follower_errors += 1
                self.cursor = Cursor(cursor.epoch, record.seq, record.position)
                self._recent.append((record.seq, record.event.id))
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

    # ---------------------------------------------------------------- resets
    def _reload(self, failed: Cursor) -> None:
        """Behind the compacted part of the log: load its snapshot."""
        with self._apply_lock:
            if self.cursor != failed:
                return  # another thread did it
            head = self.store.head()
            if head.epoch != failed.epoch:
                raise LogReset("the state log changed generation", reason="replaced",
                               head=head)
            log.warning("state log: events after %d were compacted before this worker "
                        "applied them; loading the snapshot", failed.seq)
            self._load(head)

    def _on_reset(self, exc: LogReset, failed: Cursor) -> None:
        """Heal, adopt or reload after a reset (see the module notes)."""
        with self._apply_lock:
            if self.cursor != failed:
                return  # another thread handled it
            mine = failed
            head = self.store.head()
            for _ in range(5):  # each turn either ends or sees a log someone else changed
                if head.epoch == mine.epoch and exc.reason != "rollback" \
                        and head.seq >= mine.seq:
                    if head.base > mine.seq:
                        self._load(head)
                    return  # nothing wrong (any more)
                rolled_back = head.epoch == mine.epoch and head.seq < mine.seq
                if rolled_back:  # re-seed only if nobody wrote over the lost part
                    last = self.store.last_record()
                    if last is not None and last.seq != head.seq:
                        head = self.store.head()  # written meanwhile: look again
                        continue
                    applied = dict(self._recent)
                    rolled_back = last.event.id == applied.get(last.seq) if last is not None \
                        else head.seq == head.base
                if head.epoch is None or rolled_back \
                        or (head.epoch != mine.epoch and head.unwritten
                            and mine.seq > head.seed_seq):
                    new = self.store.create(seed=self._seed(),
                                            replace=None if head.epoch is None else head)
                    if new.parent == mine.epoch and new.seed_seq == mine.seq:
                        self.cursor = Cursor(str(new.epoch), mine.seq, None)
                        self._snapshot_seq = new.snapshot_seq
                        self._record(exc, mine, head, "re-seeded the log from this worker's "
                                     f"state at event {mine.seq} (generation {new.epoch})")
                        return
                    head = new  # someone else changed it first: look again
                    continue
                if head.epoch != mine.epoch and head.parent == mine.epoch \
                        and head.seed_seq >= mine.seq:
                    if head.seed_seq == mine.seq:  # seeded from a state equal to ours
                        self.cursor = Cursor(str(head.epoch), mine.seq, None)
                        self._snapshot_seq = head.snapshot_seq
                    else:
                        self._load(head)
                    self._record(exc, mine, head, f"adopted generation {head.epoch}, seeded "
                                 f"by another worker at event {head.seed_seq}")
                    return
                # others wrote to a log that lacks events this worker applied: follow it
                if head.epoch != mine.epoch and head.parent == mine.epoch:
                    lost = mine.seq - head.seed_seq
                elif head.epoch == mine.epoch:  # others wrote after a rollback
                    lost = mine.seq - self._common_seq(head)
                else:
                    lost = mine.seq
                self._load(head)
                self.counters.events_lost += lost
                self._record(exc, mine, head, f"adopted generation {head.epoch} (at event "
                             f"{head.seq}), already written to by others; about {lost} "
                             "events this worker had applied are not in it and are lost",
                             lost=lost)
                return
            raise LogReset("the state log keeps changing under this worker; retrying later",
                           reason=exc.reason, head=head)

    def _common_seq(self, head: LogHead) -> int:
        """The last event of the log (``head``'s generation, ours) that this worker applied
        too, judged by the event ids it remembers (older events count as common)."""
        applied = dict(self._recent)
        oldest = self._recent[0][0] if self._recent else head.seq + 1
        common = head.base
        try:
            records = self.store.read(Cursor(str(head.epoch), head.base))
        except StoreUnavailable:
            return common
        for record in records:
            if not record.seq:
                continue  # not an event of this service
            if record.seq < oldest or applied.get(record.seq) == record.event.id:
                common = max(common, record.seq)
            else:
                break
        return common

    def _seed(self) -> Snapshot:
        snap = self.snapshot()
        return Snapshot(snap.epoch, snap.seq, None, snap.data)

    def _record(self, exc: LogReset, mine: Cursor, head: LogHead, action: str, *,
                lost: int = 0) -> None:
        self.counters.log_resets += 1
        entry = {"at": utcnow().isoformat(), "reason": exc.reason,
                 "detected": str(exc), "was": {"epoch": mine.epoch, "seq": mine.seq},
                 "found": head.to_dict(), "action": action, "events_lost": lost}
        self.resets.append(entry)
        (log.error if lost else log.warning)("state log reset (%s): %s; %s", exc.reason, exc,
                                             action)

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
                self.validate(event, typed)
                record = self._append(event, typed)
            except StoreUnavailable as exc:
                self.counters.write_rejected_store += 1
                self._mark(False, str(exc))
                raise
            self.counters.events_written += 1
            try:
                self.catch_up(until=record.position)
            except StoreUnavailable:
                pass  # written and accepted: the follower applies it when the store answers
        return event

    def _append(self, event: Event, typed: LogEvent) -> Record:
        cursor = self.cursor
        assert cursor is not None
        try:
            return self.store.append(event, cursor=cursor)
        except LogReset as exc:  # not accepted: heal, then try once more on the healed log
            self._on_reset(exc, cursor)
            self.catch_up()
            self.validate(event, typed)
            assert self.cursor is not None
            return self.store.append(event, cursor=self.cursor)

    def validate(self, event: Event, typed: LogEvent | None = None) -> None:
        """Check an event against the current state without changing it (hospital and
        ambulance events are tried on a detached copy of the board: containers copied,
        records shared)."""
        typed = typed or parse_event(event.type, event.payload)
        if isinstance(typed, TrafficApply):
            self.overlay.validate(typed.changes_list(), at=event.at)
        elif typed.type == "traffic.remove":
            for entry_id in typed.ids:
                self.overlay.get(entry_id)
        else:
            typed.apply(self.overlay, self.board.copy(), event.at)

    # ---------------------------------------------------------------- follower
    def start(self) -> None:
        """Check the store's durability, load the snapshot and replay the log after it, then
        follow the log in a background thread."""
        self.persistence = self.store.persistence()
        if self.persistence.get("durable") is not True:
            log.warning("state store %s: %s. Acknowledged writes may not survive a restart "
                        "of the store; recommended (Redis): appendonly yes, appendfsync "
                        "everysec or always (README, Reliability)", self.store.name,
                        self.persistence.get("detail"))
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
                self._maybe_snapshot()
            except StoreUnavailable:
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)
            except Exception:
                log.exception("follower error")
                self.counters.follower_errors += 1
                self._stop.wait(0.5)

    def stop(self) -> None:
        """Stop following; leave a snapshot when events passed since the latest one (the
        next start replays less), then close the store."""
        self._stop.set()
        if self._follower is not None:
            self._follower.join(timeout=2)
        try:
            if self.cursor is not None and self._store_ok and self.snapshot_every > 0 \
                    and self.cursor.seq > max(
                    self._snapshot_seq, self.store.head().snapshot_seq):
                self._save_snapshot()
        except Exception:  # stopping never fails
            log.warning("state log: no snapshot at stop", exc_info=True)
        self.store.close()


def apply_event(event: Event, overlay: TrafficOverlay, board: HospitalBoard) -> Any:
    """Apply one logged write to an overlay and a board (what every worker does); the
    entry is validated as its typed event first (:class:`~api.events.InvalidEvent`)."""
    return parse_event(event.type, event.payload).apply(overlay, board, event.at)


__all__ = ["EVENT_TYPES", "SNAPSHOT_EVERY", "STATE_FORMAT", "Counters", "LiveState",
           "apply_event"]
