"""OSRM's error answer: an exception carrying one of OSRM's error codes and a message, sent as
HTTP 400 ``{"code": ..., "message": ...}``."""

from __future__ import annotations

from typing import Literal

#: OSRM's error codes (``docs/http.md``) that gyrophare answers: ``InvalidUrl`` (characters
#: outside the URL grammar), ``InvalidService``, ``InvalidVersion``, ``InvalidQuery``
#: (coordinates or options that do not parse, unknown options), ``InvalidOptions`` (parsed but
#: inconsistent: per-coordinate lists of the wrong length, too few coordinates, out-of-range
#: bearings / radiuses / indices; table and nearest also answer it for coordinates out of
#: range), ``InvalidValue`` (route: coordinate out of range; unsupported ``exclude`` classes;
#: unknown profile), ``NoSegment`` (a point farther than its radius, or the server's snap
#: radius, from every usable road), ``NoRoute``, ``TooBig``.
Code = Literal["InvalidUrl", "InvalidService", "InvalidVersion", "InvalidOptions",
               "InvalidQuery", "InvalidValue", "NoSegment", "TooBig", "NoRoute"]


class OsrmError(Exception):
    """An OSRM error answer: HTTP 400 with ``{"code": ..., "message": ...}``."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code: Code = code
        self.message = message

    def body(self) -> dict[str, str]:
        """The JSON body OSRM sends."""
        return {"code": self.code, "message": self.message}
