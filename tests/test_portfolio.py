"""Portfolio: programme statistics, recognition checks, bulletins and their command line, on a hand-made store.

Verification results are inserted by hand into ``verifications`` (as the verify stage stores them), so every
expected value below is computed by hand from the inserted numbers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from babel.messages.extract import extract
from babel.messages.pofile import read_po
from jinja2.ext import babel_extract
from typer.testing import CliRunner

import zhizao
from canonical import write_tables
from zhizao.errors import InputError, NotFound
from zhizao.portfolio import bulletin as bulletin_module
from zhizao.portfolio import programme_statistics, recognition_checks, render_bulletin
from zhizao.portfolio import stats as stats_module
from zhizao.portfolio.stats import bootstrap_mean_ci, choose_weights
from zhizao.verify.result import VerificationResult

PORTFOLIO_DIR = Path(bulletin_module.__file__).parent
LOCALE_DIR = PORTFOLIO_DIR.parent / "locale"
EXTERNAL = re.compile(r"""(?:\b(?:src|href|xlink:href|srcset|action|data)\s*=\s*["']?\s*(?:https?:)?//)"""
                      r"""|(?:url\(\s*["']?\s*(?:https?:)?//)|(?:@import)""", re.I)
SH = "Asia/Shanghai"

TABLES = {
    "equipment": [
        {"equipment_id": "M1", "work_center": "WC1", "site": "S1", "enterprise": "E1", "timezone": SH, "digital": True},
        {"equipment_id": "M2", "work_center": "WC1", "site": "S1", "enterprise": "E1", "timezone": SH, "digital": True},
        {"equipment_id": "M3", "work_center": "WC2", "site": "S1", "enterprise": "E1", "timezone": SH,
         "digital": False},
        {"equipment_id": "M4", "work_center": "WC2", "site": "S1", "enterprise": "E1", "timezone": SH, "digital": None},
        {"equipment_id": "N1", "work_center": "WN", "site": "S2", "enterprise": "E2", "timezone": SH, "digital": True},
    ],
    "enterprises": [
        {"enterprise_id": "E1", "name": "Alpha", "industry": "汽车制造业", "district": "Bishan", "park": "WSC"},
        {"enterprise_id": "E2", "name": "Beta", "industry": "C39", "district": "Bishan", "park": "WSC"},
        {"enterprise_id": "E3", "name": "Gamma", "industry": "C39", "district": "Jiulongpo",
         "park": "Other"},
    ],
    "projects": [
        {"project_id": "P1", "enterprise_id": "E1", "type": "digital_equipment", "scope": "WC1",
         "start": "2021-03-01T00:00:00", "commissioning_end": "2021-09-01T00:00:00", "investment": 10e6,
         "declared_efficiency": 0.5},
        {"project_id": "P2", "enterprise_id": "E1", "type": "system_integration", "scope": "S1",
         "start": "2022-05-01T00:00:00", "commissioning_end": "2022-12-01T00:00:00", "investment": 40e6,
         "declared_efficiency": 0.3, "declared_operating_cost": 0.2},
        {"project_id": "P3", "enterprise_id": "E2", "type": "industrial_internet", "scope": "E2",
         "start": "2022-07-01T00:00:00", "commissioning_end": "2022-10-01T00:00:00", "investment": 20e6},
        {"project_id": "P4", "enterprise_id": "E2", "type": "new_mode", "scope": "E2",
         "start": "2023-02-01T00:00:00", "commissioning_end": "2023-06-01T00:00:00", "investment": 5e6,
         "declared_defect_rate": 0.4},
        {"project_id": "P5", "enterprise_id": "E3", "type": "digital_equipment",
         "start": "2022-01-01T00:00:00", "commissioning_end": "2022-06-01T00:00:00", "investment": 30e6,
         "declared_efficiency": 0.2},
    ],
    "designations": [
        {"enterprise_id": "E1", "project_id": "P1", "designation": "demonstration_project", "level": "municipal",
         "date": "2021-12-01T00:00:00"},
        {"enterprise_id": "E2", "project_id": "P3", "designation": "demonstration_project", "level": "district",
         "date": "2022-12-01T00:00:00"},
        {"enterprise_id": "E3", "project_id": "P5", "designation": "demonstration_project", "level": "municipal",
         "date": "2022-06-01T00:00:00"},
        {"enterprise_id": "E1", "scope": "WC1", "designation": "digital_workshop", "level": "municipal",
         "date": "2022-06-01T00:00:00"},
        {"enterprise_id": "E1", "scope": "WC2", "designation": "digital_workshop", "level": "district",
         "date": "2022-09-01T00:00:00"},
        {"enterprise_id": "E1", "scope": "WC2", "designation": "digital_workshop", "level": "municipal",
         "date": "2023-03-01T00:00:00"},
        {"enterprise_id": "E1", "scope": "S1", "designation": "smart_factory", "level": "municipal",
         "date": "2023-06-01T00:00:00"},
    ],
    # activity in January 2023 (local): M1 states, M2 production, M3 energy by scope; M4 only in 2022
    "states": [
        {"equipment_id": "M1", "start": "2023-01-05T08:00:00", "end": "2023-01-05T09:00:00", "state": "production"},
        {"equipment_id": "M4", "start": "2022-12-05T08:00:00", "end": "2022-12-05T09:00:00", "state": "production"},
    ],
    "production": [
        {"equipment_id": "M2", "start": "2023-01-10T08:00:00", "end": "2023-01-10T09:00:00", "produced": 10},
    ],
    "energy": [
        {"meter_id": "g3", "scope": "M3", "start": "2023-01-15T00:00:00", "end": "2023-01-16T00:00:00",
         "carrier": "electricity", "quantity": 5.0, "unit": "kWh"},
    ],
}
ORDER = ["equipment", "enterprises", "projects", "designations", "states", "production", "energy"]

# (project, indicator, improvement, ci_low, ci_high, coverage, computed_at); later rows supersede earlier ones
RESULTS = [
    ("P1", "production_efficiency", 0.70, 0.60, 0.80, {"output": 1000.0}, "2024-01-01T00:00:00Z"),
    ("P2", "production_efficiency", 0.50, 0.40, 0.60, {"output": 3000.0}, "2024-01-01T00:00:00Z"),
    ("P3", "production_efficiency", 0.90, 0.80, 1.00, {"output": 1000.0}, "2024-01-01T00:00:00Z"),
    ("P3", "production_efficiency", 0.594, 0.50, 0.70, {"output": 1000.0}, "2024-02-01T00:00:00Z"),
    ("P1", "operating_cost", 0.10, 0.05, 0.15, {}, "2024-01-01T00:00:00Z"),
    ("P2", "operating_cost", 0.20, 0.10, 0.30, {}, "2024-01-01T00:00:00Z"),
    ("P1", "defect_rate", 0.30, 0.20, 0.40, {}, "2024-01-01T00:00:00Z"),
    ("P1", "defect_rate", None, None, None, {}, "2024-03-01T00:00:00Z"),  # latest: not verified
    ("P5", "unit_energy", 0.25, 0.20, 0.30, {"output": 10.0}, "2024-01-01T00:00:00Z"),
]


def insert_result(ws, pid, ind, imp, lo, hi, coverage, at, checks=()):
    """A result as the verify stage stores it: verdict ``verified`` when every check passed (here: no failed
    check given), ``indicative`` with the failed ``checks``."""
    r = VerificationResult(
        indicator=ind, definition="test", scope=pid, baseline_period=("2021-01-01", "2022-01-01"),
        reporting_period=("2023-01-01", "2024-01-01"), baseline=1.0, reporting=None, adjusted_baseline=1.0,
        change=None if imp is None else (imp if ind == "production_efficiency" else -imp), improvement=imp,
        ci_low=lo, ci_high=hi, confidence=0.9, method="hand-made", coverage=coverage, project_id=pid,
        checks=list(checks)).judge()
    ws.con.execute("INSERT INTO verifications (project_id, indicator, scope, result, computed_at) "
                   "VALUES (?, ?, ?, ?, ?)", [pid, ind, pid, r.to_json(), at])


def build_store(path: Path, tables=TABLES, results=RESULTS) -> zhizao.Workspace:
    path.parent.mkdir(parents=True, exist_ok=True)
    paths = write_tables(path.parent, tables)
    ws = zhizao.connect(path)
    for name in ORDER:
        if name in paths:
            for rep in ws.ingest(name, paths[name]):
                assert rep.quarantined == 0, (str(rep), ws.quarantine().to_dict("records"))
    for row in results:
        insert_result(ws, *row)
    return ws


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """One store for the read-only tests of this module."""
    w = build_store(tmp_path_factory.mktemp("portfolio") / "p.duckdb")
    yield w
    w.close()


def _by(df, key):
    return {k: v for k, v in zip(df[key], df["n_projects"])}


def _avg(s, ind, basis):
    a = s["averages"]
    return a[(a["indicator"] == ind) & (a["basis"] == basis)].iloc[0]


# -- programme statistics

def test_counts_by_type_designation_district_industry_year(ws):
    s = programme_statistics(ws, n_boot=200)
    t = s["totals"]
    assert t["n_projects"] == 5 and t["n_enterprises"] == 3
    assert (t["n_demonstration_projects"], t["n_smart_factories"], t["n_digital_workshops"]) == (3, 1, 2)
    assert t["project_ids"] == ["P1", "P2", "P3", "P4", "P5"]
    assert t["verified_project_ids"] == ["P1", "P2", "P3", "P5"]
    assert _by(s["by_type"], "type") == {"digital_equipment": 2, "system_integration": 1,
                                         "industrial_internet": 1, "new_mode": 1}
    assert s["by_type"].set_index("type").loc["digital_equipment", "project_ids"] == ["P1", "P5"]
    assert _by(s["by_district"], "district") == {"bishan": 4, "jiulongpo": 1}  # codes of the district vocabulary
    assert _by(s["by_industry"], "industry") == {"36": 2, "39": 3}  # GB/T 4754 divisions, given by name or C39
    assert _by(s["by_year"], "year") == {2021: 1, 2022: 3, 2023: 1}
    lvl = {(r.designation, r.level): r.n for r in s["by_designation_level"].itertuples()}
    assert lvl == {("demonstration_project", "municipal"): 2, ("demonstration_project", "district"): 1,
                   ("digital_workshop", "municipal"): 2, ("digital_workshop", "district"): 1,
                   ("smart_factory", "municipal"): 1}
    dw = s["by_designation"].set_index("designation").loc["digital_workshop"]
    assert dw["units"] == ["E1/WC1", "E1/WC2"]  # WC2 designated at two levels counts once
    demo = s["by_designation"].set_index("designation").loc["demonstration_project"]
    assert demo["project_ids"] == ["P1", "P3", "P5"]


def test_filters_park_district_and_local_time_window(ws):
    s = programme_statistics(ws, park="WSC", n_boot=100)
    assert s["totals"]["project_ids"] == ["P1", "P2", "P3", "P4"]
    assert s["totals"]["n_demonstration_projects"] == 2 and s["totals"]["n_smart_factories"] == 1
    s = programme_statistics(ws, district="Jiulongpo", n_boot=100)
    assert s["totals"]["project_ids"] == ["P5"] and s["totals"]["n_digital_workshops"] == 0
    s = programme_statistics(ws, start="2022-01-01", end="2023-01-01", n_boot=100)
    assert s["totals"]["project_ids"] == ["P2", "P3", "P5"]
    # enterprise designations by date: both workshops (2022-06, 2022-09) but not the 2023 smart factory
    assert (s["totals"]["n_digital_workshops"], s["totals"]["n_smart_factories"]) == (2, 0)
    assert s["totals"]["n_demonstration_projects"] == 2  # P3, P5 (P1 is not selected)
    # P4 starts 2023-02-01 00:00 Shanghai = 2023-01-31T16:00Z: a naive bound is local time
    assert programme_statistics(ws, start="2023-01-01", end="2023-02-01", n_boot=10)["totals"]["n_projects"] == 0
    assert programme_statistics(ws, start="2023-01-01", end="2023-02-01T00:00:00Z",
                                n_boot=10)["totals"]["project_ids"] == ["P4"]
    # an unknown value is an error naming the known ones, never a silent empty selection
    with pytest.raises(InputError, match="unknown park nowhere; known: Other, WSC"):
        programme_statistics(ws, park="nowhere", n_boot=10)
    with pytest.raises(InputError, match="unknown district Atlantis"):
        programme_statistics(ws, district="Bishan,Atlantis", n_boot=10)
    # several values: a list or comma-separated, codes or labels
    assert programme_statistics(ws, park="WSC,Other", n_boot=10)["totals"]["n_projects"] == 5
    assert programme_statistics(ws, district=["璧山区", "jiulongpo"], n_boot=10)["totals"]["n_projects"] == 5
    assert programme_statistics(ws, year="2022,2023", n_boot=10)["totals"]["project_ids"] == ["P2", "P3", "P4",
                                                                                             "P5"]


def test_verified_declared_and_neither(ws):
    cov = programme_statistics(ws, n_boot=100)["coverage"].set_index("indicator")
    pe = cov.loc["production_efficiency"]
    assert (pe.n_verified, pe.n_declared_only, pe.n_neither, pe.n_declared) == (3, 1, 1, 3)
    assert pe.verified_ids == ["P1", "P2", "P3"] and pe.declared_only_ids == ["P5"] and pe.neither_ids == ["P4"]
    dr = cov.loc["defect_rate"]  # P1's latest result has no improvement: not verified
    assert (dr.n_verified, dr.n_declared_only, dr.n_neither) == (0, 1, 4) and dr.declared_only_ids == ["P4"]
    oc = cov.loc["operating_cost"]  # P2 is verified and declared: verified
    assert (oc.n_verified, oc.n_declared_only, oc.n_neither) == (2, 0, 3)
    assert cov.loc["development_cycle", "n_neither"] == 5


def test_means_weighted_means_and_intervals(ws):
    s = programme_statistics(ws, n_boot=500, seed=3)
    pe = _avg(s, "production_efficiency", "verified")
    assert pe["n"] == 3 and pe["project_ids"] == ["P1", "P2", "P3"]
    assert pe["mean"] == pytest.approx((0.70 + 0.50 + 0.594) / 3) == pytest.approx(0.598)  # latest P3 counts
    assert pe["weight_basis"] == "output"
    assert pe["weighted_mean"] == pytest.approx((0.70 * 1000 + 0.50 * 3000 + 0.594 * 1000) / 5000)
    assert pe["median"] == pytest.approx(0.594) and pe["min"] == 0.5 and pe["max"] == 0.7
    assert pe["q1"] == pytest.approx(np.quantile([0.5, 0.594, 0.7], 0.25))
    assert 0.5 <= pe["ci_low"] < pe["mean"] < pe["ci_high"] <= 0.7
    # bootstrap over projects, reproducible
    assert bootstrap_mean_ci([0.7, 0.5, 0.594], 0.9, 500, 3) == (pe["ci_low"], pe["ci_high"])
    oc = _avg(s, "operating_cost", "verified")  # no output in the results: weighted by investment
    assert oc["mean"] == pytest.approx(0.15) and oc["weight_basis"] == "investment"
    assert oc["weighted_mean"] == pytest.approx((0.10 * 10 + 0.20 * 40) / 50)
    ue = _avg(s, "unit_energy", "verified")
    assert ue["n"] == 1 and ue["mean"] == 0.25 and pd.isna(ue["ci_low"])  # one project: no interval
    ped = _avg(s, "production_efficiency", "declared")
    assert ped["n"] == 3 and ped["mean"] == pytest.approx((0.5 + 0.3 + 0.2) / 3)
    assert ped["project_ids"] == ["P1", "P2", "P5"]
    assert pd.isna(_avg(s, "development_cycle", "verified")["mean"])
    rk = s["rankings"]
    assert rk[rk["indicator"] == "production_efficiency"]["project_id"].tolist() == ["P1", "P3", "P2"]
    # every average can be recomputed from the per-project values
    pv = s["project_values"]
    v = pv[(pv["indicator"] == "production_efficiency") & (pv["status"] == "verified")]
    assert v["improvement"].mean() == pytest.approx(pe["mean"])


def test_project_values_one_row_per_project_and_indicator_with_its_status():
    from zhizao.portfolio.registry import DECLARED_COLUMNS
    from zhizao.portfolio.stats import PROGRAMME_INDICATORS, project_values

    prj = pd.DataFrame({"project_id": ["A", "B"], "enterprise_id": ["E1", "E2"], "enterprise": ["甲", None],
                        "type": ["smart_factory", "digital_workshop"], "investment": [1.5e6, None],
                        **{c: [None] * 2 for c in DECLARED_COLUMNS.values()}})
    prj.loc[0, "declared_efficiency"] = 0.2
    prj.loc[1, "declared_unit_energy"] = 0.1
    at = pd.Timestamp("2026-12-01T00:00:00Z")
    ver = pd.DataFrame([
        # verified: a value and every check passed
        {"project_id": "A", "indicator": "production_efficiency", "improvement": 0.25, "ci_low": 0.2,
         "ci_high": 0.3, "confidence": 0.9, "method": "m", "output": 100.0, "computed_at": at, "warnings": ["w"],
         "result": {"verdict": "verified", "flags": []}},
        # indicative: a value, a check failed
        {"project_id": "A", "indicator": "unit_energy", "improvement": 0.1, "ci_low": 0.0, "ci_high": 0.2,
         "confidence": 0.9, "method": "m", "output": None, "computed_at": at, "warnings": [],
         "result": {"verdict": "indicative", "flags": ["verify.check.level_shift"]}},
        # a stored result without a value (refused): not shown; B declared unit energy
        {"project_id": "B", "indicator": "unit_energy", "improvement": None, "ci_low": None, "ci_high": None,
         "confidence": None, "method": None, "output": None, "computed_at": at, "warnings": [],
         "result": {"verdict": "refused", "flags": ["verify.check.interval"]}},
        # a project not in the selection: left out
        {"project_id": "Z", "indicator": "unit_energy", "improvement": 0.5, "ci_low": 0.4, "ci_high": 0.6,
         "confidence": 0.9, "method": "m", "output": None, "computed_at": at, "warnings": [],
         "result": {"verdict": "verified", "flags": []}}])
    pv = project_values(prj, ver)
    assert len(pv) == 2 * len(PROGRAMME_INDICATORS)
    assert pv["project_id"].tolist() == ["A"] * 5 + ["B"] * 5
    assert pv["indicator"].tolist() == list(PROGRAMME_INDICATORS) * 2
    got = pv.set_index(["project_id", "indicator"])
    assert got.loc[("A", "production_efficiency"), "status"] == "verified"
    assert got.loc[("A", "production_efficiency"), "improvement"] == 0.25
    assert got.loc[("A", "production_efficiency"), "declared"] == 0.2
    assert got.loc[("A", "production_efficiency"), "warnings"] == ["w"]
    assert got.loc[("A", "unit_energy"), "status"] == "indicative"
    assert got.loc[("A", "unit_energy"), "flags"] == ["verify.check.level_shift"]
    assert got.loc[("B", "unit_energy"), "status"] == "declared"
    assert got.loc[("B", "unit_energy"), "verdict"] == "refused"
    assert pd.isna(got.loc[("B", "unit_energy"), "improvement"])
    assert got.loc[("B", "unit_energy"), "flags"] == ["verify.check.interval"]
    assert got.loc[("A", "defect_rate"), "status"] == "neither" and got.loc[("A", "defect_rate"), "flags"] == []
    assert got.loc[("A", "defect_rate"), "investment"] == 1.5e6 and pd.isna(got.loc[("B", "defect_rate"),
                                                                                     "investment"])
    # every row has a list of its own (a change to one row's flags changes no other row)
    assert len({id(x) for x in pv["flags"]}) == len(pv)
    # no project: the same columns, text columns of objects and numbers of floats
    empty = project_values(prj.iloc[:0], ver)
    assert list(empty.columns) == list(pv.columns) and empty.empty
    assert empty["project_id"].dtype == object and empty["improvement"].dtype == float


def test_weights_and_bootstrap_edge_cases():
    idx = ["a", "b"]
    w, basis = choose_weights(pd.Series([1.0, None], idx), pd.Series([5.0, 6.0], idx))
    assert basis == "investment" and list(w) == [5.0, 6.0]
    w, basis = choose_weights(pd.Series([None, None], idx), pd.Series([None, None], idx))
    assert basis is None and w.empty
    assert bootstrap_mean_ci([0.3]) == (None, None)
    assert bootstrap_mean_ci([0.2, 0.2, 0.2]) == pytest.approx((0.2, 0.2))
    with pytest.raises(InputError):
        bootstrap_mean_ci([1, 2], confidence=1.5)


# -- recognition

def _rows(df):
    return df.set_index("criterion")


def test_digital_workshop_checks(ws):
    r = _rows(recognition_checks(ws, "E1", "digital_workshop", period=("2023-01-01", "2023-02-01")))
    assert r.loc["digital_equipment_share", "value"] == pytest.approx(2 / 4)  # M4 unknown counts as not digital
    assert r.loc["digital_equipment_share", "passed"] is True  # >= 50 %
    assert r.loc["data_upload_rate", "value"] == pytest.approx(3 / 4)  # M4 reported only in 2022
    assert r.loc["data_upload_rate", "passed"] is False
    assert r.loc["data_upload_rate", "evidence"] == ["M1", "M2", "M3"]
    assert set(r.loc[r["source"] == "data"].index) == {"digital_equipment_share", "data_upload_rate"}
    declared = r[r["source"] == "declaration to be confirmed"]
    assert {"mes_coverage", "system_integration", "equipment_networked"} <= set(declared.index)
    assert declared["passed"].isna().all()
    wc1 = _rows(recognition_checks(ws, "E1", "digital_workshop", ("2023-01-01", "2023-02-01"), scope="WC1"))
    assert wc1.loc["digital_equipment_share", "value"] == 1.0 and wc1.loc["data_upload_rate", "value"] == 1.0
    # outside the period nobody reported
    later = _rows(recognition_checks(ws, "E1", "digital_workshop", ("2023-06-01", "2023-07-01")))
    assert later.loc["data_upload_rate", "value"] == 0.0
    # the basis states the period, also an open one, in the page's language
    basis = r.loc["data_upload_rate", "basis"]
    assert "records in [2023-01-01, 2023-02-01); without data: M4" in basis.text("en")
    assert "在2023年1月1日至2023年1月31日期间上传了" in basis.text("zh")  # glossary: dates written out
    for period, en, zh in [((None, None), "records at any time", "在任何时间上传了"),
                           (("2023-01-01", None), "records from 2023-01-01 on", "自2023年1月1日起上传了"),
                           ((None, "2023-02-01"), "records before 2023-02-01", "在2023年2月1日之前上传了")]:
        b = _rows(recognition_checks(ws, "E1", "digital_workshop", period)).loc["data_upload_rate", "basis"]
        assert en in b.text("en") and zh in b.text("zh") and "inf" not in b.text("en")


def test_smart_factory_checks(ws):
    r = _rows(recognition_checks(ws, "E1", "smart_factory", period=("2023-01-01", "2024-01-01")))
    assert r.loc["digital_equipment_share", "passed"] is False  # 50 % < 65 %
    assert r.loc["digital_workshops", "value"] == 2 and r.loc["digital_workshops", "passed"] is True
    assert r.loc["production_efficiency_change", "value"] == pytest.approx((0.7 + 0.5) / 2)
    assert r.loc["production_efficiency_change", "passed"] is True
    assert r.loc["production_efficiency_change", "evidence"] == ["P1", "P2"]
    assert r.loc["operating_cost_change", "value"] == pytest.approx(-(0.1 + 0.2) / 2)
    assert r.loc["operating_cost_change", "passed"] is True  # -15 % <= -15 %
    dt = r.loc["design_tool_adoption"]
    assert dt["source"] == "declaration to be confirmed" and dt["threshold"] == 0.8 and dt["passed"] is None
    # workshops recognised after the period do not count
    early = _rows(recognition_checks(ws, "E1", "smart_factory", period=("2022-01-01", "2022-07-01")))
    assert early.loc["digital_workshops", "value"] == 1 and early.loc["digital_workshops", "passed"] is False
    # no equipment, no verified result: undecidable from data, declared value shown as a declaration
    e3 = _rows(recognition_checks(ws, "E3", "smart_factory", period=(None, None)))
    assert e3.loc["digital_equipment_share", "value"] is None and e3.loc["digital_equipment_share", "passed"] is None
    eff = e3.loc["production_efficiency_change"]
    assert eff["value"] == pytest.approx(0.2) and eff["passed"] is None
    assert eff["source"] == "declaration to be confirmed"
    with pytest.raises(InputError, match="designation"):
        recognition_checks(ws, "E1", "smart_plant")
    with pytest.raises(NotFound, match="enterprise"):
        recognition_checks(ws, "E9", "smart_factory")


def test_indicative_results_are_shown_apart_and_never_pass_a_criterion(tmp_path):
    # P1's and P2's efficiency results failed a check (an extrapolation, a level shift): they are indicative,
    # not verified; the programme's verified mean leaves them out and shows them apart, and the smart-factory
    # efficiency criterion is not passed on them
    from zhizao.verify.checks import EXTRAPOLATION, LEVEL_SHIFT, Check

    flagged = [Check(False, EXTRAPOLATION(driver="output", mean="2", low="0", high="1", baseline_mean="0.5",
                                          sd="0.1", outside="100 %"))]
    shift = [Check(False, LEVEL_SHIFT(size="3", date="2022-05-01", p="0.001"))]
    results = [r for r in RESULTS if not (r[1] == "production_efficiency" and r[0] in ("P1", "P2"))]
    ws = build_store(tmp_path / "i.duckdb", results=results)
    insert_result(ws, "P1", "production_efficiency", 0.70, 0.60, 0.80, {"output": 1000.0},
                  "2024-01-01T00:00:00Z", flagged)
    insert_result(ws, "P2", "production_efficiency", 0.50, 0.40, 0.60, {"output": 3000.0},
                  "2024-01-01T00:00:00Z", shift)
    s = programme_statistics(ws, n_boot=200)
    pv = s["project_values"].set_index(["project_id", "indicator"])
    assert pv.loc[("P1", "production_efficiency"), "status"] == "indicative"
    assert pv.loc[("P1", "production_efficiency"), "flags"] == ["verify.check.extrapolation"]
    assert pv.loc[("P3", "production_efficiency"), "status"] == "verified"
    cov = s["coverage"].set_index("indicator").loc["production_efficiency"]
    assert (cov["n_verified"], cov["n_indicative"]) == (1, 2) and cov["indicative_ids"] == ["P1", "P2"]
    av = s["averages"].set_index(["indicator", "basis"]).loc[("production_efficiency", "verified")]
    assert av["n"] == 1 and av["mean"] == pytest.approx(0.594)
    ind = s["averages_indicative"].set_index("indicator").loc["production_efficiency"]
    assert ind["n"] == 2 and ind["mean"] == pytest.approx(0.6) and ind["project_ids"] == ["P1", "P2"]
    assert s["totals"]["indicative_project_ids"] == ["P1", "P2"]
    r = _rows(recognition_checks(ws, "E1", "smart_factory", period=("2023-01-01", "2024-01-01")))
    eff = r.loc["production_efficiency_change"]
    assert eff["passed"] is None and eff["value"] == pytest.approx(0.6) and "indicative" in eff["basis"].text("en")
    assert eff["verdict"] == "indicative"  # shown, never a pass
    assert "verify.check.extrapolation" in eff["basis"].text("en") and eff["evidence"] == ["P1", "P2"]
    ws.close()


def test_one_verified_result_is_stated_with_its_method_and_interval_in_the_page_language(tmp_path):
    # E1's only verified operating-cost result (P2's; P1's is left out): the basis names the project, the
    # method (its message, translated) and the 90 % interval as a signed change, with no English in Chinese
    from zhizao.verify.methods import METHODS

    results = [r for r in RESULTS if not (r[1] == "operating_cost" and r[0] == "P1")]
    ws = build_store(tmp_path / "one.duckdb", results=results)
    r = _rows(recognition_checks(ws, "E1", "smart_factory", period=("2023-01-01", "2024-01-01")))
    basis = r.loc["operating_cost_change", "basis"]
    assert basis.text("en") == "verified result of project P2 (hand-made; 90% interval -30.0% .. -10.0%)"
    ws.con.execute("DELETE FROM verifications WHERE project_id = 'P2' AND indicator = 'operating_cost'")
    method = METHODS["ratio_of_totals"](numerator="cost", denominator="output")
    res = VerificationResult(
        indicator="operating_cost", definition="test", scope="P2", baseline_period=("2021-01-01", "2022-01-01"),
        reporting_period=("2023-01-01", "2024-01-01"), baseline=1.0, reporting=None, adjusted_baseline=1.0,
        change=-0.2, improvement=0.2, ci_low=0.1, ci_high=0.3, confidence=0.9, method=method, project_id="P2"
    ).judge()
    ws.con.execute("INSERT INTO verifications (project_id, indicator, scope, result, computed_at) "
                   "VALUES ('P2', 'operating_cost', 'P2', ?, '2024-01-01T00:00:00Z')", [res.to_json()])
    basis = _rows(recognition_checks(ws, "E1", "smart_factory", period=("2023-01-01", "2024-01-01"))
                  ).loc["operating_cost_change", "basis"]
    assert basis.text("en") == ("verified result of project P2 (ratio of totals cost / output; "
                                "90% interval -30.0% .. -10.0%)")
    zh = basis.text("zh")
    assert zh.startswith("项目 P2 经数据核验的结果（") and "置信区间为-30.0%至-10.0%" in zh  # glossary: a至b
    assert not re.search("[A-Za-z]{3,} [A-Za-z]{3,}", zh), zh
    ws.close()


# -- bulletin

def _text(html: str) -> str:
    html = re.sub(r"<(style|svg)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _offline(html: str) -> bool:
    return not EXTERNAL.search(html) and "<script" not in html.lower() and "<link" not in html.lower() \
        and not re.search(r"https?://", re.sub(r"<svg\b.*?</svg>", "", html, flags=re.S))


def _body(html: str) -> str:
    """The notice's running text: everything before the notes and the annex, without tables and charts."""
    main = html[html.index("<main>"):html.index('<section id="notes"')]
    main = re.sub(r"<(table|figure)\b.*?</\1>", " ", main, flags=re.S)
    return _text(main)


def test_bulletin_zh_reads_as_a_notice(ws, tmp_path):
    s = programme_statistics(ws, n_boot=200)
    zh = render_bulletin(ws, tmp_path / "b", lang="zh", stats=s, date="2026-12-03")
    assert set(zh) == {"html", "md"} and all(p.exists() for p in zh.values())
    html = zh["html"].read_text("utf-8")
    assert _offline(html) and "<svg" in html
    body = _body(html)
    # scope: cumulative, districts, period of the starts, total investment in 亿元 (105,000,000 CNY)
    assert "截至2026年12月3日，累计支持智能化改造项目5个，涉及企业3家，总投资1.05亿元" in body
    # districts by their names (the district vocabulary), not the stored codes
    # every district a 区: N个区, not 区县; the starts all on a month's first day: the period in months (a reader)
    assert "分布在璧山区、九龙坡区2个区，项目于2021年3月至2023年2月陆续开工。" in body
    # where the reader finds each project (the annexes' numbers as the annex list and the annexes give them)
    assert "陆续开工。各项目基本情况详见附件1，各项指标申报值和核验值详见附件2。" in body
    assert re.search(r'<a href="#annex-1">附件1　智能化改造项目基本情况表</a>.*'
                     r'<a href="#annex-2">附件2　智能化改造项目成效指标表</a>', html, flags=re.S)  # the contents
    # designations with their levels (a unit designated at two levels counts once)
    assert "项目企业累计获评智能化赋能示范项目3个（市级2个、区级1个）、数字化车间2个（市级2个、区级1个）、智能工厂1个（均为市级）。" \
        in body
    # declared and verified in one sentence; a count only where it differs from the sentence's
    # the conclusions only: the intervals and the same projects' declared means are Table 1's (a reader found five
    # bracketed groups too dense)
    assert "据4个项目申报，生产效率平均提升33.3%（3个项目），产品不良品率平均降低40.0%（1个项目），" \
           "运营成本平均降低20.0%（1个项目）；经数据核验的4个项目，生产效率平均提升59.8%（3个项目），" \
           "运营成本平均降低15.0%（2个项目），单位产品能耗平均降低25.0%（1个项目）。" \
           "各项核验平均值的置信区间及同口径申报平均值见表1。" in body
    assert "置信区间为" not in body and "同口径申报平均值3" not in body
    # no ids, codes, interval brackets, thousands separators or negative zeros in the running text
    for bad in ("P1", "P3", "E1", "automotive", "[", "bootstrap", "自助法", "-0.0%", "UTC", "duckdb"):
        assert bad not in body, bad
    assert not re.search(r"\d,\d{3}", body)
    # the method is a note at the end; the annex has every project with its name, district and investment
    notes = _text(html[html.index('<section id="notes"'):html.index('<section id="annex-1"')])
    assert "自助法" in notes and "申报值为企业" in notes
    annex = _text(html[html.index('<section id="annex-1"'):])
    # the investment column in whole 万元 on every row, as in the body's tables (not 1000.0)
    # (序号, name, enterprise, district, investment: the register's code only where the letterhead asks for it)
    for k, ent, inv in ((1, "Alpha", "1000"), (2, "Alpha", "4000"), (5, "Gamma", "3000")):
        assert re.search(rf"\b{k} \S+ {ent} \S+ {inv} ", annex), k
    assert "P1" not in annex and "项目编号" not in annex
    assert re.search(r"合计 10500 ", annex) and "10500.0" not in annex  # total investment, 万元
    assert "汽车制造业" in _text(html) and "计算机、通信和其他电子设备制造业" in _text(html)  # GB/T 4754 names
    assert 'id="document-date">2026年12月3日<' in html
    md = zh["md"].read_text("utf-8")
    assert "据4个项目申报" in md and "| 3 | — | Beta |" in md and "P3" not in md


def test_bulletin_en_follows_the_same_structure(ws, tmp_path):
    s = programme_statistics(ws, n_boot=200)
    en = render_bulletin(ws, tmp_path / "b", lang="en", stats=s, date="2026-12-03")
    html = en["html"].read_text("utf-8")
    body = _body(html)
    assert "As of 3 December 2026, 5 intelligent transformation projects had been supported in total " \
           "(cumulative), in 3 enterprises, with a total investment of CNY 105 million" in body
    assert "According to the declarations of 4 projects, production efficiency rose by 33.3% on average " \
           "(3 projects)" in body
    assert "4 projects were verified from data: production efficiency rose by 59.8% on average (3 projects), " \
           "operating cost fell by 15.0% on average (2 projects)" in body
    assert "Table 1 gives each verified mean's confidence interval".replace("'", "&#39;") in body
    assert "confidence interval 5" not in body and "declared by the same projects" not in body
    assert "P1" not in body and "Manufacture of automobiles" in _text(html)
    assert "Annex 1 lists every project; Annex 2 gives each project&#39;s declared and verified value for every " \
           "indicator." in body
    assert "Annex: 1. Intelligent transformation projects: general information 2. Intelligent transformation " \
           "projects: declared and verified results" in _text(html)
    for k in (1, 2):
        at = html.index(f'<section id="annex-{k}"')
        assert html[at:].startswith(f'<section id="annex-{k}" class="annex" data-bookmark="Annex {k}: ')
        assert f'<p class="annex-label">Annex {k}</p>' in html[at:at + 300]


def _annex_rows(html: str, annex: str) -> list[list[str]]:
    """The cells' texts of each body row of annex ``annex`` (its section's id), the total row last if any."""
    import html as markup

    start = html.index(f'<section id="{annex}"')
    section = html[start:html.index("</section>", start)]
    rows = re.findall(r"<tr>(.*?)</tr>", section[section.index("<tbody>"):], flags=re.S)
    return [[markup.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", r, flags=re.S)] for r in rows]


def test_the_annexes_keep_every_project_and_every_value(ws, tmp_path):
    """The annex in two tables (附件1 the projects, 附件2 their indicators, keyed by one 序号) keeps everything of
    the one table it replaced: every project's code, name, enterprise, district, investment and status (and now its
    type), every indicator's declared and verified value, each in the row of the project's 序号, in both
    languages and in the Markdown too."""
    from zhizao.i18n import NULL, Formatter
    from zhizao.portfolio import vocabulary as vocab
    from zhizao.portfolio.registry import PROGRAMME_INDICATORS

    s = programme_statistics(ws, n_boot=50)
    # the store's projects have no names: give them some (the long ones of a real register)
    s["projects"] = s["projects"].assign(name=["嘉陵熔炼车间数字化装备升级项目", "缙云冲压车间数字化车间系统集成项目",
                                               "西永冲压车间工业互联网平台上云项目", "歇马机加工车间智能制造新模式应用项目",
                                               "Gamma assembly line upgrade"])
    projects = s["projects"].to_dict("records")
    values = {(r["project_id"], r["indicator"]): r for r in s["project_values"].to_dict("records")}
    assert len(projects) == 5 and len(values) == 5 * len(PROGRAMME_INDICATORS)
    for lang in ("zh", "en"):
        f = Formatter(lang)
        # the register's codes asked for (annex_project_code): every column of the one table kept
        out = render_bulletin(ws, tmp_path / lang, lang=lang, stats=s, date="2026-12-03",
                              letterhead={"annex_project_code": True})
        html, md = out["html"].read_text("utf-8"), out["md"].read_text("utf-8")
        one, two = _annex_rows(html, "annex-1"), _annex_rows(html, "annex-2")
        assert len(one) == len(projects) + 1 and len(two) == len(projects)  # 附件1 has the total row
        money = f.wan(s["totals"]["investment"]) if lang == "zh" else f.wan(s["totals"]["investment"], 1, fixed=True)
        assert one[-1][0] == ("合计" if lang == "zh" else "Total") and money in one[-1]
        for k, p in enumerate(projects, 1):
            inv = f.wan(p["investment"]) if lang == "zh" else f.wan(p["investment"], 1, fixed=True)
            expect = [f.count(k), p["project_id"], p["name"], p["enterprise"], vocab.label("district", p["district"], lang),
                      inv, vocab.label("status", p["status"], lang), vocab.label("type", p["type"], lang)]
            assert one[k - 1] == expect, (lang, k, one[k - 1], expect)
            row = [f.count(k), p["name"]]
            for i in PROGRAMME_INDICATORS:
                r = values[(p["project_id"], i)]
                # a verified value, a triangle for a value computed whose checks did not all pass, else a dash
                row += [f.pct(r["declared"]), f.pct(r["improvement"]) if r["status"] == "verified" else
                        bulletin_module.INDICATIVE_MARK if r["status"] == "indicative" else NULL]
            assert two[k - 1] == row, (lang, k, two[k - 1], row)
            # the Markdown's rows alike
            assert "| " + " | ".join(expect) + " |" in md, (lang, k)
            assert "| " + " | ".join(row) + " |" in md, (lang, k)
        # something to check: values declared and verified, and a dash where an indicator was not verified
        cells = [c for r in two for c in r[2:]]
        assert sum(c != NULL for c in cells) >= 10 and NULL in cells
        # every indicator heads two columns, declared then verified; in Chinese its name over its direction
        # (产品不良品率 / 降低: a head broken inside a word read badly)
        head = html[html.index('<section id="annex-2"'):]
        head = head[:head.index("</thead>")]
        for i in PROGRAMME_INDICATORS:
            gain, name = vocab.label("gain", i, lang), vocab.label("indicator", i, lang)
            text = f"{name}<br>{gain[len(name):]}" if lang == "zh" else gain
            assert f'colspan="2">{text}</th>' in head, (lang, i, head)
            assert (f"| {gain}：申报值 | {gain}：核验值 |" if lang == "zh" else f"| {gain}: ") in md  # one line


def test_bulletin_notes_close_the_body_before_the_signature(ws, tmp_path):
    """Nothing of the body follows the date (GB/T 9704-2012): the notes on method (说明) are the body's last part,
    after the sections and before the closing, the annex list (附件说明), the signature and the date."""
    lh = {"signature": "某市经济和信息化委员会", "closing": "请认真组织实施。", "printed_by": "某办公室"}
    for lang, words in (("zh", ("三、", "说明", "自助法", "请认真组织实施。", "附件：", "某市经济和信息化委员会",
                                "2026年12月3日", "基本情况表", "成效指标表", "某办公室")),
                        ("en", ("3. ", "Notes", "bootstrap", "请认真组织实施。", "Annex:", "某市经济和信息化委员会",
                                "3 December 2026", "projects: general information",
                                "projects: declared and verified results", "某办公室"))):
        out = render_bulletin(ws, tmp_path / lang, lang=lang, letterhead=lh, date="2026-12-03", n_boot=50)
        for text in (_text(out["html"].read_text("utf-8")), out["md"].read_text("utf-8")):
            at = [text.find(words[0])]
            for w in words[1:]:  # each after the one before
                at.append(text.find(w, at[-1] + 1))
                assert at[-1] > at[-2], (lang, w, list(zip(words, at)))
            assert text.rfind(words[2]) < at[6], lang  # no note after the date



def test_the_notes_are_the_bodys_last_numbered_section(ws, tmp_path):
    """GB/T 9704-2012 7.3.3 (一、（一）1.（1）): the notes are not an unnumbered "说明" with items "1. ..." between
    the body and its closing paragraph, but the body's last section, "四、有关说明" with items "（一）……" (English:
    "4. Notes on method", "(1) ..."), the closing requests after them (a section of their own since a later reading,
    test_the_requests_are_a_section_of_their_own); no space after a number in Chinese."""
    lh = {"closing": "请认真组织实施。"}
    for lang, heading, first, second in (("zh", "四、有关说明", "（一）申报值为企业", "（二）核验值"),
                                         ("en", "4. Notes on method", "(1) Declared values", "(2) Verified values")):
        out = render_bulletin(ws, tmp_path / lang, lang=lang, letterhead=lh, date="2026-12-03", n_boot=50)
        html = out["html"].read_text("utf-8")
        notes = html[html.index('<section id="notes"'):html.index("</section>", html.index('<section id="notes"'))]
        assert f"<h2>{heading}</h2>" in notes, notes[:200]
        items = re.findall(r'<p class="note">([^<]*)</p>', notes)
        assert len(items) == 5 and items[0].startswith(first) and items[1].startswith(second), items
        if lang == "zh":
            assert [x[:3] for x in items] == ["（一）", "（二）", "（三）", "（四）", "（五）"]
        assert "<ol>" not in notes and "<h2>说明</h2>" not in html
        assert html.index("</section>", html.index('<section id="notes"')) < html.index('<section id="requests"')
        md = out["md"].read_text("utf-8")
        assert f"## {heading}\n\n{first}" in md, md
        assert md.index(second) < md.index("请认真组织实施。")
        if lang == "zh":
            assert not re.search(r"(?m)^\d\. ", md) and "## 说明" not in md


def test_the_requests_are_a_section_of_their_own(ws, tmp_path):
    """A native reader: the closing request read as part of "四、有关说明", and the notice had no 特此通报。. The
    letterhead's closing is now the last numbered section, "五、有关要求" ("5. Requests"), present only where the
    closing has a text; the Chinese body ends with 特此通报。 in a paragraph of its own, before the annex list."""
    lh = {"closing": "请认真组织实施。\n\n请于12月底前报送整改情况。", "signature": "某市经济和信息化委员会"}
    out = render_bulletin(ws, tmp_path / "zh", lang="zh", letterhead=lh, date="2026-12-03", n_boot=50)
    html, md = out["html"].read_text("utf-8"), out["md"].read_text("utf-8")
    at = html.index('<section id="requests"')
    requests = html[at:html.index("</section>", at)]
    assert "<h2>五、有关要求</h2>" in requests
    assert re.findall(r"<p>([^<]*)</p>", requests) == ["请认真组织实施。", "请于12月底前报送整改情况。"]
    notes = html.index('<section id="notes"')
    assert "请认真组织实施" not in html[notes:html.index("</section>", notes)]
    assert html.index("</section>", notes) < at < html.index('<p class="closing">特此通报。</p>') \
        < html.index('class="annexes"') < html.index('id="document-date"')
    assert html.count("特此通报") == 1
    assert "## 五、有关要求\n\n请认真组织实施。\n\n请于12月底前报送整改情况。\n\n特此通报。\n\n附件：" in md, md
    # no closing, no section; 特此通报。 all the same
    for lh in ({}, {"closing": "  "}):
        html = render_bulletin(ws, tmp_path / "none", lang="zh", letterhead=lh, date="2026-12-03",
                               n_boot=50)["html"].read_text("utf-8")
        assert 'id="requests"' not in html and "有关要求" not in html and '<p class="closing">特此通报。</p>' in html
    # English: "5. Requests", and no closing formula
    html = render_bulletin(ws, tmp_path / "en", lang="en", letterhead={"closing": {"en": "Please act on it."}},
                           date="2026-12-03", n_boot=50)["html"].read_text("utf-8")
    assert "<h2>5. Requests</h2>" in html and '<p class="closing">' not in html
    assert html.index('<section id="requests"') < html.index("Please act on it.") < html.index('class="annexes"')


def test_the_notice_opens_with_its_reason(ws, tmp_path):
    """A native reader: a 通报 states its reason (发文缘由) after the addressees and before its first section, and
    ends it with 现将有关情况通报如下：. By default the opening is made from the notice's own data: the programme,
    the issuing office, the last day of data the stored results used (截至……) and the number of projects; a
    letterhead's ``opening`` replaces it."""
    lh = {"programme": "某市", "addressee": "各区县经济信息委", "signature": "某市经济和信息化委员会"}
    opening = ("为全面掌握某市智能化改造项目实施成效，某市经济和信息化委员会依据项目申报材料和企业截至2023年12月31日的"
               "生产运行数据，对5个项目进行了统计和核验。现将有关情况通报如下：")
    out = render_bulletin(ws, tmp_path / "zh", lang="zh", letterhead=lh, date="2026-12-03", n_boot=50)
    html, md = out["html"].read_text("utf-8"), out["md"].read_text("utf-8")
    assert f'<p class="opening">{opening}</p>' in html
    assert html.index("各区县经济信息委：") < html.index(opening) < html.index("<h2>一、总体情况")
    assert f"各区县经济信息委：\n\n{opening}\n\n## 一、总体情况" in md
    # the data's last day is the stored results' (their latest reporting window ends on 1 January 2024), not the
    # document date
    # without an office, no subject (无主句); the header's name where there is no signature
    s = programme_statistics(ws, n_boot=50)
    assert bulletin_module._Bulletin(s, "zh", {}).opening() == [
        "为全面掌握智能化改造项目实施成效，依据项目申报材料和企业截至2023年12月31日的生产运行数据，对5个项目进行了统计和"
        "核验。现将有关情况通报如下："]
    assert "，某市经济和信息化委员会依据" in bulletin_module._Bulletin(
        s, "zh", {"header": "某市经济和信息化委员会文件"}).opening()[0]
    # the 截至 date belongs to the data, not to the projects: "对截至……的5个项目" read as a register date that
    # contradicted 一、总体情况's 截至<document date>……累计支持……项目 (a sixth reading)
    assert "的5个项目" not in bulletin_module._Bulletin(s, "zh", {}).opening()[0]
    # no date of data (no stored result): the 截至 clause left out
    bare = {**s, "basis": {**s["basis"], "data_until": None}}
    assert "依据项目申报材料和企业生产运行数据，对5个项目进行了统计和核验。" in bulletin_module._Bulletin(
        bare, "zh", {}).opening()[0]
    en = bulletin_module._Bulletin(s, "en", {"programme": {"en": "the City"}}).opening()
    assert en == ["To take full stock of the outcomes of the intelligent transformation projects of the City, the "
                  "results of 5 projects have been compiled and verified from their applications and the "
                  "enterprises' production data up to 31 December 2023. The results are set out below:"], en
    # the office's own opening (paragraphs split at blank lines), per language
    own = {"opening": {"zh": "根据工作安排，对项目实施成效进行了评估。\n\n现将有关情况通报如下：", "en": "As agreed."}}
    assert bulletin_module._Bulletin(s, "zh", own).opening() == ["根据工作安排，对项目实施成效进行了评估。", "现将有关情况通报如下："]
    assert bulletin_module._Bulletin(s, "en", own).opening() == ["As agreed."]


def test_the_notice_writes_a_negative_number_with_the_minus_sign(ws):
    """A reader: a negative number with the minus sign (U+2212), not a hyphen, in the notice's text and tables."""
    s = programme_statistics(ws, n_boot=50)
    b = bulletin_module._Bulletin(s, "zh")
    assert b.f.pct(-0.125) == "\u221212.5%" and b.f.pct(0.125) == "12.5%" and b.f.pct(-0.00001) == "0.0%"
    assert b.f.pct_range(-0.3, -0.1) == "\u221230.0%至\u221210.0%"
    assert bulletin_module._Bulletin(s, "en").f.pct(-0.5) == "\u221250.0%"
    # a deterioration in Table 1 and Annex 2: the minus sign, no hyphen-minus before a figure
    pv = s["project_values"].copy()
    pv.loc[pv["status"] == "verified", "improvement"] *= -1
    worse = bulletin_module._Bulletin({**s, "project_values": pv}, "zh")
    cells = [c["text"] for row in worse.indicators_annex(s["projects"].to_dict("records"))["rows"] for c in row]
    assert any(c.startswith("\u2212") for c in cells) and not any(re.match(r"-\d", c) for c in cells), cells


def test_the_notice_counts_districts_as_qu_where_every_one_is(ws):
    """A reader: N个区县 (districts and counties) only where some district is a county; every one a 区: N个区."""
    s = programme_statistics(ws, n_boot=50)
    b = bulletin_module._Bulletin(s, "zh")
    assert "2个区，" in b.scope_paragraph() and "个区县" not in b.scope_paragraph()
    county = s["by_district"].assign(district=["Bishan", "Jiulongpo"][:len(s["by_district"])])
    mixed = bulletin_module._Bulletin({**s, "by_district": county}, "zh")
    mixed.district = lambda code: {"Bishan": "璧山区", "Jiulongpo": "城口县"}.get(code, code)
    assert "璧山区、城口县2个区县" in mixed.scope_paragraph()
    # the tables and the figure say it alike: 区 where every one is a 区, else 区县 (a sixth reading)
    table = next(x for x in b.sections()[2]["blocks"] if x["type"] == "table")
    figure = next(x for x in b.sections()[2]["blocks"] if x["type"] == "figure")
    assert table["head"][0]["text"] == "区" and table["caption"] == "表2　按区分布的项目"
    assert figure["caption"].startswith("图2　各区项目数")
    assert b.annexes()[0]["table"]["head"][3]["text"] == "区"
    assert mixed.district_word("区县") == "区县" and bulletin_module._Bulletin(s, "en").district_word("区县") == "区县"


def test_the_notice_tables_years_in_chinese_and_a_rounding_note(ws):
    """A sixth reading: a year in a Chinese table or chart is 2024年, not 2024; where a table's shares or amounts
    as shown do not add up to its total, a note says why (因四舍五入……); none where they do."""
    s = programme_statistics(ws, n_boot=50)
    zh, en = bulletin_module._Bulletin(s, "zh"), bulletin_module._Bulletin(s, "en")
    years = zh.count_table(s["by_year"], "year", "开工年度", None, 4)
    assert [r[0]["text"] for r in years["rows"]] == [f"{y}年" for y in s["by_year"]["year"]]
    assert [r[0]["text"] for r in en.count_table(s["by_year"], "year", "Start year", None, 4)["rows"]] == [
        str(y) for y in s["by_year"]["year"]]
    assert "2021年" in zh.year_chart() and years["foot"] is None  # 1 of 5 projects a year: 20.0% each
    # three equal parts: 33.3% thrice, 99.9% against 100.0% (the amounts add up: 1 + 1 + 1 = 3万元)
    thirds = pd.DataFrame({"industry": ["C34", "C36", "C39"], "n_projects": [1, 1, 1], "investment": [1e4] * 3})
    s3 = {**s, "totals": {**s["totals"], "investment": 3e4}}
    zh, en = bulletin_module._Bulletin(s3, "zh"), bulletin_module._Bulletin(s3, "en")
    t = zh.count_table(thirds, "industry", "所属行业", "industry", 3)
    assert [r[2]["text"] for r in t["rows"]] == ["33.3%"] * 3 and t["foot"] == "注：因四舍五入，分项之和可能不等于合计。"
    assert en.count_table(thirds, "industry", "Industry", "industry", 3)["foot"] == (
        "Note: Because of rounding, the parts may not add up to the total.")


def test_the_start_period_in_months_where_the_starts_are(ws):
    """A reader: the start period in months where every start is a month's first day (a register that records
    the month: 2021年3月1日 reads as if the day were known), in days otherwise."""
    s = programme_statistics(ws, n_boot=50)
    b = bulletin_module._Bulletin(s, "zh")
    assert b.period_text() == "2021年3月至2023年2月"
    assert bulletin_module._Bulletin(s, "en").period_text() == "March 2021 to February 2023"
    days = s["projects"].assign(start=["2021-03-01", "2021-03-15", "2022-01-01", "2023-02-01", "2022-06-01"])
    assert bulletin_module._Bulletin({**s, "projects": days}, "zh").period_text() == "2021年3月1日至2023年2月1日"


def test_title_lines_break_by_meaning():
    """GB/T 9704-2012 7.3.1: a long title breaks where its meaning allows (after 关于, around the programme's name,
    before 的通报, after a noun closing a phrase), into the fewest lines of 20 characters, as even as they can be;
    never before a closing mark, inside brackets or a number."""
    lines = bulletin_module.title_lines
    prog = "西部（重庆）科学城"
    assert lines(f"关于{prog}智能化改造项目实施成效的通报", names=[prog]) == [
        f"关于{prog}", "智能化改造项目实施成效的通报"]
    assert lines("关于智能化改造项目实施成效的通报") == ["关于智能化改造项目实施成效的通报"]  # one line of 16
    assert lines(f"关于表扬2025年度{prog}智能化改造示范项目和数字化车间建设成效突出企业的通报", names=[prog]) == [
        f"关于表扬2025年度{prog}", "智能化改造示范项目和数字化车间", "建设成效突出企业的通报"]
    assert lines("关于2026年度全市智能化改造项目、数字化车间和智能工厂建设情况及下一步工作安排的通报") == [
        "关于2026年度全市智能化改造项目、", "数字化车间和智能工厂建设情况", "及下一步工作安排的通报"]
    assert lines(f"{prog}管理委员会经济发展局关于公布第三批智能制造示范工厂揭榜单位名单的通知", names=[prog]) == [
        f"{prog}管理委员会经济发展局", "关于公布第三批智能制造示范工厂", "揭榜单位名单的通知"]
    # no break by meaning fits: the evenest break elsewhere
    assert lines("关于" + "某" * 25 + "的通报") == ["关于" + "某" * 13, "某" * 12 + "的通报"]
    assert lines("关于第一行\n第二行的通报") == ["关于第一行", "第二行的通报"]  # the office's own lines
    assert lines("Notice on the results of the intelligent transformation projects", "en") == [
        "Notice on the results of the intelligent transformation projects"]


def test_bulletin_letterhead_and_template_without_code(ws, tmp_path):
    lh = tmp_path / "lh.yaml"
    lh.write_text("header: 某市经济和信息化委员会文件\nnumber: 某经信发〔2026〕7号\nprogramme: 某市\n"
                  "addressee: 各区县经济信息委\nsignature: 某市经济和信息化委员会\ndate: 2026-05-04\n"
                  "closing: |\n  请认真组织实施。\n", encoding="utf-8")
    out = render_bulletin(ws, tmp_path / "b", lang="zh", letterhead=lh, n_boot=50)
    html = out["html"].read_text("utf-8")
    for text in ("某市经济和信息化委员会文件", "某经信发〔2026〕7号", "关于某市智能化改造项目实施成效的通报",
                 "各区县经济信息委：", "某市经济和信息化委员会", "2026年5月4日", "请认真组织实施。",
                 "截至2026年5月4日，某市累计支持智能化改造项目5个"):
        assert text in html, text
    # a numbered official document (GB/T 9704-2012): no contents; the record (抄送) after the annex
    assert 'class="toc"' not in html
    lh.write_text(lh.read_text("utf-8") + "cc: 市发展改革委，市财政局\n", encoding="utf-8")
    html = render_bulletin(ws, tmp_path / "e", lang="zh", letterhead=lh, n_boot=50)["html"].read_text("utf-8")
    assert html.index('id="annex-1"') < html.index("抄送：市发展改革委，市财政局。")  # one full stop (7.4.2)
    # the printing office and date close the record (版记, GB/T 9704-2012 7.4.3); the date defaults to the
    # document's
    lh.write_text(lh.read_text("utf-8") + "printed_by: 某市经济和信息化委员会办公室\n", encoding="utf-8")
    out = render_bulletin(ws, tmp_path / "p", lang="zh", letterhead=lh, n_boot=50, formats=("html", "md"))
    html = out["html"].read_text("utf-8")
    record = html[html.index("抄送：市发展改革委，市财政局"):]
    assert '<p class="printed">' in record and "某市经济和信息化委员会办公室" in record and "2026年5月4日印发" in record
    assert "某市经济和信息化委员会办公室　　2026年5月4日印发" in out["md"].read_text("utf-8")
    # without a number: the contents box
    plain = render_bulletin(ws, tmp_path / "f", lang="zh", n_boot=50)["html"].read_text("utf-8")
    assert 'class="toc"' in plain
    # a reader: the register's project code (P0001) is an internal code; the annex leaves it out unless the
    # office's letterhead asks for it (annex_project_code: true)
    annex = plain[plain.index('id="annex-1"'):]
    assert "项目编号" not in annex and "<td>P1</td>" not in annex and "序号" in annex
    assert '<td colspan="4">合计</td>' in annex
    lh.write_text(lh.read_text("utf-8") + "annex_project_code: true\n", encoding="utf-8")
    html = render_bulletin(ws, tmp_path / "g", lang="zh", letterhead=lh, n_boot=50)["html"].read_text("utf-8")
    annex = html[html.index('id="annex-1"'):]
    assert ">项目编号</th>" in annex and "<td>P1</td>" in annex
    assert '<td colspan="5">合计</td>' in annex
    lh.write_text(lh.read_text("utf-8").replace("annex_project_code: true", "annex_project_code: maybe"),
                  encoding="utf-8")
    with pytest.raises(InputError, match="annex_project_code"):
        render_bulletin(ws, tmp_path / "h", lang="zh", letterhead=lh, n_boot=50)
    with pytest.raises(InputError, match="annex_project_code"):  # a letterhead given as a mapping
        render_bulletin(ws, tmp_path / "i", lang="zh", letterhead={"annex_project_code": "false"}, n_boot=50)
    with pytest.raises(InputError, match="sealed"):  # the signature block's form: a yes or no as well
        render_bulletin(ws, tmp_path / "j", lang="zh", letterhead={"sealed": "no"}, n_boot=50)
    # sealed by default (GB/T 9704-2012 7.3.5.1); sealed: false lays it out without a seal (7.3.5.2)
    assert '<div class="signature sealed">' in html
    html = render_bulletin(ws, tmp_path / "k", lang="zh", letterhead={"sealed": False}, n_boot=50)["html"]
    assert '<div class="signature unsealed">' in html.read_text("utf-8")
    own = tmp_path / "tpl"
    own.mkdir()
    (own / "bulletin.css").write_text("body { color: #123456; }", encoding="utf-8")
    html = render_bulletin(ws, tmp_path / "c", lang="zh", template_dir=own, n_boot=50)["html"].read_text("utf-8")
    assert "#123456" in html
    # an office's template that reads a field the notice does not give (one copied before the annex was split
    # reads doc.annex_heading): a clear error naming the folder, the field and what the notice gives, not an
    # internal error; and the office's stylesheet was not written half-way into a file
    (own / "bulletin.html.j2").write_text("<h2>{{ doc.annex_heading }}</h2>", encoding="utf-8")
    with pytest.raises(InputError, match="annex_heading") as e:
        render_bulletin(ws, tmp_path / "t", lang="zh", template_dir=own, n_boot=50)
    assert e.value.code == "bulletin.bad_template" and str(own) in str(e.value) and "annexes" in str(e.value)
    assert "通报模板" in e.value.message.text("zh")
    assert not (tmp_path / "t" / "bulletin.zh.html").exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text("heading: x\n", encoding="utf-8")
    with pytest.raises(InputError, match="heading"):
        render_bulletin(ws, tmp_path / "d", lang="zh", letterhead=bad)


def test_bulletin_declared_only_and_empty(tmp_path):
    ws = build_store(tmp_path / "d" / "d.duckdb", results=[])
    try:
        out = render_bulletin(ws, tmp_path / "d", lang="zh", n_boot=50)
        text = _body(out["html"].read_text("utf-8"))
        assert "目前尚无经数据核验的成效" in text and "生产效率平均提升33.3%（3个项目）" in text
        en = _body(render_bulletin(ws, tmp_path / "d", lang="en", n_boot=50)["html"].read_text("utf-8"))
        assert "no result has been verified from data yet" in en
    finally:
        ws.close()
    empty = zhizao.connect(tmp_path / "e" / "e.duckdb")
    try:
        for lang, phrase in (("zh", "统计范围内没有智能化改造项目"), ("en", "No intelligent transformation project")):
            paths = render_bulletin(empty, tmp_path / "e", lang=lang)
            html = paths["html"].read_text("utf-8")
            assert phrase in _text(html) and _offline(html)
            assert phrase in paths["md"].read_text("utf-8")
        s = programme_statistics(empty)
        assert s["totals"]["n_projects"] == 0 and s["averages"]["mean"].isna().all()
    finally:
        empty.close()
    with pytest.raises(ValueError):
        render_bulletin(None, tmp_path, lang="fr")


def _msgids() -> set[str]:
    kw = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2), "n_": (1, 2)}
    ids = set()
    for p in PORTFOLIO_DIR.glob("*.py"):
        with p.open("rb") as f:
            for _l, m, _c, _x in extract("python", f, keywords=kw):
                ids |= set(m) if isinstance(m, tuple) else {m}
    for p in (PORTFOLIO_DIR / "templates").glob("*.j2"):
        with p.open("rb") as f:
            ids |= {m for _l, m, _c, _x in extract(babel_extract, f, keywords=kw,
                                                     options={"extensions": "jinja2.ext.i18n"})}
    return {m for m in ids if m}


def test_catalogues_cover_the_bulletin():
    ids = _msgids()
    assert len(ids) > 40
    for lang in ("zh", "en"):
        with (LOCALE_DIR / lang / "LC_MESSAGES" / "zhizao.po").open("rb") as f:
            cat = read_po(f)
        keys = set()
        for m in cat:
            keys |= set(m.id) if isinstance(m.id, tuple) else {m.id}
        missing = sorted(ids - keys)
        assert not missing, (lang, missing)
        if lang == "zh":
            for m in cat:
                mid = m.id[0] if isinstance(m.id, tuple) else m.id
                if mid in ids:
                    strings = m.string if isinstance(m.string, tuple) else (m.string,)
                    assert all(strings) and not m.fuzzy, mid
                    for s in strings:
                        assert set(re.findall(r"%\(\w+\)s", mid)) == set(re.findall(r"%\(\w+\)s", s)), mid


# -- command line

@pytest.fixture
def cli_db(tmp_path):
    """A store file of its own, closed (the commands open it read-only)."""
    w = build_store(tmp_path / "cli" / "c.duckdb")
    w.close()
    return w.path


def _app():
    import typer

    from zhizao.cli.portfolio import register
    app = typer.Typer()
    register(app)
    return app


def test_cli_commands(cli_db, tmp_path):
    app, run = _app(), CliRunner().invoke
    r = run(app, ["project", "list", "--db", cli_db, "--format", "json"])
    assert r.exit_code == 0, r.output
    assert [p["project_id"] for p in json.loads(r.output)] == ["P1", "P2", "P3", "P4", "P5"]
    r = run(app, ["project", "show", "P3", "--db", cli_db])
    assert r.exit_code == 0 and "production_efficiency" in r.output and "0.594" in r.output
    r = run(app, ["project", "show", "P9", "--db", cli_db])
    assert r.exit_code == 2
    r = run(app, ["programme", "--db", cli_db, "--format", "json", "--park", "WSC", "--n-boot", "100"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["totals"]["n_projects"] == 4
    pe = next(a for a in data["averages"] if a["indicator"] == "production_efficiency" and a["basis"] == "verified")
    assert pe["mean"] == pytest.approx(0.598) and pe["project_ids"] == ["P1", "P2", "P3"]
    r = run(app, ["programme", "--db", cli_db, "--n-boot", "100"])
    assert r.exit_code == 0 and "production_efficiency" in r.output
    r = run(app, ["programme", "--db", cli_db, "--n-boot", "100", "--lang", "zh"])  # labelled, for the office
    assert r.exit_code == 0 and "生产效率提升" in r.output and "59.8%" in r.output
    assert "production_efficiency" not in r.output and "e+0" not in r.output
    r = run(app, ["recognition", "--db", cli_db, "--enterprise", "E1", "--designation", "digital_workshop",
                  "--from", "2023-01-01", "--to", "2023-02-01", "--format", "json"])
    assert r.exit_code == 0, r.output
    rows = {x["criterion"]: x for x in json.loads(r.output)["criteria"]}
    assert rows["data_upload_rate"]["value"] == 0.75 and rows["mes_coverage"]["passed"] is None
    r = run(app, ["recognition", "--db", cli_db, "--enterprise", "E1", "--designation", "smart_plant"])
    assert r.exit_code == 2
    out = tmp_path / "bul"
    r = run(app, ["bulletin", "--db", cli_db, "--lang", "en", "-o", str(out), "--park", "WSC"],
            env={"ZHIZAO_LANG": "en"})
    assert r.exit_code == 0, r.output
    assert (out / "bulletin.en.html").exists() and (out / "bulletin.en.md").exists()
    assert "without --letterhead" in r.output  # an office learns where its header, number and signature go
    r = run(app, ["bulletin", "--db", cli_db, "--lang", "fr", "-o", str(out)])
    assert r.exit_code == 2
    r = run(app, ["programme", "--db", str(tmp_path / "missing.duckdb")])
    assert r.exit_code == 2


@pytest.mark.parametrize("args", [["project", "show", "P3"], ["programme", "--n-boot", "100"]])
def test_table_output_goes_whole_to_the_file(cli_db, tmp_path, args):
    """--output with the table format: every part (the header lines and each table) in the file, none on stdout.

    The tables of these commands used to go to standard output while their header went to the file."""
    out = tmp_path / "out.txt"
    r = CliRunner().invoke(_app(), [*args, "--db", cli_db, "--output", str(out)])
    assert r.exit_code == 0, r.output
    text = out.read_text(encoding="utf-8")
    assert r.output == ""
    assert "production_efficiency" in text
    if args[0] == "project":
        assert "verification results" in text and "0.594" in text
    else:
        assert "projects: " in text and "by_type" in text


def test_notice_lists_districts_and_industries_by_count():
    """A notice lists the districts and industries with the most projects first (ties in the register's order),
    "not stated" last; the statistics keep their own order."""
    from zhizao.portfolio.bulletin import _ranked

    df = pd.DataFrame({"district": ["a", "b", None, "c", "d"], "n_projects": [1, 3, 5, 3, 2]})
    got = _ranked(df, "district")["district"].tolist()
    assert got[:4] == ["b", "c", "d", "a"] and pd.isna(got[4])
    assert df["district"].tolist()[:2] == ["a", "b"]
    assert _ranked(df.iloc[:0], "district").empty


def test_the_results_sentence_says_projects_have_verified_indicators(ws):
    """A native reader read "上述40个项目均经数据核验" next to "运营成本……（10个项目）" as a contradiction: a
    project counts as verified when one of its indicators is. The sentence says so, in both variants."""
    s = programme_statistics(ws, n_boot=50)
    pv = s["project_values"].copy()
    ids = sorted(set(pv.loc[pv["status"] == "verified", "project_id"]))
    pv.loc[pv["project_id"].isin(ids) & pv["declared"].isna() & (pv["indicator"] == "production_efficiency"),
           "declared"] = 0.1  # every verified project declared something
    pv.loc[~pv["project_id"].isin(ids), "declared"] = None  # and only they did
    every = {**s, "project_values": pv, "totals": {**s["totals"], "n_declared_projects": len(ids),
                                                   "n_verified_projects": len(ids)}}
    zh = bulletin_module._Bulletin(every, "zh").results_paragraph()
    assert f"上述{len(ids)}个项目均有指标经数据核验，" in zh, zh
    en = bulletin_module._Bulletin(every, "en").results_paragraph()
    assert f"each of these {len(ids)} projects has results verified from data:" in en, en
    some = {**every, "totals": {**every["totals"], "n_declared_projects": len(ids) + 1}}
    zh = bulletin_module._Bulletin(some, "zh").results_paragraph()
    assert f"其中{len(ids)}个项目有指标经数据核验，" in zh, zh


def test_the_results_sentence_compares_declared_and_verified_over_the_same_projects(ws):
    """A native reader compared "据40个项目申报，运营成本平均降低……" with "其中10个项目经数据核验，运营成本平均降低
    28.8%": the 10 projects had declared 31.7 %, not the 40's mean. Table 1 sets what the same projects declared
    beside their verified mean. A later reading found the sentence that also said so (five bracketed groups, two
    declared means of one indicator) too dense: the running text keeps the conclusions (the declared mean of the
    declaring projects, the verified mean of the verified ones) and refers to Table 1; no interval, no second
    declared mean in it."""
    s = programme_statistics(ws, n_boot=50)
    # the hand-made store: efficiency verified for P1 70 %, P2 50 %, P3 59.4 %; declared by P1 50 %, P2 30 %
    row = _avg(s, "production_efficiency", "verified")
    assert row["paired_n"] == 2 and row["paired_mean"] == pytest.approx(0.6)
    assert row["paired_declared_mean"] == pytest.approx(0.4)
    zh = bulletin_module._Bulletin(s, "zh").results_paragraph()
    assert "生产效率平均提升59.8%（3个项目），" in zh and zh.endswith("。各项核验平均值的置信区间及同口径申报平均值见表1。"), zh
    assert not re.search(r"置信区间为|其中2个项目申报|同口径申报平均值\d", zh), zh
    en = bulletin_module._Bulletin(s, "en").results_paragraph()
    assert "production efficiency rose by 59.8% on average (3 projects)," in en, en
    assert en.endswith(". Table 1 gives each verified mean's confidence interval and what the same projects "
                       "declared."), en
    assert not re.search(r"confidence interval \d|of them declared|declared by the same", en), en
    # every verified project declared: 4 verified (20, 30, 25, 40 %: 28.8 %) that declared 30, 35, 30, 31.8 %
    # (31.7 %), and 2 more that only declared 50 % (the 6: 37.8 %)
    ids = ["A", "B", "C", "D", "E", "F"]
    pv = pd.DataFrame({"project_id": ids, "indicator": "operating_cost",
                       "status": ["verified"] * 4 + ["declared"] * 2,
                       "improvement": [0.2, 0.3, 0.25, 0.4, None, None],
                       "declared": [0.30, 0.35, 0.30, 0.318, 0.5, 0.5], "output": None, "investment": None})
    av = stats_module._averages(pv, 0.9, 50, 0)
    pair = {**s, "averages": av, "project_values": pv,
            "totals": {**s["totals"], "n_declared_projects": 6, "n_verified_projects": 4}}
    zh = bulletin_module._Bulletin(pair, "zh").results_paragraph()
    assert zh == ("据6个项目申报，运营成本平均降低37.8%；其中4个项目有指标经数据核验，运营成本平均降低28.8%。"
                  "各项核验平均值的置信区间及同口径申报平均值见表1。"), zh
    en = bulletin_module._Bulletin(pair, "en").results_paragraph()
    assert "fell by 28.8% on average." in en and "31.7%" not in en and "(90%" not in en, en
    # Table 1 sets the same projects' declared mean (31.7 %) beside the verified mean (28.8 %), keeping the mean
    # of all 6 declaring projects (37.8 %) and the counts; Figure 1's declared bar is the same projects' 31.7 %
    for lang, group, sub, legend in (
            ("zh", "经核验项目（同口径）", ["项目数", "申报平均值", "核验平均值"], "申报（同口径）"),
            ("en", "Verified projects (like for like)", ["Projects", "Declared mean", "Verified mean"],
             "Declared (same projects)")):
        b = bulletin_module._Bulletin(pair, lang)
        table = b.averages_table()
        assert [(h["text"], h["span"]) for h in table["head"][1:]] == [(b._("All declaring projects"), 2),
                                                                       (group, 5)], table["head"]
        assert [h["text"] for h in table["head2"]][2:5] == sub, table["head2"]
        row = next(r for r in table["rows"] if r[0]["text"] == b.gain("operating_cost"))
        assert [c["text"] for c in row[1:6]] == ["6", "37.8%", "4", "31.7%", "28.8%"], row
        # the interval the running text no longer gives: Table 1's column beside the verified mean
        assert table["head2"][5]["text"] == b._("%(conf)s confidence interval") % {"conf": "90%"}
        assert re.fullmatch(r"\d+\.\d%\D+\d+\.\d%", row[6]["text"]), row[6]
        svg = b.averages_chart()
        assert legend in svg and "31.7%" in svg and "28.8%" in svg and "37.8%" not in svg
    figure = next(blk for sec in bulletin_module._Bulletin(pair, "zh").sections() for blk in sec["blocks"]
                  if blk["type"] == "figure")
    assert "（同口径" in figure["caption"], figure["caption"]


def test_the_method_note_states_what_the_results_rest_on():
    """A native reader found "12 months each by default ... (output, operating hours, weather, prices)" in a
    notice whose results used six months, no weather and no price index: the note now says what the stored
    results did (zhizao.portfolio.basis), in both languages."""
    from zhizao.portfolio.basis import verification_basis

    def result(indicator, b, r, terms=(), price=None):
        checks = [] if price is None else [{"code": "verify.check.price_index", "passed": price}]
        return {"indicator": indicator, "improvement": 0.1, "result": {
            "baseline_period": b, "reporting_period": r, "fit": {"terms": list(terms)}, "checks": checks}}

    six = (["2024-01-01T00:00:00+08:00", "2024-07-01T00:00:00+08:00"],
           ["2024-08-01T00:00:00+08:00", "2025-02-01T00:00:00+08:00"])
    twelve = (["2023-01-01T00:00:00+08:00", "2024-01-01T00:00:00+08:00"],
              ["2024-03-01T00:00:00+08:00", "2025-03-01T00:00:00+08:00"])
    rows = [result("unit_energy", *six, ("const", "run:M1", "run:M2", "scheduled_hours")),
            result("unit_energy", *twelve, ("const", "hdd", "weekday_2")),
            result("operating_cost", *six, ("const", "output"), price=True),
            result("operating_cost", *twelve, ("const", "output"), price=False),
            result("defect_rate", *six)]
    rows.append({**result("operating_cost", *six, ("const", "output"), price=False), "improvement": None})
    basis = verification_basis(pd.DataFrame(rows))
    assert basis == {"n_results": 5, "baseline_months": (6, 12), "reporting_months": (6, 12),
                     "drivers": {"unit_energy": {"run_hours": 1, "scheduled_hours": 1, "weather": 1, "day_type": 1},
                                 "operating_cost": {"output": 2}},
                     "cost_deflated": 1, "cost_not_deflated": 1,
                     "data_until": "2025-02-28"}  # the latest reporting window ends (exclusive) on 1 March 2025
    stats = {"basis": basis, "n_boot": 100, "totals": {}}
    zh = bulletin_module._Bulletin(stats, "zh", {}).method_note()
    assert "基期为6至12个月，报告期为6至12个月" in zh
    assert "按报告期设备运行时间、计划工时、气象条件、星期和时段调整" in zh
    assert "运营成本与按报告期合格品产量调整后的基期值比较，其中1个项目（共2个）按价格指数折算为基期价格" in zh
    assert "默认" not in zh and zh.endswith("平均天数。")
    en = bulletin_module._Bulletin(stats, "en", {}).method_note()
    assert "the baseline periods are 6 to 12 months" in en and "by default" not in en
    # one window length, no weather, no price index: said as it is
    only = {**basis, "baseline_months": (6, 6), "reporting_months": (6, 6),
            "drivers": {"unit_energy": {"run_hours": 3}, "operating_cost": {"output": 3}},
            "cost_deflated": 0, "cost_not_deflated": 3}
    zh = bulletin_module._Bulletin({**stats, "basis": only}, "zh", {}).method_note()
    assert "基期为6个月，报告期为6个月" in zh and "气象" not in zh and "未作价格调整（无价格指数）" in zh
    # no result with a value: the rule alone, no figures
    none = verification_basis(pd.DataFrame(columns=["indicator", "improvement", "result"]))
    assert none["n_results"] == 0 and none["baseline_months"] is None
    zh = bulletin_module._Bulletin({**stats, "basis": none}, "zh", {}).method_note()
    assert "本次通报中" not in zh and "单位产品能耗" not in zh and zh.startswith("核验值根据各企业接入的生产现场数据测算")


def test_the_notes_speak_as_an_office_not_as_software():
    """A sixth reading: 有关说明 is the issuing office's, not a program's: no 本平台 (the issuer is an office, not a
    platform), the projects 模拟生成 rather than 来自项目模拟器, and the development cycle ends at the release of the
    finalised product (到产品定型发布), not at a bare 发布."""
    from zhizao.portfolio.basis import verification_basis

    basis = verification_basis(pd.DataFrame(columns=["indicator", "improvement", "result"]))
    for n_sim, zh_sim, en_sim in ((117, "（全部117个项目均为模拟生成）", "(all 117 projects are simulated)"),
                                  (3, "（117个项目中有3个为模拟生成）", "(3 of 117 projects are simulated)")):
        stats = {"basis": basis, "n_boot": 2000, "confidence": 0.95,
                 "totals": {"n_simulated_projects": n_sim, "n_projects": 117}}
        zh = "".join(bulletin_module._Bulletin(stats, "zh", {}).notes())
        en = " ".join(bulletin_module._Bulletin(stats, "en", {}).notes())
        assert zh_sim in zh and en_sim in en
        assert "本平台" not in zh and "模拟器" not in zh and "this platform" not in en and "simulator" not in en
        assert "产品研制周期为从设计开始到产品定型发布的平均天数" in zh
        assert "from design start to the release of the finalised product" in en
        assert "核验值根据各企业接入的生产现场数据测算" in zh and "Verified values are computed from the shop-floor" in en


def test_the_notes_say_why_fewer_projects_enter_a_verified_average():
    """A seventh reading: the body gave operating cost's verified average over 69 of 117 projects without saying
    why; only 附件2's note explained △. 有关说明 says how many values of each indicator were computed but failed a
    check (indicative) and are left out of the verified averages; nothing where every value passed."""
    from zhizao.portfolio.basis import verification_basis

    basis = verification_basis(pd.DataFrame(columns=["indicator", "improvement", "result"]))
    rows = ([("operating_cost", "indicative")] * 48 + [("operating_cost", "verified")] * 69
            + [("unit_energy", "indicative")] * 5 + [("unit_energy", "verified")] * 112
            + [("defect_rate", "verified")] * 117 + [("operating_cost", "declared")] * 3)
    pv = pd.DataFrame(rows, columns=["indicator", "status"])
    stats = {"basis": basis, "n_boot": 2000, "confidence": 0.9, "project_values": pv,
             "totals": {"n_simulated_projects": 0, "n_projects": 117}}
    zh = bulletin_module._Bulletin(stats, "zh", {}).notes()
    en = bulletin_module._Bulletin(stats, "en", {}).notes()
    assert ("运营成本有48个项目、单位产品能耗有5个项目的测算结果未通过核验检查（附件2中以“△”标示），不计入核验平均值。"
            in zh)
    assert ("The values of 48 projects for operating cost and 5 projects for unit product energy consumption were "
            "computed but did not pass a verification check (marked △ in Annex 2); they are not in the verified "
            "averages." in en)
    for lang in ("zh", "en"):  # every value verified: no such note
        notes = bulletin_module._Bulletin({**stats, "project_values": pv[pv["status"] != "indicative"]}, lang,
                                          {}).notes()
        assert not any("△" in n for n in notes)


def test_a_long_signature_breaks_by_meaning_around_a_date_four_characters_in():
    """GB/T 9704-2012 7.3.5.1: the 成文日期 is always four characters in; a 发文机关署名 too long to centre on it inside
    the type area goes on two lines, broken where the meaning allows (after the body the office belongs to, else
    after a bracket or a kind of office), the most balanced break whose lines fit; else in the middle."""
    lines = bulletin_module.sealed_signature_lines
    date = "2026年12月3日"  # 6.5 characters: a line centred on it has room for 14.5
    assert lines("某市经济和信息化委员会", date) == ["某市经济和信息化委员会"]
    assert lines("西部（重庆）科学城管理委员会经济发展局", date) == ["西部（重庆）科学城管理委员会", "经济发展局"]
    assert lines("西部（重庆）科学城管委会经济发展局", date) == ["西部（重庆）科学城管委会", "经济发展局"]
    assert lines("重庆市两江新区（自贸区）产业发展促进中心", date) == ["重庆市两江新区（自贸区）", "产业发展促进中心"]
    assert lines("一二三四五六七八九十一二三四五六七八九十", date) == ["一二三四五六七八九十", "一二三四五六七八九十"]
    assert lines(None, date) == [] and lines("", date) == []


def test_an_annex_name_keeps_its_last_word_in_either_language():
    """附件1 left 有限公 / 司 and 上云项 / 目: a name's last word is one piece, in an English notice too (it lists the
    register's Chinese names); a Chinese label breaks at its meaning boundary, an English one is left as it is."""
    pieces = bulletin_module._pieces
    for lang in ("zh", "en"):
        assert pieces("重庆大学城汽车零部件有限公司", lang, "name") == [("重庆大学城汽车零部件", False), ("有限公司", True)]
        assert pieces("白市驿2机加工车间工业互联网平台上云项目", lang, "name")[-1] == ("上云项目", True)
    assert pieces("Gamma assembly line upgrade", "en", "name") is None
    assert pieces("已建成投产", "zh", "label") == [("已建成", True), ("投产", True)]
    assert pieces("数字化车间和智能工厂信息系统集成", "zh", "label") == [("数字化车间和智能工厂", True), ("信息系统集成", True)]
    assert pieces("Completed", "en", "label") is None
