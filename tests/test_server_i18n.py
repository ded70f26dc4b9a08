"""The dashboard's messages are in the Babel catalogues (Simplified Chinese translated), and pages are
formatted for the chosen locale."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from test_server_support import bearer, clone, login, make_client

pytest.importorskip("fastapi")

SERVER = Path(__file__).resolve().parent.parent / "src" / "zhizao" / "server"
LOCALE = Path(__file__).resolve().parent.parent / "src" / "zhizao" / "locale"


def _server_msgids() -> set[str]:
    ids = set()
    for f in sorted(SERVER.glob("*.py")):
        for _l, msg, _c, _x in extract_from_file("python", str(f), keywords={"_": None, "N_": None}):
            ids.add(msg if isinstance(msg, str) else msg[0])
    for f in sorted((SERVER / "templates").glob("*.j2")):
        for _l, msg, _c, _x in extract_from_file("jinja2.ext:babel_extract", str(f), keywords={"_": None},
                                                 options={"extensions": "jinja2.ext.i18n"}):
            ids.add(msg if isinstance(msg, str) else msg[0])
    return {i for i in ids if i}


def test_catalogues_cover_the_server():
    ids = _server_msgids()
    assert len(ids) > 150
    from zhizao.i18n import catalogue_files

    for lang in ("zh", "en"):
        have = {}
        for path in catalogue_files(lang):  # zhizao.po and the catalogues merged into it (its msgids win)
            with open(path, "rb") as f:
                cat = read_po(f)
            for m in cat:
                if m.id:
                    have.setdefault(m.id if isinstance(m.id, str) else m.id[0], m)
        missing = sorted(ids - set(have))
        assert not missing, (lang, missing[:10])
        if lang == "zh":
            for mid in ids:
                s = have[mid].string
                s = s if isinstance(s, str) else s[0]
                assert s, mid
                assert set(re.findall(r"%\(\w+\)s", mid)) == set(re.findall(r"%\(\w+\)s", s)), mid
                # the templates' gettext always %-formats: a lone % is an error on the page
                assert not re.search(r"%(?![(%])", s.replace("%%", "")), (mid, s)


def test_pages_follow_the_language(tmp_path):
    client = make_client(clone(tmp_path / "s.duckdb"))
    try:
        h = bearer(login(client, "ana"))
        zh = client.get("/projects", headers=h)
        assert zh.status_code == 200 and 'lang="zh-CN"' in zh.text and "项目" in zh.text
        assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日", zh.text)  # dates for zh_CN
        en = client.get("/projects?lang=en", headers=h)
        assert 'lang="en"' in en.text and "Commissioning end" in en.text
        assert re.search(r"[A-Z][a-z]{2} \d{1,2}, \d{4}", en.text)  # dates for en
        assert en.cookies.get("zhizao_lang") == "en"
        client.cookies.set("zhizao_lang", "en")
        assert "Commissioning end" in client.get("/projects", headers=h).text  # remembered
    finally:
        client.app.state.server.close()


def test_the_project_page_shows_verifications_in_the_language(tmp_path):
    from markupsafe import escape

    import zhizao
    from test_server_support import PROJECT_B

    db = clone(tmp_path / "s.duckdb")
    with zhizao.connect(db) as ws:
        from zhizao.portfolio.registry import latest_verifications
        from zhizao.verify.result import VerificationResult

        stored = [VerificationResult.from_dict(r) for r in latest_verifications(ws, [PROJECT_B])["result"]]
    assert stored
    client = make_client(db)
    try:
        h = bearer(login(client, "ana"))
        zh = client.get(f"/projects/{PROJECT_B}", headers=h).text
        en = client.get(f"/projects/{PROJECT_B}?lang=en", headers=h).text
        for r in stored:
            for text in (r.method, r.interval_method, str(r.estimand)):
                assert text and str(escape(text)) not in zh and str(escape(text)) in en
            assert str(escape(r.method_text("zh"))) in zh and str(escape(r.interval_text("zh"))) in zh
            for w in r.warnings:
                assert str(escape(w.text("zh"))) in zh and str(escape(w.text("en"))) not in zh
        assert "Degrees of freedom" in en and "自由度" in zh and "Degrees of freedom" not in zh
    finally:
        client.app.state.server.close()


def test_every_quarantine_rule_has_a_label_in_both_languages():
    """The data page shows each rejected record's rule by its label; a rule without one showed its code
    (``malformed_topic`` of a live source on a Chinese page, found by a new user)."""
    from zhizao.i18n import translations
    from zhizao.ingest.rules import RULES
    from zhizao.server.views import RULE_LABELS, Page

    missing = sorted(set(RULES) - set(RULE_LABELS))
    assert not missing, missing
    zh = Page("zh")
    untranslated = [r for r in RULES if zh.rule_label(r) == RULE_LABELS[r] or not zh.rule_label(r)]
    assert not untranslated, untranslated
    assert zh.rule_label("malformed_topic") == "主题格式错误"
    assert translations("en").gettext(RULE_LABELS["malformed_topic"]) == "Malformed topic"


def test_an_unknown_plant_entity_is_not_found_not_without_data(tmp_path):
    """A mistyped site id answered "no data in this range", which sends a user looking at the dates; it is
    404 "no such entity" (the answer a tenant gets for another tenant's id); a known site is shown for any
    range."""
    from test_server_support import SITE_A, bearer, clone, login, make_client

    client = make_client(clone(tmp_path / "s.duckdb"))
    try:
        root = bearer(login(client, "root"))
        r = client.get("/plant/site/S9?lang=zh", headers=root)
        assert r.status_code == 404 and "S9" in r.text and "没有数据" not in r.text
        usera = bearer(login(client, "usera"))
        other = client.get("/plant/site/ENT002-S1?lang=zh", headers=usera)
        assert other.status_code == 404 and _main_text(other) == _main_text(r).replace("S9", "ENT002-S1")
        r = client.get(f"/plant/site/{SITE_A}?from=2000-01-01&to=2000-01-02&lang=zh", headers=root)
        assert r.status_code == 200  # a known site: its page, for a range without data
    finally:
        client.app.state.server.close()


def _main_text(r) -> str:
    import re

    return re.sub(r"\s+", " ", r.text.split("<main>")[1].split("</main>")[0])


def test_no_page_of_the_dashboard_is_named_like_a_level_of_the_hierarchy():
    """"工厂" named both the Plant page and the site level, so a breadcrumb "工厂 › 工厂 ENT001-S1" read as one
    thing twice; the page is 生产看板 (docs/glossary.md), and no page's name is a level's name in either
    language."""
    from zhizao.i18n import translations
    from zhizao.server.pages import NAV
    from zhizao.server.views import LEVEL_LABELS, Page

    for lang in ("zh", "en"):
        pg = Page(lang)
        levels = {pg.level(lv) for lv in LEVEL_LABELS}
        pages = {translations(lang).gettext(label) for _k, _h, label in NAV}
        pages |= {translations(lang).gettext(m) for m in ("Plant view", "Back to the plant view")}
        assert not levels & pages, (lang, levels & pages)
    zh = translations("zh").gettext
    assert Page("zh").level("site") == "工厂"
    assert zh("Plant") == zh("Plant view") == "生产看板" and zh("Back to the plant view") == "返回生产看板"
    glossary = (Path(__file__).resolve().parent.parent / "docs" / "glossary.md").read_text(encoding="utf-8")
    assert "| site | 工厂 |" in glossary and "| 生产看板 |" in glossary


@pytest.mark.parametrize("period,label", [("day", r"\d{4}-\d\d-\d\d"), ("week", r"\d{4}-\d\d-\d\d"),
                                          ("month", r"\d{4}-\d\d")])
def test_the_entity_pages_time_axes_have_the_periods_format(tmp_path, period, label):
    """Every chart of an entity's page with a time axis (OEE trend, energy) is labelled by the period's format
    in Chinese, never Vega's default ("周六 05", "03 上午")."""
    from test_server_support import SITE_A

    client = make_client(clone(tmp_path / "s.duckdb"))
    try:
        root = bearer(login(client, "root"))
        for name in ("trend-oee", "trend-energy"):
            r = client.get(f"/plant/site/{SITE_A}/chart/{name}.svg?period={period}&lang=zh", headers=root)
            assert r.status_code == 200, (name, r.text[:300])
            texts = [re.sub(r"<[^>]+>", "", t).strip() for t in re.findall(r"<text[^>]*>(.*?)</text>", r.text, re.S)]
            assert not [t for t in texts if re.search(r"周[一二三四五六日]|上午|下午", t)], (name, texts)
            dates = [t for t in texts if re.fullmatch(label, t)]
            other_times = [t for t in texts if re.fullmatch(r"[\d :-]*\d-\d[\d :-]*", t) and t not in dates]
            assert len(set(dates)) >= 2 and not other_times, (name, period, texts)
    finally:
        client.app.state.server.close()
