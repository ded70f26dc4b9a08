"""Dates and times a user gives and reads on the dashboard and the API: the plant pages' day fields (both days
inclusive, in the entity's zone) and the offsets of the API's time stamps (the row's zone, as /kpi)."""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest

import zhizao
from test_server_support import SITE_A, SITE_B, base_store, bearer, clone, login, make_client
from zhizao.i18n import Formatter, translations

pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    client = make_client(clone(tmp_path_factory.mktemp("dates") / "store.duckdb"))
    yield client, bearer(login(client, "root"))
    client.app.state.server.close()


@pytest.fixture
def ranges(monkeypatch):
    """The (level, period, start, end) of every KPI-stage query the pages make."""
    from zhizao.server.access import TenantView

    seen: list[tuple] = []
    kpi = TenantView.kpi

    def spy(self, level="equipment", period="day", start=None, end=None, *a, **kw):
        seen.append((level, period, start, end))
        return kpi(self, level, period, start, end, *a, **kw)
    monkeypatch.setattr(TenantView, "kpi", spy)
    return seen


def _note(html: str) -> str:
    """The entity page's heading note (its range, then the equipment count)."""
    m = re.search(r'<p class="note">([^<]*)', html)
    assert m, html[:500]
    return m.group(1).split(" · ")[0].strip()


def _cards(html: str) -> dict[str, str]:
    return dict(re.findall(r'<div class="label">([^<]*)</div><div class="value">([^<]*)</div>', html))


def _local(day: str, days: int = 1) -> tuple[str, str]:
    a = pd.Timestamp(day).tz_localize("Asia/Shanghai")
    return a.isoformat(), (a + pd.Timedelta(days=days)).isoformat()


@pytest.mark.parametrize("first,last,days,zh,en", [
    ("2024-03-05", "2024-03-05", 1, "2024年3月5日至2024年3月5日", "5 March 2024 to 5 March 2024"),
    ("2024-03-05", "2024-03-07", 3, "2024年3月5日至2024年3月7日", "5 March 2024 to 7 March 2024"),
])
def test_the_day_fields_are_inclusive_local_days_in_the_query_and_the_heading(srv, ranges, first, last, days, zh,
                                                                              en):
    """"5 Dec to 5 Dec" was refused and "5 Dec to 6 Dec" read "12月5日至12月5日" but covered 08:00 to 08:00 (the
    days were UTC midnights, the end exclusive). Both days are inclusive local days of the entity's zone: the
    KPIs are computed over exactly those days, and the heading shows them."""
    client, root = srv
    start, end = _local(first, days)
    with zhizao.connect(base_store().path, read_only=True) as ws:
        want = ws.kpi(level="site", period="all", start=start, end=end).set_index("site")
    for lang, heading in (("zh", zh), ("en", en)):
        r = client.get(f"/plant/site/{SITE_B}", params={"from": first, "to": last, "lang": lang}, headers=root)
        assert r.status_code == 200, r.text[:300]
        assert _note(r.text) == heading
        assert ("site", "all", start, end) in ranges  # the page's range, as the KPI stage got it
        assert all(q[2:] == (start, end) for q in ranges), ranges
        cards = _cards(r.text)
        teep = want.loc[SITE_B, "teep"]  # calendar time of exactly `days` days
        assert cards[translations(lang).gettext("TEEP")] == Formatter(lang).pct(teep), cards
        assert teep > 0
        ranges.clear()
    assert want.loc[SITE_B, "period_start"] == start and want.loc[SITE_B, "period_end"] == end
    # the charts of the page are drawn over the same days
    r = client.get(f"/plant/site/{SITE_B}/chart/trend-energy.svg", params={"from": first, "to": last},
                   headers=root)
    assert r.status_code == 200 and ("site", "day", start, end) in ranges
    # and the landing page's table
    ranges.clear()
    r = client.get("/plant", params={"from": first, "to": last, "lang": "en"}, headers=root)
    assert r.status_code == 200 and ranges and all(q[2:] == (start, end) for q in ranges), ranges


def test_the_last_day_before_the_first_is_a_clear_error_in_both_languages(srv):
    client, root = srv
    for lang, text in (("zh", "截止日期2024年3月4日早于起始日期2024年3月6日"),
                       ("en", "the last day 4 March 2024 is before the first day 6 March 2024")):
        r = client.get(f"/plant/site/{SITE_A}", params={"from": "2024-03-06", "to": "2024-03-04", "lang": lang},
                       headers={**root, "Accept": "text/html"})
        assert r.status_code == 400 and text in r.text, r.text[:500]
    r = client.get(f"/plant/site/{SITE_A}", params={"from": "2024-03-06", "to": "someday", "lang": "en"},
                   headers=root)
    assert r.status_code == 400 and "not an ISO 8601" in r.text
    # a time stamp is an instant, taken as it is
    r = client.get(f"/plant/site/{SITE_B}", params={"from": "2024-03-05T00:00:00+08:00",
                                                   "to": "2024-03-06T00:00:00+08:00", "lang": "zh"}, headers=root)
    assert r.status_code == 200 and _note(r.text) == "2024年3月5日至2024年3月5日"


def test_the_day_fields_say_which_day_ends_the_range(srv):
    client, root = srv
    r = client.get(f"/plant/site/{SITE_B}", params={"lang": "zh"}, headers=root)
    assert "起始日期" in r.text and "截止日期（含）" in r.text


OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


@pytest.mark.parametrize("level,period", [("site", "hour"), ("equipment", "hour"), ("work_center", "day"),
                                          ("site", "all")])
def test_elements_and_kpi_give_the_same_times_with_the_rows_offset(srv, level, period):
    """/elements answered ``2024-03-04T16:00:00.000Z`` where /kpi answered ``2024-03-05T00:00:00+08:00`` for the
    same bucket: both give the row's zone offset, the same bounds for the same entity and period, in JSON and
    CSV."""
    client, root = srv
    params = {"level": level, "period": period, "start": "2024-03-05T00:00:00+08:00",
              "end": "2024-03-05T06:00:00+08:00" if period == "hour" else "2024-03-08T00:00:00+08:00"}
    col = {"site": "site", "equipment": "equipment_id", "work_center": "work_center"}[level]
    got = {}
    for path in ("elements", "kpi"):
        r = client.get(f"/api/v1/{path}", params=params, headers=root)
        assert r.status_code == 200, r.text[:300]
        rows = r.json()
        assert rows and all(OFFSET.match(x["period_start"]) and OFFSET.match(x["period_end"]) for x in rows), \
            rows[0]
        got[path] = sorted((x[col], x["period_start"], x["period_end"]) for x in rows)
        text = client.get(f"/api/v1/{path}", params={**params, "format": "csv"}, headers=root).text
        csv = pd.read_csv(io.StringIO(text), dtype=str)
        assert sorted(zip(csv[col], csv["period_start"], csv["period_end"], strict=True)) == got[path]
    assert got["elements"] == got["kpi"]
    assert all(s.endswith("+08:00") for _e, s, _x in got["kpi"])  # the plant's zone (Asia/Shanghai)
    if period == "hour":
        assert got["kpi"][0][1:] == ("2024-03-05T00:00:00+08:00", "2024-03-05T01:00:00+08:00")
    # the elements are those of the KPI rows
    el = {(x[col], x["period_start"]): x for x in client.get("/api/v1/elements", params=params, headers=root).json()}
    for x in client.get("/api/v1/kpi", params=params, headers=root).json():
        assert el[(x[col], x["period_start"])]["pbt"] == pytest.approx(x["pbt"], nan_ok=True)


@pytest.mark.parametrize("path", ["kpi", "elements", "losses", "data-quality", "capability"])
def test_every_kpi_stage_table_gives_times_with_the_rows_offset(srv, path):
    """No table of the KPI stage answers UTC ``Z`` times: every period bound carries the row's offset."""
    client, root = srv
    r = client.get(f"/api/v1/{path}", params={"level": "equipment", "period": "day"}, headers=root)
    assert r.status_code == 200, r.text[:300]
    rows = r.json()
    if path in ("kpi", "elements", "losses"):
        assert rows
    for x in rows:
        for k in ("period_start", "period_end"):
            assert OFFSET.match(str(x[k])) and str(x[k]).endswith("+08:00"), (path, k, x[k])


def test_the_recognition_pages_day_fields_are_inclusive_too(srv, monkeypatch):
    """The other page with a From/To day form (recognition checks): the last day is inclusive there too; the
    stage, whose bounds are naive local times, gets the day after it as the end."""
    from test_server_support import A
    from zhizao.server.access import TenantView

    seen = []
    recognition = TenantView.recognition

    def spy(self, enterprise_id, designation, start=None, end=None, scope=None):
        seen.append((start, end))
        return recognition(self, enterprise_id, designation, start, end, scope)
    monkeypatch.setattr(TenantView, "recognition", spy)
    client, root = srv
    r = client.get("/recognition", params={"enterprise": A, "from": "2024-03-05", "to": "2024-03-05", "lang": "zh"},
                   headers=root)
    assert r.status_code == 200, r.text[:300]
    assert seen == [("2024-03-05", "2024-03-06")]
    assert "起始日期" in r.text and "截止日期（含）" in r.text
    r = client.get("/recognition", params={"enterprise": A, "from": "2024-03-05", "to": "2024-03-04", "lang": "en"},
                   headers=root)
    assert r.status_code == 400 and "the last day 4 March 2024 is before the first day 5 March 2024" in r.text


def test_a_last_day_still_running_ends_now(srv, ranges):
    """Today to today is today so far: the rest of the day has not happened (docs/reference/iso22400.md, "Query
    range"), so its shift hours are neither planned busy time nor unaccounted."""
    client, root = srv
    today = pd.Timestamp.now(tz="Asia/Shanghai").strftime("%Y-%m-%d")
    before = pd.Timestamp.now(tz="UTC").floor("min")
    client.get(f"/plant/site/{SITE_B}", params={"from": today, "to": today}, headers=root)  # no data today: 404
    after = pd.Timestamp.now(tz="UTC").floor("min")
    assert ranges
    start, end = ranges[0][2:]
    assert start == pd.Timestamp(today).tz_localize("Asia/Shanghai").isoformat()
    assert before <= pd.Timestamp(end) <= after and end.endswith("+08:00")
