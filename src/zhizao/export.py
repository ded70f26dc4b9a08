"""Tables out of zhizao as Excel (.xlsx) and CSV, safe to open in a spreadsheet.

One writer for every front end (the dashboard's downloads, the API's ``format=xlsx|csv``, the command line's
``--format xlsx``). A text cell that begins with ``=``, ``+``, ``-``, ``@`` (or a tab or carriage return) would
be read by Excel, LibreOffice or WPS as a formula (CSV/formula injection, OWASP); such cells are neutralised
with a leading apostrophe, which spreadsheets show as text. Numbers stay numbers.

The dashboard exports what its tables show (translated headers, labels instead of codes, local dates):
:func:`display_frame` turns a displayed table back into typed cells (``"55.7%"`` -> 0.557 shown as a
percentage, ``"1,246"`` -> 1246, ``"—"`` -> empty).

>>> neutralise("=1+1"), neutralise("-3 dB"), neutralise("OEE")
("'=1+1", "'-3 dB", 'OEE')
"""

from __future__ import annotations

import io
import re
from typing import Mapping

import pandas as pd

#: First characters that make a spreadsheet read a cell as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_TYPE = "text/csv; charset=utf-8"
_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")


def neutralise(value):
    """A text that a spreadsheet would read as a formula, with a leading apostrophe; anything else as is."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _safe(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out.columns = [neutralise(str(c)) for c in out.columns]
    for c in out.columns:
        if out[c].dtype == object or pd.api.types.is_string_dtype(out[c]):
            out[c] = out[c].map(neutralise)
        elif isinstance(out[c].dtype, pd.DatetimeTZDtype):
            out[c] = out[c].dt.tz_localize(None)  # Excel has no time zones: local wall time
    return out


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


def xlsx_bytes(sheets: Mapping[str, pd.DataFrame], percent_columns: Mapping[str, list] | None = None) -> bytes:
    """An .xlsx workbook with one sheet per frame: header row bold and frozen, columns sized to their text.

    Parameters
    ----------
    sheets : mapping of str to pandas.DataFrame
        Sheet name -> table (names made valid and unique).
    percent_columns : mapping of str to list, optional
        Sheet name -> columns whose fractions are shown as percentages (0.557 -> 55.7%).
    """
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    wb.remove(wb.active)
    taken: set[str] = set()
    for name, df in sheets.items():
        ws = wb.create_sheet(sheet_name(name, taken))
        safe = _safe(df)
        ws.append([str(c) for c in safe.columns])
        for row in safe.itertuples(index=False):
            ws.append([_cell_value(v) for v in row])
        for cell in ws[1]:
            cell.font = Font(bold=True)
        ws.freeze_panes = "A2"
        pct = set((percent_columns or {}).get(name, []))
        for k, col in enumerate(safe.columns, 1):
            letter = get_column_letter(k)
            texts = [str(col)] + [str(v) for v in safe[col].head(200) if v is not None]
            width = max(_width(t) for t in texts) if texts else 8
            ws.column_dimensions[letter].width = min(max(8, width + 2), 60)
            if col in pct or str(col) in pct:
                for cell in ws[letter][1:]:
                    cell.number_format = "0.0%"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _cell_value(v):
    """A value a worksheet cell can hold: lists of plain values joined, nested structures as JSON text."""
    import json

    if isinstance(v, dict) or (isinstance(v, (list, tuple)) and any(isinstance(x, (dict, list, tuple)) for x in v)):
        return neutralise(json.dumps(v, ensure_ascii=False, default=str))
    if isinstance(v, (list, tuple)):
        return neutralise(", ".join(map(str, v)))
    if hasattr(v, "tolist") and not hasattr(v, "item"):
        return _cell_value(v.tolist())
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        return neutralise(str(v))
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if hasattr(v, "isoformat"):
        return v.replace(tzinfo=None) if getattr(v, "tzinfo", None) else v
    return neutralise(str(v))


def _width(text: str) -> int:
    """Display width: CJK characters count twice."""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def csv_bytes(df: pd.DataFrame, bom: bool = True) -> bytes:
    """CSV in UTF-8, by default with a byte-order mark (so that Excel on Chinese Windows reads the Chinese
    text); text cells neutralised (:func:`neutralise`)."""
    return _safe(df).to_csv(index=False).encode("utf-8-sig" if bom else "utf-8")


def write_xlsx(sheets: Mapping[str, pd.DataFrame], path, percent_columns=None):
    """Write :func:`xlsx_bytes` to ``path``."""
    from pathlib import Path

    Path(path).write_bytes(xlsx_bytes(sheets, percent_columns))
    return path


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
        out = []
        for k, c in enumerate(r):
            if isinstance(c, dict) and "bar" in c and "text" not in c:
                out.append(None)
                continue
            text = str(c.get("text", "")) if isinstance(c, dict) else str(c)
            t = text.strip().replace("\u2212", "-")
            if t in (null, ""):
                out.append(None)
            elif _PCT.match(t):
                out.append(float(t[:-1].replace(",", "")) / 100.0)
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


__all__ = ["neutralise", "xlsx_bytes", "csv_bytes", "write_xlsx", "display_frame", "sheet_name", "XLSX_TYPE",
           "CSV_TYPE", "FORMULA_START"]
