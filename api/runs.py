"""Scenario replay runs started through the service: their status, progress and results, owned
by the application (one registry per app, on ``app.state.runs``)."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

log = logging.getLogger("gyrophare.runs")


class Run:
    """One replay run (a scenario, its variants and seeds) and what it has produced."""

    def __init__(self, run_id: str, name: str) -> None:
        self.id, self.name = run_id, name
        self.status: Literal["running", "done", "failed"] = "running"
        self.started = time.time()
        self.finished: float | None = None
        self.progress: dict[str, Any] = {}
        self.result: dict[str, Any] | None = None
        self.error: str | None = None

    def to_dict(self, *, full: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "scenario": self.name, "status": self.status,
                               "progress": self.progress, "started": self.started,
                               "finished": self.finished, "error": self.error}
        if full and self.result is not None:
            out["result"] = self.result
        return out


class ScenarioRuns:
    """The runs of this worker: started in background threads, kept for the process's life."""

    def __init__(self) -> None:
        self._runs: dict[str, Run] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def all(self) -> list[Run]:
        with self._lock:
            return list(self._runs.values())

    def get(self, run_id: str) -> Run | None:
        with self._lock:
            return self._runs.get(run_id)

    def start(self, name: str, job: Callable[[Callable[[str, int, int | None], None]],
                                             dict[str, Any]]) -> Run:
        """Run ``job(progress)`` in a background thread; its dict result or its error is
        kept on the returned :class:`Run`."""
        with self._lock:
            run = Run(f"run-{next(self._ids)}", name)
            self._runs[run.id] = run

        def progress(stage: str, done: int, total: int | None) -> None:
            run.progress = {"stage": stage, "done": done, "total": total}

        def work() -> None:
            try:
                run.result = job(progress)
                run.status = "done"
            except Exception as exc:  # reported to the planner, never lost in a thread
                run.error = f"{type(exc).__name__}: {exc}"
                run.status = "failed"
                log.exception("scenario run %s failed", run.id)
            finally:
                run.finished = time.time()

        threading.Thread(target=work, name=f"replay-{run.id}", daemon=True).start()
        return run
