"""The programme register: projects, enterprises, designations and the stored verification results.

Only reads the store. Verification results are read from the ``verifications`` table (written by the verify
stage as :meth:`zhizao.verify.result.VerificationResult.to_json`); the latest row per ``(project_id,
indicator)`` counts (by ``computed_at``, then insertion order).

Time filters: a bound with a UTC offset is an instant; a naive bound (``"2022-01-01"``) is read in the local
time zone of each project (the zone of its scope's equipment, else of its enterprise's equipment, else UTC),
the same rule the ingest stage uses for naive time stamps. Ranges are half-open, ``[start, end)``.
"""

from __future__ import annotations

import json
import math

import pandas as pd

from zhizao.errors import InputError
from zhizao.messages import define

NOT_A_TIME = define("portfolio.not_a_time", "not a date or time stamp: '%(value)s'")

#: The programme indicators, in bulletin order (reference/transformation.md, "The indicators").
PROGRAMME_INDICATORS = ("production_efficiency", "defect_rate", "operating_cost", "unit_energy",
                        "development_cycle")
#: Indicator -> the declared-value column of table ``projects`` (fraction, positive = better).
DECLARED_COLUMNS = {
    "production_efficiency": "declared_efficiency",
    "defect_rate": "declared_defect_rate",
    "operating_cost": "declared_operating_cost",
    "unit_energy": "declared_unit_energy",
    "development_cycle": "declared_development_cycle",
}

PROJECT_COLUMNS = ["project_id", "enterprise_id", "enterprise", "industry", "district", "park", "name", "type",
                   "scope", "start", "commissioning_end", "investment", "status", *DECLARED_COLUMNS.values(),
                   "tz", "year"]

_TZ_SQL = """coalesce(
    (SELECT min(x.timezone) FROM equipment x
      WHERE {scope} IN (x.equipment_id, x.work_center, x.area, x.site, x.enterprise)),
    (SELECT min(x.timezone) FROM equipment x WHERE x.enterprise = {ent}),
    'UTC')"""


def has_table(con, name: str) -> bool:
    """Whether the store holds table ``name`` (an old store opened read-only may lack the newer ones)."""
    return con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                       [name]).fetchall()[0][0] > 0


def parse_bound(value) -> pd.Timestamp | None:
    """A time bound as a :class:`pandas.Timestamp` (naive stays naive: read in local time); None -> None.

    Raises
    ------
    ValueError
        If ``value`` is not a date or time stamp.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return pd.Timestamp(value)
    except (ValueError, TypeError) as e:
        raise InputError(NOT_A_TIME, value=str(value)) from e


def in_window(ts: pd.Series, tz: pd.Series, start=None, end=None) -> pd.Series:
    """Boolean mask: ``start <= ts < end`` with naive bounds read in each row's zone ``tz``.

    Parameters
    ----------
    ts : pandas.Series of tz-aware timestamps (UTC)
    tz : pandas.Series of str
        IANA zone per row.
    start, end : str, datetime or None
        Bounds; None is unbounded.
    """
    start, end = parse_bound(start), parse_bound(end)
    mask = pd.Series(True, index=ts.index)
    if start is None and end is None:
        return mask
    ts = pd.to_datetime(ts, utc=True)
    local = pd.Series([t.tz_convert(z).tz_localize(None) if pd.notna(t) else pd.NaT for t, z in zip(ts, tz)],
                      index=ts.index, dtype="datetime64[ns]")
    for bound, ge in ((start, True), (end, False)):
        if bound is None:
            continue
        x = ts if bound.tzinfo is not None else local
        b = bound.tz_convert("UTC") if bound.tzinfo is not None else bound
        mask &= (x >= b) if ge else (x < b)
    return mask.fillna(False).astype(bool)


def projects(ws, park: str | None = None, district: str | None = None, start=None, end=None,
             project_ids=None) -> pd.DataFrame:
    """Projects with their enterprise's name, industry, district and park, selected by filters.

    Parameters
    ----------
    ws : zhizao.Workspace
    park, district : str, optional
        Keep projects of enterprises in this park / district.
    start, end : optional
        Keep projects whose ``start`` lies in ``[start, end)``.
    project_ids : iterable of str, optional
        Keep only these projects.

    Returns
    -------
    pandas.DataFrame
        :data:`PROJECT_COLUMNS`, one row per project, ordered by project_id; ``tz`` is the project's local
        zone and ``year`` the local year of its start.
    """
    con = ws.con
    if not has_table(con, "projects"):
        return pd.DataFrame(columns=PROJECT_COLUMNS)
    declared = ", ".join(f"p.{c}" for c in DECLARED_COLUMNS.values())
    df = con.execute(f"""
        SELECT p.project_id, p.enterprise_id, e.name AS enterprise, e.industry, e.district, e.park, p.name,
               p.type, p.scope, p.start, p.commissioning_end, p.investment, p.status, {declared},
               {_TZ_SQL.format(scope="p.scope", ent="p.enterprise_id")} AS tz
        FROM projects p LEFT JOIN enterprises e ON e.enterprise_id = p.enterprise_id
        WHERE (? IS NULL OR e.park = ?) AND (? IS NULL OR e.district = ?)
        ORDER BY p.project_id""", [park, park, district, district]).df()
    if project_ids is not None:
        df = df[df["project_id"].isin(list(project_ids))]
    df = df[in_window(df["start"], df["tz"], start, end)].reset_index(drop=True)
    df["year"] = pd.Series([int(pd.Timestamp(t).tz_convert(z).year) for t, z in zip(df["start"], df["tz"])],
                           index=df.index, dtype="Int64")
    return df[PROJECT_COLUMNS]


def enterprises(ws, park: str | None = None, district: str | None = None) -> pd.DataFrame:
    """Enterprises (enterprise_id, name, industry, district, park, tz) in ``park`` / ``district``."""
    if not has_table(ws.con, "enterprises"):
        return pd.DataFrame(columns=["enterprise_id", "name", "industry", "district", "park", "tz"])
    return ws.con.execute(f"""
        SELECT e.enterprise_id, e.name, e.industry, e.district, e.park,
               {_TZ_SQL.format(scope="e.enterprise_id", ent="e.enterprise_id")} AS tz
        FROM enterprises e
        WHERE (? IS NULL OR e.park = ?) AND (? IS NULL OR e.district = ?)
        ORDER BY e.enterprise_id""", [park, park, district, district]).df()


def designations(ws, enterprise_ids=None) -> pd.DataFrame:
    """Designation records (enterprise_id, project_id, scope, designation, level, date, tz), optionally of
    some enterprises only, ordered by enterprise, designation and date."""
    cols = ["enterprise_id", "project_id", "scope", "designation", "level", "date", "tz"]
    if not has_table(ws.con, "designations"):
        return pd.DataFrame(columns=cols)
    df = ws.con.execute(f"""
        SELECT d.enterprise_id, d.project_id, d.scope, d.designation, d.level, d.date,
               {_TZ_SQL.format(scope="coalesce(d.scope, d.enterprise_id)", ent="d.enterprise_id")} AS tz
        FROM designations d ORDER BY d.enterprise_id, d.designation, d.date, d.project_id, d.scope""").df()
    if enterprise_ids is not None:
        df = df[df["enterprise_id"].isin(list(enterprise_ids))].reset_index(drop=True)
    return df[cols]


def _num(v) -> float | None:
    """A finite float or None."""
    if isinstance(v, dict):
        v = v.get("reporting", v.get("value"))
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


VERIFICATION_COLUMNS = ["project_id", "indicator", "scope", "computed_at", "improvement", "ci_low", "ci_high",
                        "confidence", "method", "definition", "baseline_period", "reporting_period", "output",
                        "warnings", "result"]


def latest_verifications(ws, project_ids=None) -> pd.DataFrame:
    """The latest stored verification result per (project, indicator).

    Parameters
    ----------
    ws : zhizao.Workspace
    project_ids : iterable of str, optional
        Keep only these projects.

    Returns
    -------
    pandas.DataFrame
        :data:`VERIFICATION_COLUMNS`: improvement, ci_low, ci_high (fractions, positive = better) and
        confidence from the result; ``output`` is ``coverage["output"]`` (the reporting-period output) when the
        result gives it, else null; ``result`` is the whole result as a dict. A row whose latest result has a
        null improvement is kept (it is not a verified value).
    """
    if not has_table(ws.con, "verifications"):
        return pd.DataFrame(columns=VERIFICATION_COLUMNS)
    raw = ws.con.execute("""
        SELECT project_id, indicator, scope, result, computed_at FROM (
            SELECT coalesce(project_id, json_extract_string(result, '$.project_id')) AS project_id, indicator,
                   scope, CAST(result AS VARCHAR) AS result, computed_at,
                   row_number() OVER (
                       PARTITION BY coalesce(project_id, json_extract_string(result, '$.project_id')), indicator
                       ORDER BY computed_at DESC NULLS LAST, rowid DESC) AS rn
            FROM verifications)
        WHERE rn = 1 AND project_id IS NOT NULL
        ORDER BY project_id, indicator""").fetchall()
    rows = []
    wanted = None if project_ids is None else set(project_ids)
    for pid, ind, scope, text, at in raw:
        if wanted is not None and pid not in wanted:
            continue
        try:
            r = json.loads(text)
        except (TypeError, ValueError):
            r = {}
        cov = r.get("coverage") or {}
        rows.append({
            "project_id": pid, "indicator": ind, "scope": scope if scope is not None else r.get("scope"),
            "computed_at": at, "improvement": _num(r.get("improvement")), "ci_low": _num(r.get("ci_low")),
            "ci_high": _num(r.get("ci_high")), "confidence": _num(r.get("confidence")),
            "method": r.get("method"), "definition": r.get("definition"),
            "baseline_period": r.get("baseline_period"), "reporting_period": r.get("reporting_period"),
            "output": _num(cov.get("output")) if isinstance(cov, dict) else None,
            "warnings": list(r.get("warnings") or []), "result": r,
        })
    return pd.DataFrame(rows, columns=VERIFICATION_COLUMNS)
