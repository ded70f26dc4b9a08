"""Roll-up of elements to an ISA-95 level: sums, never averages of KPIs.

A group's KPI is computed from the sums of its members' elements (reference/iso22400.md, "Roll-up"): two
machines at OEE 0.80 (PBT 100) and 0.45 (PBT 300) make a line at 0.5375, not 0.625.
"""

from __future__ import annotations

import pandas as pd

from zhizao.kpi.elements import ELEMENTS
from zhizao.errors import InputError
from zhizao.messages import define
from zhizao.schema import LEVEL_ID_COLUMN, LEVELS

UNKNOWN_LEVEL = define("kpi.unknown_level", "unknown level '%(level)s'; one of %(known)s")


def rollup(elements: pd.DataFrame, level: str = "equipment", period: str | None = None) -> pd.DataFrame:
    """Sum elements to ``level`` per period.

    Parameters
    ----------
    elements : pandas.DataFrame
        Output of :func:`zhizao.kpi.elements.compute_elements` (``.elements``).
    level : {'equipment', 'work_center', 'area', 'site', 'enterprise'}
    period : str, optional
        The elements' period; for ``'all'`` a group has one row whatever its members' ranges (from the
        earliest start to the latest end of its members' ranges).

    Returns
    -------
    pandas.DataFrame
        Columns: the level's id column (``equipment_id``, ``work_center``, ...), ``tz``, ``period_start``,
        ``period_end``, ``n_equipment``, ``no_calendar`` (any member without calendar), ``no_data`` (any member
        without state or production records) and every element, summed; an element is null when no member
        has data of that kind. One row per entity and period: members bucketed in different zones (see
        ``zone_level`` of :func:`zhizao.kpi.elements.compute_elements`) are rows of different periods. Rows whose member has no id at this level
        are left out; labour, energy and quality booked to a scope count from that scope's level up.

    Raises
    ------
    ValueError
        For an unknown level.
    """
    if level not in LEVELS:
        raise InputError(UNKNOWN_LEVEL, level=level, known=list(LEVELS))
    col = LEVEL_ID_COLUMN[level]
    if level == "equipment":
        df = elements[elements["level"] == "equipment"]
    else:
        df = elements[elements[col].notna()]
    keys = [col, "tz", "period_start", "period_end"]
    if df.empty:
        return pd.DataFrame(columns=keys + ["n_equipment", "no_calendar", "no_data", *ELEMENTS])
    index = pd.MultiIndex.from_frame(df[keys]) if level == "equipment" else None
    if index is not None and index.is_unique:
        # one row per equipment and bucket already: the sums are the rows themselves (the engine's rows come
        # in this order already)
        out = (df if index.is_monotonic_increasing else df.sort_values(keys, kind="stable")).reset_index(drop=True)
        out.insert(len(keys), "n_equipment", 1)
        return out[keys + ["n_equipment", "no_calendar", "no_data", *ELEMENTS]]
    if period == "all":
        df = df.assign(period_start=df.groupby(col)["period_start"].transform("min"),
                       period_end=df.groupby(col)["period_end"].transform("max"))
    # one row per entity and period: the zone is not a key (a group's members share its bucket zone)
    g = df.groupby([col, "period_start", "period_end"], sort=True, dropna=False)
    out = g[list(ELEMENTS)].sum(min_count=1)
    out["tz"] = g["tz"].first()
    out["n_equipment"] = g["equipment_id"].nunique()
    out["no_calendar"] = g["no_calendar"].any()
    out["no_data"] = g["no_data"].any()
    out = out.reset_index()
    return out[keys + ["n_equipment", "no_calendar", "no_data", *ELEMENTS]]
