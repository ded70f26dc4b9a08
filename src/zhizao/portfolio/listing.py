"""Lists of the register and the workflow: one page at a time, searched and sorted.

Every list the API and the dashboard show goes through :func:`page`: a search over chosen text columns
(case-insensitive substring, Unicode NFKC so full-width and half-width forms match), a sort on any column
(``-column`` for descending; nulls last either way) and a page of ``size`` rows. The answer says how many rows
matched, so a front end can show "rows 51-100 of 4,000" and links to the other pages.
"""

from __future__ import annotations

import math
import unicodedata

import pandas as pd

from zhizao.errors import InputError
from zhizao.messages import define

BAD_SORT = define("list.bad_sort", "cannot sort by %(column)s; columns: %(columns)s")
BAD_PAGE = define("list.bad_page", "page %(page)s does not exist (pages 1 to %(pages)s)")
DEFAULT_SIZE = 50
MAX_SIZE = 500


def _norm(x) -> str:
    return unicodedata.normalize("NFKC", str(x)).casefold()


def page(df: pd.DataFrame, *, search: str | None = None, columns=None, sort: str | None = None, number: int = 1,
         size: int | None = DEFAULT_SIZE) -> dict:
    """One page of ``df``.

    Parameters
    ----------
    df : pandas.DataFrame
    search : str, optional
        Keep rows where any of ``columns`` contains this text.
    columns : iterable of str, optional
        Columns searched (default: every text column).
    sort : str, optional
        A column, ``-column`` for descending.
    number : int
        Page number, from 1.
    size : int or None
        Rows per page (at most :data:`MAX_SIZE`); None: all rows.

    Returns
    -------
    dict
        ``rows`` (the page), ``total`` (rows matching), ``page``, ``pages``, ``size``, ``sort``, ``search``.

    Raises
    ------
    zhizao.errors.InputError
        An unknown sort column, or a page beyond the last.
    """
    out = df
    if search:
        needle = _norm(search.strip())
        cols = [c for c in (columns or df.columns) if c in df.columns]
        if needle and cols:
            hit = pd.Series(False, index=df.index)
            for c in cols:
                hit |= df[c].map(lambda v: (isinstance(v, str) and needle in _norm(v)) or (
                    v is not None and not isinstance(v, (str, float)) and needle in _norm(v)))
            out = df[hit.to_numpy(dtype=bool)]
    if sort:
        desc = sort.startswith("-")
        col = sort[1:] if desc else sort
        if col not in out.columns:
            raise InputError(BAD_SORT(column=col, columns=list(df.columns)))
        key = out[col].map(lambda v: (v is None or (isinstance(v, float) and v != v), v if not isinstance(v, float)
                                      or v == v else 0))
        try:
            order = sorted(range(len(out)), key=lambda i: (key.iloc[i][0], key.iloc[i][1]), reverse=False)
            if desc:
                nonnull = [i for i in order if not key.iloc[i][0]]
                nulls = [i for i in order if key.iloc[i][0]]
                order = nonnull[::-1] + nulls
        except TypeError:  # mixed types: compare as text
            order = sorted(range(len(out)), key=lambda i: (key.iloc[i][0], str(key.iloc[i][1])), reverse=False)
            if desc:
                order = [i for i in order if not key.iloc[i][0]][::-1] + [i for i in order if key.iloc[i][0]]
        out = out.iloc[order]
    total = len(out)
    if size is None:
        return {"rows": out.reset_index(drop=True), "total": total, "page": 1, "pages": 1, "size": total,
                "sort": sort, "search": search}
    size = max(1, min(int(size), MAX_SIZE))
    pages = max(1, math.ceil(total / size))
    number = int(number or 1)
    if number < 1 or number > pages:
        raise InputError(BAD_PAGE(page=number, pages=pages))
    rows = out.iloc[(number - 1) * size: number * size].reset_index(drop=True)
    return {"rows": rows, "total": total, "page": number, "pages": pages, "size": size, "sort": sort,
            "search": search}


__all__ = ["DEFAULT_SIZE", "MAX_SIZE", "page"]
