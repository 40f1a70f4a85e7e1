"""Service hardening: safe defaults in every start path (loopback only without API keys, no
keys in the query string of writes), CORS for browser front ends, ``Idempotency-Key`` retries
(embedded store and two instances on Redis), and the security schemes of ``/openapi.json``."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import app_from_env, create_app
from api.settings import Settings
from api.store import EmbeddedStore, StoreUnavailable

A = [7.4246, 43.7384]  # [lon, lat]: Monte-Carlo
B = [7.4197, 43.7313]  # La Condamine
KEYS = {"k-disp": "dispatcher", "k-cc": "command_centre", "k-cc2": "command_centre",
        "k-admin": "admin"}
REMOTE = ("203.0.113.7", 40000)  # TEST-NET-3: never routed, only a peer address in a scope
CLOSURE = {"type": "Feature", "geometry": {"type": "Point", "coordinates": A},
           "properties": {"radius_m": 30}}
ORIGIN = "https://dispatch.example.org"


def _entries(client: TestClient, **headers: str) -> list[dict[str, Any]]:
    return client.get("/v1/traffic", headers=headers).json()["entries"]


@pytest.fixture()
def open_app(monaco, tmp_path: Path):
    return create_app(Settings(), graph=monaco, store=EmbeddedStore(tmp_path / "s.jsonl"))


@pytest.fixture()
def client(open_app) -> Iterator[TestClient]:
    with TestClient(open_app) as c:
        yield c


@pytest.fixture()
def keyed(monaco, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(Settings(api_keys=KEYS), graph=monaco,
                     store=EmbeddedStore(tmp_path / "k.jsonl"))
    with TestClient(app) as c:
        yield c


# ----------------------------------------------------------------------------- safe defaults
@pytest.mark.parametrize("peer", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1",
                                  "testclient"])
def test_open_access_serves_loopback_callers(open_app, peer: str) -> None:
    with TestClient(open_app, client=(peer, 5000)) as c:
        assert c.get("/v1/traffic").status_code == 200


@pytest.mark.parametrize("peer", ["203.0.113.7", "10.1.2.3", "fe80::1", "2001:db8::1",
                                  "::ffff:203.0.113.7", "some-host"])
def test_open_access_refuses_remote_callers(open_app, peer: str) -> None:
    """No keys = everybody is admin: a caller from beyond loopback gets 403 and is told how to
    configure keys, on every path (docs and metrics included)."""
    with TestClient(open_app, client=(peer, 5000)) as c:
        for method, path in (("get", "/v1/traffic"), ("post", "/v1/closures"),
                             ("get", "/health"), ("get", "/openapi.json"),
                             ("get", "/route/v1/driving/7.42,43.73;7.41,43.73")):
            r = getattr(c, method)(path)
            assert r.status_code == 403, (peer, path, r.text)
            assert "GYROPHARE_API_KEYS" in r.json()["detail"], r.text
        assert _entries(TestClient(open_app)) == []  # a loopback caller: nothing was written


def test_open_access_refuses_requests_relayed_by_a_proxy(client: TestClient) -> None:
    """A proxy on the same machine connects from loopback: the address it relays for counts."""
    for headers in ({"X-Forwarded-For": "203.0.113.7"},
                    {"X-Forwarded-For": "127.0.0.1, 198.51.100.2"},
                    {"Forwarded": 'for="[2001:db8::1]:443";proto=https'},
                    {"X-Real-IP": "198.51.100.2"}):
        r = client.get("/v1/traffic", headers=headers)
        assert r.status_code == 403, headers
    assert client.get("/v1/traffic", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 200
    assert client.get("/v1/traffic", headers={"Forwarded": "for=127.0.0.1"}).status_code == 200


def test_the_uvicorn_factory_is_guarded_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """``uvicorn api.app:app_from_env --factory --host 0.0.0.0`` bypasses ``gyrophare serve``:
    the guard is in the app, so it answers a remote caller 403 before anything else runs (no
    lifespan here: without the guard the request would reach a handler as admin)."""
    monkeypatch.delenv("GYROPHARE_API_KEYS", raising=False)
    monkeypatch.chdir(Path(__file__).parent)  # no stray .env
    app = app_from_env()
    r = TestClient(app, client=REMOTE).get("/v1/hospitals")
    assert r.status_code == 403 and "X-API-Key" in r.json()["detail"]


def test_api_keys_serve_remote_callers(keyed: TestClient, monaco, tmp_path: Path) -> None:
    app = create_app(Settings(api_keys=KEYS), graph=monaco,
                     store=EmbeddedStore(tmp_path / "r.jsonl"))
    with TestClient(app, client=REMOTE) as c:
        assert c.get("/v1/traffic", headers={"X-API-Key": "k-disp"}).status_code == 200
        assert c.get("/v1/traffic").status_code == 401


def test_query_string_keys_are_refused_for_writes(keyed: TestClient) -> None:
    """``?api_key=`` only for the read-only OSRM GET endpoints: a key in a URL ends up in
    access logs, proxies and browser history."""
    r = keyed.post("/v1/closures", params={"api_key": "k-cc"}, json=CLOSURE)
    assert r.status_code == 401, r.text
    assert "query string" in r.json()["detail"] and "X-API-Key" in r.json()["detail"]
    # even with a good header key: the URL leaked the key, the client must be fixed
    r = keyed.post("/v1/closures", params={"api_key": "k-cc"}, json=CLOSURE,
                   headers={"X-API-Key": "k-cc"})
    assert r.status_code == 401
    hid = keyed.get("/v1/hospitals", headers={"X-API-Key": "k-disp"}).json()[0]["id"]
    for method, path, kwargs in (
        ("put", f"/v1/hospitals/{hid}/status", {"json": {"ed_status": "Closed"}}),
        ("delete", "/v1/closures/whatever", {}),
        ("post", "/v1/route", {"json": {"origin": A, "destination": B}}),
        ("get", "/v1/traffic", {}),  # not an OSRM endpoint either
    ):
        r = getattr(keyed, method)(path, params={"api_key": "k-admin"}, **kwargs)
        assert r.status_code == 401 and "query string" in r.json()["detail"], (path, r.text)
    assert _entries(keyed, **{"X-API-Key": "k-disp"}) == []
    osrm = keyed.get("/route/v1/driving/7.4246,43.7384;7.4197,43.7313",
                     params={"api_key": "k-disp"})
    assert osrm.status_code == 200 and osrm.json()["code"] == "Ok"
    assert keyed.get("/nearest/v1/driving/7.4246,43.7384",
                     params={"api_key": "nope"}).status_code == 401


# ----------------------------------------------------------------------------- CORS
def test_cors_is_off_by_default(client: TestClient) -> None:
    r = client.options("/route/v1/driving/7.4246,43.7384;7.4197,43.7313",
                       headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"})
    assert r.status_code == 405
    r = client.get("/v1/traffic", headers={"Origin": ORIGIN})
    assert "access-control-allow-origin" not in r.headers


def test_cors_preflight_and_simple_get(monaco, tmp_path: Path) -> None:
    """A Leaflet Routing Machine page on another origin: preflight, then the route."""
    settings = Settings(api_keys=KEYS, cors_origins=[ORIGIN])
    app = create_app(settings, graph=monaco, store=EmbeddedStore(tmp_path / "c.jsonl"))
    path = "/route/v1/driving/7.4246,43.7384;7.4197,43.7313"
    with TestClient(app) as c:
        pre = c.options(path, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET",
                                       "Access-Control-Request-Headers": "x-api-key"})
        assert pre.status_code == 200, pre.text
        assert pre.headers["access-control-allow-origin"] == ORIGIN
        assert "GET" in pre.headers["access-control-allow-methods"]
        assert "x-api-key" in pre.headers["access-control-allow-headers"].lower()
        pre = c.options("/v1/closures", headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,authorization,idempotency-key"})
        assert pre.status_code == 200, pre.text
        got = c.get(path, headers={"Origin": ORIGIN, "X-API-Key": "k-disp"})
        assert got.status_code == 200 and got.json()["code"] == "Ok"
        assert got.headers["access-control-allow-origin"] == ORIGIN
        assert "x-attribution" in got.headers["access-control-expose-headers"].lower()
        # errors carry the header too, so the page can read why
        denied = c.get(path, headers={"Origin": ORIGIN})
        assert denied.status_code == 401
        assert denied.headers["access-control-allow-origin"] == ORIGIN
        # another origin is not allowed
        other = c.options(path, headers={"Origin": "https://evil.example",
                                         "Access-Control-Request-Method": "GET"})
        assert other.status_code == 400
        assert "access-control-allow-origin" not in other.headers
        plain = c.get(path, headers={"Origin": "https://evil.example", "X-API-Key": "k-disp"})
        assert "access-control-allow-origin" not in plain.headers


def test_cors_origins_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path(__file__).parent)
    monkeypatch.setenv("GYROPHARE_CORS_ORIGINS", f"{ORIGIN}, http://localhost:8080")
    assert Settings().cors_origins == [ORIGIN, "http://localhost:8080"]
    monkeypatch.setenv("GYROPHARE_CORS_ORIGINS", f'["{ORIGIN}"]')
    assert Settings().cors_origins == [ORIGIN]
    monkeypatch.setenv("GYROPHARE_CORS_ORIGINS", "*")
    assert Settings().cors_origins == ["*"]
    for bad in (f"{ORIGIN}/", "dispatch.example.org", f"{ORIGIN}/app"):
        monkeypatch.setenv("GYROPHARE_CORS_ORIGINS", bad)
        with pytest.raises(ValueError, match="origin"):
            Settings()


# ----------------------------------------------------------------------------- idempotency
def test_a_retried_closure_is_stored_once(client: TestClient) -> None:
    key = {"Idempotency-Key": "closure-7f3a"}
    first = client.post("/v1/closures", json=CLOSURE, headers=key)
    assert first.status_code == 201, first.text
    again = client.post("/v1/closures", json=CLOSURE, headers=key)
    assert again.status_code == 201
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert len(_entries(client)) == 1
    # another key, another closure; no key, no replay
    assert client.post("/v1/closures", json=CLOSURE,
                       headers={"Idempotency-Key": "closure-2"}).json() != first.json()
    client.post("/v1/closures", json=CLOSURE)
    assert len(_entries(client)) == 3


def test_same_key_other_body_or_path(client: TestClient) -> None:
    key = {"Idempotency-Key": "k-123"}
    assert client.post("/v1/closures", json=CLOSURE, headers=key).status_code == 201
    other = dict(CLOSURE, properties={"radius_m": 60})
    r = client.post("/v1/closures", json=other, headers=key)
    assert r.status_code == 422
    assert "Idempotency-Key" in r.json()["detail"] and "different" in r.json()["detail"]
    assert r.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    # the same key on another path (or method) is another operation
    r = client.post("/v1/reports", json={"location": B}, headers=key)
    assert r.status_code == 201, r.text
    assert len(_entries(client)) == 2


def test_put_and_delete_replay(client: TestClient) -> None:
    hid = client.get("/v1/hospitals").json()[1]["id"]
    key = {"Idempotency-Key": "status-1"}
    body = {"beds": {"AdultICU": {"baseline": 10, "available": 0}}}
    first = client.put(f"/v1/hospitals/{hid}/status", json=body, headers=key)
    again = client.put(f"/v1/hospitals/{hid}/status", json=body, headers=key)
    assert first.status_code == again.status_code == 200
    assert again.content == first.content and first.json()["signals"]
    cid = client.post("/v1/closures", json=CLOSURE).json()["id"]
    key = {"Idempotency-Key": "delete-1"}
    assert client.delete(f"/v1/closures/{cid}", headers=key).status_code == 200
    replay = client.delete(f"/v1/closures/{cid}", headers=key)  # not 404: the same answer
    assert replay.status_code == 200 and replay.headers["idempotent-replayed"] == "true"
    assert client.delete(f"/v1/closures/{cid}").status_code == 404


@pytest.mark.parametrize("bad", ["", "x" * 256, "tab\there", "é-accent", "two words"])
def test_malformed_keys_are_refused(client: TestClient, bad: str) -> None:
    r = client.post("/v1/closures", json=CLOSURE,
                    headers=[("Idempotency-Key", bad.encode("utf-8"))])  # type: ignore[arg-type]
    assert r.status_code == 422, r.text
    assert "Idempotency-Key" in r.json()["detail"] and "255" in r.json()["detail"]
    assert _entries(client) == []


def test_key_of_255_characters_is_accepted(client: TestClient) -> None:
    key = {"Idempotency-Key": "~" * 255}
    assert client.post("/v1/closures", json=CLOSURE, headers=key).status_code == 201


def test_keys_belong_to_their_caller(keyed: TestClient) -> None:
    """The same key from two API keys is two operations (a caller never sees another's)."""
    one = keyed.post("/v1/closures", json=CLOSURE,
                     headers={"X-API-Key": "k-cc", "Idempotency-Key": "shared"})
    two = keyed.post("/v1/closures", json=CLOSURE,
                     headers={"Authorization": "Bearer k-cc2", "Idempotency-Key": "shared"})
    assert one.status_code == two.status_code == 201
    assert one.json()["id"] != two.json()["id"] and "idempotent-replayed" not in two.headers
    # the same caller by another header is the same caller
    three = keyed.post("/v1/closures", json=CLOSURE,
                       headers={"Authorization": "Bearer k-cc", "Idempotency-Key": "shared"})
    assert three.json() == one.json() and three.headers["idempotent-replayed"] == "true"
    # refused writes are not remembered: a retry with the right key goes through
    low = keyed.post("/v1/closures", json=CLOSURE,
                     headers={"X-API-Key": "k-disp", "Idempotency-Key": "low"})
    assert low.status_code == 403
    assert len(_entries(keyed, **{"X-API-Key": "k-disp"})) == 2


def test_failed_writes_are_not_remembered(client: TestClient,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A 503 (the write was NOT accepted) or a 4xx leaves the key free: the retry runs."""
    store = client.app.state.live.store  # type: ignore[attr-defined]
    real = store.append

    def down(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable("connection refused")

    key = {"Idempotency-Key": "retry-after-outage"}
    monkeypatch.setattr(store, "append", down)
    assert client.post("/v1/closures", json=CLOSURE, headers=key).status_code == 503
    monkeypatch.setattr(store, "append", real)
    r = client.post("/v1/closures", json=CLOSURE, headers=key)
    assert r.status_code == 201 and "idempotent-replayed" not in r.headers
    bad = {"type": "Feature", "geometry": {"type": "Hexagon"}}
    assert client.post("/v1/closures", json=bad,
                       headers={"Idempotency-Key": "fix-me"}).status_code == 422
    assert client.post("/v1/closures", json=CLOSURE,
                       headers={"Idempotency-Key": "fix-me"}).status_code == 201
    assert len(_entries(client)) == 2


def test_a_too_large_body_claims_nothing(monaco, tmp_path: Path) -> None:
    app = create_app(Settings(max_body_bytes=2000), graph=monaco,
                     store=EmbeddedStore(tmp_path / "s.jsonl"))
    key = {"Idempotency-Key": "big"}
    with TestClient(app) as c:
        big = {"changes": [{"type": "Closure", "edges": list(range(3000))}]}
        assert c.post("/v1/traffic", json=big, headers=key).status_code == 413

        def chunks() -> Iterator[bytes]:  # streamed: no content-length to refuse it early
            yield b'{"changes": [{"type": "Closure", "edges": [' + b"1," * 1500

        assert c.post("/v1/traffic", content=chunks(), headers=key).status_code == 413
        r = c.post("/v1/traffic", json={"changes": [{"type": "Closure", "edges": [7]}]},
                   headers=key)
        assert r.status_code == 201 and "idempotent-replayed" not in r.headers


def test_a_duplicate_in_flight_gets_409(client: TestClient,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    store = client.app.state.live.store  # type: ignore[attr-defined]
    real = store.append
    entered, release = threading.Event(), threading.Event()

    def slow(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        assert release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "append", slow)
    key = {"Idempotency-Key": "in-flight"}
    answers: list[Any] = []
    thread = threading.Thread(target=lambda: answers.append(
        client.post("/v1/closures", json=CLOSURE, headers=key)))
    thread.start()
    try:
        assert entered.wait(10)
        dup = client.post("/v1/closures", json=CLOSURE, headers=key)
        assert dup.status_code == 409, dup.text
        assert "in progress" in dup.json()["detail"]
    finally:
        release.set()
        thread.join(10)
    assert answers[0].status_code == 201
    replay = client.post("/v1/closures", json=CLOSURE, headers=key)
    assert replay.json() == answers[0].json() and len(_entries(client)) == 1


def test_embedded_store_keys_expire(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "kv.jsonl")
    assert store.recall("a") is None
    assert store.claim("a", "one", 0.2) is True
    assert store.claim("a", "two", 0.2) is False and store.recall("a") == "one"
    store.remember("a", "done", 0.2)
    assert store.recall("a") == "done"
    time.sleep(0.3)
    assert store.recall("a") is None and store.claim("a", "three", 10) is True
    store.forget("a")
    assert store.recall("a") is None
    assert EmbeddedStore(tmp_path / "kv.jsonl").recall("a") is None  # memory only


def test_embedded_store_keys_are_bounded_in_memory(tmp_path: Path) -> None:
    """A day of keyed writes must not fill the worker's memory: beyond ``KV_MAX_BYTES`` the
    oldest answers go first; a rewritten key counts as new."""
    store = EmbeddedStore(tmp_path / "kv.jsonl")
    store.KV_MAX_BYTES = 10_000
    for k in range(100):
        store.remember(f"k{k}", "x" * 500, 3600)
    kept = [k for k in range(100) if store.recall(f"k{k}") is not None]
    assert kept == list(range(100 - len(kept), 100)) and 15 <= len(kept) <= 20
    store.remember(f"k{kept[0]}", "y", 3600)  # rewritten: now the newest
    store.remember("fresh", "x" * 2000, 3600)
    assert store.recall(f"k{kept[0]}") == "y" and store.recall(f"k{kept[1]}") is None
    store.forget("fresh")
    assert store.recall("fresh") is None


# ----------------------------------------------------------------------------- on Redis
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture()
def redis_prefix() -> Iterator[str]:
    from test_api_redis import _need_redis

    _need_redis(REDIS_URL)
    import redis

    prefix = f"gyrophare-edges-{uuid.uuid4().hex[:8]}"
    yield prefix
    r = redis.Redis.from_url(REDIS_URL)
    keys = list(r.scan_iter(f"{prefix}:*"))
    if keys:
        r.delete(*keys)


def _redis_app(monaco, prefix: str):
    from api.store.redis import RedisStore

    return create_app(Settings(redis_url=REDIS_URL, redis_prefix=prefix), graph=monaco,
                      store=RedisStore(REDIS_URL, prefix=prefix))


def test_redis_store_keys(redis_prefix: str) -> None:
    from api.store.redis import RedisStore

    store = RedisStore(REDIS_URL, prefix=redis_prefix)
    try:
        assert store.recall("a") is None
        assert store.claim("a", "one", 0.3) is True
        assert store.claim("a", "two", 0.3) is False and store.recall("a") == "one"
        store.remember("a", "done", 0.3)
        assert store.recall("a") == "done"
        time.sleep(0.45)
        assert store.recall("a") is None and store.claim("a", "three", 10) is True
        store.forget("a")
        assert store.recall("a") is None
    finally:
        store.close()


def test_a_retry_on_another_instance_is_replayed(monaco, redis_prefix: str) -> None:
    """Two instances on one Redis (as two workers): the retry lands on the other one, gets the
    first answer, and the log holds one closure."""
    import redis

    key = {"Idempotency-Key": f"closure-{uuid.uuid4().hex}"}
    with TestClient(_redis_app(monaco, redis_prefix)) as one, \
            TestClient(_redis_app(monaco, redis_prefix)) as two:
        first = one.post("/v1/closures", json=CLOSURE, headers=key)
        assert first.status_code == 201, first.text
        again = two.post("/v1/closures", json=CLOSURE, headers=key)
        assert again.status_code == 201 and again.content == first.content
        assert again.headers["idempotent-replayed"] == "true"
        other = dict(CLOSURE, properties={"radius_m": 80})
        assert two.post("/v1/closures", json=other, headers=key).status_code == 422
        # a duplicate while the first is in flight elsewhere: claimed on one, seen by two
        store = one.app.state.live.store  # type: ignore[attr-defined]
        real = store.append
        entered, release = threading.Event(), threading.Event()

        def slow(*args: Any, **kwargs: Any) -> Any:
            entered.set()
            assert release.wait(10)
            return real(*args, **kwargs)

        store.append = slow
        key2 = {"Idempotency-Key": "in-flight-on-one"}
        answers: list[Any] = []
        thread = threading.Thread(target=lambda: answers.append(
            one.post("/v1/closures", json=CLOSURE, headers=key2)))
        thread.start()
        try:
            assert entered.wait(10)
            assert two.post("/v1/closures", json=CLOSURE, headers=key2).status_code == 409
        finally:
            release.set()
            thread.join(10)
            store.append = real
        assert answers[0].status_code == 201
        assert two.post("/v1/closures", json=CLOSURE, headers=key2).json() == answers[0].json()
    r = redis.Redis.from_url(REDIS_URL)
    assert r.xlen(f"{redis_prefix}:events") == 2
    idem = list(r.scan_iter(f"{redis_prefix}:idempotency:*"))
    assert len(idem) == 2 and all(0 < r.ttl(k) <= 24 * 3600 for k in idem)


# ----------------------------------------------------------------------------- OpenAPI
def _security(openapi: dict[str, Any], path: str, method: str) -> list[dict[str, Any]]:
    return openapi["paths"][path][method].get("security", [])


def test_openapi_declares_the_api_key_schemes() -> None:
    openapi = create_app(Settings(api_keys=KEYS)).openapi()
    schemes = openapi["components"]["securitySchemes"]
    assert schemes["ApiKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-API-Key",
                                       "description": schemes["ApiKeyHeader"]["description"]}
    assert schemes["Bearer"]["type"] == "http" and schemes["Bearer"]["scheme"] == "bearer"
    assert schemes["ApiKeyQuery"]["in"] == "query" and schemes["ApiKeyQuery"]["name"] == "api_key"
    header_or_bearer = [{"ApiKeyHeader": []}, {"Bearer": []}]
    assert _security(openapi, "/v1/closures", "post") == header_or_bearer
    assert _security(openapi, "/v1/hospitals", "get") == header_or_bearer
    osrm = "/route/{version}/{profile}/{coordinates}"
    assert _security(openapi, osrm, "get") == [*header_or_bearer, {"ApiKeyQuery": []}]
    assert _security(openapi, "/health", "get") == []
    # open access (loopback): the key is optional, and the document says so
    open_doc = create_app(Settings()).openapi()
    assert _security(open_doc, "/v1/closures", "post") == [*header_or_bearer, {}]
    # writes document Idempotency-Key; reads do not
    params = openapi["paths"]["/v1/closures"]["post"]["parameters"]
    idem = next(p for p in params if p["name"] == "Idempotency-Key")
    assert idem["in"] == "header" and idem["required"] is False
    assert idem["schema"]["maxLength"] == 255
    assert not any(p["name"] == "Idempotency-Key"
                   for p in openapi["paths"]["/v1/traffic"]["get"].get("parameters", []))
