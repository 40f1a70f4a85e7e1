"""Scenario replays for planners: start a run, follow it, read its results.

Runs execute in a background thread of the worker that accepted them (the replay builds its
own engine objects from the scenario, so live state is untouched); their status and results
are kept in that worker's memory for the life of the process.
"""

from __future__ import annotations

import itertools
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from api.auth import PlannerRole

router = APIRouter(prefix="/v1/scenarios", tags=["scenarios"])
SCENARIO_DIR = Path(__file__).resolve().parent.parent.parent / "data" / "scenarios"


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scenario: dict[str, Any] | None = Field(None, description="a scenario document "
                                            "(data/scenarios/README.md)")
    name: str | None = Field(None, description="a shipped scenario, e.g. monaco-surge",
                             examples=["monaco-surge"])
    compare: list[str] | None = Field(None, examples=[["nearest", "saturation_aware"]])
    seeds: int = Field(1, ge=1, le=50)


class _Run:
    def __init__(self, run_id: str, name: str) -> None:
        self.id, self.name = run_id, name
        self.status: Literal["running", "done", "failed"] = "running"
        self.started = time.time()
        self.finished: float | None = None
        self.progress: dict[str, Any] = {}
        self.result: dict[str, Any] | None = None
        self.error: str | None = None

    def to_dict(self, *, full: bool) -> dict[str, Any]:
        out = {"id": self.id, "scenario": self.name, "status": self.status,
               "progress": self.progress, "started": self.started, "finished": self.finished,
               "error": self.error}
        if full and self.result is not None:
            out["result"] = self.result
        return out


_runs: dict[str, _Run] = {}
_ids = itertools.count(1)
_lock = threading.Lock()


def _shipped() -> dict[str, Path]:
    return {p.stem: p for p in sorted(SCENARIO_DIR.glob("*.y*ml"))}


@router.get("")
def scenarios(_: PlannerRole) -> dict[str, Any]:
    """Scenarios shipped with gyrophare, and the runs of this worker."""
    return {"shipped": sorted(_shipped()),
            "runs": [r.to_dict(full=False) for r in _runs.values()]}


@router.post("/runs", status_code=status.HTTP_202_ACCEPTED)
def start_run(body: RunRequest, _: PlannerRole) -> dict[str, Any]:
    """Validate a scenario now (422 with every bad field), then replay it in the background;
    poll ``GET /v1/scenarios/runs/{id}``."""
    from engine.replay import compare, load_scenario

    if (body.scenario is None) == (body.name is None):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            "give exactly one of scenario (a document) or name")
    if body.name is not None:
        path = _shipped().get(body.name)
        if path is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND,
                                f"no shipped scenario {body.name!r}; known: "
                                f"{', '.join(_shipped())}")
        scenario = load_scenario(path)
    else:
        scenario = load_scenario(body.scenario, origin="api")
    with _lock:
        run = _Run(f"run-{next(_ids)}", scenario.name)
        _runs[run.id] = run

    def progress(stage: str, done: int, total: int | None) -> None:
        run.progress = {"stage": stage, "done": done, "total": total}

    def work() -> None:
        try:
            result = compare(scenario, body.compare, seeds=body.seeds, progress=progress)
            run.result = result.to_dict()
            run.status = "done"
        except Exception as exc:  # reported to the planner, never lost in a thread
            run.error = f"{type(exc).__name__}: {exc}"
            run.status = "failed"
            traceback.print_exc()
        finally:
            run.finished = time.time()

    threading.Thread(target=work, name=f"replay-{run.id}", daemon=True).start()
    return run.to_dict(full=False)


@router.get("/runs/{run_id}")
def get_run(run_id: str, _: PlannerRole) -> dict[str, Any]:
    """Status, progress and, once done, the metrics of every variant and seed."""
    run = _runs.get(run_id)
    if run is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no scenario run {run_id!r} on this "
                            "worker")
    return run.to_dict(full=True)
