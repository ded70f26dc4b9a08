"""Programmes (batches) and their targets: target, actual and completion rate.

A programme (table ``programmes``) is a batch of the register: its projects and designations name it in
column ``programme``. Its targets (table ``programme_targets``) give, per year and optionally per district,
a number to reach for a measure of the vocabulary ``target_measure``:

===========================  =================================================================================
measure                      actual value
===========================  =================================================================================
n_projects                   projects of the programme whose start date lies in the year
n_demonstration_projects     designated units (see :func:`zhizao.portfolio.registry.designation_unit`) of the
n_smart_factories            designation, recognised in the year, of the programme (the designation names the
n_digital_workshops          programme, or its project belongs to it), not revoked by the end of the year
investment                   total investment of those projects [10,000 CNY] (总投资, 万元)
production_efficiency, ...   unweighted mean of the verified improvements of those projects (fraction)
===========================  =================================================================================

With a district, only the projects and designations of enterprises in that district count. The completion
rate is actual / target (null for a zero target); for the indicator means it compares the mean improvement
with the targeted one. Only results verified from data count; projects without one are listed apart.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from zhizao.portfolio.registry import (
    DECLARED_COLUMNS,
    designation_unit,
    designations,
    has_table,
    latest_verifications,
    projects,
)

COUNT_MEASURES = {"n_projects": None, "n_demonstration_projects": "demonstration_project",
                  "n_smart_factories": "smart_factory", "n_digital_workshops": "digital_workshop"}
TARGET_COLUMNS = ["programme_id", "year", "district", "measure", "target", "actual", "completion", "unit",
                  "n", "ids", "missing_ids", "note"]


def programme_list(ws) -> pd.DataFrame:
    """The programmes with their numbers of projects and designations."""
    cols = ["programme_id", "name", "name_en", "year", "level", "authority", "timezone", "rules", "start", "end",
            "n_projects", "n_designations"]
    if not has_table(ws.con, "programmes"):
        return pd.DataFrame(columns=cols)
    df = ws.con.execute("""
        SELECT g.*, (SELECT count(*) FROM projects p WHERE p.programme = g.programme_id) AS n_projects,
               (SELECT count(*) FROM designations d WHERE d.programme = g.programme_id) AS n_designations
        FROM programmes g ORDER BY g.programme_id""").df()
    return df[[c for c in cols if c in df.columns]]


def targets(ws, selection=None, project_values: pd.DataFrame | None = None, *,
            verification_rows: list[dict] | None = None) -> pd.DataFrame:
    """Targets of the selection's programmes, years and districts with their actual values.

    Parameters
    ----------
    ws : zhizao.Workspace
    selection : zhizao.portfolio.filters.Selection, optional
        Keeps the targets of its programmes, years and districts (all targets without one).
    project_values : unused, kept for the call of :func:`zhizao.portfolio.stats.programme_statistics`.
    verification_rows : list of dict, optional
        :func:`zhizao.portfolio.registry.latest_verification_rows` of the store when the caller has read them
        already (read here otherwise).

    Returns
    -------
    pandas.DataFrame
        :data:`TARGET_COLUMNS`: ``unit`` is "count", "10k_cny" or "fraction"; ``n`` the projects or units
        counted; ``ids`` the project ids or units behind ``actual``; ``missing_ids`` the projects of the target
        without a verified result (indicator measures).
    """
    if not has_table(ws.con, "programme_targets"):
        return pd.DataFrame(columns=TARGET_COLUMNS)
    t = ws.con.execute("SELECT programme_id, year, district, measure, target, note FROM programme_targets "
                       "ORDER BY programme_id, year, district NULLS FIRST, measure").df()
    if selection is not None:
        if selection.programmes is not None:
            t = t[t["programme_id"].isin(selection.programmes)]
        if selection.years is not None:
            t = t[t["year"].isin(selection.years)]
        if selection.districts is not None:
            t = t[t["district"].isna() | t["district"].isin(selection.districts)]
    if t.empty:
        return pd.DataFrame(columns=TARGET_COLUMNS)
    prj = projects(ws)
    des = designations(ws)
    ver = latest_verifications(ws, prj["project_id"], rows=verification_rows)
    ver = ver[ver["improvement"].notna()]
    district_of = dict(zip(prj["enterprise_id"], prj["district"]))
    from zhizao.portfolio.registry import enterprises

    ent = enterprises(ws)
    district_of.update(dict(zip(ent["enterprise_id"], ent["district"])))
    rows = []
    for r in t.itertuples(index=False):
        y = int(r.year)
        dist = r.district if isinstance(r.district, str) and r.district else None
        p = prj[(prj["programme"] == r.programme_id) & (prj["year"] == y)]
        if dist is not None:
            p = p[p["district"] == dist]
        ids = p["project_id"].tolist()
        out = {"programme_id": r.programme_id, "year": y, "district": dist, "measure": r.measure,
               "target": float(r.target), "note": r.note if isinstance(r.note, str) else None, "missing_ids": []}
        if r.measure == "n_projects":
            out.update(actual=float(len(ids)), unit="count", n=len(ids), ids=ids)
        elif r.measure in COUNT_MEASURES:
            kind = COUNT_MEASURES[r.measure]
            end = dt.date(y + 1, 1, 1)
            d = des[(des["designation"] == kind)
                    & ((des["programme"] == r.programme_id) | des["project_id"].isin(prj.loc[
                        prj["programme"] == r.programme_id, "project_id"]))]
            # row masks as bool arrays: an empty list would select no columns, not no rows
            d = d[np.array([x is not None and x.year == y for x in d["date"]], dtype=bool)]
            d = d[np.array([rv is None or rv >= end for rv in d["revoked"]], dtype=bool)]
            if dist is not None:
                d = d[d["enterprise_id"].map(district_of) == dist]
            units = sorted({designation_unit(*u) for u in zip(d["enterprise_id"], d["scope"], d["name"],
                                                               d["project_id"], d["designation_id"])})
            out.update(actual=float(len(units)), unit="count", n=len(units), ids=units)
        elif r.measure == "investment":
            inv = pd.to_numeric(p["investment"], errors="coerce")
            out.update(actual=float(inv.sum()) / 1e4 if inv.notna().any() else None, unit="10k_cny",
                       n=int(inv.notna().sum()), ids=p.loc[inv.notna(), "project_id"].tolist(),
                       missing_ids=p.loc[inv.isna(), "project_id"].tolist())
        elif r.measure in DECLARED_COLUMNS:
            v = ver[(ver["indicator"] == r.measure) & ver["project_id"].isin(ids)]
            out.update(actual=float(v["improvement"].mean()) if len(v) else None, unit="fraction", n=len(v),
                       ids=sorted(v["project_id"]), missing_ids=sorted(set(ids) - set(v["project_id"])))
        else:
            out.update(actual=None, unit=None, n=0, ids=[])
        a, tg = out["actual"], out["target"]
        out["completion"] = (a / tg) if a is not None and tg not in (0, 0.0) and tg == tg else None
        rows.append(out)
    return pd.DataFrame(rows, columns=TARGET_COLUMNS)


__all__ = ["TARGET_COLUMNS", "programme_list", "targets"]
