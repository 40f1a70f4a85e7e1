"""The embedded store: the event log in memory, appended to a local JSON-lines file.

One worker only (the file is not shared between processes). A restart replays the file, so
hospital statuses, traffic entries and ambulances on their way survive it.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from api.store.base import Event, Store, StoreUnavailable


class EmbeddedStore(Store):
    name = "embedded"

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._events: list[Event] = []
        self._cond = threading.Condition()
        self._file = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists():
                lines = [ln for ln in self.path.read_text(encoding="utf-8").splitlines()
                         if ln.strip()]
                for lineno, line in enumerate(lines, start=1):
                    try:
                        self._events.append(Event.from_dict(json.loads(line)))
                    except (ValueError, KeyError) as exc:
                        if lineno == len(lines):  # a write torn by a crash: never acknowledged
                            break
                        raise StoreUnavailable(f"state file {self.path} is corrupt at line "
                                               f"{lineno}: {exc}") from exc
            self._file = open(self.path, "a", encoding="utf-8")

    @staticmethod
    def _pos(index: int) -> str:
        return f"{index:012d}"

    def append(self, event: Event) -> str:
        line = json.dumps(event.to_dict(), separators=(",", ":"))
        with self._cond:
            if self._file is not None:
                try:
                    self._file.write(line + "\n")
                    self._file.flush()
                    os.fsync(self._file.fileno())
                except OSError as exc:
                    raise StoreUnavailable(f"cannot write the state file {self.path}: "
                                           f"{exc}") from exc
            self._events.append(event)
            self._cond.notify_all()
            return self._pos(len(self._events))

    def read_after(self, position: str | None, *, until: str | None = None,
                   block_s: float = 0.0) -> list[tuple[str, Event]]:
        start = int(position) if position else 0
        stop = int(until) if until else None
        with self._cond:
            if block_s > 0 and len(self._events) <= start:
                self._cond.wait(timeout=block_s)
            end = len(self._events) if stop is None else min(stop, len(self._events))
            return [(self._pos(i + 1), self._events[i]) for i in range(start, end)]

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def describe(self) -> dict[str, Any]:
        return {"kind": self.name, "file": str(self.path) if self.path else None,
                "events": len(self._events)}
