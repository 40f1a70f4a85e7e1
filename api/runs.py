"""Scenario replay runs started through the service: status, progress and results kept in the
state store, so that any worker answers for any run (one registry per app, on
``app.state.runs``).

A run executes in a background thread of the worker that accepted it. That worker writes the
run's record (``runs:<id>``, JSON) to the store's key-value section when it starts, at most
once a second while it progresses, and when it ends; the record expires ``keep_s`` after its
last write. Any worker reads a run it does not own from there, and a cancel request reaching
another worker leaves a ``runs:<id>:cancel`` key that the owner sees at its next progress
step. When the store is unreachable the owner keeps its runs in memory and still answers for
them; other workers answer 404 until the store is back.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from api.store import Store

log = logging.getLogger("gyrophare.runs")

RunState = Literal["running", "done", "failed", "cancelled"]
ProgressFn = Callable[[str, int, int | None], None]


@dataclass
class RunOutput:
    """What a run produces: its result (JSON) and, optionally, its HTML report."""

    result: dict[str, Any]
    report_html: str | None = None


class TooManyRuns(Exception):
    """This worker already runs as many replays as it may (the API answers 429)."""


class RunCancelled(Exception):
    """Raised inside a run's progress callback once a cancel was requested."""


class Run:
    """One replay run (a scenario, its variants and seeds) and what it has produced."""

    def __init__(self, run_id: str, name: str) -> None:
        self.id, self.name = run_id, name
        self.status: RunState = "running"
        self.started = time.time()
        self.finished: float | None = None
        self.progress: dict[str, Any] = {}
        self.result: dict[str, Any] | None = None
        self.error: str | None = None
        self.report_html: str | None = None
        self.cancel_requested = threading.Event()

    def to_dict(self, *, full: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "scenario": self.name, "status": self.status,
                               "progress": self.progress, "started": self.started,
                               "finished": self.finished, "error": self.error}
        if full and self.result is not None:
            out["result"] = self.result
        return out


class ScenarioRuns:
    """The runs of the service: this worker's in memory, everyone's in the store.

    ``max_running``: replays this worker runs at once (each holds a core); ``keep_s``: how long
    a finished run stays readable in the store (default 7 days).
    """

    PUBLISH_EVERY_S = 1.0
    INDEX_KEY = "runs:index"
    INDEX_LENGTH = 200

    def __init__(self, store: Store | None = None, *, max_running: int = 2,
                 keep_s: float = 7 * 86400.0) -> None:
        self.store = store
        self.max_running = max_running
        self.keep_s = keep_s
        self._runs: dict[str, Run] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ store access
    def _remember(self, key: str, value: str) -> None:
        if self.store is None:
            return
        try:
            self.store.remember(key, value, self.keep_s)
        except NotImplementedError:
            self.store = None  # a store without a key-value section: this worker only
        except Exception as exc:  # the store is down: the owner still answers from memory
            log.warning("cannot save %s in the store: %s", key, exc)

    def _recall(self, key: str) -> str | None:
        if self.store is None:
            return None
        try:
            return self.store.recall(key)
        except NotImplementedError:
            self.store = None
        except Exception as exc:
            log.warning("cannot read %s from the store: %s", key, exc)
        return None

    def _publish(self, run: Run) -> None:
        self._remember(f"runs:{run.id}", json.dumps(run.to_dict(full=True), default=str))

    def _index(self) -> list[str]:
        raw = self._recall(self.INDEX_KEY)
        try:
            ids = json.loads(raw) if raw else []
        except ValueError:
            return []
        return [str(i) for i in ids] if isinstance(ids, list) else []

    # ------------------------------------------------------------------ queries
    def all(self) -> list[dict[str, Any]]:
        """Every run the store knows (newest first), this worker's included."""
        with self._lock:
            local = {r.id: r.to_dict(full=False) for r in self._runs.values()}
        out = dict(local)
        for run_id in self._index():
            if run_id not in out:
                found = self.get(run_id)
                if found is not None:
                    found.pop("result", None)
                    out[run_id] = found
        return sorted(out.values(), key=lambda r: -float(r.get("started") or 0.0))

    def get(self, run_id: str) -> dict[str, Any] | None:
        """A run's record (with its result once done), from this worker or the store."""
        with self._lock:
            run = self._runs.get(run_id)
        if run is not None:
            return run.to_dict(full=True)
        raw = self._recall(f"runs:{run_id}")
        if raw is None:
            return None
        try:
            record = json.loads(raw)
        except ValueError:
            log.warning("run record %s in the store is not JSON", run_id)
            return None
        return record if isinstance(record, dict) else None

    def report(self, run_id: str) -> str | None:
        """A finished run's HTML report, from this worker or the store."""
        with self._lock:
            run = self._runs.get(run_id)
        if run is not None and run.report_html is not None:
            return run.report_html
        return self._recall(f"runs:{run_id}:report")

    def running(self) -> int:
        with self._lock:
            return sum(r.status == "running" for r in self._runs.values())

    # ------------------------------------------------------------------ commands
    def cancel(self, run_id: str) -> dict[str, Any] | None:
        """Ask a run to stop at its next progress step; its record, or None if unknown."""
        with self._lock:
            run = self._runs.get(run_id)
        if run is not None:
            run.cancel_requested.set()
            return run.to_dict(full=False)
        record = self.get(run_id)
        if record is None:
            return None
        if record.get("status") == "running":
            self._remember(f"runs:{run_id}:cancel", "1")
        record.pop("result", None)
        return record

    def start(self, name: str, job: Callable[[ProgressFn], dict[str, Any] | RunOutput]
              ) -> Run:
        """Run ``job(progress)`` in a background thread; its dict result or its error is
        kept on the returned :class:`Run` and in the store. :class:`TooManyRuns` when this
        worker already runs ``max_running`` replays."""
        with self._lock:
            running = sum(r.status == "running" for r in self._runs.values())
            if running >= self.max_running:
                raise TooManyRuns(f"{running} scenario runs are already running on this "
                                  f"worker (at most {self.max_running}); wait for one to "
                                  "finish or cancel one")
            run = Run(f"run-{uuid.uuid4().hex[:12]}", name)
            self._runs[run.id] = run
        self._publish(run)
        index = [run.id, *[i for i in self._index() if i != run.id]][: self.INDEX_LENGTH]
        self._remember(self.INDEX_KEY, json.dumps(index))
        last = [time.monotonic()]

        def progress(stage: str, done: int, total: int | None) -> None:
            run.progress = {"stage": stage, "done": done, "total": total}
            now = time.monotonic()
            if now - last[0] >= self.PUBLISH_EVERY_S:
                last[0] = now
                if self._recall(f"runs:{run.id}:cancel"):
                    run.cancel_requested.set()
                self._publish(run)
            if run.cancel_requested.is_set():
                raise RunCancelled(run.id)

        def work() -> None:
            try:
                output = job(progress)
                if isinstance(output, RunOutput):
                    run.result, run.report_html = output.result, output.report_html
                    if output.report_html is not None:
                        self._remember(f"runs:{run.id}:report", output.report_html)
                else:
                    run.result = output
                run.status = "done"
            except RunCancelled:
                run.status = "cancelled"
                log.info("scenario run %s cancelled", run.id)
            except Exception as exc:  # reported to the planner, never lost in a thread
                run.error = f"{type(exc).__name__}: {exc}"
                run.status = "failed"
                log.exception("scenario run %s failed", run.id)
            finally:
                run.finished = time.time()
                self._publish(run)

        threading.Thread(target=work, name=f"replay-{run.id}", daemon=True).start()
        return run
