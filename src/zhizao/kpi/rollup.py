"""Roll-up of elements to an ISA-95 level: sums, never averages of KPIs.

A group's KPI is computed from the sums of its members' elements (reference/iso22400.md, "Roll-up"): two
machines at OEE 0.80 (PBT 100) and 0.45 (PBT 300) make a line at 0.5375, not 0.625.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from zhizao.errors import InputError
from zhizao.kpi.elements import ELEMENTS
from zhizao.messages import define
from zhizao.schema import LEVEL_ID_COLUMN, LEVELS

UNKNOWN_LEVEL = define("kpi.unknown_level", "unknown level '%(level)s'; one of %(known)s")


def rollup(elements: pd.DataFrame, level: str = "equipment", period: str | None = None) -> pd.DataFrame:
    """Sum elements to ``level`` per period.

    Parameters
    ----------
    elements : pandas.DataFrame
        Output of :func:`zhizao.kpi.elements.compute_elements` (``.elements``).
    level : {'equipment', 'work_center', 'area', 'site', 'enterprise'}
    period : str, optional
        The elements' period; for ``'all'`` a group has one row whatever its members' ranges (from the
        earliest start to the latest end of its members' ranges).

    Returns
    -------
    pandas.DataFrame
        Columns: the level's id column (``equipment_id``, ``work_center``, ...), ``tz``, ``period_start``,
        ``period_end``, ``n_equipment``, ``no_calendar`` (any member without calendar), ``no_data`` (any member
        without state or production records) and every element, summed; an element is null when no member
        has data of that kind. One row per entity and period: members bucketed in different zones (see
        ``zone_level`` of :func:`zhizao.kpi.elements.compute_elements`) are rows of different periods. A
        group's ``tz`` is its first row's; :func:`label_zones` gives groups spanning zones their own. Rows
        whose member has no id at this level are left out; labour, energy and quality booked to a scope
        count from that scope's level up.

        ``shift`` rows of a group are its members' shift rows by local label (:func:`shift_labels`): the rows
        whose local wall-clock start and end are the same are summed to one row, from their earliest start to
        their latest end; labels that end with the same bounds (a shift booked to a group spanning zones: the
        same instants, other clocks) are one row too, summed label by label in label order. So a group has one
        row per shift label and never two rows with the same bounds (docs/reference/iso22400.md, "Time zones
        and buckets").

    Raises
    ------
    ValueError
        For an unknown level.
    """
    if level not in LEVELS:
        raise InputError(UNKNOWN_LEVEL, level=level, known=list(LEVELS))
    col = LEVEL_ID_COLUMN[level]
    if level == "equipment":
        df = elements[elements["level"] == "equipment"]
    else:
        df = elements[elements[col].notna()]
    keys = [col, "tz", "period_start", "period_end"]
    if df.empty:
        return pd.DataFrame(columns=keys + ["n_equipment", "no_calendar", "no_data", *ELEMENTS])
    index = pd.MultiIndex.from_frame(df[keys]) if level == "equipment" else None
    if index is not None and index.is_unique:
        # one row per equipment and bucket already: the sums are the rows themselves (the engine's rows come
        # in this order already)
        out = (df if index.is_monotonic_increasing else df.sort_values(keys, kind="stable")).reset_index(drop=True)
        out.insert(len(keys), "n_equipment", 1)
        return out[keys + ["n_equipment", "no_calendar", "no_data", *ELEMENTS]]
    if period == "all":
        df = df.assign(period_start=df.groupby(col)["period_start"].transform("min"),
                       period_end=df.groupby(col)["period_end"].transform("max"))
    elif period == "shift":  # one row per local shift label, from its earliest start to its latest end
        ls, le = shift_labels(df)
        df = df.assign(_ls=ls, _le=le)
        by_label = df.groupby([col, "_ls", "_le"], sort=False, dropna=False)
        df = df.assign(period_start=by_label["period_start"].transform("min"),
                       period_end=by_label["period_end"].transform("max"))
    # one row per entity and period: the zone is not a key (a group's members share its bucket zone)
    g = df.groupby([col, "period_start", "period_end"], sort=True, dropna=False)
    if period == "shift":
        # each label in row order, then the labels with the same bounds in label order
        labels = df.groupby([col, "period_start", "period_end", "_ls", "_le"], sort=True, dropna=False)
        out = _label_totals(group_sums(df[list(ELEMENTS)], labels))
    else:
        out = group_sums(df[list(ELEMENTS)], g)
    out["tz"] = g["tz"].first()
    out["n_equipment"] = g["equipment_id"].nunique()
    out["no_calendar"] = g["no_calendar"].any()
    out["no_data"] = g["no_data"].any()
    out = out.reset_index()
    return out[keys + ["n_equipment", "no_calendar", "no_data", *ELEMENTS]]


def shift_labels(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The local label of each row: its start and end on the wall clock of its zone ``tz``, as integer
    milliseconds (local date and time read as if it were UTC), so rows of members in different zones with the
    same local shift (06:00-14:00 in Berlin and in Kolkata, on the same date) have the same label.

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"tz": ["Europe/Berlin", "Asia/Kolkata"],
    ...                   "period_start": pd.to_datetime(["2024-05-06T04:00Z", "2024-05-06T00:30Z"]),
    ...                   "period_end": pd.to_datetime(["2024-05-06T12:00Z", "2024-05-06T08:30Z"])})
    >>> [str(pd.Timestamp(x, unit="ms")) for x in shift_labels(r)[0]]
    ['2024-05-06 06:00:00', '2024-05-06 06:00:00']
    """
    start = np.empty(len(rows), np.int64)
    end = np.empty(len(rows), np.int64)
    zones = rows["tz"].to_numpy()
    for tz in pd.unique(zones):
        at = np.flatnonzero(zones == tz)
        for out, c in ((start, "period_start"), (end, "period_end")):
            t = pd.DatetimeIndex(rows[c].iloc[at]).tz_convert(tz).tz_localize(None)
            out[at] = t.as_unit("ms").asi8
    return start, end


def _label_totals(labels: pd.DataFrame) -> pd.DataFrame:
    """Sums per label (indexed by id, bounds, label) summed per id and bounds, in label order."""
    return group_sums(labels, labels.groupby(level=[0, 1, 2], sort=True, dropna=False))


def kahan_add(s: NDArray[np.float64], c: NDArray[np.float64], n: NDArray[np.float64], labels: NDArray[np.int64],
              v: NDArray[np.float64]) -> None:
    """Add the rows ``v`` (n_rows x k, NaN: no value) to the running sums ``s`` of their groups ``labels``, in row
    order, by compensated (Kahan) summation with compensation ``c``, counting the values in ``n``: pandas' own
    ``groupby.sum`` step for step (``group_sum`` of pandas/_libs/groupby.pyx: a NaN compensation, from an
    infinite value, is reset to 0), vectorised over the groups: the r-th row of every group at once.

    >>> s, c, n = np.zeros((1, 1)), np.zeros((1, 1)), np.zeros((1, 1))
    >>> kahan_add(s, c, n, np.zeros(3, np.int64), np.array([[0.1], [0.2], [np.nan]]))
    >>> float(s[0, 0]), int(n[0, 0])
    (0.30000000000000004, 2)
    """
    if not len(labels):
        return
    rank = pd.Series(labels).groupby(labels).cumcount().to_numpy()
    order = np.argsort(rank, kind="stable")
    bounds = np.searchsorted(rank[order], np.arange(rank.max() + 2))
    for r in range(rank.max() + 1):  # the r-th row of every group: distinct groups, one Kahan step each
        rows = order[bounds[r]:bounds[r + 1]]
        L = labels[rows]
        x = v[rows]
        ok = ~np.isnan(x)
        y = x - c[L]
        t = s[L] + y
        comp = t - s[L] - y
        comp[np.isnan(comp)] = 0.0
        s[L] = np.where(ok, t, s[L])
        c[L] = np.where(ok, comp, c[L])
        n[L] += ok


def group_sums(values: pd.DataFrame, groups: Any) -> pd.DataFrame:
    """``groups.sum(min_count=1)`` of the float columns ``values`` (``groups``: a groupby of ``values``' rows),
    always by compensated summation in row order, as the streamed roll-up sums (:func:`kahan_add`). pandas 3 sums
    by compensated summation where the block has a null (nearly every element table: pandas' own, fast path),
    but groups that come in order from a block without one by ``np.add.reduceat``, which may differ in the last
    bit (a reviewer found 203.3 against the streamed 203.29999999999998): those are summed here."""
    arr = values.to_numpy(np.float64)
    if np.isnan(arr).any():
        out: pd.DataFrame = groups[list(values.columns)].sum(min_count=1)
        return out
    labels = groups.ngroup().to_numpy(np.int64)
    m, k = int(groups.ngroups), values.shape[1]
    s, c, n = np.zeros((m, k)), np.zeros((m, k)), np.zeros((m, k))
    kahan_add(s, c, n, labels, arr)
    return pd.DataFrame(np.where(n > 0, s, np.nan), index=groups.size().index, columns=values.columns)


def label_zones(rows: pd.DataFrame, level: str, zones: dict[str, str]) -> pd.DataFrame:
    """``rows`` (a roll-up to ``level``) with ``tz`` the group's own zone where it has one.

    A row's ``tz`` is the zone its period bounds are shown in (ISO 8601 with that offset). Day, week, month and
    hour rows of a group spanning zones are cut in the group's zone already (``zone_level`` of
    :func:`zhizao.kpi.elements.compute_elements`); ``all`` and ``shift`` rows are absolute intervals that no
    zone cuts, and the roll-up would label them with the zone of whichever member comes first. They get the
    group's zone too (its configured zone, else that of most of its machines: :func:`zhizao.kpi.elements.
    group_zones`), so every row of a group shows the same offset whatever the period and the members' order
    (docs/reference/iso22400.md, "Time zones and buckets").

    Parameters
    ----------
    rows : pandas.DataFrame
        Output of :func:`rollup` or :func:`rollup_stream`.
    level : {'equipment', 'work_center', 'area', 'site', 'enterprise'}
    zones : dict
        Group id -> IANA zone (:func:`zhizao.kpi.elements.group_zones`); groups not in it keep their label
        (their members share one zone).

    Returns
    -------
    pandas.DataFrame
        ``rows`` itself when no label changes, else a copy.

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"site": ["S", "T"], "tz": ["Europe/Berlin", "UTC"]})
    >>> label_zones(r, "site", {"S": "Asia/Shanghai"})["tz"].tolist()
    ['Asia/Shanghai', 'UTC']
    """
    if level == "equipment" or not zones or rows.empty:
        return rows
    col = LEVEL_ID_COLUMN[level]
    want = rows[col].map(zones)
    change = want.notna() & (want != rows["tz"])
    if not change.any():
        return rows
    out = rows.copy()
    out["tz"] = want.where(change, rows["tz"]).astype(rows["tz"].dtype)
    return out


def _ns(times: pd.Series) -> NDArray[np.int64]:
    """Time stamps (tz-aware) as integer nanoseconds since the epoch (UTC)."""
    out: NDArray[np.int64] = pd.DatetimeIndex(times).as_unit("ns").asi8
    return out


def _times(ns: list[int], dtype: Any) -> pd.Series:
    """Integer nanoseconds since the epoch as time stamps of ``dtype`` (tz-aware)."""
    return pd.Series(pd.DatetimeIndex(np.asarray(ns, "datetime64[ns]")).tz_localize("UTC")).astype(dtype)


def rollup_stream(parts: Iterable[pd.DataFrame], level: str = "equipment", period: str | None = None) -> pd.DataFrame:
    """:func:`rollup` of the concatenation of ``parts`` (element tables of disjoint sets of entities, as
    :func:`zhizao.kpi.elements.iter_elements` gives them), bit for bit, holding one part at a time besides the
    groups' running sums.

    pandas sums a group by compensated (Kahan) summation in the order of its rows; the running sum, its
    compensation and the count of values of every group and element are carried from one part to the next, so
    the sums are those of one pass over all rows. Equipment counts add up (the parts' equipment are disjoint),
    flags are or-ed, a group's zone is that of its first row. ``shift`` groups are carried per local label
    (their bounds known only at the end): the labels' sums are then added per bounds in label order, as
    :func:`rollup` adds them, and equipment are counted from the (label, equipment) pairs of each part.
    """
    if level not in LEVELS:
        raise InputError(UNKNOWN_LEVEL, level=level, known=list(LEVELS))
    col = LEVEL_ID_COLUMN[level]
    keys = [col, "tz", "period_start", "period_end"]
    columns = keys + ["n_equipment", "no_calendar", "no_data", *ELEMENTS]
    if level == "equipment":  # one row per equipment and bucket: the rows themselves
        frames = [p[p["level"] == "equipment"] for p in parts]
        frames = [f for f in frames if len(f)]
        return rollup(pd.concat(frames, ignore_index=True), level, period) if frames \
            else pd.DataFrame(columns=columns)
    shift = period == "shift"
    n_el = len(ELEMENTS)
    # group key -> group number; a group is a bucket (id, start, end), an id for 'all', a label (id, local start,
    # local end) for 'shift'
    index: dict[tuple[str] | tuple[str, int, int], int] = {}
    gid: list[str] = []
    tz: list[str] = []
    ps: list[int] = []  # a group's first start and last end [ns since the epoch]
    pe: list[int] = []
    n_eq: list[int] = []
    no_cal: list[bool] = []
    no_data: list[bool] = []
    lab_s: list[int] = []  # a shift label's local start and end [ms]
    lab_e: list[int] = []
    pairs: list[np.ndarray] = []  # shift: (label, equipment) pairs of each part, equipment numbered across parts
    n_seen = 0
    cap = 0
    s = c = n = np.empty((0, n_el))
    # a row of each part (one with an id where there is one, none of an empty part): their concatenation has the
    # dtypes of the concatenated parts (pandas leaves all-null columns out of that choice)
    heads: list[pd.DataFrame] = []
    for part in parts:
        if part.empty:  # left out, as compute_elements leaves out the partitions without rows
            continue
        has = part[col].notna().to_numpy()
        heads.append(part[[col, "tz", "period_start", "period_end"]].iloc[np.flatnonzero(has)[:1] if has.any()
                                                                          else slice(0, 1)])
        df = part[has]
        if df.empty:
            continue
        ids = df[col].to_numpy(object)
        a, b = _ns(df["period_start"]), _ns(df["period_end"])
        zones = df["tz"].to_numpy(object)
        # the part's rows by group key, numbered in the order they first come (as the rows are taken in turn):
        # each key looked up once per part, not once per row (2.3 M rows of 100 M state records)
        if shift:
            ls, le = (np.asarray(x, np.int64) for x in shift_labels(df))
            key_cols = {"i": ids, "s": ls, "e": le}
        else:
            key_cols = {"i": ids} if period == "all" else {"i": ids, "s": a, "e": b}
        local = pd.DataFrame(key_cols).groupby(list(key_cols), sort=False, dropna=False).ngroup().to_numpy()
        n_local = int(local.max()) + 1
        first = np.full(n_local, len(df), np.int64)
        np.minimum.at(first, local, np.arange(len(df), dtype=np.int64))
        a_min, b_max = np.full(n_local, np.iinfo(np.int64).max), np.full(n_local, np.iinfo(np.int64).min)
        np.minimum.at(a_min, local, a)
        np.maximum.at(b_max, local, b)
        group_of = np.empty(n_local, np.int64)
        for u, i in enumerate(first.tolist()):
            k = (ids[i],) if period == "all" else (ids[i], int(key_cols["s"][i]), int(key_cols["e"][i]))
            g = index.get(k)
            if g is None:
                g = index[k] = len(gid)
                gid.append(ids[i])
                tz.append(zones[i])
                ps.append(int(a_min[u]))  # (the bounds are the key's but for all and shift)
                pe.append(int(b_max[u]))
                n_eq.append(0)
                no_cal.append(False)
                no_data.append(False)
                if shift:
                    lab_s.append(int(ls[i]))
                    lab_e.append(int(le[i]))
            elif period in ("all", "shift"):
                ps[g], pe[g] = min(ps[g], int(a_min[u])), max(pe[g], int(b_max[u]))
            group_of[u] = g
        labels = group_of[local]
        if len(gid) > cap:  # room for the new groups
            cap = max(len(gid), 2 * cap)
            s, c, n = (np.concatenate([x, np.zeros((cap - x.shape[0], n_el))]) for x in (s, c, n))
        if shift:
            eq_codes, _ = pd.factorize(df["equipment_id"])  # -1: a scope's row
            ok = eq_codes >= 0
            pairs.append(np.unique(np.stack([labels[ok], eq_codes[ok] + n_seen], axis=1), axis=0))
            n_seen += int(eq_codes.max(initial=-1)) + 1
        else:
            for g, k in df["equipment_id"].groupby(labels).nunique().items():
                n_eq[g] += int(k)
        for g, f in df["no_calendar"].groupby(labels).any().items():
            no_cal[g] = no_cal[g] or bool(f)
        for g, f in df["no_data"].groupby(labels).any().items():
            no_data[g] = no_data[g] or bool(f)
        kahan_add(s, c, n, labels, df[list(ELEMENTS)].to_numpy(np.float64))
    if not gid:
        return pd.DataFrame(columns=columns)
    m = len(gid)
    dtypes = pd.concat(heads, ignore_index=True).dtypes
    sums = np.where(n[:m] > 0, s[:m], np.nan)
    # the groups' keys and zones through the same pandas steps as rollup's (so the same dtypes come out)
    small = pd.DataFrame({col: pd.Series(gid, dtype=dtypes[col]), "tz": pd.Series(tz, dtype=dtypes["tz"]),
                          "period_start": _times(ps, dtypes["period_start"]),
                          "period_end": _times(pe, dtypes["period_end"]),
                          "_g": np.arange(m)})
    g = small.groupby([col, "period_start", "period_end"], sort=True, dropna=False)
    out = g[["_g"]].first()
    # the zone of the first row: for shift that of the label met first (group numbers come in row order)
    out["tz"] = g["tz"].first() if not shift else small["tz"].iloc[g["_g"].min().to_numpy()].set_axis(out.index)
    if shift:
        small["_ls"], small["_le"] = lab_s, lab_e
        per_label = pd.DataFrame(sums, columns=list(ELEMENTS), index=pd.MultiIndex.from_frame(
            small[[col, "period_start", "period_end", "_ls", "_le"]]))
        totals = _label_totals(per_label.sort_index())
        final = g.ngroup().to_numpy()  # each label's row of the result
        both = np.concatenate(pairs) if pairs else np.empty((0, 2), np.int64)
        counted = np.unique(np.stack([final[both[:, 0]], both[:, 1]], axis=1), axis=0)[:, 0]
        n_by_row = np.bincount(counted, minlength=len(out))
        flags = pd.DataFrame({"no_calendar": no_cal, "no_data": no_data}).groupby(final).any()
    out = out.reset_index()
    at = out.pop("_g").to_numpy()
    if shift:
        out["n_equipment"] = n_by_row.astype(np.int64)
        out["no_calendar"] = flags["no_calendar"].to_numpy(bool)
        out["no_data"] = flags["no_data"].to_numpy(bool)
        for name in ELEMENTS:
            out[name] = totals[name].to_numpy()
        return out[columns]
    out["n_equipment"] = np.asarray(n_eq, np.int64)[at]
    out["no_calendar"] = np.asarray(no_cal, bool)[at]
    out["no_data"] = np.asarray(no_data, bool)[at]
    for j, name in enumerate(ELEMENTS):
        out[name] = sums[at, j]
    return out[columns]
