"""The per-group kernel: zhizao's own engine (:func:`zhizao.kpi.elements.compute_elements`) on one group's
records, wherever the group is computed (a Spark task, a test, a worker).

A group is a site with everything its entities' elements depend on: its equipment, the state and production
records of that equipment, the calendar entries of every scope above or at that equipment (work centre, area,
site, enterprise), the energy, labour and quality records of the equipment and of the scopes of the site
(records booked to an enterprise go to each of its sites: they widen each site's default range, as in the
whole store), and the products. The group is loaded into an in-memory store in the order the records had in
the exporting store (``_row``: sums of floating-point values depend on the order of their terms), and the
engine computes every entity of the group. The group keeps the rows of the entities it owns (see
:mod:`zhizao.scale.spark`); the others are computed where they are owned.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from zhizao.kpi.elements import ELEMENTS, ElementsResult, compute_elements
from zhizao.schema import SQL_TYPES, TABLES
from zhizao.settings import Settings
from zhizao.store.db import open_db

#: The tables a group's store holds.
GROUP_TABLES = ("equipment", "products", "states", "production", "calendar", "energy", "labour", "quality")
#: Text columns of the elements table (before the times and flags).
ID_COLUMNS = ("level", "entity_id", "equipment_id", "work_center", "area", "site", "enterprise", "tz")
TIME_COLUMNS = ("period_start", "period_end")


def element_columns() -> list[str]:
    """The columns of the engine's elements table, in its order (flags are the columns between the period
    bounds and the elements)."""
    con = open_db(":memory:")
    try:
        return list(compute_elements(con).elements.columns)
    finally:
        con.close()


def elements_schema(extra: tuple[tuple[str, pa.DataType], ...] = ()) -> pa.Schema:
    """Arrow schema of the elements table (timestamps in microseconds, UTC), plus ``extra`` fields."""
    fields = []
    for c in element_columns():
        if c in ID_COLUMNS:
            fields.append(pa.field(c, pa.string()))
        elif c in TIME_COLUMNS:
            fields.append(pa.field(c, pa.timestamp("us", tz="UTC")))
        elif c in ELEMENTS:
            fields.append(pa.field(c, pa.float64()))
        else:
            fields.append(pa.field(c, pa.bool_()))
    return pa.schema(fields + [pa.field(n, t) for n, t in extra])


def group_store(tables: dict[str, pa.Table]):
    """An in-memory store holding ``tables`` (canonical columns; rows in the order of column ``_row`` where
    there is one; missing columns are null)."""
    con = open_db(":memory:")
    con.execute("SET threads = 1")  # one task, one core: the engine's own worker thread is enough
    for name, t in tables.items():
        if t is None or t.num_rows == 0:
            continue
        have = set(t.column_names)
        cols = []
        for c in TABLES[name].columns:
            cols.append(f'CAST("{c.name}" AS {SQL_TYPES[c.type]})' if c.name in have else "NULL")
        order = "ORDER BY _row" if "_row" in have else ""
        con.register("_zz_in", t)
        names = ", ".join(f'"{c.name}"' for c in TABLES[name].columns)  # the store's own columns stay null
        con.execute(f'INSERT INTO "{name}" ({names}) SELECT {", ".join(cols)} FROM _zz_in {order}')
        con.unregister("_zz_in")
    return con


def group_elements(tables: dict[str, pa.Table], period: str = "day", start=None, end=None,
                   settings: Settings | None = None, extent: dict | None = None, zone_level: str | None = None
                   ) -> ElementsResult:
    """Elements of every entity of a group's records: :func:`compute_elements` on a store holding them.

    Parameters
    ----------
    tables : dict of str to pyarrow.Table
        Canonical tables of the group (see the module docstring for what a group must hold).
    period, start, end, settings
        As for :func:`zhizao.kpi.elements.compute_elements`.
    extent : dict, optional
        Per-site extent of the whole data (see :func:`compute_elements`); None: derived from the group.
    zone_level : str, optional
        As for :func:`compute_elements` (give the groups' zones in ``settings.zones``).
    """
    con = group_store(tables)
    try:
        return compute_elements(con, period, start, end, settings, zone_level, extent=extent)
    finally:
        con.close()


def to_arrow(df: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """The elements rows ``df`` as an Arrow table of exactly ``schema`` (NaN elements become null)."""
    cols = {}
    for f in schema:
        x = df[f.name] if f.name in df.columns else pd.Series([None] * len(df), dtype=object)
        if pa.types.is_timestamp(f.type):
            v = pd.to_datetime(x, utc=True).dt.as_unit("us")
            cols[f.name] = pa.array(v, type=f.type)
        elif pa.types.is_floating(f.type):
            cols[f.name] = pa.array(np.asarray(x, dtype=np.float64), type=f.type, from_pandas=True)
        elif pa.types.is_boolean(f.type):
            cols[f.name] = pa.array(np.asarray(x, dtype=bool), type=f.type)
        else:
            cols[f.name] = pa.array([None if v is None or (isinstance(v, float) and np.isnan(v)) else v
                                     for v in x.tolist()], type=f.type)
    return pa.Table.from_pydict(cols, schema=schema)


def take_rows(t: pa.Table, mask) -> pa.Table:
    return t.filter(pa.array(np.asarray(mask, dtype=bool)))


def tables_of(wide: pa.Table, names: tuple[str, ...]) -> dict[str, pa.Table]:
    """Split a union of tables (column ``_t`` naming each row's table) into one table per name."""
    out = {}
    if wide.num_rows == 0:
        return out
    t_col = wide.column("_t")
    for name in names:
        part = wide.filter(pc.equal(t_col, name))
        if part.num_rows:
            keep = [c for c in TABLES[name].names if c in part.column_names] + ["_row"]
            out[name] = part.select(keep)
    return out
