"""The eemeter side of ``benchmarks/verify_vs_eemeter.py``; runs ONLY inside ``benchmarks/.venv-eemeter``.

Not part of zhizao and not importable from it: this script imports ``eemeter`` (4.1.1, pinned with its
dependencies in ``benchmarks/requirements-eemeter.txt``), which is not a dependency of the project.

One model per process, so that the first call is a true cold call::

    benchmarks/.venv-eemeter/bin/python benchmarks/eemeter_side.py --model daily --repeat 3

Models:

- ``daily``: eemeter's daily model (``eemeter.eemeter.DailyModel``, the CalTRACK 2.0 daily successor:
  change-point HDD/CDD models per season and weekday/weekend split, fitted with nlopt, numba-JIT compiled
  kernels cached on disk by numba);
- ``hourly_towt``: CalTRACK hourly, time-of-week-and-temperature (``eemeter.eemeter.HourlyCaltrackModel``,
  three-month weighted segments, occupancy and temperature bins);
- ``hourly_elasticnet``: eemeter 4's new hourly model (``eemeter.eemeter.HourlyModel``, elastic net on
  temperature bins and temporal clusters; seed 42).

Windows: baseline the 365 days before the intervention window 2016-12-26 .. 2017-01-04 (2015-12-27 ..
2016-12-26; ``--baseline-start`` changes the first day: 2015-12-26 gives the 366 days of zhizao's tests, which
eemeter's sufficiency check disqualifies as longer than 365 days), reporting 2017-01-04 .. 2018-01-04.
With ``--tz utc`` (default) the samples are loaded with eemeter's own ``load_sample``: its loader resamples
the daily meter to UTC days and the windows are UTC midnights (as eemeter's metadata localises the blackout
dates to UTC). With ``--tz local`` the same files are loaded with eemeter's ``meter_data_from_csv`` /
``temperature_data_from_csv`` converted to the samples' own offset (-06:00, ``Etc/GMT+6``), so days and
windows are local, as zhizao reads them.

Timed call (``calls_s``): building the data objects from the series (eemeter's sufficiency checks),
fitting, predicting the baseline (for the fit metrics) and the reporting period, and the savings interval.
Sample loading is timed apart (``load_s``), and so is ``import eemeter`` (``import_s``).

Savings interval "as eemeter reports it": ``eemeter.common.metrics.BaselineMetrics`` on the baseline
predictions and ``ReportingMetrics`` on the reporting predictions, 90 % confidence (its default), two-tailed
t: the ASHRAE Guideline 14 fractional savings uncertainty with eemeter's factors (1.26 for hourly, the CalTRACK
polynomial in reporting months for daily). interval = saving % +- FSU x saving %. For ``hourly_towt`` the
model's own per-hour ``predicted_uncertainty`` (monthly ASHRAE 14, t with m dof) summed in quadrature is
also reported (``alt_interval``).

Prints one JSON object on the last line of stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import warnings

T_IMPORT0 = time.perf_counter()
import eemeter  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from eemeter.common.metrics import BaselineMetrics, ReportingMetrics  # noqa: E402
from eemeter.eemeter.samples import load_sample  # noqa: E402
from eemeter.eemeter.utilities.io import meter_data_from_csv, temperature_data_from_csv  # noqa: E402

IMPORT_S = time.perf_counter() - T_IMPORT0
E = eemeter.eemeter

SAMPLES = {"daily": "il-electricity-cdd-hdd-daily", "hourly_towt": "il-electricity-cdd-hdd-hourly",
           "hourly_elasticnet": "il-electricity-cdd-hdd-hourly"}
LOCAL_TZ = "Etc/GMT+6"
WINDOWS = {"baseline": ("2015-12-27", "2016-12-26"), "reporting": ("2017-01-04", "2018-01-04")}
CONFIDENCE = 0.90
SEED = 42


def load(model: str, tz: str):
    """(meter DataFrame with column ``value``, temperature Series in deg F) as eemeter loads them."""
    sample = SAMPLES[model]
    if tz == "utc":
        meter, temp, _meta = load_sample(sample)
        return meter, temp
    import importlib.resources

    meta = json.loads(importlib.resources.files("eemeter.eemeter.samples").joinpath("metadata.json").read_text())
    md = meta[sample]
    pkg = importlib.resources.files("eemeter.eemeter.samples")
    with pkg.joinpath(md["meter_data_filename"]).open("rb") as f:
        meter = meter_data_from_csv(f, gzipped=True, freq=md["freq"], tz=LOCAL_TZ)
    with pkg.joinpath(md["temperature_filename"]).open("rb") as f:
        temp = temperature_data_from_csv(f, gzipped=True, freq="hourly", tz=LOCAL_TZ)
    return meter, temp


def windows(tz: str, baseline_start: str | None = None):
    z = "UTC" if tz == "utc" else LOCAL_TZ
    w = dict(WINDOWS)
    if baseline_start:
        w["baseline"] = (baseline_start, w["baseline"][1])
    return {k: (pd.Timestamp(a, tz=z), pd.Timestamp(b, tz=z)) for k, (a, b) in w.items()}


def _cut(x, w):
    return x[(x.index >= w[0]) & (x.index < w[1])]


def _interval(pb: pd.DataFrame, pr: pd.DataFrame, num_params: int, freq: str) -> dict:
    """Saving and its interval with eemeter's BaselineMetrics / ReportingMetrics (ASHRAE 14 FSU)."""
    pb = pb.dropna(subset=["observed", "predicted"])
    pr = pr.dropna(subset=["observed", "predicted"])
    bm = BaselineMetrics(df=pb[["observed", "predicted"]], num_model_params=max(int(num_params), 1))
    rm = ReportingMetrics(baseline_metrics=bm, reporting_df=pr[["observed", "predicted"]], data_frequency=freq,
                          confidence_level=CONFIDENCE)
    adjusted, reporting, saving = float(rm.predicted_sum), float(rm.observed_sum), float(rm.savings)
    unc = float(rm.total_savings_uncertainty)
    frac = saving / adjusted
    half = unc / adjusted
    return {"adjusted_baseline_kwh": adjusted, "reporting_kwh": reporting, "saving_kwh": saving,
            "saving_frac": frac, "half_width_frac": half, "ci_low": frac - half, "ci_high": frac + half,
            "uncertainty_kwh": unc, "fsu": float(rm.fsu), "n": int(bm.n), "n_prime": float(bm.n_prime),
            "m": int(rm.n), "num_model_params": int(num_params), "t": float(rm.t_stat),
            "cvrmse_adj": float(bm.cvrmse_adj), "r2": float(bm.r_squared),
            "convention": f"eemeter.common.metrics.ReportingMetrics, data_frequency={freq!r}, "
                          f"confidence {CONFIDENCE}"}


def run_daily(meter, temp, w) -> dict:
    mb, mr = _cut(meter, w["baseline"]), _cut(meter, w["reporting"])
    tb, tr = _cut(temp, w["baseline"]), _cut(temp, w["reporting"])
    bd = E.DailyBaselineData.from_series(mb, tb, is_electricity_data=True)
    rd = E.DailyReportingData.from_series(mr, tr, is_electricity_data=True)
    model = E.DailyModel().fit(bd, ignore_disqualification=True)
    pb = model.predict(bd, ignore_disqualification=True)
    pr = model.predict(rd, ignore_disqualification=True)
    k = sum(int(np.count_nonzero(np.asarray(s.coefficients.to_np_array(), float)))
            for s in model.params.submodels.values())
    out = _interval(pb, pr, k, "daily")
    out["model"] = {"best_combination": model.best_combination,
                    "submodels": {key: s.model_type.value for key, s in model.params.submodels.items()},
                    "error": model.error,
                    "disqualification": sorted({x.qualified_name for x in model.disqualification}),
                    "warnings": sorted({x.qualified_name for x in model.warnings})}
    return out


def run_hourly_towt(meter, temp, w) -> dict:
    mb, mr = _cut(meter, w["baseline"]), _cut(meter, w["reporting"])
    tb, tr = _cut(temp, w["baseline"]), _cut(temp, w["reporting"])
    bd = E.HourlyCaltrackBaselineData.from_series(mb, tb, is_electricity_data=True)
    rd = E.HourlyCaltrackReportingData.from_series(mr, tr, is_electricity_data=True)
    bd_pred = E.HourlyCaltrackReportingData.from_series(mb, tb, is_electricity_data=True)
    model = E.HourlyCaltrackModel().fit(bd)
    pb = model.predict(bd_pred)
    pr = model.predict(rd)
    k = max(int(m.num_parameters) for m in model.model_metrics.values())
    out = _interval(pb, pr, k, "hourly")
    p2 = pr.dropna(subset=["observed", "predicted"])
    unc = float(np.sqrt((p2["predicted_uncertainty"] ** 2).sum()))
    out["alt_interval"] = {
        "convention": "HourlyCaltrackModel.predict predicted_uncertainty (ASHRAE 14 per month, 1.26, t with m "
                      "dof), summed in quadrature over the reporting hours",
        "uncertainty_kwh": unc, "half_width_frac": unc / out["adjusted_baseline_kwh"],
        "fsu": unc / out["saving_kwh"]}
    out["model"] = {"segment_type": model.segment_type, "segments": len(model.model_metrics),
                    "num_parameters_max_segment": k}
    return out


def run_hourly_elasticnet(meter, temp, w) -> dict:
    def frame(wk):
        m = _cut(meter, w[wk])["value"].rename("observed")
        t = _cut(temp, w[wk]).rename("temperature")
        return pd.concat([t, m], axis=1)

    bd = E.HourlyBaselineData(frame("baseline"), is_electricity_data=True)
    rd = E.HourlyReportingData(frame("reporting"), is_electricity_data=True)
    model = E.HourlyModel(settings={"seed": SEED}).fit(bd, ignore_disqualification=True)
    pb = model.predict(bd, ignore_disqualification=True)
    pr = model.predict(rd, ignore_disqualification=True)
    k = int(model.baseline_metrics.num_model_params)
    out = _interval(pb, pr, k, "hourly")
    out["model"] = {"seed": SEED, "num_model_params": k,
                    "disqualification": sorted({x.qualified_name for x in model.disqualification})}
    return out


RUNNERS = {"daily": run_daily, "hourly_towt": run_hourly_towt, "hourly_elasticnet": run_hourly_elasticnet}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=sorted(RUNNERS), required=True)
    ap.add_argument("--repeat", type=int, default=2, help="calls in this process (the first is the cold one)")
    ap.add_argument("--tz", choices=("utc", "local"), default="utc")
    ap.add_argument("--baseline-start", default=None,
                    help="first baseline day (default 2015-12-27: the 365 days before 2016-12-26)")
    a = ap.parse_args(argv)
    logging.getLogger("eemeter").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    meter, temp = load(a.model, a.tz)
    load_s = time.perf_counter() - t0
    w = windows(a.tz, a.baseline_start)
    calls, res = [], None
    for _ in range(max(a.repeat, 1)):
        t0 = time.perf_counter()
        res = RUNNERS[a.model](meter, temp, w)
        calls.append(time.perf_counter() - t0)
    import numba
    import scipy
    import sklearn
    import statsmodels

    out = {"ok": True, "model": a.model, "sample": SAMPLES[a.model], "tz": a.tz,
           "windows": {k: [v[0].isoformat(), v[1].isoformat()] for k, v in w.items()},
           "import_s": IMPORT_S, "load_s": load_s, "calls_s": calls, "cold_s": calls[0],
           "warm_s": min(calls[1:]) if len(calls) > 1 else None,
           "blas_threads_env": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                                                "MKL_NUM_THREADS")},
           "numba_cache_dir": os.environ.get("NUMBA_CACHE_DIR") or "(default: __pycache__ beside the sources)",
           "result": res,
           "versions": {"python": sys.version.split()[0], "eemeter": eemeter.__version__, "pandas": pd.__version__,
                        "numpy": np.__version__, "scipy": scipy.__version__, "scikit-learn": sklearn.__version__,
                        "statsmodels": statsmodels.__version__, "numba": numba.__version__}}
    print(json.dumps(out, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
