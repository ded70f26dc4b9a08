"""A discrete-event plant simulator that writes the canonical tables and its own ISO 22400 ground truth.

The simulator generates a plant (enterprise ``E1``, site ``S1``, areas ``A1..``, lines ``L01..``, machines
``M001..``), a two-shift calendar, machine states with orders, setups, failures, minor stops and idle gaps,
hourly production counts, quarter-hour energy readings, labour per line and shift, and sampled quality
inspections.  Next to the data it computes the ISO 22400-2 *elements* per machine and local calendar day
from its own event list and calendar (never from zhizao's KPI engine), so that an engine run on the written
tables can be checked against a known answer.

All internal time arithmetic uses integer seconds since the Unix epoch (UTC); local days, hours and quarter
hours come from the IANA time zone, so 23 h and 25 h days at daylight-saving changes are handled exactly.
Intervals are half-open, ``[start, end)``.

References
----------
.. [1] ISO 22400-2:2014, Automation systems and integration - Key performance indicators (KPIs) for
   manufacturing operations management - Part 2: Definitions and descriptions.
.. [2] OPC Foundation, OPC 40001-1 (Machinery), Annex C: mapping of machine states to ISO 22400 times.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

__all__ = ["STATE_CATEGORY", "TRUTH_COLUMNS", "simulate_plant", "write_plant"]

# ------------------------------------------------------------------------------------------------------------
# Model constants
# ------------------------------------------------------------------------------------------------------------

#: Shift template for Monday to Saturday: (name, start, end, break start, break end), local wall-clock time.
SHIFTS = (
    ("early", "06:00", "14:00", "10:00", "10:30"),
    ("late", "14:00", "22:00", "18:00", "18:30"),
)
MACHINES_PER_LINE = 5
LINES_PER_AREA = 4
SITE = "S1"
ENTERPRISE = "E1"

MAINTENANCE_S = 7200  #: preventive maintenance window per machine and week [s]
MINOR_STOP_THRESHOLD_S = 300  #: failures last >= this, minor stops < this [s]
REPAIR_MEDIAN_S = 1500.0  #: median repair time of a failure (lognormal) [s]
REPAIR_SIGMA = 0.6  #: log-space standard deviation of the repair time [-]
MINOR_MIN_S, MINOR_MAX_S = 20, 240  #: minor stop duration, uniform [s]
SETUP_MIN_S, SETUP_MAX_S = 600, 2700  #: setup at a product change, uniform [s]
IDLE_PROBABILITY = 0.2  #: probability of a no-order gap between two orders [-]
IDLE_MEDIAN_S = 1800.0  #: median no-order gap (lognormal, sigma 0.7) [s]
SPEED_FACTOR = (1.03, 1.30)  #: actual cycle time = pri x factor, uniform per order [-]
SCRAP_P, REWORK_P = 0.015, 0.010  #: binomial scrap and rework probabilities per produced unit [-]
INSPECT_EVERY = 200  #: one inspected unit per this many produced units of a machine
STANDBY_KW = 0.3  #: electrical standby load while a machine is OFF [kW]
LSL, USL, NOMINAL, SIGMA = 9.94, 10.06, 10.0, 0.02  #: diameter characteristic [mm]

# Raw state codes (internal integers) and their canonical categories.
RUN, SETUP, FAIL, MINOR, IDLE, BREAK, OFF = range(7)
STATE_NAMES = ("RUN", "SETUP", "FAIL", "MINOR", "IDLE", "BREAK", "OFF")
STATE_CATEGORY = {
    "RUN": "production",
    "SETUP": "setup",
    "FAIL": "unplanned_downtime",
    "MINOR": "minor_stop",
    "IDLE": "no_order",
    "BREAK": "planned_downtime",
    "OFF": "not_scheduled",
}
_CATEGORY_BY_CODE = tuple(STATE_CATEGORY[s] for s in STATE_NAMES)

FAIL_REASONS = ("spindle", "hydraulics", "electrical", "tooling jam")
FAIL_WEIGHTS = (0.25, 0.2, 0.2, 0.35)
MINOR_REASONS = ("sensor blocked", "material jam", "adjust")
MINOR_WEIGHTS = (0.3, 0.45, 0.25)
# reason codes: 0 = none, then fixed texts, then failure and minor-stop reasons
REASONS = ("", "break", "preventive maintenance", "product changeover", "no order", *FAIL_REASONS,
           *MINOR_REASONS)
_R_NONE, _R_BREAK, _R_PM, _R_SETUP, _R_IDLE = range(5)
_R_FAIL0 = 5
_R_MINOR0 = 5 + len(FAIL_REASONS)

# timeline segment labels (calendar view of one machine)
_SEG_PROD, _SEG_BREAK, _SEG_PM, _SEG_OFF = range(4)

QUALITY_DEFECTS = ("burr", "scratch", "porosity")

TRUTH_COLUMNS = (
    "equipment_id", "day", "period_start", "period_end",
    "ct", "pot", "pdt", "pbt", "apt", "aust", "adot", "adet", "adet_minor", "aupt", "aubt", "fe", "ttr",
    "pq", "gq", "sq", "rq", "ideal_time", "energy_kwh", "ip", "gp",
)


# ------------------------------------------------------------------------------------------------------------
# Time helpers (integer seconds since the epoch, UTC)
# ------------------------------------------------------------------------------------------------------------

def _hms(text: str) -> int:
    h, m = text.split(":")
    return int(h) * 3600 + int(m) * 60


def localize(dates: np.ndarray, seconds_of_day, tz: str) -> np.ndarray:
    """UTC epoch seconds of local wall-clock times ``dates + seconds_of_day`` in zone ``tz``.

    Nonexistent wall times (spring forward) move forward; ambiguous ones (fall back) take the first (DST)
    occurrence.
    """
    naive = np.asarray(dates, dtype="datetime64[D]").astype("datetime64[s]") + np.asarray(
        seconds_of_day, dtype="timedelta64[s]")
    naive = np.atleast_1d(naive)
    if naive.size == 0:
        return np.zeros(0, dtype=np.int64)
    idx = pd.DatetimeIndex(naive).tz_localize(
        tz, ambiguous=np.ones(naive.size, dtype=bool), nonexistent="shift_forward")
    return idx.as_unit("s").asi8.astype(np.int64)


def _local_grid(t0: int, t1: int, tz: str, minutes: int) -> np.ndarray:
    """UTC epoch seconds in ``[t0, t1]`` whose local wall-clock time is a multiple of ``minutes``."""
    cand = np.arange(t0 - t0 % 60, t1 + 1, 60, dtype=np.int64)
    cand = cand[cand >= t0]
    loc = pd.DatetimeIndex(cand.astype("datetime64[s]")).tz_localize("UTC").tz_convert(tz)
    keep = (np.asarray(loc.second) == 0) & (np.asarray(loc.minute) % minutes == 0)
    grid = cand[keep]
    return np.unique(np.concatenate([[t0, t1], grid]))


def _covered(points: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Number of half-open intervals ``[starts, ends)`` (may overlap) that contain each point."""
    if len(starts) == 0:
        return np.zeros(len(points), dtype=np.int64)
    return (np.searchsorted(np.sort(starts), points, "right")
            - np.searchsorted(np.sort(ends), points, "right"))


def _runs(seg_s: np.ndarray, seg_e: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge the contiguous segments where ``mask`` is true into disjoint intervals."""
    s, e = seg_s[mask], seg_e[mask]
    if len(s) == 0:
        return s, e
    new = np.r_[True, s[1:] != e[:-1]]
    last = np.r_[new[1:], True]
    return s[new], e[last]


def to_timestamps(sec: np.ndarray, tz: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(np.asarray(sec, dtype=np.int64).astype("datetime64[s]")).tz_localize(
        "UTC").tz_convert(tz)


def _iso(sec: np.ndarray, tz: str) -> np.ndarray:
    """ISO 8601 strings with the UTC offset (``2025-03-03T06:00:00+01:00``) of epoch seconds."""
    return _format_iso(to_timestamps(sec, tz))


def _format_iso(idx) -> np.ndarray:
    """Format a tz-aware DatetimeIndex / Series as ISO 8601 with offset; NaT becomes ''."""
    idx = pd.DatetimeIndex(idx)
    n = len(idx)
    out = np.full(n, "", dtype="<U32")
    if n == 0:
        return out
    nat = np.asarray(idx.isna())
    if nat.all():
        return out
    utc = idx.tz_convert("UTC").tz_localize(None).as_unit("s").asi8
    wall = idx.tz_localize(None).as_unit("s").asi8
    ok = ~nat
    utc, wall = utc[ok], wall[ok]
    off = (wall - utc)
    text = np.datetime_as_string(wall.astype("datetime64[s]"), unit="s")
    offs = np.unique(off)
    off_text = np.empty(len(off), dtype="<U6")
    for o in offs:
        sign = "+" if o >= 0 else "-"
        h, rem = divmod(abs(int(o)), 3600)
        off_text[off == o] = f"{sign}{h:02d}:{rem // 60:02d}"
    out[ok] = np.strings.add(text, off_text)
    return out


# ------------------------------------------------------------------------------------------------------------
# Machine state simulation
# ------------------------------------------------------------------------------------------------------------

def _stream(draw, n: int = 2048):
    """Endless iterator over pre-drawn random numbers (draws ``n`` at a time; keeps the Python loop lean)."""
    while True:
        yield from draw(n).tolist()


def _simulate_machine(rng: np.random.Generator, seg_s, seg_e, seg_l, t_end: int, pri: np.ndarray,
                      main_product: int, mtbf_s: float, minor_mean_s: float):
    """Walk one machine through its calendar segments.

    Returns
    -------
    starts, codes, reasons, orders : lists
        One record per state change (the last one is the closing OFF at ``t_end``); ``orders`` is the order
        index for RUN, SETUP, FAIL and MINOR states (and -1 otherwise).
    order_product, order_qty, order_ct : lists
        Per order: product index, planned quantity [units], actual cycle time [s].
    """
    n_products = len(pri)
    u = _stream(rng.random)
    # running time to the next failure / minor stop, whole seconds
    fail_gap = _stream(lambda n: np.maximum(1, np.rint(rng.exponential(mtbf_s, n))).astype(np.int64))
    minor_gap = _stream(lambda n: np.maximum(1, np.rint(rng.exponential(minor_mean_s, n))).astype(np.int64))
    repair = _stream(lambda n: np.maximum(  # never below the minor-stop threshold
        MINOR_STOP_THRESHOLD_S,
        np.rint(rng.lognormal(math.log(REPAIR_MEDIAN_S), REPAIR_SIGMA, n))).astype(np.int64))
    minor_dur = _stream(lambda n: rng.integers(MINOR_MIN_S, MINOR_MAX_S + 1, n))
    setup_dur = _stream(lambda n: rng.integers(SETUP_MIN_S, SETUP_MAX_S + 1, n))
    idle_dur = _stream(lambda n: np.maximum(
        60, np.rint(rng.lognormal(math.log(IDLE_MEDIAN_S), 0.7, n))).astype(np.int64))
    factor = _stream(lambda n: rng.uniform(*SPEED_FACTOR, n))
    hours = _stream(lambda n: rng.uniform(1.0, 6.0, n))
    fail_cdf = np.cumsum(FAIL_WEIGHTS).tolist()
    minor_cdf = np.cumsum(MINOR_WEIGHTS).tolist()
    pri_l = pri.tolist()

    st: list[int] = []
    sc: list[int] = []
    sr: list[int] = []
    so: list[int] = []
    o_prod: list[int] = []
    o_qty: list[int] = []
    o_ct: list[float] = []

    def emit(t, code, reason, order):
        while st and st[-1] == t:  # a zero-length state is replaced
            st.pop()
            sc.pop()
            sr.pop()
            so.pop()
        if st and sc[-1] == code and sr[-1] == reason and so[-1] == order:
            return
        st.append(t)
        sc.append(code)
        sr.append(reason)
        so.append(order)

    def pick(cdf):
        x = next(u)
        for i, c in enumerate(cdf):
            if x < c:
                return i
        return len(cdf) - 1

    cur_product = main_product
    order = -1

    def new_order():
        """Create the next order; return (order index, phase, phase remaining, run seconds needed)."""
        nonlocal cur_product
        if next(u) < 0.5:
            p = main_product
        else:
            p = min(int(next(u) * n_products), n_products - 1)
        ct = pri_l[p] * next(factor)
        qty = max(10, int(round(next(hours) * 3600.0 / pri_l[p], -1)))
        need = int(math.ceil(qty * ct - 1e-9))
        o_prod.append(p)
        o_qty.append(qty)
        o_ct.append(ct)
        if p != cur_product:
            cur_product = p
            return len(o_prod) - 1, SETUP, next(setup_dur), need
        return len(o_prod) - 1, RUN, 0, need

    order, phase, phase_rem, order_rem = new_order()
    to_fail = next(fail_gap)
    to_minor = next(minor_gap)
    fail_until = -1

    emit(int(seg_s[0]), OFF, _R_NONE, -1)
    for s, e, lab in zip(seg_s.tolist(), seg_e.tolist(), seg_l.tolist()):
        if fail_until > s:  # a failure goes on across this segment's start
            if fail_until >= e:
                continue
            s = fail_until
        if lab != _SEG_PROD:
            if lab == _SEG_OFF:
                emit(s, OFF, _R_NONE, -1)
            else:
                emit(s, BREAK, _R_PM if lab == _SEG_PM else _R_BREAK, -1)
            continue
        t = s
        if phase == RUN:
            emit(t, RUN, _R_NONE, order)
        elif phase == SETUP:
            emit(t, SETUP, _R_SETUP, order)
        else:
            emit(t, IDLE, _R_IDLE, -1)
        while True:
            if phase == RUN:
                step = min(order_rem, to_fail, to_minor)
                if t + step >= e:  # the window ends first
                    d = e - t
                    order_rem -= d
                    to_fail -= d
                    to_minor -= d
                    break
                t += step
                order_rem -= step
                to_fail -= step
                to_minor -= step
                if order_rem <= 0:  # order complete
                    if next(u) < IDLE_PROBABILITY:
                        phase, phase_rem, order = IDLE, next(idle_dur), -1
                        emit(t, IDLE, _R_IDLE, -1)
                    else:
                        order, phase, phase_rem, order_rem = new_order()
                        emit(t, phase, _R_SETUP if phase == SETUP else _R_NONE, order)
                elif to_fail <= 0:
                    to_fail = next(fail_gap)
                    emit(t, FAIL, _R_FAIL0 + pick(fail_cdf), order)
                    end = min(t + int(next(repair)), t_end)
                    if end < e:
                        t = end
                        emit(t, RUN, _R_NONE, order)
                    else:  # the failure runs across the end of the window
                        fail_until = end
                        break
                else:  # minor stop
                    to_minor = next(minor_gap)
                    emit(t, MINOR, _R_MINOR0 + pick(minor_cdf), order)
                    t += next(minor_dur)
                    if t >= e:
                        break
                    emit(t, RUN, _R_NONE, order)
            else:  # IDLE or SETUP: wall-clock durations that pause outside the window
                if t + phase_rem >= e:
                    phase_rem -= e - t
                    break
                t += phase_rem
                phase_rem = 0
                if phase == IDLE:
                    order, phase, phase_rem, order_rem = new_order()
                    emit(t, phase, _R_SETUP if phase == SETUP else _R_NONE, order)
                else:
                    phase = RUN
                    emit(t, RUN, _R_NONE, order)
    # close the timeline
    st.append(int(t_end))
    sc.append(OFF)
    sr.append(_R_NONE)
    so.append(-1)
    return st, sc, sr, so, o_prod, o_qty, o_ct


# ------------------------------------------------------------------------------------------------------------
# Public API
# ------------------------------------------------------------------------------------------------------------

def simulate_plant(machines: int = 12, days: int = 14, seed: int = 0, start: str = "2025-03-03",
                   timezone: str = "Europe/Berlin", *,
                   holidays: Iterable[str] | None = None) -> dict[str, pd.DataFrame]:
    """Simulate a discrete-manufacturing plant and its ISO 22400 ground truth.

    Parameters
    ----------
    machines : int, default 12
        Number of machines ``M001..``; 5 per line (work center ``L01..``), 4 lines per area (``A1..``).
    days : int, default 14
        Number of local calendar days simulated, starting at local midnight of ``start``.
    seed : int, default 0
        Seed of ``numpy.random.default_rng``; equal seeds and parameters give equal tables.
    start : str, default "2025-03-03"
        First local date, ``YYYY-MM-DD``.
    timezone : str, default "Europe/Berlin"
        IANA time zone of the site.  Days, shifts, hours and quarter hours are local; days at
        daylight-saving changes last 23 h or 25 h.
    holidays : iterable of str, optional
        Local dates (``YYYY-MM-DD``) that are plant holidays (no production; shifts stay in the calendar and a
        ``holiday`` entry removes them from POT).  By default one Monday-to-Friday plant holiday is drawn
        when the range has at least 7 days (none otherwise); pass ``[]`` for none.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``equipment``, ``states``, ``production``, ``products``, ``calendar``, ``energy``, ``labour``,
        ``quality`` with the canonical columns (see ``zhizao.schema.TABLES``; timestamps are tz-aware in
        ``timezone``, durations [s], energy [kWh], labour [h]) and ``truth``: one row per machine and local
        day with the ISO 22400 elements computed from the simulator's own events (times [s], quantities
        [units], ``ideal_time`` [s], ``energy_kwh`` [kWh]).  ``truth.attrs["zhizao_simulation"]`` holds
        the parameters.

    Raises
    ------
    ValueError
        If ``machines`` or ``days`` is below 1 or ``start`` is not a date.

    Notes
    -----
    Time model of the truth (half-open intervals, per local day):

    * ``ct`` calendar time of the day (82800, 86400 or 90000 s),
    * ``pot`` union of the site's shift entries minus holidays,
    * ``pdt`` part of ``pot`` covered by calendar breaks, planned downtime (site or machine) or states of
      category planned_downtime (union, no double counting); ``pbt = pot - pdt``,
    * ``apt``, ``aust``, ``adot``, ``adet`` time of RUN, SETUP, IDLE and FAIL + MINOR states inside PBT
      (state time outside PBT counts nowhere); ``adet_minor`` the MINOR part; ``ttr`` the FAIL part,
    * ``aupt = apt + aust``, ``aubt = aupt + adet``,
    * ``fe`` FAIL events starting in the day; ``pq``, ``gq``, ``sq``, ``rq``, ``ideal_time`` (sum of
      pri x produced) and ``energy_kwh`` over records starting in the day; ``ip``, ``gp`` inspections by
      time stamp.

    References
    ----------
    .. [1] ISO 22400-2:2014, clauses 5.5 (time elements) and 5.6 (quantity elements).
    """
    if machines < 1 or days < 1:
        raise ValueError("machines and days must be at least 1")
    try:
        d0 = _dt.date.fromisoformat(str(start))
    except ValueError:
        raise ValueError(f"start must be a date YYYY-MM-DD, got {start!r}") from None
    tz = str(timezone)
    rng = np.random.default_rng(seed)
    # each step draws from ``rng`` in this order (the same tables for the same seed)
    cal = _calendar(rng, d0, days, tz, holidays)
    par = _parameters(rng, machines)
    pm = _maintenance(rng, cal, machines, tz)
    tl = _timelines(rng, cal, par, pm, machines)
    prod = _production(rng, cal, tl, tz)
    qual = _quality(rng, par, prod, machines)
    en = _energy(rng, cal, par, tl, machines, tz)
    lab = _labour(rng, cal, par, prod)
    tables = _tables(cal, par, pm, tl, prod, qual, en, lab, machines, tz)
    tables["truth"] = _truth(cal, par, pm, tl, prod, qual, en, machines, days, tz)
    tables["truth"].attrs["zhizao_simulation"] = {
        "generator": "zhizao.simulate.plant.simulate_plant",
        "machines": machines, "days": days, "seed": seed, "start": d0.isoformat(), "timezone": tz,
        "holidays": [str(cal.dates[i]) for i in cal.hol_idx],
        "products": par.n_products,
    }
    return tables


class _Step(SimpleNamespace):
    """What one step of :func:`simulate_plant` gives to the next ones (named arrays)."""


def _calendar(rng: np.random.Generator, d0: _dt.date, days: int, tz: str, holidays) -> _Step:
    """The site calendar: local days and their edges, shifts and breaks of working days, the plant holiday(s)
    and POT = shifts minus holidays (disjoint intervals) [s since the epoch]."""
    dates = np.datetime64(d0, "D") + np.arange(days + 1)
    day_edges = localize(dates, 0, tz)  # local midnights, days + 1 edges
    t0, t1 = int(day_edges[0]), int(day_edges[-1])
    dates = dates[:-1]
    weekday = (dates.astype(np.int64) + 3) % 7  # Monday = 0
    working = weekday < 6
    x_holiday = rng.random()  # drawn always, so the rest of the plant does not depend on the holiday choice
    if holidays is None:
        cand = np.flatnonzero(weekday < 5)
        hol_idx = [int(cand[int(x_holiday * len(cand))])] if days >= 7 and len(cand) else []
    else:
        hol_set = {_dt.date.fromisoformat(str(h)) for h in holidays}
        hol_idx = [i for i, d in enumerate(dates.tolist()) if d in hol_set]
    is_holiday = np.zeros(days, dtype=bool)
    is_holiday[hol_idx] = True

    wd = dates[working]
    shift_s_parts, shift_e_parts, shift_name_parts, brk_s_parts, brk_e_parts = [], [], [], [], []
    for name, a, b, ba, bb in SHIFTS:
        s = localize(wd, _hms(a), tz)
        e = localize(wd, _hms(b), tz)
        shift_s_parts.append(s)
        shift_e_parts.append(e)
        shift_name_parts += [name] * len(s)
        brk_s_parts.append(localize(wd, _hms(ba), tz))
        brk_e_parts.append(localize(wd, _hms(bb), tz))
    shift_s, shift_e = np.concatenate(shift_s_parts), np.concatenate(shift_e_parts)
    brk_s, brk_e = np.concatenate(brk_s_parts), np.concatenate(brk_e_parts)
    shift_name = np.array(shift_name_parts, dtype=object)
    hol_s, hol_e = day_edges[:-1][is_holiday], day_edges[1:][is_holiday]

    # POT = shifts minus holidays (site level, disjoint intervals)
    pts = np.unique(np.concatenate([[t0, t1], shift_s, shift_e, hol_s, hol_e]))
    ps, pe = pts[:-1], pts[1:]
    pot_s, pot_e = _runs(ps, pe, (_covered(ps, shift_s, shift_e) > 0) & (_covered(ps, hol_s, hol_e) == 0))
    return _Step(dates=dates, day_edges=day_edges, t0=t0, t1=t1, weekday=weekday, working=working,
                 hol_idx=hol_idx, is_holiday=is_holiday, shift_s=shift_s, shift_e=shift_e, shift_name=shift_name,
                 brk_s=brk_s, brk_e=brk_e, hol_s=hol_s, hol_e=hol_e, pot_s=pot_s, pot_e=pot_e)


def _parameters(rng: np.random.Generator, machines: int) -> _Step:
    """Products (pri [s/unit], standard minutes, unit value) and the machines' lines, areas and drawn
    parameters (MTBF [s], minor-stop mean [s], loads [kW], measurement offset, line headcounts)."""
    n_products = int(rng.integers(4, 7))
    pri = np.round(rng.uniform(20.0, 60.0, n_products), 1)
    standard_minutes = np.round(pri / 60.0 * rng.uniform(0.5, 1.0, n_products), 3)
    unit_value = np.round(rng.uniform(5.0, 80.0, n_products), 2)
    product_ids = [f"P{i + 1}" for i in range(n_products)]

    mids = [f"M{i + 1:03d}" for i in range(machines)]
    line_of = np.arange(machines) // MACHINES_PER_LINE
    n_lines = int(line_of.max()) + 1
    line_ids = [f"L{i + 1:02d}" for i in range(n_lines)]
    area_ids = [f"A{i // LINES_PER_AREA + 1}" for i in range(n_lines)]
    main_product = rng.integers(0, n_products, machines)
    digital = rng.random(machines) < 0.8
    mtbf_s = rng.uniform(6.0, 10.0, machines) * 3600.0
    minor_mean_s = rng.uniform(30.0, 50.0, machines) * 60.0
    idle_kw = rng.uniform(2.0, 4.0, machines)
    run_kw = rng.uniform(10.0, 25.0, machines)
    mean_offset = rng.normal(0.0, 0.004, machines)
    headcount_base = rng.integers(4, 8, n_lines)
    return _Step(n_products=n_products, pri=pri, standard_minutes=standard_minutes, unit_value=unit_value,
                 product_ids=product_ids, mids=mids, line_of=line_of, n_lines=n_lines, line_ids=line_ids,
                 area_ids=area_ids, main_product=main_product, digital=digital, mtbf_s=mtbf_s,
                 minor_mean_s=minor_mean_s, idle_kw=idle_kw, run_kw=run_kw, mean_offset=mean_offset,
                 headcount_base=headcount_base)


def _maintenance(rng: np.random.Generator, cal: _Step, machines: int, tz: str) -> _Step:
    """Preventive maintenance: one 2 h window per machine and week, on a working non-holiday day, in a
    shift outside its break."""
    slots_list = []  # seconds of day
    for _, a, b, ba, bb in SHIFTS:
        x = _hms(a)
        while x + MAINTENANCE_S <= _hms(b):
            if x + MAINTENANCE_S <= _hms(ba) or x >= _hms(bb):
                slots_list.append(x)
            x += 1800
    slots = np.array(slots_list)
    days = len(cal.dates)
    week = (np.arange(days) + int(cal.weekday[0])) // 7
    ok_day = cal.working & ~cal.is_holiday
    pm_day_parts, pm_slot_parts, pm_machine_parts = [], [], []
    for w in np.unique(week):
        cand = np.flatnonzero((week == w) & ok_day)
        if len(cand) == 0:
            continue
        pm_day_parts.append(rng.choice(cand, machines))
        pm_slot_parts.append(rng.choice(slots, machines))
        pm_machine_parts.append(np.arange(machines))
    if pm_day_parts:
        pm_day, pm_slot, pm_machine = map(np.concatenate, (pm_day_parts, pm_slot_parts, pm_machine_parts))
    else:
        pm_day = pm_slot = pm_machine = np.zeros(0, dtype=np.int64)
    pm_s = localize(cal.dates[pm_day], pm_slot, tz)
    pm_e = localize(cal.dates[pm_day], pm_slot + MAINTENANCE_S, tz)
    return _Step(pm_s=pm_s, pm_e=pm_e, pm_machine=pm_machine)


def _timelines(rng: np.random.Generator, cal: _Step, par: _Step, pm: _Step, machines: int) -> _Step:
    """Each machine's state timeline (failures, minor stops, orders, setups; :func:`_simulate_machine`) over
    its calendar segments, and its orders."""
    child = rng.spawn(machines)
    all_st, all_sc, all_sr, all_so, all_m = [], [], [], [], []
    o_prod_list, o_qty, o_ct_list, o_m_list, o_local = [], [], [], [], []
    t0, t1 = cal.t0, cal.t1
    cal_edges = np.concatenate([[t0, t1], cal.pot_s, cal.pot_e, cal.brk_s, cal.brk_e])
    order_base = 0
    pm_by_machine = [(pm.pm_s[pm.pm_machine == m], pm.pm_e[pm.pm_machine == m]) for m in range(machines)]
    for m in range(machines):
        ms, me = pm_by_machine[m]
        pts = np.unique(np.concatenate([cal_edges, ms, me]))
        ss, ee = pts[:-1], pts[1:]
        in_pot = _covered(ss, cal.pot_s, cal.pot_e) > 0
        lab = np.where(~in_pot, _SEG_OFF,
                       np.where(_covered(ss, ms, me) > 0, _SEG_PM,
                                np.where(_covered(ss, cal.brk_s, cal.brk_e) > 0, _SEG_BREAK, _SEG_PROD)))
        keep = np.r_[True, lab[1:] != lab[:-1]]
        ss, lab = ss[keep], lab[keep]
        ee = np.r_[ss[1:], t1]
        st, sc, sr, so, op, oq, oc = _simulate_machine(
            child[m], ss, ee, lab, t1, par.pri, int(par.main_product[m]), float(par.mtbf_s[m]),
            float(par.minor_mean_s[m]))
        so = np.asarray(so, dtype=np.int64)
        all_st.append(np.asarray(st, dtype=np.int64))
        all_sc.append(np.asarray(sc, dtype=np.int8))
        all_sr.append(np.asarray(sr, dtype=np.int16))
        all_so.append(np.where(so >= 0, so + order_base, -1))
        all_m.append(np.full(len(st), m, np.int32))
        o_prod_list += op
        o_qty += oq
        o_ct_list += oc
        o_m_list += [m] * len(op)
        o_local += list(range(1, len(op) + 1))
        order_base += len(op)
    st = np.concatenate(all_st)
    sc = np.concatenate(all_sc)
    sr = np.concatenate(all_sr)
    so = np.concatenate(all_so)
    sm = np.concatenate(all_m)
    nxt = np.r_[st[1:], t1]  # end of each state (the closing OFF of a machine gets t1, zero length)
    o_prod = np.asarray(o_prod_list, dtype=np.int64)
    o_ct = np.asarray(o_ct_list)
    o_m = np.asarray(o_m_list)
    order_ids = np.array([f"WO-{par.mids[m]}-{k:05d}" for m, k in zip(o_m.tolist(), o_local)], dtype=object)
    bounds = np.r_[0, np.cumsum([len(a) for a in all_st])]
    return _Step(st=st, sc=sc, sr=sr, so=so, sm=sm, nxt=nxt, o_prod=o_prod, o_ct=o_ct, order_ids=order_ids,
                 bounds=bounds)


def _production(rng: np.random.Generator, cal: _Step, tl: _Step, tz: str) -> _Step:
    """Production records: RUN segments split at local hour boundaries, units from each order's cycle time,
    scrap and rework drawn per record."""
    hours = _local_grid(cal.t0, cal.t1, tz, 60)
    st, sc, so, sm, nxt = tl.st, tl.sc, tl.so, tl.sm, tl.nxt
    run = np.flatnonzero((sc == RUN) & (nxt > st))
    rs, re_, ro, rm = st[run], nxt[run], so[run], sm[run]
    rd = re_ - rs
    n = len(run)
    cs = np.cumsum(rd) - rd
    first = np.r_[True, ro[1:] != ro[:-1]] if n else np.zeros(0, bool)
    gstart = np.maximum.accumulate(np.where(first, np.arange(n), 0)) if n else np.zeros(0, np.int64)
    cb = cs - cs[gstart]  # run seconds of the order before this segment
    lo = np.searchsorted(hours, rs, "right")
    hi = np.searchsorted(hours, re_, "left")
    npieces = hi - lo + 1
    rep = np.repeat(np.arange(n), npieces)
    offs = np.cumsum(npieces) - npieces
    j = np.arange(len(rep)) - offs[rep]
    hmax = len(hours) - 1
    p_s = np.where(j == 0, rs[rep], hours[np.clip(lo[rep] + j - 1, 0, hmax)])
    p_e = np.where(j == npieces[rep] - 1, re_[rep], hours[np.clip(lo[rep] + j, 0, hmax)])
    p_o = ro[rep]
    p_m = rm[rep]
    ct_p = tl.o_ct[p_o]
    c_start = cb[rep] + (p_s - rs[rep])
    c_end = cb[rep] + (p_e - rs[rep])
    produced = (np.floor(c_end / ct_p + 1e-9) - np.floor(c_start / ct_p + 1e-9)).astype(np.int64)
    prng = np.random.default_rng(rng.integers(2**63))
    scrap = prng.binomial(produced, SCRAP_P)
    rework = prng.binomial(produced - scrap, REWORK_P)
    good = produced - scrap - rework
    p_prod = tl.o_prod[p_o]
    return _Step(p_s=p_s, p_e=p_e, p_o=p_o, p_m=p_m, p_prod=p_prod, produced=produced, scrap=scrap,
                 rework=rework, good=good)


def _quality(rng: np.random.Generator, par: _Step, prod: _Step, machines: int) -> _Step:
    """Inspections: every INSPECT_EVERY-th unit of a machine, with a measured diameter and a result."""
    qrng = np.random.default_rng(rng.integers(2**63))
    insp_off = qrng.integers(0, INSPECT_EVERY, machines)
    produced, p_m, p_s, p_e = prod.produced, prod.p_m, prod.p_s, prod.p_e
    cum = np.cumsum(produced) - produced  # units of all machines before the piece
    mfirst = np.r_[True, p_m[1:] != p_m[:-1]] if len(p_m) else np.zeros(0, bool)
    mstart = np.maximum.accumulate(np.where(mfirst, np.arange(len(p_m)), 0)) if len(p_m) else np.zeros(0, int)
    c0 = cum - cum[mstart]  # machine units before the piece
    c1 = c0 + produced
    off = insp_off[p_m]
    n_before = lambda c: np.maximum(0, (c - off + INSPECT_EVERY - 1) // INSPECT_EVERY)  # noqa: E731
    k0, k1 = n_before(c0), n_before(c1)
    qn = k1 - k0
    qrep = np.repeat(np.arange(len(p_m)), qn)
    qk = k0[qrep] + (np.arange(len(qrep)) - (np.cumsum(qn) - qn)[qrep])
    q_unit = off[qrep] + qk * INSPECT_EVERY  # 0-based unit number of the machine
    frac = (q_unit - c0[qrep] + 0.5) / produced[qrep]  # in (0, 1): the stamp stays inside the piece
    q_ts = p_s[qrep] + np.floor(frac * (p_e - p_s)[qrep]).astype(np.int64)
    q_m = p_m[qrep]
    nq = len(qrep)
    q_val = np.round(qrng.normal(NOMINAL, SIGMA, nq) + par.mean_offset[q_m], 3)
    out_tol = (q_val < LSL) | (q_val > USL)
    other_defect = qrng.random(nq) < 0.01
    q_fail = out_tol | other_defect
    defect = np.where(out_tol, "diameter out of tolerance",
                      np.array(QUALITY_DEFECTS, dtype=object)[qrng.integers(0, len(QUALITY_DEFECTS), nq)])
    defect = np.where(q_fail, defect, None)  # type: ignore[call-overload]  # numpy takes None; its types do not
    first_pass = np.where(q_fail, True, qrng.random(nq) >= 0.03)
    return _Step(qrep=qrep, q_unit=q_unit, q_ts=q_ts, q_m=q_m, q_val=q_val, q_fail=q_fail, defect=defect,
                 first_pass=first_pass)


def _energy(rng: np.random.Generator, cal: _Step, par: _Step, tl: _Step, machines: int, tz: str) -> _Step:
    """Quarter-hour electricity per machine [kWh]: run, idle and standby loads by the seconds in each state,
    with 1 % measurement noise."""
    quarters = _local_grid(cal.t0, cal.t1, tz, 15)
    qlen = np.diff(quarters)
    n_q = len(qlen)
    erng = np.random.default_rng(rng.integers(2**63))
    e_qty = np.empty(machines * n_q)
    for m in range(machines):
        a, b = tl.bounds[m], tl.bounds[m + 1]
        mst, msc = tl.st[a:b], tl.sc[a:b]
        pts = np.union1d(mst, quarters)
        ss = pts[:-1]
        ln = np.diff(pts)
        code = msc[np.searchsorted(mst, ss, "right") - 1]
        qi = np.searchsorted(quarters, ss, "right") - 1
        run_s = np.bincount(qi, ln * (code == RUN), n_q)
        off_s = np.bincount(qi, ln * (code == OFF), n_q)
        other_s = qlen - run_s - off_s
        kwh = (par.run_kw[m] * run_s + par.idle_kw[m] * other_s + STANDBY_KW * off_s) / 3600.0
        e_qty[m * n_q:(m + 1) * n_q] = np.round(kwh * (1.0 + erng.normal(0.0, 0.01, n_q)), 4)
    e_m = np.repeat(np.arange(machines), n_q)
    return _Step(e_qty=e_qty, e_m=e_m, e_s=np.tile(quarters[:-1], machines), e_e=np.tile(quarters[1:], machines))


def _labour(rng: np.random.Generator, cal: _Step, par: _Step, prod: _Step) -> _Step:
    """Labour per line and shift of POT: headcount, attendance and work hours, standard hours earned."""
    lrng = np.random.default_rng(rng.integers(2**63))
    pot_shift = _covered(cal.shift_s, cal.hol_s, cal.hol_e) == 0
    ls_s, ls_e = cal.shift_s[pot_shift], cal.shift_e[pot_shift]
    order_sh = np.argsort(ls_s, kind="stable")
    ls_s, ls_e = ls_s[order_sh], ls_e[order_sh]
    n_sh = len(ls_s)
    n_lines = par.n_lines
    sh_i = np.searchsorted(ls_s, prod.p_s, "right") - 1
    if n_sh:
        in_sh = (sh_i >= 0) & (prod.p_s < ls_e[np.clip(sh_i, 0, n_sh - 1)])
    else:
        in_sh = np.zeros(len(prod.p_s), bool)
    earned = np.bincount((sh_i * n_lines + par.line_of[prod.p_m])[in_sh],
                         (prod.good * par.standard_minutes[prod.p_prod] / 60.0)[in_sh], n_sh * n_lines)
    lab_line = np.tile(np.arange(n_lines), n_sh)
    lab_sh = np.repeat(np.arange(n_sh), n_lines)
    head = np.maximum(1, par.headcount_base[lab_line] - lrng.binomial(par.headcount_base[lab_line], 0.05))
    shift_h = (ls_e - ls_s)[lab_sh] / 3600.0
    attendance = head * shift_h
    work = attendance - head * 0.5 - np.round(attendance * lrng.uniform(0.0, 0.1, len(head)), 2)
    return _Step(ls_s=ls_s, ls_e=ls_e, lab_line=lab_line, lab_sh=lab_sh, head=head, attendance=attendance,
                 work=work, earned=earned)


def _tables(cal: _Step, par: _Step, pm: _Step, tl: _Step, prod: _Step, qual: _Step, en: _Step, lab: _Step,
            machines: int, tz: str) -> dict[str, pd.DataFrame]:
    """The canonical tables of the simulated plant."""
    mids_a = np.array(par.mids, dtype=object)
    pid_a = np.array(par.product_ids, dtype=object)
    n_products = par.n_products
    equipment = pd.DataFrame({
        "equipment_id": mids_a,
        "name": [f"machine {i + 1}" for i in range(machines)],
        "work_center": np.array(par.line_ids, dtype=object)[par.line_of],
        "area": np.array(par.area_ids, dtype=object)[par.line_of],
        "site": SITE,
        "enterprise": ENTERPRISE,
        "timezone": tz,
        "digital": par.digital,
        "epc": np.round(3600.0 / par.pri[par.main_product], 4),
    })
    products = pd.DataFrame({
        "product_id": pid_a,
        "equipment_id": pd.Series([None] * n_products, dtype=object),
        "pri": par.pri,
        "standard_minutes": par.standard_minutes,
        "unit_value": par.unit_value,
    })
    # calendar
    shift_s, brk_s, hol_s, pm_s = cal.shift_s, cal.brk_s, cal.hol_s, pm.pm_s
    n_sh_all = len(shift_s)
    c = {
        "scope": np.r_[np.full(n_sh_all, SITE, object), np.full(len(brk_s), SITE, object),
                       mids_a[pm.pm_machine], np.full(len(hol_s), SITE, object)],
        "start": np.r_[shift_s, brk_s, pm_s, hol_s],
        "end": np.r_[cal.shift_e, cal.brk_e, pm.pm_e, cal.hol_e],
        "kind": np.r_[np.full(n_sh_all, "shift", object), np.full(len(brk_s), "break", object),
                      np.full(len(pm_s), "planned_downtime", object), np.full(len(hol_s), "holiday", object)],
        "name": np.r_[cal.shift_name, np.full(len(brk_s), "break", object),
                      np.full(len(pm_s), "preventive maintenance", object),
                      np.full(len(hol_s), "plant holiday", object)],
    }
    corder = np.lexsort((c["scope"].astype(str), c["start"]))
    calendar = pd.DataFrame({
        "scope": c["scope"][corder],
        "start": to_timestamps(c["start"][corder], tz),
        "end": to_timestamps(c["end"][corder], tz),
        "kind": c["kind"][corder],
        "name": c["name"][corder],
    })
    st = tl.st
    states = pd.DataFrame({
        "equipment_id": mids_a[tl.sm],
        "start": to_timestamps(st, tz),
        "end": pd.Series(pd.NaT, index=range(len(st)), dtype=f"datetime64[s, {tz}]"),
        "state": np.array(STATE_NAMES, dtype=object)[tl.sc],
        "category": np.array(_CATEGORY_BY_CODE, dtype=object)[tl.sc],
        "reason": np.array([r or None for r in REASONS], dtype=object)[tl.sr],
    })
    production = pd.DataFrame({
        "equipment_id": mids_a[prod.p_m],
        "start": to_timestamps(prod.p_s, tz),
        "end": to_timestamps(prod.p_e, tz),
        "order_id": tl.order_ids[prod.p_o],
        "product_id": pid_a[prod.p_prod],
        "produced": prod.produced,
        "good": prod.good,
        "scrap": prod.scrap,
        "rework": prod.rework,
    })
    energy = pd.DataFrame({
        "meter_id": np.array([f"EM-{x}" for x in par.mids], dtype=object)[en.e_m],
        "equipment_id": mids_a[en.e_m],
        "start": to_timestamps(en.e_s, tz),
        "end": to_timestamps(en.e_e, tz),
        "carrier": "electricity",
        "quantity": en.e_qty,
        "unit": "kWh",
        "reading": "interval",
    })
    labour = pd.DataFrame({
        "scope": np.array(par.line_ids, dtype=object)[lab.lab_line],
        "start": to_timestamps(lab.ls_s[lab.lab_sh], tz),
        "end": to_timestamps(lab.ls_e[lab.lab_sh], tz),
        "attendance_hours": lab.attendance,
        "work_hours": np.round(lab.work, 2),
        "headcount": lab.head.astype(np.int64),
        "earned_hours": np.round(lab.earned, 4),
    })
    quality = pd.DataFrame({
        "equipment_id": mids_a[qual.q_m],
        "ts": to_timestamps(qual.q_ts, tz),
        "product_id": pid_a[prod.p_prod[qual.qrep]],
        "unit_id": [f"{par.mids[m]}-{u + 1:07d}" for m, u in zip(qual.q_m.tolist(), qual.q_unit.tolist())],
        "result": np.where(qual.q_fail, "fail", "pass").astype(object),
        "first_pass": qual.first_pass.astype(bool),
        "defect": qual.defect,
        "characteristic": "diameter_mm",
        "value": qual.q_val,
        "lsl": LSL,
        "usl": USL,
    })
    return {"equipment": equipment, "states": states, "production": production, "products": products,
            "calendar": calendar, "energy": energy, "labour": labour, "quality": quality}


def _truth_times(cal: _Step, pm: _Step, tl: _Step, machines: int, days: int) -> dict[str, np.ndarray]:
    """The time elements and failure events of every machine and local day, from the simulator's own
    states and calendar (see the Notes of :func:`simulate_plant`) [s]."""
    day_edges, t0, t1 = cal.day_edges, cal.t0, cal.t1
    n_days = days
    cols = {k: np.zeros(machines * n_days, dtype=np.int64) for k in
            ("pot", "pdt", "pbt", "apt", "aust", "adot", "adet", "adet_minor", "ttr", "fe")}
    calpd_s = np.concatenate([cal.brk_s, pm.pm_s])
    calpd_e = np.concatenate([cal.brk_e, pm.pm_e])
    for m in range(machines):
        a, b = tl.bounds[m], tl.bounds[m + 1]
        mst, msc = tl.st[a:b], tl.sc[a:b]
        sel = np.r_[np.ones(len(cal.brk_s), bool), pm.pm_machine == m]  # site breaks, this machine's maintenance
        ms_, me_ = calpd_s[sel], calpd_e[sel]
        pts = np.unique(np.concatenate([mst, day_edges, cal.pot_s, cal.pot_e, ms_, me_]))
        pts = pts[(pts >= t0) & (pts <= t1)]
        ss = pts[:-1]
        ln = np.diff(pts)
        code = msc[np.searchsorted(mst, ss, "right") - 1]
        in_pot = _covered(ss, cal.pot_s, cal.pot_e) > 0
        in_pdt = in_pot & ((_covered(ss, ms_, me_) > 0) | (code == BREAK))
        in_pbt = in_pot & ~in_pdt
        di = np.searchsorted(day_edges, ss, "right") - 1
        sl = slice(m * n_days, (m + 1) * n_days)

        def agg(mask, di=di, ln=ln):
            return np.rint(np.bincount(di, ln * mask, n_days)).astype(np.int64)

        cols["pot"][sl] = agg(in_pot)
        cols["pdt"][sl] = agg(in_pdt)
        cols["pbt"][sl] = agg(in_pbt)
        cols["apt"][sl] = agg(in_pbt & (code == RUN))
        cols["aust"][sl] = agg(in_pbt & (code == SETUP))
        cols["adot"][sl] = agg(in_pbt & (code == IDLE))
        cols["adet"][sl] = agg(in_pbt & ((code == FAIL) | (code == MINOR)))
        cols["adet_minor"][sl] = agg(in_pbt & (code == MINOR))
        cols["ttr"][sl] = agg(in_pbt & (code == FAIL))
        fst = mst[msc == FAIL]
        cols["fe"][sl] = np.bincount(np.searchsorted(day_edges, fst, "right") - 1, minlength=n_days)
    return cols


def _truth(cal: _Step, par: _Step, pm: _Step, tl: _Step, prod: _Step, qual: _Step, en: _Step, machines: int,
           days: int, tz: str) -> pd.DataFrame:
    """The ground truth: ISO 22400 elements per machine and local day (see :func:`simulate_plant`)."""
    tc = _truth_times(cal, pm, tl, machines, days)
    n_days = days
    day_edges = cal.day_edges

    def by_day(m_idx, ts, weights=None):
        d = np.searchsorted(day_edges, ts, "right") - 1
        return np.bincount(m_idx * n_days + d, weights, machines * n_days)

    mids_a = np.array(par.mids, dtype=object)
    tm = np.repeat(np.arange(machines), n_days)
    td = np.tile(np.arange(n_days), machines)
    p_m, p_s = prod.p_m, prod.p_s
    q_m, q_ts = qual.q_m, qual.q_ts
    return pd.DataFrame({
        "equipment_id": mids_a[tm],
        "day": np.datetime_as_string(cal.dates, unit="D").astype(object)[td],
        "period_start": _iso(day_edges[:-1], tz).astype(object)[td],
        "period_end": _iso(day_edges[1:], tz).astype(object)[td],
        "ct": np.diff(day_edges)[td].astype(np.int64),
        "pot": tc["pot"], "pdt": tc["pdt"], "pbt": tc["pbt"],
        "apt": tc["apt"], "aust": tc["aust"], "adot": tc["adot"], "adet": tc["adet"],
        "adet_minor": tc["adet_minor"],
        "aupt": tc["apt"] + tc["aust"],
        "aubt": tc["apt"] + tc["aust"] + tc["adet"],
        "fe": tc["fe"], "ttr": tc["ttr"],
        "pq": by_day(p_m, p_s, prod.produced).astype(np.int64),
        "gq": by_day(p_m, p_s, prod.good).astype(np.int64),
        "sq": by_day(p_m, p_s, prod.scrap).astype(np.int64),
        "rq": by_day(p_m, p_s, prod.rework).astype(np.int64),
        # rounded to 1e-6 only to drop floating-point summation noise (inputs have 1 and 4 decimals)
        "ideal_time": np.round(by_day(p_m, p_s, par.pri[prod.p_prod] * prod.produced), 6),
        "energy_kwh": np.round(by_day(en.e_m, en.e_s, en.e_qty), 6),
        "ip": by_day(q_m, q_ts).astype(np.int64),
        "gp": by_day(q_m, q_ts, (qual.first_pass & ~qual.q_fail).astype(float)).astype(np.int64),
    })


# ------------------------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------------------------

def _format_unique(values) -> np.ndarray:
    """CSV texts of distinct non-missing values (a pandas Index)."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return _format_iso(values)
    if pd.api.types.is_bool_dtype(values.dtype):
        return np.where(np.asarray(values, dtype=bool), "true", "false")
    if pd.api.types.is_integer_dtype(values.dtype) or pd.api.types.is_float_dtype(values.dtype):
        return np.asarray(values).astype(str)  # shortest round-trip repr
    out = []
    for x in values:
        if isinstance(x, (bool, np.bool_)):
            t = "true" if x else "false"
        else:
            t = str(x)
            if any(c in t for c in ',"\n\r'):
                t = '"' + t.replace('"', '""') + '"'
        out.append(t)
    return np.array(out, dtype=str)


def _cells(s: pd.Series) -> list[str]:
    """CSV cell texts of one column: ISO 8601 with offset for tz-aware timestamps, true/false for booleans,
    shortest round-trip repr for numbers, '' for missing values, RFC 4180 quoting where needed."""
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    text = np.append(_format_unique(uniques), "")  # code -1 (missing) -> ''
    return text[codes].tolist()


def write_csv(df: pd.DataFrame, path: Path, chunk: int = 500_000) -> None:
    """Write ``df`` as CSV (header, comma separated, ``\n`` line ends) in chunks of rows."""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(",".join(str(c) for c in df.columns) + "\n")
        for a in range(0, len(df), chunk):
            part = df.iloc[a:a + chunk]
            cols = [_cells(part[c]) for c in part.columns]
            fh.write("".join([",".join(row) + "\n" for row in zip(*cols)]))


def write_plant(tables: dict, out_dir) -> dict[str, Path]:
    """Write simulated tables as CSV files plus a README.

    Parameters
    ----------
    tables : dict of str to pandas.DataFrame
        As returned by :func:`simulate_plant`.
    out_dir : str or path-like
        Directory, created if missing.  Existing files of the same names are overwritten.

    Returns
    -------
    dict of str to pathlib.Path
        ``<name>`` -> ``<out_dir>/<name>.csv`` for each table (``truth`` -> ``truth_elements.csv``) and
        ``readme`` -> ``<out_dir>/README.md``.

    Notes
    -----
    Timestamps are written as ISO 8601 with the UTC offset (``2025-03-03T06:00:00+01:00``), booleans as
    ``true``/``false``, missing values (e.g. the states' ``end``) as empty fields.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    counts = {}
    for name, df in tables.items():
        fname = "truth_elements.csv" if name == "truth" else f"{name}.csv"
        p = out / fname
        write_csv(df, p)
        paths[name] = p
        counts[fname] = len(df)
    meta: dict = {}
    for df in tables.values():
        meta = df.attrs.get("zhizao_simulation") or meta
        if meta:
            break
    params = ", ".join(f"{k}={meta[k]!r}" for k in ("machines", "days", "seed", "start", "timezone",
                                                      "holidays") if k in meta) or "unknown"
    lines = [
        "# Simulated plant data",
        "",
        "This data is SIMULATED by zhizao's plant simulator (`zhizao.simulate.simulate_plant`); it describes "
        "no real plant.",
        "",
        f"- seed: {meta.get('seed', 'unknown')}",
        f"- parameters: {params}",
        "",
        "## Files",
        "",
        "| file | rows |",
        "|---|---|",
        *[f"| {f} | {n} |" for f, n in counts.items()],
        "",
        "The canonical tables follow zhizao's schema (`zhizao.schema.TABLES`). Timestamps are ISO 8601 with "
        "the UTC offset; durations in seconds; energy in kWh; labour in hours. States have no `end`: a state "
        "lasts until the next state of the same machine, and each machine's timeline is closed by an `OFF` "
        "state at the end of the range.",
        "",
        "`truth_elements.csv` holds the ISO 22400-2 elements per machine and local day, computed by the "
        "simulator from its own events and calendar (half-open intervals; times in seconds): ct, pot "
        "(shifts minus holidays), pdt (part of pot covered by breaks, planned downtime or BREAK states), "
        "pbt = pot - pdt, apt / aust / adot / adet (RUN / SETUP / IDLE / FAIL+MINOR time inside pbt), "
        "adet_minor, aupt = apt + aust, aubt = aupt + adet, fe (failures starting in the day), ttr "
        "(failure time inside pbt), pq / gq / sq / rq, ideal_time (sum of pri x produced) and energy_kwh by "
        "record start, ip / gp by inspection time.",
        "",
    ]
    readme = out / "README.md"
    readme.write_text("\n".join(lines), encoding="utf-8")
    paths["readme"] = readme
    from zhizao.provenance import write_sidecar

    paths["provenance"] = write_sidecar(out, generator="zhizao.simulate.simulate_plant",
                                        **{k: v for k, v in meta.items() if k != "generator"})
    return paths
