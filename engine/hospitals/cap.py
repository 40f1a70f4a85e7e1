"""OASIS CAP 1.2 export: a saturation signal as an alert document, and CAP's time and token
rules.

Levels map onto CAP like this. Urgency: closed and saturated need a decision for the next
patient now (``Immediate``); tension is ``Expected`` (responsive action within the next hour);
back to normal is ``Past`` (responsive action no longer required). Severity: a closed ED or a
saturated unit threatens patients who would be sent there (``Severe``); tension is
``Moderate``; normal ``Minor``. Certainty: a fresh report is ``Observed``; a stale one is only
``Likely`` still true. CAP writes positions ``lat,lon`` (unlike GeoJSON).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import TYPE_CHECKING

from engine.hospitals.vocabulary import SaturationLevel
from engine.timeutil import to_utc

if TYPE_CHECKING:
    from engine.hospitals.board import SaturationSignal

__all__ = ["CAP_NAMESPACE", "alert_xml", "cap_datetime", "headline", "is_cap_token"]

CAP_NAMESPACE = "urn:oasis:names:tc:emergency:cap:1.2"

_URGENCY = {SaturationLevel.CLOSED: "Immediate", SaturationLevel.SATURATED: "Immediate",
            SaturationLevel.TENSION: "Expected", SaturationLevel.NORMAL: "Past"}
_SEVERITY = {SaturationLevel.CLOSED: "Severe", SaturationLevel.SATURATED: "Severe",
             SaturationLevel.TENSION: "Moderate", SaturationLevel.NORMAL: "Minor"}
_INSTRUCTION = {
    SaturationLevel.CLOSED: "Do not route ambulances here: re-route to another facility.",
    SaturationLevel.SATURATED: "Prefer another suitable hospital for this bed type.",
    SaturationLevel.TENSION: "Check alternatives before dispatching here.",
}
_STATUSES = ("Actual", "Exercise", "System", "Test", "Draft")
_SCOPES = ("Public", "Restricted", "Private")
_FORBIDDEN = (" ", ",", "<", "&", "\t", "\n")
_SOURCE = "gyrophare hospital saturation board"


def is_cap_token(value: str) -> bool:
    """Whether ``value`` may be a CAP ``identifier`` or ``sender`` (or a part of one):
    non-empty, without spaces, commas, ``<`` or ``&``."""
    return bool(value) and not any(c in value for c in _FORBIDDEN)


def cap_datetime(at: datetime) -> str:
    """A time in CAP 1.2 form: ``2026-11-27T21:00:00-00:00``.

    CAP 1.2 (section 3.3.2, ``sent``) wants ``YYYY-MM-DDThh:mm:ssXzh:zm`` with no fractional
    seconds, forbids the ``Z`` designator and writes UTC as ``-00:00`` (not ``+00:00``).
    """
    return to_utc(at).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%S") + "-00:00"


def headline(signal: SaturationSignal) -> str:
    """CAP ``headline``: hospital, bed type and level change, at most 160 characters."""
    what = signal.bed_type.value if signal.bed_type is not None else "overall"
    change = (f"{signal.previous_level} -> {signal.new_level}"
              if signal.new_level != signal.previous_level else f"still {signal.new_level}")
    stale = " (status stale)" if signal.stale else ""
    return f"{signal.hospital_name}: {what} {change}{stale}"[:160]


def _check_options(signal: SaturationSignal, *, sender: str, status: str, scope: str,
                   restriction: str, addresses: str | None, radius_km: float) -> None:
    for name, value in (("sender", sender), ("identifier", signal.id)):
        if not is_cap_token(value):
            raise ValueError(f"CAP {name} {value!r} must be non-empty without spaces, "
                             "commas, '<' or '&'")
    if status not in _STATUSES:
        raise ValueError(f"CAP status {status!r} is not one of {', '.join(_STATUSES)}")
    if signal.demo and status == "Actual":
        raise ValueError(f"{signal.hospital_name!r} is a demonstration facility: export with "
                         "status='Exercise' (or 'Test'), never 'Actual'")
    if scope not in _SCOPES:
        raise ValueError(f"CAP scope {scope!r} is not one of {', '.join(_SCOPES)}")
    if scope == "Restricted" and not restriction:
        raise ValueError("CAP scope 'Restricted' needs a restriction text")
    if scope == "Private" and not addresses:
        raise ValueError("CAP scope 'Private' needs addresses")
    if (isinstance(radius_km, bool) or not isinstance(radius_km, int | float)
            or not math.isfinite(radius_km) or radius_km <= 0):
        raise ValueError(f"radius_km must be a positive number, got {radius_km!r}")


def alert_xml(signal: SaturationSignal, *, sender: str = "gyrophare@localhost",
              status: str = "Actual", scope: str = "Restricted",
              restriction: str = "Emergency medical services and hospital command only",
              addresses: str | None = None, radius_km: float = 1.0) -> str:
    """``signal`` as an OASIS CAP 1.2 alert (an XML document, as text).

    Parameters
    ----------
    sender
        CAP ``sender`` (no spaces, commas, ``<`` or ``&``); also used in ``references``.
    status
        ``Actual`` or ``Exercise`` (also ``System``, ``Test``, ``Draft``). A signal about a
        demonstration facility refuses ``Actual``: no real alert about a fictitious hospital.
    scope, restriction, addresses
        CAP requires ``restriction`` when scope is ``Restricted`` and ``addresses`` when it is
        ``Private``.
    radius_km
        Radius of the alert ``circle`` around the hospital, written ``"lat,lon radius"``
        (CAP's order: latitude first, unlike GeoJSON).

    Notes
    -----
    ``msgType`` is ``Alert`` for a rise, otherwise ``Update`` with ``references`` to the
    previous signal for the same hospital and bed type (``Alert`` if there is none).
    ``urgency``/``severity`` follow the new level (closed, saturated: Immediate / Severe;
    tension: Expected / Moderate; normal: Past / Minor); ``certainty`` is ``Observed`` for a
    fresh status and ``Likely`` for a stale one.
    """
    _check_options(signal, sender=sender, status=status, scope=scope,
                   restriction=restriction, addresses=addresses, radius_km=radius_km)

    def sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
        el = ET.SubElement(parent, f"{{{CAP_NAMESPACE}}}{tag}")
        if text is not None:
            el.text = text
        return el

    # element order follows the CAP 1.2 schema (xs:sequence)
    alert = ET.Element(f"{{{CAP_NAMESPACE}}}alert")
    sub(alert, "identifier", signal.id)
    sub(alert, "sender", sender)
    sub(alert, "sent", cap_datetime(signal.at))
    sub(alert, "status", status)
    sub(alert, "msgType", signal.msg_type)
    sub(alert, "source", _SOURCE)
    sub(alert, "scope", scope)
    if scope == "Restricted":
        sub(alert, "restriction", restriction)
    if scope == "Private":
        sub(alert, "addresses", addresses)
    if status != "Actual" or signal.demo:
        note = "Exercise or test message."
        if signal.demo:
            note = "Demonstration facility, not a real hospital."
        sub(alert, "note", note)
    if signal.msg_type == "Update" and signal.replaces is not None:
        sub(alert, "references",
            f"{sender},{signal.replaces[0]},{cap_datetime(signal.replaces[1])}")
    info = sub(alert, "info")
    sub(info, "category", "Health")
    sub(info, "event", "Hospital saturation")
    sub(info, "urgency", _URGENCY[signal.new_level])
    sub(info, "severity", _SEVERITY[signal.new_level])
    sub(info, "certainty", "Likely" if signal.stale else "Observed")
    sub(info, "senderName", _SOURCE)
    sub(info, "headline", headline(signal))
    bed = signal.bed_type.value if signal.bed_type is not None else "overall"
    occupancy = "n/a" if signal.occupancy is None else f"{signal.occupancy:.0%}"
    sub(info, "description",
        f"{signal.hospital_name} ({signal.hospital_id}), {bed}: level {signal.previous_level}"
        f" -> {signal.new_level}; occupancy {occupancy} including {signal.en_route} "
        f"ambulance(s) en route; {'status stale' if signal.stale else 'status current'}. "
        f"Reason: {signal.reason}")
    if signal.new_level in _INSTRUCTION:
        sub(info, "instruction", _INSTRUCTION[signal.new_level])
    for name, value in (
        ("level", str(signal.new_level)),
        ("previousLevel", str(signal.previous_level)),
        ("occupancy", "" if signal.occupancy is None else f"{signal.occupancy:.4f}"),
        ("bedType", bed),
        ("hospitalId", signal.hospital_id),
        ("enRoute", str(signal.en_route)),
        ("stale", "true" if signal.stale else "false"),
    ):
        param = sub(info, "parameter")
        sub(param, "valueName", name)
        sub(param, "value", value)
    area = sub(info, "area")
    sub(area, "areaDesc", signal.hospital_name)
    sub(area, "circle", f"{signal.lat:.6f},{signal.lon:.6f} {float(radius_km):g}")
    body = ET.tostring(alert, encoding="unicode", default_namespace=CAP_NAMESPACE)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body
