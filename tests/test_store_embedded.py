"""The embedded store's file (torn tails, corruption, kill -9 mid-write, compaction), and the
snapshots of the live state it keeps (overlay, board, LiveState restart).

No server needed: everything runs on files in ``tmp_path`` and on the Monaco extract.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from api.state import LiveState
from api.store import (
    Cursor,
    EmbeddedStore,
    Event,
    LogReset,
    LogTrimmed,
    Snapshot,
    StoreCorrupt,
    StoreUnavailable,
)
from engine.hospitals import HospitalBoard, hospitals_from_graph
from engine.query import Router
from engine.traffic import ClassFactor, Closure, TrafficOverlay, WaySpeeds

T0 = datetime(2026, 3, 17, 8, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent


def ev(n: int) -> Event:
    return Event("traffic.remove", {"ids": [f"entry-{n}"], "n": n})


def _cursor(store: EmbeddedStore) -> Cursor:
    head = store.head()
    assert head.epoch is not None
    return Cursor(head.epoch, head.seq)


def _write(store: EmbeddedStore, n: int) -> None:
    store.append(ev(n), cursor=_cursor(store))


def _numbers(store: EmbeddedStore) -> list[int]:
    return [r.event.payload["n"] for r in store.read(Cursor(_cursor(store).epoch,
                                                            store.head().base))]


# ------------------------------------------------------------------------------ the file
def test_events_survive_a_restart_in_order(tmp_path: Path) -> None:
    path = tmp_path / "state.jsonl"
    store = EmbeddedStore(path)
    records = [store.append(ev(n), cursor=_cursor(store)) for n in range(5)]
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert [r.position for r in records] == sorted(r.position for r in records)
    epoch = store.head().epoch
    store.close()
    again = EmbeddedStore(path)
    assert again.head().epoch == epoch and again.head().seq == 5
    assert again.read(Cursor(epoch or "", 2, records[1].position)) == records[2:]
    assert again.read(Cursor(epoch or "", 0), until=records[1].position) == records[:2]
    with pytest.raises(LogReset):
        again.read(Cursor("another", 0))
    with pytest.raises(LogReset):
        again.append(ev(9), cursor=Cursor(epoch or "", 7))  # beyond the log's end


def test_a_torn_last_line_is_cut_kept_aside_and_the_next_write_starts_clean(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Defect: a write merged with the torn fragment, was dropped at the next restart, and
    one write later start-up failed with "state file is corrupt"."""
    path = tmp_path / "state.jsonl"
    store = EmbeddedStore(path)
    for n in range(3):
        _write(store, n)
    store.close()
    fragment = b'{"type":"traffic.remove","payload":{"ids":["entry-99"'
    with open(path, "ab") as f:  # power loss in the middle of a write
        f.write(fragment)
    with caplog.at_level(logging.WARNING, logger="gyrophare.store.embedded"):
        store = EmbeddedStore(path)
    assert "torn last line" in caplog.text and ".corrupt" in caplog.text
    assert store.torn_tails == 1
    assert (tmp_path / "state.jsonl.corrupt").read_bytes() == fragment + b"\n"
    assert _numbers(store) == [0, 1, 2]
    _write(store, 3)  # acknowledged: must survive the next restarts
    store.close()
    assert path.read_bytes().endswith(b"\n")
    store = EmbeddedStore(path)
    assert _numbers(store) == [0, 1, 2, 3] and store.torn_tails == 0
    _write(store, 4)
    store.close()
    assert _numbers(EmbeddedStore(path)) == [0, 1, 2, 3, 4]


def test_a_cut_at_any_byte_of_the_last_write_loses_only_that_write(tmp_path: Path) -> None:
    """Power loss at every possible point of the last write (including a NUL-filled tail,
    what some file systems leave)."""
    reference = tmp_path / "ref.jsonl"
    store = EmbeddedStore(reference)
    for n in range(3):
        _write(store, n)
    before = reference.stat().st_size
    _write(store, 3)
    store.close()
    data = reference.read_bytes()
    cuts = sorted({before, before + 1, len(data) - 1, *random.Random(5).sample(
        range(before, len(data)), 12)})
    for k, cut in enumerate(cuts):
        for tail in (b"", b"\0" * 40):
            path = tmp_path / f"cut-{k}-{len(tail)}.jsonl"
            path.write_bytes(data[:cut] + tail)
            store = EmbeddedStore(path)
            assert _numbers(store) == [0, 1, 2], cut
            _write(store, 7)
            store.close()
            assert _numbers(EmbeddedStore(path)) == [0, 1, 2, 7], cut


def test_a_corrupt_line_before_the_last_stops_start_up_with_the_line_and_the_repair(
        tmp_path: Path) -> None:
    path = tmp_path / "state.jsonl"
    store = EmbeddedStore(path)
    for n in range(4):
        _write(store, n)
    store.close()
    lines = path.read_bytes().split(b"\n")
    lines[2] = b"#garbage#" + lines[2]  # line 3: the second event
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(StoreCorrupt) as exc:
        EmbeddedStore(path)
    message = str(exc.value)
    assert "line 3" in message and str(path) in message
    assert f"sed -i '3d' {path}" in message and "head -n 2" in message
    subprocess.run(["sed", "-i", "3d", str(path)], check=True)  # the repair the message gives
    assert _numbers(EmbeddedStore(path)) == [0, 2, 3]


def test_a_failed_write_is_cut_before_the_next_one(tmp_path: Path, monkeypatch) -> None:
    """A full disk: the write fails half-way (not acknowledged); the next one must not merge
    with what was written of it."""
    path = tmp_path / "state.jsonl"
    store = EmbeddedStore(path)
    _write(store, 0)
    real_write, calls = os.write, []

    def half_then_full(fd: int, data) -> int:
        calls.append(1)
        if len(calls) == 1:
            real_write(fd, bytes(data[: len(data) // 2]))
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", half_then_full)
    monkeypatch.setattr(os, "ftruncate", lambda fd, size: (_ for _ in ()).throw(
        OSError(28, "No space left on device")) if len(calls) == 1 else None)
    with pytest.raises(StoreUnavailable, match="No space left"):
        _write(store, 1)
    monkeypatch.undo()
    _write(store, 2)  # the fragment of write 1 is cut first
    store.close()
    assert _numbers(EmbeddedStore(path)) == [0, 2]


def test_a_file_of_the_older_format_is_read_and_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "state.jsonl"
    path.write_text("".join(json.dumps(ev(n).to_dict()) + "\n" for n in range(3)))
    store = EmbeddedStore(path)
    assert _numbers(store) == [0, 1, 2]
    assert b"gyrophare_log" in path.read_bytes().split(b"\n")[0]
    _write(store, 3)
    store.close()
    assert _numbers(EmbeddedStore(path)) == [0, 1, 2, 3]


WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from api.store import Cursor, EmbeddedStore, Event
    store = EmbeddedStore({path!r})
    head = store.head()
    n = head.seq
    while True:
        n += 1
        payload = {{"ids": ["entry-%d" % n], "n": n, "pad": "x" * (n * 37 % 5000)}}
        record = store.append(Event("traffic.remove", payload),
                              cursor=Cursor(head.epoch, n - 1))
        print(record.seq, flush=True)  # acknowledged
""")


def test_kill_9_mid_write_loses_no_acknowledged_write(tmp_path: Path) -> None:
    """A process writing as fast as it can, killed (SIGKILL) at random moments, three times:
    every write it acknowledged is there after, the file opens, and writing goes on."""
    path = tmp_path / "state.jsonl"
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(root=str(ROOT), path=str(path)))
    rng = random.Random(11)
    acknowledged: list[int] = []
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                                text=True)
        assert proc.stdout is not None
        first = proc.stdout.readline()  # running
        time.sleep(rng.uniform(0.05, 0.4))
        proc.send_signal(signal.SIGKILL)
        rest, _ = proc.communicate(timeout=10)
        acknowledged += [int(x) for x in (first + rest).split()]
        store = EmbeddedStore(path)
        seen = _numbers(store)
        store.close()
        assert seen == list(range(1, len(seen) + 1))  # in order, no gap
        assert set(acknowledged) <= set(seen)
        assert len(seen) <= max(acknowledged) + 1  # at most the one not yet acknowledged
    assert len(acknowledged) > 3


# ------------------------------------------------------------------------------ compaction
def test_a_snapshot_compacts_the_file_and_a_restart_reads_only_what_follows(
        tmp_path: Path) -> None:
    path = tmp_path / "state.jsonl"
    store = EmbeddedStore(path)
    records = [store.append(ev(n), cursor=_cursor(store)) for n in range(10)]
    epoch = store.head().epoch or ""
    size = path.stat().st_size
    assert store.save_snapshot(Snapshot(epoch, 8, records[7].position, {"at": 8}))
    assert not store.save_snapshot(Snapshot(epoch, 8, records[7].position, {"at": 8}))
    assert not store.save_snapshot(Snapshot("other", 9, records[8].position, {}))
    assert path.stat().st_size < size
    assert len(path.read_bytes().splitlines()) == 3  # header (with the snapshot) + 2 events
    with pytest.raises(LogTrimmed):
        store.read(Cursor(epoch, 5, records[4].position))
    assert store.read(Cursor(epoch, 8, records[7].position)) == records[8:]
    _write(store, 10)
    store.close()
    again = EmbeddedStore(path)
    snap = again.load_snapshot()
    assert snap is not None and (snap.seq, snap.data) == (8, {"at": 8})
    head = again.head()
    assert (head.epoch, head.seq, head.base, head.snapshot_seq) == (epoch, 11, 8, 8)
    assert [r.event.payload["n"] for r in again.read(Cursor(epoch, 8))] == [8, 9, 10]
    assert not list(tmp_path.glob("*.tmp"))


# ------------------------------------------------------------------------------ the engine
def _overlay_with_history(graph) -> tuple[TrafficOverlay, list[str]]:
    overlay = TrafficOverlay(graph)
    rng = np.random.default_rng(3)
    ids: list[str] = []
    for step in range(40):
        at = T0 + timedelta(minutes=step)
        if ids and rng.random() < 0.25:
            overlay.remove(ids.pop(int(rng.integers(len(ids)))), at=at)
            continue
        kind = int(rng.integers(4))
        if kind == 0:
            change = Closure(edges=rng.integers(0, graph.n_edges, 5).tolist(),
                             starts_at=at + timedelta(minutes=int(rng.integers(0, 20))),
                             expires_at=at + timedelta(minutes=int(rng.integers(21, 60))))
        elif kind == 1:
            change = ClassFactor(classes=["residential"], factor=float(rng.uniform(0.3, 0.9)),
                                 expires_at=at + timedelta(minutes=30))
        elif kind == 2:
            way = int(rng.choice(graph.way_id[graph.way_id > 0]))
            change = WaySpeeds(speeds={way: float(rng.uniform(5, 60))})
        else:
            change = Closure(edges=rng.integers(0, graph.n_edges, 400).tolist())  # large
        ids += overlay.apply(change, at=at)
        overlay.weights("car", at=at)
    return overlay, ids


def test_an_overlay_restored_from_its_snapshot_gives_the_same_weights_at_any_time(
        monaco) -> None:
    overlay, _ = _overlay_with_history(monaco)
    data = json.loads(json.dumps(overlay.snapshot()))  # through JSON, as stored
    copy = TrafficOverlay(monaco)
    copy.apply(Closure(edges=[1, 2, 3]), at=T0)  # replaced, not merged
    copy.restore(data, at=T0)
    assert copy.version == overlay.version
    assert [(e.id, e.seq, e.kind) for e in copy.entries()] == [
        (e.id, e.seq, e.kind) for e in overlay.entries()]
    for minutes in (0, 15, 45, 80, 10, 200):  # forward and back: entries start and expire
        at = T0 + timedelta(minutes=minutes)
        for profile in ("car", "ambulance"):
            np.testing.assert_array_equal(copy.weights(profile, at=at).values,
                                          overlay.weights(profile, at=at).values)
            np.testing.assert_array_equal(copy.weights(profile, at=at).arc,
                                          overlay.weights(profile, at=at).arc)
    # later changes land on both the same way
    for o in (overlay, copy):
        o.apply(Closure(id="late", edges=[7, 8]), at=T0 + timedelta(minutes=50))
    np.testing.assert_array_equal(copy.weights("car", at=T0 + timedelta(minutes=50)).values,
                                  overlay.weights("car", at=T0 + timedelta(minutes=50)).values)
    with pytest.raises(ValueError, match="edges"):
        TrafficOverlay(monaco).restore({**data, "graph_edges": 3})
    with pytest.raises(ValueError, match="malformed"):
        TrafficOverlay(monaco).restore({**data, "entries": [{"id": "x"}]})


def test_the_active_set_follows_time_like_a_full_recomputation(monaco) -> None:
    """The overlay tracks which entries are active by their bounds (not by a scan of every
    entry per call): the same arrays as an overlay recomputed from scratch, time going
    forward and back."""
    overlay, _ = _overlay_with_history(monaco)
    rng = random.Random(2)
    for _ in range(25):
        at = T0 + timedelta(minutes=rng.uniform(-10, 120))
        got = overlay.weights("car", at=at).values
        fresh = TrafficOverlay(monaco)
        fresh.restore(overlay.snapshot(), at=at)
        assert {e.id for e in overlay.entries(at=at, active_only=True)} == overlay._active
        np.testing.assert_array_equal(got, fresh.weights("car", at=at).values)


def _board(monaco) -> HospitalBoard:
    return HospitalBoard(hospitals_from_graph(monaco), at=T0)


def test_a_board_copy_is_detached_and_a_restore_keeps_this_boards_configuration(
        monaco) -> None:
    board = _board(monaco)
    h0, h1 = board.hospitals()[:2]
    bed = next(iter(h0.offered()))
    board.update_status(h0.id, ed_status="Closed", at=T0)
    board.register_en_route("A-1", h1.id, next(iter(h1.offered())), eta_s=600, at=T0)
    heard: list = []
    board.subscribe(heard.append)
    trial = board.copy()
    trial.register_en_route("A-2", h0.id, bed, eta_s=300, at=T0)  # on the copy only
    assert [e.ambulance_id for e in board.en_route()] == ["A-1"] and not heard
    data = json.loads(json.dumps(board.to_dict()))

    other = _board(monaco)  # another worker, same configuration plus a new hospital
    other.subscribe(heard.append)
    other.restore(data, at=T0)
    assert [e.ambulance_id for e in other.en_route()] == ["A-1"]
    assert [r.to_dict() for r in other.saturation(T0)] == [
        r.to_dict() for r in board.saturation(T0)]
    assert other.board_id != board.board_id and not heard  # restoring signals nothing
    assert [s.id for s in other.signals()] == [s.id for s in board.signals()]
    with pytest.raises(Exception, match="format"):
        other.restore({"format": "nope"})


# ------------------------------------------------------------------------------ LiveState
def _live(monaco, path: Path, **kwargs) -> LiveState:
    router = Router(monaco)
    return LiveState(monaco, router, HospitalBoard(hospitals_from_graph(monaco)),
                     EmbeddedStore(path), **kwargs)


def test_a_restart_loads_the_snapshot_and_replays_only_what_follows(monaco,
                                                                    tmp_path: Path) -> None:
    path = tmp_path / "state.jsonl"
    state = _live(monaco, path, snapshot_every=10)
    state.catch_up()
    hospitals = state.board.hospitals()
    for n in range(25):
        if n % 5 == 4:
            h = hospitals[n % len(hospitals)]
            state.submit("ambulance.en_route", {
                "ambulance_id": f"VSAV-{n}", "hospital_id": h.id,
                "bed_type": next(iter(h.offered())).value, "eta_s": 3600})
        elif n % 7 == 6:
            state.submit("hospital.status", {"hospital_id": hospitals[0].id,
                                             "ed_status": "Closed"})
        else:
            state.submit("traffic.apply", {"changes": [{"type": "Closure", "edges": [n]}]})
        state._maybe_snapshot()
    assert state.counters.snapshots_taken == 2 and state.store.head().snapshot_seq == 20
    lines = path.read_bytes().splitlines()
    assert len(lines) == 1 + 5  # header with the snapshot, then events 21..25
    before = (state.overlay.version, [e.id for e in state.overlay.entries()],
              [e.ambulance_id for e in state.board.en_route()],
              [r.to_dict() for r in state.board.saturation()])
    state.stop()  # leaves a snapshot at 25

    again = _live(monaco, path, snapshot_every=10)
    again.start()
    try:
        after = (again.overlay.version, [e.id for e in again.overlay.entries()],
                 [e.ambulance_id for e in again.board.en_route()],
                 [r.to_dict() for r in again.board.saturation()])
        assert after == before
        assert again.counters.snapshots_loaded == 1 and again.counters.events_applied == 0
        np.testing.assert_array_equal(again.overlay.weights("car").values,
                                      state.overlay.weights("car").values)
        health = again.health()
        assert health["log"]["seq"] == 25 and health["log"]["snapshot_seq"] == 25
        assert health["store"]["persistence"]["durable"] is True
    finally:
        again.stop()


def test_a_snapshot_of_another_map_stops_start_up(monaco, andorra, tmp_path: Path) -> None:
    path = tmp_path / "state.jsonl"
    state = _live(monaco, path)
    state.catch_up()
    state.submit("traffic.apply", {"changes": [{"type": "Closure", "edges": [1]}]})
    state.stop()
    other = LiveState(andorra, Router(andorra), HospitalBoard([]), EmbeddedStore(path))
    with pytest.raises(StoreCorrupt, match="another map"):
        other.catch_up()
