"""What the dashboard pages show, built from the stages through the principal's TenantView.

The functions choose rows, order them and format values for display (Babel, :class:`zhizao.i18n.
Formatter`); they compute no KPI. Charts are the report's (:mod:`zhizao.report.charts`, inline SVG, no script).
A section that fails shows its error in its place, the rest of the page still renders.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

import pandas as pd
from markupsafe import Markup

from zhizao.i18n import N_, NULL, Formatter, translations
from zhizao.kpi.buckets import ReadingTime, utc_ms
from zhizao.kpi.kpis import null_reason_messages
from zhizao.messages import DAY, define
from zhizao.portfolio import vocabulary as vocab
from zhizao.portfolio.bulletin import (
    BASIS_LABELS,
    CHART_NAMES,
    DESIGNATION_LABELS,
    INDICATOR_LABELS,
    bulletin_chart_exists,
    bulletin_charts,
)
from zhizao.portfolio.bulletin import LEVEL_LABELS as DESIGNATION_LEVEL_LABELS
from zhizao.report import charts
from zhizao.report.html import KPI_NAMES, LEVEL_LABELS, null_reason_text, waterfall_steps
from zhizao.report.summaries import (
    WATERFALL,
    check_label,
    check_unit,
    dq_summary,
    dq_value,
    loss_items,
    pareto,
    stop_reason_items,
)
from zhizao.schema import LEVEL_ID_COLUMN, LEVELS
from zhizao.server.access import EQUIPMENT
from zhizao.server.errors import ApiError, BadRequest, NotFound
from zhizao.server.store import LRU

log = logging.getLogger("zhizao.server")
NO_ENTITY = define("server.no_entity", "No such entity, or you may not see it: %(id)s")
NO_ENTITY_DATA = define("server.no_entity_data", "No data for %(level)s %(id)s in this range.")
#: The level names as messages (parameters of other messages).
LEVEL_MESSAGES = {lv: define(f"server.level_{lv}", label)() for lv, label in LEVEL_LABELS.items()}
DAYS_ORDER = define("server.days_order", "the last day %(to)s is before the first day %(start)s")
_SVG = LRU(512)

#: Drill-down: the level shown below each level.
CHILD = {"enterprise": "site", "site": "area", "area": "work_center", "work_center": "equipment"}
PARENTS = ("enterprise", "site", "area", "work_center")
MAX_POINTS = 400
MAX_ROWS = 300
#: Definitions of the verify stage's indicators (zhizao.verify.indicators.DEFINITIONS).
DEFINITION_LABELS = {
    "good_units_per_production_hour": N_("good units per production hour"),
    "standard_hours_per_labour_hour": N_("standard hours earned per labour hour"),
    "good_units_per_labour_hour": N_("good units per labour hour"),
    "scrap_rework_per_produced": N_("scrap and rework per unit produced"),
    "failed_per_inspected": N_("failed units per unit inspected"),
    "kgce_per_unit": N_("kgce per unit produced"), "kgce_per_good_unit": N_("kgce per good unit"),
    "kgce_per_10k_cny": N_("kgce per 10,000 CNY of output value"), "kwh_per_day": N_("kWh per day"),
    "kgce_per_day": N_("kgce per day"), "cost_per_good_unit": N_("operating cost per good unit at baseline prices"),
    "days_design_to_release": N_("days from design start to release"),
}
#: The standing description of each indicator's verification method (the exact method is in the result).
METHOD_LABELS = {
    "production_efficiency": N_("Ratio of totals of the reporting and the baseline period; the interval from "
                                "resampling blocks of days (bootstrap)."),
    "defect_rate": N_("Ratio of the defect proportions of the two periods; score interval, widened for the "
                      "variation between days."),
    "operating_cost": N_("Cost per good unit against the baseline adjusted to the reporting period's output and "
                         "prices (regression on the baseline months)."),
    "unit_energy": N_("Energy against the baseline adjusted to the reporting period's conditions (regression on "
                      "the baseline: output, operating hours, weather)."),
    "energy": N_("Energy against the baseline adjusted to the reporting period's conditions (regression on the "
                 "baseline: output, operating hours, weather)."),
    "development_cycle": N_("Ratio of the mean development cycles of the products of the two periods."),
}
#: Labels of a verification's fit figures (model statistics, ratio figures): shown on a Chinese page (the others
#: only on the English one, by their key).
FIT_LABELS = {"r2": N_("Coefficient of determination (R²)"), "cv_rmse": N_("CV(RMSE)"), "nmbe": N_("NMBE"),
              "f_p": N_("F-test p-value"), "phi": N_("Over-dispersion factor"), "n_baseline": N_("Baseline points"),
              "n": N_("Points"), "p": N_("Model terms"), "adj_r2": N_("Adjusted R2"),
              "hac_lags": N_("Newey-West lags"), "bic": N_("BIC"), "passed": N_("Passes the model checks"),
              "heating_base_c": N_("Heating balance point [°C]"), "cooling_base_c": N_("Cooling balance point [°C]"),
              "cells": N_("Cells (equipment and product)"), "log_variance": N_("Variance of the log ratio"),
              "df": N_("Degrees of freedom"), "simple_baseline": N_("Baseline, ratio of totals"),
              "simple_reporting": N_("Reporting, ratio of totals")}
#: Fit figures that are counts: shown as whole numbers (6, not 6.00).
FIT_COUNTS = ("n", "n_baseline", "p", "hac_lags", "cells")
#: Zone of the clock times shown (uploads, sessions).
DISPLAY_TZ = "Asia/Shanghai"
#: Validation rules of the ingest stage (quarantine), as readers name them.
RULE_LABELS = {
    "missing_field": N_("Required field missing"), "unparseable": N_("Value cannot be read"),
    "end_not_after_start": N_("End not after start"), "negative_quantity": N_("Negative quantity"),
    "counts_exceed_produced": N_("Good, scrap and rework exceed produced"),
    "unknown_equipment": N_("Unknown equipment"), "unmapped_state": N_("State not in the mapping"),
    "invalid_value": N_("Invalid value"), "duplicate": N_("Duplicate record"),
    "conflicts_with_stored": N_("Conflicts with a stored record"),
    "field_too_long": N_("Value too long"),
    "time_out_of_range": N_("Time outside the plausible range"),
    "invalid_offset": N_("Invalid UTC offset"),
    "nonexistent_local_time": N_("Local time that does not exist"),
    "ambiguous_time_zone": N_("Time without offset in a scope of several zones"),
    "not_finite": N_("Number not finite"),
    "value_out_of_range": N_("Number outside the plausible range"),
    "lsl_above_usl": N_("Lower limit above the upper limit"),
    "unknown_reference": N_("Unknown reference"),
    "scope_of_other_enterprise": N_("Scope of another enterprise"),
    "malformed_topic": N_("Malformed topic"),
    "unknown_table": N_("Table not accepted live"),
    "malformed_payload": N_("Malformed message"),
    "payload_too_large": N_("Message too large"),
    "too_many_keys": N_("Too many keys in a record"),
    "topic_mismatch": N_("Record differs from its topic"),
    "mapping_error": N_("Mapping cannot be applied"),
    "unloadable": N_("Message cannot be stored"),
}
TABLE_LABELS = {
    "equipment": N_("Equipment"), "states": N_("States"), "production": N_("Production counts"),
    "products": N_("Products"), "calendar": N_("Calendar"), "energy": N_("Energy"), "labour": N_("Labour"),
    "quality": N_("Quality inspections"), "variables": N_("Relevant variables"), "enterprises": N_("Enterprises"),
    "projects": N_("Projects"), "designations": N_("Designations"), "costs": N_("Operating costs"),
    "development_cycles": N_("Development cycles"), "adjustments": N_("Non-routine adjustments"),
    "scopes": N_("Scopes"), "programmes": N_("Programmes"), "programme_targets": N_("Programme targets"),
}
CARDS = (
    ("oee", N_("OEE"), "pct"), ("availability", N_("Availability"), "pct"),
    ("effectiveness", N_("Performance"), "pct"), ("quality_ratio", N_("Quality ratio"), "pct"),
    ("teep", N_("TEEP"), "pct"), ("first_pass_yield", N_("First pass yield"), "pct"),
    ("comprehensive_energy_consumption", N_("Energy per unit [kgce/unit]"), "sig"),
    ("energy_per_good_unit", N_("Energy per good unit [kWh/unit]"), "sig"),
)
TABLE_KPIS = (("oee", N_("OEE"), "pct"), ("availability", N_("Availability"), "pct"),
              ("effectiveness", N_("Performance"), "pct"), ("quality_ratio", N_("Quality ratio"), "pct"),
              ("teep", N_("TEEP"), "pct"), ("pq", N_("PQ"), "num"), ("gq", N_("GQ"), "num"),
              ("energy_kwh", N_("Energy [kWh]"), "num"),
              ("comprehensive_energy_consumption", N_("Energy per unit [kgce/unit]"), "sig"))
ROLE_LABELS = {"admin": N_("Administrator"), "analyst": N_("Programme analyst"), "assessor": N_("Assessor"),
               "enterprise": N_("Enterprise user"), "district": N_("District reviewer")}


#: How the audit log's actors read on a page (``zhizao.portfolio.audit``): a user by name, the others by kind
ACTOR_KINDS = {"key": N_("API key %(name)s"), "cli": N_("%(name)s (command line)")}


class Page:
    """Display helpers of one language."""

    def __init__(self, lang: str, chart_url=None, want: str | None = None):
        self.lang = lang
        self.tr = translations(lang)
        self._ = self.tr.gettext
        self.f = Formatter(lang)
        self.chart_url = chart_url  # name -> URL of a chart of this page
        self.want = want  # the one chart asked for (chart requests)
        self.found = None


    def who(self, actor) -> str:
        """An actor of the audit log as people read it: ``user:NAME`` is NAME, ``key:ID`` "API key ID",
        ``cli:NAME`` "NAME (command line)"; anything else as it is.

        Examples
        --------
        >>> Page("zh").who("user:root"), Page("en").who("key:k1"), Page("en").who("cli:ops")
        ('root', 'API key k1', 'ops (command line)')
        """
        if not isinstance(actor, str):
            return ""
        kind, _sep, name = actor.partition(":")
        if kind == "user" and name:
            return name
        if kind in ACTOR_KINDS and name:
            return self._(ACTOR_KINDS[kind]) % {"name": name}
        return actor

    def chart(self, name: str, make):
        """A chart of the page: its URL on a page (drawn by its own request), or, when this request asks for
        it, its factory is kept in ``found``."""
        if self.want is not None:
            if name == self.want:
                self.found = make
            return None
        return self.chart_url(name) if self.chart_url else self.svg(make())

    def fmt(self, v, kind: str) -> str:
        f = self.f
        formats: dict[str, Callable[[Any], str]] = {
            "pct": f.pct, "num": f.num, "sig": f.sig, "hours": f.hours, "num1": lambda x: f.num(x, 1),
            "text": lambda x: NULL if x is None or x != x else str(x)}
        return formats[kind](v)

    def level(self, lvl: str) -> str:
        return self._(LEVEL_LABELS[lvl])

    def svg(self, chart) -> Markup:
        """The chart as inline SVG; rendered once per language and chart specification (data included)."""
        spec = json.dumps(chart.to_dict(validate=False), sort_keys=True, default=str)
        key = (self.lang, hashlib.sha256(spec.encode()).hexdigest())
        svg = _SVG.get(key)
        if svg is None:
            svg = charts.to_svg(chart, self.lang)
            _SVG[key] = svg
        return Markup(svg)

    def date(self, iso) -> str:
        if iso is None or (isinstance(iso, float) and iso != iso):
            return NULL
        try:
            return self.f.date(str(iso))
        except (ValueError, TypeError):
            return str(iso)

    def register_date(self, v) -> str:
        """A register date (a project's start, a designation's date) as it is: no time zone moves it."""
        if v is None or (isinstance(v, float) and v != v) or v is pd.NaT:
            return NULL
        if isinstance(v, pd.Timestamp):
            v = v.date()
        if isinstance(v, str):
            v = dt.date.fromisoformat(v[:10])
        return self.f.date(v)

    def local_date(self, v, tz) -> str:
        """A time stamp (or ISO string) shown as the local date in zone ``tz``; a date as it is."""
        if v is None or (isinstance(v, float) and v != v) or v is pd.NaT:
            return NULL
        if isinstance(v, dt.date) and not isinstance(v, dt.datetime):
            return self.register_date(v)
        try:
            t = pd.Timestamp(v)
            t = t.tz_localize("UTC") if t.tzinfo is None else t
            if isinstance(tz, str) and tz:
                t = t.tz_convert(tz)
            return self.f.date(t.to_pydatetime())
        except (ValueError, TypeError, KeyError):
            return str(v)

    def datetime(self, v) -> str:
        """A time stamp as date and clock time in Beijing time (the programme office's zone)."""
        if v is None or (isinstance(v, float) and v != v) or v is pd.NaT:
            return NULL
        try:
            t = pd.Timestamp(v)
            if t.tzinfo is None:
                t = t.tz_localize("UTC")
            t = t.tz_convert(DISPLAY_TZ)
            return self._("%(date)s %(time)s (Beijing time)") % {"date": self.f.day(t.to_pydatetime()),
                                                                 "time": t.strftime("%H:%M")}
        except (ValueError, TypeError):
            return str(v)

    def message(self, m) -> str:
        """A stage's message in this language (a :class:`~zhizao.messages.Message`; a plain text as is)."""
        return m.text(self.lang) if hasattr(m, "text") else self._(str(m))

    def definition(self, code) -> str:
        return self._(DEFINITION_LABELS[code]) if code in DEFINITION_LABELS else (str(code) if code else NULL)

    def method(self, r) -> str:
        """How a result was verified: the method as the verify stage states it, in this language (its structured
        message); for a result without one, the exact English text on an English page and the indicator's
        standing description on a Chinese one."""
        if getattr(r, "method_message", None) is not None:
            return r.method_text(self.lang)
        if self.lang == "en" or not r.indicator:
            return str(r.method)
        return self._(METHOD_LABELS.get(r.indicator, METHOD_LABELS["energy"]))

    def rule_label(self, rule) -> str:
        return self._(RULE_LABELS[rule]) if rule in RULE_LABELS else str(rule)

    def table_label(self, table) -> str:
        return self._(TABLE_LABELS[table]) if table in TABLE_LABELS else str(table)

    def detail(self, detail, code=None, params=None) -> str:
        """A quarantine detail in this language: from its stored ``code`` and ``params`` (the quarantine table's
        structured form), else a stored message (JSON of code and parameters), else as stored."""
        if isinstance(code, str) and code:
            from zhizao.ingest.rules import detail_message

            return detail_message(code, params if isinstance(params, str) else None,
                                  detail if isinstance(detail, str) else None).text(self.lang)
        if not isinstance(detail, str) or not detail:
            return NULL
        if detail.startswith(("{", "[")):
            from zhizao.messages import loads

            try:
                return "；".join(m.text(self.lang) for m in loads(detail if detail.startswith("[") else
                                                                  f"[{detail}]"))
            except (ValueError, KeyError, TypeError):
                pass
        return detail

    def guard(self, fn):
        """Run a section; an error becomes a message in its place."""
        try:
            return {"ok": True, **fn()}
        except ApiError:
            raise
        except Exception as e:
            log.exception("dashboard section failed")
            return {"ok": False, "error": self._("This section could not be computed: %(error)s")
                    % {"error": f"{type(e).__name__}: {e}"}}


def simulated_equipment(view) -> set:
    """Equipment ids whose records came from simulated data (:mod:`zhizao.provenance`)."""
    from zhizao.provenance import simulated_ids

    return view.cached(("simulated", "equipment"), lambda: simulated_ids(view.read.con, "equipment",
                                                                          "equipment_id"), EQUIPMENT)


def simulated_projects(view) -> set:
    """Project ids whose records came from simulated data."""
    from zhizao.provenance import simulated_ids

    return view.cached(("simulated", "projects"), lambda: simulated_ids(view.read.con, "projects", "project_id"))


def _entity_simulated(view, level: str | None, ids) -> bool:
    sim = simulated_equipment(view)
    if not sim or level is None:
        return False
    eq = view.equipment()
    col = LEVEL_ID_COLUMN[level]
    return bool(set(eq.loc[eq[col].isin(list(ids)), "equipment_id"]) & sim)


def num_cell(text, title=None):
    return {"text": text, "num": True, "title": title}


def cell(text, href=None, title=None):
    return {"text": text, "href": href, "title": title, "num": False}


def entity_url(level: str, eid: str, q: dict | None = None) -> str:
    url = f"/plant/{level}/{quote(str(eid), safe='')}"
    q = {k: v for k, v in (q or {}).items() if v}
    return url + ("?" + urlencode(q) if q else "")


def kpi_table(pg: Page, df: pd.DataFrame, level: str, link: bool, q: dict) -> dict:
    col = LEVEL_ID_COLUMN[level]
    _ = pg._
    head = [cell(pg.level(level))] + [num_cell(_(h)) for _c, h, _k in TABLE_KPIS]
    rows = []
    for _i, r in df.sort_values(col, key=lambda s: s.astype(str)).head(MAX_ROWS).iterrows():
        reasons = null_reason_messages(r.get("null_reason_codes"))
        row = [cell(str(r[col]), entity_url(level, r[col], q) if link else None)]
        for c, _h, kind in TABLE_KPIS:
            v = r.get(c)
            row.append(num_cell(pg.fmt(v, kind), null_reason_text(reasons.get(c), pg.lang) if pd.isna(v) else None))
        rows.append(row)
    foot = None
    if len(df) > MAX_ROWS:
        foot = _("Rows shown: %(shown)s of %(total)s.") % {"shown": MAX_ROWS, "total": len(df)}
    return {"head": head, "rows": rows, "foot": foot}


# -- plant view
def _day(value) -> dt.date | None:
    """The date of a form's ``YYYY-MM-DD`` field, else None (a time stamp, or text the KPI stage refuses)."""
    if not isinstance(value, str) or len(value.strip()) != 10:
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        return None


def _days(q: dict) -> tuple[dt.date | None, dt.date | None]:
    """The From and To days of a page's form (None where a field holds no plain date); To not before From."""
    a, b = _day(q.get("from")), _day(q.get("to"))
    if a is not None and b is not None and b < a:
        raise BadRequest(DAYS_ORDER, to=DAY(date=b.isoformat()), start=DAY(date=a.isoformat()))
    return a, b


def local_days(q: dict) -> tuple:
    """(start, end) for a stage whose bounds are naive local times (recognition's) from a page's
    From and To fields: both days inclusive, so To is the day after the last (``[from, to + 1 day)``)."""
    _a, b = _days(q)
    return q.get("from"), (b + dt.timedelta(days=1)).isoformat() if b is not None else q.get("to")


def _zone(view, level: str | None = None, eid: str | None = None) -> str:
    """The time zone of an entity's equipment (of all the equipment the principal sees without ``eid``): the
    most frequent one, UTC without equipment."""
    eq = view.equipment()
    if eid is not None and level is not None and len(eq):
        eq = eq[(eq[LEVEL_ID_COLUMN[level]] == eid).fillna(False).astype(bool).to_numpy()]
    if "timezone" not in eq or not eq["timezone"].notna().any():
        return "UTC"
    counts = eq["timezone"].dropna().astype(str).value_counts()
    return str(sorted(counts.index, key=lambda z: (-counts[z], z))[0])


def page_range(view, q: dict, level: str | None = None, eid: str | None = None) -> tuple:
    """(start, end) of the KPI stage for a page's From and To fields: both days inclusive, in the entity's
    time zone. "2026-12-05" to "2026-12-05" is that whole local day ``[2026-12-05T00:00+08:00,
    2026-12-06T00:00+08:00)``, as the page's heading shows it ("2026年12月5日至2026年12月5日"); a last day still
    running ends at the current minute (:class:`zhizao.kpi.buckets.ReadingTime`). A field holding a
    time stamp is passed as it is (an instant; To exclusive); an unreadable one too (the stage refuses it).

    Raises
    ------
    BadRequest
        When To is a day before From.
    """
    start, end = q.get("from"), q.get("to")
    a, b = _days(q)
    if a is None and b is None:
        return start, end
    tz = _zone(view, level, eid)

    def midnight(d: dt.date) -> str:
        return pd.Timestamp(d).tz_localize(tz, ambiguous=False, nonexistent="shift_forward").isoformat()
    first = midnight(a) if a is not None else None
    start = first if first is not None else start
    if b is not None:
        end = midnight(b + dt.timedelta(days=1))
        # a last day still running ends now: the rest of it has not happened (as the default range, read now)
        now = ReadingTime.now()
        if first is not None and utc_ms(first) < now.ms < utc_ms(end):
            end = pd.Timestamp(now.ms * 1_000_000, tz="UTC").tz_convert(tz).isoformat()
    return start, end


def plant_home(view, pg: Page, q: dict) -> dict:
    """The landing page: the highest level the principal may see, one row per entity."""
    start, end = page_range(view, q)
    for level in ("site", "area", "work_center", "equipment"):
        if level not in view.access.levels:
            continue
        df = view.kpi(level, "all", start, end)
        if len(df):
            return {"level": level, "level_label": pg.level(level), "table": kpi_table(pg, df, level, True, q),
                    "n": len(df), "simulated": _entity_simulated(view, level, df[LEVEL_ID_COLUMN[level]])}
    return {"level": None, "table": None, "n": 0}


def _hierarchy(view, level: str, rows: pd.DataFrame) -> list[dict]:
    """Breadcrumb: the parents of an entity of ``level`` from its equipment ``rows``
    (:meth:`zhizao.server.access.TenantView.equipment_rows`), linked where visible."""
    crumbs = []
    if len(rows):
        for p in PARENTS:
            if LEVELS.index(p) <= LEVELS.index(level):
                continue
            ids = rows[LEVEL_ID_COLUMN[p]].tolist()
            pid = ids[0]
            if isinstance(pid, str) and all(i == pid for i in ids):
                ok = p in view.access.levels and view.scope_visible(pid)
                crumbs.append({"level": p, "id": pid, "href": entity_url(p, pid) if ok else None})
    order = {lv: i for i, lv in enumerate(("enterprise", "site", "area", "work_center", "equipment"))}
    return sorted(crumbs, key=lambda c: order[c["level"]])


def plant_entity(view, pg: Page, level: str, eid: str, q: dict) -> dict:
    """An entity's page: KPI cards, children, waterfall, Paretos, trends, energy, data quality."""
    _ = pg._
    view.require_level(level)
    rows = view.equipment_rows(level, eid) if view.scope_visible(eid) else None
    if rows is None or rows.empty:  # unknown and another's: the same answer
        raise NotFound(NO_ENTITY, id=eid)
    start, end = page_range(view, q, level, eid)
    total = view.kpi(level, "all", start, end, ids=[eid])
    if total.empty:
        raise NotFound(NO_ENTITY_DATA, level=LEVEL_MESSAGES[level], id=eid)
    r = total.iloc[0]
    reasons = null_reason_messages(r.get("null_reason_codes"))
    cards = [{"label": _(label), "value": pg.fmt(r.get(c), kind),
              "title": null_reason_text(reasons.get(c), pg.lang) if pd.isna(r.get(c)) else None}
             for c, label, kind in CARDS]
    ctx = {"level": level, "level_label": pg.level(level), "id": eid, "cards": cards,
           "crumbs": [{**c, "label": pg.level(c["level"])} for c in _hierarchy(view, level, rows)],
           "range": pg.f.period(r["period_start"], r["period_end"]),
           "simulated": _entity_simulated(view, level, [eid]),
           "n_equipment": int(r["n_equipment"]) if pd.notna(r["n_equipment"]) else 0,
           "no_calendar": bool(r.get("no_calendar"))}
    child = CHILD.get(level)
    col = LEVEL_ID_COLUMN[level]
    within = {col: eid}

    def children():
        lv = child
        while lv is not None and lv in view.access.levels:
            df = view.kpi(lv, "all", start, end, within=within)
            # skip a level that only repeats this entity (an area equal to its single work centre)
            if len(df) == 1 and df.iloc[0][LEVEL_ID_COLUMN[lv]] == eid and lv in CHILD:
                lv = CHILD[lv]
                continue
            return {"level_label": pg.level(lv), "table": kpi_table(pg, df, lv, True, q) if len(df) else None}
        return {"level_label": None, "table": None}
    ctx["children"] = pg.guard(children) if child else {"ok": True, "table": None}
    ctx["waterfall"] = pg.guard(lambda: _waterfall(view, pg, level, eid, start, end))
    ctx["pareto"] = pg.guard(lambda: _pareto(view, pg, level, eid, start, end))
    ctx["trends"] = pg.guard(lambda: _trends(view, pg, level, eid, start, end, q.get("period")))
    ctx["quality"] = pg.guard(lambda: _data_quality(view, pg, level, eid, start, end))
    return ctx


CHART_SECTIONS = {"waterfall": "_waterfall", "pareto-losses": "_pareto", "pareto-reasons": "_pareto",
                  "trend-oee": "_trends", "trend-energy": "_trends"}


def plant_chart(view, pg: Page, level: str, eid: str, q: dict, name: str) -> str | None:
    """The SVG of one chart of an entity's page (None when the page has no such chart)."""
    view.require_level(level)
    if name not in CHART_SECTIONS or not view.scope_visible(eid):
        return None
    pg.want = name
    section = globals()[CHART_SECTIONS[name]]
    start, end = page_range(view, q, level, eid)
    args = (view, pg, level, eid, start, end)
    section(*args, q.get("period")) if section is _trends else section(*args)
    if pg.found is None:
        return None
    return standalone_svg(str(pg.svg(pg.found())))


def standalone_svg(svg: str) -> str:
    """An inline chart (:func:`zhizao.report.charts.to_svg`, namespaces left to the HTML parser) as an SVG
    document of its own, served as ``image/svg+xml``: a browser draws one only with its namespaces."""
    head = svg[:svg.find(">")]
    if "xmlns=" not in head:
        ns = 'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        svg = svg.replace("<svg ", "<svg " + ns, 1)
    return svg


def _waterfall(view, pg: Page, level, eid, start, end) -> dict:
    _ = pg._
    df = view.losses(level, "all", start, end, ids=[eid])
    if df.empty or not (df["calendar_time"].fillna(0) > 0).any():
        return {"svg": None, "table": None}
    r = df.iloc[0]
    svg = pg.chart("waterfall", lambda: charts.waterfall(pd.DataFrame(waterfall_steps(r, _, pg.f)),
                                                         _("Time model waterfall"), _("Hours"), _("Category")))
    rows = [[cell(_(WATERFALL[c][0])), num_cell(pg.f.hours(r[c])),
             num_cell(pg.f.pct(r[c] / r["calendar_time"]) if r["calendar_time"] else NULL)] for c in WATERFALL]
    return {"svg": svg, "table": {"head": [cell(_("Category")), num_cell(_("Hours")),
                                           num_cell(_("Share of calendar time"))], "rows": rows, "foot": None}}


def _pareto_block(pg: Page, items, title, name) -> dict:
    _ = pg._
    bars = pareto(items)
    data = [{"label": b.label, "value": b.seconds / 3600.0, "cum": b.cumulative} for b in bars]
    rows = [[cell(b.label), num_cell(pg.f.hours(b.seconds)), num_cell(pg.f.pct(b.share)),
             num_cell(pg.f.pct(b.cumulative))] for b in bars]
    svg = pg.chart(name, lambda: charts.pareto(pd.DataFrame(data), title, _("Hours"), _("Cumulative share")))
    return {"svg": svg, "table": {"head": [cell(_("Loss")), num_cell(_("Hours")), num_cell(_("Share")),
                                           num_cell(_("Cumulative share"))], "rows": rows, "foot": None}}


def _pareto(view, pg: Page, level, eid, start, end) -> dict:
    _ = pg._
    out: dict[str, dict | None] = {"losses": None, "reasons": None}
    df = view.losses(level, "all", start, end, ids=[eid])
    if len(df):
        items = loss_items(df.iloc[0], _)
        if items:
            out["losses"] = _pareto_block(pg, items, _("Pareto of losses"), "pareto-losses")
    sr = view.stop_reasons(level, "all", start, end, ids=[eid])
    items = stop_reason_items(sr, _)
    if items:
        out["reasons"] = _pareto_block(pg, items, _("Pareto of stop reasons"), "pareto-reasons")
    return out


def _series(pg: Page, g: pd.DataFrame, names) -> pd.DataFrame:
    long = g.melt(id_vars=["date"], value_vars=list(names), var_name="kpi", value_name="value")
    long["series"] = [pg._(KPI_NAMES[k]) for k in long["kpi"]]
    long["value"] = long["value"].astype("float64")
    return long[["date", "series", "value"]]


def _trends(view, pg: Page, level, eid, start, end, period=None) -> dict:
    _ = pg._
    period = period if period in ("day", "week", "month") else "day"
    df = view.kpi(level, period, start, end, ids=[eid])
    if period == "day" and len(df) > MAX_POINTS:
        period = "week"
        df = view.kpi(level, period, start, end, ids=[eid])
    if df.empty:
        return {"period": period, "oee": None, "energy": None}
    df = df.tail(MAX_POINTS)
    time_title = {"day": _("Date"), "week": _("Week"), "month": _("Month")}[period]
    names = ["oee", "availability", "effectiveness", "quality_ratio"]
    out = {"period": period, "oee": None, "energy": None}

    def rows(keep: pd.Series) -> pd.DataFrame:  # (a chart's own request draws it: a page needs only its URL)
        g = df[keep.to_numpy(dtype=bool)]
        return g.assign(date=g["period_start"].astype(str).str[:10], date_end=g["period_end"].astype(str).str[:10])
    has = df[names].notna().any(axis=1)
    if has.any():
        out["oee"] = pg.chart("trend-oee", lambda: charts.lines(_series(pg, rows(has), names),
                                                                _("OEE and its factors"), _("Value"), _("KPI"),
                                                                time_title=time_title, period=period))
    energy = df["energy_kwh"].notna()
    if energy.any():
        def energy_chart():
            g = rows(energy)
            parts = [charts.bars(g[["date", "date_end"]].assign(value=g["energy_kwh"]), _("Energy use"), _("kWh"),
                                 time_title, period=period)]
            for k, unit in (("comprehensive_energy_consumption", _("kgce/unit")), ("energy_per_good_unit",
                                                                                   _("kWh/unit"))):
                if g[k].notna().any():
                    parts.append(charts.lines(_series(pg, g, [k]), _(KPI_NAMES[k]), unit, _("KPI"), percent=False,
                                              time_title=time_title, period=period))
            return charts.stack(*parts)
        out["energy"] = pg.chart("trend-energy", energy_chart)
    return out


def _data_quality(view, pg: Page, level, eid, start, end) -> dict:
    _ = pg._
    dq_level = "equipment" if "equipment" in view.access.levels else level
    col = LEVEL_ID_COLUMN[level]
    if dq_level == level:
        dq = view.data_quality(dq_level, "day", start, end, ids=[eid])
    else:
        dq = view.data_quality(dq_level, "day", start, end, within={col: eid})
    if dq.empty:
        return {"summary": None, "rows": None}
    dcol = LEVEL_ID_COLUMN[dq_level]
    rows = []
    for c in dq_summary(dq):
        total = NULL if c.total is None else dq_value(pg.f, _, c.unit, c.total)
        rows.append([cell(_(c.label)), cell(_(c.description)), num_cell(pg.f.num(c.rows)),
                     num_cell(total), num_cell(dq_value(pg.f, _, c.unit, c.largest))])
    summary = {"head": [cell(_("Check")), cell(_("Description")), num_cell(_("Rows")), num_cell(_("Total")),
                        num_cell(_("Largest"))], "rows": rows, "foot": None}
    first = dq.head(20)
    link = dq_level in view.access.levels
    listing = [[cell(str(e), entity_url(dq_level, e) if link else None), cell(pg.date(day)),
                cell(_(check_label(check))), num_cell(dq_value(pg.f, _, check_unit(check), value))]
               for e, day, check, value in zip(first[dcol], first["period_start"], first["check"], first["value"])]
    return {"summary": summary, "rows": {
        "head": [cell(pg.level(dq_level)), cell(_("Date")), cell(_("Check")), num_cell(_("Value"))],
        "rows": listing, "foot": _("Rows shown: %(shown)s of %(total)s.") % {"shown": len(first), "total": len(dq)}}}


# -- projects
def project_list(view, pg: Page, q: dict) -> dict:
    _ = pg._
    prj = view.projects(q.get("park"), q.get("district"), q.get("from"), q.get("to"))
    ver = view.latest_verifications()
    nver = ver[ver["improvement"].notna()].groupby("project_id").size() if len(ver) else pd.Series(dtype=int)
    counts = nver.to_dict()
    # by columns, each distinct value formatted once: a register of thousands of projects repeats the same few
    # dates, types, statuses and counts
    memo: dict = {}

    def once(kind: str, fn, *args):
        key = (kind, *args)
        try:
            return memo[key]
        except KeyError:
            out = memo[key] = fn(*args)
            return out
        except TypeError:  # an unhashable value
            return fn(*args)

    rows = []
    for pid, ent, eid, name, district, typ, scope, start, end, tz, inv, status in zip(
            prj["project_id"], prj["enterprise"], prj["enterprise_id"], prj["name"], prj["district"], prj["type"],
            prj["scope"], prj["start"], prj["commissioning_end"], prj["tz"], prj["investment"], prj["status"]):
        rows.append([cell(pid, f"/projects/{pid}"), cell(str(ent or eid)),
                     cell(str(name) if isinstance(name, str) else NULL),
                     cell(once("district", vocab.label, "district", district, pg.lang) if isinstance(district, str)
                          else NULL),
                     cell(once("type", vocab.label, "type", typ, pg.lang)),
                     cell(str(scope) if isinstance(scope, str) else NULL),
                     cell(once("date", pg.local_date, start, tz)),
                     cell(once("date", pg.local_date, end, tz)),
                     num_cell(once("wan", pg.f.wan, inv, 1)), cell(once("status", vocab.label, "status", status,
                                                                        pg.lang)),
                     num_cell(once("num", pg.f.num, int(counts.get(pid, 0))))])
    head = [cell(_("Project code")), cell(_("Enterprise name")), cell(_("Project name")), cell(_("District")),
            cell(_("Project type")), cell(_("Scope")), cell(_("Start")), cell(_("Commissioning end")),
            num_cell(_("Investment (10,000 CNY)")), cell(_("Status")), num_cell(_("Verified indicators"))]
    sim = simulated_projects(view)
    return {"table": {"head": head, "rows": rows, "foot": None}, "n": len(prj),
            "simulated": bool(sim & set(prj["project_id"]))}


#: Labels of the verdicts (zhizao.verify.result.VERDICTS).
VERDICT_LABELS = {"verified": N_("verified"), "indicative": N_("indicative"), "refused": N_("refused")}

DECLARED = (("declared_efficiency", "production_efficiency"), ("declared_defect_rate", "defect_rate"),
            ("declared_operating_cost", "operating_cost"), ("declared_unit_energy", "unit_energy"),
            ("declared_development_cycle", "development_cycle"))


def project_detail(view, pg: Page, project_id: str) -> dict:
    _ = pg._
    p = view.project(project_id)
    tz = p.get("tz")
    results = view.stored_results(project_id)
    facts = [(_("Enterprise"), f"{p.get('enterprise') or ''}（{p['enterprise_id']}）" if pg.lang == "zh"
              else f"{p.get('enterprise') or ''} ({p['enterprise_id']})"),
             (_("Project name"), p.get("name") if isinstance(p.get("name"), str) and p.get("name") else NULL),
             (_("Project type"), vocab.label("type", p.get("type"), pg.lang)),
             (_("Scope"), p.get("scope") if isinstance(p.get("scope"), str) and p.get("scope") else NULL),
             (_("Start"), pg.local_date(p.get("start"), tz)),
             (_("Commissioning end"), pg.local_date(p.get("commissioning_end"), tz)),
             (_("Investment (10,000 CNY)"), pg.f.wan(p.get("investment"), 1)),
             (_("Status"), vocab.label("status", p.get("status"), pg.lang))]
    declared = [[cell(vocab.label("gain", ind, pg.lang)), num_cell(pg.f.pct(p.get(c)))] for c, ind in DECLARED]
    rows, details = [], []
    for r in sorted(results, key=lambda x: x.indicator):
        label = _(INDICATOR_LABELS[r.indicator]) if r.indicator in INDICATOR_LABELS else r.indicator
        gain = vocab.label("gain", r.indicator, pg.lang) if r.indicator in vocab.INDICATOR_GAINS else label
        ci = NULL if r.ci_low is None else pg.f.pct_range(r.ci_low, r.ci_high)
        (b0, b1), (r0, r1) = r.baseline_period, r.reporting_period
        rows.append([cell(gain, title=pg.definition(r.definition)), cell(pg.f.period(b0, b1, tz=tz)),
                     num_cell(pg.f.sig(r.baseline)), cell(pg.f.period(r0, r1, tz=tz)),
                     num_cell(pg.f.sig(r.reporting)), num_cell(pg.f.sig(r.adjusted_baseline)),
                     num_cell(pg.f.pct(r.improvement)), num_cell(ci)])
        fit = [(_(FIT_LABELS[k]) if k in FIT_LABELS else k,
                (_("yes") if v else _("no")) if isinstance(v, bool) else
                pg.f.count(v) if k in FIT_COUNTS and isinstance(v, (int, float)) and float(v).is_integer() else
                pg.f.sig(v) if isinstance(v, (int, float)) else str(v))
               for k, v in (r.fit or {}).items() if not isinstance(v, (list, dict)) and
               (k in FIT_LABELS or pg.lang == "en")]
        details.append({"label": label, "method": pg.method(r), "definition": pg.definition(r.definition),
                        "estimand": r.estimand.text(pg.lang) if r.estimand is not None else None,
                        "interval": r.interval_text(pg.lang),
                        "verdict": _(VERDICT_LABELS[r.verdict]) if r.verdict in VERDICT_LABELS else r.verdict,
                        "fit": fit, "warnings": [pg.message(w) for w in (r.warnings or [])]})
    head = [cell(_("Indicator")), cell(_("Baseline period")), num_cell(_("Baseline")),
            cell(_("Reporting period")), num_cell(_("Reporting")), num_cell(_("Adjusted baseline")),
            num_cell(_("Improvement")),
            num_cell(_("%(conf)s confidence interval") % {"conf": pg.f.pct(results[0].confidence, 0)
                                                           if results and results[0].confidence else ""})]
    des = view.designations()
    des = des[des["project_id"] == project_id]
    drows = [[cell(_(DESIGNATION_LABELS.get(d["designation"], d["designation"]))),
              cell(_(DESIGNATION_LEVEL_LABELS[d["level"]]) if d["level"] in DESIGNATION_LEVEL_LABELS
                    else str(d["level"])), cell(pg.local_date(d["date"], d.get("tz") or tz))]
             for _i, d in des.iterrows()]
    return {"project": p, "facts": facts, "declared": {"head": [cell(_("Indicator")), num_cell(_("Declared value"))],
                                                        "rows": declared, "foot": None},
            "results": {"head": head, "rows": rows, "foot": None} if rows else None, "details": details,
            "designations": {"head": [cell(_("Designation")), cell(_("Level")), cell(_("Date"))], "rows": drows,
                             "foot": None} if drows else None,
            "can_verify": view.access.store_verifications,
            "simulated": project_id in simulated_projects(view)}


# -- programme
def _count_table(pg: Page, df: pd.DataFrame, key: str, head: str, labels=None, kind: str | None = None) -> dict:
    _ = pg._
    total = int(df["n_projects"].sum()) if len(df) else 0
    rows = []
    for _i, r in df.iterrows():
        label = r[key]
        if kind:
            label = vocab.label(kind, label, pg.lang)
        elif label is None or (not isinstance(label, str) and pd.isna(label)):
            label = _("(not stated)")
        else:
            label = _(labels[label]) if labels and label in labels else str(label)
        share = r["n_projects"] / total if total else None
        rows.append([cell(label), num_cell(pg.f.num(r["n_projects"])), num_cell(pg.f.pct(share)),
                     num_cell(pg.f.wan(r.get("investment"), 1)) if "investment" in r else num_cell(NULL)])
    return {"head": [cell(head), num_cell(_("Number of projects")), num_cell(_("Share")),
                     num_cell(_("Investment (10,000 CNY)"))], "rows": rows, "foot": None}


#: The filters of the programme page that select its statistics (and so its charts).
PROGRAMME_FILTERS = ("park", "district", "from", "to")


def _programme_charts(s: dict, q: dict, lang: str) -> dict:
    """The addresses of the programme page's charts (None where there is nothing to draw): projects and
    investment by district and by year, declared against verified per indicator. Each is its own request
    (:func:`programme_chart`), so the page's figures do not wait for the drawing (about 0.2-0.7 s a chart);
    the address names the page's language, so a browser never shows a chart kept from the other one."""
    query = urlencode({**{k: q[k] for k in PROGRAMME_FILTERS if q.get(k)}, "lang": lang})
    return {name: f"/programme/chart/{name}.svg?{query}" if bulletin_chart_exists(s, name) else None
            for name in CHART_NAMES}


def _programme_statistics(view, q: dict) -> dict:
    return view.programme_statistics(*(q.get(k) for k in PROGRAMME_FILTERS))


def programme_chart(view, pg: Page, q: dict, name: str) -> str | None:
    """One chart of the programme page as SVG text (None: unknown name, or nothing to draw), drawn once per
    store version, language and filters (the start-up warm-up draws the unfiltered ones)."""
    if name not in CHART_NAMES:
        return None

    def draw() -> str | None:
        svg = bulletin_charts(_programme_statistics(view, q), pg.lang, (name,))[name]
        return standalone_svg(svg) if svg is not None else None
    return view.cached(("programme_chart", pg.lang, name, *(q.get(k) for k in PROGRAMME_FILTERS)), draw)


def programme(view, pg: Page, q: dict) -> dict:
    _ = pg._
    s = _programme_statistics(view, q)
    t = s["totals"]
    cards = [(_("Number of projects"), pg.f.num(t["n_projects"])), (_("Enterprises"), pg.f.num(t["n_enterprises"])),
             (_("Total investment (10,000 CNY)"), pg.f.wan(t.get("investment"))),
             (_("Demonstration projects"), pg.f.num(t["n_demonstration_projects"])),
             (_("Smart factories"), pg.f.num(t["n_smart_factories"])),
             (_("Digital workshops"), pg.f.num(t["n_digital_workshops"])),
             (_("Projects verified from data"), pg.f.num(t["n_verified_projects"]))]
    av = s["averages"]
    arows = []
    for _i, r in av.iterrows():
        ci = pg.f.pct_range(r.get("ci_low"), r.get("ci_high"))
        arows.append([cell(vocab.label("gain", r["indicator"], pg.lang)),
                      cell(_(BASIS_LABELS.get(r["basis"], r["basis"]))), num_cell(pg.f.num(r["n"])),
                      num_cell(pg.f.pct(r["mean"])), num_cell(ci), num_cell(pg.f.pct(r.get("weighted_mean"))),
                      num_cell(pg.f.pct(r.get("median"))),
                      num_cell(pg.f.pct_range(r.get("q1"), r.get("q3"))),
                      num_cell(pg.f.pct_range(r.get("min"), r.get("max")))])
    ahead = [cell(_("Indicator")), cell(_("Basis")), num_cell(_("Number of projects")), num_cell(_("Mean")),
             num_cell(_("%(c)s interval") % {"c": pg.f.pct(s["confidence"], 0)}), num_cell(_("Weighted mean")),
             num_cell(_("Median")), num_cell(_("Quartiles")), num_cell(_("Minimum to maximum"))]
    des = s["by_designation"]
    drows = [[cell(_(DESIGNATION_LABELS.get(r["designation"], r["designation"]))), num_cell(pg.f.num(r["n"]))]
             for _i, r in des.iterrows()]
    dl = s["by_designation_level"]
    dlrows = [[cell(_(DESIGNATION_LABELS.get(r["designation"], r["designation"]))),
               cell(_(DESIGNATION_LEVEL_LABELS[r["level"]]) if r.get("level") in DESIGNATION_LEVEL_LABELS
                     else str(r.get("level"))), num_cell(pg.f.num(r["n"]))] for _i, r in dl.iterrows()]
    cov = s["coverage"]
    crows = [[cell(_(INDICATOR_LABELS.get(r["indicator"], r["indicator"]))), num_cell(pg.f.num(r["n_verified"])),
              num_cell(pg.f.num(r["n_declared_only"])), num_cell(pg.f.num(r["n_neither"]))]
             for _i, r in cov.iterrows()]
    rk = s["rankings"]
    rrows = [[cell(_(INDICATOR_LABELS.get(r["indicator"], r["indicator"]))), num_cell(pg.f.num(r["rank"])),
              cell(r["project_id"], f"/projects/{r['project_id']}"), num_cell(pg.f.pct(r["improvement"]))]
             for _i, r in rk.iterrows()] if len(rk) else []
    pv = s["project_values"]
    dist = []
    if len(pv):
        for ind, g in pv[pv["status"] == "verified"].groupby("indicator", sort=False):
            vals = g["improvement"].dropna().astype(float).sort_values()
            if not len(vals):
                continue
            lo, hi = min(0.0, float(vals.min())), max(0.0, float(vals.max()))
            span = (hi - lo) or 1.0
            dist.append({"label": _(INDICATOR_LABELS.get(ind, ind)), "zero": 100 * (0 - lo) / span,
                         "points": [{"x": 100 * (float(v) - lo) / span, "title": f"{pid}: {pg.f.pct(v)}"}
                                    for pid, v in zip(g.loc[vals.index, "project_id"], vals)],
                         "lo": pg.f.pct(lo), "hi": pg.f.pct(hi), "range": pg.f.pct_range(lo, hi)})
    return {
        "cards": cards, "averages": {"head": ahead, "rows": arows, "foot": None},
        "by_type": _count_table(pg, s["by_type"], "type", _("Project type"), kind="type"),
        "by_district": _count_table(pg, s["by_district"], "district", _("District"), kind="district"),
        "by_industry": _count_table(pg, s["by_industry"], "industry", _("Industry"), kind="industry"),
        "by_year": _count_table(pg, s["by_year"], "year", _("Start year")),
        "designations": {"head": [cell(_("Designation")), num_cell(_("Designated units"))], "rows": drows,
                         "foot": None},
        "designation_levels": {"head": [cell(_("Designation")), cell(_("Level")), num_cell(_("Designated units"))],
                               "rows": dlrows, "foot": None},
        "coverage": {"head": [cell(_("Indicator")), num_cell(_("Verified")), num_cell(_("Declared only")),
                              num_cell(_("Neither"))], "rows": crows, "foot": None},
        "rankings": {"head": [cell(_("Indicator")), num_cell(_("Rank")), cell(_("Project")),
                              num_cell(_("Improvement"))], "rows": rrows, "foot": None} if rrows else None,
        "distributions": dist,
        "charts": _programme_charts(s, q, pg.lang),
        "simulated": bool(s["totals"].get("n_simulated_projects")),
    }


def recognition(view, pg: Page, q: dict) -> dict:
    _ = pg._
    ents = view.enterprises()
    ctx: dict[str, Any] = {
        "enterprises": [(r["enterprise_id"], r["name"] if isinstance(r["name"], str) else r["enterprise_id"])
                        for _i, r in ents.iterrows()],
        "designations": [("digital_workshop", _(DESIGNATION_LABELS["digital_workshop"])),
                         ("smart_factory", _(DESIGNATION_LABELS["smart_factory"]))],
        "result": None}
    if not q.get("enterprise"):
        return ctx
    des = q.get("designation") or "digital_workshop"
    df = view.recognition(q["enterprise"], des, *local_days(q), q.get("scope") or None)
    rows = []
    for _i, r in df.iterrows():
        thr, val, op = r["threshold"], r["value"], r["operator"] or ""
        if r["criterion"] in REDUCTIONS:  # one sign convention: a reduction is a positive improvement
            thr = None if thr is None or pd.isna(thr) else -thr
            val = None if val is None or pd.isna(val) else -val
            op = {"<=": ">=", ">=": "<=", "<": ">", ">": "<"}.get(op, op)
        pct = r["criterion"].endswith(("share", "rate", "change", "adoption"))
        fmt = pg.f.pct if pct else pg.f.num
        passed = {True: "✓", False: "✗"}.get(r["passed"], NULL)
        ev = list(r["evidence"] or [])
        label = _(CRITERIA[r["criterion"]]) if r["criterion"] in CRITERIA else r["criterion"]
        text = r.get(f"text_{pg.lang}") or r["description"]  # the rule set's own words in the page's language
        basis = NULL if r["basis"] is None else pg.message(r["basis"])
        rows.append([cell(label, title=text), cell(text),
                     num_cell(f"{OPERATORS.get(op, op)} {fmt(thr)}" if thr is not None else NULL),
                     num_cell(fmt(val) if val is not None else NULL),
                     {"text": passed, "num": False, "cls": {True: "pass", False: "fail"}.get(r["passed"], "na")},
                     cell(_("data") if r["source"] == "data" else _("declaration to be confirmed")),
                     cell(basis), cell(", ".join(map(str, ev[:8])) + (" …" if len(ev) > 8 else ""))])
    ctx["result"] = {"head": [cell(_("Criterion")), cell(_("Description")), num_cell(_("Threshold")),
                              num_cell(_("Value")), cell(_("Passed")), cell(_("Source")), cell(_("Basis")),
                              cell(_("Evidence"))], "rows": rows, "foot": None}
    ctx["designation_label"] = _(DESIGNATION_LABELS.get(des, des))
    return ctx


#: Recognition criteria by their readers' names (the programme's rule sets will carry their own texts).
CRITERIA = {
    "digital_equipment_share": N_("Share of digital equipment"), "data_upload_rate": N_("Equipment data upload rate"),
    "digital_workshops": N_("Digital workshops of the enterprise"),
    "production_efficiency_change": N_("Production efficiency gain"),
    "operating_cost_change": N_("Operating cost reduction"),
    "equipment_networked": N_("Equipment networked and monitored in real time"),
    "mes_coverage": N_("Manufacturing execution system (MES) coverage"),
    "system_integration": N_("Integration of the systems"), "design_tool_adoption": N_("Design tool adoption"),
    "erp_closed_loop": N_("Closed loop centred on the enterprise resource planning system (ERP)"),
    "integrated_systems": N_("Integrated design, operations, manufacturing and maintenance systems"),
    "other_improvement_thresholds": N_("Other improvement thresholds"),
}
#: Criteria stated as a change where lower is better: shown as a reduction (positive = better), as everywhere.
REDUCTIONS = ("operating_cost_change",)
OPERATORS = {">=": "≥", "<=": "≤", ">": ">", "<": "<"}


# -- data
def data_page(view, pg: Page) -> dict:
    _ = pg._
    ups = view.uploads(50)
    urows = [[cell(u["upload_id"], f"/data/uploads/{u['upload_id']}"), cell(u["file_name"]),
              cell(pg.table_label(u["table"])),
              cell(u["principal"]), num_cell(pg.f.num(u["loaded"])), num_cell(pg.f.num(u["quarantined"])),
              num_cell(pg.f.num(u["skipped"])), cell(pg.datetime(u["uploaded_at"]))] for _i, u in ups.iterrows()]
    qs = view.quarantine_summary()
    qrows = [[cell(pg.table_label(r["table"])), cell(pg.rule_label(r["rule"])), num_cell(pg.f.num(r["records"])),
              cell(pg.detail(r["example"], r.get("example_code"), r.get("example_params")))]
             for _i, r in qs.iterrows()]
    return {"uploads": {"head": [cell(_("Upload")), cell(_("File")), cell(_("Table")), cell(_("By")),
                                 num_cell(_("Loaded")), num_cell(_("Quarantined")), num_cell(_("Already stored")),
                                 cell(_("Time"))], "rows": urows, "foot": None} if urows else None,
            "summary": {"head": [cell(_("Table")), cell(_("Rule")), num_cell(_("Records")), cell(_("Example"))],
                        "rows": qrows, "foot": None} if qrows else None}


def raw_record(raw, lang: str) -> str:
    """A rejected record as stored (JSON of its columns) as a reader of ``lang`` sees it: on a Chinese page each
    canonical column by its label ("开始时间": "not a time"), the values as they came; other text as it is."""
    if not isinstance(raw, str) or not raw:
        return ""
    if lang != "zh":
        return raw
    from zhizao.ingest.rules import column_word

    try:
        record = json.loads(raw)
    except ValueError:
        return raw
    if not isinstance(record, dict):
        return raw
    return json.dumps({column_word(k, lang): v for k, v in record.items()}, ensure_ascii=False)


def quarantine_rows(pg: Page, q: pd.DataFrame) -> dict | None:
    _ = pg._
    if q.empty:
        return None
    rows = [[cell(pg.table_label(r["table"])), num_cell(pg.f.num(r["line"])), cell(pg.rule_label(r["rule"])),
             cell(pg.detail(r["detail"], r.get("code"), r.get("params"))),
             {"text": raw_record(r["raw"], pg.lang)[:300], "num": False, "cls": "raw"}] for _i, r in q.iterrows()]
    return {"head": [cell(_("Table")), num_cell(_("Line")), cell(_("Rule")), cell(_("Reason")),
                     cell(_("Record"))], "rows": rows, "foot": None}


def today() -> str:
    return dt.date.today().isoformat()
