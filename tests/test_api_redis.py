"""The service on a real Redis: two instances converge, and an outage degrades gracefully.

Needs ``redis-server`` (the machine's at 127.0.0.1:6379 for convergence; the outage test
starts its own on another port so it can stop and restart it). With ``CI=true`` a missing
Redis fails; elsewhere the tests skip with the reason.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from conftest import IN_CI

A = [7.4246, 43.7384]
B = [7.4197, 43.7313]


def _need_redis(url: str = "redis://127.0.0.1:6379/0") -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except Exception as exc:
        message = f"no Redis server at {url}: {exc}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def _app(monaco, url: str, prefix: str):
    from api.store.redis import RedisStore

    return create_app(Settings(redis_url=url, redis_prefix=prefix), graph=monaco,
                      store=RedisStore(url, prefix=prefix))


@pytest.fixture()
def prefix():
    import redis

    prefix = f"gyrophare-test-{uuid.uuid4().hex[:8]}"
    yield prefix
    try:
        r = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        keys = list(r.scan_iter(f"{prefix}:*"))
        if keys:
            r.delete(*keys)
    except Exception:
        pass


def _wait(predicate, timeout: float = 10.0) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if predicate():
            return time.perf_counter() - t0
        time.sleep(0.002)
    raise AssertionError("condition not reached in time")


def test_two_instances_converge(monaco, prefix: str) -> None:
    """What one instance writes, the other serves (how fast is a benchmark's business: a
    timed assertion here would fail on a loaded machine, not on a slow service)."""
    url = "redis://127.0.0.1:6379/0"
    _need_redis(url)
    with TestClient(_app(monaco, url, prefix)) as one, \
            TestClient(_app(monaco, url, prefix)) as two:
        r = one.post("/v1/traffic", json={"changes": [{"type": "Closure", "edges": [11, 12]}]})
        assert r.status_code == 201, r.text
        version = r.json()["weights_version"]
        _wait(lambda: two.get("/v1/traffic").json()["weights_version"] == version)
        # the same roads: identical routes and versions from both
        r1 = one.post("/v1/route", json={"origin": A, "destination": B}).json()
        r2 = two.post("/v1/route", json={"origin": A, "destination": B}).json()
        assert r1["weights_version"] == r2["weights_version"] == version
        assert r1["edges"] == r2["edges"]
        # hospital status written on one, levels seen on two
        hid = one.get("/v1/hospitals").json()[1]["id"]
        one.put(f"/v1/hospitals/{hid}/status", json={"ed_status": "Closed"})
        _wait(lambda: any(x["hospital_id"] == hid and x["bed_type"] is None
                          and x["level"] == "closed"
                          for x in two.get("/v1/saturation").json()["rows"]))
        # an ambulance dispatched by one is en route for two
        one.post("/v1/dispatch", json={"incident": A, "ambulance_id": "SAMU-21-1"})
        _wait(lambda: [e["ambulance_id"] for e in two.get("/v1/ambulances").json()]
              == ["SAMU-21-1"])
    # a third instance started later replays the log
    with TestClient(_app(monaco, url, prefix)) as three:
        assert three.get("/v1/traffic").json()["weights_version"] == version
        assert [e["ambulance_id"] for e in three.get("/v1/ambulances").json()] == ["SAMU-21-1"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisProcess:
    """A redis-server of the test's own, with an append-only file so that acknowledged
    writes survive its restart."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port, self.workdir, self.proc = port, workdir, None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _need_redis_up(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


def _need_redis_up(port: int) -> None:
    import redis

    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.2).ping()
            return
        except Exception:
            time.sleep(0.05)
    raise AssertionError(f"redis-server on port {port} did not start")


def test_outage_gives_stale_reads_503_writes_and_recovers(monaco, tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        message = "redis-server is not installed"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    server = RedisProcess(_free_port(), tmp_path)
    server.start()
    url = f"redis://127.0.0.1:{server.port}/0"
    try:
        with TestClient(_app(monaco, url, "outage")) as client:
            ok = client.post("/v1/traffic", json={"changes": [{"type": "Closure",
                                                               "edges": [21]}]})
            assert ok.status_code == 201
            acknowledged = ok.json()["ids"][0]
            route_before = client.post("/v1/route", json={"origin": A, "destination": B})
            server.stop()
            # reads keep working on the last known state, and say so
            _wait(lambda: client.get("/health").status_code == 503, timeout=5)
            health = client.get("/health").json()
            assert health["status"] == "degraded" and health["stale"] is True
            r = client.post("/v1/route", json={"origin": A, "destination": B})
            assert r.status_code == 200 and r.json()["stale"] is True
            assert r.json()["edges"] == route_before.json()["edges"]
            # writes are refused, not silently lost
            w = client.post("/v1/traffic", json={"changes": [{"type": "Closure",
                                                              "edges": [22]}]})
            assert w.status_code == 503 and "NOT accepted" in w.json()["detail"]
            hid = client.get("/v1/hospitals").json()[0]["id"]
            assert client.put(f"/v1/hospitals/{hid}/status",
                              json={"ed_status": "Closed"}).status_code == 503
            d = client.post("/v1/dispatch", json={"incident": A}).json()
            assert d["registered"] is False and d["stale"] is True and "warning" in d
            assert [e["id"] for e in client.get("/v1/traffic").json()["entries"]] == [
                acknowledged]
            # the server comes back: no restart of the service needed
            server.start()
            _wait(lambda: client.get("/health").status_code == 200, timeout=10)
            again = client.post("/v1/traffic", json={"changes": [{"type": "Closure",
                                                                  "edges": [23]}]})
            assert again.status_code == 201
            ids = [e["id"] for e in client.get("/v1/traffic").json()["entries"]]
            assert ids[0] == acknowledged and len(ids) == 2  # nothing acknowledged was lost
        with TestClient(_app(monaco, url, "outage")) as fresh:  # and it is in Redis
            assert len(fresh.get("/v1/traffic").json()["entries"]) == 2
    finally:
        server.stop()
