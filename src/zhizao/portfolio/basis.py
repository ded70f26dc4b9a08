"""What the programme's verified values actually rest on, read from the stored results: the windows' lengths
in months, the conditions the energy and cost baselines were adjusted for, whether costs were deflated.

A notice's note on method states these facts instead of the platform's defaults: a reader found "12 months
each by default ... (output, operating hours, weather, prices)" in a notice whose results used six months, no
weather and no price index.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pandas as pd

#: Kinds of the variables an energy or cost baseline model can use, in the order a note names them.
DRIVER_KINDS = ("output", "run_hours", "scheduled_hours", "weather", "day_type", "other")

_WEATHER = ("hdd", "cdd", "temperature_c")


def driver_kind(term: str) -> str | None:
    """The kind of a baseline model's term (None: the constant, or a non-routine adjustment's step).

    >>> [driver_kind(t) for t in ("const", "run:M1", "scheduled_hours", "hdd", "weekday_3", "output")]
    [None, 'run_hours', 'scheduled_hours', 'weather', 'day_type', 'output']
    """
    if term == "const" or term.startswith("adjustment"):
        return None
    if term.startswith("run:") or term in ("run_hours", "operating_hours"):
        return "run_hours"
    if term == "scheduled_hours":
        return "scheduled_hours"
    if term in ("output", "volume"):
        return "output"
    if term in _WEATHER:
        return "weather"
    if term.startswith(("weekday_", "hour_")):
        return "day_type"
    return "other"


def _months(period: Any) -> int | None:
    """Whole months of a result's ``[start, end)`` window (ISO strings), rounded; None without one."""
    if not isinstance(period, (list, tuple)) or len(period) != 2:
        return None
    try:
        a, b = pd.Timestamp(period[0]), pd.Timestamp(period[1])
    except (TypeError, ValueError):
        return None
    return int(round((b - a).total_seconds() / 86400 / (365.2425 / 12)))


def _end(period: Any) -> pd.Timestamp | None:
    """The end of a result's ``[start, end)`` window (an ISO string, its offset kept); None without one."""
    if not isinstance(period, (list, tuple)) or len(period) != 2:
        return None
    try:
        end = pd.Timestamp(period[1])
    except (TypeError, ValueError):
        return None
    if pd.isna(end):
        return None
    return end.tz_localize("UTC") if end.tzinfo is None else end  # comparable with the others


def verification_basis(ver: pd.DataFrame) -> dict[str, Any]:
    """What the stored results with a value (verified or indicative) rest on.

    Parameters
    ----------
    ver : pandas.DataFrame
        Latest verification results (:func:`zhizao.portfolio.registry.latest_verifications`; column ``result``
        the whole result, ``improvement`` its value).

    Returns
    -------
    dict
        n_results; baseline_months and reporting_months: (fewest, most) whole months of the windows, or None;
        drivers: per indicator (unit_energy, operating_cost), the kinds of :data:`DRIVER_KINDS` its models used
        with the number of results using each; cost_deflated, cost_not_deflated: operating-cost results whose
        costs were / were not deflated by a price index (check ``price_index``).
    """
    rows = ver[ver["improvement"].notna()] if len(ver) else ver
    months: dict[str, list[int]] = {"baseline": [], "reporting": []}
    drivers: dict[str, Counter[str]] = {"unit_energy": Counter(), "operating_cost": Counter()}
    deflated = not_deflated = 0
    until: pd.Timestamp | None = None
    for indicator, res in zip(rows["indicator"], rows["result"]):
        if not isinstance(res, dict):
            continue
        end = _end(res.get("reporting_period"))
        if end is not None and (until is None or end > until):
            until = end
        for k in months:
            m = _months(res.get(f"{k}_period"))
            if m is not None:
                months[k].append(m)
        if indicator in drivers:
            terms = (res.get("fit") or {}).get("terms") or []
            drivers[indicator].update({k for k in map(driver_kind, terms) if k})
        if indicator == "operating_cost":
            price = [c for c in res.get("checks") or [] if c.get("code") == "verify.check.price_index"]
            if price and all(c.get("passed") for c in price):
                deflated += 1
            elif price:
                not_deflated += 1
    return {
        "n_results": int(len(rows)),
        "baseline_months": (min(months["baseline"]), max(months["baseline"])) if months["baseline"] else None,
        "reporting_months": (min(months["reporting"]), max(months["reporting"])) if months["reporting"] else None,
        "drivers": {i: {k: c[k] for k in DRIVER_KINDS if c[k]} for i, c in drivers.items()},
        "cost_deflated": deflated, "cost_not_deflated": not_deflated,
        # the window ends before its end: its last day is the day of the instant just before
        "data_until": (until - pd.Timedelta(1, "ns")).date().isoformat() if until is not None else None,
    }
