"""The programme bulletin (通报): a press-release paragraph and the tables behind every number it states.

``render_bulletin`` writes ``bulletin.<lang>.html`` (self-contained: inline CSS, charts as inline SVG, no
script, nothing loaded from the network) and ``bulletin.<lang>.md``, in Simplified Chinese or English. It
computes nothing itself: every figure comes from :func:`zhizao.portfolio.stats.programme_statistics` and is
shown with the projects behind it (a per-project appendix lists every value the averages are computed from).
Messages come from the report's catalogues (:mod:`zhizao.i18n`), numbers are formatted with Babel for
the bulletin's locale, for display only.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import altair as alt
import jinja2
import pandas as pd
from markupsafe import Markup

from zhizao.portfolio.registry import PROGRAMME_INDICATORS
from zhizao.portfolio.stats import programme_statistics
from zhizao.report import charts
from zhizao.i18n import NULL, N_, Formatter, check_lang, translations
from zhizao.messages import Message

TEMPLATES = Path(__file__).parent / "templates"

INDICATOR_LABELS = {
    "production_efficiency": N_("Production efficiency"),
    "defect_rate": N_("Product defect rate"),
    "operating_cost": N_("Operating cost"),
    "unit_energy": N_("Unit product energy consumption"),
    "development_cycle": N_("Product development cycle"),
}
#: Indicator -> (phrase when the mean improvement is >= 0, phrase when it is < 0); %(v)s is the magnitude.
PHRASES = {
    "production_efficiency": (N_("production efficiency rose by %(v)s on average"),
                              N_("production efficiency fell by %(v)s on average")),
    "defect_rate": (N_("the product defect rate fell by %(v)s on average"),
                    N_("the product defect rate rose by %(v)s on average")),
    "operating_cost": (N_("operating cost fell by %(v)s on average"),
                       N_("operating cost rose by %(v)s on average")),
    "unit_energy": (N_("unit product energy consumption fell by %(v)s on average"),
                    N_("unit product energy consumption rose by %(v)s on average")),
    "development_cycle": (N_("the product development cycle was shortened by %(v)s on average"),
                          N_("the product development cycle was lengthened by %(v)s on average")),
}
TYPE_LABELS = {
    "digital_equipment": N_("Digital equipment adoption"),
    "system_integration": N_("Information system integration for digital workshops and smart factories"),
    "industrial_internet": N_("Industrial internet platforms and moving onto the cloud"),
    "new_mode": N_("New intelligent manufacturing modes"),
}
DESIGNATION_LABELS = {
    "demonstration_project": N_("Demonstration project"),
    "digital_workshop": N_("Digital workshop"),
    "smart_factory": N_("Smart factory"),
}
LEVEL_LABELS = {"district": N_("District level"), "municipal": N_("Municipal level"),
                "provincial": N_("Provincial level"), "national": N_("National level")}
BASIS_LABELS = {"verified": N_("Verified from data"), "declared": N_("Declared")}
STATUS_MARKS = {"verified": N_("[verified]"), "declared": N_("[declared]")}
WEIGHT_LABELS = {"output": N_("by output"), "investment": N_("by investment")}


def _p(text: str, cls: str | None = None) -> dict:
    return {"type": "p", "text": text, "cls": cls}


def _h3(text: str) -> dict:
    return {"type": "h3", "text": text}


def _cell(text, num: bool = False, title: str | None = None, cls: str | None = None) -> dict:
    return {"text": str(text), "num": num, "title": title, "cls": cls}


def _table(head: list, rows: list[list[dict]], caption: str | None = None, foot: str | None = None,
           cls: str | None = None) -> dict:
    head = [h if isinstance(h, dict) else _cell(h) for h in head]
    return {"type": "table", "head": head, "rows": rows, "caption": caption, "foot": foot, "cls": cls}


def _ids(ids) -> str:
    return ", ".join(map(str, ids)) if ids else NULL


class _Bulletin:
    """The bulletin's content in one language, from one statistics dict."""

    def __init__(self, stats: dict, lang: str):
        self.s = stats
        self.lang = lang
        self.tr = translations(lang)
        self._ = self.tr.gettext
        self.n_ = self.tr.ngettext
        self.f = Formatter(lang)

    # -- labels
    def label(self, table: dict, key) -> str:
        if key is None or (not isinstance(key, str) and pd.isna(key)):
            return self._("(not stated)")
        return self._(table[key]) if key in table else str(key)

    def ind(self, key: str) -> str:
        return self._(INDICATOR_LABELS[key])

    def ci(self, lo, hi) -> str:
        if lo is None or hi is None or pd.isna(lo) or pd.isna(hi):
            return NULL
        return f"[{self.f.pct(lo)}, {self.f.pct(hi)}]"

    # -- the paragraph
    def clause(self, ind: str, a: dict, verified: bool) -> str:
        _ = self._
        mean, lo, hi = a["mean"], a["ci_low"], a["ci_high"]
        up = mean >= 0
        text = _(PHRASES[ind][0 if up else 1]) % {"v": self.f.pct(abs(mean))}
        if verified and pd.notna(lo) and pd.notna(hi):
            lo, hi = (lo, hi) if up else (-hi, -lo)
            text += _(" (%(conf)s confidence interval %(lo)s to %(hi)s, %(n)s projects)") % {
                "conf": self.f.pct(self.s["confidence"], 0), "lo": self.f.pct(lo), "hi": self.f.pct(hi),
                "n": self.f.num(a["n"])}
        elif verified:
            text += self.n_(" (%(n)s project)", " (%(n)s projects)", a["n"]) % {"n": self.f.num(a["n"])}
        else:
            text += self.n_(" (declared for %(n)s project)", " (declared for %(n)s projects)", a["n"]) % {
                "n": self.f.num(a["n"])}
        return text

    def join(self, clauses: list[str]) -> str:
        out = clauses[0]
        for c in clauses[1:]:
            out = self._("%(first)s; %(next)s") % {"first": out, "next": c}
        return out

    def paragraph(self) -> list[str]:
        """The press-release sentences."""
        _ = self._
        t = self.s["totals"]
        n = t["n_projects"]
        if not n and not (t["n_smart_factories"] or t["n_digital_workshops"] or t["n_demonstration_projects"]):
            return [_("No intelligent transformation project in the selection.")]
        s1 = self.n_("%(n)s intelligent transformation project has been supported",
                     "%(n)s intelligent transformation projects have been supported", n) % {"n": self.f.num(n)}
        m = t["n_demonstration_projects"]
        if m:
            s1 += self.n_(", %(m)s of them selected as a demonstration project",
                          ", %(m)s of them selected as demonstration projects", m) % {"m": self.f.num(m)}
        x, y = t["n_smart_factories"], t["n_digital_workshops"]
        recognised = []
        if x:
            recognised.append(self.n_("%(x)s smart factory", "%(x)s smart factories", x) % {"x": self.f.num(x)})
        if y:
            recognised.append(self.n_("%(y)s digital workshop", "%(y)s digital workshops", y) % {"y": self.f.num(y)})
        if recognised:
            what = recognised[0] if len(recognised) == 1 else \
                _("%(a)s and %(b)s") % {"a": recognised[0], "b": recognised[1]}
            s1 += _("; %(what)s recognised") % {"what": what}
        out = [_("%(text)s.") % {"text": s1}]
        av = self.s["averages"]
        ver = {r["indicator"]: r for r in av[av["basis"] == "verified"].to_dict("records") if r["n"]}
        dec = {r["indicator"]: r for r in av[av["basis"] == "declared"].to_dict("records") if r["n"]}
        v_clauses = [self.clause(i, ver[i], True) for i in PROGRAMME_INDICATORS if i in ver]
        d_clauses = [self.clause(i, dec[i], False) for i in PROGRAMME_INDICATORS if i not in ver and i in dec]
        if v_clauses:
            out.append(_("In the projects verified from data, %(clauses)s.") % {"clauses": self.join(v_clauses)})
        if d_clauses:
            key = _("As declared by the enterprises and not verified from data, %(clauses)s.") if v_clauses else \
                _("No result has been verified from data yet; as declared by the enterprises, %(clauses)s.")
            out.append(key % {"clauses": self.join(d_clauses)})
        if not v_clauses and not d_clauses:
            out.append(_("No project has a verified or declared result yet."))
        if v_clauses:
            out.append(_("Verified results are available for %(k)s of the %(n)s projects. Averages are unweighted "
                         "means of the project results; the intervals are %(conf)s percentile-bootstrap "
                         "intervals over projects.") % {"k": self.f.num(t["n_verified_projects"]),
                                                       "n": self.f.num(n),
                                                       "conf": self.f.pct(self.s["confidence"], 0)})
        return out

    # -- tables
    def totals_table(self) -> dict:
        _ = self._
        t = self.s["totals"]
        d = self.s["by_designation"]
        units = {r["designation"]: r["units"] for r in d.to_dict("records")}
        rows = [
            (_("Projects"), t["n_projects"], _ids(t["project_ids"])),
            (_("Enterprises"), t["n_enterprises"], _ids(sorted(set(self.s["projects"]["enterprise_id"])))),
            (_("Demonstration projects"), t["n_demonstration_projects"], _ids(units.get("demonstration_project"))),
            (_("Smart factories"), t["n_smart_factories"], _ids(units.get("smart_factory"))),
            (_("Digital workshops"), t["n_digital_workshops"], _ids(units.get("digital_workshop"))),
            (_("Projects with a verified result"), t["n_verified_projects"], _ids(t["verified_project_ids"])),
        ]
        return _table([_("Item"), _cell(_("Number"), num=True), _("Behind the number")],
                      [[_cell(a), _cell(self.f.num(b), num=True), _cell(c, cls="ids")] for a, b, c in rows])

    def count_table(self, df: pd.DataFrame, key: str, head: str, labels: dict | None = None) -> dict:
        _ = self._
        rows = []
        for r in df.to_dict("records"):
            k = r[key]
            text = self.label(labels, k) if labels else (_("(not stated)") if k is None or pd.isna(k) else str(k))
            rows.append([_cell(text), _cell(self.f.num(r["n_projects"]), num=True),
                         _cell(_ids(r["project_ids"]), cls="ids")])
        if not rows:
            return _p(_("No projects."), "nodata")
        return _table([head, _cell(_("Projects"), num=True), _("Project ids")], rows)

    def designation_table(self) -> dict:
        _ = self._
        df = self.s["by_designation_level"]
        if not len(df):
            return _p(_("No designations."), "nodata")
        rows = [[_cell(self.label(DESIGNATION_LABELS, r["designation"])), _cell(self.label(LEVEL_LABELS, r["level"])),
                 _cell(self.f.num(r["n"]), num=True), _cell(_ids(r["units"]), cls="ids"),
                 _cell(_ids(r["project_ids"]), cls="ids")] for r in df.to_dict("records")]
        return _table([_("Designation"), _("Level"), _cell(_("Number"), num=True), _("Designated units"),
                       _("Project ids")], rows,
                      foot=_("A unit is an enterprise, its scope (after /) or its project (after #). A unit "
                             "designated at several levels counts once in the totals."))

    def coverage_table(self) -> dict:
        _ = self._
        rows = []
        for r in self.s["coverage"].to_dict("records"):
            rows.append([_cell(self.ind(r["indicator"])),
                         _cell(self.f.num(r["n_verified"]), num=True, title=_ids(r["verified_ids"])),
                         _cell(self.f.num(r["n_declared_only"]), num=True, title=_ids(r["declared_only_ids"])),
                         _cell(self.f.num(r["n_neither"]), num=True, title=_ids(r["neither_ids"])),
                         _cell(_ids(r["verified_ids"]), cls="ids"), _cell(_ids(r["declared_only_ids"]), cls="ids")])
        return _table([_("Indicator"), _cell(_("Verified from data"), num=True),
                       _cell(_("Declared only"), num=True), _cell(_("Neither"), num=True),
                       _("Verified projects"), _("Declared-only projects")], rows)

    def averages_rows(self) -> list[list[dict]]:
        f = self.f
        rows = []
        for r in self.s["averages"].to_dict("records"):
            weighted = f.pct(r["weighted_mean"])
            if isinstance(r["weight_basis"], str):
                weighted += f" ({self._(WEIGHT_LABELS[r['weight_basis']])})"
            rows.append([
                _cell(self.ind(r["indicator"])), _cell(self._(BASIS_LABELS[r["basis"]])),
                _cell(f.num(r["n"]), num=True), _cell(f.pct(r["mean"]), num=True),
                _cell(self.ci(r["ci_low"], r["ci_high"]), num=True), _cell(weighted, num=True,
                                                                           title=_ids(r["weight_project_ids"])),
                _cell(f.pct(r["median"]), num=True), _cell(self.ci(r["q1"], r["q3"]), num=True),
                _cell(self.ci(r["min"], r["max"]), num=True), _cell(_ids(r["project_ids"]), cls="ids")])
        return rows

    def averages_head(self) -> list:
        _ = self._
        conf = self.f.pct(self.s["confidence"], 0)
        return [_("Indicator"), _("Basis"), _cell(_("Projects"), num=True), _cell(_("Mean"), num=True),
                _cell(_("%(conf)s interval") % {"conf": conf}, num=True),
                _cell(_("Weighted mean"), num=True), _cell(_("Median"), num=True),
                _cell(_("Quartiles"), num=True), _cell(_("Range"), num=True), _("Project ids")]

    def averages_chart(self) -> str | None:
        av = self.s["averages"]
        av = av[av["n"] > 0]
        if not len(av):
            return None
        _ = self._
        df = pd.DataFrame({
            "indicator": [self.ind(i) for i in av["indicator"]],
            "basis": [_(BASIS_LABELS[b]) for b in av["basis"]],
            "mean": av["mean"].astype(float), "lo": av["ci_low"].astype(float), "hi": av["ci_high"].astype(float)})
        basis_order = [_(BASIS_LABELS[b]) for b in ("verified", "declared")]
        df["row"] = df["indicator"] + " · " + df["basis"]
        order = [f"{self.ind(i)} · {b}" for i in PROGRAMME_INDICATORS for b in basis_order]
        order = [o for o in order if o in set(df["row"])]
        y = alt.Y("row:N", sort=order, title=None, axis=alt.Axis(labelLimit=320))
        color = alt.Color("basis:N", title=_("Basis"), sort=basis_order,
                          scale=alt.Scale(domain=basis_order, range=[charts.COLORS["total"], charts.COLORS["other"]]))
        base = alt.Chart(df, title=_("Average improvement per indicator (unweighted mean of projects)"))
        bars = base.mark_bar().encode(
            x=alt.X("mean:Q", title=_("Improvement"), axis=alt.Axis(format=".0%", tickCount=8)), y=y, color=color)
        err = base.transform_filter("isValid(datum.lo)").mark_rule(color=charts.COLORS["line"], strokeWidth=2) \
            .encode(x="lo:Q", x2="hi:Q", y=y)
        chart = alt.layer(bars, err).properties(width=charts.WIDTH - 200, height=max(40, 22 * len(order)))
        return charts.to_svg(chart, self.lang)

    def rankings_blocks(self) -> list[dict]:
        _ = self._
        rk = self.s["rankings"]
        if not len(rk):
            return [_p(_("No verified results to rank."), "nodata")]
        blocks = []
        for ind in PROGRAMME_INDICATORS:
            g = rk[rk["indicator"] == ind]
            if not len(g):
                continue
            rows = [[_cell(self.f.num(r["rank"]), num=True), _cell(r["project_id"]),
                     _cell(r["enterprise"] if isinstance(r["enterprise"], str) else r["enterprise_id"]),
                     _cell(self.label(TYPE_LABELS, r["type"])), _cell(self.f.pct(r["improvement"]), num=True),
                     _cell(self.ci(r["ci_low"], r["ci_high"]), num=True)] for r in g.to_dict("records")]
            blocks.append(_table([_cell(_("Rank"), num=True), _("Project"), _("Enterprise"), _("Type"),
                                  _cell(_("Improvement"), num=True), _cell(_("Interval"), num=True)], rows,
                                 caption=self.ind(ind)))
        return blocks

    def value_text(self, r: dict) -> str:
        parts = []
        if r["status"] == "verified":
            v = self.f.pct(r["improvement"])
            if pd.notna(r["ci_low"]) and pd.notna(r["ci_high"]):
                v += " " + self.ci(r["ci_low"], r["ci_high"])
            parts.append(f"{v} {self._(STATUS_MARKS['verified'])}")
        if pd.notna(r["declared"]):
            parts.append(f"{self.f.pct(r['declared'])} {self._(STATUS_MARKS['declared'])}")
        return " · ".join(parts) if parts else NULL

    def appendix(self) -> tuple[list, list[list[dict]]]:
        _ = self._
        pv = self.s["project_values"]
        prj = self.s["projects"]
        head = [_("Project"), _("Enterprise"), _("Type")] + [self.ind(i) for i in PROGRAMME_INDICATORS]
        values = {(r["project_id"], r["indicator"]): r for r in pv.to_dict("records")}
        rows = []
        for p in prj.to_dict("records"):
            g = {i: values[(p["project_id"], i)] for i in PROGRAMME_INDICATORS if (p["project_id"], i) in values}
            ent = p["enterprise"] if isinstance(p["enterprise"], str) else p["enterprise_id"]
            row = [_cell(p["project_id"]), _cell(f"{ent} ({p['enterprise_id']})" if ent != p["enterprise_id"] else ent),
                   _cell(self.label(TYPE_LABELS, p["type"]))]
            for i in PROGRAMME_INDICATORS:
                r = g.get(i)
                title = None
                if r and r["status"] == "verified" and r["method"]:
                    mm = r.get("method_message")
                    title = Message.from_dict(mm).text(self.lang) if isinstance(mm, dict) else str(r["method"])
                row.append(_cell(self.value_text(r) if r else NULL, num=True, title=title))
            rows.append(row)
        return head, rows

    def appendix_note(self) -> str:
        return self._("%(v)s: verified from data, the improvement and its interval at the confidence level of the "
                      "verification (positive = better); %(d)s: declared by the enterprise, not verified.") % {
            "v": self._(STATUS_MARKS["verified"]), "d": self._(STATUS_MARKS["declared"])}

    def filters_text(self) -> str:
        _ = self._
        fl = self.s["filters"]
        everything = _("all")
        return _("Park: %(park)s · District: %(district)s · Project start: [%(start)s, %(end)s)") % {
            "park": fl["park"] or everything, "district": fl["district"] or everything,
            "start": fl["start"] or "…", "end": fl["end"] or "…"}

    def paragraph_text(self) -> str:
        """The sentences as one paragraph (Chinese sentences are not separated by spaces)."""
        return ("" if self.lang == "zh" else " ").join(self.paragraph())

    def sections(self) -> list[dict]:
        """The bulletin's sections (computed once)."""
        if getattr(self, "_sections", None) is None:
            self._sections = self._build_sections()
        return self._sections

    def _build_sections(self) -> list[dict]:
        _ = self._
        head, rows = self.appendix()
        svg = self.averages_chart()
        avg_blocks = [_p(_("Values are fractions shown as percentages; positive means better for every indicator "
                           "(a reduction for defect rate, cost, energy and development cycle). The mean is the "
                           "unweighted mean of the project values (as bulletins report); the weighted mean weights "
                           "each project by its reporting-period output where the verification states it, else by "
                           "its investment (the basis is named); hover over a weighted mean for its projects."),
                         "note")]
        if svg:
            avg_blocks.append({"type": "figure", "svg": Markup(svg), "caption": _(
                "Bars: unweighted mean of the projects; orange line: %(conf)s percentile-bootstrap interval over "
                "projects (two projects at least).") % {"conf": self.f.pct(self.s["confidence"], 0)}})
        avg_blocks.append(_table(self.averages_head(), self.averages_rows()))
        return [
            {"id": "counts", "title": _("Projects and designations"), "blocks": [
                self.totals_table(),
                _h3(_("Projects by type")), self.count_table(self.s["by_type"], "type", _("Type"), TYPE_LABELS),
                _h3(_("Designations by level")), self.designation_table(),
                _h3(_("Projects by district")), self.count_table(self.s["by_district"], "district", _("District")),
                _h3(_("Projects by industry")), self.count_table(self.s["by_industry"], "industry", _("Industry")),
                _h3(_("Projects by start year")), self.count_table(self.s["by_year"], "year", _("Year")),
            ]},
            {"id": "coverage", "title": _("Verified and declared results"), "blocks": [self.coverage_table()]},
            {"id": "averages", "title": _("Average results per indicator"), "blocks": avg_blocks},
            {"id": "rankings", "title": _("Projects with the largest verified improvements"),
             "blocks": self.rankings_blocks()},
            {"id": "appendix", "title": _("Appendix: results per project"), "blocks": [
                _p(self.appendix_note(), "note"),
                _table(head, rows) if rows else _p(_("No projects."), "nodata")]},
        ]

    # -- markdown
    def markdown(self, title: str, generated: str) -> str:
        _ = self._

        def esc(x) -> str:
            return str(x).replace("|", "\\|").replace("\n", " ")

        def table(head, rows) -> list[str]:
            h = [esc(c["text"] if isinstance(c, dict) else c) for c in head]
            out = ["| " + " | ".join(h) + " |",
                   "|" + "|".join("---:" if isinstance(c, dict) and c.get("num") else "---" for c in head) + "|"]
            out += ["| " + " | ".join(esc(c["text"]) for c in r) + " |" for r in rows]
            return out + [""]

        lines = [f"# {title}", "", _("Generated") + f": {generated}  ", self.filters_text(), ""]
        lines += [self.paragraph_text(), ""]
        for sec in self.sections():
            lines += [f"## {sec['title']}", ""]
            for b in sec["blocks"]:
                if b["type"] == "p":
                    lines += [b["text"], ""]
                elif b["type"] == "h3":
                    lines += [f"### {b['text']}", ""]
                elif b["type"] == "table":
                    if b.get("caption"):
                        lines += [f"**{b['caption']}**", ""]
                    lines += table(b["head"], b["rows"])
                    if b.get("foot"):
                        lines += [b["foot"], ""]
        return "\n".join(lines).rstrip() + "\n"


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                              extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True,
                              undefined=jinja2.StrictUndefined)


def render_bulletin(ws, out_dir, lang: str = "zh", title: str | None = None, stats: dict | None = None,
                    **statistics_filters) -> dict[str, Path]:
    """Write the programme bulletin as HTML and Markdown.

    Parameters
    ----------
    ws : zhizao.Workspace
    out_dir : str or path-like
        Folder (created if missing); ``bulletin.<lang>.html`` and ``bulletin.<lang>.md`` are overwritten.
    lang : {'zh', 'en'}, default 'zh'
    title : str, optional
        Default a translated "Intelligent transformation programme bulletin".
    stats : dict, optional
        A result of :func:`~zhizao.portfolio.stats.programme_statistics` to render (else computed here with
        ``statistics_filters``).
    **statistics_filters
        park, district, start, end, confidence, n_boot, seed: passed to ``programme_statistics``.

    Returns
    -------
    dict
        ``{"html": Path, "md": Path}``.

    Raises
    ------
    ValueError
        For an unknown ``lang`` or a bad filter (see ``programme_statistics``).

    Notes
    -----
    The paragraph states verified averages where at least one project has a verified result for the
    indicator; indicators with declared values only are stated in a separate sentence that says they are
    declared and not verified; indicators with neither are left out. Without projects the paragraph says so.
    """
    check_lang(lang)
    from zhizao import __version__

    s = stats if stats is not None else programme_statistics(ws, **statistics_filters)
    b = _Bulletin(s, lang)
    _ = b._
    title = title or _("Intelligent transformation programme bulletin")
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    generated = b.f.datetime(now)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    env = _env()
    env.install_gettext_translations(b.tr, newstyle=True)
    html = env.get_template("bulletin.html.j2").render(
        lang="zh-CN" if lang == "zh" else "en", title=title, generated=generated,
        store=str(getattr(ws, "path", "")), filters=b.filters_text(), paragraph=b.paragraph_text(),
        sections=b.sections(), version=__version__)
    paths = {"html": out / f"bulletin.{lang}.html", "md": out / f"bulletin.{lang}.md"}
    paths["html"].write_text(html, encoding="utf-8")
    paths["md"].write_text(b.markdown(title, generated), encoding="utf-8")
    return paths
