"""Response bodies of the scenario-run endpoints (planners)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class RunStatus(BaseModel):
    id: str = Field(examples=["run-1"])
    scenario: str
    status: Literal["running", "done", "failed", "cancelled"]
    progress: dict[str, Any] = Field(default_factory=dict,
                                     description="stage, done, total of the running replay")
    started: float = Field(description="Unix time")
    finished: float | None = None
    error: str | None = None
    result: dict[str, Any] | None = Field(
        None, description="once done: metrics of every variant and seed (see "
                          "data/scenarios/README.md)")


class ScenarioList(BaseModel):
    shipped: list[str] = Field(description="scenarios shipped with gyrophare")
    runs: list[RunStatus] = Field(description="runs started on any worker (newest first, "
                                  "without their results)")
