"""Command line of the server: ``zhizao serve``, ``user``, ``key`` and ``session`` (through ``register``)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import typer
from typer.testing import CliRunner

from test_server_support import SITE_B, A, clone

pytest.importorskip("fastapi")


def _app():
    from zhizao.cli.server import register

    app = typer.Typer()
    register(app)

    @app.callback()
    def _root():  # keep sub-commands as sub-commands
        pass
    return app


def test_user_key_session_commands(tmp_path):
    db = str(clone(tmp_path / "s.duckdb"))
    app, run = _app(), CliRunner().invoke
    r = run(app, ["user", "add", "plant-eng", "--role", "enterprise", "--enterprise", A, "--password-stdin",
                  "--db", db], input="a long password\n")
    assert r.exit_code == 0, r.output
    r = run(app, ["user", "add", "plant-eng", "--role", "enterprise", "--enterprise", A, "--password-stdin",
                  "--db", db], input="a long password\n")
    assert r.exit_code == 2 and "exists already" in r.output
    r = run(app, ["user", "add", "x", "--role", "emperor", "--password-stdin", "--db", db], input="a long password\n")
    assert r.exit_code == 2 and "unknown role" in r.output
    r = run(app, ["user", "add", "y", "--role", "admin", "--password-stdin", "--db", db], input="short\n")
    assert r.exit_code == 2 and "password" in r.output
    r = run(app, ["user", "add", "ass2", "--role", "assessor", "--project", "P0001", "--password-stdin", "--db", db],
            input="a long password\n")
    assert r.exit_code == 0, r.output
    r = run(app, ["user", "assign", "ass2", "P0002", "--db", db])
    assert r.exit_code == 0 and "P0001, P0002" in r.output
    r = run(app, ["user", "list", "--format", "json", "--db", db])
    users = {u["username"]: u for u in json.loads(r.output)}
    assert users["plant-eng"]["enterprise_id"] == A and users["ass2"]["projects"] == ["P0001", "P0002"]
    r = run(app, ["user", "passwd", "plant-eng", "--password-stdin", "--db", db], input="another long one\n")
    assert r.exit_code == 0
    assert run(app, ["user", "disable", "plant-eng", "--db", db]).exit_code == 0
    assert run(app, ["user", "enable", "plant-eng", "--db", db]).exit_code == 0
    assert run(app, ["user", "disable", "ghost", "--db", db]).exit_code == 2
    r = run(app, ["key", "create", "--site", SITE_B, "--name", "PLC", "--db", db])
    assert r.exit_code == 0, r.output
    key = r.stdout.strip().splitlines()[0]
    assert key.startswith("zk_")
    assert run(app, ["key", "create", "--db", db]).exit_code == 2
    r = run(app, ["key", "list", "--format", "json", "--db", db])
    keys = json.loads(r.output)
    kid = next(k["key_id"] for k in keys if k["name"] == "PLC")
    assert key not in r.output  # only hashes are stored
    assert run(app, ["key", "revoke", kid, "--db", db]).exit_code == 0
    assert run(app, ["key", "revoke", kid, "--db", db]).exit_code == 2
    assert run(app, ["session", "list", "--db", db]).exit_code == 0
    assert run(app, ["session", "revoke", "--user", "usera", "--db", db]).exit_code == 0
    assert run(app, ["session", "revoke", "s_nope", "--db", db]).exit_code == 2
    assert run(app, ["user", "list", "--db", str(tmp_path / "missing.duckdb")]).exit_code == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_runs_the_server_and_holds_the_store(tmp_path):
    db = str(clone(tmp_path / "s.duckdb"))
    port = _free_port()
    code = ("import typer; from zhizao.cli.server import register; app = typer.Typer(); register(app); "
            "app.callback()(lambda: None); app()")
    proc = subprocess.Popen([sys.executable, "-c", code, "serve", "--db", db, "--port", str(port), "--no-warm",
                             "--log-level", "warning"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2) as r:
                    assert json.loads(r.read())["status"] == "ok"
                    break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.time() < deadline, "server did not start"
                time.sleep(0.3)
        # while the server holds the store, the account commands say so
        r = CliRunner().invoke(_app(), ["user", "list", "--db", db])
        assert r.exit_code == 2 and "held by another process" in r.output
        # a second server says which process holds it (not how to manage accounts)
        r = CliRunner().invoke(_app(), ["serve", "--db", db, "--port", str(_free_port())])
        assert r.exit_code == 2 and f"PID {proc.pid}" in r.output and "accounts" not in r.output, r.output
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize("mb", ["0", "0.5", "nan", "inf", "1e300"])
def test_a_result_cache_below_one_mib_is_refused_by_both_commands(tmp_path, mb):
    """A cache smaller than 1 MiB keeps nothing (every value weighs more), an infinite one is no bound (and failed
    with a traceback, found by a reviewer): ``zhizao serve`` and ``python -m zhizao.server`` refuse them with one
    line naming the option, before opening the store."""
    db = str(tmp_path / "s.duckdb")
    r = CliRunner().invoke(_app(), ["serve", "--db", db, "--cache-mb", mb])
    assert r.exit_code != 0 and "--cache-mb" in r.output
    p = subprocess.run([sys.executable, "-m", "zhizao.server", "--db", db, "--cache-mb", mb], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 2 and "--cache-mb must be at least 1 and at most" in p.stderr
    assert not (tmp_path / "s.duckdb").exists()


@pytest.mark.parametrize("option,value", [("--slots", "-1"), ("--slots", "2000"), ("--slot-patience", "0"),
                                          ("--slot-patience", "nan"), ("--slot-patience", "inf")])
def test_a_bad_admission_setting_is_refused_by_both_commands(tmp_path, option, value):
    """``--slots`` (requests computed at once) and ``--slot-patience``: refused with one line naming the option,
    before the store is opened, by ``zhizao serve`` and ``python -m zhizao.server`` alike."""
    db = str(tmp_path / "s.duckdb")
    r = CliRunner().invoke(_app(), ["serve", "--db", db, option, value])
    assert r.exit_code == 2 and option in r.output, r.output
    p = subprocess.run([sys.executable, "-m", "zhizao.server", "--db", db, option, value], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 2 and f"{option} must be at least" in p.stderr, p.stderr
    assert not (tmp_path / "s.duckdb").exists()
