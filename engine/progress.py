"""Start-up progress: one line per stage on stderr (:class:`StartupLog`), for ``gyrophare
serve`` and the builds (the kernels' compile plan that start-up runs is
:mod:`engine.warmup`)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


class StartupLog:
    """One line per start-up stage on ``stream`` (default stderr), ``gyrophare: ...``."""

    def __init__(self, stream: TextIO | None = None, *, prefix: str = "gyrophare: ") -> None:
        self.stream = stream
        self.prefix = prefix
        self.t0 = time.perf_counter()

    def line(self, text: str) -> None:
        print(f"{self.prefix}{text}", file=self.stream or sys.stderr, flush=True)

    def elapsed(self) -> float:
        """Seconds since this log was created (the start of start-up)."""
        return time.perf_counter() - self.t0

    @contextmanager
    def stage(self, what: str) -> Iterator[dict[str, str]]:
        """``what ...`` before the block, ``what: done (1.2 s)`` after it; the block may
        replace ``done`` with a word of its own (``note["done"] = "cached"``)."""
        self.line(f"{what} ...")
        note: dict[str, str] = {}
        t = time.perf_counter()
        yield note
        self.line(f"{what}: {note.get('done', 'done')} ({time.perf_counter() - t:.1f} s)")
