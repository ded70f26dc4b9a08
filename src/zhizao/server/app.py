"""The FastAPI application: state, authentication dependencies, error handling, security headers.

:func:`create_app` builds the application over one store; ``zhizao serve`` runs it with uvicorn (one
process: DuckDB lets one process own the store).
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from zhizao.messages import define
from zhizao.report import charts
from zhizao.server import CACHE_MB, CACHE_SIZE, api, invalid, programme_api, programme_web, web
from zhizao.server.access import TenantView, admin_access, enterprise_access
from zhizao.server.admission import PATIENCE, Admission
from zhizao.server.auth import Auth
from zhizao.server.deps import current_principal, get_server, optional_principal, tenant
from zhizao.server.errors import ApiError, body
from zhizao.server.store import Store

if TYPE_CHECKING:
    from zhizao.server.live import LiveSources

log = logging.getLogger("zhizao.server")
HERE = Path(__file__).parent
INTERNAL_ERROR = define("server.internal_error", "internal error (%(error)s); the store is unchanged")
NO_SUCH_PAGE = define("server.no_such_page", "no such page or endpoint: %(path)s")
#: Largest request body that is not a file upload [bytes].
MAX_BODY = 1 << 20
#: Paths that take files (bodies up to the upload limit): uploads, the maturity import, evidence (by suffix).
UPLOAD_PATHS = ("/api/v1/ingest/", "/data/upload", "/api/v1/maturity/import", "/maturity/import")

CSP = ("default-src 'self'; script-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


class Server:
    """What the application holds: the store, authentication, settings."""

    def __init__(self, db, max_upload_mb: float = 200, warm: bool = True, secure_cookies: bool = False,
                 cache_size: int = CACHE_SIZE, limits=None, fresh_wait: float | None = None, live=(),
                 cache_mb: float | None = CACHE_MB):
        from zhizao.server.uploads import clean_stale_folders

        clean_stale_folders()  # upload folders of a server that crashed
        charts.draw_in_worker()  # drawing holds the interpreter: the other requests would wait for it
        self.store = Store(db, cache_size=cache_size, limits=limits, cache_mb=cache_mb)
        self.auth = Auth(self.store)
        self.max_upload = int(max_upload_mb * 10**6)
        self.secure_cookies = secure_cookies
        #: seconds a cached page waits for its current value before the earlier one is shown (None: always)
        self.fresh_wait = fresh_wait
        self.warm = warm
        #: the live sources the server hosts (``zhizao serve --mqtt/--opcua``), started by :meth:`start`
        self.live: LiveSources | None = None
        if live:
            from zhizao.server.live import LiveSources  # paho and asyncua only for a server with live sources

            self.live = LiveSources(self, live)
        self._warm_lock = threading.Lock()
        self._warm_running = False
        self._warm_pending: set = set()  # "*" (the whole store) and enterprise ids still to warm
        #: Set when the server is ready (:meth:`start`): health answers 503 "starting" before.
        self.ready = threading.Event()
        self.ready.set()

    def start(self) -> None:
        """Warm the pages' results of the whole store in the background (:meth:`warm_up`); the server reports
        ready (``/api/v1/health`` answers 200) when that is done, so that no page's first request after a restart
        waits for it (nor races it for the cores). Pages are answered meanwhile. Without ``warm``: ready now."""
        if self.warm:
            self.ready.clear()
            # the chart worker starts beside the warm-up (a fresh interpreter and vl-convert's engine: ~1 s)
            threading.Thread(target=charts.warm_worker, daemon=True, name="zhizao-charts").start()
            self.after_write()
        if self.live is not None:
            self.live.start()

    def after_write(self, touched=None) -> None:
        """After a write: warm again, in the background, the stage results the dashboard's pages start from,
        for what the write changed: the touched enterprises' own results (what their users' pages read), or
        the whole store's when the write touched all data (``touched`` None: at start, or ``data:*``). One
        warm-up at a time; writes during one add to what the next one warms. Nothing to warm when the write
        changed no data. A tenant's upload thus never makes the server recompute the whole store. With
        ``fresh_wait``, a tenant's upload warms nothing: its pages show their earlier figures while they refresh
        themselves, and warming them too would compute them twice."""
        if not self.warm or (touched is not None and not any(d.startswith("data") for d in touched)):
            return
        if touched is None or "data:*" in touched:
            targets = {"*"}
        elif self.fresh_wait is not None:
            return
        else:
            targets = {d.split(":", 1)[1] for d in touched if d.startswith("data:")}
        with self._warm_lock:
            self._warm_pending |= targets
            if self._warm_running:
                return
            self._warm_running = True
        threading.Thread(target=self._warm_loop, daemon=True, name="zhizao-warm").start()

    def _warm_loop(self) -> None:
        while True:
            with self._warm_lock:
                targets, self._warm_pending = self._warm_pending, set()
                if not targets:
                    self._warm_running = False
                    return
            try:
                self.warm_up(targets)
            finally:
                self.ready.set()

    def warm_up(self, targets=None) -> None:
        """Compute the landing pages' stage results: of the whole store (``targets`` None or holding ``"*"``:
        what administrators and analysts read, with the whole-register results of the project list and the
        programme page, :meth:`warm_pages`) and of each enterprise id in ``targets`` (what its users and keys
        read, on the enterprise's own data)."""
        targets = {"*"} if targets is None else set(targets)
        try:
            with self.store.read() as rd:
                if "*" in targets:
                    view = TenantView(rd, admin_access("warm-up"))
                    try:  # first: a few seconds, where the whole store's KPIs take minutes on a city's data
                        self.warm_pages(view)
                    except Exception as e:  # the page computes (and reports) it itself
                        log.warning("warm-up of the register pages failed: %s", e)
                    view.kpi("site", "all")
                    view.kpi("site", "day")
                    view.losses("site", "all")
                    view.stop_reasons("site", "all")
                    view.data_quality("equipment", "day")
                for ent in sorted(t for t in targets if t != "*"):
                    view = TenantView(rd, enterprise_access(ent, "warm-up"))
                    view.kpi("site", "all")
                    view.kpi("site", "day")
                    view.losses("site", "all")
                    view.stop_reasons("site", "all")
            if "*" in targets:
                import gc

                gc.freeze()  # what the warm-up cached is long-lived too
        except Exception as e:
            log.warning("warm-up failed: %s", e)

    @staticmethod
    def warm_pages(view: TenantView) -> None:
        """The whole-register results of the project list and the programme page (unfiltered): the projects,
        their latest verifications, the programme statistics and the page's charts in each language. They are
        cached under the counters they depend on like any request's, so a change recomputes them as before."""
        from zhizao.i18n import LANGUAGES
        from zhizao.portfolio.bulletin import CHART_NAMES
        from zhizao.server import views

        for lang in LANGUAGES:
            pg = views.Page(lang)
            views.project_list(view, pg, {})
            views.programme(view, pg, {})
        for lang in LANGUAGES:  # the charts are requests of their own, after the page
            for name in CHART_NAMES:
                views.programme_chart(view, views.Page(lang), {}, name)

    def verify_project(self, project_id: str, indicators=None, confidence: float = 0.9) -> list:
        """Verify a registered project's indicators and store the results (under the write lock); the caller
        has checked that the principal may (:meth:`TenantView.require_store_verification`)."""
        with self.store.write() as ws:
            self.store.touch("verifications")
            return ws.verify_project(project_id, indicators=indicators, confidence=confidence)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()  # their last batches commit before the store closes
        self.store.close()


class BodyLimit:
    """ASGI middleware: 413 for bodies above the limit (uploads: ``max_upload`` + 1 MB of form fields; other
    requests: :data:`MAX_BODY`), checked on Content-Length before reading and while streaming."""

    def __init__(self, app, server: Server):
        self.app = app
        self.server = server

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        limit = self.server.max_upload + MAX_BODY if path.startswith(UPLOAD_PATHS) or (
            path.startswith(("/api/v1/applications/", "/applications/")) and path.endswith("/evidence")) \
            else MAX_BODY
        headers = dict(scope.get("headers") or [])
        cl = headers.get(b"content-length")
        if cl is not None:
            try:
                n = int(cl)
            except ValueError:
                n = -1
            if n < 0:
                return await _send_json(send, 400, "bad_request", "invalid Content-Length")
            if n > limit:
                return await _send_json(send, 413, "payload_too_large",
                                        f"the request body is larger than the limit of {limit / 1e6:.0f} MB")
        state = {"n": 0, "over": False, "started": False}

        async def limited_receive():
            msg = await receive()
            if msg["type"] == "http.request":
                state["n"] += len(msg.get("body", b""))
                if state["n"] > limit:
                    state["over"] = True
                    return {"type": "http.disconnect"}
            return msg

        async def guarded_send(msg):
            if state["over"]:
                return
            if msg["type"] == "http.response.start":
                state["started"] = True
            await send(msg)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not state["over"]:
                raise
        if state["over"] and not state["started"]:
            await _send_json(send, 413, "payload_too_large",
                             f"the request body is larger than the limit of {limit / 1e6:.0f} MB")


class SecurityHeaders:
    """ASGI middleware: nosniff, no framing, same-origin referrers, the CSP (no script at all), HSTS behind HTTPS
    (``hsts``: with ``--secure-cookies``) and no caching of anything but the static files and charts (which set
    their own Cache-Control). It is the outermost layer, so every answer carries them, errors included."""

    FIXED: ClassVar[list[tuple[bytes, bytes]]] = [
        (b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"same-origin"), (b"content-security-policy", CSP.encode())]
    HSTS = (b"strict-transport-security", b"max-age=31536000")

    def __init__(self, app, hsts: bool = False):
        self.app = app
        self.fixed = self.FIXED + ([self.HSTS] if hsts else [])

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        static = scope.get("path", "").startswith("/static/")

        async def add(msg):
            if msg["type"] == "http.response.start":
                headers = list(msg.get("headers") or [])
                have = {k.lower() for k, _v in headers}
                headers += [(k, v) for k, v in self.fixed if k not in have]
                if not static and b"cache-control" not in have:
                    headers.append((b"cache-control", b"no-store"))
                msg = {**msg, "headers": headers}
            await send(msg)
        await self.app(scope, receive, add)


class InternalErrors:
    """ASGI middleware inside the security headers: an exception that escapes a route (a fault of zhizao, not of
    the request) is logged and answered 500 with one message, and the connection stays usable (the exception is
    not passed on to the server, which would drop it)."""

    def __init__(self, app, lang_of, error_page):
        self.app = app
        self.lang_of = lang_of
        self.error_page = error_page

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracked(msg):
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)
        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            request = Request(scope)
            log.exception("internal error on %s %s", request.method, request.url.path)
            if started:
                return  # the answer is on its way; nothing more can be said
            m = INTERNAL_ERROR(error=type(exc).__name__)
            if _wants_html(request):
                response = self.error_page(request, 500, m.text(self.lang_of(request)[0]))
            else:
                response = JSONResponse({"error": {"status": 500, "code": m.code, "message": m.text(
                    _api_lang(request)), "params": m.to_dict()["params"]}}, status_code=500)
            await response(scope, receive, send)


async def _send_json(send, status: int, code: str, message: str):
    data = json.dumps(body(status, code, message)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and request.url.path != "/openapi.json"


def create_app(db="zhizao.duckdb", *, max_upload_mb: float = 200, warm: bool = True,
               secure_cookies: bool = False, cache_size: int = CACHE_SIZE, limits=None,
               fresh_wait: float | None = None, live=(), cache_mb: float | None = CACHE_MB,
               slots: int | None = None, slot_patience: float = PATIENCE) -> FastAPI:
    """The zhizao server application over the store ``db``.

    Parameters
    ----------
    db : str or Path
        DuckDB store (created if missing).
    max_upload_mb : float
        Largest accepted upload [MB].
    warm : bool
        Compute the landing pages' KPIs in the background at start and after each write.
    secure_cookies : bool
        Mark the session cookie ``Secure`` (behind HTTPS).
    cache_size : int
        Entries of the per-version result cache.
    cache_mb : float or None
        Memory of the result cache [MiB] (None: bounded by entries only; :class:`zhizao.server.store.Store`).
    limits : zhizao.limits.Limits, optional
        Input limits of uploads (default :func:`zhizao.limits.current`: the defaults and ``ZHIZAO_LIMIT_*``).
    fresh_wait : float, optional
        Seconds a dashboard page whose figures changed waits for them to be computed before it shows the
        earlier figures, marked with the time they are as of, and refreshes itself (the new ones are computed
        on in the background). None (the default here; ``zhizao serve`` uses :data:`zhizao.server.FRESH_WAIT`): pages
        always wait for the current figures.
    live : sequence of zhizao.server.live.MqttSource or OpcUaSource
        Live sources the server subscribes to when it starts (:meth:`Server.start`; ``zhizao serve`` starts
        it), writing into the store it serves (:mod:`zhizao.server.live`).
    slots : int, optional
        Requests computed at once, the others waiting in their order of arrival; one admitted ``slot_patience``
        seconds ago runs on outside the bound (:class:`zhizao.server.admission.Admission`). None (the default
        here; ``zhizao serve`` uses :data:`zhizao.server.admission.SLOTS`): every request at once.
    """
    import zhizao.portfolio
    import zhizao.verify

    if (slots is not None and slots < 0) or not slot_patience > 0:  # (Starlette builds its middleware later)
        raise ValueError(f"slots must be 0 or more and slot_patience positive, not {slots} and {slot_patience}")
    server = Server(db, max_upload_mb=max_upload_mb, warm=warm, secure_cookies=secure_cookies,
                    cache_size=cache_size, limits=limits, fresh_wait=fresh_wait, live=live, cache_mb=cache_mb)
    app = FastAPI(title="zhizao", version=zhizao.__version__, docs_url=None, redoc_url=None,
                  description="ISO 22400 KPIs, verified transformation results and programme statistics of a "
                              "zhizao store. Authenticate with an API key (X-API-Key: zk_...) or a session token "
                              "from POST /api/v1/auth/login (Authorization: Bearer zs_...). Errors are JSON: "
                              '{"error": {"status", "code", "message"}}.')
    app.state.server = server

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        if _wants_html(request):
            if exc.status == 401:
                nxt = request.url.path + (("?" + request.url.query) if request.url.query else "")
                return RedirectResponse("/login?next=" + _quote(nxt), status_code=303)
            return web.error_page(request, exc.status, exc.text(web.lang_of(request)[0]))
        return JSONResponse({"error": exc.to_dict(_api_lang(request))}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        # pydantic's texts are English only: each kind of error has a message of its own (zhizao.server.invalid)
        if _wants_html(request):
            return web.error_page(request, 422, invalid.answer(exc.errors(), web.lang_of(request)[0])["message"])
        return JSONResponse({"error": invalid.answer(exc.errors(), _api_lang(request))}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        msg = str(exc.detail) if exc.detail else code
        if exc.status_code == 404:
            m = NO_SUCH_PAGE(path=request.url.path)
            code, msg = m.code, m.text(web.lang_of(request)[0] if _wants_html(request) else _api_lang(request))
        if _wants_html(request):
            return web.error_page(request, exc.status_code, msg)
        return JSONResponse(body(exc.status_code, code, msg), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    # outermost last: every answer, a 413 of the body limit and a 500 included, gets the security headers
    app.add_middleware(InternalErrors, lang_of=web.lang_of, error_page=web.error_page)
    app.add_middleware(BodyLimit, server=server)
    app.add_middleware(SecurityHeaders, hsts=secure_cookies)
    if slots:  # (outermost: a request waits for its turn before anything is done for it)
        app.add_middleware(Admission, slots=slots, patience=slot_patience)
    app.include_router(api.router)
    app.include_router(programme_api.router)
    app.include_router(web.router)
    app.include_router(programme_web.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    return app


def _api_lang(request: Request) -> str:
    """Language of an API error message: ``?lang=``, else Accept-Language (zh or en), else English."""
    q = request.query_params.get("lang")
    if q in ("zh", "en"):
        return q
    return "zh" if request.headers.get("accept-language", "").lower().startswith("zh") else "en"


def _quote(s: str) -> str:
    from urllib.parse import quote

    return quote(s, safe="/")


__all__ = ["Server", "create_app", "current_principal", "get_server", "optional_principal", "tenant"]
