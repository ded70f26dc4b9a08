"""Tenants at once (issue 14, benchmarks/tenant_load.py): one tenant's uploads neither block, invalidate nor
recompute what another tenant reads, and a tenant's own pages compute its elements once per upload.

Asserted by what is computed (cache misses, engine calls) and by the order of events, never by wall-clock
time.
"""

from __future__ import annotations

import io
import threading
import time
from collections import Counter

import pytest

from test_server_support import SITE_A, SITE_B, A, B, bearer, clone, csv_bytes, login, make_client

pytest.importorskip("fastapi")

#: what a tenant's users read in the load test: the landing page, the site page, a work-centre page, the API
PAGES = {A: ["/plant", f"/plant/site/{SITE_A}", f"/plant/work_center/{A}-WC1", "/api/v1/kpi?level=site&period=day"],
         B: ["/plant", f"/plant/site/{SITE_B}", f"/plant/work_center/{B}-WC1", "/api/v1/kpi?level=site&period=day"]}


def states(eq: str, minute: int, n: int = 5) -> bytes:
    t0 = 1_740_000_000  # 2025-02-19, inside the store's range
    return csv_bytes([{"equipment_id": eq, "start": _iso(t0 + 60 * k), "end": _iso(t0 + 60 * (k + 1)),
                       "state": "production"} for k in range(minute, minute + n)])


def _iso(t: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def post(client, headers, name: str, data: bytes):
    return client.post("/api/v1/ingest/states", headers=headers, files={"file": (name, io.BytesIO(data))})


def read_all(client, headers, tenant) -> None:
    for path in PAGES[tenant]:
        r = client.get(path, headers=headers)
        assert r.status_code == 200, (path, r.text[:300])


@pytest.fixture
def tenants(tmp_path):
    client = make_client(clone(tmp_path / "t.duckdb"))
    try:
        yield client, {A: bearer(login(client, "usera")), B: bearer(login(client, "userb"))}
    finally:
        client.app.state.server.close()


def test_a_tenants_upload_leaves_every_result_another_tenant_reads_cached(tenants):
    client, h = tenants
    results = client.app.state.server.store.results
    read_all(client, h[B], B)
    read_all(client, h[A], A)
    up = post(client, h[A], "a.csv", states(f"{A}-WC1-M1", 0))
    assert up.status_code == 201 and up.json()["loaded"] == 5, up.text
    before = results.misses
    read_all(client, h[B], B)  # B's pages, charts' data, access: nothing of it depends on A's records
    assert results.misses == before
    read_all(client, h[A], A)  # A's own pages follow A's upload
    assert results.misses > before
    kpi = client.get("/api/v1/kpi?level=equipment&period=all", headers=h[A]).json()
    assert all(r["equipment_id"].startswith(A) for r in kpi)


def test_a_tenants_pages_compute_its_elements_once_per_upload(tenants, monkeypatch):
    import zhizao.scale.engines as engines
    from zhizao.kpi.partitions import EngineContext

    client, h = tenants
    read_all(client, h[A], A)
    up = post(client, h[A], "a.csv", states(f"{A}-WC2-M1", 0))
    assert up.status_code == 201, up.text
    periods, contexts = Counter(), Counter()
    real_elements, real_read = engines.compute_elements, EngineContext.read.__func__

    def elements(con, period="day", *a, **kw):
        periods[period] += 1
        return real_elements(con, period, *a, **kw)

    def read(cls, con, settings=None, zone_level=None, extent=None):
        contexts[zone_level] += 1
        return real_read(cls, con, settings, zone_level, extent)
    monkeypatch.setattr(engines, "compute_elements", elements)
    monkeypatch.setattr(EngineContext, "read", classmethod(read))
    for path in PAGES[A]:
        contexts.clear()
        assert client.get(path, headers=h[A]).status_code == 200
        assert not contexts or max(contexts.values()) == 1, (path, contexts)  # its facts: once per request
    # every table of every page (KPIs of the site and its work centres, losses, stop reasons, data quality,
    # trends) comes from one computation of the tenant's elements per period
    assert periods and max(periods.values()) == 1, periods


def test_a_tenants_read_completes_while_another_tenants_upload_holds_the_write_lock(tenants, monkeypatch):
    import zhizao

    client, h = tenants
    entered, release = threading.Event(), threading.Event()
    real = zhizao.Workspace.ingest

    def slow_ingest(self, *a, **kw):  # A's load, in progress under the write lock until released
        entered.set()
        assert release.wait(120)
        return real(self, *a, **kw)
    monkeypatch.setattr(zhizao.Workspace, "ingest", slow_ingest)
    answer = {}
    t = threading.Thread(target=lambda: answer.update(a=post(client, h[A], "a.csv", states(f"{A}-WC1-M1", 9))))
    t.start()
    try:
        assert entered.wait(120)
        # B's pages, computed from nothing cached, while A's upload is in progress
        read_all(client, h[B], B)
        assert not release.is_set() and t.is_alive() and "a" not in answer
    finally:
        release.set()
        t.join(120)
    assert answer["a"].status_code == 201, answer["a"].text


def test_warm_up_after_a_tenants_upload_computes_that_tenants_results_only(tmp_path, monkeypatch):
    import zhizao
    import zhizao.scale.engines as engines

    client = make_client(clone(tmp_path / "w.duckdb"))
    server = client.app.state.server
    try:
        ha, hb = bearer(login(client, "usera")), bearer(login(client, "userb"))
        read_all(client, hb, B)
        server.warm = True
        seen = []
        real_scoped = zhizao.Workspace.scoped
        monkeypatch.setattr(zhizao.Workspace, "scoped",
                            lambda self, ents: seen.append(("scoped", tuple(ents))) or real_scoped(self, ents))
        for name in ("elements", "rollup"):  # on which workspace the engine computes: scoped or the whole store's
            real = getattr(engines.EmbeddedEngine, name)
            monkeypatch.setattr(engines.EmbeddedEngine, name, lambda self, ws, *a, _real=real, **kw: seen.append(
                ("engine", type(ws.cache).__name__)) or _real(self, ws, *a, **kw))
        up = post(client, ha, "a.csv", states(f"{A}-WC1-M1", 20))
        assert up.status_code == 201, up.text
        for _ in range(1200):  # until the background warm-up has finished
            with server._warm_lock:
                if not server._warm_running:
                    break
            time.sleep(0.1)
        else:
            raise AssertionError("the warm-up did not finish")
        assert ("scoped", (A,)) in seen and {s for s in seen if s[0] == "scoped"} == {("scoped", (A,))}, seen
        # every computation ran on A's scoped workspace, never on the whole store
        assert {s for s in seen if s[0] == "engine"} == {("engine", "_ScopedCache")}, seen
        before = server.store.results.misses
        read_all(client, hb, B)
        assert server.store.results.misses == before
        seen.clear()
        assert client.get("/api/v1/kpi?level=site&period=day", headers=ha).status_code == 200
        assert not [s for s in seen if s[0] == "engine"], seen  # A's site KPIs were warmed: nothing to compute
    finally:
        server.warm = False
        server.close()
