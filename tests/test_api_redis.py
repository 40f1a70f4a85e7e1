"""The service on a real Redis: two instances converge, and an outage degrades gracefully.

Needs ``redis-server`` (the machine's at 127.0.0.1:6379 for convergence; the outage test
starts its own on another port so it can stop and restart it). With ``CI=true`` a missing
Redis fails; elsewhere the tests skip with the reason.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import threading
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
    """A redis-server of the test's own, by default with an append-only file fsynced on
    every write so that acknowledged writes survive its restart (``durable=False``: no
    persistence at all, ``--save "" --appendonly no``)."""

    def __init__(self, port: int, workdir: Path, *, durable: bool = True) -> None:
        self.port, self.workdir, self.proc = port, workdir, None
        self.durable = durable

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.durable \
            else ["--appendonly", "no"]
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             *persistence, "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _need_redis_up(self.port)

    def stop(self, *, kill: bool = False) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)  # a frozen server could not stop
            self.proc.kill() if kill else self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def freeze(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)


def _need_redis_server() -> None:
    if shutil.which("redis-server") is None:
        message = "redis-server is not installed"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


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


def _closure(client: TestClient, edge: int):
    return client.post("/v1/traffic", json={"changes": [{"type": "Closure", "edges": [edge]}]})


def test_redis_restarted_empty_is_healed_and_a_respawned_worker_serves_every_write(
        monaco, tmp_path: Path) -> None:
    """The defect: two workers on a Redis without persistence; writes; Redis restarted
    empty; more writes; one worker respawned. It served a weights_version missing every
    write acknowledged before the reset, and /health said ok everywhere."""
    _need_redis_server()
    server = RedisProcess(_free_port(), tmp_path, durable=False)
    server.start()
    try:
        with TestClient(_app(monaco, server.url, "reset")) as one, \
                TestClient(_app(monaco, server.url, "reset")) as two:
            assert one.get("/health").json()["store"]["persistence"]["durable"] is False
            ids = [_closure(one, edge).json()["ids"][0] for edge in (31, 32)]
            hid = one.get("/v1/hospitals").json()[0]["id"]
            assert one.put(f"/v1/hospitals/{hid}/status",
                           json={"ed_status": "Closed"}).status_code == 200
            _wait(lambda: two.get("/v1/traffic").json()["weights_version"] == 2)
            server.stop()  # SIGTERM, save "": like redis-cli shutdown nosave
            server.start()
            later = [_closure(c, edge) for c, edge in ((one, 33), (two, 34))]
            assert [r.status_code for r in later] == [201, 201], [r.text for r in later]
            ids += [r.json()["ids"][0] for r in later]
            _wait(lambda: one.get("/v1/traffic").json()["weights_version"]
                  == two.get("/v1/traffic").json()["weights_version"] == 4)
            healths = [c.get("/health").json() for c in (one, two)]
            assert all(h["status"] == "ok" and h["log"]["resets"] == 1
                       and h["log"]["events_lost"] == 0 for h in healths)
            assert {h["log"]["last_reset"]["reason"] for h in healths} <= {"reset", "replaced"}
            assert healths[0]["log"]["epoch"] == healths[1]["log"]["epoch"]
        with TestClient(_app(monaco, server.url, "reset")) as respawned:  # kill -9, respawn
            traffic = respawned.get("/v1/traffic").json()
            assert traffic["weights_version"] == 4
            assert [e["id"] for e in traffic["entries"]] == ids
            rows = respawned.get("/v1/saturation").json()["rows"]
            assert next(r for r in rows if r["hospital_id"] == hid and r["bed_type"] is None
                        )["level"] == "closed"
    finally:
        server.stop()


def test_kill_9_of_a_redis_with_aof_always_loses_no_acknowledged_write(
        monaco, tmp_path: Path) -> None:
    """Writes keep coming while Redis is killed (SIGKILL) and restarted from its append-only
    file (appendfsync always): every write answered 201 is in the log afterwards."""
    _need_redis_server()
    server = RedisProcess(_free_port(), tmp_path)
    server.start()
    acknowledged: list[str] = []
    refused = 0
    stop = threading.Event()
    try:
        with TestClient(_app(monaco, server.url, "aof")) as client:
            def write() -> None:
                nonlocal refused
                edge = 100
                while not stop.is_set():
                    edge += 1
                    r = _closure(client, edge % monaco.n_edges)
                    if r.status_code == 201:
                        acknowledged.append(r.json()["ids"][0])
                    else:
                        assert r.status_code == 503, r.text
                        refused += 1

            writer = threading.Thread(target=write)
            writer.start()
            _wait(lambda: len(acknowledged) >= 20, timeout=30)
            server.stop(kill=True)
            time.sleep(0.3)
            server.start()
            count = len(acknowledged)
            _wait(lambda: len(acknowledged) >= count + 20, timeout=30)
            stop.set()
            writer.join(timeout=30)
            assert client.get("/health").json()["log"]["resets"] == 0  # nothing was lost
        with TestClient(_app(monaco, server.url, "aof")) as fresh:
            logged = {e["id"] for e in fresh.get("/v1/traffic").json()["entries"]}
        assert set(acknowledged) <= logged
        assert len(logged) - len(acknowledged) <= 1  # at most the write cut by the kill
    finally:
        stop.set()
        server.stop()


def test_a_frozen_redis_gives_503_writes_within_a_bound_and_routes_unaffected(
        monaco, tmp_path: Path) -> None:
    """Redis stopped (SIGSTOP) for a few seconds: a write answers 503 within 5 s rather
    than hanging, routes answer as before, and all is well once it runs again."""
    _need_redis_server()
    server = RedisProcess(_free_port(), tmp_path)
    server.start()
    try:
        with TestClient(_app(monaco, server.url, "frozen")) as client:
            assert _closure(client, 41).status_code == 201
            before = client.post("/v1/route", json={"origin": A, "destination": B}).json()
            server.freeze()
            t0 = time.monotonic()
            refused = _closure(client, 42)
            assert refused.status_code == 503 and "NOT accepted" in refused.json()["detail"]
            assert time.monotonic() - t0 < 5.0
            t0 = time.monotonic()
            route = client.post("/v1/route", json={"origin": A, "destination": B})
            assert route.status_code == 200 and time.monotonic() - t0 < 5.0
            assert route.json()["edges"] == before["edges"]
            assert route.json()["weights_version"] == before["weights_version"]
            assert client.get("/health").status_code == 503
            time.sleep(2)
            server.thaw()
            _wait(lambda: client.get("/health").status_code == 200, timeout=15)
            assert _closure(client, 43).status_code == 201
            entries = client.get("/v1/traffic").json()["entries"]
            assert len(entries) == 2  # 41 and 43; 42 was refused, not half-written
    finally:
        server.stop()
