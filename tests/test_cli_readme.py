"""Issue 14's error contract, command by command of the README: every command the README shows is run against a
store with data, a missing store, a store held by another process and bad arguments. Each ends with exit 0, or
exit 2 and one line ``zhizao: ...`` on standard error; never a traceback, never exit 1 (an internal error)."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Per command of the README (its first word, or two for command groups): arguments of a real run on a plant
#: store ({tmp}: a scratch folder). None: not run against a store here (long-running or a store of its own).
RUNS = {
    "demo": None,  # builds its own stores (about 30 s): tests/test_demo.py runs it end to end
    "serve": None,  # runs until stopped; the server tests start it
    "ingest": ["ingest", "states", "{tmp}/s.csv"],
    "kpi": ["kpi", "--period", "all"],
    "kpis": ["kpis"],
    "capability": ["capability"],
    "quarantine": ["quarantine"],
    "report": ["report", "-o", "{tmp}/r.html"],
    "simulate": ["simulate", "--machines", "1", "--days", "1", "--seed", "1", "-o", "{tmp}/sim"],
    "export": ["export", "--parquet", "{tmp}/pq"],
    "compact": ["compact"],  # rewrites the store's record tables: the same records (tests/test_compact.py)
    "materialise": ["materialise"],  # the stored hours (tests/test_stored_elements.py)
    "verify": ["verify", "energy", "--scope", "L01", "--baseline", "2025-01-01..2025-01-02", "--reporting",
               "2025-01-02..2025-01-03"],
    "project": ["project", "list"],
    "programme": ["programme"],
    "recognition": ["recognition", "--enterprise", "E1", "--designation", "digital_workshop"],
    "bulletin": ["bulletin", "-o", "{tmp}/bulletin"],
    "user": ["user", "list"],
    "register": ["register", "template", "-o", "{tmp}/template.xlsx"],
    "audit": ["audit", "--table", "projects"],
    "rules": ["rules", "list"],
    "maturity": ["maturity", "show", "E1"],
}
#: Commands that need no store.
STORELESS = {"simulate", "rules"}


def readme_commands() -> list[str]:
    """The commands the README's code blocks run (``zhizao <command> ...``)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    out = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            for m in re.finditer(r"(?:^|\|\s*)zhizao ([a-z][a-z-]*)", line.strip()):
                if m.group(1) not in out:
                    out.append(m.group(1))
    return out


def test_every_readme_command_is_covered():
    cmds = readme_commands()
    assert len(cmds) >= 12, cmds
    assert set(cmds) <= set(RUNS), set(cmds) - set(RUNS)


def _main(argv, capsys, stdin: str = ""):
    from zhizao.cli.main import main

    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with pytest.raises(SystemExit) as e:
            main(argv)
    finally:
        sys.stdin = old
    out = capsys.readouterr()
    code = e.value.code if isinstance(e.value.code, int) else (0 if e.value.code is None else 1)
    return code, out.out, out.err


def _check(args, code, out, err, allowed=(0, 2)):
    assert "Traceback" not in out + err, (args, err[-2000:])
    assert code in allowed, (args, code, err[-2000:])
    if code != 0:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("zhizao: "), (args, err)


def _args(cmd, tmp_path):
    (tmp_path / "s.csv").write_text("equipment_id,start,state\nM1,2025-01-01T00:00:00Z,production\n")
    return [a.format(tmp=tmp_path) for a in RUNS[cmd]]


@pytest.mark.parametrize("cmd", [c for c, a in RUNS.items() if a is not None])
def test_on_a_store_with_data(cmd, small_plant_store, tmp_path, capsys):
    args = _args(cmd, tmp_path)
    code, out, err = _main(args + ([] if cmd in STORELESS else ["--db", str(small_plant_store)]), capsys)
    _check(args, code, out, err)


@pytest.mark.parametrize("cmd", [c for c, a in RUNS.items() if a is not None and c not in STORELESS])
def test_on_a_missing_store(cmd, tmp_path, capsys):
    args = _args(cmd, tmp_path)
    missing = tmp_path / "no such folder" / "x.duckdb"
    code, out, err = _main(args + ["--db", str(missing)], capsys)
    _check(args, code, out, err, allowed=(2,) if cmd != "ingest" else (0, 2))


def test_on_a_busy_store(small_plant_store, tmp_path, capsys):
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(small_plant_store)!r}); "
                               "print('held', flush=True); time.sleep(300)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for cmd, a in RUNS.items():
            if a is None or cmd in STORELESS:
                continue
            args = _args(cmd, tmp_path)
            code, out, err = _main(args + ["--db", str(small_plant_store)], capsys)
            _check(args, code, out, err, allowed=(2,))
            assert str(holder.pid) in err or "held by another process" in err, (args, err)
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("cmd", list(RUNS))
def test_bad_arguments(cmd, capsys):
    for args in ([cmd, "--no-such-option"], [cmd, "--db"]):
        code, out, err = _main(args, capsys)
        _check(args, code, out, err, allowed=(2,))
