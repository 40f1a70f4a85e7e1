"""State stores: the shared, ordered log of every write (traffic, hospital status, ambulances).

Every worker applies the same events in the same order to its in-memory overlay and board, so
they all serve the same ``weights_version``. :class:`EmbeddedStore` keeps the log in process
and in a local file (one worker, survives restarts); :class:`RedisStore` keeps it in a Redis
stream that every worker follows. Both keep the latest snapshot of the applied state and drop
the events before it, and both name the log's generation so that a reset is noticed (see
:mod:`api.store.base`).
"""

from api.store.base import (
    Cursor,
    Event,
    LogHead,
    LogReset,
    LogTrimmed,
    Record,
    Snapshot,
    Store,
    StoreCorrupt,
    StoreUnavailable,
)
from api.store.embedded import EmbeddedStore

__all__ = ["Cursor", "EmbeddedStore", "Event", "LogHead", "LogReset", "LogTrimmed", "Record",
           "Snapshot", "Store", "StoreCorrupt", "StoreUnavailable", "make_store"]


def make_store(settings) -> Store:
    """The store the settings ask for (Redis when ``redis_url`` is set)."""
    if settings.redis_url:
        from api.store.redis import RedisStore

        return RedisStore(settings.redis_url, prefix=settings.redis_prefix)
    return EmbeddedStore(settings.state_file)
