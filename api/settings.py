"""Service settings (pydantic-settings): environment variables ``GYROPHARE_*`` or a ``.env``.

- ``GYROPHARE_OSM`` / ``GYROPHARE_PLACE`` / ``GYROPHARE_GRAPH``: the map (file, place to
  download, cached graph); none: the embedded sample city.
- ``GYROPHARE_HOST`` / ``GYROPHARE_PORT``: where to listen (127.0.0.1:8000).
- ``GYROPHARE_REDIS_URL``: shared state in Redis (several workers or instances); none: the
  embedded store, kept in ``GYROPHARE_STATE_FILE`` (default in the cache folder).
- ``GYROPHARE_HOSPITALS``: hospital file (``data/hospitals/*.json`` format); default: the
  map's OSM hospitals, or the demonstration facilities of the sample city.
- ``GYROPHARE_API_KEYS``: JSON ``{"key": "role"}`` with roles dispatcher, command_centre,
  planner, admin; none: every caller is admin, so the app answers loopback callers only
  (403 to any other, whatever address the server listens on; see :mod:`api.app`).
- ``GYROPHARE_CORS_ORIGINS``: browser origins allowed to call the API (CORS), comma-separated
  or a JSON list, e.g. ``https://dispatch.example.org``; ``*`` for any; none (default): no
  CORS headers, cross-origin pages cannot read answers.
- ``GYROPHARE_IDEMPOTENCY_TTL_S``: how long a write's ``Idempotency-Key`` answer is kept for
  replay (86 400 s = 24 h; :mod:`api.idempotency`).
- ``GYROPHARE_COMPILE_WORKERS``: processes compiling the kernels on a first start (0: one
  per core, at most 4; 1: none, the server compiles them itself).
- ``GYROPHARE_MAX_BODY_BYTES`` (1 MiB), ``GYROPHARE_MAX_TABLE_COORDINATES`` (200),
  ``GYROPHARE_SNAP_RADIUS_M`` (500).
"""

from __future__ import annotations

import json
from enum import IntEnum
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Role(IntEnum):
    """Roles are cumulative: each one may do what the ones below it may."""

    dispatcher = 1  #: routes, dispatch, reads
    command_centre = 2  #: + traffic, closures, field reports, hospital status
    planner = 3  #: + scenarios
    admin = 4


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GYROPHARE_", env_file=".env",
                                      extra="ignore")

    osm: str | None = None
    place: str | None = None
    graph: str | None = None
    hospitals: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    redis_url: str | None = None
    redis_prefix: str = "gyrophare"
    state_file: Path | None = None
    api_keys: dict[str, Role] = Field(default_factory=dict)
    max_body_bytes: int = 1 << 20
    max_table_coordinates: int = 200
    snap_radius_m: float = 500.0
    follow_timeout_s: float = 0.05
    #: processes compiling the kernels on a first start (empty numba cache); 0: one per core
    #: (at most 4), 1: compile in the server process (:mod:`engine.warmup`)
    compile_workers: int = Field(0, ge=0)
    #: threads running sync handlers; few, because they share one GIL (16 threads thrash it)
    threadpool_size: int = 4
    sender: str = "gyrophare@localhost"
    #: CORS: origins (``scheme://host[:port]``) whose pages may call the API; empty: CORS off
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: seconds a write's ``Idempotency-Key`` answer is kept for replay (24 h)
    idempotency_ttl_s: float = Field(24 * 3600, gt=0)
    #: minutes after its ETA that an ambulance en route, never reported arrived or cancelled,
    #: stops counting against its hospital (its registration expires)
    en_route_grace_min: float = Field(30.0, ge=0, le=24 * 60)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _roles(cls, value: object) -> object:
        if isinstance(value, dict):
            out = {}
            for key, role in value.items():
                if isinstance(role, str):
                    try:
                        role = Role[role]
                    except KeyError:
                        raise ValueError(f"unknown role {role!r} for an API key; roles: "
                                         f"{', '.join(r.name for r in Role)}") from None
                out[key] = role
            return out
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        """Comma-separated or JSON list; each an origin exactly as browsers send it in the
        ``Origin`` header (no path, no trailing slash: ``https://x.org/`` would never match)."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                value = json.loads(text)
            else:
                value = [part.strip() for part in text.split(",") if part.strip()]
        if isinstance(value, list):
            for origin in value:
                if origin == "*":
                    continue
                parts = urlsplit(str(origin))
                if parts.scheme not in ("http", "https") or not parts.netloc or \
                        parts.path or parts.query or parts.fragment:
                    raise ValueError(f"CORS origin {origin!r} is not an origin: write "
                                     "scheme://host[:port], no path and no trailing slash, "
                                     "e.g. https://dispatch.example.org (or * for any)")
        return value

    @property
    def open_access(self) -> bool:
        """No API keys: everybody is admin, so the app answers loopback callers only."""
        return not self.api_keys
