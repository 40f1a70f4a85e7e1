"""Time: the one clock and the one parser every module uses (aware UTC datetimes, ISO 8601 in,
a sane window so that year 1 or 9999 is an input error, not an overflow deep inside)."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.errors import InvalidTimestamp

#: Times outside this window are refused with :class:`InvalidTimestamp` (a crisis timeline,
#: a closure's end, a hospital report: decades either side of now are typos).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC: the default ``at`` of every call."""
    return datetime.now(UTC)


def to_utc(at: object, *, what: str = "at") -> datetime:
    """``at`` as an aware UTC datetime (``None``: now); naive times are refused, not guessed,
    and so are times outside [:data:`EARLIEST`, :data:`LATEST`)."""
    if at is None:
        return utcnow()
    if not isinstance(at, datetime):
        raise InvalidTimestamp(f"{what}: expected a timezone-aware datetime, got {at!r}")
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidTimestamp(f"{what}: {at.isoformat()} has no time zone; pass an aware "
                               "datetime (e.g. datetime.now(UTC) or 2026-11-27T08:00:00Z)")
    try:
        utc = at.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise InvalidTimestamp(f"{what}: {at.isoformat()} is outside the accepted range "
                               f"{EARLIEST.date()} .. {LATEST.date()}")
    return utc


def parse_time(value: object, *, what: str = "time") -> datetime:
    """An ISO 8601 string (``Z`` accepted) or an aware datetime, as aware UTC; see
    :func:`to_utc` for what is refused."""
    if isinstance(value, datetime):
        return to_utc(value, what=what)
    if not isinstance(value, str):
        raise InvalidTimestamp(f"{what}: expected an ISO 8601 time string, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidTimestamp(f"{what}: not an ISO 8601 time: {value!r} (write e.g. "
                               "2026-11-27T08:00:00Z)") from None
    return to_utc(parsed, what=what)


def iso(at: datetime | None) -> str | None:
    """ISO 8601 in UTC, or ``None``."""
    return None if at is None else at.astimezone(UTC).isoformat()
