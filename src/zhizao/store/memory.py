"""DuckDB's memory limit, lowered for a while and restored exactly.

The KPI engine gives DuckDB its share of the memory budget while it works (:func:`zhizao.kpi.partitions.
duckdb_memory`), and a compaction gives its sort a limit (:mod:`zhizao.store.compact`). DuckDB shows its limit
as rounded text ("18.8 GiB"), and setting that text back gives a little less ("18.7 GiB" on the next reading):
restored so after every computation, the limit of a long-running server fell by 0.1 GiB per request until it was
the engine's share, for every other query too. :func:`lowered` restores DuckDB's default by ``RESET`` and any
other limit within its shown precision, never lower.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

_UNITS = {"B": 1, "KB": 1e3, "KIB": 2**10, "MB": 1e6, "MIB": 2**20, "GB": 1e9, "GIB": 2**30, "TB": 1e12,
          "TIB": 2**40}


def limit_bytes(text: str) -> float | None:
    """The bytes of a memory limit as DuckDB shows it, or None for a text it is not.

    >>> limit_bytes("18.8 GiB"), limit_bytes("512MB"), limit_bytes("unlimited")
    (20186346291.2, 512000000.0, None)
    """
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
    if not m:
        return None
    unit = m.group(2).upper() or "B"
    return float(m.group(1)) * _UNITS[unit] if unit in _UNITS else None


def _restore(con: duckdb.DuckDBPyConnection, before: str) -> str:
    """The statement that sets the limit back to ``before`` (its current text): ``RESET`` where that is DuckDB's
    default, else ``before`` with half a unit of its last digit added (DuckDB shows the limit rounded down: the
    value is within that digit's unit above the text, and the text comes back the same)."""
    con.execute("RESET memory_limit")
    if con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] == before:
        return "RESET memory_limit"
    m = re.fullmatch(r"\s*([0-9]+)(?:\.([0-9]+))?\s*([A-Za-z]*)\s*", before)
    if not m:
        return f"SET memory_limit = '{before}'"
    digits = len(m.group(2) or "")
    value = float(f"{m.group(1)}.{m.group(2) or 0}") + 0.5 * 10.0 ** -digits
    return f"SET memory_limit = '{value:.{digits + 1}f} {m.group(3)}'"


@contextmanager
def lowered(con: duckdb.DuckDBPyConnection, mb: float, only_if_higher: bool = True) -> Iterator[None]:
    """Inside, DuckDB's memory limit is ``mb`` MiB (where it was higher, with ``only_if_higher``); afterwards it
    is what it was (see the module docstring). The limit holds for the whole database instance (every cursor of
    the store)."""
    try:
        before = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    except duckdb.Error:
        yield
        return
    have = limit_bytes(before)
    if only_if_higher and have is not None and have <= mb * 2**20:
        yield
        return
    restore = _restore(con, before)
    con.execute(f"SET memory_limit = '{int(mb)}MB'")
    try:
        yield
    finally:
        try:
            con.execute(restore)
        except duckdb.Error:
            pass
