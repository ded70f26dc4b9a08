"""The HTML report: written in zh and en, offline, robust to stores with some kinds of data only."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from babel.messages.extract import extract
from babel.messages.pofile import read_po
from babel.numbers import format_percent
from jinja2.ext import babel_extract

import zhizao
from test_worked_example import TABLES
from zhizao.report import ReportWarning, render_report
from zhizao.report import html as report_html

# a section that fails inside a test is a test failure (the report itself would show it and go on)
pytestmark = pytest.mark.filterwarnings("error::zhizao.report.ReportWarning")

REPORT_DIR = Path(report_html.__file__).parent
LOCALE_DIR = REPORT_DIR.parent / "locale"
EXTERNAL = re.compile(r"""(?:\b(?:src|href|xlink:href|srcset|action|data)\s*=\s*["']?\s*(?:https?:)?//)"""
                      r"""|(?:url\(\s*["']?\s*(?:https?:)?//)|(?:@import)""", re.I)

ENERGY_ONLY = {
    "equipment": [{"equipment_id": "F1", "site": "SE", "timezone": "Asia/Shanghai"}],
    "energy": [{"meter_id": "m1", "equipment_id": "F1", "start": f"2024-05-0{d}T00:00:00+08:00",
                "end": f"2024-05-0{d + 1}T00:00:00+08:00", "carrier": "electricity", "quantity": 100.0 * d,
                "unit": "kWh"} for d in range(1, 4)],
}


def offline(html: str) -> bool:
    return not EXTERNAL.search(html) and "<script" not in html.lower() and "<link" not in html.lower()


def text_of(html: str) -> str:
    """Visible text, roughly: tags, styles and charts removed."""
    html = re.sub(r"<(style|svg)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.mark.parametrize("lang, locale, heading", [
    ("zh", "zh_CN", "设备综合效率"),
    ("en", "en", "Overall equipment effectiveness"),
])
def test_worked_example_report(make_ws, tmp_path, lang, locale, heading):
    ws = make_ws(TABLES)
    out = render_report(ws, tmp_path / "out" / f"report-{lang}.html", lang=lang,
                        notes=["worked example <Vorne>"])
    assert out == tmp_path / "out" / f"report-{lang}.html" and out.is_file()
    html = out.read_text(encoding="utf-8")
    assert heading in html
    oee = ws.kpi(level="site", period="all")["oee"].iloc[0]
    shown = format_percent(oee, "#,##0.0%", locale=locale)
    assert "74.8" in shown and f">{shown}</td>" in html  # the OEE 0.7479, displayed with one decimal
    assert offline(html)
    assert html.count("<svg") >= 4  # waterfall, two Paretos, trend
    assert "worked example &lt;Vorne&gt;" in html  # notes are shown, escaped
    assert "jam" in text_of(html)  # the stop reason of the example


def test_report_sections_with_quality_labour_energy_and_quarantine(make_ws, tmp_path):
    day = "2024-05-06"
    tables = dict(TABLES)
    tables["labour"] = [{"scope": "L1", "start": f"{day}T06:00:00+00:00", "end": f"{day}T14:00:00+00:00",
                         "attendance_hours": 16.0, "work_hours": 14.0, "earned_hours": 12.0}]
    tables["quality"] = [{"equipment_id": "M1", "ts": f"{day}T0{h}:30:00+00:00", "result": r, "first_pass": r == "pass"}
                         for h, r in zip(range(6, 10), ["pass", "pass", "fail", "pass"])]
    tables["energy"] = [{"meter_id": "e1", "equipment_id": "M1", "start": f"{day}T06:00:00+00:00",
                         "end": f"{day}T14:00:00+00:00", "carrier": "electricity", "quantity": 480.0, "unit": "kWh"}]
    ws = make_ws(tables)
    bad = tmp_path / "bad_states.csv"
    pd.DataFrame([{"equipment_id": "M1", "start": "not a time", "state": "production"}]).to_csv(bad, index=False)
    ws.ingest("states", bad)
    assert len(ws.quarantine()) == 1
    html = render_report(ws, tmp_path / "r.html", lang="en").read_text(encoding="utf-8")
    text = text_of(html)
    k = ws.kpi(level="site", period="all").iloc[0]
    for name in ("first_pass_yield", "defect_rate", "worker_efficiency"):
        assert pd.notna(k[name])
        assert format_percent(k[name], "#,##0.0%", locale="en") in text, name
    assert "No inspection data" not in text and "No labour data" not in text and "No energy data" not in text
    assert "Quarantine" in text and "No records quarantined" not in text
    assert offline(html)


def test_energy_only_store_renders(make_ws, tmp_path):
    ws = make_ws(ENERGY_ONLY)
    for lang in ("zh", "en"):
        html = render_report(ws, tmp_path / f"e-{lang}.html", lang=lang).read_text(encoding="utf-8")
        assert offline(html) and "<svg" in html  # the energy chart
    text = text_of(html)
    assert "600" in text  # 100 + 200 + 300 kWh in the energy table
    assert "No energy data" not in text
    # time KPIs are null: a dash with the reason as a tooltip
    assert re.search(r'<td class="num" title="[^"]+">\u2014</td>', html)


def test_empty_store_renders_with_no_data(tmp_path):
    with zhizao.connect(tmp_path / "empty.duckdb") as ws:
        en = render_report(ws, tmp_path / "en.html", lang="en").read_text(encoding="utf-8")
        zh = render_report(ws, tmp_path / "zh.html", lang="zh", title="空库").read_text(encoding="utf-8")
    assert "No data." in en and "无数据" in zh and "<title>空库</title>" in zh
    assert offline(en) and offline(zh)


def test_bad_arguments(make_ws, tmp_path):
    ws = make_ws(TABLES)
    with pytest.raises(ValueError, match=r'"zh", "en"'):
        render_report(ws, tmp_path / "x.html", lang="fr")
    with pytest.raises(ValueError, match="line"):
        render_report(ws, tmp_path / "x.html", level_order=("site", "line"))
    assert not (tmp_path / "x.html").exists()


def test_a_failing_section_is_shown_and_the_rest_renders(make_ws, tmp_path, monkeypatch):
    ws = make_ws(TABLES)

    def broken(*a, **kw):
        raise RuntimeError("boom")

    monkeypatch.setattr(ws, "stop_reasons", broken)
    with pytest.warns(ReportWarning, match="boom"):
        html = render_report(ws, tmp_path / "r.html", lang="en").read_text(encoding="utf-8")
    assert "RuntimeError: boom" in html and "Time model waterfall" in html


def test_simulated_plant_report_is_small(tmp_path):
    from zhizao.simulate.plant import simulate_plant, write_plant

    tables = simulate_plant(machines=12, days=14, seed=1)
    tables.pop("truth")
    paths = write_plant(tables, tmp_path / "plant")
    with zhizao.connect(tmp_path / "plant.duckdb") as ws:
        for name in ("equipment", "products", "calendar", "states", "production", "energy", "labour", "quality"):
            ws.ingest(name, paths[name])
        out = render_report(ws, tmp_path / "plant.html", lang="zh")
    html = out.read_text(encoding="utf-8")
    # simulated data are marked from their provenance, without any note or flag
    assert re.search(r'id="simulated">模拟数据：[^<]*S1', html)
    assert out.stat().st_size < 3_000_000
    assert offline(html) and html.count("<svg") >= 6
    # element ids are unique across the inline charts
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))


def _msgids() -> set[str]:
    kw = {"_": None, "N_": None, "gettext": None}
    ids = set()
    for p in REPORT_DIR.glob("*.py"):
        with p.open("rb") as f:
            ids |= {m for _l, m, _c, _x in extract("python", f, keywords=kw)}
    for p in (REPORT_DIR / "templates").glob("*.j2"):
        with p.open("rb") as f:
            ids |= {m for _l, m, _c, _x in extract(babel_extract, f, keywords=kw,
                                                     options={"extensions": "jinja2.ext.i18n"})}
    return ids


def test_catalogues_cover_every_message():
    ids = _msgids()
    assert len(ids) > 50
    for lang in ("zh", "en"):
        with (LOCALE_DIR / lang / "LC_MESSAGES" / "zhizao.po").open("rb") as f:
            cat = read_po(f)
        missing = sorted(m for m in ids if m not in cat)
        assert not missing, (lang, missing)
        if lang == "zh":
            untranslated = sorted(m for m in ids if not cat[m].string or cat[m].fuzzy)
            assert not untranslated, untranslated
            for m in ids:  # the same placeholders on both sides
                assert set(re.findall(r"%\(\w+\)s", m)) == set(re.findall(r"%\(\w+\)s", cat[m].string)), m


# -- time axes: explicit label formats per period (no locale's default multi-format such as "周六 05", "03 上午")
TIME_LABEL = {"hour": r"\d\d-\d\d \d\d:\d\d", "day": r"\d{4}-\d\d-\d\d", "week": r"\d{4}-\d\d-\d\d",
              "month": r"\d{4}-\d\d"}


def _temporal_axes(spec) -> list[dict]:
    """Every temporal encoding of a Vega-Lite spec (nested views included)."""
    out = []
    if isinstance(spec, dict):
        for v in spec.values():
            out += _temporal_axes(v)
        if spec.get("type") == "temporal" and "field" in spec:
            out.append(spec)
    elif isinstance(spec, list):
        for v in spec:
            out += _temporal_axes(v)
    return out


def _svg_texts(svg: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", t).strip() for t in re.findall(r"<text[^>]*>(.*?)</text>", svg, re.S)]


def test_every_period_has_a_time_axis_format():
    from zhizao.report import charts
    from zhizao.schema import PERIODS

    assert set(PERIODS) <= set(charts.TIME_FORMATS) == set(charts.TIME_STEPS)
    assert charts.TIME_FORMATS["hour"] == "%m-%d %H:%M" and charts.TIME_FORMATS["day"] == "%Y-%m-%d"
    assert charts.TIME_FORMATS["month"] == "%Y-%m"
    with pytest.raises(ValueError, match="fortnight"):
        charts.time_axis("fortnight")


@pytest.mark.parametrize("period,dates", [
    ("hour", [f"2026-12-05T{h:02d}:00" for h in range(0, 24, 2)]),
    ("day", [f"2026-12-{d:02d}" for d in range(1, 15)]),
    ("month", [f"2026-{m:02d}-01" for m in range(1, 13)]),
])
def test_time_axes_of_lines_and_bars_read_the_same_in_both_languages(period, dates):
    """The energy chart read "周六 05" and "03 上午" in Chinese: every chart with a time axis (lines, bars) has
    the period's explicit format; the drawn labels are those digits in Chinese and English alike."""
    from zhizao.report import charts

    ends = dates[1:] + [(pd.Timestamp(dates[-1]) + (pd.Timestamp(dates[1]) - pd.Timestamp(dates[0])))
                        .isoformat()[:len(dates[0])]]
    values = [float(i % 5 + 1) for i in range(len(dates))]
    made = [charts.lines(pd.DataFrame({"date": dates, "series": "OEE", "value": [v / 10 for v in values]}),
                         "t", "y", "s", period=period),
            charts.bars(pd.DataFrame({"date": dates, "date_end": ends, "value": values}), "t", "kWh", period=period)]
    for chart in made:
        axes = _temporal_axes(chart.to_dict(validate=False))
        assert axes and all(a["axis"]["format"] == charts.TIME_FORMATS[period] for a in axes), axes
        labels = {}
        for lang in ("zh", "en"):
            texts = _svg_texts(charts.to_svg(chart, lang))
            assert not [t for t in texts if re.search(r"周[一二三四五六日]|上午|下午|Sat|Mon|AM|PM", t)], texts
            labels[lang] = [t for t in texts if re.fullmatch(TIME_LABEL[period], t)]
            assert len(labels[lang]) >= 3, (lang, texts)
        assert labels["zh"] == labels["en"]
        assert labels["zh"][0] == pd.Timestamp(dates[0]).strftime(charts.TIME_FORMATS[period])


def test_charts_drawn_in_a_worker_process_are_the_same_and_survive_its_death():
    """A server draws in one worker process (vl-convert holds the interpreter while it draws): the same SVG as
    drawn here; a worker that died is replaced; a spec vl-convert refuses is an error, not a hang."""
    import re

    import altair as alt
    import pandas as pd

    from zhizao.report import charts

    chart = alt.Chart(pd.DataFrame({"x": ["甲", "乙"], "y": [1.5, 2.0]})).mark_bar().encode(x="x:N", y="y:Q")

    def plain(svg: str) -> str:
        return re.sub(r"zz\d+-", "", svg)  # ids are unique per chart
    here = charts.to_svg(chart, "zh")
    charts.draw_in_worker()
    try:
        assert plain(charts.to_svg(chart, "zh")) == plain(here)
        w = charts._worker
        assert w is not None and w.proc is not None
        w.proc.kill()
        w.proc.wait()
        assert plain(charts.to_svg(chart, "zh")) == plain(here)  # a new worker
        with pytest.raises(ValueError, match="could not be drawn"):
            charts._svg({"mark": {"type": "no-such-mark"}, "data": {"values": [{}]}}, "en-US")
        assert plain(charts.to_svg(chart, "zh")) == plain(here)  # and it goes on
        # a draw that takes too long stops the worker (no answer is left for the next caller) and says so; the
        # worker is frozen (SIGSTOP) so that it cannot answer in time however the machine is loaded
        import os
        import signal
        assert w.proc is not None
        os.kill(w.proc.pid, signal.SIGSTOP)
        with pytest.raises(TimeoutError):
            w.draw({"mark": "point", "data": {"values": [{}]}}, "en-US", timeout=0.5)
        assert w.proc is None
        assert plain(charts.to_svg(chart, "zh")) == plain(here)
    finally:
        charts.draw_in_worker(False)
    assert charts._worker is None


def test_the_chart_worker_imports_nothing_from_the_working_directory(tmp_path, monkeypatch):
    """A file in the server's working directory named like a module the worker imports is not imported."""
    import altair as alt
    import pandas as pd

    from zhizao.report import charts

    (tmp_path / "vl_convert.py").write_text("raise SystemExit('imported from the working directory')\n")
    monkeypatch.chdir(tmp_path)
    chart = alt.Chart(pd.DataFrame({"x": [1.0]})).mark_point().encode(x="x:Q")
    charts.draw_in_worker()
    try:
        assert "<svg" in charts.to_svg(chart, "en")
    finally:
        charts.draw_in_worker(False)
