"""The words the board speaks: EDXL-HAVE bed types and statuses, saturation levels, capabilities.

EDXL-HAVE code lists, checked against:

- OASIS EDXL-HAVE 1.0, OASIS Standard incorporating Approved Errata, 22 Dec 2009
  (http://docs.oasis-open.org/emergency/edxl-have/v1.0/errata/edxl-have-v1.0-os-errata-os.html),
  as published in NIEM's code list "have-codes" (release.niem.gov/niem/codes/edxl_have/4.0/
  have-codes.xsd): BedCategoryCodeSimpleType has 9 codes (AdultICU, Burn, MedicalSurgical,
  NegativeFlowIsolation, OperatingRooms, OtherIsolation, PediatricICU, Pediatrics,
  Psychiatric); EMSTrafficStatusCodeSimpleType has Normal ("accepting all EMS traffic"),
  Advisory ("specific resource limitations which may affect transport of some EMS traffic"),
  Closed ("requesting re-route of EMS traffic to other facilities"), NotApplicable ("does not
  have an emergency department"); EMSOffloadStatusCodeSimpleType has Normal and Delayed
  ("the time required to offload the patient is longer than typical").
- EDXL-HAVE 2.0 (CS02, 18 March 2019) keeps the EMS traffic and offload values; its bed list
  (as implemented by EDXLSharp's EDXLHAVE_2_0Lib) adds NeonatalICU, EmergencyDepartment,
  NurseryBeds, RehabLongTermCare and splits Psychiatric into Adult/PediatricPsychiatric.
  gyrophare uses the 1.0 list of 9, which every 2.0 list can be mapped onto.
"""

from __future__ import annotations

import functools
from enum import IntEnum, StrEnum
from typing import TypeVar

from engine.errors import HospitalDataError, InvalidStatus, UnknownBedType
from engine.timeutil import describe

__all__ = [
    "CAPABILITIES",
    "BedType",
    "EDStatus",
    "OffloadStatus",
    "SaturationLevel",
    "code",
    "not_a_code",
]

_E = TypeVar("_E", bound=StrEnum)


def code(cls: type[_E], value: object) -> _E | None:
    """The member of the code list ``cls`` that ``value`` names (its code, in any case), or
    ``None``."""
    if isinstance(value, cls):
        return value
    if isinstance(value, str):
        return _codes(cls).get(value.strip().lower())
    return None


@functools.cache
def _codes(cls: type[_E]) -> dict[str, _E]:
    return {member.value.lower(): member for member in cls}


def not_a_code(cls: type[StrEnum], value: object) -> str:
    """What is wrong with ``value`` as a code of ``cls``, in words (lists the valid codes)."""
    return f"{describe(value)} is not one of {', '.join(m.value for m in cls)}"


def _parse(cls: type[_E], value: object, what: str, error: type[Exception]) -> _E:
    member = code(cls, value)
    if member is None:
        raise error(f"{what}: {not_a_code(cls, value)}")
    return member


class BedType(StrEnum):
    """EDXL-HAVE 1.0 bed categories (values are the standard's codes)."""

    ADULT_ICU = "AdultICU"
    PEDIATRIC_ICU = "PediatricICU"
    MEDICAL_SURGICAL = "MedicalSurgical"
    BURN = "Burn"
    PEDIATRICS = "Pediatrics"
    PSYCHIATRIC = "Psychiatric"
    NEGATIVE_FLOW_ISOLATION = "NegativeFlowIsolation"
    OTHER_ISOLATION = "OtherIsolation"
    OPERATING_ROOMS = "OperatingRooms"

    @classmethod
    def parse(cls, value: object, *, what: str = "bed type") -> BedType:
        """A member from its code (case-insensitive); :class:`UnknownBedType` otherwise."""
        return _parse(cls, value, what, UnknownBedType)


class EDStatus(StrEnum):
    """EDXL-HAVE ``EMSTrafficStatus``: may ambulances bring patients to the ED?"""

    NORMAL = "Normal"
    ADVISORY = "Advisory"
    CLOSED = "Closed"
    NOT_APPLICABLE = "NotApplicable"

    @classmethod
    def parse(cls, value: object, *, what: str = "ed_status") -> EDStatus:
        """A member from its code (case-insensitive); :class:`InvalidStatus` otherwise."""
        return _parse(cls, value, what, InvalidStatus)


class OffloadStatus(StrEnum):
    """EDXL-HAVE ``EMSOffloadStatus``: do crews wait longer than usual to hand patients over?"""

    NORMAL = "Normal"
    DELAYED = "Delayed"

    @classmethod
    def parse(cls, value: object, *, what: str = "offload_status") -> OffloadStatus:
        """A member from its code (case-insensitive); :class:`InvalidStatus` otherwise."""
        return _parse(cls, value, what, InvalidStatus)


class SaturationLevel(IntEnum):
    """Ordered levels: ``normal < tension < saturated < closed``. ``str()`` gives the name."""

    NORMAL = 0
    TENSION = 1
    SATURATED = 2
    CLOSED = 3

    def __str__(self) -> str:
        return self.name.lower()

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: object, *, what: str = "level") -> SaturationLevel:
        """A level from itself or its name (any case); :class:`HospitalDataError` otherwise."""
        if isinstance(value, SaturationLevel):
            return value
        if isinstance(value, str) and value.strip().upper() in cls.__members__:
            return cls[value.strip().upper()]
        raise HospitalDataError(what, f"{value!r} is not one of normal, tension, saturated, "
                                "closed")


#: Capabilities gyrophare knows; hospitals may carry others (they then become valid filters).
CAPABILITIES: frozenset[str] = frozenset({
    "emergency", "trauma", "stroke", "cardiology", "burn", "pediatrics", "maternity",
    "psychiatry", "oncology", "surgery", "geriatrics", "rehabilitation",
})
