"""Relevant variables (IPMVP / ISO 50006) per time bucket: temperatures, load classes, price indices.

A numeric variable becomes its time-weighted mean over the part of the bucket it covers; a categorical one
(column ``level``) becomes the share of the bucket's covered time spent at each level. Records with a start
and no end are point readings that hold until the next reading of the same variable and scope (like states).
Bucketing uses the same interval algebra as the elements (:mod:`zhizao.kpi.intervals`).
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from zhizao.kpi.buckets import bucket_edges
from zhizao.kpi.intervals import split_over


def scope_variables(con: duckdb.DuckDBPyConnection, scope: str) -> pd.DataFrame:
    """The variables booked to ``scope`` as intervals: columns name, s, e [ms], value, level.

    A reading without ``end`` holds until the next reading of the same variable (like a state)."""
    return con.execute("""
        SELECT name, epoch_ms(start) s,
               epoch_ms(coalesce("end", lead(start) OVER (PARTITION BY scope, name ORDER BY start))) e,
               value, level
        FROM variables WHERE scope = ?""", [scope]).df()


def variable_buckets(con: duckdb.DuckDBPyConnection, scope: str, period: str, start_ms: int, end_ms: int, tz: str,
                     records: pd.DataFrame | None = None) -> pd.DataFrame:
    """Relevant variables of ``scope`` per ``period`` bucket of ``[start, end)`` in zone ``tz``.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
    scope : str
        Scope id the variables are booked to (equipment, work_center, area, site or enterprise).
    period : {'hour', 'day', 'week', 'month', 'all'}
    start_ms, end_ms : int
        Range [ms since the epoch, UTC].
    tz : str
        IANA zone of the buckets.
    records : pandas.DataFrame, optional
        The output of :func:`scope_variables` when the caller has it already.

    Returns
    -------
    pandas.DataFrame
        Index ``period_start`` (UTC); one column per numeric variable (time-weighted mean, NaN where the
        bucket has no reading) and one column ``<name>=<level>`` per categorical level (share of covered time,
        0..1).
    """
    edges = bucket_edges(start_ms, end_ms, period, tz)
    idx = pd.to_datetime(edges[:-1], unit="ms", utc=True)
    v = scope_variables(con, scope) if records is None else records
    out = pd.DataFrame(index=idx)
    if v.empty:
        return out
    v = v.dropna(subset=["e"])
    nb = edges.size - 1
    for name, g in v.groupby("name", sort=True):
        s, e = g["s"].to_numpy(np.int64), g["e"].to_numpy(np.int64)
        rec, seg, frac = split_over(s, e, edges[:-1], edges[1:])
        covered = frac * (e - s)[rec]  # ms of the record inside the bucket
        t = np.bincount(seg, weights=covered, minlength=nb)
        if g["level"].notna().any():
            levels = g["level"].to_numpy(object)
            for lv in sorted(set(levels[pd.notna(levels)])):
                m = levels[rec] == lv
                share = np.bincount(seg[m], weights=covered[m], minlength=nb)
                with np.errstate(invalid="ignore", divide="ignore"):
                    out[f"{name}={lv}"] = np.where(t > 0, share / t, np.nan)
        else:
            val = g["value"].to_numpy(np.float64)
            w = np.bincount(seg, weights=covered * val[rec], minlength=nb)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[name] = np.where(t > 0, w / t, np.nan)
    return out


def interval_sums(start_ms: ArrayLike, end_ms: ArrayLike, values: ArrayLike, period: str, range_start_ms: int,
                  range_end_ms: int, tz: str) -> pd.Series:
    """Sum quantities booked over intervals (costs, ...) into ``period`` buckets, split in proportion to overlap.

    Parameters
    ----------
    start_ms, end_ms : array of int64, shape (n,)
        Interval bounds [ms since the epoch].
    values : array of float, shape (n,)
    period, range_start_ms, range_end_ms, tz :
        Buckets as in :func:`zhizao.kpi.buckets.bucket_edges`.

    Returns
    -------
    pandas.Series
        Index period_start (UTC), the summed values (0 where nothing is booked).
    """
    edges = bucket_edges(range_start_ms, range_end_ms, period, tz)
    rec, seg, frac = split_over(np.asarray(start_ms, np.int64), np.asarray(end_ms, np.int64), edges[:-1], edges[1:])
    sums = np.bincount(seg, weights=frac * np.asarray(values, float)[rec], minlength=edges.size - 1)
    return pd.Series(sums, index=pd.to_datetime(edges[:-1], unit="ms", utc=True))


def energy_by_level(con: duckdb.DuckDBPyConnection, scope_ids: list[str], name: str, start_ms: int, end_ms: int
                    ) -> pd.DataFrame:
    """Energy use split by the level of a categorical relevant variable (e.g. kWh per hour at each load class).

    Each energy interval of the scope's meters (booked to one of ``scope_ids`` or to equipment under them) is
    split over the variable's intervals in proportion to the overlap.

    Returns
    -------
    pandas.DataFrame
        Columns level, hours (time at the level covered by energy records [h]), kwh, kgce, kwh_per_hour.
    """
    from zhizao.kpi.energy import energy_intervals_sql

    ids = ", ".join("'" + s.replace("'", "''") + "'" for s in scope_ids)
    df = con.execute(f"""
        WITH e AS (
            SELECT i.* FROM ({energy_intervals_sql()}) i
            LEFT JOIN equipment q ON q.equipment_id = i.equipment_id
            WHERE coalesce(i.scope, '') IN ({ids}) OR i.equipment_id IN ({ids})
               OR q.work_center IN ({ids}) OR q.area IN ({ids}) OR q.site IN ({ids}) OR q.enterprise IN ({ids})
        ), v AS (
            SELECT level, start, coalesce("end", lead(start) OVER (PARTITION BY scope ORDER BY start)) AS "end"
            FROM variables WHERE name = ? AND scope IN ({ids}) AND level IS NOT NULL
        )
        SELECT v.level,
               sum(epoch(least(e."end", v."end") - greatest(e.start, v.start))) / 3600.0 AS hours,
               sum(e.kwh * epoch(least(e."end", v."end") - greatest(e.start, v.start))
                   / epoch(e."end" - e.start)) AS kwh,
               sum(e.kgce * epoch(least(e."end", v."end") - greatest(e.start, v.start))
                   / epoch(e."end" - e.start)) AS kgce
        FROM e JOIN v ON e.start < v."end" AND v.start < e."end"
        WHERE e.start >= make_timestamptz(? * 1000) AND e.start < make_timestamptz(? * 1000)
        GROUP BY v.level ORDER BY v.level""", [name, start_ms, end_ms]).df()
    df["kwh_per_hour"] = df["kwh"] / df["hours"]
    return df
