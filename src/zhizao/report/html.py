"""``zhizao report``: a self-contained, offline HTML report of a store, in Simplified Chinese or English.

The report only calls the :class:`zhizao.Workspace` (``kpi``, ``losses``, ``stop_reasons``,
``data_quality``, ``quarantine``); it computes no KPI. It chooses rows, orders them, and formats values for
display (fractions as percentages with one decimal, seconds as hours), nothing else. Charts are Vega-Lite
specs rendered to inline SVG in-process, the CSS is inline, and no resource is loaded from anywhere: the file
opens offline and prints as it shows.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from markupsafe import Markup

from zhizao.i18n import N_, NULL, Formatter, check_lang, translations
from zhizao.kpi.kpis import null_reason_messages
from zhizao.report import charts
from zhizao.report.summaries import (  # noqa: F401
    DQ_CHECKS,
    MAX_REASONS,
    PARETO_LOSSES,
    STATE_CATEGORIES,
    WATERFALL,
    check_label,
    check_unit,
    dq_summary,
    dq_value,
    loss_items,
    pareto,
    stop_reason_items,
)
from zhizao.schema import LEVEL_ID_COLUMN

TEMPLATES = Path(__file__).parent / "templates"
#: Longest daily series drawn; above it the trends switch to weeks (then the latest weeks are kept).
MAX_POINTS = 400
#: Most entities (sites, ...) given their own charts; the others are listed.
MAX_ENTITIES = 12
#: Rows of a per-entity KPI table shown; rows of the data-quality listing shown.
MAX_TABLE_ROWS = 300
MAX_DQ_ROWS = 20

LEVEL_LABELS = {
    "enterprise": N_("Enterprise"),
    "site": N_("Site"),
    "area": N_("Area"),
    "work_center": N_("Work center"),
    "equipment": N_("Equipment"),
}
#: KPI columns of the per-level tables: (column, short header, full name, kind).
KPI_COLUMNS = (
    ("availability", N_("Availability"), N_("Availability = APT / PBT"), "pct"),
    ("effectiveness", N_("Performance"), N_("Performance (effectiveness) = sum(PRI x PQ) / APT"), "pct"),
    ("quality_ratio", N_("Quality ratio"), N_("Quality ratio = GQ / PQ"), "pct"),
    ("oee", N_("OEE"), N_("Overall equipment effectiveness (OEE) = availability x performance x quality ratio"),
     "pct"),
    ("teep", N_("TEEP"), N_("Total effective equipment performance (TEEP) = OEE x PBT / calendar time"), "pct"),
    ("pq", N_("PQ"), N_("Produced quantity [units]"), "count"),
    ("gq", N_("GQ"), N_("Good quantity [units]"), "count"),
)
KPI_NAMES = {
    "oee": N_("Overall equipment effectiveness (OEE)"),
    "availability": N_("Availability"),
    "effectiveness": N_("Performance (effectiveness)"),
    "quality_ratio": N_("Quality ratio"),
    "first_pass_yield": N_("First pass yield"),
    "defect_rate": N_("Defect rate"),
    "worker_efficiency": N_("Worker efficiency"),
    "labour_productivity": N_("Labour productivity"),
    "comprehensive_energy_consumption": N_("Comprehensive energy consumption per unit [kgce/unit]"),
    "energy_per_good_unit": N_("Energy per good unit [kWh/unit]"),
}
KIND_LABELS = {"total": N_("Time base"), "other": N_("Not a loss"), "loss": N_("Loss"),
               "gap": N_("Data gap")}
KIND_COLORS = {"total": "total", "other": "other", "loss": "loss", "gap": "line"}


def waterfall_steps(row, _, f) -> list[dict]:
    """The bars of the time-model waterfall [h] from one row of loss categories (``Workspace.losses``).

    A total bar starts at zero; each loss bar hangs from the level the previous bars left. ``_`` translates,
    ``f`` formats numbers (:class:`zhizao.i18n.Formatter`). Null categories are left out.
    """
    steps, level_h = [], 0.0
    for c, (label, kind) in WATERFALL.items():
        v = row[c]
        if pd.isna(v):
            continue
        h = float(v) / 3600.0
        if kind == "total":
            start, end = 0.0, h
        else:
            start, end = level_h, level_h - h
        level_h = end
        steps.append({"label": _(label), "kind": _(KIND_LABELS[kind]), "color": KIND_COLORS[kind],
                      "start": start, "end": end, "top": max(start, end), "text": f.num(h, 1)})
    return steps
# The check descriptions of zhizao.kpi.quality, for the catalogue (translated when shown).
_DQ_DESCRIPTIONS = (
    N_("effectiveness above 1: ideal cycle time (pri) set too long or counts too high"),
    N_("seconds covered by more than one state record (counted once)"),
    N_("seconds of planned busy time without any state record"),
    N_("seconds of production, setup or stops outside planned busy time"),
    N_("energy register resets, rollovers or implausible jumps"),
    N_("units produced whose product has no pri (ideal time unknown)"),
    N_("no calendar: the equipment is taken as scheduled around the clock"),
    N_("no data: equipment without any state or production record"),
    N_("seconds of production time without any count record (counter outage)"),
    N_("seconds of production time without any energy record (meter outage)"),
    N_("naive local times in a repeated daylight-saving hour, read as the earlier instant"),
)


#: ISO 22400 elements as readers write them (abbreviations upper case; the others named).
ELEMENT_NAMES = {"ideal_time": N_("ideal production time"), "pq_no_pri": N_("units without ideal cycle time"),
                 "work_hours": N_("work hours"), "calendar_time": N_("calendar time"),
                 "energy_kgce": N_("energy (kgce)"), "energy_kwh": N_("energy (kWh)"),
                 "earned_hours": N_("earned standard hours"), "output_value": N_("output value")}


def element_names(codes: str, lang: str) -> str:
    """``"apt, pbt"`` -> ``"APT、PBT"`` (Chinese) / ``"APT, PBT"``: element codes as a reader writes them."""
    from zhizao.i18n import LIST_SEPARATORS

    _ = translations(lang).gettext
    items = [c.strip() for c in str(codes).split(",") if c.strip()]
    return LIST_SEPARATORS[lang].join(_(ELEMENT_NAMES[c]) if c in ELEMENT_NAMES else c.upper() for c in items)


#: Parameters of the KPI engine's null reasons that name elements.
ELEMENT_PARAMS = ("elements", "den")


def null_reason_text(reason, lang: str) -> str:
    """Why a KPI is null (a :class:`~zhizao.messages.Message` of the KPI engine), in ``lang``, with element codes
    written as readers write them (``apt`` -> ``APT``, ``ideal_time`` -> 理想生产时间); None -> "no data"."""
    from zhizao.messages import Message

    if reason is None:
        return translations(lang).gettext("no data")
    if not isinstance(reason, Message):
        return str(reason)
    params = tuple((k, element_names(", ".join(v) if isinstance(v, (list, tuple)) else str(v), lang)
                    if k in ELEMENT_PARAMS else v) for k, v in reason.params)
    return Message(reason.code, reason.template, params).text(lang)


class ReportWarning(UserWarning):
    """A report section could not be computed; the report shows the error in its place."""


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                              extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True,
                              undefined=jinja2.StrictUndefined)


# -- blocks the template knows how to draw
def _p(text: str, cls: str | None = None) -> dict:
    return {"type": "p", "text": text, "cls": cls}


def _h3(text: str) -> dict:
    return {"type": "h3", "text": text}


def _cell(text: str, title: str | None = None, num: bool = False) -> dict:
    return {"text": text, "title": title, "num": num}


def _table(head: list, rows: list[list[dict]], caption: str | None = None, foot: str | None = None) -> dict:
    head = [h if isinstance(h, dict) else _cell(h) for h in head]
    return {"type": "table", "head": head, "rows": rows, "caption": caption, "foot": foot}


def _figure(svg: str, caption: str | None = None) -> dict:
    return {"type": "figure", "svg": Markup(svg), "caption": caption}


def _day(period_start: pd.Series) -> pd.Series:
    """The local date ``YYYY-MM-DD`` of ISO 8601 period starts that carry the plant's offset."""
    return period_start.astype(str).str[:10]


class _Report:
    """Collects the report's content from one workspace (each workspace call made once)."""

    def __init__(self, ws, lang: str, level_order: Sequence[str]):
        self.ws = ws
        self.lang = lang
        self.tr = translations(lang)
        self._ = self.tr.gettext
        self.f = Formatter(lang)
        self.level_order = tuple(level_order)
        #: the default range read now: today's bucket ends at the reading time (:meth:`zhizao.Workspace.
        #: reading_time`), the same for every section
        self.end = ws.reading_time()

    # -- data, fetched once
    @cached_property
    def kpi_all(self) -> dict[str, pd.DataFrame]:
        return {lvl: self.ws.kpi(level=lvl, period="all", end=self.end) for lvl in
                dict.fromkeys(self.level_order + ("site", "area", "work_center", "equipment"))}

    @cached_property
    def top(self) -> str | None:
        """The level of the site-wide sections: ``site``, or the highest level with data when no site is set."""
        for lvl in ("site", "area", "work_center", "equipment"):
            if len(self.kpi_all[lvl]):
                return lvl
        return None

    @property
    def top_level(self) -> str:
        """:attr:`top` where a section has data (each section checks that first; without a top level there is
        none)."""
        assert self.top is not None
        return self.top

    @cached_property
    def daily(self) -> tuple[pd.DataFrame, str]:
        """KPIs of the top level per day (per week when a series would be longer than :data:`MAX_POINTS`)."""
        if self.top is None:
            return pd.DataFrame(), "day"
        df = self.ws.kpi(level=self.top, period="day", end=self.end)
        col = LEVEL_ID_COLUMN[self.top]
        period = "day"
        if len(df) and df.groupby(col).size().max() > MAX_POINTS:
            df, period = self.ws.kpi(level=self.top, period="week", end=self.end), "week"
        df = df.groupby(col, group_keys=False).tail(MAX_POINTS).copy()
        df["date"] = _day(df["period_start"])
        df["date_end"] = _day(df["period_end"])
        return df, period

    # -- helpers
    def reason(self, message) -> str:
        """A null reason of the KPI engine (a :class:`zhizao.messages.Message`) in the report's language."""
        return null_reason_text(message, self.lang)

    def level(self, lvl: str) -> str:
        return self._(LEVEL_LABELS[lvl])

    def entities(self, df: pd.DataFrame, level: str):
        """(entity id, rows) per entity, at most :data:`MAX_ENTITIES`; a note block when some are left out."""
        col = LEVEL_ID_COLUMN[level]
        ids = sorted(df[col].dropna().unique().tolist(), key=str)
        notes = []
        if len(ids) > MAX_ENTITIES:
            notes.append(_p(self._("Charts are drawn for the first %(shown)s of %(total)s entities.")
                            % {"shown": MAX_ENTITIES, "total": len(ids)}, "note"))
        return [(i, df[df[col] == i]) for i in ids[:MAX_ENTITIES]], notes

    def heading(self, level: str, eid) -> dict:
        return _h3(f"{self.level(level)} {eid}")

    def svg(self, chart) -> str:
        return charts.to_svg(chart, self.lang)

    def nodata(self, text: str | None = None) -> dict:
        return _p(text or self._("No data."), "nodata")

    def period_note(self) -> list[dict]:
        _df, period = self.daily
        if period == "week":
            return [_p(self._("More than %(n)s days: values are shown per week.") % {"n": MAX_POINTS}, "note")]
        return []

    def time_title(self) -> str:
        return self._("Week") if self.daily[1] == "week" else self._("Date")

    def time_axis(self) -> dict:
        """Keywords of a time series chart: its axis title and the period of its points."""
        return {"time_title": self.time_title(), "period": self.daily[1]}

    def summary_table(self, level: str, df: pd.DataFrame, cols: list[tuple[str, str, str]]) -> dict:
        """One row per entity of ``df``; cols: (column, header, kind in pct/num/hours/sig)."""
        col = LEVEL_ID_COLUMN[level]
        fmt: dict[str, Callable[[Any], str]] = {"pct": self.f.pct, "num": self.f.num, "hours": self.f.hours,
                                                "sig": self.f.sig, "num1": lambda v: self.f.num(v, 1)}
        rows = []
        for _, r in df.sort_values(col, key=lambda s: s.astype(str)).head(MAX_TABLE_ROWS).iterrows():
            reasons = null_reason_messages(r.get("null_reason_codes"))
            row = [_cell(str(r[col]))]
            for c, _h, kind in cols:
                v = r[c]
                row.append(_cell(fmt[kind](v), self.reason(reasons.get(c)) if pd.isna(v) else None, num=True))
            rows.append(row)
        head = [self.level(level)] + [_cell(h, num=True) for _c, h, _k in cols]
        return _table(head, rows)

    def series(self, g: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
        """Long form (date, series, value) of KPI columns ``names`` for a chart."""
        long = g.melt(id_vars=["date"], value_vars=list(names), var_name="kpi", value_name="value")
        long["series"] = [self._(KPI_NAMES[k]) for k in long["kpi"]]
        long["value"] = long["value"].astype("float64")
        return long[["date", "series", "value"]]

    # -- sections
    def header(self) -> dict:
        levels: list[str] = []
        first: dt.datetime | None = None
        last: dt.datetime | None = None
        for lvl in self.level_order:
            df = self.kpi_all[lvl]
            n = df[LEVEL_ID_COLUMN[lvl]].nunique() if len(df) else 0
            if n:
                levels.append(f"{self.level(lvl)} ({n})")
            for a, b in zip(df.get("period_start", []), df.get("period_end", [])):
                s, e = dt.datetime.fromisoformat(a), dt.datetime.fromisoformat(b)
                first = s if first is None or s < first else first
                last = e if last is None or e > last else last
        data_range = None
        if first is not None and last is not None:
            data_range = self.f.date_range(first.date(), (last - dt.timedelta(microseconds=1)).date())
        eq = self.kpi_all["equipment"]
        no_cal = int(eq["no_calendar"].fillna(False).astype(bool).sum()) if len(eq) else 0
        return {"levels": levels, "data_range": data_range, "no_calendar": no_cal, "simulated": self.simulated()}

    def simulated(self) -> list[str]:
        """Sites (else equipment) whose equipment records came from simulated data (:mod:`zhizao.provenance`)."""
        from zhizao.provenance import simulated_ids

        ids = simulated_ids(self.ws.con, "equipment", "equipment_id")
        if not ids:
            return []
        eq = self.ws.table("equipment")
        eq = eq[eq["equipment_id"].isin(ids)]
        sites = eq["site"].dropna().astype(str).unique().tolist() if "site" in eq else []
        return sorted(sites) or sorted(ids)

    def sec_kpis(self) -> list[dict]:
        _ = self._
        blocks = [_p(_("Values for the whole data range; KPIs of a group are computed from the sums of its "
                       "members' elements (ISO 22400-2). A dash marks an undefined or unavailable value; "
                       "hover over it for the reason."), "note")]
        for lvl in self.level_order:
            df = self.kpi_all[lvl]
            blocks.append(_h3(self.level(lvl)))
            if not len(df):
                blocks.append(self.nodata())
                continue
            col = LEVEL_ID_COLUMN[lvl]
            rows = []
            for _i, r in df.sort_values(col, key=lambda s: s.astype(str)).head(MAX_TABLE_ROWS).iterrows():
                reasons = null_reason_messages(r["null_reason_codes"])
                row = [_cell(str(r[col]) + (" \u2020" if bool(r.get("no_calendar")) else ""))]
                for c, _h, _full, kind in KPI_COLUMNS:
                    v = r[c]
                    text = self.f.pct(v) if kind == "pct" else self.f.num(v)
                    title = self.reason(reasons.get(c)) if pd.isna(v) else None
                    row.append(_cell(text, title, num=True))
                rows.append(row)
            head = [_cell(self.level(lvl))] + [_cell(_(h), _(full), num=True) for _c, h, full, _k in KPI_COLUMNS]
            foot = None
            if len(df) > MAX_TABLE_ROWS:
                foot = _("Rows shown: %(shown)s of %(total)s.") % {"shown": MAX_TABLE_ROWS, "total": len(df)}
            blocks.append(_table(head, rows, foot=foot))
            if df["no_calendar"].fillna(False).astype(bool).any():
                blocks.append(_p(_("\u2020 no calendar: scheduled around the clock."), "note"))
        return blocks

    @cached_property
    def timed_losses(self) -> pd.DataFrame:
        """``Workspace.losses`` of the top level, for the entities with time data."""
        if self.top is None:
            return pd.DataFrame()
        df = self.ws.losses(level=self.top, period="all", end=self.end)
        return df[df["calendar_time"].fillna(0) > 0]

    def sec_waterfall(self) -> list[dict]:
        _ = self._
        df = self.timed_losses
        if not len(df):
            return [self.nodata()]
        blocks = [_p(_("Where the calendar time went, in hours, from calendar time down to fully productive "
                       "time (ideal cycle time x good quantity)."), "note")]
        ents, notes = self.entities(df, self.top_level)
        blocks += notes
        for eid, g in ents:
            r = g.iloc[0]
            steps = waterfall_steps(r, _, self.f)
            if len(ents) > 1:
                blocks.append(self.heading(self.top_level, eid))
            chart = charts.waterfall(pd.DataFrame(steps), _("Time model waterfall"), _("Hours"),
                                     _("Category"))
            blocks.append(_figure(self.svg(chart)))
            rows = [[_cell(_(WATERFALL[c][0])), _cell(self.f.hours(r[c]), num=True),
                     _cell(self.f.pct(r[c] / r["calendar_time"]) if r["calendar_time"] else NULL, num=True)]
                    for c in WATERFALL]
            blocks.append(_table([_("Category"), _cell(_("Hours"), num=True),
                                  _cell(_("Share of calendar time"), num=True)], rows))
            if pd.isna(r["startup_yield"]):
                blocks.append(_p(_("Start-up losses are not separable in the data and are left out."), "note"))
            if pd.isna(r["fully_productive"]):
                blocks.append(_p(_("Ideal cycle time (PRI) unknown for some products: speed and quality "
                                   "losses cannot be drawn."), "note"))
        return blocks

    def pareto_block(self, items: list[tuple[str, float]], title: str) -> list[dict]:
        """A Pareto chart and table of (label, seconds), largest first."""
        _ = self._
        bars = pareto(items)
        data = [{"label": b.label, "value": b.seconds / 3600.0, "cum": b.cumulative} for b in bars]
        rows = [[_cell(b.label), _cell(self.f.hours(b.seconds), num=True), _cell(self.f.pct(b.share), num=True),
                 _cell(self.f.pct(b.cumulative), num=True)] for b in bars]
        chart = charts.pareto(pd.DataFrame(data), title, _("Hours"), _("Cumulative share"))
        table = _table([_("Loss"), _cell(_("Hours"), num=True), _cell(_("Share"), num=True),
                        _cell(_("Cumulative share"), num=True)], rows)
        return [_figure(self.svg(chart)), table]

    def sec_pareto(self) -> list[dict]:
        _ = self._
        blocks = [_h3(_("Loss categories"))]
        df = self.timed_losses
        if not len(df):
            return blocks + [self.nodata()]
        ents, notes = self.entities(df, self.top_level)
        blocks += notes
        for eid, g in ents:
            r = g.iloc[0]
            items = loss_items(r, _)
            if len(ents) > 1:
                blocks.append(self.heading(self.top_level, eid))
            if not items:
                blocks.append(self.nodata(_("No losses recorded.")))
                continue
            blocks += self.pareto_block(items, _("Pareto of losses"))
        blocks.append(_h3(_("Stop reasons")))
        sr = self.ws.stop_reasons(level=self.top, period="all", end=self.end)
        if not len(sr):
            return blocks + [self.nodata(_("No stop reasons recorded."))]
        ents, notes = self.entities(sr, self.top_level)
        blocks += notes
        for eid, g in ents:
            if len(ents) > 1:
                blocks.append(self.heading(self.top_level, eid))
            items = stop_reason_items(g, _)
            if not items:
                blocks.append(self.nodata(_("No stop reasons recorded.")))
                continue
            blocks += self.pareto_block(items, _("Pareto of stop reasons"))
        return blocks

    def daily_section(self, has: Callable[[pd.DataFrame], pd.Series], draw: Callable[[pd.DataFrame], list],
                      summary: list[tuple[str, str, str]] | None = None, empty: str | None = None) -> list[dict]:
        """Per entity of the top level with rows where ``has`` holds: a table of the whole range, then the
        charts of ``draw`` over the periods from the first to the last such row (gaps inside stay gaps)."""
        df, _period = self.daily
        if not len(df):
            return [self.nodata(empty)]
        col = LEVEL_ID_COLUMN[self.top_level]
        mask = has(df).fillna(False).astype(bool).to_numpy()
        if not mask.any():
            return [self.nodata(empty)]
        hit = df[mask].groupby(col)["date"].agg(["min", "max"])
        df = df[df[col].isin(hit.index)]
        df = df[(df["date"] >= df[col].map(hit["min"])) & (df["date"] <= df[col].map(hit["max"]))]
        blocks = self.period_note()
        if summary:
            tot = self.kpi_all[self.top_level]
            tot = tot[tot[col].isin(df[col].unique())]
            blocks.append(self.summary_table(self.top_level, tot, summary))
        ents, notes = self.entities(df, self.top_level)
        blocks += notes
        for eid, g in ents:
            blocks.append(self.heading(self.top_level, eid))
            for chart in draw(g):
                blocks.append(_figure(self.svg(chart)))
        return blocks

    def sec_trends(self) -> list[dict]:
        _ = self._
        names = ("oee", "availability", "effectiveness", "quality_ratio")

        def draw(g):
            return [charts.lines(self.series(g, names), _("OEE and its factors"), _("Value"), _("KPI"),
                                 **self.time_axis())]
        return self.daily_section(lambda d: d[list(names)].notna().any(axis=1), draw)

    def sec_energy(self) -> list[dict]:
        _ = self._

        def draw(g):
            dates = g[["date", "date_end"]]
            parts = [charts.bars(dates.assign(value=g["energy_kwh"]), _("Energy use"), _("kWh"), **self.time_axis()),
                     charts.bars(dates.assign(value=g["energy_kgce"]), _("Energy use in coal equivalent"),
                                 _("kgce"), **self.time_axis())]
            for k, unit in (("comprehensive_energy_consumption", _("kgce/unit")),
                            ("energy_per_good_unit", _("kWh/unit"))):
                if g[k].notna().any():
                    parts.append(charts.lines(self.series(g, [k]), _(KPI_NAMES[k]), unit, _("KPI"),
                                              percent=False, **self.time_axis()))
            return [charts.stack(*parts)]
        summary = [("energy_kwh", _("Energy [kWh]"), "num"), ("energy_kgce", _("Energy [kgce]"), "num"),
                   ("pq", _("PQ"), "num"),
                   ("comprehensive_energy_consumption", _("Comprehensive energy consumption [kgce/unit]"), "sig"),
                   ("energy_per_good_unit", _("Energy per good unit [kWh/unit]"), "sig")]
        return self.daily_section(lambda d: d["energy_kwh"].notna(), draw, summary,
                                  _("No energy data."))

    def sec_quality(self) -> list[dict]:
        _ = self._

        def draw(g):
            return [charts.stack(
                charts.lines(self.series(g, ["first_pass_yield"]), _("First pass yield"), _("Value"), _("KPI"),
                             **self.time_axis()),
                charts.lines(self.series(g, ["defect_rate"]), _("Defect rate"), _("Value"), _("KPI"),
                             **self.time_axis()))]
        summary = [("ip", _("Inspected units (IP)"), "num"), ("gp", _("Passed first time (GP)"), "num"),
                   ("defects", _("Defective units"), "num"), ("first_pass_yield", _("First pass yield"), "pct"),
                   ("defect_rate", _("Defect rate"), "pct")]
        return self.daily_section(lambda d: d["ip"].fillna(0) > 0, draw, summary, _("No inspection data."))

    def sec_labour(self) -> list[dict]:
        _ = self._

        def draw(g):
            return [charts.lines(self.series(g, ["worker_efficiency", "labour_productivity"]),
                                 _("Labour"), _("Value"), _("KPI"), **self.time_axis())]
        summary = [("apat", _("Attendance [h] (APAT)"), "num1"), ("apwt", _("Work [h] (APWT)"), "num1"),
                   ("earned_hours", _("Earned standard hours [h]"), "num1"),
                   ("worker_efficiency", _("Worker efficiency"), "pct"),
                   ("labour_productivity", _("Labour productivity"), "pct")]
        return self.daily_section(lambda d: d["apat"].fillna(0) > 0, draw, summary, _("No labour data."))

    @cached_property
    def equipment_tz(self) -> dict:
        eq = self.ws.table("equipment")
        tz = eq["timezone"] if "timezone" in eq else pd.Series(None, index=eq.index, dtype=object)
        return dict(zip(eq["equipment_id"], tz.fillna("UTC")))

    def local(self, equipment_id, ts):
        """A UTC time stamp in the equipment's time zone (for showing its local date)."""
        ts = pd.Timestamp(ts)
        if ts.tzinfo is None:
            ts = ts.tz_localize("UTC")
        return ts.tz_convert(self.equipment_tz.get(equipment_id, "UTC")).to_pydatetime()

    def dq_value(self, check: str, v) -> str:
        return dq_value(self.f, self._, check_unit(check), v)

    def sec_data_quality(self) -> list[dict]:
        _ = self._
        blocks = [_h3(_("Checks per equipment and day"))]
        dq = self.ws.data_quality(level="equipment", period="day", end=self.end)
        if not len(dq):
            blocks.append(_p(_("No data-quality findings."), "nodata"))
        else:
            rows = []
            for c in dq_summary(dq):
                total = NULL if c.total is None else dq_value(self.f, _, c.unit, c.total)
                rows.append([_cell(_(c.label)), _cell(_(c.description)),
                             _cell(self.f.num(c.rows), num=True), _cell(total, num=True),
                             _cell(dq_value(self.f, _, c.unit, c.largest), num=True)])
            blocks.append(_table([_("Check"), _("Description"), _cell(_("Rows"), num=True),
                                  _cell(_("Total"), num=True), _cell(_("Largest"), num=True)], rows))
            first = dq.head(MAX_DQ_ROWS)
            rows = [[_cell(str(r["equipment_id"])),
                     _cell(self.f.date(self.local(r["equipment_id"], r["period_start"]))),
                     _cell(_(check_label(r["check"]))),
                     _cell(self.dq_value(r["check"], r["value"]), num=True)] for _i, r in first.iterrows()]
            blocks.append(_table([_("Equipment"), _("Date"), _("Check"), _cell(_("Value"), num=True)], rows,
                                 caption=_("First rows"),
                                 foot=_("Rows shown: %(shown)s of %(total)s.") % {"shown": len(first),
                                                                                  "total": len(dq)}))
        blocks.append(_h3(_("Quarantine")))
        q = self.ws.quarantine()
        if not len(q):
            blocks.append(_p(_("No records quarantined."), "nodata"))
            return blocks
        rows = []
        g = q.groupby(["table", "rule"], sort=True)
        for (table, rule), part in g:
            rows.append([_cell(str(table)), _cell(str(rule)), _cell(self.f.num(len(part)), num=True),
                         _cell(str(part["detail"].iloc[0]) if pd.notna(part["detail"].iloc[0]) else NULL)])
        blocks.append(_table([_("Table"), _("Rule"), _cell(_("Records"), num=True), _("Example")], rows))
        return blocks

    def sections(self) -> list[dict]:
        _ = self._
        plan = [
            ("kpi", _("Overall equipment effectiveness (OEE) and ISO 22400 KPIs by level"), self.sec_kpis),
            ("waterfall", _("Time model: OEE waterfall"), self.sec_waterfall),
            ("pareto", _("Pareto of losses and stop reasons"), self.sec_pareto),
            ("trends", _("Daily trends of OEE and its factors"), self.sec_trends),
            ("energy", _("Energy"), self.sec_energy),
            ("quality", _("Quality"), self.sec_quality),
            ("labour", _("Labour"), self.sec_labour),
            ("data-quality", _("Data quality and quarantine"), self.sec_data_quality),
        ]
        return [{"id": sid, "title": title, "blocks": self.guard(sid, fn)} for sid, title, fn in plan]

    def guard(self, sid: str, fn: Callable[[], list[dict]]) -> list[dict]:
        """Run a section; a failure is shown in its place (and warned), the rest of the report still renders."""
        try:
            return fn()
        except Exception as exc:
            warnings.warn(f"report section {sid!r} failed: {type(exc).__name__}: {exc}", ReportWarning,
                          stacklevel=3)
            return [_p(self._("This section could not be computed: %(error)s")
                       % {"error": f"{type(exc).__name__}: {exc}"}, "error")]


def render_report(ws, path, lang: str = "zh", title: str | None = None,
                  level_order: Sequence[str] = ("site", "area", "work_center", "equipment"),
                  notes: list[str] | None = None, format: str | None = None) -> Path:
    """Write a self-contained HTML report of a store.

    Sections: header (title, generation time, store, data range, levels, ``notes``); ISO 22400 KPIs per level
    for the whole data range; the time-model (OEE) waterfall; Paretos of the loss categories and of the stop
    reasons; daily trends of OEE and its three factors; energy per day and per unit; quality (first pass
    yield, defect rate); labour (worker efficiency, labour productivity); data quality and quarantine. A
    section without data says so in one line. The site-wide sections use level ``site``, or the highest level
    with data when the equipment has no site.

    Parameters
    ----------
    ws : zhizao.Workspace
        The store; only its public methods are called.
    path : str or path-like
        Output file, overwritten; parent directories are created.
    lang : {'zh', 'en'}, default 'zh'
        Report language: Simplified Chinese (zh_CN number and date formats) or English.
    title : str, optional
        Report title; default a translated "Manufacturing performance report".
    level_order : sequence of str, default ('site', 'area', 'work_center', 'equipment')
        Levels of the KPI tables, in order; any of 'enterprise', 'site', 'area', 'work_center', 'equipment'.
    notes : list of str, optional
        Free lines shown at the top, e.g. the provenance of the data ("simulated plant").
    format : {'html', 'pdf'}, optional
        Default from the file's suffix (``.pdf``: PDF, A4 with page numbers and contents; else HTML).

    Returns
    -------
    pathlib.Path
        The written file (UTF-8 HTML, no external resource, no JavaScript).

    Raises
    ------
    ValueError
        For an unknown ``lang`` (allowed: "zh", "en") or an unknown level in ``level_order``.

    Warns
    -----
    ReportWarning
        When a section cannot be computed; the report then shows the error in that section's place.

    Notes
    -----
    KPIs are fractions from :meth:`zhizao.Workspace.kpi`, shown as percentages with one decimal for display
    only; a null KPI is shown as "—" with its null reason as a tooltip. Durations are shown in hours.
    """
    check_lang(lang)
    from zhizao.report.pdf import check_format

    fmt = check_format(format or ("pdf" if str(path).lower().endswith(".pdf") else "html"), ("html", "pdf"))
    bad = [lvl for lvl in level_order if lvl not in LEVEL_ID_COLUMN]
    if bad:
        raise ValueError(f"unknown level(s) {', '.join(map(repr, bad))} in level_order; "
                         f"allowed: {', '.join(LEVEL_ID_COLUMN)}")
    from zhizao import __version__

    rep = _Report(ws, lang, level_order)
    _ = rep._
    from zoneinfo import ZoneInfo

    now = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
    try:
        header = rep.header()
        header_error = None
    except Exception as exc:
        warnings.warn(f"report header failed: {type(exc).__name__}: {exc}", ReportWarning, stacklevel=2)
        header, header_error = {"levels": [], "data_range": None, "no_calendar": 0, "simulated": []}, \
            f"{type(exc).__name__}: {exc}"
    env = _env()
    env.install_gettext_translations(rep.tr, newstyle=True)  # type: ignore[attr-defined]  # added by the jinja2.ext.i18n extension
    html = env.get_template("report.html.j2").render(
        lang="zh-CN" if lang == "zh" else "en",
        title=title or _("Manufacturing performance report"),
        generated=rep.f.day(now),
        store=str(getattr(ws, "path", "")),
        header=header,
        header_error=header_error,
        notes=list(notes or []),
        sections=rep.sections(),
        version=__version__,
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "pdf":
        from zhizao.report.pdf import PRINT_CSS, html_to_pdf

        return html_to_pdf(html.replace(charts.FLUID, 'style="max-width:100%" '), out, extra_css=PRINT_CSS)
    out.write_text(html, encoding="utf-8")
    return out
