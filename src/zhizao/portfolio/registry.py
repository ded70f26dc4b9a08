"""The programme register as the stages read it: projects, enterprises, designations and the stored
verification results.

Only reads the store. Verification results are read from the ``verifications`` table (written by the verify
stage as :meth:`zhizao.verify.result.VerificationResult.to_json`); the latest row per ``(project_id,
indicator)`` counts (by ``computed_at``, then insertion order).

Register dates (a project's start, a designation's date) are calendar dates (:mod:`zhizao.portfolio.dates`):
``year`` is the year of the start date, whatever zone the shop-floor data are in. Time filters select dates
``d`` with ``start <= t(d) < end`` where ``t(d)`` is the start of ``d`` in the register's zone (of the
project's programme, else of the store); naive bounds are local times of that zone, bounds with an offset
instants. Ranges are half-open. The other filters take several values (:mod:`zhizao.portfolio.filters`).
"""

from __future__ import annotations

import datetime as dt
import json
import math

import pandas as pd

from zhizao.errors import InputError
from zhizao.messages import define
from zhizao.portfolio.dates import bound_date, in_dates, programme_zones, store_zone
from zhizao.portfolio.filters import Selection, select
from zhizao.portfolio.vocabularies import vocabulary

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
                   "scope", "programme", "level", "start", "commissioning_end", "investment", "status",
                   "status_date", *DECLARED_COLUMNS.values(), "tz", "year"]
DESIGNATION_COLUMNS = ["designation_id", "enterprise_id", "project_id", "scope", "name", "designation", "level",
                       "programme", "date", "revoked", "tz"]


def has_table(con, name: str) -> bool:
    """Whether the store holds table ``name`` (an old store opened read-only may lack the newer ones)."""
    return con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                       [name]).fetchall()[0][0] > 0


def _columns(con, table: str) -> set[str]:
    return {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = ?",
                                      [table]).fetchall()}


def _select_cols(con, table: str, alias: str, cols) -> str:
    have = _columns(con, table)
    return ", ".join(f'{alias}."{c}"' if c in have else f'NULL AS "{c}"' for c in cols)


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


def _as_date(v):
    if v is None or (isinstance(v, float) and v != v) or v is pd.NaT:
        return None
    if isinstance(v, pd.Timestamp):
        return v.date()
    if isinstance(v, dt.datetime):
        return v.date()
    return v


def dates_in(dates: pd.Series, zones: pd.Series, start=None, end=None) -> pd.Series:
    """Boolean mask of register dates in ``[start, end)`` (see the module docstring), per row's zone."""
    mask = pd.Series(True, index=dates.index)
    if start is None and end is None:
        return mask
    for z in set(zones):
        rows = (zones == z).to_numpy()
        lo, hi = bound_date(start, z, "start"), bound_date(end, z, "end")
        mask[rows] = in_dates(dates[rows], lo, hi).to_numpy()
    return mask.astype(bool)


def _code(vocab: str, values: pd.Series) -> pd.Series:
    """Stored values as codes (an older store may hold labels)."""
    v = vocabulary(vocab)
    return values.map(lambda x: (v.match(x) or x) if isinstance(x, str) else x)


def _selection(ws, sel: Selection | None, park, district, start, end, **more) -> Selection:
    if sel is not None:
        return sel
    return select(ws.con, district=district, park=park, start=start, end=end, **more)


def projects(ws, park=None, district=None, start=None, end=None, project_ids=None, *, level=None,
             programme=None, year=None, selection: Selection | None = None) -> pd.DataFrame:
    """Projects with their enterprise's name, industry, district and park, selected by filters.

    Parameters
    ----------
    ws : zhizao.Workspace
    park, district : str or list, optional
        Keep projects of enterprises in these parks / districts (several: a list or comma-separated).
    start, end : optional
        Keep projects whose start date lies in ``[start, end)`` (see the module docstring).
    project_ids : iterable of str, optional
        Keep only these projects.
    level, programme, year : str, int or list, optional
        Keep projects of these approval levels, programmes (batches) and start years.
    selection : Selection, optional
        Already validated filters (instead of the arguments above).

    Returns
    -------
    pandas.DataFrame
        :data:`PROJECT_COLUMNS`, one row per project, ordered by project_id; ``start``, ``commissioning_end``
        and ``status_date`` are ``datetime.date``; ``tz`` is the project's register zone and ``year`` the
        year of its start date.

    Raises
    ------
    zhizao.errors.InputError
        For an unknown district, park, level, programme or a year that is none.
    """
    con = ws.con
    if not has_table(con, "projects"):
        return pd.DataFrame(columns=PROJECT_COLUMNS)
    sel = _selection(ws, selection, park, district, start, end, level=level, programme=programme, year=year)
    pcols = [c for c in PROJECT_COLUMNS if c not in ("enterprise", "industry", "district", "park", "tz", "year")]
    df = con.execute(f"""
        SELECT {_select_cols(con, "projects", "p", pcols)}, e.name AS enterprise, e.industry, e.district, e.park
        FROM projects p LEFT JOIN enterprises e ON e.enterprise_id = p.enterprise_id
        ORDER BY p.project_id""").df()
    zones, default = programme_zones(con), store_zone(con)
    df["tz"] = [zones.get(p, default) if isinstance(p, str) else default for p in df["programme"]]
    for c in ("start", "commissioning_end", "status_date"):
        df[c] = pd.Series([_as_date(v) for v in df[c]], index=df.index, dtype=object)
    df["district"] = _code("district", df["district"])
    df["level"] = _code("level", df["level"])
    keep = pd.Series(True, index=df.index)
    if sel.parks is not None:
        keep &= df["park"].isin(sel.parks)
    if sel.districts is not None:
        keep &= df["district"].isin(sel.districts)
    if sel.levels is not None:
        keep &= df["level"].isin(sel.levels)
    if sel.programmes is not None:
        keep &= df["programme"].isin(sel.programmes)
    if project_ids is not None:
        keep &= df["project_id"].isin(list(project_ids))
    df = df[keep.to_numpy(dtype=bool)].reset_index(drop=True)
    df = df[dates_in(df["start"], df["tz"], sel.start, sel.end).to_numpy(dtype=bool)].reset_index(drop=True)
    df["year"] = pd.Series([d.year if d is not None else None for d in df["start"]], index=df.index, dtype="Int64")
    if sel.years is not None:
        df = df[df["year"].isin(sel.years).fillna(False).to_numpy(dtype=bool)].reset_index(drop=True)
    return df[PROJECT_COLUMNS]


def enterprises(ws, park=None, district=None) -> pd.DataFrame:
    """Enterprises (enterprise_id, name, industry, district, park, tz) in these parks / districts."""
    cols = ["enterprise_id", "name", "industry", "district", "park", "tz"]
    if not has_table(ws.con, "enterprises"):
        return pd.DataFrame(columns=cols)
    sel = select(ws.con, district=district, park=park)
    df = ws.con.execute("SELECT enterprise_id, name, industry, district, park FROM enterprises "
                        "ORDER BY enterprise_id").df()
    df["district"] = _code("district", df["district"])
    df["tz"] = store_zone(ws.con)
    keep = pd.Series(True, index=df.index)
    if sel.parks is not None:
        keep &= df["park"].isin(sel.parks)
    if sel.districts is not None:
        keep &= df["district"].isin(sel.districts)
    return df[keep.to_numpy(dtype=bool)].reset_index(drop=True)[cols]


def designations(ws, enterprise_ids=None) -> pd.DataFrame:
    """Designation records (:data:`DESIGNATION_COLUMNS`; dates as ``datetime.date``, ``tz`` the register
    zone), optionally of some enterprises only, ordered by enterprise, designation and date."""
    if not has_table(ws.con, "designations"):
        return pd.DataFrame(columns=DESIGNATION_COLUMNS)
    con = ws.con
    cols = [c for c in DESIGNATION_COLUMNS if c != "tz"]
    df = con.execute(f"""SELECT {_select_cols(con, "designations", "d", cols)} FROM designations d
                         ORDER BY d.enterprise_id, d.designation, d.date, d.project_id, d.scope,
                                  d.designation_id""").df()
    zones, default = programme_zones(con), store_zone(con)
    df["tz"] = [zones.get(p, default) if isinstance(p, str) else default for p in df["programme"]]
    for c in ("date", "revoked"):
        df[c] = pd.Series([_as_date(v) for v in df[c]], index=df.index, dtype=object)
    df["level"] = _code("level", df["level"])
    if enterprise_ids is not None:
        df = df[df["enterprise_id"].isin(list(enterprise_ids))].reset_index(drop=True)
    return df[DESIGNATION_COLUMNS]


def designation_unit(enterprise_id, scope, name, project_id, designation_id) -> str:
    """The designated unit of a designation record: ``enterprise[/scope or name or id][#project]``.

    The same unit designated several times (district, then municipal level) counts once; two workshops of one
    enterprise with empty scopes are two units when they have names or ids of their own."""
    part = scope if isinstance(scope, str) and scope else (name if isinstance(name, str) and name else None)
    if part is None and not (isinstance(project_id, str) and project_id):
        part = designation_id if isinstance(designation_id, str) and designation_id else None
    return str(enterprise_id) + (f"/{part}" if part else "") + \
        (f"#{project_id}" if isinstance(project_id, str) and project_id else "")


def finite_float(v) -> float | None:
    """``v`` (a number or its text) as a finite float; None where it is not one.

    >>> finite_float("0.25"), finite_float("inf"), finite_float("n/a")
    (0.25, None, None)
    """
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _num(v) -> float | None:
    """A stored figure as a finite float or None (a dict figure: its reporting value, else its value)."""
    if isinstance(v, dict):
        v = v.get("reporting", v.get("value"))
    return finite_float(v)


VERIFICATION_COLUMNS = ["project_id", "indicator", "scope", "computed_at", "improvement", "ci_low", "ci_high",
                        "confidence", "method", "definition", "baseline_period", "reporting_period", "output",
                        "warnings", "result"]


def latest_verifications(ws, project_ids=None, *, rows: list[dict] | None = None) -> pd.DataFrame:
    """The latest stored verification result per (project, indicator).

    Parameters
    ----------
    ws : zhizao.Workspace
    project_ids : iterable of str, optional
        Keep only these projects.
    rows : list of dict, optional
        :func:`latest_verification_rows` of the store, when the caller has read them already (parsing the
        stored results is the costly part; a caller that needs several selections reads them once).

    Returns
    -------
    pandas.DataFrame
        :data:`VERIFICATION_COLUMNS`: improvement, ci_low, ci_high (fractions, positive = better) and
        confidence from the result; ``output`` is ``coverage["output"]`` (the reporting-period output) when the
        result gives it, else null; ``result`` is the whole result as a dict. A row whose latest result has a
        null improvement is kept (it is not a verified value).
    """
    if rows is None:
        rows = latest_verification_rows(ws, project_ids)
    elif project_ids is not None:
        wanted = set(project_ids)
        rows = [r for r in rows if r["project_id"] in wanted]
    return pd.DataFrame(rows, columns=VERIFICATION_COLUMNS)


def latest_verification_rows(ws, project_ids=None) -> list[dict]:
    """The rows of :func:`latest_verifications` (of ``project_ids``, default every project) as dicts."""
    if not has_table(ws.con, "verifications"):
        return []
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
    return rows
