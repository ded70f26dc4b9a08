"""The equipment table's named queries (zhizao.store.equipment), on a hand-made table."""

from __future__ import annotations

import zhizao
from zhizao.store import equipment as q

EQUIPMENT = """equipment_id,work_center,area,site,enterprise,timezone
B-M2,B-WC1,B-A1,B-S1,ENT_B,Asia/Shanghai
A-M1,A-WC1,A-A1,S1,ENT_A,Asia/Urumqi
A-M2,A-WC1,A-A1,S1,ENT_A,
X-M9,,,S1,,Asia/Shanghai
"""


def test_equipment_queries(tmp_path):
    (tmp_path / "eq.csv").write_text(EQUIPMENT, encoding="utf-8")
    with zhizao.connect(tmp_path / "s.duckdb") as ws:
        r = ws.ingest("equipment", tmp_path / "eq.csv")[0]
        assert r.loaded == 4, r
        con = ws.con
        assert q.equipment_table(con)["equipment_id"].tolist() == ["A-M1", "A-M2", "B-M2", "X-M9"]
        h = q.hierarchy(con, zone=True).set_index("equipment_id")
        assert h.loc["A-M2", "tz"] == "UTC" and h.loc["A-M1", "tz"] == "Asia/Urumqi"
        assert list(h.columns) == ["work_center", "area", "site", "enterprise", "tz"]
        rows = {r[0]: r for r in q.hierarchy_rows(con)}
        assert rows["X-M9"] == ("X-M9", None, None, "S1", None)  # None, not NaN, where a level is not given
        assert q.equipment_of(con, ["ENT_A"]) == ["A-M1", "A-M2"]
        assert q.equipment_of(con, []) == []
        assert q.owners(con) == [("A-M1", "ENT_A"), ("A-M2", "ENT_A"), ("B-M2", "ENT_B"), ("X-M9", None)]
        assert q.enterprises_at(con, "S1") == ["ENT_A"]
        assert q.known(con, ["A-M1", "NOPE", "X-M9"]) == {"A-M1", "X-M9"}
        assert q.zones(con) == ["Asia/Shanghai", "Asia/Urumqi"]
        assert q.first_zone(con) == "Asia/Shanghai"
        assert sorted(q.group_zones(con)["tz"]) == ["Asia/Shanghai", "Asia/Shanghai", "Asia/Urumqi", "UTC"]
