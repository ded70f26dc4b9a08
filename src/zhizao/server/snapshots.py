"""The server's computed elements kept across a restart.

The costly stage result of every page is the elements of every entity (:func:`zhizao.kpi.elements.
compute_elements`): seconds on a city's data. The server keeps it in memory (:mod:`zhizao.server.store`), so
after a restart the first pages waited for it again. A snapshot is that result written beside the store, under
the fingerprint of what it was computed from (:func:`zhizao.store.fingerprint.data_fingerprint`: the rows of
the shop-floor tables, the settings, the engine's code). A server that needs the elements and holds no earlier
value of them reads the snapshot whose fingerprint is that of its own read of the store, or computes them
and writes one. A snapshot of any other fingerprint is never read, so it cannot show stale figures; the
writes since a snapshot only cost the computation they would have cost anyway.

Layout: ``<store>.snapshots/<key digest>-<fingerprint>/`` holding ``elements.parquet``, ``reasons.parquet``,
``entities.parquet`` (when the result has them) and ``meta.json`` (the key, the period, the data extent),
written to a temporary folder first and renamed into place, so a reader sees a whole snapshot or none. Only
the latest snapshot of each key is kept, and only for the default query range (what the pages show; a
query's own range is not kept). A snapshot that cannot be read is removed and the elements are computed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from zhizao.kpi.elements import ElementsResult

log = logging.getLogger("zhizao.server")

#: Snapshots kept at most (the least recently written or read go first): each default-range elements key of the
#: pages is one.
MAX_SNAPSHOTS = 16
#: A temporary folder older than this [s] is what a stopped writer left: removed when the snapshots are opened.
STALE_TMP_S = 600


def persistent_key(key: tuple) -> bool:
    """Whether an elements cache key (:meth:`zhizao.Workspace._elements_key`) is kept across restarts: the
    whole store's elements over the default range (``start`` and ``end`` not given) of any period."""
    return (len(key) in (4, 5) and key[0] == "elements" and key[1] != "context" and key[2] == "None"
            and key[3] == "None")


def _read(path: Path, dtypes: dict[str, str]) -> pd.DataFrame:
    """A frame written by :meth:`Snapshots._save`, with the dtypes it had: Parquet gives text columns back as
    pandas' ``str``; those that were ``object`` (the engine's, from DuckDB, missing values None) are again."""
    df = pd.read_parquet(path)
    for c in df.columns:
        if dtypes.get(str(c)) == "object" and df[c].dtype != object:
            col = df[c].astype(object)
            col[df[c].isna().to_numpy()] = None
            df[c] = col
    if dtypes.get("columns") == "object":
        df.columns = pd.Index(list(df.columns), dtype=object)
    return df


class Snapshots:
    """Elements snapshots of one store (see the module docstring); ``folder`` None: kept nowhere."""

    def __init__(self, folder: Path | None):
        self.folder = folder
        self._lock = threading.Lock()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zhizao-snapshot")
        self.loaded = 0
        self.saved = 0
        if folder is not None and folder.is_dir():  # what a process that stopped while writing left behind
            for tmp in folder.glob(".tmp-*"):
                try:
                    if time.time() - tmp.stat().st_mtime > STALE_TMP_S:
                        shutil.rmtree(tmp, ignore_errors=True)
                except OSError:
                    pass

    @classmethod
    def beside(cls, db: str | os.PathLike | None) -> Snapshots:
        """The snapshots of the store file ``db`` (none for an in-memory store)."""
        if db is None or str(db) in ("", ":memory:"):
            return cls(None)
        p = Path(db)
        return cls(p.with_name(p.name + ".snapshots"))

    @staticmethod
    def _digest(key: tuple) -> str:
        return hashlib.sha256(json.dumps([str(k) for k in key]).encode()).hexdigest()[:16]

    def _path(self, key: tuple, fingerprint: str) -> Path:
        assert self.folder is not None
        return self.folder / f"{self._digest(key)}-{fingerprint}"

    def load(self, key: tuple, fingerprint: str) -> ElementsResult | None:
        """The snapshot of ``key`` computed on data of ``fingerprint``, or None."""
        if self.folder is None:
            return None
        path = self._path(key, fingerprint)
        if not (path / "meta.json").exists():
            return None
        try:
            meta = json.loads((path / "meta.json").read_text())
            if meta.get("key") != [str(k) for k in key]:
                return None
            frames = {name: _read(path / f"{name}.parquet", meta["dtypes"][name]) for name in meta["dtypes"]}
            res = ElementsResult(frames["elements"], frames["reasons"], meta["period"])
            res.entities = frames.get("entities")
            if meta.get("extent") is not None:
                res.extent = {s: (int(a), int(b)) for s, a, b in meta["extent"]}
        except Exception as e:  # a damaged snapshot is dropped; the caller computes
            log.warning("snapshot %s could not be read (%s): removed", path.name, e)
            shutil.rmtree(path, ignore_errors=True)
            return None
        try:
            os.utime(path)  # read: kept before the snapshots nobody reads (MAX_SNAPSHOTS)
        except OSError:
            pass
        self.loaded += 1
        return res

    def save_later(self, key: tuple, fingerprint: str, res: ElementsResult) -> None:
        """Write the snapshot of ``key`` in the background (its loss reasons are computed there if they were not
        yet). A result with failures (equipment left out) is not kept."""
        if self.folder is None or res.failures:
            return
        try:
            self._writer.submit(self._save, key, fingerprint, res)
        except RuntimeError:  # closed
            pass

    def _save(self, key: tuple, fingerprint: str, res: ElementsResult) -> None:
        assert self.folder is not None
        final = self._path(key, fingerprint)
        if final.exists():
            return
        tmp = self.folder / f".tmp-{uuid.uuid4().hex}"
        try:
            tmp.mkdir(parents=True)
            frames = {"elements": res.elements, "reasons": res.reasons}
            if res.entities is not None:
                frames["entities"] = res.entities
            for name, df in frames.items():
                df.to_parquet(tmp / f"{name}.parquet", index=False)
            extent = None if res.extent is None else [[s, int(a), int(b)] for s, (a, b) in res.extent.items()]
            (tmp / "meta.json").write_text(json.dumps({
                "key": [str(k) for k in key], "period": res.period, "extent": extent,
                "dtypes": {name: {"columns": str(df.columns.dtype), **{str(c): str(t) for c, t in df.dtypes.items()}}
                           for name, df in frames.items()}}))
            with self._lock:
                os.replace(tmp, final)
                for old in self.folder.glob(f"{self._digest(key)}-*"):  # the earlier data's snapshot
                    if old != final:
                        shutil.rmtree(old, ignore_errors=True)
                kept = sorted((p for p in self.folder.iterdir() if not p.name.startswith(".")),
                              key=lambda p: p.stat().st_mtime)
                for old in kept[:-MAX_SNAPSHOTS]:
                    shutil.rmtree(old, ignore_errors=True)
            self.saved += 1
        except Exception as e:  # a snapshot is a saving of time, never a reason to fail
            log.warning("snapshot of %s not written: %s", key, e)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def wait(self) -> None:
        """Wait for the snapshots being written (tests, shutdown)."""
        self._writer.submit(lambda: None).result()

    def close(self) -> None:
        self._writer.shutdown(wait=True)
