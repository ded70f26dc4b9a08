"""Store maintenance: the shop-floor record tables rewritten in equipment order (``zhizao compact``).

DuckDB keeps a table's rows in the order they were inserted, in row groups of about 122,880 rows, and skips a row
group when its minimum and maximum show that no row can match a filter (zone maps). The KPI engine reads the
records of one partition of whole equipment at a time, by a range of equipment ids
(:mod:`zhizao.kpi.partitions`): in a store loaded from whole files, one per machine or plant, the rows are in
equipment order and each partition reads only its own row groups. A live listener, or one day's file per day,
appends the rows in time order instead: every row group then holds every machine, and every partition scans the
whole table. On the 1,000-machine year (15.9 M state records) the elements per equipment and day over the whole
range take 11.4 s instead of 4.2 s, and 4.0 s once compacted (``benchmarks/compact_store.py``; docs/scale.md).

:func:`compact` rewrites ``states`` and ``production`` grouped by equipment, each equipment's records in their
stored order, in one transaction: a failure leaves the tables as they were. The rows, their values and their
provenance columns are the same, and so is every equipment's sequence of records, which is all the engine reads
(it settles records sharing a millisecond in stored order, and sums counts in it), so every result is the same to
the last bit (``tests/test_compact.py``). A live store's records are in time order within each equipment already.

Run it when a live store has taken in a while of data (weekly, say); it holds the
store's write lock meanwhile: 23 s and 1.4 GiB for those 15.9 M state records and 11.1 M counts on the 2-core
development machine, DuckDB's sort held to three quarters of the memory budget (``Workspace.compact``).
Queries of a short range read a time-ordered store fast already (:class:`zhizao.kpi.elements.ReadWindow`).
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass

import duckdb

from zhizao.messages import Message, define
from zhizao.store.memory import lowered

#: The tables rewritten
TABLES = ("states", "production")
#: DuckDB's least memory limit for the sort [MiB] (it spills beyond it)
MIN_MEMORY_MB = 64

COMPACTED = define("store.compacted", "%(table)s: %(records)s records rewritten in equipment order in %(seconds)s s")


@dataclass(frozen=True)
class Compacted:
    """What :func:`compact` did to one table."""

    table: str
    records: int
    seconds: float

    def message(self) -> Message:
        return COMPACTED(table=self.table, records=f"{self.records:,}", seconds=f"{self.seconds:.1f}")


def compact(con: duckdb.DuckDBPyConnection, memory_mb: float | None = None) -> list[Compacted]:
    """Rewrite the record tables of the store on ``con`` in equipment order (see the module docstring).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A store opened for writing, outside a transaction.
    memory_mb : float, optional
        DuckDB's memory limit meanwhile [MiB] (the sort spills to disk beyond it; restored afterwards). Default:
        DuckDB's own (80 % of the machine's memory).

    Returns
    -------
    list of Compacted
        One per table, in the order of :data:`TABLES`.

    Notes
    -----
    The store must be this connection's alone meanwhile: DuckDB aborts another transaction of the process that
    writes to a table being replaced (the command line opens the store alone; a running server holds it, so stop
    it first, docs/deployment.md).

    Examples
    --------
    >>> con = duckdb.connect()
    >>> _ = con.execute("CREATE TABLE states (equipment_id TEXT, start TIMESTAMPTZ, _record BIGINT)")
    >>> _ = con.execute("CREATE TABLE production (equipment_id TEXT, start TIMESTAMPTZ, \\"end\\" TIMESTAMPTZ)")
    >>> _ = con.execute("INSERT INTO states VALUES ('M2', '2025-01-01', 1), ('M1', '2025-01-02', 2), "
    ...                 "('M1', '2025-01-01', 3)")
    >>> [c.records for c in compact(con)]
    [3, 0]
    >>> con.execute("SELECT equipment_id, _record FROM states").fetchall()
    [('M1', 2), ('M1', 3), ('M2', 1)]
    """
    out = []
    with lowered(con, max(MIN_MEMORY_MB, memory_mb), only_if_higher=False) if memory_mb else nullcontext():
        con.execute("BEGIN TRANSACTION")
        try:
            for table in TABLES:
                t = time.perf_counter()
                # the new table under a temporary name, each equipment's records in stored order; then it takes
                # the old one's place (the record tables have no constraints or indexes: the loader keeps keys)
                con.execute(f'CREATE TABLE "_zz_compact_{table}" AS SELECT * FROM "{table}" '
                            "ORDER BY equipment_id, rowid")
                n = con.execute(f'SELECT count(*) FROM "_zz_compact_{table}"').fetchall()[0][0]
                con.execute(f'DROP TABLE "{table}"')
                con.execute(f'ALTER TABLE "_zz_compact_{table}" RENAME TO "{table}"')
                out.append(Compacted(table, int(n), time.perf_counter() - t))
            con.execute("COMMIT")
        except BaseException:
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:  # the COMMIT itself failed: nothing is open; the original error counts
                pass
            raise
    try:
        con.execute("CHECKPOINT")  # the rewrite is committed: a checkpoint now only saves the log's replay
    except duckdb.Error:  # another transaction of this process is open: DuckDB checkpoints later
        pass
    return out

