"""The application and review workflow as a state machine: one application from draft to acceptance, every
step refused in the wrong state, conflicts of interest, score sheets, publicity and objections, the register
updated on the way, every step in the audit log. (Roles and tenants are the server's: test_server_authz.)"""

from __future__ import annotations

import datetime as dt

import pytest

import zhizao
from zhizao.errors import Conflict, InputError, NotFound
from zhizao.portfolio import audit, workflow
from zhizao.portfolio.dates import today
from zhizao.portfolio.register import get_record, status_history


@pytest.fixture
def ws(tmp_path):
    w = zhizao.connect(tmp_path / "w.duckdb")
    (tmp_path / "e.csv").write_text("enterprise_id,name,district\nE1,渝鑫,璧山区\nE2,华宇,九龙坡区\n", "utf-8")
    (tmp_path / "g.csv").write_text("programme_id,name,year\n2025A,2025年第一批,2025\n", "utf-8")
    w.ingest("enterprises", tmp_path / "e.csv")
    w.ingest("programmes", tmp_path / "g.csv")
    yield w
    w.close()


DATA = {"name": "冲压车间数字化改造", "type": "数字化装备应用", "scope": "E1-WS1", "investment": 1.2e7,
        "start": "2025-03-01", "commissioning_end": "2025-09-30", "declared_efficiency": 0.25}


def test_one_application_from_submission_to_acceptance(ws):
    con = ws.con
    a = workflow.create(con, "E1", "demonstration_project", {"name": "x"}, actor="user:ent1", programme="2025A")
    aid = a["application_id"]
    assert a["state"] == "draft"
    with pytest.raises(InputError, match="cannot be submitted: type, start, commissioning_end missing"):
        workflow.submit(ws, aid, actor="user:ent1")
    workflow.edit(con, aid, DATA, actor="user:ent1")
    a = workflow.submit(ws, aid, actor="user:ent1")
    assert (a["state"], a["project_id"]) == ("submitted", aid)
    assert a["deadline"] == today() + dt.timedelta(days=15)
    p = get_record(con, "projects", aid)
    assert (p["status"], p["type"], p["start"], p["scope"]) == ("applied", "digital_equipment",
                                                                 dt.date(2025, 3, 1), "E1-WS1")
    with pytest.raises(Conflict, match=r"edit does not apply to application .* in state submitted"):
        workflow.edit(con, aid, {"name": "y"}, actor="user:ent1")
    with pytest.raises(InputError, match="give a reason for pre_return"):
        workflow.pre_review(con, aid, "return", actor="user:dist")
    workflow.pre_review(con, aid, "return", actor="user:dist", comment="attach the investment plan")
    assert workflow.get(con, aid)["state"] == "draft"
    workflow.submit(ws, aid, actor="user:ent1")
    a = workflow.pre_review(con, aid, "approve", actor="user:dist")
    assert a["state"] == "expert_review"
    # expert review: two assessors, one declares a conflict; scores need a declaration first
    workflow.assign(con, aid, "ass1", actor="user:ana")
    workflow.assign(con, aid, "ass2", actor="user:ana")
    with pytest.raises(Conflict, match="must declare a conflict of interest"):
        workflow.score(con, aid, "ass1", {"conditions": 8})
    workflow.declare(con, aid, "ass2", True, "former employee of E1")
    with pytest.raises(Conflict, match="declared a conflict of interest and takes no part"):
        workflow.score(con, aid, "ass2", {"conditions": 8})
    with pytest.raises(NotFound, match="ass3 is not an assessor"):
        workflow.declare(con, aid, "ass3", False)
    workflow.declare(con, aid, "ass1", False)
    with pytest.raises(InputError, match="criterion solution: 41 is not a score from 0 to 40"):
        workflow.score(con, aid, "ass1", {"solution": 41})
    workflow.score(con, aid, "ass1", {"conditions": (9, "all documents"), "solution": (30, "sound")})
    with pytest.raises(Conflict, match="the review cannot close: ass1: basis, results"):
        workflow.close_review(con, aid, actor="user:ana")
    workflow.score(con, aid, "ass1", {"results": (24, "verifiable from data"), "basis": (15, None)})
    s = workflow.review_summary(con, aid)
    assert s["mean_total"] == 9 + 30 + 24 + 15 and s["n_scored"] == 1
    assert [p["conflict"] for p in s["assessors"]] == [False, True]
    a = workflow.close_review(con, aid, actor="user:ana", publicity_days=7)
    assert (a["state"], a["publicity_start"], a["publicity_end"]) == ("publicity", today(),
                                                                       today() + dt.timedelta(days=7))
    # publicity: an objection must be answered, the period must be over
    oid = workflow.object_(con, aid, "the workshop was built in 2023", actor="user:ana", raised_by="anonymous")
    with pytest.raises(Conflict, match="publicity period runs until"):
        workflow.end_publicity(con, aid, actor="user:ana")
    with pytest.raises(Conflict, match=f"1 objections are not resolved: {oid}"):
        workflow.end_publicity(con, aid, actor="user:ana", on=today() + dt.timedelta(days=7))
    workflow.resolve(con, aid, oid, "checked: built 2025 (site visit)", actor="user:ana")
    a = workflow.end_publicity(con, aid, actor="user:ana", on=today() + dt.timedelta(days=7))
    assert a["state"] == "decision"
    a = workflow.decide(con, aid, "approved", actor="user:ana", level="municipal")
    assert a["state"] == "approved" and get_record(con, "projects", aid)["status"] == "approved"
    d = get_record(con, "designations", f"D-{aid}")
    assert (d["designation"], d["project_id"], d["level"], d["date"]) == ("demonstration_project", aid,
                                                                          "municipal", today())
    # acceptance
    a = workflow.request_acceptance(con, aid, actor="user:ent1")
    assert a["state"] == "acceptance" and get_record(con, "projects", aid)["status"] == "completed"
    v = workflow.acceptance_view(ws, aid)
    eff = next(r for r in v["results"] if r["indicator"] == "production_efficiency")
    assert (eff["declared"], eff["verified"]) == (0.25, None)
    a = workflow.accept(con, aid, True, actor="user:ana")
    assert a["state"] == "accepted" and get_record(con, "projects", aid)["status"] == "accepted"
    assert [h["status"] for h in status_history(con, aid)] == ["applied", "approved", "completed", "accepted"]
    steps = audit.entries(con, entity="application", record=aid)["action"].tolist()
    assert steps == ["create", "edit", "submit", "pre_return", "submit", "pre_approve", "assign", "assign",
                     "declare", "declare", "score", "score", "close_review", "object", "resolve", "end_publicity",
                     "decide", "request_acceptance", "accept"]
    assert audit.check_chain(con)[0]


def test_queues_and_wrong_states(ws):
    con = ws.con
    a1 = workflow.create(con, "E1", "digital_workshop", {"name": "焊装数字化车间", "scope": "E1-WS2"}, actor="u")
    a2 = workflow.create(con, "E2", "project", DATA, actor="u")
    workflow.submit(ws, a1["application_id"], actor="u")
    workflow.submit(ws, a2["application_id"], actor="u")
    assert workflow.queue(con, "district", district="bishan")["application_id"].tolist() == [a1["application_id"]]
    assert workflow.queue(con, "district", district="jiulongpo")["application_id"].tolist() == [a2["application_id"]]
    assert workflow.queue(con, "enterprise", enterprise_id="E1").empty
    for fn in (lambda: workflow.close_review(con, a1["application_id"], actor="x"),
               lambda: workflow.decide(con, a1["application_id"], "approved", actor="x"),
               lambda: workflow.accept(con, a1["application_id"], True, actor="x"),
               lambda: workflow.assign(con, a1["application_id"], "ass1", actor="x")):
        with pytest.raises(Conflict, match="does not apply to application"):
            fn()
    with pytest.raises(InputError, match="an application seeks one of"):
        workflow.create(con, "E1", "castle", {}, actor="u")
    with pytest.raises(NotFound):
        workflow.create(con, "E9", "project", {}, actor="u")
    # a recognition is decided into a designation; there is no acceptance of it
    workflow.pre_review(con, a1["application_id"], "approve", actor="d")
    workflow.assign(con, a1["application_id"], "ass1", actor="o")
    workflow.declare(con, a1["application_id"], "ass1", False)
    workflow.score(con, a1["application_id"], "ass1", {c["id"]: 1 for c in workflow.score_sheet()["criteria"]})
    assert workflow.queue(con, "assessor", assessor="ass1")["application_id"].tolist() == [a1["application_id"]]
    workflow.close_review(con, a1["application_id"], actor="o", publicity_days=0)
    workflow.end_publicity(con, a1["application_id"], actor="o")
    a = workflow.decide(con, a1["application_id"], "approved", actor="o", level="district")
    assert a["state"] == "accepted"
    assert get_record(con, "designations", f"D-{a1['application_id']}")["designation"] == "digital_workshop"
    with pytest.raises(InputError, match="give a reason for pre_reject"):
        workflow.pre_review(con, a2["application_id"], "reject", actor="d")
    a = workflow.pre_review(con, a2["application_id"], "reject", actor="d", comment="outside the programme")
    assert a["state"] == "rejected" and not a["overdue"] if "overdue" in a else a["state"] == "rejected"
