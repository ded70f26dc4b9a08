"""The dashboard: server-rendered pages (Jinja2, inline SVG charts, one local stylesheet, no script, no CDN).

Pages: plant view (``/plant``, drill-down ``/plant/{level}/{id}``), projects (``/projects``,
``/projects/{id}``), programme (``/programme``, bulletin, ``/recognition``), data (``/data``, uploads and
quarantine), accounts (``/admin``). Simplified Chinese by default, English with ``?lang=en`` (remembered in a
cookie); messages come from the Babel catalogues of :mod:`zhizao.i18n`, numbers and dates are
formatted for the locale.

The content of a page is cached per store version, principal signature, language and URL; the frame around it
(user name, the logout form's CSRF token) is rendered per request.
"""

from __future__ import annotations

import hmac
import secrets
from typing import TypeGuard
from urllib.parse import quote, urlencode, urlparse

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from zhizao.i18n import LANGUAGES
from zhizao.messages import define
from zhizao.schema import LEVELS, TABLES
from zhizao.server import accounts, views
from zhizao.server.access import TenantView
from zhizao.server.auth import COOKIE, DEVICE_COOKIE, DEVICE_DAYS
from zhizao.server.deps import MaybeWho, View, get_server
from zhizao.server.errors import ApiError, BadRequest, NotFound
from zhizao.server.pages import (  # noqa: F401
    FORM_EXPIRED,
    LANG_COOKIE,
    NAV,
    QUERY_KEYS,
    TEMPLATES,
    TOO_LONG,
    check_csrf,
    env,
    error_page,
    lang_of,
    remember,
    render,
    request_query,
    safe_next,
    url_with,
)
from zhizao.server.uploads import bundled_mappings, ingest_upload

#: The pre-session cookie of the login form's CSRF token (path /login only).
LOGIN_COOKIE = "zhizao_login"
LOGIN_COOKIE_SECONDS = 2 * 3600
router = APIRouter(include_in_schema=False)
NO_LEVEL = define("server.no_level", "unknown level '%(level)s'")
NO_CHART = define("server.no_chart", "no chart '%(name)s' for %(level)s %(id)s")
NO_PROGRAMME_CHART = define("server.no_programme_chart", "no chart '%(name)s' of the programme for these filters")
UNKNOWN_INDICATOR = define("server.unknown_indicator", "unknown indicator '%(name)s'")
NOT_A_WHOLE_NUMBER = define("server.not_whole_number", "%(name)s is a whole number")
UNKNOWN_TABLE = define("server.unknown_table_form", "unknown table '%(table)s'")


# -- login
@router.get("/", response_class=HTMLResponse)
def home(request: Request, p: MaybeWho):
    return RedirectResponse("/plant" if p else "/login", status_code=303)


def _login_page(request: Request, nxt: str, error: str | None = None, status: int = 200) -> Response:
    """The login form with a login CSRF token: a random value in a pre-session cookie and the same value in
    the form (a foreign page can neither read the cookie nor set the field), renewed when missing."""
    pg = views.Page(lang_of(request)[0])
    token = request.cookies.get(LOGIN_COOKIE)
    if not _token_like(token):
        token = secrets.token_urlsafe(24)
    resp = render(request, "login.html.j2", {"next": safe_next(nxt), "error": error, "login_csrf": token},
                  pg._("Log in"), status=status)
    resp.set_cookie(LOGIN_COOKIE, token, max_age=LOGIN_COOKIE_SECONDS, httponly=True, samesite="strict",
                    secure=get_server(request).secure_cookies, path="/login")
    return resp


def _token_like(token) -> TypeGuard[str]:
    return isinstance(token, str) and 20 <= len(token) <= 64 and token.replace("-", "").replace("_", "").isalnum()


def same_origin(request: Request) -> bool:
    """False when the request's ``Origin`` (or, without one, its ``Referer``) names another site than the one
    the request was sent to (its ``Host``); True when it names this site or the browser sent neither."""
    host = (request.headers.get("host") or "").lower()
    origin = request.headers.get("origin")
    if origin is None:
        ref = request.headers.get("referer")
        if not ref:
            return True
        origin = ref
    if origin.strip().lower() == "null":
        return False
    u = urlparse(origin.strip())
    return bool(u.scheme in ("http", "https") and u.netloc and u.netloc.lower() == host)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, p: MaybeWho, next: str = "/plant"):
    if p is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_page(request, next)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, username: str = Form(..., max_length=64), password: str = Form(..., max_length=1024),
          next: str = Form("/plant", max_length=500), login_csrf: str = Form("", max_length=100)):
    """Log in from the form: refused (403, nothing checked) unless the form came from this site, i.e. carries
    the login CSRF token of its pre-session cookie and no foreign Origin or Referer (login CSRF: a foreign
    page must not log the browser into the attacker's account)."""
    s = get_server(request)
    lang = lang_of(request)[0]
    pg = views.Page(lang)
    cookie = request.cookies.get(LOGIN_COOKIE)
    if not same_origin(request) or not _token_like(cookie) or not hmac.compare_digest(
            str(cookie), str(login_csrf)):
        return _login_page(request, next, FORM_EXPIRED().text(lang), 403)
    client = request.client.host if request.client else None
    try:
        res = s.auth.login(username, password, request.headers.get("user-agent"), client,
                           request.cookies.get(DEVICE_COOKIE))
    except ApiError as e:  # too many failed logins: wait
        return _login_page(request, next, e.text(lang), e.status)
    if res is None:
        return _login_page(request, next, pg._("Wrong user name or password."), 401)
    token, _session, user = res
    resp = RedirectResponse(safe_next(next), status_code=303)
    resp.set_cookie(COOKIE, token, max_age=accounts.SESSION_HOURS * 3600, httponly=True, samesite="lax",
                    secure=s.secure_cookies, path="/")
    resp.set_cookie(DEVICE_COOKIE, s.auth.device_cookie(user.username), max_age=DEVICE_DAYS * 86400, httponly=True,
                    samesite="strict", secure=s.secure_cookies, path="/")
    resp.delete_cookie(LOGIN_COOKIE, path="/login")
    return resp


@router.post("/logout")
def logout(request: Request, view: View, csrf: str = Form("", max_length=100)):
    check_csrf(view, csrf)
    s = get_server(request)
    if view.access.principal.session_id:
        with s.store.accounts() as con:
            accounts.revoke_session(con, view.access.principal.session_id)
        s.auth.invalidate()
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(COOKIE, path="/")
    return resp


# -- plant view
@router.get("/plant", response_class=HTMLResponse)
def plant(request: Request, view: View):
    remember(request, view)
    pg = views.Page(lang_of(request)[0])
    q = request_query(request)
    return render(request, "plant_home.html.j2", lambda: {"home": views.plant_home(view, pg, q), "q": q},
                  pg._("Plant"), "plant", view=view,
                  cache_key=("plant", tuple(sorted(q.items()))), tenant=True)


@router.get("/plant/{level}/{eid}", response_class=HTMLResponse)
def plant_entity(request: Request, level: str, eid: str, view: View):
    remember(request, view)
    if level not in LEVELS:
        raise NotFound(NO_LEVEL, level=level)
    if len(eid) > 200:
        raise BadRequest(TOO_LONG, name="id")
    q = request_query(request)
    lang = lang_of(request)[0]
    base = f"/plant/{quote(level)}/{quote(eid, safe='')}/chart/"
    suffix = "?" + urlencode({**q, "lang": lang})
    pg = views.Page(lang, chart_url=lambda name: base + name + ".svg" + suffix)

    def build():
        return {"e": views.plant_entity(view, pg, level, eid, q), "q": q,
                "periods": [("day", pg._("Day")), ("week", pg._("Week")), ("month", pg._("Month"))]}
    return render(request, "plant_entity.html.j2", build, f"{pg.level(level)} {eid}", "plant", view=view,
                  cache_key=("plant", level, eid, tuple(sorted(q.items()))), tenant=True)


@router.get("/plant/{level}/{eid}/chart/{name}.svg")
def plant_chart(request: Request, level: str, eid: str, name: str, view: View):
    """One chart of an entity's page, as SVG (drawn once per store version, language and query)."""
    remember(request, view)
    if level not in LEVELS:
        raise NotFound(NO_LEVEL, level=level)
    if len(eid) > 200 or len(name) > 40:
        raise BadRequest(TOO_LONG, name="id")
    lang = lang_of(request)[0]
    q = request_query(request)
    svg = view.cached(("chart", lang, view.access.signature, level, eid, name, tuple(sorted(q.items()))),
                      lambda: views.plant_chart(view, views.Page(lang), level, eid, q, name), tenant=True)
    if svg is None:
        raise NotFound(NO_CHART, name=name, level=level, id=eid)
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "private, max-age=60"})


# -- projects
@router.get("/projects", response_class=HTMLResponse)
def projects(request: Request, view: View):
    remember(request, view)
    pg = views.Page(lang_of(request)[0])
    q = request_query(request)
    return render(request, "projects.html.j2", lambda: {"list": views.project_list(view, pg, q), "q": q},
                  pg._("Projects"),
                  "projects", view=view, cache_key=("projects", tuple(sorted(q.items()))))


@router.get("/projects/{project_id}", response_class=HTMLResponse)
def project(request: Request, project_id: str, view: View):
    remember(request, view)
    if len(project_id) > 100:
        raise BadRequest(TOO_LONG, name="project id")
    pg = views.Page(lang_of(request)[0])
    ctx = {"d": views.project_detail(view, pg, project_id),
           "csrf": view.access.principal.csrf, "notice": request.query_params.get("verified")}
    return render(request, "project.html.j2", ctx, f"{pg._('Project')} {project_id}", "projects", view=view)


@router.post("/projects/{project_id}/verify")
def project_verify(request: Request, project_id: str, view: View, csrf: str = Form("", max_length=100),
                   indicator: list[str] = Form([], max_length=10)):
    from zhizao.verify import PROJECT_INDICATORS

    remember(request, view)
    check_csrf(view, csrf)
    view.require_store_verification(project_id)
    bad = [i for i in indicator if i not in PROJECT_INDICATORS]
    if bad:
        raise BadRequest(UNKNOWN_INDICATOR, name=bad[0])
    results = get_server(request).verify_project(project_id, indicator or None)
    return RedirectResponse(f"/projects/{project_id}?verified={len(results)}", status_code=303)


# -- programme
@router.get("/programme", response_class=HTMLResponse)
def programme(request: Request, view: View):
    remember(request, view)
    pg = views.Page(lang_of(request)[0])
    view.require("programme", "see programme statistics (analysts and administrators only)")
    q = request_query(request)
    bq = urlencode({k: v for k, v in q.items() if k in ("park", "district", "from", "to")})
    return render(request, "programme.html.j2", lambda: {"p": views.programme(view, pg, q), "q": q, "bq": bq},
                  pg._("Programme"), "programme", view=view, cache_key=("programme", tuple(sorted(q.items()))))


@router.get("/programme/chart/{name}.svg")
def programme_chart(request: Request, name: str, view: View):
    """One chart of the programme page, as SVG (drawn once per store version, language and filters)."""
    remember(request, view)
    view.require("programme", "see programme statistics (analysts and administrators only)")
    if len(name) > 40:
        raise BadRequest(TOO_LONG, name="name")
    svg = views.programme_chart(view, views.Page(lang_of(request)[0]), request_query(request), name)
    if svg is None:
        raise NotFound(NO_PROGRAMME_CHART, name=name)
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "private, max-age=60"})


def _bulletin_request(request: Request, view) -> tuple[str, dict, int]:
    """The notice's language (``lang`` or the reader's), filters and bootstrap resamples (1 to 10,000)."""
    remember(request, view)
    asked = request.query_params.get("lang")
    lang = asked if asked is not None and asked in LANGUAGES else lang_of(request)[0]
    q = request_query(request)
    try:
        n_boot = min(max(int(request.query_params.get("n_boot", 2000)), 1), 10000)
    except ValueError:
        raise BadRequest(NOT_A_WHOLE_NUMBER, name="n_boot") from None
    return lang, q, n_boot


@router.get("/programme/bulletin", response_class=HTMLResponse)
def programme_bulletin(request: Request, view: View):
    lang, q, n_boot = _bulletin_request(request, view)
    b = view.bulletin(lang, q.get("park"), q.get("district"), q.get("from"), q.get("to"), n_boot)
    return HTMLResponse(b["html"])


@router.get("/programme/bulletin.pdf")
def programme_bulletin_pdf(request: Request, view: View):
    """The notice as PDF (A4, page numbers, contents), for download."""
    lang, q, n_boot = _bulletin_request(request, view)
    b = view.bulletin(lang, q.get("park"), q.get("district"), q.get("from"), q.get("to"), n_boot, pdf=True)
    return Response(b["pdf"], media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="bulletin.{lang}.pdf"'})


@router.get("/programme/export.xlsx")
def programme_export(request: Request, view: View):
    """Every table of the programme page, one sheet each, as the page shows them."""
    from zhizao.export import XLSX_TYPE, display_frame, xlsx_bytes

    remember(request, view)
    pg = views.Page(lang_of(request)[0])
    view.require("programme", "see programme statistics (analysts and administrators only)")
    q = request_query(request)
    p = views.programme(view, pg, q)
    sheets, pct = {}, {}
    titles = {"averages": pg._("Average results"), "coverage": pg._("Coverage"), "by_type": pg._("By type"),
              "by_district": pg._("By district"), "by_industry": pg._("By industry"), "by_year": pg._("By year"),
              "designations": pg._("Designations"), "designation_levels": pg._("Designations by level"),
              "rankings": pg._("Rankings")}
    if p.get("simulated"):
        sheets[pg._("SIMULATED DATA")] = __import__("pandas").DataFrame(
            {pg._("Data source"): [pg._("SIMULATED DATA: this page shows records that come from the simulator, "
                                        "not from a real plant or project.")]})
    for key, title in titles.items():
        if p.get(key):
            df, cols = display_frame(p[key])
            sheets[title], pct[title] = df, cols
    return Response(xlsx_bytes(sheets, pct), media_type=XLSX_TYPE,
                    headers={"Content-Disposition": "attachment; filename=\"programme.xlsx\"; "
                                                    f"filename*=UTF-8''{quote(pg._('Programme'))}.xlsx"})


@router.get("/recognition", response_class=HTMLResponse)
def recognition(request: Request, view: View):
    remember(request, view)
    pg = views.Page(lang_of(request)[0])
    q = request_query(request)
    return render(request, "recognition.html.j2", lambda: {"r": views.recognition(view, pg, q), "q": q},
                  pg._("Recognition checks"), "programme", view=view,
                  cache_key=("recognition", tuple(sorted(q.items()))))


# -- data
def _data_ctx(view: TenantView, pg: views.Page, error: str | None = None) -> dict:
    q = view.quarantine(limit=50) if view.access.raw else None
    return {"d": views.data_page(view, pg), "tables": sorted(view.access.write_tables, key=list(TABLES).index),
            "mappings": list(bundled_mappings()), "csrf": view.access.principal.csrf, "error": error,
            "quarantine": views.quarantine_rows(pg, q) if q is not None else None}


@router.get("/data", response_class=HTMLResponse)
def data(request: Request, view: View):
    remember(request, view)
    pg = views.Page(lang_of(request)[0])
    return render(request, "data.html.j2", _data_ctx(view, pg), pg._("Data"), "data", view=view)


@router.post("/data/upload")
def data_upload(request: Request, view: View, table: str = Form(..., max_length=40),
                file: UploadFile = File(...), mapping_name: str = Form("", max_length=100),
                mapping: UploadFile | None = File(None), csrf: str = Form("", max_length=100)):
    remember(request, view)
    check_csrf(view, csrf)
    pg = views.Page(lang_of(request)[0])
    s = get_server(request)
    if mapping is not None and not mapping.filename:
        mapping = None
    try:
        if table not in TABLES:
            raise BadRequest(UNKNOWN_TABLE, table=table)
        view.require_write(table)
        res = ingest_upload(s.store, view.access.principal, table, file, mapping_name or None, mapping,
                            limit=s.max_upload)
    except ApiError as e:
        return render(request, "data.html.j2", _data_ctx(view, pg, e.text(pg.lang)), pg._("Data"), "data", view=view,
                      status=e.status)
    s.after_write(res.get("touched"))
    return RedirectResponse(f"/data/uploads/{res['upload_id']}", status_code=303)


@router.get("/data/uploads/{upload_id}", response_class=HTMLResponse)
def data_upload_page(request: Request, upload_id: str, view: View):
    remember(request, view)
    if len(upload_id) > 40:
        raise BadRequest(TOO_LONG, name="upload id")
    pg = views.Page(lang_of(request)[0])
    u = view.upload(upload_id)
    q = view.quarantine(upload_id=upload_id, limit=1000)
    ctx = {"u": u, "uploaded": pg.datetime(u["uploaded_at"]), "rows": views.quarantine_rows(pg, q), "n": len(q)}
    return render(request, "upload.html.j2", ctx, f"{pg._('Upload')} {u['file_name']}", "data", view=view)


# -- accounts
def _admin_ctx(view: TenantView, pg: views.Page, notice: str | None = None, new_key: str | None = None,
               error: str | None = None) -> dict:
    a = view.access
    p = a.principal
    con = view.read.con
    users = accounts.list_users(con) if view.manages_users else []
    can_keys = view.manages_keys
    keys = view.keys(accounts.list_keys(con)) if can_keys else []
    sessions = accounts.list_sessions(con, view.session_owner()) if p.kind == "user" else []
    return {"users": users, "keys": keys, "sessions": sessions, "admin": a.admin, "can_keys": can_keys,
            "csrf": p.csrf, "notice": notice, "new_key": new_key, "error": error, "roles": accounts.ROLES,
            "me": p, "fmt_time": pg.datetime,
            "role_labels": {r: pg._(views.ROLE_LABELS[r]) for r in accounts.ROLES}}


@router.get("/admin", response_class=HTMLResponse)
def admin(request: Request, view: View):
    remember(request, view)
    pg = views.Page(lang_of(request)[0])
    return render(request, "admin.html.j2", _admin_ctx(view, pg), pg._("Accounts"), "admin", view=view)


def _admin_action(request: Request, view: TenantView, fn, success: str):
    pg = views.Page(lang_of(request)[0])
    s = get_server(request)
    try:
        with s.store.accounts() as con:
            extra = fn(con)
    except accounts.AccountError as e:
        return render(request, "admin.html.j2", _admin_ctx(view, pg, error=e.text(pg.lang)), pg._("Accounts"), "admin",
                      view=view, status=400)
    s.auth.invalidate()
    if isinstance(extra, str):  # a new key: shown once, never in a URL
        return render(request, "admin.html.j2", _admin_ctx(view, pg, notice=pg._(success), new_key=extra),
                      pg._("Accounts"), "admin", view=view, status=201)
    return RedirectResponse("/admin", status_code=303)


@router.post("/admin/users")
def admin_add_user(request: Request, view: View, username: str = Form(..., max_length=64),
                   password: str = Form(..., max_length=1024), role: str = Form(..., max_length=20),
                   enterprise_id: str = Form("", max_length=200), projects: str = Form("", max_length=5000),
                   district: str = Form("", max_length=100), csrf: str = Form("", max_length=100)):
    remember(request, view)
    check_csrf(view, csrf)
    view.require_admin()
    pids = [x.strip() for x in projects.replace(",", " ").split() if x.strip()]
    return _admin_action(request, view, lambda con: accounts.add_user(
        con, username, password, role, enterprise_id or None, None, pids, district or None) and None,
        "User created.")


@router.post("/admin/users/{username}/active")
def admin_user_active(request: Request, username: str, view: View, active: str = Form(..., max_length=5),
                      csrf: str = Form("", max_length=100)):
    remember(request, view)
    check_csrf(view, csrf)
    view.require_admin()
    return _admin_action(request, view, lambda con: accounts.set_active(con, username, active == "1"), "")


@router.post("/admin/keys")
def admin_add_key(request: Request, view: View, enterprise_id: str = Form("", max_length=200),
                  site: str = Form("", max_length=200), name: str = Form("", max_length=200),
                  csrf: str = Form("", max_length=100)):
    remember(request, view)
    check_csrf(view, csrf)
    p = view.access.principal
    ent, site_ = view.key_scope(enterprise_id or None, site or None)
    return _admin_action(request, view, lambda con: accounts.create_key(
        con, ent, site_, name or None, f"{p.kind}:{p.name}")[0],
        "API key created. Copy it now: it is not shown again.")


@router.post("/admin/keys/{key_id}/revoke")
def admin_revoke_key(request: Request, key_id: str, view: View, csrf: str = Form("", max_length=100)):
    remember(request, view)
    check_csrf(view, csrf)
    view.require_key(accounts.get_key(view.read.con, key_id), key_id)
    return _admin_action(request, view, lambda con: accounts.revoke_key(con, key_id) and None, "")


@router.post("/admin/sessions/{session_id}/revoke")
def admin_revoke_session(request: Request, session_id: str, view: View, csrf: str = Form("", max_length=100)):
    remember(request, view)
    check_csrf(view, csrf)
    view.require_session(accounts.get_session(view.read.con, session_id), session_id)
    return _admin_action(request, view, lambda con: accounts.revoke_session(con, session_id) and None, "")


@router.get("/favicon.ico")
def favicon():
    return Response(status_code=204)
