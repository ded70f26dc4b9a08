"""The programme's workflow in a real browser: one application walked from the enterprise's draft through the
district pre-review, the expert review, the publicity period and the decision to the acceptance, each step by
its role through the dashboard's forms; then the register, the audit log and the capability maturity pages.

Set ZHIZAO_SCREENSHOTS=DIR to keep a screenshot of each page in DIR (docs/screenshots is made that way).
"""

from __future__ import annotations

import re

from test_server_browser import _login, browser, server, shots  # noqa: F401 (fixtures)

PDF = b"%PDF-1.4\n% zhizao browser test\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def _as(browser, server, user):  # noqa: F811
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    _login(page, server, user, lang="zh")
    return page


def _state(page) -> str:
    return page.locator("#state").inner_text()


def _open(page, server, app_id):  # noqa: F811
    page.goto(f"{server}/applications/{app_id}")
    assert page.locator("#state").count() == 1, page.content()[:500]


def _no_error(page):
    assert page.locator("p.error").count() == 0, page.locator("p.error").first.inner_text()


def test_one_application_from_submission_to_acceptance(server, browser, shots, tmp_path):  # noqa: F811
    ent, dist, office, assessor = (_as(browser, server, u) for u in ("usera", "dist", "ana", "ass"))
    # the enterprise: a draft, evidence, submission
    ent.goto(server + "/applications/new")
    shots(ent, "application-new.zh")
    ent.select_option("#sought", "demonstration_project")
    ent.fill("#f-name", "冲压车间数字化改造")
    ent.fill("#f-scope", "ENT001-WC1")
    ent.fill("#f-investment", "12000000")
    ent.fill("#f-start", "2025-03-01")
    ent.fill("#f-commissioning_end", "2025-09-30")
    ent.fill("#f-declared_efficiency", "0.25")
    ent.click("#create-application")
    ent.wait_for_url(re.compile(r".*/applications/[^/]+$"))
    _no_error(ent)
    app_id = ent.url.rsplit("/", 1)[-1]
    assert _state(ent) == "草稿"
    pdf = tmp_path / "方案.pdf"
    pdf.write_bytes(PDF)
    ent.set_input_files("#evidence-file", str(pdf))
    ent.click("#attach")
    _no_error(ent)
    assert ent.locator('a[href^="/evidence/"]').count() == 1
    shots(ent, "application-draft.zh")
    ent.click("#submit")
    _no_error(ent)
    assert _state(ent) == "区县初审"
    # the district reviewer: its queue, the pre-review
    dist.goto(server + "/applications")
    assert app_id in dist.content()
    shots(dist, "applications-queue-district.zh")
    _open(dist, server, app_id)
    dist.select_option("#pre-verdict", "approve")
    dist.fill("input[name=comment]", "材料齐全")
    dist.click("#pre-review")
    _no_error(dist)
    # the programme office assigns the assessor
    _open(office, server, app_id)
    office.fill("#assessor", "ass")
    office.click("#assign")
    _no_error(office)
    # the assessor declares no conflict of interest and scores the sheet
    _open(assessor, server, app_id)
    assessor.select_option("#conflict", "no")
    assessor.click("#declare")
    _no_error(assessor)
    for box in assessor.locator("input[id^=score-]").all():
        box.fill("8")
    assessor.fill("input[id^=comment-] >> nth=0", "方案可行")
    shots(assessor, "application-expert-review.zh")
    assessor.click("#score")
    _no_error(assessor)
    # the office closes the review; publicity with an objection that is answered; the decision
    _open(office, server, app_id)
    office.fill("input[name=publicity_days]", "0")
    office.click("#close-review")
    _no_error(office)
    assert _state(office) == "公示"
    office.fill("#objection", "车间建于2023年")
    office.click("#object")
    _no_error(office)
    office.fill("input[name=resolution]", "现场核实：2025年建成")
    office.click("button.resolve")
    _no_error(office)
    shots(office, "application-publicity.zh")
    office.click("#end-publicity")
    _no_error(office)
    office.select_option("#decision", "approved")
    office.select_option("select[name=level]", "municipal")
    office.click("#decide")
    _no_error(office)
    assert _state(office) == "已立项"
    # the enterprise asks for acceptance; the assessor confirms a declared criterion; the office accepts
    _open(ent, server, app_id)
    ent.click("#request-acceptance")
    _no_error(ent)
    _open(assessor, server, app_id)
    assessor.fill("form:has(button.confirm) >> nth=0 >> input[name=evidence]", "现场核查记录")
    assessor.click("button.confirm >> nth=0")
    _no_error(assessor)
    shots(assessor, "application-acceptance.zh")
    assert ">nan<" not in assessor.content()
    _open(office, server, app_id)
    office.select_option("#accepted", "yes")
    office.fill("form:has(#accept) >> input[name=reason]", "通过")
    office.click("#accept")
    _no_error(office)
    assert _state(office) == "已验收"
    shots(office, "application-accepted.zh")
    # the register followed, with the project's history, and the audit log shows every step
    office.goto(f"{server}/register/projects/{app_id}")
    assert "已验收" in office.content()
    shots(office, "register-project.zh")
    office.goto(server + "/register/projects?sort=-start")
    shots(office, "register-projects.zh")
    office.goto(f"{server}/audit?entity=application&record={app_id}")
    assert office.locator("tbody tr").count() >= 12
    shots(office, "audit.zh")
    ent.goto(server + "/maturity/ENT001")
    shots(ent, "maturity.zh")
    for p in (ent, dist, office, assessor):
        p.context.close()
