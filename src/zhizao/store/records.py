"""Named queries of the shop-floor record tables (states, production, energy, labour, quality, costs) that the
stages after the KPI engine ask on their own: which entities have data, how far the data reach, whether there
are measurements to compute capability from.

The KPI engine's own reads of these tables (its record streams, :mod:`zhizao.kpi.states`,
:mod:`zhizao.kpi.production`, :mod:`zhizao.kpi.partitions`) stay beside the kernel: they are its inner loop and
are shaped by it. What lives here is the SQL that several stages would otherwise each write.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import duckdb


def entities_with_records(con: duckdb.DuckDBPyConnection) -> tuple[set[str], set[str]]:
    """The ids that shop-floor records name: (equipment ids of states, production, quality and energy records,
    with the scopes that energy is booked to; the scopes of labour, cost and quality records booked to a
    scope).

    Examples
    --------
    >>> con = duckdb.connect()
    >>> for t in ("states", "production"):
    ...     _ = con.execute(f"CREATE TABLE {t} (equipment_id TEXT)")
    >>> _ = con.execute("CREATE TABLE energy (equipment_id TEXT, scope TEXT)")
    >>> _ = con.execute("CREATE TABLE quality (equipment_id TEXT, scope TEXT)")
    >>> for t in ("labour", "costs"):
    ...     _ = con.execute(f"CREATE TABLE {t} (scope TEXT)")
    >>> _ = con.execute("INSERT INTO states VALUES ('M1')")
    >>> _ = con.execute("INSERT INTO energy VALUES (NULL, 'S1')")
    >>> _ = con.execute("INSERT INTO labour VALUES ('W1')")
    >>> entities_with_records(con) == ({'M1', 'S1'}, {'W1'})
    True
    """
    booked = {e for (e,) in con.execute("""
        SELECT DISTINCT equipment_id FROM states UNION SELECT DISTINCT equipment_id FROM production
        UNION SELECT DISTINCT equipment_id FROM energy WHERE equipment_id IS NOT NULL
        UNION SELECT DISTINCT scope FROM energy WHERE scope IS NOT NULL
        UNION SELECT DISTINCT equipment_id FROM quality WHERE equipment_id IS NOT NULL""").fetchall()}
    scoped = {x for (x,) in con.execute("""
        SELECT DISTINCT scope FROM labour UNION SELECT DISTINCT scope FROM costs
        UNION SELECT DISTINCT scope FROM quality WHERE scope IS NOT NULL""").fetchall()}
    return booked, scoped


def latest_record_time(con: duckdb.DuckDBPyConnection) -> dt.datetime | None:
    """The latest time stamp of the states, production and energy records (a state's end, or its start when
    it has none); None without records."""
    last: dt.datetime | None
    (last,) = con.execute("""SELECT max(t) FROM (SELECT max(coalesce("end", start)) t FROM states
                             UNION ALL SELECT max("end") FROM production UNION ALL SELECT max("end") FROM energy)"""
                          ).fetchall()[0]
    return last


def operating_extents(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[dt.datetime, dt.datetime]]:
    """Per equipment, the first start and the last end (or start) of its operating state records (states other
    than ``not_scheduled``)."""
    rows = con.execute("""SELECT equipment_id, min(start), max(coalesce("end", start)) FROM states
                          WHERE category IS DISTINCT FROM 'not_scheduled' GROUP BY equipment_id""").fetchall()
    return {e: (a, b) for e, a, b in rows}


def has_measurements(con: duckdb.DuckDBPyConnection, within: Iterable[str] | None = None) -> bool:
    """Whether quality records hold measured values with an upper specification limit (what process capability
    needs, :mod:`zhizao.kpi.capability`), of the equipment or scopes ``within`` (None: any)."""
    ids = None if within is None else sorted(within)
    (n,) = con.execute("""SELECT count(*) FROM quality WHERE value IS NOT NULL AND usl IS NOT NULL
                          AND (? IS NULL OR list_contains(?, equipment_id) OR list_contains(?, scope))""",
                       [None if ids is None else 1, ids, ids]).fetchall()[0]
    return int(n) > 0
