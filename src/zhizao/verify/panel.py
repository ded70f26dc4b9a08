"""The equipment panel of one scope and window: daily elements per equipment, production records per
equipment, product and day, and the status of each equipment-day (data expected, outages), in numpy.

Production efficiency and the defect rate are standardised over cells of equipment and product, unit energy
is modelled on each equipment's run hours, and outages are found per equipment-day: all from this panel,
built once per scope and window (:func:`panel`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: Daily equipment elements the panel keeps (``counts_missing`` and ``energy_missing``, production time in
#: buckets without counts or without energy records of an equipment that has a counter or a meter, where the
#: engine gives them: zhizao.kpi.coverage).
COLUMNS = ("apt", "pot", "pq", "gq", "ideal_time", "pq_no_pri", "energy_kgce", "energy_kwh", "output_value",
           "counts_missing", "energy_missing")


@dataclass
class Panel:
    """Equipment x day arrays of one scope and window.

    Attributes
    ----------
    equipment : numpy.ndarray of object, shape (k,)
    days : numpy.ndarray of int64, shape (d,)
        Local day starts [ms] with an equipment row.
    el : dict of str to numpy.ndarray, shape (k, d)
        Elements (NaN where the equipment has no row for the day, or no data of that kind).
    rec : dict of str to numpy.ndarray, shape (r,)
        Production records in the window: ``e`` (equipment index), ``p`` (product index into ``products``),
        ``day`` (day index), ``n`` (produced), ``good``, ``c`` (scrap + rework), ``pri`` [s].
    products : numpy.ndarray of object
    status : dict of str to bool numpy.ndarray, shape (k, d)
        ``counts_expected``, ``counter_outage``, ``time_outage``, ``energy_expected``, ``meter_outage`` (see
        :func:`equipment_day_status`).
    """

    equipment: np.ndarray
    days: np.ndarray
    el: dict[str, NDArray[np.float64]]
    rec: dict[str, NDArray[Any]]  # int64 indices e, p, day; float64 n, good, c, pri
    products: np.ndarray
    status: dict[str, NDArray[np.bool_]]

    def bad(self, kinds: tuple[str, ...] = ("counter", "meter", "time")) -> np.ndarray:
        """Equipment-days (k x d) with an outage of any of ``kinds``."""
        out = np.zeros((self.equipment.size, self.days.size), bool)
        for k in kinds:
            out |= self.status[f"{k}_outage"]
        return out


def equipment_day_status(el: dict[str, NDArray[np.float64]], present: NDArray[np.bool_]
                         ) -> dict[str, NDArray[np.bool_]]:
    """Whether counts and energy were expected on each equipment-day, and whether they are missing.

    - ``counts_expected``: production time (APT > 0) on the day, for an equipment with production records in
      the window; ``counter_outage``: expected and no count (PQ null or 0);
    - ``time_outage``: counts on the day but no production time, for an equipment with production time in
      the window (its states missing that day);
    - ``energy_expected``: a metered equipment (energy above 0 on at least half of its days in the window)
      with scheduled or production time on the day, or one whose meter reads above 0 on 90 % of its days (a
      standby load); ``meter_outage``: expected and no energy (null or 0).

    Parameters
    ----------
    el : dict of (k, d) arrays
    present : bool array (k, d)
        Equipment-days with an elements row.
    """
    apt, pot, pq = (np.nan_to_num(el[c]) for c in ("apt", "pot", "pq"))
    kgce = np.nan_to_num(el["energy_kgce"])
    days = np.maximum(present.sum(axis=1, keepdims=True), 1)
    run, sched, counted = apt > 0, pot > 0, pq > 0
    has_counts = counted.any(axis=1, keepdims=True)
    metered = (kgce > 0).sum(axis=1, keepdims=True) / days
    counts_expected = run & has_counts & present
    energy_expected = (((metered >= 0.5) & (sched | run)) | (metered >= 0.9)) & present
    counter_outage = counts_expected & ~counted
    meter_outage = energy_expected & ~(kgce > 0)
    # the engine's own outage elements, where it gives them (production time without counts or energy)
    if "counts_missing" in el:
        counter_outage |= (np.nan_to_num(el["counts_missing"]) > 0) & present
    if "energy_missing" in el:
        meter_outage |= (np.nan_to_num(el["energy_missing"]) > 0) & present
    return {"counts_expected": counts_expected | counter_outage, "counter_outage": counter_outage,
            "time_outage": counted & ~run & present & run.any(axis=1, keepdims=True),
            "energy_expected": energy_expected | meter_outage, "meter_outage": meter_outage}


def build_panel(eq_cols: dict[str, NDArray[Any]], eq_rows: np.ndarray, rec_cols: dict[str, NDArray[Any]],
                rec_rows: np.ndarray, day_edges: np.ndarray) -> Panel:
    """The panel of the equipment rows ``eq_rows`` and production records ``rec_rows`` over the days
    ``day_edges`` (local day starts [ms], and the window's end).

    Parameters
    ----------
    eq_cols : dict of arrays
        Daily equipment elements of the store: ``equipment_id``, ``t`` (day start [ms]) and :data:`COLUMNS`.
    rec_cols : dict of arrays
        Production records of the store: ``equipment_id``, ``product_id``, ``s``, ``t`` [ms], ``n``,
        ``good``, ``c``, ``pri``.
    """
    a, b = day_edges[0], day_edges[-1]
    t = eq_cols["t"][eq_rows]
    sel = eq_rows[(t >= a) & (t < b)]
    eq_names, e = np.unique(eq_cols["equipment_id"][sel].astype(str), return_inverse=True)
    days, d = np.unique(eq_cols["t"][sel], return_inverse=True)
    k, nd = eq_names.size, days.size
    el = {}
    for c in COLUMNS:
        m = np.full((k, nd), np.nan)
        if c in eq_cols:
            m[e, d] = eq_cols[c][sel]
        el[c] = m
    present = np.zeros((k, nd), bool)
    present[e, d] = True
    status = equipment_day_status(el, present)
    # production records: their day is the local day of their midpoint, one of the panel's days
    mid = (rec_cols["s"][rec_rows] + rec_cols["t"][rec_rows]) // 2
    k_edge = np.searchsorted(day_edges, mid, side="right") - 1
    inside = (k_edge >= 0) & (k_edge < day_edges.size - 1)
    start = day_edges[np.clip(k_edge, 0, day_edges.size - 1)]
    day_i = np.clip(np.searchsorted(days, start), 0, max(nd - 1, 0))
    on = inside & (nd > 0) & (days[day_i] == start) if nd else np.zeros(mid.size, bool)
    rr, day_i = rec_rows[on], day_i[on]
    pos = np.searchsorted(eq_names, rec_cols["equipment_id"][rr].astype(str))
    pos = np.clip(pos, 0, max(k - 1, 0))
    known = (k > 0) & (eq_names[pos] == rec_cols["equipment_id"][rr].astype(str)) if k else np.zeros(rr.size, bool)
    rr, day_i, pos = rr[known], day_i[known], pos[known]
    prod_names, p = np.unique(rec_cols["product_id"][rr].astype(str), return_inverse=True)
    rec = {"e": pos, "p": p, "day": day_i, "n": rec_cols["n"][rr].astype(float),
           "good": rec_cols["good"][rr].astype(float), "c": rec_cols["c"][rr].astype(float),
           "pri": rec_cols["pri"][rr].astype(float)}
    return Panel(eq_names.astype(object), days, el, rec, prod_names.astype(object), status)


def cell_sums(pn: Panel, exclude: np.ndarray | None = None) -> dict[str, NDArray[Any]]:
    """Production records summed per (equipment, product, day): index arrays ``e``, ``p``, ``day`` and sums
    ``n``, ``good``, ``c`` and ``ideal`` (planned run time x units [h], NaN where a product has none); records
    of equipment-days in ``exclude`` (k x d bool) left out."""
    r = pn.rec
    keep = np.ones(r["e"].size, bool) if exclude is None else ~exclude[r["e"], r["day"]]
    np_ = max(pn.products.size, 1)
    nd = max(pn.days.size, 1)
    key = (r["e"][keep] * np_ + r["p"][keep]) * nd + r["day"][keep]
    u, inv = np.unique(key, return_inverse=True)
    n = np.bincount(inv, r["n"][keep], u.size)
    pri = r["pri"][keep]
    ideal_rec = np.where(np.isfinite(pri) & (pri > 0), r["n"][keep] * np.nan_to_num(pri), np.nan)
    ideal = np.bincount(inv, np.nan_to_num(ideal_rec), u.size)
    ideal[np.bincount(inv, ~np.isfinite(ideal_rec), u.size) > 0] = np.nan
    return {"e": u // nd // np_, "p": (u // nd) % np_, "day": u % nd, "n": n,
            "good": np.bincount(inv, r["good"][keep], u.size), "c": np.bincount(inv, r["c"][keep], u.size),
            "ideal": ideal / 3600.0}


def split_hours(pn: Panel, cs: dict[str, NDArray[Any]]) -> tuple[np.ndarray, bool]:
    """Each (equipment, product, day) cell's share of its equipment-day's production time [h]: by planned run
    time x units, or by units where a product of that equipment-day has no planned run time. Returns the
    hours and whether any equipment-day fell back to units."""
    ed = cs["e"] * max(pn.days.size, 1) + cs["day"]
    u, inv = np.unique(ed, return_inverse=True)
    no_pri = np.bincount(inv, ~np.isfinite(cs["ideal"]), u.size)[inv] > 0
    tot_i = np.bincount(inv, np.nan_to_num(cs["ideal"]), u.size)[inv]
    tot_n = np.bincount(inv, cs["n"], u.size)[inv]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(no_pri | (tot_i <= 0), cs["n"] / tot_n, np.nan_to_num(cs["ideal"]) / tot_i)
    apt = pn.el["apt"][cs["e"], cs["day"]] / 3600.0
    return apt * share, bool(no_pri.any())
