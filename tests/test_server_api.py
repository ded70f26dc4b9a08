"""REST API of ``zhizao serve``: every endpoint, good and bad input (malformed files, wrong types, huge uploads,
path traversal, injection attempts): a clear 4xx, never a 500, nothing stored."""

from __future__ import annotations

import io
import re
import threading
import time
from urllib.parse import quote

import pandas as pd
import pytest

import zhizao
from test_server_support import (
    PASSWORD,
    PROJECT_A,
    PROJECT_B,
    SITE_A,
    SITE_B,
    A,
    B,
    base_store,
    bearer,
    clone,
    counts,
    csv_bytes,
    login,
    make_client,
)

pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    db = clone(tmp_path_factory.mktemp("api") / "store.duckdb")
    client = make_client(db)
    tokens = {n: login(client, n) for n in ("root", "ana", "ass", "usera", "userb")}
    yield client, tokens
    client.app.state.server.close()


@pytest.fixture
def fresh(tmp_path):
    """A private server for tests that write."""
    client = make_client(clone(tmp_path / "store.duckdb"))
    tokens = {n: login(client, n) for n in ("root", "ana", "usera", "userb")}
    yield client, tokens
    client.app.state.server.close()


def store_counts(client) -> dict:
    store = client.app.state.server.store
    with store.read() as rd:
        return counts(rd.con)


def err(r, status: int, contains: str | None = None) -> dict:
    assert r.status_code == status, (r.status_code, r.text[:500])
    e = r.json()["error"]
    assert e["status"] == status and e["message"]
    if contains:
        assert contains.lower() in e["message"].lower(), e["message"]
    return e


def upload(client, token, table, name, data: bytes, **form):
    files = {"file": (name, io.BytesIO(data), "application/octet-stream")}
    if "mapping_file" in form:
        mname, mdata = form.pop("mapping_file")
        files["mapping"] = (mname, io.BytesIO(mdata), "application/x-yaml")
    return client.post(f"/api/v1/ingest/{table}", headers=bearer(token), files=files, data=form)


STATES_A = [
    {"equipment_id": "ENT001-WC1-M1", "start": "2026-01-05T06:00:00+08:00", "end": "2026-01-05T10:00:00+08:00",
     "state": "production"},
    {"equipment_id": "ENT001-WC1-M1", "start": "2026-01-05T10:00:00+08:00", "end": "2026-01-05T10:30:00+08:00",
     "state": "unplanned_downtime", "reason": "jam"},
    {"equipment_id": "ENT001-WC1-M1", "start": "2026-01-05T11:00:00+08:00", "end": "2026-01-05T12:00:00+08:00",
     "state": "WEIRD"},
    {"equipment_id": "ENT001-WC1-M1", "start": "2026-01-05T14:00:00+08:00", "end": "2026-01-05T13:00:00+08:00",
     "state": "production"},
]


# -- description, health, authentication
def test_openapi_describes_every_stage(srv):
    client, _t = srv
    r = client.get("/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for p in ("/api/v1/ingest/{table}", "/api/v1/kpi", "/api/v1/elements", "/api/v1/losses", "/api/v1/verify",
              "/api/v1/projects/{project_id}/verify", "/api/v1/projects", "/api/v1/designations",
              "/api/v1/programme/statistics", "/api/v1/recognition", "/api/v1/programme/bulletin",
              "/api/v1/quarantine", "/api/v1/keys", "/api/v1/users", "/api/v1/sessions"):
        assert p in paths, p
    assert client.get("/docs").status_code == 404  # no CDN-loaded Swagger UI


def test_health_and_authentication(srv):
    client, tokens = srv
    assert client.get("/api/v1/health").json()["status"] == "ok"
    err(client.get("/api/v1/me"), 401, "log in")
    err(client.get("/api/v1/me", headers=bearer("zs_not-a-token")), 401, "invalid")
    err(client.get("/api/v1/me", headers={"X-API-Key": base_store().keys["key_revoked"][0]}), 401)
    err(client.post("/api/v1/auth/login", json={"username": "usera", "password": "wrong password"}), 401)
    err(client.post("/api/v1/auth/login", json={"username": "nobody", "password": PASSWORD}), 401)
    err(client.post("/api/v1/auth/login", json={"username": 5}), 422)
    me = client.get("/api/v1/me", headers=bearer(tokens["usera"])).json()
    assert me["role"] == "enterprise" and me["enterprises"] == [A] and not me["programme"]
    me = client.get("/api/v1/me", headers={"X-API-Key": base_store().keys["key_site_b"][0]}).json()
    assert me["kind"] == "key" and me["sites"] == [SITE_B] and me["enterprises"] == [B]


def test_logout_revokes_and_cookie_writes_need_csrf(fresh):
    client, _t = fresh
    r = client.post("/api/v1/auth/login", json={"username": "usera", "password": PASSWORD}).json()
    token, csrf = r["token"], r["csrf"]
    client.cookies.set("zhizao_session", token)
    assert client.get("/api/v1/me").status_code == 200  # the cookie authenticates reads
    err(client.post("/api/v1/auth/logout"), 403, "X-CSRF-Token")  # but a write needs the CSRF header
    assert client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
    client.cookies.clear()
    err(client.get("/api/v1/me", headers=bearer(token)), 401)


# -- KPI stage
def test_kpi_by_level_period_and_range_equals_the_stage(srv):
    client, tokens = srv
    h = bearer(tokens["root"])
    rows = client.get("/api/v1/kpi", params={"level": "site", "period": "all"}, headers=h).json()
    with zhizao.connect(base_store().path, read_only=True) as ws:
        direct = ws.kpi(level="site", period="all").set_index("site")
        day = ws.kpi(level="work_center", period="day", start="2024-03-01T00:00:00+08:00",
                      end="2024-03-08T00:00:00+08:00")
    assert {r["site"] for r in rows} == {SITE_A, SITE_B}
    for r in rows:
        assert r["oee"] == pytest.approx(direct.loc[r["site"], "oee"])
        assert r["pbt"] == pytest.approx(direct.loc[r["site"], "pbt"])
    r = client.get("/api/v1/kpi", params={"level": "work_center", "period": "day",
                                          "start": "2024-03-01T00:00:00+08:00", "end": "2024-03-08T00:00:00+08:00",
                                          "kpis": "oee,availability"}, headers=h)
    assert r.status_code == 200
    got = pd.DataFrame(r.json())
    assert len(got) == len(day) and "oee" in got and "teep" not in got and "pbt" in got
    # drill-down: work centres inside a site; one id; CSV
    wc = client.get("/api/v1/kpi", params={"level": "work_center", "period": "all", "site": SITE_A}, headers=h).json()
    assert {r["work_center"] for r in wc} == {"ENT001-WC1", "ENT001-WC2"}
    one = client.get("/api/v1/kpi", params={"level": "equipment", "period": "all", "id": "ENT001-WC2-M1"},
                     headers=h).json()
    assert [r["equipment_id"] for r in one] == ["ENT001-WC2-M1"]
    csv = client.get("/api/v1/kpi", params={"level": "site", "period": "all", "format": "csv"}, headers=h)
    assert csv.headers["content-type"].startswith("text/csv") and csv.text.startswith("site,period_start")


@pytest.mark.parametrize("path", ["/api/v1/elements", "/api/v1/losses", "/api/v1/stop-reasons",
                                  "/api/v1/data-quality", "/api/v1/capability", "/api/v1/catalogue",
                                  "/api/v1/equipment", "/api/v1/schema", "/api/v1/mappings"])
def test_other_read_endpoints(srv, path):
    client, tokens = srv
    r = client.get(path, params={"level": "site"} if path not in ("/api/v1/catalogue", "/api/v1/equipment",
                                                                    "/api/v1/schema", "/api/v1/mappings") else {},
                   headers=bearer(tokens["usera"]))
    assert r.status_code == 200, r.text
    assert isinstance(r.json(), (list, dict)) and "ENT002" not in r.text


@pytest.mark.parametrize("params,status,text", [
    ({"level": "floor"}, 422, "level"),
    ({"period": "fortnight"}, 422, "period"),
    ({"start": "2024-01-01"}, 400, "both start and end"),
    ({"start": "2024-02-01", "end": "2024-01-01"}, 400, "not after"),
    ({"start": "yesterday-ish", "end": "2024-01-01"}, 400, "not an ISO 8601"),
    ({"start": "1900-01-01", "end": "2100-01-01"}, 400, "at most"),
    ({"period": "hour", "start": "2024-01-01", "end": "2026-01-01"}, 400, "at most"),
    ({"kpis": "oee,happiness"}, 400, "unknown KPI"),
    ({"site": "x" * 300}, 422, None),
    ({"start": "2024-01-01'; DROP TABLE states; --", "end": "2024-02-01"}, 400, "not an ISO 8601"),
])
def test_bad_kpi_queries_are_clear_4xx(srv, params, status, text):
    client, tokens = srv
    before = store_counts(client)
    err(client.get("/api/v1/kpi", params=params, headers=bearer(tokens["root"])), status, text)
    assert store_counts(client) == before


@pytest.mark.parametrize("injection", ["' OR 1=1 --", "ENT001-S1' OR '1'='1", "x\"; DROP TABLE states; --",
                                       "%' UNION SELECT * FROM server_users --", "../../etc/passwd", "\u0000"])
def test_injection_attempts_in_filters_match_nothing(srv, injection):
    client, tokens = srv
    h = bearer(tokens["usera"])
    before = store_counts(client)
    for path, params in (("/api/v1/kpi", {"level": "site", "period": "all", "site": injection}),
                         ("/api/v1/kpi", {"level": "site", "period": "all", "id": injection}),
                         ("/api/v1/equipment", {"work_center": injection}),
                         ("/api/v1/quarantine", {"upload_id": injection})):
        r = client.get(path, params=params, headers=h)
        assert r.status_code == 200, (path, r.text)
        assert r.json() == []
    # a register filter with a value that is no district or park is refused, naming only what the user may see
    for params in ({"park": injection}, {"district": injection}):
        r = client.get("/api/v1/projects", params=params, headers=h)
        e = err(r, 400)
        assert "unknown" in e["message"] and "ENT002" not in r.text
    r = client.get("/api/v1/recognition", params={"enterprise": injection, "designation": "digital_workshop"},
                   headers=h)
    err(r, 404)
    r = client.get("/api/v1/projects/" + quote(injection, safe=""), headers=h)
    assert r.status_code in (404, 422)
    assert store_counts(client) == before


# -- ingest
def test_upload_canonical_csv_answers_with_its_quarantine(fresh):
    client, tokens = fresh
    before = store_counts(client)
    r = upload(client, tokens["usera"], "states", "my states.csv", csv_bytes(STATES_A))
    assert r.status_code == 201, r.text
    res = r.json()
    assert (res["loaded"], res["quarantined"], res["file"]) == (2, 2, "my states.csv")
    rules = {q["rule"] for q in res["quarantine"]}
    assert rules == {"unmapped_state", "end_not_after_start"}
    assert {q["line"] for q in res["quarantine"]} == {4, 5}
    after = store_counts(client)
    assert after["states"] == before["states"] + 2 and after["quarantine"] == before["quarantine"] + 2
    # the upload and its quarantine can be read back
    u = client.get(f"/api/v1/uploads/{res['upload_id']}", headers=bearer(tokens["usera"])).json()
    assert u["file_name"] == "my states.csv" and len(u["quarantine"]) == 2 and "source" not in u
    q = client.get("/api/v1/quarantine", headers=bearer(tokens["usera"])).json()
    assert {x["rule"] for x in q} == rules and all(x["source"] == "my states.csv" for x in q)
    s = client.get("/api/v1/quarantine/summary", headers=bearer(tokens["usera"])).json()
    assert {x["rule"]: x["records"] for x in s} == {"unmapped_state": 1, "end_not_after_start": 1}
    # the same bytes again: read again (they had rejected records), nothing new stored, the rejections reported
    r2 = upload(client, tokens["usera"], "states", "again.csv", csv_bytes(STATES_A))
    assert r2.status_code == 201 and not r2.json()["already_loaded"]
    assert (r2.json()["loaded"], r2.json()["skipped"], r2.json()["quarantined"]) == (0, 2, 2)
    assert store_counts(client)["states"] == after["states"]
    # other tenant sees neither the upload nor its quarantine
    err(client.get(f"/api/v1/uploads/{res['upload_id']}", headers=bearer(tokens["userb"])), 404)
    assert client.get("/api/v1/quarantine", headers=bearer(tokens["userb"])).json() == []


def test_upload_with_mapping_file_and_parquet(fresh):
    client, tokens = fresh
    raw = csv_bytes([{"machine": "ENT001-WC2-M1", "from": "2026-01-06 06:00", "to": "2026-01-06 09:00",
                      "status": "RUN"},
                     {"machine": "ENT001-WC2-M1", "from": "2026-01-06 09:00", "to": "2026-01-06 09:20",
                      "status": "BROKEN"}])
    mapping = b"""table: states
timezone: Asia/Shanghai
columns:
  equipment_id: machine
  start: from
  end: to
  state: status
states:
  RUN: production
  BROKEN: unplanned_downtime
"""
    r = upload(client, tokens["usera"], "states", "mes-export.csv", raw, mapping_file=("mes.yaml", mapping))
    assert r.status_code == 201, r.text
    assert r.json()["loaded"] == 2 and r.json()["mapping"] == "mes.yaml"
    buf = io.BytesIO()
    pd.DataFrame([{"equipment_id": "ENT001-WC2-M1", "end": "2026-01-06T09:00:00+08:00", "produced": 100.0,
                   "good": 97.0, "scrap": 3.0}]).to_parquet(buf, index=False)
    r = upload(client, tokens["usera"], "production", "counts.parquet", buf.getvalue())
    assert r.status_code == 201, r.text
    assert r.json()["loaded"] == 1


MALFORMED = [
    ("garbage.csv", bytes(range(256)) * 40, 400, "not a text"),
    ("empty.csv", b"", 400, "empty"),
    ("columns.csv", b"a,b\n1,2\n", 400, "no column for required"),
    ("fake.parquet", b"this is not parquet at all", 400, "not a Parquet"),
    ("truncated.parquet", b"PAR1" + b"\x00" * 64, 400, None),
    ("fake.csv.gz", b"plain text", 400, "not gzip"),
    ("run.exe", b"MZ", 415, "only"),
    ("../../etc/passwd.csv", b"equipment_id\nx\n", 400, "not allowed"),
    ("..\\..\\win.csv", b"equipment_id\nx\n", 400, "not allowed"),
    ("/abs/path.csv", b"equipment_id\nx\n", 400, "not allowed"),
    (".hidden.csv", b"equipment_id\nx\n", 400, "not allowed"),
]


@pytest.mark.parametrize("name,data,status,text", MALFORMED)
def test_malformed_uploads_are_refused_and_store_nothing(fresh, name, data, status, text):
    client, tokens = fresh
    before = store_counts(client)
    r = upload(client, tokens["usera"], "states", name, data)
    e = err(r, status, text)
    assert "/tmp" not in e["message"] and "zhizao-upload" not in e["message"]  # no server paths in messages
    assert store_counts(client) == before


def test_bad_mappings_and_tables(fresh):
    client, tokens = fresh
    before = store_counts(client)
    data = csv_bytes(STATES_A[:1])
    sql_mapping = b"table: states\ncolumns:\n  equipment_id: {sql: \"(SELECT min(equipment_id) FROM equipment)\"}\n"
    err(upload(client, tokens["usera"], "states", "s.csv", data, mapping_file=("evil.yaml", sql_mapping)), 403,
        "administrators")
    err(upload(client, tokens["usera"], "states", "s.csv", data, mapping_file=("bad.yaml", b"table: [unclosed")),
        400)
    err(upload(client, tokens["usera"], "states", "s.csv", data, mapping_file=("m.yaml", b"table: nope\n")), 400,
        "unknown table")
    err(upload(client, tokens["usera"], "states", "s.csv", data, mapping_file=("m.yaml", b"table: energy\n")), 400,
        "maps table")
    err(upload(client, tokens["usera"], "states", "s.csv", data, mapping_name="no-such-mapping"), 400,
        "unknown mapping")
    err(upload(client, tokens["usera"], "states", "s.csv", data, mapping_name="eemeter-daily",
               mapping_file=("m.yaml", b"table: states\n")), 400, "not both")
    err(upload(client, tokens["usera"], "nonsense", "s.csv", data), 422)
    err(upload(client, tokens["usera"], "projects", "p.csv", b"project_id\nX\n"), 403, "may not load")
    err(client.post("/api/v1/ingest/states", headers=bearer(tokens["usera"])), 422)  # no file at all
    err(client.post("/api/v1/ingest/states", headers=bearer(tokens["usera"]), content=b"plain body",
                    ), 422)
    # wrong types inside a file are record-level problems: loaded file, quarantined records
    r = upload(client, tokens["usera"], "production", "types.csv",
               csv_bytes([{"equipment_id": "ENT001-WC1-M1", "end": "2026-01-07T10:00:00+08:00",
                           "produced": "many"}]))
    assert r.status_code == 201 and r.json()["quarantine"][0]["rule"] == "unparseable"
    after = store_counts(client)
    assert after["production"] == before["production"] and after["quarantine"] == before["quarantine"] + 1


def test_huge_uploads_get_413_and_store_nothing(tmp_path):
    client = make_client(clone(tmp_path / "s.duckdb"), max_upload_mb=0.02)
    token = login(client, "usera")
    try:
        before = store_counts(client)
        big = b"equipment_id,start,end,state\n" + b"ENT001-WC1-M1,2026-01-01T00:00:00Z,2026-01-01T00:01:00Z,x\n" * 2000
        err(upload(client, token, "states", "big.csv", big), 413, "limit")

        def chunks():  # no Content-Length: the limit is enforced while streaming
            yield b'--zz\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n\r\n'
            for _ in range(300):  # 3 MB: past the limit of 0.02 MB file + 1 MB of form fields
                yield b"x" * 10000
        r = client.post("/api/v1/ingest/states", headers={**bearer(token), "content-type": "multipart/form-data; "
                                                          "boundary=zz"}, content=chunks())
        assert r.status_code == 413
        err(client.post("/api/v1/verify", headers=bearer(token), content=b"{" + b" " * (2 << 20) + b"}"), 413)
        assert store_counts(client) == before
    finally:
        client.app.state.server.close()


# -- verify stage
def test_adhoc_verification(srv):
    client, tokens = srv
    h = bearer(tokens["userb"])
    body = {"indicator": "defect_rate", "scope": "ENT002-WC1", "baseline": ["2024-03-01", "2024-05-01"],
            "reporting": ["2024-07-01", "2024-09-01"]}
    r = client.post("/api/v1/verify", json=body, headers=h)
    assert r.status_code == 200, r.text
    res = r.json()
    assert res["indicator"] == "defect_rate" and res["scope"] == "ENT002-WC1" and "improvement" in res
    with zhizao.connect(base_store().path, read_only=True) as ws:
        direct = ws.verify("defect_rate", "ENT002-WC1", ("2024-03-01", "2024-05-01"), ("2024-07-01", "2024-09-01"))
    assert res["improvement"] == pytest.approx(direct.improvement)
    err(client.post("/api/v1/verify", json={**body, "scope": "ENT001-WC1"}, headers=h), 404)
    err(client.post("/api/v1/verify", json={**body, "indicator": "happiness"}, headers=h), 422)
    err(client.post("/api/v1/verify", json={**body, "baseline": ["soon", "later"]}, headers=h), 400)
    err(client.post("/api/v1/verify", json={**body, "baseline": ["2024-03-01", "2024-01-01"]}, headers=h), 400)
    err(client.post("/api/v1/verify", json={**body, "confidence": 7}, headers=h), 422)
    err(client.post("/api/v1/verify", content=b"{not json", headers={**h, "content-type": "application/json"}),
        422)


def test_projects_verifications_programme_recognition(srv):
    client, tokens = srv
    h = bearer(tokens["ana"])
    prj = client.get("/api/v1/projects", headers=h).json()
    assert {p["project_id"] for p in prj} == {"P0001", "P0002", "P0003"}
    one = client.get(f"/api/v1/projects/{PROJECT_B}", headers=h).json()
    assert one["project"]["enterprise_id"] == B and {v["indicator"] for v in one["verifications"]} == {
        "production_efficiency", "defect_rate"}
    ver = client.get(f"/api/v1/projects/{PROJECT_B}/verifications", headers=h).json()
    assert {v["indicator"] for v in ver} == {"production_efficiency", "defect_rate"}
    assert all("fit" in v and "warnings" in v for v in ver)
    allv = client.get("/api/v1/verifications", headers=h).json()
    assert {v["project_id"] for v in allv} == {PROJECT_A, PROJECT_B}
    assert len(client.get("/api/v1/enterprises", headers=h).json()) == 2
    assert len(client.get("/api/v1/designations", headers=h).json()) == 3
    s = client.get("/api/v1/programme/statistics", params={"n_boot": 50}, headers=h)
    assert s.status_code == 200 and s.json()["totals"]["n_projects"] == 3
    err(client.get("/api/v1/programme/statistics", params={"n_boot": 0}, headers=h), 422)
    err(client.get("/api/v1/programme/statistics", params={"start": "not a date"}, headers=h), 400)
    for lang, word in (("zh", "项目"), ("en", "project")):
        b = client.get("/api/v1/programme/bulletin", params={"lang": lang, "n_boot": 50}, headers=h)
        assert b.status_code == 200 and b.headers["content-type"].startswith("text/html") and word in b.text
        assert "<script" not in b.text
    md = client.get("/api/v1/programme/bulletin", params={"lang": "en", "format": "md", "n_boot": 50}, headers=h)
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
    err(client.get("/api/v1/programme/bulletin", params={"lang": "fr"}, headers=h), 422)
    rc = client.get("/api/v1/recognition", params={"enterprise": A, "designation": "smart_factory"}, headers=h)
    assert rc.status_code == 200 and "digital_equipment_share" in {x["criterion"] for x in rc.json()}
    err(client.get("/api/v1/recognition", params={"enterprise": A, "designation": "castle"}, headers=h), 422)
    err(client.get("/api/v1/recognition", params={"enterprise": "ENT999", "designation": "smart_factory"},
                   headers=h), 404, "unknown enterprise")


def test_storing_a_project_verification(fresh):
    client, tokens = fresh
    before = store_counts(client)["verifications"]
    r = client.post(f"/api/v1/projects/{PROJECT_A}/verify", json={"indicators": ["defect_rate"]},
                    headers=bearer(tokens["ana"]))
    assert r.status_code == 200, r.text
    assert [x["indicator"] for x in r.json()] == ["defect_rate"]
    assert store_counts(client)["verifications"] == before + 1
    err(client.post("/api/v1/projects/P9999/verify", json={}, headers=bearer(tokens["ana"])), 404)
    err(client.post(f"/api/v1/projects/{PROJECT_A}/verify", json={"indicators": ["x"]},
                    headers=bearer(tokens["ana"])), 422)


# -- accounts
def test_account_administration(fresh):
    client, tokens = fresh
    h = bearer(tokens["root"])
    r = client.post("/api/v1/users", json={"username": "newbie", "password": "long enough pw", "role": "enterprise",
                                           "enterprise_id": A}, headers=h)
    assert r.status_code == 201, r.text
    err(client.post("/api/v1/users", json={"username": "newbie", "password": "long enough pw",
                                           "role": "enterprise", "enterprise_id": A}, headers=h), 409)
    err(client.post("/api/v1/users", json={"username": "x", "password": "short", "role": "admin"}, headers=h), 422)
    err(client.post("/api/v1/users", json={"username": "bad name!", "password": "long enough pw",
                                           "role": "admin"}, headers=h), 400)
    err(client.post("/api/v1/users", json={"username": "e", "password": "long enough pw", "role": "enterprise"},
                    headers=h), 400, "enterprise")
    err(client.post("/api/v1/users", json={"username": "e", "password": "long enough pw", "role": "king"},
                    headers=h), 422)
    t = client.post("/api/v1/auth/login", json={"username": "newbie", "password": "long enough pw"}).json()["token"]
    assert client.get("/api/v1/me", headers=bearer(t)).json()["enterprises"] == [A]
    assert client.get("/api/v1/users/newbie", headers=bearer(t)).status_code == 200
    err(client.get("/api/v1/users/root", headers=bearer(t)), 403)
    # one's own password changes only with the old one (a stolen session must not take over the account)
    err(client.patch("/api/v1/users/newbie", json={"password": "another long pw"}, headers=bearer(t)), 400,
        "old_password")
    err(client.patch("/api/v1/users/newbie", json={"password": "another long pw", "old_password": "not it at all"},
                     headers=bearer(t)), 403)
    assert client.patch("/api/v1/users/newbie", json={"password": "another long pw",
                                                       "old_password": "long enough pw"}, headers=bearer(t)
                        ).status_code == 200
    err(client.get("/api/v1/me", headers=bearer(t)), 401)  # a new password revokes the sessions
    t = client.post("/api/v1/auth/login", json={"username": "newbie", "password": "another long pw"}).json()["token"]
    assert client.delete("/api/v1/users/newbie", headers=h).status_code == 200
    err(client.get("/api/v1/me", headers=bearer(t)), 401)  # disabled: sessions revoked
    err(client.post("/api/v1/auth/login", json={"username": "newbie", "password": "another long pw"}), 401)
    err(client.delete("/api/v1/users/ghost", headers=h), 404)
    # assessor assignments
    r = client.patch("/api/v1/users/ass", json={"projects": [PROJECT_A]}, headers=h)
    assert r.status_code == 200 and r.json()["projects"] == [PROJECT_A]
    # keys: an enterprise user creates a key for its own enterprise or site, never another's
    hu = bearer(tokens["usera"])
    k = client.post("/api/v1/keys", json={"site": SITE_A, "name": "line PLC"}, headers=hu)
    assert k.status_code == 201, k.text
    key, kid = k.json()["key"], k.json()["key_id"]
    assert client.get("/api/v1/me", headers={"X-API-Key": key}).json()["sites"] == [SITE_A]
    err(client.post("/api/v1/keys", json={"enterprise_id": B}, headers=hu), 404)
    err(client.post("/api/v1/keys", json={"site": SITE_B}, headers=hu), 404)
    err(client.post("/api/v1/keys", json={}, headers=h), 400)
    assert kid in {x["key_id"] for x in client.get("/api/v1/keys", headers=hu).json()}
    assert kid not in {x["key_id"] for x in client.get("/api/v1/keys", headers=bearer(tokens["userb"])).json()}
    err(client.delete(f"/api/v1/keys/{kid}", headers=bearer(tokens["userb"])), 404)
    assert client.delete(f"/api/v1/keys/{kid}", headers=hu).status_code == 200
    err(client.get("/api/v1/me", headers={"X-API-Key": key}), 401)
    # sessions: own ones, revocable
    own = client.get("/api/v1/sessions", headers=hu).json()
    assert own and {s["username"] for s in own} == {"usera"}
    sid = own[-1]["session_id"]
    err(client.delete(f"/api/v1/sessions/{sid}", headers=bearer(tokens["userb"])), 404)
    assert client.delete(f"/api/v1/sessions/{sid}", headers=h).status_code == 200
    err(client.get("/api/v1/me", headers=hu), 401)


# -- consistency and caching
def test_reads_during_ingestion_are_consistent_and_caches_follow_the_store(fresh):
    client, tokens = fresh
    store = client.app.state.server.store
    h = bearer(tokens["usera"])
    pq0 = {r["site"]: r["pq"] for r in client.get("/api/v1/kpi", params={"level": "site", "period": "all"},
                                                   headers=h).json()}
    with store.read() as rd:
        n0 = rd.con.execute("SELECT count(*) FROM production").fetchone()[0]
    n_new = 30000
    ts = pd.date_range("2026-02-01", periods=n_new, freq="min", tz="Asia/Shanghai")
    big = pd.DataFrame({"equipment_id": "ENT001-WC2-M1", "end": ts.strftime("%Y-%m-%dT%H:%M:%S%z"),
                        "produced": 1.0}).to_csv(index=False).encode()
    seen, errors = set(), []
    done = threading.Event()

    def reader():
        while not done.is_set():
            with store.read() as rd:
                a = rd.con.execute("SELECT count(*) FROM production").fetchone()[0]
                time.sleep(0.005)
                b = rd.con.execute("SELECT count(*) FROM production").fetchone()[0]
            if a != b:
                errors.append((a, b))
            seen.add(a)
    t = threading.Thread(target=reader)
    t.start()
    try:
        r = upload(client, tokens["usera"], "production", "big.csv", big)
    finally:
        done.set()
        t.join()
    assert r.status_code == 201 and r.json()["loaded"] == n_new
    assert not errors, errors[:3]  # one request, one snapshot
    assert seen <= {n0, n0 + n_new}  # never a half-written load
    pq1 = {r["site"]: r["pq"] for r in client.get("/api/v1/kpi", params={"level": "site", "period": "all"},
                                                   headers=h).json()}
    assert pq1[SITE_A] == pytest.approx(pq0[SITE_A] + n_new)  # the cache follows the store version


# -- validation errors: the project's error shape, in the request's language
@pytest.mark.parametrize("method,path,kw,field,code,en,zh", [
    ("get", "/api/v1/kpi", {"params": {"level": "floor"}}, "level", "request.not_one_of",
     "level = 'floor' is not one of equipment, work_center, area, site, enterprise",
     "level = 'floor' 不是允许的值；允许的值：equipment、work_center、area、site、enterprise"),
    ("get", "/api/v1/kpi", {"params": {"period": "fortnight"}}, "period", "request.not_one_of",
     "period = 'fortnight' is not one of hour, shift, day, week, month, all",
     "period = 'fortnight' 不是允许的值；允许的值：hour、shift、day、week、month、all"),
    ("get", "/api/v1/uploads", {"params": {"limit": "abc"}}, "limit", "request.not_integer",
     "limit = 'abc' is not a whole number", "limit = 'abc' 不是整数"),
    ("get", "/api/v1/uploads", {"params": {"limit": "0"}}, "limit", "request.too_small",
     "limit = 0 is below 1, the smallest allowed value", "limit = 0 小于允许的最小值 1"),
    ("get", "/api/v1/quarantine", {"params": {"limit": "99999"}}, "limit", "request.too_large",
     "limit = 99999 is above 10000, the largest allowed value", "limit = 99999 大于允许的最大值 10000"),
    ("get", "/api/v1/kpi", {"params": {"site": "x" * 300}}, "site", "request.text_too_long",
     "site is longer than 200 characters", "site 超过 200 个字符"),
    ("get", "/api/v1/programme/bulletin", {"params": {"format": "doc"}}, "format", "request.no_match",
     "format = 'doc' does not match ^(html|md|pdf)$", "format = 'doc' 不符合格式 ^(html|md|pdf)$"),
    ("post", "/api/v1/verify", {"json": {"indicator": "energy", "scope": "ENT001-S1", "baseline": ["2024-01-01",
                                                                                                   "2024-02-01"],
                                         "reporting": ["2024-02-01", "2024-03-01"], "confidence": "high"}},
     "confidence", "request.not_number", "confidence = 'high' is not a number", "confidence = 'high' 不是数字"),
    ("post", "/api/v1/auth/login", {"json": {"username": "usera"}}, "password", "request.missing",
     "password is required", "缺少参数 password"),
    ("post", "/api/v1/auth/login", {"content": b"{not json", "headers": {"content-type": "application/json"}},
     "body", "request.bad_json", "the request body is not valid JSON", "请求体不是有效的 JSON"),
])
def test_validation_errors_are_structured_and_translated(srv, method, path, kw, field, code, en, zh):
    """FastAPI's 422 texts were pydantic's English whatever the request asked for: each kind of error (bad enum,
    bad integer, a bound, a length, a pattern, a number, a missing field, bad JSON) has a code and a message
    naming the parameter and the rule, in the language of ?lang= or Accept-Language."""
    client, tokens = srv
    h = {**bearer(tokens["root"]), **kw.pop("headers", {})}
    for how, lang, text in ((("params", {"lang": "zh"}), "zh", zh), (("headers", {"Accept-Language": "zh-CN"}), "zh",
                                                                     zh), (None, "en", en)):
        args = {k: (dict(v) if isinstance(v, dict) else v) for k, v in kw.items()}
        hh = dict(h)
        if how and how[0] == "params":
            args["params"] = {**args.get("params", {}), **how[1]}
        elif how:
            hh.update(how[1])
        r = getattr(client, method)(path, headers=hh, **args)
        e = err(r, 422)
        assert (e["code"], e["message"], e["params"]) == ("request.invalid", text, {"fields": [field]}), (lang, e)
        assert [(x["field"], x["code"], x["message"]) for x in e["errors"]] == [(field, code, text)]
        assert e["errors"][0]["params"]["name"] == field if code != "request.bad_json" else True


def test_bad_dates_are_structured_and_translated(srv):
    """A date or time parameter of the API is text read by the stage: a bad one is a 400 with its code and a
    translated message naming it (a date-typed parameter of pydantic gets request.not_date alike)."""
    import datetime as dt

    from pydantic import TypeAdapter, ValidationError

    from zhizao.server import invalid

    client, tokens = srv
    h = bearer(tokens["root"])
    for lang, text in (("en", "start = 'yesterday' is not an ISO 8601 date or time stamp"),
                       ("zh", "start = 'yesterday' 不是 ISO 8601 日期或时间戳")):
        e = err(client.get("/api/v1/kpi", params={"start": "yesterday", "end": "2024-01-01", "lang": lang},
                           headers=h), 400)
        assert (e["code"], e["params"]["name"]) == ("server.bad_time", "start")
        assert e["message"] == text
    with pytest.raises(ValidationError) as info:
        TypeAdapter(dt.date).validate_python("2024-02-30")
    errors = [{**x, "loc": ("query", "as_of")} for x in info.value.errors()]
    for lang, text in (("en", "as_of = '2024-02-30' is not a date (YYYY-MM-DD)"),
                       ("zh", "as_of = '2024-02-30' 不是日期（YYYY-MM-DD）")):
        a = invalid.answer(errors, lang)
        assert (a["code"], a["message"], a["errors"][0]["code"]) == ("request.invalid", text, "request.not_date")


def test_every_validation_message_has_both_languages_and_an_unknown_kind_keeps_the_frame():
    from zhizao.i18n import translations
    from zhizao.server import invalid

    for kind, _limit in invalid.KINDS.values():
        zh = translations("zh").gettext(kind.template)
        assert zh != kind.template, kind.code
        assert sorted(re.findall(r"%\(\w+\)s", zh)) == sorted(re.findall(r"%\(\w+\)s", kind.template)), kind.code
    a = invalid.answer([{"type": "uuid_parsing", "loc": ("path", "key_id"), "msg": "Input should be a valid UUID",
                         "input": "x"}], "zh")
    assert a["message"] == "key_id 无效：Input should be a valid UUID" and a["errors"][0]["code"] == \
        "request.invalid_value"
    assert invalid.field_name(("body", "baseline", 1)) == "baseline[1]" and invalid.field_name(("body",)) == "body"
