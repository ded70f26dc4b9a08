"""FastAPI dependencies of the server: the application state, the principal, the request's tenant view.

Every router (:mod:`zhizao.server.api`, :mod:`zhizao.server.web`) takes its dependencies from here and from no
other router, and :mod:`zhizao.server.app` assembles the routers; so the server's modules import each other in
one direction only::

    errors, accounts, models  <-  store  <-  access  <-  auth, uploads  <-  deps, views  <-  api, web  <-  app

- :func:`get_server` -- the :class:`zhizao.server.app.Server` of the application;
- :func:`optional_principal` -- the :class:`~zhizao.server.access.Principal` of the request's credential, or
  None without one (401 for a bad API key or bearer token);
- :func:`current_principal` -- the same, 401 without one; a state-changing API call authenticated by the
  session cookie must carry the session's CSRF token in ``X-CSRF-Token`` (403 otherwise);
- :func:`tenant` -- the request's :class:`~zhizao.server.access.TenantView` (one read transaction, the
  principal's access): the only way routes reach the stages.

``View`` and ``Who`` are the annotated parameter types of these dependencies.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from zhizao.messages import define
from zhizao.server.access import Principal, TenantView, derive_access
from zhizao.server.auth import COOKIE, CSRF_HEADER
from zhizao.server.errors import Forbidden, Unauthorized

#: Methods that change nothing (no CSRF token needed).
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

BAD_CREDENTIALS = define("server.bad_credentials", "invalid, expired or revoked credentials")
NO_CREDENTIALS = define("server.no_credentials",
                        "log in (session) or send an API key (X-API-Key or Authorization: Bearer)")
NO_CSRF_HEADER = define("server.csrf_header",
                        "a request authenticated by the session cookie needs the header X-CSRF-Token")


def get_server(request: Request) -> Any:
    """The application's :class:`~zhizao.server.app.Server` (store, authentication, settings)."""
    return request.app.state.server


def credential(request: Request) -> tuple[str | None, bool]:
    """The request's token and whether it came from the session cookie: ``Authorization: Bearer``, then
    ``X-API-Key``, then the cookie."""
    auth = request.headers.get("authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip(), False
    key = request.headers.get("x-api-key")
    if key:
        return key.strip(), False
    c = request.cookies.get(COOKIE)
    return (c, True) if c else (None, False)


async def optional_principal(request: Request) -> Principal | None:
    """The principal of the request's credential; None without one (or with a stale cookie)."""
    token, via_cookie = credential(request)
    request.state.via_cookie = via_cookie
    if not token:
        return None
    p = get_server(request).auth.resolve(token)
    if p is None and not via_cookie:
        raise Unauthorized(BAD_CREDENTIALS)
    return p


async def soft_principal(request: Request) -> Principal | None:
    """The principal of a valid credential, else None (never refuses: for public routes)."""
    token, _via_cookie = credential(request)
    return get_server(request).auth.resolve(token) if token else None


async def current_principal(request: Request, p: Principal | None = Depends(optional_principal)) -> Principal:
    """The authenticated principal (401 without one; 403 for a cookie-authenticated API write without the CSRF
    header)."""
    if p is None:
        raise Unauthorized(NO_CREDENTIALS)
    if request.method not in SAFE_METHODS and getattr(request.state, "via_cookie", False) \
            and request.url.path.startswith("/api/") and request.headers.get(CSRF_HEADER) != p.csrf:
        raise Forbidden(NO_CSRF_HEADER)
    return p


async def tenant(request: Request, p: Principal = Depends(current_principal)) -> Any:
    """The request's :class:`TenantView`: one read transaction (opened on first use) and the principal's access.

    The dependencies are coroutines (no thread hop): they touch the store only on a cache miss.
    """
    server = get_server(request)
    with server.store.read() as rd:
        # an access depends on the projects (an assessor's) and the equipment table (a site key's enterprise)
        access = rd.cached(("access", p), lambda: derive_access(p, rd.con), deps=("register", "equipment"))
        request.state.principal = p
        yield TenantView(rd, access)


View = Annotated[TenantView, Depends(tenant)]
Who = Annotated[Principal, Depends(current_principal)]
MaybeWho = Annotated[Principal | None, Depends(optional_principal)]
AnyWho = Annotated[Principal | None, Depends(soft_principal)]

__all__ = [
    "SAFE_METHODS",
    "AnyWho",
    "MaybeWho",
    "View",
    "Who",
    "credential",
    "current_principal",
    "get_server",
    "optional_principal",
    "soft_principal",
    "tenant",
]
