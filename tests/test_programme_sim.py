"""The programme simulator: deterministic, canonical, loadable, and its truth file is right.

The realised values of ``truth_projects.csv`` are recomputed here from the written CSV files with pandas only
(never with the simulator's arrays), and once more from zhizao's own elements after ingesting everything.
"""

import numpy as np
import pandas as pd
import pytest

import zhizao
from zhizao.schema import DESIGNATIONS, PROJECT_TYPES, TABLES
from zhizao.simulate.programme import EFFECT_RANGES, TRUTH_PROJECT_COLUMNS, simulate_programme, write_programme

KW = dict(n_projects=6, n_enterprises=4, seed=3, months_before=2, months_after=2)
ORDER = ["equipment", "enterprises", "products", "calendar", "states", "production", "energy", "labour",
         "quality", "variables", "costs", "projects", "designations", "development_cycles"]
TS = {"states": ["start", "end"], "production": ["start", "end"], "energy": ["start", "end"],
      "quality": ["ts"], "labour": ["start", "end"], "costs": ["start", "end"], "variables": ["start", "end"],
      "calendar": ["start", "end"], "projects": ["start", "commissioning_end"], "designations": ["date"],
      "development_cycles": ["design_start", "release"]}
KGCE = 0.1229


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    d = tmp_path_factory.mktemp("programme")
    tables = simulate_programme(**KW)
    paths = write_programme(tables, d / "csv")
    csv = {}
    for name in ORDER:
        df = pd.read_csv(paths[name], keep_default_na=False, na_values=[""])
        for c in TS.get(name, []):
            df[c] = pd.to_datetime(df[c], utc=True)
        csv[name] = df
    truth = pd.read_csv(paths["truth_projects"])
    return {"tables": tables, "paths": paths, "csv": csv, "truth": truth, "dir": d}


def _windows(truth_row):
    return {"baseline": (pd.Timestamp(truth_row["baseline_start"]), pd.Timestamp(truth_row["baseline_end"])),
            "reporting": (pd.Timestamp(truth_row["reporting_start"]), pd.Timestamp(truth_row["reporting_end"]))}


def _inside(s: pd.Series, w) -> pd.Series:
    return (s >= w[0]) & (s < w[1])


def test_deterministic_per_seed():
    a, b = simulate_programme(**KW), simulate_programme(**KW)
    assert list(a) == list(b)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], obj=name)
    c = simulate_programme(**{**KW, "seed": 4})
    assert not c["truth_projects"]["true_efficiency_change"].equals(a["truth_projects"]["true_efficiency_change"])


def test_canonical_columns_and_files(sim):
    paths = sim["paths"]
    for name in ORDER:
        header = paths[name].read_text(encoding="utf-8").splitlines()[0].split(",")
        assert header == TABLES[name].names, name
    assert list(sim["truth"].columns) == list(TRUTH_PROJECT_COLUMNS)
    readme = paths["readme"].read_text(encoding="utf-8")
    assert "SIMULATED" in readme and "seed: 3" in readme
    # timestamps carry the offset
    line = paths["states"].read_text(encoding="utf-8").splitlines()[1]
    assert "+08:00" in line


def test_register_structure(sim):
    csv, truth = sim["csv"], sim["truth"]
    eq, pr, ent = csv["equipment"], csv["projects"], csv["enterprises"]
    assert list(ent["enterprise_id"]) == [f"ENT{i:03d}" for i in range(1, 5)]
    assert list(pr["project_id"]) == [f"P{i:04d}" for i in range(1, 7)]
    assert set(pr["type"]) <= set(PROJECT_TYPES) and (pr["status"] == "completed").all()
    assert set(pr["scope"]) <= set(eq["work_center"])
    assert (eq.groupby("work_center").size() == 2).all()
    assert (eq["site"] == eq["enterprise"] + "-S1").all()
    months = (pr["commissioning_end"] - pr["start"]).dt.days
    assert months.between(28, 92).all()
    assert (pr["investment"] > 0).all()
    des = csv["designations"]
    assert set(des["designation"]) <= set(DESIGNATIONS)
    demo = des[des["designation"] == "demonstration_project"]
    assert len(demo) >= 1 and set(demo["project_id"]) <= set(pr["project_id"])
    assert des.loc[des["designation"] != "demonstration_project", "project_id"].isna().all()
    # the enterprise over-declares: declared values exceed the drawn effects
    for k, t in (("efficiency", "true_efficiency_change"), ("defect_rate", "true_defect_rate_reduction"),
                 ("operating_cost", "drawn_operating_cost_reduction"),
                 ("unit_energy", "drawn_unit_energy_reduction"),
                 ("development_cycle", "true_development_cycle_reduction")):
        assert (pr[f"declared_{k}"].to_numpy() > truth[t].to_numpy()).all(), k
    # effects: drawn ranges, except the zero-effect projects
    z = truth["zero_effect"].to_numpy()
    assert z.sum() >= 1
    for k, t in (("efficiency", "true_efficiency_change"), ("defect_rate", "true_defect_rate_reduction"),
                 ("unit_energy", "drawn_unit_energy_reduction")):
        lo, hi = EFFECT_RANGES[k]
        assert truth.loc[~z, t].between(lo, hi).all()
        assert truth.loc[z, t].abs().max() <= 0.03
    # energy and cost at the reporting period's conditions stay near the drawn effects at nominal baseline
    # conditions: volume moves them by the fixed share, cost per good unit gains the defect reduction
    for k in ("unit_energy", "operating_cost"):
        diff = truth[f"true_{k}_reduction"] - truth[f"drawn_{k}_reduction"]
        assert diff.abs().max() < 0.05, k
    assert (truth["true_operating_cost_reduction"] > truth["drawn_operating_cost_reduction"] - 0.01).all()


def test_every_scope_has_data_in_both_windows_and_none_during_commissioning(sim):
    csv, truth = sim["csv"], sim["truth"]
    eq = csv["equipment"]
    for _, t in truth.iterrows():
        machines = set(eq.loc[eq["work_center"] == t["scope"], "equipment_id"])
        site = eq.loc[eq["work_center"] == t["scope"], "site"].iloc[0]
        for name, w in _windows(t).items():
            for table, col, key, ids in (("production", "start", "equipment_id", machines),
                                         ("energy", "start", "equipment_id", machines),
                                         ("quality", "ts", "equipment_id", machines),
                                         ("labour", "start", "scope", {t["scope"]}),
                                         ("costs", "start", "scope", {t["scope"]}),
                                         ("variables", "start", "scope", {site}),
                                         ("calendar", "start", "scope", {site})):
                df = csv[table]
                n = (df[key].isin(ids) & _inside(df[col], w)).sum()
                assert n > 0, (t["project_id"], name, table)
            st = csv["states"]
            run = st[st["equipment_id"].isin(machines) & (st["category"] == "production") & _inside(st["start"], w)]
            assert len(run) > 0
        gap = (pd.Timestamp(t["baseline_end"]), pd.Timestamp(t["reporting_start"]))
        pdn = csv["production"]
        assert not (pdn["equipment_id"].isin(machines) & _inside(pdn["start"], gap)).any()


def _recompute(csv, t) -> dict:
    """Realised indicator values of one project and window, from the CSV tables alone."""
    eq, out = csv["equipment"], {}
    machines = set(eq.loc[eq["work_center"] == t["scope"], "equipment_id"])
    site = eq.loc[eq["work_center"] == t["scope"], "site"].iloc[0]
    new_products = set(csv["products"].loc[csv["products"]["equipment_id"].isin(machines), "product_id"])
    dc = csv["development_cycles"]
    dc = dc[dc["product_id"].isin(new_products)]
    for name, w in _windows(t).items():
        st = csv["states"]
        st = st[st["equipment_id"].isin(machines) & (st["category"] == "production") & _inside(st["start"], w)]
        apt_h = (st["end"] - st["start"]).dt.total_seconds().sum() / 3600.0
        p = csv["production"]
        p = p[p["equipment_id"].isin(machines) & _inside(p["start"], w)]
        q = csv["quality"]
        q = q[q["equipment_id"].isin(machines) & _inside(q["ts"], w)]
        e = csv["energy"]
        e = e[e["equipment_id"].isin(machines) & _inside(e["start"], w)]
        c = csv["costs"]
        c = c[(c["scope"] == t["scope"]) & _inside(c["start"], w)]
        v = csv["variables"]
        v = v[(v["scope"] == site) & (v["name"] == "price_index")][["start", "value"]]
        c = c.merge(v, on="start", how="left", validate="many_to_one")
        assert c["value"].notna().all()
        produced = p["produced"].sum()
        sel = _inside(dc["release"], w) if name == "baseline" else _inside(dc["design_start"], w)
        out[name] = {
            "efficiency": p["good"].sum() / apt_h,
            "defect_rate": (p["scrap"].sum() + p["rework"].sum()) / produced,
            "inspection_defect_rate": (q["result"] == "fail").sum() / len(q),
            "operating_cost": (c["amount"] / c["value"]).sum() / produced,
            "unit_energy": e["quantity"].sum() * KGCE / produced,
            "development_cycle": (dc.loc[sel, "release"] - dc.loc[sel, "design_start"]).dt.days.mean(),
            "produced": produced, "apt_hours": apt_h,
        }
    return out


def test_truth_realised_values_match_the_written_tables(sim):
    csv, truth = sim["csv"], sim["truth"]
    for _, t in truth.iterrows():
        r = _recompute(csv, t)
        for ind in ("efficiency", "defect_rate", "inspection_defect_rate", "operating_cost", "unit_energy",
                    "development_cycle"):
            b, a = r["baseline"][ind], r["reporting"][ind]
            np.testing.assert_allclose(t[f"{ind}_baseline_value"], b, rtol=1e-9, err_msg=ind)
            np.testing.assert_allclose(t[f"{ind}_reporting_value"], a, rtol=1e-9, err_msg=ind)
            change = a / b - 1 if ind == "efficiency" else (b - a) / b
            np.testing.assert_allclose(t[f"{ind}_realised"], change, rtol=1e-9, atol=1e-12, err_msg=ind)
        assert t["baseline_produced"] == r["baseline"]["produced"]
        np.testing.assert_allclose(t["reporting_apt_hours"], r["reporting"]["apt_hours"], rtol=1e-9)


def test_realised_effects_follow_the_true_ones(sim):
    """Efficiency and the production defect rate are measured precisely; the others are noisier."""
    t = sim["truth"]
    assert (t["efficiency_realised"] - t["true_efficiency_change"]).abs().max() < 0.1
    assert (t["defect_rate_realised"] - t["true_defect_rate_reduction"]).abs().max() < 0.15
    assert (t["operating_cost_realised"] - t["true_operating_cost_reduction"]).abs().max() < 0.25
    assert (t["unit_energy_realised"] - t["true_unit_energy_reduction"]).abs().max() < 0.25
    # volume changes between the windows: output moves, and the faster lines need fewer production hours
    assert not np.allclose(t["reporting_produced"] / t["baseline_produced"], 1.0, atol=0.02)


def test_ingest_quarantines_nothing_and_the_engine_agrees(sim):
    paths, truth = sim["paths"], sim["truth"]
    with zhizao.connect(sim["dir"] / "programme.duckdb") as ws:
        for name in ORDER:
            for r in ws.ingest(name, paths[name]):
                if r.quarantined:
                    print(ws.quarantine().head(20).to_string())
                assert r.quarantined == 0, str(r)
                assert r.loaded == len(sim["tables"][name]), str(r)
        el = ws.elements(level="work_center", period="month")
    assert el["unaccounted"].fillna(0).eq(0).all() and el["overlap"].fillna(0).eq(0).all()
    assert el["outside_pbt"].fillna(0).eq(0).all()
    for _, t in truth.iterrows():
        for name, w in _windows(t).items():
            g = el[(el["work_center"] == t["scope"]) & _inside(el["period_start"], w)].sum(numeric_only=True)
            np.testing.assert_allclose(g["gq"] / g["apt"] * 3600, t[f"efficiency_{name}_value"], rtol=1e-9)
            np.testing.assert_allclose((g["sq"] + g["rq"]) / g["pq"], t[f"defect_rate_{name}_value"], rtol=1e-9)
            np.testing.assert_allclose(g["energy_kgce"] / g["pq"], t[f"unit_energy_{name}_value"], rtol=1e-9)
            np.testing.assert_allclose((g["ip"] - g["gp"]) / g["ip"], t[f"inspection_defect_rate_{name}_value"],
                                       rtol=1e-9)
