"""Property tests (hypothesis) of the interval algebra and the engine.

- results do not depend on how a range is split into queries;
- results do not depend on the order of records;
- a parent's elements are the sums of its children's.
"""

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import zhizao
from canonical import ORDER, write_tables
from zhizao.kpi.intervals import last_covering, resolve, split_over
from zhizao.schema import CATEGORY_PRECEDENCE

T0 = pd.Timestamp("2024-03-30T00:00:00Z")  # spans the Europe/Berlin DST change of 2024-03-31
CATS = list(CATEGORY_PRECEDENCE)
SUMMED = ["ct", "pot", "pbt", "pdt", "apt", "aust", "adet", "adet_minor", "adot", "unaccounted", "pq", "gq",
          "sq", "ideal_time", "fe", "ttr", "overlap", "outside_pbt"]


# -- the kernel alone -------------------------------------------------------------------------------------------
intervals = st.lists(st.tuples(st.integers(0, 1000), st.integers(1, 300), st.integers(0, 7)), min_size=0,
                     max_size=30)


@given(intervals, st.randoms(use_true_random=False))
def test_resolve_is_order_free_and_disjoint(ivs, rnd):
    s = np.array([a for a, d, r in ivs], np.int64)
    e = np.array([a + d for a, d, r in ivs], np.int64)
    r = np.array([r for a, d, r in ivs], np.int64)
    out = resolve(s, e, r, 8)
    perm = list(range(len(ivs)))
    rnd.shuffle(perm)
    out2 = resolve(s[perm], e[perm], r[perm], 8)
    for a, b in zip(out[:3], out2[:3]):
        assert np.array_equal(a, b)
    assert out[3] == out2[3]
    ss, se, sr, _ = out
    assert np.all(se > ss) and np.all(ss[1:] >= se[:-1])
    # every covered instant is covered by the winner, and the winner is the best rank covering it
    for t in range(0, 1300, 7):
        cover = [rr for a, b, rr in zip(s, e, r) if a <= t < b]
        i = np.flatnonzero((ss <= t) & (t < se))
        if cover:
            assert len(i) == 1 and sr[i[0]] == min(cover)
        else:
            assert len(i) == 0


@settings(max_examples=300)
@given(st.lists(st.tuples(st.integers(0, 60), st.integers(0, 80)), max_size=40),
       st.lists(st.integers(-5, 150), max_size=40))
def test_last_covering_is_the_last_interval_that_covers_a_time(ivs, t):
    """Nested, overlapping, empty and equal intervals: the answer is the brute-force one (the segment tree of the
    times the last started interval does not cover included)."""
    ivs = sorted(ivs, key=lambda x: x[0])  # sorted by start; the order among equal starts is the priority
    s = np.array([a for a, d in ivs], np.int64)
    e = np.array([a + d for a, d in ivs], np.int64)
    want = [max((i for i in range(len(ivs)) if s[i] <= x < e[i]), default=-1) for x in t]
    assert last_covering(s, e, np.array(t, np.int64)).tolist() == want


@given(st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 300)), max_size=20),
       st.lists(st.integers(1, 999), max_size=10, unique=True))
def test_split_over_conserves_what_lies_inside(ivs, cuts):
    edges = np.array([0, *sorted(cuts), 1300], np.int64)
    s = np.array([a for a, d in ivs], np.int64)
    e = np.array([a + d for a, d in ivs], np.int64)
    rec, _seg, frac = split_over(s, e, edges[:-1], edges[1:])
    total = np.bincount(rec, weights=frac, minlength=len(ivs))
    assert np.allclose(total, 1.0)  # everything lies inside [0, 1300)


# -- the engine -------------------------------------------------------------------------------------------------
@st.composite
def plants(draw):
    n_eq = draw(st.integers(1, 3))
    equipment = [{"equipment_id": f"M{i}", "work_center": f"L{i % 2}", "area": "A", "site": "S", "enterprise": "E",
                  "timezone": "Europe/Berlin"} for i in range(n_eq)]
    states, production = [], []
    for i in range(n_eq):
        t = 0
        for _ in range(draw(st.integers(1, 12))):
            t += draw(st.integers(0, 6 * 3600))
            rec = {"equipment_id": f"M{i}", "start": (T0 + pd.Timedelta(seconds=t)).isoformat(),
                   "state": draw(st.sampled_from(CATS))}
            if draw(st.booleans()):
                rec["end"] = (T0 + pd.Timedelta(seconds=t + draw(st.integers(1, 8 * 3600)))).isoformat()
            states.append(rec)
            t += 1
        for j in range(draw(st.integers(0, 4))):
            a = draw(st.integers(0, 40 * 3600))
            d = draw(st.sampled_from([0, 900, 7200]))
            p = draw(st.integers(0, 100))
            rec = {"equipment_id": f"M{i}", "end": (T0 + pd.Timedelta(seconds=a + d)).isoformat(), "order_id": f"o{j}",
                   "product_id": "P", "produced": p, "scrap": p // 10}
            if d:
                rec["start"] = (T0 + pd.Timedelta(seconds=a)).isoformat()
            production.append(rec)
    calendar = []
    if draw(st.booleans()):
        calendar = [{"scope": "S", "start": (T0 + pd.Timedelta(hours=h)).isoformat(),
                     "end": (T0 + pd.Timedelta(hours=h + 8)).isoformat(), "kind": "shift"} for h in (6, 30)]
        calendar.append({"scope": "S", "start": (T0 + pd.Timedelta(hours=10)).isoformat(),
                         "end": (T0 + pd.Timedelta(hours=10.5)).isoformat(), "kind": "break"})
    tables = {"equipment": equipment, "products": [{"product_id": "P", "pri": 30.0}],
              "states": pd.DataFrame(states, columns=["equipment_id", "start", "end", "state"])}
    if production:
        tables["production"] = pd.DataFrame(production, columns=["equipment_id", "start", "end", "order_id",
                                                                  "product_id", "produced", "scrap"])
    if calendar:
        tables["calendar"] = calendar
    return tables


def _ws(tmp_path_factory, tables, name):
    d = tmp_path_factory.mktemp(name)
    paths = write_tables(d, tables)
    ws = zhizao.connect(d / "p.duckdb")
    for t in ORDER:
        if t in paths:
            for r in ws.ingest(t, paths[t]):
                assert r.quarantined == 0, ws.quarantine().to_dict("records")
    return ws


SLOW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                         HealthCheck.too_slow])


@SLOW
@given(plants(), st.integers(1, 47))
def test_splitting_the_query_range_changes_nothing(tmp_path_factory, tables, cut_h):
    ws = _ws(tmp_path_factory, tables, "split")
    a, c = T0, T0 + pd.Timedelta(hours=48)
    b = T0 + pd.Timedelta(hours=cut_h, minutes=17)
    whole = ws.elements(period="all", start=a, end=c).set_index("equipment_id")[SUMMED]
    left = ws.elements(period="all", start=a, end=b).set_index("equipment_id")[SUMMED]
    right = ws.elements(period="all", start=b, end=c).set_index("equipment_id")[SUMMED]
    pd.testing.assert_frame_equal((left.fillna(0) + right.fillna(0)), whole.fillna(0), check_exact=False,
                                  rtol=1e-9, atol=1e-6)
    # and the days of the range (23 h on 2024-03-31) sum to the whole
    days = ws.elements(period="day", start=a, end=c).groupby("equipment_id")[SUMMED].sum()
    pd.testing.assert_frame_equal(days.fillna(0), whole.fillna(0), check_exact=False, rtol=1e-9, atol=1e-6)
    ws.close()


@SLOW
@given(plants(), st.randoms(use_true_random=False))
def test_record_order_changes_nothing(tmp_path_factory, tables, rnd):
    shuffled = {}
    for k, v in tables.items():
        df = v if isinstance(v, pd.DataFrame) else pd.DataFrame(v)
        idx = list(range(len(df)))
        rnd.shuffle(idx)
        shuffled[k] = df.iloc[idx]
    a = _ws(tmp_path_factory, tables, "ordered")
    b = _ws(tmp_path_factory, shuffled, "shuffled")
    kw = dict(period="day", start=T0, end=T0 + pd.Timedelta(hours=48))
    ea = a.elements(**kw).sort_values(["equipment_id", "period_start"], ignore_index=True)
    eb = b.elements(**kw).sort_values(["equipment_id", "period_start"], ignore_index=True)
    pd.testing.assert_frame_equal(ea, eb, check_exact=False, rtol=1e-12)
    a.close()
    b.close()


@SLOW
@given(plants())
def test_parent_elements_are_sums_of_children(tmp_path_factory, tables):
    ws = _ws(tmp_path_factory, tables, "rollup")
    kw = dict(period="day", start=T0, end=T0 + pd.Timedelta(hours=48))
    eqp = ws.elements("equipment", **kw)
    for level, col in (("work_center", "work_center"), ("site", "site")):
        parent = ws.elements(level, **kw).set_index([col, "period_start"])[SUMMED]
        ids = ws.table("equipment").set_index("equipment_id")[col]
        kids = eqp.assign(**{col: eqp["equipment_id"].map(ids)}).groupby([col, "period_start"])[SUMMED].sum(min_count=1)
        pd.testing.assert_frame_equal(parent.fillna(0), kids.fillna(0), check_exact=False, rtol=1e-12)
    # KPIs of the parent come from the sums, not from averaging the children's KPIs
    site = ws.kpi("site", **kw)
    el = ws.elements("site", **kw)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = (el["apt"] / el["pbt"]).where(el["pbt"] > 0)
    assert np.allclose(site["availability"].to_numpy(float), expected.to_numpy(float), equal_nan=True)
    ws.close()


def test_line_oee_is_from_sums_not_the_mean(make_ws):
    # reference/iso22400.md: OEE 0.80 (PBT 100) and 0.45 (PBT 300) make a line at 0.5375, not 0.625
    base = pd.Timestamp("2024-01-01T00:00:00Z")

    def states(eqid, apt_s, pbt_s):
        return [{"equipment_id": eqid, "start": base.isoformat(), "end": (base + pd.Timedelta(seconds=apt_s)).isoformat(),
                 "state": "production"},
                {"equipment_id": eqid, "start": (base + pd.Timedelta(seconds=apt_s)).isoformat(),
                 "end": (base + pd.Timedelta(seconds=pbt_s)).isoformat(), "state": "unplanned_downtime"},
                {"equipment_id": eqid, "start": (base + pd.Timedelta(seconds=pbt_s)).isoformat(),
                 "end": (base + pd.Timedelta(seconds=1000)).isoformat(), "state": "not_scheduled"}]

    ws = make_ws({
        "equipment": [{"equipment_id": "A", "work_center": "L"}, {"equipment_id": "B", "work_center": "L"}],
        "products": [{"product_id": "P", "pri": 1.0}],
        # A: PBT 100, APT 80, 80 good units at 1 s -> OEE 0.80; B: PBT 300, APT 300, 135 good -> OEE 0.45
        "states": states("A", 80, 100) + states("B", 300, 300)[0:1] + states("B", 300, 300)[2:],
        "production": [{"equipment_id": "A", "end": (base + pd.Timedelta(seconds=10)).isoformat(), "product_id": "P", "produced": 80},
                       {"equipment_id": "B", "end": (base + pd.Timedelta(seconds=10)).isoformat(), "product_id": "P", "produced": 135}],
    })
    kw = dict(period="all", start=base, end=base + pd.Timedelta(seconds=1000))
    eq = ws.kpi("equipment", **kw).set_index("equipment_id")
    assert eq.loc["A", "oee"] == pytest.approx(0.80) and eq.loc["B", "oee"] == pytest.approx(0.45)
    line = ws.kpi("work_center", **kw).iloc[0]
    assert line["oee"] == pytest.approx(0.5375)


# -- stores with ties, silent machines and mixed zones (issue 16) ------------------------------------------------
MIXED_ZONES = ["Europe/Berlin", "Asia/Shanghai", "Asia/Kolkata", "UTC", "America/Chicago"]


@st.composite
def mixed_plants(draw):
    """Stores where records share starts (open and closed), some machines are silent (no state; maybe counts)
    under calendars booked at any level, and the machines of one work centre, site and enterprise are in
    different zones (a half-hour zone among them)."""
    n_eq = draw(st.integers(2, 4))
    equipment = [{"equipment_id": f"M{i}", "work_center": f"L{i % 2}", "area": f"A{i % 2}", "site": "S",
                  "enterprise": "E", "timezone": draw(st.sampled_from(MIXED_ZONES))} for i in range(n_eq)]
    silent = draw(st.sets(st.integers(0, n_eq - 1), max_size=n_eq - 1))
    states, production = [], []
    for i in range(n_eq):
        if i in silent:
            if draw(st.booleans()):
                production.append({"equipment_id": f"M{i}", "start": (T0 + pd.Timedelta(hours=9)).isoformat(),
                                   "end": (T0 + pd.Timedelta(hours=11)).isoformat(), "order_id": "o", "product_id": "P",
                                   "produced": 10, "scrap": 1})
            continue
        t = 0
        for _ in range(draw(st.integers(1, 8))):
            t += draw(st.sampled_from([0, 0, 300, 3600, 5 * 3600]))  # 0: shares the previous start
            rec = {"equipment_id": f"M{i}", "start": (T0 + pd.Timedelta(seconds=t)).isoformat(),
                   "state": draw(st.sampled_from(CATS))}
            if draw(st.booleans()):
                rec["end"] = (T0 + pd.Timedelta(seconds=t + draw(st.sampled_from([60, 299, 300, 7200])))).isoformat()
            if all((r["equipment_id"], r["start"], r["state"]) != (rec["equipment_id"], rec["start"], rec["state"])
                   for r in states):  # the same record twice is a duplicate (quarantined)
                states.append(rec)
    scope = draw(st.sampled_from([None, "S", "L0", "A1", "E", "M0"]))
    calendar = []
    if scope:
        calendar = [{"scope": scope, "start": (T0 + pd.Timedelta(hours=h)).isoformat(),
                     "end": (T0 + pd.Timedelta(hours=h + 8)).isoformat(), "kind": "shift"} for h in (6, 30)]
    tables = {"equipment": equipment, "products": [{"product_id": "P", "pri": 30.0}],
              "states": pd.DataFrame(states, columns=["equipment_id", "start", "end", "state"])}
    if production:
        tables["production"] = pd.DataFrame(production)
    if calendar:
        tables["calendar"] = calendar
    return tables


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(mixed_plants(), st.integers(1, 47), st.randoms(use_true_random=False))
def test_ties_silent_machines_and_zones_keep_the_invariants(tmp_path_factory, tables, cut_h, rnd):
    ws = _ws(tmp_path_factory, tables, "mixed")
    a, c = T0, T0 + pd.Timedelta(hours=48)
    b = T0 + pd.Timedelta(hours=cut_h, minutes=17)
    whole = ws.elements(period="all", start=a, end=c).set_index("equipment_id")[SUMMED]
    left = ws.elements(period="all", start=a, end=b).set_index("equipment_id")[SUMMED]
    right = ws.elements(period="all", start=b, end=c).set_index("equipment_id")[SUMMED]
    pd.testing.assert_frame_equal(left.fillna(0) + right.fillna(0), whole.fillna(0), check_exact=False,
                                  rtol=1e-9, atol=1e-6)
    # time is conserved inside planned busy time: every second of PBT is in one element or unaccounted
    w = whole.dropna(subset=["pbt"])
    assert np.allclose(w["apt"] + w["aust"] + w["adet"] + w["adot"] + w["unaccounted"], w["pbt"])
    # the order of the records (ties included) changes nothing
    shuffled = {k: (v if isinstance(v, pd.DataFrame) else pd.DataFrame(v)).sample(frac=1, random_state=rnd.randint(0, 99))
                for k, v in tables.items()}
    ws2 = _ws(tmp_path_factory, shuffled, "mixed2")
    kw = dict(period="day", start=a, end=c)
    e1 = ws.elements(**kw).sort_values(["equipment_id", "period_start"], ignore_index=True)
    e2 = ws2.elements(**kw).sort_values(["equipment_id", "period_start"], ignore_index=True)
    pd.testing.assert_frame_equal(e1, e2, check_exact=False, rtol=1e-12)
    # every machine under a calendar has time elements; one row per entity and period at every level; the
    # parents' sums are the children's
    eqp = ws.elements("equipment", **kw)
    for level, p in (("work_center", "day"), ("area", "all"), ("site", "day"), ("enterprise", "hour"),
                     ("enterprise", "all")):
        el = ws.elements(level, period=p, start=a, end=c)
        assert not el.duplicated([level, "period_start"]).any()
        kids = ws.elements("equipment", period=p, start=a, end=c)[SUMMED].sum()
        assert np.allclose(el[SUMMED].sum().to_numpy(float), kids.to_numpy(float))
    if "calendar" in tables:
        scope = tables["calendar"][0]["scope"]
        under = {e["equipment_id"] for e in tables["equipment"] if scope in e.values()}
        assert eqp.loc[eqp["equipment_id"].isin(under), "pbt"].notna().all()
    ws.close()
    ws2.close()
