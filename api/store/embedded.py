"""The embedded store: the event log in memory, appended to a local JSON-lines file.

One worker only (the file is not shared between processes). A restart loads the latest
snapshot and replays the events after it, so hospital statuses, traffic entries and
ambulances on their way survive it.

File format
    Line 1 is a header: ``{"gyrophare_log": 2, "epoch": ..., "base": N, "snapshot": ...}``
    (the generation, the number of events compacted away, the latest snapshot or null).
    Every further line is one event (:meth:`Event.to_dict`), event ``base + i`` on line
    ``1 + i``; positions are those numbers, zero-padded. A file of an older version (events
    only, no header) is read as such and rewritten with a header on open.

Durability (fsync policy)
    :meth:`EmbeddedStore.append` writes the event's line in one ``write`` and calls
    ``fdatasync`` before it returns: an acknowledged write is on the disk. A compaction
    (:meth:`save_snapshot`) writes the new file next to the old one, fsyncs it, renames it
    over the old one (``os.replace``, atomic) and fsyncs the directory: a crash at any point
    leaves either the old file or the new one, never a mix.

Damage
    A crash or a full disk can leave a torn last line (a write that was never
    acknowledged). On open it is cut off, appended to ``<file>.corrupt`` for inspection and
    logged; the next write starts on a clean line. A failed write is cut off the same way
    before the next one. An unreadable line *followed by other lines* is not a torn write:
    start-up stops (:class:`StoreCorrupt`) with the line number and how to repair.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from api.store.base import (
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
    new_epoch,
)

log = logging.getLogger("gyrophare.store.embedded")

HEADER_KEY = "gyrophare_log"
FILE_VERSION = 2


def _sync(fd: int) -> None:
    (getattr(os, "fdatasync", None) or os.fsync)(fd)


def _sync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # not supported here (e.g. some platforms): the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class EmbeddedStore(Store):
    """The log of one worker, in memory and (with ``path``) in a JSON-lines file.

    Raises
    ------
    StoreCorrupt
        The file has an unreadable line before its last one (see the module notes).
    """

    name = "embedded"

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._cond = threading.Condition()
        self._fd: int | None = None
        self._good_size = 0  #: bytes of the file up to the last acknowledged line
        self._dirty = False  #: a failed write may have left a fragment after _good_size
        self._epoch = new_epoch()
        self._created_at = datetime.now(UTC).isoformat()
        self._parent: str | None = None
        self._seed_seq = 0
        self._base = 0  #: events before the first one kept
        self._events: list[Event] = []  #: events base+1 .. base+len
        self._snapshot: Snapshot | None = None
        self.torn_tails = 0  #: torn last lines cut off on open
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists():
                self._load()
            else:
                self._rewrite()

    # ---------------------------------------------------------------- the file
    def _load(self) -> None:
        assert self.path is not None
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        tail = lines.pop()  # what follows the last newline: b"" for a clean file
        cut: int | None = len(data) - len(tail) if tail else None
        offset, header, events, legacy = 0, None, [], False
        for i, raw in enumerate(lines):
            lineno, start = i + 1, offset
            offset += len(raw) + 1
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
                if not isinstance(obj, dict):
                    raise ValueError("not a JSON object")
                if i == 0 and HEADER_KEY in obj:
                    header = obj
                    continue
                events.append(Event.from_dict(obj))
            except (ValueError, KeyError, TypeError) as exc:
                if i == len(lines) - 1 and not tail:  # the last line: a torn write
                    cut = start
                    break
                raise StoreCorrupt(self._corrupt_message(lineno, start, exc)) from None
        if header is None:
            legacy = True
        else:
            self._read_header(header)
        self._events = events
        if cut is not None:
            self._cut_tail(cut, len(data))
        self._good_size = cut if cut is not None else len(data)
        if legacy:
            log.info("state file %s has no header (older version): rewriting it", self.path)
            self._rewrite()

    def _read_header(self, header: dict[str, Any]) -> None:
        try:
            if int(header[HEADER_KEY]) > FILE_VERSION:
                raise StoreCorrupt(f"state file {self.path} is of a newer version "
                                   f"({header[HEADER_KEY]}); this service reads up to "
                                   f"{FILE_VERSION}")
            self._epoch = str(header["epoch"])
            self._base = int(header["base"])
            self._parent = header.get("parent")
            self._seed_seq = int(header.get("seed_seq", 0))
            self._created_at = header.get("created_at") or self._created_at
            snap = header.get("snapshot")
            self._snapshot = None if snap is None else Snapshot(
                epoch=str(snap["epoch"]), seq=int(snap["seq"]), position=snap.get("position"),
                data=snap["data"], taken_at=str(snap.get("taken_at", "")))
        except StoreCorrupt:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreCorrupt(self._corrupt_message(1, 0, exc)) from None

    def _corrupt_message(self, lineno: int, offset: int, exc: Exception) -> str:
        what = "its header" if lineno == 1 else f"line {lineno}"
        return (f"state file {self.path} is corrupt at {what} (byte {offset}): {exc}. It is "
                "not the last line, so it is not a torn write: the events after it were "
                "written later and the log cannot be replayed past it. To repair, stop the "
                "service, keep a copy of the file, then either fix or delete that line (e.g. "
                f"sed -i '{lineno}d' {self.path}) to keep the events after it, or cut the file "
                f"before it (head -n {lineno - 1} {self.path} > {self.path}.fixed && mv "
                f"{self.path}.fixed {self.path}) to keep only those before; then start again.")

    def _cut_tail(self, cut: int, size: int) -> None:
        """Move the bytes from ``cut`` on to ``<file>.corrupt`` and truncate the file there."""
        assert self.path is not None
        aside = self.path.with_name(self.path.name + ".corrupt")
        with open(self.path, "rb") as f:
            f.seek(cut)
            fragment = f.read()
        with open(aside, "ab") as f:
            f.write(fragment + b"\n")
            f.flush()
            os.fsync(f.fileno())
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.ftruncate(fd, cut)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.torn_tails += 1
        log.warning("state file %s: torn last line (%d bytes at byte %d, never acknowledged) "
                    "cut off and kept in %s", self.path, size - cut, cut, aside)

    def _header(self) -> dict[str, Any]:
        snap = self._snapshot
        return {HEADER_KEY: FILE_VERSION, "epoch": self._epoch, "base": self._base,
                "parent": self._parent, "seed_seq": self._seed_seq,
                "created_at": self._created_at,
                "snapshot": None if snap is None else {
                    "epoch": snap.epoch, "seq": snap.seq, "position": snap.position,
                    "taken_at": snap.taken_at, "data": snap.data}}

    def _rewrite(self) -> None:
        """Write header and events to a new file, fsync it, rename it over the file, fsync
        the directory; reopen for appends."""
        if self.path is None:
            return
        self._close_fd()
        tmp = self.path.with_name(self.path.name + ".tmp")
        parts = [json.dumps(self._header(), separators=(",", ":"))]
        parts += [json.dumps(e.to_dict(), separators=(",", ":")) for e in self._events]
        body = ("\n".join(parts) + "\n").encode("utf-8")
        try:
            with open(tmp, "wb") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            _sync_dir(self.path.parent)
        except OSError as exc:
            raise StoreUnavailable(f"cannot write the state file {self.path}: {exc}") from exc
        self._good_size, self._dirty = len(body), False

    def _open_fd(self) -> int:
        assert self.path is not None
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return self._fd

    def _close_fd(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None

    def _write_line(self, line: bytes) -> None:
        """Append one line and fdatasync; on failure cut the fragment off (now or before
        the next write) and raise :class:`StoreUnavailable`."""
        try:
            fd = self._open_fd()
            if self._dirty:  # a failed write left a fragment: cut it before writing
                os.ftruncate(fd, self._good_size)
                self._dirty = False
            view = memoryview(line)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            _sync(fd)
        except OSError as exc:
            self._dirty = True
            try:
                if self._fd is not None:
                    os.ftruncate(self._fd, self._good_size)
                    self._dirty = False
            except OSError:
                pass  # cut before the next write
            raise StoreUnavailable(f"cannot write the state file {self.path}: {exc}") from exc
        self._good_size += len(line)

    # ---------------------------------------------------------------- the log
    @staticmethod
    def _pos(seq: int) -> str:
        return f"{seq:012d}"

    def _head(self) -> LogHead:
        return LogHead(epoch=self._epoch, seq=self._base + len(self._events), base=self._base,
                       parent=self._parent, seed_seq=self._seed_seq,
                       snapshot_seq=self._snapshot.seq if self._snapshot else 0,
                       created_at=self._created_at)

    def head(self) -> LogHead:
        with self._cond:
            return self._head()

    def _check(self, cursor: Cursor) -> None:
        head = self._head()
        if cursor.epoch != self._epoch:
            raise LogReset(f"state log {self.path} is generation {self._epoch}, not "
                           f"{cursor.epoch}", reason="replaced", head=head)
        if cursor.seq > head.seq:
            raise LogReset(f"state log {self.path} ends at event {head.seq}, before event "
                           f"{cursor.seq} already applied", reason="rollback", head=head)

    def create(self, *, seed: Snapshot | None = None, replace: LogHead | None = None
               ) -> LogHead:
        with self._cond:
            head = self._head()
            if replace is None or replace.epoch != head.epoch or replace.seq != head.seq:
                return head  # there is a log, and not the one the caller wants to replace
            self._epoch, self._created_at = new_epoch(), datetime.now(UTC).isoformat()
            self._parent = seed.epoch if seed else None
            self._seed_seq = self._base = seed.seq if seed else 0
            self._events = []
            self._snapshot = None if seed is None else Snapshot(
                self._epoch, seed.seq, None, seed.data, seed.taken_at)
            self._rewrite()
            self._cond.notify_all()
            return self._head()

    def append(self, event: Event, *, cursor: Cursor) -> Record:
        line = (json.dumps(event.to_dict(), separators=(",", ":")) + "\n").encode("utf-8")
        with self._cond:
            self._check(cursor)
            if self.path is not None:
                self._write_line(line)
            self._events.append(event)
            seq = self._base + len(self._events)
            self._cond.notify_all()
            return Record(self._pos(seq), seq, event)

    def read(self, cursor: Cursor, *, until: str | None = None,
             block_s: float = 0.0) -> list[Record]:
        with self._cond:
            self._check(cursor)
            if cursor.seq < self._base:
                raise LogTrimmed(f"events {cursor.seq + 1}..{self._base} of the state log "
                                 "were compacted into its snapshot", head=self._head())
            last = self._base + len(self._events)
            if block_s > 0 and last <= cursor.seq:
                self._cond.wait(timeout=block_s)
                self._check(cursor)
                last = self._base + len(self._events)
            stop = last if until is None else min(int(until), last)
            return [Record(self._pos(s), s, self._events[s - self._base - 1])
                    for s in range(cursor.seq + 1, stop + 1)]

    def last_record(self) -> Record | None:
        with self._cond:
            if not self._events:
                return None
            seq = self._base + len(self._events)
            return Record(self._pos(seq), seq, self._events[-1])

    # ---------------------------------------------------------------- snapshots
    def load_snapshot(self) -> Snapshot | None:
        with self._cond:
            return self._snapshot

    def save_snapshot(self, snapshot: Snapshot) -> bool:
        """Keep the snapshot and drop the events it covers (one worker: nobody lags
        behind), rewriting the file (see the module notes)."""
        with self._cond:
            last = self._base + len(self._events)
            current = self._snapshot.seq if self._snapshot else 0
            if snapshot.epoch != self._epoch or not current < snapshot.seq <= last:
                return False
            old = (self._snapshot, self._base, self._events)
            self._snapshot = snapshot
            self._events = self._events[snapshot.seq - self._base:]
            self._base = snapshot.seq
            try:
                self._rewrite()
            except StoreUnavailable:
                self._snapshot, self._base, self._events = old
                raise
            return True

    # ---------------------------------------------------------------- misc
    def ping(self) -> bool:
        return True

    def persistence(self) -> dict[str, Any]:
        if self.path is None:
            return {"durable": False, "detail": "memory only (no state file)"}
        return {"durable": True, "detail": "fdatasync before every acknowledgment"}

    def close(self) -> None:
        with self._cond:
            self._close_fd()

    def describe(self) -> dict[str, Any]:
        with self._cond:
            return {"kind": self.name, "file": str(self.path) if self.path else None,
                    "events": len(self._events)}

    # ---------------------------------------------------------------- short-lived keys
    # In this process's memory only (the store serves one worker): never written to the file,
    # so a restart forgets them. ``_kv``: key -> (value, time.monotonic() deadline), created on
    # first use, oldest write first; expired entries are swept when the table has doubled
    # since the last sweep, and the oldest are dropped beyond ``KV_MAX_BYTES`` (idempotent
    # answers of a busy day would otherwise fill the memory: Redis holds them out of process).
    _kv_lock = threading.Lock()  #: guards every instance's keys (and their lazy creation)
    KV_MAX_BYTES = 64 << 20

    def _live(self, key: str) -> tuple[dict[str, tuple[str, float]], str | None]:
        """The table and ``key``'s unexpired value (hold ``_kv_lock``)."""
        import time

        now = time.monotonic()
        table: dict[str, tuple[str, float]] = self.__dict__.setdefault("_kv", {})
        if len(table) > self.__dict__.get("_kv_sweep_at", 1024):
            for k in [k for k, (_, deadline) in table.items() if deadline <= now]:
                self._kv_drop(table, k)
            self.__dict__["_kv_sweep_at"] = max(1024, 2 * len(table))
        entry = table.get(key)
        return table, entry[0] if entry is not None and entry[1] > now else None

    def _kv_drop(self, table: dict[str, tuple[str, float]], key: str) -> None:
        entry = table.pop(key, None)
        if entry is not None:
            self.__dict__["_kv_bytes"] = self.__dict__.get("_kv_bytes", 0) - len(key) - len(
                entry[0])

    def _kv_set(self, table: dict[str, tuple[str, float]], key: str, value: str,
                ttl_s: float) -> None:
        import time

        self._kv_drop(table, key)  # a rewrite moves the key to the newest end
        table[key] = (value, time.monotonic() + ttl_s)
        size = self.__dict__.get("_kv_bytes", 0) + len(key) + len(value)
        self.__dict__["_kv_bytes"] = size
        while size > self.KV_MAX_BYTES and len(table) > 1:
            self._kv_drop(table, next(iter(table)))
            size = self.__dict__["_kv_bytes"]

    def claim(self, key: str, value: str, ttl_s: float) -> bool:
        with self._kv_lock:
            table, current = self._live(key)
            if current is not None:
                return False
            self._kv_set(table, key, value, ttl_s)
            return True

    def remember(self, key: str, value: str, ttl_s: float) -> None:
        with self._kv_lock:
            table, _ = self._live(key)
            self._kv_set(table, key, value, ttl_s)

    def recall(self, key: str) -> str | None:
        with self._kv_lock:
            return self._live(key)[1]

    def forget(self, key: str) -> None:
        with self._kv_lock:
            table, _ = self._live(key)
            self._kv_drop(table, key)
