"""Per-period data of one scope for verification: summed elements, relevant variables, calendar features."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pandas as pd

from zhizao.kpi.buckets import bucket_edges, floor_local
from zhizao.kpi.elements import _ms
from zhizao.kpi.variables import scope_variables, variable_buckets
from zhizao.schema import LEVEL_ID_COLUMN, LEVELS
from zhizao.errors import NotFound
from zhizao.messages import define

UNKNOWN_SCOPE = define("verify.unknown_scope", "scope '%(scope)s' is no equipment, work_center, area, site or "
                                               "enterprise id")

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
    key = ("scope_index",)
    index = ws._cache.get(key)
    if index is None:
        index = ws._cache[key] = _scope_index(ws)
    found = index.get(scope)
    if found is not None:
        return found
    raise NotFound(UNKNOWN_SCOPE, scope=str(scope))


def _scope_index(ws) -> dict:
    """Every scope id of the equipment table -> (level, [scope and its ancestors], tz), built in one pass.

    A scope id found at several levels counts at the lowest; the ancestors are those of its first equipment
    row, the zone the smallest name among its equipment (as a per-scope lookup would give)."""
    eq = ws.con.execute("SELECT equipment_id, work_center, area, site, enterprise, "
                        "coalesce(timezone, 'UTC') tz FROM equipment").df()
    out = {}
    for level in LEVELS:
        col = LEVEL_ID_COLUMN[level]
        up_cols = [LEVEL_ID_COLUMN[L] for L in LEVELS[LEVELS.index(level) + 1:]]
        sub = eq[eq[col].notna()]
        if sub.empty:
            continue
        g = sub.groupby(col, sort=False)
        first = g.head(1).set_index(col)
        tzmin = g["tz"].min()
        for sid, row in zip(first.index, first[up_cols].itertuples(index=False)):
            if sid in out:
                continue
            up = [sid] + list(row)
            out[sid] = level, [u for u in up if isinstance(u, str)], str(tzmin[sid])
    return out


def cached_variables(ws, scope: str) -> pd.DataFrame:
    """:func:`zhizao.kpi.variables.scope_variables` of ``scope``, cached in the workspace until the next ingest.

    After :func:`prepare` the records come from one query over all scopes."""
    key = ("variables", scope)
    found = ws._cache.get(key)
    if found is None:
        bulk = ws._cache.get(("variables_all",))
        if bulk is not None:
            found = bulk[0].get(scope, bulk[1])
        else:
            found = scope_variables(ws.con, scope)
        ws._cache[key] = found
    return found


def prepare(ws) -> None:
    """Read what per-scope verification needs from the store in bulk, into the workspace cache.

    One query loads the relevant-variable records of every scope (instead of one query per scope and
    ancestor); the same records as :func:`zhizao.kpi.variables.scope_variables` per scope. Used by
    :func:`zhizao.verify.project.verify_all_projects`; results do not change, only the number of queries.
    """
    if ("variables_all",) in ws._cache:
        return
    v = ws.con.execute("""
        SELECT scope, name, epoch_ms(start) s,
               epoch_ms(coalesce("end", lead(start) OVER (PARTITION BY scope, name ORDER BY start))) e,
               value, level
        FROM variables""").df()
    groups = {k: g.drop(columns="scope").reset_index(drop=True) for k, g in v.groupby("scope", sort=False)}
    ws._cache[("variables_all",)] = (groups, v.drop(columns="scope").iloc[:0])


def _scope_elements(ws, level: str, period: str) -> tuple[pd.DataFrame, dict]:
    """The store's elements at ``level`` per ``period`` and the row positions of each scope (built once)."""
    key = ("scope_elements", level, period)
    found = ws._cache.get(key)
    if found is None:
        el = ws.elements(level=level, period=period)
        col = LEVEL_ID_COLUMN[level]
        # indexed by period_start without the id and zone columns once for all scopes (a scope's rows are a slice)
        found = (el.set_index("period_start").drop(columns=[col, "tz"]), el.groupby(col, sort=False).indices)
        ws._cache[key] = found
    return found


def scope_series(ws, scope: str, period: str, start, end, drivers_only: bool = False) -> pd.DataFrame:
    """Elements of ``scope`` and its relevant variables per ``period`` bucket over ``[start, end)``.

    Variables booked to the scope or to any of its ancestors count (the nearest wins per name): a site's
    outdoor temperature serves its work centres. With ``drivers_only`` only the variables that the
    adjusted-baseline models use as drivers are bucketed (``temperature_c`` and categorical variables;
    price indices are read per month by the cost indicator itself).

    Returns
    -------
    pandas.DataFrame
        Index period_start (UTC); columns: every element, ``hours`` (bucket length [h]), ``weekday`` (0 =
        Monday, local), ``hour`` (local hour), ``how`` (hour of week), and the variables of
        :func:`zhizao.kpi.variables.variable_buckets`.
    """
    level, chain, tz = scope_info(ws, scope)
    a, b = _ms(start), _ms(end)
    edges = cached_edges(ws, a, b, period, tz)
    idx = pd.DatetimeIndex(pd.to_datetime(edges[:-1], unit="ms", utc=True), name="period_start")
    aligned = period != "all" and all(
        floor_local(pd.Timestamp(t * 1_000_000, tz="UTC"), period, tz).value // 1_000_000 == t for t in (a, b))
    if aligned:
        # whole buckets: slice the scope's series over the whole data range (built once per store, scope and
        # period); elements do not depend on the query range, so this equals a computation over [start, end)
        key = ("scope_series", scope, period) + (("drivers",) if drivers_only else ())
        if key not in ws._cache:
            ws._cache[key] = _features(_frame(ws, scope, level, chain, tz, period, None, None, drivers_only), tz)
        df = ws._cache[key].reindex(idx)
        if df["hours"].isna().any():  # buckets outside the data range
            df["period_end"] = pd.to_datetime(edges[1:], unit="ms", utc=True)
            df = _features(df, tz)
        return df
    df = _frame(ws, scope, level, chain, tz, period, start, end, drivers_only).reindex(idx)
    df["period_end"] = pd.to_datetime(edges[1:], unit="ms", utc=True)
    return _features(df, tz)


WINDOWS_KEPT = 8  #: windows of :func:`cached_series` kept per workspace


def cached_edges(ws, start_ms: int, end_ms: int, period: str, tz: str) -> np.ndarray:
    """:func:`zhizao.kpi.buckets.bucket_edges`, kept for the last few arguments (a project's indicators ask for
    the same windows' edges several times). Treat the array as read-only."""
    key = (start_ms, end_ms, period, tz)
    kept = ws._cache.get(("edges",))
    if kept is None:
        kept = ws._cache[("edges",)] = OrderedDict()
    found = kept.get(key)
    if found is None:
        found = kept[key] = bucket_edges(start_ms, end_ms, period, tz)
        while len(kept) > 4 * WINDOWS_KEPT:
            kept.popitem(last=False)
    return found


def cached_series(ws, scope: str, period: str, start, end) -> pd.DataFrame:
    """:func:`scope_series`, kept for the last :data:`WINDOWS_KEPT` (scope, period, window) combinations.

    The indicators of one project share two windows at two periods, so each series is built once per project
    instead of once per indicator. The frame is shared: treat it as read-only. It carries the driver
    variables only (``drivers_only=True``).
    """
    key = (scope, period, _ms(start), _ms(end))
    kept = ws._cache.get(("series_windows",))
    if kept is None:
        kept = ws._cache[("series_windows",)] = OrderedDict()
    df = kept.get(key)
    if df is None:
        df = kept[key] = scope_series(ws, scope, period, start, end, drivers_only=True)
        while len(kept) > WINDOWS_KEPT:
            kept.popitem(last=False)
    else:
        kept.move_to_end(key)
    return df


def monthly_output(ws, scope: str, start, end) -> pd.DataFrame:
    """Good output ``gq`` [units] of ``scope`` per local calendar month of ``[start, end)``.

    For a window of whole months inside the scope's daily data range the months are summed from the scope's
    daily series (the one the other indicators use: days nest in months in the scope's zone, and the good
    quantity is additive), so the store's elements are computed at one period only; otherwise
    :func:`scope_series` at period ``month``.

    Returns
    -------
    pandas.DataFrame
        Index period_start (UTC, the months' local starts); column ``gq`` (NaN for a month without any
        production record, as the monthly elements give).
    """
    _level, _chain, tz = scope_info(ws, scope)
    a, b = _ms(start), _ms(end)
    aligned = all(floor_local(pd.Timestamp(t * 1_000_000, tz="UTC"), "month", tz).value // 1_000_000 == t
                  for t in (a, b))
    if aligned:
        day = cached_series(ws, scope, "day", start, end)
        full = ws._cache.get(("scope_series", scope, "day", "drivers"))  # the scope's days over its data range
        aligned = (full is not None and len(full) > 0 and _ms(full.index[0]) <= a
                   and _ms(full["period_end"].iloc[-1]) >= b)
    if not aligned:  # (also when the window reaches beyond the daily data range, whose edges may differ)
        return cached_series(ws, scope, "month", start, end)
    edges = cached_edges(ws, a, b, "month", tz)
    month = np.searchsorted(edges, day.index.as_unit("ms").asi8, side="right") - 1
    gq = day["gq"].to_numpy(float) if "gq" in day else np.full(len(day), np.nan)
    has = np.bincount(month, ~np.isnan(gq), edges.size - 1) > 0
    sums = np.bincount(month, np.nan_to_num(gq), edges.size - 1)
    idx = pd.DatetimeIndex(pd.to_datetime(edges[:-1], unit="ms", utc=True), name="period_start")
    return pd.DataFrame({"gq": np.where(has, sums, np.nan)}, index=idx)


def _driver_variables(ws, sid: str) -> pd.DataFrame:
    """The variable records of ``sid`` that can be drivers: ``temperature_c`` and categorical variables."""
    key = ("driver_variables", sid)
    found = ws._cache.get(key)
    if found is None:
        rec = cached_variables(ws, sid)
        if not rec.empty:
            cat = set(rec.loc[rec["level"].notna(), "name"])
            rec = rec[(rec["name"] == "temperature_c") | rec["name"].isin(cat)]
        found = ws._cache[key] = rec
    return found


def _frame(ws, scope, level, chain, tz, period, start, end, drivers_only=False) -> pd.DataFrame:
    col = LEVEL_ID_COLUMN[level]
    if start is None and end is None:
        full, pos = _scope_elements(ws, level, period)
        el = full.iloc[pos[scope]] if scope in pos else full.iloc[:0]
    else:
        el = ws.elements(level=level, period=period, start=start, end=end)
        el = el[el[col] == scope].set_index("period_start").drop(columns=[col, "tz"])
    if el.empty:
        return el
    records = [_driver_variables(ws, sid) if drivers_only else cached_variables(ws, sid) for sid in chain]
    if all(rec.empty for rec in records):
        return el  # no variables anywhere up the chain: nothing to join
    a, b = _ms(el.index.min()), _ms(el["period_end"].max())
    vs = None
    for sid, rec in zip(chain, records):
        if rec.empty and vs is not None:
            continue  # no variables: an empty frame on the same buckets, nothing to combine
        v = variable_buckets(ws.con, sid, period, a, b, tz, records=rec)
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
