"""The data-quality table: implausible or incomplete data, flagged, never corrected.

Every report shows it. A check fires on a row of (rolled-up) elements and KPIs; values are never capped or
rounded to hide a problem (docs/reference/iso22400.md, "Where other systems go wrong"). The flags the loaders
put on single stored records (the store's ``record_flags`` table, e.g. ``ambiguous_local_time``) are checks
too: per entity and period, how many flagged time stamps concern it (:data:`RECORD_FLAGS`,
:func:`flag_entities`).
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

#: flag of the store's ``record_flags`` table -> description (the check of the same name counts the flagged
#: time stamps of an entity in a period)
RECORD_FLAGS = {
    "ambiguous_local_time": "naive local times in a repeated daylight-saving hour, read as the earlier instant",
    "ambiguous_time_zone": "naive times of records booked to a scope whose equipment lie in several time zones, "
                           "read in the zone first by name",
}


def flag_entities(flags: pd.DataFrame, equipment: pd.DataFrame, id_column: str) -> pd.DataFrame:
    """The entities of a level that each flagged time stamp concerns.

    A flagged record concerns the entity it is booked to (its ``equipment_id``, else its ``scope``), every
    entity above it and every entity below it: a calendar entry booked to a work centre is part of the
    calendar of each of its machines, and of its area, site and enterprise. Each time stamp counts once per
    entity.

    Parameters
    ----------
    flags : pandas.DataFrame
        Rows of ``record_flags``: ``table``, ``_source``, ``_record``, ``flag``, ``column``, ``entity`` and
        ``ts`` (the instant stored).
    equipment : pandas.DataFrame
        The equipment table: ``equipment_id``, ``work_center``, ``area``, ``site``, ``enterprise``.
    id_column : str
        The level's id column (``equipment_id``, ``work_center``, ...).

    Returns
    -------
    pandas.DataFrame
        Columns: id_column, ``flag``, ``ts``; one row per flagged time stamp and entity it concerns.

    Examples
    --------
    >>> import pandas as pd
    >>> eq = pd.DataFrame({"equipment_id": ["M1", "M2", "M3"], "work_center": ["W", "W", "V"],
    ...                    "area": None, "site": "S", "enterprise": None})
    >>> fl = pd.DataFrame({"table": ["calendar"], "_source": ["c.csv"], "_record": [1], "column": ["start"],
    ...                    "flag": ["ambiguous_local_time"], "entity": ["W"],
    ...                    "ts": [pd.Timestamp("2024-10-27T00:30Z")]})
    >>> flag_entities(fl, eq, "equipment_id")["equipment_id"].tolist()
    ['M1', 'M2']
    >>> flag_entities(fl, eq, "site")["site"].tolist()
    ['S']
    """
    hierarchy = [c for c in ("equipment_id", "work_center", "area", "site", "enterprise") if c in equipment]
    cols = [id_column, "flag", "ts"]
    if flags.empty or equipment.empty:
        return pd.DataFrame(columns=cols)
    # every (hierarchy id, entity of the level) pair: the level's entities above, at and below each id
    pairs = pd.concat([equipment[[h, id_column]].set_axis(["entity", id_column], axis=1) for h in hierarchy],
                      ignore_index=True).dropna().drop_duplicates()
    key = ["table", "_source", "_record", "column", "flag"]
    out = flags.merge(pairs, on="entity")
    out = out.drop_duplicates(key + [id_column])
    return out[cols].reset_index(drop=True)


def record_flag_rows(flags: pd.DataFrame, rows: pd.DataFrame, id_column: str) -> pd.DataFrame:
    """The data-quality rows of record flags: per row of ``rows`` (an entity and period) and flag, how many
    flagged time stamps of :func:`flag_entities` lie in ``[period_start, period_end)``; only counts above 0.

    Columns: id_column, tz, period_start, period_end, check, value, description."""
    cols = [id_column, "tz", "period_start", "period_end", "check", "value", "description"]
    if flags.empty or rows.empty:
        return pd.DataFrame(columns=cols)
    r = rows[[id_column, "tz", "period_start", "period_end"]]
    m = r.merge(flags, on=id_column)
    ts = pd.to_datetime(m["ts"], utc=True)
    inside = (ts >= pd.to_datetime(m["period_start"], utc=True)) & (ts < pd.to_datetime(m["period_end"], utc=True))
    m = m[inside.to_numpy()]
    if m.empty:
        return pd.DataFrame(columns=cols)
    g = m.groupby([id_column, "tz", "period_start", "period_end", "flag"], sort=False, dropna=False).size()
    out = g.rename("value").reset_index().rename(columns={"flag": "check"})
    out["value"] = out["value"].astype(float)
    out["description"] = out["check"].map(RECORD_FLAGS).fillna(out["check"])
    return out[cols]


def data_quality(rows: pd.DataFrame, id_column: str, flags: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (entity, period, check) that fired.

    Parameters
    ----------
    rows : pandas.DataFrame
        Rolled-up elements joined with their KPIs (columns of :func:`zhizao.kpi.rollup.rollup` plus
        ``effectiveness``).
    id_column : str
        The level's id column (``equipment_id``, ``work_center``, ...).
    flags : pandas.DataFrame, optional
        Flagged time stamps per entity of the level (:func:`flag_entities`): a check per flag
        (:data:`RECORD_FLAGS`) whose value is the number of them in the row's period.

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
    if flags is not None:
        f = record_flag_rows(flags, rows, id_column)
        if len(f):
            frames.append(f)
    if not frames:
        return pd.DataFrame(columns=[id_column, "tz", "period_start", "period_end", "check", "value", "description"])
    return pd.concat(frames, ignore_index=True).sort_values([id_column, "period_start", "check"],
                                                            ignore_index=True)
