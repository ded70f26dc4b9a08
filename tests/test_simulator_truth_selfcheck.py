"""Self-checks of the plant simulator and its ground truth (no zhizao KPI engine involved)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from zhizao.schema import TABLES
from zhizao.simulate import TRUTH_COLUMNS, simulate_plant, write_plant

TZ = "Europe/Berlin"
ISO_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")


@pytest.fixture(scope="module")
def spring():
    """8 machines over two weeks that contain the spring DST change (2025-03-30, a 23 h day)."""
    return simulate_plant(machines=8, days=14, seed=11, start="2025-03-24", timezone=TZ)


@pytest.fixture(scope="module")
def autumn():
    """A short run over the autumn DST change (2025-10-26, a 25 h day)."""
    return simulate_plant(machines=3, days=8, seed=5, start="2025-10-21", timezone=TZ)


def _epoch(col: pd.Series) -> np.ndarray:
    """Epoch seconds of a tz-aware timestamp column."""
    return col.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[s]").astype(np.int64).to_numpy()


def _with_durations(states: pd.DataFrame) -> pd.DataFrame:
    s = states.copy()
    s["t"] = _epoch(s["start"])
    s["next_t"] = s.groupby("equipment_id")["t"].shift(-1)
    s["dur"] = s["next_t"] - s["t"]
    return s


def test_deterministic_for_a_seed():
    a = simulate_plant(machines=6, days=9, seed=42)
    b = simulate_plant(machines=6, days=9, seed=42)
    assert a.keys() == b.keys()
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True)
    c = simulate_plant(machines=6, days=9, seed=43)
    assert not c["states"].equals(a["states"])


def test_table_keys_and_canonical_columns(spring):
    assert set(spring) == {"equipment", "states", "production", "products", "calendar", "energy", "labour",
                           "quality", "truth"}
    for name, df in spring.items():
        if name == "truth":
            assert tuple(df.columns) == TRUTH_COLUMNS
            continue
        table = TABLES[name]
        assert set(df.columns) <= set(table.names), (name, set(df.columns) - set(table.names))
        for col in table.columns:
            if col.required:
                assert col.name in df.columns, (name, col.name)
                assert df[col.name].notna().all(), (name, col.name)
        assert len(df) > 0, name


def test_plant_structure(spring):
    eq = spring["equipment"]
    assert list(eq["equipment_id"]) == [f"M{i:03d}" for i in range(1, 9)]
    assert list(eq["work_center"]) == ["L01"] * 5 + ["L02"] * 3
    assert set(eq["area"]) == {"A1"} and set(eq["site"]) == {"S1"} and set(eq["enterprise"]) == {"E1"}
    products = spring["products"].set_index("product_id")
    assert 4 <= len(products) <= 6 and products["equipment_id"].isna().all()
    assert products["pri"].between(20, 60).all()
    # epc is the capacity at the pri of one of the products
    caps = set(np.round(3600.0 / products["pri"], 4))
    assert set(eq["epc"]) <= caps


def test_states_do_not_overlap_and_timeline_is_closed(spring):
    s = _with_durations(spring["states"])
    assert s["end"].isna().all()
    truth = spring["truth"]
    t0 = _epoch(pd.to_datetime(truth["period_start"], format="ISO8601", utc=True)).min()
    t1 = _epoch(pd.to_datetime(truth["period_end"], format="ISO8601", utc=True)).max()
    for _, g in s.groupby("equipment_id"):
        t = g["t"].to_numpy()
        assert (np.diff(t) > 0).all()  # one state at any instant, no zero-length states
        assert t[0] == t0
        assert t[-1] == t1 and g["state"].iloc[-1] == "OFF"
    # timestamps are whole seconds
    assert (s["start"].dt.microsecond == 0).all()
    expected = {"RUN": "production", "SETUP": "setup", "FAIL": "unplanned_downtime", "MINOR": "minor_stop",
                "IDLE": "no_order", "BREAK": "planned_downtime", "OFF": "not_scheduled"}
    assert (s["category"] == s["state"].map(expected)).all()
    # states change at arbitrary seconds, not only on minutes
    assert (s["start"].dt.second != 0).any()


def test_failures_and_minor_stops_are_cleanly_apart(spring):
    s = _with_durations(spring["states"])
    fail = s[s["state"] == "FAIL"]
    minor = s[s["state"] == "MINOR"]
    assert len(fail) > 10 and len(minor) > 100
    assert (fail["dur"] >= 300).all()
    assert (minor["dur"] < 300).all() and (minor["dur"] > 0).all()
    assert fail["reason"].notna().all() and minor["reason"].notna().all()
    # some failures run across a break or the end of a shift, so clipping to PBT is exercised
    follower = s.groupby("equipment_id")["state"].shift(-1)
    assert follower[fail.index].isin(["BREAK", "OFF"]).any()


def test_truth_time_model(spring, autumn):
    for tables in (spring, autumn):
        tr = tables["truth"]
        eps = 1e-6
        assert (tr["apt"] + tr["aust"] + tr["adet"] + tr["adot"] <= tr["pbt"] + eps).all()
        assert (tr["pbt"] + tr["pdt"] == tr["pot"]).all()
        assert (tr["pot"] <= tr["ct"]).all()
        assert (tr["aupt"] == tr["apt"] + tr["aust"]).all()
        assert (tr["aubt"] == tr["aupt"] + tr["adet"]).all()
        assert (tr["adet_minor"] + tr["ttr"] == tr["adet"]).all()
        assert (tr[["pot", "pdt", "pbt", "apt", "aust", "adot", "adet", "fe", "pq", "ip"]] >= 0).all().all()
        n_eq, n_days = len(tables["equipment"]), tr["day"].nunique()
        assert len(tr) == n_eq * n_days  # every machine, every day (Sundays included)
        sundays = pd.to_datetime(tr["day"]).dt.day_of_week == 6
        assert (tr.loc[sundays, ["pot", "pbt", "apt", "pq", "fe"]] == 0).all().all()


def test_dst_days(spring, autumn):
    ct = spring["truth"].groupby("day")["ct"].first()
    assert ct["2025-03-30"] == 82800
    assert (ct.drop("2025-03-30") == 86400).all()
    assert autumn["truth"].groupby("day")["ct"].first()["2025-10-26"] == 90000
    e = spring["energy"]
    per_day = e.groupby(e["start"].dt.strftime("%Y-%m-%d")).size() / len(spring["equipment"])
    assert per_day["2025-03-30"] == 92 and per_day["2025-03-31"] == 96
    # every shift lasts 8 h of elapsed time in the plant's zone
    cal = spring["calendar"]
    shifts = cal[cal["kind"] == "shift"]
    assert ((shifts["end"] - shifts["start"]) == pd.Timedelta(hours=8)).all()
    assert set(shifts["start"].dt.strftime("%H:%M")) == {"06:00", "14:00"}


def test_calendar_entries(spring):
    cal = spring["calendar"]
    pm = cal[cal["kind"] == "planned_downtime"]
    br = cal[cal["kind"] == "break"]
    sh = cal[cal["kind"] == "shift"]
    assert set(sh["scope"]) == {"S1"} and set(sh["name"]) == {"early", "late"}
    assert set(pm["scope"]) == set(spring["equipment"]["equipment_id"])
    assert ((pm["end"] - pm["start"]) == pd.Timedelta(hours=2)).all()
    for _, row in pm.iterrows():
        assert ((sh["start"] <= row["start"]) & (sh["end"] >= row["end"])).any()
        assert not ((br["start"] < row["end"]) & (br["end"] > row["start"])).any()
    # one maintenance window per machine and (partial) week: two ISO weeks here
    assert (pm.groupby("scope").size() == 2).all()
    assert (cal["kind"] == "holiday").sum() == 1


def test_truth_sums_match_tables(spring):
    tr = spring["truth"]
    prod = spring["production"]
    assert tr["pq"].sum() == prod["produced"].sum()
    assert tr["gq"].sum() == prod["good"].sum()
    assert tr["sq"].sum() == prod["scrap"].sum()
    assert tr["rq"].sum() == prod["rework"].sum()
    assert (prod["good"] == prod["produced"] - prod["scrap"] - prod["rework"]).all()
    assert tr["energy_kwh"].sum() == pytest.approx(spring["energy"]["quantity"].sum(), rel=1e-12)
    q = spring["quality"]
    assert tr["ip"].sum() == len(q)
    assert tr["gp"].sum() == (q["first_pass"] & (q["result"] == "pass")).sum()
    pri = spring["products"].set_index("product_id")["pri"]
    ideal = (prod["product_id"].map(pri) * prod["produced"]).sum()
    assert tr["ideal_time"].sum() == pytest.approx(ideal, rel=1e-12)
    fails = spring["states"]["state"].eq("FAIL").sum()
    assert tr["fe"].sum() == fails


def test_production_inside_run_states_and_local_hours(spring):
    prod = spring["production"]
    ps, pe = _epoch(prod["start"]), _epoch(prod["end"])
    assert (pe > ps).all()
    # no row crosses a local clock hour
    assert (prod["start"].dt.floor("h") == (prod["end"] - pd.Timedelta(seconds=1)).dt.floor("h")).all()
    s = _with_durations(spring["states"])
    for mid, g in prod.groupby("equipment_id"):
        sm = s[s["equipment_id"] == mid]
        t = sm["t"].to_numpy()
        i = np.searchsorted(t, _epoch(g["start"]), "right") - 1
        assert (sm["state"].to_numpy()[i] == "RUN").all()
        assert (_epoch(g["end"]) <= sm["next_t"].to_numpy()[i]).all()
    q = spring["quality"]
    for mid, g in q.groupby("equipment_id"):
        sm = s[s["equipment_id"] == mid]
        i = np.searchsorted(sm["t"].to_numpy(), _epoch(g["ts"]), "right") - 1
        assert (sm["state"].to_numpy()[i] == "RUN").all()


def test_truth_against_brute_force_seconds(spring):
    """Recount the time elements second by second from the tables for two machines."""
    tr = spring["truth"].set_index(["equipment_id", "day"])
    s = _with_durations(spring["states"])
    cal = spring["calendar"]
    day_start = _epoch(pd.to_datetime(spring["truth"]["period_start"], format="ISO8601", utc=True))
    t0 = day_start.min()
    t1 = _epoch(pd.to_datetime(spring["truth"]["period_end"], format="ISO8601", utc=True)).max()
    n = t1 - t0

    def mask(rows):
        m = np.zeros(n, dtype=bool)
        for a, b in zip(_epoch(rows["start"]), _epoch(rows["end"])):
            m[a - t0:b - t0] = True
        return m

    shift = mask(cal[(cal["kind"] == "shift") & (cal["scope"] == "S1")])
    holiday = mask(cal[(cal["kind"] == "holiday") & (cal["scope"] == "S1")])
    pot = shift & ~holiday
    days = sorted(spring["truth"]["day"].unique())
    edges = np.r_[np.unique(day_start), t1] - t0
    for mid in ("M001", "M006"):
        cal_pd = mask(cal[(cal["kind"].isin(["break", "planned_downtime"]))
                          & cal["scope"].isin(["S1", mid])])
        code = np.empty(n, dtype=object)
        sm = s[(s["equipment_id"] == mid) & s["next_t"].notna()]
        for a, b, st in zip(sm["t"], sm["next_t"].astype(np.int64), sm["state"]):
            code[a - t0:b - t0] = st
        pdt = pot & (cal_pd | (code == "BREAK"))
        pbt = pot & ~pdt
        for k, day in enumerate(days):
            sl = slice(edges[k], edges[k + 1])
            row = tr.loc[(mid, day)]
            assert row["ct"] == edges[k + 1] - edges[k]
            assert row["pot"] == pot[sl].sum()
            assert row["pdt"] == pdt[sl].sum()
            assert row["pbt"] == pbt[sl].sum()
            c = code[sl][pbt[sl]]
            assert row["apt"] == (c == "RUN").sum()
            assert row["aust"] == (c == "SETUP").sum()
            assert row["adot"] == (c == "IDLE").sum()
            assert row["adet"] == np.isin(c, ["FAIL", "MINOR"]).sum()
            assert row["adet_minor"] == (c == "MINOR").sum()
            assert row["ttr"] == (c == "FAIL").sum()


def test_written_csvs_round_trip(spring, tmp_path):
    paths = write_plant(spring, tmp_path)
    assert paths["truth"].name == "truth_elements.csv"
    readme = paths["readme"].read_text(encoding="utf-8")
    assert "SIMULATED" in readme and "seed: 11" in readme and "machines=8" in readme
    for name, df in spring.items():
        back = pd.read_csv(paths[name], dtype=str, keep_default_na=False)
        assert len(back) == len(df), name
        assert list(back.columns) == list(df.columns), name
    states = pd.read_csv(paths["states"], dtype=str, keep_default_na=False)
    assert states["start"].str.match(ISO_OFFSET).all()
    assert (states["end"] == "").all()
    assert states["start"].str.endswith("+01:00").any() and states["start"].str.endswith("+02:00").any()
    eq = pd.read_csv(paths["equipment"], dtype=str)
    assert set(eq["digital"]) <= {"true", "false"}
    q = pd.read_csv(paths["quality"], dtype=str)
    assert set(q["first_pass"]) <= {"true", "false"}
    # the instants survive the round trip
    back = pd.to_datetime(pd.read_csv(paths["production"], dtype=str)["start"], format="ISO8601", utc=True)
    assert (back.to_numpy() == spring["production"]["start"].dt.tz_convert("UTC").to_numpy()).all()
