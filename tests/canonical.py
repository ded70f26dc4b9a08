"""Helpers shared by the tests: build a store from small canonical tables written as CSV.

(A module of its own, not conftest.py: tests/browser has a conftest.py too, and ``from conftest import``
would find whichever was imported first.)"""

from __future__ import annotations

import pkgutil
import textwrap
import time
from pathlib import Path

import pandas as pd

import zhizao


def package_modules() -> list[str]:
    """The names of all of zhizao's modules, sorted, without the ``python -m`` entry points (they run on import)."""
    return sorted(m.name for m in pkgutil.walk_packages(zhizao.__path__, "zhizao.") if not m.name.endswith("__main__"))


ORDER = ["equipment", "products", "calendar", "states", "production", "energy", "labour", "quality"]


def write_tables(tmp: Path, tables: dict[str, list[dict] | pd.DataFrame]) -> dict[str, Path]:
    """Write each table to ``tmp/<name>.csv`` and return the paths."""
    paths = {}
    for name, rows in tables.items():
        df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
        p = tmp / f"{name}.csv"
        df.to_csv(p, index=False)
        paths[name] = p
    return paths


def build(tmp: Path, tables: dict, db: str = "test.duckdb", **kw) -> zhizao.Workspace:
    """A workspace with ``tables`` loaded in dependency order; fails on any quarantined record."""
    paths = write_tables(tmp, tables)
    ws = zhizao.connect(tmp / db, **kw)
    for name in ORDER:
        if name in paths:
            for r in ws.ingest(name, paths[name]):
                assert r.quarantined == 0, (str(r), ws.quarantine().to_dict("records"))
    return ws


def load(ws, tmp_path, table, text, name="f.csv", **kw):
    """Ingest ``text`` (an indented CSV literal) as file ``name`` into ``table``; the load's report."""
    p = tmp_path / name
    p.write_text(textwrap.dedent(text).lstrip())
    return ws.ingest(table, p, **kw)[0]


def wait_for(pred, timeout, what):
    """Poll ``pred`` every 50 ms until it returns something true (returned), or fail after ``timeout`` s."""
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
