"""The embedded store: one DuckDB database file holding the canonical tables, the quarantine and a load log.

Every canonical table gets two provenance columns, ``_source`` (file name) and ``_record`` (1-based record
number in that file). Timestamps are ``TIMESTAMPTZ`` and the session time zone is pinned to UTC, so that
nothing depends on the machine's local zone.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from zhizao.schema import SQL_TYPES, TABLES

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
    loaded_at TIMESTAMPTZ DEFAULT current_timestamp
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
    """
    path = str(path)
    if path != ":memory:" and not read_only:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(path, read_only=read_only)
    con.execute("SET TimeZone = 'UTC'")
    if not read_only:
        for name in TABLES:
            con.execute(table_ddl(name))
        con.execute(QUARANTINE_DDL)
        con.execute(LOADS_DDL)
        con.execute(VERIFICATIONS_DDL)
    return con


def row_count(con: duckdb.DuckDBPyConnection, name: str) -> int:
    """Number of rows in table ``name``."""
    return con.execute(f'SELECT count(*) FROM "{name}"').fetchall()[0][0]
