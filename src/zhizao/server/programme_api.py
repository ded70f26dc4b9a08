"""The programme's REST API (``/api/v1``): the register, the audit log, applications and their review, evidence
files, capability maturity, recognition rule sets and confirmations.

Every route goes through the principal's :class:`~zhizao.server.access.TenantView`, which decides who may see
and do what (:mod:`zhizao.server.access`); writes run under the store's write lock, say what they change
(``register``) and are appended to the audit log by the stage itself. Lists take ``page``, ``size``, ``q``
(search) and ``sort`` (``-column``: descending).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from fastapi import Path as PathParam

from zhizao.server.answers import json_response, table_response
from zhizao.server.deps import View, get_server
from zhizao.server.models import Fmt
from zhizao.server.programme_models import (
    AcceptanceAnswer,
    AcceptanceBody,
    ApplicationAnswer,
    ApplicationBody,
    ApplicationDetail,
    ApplicationEdit,
    ApplicationRow,
    AssignBody,
    AuditCheck,
    CloseReviewBody,
    ConfirmAnswer,
    ConfirmBody,
    ConflictRow,
    DecisionBody,
    DeclarationBody,
    EvidenceOut,
    HistoryRow,
    ImportAnswer,
    MaturityAnswer,
    ObjectionAnswer,
    ObjectionBody,
    Page,
    PreReviewBody,
    QuestionnaireBody,
    ReasonBody,
    RecordAnswer,
    RecordBody,
    RegisterTable,
    ResolutionBody,
    RulesetRow,
    ScoresBody,
    VocabularyOut,
    VocabularyRow,
)

router = APIRouter(prefix="/api/v1")

Text = Annotated[str | None, Query(max_length=200)]
PageNo = Annotated[int, Query(ge=1, le=100000)]
Size = Annotated[int, Query(ge=1, le=500)]
Key = Annotated[str, PathParam(max_length=400)]
AppId = Annotated[str, PathParam(max_length=40)]


def _v(x):
    return x.value if hasattr(x, "value") else x


def _json(obj, status: int = 200) -> Response:
    return json_response(obj, status)


def _page(df, page, size, q, sort, columns=None) -> dict:
    from zhizao.portfolio.listing import page as paginate

    p = paginate(df, search=q, columns=columns, sort=sort, number=page, size=size)
    return {**p, "rows": p["rows"]}


def _write(request: Request, fn, touched=("register",)):
    """Run ``fn(ws)`` under the store's write lock, declaring what it changes."""
    s = get_server(request)
    with s.store.write() as ws:
        s.store.touch(*touched)
        return fn(ws)


# -- vocabularies and the register ------------------------------------------------------------------------

@router.get("/vocabularies", tags=["register"], response_model=list[VocabularyRow],
            summary="The controlled vocabularies of the register")
def vocabularies(view: View):
    from zhizao.portfolio.vocabularies import names, vocabulary

    return _json([{"vocabulary": n, "title": vocabulary(n).title, "entries": len(vocabulary(n).entries),
                   "version": vocabulary(n).version} for n in names()])


@router.get("/vocabularies/{name}", tags=["register"], response_model=VocabularyOut,
            summary="One vocabulary: codes with Chinese and English labels, and its source")
def vocabulary_one(view: View, name: str = PathParam(..., max_length=50)):
    from zhizao.portfolio.vocabularies import vocabulary

    return _json(vocabulary(name).to_dict())


@router.get("/register/template.xlsx", tags=["register"], response_class=Response,
            responses={200: {"content": {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                "schema": {"type": "string", "format": "binary"}}}}},
            summary="The import template: one sheet per register table, vocabularies as drop-downs")
def register_template(view: View):
    import tempfile
    from pathlib import Path

    from zhizao.portfolio.import_templates import write_template

    with tempfile.TemporaryDirectory(prefix="zhizao-template-") as d:
        data = write_template(Path(d) / "t.xlsx").read_bytes()
    return Response(data, media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": 'attachment; filename="register-template.xlsx"'})


@router.get("/register/{table}", tags=["register"], response_model=Page,
            summary="Records of a register table you may see: paginated, searched, sorted")
def register_list(view: View, table: RegisterTable, page: PageNo = 1, size: Size = 50, q: Text = None,
                  sort: Text = None, as_of: Text = None, format: Fmt = Fmt.json):
    from zhizao.portfolio.register import snapshot

    t = _v(table)
    if as_of:
        view.require_office()
        df = snapshot(view.read.con, t, as_of)
    else:
        df = view.register_rows(t)
    if _v(format) == "csv":
        return table_response(df, format)
    return _json(_page(df, page, size, q, sort))


@router.get("/register/{table}/{key}", tags=["register"], response_model=RecordAnswer,
            summary="One record (as_of: as it was at the end of that date)")
def register_get(view: View, table: RegisterTable, key: Key, as_of: Text = None):
    t = _v(table)
    rec = view.register_as_of(t, key, as_of) if as_of else view.register_record(t, key)
    if rec is None:
        from zhizao.server.access import NO_RECORD_VISIBLE
        from zhizao.server.errors import NotFound

        raise NotFound(NO_RECORD_VISIBLE, table=t, key=key)
    return _json({"table": t, "record": rec})


@router.get("/register/{table}/{key}/history", tags=["register"], response_model=list[HistoryRow],
            summary="Every change of one record: who, when, what, why")
def register_history(view: View, table: RegisterTable, key: Key):
    return _json(view.register_history(_v(table), key))


@router.post("/register/{table}", tags=["register"], status_code=201, response_model=RecordAnswer,
             summary="Create a record (programme office; validated like a loaded file; audited)")
def register_create(request: Request, view: View, table: RegisterTable, body: RecordBody):
    from zhizao.portfolio.register import create_record

    t = _v(table)
    view.require_register_write(t)
    rec = _write(request, lambda ws: create_record(ws.con, t, body.values, actor=view.actor, reason=body.reason,
                                                   source="api"))
    return _json({"table": t, "record": rec}, 201)


@router.patch("/register/{table}/{key}", tags=["register"], response_model=RecordAnswer,
              summary="Update a record (programme office): the differences are returned and audited")
def register_update(request: Request, view: View, table: RegisterTable, key: Key, body: RecordBody):
    from zhizao.portfolio.register import update_record

    t = _v(table)
    view.require_register_write(t)
    rec, ch = _write(request, lambda ws: update_record(ws.con, t, key, body.values, actor=view.actor,
                                                       reason=body.reason, source="api"))
    return _json({"table": t, "record": rec, "changes": {c: [b, a] for c, (b, a) in ch.items()}})


@router.delete("/register/{table}/{key}", tags=["register"], response_model=RecordAnswer,
               summary="Withdraw a record (programme office; a reason is required; the history stays)")
def register_withdraw(request: Request, view: View, table: RegisterTable, key: Key,
                      reason: str = Query(..., max_length=2000)):
    from zhizao.portfolio.register import withdraw_record

    t = _v(table)
    view.require_register_write(t)
    rec = _write(request, lambda ws: withdraw_record(ws.con, t, key, actor=view.actor, reason=reason,
                                                     source="api"))
    return _json({"table": t, "record": rec})


# -- the audit log --------------------------------------------------------------------------------------

@router.get("/audit", tags=["register"], response_model=Page,
            summary="The audit log, latest first (programme office): who changed what, when and why")
def audit_log(view: View, entity: Text = None, record: Text = None, actor: Text = None, action: Text = None,
              since: Text = None, until: Text = None, q: Text = None, page: PageNo = 1, size: Size = 50):
    rows, total = view.audit_entries(entity=entity, record=record, actor=actor, action=action, since=since,
                                     until=until, search=q, limit=size, offset=(page - 1) * size, descending=True)
    pages = max(1, -(-total // size))
    return _json({"rows": rows.drop(columns=["prev"]), "total": total, "page": page, "pages": pages, "size": size,
                  "sort": "-seq", "search": q})


@router.get("/audit/check", tags=["register"], response_model=AuditCheck,
            summary="Recompute the audit log's hash chain (programme office)")
def audit_check(view: View):
    ok, n, problem = view.audit_check()
    return _json({"ok": ok, "entries": n, "problem": problem.text("en") if problem else None})


# -- applications ---------------------------------------------------------------------------------------

@router.get("/applications", tags=["workflow"], response_model=Page,
            summary="Applications you may see: paginated, searched, sorted")
def applications(view: View, state: Text = None, page: PageNo = 1, size: Size = 50, q: Text = None,
                 sort: Text = None):
    df = view.applications()
    if state:
        df = df[df["state"] == state]
    return _json(_page(df, page, size, q, sort, ("application_id", "name", "enterprise_id", "project_id")))


@router.get("/applications/queue", tags=["workflow"], response_model=list[ApplicationRow],
            summary="What waits for your role, deadline first")
def queue(view: View):
    return _json(view.queue())


@router.post("/applications", tags=["workflow"], status_code=201, response_model=ApplicationAnswer,
             summary="Start an application (enterprise users)")
def application_create(request: Request, view: View, body: ApplicationBody):
    from zhizao.portfolio import workflow

    ent = view.require_apply(body.enterprise_id)
    app = _write(request, lambda ws: workflow.create(ws.con, ent, _v(body.sought), body.data, actor=view.actor,
                                                     programme=body.programme, project_id=body.project_id))
    return _json({"application": app}, 201)


def _steps(view, app) -> list[str]:
    from zhizao.portfolio.workflow import STEPS

    return [a for a, s in STEPS.items() if app["state"] in s.sources and view.may_take(app, a)]


@router.get("/applications/{app_id}", tags=["workflow"], response_model=ApplicationDetail,
            summary="An application with its review, evidence, history, maturity level and eligibility")
def application_get(view: View, app_id: AppId):
    from zhizao.portfolio import workflow

    app = view.application(app_id)
    d = workflow.detail(view.ws, app_id)
    d["evidence"] = view.evidence_list(app_id)
    d["eligibility"] = [{**r, "basis": r["basis"].text("en")} for r in d["eligibility"]]
    d["history"] = d["history"].drop(columns=["prev", "hash"])
    d["steps"] = _steps(view, app)
    return _json(d)


@router.patch("/applications/{app_id}", tags=["workflow"], response_model=ApplicationAnswer,
              summary="Change a draft (the enterprise)")
def application_edit(request: Request, view: View, app_id: AppId, body: ApplicationEdit):
    from zhizao.portfolio import workflow

    view.require_step(app_id, "edit")
    return _json({"application": _write(request, lambda ws: workflow.edit(ws.con, app_id, body.data,
                                                                          actor=view.actor))})


def _step(request, view, app_id: str, action: str, fn) -> Response:
    view.require_step(app_id, action)
    app = _write(request, fn)
    return _json({"application": app})


@router.post("/applications/{app_id}/submit", tags=["workflow"], response_model=ApplicationAnswer,
             summary="Submit a draft (the enterprise): the project is registered as applied")
def application_submit(request: Request, view: View, app_id: AppId):
    from zhizao.portfolio import workflow

    return _step(request, view, app_id, "submit", lambda ws: workflow.submit(ws, app_id, actor=view.actor))


@router.post("/applications/{app_id}/pre-review", tags=["workflow"], response_model=ApplicationAnswer,
             summary="District pre-review: approve, return (with what to change) or reject")
def application_pre_review(request: Request, view: View, app_id: AppId, body: PreReviewBody):
    from zhizao.portfolio import workflow

    verdict = _v(body.verdict)
    action = {"approve": "pre_approve", "return": "pre_return", "reject": "pre_reject"}[verdict]
    return _step(request, view, app_id, action,
                 lambda ws: workflow.pre_review(ws.con, app_id, verdict, actor=view.actor, comment=body.comment))


def _date(name: str, value: str | None) -> dt.date | None:
    """A YYYY-MM-DD field of a request body; anything else is a 400, not a server error."""
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        from zhizao.server.errors import BadRequest
        from zhizao.server.programme_web import BAD_DATE_FIELD

        raise BadRequest(BAD_DATE_FIELD, name=name, value=value[:64]) from None


@router.post("/applications/{app_id}/assessors", tags=["workflow"], response_model=ApplicationAnswer,
             summary="Assign an assessor to the expert review (programme office)")
def application_assign(request: Request, view: View, app_id: AppId, body: AssignBody):
    from zhizao.portfolio import workflow

    deadline = _date("deadline", body.deadline)
    return _step(request, view, app_id, "assign",
                 lambda ws: workflow.assign(ws.con, app_id, body.assessor, actor=view.actor, deadline=deadline))


@router.delete("/applications/{app_id}/assessors/{assessor}", tags=["workflow"], response_model=ApplicationAnswer,
               summary="Withdraw an assessor from the expert review (programme office)")
def application_unassign(request: Request, view: View, app_id: AppId,
                         assessor: str = PathParam(..., max_length=64), reason: Text = None):
    from zhizao.portfolio import workflow

    return _step(request, view, app_id, "unassign",
                 lambda ws: workflow.unassign(ws.con, app_id, assessor, actor=view.actor, reason=reason))


@router.post("/applications/{app_id}/declaration", tags=["workflow"], response_model=ApplicationAnswer,
             summary="An assessor's declaration of a conflict of interest (or none)")
def application_declare(request: Request, view: View, app_id: AppId, body: DeclarationBody):
    from zhizao.portfolio import workflow

    name = view.access.principal.name
    return _step(request, view, app_id, "declare",
                 lambda ws: workflow.declare(ws.con, app_id, name, body.conflict, body.note,
                                                    actor=view.actor))


@router.post("/applications/{app_id}/scores", tags=["workflow"], response_model=ApplicationAnswer,
             summary="An assessor's score sheet: a score and a comment per criterion")
def application_score(request: Request, view: View, app_id: AppId, body: ScoresBody):
    from zhizao.portfolio import workflow

    name = view.access.principal.name
    scores = {c: (x.score, x.comment) for c, x in body.scores.items()}
    return _step(request, view, app_id, "score",
                 lambda ws: workflow.score(ws.con, app_id, name, scores, actor=view.actor))


@router.post("/applications/{app_id}/close-review", tags=["workflow"], response_model=ApplicationAnswer,
             summary="Close the expert review and open the publicity period (programme office)")
def application_close_review(request: Request, view: View, app_id: AppId, body: CloseReviewBody):
    from zhizao.portfolio import workflow

    return _step(request, view, app_id, "close_review",
                 lambda ws: workflow.close_review(ws.con, app_id, actor=view.actor,
                                                  publicity_days=body.publicity_days))


@router.post("/applications/{app_id}/objections", tags=["workflow"], status_code=201, response_model=ObjectionAnswer,
             summary="Record an objection received during publicity (programme office)")
def application_object(request: Request, view: View, app_id: AppId, body: ObjectionBody):
    from zhizao.portfolio import workflow

    view.require_step(app_id, "object")
    received = _date("received_on", body.received_on)
    oid = _write(request, lambda ws: workflow.object_(ws.con, app_id, body.text, actor=view.actor,
                                                      raised_by=body.raised_by, received_on=received))
    return _json({"objection_id": oid}, 201)


@router.post("/applications/{app_id}/objections/{objection_id}/resolution", tags=["workflow"],
             response_model=ApplicationAnswer, summary="Answer an objection (programme office)")
def application_resolve(request: Request, view: View, app_id: AppId, body: ResolutionBody,
                        objection_id: str = PathParam(..., max_length=40)):
    from zhizao.portfolio import workflow

    return _step(request, view, app_id, "resolve",
                 lambda ws: workflow.resolve(ws.con, app_id, objection_id, body.resolution, actor=view.actor))


@router.post("/applications/{app_id}/end-publicity", tags=["workflow"], response_model=ApplicationAnswer,
             summary="End the publicity period (programme office; after its last day, objections resolved)")
def application_end_publicity(request: Request, view: View, app_id: AppId):
    from zhizao.portfolio import workflow

    return _step(request, view, app_id, "end_publicity",
                 lambda ws: workflow.end_publicity(ws.con, app_id, actor=view.actor))


@router.post("/applications/{app_id}/decision", tags=["workflow"], response_model=ApplicationAnswer,
             summary="Decide: approve (a project approved, a recognition recorded) or reject (programme office)")
def application_decide(request: Request, view: View, app_id: AppId, body: DecisionBody):
    from zhizao.portfolio import workflow

    return _step(request, view, app_id, "decide",
                 lambda ws: workflow.decide(ws.con, app_id, _v(body.decision), actor=view.actor,
                                            reason=body.reason, level=body.level))


@router.post("/applications/{app_id}/acceptance-request", tags=["workflow"], response_model=ApplicationAnswer,
             summary="Ask for the acceptance of a completed project (the enterprise)")
def application_request_acceptance(request: Request, view: View, app_id: AppId, body: ReasonBody):
    from zhizao.portfolio import workflow

    return _step(request, view, app_id, "request_acceptance",
                 lambda ws: workflow.request_acceptance(ws.con, app_id, actor=view.actor))


@router.get("/applications/{app_id}/acceptance", tags=["workflow"], response_model=AcceptanceAnswer,
            summary="The acceptance: verified results beside the declared ones, the criteria to confirm")
def application_acceptance(view: View, app_id: AppId, rules: Text = None):
    from zhizao.portfolio import workflow
    from zhizao.portfolio.recognition import recognition_checks

    app = view.application(app_id)
    v = workflow.acceptance_view(view.ws, app_id)
    crit, rs = [], None
    designation = app["sought"] if app["sought"] in ("digital_workshop", "smart_factory") else "digital_workshop"
    try:
        df = recognition_checks(view.ws, app["enterprise_id"], designation, scope=app["scope"] or None, rules=rules)
        rs = df["ruleset"].iloc[0] if len(df) else None
        crit = [{**r, "basis": r["basis"].text("en") if r.get("basis") is not None else None}
                for r in df.to_dict("records")]
    except Exception:
        crit = []
    return _json({"application": v["application"], "results": v["results"], "criteria": crit, "ruleset": rs})


@router.post("/applications/{app_id}/acceptance", tags=["workflow"], response_model=ApplicationAnswer,
             summary="The acceptance (验收): passed or failed (programme office)")
def application_accept(request: Request, view: View, app_id: AppId, body: AcceptanceBody):
    from zhizao.portfolio import workflow

    action = "accept" if body.accepted else "fail_acceptance"
    return _step(request, view, app_id, action,
                 lambda ws: workflow.accept(ws.con, app_id, body.accepted, actor=view.actor, reason=body.reason))


# -- evidence files -------------------------------------------------------------------------------------

@router.post("/applications/{app_id}/evidence", tags=["workflow"], status_code=201, response_model=EvidenceOut,
             summary="Attach an evidence file (the enterprise): PDF, image, XLSX, DOCX, CSV or text, 20 MB at most")
async def evidence_upload(request: Request, view: View, app_id: AppId, file: UploadFile = File(...),
                          purpose: str | None = Form(None, max_length=100)):
    from zhizao.portfolio import evidence

    app = view.require_step(app_id, "attach")
    content = await file.read(evidence.max_bytes() + 1)
    rec = _write(request, lambda ws: evidence.store(ws.con, app["enterprise_id"], file.filename or "", content,
                                                    actor=view.actor, purpose=purpose, application_id=app_id))
    return _json(rec, 201)


@router.get("/evidence/{file_id}", tags=["workflow"], response_class=Response,
            responses={200: {"content": {"application/octet-stream": {
                "schema": {"type": "string", "format": "binary"}}}}},
            summary="Download an evidence file (the enterprise, its reviewers, administrators)")
def evidence_download(view: View, file_id: str = PathParam(..., max_length=40)):
    from urllib.parse import quote

    rec = view.evidence(file_id, with_content=True)
    return Response(rec["content"], media_type=rec["media_type"],
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(rec['name'])}",
                             "X-Content-SHA256": rec["sha256"]})


# -- recognition: rule sets, conflicts, confirmations ----------------------------------------------------

@router.get("/rulesets", tags=["recognition"], response_model=list[RulesetRow],
            summary="The recognition rule sets (versioned data files)")
def rulesets(view: View):
    from zhizao.portfolio.rulesets import all_rulesets

    return _json([r.to_dict() for r in sorted(all_rulesets().values(), key=lambda r: r.name)])


@router.get("/rulesets/{name}", tags=["recognition"], response_model=dict,
            summary="One rule set: criteria, thresholds, zh and en texts, source")
def ruleset_one(view: View, name: str = PathParam(..., max_length=100)):
    from zhizao.portfolio.rulesets import ruleset

    return _json(ruleset(name).to_dict())


@router.get("/recognition/conflicts", tags=["recognition"], response_model=list[ConflictRow],
            summary="Recognised workshops and factories whose data fail a computed criterion (programme office)")
def conflicts(view: View):
    from zhizao.portfolio.recognition import recognition_conflicts
    from zhizao.server.access import DATA_REGISTER

    view.require_office()
    df = view.cached(("recognition_conflicts",), lambda: recognition_conflicts(view.ws), DATA_REGISTER)
    return _json(df.assign(basis=[b.text("en") if hasattr(b, "text") else b for b in df["basis"]]))


@router.post("/recognition/confirmations", tags=["recognition"], status_code=201, response_model=ConfirmAnswer,
             summary="An assessor confirms (or refuses) a declared criterion, with its evidence")
def confirm(request: Request, view: View, body: ConfirmBody):
    from zhizao.portfolio.recognition import confirm as do_confirm

    view.require_confirm(body.enterprise_id, body.application_id)
    rec = _write(request, lambda ws: do_confirm(ws.con, body.enterprise_id, body.ruleset, body.criterion,
                                                body.confirmed, view.actor, scope=body.scope, evidence=body.evidence,
                                                comment=body.comment, application_id=body.application_id))
    return _json(rec, 201)


# -- capability maturity --------------------------------------------------------------------------------

@router.get("/maturity/{enterprise_id}", tags=["maturity"], response_model=MaturityAnswer,
            summary="An enterprise's capability maturity: level, assessments, facts from the data, eligibility")
def maturity(view: View, enterprise_id: str = PathParam(..., max_length=200)):
    from zhizao.portfolio.maturity import assessments, current_level, eligibility, facts

    view.require_enterprise_visible(enterprise_id)
    f = facts(view.ws, enterprise_id)
    elig = []
    for d in ("demonstration_project", "demonstration_factory", "ladder_excellent"):
        elig += [{**r, "designation": d, "basis": r["basis"].text("en")} for r in eligibility(view.ws, enterprise_id,
                                                                                             d)]
    return _json({"enterprise_id": enterprise_id, "current": current_level(view.ws, enterprise_id),
                  "assessments": assessments(view.ws, enterprise_id).drop(columns=["answers"]),
                  "facts": {**{k: v for k, v in f.items() if k != "basis"},
                            "basis": [m.text("en") for m in f.get("basis", [])]},
                  "eligibility": elig})


@router.get("/maturity/{enterprise_id}/questionnaire", tags=["maturity"], response_model=dict,
            summary="The questionnaire: facts the data give, systems to declare, requirements to answer")
def questionnaire(view: View, enterprise_id: str = PathParam(..., max_length=200)):
    from zhizao.portfolio.maturity import questionnaire as q

    view.require_enterprise_visible(enterprise_id)
    out = q(view.ws, enterprise_id)
    out["facts"] = {**{k: v for k, v in out["facts"].items() if k != "basis"},
                    "basis": [m.text("en") for m in out["facts"].get("basis", [])]}
    return _json(out)


@router.post("/maturity/{enterprise_id}/questionnaire", tags=["maturity"], status_code=201, response_model=dict,
             summary="Submit the questionnaire (the enterprise's users): scored and stored")
def questionnaire_submit(request: Request, view: View, body: QuestionnaireBody,
                         enterprise_id: str = PathParam(..., max_length=200)):
    from zhizao.portfolio.maturity import submit_questionnaire

    view.require_questionnaire(enterprise_id)
    rec = _write(request, lambda ws: submit_questionnaire(ws, enterprise_id, body.answers, systems=body.systems,
                                                          actor=view.actor))
    return _json(rec, 201)


@router.post("/maturity/import", tags=["maturity"], status_code=201, response_model=ImportAnswer,
             summary="Import the self-diagnosis platform's results (programme office): CSV or .xlsx")
async def maturity_import(request: Request, view: View, file: UploadFile = File(...)):
    import shutil
    import tempfile
    from pathlib import Path

    from zhizao.portfolio.maturity import import_results
    from zhizao.server.uploads import safe_name

    view.require_maturity_import()
    name = safe_name(file.filename, (".csv", ".xlsx"))
    folder = Path(tempfile.mkdtemp(prefix="zhizao-maturity-"))
    try:
        path = folder / name
        path.write_bytes(await file.read(50 * 10**6))
        res = _write(request, lambda ws: import_results(ws, path, actor=view.actor))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return _json({"imported": res["imported"],
                  "rejected": [{"line": line, "message": m.text("en")} for line, m in res["rejected"]]}, 201)


__all__ = ["router"]
