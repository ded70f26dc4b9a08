"""No English on a Chinese page: every Chinese page of the dashboard, the bulletin and the KPI report, rendered on
a programme store with shop-floor data (simulated) and on a store of the real datasets, shows no Latin-script
word outside an allowlist: units, ISO and standard abbreviations, format names, and the ids of the data (which
are the data's own, e.g. equipment ENT001-WC1-M1 or site DAEWOO-Gwangyang).

Visible text includes the chart labels (SVG text), tooltips (title), image alt texts and input placeholders.
"""

from __future__ import annotations

import html as htmllib
import io
import re
from functools import cache

import pandas as pd
import pytest

import zhizao
from test_server_support import PROJECT_A, PROJECT_B, SITE_A, A, bearer, clone, login, make_client

pytest.importorskip("fastapi")

#: Words that may appear on a Chinese page: units, ISO 22400 and standard abbreviations, format and product names.
ALLOW = {
    # units
    "kWh", "kgce", "h", "s", "kW", "CNY", "tce",
    # ISO 22400 elements and KPIs, standards
    "OEE", "TEEP", "ISO", "KPI", "PRI", "APT", "PBT", "POT", "PDT", "AUST", "ADET", "ADOT", "AUPT", "AUBT",
    "PQ", "GQ", "SQ", "RQ", "IP", "GP", "APAT", "APWT", "MTBF", "MTTR", "MTTF", "FE", "TTR", "GB", "T",
    "IPMVP", "ASHRAE", "MES", "ERP", "Cm", "Cmk", "Cp", "Cpk", "R", "CV", "RMSE", "NMBE", "F", "p",
    # names of statistical methods, written in Latin script in Chinese texts too (AR(1), Welch-Satterthwaite,
    # Newey-West, BIC, CUSUM)
    "AR", "Welch", "Satterthwaite", "Newey", "West", "BIC", "CUSUM",
    # formats and names
    "Excel", "CSV", "PDF", "zhizao", "English", "YAML", "Parquet", "API",
    # placeholders of date inputs
    "YYYY", "MM", "DD",
}
WORD = re.compile(r"[A-Za-z][A-Za-z]*")


def visible_text(page: str) -> str:
    """What a reader sees or hovers: text (SVG chart labels included), title/alt/placeholder attributes."""
    page = re.sub(r"<(style|script)\b.*?</\1>", " ", page, flags=re.S | re.I)
    attrs = re.findall(r'\b(?:title|alt|placeholder|aria-label)="([^"]*)"', page)
    text = re.sub(r"<[^>]+>", " ", page)
    return htmllib.unescape(" ".join([text, *attrs]))


def data_words(con) -> set[str]:
    """Words of the ids and names held by the store (shown as they are stored)."""
    words: set[str] = set()
    cols = con.execute("""SELECT table_name, column_name FROM information_schema.columns
                          WHERE data_type = 'VARCHAR' AND table_name NOT IN ('quarantine')""").fetchall()
    skip = {"unit", "carrier", "state", "category", "kind", "type", "status", "designation", "level", "industry",
            "rule", "result", "indicator", "currency", "name_en"}
    from zhizao.server.uploads import bundled_mappings

    for name in bundled_mappings():  # mapping files are offered by their file names
        words |= set(WORD.findall(str(name)))
    for (raw,) in con.execute("SELECT DISTINCT CAST(raw AS VARCHAR) FROM quarantine LIMIT 5000").fetchall():
        if isinstance(raw, str):  # a rejected record is shown as it was sent
            import json

            try:
                values = json.loads(raw).values()
            except (ValueError, AttributeError):
                values = []
            for v in values:
                if isinstance(v, str):
                    words |= set(WORD.findall(v))
    for table, col in cols:
        if col in skip or (col.startswith("_") and col != "_source"):
            continue
        for (v,) in con.execute(f'SELECT DISTINCT "{col}" FROM "{table}" LIMIT 5000').fetchall():
            if isinstance(v, str) and len(v) < 200:
                words |= set(WORD.findall(v))
    return words


def latin_words(page: str, allowed: set[str]) -> list[str]:
    found = []
    for w in WORD.findall(visible_text(page)):
        if w not in allowed:
            found.append(w)
    return sorted(set(found))


@cache
def programme_client_store():
    """The server tests' programme store (two tenants, verified projects) with a rejected upload."""
    import tempfile
    from pathlib import Path

    d = Path(tempfile.mkdtemp(prefix="zhizao-zh-pages-"))
    return clone(d / "s.duckdb")


def _pages(client, h) -> dict[str, str]:
    up = client.post("/api/v1/ingest/states", headers=h, files={"file": ("bad.csv", io.BytesIO(
        b"equipment_id,start,end,state\nENT001-WC1-M1,2026-01-05T06:00:00+08:00,2026-01-05T05:00:00+08:00,"
        b"production\nENT001-WC1-M1,not a time,,production\nNOPE,2026-01-05T06:00:00+08:00,,production\n"),
        "text/csv")})
    assert up.status_code in (200, 201), up.text
    upload_id = up.json().get("upload_id")
    urls = ["/plant", f"/plant/site/{SITE_A}", "/plant/work_center/ENT001-WC1", "/plant/equipment/ENT001-WC1-M1",
            "/projects", f"/projects/{PROJECT_A}", f"/projects/{PROJECT_B}", "/programme",
            "/programme/chart/district.svg", "/programme/chart/year.svg", "/programme/chart/indicators.svg",
            f"/recognition?enterprise={A}&designation=digital_workshop",
            f"/recognition?enterprise={A}&designation=smart_factory", "/recognition", "/data", "/admin",
            "/projects/NO-SUCH-PROJECT", "/plant/nowhere/x", "/programme/bulletin?lang=zh"]
    if upload_id:
        urls.append(f"/data/uploads/{upload_id}")
    out = {}
    for u in urls:
        r = client.get(u, headers=h)
        assert r.status_code in (200, 404), (u, r.status_code)
        out[u] = r.text
    return out




@cache
def _rendered():
    import tempfile
    from pathlib import Path

    db = clone(Path(tempfile.mkdtemp(prefix="zhizao-zh-pages-")) / "s.duckdb")
    client = make_client(db)
    try:
        h = bearer(login(client, "root"))
        pages = _pages(client, h)
        pages["/login"] = client.get("/login", headers={"Cookie": ""}).text
    finally:
        client.app.state.server.close()
    with zhizao.connect(db, read_only=True) as ws:
        allowed = ALLOW | data_words(ws.con) | {"NO", "SUCH", "PROJECT", "nowhere"}  # the ids asked for
    return pages, allowed


def _bad() -> dict:
    pages, allowed = _rendered()
    bad = {u: latin_words(p, allowed) for u, p in pages.items()}
    return {u: w for u, w in bad.items() if w}


def test_every_chinese_dashboard_page_and_the_bulletin():
    pages, _allowed = _rendered()
    assert len(pages) >= 15
    # the data pages too: a quarantine detail and a rejected record name each column by its label (开始时间), not
    # by the canonical name (start), which they showed until 2026-12-06
    assert any(u.startswith("/data/uploads/") for u in pages)
    bad = _bad()
    assert not bad, "\n".join(f"{u}: {' '.join(w)}" for u, w in bad.items())


#: Words a Chinese page must not use where docs/glossary.md names the thing otherwise.
NOT_GLOSSARY = ("基准期", "调整后基准", "隔离区", "性能效率", "质量比率", "调试结束", "项目群", "已核验", "公报", "评审员",
                "工厂视图", "不良率")  # 不良品率 (MIIT), not 不良率
ISO_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def test_chinese_pages_use_the_glossary_and_write_dates_out():
    """Verification notes, recognition bases and quarantine details are rendered in the page's language: dates
    written out (no ISO time stamps), the glossary's terms, district names, details translated."""
    pages, _allowed = _rendered()
    for u, page in pages.items():
        text = visible_text(page)
        if not u.startswith("/data"):  # a rejected record is shown with its values as sent
            assert not ISO_STAMP.search(text), (u, ISO_STAMP.findall(text)[:3])
        assert not [w for w in NOT_GLOSSARY if w in text], (u, [w for w in NOT_GLOSSARY if w in text])
    project = visible_text(pages[f"/projects/{PROJECT_B}"])
    assert "时段按数据缩短为" in project and "年" in project.split("时段按数据缩短为")[1][:12]
    assert "已建成投产" in visible_text(pages["/projects"])  # the register's status label
    data = visible_text(pages["/data"])
    assert "设备 NOPE 不在设备表中" in data and "is not in the equipment table" not in data
    assert "九龙坡区" in visible_text(pages["/projects"]) and "jiulongpo" not in visible_text(pages["/programme"])


def test_programme_workbook_and_ladder_tiers_by_name(tmp_path):
    """The programme workbook names districts; a designation outside the three fixed ones (a tier of MIIT's
    factory ladder) reaches the bulletin by its name, never its code."""
    from zhizao.portfolio import programme_statistics
    from zhizao.portfolio.bulletin import bulletin_html
    from zhizao.portfolio.tables import programme_sheets

    db = clone(tmp_path / "s.duckdb")
    with zhizao.connect(db, read_only=True) as ws:
        stats = programme_statistics(ws, n_boot=20)
    sheets, _pct = programme_sheets(stats, "zh")
    flat = " ".join(str(v) for df in sheets.values() for v in df.to_numpy().ravel())
    assert "九龙坡区" in flat and "jiulongpo" not in flat
    dl = stats["by_designation_level"]
    stats["by_designation"] = pd.concat([stats["by_designation"], pd.DataFrame(
        [{"designation": "ladder_advanced", "n": 2}])], ignore_index=True)
    stats["by_designation_level"] = pd.concat([dl, pd.DataFrame(
        [{"designation": "ladder_advanced", "level": "national", "n": 2}])], ignore_index=True)
    html, md = bulletin_html(stats, "zh", date="2026-12-03")
    assert "ladder_advanced" not in html and "先进级智能工厂2个" in md


def test_chinese_report_and_bulletin_files(tmp_path):
    from zhizao.portfolio import render_bulletin
    from zhizao.report import render_report

    db = clone(tmp_path / "s.duckdb")
    with zhizao.connect(db, read_only=True) as ws:
        allowed = ALLOW | data_words(ws.con)
        report = render_report(ws, tmp_path / "r.html", lang="zh").read_text("utf-8")
        paths = render_bulletin(ws, tmp_path / "b", lang="zh", n_boot=100)
    bad = {name: latin_words(text, allowed) for name, text in (
        ("report", report), ("bulletin", paths["html"].read_text("utf-8")),
        ("bulletin.md", paths["md"].read_text("utf-8")))}
    assert not {k: v for k, v in bad.items() if v}, bad


def test_chinese_report_on_the_real_datasets(tmp_path):
    from zhizao.demo import DATA, REAL_SOURCES
    from zhizao.ingest.mapping import bundled_mapping
    from zhizao.report import render_report

    with zhizao.connect(tmp_path / "real.duckdb") as ws:
        for table, rel, mapping in REAL_SOURCES[:5]:  # steel energy, garment labour, SECOM quality
            ws.ingest(table, DATA / rel, mapping=bundled_mapping(mapping) if mapping else None)
        allowed = ALLOW | data_words(ws.con)
        report = render_report(ws, tmp_path / "r.html", lang="zh").read_text("utf-8")
    assert not latin_words(report, allowed)


def test_the_checker_finds_english():
    page = '<p title="not verified">状态 completed</p><svg><text>Production efficiency</text></svg>'
    assert latin_words(page, ALLOW) == ["Production", "completed", "efficiency", "not", "verified"]
    assert latin_words("<p>OEE 74.8% · 2.5 kWh · ENT001</p>", ALLOW | {"ENT"}) == []
