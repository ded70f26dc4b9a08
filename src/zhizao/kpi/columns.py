"""Store columns as numpy arrays: the few conversions the KPI engine's reads share.

DuckDB returns query results as Arrow tables; the engine works on numpy arrays. Entity ids are turned into
entity keys inside the query, as the codes of an anonymous ENUM of the ids in key order (cheaper than a join,
and a plain scan keeps the store's insertion order); time stamps are fetched as they are and divided here,
which is several times cheaper than ``epoch_ms()`` in SQL. No ``pyarrow.compute`` function is called: its
first call costs a noticeable fraction of a second per process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray


def enum_sql(values: Sequence[str]) -> str:
    """SQL type of an anonymous ENUM of ``values`` (str, in order; at least one): a cast of a text to it gives
    the text's position in ``values`` as the code of an Arrow dictionary column (see :func:`enum_codes`)."""
    if not values:
        raise ValueError("an ENUM needs at least one value")
    return "ENUM(" + ", ".join("'" + str(v).replace("'", "''") + "'" for v in values) + ")"


def enum_codes(col: pa.ChunkedArray, n: int) -> NDArray[np.int64]:
    """Codes of a chunked Arrow dictionary column cast to an ENUM of ``n`` values.

    Returns
    -------
    array of int64
        The position of each value among the ENUM's values; -1 for null (``TRY_CAST`` of a text that is not
        one of them).

    Raises
    ------
    RuntimeError
        If a chunk's dictionary is not the ENUM's ``n`` values.
    """
    out = np.empty(len(col), np.int64)
    at = 0
    for chunk in col.chunks:
        if len(chunk.dictionary) != n:
            raise RuntimeError(f"ENUM column came with {len(chunk.dictionary)} values, expected {n}")
        idx = chunk.indices
        out[at:at + len(chunk)] = dictionary_codes(idx) if idx.null_count else idx.to_numpy()
        at += len(chunk)
    return out


def dictionary_codes(indices: pa.Array) -> NDArray[np.int64]:
    """Dictionary indices as int64, with -1 for null."""
    if indices.null_count:
        codes = indices.to_numpy(zero_copy_only=False)  # float with NaN for null
        return np.where(np.isnan(codes), -1, np.nan_to_num(codes, nan=-1)).astype(np.int64)
    codes_int: NDArray[np.int64] = indices.to_numpy().astype(np.int64)
    return codes_int


def to_numpy(col: pa.ChunkedArray) -> NDArray[Any]:
    """A chunked Arrow column without nulls as one numpy array."""
    out: NDArray[Any] = col.combine_chunks().to_numpy(zero_copy_only=False)
    return out


def _microseconds(ts: pa.ChunkedArray | pa.Array) -> pa.Array:
    """A column of time stamps as one Arrow array in microseconds."""
    if isinstance(ts, pa.ChunkedArray):
        ts = ts.combine_chunks()
    return ts if ts.type.unit == "us" else ts.cast(pa.timestamp("us", tz=ts.type.tz))


def epoch_ms(ts: pa.ChunkedArray) -> NDArray[np.int64]:
    """Milliseconds since the epoch (floor, int64) of a chunked Arrow column of time stamps without nulls."""
    ms: NDArray[np.int64] = _microseconds(ts).view(pa.int64()).to_numpy() // 1000
    return ms


def epoch_ms_or_null(ts: pa.ChunkedArray | pa.Array) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Milliseconds since the epoch (floor, int64; 0 where null) of an Arrow column of time stamps, and
    whether each is not null (bool), read from the validity bitmap (no ``pyarrow.compute`` call)."""
    ts = _microseconds(ts)
    n, at = len(ts), ts.offset
    if n == 0:
        return np.empty(0, np.int64), np.empty(0, bool)
    valid = np.ones(n, dtype=bool)
    bitmap, data = ts.buffers()
    if ts.null_count and bitmap is not None:
        valid = np.unpackbits(np.frombuffer(bitmap, np.uint8), bitorder="little")[at:at + n].astype(bool)
    ms = np.frombuffer(data, np.int64)[at:at + n] // 1000  # the values under nulls are arbitrary
    ms[~valid] = 0
    return ms, valid


def numbers(col: pa.ChunkedArray) -> NDArray[np.integer[Any] | np.float64]:
    """A numeric Arrow column as numpy: integers without nulls as they are, anything else as float64 with
    NaN for null."""
    x: NDArray[np.integer[Any] | np.float64] = col.to_numpy()
    return x if pa.types.is_integer(col.type) and col.null_count == 0 else x.astype(np.float64, copy=False)


def floor_ms(x: str) -> str:
    """SQL of time stamp ``x`` in milliseconds since the epoch, rounded down as :func:`epoch_ms` reads the state
    and count records. DuckDB's own ``epoch_ms`` rounds to the nearest: a record at 00:00:00.000500 would be a
    millisecond later in one reading than in another, and the engine's reads and statistics must agree to the
    millisecond (a window of time reads exactly what a read of every record does).

    >>> import duckdb
    >>> duckdb.sql("SELECT " + floor_ms("TIMESTAMPTZ '1970-01-01 00:00:00.000999+00'")
    ...            + ", epoch_ms(TIMESTAMPTZ '1970-01-01 00:00:00.000999+00')").fetchall()
    [(0, 1)]
    """
    return f"CAST(floor(epoch_us({x}) / 1000) AS BIGINT)"
