"""Issue 14 on the front ends: user errors are 4xx/exit 2 with one line, faults 500/exit 1 with the security headers
and the connection kept, a busy store exits 2 with one line, health tells anonymous callers nothing about the store,
HSTS behind HTTPS."""

from __future__ import annotations

import http.client
import io
import subprocess
import sys
import threading
import time

import pytest

from test_server_support import PASSWORD, bearer, clone, csv_bytes, login, make_client

pytest.importorskip("fastapi")

SECURITY_HEADERS = ("content-security-policy", "x-content-type-options", "x-frame-options", "referrer-policy")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    c = make_client(clone(tmp_path_factory.mktemp("hard") / "s.duckdb"))
    yield c
    c.app.state.server.close()


def test_energy_verification_without_baseline_data_is_422_not_500(client):
    h = bearer(login(client, "root"))
    r = client.post("/api/v1/verify", headers=h, json={"indicator": "energy", "scope": "ENT001-WC1",
                                                       "baseline": ["2020-01-01", "2020-02-01"],
                                                       "reporting": ["2024-07-01", "2024-09-01"]})
    assert r.status_code == 422, r.text
    e = r.json()["error"]
    assert e["code"] == "verify.error.no_data" and e["params"]["scope"] == "ENT001-WC1"
    assert all(k in r.headers for k in SECURITY_HEADERS)


def test_a_degenerate_regression_has_an_undefined_f_test_not_a_zero_division():
    import numpy as np

    from zhizao.verify import model as M

    X = np.column_stack([np.ones(10), np.arange(10.0)])
    f = M.fit_arrays(np.zeros(10), X, ["const", "a"])  # a constant numerator: nothing to explain
    assert f.stats["f_p"] is None and f.stats["r2"] != f.stats["r2"] and not f.passed
    assert "F-test undefined" in [str(m) for m in f.failed]


def test_an_internal_error_is_500_with_the_security_headers(client, monkeypatch):
    from zhizao.server.access import TenantView

    def broken(self, *a, **k):
        raise RuntimeError("engine fault")

    monkeypatch.setattr(TenantView, "kpi", broken)
    h = bearer(login(client, "usera"))
    r = client.get("/api/v1/kpi?level=site&period=all&start=2024-01-01&end=2024-01-02", headers=h)
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "server.internal_error" and "engine fault" not in r.text
    assert all(k in r.headers for k in SECURITY_HEADERS)
    r = client.get("/plant", headers=h)
    assert r.status_code == 500 and "text/html" in r.headers["content-type"]
    assert all(k in r.headers for k in SECURITY_HEADERS)


def test_a_body_over_the_limit_is_413_with_the_security_headers(client):
    h = bearer(login(client, "usera"))
    r = client.post("/api/v1/verify", headers={**h, "content-type": "application/json"}, content=b"x" * (2 << 20))
    assert r.status_code == 413 and all(k in r.headers for k in SECURITY_HEADERS)


def test_health_tells_anonymous_callers_nothing_about_the_store(client):
    r = client.get("/api/v1/health")
    assert r.status_code == 200 and set(r.json()) == {"status", "version"}
    r = client.get("/api/v1/health", headers=bearer(login(client, "usera")))
    assert "store_version" in r.json()


def test_health_says_starting_until_the_start_up_warm_up_is_done(tmp_path, monkeypatch):
    """Issue 12: ``zhizao serve`` reports ready (health 200) only once the pages' whole-store results are warm, so
    that no page's first request after a restart computes them or races the warm-up for the cores."""
    from fastapi.testclient import TestClient

    from zhizao.server.app import create_app

    app = create_app(clone(tmp_path / "w.duckdb"), warm=True)
    server = app.state.server
    gate = threading.Event()
    warm_up = server.warm_up

    def held(targets=None):
        gate.wait(60)
        warm_up(targets)
    monkeypatch.setattr(server, "warm_up", held)
    try:
        with TestClient(app, raise_server_exceptions=False) as c:
            server.start()
            r = c.get("/api/v1/health")
            assert r.status_code == 503 and r.json()["status"] == "starting"
            gate.set()
            assert server.ready.wait(300)
            r = c.get("/api/v1/health")
            assert r.status_code == 200 and r.json()["status"] == "ok"
            # what the project list and the programme page start from is in the result cache
            names = {k[1] for k in list(server.store.results.lru._d) if isinstance(k, tuple) and len(k) > 1}
            assert {"projects", "latest_verifications", "programme", "programme_chart"} <= names, names
    finally:
        server.close()


def test_hsts_only_with_secure_cookies(tmp_path):
    for secure in (False, True):
        c = make_client(clone(tmp_path / f"h{secure}.duckdb"), secure_cookies=secure)
        try:
            r = c.get("/api/v1/health")
            assert ("strict-transport-security" in r.headers) is secure
        finally:
            c.app.state.server.close()


def test_an_internal_error_keeps_the_keep_alive_connection(tmp_path, monkeypatch):
    """On a real server: after a 500 the same connection answers the next request."""
    import socket

    import uvicorn

    from zhizao.server.access import TenantView
    from zhizao.server.app import create_app

    def broken(self, *a, **k):
        raise RuntimeError("engine fault")

    monkeypatch.setattr(TenantView, "catalogue", broken)
    app = create_app(clone(tmp_path / "k.duckdb"), warm=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    try:
        deadline = time.time() + 30
        while not server.started:
            assert time.time() < deadline
            time.sleep(0.05)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/api/v1/auth/login", body=f'{{"username": "usera", "password": "{PASSWORD}"}}',
                     headers={"content-type": "application/json"})
        token = __import__("json").loads(conn.getresponse().read())["token"]
        conn.request("GET", "/api/v1/catalogue", headers=bearer(token))
        r = conn.getresponse()
        r.read()
        assert r.status == 500 and r.getheader("content-security-policy")
        sock = conn.sock
        conn.request("GET", "/api/v1/me", headers=bearer(token))
        r = conn.getresponse()
        assert r.status == 200 and conn.sock is sock  # the same connection
        r.read()
        conn.close()
    finally:
        server.should_exit = True
        t.join(30)
        app.state.server.close()


# -- the command line
def _main(argv, capsys):
    from zhizao.cli.main import main

    with pytest.raises(SystemExit) as e:
        main(argv)
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_kpis_as_a_table_with_unnumbered_kpis(small_plant_store, capsys):
    code, out, err = _main(["kpis", "--db", str(small_plant_store)], capsys)
    assert code == 0, err
    assert "oee" in out and "Traceback" not in out + err


BUSY = [["kpi"], ["kpis"], ["capability"], ["quarantine"], ["report", "-o", "{tmp}/r.html"],
        ["ingest", "states", "{tmp}/s.csv"], ["verify", "energy", "--scope", "L01", "--baseline", "a..b",
                                             "--reporting", "c..d"],
        ["project", "list"], ["programme"], ["recognition", "--enterprise", "E", "--designation", "smart_factory"],
        ["bulletin", "-o", "{tmp}/b"], ["user", "list"], ["key", "list"], ["session", "list"]]


def test_every_command_on_a_busy_store_exits_2_with_one_line(small_plant_store, tmp_path, capsys):
    (tmp_path / "s.csv").write_bytes(csv_bytes([{"equipment_id": "M1", "start": "2025-01-01T00:00:00Z",
                                                 "state": "production"}]))
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(small_plant_store)!r}); "
                               "print('held', flush=True); time.sleep(120)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for args in BUSY:
            args = [a.format(tmp=tmp_path) for a in args] + ["--db", str(small_plant_store)]
            code, out, err = _main(args, capsys)
            assert code == 2, (args, out, err)
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("zhizao: ") and "Traceback" not in out + err, (args, err)
            assert str(holder.pid) in lines[0] or "held by another process" in lines[0], (args, err)
    finally:
        holder.kill()
        holder.wait()


def test_bad_arguments_exit_2_with_one_line(small_plant_store, capsys):
    for args in (["kpi", "--bogus"], ["kpi", "--level", "galaxy"], ["ingest"], ["verify", "happiness"],
                 ["simulate", "--timezone", "Mars/Olympus"], ["simulate", "--start", "soon"],
                 ["kpi", "--from", "2025-03-05", "--to", "2025-03-04"]):
        code, out, err = _main(args + (["--db", str(small_plant_store)] if args[0] != "simulate" else []), capsys)
        assert code == 2, (args, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in out + err, (args, err)


def test_upload_of_a_stage_error_is_4xx(client):
    h = bearer(login(client, "usera"))
    r = client.post("/api/v1/ingest/states", headers=h, files={"file": ("s.csv", io.BytesIO(b"a,b\n1,2\n"))})
    assert r.status_code == 400 and all(k in r.headers for k in SECURITY_HEADERS)


# -- issue 14, items 5 and 9: site keys of one enterprise; the analyst's aggregates-only boundary
def test_site_keys_are_bound_to_one_enterprise(tmp_path):
    import zhizao
    from zhizao.server import accounts
    from zhizao.server.access import Principal, derive_access

    db = clone(tmp_path / "site.duckdb")
    with zhizao.connect(db) as ws:
        accounts.ensure_tables(ws.con)
        ws.con.execute("""INSERT INTO equipment (equipment_id, site, enterprise) VALUES
                          ('SH-A', 'SHARED', 'ENT001'), ('SH-B', 'SHARED', 'ENT002')""")
        _k, rec = accounts.create_key(ws.con, site="ENT002-S1")
        assert rec.enterprise_id == "ENT002"  # bound to the one enterprise at that site
        with pytest.raises(accounts.AccountError):
            accounts.create_key(ws.con, site="SHARED")  # two enterprises: name one
        legacy = Principal("key", "k_old", "enterprise", None, "SHARED")
        a = derive_access(legacy, ws.con)
        assert a.enterprises == frozenset()  # a key of a shared site made before sees nothing


def test_analyst_may_not_name_a_piece_of_equipment(client):
    h = bearer(login(client, "ana"))
    body = {"indicator": "defect_rate", "baseline": ["2024-08-01", "2024-10-01"],
            "reporting": ["2025-01-01", "2025-03-01"]}
    r = client.post("/api/v1/verify", headers=h, json={**body, "scope": "ENT001-WC1-M1"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "server.aggregates_only"
    r = client.post("/api/v1/verify", headers=h, json={**body, "scope": "ENT001-WC1"})
    assert r.status_code < 300, r.text
    r = client.get("/api/v1/recognition", headers=h, params={"enterprise": "ENT001",
                                                              "designation": "digital_workshop",
                                                              "scope": "ENT001-WC1-M1"})
    assert r.status_code == 403
    r = client.get("/recognition", headers=h, params={"enterprise": "ENT001", "designation": "digital_workshop",
                                                      "scope": "ENT001-WC1-M1"})
    assert r.status_code == 403


def test_analyst_quarantine_summary_has_counts_without_values(client):
    hu = bearer(login(client, "usera"))
    r = client.post("/api/v1/ingest/states", headers=hu, files={"file": ("q.csv", io.BytesIO(csv_bytes([{
        "equipment_id": "ENT001-WC1-M1", "start": "2026-06-01T00:00:00Z", "end": "2026-06-01T01:00:00Z",
        "state": "SECRET-STATE-VALUE"}])))})
    assert r.status_code == 201, r.text
    s = client.get("/api/v1/quarantine/summary", headers=bearer(login(client, "ana"))).json()
    assert s and all(x["example"] is None for x in s) and sum(x["records"] for x in s) >= 1
    s = client.get("/api/v1/quarantine/summary", headers=bearer(login(client, "root"))).json()
    assert any(x["example"] for x in s)


# -- issue 14, items 1 and 14: one tenant's writes and data neither invalidate nor slow another's results
def test_a_tenants_stages_are_its_own_and_survive_another_tenants_upload(tmp_path, monkeypatch):
    import zhizao
    from test_server_support import A, B

    client = make_client(clone(tmp_path / "t.duckdb"))
    try:
        ha, hb, hr = (bearer(login(client, n)) for n in ("usera", "userb", "root"))
        q = "/api/v1/kpi?level=equipment&period=day"
        mine = client.get(q, headers=ha).json()
        assert mine and all(r["equipment_id"].startswith(A) for r in mine)
        # equal to the whole store's rows of the same entities (what the administrator sees)
        whole = {(r["equipment_id"], r["period_start"]): r for r in client.get(q, headers=hr).json()
                 if r["equipment_id"].startswith(A)}
        assert {(r["equipment_id"], r["period_start"]): r for r in mine} == whole
        calls = []
        real = zhizao.Workspace.scoped
        monkeypatch.setattr(zhizao.Workspace, "scoped", lambda self, ents: calls.append(tuple(ents)) or
                            real(self, ents))
        up = client.post("/api/v1/ingest/states", headers=hb, files={"file": ("b.csv", io.BytesIO(csv_bytes([{
            "equipment_id": f"{B}-WC1-M1", "start": "1970-01-02T00:00:00Z", "end": "1970-01-02T01:00:00Z",
            "state": "production"}])))})
        assert up.status_code == 201 and up.json()["loaded"] == 1, up.text
        assert client.get(q, headers=ha).json() == mine  # from the cache: B's upload did not touch A's results
        assert calls == []
        assert client.get(q, headers=hb).status_code == 200 and calls == [(B,)]  # B's own are computed again
        up = client.post("/api/v1/ingest/states", headers=ha, files={"file": ("a.csv", io.BytesIO(csv_bytes([{
            "equipment_id": f"{A}-WC1-M1", "start": "2025-06-01T00:00:00Z", "end": "2025-06-01T00:10:00Z",
            "state": "production"}])))})
        assert up.status_code == 201, up.text
        assert client.get(q, headers=ha).status_code == 200 and calls[-1] == (A,)
    finally:
        client.app.state.server.close()


def test_a_query_of_too_many_machine_rows_is_refused_before_it_is_computed(tmp_path, monkeypatch):
    """An hourly table of 1,000 machines over a year needs about 24 GB (measured: the process was killed); one
    request of it must not take the server down for everybody. Machine-level queries, and those that hold every
    entity's elements at once (stop reasons, capability), are refused past ``max_result_rows``, with a
    translated message, before anything is computed; roll-ups to other levels stream and are not limited."""
    import zhizao.kpi.elements as elements
    from test_server_support import bearer, clone, login, make_client
    from zhizao.limits import Limits

    db = clone(tmp_path / "rows.duckdb")
    client = make_client(db, limits=Limits(max_result_rows=1000))
    computed = []
    real = elements.partition_elements  # the kernel: every engine path computes through it
    monkeypatch.setattr(elements, "partition_elements", lambda *a, **kw: computed.append(1) or real(*a, **kw))
    try:
        h = bearer(login(client, "usera"))
        for path in ("/api/v1/kpi?level=equipment&period=hour", "/api/v1/stop-reasons?level=site&period=hour",
                     "/api/v1/capability?level=site&period=hour", "/api/v1/elements?level=equipment&period=hour"):
            r = client.get(path, headers=h)
            assert r.status_code == 400, (path, r.text[:200])
            assert r.json()["error"]["code"] == "server.too_many_rows"
            assert "limit of 1000" in r.json()["error"]["message"]
        zh = client.get("/api/v1/kpi?level=equipment&period=hour&lang=zh", headers=h).json()["error"]["message"]
        assert "超过上限 1000" in zh
        assert not computed
        # a short range, a longer period (2 machines x some 120 days), or a level above the machines, is answered
        assert client.get("/api/v1/elements?level=equipment&period=day", headers=h).status_code == 200
        ok = client.get("/api/v1/kpi?level=equipment&period=hour&start=2025-02-19T00:00:00Z"
                        "&end=2025-02-19T06:00:00Z", headers=h)
        assert ok.status_code == 200 and len(ok.json()) > 0 and computed
        assert client.get("/api/v1/kpi?level=site&period=hour", headers=h).status_code == 200
    finally:
        client.app.state.server.close()
