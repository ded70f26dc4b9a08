"""The one place where the ingest stage makes a file readable: text encodings and Excel workbooks.

DuckDB reads UTF-8 CSV (with or without a byte-order mark) and Parquet itself. What people export from office
software often is something else:

- CSV saved by Excel on Chinese Windows is GBK (code page 936) or GB18030;
- a workbook (``.xlsx``), including zhizao's own exports and import templates.

:func:`readable` turns such a file into a UTF-8 CSV in a private temporary folder (once per file version) and
returns what DuckDB should read; every reader of the ingest stage (:func:`zhizao.ingest.load.read_sql`, and
through it the loads and the server's tenant check) goes through it, so the rules are the same everywhere.

Encoding rules
--------------
- ``read.encoding`` of the mapping file wins when given (``utf-8``, ``gbk``, ``gb18030``, ``utf-16``, ...).
- Otherwise the whole file is checked: valid UTF-8 (a BOM is allowed) is read as it is; else GB18030, a
  superset of GBK and GB2312 (a GBK file decodes to the same text); else the file is refused with
  :class:`zhizao.errors.Unsupported`, naming the byte offset that is neither.

Workbooks
---------
The sheet read is ``read.sheet`` of the mapping, else a sheet named after the table (an import template has
one sheet per table), else the first sheet. Its first row is the header. Cells become text: integers without a
decimal point, dates as ``YYYY-MM-DD`` and date-times as ISO 8601 (``YYYY-MM-DDTHH:MM:SS``), booleans as
``true``/``false``, empty cells empty. Formulas give their cached values. Rows that are entirely empty are
skipped. ``.xls`` (the binary format before 2007) is not read: save it as ``.xlsx``.
"""

from __future__ import annotations

import atexit
import codecs
import csv
import datetime as dt
import gzip
import io
import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zhizao.errors import Unsupported
from zhizao.messages import define

if TYPE_CHECKING:  # openpyxl is imported where a workbook is read
    from openpyxl import Workbook

NOT_TEXT = define("ingest.not_text", "%(file)s is neither UTF-8 nor GBK/GB18030 text (undecodable bytes at "
                                     "offset %(offset)s); save it as CSV UTF-8 or give read.encoding in a mapping")
BAD_ENCODING = define("ingest.bad_encoding", "%(file)s cannot be decoded as %(encoding)s: %(error)s")
OLD_EXCEL = define("ingest.old_excel", "%(file)s is an Excel 97-2003 workbook (.xls); save it as .xlsx or CSV")
BAD_WORKBOOK = define("ingest.bad_workbook", "%(file)s is not a readable .xlsx workbook: %(error)s")
NO_SHEET = define("ingest.no_sheet", "%(file)s has no sheet %(sheet)s (it has %(sheets)s)")

#: Suffixes read as workbooks.
XLSX_SUFFIXES = (".xlsx", ".xlsm")
_UTF8 = ("utf-8", "utf8", "utf-8-sig", "utf8-sig")
_CHUNK = 1 << 20

_lock = threading.Lock()
_folder: Path | None = None
#: a converted file per (resolved path, mtime_ns, size, workbook, encoding, sheet, table)
_cache: dict[tuple[str, int, int, bool, str | None, str | None, str | None], Path] = {}


def _tmp() -> Path:
    global _folder
    if _folder is None:
        _folder = Path(tempfile.mkdtemp(prefix="zhizao-read-"))
        atexit.register(shutil.rmtree, _folder, True)
    return _folder


def _new_file() -> Path:
    import os

    fd, name = tempfile.mkstemp(dir=_tmp(), suffix=".csv")
    os.close(fd)
    return Path(name)


def is_workbook(path: Path, fmt: str | None = None) -> bool:
    """Whether ``path`` is read as an .xlsx workbook (by the mapping's ``read.format`` or the suffix)."""
    return fmt == "xlsx" or (fmt is None and path.suffix.lower() in XLSX_SUFFIXES)


def _open_binary(path: Path) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb")


def detect_encoding(path: str | Path) -> str:
    """``"utf-8"`` or ``"gb18030"``: the encoding a CSV file is read in (see the module docstring).

    Raises
    ------
    zhizao.errors.Unsupported
        Neither UTF-8 nor GB18030.
    """
    path = Path(path)
    dec: codecs.IncrementalDecoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = 0
    with _open_binary(path) as f:
        while True:
            chunk = f.read(_CHUNK)
            try:
                dec.decode(chunk, final=not chunk)
            except UnicodeDecodeError as e:
                bad = offset + e.start
                break
            if not chunk:
                return "utf-8"
            offset += len(chunk)
    dec = codecs.getincrementaldecoder("gb18030")("strict")
    with _open_binary(path) as f:
        while True:
            chunk = f.read(_CHUNK)
            try:
                dec.decode(chunk, final=not chunk)
            except UnicodeDecodeError:
                raise Unsupported(NOT_TEXT, file=path.name, offset=bad) from None
            if not chunk:
                return "gb18030"


def _transcode(path: Path, encoding: str, dest: Path) -> None:
    try:
        with _open_binary(path) as src, open(dest, "w", encoding="utf-8", newline="") as out:
            reader = codecs.getreader(encoding)(src, "strict")  # errors is positional-only in typeshed
            while True:
                text = reader.read(_CHUNK)
                if not text:
                    break
                out.write(text)
    except (UnicodeDecodeError, LookupError) as e:
        dest.unlink(missing_ok=True)
        raise Unsupported(BAD_ENCODING, file=path.name, encoding=encoding, error=str(e)) from None


def cell_text(v: object) -> str:
    """A workbook cell as the text the ingest stage parses (see the module docstring)."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dt.datetime):
        if v.time() == dt.time(0) and v.tzinfo is None:
            return v.date().isoformat()
        return v.isoformat()
    if isinstance(v, (dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
    return str(v)


def sheet_names(path: str | Path) -> list[str]:
    """The sheet names of a workbook."""
    wb = _workbook(Path(path))
    try:
        return list(wb.sheetnames)
    finally:
        wb.close()


def _workbook(path: Path) -> Workbook:
    import zipfile

    import openpyxl

    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise Unsupported(OLD_EXCEL, file=path.name)
    try:
        return openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
        raise Unsupported(BAD_WORKBOOK, file=path.name, error=str(e).splitlines()[0] if str(e) else
                          type(e).__name__) from None


def _xlsx_to_csv(path: Path, sheet: str | None, table: str | None, dest: Path) -> None:
    wb = _workbook(path)
    try:
        names = list(wb.sheetnames)
        if sheet is not None:
            if sheet not in names:
                raise Unsupported(NO_SHEET, file=path.name, sheet=sheet, sheets=names)
            ws = wb[sheet]
        elif table is not None and table in names:
            ws = wb[table]
        else:
            ws = wb[names[0]]
        with open(dest, "w", encoding="utf-8", newline="") as out:
            w = csv.writer(out, lineterminator="\n")
            width = None
            for row in ws.iter_rows(values_only=True):
                cells = [cell_text(v) for v in row]
                if width is None:  # the header fixes the width; trailing empty header cells are dropped
                    while cells and cells[-1] == "":
                        cells.pop()
                    width = len(cells)
                elif not any(c.strip() for c in cells):
                    continue
                cells = (cells + [""] * width)[:width]
                w.writerow(cells)
    finally:
        wb.close()


def readable(path: str | Path, read: dict[str, Any] | None = None, table: str | None = None) -> tuple[Path, str]:
    """What DuckDB reads for ``path``: ``(file, format)`` with format ``"csv"`` or ``"parquet"``.

    Parameters
    ----------
    path : str or Path
        The file as given (CSV, gzip-compressed CSV, Parquet or .xlsx).
    read : dict, optional
        The mapping's ``read`` options (``format``, ``encoding``, ``sheet``).
    table : str, optional
        The canonical table being loaded (picks a workbook's sheet of that name).

    Returns
    -------
    (Path, str)
        The file itself for UTF-8 CSV and Parquet; else a UTF-8 CSV made from it (cached per file version
        and options in a private temporary folder that is removed at exit).

    Raises
    ------
    zhizao.errors.Unsupported
        Text that is neither UTF-8 nor GB18030, an undecodable declared encoding, an .xls or broken workbook,
        or a sheet that does not exist.
    """
    path = Path(path)
    read = read or {}
    fmt = read.get("format")
    if fmt == "parquet" or (fmt is None and path.suffix.lower() in (".parquet", ".pq")):
        return path, "parquet"
    st = path.stat()
    workbook = is_workbook(path, fmt)
    encoding = str(read.get("encoding") or "").lower() or None
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size, workbook, encoding, read.get("sheet"),
           table if workbook else None)
    with _lock:
        hit = _cache.get(key)
        if hit is not None and hit.exists():
            return hit, "csv"
    if workbook:
        dest = _new_file()
        _xlsx_to_csv(path, read.get("sheet"), table, dest)
    else:
        if encoding is None:
            encoding = detect_encoding(path)
        if encoding in _UTF8:
            return path, "csv"
        dest = _new_file()
        _transcode(path, encoding, dest)
    with _lock:
        _cache[key] = dest
    return dest, "csv"


__all__ = ["XLSX_SUFFIXES", "cell_text", "detect_encoding", "is_workbook", "readable", "sheet_names"]
