"""The embedded store: one DuckDB database file holding the canonical tables, the quarantine and a load log.

Every canonical table gets two provenance columns, ``_source`` (file name) and ``_record`` (1-based record
number in that file). Timestamps are ``TIMESTAMPTZ`` and the session time zone is pinned to UTC, so that
nothing depends on the machine's local zone.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from zhizao.errors import NotFound, StoreBusy
from zhizao.messages import define
from zhizao.schema import SQL_TYPES, TABLES

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
    loaded_at TIMESTAMPTZ DEFAULT current_timestamp
)"""

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
    cols += ["_source VARCHAR", "_record BIGINT"]
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
    return con


def row_count(con: duckdb.DuckDBPyConnection, name: str) -> int:
    """Number of rows in table ``name``."""
    return con.execute(f'SELECT count(*) FROM "{name}"').fetchall()[0][0]
