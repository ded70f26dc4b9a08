"""The REST API (``/api/v1``): every stage, through the principal's :class:`~zhizao.server.access.TenantView`.

Tables come back as JSON arrays of row objects (the columns of the CLI's ``--format json``; fractions, not
percent; null when undefined) or as CSV with ``format=csv``.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse

import zhizao
from zhizao.ingest.mapping import load_mapping
from zhizao.messages import define
from zhizao.server import accounts
from zhizao.server.access import TenantView, sees_server_status
from zhizao.server.auth import DEVICE_COOKIE
from zhizao.server.deps import AnyWho, View, Who, get_server
from zhizao.server.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from zhizao.server.models import (
    CapabilityRow,
    CatalogueRow,
    DataQualityRow,
    Designation,
    DesignationRow,
    Disabled,
    ElementsRow,
    EnterpriseRow,
    EquipmentRow,
    ErrorBody,
    Fmt,
    Health,
    KeyBody,
    KeyOut,
    KpiRow,
    Lang,
    LatestVerificationRow,
    Level,
    Login,
    LoginAnswer,
    LossesRow,
    MappingOut,
    Me,
    NewKey,
    Period,
    ProgrammeStatistics,
    ProjectDetail,
    ProjectRow,
    ProjectVerifyBody,
    QuarantineRow,
    QuarantineSummaryRow,
    RecognitionRow,
    Revoked,
    SessionOut,
    StopReasonRow,
    TableName,
    TableOut,
    UploadAnswer,
    UploadDetail,
    UploadRow,
    UserBody,
    UserOut,
    UserPatch,
    VerificationOut,
    VerifyBody,
    table_responses,
    text_responses,
)
from zhizao.server.uploads import bundled_mappings, ingest_upload

ERRORS: dict[int | str, dict[str, Any]] = {s: {"description": d, "model": ErrorBody} for s, d in (
    (400, "Bad input (message says what)"), (401, "Not authenticated"), (403, "Not allowed for this principal"),
    (404, "Not found or not visible"), (413, "Body too large"), (422, "Invalid parameters"),
    (429, "Too many attempts"), (503, "The store is busy"))}

router = APIRouter(prefix="/api/v1", responses=ERRORS)
# the answers' JSON and CSV (shared with the programme's routes)
from zhizao.server.answers import json_response, jsonable, records, table_response, table_text  # noqa: E402

Text = Annotated[str | None, Query(max_length=200)]

WRONG_LOGIN = define("server.wrong_login", "wrong user name or password")
KEY_HAS_NO_SESSION = define("server.key_has_no_session",
                            "an API key has no session; revoke the key instead (DELETE /api/v1/keys/{key_id})")
TIMESTAMP_TOO_LONG = define("server.timestamp_too_long", "time stamps are at most 64 characters")
NO_USER = define("server.no_user", "no user '%(name)s'")
OLD_PASSWORD_NEEDED = define("server.old_password_needed",
                             "to change your own password, give your current one too (old_password)")
OLD_PASSWORD_WRONG = define("server.old_password_wrong", "the current password (old_password) is wrong")


def _v(x):
    return x.value if isinstance(x, Enum) else x


def _within(enterprise, site, area, work_center) -> dict:
    return {k: v for k, v in (("enterprise", enterprise), ("site", site), ("area", area),
                              ("work_center", work_center)) if v}


def table(model):
    """Decorator arguments of a route answering a table of ``model`` rows (JSON, or CSV with format=csv)."""
    return {"response_model": list[model], "responses": table_responses(model)}


# -- public
@router.get("/health", tags=["server"], response_model=Health, response_model_exclude_none=True,
            summary="Liveness and readiness (no authentication); the store version for signed-in callers",
            responses={503: {"model": Health, "description": "starting: the start-up warm-up is not done yet"}})
def health(request: Request, response: Response, who: AnyWho):
    ready = get_server(request).ready.is_set()
    out: dict[str, Any] = {"status": "ok" if ready else "starting", "version": zhizao.__version__}
    if not ready:
        response.status_code = 503
    if who is not None:
        out["store_version"] = [str(x) for x in get_server(request).store.version]
    live = get_server(request).live
    if live is not None and sees_server_status(who):
        out["live"] = live.status()
    return out


@router.post("/auth/login", tags=["accounts"], response_model=LoginAnswer,
             summary="Open a session; the token goes into Authorization: Bearer")
def login(request: Request, body: Login):
    s = get_server(request)
    client = request.client.host if request.client else None
    res = s.auth.login(body.username, body.password, request.headers.get("user-agent"), client,
                       request.cookies.get(DEVICE_COOKIE))
    if res is None:
        raise Unauthorized(WRONG_LOGIN)
    token, session, user = res
    return {"token": token, "session_id": session.session_id, "csrf": session.csrf,
            "expires_at": session.expires_at.isoformat(), "user": user.to_dict()}


@router.post("/auth/logout", tags=["accounts"], response_model=Revoked,
             summary="Revoke the session used for this request")
def logout(request: Request, who: Who):
    if who.session_id is None:
        raise BadRequest(KEY_HAS_NO_SESSION)
    s = get_server(request)
    with s.store.accounts() as con:
        accounts.revoke_session(con, who.session_id)
    s.auth.invalidate()
    return {"revoked": who.session_id}


@router.get("/me", tags=["accounts"], response_model=Me, summary="Who am I, and what may I see")
def me(view: View):
    a = view.access
    p = a.principal
    return {"kind": p.kind, "name": p.name, "role": p.role, "enterprise_id": p.enterprise_id, "site": p.site,
            "projects": sorted(p.projects), "enterprises": None if a.enterprises is None else sorted(a.enterprises),
            "sites": None if a.sites is None else sorted(a.sites), "levels": list(a.levels),
            "write_tables": sorted(a.write_tables), "programme": a.programme,
            "store_verifications": a.store_verifications, "admin": a.admin}


# -- schema and register of equipment
@router.get("/schema", tags=["data"], response_model=dict[str, TableOut],
            summary="The canonical tables and their columns")
def schema(who: Who):
    from zhizao.schema import TABLES

    return {t.name: {"description": t.description, "key": list(t.key),
                     "columns": [{"name": c.name, "type": c.type, "required": c.required,
                                  "description": c.description} for c in t.columns]} for t in TABLES.values()}


@router.get("/mappings", tags=["data"], response_model=list[MappingOut],
            summary="The mapping files shipped with zhizao")
def mappings(who: Who):
    out = []
    for name, path in bundled_mappings().items():
        m = load_mapping(path)
        out.append({"name": name, "table": m.table, "description": m.description})
    return out


@router.get("/equipment", tags=["data"], summary="The equipment hierarchy you may see", **table(EquipmentRow))
def equipment(view: View, enterprise: Text = None, site: Text = None, area: Text = None, work_center: Text = None,
              format: Fmt = Fmt.json):
    return table_response(view.equipment(_within(enterprise, site, area, work_center)), format)


# -- KPI stage
def _q(view: TenantView, fn, level, period, start, end, id, enterprise, site, area, work_center, format, **kw):
    """A KPI-stage table for the principal; the answer's text is cached per store version, principal signature
    and parameters (the stage result itself is cached for every principal)."""
    key = ("api", fn.__name__, view.access.signature, _v(level), _v(period), start, end, tuple(id or ()),
           enterprise, site, area, work_center, _v(format), tuple(sorted((k, str(v)) for k, v in kw.items())))

    def compute():
        df = fn(_v(level), _v(period), start, end, ids=id or None,
                within=_within(enterprise, site, area, work_center), **kw)
        return table_text(df, format)
    text, media = view.cached(key, compute, tenant=True)
    headers = {"Content-Disposition": 'attachment; filename="zhizao.xlsx"'} if _v(format) == "xlsx" else None
    return Response(text, media_type=media, headers=headers)


IdList = Annotated[list[str] | None, Query(max_length=1000, description="keep only these entity ids")]


@router.get("/kpi", tags=["kpi"], summary="ISO 22400 elements and KPIs by level, period and range",
            **table(KpiRow))
def kpi(view: View, level: Level = Level.equipment, period: Period = Period.day, start: Text = None,
        end: Text = None, kpis: Text = None, id: IdList = None, enterprise: Text = None, site: Text = None,
        area: Text = None, work_center: Text = None, format: Fmt = Fmt.json):
    """Rows of the level's entities you may see. ``start``/``end``: ISO 8601 (both or neither; default the
    whole data range); ``kpis``: comma-separated names (default all); ``enterprise``, ``site``, ``area``,
    ``work_center``: keep entities inside that parent (drill-down)."""
    names = [k.strip() for k in kpis.split(",") if k.strip()] if kpis else None
    return _q(view, view.kpi, level, period, start, end, id, enterprise, site, area, work_center, format,
              kpis=names)


@router.get("/elements", tags=["kpi"], summary="ISO 22400 elements summed to a level per period",
            **table(ElementsRow))
def elements(view: View, level: Level = Level.equipment, period: Period = Period.day, start: Text = None,
             end: Text = None, id: IdList = None, enterprise: Text = None, site: Text = None, area: Text = None,
             work_center: Text = None, format: Fmt = Fmt.json):
    return _q(view, view.elements, level, period, start, end, id, enterprise, site, area, work_center, format)


@router.get("/losses", tags=["kpi"], summary="Time-model waterfall and six big losses [s]", **table(LossesRow))
def losses(view: View, level: Level = Level.site, period: Period = Period.all, start: Text = None,
           end: Text = None, id: IdList = None, enterprise: Text = None, site: Text = None, area: Text = None,
           work_center: Text = None, format: Fmt = Fmt.json):
    return _q(view, view.losses, level, period, start, end, id, enterprise, site, area, work_center, format)


@router.get("/stop-reasons", tags=["kpi"], summary="Loss seconds by category and reason (Pareto)",
            **table(StopReasonRow))
def stop_reasons(view: View, level: Level = Level.site, period: Period = Period.all, start: Text = None,
                 end: Text = None, id: IdList = None, enterprise: Text = None, site: Text = None,
                 area: Text = None, work_center: Text = None, format: Fmt = Fmt.json):
    return _q(view, view.stop_reasons, level, period, start, end, id, enterprise, site, area, work_center, format)


@router.get("/data-quality", tags=["kpi"], summary="Data-quality flags per entity and period",
            **table(DataQualityRow))
def data_quality(view: View, level: Level = Level.equipment, period: Period = Period.day, start: Text = None,
                 end: Text = None, id: IdList = None, enterprise: Text = None, site: Text = None,
                 area: Text = None, work_center: Text = None, format: Fmt = Fmt.json):
    return _q(view, view.data_quality, level, period, start, end, id, enterprise, site, area, work_center, format)


@router.get("/capability", tags=["kpi"], summary="Cm, Cmk, Cp, Cpk per characteristic", **table(CapabilityRow))
def capability(view: View, level: Level = Level.equipment, period: Period = Period.all, start: Text = None,
               end: Text = None, id: IdList = None, enterprise: Text = None, site: Text = None,
               area: Text = None, work_center: Text = None, format: Fmt = Fmt.json):
    return _q(view, view.capability, level, period, start, end, id, enterprise, site, area, work_center, format)


@router.get("/catalogue", tags=["kpi"], summary="Every ISO 22400-2 KPI and whether your data can give it",
            **table(CatalogueRow))
def kpi_catalogue(view: View, format: Fmt = Fmt.json):
    return table_response(view.catalogue(), format)


# -- ingest
@router.post("/ingest/{table}", tags=["data"], status_code=201, response_model=UploadAnswer,
             responses={200: {"model": UploadAnswer, "description": "the same file was loaded before; nothing "
                                                                     "changed"}},
             summary="Upload a CSV or Parquet file into a canonical table; answers with its quarantine")
def ingest(request: Request, table: TableName, who: Who, view: View,
           file: UploadFile = File(..., description="CSV or Parquet file"),
           mapping: UploadFile | None = File(None, description="mapping file (YAML)"),
           mapping_name: str | None = Form(None, max_length=100, description="a bundled mapping")):
    """Records about equipment, scopes or enterprises of another tenant are refused (403) before anything is
    stored; invalid records are quarantined with the rule they broke (listed in the answer)."""
    s = get_server(request)
    t = _v(table)
    view.require_write(t)
    res = ingest_upload(s.store, who, t, file, mapping_name or None, mapping, limit=s.max_upload)
    s.after_write(res.get("touched"))
    res.pop("touched", None)
    return json_response(res, 200 if res["already_loaded"] else 201)


@router.get("/uploads", tags=["data"], summary="Uploads you may see, latest first", **table(UploadRow))
def uploads(view: View, limit: int = Query(200, ge=1, le=5000), format: Fmt = Fmt.json):
    return table_response(view.uploads(limit).drop(columns=["source"]), format)


@router.get("/uploads/{upload_id}", tags=["data"], response_model=UploadDetail,
            summary="One upload with its quarantined records")
def upload(view: View, upload_id: str = PathParam(..., max_length=40)):
    u = view.upload(upload_id)
    u.pop("source", None)
    q = view.quarantine(upload_id=upload_id, limit=1000)
    return json_response({**u, "quarantine": records(q)})


@router.get("/quarantine", tags=["data"], summary="Quarantined records with the rule they broke",
            **table(QuarantineRow))
def quarantine(view: View, upload_id: Text = None, limit: int = Query(500, ge=1, le=10000),
               offset: int = Query(0, ge=0, le=10**9), format: Fmt = Fmt.json):
    return table_response(view.quarantine(upload_id, limit, offset), format)


@router.get("/quarantine/summary", tags=["data"], summary="Quarantined records counted per table and rule",
            **table(QuarantineSummaryRow))
def quarantine_summary(view: View, format: Fmt = Fmt.json):
    return table_response(view.quarantine_summary(), format)


# -- verify stage
@router.post("/verify", tags=["verify"], response_model=VerificationOut,
             summary="Verify one indicator at one scope (not stored)")
def verify(view: View, body: VerifyBody):
    kw = {"confidence": body.confidence, "uncertainty": _v(body.uncertainty),
          "granularity": _v(body.granularity)}
    if body.definition:
        kw["definition"] = body.definition
    for w in (body.baseline, body.reporting):
        if len(w[0]) > 64 or len(w[1]) > 64:
            raise BadRequest(TIMESTAMP_TOO_LONG)
    res = view.verify(_v(body.indicator), body.scope, body.baseline, body.reporting, **kw)
    return json_response(res.to_dict())


@router.post("/projects/{project_id}/verify", tags=["verify"], response_model=list[VerificationOut],
             summary="Verify a project's indicators and store the results")
def verify_project(request: Request, view: View, body: ProjectVerifyBody,
                   project_id: str = PathParam(..., max_length=100)):
    view.require_store_verification(project_id)
    inds = [_v(i) for i in body.indicators] if body.indicators else None
    results = get_server(request).verify_project(project_id, inds, body.confidence)
    return json_response([r.to_dict() for r in results])


@router.get("/projects/{project_id}/verifications", tags=["verify"], response_model=list[VerificationOut],
            summary="The latest stored result per indicator of a project")
def project_verifications(view: View, project_id: str = PathParam(..., max_length=100)):
    return json_response([r.to_dict() for r in view.stored_results(project_id)])


@router.get("/verifications", tags=["verify"], summary="Latest stored results of the projects you may see",
            **table(LatestVerificationRow))
def verifications(view: View, format: Fmt = Fmt.json):
    df = view.latest_verifications()
    if _v(format) == "csv":
        df = df.drop(columns=["result", "warnings"])
    return table_response(df, format)


# -- portfolio
@router.get("/projects", tags=["portfolio"], summary="Projects you may see", **table(ProjectRow))
def projects(view: View, park: Text = None, district: Text = None, start: Text = None, end: Text = None,
             format: Fmt = Fmt.json):
    return table_response(view.projects(park, district, start, end), format)


@router.get("/projects/{project_id}", tags=["portfolio"], response_model=ProjectDetail,
            summary="One project with its latest verifications")
def project(view: View, project_id: str = PathParam(..., max_length=100)):
    p = view.project(project_id)
    ver = view.latest_verifications([project_id])
    des = view.designations()
    return json_response({"project": p, "verifications": ver,
                          "designations": des[des["project_id"] == project_id]})


@router.get("/enterprises", tags=["portfolio"], summary="Enterprises you may see", **table(EnterpriseRow))
def enterprises(view: View, format: Fmt = Fmt.json):
    return table_response(view.enterprises(), format)


@router.get("/designations", tags=["portfolio"], summary="Designations (demonstration project, digital workshop, "
                                                          "smart factory) you may see", **table(DesignationRow))
def designations(view: View, format: Fmt = Fmt.json):
    return table_response(view.designations(), format)


@router.get("/programme/statistics", tags=["portfolio"], response_model=ProgrammeStatistics,
            summary="Programme statistics (analysts, administrators)")
def programme_statistics(view: View, park: Text = None, district: Text = None, start: Text = None,
                         end: Text = None, confidence: float = Query(0.9, gt=0.5, lt=1.0),
                         n_boot: int = Query(2000, ge=1, le=10000), seed: int = Query(0, ge=0, le=2**31 - 1)):
    return json_response(view.programme_statistics(park, district, start, end, confidence, n_boot, seed))


@router.get("/programme/bulletin", tags=["portfolio"], response_class=HTMLResponse,
            responses=text_responses("text/html", "text/markdown", "application/pdf"),
            summary="The programme bulletin as HTML, Markdown or PDF")
def bulletin(view: View, lang: Lang = Lang.zh, format: str = Query("html", pattern="^(html|md|pdf)$"),
             park: Text = None, district: Text = None, start: Text = None, end: Text = None,
             n_boot: int = Query(2000, ge=1, le=10000)):
    b = view.bulletin(_v(lang), park, district, start, end, n_boot, pdf=format == "pdf")
    if format == "md":
        return Response(b["md"], media_type="text/markdown; charset=utf-8")
    if format == "pdf":
        return Response(b["pdf"], media_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="bulletin.{_v(lang)}.pdf"'})
    return Response(b["html"], media_type="text/html; charset=utf-8")


@router.get("/recognition", tags=["portfolio"], summary="Recognition criteria of a digital workshop or smart "
                                                         "factory against the data", **table(RecognitionRow))
def recognition(view: View, enterprise: str = Query(..., max_length=200), designation: Designation = Query(...),
                start: Text = None, end: Text = None, scope: Text = None, format: Fmt = Fmt.json):
    df = view.recognition(enterprise, _v(designation), start, end, scope)
    if _v(format) == "csv":
        df = df.assign(evidence=[",".join(map(str, e)) for e in df["evidence"]])
    return table_response(df, format)


# -- accounts administration
def _account_call(fn):
    """Run an account change; a missing user is 404, an existing name 409, other bad input 400."""
    try:
        return fn()
    except accounts.UnknownUser as e:
        raise NotFound(e.message) from None
    except accounts.UserExists as e:
        raise Conflict(e.message) from None


@router.get("/users", tags=["accounts"], response_model=list[UserOut], summary="Users (administrators)")
def users(view: View):
    view.require_admin()
    return [u.to_dict() for u in accounts.list_users(view.read.con)]


@router.post("/users", tags=["accounts"], status_code=201, response_model=UserOut,
             summary="Create a user (administrators)")
def create_user(request: Request, view: View, body: UserBody):
    view.require_admin()
    s = get_server(request)
    with s.store.accounts() as con:
        u = _account_call(lambda: accounts.add_user(con, body.username, body.password, _v(body.role),
                                                    body.enterprise_id, body.display_name, body.projects,
                                                    body.district))
    s.auth.invalidate()
    return u.to_dict()


@router.get("/users/{username}", tags=["accounts"], response_model=UserOut,
            summary="One user (administrators, or yourself)")
def get_user(view: View, username: str = PathParam(..., max_length=64)):
    view.require_user(username)
    u = accounts.get_user(view.read.con, username)
    if u is None:
        raise NotFound(NO_USER, name=username)
    return u.to_dict()


@router.patch("/users/{username}", tags=["accounts"], response_model=UserOut,
              summary="Change password, enable or disable, set assigned projects (administrators; your own password "
                      "with the old one)")
def patch_user(request: Request, view: View, body: UserPatch, username: str = PathParam(..., max_length=64)):
    view.require_user(username, change=True, password_only=body.active is None and body.projects is None)
    s = get_server(request)
    if body.password is not None and view.changes_own_password(username):
        if not body.old_password:
            raise BadRequest(OLD_PASSWORD_NEEDED)
        client = request.client.host if request.client else None
        if s.auth.check(username, body.old_password, client, request.cookies.get(DEVICE_COOKIE)) is None:
            raise Forbidden(OLD_PASSWORD_WRONG)
    with s.store.accounts() as con:
        if accounts.get_user(con, username) is None:
            raise NotFound(NO_USER, name=username)
        if body.password is not None:
            _account_call(lambda: accounts.set_password(con, username, body.password))
        if body.active is not None:
            _account_call(lambda: accounts.set_active(con, username, body.active))
        if body.projects is not None:
            u = accounts.get_user(con, username)
            if u is None:  # deleted meanwhile
                raise NotFound(NO_USER, name=username)
            for pid in set(u.projects) - set(body.projects):
                accounts.unassign(con, username, pid)
            for pid in body.projects:
                _account_call(lambda pid=pid: accounts.assign(con, username, pid))
        u = accounts.get_user(con, username)
    s.auth.invalidate()
    if u is None:  # deleted meanwhile
        raise NotFound(NO_USER, name=username)
    return u.to_dict()


@router.delete("/users/{username}", tags=["accounts"], response_model=Disabled,
               summary="Disable a user and revoke their sessions")
def disable_user(request: Request, view: View, username: str = PathParam(..., max_length=64)):
    view.require_admin()
    s = get_server(request)
    with s.store.accounts() as con:
        _account_call(lambda: accounts.set_active(con, username, False))
    s.auth.invalidate()
    return {"disabled": username}


@router.get("/keys", tags=["accounts"], response_model=list[KeyOut],
            summary="API keys (administrators: all; enterprise users: their own)")
def keys(view: View):
    return [k.to_dict() for k in view.keys(accounts.list_keys(view.read.con))]


@router.post("/keys", tags=["accounts"], status_code=201, response_model=NewKey,
             summary="Create an API key for one enterprise or site; the key is shown once")
def create_key(request: Request, view: View, body: KeyBody):
    ent, site = view.key_scope(body.enterprise_id, body.site)
    p = view.access.principal
    s = get_server(request)
    with s.store.accounts() as con:
        key, rec = _account_call(lambda: accounts.create_key(con, ent, site, body.name, f"{p.kind}:{p.name}"))
    return {"key": key, **rec.to_dict()}


@router.delete("/keys/{key_id}", tags=["accounts"], response_model=Revoked, summary="Revoke an API key")
def revoke_key(request: Request, view: View, key_id: str = PathParam(..., max_length=40)):
    view.require_key(accounts.get_key(view.read.con, key_id), key_id)
    s = get_server(request)
    with s.store.accounts() as con:
        accounts.revoke_key(con, key_id)
    s.auth.invalidate()
    return {"revoked": key_id}


@router.get("/sessions", tags=["accounts"], response_model=list[SessionOut],
            summary="Sessions (administrators: all; users: their own)")
def sessions(view: View):
    return json_response(accounts.list_sessions(view.read.con, view.session_owner()))


@router.delete("/sessions/{session_id}", tags=["accounts"], response_model=Revoked, summary="Revoke a session")
def revoke_session(request: Request, view: View, session_id: str = PathParam(..., max_length=40)):
    view.require_session(accounts.get_session(view.read.con, session_id), session_id)
    s = get_server(request)
    with s.store.accounts() as con:
        accounts.revoke_session(con, session_id)
    s.auth.invalidate()
    return {"revoked": session_id}


__all__ = ["jsonable", "records", "router"]
