"""Programme statistics: counts of projects and designations, and the average results of the projects.

Averages follow reference/transformation.md: the headline is the UNWEIGHTED mean of project improvements
(what press releases report), shown beside an output-weighted mean and the median, with the spread of the
projects (quartiles, range) and a percentile-bootstrap interval over projects (reference/verification.md,
"Programme level"). Verified values (stored verification results whose every check passed, verdict
``verified``), indicative values (results with a failed check, shown apart: ``averages_indicative``) and
declared values (``declared_*`` of table ``projects``) are kept apart. Every number carries the list of
project ids behind it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from zhizao.errors import InputError
from zhizao.messages import define
from zhizao.portfolio.basis import verification_basis
from zhizao.portfolio.dates import bound_date, today
from zhizao.portfolio.filters import Selection, select
from zhizao.portfolio.programmes import targets
from zhizao.portfolio.registry import (
    DECLARED_COLUMNS,
    PROGRAMME_INDICATORS,
    dates_in,
    designation_unit,
    designations,
    enterprises,
    latest_verification_rows,
    latest_verifications,
    projects,
)
from zhizao.schema import DESIGNATIONS, PROJECT_TYPES

BAD_CONFIDENCE = define("portfolio.bad_confidence", "confidence must be in (0, 1), got %(value)s")
BAD_N_BOOT = define("portfolio.bad_n_boot", "n_boot must be at least 1, got %(value)s")

#: How many projects each ranking lists.
TOP_N = 10
#: Per-project status of an indicator: a verified result (every check passed), an indicative one (a value
#: with failed checks), only a declared value, or none.
STATUSES = ("verified", "indicative", "declared", "neither")


def bootstrap_mean_ci(values, confidence: float = 0.9, n_boot: int = 2000, seed: int = 0
                      ) -> tuple[float | None, float | None]:
    """Percentile-bootstrap interval of the mean, resampling projects with replacement.

    Parameters
    ----------
    values : array-like of float, shape (n,)
        One value per project (fractions).
    confidence : float
        Two-sided confidence level, 0 < confidence < 1.
    n_boot : int
        Number of resamples.
    seed : int
        Seed of :func:`numpy.random.default_rng` (same inputs, same interval).

    Returns
    -------
    (float or None, float or None)
        The ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the resampled means; ``(None,
        None)`` for fewer than two values (no spread to resample).

    Raises
    ------
    ValueError
        If ``confidence`` is not in (0, 1) or ``n_boot`` < 1.

    References
    ----------
    Efron, B. and Tibshirani, R. J. (1993). An Introduction to the Bootstrap, ch. 13 (percentile interval).
    """
    if not 0 < confidence < 1:
        raise InputError(BAD_CONFIDENCE, value=confidence)
    if n_boot < 1:
        raise InputError(BAD_N_BOOT, value=n_boot)
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return None, None
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(lo), float(hi)


def choose_weights(output: pd.Series, investment: pd.Series) -> tuple[pd.Series, str | None]:
    """Weights of an output-weighted mean and the basis used.

    Parameters
    ----------
    output, investment : pandas.Series, same index (project ids)
        Reporting-period output and investment [CNY] per project; null where unknown.

    Returns
    -------
    (pandas.Series, str or None)
        Positive weights of the projects that have the chosen basis, and the basis: ``"output"`` when every
        project has a positive output, else ``"investment"`` when every project has a positive investment,
        else the basis that covers more projects (the others left out of the weighted mean); ``None`` (and
        an empty series) when neither is known.
    """
    out = pd.to_numeric(output, errors="coerce")
    inv = pd.to_numeric(investment, errors="coerce")
    ok_out, ok_inv = out > 0, inv > 0
    if len(out) and ok_out.all():
        return out.astype(float), "output"
    if len(inv) and ok_inv.all():
        return inv.astype(float), "investment"
    if ok_out.sum() >= ok_inv.sum() and ok_out.any():
        return out[ok_out].astype(float), "output"
    if ok_inv.any():
        return inv[ok_inv].astype(float), "investment"
    return pd.Series(dtype=float), None


def summarize(values: pd.Series, output: pd.Series | None = None, investment: pd.Series | None = None,
              confidence: float = 0.9, n_boot: int = 2000, seed: int = 0) -> dict:
    """Summary of project values: mean with bootstrap interval, weighted mean, median, quartiles, range.

    Parameters
    ----------
    values : pandas.Series
        Improvement per project (fractions, positive = better), indexed by project id; nulls are dropped.
    output, investment : pandas.Series, optional
        Weights per project id (see :func:`choose_weights`).
    confidence, n_boot, seed
        See :func:`bootstrap_mean_ci`.

    Returns
    -------
    dict
        n, mean (unweighted), ci_low, ci_high, confidence, weighted_mean, weight_basis, weight_project_ids
        (the projects in the weighted mean), median, q1, q3, iqr, min, max, project_ids. Statistics of no
        project are None.
    """
    v = pd.to_numeric(values, errors="coerce").dropna()
    ids = [str(i) for i in v.index]
    res: dict[str, Any] = {
        "n": int(v.size), "mean": None, "ci_low": None, "ci_high": None, "confidence": confidence,
        "weighted_mean": None, "weight_basis": None, "weight_project_ids": [], "median": None, "q1": None,
        "q3": None, "iqr": None, "min": None, "max": None, "project_ids": ids}
    if not v.size:
        return res
    x = v.to_numpy(dtype=float)
    q1, med, q3 = np.quantile(x, [0.25, 0.5, 0.75])
    lo, hi = bootstrap_mean_ci(x, confidence, n_boot, seed)
    res.update(mean=float(x.mean()), ci_low=lo, ci_high=hi, median=float(med), q1=float(q1), q3=float(q3),
               iqr=float(q3 - q1), min=float(x.min()), max=float(x.max()))
    empty = pd.Series(np.nan, index=v.index)
    w, basis = choose_weights(empty if output is None else output.reindex(v.index),
                              empty if investment is None else investment.reindex(v.index))
    if basis is not None and w.sum() > 0:
        res.update(weighted_mean=float(np.average(v[w.index].to_numpy(float), weights=w.to_numpy(float))),
                   weight_basis=basis, weight_project_ids=[str(i) for i in w.index])
    return res


def project_values(prj: pd.DataFrame, ver: pd.DataFrame) -> pd.DataFrame:
    """One row per (project, programme indicator): the verified value, the declared value and the status.

    Parameters
    ----------
    prj : pandas.DataFrame
        Projects (:func:`zhizao.portfolio.registry.projects`).
    ver : pandas.DataFrame
        Latest verification results (:func:`zhizao.portfolio.registry.latest_verifications`).

    Returns
    -------
    pandas.DataFrame
        project_id, enterprise_id, enterprise, type, indicator, status ("verified": a stored result with a
        non-null improvement and verdict ``verified``; "indicative": a value whose checks did not all pass;
        "declared": neither but a declared value; "neither"), verdict, flags (codes of the failed checks),
        improvement, ci_low, ci_high, confidence, method, output, investment, declared, computed_at, warnings.
        ``improvement`` and its interval are given for verified and indicative results.
    """
    # built column by column from plain Python lists: iterating the frames' Arrow-backed columns row by row, pd.isna
    # per cell and a dict per row cost 0.5 s on a 4,000-project register; most rows have no stored result
    cols = ["project_id", "enterprise_id", "enterprise", "type", "indicator", "status", "verdict", "flags",
            "improvement", "ci_low", "ci_high", "confidence", "method", "output", "investment", "declared",
            "computed_at", "warnings"]

    def floats(col: str) -> list[float | None]:
        x = pd.to_numeric(prj[col], errors="coerce").to_numpy(float)
        return [None if v != v else v for v in x.tolist()]
    k = len(PROGRAMME_INDICATORS)
    n = len(prj) * k

    def each_indicator(values: list) -> list:  # one value per project -> one per (project, indicator)
        return [v for v in values for _i in range(k)]
    out: dict[str, list] = {c: [None] * n for c in cols}
    for c in ("project_id", "enterprise_id", "enterprise", "type"):
        out[c] = each_indicator(prj[c].tolist())
    out["investment"] = each_indicator(floats("investment"))
    out["indicator"] = list(PROGRAMME_INDICATORS) * len(prj)
    declared_of = [floats(DECLARED_COLUMNS[ind]) for ind in PROGRAMME_INDICATORS]
    out["declared"] = [d for row in zip(*declared_of) for d in row]
    out["status"] = ["neither" if d is None else "declared" for d in out["declared"]]
    out["flags"] = [[] for _ in range(n)]
    out["warnings"] = [[] for _ in range(n)]
    at = {(p, ind): j * k + i for j, p in enumerate(out["project_id"][::k])
          for i, ind in enumerate(PROGRAMME_INDICATORS)}
    for r in ver.itertuples(index=False):
        pos = at.get((r.project_id, r.indicator))
        if pos is None:
            continue
        result = r.result if isinstance(r.result, dict) else {}
        verdict = result.get("verdict") or "indicative"
        out["verdict"][pos] = verdict
        out["flags"][pos] = list(result.get("flags") or [])
        out["output"][pos] = r.output
        out["computed_at"][pos] = r.computed_at
        out["warnings"][pos] = r.warnings
        if pd.notna(r.improvement):  # the stored result with a value
            out["status"][pos] = "verified" if verdict == "verified" else "indicative"
            for c in ("improvement", "ci_low", "ci_high", "confidence", "method"):
                out[c][pos] = getattr(r, c)
    df = pd.DataFrame(out, columns=cols) if n else pd.DataFrame([], columns=cols)  # empty: object columns
    for c in ("improvement", "ci_low", "ci_high", "confidence", "output", "investment", "declared"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    return df


def _count(df: pd.DataFrame, key: str, order: tuple = ()) -> pd.DataFrame:
    """Projects per value of ``key`` with their ids and summed investment [CNY] (null when no project of the
    group states one): values in ``order`` first, then the others by name; a null key is its own group (shown
    as None), listed last."""
    groups: dict = {}
    money: dict = {}
    inv = pd.to_numeric(df["investment"], errors="coerce") if "investment" in df else pd.Series(float("nan"),
                                                                                               index=df.index)
    for k, pid, x in zip(df[key].astype(object), df["project_id"], inv):
        k = None if pd.isna(k) else k
        groups.setdefault(k, []).append(pid)
        if pd.notna(x):
            money[k] = money.get(k, 0.0) + float(x)
    rank = {v: i for i, v in enumerate(order)}
    keys = sorted(groups, key=lambda k: (k is None, rank.get(k, len(rank)), str(k)))
    return pd.DataFrame({key: keys, "n_projects": [len(groups[k]) for k in keys],
                         "investment": [money.get(k) for k in keys],
                         "project_ids": [sorted(groups[k]) for k in keys]},
                        columns=[key, "n_projects", "investment", "project_ids"])


def programme_designations(ws, prj: pd.DataFrame, park=None, district=None, start=None, end=None, *,
                           selection: Selection | None = None, revoked: bool = False) -> pd.DataFrame:
    """The designation records that belong to the selection.

    A designation naming a project belongs to it when the project is selected; a designation of an
    enterprise (no project) belongs to it when the enterprise is in the selected parks / districts, the
    designation's date lies in ``[start, end)`` and its level, programme and year are selected. A recognition
    revoked before the end of the range (before today without one) does not count; ``revoked=True`` gives
    those instead.

    Returns
    -------
    pandas.DataFrame
        designation_id, enterprise_id, project_id, scope, name, designation, level, programme, date, revoked,
        unit (:func:`zhizao.portfolio.registry.designation_unit`: one designated plant, workshop or project;
        the same unit designated at several levels counts once in the totals).
    """
    sel = selection or select(ws.con, district=district, park=park, start=start, end=end)
    d = designations(ws)
    ent_ids = set(enterprises(ws, list(sel.parks) if sel.parks else None,
                              list(sel.districts) if sel.districts else None)["enterprise_id"])
    by_project = d["project_id"].notna() & d["project_id"].isin(set(prj["project_id"]))
    by_enterprise = d["project_id"].isna() & d["enterprise_id"].isin(ent_ids) \
        & dates_in(d["date"], d["tz"], sel.start, sel.end)
    if sel.programmes is not None:
        by_enterprise &= d["programme"].isin(sel.programmes)
    if sel.years is not None:
        by_enterprise &= d["date"].map(lambda x: x is not None and x.year in sel.years).astype(bool)
    keep = by_project | by_enterprise
    if sel.levels is not None:
        keep &= d["level"].isin(sel.levels)
    d = d[keep.to_numpy(dtype=bool)].reset_index(drop=True)
    cut = [bound_date(sel.end, z, "end") or (today(z) + dt.timedelta(days=1)) for z in d["tz"]]
    gone = pd.Series([r is not None and r < c for r, c in zip(d["revoked"], cut)], index=d.index, dtype=bool)
    d = d[gone.to_numpy() if revoked else ~gone.to_numpy()].reset_index(drop=True)
    d["unit"] = [designation_unit(*t) for t in zip(d["enterprise_id"], d["scope"], d["name"], d["project_id"],
                                                   d["designation_id"])]
    return d.drop(columns=["tz"])


def _designation_counts(d: pd.DataFrame, by_level: bool) -> pd.DataFrame:
    """Designated units per designation (and level), with the units, enterprises and projects behind."""
    keys = ["designation", "level"] if by_level else ["designation"]
    cols = keys + ["n", "units", "enterprise_ids", "project_ids"]
    groups: dict = {}
    for r in d.itertuples(index=False):
        k = (r.designation, None if pd.isna(r.level) else r.level) if by_level else (r.designation,)
        groups.setdefault(k, []).append(r)
    order = {v: i for i, v in enumerate(DESIGNATIONS)}
    rows = []
    for k in sorted(groups, key=lambda k: (order.get(k[0], len(order)), str(k[0]), *(str(x) for x in k[1:]))):
        g = groups[k]
        units = sorted({r.unit for r in g})
        rows.append({**dict(zip(keys, k)), "n": len(units), "units": units,
                     "enterprise_ids": sorted({r.enterprise_id for r in g}),
                     "project_ids": sorted({r.project_id for r in g if isinstance(r.project_id, str)})})
    return pd.DataFrame(rows, columns=cols)


def _coverage(pv: pd.DataFrame, n_projects: int) -> pd.DataFrame:
    rows = []
    for ind in PROGRAMME_INDICATORS:
        g = pv[pv["indicator"] == ind]
        ids = {s: sorted(g.loc[g["status"] == s, "project_id"]) for s in STATUSES}
        rows.append({"indicator": ind, "n_projects": n_projects, "n_verified": len(ids["verified"]),
                     "n_indicative": len(ids["indicative"]),
                     "n_declared_only": len(ids["declared"]), "n_neither": len(ids["neither"]),
                     "n_declared": int(g["declared"].notna().sum()),
                     "verified_ids": ids["verified"], "indicative_ids": ids["indicative"],
                     "declared_only_ids": ids["declared"],
                     "neither_ids": ids["neither"], "declared_ids": sorted(g.loc[g["declared"].notna(), "project_id"])})
    return pd.DataFrame(rows)


def _averages(pv: pd.DataFrame, confidence, n_boot, seed, bases=(("verified", "improvement"),
                                                                 ("declared", "declared"))) -> pd.DataFrame:
    rows = []
    for ind in PROGRAMME_INDICATORS:
        g = pv[pv["indicator"] == ind].set_index("project_id")
        for basis, col in bases:
            values = g[col].where(g["status"] == basis) if basis in ("verified", "indicative") else g[col]
            s = summarize(values, g["output"], g["investment"], confidence, n_boot, seed)
            # the projects with a declared value too: a declared and a verified mean compare over one set of projects
            paired = g.loc[values.dropna().index, "declared"].dropna().index
            both = len(paired) > 0
            rows.append({"indicator": ind, "basis": basis, **s, "paired_n": len(paired),
                         "paired_mean": float(values[paired].astype(float).mean()) if both else None,
                         "paired_declared_mean": float(g.loc[paired, "declared"].astype(float).mean()) if both
                         else None})
    return pd.DataFrame(rows)


def _rankings(pv: pd.DataFrame, top: int) -> pd.DataFrame:
    cols = ["indicator", "rank", "project_id", "enterprise_id", "enterprise", "type", "improvement", "ci_low",
            "ci_high", "confidence"]
    v = pv[pv["status"] == "verified"]
    parts = []
    for ind in PROGRAMME_INDICATORS:
        g = v[v["indicator"] == ind].sort_values(["improvement", "project_id"], ascending=[False, True]).head(top)
        parts.append(g.assign(rank=range(1, len(g) + 1))[cols])
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)


def programme_statistics(ws, park=None, district=None, start=None, end=None, confidence: float = 0.9,
                         n_boot: int = 2000, seed: int = 0, top: int = TOP_N, *, level=None, programme=None,
                         year=None) -> dict:
    """Statistics of a programme: projects, designations and the average results, traceable to projects.

    Parameters
    ----------
    ws : zhizao.Workspace
    park, district : str or list, optional
        Keep projects (and enterprise designations) of enterprises in these parks / districts (several: a list
        or comma-separated).
    start, end : str or datetime, optional
        Keep projects whose start lies in ``[start, end)`` (naive bounds in the project's local time; see
        :mod:`zhizao.portfolio.registry`); enterprise designations are kept by their date.
    confidence : float, default 0.9
        Level of the bootstrap intervals of the means.
    n_boot : int, default 2000
        Bootstrap resamples (over projects).
    seed : int, default 0
        Bootstrap seed: the same store and arguments give the same intervals.
    top : int, default 10
        Projects per indicator in the rankings.
    level, programme, year : str, int or list, optional
        Keep projects (and designations) of these levels, programmes (batches) and years.

    Returns
    -------
    dict
        ``filters`` (dict of the arguments), ``confidence``;
        ``totals`` (dict: n_projects, n_enterprises, n_demonstration_projects, n_smart_factories,
        n_digital_workshops, n_verified_projects (projects with at least one verified indicator),
        n_declared_projects (with at least one declared value), project_ids, verified_project_ids, investment
        (total [CNY] of the projects that state one, n_investment of them), n_simulated_projects and
        simulated_project_ids (projects whose record was loaded from simulated data, :mod:`zhizao.provenance`));
        DataFrames ``projects`` (the selected projects), ``by_type``, ``by_district``, ``by_industry``,
        ``by_year`` (n_projects, investment [CNY], project_ids), ``designations`` (the records counted),
        ``by_designation`` and ``by_designation_level`` (n designated units, units, enterprise_ids, project_ids);
        ``coverage`` (per indicator: n_verified, n_indicative, n_declared_only, n_neither, n_declared and the
        ids of each);
        ``averages`` (per indicator and basis "verified" / "declared": n, mean (unweighted), ci_low, ci_high,
        weighted_mean, weight_basis ("output" = reporting-period output from the result's coverage,
        "investment" otherwise), weight_project_ids, median, q1, q3, iqr, min, max, project_ids; "verified"
        counts only results whose every check passed; paired_n, paired_mean, paired_declared_mean: the row's
        projects that declared a value too, how many, their mean and the mean of what they declared: a declared
        and a verified mean over the same projects); ``averages_indicative`` (the same for the indicative
        results, shown apart);
        ``rankings`` (top projects by verified improvement per indicator);
        ``project_values`` (one row per project and indicator: every value the averages are computed from);
        ``basis`` (what the stored results with a value rest on: windows' months, the conditions the baselines
        were adjusted for, deflated costs; :func:`zhizao.portfolio.basis.verification_basis`);
        ``revoked`` (recognitions revoked before the end of the range, not counted);
        ``by_programme``, ``by_level`` (n_projects, project_ids);
        ``targets`` (per target of table ``programme_targets`` in the selection: target, actual, completion =
        actual / target, and the project ids or units behind the actual value; see :func:`targets`).
        Values are fractions (0.598 = +59.8 %), positive = better for every indicator.

    Raises
    ------
    ValueError
        For a confidence outside (0, 1) or n_boot < 1.
    zhizao.errors.InputError
        For an unknown district, park, level, programme, a year or a bound that is none.
    """
    if not 0 < confidence < 1:
        raise InputError(BAD_CONFIDENCE, value=confidence)
    if n_boot < 1:
        raise InputError(BAD_N_BOOT, value=n_boot)
    sel = select(ws.con, district=district, park=park, level=level, programme=programme, year=year, start=start,
                 end=end)
    prj = projects(ws, selection=sel)
    ver_rows = latest_verification_rows(ws)  # parsed once: the targets read them too
    ver = latest_verifications(ws, prj["project_id"], rows=ver_rows)
    pv = project_values(prj, ver)
    d = programme_designations(ws, prj, selection=sel)
    revoked = programme_designations(ws, prj, selection=sel, revoked=True)
    by_des = _designation_counts(d, by_level=False)
    n_des = dict(zip(by_des["designation"], by_des["n"]))
    verified_ids = sorted(set(pv.loc[pv["status"] == "verified", "project_id"]))
    indicative_ids = sorted(set(pv.loc[pv["status"] == "indicative", "project_id"]))
    f = sel.to_dict()
    filters = {k: (", ".join(map(str, v)) if isinstance(v, list) else v) for k, v in f.items()}
    from zhizao.provenance import simulated_ids

    simulated = sorted(simulated_ids(ws.con, "projects", "project_id", prj["project_id"]))
    inv = pd.to_numeric(prj["investment"], errors="coerce")
    totals = {
        "n_projects": int(len(prj)), "n_enterprises": int(prj["enterprise_id"].nunique()),
        "n_demonstration_projects": int(n_des.get("demonstration_project", 0)),
        "n_smart_factories": int(n_des.get("smart_factory", 0)),
        "n_digital_workshops": int(n_des.get("digital_workshop", 0)),
        "n_verified_projects": len(verified_ids),
        "n_revoked": int(revoked["unit"].nunique()) if len(revoked) else 0,
        "project_ids": prj["project_id"].tolist(), "verified_project_ids": verified_ids,
        "n_indicative_projects": len(indicative_ids), "indicative_project_ids": indicative_ids,
        "investment": float(inv.sum()) if inv.notna().any() else None,
        "n_investment": int(inv.notna().sum()),
        "n_declared_projects": int(pv.loc[pv["declared"].notna(), "project_id"].nunique()),
        "n_simulated_projects": len(simulated), "simulated_project_ids": simulated,
    }
    return {
        "filters": filters, "selection": f, "confidence": confidence, "n_boot": n_boot, "seed": seed,
        "totals": totals,
        "projects": prj,
        "by_type": _count(prj, "type", PROJECT_TYPES),
        "by_district": _count(prj, "district"),
        "by_industry": _count(prj, "industry"),
        "by_year": _count(prj, "year"),
        "by_programme": _count(prj, "programme"),
        "by_level": _count(prj, "level", ("district", "municipal", "national")),
        "designations": d,
        "revoked": revoked,
        "by_designation": by_des,
        "by_designation_level": _designation_counts(d, by_level=True),
        "coverage": _coverage(pv, len(prj)),
        "averages": _averages(pv, confidence, n_boot, seed),
        "averages_indicative": _averages(pv, confidence, n_boot, seed, (("indicative", "improvement"),)),
        "rankings": _rankings(pv, top),
        "project_values": pv,
        "basis": verification_basis(ver),
        "targets": targets(ws, sel, pv, verification_rows=ver_rows),
    }
