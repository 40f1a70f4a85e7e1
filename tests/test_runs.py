"""Scenario runs are kept in the state store: any worker answers for any run, a cancel
reaching another worker stops it, a worker runs at most ``max_running`` replays, and a run
with an unknown variant is refused before it starts."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.runs import ScenarioRuns, TooManyRuns
from api.settings import Settings
from api.store import EmbeddedStore

REDIS_URL = "redis://127.0.0.1:6379/0"


def _wait_status(client: TestClient, run_id: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.time() + timeout
    while True:
        run = client.get(f"/v1/scenarios/runs/{run_id}").json()
        if run.get("status") != "running" or time.time() > deadline:
            return run
        time.sleep(0.1)


def test_unknown_variant_is_refused_before_the_run_starts(monaco, tmp_path: Path) -> None:
    app = create_app(Settings(), graph=monaco, store=EmbeddedStore(tmp_path / "s.jsonl"))
    with TestClient(app) as c:
        r = c.post("/v1/scenarios/runs", json={"name": "monaco-surge",
                                               "compare": ["nearest", "fastest"]})
        assert r.status_code == 422, r.text
        assert "fastest" in r.json()["detail"]
        assert c.get("/v1/scenarios").json()["runs"] == []


def test_a_worker_runs_at_most_max_running_replays(monaco, tmp_path: Path) -> None:
    app = create_app(Settings(), graph=monaco, store=EmbeddedStore(tmp_path / "s.jsonl"))
    with TestClient(app) as c:
        app.state.runs.max_running = 0
        r = c.post("/v1/scenarios/runs", json={"name": "monaco-surge"})
        assert r.status_code == 429 and "at most 0" in r.json()["detail"]


def test_cancel_stops_a_run_at_its_next_progress_step() -> None:
    runs = ScenarioRuns(None, max_running=1)
    started = []

    def job(progress) -> dict[str, Any]:
        started.append(True)
        for k in range(10_000):
            progress("looping", k, 10_000)
            time.sleep(0.001)
        return {"finished": True}

    run = runs.start("forever", job)
    with pytest.raises(TooManyRuns):
        runs.start("another", job)
    deadline = time.time() + 10
    while not started and time.time() < deadline:
        time.sleep(0.01)
    assert runs.cancel(run.id)["id"] == run.id
    while run.status == "running" and time.time() < deadline:
        time.sleep(0.01)
    assert run.status == "cancelled" and run.result is None and run.finished is not None
    assert runs.running() == 0
    assert runs.cancel("run-unknown") is None


def test_runs_are_answered_by_any_worker_on_redis(monaco) -> None:
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except Exception as exc:  # any connection failure means no server
        if __import__("os").environ.get("CI") == "true":
            raise
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    from api.store.redis import RedisStore

    prefix = f"test-runs-{uuid.uuid4().hex[:8]}"

    def app() -> Any:
        return create_app(Settings(), graph=monaco, store=RedisStore(REDIS_URL, prefix=prefix))

    with TestClient(app()) as one, TestClient(app()) as two:
        r = one.post("/v1/scenarios/runs", json={"name": "monaco-surge",
                                                 "compare": ["nearest"]})
        assert r.status_code == 202, r.text
        run_id = r.json()["id"]
        seen = two.get(f"/v1/scenarios/runs/{run_id}")
        assert seen.status_code == 200 and seen.json()["scenario"] == "monaco-surge"
        done = _wait_status(two, run_id)
        assert done["status"] == "done", done
        assert done["result"]["scenario"] == "monaco-surge"
        assert [x["id"] for x in two.get("/v1/scenarios").json()["runs"]] == [run_id]
        report = two.get(f"/v1/scenarios/runs/{run_id}/report")  # written by worker one
        assert report.status_code == 200
        assert report.headers["content-type"].startswith("text/html")
        assert "monaco-surge" in report.text and "<img" in report.text
        # a cancel reaching the other worker: the owner sees it at its next progress step
        one.app.state.runs.PUBLISH_EVERY_S = 0.0
        r = one.post("/v1/scenarios/runs", json={"name": "monaco-surge", "seeds": 50})
        run_id = r.json()["id"]
        assert two.post(f"/v1/scenarios/runs/{run_id}/cancel").status_code == 200
        assert _wait_status(one, run_id, timeout=60)["status"] == "cancelled"
        assert _wait_status(two, run_id, timeout=10)["status"] == "cancelled"
        missing = two.get(f"/v1/scenarios/runs/{run_id}/report")
        assert missing.status_code == 404 and "cancelled" in missing.json()["detail"]
