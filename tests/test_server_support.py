"""Shared set-up of the server tests: a small two-enterprise store with accounts, built once per process.

The store is a simulated programme (:func:`zhizao.simulate.simulate_programme`): enterprise ENT001 (site
ENT001-S1, two work centres, projects P0002 and P0003) and enterprise ENT002 (site ENT002-S1, project P0001).
ENT001 is in 九龙坡区, whose district reviewer is ``dist``.
Every id of a tenant starts with its enterprise id, so a response that names the other tenant is found by a
plain text search.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import argon2
import pandas as pd

import zhizao
from zhizao.server import accounts

ORDER = ["equipment", "enterprises", "products", "calendar", "states", "production", "energy", "labour", "quality",
         "variables", "costs", "projects", "designations", "development_cycles"]
A, B = "ENT001", "ENT002"
SITE_A, SITE_B = "ENT001-S1", "ENT002-S1"
PROJECT_A, PROJECT_B = "P0002", "P0001"  # P0003 is A's too
PASSWORD = "correct horse battery"
#: principal name -> (role, enterprise, projects)
USERS = {
    "root": ("admin", None, ()),
    "ana": ("analyst", None, ()),
    "ass": ("assessor", None, (PROJECT_B,)),
    "usera": ("enterprise", A, ()),
    "userb": ("enterprise", B, ()),
    "dist": ("district", None, ()),
}
#: district reviewers: their district (ENT001 is in 九龙坡区, ENT002 in 江津区)
DISTRICTS = {"dist": "jiulongpo"}

# cheap hashes for tests (the parameters are stored in each hash; production uses the OWASP baseline)
accounts.set_password_hasher(argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@dataclass
class Base:
    path: Path
    keys: dict  # name -> (key, key_id)
    folder: Path


@cache
def base_store() -> Base:
    """Build the base store once per process (a few seconds)."""
    from zhizao.simulate.programme import simulate_programme, write_programme

    folder = Path(tempfile.mkdtemp(prefix="zhizao-server-test-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    tabs = simulate_programme(n_projects=3, n_enterprises=2, seed=3, months_before=2, months_after=2,
                              machines_per_project=1)
    paths = write_programme(tabs, folder / "programme")
    db = folder / "base.duckdb"
    with zhizao.connect(db) as ws:
        for name in ORDER:
            r = ws.ingest(name, paths[name])[0]
            assert r.quarantined == 0, str(r)
        ws.verify_project(PROJECT_B, indicators=["production_efficiency", "defect_rate"])
        ws.verify_project(PROJECT_A, indicators=["defect_rate"])
        con = ws.con
        accounts.ensure_tables(con)
        for name, (role, ent, projects) in USERS.items():
            accounts.add_user(con, name, PASSWORD, role, ent, None, projects, DISTRICTS.get(name))
        keys = {}
        for name, kw in {"key_a": {"enterprise_id": A}, "key_site_b": {"site": SITE_B},
                         "key_revoked": {"enterprise_id": A}}.items():
            key, rec = accounts.create_key(con, name=name, **kw)
            keys[name] = (key, rec.key_id)
        accounts.revoke_key(con, keys["key_revoked"][1])
    return Base(db, keys, folder)


def clone(dest: Path) -> Path:
    """A private copy of the base store."""
    b = base_store()
    shutil.copy(b.path, dest)
    return dest


def make_client(db: Path, **kw):
    from fastapi.testclient import TestClient

    from zhizao.server.app import create_app

    app = create_app(db, warm=False, **kw)
    return TestClient(app, raise_server_exceptions=False)


def all_routes(app) -> list:
    """Every route of the application, routers included (FastAPI keeps an included router as one entry)."""
    out = []

    def walk(routes):
        for r in routes:
            inner = getattr(r, "original_router", None)
            if inner is not None:
                walk(inner.routes)
            else:
                out.append(r)
    walk(app.routes)
    return out


def login(client, name: str) -> str:
    r = client.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return r.json()["token"]


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def counts(db_or_con) -> dict:
    """Rows of every canonical table, the quarantine, loads and uploads (to prove nothing was stored)."""
    from zhizao.schema import TABLES

    con = db_or_con
    names = list(TABLES) + ["quarantine", "loads", "server_uploads", "verifications"]
    # the programme's tables, where they exist (made on first use)
    names += [n for (n,) in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_name IN ('audit_log', 'applications', "
        "'application_assessors', 'application_scores', 'application_objections', 'evidence_files', "
        "'maturity_assessments', 'criterion_confirmations')").fetchall() if n not in names]
    out = {n: con.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}
    if "applications" in names:  # a refused step changes no state
        out["application_states"] = con.execute(
            "SELECT list(application_id || state ORDER BY application_id) FROM applications").fetchone()[0]
    return out


def csv_bytes(rows: list[dict]) -> bytes:
    return pd.DataFrame(rows).to_csv(index=False).encode()


def test_base_store_has_two_tenants():
    b = base_store()
    with zhizao.connect(b.path, read_only=True) as ws:
        eq = ws.table("equipment")
        assert set(eq["enterprise"]) == {A, B}
        assert all(i.startswith(e) for i, e in zip(eq["equipment_id"], eq["enterprise"]))
        prj = ws.table("projects").set_index("project_id")["enterprise_id"].to_dict()
        assert prj[PROJECT_A] == A and prj[PROJECT_B] == B and prj["P0003"] == A
