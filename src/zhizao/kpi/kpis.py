"""ISO 22400-2 KPIs computed from (summed) elements, plus TEEP, the loss waterfall and the six big losses.

Every KPI is a pure function of elements. A KPI is *unavailable* when an element it needs is missing (null:
the data has no records of that kind) and *undefined* when its denominator is zero; both give null, with the
reason in column ``null_reasons``. Nothing is capped or rounded: an effectiveness above 1 stays above 1 and
is flagged by :mod:`zhizao.kpi.quality`.

Source: ISO 22400-2:2014, clause 6 (KPI descriptions); each formula is one pure, cited function of
:mod:`zhizao.kpi.model` (docs/reference/iso22400.md, "KPI index", lists each KPI's formula, unit, clause,
function, reference and test; tests/test_kpi_index.py keeps it complete).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from zhizao.errors import InputError
from zhizao.kpi import model
from zhizao.messages import Message, define

#: Why a KPI is null (structured: a code, parameters and the English text, translated where shown).
NO_DATA_IN_PERIOD = define("kpi.no_data_in_period", "no data in this period")
UNDEFINED_ZERO = define("kpi.undefined_zero_denominator", "undefined, %(den)s = 0")
UNAVAILABLE_NO_DATA = define("kpi.unavailable_no_data", "unavailable, no data for %(elements)s")
FACTOR_NULL = define("kpi.undefined_factor_null", "undefined, a factor is null")
PRI_MISSING = define("kpi.unavailable_pri_missing", "unavailable, pri missing for some products (pq_no_pri > 0)")
WORK_HOURS_MISSING = define("kpi.unavailable_work_hours_missing",
                            "unavailable, work_hours missing for some labour records")


@dataclass(frozen=True)
class KPI:
    number: int | None  # ISO 22400-2 number; None for non-ISO figures (TEEP, ...)
    name: str
    numerator: tuple[str, ...]  # elements multiplied or summed as below
    denominator: tuple[str, ...]
    better: str  # 'up', 'down' or '-'
    formula: str

    @property
    def elements(self) -> tuple[str, ...]:
        return self.numerator + self.denominator


def _k(number: int | None, name: str, num: Iterable[str], den: Iterable[str], better: str, formula: str) -> KPI:
    return KPI(number, name, tuple(num), tuple(den), better, formula)


#: KPIs that are ratios of (sums of) elements. Compound KPIs (oee, nee, teep) are computed from these.
RATIO_KPIS: tuple[KPI, ...] = (
    _k(1, "worker_efficiency", ["apwt"], ["apat"], "up", "APWT / APAT"),
    _k(4, "allocation_efficiency", ["aubt"], ["pbt"], "up", "AUBT / PBT"),
    _k(5, "utilization_efficiency", ["apt"], ["aubt"], "up", "APT / AUBT"),
    _k(8, "availability", ["apt"], ["pbt"], "up", "APT / PBT"),
    _k(9, "effectiveness", ["ideal_time"], ["apt"], "up", "sum(PRI_i x PQ_i) / APT"),
    _k(10, "quality_ratio", ["gq"], ["pq"], "up", "GQ / PQ (count based)"),
    _k(11, "setup_ratio", ["aust"], ["aupt"], "down", "AUST / AUPT"),
    _k(12, "technical_efficiency", ["apt"], ["apt", "adet"], "up", "APT / (APT + ADET)"),
    _k(15, "first_pass_yield", ["gp"], ["ip"], "up", "GP / IP"),
    _k(16, "scrap_ratio", ["sq"], ["pq"], "down", "SQ / PQ"),
    _k(17, "rework_ratio", ["rq"], ["pq"], "down", "RQ / PQ"),
    _k(23, "comprehensive_energy_consumption", ["energy_kgce"], ["pq"], "down", "E [kgce] / PQ"),
    _k(30, "equipment_load_ratio", ["pq"], ["epc"], "-", "PQ / EPC (EPC = capacity [units/h] x POT)"),
    _k(31, "mean_operating_time_between_failures", ["pbt"], ["fe"], "up",
       "sum TBF / FE with sum TBF = PBT (reading)"),
    _k(32, "mean_time_to_failure", ["pbt", "-ttr"], ["fe"], "up", "sum TTF / FE with TTF = TBF - TTR (reading)"),
    _k(33, "mean_time_to_restoration", ["ttr"], ["fe"], "down", "sum TTR / FE"),
    _k(34, "corrective_maintenance_ratio", ["ttr"], ["ttr", "pmt"], "down", "CMT / (CMT + PMT), CMT = TTR"),
    _k(None, "quality_ratio_time", ["ideal_good_time"], ["ideal_time"], "up",
       "ideal good time / ideal time (time based)"),
    _k(None, "defect_rate", ["defects"], ["ip"], "down", "failed / inspected units"),
    _k(None, "energy_per_good_unit", ["energy_kwh"], ["gq"], "down", "kWh / GQ"),
    _k(None, "labour_productivity", ["earned_hours"], ["apat"], "up", "standard hours earned / APAT"),
    _k(None, "utilization", ["pbt"], ["ct"], "up", "PBT / calendar time (TEEP loading)"),
)

COMPOUND_KPIS = (
    _k(6, "oee", ["availability", "effectiveness", "quality_ratio"], [], "up",
       "availability x effectiveness x quality ratio"),
    _k(7, "nee", ["aupt/pbt", "effectiveness", "quality_ratio"], [], "up",
       "(AUPT / PBT) x effectiveness x quality ratio"),
    _k(None, "teep", ["oee", "pbt/ct"], [], "up", "OEE x PBT / calendar time"),
)

#: ISO 22400-2 KPIs that zhizao cannot compute from the canonical tables, with the element that is missing.
UNAVAILABLE = {
    2: ("allocation_ratio", "aoet (order execution time)"),
    3: ("throughput_rate", "aoet (order execution time)"),
    13: ("production_process_ratio", "aoet (order execution time)"),
    14: ("actual_to_planned_scrap_ratio", "psq (planned scrap quantity)"),
    18: ("fall_off_ratio", "scrap per process step"),
    24: ("inventory_turns", "inventory"),
    25: ("finished_goods_ratio", "cm (consumed material)"),
    26: ("integrated_goods_ratio", "igq, cm (consumed material)"),
    27: ("production_loss_ratio", "pl, cm (consumed material)"),
    28: ("storage_and_transportation_loss_ratio", "stl, cm (consumed material)"),
    29: ("other_loss_ratio", "ol, cm (consumed material)"),
}

KPI_NAMES = tuple(k.name for k in RATIO_KPIS) + tuple(k.name for k in COMPOUND_KPIS)
UNKNOWN_KPI = define("kpi.unknown_kpi", "unknown KPI '%(name)s'; known: %(known)s")
#: The KPIs a compound KPI is made of.
DEPENDS = {"oee": ("availability", "effectiveness", "quality_ratio"), "nee": ("effectiveness", "quality_ratio"),
           "teep": ("oee", "availability", "effectiveness", "quality_ratio")}

ratio = model.ratio


def formula(name: str) -> Callable[..., NDArray[np.float64]]:
    """The pure function of KPI ``name`` in :mod:`zhizao.kpi.model` (the formula, its clause and its test)."""
    f: Callable[..., NDArray[np.float64]] = getattr(model, name)
    return f


def formula_args(name: str) -> tuple[str, ...]:
    """The element names that :func:`formula` of ``name`` takes, in order."""
    return tuple(inspect.signature(formula(name)).parameters)


def compute_kpis(elements: pd.DataFrame, kpis: list[str] | None = None, with_data: Iterable[str] | None = None
                 ) -> pd.DataFrame:
    """KPIs of each row of an elements table.

    Parameters
    ----------
    elements : pandas.DataFrame
        Rows of summed elements (any level and period; see :mod:`zhizao.kpi.elements`).
    kpis : list of str, optional
        Names to return (default all of :data:`KPI_NAMES`). Only these and the KPIs they are made of are
        computed; ``null_reasons`` covers those.
    with_data : iterable of str, optional
        Where ``elements`` are a piece of a larger table: the elements with a value in some row of that table.
        A KPI is *unavailable* when an element it needs has no value in the whole table (the data have no
        records of that kind), else *no data in this period* where a row lacks it. Default: the elements with
        a value in ``elements``.

    Returns
    -------
    pandas.DataFrame
        Same index; one float column per KPI (fractions, not percent; times in seconds) with NaN where
        undefined or unavailable; ``null_reason_codes``: for every null KPI its reason as a JSON list of
        ``{"kpi", "code", "params"}`` (read with :func:`null_reason_messages`); ``null_reasons``: the same in
        English, ``"kpi: reason; ..."`` (for reading, not for parsing).

    Raises
    ------
    KeyError
        For an unknown KPI name.
    """
    wanted = list(kpis) if kpis else list(KPI_NAMES)
    for name in wanted:
        if name not in KPI_NAMES:
            raise InputError(UNKNOWN_KPI, name=name, known=list(KPI_NAMES))
    needed = set(wanted).union(*(DEPENDS.get(k, ()) for k in wanted))
    n = len(elements)
    col = _Columns(elements)
    has = set(with_data) if with_data is not None else None
    out: dict[str, NDArray[np.float64]] = {}
    notes: list[tuple[tuple[str, Message], NDArray[np.bool_]]] = []  # ((kpi, reason), rows it applies to), in order

    def note(name: str, mask: ArrayLike, why: Message) -> None:
        notes.append(((name, why), np.broadcast_to(np.asarray(mask, dtype=bool), (n,))))

    def total(names: tuple[str, ...]) -> NDArray[np.float64]:
        t = np.zeros(n)
        for e in names:
            t = t - col[e[1:]] if e.startswith("-") else t + col[e]
        return t

    for k in RATIO_KPIS:
        if k.name not in needed:
            continue
        num, den = total(k.numerator), total(k.denominator)
        out[k.name] = formula(k.name)(*(col[a] for a in formula_args(k.name)))
        missing = [e.lstrip("-") for e in k.elements
                   if (e.lstrip("-") not in has if has is not None else np.isnan(col[e.lstrip("-")]).all())]
        # a zero denominator makes the KPI undefined whether or not the numerator has data (a full breakdown
        # leaves effectiveness undefined, with or without count records)
        zero = den == 0
        if missing:
            note(k.name, ~zero, UNAVAILABLE_NO_DATA(elements=", ".join(sorted(set(missing)))))
        else:
            note(k.name, (np.isnan(num) | np.isnan(den)) & ~zero, NO_DATA_IN_PERIOD())
        note(k.name, zero, UNDEFINED_ZERO(den=" + ".join(k.denominator)))
    # an ideal time with unknown PRI is not an ideal time
    no_pri = np.nan_to_num(col["pq_no_pri"]) > 0
    for name in ("effectiveness", "quality_ratio_time"):
        if name in needed:
            out[name] = np.where(no_pri, np.nan, out[name])
            note(name, no_pri, PRI_MISSING())
    if "worker_efficiency" in needed:
        part_apwt = np.nan_to_num(col["apat_no_apwt"]) > 0
        out["worker_efficiency"] = np.where(part_apwt, np.nan, out["worker_efficiency"])
        note("worker_efficiency", part_apwt, WORK_HOURS_MISSING())

    if "oee" in needed:
        # a full breakdown gives 0 whether or not count records exist (model.oee)
        out["oee"] = model.oee(out["availability"], out["effectiveness"], out["quality_ratio"], col["apt"],
                               col["pbt"])
    if "nee" in needed:
        out["nee"] = model.nee(col["aupt"], col["pbt"], out["effectiveness"], out["quality_ratio"])
    if "teep" in needed:
        out["teep"] = model.teep(out["oee"], col["pbt"], col["ct"])
    for name in ("oee", "nee", "teep"):
        if name in needed:
            note(name, np.isnan(out[name]), FACTOR_NULL())
    columns: dict[str, NDArray[np.float64] | list[str | None]] = {k: out[k] for k in KPI_NAMES if k in wanted}
    columns["null_reasons"] = _join_notes([(f"{k}: {m}", mask) for (k, m), mask in notes], n)
    columns["null_reason_codes"] = _join_notes([(_code_json(k, m), mask) for (k, m), mask in notes], n,
                                               ",", "[%s]")
    return pd.DataFrame(columns, index=elements.index)


class _Columns(dict[str, NDArray[np.float64]]):
    """Element columns as float arrays (NaN for null), converted when first used."""

    def __init__(self, elements: pd.DataFrame):
        super().__init__()
        self.elements = elements

    def __missing__(self, name: str) -> NDArray[np.float64]:
        self[name] = self.elements[name].to_numpy(dtype=np.float64, na_value=np.nan)
        return self[name]


def _code_json(kpi: str, m: Message) -> str:
    return json.dumps({"kpi": kpi, "code": m.code, "params": m.args}, ensure_ascii=False)


def _join_notes(notes: list[tuple[str, NDArray[np.bool_]]], n: int, sep: str = "; ",
                wrap: str = "%s") -> list[str | None]:
    """Per row, the texts of the notes whose mask holds there, joined by ``sep`` in order and put in ``wrap``
    (None if none). Rows share few distinct combinations, so each combination is joined once."""
    if not notes or n == 0:
        return [None] * n
    hit = np.column_stack([m for _, m in notes])
    packed = np.packbits(hit, axis=1)
    if packed.shape[1] <= 8:  # one integer per row: hash-factorize instead of sorting rows
        wide = np.zeros((n, 8), dtype=np.uint8)
        wide[:, :packed.shape[1]] = packed
        inverse, uniq = pd.factorize(wide.view("<u8").ravel())
        combos = uniq.astype("<u8").view(np.uint8).reshape(-1, 8)[:, :packed.shape[1]]
    else:
        combos, inverse = np.unique(packed, axis=0, return_inverse=True)
    texts = [t for t, _ in notes]
    joined = [(wrap % sep.join(texts[j] for j in np.flatnonzero(row))) if row.any() else None
              for row in np.unpackbits(combos, axis=1, count=len(notes)).astype(bool)]
    return [joined[i] for i in np.asarray(inverse).ravel()]


def null_reason_messages(codes: str | None) -> dict[str, Message]:
    """The ``null_reason_codes`` of a row of :func:`compute_kpis` as ``{kpi: Message}`` (the first reason per
    KPI; empty for None). Render a reason with ``message.text(lang)``; machines read ``code`` and ``args``.

    >>> k = compute_kpis(pd.DataFrame({"apt": [0.0], "pbt": [0.0], "pq_no_pri": [0.0]}), ["availability"])
    >>> m = null_reason_messages(k["null_reason_codes"][0])["availability"]
    >>> m.code, m.args, str(m)
    ('kpi.undefined_zero_denominator', {'den': 'pbt'}, 'undefined, pbt = 0')
    """
    out: dict[str, Message] = {}
    if isinstance(codes, str):
        for d in json.loads(codes):
            out.setdefault(d["kpi"], Message.from_dict(d))
    return out


def parse_null_reasons(text: str | None) -> dict[str, str]:
    """The English ``null_reasons`` text of :func:`compute_kpis` as a dict: ``"kpi: reason; kpi2: reason2"`` ->
    ``{kpi: reason}`` (the first reason per KPI; empty for None). For display only: programs read
    :func:`null_reason_messages`."""
    out: dict[str, str] = {}
    if isinstance(text, str):
        for part in text.split("; "):
            name, _sep, why = part.partition(": ")
            out.setdefault(name.strip(), why.strip())
    return out


def loss_waterfall(elements: pd.DataFrame) -> pd.DataFrame:
    """The ten loss categories of reference/iso22400.md in seconds, per row of summed elements.

    Columns: calendar_time, not_scheduled (ct - pot), unscheduled, planned_downtime (pdt - unscheduled),
    setup (aust), unplanned_downtime (adet - minor), minor_stops (adet_minor), no_order (adot), unaccounted,
    reduced_speed (apt - ideal_time), rejects_rework (ideal_time - ideal_good_time), startup_yield (null: the
    data do not separate start-up scrap), fully_productive (ideal_good_time). The first column minus the
    losses gives the last one, up to unaccounted time.
    """
    e = elements
    w = pd.DataFrame(index=e.index)
    w["calendar_time"] = e["ct"]
    w["not_scheduled"] = e["ct"] - e["pot"]
    w["unscheduled"] = e["unscheduled"]
    w["planned_downtime"] = e["pdt"] - e["unscheduled"]
    w["setup"] = e["aust"]
    w["unplanned_downtime"] = e["adet"] - e["adet_minor"]
    w["minor_stops"] = e["adet_minor"]
    w["no_order"] = e["adot"]
    w["unaccounted"] = e["unaccounted"]
    ideal = e["ideal_time"].where(e["pq_no_pri"].fillna(0) == 0)
    good = e["ideal_good_time"].where(e["pq_no_pri"].fillna(0) == 0)
    w["reduced_speed"] = e["apt"] - ideal
    w["rejects_rework"] = ideal - good
    w["startup_yield"] = np.nan
    w["fully_productive"] = good
    return w


def six_big_losses(elements: pd.DataFrame) -> pd.DataFrame:
    """The six big losses (Nakajima) in seconds: breakdowns, setup_adjustments, small_stops, reduced_speed,
    startup_rejects (null, not separable in the data) and production_rejects."""
    w = loss_waterfall(elements)
    return pd.DataFrame({
        "breakdowns": w["unplanned_downtime"],
        "setup_adjustments": w["setup"],
        "small_stops": w["minor_stops"],
        "reduced_speed": w["reduced_speed"],
        "startup_rejects": w["startup_yield"],
        "production_rejects": w["rejects_rework"],
    }, index=elements.index)


CAPABILITY_KPIS = {19: "cm", 20: "cmk", 21: "cp", 22: "cpk"}
#: Formulas of KPIs 19-22 (s: short-term, within-hour standard deviation; sigma: long-term), computed by
#: :func:`zhizao.kpi.capability.capability`.
CAPABILITY_FORMULAS = {
    "cm": "(USL - LSL) / (6 s)",
    "cmk": "min(USL - mean, mean - LSL) / (3 s)",
    "cp": "(USL - LSL) / (6 sigma)",
    "cpk": "min(USL - mean, mean - LSL) / (3 sigma)",
}


def catalogue(elements: pd.DataFrame, has_measurements: bool = False) -> pd.DataFrame:
    """All ISO 22400-2 KPIs (and zhizao's extra figures) with whether the data can give them.

    Parameters
    ----------
    elements : pandas.DataFrame
        Elements of the store (any level); a KPI is available when every element it needs has data.
    has_measurements : bool
        Whether the quality table holds measured values with limits (KPIs 19-22).

    Returns
    -------
    pandas.DataFrame
        Columns number, name, formula, better, status ('available' or 'unavailable: no data for ...').
    """
    rows = []
    present = {c for c in elements.columns if elements[c].notna().any()}
    for k in RATIO_KPIS + COMPOUND_KPIS:
        need = {e.lstrip("-") for e in k.elements if e.lstrip("-") in elements.columns}
        if k.name in ("oee", "nee", "teep"):
            need = {"apt", "pbt", "ideal_time", "pq", "gq", "aupt", "ct"}
        missing = sorted(need - present)
        rows.append((k.number, k.name, k.formula, k.better,
                     "available" if not missing else f"unavailable: no data for {', '.join(missing)}"))
    for n, name in CAPABILITY_KPIS.items():
        rows.append((n, name, CAPABILITY_FORMULAS[name], "up",
                     "available" if has_measurements else "unavailable: no measured values with limits in quality"))
    for n, (name, lacking) in UNAVAILABLE.items():
        rows.append((n, name, "", "", f"unavailable: no data for {lacking}"))
    df = pd.DataFrame(rows, columns=["number", "name", "formula", "better", "status"])
    df["number"] = df["number"].astype("Int64")
    df["order"] = df["number"].fillna(100)
    return df.sort_values(["order", "name"]).drop(columns="order").reset_index(drop=True)
