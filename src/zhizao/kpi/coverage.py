"""Data coverage and outages: which buckets have data, which were expected to, and where a meter or a counter
was silent while the machine worked.

Gaps are gaps. The elements of an equipment in a bucket without any record of a kind are null, not zero
(production counts ``pq, gq, sq, rq, ...``; energy ``energy_kwh, ...``; labour ``apat, ...``; quality
``ip, gp, defects``), per equipment and bucket (see :mod:`zhizao.kpi.elements`). Two elements measure the
outages of an equipment that has a counter or a meter (records of that kind somewhere in the store):

- ``counts_missing`` [s]: production time (APT) in buckets without any count record: a counter outage;
- ``energy_missing`` [s]: production time (APT) in buckets without any energy record: a meter outage.

Both are summed in the roll-up (a group's bucket with one silent machine shows its seconds) and flagged in
the data-quality table (checks ``counter_outage`` and ``meter_outage``).

Data are *expected* in a bucket where the entity has planned busy time (PBT > 0): a Sunday without shifts
neither counts as missing nor as present, so complete data show 100 %.

For the verification layer
--------------------------
:func:`coverage` takes the rows of one entity (any level, any period, as :meth:`zhizao.Workspace.elements`
returns them) and the kind of data, and returns the buckets expected, present and complete, the coverage and
the outage seconds; :func:`bucket_flags` gives the same per bucket (to exclude or flag single buckets)::

    el = ws.elements(level="work_center", period="day", start=a, end=b)
    rows = el[el["work_center"] == "L01"]
    cov = coverage(rows, "energy")       # Coverage(expected=..., present=..., complete=..., ...)
    flags = bucket_flags(rows, "energy")  # per bucket: expected, present, complete, outage_seconds
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Kind of data -> (element that is null where the bucket has no record of the kind, outage element or None)
KINDS = {
    "production": ("pq", "counts_missing"),
    "energy": ("energy_kwh", "energy_missing"),
    "labour": ("apat", None),
    "quality": ("ip", None),
}


@dataclass(frozen=True)
class Coverage:
    """Data coverage of one entity over a range of buckets (see :func:`coverage`).

    Attributes
    ----------
    kind : str
    expected : int
        Buckets with planned busy time (PBT > 0).
    present : int
        Expected buckets with data of the kind.
    complete : int
        Present buckets without an outage (no production time of a member without data of the kind).
    coverage : float
        ``complete / expected`` (1.0 when nothing was expected).
    outage_seconds : float
        Production time without data of the kind [s] (counter or meter outages; 0 for labour and quality).
    unexpected : int
        Buckets without planned busy time that hold data of the kind anyway (informative).
    """

    kind: str
    expected: int
    present: int
    complete: int
    coverage: float
    outage_seconds: float
    unexpected: int


def bucket_flags(rows: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Per bucket (row) of ``rows``: whether data of ``kind`` were expected, are present, are complete, and the
    outage seconds.

    Parameters
    ----------
    rows : pandas.DataFrame
        Elements (rolled up or not) with at least ``pbt`` and the kind's element columns.
    kind : {'production', 'energy', 'labour', 'quality'}

    Returns
    -------
    pandas.DataFrame
        Same index; columns ``expected``, ``present``, ``complete`` (bool) and ``outage_seconds`` (float).

    Raises
    ------
    KeyError
        For an unknown kind.

    Examples
    --------
    >>> rows = pd.DataFrame({"pbt": [3600.0, 3600.0, 0.0], "pq": [10.0, np.nan, np.nan],
    ...                      "counts_missing": [0.0, 3000.0, 0.0]})
    >>> bucket_flags(rows, "production").to_dict("list")  # doctest: +NORMALIZE_WHITESPACE
    {'expected': [True, True, False], 'present': [True, False, False], 'complete': [True, False, False],
     'outage_seconds': [0.0, 3000.0, 0.0]}
    """
    if kind not in KINDS:
        raise KeyError(f"unknown kind of data {kind!r}; one of {', '.join(KINDS)}")
    column, outage = KINDS[kind]
    pbt = rows["pbt"].to_numpy(dtype=np.float64, na_value=np.nan)
    expected = np.nan_to_num(pbt) > 0
    present = rows[column].notna().to_numpy() if column in rows else np.zeros(len(rows), bool)
    out_s = (np.nan_to_num(rows[outage].to_numpy(dtype=np.float64, na_value=np.nan))
             if outage and outage in rows else np.zeros(len(rows)))
    return pd.DataFrame({"expected": expected, "present": present, "complete": present & (out_s == 0),
                         "outage_seconds": out_s}, index=rows.index)


def coverage(rows: pd.DataFrame, kind: str) -> Coverage:
    """Coverage of data of ``kind`` over the buckets (rows) of one entity, counted only where data were
    expected (PBT > 0).

    Parameters
    ----------
    rows : pandas.DataFrame
        The entity's elements per bucket (see :func:`bucket_flags`).
    kind : {'production', 'energy', 'labour', 'quality'}

    Returns
    -------
    Coverage

    Examples
    --------
    >>> rows = pd.DataFrame({"pbt": [3600.0, 3600.0, 0.0], "energy_kwh": [5.0, 4.0, np.nan],
    ...                      "energy_missing": [0.0, 600.0, 0.0]})
    >>> c = coverage(rows, "energy")
    >>> (c.expected, c.present, c.complete, c.coverage, c.outage_seconds)
    (2, 2, 1, 0.5, 600.0)
    """
    f = bucket_flags(rows, kind)
    e = f["expected"].to_numpy()
    expected = int(e.sum())
    complete = int((f["complete"].to_numpy() & e).sum())
    return Coverage(kind=kind, expected=expected, present=int((f["present"].to_numpy() & e).sum()),
                    complete=complete, coverage=complete / expected if expected else 1.0,
                    outage_seconds=float(f["outage_seconds"].sum()),
                    unexpected=int((f["present"].to_numpy() & ~e).sum()))
