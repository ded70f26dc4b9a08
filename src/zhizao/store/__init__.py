"""Storage stage: the embedded DuckDB store."""
from zhizao.store.db import open_db, row_count, table_ddl

__all__ = ["open_db", "row_count", "table_ddl"]
