"""The readings of the ISO 22400 time model that the specification leaves open (issue 16), each tested over
its whole kind: ties of state records, silent machines under calendars, entities spanning time zones,
holiday-only calendars, full breakdowns, failure events, scrap from good counts; then naive local times:
flagged ones in the data-quality table, the zone label of a group's rows, calendars of scopes spanning zones.

See docs/reference/iso22400.md, "Readings".
"""

import itertools

import numpy as np
import pandas as pd
import pytest

from canonical import build
from zhizao.schema import CATEGORY_PRECEDENCE, LEVEL_ID_COLUMN, LEVELS

H = 3600.0
DAY = "2024-05-06"


def _t(hhmm: str, day: str = DAY) -> str:
    return f"{day}T{hhmm}:00Z"


# -- 1. records that share a start: precedence decides, never the label ------------------------------------------
def _time_of(el: pd.Series, cat: str) -> float:
    """Time [s] the category occupies in a row of elements (no calendar: everything is inside pot)."""
    return {"production": el["apt"], "setup": el["aust"], "unplanned_downtime": el["ttr"],
            "minor_stop": el["adet_minor"], "no_order": el["adot"], "planned_downtime": el["pmt"],
            "unscheduled": el["unscheduled"], "not_scheduled": el["ct"] - el["pot"]}[cat]


def test_ties_of_every_pair_of_categories_in_both_label_orders(tmp_path):
    # one machine per (first category, second category, label order, variant): both records start at 10:00;
    # variant 'open': both without end; variant 'closed': the second ends at 10:04 (the issue's example). A
    # no_order record at 12:00-12:01 is the next later start and the horizon. The open record(s) last until
    # 12:00; from 10:00 the higher-ranked category of the two occupies the time, whatever the raw names.
    eq, states, cases = [], [], {}
    cats = list(CATEGORY_PRECEDENCE)
    for n, (c1, c2, swap, variant) in enumerate(itertools.product(cats, cats, (False, True), ("open", "closed"))):
        m = f"M{n:03d}"
        eq.append({"equipment_id": m, "timezone": "UTC"})
        names = ("A-state", "Z-state") if not swap else ("Z-state", "A-state")
        states.append([m, _t("10:00"), None, names[0], c1])
        states.append([m, _t("10:00"), _t("10:04") if variant == "closed" else None, names[1], c2])
        states.append([m, _t("12:00"), _t("12:01"), "idle", "no_order"])
        cases[m] = (c1, c2, variant)
    ws = build(tmp_path, {"equipment": eq, "states": pd.DataFrame(
        states, columns=["equipment_id", "start", "end", "state", "category"])})
    el = ws.elements(period="all", start=_t("10:00"), end=_t("12:01")).set_index("equipment_id")
    ws.close()
    rank = CATEGORY_PRECEDENCE.index
    for m, (c1, c2, variant) in cases.items():
        row = el.loc[m]
        expect = dict.fromkeys(cats, 0.0)
        expect["no_order"] += 60.0
        if variant == "open":
            expect[min(c1, c2, key=rank)] += 2 * H
        else:  # 10:00-10:04 both; 10:04-12:00 the open one alone
            expect[min(c1, c2, key=rank)] += 240.0
            expect[c1] += 2 * H - 240.0
        if expect["unplanned_downtime"] and expect["unplanned_downtime"] < 300:
            expect["minor_stop"] += expect.pop("unplanned_downtime")  # a run below the threshold
            expect["unplanned_downtime"] = 0.0
        got = {c: _time_of(row, c) for c in cats}
        assert got == pytest.approx(expect), (m, c1, c2, variant)
        assert row["overlap"] == (2 * H if variant == "open" else 240.0)


def test_the_issue_example_gives_the_same_result_under_either_raw_name(make_ws):
    out = []
    for run in ("RUN", "ZRUN"):
        ws = make_ws({"equipment": [{"equipment_id": "M1", "timezone": "UTC"}],
                      "states": pd.DataFrame([["M1", _t("10:00"), None, run, "production"],
                                              ["M1", _t("10:00"), _t("10:04"), "STOP", "unplanned_downtime"],
                                              ["M1", _t("12:00"), _t("12:01"), "IDLE", "no_order"]],
                                             columns=["equipment_id", "start", "end", "state", "category"])})
        k = ws.kpi(period="all", start=_t("10:00"), end=_t("12:00")).iloc[0]
        out.append((k["apt"], k["unaccounted"], k["availability"]))
    assert out[0] == out[1] == (6960.0, 0.0, pytest.approx(6960 / 7200))


@pytest.mark.parametrize("run", ["RUN", "ZRUN"])
@pytest.mark.parametrize("open_first", [True, False])
def test_an_open_state_sharing_its_start_lasts_until_a_horizon_set_by_production(make_ws, run, open_first):
    # the issue's example with the open state as the last one: no state starts later, so it lasts until the
    # data horizon, here a count stamped at 12:00; the stop outranks it 10:00-10:04 under either raw name and
    # in either file order
    recs = [["M1", _t("10:00"), None, run, "production"],
            ["M1", _t("10:00"), _t("10:04"), "STOP", "unplanned_downtime"]]
    ws = make_ws({"equipment": [{"equipment_id": "M1", "timezone": "UTC"}],
                  "products": [{"product_id": "P", "pri": 60.0}],
                  "states": pd.DataFrame(recs if open_first else recs[::-1],
                                         columns=["equipment_id", "start", "end", "state", "category"]),
                  "production": [{"equipment_id": "M1", "end": _t("12:00"), "product_id": "P", "produced": 5}]})
    k = ws.kpi(period="all", start=_t("10:00"), end=_t("12:00")).iloc[0]
    assert (k["pbt"], k["apt"], k["adet_minor"], k["unaccounted"]) == (2 * H, 6960.0, 240.0, 0.0)
    assert k["availability"] == pytest.approx(6960 / 7200)


# -- 2. silent machines under calendars at every level --------------------------------------------------------
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("silent_has_production", [False, True])
def test_a_silent_machine_under_a_calendar_is_scheduled_and_unaccounted(make_ws, level, silent_has_production):
    # M1 reports production 08-16; M2 (same work centre) reports no state. The shift 08-16 is booked to the
    # level's scope (for 'equipment': to each machine). M3, at another site without calendar, has no record.
    chain = {"work_center": "W", "area": "A", "site": "S", "enterprise": "E"}
    eq = [dict(chain, equipment_id=m, timezone="UTC") for m in ("M1", "M2")]
    eq.append({"equipment_id": "M3", "work_center": "W3", "area": "A3", "site": "S3", "enterprise": "E3",
               "timezone": "UTC"})
    scopes = ["M1", "M2"] if level == "equipment" else [chain[level]]
    cal = [{"scope": sc, "start": _t("08:00"), "end": _t("16:00"), "kind": "shift"} for sc in scopes]
    tables = {"equipment": eq, "calendar": cal, "products": [{"product_id": "P", "pri": 10.0}],
              "states": [{"equipment_id": "M1", "start": _t("08:00"), "end": _t("16:00"), "state": "production"}]}
    if silent_has_production:
        tables["production"] = [{"equipment_id": "M2", "start": _t("09:00"), "end": _t("10:00"), "product_id": "P",
                                 "produced": 100}]
    ws = make_ws(tables)
    kw = dict(period="day", start=_t("00:00"), end="2024-05-07T00:00:00Z")
    eqp = ws.elements("equipment", **kw).set_index("equipment_id")
    assert (eqp.loc["M2", "pot"], eqp.loc["M2", "pbt"], eqp.loc["M2", "unaccounted"]) == (8 * H, 8 * H, 8 * H)
    assert eqp.loc["M2", "apt"] == 0.0 and not eqp.loc["M2", "no_calendar"]
    assert bool(eqp.loc["M2", "no_data"]) == (not silent_has_production)  # no record at all: "no data" too
    assert np.isnan(eqp.loc["M3", "pbt"]) and bool(eqp.loc["M3", "no_data"])
    wc = ws.kpi("work_center", **kw).set_index("work_center").loc["W"]
    assert (wc["pbt"], wc["unaccounted"], wc["availability"]) == (16 * H, 8 * H, 0.5)
    for lvl in LEVELS[1:]:
        row = ws.kpi(lvl, **kw).set_index(lvl).loc[chain[lvl]]
        assert (row["pbt"], row["availability"]) == (16 * H, 0.5)
    dq = ws.data_quality("equipment", **kw)
    flags = set(zip(dq["equipment_id"], dq["check"]))
    assert ("M2", "unaccounted_time") in flags and ("M3", "no_data") in flags
    assert (("M2", "no_data") in flags) == (not silent_has_production)
    assert ("M1", "unaccounted_time") not in flags
    dqw = ws.data_quality("work_center", **kw)
    assert dqw.loc[(dqw["work_center"] == "W") & (dqw["check"] == "unaccounted_time"), "value"].tolist() == [8 * H]


def test_a_machine_without_calendar_is_scheduled_over_its_own_data_extent(make_ws):
    # M1: states 08-12 (no calendar): pot 4 h, flagged no_calendar. M2: production only, 09-11: scheduled
    # 09-11 around the clock, all of it unaccounted, flagged no_calendar; its counts enter the sums
    ws = make_ws({"equipment": [{"equipment_id": m, "work_center": "W", "timezone": "UTC"} for m in ("M1", "M2")],
                  "products": [{"product_id": "P", "pri": 10.0}],
                  "states": [{"equipment_id": "M1", "start": _t("08:00"), "end": _t("12:00"), "state": "production"}],
                  "production": [{"equipment_id": "M2", "start": _t("09:00"), "end": _t("11:00"), "product_id": "P",
                                  "produced": 50}]})
    el = ws.elements(period="day", start=_t("00:00"), end="2024-05-07T00:00:00Z").set_index("equipment_id")
    assert (el.loc["M1", "pot"], el.loc["M1", "unaccounted"], bool(el.loc["M1", "no_calendar"])) == (4 * H, 0, True)
    assert (el.loc["M2", "pot"], el.loc["M2", "unaccounted"], el.loc["M2", "pq"]) == (2 * H, 2 * H, 50.0)
    assert bool(el.loc["M2", "no_calendar"])
    dq = ws.data_quality("equipment", period="day", start=_t("00:00"), end="2024-05-07T00:00:00Z")
    assert set(dq.loc[dq["equipment_id"] == "M2", "check"]) == {"no_calendar", "unaccounted_time"}


def test_a_calendar_scope_of_only_holidays_and_breaks_is_scheduled_around_the_clock_minus_them(make_ws):
    ws = make_ws({"equipment": [{"equipment_id": "M1", "site": "S", "timezone": "UTC"}],
                  "calendar": [{"scope": "S", "start": _t("00:00"), "end": _t("06:00"), "kind": "holiday"},
                               {"scope": "S", "start": _t("12:00"), "end": _t("12:30"), "kind": "break"}],
                  "states": [{"equipment_id": "M1", "start": _t("00:00"), "end": "2024-05-07T00:00:00Z",
                              "state": "production"}]})
    el = ws.elements(period="day", start=_t("00:00"), end="2024-05-07T00:00:00Z").iloc[0]
    assert (el["pot"], el["pdt"], el["pbt"], el["apt"]) == (18 * H, 0.5 * H, 17.5 * H, 17.5 * H)
    assert not el["no_calendar"]


# -- 3. one row per entity and period, also across time zones -------------------------------------------------
ZONES = {"MB": "Europe/Berlin", "MS": "Asia/Shanghai", "MK": "Asia/Kolkata", "MU": "UTC"}


def _zoned_plant(make_ws):
    # every group spans zones: W1 = {MB, MS}, W2 = {MK, MU}; areas A1 = {W1}, A2 = {W2}; site S = all;
    # enterprise E = all. Each machine: production 08:00-10:00Z, then a failure 10:00-10:30Z on each day
    eq = []
    for m, wc in (("MB", "W1"), ("MS", "W1"), ("MK", "W2"), ("MU", "W2")):
        eq.append({"equipment_id": m, "work_center": wc, "area": "A" + wc[1], "site": "S", "enterprise": "E",
                   "timezone": ZONES[m]})
    states = []
    for day in ("2024-05-06", "2024-05-07"):
        for m in ZONES:
            states.append({"equipment_id": m, "start": _t("08:00", day), "end": _t("10:00", day), "state": "production"})
            states.append({"equipment_id": m, "start": _t("10:00", day), "end": _t("10:30", day),
                           "state": "unplanned_downtime"})
    cal = [{"scope": "S", "start": _t("06:00", d), "end": _t("14:00", d), "kind": "shift"}
           for d in ("2024-05-06", "2024-05-07")]
    return make_ws({"equipment": eq, "states": states, "calendar": cal})


@pytest.mark.parametrize("period", ["hour", "shift", "day", "week", "month", "all"])
def test_an_entity_spanning_zones_has_one_row_per_period_at_every_level(make_ws, period):
    ws = _zoned_plant(make_ws)
    kw = dict(period=period, start="2024-05-06T00:00:00Z", end="2024-05-08T00:00:00Z")
    eqp = ws.elements("equipment", **kw)
    total = eqp[["pbt", "apt", "ttr", "fe"]].sum()
    for level in LEVELS[1:]:
        el = ws.elements(level, **kw)
        col = level
        # one row per entity and period: periods of an entity do not repeat and do not overlap
        for _gid, g in el.groupby(col):
            g = g.sort_values("period_start")
            assert g["period_start"].is_unique
            assert (g["period_start"].iloc[1:].to_numpy() >= g["period_end"].iloc[:-1].to_numpy()).all()
            assert g["tz"].nunique() == 1
        # nothing lost or double counted
        assert el[["pbt", "apt", "ttr", "fe"]].sum().to_dict() == pytest.approx(total.to_dict())
        if period == "all":
            assert len(el) == el[col].nunique()
    ent = ws.kpi("enterprise", **kw)
    assert ent["availability"].dropna().between(0, 1).all()
    if period == "all":
        assert len(ent) == 1 and ent["pbt"].iloc[0] == 8 * 2 * 4 * H
        assert ent["availability"].iloc[0] == pytest.approx(2 / 8)


def test_the_issue_two_zone_enterprise(make_ws):
    ws = make_ws({"equipment": [{"equipment_id": "M1", "work_center": "W1", "site": "S1", "enterprise": "E",
                                 "timezone": "Europe/Berlin"},
                                {"equipment_id": "M2", "work_center": "W2", "site": "S2", "enterprise": "E",
                                 "timezone": "Asia/Shanghai"}],
                  "states": [{"equipment_id": "M1", "start": _t("08:00"), "end": _t("10:00"), "state": "production"},
                             {"equipment_id": "M2", "start": _t("08:00"), "end": _t("10:00"), "state": "setup"}]})
    for period in ("all", "hour", "day"):
        k = ws.kpi("enterprise", period=period, start=_t("08:00"), end=_t("10:00"))
        assert k["pbt"].sum() == 4 * H and (k["availability"] == 0.5).all()
        assert len(k) == (2 if period == "hour" else 1)
    # equally many machines in each zone: the first zone by name (Asia/Shanghai) buckets the days
    d = ws.kpi("enterprise", period="day", start="2024-05-05T00:00:00Z", end="2024-05-08T00:00:00Z")
    assert d["period_start"].tolist() == ["2024-05-05T08:00:00+08:00", "2024-05-06T00:00:00+08:00",
                                          "2024-05-07T00:00:00+08:00", "2024-05-08T00:00:00+08:00"]


def test_a_half_hour_zone_in_a_group_is_bucketed_in_the_groups_zone(make_ws):
    # W: MU and MU2 in UTC, MK in Asia/Kolkata (+05:30). MK produces 08:00-09:00Z. At equipment level MK's
    # hours are its own (07:30-08:30Z and 08:30-09:30Z: 30 min each); W's hours are UTC hours (most of its
    # machines), so MK's hour lies in one of W's rows; configured in Kolkata, W's hours are MK's again
    eq = [{"equipment_id": m, "work_center": "W", "timezone": tz}
          for m, tz in (("MU", "UTC"), ("MU2", "UTC"), ("MK", "Asia/Kolkata"))]
    tables = {"equipment": eq, "states": [{"equipment_id": "MK", "start": _t("08:00"), "end": _t("09:00"),
                                           "state": "production"}]}
    kw = dict(period="hour", start=_t("07:00"), end=_t("10:00"))
    ws = make_ws(tables)
    mk = ws.elements("equipment", **kw).query("equipment_id == 'MK' and apt > 0")
    assert mk["apt"].tolist() == [1800.0, 1800.0]
    w = ws.kpi("work_center", **kw)
    assert w.loc[w["apt"] > 0, ["period_start", "apt"]].values.tolist() == [["2024-05-06T08:00:00+00:00", 3600.0]]
    assert w["period_start"].is_unique
    import zhizao
    ws2 = make_ws(tables, settings=zhizao.Settings(zones={"W": "Asia/Kolkata"}))
    w2 = ws2.kpi("work_center", **kw)
    assert w2.loc[w2["apt"] > 0, ["period_start", "apt"]].values.tolist() == [
        ["2024-05-06T13:00:00+05:30", 1800.0], ["2024-05-06T14:00:00+05:30", 1800.0]]


# MB (Berlin, +02:00 in May) and MK (Kolkata, +05:30) in work centre W, area A, site S; MD (Kolkata) in W2, A2, S2;
# enterprise E = all three. Each day MB produces 04:00-10:00Z, MK 00:00-06:00Z, MD 02:00-04:00Z.
SHIFT_EQ = [{"equipment_id": m, "work_center": w, "area": "A" + w[1:], "site": "S" + w[1:], "enterprise": "E",
             "timezone": tz}
            for m, w, tz in (("MB", "W", "Europe/Berlin"), ("MK", "W", "Asia/Kolkata"), ("MD", "W2", "Asia/Kolkata"))]
SHIFT_DAYS = ("2024-05-06", "2024-05-07")
SHIFT_STATES = [{"equipment_id": m, "start": _t(a, d), "end": _t(b, d), "state": "production"}
                for d in SHIFT_DAYS for m, a, b in (("MB", "04:00", "10:00"), ("MK", "00:00", "06:00"),
                                                    ("MD", "02:00", "04:00"))]
SHIFT_KW = dict(period="shift", start="2024-05-06T00:00:00Z", end="2024-05-08T00:00:00Z")


def _local_shifts(machines, hours=("06:00", "14:00")):
    """Each machine's own shift entry at the local wall-clock ``hours`` (with its zone's offset) on each day."""
    offset = {"Europe/Berlin": "+02:00", "Asia/Kolkata": "+05:30"}
    zone = {e["equipment_id"]: e["timezone"] for e in SHIFT_EQ}
    return [{"scope": m, "start": f"{d}T{hours[0]}:00{offset[zone[m]]}", "end": f"{d}T{hours[1]}:00{offset[zone[m]]}",
             "kind": "shift"} for d in SHIFT_DAYS for m in machines]


def test_members_local_shifts_of_the_same_label_are_one_row_of_their_group(make_ws):
    # each machine's own local 06:00-14:00: MB 04:00-12:00Z, MK and MD 00:30-08:30Z, each day. By hand, per day:
    # W and S (MB + MK): pbt 8 h + 8 h = 57,600 s; apt 6 h (MB) + 5.5 h (MK, 00:30-06:00Z) = 41,400 s,
    # availability 0.71875; bounds MK's start 00:30Z to MB's end 12:00Z, shown in W's zone (one machine in each
    # zone: the first by name, Asia/Kolkata): 06:00-17:30+05:30. E (+ MD): pbt 86,400 s, apt 41,400 + 7,200 =
    # 48,600 s, availability 0.5625, the same bounds (E's zone: Kolkata, most of its machines)
    ws = make_ws({"equipment": SHIFT_EQ, "states": SHIFT_STATES,
                  "calendar": _local_shifts(("MB", "MK", "MD"))})
    eq = ws.kpi("equipment", **SHIFT_KW)
    assert len(eq) == 6  # one row per machine and entry, as before
    bounds = [[f"{d}T06:00:00+05:30", f"{d}T17:30:00+05:30"] for d in SHIFT_DAYS]
    for level in ("work_center", "area", "site"):
        k = ws.kpi(level, **SHIFT_KW)
        k = k[k[level] == level[0].upper()]
        assert k[["period_start", "period_end"]].values.tolist() == bounds, level
        assert k["pbt"].tolist() == [57600.0] * 2 and k["apt"].tolist() == [41400.0] * 2
        assert k["availability"].tolist() == [0.71875] * 2 and k["n_equipment"].tolist() == [2, 2]
    e = ws.kpi("enterprise", **SHIFT_KW)
    assert e[["period_start", "period_end"]].values.tolist() == bounds
    assert e["pbt"].tolist() == [86400.0] * 2 and e["apt"].tolist() == [48600.0] * 2
    assert e["availability"].tolist() == [0.5625] * 2 and e["n_equipment"].tolist() == [3, 3]
    assert e["pbt"].sum() == eq["pbt"].sum()


def test_a_shift_booked_to_a_group_spanning_zones_is_one_row_of_it(make_ws):
    # W's shift 04:00-12:00Z: MB's local 06:00-14:00, MK's local 09:30-17:30, two labels with the same bounds:
    # one row. By hand: pbt 8 h x 2 = 57,600 s; apt MB 6 h + MK 04:00-06:00Z 2 h = 28,800 s, availability 0.5,
    # on W, A, S and E (MD, in W2, has no shift). Shown in W's zone (Kolkata): 09:30-17:30+05:30
    ws = make_ws({"equipment": SHIFT_EQ, "states": SHIFT_STATES,
                  "calendar": [{"scope": "W", "start": _t("04:00"), "end": _t("12:00"), "kind": "shift"}]})
    for level in ("work_center", "area", "site", "enterprise"):
        k = ws.kpi(level, **SHIFT_KW)
        assert k[["period_start", "period_end", "pbt", "apt", "availability", "n_equipment"]].values.tolist() == [
            ["2024-05-06T09:30:00+05:30", "2024-05-06T17:30:00+05:30", 57600.0, 28800.0, 0.5, 2]], level
    # and with MK's own local 09:30-17:30 on top (a second entry with W's instants): the same one row
    both = make_ws({"equipment": SHIFT_EQ, "states": SHIFT_STATES,
                    "calendar": [{"scope": "W", "start": _t("04:00"), "end": _t("12:00"), "kind": "shift"},
                                 {"scope": "MK", "start": "2024-05-06T09:30:00+05:30",
                                  "end": "2024-05-06T17:30:00+05:30", "kind": "shift"}]})
    w = both.kpi("work_center", **SHIFT_KW)
    assert w[["pbt", "apt", "n_equipment"]].values.tolist() == [[57600.0, 28800.0, 2]]


def test_staggered_shifts_in_one_zone_are_two_rows(make_ws):
    # M1 and M2 in Berlin, W: M1's shift 06:00-14:00 local (04:00-12:00Z), M2's 07:00-15:00 (05:00-13:00Z):
    # two labels, two rows of W that overlap; each 8 h = 28,800 s of one machine; apt 08:00-10:00Z = 7,200 s each
    eq = [{"equipment_id": m, "work_center": "W", "timezone": "Europe/Berlin"} for m in ("M1", "M2")]
    ws = make_ws({"equipment": eq,
                  "states": [{"equipment_id": m, "start": _t("08:00"), "end": _t("10:00"), "state": "production"}
                             for m in ("M1", "M2")],
                  "calendar": [{"scope": m, "start": f"2024-05-06T{a}:00+02:00", "end": f"2024-05-06T{b}:00+02:00",
                                "kind": "shift"} for m, a, b in (("M1", "06:00", "14:00"), ("M2", "07:00", "15:00"))]})
    w = ws.kpi("work_center", **SHIFT_KW)
    assert w[["period_start", "period_end", "pbt", "apt", "n_equipment"]].values.tolist() == [
        ["2024-05-06T06:00:00+02:00", "2024-05-06T14:00:00+02:00", 28800.0, 7200.0, 1],
        ["2024-05-06T07:00:00+02:00", "2024-05-06T15:00:00+02:00", 28800.0, 7200.0, 1]]


@pytest.mark.parametrize("calendar", ["own", "group", "both"])
def test_shift_rows_of_groups_streamed_are_the_roll_up_to_the_last_bit(make_ws, calendar):
    from zhizao import Settings
    from zhizao.kpi.elements import compute_elements, iter_elements
    from zhizao.kpi.rollup import rollup, rollup_stream

    cal = {"own": _local_shifts(("MB", "MK", "MD")),
           "group": [{"scope": "W", "start": _t("04:00"), "end": _t("12:00"), "kind": "shift"}]}
    cal["both"] = cal["own"] + cal["group"] + _local_shifts(("MB",), ("07:00", "15:00"))
    ws = make_ws({"equipment": SHIFT_EQ, "states": SHIFT_STATES, "calendar": cal[calendar]})
    whole = compute_elements(ws.con, "shift").elements
    parts = [p.elements for p in iter_elements(ws.con, "shift", settings=Settings(memory_mb=1))]
    assert len(parts) > 1
    for level in LEVELS:
        r = rollup(whole, level, "shift")
        pd.testing.assert_frame_equal(r, rollup_stream(iter(parts), level, "shift"), check_exact=True)
        assert r["pbt"].sum() == whole.loc[whole["level"] == "equipment", "pbt"].sum()
        # one row per entity and bounds
        assert not r.duplicated([LEVEL_ID_COLUMN[level], "period_start", "period_end"]).any()


def test_labels_with_the_same_bounds_are_summed_in_label_order(make_ws):
    # W's shift 04:00-12:00Z: MB's label 06:00-14:00, MK's 09:30-17:30 (same bounds); a third machine MU (UTC)
    # 04:00-12:00. apt set by hand to 1e16 (MU), 1.0 (MB), 1.0 (MK): the labels in order (MU's 04:00, MB's
    # 06:00, MK's 09:30 local) are 1e16, 1.0, 1.0, compensated: 1e16 + 2 exactly (a plain sum left to right
    # would lose both ones)
    from zhizao import Settings
    from zhizao.kpi.elements import compute_elements, iter_elements
    from zhizao.kpi.rollup import rollup, rollup_stream

    eq = SHIFT_EQ[:2] + [{"equipment_id": "MU", "work_center": "W", "area": "A", "site": "S", "enterprise": "E",
                          "timezone": "UTC"}]
    ws = make_ws({"equipment": eq, "states": SHIFT_STATES[:2],
                  "calendar": [{"scope": "W", "start": _t("04:00"), "end": _t("12:00"), "kind": "shift"}]})
    values = {"MU": 1e16, "MB": 1.0, "MK": 1.0}

    def patched(el):
        el = el.copy()
        at = el["equipment_id"].notna()
        el.loc[at, "apt"] = el.loc[at, "equipment_id"].map(values)
        return el

    whole = patched(compute_elements(ws.con, "shift").elements)
    r = rollup(whole, "work_center", "shift")
    assert len(r) == 1 and r["apt"].iloc[0] == 1e16 + 2.0 and 1e16 + 1.0 + 1.0 == 1e16
    parts = [patched(p.elements) for p in iter_elements(ws.con, "shift", settings=Settings(memory_mb=1))]
    pd.testing.assert_frame_equal(r, rollup_stream(iter(parts), "work_center", "shift"), check_exact=True)


def test_a_machine_in_two_labels_with_the_same_bounds_counts_once(make_ws):
    # elements by hand, W: A (UTC) 04:00-08:00Z (label 04:00-08:00) and 00:00-04:00Z (label 00:00-04:00); B
    # (+04:00) 00:00-04:00Z (label 04:00-08:00); C (-04:00) 04:00-08:00Z (label 00:00-04:00). Both labels run
    # 00:00-08:00Z: one row of W, three machines (A once), pbt 4 x 4 h = 57,600 s
    from zhizao.kpi.elements import ELEMENTS
    from zhizao.kpi.rollup import rollup, rollup_stream

    rows = [("A", "UTC", "04:00", "08:00"), ("A", "UTC", "00:00", "04:00"), ("B", "Etc/GMT-4", "00:00", "04:00"),
            ("C", "Etc/GMT+4", "04:00", "08:00")]
    el = pd.DataFrame({"level": "equipment", "entity_id": [r[0] for r in rows], "equipment_id": [r[0] for r in rows],
                       "work_center": "W", "area": None, "site": None, "enterprise": None,
                       "tz": [r[1] for r in rows], "period_start": pd.to_datetime([_t(r[2]) for r in rows]),
                       "period_end": pd.to_datetime([_t(r[3]) for r in rows]), "no_calendar": False,
                       "no_data": [False, False, False, True], **{e: np.nan for e in ELEMENTS}})
    el["pbt"] = 4 * H
    r = rollup(el, "work_center", "shift")
    assert r[["period_start", "period_end", "n_equipment", "no_data", "pbt"]].values.tolist() == [
        [pd.Timestamp(_t("00:00")), pd.Timestamp(_t("08:00")), 3, True, 57600.0]]
    assert np.isnan(r["apt"].iloc[0]) and r["tz"].iloc[0] == "UTC"
    for cut in (2, 3):  # parts of whole machines
        pd.testing.assert_frame_equal(r, rollup_stream(iter([el.iloc[:cut], el.iloc[cut:]]), "work_center",
                                                       "shift"), check_exact=True)


# -- 4. full breakdown, failure events, scrap ------------------------------------------------------------------
@pytest.mark.parametrize("with_counts", [False, True])
def test_a_full_breakdown_gives_availability_and_oee_zero_with_or_without_counts(make_ws, with_counts):
    tables = {"equipment": [{"equipment_id": "M1", "timezone": "UTC"}],
              "states": [{"equipment_id": "M1", "start": _t("08:00"), "end": _t("16:00"),
                          "state": "unplanned_downtime"}]}
    if with_counts:
        tables["products"] = [{"product_id": "P", "pri": 10.0}]
        tables["production"] = [{"equipment_id": "M1", "end": _t("09:00"), "product_id": "P", "produced": 0}]
    k = make_ws(tables).kpi(period="all", start=_t("08:00"), end=_t("16:00")).iloc[0]
    assert (k["availability"], k["oee"], k["teep"]) == (0.0, 0.0, 0.0)
    assert np.isnan(k["effectiveness"])
    assert "effectiveness: undefined, apt = 0" in k["null_reasons"]


def test_failure_events_count_failures_overlapping_pbt_where_they_enter_it(make_ws):
    # shift 08-16 each day. F1 05:00-09:00 starts before the shift: one event, counted on day 1 (TTR 1 h).
    # F2 20:00-22:00 lies outside every shift: no event. F3 15:00 day 1 - 09:00 day 2: one event on day 1.
    # F4 22:00 day 2 - 09:00 day 3: starts on day 2 outside the shift, first in PBT on day 3 at 08:00.
    cal = [{"scope": "M1", "start": _t("08:00", d), "end": _t("16:00", d), "kind": "shift"}
           for d in ("2024-05-06", "2024-05-07", "2024-05-08")]
    st = [("05:00", "2024-05-06", "09:00", "2024-05-06"), ("20:00", "2024-05-06", "22:00", "2024-05-06"),
          ("15:00", "2024-05-06", "09:00", "2024-05-07"), ("22:00", "2024-05-07", "09:00", "2024-05-08")]
    states = [{"equipment_id": "M1", "start": _t(a, da), "end": _t(b, db), "state": "unplanned_downtime"}
              for a, da, b, db in st]
    ws = make_ws({"equipment": [{"equipment_id": "M1", "timezone": "UTC"}], "calendar": cal, "states": states})
    k = ws.kpi(period="day", start=_t("00:00"), end="2024-05-09T00:00:00Z")
    assert k["fe"].tolist() == [2.0, 0.0, 1.0]
    assert k["ttr"].tolist() == [2 * H, 1 * H, 1 * H]
    assert k["mean_time_to_restoration"].tolist()[0] == H and k["mean_time_to_restoration"].tolist()[2] == H
    # the same split at any instant: every event counted once
    for cut in ("2024-05-06T12:00:00Z", "2024-05-06T23:00:00Z", "2024-05-07T23:30:00Z", "2024-05-08T07:00:00Z"):
        left = ws.elements(period="all", start=_t("00:00"), end=cut)["fe"].sum()
        right = ws.elements(period="all", start=cut, end="2024-05-09T00:00:00Z")["fe"].sum()
        assert left + right == 3.0, cut


def test_good_without_scrap_gives_scrap_as_the_rest(make_ws, tmp_path):
    ws = make_ws({"equipment": [{"equipment_id": "M1", "timezone": "UTC"}],
                  "products": [{"product_id": "P", "pri": 1.0}],
                  "production": pd.DataFrame([["M1", _t("09:00"), "P", 10, 7.0, None],
                                              ["M1", _t("09:01"), "P", 10, 6.0, 1.0]],
                                             columns=["equipment_id", "end", "product_id", "produced", "good",
                                                      "rework"])})
    el = ws.elements(period="all", start=_t("00:00"), end=_t("23:00")).iloc[0]
    assert (el["pq"], el["gq"], el["sq"], el["rq"]) == (20.0, 13.0, 3.0 + 3.0, 1.0)
    # good + rework above produced without scrap would make scrap negative: quarantined instead
    bad = tmp_path / "bad.csv"
    pd.DataFrame([["M1", _t("09:02"), "P", 10, 9.0, 2.0]],
                 columns=["equipment_id", "end", "product_id", "produced", "good", "rework"]).to_csv(bad, index=False)
    assert ws.ingest("production", bad)[0].quarantined == 1
    assert ws.quarantine().iloc[-1]["rule"] == "counts_exceed_produced"
    assert ws.elements(period="all", start=_t("00:00"), end=_t("23:00")).iloc[0]["sq"] == 6.0


# -- 5. flags of single records in the data-quality table ---------------------------------------------------------
def test_ambiguous_local_times_are_counted_per_entity_in_the_data_quality_table(make_ws):
    # Europe/Berlin, 2024-10-27: clocks go back at 03:00 CEST (01:00Z), so 02:00-03:00 local happens twice and
    # a naive 02:xx is read as the earlier instant (CEST, +02:00) and flagged. The day is 25 h:
    # 2024-10-26T22:00Z .. 2024-10-27T23:00Z. W = {M1, M2}, V = {M3}, site S = all.
    #   M1 production 02:30 (fold, 00:30Z) .. 04:00 CET (03:00Z): 1 flag (start)
    #   calendar break of W 02:15 (fold, 00:15Z) .. 02:45 (fold, 00:45Z): 2 flags, concerning M1, M2, W and S
    #   M3 count stamped 02:40 (fold, 00:40Z): 1 flag
    #   M2 production 2024-10-27T02:30:00+01:00 (an offset: an instant, no flag)
    eq = [{"equipment_id": m, "work_center": wc, "site": "S", "timezone": "Europe/Berlin"}
          for m, wc in (("M1", "W"), ("M2", "W"), ("M3", "V"))]
    ws = make_ws({"equipment": eq,
                  "calendar": [{"scope": "W", "start": "2024-10-27 02:15:00", "end": "2024-10-27 02:45:00",
                                "kind": "break"}],
                  "states": [{"equipment_id": "M1", "start": "2024-10-27 02:30:00", "end": "2024-10-27 04:00:00",
                              "state": "production"},
                             {"equipment_id": "M2", "start": "2024-10-27T02:30:00+01:00",
                              "end": "2024-10-27T03:30:00+01:00", "state": "production"}],
                  "production": [{"equipment_id": "M3", "end": "2024-10-27 02:40:00", "produced": 5}]})
    kw = dict(period="day", start="2024-10-26T22:00:00Z", end="2024-10-27T23:00:00Z")
    # the readings themselves, by hand: a break-only calendar schedules W's machines around the clock minus
    # the break: pot = 25 h = 90,000 s, pdt = 1,800 s, pbt = 88,200 s. M1 produces 00:30Z-03:00Z = 9,000 s, of
    # which 00:30-00:45Z lies in the break: apt = 8,100 s, outside_pbt = 900 s, unaccounted = 80,100 s.
    # M2 produces 01:30Z-02:30Z = 3,600 s: apt 3,600 s, unaccounted 84,600 s
    el = ws.elements("equipment", **kw).set_index("equipment_id")
    assert el.loc["M1", ["ct", "pot", "pdt", "pbt", "apt", "outside_pbt", "unaccounted"]].tolist() == [
        90000.0, 90000.0, 1800.0, 88200.0, 8100.0, 900.0, 80100.0]
    assert el.loc["M2", ["pbt", "apt", "unaccounted"]].tolist() == [88200.0, 3600.0, 84600.0]

    def flags(level):
        dq = ws.data_quality(level, **kw)
        dq = dq[dq["check"] == "ambiguous_local_time"]
        return dict(zip(dq[level if level != "equipment" else "equipment_id"], dq["value"]))

    assert flags("equipment") == {"M1": 3.0, "M2": 2.0, "M3": 1.0}
    assert flags("work_center") == {"W": 3.0, "V": 1.0}
    assert flags("site") == {"S": 4.0}
    dq = ws.data_quality("equipment", **kw)
    row = dq[(dq["equipment_id"] == "M1") & (dq["check"] == "ambiguous_local_time")].iloc[0]
    assert row["period_start"] == "2024-10-27T00:00:00+02:00" and row["period_end"] == "2024-10-28T00:00:00+01:00"
    # outside the period: no row; the whole range: the same counts
    assert flags_outside(ws) == {}
    all_ = ws.data_quality("equipment", period="all")
    assert all_[all_["check"] == "ambiguous_local_time"]["value"].sum() == 6.0

    # translated like the other checks, in the report's data-quality section
    from zhizao.i18n import translations
    from zhizao.report.html import _Report
    from zhizao.report.summaries import check_label, dq_summary

    zh = translations("zh").gettext
    c = next(c for c in dq_summary(dq) if c.check == "ambiguous_local_time")
    assert (c.rows, c.total, c.largest) == (3, 6.0, 3.0)
    assert zh(check_label("ambiguous_local_time")) == "有歧义的本地时间"
    assert zh(c.description).startswith("落在夏令时重复小时内")
    text = str(_Report(ws, "zh", ("site",)).sec_data_quality())
    assert "有歧义的本地时间" in text and "落在夏令时重复小时内" in text
    assert "Ambiguous local times" in str(_Report(ws, "en", ("site",)).sec_data_quality())


def flags_outside(ws):
    dq = ws.data_quality("equipment", period="day", start="2024-10-28T00:00:00Z", end="2024-10-29T00:00:00Z")
    dq = dq[dq["check"] == "ambiguous_local_time"]
    return dict(zip(dq["equipment_id"], dq["value"]))


# -- 6. the label of a group's rows that no zone cuts -------------------------------------------------------------
@pytest.mark.parametrize("configured", [None, "Europe/Berlin"])
def test_the_whole_range_row_of_a_group_spanning_zones_is_labelled_with_the_groups_zone(make_ws, configured):
    # E: M1 in Berlin (+02:00 in May), M2 and M3 in Shanghai (+08:00). The first member by id is M1 (Berlin),
    # the zone of most machines is Shanghai. M1 produces and M2 sets up, both 08:00-10:00Z; M3 is silent and
    # has no calendar: null times. So pbt = 2 h + 2 h = 14,400 s, apt = 7,200 s, availability 0.5.
    import zhizao

    eq = [{"equipment_id": m, "work_center": w, "site": s, "enterprise": "E", "timezone": tz}
          for m, w, s, tz in (("M1", "W1", "S1", "Europe/Berlin"), ("M2", "W2", "S2", "Asia/Shanghai"),
                              ("M3", "W2", "S2", "Asia/Shanghai"))]
    tables = {"equipment": eq,
              "states": [{"equipment_id": "M1", "start": _t("08:00"), "end": _t("10:00"), "state": "production"},
                         {"equipment_id": "M2", "start": _t("08:00"), "end": _t("10:00"), "state": "setup"}]}
    kw = {} if configured is None else {"settings": zhizao.Settings(zones={"E": configured})}
    ws = make_ws(tables, **kw)
    offset = "+08:00" if configured is None else "+02:00"
    local = {"+08:00": ("16:00", "18:00"), "+02:00": ("10:00", "12:00")}[offset]
    for period in ("all", "day", "hour", "week", "month"):
        k = ws.kpi("enterprise", period=period, start=_t("08:00"), end=_t("10:00"))
        assert k["pbt"].sum() == 14400.0 and k["apt"].sum() == 7200.0
        assert k["period_start"].str.endswith(offset).all() and k["period_end"].str.endswith(offset).all(), period
    a = ws.kpi("enterprise", period="all", start=_t("08:00"), end=_t("10:00")).iloc[0]
    assert (a["period_start"], a["period_end"]) == (f"2024-05-06T{local[0]}:00{offset}",
                                                  f"2024-05-06T{local[1]}:00{offset}")
    assert (a["pbt"], a["apt"], a["aust"], a["availability"]) == (14400.0, 7200.0, 7200.0, 0.5)
    # a group in one zone keeps its members' zone: W1 (Berlin), W2 (Shanghai)
    w = ws.kpi("work_center", period="all", start=_t("08:00"), end=_t("10:00")).set_index("work_center")
    assert w.loc["W1", "period_start"] == "2024-05-06T10:00:00+02:00"
    assert w.loc["W2", "period_start"] == "2024-05-06T16:00:00+08:00"
    # shift rows of a shift booked to the enterprise: the enterprise's zone too
    ws2 = make_ws({**tables, "calendar": [{"scope": "E", "start": _t("06:00"), "end": _t("12:00"), "kind": "shift"}]},
                  **kw)
    s = ws2.kpi("enterprise", period="shift", start=_t("00:00"), end="2024-05-07T00:00:00Z")
    assert len(s) == 1 and s["period_start"].iloc[0].endswith(offset)
    # 3 machines x 6 h = 64,800 s pbt; apt 7,200 s
    assert (s["pbt"].iloc[0], s["apt"].iloc[0]) == (64800.0, 7200.0)


# -- 7. naive calendar times of a scope spanning zones ------------------------------------------------------------
def test_a_naive_calendar_time_of_a_scope_spanning_zones_is_quarantined_not_guessed(make_ws, tmp_path):
    # W: MB in Berlin (+02:00 in May), MS in Shanghai (+08:00); both produce 00:00Z-12:00Z. A naive
    # "08:00-16:00" booked to W has no one reading right for both machines (06:00-14:00Z in Berlin,
    # 00:00-08:00Z in Shanghai): quarantined, never read in one member's zone. Booked to each machine (one
    # zone each) it is read in that machine's zone; with an offset, or with the mapping's timezone, it is an
    # instant for the whole group.
    from canonical import load
    from zhizao.ingest.mapping import Mapping
    from zhizao.ingest.rules import detail_message

    eq = [{"equipment_id": "MB", "work_center": "W", "timezone": "Europe/Berlin"},
          {"equipment_id": "MS", "work_center": "W", "timezone": "Asia/Shanghai"}]
    states = [{"equipment_id": m, "start": _t("00:00"), "end": _t("12:00"), "state": "production"}
              for m in ("MB", "MS")]
    ws = make_ws({"equipment": eq, "states": states,
                  "calendar": [{"scope": m, "start": "2024-05-06 08:00:00", "end": "2024-05-06 16:00:00",
                                "kind": "shift"} for m in ("MB", "MS")]})
    r = load(ws, tmp_path, "calendar", """
        scope,start,end,kind
        W,2024-05-06 08:00:00,2024-05-06 16:00:00,shift
        W,2024-05-06T18:00:00+02:00,2024-05-06T20:00:00+02:00,shift
        """, name="w.csv")
    assert (r.loaded, r.quarantined) == (1, 1)
    q = ws.quarantine("zh").iloc[-1]
    assert (q["table"], q["source"], q["record"], q["line"], q["rule"]) == ("calendar", "w.csv", 1, 2,
                                                                            "ambiguous_time_zone")
    en = ws.quarantine().iloc[-1]["detail"]
    assert en == ("start = 2024-05-06 08:00:00 has no UTC offset and scope W has equipment in several time zones "
                  "(Asia/Shanghai, Europe/Berlin): give the offset, the mapping's timezone, or one entry per zone")
    assert q["detail"].startswith("开始时间 = 2024-05-06 08:00:00 未带 UTC 偏移，而范围 W 的设备分属多个时区"
                                  "（Asia/Shanghai, Europe/Berlin）")
    assert detail_message(q["code"], q["params"]).text("zh") == q["detail"]
    # by hand: MB's own shift 06:00-14:00Z plus W's 16:00-18:00Z: pbt 10 h = 36,000 s, apt 06:00-12:00Z =
    # 21,600 s; MS's own 00:00-08:00Z plus 16:00-18:00Z: pbt 36,000 s, apt 00:00-08:00Z = 28,800 s.
    # W: pbt 72,000 s, apt 50,400 s, availability 0.7
    kw = dict(period="all", start="2024-05-06T00:00:00Z", end="2024-05-07T00:00:00Z")
    e = ws.kpi("equipment", **kw).set_index("equipment_id")
    assert e.loc["MB", ["pbt", "apt"]].tolist() == [36000.0, 21600.0]
    assert e.loc["MS", ["pbt", "apt"]].tolist() == [36000.0, 28800.0]
    w = ws.kpi("work_center", **kw).iloc[0]
    assert (w["pbt"], w["apt"], w["availability"]) == (72000.0, 50400.0, 0.7)
    # the naive entry again with the mapping's timezone (Asia/Shanghai): 00:00-08:00Z for both machines.
    # MB: 00:00-08:00Z u 06:00-14:00Z u 16:00-18:00Z = 16 h, apt 00:00-12:00Z = 12 h; MS: 00:00-08:00Z u
    # 16:00-18:00Z = 10 h, apt 8 h. W: pbt 26 h = 93,600 s, apt 20 h = 72,000 s
    r = load(ws, tmp_path, "calendar", """
        scope,start,end,kind
        W,2024-05-06 08:00:00,2024-05-06 16:00:00,shift
        """, name="w2.csv", mapping=Mapping(table="calendar", timezone="Asia/Shanghai"))
    assert (r.loaded, r.quarantined) == (1, 0)
    e = ws.kpi("equipment", **kw).set_index("equipment_id")
    assert e.loc["MB", ["pbt", "apt"]].tolist() == [57600.0, 43200.0]
    assert e.loc["MS", ["pbt", "apt"]].tolist() == [36000.0, 28800.0]
    w = ws.kpi("work_center", **kw).iloc[0]
    assert (w["pbt"], w["apt"]) == (93600.0, 72000.0)


def test_a_naive_calendar_time_of_a_scope_in_one_zone_is_read_in_that_zone(make_ws):
    # S: M1 and M2 both in Asia/Kolkata (+05:30), M3 without a zone (UTC) in another site T. A naive shift of S
    # 08:00-16:00 is 02:30-10:30Z for both: pbt 8 h each, apt (production 00:00-06:00Z) 02:30-06:00Z = 3.5 h
    eq = [{"equipment_id": m, "site": s, "timezone": tz}
          for m, s, tz in (("M1", "S", "Asia/Kolkata"), ("M2", "S", "Asia/Kolkata"), ("M3", "T", None))]
    ws = make_ws({"equipment": eq,
                  "calendar": [{"scope": "S", "start": "2024-05-06 08:00:00", "end": "2024-05-06 16:00:00",
                                "kind": "shift"}],
                  "states": [{"equipment_id": m, "start": _t("00:00"), "end": _t("06:00"), "state": "production"}
                             for m in ("M1", "M2")]})
    k = ws.kpi("site", period="all", start="2024-05-06T00:00:00Z", end="2024-05-07T00:00:00Z").set_index("site")
    assert k.loc["S", ["pbt", "apt", "unaccounted"]].tolist() == [57600.0, 25200.0, 32400.0]


def test_a_naive_measurement_time_of_a_scope_spanning_zones_is_read_in_its_first_zone_and_flagged(make_ws):
    # labour booked to W (Berlin and Shanghai) at a naive 08:00-16:00 has no one right zone: stored (a
    # measurement to keep), read in Asia/Shanghai (first by name): 00:00-08:00Z, and both its time stamps
    # flagged ambiguous_time_zone; the data-quality table counts them for W, its machines and nothing else.
    # Not flagged: the same with an offset; an energy record booked to a machine (its own zone); labour of a
    # scope in one zone (V: MV only)
    eq = [{"equipment_id": "MB", "work_center": "W", "timezone": "Europe/Berlin"},
          {"equipment_id": "MS", "work_center": "W", "timezone": "Asia/Shanghai"},
          {"equipment_id": "MV", "work_center": "V", "timezone": "Europe/Berlin"}]
    ws = make_ws({"equipment": eq,
                  "labour": [{"scope": "W", "start": "2024-05-06 08:00:00", "end": "2024-05-06 16:00:00",
                              "attendance_hours": 8},
                             {"scope": "W", "start": "2024-05-06T16:00:00+08:00", "end": "2024-05-06T18:00:00+08:00",
                              "attendance_hours": 2},
                             {"scope": "V", "start": "2024-05-06 08:00:00", "end": "2024-05-06 16:00:00",
                              "attendance_hours": 8}],
                  "energy": [{"meter_id": "E1", "equipment_id": "MB", "scope": "W", "start": "2024-05-06 08:00:00",
                              "end": "2024-05-06 09:00:00", "carrier": "electricity", "quantity": 5.0,
                              "unit": "kWh"}]})
    start, end = ws.con.execute("SELECT start, \"end\" FROM labour WHERE attendance_hours = 8 AND scope = 'W'"
                                ).fetchall()[0]
    assert (pd.Timestamp(start), pd.Timestamp(end)) == (pd.Timestamp(_t("00:00")), pd.Timestamp(_t("08:00")))
    flags = ws.con.execute('SELECT "table", flag, "column", entity, raw FROM record_flags ORDER BY "column"'
                           ).fetchall()
    assert flags == [("labour", "ambiguous_time_zone", "end", "W", "2024-05-06 16:00:00"),
                     ("labour", "ambiguous_time_zone", "start", "W", "2024-05-06 08:00:00")]
    kw = dict(period="all", start="2024-05-06T00:00:00Z", end="2024-05-07T00:00:00Z")
    dq = ws.data_quality("equipment", **kw)
    dq = dq[dq["check"] == "ambiguous_time_zone"]
    assert dict(zip(dq["equipment_id"], dq["value"])) == {"MB": 2.0, "MS": 2.0}
    dq = ws.data_quality("work_center", **kw)
    assert dict(zip(*dq[dq["check"] == "ambiguous_time_zone"][["work_center", "value"]].T.values)) == {"W": 2.0}

    from zhizao.i18n import translations
    from zhizao.report.summaries import check_label

    assert translations("zh").gettext(check_label("ambiguous_time_zone")) == "多时区范围内未带偏移的时间"
