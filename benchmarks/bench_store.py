"""State-store costs: one write's latency against the size of the live state, and restart time
after a long history, on the embedded store and on Redis.

Usage::

    python benchmarks/bench_store.py ../shared/data/osm/monaco_osrm-bindings.osm.pbf \\
        [--redis redis://127.0.0.1:6379/0] [--sizes 0,500,5000] [--writes 150] \\
        [--history 5000] [--out benchmarks/results/store-writes.md]

    # the same measurements on another checkout (e.g. the code before a change):
    git archive <commit> | tar -x -C /tmp/before
    python benchmarks/bench_store.py ... --code /tmp/before

Measures, in process (``LiveState.submit``: validation, append to the store, apply, CCH
re-customization; what a write costs the service, HTTP excluded), with the follower thread
running as in the service:

* write latency (median, p90, p99) of a traffic write (one closure), a hospital status
  report and an ambulance registration, with N live traffic entries and N/2 ambulances en
  route (N = ``--sizes``; ``--ambulances`` sets the ratio);
* restart time (``LiveState.start``: snapshot load and replay) after ``--history`` events
  that leave ~500 live entries: after a clean stop, after a crash (no final snapshot), and
  replaying the whole log (snapshots disabled; what every restart did before snapshots),
  with the size of what the store keeps.
"""

from __future__ import annotations

import argparse
import inspect
import random
import shlex
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("source")
ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
ap.add_argument("--sizes", default="0,500,5000")
ap.add_argument("--writes", type=int, default=150, help="measured writes per kind and size")
ap.add_argument("--history", type=int, default=5000)
ap.add_argument("--live", type=int, default=500, help="live entries left by the history")
ap.add_argument("--stores", default="embedded,redis")
ap.add_argument("--ambulances", type=float, default=0.5,
                help="ambulances en route per live traffic entry")
ap.add_argument("--no-restart", action="store_true", help="write latency only")
ap.add_argument("--code", help="the checkout whose api/ and engine/ to measure")
ap.add_argument("--seed", type=int, default=7)
ap.add_argument("--out")
ARGS = ap.parse_args()

CODE = Path(ARGS.code).resolve() if ARGS.code else Path(__file__).resolve().parent.parent
sys.path.insert(0, str(CODE))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit  # noqa: E402

from api.state import LiveState  # noqa: E402
from api.store import EmbeddedStore  # noqa: E402
from engine.hospitals import HospitalBoard, hospitals_from_graph  # noqa: E402
from engine.io import load_graph  # noqa: E402
from engine.query import Router  # noqa: E402

#: the code measured has snapshots (the "after" code); the "before" code replays everything
SNAPSHOTS = "snapshot_every" in inspect.signature(LiveState.__init__).parameters
GRAPH = load_graph(ARGS.source)
RNG = random.Random(ARGS.seed)
PREFIXES: list[str] = []


def make_store(kind: str, where: dict[str, Any]) -> Any:
    if kind == "embedded":
        return EmbeddedStore(where["path"])
    from api.store.redis import RedisStore

    return RedisStore(ARGS.redis, prefix=where["prefix"])


def new_place(kind: str, tmp: Path) -> dict[str, Any]:
    if kind == "embedded":
        return {"path": tmp / f"state-{uuid.uuid4().hex[:8]}.jsonl"}
    prefix = f"gyrophare-bench-{uuid.uuid4().hex[:8]}"
    PREFIXES.append(prefix)
    return {"prefix": prefix}


def live_state(store: Any, **kwargs: Any) -> LiveState:
    if not SNAPSHOTS:
        kwargs.pop("snapshot_every", None)
    board = HospitalBoard(hospitals_from_graph(GRAPH))
    return LiveState(GRAPH, Router(GRAPH), board, store, **kwargs)


def closure() -> dict[str, Any]:
    return {"type": "Closure", "edges": RNG.sample(range(GRAPH.n_edges), RNG.randint(1, 3)),
            "id": f"c-{uuid.uuid4().hex[:12]}"}


def bed(h: Any) -> str:
    return next(iter(h.offered())).value


def populate(state: LiveState, entries: int, ambulances: int) -> None:
    for start in range(0, entries, 100):
        state.submit("traffic.apply", {"changes": [closure() for _ in
                                                   range(min(100, entries - start))]})
    hospitals = state.board.hospitals()
    for i in range(ambulances):
        h = hospitals[i % len(hospitals)]
        state.submit("ambulance.en_route", {"ambulance_id": f"POP-{i}", "hospital_id": h.id,
                                            "bed_type": bed(h), "eta_s": 3 * 3600})


def stats(times: list[float]) -> tuple[float, float, float]:
    arr = np.array(times) * 1000
    return (float(np.median(arr)), float(np.percentile(arr, 90)),
            float(np.percentile(arr, 99)))


def measure_writes(kind: str, size: int, tmp: Path) -> list[tuple[str, tuple[float, ...]]]:
    state = live_state(make_store(kind, new_place(kind, tmp)))
    state.start()
    try:
        populate(state, size, int(size * ARGS.ambulances))
        hospitals = state.board.hospitals()
        out = []
        kinds = {
            "traffic write (1 closure)":
                lambda i: state.submit("traffic.apply", {"changes": [closure()]}),
            "hospital status report":
                lambda i: state.submit("hospital.status", {
                    "hospital_id": hospitals[i % len(hospitals)].id,
                    "ed_status": "Normal" if i % 2 else "Advisory"}),
            "ambulance en route":
                lambda i: state.submit("ambulance.en_route", {
                    "ambulance_id": f"M-{i}", "hospital_id": hospitals[i % len(hospitals)].id,
                    "bed_type": bed(hospitals[i % len(hospitals)]), "eta_s": 3 * 3600}),
        }
        for name, fn in kinds.items():
            for i in range(5):  # warm-up
                fn(10_000 + i)
            times = []
            for i in range(ARGS.writes):
                t0 = time.perf_counter()
                fn(i)
                times.append(time.perf_counter() - t0)
            out.append((name, stats(times)))
        return out
    finally:
        state.stop()


def history(state: LiveState, events: int, live: int) -> None:
    """``events`` writes of every kind that leave about ``live`` traffic entries."""
    entries: list[str] = []
    ambulances: list[str] = []
    hospitals = state.board.hospitals()
    n = 0
    while n < events:
        r = n % 10
        if r < 6 or (r == 9 and not ambulances):
            change = closure()
            state.submit("traffic.apply", {"changes": [change]})
            entries.append(change["id"])
            if len(entries) > live:
                n += 1
                state.submit("traffic.remove", {"ids": [entries.pop(0)]})
        elif r < 8:
            state.submit("hospital.status", {"hospital_id": hospitals[n % len(hospitals)].id,
                                             "ed_status": "Normal"})
        elif r == 8:
            h = hospitals[n % len(hospitals)]
            ambulances.append(f"H-{n}")
            state.submit("ambulance.en_route", {"ambulance_id": ambulances[-1],
                                                "hospital_id": h.id, "bed_type": bed(h),
                                                "eta_s": 3 * 3600})
        else:
            state.submit("ambulance.arrived", {"ambulance_id": ambulances.pop(0),
                                               "admit": False})
        n += 1


def kept(kind: str, where: dict[str, Any]) -> str:
    if kind == "embedded":
        size = where["path"].stat().st_size
        return f"{size / 1e6:.2f} MB file"
    import redis

    client = redis.Redis.from_url(ARGS.redis)
    try:
        events = client.xlen(f"{where['prefix']}:events")
        snap = client.strlen(f"{where['prefix']}:snapshot")
    finally:
        client.close()
    return f"{events} events + {snap / 1e6:.2f} MB snapshot"


def measure_restart(kind: str, tmp: Path) -> list[tuple[str, str, str]]:
    rows = []
    cases = [("replay of the whole log (no snapshots)", 0, True)]
    if SNAPSHOTS:
        cases = [("after a clean stop (snapshot at stop)", 1000, True),
                 ("after a crash (snapshot every 1,000 events)", 1000, False), *cases]
    for label, every, clean in cases:
        where = new_place(kind, tmp)
        state = live_state(make_store(kind, where), snapshot_every=every)
        state.start()
        history(state, ARGS.history, ARGS.live)
        entries, seq = len(state.overlay.entries()), state.counters.events_written
        if clean:
            state.stop()
        else:  # a crash: the follower stops, no final snapshot
            state._stop.set()
            if state._follower is not None:
                state._follower.join()
            state.store.close()
        fresh = live_state(make_store(kind, where), snapshot_every=every)
        t0 = time.perf_counter()
        fresh.start()
        took = time.perf_counter() - t0
        assert len(fresh.overlay.entries()) == entries, (len(fresh.overlay.entries()), entries)
        assert fresh.overlay.version == state.overlay.version
        replayed = fresh.counters.events_applied
        fresh.stop()
        rows.append((f"{label}: {seq:,} events written, {entries} live entries",
                     f"{took:.2f} s ({replayed:,} events replayed)", kept(kind, where)))
    return rows


def main() -> int:
    command = "python " + " ".join(shlex.quote(a) for a in [
        "benchmarks/bench_store.py", *sys.argv[1:]])
    sizes = [int(x) for x in ARGS.sizes.split(",")]
    stores = ARGS.stores.split(",")
    lines = [f"# State store: write latency and restart time ({GRAPH.meta.get('name')})", "",
             f"`{command}`", "",
             f"- code measured: `{CODE}`" + ("" if SNAPSHOTS else
                                             " (before snapshots: full replay)"),
             f"- in process (`LiveState.submit`: validate, append, apply, CCH "
             f"re-customization; HTTP excluded), follower thread running; live state N = "
             f"traffic entries, with {ARGS.ambulances:g} N ambulances en route; {ARGS.writes} "
             f"measured writes "
             f"per kind; embedded = fdatasync'd file in {tempfile.gettempdir()}, redis = "
             f"{ARGS.redis}", "",
             "## Write latency", "",
             "| store | live entries | write | median ms | p90 ms | p99 ms |",
             "|---|---:|---|---:|---:|---:|"]
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        try:
            for kind in stores:
                for size in sizes:
                    for name, (med, p90, p99) in measure_writes(kind, size, tmp):
                        lines.append(f"| {kind} | {size:,} | {name} | {med:.2f} | {p90:.2f} "
                                     f"| {p99:.2f} |")
                        print(lines[-1], flush=True)
            if not ARGS.no_restart:
                lines += ["", "## Restart (LiveState.start: snapshot load + replay)", "",
                          "| store | history | restart | what the store keeps |",
                          "|---|---|---:|---|"]
            for kind in [] if ARGS.no_restart else stores:
                for label, took, size in measure_restart(kind, tmp):
                    lines.append(f"| {kind} | {label} | {took} | {size} |")
                    print(lines[-1], flush=True)
        finally:
            cleanup()
    emit(lines, ARGS.out)
    return 0


def cleanup() -> None:
    if not PREFIXES:
        return
    try:
        import redis

        client = redis.Redis.from_url(ARGS.redis)
        for prefix in PREFIXES:
            keys = list(client.scan_iter(match=f"{prefix}:*"))
            if keys:
                client.delete(*keys)
        client.close()
    except Exception as exc:  # pragma: no cover - best effort
        print(f"note: could not remove the benchmark's Redis keys: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
