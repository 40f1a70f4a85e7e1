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


# ---------------------------------------------------------------- hospital saturation board
class UnknownHospital(GyrophareError, LookupError):
    """A hospital id the board does not hold; the message lists a few ids it does hold."""

    def __init__(self, hospital_id: object, known: list[str] | tuple[str, ...]) -> None:
        shown = ", ".join(repr(k) for k in list(known)[:5])
        more = f", ... ({len(known)} in all)" if len(known) > 5 else ""
        super().__init__(f"unknown hospital id {hospital_id!r} (known: {shown or 'none'}{more})")
        self.hospital_id = hospital_id
        self.known = tuple(known)


class UnknownBedType(GyrophareError, ValueError):
    """A bed type outside the EDXL-HAVE list."""


class BedTypeNotOffered(GyrophareError, ValueError):
    """A valid bed type that this hospital does not offer (baseline 0 or absent)."""


class InvalidCapacity(GyrophareError, ValueError):
    """A bed count that is negative, not an integer, or larger than its baseline."""


class InvalidStatus(GyrophareError, ValueError):
    """An emergency-department or offload status outside the EDXL-HAVE list."""


class UnknownCapability(GyrophareError, ValueError):
    """A capability ("stroke", "burn", ...) that no hospital and no known vocabulary has."""


class UnknownAmbulance(GyrophareError, LookupError):
    """An ambulance id that is not registered as en route."""


class DuplicateAmbulance(GyrophareError, ValueError):
    """An ambulance id registered en route twice."""


class InvalidTimestamp(GyrophareError, ValueError):
    """A time that is naive (no timezone) or older than the state it would update."""


class HospitalDataError(GyrophareError, ValueError):
    """A hospital file or state dict is malformed; ``field`` names the bad field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem
