"""Programme statistics as labelled tables for people: one sheet per table, headers in the reader's language,
labels instead of codes, local dates, amounts in 万元 (CNY million in English), fractions shown as percentages.

Used by ``zhizao programme --format xlsx -o FILE`` (:func:`programme_sheets`, written by
:func:`zhizao.export.write_xlsx`, which also neutralises text that a spreadsheet would run as a formula).
"""

from __future__ import annotations

import pandas as pd

from zhizao.i18n import Formatter, translations
from zhizao.portfolio import vocabulary as vocab
from zhizao.portfolio.registry import PROGRAMME_INDICATORS


def _day(f, v, tz):
    """A register date as it is (it never moves a day); an instant as its date in zone ``tz``."""
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    t = pd.Timestamp(v)
    if t.tzinfo is not None:
        t = t.tz_convert(tz)
    return f.day(t.to_pydatetime())


def _district(code, lang: str) -> str | None:
    """A district's name (as the register reads it back); an empty cell stays empty."""
    if code is None or (not isinstance(code, str) and pd.isna(code)) or code == "":
        return None
    return vocab.label("district", code, lang)


def _ids(v) -> str:
    return ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else ("" if v is None else str(v))


def programme_sheets(stats: dict, lang: str = "zh") -> tuple[dict[str, pd.DataFrame], dict[str, list]]:
    """Sheets of a :func:`~zhizao.portfolio.stats.programme_statistics` result.

    Returns
    -------
    (dict, dict)
        Sheet name -> table, and sheet name -> the columns holding fractions (shown as percentages).
    """
    _ = translations(lang).gettext
    f = Formatter(lang)
    money = 1e4 if lang == "zh" else 1e6
    inv_head = _("Investment (10,000 CNY)") if lang == "zh" else _("Investment (CNY million)")
    sheets: dict[str, pd.DataFrame] = {}
    pct: dict[str, list] = {}
    t = stats["totals"]
    if t.get("n_simulated_projects"):
        sheets[_("SIMULATED DATA")] = pd.DataFrame({_("Data source"): [_(
            "This workbook is made from SIMULATED data (%(n)s of %(total)s projects come from the programme "
            "simulator); it describes no real enterprise or project.") % {
            "n": t["n_simulated_projects"], "total": t["n_projects"]}]})
    rows = [(_("Number of projects"), t["n_projects"]), (_("Enterprises"), t["n_enterprises"]),
            (inv_head, None if t.get("investment") is None else t["investment"] / money),
            (_("Demonstration projects"), t["n_demonstration_projects"]),
            (_("Smart factories"), t["n_smart_factories"]), (_("Digital workshops"), t["n_digital_workshops"]),
            (_("Projects verified from data"), t["n_verified_projects"])]
    sheets[_("Totals")] = pd.DataFrame(rows, columns=[_("Item"), _("Number")])

    def counts(df, key, head, kind):
        total = df["n_projects"].sum() if len(df) else 0
        return pd.DataFrame({
            head: [vocab.label(kind, k, lang) if kind else (_("(not stated)") if k is None or
                                                            (not isinstance(k, str) and pd.isna(k)) else str(k))
                   for k in df[key]],
            _("Number of projects"): df["n_projects"].astype(int),
            _("Share"): df["n_projects"] / total if total else None,
            inv_head: [None if x is None or pd.isna(x) else x / money for x in df["investment"]],
            _("Project codes"): [_ids(v) for v in df["project_ids"]]})
    for key, col, head, kind in (("by_district", "district", _("District"), "district"),
                                 ("by_industry", "industry", _("Industry"), "industry"),
                                 ("by_year", "year", _("Start year"), None),
                                 ("by_type", "type", _("Project type"), "type")):
        name = _("Projects by %(what)s") % {"what": head.lower() if lang == "en" else head}
        sheets[name] = counts(stats[key], col, head, kind)
        pct[name] = [_("Share")]
    dl = stats["by_designation_level"]
    sheets[_("Designations")] = pd.DataFrame({
        _("Designation"): [vocab.label("designation", d, lang) for d in dl["designation"]],
        _("Level"): [vocab.label("level", v, lang) for v in dl["level"]],
        _("Number"): dl["n"].astype(int) if len(dl) else [],
        _("Designated units"): [_ids(v) for v in dl["units"]]})
    av = stats["averages"]
    name = _("Average improvement")
    sheets[name] = pd.DataFrame({
        _("Indicator"): [vocab.label("gain", i, lang) for i in av["indicator"]],
        _("Basis"): [vocab.label("basis", b, lang) for b in av["basis"]],
        _("Number of projects"): av["n"].astype(int),
        _("Mean"): av["mean"], _("Confidence interval: lower bound"): av["ci_low"],
        _("Confidence interval: upper bound"): av["ci_high"], _("Weighted mean"): av["weighted_mean"],
        _("Median"): av["median"], _("Lower quartile"): av["q1"], _("Upper quartile"): av["q3"],
        _("Minimum"): av["min"], _("Maximum"): av["max"],
        _("Project codes"): [_ids(v) for v in av["project_ids"]]})
    pct[name] = [_("Mean"), _("Confidence interval: lower bound"), _("Confidence interval: upper bound"),
                 _("Weighted mean"), _("Median"), _("Lower quartile"), _("Upper quartile"), _("Minimum"),
                 _("Maximum")]
    prj = stats["projects"]
    pv = stats["project_values"]
    values = {(r["project_id"], r["indicator"]): r for r in pv.to_dict("records")}
    out = []
    for p in prj.to_dict("records"):
        row = {_("Project code"): p["project_id"], _("Project name"): p["name"],
               _("Enterprise name"): p["enterprise"] if isinstance(p["enterprise"], str) else p["enterprise_id"],
               _("District"): _district(p["district"], lang),
               _("Industry"): vocab.label("industry", p["industry"], lang),
               _("Project type"): vocab.label("type", p["type"], lang),
               _("Start"): _day(f, p["start"], p["tz"]),
               _("Commissioning end"): _day(f, p["commissioning_end"], p["tz"]),
               inv_head: None if pd.isna(p["investment"]) else p["investment"] / money,
               _("Status"): vocab.label("status", p["status"], lang)}
        for i in PROGRAMME_INDICATORS:
            r = values.get((p["project_id"], i)) or {}
            g = vocab.label("gain", i, lang)
            row[f"{g}：{_('Declared value')}" if lang == "zh" else f"{g}: {_('Declared value')}"] = r.get("declared")
            row[f"{g}：{_('Verified value')}" if lang == "zh" else f"{g}: {_('Verified value')}"] = \
                r.get("improvement") if r.get("status") == "verified" else None
        out.append(row)
    name = _("Projects")
    sheets[name] = pd.DataFrame(out)
    pct[name] = [c for c in sheets[name].columns if c.endswith((_("Declared value"), _("Verified value")))]
    return sheets, pct


def project_sheet(prj: pd.DataFrame, verified: pd.Series | None = None, lang: str = "zh") -> pd.DataFrame:
    """The project register as a labelled table (``zhizao project list --format xlsx``): headers in ``lang``,
    labels instead of codes, local dates, investment in 万元 (CNY million in English), the number of verified
    indicators per project. Its Chinese headers are the register's, and it carries the enterprise code: edited in
    Excel, it loads back with ``zhizao ingest projects FILE --update`` (:mod:`zhizao.portfolio.register`)."""
    _ = translations(lang).gettext
    f = Formatter(lang)
    money = 1e4 if lang == "zh" else 1e6

    def day(v, tz):
        return _day(f, v, tz)
    return pd.DataFrame({
        _("Project code"): prj["project_id"], _("Project name"): prj["name"],
        _("Enterprise name"): [e if isinstance(e, str) else i for e, i in zip(prj["enterprise"], prj["enterprise_id"])],
        _("Enterprise code"): prj["enterprise_id"],  # the key the register reads back (zhizao ingest --update)
        _("District"): [_district(x, lang) for x in prj["district"]],
        _("Industry"): [vocab.label("industry", x, lang) for x in prj["industry"]],
        _("Project type"): [vocab.label("type", x, lang) for x in prj["type"]], _("Scope"): prj["scope"],
        _("Start"): [day(v, z) for v, z in zip(prj["start"], prj["tz"])],
        _("Commissioning end"): [day(v, z) for v, z in zip(prj["commissioning_end"], prj["tz"])],
        (_("Investment (10,000 CNY)") if lang == "zh" else _("Investment (CNY million)")):
            [None if pd.isna(x) else x / money for x in prj["investment"]],
        _("Status"): [vocab.label("status", x, lang) for x in prj["status"]],
        _("Verified indicators"): [int((verified if verified is not None else pd.Series(dtype=int)).get(p, 0))
                                   for p in prj["project_id"]]})


__all__ = ["programme_sheets", "project_sheet"]
