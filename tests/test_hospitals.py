"""Hospital saturation board: occupancy, levels, hysteresis, staleness, signals, CAP export,
validation, state round trip, data files, OSM hospitals and entrance snapping."""

from __future__ import annotations

import json
import logging
import re
import threading
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import (
    BedTypeNotOffered,
    DuplicateAmbulance,
    HospitalDataError,
    InvalidCapacity,
    InvalidStatus,
    InvalidTimestamp,
    UnknownAmbulance,
    UnknownBedType,
    UnknownCapability,
    UnknownHospital,
)
from engine.hospitals import (
    CAP_NAMESPACE,
    BedCapacity,
    BedType,
    EDStatus,
    Hospital,
    HospitalBoard,
    OffloadStatus,
    SaturationLevel,
    SaturationPolicy,
    SaturationSignal,
    cap_datetime,
    dump_hospitals,
    hospitals_from_graph,
    load_hospitals,
    project_data_path,
    snap_entrances,
)

T0 = datetime(2026, 11, 27, 21, 0, tzinfo=UTC)
N, T, S, C = (SaturationLevel.NORMAL, SaturationLevel.TENSION, SaturationLevel.SATURATED,
              SaturationLevel.CLOSED)
ICU, WARD = BedType.ADULT_ICU, BedType.MEDICAL_SURGICAL
CAP = f"{{{CAP_NAMESPACE}}}"

DIJON_BBOX = (4.8964, 47.2195, 5.2061, 47.3977)  # lon min, lat min, lon max, lat max
HELSINKI_BBOX = (24.9352, 60.1642, 24.9534, 60.1791)


def minutes(m: float) -> datetime:
    return T0 + timedelta(minutes=m)


def make_board(**kwargs) -> HospitalBoard:
    hospitals = [
        Hospital("h-a", "Alpha", 47.3220, 5.0653, capabilities=frozenset({"emergency",
                                                                          "stroke"}),
                 beds={ICU: BedCapacity(20, 10), WARD: BedCapacity(100, 50)},
                 updated_at=T0),
        Hospital("h-b", "Beta", 47.3621, 5.0495, capabilities=frozenset({"emergency", "burn"}),
                 beds={ICU: BedCapacity(10, 5), BedType.BURN: BedCapacity(4, 2)},
                 updated_at=T0),
        Hospital("h-c", "Gamma", 47.3211, 5.0112, capabilities=frozenset({"psychiatry"}),
                 beds={BedType.PSYCHIATRIC: BedCapacity(30, 10)},
                 ed_status=EDStatus.NOT_APPLICABLE, updated_at=T0),
    ]
    kwargs.setdefault("board_id", "test")
    return HospitalBoard(hospitals, at=T0, **kwargs)


class Recorder:
    def __init__(self) -> None:
        self.got: list[SaturationSignal] = []

    def __call__(self, signal: SaturationSignal) -> None:
        self.got.append(signal)

    def changes(self) -> list[tuple[str | None, SaturationLevel, SaturationLevel]]:
        return [(None if s.bed_type is None else s.bed_type.value, s.previous_level,
                 s.new_level) for s in self.got]


# ----------------------------------------------------------------------------- occupancy
def test_occupancy_counts_beds_taken_and_ambulances_en_route():
    board = make_board()
    assert board.level("h-a", ICU, at=T0).occupancy == pytest.approx(10 / 20)
    board.register_en_route("amb-1", "h-a", ICU, eta_s=420, at=minutes(1))
    board.register_en_route("amb-2", "h-a", "AdultICU", eta_s=300, at=minutes(1))
    row = board.level("h-a", ICU, at=minutes(1))
    assert (row.baseline, row.available, row.en_route) == (20, 10, 2)
    assert row.occupancy == pytest.approx((20 - 10 + 2) / 20)
    # the ward is untouched by ICU ambulances
    assert board.level("h-a", WARD, at=minutes(1)).occupancy == pytest.approx(0.5)

    board.arrived("amb-1", at=minutes(8))  # admitted: one bed taken, one fewer en route
    row = board.level("h-a", ICU, at=minutes(8))
    assert (row.available, row.en_route) == (9, 1)
    assert row.occupancy == pytest.approx((20 - 9 + 1) / 20)

    board.arrived("amb-2", at=minutes(9), admit=False)
    row = board.level("h-a", ICU, at=minutes(9))
    assert (row.available, row.en_route) == (9, 0)
    assert row.occupancy == pytest.approx(11 / 20)

    overall = board.level("h-a", at=minutes(9))
    assert overall.bed_type is None
    assert overall.occupancy == pytest.approx(max(11 / 20, 50 / 100))
    assert (overall.baseline, overall.available) == (120, 59)


def test_cancel_frees_the_en_route_count_and_en_route_listing():
    board = make_board()
    board.register_en_route("amb-1", "h-b", ICU, eta_s=60, at=minutes(1))
    board.register_en_route("amb-2", "h-a", WARD, eta_s=60, at=minutes(2))
    assert [e.ambulance_id for e in board.en_route()] == ["amb-1", "amb-2"]
    assert [e.ambulance_id for e in board.en_route("h-b")] == ["amb-1"]
    assert board.en_route("h-b")[0].eta_at == minutes(2)
    board.cancel("amb-1", at=minutes(3))
    assert board.en_route("h-b") == []
    assert board.level("h-b", ICU, at=minutes(3)).occupancy == pytest.approx(0.5)


def test_admitting_into_a_full_unit_keeps_available_at_zero(caplog):
    board = make_board()
    board.update_status("h-b", beds={ICU: 0}, at=minutes(1))
    board.register_en_route("amb-1", "h-b", ICU, eta_s=60, at=minutes(2))
    assert board.level("h-b", ICU, at=minutes(2)).occupancy == pytest.approx(1.1)
    with caplog.at_level(logging.WARNING, logger="engine.hospitals"):
        signals = board.arrived("amb-1", at=minutes(3))
    assert signals == []  # 1.1 -> 1.0: still saturated
    assert board.hospital("h-b").beds[ICU].available == 0
    assert board.level("h-b", ICU, at=minutes(3)).occupancy == pytest.approx(1.0)
    assert "no bed available" in caplog.text


# ----------------------------------------------------------------------------- thresholds
@pytest.mark.parametrize(("available", "level"), [
    (20, N), (4, N), (3, T), (2, T), (1, S), (0, S),  # of 20: 0.80, 0.85, 0.90, 0.95, 1.0
])
def test_thresholds_from_bed_counts(available, level):
    board = HospitalBoard([Hospital("h", "H", 47.3, 5.0, beds={ICU: BedCapacity(20, available)},
                                    updated_at=T0)], at=T0)
    assert board.level("h", ICU, at=T0).level == level


@pytest.mark.parametrize(("occupancy", "level"), [
    (0.0, N), (0.8499, N), (0.85, T), (17 / 20, T), (0.9499, T), (0.95, S), (19 / 20, S),
    (1.0, S), (1.5, S),
])
def test_policy_thresholds_without_history(occupancy, level):
    assert SaturationPolicy().classify(occupancy) == level


def test_policy_validation():
    with pytest.raises(ValueError, match="tension"):
        SaturationPolicy(tension=0.95, saturated=0.9)
    with pytest.raises(ValueError, match="margin"):
        SaturationPolicy(margin=0.9)
    with pytest.raises(ValueError, match="stale_after"):
        SaturationPolicy(stale_after=timedelta(0))


# ----------------------------------------------------------------------------- hysteresis
FLAPPING = [3, 4, 3, 4, 3, 4]  # available of 20 ICU beds: occupancy 0.85, 0.80, 0.85, ...


def run_sequence(board: HospitalBoard, availables: list[int]) -> list[SaturationLevel]:
    levels = []
    for i, available in enumerate(availables):
        board.update_status("h-a", beds={ICU: available}, at=minutes(i + 1))
        levels.append(board.level("h-a", ICU, at=minutes(i + 1)).level)
    return levels


def test_without_margin_the_sequence_flaps():
    board = make_board(policy=SaturationPolicy(margin=0.0))
    assert run_sequence(board, FLAPPING) == [T, N, T, N, T, N]


def test_hysteresis_stops_flapping_and_still_goes_down_past_the_margin():
    board = make_board()
    rec = Recorder()
    board.subscribe(rec)
    assert run_sequence(board, FLAPPING) == [T] * 6
    icu = [s for s in rec.got if s.bed_type == ICU]
    assert [(s.previous_level, s.new_level) for s in icu] == [(N, T)]  # one signal, not six
    # 0.80 is not *below* 0.85 - 0.05; 0.75 is: down it goes
    board.update_status("h-a", beds={ICU: 5}, at=minutes(10))
    assert board.level("h-a", ICU, at=minutes(10)).level == N
    assert [(s.previous_level, s.new_level) for s in rec.got if s.bed_type == ICU][-1] == (T, N)


def test_hysteresis_on_the_saturated_threshold():
    board = make_board()
    # 0.95 saturated; 0.90 stays saturated (not below 0.90); 0.85 drops to tension, not normal
    assert run_sequence(board, [1, 2, 1, 2, 3]) == [S, S, S, S, T]


def test_going_up_uses_the_plain_thresholds():
    board = make_board()
    assert run_sequence(board, [5, 3, 1]) == [N, T, S]


# ----------------------------------------------------------------------------- ED / offload
def test_ed_closed_closes_the_hospital_overall_but_not_its_bed_types():
    board = make_board()
    rec = Recorder()
    board.subscribe(rec)
    board.update_status("h-a", ed_status="Closed", at=minutes(1))
    assert board.level("h-a", at=minutes(1)).level == C
    assert board.level("h-a", ICU, at=minutes(1)).level == N  # capacity unchanged
    assert rec.changes() == [(None, N, C)]
    assert "h-a" not in {c.hospital.id for c in board.candidates(ICU, at=minutes(1))}

    board.update_status("h-a", ed_status=EDStatus.ADVISORY, at=minutes(2))
    assert board.level("h-a", at=minutes(2)).level == T
    board.update_status("h-a", ed_status="Normal", at=minutes(3))
    assert board.level("h-a", at=minutes(3)).level == N
    assert rec.changes() == [(None, N, C), (None, C, T), (None, T, N)]
    assert board.hospital("h-a").ed_status is EDStatus.NORMAL


def test_advisory_does_not_lower_a_saturated_hospital_and_offload_delay_means_tension():
    board = make_board()
    board.update_status("h-b", beds={ICU: 0}, ed_status="Advisory", at=minutes(1))
    assert board.level("h-b", at=minutes(1)).level == S
    board.update_status("h-c", offload_status="Delayed", at=minutes(1))
    assert board.hospital("h-c").offload_status is OffloadStatus.DELAYED
    assert board.level("h-c", at=minutes(1)).level == T


def test_a_unit_closed_and_reopened_signals_both_ways():
    board = make_board()
    rec = Recorder()
    board.subscribe(rec)
    board.update_status("h-b", beds={"Burn": {"baseline": 0, "available": 0}}, at=minutes(1))
    assert rec.changes() == [("Burn", N, C)]
    assert "Burn" not in {r.bed_type for r in board.saturation(at=minutes(1)) if r.bed_type}
    with pytest.raises(BedTypeNotOffered):
        board.level("h-b", "Burn", at=minutes(1))
    board.update_status("h-b", beds={"Burn": {"baseline": 6, "available": 0}}, at=minutes(2))
    assert rec.changes()[-2:] == [("Burn", C, S), (None, N, S)]


# ----------------------------------------------------------------------------- staleness
def test_stale_after_stale_after_with_tick_and_fresh_again_on_report():
    board = make_board()
    rec = Recorder()
    board.subscribe(rec)
    assert board.tick(minutes(29)) == []
    assert board.level("h-a", at=minutes(29)).stale is False
    signals = board.tick(minutes(30))
    assert [s.hospital_id for s in signals] == ["h-a", "h-b", "h-c"]
    for s in signals:
        assert s.bed_type is None and s.stale and not s.previous_stale
        assert s.previous_level == s.new_level  # a flag on the level, not a level
        assert "no status report for 30 min" in s.reason
    assert board.level("h-a", at=minutes(30)).stale is True
    assert board.tick(minutes(45)) == []  # no repeat
    signals = board.update_status("h-a", at=minutes(46))  # heartbeat: nothing changed
    assert [(s.hospital_id, s.stale, s.previous_stale) for s in signals] == [("h-a", False,
                                                                              True)]
    assert rec.got[-1] is signals[0]


def test_a_hospital_never_reported_is_stale():
    board = HospitalBoard([Hospital("x", "X", 47.3, 5.0, beds={ICU: BedCapacity(4, 4)})], at=T0)
    assert board.level("x", at=T0).stale is True
    assert board.tick(minutes(600)) == []


def test_en_route_registration_expires_at_eta_plus_grace_once_and_is_counted(caplog):
    board = make_board(policy=SaturationPolicy(margin=0.0))
    assert board.policy.en_route_grace == timedelta(minutes=30)
    board.update_status("h-b", beds={ICU: 1}, at=minutes(0))                 # 0.90: tension
    board.register_en_route("amb-1", "h-b", ICU, eta_s=600, at=minutes(0))  # 1.00: saturated
    board.update_status("h-b", beds={ICU: 1}, at=minutes(20))  # fresh at minute 40
    assert board.expires_at(board.en_route()[0]) == minutes(40)
    assert board.expire(minutes(39)) == [] and len(board.en_route()) == 1
    with caplog.at_level(logging.WARNING, logger="engine.hospitals"):
        signals = board.expire(minutes(40))
    assert board.en_route() == [] and board.en_route_expired == {"h-b": 1}
    assert "amb-1: en-route registration to h-b expired" in caplog.text
    assert [(s.bed_type, s.previous_level, s.new_level) for s in signals] == [
        (ICU, S, T), (None, S, T)]
    assert "en-route registration of ambulance amb-1 expired" in signals[0].reason
    assert board.expire(minutes(50)) == [] and board.en_route_expired == {"h-b": 1}  # once
    board.tick(minutes(51))  # tick expires too, and nothing is left to expire
    assert board.en_route_expired == {"h-b": 1}
    assert [e.ambulance_id for e in board.expired()] == ["amb-1"]
    # a cancel after the deadline says why; a late arrival still takes its bed
    with pytest.raises(UnknownAmbulance, match="expired at 2026-11-27T21:40:00"):
        board.cancel("amb-1", at=minutes(55))
    board.arrived("amb-1", at=minutes(56))
    assert board.hospital("h-b").beds[ICU].available == 0
    assert board.en_route_expired == {"h-b": 1}
    with pytest.raises(UnknownAmbulance, match="not en route"):
        board.arrived("amb-1", at=minutes(57))
    # the id may be registered again (a new mission)
    board.register_en_route("amb-1", "h-a", ICU, eta_s=60, at=minutes(58))


def test_en_route_expiry_is_decided_by_logged_times_not_by_when_a_worker_ticks():
    """Two workers apply the same log; one ticked (its own clock) past the deadline before it
    applied an arrival logged *before* the deadline: both end in the same state."""
    events = [("register", minutes(0)), ("arrived", minutes(39))]  # deadline: minute 40
    boards = [make_board(), make_board()]
    for i, board in enumerate(boards):
        for kind, at in events:
            if kind == "arrived" and i == 1:
                board.tick(minutes(45))  # this worker's clock ran ahead of the log
            if kind == "register":
                board.register_en_route("amb-1", "h-b", ICU, eta_s=600, at=at)
            else:
                board.arrived("amb-1", at=at)
    a, b = (board.to_dict() for board in boards)
    assert a["en_route"] == b["en_route"] == []
    assert a["hospitals"] == b["hospitals"]  # the bed taken on both
    assert a["en_route_expired"] == b["en_route_expired"] == {}  # not an expiry, after all
    # and a duplicate registration is judged at the log's time too
    for board in boards:
        board.register_en_route("amb-2", "h-b", ICU, eta_s=60, at=minutes(100))
    boards[1].tick(minutes(200))
    for board in boards:
        with pytest.raises(DuplicateAmbulance):
            board.register_en_route("amb-2", "h-a", ICU, eta_s=60, at=minutes(120))


def test_reads_at_a_time_drop_what_expired_by_then():
    board = make_board(policy=SaturationPolicy(en_route_grace=timedelta(minutes=5)))
    board.register_en_route("amb-1", "h-a", ICU, eta_s=60, at=minutes(0))
    assert board.level("h-a", ICU, at=minutes(5)).en_route == 1
    assert board.level("h-a", ICU, at=minutes(6)).en_route == 0
    assert board.en_route_expired == {"h-a": 1}
    assert board.en_route(at=minutes(7)) == []
    restored = HospitalBoard.from_dict(json.loads(json.dumps(board.to_dict())))
    assert restored.policy.en_route_grace == timedelta(minutes=5)
    assert restored.en_route_expired == {"h-a": 1}
    assert [e.ambulance_id for e in restored.expired()] == ["amb-1"]
    with pytest.raises(ValueError, match="en_route_grace"):
        SaturationPolicy(en_route_grace=timedelta(days=2))


@pytest.mark.parametrize("bad", ["unit/7", "x\u0007y", "x" * 65, "", " a", ".a", "a b",
                                 "ambulance#1", 7, None])
def test_ambulance_ids_follow_the_documented_pattern(bad):
    from engine.hospitals.model import InvalidAmbulanceId, check_ambulance_id

    board = make_board()
    with pytest.raises(InvalidAmbulanceId, match="ambulance id"):
        board.register_en_route(bad, "h-a", ICU, eta_s=60, at=minutes(1))
    with pytest.raises(InvalidAmbulanceId):
        board.cancel(bad, at=minutes(1))
    for good in ("SMUR-21:3", "a", "amb-0123456789", "x" * 64, "unit_7.b"):
        assert check_ambulance_id(good) == good
    with pytest.raises(HospitalDataError, match="more than 12 h"):
        board.register_en_route("amb-1", "h-a", ICU, eta_s=1e9, at=minutes(1))


def test_en_route_registrations_do_not_refresh_staleness():
    board = make_board()
    board.register_en_route("amb-1", "h-a", ICU, eta_s=60, at=minutes(40))
    assert board.level("h-a", at=minutes(40)).stale is True


# ----------------------------------------------------------------------------- signals
def test_signals_delivered_in_order_with_previous_and_new_levels():
    board = make_board()
    rec = Recorder()
    board.subscribe(rec)
    board.update_status("h-b", beds={ICU: 1}, at=minutes(1))            # 0.90: tension
    board.register_en_route("amb-1", "h-b", ICU, eta_s=300, at=minutes(2))  # 1.00: saturated
    board.update_status("h-b", ed_status="Closed", at=minutes(3))
    board.cancel("amb-1", at=minutes(4))                                # 0.90: stays saturated
    board.update_status("h-b", beds={ICU: 5}, ed_status="Normal", at=minutes(5))
    assert rec.changes() == [
        ("AdultICU", N, T), (None, N, T),
        ("AdultICU", T, S), (None, T, S),
        (None, S, C),
        ("AdultICU", S, N), (None, C, N),
    ]
    assert rec.got == board.signals()
    numbers = [int(s.id.rsplit("-", 1)[1]) for s in rec.got]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert [s.at for s in board.signals(since=minutes(3))] == [minutes(3), minutes(5),
                                                               minutes(5)]
    assert rec.got[2].en_route == 1 and rec.got[2].occupancy == pytest.approx(1.0)
    assert "amb-1" in rec.got[2].reason


def test_a_failing_subscriber_does_not_break_the_board_or_others(caplog):
    board = make_board()

    def broken(signal: SaturationSignal) -> None:
        raise RuntimeError("screen disconnected")

    rec = Recorder()
    board.subscribe(broken)
    board.subscribe(rec)
    with caplog.at_level(logging.ERROR, logger="engine.hospitals"):
        signals = board.update_status("h-a", beds={ICU: 1}, at=minutes(1))
    assert len(signals) == 2 and rec.got == signals
    assert "screen disconnected" in caplog.text
    assert board.level("h-a", ICU, at=minutes(1)).level == S


def test_unsubscribe_stops_delivery():
    board = make_board()
    rec = Recorder()
    unsubscribe = board.subscribe(rec)
    board.update_status("h-a", beds={ICU: 1}, at=minutes(1))
    unsubscribe()
    unsubscribe()  # idempotent
    board.update_status("h-a", beds={ICU: 10}, at=minutes(2))
    assert len(rec.got) == 2 and len(board.signals()) == 4


def test_a_subscriber_may_read_and_change_the_board():
    board = make_board()
    seen: list[tuple[str, SaturationLevel]] = []

    def reacts(signal: SaturationSignal) -> None:
        seen.append((signal.id, board.level(signal.hospital_id, at=signal.at).level))
        if signal.bed_type is None and signal.new_level == S:
            board.update_status("h-b", ed_status="Advisory", at=signal.at)

    board.subscribe(reacts)
    board.update_status("h-a", beds={ICU: 0}, at=minutes(1))
    assert [s.id for s in board.signals()] == [i for i, _ in seen]  # nested ones too, in order
    assert board.level("h-b", at=minutes(1)).level == T


def test_history_is_bounded():
    board = make_board(history=3)
    for i in range(4):
        board.update_status("h-a", beds={ICU: 0 if i % 2 == 0 else 10}, at=minutes(i))
    assert len(board.signals()) == 3
    assert board.signals()[-1].new_level == N


def test_signal_to_dict_is_geojson_lon_lat():
    board = make_board()
    [icu, _overall] = board.update_status("h-a", beds={ICU: 1}, at=minutes(1))
    d = icu.to_dict()
    assert d["location"] == {"type": "Point", "coordinates": [5.0653, 47.3220]}
    assert (d["previous_level"], d["new_level"], d["bed_type"]) == ("normal", "saturated",
                                                                     "AdultICU")
    assert d["at"] == "2026-11-27T21:01:00+00:00"
    json.dumps(d)
    assert SaturationSignal.from_dict(d) == icu


# ----------------------------------------------------------------------------- candidates
def test_candidates_filter_by_bed_type_capability_and_closed():
    board = make_board()
    assert [c.hospital.id for c in board.candidates(at=T0)] == ["h-a", "h-b", "h-c"]
    assert {c.hospital.id for c in board.candidates(ICU, at=T0)} == {"h-a", "h-b"}
    assert [c.hospital.id for c in board.candidates(capability="burn", at=T0)] == ["h-b"]
    assert [c.hospital.id for c in board.candidates("Burn", "emergency", at=T0)] == ["h-b"]
    assert [c.hospital.id for c in board.candidates(capability="Psychiatry", at=T0)] == ["h-c"]
    assert board.candidates(BedType.PEDIATRIC_ICU, at=T0) == []
    assert board.candidates(ICU, "maternity", at=T0) == []  # known word, nobody has it
    board.update_status("h-b", ed_status="Closed", at=minutes(1))
    assert [c.hospital.id for c in board.candidates(ICU, at=minutes(1))] == ["h-a"]
    with pytest.raises(UnknownCapability, match="cardio"):
        board.candidates(capability="cardio", at=T0)
    with pytest.raises(UnknownBedType):
        board.candidates("ICU", at=T0)


def test_candidates_best_first_and_saturated_ones_kept_flagged():
    board = make_board()
    board.update_status("h-a", beds={ICU: 1}, at=minutes(1))  # h-a ICU saturated
    cands = board.candidates(ICU, "emergency", at=minutes(1))
    assert [c.hospital.id for c in cands] == ["h-b", "h-a"]
    assert [c.bed.level for c in cands] == [N, S]
    assert cands[1].level == S and cands[0].stale is False
    d = cands[0].to_dict()
    assert d["destination"] == [5.0495, 47.3621]


# ----------------------------------------------------------------------------- CAP 1.2
REQUIRED_ALERT = ("identifier", "sender", "sent", "status", "msgType", "scope")
REQUIRED_INFO = ("category", "event", "urgency", "severity", "certainty")
CAP_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


def parse_cap(xml: str) -> ET.Element:
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(xml)
    assert root.tag == f"{CAP}alert"
    for el in root.iter():  # every element in the CAP namespace
        assert el.tag.startswith(CAP), el.tag
    return root


def test_cap_alert_is_well_formed_with_every_required_element():
    board = make_board()
    [icu, overall] = board.update_status("h-a", beds={ICU: 1}, at=T0 + timedelta(
        minutes=1, microseconds=123456))
    root = parse_cap(icu.to_cap(sender="gyrophare@dijon.example"))
    for tag in REQUIRED_ALERT:
        assert root.find(f"{CAP}{tag}") is not None, tag
    assert root.findtext(f"{CAP}identifier") == icu.id
    assert root.findtext(f"{CAP}sender") == "gyrophare@dijon.example"
    sent = root.findtext(f"{CAP}sent")
    assert CAP_TIME.match(sent) and sent == "2026-11-27T21:01:00-00:00"  # no fraction, no Z
    assert root.findtext(f"{CAP}status") == "Actual"
    assert root.findtext(f"{CAP}msgType") == "Alert"  # a rise
    assert root.findtext(f"{CAP}scope") == "Restricted"
    assert root.findtext(f"{CAP}restriction")  # required by CAP for Restricted
    info = root.find(f"{CAP}info")
    assert info is not None
    for tag in REQUIRED_INFO:
        assert info.findtext(f"{CAP}{tag}"), tag
    assert info.findtext(f"{CAP}category") == "Health"
    assert (info.findtext(f"{CAP}urgency"), info.findtext(f"{CAP}severity"),
            info.findtext(f"{CAP}certainty")) == ("Immediate", "Severe", "Observed")
    assert "Alpha" in info.findtext(f"{CAP}headline")
    params = {p.findtext(f"{CAP}valueName"): p.findtext(f"{CAP}value")
              for p in info.findall(f"{CAP}parameter")}
    assert params["level"] == "saturated" and params["bedType"] == "AdultICU"
    assert params["hospitalId"] == "h-a" and float(params["occupancy"]) == pytest.approx(0.95)
    area = info.find(f"{CAP}area")
    assert area.findtext(f"{CAP}areaDesc") == "Alpha"
    overall_root = parse_cap(overall.to_cap())
    overall_params = {p.findtext(f"{CAP}valueName"): p.findtext(f"{CAP}value")
                      for p in overall_root.iter(f"{CAP}parameter")}
    assert overall_params["bedType"] == "overall"


def test_cap_circle_is_lat_lon_radius_while_geojson_is_lon_lat():
    board = make_board()
    [icu, _] = board.update_status("h-a", beds={ICU: 1}, at=minutes(1))
    circle = parse_cap(icu.to_cap(radius_km=2.5)).find(f".//{CAP}area/{CAP}circle").text
    m = re.fullmatch(r"(-?\d+\.\d+),(-?\d+\.\d+) (\d+(?:\.\d+)?)", circle)
    assert m, circle
    lat, lon, radius = map(float, m.groups())
    assert (lat, lon, radius) == (pytest.approx(47.3220), pytest.approx(5.0653), 2.5)
    assert icu.to_dict()["location"]["coordinates"] == [pytest.approx(lon), pytest.approx(lat)]


def test_cap_update_references_the_previous_signal_and_maps_levels():
    board = make_board()
    [rise, _] = board.update_status("h-a", beds={ICU: 1}, at=minutes(1))
    board.tick(minutes(40))  # stale
    [drop, _] = board.update_status("h-a", beds={ICU: 10}, at=minutes(41))
    root = parse_cap(drop.to_cap(sender="gyro@x"))
    assert root.findtext(f"{CAP}msgType") == "Update"
    assert root.findtext(f"{CAP}references") == f"gyro@x,{rise.id},{cap_datetime(rise.at)}"
    info = root.find(f"{CAP}info")
    assert (info.findtext(f"{CAP}urgency"), info.findtext(f"{CAP}severity")) == ("Past",
                                                                                 "Minor")
    stale_signal = board.signals(since=minutes(40))[0]
    assert stale_signal.stale and stale_signal.msg_type == "Update"
    assert parse_cap(stale_signal.to_cap()).findtext(f".//{CAP}certainty") == "Likely"


def test_a_first_signal_that_is_a_drop_is_an_alert():
    hospital = Hospital("h", "H", 47.3, 5.0, beds={ICU: BedCapacity(10, 0)}, updated_at=T0)
    board = HospitalBoard([hospital], at=T0)
    [drop, _] = board.update_status("h", beds={ICU: 10}, at=minutes(1))
    assert (drop.previous_level, drop.new_level) == (S, N)
    assert drop.msg_type == "Alert"  # nothing to reference
    assert parse_cap(drop.to_cap()).find(f"{CAP}references") is None


def test_cap_refuses_actual_alerts_about_demo_facilities_and_bad_options():
    demo = Hospital("demo-a", "Demo facility A (not a real hospital)", 60.1675, 24.9420,
                    beds={ICU: BedCapacity(10, 5)}, demo=True, updated_at=T0)
    board = HospitalBoard([demo], at=T0)
    [signal, _] = board.update_status("demo-a", beds={ICU: 0}, at=minutes(1))
    with pytest.raises(ValueError, match="demonstration"):
        signal.to_cap()
    root = parse_cap(signal.to_cap(status="Exercise", scope="Public"))
    assert root.findtext(f"{CAP}status") == "Exercise"
    assert "not a real hospital" in root.findtext(f"{CAP}note").lower()
    assert root.find(f"{CAP}restriction") is None
    with pytest.raises(ValueError, match="sender"):
        signal.to_cap(status="Exercise", sender="gyro phare")
    with pytest.raises(ValueError, match="scope"):
        signal.to_cap(status="Exercise", scope="Everyone")
    with pytest.raises(ValueError, match="addresses"):
        signal.to_cap(status="Exercise", scope="Private")
    with pytest.raises(ValueError, match="radius"):
        signal.to_cap(status="Exercise", radius_km=0)


# ----------------------------------------------------------------------------- bad input
def _bad_calls():
    return [
        ("unknown hospital", lambda b: b.update_status("h-zz", at=minutes(1)), UnknownHospital),
        ("unknown bed type", lambda b: b.update_status("h-a", beds={"Cardiac": 3},
                                                       at=minutes(1)), UnknownBedType),
        ("negative count", lambda b: b.update_status("h-a", beds={ICU: -1}, at=minutes(1)),
         InvalidCapacity),
        ("float count", lambda b: b.update_status("h-a", beds={ICU: 2.5}, at=minutes(1)),
         InvalidCapacity),
        ("bool count", lambda b: b.update_status("h-a", beds={ICU: True}, at=minutes(1)),
         InvalidCapacity),
        ("string count", lambda b: b.update_status("h-a", beds={ICU: "3"}, at=minutes(1)),
         InvalidCapacity),
        ("available > baseline", lambda b: b.update_status("h-a", beds={ICU: 21},
                                                           at=minutes(1)), InvalidCapacity),
        ("half valid", lambda b: b.update_status("h-a", beds={ICU: 1, WARD: 101},
                                                 ed_status="Closed", at=minutes(1)),
         InvalidCapacity),
        ("bad ed status", lambda b: b.update_status("h-a", beds={ICU: 1}, ed_status="Shut",
                                                    at=minutes(1)), InvalidStatus),
        ("bad offload", lambda b: b.update_status("h-a", offload_status="Slow",
                                                  at=minutes(1)), InvalidStatus),
        ("not offered", lambda b: b.update_status("h-c", beds={ICU: 1}, at=minutes(1)),
         BedTypeNotOffered),
        ("naive time", lambda b: b.update_status("h-a", beds={ICU: 1},
                                                 at=datetime(2026, 11, 27, 21, 5)),
         InvalidTimestamp),
        ("report from the past", lambda b: b.update_status("h-a", beds={ICU: 1},
                                                           at=T0 - timedelta(seconds=1)),
         InvalidTimestamp),
        ("duplicate ambulance", lambda b: b.register_en_route("amb-0", "h-b", ICU, eta_s=5,
                                                              at=minutes(1)),
         DuplicateAmbulance),
        ("en route unknown hospital", lambda b: b.register_en_route("amb-9", "nowhere", ICU,
                                                                    eta_s=5, at=minutes(1)),
         UnknownHospital),
        ("en route not offered", lambda b: b.register_en_route("amb-9", "h-c", ICU, eta_s=5,
                                                               at=minutes(1)),
         BedTypeNotOffered),
        ("en route bad bed", lambda b: b.register_en_route("amb-9", "h-a", "Bed", eta_s=5,
                                                           at=minutes(1)), UnknownBedType),
        ("negative eta", lambda b: b.register_en_route("amb-9", "h-a", ICU, eta_s=-1,
                                                       at=minutes(1)), ValueError),
        ("arrived unknown", lambda b: b.arrived("amb-9", at=minutes(1)), UnknownAmbulance),
        ("cancel unknown", lambda b: b.cancel("amb-9", at=minutes(1)), UnknownAmbulance),
        ("level unknown bed", lambda b: b.level("h-a", "Icu-ish", at=minutes(1)),
         UnknownBedType),
        ("en_route unknown hospital", lambda b: b.en_route("h-zz"), UnknownHospital),
    ]


@pytest.mark.parametrize(("call", "error"), [(c, e) for _, c, e in _bad_calls()],
                         ids=[name for name, _, _ in _bad_calls()])
def test_bad_input_raises_and_leaves_the_board_unchanged(call, error):
    board = make_board()
    board.register_en_route("amb-0", "h-a", ICU, eta_s=120, at=T0)
    rec = Recorder()
    board.subscribe(rec)
    before = board.to_dict()
    with pytest.raises(error):
        call(board)
    assert board.to_dict() == before
    assert rec.got == []


def test_unknown_hospital_names_the_id_and_lists_known_ones():
    board = make_board()
    with pytest.raises(UnknownHospital) as info:
        board.level("h-zz", at=T0)
    message = str(info.value)
    assert "'h-zz'" in message and "'h-a'" in message and "'h-c'" in message
    assert info.value.hospital_id == "h-zz"


def test_capacity_errors_name_the_field():
    board = make_board()
    with pytest.raises(InvalidCapacity, match=r"beds\.AdultICU\.available.*-1"):
        board.update_status("h-a", beds={ICU: -1}, at=minutes(1))
    with pytest.raises(InvalidCapacity, match=r"available \(21\) must not exceed baseline"):
        board.update_status("h-a", beds={ICU: 21}, at=minutes(1))


def test_baseline_changes_and_new_units_through_update_status():
    board = make_board()
    board.update_status("h-a", beds={ICU: {"baseline": 30}}, at=minutes(1))  # surge beds
    assert board.hospital("h-a").beds[ICU] == BedCapacity(30, 10)
    board.update_status("h-c", beds={"OtherIsolation": {"baseline": 4, "available": 4}},
                        at=minutes(2))
    assert board.hospital("h-c").offers(BedType.OTHER_ISOLATION)
    with pytest.raises(BedTypeNotOffered, match="both baseline and available"):
        board.update_status("h-c", beds={"Burn": {"available": 2}}, at=minutes(3))


# ----------------------------------------------------------------------------- state round trip
def test_to_dict_from_dict_round_trip_keeps_hysteresis_en_route_and_history():
    board = make_board()
    board.update_status("h-a", beds={ICU: 3}, at=minutes(1))  # tension at 0.85
    board.register_en_route("amb-1", "h-b", ICU, eta_s=3600, at=minutes(2))  # counted past 47
    board.tick(minutes(45))
    state = json.loads(json.dumps(board.to_dict()))
    restored = HospitalBoard.from_dict(state)
    assert restored.to_dict() == board.to_dict()
    assert restored.signals() == board.signals()
    # the hysteresis memory survived: 0.80 keeps tension on both boards
    for b in (board, restored):
        b.update_status("h-a", beds={ICU: 4}, at=minutes(46))
        assert b.level("h-a", ICU, at=minutes(46)).level == T
    # ids continue, never reused
    last = int(restored.signals()[-1].id.rsplit("-", 1)[1])
    assert last > state["seq"]
    [sig] = restored.update_status("h-b", ed_status="Closed", at=minutes(47))
    assert sig.id not in {s.id for s in board.signals()}
    assert sig.id == f"gyrophare-test-{last + 1}"
    assert [e.ambulance_id for e in restored.en_route("h-b")] == ["amb-1"]


def test_from_dict_rejects_malformed_state():
    state = make_board().to_dict()
    with pytest.raises(HospitalDataError, match="format"):
        HospitalBoard.from_dict({**state, "format": "other"})
    broken = json.loads(json.dumps(state))
    broken["hospitals"][1]["beds"]["AdultICU"]["available"] = 99
    with pytest.raises(HospitalDataError, match=r"hospitals\[1\]\.beds\.AdultICU\.available"):
        HospitalBoard.from_dict(broken)
    no_level = json.loads(json.dumps(state))
    no_level["levels"] = [r for r in no_level["levels"] if r["bed_type"] != "Burn"]
    with pytest.raises(HospitalDataError, match="h-b/Burn"):
        HospitalBoard.from_dict(no_level)


# ----------------------------------------------------------------------------- files
def test_dijon_file_loads_with_real_ids_inside_the_metropole():
    hospitals = load_hospitals(project_data_path("hospitals/dijon-metropole.json"))
    finess = {h.external_ids["finess"]: h for h in hospitals}
    for required in ("210987558", "210986089", "210987731", "210012670", "210011847",
                     "210780789", "210987632"):
        assert required in finess, required
    assert "Mitterrand" in finess["210987558"].name
    assert "psychiatry" in finess["210987632"].capabilities
    assert finess["210987632"].offers(BedType.PSYCHIATRIC)
    west, south, east, north = DIJON_BBOX
    for h in hospitals:
        assert west <= h.lon <= east and south <= h.lat <= north, h.name
        assert h.capacity_assumed and not h.demo and h.assumed
        assert h.id == f"finess-{h.external_ids['finess']}"
    raw = json.loads(project_data_path("hospitals/dijon-metropole.json").read_text("utf-8"))
    sources = " ".join(raw["sources"])
    assert "eurostat_healthcare_cote_dor_21.csv" in sources
    assert "finess_dijon_metropole" in sources
    assert "ASSUMPTIONS" in raw["description"]
    assert all(h["capacity_assumed"] is True for h in raw["hospitals"])
    board = HospitalBoard(hospitals, at=T0)
    assert all(r.stale for r in board.saturation(at=T0))  # nothing reported yet
    assert {c.hospital.external_ids["finess"] for c in board.candidates(
        ICU, "emergency", at=T0)} == {"210987558", "210012670"}


def test_helsinki_demo_file_is_demo_data_inside_the_sample_city():
    hospitals = load_hospitals(project_data_path("hospitals/helsinki-demo.json"))
    assert len(hospitals) == 3
    west, south, east, north = HELSINKI_BBOX
    for h in hospitals:
        assert h.demo and h.capacity_assumed
        assert "not a real hospital" in h.name
        assert west <= h.lon <= east and south <= h.lat <= north


def test_project_data_path_refuses_escapes_and_missing_files():
    assert project_data_path("hospitals/README.md").is_file()
    with pytest.raises(ValueError):
        project_data_path("../pyproject.toml")
    with pytest.raises(FileNotFoundError, match=r"nope\.json"):
        project_data_path("hospitals/nope.json")


def _write(tmp_path, data) -> str:
    path = tmp_path / "h.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def _valid_file() -> dict:
    return dump_hospitals(make_board().hospitals(), sources=["test"])


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d["hospitals"][2]["beds"].update(AdultICU={"baseline": 4, "available": -1}),
     "hospitals[2].beds.AdultICU.available: must be an integer >= 0, got -1"),
    (lambda d: d["hospitals"][0]["beds"]["AdultICU"].update(available=25),
     "hospitals[0].beds.AdultICU.available: available (25) must not exceed baseline (20)"),
    (lambda d: d["hospitals"][1]["beds"].update(Cardiac={"baseline": 1, "available": 1}),
     "hospitals[1].beds.Cardiac: "),
    (lambda d: d["hospitals"][1].update(bedz={}), "hospitals[1].bedz: unknown field"),
    (lambda d: d["hospitals"][1].update(id="h-a"),
     "hospitals[1].id: duplicate id 'h-a' (also hospitals[0])"),
    (lambda d: d["hospitals"][0].pop("lat"), "hospitals[0].lat: required"),
    (lambda d: d["hospitals"][0].update(lat=95.0), "hospitals[0].lat/lon: "),
    (lambda d: d["hospitals"][0].update(ed_status="Shut"), "hospitals[0].ed_status: 'Shut'"),
    (lambda d: d["hospitals"][0].update(updated_at="2026-11-27T21:00:00"),
     "hospitals[0].updated_at: '2026-11-27T21:00:00' has no timezone offset"),
    (lambda d: d["hospitals"][0].update(capacity_assumed="yes"),
     "hospitals[0].capacity_assumed: must be true or false"),
    (lambda d: d.update(format="v0"), "format: must be 'gyrophare-hospitals/1'"),
    (lambda d: d.pop("hospitals"), "hospitals: required"),
])
def test_load_hospitals_names_the_bad_field(tmp_path, mutate, message):
    data = _valid_file()
    mutate(data)
    with pytest.raises(HospitalDataError) as info:
        load_hospitals(_write(tmp_path, data))
    assert str(info.value).startswith(message), str(info.value)


def test_dump_and_load_round_trip(tmp_path):
    board = make_board()
    board.update_status("h-a", beds={ICU: 2}, offload_status="Delayed", at=minutes(1))
    board.set_entrance("h-a", (47.3219, 5.0650), note="by hand")
    path = tmp_path / "out.json"
    dump_hospitals(board.hospitals(), path, sources=["unit test"], description="d")
    loaded = load_hospitals(path)
    assert loaded == board.hospitals()
    assert loaded[0].entrance == (47.3219, 5.0650) and loaded[0].updated_at == minutes(1)
    assert json.loads(path.read_text("utf-8"))["sources"] == ["unit test"]


def test_load_hospitals_rejects_invalid_json(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(HospitalDataError, match="not valid JSON"):
        load_hospitals(path)


# ----------------------------------------------------------------------------- OSM + snapping
def test_monaco_osm_hospitals_load_with_assumed_capacities(monaco):
    hospitals = hospitals_from_graph(monaco)
    assert len(hospitals) == len(monaco.hospitals) >= 3
    by_name = {h.name: h for h in hospitals}
    cardio = by_name["Centre Cardio Thoracique de Monaco"]
    assert "emergency" in cardio.capabilities and cardio.ed_status is EDStatus.NORMAL
    sport = by_name["Institut Monégasque de Médecine du Sport"]
    assert sport.ed_status is EDStatus.NOT_APPLICABLE and "emergency" not in sport.capabilities
    menton = by_name["Centre Hospitalier de Menton - La Palmosa"]
    assert "unknown" in menton.assumed
    assert any(h.name.startswith("Unnamed hospital (osm-") for h in hospitals)
    for h in hospitals:
        assert h.capacity_assumed and h.id.startswith("osm-") and "OpenStreetMap" in h.source
        assert h.offers(ICU) and h.offers(WARD)
    board = HospitalBoard(hospitals, at=T0)
    assert [c.hospital.name for c in board.candidates(ICU, "emergency", at=T0)] == [
        "Centre Cardio Thoracique de Monaco"]


def test_monaco_entrances_snap_to_the_road_and_failures_keep_the_building(monaco,
                                                                         monaco_router):
    from engine.graph import haversine_m

    hospitals = hospitals_from_graph(monaco)
    far = Hospital("far", "Far away (Dijon)", 47.3220, 5.0653, beds={ICU: BedCapacity(2, 2)})
    board = HospitalBoard([*hospitals, far], at=T0)
    notes = snap_entrances(board, monaco_router)
    assert set(notes) == {h.id for h in hospitals} | {"far"}
    for h in hospitals:
        snapped = board.hospital(h.id)
        assert snapped.entrance is not None and snapped.entrance_note == notes[h.id]
        assert snapped.destination == snapped.entrance != (h.lat, h.lon)
        d = float(haversine_m(h.lat, h.lon, *snapped.entrance))
        assert d <= monaco_router.snap_radius_m
        reported = float(re.fullmatch(r"snapped (\d+) m to the road network",
                                      notes[h.id]).group(1))
        assert abs(reported - d) <= 1.0
    kept = board.hospital("far")
    assert kept.entrance == (kept.lat, kept.lon) and kept.destination == (kept.lat, kept.lon)
    assert "not snapped" in kept.entrance_note and "off the road network" in kept.entrance_note
    # the entrance is a routable destination
    cardio = next(h for h in board.hospitals() if h.name.startswith("Centre Cardio"))
    route = monaco_router.route((43.7384, 7.4246), cardio.destination)
    assert route.reachable and route.duration_s > 0


@pytest.fixture(scope="module")
def helsinki_router():
    from engine.io import load_graph
    from engine.query import Router

    return Router(load_graph(None))


def test_helsinki_demo_entrances_snap_close(helsinki_router):
    board = HospitalBoard(load_hospitals(project_data_path("hospitals/helsinki-demo.json")),
                          at=T0)
    notes = snap_entrances(board, helsinki_router)
    for h in board.hospitals():
        assert notes[h.id].startswith("snapped"), notes[h.id]
        assert int(re.search(r"snapped (\d+) m", notes[h.id]).group(1)) <= 100


# ----------------------------------------------------------------------------- properties
policies = st.builds(
    lambda t, gap, m: SaturationPolicy(tension=t, saturated=min(t + gap, 1.5),
                                       margin=min(m, t * 0.9)),
    st.floats(0.3, 0.9), st.floats(0.01, 0.3), st.floats(0.0, 0.2),
)
occupancies = st.floats(0.0, 1.6, allow_nan=False)
previous_levels = st.sampled_from([None, N, T, S, C])


@given(policies, occupancies, occupancies, previous_levels)
@settings(max_examples=300, deadline=None)
def test_levels_are_monotone_in_occupancy(policy, a, b, previous):
    lo, hi = sorted((a, b))
    assert policy.classify(lo, previous=previous) <= policy.classify(hi, previous=previous)


@given(policies, occupancies, previous_levels)
@settings(max_examples=300, deadline=None)
def test_hysteresis_only_holds_a_level_never_invents_one(policy, occupancy, previous):
    plain = policy.classify(occupancy)
    held = policy.classify(occupancy, previous=previous)
    ceiling = plain if previous in (None, C) else max(plain, previous)
    assert plain <= held <= ceiling


@given(st.lists(st.integers(0, 20), min_size=1, max_size=25))
@settings(max_examples=60, deadline=None)
def test_board_levels_follow_the_policy_step_by_step(availables):
    board = make_board()
    policy = board.policy
    previous = board.level("h-a", ICU, at=T0).level
    for i, available in enumerate(availables):
        signals = board.update_status("h-a", beds={ICU: available}, at=minutes(i + 1))
        expected = policy.classify((20 - available) / 20, previous=previous)
        assert board.level("h-a", ICU, at=minutes(i + 1)).level == expected
        icu = [s for s in signals if s.bed_type == ICU]
        assert len(icu) == (expected != previous)
        previous = expected


# ----------------------------------------------------------------------------- threads
def test_concurrent_dispatchers_keep_the_board_consistent():
    board = make_board()
    board.update_status("h-a", beds={ICU: 20}, at=minutes(1))
    rec = Recorder()
    board.subscribe(rec)
    errors: list[BaseException] = []

    def dispatcher(k: int) -> None:
        try:
            for j in range(40):
                aid = f"amb-{k}-{j}"
                board.register_en_route(aid, "h-a", ICU, eta_s=60, at=minutes(2))
                if j % 2:
                    board.cancel(aid, at=minutes(3))
                else:
                    board.arrived(aid, at=minutes(3), admit=False)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=dispatcher, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert board.en_route() == []
    assert board.level("h-a", ICU, at=minutes(3)).occupancy == pytest.approx(0.0)
    assert board.level("h-a", ICU, at=minutes(3)).level == N
    assert [s.id for s in rec.got] == [s.id for s in board.signals()][-len(rec.got):]
    numbers = [int(s.id.rsplit("-", 1)[1]) for s in rec.got]
    assert numbers == sorted(numbers)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["register", "arrived", "cancel", "tick", "copy"]),
                          st.integers(0, 5), st.integers(0, 40), st.integers(60, 1800)),
                max_size=60))
def test_expiry_index_matches_a_naive_scan(ops) -> None:
    """The board finds expired registrations through a deadline heap; a plain model of the
    rules (registered, not closed, ETA + grace not reached) must agree after every step,
    through re-registrations, early arrivals, cancels and copies."""
    grace = timedelta(minutes=5)
    board = make_board(policy=SaturationPolicy(en_route_grace=grace))
    model: dict[str, datetime] = {}  # ambulance id -> deadline
    now = T0
    for kind, k, step_min, eta_s in ops:
        now += timedelta(minutes=step_min)
        aid = f"amb-{k}"
        model = {a: d for a, d in model.items() if d > now}  # what expired by now
        if kind == "register":
            if aid in model:
                with pytest.raises(DuplicateAmbulance):
                    board.register_en_route(aid, "h-a", ICU, eta_s=eta_s, at=now)
            else:
                board.register_en_route(aid, "h-a", ICU, eta_s=eta_s, at=now)
                model[aid] = now + timedelta(seconds=eta_s) + grace
        elif kind in ("arrived", "cancel") and aid in model:
            (board.arrived if kind == "arrived" else board.cancel)(aid, at=now)
            del model[aid]
        elif kind == "tick":
            board.tick(now)
        elif kind == "copy":
            board = board.copy()
        board.expire(now)
        assert sorted(e.ambulance_id for e in board.en_route()) == sorted(model)
