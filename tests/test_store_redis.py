"""RedisStore against a real Redis server (127.0.0.1:6379), plus servers of our own for outages.

Outside CI, no Redis (or no ``redis-server`` binary) skips these tests with the reason; with
``CI=true`` they fail, so a CI machine without Redis can never go green by skipping.
"""

from __future__ import annotations

import itertools
import json
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
from api.store import (
    Cursor,
    Event,
    LogHead,
    LogReset,
    LogTrimmed,
    Record,
    Snapshot,
    StoreUnavailable,
)
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
def _cursor(store: RedisStore) -> Cursor:
    """A cursor at the start of the store's log (created if there is none)."""
    head = store.head()
    if head.epoch is None:
        head = store.create()
    assert head.epoch is not None
    return Cursor(head.epoch)


def _after(store: RedisStore, record: Record) -> Cursor:
    return Cursor(store.head().epoch or "", record.seq, record.position)


def test_append_and_read_in_order(store: RedisStore) -> None:
    start = _cursor(store)
    assert store.read(start) == []
    events = [ev(n) for n in range(300)]
    records = [store.append(e, cursor=start) for e in events]
    positions = [r.position for r in records]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert [r.seq for r in records] == list(range(1, 301))  # numbered without gaps

    got = store.read(start)  # everything
    assert got == records
    assert [r.event for r in got] == events  # round trip: type, payload, at, id

    assert store.read(_after(store, records[99])) == records[100:]
    assert store.read(_after(store, records[-1])) == []
    # until is inclusive; an until at or before the position gives nothing
    assert store.read(_after(store, records[9]), until=positions[19]) == records[10:20]
    assert store.read(start, until=positions[0]) == records[:1]
    assert store.read(_after(store, records[19]), until=positions[19]) == []
    assert store.read(_after(store, records[19]), until=positions[5]) == []
    assert store.describe() == {"kind": "redis", "url": store.url, "prefix": store.prefix,
                                "events": 300}
    head = store.head()
    assert (head.seq, head.base, head.parent, head.seed_seq) == (300, 0, None, 0)


def test_a_long_log_is_read_page_by_page(store: RedisStore, monkeypatch) -> None:
    monkeypatch.setattr("api.store.redis.PAGE_SIZE", 7)
    start = _cursor(store)
    records = [store.append(ev(n), cursor=start) for n in range(30)]
    assert store.read(start) == records
    assert store.read(_after(store, records[2]), until=records[23].position) == records[3:24]
    assert store.read(_after(store, records[2]), until=records[16].position) == \
        records[3:17]  # until on a page boundary


def test_positions_sort_across_many_events_from_several_writers(
        make_store: Callable[..., RedisStore]) -> None:
    writers = [make_store() for _ in range(3)]
    start = _cursor(writers[0])
    got: list[Record] = []
    lock = threading.Lock()

    def write(store: RedisStore, k: int) -> None:
        for n in range(100):
            r = store.append(ev(k * 1000 + n), cursor=start)
            with lock:
                got.append(r)

    threads = [threading.Thread(target=write, args=(w, k)) for k, w in enumerate(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log = writers[0].read(start)
    assert [r.position for r in log] == sorted(r.position for r in got)  # string order
    assert [r.seq for r in log] == list(range(1, 301))  # numbers follow log order
    assert all(a.position < b.position for a, b in itertools.pairwise(log))


def test_two_workers_see_the_same_log(make_store: Callable[..., RedisStore]) -> None:
    a, b = make_store(), make_store()
    start = _cursor(a)
    pa = a.append(ev(1), cursor=start)
    pb = b.append(ev(2), cursor=start)
    pa2 = a.append(ev(3), cursor=start)
    assert pa.position < pb.position < pa2.position
    log_a, log_b = a.read(start), b.read(start)
    assert log_a == log_b
    assert [r.event.payload["n"] for r in log_a] == [1, 2, 3]


def test_blocking_read_returns_an_event_as_soon_as_it_is_appended(
        make_store: Callable[..., RedisStore]) -> None:
    reader, writer = make_store(), make_store()
    start = _cursor(writer)
    first = writer.append(ev(0), cursor=start)
    result: list = []
    returned_at: list[float] = []

    def read() -> None:
        result.extend(reader.read(_after(reader, first), block_s=3.0))
        returned_at.append(time.monotonic())

    thread = threading.Thread(target=read)
    thread.start()
    time.sleep(0.3)  # the reader is blocked in XREAD by now
    assert thread.is_alive()
    appended_at = time.monotonic()
    record = writer.append(ev(1), cursor=start)
    thread.join(timeout=5)
    assert [(r.position, r.seq, r.event.payload["n"]) for r in result] == [
        (record.position, 2, 1)]
    assert returned_at[0] - appended_at < 0.5


def test_blocking_read_longer_than_the_socket_timeout_does_not_fail(
        make_store: Callable[..., RedisStore]) -> None:
    store = make_store(socket_timeout=0.2)
    start = _cursor(store)
    t0 = time.monotonic()
    assert store.read(start, block_s=0.6) == []
    assert 0.55 < time.monotonic() - t0 < 2.0
    assert store.ping()  # and the short-timeout connection is fine


def test_blocking_read_respects_until(make_store: Callable[..., RedisStore]) -> None:
    reader, writer = make_store(), make_store()
    start = _cursor(writer)
    r0 = writer.append(ev(0), cursor=start)
    r1 = writer.append(ev(1), cursor=start)
    writer.append(ev(2), cursor=start)
    # nothing after r0 up to r0, but events exist after it: no block, nothing returned
    t0 = time.monotonic()
    assert reader.read(_after(reader, r0), until=r0.position, block_s=1.0) == []
    assert reader.read(_after(reader, r0), until=r1.position, block_s=1.0) == [r1]
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


def test_an_entry_not_written_by_a_store_is_returned_unnumbered_not_a_stall(
        store: RedisStore, redis_url: str) -> None:
    start = _cursor(store)
    client = redis.Redis.from_url(redis_url)
    try:
        client.xadd(store.events_key, {"something": "else"})
    finally:
        client.close()
    r = store.append(ev(1), cursor=start)
    log = store.read(start)
    assert [(e.event.type, e.seq) for e in log] == [("store.invalid", 0), ("traffic.remove", 1)]
    assert log[1] == r


def test_unreachable_redis_is_reported_quickly_and_never_raises_on_ping() -> None:
    port = _free_port()
    store = RedisStore(f"redis://:pw@127.0.0.1:{port}/0", prefix="nowhere")
    try:
        assert store.ping() is False
        t0 = time.monotonic()
        with pytest.raises(StoreUnavailable, match=rf"127\.0\.0\.1:{port}.*XADD") as exc:
            store.append(ev(1), cursor=Cursor("e"))
        assert "pw" not in str(exc.value)
        with pytest.raises(StoreUnavailable, match="XRANGE"):
            store.read(Cursor("e"), block_s=0.1)
        assert time.monotonic() - t0 < 2.0
        assert store.describe() == {"kind": "redis", "url": f"redis://:***@127.0.0.1:{port}/0",
                                    "prefix": "nowhere", "events": None}
        assert store.persistence()["durable"] is None
    finally:
        store.close()
    with pytest.raises(StoreUnavailable, match="closed"):
        store.append(ev(2), cursor=Cursor("e"))


# ------------------------------------------------------------------------------ generations
def test_a_log_is_created_once_and_refuses_other_generations(
        make_store: Callable[..., RedisStore], redis_url: str) -> None:
    a, b = make_store(), make_store()
    assert a.head().epoch is None
    first = a.create()
    assert first.epoch and first.seq == 0 and first.unwritten
    assert b.create() == first  # already there: nothing changed
    mine = Cursor(first.epoch)
    a.append(ev(1), cursor=mine)
    with pytest.raises(LogReset) as exc:
        a.append(ev(2), cursor=Cursor("another-epoch"))
    assert exc.value.reason == "replaced"
    with pytest.raises(LogReset, match="generation"):
        b.read(Cursor("another-epoch"))
    with pytest.raises(LogReset) as exc:  # the log ends before what the caller applied
        a.read(Cursor(first.epoch, 5))
    assert exc.value.reason == "rollback"
    # the keys vanish (a Redis restarted without persistence): reads and writes notice
    client = redis.Redis.from_url(redis_url)
    try:
        client.delete(a.meta_key, a.events_key)
    finally:
        client.close()
    with pytest.raises(LogReset) as exc:
        a.append(ev(3), cursor=Cursor(first.epoch, 1))
    assert exc.value.reason == "reset" and exc.value.head == LogHead(epoch=None)
    with pytest.raises(LogReset) as exc:
        b.read(Cursor(first.epoch, 1))
    assert exc.value.reason == "reset"


def test_a_seeded_generation_continues_the_numbering_and_replacing_is_atomic(
        store: RedisStore) -> None:
    first = store.create()
    assert first.epoch is not None
    for n in range(3):
        store.append(ev(n), cursor=Cursor(first.epoch))
    seed = Snapshot(first.epoch, 3, None, {"state": "at 3"})
    stale = LogHead(epoch=first.epoch, seq=2)
    assert store.create(seed=seed, replace=stale).epoch == first.epoch  # CAS failed
    head = store.create(seed=seed, replace=store.head())
    assert head.epoch != first.epoch and head.parent == first.epoch
    assert (head.seq, head.seed_seq, head.base, head.snapshot_seq) == (3, 3, 3, 3)
    assert head.unwritten
    snap = store.load_snapshot()
    assert snap is not None and (snap.epoch, snap.seq, snap.position, snap.data) == (
        head.epoch, 3, None, {"state": "at 3"})
    assert head.epoch is not None
    assert store.read(Cursor(head.epoch, 3)) == []
    r = store.append(ev(4), cursor=Cursor(head.epoch, 3))
    assert r.seq == 4 and not store.head().unwritten
    with pytest.raises(LogTrimmed):  # before the seed: only the snapshot has it
        store.read(Cursor(head.epoch, 1))


def test_a_log_written_before_generations_is_kept_and_numbered(
        store: RedisStore, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        for n in range(3):
            client.xadd(store.events_key, {"event": json.dumps(ev(n).to_dict())})
    finally:
        client.close()
    head = store.create()
    assert head.epoch is not None and head.seq == 3 and not head.unwritten
    assert [(r.seq, r.event.payload["n"]) for r in store.read(Cursor(head.epoch))] == [
        (1, 0), (2, 1), (3, 2)]


def test_snapshots_trim_the_log_one_interval_behind(store: RedisStore) -> None:
    head = store.create()
    assert head.epoch is not None
    start = Cursor(head.epoch)
    records = [store.append(ev(n), cursor=start) for n in range(30)]

    def snap(k: int) -> Snapshot:
        return Snapshot(head.epoch or "", k, records[k - 1].position, {"at": k})

    assert store.save_snapshot(snap(10))
    assert store.head().base == 0 and len(store.read(start)) == 30  # nothing trimmed yet
    assert not store.save_snapshot(snap(10))  # not newer
    assert not store.save_snapshot(Snapshot("other", 12, records[11].position, {}))
    assert store.save_snapshot(snap(20))
    h = store.head()
    assert (h.base, h.snapshot_seq) == (10, 20)
    assert store.describe()["events"] == 20  # events 1..10 trimmed (XTRIM MINID)
    with pytest.raises(LogTrimmed):
        store.read(Cursor(head.epoch, 5, records[4].position))
    assert store.read(Cursor(head.epoch, 10, records[9].position)) == records[10:]
    assert store.read(Cursor(head.epoch, 15, records[14].position)) == records[15:]
    loaded = store.load_snapshot()
    assert loaded is not None and (loaded.seq, loaded.data) == (20, {"at": 20})


# ------------------------------------------------------------------------------ outages
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A ``redis-server`` subprocess of our own, on a loopback port."""

    def __init__(self, port: int, workdir: Path, *, appendonly: bool = False,
                 extra: list[str] | None = None) -> None:
        self.port, self.workdir, self.appendonly = port, workdir, appendonly
        self.extra = list(extra or [])
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
             "--daemonize", "no", "--protected-mode", "no", *self.extra],
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

    def make(*, appendonly: bool = False, extra: list[str] | None = None) -> RedisServer:
        workdir = tmp_path / f"redis-{len(servers)}"
        workdir.mkdir()
        server = RedisServer(_free_port(), workdir, appendonly=appendonly, extra=extra)
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
        start = _cursor(store)
        store.append(ev(1), cursor=start)
        assert store.ping()
        store.read(start)  # a pooled connection, idle when the server goes away

        server.stop()
        t0 = time.monotonic()
        with pytest.raises(StoreUnavailable, match=rf"127\.0\.0\.1:{server.port}"):
            store.append(ev(2), cursor=start)
        assert time.monotonic() - t0 < 2.0
        assert store.ping() is False
        with pytest.raises(StoreUnavailable):
            store.read(start)
        with pytest.raises(StoreUnavailable):
            store.read(start, block_s=0.2)
        assert store.describe()["events"] is None

        server.start()  # same port, empty (not persistent): the old log is gone, and said so
        assert store.ping()
        with pytest.raises(LogReset) as exc:
            store.append(ev(3), cursor=start)
        assert exc.value.reason == "reset"
        fresh = _cursor(store)
        r = store.append(ev(3), cursor=fresh)
        assert [(q.position, q.event.payload["n"]) for q in store.read(fresh)] == [
            (r.position, 3)]
        assert store.read(fresh, block_s=0.2)  # the blocking pool reconnects too
    finally:
        store.close()


def test_acknowledged_events_survive_a_killed_server(own_server) -> None:
    server = own_server(appendonly=True)
    store = RedisStore(server.url, prefix="durable")
    try:
        start = _cursor(store)
        records = [store.append(ev(n), cursor=start) for n in range(50)]
        server.stop(kill=True)  # SIGKILL: no clean shutdown
        with pytest.raises(StoreUnavailable):
            store.append(ev(99), cursor=start)  # not acknowledged: may not be in the log
        server.start()  # replays its append-only file
        log = store.read(start)
        assert log == records
        after = store.append(ev(50), cursor=Cursor(start.epoch, 50))
        assert after.position > records[-1].position and after.seq == 51
    finally:
        store.close()


def test_persistence_is_reported_and_a_disabled_config_is_no_error(own_server) -> None:
    plain = own_server()
    aof = own_server(appendonly=True)
    hidden = own_server(extra=["--rename-command", "CONFIG", ""])
    stores = [RedisStore(s.url, prefix="p") for s in (plain, aof, hidden)]
    try:
        none, durable, unknown = (s.persistence() for s in stores)
        assert none["durable"] is False and "loses the whole log" in none["detail"]
        assert (none["appendonly"], none["save"]) == ("no", "")
        assert durable["durable"] is True and durable["appendonly"] == "yes"
        assert durable["appendfsync"] == "everysec" and "1 s" in durable["detail"]
        assert unknown["durable"] is None and "CONFIG" in unknown["detail"]
    finally:
        for s in stores:
            s.close()


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


# ------------------------------------------------------------------------------ resets
def _close(state: LiveState, edge: int) -> None:
    state.submit("traffic.apply", {"changes": [{"type": "Closure", "edges": [edge]}]})


def _same(*states: LiveState) -> None:
    first = states[0]
    for other in states[1:]:
        assert other.overlay.version == first.overlay.version
        assert [e.id for e in other.overlay.entries()] == [e.id for e in first.overlay.entries()]
        assert other.seq == first.seq


def _until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_a_redis_restarted_empty_is_healed_and_a_new_worker_serves_everything(
        oneway_graph, own_server) -> None:
    """Defect: two workers, Redis restarted without persistence, more writes, a worker
    respawned: it served only the writes after the reset. Now the first worker to notice
    re-seeds the log from its state, the other adopts it, and the respawned one gets all."""
    server = own_server()  # --save "" --appendonly no
    states: list[LiveState] = []

    def worker() -> LiveState:
        state = _live(oneway_graph, RedisStore(server.url, prefix="reset"))
        states.append(state)
        state.start()
        return state

    try:
        a, b = worker(), worker()
        for edge in (0, 1, 2):
            _close(a, edge)
        _until(lambda: b.overlay.version == 3)
        server.stop()  # SIGTERM with save "": nothing written, like shutdown nosave
        server.start()
        _close(a, 3)  # refused by the empty log, healed, then written
        _close(b, 4)
        _until(lambda: a.overlay.version == b.overlay.version == 5)
        respawned = worker()
        _same(a, b, respawned)
        assert respawned.overlay.version == 5 and len(respawned.overlay.entries()) == 5
        actions = sorted(s.health()["log"]["last_reset"]["action"].split()[0] for s in (a, b))
        assert actions == ["adopted", "re-seeded"]
        assert all(s.health()["log"]["resets"] == 1 and s.counters.events_lost == 0
                   for s in (a, b))
        assert respawned.health()["log"]["resets"] == 0
        assert a.health()["store"]["persistence"]["durable"] is False
    finally:
        for state in states:
            state.stop()


def _roll_back(client: redis.Redis, store: RedisStore, n: int) -> None:
    """What Redis restarted from an older file looks like: the stream and its meta, both
    ``n`` events back."""
    last = client.xrevrange(store.events_key, count=n)
    client.xdel(store.events_key, *[stream_id for stream_id, _ in last])
    client.hincrby(store.meta_key, "seq", -n)


def test_a_redis_that_lost_its_last_events_is_re_seeded(oneway_graph,
                                                        make_store: Callable[..., RedisStore],
                                                        redis_url: str) -> None:
    """Redis back from an older file (appendfsync everysec, RDB): the log ends before what a
    worker applied; it re-seeds the log before anyone writes over the gap."""
    a = _live(oneway_graph, make_store())
    a.catch_up()
    for edge in range(5):
        _close(a, edge)
    store = make_store()
    client = redis.Redis.from_url(redis_url)
    try:
        _roll_back(client, store, 2)
    finally:
        client.close()
    _close(a, 5)  # detects, re-seeds, writes
    fresh = _live(oneway_graph, make_store())
    fresh.catch_up()
    _same(a, fresh)
    assert fresh.overlay.version == 6
    reset = a.health()["log"]["last_reset"]
    assert reset["reason"] == "rollback" and reset["action"].startswith("re-seeded")
    assert reset["was"]["seq"] == 5 and reset["found"]["seq"] == 3


def test_a_rolled_back_log_already_written_over_is_followed_not_overwritten(
        oneway_graph, make_store: Callable[..., RedisStore], redis_url: str) -> None:
    """Redis lost events 4 and 5 (written by ``ahead``); ``lagging`` (which had applied
    only 1..3) wrote a new event 4 before ``ahead`` noticed. Re-seeding from ``ahead`` would
    silently drop that acknowledged write: ``ahead`` follows the log and reports its 2
    lost events instead."""
    ahead, lagging = _live(oneway_graph, make_store()), _live(oneway_graph, make_store())
    ahead.catch_up()
    lagging.catch_up()
    for edge in range(3):
        _close(ahead, edge)
    lagging.catch_up()
    for edge in (3, 4):
        _close(ahead, edge)
    store = make_store()
    client = redis.Redis.from_url(redis_url)
    try:
        _roll_back(client, store, 2)
    finally:
        client.close()
    lagging.submit("traffic.apply", {"changes": [{"type": "Closure", "id": "kept",
                                                   "edges": [5]}]})
    ahead.catch_up()
    _same(ahead, lagging)
    assert "kept" in {e.id for e in ahead.overlay.entries()}
    assert ahead.counters.events_lost == 2 and lagging.counters.log_resets == 0
    assert ahead.health()["log"]["last_reset"]["reason"] == "rollback"


def test_a_worker_that_lost_the_race_adopts_the_log_and_reports_lost_events(
        oneway_graph, make_store: Callable[..., RedisStore], redis_url: str) -> None:
    """If another worker already wrote to a new, empty log before this one noticed the
    reset, this one follows that log (one state for all) and says what it lost."""
    a = _live(oneway_graph, make_store())
    a.catch_up()
    for edge in range(3):
        _close(a, edge)
    store = make_store()
    client = redis.Redis.from_url(redis_url)
    try:
        client.delete(store.meta_key, store.events_key, store.snapshot_key)
    finally:
        client.close()
    other = _live(oneway_graph, make_store())
    other.catch_up()  # finds no log: creates an empty one
    _close(other, 4)
    a.catch_up()
    _same(a, other)
    assert a.overlay.version == 1 and a.counters.events_lost == 3
    info = a.health()["log"]
    assert info["events_lost"] == 3 and info["last_reset"]["events_lost"] == 3
    assert "lost" in info["last_reset"]["action"]


def test_a_worker_behind_the_compacted_log_reloads_the_snapshot_and_a_new_one_starts_from_it(
        oneway_graph, make_store: Callable[..., RedisStore]) -> None:
    writer = LiveState(oneway_graph, Router(oneway_graph), HospitalBoard([]), make_store(),
                       snapshot_every=5)
    lagging = _live(oneway_graph, make_store())
    writer.catch_up()
    lagging.catch_up()  # attached at event 0, then left behind
    for n in range(23):
        _close(writer, n % oneway_graph.n_edges) if n % 2 == 0 else writer.submit(
            "traffic.remove", {"ids": [writer.overlay.entries()[-1].id]})
        writer._maybe_snapshot()
    head = writer.store.head()
    assert head.snapshot_seq == 20 and head.base == 15  # trimmed one interval behind
    assert writer.counters.snapshots_taken == 4
    lagging.catch_up()
    _same(writer, lagging)
    assert lagging.counters.snapshots_loaded == 1
    late = _live(oneway_graph, make_store())
    late.start()
    try:
        _same(writer, late)
        assert late.counters.snapshots_loaded == 1 and late.counters.events_applied == 3
        assert _closed(late) == _closed(writer)
    finally:
        late.stop()
