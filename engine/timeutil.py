"""Time: the one clock and the one parser every module uses (aware UTC datetimes, ISO 8601 in,
a sane window so that year 1 or 9999 is an input error, not an overflow deep inside)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from engine.errors import InvalidTimestamp

#: Times outside this window are refused with :class:`InvalidTimestamp` (a crisis timeline,
#: a closure's end, a hospital report: decades either side of now are typos).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
#: What a caller should write, for messages.
EXAMPLE = "2026-11-27T08:00:00Z"
#: ISO 8601 as accepted: a date, ``T`` (or a space), a time; the offset is checked apart.
_ISO_RE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def utcnow() -> datetime:
    """The current time, timezone-aware UTC: the default ``at`` of every call."""
    return datetime.now(UTC)


def _problem(what: str | None, message: str) -> InvalidTimestamp:
    return InvalidTimestamp(f"{what}: {message}" if what else message)


def to_utc(at: object, *, what: str | None = "at") -> datetime:
    """``at`` as an aware UTC datetime (``None``: now); naive times are refused, not guessed,
    and so are times outside [:data:`EARLIEST`, :data:`LATEST`). ``what`` prefixes the
    message (``None``: no prefix)."""
    if at is None:
        return utcnow()
    if not isinstance(at, datetime):
        raise _problem(what, f"expected a timezone-aware datetime, got {describe(at)}")
    if at.tzinfo is None or at.utcoffset() is None:
        raise _problem(what, f"{at.isoformat()} has no time zone; give one (e.g. {EXAMPLE} "
                       "or 2026-11-27T09:00:00+01:00)")
    try:
        utc = at.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise _problem(what, f"{at.isoformat()} is outside the accepted range "
                       f"{EARLIEST.date()} .. {LATEST.date()}")
    return utc


def parse_time(value: object, *, what: str | None = "time") -> datetime:
    """An ISO 8601 string with a time zone (``Z`` accepted, e.g. ``2026-11-27T08:00:00Z``) or
    an aware datetime, as aware UTC; see :func:`to_utc` for what is refused. Numbers (Unix
    times) and dates without a time are refused: the format is ISO 8601, say so."""
    if isinstance(value, datetime):
        return to_utc(value, what=what)
    if not isinstance(value, str):
        raise _problem(what, f"expected an ISO 8601 time string with a time zone (e.g. "
                       f"{EXAMPLE}), got {describe(value)}")
    text = value.strip()
    if not _ISO_RE.match(text):
        raise _problem(what, f"not an ISO 8601 time: {_short(value)!r} (expected date and "
                       f"time with a time zone, e.g. {EXAMPLE})")
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise _problem(what, f"not an ISO 8601 time: {_short(value)!r} (write e.g. "
                       f"{EXAMPLE})") from None
    return to_utc(parsed, what=what)


def describe(value: object) -> str:
    """A caller's value in words for a message: JSON-like, never a Python or NumPy repr."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):  # str(): a NumPy string's repr is np.str_('a')
        return repr(_short(str(value)))
    if isinstance(value, int | float):
        return str(value.item() if hasattr(value, "item") else value)
    if isinstance(value, list | tuple | dict):
        try:
            text = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            text = ""
        if text and len(text) <= 60:
            return text
        return "an object" if isinstance(value, dict) else f"a list of {len(value)}"
    try:  # numpy scalars and the like: their plain value
        item = value.item()  # type: ignore[attr-defined]
    except Exception:
        return f"a value of type {type(value).__name__}"
    return describe(item) if isinstance(item, int | float | str | bool) else \
        f"a value of type {type(value).__name__}"


def _short(value: str, limit: int = 60) -> str:
    return value[:limit] + "..." if len(value) > limit else value


def iso(at: datetime | None) -> str | None:
    """ISO 8601 in UTC, or ``None``."""
    return None if at is None else at.astimezone(UTC).isoformat()
