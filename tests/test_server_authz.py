"""Authorisation matrix: every endpoint of the API and the dashboard, every role, both tenants.

Principals: anonymous, a revoked API key, the administrator, a programme analyst, an assessor (assigned project
P0001 of ENT002), an enterprise user of each enterprise, an enterprise API key of ENT001 and a site API key of
ENT002-S1. For each endpoint the table says which principals succeed; every other answer must be a refusal
(401, 403 or 404, never a 500), and no successful answer of a tenant's principal may name the other tenant.
A final test proves that every route of the application appears in the matrix.
"""

from __future__ import annotations

import io
import itertools

import pytest

from test_server_support import (
    PASSWORD,
    PROJECT_A,
    PROJECT_B,
    SITE_A,
    SITE_B,
    A,
    B,
    all_routes,
    base_store,
    clone,
    counts,
    csv_bytes,
    make_client,
)

pytest.importorskip("fastapi")

ORDER = ["anon", "revoked", "ana", "ass", "usera", "userb", "key_a", "key_site_b", "root"]
USERS = ("root", "ana", "ass", "usera", "userb")
AUTH = [p for p in ORDER if p not in ("anon", "revoked")]
TENANT = {"usera": A, "key_a": A, "userb": B, "key_site_b": B, "ass": B}
#: text that must never appear in a successful answer to a principal of the other tenant
FOREIGN = {A: ("ENT002", PROJECT_B), B: ("ENT001", PROJECT_A, "P0003")}
_n = itertools.count()


class M:
    """The application under test and its principals."""

    def __init__(self, tmp):
        self.client = make_client(clone(tmp / "store.duckdb"))
        b = base_store()
        self.headers = {"anon": {}, "revoked": {"X-API-Key": b.keys["key_revoked"][0]},
                        "key_a": {"X-API-Key": b.keys["key_a"][0]},
                        "key_site_b": {"X-API-Key": b.keys["key_site_b"][0]}}
        self.csrf = {}
        for u in USERS:
            r = self.client.post("/api/v1/auth/login", json={"username": u, "password": PASSWORD}).json()
            self.headers[u] = {"Authorization": f"Bearer {r['token']}"}
            self.csrf[u] = r["csrf"]
        # objects the matrix refers to
        self.uploads = {}
        for who, eq in (("usera", "ENT001-WC1-M1"), ("userb", "ENT002-WC1-M1")):
            r = self.client.post("/api/v1/ingest/states", headers=self.headers[who], files={"file": (
                "s.csv", io.BytesIO(csv_bytes([{"equipment_id": eq, "start": "2026-03-01T00:00:00Z",
                                                "end": "2026-03-01T01:00:00Z", "state": "BAD"}])))})
            assert r.status_code == 201, r.text
            self.uploads[who] = r.json()["upload_id"]
        h = self.headers["root"]
        assert self.client.post("/api/v1/users", headers=h, json={
            "username": "victim", "password": PASSWORD, "role": "enterprise", "enterprise_id": A}).status_code == 201
        v = self.client.post("/api/v1/auth/login", json={"username": "victim", "password": PASSWORD}).json()
        self.victim_session = v["session_id"]
        k = self.client.post("/api/v1/keys", headers=h, json={"enterprise_id": A, "name": "victim"}).json()
        self.victim_key = k["key_id"]

    def states_file(self, equipment="ENT001-WC1-M1"):
        i = next(_n)
        return {"file": (f"s{i}.csv", io.BytesIO(csv_bytes([{
            "equipment_id": equipment, "start": f"2026-04-01T{i % 24:02d}:00:00Z",
            "end": f"2026-04-01T{i % 24:02d}:30:00Z", "state": "production", "reason": f"r{i}"}])))}


@pytest.fixture(scope="module")
def m(tmp_path_factory):
    mm = M(tmp_path_factory.mktemp("authz"))
    yield mm
    mm.client.app.state.server.close()


def ok(*names):
    return set(names)


EVERYONE = set(AUTH)
ADMIN = ok("root")
PROGRAMME = ok("root", "ana")
SEES_A = ok("root", "ana", "usera", "key_a")
SEES_B = ok("root", "ana", "ass", "userb", "key_site_b")
RAW_A = ok("root", "usera", "key_a")
KEY_ADMINS = ok("root", "usera", "userb")
USERS_ONLY = set(USERS)
NOT_ANALYST = EVERYONE - {"ana"}

# (id, method, path, request builder (m, principal) -> kwargs, principals that succeed)
CASES = [
    ("health", "GET", "/api/v1/health", None, EVERYONE | {"anon", "revoked"}),
    ("me", "GET", "/api/v1/me", None, EVERYONE),
    ("schema", "GET", "/api/v1/schema", None, EVERYONE),
    ("mappings", "GET", "/api/v1/mappings", None, EVERYONE),
    ("equipment", "GET", "/api/v1/equipment", None, EVERYONE),
    ("kpi-site", "GET", "/api/v1/kpi?level=site&period=all", None, EVERYONE),
    ("kpi-equipment", "GET", "/api/v1/kpi?level=equipment&period=all", None, NOT_ANALYST),
    ("kpi-other-id", "GET", "/api/v1/kpi?level=site&period=all&id=ENT002-S1", None, EVERYONE),
    ("elements", "GET", "/api/v1/elements?level=site&period=all", None, EVERYONE),
    ("losses", "GET", "/api/v1/losses?level=work_center", None, EVERYONE),
    ("stop-reasons", "GET", "/api/v1/stop-reasons?level=site", None, EVERYONE),
    ("data-quality", "GET", "/api/v1/data-quality?level=equipment&period=all", None, NOT_ANALYST),
    ("capability", "GET", "/api/v1/capability?level=equipment", None, NOT_ANALYST),
    ("catalogue", "GET", "/api/v1/catalogue", None, EVERYONE),
    ("ingest-own-a", "POST", "/api/v1/ingest/states", lambda m, p: {"files": m.states_file()},
     ok("root", "usera", "key_a")),
    ("ingest-own-b", "POST", "/api/v1/ingest/states", lambda m, p: {"files": m.states_file("ENT002-WC1-M1")},
     ok("root", "userb", "key_site_b")),
    ("ingest-register", "POST", "/api/v1/ingest/enterprises", lambda m, p: {"files": {"file": (
        f"e{next(_n)}.csv", io.BytesIO(b"enterprise_id,name\nENT001,renamed\n"))}}, PROGRAMME),
    ("uploads", "GET", "/api/v1/uploads", None, EVERYONE),
    ("upload-a", "GET", "/api/v1/uploads/{upload_a}", None, RAW_A),
    ("upload-b", "GET", "/api/v1/uploads/{upload_b}", None, ok("root", "ass", "userb")),
    ("quarantine", "GET", "/api/v1/quarantine", None, NOT_ANALYST),
    ("quarantine-summary", "GET", "/api/v1/quarantine/summary", None, EVERYONE),
    ("verify-a", "POST", "/api/v1/verify", lambda m, p: {"json": {
        "indicator": "defect_rate", "scope": "ENT001-WC1", "baseline": ["2024-08-01", "2024-10-01"],
        "reporting": ["2025-01-01", "2025-03-01"]}}, SEES_A),
    ("verify-b", "POST", "/api/v1/verify", lambda m, p: {"json": {
        "indicator": "defect_rate", "scope": "ENT002-WC1", "baseline": ["2024-03-01", "2024-05-01"],
        "reporting": ["2024-07-01", "2024-09-01"]}}, SEES_B),
    ("project-verify", "POST", f"/api/v1/projects/{PROJECT_B}/verify",
     lambda m, p: {"json": {"indicators": ["defect_rate"]}}, ok("root", "ana", "ass")),
    ("project-verify-a", "POST", f"/api/v1/projects/{PROJECT_A}/verify",
     lambda m, p: {"json": {"indicators": ["defect_rate"]}}, PROGRAMME),
    ("project-verifications-a", "GET", f"/api/v1/projects/{PROJECT_A}/verifications", None, SEES_A),
    ("project-verifications-b", "GET", f"/api/v1/projects/{PROJECT_B}/verifications", None, SEES_B),
    ("verifications", "GET", "/api/v1/verifications", None, EVERYONE),
    ("projects", "GET", "/api/v1/projects", None, EVERYONE),
    ("project-a", "GET", f"/api/v1/projects/{PROJECT_A}", None, SEES_A),
    ("project-b", "GET", f"/api/v1/projects/{PROJECT_B}", None, SEES_B),
    ("enterprises", "GET", "/api/v1/enterprises", None, EVERYONE),
    ("designations", "GET", "/api/v1/designations", None, EVERYONE),
    ("statistics", "GET", "/api/v1/programme/statistics?n_boot=20", None, PROGRAMME),
    ("bulletin", "GET", "/api/v1/programme/bulletin?lang=en&n_boot=20", None, PROGRAMME),
    ("recognition-a", "GET", f"/api/v1/recognition?enterprise={A}&designation=digital_workshop", None, SEES_A),
    ("recognition-b", "GET", f"/api/v1/recognition?enterprise={B}&designation=smart_factory", None, SEES_B),
    ("users", "GET", "/api/v1/users", None, ADMIN),
    ("user-create", "POST", "/api/v1/users", lambda m, p: {"json": {
        "username": f"u{next(_n)}", "password": PASSWORD, "role": "analyst"}}, ADMIN),
    ("user-get", "GET", "/api/v1/users/usera", None, ok("root", "usera")),
    ("user-patch", "PATCH", "/api/v1/users/victim", lambda m, p: {"json": {"projects": []}}, ADMIN),
    ("keys", "GET", "/api/v1/keys", None, KEY_ADMINS),
    ("key-create", "POST", "/api/v1/keys", lambda m, p: {"json": {"enterprise_id": A}}, ok("root", "usera")),
    ("key-revoke", "DELETE", "/api/v1/keys/{victim_key}", None, ok("root", "usera")),
    ("sessions", "GET", "/api/v1/sessions", None, USERS_ONLY),
    ("session-revoke", "DELETE", "/api/v1/sessions/{victim_session}", None, ADMIN),
    ("user-disable", "DELETE", "/api/v1/users/victim", None, ADMIN),
    # dashboard
    ("page-plant", "GET", "/plant", None, EVERYONE),
    ("page-site-a", "GET", f"/plant/site/{SITE_A}", None, SEES_A),
    ("page-site-b", "GET", f"/plant/site/{SITE_B}", None, SEES_B),
    ("page-equipment-a", "GET", "/plant/equipment/ENT001-WC1-M1", None, RAW_A),
    ("chart-site-a", "GET", f"/plant/site/{SITE_A}/chart/waterfall.svg", None, SEES_A),
    ("chart-site-b", "GET", f"/plant/site/{SITE_B}/chart/trend-oee.svg?lang=en", None, SEES_B),
    ("page-projects", "GET", "/projects", None, EVERYONE),
    ("page-project-a", "GET", f"/projects/{PROJECT_A}", None, SEES_A),
    ("page-project-b", "GET", f"/projects/{PROJECT_B}", None, SEES_B),
    ("page-project-verify", "POST", f"/projects/{PROJECT_A}/verify", lambda m, p: {"data": {
        "csrf": m.csrf.get(p, ""), "indicator": "defect_rate"}}, PROGRAMME),
    ("page-programme", "GET", "/programme", None, PROGRAMME),
    ("page-bulletin", "GET", "/programme/bulletin?lang=zh&n_boot=20", None, PROGRAMME),
    ("page-bulletin-pdf", "GET", "/programme/bulletin.pdf?lang=zh&n_boot=20", None, PROGRAMME),
    ("page-programme-xlsx", "GET", "/programme/export.xlsx", None, PROGRAMME),
    ("page-recognition", "GET", "/recognition", None, EVERYONE),
    ("page-recognition-a", "GET", f"/recognition?enterprise={A}&designation=digital_workshop", None, SEES_A),
    ("page-data", "GET", "/data", None, EVERYONE),
    ("page-upload", "POST", "/data/upload", lambda m, p: {"data": {"table": "states", "csrf": m.csrf.get(p, "")},
                                                          "files": m.states_file()}, ok("root", "usera")),
    ("page-upload-a", "GET", "/data/uploads/{upload_a}", None, RAW_A),
    ("page-admin", "GET", "/admin", None, EVERYONE),
    ("page-admin-user", "POST", "/admin/users", lambda m, p: {"data": {
        "username": f"w{next(_n)}", "password": PASSWORD, "role": "analyst", "csrf": m.csrf.get(p, "")}}, ADMIN),
    ("page-admin-active", "POST", "/admin/users/victim/active", lambda m, p: {"data": {
        "active": "1", "csrf": m.csrf.get(p, "")}}, ADMIN),
    ("page-admin-key", "POST", "/admin/keys", lambda m, p: {"data": {
        "site": SITE_A, "csrf": m.csrf.get(p, "")}}, ok("root", "usera")),
    ("page-admin-key-revoke", "POST", "/admin/keys/{victim_key}/revoke", lambda m, p: {"data": {
        "csrf": m.csrf.get(p, "")}}, ok("root", "usera")),
    ("page-admin-session-revoke", "POST", "/admin/sessions/{victim_session}/revoke", lambda m, p: {"data": {
        "csrf": m.csrf.get(p, "")}}, ADMIN),
    ("page-home", "GET", "/", None, EVERYONE | {"anon", "revoked"}),
    ("page-login", "GET", "/login", None, EVERYONE | {"anon", "revoked"}),
    ("favicon", "GET", "/favicon.ico", None, EVERYONE | {"anon", "revoked"}),
]
#: routes tested in their own tests (they change the principal's own session)
ELSEWHERE = {("POST", "/api/v1/auth/login"), ("POST", "/api/v1/auth/logout"), ("POST", "/login"),
             ("POST", "/logout"), ("GET", "/openapi.json")}


def _refused(status: int, principal: str, path: str) -> bool:
    if principal in ("anon", "revoked"):
        return status == 401 or (status == 303 and not path.startswith("/api/"))
    return status in (403, 404)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_matrix(m, case):
    cid, method, path, build, allowed = case
    path = path.format(upload_a=m.uploads["usera"], upload_b=m.uploads["userb"], victim_key=m.victim_key,
                       victim_session=m.victim_session)
    for p in ORDER:
        before = None
        if method != "GET" and p not in allowed:
            with m.client.app.state.server.store.read() as rd:
                before = counts(rd.con)
        kw = build(m, p) if build else {}
        r = m.client.request(method, path, headers=m.headers[p], follow_redirects=False, **kw)
        assert r.status_code < 500, (cid, p, r.status_code, r.text[:300])
        if p in allowed:
            assert r.status_code in (200, 201, 204, 303), (cid, p, r.status_code, r.text[:300])
            if r.status_code == 303 and p not in ("anon", "revoked"):
                assert "/login" not in r.headers["location"], (cid, p)
            tenant = TENANT.get(p)
            if tenant:
                for word in FOREIGN[tenant]:
                    assert word not in r.text, (cid, p, word)
        else:
            assert _refused(r.status_code, p, path), (cid, p, r.status_code, r.text[:300])
            if path.startswith("/api/"):
                assert r.json()["error"]["status"] == r.status_code
            if before is not None:  # a refused write stores nothing
                with m.client.app.state.server.store.read() as rd:
                    assert counts(rd.con) == before, (cid, p)


def test_every_route_is_in_the_matrix(m):
    import re

    from fastapi.routing import APIRoute
    from starlette.routing import Mount

    covered = set(ELSEWHERE)
    for _id, method, path, _b, _a in CASES:
        covered.add((method, path.split("?")[0]))

    def matches(method, template):
        rx = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        return any(mm == method and re.match(rx, p) for mm, p in covered)
    missing = []
    routes = all_routes(m.client.app)
    assert sum(isinstance(r, APIRoute) for r in routes) >= 60
    for route in routes:
        if isinstance(route, Mount):
            continue
        for method in getattr(route, "methods", ()) or ():
            if method == "HEAD":
                continue
            if route.path in ("/docs/oauth2-redirect",):
                continue
            if not matches(method, route.path):
                missing.append((method, route.path, isinstance(route, APIRoute)))
    assert not missing, missing


# -- cross-tenant writes
def _upload(m, who, table, rows=None, raw=None, name="x.csv", mapping=None):
    files = {"file": (name, io.BytesIO(raw if raw is not None else csv_bytes(rows)))}
    if mapping is not None:
        files["mapping"] = ("m.yaml", io.BytesIO(mapping))
    return m.client.post(f"/api/v1/ingest/{table}", headers=m.headers[who], files=files)


T0, T1 = "2026-05-01T00:00:00Z", "2026-05-01T01:00:00Z"
CROSS_WRITES = [
    ("states", [{"equipment_id": "ENT002-WC1-M1", "start": T0, "end": T1, "state": "production"}], None),
    ("production", [{"equipment_id": "ENT002-WC1-M1", "end": T1, "produced": 5}], None),
    ("equipment", [{"equipment_id": "ENT001-NEW", "work_center": "ENT001-WC9", "site": SITE_A,
                    "enterprise": B}], None),
    ("equipment", [{"equipment_id": "ENT001-NEW", "work_center": "ENT002-WC1", "site": SITE_A,
                    "enterprise": A}], None),
    ("equipment", [{"equipment_id": "ENT001-NEW", "work_center": "ENT001-WC9", "site": SITE_A}], None),
    ("equipment", [{"equipment_id": "ENT002-WC1-M1", "site": SITE_A, "enterprise": A}], None),
    ("calendar", [{"scope": SITE_B, "start": T0, "end": T1, "kind": "shift"}], None),
    ("labour", [{"scope": B, "start": T0, "end": T1, "attendance_hours": 8}], None),
    ("energy", [{"meter_id": "m", "scope": "ENT002-WC1", "start": T0, "end": T1, "carrier": "electricity",
                 "quantity": 1, "unit": "kWh"}], None),
    ("quality", [{"equipment_id": "ENT002-WC1-M1", "ts": T0, "result": "pass"}], None),
    ("products", [{"product_id": "SHARED", "pri": 1.0}], None),
    ("products", [{"product_id": "X", "equipment_id": "ENT002-WC1-M1", "pri": 1.0}], None),
    ("variables", [{"scope": SITE_B, "start": T0, "name": "temperature_c", "value": 3}], None),
    ("costs", [{"scope": "ENT002-WC1", "start": T0, "end": T1, "category": "energy", "amount": 1,
                "currency": "CNY"}], None),
    ("development_cycles", [{"enterprise_id": B, "product_id": "X", "design_start": T0, "release": T1}], None),
    # a mapping constant that names another tenant's machine
    ("states", [{"m": "ignored", "s": T0, "e": T1, "st": "production"}],
     b"table: states\ncolumns:\n  equipment_id: {value: ENT002-WC1-M1}\n  start: s\n  end: e\n  state: st\n"),
]


@pytest.mark.parametrize("who", ["usera", "key_a"])
@pytest.mark.parametrize("table,rows,mapping", CROSS_WRITES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CROSS_WRITES)])
def test_no_cross_tenant_write_succeeds(m, who, table, rows, mapping):
    with m.client.app.state.server.store.read() as rd:
        before = counts(rd.con)
    r = _upload(m, who, table, rows, mapping=mapping)
    assert r.status_code == 403, (r.status_code, r.text)
    assert "nothing was stored" in r.json()["error"]["message"] or "may not load" in r.json()["error"]["message"]
    with m.client.app.state.server.store.read() as rd:
        assert counts(rd.con) == before


def test_site_key_writes_only_its_site(m):
    with m.client.app.state.server.store.read() as rd:
        before = counts(rd.con)
    r = _upload(m, "key_site_b", "calendar", [{"scope": SITE_A, "start": T0, "end": T1, "kind": "shift"}])
    assert r.status_code == 403
    r = _upload(m, "key_site_b", "equipment", [{"equipment_id": "ENT002-X", "site": "ENT002-S2",
                                                "enterprise": B}])
    assert r.status_code == 403
    with m.client.app.state.server.store.read() as rd:
        assert counts(rd.con) == before
    r = _upload(m, "key_site_b", "calendar", [{"scope": SITE_B, "start": T0, "end": T1, "kind": "shift"}])
    assert r.status_code == 201, r.text


def test_unknown_ids_are_quarantined_not_refused(m):
    r = _upload(m, "usera", "states", [{"equipment_id": "NOBODY-M1", "start": T0, "end": T1, "state": "production"}])
    assert r.status_code == 201 and r.json()["quarantine"][0]["rule"] == "unknown_equipment"
