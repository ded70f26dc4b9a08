"""Summaries that the report and the dashboard both show, computed once here: the Pareto of losses and of stop
reasons, and the data-quality summary.

Both front ends (:mod:`zhizao.report.html`, :mod:`zhizao.server.views`) take the stage's tables
(``Workspace.losses``, ``Workspace.stop_reasons``, ``Workspace.data_quality``), turn them into the rows below with
these functions, and only lay the rows out (HTML cells, charts) and format the numbers for their language. The
functions compute no KPI: they choose, order, sum and divide what the stage gave.

Example
-------
>>> bars = pareto([("Setup", 3600.0), ("Minor stops", 1800.0), ("Other", 600.0)])
>>> [(b.label, round(b.share, 2), round(b.cumulative, 2)) for b in bars]
[('Setup', 0.6, 0.6), ('Minor stops', 0.3, 0.9), ('Other', 0.1, 1.0)]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from zhizao.i18n import N_

#: Stop reasons shown in the Pareto; the rest are summed into one bar.
MAX_REASONS = 15

#: Time-model categories of ``Workspace.losses`` in waterfall order: column -> (label, kind).
WATERFALL = {
    "calendar_time": (N_("Calendar time"), "total"),
    "not_scheduled": (N_("Not scheduled"), "other"),
    "unscheduled": (N_("Scheduled, not required"), "other"),
    "planned_downtime": (N_("Planned downtime"), "loss"),
    "setup": (N_("Setup / changeover"), "loss"),
    "unplanned_downtime": (N_("Unplanned downtime"), "loss"),
    "minor_stops": (N_("Minor stops"), "loss"),
    "no_order": (N_("No order"), "loss"),
    "unaccounted": (N_("Unaccounted time"), "gap"),
    "reduced_speed": (N_("Reduced speed"), "loss"),
    "rejects_rework": (N_("Rejects and rework"), "loss"),
    "startup_yield": (N_("Start-up losses (reduced yield)"), "loss"),
    "fully_productive": (N_("Fully productive time"), "total"),
}
#: Loss categories of the Pareto (schedule, availability, performance and quality losses).
PARETO_LOSSES = ("planned_downtime", "setup", "unplanned_downtime", "minor_stops", "no_order", "reduced_speed",
                 "rejects_rework", "startup_yield")
#: State categories as shown in the stop-reason Pareto.
STATE_CATEGORIES = {
    "unplanned_downtime": N_("Unplanned downtime"),
    "minor_stop": N_("Minor stop"),
    "setup": N_("Setup / changeover"),
    "no_order": N_("No order"),
    "planned_downtime": N_("Planned downtime"),
    "production": N_("Production"),
}
#: Data-quality checks of :mod:`zhizao.kpi.quality`: check -> (label, unit of the value).
DQ_CHECKS = {
    "performance_above_100": (N_("Performance above 100 %"), "ratio"),
    "overlapping_states": (N_("Overlapping states"), "s"),
    "unaccounted_time": (N_("Unaccounted time"), "s"),
    "states_outside_calendar": (N_("States outside the calendar"), "s"),
    "counter_resets": (N_("Energy counter resets"), "count"),
    "missing_pri": (N_("Missing ideal cycle time (PRI)"), "units"),
    "no_calendar": (N_("No calendar"), "flag"),
    "no_data": (N_("No records"), "flag"),
    "counter_outage": (N_("Counter outage"), "s"),
    "meter_outage": (N_("Meter outage"), "s"),
    "ambiguous_local_time": (N_("Ambiguous local times"), "count"),
    "ambiguous_time_zone": (N_("Times of a scope in several zones"), "count"),
}


@dataclass(frozen=True)
class ParetoBar:
    """One bar of a Pareto: ``seconds`` of loss, its ``share`` of all bars and the ``cumulative`` share up to it."""

    label: str
    seconds: float
    share: float
    cumulative: float


def pareto(items: list[tuple[str, float]]) -> list[ParetoBar]:
    """The bars of a Pareto chart from (label, seconds) items, largest first (as given).

    Parameters
    ----------
    items : list of (str, float)
        Labels and loss seconds [s], all positive, in the order to draw.

    Returns
    -------
    list of ParetoBar
        Shares of the total of ``items`` (empty for no items).
    """
    total = sum(v for _l, v in items)
    out, cum = [], 0.0
    for label, v in items:
        cum += v
        out.append(ParetoBar(label, float(v), v / total, cum / total))
    return out


def loss_items(row, _: Callable[[str], str]) -> list[tuple[str, float]]:
    """The loss categories of one row of ``Workspace.losses`` with time in them, largest first, labelled by
    ``_`` (translation)."""
    return sorted(((_(WATERFALL[c][0]), float(row[c])) for c in PARETO_LOSSES if pd.notna(row[c]) and row[c] > 0),
                  key=lambda t: -t[1])


def stop_reason_items(reasons: pd.DataFrame, _: Callable[[str], str]) -> list[tuple[str, float]]:
    """Bars of the stop-reason Pareto: ("reason (category)", seconds), largest first, the
    :data:`MAX_REASONS` largest and one "Other reasons (n)" bar for the rest; empty when no loss time.

    ``reasons`` has columns category, reason, seconds (``Workspace.stop_reasons``); ``_`` translates.
    """
    g = reasons[reasons["seconds"] > 0].sort_values("seconds", ascending=False)
    items = []
    top = g.head(MAX_REASONS)
    for reason, category, seconds in zip(top["reason"], top["category"], top["seconds"]):
        reason = reason if isinstance(reason, str) and reason else _("(no reason)")
        items.append((f"{reason} ({_(STATE_CATEGORIES.get(category, category))})", float(seconds)))
    rest = g["seconds"].iloc[MAX_REASONS:]
    if len(rest):
        items.append((_("Other reasons (%(n)s)") % {"n": len(rest)}, float(rest.sum())))
    return items


@dataclass(frozen=True)
class CheckSummary:
    """One data-quality check over a table of flags: how many rows, their total and the largest value."""

    check: str
    label: str  #: msgid of the check's label (the check's code when unknown)
    unit: str  #: ratio, s, count, units or flag
    description: str  #: the engine's description (a msgid)
    rows: int
    total: float | None  #: None for ratios (a sum of ratios means nothing)
    largest: float


def dq_summary(dq: pd.DataFrame) -> list[CheckSummary]:
    """The data-quality summary: one entry per check of ``Workspace.data_quality`` (in order of appearance)."""
    out = []
    for check, g in dq.groupby("check", sort=False):
        label, unit = DQ_CHECKS.get(check, (check, "count"))
        total = None if unit == "ratio" else float(pd.to_numeric(g["value"]).sum())
        out.append(CheckSummary(str(check), label, unit, str(g["description"].iloc[0]), len(g), total,
                                float(pd.to_numeric(g["value"]).max())))
    return out


def dq_value(f, _: Callable[[str], str], unit: str, v) -> str:
    """A data-quality value for display: ratios as percentages, seconds as hours, the rest as numbers
    (``f``: :class:`zhizao.i18n.Formatter`)."""
    if unit == "ratio":
        return f.pct(v)
    if unit == "s":
        return f.hours(v) + " " + _("h")
    return f.num(v)


def check_unit(check: str) -> str:
    """The unit of a data-quality check's value (``count`` when unknown)."""
    return DQ_CHECKS.get(check, ("", "count"))[1]


def check_label(check: str) -> str:
    """The msgid of a data-quality check's label (the check itself when unknown)."""
    return DQ_CHECKS[check][0] if check in DQ_CHECKS else check


__all__ = [
    "DQ_CHECKS",
    "MAX_REASONS",
    "PARETO_LOSSES",
    "STATE_CATEGORIES",
    "WATERFALL",
    "CheckSummary",
    "ParetoBar",
    "check_label",
    "check_unit",
    "dq_summary",
    "dq_value",
    "loss_items",
    "pareto",
    "stop_reason_items",
]
