"""The programme's dashboard pages: the register (lists, records as they are and were, forms to create, update
and withdraw), the audit log, applications with a form for every step of the review, evidence files and
capability maturity.

Every route goes through the principal's :class:`~zhizao.server.access.TenantView` (the one place of the
access rules); forms carry the session's CSRF token; a refused step shows the page again with the reason.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from zhizao.errors import ZhizaoError
from zhizao.messages import define
from zhizao.schema import TABLES
from zhizao.server import programme_views as pv
from zhizao.server import views
from zhizao.server.access import TenantView
from zhizao.server.deps import View, get_server
from zhizao.server.errors import BadRequest, NotFound
from zhizao.server.pages import TOO_LONG, check_csrf, lang_of, remember, render

router = APIRouter(include_in_schema=False)

REGISTER_TABLES = tuple(pv.TABLE_LABELS)
NO_REGISTER_TABLE = define("server.no_register_table", "no register table '%(table)s'; one of %(tables)s")
BAD_PAGE = define("server.bad_page", "page must be a whole number from 1")
BAD_DATE_FIELD = define("server.bad_date_field", "%(name)s = '%(value)s' is not a date (YYYY-MM-DD)")
FIELD_TOO_LONG = define("server.field_too_long", "%(name)s is longer than %(max)s characters")
REASON_REQUIRED = define("server.reason_required", "give a reason")
LIST_KEYS = ("q", "sort", "page")


def _pg(request: Request) -> views.Page:
    return views.Page(lang_of(request)[0])


def _list_query(request: Request, extra=()) -> dict:
    q = {}
    for k in (*LIST_KEYS, *extra):
        v = request.query_params.get(k)
        if v:
            if len(v) > 200:
                raise BadRequest(TOO_LONG, name=k)
            q[k] = v
    if "page" in q and (not q["page"].isdigit() or int(q["page"]) < 1 or int(q["page"]) > 100000):
        raise BadRequest(BAD_PAGE)
    return q


def _table(table: str) -> str:
    if table not in REGISTER_TABLES:
        raise NotFound(NO_REGISTER_TABLE, table=table, tables=", ".join(REGISTER_TABLES))
    return table


def _key(key: str) -> str:
    if len(key) > 400:
        raise BadRequest(TOO_LONG, name="key")
    return key


def _date(name: str, v: str | None) -> dt.date | None:
    if not v:
        return None
    try:
        return dt.date.fromisoformat(v.strip())
    except ValueError:
        raise BadRequest(BAD_DATE_FIELD, name=name, value=v[:40]) from None


def _write(request: Request, fn, touched=("register",)):
    s = get_server(request)
    with s.store.write() as ws:
        s.store.touch(*touched)
        return fn(ws)


async def _fields(request: Request, allowed, limit: int = 4000) -> dict:
    """The form's fields named in ``allowed`` (others are ignored), each at most ``limit`` characters."""
    form = await request.form()
    out = {}
    for k in allowed:
        v = form.get(k)
        if v is None or not isinstance(v, str):
            continue
        if len(v) > limit:
            raise BadRequest(FIELD_TOO_LONG, name=k, max=limit)
        out[k] = v.strip()
    return out


# -- the register -----------------------------------------------------------------------------------------

@router.get("/register", response_class=HTMLResponse)
def register_index(request: Request, view: View):
    remember(request, view)
    pg = _pg(request)
    return render(request, "register_index.html.j2", {"r": pv.register_index(view, pg),
                                                      "csrf": view.access.principal.csrf}, pg._("Register"),
                  "register", view=view)


@router.get("/register/template.xlsx")
def register_template(request: Request, view: View):
    import tempfile
    from pathlib import Path

    from zhizao.portfolio.import_templates import write_template

    remember(request, view)
    with tempfile.TemporaryDirectory(prefix="zhizao-template-") as d:
        data = write_template(Path(d) / "t.xlsx").read_bytes()
    return Response(data, media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": 'attachment; filename="register-template.xlsx"'})


@router.get("/register/{table}", response_class=HTMLResponse)
def register_list(request: Request, table: str, view: View):
    remember(request, view)
    t = _table(table)
    pg = _pg(request)
    q = _list_query(request)
    return render(request, "register_list.html.j2", lambda: {"r": pv.register_list(view, pg, t, q)},
                  pg._(pv.TABLE_LABELS[t]), "register", view=view, cache_key=("register", t, tuple(sorted(q.items()))))


@router.get("/register/{table}/new", response_class=HTMLResponse)
def register_new(request: Request, table: str, view: View):
    remember(request, view)
    t = _table(table)
    view.require_register_write(t)
    pg = _pg(request)
    return render(request, "register_new.html.j2", {"r": pv.register_new(view, pg, t), "error": None,
                                                    "csrf": view.access.principal.csrf, "values": {}},
                  pg._("New record"), "register", view=view)


@router.post("/register/{table}/new")
async def register_create(request: Request, table: str, view: View):
    from zhizao.portfolio.register import create_record, key_text

    remember(request, view)
    t = _table(table)
    f = await _fields(request, ("csrf", "reason", *TABLES[t].names))
    check_csrf(view, f.pop("csrf", None))
    view.require_register_write(t)
    reason = f.pop("reason", None) or None
    values = {k: v for k, v in f.items() if v != ""}
    pg = _pg(request)
    try:
        rec = _write(request, lambda ws: create_record(ws.con, t, values, actor=view.actor, reason=reason,
                                                       source="dashboard"))
    except ZhizaoError as e:
        return render(request, "register_new.html.j2", {"r": pv.register_new(view, pg, t), "error": e.text(pg.lang),
                                                        "csrf": view.access.principal.csrf, "values": values},
                      pg._("New record"), "register", view=view, status=e.status)
    key = key_text(t, tuple(rec[c] for c in TABLES[t].key) if len(TABLES[t].key) > 1 else rec[TABLES[t].key[0]])
    return RedirectResponse(f"/register/{t}/{quote(key, safe='')}?saved=1", status_code=303)


def _record_page(request: Request, view: TenantView, t: str, key: str, error: str | None = None,
                 status: int = 200) -> Response:
    pg = _pg(request)
    as_of = request.query_params.get("as_of") or None
    if as_of:
        _date("as_of", as_of)
    ctx = {"r": pv.register_record(view, pg, t, key, as_of), "csrf": view.access.principal.csrf, "error": error,
           "saved": request.query_params.get("saved")}
    return render(request, "register_record.html.j2", ctx, f"{pg._(pv.TABLE_LABELS[t])} {key}", "register",
                  view=view, status=status)


@router.get("/register/{table}/{key}", response_class=HTMLResponse)
def register_record(request: Request, table: str, key: str, view: View):
    remember(request, view)
    return _record_page(request, view, _table(table), _key(key))


@router.post("/register/{table}/{key}")
async def register_update(request: Request, table: str, key: str, view: View):
    from zhizao.portfolio.register import update_record

    remember(request, view)
    t = _table(table)
    k = _key(key)
    f = await _fields(request, ("csrf", "reason", *[c for c in TABLES[t].names if c not in TABLES[t].key]))
    check_csrf(view, f.pop("csrf", None))
    view.require_register_write(t)
    view.register_record(t, k)
    reason = f.pop("reason", None) or None
    try:
        _write(request, lambda ws: update_record(ws.con, t, k, f, actor=view.actor, reason=reason,
                                                 source="dashboard"))
    except ZhizaoError as e:
        return _record_page(request, view, t, k, e.text(_pg(request).lang), e.status)
    return RedirectResponse(f"/register/{t}/{quote(k, safe='')}?saved=1", status_code=303)


@router.post("/register/{table}/{key}/withdraw")
def register_withdraw(request: Request, table: str, key: str, view: View, csrf: str = Form("", max_length=100),
                      reason: str = Form("", max_length=2000)):
    from zhizao.portfolio.register import withdraw_record

    remember(request, view)
    t = _table(table)
    k = _key(key)
    check_csrf(view, csrf)
    view.require_register_write(t)
    view.register_record(t, k)
    try:
        if not reason.strip():
            raise BadRequest(REASON_REQUIRED)
        _write(request, lambda ws: withdraw_record(ws.con, t, k, actor=view.actor, reason=reason.strip(),
                                                   source="dashboard"))
    except ZhizaoError as e:
        return _record_page(request, view, t, k, e.text(_pg(request).lang), e.status)
    return RedirectResponse(f"/register/{t}?withdrawn={quote(k, safe='')}", status_code=303)


# -- the audit log ----------------------------------------------------------------------------------------

@router.get("/audit", response_class=HTMLResponse)
def audit(request: Request, view: View):
    remember(request, view)
    view.require_office()
    pg = _pg(request)
    q = _list_query(request, ("entity", "actor"))
    return render(request, "audit.html.j2", lambda: {"a": pv.audit_page(view, pg, q)}, pg._("Audit log"), "audit",
                  view=view, cache_key=("audit", tuple(sorted(q.items()))))


# -- applications -----------------------------------------------------------------------------------------

@router.get("/applications", response_class=HTMLResponse)
def applications(request: Request, view: View):
    remember(request, view)
    pg = _pg(request)
    q = _list_query(request)
    return render(request, "applications.html.j2", lambda: {"a": pv.applications_page(view, pg, q)},
                  pg._("Applications"), "applications", view=view,
                  cache_key=("applications", tuple(sorted(q.items()))))


@router.get("/applications/new", response_class=HTMLResponse)
def application_new(request: Request, view: View):
    remember(request, view)
    view.require_apply(None)
    pg = _pg(request)
    return render(request, "application_new.html.j2", {"a": pv.application_new(view, pg), "error": None,
                                                       "csrf": view.access.principal.csrf, "values": {}},
                  pg._("New application"), "applications", view=view)


@router.post("/applications/new")
async def application_create(request: Request, view: View):
    from zhizao.portfolio import workflow

    remember(request, view)
    f = await _fields(request, ("csrf", "sought", "programme", "project_id", *workflow.FIELDS))
    check_csrf(view, f.pop("csrf", None))
    ent = view.require_apply(None)
    sought = f.pop("sought", "") or "project"
    programme = f.pop("programme", "") or None
    project_id = f.pop("project_id", "") or None
    data = {k: v for k, v in f.items() if v != ""}
    pg = _pg(request)
    try:
        app = _write(request, lambda ws: workflow.create(ws.con, ent, sought, data, actor=view.actor,
                                                         programme=programme, project_id=project_id))
    except ZhizaoError as e:
        return render(request, "application_new.html.j2", {"a": pv.application_new(view, pg), "error": e.text(pg.lang),
                                                           "csrf": view.access.principal.csrf, "values": f},
                      pg._("New application"), "applications", view=view, status=e.status)
    return RedirectResponse(f"/applications/{app['application_id']}", status_code=303)


def _app_page(request: Request, view: TenantView, app_id: str, error: str | None = None, status: int = 200):
    pg = _pg(request)
    d = pv.application_detail(view, pg, app_id)
    ctx = {"d": d, "csrf": view.access.principal.csrf, "error": error, "me": view.access.principal.name,
           "today": dt.date.today().isoformat()}
    return render(request, "application.html.j2", ctx, f"{pg._('Application')} {app_id}", "applications",
                  view=view, status=status)


def _app_id(app_id: str) -> str:
    if len(app_id) > 40:
        raise BadRequest(TOO_LONG, name="application id")
    return app_id


@router.get("/applications/{app_id}", response_class=HTMLResponse)
def application(request: Request, app_id: str, view: View):
    remember(request, view)
    return _app_page(request, view, _app_id(app_id))


def _step(request: Request, view: TenantView, app_id: str, csrf: str, action: str, fn):
    """Take a step: the CSRF token, the principal's right to the step (403/404 as a page), then the workflow's
    own checks (a refusal shows the application again with the reason)."""
    remember(request, view)
    app_id = _app_id(app_id)
    check_csrf(view, csrf)
    view.require_step(app_id, action)
    try:
        _write(request, fn)
    except ZhizaoError as e:
        return _app_page(request, view, app_id, e.text(_pg(request).lang), e.status)
    return RedirectResponse(f"/applications/{quote(app_id)}#history", status_code=303)


@router.post("/applications/{app_id}/edit")
async def application_edit(request: Request, app_id: str, view: View):
    from zhizao.portfolio import workflow

    f = await _fields(request, ("csrf", *workflow.FIELDS))
    csrf = f.pop("csrf", "")
    return _step(request, view, app_id, csrf, "edit",
                 lambda ws: workflow.edit(ws.con, app_id, {k: (v or None) for k, v in f.items()}, actor=view.actor))


@router.post("/applications/{app_id}/submit")
def application_submit(request: Request, app_id: str, view: View, csrf: str = Form("", max_length=100)):
    from zhizao.portfolio import workflow

    return _step(request, view, app_id, csrf, "submit", lambda ws: workflow.submit(ws, app_id, actor=view.actor))


@router.post("/applications/{app_id}/pre-review")
def application_pre_review(request: Request, app_id: str, view: View, csrf: str = Form("", max_length=100),
                           verdict: str = Form(..., pattern="^(approve|return|reject)$"),
                           comment: str = Form("", max_length=4000)):
    from zhizao.portfolio import workflow

    action = {"approve": "pre_approve", "return": "pre_return", "reject": "pre_reject"}[verdict]
    return _step(request, view, app_id, csrf, action,
                 lambda ws: workflow.pre_review(ws.con, app_id, verdict, actor=view.actor, comment=comment or None))


@router.post("/applications/{app_id}/assessors")
def application_assign(request: Request, app_id: str, view: View, csrf: str = Form("", max_length=100),
                       assessor: str = Form(..., min_length=1, max_length=64), deadline: str = Form("", max_length=20)):
    from zhizao.portfolio import workflow

    d = _date("deadline", deadline)
    return _step(request, view, app_id, csrf, "assign",
                 lambda ws: workflow.assign(ws.con, app_id, assessor.strip(), actor=view.actor, deadline=d))


@router.post("/applications/{app_id}/assessors/{assessor}/withdraw")
def application_unassign(request: Request, app_id: str, assessor: str, view: View,
                         csrf: str = Form("", max_length=100), reason: str = Form("", max_length=2000)):
    from zhizao.portfolio import workflow

    if len(assessor) > 64:
        raise BadRequest(TOO_LONG, name="assessor")
    return _step(request, view, app_id, csrf, "unassign",
                 lambda ws: workflow.unassign(ws.con, app_id, assessor, actor=view.actor, reason=reason or None))


@router.post("/applications/{app_id}/declaration")
def application_declare(request: Request, app_id: str, view: View, csrf: str = Form("", max_length=100),
                        conflict: str = Form(..., pattern="^(yes|no)$"), note: str = Form("", max_length=2000)):
    from zhizao.portfolio import workflow

    name = view.access.principal.name
    return _step(request, view, app_id, csrf, "declare",
                 lambda ws: workflow.declare(ws.con, app_id, name, conflict == "yes", note or None,
                                                    actor=view.actor))


@router.post("/applications/{app_id}/scores")
async def application_score(request: Request, app_id: str, view: View):
    from zhizao.portfolio import workflow

    sheet = workflow.score_sheet()["criteria"]
    names = [f"score_{c['id']}" for c in sheet] + [f"comment_{c['id']}" for c in sheet]
    f = await _fields(request, ("csrf", *names))
    scores = {}
    for c in sheet:
        s = f.get(f"score_{c['id']}", "")
        if s == "":
            continue
        try:
            value = float(s)
        except ValueError:
            value = s  # the workflow refuses it with the criterion's range
        scores[c["id"]] = (value, f.get(f"comment_{c['id']}") or None)
    name = view.access.principal.name
    return _step(request, view, app_id, f.get("csrf", ""), "score",
                 lambda ws: workflow.score(ws.con, app_id, name, scores, actor=view.actor))


@router.post("/applications/{app_id}/close-review")
def application_close_review(request: Request, app_id: str, view: View, csrf: str = Form("", max_length=100),
                             publicity_days: str = Form("", max_length=5)):
    from zhizao.portfolio import workflow

    days = int(publicity_days) if publicity_days.isdigit() else None
    return _step(request, view, app_id, csrf, "close_review",
                 lambda ws: workflow.close_review(ws.con, app_id, actor=view.actor, publicity_days=days))


@router.post("/applications/{app_id}/objections")
def application_object(request: Request, app_id: str, view: View, csrf: str = Form("", max_length=100),
                       text: str = Form(..., min_length=1, max_length=4000), raised_by: str = Form("", max_length=200),
                       received_on: str = Form("", max_length=20)):
    from zhizao.portfolio import workflow

    d = _date("received_on", received_on)
    return _step(request, view, app_id, csrf, "object",
                 lambda ws: workflow.object_(ws.con, app_id, text, actor=view.actor, raised_by=raised_by or None,
                                             received_on=d))


@router.post("/applications/{app_id}/objections/{objection_id}/resolution")
def application_resolve(request: Request, app_id: str, objection_id: str, view: View,
                        csrf: str = Form("", max_length=100),
                        resolution: str = Form(..., min_length=1, max_length=4000)):
    from zhizao.portfolio import workflow

    if len(objection_id) > 40:
        raise BadRequest(TOO_LONG, name="objection id")
    return _step(request, view, app_id, csrf, "resolve",
                 lambda ws: workflow.resolve(ws.con, app_id, objection_id, resolution, actor=view.actor))


@router.post("/applications/{app_id}/end-publicity")
def application_end_publicity(request: Request, app_id: str, view: View, csrf: str = Form("", max_length=100)):
    from zhizao.portfolio import workflow

    return _step(request, view, app_id, csrf, "end_publicity",
                 lambda ws: workflow.end_publicity(ws.con, app_id, actor=view.actor))


@router.post("/applications/{app_id}/decision")
def application_decide(request: Request, app_id: str, view: View, csrf: str = Form("", max_length=100),
                       decision: str = Form(..., pattern="^(approved|rejected)$"),
                       reason: str = Form("", max_length=2000), level: str = Form("", max_length=40)):
    from zhizao.portfolio import workflow

    return _step(request, view, app_id, csrf, "decide",
                 lambda ws: workflow.decide(ws.con, app_id, decision, actor=view.actor, reason=reason or None,
                                            level=level or None))


@router.post("/applications/{app_id}/acceptance-request")
def application_request_acceptance(request: Request, app_id: str, view: View, csrf: str = Form("", max_length=100)):
    from zhizao.portfolio import workflow

    return _step(request, view, app_id, csrf, "request_acceptance",
                 lambda ws: workflow.request_acceptance(ws.con, app_id, actor=view.actor))


@router.post("/applications/{app_id}/confirmations")
def application_confirm(request: Request, app_id: str, view: View, csrf: str = Form("", max_length=100),
                        ruleset: str = Form(..., max_length=100), criterion: str = Form(..., max_length=100),
                        confirmed: str = Form(..., pattern="^(yes|no)$"), evidence: str = Form("", max_length=2000),
                        comment: str = Form("", max_length=2000)):
    from zhizao.portfolio.recognition import confirm

    app = view.application(_app_id(app_id))
    view.require_confirm(app["enterprise_id"], app_id)
    return _step(request, view, app_id, csrf, "confirm",
                 lambda ws: confirm(ws.con, app["enterprise_id"], ruleset, criterion, confirmed == "yes",
                                    view.actor, scope=_confirm_scope(app), evidence=evidence or None,
                                    comment=comment or None, application_id=app_id))


@router.post("/applications/{app_id}/acceptance")
def application_accept(request: Request, app_id: str, view: View, csrf: str = Form("", max_length=100),
                       accepted: str = Form(..., pattern="^(yes|no)$"), reason: str = Form("", max_length=2000)):
    from zhizao.portfolio import workflow

    ok = accepted == "yes"
    return _step(request, view, app_id, csrf, "accept" if ok else "fail_acceptance",
                 lambda ws: workflow.accept(ws.con, app_id, ok, actor=view.actor, reason=reason or None))


@router.post("/applications/{app_id}/evidence")
async def application_evidence(request: Request, app_id: str, view: View, file: UploadFile = File(...),
                               purpose: str = Form("", max_length=100), csrf: str = Form("", max_length=100)):
    from zhizao.portfolio import evidence

    remember(request, view)
    check_csrf(view, csrf)
    app = view.require_step(_app_id(app_id), "attach")
    content = await file.read(evidence.max_bytes() + 1)
    return _step(request, view, app_id, csrf, "attach",
                 lambda ws: evidence.store(ws.con, app["enterprise_id"], file.filename or "", content,
                                           actor=view.actor, purpose=purpose or None, application_id=app_id))


@router.get("/evidence/{file_id}")
def evidence_file(request: Request, file_id: str, view: View):
    remember(request, view)
    if len(file_id) > 40:
        raise BadRequest(TOO_LONG, name="file id")
    rec = view.evidence(file_id, with_content=True)
    return Response(rec["content"], media_type=rec["media_type"],
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(rec['name'])}",
                             "X-Content-SHA256": rec["sha256"], "Cache-Control": "private, no-store"})


# -- capability maturity --------------------------------------------------------------------------------

def _maturity_page(request: Request, view: TenantView, enterprise_id: str, error: str | None = None,
                   notice: str | None = None, status: int = 200):
    pg = _pg(request)
    ctx = {"mat": pv.maturity_page(view, pg, enterprise_id), "csrf": view.access.principal.csrf, "error": error,
           "notice": notice}
    return render(request, "maturity.html.j2", ctx, f"{pg._('Capability maturity')} {enterprise_id}", "register",
                  view=view, status=status)


@router.get("/maturity/{enterprise_id}", response_class=HTMLResponse)
def maturity(request: Request, enterprise_id: str, view: View):
    remember(request, view)
    if len(enterprise_id) > 200:
        raise BadRequest(TOO_LONG, name="enterprise id")
    return _maturity_page(request, view, enterprise_id)


@router.post("/maturity/{enterprise_id}/questionnaire")
async def maturity_questionnaire(request: Request, enterprise_id: str, view: View):
    from zhizao.portfolio.maturity import SYSTEMS, model, submit_questionnaire

    remember(request, view)
    if len(enterprise_id) > 200:
        raise BadRequest(TOO_LONG, name="enterprise id")
    ids = [r["id"] for s in model().subdomains for reqs in s.requirements.values() for r in (reqs or [])]
    f = await _fields(request, ("csrf", *(f"a_{i}" for i in ids)))  # text fields only: a file part is no answer
    check_csrf(view, f.pop("csrf", None))
    view.require_questionnaire(enterprise_id)
    answers = {i: f[f"a_{i}"] for i in ids if f.get(f"a_{i}")}
    systems = [s for s in (await request.form()).getlist("system") if s in SYSTEMS]
    try:
        _write(request, lambda ws: submit_questionnaire(ws, enterprise_id, answers, systems=systems,
                                                        actor=view.actor))
    except ZhizaoError as e:
        return _maturity_page(request, view, enterprise_id, e.text(_pg(request).lang), status=e.status)
    return RedirectResponse(f"/maturity/{quote(enterprise_id, safe='')}", status_code=303)


@router.post("/maturity/import")
async def maturity_import(request: Request, view: View, file: UploadFile = File(...),
                          csrf: str = Form("", max_length=100), enterprise_id: str | None = Form(None, max_length=200)):
    import shutil
    import tempfile
    from pathlib import Path

    from zhizao.portfolio.maturity import import_results
    from zhizao.server.uploads import safe_name

    remember(request, view)
    check_csrf(view, csrf)
    view.require_maturity_import()
    pg = _pg(request)
    name = safe_name(file.filename, (".csv", ".xlsx"))
    folder = Path(tempfile.mkdtemp(prefix="zhizao-maturity-"))
    try:
        path = folder / name
        path.write_bytes(await file.read(50 * 10**6))
        res = _write(request, lambda ws: import_results(ws, path, actor=view.actor))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    notice = pg._("Imported %(n)s assessments; %(r)s lines rejected.") % {"n": len(res["imported"]),
                                                                          "r": len(res["rejected"])}
    rejected = [m.text(pg.lang) for _line, m in res["rejected"]]
    return render(request, "maturity_import.html.j2", {"notice": notice, "rejected": rejected}, pg._("Import"),
                  "register", view=view, status=201 if res["imported"] else 422)


__all__ = ["router"]


def _confirm_scope(app: dict) -> str | None:
    """The scope a confirmation is kept under: the application's scope (none when it is the enterprise)."""
    s = app.get("scope") or None
    return None if s == app["enterprise_id"] else s
