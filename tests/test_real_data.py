"""The bundled real datasets through their mapping files; expected values computed here with plain pandas,
independently of the engine."""


import numpy as np
import pandas as pd
import pytest

import zhizao
from zhizao.demo import DATA, REAL_SOURCES
from zhizao.ingest.mapping import bundled_mapping

STEEL = DATA / "datasets/steel-industry-energy/Steel_industry_data.csv"
GARMENT = DATA / "datasets/garment-productivity/garments_worker_productivity.csv"
SECOM = DATA / "datasets/secom-labels/secom_labels.data"


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    w = zhizao.connect(tmp_path_factory.mktemp("real") / "real.duckdb")
    for table, rel, mapping in REAL_SOURCES:
        r = w.ingest(table, DATA / rel, mapping=bundled_mapping(mapping) if mapping else None)[0]
        # the eemeter daily sample ends with a day whose usage is "nan": not a number, so not data
        assert r.quarantined == (1 if rel.endswith("il-electricity-cdd-hdd-daily.csv.gz") else 0), \
            w.quarantine().head().to_dict("records")
    q = w.quarantine()
    assert list(zip(q["rule"], q["code"], q["record"])) == [("not_finite", "ingest.not_finite", 810)]
    assert q["detail"].iloc[0] == "quantity = nan is not a finite number"
    yield w
    w.close()


def test_steel_monthly_electricity_and_kgce(ws):
    raw = pd.read_csv(STEEL)
    end = pd.to_datetime(raw["date"], format="%d/%m/%Y %H:%M") + pd.to_timedelta((raw["NSM"] == 0) * 1, unit="D")
    start = end - pd.Timedelta(minutes=15)
    expected = raw.groupby(start.dt.to_period("M"))["Usage_kWh"].sum()
    assert raw["Usage_kWh"].sum() == pytest.approx(959_637, abs=1)  # PROVENANCE.md: year total
    got = ws.kpi(level="site", period="month")
    got = got[got["site"] == "DAEWOO-Gwangyang"]
    assert list(got["period_start"]) == [f"2018-{m:02d}-01T00:00:00+09:00" for m in range(1, 13)]
    np.testing.assert_allclose(got["energy_kwh"].to_numpy(), expected.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(got["energy_kgce"].to_numpy(), 0.1229 * expected.to_numpy(), rtol=1e-12)
    assert got["energy_kwh"].iloc[0] == pytest.approx(126_000, rel=0.01)  # "January about 126 MWh"
    # no machine states: time KPIs are unavailable, not zero
    assert got["availability"].isna().all()
    assert got["null_reasons"].str.contains("availability: unavailable, no data for apt, pbt").all()


def test_garment_labour_by_month_and_department(ws):
    g = pd.read_csv(GARMENT)
    g["month"] = pd.to_datetime(g["date"], format="%m/%d/%Y").dt.to_period("M")
    g["dept"] = g["department"].str.strip().replace({"sweing": "sewing"})
    g["apat"] = g["no_of_workers"] * 8 + g["over_time"] / 60
    g["apwt"] = g["apat"] - g["idle_time"] * g["idle_men"] / 60
    g["earned"] = g["actual_productivity"] * g["apat"]
    m = g.groupby("month")[["apat", "apwt", "earned"]].sum()
    site = ws.kpi(level="site", period="month")
    site = site[site["site"] == "garment-factory"].reset_index(drop=True)
    assert list(site["period_start"]) == ["2015-01-01T00:00:00+06:00", "2015-02-01T00:00:00+06:00",
                                          "2015-03-01T00:00:00+06:00"]
    np.testing.assert_allclose(site["apat"], m["apat"], rtol=1e-12)
    np.testing.assert_allclose(site["worker_efficiency"], m["apwt"] / m["apat"], rtol=1e-12)
    np.testing.assert_allclose(site["labour_productivity"], m["earned"] / m["apat"], rtol=1e-12)
    d = g.groupby(["dept", "month"])[["apat", "earned"]].sum().reset_index()
    area = ws.kpi(level="area", period="month")
    area = area[area["area"].isin(["sewing", "finishing"])].sort_values(["area", "period_start"])
    d = d.sort_values(["dept", "month"])
    np.testing.assert_allclose(area["labour_productivity"], d["earned"] / d["apat"], rtol=1e-12)


def test_secom_first_pass_yield_by_month_and_week(ws):
    s = pd.read_csv(SECOM, sep=" ", header=None, names=["label", "ts"])
    s["ts"] = pd.to_datetime(s["ts"], format="%d/%m/%Y %H:%M:%S")
    assert len(s) == 1567 and (s["label"] == 1).sum() == 104
    m = s.groupby(s["ts"].dt.to_period("M"))["label"].agg(ip="size", fail=lambda x: (x == 1).sum())
    got = ws.kpi(level="equipment", period="month")
    got = got[got["equipment_id"] == "SECOM-line"].reset_index(drop=True)
    np.testing.assert_array_equal(got["ip"], m["ip"])
    np.testing.assert_allclose(got["first_pass_yield"], 1 - m["fail"] / m["ip"], rtol=1e-12)
    np.testing.assert_allclose(got["defect_rate"], m["fail"] / m["ip"], rtol=1e-12)
    # weeks start on Monday: the first week's fail rate is about 23 % (PROVENANCE.md)
    w = ws.kpi(level="equipment", period="week")
    w = w[w["equipment_id"] == "SECOM-line"]
    assert w["period_start"].iloc[0] == "2008-07-14T00:00:00+00:00"
    assert w["defect_rate"].iloc[0] == pytest.approx(0.23, abs=0.03)
