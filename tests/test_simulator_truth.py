"""The engine recovers the simulator's ground truth exactly (elements per equipment and local day).

The simulator computes its truth from its own event list and calendar (zhizao.simulate.plant), never from the
engine; the range crosses the Europe/Berlin DST change of 2025-03-30 (a 23 h day) and includes a holiday.
"""

import numpy as np
import pandas as pd
import pytest

import zhizao
from zhizao.simulate import simulate_plant, write_plant

ORDER = ("equipment", "products", "calendar", "states", "production", "energy", "labour", "quality")
COMPARED = ["ct", "pot", "pdt", "pbt", "apt", "aust", "adot", "adet", "adet_minor", "aupt", "aubt", "fe", "ttr",
            "pq", "gq", "sq", "rq", "ideal_time", "energy_kwh", "ip", "gp"]


@pytest.fixture(scope="module")
def recovered(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim")
    tables = simulate_plant(machines=6, days=10, seed=11, start="2025-03-24", timezone="Europe/Berlin")
    paths = write_plant(tables, d / "plant")
    with zhizao.connect(d / "sim.duckdb") as ws:
        for t in ORDER:
            r = ws.ingest(t, paths[t])[0]
            assert r.quarantined == 0, ws.quarantine().head().to_dict("records")
        el = ws.kpi(level="equipment", period="day")
    truth = pd.read_csv(paths["truth"])
    # the equipment-days with records of each kind (local days of the records' time stamps)
    days = {}
    for kind, table, ts in (("production", "production", "start"), ("quality", "quality", "ts"),
                            ("energy", "energy", "start")):
        t = pd.read_csv(paths[table], usecols=["equipment_id", ts])
        local = pd.to_datetime(t[ts], utc=True).dt.tz_convert("Europe/Berlin").dt.strftime("%Y-%m-%d")
        days[kind] = set(zip(t["equipment_id"], local))
    truth.attrs["record_days"] = days
    return el, truth


def test_every_equipment_day_is_recovered_exactly(recovered):
    el, truth = recovered
    m = truth.merge(el, on=["equipment_id", "period_start"], suffixes=("_true", ""), how="left")
    assert len(m) == len(truth) == 6 * 10
    assert m["period_end"].equals(m["period_end_true"])
    # gaps are gaps: a day without any record of a kind has null elements of that kind (the truth counts 0
    # units there); every other day is recovered exactly
    kind_of = {**dict.fromkeys(["pq", "gq", "sq", "rq", "ideal_time"], "production"),
               **dict.fromkeys(["ip", "gp"], "quality"), "energy_kwh": "energy"}
    for c in COMPARED:
        got, want = m[c].to_numpy(float), m[f"{c}_true"].to_numpy(float)
        if c in kind_of:
            has = np.array([k in truth.attrs["record_days"][kind_of[c]] for k in zip(m["equipment_id"], m["day"])])
            assert np.array_equal(np.isnan(got), ~has), c
            assert (want[~has] == 0).all(), c
            got, want = got[has], want[has]
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-5, err_msg=c)


def test_the_dst_day_has_23_hours(recovered):
    el, _ = recovered
    dst = el[el["period_start"] == "2025-03-30T00:00:00+01:00"]
    assert len(dst) == 6 and (dst["ct"] == 23 * 3600).all()


def test_simulated_kpis_are_plausible_and_unflagged(recovered):
    el, _ = recovered
    assert (el["unaccounted"] == 0).all()
    a = el["availability"]
    assert a.dropna().between(0.3, 1).all()
    # Sundays and the holiday have no planned busy time: availability is undefined, not 0
    assert (el.loc[a.isna(), "pbt"] == 0).all() and a.isna().sum() >= 6
    assert el.loc[a.isna(), "null_reasons"].str.contains("availability: undefined, pbt = 0").all()
