"""ISO 22400-2 elements per entity and time bucket: the kernel of zhizao.

Entities are equipment, plus every work_center, area, site or enterprise to which labour, energy or quality
records are booked directly. Every element is a sum over time or over records, so elements of any group are
the sums of its members' elements (see :mod:`zhizao.kpi.rollup`).

The time model (reference/iso22400.md, "Time model")::

    ct   calendar time of the bucket
    pot  planned operation time: shift time of the calendar, minus holidays, minus time in state category
         not_scheduled. Equipment under a calendar is scheduled whether it reports or not; a calendar without
         shift entries schedules around the clock minus its holidays; equipment without any calendar entry is
         scheduled around the clock over its own data extent (flag no_calendar).
    pdt  planned downtime: the part of pot covered by calendar breaks or planned_downtime entries, or by states
         of category planned_downtime or unscheduled
    pbt  planned busy time = pot - pdt
    apt, aust, adot   time in states production, setup, no_order inside pbt
    adet              time in unplanned_downtime and minor_stop inside pbt (adet_minor: the minor stops)
    aupt = apt + aust;  aubt = aupt + adet
    unaccounted       pbt time with no state record (pbt - aubt - adot); a data-quality figure
    pmt               planned maintenance: calendar planned_downtime, or planned_downtime states inside pbt
    ttr               failure time (unplanned_downtime, not minor stops) inside pbt; cmt = ttr
    fe                failure events: unplanned_downtime runs at or above the minor-stop threshold that
                      overlap pbt, counted in the bucket of their first instant inside pbt (model.failure_events)
    outside_pbt       production, setup and stop time outside pbt (states outside the calendar; flagged)
    overlap           time covered by more than one state record (counted once; flagged)

State records without ``end`` last until the next record of the equipment with a strictly later start; the
last ones until the equipment's data horizon (its latest time stamp in states and production). Overlapping
records, records sharing a start among them, are resolved by :data:`zhizao.schema.CATEGORY_PRECEDENCE`; a
raw state name never decides. A ``minor_stop`` record is a minor stop whatever its length. An unplanned_downtime run shorter than the minor-stop threshold
is a minor stop; one of exactly the threshold is a failure. Runs are classified on their full length, not
the part inside the query, so results do not depend on how a range is split.

Gaps are gaps: a bucket without any record of production, energy, labour or quality has null elements of that
kind (not zeros); counts_missing and energy_missing measure production time without counts or energy of
equipment that has a counter or a meter (:mod:`zhizao.kpi.coverage`).

Counts (production) stamped at a time (no start) belong to the bucket ``[start, end)`` that contains the
stamp; counts over an interval are split in proportion to the overlap. Energy and labour intervals are
split the same way; quality results are counted at their time stamp.

One row per entity and bucket; with ``zone_level``, the members of a group that spans time zones are
bucketed in the group's zone (:func:`group_zones`), so the roll-up has one row per group and period. The
readings the standard leaves open are in docs/reference/iso22400.md.

How it is computed (all interval arithmetic is in :mod:`zhizao.kpi.intervals`): the state records are read
in the store's order and given their ends (:mod:`zhizao.kpi.states`) while production is read on a second
connection (:mod:`zhizao.kpi.production`); the calendar is laid out as two layers per equipment
(:mod:`zhizao.kpi.calendar_layers`) and cuts each bucket into a few windows (inside pot or not, inside planned
downtime or not). The states are resolved into disjoint runs of one category per equipment and never cut:
the time of every category inside every window is the difference of the categories' prefix sums at the
window's bounds (:func:`zhizao.kpi.intervals.time_between`), exactly in integer milliseconds. Large stores
are done in parts of whole equipment on two threads, and production is split over the buckets on a worker
thread meanwhile. The loss-reason table is computed only when it is first asked for.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise
from threading import Lock

import duckdb
import numpy as np
import pandas as pd

from zhizao.errors import DataSufficiencyError, InputError
from zhizao.kpi import model
from zhizao.messages import define
from zhizao.kpi.buckets import bucket_edges, default_range
from zhizao.kpi.calendar_layers import calendar_layers
from zhizao.kpi.energy import energy_intervals_sql
from zhizao.kpi.intervals import (
    MS,
    Timeline,
    locate,
    overlay,
    resolve,
    split_timelines,
    take,
    time_between,
    unique_points,
)
from zhizao.kpi.production import production_elements, production_records
from zhizao.kpi.states import state_records
from zhizao.schema import CATEGORY_PRECEDENCE, LEVELS
from zhizao.settings import Settings

RANK = {c: i for i, c in enumerate(CATEGORY_PRECEDENCE)}
R_UNPLANNED, R_MINOR, R_SETUP, R_PRODUCTION, R_NO_ORDER, R_PLANNED, R_UNSCHED, R_NOT_SCHED = range(8)
LOSS_RANKS = (R_UNPLANNED, R_MINOR, R_SETUP, R_NO_ORDER)
IS_LOSS = np.isin(np.arange(len(CATEGORY_PRECEDENCE)), LOSS_RANKS)
EMPTY_RANGE = define("kpi.empty_range", "empty query range: end %(end)s is not after start %(start)s")
EMPTY_RANGE_SHORT = define("kpi.empty_range_short", "empty query range")
SHIFT_NEEDS_CALENDAR = define("kpi.shift_needs_calendar", "period 'shift' needs calendar entries of kind shift")
#: state records from which the engine splits the per-equipment work into parts done on two threads
PARALLEL_STATES = 200_000
#: parts of whole equipment the state work is split into (taken in turn by two threads, for balance)
STATE_PARTS = 6


TIME_ELEMENTS = ("ct", "pot", "pdt", "pbt", "apt", "aust", "aupt", "adet", "adet_minor", "aubt", "adot",
                 "unaccounted", "pmt", "ttr", "unscheduled", "outside_pbt", "overlap")
COUNT_ELEMENTS = ("fe",)
PRODUCTION_ELEMENTS = ("pq", "gq", "sq", "rq", "ideal_time", "ideal_good_time", "pq_no_pri", "output_value")
ENERGY_ELEMENTS = ("energy_kwh", "energy_kgce", "counter_resets")
LABOUR_ELEMENTS = ("apat", "apwt", "apat_no_apwt", "earned_hours")
QUALITY_ELEMENTS = ("ip", "gp", "defects")
CAPACITY_ELEMENTS = ("epc",)
#: Outages (see :mod:`zhizao.kpi.coverage`): production time [s] in buckets without count records
#: (counts_missing) or without energy records (energy_missing), of equipment that has a counter or a meter
OUTAGE_ELEMENTS = ("counts_missing", "energy_missing")
ELEMENTS = (TIME_ELEMENTS + COUNT_ELEMENTS + PRODUCTION_ELEMENTS + ENERGY_ELEMENTS + LABOUR_ELEMENTS
            + QUALITY_ELEMENTS + CAPACITY_ELEMENTS + OUTAGE_ELEMENTS)
#: Elements that are null (no data) in a bucket where the entity has no record of the source table, rather
#: than zero (gaps are gaps: docs/reference/iso22400.md, "Gaps").
OPTIONAL_GROUPS = {"production": PRODUCTION_ELEMENTS, "energy": ENERGY_ELEMENTS, "labour": LABOUR_ELEMENTS,
                   "quality": QUALITY_ELEMENTS}


class ElementsResult:
    """Output of :func:`compute_elements`.

    Attributes
    ----------
    elements : pandas.DataFrame
        One row per entity and bucket.
    reasons : pandas.DataFrame
        Loss time per equipment, bucket, category and reason (inside pbt). Computed on first access (from
        arrays kept with the result, not from the store), as only the report and the dashboard need it.
    period : str
    """

    def __init__(self, elements: pd.DataFrame, reasons, period: str):
        self.elements = elements
        self._reasons = reasons  # a DataFrame, or a function computing it
        self.period = period
        #: per-site (earliest, latest) time stamp [ms] from which default query ranges were derived (key None:
        #: all sites); None when the query range was given or there were no data
        self.extent: dict | None = None

    @property
    def reasons(self) -> pd.DataFrame:
        if callable(self._reasons):
            self._reasons = self._reasons()
        return self._reasons


def _filled(con) -> set[str]:
    """The optional tables (energy, labour, quality) that hold any record: the engine skips the others."""
    return {t for (t,) in con.execute(" UNION ALL ".join(
        f"SELECT '{t}' WHERE EXISTS (SELECT 1 FROM {t})" for t in ("energy", "labour", "quality"))).fetchall()}


def _numpy_rows(con, filled: set[str], table: str, sql: str) -> dict:
    """The columns of query ``sql`` on ``table`` as numpy arrays; only an empty ``key`` if ``table`` is empty."""
    return con.execute(sql).fetchnumpy() if table in filled else {"key": np.empty(0, np.int64)}


def _entities(con, filled: set[str]) -> pd.DataFrame:
    eq = con.execute("""SELECT equipment_id, work_center, area, site, enterprise, coalesce(timezone, 'UTC') AS tz,
                               epc FROM equipment ORDER BY equipment_id""").df()
    eq.insert(0, "level", "equipment")
    eq.insert(1, "entity_id", eq["equipment_id"])
    # scopes that carry labour, energy or quality records of their own
    scopes = con.execute("""
        SELECT DISTINCT scope FROM labour
        UNION SELECT DISTINCT scope FROM energy WHERE equipment_id IS NULL AND scope IS NOT NULL
        UNION SELECT DISTINCT scope FROM quality WHERE equipment_id IS NULL AND scope IS NOT NULL
        ORDER BY 1""").fetchall() if filled else []
    # each scope is an entity of the lowest level whose id it is (first match from work_center up), with the
    # ids of the levels above from its first equipment and the earliest time zone name of its equipment
    rows = []
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


def utc_ms(ts) -> int:
    """Milliseconds since the Unix epoch of a time stamp; a naive one is read as UTC."""
    return int(pd.Timestamp(ts).tz_convert("UTC").value // 1_000_000) if pd.Timestamp(ts).tzinfo else \
        int(pd.Timestamp(ts).tz_localize("UTC").value // 1_000_000)


#: Earliest and latest time stamp per site of the records booked to equipment or scopes in energy, labour
#: and quality (the latest is the first instant after the records: an inspection counts up to 1 ms after its
#: stamp). States and production are covered from the records the engine reads anyway.
_EXTENT_SQL = {
    "energy": """SELECT sc.site, min(coalesce(start, "end")), max("end")
                 FROM energy x JOIN sc ON sc.sid = coalesce(x.equipment_id, x.scope) GROUP BY ALL""",
    "labour": """SELECT sc.site, min(start), max("end") FROM labour x JOIN sc ON sc.sid = x.scope GROUP BY ALL""",
    "quality": """SELECT sc.site, min(ts), max(ts) + INTERVAL 1 MILLISECOND
                  FROM quality x JOIN sc ON sc.sid = coalesce(x.equipment_id, x.scope) GROUP BY ALL""",
}


def _scope_records_extent(con, filled: set[str]) -> dict[str | None, tuple[int, int]]:
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


def _widen(extent: dict, site, a: int, b: int) -> None:
    """Widen ``extent[site]`` (earliest, latest) to hold ``[a, b]``."""
    extent[site] = (min(a, extent[site][0]), max(b, extent[site][1])) if site in extent else (a, b)


def _merge_extents(*parts: dict) -> dict:
    """Union of per-site extents, with key None for all sites (records without site count there too)."""
    out: dict = {}
    for part in parts:
        for site, (a, b) in part.items():
            _widen(out, site, a, b)
    if out:
        out[None] = (min(a for a, _ in out.values()), max(b for _, b in out.values()))
    return out


def _key_extent(ent: pd.DataFrame, keys, first, last) -> dict:
    """Per site, earliest and latest of per-key time stamps [ms]."""
    out: dict = {}
    sites = ent["site"].to_numpy()[np.asarray(keys, np.int64)].tolist()
    for site, a, b in zip(sites, np.asarray(first).tolist(), np.asarray(last).tolist()):
        _widen(out, None if pd.isna(site) else site, a, b)
    return out


def group_zones(eq: pd.DataFrame, level: str, configured: dict | None = None) -> dict[str, str]:
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
    out = {}
    for gid, tz in m.groupby(level)["tz"]:
        if gid in configured:
            out[gid] = configured[gid]
        elif tz.nunique() > 1:
            counts = tz.value_counts()
            out[gid] = min(counts.index[counts == counts.max()])
    return out


def compute_elements(con: duckdb.DuckDBPyConnection, period: str = "day", start=None, end=None,
                     settings: Settings | None = None, zone_level: str | None = None,
                     extent: dict | None = None) -> ElementsResult:
    """ISO 22400 elements of every entity per ``period`` bucket over ``[start, end)``.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        An open zhizao store.
    period : {'hour', 'shift', 'day', 'week', 'month', 'all'}
        Buckets in each entity's IANA time zone; ``shift`` buckets are the calendar's shift entries.
    start, end : str, datetime or pandas.Timestamp, optional
        Query range (time stamps without offset are UTC). Defaults to whole buckets around the data.
    settings : Settings, optional
    zone_level : {'work_center', 'area', 'site', 'enterprise'}, optional
        Bucket every entity of a group of this level in the group's zone (:func:`group_zones`), so that
        the group's members share bucket bounds and roll up to one row per period. Default: each entity's
        own zone.
    extent : dict, optional
        Per site, the (earliest, latest) time stamp [ms] of its data, key None for all sites (as
        ``ElementsResult.extent`` gives it): default query ranges are derived from it instead of from this
        store's records. For a store that holds part of a larger one (:mod:`zhizao.scale`).

    Returns
    -------
    ElementsResult
        ``elements``: columns level, entity_id, equipment_id, work_center, area, site, enterprise, tz,
        period_start, period_end (tz-aware, UTC), no_calendar and no_data (bool: equipment without any
        calendar entry; equipment without any state or production record) and :data:`ELEMENTS` (times in seconds,
        quantities in units, energy in kWh and kgce, labour in hours); null where the entity has no records
        of that kind. ``reasons``: loss seconds inside pbt by equipment, bucket, category and reason.

    Raises
    ------
    ValueError
        Unknown period, an empty range, or ``shift`` buckets without shift entries.
    """
    settings = settings or Settings()
    filled = _filled(con)
    ent = _entities(con, filled)
    if ent.empty:
        return ElementsResult(_empty_elements(), _empty_reasons(), period)
    if zone_level not in (None, "equipment"):
        zones = group_zones(ent[ent["level"] == "equipment"], zone_level, settings.zones)
        if zones:
            mapped = ent[zone_level].map(zones)
            ent["tz"] = mapped.where(mapped.notna(), ent["tz"])
    view = ent[["key", "level", "entity_id", "equipment_id", "work_center", "area", "site", "enterprise"]]
    con.register("_zz_ent", view)
    cur = con.cursor()  # a second connection: production is read while this one reads the states
    cur.register("_zz_ent", view)
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:  # production, and the second part of the states
            eq_ids = ent.loc[ent["level"] == "equipment", "entity_id"].tolist()  # keys 0 .. n_eq - 1
            p_records = pool.submit(production_records, cur, eq_ids)
            sr = state_records(con, lambda: {k: b for k, (_a, b, _c) in p_records.result()[1].items()}, eq_ids)
            pe = p_records.result()[1]
            if start is not None and end is not None:
                w0, w1 = utc_ms(start), utc_ms(end)
                if w1 <= w0:
                    raise InputError(EMPTY_RANGE, start=str(start), end=str(end))
                ent["w0"], ent["w1"] = w0, w1
            else:
                # by default each site's range: whole buckets around that site's data
                if extent is None:
                    extent = _merge_extents(
                        _key_extent(ent, sr.keys_with_states, sr.first, sr.last),
                        _key_extent(ent, list(pe), [a for a, _b, _c in pe.values()], [c for *_, c in pe.values()]),
                        _scope_records_extent(con, filled))
                if not extent:
                    return ElementsResult(_empty_elements(), _empty_reasons(), period)
                ranges = {}
                w0, w1 = [], []
                for site, tz in zip(ent["site"], ent["tz"]):
                    if (site, tz) not in ranges:
                        ranges[site, tz] = default_range(*extent.get(site, extent[None]), period, tz)
                    a, b = ranges[site, tz]
                    w0.append(a if start is None else utc_ms(start))
                    w1.append(b if end is None else utc_ms(end))
                ent["w0"], ent["w1"] = w0, w1
                if (ent["w1"] <= ent["w0"]).any():
                    raise InputError(EMPTY_RANGE_SHORT)
            thr_ms = round(settings.minor_stop_threshold * MS)
            lo, hi = _failure_lookback(sr, int(ent["w0"].min()) - thr_ms), int(ent["w1"].max()) + thr_ms
            _data_extent(ent, sr, pe)
            tl = Timeline(lo - 1, hi + 1, len(ent))
            result = _compute(con, ent, tl, period, lo, hi, thr_ms, settings, sr, p_records, pool, filled)
            result.extent = extent if start is None or end is None else None
            return result
    finally:
        con.unregister("_zz_ent")
        cur.close()


def _failure_lookback(sr, lo: int) -> int:
    """``lo`` moved back to the start of every failure run (unplanned_downtime records, which outrank every
    other category, chained where they overlap or touch) that runs across it, so a failure's first instant
    inside planned busy time is found wherever the run began (failure events are counted there)."""
    u = sr.rank == R_UNPLANNED
    us, ue = sr.start[u], sr.end[u]
    while True:
        across = (us < lo) & (ue >= lo)
        if not across.any():
            return lo
        lo = int(us[across].min())


def _data_extent(ent: pd.DataFrame, sr, pe: dict) -> None:
    """Columns ``d0``, ``d1`` (first time stamp and horizon of each equipment's states and production [ms];
    equal where there is none) and ``has_data`` of ``ent`` (equipment rows first, keys 0 .. n_eq - 1)."""
    n = len(ent)
    d0, d1 = np.zeros(n, np.int64), np.zeros(n, np.int64)
    has = np.zeros(n, bool)
    k = np.asarray(sr.keys_with_states, np.int64)
    d0[k], d1[k], has[k] = sr.first, sr.last, True
    for key, (a, b, _c) in pe.items():
        d0[key], d1[key] = (min(d0[key], a), max(d1[key], b)) if has[key] else (a, b)
        has[key] = True
    ent["d0"], ent["d1"], ent["has_data"] = d0, d1, has


def _bucket_segments(con, ent, tl, period):
    """Bucket segments of every entity on the composite axis, and their (key, start, end) table."""
    starts, ends, keys = [], [], []
    if period == "shift":
        cal = con.execute("""
            SELECT k.key, epoch_ms(c.start) s, epoch_ms(c."end") e FROM calendar c
            JOIN (SELECT key, unnest([entity_id, equipment_id, work_center, area, site, enterprise]) AS sid
                  FROM _zz_ent) k ON c.scope = k.sid
            WHERE c.kind = 'shift' ORDER BY k.key, s""").fetchnumpy()
        if len(cal["s"]) == 0:
            raise DataSufficiencyError(SHIFT_NEEDS_CALENDAR)
        df = pd.DataFrame({"key": cal["key"], "s": cal["s"], "e": cal["e"]}).drop_duplicates()
        df = df.merge(ent[["key", "w0", "w1"]], on="key")
        df["s"] = np.maximum(df["s"], df["w0"])
        df["e"] = np.minimum(df["e"], df["w1"])
        df = df.sort_values(["key", "s", "e"])
        # overlapping shift entries: a later shift starts where the earlier one ended
        prev_end = df.groupby("key")["e"].transform(lambda x: x.cummax().shift(1)).fillna(-np.inf)
        df["s"] = np.maximum(df["s"], prev_end).astype(np.int64)
        df = df[df["e"] > df["s"]]
        keys, starts, ends = [df["key"].to_numpy()], [df["s"].to_numpy()], [df["e"].to_numpy()]
    else:
        cache = {}
        for tz, w0, w1, grp in ((tz, w0, w1, g) for (tz, w0, w1), g in ent.groupby(["tz", "w0", "w1"])):
            if (tz, w0, w1) not in cache:
                cache[(tz, w0, w1)] = bucket_edges(int(w0), int(w1), period, tz)
            edges = cache[(tz, w0, w1)]
            n = edges.size - 1
            k = grp["key"].to_numpy()
            keys.append(np.repeat(k, n))
            starts.append(np.tile(edges[:-1], k.size))
            ends.append(np.tile(edges[1:], k.size))
    key = np.concatenate(keys).astype(np.int64)
    s = np.concatenate(starts).astype(np.int64)
    e = np.concatenate(ends).astype(np.int64)
    order = np.lexsort((s, key))
    key, s, e = key[order], s[order], e[order]
    return tl.encode(key, s), tl.encode(key, e), pd.DataFrame({"key": key, "start_ms": s, "end_ms": e})


def _compute(con, ent, tl, period, lo, hi, thr_ms, settings, sr, p_records, pool, filled) -> ElementsResult:
    n_eq = int((ent["level"] == "equipment").sum())
    bs, be, buckets = _bucket_segments(con, ent, tl, period)
    nb = len(buckets)
    out = {name: np.zeros(nb) for name in ELEMENTS}
    # production elements on the worker thread while this one does the states (numpy releases the GIL)
    p_elements = pool.submit(lambda: production_elements(p_records.result()[0], tl, bs, be, nb))
    bkey = buckets["key"].to_numpy()

    # -- time elements: the calendar cuts each bucket into windows (in pot or not, in planned downtime or
    # not); the time of each state category inside each window comes from prefix sums over the state
    # segments, so the millions of segments are never cut (kpi.intervals.time_between). Large stores are
    # done in parts of whole equipment, taken in turn by this thread and one of the worker pool (numpy releases
    # the GIL); the worker starts at once (resolving states needs no calendar) and waits for the windows.
    n_parts = STATE_PARTS if sr.key.size >= PARALLEL_STATES else 1
    bounds = sorted({0, sr.key.size, *(int(np.searchsorted(sr.key, sr.key[sr.key.size * i // n_parts]))
                                        for i in range(1, n_parts))})
    parts = [(a, b) for a, b in pairwise(bounds) if b > a]
    windows: Future = Future()
    done: list = [None] * len(parts)
    todo, lock = iter(range(len(parts))), Lock()

    def work(cut, sr=sr):
        while True:
            with lock:
                i = next(todo, None)
            if i is None:
                return
            done[i] = _state_times(sr, *parts[i], tl, lo, hi, thr_ms, cut, nb)

    helper = pool.submit(work, windows.result) if len(parts) > 1 else None
    try:
        # -- calendar -> POT layer (shift minus holiday) and planned-downtime layer
        (pot_s, pot_e), (pd_s, pd_e, pd_r), has_cal = calendar_layers(con, ent.iloc[:n_eq], tl)
        has_cal = np.r_[has_cal, np.zeros(len(ent) - n_eq, bool)]
        ps, pe, (ib, ipot, ipd) = overlay([], [(bs, be), (pot_s, pot_e), (pd_s, pd_e)])
        cut = np.r_[ps, pe[-1:]]  # the pieces are consecutive
        in_pbt = (ipot >= 0) & (ipd < 0)  # planned busy time by the calendar (states cannot cut a failure)
        windows.set_result((cut, ps[in_pbt], pe[in_pbt], ib[in_pbt]))
    finally:
        if not windows.done():  # the calendar failed: release the worker waiting for it
            windows.set_exception(RuntimeError("no windows: the calendar could not be read"))
    work(windows.result())
    if helper is not None:
        helper.result()
    n_r = len(CATEGORY_PRECEDENCE)
    n_windows = max(cut.size - 1, 0)  # none when no bucket lies in the query range
    d, ov = np.zeros((n_windows, n_r)), np.zeros(n_windows)
    for x in done:  # each part's windows (those around its equipment's timelines)
        d[x.windows] += x.d
        if x.ov is not None:
            ov[x.windows] += x.ov
    # sum the windows per bucket and class: 0 outside pot, 1 planned maintenance, 2 break (both planned
    # downtime by the calendar), 3 planned busy time by the calendar (model.CAL_*); the elements are
    # model.time_elements of these sums
    pdk = take(pd_r, ipd, -1)  # 0 maintenance, 1 break
    cls = np.where(ipot < 0, 0, np.where(ipd < 0, 3, 1 + pdk))
    m = ib >= 0
    group = (ib * 4 + cls)[m]

    def per_class(x):  # summed milliseconds per bucket and class (integers, exact in float64 below 2**53)
        return np.bincount(group, weights=x[m], minlength=nb * 4).reshape(nb, 4)

    length = per_class((pe - ps).astype(np.float64))
    ms = model.time_elements(length, [per_class(d[:, r]) for r in range(n_r)])
    del d
    ms["overlap"] = per_class(ov).sum(axis=1)
    for name, x in ms.items():
        out[name] = x / MS
    out["fe"] = sum((x.fe for x in done), np.zeros(nb))

    # loss reasons inside pbt: computed when first asked for (the report and the dashboard need them, the
    # KPI tables do not) from the segments and records kept for it
    reason_inputs = {"bs": bs, "be": be, "pot": (pot_s, pot_e), "pdl": (pd_s, pd_e), "parts": done, "sr": sr}
    del sr

    # -- production (computed on the worker thread meanwhile). present: entities with any record of a kind;
    # in_bucket: buckets with any record of the kind
    present = {g: np.zeros(len(ent), bool) for g in OPTIONAL_GROUPS}
    in_bucket = {g: np.zeros(nb, bool) for g in OPTIONAL_GROUPS}
    p_out, p_keys, in_bucket["production"] = p_elements.result()
    out.update(p_out)
    present["production"][p_keys] = True

    # -- energy (interval readings and cumulative register steps)
    en = _numpy_rows(con, filled, "energy", f"""
        SELECT k.key, epoch_ms(i.start) s, epoch_ms(i."end") e, i.kwh, coalesce(i.kgce, 0) kgce,
               (i.flag IS NOT NULL)::INT AS flag
        FROM ({energy_intervals_sql(settings.kgce)}) i
        JOIN _zz_ent k ON k.entity_id = coalesce(i.equipment_id, i.scope)
             AND (k.level = 'equipment') = (i.equipment_id IS NOT NULL)
        ORDER BY k.key, s, e, i.meter_id, i.carrier""")  # sums in one order, whatever the query plan
    if len(en["key"]):
        ek = np.asarray(en["key"], np.int64)
        present["energy"][ek] = True
        split = split_timelines(tl, ek, en["s"], en["e"], bs, be)
        in_bucket["energy"] = split.touched(nb)
        out["energy_kwh"] = split.sums(en["kwh"], nb)
        out["energy_kgce"] = split.sums(en["kgce"], nb)
        fb = locate(bs, be, tl.encode(ek, en["e"]) - 1)
        fl = np.asarray(en["flag"]) > 0
        out["counter_resets"] = np.bincount(fb[fl & (fb >= 0)], minlength=nb).astype(np.float64)

    # -- labour
    lb = _numpy_rows(con, filled, "labour", """
        SELECT k.key, epoch_ms(l.start) s, epoch_ms(l."end") e, l.attendance_hours,
               coalesce(l.work_hours, 0) wh, (l.work_hours IS NULL)::INT AS no_wh, coalesce(l.earned_hours, 0) eh
        FROM labour l JOIN _zz_ent k ON k.entity_id = l.scope ORDER BY k.key, s, e""")
    if len(lb["key"]):
        lk = np.asarray(lb["key"], np.int64)
        present["labour"][lk] = True
        split = split_timelines(tl, lk, lb["s"], lb["e"], bs, be)
        in_bucket["labour"] = split.touched(nb)
        apat = np.asarray(lb["attendance_hours"], np.float64)
        out["apat"] = split.sums(apat, nb)
        out["apwt"] = split.sums(lb["wh"], nb)
        out["apat_no_apwt"] = split.sums(apat * np.asarray(lb["no_wh"]), nb)
        out["earned_hours"] = split.sums(lb["eh"], nb)

    # -- quality
    qu = _numpy_rows(con, filled, "quality", """
        SELECT k.key, epoch_ms(q.ts) t, (q.result = 'pass' AND coalesce(q.first_pass, true))::INT AS gp,
               (q.result = 'fail')::INT AS bad
        FROM quality q JOIN _zz_ent k ON k.entity_id = coalesce(q.equipment_id, q.scope)
             AND (k.level = 'equipment') = (q.equipment_id IS NOT NULL)""")
    if len(qu["key"]):
        qk = np.asarray(qu["key"], np.int64)
        present["quality"][qk] = True
        qb = locate(bs, be, tl.encode(qk, qu["t"]))
        ok = qb >= 0
        out["ip"] = np.bincount(qb[ok], minlength=nb).astype(np.float64)
        in_bucket["quality"] = out["ip"] > 0
        out["gp"] = np.bincount(qb[ok], weights=np.asarray(qu["gp"], np.float64)[ok], minlength=nb)
        out["defects"] = np.bincount(qb[ok], weights=np.asarray(qu["bad"], np.float64)[ok], minlength=nb)

    # -- capacity: epc [units/h] x pot [h]
    epc = ent["epc"].to_numpy(dtype=np.float64)[bkey]
    out["epc"] = epc * out["pot"] / 3600.0

    # scope entities carry no machine time; entities without records of a kind carry nulls, not zeros
    out = {name: np.asarray(x, dtype=np.float64) for name, x in out.items()}
    is_eq = (ent["level"] == "equipment").to_numpy()[bkey]
    has_data = ent["has_data"].to_numpy(bool)[bkey]
    # equipment under a calendar is scheduled whether it reports or not; without one, over its data extent
    no_time = ~is_eq | ~(has_cal[bkey] | has_data)
    # outages: production time in buckets without counts (of equipment with a counter) or without energy
    # records (of equipment with a meter)
    for name, group in (("counts_missing", "production"), ("energy_missing", "energy")):
        out[name] = np.where(present[group][bkey] & ~in_bucket[group], out["apt"], 0.0)
    for name in TIME_ELEMENTS + COUNT_ELEMENTS + CAPACITY_ELEMENTS + OUTAGE_ELEMENTS:
        out[name][no_time] = np.nan
    # gaps are gaps: a bucket without any record of a kind has null elements of that kind, not zeros
    for group, names in OPTIONAL_GROUPS.items():
        for name in names:
            out[name][~in_bucket[group]] = np.nan
    info = ent.take(bkey)  # ent's row i has key i
    cols = {c: info[c].reset_index(drop=True) for c in ("level", "entity_id", "equipment_id", "work_center",
                                                        "area", "site", "enterprise", "tz")}
    cols["period_start"] = pd.to_datetime(buckets["start_ms"].to_numpy(), unit="ms", utc=True)
    cols["period_end"] = pd.to_datetime(buckets["end_ms"].to_numpy(), unit="ms", utc=True)
    cols["no_calendar"] = ~has_cal[bkey] & is_eq & has_data
    cols["no_data"] = is_eq & ~has_data
    df = pd.DataFrame({**cols, **{name: out[name] for name in ELEMENTS}})
    periods = df[["entity_id", "period_start", "period_end"]].reset_index(names="bucket")
    return ElementsResult(df, lambda: _loss_reasons(**reason_inputs, periods=periods),
                          period)


@dataclass
class _StateTimes:
    """What one part of the state records gives (see :func:`_state_times`)."""

    windows: slice  # the windows between the cut points around the part's timelines
    d: np.ndarray  # (windows, n_ranks) time of each category inside each window [ms]
    ov: np.ndarray | None  # (windows,) double-covered time inside each window [ms], None if there is none
    fe: np.ndarray  # (nb,) failure events per bucket
    seg: tuple  # resolved segments (start, end, rank) on the composite axis
    rec: tuple  # records in the query window: start on the composite axis, rank, rows in the StateRecords
    # (an array, or a slice when all of the part's records are in the window)


def _state_times(sr, a: int, b: int, tl, lo, hi, thr_ms, windows, nb: int) -> _StateTimes:
    """Time of each state category inside the windows between the cut points around the timelines of the
    state records ``a:b`` (whole equipment) of ``sr``, and failure events per bucket. ``windows``: (cut
    points, and the start, end and bucket of the pieces in planned busy time by the calendar), or a function
    returning them (called once the states are resolved)."""
    s0, e0 = sr.start[a:b], sr.end[a:b]
    win = (e0 > lo) & (s0 < hi)
    if win.all():  # the default range holds all data
        rows, skey, srank = slice(a, b), sr.key[a:b], sr.rank[a:b]
    else:
        rows = np.flatnonzero(win)
        skey, srank, s0, e0 = sr.key[a:b][rows], sr.rank[a:b][rows], s0[rows], e0[rows]
        rows += a
    ss = tl.encode(skey, s0, lo, hi)
    se = tl.encode(skey, e0, lo, hi)
    seg_s, seg_e, seg_r, overlap = resolve(ss, se, srank, len(CATEGORY_PRECEDENCE))
    # minor stops: unplanned runs shorter than the threshold
    seg_r = np.where((seg_r == R_UNPLANNED) & model.is_minor_stop(seg_e - seg_s, thr_ms), R_MINOR, seg_r)
    cut, pbt_s, pbt_e, pbt_b = windows() if callable(windows) else windows
    # the windows that can hold the part's segments: from the one containing its first timeline's start to
    # the one containing its last timeline's end
    k0 = max(int(np.searchsorted(cut, int(sr.key[a]) * tl.span, side="right")) - 1, 0)
    k1 = min(int(np.searchsorted(cut, (int(sr.key[b - 1]) + 1) * tl.span, side="left")), cut.size - 1)
    k1 = max(k1, k0)
    cut = cut[k0:k1 + 1]
    d = time_between(seg_s, seg_e, seg_r, len(CATEGORY_PRECEDENCE), cut)
    ov = None
    if overlap:  # double-covered time: segments covered by two or more records
        ov_s, ov_e = _overlap_segments(ss, se)
        ov = time_between(ov_s, ov_e, np.zeros(ov_s.size, np.int64), 1, cut)[:, 0]
    failure = seg_r == R_UNPLANNED
    fe = model.failure_events(seg_s[failure], seg_e[failure], pbt_s, pbt_e, pbt_b, nb)
    return _StateTimes(slice(k0, k1), d, ov, fe, (seg_s, seg_e, seg_r), (ss, srank, rows))


def _overlap_segments(ss, se):
    """Segments of the composite axis covered by two or more state records."""
    t = np.concatenate([ss, se])
    d = np.concatenate([np.ones(ss.size, np.int64), -np.ones(se.size, np.int64)])
    ok = np.concatenate([se > ss, se > ss])
    t, d = t[ok], d[ok]
    pts, inv = unique_points(t, return_inverse=True)
    c = np.cumsum(np.bincount(inv, weights=d, minlength=pts.size))[:-1]
    m = c > 1.5
    return pts[:-1][m], pts[1:][m]


def _loss_reasons(bs, be, pot, pdl, parts, sr, periods) -> pd.DataFrame:
    """Loss time inside pbt by bucket, category and reason.

    Each piece of loss time takes the reason of the latest record of its category that started at or
    before it (the records behind a minor stop may be logged as unplanned downtime). ``parts``: the
    :class:`_StateTimes` of the parts of the state records ``sr``, in order; ``periods``: entity_id,
    period_start, period_end per bucket.
    """
    seg = [np.concatenate(x) for x in zip(*(p.seg for p in parts))] if parts else [np.empty(0, np.int64)] * 3
    rec = [np.concatenate([np.arange(r.start, r.stop) if isinstance(r, slice) else r for r in x])
           for x in zip(*(p.rec for p in parts))] if parts else [np.empty(0, np.int64)] * 3
    loss_seg = IS_LOSS[seg[2]]
    seg_s, seg_e, seg_r = (x[loss_seg] for x in seg)
    ss, srank, rows = rec
    loss_rec = IS_LOSS[srank]
    rs_all, rrank = ss[loss_rec], srank[loss_rec]
    rcode, codes = sr.reasons(rows[loss_rec])
    ps, pe, (ib, ist, ipot, ipd) = overlay([rs_all], [(bs, be), (seg_s, seg_e), pot, pdl])
    cat = take(seg_r, ist, -1)
    m = (ib >= 0) & (cat >= 0) & (ipot >= 0) & (ipd < 0)  # loss time inside pbt
    ps, ib, cat, dur = ps[m], ib[m], cat[m], (pe - ps)[m]
    frames = []
    for r in LOSS_RANKS:
        pm = cat == r
        if not pm.any():
            continue
        src = (rrank == r) | ((rrank == R_UNPLANNED) if r == R_MINOR else False)
        rs = rs_all[src]
        order = np.argsort(rs, kind="stable")
        rs, rr = rs[order], rcode[src][order]
        i = np.searchsorted(rs, ps[pm], side="right") - 1
        frames.append(pd.DataFrame({"bucket": ib[pm], "category": r, "reason": take(rr, i, -1), "ms": dur[pm]}))
    if not frames:
        return _empty_reasons().assign(entity_id=pd.Series(dtype=object), period_start=pd.Series(dtype=object),
                                       period_end=pd.Series(dtype=object))
    df = pd.concat(frames, ignore_index=True).groupby(["bucket", "category", "reason"], as_index=False)["ms"].sum()
    df["reason"] = np.asarray([*codes, ""], dtype=object)[df["reason"].to_numpy()]  # -1: none
    df = df.sort_values(["bucket", "category", "reason"], ignore_index=True)  # reason codes follow no order
    df["category"] = np.asarray(CATEGORY_PRECEDENCE, dtype=object)[df["category"].to_numpy()]
    df["seconds"] = df.pop("ms") / MS
    return df.merge(periods, on="bucket").drop(columns="bucket")


def _empty_elements() -> pd.DataFrame:
    cols = ["level", "entity_id", "equipment_id", "work_center", "area", "site", "enterprise", "tz",
            "period_start", "period_end", "no_calendar", "no_data", *ELEMENTS]
    return pd.DataFrame({c: pd.Series(dtype="float64" if c in ELEMENTS else "object") for c in cols})


def _empty_reasons() -> pd.DataFrame:
    return pd.DataFrame({"category": pd.Series(dtype=object), "reason": pd.Series(dtype=object),
                         "seconds": pd.Series(dtype=np.float64)})
