"""Per-period data of one scope for verification: summed elements, relevant variables, calendar features."""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from zhizao.kpi.buckets import floor_local, utc_ms
from zhizao.kpi.variables import variable_buckets
from zhizao.schema import LEVEL_ID_COLUMN
from zhizao.verify.inputs import WINDOWS_KEPT, Instant, VerificationInputs, as_inputs

if TYPE_CHECKING:
    from zhizao.api import Workspace

#: Degree-day base temperatures searched [deg C] (CalTRACK searches balance points the same way).
HEATING_BASES = np.arange(8.0, 21.0, 1.0)
COOLING_BASES = np.arange(14.0, 27.0, 1.0)


def scope_info(inputs: VerificationInputs | Workspace, scope: str) -> tuple[str, list[str], str]:
    """The ISA-95 level of ``scope``, the ids of the scope and its ancestors, and its time zone.

    Raises
    ------
    zhizao.errors.NotFound
        If ``scope`` is no equipment, work_center, area, site or enterprise id.
    """
    info = as_inputs(inputs).scope(scope)
    return info.level, list(info.chain), info.tz


def scope_series(inputs: VerificationInputs | Workspace, scope: str, period: str, start: Instant, end: Instant,
                 drivers_only: bool = False) -> pd.DataFrame:
    """Elements of ``scope`` and its relevant variables per ``period`` bucket over ``[start, end)``.

    Variables booked to the scope or to any of its ancestors count (the nearest wins per name): a site's
    outdoor temperature serves its work centres. With ``drivers_only`` only the variables that the
    adjusted-baseline models use as drivers are bucketed (``temperature_c`` and categorical variables;
    price indices are read per month by the cost indicator itself).

    Parameters
    ----------
    inputs : VerificationInputs or zhizao.Workspace

    Returns
    -------
    pandas.DataFrame
        Index period_start (UTC); columns: every element, ``hours`` (bucket length [h]), ``weekday`` (0 =
        Monday, local), ``hour`` (local hour), ``how`` (hour of week), and the variables of
        :func:`zhizao.kpi.variables.variable_buckets`.
    """
    inputs = as_inputs(inputs)
    level, chain, tz = scope_info(inputs, scope)
    a, b = utc_ms(start), utc_ms(end)
    edges = inputs.edges(a, b, period, tz)
    idx = pd.DatetimeIndex(pd.to_datetime(edges[:-1], unit="ms", utc=True), name="period_start")
    aligned = period != "all" and all(
        floor_local(pd.Timestamp(t * 1_000_000, tz="UTC"), period, tz).value // 1_000_000 == t for t in (a, b))
    if aligned:
        # whole buckets: slice the scope's series over the whole data range (built once per scope and period);
        # elements do not depend on the query range, so this equals a computation over [start, end)
        key = ("scope_series", scope, period) + (("drivers",) if drivers_only else ())
        full = inputs.memo(key, lambda: _features(_frame(inputs, scope, level, chain, tz, period, None, None,
                                                         drivers_only), tz))
        df = full.reindex(idx)
        if df["hours"].isna().any():  # buckets outside the data range
            df["period_end"] = pd.to_datetime(edges[1:], unit="ms", utc=True)
            df = _features(df, tz)
        return df
    df = _frame(inputs, scope, level, chain, tz, period, start, end, drivers_only).reindex(idx)
    df["period_end"] = pd.to_datetime(edges[1:], unit="ms", utc=True)
    return _features(df, tz)


def cached_series(inputs: VerificationInputs | Workspace, scope: str, period: str, start: Instant, end: Instant
                  ) -> pd.DataFrame:
    """:func:`scope_series` (driver variables only), kept for the last few (scope, period, window)
    combinations of ``inputs``: a project's indicators share two windows at two periods. The frame is shared:
    treat it as read-only."""
    inputs = as_inputs(inputs)
    key = (scope, period, utc_ms(start), utc_ms(end))
    kept: OrderedDict[tuple[str, str, int, int], pd.DataFrame] = inputs.kept("series_windows")
    df = kept.get(key)
    if df is None:
        df = kept[key] = scope_series(inputs, scope, period, start, end, drivers_only=True)
        while len(kept) > WINDOWS_KEPT:
            kept.popitem(last=False)
    else:
        kept.move_to_end(key)
    return df


def monthly_output(inputs: VerificationInputs | Workspace, scope: str, start: Instant, end: Instant
                   ) -> pd.DataFrame:
    """Good output ``gq`` [units] of ``scope`` per local calendar month of ``[start, end)``.

    For a window of whole months inside the scope's daily data range the months are summed from the scope's
    daily series (the one the other indicators use: days nest in months in the scope's zone, and the good
    quantity is additive), so the store's elements are computed at one period only; otherwise
    :func:`scope_series` at period ``month``.

    Returns
    -------
    pandas.DataFrame
        Index period_start (UTC, the months' local starts); column ``gq`` (NaN for a month without any
        production record, as the monthly elements give) and ``days`` (days of the month with a
        production record).
    """
    inputs = as_inputs(inputs)
    _level, _chain, tz = scope_info(inputs, scope)
    a, b = utc_ms(start), utc_ms(end)
    aligned = all(floor_local(pd.Timestamp(t * 1_000_000, tz="UTC"), "month", tz).value // 1_000_000 == t
                  for t in (a, b))
    if aligned:
        day = cached_series(inputs, scope, "day", start, end)
        # the scope's whole daily series if scope_series built it (None otherwise)
        full: pd.DataFrame | None = inputs.memo(("scope_series", scope, "day", "drivers"), lambda: None)
        aligned = (full is not None and len(full) > 0 and utc_ms(full.index[0]) <= a
                   and utc_ms(full["period_end"].iloc[-1]) >= b)
    if not aligned:  # (also when the window reaches beyond the daily data range, whose edges may differ)
        return cached_series(inputs, scope, "month", start, end)
    edges = inputs.edges(a, b, "month", tz)
    month = np.searchsorted(edges, day.index.as_unit("ms").asi8, side="right") - 1
    gq = day["gq"].to_numpy(float) if "gq" in day else np.full(len(day), np.nan)
    has = np.bincount(month, ~np.isnan(gq), edges.size - 1) > 0
    sums = np.bincount(month, np.nan_to_num(gq), edges.size - 1)
    idx = pd.DatetimeIndex(pd.to_datetime(edges[:-1], unit="ms", utc=True), name="period_start")
    return pd.DataFrame({"gq": np.where(has, sums, np.nan)}, index=idx)


def _frame(inputs: VerificationInputs, scope: str, level: str, chain: list[str], tz: str, period: str,
           start: Instant | None, end: Instant | None, drivers_only: bool = False) -> pd.DataFrame:
    col = LEVEL_ID_COLUMN[level]
    if start is None and end is None:
        full, pos = inputs.scope_elements(level, period)
        el = full.iloc[pos[scope]] if scope in pos else full.iloc[:0]
    else:
        el = inputs.ws.elements(level=level, period=period, start=start, end=end)
        el = el[el[col] == scope].set_index("period_start").drop(columns=[col, "tz"])
    if el.empty:
        return el
    records = [inputs.driver_variables(sid) if drivers_only else inputs.variables(sid) for sid in chain]
    if all(rec.empty for rec in records):
        return el  # no variables anywhere up the chain: nothing to join
    a, b = utc_ms(el.index.min()), utc_ms(el["period_end"].max())
    vs = None
    for sid, rec in zip(chain, records):
        if rec.empty and vs is not None:
            continue  # no variables: an empty frame on the same buckets, nothing to combine
        v = variable_buckets(inputs.con, sid, period, a, b, tz, records=rec)
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
