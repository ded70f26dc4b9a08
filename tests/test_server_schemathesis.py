"""Property-based tests of the REST API from its OpenAPI description (schemathesis): whatever the generated
parameters, bodies and files, no answer is a server error.

Runs in-process (ASGI) with an administrator's session, then with an enterprise API key, a few examples per
operation to stay within the suite's time budget.
"""

from __future__ import annotations

import pytest

pytest.importorskip("schemathesis")

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from test_server_support import PASSWORD, base_store, clone, make_client

EXAMPLES = 12
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    client = make_client(clone(tmp_path_factory.mktemp("fuzz") / "store.duckdb"))
    r = client.post("/api/v1/auth/login", json={"username": "root", "password": PASSWORD})
    admin = {"Authorization": f"Bearer {r.json()['token']}"}
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app).exclude(
        path_regex=r"^/api/v1/(auth/logout|sessions/\{session_id\})$")  # would end the fuzzer's own session
    yield schema, admin
    client.app.state.server.close()


def _fuzz(schema, headers, examples: int) -> list[str]:
    """Run every operation of ``schema`` with ``examples`` generated cases; the failures, one line each.

    (The pytest integration's lazy loader does not run on pytest 9, so the operations are driven here.)
    """
    failures = []
    n_ops = 0
    for result in schema.get_all_operations():
        op = result.ok()
        n_ops += 1

        @given(case=op.as_strategy())
        @settings(SETTINGS, max_examples=examples)
        def run(case):
            case.call_and_validate(headers=headers, checks=[not_a_server_error])
        try:
            run()
        except Exception as e:
            failures.append(f"{op.method.upper()} {op.path}: {type(e).__name__}: {str(e)[:400]}")
    assert n_ops > 10
    return failures


def test_no_server_error_as_admin(api):
    schema, admin = api
    failures = _fuzz(schema, admin, EXAMPLES)
    assert not failures, "\n".join(failures)


def test_no_server_error_as_enterprise_key(api):
    schema, _admin = api
    failures = _fuzz(schema.include(method="GET"), {"X-API-Key": base_store().keys["key_a"][0]}, EXAMPLES // 3)
    assert not failures, "\n".join(failures)
