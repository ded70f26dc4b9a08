"""``zhizao demo`` end to end, as ``make demo`` runs it, and the README's table of its verified real cases.

The README states what the demo gives on the bundled real data; that table went stale once (30 November to 6
December 2026) because no test ran the demo. Here the demo runs whole, and every row of the README's table is
read back from ``verification.csv``: the improvement and its 90 % interval to the README's one decimal, and the
verdict.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from zhizao.cli.main import app

README = Path(__file__).resolve().parents[1] / "README.md"
ROW = re.compile(r"^\| (?P<case>[^|]+) \| (?P<ind>[^|]+) \| (?P<imp>-?[0-9.]+) % \((?P<lo>-?[0-9.]+) \.\. "
                 r"(?P<hi>-?[0-9.]+)\)[^|]* \| (?P<verdict>\w+) \|$")


def readme_cases() -> list[dict]:
    """The rows of the README's table "`make demo` verifies five real cases", in order."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("`make demo` verifies"))
    rows = []
    for line in lines[start + 1:]:
        if rows and not line.startswith("|"):
            break
        m = ROW.match(line)
        if m:
            rows.append(m.groupdict())
    return rows


def pct(x: float) -> str:
    return f"{100 * x:.1f}"


def test_the_demo_runs_end_to_end_and_gives_the_readmes_results(tmp_path):
    out, db = tmp_path / "demo", tmp_path / "demo" / "zhizao.duckdb"
    res = CliRunner().invoke(app, ["demo", "--out", str(out), "--db", str(db)])
    assert res.exit_code == 0, res.output
    for name in ("report.html", "report.en.html", "kpi_site_day.csv", "kpi_equipment_day.csv", "losses_site.csv",
                 "stop_reasons.csv", "data_quality.csv", "quarantine.csv", "verification.csv", "programme.duckdb",
                 "bulletin/bulletin.zh.html", "bulletin/bulletin.en.html", "bulletin/bulletin.zh.md",
                 "simulated-plant/truth_elements.csv", "simulated-programme/truth_projects.csv"):
        assert (out / name).is_file(), name
    rows = readme_cases()
    got = pd.read_csv(out / "verification.csv")
    assert len(rows) == len(got) == 5
    for row, (_, r) in zip(rows, got.iterrows(), strict=True):
        assert (pct(r["improvement"]), pct(r["ci_low"]), pct(r["ci_high"])) == (row["imp"], row["lo"], row["hi"]), \
            (row["case"], r["case"])
        assert r["verdict"] == row["verdict"], row["case"]
