"""The engine's fast kernels against plain reference implementations.

- :func:`zhizao.kpi.intervals.time_between` (time per rank inside each window) against a direct sum;
- :func:`zhizao.kpi.intervals.split_over` on its one-segment fast path against the general path;
- time stamps with nulls read from Arrow's validity bitmap (``zhizao.kpi.columns.epoch_ms_or_null``) against
  pyarrow, for chunked and sliced columns;
- the end of state records without ``end`` (:mod:`zhizao.kpi.states`), records that start at the same
  instant included, against the rule written out by hand;
- each production record's pri and unit value (``zhizao.kpi.production``): the equipment's own product
  entry field by field, else the general entry, against a hand-made table;
- production counts split over buckets, whole, across a bucket bound, at an instant and outside the range, in
  any mix (the whole-record fast path against the split);
- a query range without any bucket (shift buckets where no shift is): an empty table;
- the calendar layers (``zhizao.kpi.calendar_layers``) from entries booked at every level, against hand-computed
  pot, pdt, pbt and pmt;
- the state work split into parts of whole equipment, taken in turn by two threads, against one part;
- the loss-reason table (``ws.stop_reasons``) against a per-record sum, in any insertion order, with ties
  and with a query window that cuts records off;
- the formatting of period bounds (``zhizao.api._local``) against ``Timestamp.isoformat``;
- the joining of null reasons (``zhizao.kpi.kpis._join_notes``) against a per-row join.
"""

from itertools import pairwise

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import zhizao
from canonical import build
from zhizao.api import _local
from zhizao.kpi.intervals import split_over, time_between
from zhizao.kpi.kpis import _join_notes
from zhizao.schema import CATEGORY_PRECEDENCE

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


# -- time stamps with nulls -------------------------------------------------------------------------------------
@given(st.lists(st.one_of(st.none(), st.integers(-2**40, 2**40)), min_size=1, max_size=40),
       st.integers(0, 39), st.integers(0, 40), st.sampled_from(["us", "ms"]))
def test_epoch_ms_or_null_reads_the_validity_bitmap(values, cut, offset, unit):
    import pyarrow as pa

    from zhizao.kpi.columns import epoch_ms_or_null

    arr = pa.array(values, pa.int64()).cast(pa.timestamp(unit, tz="UTC"))
    # two chunks, or one array sliced (an offset into its buffers)
    col = pa.chunked_array([arr[:cut], arr[cut:]]) if 0 < cut < len(values) else arr.slice(min(offset, len(values)))
    ms, valid = epoch_ms_or_null(col)
    expected = [None if v is None else pd.Timestamp(v).value // 1_000_000 for v in col.to_pylist()]
    assert ms.dtype == np.int64 and valid.dtype == bool
    assert valid.tolist() == [v is not None for v in expected]
    assert ms.tolist() == [0 if v is None else v for v in expected]


# -- the end of a state record without end ------------------------------------------------------------------------
EQ = [{"equipment_id": "M1", "work_center": "L1", "area": "A", "site": "S", "enterprise": "E", "timezone": "UTC"}]


def _states(tmp_path, rows):
    ws = build(tmp_path, {"equipment": EQ, "states": pd.DataFrame(rows, columns=["equipment_id", "start", "end",
                                                                                 "state"])})
    el = ws.elements(period="all", start="2024-05-01T00:00:00Z", end="2024-05-02T00:00:00Z").iloc[0]
    ws.close()
    return el


def test_open_records_starting_at_the_same_instant_overlap_and_precedence_decides(tmp_path):
    # issue 16: records that share a start overlap; both open ones last until the next strictly later start
    # (09:00); setup outranks production, whatever the raw names or the order of the records
    el = _states(tmp_path, [
        ["M1", "2024-05-01T08:00:00Z", None, "setup"],
        ["M1", "2024-05-01T08:00:00Z", None, "production"],
        ["M1", "2024-05-01T09:00:00Z", None, "production"],
        ["M1", "2024-05-01T10:00:00Z", "2024-05-01T10:00:01Z", "no_order"],
    ])
    assert el["aust"] == 3600.0
    assert el["apt"] == 3600.0  # 09:00-10:00
    assert el["adot"] == 1.0
    assert el["overlap"] == 3600.0  # 08:00-09:00 is covered twice (flagged)


def test_an_open_record_sharing_its_start_with_the_last_record_lasts_until_the_horizon(tmp_path):
    # 'production' without end and 'setup' with end, both at 08:00: no record starts later, so 'production'
    # lasts until the horizon (08:30, the latest time stamp); setup outranks it there. Without a calendar the
    # machine is scheduled over its data extent, 08:00-08:30, so nothing is unaccounted
    el = _states(tmp_path, [
        ["M1", "2024-05-01T08:00:00Z", None, "production"],
        ["M1", "2024-05-01T08:00:00Z", "2024-05-01T08:30:00Z", "setup"],
    ])
    assert el["aust"] == 1800.0
    assert el["apt"] == 0.0
    assert el["overlap"] == 1800.0
    assert (el["pot"], el["pbt"], el["unaccounted"]) == (1800.0, 1800.0, 0.0)


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
    # the three open records at 08:00 last until 09:00; minor_stop outranks setup and production there
    assert (el["aust"], el["apt"], el["adet"], el["adet_minor"]) == (0.0, 7200.0, 3600.0, 3600.0)
    assert el["overlap"] == 3600.0


# -- products' ideal rates and values per record ---------------------------------------------------------------
def test_a_records_pri_and_value_come_from_its_own_product_entry_else_the_general_one(tmp_path):
    # P: general pri 10 s, value 2; M1's own entry of P gives pri 5 and no value (the general value holds).
    # Q: only M2's own entry (pri 3, value 7): on M1, Q has neither. R is not in the table; one count has
    # no product. Each count of 1 unit is good; the records of each machine are a second apart.
    products = [{"product_id": "P", "pri": 10.0, "unit_value": 2.0},
                {"product_id": "P", "equipment_id": "M1", "pri": 5.0},
                {"product_id": "Q", "equipment_id": "M2", "pri": 3.0, "unit_value": 7.0}]
    counts = {"M1": ["P", "Q", "R", None], "M2": ["P", "Q", "R", None]}
    production = [{"equipment_id": m, "end": f"2024-05-01T08:00:0{i}Z", "product_id": prod, "produced": 1}
                  for m, prods in counts.items() for i, prod in enumerate(prods)]
    ws = build(tmp_path, {"equipment": [dict(EQ[0]), dict(EQ[0], equipment_id="M2")],
                          "products": pd.DataFrame(products), "production": pd.DataFrame(production)})
    el = ws.elements(period="all", start="2024-05-01T00:00:00Z", end="2024-05-02T00:00:00Z").set_index("equipment_id")
    ws.close()
    expected = {  # (ideal_time [s], pq_no_pri, output_value)
        "M1": (5.0, 3.0, 2.0),  # P: pri 5 (own), value 2 (general); Q, R, none: no pri, no value
        "M2": (10.0 + 3.0, 2.0, 2.0 + 7.0),  # P general; Q own; R and none without
    }
    for m, (ideal, no_pri, value) in expected.items():
        assert (el.loc[m, "ideal_time"], el.loc[m, "pq_no_pri"], el.loc[m, "output_value"]) == (ideal, no_pri, value)
        assert el.loc[m, "pq"] == 4.0


# -- production counts over buckets --------------------------------------------------------------------------
@pytest.mark.parametrize("with_outside", [False, True])
@pytest.mark.parametrize("with_spanning", [False, True])
def test_counts_split_over_buckets_in_any_mix(tmp_path, with_outside, with_spanning):
    # a count over 23:00-01:00 goes half to each day; one before the range goes nowhere; the others are whole
    rows = [{"equipment_id": "M1", "start": "2024-05-01T08:00:00Z", "end": "2024-05-01T09:00:00Z", "produced": 10},
            {"equipment_id": "M1", "end": "2024-05-02T12:00:00Z", "produced": 7, "scrap": 1}]
    expected_pq, expected_sq = [10.0, 7.0], [0.0, 1.0]
    if with_spanning:
        rows.append({"equipment_id": "M1", "start": "2024-05-01T23:00:00Z", "end": "2024-05-02T01:00:00Z",
                     "produced": 100, "scrap": 4})
        expected_pq, expected_sq = [60.0, 57.0], [2.0, 3.0]
    if with_outside:
        rows.insert(0, {"equipment_id": "M1", "end": "2024-04-20T12:00:00Z", "produced": 1000, "scrap": 999})
    ws = build(tmp_path, {"equipment": EQ, "production": pd.DataFrame(rows)})
    el = ws.elements(period="day", start="2024-05-01T00:00:00Z", end="2024-05-03T00:00:00Z")
    ws.close()
    assert el["pq"].tolist() == expected_pq and el["sq"].tolist() == expected_sq


# -- a query range without any bucket -------------------------------------------------------------------------
def test_shift_buckets_of_a_range_without_shifts_are_none(tmp_path):
    # shifts exist (on 1 May) but none in the range (1 June), where a break, states and a count are: no bucket,
    # an empty table, no error (the windows, the state work and the production split have nothing to hold)
    calendar = [{"scope": "S", "kind": "shift", "start": "2024-05-01T06:00:00Z", "end": "2024-05-01T14:00:00Z"},
                {"scope": "S", "kind": "break", "start": "2024-06-01T10:00:00Z", "end": "2024-06-01T11:00:00Z"}]
    states = [["M1", "2024-05-01T00:00:00Z", None, "production"], ["M1", "2024-06-01T00:00:00Z", None, "setup"],
              ["M1", "2024-06-02T00:00:00Z", "2024-06-02T00:00:01Z", "setup"]]
    ws = build(tmp_path, {"equipment": EQ, "calendar": pd.DataFrame(calendar),
                          "states": pd.DataFrame(states, columns=["equipment_id", "start", "end", "state"]),
                          "production": pd.DataFrame([{"equipment_id": "M1", "end": "2024-06-01T12:00:00Z",
                                                       "produced": 5}])})
    window = {"start": "2024-06-01T00:00:00Z", "end": "2024-06-02T00:00:00Z"}
    raw = ws.elements_raw("shift", **window)
    assert raw.elements.empty and raw.reasons.empty
    assert ws.kpi(level="site", period="shift", **window).empty
    assert len(ws.elements(period="day", **window)) == 1  # the same range has a day bucket
    ws.close()


# -- shift buckets and the stored hours' parts ---------------------------------------------------------------
_shifts = st.lists(st.tuples(st.integers(0, 40), st.integers(1, 20)), max_size=8)


def _spans_of(entries, w0, w1):
    """:func:`zhizao.kpi.elements.shift_spans` and the hour parts (:data:`HOUR_PARTS`, hours of 6 units here: the
    zone UTC, a unit 10 minutes) of one entity with shift ``entries`` [(start, length)] over [w0, w1) units."""
    import duckdb

    from zhizao.kpi.elements import HOUR_PARTS, bucket_table, shift_spans

    unit = 600_000
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE TABLE calendar (scope VARCHAR, kind VARCHAR, start TIMESTAMPTZ, \"end\" TIMESTAMPTZ)")
    for a, d in entries:
        con.execute("INSERT INTO calendar VALUES ('S', 'shift', make_timestamp(?), make_timestamp(?))",
                    [a * unit * 1000, (a + d) * unit * 1000])
    ent = pd.DataFrame({"key": [0], "entity_id": ["M1"], "equipment_id": ["M1"], "work_center": ["L"],
                        "area": ["A"], "site": ["S"], "enterprise": ["E"], "tz": ["UTC"],
                        "w0": [w0 * unit], "w1": [w1 * unit]})
    con.register("_zz_ent", ent)
    spans = shift_spans(con, ent)
    parts = bucket_table(con, ent, HOUR_PARTS)
    con.close()
    return ([(int(s) // unit, int(e) // unit) for s, e in zip(spans["s"], spans["e"])],
            [(int(s) // unit, int(e) // unit) for s, e in zip(parts["start_ms"], parts["end_ms"])])


@settings(max_examples=200, deadline=None)
@given(_shifts, st.integers(0, 30), st.integers(1, 30))
def test_shift_buckets_inside_a_range_do_not_depend_on_the_range(entries, a, n):
    """The shift buckets of a range ``[a, a + n)`` are those of a wider range clipped to it, however the shift
    entries overlap (a later one starts where the earlier ones end, in the entries' own order: a range that
    clips an entry's start never reorders them); and the stored hours' parts of the range are its whole hours
    cut at exactly those buckets' bounds."""
    wide, _ = _spans_of(entries, -10, 80)
    spans, parts = _spans_of(entries, a, a + n)
    clipped = [(max(s, a), min(e, a + n)) for s, e in wide if min(e, a + n) > max(s, a)]
    assert spans == clipped
    edges = sorted({a, a + n, *(h for h in range(0, 90, 6) if a < h < a + n),
                    *(x for s, e in spans for x in (s, e))})
    assert parts == list(pairwise(edges))


def test_an_entry_inside_an_earlier_one_that_the_range_clips_stays_inside_it():
    """Shift A 00:00-05:00 (units of 10 min) and B 01:00-03:00 inside it: B is no bucket of its own, whether the
    range starts before A or inside it (sorting after clipping made B the first of the range 02:00-...)."""
    entries = [(0, 30), (6, 12)]
    assert _spans_of(entries, -6, 60)[0] == [(0, 30)]
    assert _spans_of(entries, 12, 60)[0] == [(12, 30)]


# -- the calendar booked at every level ----------------------------------------------------------------------
def test_calendar_entries_of_every_level_hold_for_the_equipment_below(tmp_path):
    # M1 (L1 < A < S < E): shift 06-18 at E and again at A (united), holiday 16-20 at S, break 10-11 at L1,
    # planned downtime 10:30-12 at M1 (maintenance wins over the break). M2 (another site) has none.
    def entry(scope, kind, a, b):
        return {"scope": scope, "kind": kind, "start": f"2024-05-01T{a}:00Z", "end": f"2024-05-01T{b}:00Z"}
    calendar = [entry("E", "shift", "06:00", "18:00"), entry("A", "shift", "06:00", "18:00"),
                entry("S", "holiday", "16:00", "20:00"), entry("L1", "break", "10:00", "11:00"),
                entry("M1", "planned_downtime", "10:30", "12:00")]
    states = [[m, "2024-05-01T00:00:00Z", "2024-05-02T00:00:00Z", "production"] for m in ("M1", "M2")]
    ws = build(tmp_path, {
        "equipment": [dict(EQ[0], area="A"), dict(EQ[0], equipment_id="M2", work_center="L2", area="A2", site="S2",
                                                  enterprise="E2")],
        "calendar": pd.DataFrame(calendar),
        "states": pd.DataFrame(states, columns=["equipment_id", "start", "end", "state"])})
    el = ws.elements(period="all", start="2024-05-01T00:00:00Z", end="2024-05-02T00:00:00Z").set_index("equipment_id")
    ws.close()
    H = 3600.0
    m1 = el.loc["M1"]
    assert (m1["pot"], m1["pdt"], m1["pbt"], m1["pmt"]) == (10 * H, 2 * H, 8 * H, 1.5 * H)
    assert (m1["apt"], m1["outside_pbt"], bool(m1["no_calendar"])) == (8 * H, 16 * H, False)
    m2 = el.loc["M2"]
    assert (m2["pot"], m2["pdt"], m2["pbt"], m2["apt"], bool(m2["no_calendar"])) == (24 * H, 0.0, 24 * H, 24 * H, True)


# -- the state records in parts on two threads ------------------------------------------------------------------
@pytest.mark.parametrize("n_parts", [2, 6, 50])
@pytest.mark.parametrize("window", [(None, None), ("2025-03-04T05:30:00Z", "2025-03-06T17:00:00Z")])
def test_state_work_in_parts_equals_one_part(tmp_path, monkeypatch, window, n_parts):
    from zhizao.kpi import elements as engine
    from zhizao.kpi.elements import compute_elements
    from zhizao.simulate import simulate_plant, write_plant

    paths = write_plant(simulate_plant(machines=7, days=5, seed=3), tmp_path / "p")
    ws = zhizao.connect(tmp_path / "s.duckdb")
    for t in ("equipment", "products", "calendar", "states", "production"):
        ws.ingest(t, paths[t])
    one = compute_elements(ws.con, "hour", *window)
    monkeypatch.setattr(engine, "PARALLEL_STATES", 1)
    monkeypatch.setattr(engine, "STATE_PARTS", n_parts)  # 50: more parts than equipment
    two = compute_elements(ws.con, "hour", *window)
    ws.close()
    pd.testing.assert_frame_equal(one.elements, two.elements, check_exact=True)
    assert len(one.reasons) > 0
    pd.testing.assert_frame_equal(one.reasons, two.reasons, check_exact=True)


def test_a_failure_before_the_windows_reaches_the_caller_without_hanging_the_second_part(tmp_path, monkeypatch):
    from zhizao.kpi import elements as engine
    from zhizao.simulate import simulate_plant, write_plant

    paths = write_plant(simulate_plant(machines=3, days=2, seed=3), tmp_path / "p")
    ws = zhizao.connect(tmp_path / "s.duckdb")
    for t in ("equipment", "calendar", "states"):
        ws.ingest(t, paths[t])
    monkeypatch.setattr(engine, "PARALLEL_STATES", 1)

    def broken(*args, **kw):
        raise ValueError("calendar broken on purpose")

    monkeypatch.setattr(engine, "calendar_layers", broken)
    with pytest.raises(ValueError, match="on purpose"):
        engine.compute_elements(ws.con, "day")
    ws.close()


# -- loss reasons ----------------------------------------------------------------------------------------------
LOSS_CATEGORIES = {"unplanned_downtime", "setup", "no_order"}
DAY0 = pd.Timestamp("2024-05-01T00:00:00Z")


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["M1", "M2"]), st.integers(10, 120),
                          st.sampled_from(["production", "setup", "no_order", "unplanned_downtime"]),
                          st.sampled_from([None, "jam", "tool change", "no material"])), min_size=1, max_size=14),
       st.randoms(use_true_random=False), st.booleans(), st.booleans())
def test_loss_reasons_are_the_reasons_of_the_records_in_any_order(tmp_path_factory, recs, rnd, tie, cut):
    # per equipment, records follow each other (durations of 10 to 120 min, longer than the minor-stop
    # threshold); the last one carries an end. Each record's time inside the window goes to its category and
    # reason. A tie adds a zero-length record of another category at the first record's start (ordered
    # before it by raw state name, so it ends where it starts).
    rows, expected = [], {}
    w0, w1 = (DAY0 + pd.Timedelta(minutes=45), DAY0 + pd.Timedelta(hours=6)) if cut else (DAY0, DAY0 + pd.Timedelta(days=1))
    t = {"M1": DAY0 + pd.Timedelta(minutes=5), "M2": DAY0 + pd.Timedelta(minutes=7)}
    last = {}
    for i, (eq, minutes, cat, reason) in enumerate(recs):
        a, b = t[eq], t[eq] + pd.Timedelta(minutes=minutes)
        rows.append([eq, a.isoformat(), None, cat, cat, reason])
        last[eq] = len(rows) - 1
        t[eq] = b
        if i == 0 and tie:
            # an open record of another category at the first record's start (its raw state sorts first): it
            # lasts as long as the first record (until the next later start, or the horizon at its end), and
            # the higher-ranked of the two categories occupies the time with its own record's reason
            other = "no_order" if cat != "no_order" else "setup"
            rows.append([eq, a.isoformat(), None, "a " + other, other, "tie"])
            if CATEGORY_PRECEDENCE.index(other) < CATEGORY_PRECEDENCE.index(cat):
                cat, reason = other, "tie"
        lo, hi = max(a, w0), min(b, w1)
        if cat in LOSS_CATEGORIES and hi > lo:
            key = (eq, cat, reason or "")
            expected[key] = expected.get(key, 0.0) + (hi - lo).total_seconds()
    for eq, i in last.items():
        rows[i][2] = t[eq].isoformat()
    rnd.shuffle(rows)
    ws = build(tmp_path_factory.mktemp("r"), {
        "equipment": [dict(EQ[0]), dict(EQ[0], equipment_id="M2")],
        "states": pd.DataFrame(rows, columns=["equipment_id", "start", "end", "state", "category", "reason"])})
    got = ws.stop_reasons(level="equipment", period="all", start=w0.isoformat(), end=w1.isoformat())
    ws.close()
    got = {(r.equipment_id, r.category, r.reason): r.seconds for r in got.itertuples() if r.seconds > 0}
    assert got == pytest.approx(expected)


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
