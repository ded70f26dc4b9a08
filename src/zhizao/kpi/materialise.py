"""Materialised elements: the ISO 22400 elements of every entity per piece of time, kept in the store and
updated by every load, so that KPIs of any period of an hour or more are sums of stored elements.

What is stored
--------------
``_elements`` holds one row per entity (equipment, or scope entity: a work centre, area, site or enterprise with
labour, energy or quality records of its own) and *piece* of time: the entity's time is cut at

- the hour bounds of every zone the entity may be bucketed in (its own zone, and the zone of each group it
  belongs to: :func:`zhizao.kpi.partitions.group_zones`, with :attr:`zhizao.Settings.zones`): so a day, week or
  month in a zone with a non-whole-hour offset (Asia/Kolkata +05:30, Asia/Kathmandu +05:45) is a union of pieces,
  as is a local hour there;
- the bounds of the shift entries of its calendar (its own and its work centre's, area's, site's and
  enterprise's): so shift buckets are unions of pieces too;

over the entity's *materialised range*: whole weeks and months (in each of those zones) around its site's data,
which holds every default query range of every period. A piece's row holds the kernel's elements of that piece
(:data:`zhizao.kpi.elements.RAW_ELEMENTS`: time elements in integer milliseconds, so their sums are exact; null
where the entity has no record of the kind in the piece: gaps are gaps). ``_element_reasons`` holds the loss
time per piece, category and reason. ``_element_entities`` holds the entities with the facts the engine derives
store-wide (zones, data extents, whether a calendar applies, the longest records), ``_element_meta`` the settings
the elements were computed with, the per-site data extents and the table sizes they reflect.

The elements of a bucket are the sums of its pieces, because every element is additive over time: time in a
category, counts split in proportion to their overlap, a failure event counted in the piece of its first instant
inside planned busy time, a loss's reason per piece of loss time. Where a bucket-level rule is not a sum, it is
applied to the sums: ``counts_missing`` and ``energy_missing`` (production time of a bucket without any count or
energy record, of an equipment with a counter or a meter), ``epc`` (capacity x POT, from the equipment's current
capacity), the null of an element with no record in the whole bucket. Runs are classified on their full length
by the kernel, whatever the pieces.

Reading (:func:`read`)
----------------------
A query's buckets (:func:`zhizao.kpi.elements.bucket_table`: hour, day, week, month in each entity's bucket zone,
the calendar's shifts, or the whole range) are joined with the pieces (an ``ASOF`` join: each piece to the bucket
it starts in) and summed in DuckDB. The stored elements answer when the settings match those they were computed
with, nothing is pending, the canonical tables are as they were (no write around the loader), each entity's
bucket zone is one it is cut for, and the range lies inside the materialised range on piece bounds; otherwise
:func:`read` returns None and the caller computes from the records (:func:`zhizao.kpi.elements.compute_elements`).

Updating (:func:`mark`, :func:`refresh`)
----------------------------------------
Every load (:func:`zhizao.ingest.load.load_file`, :func:`zhizao.ingest.load.load_records`: files, uploads, the
MQTT and OPC UA listeners) writes, in its own transaction, one *mark* per table and entity it stored records of:
their time span, count and longest interval. :func:`refresh` turns the marks into windows of time per entity
and recomputes only the pieces of those windows, with the kernel reading only the records near them
(:class:`zhizao.kpi.elements.ReadWindow`). The window of a load reaches as far as the new records can change
anything:

- states of an equipment from ``a`` to ``b``: from the start of its previous record (an open record before them
  now ends at their start), back over the failure run that reaches that instant (its classification and first
  instant in planned busy time may change), to its data horizon (an open record after them ends earlier; the
  horizon moves: the last open records end later);
- counts: their span; and if they move the horizon or the first time stamp, the time they add to the data extent
  (the last open state record lasts longer, equipment without calendar is scheduled over its extent), back over
  the failure run that reaches the old horizon;
- calendar entries of a scope: their span, for every equipment and scope entity under that scope, back and forth
  over the failure runs across it (a failure's first instant in planned busy time may move), and the whole range
  of an equipment that gets its first calendar entry or its first shift entry;
- energy, labour and quality records: their span (a cumulative register: the entity's whole range, as its steps
  and median step are per meter);
- products: the whole range of the equipment with counts of those products;
- a new entity, or an entity whose zones or hierarchy changed (an equipment moved to another work centre), its
  whole range; entities whose site's data extent grew: the added part of their materialised range.

Windows are aligned to the hour bounds the entity is cut at and recomputed whole. A change of the settings the
elements depend on (minor-stop threshold, kgce factors) recomputes everything. The property test
(tests/test_materialise.py) checks that the stored elements after any split of the loads (any order of tables,
any partition of the records into batches) equal a full computation from the records.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from zhizao.kpi.buckets import bucket_edges, default_range
from zhizao.kpi.elements import (
    ELEMENTS,
    MS,
    RAW_ELEMENTS,
    TIME_ELEMENTS,
    COUNT_ELEMENTS,
    CAPACITY_ELEMENTS,
    OUTAGE_ELEMENTS,
    ElementsResult,
    ReadWindow,
    _empty_elements,
    _empty_reasons,
    _failure_lookback,
    _lit,
    _ts,
    bucket_table,
    partition_elements,
)
from zhizao.kpi.partitions import (
    BYTES_PER,
    EngineContext,
    cost,
    duckdb_memory,
    entities,
    filled_tables,
    group_zones,
    kernel_budget_bytes,
    merge_extents,
    plan,
    widen,
)
from zhizao.kpi.partitions import _ms as to_ms
from zhizao.kpi.states import state_records
from zhizao.schema import CATEGORY_PRECEDENCE, LEVELS
from zhizao.settings import Settings

PIECES = "_elements"
REASONS = "_element_reasons"
ENTITIES = "_element_entities"
META = "_element_meta"
MARKS = "_element_marks"
#: version of the stored layout and of what it means: a store of another version is rebuilt
VERSION = "1"
#: canonical tables whose records the elements depend on
DEPENDS = ("equipment", "products", "calendar", "states", "production", "energy", "labour", "quality")
HOUR_MS = 3_600_000
DAY_MS = 86_400_000

_ELEMENT_COLS = ", ".join(f'"{c}" DOUBLE' for c in RAW_ELEMENTS)
DDL = (
    f"CREATE TABLE IF NOT EXISTS {META} (key VARCHAR, value VARCHAR)",
    f"""CREATE TABLE IF NOT EXISTS {MARKS} (tbl VARCHAR, entity VARCHAR, is_eq BOOLEAN, t0 BIGINT, t1 BIGINT,
        n BIGINT, maxlen BIGINT, flag BOOLEAN, s_last BIGINT)""",
    f"CREATE TABLE IF NOT EXISTS {PIECES} (eid INTEGER, t0 BIGINT, t1 BIGINT, {_ELEMENT_COLS})",
    f"CREATE TABLE IF NOT EXISTS {REASONS} (eid INTEGER, t0 BIGINT, category VARCHAR, reason VARCHAR, ms DOUBLE)",
    f"""CREATE TABLE IF NOT EXISTS {ENTITIES} (
        eid INTEGER, level VARCHAR, entity_id VARCHAR, equipment_id VARCHAR, work_center VARCHAR, area VARCHAR,
        site VARCHAR, enterprise VARCHAR, tz VARCHAR, epc DOUBLE, zones VARCHAR, m0 BIGINT, m1 BIGINT,
        has_cal BOOLEAN, has_shift BOOLEAN, has_data BOOLEAN, d0 BIGINT, d1 BIGINT, first_start BIGINT,
        last_start BIGINT, s_maxlen BIGINT, o_maxlen BIGINT, cumulative BOOLEAN, has_production BOOLEAN,
        has_energy BOOLEAN, n_states BIGINT, n_production BIGINT, n_other BIGINT)""",
)
#: the columns of _element_entities, in order
ENTITY_COLUMNS = ("eid", "level", "entity_id", "equipment_id", "work_center", "area", "site", "enterprise", "tz",
                  "epc", "zones", "m0", "m1", "has_cal", "has_shift", "has_data", "d0", "d1", "first_start",
                  "last_start", "s_maxlen", "o_maxlen", "cumulative", "has_production", "has_energy", "n_states",
                  "n_production", "n_other")
#: attributes of an entity whose change recomputes its whole range (epc does not: capacity is read at query)
IDENTITY = ("level", "equipment_id", "work_center", "area", "site", "enterprise", "tz", "zones")


def ensure_tables(con) -> None:
    """Create the tables of the materialised elements where missing (a writable store)."""
    for ddl in DDL:
        con.execute(ddl)


def fingerprint(settings: Settings) -> str:
    """What the stored elements depend on besides the records: the layout version and the engine settings."""
    return json.dumps({"version": VERSION, "minor_stop_threshold": settings.minor_stop_threshold,
                       "kgce": sorted(dict(settings.kgce).items())})


def _tables_exist(con) -> bool:
    try:
        con.execute(f"SELECT 1 FROM {META} LIMIT 0")
        return True
    except duckdb.CatalogException:
        return False


def _meta(con) -> dict:
    if not _tables_exist(con):
        return {}
    return {k: json.loads(v) for k, v in con.execute(f"SELECT key, value FROM {META}").fetchall()}


def _set_meta(con, **values) -> None:
    for k, v in values.items():
        con.execute(f"DELETE FROM {META} WHERE key = ?", [k])
        con.execute(f"INSERT INTO {META} VALUES (?, ?)", [k, json.dumps(v)])


def built(con) -> bool:
    """Whether the store keeps materialised elements (they are then maintained by every load)."""
    return bool(_meta(con).get("built"))


def _counts(con) -> dict:
    return dict(zip(DEPENDS, con.execute(
        "SELECT " + ", ".join(f'(SELECT count(*) FROM "{t}")' for t in DEPENDS)).fetchall()[0]))


def _equipment_fingerprint(con) -> str:
    rows = con.execute("""SELECT equipment_id, work_center, area, site, enterprise, timezone, epc FROM equipment
                          ORDER BY equipment_id""").fetchall()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def _shadowed(con) -> bool:
    """Whether a temporary table or view shadows a canonical table on this connection (a live view, a tenant's
    part of the store): the stored elements are not those of what this connection sees."""
    names = ", ".join(_lit(t) for t in DEPENDS)
    return con.execute(f"""SELECT (SELECT count(*) FROM duckdb_views() WHERE temporary AND view_name IN ({names}))
                                + (SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name IN ({names}))
                        """).fetchall()[0][0] > 0


@contextmanager
def _atomic(con):
    """One transaction, or the caller's if one is open."""
    try:
        con.execute("BEGIN TRANSACTION")
    except duckdb.TransactionException:
        yield
        return
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


# -- marks: what a load stored ---------------------------------------------------------------------------------------
#: Per canonical table: the entity, whether it is an equipment, the span [ms] (states: first start, latest start or
#: end; counts: first time stamp, latest end), count, longest interval [ms], a flag (counts: a count at an instant
#: at the latest end, which ends the data 1 ms later; energy: a cumulative register; calendar: a shift entry) and
#: the latest start of state records, of the records of ``{rel}`` (alias ``r``).
_MARK_SQL = {
    "states": """SELECT r.equipment_id, true, epoch_ms(min(r.start)), epoch_ms(max(coalesce(r."end", r.start))),
                        count(*), coalesce(max(epoch_ms(r."end") - epoch_ms(r.start)), 0), false,
                        epoch_ms(max(r.start))""",
    "production": """SELECT r.equipment_id, true, epoch_ms(min(coalesce(r.start, r."end"))), epoch_ms(max(r."end")),
                            count(*), max(epoch_ms(r."end") - epoch_ms(coalesce(r.start, r."end"))),
                            max(epoch_ms(r."end") + (epoch_ms(coalesce(r.start, r."end")) >= epoch_ms(r."end"))::INT)
                                > epoch_ms(max(r."end")), NULL""",
    "energy": """SELECT coalesce(r.equipment_id, r.scope), r.equipment_id IS NOT NULL,
                        epoch_ms(min(coalesce(r.start, r."end"))), epoch_ms(max(r."end")), count(*),
                        coalesce(max(epoch_ms(r."end") - epoch_ms(r.start)), 0),
                        bool_or(coalesce(r.reading, 'interval') = 'cumulative'), NULL""",
    "labour": """SELECT r.scope, false, epoch_ms(min(r.start)), epoch_ms(max(r."end")), count(*),
                        max(epoch_ms(r."end") - epoch_ms(r.start)), false, NULL""",
    "quality": """SELECT coalesce(r.equipment_id, r.scope), r.equipment_id IS NOT NULL, epoch_ms(min(r.ts)),
                         epoch_ms(max(r.ts)) + 1, count(*), 0, false, NULL""",
    "calendar": """SELECT r.scope, false, epoch_ms(min(r.start)), epoch_ms(max(r."end")), count(*), 0,
                          bool_or(r.kind = 'shift'), NULL""",
    "equipment": "SELECT r.equipment_id, true, NULL, NULL, count(*), 0, false, NULL",
    "products": "SELECT r.product_id, false, NULL, NULL, count(*), 0, false, NULL",
}
_MARK_GROUP = {"energy": "GROUP BY ALL", "quality": "GROUP BY ALL"}


def mark(con, table: str, relation: str, where: str = "TRUE") -> None:
    """Record what a load stored into ``table`` (the records of ``relation`` meeting ``where``) for
    :func:`refresh`; nothing if the store keeps no materialised elements or the table is not one they depend on.
    Called by the loader inside its transaction."""
    if table not in _MARK_SQL or not built(con):
        return
    sql = _MARK_SQL[table]
    group = _MARK_GROUP.get(table, "GROUP BY 1")
    con.execute(f"INSERT INTO {MARKS} SELECT {_lit(table)}, * FROM ({sql} FROM {relation} r WHERE {where} {group})")


# -- entities --------------------------------------------------------------------------------------------------------
def _zones_of(ent: pd.DataFrame, settings: Settings) -> list[tuple[str, ...]]:
    """Per entity: the zones it may be bucketed in (its own, and its groups' zones), sorted."""
    eq = ent[ent["level"] == "equipment"]
    by_level = {lvl: group_zones(eq, lvl, settings.zones) for lvl in LEVELS[1:]}
    out = []
    for row in ent[["tz", *LEVELS[1:]]].itertuples(index=False, name=None):
        zs = {row[0]}
        for lvl, gid in zip(LEVELS[1:], row[1:]):
            if isinstance(gid, str) and gid in by_level[lvl]:
                zs.add(by_level[lvl][gid])
        out.append(tuple(sorted(zs)))
    return out


def _ranges_of(ent: pd.DataFrame, zones: list, extent: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per entity, the materialised range [m0, m1) [ms]: whole weeks and months, in each of its zones, around
    its site's data (empty without data)."""
    m0, m1 = np.zeros(len(ent), np.int64), np.zeros(len(ent), np.int64)
    if not extent:
        return m0, m1
    cache: dict = {}
    for i, (site, zs) in enumerate(zip(ent["site"].tolist(), zones)):
        site = None if not isinstance(site, str) else site
        k = (site, zs)
        if k not in cache:
            a, b = extent.get(site, extent[None])
            rs = [default_range(a, b, p, z) for z in zs for p in ("week", "month")]
            cache[k] = (min(r[0] for r in rs), max(r[1] for r in rs))
        m0[i], m1[i] = cache[k]
    return m0, m1


def _calendar_flags(con, ent: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per entity: whether any calendar entry, and any shift entry, applies (its scopes at and above it)."""
    rows = con.execute("SELECT scope, bool_or(kind = 'shift') FROM calendar GROUP BY ALL").fetchall()
    scopes = {s: sh for s, sh in rows}
    has, shift = [], []
    for chain in ent[["entity_id", *LEVELS[1:]]].itertuples(index=False, name=None):
        hit = [scopes[c] for c in chain if isinstance(c, str) and c in scopes]
        has.append(bool(hit))
        shift.append(any(hit))
    return np.asarray(has, bool), np.asarray(shift, bool)


_STATS_SQL = {
    "states": """SELECT equipment_id AS entity_id, epoch_ms(min(start)) AS first_start,
                        epoch_ms(max(start)) AS last_start,
                        coalesce(max(epoch_ms("end") - epoch_ms(start)), 0) AS s_maxlen FROM states GROUP BY ALL""",
    "production": """SELECT equipment_id AS entity_id,
                            max(epoch_ms("end") - epoch_ms(coalesce(start, "end"))) AS o_maxlen FROM production
                     GROUP BY ALL""",
    "energy": """SELECT coalesce(equipment_id, scope) AS entity_id,
                        coalesce(max(epoch_ms("end") - epoch_ms(start)), 0) AS o_maxlen,
                        bool_or(coalesce(reading, 'interval') = 'cumulative') AS cumulative FROM energy GROUP BY ALL""",
    "labour": """SELECT scope AS entity_id, max(epoch_ms("end") - epoch_ms(start)) AS o_maxlen FROM labour
                 GROUP BY ALL""",
}


def _entity_table(con, ctx: EngineContext, settings: Settings) -> pd.DataFrame:
    """The entities of a full build with every stored fact (columns :data:`ENTITY_COLUMNS`)."""
    ent = ctx.ent.copy()
    ent["eid"] = np.arange(len(ent), dtype=np.int32)
    zones = _zones_of(ent, settings)
    ent["zones"] = [json.dumps(z) for z in zones]
    ent["m0"], ent["m1"] = _ranges_of(ent, zones, ctx.extent)
    ent["has_cal"], ent["has_shift"] = _calendar_flags(con, ent)
    idx = pd.Series(np.arange(len(ent)), index=ent["entity_id"].to_numpy())
    for col, default in (("first_start", None), ("last_start", None), ("s_maxlen", 0), ("o_maxlen", 0),
                         ("cumulative", False)):
        ent[col] = default
    ent["first_start"] = ent["first_start"].astype(object)
    ent["last_start"] = ent["last_start"].astype(object)
    for t, q in _STATS_SQL.items():
        if t != "states" and t not in ("production",) and t not in ctx.filled:
            continue
        df = con.execute(q).df()
        df = df[df["entity_id"].isin(idx.index)]
        rows = idx[df["entity_id"]].to_numpy()
        for c in df.columns[1:]:
            if c == "o_maxlen":
                ent.loc[rows, c] = np.maximum(ent.loc[rows, c].to_numpy(np.int64), df[c].fillna(0).to_numpy(np.int64))
            else:
                ent.loc[rows, c] = df[c].to_numpy()
    ent["has_production"] = ent["n_production"].to_numpy() > 0
    ent["has_energy"] = False
    if "energy" in ctx.filled:
        with_energy = {e for (e,) in con.execute(
            "SELECT DISTINCT coalesce(equipment_id, scope) FROM energy").fetchall()}
        ent["has_energy"] = ent["entity_id"].isin(with_energy)
    return ent[list(ENTITY_COLUMNS)]


def _stored_entities(con) -> pd.DataFrame:
    return con.execute(f"SELECT * FROM {ENTITIES} ORDER BY eid").df()


def _ordered(ent: pd.DataFrame) -> pd.DataFrame:
    """Entities in the engine's key order (equipment by id, then scope entities by id), ``key`` 0 .. n - 1."""
    eq = ent["level"] == "equipment"
    out = pd.concat([ent[eq].sort_values("entity_id"), ent[~eq].sort_values("entity_id")], ignore_index=True)
    out["key"] = np.arange(len(out), dtype=np.int64)
    return out


def _context(con, settings: Settings, ent: pd.DataFrame, extent: dict) -> EngineContext:
    """An :class:`EngineContext` of the stored entities (no store-wide query)."""
    e = _ordered(ent)
    e["tz"] = e["tz"].astype(object)
    return EngineContext(settings, filled_tables(con), e, extent, int((e["level"] == "equipment").sum()))


# -- pieces ----------------------------------------------------------------------------------------------------------
class _Grids:
    """The hour bounds of a set of zones over a range (cached)."""

    def __init__(self):
        self._c: dict = {}

    def __call__(self, zones: tuple, m0: int, m1: int) -> np.ndarray:
        k = (zones, m0, m1)
        if k not in self._c:
            self._c[k] = np.unique(np.concatenate([bucket_edges(m0, m1, "hour", z) for z in zones]))
        return self._c[k]


def _shift_bounds(con, ent: pd.DataFrame) -> dict:
    """Per entity id: the bounds of the shift entries of its scopes [ms] (sorted, distinct)."""
    if not len(ent):
        return {}
    view = ent[["entity_id", "equipment_id", "work_center", "area", "site", "enterprise"]]
    con.register("_zz_sb", view)
    try:
        df = con.execute("""
            SELECT k.entity_id, epoch_ms(c.start) AS s, epoch_ms(c."end") AS e FROM calendar c
            JOIN (SELECT entity_id, unnest([entity_id, equipment_id, work_center, area, site, enterprise]) AS sid
                  FROM _zz_sb) k ON c.scope = k.sid
            WHERE c.kind = 'shift'""").df()
    finally:
        con.unregister("_zz_sb")
    out = {}
    for eid, g in df.groupby("entity_id"):
        out[eid] = np.unique(np.concatenate([g["s"].to_numpy(np.int64), g["e"].to_numpy(np.int64)]))
    return out


def _pieces(ent: pd.DataFrame, shifts: dict, grids: _Grids, windows: dict | None = None) -> pd.DataFrame:
    """The pieces (``entity_id``, ``start_ms``, ``end_ms``) of the entities ``ent`` over their materialised
    ranges, or only inside ``windows`` (entity id -> list of (a, b) on hour bounds of its zones)."""
    ids, starts, ends = [], [], []
    for row in ent[["entity_id", "zones", "m0", "m1"]].itertuples(index=False):
        m0, m1 = int(row.m0), int(row.m1)
        if m1 <= m0:
            continue
        cuts = grids(tuple(json.loads(row.zones)), m0, m1)
        sb = shifts.get(row.entity_id)
        if sb is not None and sb.size:
            sb = sb[(sb > m0) & (sb < m1)]
            if sb.size:
                cuts = np.union1d(cuts, sb)
        if windows is not None:
            wins = windows.get(row.entity_id)
            if not wins:
                continue
            keep = np.zeros(cuts.size - 1, bool)
            for a, b in wins:
                keep |= (cuts[:-1] >= a) & (cuts[1:] <= b)
            s, e = cuts[:-1][keep], cuts[1:][keep]
        else:
            s, e = cuts[:-1], cuts[1:]
        ids.append(np.full(s.size, row.entity_id, dtype=object))
        starts.append(s)
        ends.append(e)
    if not ids:
        return pd.DataFrame({"entity_id": pd.Series(dtype=object), "start_ms": pd.Series(dtype=np.int64),
                             "end_ms": pd.Series(dtype=np.int64)})
    return pd.DataFrame({"entity_id": np.concatenate(ids), "start_ms": np.concatenate(starts),
                         "end_ms": np.concatenate(ends)})


def _write(con, raw, eid_of: dict) -> int:
    """Insert a partition's pieces and loss reasons; the number of pieces."""
    if raw is None:
        return 0
    b = raw.buckets
    entity = raw.ent["entity_id"].to_numpy()[b["key"].to_numpy()]
    eids = pd.Series(entity).map(eid_of).to_numpy(np.int32)
    cols = {"eid": pa.array(eids, pa.int32()), "t0": pa.array(b["start_ms"].to_numpy(np.int64)),
            "t1": pa.array(b["end_ms"].to_numpy(np.int64))}
    for c in RAW_ELEMENTS:
        cols[c] = pa.array(raw.values[c], pa.float64(), from_pandas=True)
    con.register("_zz_new_pieces", pa.table(cols))
    try:
        con.execute(f"INSERT INTO {PIECES} SELECT * FROM _zz_new_pieces")
    finally:
        con.unregister("_zz_new_pieces")
    periods = pd.DataFrame({"bucket": np.arange(len(b)), "entity_id": entity,
                            "period_start": b["start_ms"].to_numpy(np.int64),
                            "period_end": b["end_ms"].to_numpy(np.int64)})
    r = raw.reasons(periods)
    if len(r) and "ms" in r:
        t = pa.table({"eid": pa.array(r["entity_id"].map(eid_of).to_numpy(np.int32), pa.int32()),
                      "t0": pa.array(r["period_start"].to_numpy(np.int64)),
                      "category": pa.array(r["category"].astype(str).tolist(), pa.string()),
                      "reason": pa.array(r["reason"].astype(str).tolist(), pa.string()),
                      "ms": pa.array(r["ms"].to_numpy(np.float64))})
        con.register("_zz_new_reasons", t)
        try:
            con.execute(f"INSERT INTO {REASONS} SELECT * FROM _zz_new_reasons")
        finally:
            con.unregister("_zz_new_reasons")
    return len(b)


def _compute_pieces(con, ctx: EngineContext, ent: pd.DataFrame, windows: dict | None, read_window: bool) -> int:
    """Compute and insert the pieces of ``ent`` (rows of the stored entity table, in key order) over their whole
    ranges (``windows`` None) or inside ``windows``, partition by partition; the number of pieces."""
    grids = _Grids()
    shifts = _shift_bounds(con, ent)
    eid_of = dict(zip(ent["entity_id"], ent["eid"].astype(int)))
    ent = ent.copy()
    # the range each entity's read must cover, and its number of pieces (for the partitions' sizes)
    w0, w1, n_pieces = [], [], []
    for row in ent[["entity_id", "zones", "m0", "m1"]].itertuples(index=False):
        m0, m1 = int(row.m0), int(row.m1)
        wins = [(m0, m1)] if windows is None else windows.get(row.entity_id, [])
        wins = [(max(a, m0), min(b, m1)) for a, b in wins if min(b, m1) > max(a, m0)]
        if not wins:
            w0.append(0), w1.append(0), n_pieces.append(0)
            continue
        cuts = grids(tuple(json.loads(row.zones)), m0, m1)
        sb = shifts.get(row.entity_id)
        n = sum(int(np.searchsorted(cuts, b)) - int(np.searchsorted(cuts, a)) for a, b in wins)
        if sb is not None:
            n += sum(int(np.searchsorted(sb, b)) - int(np.searchsorted(sb, a)) for a, b in wins)
        w0.append(min(a for a, _ in wins)), w1.append(max(b for _, b in wins)), n_pieces.append(max(n, 1))
    ent["w0"], ent["w1"] = np.asarray(w0, np.int64), np.asarray(w1, np.int64)
    n_pieces = np.asarray(n_pieces, np.int64)
    keep = n_pieces > 0
    ent, n_pieces = ent[keep].reset_index(drop=True), n_pieces[keep]
    if not len(ent):
        return 0
    c = cost(ent, n_pieces)
    if read_window:  # only the records near the windows are read
        span = (ent["w1"] - ent["w0"]).to_numpy(np.float64) / np.maximum(
            (ent["m1"] - ent["m0"]).to_numpy(np.float64), 1.0)
        c = (c - n_pieces * BYTES_PER["bucket"]) * np.clip(span, 0.0, 1.0) + n_pieces * BYTES_PER["bucket"]
    n = 0
    for part in plan(c, kernel_budget_bytes(ctx.settings)):
        sub = ent.iloc[part.keys]
        sub = pd.concat([sub[sub["level"] == "equipment"], sub[sub["level"] != "equipment"]])
        bk = _pieces(sub, shifts, grids, windows)
        if not len(bk):
            continue
        window = _read_window(sub) if read_window else None
        raw = partition_elements(con, ctx, sub, None, buckets=bk, raw=True, window=window)
        n += _write(con, raw, eid_of)
    return n


def _read_window(ent: pd.DataFrame) -> ReadWindow:
    eq = ent[ent["level"] == "equipment"]

    def opt(col):
        return {e: int(v) for e, v in zip(eq["entity_id"], eq[col]) if v is not None and not pd.isna(v)}

    return ReadWindow(horizon={e: int(v) for e, v in zip(eq["entity_id"], eq["d1"])},
                      last_start=opt("last_start"), first_start=opt("first_start"),
                      s_maxlen=int(eq["s_maxlen"].max()) if len(eq) else 0,
                      o_maxlen=int(ent["o_maxlen"].max()) if len(ent) else 0,
                      cumulative=ent.loc[ent["cumulative"].astype(bool), "entity_id"].tolist())


# -- build -----------------------------------------------------------------------------------------------------------
def build(con, settings: Settings | None = None) -> int:
    """Compute every entity's pieces from the records and store them (replacing what was stored), in one
    transaction (or the caller's); the number of pieces."""
    settings = settings or Settings()
    ensure_tables(con)
    with _atomic(con), duckdb_memory(con, settings):
        for t in (PIECES, REASONS, ENTITIES, MARKS, META):
            con.execute(f"DELETE FROM {t}")
        ctx = EngineContext.read(con, settings)
        ent = _entity_table(con, ctx, settings)
        n = _compute_pieces(con, _context(con, settings, ent, ctx.extent), ent, None, False) if len(ent) else 0
        _save_entities(con, ent)
        _set_meta(con, built=True, fingerprint=fingerprint(settings), extent=_extent_json(ctx.extent),
                  counts=_counts(con), equipment=_equipment_fingerprint(con))
    return n


def _extent_json(extent: dict) -> list:
    return [[k, a, b] for k, (a, b) in extent.items()]


def _extent_of(meta: dict) -> dict:
    return {k: (int(a), int(b)) for k, a, b in meta.get("extent", [])}


_ENTITY_TYPES = {"eid": "int32", "epc": "float64", "m0": "int64", "m1": "int64", "d0": "int64", "d1": "int64",
                 "s_maxlen": "int64", "o_maxlen": "int64", "n_states": "int64", "n_production": "int64",
                 "n_other": "int64", "has_cal": bool, "has_shift": bool, "has_data": bool, "cumulative": bool,
                 "has_production": bool, "has_energy": bool}


def _save_entities(con, ent: pd.DataFrame) -> None:
    con.execute(f"DELETE FROM {ENTITIES}")
    df = ent[list(ENTITY_COLUMNS)].copy().reset_index(drop=True)
    for c, t in _ENTITY_TYPES.items():
        if t is bool:
            df[c] = [bool(v) if not _null(v) else False for v in df[c]]
        elif t == "float64":
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
        else:
            df[c] = pd.to_numeric(df[c], errors="coerce").fillna(0).astype(t)
    for c in ("first_start", "last_start"):
        df[c] = pd.array([None if _null(v) else int(v) for v in df[c]], dtype="Int64")
    for c in ("level", "entity_id", "equipment_id", "work_center", "area", "site", "enterprise", "tz", "zones"):
        df[c] = [v if isinstance(v, str) else None for v in df[c]]
    con.register("_zz_ents", df)
    try:
        con.execute(f"INSERT INTO {ENTITIES} SELECT {', '.join(ENTITY_COLUMNS)} FROM _zz_ents")
    finally:
        con.unregister("_zz_ents")


# -- refresh ---------------------------------------------------------------------------------------------------------
@dataclass
class RefreshReport:
    """What :func:`refresh` did."""

    built: bool = False  #: everything was computed from the records
    entities: int = 0  #: entities recomputed (in part)
    pieces: int = 0  #: pieces computed
    marks: int = 0  #: marks consumed
    windows: dict = field(default_factory=dict, repr=False)  #: entity id -> recomputed windows [ms]


def refresh(con, settings: Settings | None = None, build_if_missing: bool = True) -> RefreshReport:
    """Bring the stored elements up to date with the records (see the module docstring), in one transaction (or
    the caller's). Builds them if the store has none (``build_if_missing``) or they were computed with other
    settings, or the canonical tables changed other than through the loader."""
    settings = settings or Settings()
    meta = _meta(con)
    if not meta.get("built"):
        return RefreshReport(built=True, pieces=build(con, settings)) if build_if_missing else RefreshReport()
    with _atomic(con), duckdb_memory(con, settings):
        meta = _meta(con)
        marks = con.execute(f"SELECT * FROM {MARKS}").df()
        counts = _counts(con)
        expected = dict(meta.get("counts", {}))
        for t, n in marks.groupby("tbl")["n"].sum().items() if len(marks) else ():
            if t in expected:
                expected[t] = expected[t] + int(n)
        if meta.get("fingerprint") != fingerprint(settings) or any(counts[t] < expected.get(t, 0) for t in DEPENDS):
            return RefreshReport(built=True, pieces=build(con, settings))
        if any(counts[t] != expected.get(t, -1) for t in DEPENDS):
            # records stored around the loader (or identical records skipped by it are not counted): rebuild
            return RefreshReport(built=True, pieces=build(con, settings))
        eqfp = _equipment_fingerprint(con)
        if not len(marks) and eqfp == meta.get("equipment"):
            return RefreshReport()
        rep = _refresh(con, settings, meta, marks, eqfp != meta.get("equipment"))
        con.execute(f"DELETE FROM {MARKS}")
        _set_meta(con, counts=counts, equipment=eqfp)
        rep.marks = len(marks)
        return rep


def _refresh(con, settings: Settings, meta: dict, marks: pd.DataFrame, equipment_changed: bool) -> RefreshReport:
    old = _stored_entities(con)
    extent = _extent_of(meta)
    old_extent = dict(extent)
    whole: set = set()
    # -- the entity list: new equipment, new scope entities, changed hierarchy or zones
    known = set(old["entity_id"])
    new_scopes = marks[(marks["tbl"].isin(["energy", "labour", "quality"])) & ~marks["is_eq"]
                       & ~marks["entity"].isin(known)] if len(marks) else marks
    if equipment_changed or (marks["tbl"] == "equipment").any() or len(new_scopes):
        filled = filled_tables(con)
        fresh = entities(con, filled)
        fresh["zones"] = [json.dumps(z) for z in _zones_of(fresh, settings)]
    else:
        fresh = old[["level", "entity_id", "equipment_id", "work_center", "area", "site", "enterprise", "tz", "epc",
                     "zones"]].copy()
    ent = fresh.merge(old.drop(columns=["level", "equipment_id", "work_center", "area", "site", "enterprise",
                                        "tz", "epc", "zones"]), on="entity_id", how="left")
    is_new = ent["eid"].isna()
    if is_new.any():
        nxt = int(old["eid"].max()) + 1 if len(old) else 0
        ent.loc[is_new, "eid"] = np.arange(nxt, nxt + int(is_new.sum()))
        for c, v in (("has_cal", False), ("has_shift", False), ("has_data", False), ("d0", 0), ("d1", 0),
                     ("s_maxlen", 0), ("o_maxlen", 0), ("cumulative", False), ("has_production", False),
                     ("has_energy", False), ("n_states", 0), ("n_production", 0), ("n_other", 0), ("m0", 0),
                     ("m1", 0)):
            ent.loc[is_new, c] = v
    ent["eid"] = ent["eid"].astype(np.int64)
    whole |= set(ent.loc[is_new, "entity_id"])
    old_by = old.set_index("entity_id")
    for c in IDENTITY:
        prev = old_by[c].reindex(ent["entity_id"]).to_numpy(dtype=object)
        now = ent[c].to_numpy(dtype=object)
        changed = np.asarray([not _same(a, b) for a, b in zip(prev, now)], bool) & ~is_new.to_numpy()
        whole |= set(ent.loc[changed, "entity_id"])
    gone = old.loc[~old["entity_id"].isin(ent["entity_id"]), "eid"].tolist()
    # -- the facts: extents, horizons, longest records, calendar flags
    ent = ent.set_index("entity_id", drop=False)
    old_d = ent[["d0", "d1", "has_data"]].copy()
    for m in marks.itertuples(index=False):
        if m.entity not in ent.index and m.tbl not in ("calendar", "products", "equipment"):
            continue
        if m.tbl in ("states", "production"):
            e = m.entity
            a, b = int(m.t0), int(m.t1)
            if bool(ent.at[e, "has_data"]):
                ent.at[e, "d0"] = min(int(ent.at[e, "d0"]), a)
                ent.at[e, "d1"] = max(int(ent.at[e, "d1"]), b)
            else:
                ent.at[e, "d0"], ent.at[e, "d1"], ent.at[e, "has_data"] = a, b, True
            if m.tbl == "states":
                ent.at[e, "n_states"] = int(ent.at[e, "n_states"]) + int(m.n)
                ent.at[e, "s_maxlen"] = max(int(ent.at[e, "s_maxlen"]), int(m.maxlen or 0))
                fs, ls = ent.at[e, "first_start"], ent.at[e, "last_start"]
                ent.at[e, "first_start"] = a if _null(fs) else min(int(fs), a)
                ent.at[e, "last_start"] = int(m.s_last) if _null(ls) else max(int(ls), int(m.s_last))
            else:
                ent.at[e, "n_production"] = int(ent.at[e, "n_production"]) + int(m.n)
                ent.at[e, "o_maxlen"] = max(int(ent.at[e, "o_maxlen"]), int(m.maxlen or 0))
                ent.at[e, "has_production"] = True
                b = b + 1 if bool(m.flag) else b  # the data end 1 ms after a count at an instant
            for site in _sites_of(ent, e):
                widen(extent, site, a, b)
        elif m.tbl in ("energy", "labour", "quality"):
            e = m.entity
            ent.at[e, "n_other"] = int(ent.at[e, "n_other"]) + int(m.n)
            ent.at[e, "o_maxlen"] = max(int(ent.at[e, "o_maxlen"]), int(m.maxlen or 0))
            if m.tbl == "energy":
                ent.at[e, "has_energy"] = True
                if m.flag:
                    ent.at[e, "cumulative"] = True
            for site in _sites_of(ent, e):
                widen(extent, site, int(m.t0), int(m.t1))
    extent = merge_extents(extent)
    has_cal, has_shift = _calendar_flags(con, ent)
    flip = (has_cal != ent["has_cal"].to_numpy(bool)) | (has_shift != ent["has_shift"].to_numpy(bool))
    whole |= set(ent.loc[flip, "entity_id"])
    ent["has_cal"], ent["has_shift"] = has_cal, has_shift
    first_data = ent["has_data"].to_numpy(bool) & ~old_d["has_data"].fillna(False).to_numpy(bool)
    whole |= set(ent.loc[first_data, "entity_id"])
    # -- the ranges: new data extents widen the materialised ranges of their sites' entities
    zones = [tuple(json.loads(z)) for z in ent["zones"]]
    m0, m1 = _ranges_of(ent, zones, extent)
    windows: dict = {}
    for e, a0, a1, b0, b1 in zip(ent["entity_id"], ent["m0"].to_numpy(np.int64), ent["m1"].to_numpy(np.int64),
                                 m0, m1):
        if e in whole or a1 <= a0:
            whole.add(e) if b1 > b0 else None
            continue
        if b0 < a0:
            windows.setdefault(e, []).append((int(b0), int(a0)))
        if b1 > a1:
            windows.setdefault(e, []).append((int(a1), int(b1)))
    ent["m0"], ent["m1"] = m0, m1
    # -- the windows of the marks
    eq_chain = ent[["entity_id", *LEVELS[1:]]]
    for m in marks.itertuples(index=False):
        if m.tbl == "states" and m.entity in ent.index and m.entity not in whole:
            windows.setdefault(m.entity, []).append(("states", int(m.t0), int(m.t1)))
        elif m.tbl == "production" and m.entity in ent.index and m.entity not in whole:
            e = m.entity
            windows.setdefault(e, []).append((int(m.t0), int(m.t1) + 1))
            od0, od1 = int(old_d.at[e, "d0"]), int(old_d.at[e, "d1"])
            if int(ent.at[e, "d1"]) > od1:
                windows[e].append(("horizon", od1, int(ent.at[e, "d1"])))
            if int(ent.at[e, "d0"]) < od0:
                windows[e].append((int(ent.at[e, "d0"]), od0))
        elif m.tbl in ("energy", "labour", "quality") and m.entity in ent.index:
            if m.tbl == "energy" and m.flag:
                whole.add(m.entity)
            else:
                windows.setdefault(m.entity, []).append((int(m.t0), int(m.t1) + 1))
        elif m.tbl == "calendar":
            under = eq_chain.index[(eq_chain == m.entity).any(axis=1).to_numpy()]
            for e in under:
                windows.setdefault(e, []).append(("calendar", int(m.t0), int(m.t1)))
        elif m.tbl == "products":
            for (e,) in con.execute("SELECT DISTINCT equipment_id FROM production WHERE product_id = ?",
                                    [m.entity]).fetchall():
                whole.add(e)
    # -- recompute
    ent = ent.reset_index(drop=True)
    ctx = _context(con, settings, ent, extent)
    state_wins = _state_windows(con, settings, ctx, ent, windows, whole)
    if gone:
        ids = ", ".join(str(int(g)) for g in gone)
        con.execute(f"DELETE FROM {PIECES} WHERE eid IN ({ids})")
        con.execute(f"DELETE FROM {REASONS} WHERE eid IN ({ids})")
    rep = RefreshReport()
    grids = _Grids()
    todo = {}
    by_id = ent.set_index("entity_id", drop=False)
    for e in whole:
        if e in by_id.index:
            todo[e] = [(int(by_id.at[e, "m0"]), int(by_id.at[e, "m1"]))]
    for e, wins in state_wins.items():
        if e in whole or e not in by_id.index:
            continue
        aligned = _align(wins, by_id.loc[e], grids)
        if aligned:
            todo[e] = aligned
    if todo:
        _delete(con, by_id, todo)
        rows = _ordered(ent[ent["entity_id"].isin(list(todo))])
        rows = rows.drop(columns="key")
        rep.pieces = _compute_pieces(con, ctx, rows, todo, read_window=True)
    rep.entities, rep.windows = len(todo), todo
    _save_entities(con, ent)
    _set_meta(con, extent=_extent_json(extent))
    _ = old_extent
    return rep


def _same(a, b) -> bool:
    na, nb = a is None or (isinstance(a, float) and np.isnan(a)), b is None or (isinstance(b, float) and np.isnan(b))
    return (na and nb) or (not na and not nb and a == b)


def _null(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA


def _sites_of(ent: pd.DataFrame, e: str) -> list:
    """The sites whose data extent a record booked to entity ``e`` widens: the sites of the equipment at or under
    it (an enterprise's records count for each of its sites; None: equipment without site)."""
    level = ent.at[e, "level"]
    eq = ent[ent["level"] == "equipment"]
    under = eq[eq["entity_id"] == e] if level == "equipment" else eq[eq[level] == e]
    return sorted({s if isinstance(s, str) else None for s in under["site"]}, key=lambda s: (s is None, s or ""))


def _align(wins: list, row, grids: _Grids) -> list:
    """Windows (a, b) widened to the hour bounds the entity is cut at, clipped to its range, merged."""
    m0, m1 = int(row["m0"]), int(row["m1"])
    if m1 <= m0:
        return []
    cuts = grids(tuple(json.loads(row["zones"])), m0, m1)
    out = []
    for a, b in wins:
        a, b = max(int(a), m0), min(int(b), m1)
        if b <= a:
            if a == b and m0 <= a < m1:
                b = a + 1
            else:
                continue
        i = max(int(np.searchsorted(cuts, a, side="right")) - 1, 0)
        j = min(int(np.searchsorted(cuts, b, side="left")), cuts.size - 1)
        out.append((int(cuts[i]), int(cuts[j])))
    out.sort()
    merged = []
    for a, b in out:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _delete(con, ent_by_id: pd.DataFrame, todo: dict) -> None:
    """Delete the stored pieces and reasons inside the windows ``todo`` (entity id -> windows)."""
    rows = [(int(ent_by_id.at[e, "eid"]), a, b) for e, wins in todo.items() for a, b in wins]
    t = pa.table({"eid": pa.array([r[0] for r in rows], pa.int32()), "a": pa.array([r[1] for r in rows], pa.int64()),
                  "b": pa.array([r[2] for r in rows], pa.int64())})
    con.register("_zz_del", t)
    try:
        lo, hi = min(r[1] for r in rows), max(r[2] for r in rows)
        for table in (PIECES, REASONS):
            con.execute(f"""DELETE FROM {table} USING _zz_del w
                            WHERE {table}.t0 >= {lo} AND {table}.t0 < {hi}
                              AND {table}.eid = w.eid AND {table}.t0 >= w.a AND {table}.t0 < w.b""")
    finally:
        con.unregister("_zz_del")


def _state_windows(con, settings: Settings, ctx: EngineContext, ent: pd.DataFrame, windows: dict,
                   whole: set) -> dict:
    """Windows (a, b) [ms] per entity from the raw windows of the marks: ``("states", a, b)`` reaches back to the
    equipment's previous record and forward to its horizon; ``("horizon", a, b)`` is time added at the horizon;
    ``("calendar", a, b)`` a span of new calendar entries; each widened over the failure runs across its ends
    (read from the records near them)."""
    out: dict = {}
    need: dict = {}
    by_id = ent.set_index("entity_id", drop=False)
    for e, wins in windows.items():
        if e in whole or e not in by_id.index:
            continue
        for w in wins:
            if isinstance(w[0], str):
                kind, a, b = w
                if by_id.at[e, "level"] != "equipment":
                    out.setdefault(e, []).append((a, b + 1))
                    continue
                need.setdefault(e, []).append((kind, a, b))
            else:
                out.setdefault(e, []).append(w)
    if not need:
        return out
    eq = by_id.loc[sorted(need)]
    thr = round(settings.minor_stop_threshold * MS)
    x = min(a for ws in need.values() for _k, a, _b in ws) - thr
    y = max(b for ws in need.values() for _k, _a, b in ws) + thr + 1
    rw = _read_window(eq)
    ids = list(eq["entity_id"])
    rng = f"{_lit(min(ids))} <= {{c}} AND {{c}} <= {_lit(max(ids))}"
    horizon = {k: rw.horizon[e] for k, e in enumerate(ids) if e in rw.horizon}
    while True:
        sr = state_records(con, {}, ids, rw.states_where(con, ids, rng, x, y), horizon)
        starts = {}
        if sr.key.size:
            first = np.flatnonzero(np.r_[True, sr.key[1:] != sr.key[:-1]])
            for k, a, b in zip(sr.key[first].tolist(), first.tolist(), np.r_[first[1:], sr.key.size].tolist()):
                starts[ids[k]] = (a, b)
        lows, ok = {}, True
        for e, ws in need.items():
            k = ids.index(e)
            a_rec, b_rec = starts.get(e, (0, 0))
            s_e, e_e, r_e = sr.start[a_rec:b_rec], sr.end[a_rec:b_rec], sr.rank[a_rec:b_rec]
            res = []
            for kind, a, b in ws:
                d1 = int(by_id.at[e, "d1"])
                if kind == "states":
                    before = s_e[s_e < a]
                    a0 = int(before.max()) if before.size else a
                    lo, hi = a0, max(b, d1) + 1
                elif kind == "horizon":
                    lo, hi = a, b + 1
                else:  # calendar
                    lo, hi = a, (max(b, d1) + 1 if b < d1 else b)
                lo = _run_start(s_e, e_e, r_e, lo)
                if kind == "calendar":
                    hi = _run_end(s_e, e_e, r_e, hi)
                res.append((lo, hi))
                if lo < x:
                    ok = False
            lows[e] = res
            _ = k
        if ok:
            for e, res in lows.items():
                out.setdefault(e, []).extend(res)
            return out
        x = min(lo for res in lows.values() for lo, _hi in res) - 1


def _run_start(s, e, r, t: int) -> int:
    """``t`` moved back to the start of the failure run (unplanned_downtime records, chained where they overlap
    or touch) that reaches it."""
    u = r == 0
    us, ue = s[u], e[u]
    while True:
        across = (us < t) & (ue >= t)
        if not across.any():
            return t
        t = int(us[across].min())


def _run_end(s, e, r, t: int) -> int:
    """``t`` moved forward to the end of the failure run that reaches it."""
    u = r == 0
    us, ue = s[u], e[u]
    while True:
        across = (us <= t) & (ue > t)
        if not across.any():
            return t
        t = int(ue[across].max())


# -- read ------------------------------------------------------------------------------------------------------------
def usable(con, settings: Settings) -> bool:
    """Whether the stored elements are those of the records and settings seen on ``con`` (see :func:`read`)."""
    if _shadowed(con):
        return False
    meta = _meta(con)
    if not meta.get("built") or meta.get("fingerprint") != fingerprint(settings):
        return False
    if con.execute(f"SELECT count(*) FROM {MARKS}").fetchall()[0][0]:
        return False
    if _counts(con) != meta.get("counts"):
        return False
    return _equipment_fingerprint(con) == meta.get("equipment")


def read(con, settings: Settings | None, period: str = "day", start=None, end=None,
         zone_level: str | None = None) -> ElementsResult | None:
    """The elements of :func:`zhizao.kpi.elements.compute_elements` as sums of the stored pieces, or None when the
    stored elements cannot answer (see the module docstring)."""
    settings = settings or Settings()
    if period not in ("hour", "shift", "day", "week", "month", "all") or not usable(con, settings):
        return None
    meta = _meta(con)
    extent = _extent_of(meta)
    stored = _stored_entities(con)
    ent = _ordered(stored)
    ent["tz_own"] = ent["tz"]
    if zone_level not in (None, "equipment"):
        zones = group_zones(ent[ent["level"] == "equipment"], zone_level, settings.zones)
        if zones:
            mapped = ent[zone_level].map(zones)
            ent["tz"] = mapped.where(mapped.notna(), ent["tz"])
    if ent.empty or (not extent and (start is None or end is None)):
        res = ElementsResult(_empty_elements(), _empty_reasons(), period)
        res.extent = extent if start is None or end is None else None
        return res
    if not extent:
        return None
    cuts = [json.loads(z) for z in ent["zones"]]
    if any(tz not in zs for tz, zs in zip(ent["tz"], cuts)):
        return None
    ctx = EngineContext(settings, set(), ent, extent, int((ent["level"] == "equipment").sum()))
    try:
        ranged = ctx.ranges(period, start, end)
    except ValueError:
        return None
    if ranged is None:
        return None
    w0, w1 = ranged["w0"].to_numpy(np.int64), ranged["w1"].to_numpy(np.int64)
    m0, m1 = ranged["m0"].to_numpy(np.int64), ranged["m1"].to_numpy(np.int64)
    if ((w0 < m0) | (w1 > m1) | (m1 <= m0)).any():
        return None
    view = ranged[["key", "level", "entity_id", "equipment_id", "work_center", "area", "site", "enterprise"]]
    con.register("_zz_ent", view)
    try:
        buckets = bucket_table(con, ranged, period)
    finally:
        con.unregister("_zz_ent")
    if not _on_pieces(ranged, buckets, period):
        return None
    return _summed(con, ranged, buckets, period, extent if start is None or end is None else None)


def _on_pieces(ent: pd.DataFrame, buckets: pd.DataFrame, period: str) -> bool:
    """Whether every bucket bound lies on an hour bound of its entity's zones (a piece bound), or, for shift
    buckets, is a bound of a shift entry (pieces are cut there too)."""
    grids = _Grids()
    key = buckets["key"].to_numpy()
    for (zs, a, b), idx in ent.groupby(["zones", "m0", "m1"]).indices.items():
        cuts = grids(tuple(json.loads(zs)), int(a), int(b))
        keys = ent["key"].to_numpy()[idx]
        m = np.isin(key, keys)
        w = ent.iloc[idx]
        bounds = np.r_[w["w0"].to_numpy(np.int64), w["w1"].to_numpy(np.int64)]
        if not np.isin(bounds, cuts).all():
            return False
        edges = np.r_[buckets["start_ms"].to_numpy()[m], buckets["end_ms"].to_numpy()[m]]
        if period != "shift" and not np.isin(edges, cuts).all():
            return False
    return True


def _summed(con, ent: pd.DataFrame, buckets: pd.DataFrame, period: str, extent) -> ElementsResult:
    nb = len(buckets)
    eid = ent["eid"].to_numpy(np.int32)[buckets["key"].to_numpy()]
    t = pa.table({"eid": pa.array(eid, pa.int32()), "b": pa.array(np.arange(nb, dtype=np.int64)),
                  "bs": pa.array(buckets["start_ms"].to_numpy(np.int64)),
                  "be": pa.array(buckets["end_ms"].to_numpy(np.int64))})
    sums = ", ".join(f'sum(p."{c}") AS "{c}"' for c in RAW_ELEMENTS)
    lo, hi = int(buckets["start_ms"].min()) if nb else 0, int(buckets["end_ms"].max()) if nb else 0
    con.register("_zz_mb", t)
    try:
        got = con.execute(f"""
            SELECT b.b, {sums}, count(p.pq) AS _n_pq, count(p.energy_kwh) AS _n_energy
            FROM (SELECT * FROM {PIECES} WHERE t0 >= {lo} AND t0 < {hi}) p
            ASOF JOIN _zz_mb b ON p.eid = b.eid AND p.t0 >= b.bs
            WHERE p.t0 < b.be GROUP BY b.b""").fetchnumpy() if nb else {"b": np.empty(0, np.int64)}
    finally:
        con.unregister("_zz_mb")
    at = np.asarray(got["b"], np.int64)
    out = {}
    for c in RAW_ELEMENTS:
        x = np.full(nb, np.nan)
        if at.size:
            v = got[c]
            x[at] = np.ma.filled(v.astype(np.float64), np.nan) if isinstance(v, np.ma.MaskedArray) else v
        out[c] = x
    n_pq, n_en = np.zeros(nb, np.int64), np.zeros(nb, np.int64)
    if at.size:
        n_pq[at], n_en[at] = np.asarray(got["_n_pq"]), np.asarray(got["_n_energy"])
    for c in TIME_ELEMENTS:
        out[c] = out[c] / MS
    bkey = buckets["key"].to_numpy()
    is_eq = (ent["level"] == "equipment").to_numpy()[bkey]
    has_data = ent["has_data"].to_numpy(bool)[bkey]
    has_cal = ent["has_cal"].to_numpy(bool)[bkey]
    no_time = ~is_eq | ~(has_cal | has_data)
    out["epc"] = ent["epc"].to_numpy(np.float64)[bkey] * out["pot"] / 3600.0
    for name, flag, n in (("counts_missing", "has_production", n_pq), ("energy_missing", "has_energy", n_en)):
        out[name] = np.where(ent[flag].to_numpy(bool)[bkey] & (n == 0), out["apt"], 0.0)
    for name in TIME_ELEMENTS + COUNT_ELEMENTS + CAPACITY_ELEMENTS + OUTAGE_ELEMENTS:
        out[name][no_time] = np.nan
    info = ent.take(bkey)
    cols = {c: info[c].reset_index(drop=True).astype(object).where(info[c].reset_index(drop=True).notna(), None)
            for c in ("level", "entity_id", "equipment_id", "work_center", "area", "site", "enterprise", "tz")}
    cols["period_start"] = pd.to_datetime(buckets["start_ms"].to_numpy(), unit="ms", utc=True)
    cols["period_end"] = pd.to_datetime(buckets["end_ms"].to_numpy(), unit="ms", utc=True)
    cols["no_calendar"] = ~has_cal & is_eq & has_data
    cols["no_data"] = is_eq & ~has_data
    df = pd.DataFrame({**cols, **{name: out[name] for name in ELEMENTS}})
    periods = df[["entity_id", "period_start", "period_end"]].reset_index(names="bucket")
    res = ElementsResult(df, lambda: _reasons(con, t, periods, lo, hi), period)
    res.extent = extent
    return res


def _reasons(con, buckets: pa.Table, periods: pd.DataFrame, lo: int, hi: int) -> pd.DataFrame:
    con.register("_zz_rb", buckets)
    try:
        df = con.execute(f"""
            SELECT b.b AS bucket, r.category, r.reason, sum(r.ms) AS ms
            FROM (SELECT * FROM {REASONS} WHERE t0 >= {lo} AND t0 < {hi}) r
            ASOF JOIN _zz_rb b ON r.eid = b.eid AND r.t0 >= b.bs
            WHERE r.t0 < b.be GROUP BY ALL""").df()
    finally:
        con.unregister("_zz_rb")
    if df.empty:
        return _empty_reasons().assign(entity_id=pd.Series(dtype=object), period_start=pd.Series(dtype=object),
                                       period_end=pd.Series(dtype=object))
    rank = {c: i for i, c in enumerate(CATEGORY_PRECEDENCE)}
    df["_r"] = df["category"].map(rank)
    df = df.sort_values(["bucket", "_r", "reason"], ignore_index=True).drop(columns="_r")
    df["seconds"] = df.pop("ms") / MS
    return df.merge(periods, on="bucket").drop(columns="bucket")


__all__ = ["build", "refresh", "read", "mark", "usable", "built", "ensure_tables", "RefreshReport"]
_ = (to_ms, _failure_lookback, _ts)
