"""Shared by the benchmark scripts: print a Markdown table and optionally save it."""

from __future__ import annotations

import os
from pathlib import Path


def emit(lines: list[str], out: str | None) -> None:
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text)


def service_env(tmp: str, prefix: str) -> dict[str, str]:
    """The environment of a benchmarked ``gyrophare serve``: its own graph cache and state
    file under ``tmp``, its own Redis key prefix, no API keys (open, loopback only); the
    graph cache is also set for this process, which picks the pairs from the same graph."""
    env = {**os.environ, "GYROPHARE_CACHE_DIR": str(Path(tmp) / "cache"),
           "GYROPHARE_STATE_FILE": str(Path(tmp) / "state.jsonl"),
           "GYROPHARE_REDIS_PREFIX": prefix, "PYTHONUNBUFFERED": "1"}
    env.pop("GYROPHARE_API_KEYS", None)
    os.environ["GYROPHARE_CACHE_DIR"] = env["GYROPHARE_CACHE_DIR"]
    return env


def loopback_url(url: str) -> bool:
    """The benchmarks talk to services on this machine only (a Redis URL, say)."""
    import httpx

    return httpx.URL(url.replace("redis://", "http://")).host in ("127.0.0.1", "localhost",
                                                                   "::1")
