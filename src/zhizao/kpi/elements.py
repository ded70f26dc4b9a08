"""ISO 22400-2 elements per entity and time bucket: the kernel of zhizao.

Entities are equipment, plus every work_center, area, site or enterprise to which labour, energy or quality
records are booked directly. Every element is a sum over time or over records, so elements of any group are
the sums of its members' elements (see :mod:`zhizao.kpi.rollup`).

The time model (reference/iso22400.md, "Time model")::

    ct   calendar time of the bucket
    pot  planned operation time: shift time of the calendar, minus holidays, minus time in state category
         not_scheduled. Equipment without any calendar entry is scheduled around the clock (flag no_calendar).
    pdt  planned downtime: the part of pot covered by calendar breaks or planned_downtime entries, or by states
         of category planned_downtime or unscheduled
    pbt  planned busy time = pot - pdt
    apt, aust, adot   time in states production, setup, no_order inside pbt
    adet              time in unplanned_downtime and minor_stop inside pbt (adet_minor: the minor stops)
    aupt = apt + aust;  aubt = aupt + adet
    unaccounted       pbt time with no state record (pbt - aubt - adot); a data-quality figure
    pmt               planned maintenance: calendar planned_downtime, or planned_downtime states inside pbt
    ttr               failure time (unplanned_downtime, not minor stops) inside pbt; cmt = ttr
    fe                failure events: unplanned_downtime runs at or above the minor-stop threshold, counted in
                      the bucket where they start
    outside_pbt       production, setup and stop time outside pbt (states outside the calendar; flagged)
    overlap           time covered by more than one state record (counted once; flagged)

State records without ``end`` last until the next state of the equipment; the last one lasts until the
equipment's data horizon (its latest time stamp in states and production). Overlapping records are resolved
by :data:`zhizao.schema.CATEGORY_PRECEDENCE`. An unplanned_downtime run shorter than the minor-stop threshold
is a minor stop; one of exactly the threshold is a failure. Runs are classified on their full length, not
the part inside the query, so results do not depend on how a range is split.

Counts (production) stamped at a time (no start) belong to the bucket ``[start, end)`` that contains the
stamp; counts over an interval are split in proportion to the overlap. Energy and labour intervals are
split the same way; quality results are counted at their time stamp.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

from zhizao.kpi.buckets import bucket_edges, default_range
from zhizao.kpi.energy import energy_intervals_sql
from zhizao.kpi.intervals import MS, Timeline, locate, overlay, resolve, split_over, take, unique_points
from zhizao.schema import CATEGORY_PRECEDENCE, LEVELS

RANK = {c: i for i, c in enumerate(CATEGORY_PRECEDENCE)}
R_UNPLANNED, R_MINOR, R_SETUP, R_PRODUCTION, R_NO_ORDER, R_PLANNED, R_UNSCHED, R_NOT_SCHED = range(8)
LOSS_RANKS = (R_UNPLANNED, R_MINOR, R_SETUP, R_NO_ORDER)

#: Default minor-stop threshold [s] (a setting; reference/iso22400.md, "Loss categories").
MINOR_STOP_THRESHOLD = 300.0

TIME_ELEMENTS = ("ct", "pot", "pdt", "pbt", "apt", "aust", "aupt", "adet", "adet_minor", "aubt", "adot",
                 "unaccounted", "pmt", "ttr", "unscheduled", "outside_pbt", "overlap")
COUNT_ELEMENTS = ("fe",)
PRODUCTION_ELEMENTS = ("pq", "gq", "sq", "rq", "ideal_time", "ideal_good_time", "pq_no_pri", "output_value")
ENERGY_ELEMENTS = ("energy_kwh", "energy_kgce", "counter_resets")
LABOUR_ELEMENTS = ("apat", "apwt", "apat_no_apwt", "earned_hours")
QUALITY_ELEMENTS = ("ip", "gp", "defects")
CAPACITY_ELEMENTS = ("epc",)
ELEMENTS = (TIME_ELEMENTS + COUNT_ELEMENTS + PRODUCTION_ELEMENTS + ENERGY_ELEMENTS + LABOUR_ELEMENTS
            + QUALITY_ELEMENTS + CAPACITY_ELEMENTS)
#: Elements that are null (no data) for an entity with no records in the source table, rather than zero.
OPTIONAL_GROUPS = {"production": PRODUCTION_ELEMENTS, "energy": ENERGY_ELEMENTS, "labour": LABOUR_ELEMENTS,
                   "quality": QUALITY_ELEMENTS}


@dataclass
class Settings:
    """Engine settings (all have documented defaults)."""

    minor_stop_threshold: float = MINOR_STOP_THRESHOLD  # [s]
    kgce: dict[str, float] = field(default_factory=dict)  # overrides of DEFAULT_KGCE


@dataclass
class ElementsResult:
    """Output of :func:`compute_elements`."""

    elements: pd.DataFrame  # one row per entity and bucket
    reasons: pd.DataFrame  # loss time per equipment, bucket, category and reason (inside pbt)
    period: str


def _entities(con) -> pd.DataFrame:
    eq = con.execute("""SELECT equipment_id, work_center, area, site, enterprise, coalesce(timezone, 'UTC') AS tz,
                               epc FROM equipment ORDER BY equipment_id""").df()
    eq.insert(0, "level", "equipment")
    eq.insert(1, "entity_id", eq["equipment_id"])
    # scopes that carry labour, energy or quality records of their own
    scopes = con.execute("""
        SELECT DISTINCT scope FROM labour
        UNION SELECT DISTINCT scope FROM energy WHERE equipment_id IS NULL AND scope IS NOT NULL
        UNION SELECT DISTINCT scope FROM quality WHERE equipment_id IS NULL AND scope IS NOT NULL""").fetchall()
    rows = []
    eq_ids = set(eq["equipment_id"])
    for (scope,) in scopes:
        if scope in eq_ids:
            continue
        for lvl in LEVELS[1:]:
            m = eq[eq[lvl] == scope]
            if len(m):
                r = {"level": lvl, "entity_id": scope, "equipment_id": None, "tz": m["tz"].min(), "epc": np.nan}
                above = LEVELS[LEVELS.index(lvl):]
                for L in LEVELS[1:]:
                    r[L] = m[L].iloc[0] if L in above else None
                rows.append(r)
                break
    ent = pd.concat([eq, pd.DataFrame(rows, columns=eq.columns)], ignore_index=True) if rows else eq
    ent["key"] = np.arange(len(ent), dtype=np.int64)
    return ent


def _ms(ts) -> int:
    return int(pd.Timestamp(ts).tz_convert("UTC").value // 1_000_000) if pd.Timestamp(ts).tzinfo else \
        int(pd.Timestamp(ts).tz_localize("UTC").value // 1_000_000)


def data_extent(con) -> dict[str | None, tuple[int, int]]:
    """Earliest and latest time stamp [ms] of the shop-floor data per site (key None: all sites).

    States, production, energy, labour and quality records count; records booked to an enterprise count for
    each of its sites.
    """
    rows = con.execute("""
        WITH sc AS (SELECT DISTINCT site, unnest([equipment_id, work_center, area, site, enterprise]) AS sid
                    FROM equipment)
        SELECT site, min(t0), max(t1) FROM (
            SELECT e.site, min(start) t0, max(greatest(start, coalesce("end", start))) t1
                FROM states JOIN equipment e USING (equipment_id) GROUP BY ALL
            UNION ALL SELECT e.site, min(coalesce(start, "end")), max("end")
                FROM production JOIN equipment e USING (equipment_id) GROUP BY ALL
            UNION ALL SELECT sc.site, min(coalesce(start, "end")), max("end")
                FROM energy x JOIN sc ON sc.sid = coalesce(x.equipment_id, x.scope) GROUP BY ALL
            UNION ALL SELECT sc.site, min(start), max("end") FROM labour x JOIN sc ON sc.sid = x.scope GROUP BY ALL
            UNION ALL SELECT sc.site, min(ts), max(ts)
                FROM quality x JOIN sc ON sc.sid = coalesce(x.equipment_id, x.scope) GROUP BY ALL)
        WHERE t0 IS NOT NULL GROUP BY ALL""").fetchall()
    out = {site: (_ms(a), _ms(b)) for site, a, b in rows}
    if out:
        out[None] = (min(a for a, _ in out.values()), max(b for _, b in out.values()))
    return out


def compute_elements(con: duckdb.DuckDBPyConnection, period: str = "day", start=None, end=None,
                     settings: Settings | None = None) -> ElementsResult:
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

    Returns
    -------
    ElementsResult
        ``elements``: columns level, entity_id, equipment_id, work_center, area, site, enterprise, tz,
        period_start, period_end (tz-aware, UTC), no_calendar (bool) and :data:`ELEMENTS` (times in seconds,
        quantities in units, energy in kWh and kgce, labour in hours); null where the entity has no records
        of that kind. ``reasons``: loss seconds inside pbt by equipment, bucket, category and reason.

    Raises
    ------
    ValueError
        Unknown period, an empty range, or ``shift`` buckets without shift entries.
    """
    settings = settings or Settings()
    ent = _entities(con)
    if ent.empty:
        return ElementsResult(_empty_elements(), _empty_reasons(), period)
    if start is not None and end is not None:
        w0, w1 = _ms(start), _ms(end)
        if w1 <= w0:
            raise ValueError(f"empty query range: end {end} is not after start {start}")
        ent["w0"], ent["w1"] = w0, w1
    else:
        # by default each site's range: whole buckets around that site's data
        extent = data_extent(con)
        if not extent:
            return ElementsResult(_empty_elements(), _empty_reasons(), period)
        w0, w1 = [], []
        for site, tz in zip(ent["site"], ent["tz"]):
            a, b = default_range(*extent.get(site, extent[None]), period, tz)
            w0.append(a if start is None else _ms(start))
            w1.append(b if end is None else _ms(end))
        ent["w0"], ent["w1"] = w0, w1
        if (ent["w1"] <= ent["w0"]).any():
            raise ValueError("empty query range")
    thr_ms = int(round(settings.minor_stop_threshold * MS))
    lo, hi = int(ent["w0"].min()) - thr_ms, int(ent["w1"].max()) + thr_ms
    tl = Timeline(lo - 1, hi + 1, len(ent))
    con.register("_zz_ent", ent[["key", "level", "entity_id", "equipment_id", "work_center", "area", "site",
                                 "enterprise"]])
    try:
        return _compute(con, ent, tl, period, lo, hi, thr_ms, settings)
    finally:
        con.unregister("_zz_ent")


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
            raise ValueError("period 'shift' needs calendar entries of kind shift")
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


def _compute(con, ent, tl, period, lo, hi, thr_ms, settings) -> ElementsResult:
    n_eq = int((ent["level"] == "equipment").sum())
    bs, be, buckets = _bucket_segments(con, ent, tl, period)
    nb = len(buckets)
    out = {name: np.zeros(nb) for name in ELEMENTS}
    bkey = buckets["key"].to_numpy()

    # -- states -> resolved category segments
    st = con.execute(f"""
        WITH h AS (
            SELECT equipment_id, max(t) AS horizon FROM (
                SELECT equipment_id, greatest(start, coalesce("end", start)) t FROM states
                UNION ALL SELECT equipment_id, "end" FROM production) GROUP BY ALL
        ), s AS (
            SELECT equipment_id, start, coalesce("end", lead(start) OVER (PARTITION BY equipment_id
                       ORDER BY start, state), h.horizon) AS "end", category, reason
            FROM states JOIN h USING (equipment_id)
        )
        SELECT k.key, epoch_ms(s.start) AS s, epoch_ms(s."end") AS e, {_rank_sql("s.category")} AS rank,
               coalesce(s.reason, '') AS reason
        FROM s JOIN _zz_ent k ON k.level = 'equipment' AND k.entity_id = s.equipment_id
        WHERE s."end" > make_timestamptz({lo} * 1000) AND s.start < make_timestamptz({hi} * 1000)
        """).fetchnumpy()
    skey = np.asarray(st["key"], dtype=np.int64)
    has_states = np.zeros(len(ent), bool)
    has_states[np.unique(np.asarray(con.execute(
        "SELECT DISTINCT k.key FROM states s JOIN _zz_ent k ON k.level = 'equipment' "
        "AND k.entity_id = s.equipment_id").fetchnumpy()["key"], np.int64))] = True
    srank = np.asarray(st["rank"], dtype=np.int64)
    ss = tl.encode(skey, np.clip(np.asarray(st["s"], np.int64), lo, hi))
    se = tl.encode(skey, np.clip(np.asarray(st["e"], np.int64), lo, hi))
    seg_s, seg_e, seg_r, _ = resolve(ss, se, srank, len(CATEGORY_PRECEDENCE))
    # minor stops: unplanned runs shorter than the threshold
    seg_r = np.where((seg_r == R_UNPLANNED) & (seg_e - seg_s < thr_ms), R_MINOR, seg_r)

    # overlap (double-covered time) per bucket: resolve each category alone and count coverage
    ov_s, ov_e = _overlap_segments(ss, se)

    # -- calendar -> POT layer (shift minus holiday) and planned-downtime layer
    cal = con.execute("""
        SELECT DISTINCT k.key, epoch_ms(c.start) s, epoch_ms(c."end") e, c.kind FROM calendar c
        JOIN (SELECT key, unnest([equipment_id, work_center, area, site, enterprise]) AS sid
              FROM _zz_ent WHERE level = 'equipment') k ON c.scope = k.sid""").fetchnumpy()
    ckey = np.asarray(cal["key"], np.int64)
    kind = np.asarray(cal["kind"], dtype=object)
    cs = tl.encode(ckey, np.asarray(cal["s"], np.int64))
    ce = tl.encode(ckey, np.asarray(cal["e"], np.int64))
    has_cal = np.zeros(len(ent), dtype=bool)
    has_cal[np.unique(ckey)] = True
    no_cal = np.flatnonzero(~has_cal[:n_eq])
    # equipment without a calendar: one shift over its whole window
    nc_s = tl.encode(no_cal, ent["w0"].to_numpy()[no_cal] - thr_ms)
    nc_e = tl.encode(no_cal, ent["w1"].to_numpy()[no_cal] + thr_ms)
    m_shift = (kind == "shift") | (kind == "holiday")
    pot_s, pot_e, pot_r, _ = resolve(np.r_[cs[m_shift], nc_s], np.r_[ce[m_shift], nc_e],
                                     np.r_[(kind[m_shift] == "shift").astype(np.int64), np.ones(no_cal.size, np.int64)], 2)
    keep = pot_r == 1  # rank 0 = holiday wins over shift
    pot_s, pot_e = pot_s[keep], pot_e[keep]
    m_pd = (kind == "break") | (kind == "planned_downtime")
    pd_s, pd_e, pd_r, _ = resolve(cs[m_pd], ce[m_pd], (kind[m_pd] == "break").astype(np.int64), 2)  # 0 = maint.

    # -- overlay: buckets x states x POT x planned downtime, cut at every loss record start (for reasons)
    loss_starts = ss[np.isin(srank, LOSS_RANKS)]
    ps, pe, (ib, ist, ipot, ipd, iov) = overlay(
        [loss_starts], [(bs, be), (seg_s, seg_e), (pot_s, pot_e), (pd_s, pd_e), (ov_s, ov_e)])
    m = ib >= 0
    ps, pe, ib, ist, ipot, ipd, iov = ps[m], pe[m], ib[m], ist[m], ipot[m], ipd[m], iov[m]
    dur = (pe - ps).astype(np.float64) / MS
    cat = take(seg_r, ist, -1)
    pdk = take(pd_r, ipd, -1)  # 0 maintenance, 1 break
    pot = (ipot >= 0) & (cat != R_NOT_SCHED)
    pdt = pot & ((pdk >= 0) | (cat == R_PLANNED) | (cat == R_UNSCHED))
    pbt = pot & ~pdt

    def acc(mask):
        return np.bincount(ib[mask], weights=dur[mask], minlength=nb)

    out["ct"] = acc(np.ones(ib.size, bool))
    out["pot"], out["pdt"], out["pbt"] = acc(pot), acc(pdt), acc(pbt)
    out["apt"] = acc(pbt & (cat == R_PRODUCTION))
    out["aust"] = acc(pbt & (cat == R_SETUP))
    out["ttr"] = acc(pbt & (cat == R_UNPLANNED))
    out["adet_minor"] = acc(pbt & (cat == R_MINOR))
    out["adet"] = out["ttr"] + out["adet_minor"]
    out["adot"] = acc(pbt & (cat == R_NO_ORDER))
    out["aupt"] = out["apt"] + out["aust"]
    out["aubt"] = out["aupt"] + out["adet"]
    out["unaccounted"] = acc(pbt & (cat < 0))
    out["pmt"] = acc(pot & ((pdk == 0) | ((cat == R_PLANNED) & (pdk < 0))))
    out["unscheduled"] = acc(pot & (cat == R_UNSCHED))
    out["outside_pbt"] = acc(~pbt & np.isin(cat, (R_PRODUCTION, R_SETUP, R_UNPLANNED, R_MINOR)))
    out["overlap"] = acc(iov >= 0)
    fail = seg_r == R_UNPLANNED
    fb = locate(bs, be, seg_s[fail])
    out["fe"] = np.bincount(fb[fb >= 0], minlength=nb).astype(np.float64)

    # loss reasons inside pbt
    reasons = _reasons(ps, ib, cat, pbt, dur, ss, srank, st["reason"], nb)

    # -- production
    present = {g: np.zeros(len(ent), bool) for g in OPTIONAL_GROUPS}
    pr = con.execute("""
        SELECT k.key, epoch_ms(coalesce(p.start, p."end")) s, epoch_ms(p."end") e, p.produced,
               coalesce(p.good, p.produced - coalesce(p.scrap, 0) - coalesce(p.rework, 0)) AS good,
               coalesce(p.scrap, 0) scrap, coalesce(p.rework, 0) rework,
               coalesce(pe.pri, pg.pri) AS pri, coalesce(pe.unit_value, pg.unit_value) AS unit_value
        FROM production p JOIN _zz_ent k ON k.level = 'equipment' AND k.entity_id = p.equipment_id
        LEFT JOIN products pe ON pe.product_id = p.product_id AND pe.equipment_id = p.equipment_id
        LEFT JOIN products pg ON pg.product_id = p.product_id AND pg.equipment_id IS NULL
        """).fetchnumpy()
    if len(pr["key"]):
        pk = np.asarray(pr["key"], np.int64)
        present["production"][np.unique(pk)] = True
        rec, seg, frac = _split(tl, pk, pr["s"], pr["e"], bs, be)
        pri = np.asarray(pr["pri"], dtype=np.float64)  # NaN where missing
        pq = np.asarray(pr["produced"], np.float64)
        good = np.asarray(pr["good"], np.float64)
        val = np.asarray(pr["unit_value"], np.float64)

        def addp(name, x):
            out[name] = np.bincount(seg, weights=frac * x[rec], minlength=nb)

        addp("pq", pq)
        addp("gq", good)
        addp("sq", np.asarray(pr["scrap"], np.float64))
        addp("rq", np.asarray(pr["rework"], np.float64))
        has_pri = ~np.isnan(pri)
        addp("ideal_time", np.where(has_pri, pri * pq, 0.0))
        addp("ideal_good_time", np.where(has_pri, pri * good, 0.0))
        addp("pq_no_pri", np.where(has_pri, 0.0, pq))
        addp("output_value", np.where(np.isnan(val), 0.0, val * good))

    # -- energy (interval readings and cumulative register steps)
    en = con.execute(f"""
        SELECT k.key, epoch_ms(i.start) s, epoch_ms(i."end") e, i.kwh, coalesce(i.kgce, 0) kgce,
               (i.flag IS NOT NULL)::INT AS flag
        FROM ({energy_intervals_sql(settings.kgce)}) i
        JOIN _zz_ent k ON k.entity_id = coalesce(i.equipment_id, i.scope)
             AND (k.level = 'equipment') = (i.equipment_id IS NOT NULL)""").fetchnumpy()
    if len(en["key"]):
        ek = np.asarray(en["key"], np.int64)
        present["energy"][np.unique(ek)] = True
        rec, seg, frac = _split(tl, ek, en["s"], en["e"], bs, be)
        out["energy_kwh"] = np.bincount(seg, weights=frac * np.asarray(en["kwh"], np.float64)[rec], minlength=nb)
        out["energy_kgce"] = np.bincount(seg, weights=frac * np.asarray(en["kgce"], np.float64)[rec], minlength=nb)
        fb = locate(bs, be, tl.encode(ek, en["e"]) - 1)
        fl = np.asarray(en["flag"]) > 0
        out["counter_resets"] = np.bincount(fb[fl & (fb >= 0)], minlength=nb).astype(np.float64)

    # -- labour
    lb = con.execute("""
        SELECT k.key, epoch_ms(l.start) s, epoch_ms(l."end") e, l.attendance_hours,
               coalesce(l.work_hours, 0) wh, (l.work_hours IS NULL)::INT AS no_wh, coalesce(l.earned_hours, 0) eh
        FROM labour l JOIN _zz_ent k ON k.entity_id = l.scope""").fetchnumpy()
    if len(lb["key"]):
        lk = np.asarray(lb["key"], np.int64)
        present["labour"][np.unique(lk)] = True
        rec, seg, frac = _split(tl, lk, lb["s"], lb["e"], bs, be)
        apat = np.asarray(lb["attendance_hours"], np.float64)
        out["apat"] = np.bincount(seg, weights=frac * apat[rec], minlength=nb)
        out["apwt"] = np.bincount(seg, weights=frac * np.asarray(lb["wh"], np.float64)[rec], minlength=nb)
        out["apat_no_apwt"] = np.bincount(seg, weights=frac * (apat * np.asarray(lb["no_wh"]))[rec], minlength=nb)
        out["earned_hours"] = np.bincount(seg, weights=frac * np.asarray(lb["eh"], np.float64)[rec], minlength=nb)

    # -- quality
    qu = con.execute("""
        SELECT k.key, epoch_ms(q.ts) t, (q.result = 'pass' AND coalesce(q.first_pass, true))::INT AS gp,
               (q.result = 'fail')::INT AS bad
        FROM quality q JOIN _zz_ent k ON k.entity_id = coalesce(q.equipment_id, q.scope)
             AND (k.level = 'equipment') = (q.equipment_id IS NOT NULL)""").fetchnumpy()
    if len(qu["key"]):
        qk = np.asarray(qu["key"], np.int64)
        present["quality"][np.unique(qk)] = True
        qb = locate(bs, be, tl.encode(qk, qu["t"]))
        ok = qb >= 0
        out["ip"] = np.bincount(qb[ok], minlength=nb).astype(np.float64)
        out["gp"] = np.bincount(qb[ok], weights=np.asarray(qu["gp"], np.float64)[ok], minlength=nb)
        out["defects"] = np.bincount(qb[ok], weights=np.asarray(qu["bad"], np.float64)[ok], minlength=nb)

    # -- capacity: epc [units/h] x pot [h]
    epc = ent["epc"].to_numpy(dtype=np.float64)[bkey]
    out["epc"] = epc * out["pot"] / 3600.0

    df = buckets.merge(ent.drop(columns=["w0", "w1"]), on="key", how="left")
    for name in ELEMENTS:
        df[name] = out[name]
    # scope entities carry no machine time; entities without records of a kind carry nulls, not zeros
    scope_rows = df["level"] != "equipment"
    df.loc[scope_rows | ~has_states[bkey], list(TIME_ELEMENTS + COUNT_ELEMENTS + CAPACITY_ELEMENTS)] = np.nan
    for group, names in OPTIONAL_GROUPS.items():
        df.loc[~present[group][bkey], list(names)] = np.nan
    df["no_calendar"] = ~has_cal[bkey] & ~scope_rows & has_states[bkey]
    df["period_start"] = pd.to_datetime(df["start_ms"], unit="ms", utc=True)
    df["period_end"] = pd.to_datetime(df["end_ms"], unit="ms", utc=True)
    cols = ["level", "entity_id", "equipment_id", "work_center", "area", "site", "enterprise", "tz",
            "period_start", "period_end", "no_calendar", *ELEMENTS]
    reasons = reasons.merge(df[["entity_id", "period_start", "period_end"]].reset_index(names="bucket"),
                            on="bucket").drop(columns="bucket")
    return ElementsResult(df[cols].reset_index(drop=True), reasons, period)


def _split(tl, key, s, e, bs, be):
    """Split records [s, e) [ms] of timelines ``key`` over the bucket segments, in proportion to their true
    length (the composite axis clips records to the query window)."""
    s = np.asarray(s, np.int64)
    e = np.asarray(e, np.int64)
    return split_over(tl.encode(key, s), tl.encode(key, e), bs, be, length=(e - s).astype(np.float64))


def _rank_sql(column: str) -> str:
    """SQL CASE giving the precedence rank of a state category (see CATEGORY_PRECEDENCE)."""
    return "CASE " + column + " " + " ".join(f"WHEN '{c}' THEN {i}" for c, i in RANK.items()) + " END"


def _overlap_segments(ss, se):
    """Segments of the composite axis covered by two or more state records."""
    z = np.empty(0, np.int64)
    if ss.size == 0:
        return z, z
    order = np.argsort(ss, kind="stable")
    if np.all(se[order][:-1] <= ss[order][1:]):
        return z, z  # disjoint records: no overlap
    t = np.concatenate([ss, se])
    d = np.concatenate([np.ones(ss.size, np.int64), -np.ones(se.size, np.int64)])
    ok = np.concatenate([se > ss, se > ss])
    t, d = t[ok], d[ok]
    pts, inv = unique_points(t, return_inverse=True)
    c = np.cumsum(np.bincount(inv, weights=d, minlength=pts.size))[:-1]
    m = c > 1.5
    return pts[:-1][m], pts[1:][m]


def _reasons(ps, ib, cat, pbt, dur, ss, srank, reason_arr, nb) -> pd.DataFrame:
    """Loss time inside pbt by bucket, category and reason (the reason of the latest record of that
    category that started at or before the piece)."""
    reason_arr = np.asarray(reason_arr, dtype=object)
    frames = []
    for r in LOSS_RANKS:
        pm = pbt & (cat == r)
        if not pm.any():
            continue
        # the records behind a minor stop may be logged as unplanned downtime
        src = (srank == r) | ((srank == R_UNPLANNED) if r == R_MINOR else False)
        rs = ss[src]
        order = np.argsort(rs, kind="stable")
        rs, rr = rs[order], reason_arr[src][order]
        i = np.searchsorted(rs, ps[pm], side="right") - 1
        reason = take(rr, i, "")
        frames.append(pd.DataFrame({"bucket": ib[pm], "category": CATEGORY_PRECEDENCE[r], "reason": reason,
                                    "seconds": dur[pm]}))
    if not frames:
        return _empty_reasons().assign(bucket=pd.Series(dtype=np.int64))[["bucket", "category", "reason", "seconds"]]
    df = pd.concat(frames, ignore_index=True)
    return df.groupby(["bucket", "category", "reason"], as_index=False)["seconds"].sum()


def _empty_elements() -> pd.DataFrame:
    cols = ["level", "entity_id", "equipment_id", "work_center", "area", "site", "enterprise", "tz",
            "period_start", "period_end", "no_calendar", *ELEMENTS]
    return pd.DataFrame({c: pd.Series(dtype="float64" if c in ELEMENTS else "object") for c in cols})


def _empty_reasons() -> pd.DataFrame:
    return pd.DataFrame({"category": pd.Series(dtype=object), "reason": pd.Series(dtype=object),
                         "seconds": pd.Series(dtype=np.float64)})
