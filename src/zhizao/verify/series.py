"""Per-period data of one scope for verification: summed elements, relevant variables, calendar features."""

from __future__ import annotations

import numpy as np
import pandas as pd

from zhizao.kpi.elements import _ms
from zhizao.kpi.variables import variable_buckets
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
    eq = ws.con.execute("SELECT equipment_id, work_center, area, site, enterprise, coalesce(timezone, 'UTC') tz "
                        "FROM equipment").df()
    for level in LEVELS:
        col = LEVEL_ID_COLUMN[level]
        m = eq[eq[col] == scope]
        if len(m):
            up = [scope] + [m[LEVEL_ID_COLUMN[L]].iloc[0] for L in LEVELS[LEVELS.index(level) + 1:]]
            return level, [u for u in up if isinstance(u, str)], str(m["tz"].min())
    raise ValueError(f"scope {scope!r} is no equipment, work_center, area, site or enterprise id")


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
    col = LEVEL_ID_COLUMN[level]
    el = ws.elements(level=level, period=period, start=start, end=end)
    el = el[el[col] == scope].set_index("period_start").drop(columns=[col, "tz"])
    vs = None
    for sid in chain:
        v = variable_buckets(ws.con, sid, period, _ms(start), _ms(end), tz)
        vs = v if vs is None else vs.combine_first(v) if not v.empty else vs
    df = el.join(vs, how="left") if vs is not None and not vs.empty else el
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
    for bh in HEATING_BASES:
        h = degree_days(temp_c, bh, "hdd", hours).to_numpy(float)
        for bc in COOLING_BASES:
            if bc < bh:
                continue
            c = degree_days(temp_c, bc, "cdd", hours).to_numpy(float)
            A = np.column_stack(base_cols + [h, c])
            beta, *_ = np.linalg.lstsq(A, y, rcond=None)
            sse = float(((A @ beta - y) ** 2).sum())
            if sse < best[0]:
                best = (sse, bh, bc)
    return float(best[1]), float(best[2])
