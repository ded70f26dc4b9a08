"""The engine's fast kernels against plain reference implementations.

- :func:`zhizao.kpi.intervals.time_between` (time per rank inside each window) against a direct sum;
- :func:`zhizao.kpi.intervals.split_over` on its one-segment fast path against the general path;
- the end of state records without ``end`` (:mod:`zhizao.kpi.states`), records that start at the same
  instant included, against the rule written out by hand;
- the formatting of period bounds (``zhizao.api._local``) against ``Timestamp.isoformat``;
- the joining of null reasons (``zhizao.kpi.kpis._join_notes``) against a per-row join.
"""

import numpy as np
import pandas as pd
import pytest
from canonical import build
from hypothesis import given, settings
from hypothesis import strategies as st

from zhizao.api import _local
from zhizao.kpi.intervals import split_over, time_between
from zhizao.kpi.kpis import _join_notes

# -- time_between -----------------------------------------------------------------------------------------------
segments = st.lists(st.tuples(st.integers(0, 50), st.integers(1, 40), st.integers(0, 3)), max_size=25)


@given(segments, st.lists(st.integers(-10, 1500), max_size=30))
def test_time_between_is_the_time_of_each_rank_inside_each_window(segs, points):
    # disjoint segments from gaps and lengths
    s, e, r, t = [], [], [], 0
    for gap, length, rank in segs:
        t += gap
        s.append(t)
        e.append(t + length)
        r.append(rank)
        t += length
    s, e, r = (np.array(x, np.int64) for x in (s, e, r))
    cuts = np.sort(np.array(points, np.int64))
    got = time_between(s, e, r, 4, cuts)
    assert got.shape == (max(cuts.size - 1, 0), 4)
    for k in range(cuts.size - 1):
        a, b = cuts[k], cuts[k + 1]
        for rank in range(4):
            expected = sum(max(0, min(y, b) - max(x, a)) for x, y, rr in zip(s, e, r) if rr == rank)
            assert got[k, rank] == expected


def test_time_between_of_nothing_is_zero():
    z = np.empty(0, np.int64)
    assert np.array_equal(time_between(z, z, z, 3, np.array([1, 2, 5])), np.zeros((2, 3)))


# -- split_over: the fast path (every interval meets one segment) equals the general path --------------------------
@given(st.lists(st.tuples(st.integers(0, 1200), st.integers(0, 99)), min_size=1, max_size=30))
def test_split_over_fast_path_equals_general_path(ivs):
    edges = np.arange(0, 1400, 100, dtype=np.int64)
    s = np.array([a for a, d in ivs], np.int64)
    e = np.array([min(a + d, (a // 100 + 1) * 100) for a, d in ivs], np.int64)  # inside one bucket
    rec, seg, frac = split_over(s, e, edges[:-1], edges[1:])
    # the general path, forced by adding one interval over three buckets
    s2, e2 = np.r_[s, 50], np.r_[e, 350]
    rec2, seg2, frac2 = split_over(s2, e2, edges[:-1], edges[1:])
    keep = rec2 < len(ivs)
    assert np.array_equal(rec, rec2[keep]) and np.array_equal(seg, seg2[keep])
    assert np.allclose(frac, frac2[keep])
    assert np.allclose(frac, 1.0)


# -- the end of a state record without end ------------------------------------------------------------------------
EQ = [{"equipment_id": "M1", "work_center": "L1", "area": "A", "site": "S", "enterprise": "E", "timezone": "UTC"}]


def _states(tmp_path, rows):
    ws = build(tmp_path, {"equipment": EQ, "states": pd.DataFrame(rows, columns=["equipment_id", "start", "end",
                                                                                 "state"])})
    el = ws.elements(period="all", start="2024-05-01T00:00:00Z", end="2024-05-02T00:00:00Z").iloc[0]
    ws.close()
    return el


def test_records_starting_at_the_same_instant_last_by_state_name(tmp_path):
    # the ordering is by start, then raw state: of 'production' and 'setup' at 08:00, 'setup' is later and
    # lasts until the next record at 09:00; 'production' ends where 'setup' starts (no time)
    el = _states(tmp_path, [
        ["M1", "2024-05-01T08:00:00Z", None, "setup"],
        ["M1", "2024-05-01T08:00:00Z", None, "production"],
        ["M1", "2024-05-01T09:00:00Z", None, "production"],
        ["M1", "2024-05-01T10:00:00Z", "2024-05-01T10:00:01Z", "no_order"],
    ])
    assert el["aust"] == 3600.0
    assert el["apt"] == 3600.0  # 09:00-10:00
    assert el["adot"] == 1.0
    assert el["overlap"] == 0.0


def test_a_record_with_end_at_the_same_instant_cuts_the_one_without(tmp_path):
    # 'production' without end and 'setup' with end, both at 08:00: ordered by state, 'production' comes
    # first and ends at 'setup''s start; 'setup' keeps its own end; the horizon is the latest time stamp
    el = _states(tmp_path, [
        ["M1", "2024-05-01T08:00:00Z", None, "production"],
        ["M1", "2024-05-01T08:00:00Z", "2024-05-01T08:30:00Z", "setup"],
    ])
    assert el["aust"] == 1800.0
    assert el["apt"] == 0.0
    assert el["unaccounted"] == 86400.0 - 1800.0


@settings(max_examples=30, deadline=None)
@given(st.permutations(list(range(5))))
def test_same_instant_records_give_the_same_result_in_any_insertion_order(tmp_path_factory, perm):
    rows = [
        ["M1", "2024-05-01T08:00:00Z", None, "setup"],
        ["M1", "2024-05-01T08:00:00Z", None, "production"],
        ["M1", "2024-05-01T08:00:00Z", None, "minor_stop"],
        ["M1", "2024-05-01T09:00:00Z", None, "production"],
        ["M1", "2024-05-01T11:00:00Z", "2024-05-01T11:00:00.5Z", "no_order"],
    ]
    el = _states(tmp_path_factory.mktemp("p"), [rows[i] for i in perm])
    assert (el["aust"], el["apt"], el["adet"]) == (3600.0, 7200.0, 0.0)


# -- period bounds as ISO 8601 with the plant's offset -----------------------------------------------------------
ZONES = ["UTC", "Europe/Berlin", "Asia/Shanghai", "Asia/Kolkata", "America/St_Johns", "Australia/Lord_Howe",
         "Europe/Amsterdam", "America/New_York"]


@given(st.lists(st.tuples(st.integers(-2_500_000_000, 4_000_000_000), st.sampled_from(ZONES),
                          st.sampled_from([0, 0, 0, 250_000])), min_size=1, max_size=40))
def test_period_bounds_format_like_isoformat(rows):
    ts = pd.Series(pd.to_datetime([s * 10**9 + us * 1000 for s, _z, us in rows], utc=True))
    tz = pd.Series([z for _s, z, _us in rows])
    expected = [t.tz_convert(z).isoformat() for t, z in zip(ts, tz)]
    assert _local(ts, tz) == expected


# -- null reasons -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_notes", [3, 40, 70])  # one packed integer per row, and the sorting fallback
def test_null_reasons_are_joined_per_row_in_order(n_notes):
    rng = np.random.default_rng(n_notes)
    n = 200
    notes = [(f"k{j}: why {j}", rng.random(n) < 0.3) for j in range(n_notes)]
    expected = ["; ".join(t for t, m in notes if m[i]) or None for i in range(n)]
    assert _join_notes(notes, n) == expected


# -- the default range holds every record ------------------------------------------------------------------------
@pytest.mark.parametrize("period", ["hour", "day", "week", "month", "all"])
def test_counts_stamped_at_the_end_of_the_data_are_inside_the_default_range(tmp_path, period):
    # the last count is stamped exactly at a midnight (a bucket bound of every period): a half-open default
    # range ending there would leave it out; every period must count all 12 units
    ws = build(tmp_path, {
        "equipment": EQ,
        "states": [{"equipment_id": "M1", "start": "2024-05-01T06:00:00Z", "state": "production"}],
        "production": [{"equipment_id": "M1", "end": "2024-05-01T12:00:00Z", "order_id": "o", "product_id": "P",
                        "produced": 5},
                       {"equipment_id": "M1", "end": "2024-05-06T00:00:00Z", "order_id": "o", "product_id": "P",
                        "produced": 7}],
    })
    el = ws.elements(period=period)
    assert el["pq"].sum() == 12
    ws.close()
