"""The Redis store: the event log in a Redis stream that every worker (and instance) follows.

Keys (``prefix`` defaults to ``gyrophare``):

- ``{prefix}:events``: the log, a stream; one entry per event, fields ``event`` (
  :meth:`Event.to_dict` as JSON) and ``seq`` (its number, see :mod:`api.store.base`).
- ``{prefix}:meta``: a hash naming the log's generation: ``epoch``, ``seq`` (last event),
  ``base`` (events up to it were trimmed), ``parent`` and ``seed_seq`` (what it was seeded
  from), ``snapshot_seq`` / ``snapshot_pos`` (the latest snapshot), ``created_at``.
- ``{prefix}:snapshot``: the latest snapshot, JSON (``epoch``, ``seq``, ``position``,
  ``taken_at``, ``data``).
- ``{prefix}:alerts``: a mirror of saturation alerts, a stream capped at ~10 000 entries.

Generations (why ``meta`` exists)
    A Redis restarted without persistence (or from an older file) comes back empty (or
    behind): a worker that kept following would mix the old state it holds with the new log,
    and a worker starting then would replay only the new log. Every append is therefore a
    Lua script that checks the generation and the caller's position atomically
    (:meth:`RedisStore.append` raises :class:`LogReset`), and every read fetches ``meta`` in
    the same ``MULTI`` as the events. :mod:`api.state` heals (re-seeds the log from its
    state, atomically: :meth:`RedisStore.create`).

Compaction
    :meth:`RedisStore.save_snapshot` stores the snapshot and trims the stream (``XTRIM
    MINID``) up to the *previous* snapshot, in one script: a worker that lags behind by less
    than one snapshot interval still finds its next events; one further behind gets
    :class:`LogTrimmed` and reloads the snapshot.

Positions
    A stream id ``"<ms>-<seq>"`` does not sort as a string (``"9-0" > "10-0"``). Positions
    handed out are therefore both parts zero-padded to 20 digits (``2**64`` has 20), e.g.
    ``"00000001732700000000-00000000000000000000"``: string order is log order.
    :func:`encode_position` / :func:`decode_position` convert; ``decode_position`` also takes
    a plain stream id. Event *numbers* (``seq``) are what workers compare.

Acknowledgment
    :meth:`RedisStore.append` returns once the script has answered, i.e. once the Redis
    server holds the event (in memory, and in its AOF per its ``appendfsync`` policy: see
    :meth:`RedisStore.persistence` and the README's "Reliability"). ``WAIT`` (for replicas)
    is not used: one server is the source of truth. ``WAITAOF`` (Redis >= 7.2, wait for the
    local fsync) could be added for a strict "on disk" guarantee.
    A *timeout* while waiting for the reply is ambiguous: the server may have taken the
    event although :class:`StoreUnavailable` is raised; every worker then applies it when it
    reads the log. Commands are never retried automatically (a retried append could
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
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from api.store.base import (
    Cursor,
    Event,
    LogHead,
    LogReset,
    LogTrimmed,
    Record,
    Snapshot,
    Store,
    StoreUnavailable,
    new_epoch,
)

log = logging.getLogger("gyrophare.store.redis")

T = TypeVar("T")

_DIGITS = 20  #: 2**64 - 1 has 20 digits: both parts of a stream id fit
MAX_BLOCK_S = 60.0  #: longest single blocking read (callers loop)
ALERTS_MAXLEN = 10_000
PAGE_SIZE = 1000  #: entries per XRANGE call
HEALTH_CHECK_INTERVAL_S = 5

# KEYS: meta, events. ARGV: epoch, the caller's seq, event JSON.
_APPEND = """
local m = redis.call('HMGET', KEYS[1], 'epoch', 'seq')
if not m[1] then return {'NOLOG'} end
if m[1] ~= ARGV[1] then return {'EPOCH'} end
local seq = tonumber(m[2])
if seq < tonumber(ARGV[2]) then return {'BEHIND', tostring(seq)} end
seq = seq + 1
local id = redis.call('XADD', KEYS[2], '*', 'event', ARGV[3], 'seq', tostring(seq))
redis.call('HSET', KEYS[1], 'seq', tostring(seq))
return {'OK', id, tostring(seq)}
"""

# KEYS: meta, events, snapshot. ARGV: mode ('new' | 'replace'), epoch and seq of the log to
# replace, new epoch, seed seq, parent epoch, created_at, snapshot JSON ('' for none).
_CREATE = """
local cur = redis.call('HMGET', KEYS[1], 'epoch', 'seq')
if ARGV[1] == 'new' then
  if cur[1] then return 0 end
elseif cur[1] ~= ARGV[2] or cur[2] ~= ARGV[3] then
  return 0
end
local seq = tonumber(ARGV[5])
local kept = 0
if ARGV[1] == 'new' and ARGV[8] == '' and redis.call('EXISTS', KEYS[2]) == 1 then
  -- a log written before generations existed: number its entries and keep them
  local entries = redis.call('XRANGE', KEYS[2], '-', '+')
  redis.call('DEL', KEYS[2])
  for i, e in ipairs(entries) do
    local fields = e[2]
    table.insert(fields, 'seq')
    table.insert(fields, tostring(seq + i))
    redis.call('XADD', KEYS[2], e[1], unpack(fields))
  end
  kept = #entries
else
  redis.call('DEL', KEYS[2], KEYS[3])
end
redis.call('DEL', KEYS[1])
local snap = '0'
if ARGV[8] ~= '' then
  redis.call('SET', KEYS[3], ARGV[8])
  snap = ARGV[5]
end
redis.call('HSET', KEYS[1], 'epoch', ARGV[4], 'seq', tostring(seq + kept), 'base', ARGV[5],
           'seed_seq', ARGV[5], 'parent', ARGV[6], 'created_at', ARGV[7],
           'snapshot_seq', snap, 'snapshot_pos', '')
return 1
"""

# KEYS: meta, events, snapshot. ARGV: epoch, seq, stream id of that event ('' for none),
# snapshot JSON. Keeps it if newer; trims the stream up to the previous snapshot.
_SAVE_SNAPSHOT = """
local m = redis.call('HMGET', KEYS[1], 'epoch', 'seq', 'snapshot_seq', 'snapshot_pos', 'base')
if m[1] ~= ARGV[1] then return 0 end
local seq = tonumber(ARGV[2])
if seq > tonumber(m[2]) or seq <= tonumber(m[3] or '0') then return 0 end
redis.call('SET', KEYS[3], ARGV[4])
local prev = m[4]
if prev and prev ~= '' then
  local dash = string.find(prev, '-', 1, true)
  local minid = string.sub(prev, 1, dash) .. tostring(tonumber(string.sub(prev, dash + 1)) + 1)
  redis.call('XTRIM', KEYS[2], 'MINID', minid)
  if tonumber(m[3]) > tonumber(m[5] or '0') then redis.call('HSET', KEYS[1], 'base', m[3]) end
end
redis.call('HSET', KEYS[1], 'snapshot_seq', ARGV[2], 'snapshot_pos', ARGV[3])
return 1
"""


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
        Key prefix: ``{prefix}:events``, ``{prefix}:meta``, ``{prefix}:snapshot``,
        ``{prefix}:alerts`` (see the module notes).
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
        self.meta_key = f"{prefix}:meta"
        self.snapshot_key = f"{prefix}:snapshot"
        self._lock = threading.Lock()
        self._blocking: dict[int, redis.Redis] = {}  # by whole seconds of block time
        self._closed = False
        self._client = self._make_client(socket_timeout)
        self._append_script = self._client.register_script(_APPEND)
        self._create_script = self._client.register_script(_CREATE)
        self._save_script = self._client.register_script(_SAVE_SNAPSHOT)

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
    @staticmethod
    def _head_of(raw: dict[str, str] | None) -> LogHead:
        if not raw or not raw.get("epoch"):
            return LogHead(epoch=None)
        return LogHead(epoch=raw["epoch"], seq=int(raw.get("seq") or 0),
                       base=int(raw.get("base") or 0), parent=raw.get("parent") or None,
                       seed_seq=int(raw.get("seed_seq") or 0),
                       snapshot_seq=int(raw.get("snapshot_seq") or 0),
                       created_at=raw.get("created_at") or None)

    def head(self) -> LogHead:
        raw = self._call(f"HGETALL {self.meta_key}",
                         lambda: self._client.hgetall(self.meta_key))
        return self._head_of(cast("dict[str, str]", raw))

    def _head_or_none(self) -> LogHead | None:
        try:
            return self.head()
        except StoreUnavailable:
            return None

    def _where(self) -> str:
        return f"Redis {mask_url(self.url)} {self.events_key}"

    def _check(self, cursor: Cursor, head: LogHead) -> None:
        """:class:`LogReset` / :class:`LogTrimmed` unless ``cursor`` can read on."""
        if head.epoch is None:
            raise LogReset(f"{self._where()}: the log is gone (Redis restarted without its "
                           f"data?); this worker applied events up to {cursor.seq}",
                           reason="reset", head=head)
        if head.epoch != cursor.epoch:
            raise LogReset(f"{self._where()}: the log is generation {head.epoch}, not "
                           f"{cursor.epoch}", reason="replaced", head=head)
        if head.seq < cursor.seq:
            raise LogReset(f"{self._where()}: the log ends at event {head.seq}, before event "
                           f"{cursor.seq} that this worker applied (Redis lost events)",
                           reason="rollback", head=head)
        if head.base > cursor.seq:
            raise LogTrimmed(f"{self._where()}: events {cursor.seq + 1}..{head.base} were "
                             "compacted into the snapshot", head=head)

    def create(self, *, seed: Snapshot | None = None, replace: LogHead | None = None
               ) -> LogHead:
        """A new generation, atomically (see :meth:`Store.create`). An empty generation on
        a stream written before generations existed keeps its events (numbered 1, 2...)."""
        epoch = new_epoch()
        doc = "" if seed is None else json.dumps(self._snapshot_doc(Snapshot(
            epoch, seed.seq, None, seed.data, seed.taken_at)), separators=(",", ":"))
        args = ["replace" if replace is not None else "new",
                replace.epoch or "" if replace is not None else "",
                str(replace.seq) if replace is not None else "", epoch,
                str(seed.seq if seed else 0), seed.epoch if seed else "",
                datetime.now(UTC).isoformat(), doc]
        keys = [self.meta_key, self.events_key, self.snapshot_key]
        self._call("EVALSHA create", lambda: self._create_script(keys=keys, args=args))
        return self.head()

    def append(self, event: Event, *, cursor: Cursor) -> Record:
        """Append the event (a script checking ``cursor``, see the module notes); its record
        once Redis has it."""
        data = json.dumps(event.to_dict(), separators=(",", ":"))
        reply = self._call(f"XADD {self.events_key}", lambda: self._append_script(
            keys=[self.meta_key, self.events_key], args=[cursor.epoch, cursor.seq, data]))
        if reply[0] == "OK":
            return Record(encode_position(reply[1]), int(reply[2]), event)
        head = self._head_or_none()
        if head is not None:
            self._check(cursor, head)
        raise LogReset(f"{self._where()}: the log is not this worker's ({reply[0]})",
                       reason="reset" if reply[0] == "NOLOG" else "replaced", head=head)

    def read(self, cursor: Cursor, *, until: str | None = None,
             block_s: float = 0.0) -> list[Record]:
        """Events after ``cursor`` up to position ``until`` (inclusive), in log order.

        When there are none and ``block_s > 0``, waits up to ``block_s`` (at most
        :data:`MAX_BLOCK_S`) with ``XREAD BLOCK`` and returns what arrived. An entry without
        a ``seq`` (not written by a store) is returned with seq 0.
        """
        start = decode_position(cursor.position) if cursor.position else None
        end = decode_position(until) if until else None
        if start is not None and end is not None and _as_tuple(start) >= _as_tuple(end):
            return []
        head, entries = self._call(f"XRANGE {self.events_key}", lambda: self._range(start, end))
        self._check(cursor, head)
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
        return self._records(cursor, entries)

    def _records(self, cursor: Cursor, entries: list[tuple[str, dict[str, str]]]
                 ) -> list[Record]:
        out: list[Record] = []
        expected = cursor.seq + 1
        for stream_id, fields in entries:
            event = self._event(stream_id, fields)
            text = fields.get("seq", "")
            if not (text.isascii() and text.isdigit()):
                out.append(Record(encode_position(stream_id), 0, event))
                continue
            seq = int(text)
            if seq < expected:  # numbers reused after our position: rewritten behind us
                raise LogReset(f"{self._where()}: entry {stream_id} is event {seq}, but this "
                               f"worker applied events up to {expected - 1} (Redis lost "
                               "events, and others were written since)", reason="rollback",
                               head=self._head_or_none(), rewritten_from=seq)
            out.append(Record(encode_position(stream_id), seq, event))
            expected = seq + 1
        return out

    def _range(self, start: str | None, end: str | None
               ) -> tuple[LogHead, list[tuple[str, dict[str, str]]]]:
        """The log's head and XRANGE (start, end], page by page (a replay of a long log never
        blocks Redis with one huge reply); the head is read in the same MULTI as the first
        page."""
        out: list[tuple[str, dict[str, str]]] = []
        head: LogHead | None = None
        while True:
            pipe = self._client.pipeline(transaction=True)
            if head is None:
                pipe.hgetall(self.meta_key)
            pipe.xrange(self.events_key, min=f"({start}" if start else "-", max=end or "+",
                        count=PAGE_SIZE)
            replies = pipe.execute()
            if head is None:
                head = self._head_of(replies[0])
            page = cast("list[tuple[str, dict[str, str]]]", replies[-1])
            out.extend(page)
            if len(page) < PAGE_SIZE:
                return head, out
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

    def last_record(self) -> Record | None:
        """The stream's last entry (XREVRANGE ... COUNT 1)."""
        page = cast("list[tuple[str, dict[str, str]]]", self._call(
            f"XREVRANGE {self.events_key}",
            lambda: self._client.xrevrange(self.events_key, count=1)))
        if not page:
            return None
        stream_id, fields = page[0]
        text = fields.get("seq", "")
        seq = int(text) if text.isascii() and text.isdigit() else 0
        return Record(encode_position(stream_id), seq, self._event(stream_id, fields))

    # ---------------------------------------------------------------- snapshots
    @staticmethod
    def _snapshot_doc(snapshot: Snapshot) -> dict[str, Any]:
        return {"epoch": snapshot.epoch, "seq": snapshot.seq, "position": snapshot.position,
                "taken_at": snapshot.taken_at, "data": snapshot.data}

    def load_snapshot(self) -> Snapshot | None:
        raw = self._call(f"GET {self.snapshot_key}", lambda: self._client.get(self.snapshot_key))
        if not raw:
            return None
        try:
            doc = json.loads(cast("str", raw))
            return Snapshot(epoch=str(doc["epoch"]), seq=int(doc["seq"]),
                            position=doc.get("position"), data=doc["data"],
                            taken_at=str(doc.get("taken_at", "")))
        except (KeyError, TypeError, ValueError) as exc:
            log.error("malformed snapshot in %s: %s", self.snapshot_key, exc)
            return None

    def save_snapshot(self, snapshot: Snapshot) -> bool:
        """Keep the snapshot if newer, and trim the stream up to the previous one (one
        script, see the module notes)."""
        doc = json.dumps(self._snapshot_doc(snapshot), separators=(",", ":"))
        stream_id = decode_position(snapshot.position) if snapshot.position else ""
        keys = [self.meta_key, self.events_key, self.snapshot_key]
        kept = self._call("EVALSHA save_snapshot", lambda: self._save_script(
            keys=keys, args=[snapshot.epoch, snapshot.seq, stream_id, doc]))
        return bool(kept)

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

    def persistence(self) -> dict[str, Any]:
        """What survives a restart of this Redis: ``appendonly``, ``appendfsync``,
        ``save`` (CONFIG GET; when CONFIG is disabled or renamed, ``durable`` is None and
        ``detail`` says why), ``durable`` and ``detail`` in words. Never raises."""
        try:
            config: dict[str, str] = {}
            for name in ("appendonly", "appendfsync", "save"):
                got = self._call(f"CONFIG GET {name}", partial(self._client.config_get, name))
                config.update(cast("dict[str, str]", got))
        except StoreUnavailable as exc:
            return {"durable": None, "detail": f"could not read the persistence settings: "
                                               f"{exc}"}
        aof, fsync, save = (config.get("appendonly", ""), config.get("appendfsync", ""),
                            config.get("save", "").strip())
        out: dict[str, Any] = {"appendonly": aof, "appendfsync": fsync, "save": save}
        if aof == "yes":
            loss = {"always": "no acknowledged write is lost",
                    "everysec": "up to about 1 s of acknowledged writes may be lost"}.get(
                fsync, "acknowledged writes may be lost (the OS decides when to write)")
            out.update(durable=True, detail=f"append-only file, appendfsync {fsync}: on a "
                                            f"crash of the Redis host {loss}")
        elif save:
            out.update(durable=False, detail=f"RDB snapshots only (save {save}): a Redis "
                                             "restart loses every write since the last save")
        else:
            out.update(durable=False, detail="no persistence (appendonly no, save \"\"): a "
                                             "Redis restart loses the whole log")
        return out

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

    # ---------------------------------------------------------------- short-lived keys
    # ``{prefix}:{key}`` strings with a TTL in milliseconds (at least 1), shared by every
    # worker and instance on this Redis: ``claim`` is ``SET NX PX``, atomic across them.

    def claim(self, key: str, value: str, ttl_s: float) -> bool:
        name = f"{self.prefix}:{key}"
        return bool(self._call(f"SET NX {name}", lambda: self._client.set(
            name, value, nx=True, px=max(1, round(ttl_s * 1000)))))

    def remember(self, key: str, value: str, ttl_s: float) -> None:
        name = f"{self.prefix}:{key}"
        self._call(f"SET {name}", lambda: self._client.set(
            name, value, px=max(1, round(ttl_s * 1000))))

    def recall(self, key: str) -> str | None:
        name = f"{self.prefix}:{key}"
        return cast("str | None", self._call(f"GET {name}", lambda: self._client.get(name)))

    def forget(self, key: str) -> None:
        name = f"{self.prefix}:{key}"
        self._call(f"DEL {name}", lambda: self._client.delete(name))


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
