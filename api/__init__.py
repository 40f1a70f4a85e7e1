"""gyrophare's HTTP service: FastAPI over the engine, shared state in a store (embedded or Redis).

The API is thin: parse, call the engine (through :mod:`api.state`), shape the answer.
"""

from api.app import create_app

__all__ = ["create_app"]
