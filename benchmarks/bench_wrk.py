"""OSRM route throughput of ``gyrophare serve`` under ``wrk`` (issue 14, "One API worker").

Usage::

    python benchmarks/bench_wrk.py                          # Monaco, the full grid below
    python benchmarks/bench_wrk.py --connections 16 --cases embedded:1 --duration 5
    python benchmarks/bench_wrk.py --engine-memo --cases embedded:1   # the layer above the engine

For each case (``store:workers``: embedded store with one worker, Redis with one and with two
workers; several workers need Redis), the script starts ``python -m api.cli serve`` as
``gyrophare serve`` does, on a free loopback port, waits until every worker answers, then runs
``wrk`` (one thread) at each of ``--connections`` in flight for ``--duration`` seconds, once
per query (``--queries``: default options, and ``steps=true&overview=full``), after a
two-second warm-up that is not counted. ``wrk``'s Lua script cycles through ``--pairs`` random
Monaco coordinate pairs drawn along car-usable roads (``bench_osrm.random_pairs``, fixed seed),
keeping only pairs the engine routes, so that every answer should be 200.

Figures per run: requests/s, p50 / p99 latency (``wrk --latency``), non-2xx answers and socket
errors, the server's CPU time per request (user + system ticks of all its processes from
``/proc/<pid>/stat``, divided by the requests answered: much less sensitive to other jobs on a
shared machine than the wall-clock rate), the server's and ``wrk``'s cores (CPU seconds per
wall second; ``wrk``'s client share is its part of all CPU the run used), and the load average.

``--engine-memo`` (diagnostic, one worker) serves each coordinate pair's engine result from a
memo after its first request, so that the figures show what the HTTP layer, the OSRM grammar
and the JSON answer cost with the engine taken out (its answers are still the engine's).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit, loopback_url, service_env
from bench_api import Server, cleanup_redis, process_tree_seconds

from engine.io import load_graph, shared_data_dir

ROOT = Path(__file__).resolve().parent.parent
GOAL_RPS, GOAL_P99_MS, GOAL_SCALING = 1000.0, 25.0, 1.8
QUERIES = ("", "steps=true&overview=full")

LUA = r"""
-- cycles through the coordinate pairs of PAIRS, one GET /route/v1/driving/... each
local paths, query = {}, os.getenv("GYRO_QUERY") or ""
if query ~= "" then query = "?" .. query end
for line in io.lines(os.getenv("GYRO_PAIRS")) do
  paths[#paths + 1] = "/route/v1/driving/" .. line .. query
end
local i = 0
function init(args) i = math.random(#paths) end
function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "GYRO requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d non2xx=%d errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.status, e.connect + e.read + e.write + e.timeout))
end
"""


@dataclass
class Run:
    store: str
    workers: int
    query: str
    connections: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    non2xx: int
    errors: int
    server_cpu_s: float
    client_cpu_s: float
    load: str
    memo: bool = False
    split: str = ""  #: cores used by each worker

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def server_ms_per_request(self) -> float:
        return 1000 * self.server_cpu_s / max(self.requests, 1)

    def row(self) -> str:
        query = f"`{self.query}`" if self.query else "default"
        client_share = self.client_cpu_s / max(self.client_cpu_s + self.server_cpu_s, 1e-9)
        return (f"| {self.store}{' (engine memo)' if self.memo else ''} | {self.workers} | "
                f"{query} | {self.connections} | {self.requests:,} | {self.rps:,.0f} | "
                f"{self.p50_ms:.1f} | {self.p99_ms:.1f} | {self.max_ms:.1f} | "
                f"{self.non2xx + self.errors} | {self.server_ms_per_request:.2f} | "
                f"{self.server_cpu_s / self.seconds:.2f} ({self.split}) | "
                f"{self.client_cpu_s / self.seconds:.2f} ({100 * client_share:.0f} %) | "
                f"{self.load} |")


HEADER = ["| store | workers | query | in flight | requests | req/s | p50 ms | p99 ms | max ms "
          "| non-2xx + errors | server CPU ms / req | server cores (per worker) | wrk cores "
          "(share) | load "
          "1/5/15 min |",
          "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]


def routable_pairs(osm: Path, n: int, seed: int) -> list[str]:
    """``n`` ``lon,lat;lon,lat`` strings that the engine routes (car), drawn along car
    roads as ``bench_osrm.random_pairs`` draws them."""
    from bench_osrm import random_pairs

    from engine.query import Route, Router

    graph = load_graph(osm)
    router = Router(graph)
    out: list[str] = []
    seed_now = seed
    while len(out) < n:
        for (lat_o, lon_o), (lat_d, lon_d) in random_pairs(graph, n, seed_now):
            with contextlib.suppress(Exception):
                if isinstance(router.route((lat_o, lon_o), (lat_d, lon_d)), Route):
                    out.append(f"{lon_o},{lat_o};{lon_d},{lat_d}")
            if len(out) == n:
                break
        seed_now += 1
    return out


def load_average() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def wrk(base: str, *, connections: int, seconds: float, lua: Path, pairs: Path, query: str,
        ) -> tuple[dict[str, int], float]:
    """One ``wrk`` run; its ``done`` figures and the CPU seconds it used."""
    env = {**os.environ, "GYRO_PAIRS": str(pairs), "GYRO_QUERY": query}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency",
                          "--timeout", "10s", "-s", str(lua), base], env=env,
                         capture_output=True, text=True, timeout=seconds + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    found = re.search(r"GYRO (.*)", out.stdout)
    if found is None:
        raise RuntimeError(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return {k: int(v) for k, v in (kv.split("=") for kv in found.group(1).split())}, cpu


def worker_seconds(pid: int) -> dict[int, float]:
    """CPU seconds so far of each process serving: the workers (children) of a
    multi-worker server, else the server process itself."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True,
                         timeout=5).stdout.split()
    tick = os.sysconf("SC_CLK_TCK")
    seconds = {}
    for p in [int(p) for p in out] or [pid]:
        with contextlib.suppress(OSError), open(f"/proc/{p}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
            seconds[p] = (int(fields[11]) + int(fields[12])) / tick
    return seconds


def measure(server: Server, *, store: str, workers: int, query: str, connections: int,
            seconds: float, lua: Path, pairs: Path, memo: bool) -> Run:
    wrk(server.base, connections=connections, seconds=2, lua=lua, pairs=pairs, query=query)
    cpu0, split0 = process_tree_seconds(server.proc.pid), worker_seconds(server.proc.pid)
    figures, client = wrk(server.base, connections=connections, seconds=seconds, lua=lua,
                          pairs=pairs, query=query)
    cpu1, split1 = process_tree_seconds(server.proc.pid), worker_seconds(server.proc.pid)
    wall = figures["duration_us"] / 1e6
    split = "+".join(f"{(split1[p] - split0.get(p, 0.0)) / wall:.2f}" for p in sorted(split1))
    return Run(store, workers, query, connections, figures["requests"], wall,
               figures["p50_us"] / 1000, figures["p99_us"] / 1000, figures["max_us"] / 1000,
               figures["non2xx"], figures["errors"], cpu1 - cpu0, client, load_average(),
               memo, split)


def serve_memo(argv: list[str]) -> int:
    """The ``--serve-memo`` child: memoise :func:`api.osrm.plugins.route`, then serve."""
    from api.cli import main as cli_main
    from api.osrm import plugins

    real = plugins.route
    memo: dict[tuple, plugins.RouteResult] = {}

    def route(router, query):  # type: ignore[no-untyped-def]
        key = (query.profile, tuple(query.coordinates), query.alternatives, query.exclude)
        found = memo.get(key)
        if found is None:
            found = memo[key] = real(router, query)
        return found

    plugins.route = route
    return cli_main(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve-memo"]:
        return serve_memo(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--osm", default=str(shared_data_dir() / "osm/monaco_osrm-bindings.osm.pbf"))
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    ap.add_argument("--connections", default="1,4,16")
    ap.add_argument("--cases", default="embedded:1,redis:1,redis:2")
    ap.add_argument("--queries", default="|".join(QUERIES),
                    help="'|'-separated query strings ('' = default options)")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    ap.add_argument("--engine-memo", action="store_true",
                    help="memoise the engine's route results (one worker, diagnostic)")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    if not loopback_url(args.redis_url):
        ap.error("loopback only: --redis-url must point at 127.0.0.1")
    osm = Path(args.osm)
    connections = [int(c) for c in args.connections.split(",")]
    queries = args.queries.split("|")
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="gyrophare-wrk-") as tmp:
        prefix = f"gyrophare-wrk-{os.getpid()}"
        env = service_env(tmp, prefix)
        t0 = time.perf_counter()
        pairs = routable_pairs(osm, args.pairs, args.seed)
        print(f"{len(pairs)} routable pairs in {time.perf_counter() - t0:.1f} s",
              file=sys.stderr)
        pairs_file, lua = Path(tmp) / "pairs.txt", Path(tmp) / "pairs.lua"
        pairs_file.write_text("\n".join(pairs) + "\n")
        lua.write_text(LUA)
        for case in args.cases.split(","):
            store, workers_s = case.split(":")
            workers = int(workers_s)
            redis_url = args.redis_url if store == "redis" else None
            print(f"case: {store} store, {workers} worker(s)", file=sys.stderr)
            if args.engine_memo and (workers != 1 or redis_url):
                ap.error("--engine-memo: embedded:1 only")
            launcher = ([sys.executable, str(Path(__file__).resolve()), "--serve-memo"]
                        if args.engine_memo else None)
            server = Server(osm, workers=workers, redis_url=redis_url, env=env,
                            launcher=launcher)
            try:
                if args.engine_memo:  # every pair once, so that the runs hit the memo
                    with httpx.Client(base_url=server.base, timeout=30) as client:
                        for pair in pairs:
                            client.get(f"/route/v1/driving/{pair}")
                for query in queries:
                    for c in connections:
                        run = measure(server, store=store, workers=workers, query=query,
                                      connections=c, seconds=args.duration, lua=lua,
                                      pairs=pairs_file, memo=args.engine_memo)
                        runs.append(run)
                        print(run.row(), file=sys.stderr)
            finally:
                server.stop()
                if redis_url:
                    cleanup_redis(redis_url, prefix)

    lines = [f"# OSRM routes under wrk: {osm.name}", "",
             f"- `python benchmarks/bench_wrk.py {' '.join(argv)}`".rstrip() + "",
             f"- `wrk -t1 -cN -d{args.duration:g}s --latency`, Lua script cycling through "
             f"{len(pairs):,} random coordinate pairs along car roads (seed {args.seed}, "
             "routable ones only), `GET /route/v1/driving/lon,lat;lon,lat` with default "
             "options and with `steps=true&overview=full`; 2 s warm-up per run, not counted",
             "- server: `python -m api.cli serve` (uvicorn, httptools, uvloop), loopback; "
             f"Redis `{args.redis_url}`; machine: {platform.machine()}, {os.cpu_count()} "
             f"cores, Python {platform.python_version()}; **wrk runs on the same cores**",
             "- server CPU ms / req: user + system time of all server processes over the run "
             "/ requests answered (robust to other jobs on a shared machine); cores: CPU "
             "seconds per wall second; wrk share: wrk's part of the CPU used by server + wrk",
             f"- goal (issue 14): one worker >= {GOAL_RPS:,.0f} routes/s with p99 <= "
             f"{GOAL_P99_MS:.0f} ms at 16 in flight; two workers >= {GOAL_SCALING}x one",
             "", *HEADER, *[run.row() for run in runs], ""]
    by = {(r.store, r.workers, r.query, r.connections): r for r in runs if not r.memo}
    for query in queries:
        one, two = by.get(("redis", 1, query, 16)), by.get(("redis", 2, query, 16))
        if one and two and one.rps > 0:
            lines.append(f"- two workers / one (Redis, 16 in flight, "
                         f"{'`' + query + '`' if query else 'default'}): "
                         f"{two.rps / one.rps:.2f}x")
    emit(lines, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
