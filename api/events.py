"""The writes of the shared state log, one validated model per event type (a typed union, read
back and checked from the store's JSON), each knowing how it changes the overlay and board."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from api.schemas import AmbulanceId
from engine.hospitals import HospitalBoard
from engine.hospitals.model import MAX_ETA_S
from engine.traffic import TrafficOverlay, change_from_dict


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def apply(self, overlay: TrafficOverlay, board: HospitalBoard, at: datetime) -> Any:
        """Change the overlay / board as every worker does for this write."""
        raise NotImplementedError

    def payload(self) -> dict[str, Any]:
        """The JSON stored in the log (without the ``type``, which the log keeps apart)."""
        return self.model_dump(exclude={"type"}, mode="json")


class TrafficApply(_Event):
    """A batch of traffic changes (closures, speeds, reports...), all or nothing."""

    type: Literal["traffic.apply"] = "traffic.apply"
    changes: list[dict[str, Any]] = Field(min_length=1)

    def changes_list(self) -> list[Any]:
        """The changes as engine objects (:func:`engine.traffic.change_from_dict`)."""
        return [change_from_dict(c) for c in self.changes]

    def apply(self, overlay: TrafficOverlay, board: HospitalBoard, at: datetime) -> Any:
        return overlay.apply(self.changes_list(), at=at)


class TrafficRemove(_Event):
    """Traffic entries lifted."""

    type: Literal["traffic.remove"] = "traffic.remove"
    ids: list[str] = Field(min_length=1)

    def apply(self, overlay: TrafficOverlay, board: HospitalBoard, at: datetime) -> Any:
        return overlay.remove(self.ids, at=at)


class HospitalStatusReported(_Event):
    """An EDXL-HAVE-shaped status update of one hospital."""

    type: Literal["hospital.status"] = "hospital.status"
    hospital_id: str
    beds: dict[str, Any] | None = None
    ed_status: str | None = None
    offload_status: str | None = None

    def apply(self, overlay: TrafficOverlay, board: HospitalBoard, at: datetime) -> Any:
        return board.update_status(self.hospital_id, beds=self.beds, ed_status=self.ed_status,
                                   offload_status=self.offload_status, at=at)


class AmbulanceEnRoute(_Event):
    """An ambulance counted as on its way to a hospital (``DispatchDecision.en_route``)."""

    type: Literal["ambulance.en_route"] = "ambulance.en_route"
    ambulance_id: AmbulanceId
    hospital_id: str = Field(min_length=1, max_length=200)
    bed_type: str
    eta_s: float = Field(ge=0, le=MAX_ETA_S, allow_inf_nan=False)

    def apply(self, overlay: TrafficOverlay, board: HospitalBoard, at: datetime) -> Any:
        return board.register_en_route(self.ambulance_id, self.hospital_id, self.bed_type,
                                       eta_s=self.eta_s, at=at)


class AmbulanceArrived(_Event):
    """The ambulance reached its hospital (the patient takes a bed unless ``admit`` is
    false)."""

    type: Literal["ambulance.arrived"] = "ambulance.arrived"
    ambulance_id: AmbulanceId
    admit: bool = True

    def apply(self, overlay: TrafficOverlay, board: HospitalBoard, at: datetime) -> Any:
        return board.arrived(self.ambulance_id, at=at, admit=self.admit)


class AmbulanceCancel(_Event):
    """The ambulance is no longer on its way (``note``: who or why, e.g. an operator
    clearing a registration nobody closed)."""

    type: Literal["ambulance.cancel"] = "ambulance.cancel"
    ambulance_id: AmbulanceId
    note: str = Field("", max_length=200)

    def apply(self, overlay: TrafficOverlay, board: HospitalBoard, at: datetime) -> Any:
        return board.cancel(self.ambulance_id, at=at, note=self.note)


LogEvent = Annotated[TrafficApply | TrafficRemove | HospitalStatusReported | AmbulanceEnRoute
                     | AmbulanceArrived | AmbulanceCancel, Field(discriminator="type")]
EVENT_TYPES: tuple[str, ...] = ("traffic.apply", "traffic.remove", "hospital.status",
                                "ambulance.en_route", "ambulance.arrived", "ambulance.cancel")
_ADAPTER: TypeAdapter[LogEvent] = TypeAdapter(LogEvent)


class InvalidEvent(ValueError):
    """A log entry (or a write) that is not one of the known events, or malformed."""


def parse_event(event_type: str, payload: dict[str, Any]) -> LogEvent:
    """The typed event for a log entry's type and payload; :class:`InvalidEvent` says what
    is wrong."""
    if event_type not in EVENT_TYPES:
        raise InvalidEvent(f"unknown event type {event_type!r} (known: "
                           f"{', '.join(EVENT_TYPES)})")
    try:
        return _ADAPTER.validate_python({**payload, "type": event_type})
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}"
                          for e in exc.errors())
        raise InvalidEvent(f"malformed {event_type} event: {where}") from None
