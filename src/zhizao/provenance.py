"""Where records came from: simulated data is data, not a flag.

A folder written by a simulator (:func:`zhizao.simulate.write_plant`, :func:`zhizao.simulate.write_programme`)
holds a sidecar file ``zhizao-provenance.json`` (``{"provenance": "simulated", "generator": ...}``). Loading a
file from such a folder (or with ``provenance="simulated"``) records the provenance in the store's load log
(column ``loads.provenance``); every record keeps its file in ``_source``, so any page, export or bulletin can
ask whether the records it shows include simulated ones, and mark itself 模拟数据 / SIMULATED where a reader
sees it.
"""

from __future__ import annotations

import json
from pathlib import Path

SIDECAR = "zhizao-provenance.json"
SIMULATED = "simulated"


def write_sidecar(folder, provenance: str = SIMULATED, **info) -> Path:
    """Write the provenance sidecar of a folder of canonical files (``info``: generator, seed, ...)."""
    p = Path(folder) / SIDECAR
    p.write_text(json.dumps({"provenance": provenance, **info}, ensure_ascii=False, default=str, indent=1) + "\n",
                 encoding="utf-8")
    return p


def sidecar_provenance(path) -> str | None:
    """The provenance declared by the sidecar beside file ``path`` (None without a readable sidecar)."""
    p = Path(path).parent / SIDECAR
    try:
        value = json.loads(p.read_text(encoding="utf-8")).get("provenance")
    except (OSError, ValueError, AttributeError):
        return None
    return str(value) if value else None


def _has_column(con, table: str, column: str) -> bool:
    return con.execute("SELECT count(*) FROM information_schema.columns WHERE table_name = ? AND column_name = ?",
                       [table, column]).fetchall()[0][0] > 0


def simulated_sources(con, table: str) -> set[str]:
    """File names (``_source``) of the loads of ``table`` that came from a simulator."""
    if not _has_column(con, "loads", "provenance"):
        return set()
    rows = con.execute('SELECT DISTINCT source FROM loads WHERE "table" = ? AND provenance = ?',
                       [table, SIMULATED]).fetchall()
    return {r[0] for r in rows}


def simulated_ids(con, table: str, column: str, ids=None) -> set[str]:
    """Values of ``column`` of the records of ``table`` loaded from simulated files (optionally among ``ids``)."""
    sources = simulated_sources(con, table)
    if not sources:
        return set()
    rows = con.execute(f'SELECT DISTINCT "{column}" FROM "{table}" WHERE _source IN (SELECT unnest(?))',
                       [sorted(sources)]).fetchall()
    out = {r[0] for r in rows if r[0] is not None}
    return out if ids is None else out & {str(i) for i in ids}


def any_simulated(con) -> bool:
    """Whether any load of the store came from a simulator."""
    if not _has_column(con, "loads", "provenance"):
        return False
    return con.execute("SELECT count(*) FROM loads WHERE provenance = ?", [SIMULATED]).fetchall()[0][0] > 0


__all__ = [
    "SIDECAR",
    "SIMULATED",
    "any_simulated",
    "sidecar_provenance",
    "simulated_ids",
    "simulated_sources",
    "write_sidecar",
]
