"""Per-period data of one scope for verification: summed elements, relevant variables, calendar features."""

from __future__ import annotations

import numpy as np
import pandas as pd

from zhizao.kpi.buckets import bucket_edges, floor_local
from zhizao.kpi.elements import _ms
from zhizao.kpi.variables import scope_variables, variable_buckets
from zhizao.schema import LEVEL_ID_COLUMN, LEVELS

#: Degree-day base temperatures searched [deg C] (CalTRACK searches balance points the same way).
HEATING_BASES = np.arange(8.0, 21.0, 1.0)
COOLING_BASES = np.arange(14.0, 27.0, 1.0)


def scope_info(ws, scope: str) -> tuple[str, list[str], str]:
    """The ISA-95 level of ``scope``, the ids of the scope and its ancestors, and its time zone.

    Raises
    ------
    ValueError
        If ``scope`` is no equipment, work_center, area, site or enterprise id.
    """
    found = ws._cache.get(("scope_info", scope))
    if found is not None:
        return found
    key = ("equipment_hierarchy",)
    if key not in ws._cache:
        ws._cache[key] = ws.con.execute("SELECT equipment_id, work_center, area, site, enterprise, "
                                        "coalesce(timezone, 'UTC') tz FROM equipment").df()
    eq = ws._cache[key]
    for level in LEVELS:
        col = LEVEL_ID_COLUMN[level]
        m = eq[eq[col] == scope]
        if len(m):
            up = [scope] + [m[LEVEL_ID_COLUMN[L]].iloc[0] for L in LEVELS[LEVELS.index(level) + 1:]]
            found = level, [u for u in up if isinstance(u, str)], str(m["tz"].min())
            ws._cache[("scope_info", scope)] = found
            return found
    raise ValueError(f"scope {scope!r} is no equipment, work_center, area, site or enterprise id")


def cached_variables(ws, scope: str) -> pd.DataFrame:
    """:func:`zhizao.kpi.variables.scope_variables` of ``scope``, cached in the workspace until the next ingest."""
    key = ("variables", scope)
    if key not in ws._cache:
        ws._cache[key] = scope_variables(ws.con, scope)
    return ws._cache[key]


def scope_series(ws, scope: str, period: str, start, end) -> pd.DataFrame:
    """Elements of ``scope`` and its relevant variables per ``period`` bucket over ``[start, end)``.

    Variables booked to the scope or to any of its ancestors count (the nearest wins per name): a site's
    outdoor temperature serves its work centres.

    Returns
    -------
    pandas.DataFrame
        Index period_start (UTC); columns: every element, ``hours`` (bucket length [h]), ``weekday`` (0 =
        Monday, local), ``hour`` (local hour), ``how`` (hour of week), and the variables of
        :func:`zhizao.kpi.variables.variable_buckets`.
    """
    level, chain, tz = scope_info(ws, scope)
    a, b = _ms(start), _ms(end)
    edges = bucket_edges(a, b, period, tz)
    idx = pd.DatetimeIndex(pd.to_datetime(edges[:-1], unit="ms", utc=True), name="period_start")
    aligned = period != "all" and all(
        floor_local(pd.Timestamp(t * 1_000_000, tz="UTC"), period, tz).value // 1_000_000 == t for t in (a, b))
    if aligned:
        # whole buckets: slice the scope's series over the whole data range (built once per store, scope and
        # period); elements do not depend on the query range, so this equals a computation over [start, end)
        key = ("scope_series", scope, period)
        if key not in ws._cache:
            ws._cache[key] = _features(_frame(ws, scope, level, chain, tz, period, None, None), tz)
        df = ws._cache[key].reindex(idx)
        if df["hours"].isna().any():  # buckets outside the data range
            df["period_end"] = pd.to_datetime(edges[1:], unit="ms", utc=True)
            df = _features(df, tz)
        return df
    df = _frame(ws, scope, level, chain, tz, period, start, end).reindex(idx)
    df["period_end"] = pd.to_datetime(edges[1:], unit="ms", utc=True)
    return _features(df, tz)


def _frame(ws, scope, level, chain, tz, period, start, end) -> pd.DataFrame:
    col = LEVEL_ID_COLUMN[level]
    el = ws.elements(level=level, period=period, start=start, end=end)
    el = el[el[col] == scope].set_index("period_start").drop(columns=[col, "tz"])
    if el.empty:
        return el
    a, b = _ms(el.index.min()), _ms(el["period_end"].max())
    vs = None
    for sid in chain:
        v = variable_buckets(ws.con, sid, period, a, b, tz, records=cached_variables(ws, sid))
        vs = v if vs is None else vs.combine_first(v) if not v.empty else vs
    return el.join(vs, how="left") if vs is not None and not vs.empty else el


def _features(df: pd.DataFrame, tz: str) -> pd.DataFrame:
    local = df.index.tz_convert(tz)
    df["hours"] = (df["period_end"] - df.index.to_series()).dt.total_seconds() / 3600.0
    df["weekday"] = local.day_of_week
    df["hour"] = local.hour
    df["how"] = df["weekday"] * 24 + df["hour"]
    return df


def degree_days(temp_c: pd.Series, base: float, kind: str, hours: pd.Series) -> pd.Series:
    """Heating (``kind='hdd'``) or cooling (``'cdd'``) degree days of mean temperatures [deg C x day].

    ``hours`` is each bucket's length; an hourly bucket contributes degree-hours / 24.
    """
    diff = (base - temp_c) if kind == "hdd" else (temp_c - base)
    return diff.clip(lower=0) * (hours / 24.0)


def best_degree_days(y: np.ndarray, temp_c: pd.Series, hours: pd.Series, other: pd.DataFrame | None = None
                     ) -> tuple[float, float]:
    """Heating and cooling bases [deg C] that minimise the squared error of ``y ~ HDD + CDD (+ other)`` on the
    baseline (grid search over :data:`HEATING_BASES` x :data:`COOLING_BASES`, cooling base >= heating base)."""
    best = (np.inf, HEATING_BASES[0], COOLING_BASES[0])
    base_cols = [np.ones(len(y))] + ([other[c].to_numpy(float) for c in other] if other is not None else [])
    t = temp_c.to_numpy(float)
    w = hours.to_numpy(float) / 24.0
    hdd = {bh: np.clip(bh - t, 0, None) * w for bh in HEATING_BASES}  # as degree_days(), in numpy
    cdd = {bc: np.clip(t - bc, 0, None) * w for bc in COOLING_BASES}
    for bh in HEATING_BASES:
        h = hdd[bh]
        for bc in COOLING_BASES:
            if bc < bh:
                continue
            c = cdd[bc]
            A = np.column_stack(base_cols + [h, c])
            beta, *_ = np.linalg.lstsq(A, y, rcond=None)
            sse = float(((A @ beta - y) ** 2).sum())
            if sse < best[0]:
                best = (sse, bh, bc)
    return float(best[1]), float(best[2])
