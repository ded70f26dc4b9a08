"""The default range read now (:class:`zhizao.kpi.buckets.ReadingTime`): a day still running ends at the reading
time, not at midnight, so the hours of today's shift that have not happened are neither planned busy time nor
unaccounted (docs/reference/iso22400.md, "Query range"). Before this, a plant's dashboard read OEE 18-27 % at
10:00 however well it ran.

One machine on a 08:00-16:00 UTC shift: production 08:00-10:00, a breakdown 10:00-10:30 (the latest record).
"""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest
from typer.testing import CliRunner

import zhizao
from canonical import build
from zhizao.api import reading_end
from zhizao.cli.main import app
from zhizao.kpi.buckets import ReadingTime, utc_ms

DAY = "2026-12-05"


def _t(hhmm: str, day: str = DAY) -> str:
    return f"{day}T{hhmm}:00Z"


def _at(hhmm: str, day: str = DAY) -> ReadingTime:
    return ReadingTime(utc_ms(_t(hhmm, day)))


@pytest.fixture
def ws(tmp_path):
    w = build(tmp_path, {
        "equipment": [{"equipment_id": "M1", "site": "S", "timezone": "UTC"}],
        "calendar": [{"scope": "M1", "start": _t("08:00", d), "end": _t("16:00", d), "kind": "shift"}
                     for d in ("2026-12-04", DAY)],
        "states": [{"equipment_id": "M1", "start": _t("08:00", "2026-12-04"), "end": _t("16:00", "2026-12-04"),
                    "state": "RUN", "category": "production"},
                   {"equipment_id": "M1", "start": _t("08:00"), "end": _t("10:00"), "state": "RUN",
                    "category": "production"},
                   {"equipment_id": "M1", "start": _t("10:00"), "end": _t("10:30"), "state": "BD",
                    "category": "unplanned_downtime"}]})
    yield w
    w.close()


def _row(ws, end, period="all"):
    df = ws.kpi("equipment", period, None, end)
    return df.iloc[-1]


def test_the_running_day_ends_at_the_reading_time(ws):
    r = _row(ws, _at("10:37"))
    assert pd.Timestamp(r["period_end"]) == pd.Timestamp(_t("10:37"))
    assert pd.Timestamp(r["period_start"]) == pd.Timestamp(_t("00:00", "2026-12-04"))
    # by hand: yesterday 8 h of shift, today 08:00-10:37 = 9,420 s; apt 8 h + 2 h; ttr 30 min; unaccounted 7 min
    assert r["pbt"] == 8 * 3600 + 9420
    assert r["apt"] == 10 * 3600
    assert r["ttr"] == 1800
    assert r["unaccounted"] == 420
    assert r["availability"] == pytest.approx(36000 / 38220)


def test_without_a_reading_time_the_future_counts_as_unaccounted(ws):
    # the old default, kept for an explicit end and for data older than a bucket: today's 08:00-16:00 whole
    r = _row(ws, None)
    assert pd.Timestamp(r["period_end"]) == pd.Timestamp(_t("00:00", "2026-12-06"))
    assert r["pbt"] == 16 * 3600
    assert r["unaccounted"] == 8 * 3600 - 9000
    assert r["availability"] == pytest.approx(10 / 16)


def test_a_silent_plant_accrues_unaccounted_time_until_the_reading_time(ws):
    # the last record ended at 10:30; read at 14:00 the 3.5 silent hours of the shift are unaccounted
    r = _row(ws, _at("14:00"))
    assert r["pbt"] == 8 * 3600 + 6 * 3600
    assert r["unaccounted"] == 6 * 3600 - 9000


def test_only_the_last_bucket_is_cut(ws):
    df = ws.kpi("equipment", "day", None, _at("10:37"))
    assert list(df["pbt"]) == [8 * 3600, 9420]
    assert pd.Timestamp(df["period_end"].iloc[0]) == pd.Timestamp(_t("00:00"))
    assert pd.Timestamp(df["period_end"].iloc[1]) == pd.Timestamp(_t("10:37"))


@pytest.mark.parametrize("hhmm,day", [("03:00", "2026-12-06"), ("10:29", DAY), ("07:00", "2026-12-04")])
def test_a_reading_time_after_the_bucket_or_before_the_latest_record_cuts_nothing(ws, hhmm, day):
    # after midnight: the day is over; before 10:30 (a clock behind the data): no record is cut off
    pd.testing.assert_series_equal(_row(ws, _at(hhmm, day)), _row(ws, None))


def test_an_explicit_end_is_never_cut(ws):
    r = ws.kpi("equipment", "all", _t("00:00"), _t("00:00", "2026-12-06")).iloc[0]
    assert r["pbt"] == 8 * 3600


@pytest.mark.parametrize("period", ["hour", "shift", "week", "month"])
def test_every_period_ends_at_the_reading_time(ws, period):
    df = ws.kpi("equipment", period, None, _at("10:37"))
    assert pd.Timestamp(df["period_end"].iloc[-1]) == pd.Timestamp(_t("10:37"))
    assert df["pbt"].sum() == 8 * 3600 + 9420


def test_the_reading_time_applies_only_to_data_within_a_month(ws):
    assert ws.latest_record() == utc_ms(_t("10:30"))
    assert ws.reading_time(_at("10:37")) == _at("10:37")
    assert ws.reading_time(_at("10:37", "2027-01-07")) is None  # 33 days later: no bucket reaches now
    assert reading_end(None, _at("10:37")) is None  # an empty store
    assert str(_at("10:37")) == "reading time 2026-12-05T10:37:00Z"


def test_reading_time_now_is_the_current_minute():
    before = int(time.time() * 1000) // 60000 * 60000
    r = ReadingTime.now()
    assert r.ms % 60000 == 0 and before <= r.ms <= before + 60000


# -- the command line and the server read the default range now ---------------------------------------------------
def _live_store(tmp_path):
    """A machine that ran from 2 h ago until 10 min ago, under a shift from 2 h ago to 5 h ahead (the shift starts
    with the data: the default range starts at the local midnight before the first record)."""
    now = pd.Timestamp.now(tz="UTC").floor("min")
    iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    h = pd.Timedelta(hours=1)
    w = build(tmp_path, {
        "equipment": [{"equipment_id": "M1", "site": "S", "enterprise": "E", "timezone": "UTC"}],
        "calendar": [{"scope": "M1", "start": iso(now - 2 * h), "end": iso(now + 5 * h), "kind": "shift"}],
        "states": [{"equipment_id": "M1", "start": iso(now - 2 * h), "end": iso(now - pd.Timedelta(minutes=10)),
                    "state": "RUN", "category": "production"}]}, db="live.duckdb")
    w.close()
    return tmp_path / "live.duckdb", now


def _check_cut_at_now(row, shift_start):
    end = pd.Timestamp(row["period_end"])
    now = pd.Timestamp.now(tz="UTC").floor("min")
    assert now - pd.Timedelta(minutes=2) <= end <= now  # the reading minute, not the end of today or the shift
    assert row["pbt"] == (end - shift_start).total_seconds()
    assert row["unaccounted"] == row["pbt"] - 6600  # the 10 min since the data (and the minutes into the next)


def test_zhizao_kpi_without_a_range_reads_now(tmp_path):
    db, now = _live_store(tmp_path)
    res = CliRunner().invoke(app, ["kpi", "--db", str(db), "--period", "all", "--format", "json"])
    assert res.exit_code == 0, res.output
    _check_cut_at_now(json.loads(res.stdout)[0], now - pd.Timedelta(hours=2))


def test_the_api_reads_the_default_range_now(tmp_path):
    from test_server_support import bearer, login, make_client
    from zhizao.server import accounts

    db, now = _live_store(tmp_path)
    with zhizao.connect(db) as w:
        accounts.ensure_tables(w.con)
        accounts.add_user(w.con, "u", "correct horse battery", "enterprise", "E", None, (), None)
    with make_client(db) as c:
        h = bearer(login(c, "u"))
        r = c.get("/api/v1/kpi", params={"level": "equipment", "period": "all"}, headers=h)
        assert r.status_code == 200, r.text
        _check_cut_at_now(r.json()[0], now - pd.Timedelta(hours=2))
