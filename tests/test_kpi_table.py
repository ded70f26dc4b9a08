"""Every KPI of kpi/kpis.py from hand-computed element rows: values, nulls and null reasons (issue 10).

Each row of ROWS is a set of elements; EXPECTED gives, per KPI, its value on each row (worked by hand in the
comment beside it) or None for null, and the reason expected for a null.
"""

import math

import numpy as np
import pandas as pd
import pytest

from zhizao.kpi import model
from zhizao.kpi.kpis import KPI_NAMES, compute_kpis, null_reason_messages, parse_null_reasons

NAN = float("nan")
#: the reason's English start -> its code
CODES = (("no data", "kpi.no_data_in_period"), ("undefined, a factor", "kpi.undefined_factor_null"),
         ("undefined, ", "kpi.undefined_zero_denominator"), ("unavailable, pri", "kpi.unavailable_pri_missing"),
         ("unavailable, work_hours", "kpi.unavailable_work_hours_missing"),
         ("unavailable, no data", "kpi.unavailable_no_data"))
BASE = dict(ct=28800.0, pot=27000.0, pdt=1800.0, pbt=25200.0, apt=18000.0, aust=1800.0, aupt=19800.0,
            adet=2400.0, adet_minor=600.0, aubt=22200.0, adot=1800.0, unaccounted=1200.0, pmt=1200.0,
            ttr=1800.0, fe=3.0, pq=1000.0, gq=950.0, sq=40.0, rq=10.0, ideal_time=16200.0,
            ideal_good_time=15390.0, pq_no_pri=0.0, energy_kgce=24.58, energy_kwh=200.0, apat=80.0, apwt=72.0,
            apat_no_apwt=0.0, earned_hours=60.0, ip=100.0, gp=92.0, defects=5.0, epc=1250.0)
ROWS = [
    BASE,
    # a full breakdown without counts: PBT > 0, APT = 0, no production, labour, energy or quality data
    dict(BASE, apt=0.0, aust=0.0, aupt=0.0, adet=25200.0, adet_minor=0.0, aubt=25200.0, adot=0.0,
         unaccounted=0.0, ttr=25200.0, fe=1.0, pq=NAN, gq=NAN, sq=NAN, rq=NAN, ideal_time=NAN,
         ideal_good_time=NAN, pq_no_pri=NAN, energy_kgce=NAN, energy_kwh=NAN, apat=NAN, apwt=NAN,
         apat_no_apwt=NAN, earned_hours=NAN, ip=NAN, gp=NAN, defects=NAN),
    # nothing scheduled, no failures; some counts without pri; labour without work hours on a record
    dict(BASE, pot=0.0, pdt=0.0, pbt=0.0, apt=0.0, aust=0.0, aupt=0.0, adet=0.0, adet_minor=0.0, aubt=0.0,
         adot=0.0, unaccounted=0.0, pmt=0.0, ttr=0.0, fe=0.0, pq_no_pri=10.0, apat_no_apwt=8.0, epc=0.0),
]

#: KPI -> (values per row, null reason per row for the nulls)
EXPECTED = {
    "worker_efficiency": ([72 / 80, None, None], [None, "no data", "unavailable, work_hours missing"]),
    "allocation_efficiency": ([22200 / 25200, 1.0, None], [None, None, "undefined, pbt = 0"]),
    "utilization_efficiency": ([18000 / 22200, 0.0, None], [None, None, "undefined, aubt = 0"]),
    "availability": ([18000 / 25200, 0.0, None], [None, None, "undefined, pbt = 0"]),
    "effectiveness": ([16200 / 18000, None, None], [None, "undefined, apt = 0", "undefined, apt = 0"]),
    "quality_ratio": ([950 / 1000, None, 0.95], [None, "no data", None]),
    "setup_ratio": ([1800 / 19800, None, None], [None, "undefined, aupt = 0", "undefined, aupt = 0"]),
    "technical_efficiency": ([18000 / 20400, 0.0, None], [None, None, "undefined, apt + adet = 0"]),
    "first_pass_yield": ([0.92, None, 0.92], [None, "no data", None]),
    "scrap_ratio": ([0.04, None, 0.04], [None, "no data", None]),
    "rework_ratio": ([0.01, None, 0.01], [None, "no data", None]),
    "comprehensive_energy_consumption": ([24.58 / 1000, None, 24.58 / 1000], [None, "no data", None]),
    "equipment_load_ratio": ([1000 / 1250, None, None], [None, "no data", "undefined, epc = 0"]),
    "mean_operating_time_between_failures": ([25200 / 3, 25200.0, None], [None, None, "undefined, fe = 0"]),
    "mean_time_to_failure": ([(25200 - 1800) / 3, 0.0, None], [None, None, "undefined, fe = 0"]),
    "mean_time_to_restoration": ([600.0, 25200.0, None], [None, None, "undefined, fe = 0"]),
    "corrective_maintenance_ratio": ([1800 / 3000, 25200 / 26400, None], [None, None, "undefined, ttr + pmt = 0"]),
    "quality_ratio_time": ([15390 / 16200, None, None], [None, "no data", "unavailable, pri missing"]),
    "defect_rate": ([0.05, None, 0.05], [None, "no data", None]),
    "energy_per_good_unit": ([200 / 950, None, 200 / 950], [None, "no data", None]),
    "labour_productivity": ([60 / 80, None, 60 / 80], [None, "no data", None]),
    "utilization": ([25200 / 28800, 25200 / 28800, 0.0], [None, None, None]),
    # OEE = A x E x Q = (18000/25200) x (16200/18000) x 0.95 = 16200/25200 x 0.95; a full breakdown: 0
    "oee": ([16200 / 25200 * 0.95, 0.0, None], [None, None, "undefined, a factor is null"]),
    "nee": ([19800 / 25200 * 0.9 * 0.95, None, None], [None, "undefined, a factor is null",
                                                      "undefined, a factor is null"]),
    "teep": ([16200 / 25200 * 0.95 * 25200 / 28800, 0.0, None], [None, None, "undefined, a factor is null"]),
}


def test_the_table_covers_every_kpi():
    assert set(EXPECTED) == set(KPI_NAMES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_kpi_from_hand_computed_rows(name):
    values, reasons = EXPECTED[name]
    out = compute_kpis(pd.DataFrame(ROWS))
    got = out[name].tolist()
    for i, (want, why) in enumerate(zip(values, reasons)):
        if want is None:
            assert math.isnan(got[i]), (name, i, got[i])
            assert why is not None and parse_null_reasons(out["null_reasons"][i])[name].startswith(why), (
                name, i, out["null_reasons"][i])
            # the same reason, structured: a code and its parameters, rendered in either language
            m = null_reason_messages(out["null_reason_codes"][i])[name]
            assert str(m) == parse_null_reasons(out["null_reasons"][i])[name]
            assert m.code == next(code for prefix, code in CODES if why.startswith(prefix))
            if why.startswith("undefined, ") and why.endswith(" = 0"):
                assert (m.code, m.args) == ("kpi.undefined_zero_denominator", {"den": why[len("undefined, "):-4]})
            assert m.text("zh") != str(m)  # translated
        else:
            assert got[i] == pytest.approx(want, rel=1e-12), (name, i)
            assert name not in parse_null_reasons(out["null_reasons"][i])
            assert name not in null_reason_messages(out["null_reason_codes"][i])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_pure_function_of_each_kpi_gives_the_table_value(name):
    # the same hand-computed values from zhizao.kpi.model alone (no engine, no DataFrame)
    e = {k: np.array([r[k] for r in ROWS]) for k in ROWS[0]}
    f = getattr(model, name)
    if name == "oee":
        got = f(model.availability(e["apt"], e["pbt"]), model.effectiveness(e["ideal_time"], e["apt"]),
                model.quality_ratio(e["gq"], e["pq"]), e["apt"], e["pbt"])
    elif name == "nee":
        got = f(e["aupt"], e["pbt"], model.effectiveness(e["ideal_time"], e["apt"]), model.quality_ratio(e["gq"], e["pq"]))
    elif name == "teep":
        o = model.oee(model.availability(e["apt"], e["pbt"]), model.effectiveness(e["ideal_time"], e["apt"]),
                      model.quality_ratio(e["gq"], e["pq"]), e["apt"], e["pbt"])
        got = f(o, e["pbt"], e["ct"])
    else:
        import inspect
        got = f(*(e[p] for p in inspect.signature(f).parameters))
    values, _ = EXPECTED[name]
    for i, want in enumerate(values):
        # pq_no_pri and apat_no_apwt are engine rules on top of the formula (row 2)
        if want is None:
            continue
        assert got[i] == pytest.approx(want, rel=1e-12), (name, i)


def test_the_examples_in_the_model_docstrings_run():
    import doctest

    from zhizao.kpi import coverage, kpis, states
    for mod in (model, states, kpis, coverage):
        res = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert res.failed == 0 and res.attempted > 0, mod.__name__
