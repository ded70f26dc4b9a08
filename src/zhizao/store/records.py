"""Named queries of the shop-floor record tables (states, production, energy, labour, quality, costs, variables,
development cycles, adjustments) that the stages after the KPI engine ask on their own: which entities have
data, how far the data reach, whether there are measurements to compute capability from, and the records a
verification reads (:class:`zhizao.verify.inputs.VerificationInputs`).

The KPI engine's own reads of these tables (its record streams, :mod:`zhizao.kpi.states`,
:mod:`zhizao.kpi.production`, :mod:`zhizao.kpi.partitions`) stay beside the kernel: they are its inner loop and
are shaped by it. What lives here is the SQL that several stages would otherwise each write.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import duckdb
import pandas as pd


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


def operating_extent(con: duckdb.DuckDBPyConnection, scope: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The first start and the last end (or start) of the operating state records of the equipment in ``scope``
    (an equipment, work centre, area, site or enterprise id); (None, None) without any."""
    a, b = con.execute("""SELECT min(start), max(coalesce("end", start)) FROM states s JOIN equipment e
                          USING (equipment_id) WHERE ? IN (e.equipment_id, e.work_center, e.area, e.site,
                          e.enterprise) AND s.category IS DISTINCT FROM 'not_scheduled'""", [scope]).fetchall()[0]
    return a, b


def variable_records(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every relevant-variable record: scope, name, s and e [ms] (a record without end lasts until the next
    record of its scope and name), value, level."""
    return con.execute("""
        SELECT scope, name, epoch_ms(start) s,
               epoch_ms(coalesce("end", lead(start) OVER (PARTITION BY scope, name ORDER BY start))) e,
               value, level
        FROM variables""").df()


def cost_records(con: duckdb.DuckDBPyConnection, scope: str | None = None) -> pd.DataFrame:
    """The cost records (of ``scope``; None: every scope, with a ``scope`` column): category, s and e [ms] of
    the booking period, amount."""
    if scope is None:
        return con.execute('SELECT scope, category, epoch_ms(start) s, epoch_ms("end") e, amount FROM costs').df()
    return con.execute('SELECT category, epoch_ms(start) s, epoch_ms("end") e, amount FROM costs WHERE scope = ?',
                       [scope]).df()


def production_with_hierarchy(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every production record with its equipment's hierarchy, by end: s (start, else end [ms]), t (end [ms]),
    equipment_id, product_id, n (produced), good, c (scrap + rework), pri (the product's planned run time on the
    equipment, else its general one [s]), work_center, area, site, enterprise."""
    return con.execute("""
        SELECT epoch_ms(coalesce(p.start, p."end")) s, epoch_ms(p."end") t, p.equipment_id, p.product_id,
               p.produced n,
               coalesce(p.good, p.produced - coalesce(p.scrap, 0) - coalesce(p.rework, 0)) good,
               coalesce(p.scrap, 0) + coalesce(p.rework, 0) c,
               coalesce(own.pri, gen.pri) pri,
               e.work_center, e.area, e.site, e.enterprise
        FROM production p JOIN equipment e USING (equipment_id)
        LEFT JOIN products own ON own.product_id = p.product_id AND own.equipment_id = p.equipment_id
        LEFT JOIN (SELECT product_id, min(pri) pri FROM products WHERE equipment_id IS NULL
                   GROUP BY product_id) gen ON gen.product_id = p.product_id
        ORDER BY t""").df()


def development_cycles(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every development cycle: enterprise_id, product_id, design_start, release, days (release - design start
    [d])."""
    return con.execute("""SELECT enterprise_id, product_id, design_start, release,
                                 date_diff('second', design_start, release) / 86400.0 AS days
                          FROM development_cycles""").df()


def products_on_equipment(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The products tied to an equipment (product_id, equipment_id) in the products table."""
    return con.execute("SELECT product_id, equipment_id FROM products WHERE equipment_id IS NOT NULL").df()


def adjustment_records(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every recorded non-routine adjustment: adjustment_id, scope, project_id, indicator, s and e [ms], amount,
    reason, recorded_by; by start."""
    return con.execute("""SELECT adjustment_id, scope, project_id, indicator, epoch_ms(start) s,
                                 epoch_ms("end") e, amount, reason, recorded_by
                          FROM adjustments ORDER BY start, adjustment_id""").df()


def measurements(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The measured values of quality records booked to an equipment: equipment_id, ts (UTC), characteristic,
    value, lsl, usl (what process capability is computed from, :mod:`zhizao.kpi.capability`)."""
    m = con.execute("""SELECT equipment_id, ts, characteristic, value, lsl, usl FROM quality
                       WHERE value IS NOT NULL AND equipment_id IS NOT NULL""").df()
    if not m.empty:
        m["ts"] = pd.to_datetime(m["ts"], utc=True)
    return m


def shifts_at(con: duckdb.DuckDBPyConnection, now: dt.datetime) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The earliest start and the latest end of the calendar's ``shift`` entries (of any scope) that contain
    ``now``; (None, None) without one."""
    lo, hi = con.execute("""SELECT min(start), max("end") FROM calendar
                            WHERE kind = 'shift' AND start <= ? AND "end" > ?""", [now, now]).fetchall()[0]
    return lo, hi
