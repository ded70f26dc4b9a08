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
raw state name never decides. A ``minor_stop`` record is a minor stop whatever its length. An
unplanned_downtime run shorter than the minor-stop threshold is a minor stop; one of exactly the threshold
is a failure. Runs are classified on their full length, not the part inside the query, so results do not
depend on how a range is split.

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

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import pairwise
from threading import Lock
from typing import Any, Literal, TypeAlias, TypedDict, overload

import duckdb
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from zhizao.errors import DataSufficiencyError, InputError
from zhizao.kpi import model
from zhizao.kpi.buckets import UNKNOWN_PERIOD, QueryEnd, TimeStamp, bucket_edges, default_end
from zhizao.kpi.calendar_layers import RankedSegments, Segments, calendar_layers
from zhizao.kpi.columns import floor_ms
from zhizao.kpi.energy import energy_intervals_sql
from zhizao.kpi.intervals import (
    MS,
    Timeline,
    last_covering,
    locate,
    overlay,
    resolve,
    split_timelines,
    take,
    time_between,
    unique_points,
)
from zhizao.kpi.partitions import (  # noqa: F401 - EMPTY_RANGE*: the messages of this module too
    EMPTY_RANGE,
    EMPTY_RANGE_SHORT,
    EngineContext,
    Part,
    SiteExtent,
    cost,
    duckdb_memory,
    group_zones,
    kernel_budget_bytes,
    plan,
)
from zhizao.kpi.production import Extent, production_elements, production_records
from zhizao.kpi.states import Condition, StateRecords, empty_state_records, state_records
from zhizao.messages import define
from zhizao.schema import CATEGORY_PRECEDENCE
from zhizao.settings import Settings

RANK = {c: i for i, c in enumerate(CATEGORY_PRECEDENCE)}
R_UNPLANNED, R_MINOR, R_SETUP, R_PRODUCTION, R_NO_ORDER, R_PLANNED, R_UNSCHED, R_NOT_SCHED = range(8)
LOSS_RANKS = (R_UNPLANNED, R_MINOR, R_SETUP, R_NO_ORDER)
IS_LOSS = np.isin(np.arange(len(CATEGORY_PRECEDENCE)), LOSS_RANKS)
SHIFT_NEEDS_CALENDAR = define("kpi.shift_needs_calendar", "period 'shift' needs calendar entries of kind shift")
#: The windows the calendar cuts the buckets into: cut points, and the start, end and bucket of the pieces of
#: planned busy time by the calendar (composite axis)
Windows: TypeAlias = tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]
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
    failures : list of (str, str)
        Equipment left out by :func:`zhizao.api.isolate_failures`, with its error (empty: none left out).
    """

    def __init__(self, elements: pd.DataFrame, reasons: pd.DataFrame | Callable[[], pd.DataFrame], period: str) -> None:
        self.elements = elements
        self._reasons = reasons  # a DataFrame, or a function computing it
        self.period = period
        #: per-site (earliest, latest) time stamp [ms] from which default query ranges were derived (key None:
        #: all sites); None when the query range was given or there were no data
        self.extent: SiteExtent | None = None
        #: (entity id, error) of the equipment the embedded engine's fallback left out (zhizao.api)
        self.failures: list[tuple[str, str]] = []
        #: the entities with their query ranges the result was computed for (:meth:`EngineContext.ranges`), when
        #: computed in one part by :func:`compute_elements`: what :func:`update_elements` starts from
        self.entities: pd.DataFrame | None = None
        #: results of :func:`update_elements` whose loss reasons this result's wait on, one inside the other
        self.chain = 0

    @property
    def reasons(self) -> pd.DataFrame:
        if callable(self._reasons):
            self._reasons = self._reasons()
            self.chain = 0
        return self._reasons

    @property
    def reasons_pending(self) -> bool:
        """Whether the loss reasons are still to be computed (on first access to :attr:`reasons`; not where
        another result sharing them has computed them)."""
        return callable(self._reasons) and not (isinstance(self._reasons, _Once) and self._reasons.done)

    def reasons_source(self) -> Callable[[], pd.DataFrame]:
        """A function giving :attr:`reasons`, holding what they are computed from but not this result (its
        elements): what a result derived from this one computes its own from. Computed once, whichever asks
        first."""
        if not callable(self._reasons):
            done = self._reasons
            return lambda: done
        if not isinstance(self._reasons, _Once):
            self._reasons = _Once(self._reasons)
        return self._reasons


class _Once:
    """A function's value, computed at the first call and kept (the function then let go)."""

    def __init__(self, fn: Callable[[], pd.DataFrame]) -> None:
        self._fn: Callable[[], pd.DataFrame] | None = fn
        self._value: pd.DataFrame | None = None

    @property
    def done(self) -> bool:
        return self._fn is None

    def __call__(self) -> pd.DataFrame:
        fn = self._fn
        if fn is not None:  # (two threads at once may both compute it: the same value)
            self._value = fn()
            self._fn = None
        assert self._value is not None
        return self._value


def _numpy_rows(con: duckdb.DuckDBPyConnection, filled: set[str], table: str, sql: str) -> dict[str, NDArray[Any]]:
    """The columns of query ``sql`` on ``table`` as numpy arrays; only an empty ``key`` if ``table`` is empty."""
    return con.execute(sql).fetchnumpy() if table in filled else {"key": np.empty(0, np.int64)}


def compute_elements(con: duckdb.DuckDBPyConnection, period: str = "day", start: TimeStamp | None = None,
                     end: QueryEnd | None = None, settings: Settings | None = None, zone_level: str | None = None,
                     extent: SiteExtent | None = None, context: EngineContext | None = None) -> ElementsResult:
    """ISO 22400 elements of every entity per ``period`` bucket over ``[start, end)``.

    The store is worked through in partitions of whole equipment sized by ``settings.memory_mb``
    (:mod:`zhizao.kpi.partitions`); the partitions' rows are concatenated (use :func:`iter_elements` to take
    them one partition at a time).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        An open zhizao store.
    period : {'hour', 'shift', 'day', 'week', 'month', 'all'}
        Buckets in each entity's IANA time zone; ``shift`` buckets are the calendar's shift entries (a
        group's shift rows are its members' by local label: :func:`zhizao.kpi.rollup.rollup`).
    start, end : str, datetime or pandas.Timestamp, optional
        Query range (time stamps without offset are UTC). Defaults to whole buckets around the data; ``end`` a
        :class:`zhizao.kpi.buckets.ReadingTime` cuts the last of them at the reading time.
    settings : Settings, optional
    zone_level : {'work_center', 'area', 'site', 'enterprise'}, optional
        Bucket every entity of a group of this level in the group's zone (:func:`group_zones`), so that
        the group's members share bucket bounds and roll up to one row per period. Default: each entity's
        own zone.
    extent : dict, optional
        Per site, the (earliest, latest) time stamp [ms] of its data, key None for all sites (as
        ``ElementsResult.extent`` gives it): default query ranges are derived from it instead of from this
        store's records. For a store that holds part of a larger one (:mod:`zhizao.scale`).
    context : EngineContext, optional
        The store-wide facts (:meth:`EngineContext.read` of ``con`` with ``settings`` and ``zone_level``, without
        ``extent``) when the caller has them already: they do not depend on the period or the range, so a
        caller computing several periods of one store reads them once.

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
    InputError
        Unknown period or an empty range.
    DataSufficiencyError
        ``shift`` buckets without shift entries.
    """
    settings = settings or Settings()
    with duckdb_memory(con, settings):
        ctx, ent = _prepared(con, period, start, end, settings, zone_level, extent, context)
        if ent is None:
            res = ElementsResult(_empty_elements(), _empty_reasons(), period)
            res.extent = ctx.extent if start is None or default_end(end) else None
            return res
        parts = _parts(ctx, ent, period)
        window = _read_window(con, ctx, ent, start, end)
        results = [partition_elements(con, ctx, ent.iloc[p.keys], period, window=window) for p in parts]
    res = concat_results(results, period)
    res.extent = ctx.extent if start is None or default_end(end) else None
    if len(parts) == 1:
        res.entities = ent
    return res


#: Columns of the entity table that change with an equipment's own records only (:class:`EngineContext`)
_OWN_RECORD_COLUMNS = ["d0", "d1", "has_data", "n_states", "n_production", "n_other"]


def update_elements(con: duckdb.DuckDBPyConnection, prior: ElementsResult, changed: set[str] | frozenset[str],
                    period: str = "day", start: TimeStamp | None = None, end: QueryEnd | None = None,
                    settings: Settings | None = None, zone_level: str | None = None,
                    context: EngineContext | None = None) -> ElementsResult | None:
    """:func:`compute_elements` of these arguments from ``prior``, its result on an earlier state of the store in
    which only the state and production records of the equipment ``changed`` were different: ``prior``'s rows
    with those equipment's recomputed, the same frame to the last bit; None where the store shows that this does
    not hold, and the caller computes everything.

    Each equipment's elements depend on its own records, the calendars of its scopes, the settings and its
    query range only (the engine computes any partition of whole entities alone; :func:`partition_elements`).
    So the other entities' rows stand as long as every entity, its zone and range, and the record counts and
    data extent of every unchanged equipment are what ``prior`` was computed for; a new record that moves a
    site's default range (a new day of data) changes the ranges, and everything is computed again. Both ``prior``
    and this computation must be one part (the one-pass path: rows in key order); ``changed`` names equipment
    whose records may have changed (an id not in the store is ignored).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The store now.
    prior : ElementsResult
        :func:`compute_elements` with the same arguments on the store before the change.
    changed : set of str
        Equipment ids whose state or production records were added since ``prior``.
    period, start, end, settings, zone_level, context
        As for :func:`compute_elements` (``context``: that of ``con`` now).

    Returns
    -------
    ElementsResult or None
    """
    if prior.entities is None or prior.failures or prior.period != period:
        return None
    if prior.reasons_pending and prior.chain >= MAX_CHAIN:
        # each update's reasons are computed from its prior's when asked for: after many updates that nobody
        # asked the reasons of (API traffic, a listener's batches), the prior's are computed now, so asking
        # recurses MAX_CHAIN deep at most and the older results are freed
        prior.reasons  # noqa: B018 (computed and kept)
    settings = settings or Settings()
    with duckdb_memory(con, settings):
        ctx, ent = _prepared(con, period, start, end, settings, zone_level, None, context)
        if ent is None or len(_parts(ctx, ent, period)) != 1:
            return None
        old = prior.entities
        if len(old) != len(ent) or list(old.columns) != list(ent.columns):
            return None
        fixed = [c for c in ent.columns if c not in _OWN_RECORD_COLUMNS]
        if not old[fixed].reset_index(drop=True).equals(ent[fixed].reset_index(drop=True)):
            return None  # other entities, zones or ranges
        is_changed = ((ent["level"] == "equipment") & ent["entity_id"].isin(list(changed))).to_numpy()
        own = [c for c in _OWN_RECORD_COLUMNS if c in ent.columns]
        if not old.loc[~is_changed, own].reset_index(drop=True).equals(ent.loc[~is_changed, own]
                                                                        .reset_index(drop=True)):
            return None  # records of equipment not named changed
        if not is_changed.any():
            fresh = ElementsResult(prior.elements, prior.reasons_source(), period)
        else:
            part = partition_elements(con, ctx, ent[is_changed], period)
            fresh = _splice(prior, part, ent, set(ent.loc[is_changed, "entity_id"]), period)
    fresh.extent = ctx.extent if start is None or default_end(end) else None
    fresh.entities = ent
    fresh.chain = prior.chain + 1 if prior.reasons_pending else 1
    return fresh


#: Updates (:func:`update_elements`) whose loss reasons may wait on one another's before the oldest are computed
MAX_CHAIN = 32


def _splice(prior: ElementsResult, part: ElementsResult, ent: pd.DataFrame, ids: set[str], period: str
            ) -> ElementsResult:
    """``prior``'s rows of the equipment ``ids`` replaced by ``part``'s, in the one-pass order: by entity key
    (``ent``), each entity's rows as computed (by bucket)."""
    eq_key = pd.Series(ent["key"].to_numpy(), index=ent["entity_id"].to_numpy())[(ent["level"] == "equipment")
                                                                               .to_numpy()]
    sc_key = pd.Series(ent["key"].to_numpy(), index=ent["entity_id"].to_numpy())[(ent["level"] != "equipment")
                                                                               .to_numpy()]

    def keys(df: pd.DataFrame, levels: pd.Series | None) -> NDArray[np.int64]:
        if levels is None:  # loss reasons: equipment only
            only: NDArray[np.int64] = eq_key.reindex(df["entity_id"].to_numpy()).to_numpy(np.int64)
            return only
        is_eq = (levels == "equipment").to_numpy()
        out = np.empty(len(df), np.int64)
        ids_ = df["entity_id"].to_numpy()
        out[is_eq] = eq_key.reindex(ids_[is_eq]).to_numpy(np.int64)
        out[~is_eq] = sc_key.reindex(ids_[~is_eq]).to_numpy(np.int64)
        return out

    def merged(old: pd.DataFrame, new: pd.DataFrame, by_level: bool) -> pd.DataFrame:
        keep = ~old["entity_id"].isin(list(ids)).to_numpy()
        if by_level:
            keep |= (old["level"] != "equipment").to_numpy()
        parts = [f for f in (old[keep], new) if len(f)]
        if not parts:  # nothing left: the empty frame the kernel gives (its columns and types)
            return new.reset_index(drop=True)
        df = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
        k = keys(df, df["level"] if by_level else None)
        return df.iloc[np.argsort(k, kind="stable")].reset_index(drop=True)

    old = prior.elements
    at = np.flatnonzero((old["level"] == "equipment").to_numpy() & old["entity_id"].isin(list(ids)).to_numpy())
    new = part.elements
    def values(x: pd.Series) -> NDArray[Any]:  # zone-aware times as datetime64 (to_numpy makes Timestamp objects)
        out: NDArray[Any] = (x.dt.tz_convert(None) if isinstance(x.dtype, pd.DatetimeTZDtype) else x).to_numpy()
        return out

    def same(c: str) -> bool:
        return bool(np.array_equal(values(old[c].iloc[at]), values(new[c])))

    if len(at) == len(new) and same("entity_id") and same("period_start") and same("period_end"):
        # the same buckets (the ranges did not change): the new values in place, in a copy (prior is shared)
        elements = old.copy()
        for c in new.columns:
            if c not in ("level", "entity_id", "equipment_id", "work_center", "area", "site", "enterprise", "tz",
                         "period_start", "period_end"):
                col = elements[c].to_numpy(copy=True)
                col[at] = new[c].to_numpy()
                elements[c] = col
    else:
        elements = merged(old, new, True)
    # (the reasons hold what they are computed from, not the prior's or the part's elements: a chain of updates
    # nobody asked the reasons of holds one elements table, not one per update)
    old_reasons, new_reasons = prior.reasons_source(), part.reasons_source()
    return ElementsResult(elements, lambda: merged(old_reasons(), new_reasons(), False), period)


def iter_elements(con: duckdb.DuckDBPyConnection, period: str = "day", start: TimeStamp | None = None,
                  end: QueryEnd | None = None, settings: Settings | None = None, zone_level: str | None = None
                  ) -> Iterator[ElementsResult]:
    """The elements of :func:`compute_elements`, one :class:`ElementsResult` per partition of whole entities (in
    key order: equipment by id, then the scope entities), so that a caller streaming them out holds one
    partition at a time."""
    yield from PartitionedElements(con, period, start, end, settings, zone_level)


class PartitionedElements:
    """The partitions :func:`compute_elements` works in, planned (``len``: how many) but not yet computed;
    iterating computes them in turn, one :class:`ElementsResult` each (see :func:`iter_elements`).

    Raises
    ------
    InputError, DataSufficiencyError
        As :func:`compute_elements` (when planned).
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, period: str = "day", start: TimeStamp | None = None,
                 end: QueryEnd | None = None, settings: Settings | None = None, zone_level: str | None = None,
                 context: EngineContext | None = None) -> None:
        self.con, self.period, self.start, self.end = con, period, start, end
        self.settings = settings or Settings()
        with duckdb_memory(con, self.settings):
            self.ctx, self.ent = _prepared(con, period, start, end, self.settings, zone_level, None, context)
        self.parts: list[Part] = [] if self.ent is None else _parts(self.ctx, self.ent, period)

    def __len__(self) -> int:
        return len(self.parts)

    def __iter__(self) -> Iterator[ElementsResult]:
        if not self.parts:
            return
        assert self.ent is not None  # there are parts only when there are entities
        with duckdb_memory(self.con, self.settings):
            # the window's facts (energy and labour aggregates) when the partitions are computed, not when they
            # are only counted (len, as the workspace plans)
            window = _read_window(self.con, self.ctx, self.ent, self.start, self.end)
            for p in self.parts:
                yield partition_elements(self.con, self.ctx, self.ent.iloc[p.keys], self.period, window=window)


def _prepared(con: duckdb.DuckDBPyConnection, period: str, start: TimeStamp | None, end: QueryEnd | None,
              settings: Settings, zone_level: str | None, extent: SiteExtent | None,
              context: EngineContext | None = None) -> tuple[EngineContext, pd.DataFrame | None]:
    """The store-wide context (``context`` when given), and the entities with their query ranges (None if there
    is nothing to compute)."""
    if period not in ("hour", "shift", "day", "week", "month", "all"):
        raise InputError(UNKNOWN_PERIOD, period=period)
    ctx = context if context is not None and extent is None else EngineContext.read(con, settings, zone_level,
                                                                                     extent)
    if ctx.ent.empty:
        return ctx, None
    if period == "shift" and not con.execute("""
            SELECT count(*) FROM calendar WHERE kind = 'shift' AND scope IN
            (SELECT unnest([equipment_id, work_center, area, site, enterprise]) FROM equipment)""").fetchall()[0][0]:
        raise DataSufficiencyError(SHIFT_NEEDS_CALENDAR)
    return ctx, ctx.ranges(period, start, end)


#: An explicit query range shorter than this share of the data's extent is read as a window of time
WINDOW_SHARE = 0.5


def _read_window(con: duckdb.DuckDBPyConnection, ctx: EngineContext, ent: pd.DataFrame, start: TimeStamp | None,
                 end: QueryEnd | None) -> ReadWindow | None:
    """How to read the records for an explicit query range much shorter than the data (a day, a shift, the
    current hour of a live view): only those near it (:class:`ReadWindow`), the same elements to the last bit,
    without reading each equipment's whole history; None otherwise (every record of a partition's entities)."""
    if start is None or default_end(end):
        return None
    if not ent["has_data"].to_numpy(bool).any():
        return None
    if int(ent["w1"].max()) - int(ent["w0"].min()) >= WINDOW_SHARE * data_span(ent):
        return None
    return ReadWindow.read(con, ctx)


def data_span(ent: pd.DataFrame) -> int:
    """The extent of the data of the equipment in ``ent`` (with ``d0``, ``d1``, ``has_data``) [ms]: what a window
    of time is judged against (:data:`WINDOW_SHARE`); 0 without data."""
    has = ent["has_data"].to_numpy(bool)
    return int(ent["d1"].to_numpy()[has].max()) - int(ent["d0"].to_numpy()[has].min()) if has.any() else 0


def _parts(ctx: EngineContext, ent: pd.DataFrame, period: str) -> list[Part]:
    return plan(cost(ent, ctx.n_buckets(ent, period)), kernel_budget_bytes(ctx.settings))


def concat_results(results: list[ElementsResult], period: str) -> ElementsResult:
    """One :class:`ElementsResult` of the results of disjoint partitions (rows in the partitions' order)."""
    results = [r for r in results if r is not None and len(r.elements)]
    if not results:
        return ElementsResult(_empty_elements(), _empty_reasons(), period)
    if len(results) == 1:
        return results[0]
    elements = pd.concat([r.elements for r in results], ignore_index=True)

    def reasons() -> pd.DataFrame:
        frames = [r.reasons for r in results]
        frames = [f for f in frames if len(f)] or frames[:1]
        return pd.concat(frames, ignore_index=True)

    return ElementsResult(elements, reasons, period)


@overload
def partition_elements(con: duckdb.DuckDBPyConnection, ctx: EngineContext, ent: pd.DataFrame, period: str,
                       buckets: pd.DataFrame | None = None, raw: Literal[False] = False,
                       window: ReadWindow | None = None) -> ElementsResult: ...


@overload
def partition_elements(con: duckdb.DuckDBPyConnection, ctx: EngineContext, ent: pd.DataFrame, period: str,
                       buckets: pd.DataFrame | None = None, *, raw: Literal[True],
                       window: ReadWindow | None = None) -> RawElements | None: ...


@overload
def partition_elements(con: duckdb.DuckDBPyConnection, ctx: EngineContext, ent: pd.DataFrame, period: str,
                       buckets: pd.DataFrame | None = None, raw: bool = False,
                       window: ReadWindow | None = None) -> ElementsResult | RawElements | None: ...


def partition_elements(con: duckdb.DuckDBPyConnection, ctx: EngineContext, ent: pd.DataFrame, period: str,
                       buckets: pd.DataFrame | None = None, raw: bool = False, window: ReadWindow | None = None
                       ) -> ElementsResult | RawElements | None:
    """The kernel: elements of one partition of whole entities, from that partition's records only.

    This is the per-partition entry point of every engine (the embedded one, partition by partition; Apache
    Spark, see :mod:`zhizao.scale`).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The store (or a store holding at least the partition's records and the calendar and products).
    ctx : EngineContext
        The store-wide facts (:meth:`EngineContext.read`).
    ent : pandas.DataFrame
        The partition's entities: rows of :meth:`EngineContext.ranges` (equipment first, in key order, then
        scope entities), with their query ranges ``w0``, ``w1``.
    period : str
        As for :func:`compute_elements`; ignored with ``buckets``.
    buckets : pandas.DataFrame, optional
        Explicit buckets instead of ``period``'s: ``entity_id``, ``start_ms``, ``end_ms`` (disjoint per entity,
        inside its range).
    raw : bool
        Return the :class:`RawElements` (time elements in integer milliseconds, no frame) instead.
    window : ReadWindow, optional
        Read only the records near the ranges ``[w0, w1)`` (see :class:`ReadWindow`) instead of every record of
        the partition's entities.

    Returns
    -------
    ElementsResult or RawElements (None for a partition without buckets, with ``raw``)
    """
    ent = ent.reset_index(drop=True).copy()
    ent["key"] = np.arange(len(ent), dtype=np.int64)
    is_eq = (ent["level"] == "equipment").to_numpy()
    n_eq = int(is_eq.sum())
    if not is_eq[:n_eq].all():
        raise ValueError("a partition lists its equipment first")
    settings = ctx.settings
    eq_ids = ent["entity_id"].iloc[:n_eq].tolist()
    whole = len(ent) == len(ctx.ent) and window is None
    thr_ms = round(settings.minor_stop_threshold * MS)
    w0, w1 = int(ent["w0"].min()), int(ent["w1"].max())
    # the partition's equipment are consecutive by id: a range lets DuckDB skip the row groups of others
    ids = None if whole or not eq_ids else f"{_lit(min(eq_ids))} <= {{c}} AND {{c}} <= {_lit(max(eq_ids))}"
    p_where = None if ids is None else ids.format(c="p.equipment_id")
    if window is not None and eq_ids:
        assert p_where is not None  # a window is never whole, so there are ids
        p_where += f""" AND p."end" >= {_ts(w0)} AND p."end" < {_ts(w1 + window.o_maxlen + 1)}"""
    view = ent[["key", "level", "entity_id", "equipment_id", "work_center", "area", "site", "enterprise"]]
    con.register("_zz_ent", view)
    cur = con.cursor()  # a second connection: production is read while this one reads the states
    cur.register("_zz_ent", view)
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:  # production, and the second part of the states
            p_records: Future[tuple[dict[str, NDArray[Any]], Extent]]
            if not eq_ids:
                p_records = pool.submit(lambda: ({"key": np.empty(0, np.int64)}, {}))
                sr = empty_state_records()
                lo = w0 - thr_ms
            elif window is None:
                p_records = pool.submit(production_records, cur, eq_ids, p_where)
                sr = state_records(con, lambda: {k: b for k, (_a, b, _c) in p_records.result()[1].items()},
                                   eq_ids, None if ids is None else ids.format(c="s.equipment_id"))
                lo = _failure_lookback(sr, w0 - thr_ms)
            else:
                p_records = pool.submit(production_records, cur, eq_ids, p_where)
                horizon = {k: window.horizon[e] for k, e in enumerate(eq_ids) if e in window.horizon}
                x = w0 - thr_ms
                while True:  # until the failure runs across the window's start begin inside what was read
                    sr = state_records(con, {}, eq_ids, window.states_where(con, eq_ids, ids, x, w1 + thr_ms + 1),
                                       horizon)
                    lo = _failure_lookback(sr, w0 - thr_ms)
                    if lo >= x:
                        break
                    x = lo
            hi = w1 + thr_ms
            tl = Timeline(lo - 1, hi + 1, len(ent))
            return _compute(con, ent, tl, period, lo, hi, thr_ms, settings, sr, p_records, pool, ctx.filled,
                            whole, buckets, raw, window)
    finally:
        con.unregister("_zz_ent")
        cur.close()


DAY_MS = 86_400_000
#: How far before the new records :func:`affected_from` reads first [ms]
AFFECTED_READ_MS = 3 * DAY_MS
#: The temporary table of the state records a refresh reads several times (:meth:`ReadWindow.keep_recent`)
RECENT_STATES = "_zz_recent_states"


@dataclass
class ReadWindow:
    """How the kernel reads only the records near its entities' ranges ``[w0, w1)`` (what a refresh of stored
    elements needs: only the buckets records touched are recomputed), with the facts that make such a read exact.

    The state records read are those starting in ``[x - L, y)`` where ``x`` is the ranges' start less the
    minor-stop threshold, moved back over failure runs that cross it, and ``L`` at least the longest closed
    state record of the partition (a closed record starting earlier ends before ``x``), plus, per equipment,
    the records of its last start before ``x`` (an open record lasts until the next start) where that is earlier
    than ``x - L``. The last records read end at the equipment's horizon where no later start was read (the
    true end is then beyond the ranges and clipped alike). Counts, energy and labour intervals are read by their
    end (at most ``o_maxlen`` after their start); a cumulative energy register is read whole (its steps and
    median are per meter).

    Attributes
    ----------
    horizon : dict
        Equipment id -> data horizon [ms] (latest time stamp of its states and counts).
    last_start_us, first_start : dict
        Equipment id -> latest start of its state records [us, exact], earliest start [ms] (missing: none).
    s_maxlen : int
        Longest closed state record of the partition's equipment [ms].
    o_maxlen : int
        Longest count, energy or labour interval of the partition's entities [ms].
    cumulative : list of str
        Entities with cumulative energy registers.
    interval_energy, interval_energy_scopes : frozenset of str
        Equipment with interval energy readings booked to it (``equipment_id``), and scopes with readings booked
        to them (``scope``, no equipment), whether or not one is read: an entity with a meter is one whatever the
        window (the outage element energy_missing counts only equipment with a meter).
    margin : int
        Least ``L`` [ms].
    recent : int or None
        Where set (:meth:`keep_recent`), the connection's temporary table :data:`RECENT_STATES` holds every state
        record starting at or after it [ms]: the reads that lie wholly after it read that table (a refresh reads
        the days before a load's records three times, which in a store in equipment order scans every row group
        each time).
    """

    horizon: dict[str, int]
    last_start_us: dict[str, int]
    first_start: dict[str, int]
    s_maxlen: int = 0
    o_maxlen: int = 0
    cumulative: list[str] = field(default_factory=list)
    interval_energy: frozenset[str] = frozenset()
    interval_energy_scopes: frozenset[str] = frozenset()
    margin: int = DAY_MS
    recent: int | None = None

    def keep_recent(self, con: duckdb.DuckDBPyConnection, since: int) -> None:
        """Read the state records starting at or after ``since`` [ms] once, into :data:`RECENT_STATES` on ``con``
        (in the store's order), for the reads after it (:meth:`source`); :meth:`drop_recent` removes it."""
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {RECENT_STATES} AS
                        SELECT equipment_id, start, "end", state, category, reason FROM states
                        WHERE start >= {_ts(since)}""")
        self.recent = since

    def drop_recent(self, con: duckdb.DuckDBPyConnection) -> None:
        if self.recent is not None:
            con.execute(f"DROP TABLE IF EXISTS {RECENT_STATES}")
            self.recent = None

    def source(self, since: int) -> str:
        """The table to read the state records starting at or after ``since`` [ms] from."""
        return RECENT_STATES if self.recent is not None and since >= self.recent else "states"

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection, ctx: EngineContext) -> ReadWindow | None:
        """The window facts of the store on ``con`` from its context ``ctx`` (its per-equipment statistics) and
        two aggregates of the energy and labour records; None for a context without statistics (read with an
        extent given: a part of a larger store)."""
        own = ctx.own
        if own is None:
            return None
        eq = np.flatnonzero(own["n_states"].to_numpy() > 0)  # equipment with states
        ids = ctx.ent["entity_id"].iloc[:ctx.n_eq].to_numpy(object)[eq].tolist()

        def per_equipment(values: pd.Series) -> dict[str, int]:
            return dict(zip(ids, values.to_numpy(np.int64)[eq].tolist()))

        o_maxlen = int(max(0, own["p_maxlen"].max())) if len(own) else 0
        cumulative: list[str] = []
        interval_energy: frozenset[str] = frozenset()
        interval_energy_scopes: frozenset[str] = frozenset()
        if "energy" in ctx.filled:
            for (n,) in con.execute(f"""SELECT max({floor_ms('"end"')} - {floor_ms("start")}) FROM energy
                                       WHERE coalesce(reading, 'interval') = 'interval'""").fetchall():
                o_maxlen = max(o_maxlen, int(n or 0))
            # booked as the energy section joins them: to an equipment by equipment_id, to a scope by scope alone
            booked = con.execute("""SELECT DISTINCT equipment_id, scope,
                                           coalesce(reading, 'interval') = 'cumulative' FROM energy""").fetchall()
            cumulative = sorted({e if e is not None else sc for e, sc, cum in booked if cum} - {None})
            interval_energy = frozenset(e for e, _sc, cum in booked if not cum and e is not None)
            interval_energy_scopes = frozenset(sc for e, sc, cum in booked if not cum and e is None and sc is not None)
        if "labour" in ctx.filled:
            for (n,) in con.execute(f"""SELECT max({floor_ms('"end"')} - {floor_ms("start")})
                                        FROM labour""").fetchall():
                o_maxlen = max(o_maxlen, int(n or 0))
        # the horizon: the latest time stamp of an equipment's states and counts (its data extent's end)
        return cls(horizon=per_equipment(ctx.ent["d1"].iloc[:ctx.n_eq]),
                   last_start_us=per_equipment(own["s_last_start_us"]), first_start=per_equipment(own["s_first"]),
                   s_maxlen=int(max(0, own["s_maxlen"].max())) if len(own) else 0, o_maxlen=o_maxlen,
                   cumulative=cumulative, interval_energy=interval_energy,
                   interval_energy_scopes=interval_energy_scopes)

    def states_where(self, con: duckdb.DuckDBPyConnection, eq_ids: list[str], ids: str | None, x: int, y: int
                     ) -> list[Condition]:
        """Conditions (one query each, disjoint) on the state records (alias ``s``) to read, with the table to
        read each from, for ranges from ``x`` (the lookback included) to ``y`` (see the class docstring)."""
        lead = max(self.margin, self.s_maxlen)
        xr = x - lead
        rng = "TRUE" if ids is None else ids.format(c="s.equipment_id")
        found = {e for (e,) in con.execute(f"""
            SELECT DISTINCT s.equipment_id FROM {self.source(xr)} s
            WHERE {rng} AND s.start >= {_ts(xr)} AND s.start < {_ts(x)}""").fetchall()}
        known: list[tuple[str, int]] = []  # (equipment, its last start before x [us]) to read
        unknown: list[str] = []
        for e in eq_ids:
            first, last_us = self.first_start.get(e), self.last_start_us.get(e)
            if e in found or first is None or first >= x:
                continue  # its last start before x is read (or it has none)
            assert last_us is not None  # first_start and last_start_us hold the same equipment
            last = last_us // 1000  # the millisecond the kernel reads it at
            if last < xr:
                known.append((e, last_us))  # its last records of all
            elif last >= x:
                unknown.append(e)  # silent for a while before x: look its last start before x up
        if unknown:
            known += con.execute(f"""
                SELECT s.equipment_id, epoch_us(max(s.start)) FROM states s
                WHERE s.equipment_id IN ({", ".join(_lit(e) for e in unknown)}) AND s.start < {_ts(xr)}
                GROUP BY ALL""").fetchall()
        out: list[Condition] = [(self.source(xr), f"{rng} AND s.start >= {_ts(xr)} AND s.start < {_ts(y)}")]
        if known:
            # the records of that millisecond (the kernel's unit, ties there resolved by category): the last start
            # itself where it is a whole millisecond (an equality, which DuckDB filters fast), else from the
            # millisecond to it (a store keeps microseconds: 00:00:00.000100 and .000500 are one start)
            out.append(" OR ".join(
                f"(s.equipment_id = {_lit(e)} AND s.start = {_ts_us(us)})" if us % 1000 == 0 else
                f"(s.equipment_id = {_lit(e)} AND s.start >= {_ts(us // 1000)} AND s.start <= {_ts_us(us)})"
                for e, us in known))
        return out


def affected_from(con: duckdb.DuckDBPyConnection, ctx: EngineContext, window: ReadWindow, times: dict[str, int]
                  ) -> dict[str, int]:
    """Per equipment of ``times`` (id -> the earliest time stamp [ms] of state or count records just added), the
    earliest instant whose elements those records can change: the start of its last state record that starts
    before that time (whose end may change: an open record lasts until the next start or the horizon), moved
    back over every failure run across it (a run is classified on its full length and its failure counted at
    its first instant), or the time itself where that is earlier. Read from the store as it is now, with the
    window's facts (:class:`ReadWindow`); the state records before that instant keep their ends.

    Examples: a machine whose latest record (running since 08:00) was open gets counts at 10:00: 08:00. One
    whose failure began at 07:50 with a record of 07:55 that was still open gets a record at 08:00: 07:50."""
    out = dict(times)
    thr_ms = round(ctx.settings.minor_stop_threshold * MS)
    # equipment with states before the new records (the others: from their own time)
    need = {e: times[e] - thr_ms for e in times if window.first_start.get(e, times[e]) < times[e]}
    if need:  # first the last days of them all in one read, which settles most (a day's file, a live batch)
        eq_ids = sorted(need)
        lead = affected_reads_from(ctx, [times[e] for e in eq_ids])
        y = max(times[e] for e in eq_ids) + 1
        ids = f"{_lit(eq_ids[0])} <= s.equipment_id AND s.equipment_id <= {_lit(eq_ids[-1])}"
        horizon = {k: window.horizon[e] for k, e in enumerate(eq_ids) if e in window.horizon}
        sr = state_records(con, {}, eq_ids, (window.source(lead), f"{ids} AND s.start >= {_ts(lead)} AND "
                                                                   f"s.start < {_ts(y)}"), horizon)
        # settled where the lookback ends after every record that could reach it unread: a closed one starting
        # before ``lead`` ends before lead + the longest closed record; an open one at the first start read
        safe = lead + window.s_maxlen
        rest: dict[str, int] = {}
        for k, e in enumerate(eq_ids):
            found = _lookback(sr, k, times[e])
            if found is not None and found[0] > safe and found[0] > found[1]:
                out[e] = min(times[e], found[0])
            else:
                rest[e] = need[e]
        need = rest
    # the others (a backfill, a machine silent for days): from each one's time less the threshold; an equipment
    # whose lookback reaches before what was read is read again from there, alone with the others that need it
    while need:
        eq_ids = sorted(need)
        x, y = min(need.values()), max(times[e] for e in eq_ids) + 1
        ids = (f"{_lit(eq_ids[0])} <= {{c}} AND {{c}} <= {_lit(eq_ids[-1])}" if len(eq_ids) > 50 else
               f"{{c}} IN ({', '.join(_lit(e) for e in eq_ids)})")
        horizon = {k: window.horizon[e] for k, e in enumerate(eq_ids) if e in window.horizon}
        sr = state_records(con, {}, eq_ids, window.states_where(con, eq_ids, ids, x, y), horizon)
        again: dict[str, int] = {}
        for k, e in enumerate(eq_ids):
            found = _lookback(sr, k, times[e])
            if found is None:
                continue
            lo = found[0]
            if lo < x:
                again[e] = lo  # the run may begin before what was read
            else:
                out[e] = min(times[e], lo)
        need = again
    return out


def affected_reads_from(ctx: EngineContext, times: Iterable[int]) -> int:
    """The earliest state record start [ms] that :func:`affected_from` reads first for new records from ``times``
    [ms]: the days before them, less the minor-stop threshold."""
    return min(times) - round(ctx.settings.minor_stop_threshold * MS) - AFFECTED_READ_MS


def _lookback(sr: StateRecords, k: int, t: int) -> tuple[int, int] | None:
    """For equipment key ``k`` of the records read ``sr``: the start of its last record starting before ``t``,
    moved back over every failure run across it, and the first start read; None without such a record."""
    a, b = np.searchsorted(sr.key, [k, k + 1])
    s, en, r = sr.start[a:b], sr.end[a:b], sr.rank[a:b]
    i = int(np.searchsorted(s, t, side="left")) - 1
    if i < 0:
        return None
    u = r == R_UNPLANNED
    return _failure_lookback_of(s[u], en[u], int(s[i])), int(s[0])


def _failure_lookback_of(us: NDArray[np.int64], ue: NDArray[np.int64], lo: int) -> int:
    """``lo`` moved back to the start of every failure run (records ``us``, ``ue``) across it."""
    while True:
        across = (us < lo) & (ue >= lo)
        if not across.any():
            return lo
        lo = int(us[across].min())


def _ts(ms: int) -> str:
    """A TIMESTAMPTZ literal of ``ms`` [ms since the epoch]."""
    stamp: str = pd.Timestamp(int(ms), unit="ms", tz="UTC").isoformat()
    return "'" + stamp + "'::TIMESTAMPTZ"


def _ts_us(us: int) -> str:
    """A TIMESTAMPTZ literal of ``us`` [us since the epoch], exact."""
    stamp: str = pd.Timestamp(int(us), unit="us", tz="UTC").isoformat()
    return "'" + stamp + "'::TIMESTAMPTZ"


def _time_filter(window: ReadWindow | None, ent: pd.DataFrame, column: str, interval: bool) -> str:
    """``WHERE`` condition reading only the records near the ranges (``interval``: by their end)."""
    if window is None:
        return ""
    w0, w1 = int(ent["w0"].min()), int(ent["w1"].max()) + (window.o_maxlen + 1 if interval else 0)
    return f"WHERE {column} >= {_ts(w0)} AND {column} < {_ts(w1)}"


#: the energy meters with records booked to an entity of the partition (their whole history: register steps)
_PART_METERS = """meter_id IN (SELECT meter_id FROM energy WHERE coalesce(equipment_id, scope) IN
                  (SELECT entity_id FROM _zz_ent))"""


def _lit(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def _failure_lookback(sr: StateRecords, lo: int) -> int:
    """``lo`` moved back to the start of every failure run (unplanned_downtime records, which outrank every
    other category, chained where they overlap or touch) that runs across it, so a failure's first instant
    inside planned busy time is found wherever the run began (failure events are counted there)."""
    u = sr.rank == R_UNPLANNED
    return _failure_lookback_of(sr.start[u], sr.end[u], lo)


def _bucket_segments(con: duckdb.DuckDBPyConnection, ent: pd.DataFrame, tl: Timeline, period: str,
                     buckets: pd.DataFrame | None = None) -> tuple[NDArray[np.int64], NDArray[np.int64], pd.DataFrame]:
    """Bucket segments of every entity on the composite axis, and their (key, start, end) table (``buckets``:
    explicit buckets by ``entity_id``, see :func:`partition_elements`)."""
    b = bucket_table(con, ent, period, buckets)
    key, s, e = (b[c].to_numpy() for c in ("key", "start_ms", "end_ms"))
    return tl.encode(key, s), tl.encode(key, e), b


#: The stored hours' buckets (:mod:`zhizao.kpi.stored`): each local hour, cut where a shift of the entity starts or
#: ends inside it, so that the shift buckets are sums of whole rows
HOUR_PARTS = "hour_parts"


def bucket_table(con: duckdb.DuckDBPyConnection, ent: pd.DataFrame, period: str, buckets: pd.DataFrame | None = None
                 ) -> pd.DataFrame:
    """The ``period`` buckets of every entity of ``ent`` (columns ``key``, ``tz``, ``w0``, ``w1`` and the
    level ids; for ``shift`` and :data:`HOUR_PARTS`, ``ent``'s keys and ids registered as ``_zz_ent`` on ``con``):
    columns ``key``, ``start_ms``, ``end_ms``, sorted by key and start. ``buckets``: explicit buckets by
    ``entity_id``."""
    if buckets is not None:
        key = pd.Series(ent["key"].to_numpy(), index=ent["entity_id"].to_numpy())
        k = key.reindex(buckets["entity_id"].to_numpy()).to_numpy()
        if pd.isna(k).any():
            raise ValueError("buckets of entities outside the partition")
        return _sorted_buckets(k, buckets["start_ms"].to_numpy(), buckets["end_ms"].to_numpy())
    if period == "shift":
        df = shift_spans(con, ent)
        return _sorted_buckets(df["key"].to_numpy(), df["s"].to_numpy(), df["e"].to_numpy())
    keys: list[NDArray[Any]] = []
    starts: list[NDArray[Any]] = []
    ends: list[NDArray[Any]] = []
    cache: dict[tuple[str, int, int], NDArray[np.int64]] = {}  # (zone, w0, w1) -> bucket edges
    for tz, w0, w1, grp in ((tz, w0, w1, g) for (tz, w0, w1), g in ent.groupby(["tz", "w0", "w1"])):
        if (tz, w0, w1) not in cache:
            cache[(tz, w0, w1)] = bucket_edges(int(w0), int(w1), "hour" if period == HOUR_PARTS else period, tz)
        edges = cache[(tz, w0, w1)]
        n = edges.size - 1
        k = grp["key"].to_numpy()
        keys.append(np.repeat(k, n))
        starts.append(np.tile(edges[:-1], k.size))
        ends.append(np.tile(edges[1:], k.size))
    b = _sorted_buckets(*(np.concatenate(x) if x else np.empty(0, np.int64) for x in (keys, starts, ends)))
    return _cut_at_shift_bounds(b, shift_spans(con, ent)) if period == HOUR_PARTS and len(b) else b


def _sorted_buckets(key: ArrayLike, s: ArrayLike, e: ArrayLike) -> pd.DataFrame:
    """Buckets ``key``, ``start_ms``, ``end_ms`` (int64) sorted by key and start."""
    key, s, e = (np.asarray(x).astype(np.int64) for x in (key, s, e))
    order = np.lexsort((s, key))
    return pd.DataFrame({"key": key[order], "start_ms": s[order], "end_ms": e[order]})


def shift_spans(con: duckdb.DuckDBPyConnection, ent: pd.DataFrame) -> pd.DataFrame:
    """The shift buckets of every entity of ``ent`` (``key``, ``w0``, ``w1``; its keys and ids registered as
    ``_zz_ent``): columns ``key``, ``s``, ``e`` [ms], the shift entries of its scopes (the entity, its equipment,
    work centre, area, site, enterprise) clipped to ``[w0, w1)``; where entries overlap, a later one (by its own
    start, then end) starts where the earlier ones end. Taken in the entries' own order, so a bucket's bounds
    inside a range are the same whatever the range (a narrower range clips, never reorders)."""
    if not len(ent):
        return pd.DataFrame({c: np.empty(0, np.int64) for c in ("key", "s", "e")})
    # (entries that end before every range or start after it change no bucket inside one: an earlier entry
    # pushes a later one's start only to its own end)
    cal = con.execute(f"""
        SELECT k.key, {floor_ms("c.start")} s, {floor_ms('c."end"')} e FROM calendar c
        JOIN (SELECT key, unnest([entity_id, equipment_id, work_center, area, site, enterprise]) AS sid
              FROM _zz_ent) k ON c.scope = k.sid
        WHERE c.kind = 'shift' AND c."end" > {_ts(int(ent["w0"].min()))} AND c.start < {_ts(int(ent["w1"].max()))}
        """).fetchnumpy()
    df = pd.DataFrame({"key": cal["key"], "s": cal["s"], "e": cal["e"]}).drop_duplicates()
    df = df.merge(ent[["key", "w0", "w1"]], on="key").sort_values(["key", "s", "e"], kind="stable")
    df["s"] = np.maximum(df["s"], df["w0"])
    df["e"] = np.minimum(df["e"], df["w1"])
    # overlapping shift entries: a later shift starts where the earlier one ended
    prev_end = df.groupby("key")["e"].cummax().groupby(df["key"]).shift(1).fillna(-np.inf)
    df["s"] = np.maximum(df["s"], prev_end).astype(np.int64)
    df = df[df["e"] > df["s"]]
    return df[["key", "s", "e"]].reset_index(drop=True)


def _cut_at_shift_bounds(hours: pd.DataFrame, spans: pd.DataFrame) -> pd.DataFrame:
    """``hours`` (consecutive buckets per key, sorted) cut at every bound of ``spans`` (key, s, e) inside them.

    >>> h = pd.DataFrame({"key": [0, 0], "start_ms": [0, 60], "end_ms": [60, 120]})
    >>> _cut_at_shift_bounds(h, pd.DataFrame({"key": [0], "s": [30], "e": [60]}))["start_ms"].tolist()
    [0, 30, 60]
    """
    if not len(spans):
        return hours
    key, s, e = (hours[c].to_numpy(np.int64) for c in ("key", "start_ms", "end_ms"))
    last = np.r_[key[1:] != key[:-1], True]  # each key's last hour: its end is the key's last edge
    pk = np.concatenate([key, key[last], spans["key"].to_numpy(np.int64), spans["key"].to_numpy(np.int64)])
    px = np.concatenate([s, e[last], spans["s"].to_numpy(np.int64), spans["e"].to_numpy(np.int64)])
    order = np.lexsort((px, pk))
    pk, px = pk[order], px[order]
    new = np.r_[True, (pk[1:] != pk[:-1]) | (px[1:] != px[:-1])]
    pk, px = pk[new], px[new]
    pair = pk[1:] == pk[:-1]  # (spans lie inside their key's range: clipped to [w0, w1))
    return pd.DataFrame({"key": pk[:-1][pair], "start_ms": px[:-1][pair], "end_ms": px[1:][pair]})


def _compute(con: duckdb.DuckDBPyConnection, ent: pd.DataFrame, tl: Timeline, period: str, lo: int, hi: int,
             thr_ms: int, settings: Settings, sr: StateRecords,
             p_records: Future[tuple[dict[str, NDArray[Any]], Extent]], pool: ThreadPoolExecutor, filled: set[str],
             whole: bool = True, explicit: pd.DataFrame | None = None, raw: bool = False,
             window: ReadWindow | None = None) -> ElementsResult | RawElements | None:
    """The kernel on one partition: the buckets, then each kind of element per bucket (time from the states
    and the calendar, production, energy, labour, quality), then the table (:func:`_elements_table`)."""
    n_eq = int((ent["level"] == "equipment").sum())
    bs, be, buckets = _bucket_segments(con, ent, tl, period, explicit)
    nb = len(buckets)
    if nb == 0:  # a partition without buckets (no shift entries of its scopes)
        return None if raw else ElementsResult(_empty_elements(), _empty_reasons(), period)
    out: dict[str, NDArray[np.float64]] = {name: np.zeros(nb) for name in ELEMENTS}
    # production elements on the worker thread while this one does the states (numpy releases the GIL)
    p_elements = pool.submit(lambda: production_elements(p_records.result()[0], tl, bs, be, nb))
    times = _time_section(con, ent, n_eq, tl, sr, pool, lo, hi, thr_ms, bs, be, nb, whole)
    del sr
    for name, v in times.ms.items():
        out[name] = v if raw else v / MS
    out["fe"] = times.fe
    # present: entities with any record of a kind; in_bucket: buckets with any record of the kind
    present: dict[str, NDArray[np.bool_]] = {g: np.zeros(len(ent), bool) for g in OPTIONAL_GROUPS}
    in_bucket: dict[str, NDArray[np.bool_]] = {g: np.zeros(nb, bool) for g in OPTIONAL_GROUPS}
    p_out, p_keys, in_bucket["production"] = p_elements.result()
    out.update(p_out)
    present["production"][p_keys] = True
    if "n_other" in ent.columns and not (ent["n_other"].to_numpy() > 0).any():
        # the context counts each entity's energy, labour and quality records by the key the sections join on: a
        # partition whose entities have none (a machine that reports states and counts only) reads none of them
        filled = set()
    for kind, section in (("energy", _energy_section(con, filled, settings, ent, tl, bs, be, nb, whole, window)),
                          ("labour", _labour_section(con, filled, ent, tl, bs, be, nb, window)),
                          ("quality", _quality_section(con, filled, ent, tl, bs, be, nb, window))):
        if section is not None:
            out.update(section.values)
            present[kind][section.keys] = True
            in_bucket[kind] = section.in_bucket
    if window is not None:
        # a window reads the records near it only; whether an equipment has a counter or a meter is a fact of
        # all its records (the outage elements count only those that have one)
        present["production"] = ent["n_production"].to_numpy() > 0
        is_eq = (ent["level"] == "equipment").to_numpy()
        present["energy"] |= np.where(is_eq, ent["entity_id"].isin(window.interval_energy).to_numpy(),
                                      ent["entity_id"].isin(window.interval_energy_scopes).to_numpy())
    return _elements_table(ent, buckets, out, present, in_bucket, times, period, raw)


@dataclass
class _TimeSection:
    """The time elements of a partition's buckets (:func:`_time_section`)."""

    ms: dict[str, NDArray[np.float64]]  # model.time_elements per bucket and "overlap" [ms]
    fe: NDArray[np.float64]  # failure events per bucket
    has_calendar: NDArray[np.bool_]  # per entity: whether any calendar entry applies
    reasons: _ReasonInputs  # what the loss reasons are computed from when asked for


def _time_section(con: duckdb.DuckDBPyConnection, ent: pd.DataFrame, n_eq: int, tl: Timeline, sr: StateRecords,
                  pool: ThreadPoolExecutor, lo: int, hi: int, thr_ms: int, bs: NDArray[np.int64],
                  be: NDArray[np.int64], nb: int, whole: bool) -> _TimeSection:
    """Time elements per bucket: the calendar cuts each bucket into windows (in pot or not, in planned downtime
    or not); the time of each state category inside each window comes from prefix sums over the state segments,
    so the millions of segments are never cut (kpi.intervals.time_between); :func:`zhizao.kpi.model.time_elements`
    of the sums per bucket and calendar class. Large stores are done in parts of whole equipment, taken in turn
    by this thread and one of the worker pool (numpy releases the GIL); the worker starts at once (resolving
    states needs no calendar) and waits for the windows."""
    n_parts = STATE_PARTS if sr.key.size >= PARALLEL_STATES else 1
    bounds = sorted({0, sr.key.size, *(int(np.searchsorted(sr.key, sr.key[sr.key.size * i // n_parts]))
                                        for i in range(1, n_parts))})
    parts = [(a, b) for a, b in pairwise(bounds) if b > a]
    windows: Future[Windows] = Future()
    slots: list[_StateTimes | None] = [None] * len(parts)
    todo, lock = iter(range(len(parts))), Lock()

    def work(cut: Windows | Callable[[], Windows], sr: StateRecords = sr) -> None:
        while True:
            with lock:
                i = next(todo, None)
            if i is None:
                return
            slots[i] = _state_times(sr, *parts[i], tl, lo, hi, thr_ms, cut, nb)

    helper = pool.submit(work, windows.result) if len(parts) > 1 else None
    try:
        # -- calendar -> POT layer (shift minus holiday) and planned-downtime layer
        (pot_s, pot_e), (pd_s, pd_e, pd_r), has_cal = calendar_layers(con, ent.iloc[:n_eq], tl,
                                                                       None if whole else "_zz_ent")
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
    done = [x for x in slots if x is not None]
    assert len(done) == len(slots)  # work() took every part
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

    def per_class(x: NDArray[np.float64]) -> NDArray[np.float64]:
        # summed milliseconds per bucket and class (integers, exact in float64 below 2**53)
        return np.bincount(group, weights=x[m], minlength=nb * 4).reshape(nb, 4)  # type: ignore[return-value]  # numpy types bincount as intp; with weights it is float64

    length = per_class((pe - ps).astype(np.float64))
    ms = model.time_elements(length, [per_class(d[:, r]) for r in range(n_r)])
    del d
    ms["overlap"] = per_class(ov).sum(axis=1)
    # loss reasons inside pbt: computed when first asked for (the report and the dashboard need them, the
    # KPI tables do not) from the segments and records kept for it
    reasons: _ReasonInputs = {"bs": bs, "be": be, "pot": (pot_s, pot_e), "pdl": (pd_s, pd_e), "parts": done,
                              "sr": sr}
    return _TimeSection(ms, sum((x.fe for x in done), np.zeros(nb)), has_cal, reasons)


@dataclass
class _RecordSection:
    """The elements of one kind of record (energy, labour, quality) per bucket."""

    values: dict[str, NDArray[np.float64]]  # element name -> per bucket
    keys: NDArray[np.int64]  # the entities (keys) with any record of the kind
    in_bucket: NDArray[np.bool_]  # per bucket: any record of the kind


def _energy_section(con: duckdb.DuckDBPyConnection, filled: set[str], settings: Settings, ent: pd.DataFrame,
                    tl: Timeline, bs: NDArray[np.int64], be: NDArray[np.int64], nb: int, whole: bool,
                    window: ReadWindow | None) -> _RecordSection | None:
    """energy_kwh and energy_kgce per bucket (interval readings and cumulative register steps, split at the
    bucket bounds in proportion to time) and counter_resets; None without energy records."""
    if whole:
        source = "energy"
    elif window is None:
        source = f"(SELECT * FROM energy WHERE {_PART_METERS})"
    else:
        w0, w1 = int(ent["w0"].min()), int(ent["w1"].max()) + window.o_maxlen + 1
        source = f"""(SELECT * FROM energy WHERE "end" >= {_ts(w0)} AND "end" < {_ts(w1)}
                         AND coalesce(reading, 'interval') = 'interval'
                         AND coalesce(equipment_id, scope) IN (SELECT entity_id FROM _zz_ent)"""
        if window.cumulative:
            source += f"""
                      UNION ALL SELECT * FROM energy WHERE reading = 'cumulative'
                         AND coalesce(equipment_id, scope) IN ({", ".join(_lit(e) for e in window.cumulative)})"""
        source += ")"
    en = _numpy_rows(con, filled, "energy", f"""
        SELECT k.key, {floor_ms("i.start")} s, {floor_ms('i."end"')} e, i.kwh, coalesce(i.kgce, 0) kgce,
               (i.flag IS NOT NULL)::INT AS flag
        FROM ({energy_intervals_sql(settings.kgce, source)}) i
        JOIN _zz_ent k ON k.entity_id = coalesce(i.equipment_id, i.scope)
             AND (k.level = 'equipment') = (i.equipment_id IS NOT NULL)
        ORDER BY k.key, s, e, i.meter_id, i.carrier""")  # sums in one order, whatever the query plan
    if not len(en["key"]):
        return None
    ek = np.asarray(en["key"], np.int64)
    split = split_timelines(tl, ek, en["s"], en["e"], bs, be)
    fb = locate(bs, be, tl.encode(ek, en["e"]) - 1)
    fl = np.asarray(en["flag"]) > 0
    return _RecordSection({"energy_kwh": split.sums(en["kwh"], nb), "energy_kgce": split.sums(en["kgce"], nb),
                           "counter_resets": np.bincount(fb[fl & (fb >= 0)], minlength=nb).astype(np.float64)},
                          ek, split.touched(nb))


def _labour_section(con: duckdb.DuckDBPyConnection, filled: set[str], ent: pd.DataFrame, tl: Timeline,
                    bs: NDArray[np.int64], be: NDArray[np.int64], nb: int,
                    window: ReadWindow | None) -> _RecordSection | None:
    """apat, apwt, apat_no_apwt and earned_hours per bucket (records split at the bucket bounds in proportion
    to time); None without labour records."""
    lb = _numpy_rows(con, filled, "labour", f"""
        SELECT k.key, {floor_ms("l.start")} s, {floor_ms('l."end"')} e, l.attendance_hours,
               coalesce(l.work_hours, 0) wh, (l.work_hours IS NULL)::INT AS no_wh, coalesce(l.earned_hours, 0) eh
        FROM labour l JOIN _zz_ent k ON k.entity_id = l.scope {_time_filter(window, ent, 'l."end"', True)}
        ORDER BY k.key, s, e""")
    if not len(lb["key"]):
        return None
    lk = np.asarray(lb["key"], np.int64)
    split = split_timelines(tl, lk, lb["s"], lb["e"], bs, be)
    apat = np.asarray(lb["attendance_hours"], np.float64)
    return _RecordSection({"apat": split.sums(apat, nb), "apwt": split.sums(lb["wh"], nb),
                           "apat_no_apwt": split.sums(apat * np.asarray(lb["no_wh"]), nb),
                           "earned_hours": split.sums(lb["eh"], nb)}, lk, split.touched(nb))


def _quality_section(con: duckdb.DuckDBPyConnection, filled: set[str], ent: pd.DataFrame, tl: Timeline,
                     bs: NDArray[np.int64], be: NDArray[np.int64], nb: int,
                     window: ReadWindow | None) -> _RecordSection | None:
    """ip (inspected), gp (passed at the first inspection) and defects per bucket, each inspection in the bucket
    of its time stamp; None without quality records."""
    qu = _numpy_rows(con, filled, "quality", f"""
        SELECT k.key, {floor_ms("q.ts")} t, (q.result = 'pass' AND coalesce(q.first_pass, true))::INT AS gp,
               (q.result = 'fail')::INT AS bad
        FROM quality q JOIN _zz_ent k ON k.entity_id = coalesce(q.equipment_id, q.scope)
             AND (k.level = 'equipment') = (q.equipment_id IS NOT NULL) {_time_filter(window, ent, "q.ts", False)}""")
    if not len(qu["key"]):
        return None
    qk = np.asarray(qu["key"], np.int64)
    qb = locate(bs, be, tl.encode(qk, qu["t"]))
    ok = qb >= 0
    ip = np.bincount(qb[ok], minlength=nb).astype(np.float64)
    # numpy types bincount as intp; with weights it is float64
    gp: NDArray[np.float64] = np.bincount(qb[ok], weights=np.asarray(qu["gp"], np.float64)[ok],  # type: ignore[assignment]
                                          minlength=nb)
    defects: NDArray[np.float64] = np.bincount(qb[ok], weights=np.asarray(qu["bad"], np.float64)[ok],  # type: ignore[assignment]
                                               minlength=nb)
    return _RecordSection({"ip": ip, "gp": gp, "defects": defects}, qk, ip > 0)


def _elements_table(ent: pd.DataFrame, buckets: pd.DataFrame, out: dict[str, NDArray[np.float64]],
                    present: dict[str, NDArray[np.bool_]], in_bucket: dict[str, NDArray[np.bool_]],
                    times: _TimeSection, period: str, raw: bool) -> ElementsResult | RawElements:
    """The partition's elements as a table (:func:`elements_table`) or, ``raw``, as :class:`RawElements`."""
    reasons = times.reasons
    if not raw:
        return elements_table(ent, buckets, out, present, in_bucket, times.has_calendar,
                              lambda periods: _loss_reasons(**reasons, periods=periods), period)
    bkey = buckets["key"].to_numpy()
    out = {name: np.asarray(x, dtype=np.float64) for name, x in out.items()}
    is_eq = (ent["level"] == "equipment").to_numpy()[bkey]
    has_data = ent["has_data"].to_numpy(bool)[bkey]
    no_time = ~is_eq | ~(times.has_calendar[bkey] | has_data)
    for name in TIME_ELEMENTS + COUNT_ELEMENTS:
        out[name][no_time] = np.nan
    for kind, names in OPTIONAL_GROUPS.items():
        for name in names:
            out[name][~in_bucket[kind]] = np.nan
    return RawElements(ent, buckets, {n: out[n] for n in RAW_ELEMENTS}, times.has_calendar,
                       lambda periods: _loss_reasons(**reasons, periods=periods, in_ms=True))


def elements_table(ent: pd.DataFrame, buckets: pd.DataFrame, out: dict[str, NDArray[np.float64]],
                   present: dict[str, NDArray[np.bool_]], in_bucket: dict[str, NDArray[np.bool_]],
                   has_cal: NDArray[np.bool_], loss_reasons: Callable[[pd.DataFrame], pd.DataFrame], period: str
                   ) -> ElementsResult:
    """The elements of entities ``ent`` (``key`` 0 .. n - 1) per bucket (``buckets``: ``key``, ``start_ms``,
    ``end_ms``) as a table, from the sums ``out`` per bucket (time elements in seconds): nulls where there is no
    time (scope entities; equipment without calendar and data) or no record of a kind in the bucket (gaps are
    gaps, not zeros), capacity and outages derived. ``present``: per entity and optional kind, whether it has
    any record of the kind; ``in_bucket``: per bucket; ``has_cal``: per entity, whether a calendar applies;
    ``loss_reasons(periods)``: the loss-reason table of the buckets ``periods`` (bucket, entity_id, period_start,
    period_end), computed when first asked for."""
    bkey = buckets["key"].to_numpy()
    # scope entities carry no machine time; entities without records of a kind carry nulls, not zeros
    out = {name: np.asarray(x, dtype=np.float64) for name, x in out.items()}
    is_eq = (ent["level"] == "equipment").to_numpy()[bkey]
    has_data = ent["has_data"].to_numpy(bool)[bkey]
    # equipment under a calendar is scheduled whether it reports or not; without one, over its data extent
    no_time = ~is_eq | ~(has_cal[bkey] | has_data)
    # -- capacity: epc [units/h] x pot [h]
    epc = ent["epc"].to_numpy(dtype=np.float64)[bkey]
    out["epc"] = epc * out["pot"] / 3600.0
    # outages: production time in buckets without counts (of equipment with a counter) or without energy
    # records (of equipment with a meter)
    for name, kind in (("counts_missing", "production"), ("energy_missing", "energy")):
        out[name] = np.where(present[kind][bkey] & ~in_bucket[kind], out["apt"], 0.0)
    for name in TIME_ELEMENTS + COUNT_ELEMENTS + CAPACITY_ELEMENTS + OUTAGE_ELEMENTS:
        out[name][no_time] = np.nan
    # gaps are gaps: a bucket without any record of a kind has null elements of that kind, not zeros
    for kind, names in OPTIONAL_GROUPS.items():
        for name in names:
            out[name][~in_bucket[kind]] = np.nan
    info = ent.take(bkey)  # ent's row i has key i
    cols = {c: info[c].reset_index(drop=True) for c in ("level", "entity_id", "equipment_id", "work_center",
                                                        "area", "site", "enterprise", "tz")}
    cols["period_start"] = pd.to_datetime(buckets["start_ms"].to_numpy(), unit="ms", utc=True)
    cols["period_end"] = pd.to_datetime(buckets["end_ms"].to_numpy(), unit="ms", utc=True)
    cols["no_calendar"] = ~has_cal[bkey] & is_eq & has_data
    cols["no_data"] = is_eq & ~has_data
    df = pd.DataFrame({**cols, **{name: out[name] for name in ELEMENTS}})
    periods = df[["entity_id", "period_start", "period_end"]].reset_index(names="bucket")
    return ElementsResult(df, lambda: loss_reasons(periods), period)


#: The elements a :class:`RawElements` holds (capacity and outages are derived from them and the entity)
RAW_ELEMENTS = TIME_ELEMENTS + COUNT_ELEMENTS + PRODUCTION_ELEMENTS + ENERGY_ELEMENTS + LABOUR_ELEMENTS \
    + QUALITY_ELEMENTS


@dataclass
class RawElements:
    """What the kernel computes for one partition, before it becomes a table (``raw=True`` of
    :func:`partition_elements`).

    Attributes
    ----------
    ent : pandas.DataFrame
        The partition's entities (``key`` 0 .. n - 1).
    buckets : pandas.DataFrame
        ``key``, ``start_ms``, ``end_ms`` per bucket (sorted by key and start).
    values : dict of str to array of float64, shape (n_buckets,)
        :data:`RAW_ELEMENTS`: time elements in integer milliseconds (exact), ``fe`` in events, the others in
        their units; NaN where the entity has no time elements (scope entities, equipment without calendar
        and data) or the bucket no record of the kind (gaps are gaps).
    has_calendar : array of bool, shape (n,)
        Per entity: whether any calendar entry applies.
    reasons : callable
        ``reasons(periods)``: the loss-reason rows (see :func:`_loss_reasons`) for ``periods`` (bucket,
        entity_id, period_start, period_end).
    """

    ent: pd.DataFrame
    buckets: pd.DataFrame
    values: dict[str, NDArray[np.float64]]
    has_calendar: NDArray[np.bool_]
    reasons: Callable[[pd.DataFrame], pd.DataFrame]


@dataclass
class _StateTimes:
    """What one part of the state records gives (see :func:`_state_times`)."""

    windows: slice  # the windows between the cut points around the part's timelines
    d: NDArray[np.float64]  # (windows, n_ranks) time of each category inside each window [ms]
    ov: NDArray[np.float64] | None  # (windows,) double-covered time inside each window [ms], None if there is none
    fe: NDArray[np.float64]  # (nb,) failure events per bucket
    seg: RankedSegments  # resolved segments (start, end, rank) on the composite axis
    # records in the query window: start and end on the composite axis, rank, rows in the StateRecords
    rec: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int8], slice | NDArray[np.int64]]
    # (an array, or a slice when all of the part's records are in the window)


class _ReasonInputs(TypedDict):
    """What :func:`_loss_reasons` needs besides the periods, kept with a result until its reasons are asked for."""

    bs: NDArray[np.int64]
    be: NDArray[np.int64]
    pot: Segments
    pdl: Segments
    parts: list[_StateTimes]
    sr: StateRecords


def _state_times(sr: StateRecords, a: int, b: int, tl: Timeline, lo: int, hi: int, thr_ms: int,
                 windows: Windows | Callable[[], Windows], nb: int) -> _StateTimes:
    """Time of each state category inside the windows between the cut points around the timelines of the
    state records ``a:b`` (whole equipment) of ``sr``, and failure events per bucket. ``windows``: (cut
    points, and the start, end and bucket of the pieces in planned busy time by the calendar), or a function
    returning them (called once the states are resolved)."""
    s0, e0 = sr.start[a:b], sr.end[a:b]
    win = (e0 > lo) & (s0 < hi)
    rows: slice | NDArray[np.int64]
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
    return _StateTimes(slice(k0, k1), d, ov, fe, (seg_s, seg_e, seg_r), (ss, se, srank, rows))


def _overlap_segments(ss: NDArray[np.int64], se: NDArray[np.int64]) -> Segments:
    """Segments of the composite axis covered by two or more state records."""
    t = np.concatenate([ss, se])
    d = np.concatenate([np.ones(ss.size, np.int64), -np.ones(se.size, np.int64)])
    ok = np.concatenate([se > ss, se > ss])
    t, d = t[ok], d[ok]
    pts, inv = unique_points(t, return_inverse=True)
    c = np.cumsum(np.bincount(inv, weights=d, minlength=pts.size))[:-1]
    m = c > 1.5
    return pts[:-1][m], pts[1:][m]


def _loss_reasons(bs: NDArray[np.int64], be: NDArray[np.int64], pot: Segments, pdl: Segments,
                  parts: list[_StateTimes], sr: StateRecords, periods: pd.DataFrame, in_ms: bool = False
                  ) -> pd.DataFrame:
    """Loss time inside pbt by bucket, category and reason.

    Each piece of loss time takes the reason of the record of its category that covers it (the records behind a
    minor stop may be logged as unplanned downtime); where several do (records of one category that overlap), of
    the one that started last (ties: the larger reason text; not the later end, which a window read may place at
    the horizon for an open record). The rule looks at the records covering the piece only, so a piece has the
    same reason whatever range is read (the stored hours' sums equal the kernel's). ``parts``: the
    :class:`_StateTimes` of the parts of the state records ``sr``, in order; ``periods``: entity_id, period_start,
    period_end per bucket. ``in_ms``: column ``ms`` (integer milliseconds) instead of ``seconds``.
    """
    seg = [np.concatenate(x) for x in zip(*(p.seg for p in parts))] if parts else [np.empty(0, np.int64)] * 3
    rec = [np.concatenate([np.arange(r.start, r.stop) if isinstance(r, slice) else r for r in x])
           for x in zip(*(p.rec for p in parts))] if parts else [np.empty(0, np.int64)] * 4
    loss_seg = IS_LOSS[seg[2]]
    seg_s, seg_e, seg_r = (x[loss_seg] for x in seg)
    ss, se, srank, rows = rec
    loss_rec = IS_LOSS[srank]
    rs_all, re_all, rrank, rrows = ss[loss_rec], se[loss_rec], srank[loss_rec], rows[loss_rec]
    rcode, codes = sr.reasons(rrows)
    # the order among records of one start on the composite axis (clipped to the read range): the true start, then
    # the reason text; neither depends on the range read or on the order of the rows (an open record's end does:
    # a window read that did not read the next start ends it at the horizon)
    text_rank = np.argsort(np.argsort(np.asarray(codes, dtype=object), kind="stable"), kind="stable")
    order_all = np.lexsort((text_rank[rcode] if len(codes) else rcode, sr.start[rrows], rs_all))
    ps, pe, (ib, ist, ipot, ipd) = overlay([rs_all, re_all], [(bs, be), (seg_s, seg_e), pot, pdl])
    cat = take(seg_r, ist, -1)
    m = (ib >= 0) & (cat >= 0) & (ipot >= 0) & (ipd < 0)  # loss time inside pbt
    ps, ib, cat, dur = ps[m], ib[m], cat[m], (pe - ps)[m]
    frames: list[pd.DataFrame] = []
    for r in LOSS_RANKS:
        pm = cat == r
        if not pm.any():
            continue
        src = (rrank == r) | ((rrank == R_UNPLANNED) if r == R_MINOR else False)
        order = order_all[src[order_all]]
        i = last_covering(rs_all[order], re_all[order], ps[pm])
        frames.append(pd.DataFrame({"bucket": ib[pm], "category": r, "reason": take(rcode[order], i, -1),
                                    "ms": dur[pm]}))
    if not frames:
        return _empty_reasons()
    df = pd.concat(frames, ignore_index=True).groupby(["bucket", "category", "reason"], as_index=False)["ms"].sum()
    df["reason"] = np.asarray([*codes, ""], dtype=object)[df["reason"].to_numpy()]  # -1: none
    return reasons_table(df, periods, in_ms)


def reasons_table(df: pd.DataFrame, periods: pd.DataFrame, in_ms: bool = False) -> pd.DataFrame:
    """The loss-reason table of :class:`ElementsResult` from loss time summed per ``bucket``, ``category`` (its
    rank in :data:`CATEGORY_PRECEDENCE`) and ``reason`` (its code, '' for none) in integer milliseconds ``ms``:
    sorted by bucket, category and reason, the category named, ``seconds`` (``in_ms``: ``ms`` kept), and
    ``periods``' columns of each bucket (``bucket`` dropped). Every path that gives loss reasons (the kernel, the
    stored hours) makes its table here, so that they give the same one."""
    if not len(df):
        return _empty_reasons()
    df = df.sort_values(["bucket", "category", "reason"], ignore_index=True)  # reason codes follow no order
    df["category"] = np.asarray(CATEGORY_PRECEDENCE, dtype=object)[df["category"].to_numpy()]
    if not in_ms:
        df["seconds"] = df.pop("ms") / MS
    return df.merge(periods, on="bucket").drop(columns="bucket")


def _empty_elements() -> pd.DataFrame:
    cols = ["level", "entity_id", "equipment_id", "work_center", "area", "site", "enterprise", "tz",
            "period_start", "period_end", "no_calendar", "no_data", *ELEMENTS]
    return pd.DataFrame({c: pd.Series(dtype="float64" if c in ELEMENTS else "object") for c in cols})


def _empty_reasons() -> pd.DataFrame:
    """The loss-reason table without rows, with the columns and types of one with rows; every path of the
    engine that has no loss reasons (no data, a partition without buckets, no losses) gives this frame, so an
    update, a partitioned and a one-pass computation give the same one."""
    return pd.DataFrame({"category": pd.Series(dtype=object), "reason": pd.Series(dtype=object),
                         "seconds": pd.Series(dtype=np.float64), "entity_id": pd.Series(dtype=object),
                         "period_start": pd.Series(dtype=object), "period_end": pd.Series(dtype=object)})
