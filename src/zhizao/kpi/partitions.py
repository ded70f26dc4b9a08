"""Bounded memory: the store-wide facts of a KPI computation, and the partitions of whole entities it runs in.

The elements of an equipment depend only on its own records (states, counts, energy, labour, quality), the
calendar entries of its scopes, the products table and a few store-wide facts. The store-wide facts are
derived first, by aggregate queries that hold nothing per record (:class:`EngineContext`):

- the entities: every equipment, and every work centre, area, site or enterprise with labour, energy or quality
  records of its own (scope entities), each with the zone it is bucketed in (its own, or its group's zone with
  ``zone_level``: the majority zone of a group spanning zones, or :attr:`zhizao.Settings.zones`);
- each equipment's data extent (first time stamp and horizon of its states and counts): equipment without any
  calendar is scheduled over it;
- each site's data extent (states, counts, energy, labour and quality booked to its equipment and scopes; records
  booked to an enterprise count for each of its sites), from which the default query range of every entity of
  the site is derived (whole buckets around the site's data);
- the record counts per entity, from which the partitions are sized.

Then the entities are cut into partitions (:func:`plan`): consecutive equipment in key order (their id order),
then the scope entities, each partition at most :attr:`zhizao.Settings.memory_mb` worth of records and buckets
(:data:`BYTES_PER`). Each partition is one call of the kernel,
:func:`zhizao.kpi.elements.partition_elements`, which reads only that partition's records (in the store's order,
so sums are the same to the last bit as in one pass) and returns its entities' elements; the loss-reason
table and the roll-up to groups (:func:`zhizao.kpi.rollup.rollup_stream`, which carries each group's running sums
from one partition to the next) are built from the partitions' results. Nothing the engine keeps per record lives
longer than its partition.

The loss-reason table, the data-quality rows and the KPIs are computed per row from the elements, so they need
no store-wide pass. A group's roll-up over equipment of several partitions is the sum of the partitions' partial
roll-ups (sums and flags; n_equipment adds up since partitions are disjoint).

Apache Spark runs the same kernel on partitions of its own (docs/scale.md): the context's facts travel with each
partition (:meth:`EngineContext.part`), so a partition is computed the same wherever it runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import duckdb
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from zhizao.errors import InputError
from zhizao.kpi.buckets import QueryEnd, ReadingTime, TimeStamp, bucket_edges, default_end, default_range, utc_ms
from zhizao.kpi.columns import floor_ms
from zhizao.messages import define
from zhizao.schema import LEVELS
from zhizao.settings import Settings
from zhizao.store.memory import lowered

EMPTY_RANGE = define("kpi.empty_range", "empty query range: end %(end)s is not after start %(start)s")
EMPTY_RANGE_SHORT = define("kpi.empty_range_short", "empty query range")
#: Per site (key None: all sites, or records without a site), the earliest and latest time stamp of its data [ms]
SiteExtent: TypeAlias = dict[str | None, tuple[int, int]]

#: Estimated peak bytes the kernel holds per state record, per count (production) record, per energy, labour or
#: quality record, and per bucket of an entity (measured on simulated plants: benchmarks/results/kpi_engine.md).
BYTES_PER = {"states": 300, "production": 160, "other": 200, "bucket": 1600}
#: Share of :attr:`Settings.memory_mb` given to DuckDB (its memory_limit); the rest is the kernel's.
DUCKDB_SHARE = 0.25
#: Smallest DuckDB memory limit [MiB].
DUCKDB_MIN_MB = 128


def duckdb_memory_mb(settings: Settings) -> int:
    """DuckDB's memory limit [MiB] under ``settings.memory_mb``."""
    return int(max(DUCKDB_MIN_MB, settings.memory_mb * DUCKDB_SHARE))


def kernel_budget_bytes(settings: Settings) -> float:
    """Bytes the kernel may hold for one partition."""
    return (settings.memory_mb - duckdb_memory_mb(settings)) * 2**20


@contextmanager
def duckdb_memory(con: duckdb.DuckDBPyConnection, settings: Settings) -> Iterator[None]:
    """Inside, DuckDB has its share of the memory budget as its memory limit (it spills beyond it, and drops
    cached blocks of the store): lowered if it is higher, restored exactly afterwards
    (:func:`zhizao.store.memory.lowered`). The limit holds for the whole database instance (every cursor of the
    store)."""
    with lowered(con, duckdb_memory_mb(settings)):
        yield


# -- entities -------------------------------------------------------------------------------------------------------
def filled_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The optional tables (energy, labour, quality) that hold any record: the engine skips the others."""
    return {t for (t,) in con.execute(" UNION ALL ".join(
        f"SELECT '{t}' WHERE EXISTS (SELECT 1 FROM {t})" for t in ("energy", "labour", "quality"))).fetchall()}


def entities(con: duckdb.DuckDBPyConnection, filled: set[str]) -> pd.DataFrame:
    """Every equipment (keys 0 .. n_eq - 1, by id), then the scopes that carry labour, energy or quality records
    of their own (by id): columns key, level, entity_id, equipment_id, work_center, area, site, enterprise, tz,
    epc."""
    eq = con.execute("""SELECT equipment_id, work_center, area, site, enterprise, coalesce(timezone, 'UTC') AS tz,
                               epc FROM equipment ORDER BY equipment_id""").df()
    eq.insert(0, "level", "equipment")
    eq.insert(1, "entity_id", eq["equipment_id"])
    scopes = con.execute("""
        SELECT DISTINCT scope FROM labour
        UNION SELECT DISTINCT scope FROM energy WHERE equipment_id IS NULL AND scope IS NOT NULL
        UNION SELECT DISTINCT scope FROM quality WHERE equipment_id IS NULL AND scope IS NOT NULL
        ORDER BY 1""").fetchall() if filled else []
    # each scope is an entity of the lowest level whose id it is (first match from work_center up), with the
    # ids of the levels above from its first equipment and the earliest time zone name of its equipment
    rows: list[dict[str, Any]] = []  # one row of the entity table each
    done = set(eq["equipment_id"])
    wanted = {scope for (scope,) in scopes} - done
    for lvl in LEVELS[1:]:
        if not wanted:
            break
        m = eq[eq[lvl].isin(wanted)]
        if m.empty:
            continue
        first = m.drop_duplicates(lvl)
        tz = m.groupby(lvl)["tz"].min()
        above = LEVELS[LEVELS.index(lvl):]
        for row in first.itertuples(index=False):
            scope = getattr(row, lvl)
            r = {"level": lvl, "entity_id": scope, "equipment_id": None, "tz": tz[scope], "epc": np.nan}
            for L in LEVELS[1:]:
                r[L] = getattr(row, L) if L in above else None
            rows.append(r)
        wanted -= set(first[lvl])
    rows.sort(key=lambda r: r["entity_id"])
    ent = pd.concat([eq, pd.DataFrame(rows, columns=eq.columns)], ignore_index=True) if rows else eq
    ent["key"] = np.arange(len(ent), dtype=np.int64)
    return ent


def group_zones(eq: pd.DataFrame, level: str, configured: Mapping[str, str] | None = None) -> dict[str, str]:
    """The bucket zone of each group of ``level`` whose equipment spans several time zones.

    One row per entity and period, always: the buckets of such a group (day, week, month, hour) are those of
    one zone, its configured zone (``configured``, e.g. :attr:`Settings.zones`) or else the zone of most of
    its equipment, the first by name among equally many (docs/reference/iso22400.md, "Time zones").

    Parameters
    ----------
    eq : pandas.DataFrame
        Equipment with the level's id column and ``tz``.
    level : {'work_center', 'area', 'site', 'enterprise'}
    configured : dict, optional
        Group id -> IANA zone; applies to single-zone groups too.

    Returns
    -------
    dict
        Group id -> zone, for the groups whose equipment's zones differ or that have a configured zone.

    Examples
    --------
    >>> import pandas as pd
    >>> eq = pd.DataFrame({"site": ["S", "S", "S", "T"], "tz": ["Asia/Kolkata", "UTC", "UTC", "UTC"]})
    >>> group_zones(eq, "site")
    {'S': 'UTC'}
    """
    configured = configured or {}
    m = eq[eq[level].notna()]
    out: dict[str, str] = {}
    for gid, tz in m.groupby(level)["tz"]:
        if gid in configured:
            out[gid] = configured[gid]
        elif tz.nunique() > 1:
            counts = tz.value_counts()
            out[gid] = min(counts.index[counts == counts.max()])
    return out


def zoned(ent: pd.DataFrame, zone_level: str | None, settings: Settings) -> pd.DataFrame:
    """``ent`` with column ``tz`` the zone each entity is bucketed in: with ``zone_level``, the zone of its group
    at that level where the group has one (:func:`group_zones`)."""
    if zone_level in (None, "equipment"):
        return ent
    zones = group_zones(ent[ent["level"] == "equipment"], zone_level, settings.zones)
    if zones:
        ent = ent.copy()
        mapped = ent[zone_level].map(zones)
        ent["tz"] = mapped.where(mapped.notna(), ent["tz"])
    return ent


# -- extents --------------------------------------------------------------------------------------------------------
#: Earliest and latest time stamp per site of the records booked to equipment or scopes in energy, labour
#: and quality (the latest is the first instant after the records: an inspection counts up to 1 ms after its
#: stamp).
_EXTENT_SQL = {
    "energy": """SELECT sc.site, min(coalesce(start, "end")), max("end")
                 FROM energy x JOIN sc ON sc.sid = coalesce(x.equipment_id, x.scope) GROUP BY ALL""",
    "labour": """SELECT sc.site, min(start), max("end") FROM labour x JOIN sc ON sc.sid = x.scope GROUP BY ALL""",
    "quality": """SELECT sc.site, min(ts), max(ts) + INTERVAL 1 MILLISECOND
                  FROM quality x JOIN sc ON sc.sid = coalesce(x.equipment_id, x.scope) GROUP BY ALL""",
}


def scope_records_extent(con: duckdb.DuckDBPyConnection, filled: set[str]) -> SiteExtent:
    """Earliest and latest time stamp [ms] of the energy, labour and quality records per site (key None: records
    without site; records booked to an enterprise count for each of its sites); empty if there are none."""
    if not filled:
        return {}
    rows = con.execute(f"""
        WITH sc AS (SELECT DISTINCT site, unnest([equipment_id, work_center, area, site, enterprise]) AS sid
                    FROM equipment)
        SELECT site, min(t0), max(t1) FROM ({" UNION ALL ".join(q for t, q in _EXTENT_SQL.items() if t in filled)})
        x(site, t0, t1) WHERE t0 IS NOT NULL GROUP BY ALL""").fetchall()
    return {site: (utc_ms(a), utc_ms(b)) for site, a, b in rows}


def widen(extent: SiteExtent, site: str | None, a: int, b: int) -> None:
    """Widen ``extent[site]`` (earliest, latest) to hold ``[a, b]``."""
    extent[site] = (min(a, extent[site][0]), max(b, extent[site][1])) if site in extent else (a, b)


def merge_extents(*parts: SiteExtent) -> SiteExtent:
    """Union of per-site extents, with key None for all sites (records without site count there too)."""
    out: SiteExtent = {}
    for part in parts:
        for site, (a, b) in part.items():
            widen(out, site, a, b)
    if out:
        out[None] = (min(a for a, _ in out.values()), max(b for _, b in out.values()))
    return out


def key_extent(ent: pd.DataFrame, keys: ArrayLike, first: ArrayLike, last: ArrayLike) -> SiteExtent:
    """Per site, earliest and latest of per-key time stamps [ms] (key None: equipment without site)."""
    out: SiteExtent = {}
    sites = ent["site"].to_numpy()[np.asarray(keys, np.int64)].tolist()
    for site, a, b in zip(sites, np.asarray(first).tolist(), np.asarray(last).tolist()):
        widen(out, None if pd.isna(site) else site, a, b)
    return out


#: Per equipment: first start and latest time stamp (start or end) of its states, and how many; its latest start
#: (exact, in microseconds) and a bound of its longest closed record (0: none), which a read of a window of time
#: needs (ReadWindow)
_STATES_STATS = f"""
    SELECT equipment_id, {floor_ms("min(start)")} AS s_first,
           {floor_ms('max(greatest(start, coalesce("end", start)))')} AS s_last, count(*) AS n_states,
           epoch_us(max(start)) AS s_last_start_us,
           coalesce(CAST(floor(max(epoch_us("end") - epoch_us(start)) / 1000) AS BIGINT) + 1, 0) AS s_maxlen
    FROM states GROUP BY ALL"""
#: Per equipment: first time stamp, latest end and first instant after its counts (a count at an instant needs
#: 1 ms after its stamp inside a half-open range), and how many; the longest of its count intervals
_PRODUCTION_STATS = f"""
    SELECT equipment_id, min(s) AS p_first, max(e) AS p_last, max(e + (e <= s)::BIGINT) AS p_after,
           count(*) AS n_production, max(e - s) AS p_maxlen
    FROM (SELECT equipment_id, {floor_ms('coalesce(start, "end")')} AS s, {floor_ms('"end"')} AS e FROM production)
    GROUP BY ALL"""
#: Per entity: energy, labour and quality records booked to it
_OTHER_COUNTS = {
    "energy": "SELECT coalesce(equipment_id, scope) AS entity_id, count(*) AS n FROM energy GROUP BY ALL",
    "labour": "SELECT scope AS entity_id, count(*) AS n FROM labour GROUP BY ALL",
    "quality": "SELECT coalesce(equipment_id, scope) AS entity_id, count(*) AS n FROM quality GROUP BY ALL",
}


#: Columns of :attr:`EngineContext.own` (-1: no record; counts 0)
_OWN = ("s_first", "s_last", "n_states", "s_last_start_us", "s_maxlen", "p_first", "p_last", "p_after",
        "n_production", "p_maxlen")


def _own_stats(con: duckdb.DuckDBPyConnection, ent: pd.DataFrame, n_eq: int, ids: list[str] | None = None,
               since: dict[str, int] | None = None) -> pd.DataFrame:
    """Per equipment key 0 .. n_eq - 1, the statistics of its states and counts (:attr:`EngineContext.own`), of
    every equipment or of equipment ``ids`` only (the others -1 and 0), of all records or, with ``since``, of
    the records from a row id on (per table; a table not named: none)."""
    where = "" if ids is None else " WHERE equipment_id IN (SELECT unnest($ids))"
    args = {} if ids is None else {"ids": ids}
    tw = {}
    for t in ("states", "production"):
        tw[t] = where
        if since is not None:
            cond = f"rowid >= {int(since[t])}" if t in since else "FALSE"
            tw[t] = f"{where} AND {cond}" if where else f" WHERE {cond}"
    st = con.execute(_STATES_STATS.replace("FROM states", "FROM states" + tw["states"]), args).df()
    pr = con.execute(_PRODUCTION_STATS.replace("FROM production)", "FROM production" + tw["production"] + ")"),
                     args).df()
    eq_ids = ent["entity_id"].iloc[:n_eq]
    pos = pd.Series(np.arange(n_eq, dtype=np.int64), index=eq_ids.to_numpy())
    st = st[st["equipment_id"].isin(eq_ids)]
    pr = pr[pr["equipment_id"].isin(eq_ids)]
    out = {c: np.full(n_eq, -1 if not c.startswith("n_") else 0, np.int64) for c in _OWN}
    sk = pos[st["equipment_id"]].to_numpy(np.int64)
    pk = pos[pr["equipment_id"]].to_numpy(np.int64)
    for c in ("s_first", "s_last", "n_states", "s_last_start_us", "s_maxlen"):
        out[c][sk] = st[c].to_numpy(np.int64)
    for c in ("p_first", "p_last", "p_after", "n_production", "p_maxlen"):
        out[c][pk] = pr[c].to_numpy(np.int64)
    return pd.DataFrame(out)


def _with_own(ent: pd.DataFrame, own: pd.DataFrame, n_eq: int) -> pd.DataFrame:
    """``ent`` with each equipment's data extent ``d0``, ``d1``, ``has_data`` and record counts from ``own``."""
    n = len(ent)
    d0, d1 = np.zeros(n, np.int64), np.zeros(n, np.int64)
    has = np.zeros(n, bool)
    n_states, n_prod = np.zeros(n, np.int64), np.zeros(n, np.int64)
    hs = own["n_states"].to_numpy() > 0
    hp = own["n_production"].to_numpy() > 0
    sk, pk = np.flatnonzero(hs), np.flatnonzero(hp)
    d0[sk], d1[sk], has[sk] = own["s_first"].to_numpy()[sk], own["s_last"].to_numpy()[sk], True
    n_states[sk] = own["n_states"].to_numpy()[sk]
    a, b = own["p_first"].to_numpy()[pk], own["p_last"].to_numpy()[pk]
    d0[pk] = np.where(has[pk], np.minimum(d0[pk], a), a)
    d1[pk] = np.where(has[pk], np.maximum(d1[pk], b), b)
    has[pk] = True
    n_prod[pk] = own["n_production"].to_numpy()[pk]
    return ent.assign(d0=d0, d1=d1, has_data=has, n_states=n_states, n_production=n_prod)


def _extent(ent: pd.DataFrame, own: pd.DataFrame, scope_extent: SiteExtent) -> SiteExtent:
    """The per-site data extent of the equipment statistics ``own`` and the scope records' ``scope_extent``."""
    sk = np.flatnonzero(own["n_states"].to_numpy() > 0)
    pk = np.flatnonzero(own["n_production"].to_numpy() > 0)
    return merge_extents(key_extent(ent, sk, own["s_first"].to_numpy()[sk], own["s_last"].to_numpy()[sk]),
                         key_extent(ent, pk, own["p_first"].to_numpy()[pk], own["p_after"].to_numpy()[pk]),
                         scope_extent)


@dataclass
class EngineContext:
    """What a KPI computation derives from the whole store before it works through the partitions.

    Attributes
    ----------
    settings : Settings
    filled : set of str
        The optional tables with records.
    ent : pandas.DataFrame
        The entities (see :func:`entities`) with ``tz`` the zone each is bucketed in, and per equipment ``d0``,
        ``d1`` (data extent [ms]), ``has_data``, and per entity ``n_states``, ``n_production``, ``n_other``
        (record counts).
    extent : dict
        Per site (key None: all), the earliest and latest time stamp of its data [ms]; empty without data.
    n_eq : int
        Number of equipment (keys 0 .. n_eq - 1).
    """

    settings: Settings
    filled: set[str]
    ent: pd.DataFrame
    extent: SiteExtent
    n_eq: int
    #: (period, zone, start, end) -> number of buckets
    _edges: dict[tuple[str, str, int, int], int] = field(default_factory=dict, repr=False)

    #: per equipment key: its states' first start and latest time stamp, its counts' first and latest time stamp and
    #: first instant after them [ms] and record counts (what :meth:`updated` rebuilds ``ent`` and ``extent`` from);
    #: None for a context read with an extent given
    own: pd.DataFrame | None = field(default=None, repr=False)
    #: :func:`scope_records_extent` of the store (None with ``own``)
    scope_extent: SiteExtent | None = field(default=None, repr=False)

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection, settings: Settings | None = None, zone_level: str | None = None,
             extent: SiteExtent | None = None) -> EngineContext:
        """The context of the store on ``con`` (aggregate queries only).

        ``extent``: per-site extents to use instead of the store's (a store holding part of a larger one)."""
        settings = settings or Settings()
        filled = filled_tables(con)
        ent = zoned(entities(con, filled), zone_level, settings)
        n_eq = int((ent["level"] == "equipment").sum())
        own = _own_stats(con, ent, n_eq)
        n_other = np.zeros(len(ent), np.int64)
        pos = pd.Series(ent["key"].to_numpy(), index=ent["entity_id"].to_numpy())
        for t, q in _OTHER_COUNTS.items():
            if t in filled:
                oc = con.execute(q).df()
                oc = oc[oc["entity_id"].isin(pos.index)]
                np.add.at(n_other, pos[oc["entity_id"]].to_numpy(np.int64), oc["n"].to_numpy(np.int64))
        ent = _with_own(ent, own, n_eq).assign(n_other=n_other)
        scope_extent = None
        if extent is None:
            scope_extent = scope_records_extent(con, filled)
            extent = _extent(ent, own, scope_extent)
        return cls(settings, filled, ent, extent, n_eq, own=own if scope_extent is not None else None,
                   scope_extent=scope_extent)

    def parts(self) -> tuple[pd.DataFrame, pd.Series, SiteExtent] | None:
        """What :meth:`resumed` rebuilds this context from: :attr:`own` with the equipment ids (column
        ``equipment_id``), the energy, labour and quality record counts by entity id, :attr:`scope_extent`; None
        for a context read with an extent given or in groups' zones."""
        if self.own is None or self.scope_extent is None:
            return None
        own = self.own.assign(equipment_id=self.ent["entity_id"].iloc[:self.n_eq].to_numpy(object))
        return own, pd.Series(self.ent["n_other"].to_numpy(np.int64), index=self.ent["entity_id"].to_numpy(object)), \
            dict(self.scope_extent)

    @classmethod
    def resumed(cls, con: duckdb.DuckDBPyConnection, settings: Settings, own: pd.DataFrame, n_other: pd.Series,
                scope_extent: SiteExtent, since: dict[str, int]) -> EngineContext | None:
        """:meth:`read` of the store on ``con`` (each entity in its own zone) from the parts of an earlier
        context of it (:attr:`own` with column ``equipment_id``, ``n_other`` by entity id, :attr:`scope_extent`)
        after state and count records were appended (``since``, as for :meth:`added`: only those records are
        read). None where the equipment are not those of the parts."""
        filled = filled_tables(con)
        ent = zoned(entities(con, filled), None, settings)
        n_eq = int((ent["level"] == "equipment").sum())
        if own["equipment_id"].tolist() != ent["entity_id"].iloc[:n_eq].tolist():
            return None
        own = own[list(_OWN)].reset_index(drop=True)
        other = n_other.reindex(ent["entity_id"].to_numpy()).fillna(0).to_numpy(np.int64)
        ent = _with_own(ent, own, n_eq).assign(n_other=other)
        ctx = cls(settings, filled, ent, _extent(ent, own, scope_extent), n_eq, own=own, scope_extent=scope_extent)
        return ctx.added(con, since) if since else ctx

    def added(self, con: duckdb.DuckDBPyConnection, since: dict[str, int]) -> EngineContext | None:
        """This context after state and count records were appended (``since``: per table, the row id from which
        they are new) and nothing else changed: each equipment's statistics merged with those of its new records
        (first and latest times, counts and longest records are minima, maxima and sums), reading those records
        only; the same as :meth:`read` (tested). None for a context read with an extent given."""
        if self.own is None or self.scope_extent is None:
            return None
        new = _own_stats(con, self.ent, self.n_eq, since=since)
        old = self.own
        merged = {}
        for c in _OWN:
            a, b = old[c].to_numpy(np.int64), new[c].to_numpy(np.int64)
            if c.startswith("n_"):
                merged[c] = a + b
            elif c in ("s_first", "p_first"):  # -1: no record
                merged[c] = np.where(a < 0, b, np.where(b < 0, a, np.minimum(a, b)))
            else:
                merged[c] = np.maximum(a, b)
        own = pd.DataFrame(merged)
        ent = _with_own(self.ent.drop(columns=["n_other"]), own, self.n_eq).assign(n_other=self.ent["n_other"])
        ent = ent[list(self.ent.columns)]
        return EngineContext(self.settings, self.filled, ent, _extent(ent, own, self.scope_extent), self.n_eq,
                             own=own, scope_extent=self.scope_extent)

    def updated(self, con: duckdb.DuckDBPyConnection, changed: set[str] | frozenset[str]) -> EngineContext | None:
        """This context after state or production records of the equipment ``changed`` were added and nothing else
        changed: the statistics of those equipment read again from ``con``, the rest kept; the same as
        :meth:`read` on ``con`` (tested). None for a context read with an extent given."""
        if self.own is None or self.scope_extent is None:
            return None
        eq_ids = self.ent["entity_id"].iloc[:self.n_eq]
        keys = np.flatnonzero(eq_ids.isin(list(changed)).to_numpy())
        if not len(keys):
            return self
        ids = eq_ids.iloc[keys].tolist()
        own = self.own.copy()
        fresh = _own_stats(con, self.ent, self.n_eq, ids)
        own.iloc[keys] = fresh.iloc[keys]
        ent = _with_own(self.ent.drop(columns=["n_other"]), own, self.n_eq).assign(n_other=self.ent["n_other"])
        ent = ent[list(self.ent.columns)]
        return EngineContext(self.settings, self.filled, ent, _extent(ent, own, self.scope_extent), self.n_eq,
                             own=own, scope_extent=self.scope_extent)

    # -- ranges and buckets
    def ranges(self, period: str, start: TimeStamp | None = None, end: QueryEnd | None = None
               ) -> pd.DataFrame | None:
        """The entities with their query range ``w0``, ``w1`` [ms]: ``[start, end)`` where given, else whole
        ``period`` buckets around the site's data (in each entity's bucket zone), the last one cut at the
        reading time when ``end`` is a :class:`ReadingTime` (:func:`zhizao.kpi.buckets.default_range`); None
        when no range can be derived (no data at all).

        Raises
        ------
        InputError
            An empty range.
        """
        ent = self.ent.copy()
        if start is not None and not default_end(end):
            w0, w1 = utc_ms(start), utc_ms(end)  # type: ignore[arg-type]
            if w1 <= w0:
                raise InputError(EMPTY_RANGE, start=str(start), end=str(end))
            ent["w0"], ent["w1"] = w0, w1
            return ent
        if not self.extent:
            return None
        reading = end.ms if isinstance(end, ReadingTime) else None
        ranges: dict[tuple[str | None, str], tuple[int, int]] = {}  # (site, zone) -> range
        starts: list[int] = []
        ends: list[int] = []
        for site, tz in zip(ent["site"], ent["tz"]):
            site = None if pd.isna(site) else site
            if (site, tz) not in ranges:
                ranges[site, tz] = default_range(*self.extent.get(site, self.extent[None]), period, tz, reading)
            a, b = ranges[site, tz]
            starts.append(a if start is None else utc_ms(start))
            ends.append(b if default_end(end) else utc_ms(end))  # type: ignore[arg-type]
        ent["w0"], ent["w1"] = starts, ends
        if (ent["w1"] <= ent["w0"]).any():
            raise InputError(EMPTY_RANGE_SHORT)
        return ent

    def n_buckets(self, ent: pd.DataFrame, period: str) -> NDArray[np.int64]:
        """Number of ``period`` buckets of each entity of ``ent`` (with ``w0``, ``w1``); shifts estimated (one per
        8 h)."""
        if period == "all":
            return np.ones(len(ent), np.int64)
        if period == "shift":
            shifts: NDArray[np.int64] = np.maximum((ent["w1"] - ent["w0"]).to_numpy(np.int64) // (8 * 3600 * 1000), 1)
            return shifts
        out = np.zeros(len(ent), np.int64)
        for (tz, a, b), idx in ent.groupby(["tz", "w0", "w1"]).indices.items():
            k = (period, tz, a, b)
            if k not in self._edges:
                self._edges[k] = bucket_edges(int(a), int(b), period, tz).size - 1
            out[idx] = self._edges[k]
        return out


# -- partitions ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Part:
    """A partition: keys of :attr:`EngineContext.ent` (sorted: equipment, then scope entities)."""

    keys: NDArray[np.int64]


def cost(ent: pd.DataFrame, n_buckets: ArrayLike) -> NDArray[np.float64]:
    """Estimated peak bytes of each entity's share of a partition (:data:`BYTES_PER`)."""
    out: NDArray[np.float64] = (ent["n_states"].to_numpy(np.float64) * BYTES_PER["states"]
                                + ent["n_production"].to_numpy(np.float64) * BYTES_PER["production"]
                                + ent["n_other"].to_numpy(np.float64) * BYTES_PER["other"]
                                + np.asarray(n_buckets, np.float64) * BYTES_PER["bucket"])
    return out


def plan(costs: ArrayLike, budget: float) -> list[Part]:
    """Consecutive runs of entities (in key order) whose costs add up to at most ``budget`` each (an entity
    costlier than the budget is a partition of its own)."""
    costs = np.asarray(costs, np.float64)
    parts: list[Part] = []
    start, acc = 0, 0.0
    for i, c in enumerate(costs.tolist()):
        if i > start and acc + c > budget:
            parts.append(Part(np.arange(start, i, dtype=np.int64)))
            start, acc = i, 0.0
        acc += c
    if costs.size:
        parts.append(Part(np.arange(start, costs.size, dtype=np.int64)))
    return parts
