"""How the dashboard renders a page: templates, the language, the frame (navigation, user, logout form), error
pages and the form checks shared by the dashboard's routers (:mod:`zhizao.server.web`,
:mod:`zhizao.server.programme_web`).

The content of a page is cached per store version, principal signature, language and URL; the frame around it
(user name, the logout form's CSRF token) is rendered per request.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path
from urllib.parse import quote, urlencode, urlparse

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup, escape

import zhizao
from zhizao.i18n import LANGUAGES, N_, translations
from zhizao.messages import define
from zhizao.server import views
from zhizao.server.access import Principal, TenantView, nav_items
from zhizao.server.errors import BadRequest, Forbidden, NotFound

TEMPLATES = Path(__file__).parent / "templates"
LANG_COOKIE = "zhizao_lang"
QUERY_KEYS = ("from", "to", "period", "park", "district", "enterprise", "designation", "scope")

TOO_LONG = define("server.parameter_too_long", "%(name)s is too long")
FORM_EXPIRED = define("server.form_expired",
                      "the form has expired or was not sent by this site; reload the page and try again")


def cell_html(c: dict) -> Markup:
    """One table cell (:func:`zhizao.server.views.cell`) as HTML; the templates' macro ``cell`` calls it."""
    bar = c.get("bar")
    if bar is not None:
        return Markup(f'<td class="barcell"><span class="bar" style="width:{escape(format(float(bar), ".1f"))}%">'
                      '</span></td>')
    out = "<td"
    if c.get("num"):
        out += ' class="num"'
    elif c.get("cls"):
        out += f' class="{escape(c.get("cls"))}"'
    if c.get("title"):
        out += f' title="{escape(c.get("title"))}"'
    href = c.get("href")
    text = escape(c.get("text"))
    return Markup(out + (f'><a href="{escape(href)}">{text}</a></td>' if href else f">{text}</td>"))


def table_rows(rows) -> Markup:
    """The ``<tr>`` rows of a table (lists of cells, :func:`zhizao.server.views.cell`) as HTML, each cell by
    :func:`cell_html` without a template call per cell (a register's project list has 44,000 cells)."""
    return Markup("".join("<tr>" + "".join(cell_html(c) for c in row) + "</tr>\n" for row in rows))


@cache
def env(lang: str) -> jinja2.Environment:
    e = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                           extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True,
                           undefined=jinja2.StrictUndefined)
    e.globals["table_rows"] = table_rows
    e.globals["cell_html"] = cell_html
    e.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]  # added by the jinja2.ext.i18n extension
    return e


def lang_of(request: Request) -> tuple[str, bool]:
    q = request.query_params.get("lang")
    if q in LANGUAGES:
        return q, True
    c = request.cookies.get(LANG_COOKIE)
    return (c if c in LANGUAGES else "zh"), False


def url_with(request: Request, **params) -> str:
    q = dict(request.query_params)
    q.update({k: v for k, v in params.items() if v is not None})
    return request.url.path + "?" + urlencode(q)


def request_query(request: Request) -> dict:
    out = {}
    for k in QUERY_KEYS:
        v = request.query_params.get(k)
        if v:
            if len(v) > 200:
                raise BadRequest(TOO_LONG, name=k)
            out[k] = v
    return out


NAV = (("plant", "/plant", N_("Plant")), ("projects", "/projects", N_("Projects")),
       ("register", "/register", N_("Register")), ("applications", "/applications", N_("Applications")),
       ("programme", "/programme", N_("Programme")), ("audit", "/audit", N_("Audit log")),
       ("data", "/data", N_("Data")), ("admin", "/admin", N_("Accounts")))


EXPORT_FORMATS = ("xlsx", "csv")


def _tables(obj, path: tuple = ()):
    """(key, table) of every displayed table in a page's context, in a stable order (key: dotted path)."""
    if isinstance(obj, dict):
        if "head" in obj and "rows" in obj and isinstance(obj.get("rows"), list):
            yield ".".join(path), obj
            return
        for k in obj:
            yield from _tables(obj[k], path + (str(k),))
    elif isinstance(obj, (list, tuple)):
        for k, v in enumerate(obj):
            yield from _tables(v, path + (str(k),))


def _simulated(obj) -> bool:
    """Whether a page's context says it shows simulated records (any ``"simulated": True``)."""
    if isinstance(obj, dict):
        return obj.get("simulated") is True or any(_simulated(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(_simulated(v) for v in obj)
    return False


def _export_links(request: Request, c: dict) -> None:
    """Give every table of a page its download links (the same URL with ``export=<key>&format=xlsx|csv``)."""
    base = {k: v for k, v in request.query_params.items() if k not in ("export", "format")}
    for key, t in _tables(c):
        t["export"] = {f: request.url.path + "?" + urlencode({**base, "export": key, "format": f})
                       for f in EXPORT_FORMATS}


def _export(request: Request, c: dict, title: str, lang: str) -> Response:
    """One table of a page as .xlsx or CSV: the headers, labels and local dates the page shows."""
    from zhizao.export import CSV_TYPE, XLSX_TYPE, csv_bytes, display_frame, xlsx_bytes

    key, fmt = request.query_params.get("export", ""), request.query_params.get("format", "xlsx")
    if fmt not in EXPORT_FORMATS:
        raise BadRequest(f"unknown format {fmt!r}; one of {', '.join(EXPORT_FORMATS)}")
    tables = dict(_tables(c))
    if key not in tables:
        raise NotFound(f"no table {key!r} on this page")
    df, pct = display_frame(tables[key])
    pg = views.Page(lang)
    name = title
    if _simulated(c):
        mark = pg._("SIMULATED DATA")
        df.insert(0, pg._("Data source"), mark)
        name = f"{mark} {title}"
    stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in f"{name}-{key}").strip("_")[:80] or "table"
    if fmt == "csv":
        body, media = csv_bytes(df), CSV_TYPE
    else:
        body, media = xlsx_bytes({name: df}, {name: pct}), XLSX_TYPE
    return Response(body, media_type=media, headers={
        "Content-Disposition": f"attachment; filename=\"table.{fmt}\"; filename*=UTF-8''{quote(stem)}.{fmt}"})


def render(request: Request, template: str, ctx, title: str, nav: str | None = None, status: int = 200,
           view: TenantView | None = None, principal: Principal | None = None, cache_key: tuple | None = None,
           headers: dict | None = None, tenant: bool = False) -> Response:
    """Render a page: its content (cached under ``cache_key`` when given) inside the frame.

    ``tenant=True`` for a page made only of the principal's own shop-floor data, the equipment table, the
    register and verifications (the plant pages): its cached content then outlives other tenants' uploads
    (:meth:`zhizao.server.access.TenantView.cached`), and when the server has a ``fresh_wait``, a page whose
    figures take longer than that to compute shows the earlier ones, marked with their time, and refreshes
    itself (:meth:`zhizao.server.access.TenantView.cached_or_stale`).

    With ``?export=<table key>&format=xlsx|csv`` the answer is that table of the page as a file instead."""
    lang, from_query = lang_of(request)
    pg = views.Page(lang)
    e = env(lang)
    if request.query_params.get("export") and status == 200:
        c = ctx() if callable(ctx) else ctx
        return _export(request, c, title, lang)

    def content():
        c = ctx() if callable(ctx) else ctx  # a callable is only called when the content is not cached
        if isinstance(c, dict):
            _export_links(request, c)
        return e.get_template(template).render(**c, pg=pg, f=pg.f, lang=lang)
    # a plant page (shop-floor data, uploaded all the time) whose figures changed shows the earlier figures,
    # marked with their time, when the current ones take longer than the server's fresh_wait; the register's
    # pages always wait (a user who just changed the register expects to see the change)
    as_of = None
    wait = getattr(getattr(request.app.state, "server", None), "fresh_wait", None)
    if cache_key is None or view is None:
        body = content()
    else:
        key = ("page", lang, view.access.signature, *cache_key)
        if wait is not None and tenant:
            body, as_of = view.cached_or_stale(key, content, wait, tenant=True)
        else:
            body = view.cached(key, content, tenant=tenant)
    principal = principal or (view.access.principal if view is not None else None)
    items = nav_items(principal, NAV) if principal is not None else []
    html = e.get_template("layout.html.j2").render(
        content=Markup(body), title=title, nav=nav, nav_items=items, principal=principal,
        role_label=pg._(views.ROLE_LABELS.get(principal.role, principal.role)) if principal else None,
        lang=lang, html_lang="zh-CN" if lang == "zh" else "en", url_zh=url_with(request, lang="zh"),
        url_en=url_with(request, lang="en"), version=zhizao.__version__, pg=pg,
        stale_as_of=pg.datetime(dt.datetime.fromtimestamp(as_of, dt.UTC)) if as_of is not None else None,
        stale_epoch=f"{as_of:.3f}" if as_of is not None else None, refresh_url=url_with(request))
    resp = HTMLResponse(html, status_code=status, headers=headers)
    if from_query:
        resp.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", httponly=True)
    return resp


def error_page(request: Request, status: int, message: str) -> Response:
    lang, _q = lang_of(request)
    pg = views.Page(lang)
    titles = {400: pg._("Bad request"), 403: pg._("Not allowed"), 404: pg._("Not found"),
              413: pg._("File too large"), 415: pg._("Unsupported file type"), 422: pg._("Invalid input"),
              500: pg._("Internal error")}
    principal = getattr(request.state, "principal", None)
    return render(request, "error.html.j2", {"status": status, "message": message,
                                             "heading": titles.get(status, str(status))},
                  titles.get(status, str(status)), status=status, principal=principal)


def check_csrf(view: TenantView, token: str | None) -> None:
    p = view.access.principal
    if p.csrf is None or token != p.csrf:
        raise Forbidden(FORM_EXPIRED)


def remember(request: Request, view: TenantView) -> None:
    request.state.principal = view.access.principal


def safe_next(nxt: str | None) -> str:
    if not nxt or not nxt.startswith("/") or nxt.startswith("//") or "\\" in nxt or len(nxt) > 500:
        return "/plant"
    u = urlparse(nxt)
    if u.scheme or u.netloc:
        return "/plant"
    return nxt


