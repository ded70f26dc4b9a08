"""The data-quality table: implausible or incomplete data, flagged, never corrected.

Every report shows it. A check fires on a row of (rolled-up) elements and KPIs; values are never capped or
rounded to hide a problem (docs/reference/iso22400.md, "Where other systems go wrong").
"""

from __future__ import annotations

import pandas as pd

#: check name -> (description, column holding the figure)
CHECKS = {
    "performance_above_100": ("effectiveness above 1: ideal cycle time (pri) set too long or counts too high",
                              "effectiveness"),
    "overlapping_states": ("seconds covered by more than one state record (counted once)", "overlap"),
    "unaccounted_time": ("seconds of planned busy time without any state record", "unaccounted"),
    "states_outside_calendar": ("seconds of production, setup or stops outside planned busy time",
                                "outside_pbt"),
    "counter_resets": ("energy register resets, rollovers or implausible jumps", "counter_resets"),
    "missing_pri": ("units produced whose product has no pri (ideal time unknown)", "pq_no_pri"),
    "no_calendar": ("no calendar: the equipment is taken as scheduled around the clock", "no_calendar"),
    "no_data": ("no data: equipment without any state or production record", "no_data"),
    "counter_outage": ("seconds of production time without any count record (counter outage)", "counts_missing"),
    "meter_outage": ("seconds of production time without any energy record (meter outage)", "energy_missing"),
}


def data_quality(rows: pd.DataFrame, id_column: str) -> pd.DataFrame:
    """One row per (entity, period, check) that fired.

    Parameters
    ----------
    rows : pandas.DataFrame
        Rolled-up elements joined with their KPIs (columns of :func:`zhizao.kpi.rollup.rollup` plus
        ``effectiveness``).
    id_column : str
        The level's id column (``equipment_id``, ``work_center``, ...).

    Returns
    -------
    pandas.DataFrame
        Columns: id_column, tz, period_start, period_end, check, value, description.
    """
    frames = []
    for check, (desc, col) in CHECKS.items():
        if col not in rows:
            continue
        v = rows[col]
        if check in ("no_calendar", "no_data"):
            hit = v.fillna(False).astype(bool)
            value = hit.astype(float)
        elif check == "performance_above_100":
            hit = v > 1
            value = v
        else:
            hit = v.fillna(0) > 0
            value = v
        if hit.any():
            f = rows.loc[hit, [id_column, "tz", "period_start", "period_end"]].copy()
            f["check"] = check
            f["value"] = value[hit].astype(float)
            f["description"] = desc
            frames.append(f)
    if not frames:
        return pd.DataFrame(columns=[id_column, "tz", "period_start", "period_end", "check", "value", "description"])
    return pd.concat(frames, ignore_index=True).sort_values([id_column, "period_start", "check"],
                                                            ignore_index=True)
