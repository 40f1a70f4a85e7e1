"""gyrophare's HTTP service: FastAPI over the engine, shared state in a store (embedded or Redis).

The API is thin: parse, call the engine (through :mod:`api.state`), shape the answer.
``create_app`` is imported on first use, so ``gyrophare route`` (whose console script lives
in :mod:`api.cli`) does not load FastAPI and pydantic models it never uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from api.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from api.app import create_app

        return create_app
    raise AttributeError(f"module 'api' has no attribute {name!r}")
