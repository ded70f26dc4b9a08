"""The embedded store: one DuckDB database file holding the canonical tables, the quarantine and a load log.

Every canonical table gets three provenance columns, ``_source`` (file name), ``_record`` (1-based record
number in that file) and ``_occurrence`` (for an event, a record its key does not name: the k-th identical
one in its source, see :mod:`zhizao.ingest.load`; 1 otherwise). Timestamps are ``TIMESTAMPTZ`` and the
session time zone is pinned to UTC, so that nothing depends on the machine's local zone.

Beside the canonical tables:

- ``quarantine``: every rejected record with its table, source, record and line number, ``rule`` (the
  rule's name), ``code`` and ``params`` (the detail as a structured message, rendered in any language by
  :func:`zhizao.ingest.rules.detail_message`), ``detail`` (the same in English) and ``raw`` values;
- ``record_flags``: flags of stored records that the data-quality table reports. One row per flag:
  ``"table"``, ``_source`` and ``_record`` (the stored record), ``flag``, ``"column"``, ``entity`` (its
  equipment_id, else scope), ``ts`` (the instant stored) and ``raw`` (the value as given). Flags written by
  the loaders: ``ambiguous_local_time`` (a naive local time in a repeated hour, stored as the earlier of its
  two instants), ``ambiguous_time_zone`` (a naive time of an energy, labour, quality or variable record booked
  to a scope whose equipment lie in several zones, read in the zone first by name);
- ``loads`` (the file log), ``verifications`` (stored verification results), ``meta`` (store housekeeping).

Opening a store that holds time stamps outside the plausible range, or NaN and infinite numbers (loaded by an
older version, before :mod:`zhizao.limits` existed), moves those records to the quarantine (rules
``time_out_of_range``, ``not_finite``), once per range (:func:`quarantine_implausible`): one such record must
not break the engine, or silently drop a total, for every tenant.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from zhizao.errors import NotFound, StoreBusy
from zhizao.messages import define
from zhizao.schema import SQL_TYPES, TABLES

if TYPE_CHECKING:  # zhizao.limits is imported where it is used
    from zhizao.limits import Limits

STORE_BUSY = define("store.busy", "the store %(path)s is in use by another process (PID %(pid)s); stop it, or, "
                                  "if it is a zhizao server, go through its API")
NO_STORE = define("store.missing", "no store at %(path)s; load data with 'zhizao ingest' first")

QUARANTINE_DDL = """
CREATE TABLE IF NOT EXISTS quarantine (
    "table" VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    record BIGINT,
    line BIGINT,
    rule VARCHAR NOT NULL,
    detail VARCHAR,
    raw JSON,
    loaded_at TIMESTAMPTZ DEFAULT current_timestamp,
    code VARCHAR,
    params JSON
)"""

RECORD_FLAGS_DDL = """
CREATE TABLE IF NOT EXISTS record_flags (
    "table" VARCHAR NOT NULL,
    _source VARCHAR,
    _record BIGINT,
    flag VARCHAR NOT NULL,
    "column" VARCHAR,
    entity VARCHAR,
    ts TIMESTAMPTZ,
    raw VARCHAR
)"""

META_DDL = "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)"

#: columns added to tables of stores created by older versions: (table or None for every canonical table, DDL)
_MIGRATIONS = (
    ("quarantine", "ADD COLUMN IF NOT EXISTS code VARCHAR"),
    ("quarantine", "ADD COLUMN IF NOT EXISTS params JSON"),
    (None, "ADD COLUMN IF NOT EXISTS _occurrence INTEGER"),
)

LOADS_DDL = """
CREATE TABLE IF NOT EXISTS loads (
    "table" VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,
    mapping_sha256 VARCHAR,
    loaded INTEGER,
    quarantined INTEGER,
    skipped INTEGER,
    loaded_at TIMESTAMPTZ DEFAULT current_timestamp,
    provenance VARCHAR
)"""


VERIFICATIONS_DDL = """
CREATE TABLE IF NOT EXISTS verifications (
    project_id VARCHAR,
    indicator VARCHAR NOT NULL,
    scope VARCHAR,
    result JSON NOT NULL,
    computed_at TIMESTAMPTZ DEFAULT current_timestamp
)"""


def table_ddl(name: str) -> str:
    """``CREATE TABLE IF NOT EXISTS`` statement of canonical table ``name`` (with provenance columns)."""
    t = TABLES[name]
    cols = [f'"{c.name}" {SQL_TYPES[c.type]}' for c in t.columns]
    cols += ["_source VARCHAR", "_record BIGINT", "_occurrence INTEGER"]
    return f'CREATE TABLE IF NOT EXISTS "{name}" ({", ".join(cols)})'


def open_db(path: str | Path = "zhizao.duckdb", read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open (and if needed create) a zhizao store.

    Parameters
    ----------
    path : str or Path
        Database file; ``":memory:"`` for an in-memory store.
    read_only : bool
        Open without write access (the file must exist).

    Returns
    -------
    duckdb.DuckDBPyConnection
        With ``TimeZone = 'UTC'`` and every canonical table, ``quarantine`` and ``loads`` present.

    Raises
    ------
    zhizao.errors.StoreBusy
        If another process holds the store (DuckDB allows one writing process per file).
    zhizao.errors.NotFound
        If ``read_only`` and there is no store at ``path``.
    """
    path = str(path)
    if path != ":memory:" and not read_only:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    if read_only and path != ":memory:" and not Path(path).exists():
        raise NotFound(NO_STORE, path=path)
    try:
        con = duckdb.connect(path, read_only=read_only)
    except duckdb.IOException as e:
        held = re.search(r"Conflicting lock is held in .*\(PID (\d+)\)", str(e))
        if held is None:
            raise
        raise StoreBusy(STORE_BUSY, path=path, pid=held.group(1)) from None
    con.execute("SET TimeZone = 'UTC'")
    if not read_only:
        for name in TABLES:
            con.execute(table_ddl(name))
        con.execute(QUARANTINE_DDL)
        con.execute(LOADS_DDL)
        con.execute("ALTER TABLE loads ADD COLUMN IF NOT EXISTS provenance VARCHAR")  # stores made before it
        con.execute(VERIFICATIONS_DDL)
        con.execute(RECORD_FLAGS_DDL)
        con.execute(META_DDL)
        _migrate(con)
        quarantine_implausible(con)
    return con


def _migrate(con: duckdb.DuckDBPyConnection) -> None:
    """Add the columns newer versions expect to the tables of an older store (no-ops on a current one)."""
    present = {(t, c) for t, c in con.execute(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE schema_name = 'main'").fetchall()}
    for table, ddl in _MIGRATIONS:
        column = ddl.split()[-2]
        for t in ([table] if table else list(TABLES)):
            if (t, column) not in present:
                con.execute(f'ALTER TABLE "{t}" {ddl}')


def quarantine_implausible(con: duckdb.DuckDBPyConnection, limits: Limits | None = None) -> int:
    """Move stored records that today's validation would reject as implausible to the quarantine: a time
    stamp outside ``limits``' plausible range (rule ``time_out_of_range``) or a number that is NaN or infinite
    (rule ``not_finite``).

    For stores loaded by an older version: one such record must not break the engine (or silently drop a
    total) for every tenant. Runs once per store and range (remembered in ``meta``), so opening a store costs
    nothing afterwards. The records keep their source and record number in the quarantine.

    Returns
    -------
    int
        The number of records moved.
    """
    from zhizao.ingest.rules import NOT_FINITE, TIME_OUT_OF_RANGE, Sql, sql_detail
    from zhizao.limits import current

    limits = limits or current()
    lo, hi = limits.time_range()
    mark = f"v1 {lo.isoformat()}..{hi.isoformat()}"
    done = con.execute("SELECT value FROM meta WHERE key = 'checked_plausible'").fetchall()
    if done and done[0][0] == mark:
        return 0
    lo_sql, hi_sql = f"TIMESTAMPTZ '{lo.isoformat()}'", f"TIMESTAMPTZ '{hi.isoformat()}'"
    moved = 0
    # an older store may lack columns that its register migration adds later (zhizao.portfolio.register)
    present = {(tb, c) for tb, c in con.execute(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE schema_name = 'main'").fetchall()}
    con.execute("BEGIN TRANSACTION")
    try:
        for name, t in TABLES.items():
            checks = []  # (condition, column, message kind)
            for c in t.columns:
                if (name, c.name) not in present:
                    continue
                if c.type == "timestamp":
                    checks.append((f'"{c.name}" < {lo_sql} OR "{c.name}" >= {hi_sql}', c.name, TIME_OUT_OF_RANGE,
                                   "time_out_of_range"))
                elif c.type == "float":
                    checks.append((f'NOT isfinite("{c.name}")', c.name, NOT_FINITE, "not_finite"))
            if not checks:
                continue
            bad = " OR ".join(f"({cond})" for cond, *_ in checks)
            if not con.execute(f'SELECT count(*) FROM "{name}" WHERE {bad}').fetchall()[0][0]:
                continue
            raw = "to_json({" + ", ".join(f"'{c.name}': CAST(\"{c.name}\" AS VARCHAR)" for c in t.columns
                                          if (name, c.name) in present) + "})"
            rule, detail, code, params = [], [], [], []
            for cond, col, kind, rule_name in checks:
                value = Sql(f'"{col}"')
                ps = ({"column": col, "value": value, "earliest": lo.isoformat(), "latest": hi.isoformat()}
                      if kind is TIME_OUT_OF_RANGE else {"column": col, "value": value})
                text, obj = sql_detail(kind, **ps)
                rule.append(f"WHEN {cond} THEN '{rule_name}'")
                detail.append(f"WHEN {cond} THEN {text}")
                code.append(f"WHEN {cond} THEN '{kind.code}'")
                params.append(f"WHEN {cond} THEN {obj}")
            moved += con.execute(f"""
                INSERT INTO quarantine ("table", source, record, line, rule, detail, code, params, raw)
                SELECT '{name}', coalesce(_source, ''), _record, NULL, CASE {" ".join(rule)} END,
                       CASE {" ".join(detail)} END, CASE {" ".join(code)} END,
                       CAST(CASE {" ".join(params)} END AS JSON), {raw}
                FROM "{name}" WHERE {bad}""").fetchall()[0][0]
            con.execute(f'DELETE FROM "{name}" WHERE {bad}')
        con.execute("INSERT OR REPLACE INTO meta VALUES ('checked_plausible', ?)", [mark])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return moved


def row_count(con: duckdb.DuckDBPyConnection, name: str) -> int:
    """Number of rows in table ``name``."""
    n: int = con.execute(f'SELECT count(*) FROM "{name}"').fetchall()[0][0]
    return n
