"""Scenario replays for planners: start a run, follow it, read its results (the runs are
kept by :class:`api.runs.ScenarioRuns` in the state store; the replay builds its own engine objects
from the scenario, so live state is untouched)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from api.auth import PlannerRole
from api.models.errors import AUTH, error_responses, json_error_responses
from api.models.scenarios import RunStatus, ScenarioList
from api.runs import ProgressFn, RunOutput, ScenarioRuns, TooManyRuns

router = APIRouter(prefix="/v1/scenarios", tags=["scenarios"])
SCENARIO_DIR = Path(__file__).resolve().parent.parent.parent / "data" / "scenarios"


#: A variant of ``compare`` (:func:`engine.replay.scenario.parse_variant`, any case): words
#: joined by "+" (or ","), each a destination policy, a driving or the closures on / off.
_WORD = ("(?:nearest|saturation(?:[_-]aware)?|priority|normal|closures(?:[_-]o(?:n|ff))?"
         "|no[_-]closures)")
VARIANT_PATTERN = f"^ *(?:{_WORD} *)?(?:[+,] *(?:{_WORD} *)?)*$"


class RunRequest(BaseModel):
    """Exactly one of ``scenario`` (a document) or ``name`` (a shipped scenario)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [
        {"required": ["scenario"], "properties": {"scenario": {"type": "object"},
                                                  "name": {"type": "null"}}},
        {"required": ["name"], "properties": {"name": {"type": "string"},
                                              "scenario": {"type": "null"}}}]})

    scenario: dict[str, Any] | None = Field(None, description="a scenario document, format "
                                            "gyrophare-scenario/1 (data/scenarios/README.md), "
                                            "checked by the replay engine before the run "
                                            "starts (422 with every bad field)")
    name: str | None = Field(None, description="a shipped scenario (404: unknown), e.g. "
                             "monaco-surge", examples=["monaco-surge"])
    compare: list[Annotated[str, Field(json_schema_extra={"pattern": VARIANT_PATTERN})]] | None \
        = Field(None, description="variants to compare (default: the scenario's policy): "
                "words joined by '+', among nearest, saturation_aware, priority, normal, "
                "closures-on, closures-off (any case)",
                examples=[["nearest", "saturation_aware"]])
    seeds: int = Field(1, ge=1, le=50)


def _shipped() -> dict[str, Path]:
    return {p.stem: p for p in sorted(SCENARIO_DIR.glob("*.y*ml"))}


def get_runs(request: Request) -> ScenarioRuns:
    return request.app.state.runs


Runs = Annotated[ScenarioRuns, Depends(get_runs)]


@router.get("", response_model=ScenarioList, responses=error_responses(*AUTH))
def scenarios(runs: Runs, _: PlannerRole) -> dict[str, Any]:
    """Scenarios shipped with gyrophare, and the runs started on any worker."""
    return {"shipped": sorted(_shipped()), "runs": runs.all()}


@router.post("/runs", status_code=status.HTTP_202_ACCEPTED, response_model=RunStatus,
             responses=error_responses(*AUTH, 404, 429))
def start_run(body: RunRequest, runs: Runs, _: PlannerRole) -> dict[str, Any]:
    """Validate a scenario and its variants now (422 with every bad field), then replay it in
    the background; poll ``GET /v1/scenarios/runs/{id}``. 429 when this worker already runs
    as many replays as it may."""
    from engine.replay import compare, load_scenario
    from engine.replay.scenario import parse_variant

    if body.name is not None and body.scenario is None:
        path = _shipped().get(body.name)
        if path is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND,
                                f"no shipped scenario {body.name!r}; known: "
                                f"{', '.join(_shipped())}")
        scenario = load_scenario(path)
    elif body.scenario is not None and body.name is None:
        scenario = load_scenario(body.scenario, origin="api")
    else:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            "give exactly one of scenario (a document) or name")
    for variant in body.compare or ():  # an unknown variant is a 422 now, not a failed run
        parse_variant(variant, scenario.default_variant)
    def job(progress: ProgressFn) -> RunOutput:
        from engine.replay.report import report_html

        cmp = compare(scenario, body.compare, seeds=body.seeds, progress=progress)
        return RunOutput(cmp.to_dict(), report_html(cmp, scenario=scenario))

    try:
        run = runs.start(scenario.name, job)
    except TooManyRuns as exc:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, str(exc)) from None
    return run.to_dict(full=False)


@router.get("/runs/{run_id}", response_model=RunStatus, responses=error_responses(*AUTH, 404))
def get_run(run_id: str, runs: Runs, _: PlannerRole) -> dict[str, Any]:
    """Status, progress and, once done, the metrics of every variant and seed (from any
    worker: runs are kept in the state store)."""
    run = runs.get(run_id)
    if run is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no scenario run {run_id!r} (runs "
                            "are kept 7 days after they end)")
    return run


@router.post("/runs/{run_id}/cancel", response_model=RunStatus,
             responses=error_responses(*AUTH, 404))
def cancel_run(run_id: str, runs: Runs, _: PlannerRole) -> dict[str, Any]:
    """Ask a running replay to stop (it stops at its next progress step, within a second or
    two, and its status becomes ``cancelled``); a finished run is returned unchanged."""
    run = runs.cancel(run_id)
    if run is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no scenario run {run_id!r}")
    return run


@router.get("/runs/{run_id}/report", response_class=HTMLResponse,
            responses={200: {"content": {"text/html": {"schema": {"type": "string"}}},
                             "description": "the run's HTML report: response times, hospital "
                             "loads and levels per variant, with plots"},
                       **json_error_responses(*AUTH, 404)})
def run_report(run_id: str, runs: Runs, _: PlannerRole) -> HTMLResponse:
    """The HTML report of a finished run (the same as ``gyrophare replay --out``'s)."""
    report = runs.report(run_id)
    if report is None:
        run = runs.get(run_id)
        detail = (f"no scenario run {run_id!r}" if run is None else
                  f"scenario run {run_id!r} is {run.get('status')}: only a finished run has "
                  "a report")
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail)
    return HTMLResponse(report)
