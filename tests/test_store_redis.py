"""RedisStore against a real Redis server (127.0.0.1:6379), plus servers of our own for outages.

Outside CI, no Redis (or no ``redis-server`` binary) skips these tests with the reason; with
``CI=true`` they fail, so a CI machine without Redis can never go green by skipping.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import redis

from api.state import LiveState
from api.store import Event, StoreUnavailable
from api.store.redis import RedisStore, decode_position, encode_position, mask_url
from engine.hospitals import HospitalBoard
from engine.io import load_graph
from engine.query import Router

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
REDIS_URL = os.environ.get("GYROPHARE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ONEWAY = Path(__file__).parent / "fixtures" / "osm" / "oneway.osm"


def _unavailable(message: str) -> None:
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="session")
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        _unavailable(f"Redis at {REDIS_URL} unreachable ({exc}); start it with "
                     "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ''")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test only; its keys are deleted afterwards."""
    name = f"gyrophare-test-{uuid.uuid4().hex}"
    yield name
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{name}:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def make_store(redis_url: str, prefix: str) -> Iterator[Callable[..., RedisStore]]:
    """Stores on the test's prefix (several of them: several workers); closed afterwards."""
    stores: list[RedisStore] = []

    def make(**kwargs) -> RedisStore:
        store = RedisStore(redis_url, prefix=prefix, **kwargs)
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


@pytest.fixture
def store(make_store: Callable[..., RedisStore]) -> RedisStore:
    return make_store()


def ev(n: int) -> Event:
    return Event("traffic.remove", {"ids": [f"entry-{n}"], "n": n})


# ------------------------------------------------------------------------------ positions
def test_positions_sort_as_strings_when_the_ms_part_grows() -> None:
    ids = ["0-1", "9-5", "9-10", "10-0", "99-0", "100-0", "1732700000000-0",
           "1732700000000-9", "1732700000000-10", "18446744073709551615-18446744073709551615"]
    positions = [encode_position(i) for i in ids]
    assert sorted(positions) == positions  # as strings, in stream order
    assert sorted(ids) != ids  # which plain ids do not
    assert len({len(p) for p in positions}) == 1
    assert [decode_position(p) for p in positions] == ids
    assert decode_position("10-0") == "10-0"  # a plain id is accepted too
    assert encode_position(b"10-3") == encode_position("10-3")
    with pytest.raises(ValueError, match="position"):
        decode_position("garbage")


def test_mask_url() -> None:
    assert mask_url("redis://:s3cret@example.org:6380/2") == "redis://:***@example.org:6380/2"
    assert mask_url("redis://user:s3cret@[::1]:6379/0") == "redis://user:***@[::1]:6379/0"
    assert mask_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


# ------------------------------------------------------------------------------ the log
def test_append_and_read_in_order(store: RedisStore) -> None:
    assert store.read_after(None) == []
    events = [ev(n) for n in range(300)]
    positions = [store.append(e) for e in events]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)

    got = store.read_after(None)  # everything
    assert [p for p, _ in got] == positions
    assert [e for _, e in got] == events  # round trip: type, payload, at, id

    assert [p for p, _ in store.read_after(positions[99])] == positions[100:]
    assert store.read_after(positions[-1]) == []
    # until is inclusive; an until at or before the position gives nothing
    assert [p for p, _ in store.read_after(positions[9], until=positions[19])] == \
        positions[10:20]
    assert [p for p, _ in store.read_after(None, until=positions[0])] == positions[:1]
    assert store.read_after(positions[19], until=positions[19]) == []
    assert store.read_after(positions[19], until=positions[5]) == []
    assert store.describe() == {"kind": "redis", "url": store.url, "prefix": store.prefix,
                                "events": 300}


def test_a_long_log_is_read_page_by_page(store: RedisStore, monkeypatch) -> None:
    monkeypatch.setattr("api.store.redis.PAGE_SIZE", 7)
    positions = [store.append(ev(n)) for n in range(30)]
    assert [p for p, _ in store.read_after(None)] == positions
    assert [p for p, _ in store.read_after(positions[2], until=positions[23])] == \
        positions[3:24]
    assert [p for p, _ in store.read_after(positions[2], until=positions[16])] == \
        positions[3:17]  # until on a page boundary


def test_positions_sort_across_many_events_from_several_writers(
        make_store: Callable[..., RedisStore]) -> None:
    writers = [make_store() for _ in range(3)]
    positions: list[str] = []
    lock = threading.Lock()

    def write(store: RedisStore, k: int) -> None:
        for n in range(100):
            p = store.append(ev(k * 1000 + n))
            with lock:
                positions.append(p)

    threads = [threading.Thread(target=write, args=(w, k)) for k, w in enumerate(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log = writers[0].read_after(None)
    assert [p for p, _ in log] == sorted(positions)  # log order is string order
    # the "applied meanwhile" test of LiveState.catch_up works across the whole log
    assert all(a < b for (a, _), (b, _) in itertools.pairwise(log))


def test_two_workers_see_the_same_log(make_store: Callable[..., RedisStore]) -> None:
    a, b = make_store(), make_store()
    pa = a.append(ev(1))
    pb = b.append(ev(2))
    pa2 = a.append(ev(3))
    assert pa < pb < pa2
    log_a, log_b = a.read_after(None), b.read_after(None)
    assert log_a == log_b
    assert [e.payload["n"] for _, e in log_a] == [1, 2, 3]


def test_blocking_read_returns_an_event_as_soon_as_it_is_appended(
        make_store: Callable[..., RedisStore]) -> None:
    reader, writer = make_store(), make_store()
    start = writer.append(ev(0))
    result: list = []
    returned_at: list[float] = []

    def read() -> None:
        result.extend(reader.read_after(start, block_s=3.0))
        returned_at.append(time.monotonic())

    thread = threading.Thread(target=read)
    thread.start()
    time.sleep(0.3)  # the reader is blocked in XREAD by now
    assert thread.is_alive()
    appended_at = time.monotonic()
    position = writer.append(ev(1))
    thread.join(timeout=5)
    assert [(p, e.payload["n"]) for p, e in result] == [(position, 1)]
    assert returned_at[0] - appended_at < 0.1


def test_blocking_read_longer_than_the_socket_timeout_does_not_fail(
        make_store: Callable[..., RedisStore]) -> None:
    store = make_store(socket_timeout=0.2)
    t0 = time.monotonic()
    assert store.read_after(None, block_s=0.6) == []
    assert 0.55 < time.monotonic() - t0 < 2.0
    assert store.ping()  # and the short-timeout connection is fine


def test_blocking_read_respects_until(make_store: Callable[..., RedisStore]) -> None:
    reader, writer = make_store(), make_store()
    p0 = writer.append(ev(0))
    p1 = writer.append(ev(1))
    writer.append(ev(2))
    # nothing after p1 up to p1, but events exist after it: no block, nothing returned
    t0 = time.monotonic()
    assert reader.read_after(p0, until=p0, block_s=1.0) == []
    assert [p for p, _ in reader.read_after(p0, until=p1, block_s=1.0)] == [p1]
    assert time.monotonic() - t0 < 0.5


def test_alerts_are_mirrored(store: RedisStore, redis_url: str) -> None:
    store.publish_alerts([])
    store.publish_alerts([{"hospital_id": "h1", "new_level": "red", "occupancy": 0.97,
                           "stale": False, "bed_type": None}])
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        [(_, fields)] = client.xrange(store.alerts_key)
    finally:
        client.close()
    assert fields == {"hospital_id": "h1", "new_level": "red", "occupancy": "0.97",
                      "stale": "false", "bed_type": "null"}


def test_a_malformed_entry_becomes_an_invalid_event_not_a_stall(
        store: RedisStore, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        client.xadd(store.events_key, {"something": "else"})
    finally:
        client.close()
    p = store.append(ev(1))
    log = store.read_after(None)
    assert [e.type for _, e in log] == ["store.invalid", "traffic.remove"]
    assert log[1][0] == p


def test_unreachable_redis_is_reported_quickly_and_never_raises_on_ping() -> None:
    port = _free_port()
    store = RedisStore(f"redis://:pw@127.0.0.1:{port}/0", prefix="nowhere")
    try:
        assert store.ping() is False
        t0 = time.monotonic()
        with pytest.raises(StoreUnavailable, match=rf"127\.0\.0\.1:{port}.*XADD") as exc:
            store.append(ev(1))
        assert "pw" not in str(exc.value)
        with pytest.raises(StoreUnavailable, match="XRANGE"):
            store.read_after(None, block_s=0.1)
        assert time.monotonic() - t0 < 2.0
        assert store.describe() == {"kind": "redis", "url": f"redis://:***@127.0.0.1:{port}/0",
                                    "prefix": "nowhere", "events": None}
    finally:
        store.close()
    with pytest.raises(StoreUnavailable, match="closed"):
        store.append(ev(2))


# ------------------------------------------------------------------------------ outages
def _free_port() -> int:
    for port in range(6390, 6400):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A ``redis-server`` subprocess of our own, on a loopback port."""

    def __init__(self, port: int, workdir: Path, *, appendonly: bool = False) -> None:
        self.port, self.workdir, self.appendonly = port, workdir, appendonly
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            _unavailable("redis-server not on PATH")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes" if self.appendonly else "no", "--dir", str(self.workdir),
             "--daemonize", "no", "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2, socket_timeout=0.5)
        try:
            deadline = time.monotonic() + 5
            while True:
                try:
                    if client.ping():
                        return
                except (redis.RedisError, OSError):
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        self.stop()
                        pytest.fail(f"redis-server on port {self.port} did not start")
                    time.sleep(0.02)
        finally:
            client.close()

    def stop(self, *, kill: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill() if kill else self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    servers: list[RedisServer] = []

    def make(*, appendonly: bool = False) -> RedisServer:
        server = RedisServer(_free_port(), tmp_path, appendonly=appendonly)
        servers.append(server)
        server.start()
        return server

    yield make
    for server in servers:
        server.stop(kill=True)


def test_outage_then_recovery_with_the_same_store_object(own_server) -> None:
    server = own_server()
    store = RedisStore(server.url, prefix="outage")
    try:
        store.append(ev(1))
        assert store.ping()
        store.read_after(None)  # a pooled connection, idle when the server goes away

        server.stop()
        t0 = time.monotonic()
        with pytest.raises(StoreUnavailable, match=rf"127\.0\.0\.1:{server.port}"):
            store.append(ev(2))
        assert time.monotonic() - t0 < 2.0
        assert store.ping() is False
        with pytest.raises(StoreUnavailable):
            store.read_after(None)
        with pytest.raises(StoreUnavailable):
            store.read_after(None, block_s=0.2)
        assert store.describe()["events"] is None

        server.start()  # same port, empty (not persistent)
        assert store.ping()
        p = store.append(ev(3))
        assert [(q, e.payload["n"]) for q, e in store.read_after(None)] == [(p, 3)]
        assert store.read_after(None, block_s=0.2)  # the blocking pool reconnects too
    finally:
        store.close()


def test_acknowledged_events_survive_a_killed_server(own_server) -> None:
    server = own_server(appendonly=True)
    store = RedisStore(server.url, prefix="durable")
    try:
        positions = [store.append(ev(n)) for n in range(50)]
        server.stop(kill=True)  # SIGKILL: no clean shutdown
        with pytest.raises(StoreUnavailable):
            store.append(ev(99))  # not acknowledged: may not be in the log
        server.start()  # replays its append-only file
        log = store.read_after(None)
        assert [p for p, _ in log] == positions
        assert [e.payload["n"] for _, e in log] == list(range(50))
        after = store.append(ev(50))
        assert after > positions[-1]
    finally:
        store.close()


# ------------------------------------------------------------------------------ LiveState
@pytest.fixture(scope="module")
def oneway_graph():
    return load_graph(ONEWAY, cache=False)


def _live(graph, store: RedisStore) -> LiveState:
    return LiveState(graph, Router(graph), HospitalBoard([]), store)


def _closed(state: LiveState) -> tuple[set[int], set[int]]:
    entries = {int(e) for entry in state.overlay.entries() if entry.kind == "closure"
               for e in entry.edges}
    weights = state.overlay.weights("car")
    return entries, set(np.flatnonzero(np.isinf(weights.values)).tolist())


def test_two_live_states_on_one_prefix_converge(oneway_graph,
                                                make_store: Callable[..., RedisStore]) -> None:
    a = _live(oneway_graph, make_store())
    b = _live(oneway_graph, make_store())
    late = None
    try:
        b.start()  # following (empty log)
        assert b.overlay.version == 0
        no_entries, wrong_way = _closed(b)  # one-way roads are impassable backwards
        assert no_entries == set() and 0 not in wrong_way

        a.submit("traffic.apply", {"changes": [{"type": "Closure", "edges": [0]}]})
        submitted_at = time.monotonic()
        assert a.overlay.version == 1
        closed = _closed(a)
        assert 0 in closed[0] and closed[1] == wrong_way | closed[0]
        while (b.overlay.version, _closed(b)) != (a.overlay.version, closed):
            assert time.monotonic() - submitted_at < 0.1, "worker b did not follow in 100 ms"
            time.sleep(0.002)
        assert b.position == a.position
        assert [e.id for e in b.overlay.entries()] == [e.id for e in a.overlay.entries()]

        # the other way round, and a worker started later replays the log
        b.submit("traffic.remove", {"ids": [a.overlay.entries()[0].id]})
        a.catch_up()
        assert a.overlay.version == b.overlay.version == 2
        assert _closed(a) == _closed(b) == (set(), wrong_way)
        late = _live(oneway_graph, make_store())
        late.start()
        assert late.overlay.version == 2 and late.position == b.position
        assert not (a.stale or b.stale or late.stale)
    finally:
        for state in (a, b, late):
            if state is not None:
                state.stop()
