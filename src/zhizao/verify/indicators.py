"""Verification of one indicator for one scope: baseline period against reporting period.

Definitions (reference/transformation.md; each is a setting, the first listed is the default when the data
allow it):

================================  ===============================================================================
indicator / definition            value per period
================================  ===============================================================================
production_efficiency
  good_units_per_production_hour  GQ / APT [units/h]
  standard_hours_per_labour_hour  standard hours earned / APAT
  good_units_per_labour_hour      GQ / APAT [units/h]
defect_rate
  scrap_rework_per_produced       (SQ + RQ) / PQ
  failed_per_inspected            failed / inspected units (quality table)
unit_energy
  kgce_per_unit                   comprehensive energy [kgce] / PQ
  kgce_per_good_unit              kgce / GQ
  kgce_per_10k_cny                kgce per 10,000 CNY of output value
energy
  kwh_per_day                     electricity [kWh] per bucket (whole-facility M&V, IPMVP option C)
  kgce_per_day                    comprehensive energy [kgce] per bucket
operating_cost
  cost_per_good_unit              operating cost at baseline prices / GQ
development_cycle
  days_design_to_release          mean days from design start to release: baseline products released in the
                                  baseline window, reporting products whose design started in the reporting
                                  window; products made on the scope's equipment, or tied to no equipment
================================  ===============================================================================

Energy-type indicators use an adjusted baseline (regression, :mod:`zhizao.verify.model`); efficiency and
defect rate are compared as a ratio of totals and a ratio of proportions (:mod:`zhizao.verify.ratios`);
operating cost is deflated to baseline prices first (variables ``price_index:<category>`` or ``price_index``
of the scope or an ancestor) and then regressed on output.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from zhizao.kpi.buckets import bucket_edges, default_range
from zhizao.kpi.elements import _ms
from zhizao.kpi.intervals import split_over
from zhizao.kpi.variables import variable_buckets
from zhizao.errors import DataSufficiencyError, InputError
from zhizao.messages import define
from zhizao.verify import model as M
from zhizao.verify.ratios import proportion_ratio, ratio_of_totals_change
from zhizao.verify.result import INDICATORS, VerificationResult
from zhizao.verify.series import (
    best_degree_days,
    cached_edges,
    cached_series,
    cached_variables,
    degree_days,
    monthly_output,
    scope_info,
)

EMPTY_PERIOD = define("verify.empty_period", "empty period %(start)s..%(end)s")
UNKNOWN_INDICATOR = define("verify.unknown_indicator", "unknown indicator '%(name)s'; one of %(known)s")
UNKNOWN_DEFINITION = define("verify.unknown_definition",
                            "unknown definition '%(definition)s' of %(indicator)s; one of %(known)s")
NO_DATA_BASELINE = define("verify.no_data_baseline", "no %(what)s data in the baseline period")
NO_DATA_REPORTING = define("verify.no_data_reporting", "no %(what)s data in the reporting period")
NO_ENERGY_BASELINE = define("verify.no_energy_baseline",
                            "no energy data (%(column)s) for %(scope)s in the baseline period")
UNIT_ENERGY_NEEDS_OUTPUT = define("verify.unit_energy_needs_output",
                                  "unit_energy (%(definition)s) needs output (%(volume)s) in both periods at "
                                  "%(scope)s; without it verify indicator 'energy'")
NO_COSTS_BASELINE = define("verify.no_costs_baseline", "no costs booked to %(scope)s in the baseline period")
NO_COSTS_REPORTING = define("verify.no_costs_reporting", "no costs booked to %(scope)s in the reporting period")
NO_CYCLES = define("verify.no_cycles", "no development cycles for the enterprise of %(scope)s")
NO_RELEASE_BASELINE = define("verify.no_release_baseline", "no product released in the baseline period")
NO_RELEASE_REPORTING = define("verify.no_release_reporting", "no product released in the reporting period")

DEFINITIONS = {
    "production_efficiency": ("good_units_per_production_hour", "standard_hours_per_labour_hour",
                              "good_units_per_labour_hour"),
    "defect_rate": ("scrap_rework_per_produced", "failed_per_inspected"),
    "unit_energy": ("kgce_per_unit", "kgce_per_good_unit", "kgce_per_10k_cny"),
    "energy": ("kwh_per_day", "kgce_per_day"),
    "operating_cost": ("cost_per_good_unit",),
    "development_cycle": ("days_design_to_release",),
}
COVERAGE_MIN = 0.9


def _iso(t) -> str:
    return pd.Timestamp(t).isoformat()


def _window(w) -> tuple[pd.Timestamp, pd.Timestamp]:
    a, b = (pd.Timestamp(x) for x in w)
    a = a.tz_localize("UTC") if a.tzinfo is None else a
    b = b.tz_localize("UTC") if b.tzinfo is None else b
    if b <= a:
        raise InputError(EMPTY_PERIOD, start=str(w[0]), end=str(w[1]))
    return a, b


def _has(df, col) -> bool:
    return col in df and df[col].notna().any() and (df[col].fillna(0) != 0).any()


def _default_definition(indicator: str, b: pd.DataFrame) -> str:
    if indicator == "production_efficiency":
        if _has(b, "gq") and _has(b, "apt"):
            return "good_units_per_production_hour"
        if _has(b, "earned_hours") and _has(b, "apat"):
            return "standard_hours_per_labour_hour"
        return "good_units_per_labour_hour"
    if indicator == "defect_rate":
        return "scrap_rework_per_produced" if _has(b, "pq") else "failed_per_inspected"
    if indicator == "energy":
        return "kwh_per_day" if _has(b, "energy_kwh") else "kgce_per_day"
    return DEFINITIONS[indicator][0]


def verify(ws, indicator: str, scope: str, baseline, reporting, *, definition: str | None = None,
           confidence: float = 0.9, uncertainty: str = "exact_hac", granularity: str = "day",
           project_id: str | None = None, n_boot: int = 2000, seed: int = 0) -> VerificationResult:
    """Verify the change of ``indicator`` at ``scope`` from ``baseline`` to ``reporting``.

    Parameters
    ----------
    ws : zhizao.Workspace
    indicator : str
        One of :data:`zhizao.verify.result.INDICATORS`.
    scope : str
        Equipment, work_center, area, site or enterprise id.
    baseline, reporting : (start, end)
        Half-open periods (ISO 8601 strings or timestamps; naive ones are UTC).
    definition : str, optional
        One of :data:`DEFINITIONS` for the indicator (default: the first the data allow).
    confidence : float
        Confidence level of the interval (default 0.90).
    uncertainty : {'exact_hac', 'ashrae14', 'block_bootstrap'}
        Convention for regression-based indicators (see :mod:`zhizao.verify.model`).
    granularity : {'day', 'hour', 'week', 'month'}
        Bucket of the baseline model and of the bootstrap blocks.

    Returns
    -------
    VerificationResult

    Raises
    ------
    ValueError
        Unknown indicator, definition or scope; empty periods; no data for the indicator in a period.
    """
    if indicator not in INDICATORS:
        raise InputError(UNKNOWN_INDICATOR, name=indicator, known=list(INDICATORS))
    (b0, b1), (r0, r1) = _window(baseline), _window(reporting)
    if definition is not None and definition not in DEFINITIONS[indicator]:
        raise InputError(UNKNOWN_DEFINITION, definition=definition, indicator=indicator,
                         known=list(DEFINITIONS[indicator]))
    scope_info(ws, scope)  # raises for an unknown scope
    common = dict(indicator=indicator, scope=scope, baseline_period=(_iso(b0), _iso(b1)),
                  reporting_period=(_iso(r0), _iso(r1)), confidence=confidence, project_id=project_id)
    if indicator == "development_cycle":
        return _development_cycle(ws, scope, (b0, b1), (r0, r1), confidence, n_boot, seed, common)
    if indicator == "operating_cost":  # monthly good output (costs are booked per month)
        b, r = monthly_output(ws, scope, b0, b1), monthly_output(ws, scope, r0, r1)
    else:
        b = cached_series(ws, scope, granularity, b0, b1)  # shared with the project's other indicators:
        r = cached_series(ws, scope, granularity, r0, r1)  # read-only
    definition = definition or _default_definition(indicator, b)
    common["definition"] = definition
    if indicator == "production_efficiency":
        return _efficiency(b, r, definition, confidence, n_boot, seed, common)
    if indicator == "defect_rate":
        return _defects(ws, b, r, definition, confidence, common)
    if indicator == "operating_cost":
        return _cost(ws, scope, b, r, (b0, b1), (r0, r1), confidence, uncertainty, n_boot, seed, common)
    return _energy(b, r, indicator, definition, confidence, uncertainty, granularity, n_boot, seed, common)


def _coverage(b: pd.Series, r: pd.Series, what: str) -> tuple[dict, list[str]]:
    cov = {"baseline": float(b.notna().mean()) if len(b) else 0.0,
           "reporting": float(r.notna().mean()) if len(r) else 0.0,
           "baseline_buckets": int(b.notna().sum()), "reporting_buckets": int(r.notna().sum())}
    w = []
    for k in ("baseline", "reporting"):
        if cov[k] < COVERAGE_MIN:
            w.append(f"data coverage: {what} present in {100 * cov[k]:.0f} % of the {k} period's buckets")
    if not cov["baseline_buckets"] or not cov["reporting_buckets"]:
        raise DataSufficiencyError(NO_DATA_BASELINE if not cov["baseline_buckets"] else NO_DATA_REPORTING,
                                   what=what)
    return cov, w


# -- production efficiency: ratio of totals ---------------------------------------------------------------------
def _efficiency(b, r, definition, confidence, n_boot, seed, common) -> VerificationResult:
    num, den, scale = {"good_units_per_production_hour": ("gq", "apt", 3600.0),
                       "standard_hours_per_labour_hour": ("earned_hours", "apat", 1.0),
                       "good_units_per_labour_hour": ("gq", "apat", 1.0)}[definition]
    cov, warnings = _coverage(b[num].where(b[den] > 0) if num in b else pd.Series(dtype=float),
                              r[num].where(r[den] > 0) if num in r else pd.Series(dtype=float), f"{num} and {den}")
    mb, mr = (b[den] > 0).to_numpy(), (r[den] > 0).to_numpy()  # the two columns only, not the whole frame
    bb = {c: b[c].to_numpy(float)[mb] for c in (num, den)}
    rr = {c: r[c].to_numpy(float)[mr] for c in (num, den)}
    res = ratio_of_totals_change(bb[num], bb[den] / scale, rr[num], rr[den] / scale, confidence, n_boot, seed=seed)
    return VerificationResult(
        **common, baseline=res["baseline"], reporting=res["reporting"], adjusted_baseline=res["baseline"],
        change=res["change"], improvement=res["change"], ci_low=res["ci_low"], ci_high=res["ci_high"],
        method=f"ratio of totals; paired circular block bootstrap over buckets (block {res.get('block')}, "
               f"{n_boot} resamples), percentile interval",
        simple_change=res["change"], fit={}, warnings=warnings + [
            "no adjusted baseline: the ratio of totals is compared as it is"
            + (" (product mix normalised by standard hours)" if definition.startswith("standard") else "")],
        coverage={**cov, "output": float(pd.Series(rr[num]).sum())})


# -- defect rate: ratio of proportions --------------------------------------------------------------------------
def _mix_standardised(ws, common, confidence, n_boot: int = 2000, seed: int = 0) -> dict | None:
    """Reporting defect rate at the baseline product mix, with a block-bootstrap interval of the improvement.

    Per product i: baseline weight w_i = its share of baseline output, reporting rate p_ri; the standardised
    rate is sum_i w_i p_ri (direct standardisation). Counts are booked to the day of their time stamp
    (``end``). None when the scope has fewer than two products in the baseline.
    """
    scope = common["scope"]
    _level, _chain, tz = scope_info(ws, scope)
    d = _product_counts(ws, scope)
    if d.empty:
        return None
    pid = d["product_id"].to_numpy(object)
    codes, pcode = np.unique(pid, return_inverse=True)  # sorted product ids
    t = d["t"].to_numpy(np.int64)
    nc = np.column_stack([np.nan_to_num(d["n"].to_numpy(float)), np.nan_to_num(d["c"].to_numpy(float))])
    wins = []
    for w in (common["baseline_period"], common["reporting_period"]):
        edges = cached_edges(ws, _ms(w[0]), _ms(w[1]), "day", tz)
        day = np.searchsorted(edges, t, side="right") - 1
        inside = (day >= 0) & (day < edges.size - 1)
        days, row = np.unique(day[inside], return_inverse=True)  # the days with records, in order
        wins.append((row, pcode[inside], nc[inside], days.size))
    base_codes = np.unique(wins[0][1])
    if base_codes.size < 2:
        return None
    rep = set(wins[1][1].tolist())
    dropped = [codes[k] for k in base_codes if k not in rep]
    keep = [k for k in base_codes if k in rep]
    products = [codes[k] for k in keep]
    if not products:
        return None

    def cube(row, pc, x, n_days):  # days with records x products x (n, c), summed per day and product
        col = np.full(codes.size, -1)
        col[keep] = np.arange(len(keep))
        j = col[pc]
        m = j >= 0
        out = np.zeros((n_days, len(keep), 2))
        np.add.at(out, (row[m], j[m]), x[m])
        return out

    B, R = cube(*wins[0]), cube(*wins[1])

    def rates(cb, cr):  # arrays (..., products, 2) summed over days
        w = cb[..., 0] / cb[..., 0].sum(axis=-1, keepdims=True)
        pb = cb[..., 1].sum(axis=-1) / cb[..., 0].sum(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            pr = np.nansum(w * cr[..., 1] / cr[..., 0], axis=-1)
        return pb, pr

    pb, pr = rates(B.sum(axis=0), R.sum(axis=0))
    rng = np.random.default_rng(seed)
    from zhizao.verify.ratios import _blocks, circular_block_starts, circular_block_sums

    kb, kr = _blocks(B.shape[0]), _blocks(R.shape[0])
    sb = circular_block_starts(B.shape[0], kb, n_boot, rng)  # the draws of circular_block_indices
    sr = circular_block_starts(R.shape[0], kr, n_boot, rng)
    bb, br = rates(circular_block_sums(B, sb, kb), circular_block_sums(R, sr, kr))
    imp = 1 - br / bb
    alpha = 1 - confidence
    lo, hi = np.nanquantile(imp, [alpha / 2, 1 - alpha / 2])
    return {"standardised": float(pr), "baseline": float(pb), "ci_low": float(lo), "ci_high": float(hi),
            "n": len(products), "dropped": dropped}


_LEVEL_COLUMNS = ("equipment_id", "work_center", "area", "site", "enterprise")


def _scope_rows(bulk: pd.DataFrame, index: dict, scope: str) -> pd.DataFrame:
    """Rows of a bulk frame whose equipment lies in ``scope`` (``scope`` equal to one of its level columns),
    in the frame's order."""
    pos = [index[c][scope] for c in _LEVEL_COLUMNS if scope in index[c]]
    if not pos:
        return bulk.iloc[:0]
    return bulk.iloc[np.unique(np.concatenate(pos)) if len(pos) > 1 else pos[0]]


def _bulk_by_level(df: pd.DataFrame) -> dict:
    return {c: df.groupby(c, sort=False).indices for c in _LEVEL_COLUMNS}


def _product_counts(ws, scope) -> pd.DataFrame:
    """Produced and defective (scrap + rework) units per production record with a product, of the equipment
    in ``scope``: columns t (end [ms]), product_id, n, c. After :func:`prepare_products` from one query."""
    bulk = ws._cache.get(("product_counts_all",))
    if bulk is not None:
        return _scope_rows(bulk[0], bulk[1], scope)[["t", "product_id", "n", "c"]]
    return ws.con.execute("""
        SELECT epoch_ms(p."end") t, p.product_id, p.produced n,
               coalesce(p.scrap, 0) + coalesce(p.rework, 0) c
        FROM production p JOIN equipment e USING (equipment_id)
        WHERE ? IN (e.equipment_id, e.work_center, e.area, e.site, e.enterprise) AND p.product_id IS NOT NULL""",
                          [scope]).df()


def prepare_products(ws) -> None:
    """Read the production records of every scope with a product in one query (see :func:`_product_counts`)."""
    if ("product_counts_all",) in ws._cache:
        return
    d = ws.con.execute("""
        SELECT epoch_ms(p."end") t, p.product_id, p.produced n,
               coalesce(p.scrap, 0) + coalesce(p.rework, 0) c,
               e.equipment_id, e.work_center, e.area, e.site, e.enterprise
        FROM production p JOIN equipment e USING (equipment_id)
        WHERE p.product_id IS NOT NULL""").df()
    ws._cache[("product_counts_all",)] = (d, _bulk_by_level(d))


def _defects(ws, b, r, definition, confidence, common) -> VerificationResult:
    if definition == "scrap_rework_per_produced":
        cb, nb = b["sq"] + b["rq"], b["pq"]
        cr, nr = r["sq"] + r["rq"], r["pq"]
    else:
        cb, nb, cr, nr = b["defects"], b["ip"], r["defects"], r["ip"]
    cov, warnings = _coverage(nb.where(nb > 0), nr.where(nr > 0), "inspected or produced units")
    mb, mr = nb > 0, nr > 0
    res = proportion_ratio(cb[mb], nb[mb], cr[mr], nr[mr], confidence)
    if res["phi"] > 1:
        warnings.append(f"over-dispersion between days: phi = {res['phi']:.2f}; the interval uses the "
                        "effective sample size n / phi (quasi-binomial)")
    improvement = 1 - res["ratio"]
    fit = {"phi": res["phi"]}
    head = dict(reporting=res["reporting"], change=res["ratio"] - 1, improvement=improvement,
                ci_low=1 - res["ratio_high"], ci_high=1 - res["ratio_low"],
                method="ratio of proportions; score interval (statsmodels confint_proportions_2indep, "
                       "compare=ratio) on quasi-binomial effective counts")
    mix = _mix_standardised(ws, common, confidence) if definition == "scrap_rework_per_produced" else None
    if mix is None:
        warnings.append("no product-mix standardisation: the defect counts carry no product split")
    else:
        # the headline is the reporting rate at the baseline product mix (direct standardisation)
        fit.update(crude_improvement=improvement, crude_ci=[head["ci_low"], head["ci_high"]], products=mix["n"])
        head = dict(reporting=mix["standardised"], change=mix["standardised"] / res["baseline"] - 1,
                    improvement=1 - mix["standardised"] / res["baseline"], ci_low=mix["ci_low"],
                    ci_high=mix["ci_high"],
                    method="ratio of proportions at the baseline product mix (direct standardisation over "
                           f"{mix['n']} products); circular block bootstrap over days, percentile interval")
        if mix["dropped"]:
            warnings.append(f"products without reporting output left out of the standardisation: "
                            f"{', '.join(mix['dropped'])}")
    return VerificationResult(
        **common, baseline=res["baseline"], adjusted_baseline=res["baseline"], **head,
        simple_change=res["ratio"] - 1, fit=fit, warnings=warnings,
        coverage={**cov, "output": float(nr[mr].sum()), "defects_baseline": float(cb[mb].sum()),
                  "defects_reporting": float(cr[mr].sum())})


# -- energy and unit energy: adjusted baseline -----------------------------------------------------------------
def _drivers(b: pd.DataFrame, r: pd.DataFrame, y_b: np.ndarray, granularity: str, volume: str | None):
    """Candidate relevant variables as groups of columns (for :func:`zhizao.verify.model.choose`)."""
    cb, cr, groups, info = {}, {}, [], {}

    def col(df, c):
        return df[c].to_numpy(float)

    if volume and _has(b, volume) and b[volume].nunique() > 1:
        cb["volume"], cr["volume"] = col(b, volume), col(r, volume)
        groups.append(["volume"])
    # scheduled hours (POT): the plan, not a result of the project; they carry the fixed load of a shift
    if _has(b, "pot") and b["pot"].nunique() > 1:
        cb["scheduled_hours"], cr["scheduled_hours"] = col(b, "pot") / 3600, col(r, "pot") / 3600
        groups.append(["scheduled_hours"])
    # operating hours are a driver of whole-facility energy only: a project that speeds the line up changes
    # them itself, so for unit energy they would absorb part of the effect
    if volume is None and "apt" in b and _has(b, "apt") and b["apt"].nunique() > 1:
        cb["operating_hours"], cr["operating_hours"] = col(b, "apt") / 3600, col(r, "apt") / 3600
        groups.append(["operating_hours"])
    if "temperature_c" in b and b["temperature_c"].notna().mean() > 0.5:
        tb = b["temperature_c"].interpolate(limit_direction="both")
        tr = r["temperature_c"].interpolate(limit_direction="both") if "temperature_c" in r else tb * np.nan
        bh, bc = best_degree_days(y_b, tb, b["hours"])
        info.update(heating_base_c=bh, cooling_base_c=bc)
        cb["hdd"], cr["hdd"] = (degree_days(tb, bh, "hdd", b["hours"]).to_numpy(float),
                                degree_days(tr, bh, "hdd", r["hours"]).to_numpy(float))
        cb["cdd"], cr["cdd"] = (degree_days(tb, bc, "cdd", b["hours"]).to_numpy(float),
                                degree_days(tr, bc, "cdd", r["hours"]).to_numpy(float))
        groups += [["hdd"], ["cdd"]]
    # categorical relevant variables (shares of time per level), reference level left out
    cats = sorted({c.split("=")[0] for c in b.columns if "=" in c})
    for name in cats:
        levels = sorted(c for c in b.columns if c.startswith(name + "="))
        cols = [c for c in levels[1:] if b[c].nunique() > 1]
        if cols:
            for c in cols:
                x = col(b, c)
                cb[c] = np.where(np.isnan(x), 0.0, x)
                if c in r:
                    x = col(r, c)
                    cr[c] = np.where(np.isnan(x), 0.0, x)
                else:
                    cr[c] = np.zeros(len(r))
            groups.append(cols)
    if granularity == "hour":
        hb, hr = b["hour"].to_numpy(), r["hour"].to_numpy()
        for h in range(1, 24):
            cb[f"hour_{h}"], cr[f"hour_{h}"] = (hb == h).astype(float), (hr == h).astype(float)
        groups.append([f"hour_{h}" for h in range(1, 24)])
    if granularity in ("hour", "day"):
        wb, wr = b["weekday"].to_numpy(), r["weekday"].to_numpy()
        for d in range(1, 7):
            cb[f"weekday_{d}"], cr[f"weekday_{d}"] = (wb == d).astype(float), (wr == d).astype(float)
        groups.append([f"weekday_{d}" for d in range(1, 7)])
    Xb, Xr = pd.DataFrame(cb, index=b.index), pd.DataFrame(cr, index=r.index)
    return Xb, Xr, groups, info


def _energy(b, r, indicator, definition, confidence, uncertainty, granularity, n_boot, seed, common):
    numcol = "energy_kwh" if definition == "kwh_per_day" else "energy_kgce"
    if numcol not in b or not (b[numcol].fillna(0) != 0).any():  # nothing metered: no baseline to compare
        raise DataSufficiencyError(NO_ENERGY_BASELINE, column=numcol, scope=common["scope"])
    volume = {"kgce_per_unit": "pq", "kgce_per_good_unit": "gq", "kgce_per_10k_cny": "output_value"}.get(definition)
    if indicator == "unit_energy" and not (_has(b, volume) and _has(r, volume)):
        raise DataSufficiencyError(UNIT_ENERGY_NEEDS_OUTPUT, definition=definition, volume=volume,
                                   scope=common["scope"])
    cov, warnings = _coverage(b[numcol], r[numcol] if numcol in r else pd.Series(dtype=float), numcol)
    # the columns the model can use, then the buckets with the numerator (not the whole wide frame)
    keep = (numcol, volume, "pq", "pot", "apt", "temperature_c", "hours", "hour", "weekday")
    used = [c for c in b.columns if c in keep or "=" in c]
    b = b[used][b[numcol].notna()]
    r = r[[c for c in used if c in r]][r[numcol].notna()]
    yb, yr = b[numcol].to_numpy(float), r[numcol].to_numpy(float)
    Xb, Xr, groups, info = _drivers(b, r, yb, granularity, volume)
    ok_b = Xb.notna().all(axis=1).to_numpy()
    ok_r = Xr.notna().all(axis=1).to_numpy()
    if (~ok_r).any():
        warnings.append(f"{int((~ok_r).sum())} reporting buckets lack a relevant variable and are left out")
    Xb, yb, Xr, yr = Xb[ok_b], yb[ok_b], Xr[ok_r], yr[ok_r]
    f, w = M.choose(yb, Xb, groups)
    warnings += w
    chosen = [t for t in f.terms if t != "const"]
    warnings += M.extrapolation(Xb, Xr, chosen)
    s = M.savings(f, Xr, yr, confidence, uncertainty, n_boot=min(n_boot, 999), seed=seed, Xb=Xb, yb=yb)
    fit = {**{k: v for k, v in f.stats.items()}, "passed": f.passed, "failed": f.failed, **info,
           "params": dict(zip(f.terms, f.params.tolist())), "uncertainty": {k: s[k] for k in s if k not in
                                                                            ("adjusted", "reporting")}}
    if indicator == "unit_energy":
        out_b, out_r = b[volume].to_numpy(float)[ok_b].sum(), r[volume].to_numpy(float)[ok_r].sum()
        k = 10000.0 if volume == "output_value" else 1.0
        base_v, rep_v, adj_v = yb.sum() / out_b * k, yr.sum() / out_r * k, s["adjusted"] / out_r * k
        output = float(out_r)
    else:
        base_v, rep_v, adj_v = yb.mean(), yr.mean(), s["adjusted"] / max(len(yr), 1)
        output = float(r["pq"].sum()) if _has(r, "pq") else None
    improvement = s["fraction"]
    return VerificationResult(
        **common, baseline=float(base_v), reporting=float(rep_v), adjusted_baseline=float(adj_v),
        change=-improvement, improvement=improvement, ci_low=s["frac_low"], ci_high=s["frac_high"],
        method=f"adjusted baseline: OLS of {numcol} per {granularity} on "
               f"{', '.join(chosen) or 'a constant'}; uncertainty {uncertainty}",
        simple_change=float(rep_v / base_v - 1) if base_v else None, fit=fit, warnings=warnings,
        coverage={**cov, "output": output})


# -- operating cost ---------------------------------------------------------------------------------------------
def _price_indices(ws, chain: list[str], a: int, b: int, tz: str) -> pd.DataFrame:
    """Monthly ``price_index*`` variables of the scope or its nearest ancestor that has them."""
    idx = pd.DataFrame()
    months = None
    for sid in chain:
        if not _has_price_index(ws, sid):
            continue  # its buckets would have no price_index column: nothing to combine
        if months is None:
            months = pd.to_datetime(bucket_edges(a, b, "month", tz)[:-1], unit="ms", utc=True)
        v = _sid_price_indices(ws, sid, tz).reindex(months)
        idx = v if idx.empty else idx.combine_first(v)
    return idx


def _sid_price_indices(ws, sid: str, tz: str) -> pd.DataFrame:
    """The ``price_index*`` variables of ``sid`` per month over the whole months around its records (built once
    per scope). Whole monthly buckets do not depend on the query range, so a query's months are a slice."""
    key = ("price_indices", sid, tz)
    found = ws._cache.get(key)
    if found is None:
        rec = cached_variables(ws, sid)
        rec = rec[rec["name"].astype(str).str.startswith("price_index") & rec["e"].notna()]
        a, b = default_range(int(rec["s"].min()), int(rec["e"].max()), "month", tz)
        v = variable_buckets(ws.con, sid, "month", a, b, tz, records=rec)
        found = ws._cache[key] = v[[c for c in v.columns if c.startswith("price_index")]]
    return found


def _has_price_index(ws, sid: str) -> bool:
    """Whether ``sid`` has a ``price_index*`` variable record that covers an interval."""
    key = ("has_price_index", sid)
    found = ws._cache.get(key)
    if found is None:
        rec = cached_variables(ws, sid)
        found = ws._cache[key] = (not rec.empty and bool(
            (rec["name"].astype(str).str.startswith("price_index") & rec["e"].notna()).any()))
    return found


def _scope_costs(ws, scope) -> pd.DataFrame:
    """The cost records of ``scope`` (category, s, e [ms], amount); after :func:`prepare_costs` from one query."""
    bulk = ws._cache.get(("costs_all",))
    if bulk is not None:
        return bulk[0].get(scope, bulk[1])
    return ws.con.execute("""SELECT category, epoch_ms(start) s, epoch_ms("end") e, amount FROM costs
                             WHERE scope = ?""", [scope]).df()


def prepare_costs(ws) -> None:
    """Read the cost records of every scope in one query into the workspace cache (see :func:`_scope_costs`)."""
    if ("costs_all",) in ws._cache:
        return
    c = ws.con.execute("""SELECT scope, category, epoch_ms(start) s, epoch_ms("end") e, amount FROM costs""").df()
    groups = {k: g.drop(columns="scope") for k, g in c.groupby("scope", sort=False)}
    ws._cache[("costs_all",)] = (groups, c.drop(columns="scope").iloc[:0])


def _all_monthly_costs(ws, scope, tz) -> pd.Series:
    c = _scope_costs(ws, scope)
    if c.empty:
        return pd.Series(dtype=float)
    a, b = default_range(int(c["s"].min()), int(c["e"].max()), "month", tz)
    idx = _price_indices(ws, scope_info(ws, scope)[1], a, b, tz)
    # interval_sums per category (in category order, as a groupby), with the month edges built once
    edges = bucket_edges(a, b, "month", tz)
    months = pd.to_datetime(edges[:-1], unit="ms", utc=True)
    cats = c["category"].to_numpy(object)
    s_all, e_all, amount = c["s"].to_numpy(np.int64), c["e"].to_numpy(np.int64), c["amount"].to_numpy(float)
    total = None
    for cat in sorted({x for x in cats if not pd.isna(x)}):
        m = cats == cat
        rec, seg, frac = split_over(s_all[m], e_all[m], edges[:-1], edges[1:])
        sums = np.bincount(seg, weights=frac * amount[m][rec], minlength=edges.size - 1)
        col = f"price_index:{cat}" if f"price_index:{cat}" in idx else "price_index"
        if col in idx:
            sums = sums / idx[col].reindex(months).to_numpy(float)
        total = sums if total is None else total + sums
    return pd.Series(total, index=months)


def _month_costs_at(ws, scope, tz, months: pd.DatetimeIndex) -> np.ndarray:
    """Monthly operating cost of ``scope`` at baseline prices (deflated by its price indices) at the month
    starts ``months`` (NaN where none is booked). The months of all the scope's costs are computed once per
    store (:func:`_all_monthly_costs`) and looked up: months do not depend on the window."""
    key = ("monthly_costs_np", scope)
    found = ws._cache.get(key)
    if found is None:
        full = ws._cache.get(("monthly_costs", scope))
        if full is None:
            full = ws._cache[("monthly_costs", scope)] = _all_monthly_costs(ws, scope, tz)
        full = full.dropna()
        found = ws._cache[key] = (full.index.as_unit("ms").asi8 if len(full) else np.empty(0, np.int64),
                                  full.to_numpy(float))
    keys, values = found
    want = months.as_unit("ms").asi8
    pos = np.clip(np.searchsorted(keys, want), 0, max(keys.size - 1, 0))
    hit = (keys.size > 0) & (keys[pos] == want) if keys.size else np.zeros(want.size, bool)
    return np.where(hit, values[pos] if keys.size else np.nan, np.nan)


def _cost(ws, scope, b, r, wb, wr, confidence, uncertainty, n_boot, seed, common) -> VerificationResult:
    _level, chain, tz = scope_info(ws, scope)
    # the deflated monthly costs at the months of each window (the scope's months are built once, sliced)
    cb_all, cr_all = _month_costs_at(ws, scope, tz, b.index), _month_costs_at(ws, scope, tz, r.index)
    if np.isnan(cb_all).all() or np.isnan(cr_all).all():
        raise DataSufficiencyError(NO_COSTS_BASELINE if np.isnan(cb_all).all() else NO_COSTS_REPORTING,
                                   scope=scope)
    gb_all, gr_all = b["gq"].to_numpy(float), r["gq"].to_numpy(float)
    with np.errstate(invalid="ignore"):
        mb = ~np.isnan(cb_all) & ~np.isnan(gb_all) & (cb_all > 0)
        mr = ~np.isnan(cr_all) & ~np.isnan(gr_all) & (cr_all > 0)
    b = pd.DataFrame({"cost": cb_all[mb], "gq": gb_all[mb]})
    r = pd.DataFrame({"cost": cr_all[mr], "gq": gr_all[mr]})
    cov, warnings = _coverage(b["cost"], r["cost"], "cost")
    if not any(_has_price_index(ws, sid) for sid in chain):  # as _price_indices(...).empty over wb..wr
        warnings.append("no price_index variable: costs are not deflated to baseline prices")
    base_v = b["cost"].sum() / b["gq"].sum()
    rep_v = r["cost"].sum() / r["gq"].sum()
    fit = {}
    if len(b) >= 4 and b["gq"].nunique() > 1:
        Xb, Xr = pd.DataFrame({"output": b["gq"]}), pd.DataFrame({"output": r["gq"]})
        f = M.fit(b["cost"].to_numpy(float), Xb)
        s = M.savings(f, Xr, r["cost"].to_numpy(float), confidence, uncertainty, n_boot=min(n_boot, 999),
                      seed=seed, Xb=Xb, yb=b["cost"].to_numpy(float))
        if not f.passed:
            warnings.append("the cost model fails the validity checks (" + "; ".join(f.failed) + ")")
        warnings += M.extrapolation(Xb, Xr, ["output"])
        adj_v = s["adjusted"] / r["gq"].sum()
        improvement, lo, hi = s["fraction"], s["frac_low"], s["frac_high"]
        method = f"adjusted baseline: OLS of monthly cost at baseline prices on good output; uncertainty {uncertainty}"
        fit = {**f.stats, "passed": f.passed, "params": dict(zip(f.terms, f.params.tolist()))}
    else:
        res = ratio_of_totals_change(b["cost"], b["gq"], r["cost"], r["gq"], confidence, n_boot, block=1, seed=seed)
        adj_v = base_v
        improvement, lo, hi = -res["change"], -res["ci_high"], -res["ci_low"]
        method = "ratio of totals (cost per good unit at baseline prices); bootstrap over months"
        warnings.append("fewer than 4 baseline months: no regression, cost per unit compared as it is")
    return VerificationResult(
        **common, baseline=float(base_v), reporting=float(rep_v),
        adjusted_baseline=float(adj_v), change=-improvement, improvement=improvement, ci_low=lo, ci_high=hi,
        method=method, simple_change=float(rep_v / base_v - 1), fit=fit, warnings=warnings,
        coverage={**cov, "output": float(r["gq"].sum())})


# -- development cycle ------------------------------------------------------------------------------------------
def _scope_cycles(ws, scope) -> pd.DataFrame:
    """Development cycles of ``scope``: its enterprises' products that are made on its equipment (products
    table) or tied to no equipment at all; products of other scopes of the enterprise are not this project's.
    Columns product_id, design_start, release, days. After :func:`prepare_cycles` from bulk queries."""
    bulk = ws._cache.get(("cycles_all",))
    if bulk is None:
        ent = ws.con.execute("SELECT DISTINCT enterprise FROM equipment WHERE ? IN "
                             "(equipment_id, work_center, area, site, enterprise)", [scope]).fetchall()
        ents = [e for (e,) in ent if e]
        return ws.con.execute(f"""
        SELECT product_id, design_start, release, date_diff('second', design_start, release) / 86400.0 AS days
        FROM development_cycles d
        WHERE enterprise_id IN ({",".join("?" * len(ents)) or "NULL"})
          AND (NOT EXISTS (SELECT 1 FROM products p WHERE p.product_id = d.product_id AND p.equipment_id IS NOT NULL)
               OR EXISTS (SELECT 1 FROM products p JOIN equipment e USING (equipment_id)
                          WHERE p.product_id = d.product_id
                            AND ? IN (e.equipment_id, e.work_center, e.area, e.site, e.enterprise)))""",
                             ents + [scope]).df()
    cycles, by_ent, eq, eq_index, made_on, tied = bulk
    mine = _scope_rows(eq, eq_index, scope)
    ents = [e for e in mine["enterprise"].unique() if isinstance(e, str) and e and e in by_ent]
    if not ents:
        return cycles.iloc[:0][["product_id", "design_start", "release", "days"]]
    rows = cycles.iloc[np.sort(np.concatenate([by_ent[e] for e in ents]))]
    own = {p for e in mine["equipment_id"] for p in made_on.get(e, ())}
    keep = [p not in tied or p in own for p in rows["product_id"]]
    return rows.loc[keep, ["product_id", "design_start", "release", "days"]]


def prepare_cycles(ws) -> None:
    """Read development cycles, products and equipment in three queries (see :func:`_scope_cycles`)."""
    if ("cycles_all",) in ws._cache:
        return
    cycles = ws.con.execute("""SELECT enterprise_id, product_id, design_start, release,
                                      date_diff('second', design_start, release) / 86400.0 AS days
                               FROM development_cycles""").df()
    eq = ws.con.execute("SELECT equipment_id, work_center, area, site, enterprise FROM equipment").df()
    made_on = ws.con.execute("SELECT product_id, equipment_id FROM products WHERE equipment_id IS NOT NULL").df()
    on = {}
    for prod, e in zip(made_on["product_id"], made_on["equipment_id"]):
        on.setdefault(e, []).append(prod)
    ws._cache[("cycles_all",)] = (cycles, cycles.groupby("enterprise_id", sort=False).indices, eq,
                                  _bulk_by_level(eq), on, set(made_on["product_id"]))


def _development_cycle(ws, scope, wb, wr, confidence, n_boot, seed, common) -> VerificationResult:
    d = _scope_cycles(ws, scope)
    common["definition"] = "days_design_to_release"
    if d.empty:
        raise DataSufficiencyError(NO_CYCLES, scope=scope)
    # baseline: products finished (released) in the baseline window; reporting: products whose development
    # started in the reporting window, i.e. developed with the new capability (released whenever recorded)
    rel = pd.to_datetime(d["release"], utc=True)
    beg = pd.to_datetime(d["design_start"], utc=True)
    xb = d.loc[(rel >= wb[0]) & (rel < wb[1]), "days"].to_numpy(float)
    xr = d.loc[(beg >= wr[0]) & (beg < wr[1]), "days"].to_numpy(float)
    if not len(xb) or not len(xr):
        raise DataSufficiencyError(NO_RELEASE_BASELINE if not len(xb) else NO_RELEASE_REPORTING)
    mb, mr = xb.mean(), xr.mean()
    rng = np.random.default_rng(seed)
    boots = 1 - (xr[rng.integers(0, xr.size, (n_boot, xr.size))].mean(axis=1)
                 / xb[rng.integers(0, xb.size, (n_boot, xb.size))].mean(axis=1))
    alpha = 1 - confidence
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    warnings = [] if min(len(xb), len(xr)) >= 5 else ["fewer than 5 products in a period: a wide interval"]
    return VerificationResult(
        **common, baseline=float(mb), reporting=float(mr), adjusted_baseline=float(mb), change=float(mr / mb - 1),
        improvement=float(1 - mr / mb), ci_low=float(lo), ci_high=float(hi),
        method=f"ratio of mean cycle times; bootstrap over products ({n_boot} resamples), percentile interval",
        simple_change=float(mr / mb - 1), warnings=warnings,
        coverage={"baseline_products": int(len(xb)), "reporting_products": int(len(xr))})
