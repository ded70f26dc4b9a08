"""The REST API (``/api/v1``): every stage, through the principal's :class:`~zhizao.server.access.TenantView`.

Tables come back as JSON arrays of row objects (the columns of the CLI's ``--format json``; fractions, not
percent; null when undefined) or as CSV with ``format=csv``.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Annotated, Optional

import pandas as pd
from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

import zhizao
from zhizao.schema import LEVELS, PERIODS, TABLES
from zhizao.server import accounts
from zhizao.server.access import Principal, TenantView
from zhizao.server.app import current_principal, get_server, tenant
from zhizao.server.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized

ERRORS = {s: {"description": d, "content": {"application/json": {"example": {
    "error": {"status": s, "code": c, "message": "..."}}}}} for s, c, d in (
    (400, "bad_request", "Bad input (message says what)"), (401, "unauthorized", "Not authenticated"),
    (403, "forbidden", "Not allowed for this principal"), (404, "not_found", "Not found or not visible"),
    (413, "payload_too_large", "Body too large"), (422, "invalid_request", "Invalid parameters"))}

router = APIRouter(prefix="/api/v1", responses=ERRORS)

Level = Enum("Level", {x: x for x in LEVELS}, type=str)
Period = Enum("Period", {x: x for x in PERIODS}, type=str)
TableName = Enum("TableName", {x: x for x in TABLES}, type=str)
Fmt = Enum("Fmt", {"json": "json", "csv": "csv", "xlsx": "xlsx"}, type=str)
Lang = Enum("Lang", {"zh": "zh", "en": "en"}, type=str)
Role = Enum("Role", {r: r for r in accounts.ROLES}, type=str)
Designation = Enum("Designation", {"digital_workshop": "digital_workshop", "smart_factory": "smart_factory"},
                   type=str)
Indicator = Enum("Indicator", {x: x for x in ("production_efficiency", "defect_rate", "operating_cost",
                                              "unit_energy", "development_cycle", "energy")}, type=str)
Uncertainty = Enum("Uncertainty", {x: x for x in ("exact_hac", "ashrae14", "block_bootstrap")}, type=str)
Granularity = Enum("Granularity", {x: x for x in ("hour", "day", "week", "month")}, type=str)

Text = Annotated[Optional[str], Query(max_length=200)]
View = Annotated[TenantView, Depends(tenant)]
Who = Annotated[Principal, Depends(current_principal)]


def _v(x):
    return x.value if isinstance(x, Enum) else x


def records(df: pd.DataFrame) -> list[dict]:
    """A frame as JSON-able row objects (time stamps ISO 8601, NaN -> null)."""
    return json.loads(df.to_json(orient="records", date_format="iso", force_ascii=False, default_handler=str))


def jsonable(obj):
    if isinstance(obj, pd.DataFrame):
        return records(obj)
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    if isinstance(obj, float) and obj != obj:
        return None
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        try:
            return jsonable(obj.item())
        except (ValueError, AttributeError):
            return str(obj)
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return obj


def _table_text(df: pd.DataFrame, fmt=None) -> tuple[str | bytes, str]:
    """The body and media type of a table answer: CSV and xlsx through :func:`zhizao.export.to_bytes` (formula-
    like text neutralised), JSON as row objects."""
    from zhizao.export import media_type, to_bytes

    if _v(fmt) in ("csv", "xlsx"):
        return to_bytes(df, _v(fmt)), media_type(_v(fmt))
    return df.to_json(orient="records", date_format="iso", force_ascii=False, default_handler=str), \
        "application/json"


def table_response(df: pd.DataFrame, fmt=None) -> Response:
    text, media = _table_text(df, fmt)
    headers = {"Content-Disposition": 'attachment; filename="zhizao.xlsx"'} if _v(fmt) == "xlsx" else None
    return Response(text, media_type=media, headers=headers)


def json_response(obj, status: int = 200) -> Response:
    return Response(json.dumps(jsonable(obj), ensure_ascii=False, allow_nan=False), status_code=status,
                    media_type="application/json")


def _within(enterprise, site, area, work_center) -> dict:
    return {k: v for k, v in (("enterprise", enterprise), ("site", site), ("area", area),
                              ("work_center", work_center)) if v}


# -- public
@router.get("/health", tags=["server"], summary="Liveness and the store version (no authentication)")
def health(request: Request):
    s = get_server(request)
    return {"status": "ok", "version": zhizao.__version__, "store_version": [str(x) for x in s.store.version]}


class Login(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)


@router.post("/auth/login", tags=["accounts"], summary="Open a session; the token goes into Authorization: Bearer")
def login(request: Request, body: Login):
    s = get_server(request)
    if s.auth.locked(body.username):
        return json_response({"error": {"status": 429, "code": "too_many_attempts",
                                        "message": "too many failed logins; wait a minute"}}, 429)
    res = s.auth.login(body.username, body.password, request.headers.get("user-agent"))
    if res is None:
        raise Unauthorized("wrong user name or password")
    token, session, user = res
    return {"token": token, "session_id": session.session_id, "csrf": session.csrf,
            "expires_at": session.expires_at.isoformat(), "user": user.to_dict()}


@router.post("/auth/logout", tags=["accounts"], summary="Revoke the session used for this request")
def logout(request: Request, who: Who):
    if who.session_id is None:
        raise BadRequest("an API key has no session; revoke the key instead (DELETE /api/v1/keys/{key_id})")
    s = get_server(request)
    with s.store.accounts() as con:
        accounts.revoke_session(con, who.session_id)
    s.auth.invalidate()
    return {"revoked": who.session_id}


@router.get("/me", tags=["accounts"], summary="Who am I, and what may I see")
def me(view: View):
    a = view.access
    p = a.principal
    return {"kind": p.kind, "name": p.name, "role": p.role, "enterprise_id": p.enterprise_id, "site": p.site,
            "projects": sorted(p.projects), "enterprises": None if a.enterprises is None else sorted(a.enterprises),
            "sites": None if a.sites is None else sorted(a.sites), "levels": list(a.levels),
            "write_tables": sorted(a.write_tables), "programme": a.programme,
            "store_verifications": a.store_verifications, "admin": a.admin}


# -- schema and register of equipment
@router.get("/schema", tags=["data"], summary="The canonical tables and their columns")
def schema(who: Who):
    return {t.name: {"description": t.description, "key": list(t.key),
                     "columns": [{"name": c.name, "type": c.type, "required": c.required,
                                  "description": c.description} for c in t.columns]} for t in TABLES.values()}


@router.get("/mappings", tags=["data"], summary="The mapping files shipped with zhizao")
def mappings(who: Who):
    from zhizao.server.uploads import bundled_mappings
    from zhizao.ingest.mapping import load_mapping

    out = []
    for name, path in bundled_mappings().items():
        m = load_mapping(path)
        out.append({"name": name, "table": m.table, "description": m.description})
    return out


@router.get("/equipment", tags=["data"], summary="The equipment hierarchy you may see")
def equipment(view: View, enterprise: Text = None, site: Text = None, area: Text = None, work_center: Text = None,
              format: Fmt = Fmt.json):
    return table_response(view.equipment(_within(enterprise, site, area, work_center)), format)


# -- KPI stage
def _q(view: View, fn, level, period, start, end, id, enterprise, site, area, work_center, format, **kw):
    """A KPI-stage table for the principal; the answer's text is cached per store version, principal signature
    and parameters (the stage result itself is cached for every principal)."""
    key = ("api", fn.__name__, view.access.signature, _v(level), _v(period), start, end, tuple(id or ()),
           enterprise, site, area, work_center, _v(format), tuple(sorted((k, str(v)) for k, v in kw.items())))

    def compute():
        df = fn(_v(level), _v(period), start, end, ids=id or None,
                within=_within(enterprise, site, area, work_center), **kw)
        return _table_text(df, format)
    text, media = view.cached(key, compute)
    headers = {"Content-Disposition": 'attachment; filename="zhizao.xlsx"'} if _v(format) == "xlsx" else None
    return Response(text, media_type=media, headers=headers)


IdList = Annotated[Optional[list[str]], Query(max_length=1000, description="keep only these entity ids")]


@router.get("/kpi", tags=["kpi"], summary="ISO 22400 elements and KPIs by level, period and range")
def kpi(view: View, level: Level = Level.equipment, period: Period = Period.day, start: Text = None,
        end: Text = None, kpis: Text = None, id: IdList = None, enterprise: Text = None, site: Text = None,
        area: Text = None, work_center: Text = None, format: Fmt = Fmt.json):
    """Rows of the level's entities you may see. ``start``/``end``: ISO 8601 (both or neither; default the
    whole data range); ``kpis``: comma-separated names (default all); ``enterprise``, ``site``, ``area``,
    ``work_center``: keep entities inside that parent (drill-down)."""
    names = [k.strip() for k in kpis.split(",") if k.strip()] if kpis else None
    return _q(view, view.kpi, level, period, start, end, id, enterprise, site, area, work_center, format,
              kpis=names)


@router.get("/elements", tags=["kpi"], summary="ISO 22400 elements summed to a level per period")
def elements(view: View, level: Level = Level.equipment, period: Period = Period.day, start: Text = None,
             end: Text = None, id: IdList = None, enterprise: Text = None, site: Text = None, area: Text = None,
             work_center: Text = None, format: Fmt = Fmt.json):
    return _q(view, view.elements, level, period, start, end, id, enterprise, site, area, work_center, format)


@router.get("/losses", tags=["kpi"], summary="Time-model waterfall and six big losses [s]")
def losses(view: View, level: Level = Level.site, period: Period = Period.all, start: Text = None,
           end: Text = None, id: IdList = None, enterprise: Text = None, site: Text = None, area: Text = None,
           work_center: Text = None, format: Fmt = Fmt.json):
    return _q(view, view.losses, level, period, start, end, id, enterprise, site, area, work_center, format)


@router.get("/stop-reasons", tags=["kpi"], summary="Loss seconds by category and reason (Pareto)")
def stop_reasons(view: View, level: Level = Level.site, period: Period = Period.all, start: Text = None,
                 end: Text = None, id: IdList = None, enterprise: Text = None, site: Text = None,
                 area: Text = None, work_center: Text = None, format: Fmt = Fmt.json):
    return _q(view, view.stop_reasons, level, period, start, end, id, enterprise, site, area, work_center, format)


@router.get("/data-quality", tags=["kpi"], summary="Data-quality flags per entity and period")
def data_quality(view: View, level: Level = Level.equipment, period: Period = Period.day, start: Text = None,
                 end: Text = None, id: IdList = None, enterprise: Text = None, site: Text = None,
                 area: Text = None, work_center: Text = None, format: Fmt = Fmt.json):
    return _q(view, view.data_quality, level, period, start, end, id, enterprise, site, area, work_center, format)


@router.get("/capability", tags=["kpi"], summary="Cm, Cmk, Cp, Cpk per characteristic")
def capability(view: View, level: Level = Level.equipment, period: Period = Period.all, start: Text = None,
               end: Text = None, id: IdList = None, enterprise: Text = None, site: Text = None,
               area: Text = None, work_center: Text = None, format: Fmt = Fmt.json):
    return _q(view, view.capability, level, period, start, end, id, enterprise, site, area, work_center, format)


@router.get("/catalogue", tags=["kpi"], summary="Every ISO 22400-2 KPI and whether your data can give it")
def kpi_catalogue(view: View, format: Fmt = Fmt.json):
    return table_response(view.catalogue(), format)


# -- ingest
@router.post("/ingest/{table}", tags=["data"], status_code=201,
             summary="Upload a CSV or Parquet file into a canonical table; answers with its quarantine")
def ingest(request: Request, table: TableName, who: Who, view: View,
           file: UploadFile = File(..., description="CSV or Parquet file"),
           mapping: Optional[UploadFile] = File(None, description="mapping file (YAML)"),
           mapping_name: Optional[str] = Form(None, max_length=100, description="a bundled mapping")):
    """Records about equipment, scopes or enterprises of another tenant are refused (403) before anything is
    stored; invalid records are quarantined with the rule they broke (listed in the answer)."""
    from zhizao.server.uploads import ingest_upload

    s = get_server(request)
    t = _v(table)
    if t not in view.access.write_tables:
        raise Forbidden(f"your role may not load table {t!r}")
    res = ingest_upload(s.store, who, t, file, mapping_name or None, mapping, limit=s.max_upload)
    s.after_write()
    return json_response(res, 200 if res["already_loaded"] else 201)


@router.get("/uploads", tags=["data"], summary="Uploads you may see, latest first")
def uploads(view: View, limit: int = Query(200, ge=1, le=5000), format: Fmt = Fmt.json):
    return table_response(view.uploads(limit).drop(columns=["source"]), format)


@router.get("/uploads/{upload_id}", tags=["data"], summary="One upload with its quarantined records")
def upload(view: View, upload_id: str = PathParam(..., max_length=40)):
    u = view.upload(upload_id)
    u.pop("source", None)
    q = view.quarantine(upload_id=upload_id, limit=1000)
    return json_response({**u, "quarantine": records(q)})


@router.get("/quarantine", tags=["data"], summary="Quarantined records with the rule they broke")
def quarantine(view: View, upload_id: Text = None, limit: int = Query(500, ge=1, le=10000),
               offset: int = Query(0, ge=0, le=10**9), format: Fmt = Fmt.json):
    return table_response(view.quarantine(upload_id, limit, offset), format)


@router.get("/quarantine/summary", tags=["data"], summary="Quarantined records counted per table and rule")
def quarantine_summary(view: View, format: Fmt = Fmt.json):
    return table_response(view.quarantine_summary(), format)


# -- verify stage
class VerifyBody(BaseModel):
    indicator: Indicator
    scope: str = Field(max_length=200)
    baseline: tuple[str, str]
    reporting: tuple[str, str]
    definition: Optional[str] = Field(None, max_length=100)
    confidence: float = Field(0.9, ge=0.5, le=0.999)
    uncertainty: Uncertainty = Uncertainty.exact_hac
    granularity: Granularity = Granularity.day


@router.post("/verify", tags=["verify"], summary="Verify one indicator at one scope (not stored)")
def verify(view: View, body: VerifyBody):
    kw = {"confidence": body.confidence, "uncertainty": _v(body.uncertainty),
          "granularity": _v(body.granularity)}
    if body.definition:
        kw["definition"] = body.definition
    for w in (body.baseline, body.reporting):
        if len(w[0]) > 64 or len(w[1]) > 64:
            raise BadRequest("time stamps are at most 64 characters")
    res = view.verify(_v(body.indicator), body.scope, body.baseline, body.reporting, **kw)
    return json_response(res.to_dict())


class ProjectVerifyBody(BaseModel):
    indicators: Optional[list[Indicator]] = Field(None, max_length=10)
    confidence: float = Field(0.9, ge=0.5, le=0.999)


@router.post("/projects/{project_id}/verify", tags=["verify"],
             summary="Verify a project's indicators and store the results")
def verify_project(request: Request, view: View, body: ProjectVerifyBody,
                   project_id: str = PathParam(..., max_length=100)):
    view.require_store_verification(project_id)
    s = get_server(request)
    inds = [_v(i) for i in body.indicators] if body.indicators else None
    with s.store.write() as ws:
        try:
            results = ws.verify_project(project_id, indicators=inds, confidence=body.confidence)
        except KeyError as e:
            raise NotFound(str(e).strip("'\"")) from None
        except ValueError as e:
            raise BadRequest(str(e)) from None
    return json_response([r.to_dict() for r in results])


@router.get("/projects/{project_id}/verifications", tags=["verify"],
            summary="The latest stored result per indicator of a project")
def project_verifications(view: View, project_id: str = PathParam(..., max_length=100)):
    return json_response([r.to_dict() for r in view.stored_results(project_id)])


@router.get("/verifications", tags=["verify"], summary="Latest stored results of the projects you may see")
def verifications(view: View, format: Fmt = Fmt.json):
    df = view.latest_verifications()
    if _v(format) == "csv":
        df = df.drop(columns=["result", "warnings"])
    return table_response(df, format)


# -- portfolio
@router.get("/projects", tags=["portfolio"], summary="Projects you may see")
def projects(view: View, park: Text = None, district: Text = None, start: Text = None, end: Text = None,
             format: Fmt = Fmt.json):
    return table_response(view.projects(park, district, start, end), format)


@router.get("/projects/{project_id}", tags=["portfolio"], summary="One project with its latest verifications")
def project(view: View, project_id: str = PathParam(..., max_length=100)):
    p = view.project(project_id)
    ver = view.latest_verifications([project_id])
    des = view.designations()
    return json_response({"project": p, "verifications": ver,
                          "designations": des[des["project_id"] == project_id]})


@router.get("/enterprises", tags=["portfolio"], summary="Enterprises you may see")
def enterprises(view: View, format: Fmt = Fmt.json):
    return table_response(view.enterprises(), format)


@router.get("/designations", tags=["portfolio"], summary="Designations (demonstration project, digital workshop, "
                                                          "smart factory) you may see")
def designations(view: View, format: Fmt = Fmt.json):
    return table_response(view.designations(), format)


@router.get("/programme/statistics", tags=["portfolio"], summary="Programme statistics (analysts, administrators)")
def programme_statistics(view: View, park: Text = None, district: Text = None, start: Text = None,
                         end: Text = None, confidence: float = Query(0.9, gt=0.5, lt=1.0),
                         n_boot: int = Query(2000, ge=1, le=10000), seed: int = Query(0, ge=0, le=2**31 - 1)):
    return json_response(view.programme_statistics(park, district, start, end, confidence, n_boot, seed))


@router.get("/programme/bulletin", tags=["portfolio"], summary="The programme bulletin as HTML or Markdown")
def bulletin(view: View, lang: Lang = Lang.zh, format: str = Query("html", pattern="^(html|md)$"),
             park: Text = None, district: Text = None, start: Text = None, end: Text = None,
             n_boot: int = Query(2000, ge=1, le=10000)):
    b = view.bulletin(_v(lang), park, district, start, end, n_boot)
    if format == "md":
        return Response(b["md"], media_type="text/markdown; charset=utf-8")
    return Response(b["html"], media_type="text/html; charset=utf-8")


@router.get("/recognition", tags=["portfolio"], summary="Recognition criteria of a digital workshop or smart "
                                                         "factory against the data")
def recognition(view: View, enterprise: str = Query(..., max_length=200), designation: Designation = Query(...),
                start: Text = None, end: Text = None, scope: Text = None, format: Fmt = Fmt.json):
    df = view.recognition(enterprise, _v(designation), start, end, scope)
    if _v(format) == "csv":
        df = df.assign(evidence=[",".join(map(str, e)) for e in df["evidence"]])
    return table_response(df, format)


# -- accounts administration
def _admin(view: TenantView) -> None:
    if not view.access.admin:
        raise Forbidden("administrators only")


class UserBody(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(min_length=accounts.MIN_PASSWORD, max_length=1024)
    role: Role
    enterprise_id: Optional[str] = Field(None, max_length=200)
    display_name: Optional[str] = Field(None, max_length=200)
    projects: list[str] = Field(default_factory=list, max_length=1000)


class UserPatch(BaseModel):
    password: Optional[str] = Field(None, min_length=accounts.MIN_PASSWORD, max_length=1024)
    active: Optional[bool] = None
    projects: Optional[list[str]] = Field(None, max_length=1000)


def _account_call(fn):
    try:
        return fn()
    except accounts.AccountError as e:
        msg = str(e)
        if msg.startswith("no user"):
            raise NotFound(msg) from None
        if "exists already" in msg:
            raise Conflict(msg) from None
        raise BadRequest(msg) from None


@router.get("/users", tags=["accounts"], summary="Users (administrators)")
def users(view: View):
    _admin(view)
    return [u.to_dict() for u in accounts.list_users(view.read.con)]


@router.post("/users", tags=["accounts"], status_code=201, summary="Create a user (administrators)")
def create_user(request: Request, view: View, body: UserBody):
    _admin(view)
    s = get_server(request)
    with s.store.accounts() as con:
        u = _account_call(lambda: accounts.add_user(con, body.username, body.password, _v(body.role),
                                                    body.enterprise_id, body.display_name, body.projects))
    s.auth.invalidate()
    return u.to_dict()


@router.get("/users/{username}", tags=["accounts"], summary="One user (administrators, or yourself)")
def get_user(view: View, username: str = PathParam(..., max_length=64)):
    p = view.access.principal
    if not view.access.admin and not (p.kind == "user" and p.name == username):
        raise Forbidden("administrators only (or your own account)")
    u = accounts.get_user(view.read.con, username)
    if u is None:
        raise NotFound(f"no user {username!r}")
    return u.to_dict()


@router.patch("/users/{username}", tags=["accounts"],
              summary="Change password, enable or disable, set assigned projects (administrators; your own password)")
def patch_user(request: Request, view: View, body: UserPatch, username: str = PathParam(..., max_length=64)):
    p = view.access.principal
    own = p.kind == "user" and p.name == username
    if not view.access.admin and not (own and body.active is None and body.projects is None):
        raise Forbidden("administrators only (you may change your own password)")
    s = get_server(request)
    with s.store.accounts() as con:
        if accounts.get_user(con, username) is None:
            raise NotFound(f"no user {username!r}")
        if body.password is not None:
            _account_call(lambda: accounts.set_password(con, username, body.password))
        if body.active is not None:
            _account_call(lambda: accounts.set_active(con, username, body.active))
        if body.projects is not None:
            u = accounts.get_user(con, username)
            for pid in set(u.projects) - set(body.projects):
                accounts.unassign(con, username, pid)
            for pid in body.projects:
                _account_call(lambda: accounts.assign(con, username, pid))
        u = accounts.get_user(con, username)
    s.auth.invalidate()
    return u.to_dict()


@router.delete("/users/{username}", tags=["accounts"], summary="Disable a user and revoke their sessions")
def disable_user(request: Request, view: View, username: str = PathParam(..., max_length=64)):
    _admin(view)
    s = get_server(request)
    with s.store.accounts() as con:
        _account_call(lambda: accounts.set_active(con, username, False))
    s.auth.invalidate()
    return {"disabled": username}


class KeyBody(BaseModel):
    enterprise_id: Optional[str] = Field(None, max_length=200)
    site: Optional[str] = Field(None, max_length=200)
    name: Optional[str] = Field(None, max_length=200)


def _key_visible(view: TenantView, k: accounts.ApiKey) -> bool:
    a = view.access
    if a.admin:
        return True
    p = a.principal
    return p.kind == "user" and p.role == "enterprise" and (
        k.enterprise_id == p.enterprise_id or (k.site is not None and view.scope_visible(k.site)))


@router.get("/keys", tags=["accounts"], summary="API keys (administrators: all; enterprise users: their own)")
def keys(view: View):
    p = view.access.principal
    if not view.access.admin and not (p.kind == "user" and p.role == "enterprise"):
        raise Forbidden("administrators and enterprise users only")
    return [k.to_dict() for k in accounts.list_keys(view.read.con) if _key_visible(view, k)]


@router.post("/keys", tags=["accounts"], status_code=201,
             summary="Create an API key for one enterprise or site; the key is shown once")
def create_key(request: Request, view: View, body: KeyBody):
    a = view.access
    p = a.principal
    if not a.admin:
        if not (p.kind == "user" and p.role == "enterprise"):
            raise Forbidden("administrators and enterprise users only")
        if body.enterprise_id and body.enterprise_id != p.enterprise_id:
            raise NotFound(f"no enterprise {body.enterprise_id!r} that you may see")
        if body.site and not view.scope_visible(body.site):
            raise NotFound(f"no site {body.site!r} that you may see")
        ent = p.enterprise_id
    else:
        ent = body.enterprise_id
    s = get_server(request)
    with s.store.accounts() as con:
        key, rec = _account_call(lambda: accounts.create_key(con, ent, body.site, body.name, f"{p.kind}:{p.name}"))
    return {"key": key, **rec.to_dict()}


@router.delete("/keys/{key_id}", tags=["accounts"], summary="Revoke an API key")
def revoke_key(request: Request, view: View, key_id: str = PathParam(..., max_length=40)):
    k = accounts.get_key(view.read.con, key_id)
    if k is None or not _key_visible(view, k):
        raise NotFound(f"no key {key_id!r} that you may revoke")
    s = get_server(request)
    with s.store.accounts() as con:
        accounts.revoke_key(con, key_id)
    s.auth.invalidate()
    return {"revoked": key_id}


@router.get("/sessions", tags=["accounts"], summary="Sessions (administrators: all; users: their own)")
def sessions(view: View):
    p = view.access.principal
    if view.access.admin:
        rows = accounts.list_sessions(view.read.con)
    elif p.kind == "user":
        rows = accounts.list_sessions(view.read.con, p.name)
    else:
        raise Forbidden("an API key has no sessions")
    return json_response(rows)


@router.delete("/sessions/{session_id}", tags=["accounts"], summary="Revoke a session")
def revoke_session(request: Request, view: View, session_id: str = PathParam(..., max_length=40)):
    p = view.access.principal
    sess = accounts.get_session(view.read.con, session_id)
    if sess is None or not (view.access.admin or (p.kind == "user" and sess["username"] == p.name)):
        raise NotFound(f"no session {session_id!r} that you may revoke")
    s = get_server(request)
    with s.store.accounts() as con:
        accounts.revoke_session(con, session_id)
    s.auth.invalidate()
    return {"revoked": session_id}


__all__ = ["router", "records", "jsonable"]
