"""No table is filtered by a Python list of flags.

``df[[flag(x) for x in df["c"]]]`` keeps the rows whose flag is true -- unless the table has no rows: then the
list is empty, and pandas reads an empty list as a selection of no *columns*, so the next ``d["c"]`` raises
KeyError. The city register's programme page gave HTTP 500 that way (a count target of a year without
designations of its kind). A row mask is a bool array (``np.array([...], dtype=bool)``) or a Series. The test
reads every module of the package and lists each subscript whose index is a list comprehension over a table's
rows: over a column (``for x in df["c"]``), ``df.iterrows()`` or ``df.itertuples()``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd

import zhizao

SRC = Path(zhizao.__file__).resolve().parent


def _over_rows(it: ast.AST) -> bool:
    """Whether a comprehension iterates over a table's rows: a column, iterrows() or itertuples()."""
    if isinstance(it, ast.Subscript) and isinstance(it.slice, ast.Constant) and isinstance(it.slice.value, str):
        return True
    return (isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute)
            and it.func.attr in ("iterrows", "itertuples"))


def list_masks(root: Path = SRC) -> list[str]:
    """``file:line`` of each subscript indexed by a list comprehension over a table's rows."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Subscript) and isinstance(node.slice, ast.ListComp)
                    and any(_over_rows(g.iter) for g in node.slice.generators)):
                found.append(f"{path.relative_to(root.parent)}:{node.lineno}")
    return found


def test_no_table_is_filtered_by_a_list_of_flags():
    assert list_masks() == []


def test_the_check_finds_each_form(tmp_path):
    pkg = tmp_path / "zhizao"
    pkg.mkdir()
    (pkg / "a.py").write_text(
        'd = d[[x > 1 for x in d["c"]]]\n'
        'd = d[[f(r) for _i, r in d.iterrows()]]\n'
        'd = d[[f(r) for r in d.itertuples()]]\n'
        'd = d[[c for c in cols if c in d.columns]]\n'  # a column selection: not a row mask
        'd = d[np.array([x > 1 for x in d["c"]], dtype=bool)]\n')
    assert list_masks(pkg) == ["zhizao/a.py:1", "zhizao/a.py:2", "zhizao/a.py:3"]


def test_why_an_empty_list_is_not_a_row_mask():
    # the pandas behaviour the check guards against, so that the test says why it exists
    d = pd.DataFrame({"c": pd.Series([], dtype=float)})
    assert list(d[[x > 1 for x in d["c"]]].columns) == []  # no rows in, no columns out
    assert list(d[pd.Series([], dtype=bool)].columns) == ["c"]
