"""Verification of a registered project: default windows, all indicators, results stored with the project."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Collection, Iterable
from typing import TYPE_CHECKING, Any, NoReturn

import pandas as pd

from zhizao.errors import NotFound, ZhizaoError
from zhizao.messages import DAY, Message, define
from zhizao.store import equipment as store_equipment
from zhizao.store import records as store_records
from zhizao.verify import checks as C
from zhizao.verify.indicators import UNKNOWN_SCOPE, Window, Windows, verify
from zhizao.verify.inputs import Instant, VerificationInputs
from zhizao.verify.methods import METHODS
from zhizao.verify.result import VerificationResult

if TYPE_CHECKING:
    from zhizao.api import Workspace

#: Indicators verified for a project by default (the programme's headline indicators).
PROJECT_INDICATORS = ("production_efficiency", "defect_rate", "operating_cost", "unit_energy", "development_cycle")
WINDOW_MONTHS = 12

NO_PROJECT = define("verify.error.no_project", "no project %(project_id)s")


def default_windows(start: Instant, commissioning_end: Instant, months: int = WINDOW_MONTHS) -> Windows:
    """The project's default windows: ``months`` before its start, and ``months`` from the end of
    commissioning (steady state). reference/transformation.md, "Windows"."""
    s, c = pd.Timestamp(start), pd.Timestamp(commissioning_end)
    return (s - pd.DateOffset(months=months), s), (c, c + pd.DateOffset(months=months))


def not_verified(indicator: str, scope: str, baseline: Window, reporting: Window, confidence: float,
                 project_id: str | None, reason: Message | str, notes: Iterable[Message] = ()) -> VerificationResult:
    """A result without a value: the indicator could not be computed (``reason``: a message or text)."""
    res = VerificationResult(
        indicator=indicator, definition="", scope=scope,
        baseline_period=(pd.Timestamp(baseline[0]).isoformat(), pd.Timestamp(baseline[1]).isoformat()),
        reporting_period=(pd.Timestamp(reporting[0]).isoformat(), pd.Timestamp(reporting[1]).isoformat()),
        baseline=None, reporting=None, adjusted_baseline=None, change=None, improvement=None, ci_low=None,
        ci_high=None, confidence=confidence, method=METHODS["not_verified"](), project_id=project_id,
        checks=[C.Check(False, C.COMPUTABLE(reason=reason))], notes=list(notes))
    return res.judge()


def verify_project(ws: Workspace, project_id: str, indicators: Iterable[str] | None = None, confidence: float = 0.9,
                   baseline: Window | None = None, reporting: Window | None = None, store: bool = True,
                   inputs: VerificationInputs | None = None, **kw: Any) -> list[VerificationResult]:
    """Verify a project's indicators and store the results with it.

    Parameters
    ----------
    ws : zhizao.Workspace
    project_id : str
    indicators : list of str, optional
        Default :data:`PROJECT_INDICATORS`.
    confidence : float
    baseline, reporting : (start, end), optional
        Explicit windows; default :func:`default_windows`, clipped to the whole local months in which the
        scope has operating records (states other than ``not_scheduled``; a shorter window is stated in the
        result's notes). Buckets without any record would otherwise enter as zero use at zero output.
    store : bool
        Write the results into table ``verifications`` (the latest result per project and indicator counts).
    inputs : VerificationInputs, optional
        Prepared inputs (:meth:`VerificationInputs.prepare`); by default read for this project.
    **kw
        Passed to :func:`zhizao.verify.indicators.verify` (uncertainty, granularity, n_boot, seed, ...).

    Returns
    -------
    list of VerificationResult
        One per indicator; an indicator the data cannot verify gives a result without a value, verdict
        ``refused`` and the reason in its failed check ``verify.check.computable``.

    Raises
    ------
    zhizao.errors.NotFound
        If the project does not exist.
    """
    inputs = inputs if inputs is not None else VerificationInputs(ws)
    row = inputs.project(project_id)
    if row is None:
        raise NotFound(NO_PROJECT(project_id=project_id))
    scope = row["scope"] if isinstance(row["scope"], str) and row["scope"] else inputs.enterprise_site(
        row["enterprise_id"])
    tz = _scope_zone(inputs, scope)
    (b0, b1), (r0, r1) = default_windows(_instant(row["start"], tz), _instant(row["commissioning_end"], tz))
    notes: list[Message] = []
    if (baseline is None or reporting is None) and scope is not None:
        try:
            ext = inputs.state_extent(scope)
        except LookupError:
            ext = (None, None)
        if ext[0] is not None and ext[1] is not None:
            lo, hi = _whole_months(inputs, scope, (ext[0], ext[1]), b0.tz)
            if lo > b0:
                notes.append(C.NOTE_WINDOW(period=C.word("baseline"), start=DAY(date=lo.isoformat()),
                                           end=DAY(date=(b1 - pd.Timedelta(microseconds=1)).isoformat()),
                                           months=WINDOW_MONTHS))
                b0 = lo
            if hi < r1:
                notes.append(C.NOTE_WINDOW(period=C.word("reporting"), start=DAY(date=r0.isoformat()),
                                           end=DAY(date=(hi - pd.Timedelta(microseconds=1)).isoformat()),
                                           months=WINDOW_MONTHS))
                r1 = hi
    baseline = baseline or (b0, b1)
    reporting = reporting or (r0, r1)
    out = []
    for ind in indicators or PROJECT_INDICATORS:
        try:
            if scope is None:  # an enterprise without sited equipment: refused as verify refuses any unknown scope
                raise NotFound(UNKNOWN_SCOPE(scope=None))
            res = verify(ws, ind, scope, baseline, reporting, confidence=confidence, project_id=project_id,
                         inputs=inputs, **kw)
            res.notes = notes + res.notes
        except ZhizaoError as e:
            res = not_verified(ind, scope or "", baseline, reporting, confidence, project_id, e.message, notes)
        out.append(res)
    if store:
        store_results(ws, out)
    return out


def _scope_zone(inputs: VerificationInputs, scope: str | None) -> str | None:
    """The plant's zone of a scope (None when no equipment names it)."""
    try:
        return inputs.scope(scope).tz if isinstance(scope, str) else None
    except LookupError:
        return None


def _instant(v: Instant, tz: str | None) -> pd.Timestamp:
    """A project's register date as the instant it begins in the plant's zone ``tz`` (register dates are
    calendar dates, :mod:`zhizao.portfolio.dates`); a time stamp with a zone stays as it is."""
    t = pd.Timestamp(v)
    if t.tzinfo is not None:
        return t
    return t.tz_localize(tz or "UTC")


def store_results(ws: Workspace, results: list[VerificationResult]) -> None:
    """Append results to table ``verifications`` in one transaction (in their order, in one statement: an
    ``executemany`` of a programme's thousands of results cost more than their JSON)."""
    import pyarrow as pa

    rows = pa.table({"i": pa.array(range(len(results)), pa.int64()),
                     "project_id": pa.array([r.project_id for r in results], pa.string()),
                     "indicator": pa.array([r.indicator for r in results], pa.string()),
                     "scope": pa.array([r.scope for r in results], pa.string()),
                     "result": pa.array([r.to_json() for r in results], pa.string())})
    ws.con.execute("BEGIN TRANSACTION")
    try:
        if results:
            ws.con.register("_zz_results", rows)
            try:
                ws.con.execute("INSERT INTO verifications (project_id, indicator, scope, result) "
                               "SELECT project_id, indicator, scope, result FROM _zz_results ORDER BY i")
            finally:
                ws.con.unregister("_zz_results")
        ws.con.execute("COMMIT")
    except BaseException:
        ws.con.execute("ROLLBACK")
        raise


def stored_results(ws: Workspace, project_id: str | None = None) -> list[VerificationResult]:
    """The latest stored result per project, indicator and scope (all projects when ``project_id`` is None;
    results without a project count per scope)."""
    q = """SELECT result FROM (
               SELECT result, row_number() OVER (PARTITION BY project_id, indicator, scope
                                                 ORDER BY computed_at DESC) rn
               FROM verifications WHERE (? IS NULL OR project_id = ?)) WHERE rn = 1"""
    return [VerificationResult.from_dict(json.loads(r)) for (r,) in ws.con.execute(q, [project_id, project_id]
                                                                                  ).fetchall()]


def _whole_months(inputs: VerificationInputs, scope: str, ext: tuple[dt.datetime, dt.datetime],
                  tz: dt.tzinfo | None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The whole local months of ``scope`` that contain the operating extent ``ext`` (start of the first, end
    of the last), so that clipped windows keep whole days and months."""
    from zhizao.kpi.buckets import default_range, utc_ms

    a, b = default_range(utc_ms(ext[0]), utc_ms(ext[1]), "month", inputs.scope(scope).tz)
    lo, hi = (pd.Timestamp(x, unit="ms", tz="UTC") for x in (a, b))
    return (lo.tz_convert(tz), hi.tz_convert(tz)) if tz is not None else (lo, hi)


def prepare(ws: Workspace, periods: Collection[str] = ("day",), project_ids: Collection[str] | None = None
            ) -> VerificationInputs:
    """:meth:`VerificationInputs.prepare`: the inputs of verifying many projects, read in bulk."""
    return VerificationInputs.prepare(ws, project_ids, periods)


STORE_EVERY = 100  #: projects whose results :func:`verify_all_projects` stores in one transaction
CHUNK = 10  #: projects per task of the process pool


class _NoStore:
    """Stands in for the store connection in a forked worker: a worker computes from the prepared inputs only."""

    def __getattr__(self, name: str) -> NoReturn:
        raise _NeedsStore(name)


class _NeedsStore(Exception):
    pass


_WORKER: dict[str, Any] = {}  # the worker's inputs, keywords and the parent's connection


def _worker_init() -> None:
    inputs = _WORKER["inputs"]
    _WORKER["con"] = inputs.ws.con  # kept referenced: the parent's connection must not be closed from a worker
    inputs.ws.con = _NoStore()


def _verify_chunk(ids: list[str]) -> list[tuple[str, list[VerificationResult] | None]]:
    inputs, kw = _WORKER["inputs"], _WORKER["kw"]
    out: list[tuple[str, list[VerificationResult] | None]] = []
    for pid in ids:
        try:
            out.append((pid, verify_project(inputs.ws, pid, store=False, inputs=inputs, **kw)))
        except Exception:
            out.append((pid, None))
    return out


NO_SCOPE = define("verify.skip.no_scope", "not verified: project %(project)s names no scope and its enterprise "
                                          "%(enterprise)s has no registered equipment")
NO_EQUIPMENT = define("verify.skip.no_equipment", "not verified: no equipment is registered in scope %(scope)s yet")
NO_RECORDS = define("verify.skip.no_records", "not verified: the equipment of scope %(scope)s has sent no "
                                              "shop-floor records")
NO_DATES = define("verify.skip.no_dates", "not verified: project %(project)s has no start or end of "
                                          "commissioning")


def unverifiable(ws: Workspace, project_ids: Iterable[str] | None = None) -> dict[str, Message]:
    """The projects that the data cannot verify at all, each with the reason (a Message): no scope and no
    equipment of the enterprise, no equipment registered in the scope yet, or no shop-floor record of any kind
    in the scope (and no development cycle of the enterprise). Read in a few queries for the whole register:
    :func:`verify_all_projects` skips these projects instead of storing a "not verified" result per indicator.

    Parameters
    ----------
    ws : zhizao.Workspace
    project_ids : iterable of str, optional
        Default every project.

    Returns
    -------
    dict
        project_id -> :class:`zhizao.messages.Message`.
    """
    con = ws.con
    prj = con.execute("SELECT project_id, enterprise_id, scope, start, commissioning_end FROM projects").df()
    if project_ids is not None:
        prj = prj[prj["project_id"].isin(list(project_ids))]
    if prj.empty:
        return {}
    eq = store_equipment.hierarchy(con)
    active, scoped = store_records.entities_with_records(con)
    cycles = {e for (e,) in con.execute("SELECT DISTINCT enterprise_id FROM development_cycles").fetchall()}
    known, with_data = set(), set(scoped)
    cols = ["equipment_id", "work_center", "area", "site", "enterprise"]
    for row in eq[cols].itertuples(index=False):
        ids = [x for x in row if isinstance(x, str)]
        known.update(ids)
        if row[0] in active:
            with_data.update(ids)
    site_of = eq.dropna(subset=["enterprise"]).groupby("enterprise")["site"].min().to_dict()
    out: dict[str, Message] = {}
    for r in prj.itertuples(index=False):
        if r.start is None or r.commissioning_end is None or pd.isna(r.start) or pd.isna(r.commissioning_end):
            out[r.project_id] = NO_DATES(project=r.project_id)
            continue
        scope = r.scope if isinstance(r.scope, str) and r.scope else site_of.get(r.enterprise_id)
        if r.enterprise_id in cycles:
            continue  # the development cycle may be verifiable without shop-floor data
        if scope is None or (isinstance(scope, float) and scope != scope):
            out[r.project_id] = NO_SCOPE(project=r.project_id, enterprise=r.enterprise_id)
        elif scope not in known:
            out[r.project_id] = NO_EQUIPMENT(scope=scope)
        elif scope not in with_data:
            out[r.project_id] = NO_RECORDS(scope=scope)
    return out


def verify_all_projects(ws: Workspace, project_ids: list[str] | None = None,
                        progress: Callable[[int, int], object] | None = None, workers: int = 1,
                        inputs: VerificationInputs | None = None, **kw: Any) -> list[VerificationResult]:
    """Verify every registered project (or ``project_ids``) and store the results.

    The store is read in bulk first (:meth:`VerificationInputs.prepare`), and results are stored in
    transactions of :data:`STORE_EVERY` projects; the results equal those of :func:`verify_project` one by one.

    Parameters
    ----------
    ws : zhizao.Workspace
    project_ids : list of str, optional
        Default: every project, in id order.
    progress : callable, optional
        Called with (done, total) after each project (for a progress bar).
    workers : int, default 1
        Processes that verify projects in parallel (``fork`` start method only, e.g. Linux; elsewhere 1).
        The workers compute from the prepared inputs and never touch the store; a project that would need
        the store is verified again in the calling process. Results and their order do not depend on it.
    inputs : VerificationInputs, optional
        Prepared inputs (default: prepared here).
    **kw
        Passed to :func:`verify_project` (indicators, confidence, store, uncertainty, ...).

    Returns
    -------
    list of VerificationResult
        In the order of ``project_ids``. Projects the data cannot verify at all (:func:`unverifiable`: no
        equipment in their scope yet, no records) are skipped: no result is stored for them, and
        :func:`unverifiable` gives each one's reason.
    """
    import multiprocessing as mp

    ids = project_ids or [p for (p,) in ws.con.execute("SELECT project_id FROM projects ORDER BY 1").fetchall()]
    skip = unverifiable(ws, ids)  # no data at all: skipped with the reason, nothing stored (costs next to nothing)
    if skip:
        ids = [p for p in ids if p not in skip]
    store = kw.pop("store", True)
    inputs = inputs if inputs is not None else prepare(ws, [kw.get("granularity", "day")], ids)
    out: list[VerificationResult] = []
    pending: list[VerificationResult] = []
    done = 0

    def collect(pid: str, res: list[VerificationResult] | None) -> None:
        nonlocal done, pending
        if res is None:  # a worker could not verify it from the prepared inputs: here, with the store
            res = verify_project(ws, pid, store=False, inputs=inputs, **kw)
        out.extend(res)
        pending += res
        done += 1
        if store and (done % STORE_EVERY == 0 or done == len(ids)):
            store_results(ws, pending)
            pending = []
        if progress:
            progress(done, len(ids))

    if workers > 1 and len(ids) > CHUNK and "fork" in mp.get_all_start_methods():
        _WORKER.update(inputs=inputs, kw=kw)
        try:
            chunks = [ids[i:i + CHUNK] for i in range(0, len(ids), CHUNK)]
            with mp.get_context("fork").Pool(workers, initializer=_worker_init) as pool:
                for part in pool.imap(_verify_chunk, chunks):
                    for pid, res in part:
                        collect(pid, res)
        finally:
            _WORKER.clear()
    else:
        for pid in ids:
            collect(pid, verify_project(ws, pid, store=False, inputs=inputs, **kw))
    return out
