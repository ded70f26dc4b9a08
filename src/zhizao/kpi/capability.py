"""Machine and process capability indices, ISO 22400-2 KPIs 19-22, from measured quality characteristics.

- Cm  = (USL - LSL) / (6 s)                 machine capability, short-term standard deviation s
- Cmk = min(USL - mean, mean - LSL) / (3 s)  critical machine capability
- Cp  = (USL - LSL) / (6 sigma)             process capability, long-term standard deviation sigma
- Cpk = min(USL - mean, mean - LSL) / (3 sigma)

Reading (the standard leaves the estimators open): sigma is the sample standard deviation (ddof = 1) of all
measurements of the group and period; s is the pooled within-subgroup standard deviation, with rational
subgroups of one equipment, one characteristic and one clock hour, sqrt(sum (n_g - 1) s_g^2 / sum (n_g - 1)).
Both come from sums (n, sum x, sum x^2 per subgroup), so they roll up without averaging indices.

Units: the indices are dimensionless (limits, mean and standard deviations in the characteristic's unit).

References
----------
ISO 22400-2:2014, clause 6, KPIs 19 (Cm), 20 (Cmk), 21 (Cp), 22 (Cpk); NIST/SEMATECH e-Handbook of Statistical
Methods, 6.1.6 "What is process capability?" (Cp, Cpk); docs/reference/iso22400.md, "KPI index" (rows 19-22, with
their tests in tests/test_capability.py) and "Sources".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from zhizao.schema import LEVEL_ID_COLUMN


def capability(measurements: pd.DataFrame, buckets: pd.DataFrame, level: str) -> pd.DataFrame:
    """Cm, Cmk, Cp and Cpk (ISO 22400-2, clause 6, KPIs 19-22) per entity of ``level``, characteristic and
    period bucket; formulas and estimators in the module docstring.

    Parameters
    ----------
    measurements : pandas.DataFrame
        Columns equipment_id, ts (tz-aware), characteristic, value, lsl, usl (the quality table rows that
        carry a measured value).
    buckets : pandas.DataFrame
        Equipment buckets: columns equipment_id, work_center, area, site, enterprise, tz, period_start,
        period_end (the equipment rows of :func:`zhizao.kpi.elements.compute_elements`).
    level : str
        ISA-95 level of the result.

    Returns
    -------
    pandas.DataFrame
        Columns: the level's id column, tz, period_start, period_end, characteristic, n, mean, sigma, s, lsl,
        usl, cm, cmk, cp, cpk, null_reason. Indices are null when fewer than two measurements (or no
        subgroup with two) exist, when the standard deviation is zero, or when the specification limits are
        missing or differ within the group.
    """
    col = LEVEL_ID_COLUMN[level]
    cols = [col, "tz", "period_start", "period_end", "characteristic", "n", "mean", "sigma", "s", "lsl", "usl",
            "cm", "cmk", "cp", "cpk", "null_reason"]
    m = measurements.dropna(subset=["value", "characteristic"])
    if m.empty or buckets.empty:
        return pd.DataFrame(columns=cols)
    m = m.assign(equipment_id=m["equipment_id"].astype(object)).sort_values("ts")
    b = buckets.assign(equipment_id=buckets["equipment_id"].astype(object)).sort_values("period_start")
    j = pd.merge_asof(m, b, left_on="ts", right_on="period_start", by="equipment_id", direction="backward")
    j = j[j["period_end"].notna() & (j["ts"] < j["period_end"])]
    if j.empty:
        return pd.DataFrame(columns=cols)
    j = j[j[col].notna()].copy()
    j["hour"] = j["ts"].dt.floor("h")
    j["x2"] = j["value"] ** 2
    keys = [col, "tz", "period_start", "period_end", "characteristic"]
    by = keys + [k for k in ("equipment_id", "hour") if k not in keys]
    sub = j.groupby(by).agg(n=("value", "size"), sx=("value", "sum"), sxx=("x2", "sum")).reset_index()
    sub["ss_within"] = sub["sxx"] - sub["sx"] ** 2 / sub["n"]
    sub["dof_within"] = sub["n"] - 1
    g = sub.groupby(keys).agg(n=("n", "sum"), sx=("sx", "sum"), sxx=("sxx", "sum"),
                              ss_within=("ss_within", "sum"), dof_within=("dof_within", "sum"))
    limits = j.groupby(keys).agg(lsl=("lsl", "first"), usl=("usl", "first"), n_lsl=("lsl", "nunique"),
                                 n_usl=("usl", "nunique"), miss=("lsl", lambda x: x.isna().sum()))
    g = g.join(limits).reset_index()
    g["mean"] = g["sx"] / g["n"]
    with np.errstate(invalid="ignore", divide="ignore"):
        var = (g["sxx"] - g["sx"] ** 2 / g["n"]) / (g["n"] - 1)
        g["sigma"] = np.sqrt(var.clip(lower=0)).where(g["n"] > 1)
        g["s"] = np.sqrt((g["ss_within"] / g["dof_within"]).clip(lower=0)).where(g["dof_within"] > 0)
    ok_limits = (g["n_lsl"] == 1) & (g["n_usl"] == 1) & (g["miss"] == 0) & g["usl"].notna()
    reason = pd.Series(None, index=g.index, dtype=object)
    reason[~ok_limits] = "specification limits missing or not unique in the group"
    reason[ok_limits & g["sigma"].isna()] = "fewer than two measurements"
    reason[ok_limits & (g["sigma"] == 0)] = "standard deviation is zero"
    width = g["usl"] - g["lsl"]
    near = np.minimum(g["usl"] - g["mean"], g["mean"] - g["lsl"])

    def idx(num: pd.Series, den: pd.Series, k: int) -> pd.Series:
        return (num / (k * den)).where(ok_limits & (den > 0))

    g["cp"], g["cpk"] = idx(width, g["sigma"], 6), idx(near, g["sigma"], 3)
    g["cm"], g["cmk"] = idx(width, g["s"], 6), idx(near, g["s"], 3)
    reason[ok_limits & g["sigma"].notna() & g["s"].isna()] = "no hourly subgroup with two measurements (cm, cmk)"
    g["null_reason"] = reason
    return g[cols].reset_index(drop=True)
