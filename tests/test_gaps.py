"""Gaps are gaps (issue 11): a bucket without any record of a kind has null elements of that kind, not zeros;
counter and meter outages are measured and flagged; coverage counts only buckets where data were expected.

A work centre W, site calendar: shifts 08-16 on Monday to Wednesday 2024-05-06..08, none on Thursday.
M1 produces through every shift; its counter reports on Monday and Wednesday (Tuesday: outage), its meter on
Monday and Tuesday (Wednesday: outage); labour of W and inspections of M1 only on Monday. M2 produces too but
has no counter and no meter. M3 has complete counts and energy.
"""

import numpy as np
import pytest

from zhizao.kpi.coverage import bucket_flags, coverage

H = 3600.0
DAYS = ["2024-05-06", "2024-05-07", "2024-05-08", "2024-05-09"]


def _hours(day):
    return [(f"{day}T{h:02d}:00:00Z", f"{day}T{h + 1:02d}:00:00Z") for h in range(8, 16)]


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from canonical import build
    eq = [{"equipment_id": m, "work_center": "W", "site": "S", "timezone": "UTC"} for m in ("M1", "M2", "M3")]
    cal = [{"scope": "S", "start": f"{d}T08:00:00Z", "end": f"{d}T16:00:00Z", "kind": "shift"} for d in DAYS[:3]]
    states = [{"equipment_id": m, "start": f"{d}T08:00:00Z", "end": f"{d}T16:00:00Z", "state": "production"}
              for m in ("M1", "M2", "M3") for d in DAYS[:3]]
    prod, energy = [], []
    for m, count_days, meter_days in (("M1", DAYS[0:3:2], DAYS[0:2]), ("M3", DAYS[:3], DAYS[:3])):
        for d in count_days:
            prod += [{"equipment_id": m, "start": a, "end": b, "product_id": "P", "produced": 100, "scrap": 2}
                     for a, b in _hours(d)]
        for d in meter_days:
            energy += [{"meter_id": f"E-{m}", "equipment_id": m, "start": a, "end": b, "carrier": "electricity",
                        "quantity": 10.0, "unit": "kWh", "reading": "interval"} for a, b in _hours(d)]
    labour = [{"scope": "W", "start": "2024-05-06T08:00:00Z", "end": "2024-05-06T16:00:00Z",
               "attendance_hours": 24.0, "work_hours": 21.0}]
    quality = [{"equipment_id": "M1", "ts": f"2024-05-06T{h:02d}:30:00Z", "product_id": "P", "unit_id": f"u{h}",
                "result": "pass"} for h in range(8, 12)]
    w = build(tmp_path_factory.mktemp("gaps"), {
        "equipment": eq, "products": [{"product_id": "P", "pri": 30.0}], "calendar": cal, "states": states,
        "production": prod, "energy": energy, "labour": labour, "quality": quality})
    yield w
    w.close()


KW = dict(start="2024-05-06T00:00:00Z", end="2024-05-10T00:00:00Z")


def test_a_bucket_without_records_of_a_kind_has_null_elements_not_zeros(ws):
    el = ws.elements("equipment", period="day", **KW).set_index(["equipment_id", "period_start"]).sort_index()
    m1 = el.loc["M1"]
    assert m1["pq"].isna().tolist() == [False, True, False, True]  # Tuesday: counter outage; Thursday: nothing
    assert m1["energy_kwh"].isna().tolist() == [False, False, True, True]
    assert m1["ip"].isna().tolist() == [False, True, True, True]
    assert m1["pq"].iloc[0] == 800.0 and m1["energy_kwh"].iloc[0] == 80.0 and m1["ip"].iloc[0] == 4.0
    # outages: production time without counts / without energy, only for equipment with a counter / meter
    assert m1["counts_missing"].tolist() == [0.0, 8 * H, 0.0, 0.0]
    assert m1["energy_missing"].tolist() == [0.0, 0.0, 8 * H, 0.0]
    m2 = el.loc["M2"]
    assert m2["pq"].isna().all() and m2["energy_kwh"].isna().all()
    assert (m2["counts_missing"] == 0).all() and (m2["energy_missing"] == 0).all()
    wc = ws.elements("work_center", period="day", **KW).sort_values("period_start")
    assert wc["apat"].isna().tolist() == [False, True, True, True]
    assert wc["pq"].tolist()[:3] == [1600.0, 800.0, 1600.0]  # M3 counts on Tuesday: not null, but see below
    assert wc["counts_missing"].tolist() == [0.0, 8 * H, 0.0, 0.0]  # the group shows its silent member


@pytest.mark.parametrize("period", ["hour", "day"])
def test_outages_are_flagged_in_the_data_quality_table(ws, period):
    dq = ws.data_quality("equipment", period=period, **KW)
    out = dq[dq["check"].isin(["counter_outage", "meter_outage"])]
    got = out.groupby(["equipment_id", "check"])["value"].sum().to_dict()
    assert got == {("M1", "counter_outage"): 8 * H, ("M1", "meter_outage"): 8 * H}
    dqw = ws.data_quality("work_center", period=period, **KW)
    assert dqw.loc[dqw["check"] == "counter_outage", "value"].sum() == 8 * H


def test_kpis_of_a_bucket_without_counts_are_null_with_a_reason(ws):
    k = ws.kpi("equipment", period="day", **KW)
    row = k[(k["equipment_id"] == "M1") & k["period_start"].str.startswith("2024-05-07")].iloc[0]
    assert np.isnan(row["effectiveness"]) and "effectiveness: no data in this period" in row["null_reasons"]
    assert row["availability"] == 1.0


@pytest.mark.parametrize("period", ["hour", "day"])
def test_coverage_counts_only_buckets_where_data_were_expected(ws, period):
    el = ws.elements("equipment", period=period, **KW)
    per = {"hour": 8, "day": 1}[period]  # expected buckets per shift day
    m1, m3 = el[el["equipment_id"] == "M1"], el[el["equipment_id"] == "M3"]
    c = coverage(m1, "production")
    assert (c.expected, c.present, c.complete) == (3 * per, 2 * per, 2 * per)
    assert c.coverage == pytest.approx(2 / 3) and c.outage_seconds == 8 * H
    assert coverage(m1, "energy").coverage == pytest.approx(2 / 3)
    # complete data show 100 %, although Thursday (and the night hours) have no record
    for kind in ("production", "energy"):
        assert coverage(m3, kind).coverage == 1.0 and coverage(m3, kind).expected == 3 * per
    # a group with one silent member is not complete where the member is silent
    wc = ws.elements("work_center", period=period, **KW)
    cw = coverage(wc, "production")
    assert (cw.present, cw.complete) == (3 * per, 2 * per)
    f = bucket_flags(wc, "production")
    assert f["expected"].sum() == 3 * per and (f["outage_seconds"] > 0).sum() == per
