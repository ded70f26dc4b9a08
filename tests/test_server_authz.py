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
import re

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

ORDER = ["anon", "revoked", "ana", "ass", "dist", "usera", "userb", "key_a", "key_site_b", "root"]
USERS = ("root", "ana", "ass", "dist", "usera", "userb")
AUTH = [p for p in ORDER if p not in ("anon", "revoked")]
TENANT = {"usera": A, "key_a": A, "userb": B, "key_site_b": B, "ass": B, "dist": A}
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
        # the programme's objects (fixed ones for reading; fresh ones per request for the steps, see make)
        self.fixed = {"app_a": self.make("app_A_submitted"), "app_a_draft": self.make("app_A_draft"),
                      "app_b": self.make("app_B_expert_assigned")}
        self.fixed["evidence_a"] = self._evidence(self.fixed["app_a_draft"], A)
        self.fixed["evidence_b"] = self._evidence(self.fixed["app_b"], B)

    # -- the programme's objects, made directly through the stages (not through the routes under test)
    def _evidence(self, app_id, ent):
        from zhizao.portfolio import evidence

        with self.client.app.state.server.store.write() as ws:
            return evidence.store(ws.con, ent, "plan.pdf", b"%PDF-1.4 test " + app_id.encode(), actor="test",
                                  application_id=app_id)["file_id"]

    def make(self, kind: str) -> str:
        """A new object for one request: ``scope_new`` (a scope of ENT001), ``app_<A|B>_<state>`` (an
        application of that enterprise in that state), ``assessor_A`` (an assigned assessor, as
        ``APP/assessors/NAME``), ``obj_A`` (an open objection, as ``APP/objections/ID``)."""
        from zhizao.portfolio import workflow as w
        from zhizao.portfolio.register import create_record

        s = self.client.app.state.server.store
        i = next(_n)
        with s.write() as ws:
            con = ws.con
            if kind == "scope_new":
                return create_record(con, "scopes", {"scope_id": f"ENT001-X{i}", "enterprise_id": A},
                                     actor="test")["scope_id"]
            if kind in ("assessor_A", "obj_A"):
                app = self._advance(ws, w, A, "expert_review" if kind == "assessor_A" else "publicity")
                if kind == "assessor_A":
                    w.assign(con, app, "assz", actor="test")
                    return f"{app}/assessors/assz"
                return f"{app}/objections/{w.object_(con, app, 'objection', actor='test')}"
            _app, ent, state = kind.split("_", 2)
            return self._advance(ws, w, {"A": A, "B": B}[ent], state)

    @staticmethod
    def _advance(ws, w, ent, state):
        con = ws.con
        user = "user:usera" if ent == A else "user:userb"
        scope = "ENT001-WC1" if ent == A else "ENT002-WC1"
        # a recognised workshop is final at the decision; a project goes on to its acceptance
        sought = "project" if state in ("approved", "acceptance") else "digital_workshop"
        app = w.create(con, ent, sought, {
            "name": "数字化车间", "type": "digital_equipment", "scope": scope, "start": "2025-03-01",
            "commissioning_end": "2025-09-30"}, actor=user)["application_id"]
        path = ["draft", "submitted", "expert_review", "review_done", "publicity", "decision", "approved",
                "acceptance"]
        target = {"expert_assigned": "expert_review", "expert_declared": "expert_review"}.get(state, state)
        for step in path[1:path.index(target if target in path else "expert_review") + 1]:
            if step == "submitted":
                w.submit(ws, app, actor=user)
            elif step == "expert_review":
                w.pre_review(con, app, "approve", actor="test")
            elif step == "review_done":
                for a in ["assx"] + (["ass"] if ent == B else []):
                    w.assign(con, app, a, actor="test")
                    w.declare(con, app, a, False)
                    w.score(con, app, a, {c["id"]: 1 for c in w.score_sheet()["criteria"]})
            elif step == "publicity":
                w.close_review(con, app, actor="test", publicity_days=0)
            elif step == "decision":
                w.end_publicity(con, app, actor="test")
            elif step == "approved":
                w.decide(con, app, "approved", actor="test")
            elif step == "acceptance":
                w.request_acceptance(con, app, actor=user)
        if ent == B and state in ("expert_assigned", "expert_declared"):
            w.assign(con, app, "ass", actor="test")
            if state == "expert_declared":
                w.declare(con, app, "ass", False)
        return app

    def states_file(self, equipment="ENT001-WC1-M1"):
        i = next(_n)
        return {"file": (f"s{i}.csv", io.BytesIO(csv_bytes([{
            "equipment_id": equipment, "start": f"2026-04-01T{i % 24:02d}:00:00Z",
            "end": f"2026-04-01T{i % 24:02d}:30:00Z", "state": "production", "reason": f"r{i}"}])))}


@pytest.fixture(scope="module")
def m(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("ZHIZAO_MATURITY", str(_filled_model(tmp_path_factory.mktemp("maturity"))))
    mm = M(tmp_path_factory.mktemp("authz"))
    yield mm
    mm.client.app.state.server.close()
    mp.undo()
    from zhizao.portfolio import maturity

    maturity.model.cache_clear()


def _filled_model(folder):
    """The shipped model with one stand-in requirement, as a programme office's filled-in copy would have
    (the shipped file has none, so the questionnaire cannot be scored until the office fills them in)."""
    import yaml

    from zhizao.portfolio import maturity

    doc = yaml.safe_load(maturity._path(maturity.MODEL, "maturity").read_text(encoding="utf-8"))
    doc["elements"][0]["domains"][0]["subdomains"][0]["requirements"][1] = [
        {"id": "T-1-1", "zh": "测试条款", "en": "test clause", "clause": "test", "weight": 1}]
    (folder / f"{maturity.MODEL}.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), "utf-8")
    maturity.model.cache_clear()
    return folder


def ok(*names):
    return set(names)


EVERYONE = set(AUTH)
ADMIN = ok("root")
PROGRAMME = ok("root", "ana")
SEES_A = ok("root", "ana", "usera", "key_a", "dist")
SEES_B = ok("root", "ana", "ass", "userb", "key_site_b")
RAW_A = ok("root", "usera", "key_a")
KEY_ADMINS = ok("root", "usera", "userb")
USERS_ONLY = set(USERS)
NOT_ANALYST = EVERYONE - {"ana", "dist"}  # the roles that see shop-floor detail
#: the programme: who sees an application of ENT001 (not a draft), of ENT002 (assessor "ass" assigned)
APP_A = ok("root", "ana", "usera", "dist")
APP_B = ok("root", "ana", "userb", "ass")

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
    ("chart-programme", "GET", "/programme/chart/district.svg", None, PROGRAMME),
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
    # -- the programme (issue 12): register, audit log, applications and their steps, evidence, maturity
    ("vocabularies", "GET", "/api/v1/vocabularies", None, EVERYONE),
    ("vocabulary", "GET", "/api/v1/vocabularies/district", None, EVERYONE),
    ("register-template", "GET", "/api/v1/register/template.xlsx", None, EVERYONE),
    ("register-list", "GET", "/api/v1/register/projects?sort=-start&q=P0", None, EVERYONE),
    ("register-a", "GET", f"/api/v1/register/enterprises/{A}", None, SEES_A),
    ("register-b", "GET", f"/api/v1/register/enterprises/{B}", None, SEES_B),
    ("register-a-as-of", "GET", f"/api/v1/register/enterprises/{A}?as_of=2030-01-01", None, SEES_A),
    ("register-history-a", "GET", f"/api/v1/register/enterprises/{A}/history", None, SEES_A),
    ("register-create", "POST", "/api/v1/register/scopes", lambda m, p: {"json": {
        "values": {"scope_id": f"ENT001-N{next(_n)}", "enterprise_id": A}, "reason": "t"}}, PROGRAMME),
    ("register-update", "PATCH", f"/api/v1/register/enterprises/{A}", lambda m, p: {"json": {
        "values": {"park": f"园区{next(_n)}"}, "reason": "t"}}, PROGRAMME),
    ("register-withdraw", "DELETE", "/api/v1/register/scopes/{scope_new}?reason=t", None, PROGRAMME),
    ("audit", "GET", "/api/v1/audit", None, PROGRAMME),
    ("audit-check", "GET", "/api/v1/audit/check", None, PROGRAMME),
    ("applications", "GET", "/api/v1/applications", None, EVERYONE),
    ("applications-queue", "GET", "/api/v1/applications/queue", None, EVERYONE),
    ("application-create", "POST", "/api/v1/applications", lambda m, p: {"json": {
        "sought": "project", "data": {"name": "x"}}}, ok("usera", "userb")),
    ("application-a", "GET", "/api/v1/applications/{app_a}", None, APP_A),
    ("application-a-draft", "GET", "/api/v1/applications/{app_a_draft}", None, ok("root", "ana", "usera")),
    ("application-b", "GET", "/api/v1/applications/{app_b}", None, APP_B),
    ("application-edit", "PATCH", "/api/v1/applications/{app_A_draft}", lambda m, p: {"json": {
        "data": {"name": "y"}}}, ok("usera")),
    ("application-submit", "POST", "/api/v1/applications/{app_A_draft}/submit", None, ok("usera")),
    ("application-pre-review", "POST", "/api/v1/applications/{app_A_submitted}/pre-review",
     lambda m, p: {"json": {"verdict": "approve"}}, ok("dist")),
    ("application-assign", "POST", "/api/v1/applications/{app_A_expert_review}/assessors",
     lambda m, p: {"json": {"assessor": "assy"}}, PROGRAMME),
    ("application-unassign", "DELETE", "/api/v1/applications/{assessor_A}", None, PROGRAMME),
    ("application-declare", "POST", "/api/v1/applications/{app_B_expert_assigned}/declaration",
     lambda m, p: {"json": {"conflict": False}}, ok("ass")),
    ("application-score", "POST", "/api/v1/applications/{app_B_expert_declared}/scores",
     lambda m, p: {"json": {"scores": {"conditions": {"score": 5, "comment": "c"}}}}, ok("ass")),
    ("application-close-review", "POST", "/api/v1/applications/{app_A_review_done}/close-review",
     lambda m, p: {"json": {"publicity_days": 0}}, PROGRAMME),
    ("application-object", "POST", "/api/v1/applications/{app_A_publicity}/objections",
     lambda m, p: {"json": {"text": "o"}}, PROGRAMME),
    ("application-resolve", "POST", "/api/v1/applications/{obj_A}/resolution",
     lambda m, p: {"json": {"resolution": "r"}}, PROGRAMME),
    ("application-end-publicity", "POST", "/api/v1/applications/{app_A_publicity}/end-publicity", None, PROGRAMME),
    ("application-decide", "POST", "/api/v1/applications/{app_A_decision}/decision",
     lambda m, p: {"json": {"decision": "approved"}}, PROGRAMME),
    ("application-request-acceptance", "POST", "/api/v1/applications/{app_A_approved}/acceptance-request",
     lambda m, p: {"json": {}}, ok("usera")),
    ("application-acceptance-view", "GET", "/api/v1/applications/{app_a}/acceptance", None, APP_A),
    ("application-accept", "POST", "/api/v1/applications/{app_A_acceptance}/acceptance",
     lambda m, p: {"json": {"accepted": True}}, PROGRAMME),
    ("application-evidence", "POST", "/api/v1/applications/{app_A_draft}/evidence", lambda m, p: {"files": {
        "file": ("p.pdf", io.BytesIO(b"%PDF-1.4 x"), "application/pdf")}}, ok("usera")),
    ("evidence-a", "GET", "/api/v1/evidence/{evidence_a}", None, ok("root", "usera", "dist")),
    ("evidence-b", "GET", "/api/v1/evidence/{evidence_b}", None, ok("root", "userb", "ass")),
    ("rulesets", "GET", "/api/v1/rulesets", None, EVERYONE),
    ("ruleset", "GET", "/api/v1/rulesets/chongqing-2018-digital-workshop", None, EVERYONE),
    ("recognition-conflicts", "GET", "/api/v1/recognition/conflicts", None, PROGRAMME),
    ("confirmation", "POST", "/api/v1/recognition/confirmations", lambda m, p: {"json": {
        "enterprise_id": B, "ruleset": "chongqing-2018-digital-workshop", "criterion": "mes_coverage",
        "confirmed": True, "application_id": m.make("app_B_acceptance")}}, ok("root", "ass")),
    ("maturity-a", "GET", f"/api/v1/maturity/{A}", None, SEES_A),
    ("questionnaire-a", "GET", f"/api/v1/maturity/{A}/questionnaire", None, SEES_A),
    ("questionnaire-a-submit", "POST", f"/api/v1/maturity/{A}/questionnaire", lambda m, p: {"json": {
        "answers": {}, "systems": ["MES"]}}, ok("usera")),
    ("maturity-import", "POST", "/api/v1/maturity/import", lambda m, p: {"files": {"file": (
        "m.csv", io.BytesIO(f"enterprise_id,assessed_on,level\n{A},2025-06-30,2\n".encode()), "text/csv")}},
     PROGRAMME),
    ("page-register", "GET", "/register", None, EVERYONE),
    ("page-register-template", "GET", "/register/template.xlsx", None, EVERYONE),
    ("page-register-list", "GET", "/register/projects?sort=-start", None, EVERYONE),
    ("page-register-a", "GET", f"/register/enterprises/{A}?as_of=2030-01-01", None, SEES_A),
    ("page-register-new", "GET", "/register/scopes/new", None, PROGRAMME),
    ("page-register-create", "POST", "/register/scopes/new", lambda m, p: {"data": {
        "scope_id": f"ENT001-F{next(_n)}", "enterprise_id": A, "csrf": m.csrf.get(p, "")}}, PROGRAMME),
    ("page-register-update", "POST", f"/register/enterprises/{A}", lambda m, p: {"data": {
        "park": f"园区{next(_n)}", "reason": "t", "csrf": m.csrf.get(p, "")}}, PROGRAMME),
    ("page-register-withdraw", "POST", "/register/scopes/{scope_new}/withdraw", lambda m, p: {"data": {
        "reason": "t", "csrf": m.csrf.get(p, "")}}, PROGRAMME),
    ("page-audit", "GET", "/audit", None, PROGRAMME),
    ("page-applications", "GET", "/applications", None, EVERYONE),
    ("page-application-new", "GET", "/applications/new", None, ok("usera", "userb")),
    ("page-application-create", "POST", "/applications/new", lambda m, p: {"data": {
        "sought": "project", "name": "x", "csrf": m.csrf.get(p, "")}}, ok("usera", "userb")),
    ("page-application-a", "GET", "/applications/{app_a}", None, APP_A),
    ("page-application-b", "GET", "/applications/{app_b}", None, APP_B),
    ("page-application-edit", "POST", "/applications/{app_A_draft}/edit", lambda m, p: {"data": {
        "name": "y", "csrf": m.csrf.get(p, "")}}, ok("usera")),
    ("page-application-submit", "POST", "/applications/{app_A_draft}/submit", lambda m, p: {"data": {
        "csrf": m.csrf.get(p, "")}}, ok("usera")),
    ("page-application-pre-review", "POST", "/applications/{app_A_submitted}/pre-review", lambda m, p: {"data": {
        "verdict": "approve", "csrf": m.csrf.get(p, "")}}, ok("dist")),
    ("page-application-assign", "POST", "/applications/{app_A_expert_review}/assessors", lambda m, p: {"data": {
        "assessor": "assy", "csrf": m.csrf.get(p, "")}}, PROGRAMME),
    ("page-application-unassign", "POST", "/applications/{assessor_A}/withdraw", lambda m, p: {"data": {
        "csrf": m.csrf.get(p, "")}}, PROGRAMME),
    ("page-application-declare", "POST", "/applications/{app_B_expert_assigned}/declaration",
     lambda m, p: {"data": {"conflict": "no", "csrf": m.csrf.get(p, "")}}, ok("ass")),
    ("page-application-score", "POST", "/applications/{app_B_expert_declared}/scores", lambda m, p: {"data": {
        "score_conditions": "5", "csrf": m.csrf.get(p, "")}}, ok("ass")),
    ("page-application-close-review", "POST", "/applications/{app_A_review_done}/close-review",
     lambda m, p: {"data": {"publicity_days": "0", "csrf": m.csrf.get(p, "")}}, PROGRAMME),
    ("page-application-object", "POST", "/applications/{app_A_publicity}/objections", lambda m, p: {"data": {
        "text": "o", "csrf": m.csrf.get(p, "")}}, PROGRAMME),
    ("page-application-resolve", "POST", "/applications/{obj_A}/resolution", lambda m, p: {"data": {
        "resolution": "r", "csrf": m.csrf.get(p, "")}}, PROGRAMME),
    ("page-application-end-publicity", "POST", "/applications/{app_A_publicity}/end-publicity",
     lambda m, p: {"data": {"csrf": m.csrf.get(p, "")}}, PROGRAMME),
    ("page-application-decide", "POST", "/applications/{app_A_decision}/decision", lambda m, p: {"data": {
        "decision": "approved", "csrf": m.csrf.get(p, "")}}, PROGRAMME),
    ("page-application-request-acceptance", "POST", "/applications/{app_A_approved}/acceptance-request",
     lambda m, p: {"data": {"csrf": m.csrf.get(p, "")}}, ok("usera")),
    ("page-application-confirm", "POST", "/applications/{app_B_acceptance}/confirmations", lambda m, p: {"data": {
        "ruleset": "chongqing-2018-digital-workshop", "criterion": "mes_coverage", "confirmed": "yes",
        "csrf": m.csrf.get(p, "")}}, ok("ass")),
    ("page-application-accept", "POST", "/applications/{app_A_acceptance}/acceptance", lambda m, p: {"data": {
        "accepted": "yes", "csrf": m.csrf.get(p, "")}}, PROGRAMME),
    ("page-application-evidence", "POST", "/applications/{app_A_draft}/evidence", lambda m, p: {
        "data": {"csrf": m.csrf.get(p, "")}, "files": {"file": ("p.pdf", io.BytesIO(b"%PDF-1.4 x"),
                                                                "application/pdf")}}, ok("usera")),
    ("page-evidence-a", "GET", "/evidence/{evidence_a}", None, ok("root", "usera", "dist")),
    ("page-maturity-a", "GET", f"/maturity/{A}", None, SEES_A),
    ("page-questionnaire-a", "POST", f"/maturity/{A}/questionnaire", lambda m, p: {"data": {
        "system": "MES", "csrf": m.csrf.get(p, "")}}, ok("usera")),
    ("page-maturity-import", "POST", "/maturity/import", lambda m, p: {
        "data": {"csrf": m.csrf.get(p, "")}, "files": {"file": (
            "m.csv", io.BytesIO(f"enterprise_id,assessed_on,level\n{A},2025-06-30,2\n".encode()), "text/csv")}},
     PROGRAMME),
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
    cid, method, template, build, allowed = case
    for p in ORDER:
        fresh = {k: m.make(k) for k in re.findall(r"\{((?:app_[AB]_|scope_|assessor_|obj_)\w*)\}", template)}
        path = template.format(upload_a=m.uploads["usera"], upload_b=m.uploads["userb"], victim_key=m.victim_key,
                               victim_session=m.victim_session, **m.fixed, **fresh)
        kw = build(m, p) if build else {}
        before = None
        if method != "GET" and p not in allowed:
            with m.client.app.state.server.store.read() as rd:
                before = counts(rd.con)
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
    #: placeholders that stand for several segments (see M.make)
    compound = {"{assessor_A}": "{app}/assessors/{assessor}", "{obj_A}": "{app}/objections/{objection}"}
    for _id, method, path, _b, _a in CASES:
        path = path.split("?")[0]
        for k, v in compound.items():
            path = path.replace(k, v)
        covered.add((method, path))

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
