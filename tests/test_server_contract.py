"""The server's seams: modules import each other in one direction, every route declares its models, every answer
matches them, and role checks live in one module."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import TypeAdapter

import zhizao
from test_server_authz import CASES, M
from test_server_support import all_routes

pytest.importorskip("fastapi")

SERVER = Path(zhizao.__file__).parent / "server"
ROUTERS = ("api", "web")


def test_level_and_period_enumerations_are_the_schemas():
    from zhizao.schema import LEVELS, PERIODS
    from zhizao.server.models import Level, Period

    assert [m.value for m in Level] == list(LEVELS) and [m.value for m in Period] == list(PERIODS)


@pytest.mark.parametrize("module", ["api", "web", "app", "deps", "access", "views", "uploads", "models", "store",
                                    "auth"])
def test_each_server_module_imports_first_in_a_fresh_interpreter(module):
    r = subprocess.run([sys.executable, "-c", f"import zhizao.server.{module}"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]


def _server_imports(path: Path) -> set[str]:
    """The zhizao.server modules a file imports, at any depth (inside functions too)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith("zhizao.server."):
                out.add(node.module.split(".")[2])
            elif node.module == "zhizao.server":
                out.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[2] for a in node.names if a.name.startswith("zhizao.server."))
    return out


def test_no_server_module_imports_a_router_or_the_app():
    """Routers take their dependencies from deps.py; only app.py assembles the routers (no cycle, no hidden
    import inside a function)."""
    for path in sorted(SERVER.glob("*.py")):
        mod = path.stem
        if mod in ("app", "__init__", "__main__"):
            continue
        bad = _server_imports(path) & {"app", *ROUTERS}
        assert not bad, (mod, bad)


def test_role_checks_live_in_access():
    """No router or view decides on roles or the admin flag itself: access.py does."""
    import re

    decision = re.compile(r"(\.role\s*(==|!=|\bin\b|\bnot in\b))|(\b(if|and|or|not)\b[^#\n]*\.admin\b)")
    for name in ("api.py", "web.py", "views.py", "uploads.py", "app.py", "deps.py"):
        for i, line in enumerate((SERVER / name).read_text(encoding="utf-8").splitlines(), 1):
            assert not decision.search(line), (name, i, line)


@pytest.fixture(scope="module")
def m(tmp_path_factory):
    mm = M(tmp_path_factory.mktemp("contract"))
    yield mm
    mm.client.app.state.server.close()


def test_openapi_has_a_response_schema_for_every_route(m):
    spec = m.client.get("/openapi.json").json()
    missing = []
    n = 0
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            n += 1
            ok = [s for s, r in op["responses"].items() if s.startswith("2")]
            schemas = [c.get("schema") for s in ok for c in op["responses"][s].get("content", {}).values()]
            if not schemas or not all(schemas):
                missing.append((method.upper(), path))
            body = op.get("requestBody")
            if body is not None and not all(c.get("schema") for c in body["content"].values()):
                missing.append((method.upper(), path, "request"))
    assert n >= 40, n
    assert not missing, missing


def _route(app, method: str, path: str):
    from fastapi.routing import APIRoute
    from starlette.routing import Match

    scope = {"type": "http", "method": method, "path": path, "root_path": "", "query_string": b"", "headers": []}
    for r in all_routes(app):
        if isinstance(r, APIRoute) and r.matches(scope)[0] == Match.FULL:
            return r
    raise AssertionError(f"no route for {method} {path}")


def test_every_json_answer_matches_its_declared_model(m):
    """Every API route of the authorisation matrix, as the administrator: the JSON answer validates against the
    route's declared response model (the routes that answer cached JSON text are not validated at run time)."""
    checked = 0
    for cid, method, path, build, allowed in CASES:
        if not path.startswith("/api/") or "root" not in allowed:
            continue
        fresh = {k: m.make(k) for k in re.findall(r"\{((?:app_[AB]_|scope_|assessor_|obj_)\w*)\}", path)}
        path = path.format(upload_a=m.uploads["usera"], upload_b=m.uploads["userb"], victim_key=m.victim_key,
                           victim_session=m.victim_session, **m.fixed, **fresh)
        r = m.client.request(method, path, headers=m.headers["root"], **(build(m, "root") if build else {}))
        assert r.status_code < 300, (cid, r.status_code, r.text[:300])
        route = _route(m.client.app, method, path.split("?")[0])
        if not r.headers["content-type"].startswith("application/json"):
            assert route.response_model is None or route.responses, cid
            continue
        assert route.response_model is not None, cid
        TypeAdapter(route.response_model).validate_python(r.json())
        checked += 1
    assert checked >= 35, checked


# -- one presentation layer for the summaries the report and the dashboard both show
def test_pareto_and_data_quality_summaries_have_hand_computed_values():
    import pandas as pd

    from zhizao.report.summaries import dq_summary, loss_items, pareto

    bars = pareto([("a", 3600.0), ("b", 1800.0), ("c", 600.0)])
    assert [(b.share, b.cumulative) for b in bars] == [(0.6, 0.6), (0.3, 0.9), (0.1, 1.0)]
    row = pd.Series({"planned_downtime": 100.0, "setup": 0.0, "unplanned_downtime": 300.0, "minor_stops": None,
                     "no_order": 50.0, "reduced_speed": 200.0, "rejects_rework": float("nan"),
                     "startup_yield": 1.0})
    assert loss_items(row, str) == [("Unplanned downtime", 300.0), ("Reduced speed", 200.0),
                                    ("Planned downtime", 100.0), ("No order", 50.0), ("Start-up losses (reduced yield)", 1.0)]
    dq = pd.DataFrame({"check": ["unaccounted_time", "performance_above_100", "unaccounted_time"],
                       "value": [120.0, 1.25, 30.0], "description": ["d1", "d2", "d1"]})
    s = dq_summary(dq)
    assert [(c.check, c.rows, c.total, c.largest, c.unit) for c in s] == [
        ("unaccounted_time", 2, 150.0, 120.0, "s"), ("performance_above_100", 1, None, 1.25, "ratio")]


def test_report_and_dashboard_use_the_shared_summaries():
    """The report and the dashboard compute no Pareto or data-quality summary of their own."""
    import re

    root = Path(zhizao.__file__).parent
    for path in (root / "report" / "html.py", root / "server" / "views.py"):
        src = path.read_text(encoding="utf-8")
        assert "dq_summary(" in src and "pareto(" in src and "loss_items(" in src, path
        assert not re.search(r'groupby\("check"', src), path
        assert "cum += " not in src and "PARETO_LOSSES if" not in src, path
