"""``Idempotency-Key`` for writes: a client that retries a POST/PUT/PATCH/DELETE (its
connection dropped after the write was stored) gets the first answer back instead of writing
twice. Pure ASGI middleware (:class:`Idempotency`), wired by :func:`api.app.create_app`; no
handler knows about it.

The contract (as IETF draft-ietf-httpapi-idempotency-key-header and common practice):

- **Key**: 1 to 255 printable ASCII characters without spaces (``[!-~]``), e.g. a UUID; a
  request that sends anything else gets 422. Requests without the header are untouched.
- **Scope**: the caller (its API key, hashed; one shared scope when no keys are configured),
  the method and the path. The same key on another path, or from another API key, is another
  operation.
- **First request**: runs. A 2xx answer is kept for ``Settings.idempotency_ttl_s`` (24 h by
  default) and every repeat with the same request gets it back, status, headers and body
  byte for byte, plus ``Idempotent-Replayed: true``, without running the handler: nothing is
  written twice. The answer is stored *before* its last byte is sent, so a client that saw
  the answer never sees the write run again.
- **Same key, another request** (body, query string or content type differ): 422.
- **Same key while the first request is still running**, on any worker: 409 (``Retry-After``).
- **Answers other than 2xx are not kept**: the write did not happen (a 4xx refused it, a 503
  says the store did not take it), so the key is freed and a retry runs again.
- **Where**: the state store's key-value section. Redis: ``SET NX`` with a TTL, shared by
  every worker and instance. Embedded store: this process's memory (it serves one worker),
  lost on restart.
- **Limits**: a claim lives :data:`IN_FLIGHT_TTL_S` (a worker that dies mid-request frees its
  keys then); an answer larger than :data:`MAX_REPLAY_BYTES` is not kept (the key is freed;
  writes answer a few hundred bytes); the store unreachable: 503, the write is not accepted,
  since a duplicate could not be ruled out.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread

from api.store import Store, StoreUnavailable

log = logging.getLogger("gyrophare.idempotency")

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_KEY_LENGTH = 255
KEY_PATTERN = r"^[!-~]{1,255}$"  #: printable ASCII, no spaces (as /openapi.json says)
IN_FLIGHT_TTL_S = 120.0  #: how long a claim outlives a worker that died holding it
MAX_REPLAY_BYTES = 1 << 20
_KEY = re.compile(r"[!-~]{1,255}")  # fullmatch: "$" would let a trailing newline through


def parameter(ttl_s: float) -> dict[str, Any]:
    """The ``Idempotency-Key`` header as an OpenAPI parameter of a write (answers kept
    ``ttl_s`` seconds)."""
    return {
        "name": HEADER, "in": "header", "required": False,
        "description": "Retry-safe writes: a repeat with the same key (same API key, method and "
                       f"path) within {ttl_s / 3600:g} h gets the first 2xx answer back, with "
                       f"`{REPLAYED}: true`, and writes nothing; the same key with another "
                       "request: 422; while the first is still running: 409. "
                       "1-255 printable ASCII characters without spaces, e.g. a UUID.",
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH,
                   "pattern": KEY_PATTERN},
    }


def responses() -> dict[str, dict[str, Any]]:
    """The answers a write can get from this middleware, whatever its handler: 409 (a
    request with the same key still in progress) and 503 (the store could not be asked), as
    OpenAPI responses with the service's error body."""
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    return {
        "409": {"description": f"a request with the same {HEADER} is still in progress: retry "
                               "after `Retry-After` seconds to get its answer",
                "headers": {"Retry-After": {"description": "seconds to wait",
                                            "schema": {"type": "string"}}},
                "content": body},
        "503": {"description": f"the state store is unavailable: the write was not accepted "
                               f"(with an {HEADER}, nothing is run: a duplicate could not be "
                               "ruled out)", "content": body},
    }


def _header(scope: dict[str, Any], name: bytes) -> bytes | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return value
    return None


def _caller(scope: dict[str, Any]) -> bytes:
    """The API key the caller sent, read as :func:`api.auth.caller_role` reads it (only ever
    hashed: the raw key is never stored). Writes never take a key from the query string."""
    key = _header(scope, b"x-api-key")
    if not key:
        auth = _header(scope, b"authorization") or b""
        if auth[:7].lower() == b"bearer ":
            key = auth[7:].strip()
    return key or b""


async def _answer(send: Any, status: int, body: dict[str, Any],
                  headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode()), *headers]})
    await send({"type": "http.response.body", "body": data})


def _invalid(message: str) -> dict[str, Any]:
    """A 422 body shaped as :class:`api.models.errors.ValidationErrorBody`."""
    return {"detail": message, "errors": [{"loc": ["header", HEADER], "msg": message,
                                           "type": "value_error"}]}


class Idempotency:
    """The middleware. ``store`` gives the live state store (known once the app started)."""

    def __init__(self, app: Any, store: Callable[[], Store], ttl_s: float) -> None:
        self.app, self.store, self.ttl_s = app, store, ttl_s

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS:
            return await self.app(scope, receive, send)
        raw = _header(scope, HEADER.lower().encode())
        if raw is None:
            return await self.app(scope, receive, send)
        key = raw.decode("latin-1")
        if not _KEY.fullmatch(key):
            return await _answer(send, 422, _invalid(
                f"invalid {HEADER} header: use 1 to {MAX_KEY_LENGTH} printable ASCII "
                "characters without spaces, e.g. a UUID"))

        parts: list[bytes] = []  # the whole request, so that a repeat can be compared with it
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left before sending its body: nothing to do
            parts.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(parts)
        method, path = scope["method"], scope["path"]
        where = (method.encode(), path.encode("utf-8", "surrogatepass"))
        content_type = _header(scope, b"content-type") or b""
        fingerprint = hashlib.sha256(b"\0".join(
            (*where, scope.get("query_string", b""), content_type, body))).hexdigest()
        record = "idempotency:" + hashlib.sha256(b"\0".join(
            (_caller(scope), *where, raw))).hexdigest()

        store = self.store()
        try:
            claimed = await anyio.to_thread.run_sync(
                store.claim, record, json.dumps({"fingerprint": fingerprint}), IN_FLIGHT_TTL_S)
            previous = None if claimed else await anyio.to_thread.run_sync(store.recall, record)
        except StoreUnavailable as exc:
            return await _answer(send, 503, {
                "detail": f"state store unavailable, the write was NOT accepted: {exc}",
                "stale": True})
        if not claimed:
            return await self._repeat(send, previous, fingerprint, method, path)

        sent_body = False

        async def replay_body() -> dict[str, Any]:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        start: dict[str, Any] = {}
        chunks: list[bytes] = []
        kept = False

        async def capture(message: dict[str, Any]) -> None:
            nonlocal kept
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    kept = await self._keep(store, record, fingerprint, start, b"".join(chunks))
            await send(message)

        try:
            await self.app(scope, replay_body, capture)
        finally:
            if not kept:
                with anyio.CancelScope(shield=True):
                    await self._free(store, record)

    async def _repeat(self, send: Any, previous: str | None, fingerprint: str, method: str,
                      path: str) -> None:
        """Answer a request whose key is taken: replay, 422 or 409."""
        first = json.loads(previous) if previous else None
        if first is not None and first["fingerprint"] != fingerprint:
            return await _answer(send, 422, _invalid(
                f"this {HEADER} was already used for a different request to {method} {path} "
                "(body, query or content type differ): use a new key for a new request"))
        if first is None or "status" not in first:
            return await _answer(send, 409, {
                "detail": f"a request with this {HEADER} is still in progress: retry in a "
                          "moment to get its answer"}, headers=((b"retry-after", b"1"),))
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in first["headers"]]
        await send({"type": "http.response.start", "status": first["status"],
                    "headers": [*headers, (REPLAYED.lower().encode(), b"true")]})
        await send({"type": "http.response.body", "body": base64.b64decode(first["body"])})

    async def _keep(self, store: Store, record: str, fingerprint: str,
                    start: dict[str, Any], body: bytes) -> bool:
        """Store a 2xx answer for replay; False when it is not kept (the key is then freed)."""
        status = int(start.get("status", 500))
        if not 200 <= status < 300 or len(body) > MAX_REPLAY_BYTES:
            return False
        value = json.dumps({
            "fingerprint": fingerprint, "status": status, "body": base64.b64encode(body).decode(),
            "headers": [(k.decode("latin-1"), v.decode("latin-1"))
                        for k, v in start.get("headers", ())]})
        try:
            await anyio.to_thread.run_sync(store.remember, record, value, self.ttl_s)
        except StoreUnavailable as exc:  # the write happened: keep the claim until it expires
            log.warning("could not keep an idempotent answer (a retry gets 409 for %.0f s): %s",
                        IN_FLIGHT_TTL_S, exc)
        return True

    @staticmethod
    async def _free(store: Store, record: str) -> None:
        try:
            await anyio.to_thread.run_sync(store.forget, record)
        except StoreUnavailable as exc:  # the claim expires by itself
            log.warning("could not free an idempotency key: %s", exc)
