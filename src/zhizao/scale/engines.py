"""Engines behind a :class:`zhizao.Workspace`: where the elements and their roll-up are computed.

Every stage that needs elements (KPI tables, reports, the programme verification) asks the workspace
(``ws.elements_raw(period, start, end)``, ``ws.elements(level, period, start, end)``); the workspace asks its
engine. The embedded engine computes in this process from the store; :class:`SparkStoreEngine` writes the
store as a Parquet dataset (once per state of the store) and computes on Apache Spark with the same kernel,
giving the same elements, row for row::

    import zhizao
    from zhizao.scale import SparkStoreEngine

    ws = zhizao.connect("city.duckdb", engine=SparkStoreEngine(master="local[2]"))
    ws.kpi(level="site", period="month")      # elements and roll-up on Spark, KPIs from the summed elements
    ws.verify_project("P0001")                 # its elements step on Spark too

:func:`elements` is the engine-agnostic entry point for code that holds a workspace.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Iterator

import pandas as pd

from zhizao.errors import InputError
from zhizao.kpi import stored
from zhizao.kpi.elements import ElementsResult, PartitionedElements, compute_elements
from zhizao.kpi.partitions import EngineContext
from zhizao.kpi.rollup import rollup, rollup_stream
from zhizao.messages import define

NO_REASONS = define("spark.no_reasons", "loss reasons are computed by the embedded engine only; connect "
                                        "without the Spark engine for stop reasons")


class EmbeddedEngine:
    """The engine in this process (:func:`zhizao.kpi.elements.compute_elements` on the store)."""

    name = "embedded"

    def elements(self, ws, period: str = "day", start=None, end=None, zone_level: str | None = None
                 ) -> ElementsResult:
        ctx = engine_context(ws, zone_level)
        # the store's stored hours where they answer (current; zhizao.kpi.stored), else the kernel
        found = stored.stored_elements(ws.con, period, start, end, ws.settings, zone_level, context=ctx)
        return found if found is not None else compute_elements(ws.con, period, start, end, ws.settings,
                                                                 zone_level, context=ctx)

    def rollup(self, ws, level: str = "equipment", period: str = "day", start=None, end=None) -> pd.DataFrame:
        zone_level = ws._zone_level(level, period)
        # a store the engine works through in several partitions: each partition's elements go into the roll-up
        # and are dropped with what the partition kept for its loss reasons (bounded memory, the same sums to
        # the last bit); the elements of a store done in one pass are kept (cached) for the other tables
        # (how many partitions: cached with the elements, so that a reader sharing them does not plan again);
        # elements the workspace holds already (computed for another table) are rolled up, not computed again:
        # the same partitions concatenated, so the same sums as rollup_stream to the last bit
        held = ws.held_elements(period, start, end, zone_level)
        if held is not None:
            return rollup(held.elements, level, period)
        key = ("elements", period, str(start), str(end), zone_level, "partitions")
        if ws.cached(key, lambda: _n_partitions(ws, period, start, end, zone_level)) > 1:
            parts = PartitionedElements(ws.con, period, start, end, ws.settings, zone_level,
                                        engine_context(ws, zone_level))
            return rollup_stream((r.elements for r in parts), level, period)
        raw = ws.elements_raw(period, start, end, zone_level)
        return rollup(raw.elements, level, period)

    def iter_rollup(self, ws, level: str = "equipment", period: str = "day", start=None, end=None
                    ) -> Iterator[pd.DataFrame]:
        """:meth:`rollup` in consecutive pieces whose concatenation is its table, row for row. Equipment rows of
        a store the engine works through in several partitions come one partition at a time (rows of whole
        equipment, in id order), so that nothing holds the whole table: an equipment-day table grows with the
        store, 2.3 M rows at 100 M state records. Any other level, or a store done in one pass, is one piece."""
        if level == "equipment" and ws.held_elements(period, start, end) is None:
            key = ("elements", period, str(start), str(end), None, "partitions")
            if ws.cached(key, lambda: _n_partitions(ws, period, start, end, None)) > 1:
                last, rows = None, None
                for part in PartitionedElements(ws.con, period, start, end, ws.settings, None, engine_context(ws)):
                    rows = rollup(part.elements, level, period)
                    if len(rows):
                        # partitions are consecutive runs of equipment in key order (kpi.partitions.plan), so the
                        # pieces follow each other as rollup orders the whole table; checked, never assumed
                        if last is not None and not rows["equipment_id"].iloc[0] > last:
                            raise AssertionError("partitions out of equipment order")
                        last = rows["equipment_id"].iloc[-1]
                        yield rows
                if last is None and rows is not None:  # no rows at all: the table's header still
                    yield rows
                return
        yield self.rollup(ws, level, period, start, end)


def engine_context(ws, zone_level: str | None = None) -> EngineContext:
    """The store-wide facts of the engine (:meth:`EngineContext.read`) for ``ws``, kept in its cache with the
    elements: they hold for every period and range, so the elements of several periods read them once. A cache
    that knows an earlier context and the equipment whose state and production records alone changed since
    (``prior``, see :meth:`zhizao.Workspace.is_elements_key`) has it updated instead
    (:meth:`EngineContext.updated`: those equipment's statistics read again)."""
    key = ("elements", "context", zone_level)

    def compute() -> EngineContext:
        prior = getattr(ws.cache, "prior", None)
        held = prior(key) if prior is not None else None
        if held is not None:
            ctx = held[0].updated(ws.con, held[1])
            if ctx is not None:
                return ctx
        return EngineContext.read(ws.con, ws.settings, zone_level)
    found: EngineContext = ws.cached(key, compute)
    return found


def _n_partitions(ws, period, start, end, zone_level) -> int:
    """How many partitions the engine would use; 1 (the one-pass path) when the store cannot be planned or the
    stored hours answer.

    Planning reads the store's data extent; a store whose records are out of any plausible range (or empty)
    is left to the one-pass path, which cleans implausible records and isolates an entity it fails on."""
    import pandas as pd

    from zhizao.errors import InputError

    try:
        ctx = engine_context(ws, zone_level)
        if stored.answers(ws.con, period, start, end, ws.settings, zone_level, ctx):
            return 1  # read from the stored hours in one piece (within the memory budget)
        return len(PartitionedElements(ws.con, period, start, end, ws.settings, zone_level, ctx))
    except (InputError, OverflowError, pd.errors.OutOfBoundsDatetime):
        return 1


class SparkStoreEngine:
    """The Spark engine over a workspace's store, or over a dataset given once.

    Parameters
    ----------
    master, remote, conf, session
        See :class:`zhizao.scale.spark.SparkEngine`.
    dataset : str, optional
        A dataset of :func:`zhizao.scale.dataset.export_dataset` (a local directory, or a URI the Spark
        cluster reads, e.g. ``hdfs://...`` or ``s3a://...``) to compute from, instead of the workspace's store.
        Without it, the store is written to a temporary directory on this machine (for local mode or a
        cluster that shares this file system), again after every ingest.
    """

    name = "spark"

    def __init__(self, master: str | None = None, remote: str | None = None, conf: dict | None = None,
                 session=None, dataset: str | None = None):
        from zhizao.scale.spark import SparkEngine

        self.spark = SparkEngine(master, remote, conf, session)
        self.dataset = dataset

    def _dataset(self, ws) -> str:
        if self.dataset is not None:
            return self.dataset
        def export():
            from zhizao.scale.dataset import export_dataset

            d = tempfile.mkdtemp(prefix="zhizao-dataset-")
            weakref.finalize(ws, shutil.rmtree, d, True)
            export_dataset(ws.con, d)
            return d

        return ws.cached(("spark_dataset",), export)  # again after every ingest (ws.invalidate)

    def elements(self, ws, period: str = "day", start=None, end=None, zone_level: str | None = None
                 ) -> ElementsResult:
        el = self.spark.elements(self._dataset(ws), period, start, end, ws.settings, zone_level)

        def reasons():
            raise InputError(NO_REASONS)

        return ElementsResult(el, reasons, period)

    def rollup(self, ws, level: str = "equipment", period: str = "day", start=None, end=None) -> pd.DataFrame:
        return self.spark.rollup(self._dataset(ws), level, period, start, end, ws.settings)

    def iter_rollup(self, ws, level: str = "equipment", period: str = "day", start=None, end=None
                    ) -> Iterator[pd.DataFrame]:
        """:meth:`rollup` as one piece (Spark's result arrives whole in the driver)."""
        yield self.rollup(ws, level, period, start, end)


def elements(ws, level: str | None = None, period: str = "day", start=None, end=None):
    """Elements of workspace ``ws`` by its engine: per entity (``level`` None, an :class:`ElementsResult`) or
    summed to ``level`` (a DataFrame, see :func:`zhizao.kpi.rollup.rollup`)."""
    if level is None:
        return ws.elements_raw(period, start, end)
    return ws.elements(level, period, start, end)
