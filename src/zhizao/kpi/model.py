"""The ISO 22400-2 model as pure functions: element rules and KPI formulas, numpy in, numpy out.

Every function here is one rule of ISO 22400-2:2014 (clause 5: elements; clause 6: KPIs) or one reading of
it that the standard leaves open, cited to its clause and to docs/reference/iso22400.md, where the readings
are stated with their tests. Nothing here reads a store, starts a thread or knows about buckets: the engine
(:mod:`zhizao.kpi.elements`, :mod:`zhizao.kpi.kpis`) orchestrates and calls these.

Conventions: times in seconds [s], quantities in units, energy in kgce or kWh; arrays broadcast; a ratio is
null (NaN) where its denominator is zero or an operand is null (never rounded, never capped).

References
----------
.. [1] ISO 22400-2:2014, Automation systems and integration — Key performance indicators (KPIs) for
   manufacturing operations management — Part 2: Definitions and descriptions.
.. [2] docs/reference/iso22400.md (this repository): the time model, the readings and the "KPI index" (each KPI's
   formula, unit, clause, function, reference and test); its "Sources" list where each source is found.
.. [3] Vorne Industries, "Calculating OEE" (https://www.oee.com/calculating-oee/): the worked example of the
   doctests of availability, effectiveness, quality_ratio, oee and teep; "TEEP" (https://www.oee.com/teep/).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numpy.typing import ArrayLike, NDArray


def ratio(num: ArrayLike, den: ArrayLike) -> NDArray[np.float64]:
    """``num / den`` with NaN where ``den`` is 0 or either side is NaN.

    Parameters
    ----------
    num, den : array_like of float

    Returns
    -------
    numpy.ndarray of float64

    Examples
    --------
    >>> ratio([1.0, 1.0, np.nan], [2.0, 0.0, 1.0]).tolist()
    [0.5, nan, nan]
    """
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den != 0, num / den, np.nan)


# -- element rules (ISO 22400-2, clause 5) ---------------------------------------------------------------------------
#: Calendar classes of time in :func:`time_elements`: outside POT, planned maintenance, break, busy.
CAL_OUTSIDE, CAL_MAINTENANCE, CAL_BREAK, CAL_BUSY = range(4)


def time_elements(length: ArrayLike, by_category: Iterable[ArrayLike]) -> dict[str, NDArray[np.float64]]:
    """The time elements of ISO 22400-2 from the calendar and the resolved states, per bucket.

    The calendar cuts each bucket into four classes: outside POT (no shift, or a holiday), planned
    maintenance, break, and busy (POT without planned downtime). The states, resolved by precedence into
    disjoint time of one category, fall into these classes. Then

    - POT = time of the shift classes minus ``not_scheduled`` states; PDT = its planned maintenance and break
      time plus ``planned_downtime`` and ``unscheduled`` states in the busy class; PBT = POT - PDT;
    - APT, AUST, TTR (failures), ADET_minor, ADOT = time of production, setup, unplanned_downtime,
      minor_stop, no_order states inside PBT; ADET = TTR + ADET_minor; AUPT = APT + AUST;
      AUBT = AUPT + ADET;
    - unaccounted = PBT without any state; PMT = calendar planned maintenance plus ``planned_downtime``
      states in PBT; ``unscheduled`` = unscheduled states inside POT; ``outside_pbt`` = production, setup
      and stop time outside PBT.

    Parameters
    ----------
    length : array_like, shape (n, 4)
        Time of each calendar class per bucket (classes :data:`CAL_OUTSIDE` .. :data:`CAL_BUSY`) [any time
        unit].
    by_category : array_like, shape (8, n, 4)
        Time of each state category (in the order of :data:`zhizao.schema.CATEGORY_PRECEDENCE`) in each class
        per bucket [same unit].

    Returns
    -------
    dict of str to numpy.ndarray, shape (n,)
        ct, pot, pdt, pbt, apt, aust, ttr, adet_minor, adet, aupt, aubt, adot, unaccounted, pmt, unscheduled,
        outside_pbt [same unit].

    References
    ----------
    ISO 22400-2:2014, clause 5, time elements; docs/reference/iso22400.md, "Time model" and "Scheduling".

    Examples
    --------
    An 8 h shift with a 1 h break; 6 h production and 30 min failure in busy time:

    >>> length = np.array([[0.0, 0.0, 3600.0, 25200.0]])
    >>> by_cat = np.zeros((8, 1, 4))
    >>> by_cat[3, 0, 3], by_cat[0, 0, 3] = 21600.0, 1800.0
    >>> t = time_elements(length, by_cat)
    >>> [t[k].item() for k in ("pot", "pdt", "pbt", "apt", "ttr", "aubt", "unaccounted")]
    [28800.0, 3600.0, 25200.0, 21600.0, 1800.0, 23400.0, 1800.0]
    """
    length = np.asarray(length, dtype=np.float64)
    unplanned, minor, setup, production, no_order, planned, unsched, not_sched = (
        np.asarray(x, dtype=np.float64) for x in by_category)
    in_pot = length - not_sched
    planned_states = planned + unsched
    working = production + setup + unplanned + minor
    t = {
        "ct": length.sum(axis=1),
        "pot": in_pot[:, 1:].sum(axis=1),
        "pdt": in_pot[:, 1:3].sum(axis=1) + planned_states[:, 3],
        "pbt": in_pot[:, 3] - planned_states[:, 3],
        "apt": production[:, 3],
        "aust": setup[:, 3],
        "ttr": unplanned[:, 3],
        "adet_minor": minor[:, 3],
        "adot": no_order[:, 3],
        "unaccounted": length[:, 3] - sum(x[:, 3] for x in (unplanned, minor, setup, production, no_order,
                                                              planned, unsched, not_sched)),
        "pmt": in_pot[:, 1] + planned[:, 3],
        "unscheduled": unsched[:, 1:].sum(axis=1),
        "outside_pbt": working[:, :3].sum(axis=1),
    }
    t["adet"] = actual_unit_delay_time(t["ttr"], t["adet_minor"])
    t["aupt"] = actual_unit_processing_time(t["apt"], t["aust"])
    t["aubt"] = actual_unit_busy_time(t["aupt"], t["adet"])
    return t


def planned_busy_time(pot: ArrayLike, pdt: ArrayLike) -> NDArray[np.float64]:
    """Planned busy time PBT = POT - PDT [s] (ISO 22400-2, clause 5, time elements).

    Parameters
    ----------
    pot : array_like
        Planned operation time [s].
    pdt : array_like
        Planned downtime inside POT [s].

    Returns
    -------
    numpy.ndarray
        PBT [s].

    References
    ----------
    ISO 22400-2:2014, clause 5, time elements; docs/reference/iso22400.md, "Time model".

    Examples
    --------
    >>> planned_busy_time(28800.0, 3600.0).item()
    25200.0
    """
    return np.asarray(pot, dtype=np.float64) - np.asarray(pdt, dtype=np.float64)


def actual_unit_processing_time(apt: ArrayLike, aust: ArrayLike) -> NDArray[np.float64]:
    """AUPT = APT + AUST [s] (ISO 22400-2, clause 5, time elements).

    References
    ----------
    ISO 22400-2:2014, clause 5, time elements; docs/reference/iso22400.md, "Time model".

    Examples
    --------
    >>> actual_unit_processing_time(3000.0, 600.0).item()
    3600.0
    """
    return np.asarray(apt, dtype=np.float64) + np.asarray(aust, dtype=np.float64)


def actual_unit_delay_time(ttr: ArrayLike, adet_minor: ArrayLike) -> NDArray[np.float64]:
    """ADET = failure time + minor stops inside PBT [s] (ISO 22400-2, clause 5, time elements).

    Parameters
    ----------
    ttr : array_like
        Time of failures (unplanned_downtime runs at or above the minor-stop threshold) inside PBT [s].
    adet_minor : array_like
        Time of minor stops inside PBT [s].

    References
    ----------
    ISO 22400-2:2014, clause 5, time elements; docs/reference/iso22400.md, "Minor stops".

    Examples
    --------
    >>> actual_unit_delay_time(1200.0, 240.0).item()
    1440.0
    """
    return np.asarray(ttr, dtype=np.float64) + np.asarray(adet_minor, dtype=np.float64)


def actual_unit_busy_time(aupt: ArrayLike, adet: ArrayLike) -> NDArray[np.float64]:
    """AUBT = AUPT + ADET [s] (ISO 22400-2, clause 5, time elements).

    References
    ----------
    ISO 22400-2:2014, clause 5, time elements; docs/reference/iso22400.md, "Time model".

    Examples
    --------
    >>> actual_unit_busy_time(3600.0, 1440.0).item()
    5040.0
    """
    return np.asarray(aupt, dtype=np.float64) + np.asarray(adet, dtype=np.float64)


def unaccounted_time(pbt: ArrayLike, aubt: ArrayLike, adot: ArrayLike) -> NDArray[np.float64]:
    """PBT without any state record: PBT - AUBT - ADOT [s] (a data-quality figure, never forced into an
    element; docs/reference/iso22400.md, "Time model").

    References
    ----------
    ISO 22400-2:2014, clause 5 (time elements: planned and actual times are measured separately);
    docs/reference/iso22400.md.

    Examples
    --------
    >>> unaccounted_time(28800.0, 25000.0, 1800.0).item()
    2000.0
    """
    return (np.asarray(pbt, dtype=np.float64) - np.asarray(aubt, dtype=np.float64)
            - np.asarray(adot, dtype=np.float64))


def is_minor_stop(run_length: ArrayLike, threshold: float) -> NDArray[np.bool_]:
    """Whether an unplanned_downtime run is a minor stop: shorter than the threshold; a run of exactly the
    threshold is a failure (docs/reference/iso22400.md, "Minor stops").

    Parameters
    ----------
    run_length : array_like
        Full length of each run of united unplanned_downtime records [any time unit].
    threshold : float
        Minor-stop threshold, same unit (default setting 300 s).

    Returns
    -------
    numpy.ndarray of bool

    References
    ----------
    ISO 22400-2:2014, clause 5, time elements (ADET); docs/reference/iso22400.md, "Minor stops".

    Examples
    --------
    >>> is_minor_stop([299.0, 300.0, 301.0], 300.0).tolist()
    [True, False, False]
    """
    return np.asarray(run_length) < threshold


def failure_events(fail_start: ArrayLike, fail_end: ArrayLike, pbt_start: ArrayLike, pbt_end: ArrayLike,
                   pbt_bucket: ArrayLike, n_buckets: int) -> NDArray[np.float64]:
    """Failure events FE per bucket: each failure counts once, in the bucket of its first instant inside
    planned busy time; a failure that never overlaps planned busy time does not count (ISO 22400-2,
    clause 5, maintenance elements).

    So a counted failure always has a positive time to restoration in the bucket where it counts, and MTTR
    is never 0 for a counted failure.

    Parameters
    ----------
    fail_start, fail_end : array of int64, shape (n,)
        Failure runs (unplanned_downtime at or above the minor-stop threshold), on one time axis [ms].
    pbt_start, pbt_end : array of int64, shape (m,)
        Disjoint pieces of planned busy time, increasing [ms].
    pbt_bucket : array of int64, shape (m,)
        Bucket of each piece (-1: outside every bucket; a failure whose first instant in planned busy time
        falls there counts in no bucket).
    n_buckets : int

    Returns
    -------
    numpy.ndarray of float64, shape (n_buckets,)
        FE [events].

    References
    ----------
    ISO 22400-2:2014, clause 5, maintenance elements; docs/reference/iso22400.md, "Failure events".

    Examples
    --------
    >>> failure_events(np.array([0, 50, 95]), np.array([20, 70, 99]),
    ...                np.array([10, 60]), np.array([40, 90]), np.array([0, 1]), 2).tolist()
    [1.0, 1.0]
    """
    fail_start = np.asarray(fail_start, np.int64)
    pbt_start = np.asarray(pbt_start, np.int64)
    j = np.searchsorted(np.asarray(pbt_end, np.int64), fail_start, side="right")  # first piece ending after it
    if pbt_start.size == 0:
        return np.zeros(n_buckets)
    ok = j < pbt_start.size
    j = np.minimum(j, pbt_start.size - 1)
    ok &= pbt_start[j] < np.asarray(fail_end, np.int64)
    b = np.where(ok, np.asarray(pbt_bucket)[j], -1)
    return np.bincount(b[b >= 0], minlength=n_buckets).astype(np.float64)


# -- KPI formulas (ISO 22400-2, clause 6) ----------------------------------------------------------------------------
def worker_efficiency(apwt: ArrayLike, apat: ArrayLike) -> NDArray[np.float64]:
    """KPI 1, worker efficiency = APWT / APAT [fraction] (ISO 22400-2, clause 6, KPI 1).

    Parameters
    ----------
    apwt : array_like
        Actual personnel work time [h].
    apat : array_like
        Actual personnel attendance time [h].

    References
    ----------
    ISO 22400-2:2014, clause 6, KPI 1; docs/reference/iso22400.md, "KPI index".

    Examples
    --------
    >>> worker_efficiency(7.0, 8.0).item()
    0.875
    """
    return ratio(apwt, apat)


def allocation_efficiency(aubt: ArrayLike, pbt: ArrayLike) -> NDArray[np.float64]:
    """KPI 4, allocation efficiency = AUBT / PBT [fraction] (ISO 22400-2, clause 6, KPI 4).

    References
    ----------
    ISO 22400-2:2014, clause 6, KPI 4; docs/reference/iso22400.md, "KPI index".

    Examples
    --------
    >>> allocation_efficiency(5040.0, 7200.0).item()
    0.7
    """
    return ratio(aubt, pbt)


def utilization_efficiency(apt: ArrayLike, aubt: ArrayLike) -> NDArray[np.float64]:
    """KPI 5, utilization efficiency = APT / AUBT [fraction] (ISO 22400-2, clause 6, KPI 5).

    References
    ----------
    ISO 22400-2:2014, clause 6, KPI 5; docs/reference/iso22400.md, "KPI index".

    Examples
    --------
    >>> utilization_efficiency(3000.0, 5000.0).item()
    0.6
    """
    return ratio(apt, aubt)


def availability(apt: ArrayLike, pbt: ArrayLike) -> NDArray[np.float64]:
    """KPI 8, availability = APT / PBT [fraction] (ISO 22400-2, clause 6, KPI 8; the final standard, not the draft's
    AUBT / PBT). A full breakdown (PBT > 0, APT = 0) gives 0.

    References
    ----------
    ISO 22400-2:2014, clause 6, KPI 8; docs/reference/iso22400.md, "Full breakdown";
    Vorne Industries, "Calculating OEE", the worked example (docs/reference/iso22400.md, "Sources").

    Examples
    --------
    >>> availability(22380.0, 25200.0).round(4).item()  # the Vorne worked example: 373 of 420 min
    0.8881
    """
    return ratio(apt, pbt)


def effectiveness(ideal_time: ArrayLike, apt: ArrayLike) -> NDArray[np.float64]:
    """KPI 9, effectiveness = sum(PRI_i x PQ_i) / APT [fraction] (ISO 22400-2, clause 6, KPI 9). Not capped: above 1
    stays above 1 (flagged in the data-quality table).

    Parameters
    ----------
    ideal_time : array_like
        sum over products of PRI_i [s/unit] x PQ_i [units] [s].
    apt : array_like
        Actual production time [s].

    References
    ----------
    ISO 22400-2:2014, clause 6, KPI 9; docs/reference/iso22400.md, "KPI index";
    Vorne Industries, "Calculating OEE", the worked example (docs/reference/iso22400.md, "Sources").

    Examples
    --------
    >>> effectiveness(19271.0, 22380.0).round(4).item()  # the Vorne worked example
    0.8611
    """
    return ratio(ideal_time, apt)


def quality_ratio(gq: ArrayLike, pq: ArrayLike) -> NDArray[np.float64]:
    """KPI 10, quality ratio = GQ / PQ [fraction], count based (ISO 22400-2, clause 6, KPI 10).

    References
    ----------
    ISO 22400-2:2014, clause 6, KPI 10; docs/reference/iso22400.md, "KPI index";
    Vorne Industries, "Calculating OEE", the worked example (docs/reference/iso22400.md, "Sources").

    Examples
    --------
    >>> quality_ratio(18848.0, 19271.0).round(4).item()  # the Vorne worked example
    0.978
    """
    return ratio(gq, pq)


def setup_ratio(aust: ArrayLike, aupt: ArrayLike) -> NDArray[np.float64]:
    """KPI 11, setup ratio = AUST / AUPT [fraction] (ISO 22400-2, clause 6, KPI 11).

    References
    ----------
    ISO 22400-2:2014, clause 6, KPI 11; docs/reference/iso22400.md, "KPI index".

    Examples
    --------
    >>> setup_ratio(600.0, 3600.0).round(4).item()
    0.1667
    """
    return ratio(aust, aupt)


def technical_efficiency(apt: ArrayLike, adet: ArrayLike) -> NDArray[np.float64]:
    """KPI 12, technical efficiency = APT / (APT + ADET) [fraction] (ISO 22400-2, clause 6, KPI 12).

    References
    ----------
    ISO 22400-2:2014, clause 6, KPI 12; docs/reference/iso22400.md, "KPI index".

    Examples
    --------
    >>> technical_efficiency(3000.0, 1000.0).item()
    0.75
    """
    return ratio(apt, np.asarray(apt, dtype=np.float64) + np.asarray(adet, dtype=np.float64))


def first_pass_yield(gp: ArrayLike, ip: ArrayLike) -> NDArray[np.float64]:
    """KPI 15, first pass yield = GP / IP [fraction] (ISO 22400-2, clause 6, KPI 15).

    References
    ----------
    ISO 22400-2:2014, clause 6, KPI 15; docs/reference/iso22400.md, "KPI index".

    Examples
    --------
    >>> first_pass_yield(90.0, 100.0).item()
    0.9
    """
    return ratio(gp, ip)


def scrap_ratio(sq: ArrayLike, pq: ArrayLike) -> NDArray[np.float64]:
    """KPI 16, scrap ratio = SQ / PQ [fraction] (ISO 22400-2, clause 6, KPI 16).

    References
    ----------
    ISO 22400-2:2014, clause 6, KPI 16; docs/reference/iso22400.md, "KPI index".

    Examples
    --------
    >>> scrap_ratio(423.0, 19271.0).round(4).item()
    0.022
    """
    return ratio(sq, pq)


def rework_ratio(rq: ArrayLike, pq: ArrayLike) -> NDArray[np.float64]:
    """KPI 17, rework ratio = RQ / PQ [fraction] (ISO 22400-2, clause 6, KPI 17).

    References
    ----------
    ISO 22400-2:2014, clause 6, KPI 17; docs/reference/iso22400.md, "KPI index".

    Examples
    --------
    >>> rework_ratio(5.0, 200.0).item()
    0.025
    """
    return ratio(rq, pq)


def comprehensive_energy_consumption(energy_kgce: ArrayLike, pq: ArrayLike) -> NDArray[np.float64]:
    """KPI 23, comprehensive energy consumption = E / PQ [kgce/unit], E = sum M_i x R_i in kgce
    (ISO 22400-2, clause 6, KPI 23; GB/T 2589 conversion factors).

    References
    ----------
    ISO 22400-2:2014, clause 6, KPI 23; docs/reference/iso22400.md, "KPI index"; GB/T 2589-2020 reference
    factors: docs/reference/transformation.md, "Energy conversion to standard coal".

    Examples
    --------
    >>> comprehensive_energy_consumption(12.29, 100.0).item()
    0.1229
    """
    return ratio(energy_kgce, pq)


def equipment_load_ratio(pq: ArrayLike, epc: ArrayLike) -> NDArray[np.float64]:
    """KPI 30, equipment load ratio = PQ / EPC [fraction], EPC = capacity [units/h] x POT [h]
    (ISO 22400-2, clause 6, KPI 30).

    References
    ----------
    ISO 22400-2:2014, clause 6, KPI 30; docs/reference/iso22400.md, "KPI index".

    Examples
    --------
    >>> equipment_load_ratio(600.0, 800.0).item()
    0.75
    """
    return ratio(pq, epc)


def mean_operating_time_between_failures(pbt: ArrayLike, fe: ArrayLike) -> NDArray[np.float64]:
    """KPI 31, MTBF = sum TBF / FE with sum TBF = PBT [s] (ISO 22400-2, clause 6, KPI 31; the roll-up-safe reading,
    FE rather than FE + 1).

    References
    ----------
    ISO 22400-2:2014, clause 6, KPI 31; docs/reference/iso22400.md, "Failure events".

    Examples
    --------
    >>> mean_operating_time_between_failures(28800.0, 4.0).item()
    7200.0
    """
    return ratio(pbt, fe)


def mean_time_to_failure(pbt: ArrayLike, ttr: ArrayLike, fe: ArrayLike) -> NDArray[np.float64]:
    """KPI 32, MTTF = sum TTF / FE with TTF = TBF - TTR, i.e. (PBT - TTR) / FE [s] (ISO 22400-2, clause 6, KPI 32).

    References
    ----------
    ISO 22400-2:2014, clause 6, KPI 32; docs/reference/iso22400.md, "Failure events".

    Examples
    --------
    >>> mean_time_to_failure(28800.0, 2400.0, 4.0).item()
    6600.0
    """
    return ratio(np.asarray(pbt, dtype=np.float64) - np.asarray(ttr, dtype=np.float64), fe)


def mean_time_to_restoration(ttr: ArrayLike, fe: ArrayLike) -> NDArray[np.float64]:
    """KPI 33, MTTR = sum TTR / FE [s] (ISO 22400-2, clause 6, KPI 33); never 0 for a counted failure.

    References
    ----------
    ISO 22400-2:2014, clause 6, KPI 33; docs/reference/iso22400.md, "Failure events".

    Examples
    --------
    >>> mean_time_to_restoration(2400.0, 4.0).item()
    600.0
    """
    return ratio(ttr, fe)


def corrective_maintenance_ratio(ttr: ArrayLike, pmt: ArrayLike) -> NDArray[np.float64]:
    """KPI 34, corrective maintenance ratio = CMT / (CMT + PMT) with CMT = TTR [fraction]
    (ISO 22400-2, clause 6, KPI 34).

    References
    ----------
    ISO 22400-2:2014, clause 6, KPI 34; docs/reference/iso22400.md, "KPI index".

    Examples
    --------
    >>> corrective_maintenance_ratio(1800.0, 5400.0).item()
    0.25
    """
    return ratio(ttr, np.asarray(ttr, dtype=np.float64) + np.asarray(pmt, dtype=np.float64))


def quality_ratio_time(ideal_good_time: ArrayLike, ideal_time: ArrayLike) -> NDArray[np.float64]:
    """Time-based quality ratio = sum PRI_i x GQ_i / sum PRI_i x PQ_i [fraction] (not an ISO number; differs
    from KPI 10 when products have different PRI; docs/reference/iso22400.md, "KPI index").

    References
    ----------
    zhizao's own figure; PRI per product: docs/reference/iso22400.md, "Quantities".

    Examples
    --------
    >>> quality_ratio_time(90.0, 120.0).item()
    0.75
    """
    return ratio(ideal_good_time, ideal_time)


def defect_rate(defects: ArrayLike, ip: ArrayLike) -> NDArray[np.float64]:
    """Defect rate = failed / inspected units [fraction] (programme indicator; docs/reference/iso22400.md).

    References
    ----------
    docs/reference/transformation.md, "The indicators" (defect rate, its second definition);
    docs/reference/iso22400.md, "KPI index".

    Examples
    --------
    >>> defect_rate(3.0, 60.0).item()
    0.05
    """
    return ratio(defects, ip)


def energy_per_good_unit(energy_kwh: ArrayLike, gq: ArrayLike) -> NDArray[np.float64]:
    """Energy per good unit = kWh / GQ [kWh/unit] (docs/reference/iso22400.md, "KPI index").

    References
    ----------
    docs/reference/transformation.md, "The indicators" (unit energy consumption per good unit, there in kgce).

    Examples
    --------
    >>> energy_per_good_unit(50.0, 200.0).item()
    0.25
    """
    return ratio(energy_kwh, gq)


def labour_productivity(earned_hours: ArrayLike, apat: ArrayLike) -> NDArray[np.float64]:
    """Standard hours earned per attendance hour = earned hours / APAT [h/h] (docs/reference/iso22400.md,
    "KPI index").

    References
    ----------
    docs/reference/transformation.md, "The indicators" (production efficiency: standard hours earned per labour
    hour).

    Examples
    --------
    >>> labour_productivity(6.0, 8.0).item()
    0.75
    """
    return ratio(earned_hours, apat)


def utilization(pbt: ArrayLike, ct: ArrayLike) -> NDArray[np.float64]:
    """PBT / calendar time [fraction] (the loading factor of TEEP; docs/reference/iso22400.md).

    References
    ----------
    Vorne Industries, "TEEP": utilization = planned production time / all time (docs/reference/iso22400.md,
    "Sources").

    Examples
    --------
    >>> utilization(25200.0, 28800.0).item()
    0.875
    """
    return ratio(pbt, ct)


def oee(availability_: ArrayLike, effectiveness_: ArrayLike, quality_ratio_: ArrayLike, apt: ArrayLike,
        pbt: ArrayLike) -> NDArray[np.float64]:
    """KPI 6, OEE index = availability x effectiveness x quality ratio [fraction] (ISO 22400-2, clause 6, KPI 6).

    A full breakdown (PBT > 0, APT = 0) gives 0 whether or not counts exist (effectiveness and quality ratio
    are undefined there).

    References
    ----------
    ISO 22400-2:2014, clause 6, KPI 6; docs/reference/iso22400.md, "Full breakdown";
    Vorne Industries, "Calculating OEE", the worked example (docs/reference/iso22400.md, "Sources").

    Examples
    --------
    >>> oee(0.8881, 0.8611, 0.9780, 22380.0, 25200.0).round(4).item()
    0.7479
    >>> oee(0.0, np.nan, np.nan, 0.0, 3600.0).item()
    0.0
    """
    value = (np.asarray(availability_, dtype=np.float64) * np.asarray(effectiveness_, dtype=np.float64)
             * np.asarray(quality_ratio_, dtype=np.float64))
    return np.where((np.asarray(apt) == 0) & (np.asarray(pbt) > 0), 0.0, value)


def nee(aupt: ArrayLike, pbt: ArrayLike, effectiveness_: ArrayLike, quality_ratio_: ArrayLike) -> NDArray[np.float64]:
    """KPI 7, NEE = (AUPT / PBT) x effectiveness x quality ratio [fraction] (ISO 22400-2, clause 6, KPI 7).

    References
    ----------
    ISO 22400-2:2014, clause 6, KPI 7; docs/reference/iso22400.md, "KPI index".

    Examples
    --------
    >>> nee(3600.0, 7200.0, 0.9, 0.5).item()
    0.225
    """
    return ratio(aupt, pbt) * np.asarray(effectiveness_, dtype=np.float64) * np.asarray(quality_ratio_,
                                                                                         dtype=np.float64)


def teep(oee_: ArrayLike, pbt: ArrayLike, ct: ArrayLike) -> NDArray[np.float64]:
    """TEEP = OEE x PBT / calendar time [fraction] (not an ISO number; docs/reference/iso22400.md).

    References
    ----------
    Vorne Industries, "TEEP": TEEP = OEE x utilization (docs/reference/iso22400.md, "Sources"); the worked
    example below is Vorne's "Calculating OEE".

    Examples
    --------
    >>> teep(0.7479, 25200.0, 28800.0).round(4).item()  # the Vorne worked example
    0.6544
    """
    return np.asarray(oee_, dtype=np.float64) * ratio(pbt, ct)
