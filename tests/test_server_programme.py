"""The programme's server routes and pages: one application walked from draft to acceptance through the
dashboard's forms and through the API, the register's forms (create, update with differences, as of a date,
withdraw), evidence files (limits, hash, who may read them), capability maturity (import, questionnaire), and
an audit log that no route can rewrite. (Who may call which route: test_server_authz.)"""

from __future__ import annotations

import hashlib
import re

import pytest

import zhizao
from test_server_support import PASSWORD, A, all_routes, clone, make_client

pytest.importorskip("fastapi")

PDF = b"%PDF-1.4\n% zhizao test\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    from fastapi.testclient import TestClient

    from zhizao.server import accounts

    db = clone(tmp_path_factory.mktemp("programme") / "store.duckdb")
    with zhizao.connect(db) as ws:
        accounts.add_user(ws.con, "distb", PASSWORD, "district", district="jiangjin")
        accounts.add_user(ws.con, "ass2", PASSWORD, "assessor")
    base = make_client(db)
    clients = {}
    for u in ("root", "ana", "ass", "ass2", "usera", "userb", "dist", "distb"):
        c = TestClient(base.app, raise_server_exceptions=False)
        form = c.get("/login")  # the login form's CSRF token (main's login, tests/test_server_login.py)
        token = re.search(r'name="login_csrf" value="([^"]+)"', form.text).group(1)
        r = c.post("/login", data={"username": u, "password": PASSWORD, "next": "/plant", "login_csrf": token},
                   follow_redirects=False)
        assert r.status_code == 303, r.text
        c.cookies.set("zhizao_lang", "en")  # messages are asserted in English (test_messages checks zh)
        clients[u] = c
    yield clients
    base.app.state.server.close()


def _csrf(c, path="/plant") -> str:
    return re.search(r'name="csrf" value="([^"]+)"', c.get(path).text).group(1)


def post(c, path, data=None, files=None, expect=303):
    data = {**(data or {}), "csrf": _csrf(c)}
    r = c.post(path, data=data, files=files, follow_redirects=False)
    assert r.status_code == expect, (path, r.status_code, _error(r.text))
    return r


def _error(html: str) -> str:
    m = re.search(r'<p class="error"[^>]*>(.*?)</p>', html, re.S)
    return m.group(1) if m else html[:500]


def _state(c, app_id) -> str:
    return re.search(r'<strong id="state">([^<]+)</strong>', c.get(f"/applications/{app_id}?lang=en").text).group(1)


def _audit(db_client) -> list:
    with db_client.app.state.server.store.read() as rd:
        return rd.con.execute("SELECT seq, hash FROM audit_log ORDER BY seq").fetchall()


def test_one_application_through_the_dashboard(srv):
    ua, dist, ana, ass, ass2 = srv["usera"], srv["dist"], srv["ana"], srv["ass"], srv["ass2"]
    # the enterprise starts a draft, completes it, attaches evidence and submits it
    r = post(ua, "/applications/new", {"sought": "demonstration_project", "name": "冲压车间数字化改造",
                                       "type": "digital_equipment", "investment": "12000000"})
    app_id = r.headers["location"].rsplit("/", 1)[-1]
    assert _state(ua, app_id) == "Draft"
    post(ua, f"/applications/{app_id}/submit", expect=400)  # start and end of commissioning missing
    assert "cannot be submitted: start, commissioning_end missing" in _error(
        ua.post(f"/applications/{app_id}/submit", data={"csrf": _csrf(ua)}).text)
    post(ua, f"/applications/{app_id}/edit", {"name": "冲压车间数字化改造", "type": "digital_equipment",
                                              "start": "2025-03-01", "commissioning_end": "2025-09-30",
                                              "scope": "ENT001-WC1", "declared_efficiency": "0.25"})
    post(ua, f"/applications/{app_id}/evidence", {"purpose": "plan"}, files={"file": ("方案.pdf", PDF,
                                                                                        "application/pdf")})
    page = ua.get(f"/applications/{app_id}").text
    file_id = re.search(r'href="/evidence/([^"]+)"', page).group(1)
    assert hashlib.sha256(PDF).hexdigest()[:16] in page
    post(ua, f"/applications/{app_id}/submit")
    # the district reviewer finds it in its queue; the other district's reviewer does not see it
    assert app_id in dist.get("/applications").text.split("<h2>")[1]
    assert srv["distb"].get(f"/applications/{app_id}").status_code == 404
    post(srv["distb"], f"/applications/{app_id}/pre-review", {"verdict": "approve"}, expect=404)
    post(ana, f"/applications/{app_id}/pre-review", {"verdict": "approve"}, expect=403)  # a district's step
    post(dist, f"/applications/{app_id}/pre-review", {"verdict": "approve", "comment": "完整"})
    assert _state(ua, app_id) == "Expert review"
    # the office assigns two assessors; one declares a conflict, the other scores
    post(ana, f"/applications/{app_id}/assessors", {"assessor": "ass", "deadline": "2030-01-31"})
    post(ana, f"/applications/{app_id}/assessors", {"assessor": "ass2"})
    assert ass.get(f"/applications/{app_id}").status_code == 200
    post(ass2, f"/applications/{app_id}/declaration", {"conflict": "yes", "note": "former employee"})
    post(ass2, f"/applications/{app_id}/scores", {"score_conditions": "8"}, expect=409)
    post(ass, f"/applications/{app_id}/scores", {"score_conditions": "8"}, expect=409)  # no declaration yet
    post(ass, f"/applications/{app_id}/declaration", {"conflict": "no"})
    r = post(ass, f"/applications/{app_id}/scores", {"score_solution": "41"}, expect=400)
    assert "criterion solution: 41 is not a score from 0 to 40" in _error(r.text)
    post(ass, f"/applications/{app_id}/scores", {"score_conditions": "9", "comment_conditions": "齐全",
                                                 "score_solution": "30", "score_results": "24", "score_basis": "15"})
    page = ana.get(f"/applications/{app_id}?lang=en").text
    assert "Mean total of 1 complete score sheets: 78.0" in page
    # facts as the office reads them: a declared change as a percentage, the investment with separators; the
    # score sheet's criteria by their labels, not their codes
    assert re.search(r"Declared efficiency</dt>\s*<dd>25.0%</dd>", page) or ">25.0%<" in page
    assert ">12,000,000<" in page
    zh = ana.get(f"/applications/{app_id}?lang=zh").text
    assert "<td>conditions</td>" not in zh and "<td>ass</td><td>符合申报条件</td>" in zh
    ana.get(f"/applications/{app_id}?lang=en")  # the office reads on in English (the language is a cookie)
    post(ana, f"/applications/{app_id}/close-review", {"publicity_days": "0"})
    # publicity: an objection recorded and answered
    post(ana, f"/applications/{app_id}/objections", {"text": "车间建于2023年", "raised_by": "匿名"})
    r = post(ana, f"/applications/{app_id}/end-publicity", expect=409)
    assert "1 objections are not resolved" in _error(r.text)
    oid = re.search(rf'/applications/{app_id}/objections/([^/]+)/resolution', ana.get(f"/applications/{app_id}").text
                    ).group(1)
    post(ana, f"/applications/{app_id}/objections/{oid}/resolution", {"resolution": "现场核实：2025年建成"})
    post(ana, f"/applications/{app_id}/end-publicity")
    post(ana, f"/applications/{app_id}/decision", {"decision": "approved", "level": "municipal"})
    assert _state(ua, app_id) == "Approved"
    post(ua, f"/applications/{app_id}/acceptance-request")
    page = ass.get(f"/applications/{app_id}?lang=en").text
    assert "Acceptance: verified results beside the declared ones" in page
    crit = re.search(r'name="criterion" value="([^"]+)"', page).group(1)
    rs = re.search(r'name="ruleset" value="([^"]+)"', page).group(1)
    post(ass, f"/applications/{app_id}/confirmations", {"ruleset": rs, "criterion": crit, "confirmed": "yes",
                                                        "evidence": "现场核查记录"})
    post(ana, f"/applications/{app_id}/acceptance", {"accepted": "yes", "reason": "通过"})
    assert _state(ua, app_id) == "Accepted"
    # the register followed: the project with its status history, a designation
    page = ana.get(f"/register/projects/{app_id}?lang=en").text
    history = re.findall(r"<tr><td>([^<]+)</td><td>[^<]+</td><td>([^<]+)</td></tr>", page)
    users = {"usera", "dist", "ass", "ana", "root"}  # actors read as names, not user:NAME
    assert [st for st, who in history if who in users] == ["Applied", "Approved", "Completed", "Accepted"]
    assert not any(who.startswith("user:") for _st, who in history)
    assert ana.get(f"/register/designations/D-{app_id}").status_code == 200
    # every step is in the history, in order, by its actor
    with ana.app.state.server.store.read() as rd:
        from zhizao.portfolio import audit

        h = audit.entries(rd.con, entity="application", record=app_id)
        assert h["action"].tolist() == [
            "create", "edit", "submit", "pre_approve", "assign", "assign", "declare", "declare", "score",
            "close_review", "object", "resolve", "end_publicity", "decide", "request_acceptance", "accept"]
        assert h["actor"].tolist()[:9] == ["user:usera"] * 3 + ["user:dist"] + ["user:ana"] * 2 + [
            "user:ass2", "user:ass", "user:ass"]
        up = audit.entries(rd.con, entity="evidence", record=file_id)
        assert (up["action"].tolist(), up["actor"].tolist()) == (["upload"], ["user:usera"])
        assert audit.check_chain(rd.con)[0]
    # evidence: the enterprise, its district's reviewer, the assessors, administrators -- not analysts or others
    for who, status in (("usera", 200), ("dist", 200), ("ass", 200), ("root", 200), ("ana", 404), ("userb", 404),
                        ("distb", 404), ("ass2", 200)):
        r = srv[who].get(f"/evidence/{file_id}")
        assert r.status_code == status, who
        if status == 200:
            assert r.content == PDF and r.headers["x-content-sha256"] == hashlib.sha256(PDF).hexdigest()


def test_evidence_limits(srv, monkeypatch):
    ua = srv["usera"]
    r = post(ua, "/applications/new", {"sought": "project", "name": "x"})
    app_id = r.headers["location"].rsplit("/", 1)[-1]
    r = post(ua, f"/applications/{app_id}/evidence", files={"file": ("a.exe", b"MZ\x90\x00", "application/pdf")},
             expect=415)
    r = post(ua, f"/applications/{app_id}/evidence", files={"file": ("a.pdf", b"MZ\x90\x00", "application/pdf")},
             expect=415)
    assert "does not contain what its suffix says" in _error(r.text)
    monkeypatch.setenv("ZHIZAO_EVIDENCE_MAX_MB", "0.001")
    r = post(ua, f"/applications/{app_id}/evidence", files={"file": ("b.pdf", PDF + b" " * 2000, "application/pdf")},
             expect=413)
    post(srv["userb"], f"/applications/{app_id}/evidence", files={"file": ("c.pdf", PDF, "application/pdf")},
         expect=404)


def test_register_forms(srv):
    ana, ua = srv["ana"], srv["usera"]
    post(ana, "/register/enterprises/new", {"enterprise_id": "ENT009", "name": "重庆测试科技有限公司",
                                            "district": "璧山区", "industry": "39", "reason": "新入库"})
    page = ana.get("/register/enterprises/ENT009?lang=en").text
    assert "Bishan District" in page and "新入库" in page
    r = post(ana, "/register/enterprises/new", {"enterprise_id": "ENT010", "name": "x", "district": "火星区"},
             expect=400)
    assert "火星区" in _error(r.text)
    # two digital workshops of one enterprise with empty scopes stay two
    for sid in ("ENT009-WS1", "ENT009-WS2"):
        post(ana, "/register/scopes/new", {"scope_id": sid, "enterprise_id": "ENT009", "kind": "workshop"})
    assert ana.get("/register/scopes?q=ENT009").text.count('href="/register/scopes/ENT009-WS') == 2
    post(ana, "/register/enterprises/ENT009", {"name": "重庆测试科技股份有限公司", "district": "璧山区",
                                               "industry": "39", "reason": "更名"})
    page = ana.get("/register/enterprises/ENT009?lang=en").text
    assert "name: 重庆测试科技有限公司 → 重庆测试科技股份有限公司" in page
    # an enterprise user sees its own register, changes nothing
    post(ua, "/register/enterprises/ENT001", {"name": "hijack"}, expect=403)
    assert ua.get("/register/enterprises/ENT009").status_code == 404
    assert "hijack" not in ana.get("/register/enterprises/ENT001").text
    # withdraw needs a reason
    r = post(ana, "/register/scopes/ENT009-WS2/withdraw", {"reason": ""}, expect=400)
    post(ana, "/register/scopes/ENT009-WS2/withdraw", {"reason": "重复登记"})
    assert ana.get("/register/scopes/ENT009-WS2").status_code == 404
    # lists: searched, sorted, paginated
    page = ana.get("/register/projects?sort=-project_id&lang=en").text
    ids = re.findall(r'href="/register/projects/(P\d+)"', page)
    assert ids == sorted(ids, reverse=True) and "Rows 1-" in page
    assert ana.get("/register/projects?page=0").status_code == 400
    assert ana.get("/register/nothing").status_code == 404


def test_register_as_of_a_date(srv):
    from zhizao.portfolio.dates import store_zone, today

    ana = srv["ana"]
    post(ana, "/register/programmes/new", {"programme_id": "2031A", "name": "2031年第一批", "year": "2031"})
    with ana.app.state.server.store.read() as rd:
        day = today(store_zone(rd.con))
    yesterday = (day.toordinal() - 1)
    import datetime as dt

    y = dt.date.fromordinal(yesterday).isoformat()
    page = ana.get(f"/register/programmes/2031A?as_of={y}&lang=en").text
    assert "The record did not exist at the end of that date." in page
    page = ana.get(f"/register/programmes/2031A?as_of={day.isoformat()}&lang=en").text
    assert 'id="record-then"' in page and "2031年第一批" in page.split('id="record-then"')[1]
    assert ana.get("/register/programmes/2031A?as_of=yesterday").status_code == 400


def test_maturity_import_and_questionnaire(srv):
    ana, ua = srv["ana"], srv["usera"]
    csv = "企业编号,评估日期,等级,得分\nENT001,2025-06-30,二级,2.6\nNOBODY,2025-06-30,2,2.0\n".encode("gbk")
    r = ana.post("/maturity/import", data={"csrf": _csrf(ana)}, files={"file": ("自诊断.csv", csv, "text/csv")})
    assert r.status_code == 201, r.text
    assert "Imported 1 assessments; 1 lines rejected." in r.text and "NOBODY" in r.text
    page = ua.get("/maturity/ENT001?lang=en").text
    assert re.search(r'id="current-level">2 规范级<', page)
    assert "digital equipment share" in page
    r = ua.post("/maturity/import", data={"csrf": _csrf(ua)}, files={"file": ("x.csv", csv, "text/csv")})
    assert r.status_code == 403
    # the application page shows the level
    r = post(ua, "/applications/new", {"sought": "demonstration_project", "name": "y"})
    page = ua.get(r.headers["location"] + "?lang=en").text
    assert "Level 2 规范级" in page
    # the questionnaire: the enterprise answers, others may not
    post(srv["userb"], "/maturity/ENT001/questionnaire", {"system": "MES"}, expect=404)
    post(ana, "/maturity/ENT001/questionnaire", {"system": "MES"}, expect=403)


def test_questionnaire_answers_are_form_text_not_files(srv, tmp_path, monkeypatch):
    """An answer posted as a file part is no answer (it was scored as float(UploadFile): HTTP 500)."""
    from test_server_authz import _filled_model
    from zhizao.portfolio import maturity

    monkeypatch.setenv("ZHIZAO_MATURITY", str(_filled_model(tmp_path)))
    ua = srv["usera"]

    def answers():
        with ua.app.state.server.store.read() as rd:
            return maturity.assessments(rd.con, "ENT001").iloc[0]["answers"]

    try:
        post(ua, "/maturity/ENT001/questionnaire", {"system": "MES", "a_T-1-1": " 全部满足 "})
        assert answers() == {"T-1-1": 1.0}
        post(ua, "/maturity/ENT001/questionnaire", {"system": "MES"}, files={"a_T-1-1": ("a.txt", b"1", "text/plain")})
        assert answers() == {}
    finally:
        maturity.model.cache_clear()


def test_no_route_rewrites_the_audit_log(srv):
    """After every route of the application was called by the administrator (with whatever it takes),
    the entries written before are unchanged and the hash chain holds."""
    from fastapi.routing import APIRoute

    root = srv["root"]
    before = _audit(root)
    assert len(before) > 5
    csrf = _csrf(root)
    token = root.post("/api/v1/auth/login", json={"username": "root", "password": PASSWORD}).json()
    h = {"Authorization": f"Bearer {token['token']}"}
    for route in all_routes(root.app):
        if not isinstance(route, APIRoute) or ("audit" not in route.path and "register" not in route.path):
            continue
        for method in route.methods - {"HEAD", "GET"}:
            path = re.sub(r"\{[^}]+\}", "audit_log", route.path)
            if path.startswith("/api/"):
                root.request(method, path, headers=h, json={"values": {"seq": 1}, "reason": "x"})
            else:
                root.request(method, path, data={"csrf": csrf, "seq": "1", "reason": "x"})
    after = _audit(root)
    assert after[:len(before)] == before
    with root.app.state.server.store.read() as rd:
        from zhizao.portfolio import audit

        assert audit.check_chain(rd.con)[0]
    methods = {m for r in all_routes(root.app) if isinstance(r, APIRoute) and "/audit" in r.path
               for m in r.methods}
    assert methods <= {"GET", "HEAD"}


def test_register_pages_show_the_investment_in_10k_yuan_on_chinese_pages(srv):
    # the programme's documents write 总投资（万元）; the register stores yuan (and its forms and import
    # templates keep yuan). P0001's investment, by hand from the store: shown / 10,000 on Chinese pages
    ana = srv["ana"]
    with ana.app.state.server.store.read() as rd:
        inv = rd.con.execute("SELECT investment FROM projects WHERE project_id = 'P0001'").fetchone()[0]
    assert inv and inv > 1e4
    wan = f"{inv / 1e4:,.0f}" if inv % 1e4 == 0 else f"{inv / 1e4:,.2f}"
    zh = ana.get("/register/projects/P0001?lang=zh").text
    assert re.search(rf"总投资（万元）</dt>\s*<dd>{re.escape(wan)}</dd>", zh), zh[zh.find("总投资"):][:200]
    assert "总投资（元）" not in zh.split("<form")[0]
    en = ana.get("/register/projects/P0001?lang=en").text
    assert f"{inv:,.0f}" in en  # English pages: yuan, as stored


def test_the_maturity_page_says_in_words_why_it_cannot_score_yet(srv):
    """The page showed the model file's note with its YAML keys ("在 requirements 中逐条填写（id、zh、en、clause、
    weight）") to every reader; an enterprise reads why in words, the programme office also where to enter them."""
    from zhizao.i18n import translations
    from zhizao.server.programme_views import MODEL_FILE, REQUIREMENTS_MISSING, REQUIREMENTS_WHERE

    for lang in ("zh", "en"):
        tr = translations(lang)

        def note(user, lang=lang):
            html = srv[user].get(f"/maturity/{A}", params={"lang": lang}).text
            m = re.search(r'<p class="note" id="requirements-note">(.*?)</p>', html, re.S)
            assert m, html[:300]
            return m.group(1)
        enterprise, office = note("usera"), note("root")
        assert enterprise == tr.gettext(REQUIREMENTS_MISSING)
        assert office == tr.gettext(REQUIREMENTS_MISSING) + " " + tr.gettext(REQUIREMENTS_WHERE) % {"file": MODEL_FILE}
        for text in (enterprise, office):
            assert "requirements 中" not in text and "weight" not in text


def test_actors_read_as_people_name_them():
    from zhizao.server.views import Page

    assert [Page("zh").who(a) for a in ("user:root", "key:k-1", "cli:ops", "system", None)] == [
        "root", "API 密钥 k-1", "ops（命令行）", "system", ""]
    assert Page("en").who("key:k-1") == "API key k-1"


def test_programme_page_charts_are_requests_of_their_own(srv):
    """The programme page links its charts (drawn apart, so its figures do not wait for the drawing); each is
    the notice's chart of the same filters, in the reader's language; an unknown one is 404."""
    from xml.etree import ElementTree

    from zhizao.portfolio.bulletin import bulletin_charts
    from zhizao.portfolio.stats import programme_statistics
    from zhizao.server import views

    c = srv["ana"]
    page = c.get("/programme").text
    srcs = dict(re.findall(r'<img src="(/programme/chart/[a-z]+\.svg[^"]*)" alt="[^"]+" id="chart-([a-z]+)"',
                           page))
    srcs = {v: k for k, v in srcs.items()}
    assert set(srcs) == {"district", "year", "indicators"}, srcs
    assert "<svg" not in page
    server = c.app.state.server
    with server.store.read() as rd:
        expected = bulletin_charts(programme_statistics(rd.ws), "en")
    for name, url in srcs.items():
        r = c.get(url)
        assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
        # an SVG document of its own: a browser draws an <img> of image/svg+xml only with its namespace
        root = ElementTree.fromstring(r.text)
        assert root.tag == "{http://www.w3.org/2000/svg}svg", root.tag
        # the notice's chart, in the reader's language (English here)
        assert r.text == views.standalone_svg(expected[name])
    # the filters reach the chart: a district's page draws that district only
    filtered = c.get("/programme?district=jiulongpo").text
    url = re.search(r'<img src="([^"]+)" alt="[^"]+" id="chart-district"', filtered).group(1)
    assert url == "/programme/chart/district.svg?district=jiulongpo&amp;lang=en"
    svg = c.get(url.replace("&amp;", "&")).text
    assert "Jiulongpo" in svg and "Jiangjin" not in svg and "Jiangjin" in expected["district"]
    r = c.get("/programme/chart/nothing.svg")
    assert r.status_code == 404 and "nothing" in r.text
