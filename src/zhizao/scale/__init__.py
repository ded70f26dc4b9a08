"""Scale-out: the store as a Parquet dataset partitioned by site and month, and the engine's kernel on
Apache Spark (see docs/scale.md).

- :mod:`zhizao.scale.dataset`: ``export_dataset`` / ``ingest_dataset``;
- :mod:`zhizao.scale.kernel`: the per-group kernel (zhizao's own engine on one group's records);
- :mod:`zhizao.scale.spark`: :class:`SparkEngine`, the elements and their roll-up on Spark;
- :mod:`zhizao.scale.engines`: the engines behind a workspace (``zhizao.connect(db, engine=...)``).

pyspark is imported only when a Spark engine is used.
"""

from zhizao.scale.dataset import export_dataset, ingest_dataset
from zhizao.scale.engines import EmbeddedEngine, SparkStoreEngine, elements


def __getattr__(name):
    if name == "SparkEngine":
        from zhizao.scale.spark import SparkEngine

        return SparkEngine
    raise AttributeError(name)


__all__ = ["EmbeddedEngine", "SparkEngine", "SparkStoreEngine", "elements", "export_dataset", "ingest_dataset"]
