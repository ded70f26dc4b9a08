"""Fuzzing every input path with hostile data (hypothesis): every canonical table through the file loader,
the MQTT payload through the live ingestor, and the upload route of the REST API.

For every example: each record is stored or quarantined with a named rule and a structured detail (nothing
vanishes, no record is counted twice), what is stored is plausible (finite numbers within the limit, time
stamps in range), the engine still computes the store, a whole file or request is refused only with zhizao's
own errors (never another exception, never a 5xx or a traceback), and nothing takes longer than its limit.

Run time: ``make test`` uses the quick profile (a few examples per table, a few tens of seconds in all);
``HYPOTHESIS_PROFILE=thorough`` (``make test-fuzz``) runs many more.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import os
import time

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import zhizao
from zhizao.errors import ZhizaoError
from zhizao.ingest.mapping import Mapping
from zhizao.ingest.rules import RULES, detail_message
from zhizao.limits import MEASURED_TABLES, Limits
from zhizao.messages import KINDS
from zhizao.schema import TABLES

settings.register_profile("zhizao-fuzz-quick", max_examples=4, deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                 HealthCheck.function_scoped_fixture])
settings.register_profile("zhizao-fuzz-thorough", max_examples=200, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                 HealthCheck.function_scoped_fixture])
PROFILE = settings.get_profile("zhizao-fuzz-thorough" if os.environ.get("HYPOTHESIS_PROFILE") == "thorough"
                               else "zhizao-fuzz-quick")
#: the longest one example may take [s] (a stall fails the test)
STALL = 60.0
LIMITS = Limits()
LO, HI = LIMITS.time_range()

EQUIPMENT = ("equipment_id,work_center,area,site,enterprise,timezone\n"
             "M1,L1,A1,S1,E1,Europe/Berlin\nM2,L1,A1,S1,E1,Asia/Shanghai\nM3,L2,A2,S2,E2,America/Santiago\n")
IDS = ["M1", "M2", "M3", "M9", "L1", "A1", "S1", "S2", "E1", "ENT1", "P1", "PX", "", " M1 "]

HOSTILE_TEXT = st.sampled_from([
    "", " ", "=1+1", "+cmd|' /C calc'!A0", "-1", "@SUM(A1)", "\t=1", "x\r\ny", "'", '"', '""', ",", ";", "\\",
    "NaN", "inf", "1e309", "null", "NULL", "None", "中文", "😀", "a" * 300, "%(x)s", "{x}", "<script>", "\u202e",
    "'; DROP TABLE states; --", "production", "pass", "shift", "electricity", "kWh", "Europe/Berlin"])
TIMESTAMPS = st.sampled_from([
    "9999-12-31T23:59:59Z", "0001-01-01", "infinity", "-infinity", "1677-01-01T00:00:00Z", "2263-01-01", "epoch",
    "294247-01-10T04:00:54Z", "1969-12-31T23:59:59Z", "2024-03-31 02:30:00", "2024-10-27 02:30:00",
    "2024-04-06 23:30:00", "2024-01-01T00:00:00+26:00", "2024-01-01T00:00:00-14:00", "2024-01-01T00:00:00+14:01",
    "2024-02-30", "2024-01-01T25:00:00", "now", "2024-01-01T00:00:00.123456789Z", "2024-01-01", "1e309",
    "2024-01-01T08:00:00Z", "2024-01-01 09:00:00", "2024-06-01T12:00:00+08:00", "2099-01-01T00:00:00Z"]) | \
    st.datetimes(min_value=pd.Timestamp("1600-01-01").to_pydatetime(),
                 max_value=pd.Timestamp("2300-01-01").to_pydatetime()).map(lambda d: d.isoformat())
NUMBERS = st.sampled_from(["NaN", "-nan", "inf", "-Infinity", "1e309", "-1e400", "1e15", "1e16", "-0", "0x10",
                           "1_000", "\uff11\uff12", "1,5", "", "3", "0.5", "-2", "1e-320"]) | \
    st.floats(allow_nan=True, allow_infinity=True).map(repr) | st.integers(-10**20, 10**20).map(str)
BOOLS = st.sampled_from(["true", "false", "yes", "0", "1", "perhaps", ""])


def _value(column) -> st.SearchStrategy:
    if column.type == "timestamp":
        return TIMESTAMPS | HOSTILE_TEXT
    if column.type == "float":
        return NUMBERS | HOSTILE_TEXT
    if column.type == "bool":
        return BOOLS | HOSTILE_TEXT
    if column.name in ("equipment_id", "scope", "enterprise_id", "project_id", "product_id", "site", "area",
                       "work_center", "enterprise", "meter_id"):
        return st.sampled_from(IDS) | HOSTILE_TEXT
    return HOSTILE_TEXT | st.text(max_size=12)


def records(table: str) -> st.SearchStrategy:
    cols = TABLES[table].columns
    return st.lists(st.fixed_dictionaries({c.name: _value(c) for c in cols}), min_size=1, max_size=12)


def _csv(rows: list[dict], columns: list[str]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([r.get(c, "") for c in columns])
    return buf.getvalue().encode("utf-8")


def _check_stored_and_quarantined(ws, table: str, source: str, n: int, report) -> None:
    """The properties every load has (see the module docstring)."""
    assert report.loaded + report.quarantined + report.skipped == n, report
    q = ws.con.execute("SELECT rule, code, CAST(params AS VARCHAR), detail FROM quarantine WHERE source = ?",
                       [source]).fetchall()
    assert len(q) == report.quarantined
    for rule, code, params, detail in q:
        assert rule in RULES and code in KINDS, (rule, code)
        m = detail_message(code, params, detail)
        assert m.text("en") == detail and m.text("zh")
    spec = TABLES[table]
    stored = ws.con.execute(f'SELECT * FROM "{table}" WHERE _source = ?', [source]).df()
    assert len(stored) == report.loaded
    horizon = pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=LIMITS.max_future_days)
    for c in spec.columns:
        col = stored[c.name].dropna()
        if c.type == "float":
            assert all(math.isfinite(v) and abs(v) <= LIMITS.max_abs_value for v in col), (c.name, col.tolist())
        if c.type == "timestamp" and len(col):
            t = pd.to_datetime(col, utc=True)
            assert t.min() >= LO and t.max() < HI, (c.name, t.min(), t.max())
            if table in MEASURED_TABLES:
                assert t.max() <= horizon


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    ws = zhizao.connect(folder / "fuzz.duckdb")
    (folder / "eq.csv").write_text(EQUIPMENT)
    ws.ingest("equipment", folder / "eq.csv")
    (folder / "ent.csv").write_text("enterprise_id\nENT1\n")
    ws.ingest("enterprises", folder / "ent.csv")
    (folder / "proj.csv").write_text("project_id,enterprise_id,type,start,commissioning_end\n"
                                     "P1,ENT1,new_mode,2024-01-01T00:00:00Z,2024-02-01T00:00:00Z\n")
    ws.ingest("projects", folder / "proj.csv")
    yield ws, folder
    ws.close()


_counter = iter(range(10**9))


@pytest.mark.parametrize("table", list(TABLES))
def test_fuzz_every_canonical_table_through_the_file_loader(store, table):
    ws, folder = store

    @settings(PROFILE)
    @given(rows=records(table), extra=st.booleans())
    def run(rows, extra):
        t0 = time.monotonic()
        columns = TABLES[table].names + (["junk"] if extra else [])
        name = f"{table}-{next(_counter)}.csv"
        path = folder / name
        path.write_bytes(_csv(rows, columns))
        before = ws.con.execute(f'SELECT count(*) FROM "{table}"').fetchall()[0][0]
        m = Mapping(table=table, read={"delimiter": ",", "quote": '"'})
        try:
            report = ws.ingest(table, path, mapping=m)[0]
        except ZhizaoError:
            # a whole file refused: nothing of it stored
            assert ws.con.execute(f'SELECT count(*) FROM "{table}"').fetchall()[0][0] == before
        else:
            if not report.already_loaded:  # (the same bytes may come twice)
                _check_stored_and_quarantined(ws, table, name, len(rows), report)
        if table in ("states", "production", "energy", "labour", "quality", "calendar", "equipment"):
            ws.invalidate()
            ws.kpi("site", "day")  # the engine computes the store (isolating what it cannot)
        assert time.monotonic() - t0 < STALL

    run()


# ------------------------------------------------------------------------------------------------- MQTT
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | HOSTILE_TEXT,
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                       max_size=3),
                           max_leaves=6)
LIVE = ("states", "production", "energy", "quality", "calendar", "labour", "equipment", "variables", "products")


def _live_record(table):
    cols = TABLES[table].columns
    known = st.fixed_dictionaries({}, optional={c.name: _value(c) | JSON_VALUES for c in cols})
    return known | st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=5)


def _payload():
    raw = st.sampled_from([b"", b"garbage", b"\xff\xfe", b"[", b"null", b"1e400", b'{"end": 1e400}',
                           b'[{"produced": NaN, "end": "2024-01-01T00:00:00Z"}]', b'"text"', b"[[1]]",
                           json.dumps({f"k{i}": i for i in range(300)}).encode()])
    return raw | st.sampled_from(LIVE).flatmap(
        lambda t: st.lists(_live_record(t), max_size=6).map(lambda rs: (t, json.dumps(rs).encode())))


TOPIC = "zhizao/v1/E1/S1/A1/L1/{eq}/{table}"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    from zhizao.live import LiveIngestor

    ing = LiveIngestor(tmp_path_factory.mktemp("live") / "live.duckdb")
    ing.ingest_messages([(TOPIC.format(eq="M1", table="equipment"), b'{"timezone": "Europe/Berlin"}')])
    yield ing
    ing.close()


def test_fuzz_mqtt_payloads(live):
    topics = st.sampled_from(["zhizao/v1/E1/S1/A1/L1/M1/{t}", "zhizao/v1/E1/S1/A1/L1/M9/{t}", "zhizao/v1/{t}",
                              "zhizao/v1/E1/S1/_/_/_/{t}", "zhizao/v1/E1/S1/A1/L1//{t}", "other/x/{t}"])

    @settings(PROFILE, max_examples=PROFILE.max_examples * 6)
    @given(msgs=st.lists(st.tuples(topics, _payload()), min_size=1, max_size=6))
    def run(msgs):
        t0 = time.monotonic()
        batch = []
        for topic, p in msgs:
            if isinstance(p, tuple):
                table, body = p
            else:
                table, body = "states", p
            batch.append((topic.format(t=table), body))
        q0 = live.ws.con.execute("SELECT count(*) FROM quarantine").fetchall()[0][0]
        r = live.ingest_messages(batch)
        assert r.messages == len(batch)
        assert r.records == r.loaded + r.quarantined + r.skipped
        rows = live.ws.con.execute("SELECT rule, code, CAST(params AS VARCHAR), detail FROM quarantine "
                                   "ORDER BY rowid DESC LIMIT ?", [r.quarantined]).fetchall()
        for rule, code, params, detail in rows:
            assert rule in RULES and code in KINDS, (rule, code, detail)
            assert detail_message(code, params, detail).text("en") == detail
        for t in ("production", "energy", "quality"):
            for (v,) in live.ws.con.execute(
                    f"SELECT {'produced' if t == 'production' else 'quantity' if t == 'energy' else 'value'} "
                    f"FROM {t}").fetchall():
                assert v is None or (math.isfinite(v) and abs(v) <= LIMITS.max_abs_value)
        # redelivered: skipped whole, nothing new anywhere
        again = live.ingest_messages(batch)
        assert again.loaded == 0 and again.duplicate_messages == len(batch)
        assert live.ws.con.execute("SELECT count(*) FROM quarantine").fetchall()[0][0] == q0 + r.quarantined
        assert time.monotonic() - t0 < STALL

    run()


# ------------------------------------------------------------------------------------------- upload route
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("fastapi")
    from test_server_support import bearer, clone, login, make_client

    client = make_client(clone(tmp_path_factory.mktemp("fuzzsrv") / "store.duckdb"))
    tokens = {n: bearer(login(client, n)) for n in ("root", "usera")}
    yield client, tokens
    client.app.state.server.close()


def _file_body():
    rows = st.sampled_from(["states", "production", "energy"]).flatmap(
        lambda t: records(t).map(lambda rs: _csv(rs, TABLES[t].names)))
    return rows | st.binary(max_size=200) | rows.map(gzip.compress) | st.binary(max_size=100).map(gzip.compress) | \
        st.sampled_from([b"PAR1garbage", b"\x1f\x8b\x08garbage", b"a,b\n" + b"x," * 5000 + b"\n",
                         b"\x00\x01\x02", b"equipment_id,start,state\nM1,2024-01-01,=1+1\n"])


def test_fuzz_upload_route(server):
    client, tokens = server
    names = st.sampled_from(["s.csv", "s.csv.gz", "s.parquet", "s.txt", "../x.csv", ".hidden.csv", "a/b.csv",
                             "s.exe", "", "x" * 200 + ".csv", "中文.csv", "s.csv\x00.txt"]) | st.text(max_size=20)
    mappings = st.none() | st.sampled_from([b"table: states\n", b"table: [", b"a: &a [1]\nb: *a\n",
                                            b"table: states\ncolumns: {start: {sql: \"1; SELECT 2\"}}\n",
                                            b"table: states\ncolumns: {start: {sql: \"read_text('/etc/passwd')\"}}\n",
                                            b"\xff\xfe", b"table: states\nscale: {x: .nan}\n"]) | st.binary(max_size=60)

    @settings(PROFILE, max_examples=PROFILE.max_examples * 6)
    @given(table=st.sampled_from(["states", "production", "energy", "nonsense", "projects"]), name=names,
           body=_file_body(), mapping=mappings, who=st.sampled_from(["root", "usera"]))
    def run(table, name, body, mapping, who):
        t0 = time.monotonic()
        files = {"file": (name, io.BytesIO(body), "application/octet-stream")}
        if mapping is not None:
            files["mapping"] = ("m.yaml", io.BytesIO(mapping), "application/x-yaml")
        r = client.post(f"/api/v1/ingest/{table}", headers=tokens[who], files=files)
        assert r.status_code < 500, (r.status_code, r.text[:300])
        assert "Traceback" not in r.text and "/tmp/" not in r.text
        if r.status_code >= 400:
            e = r.json()["error"]
            assert e["status"] == r.status_code and e["message"]
        else:
            d = r.json()
            for q in d["quarantine"]:
                assert q["rule"] in RULES
        assert time.monotonic() - t0 < STALL

    run()
