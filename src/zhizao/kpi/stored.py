"""Stored elements: the ISO 22400 elements of every entity per local hour, kept in the store and brought up to
date by each load, so that a query of hours, days, weeks or months reads sums instead of the shop-floor records.

Every element is a sum over time or over records (:mod:`zhizao.kpi.elements`), and an entity's hours nest in its
days, weeks and months (all in its own IANA zone; the kernel classifies failure runs on their full length, so an
hour's elements do not depend on how a range is split). So the elements of a day are the sums of its hours: the
time elements exactly (integer milliseconds), counts and energy to the last bits of a floating-point sum
(a count over three hours is split into thirds and added back). What is not a sum is derived from the sums, as
the kernel derives it: "no record of a kind in the bucket" is null where no hour of the bucket has one (gaps are
gaps), the outages count production time in buckets without counts or energy, capacity is epc x pot.

Tables (all in the store, each update written in one transaction):

``elements_hour``
    one row per entity and hour, in time order, an hour in which a shift of the entity starts or ends in two or
    more rows cut there (:data:`zhizao.kpi.elements.HOUR_PARTS`: a shift bucket is a sum of whole rows):
    ``entity_id``, ``start_ms``, ``end_ms`` (UTC [ms]), ``local_start`` (the row's wall-clock start in the entity's
    zone, which the hour, day, week and month are cut from) and the
    kernel's raw elements (:data:`zhizao.kpi.elements.RAW_ELEMENTS`; time elements in integer milliseconds; null
    where the entity has no time or the hour no record of the kind).
``elements_hour_reasons``
    the loss time inside planned busy time per equipment, hour, category and reason [integer ms] (the kernel's
    loss-reason table of the hours: a piece of loss time takes the reason of the record of its category that
    covers it, the latest started where several do, whatever range is read, and the kernel cuts the pieces at
    every start and end of a loss record, so the hours' rows add up to a day's); written and removed with the
    hours.
``elements_hour_entities``
    per entity: its zone, the hours stored ``[c0, c1)`` (from the first week or month of its site's data to the
    end of the hour of the site's latest record: :func:`coverage`), whether a calendar applies, whether it has
    data, whether it has any record of each optional kind.
``elements_hour_context``, ``elements_hour_meta``
    the engine's facts of the store they were computed from (:meth:`EngineContext.parts`), the store's version
    (:func:`store_version`: loads, live batches, row counts, the settings and the engine's code), the settings,
    and per record table the row id from which records are new with the last old row's hash.

Bringing it up to date (:func:`refresh`) reads the records added since (by row id): state and count records of
an equipment change its hours from the start of its last state record before them (whose end may change), moved
back over a failure run across it (:func:`zhizao.kpi.elements.affected_from`), or from its horizon before them,
to its new horizon where they are its latest records (else to the end); interval energy, labour and quality
records change their own hours; a cumulative register every hour of its entities from its first reading (its
steps and median step are per meter); hours a wider data extent adds are computed for every entity of the site,
and an entity's first records recompute all of its hours. The kernel computes them with its window read.
Anything else (a calendar, the equipment, products, other settings or engine code, records removed or
rewritten) needs them built again (:func:`build`), which a write leaves to ``zhizao materialise``
(:func:`refresh_stored`). A read (:func:`stored_elements`) answers only when they are current for the store it
reads and the range starts within the stored hours; the instants before the range's first whole hour and after
its last stored whole hour are the kernel's (a window of time); buckets of hours, days, weeks, months, shifts and
the whole range; otherwise it returns None and the kernel computes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from zhizao.errors import InputError
from zhizao.kpi.buckets import QueryEnd, TimeStamp, default_end, floor_local
from zhizao.kpi.columns import floor_ms
from zhizao.kpi.elements import (
    ELEMENTS,
    HOUR_PARTS,
    OPTIONAL_GROUPS,
    RAW_ELEMENTS,
    TIME_ELEMENTS,
    WINDOW_SHARE,
    ElementsResult,
    RawElements,
    ReadWindow,
    affected_from,
    affected_reads_from,
    bucket_table,
    data_span,
    elements_table,
    partition_elements,
    reasons_table,
)
from zhizao.kpi.intervals import MS
from zhizao.kpi.partitions import EngineContext, Part, cost, duckdb_memory, kernel_budget_bytes, plan
from zhizao.messages import Message, define
from zhizao.schema import CATEGORY_PRECEDENCE
from zhizao.settings import Settings
from zhizao.store.fingerprint import ELEMENT_TABLES, code_digest, settings_fields

log = logging.getLogger(__name__)

BUILT = define("stored.built", "stored elements built: %(hours)s entity-hours of %(entities)s entities in "
                               "%(seconds)s s")
REFRESHED = define("stored.refreshed", "stored elements brought up to date: %(hours)s entity-hours of %(entities)s "
                                       "entities recomputed in %(seconds)s s")
CURRENT = define("stored.current", "stored elements are current")
ABSENT = define("stored.absent", "this store keeps no stored elements; 'zhizao materialise' builds them")
DROPPED = define("stored.dropped", "stored elements removed")
STALE = define("stored.stale", "stored elements left not current (%(reason)s); 'zhizao materialise' builds them")
STATUS_CURRENT = define("stored.status_current", "%(hours)s entity-hours of %(entities)s entities stored, current")
STATUS_STALE = define("stored.status_stale", "%(hours)s entity-hours of %(entities)s entities stored, not current: "
                                             "queries compute from the records until 'zhizao materialise' or the "
                                             "next load brings them up to date")

TABLE = "elements_hour"
REASONS = "elements_hour_reasons"
ENTITIES = "elements_hour_entities"
META = "elements_hour_meta"
CONTEXT = "elements_hour_context"
HOUR_MS = 3_600_000
#: Periods read from the stored hours
PERIODS = ("hour", "shift", "day", "week", "month", "all")
#: The column of each optional kind that is null exactly where an hour has no record of the kind
PRESENCE = {"production": "pq", "energy": "energy_kwh", "labour": "apat", "quality": "ip"}
#: Tables whose new records are brought in entity by entity; a load of any other element table builds again
LOCAL_TABLES = ("states", "production", "energy", "labour", "quality")
#: A state record's latest time stamp [ms]: its end, or its start where that is later or it has none
_STATE_LATEST = "greatest({}, coalesce({}, 0))".format(floor_ms("start"), floor_ms('"end"'))

_DDL = (
    f"""CREATE TABLE IF NOT EXISTS {TABLE} (entity_id VARCHAR, start_ms BIGINT, end_ms BIGINT,
        local_start TIMESTAMP, {", ".join(f'"{c}" DOUBLE' for c in RAW_ELEMENTS)})""",
    f"""CREATE TABLE IF NOT EXISTS {REASONS} (entity_id VARCHAR, start_ms BIGINT, local_start TIMESTAMP,
        category VARCHAR, reason VARCHAR, ms BIGINT)""",
    f"""CREATE TABLE IF NOT EXISTS {ENTITIES} (entity_id VARCHAR PRIMARY KEY, tz VARCHAR, c0 BIGINT, c1 BIGINT,
        has_calendar BOOLEAN, has_data BOOLEAN, {", ".join(f"has_{k} BOOLEAN" for k in PRESENCE)})""",
    f"CREATE TABLE IF NOT EXISTS {META} (key VARCHAR PRIMARY KEY, value VARCHAR)",
)


@dataclass
class StoredReport:
    """What :func:`build` or :func:`refresh` did.

    Attributes
    ----------
    action : {'built', 'refreshed', 'current', 'stale', 'absent'}
        Built whole; brought up to date entity by entity; already current; left not current (a write that
        would build them again, :func:`refresh_stored`); no stored elements in this store.
    entities : int
        Entities whose hours were computed.
    hours : int
        Rows written (hours, and parts of hours cut at shift bounds).
    reason : str
        Why the table was built whole (empty otherwise).
    """

    action: str
    entities: int = 0
    hours: int = 0
    reason: str = ""
    ranges: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)
    seconds: float = 0.0

    def message(self) -> Message:
        if self.action in ("built", "refreshed"):
            return (BUILT if self.action == "built" else REFRESHED)(
                hours=f"{self.hours:,}", entities=f"{self.entities:,}", seconds=f"{self.seconds:.1f}")
        if self.action == "stale":
            return STALE(reason=self.reason)
        return CURRENT() if self.action == "current" else ABSENT()


def status(con: duckdb.DuckDBPyConnection, settings: Settings | None = None) -> Message:
    """What the store keeps: how many entity-hours of how many entities, and whether they are current (for
    ``settings``, default those they were built with)."""
    if not exists(con):
        return ABSENT()
    settings = settings or stored_settings(con) or Settings()
    hours, entities = con.execute(f"SELECT (SELECT count(*) FROM {TABLE}), (SELECT count(*) FROM {ENTITIES})"
                                  ).fetchall()[0]
    kind = STATUS_CURRENT if is_current(con, settings) else STATUS_STALE
    return kind(hours=f"{hours:,}", entities=f"{entities:,}")


# -- version ---------------------------------------------------------------------------------------------------------
def store_version(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict[str, Any]:
    """What the stored elements must have been computed for: the number of loads and live batches, the row count
    of each table the engine reads, the plausibility check's mark, and the digest of the settings and of the
    engine's code (:func:`zhizao.store.fingerprint.code_digest`). Aggregates of counts only: cheap to read."""
    # the store's own tables, not a tenant's views shadowing them (zhizao.api.Workspace.scoped): stored hours are
    # the whole store's, and a tenant's read of them takes its own entities' rows
    db = con.execute("SELECT current_database()").fetchall()[0][0].replace('"', '""')
    have = _tables(con)
    counts = [t for t in (*ELEMENT_TABLES, "loads", "live_batches") if t in have]
    row = con.execute("SELECT " + ", ".join(f'(SELECT count(*) FROM "{db}".main."{t}")' for t in counts)
                      ).fetchall()[0]
    mark = con.execute(f"""SELECT value FROM "{db}".main.meta WHERE key = 'checked_plausible'""").fetchall() \
        if "meta" in have else []
    digest = hashlib.sha256(code_digest().encode())
    digest.update(json.dumps(settings_fields(settings), sort_keys=True).encode())
    return {"counts": dict(zip(counts, (int(x) for x in row))), "plausible": mark[0][0] if mark else None,
            "digest": digest.hexdigest()}


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The store's own tables (schema main of the current database: not a tenant's views shadowing them). Asked of
    the catalogue: a query of a missing table would abort the caller's transaction (a server's read)."""
    return {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' "
                                      "AND database_name = current_database()").fetchall()}


def _kept(con: duckdb.DuckDBPyConnection, key: str) -> str | None:
    """The value of ``key`` in the stored elements' meta table (None: none, or no such table)."""
    if META not in _tables(con):
        return None
    rows = con.execute(f"SELECT value FROM {META} WHERE key = ?", [key]).fetchall()
    return rows[0][0] if rows else None


def _meta(con: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    value = _kept(con, "version")
    return json.loads(value) if value is not None else None


def stored_settings(con: duckdb.DuckDBPyConnection) -> Settings | None:
    """The settings the stored elements were computed with (None: none stored)."""
    value = _kept(con, "settings")
    return Settings(**json.loads(value)) if value is not None else None


def exists(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether this store keeps stored elements (:func:`build` was run)."""
    return _meta(con) is not None


def is_current(con: duckdb.DuckDBPyConnection, settings: Settings) -> bool:
    """Whether the stored elements are those of the store as ``con`` sees it now."""
    meta = _meta(con)
    return meta is not None and meta == store_version(con, settings)


# -- coverage --------------------------------------------------------------------------------------------------------
def coverage(ctx: EngineContext) -> pd.DataFrame:
    """Per entity of ``ctx`` (its rows, in key order): ``c0``, ``c1``, the hours to store: from the start of the
    first week or month of its site's data (where every default range of hours, days, weeks and months begins) to
    the end of the hour of the site's latest record. Hours after it have no records; a query reaching beyond
    (the rest of a month) has them computed by the kernel (:func:`stored_elements`). Empty without data."""
    if not ctx.extent:
        return ctx.ent.iloc[:0].assign(c0=np.int64(0), c1=np.int64(0))
    edges: dict[tuple[str | None, str], tuple[int, int]] = {}
    c0, c1 = [], []
    for site, tz in zip(ctx.ent["site"], ctx.ent["tz"]):
        site = None if pd.isna(site) else site
        if (site, tz) not in edges:
            a, b = ctx.extent.get(site, ctx.extent[None])
            first = pd.Timestamp(int(a) * 1_000_000, tz="UTC")
            edges[site, tz] = (min(int(floor_local(first, p, tz).value // 1_000_000) for p in ("week", "month")),
                               _hour_floor(int(b), tz) + HOUR_MS)
        c0.append(edges[site, tz][0])
        c1.append(edges[site, tz][1])
    return ctx.ent.assign(c0=np.asarray(c0, np.int64), c1=np.asarray(c1, np.int64))


def _hour_floor(ms: int, tz: str) -> int:
    """The start of the local hour of ``ms`` in ``tz`` [ms] (the stored hours' edges)."""
    return int(hour_floors(np.array([ms], np.int64), tz)[0])


def hour_floors(ms: np.ndarray, tz: str) -> np.ndarray:
    """The start of the local hour of each instant ``ms`` in ``tz`` [ms]: the wall clock floored to the hour at the
    instant's own offset (as :func:`zhizao.kpi.buckets.floor_local`: hours of +05:30 zones start at :30 UTC;
    an hour repeated by a DST change is two hours).

    >>> [int(x) for x in hour_floors(np.array([1_711_846_800_000 + 5_400_000]), "Asia/Kolkata") % 3_600_000]
    [1800000]
    """
    ms = np.asarray(ms, np.int64)
    offset = _wall_clock(ms, tz).astype(np.int64) - ms
    out: np.ndarray = (ms + offset) // HOUR_MS * HOUR_MS - offset
    return out


def _wall_clock(ms: np.ndarray, tz: str) -> np.ndarray:
    """The local wall-clock time (``datetime64[ms]``, no zone) of each instant ``ms`` [ms since the epoch] in
    ``tz``."""
    utc = pd.DatetimeIndex(pd.to_datetime(np.asarray(ms, np.int64), unit="ms", utc=True))
    out: np.ndarray = utc.tz_convert(tz).tz_localize(None).to_numpy("datetime64[ms]")
    return out


# -- writing ---------------------------------------------------------------------------------------------------------
def build(con: duckdb.DuckDBPyConnection, settings: Settings | None = None,
          progress: Callable[[int, int], None] | None = None, reason: str = "") -> StoredReport:
    """Compute every entity's hours and store them (replacing what is stored), in one transaction.

    ``progress(done, total)``: called after each partition of entities."""
    settings = settings or Settings()
    _whole_store(con)
    for ddl in _DDL:
        con.execute(ddl)
    version = store_version(con, settings)
    ctx = EngineContext.read(con, settings)
    cov = coverage(ctx)
    todo = {e: (int(a), int(b)) for e, a, b in zip(cov["entity_id"], cov["c0"], cov["c1"]) if b > a}
    return _write(con, ctx, cov, todo, version, whole=True, progress=progress, reason=reason or "built")


def refresh(con: duckdb.DuckDBPyConnection, settings: Settings | None = None,
            progress: Callable[[int, int], None] | None = None, memory_mb: float | None = None,
            rebuild: bool = True) -> StoredReport:
    """Bring the stored elements up to date with the store (see the module docstring): nothing where they are
    current, the hours the new records change where the loads and live batches since say which, else all of them
    (:func:`build`). A store without stored elements is left alone (``action`` 'absent').

    ``settings``: default the settings they were built with (what every writer uses: a load or a live batch
    keeps them as they are); other settings build them again with those. ``memory_mb``: the engine's memory
    budget for this (default the settings'). ``rebuild`` False: where they would be built again, leave them as
    they are (``action`` 'stale', with the reason): a write is not held up for a minute of a city's hours."""
    meta = _meta(con)
    if meta is None:
        return StoredReport("absent")
    _whole_store(con)
    settings = settings or stored_settings(con) or Settings()
    if memory_mb is not None:
        settings = replace(settings, memory_mb=memory_mb)
    version = store_version(con, settings)
    if meta == version:
        return StoredReport("current")
    why = _why_whole(meta, version)
    changed: dict[str, tuple[int, int | None]] | None = None
    since: dict[str, int] = {}
    if not why:
        changed, why, since = _changes(con, meta, version)
    if why:
        return build(con, settings, progress, reason=why) if rebuild else StoredReport("stale", reason=why)
    assert changed is not None
    ctx = None
    if all(version["counts"].get(t) == meta["counts"].get(t) for t in ("energy", "labour", "quality")):
        ctx = _resumed_context(con, settings, since)  # the store's facts from the new records alone
    if ctx is None:
        ctx = EngineContext.read(con, settings)
    window = ReadWindow.read(con, ctx)
    eq = set(ctx.ent["entity_id"].iloc[:ctx.n_eq])
    times = {e: a for e, (a, _b) in changed.items() if e in eq}
    if window is None or not times:
        return _refresh(con, ctx, changed, eq, times, dict(times), since, version, progress, window)
    # the days before the new records are read three times (their effect, the window's lookback and records):
    # once from the store
    window.keep_recent(con, affected_reads_from(ctx, times.values()))
    try:
        return _refresh(con, ctx, changed, eq, times, affected_from(con, ctx, window, times), since, version,
                        progress, window)
    finally:
        window.drop_recent(con)


def _refresh(con: duckdb.DuckDBPyConnection, ctx: EngineContext, changed: dict[str, tuple[int, int | None]],
             eq: set[str], times: dict[str, int], lo: dict[str, int], since: dict[str, int],
             version: dict[str, Any], progress: Callable[[int, int], None] | None, window: ReadWindow | None
             ) -> StoredReport:
    """:func:`refresh`'s update: the hours of each entity the new records change (``changed``; ``eq``: the
    equipment's ids; ``times``: the earliest new state or count record per equipment, ``lo``: the earliest instant
    they change) written."""
    cov = coverage(ctx)
    stored = {e: (tz, int(c0), int(c1), bool(h)) for e, tz, c0, c1, h in con.execute(
        f"SELECT entity_id, tz, c0, c1, has_data FROM {ENTITIES}").fetchall()}
    # and from each equipment's horizon before them: the records set a later one, and the time between (the data
    # extent, where an equipment without calendar is scheduled) changed with it
    for e, h in _horizons_before(con, since, sorted(times)).items():
        lo[e] = min(lo[e], h)
    lo.update({e: a for e, (a, _b) in changed.items() if e not in eq})
    hi = _affected_until(changed, cov)
    # the hour of each entity's first and last changed instant, by zone at once
    ids = cov["entity_id"].to_numpy(object)
    c1s = cov["c1"].to_numpy(np.int64)
    first, last = np.zeros(len(cov), np.int64), np.zeros(len(cov), np.int64)
    for tz, idx in cov.groupby("tz").indices.items():
        lo_ms = np.array([lo.get(e, 0) for e in ids[idx]], np.int64)
        hi_ms = np.array([hi.get(e) or 0 for e in ids[idx]], np.int64)
        first[idx] = hour_floors(np.minimum(lo_ms, c1s[idx] - 1), tz)
        last[idx] = hour_floors(np.minimum(hi_ms, c1s[idx] - 1), tz) + HOUR_MS
    todo: dict[str, tuple[int, int]] = {}
    whole_entities: set[str] = set()
    for i, (e, tz, c0_, c1_, has) in enumerate(zip(ids, cov["tz"], cov["c0"], c1s, cov["has_data"])):
        c0, c1 = int(c0_), int(c1_)
        if c1 <= c0:
            continue
        old = stored.get(e)
        if old is None or old[0] != tz or old[3] != bool(has) or c0 > old[1] or c1 < old[2]:
            # a new entity (energy booked to a new scope, say), or equipment with its first records: without
            # calendar it had no time at all, now it has (a fact of the entity, not of an hour); or an entity whose
            # site has its first records: its hours followed all sites' extent, now its site's own, which only
            # appends cannot narrow otherwise (a removal is told by the counts and the last row's hash): every
            # hour replaced
            todo[e] = (c0, c1)
            whole_entities.add(e)
            continue
        s0, s1 = old[1], old[2]
        ranges = [r for r in ((c0, s0), (s1, c1)) if r[1] > r[0]]  # hours a wider extent adds
        if e in lo:  # hours the new records change
            since_hour = max(c0, int(first[i]))
            ranges.append((since_hour, c1 if hi.get(e) is None else min(c1, int(last[i]))))
        ranges = [r for r in ranges if r[1] > r[0]]
        if ranges:
            todo[e] = (min(r[0] for r in ranges), max(r[1] for r in ranges))
    gone = sorted(set(stored) - set(cov["entity_id"]))
    return _write(con, ctx, cov, todo, version, whole=False, progress=progress, gone=gone + sorted(whole_entities),
                  window=window)


def refresh_stored(con: duckdb.DuckDBPyConnection, memory_mb: float | None = None) -> StoredReport | None:
    """:func:`refresh` after a write (a load, a live batch) where the store keeps stored elements, without
    building them again: a write that would need that (a calendar, the equipment, products) leaves them not
    current, and every read computes with the kernel until ``zhizao materialise`` builds them. A failure is
    logged and leaves them as they were, never the write's failure."""
    try:
        if not exists(con):
            return None
        rep = refresh(con, memory_mb=memory_mb, rebuild=False)
        if rep.action == "stale":
            log.warning("stored elements not current after this write (%s): 'zhizao materialise' builds them",
                        rep.reason)
        return rep
    except Exception:  # the write is committed; the stored hours are only not current
        log.warning("stored elements not brought up to date", exc_info=True)
        return None


def _horizons_before(con: duckdb.DuckDBPyConnection, since: dict[str, int], ids: list[str]) -> dict[str, int]:
    """Per equipment of ``ids``, its horizon (latest time stamp of its states and counts [ms]) among the records
    before the new ones (``since``: per table, the row id from which records are new); none: not listed."""
    if not ids or not ({"states", "production"} & set(since)):
        return {}
    if _kept(con, "scope_extent") is not None:  # the engine's facts kept with the hours: those before the records
        return {e: int(h) for e, h in con.execute(f"""
            SELECT entity_id, greatest(s_last, p_last) FROM {CONTEXT}
            WHERE entity_id IN (SELECT unnest($ids)) AND greatest(s_last, p_last) >= 0""", {"ids": ids}).fetchall()}
    parts = []
    for t, stamp in (("states", _STATE_LATEST), ("production", floor_ms('"end"'))):
        old = f"rowid < {since[t]}" if t in since else "TRUE"
        parts.append(f"SELECT equipment_id, {stamp} AS t FROM {t} WHERE {old} "
                     f"AND equipment_id IN (SELECT unnest($ids))")
    return {e: int(h) for e, h in con.execute(f"SELECT equipment_id, max(t) FROM ({' UNION ALL '.join(parts)}) "
                                              "GROUP BY ALL", {"ids": ids}).fetchall() if h is not None}


def _affected_until(changed: dict[str, tuple[int, int | None]], cov: pd.DataFrame) -> dict[str, int | None]:
    """Per entity of ``changed``, the latest instant [ms] whose elements the new records can change (None: up to
    the end of its stored hours). Records added after every other record of an equipment (a day's file, a live
    batch) change nothing after its horizon, which they set: their open records last until it, and beyond it
    the hours were and stay without states. Records of an equipment that has others after them (a backfill)
    may change every later hour (an open record's end, a failure run they join); energy, labour and quality
    intervals change their own hours."""
    horizon = dict(zip(cov["entity_id"], cov["d1"])) if "d1" in cov.columns else {}
    level = dict(zip(cov["entity_id"], cov["level"]))
    out: dict[str, int | None] = {}
    for e, (_a, b) in changed.items():
        if b is None:
            out[e] = None
        else:
            d1 = horizon.get(e) if level.get(e) == "equipment" else None
            out[e] = None if d1 is not None and not pd.isna(d1) and int(d1) > b else b
    return out


def _whole_store(con: duckdb.DuckDBPyConnection) -> None:
    """Refuse a connection on which views shadow the record tables (a tenant's workspace, ``ws.scoped``): the stored
    hours are the whole store's, computed and kept from its own tables."""
    if con.execute("SELECT count(*) FROM duckdb_views() WHERE NOT internal AND view_name IN ('equipment', 'states')"
                   ).fetchall()[0][0]:
        raise ValueError("stored elements are built and brought up to date on the whole store, not a tenant's view")


def _save_marks(con: duckdb.DuckDBPyConnection) -> None:
    """Keep, per table of records brought in entity by entity, the row id from which records are new."""
    have = _tables(con)
    marks = {t: int(con.execute(f'SELECT coalesce(max(rowid) + 1, 0) FROM "{t}"').fetchall()[0][0])
             for t in LOCAL_TABLES if t in have}
    # and the last row's content: DuckDB hands out the row ids of rows removed before a checkpoint again, so a
    # table emptied and loaded anew could pass for one appended to
    last = {t: _row_hash(con, t, m - 1) for t, m in marks.items() if m > 0}
    con.execute(f"INSERT OR REPLACE INTO {META} VALUES ('marks', ?)", [json.dumps(marks, sort_keys=True)])
    con.execute(f"INSERT OR REPLACE INTO {META} VALUES ('last_rows', ?)", [json.dumps(last, sort_keys=True)])


def _row_hash(con: duckdb.DuckDBPyConnection, table: str, rowid: int) -> str | None:
    """DuckDB's hash of the row ``rowid`` of ``table`` (None: no such row)."""
    rows = con.execute(f'SELECT CAST(hash("{table}") AS VARCHAR) FROM "{table}" WHERE rowid = ?', [rowid]).fetchall()
    return rows[0][0] if rows else None


def rewritten(con: duckdb.DuckDBPyConnection) -> None:
    """After the record tables were rewritten with the same records (``zhizao compact``): stored elements that were
    current stay so, from the rows as they are now (their row ids changed)."""
    if exists(con) and is_current(con, stored_settings(con) or Settings()):
        con.execute("CHECKPOINT")  # the rewrite's removed rows gone first: a later checkpoint would renumber them
        _save_marks(con)


def _resumed_context(con: duckdb.DuckDBPyConnection, settings: Settings, since: dict[str, int]
                     ) -> EngineContext | None:
    """The engine's facts of the store now from those kept with the stored hours and the state and count records
    added since (``since``: per table, the row id from which records are new) alone
    (:meth:`EngineContext.resumed`): what a refresh after such records needs, without reading every record's
    statistics again. None where none are kept."""
    value = _kept(con, "scope_extent")
    if value is None:
        return None
    kept = con.execute(f"SELECT * FROM {CONTEXT} ORDER BY key").df()
    if not len(kept):
        return None
    scope_extent = {(None if site == "" else site): (int(a), int(b)) for site, a, b in json.loads(value)}
    own = kept[kept["equipment_id"].notna()].drop(columns=["key", "entity_id", "n_other"])
    own = own.astype({c: np.int64 for c in own.columns if c != "equipment_id"})
    n_other = pd.Series(kept["n_other"].to_numpy(np.int64), index=kept["entity_id"].to_numpy(object))
    return EngineContext.resumed(con, settings, own, n_other, scope_extent,
                                 {t: m for t, m in since.items() if t in ("states", "production")})


def _save_context(con: duckdb.DuckDBPyConnection, ctx: EngineContext) -> None:
    """Keep ``ctx``'s parts (:meth:`EngineContext.parts`) with the stored hours (inside their transaction)."""
    con.execute(f"DROP TABLE IF EXISTS {CONTEXT}")
    con.execute(f"DELETE FROM {META} WHERE key = 'scope_extent'")
    parts = ctx.parts()
    if parts is None:
        return
    own, n_other, scope_extent = parts
    frame = pd.DataFrame({"key": np.arange(len(n_other), dtype=np.int64), "entity_id": n_other.index.to_numpy(object),
                          "n_other": n_other.to_numpy(np.int64)})
    frame = frame.merge(own.rename(columns={"equipment_id": "entity_id"}).assign(
        equipment_id=own["equipment_id"].to_numpy(object)), on="entity_id", how="left")
    con.register("_zz_context", frame)
    try:
        con.execute(f"CREATE TABLE {CONTEXT} AS SELECT * FROM _zz_context")
    finally:
        con.unregister("_zz_context")
    con.execute(f"INSERT INTO {META} VALUES ('scope_extent', ?)",
                [json.dumps([["" if k is None else k, a, b] for k, (a, b) in scope_extent.items()])])


def _why_whole(meta: dict[str, Any], version: dict[str, Any]) -> str:
    if meta.get("digest") != version["digest"]:
        return "other settings or engine code"
    if meta.get("plausible") != version["plausible"]:
        return "the plausibility check moved records"
    old, new = meta.get("counts", {}), version["counts"]
    for t, n in new.items():
        if n < old.get(t, 0):
            return f"records removed from {t}"
    return ""


def _changes(con: duckdb.DuckDBPyConnection, meta: dict[str, Any], version: dict[str, Any]
             ) -> tuple[dict[str, tuple[int, int | None]] | None, str, dict[str, int]]:
    """Per entity, the earliest and the latest time [ms] of the records added since ``meta`` (latest None: to the
    end of the stored hours), or a reason to build the table again; and per table with new records, the row id
    from which they are new.

    New records are told by their row id (a file name, the records' ``_source``, may be loaded again with other
    records): appends only, checked by count, so a rewrite of the table (``zhizao compact`` without the workspace,
    which keeps the marks) or a removal builds the table again."""
    old, new = meta["counts"], version["counts"]
    others = [t for t in ELEMENT_TABLES if t not in LOCAL_TABLES and t != "variables"]
    if new.get("loads", 0) > old.get("loads", 0):
        for (table,) in con.execute('SELECT "table" FROM loads WHERE rowid >= ? ORDER BY rowid',
                                    [old.get("loads", 0)]).fetchall():
            if table in others:  # (an update of the equipment keeps its count)
                return None, f"a load of {table}", {}
    for t in others:
        if new.get(t) != old.get(t):
            return None, f"records of {t}", {}
    if new.get("live_batches", 0) > old.get("live_batches", 0):
        batches = [f"live:{s}:{b}" for s, b in con.execute(
            "SELECT source, batch FROM live_batches WHERE rowid >= ? ORDER BY rowid",
            [old.get("live_batches", 0)]).fetchall()]
        for t in others:  # a batch that updated an equipment record
            if t in new and con.execute(f'SELECT count(*) FROM "{t}" WHERE _source IN (SELECT unnest(?))',
                                        [batches]).fetchall()[0][0]:
                return None, f"records of {t}", {}
    value = _kept(con, "marks")
    marks = json.loads(value) if value is not None else {}
    value = _kept(con, "last_rows")
    last = json.loads(value) if value is not None else {}
    since: dict[str, int] = {}
    for t in LOCAL_TABLES:
        if t not in new:
            continue
        added = new[t] - old.get(t, 0)
        if t not in marks:
            return None, f"records of {t} of unknown rows", {}
        # appended: the rows from the mark on are as many as the table has more (a removal with appends, or a
        # rewrite that numbers its rows on, is not)
        n = con.execute(f'SELECT count(*) FROM "{t}" WHERE rowid >= ?', [marks[t]]).fetchall()[0][0]
        if n != added or (marks[t] > 0 and _row_hash(con, t, marks[t] - 1) != last.get(t)):
            return None, f"records of {t} rewritten", {}
        if added:
            since[t] = int(marks[t])
    times: dict[str, tuple[int, int | None]] = {}

    def add(rows: Iterable[tuple[str, int, int | None]]) -> None:
        for e, a, b in rows:
            if e is None or a is None:
                continue
            a0, b0 = times.get(e, (int(a), int(a)))
            times[e] = (min(int(a), a0), None if b is None or b0 is None else max(int(b), b0))

    def src(t: str) -> str:
        return f"rowid >= {since[t]}"

    if "states" in since:
        add(con.execute(f"""SELECT equipment_id, min({floor_ms('start')}), max({_STATE_LATEST})
                            FROM states WHERE {src('states')} GROUP BY ALL""").fetchall())
    if "production" in since:
        add(con.execute(f"""SELECT equipment_id, min(least({floor_ms('start')}, {floor_ms('"end"')})),
                                   max({floor_ms('"end"')})
                            FROM production WHERE {src('production')} GROUP BY ALL""").fetchall())
    if "energy" in since:
        add(con.execute(f"""SELECT coalesce(equipment_id, scope), min(least({floor_ms('start')}, {floor_ms('"end"')})),
                                   max({floor_ms('"end"')})
                            FROM energy WHERE {src('energy')} AND coalesce(reading, 'interval') = 'interval'
                            GROUP BY ALL""").fetchall())
        # a register's steps and median step are the meter's: every entity it books to, all its hours
        # (from the meter's first reading, whatever the entity: a step is booked to the entity of its later
        # reading over the time since the earlier one, which may be another's)
        add(con.execute(f"""SELECT DISTINCT coalesce(e.equipment_id, e.scope), f.first - 1, NULL FROM energy e
                            JOIN (SELECT meter_id, min({floor_ms('"end"')}) AS first FROM energy
                                  WHERE meter_id IN (SELECT meter_id FROM energy WHERE {src('energy')}
                                                     AND reading = 'cumulative')
                                  GROUP BY ALL) f USING (meter_id)""").fetchall())
    if "labour" in since:
        add(con.execute(f"""SELECT scope, min({floor_ms('start')}), max({floor_ms('"end"')}) FROM labour
                            WHERE {src('labour')} GROUP BY ALL""").fetchall())
    if "quality" in since:
        add(con.execute(f"SELECT coalesce(equipment_id, scope), min({floor_ms('ts')}), max({floor_ms('ts')}) "
                        f"FROM quality WHERE {src('quality')} GROUP BY ALL").fetchall())
    return times, "", since


def _write(con: duckdb.DuckDBPyConnection, ctx: EngineContext, cov: pd.DataFrame, todo: dict[str, tuple[int, int]],
           version: dict[str, Any], whole: bool, progress: Callable[[int, int], None] | None = None,
           gone: list[str] | None = None, reason: str = "", window: ReadWindow | None = None) -> StoredReport:
    """Compute the hours ``todo`` (entity -> [a, b)) and write them, the entities' coverage and ``version`` in
    one transaction (``whole``: replacing every stored row; ``gone``: entities whose rows are all removed first,
    gone from the store or recomputed whole). The rows go in in time order (a query of the last days reads the
    last row groups only)."""
    settings = ctx.settings
    t_start = time.perf_counter()
    ent = cov[cov["entity_id"].isin(list(todo))].copy()
    ent["w0"] = [todo[e][0] for e in ent["entity_id"]]
    ent["w1"] = [todo[e][1] for e in ent["entity_id"]]
    report = StoredReport("built" if whole else "refreshed", entities=len(ent), reason=reason if whole else "",
                          ranges=dict(todo))
    if not whole and len(ent) and window is None and int(ent["w1"].max()) - int(ent["w0"].min()) < \
            WINDOW_SHARE * data_span(ctx.ent):
        window = ReadWindow.read(con, ctx)
    con.execute("BEGIN TRANSACTION")
    try:
        if whole:
            for t in (TABLE, REASONS, ENTITIES):
                con.execute(f"DELETE FROM {t}")
        elif gone:
            for t in (TABLE, REASONS, ENTITIES):
                con.execute(f"DELETE FROM {t} WHERE entity_id IN (SELECT unnest(?))", [gone])
        if len(ent):
            if not whole:
                ranges = pd.DataFrame({"entity_id": ent["entity_id"].to_numpy(object),
                                       "a": ent["w0"].to_numpy(np.int64), "b": ent["w1"].to_numpy(np.int64)})
                con.register("_zz_refresh", ranges)
                try:  # (the literal bound lets DuckDB skip the row groups of earlier hours)
                    for t in (TABLE, REASONS):
                        con.execute(f"""DELETE FROM {t} h USING _zz_refresh r WHERE h.entity_id = r.entity_id
                                        AND h.start_ms >= r.a AND h.start_ms < r.b
                                        AND h.start_ms >= {int(ranges["a"].min())}""")
                finally:
                    con.unregister("_zz_refresh")
            with duckdb_memory(con, settings):
                n_hours = ctx.n_buckets(ent, "hour")
                if window is not None and int(n_hours.sum()) * ROW_BYTES < kernel_budget_bytes(settings) / 4:
                    # a window of a few hours: its records are few whatever the entities' history (which the
                    # plan's cost counts), so one part, one read
                    parts = [Part(np.arange(len(ent), dtype=np.int64))]
                else:
                    parts = plan(cost(ent, n_hours), kernel_budget_bytes(settings))
                flags: list[pd.DataFrame] = []
                # several parts are staged, to go in in time order together; one goes in at once
                stages = {TABLE: "_zz_stage", REASONS: "_zz_stage_reasons"} if len(parts) > 1 else {}
                for t, st in stages.items():
                    con.execute(f"CREATE OR REPLACE TEMP TABLE {st} AS SELECT * FROM {t} LIMIT 0")
                for i, p in enumerate(parts):
                    raw = partition_elements(con, ctx, ent.iloc[p.keys], HOUR_PARTS, raw=True, window=window)
                    if raw is not None:
                        rows, reasons = _hour_rows(raw)
                        report.hours += rows.num_rows
                        for t, tab in ((TABLE, rows), (REASONS, reasons)):
                            con.register("_zz_hours", tab)
                            try:
                                con.execute(f"INSERT INTO {stages[t] if stages else t} SELECT * FROM _zz_hours")
                            finally:
                                con.unregister("_zz_hours")
                        # per entity: whether a calendar applies; whether its new hours hold records of each kind
                        # (records are only added: a kind an entity had stays)
                        key = raw.buckets["key"].to_numpy()
                        fl = pd.DataFrame({"entity_id": raw.ent["entity_id"].to_numpy(object),
                                           "has_calendar": raw.has_calendar})
                        for k, c in PRESENCE.items():
                            fl[f"has_{k}"] = np.bincount(key, weights=~np.isnan(raw.values[c]),
                                                         minlength=len(fl)) > 0
                        flags.append(fl)
                    if progress is not None:
                        progress(i + 1, len(parts))
                for t, st in stages.items():
                    con.execute(f"INSERT INTO {t} SELECT * FROM {st} ORDER BY start_ms, entity_id")
                    con.execute(f"DROP TABLE {st}")
            cal = pd.concat(flags, ignore_index=True) if flags else pd.DataFrame(
                {"entity_id": pd.Series(dtype=object), "has_calendar": pd.Series(dtype=bool),
                 **{f"has_{k}": pd.Series(dtype=bool) for k in PRESENCE}})
            facts = cov[cov["entity_id"].isin(list(todo))][["entity_id", "tz", "c0", "c1", "has_data"]].merge(
                cal, on="entity_id", how="left")
            con.register("_zz_facts", facts)
            try:
                con.execute(f"""INSERT OR REPLACE INTO {ENTITIES}
                    SELECT f.entity_id, f.tz, f.c0, f.c1, coalesce(f.has_calendar, e.has_calendar, false), f.has_data,
                           {", ".join(f"coalesce(f.has_{k}, false) OR coalesce(e.has_{k}, false)" for k in PRESENCE)}
                    FROM _zz_facts f LEFT JOIN {ENTITIES} e USING (entity_id)""")
            finally:
                con.unregister("_zz_facts")
        # coverage of entities whose hours were not touched (none changed) stays as stored
        _save_context(con, ctx)
        con.execute(f"INSERT OR REPLACE INTO {META} VALUES ('version', ?)", [json.dumps(version, sort_keys=True)])
        _save_marks(con)
        con.execute(f"INSERT OR REPLACE INTO {META} VALUES ('settings', ?)", [json.dumps(
            {"minor_stop_threshold": settings.minor_stop_threshold, "kgce": dict(settings.kgce),
             "zones": dict(settings.zones)}, sort_keys=True)])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    report.seconds = time.perf_counter() - t_start
    return report


def _hour_rows(raw: RawElements) -> tuple[pa.Table, pd.DataFrame]:
    """The rows of ``elements_hour`` and of ``elements_hour_reasons`` of one partition's raw hourly elements, in
    time order (start, entity)."""
    b = raw.buckets
    key = b["key"].to_numpy()
    ids = raw.ent["entity_id"].to_numpy(object)[key]
    tz = raw.ent["tz"].to_numpy(object)[key]
    start = b["start_ms"].to_numpy(np.int64)
    local = np.empty(len(b), "datetime64[ms]")
    for zone in pd.unique(tz):
        m = tz == zone
        local[m] = _wall_clock(start[m], zone)
    cols: dict[str, pa.Array] = {
        "entity_id": pa.array(ids, pa.string()), "start_ms": pa.array(start, pa.int64()),
        "end_ms": pa.array(b["end_ms"].to_numpy(np.int64), pa.int64()), "local_start": pa.array(local)}
    for c in RAW_ELEMENTS:
        v = np.asarray(raw.values[c], np.float64)
        cols[c] = pa.array(v, pa.float64(), mask=np.isnan(v))
    # in time order: by start, then entity id
    rank = np.empty(len(raw.ent), np.int64)
    rank[np.argsort(raw.ent["entity_id"].to_numpy(object), kind="stable")] = np.arange(len(raw.ent))
    order = np.lexsort((rank[key], start))
    place = np.empty(len(b), np.int64)
    place[order] = np.arange(len(b))  # each bucket's place in that order
    periods = pd.DataFrame({"bucket": np.arange(len(b)), "entity_id": ids, "start_ms": start, "local_start": local,
                            "place": place})
    reasons = raw.reasons(periods)
    if not len(reasons):  # (the kernel's table without rows has the columns of a query's)
        reasons = periods.iloc[:0].assign(category="", reason="", ms=np.int64(0))
    reasons = reasons.sort_values("place", kind="stable")  # (a bucket's rows in the kernel's order)
    return pa.table(cols).take(order), reasons[["entity_id", "start_ms", "local_start", "category", "reason", "ms"]]


def drop(con: duckdb.DuckDBPyConnection) -> None:
    """Remove the stored elements from the store."""
    for t in (TABLE, REASONS, ENTITIES, META, CONTEXT):
        con.execute(f"DROP TABLE IF EXISTS {t}")


# -- reading ---------------------------------------------------------------------------------------------------------
#: Bytes a row of the elements table takes in memory (about 60 columns), to keep a read within the engine's budget
ROW_BYTES = 600


def _ranges(con: duckdb.DuckDBPyConnection, period: str, start: TimeStamp | None, end: QueryEnd | None,
            settings: Settings, ctx: EngineContext) -> pd.DataFrame | None:
    """The entities of ``ctx`` with their query ranges ``w0``, ``w1``, the stored facts, ``h`` and ``t``: the
    stored hours read are ``[h, t)`` (the first whole hour from ``w0`` to the end of the last whole stored hour
    before ``w1``; the kernel computes ``[w0, h)`` and ``[t, w1)``), where the stored hours answer the query (see
    :func:`stored_elements`), else None."""
    if period not in PERIODS or not is_current(con, settings):
        return None
    try:
        ent = ctx.ranges(period, start, end)
    except InputError:
        return None  # the kernel says why
    if ent is None or not len(ent):
        return None
    facts = con.execute(f"SELECT * FROM {ENTITIES}").df().drop(columns="has_data")
    ent = ent.merge(facts, on="entity_id", how="left", suffixes=("", "_stored"))
    if ent["c0"].isna().any() or (ent["tz_stored"] != ent["tz"]).any() or (ent["w0"] < ent["c0"]).any():
        return None
    w0, w1 = ent["w0"].to_numpy(np.int64), ent["w1"].to_numpy(np.int64)
    h, t = np.empty(len(ent), np.int64), np.empty(len(ent), np.int64)
    for tz, idx in ent.groupby("tz").indices.items():
        f0 = hour_floors(w0[idx], tz)
        nxt = hour_floors(f0 + HOUR_MS + HOUR_MS // 2, tz)  # the next local hour's start (hours of 30 min to 2 h)
        h[idx] = np.minimum(np.where(f0 == w0[idx], f0, nxt), w1[idx])
        t[idx] = hour_floors(w1[idx], tz)
    ent["h"] = h
    ent["t"] = np.maximum(np.minimum(t, ent["c1"].to_numpy(np.int64)), h)
    if int(ctx.n_buckets(ent, period).sum()) * ROW_BYTES > kernel_budget_bytes(settings):
        return None  # more rows than the engine's memory budget holds: the kernel streams them in partitions
    return ent


def answers(con: duckdb.DuckDBPyConnection, period: str = "day", start: TimeStamp | None = None,
            end: QueryEnd | None = None, settings: Settings | None = None, zone_level: str | None = None,
            context: EngineContext | None = None) -> bool:
    """Whether :func:`stored_elements` of these arguments answers (without reading the hours)."""
    settings = settings or Settings()
    if not exists(con):
        return False
    ctx = context if context is not None else EngineContext.read(con, settings, zone_level)
    return _ranges(con, period, start, end, settings, ctx) is not None


def stored_elements(con: duckdb.DuckDBPyConnection, period: str = "day", start: TimeStamp | None = None,
                    end: QueryEnd | None = None, settings: Settings | None = None, zone_level: str | None = None,
                    context: EngineContext | None = None) -> ElementsResult | None:
    """:func:`zhizao.kpi.elements.compute_elements` of these arguments from the stored hours: the same table
    (time elements and loss reasons to the last bit, the others to the last bits of their sums).

    The buckets are sums of the stored hours from the first whole hour of the range to the last whole hour before
    its end that is stored; the rest (the start of an explicit range inside an hour; the current hour up to the
    reading time, the rest of a month after the latest record, the end of an explicit range inside an hour) is
    computed by the kernel for those instants alone (a window of time) and added. The stored loss reasons are read
    with the elements, the kernel's rests' computed when first asked for. None where the stored hours cannot
    answer: none stored, not current for the store ``con`` reads or for ``settings``, a period other than hour,
    shift, day, week, month or the whole range, a stored row across a bucket's bound (a zone whose clock moves by
    half an hour), a range that starts before the stored hours, a group bucketed in a zone other than its members'
    own (``zone_level``), or more rows than the engine's memory budget."""
    settings = settings or Settings()
    if not exists(con):
        return None
    ctx = context if context is not None else EngineContext.read(con, settings, zone_level)
    ent = _ranges(con, period, start, end, settings, ctx)
    if ent is None:
        return None
    ent["key"] = np.arange(len(ent), dtype=np.int64)
    buckets = _buckets(con, ent, period)
    if buckets is None:
        return None
    bkey, bs, be = (buckets[c].to_numpy(np.int64) for c in ("key", "start_ms", "end_ms"))
    nb = len(buckets)
    base, span = int(bs.min()), int(be.max() - bs.min()) + 1
    sums = {c: np.full(nb, np.nan) for c in RAW_ELEMENTS}
    seen = {k: np.zeros(nb, bool) for k in PRESENCE}
    length = np.zeros(nb, np.int64)

    def bucket_of(rows: pd.DataFrame) -> np.ndarray:
        """The bucket of each part (key, start_ms): the last one of its key starting at or before it (buckets
        sorted by key, start), -1 where it is in none (an hour between two shifts)."""
        k, s0 = rows["key"].to_numpy(np.int64), rows["start_ms"].to_numpy(np.int64)
        i = np.searchsorted(bkey * span + (bs - base), k * span + (s0 - base), side="right") - 1
        j = np.maximum(i, 0)
        return np.where((i >= 0) & (bkey[j] == k) & (s0 < be[j]), i, -1)

    outside: list[bool] = []

    def add(rows: pd.DataFrame) -> None:
        """Add per-bucket rows (key, start_ms of a part of the bucket, length, the elements, n_<kind>; end_ms: the
        latest end of the part's hours, where it is stored hours)."""
        if not len(rows):
            return
        i = bucket_of(rows)
        rows, i = rows[i >= 0], i[i >= 0]
        if "end_ms" in rows.columns and (rows["end_ms"].to_numpy(np.int64) > be[i]).any():
            outside.append(True)  # an hour across a bucket's end (a zone whose hours are not bucket_edges' hours)
        np.add.at(length, i, rows["length"].to_numpy(np.int64))
        for c in RAW_ELEMENTS:
            v = rows[c].to_numpy(np.float64, na_value=np.nan)
            m = ~np.isnan(v)
            touched = np.zeros(nb, bool)
            touched[i[m]] = True
            part = np.zeros(nb)
            np.add.at(part, i[m], v[m])  # (several parts of a bucket: the hours of a shift)
            sums[c] = np.where(touched, np.where(np.isnan(sums[c]), 0.0, sums[c]) + part, sums[c])
        for kind in PRESENCE:
            seen[kind] |= np.bincount(i, weights=rows[f"n_{kind}"].to_numpy(np.int64), minlength=nb) > 0

    # (hours and shifts: row by row, each row added to the bucket it starts in: an hour's rows cut at shift bounds
    # to its hour, wherever the stored hours lie on the wall clock)
    grp = {"hour": ", h.start_ms", "shift": ", h.start_ms", "all": ""}.get(
        period, f", date_trunc('{period}', h.local_start)")
    agg_sums = ", ".join(f'sum("{c}") AS "{c}"' if c in TIME_ELEMENTS or c == "fe" else f'fsum("{c}") AS "{c}"'
                         for c in RAW_ELEMENTS)
    counts = ", ".join(f'count("{c}") AS "n_{k}"' for k, c in PRESENCE.items())
    read = ent[ent["t"] > ent["h"]][["key", "entity_id", "h", "t"]]

    def stored_rows(table: str, what: str, by: str = "") -> pd.DataFrame:
        """Per key and bucket (and ``by``): ``what`` of the stored rows of ``table`` in ``[h, t)``."""
        if not len(read):
            return pd.DataFrame()
        con.register("_zz_ranges", read)
        try:  # (the literal bounds let DuckDB skip the row groups of other hours)
            return con.execute(f"""
                SELECT r.key, min(h.start_ms) AS start_ms, {what}
                FROM {table} h JOIN _zz_ranges r ON h.entity_id = r.entity_id
                WHERE h.start_ms >= r.h AND h.start_ms < r.t{" AND h.end_ms <= r.t" if table == TABLE else ""}
                  AND h.start_ms >= {int(read["h"].min())} AND h.start_ms < {int(read["t"].max())}
                GROUP BY r.key{grp}{by}""").df()
        finally:
            con.unregister("_zz_ranges")

    # (the hours read lie whole in [h, t) and in their buckets, or the lengths or the ends below say not: then the
    # reasons' hours, those starting in [h, t), are the same)
    add(stored_rows(TABLE, f"max(h.end_ms) AS end_ms, sum(h.end_ms - h.start_ms) AS length, {agg_sums}, {counts}"))
    rests = [_KernelRest(con, ctx, ent[ent["h"] > ent["w0"]], "w0", "h"),  # the start inside an hour
             _KernelRest(con, ctx, ent[ent["w1"] > ent["t"]], "t", "w1")]  # after the last stored whole hour
    for rest in rests:
        add(rest.rows(bkey, bs, be))
    if outside or not np.array_equal(length, be - bs):
        return None  # hours missing from the store, or not cut at the buckets' bounds: the kernel answers
    out: dict[str, np.ndarray] = {c: (sums[c] / MS if c in TIME_ELEMENTS else sums[c]) for c in RAW_ELEMENTS}
    for c in ELEMENTS:
        out.setdefault(c, np.zeros(nb))
    present = {k: ent[f"has_{k}"].to_numpy(bool) for k in OPTIONAL_GROUPS}
    has_cal = ent["has_calendar"].to_numpy(bool)

    # the stored loss time per bucket, category and reason is read now, with the elements (a result is used after
    # the connection that read it is closed, and stands for the store as it was read); the kernel's rests' are
    # computed from the arrays they keep, when first asked for
    held = stored_rows(REASONS, "h.category, h.reason, sum(h.ms) AS ms", ", h.category, h.reason")

    def reasons(periods: pd.DataFrame) -> pd.DataFrame:
        """Loss time per bucket, category and reason: the stored hours' and the kernel's rests' summed."""
        parts = [p for p in (held, *(rest.reasons() for rest in rests)) if len(p)]
        if not parts:
            return reasons_table(pd.DataFrame(), periods)
        df = pd.concat(parts, ignore_index=True)
        rank = {c: i for i, c in enumerate(CATEGORY_PRECEDENCE)}
        df = pd.DataFrame({"bucket": bucket_of(df), "category": df["category"].map(rank).to_numpy(np.int64),
                           "reason": df["reason"].to_numpy(object), "ms": df["ms"].to_numpy(np.int64)})
        df = df[df["bucket"] >= 0]
        return reasons_table(df.groupby(["bucket", "category", "reason"], as_index=False)["ms"].sum(), periods)

    cols = [c for c in ctx.ent.columns] + ["w0", "w1", "key"]
    res = elements_table(ent[[c for c in cols if c in ent.columns]], buckets, out, present, seen, has_cal,
                         reasons, period)
    res.extent = ctx.extent if start is None or default_end(end) else None
    return res


def _buckets(con: duckdb.DuckDBPyConnection, ent: pd.DataFrame, period: str) -> pd.DataFrame | None:
    """The query's buckets (:func:`zhizao.kpi.elements.bucket_table`), None without any. (The stored hours are cut
    at the entities' shift bounds: a shift bucket is a sum of whole rows, which :func:`stored_elements` checks.)"""
    con.register("_zz_ent", ent)  # (shift buckets read the calendar of the entities' scopes)
    try:
        buckets = bucket_table(con, ent, period)
    finally:
        con.unregister("_zz_ent")
    return buckets if len(buckets) else None


class _KernelRest:
    """The kernel's raw elements of ``[ent[a], ent[b])`` of the entities ``ent`` (a window of time: the instants
    of a range that the stored hours do not hold), cut at the query's buckets' bounds, as rows that
    :func:`stored_elements` adds; their loss reasons when asked for."""

    def __init__(self, con: duckdb.DuckDBPyConnection, ctx: EngineContext, ent: pd.DataFrame, a: str, b: str
                 ) -> None:
        self.con, self.ctx = con, ctx
        self.part = ent.sort_values("key").assign(ra=ent[a], rb=ent[b])
        self.raw: RawElements | None = None
        self.key_of: np.ndarray = np.empty(0, np.int64)

    def rows(self, bkey: np.ndarray, bs: np.ndarray, be: np.ndarray) -> pd.DataFrame:
        """Per part of a bucket: key, start_ms, length, the raw elements and ``n_<kind>`` (empty: nothing to
        compute)."""
        part, ctx = self.part, self.ctx
        if not len(part):
            return pd.DataFrame()
        ks = part["key"].to_numpy(np.int64)
        ra = dict(zip(ks, part["ra"].to_numpy(np.int64)))
        rb = dict(zip(ks, part["rb"].to_numpy(np.int64)))
        m = np.isin(bkey, ks)
        k, s0, e0 = bkey[m], bs[m], be[m]
        lo = np.maximum(s0, np.array([ra[x] for x in k], np.int64))
        hi = np.minimum(e0, np.array([rb[x] for x in k], np.int64))
        keep = hi > lo
        ids = dict(zip(ks, part["entity_id"]))
        explicit = pd.DataFrame({"entity_id": [ids[x] for x in k[keep]], "start_ms": lo[keep], "end_ms": hi[keep]})
        ent = part.drop(columns=["w0", "w1"]).rename(columns={"ra": "w0", "rb": "w1"})[
            [c for c in ctx.ent.columns] + ["w0", "w1"]]
        eq = (ent["level"] == "equipment").to_numpy()
        ent = pd.concat([ent[eq], ent[~eq]])  # a partition lists its equipment first
        short = int(ent["w1"].max()) - int(ent["w0"].min()) < WINDOW_SHARE * data_span(ctx.ent)
        window = ReadWindow.read(self.con, ctx) if short else None
        with duckdb_memory(self.con, ctx.settings):
            raw = partition_elements(self.con, ctx, ent, "hour", buckets=explicit, raw=True, window=window)
        if raw is None:
            return pd.DataFrame()
        self.raw = raw
        rbk = raw.buckets
        self.key_of = part.set_index("entity_id").loc[raw.ent["entity_id"], "key"].to_numpy(np.int64)[
            rbk["key"].to_numpy(np.int64)]
        rows = pd.DataFrame({"key": self.key_of, "start_ms": rbk["start_ms"].to_numpy(np.int64),
                             "length": (rbk["end_ms"] - rbk["start_ms"]).to_numpy(np.int64)})
        for c in RAW_ELEMENTS:
            rows[c] = raw.values[c]
        for kind, c in PRESENCE.items():
            rows[f"n_{kind}"] = (~np.isnan(raw.values[c])).astype(np.int64)
        return rows

    def reasons(self) -> pd.DataFrame:
        """Loss time per part of a bucket (key, start_ms), category and reason [ms] (after :meth:`rows`)."""
        if self.raw is None:
            return pd.DataFrame()
        periods = pd.DataFrame({"bucket": np.arange(len(self.key_of)), "key": self.key_of,
                                "start_ms": self.raw.buckets["start_ms"].to_numpy(np.int64)})
        return self.raw.reasons(periods)
