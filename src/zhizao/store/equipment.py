"""Named queries of the equipment table: the ISA-95 hierarchy (equipment, work centre, area, site, enterprise)
and the time zones that every stage reads.

The SQL that reads the equipment table on its own lives here; the engine's and the loaders' queries that join it
inside a larger statement (the kernel's entity tables, the loaders' rules and zone look-ups) keep their own
text beside the rest of that statement.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import pandas as pd

from zhizao.schema import TABLES

#: The hierarchy columns of an equipment row, from the machine up (ISA-95 levels).
HIERARCHY = ("equipment_id", "work_center", "area", "site", "enterprise")


def equipment_table(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every equipment row with every column of the canonical table, by equipment_id."""
    cols = ", ".join(f'"{c}"' for c in TABLES["equipment"].names)
    return con.execute(f"SELECT {cols} FROM equipment ORDER BY equipment_id").df()


def hierarchy(con: duckdb.DuckDBPyConnection, zone: bool = False) -> pd.DataFrame:
    """:data:`HIERARCHY` of every equipment row (in the table's order); with ``zone``, also ``tz`` (the
    equipment's IANA zone, UTC where none is given)."""
    tz = ", coalesce(timezone, 'UTC') AS tz" if zone else ""
    return con.execute(f"SELECT {', '.join(HIERARCHY)}{tz} FROM equipment").df()


def hierarchy_rows(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str | None, str | None, str | None,
                                                                  str | None]]:
    """:data:`HIERARCHY` of every equipment row as tuples (None where a level is not given)."""
    return [tuple(r) for r in con.execute(f"SELECT {', '.join(HIERARCHY)} FROM equipment").fetchall()]


def group_zones(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """work_center, area, site, enterprise and ``tz`` (UTC where none is given) of every equipment row: what
    the zone of a group is chosen from."""
    return hierarchy(con, zone=True).drop(columns="equipment_id")


def equipment_of(con: duckdb.DuckDBPyConnection, enterprises: Iterable[str]) -> list[str]:
    """The equipment ids of ``enterprises``, sorted."""
    return [e for (e,) in con.execute("SELECT equipment_id FROM equipment WHERE list_contains(?, enterprise) "
                                      "ORDER BY equipment_id", [list(enterprises)]).fetchall()]


def owners(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str | None]]:
    """(equipment_id, enterprise) of every equipment row, by enterprise (none last), then equipment_id."""
    return [(e, o) for e, o in con.execute("SELECT equipment_id, enterprise FROM equipment "
                                           "ORDER BY enterprise NULLS LAST, equipment_id").fetchall()]


def enterprises_at(con: duckdb.DuckDBPyConnection, site: str) -> list[str]:
    """The enterprises whose equipment is at ``site``, sorted."""
    return [e for (e,) in con.execute("SELECT DISTINCT enterprise FROM equipment WHERE site = ? AND enterprise "
                                      "IS NOT NULL ORDER BY 1", [site]).fetchall()]


def known(con: duckdb.DuckDBPyConnection, ids: Iterable[str]) -> set[str]:
    """The ids of ``ids`` that are equipment rows."""
    return {e for (e,) in con.execute("SELECT equipment_id FROM equipment WHERE list_contains(?, equipment_id)",
                                      [list(ids)]).fetchall()}


def zones(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The distinct time zones given to equipment, sorted."""
    return [z for (z,) in con.execute("SELECT DISTINCT timezone FROM equipment WHERE timezone IS NOT NULL "
                                      "ORDER BY 1").fetchall()]


def first_zone(con: duckdb.DuckDBPyConnection) -> str:
    """The first of the equipment's zones by name, UTC without any: the store's zone where one is needed."""
    tz = con.execute("SELECT coalesce(min(timezone), 'UTC') FROM equipment").fetchall()[0][0]
    return str(tz or "UTC")
