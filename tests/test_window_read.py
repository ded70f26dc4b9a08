"""A short query range read as a window of time (:class:`zhizao.kpi.elements.ReadWindow`) gives what a read of
every record gives, to the last bit: the cases a reviewer found (the random stores of
tests/test_partitions_properties.py cover the rest)."""

from __future__ import annotations

import pandas as pd
import pytest

from canonical import build
from zhizao.kpi import elements as engine

T0 = pd.Timestamp("2024-05-01T00:00:00Z")
EQ = pd.DataFrame([{"equipment_id": "M0", "work_center": "W", "area": "A", "site": "S", "enterprise": "E",
                    "timezone": "UTC", "epc": 60.0}])
CAL = pd.DataFrame([{"scope": "S", "start": T0.isoformat(), "end": (T0 + pd.Timedelta(days=30)).isoformat(),
                     "kind": "shift"}])


def _both(tmp_path, tables, start_h, end_h, period="hour", monkeypatch=None):
    ws = build(tmp_path, tables)
    kw = {"start": T0 + pd.Timedelta(hours=start_h), "end": T0 + pd.Timedelta(hours=end_h)}
    out = {}
    for how, share in (("every", 0.0), ("window", float("inf"))):
        monkeypatch.setattr(engine, "WINDOW_SHARE", share)
        out[how] = engine.compute_elements(ws.con, period, **kw)
    ws.close()
    return out["every"], out["window"]


def _same(every, window):
    pd.testing.assert_frame_equal(every.elements, window.elements, check_exact=True)
    pd.testing.assert_frame_equal(every.reasons, window.reasons, check_exact=True)


@pytest.mark.parametrize("us", [0, 1, 500, 999])
def test_an_open_record_long_before_the_window_with_a_start_finer_than_a_millisecond(tmp_path, monkeypatch, us):
    """The record that carries an equipment through the window started ten days before it, at a time stamp with
    microseconds (fine clocks: OPC UA, MQTT): the window reads it by its millisecond, as the kernel sees it (an
    equality to the millisecond missed it: the machine was idle in the window instead of producing)."""
    start = (T0 + pd.Timedelta(microseconds=us)).isoformat()
    states = pd.DataFrame([{"equipment_id": "M0", "start": start, "end": None, "state": "production"},
                           {"equipment_id": "M0", "start": (T0 + pd.Timedelta(days=19)).isoformat(), "end": None,
                            "state": "setup"}])
    every, window = _both(tmp_path, {"equipment": EQ, "states": states, "calendar": CAL}, 240, 242,
                          monkeypatch=monkeypatch)
    assert every.elements["apt"].tolist() == [3600.0, 3600.0]
    _same(every, window)


def test_energy_booked_to_an_equipment_id_as_a_scope_is_no_meter_of_that_equipment(tmp_path, monkeypatch):
    """A reading with no equipment and ``scope`` an equipment id is booked to no entity by the engine; the window
    must not count it as that equipment's meter (energy_missing, the production time without energy records of
    equipment that has a meter, stays 0, not 3600 s per hour)."""
    states = pd.DataFrame([{"equipment_id": "M0", "start": (T0 + pd.Timedelta(hours=h)).isoformat(), "end": None,
                            "state": "production"} for h in range(200)])
    energy = pd.DataFrame([{"meter_id": "E1", "equipment_id": None, "scope": "M0",
                            "start": (T0 + pd.Timedelta(hours=1)).isoformat(),
                            "end": (T0 + pd.Timedelta(hours=2)).isoformat(), "carrier": "electricity",
                            "quantity": 5.0, "unit": "kWh", "reading": "interval"}])
    every, window = _both(tmp_path, {"equipment": EQ, "states": states, "calendar": CAL, "energy": energy}, 100, 102,
                          monkeypatch=monkeypatch)
    assert every.elements.loc[every.elements["level"] == "equipment", "energy_missing"].tolist() == [0.0, 0.0]
    _same(every, window)


def test_energy_booked_to_the_equipment_makes_it_one_with_a_meter_in_any_window(tmp_path, monkeypatch):
    """The same reading booked to the equipment: it has a meter, whether or not the window reads the reading."""
    states = pd.DataFrame([{"equipment_id": "M0", "start": (T0 + pd.Timedelta(hours=h)).isoformat(), "end": None,
                            "state": "production"} for h in range(200)])
    energy = pd.DataFrame([{"meter_id": "E1", "equipment_id": "M0", "scope": None,
                            "start": (T0 + pd.Timedelta(hours=1)).isoformat(),
                            "end": (T0 + pd.Timedelta(hours=2)).isoformat(), "carrier": "electricity",
                            "quantity": 5.0, "unit": "kWh", "reading": "interval"}])
    every, window = _both(tmp_path, {"equipment": EQ, "states": states, "calendar": CAL, "energy": energy}, 100, 102,
                          monkeypatch=monkeypatch)
    assert every.elements["energy_missing"].tolist() == [3600.0, 3600.0]
    _same(every, window)


@pytest.mark.parametrize("us", [-600, -500, -400, -1, 0, 1, 999])
def test_an_inspection_a_fraction_of_a_millisecond_from_the_window(tmp_path, monkeypatch, us):
    """An inspection microseconds before or at the window's start: the kernel reads quality, energy, labour and
    calendar records to the millisecond rounded down, as states and counts (DuckDB's epoch_ms rounds to the
    nearest: .999600 was read a millisecond later, inside the window, by a read of every record only)."""
    states = pd.DataFrame([{"equipment_id": "M0", "start": (T0 + pd.Timedelta(hours=h)).isoformat(), "end": None,
                            "state": "production"} for h in range(200)])
    a = T0 + pd.Timedelta(hours=100)
    quality = pd.DataFrame([{"equipment_id": "M0", "scope": None, "ts": (a + pd.Timedelta(microseconds=us)).isoformat(),
                             "result": "pass", "unit_id": "u1"}])
    every, window = _both(tmp_path, {"equipment": EQ, "states": states, "calendar": CAL, "quality": quality}, 100, 102,
                          monkeypatch=monkeypatch)
    ip = every.elements["ip"].iloc[0]  # the window's first hour: inspected once if the stamp is inside it
    assert ip == 1.0 if us >= 0 else pd.isna(ip)
    _same(every, window)


@pytest.mark.parametrize("kind, pbt", [("shift", 0.0), ("planned_downtime", 3600.0), ("holiday", 3600.0)])
def test_a_calendar_whose_entries_all_lie_outside_the_window(tmp_path, monkeypatch, kind, pbt):
    """The window reads only the calendar entries that reach into it; whether an equipment is under a calendar,
    and whether its scopes give shifts, is a fact of all its entries. M0's only entry lies on day 1, the window
    on day 10: with a shift entry it is under a calendar that schedules nothing then (no PBT, no longer
    scheduled over its data extent); with only a planned downtime or a holiday it is scheduled around the clock,
    as a read of every entry says. Two entries on the day of the window cut it as the whole calendar does."""
    states = pd.DataFrame([{"equipment_id": "M0", "start": (T0 + pd.Timedelta(hours=h)).isoformat(), "end": None,
                            "state": "production"} for h in range(0, 400, 5)])
    cal = pd.DataFrame([{"scope": "M0", "start": (T0 + pd.Timedelta(hours=8)).isoformat(),
                         "end": (T0 + pd.Timedelta(hours=16)).isoformat(), "kind": kind}])
    every, window = _both(tmp_path, {"equipment": EQ, "states": states, "calendar": cal}, 240, 243,
                          monkeypatch=monkeypatch)
    assert every.elements["pbt"].tolist() == [pbt] * 3
    _same(every, window)
    day = pd.DataFrame([{"scope": "S", "start": (T0 + pd.Timedelta(hours=h)).isoformat(),
                         "end": (T0 + pd.Timedelta(hours=h + 1, minutes=30)).isoformat(), "kind": "shift"}
                        for h in (100, 241)] + [{"scope": "M0", "start": (T0 + pd.Timedelta(hours=241)).isoformat(),
                                                 "end": (T0 + pd.Timedelta(hours=241, minutes=20)).isoformat(),
                                                 "kind": "break"}])
    (tmp_path / "b").mkdir()
    every, window = _both(tmp_path / "b", {"equipment": EQ, "states": states, "calendar": pd.concat([cal, day])},
                          240, 243, monkeypatch=monkeypatch)
    assert every.elements["pbt"].tolist() == [0.0, 2400.0, 1800.0]
    _same(every, window)
