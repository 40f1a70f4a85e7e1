"""Exception classes: small, specific, each saying what was wrong with the input."""

from __future__ import annotations


class GyrophareError(Exception):
    """Base class of every error gyrophare raises on purpose."""


class SourceError(GyrophareError):
    """A map source could not be read (missing file, bad format, no network for a download)."""


class InvalidCoordinate(GyrophareError, ValueError):
    """A coordinate is NaN, out of range, or not a pair of numbers."""


class PointOffNetwork(GyrophareError):
    """A coordinate lies farther from every usable road than the snapping radius."""

    def __init__(self, message: str, *, distance_m: float, radius_m: float) -> None:
        super().__init__(message)
        self.distance_m = distance_m
        self.radius_m = radius_m


class CacheError(GyrophareError):
    """A cached graph file is unreadable or was written by another format version."""
