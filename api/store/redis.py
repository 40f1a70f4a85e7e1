"""The Redis store: the event log in a Redis stream that every worker (and instance) follows.

Keys (``prefix`` defaults to ``gyrophare``):

- ``{prefix}:events``: the log, a stream; one entry per event, field ``event`` holding
  :meth:`Event.to_dict` as JSON. Never trimmed: a worker starting replays all of it.
- ``{prefix}:alerts``: a mirror of saturation alerts, a stream capped at ~10 000 entries.

Positions
    A stream id ``"<ms>-<seq>"`` does not sort as a string (``"9-0" > "10-0"``), and
    :class:`~api.state.LiveState` compares positions with ``<=``. Positions handed out are
    therefore both parts zero-padded to 20 digits (``2**64`` has 20), e.g.
    ``"00000001732700000000-00000000000000000000"``: string order is log order.
    :func:`encode_position` / :func:`decode_position` convert; ``decode_position`` also takes
    a plain stream id.

Acknowledgment
    :meth:`RedisStore.append` returns once ``XADD`` has answered, i.e. once the Redis server
    holds the event (in memory, and in its AOF per its ``appendfsync`` policy). ``WAIT`` (for
    replicas) is not used: one server is the source of truth. ``WAITAOF`` (Redis >= 7.2,
    wait for the local fsync) could be added for a strict "on disk" guarantee.
    A *timeout* while waiting for the reply is ambiguous: the server may have taken the
    event although :class:`StoreUnavailable` is raised; every worker then applies it when it
    reads the log. Commands are never retried automatically (a retried ``XADD`` could
    duplicate an event).

Reconnection
    One pool of short-timeout connections (``socket_timeout``, connect timeout at most 1 s,
    health checks, no retries, so an outage is reported within about ``socket_timeout``).
    A failed command drops its connection; the pool opens a new one on the next call, so the
    same store object works again as soon as Redis is back. Blocking reads use their own
    pools whose read timeout exceeds the block time, so a block never times out by itself.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from api.store.base import Event, Store, StoreUnavailable

log = logging.getLogger("gyrophare.store.redis")

T = TypeVar("T")

_DIGITS = 20  #: 2**64 - 1 has 20 digits: both parts of a stream id fit
MAX_BLOCK_S = 60.0  #: longest single blocking read (callers loop)
ALERTS_MAXLEN = 10_000
PAGE_SIZE = 1000  #: entries per XRANGE call
HEALTH_CHECK_INTERVAL_S = 5


def encode_position(stream_id: str | bytes) -> str:
    """A stream id ``"ms-seq"`` as a position that sorts as a string (both parts padded)."""
    if isinstance(stream_id, bytes):
        stream_id = stream_id.decode()
    ms, _, seq = stream_id.partition("-")
    return f"{int(ms):0{_DIGITS}d}-{int(seq or 0):0{_DIGITS}d}"


def decode_position(position: str) -> str:
    """A position (or a plain stream id) as the stream id Redis expects."""
    ms, _, seq = position.partition("-")
    try:
        return f"{int(ms)}-{int(seq or 0)}"
    except ValueError:
        raise ValueError(f"not a Redis store position: {position!r}") from None


def _as_tuple(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def mask_url(url: str) -> str:
    """The URL with its password (if any) replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class RedisStore(Store):
    """The event log in a Redis stream shared by every worker.

    Parameters
    ----------
    url
        ``redis://[user:password@]host:port/db`` (or ``rediss://``, ``unix://``).
    prefix
        Key prefix: ``{prefix}:events`` and ``{prefix}:alerts``.
    socket_timeout
        Seconds to wait for an answer (and at most 1 s to connect) before the store is
        reported unavailable.
    """

    name = "redis"

    def __init__(self, url: str, *, prefix: str = "gyrophare",
                 socket_timeout: float = 1.0) -> None:
        self.url = url
        self.prefix = prefix
        self.socket_timeout = socket_timeout
        self.events_key = f"{prefix}:events"
        self.alerts_key = f"{prefix}:alerts"
        self._lock = threading.Lock()
        self._blocking: dict[int, redis.Redis] = {}  # by whole seconds of block time
        self._closed = False
        self._client = self._make_client(socket_timeout)

    # ---------------------------------------------------------------- connections
    def _make_client(self, socket_timeout: float) -> redis.Redis:
        try:
            return redis.Redis.from_url(
                self.url,
                decode_responses=True,
                socket_timeout=socket_timeout,
                socket_connect_timeout=min(self.socket_timeout, 1.0),
                socket_keepalive=True,
                health_check_interval=HEALTH_CHECK_INTERVAL_S,
                # no automatic retries (redis-py >= 6 retries 10 times with backoff by
                # default): an outage must show within socket_timeout, and a retried XADD
                # could duplicate an event. TimeoutError is not retried either.
                retry=Retry(NoBackoff(), 0),
            )
        except ValueError as exc:
            raise ValueError(f"invalid Redis URL {mask_url(self.url)}: {exc}") from exc

    def _blocking_client(self, block_s: float) -> redis.Redis:
        """A client whose read timeout is longer than ``block_s`` (one per whole second)."""
        key = max(1, math.ceil(block_s))
        with self._lock:
            client = self._blocking.get(key)
            if client is None:
                client = self._blocking[key] = self._make_client(key + self.socket_timeout)
            return client

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn``; an unreachable or failing Redis becomes :class:`StoreUnavailable`."""
        if self._closed:
            raise StoreUnavailable(f"Redis store {mask_url(self.url)} is closed")
        try:
            return fn()
        except (redis.exceptions.RedisError, OSError) as exc:
            # refused/reset, timeouts, LOADING, READONLY, MISCONF, OOM...: not accepted
            # (a timeout on XADD is ambiguous, see the module notes); the failed connection
            # is dropped and the next call opens a new one
            raise StoreUnavailable(f"Redis at {mask_url(self.url)} unavailable ({what}): "
                                   f"{type(exc).__name__}: {exc}") from exc

    # ---------------------------------------------------------------- the log
    def append(self, event: Event) -> str:
        """XADD the event; its position once Redis has it (see the module notes)."""
        data = json.dumps(event.to_dict(), separators=(",", ":"))
        stream_id = self._call(f"XADD {self.events_key}",
                               lambda: self._client.xadd(self.events_key, {"event": data}))
        return encode_position(stream_id)

    def read_after(self, position: str | None, *, until: str | None = None,
                   block_s: float = 0.0) -> list[tuple[str, Event]]:
        """Events after ``position`` (exclusive) up to ``until`` (inclusive), in log order.

        When there are none and ``block_s > 0``, waits up to ``block_s`` (at most
        :data:`MAX_BLOCK_S`) with ``XREAD BLOCK`` and returns what arrived.
        """
        start = decode_position(position) if position else None
        end = decode_position(until) if until else None
        if start is not None and end is not None and _as_tuple(start) >= _as_tuple(end):
            return []
        entries = self._call(f"XRANGE {self.events_key}", lambda: self._range(start, end))
        if not entries and block_s > 0:
            block_s = min(block_s, MAX_BLOCK_S)
            client = self._blocking_client(block_s)
            ms = max(1, round(block_s * 1000))  # BLOCK 0 would wait forever
            reply = self._call(
                f"XREAD BLOCK {self.events_key}",
                lambda: client.xread({self.events_key: start or "0-0"}, block=ms))
            entries = _stream_entries(reply, self.events_key)
            if end is not None:
                last = _as_tuple(end)
                entries = [(i, f) for i, f in entries if _as_tuple(i) <= last]
        return [(encode_position(i), self._event(i, fields)) for i, fields in entries]

    def _range(self, start: str | None, end: str | None) -> list[tuple[str, dict[str, str]]]:
        """XRANGE (start, end], page by page (a replay of a long log never blocks Redis
        with one huge reply)."""
        out: list[tuple[str, dict[str, str]]] = []
        while True:
            page = cast("list[tuple[str, dict[str, str]]]", self._client.xrange(
                self.events_key, min=f"({start}" if start else "-", max=end or "+",
                count=PAGE_SIZE))
            out.extend(page)
            if len(page) < PAGE_SIZE:
                return out
            start = page[-1][0]

    def _event(self, stream_id: str, fields: dict[str, str]) -> Event:
        """The event of one entry. A malformed entry (written by something else) becomes an
        event of type ``store.invalid``: every worker fails to apply it the same way, logs
        it and moves past it, instead of stalling on it."""
        try:
            return Event.from_dict(json.loads(fields["event"]))
        except (KeyError, TypeError, ValueError) as exc:
            log.error("malformed entry %s in %s: %s", stream_id, self.events_key, exc)
            return Event("store.invalid", {"stream_id": stream_id, "error": str(exc),
                                           "fields": fields})

    # ---------------------------------------------------------------- alerts
    def publish_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """XADD each alert to ``{prefix}:alerts`` (MAXLEN ~ 10 000), in one round trip.

        Fields are the alert's keys; strings as they are, other values as JSON.
        """
        if not alerts:
            return

        def send() -> None:
            pipe = self._client.pipeline(transaction=False)
            for alert in alerts:
                fields: dict[Any, Any] = {
                    str(k): v if isinstance(v, str) else json.dumps(v, default=str)
                    for k, v in alert.items()} or {"empty": "1"}
                pipe.xadd(self.alerts_key, fields, maxlen=ALERTS_MAXLEN, approximate=True)
            pipe.execute()

        self._call(f"XADD {self.alerts_key}", send)

    # ---------------------------------------------------------------- health
    def ping(self) -> bool:
        """True when Redis answers now; never raises."""
        try:
            return bool(self._call("PING", self._client.ping))
        except Exception:
            return False

    def describe(self) -> dict[str, Any]:
        try:
            events = int(self._call(f"XLEN {self.events_key}",
                                    lambda: self._client.xlen(self.events_key)))
        except Exception:
            events = None
        return {"kind": self.name, "url": mask_url(self.url), "prefix": self.prefix,
                "events": events}

    def close(self) -> None:
        """Release every connection; the store is unusable afterwards."""
        self._closed = True
        with self._lock:
            clients = [self._client, *self._blocking.values()]
            self._blocking.clear()
        for client in clients:
            try:
                client.close()
                client.connection_pool.disconnect()
            except Exception:  # closing never fails
                log.debug("closing a Redis client failed", exc_info=True)


def _stream_entries(reply: Any, key: str) -> list[tuple[str, dict[str, str]]]:
    """The entries of ``key`` in an XREAD reply (RESP2 list or RESP3 dict)."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return list(reply.get(key) or [])
    for name, entries in reply:
        if name == key:
            return list(entries)
    return []
