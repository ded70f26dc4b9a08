"""Recognition rule sets as data, assessor confirmations, conflicts of recognised plants, capability maturity
(model file, scoring rule on hand-computed cases, platform import, questionnaire facts) and eligibility.

The store is test_portfolio's hand-made one; every expected value is computed by hand below.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from test_portfolio import build_store
from zhizao.cli.main import app as cli_app
from zhizao.errors import InputError, NotFound
from zhizao.portfolio import maturity
from zhizao.portfolio.recognition import confirm, recognition_checks, recognition_conflicts, verdict
from zhizao.portfolio.rulesets import all_rulesets, ruleset, select


@pytest.fixture
def ws(tmp_path):
    w = build_store(tmp_path / "p" / "p.duckdb")
    yield w
    w.close()


def rows(df):
    return df.set_index("criterion")


# -- rule sets -------------------------------------------------------------------------------------------

def test_rule_sets_are_versioned_data_with_sources():
    names = set(all_rulesets())
    assert {"chongqing-2018-digital-workshop", "chongqing-2018-smart-factory", "miit-2024-factory-ladder"} <= names
    for rs in all_rulesets().values():
        assert rs.source.get("url", "").startswith("https://") and rs.version and rs.title["zh"] and rs.title["en"]
        for c in rs.criteria:
            assert c.text["zh"] and c.text["en"], (rs.name, c.id)
    dw = ruleset("chongqing-2018-digital-workshop")
    th = {c.id: (c.operator, c.threshold) for c in dw.criteria if c.kind == "computed"}
    assert th == {"digital_equipment_share": (">=", 0.5), "data_upload_rate": (">=", 0.9)}
    sf = ruleset("chongqing-2018-smart-factory")
    th = {c.id: (c.operator, c.threshold) for c in sf.criteria if c.kind == "computed"}
    assert th == {"digital_equipment_share": (">=", 0.65), "digital_workshops": (">=", 2.0),
                  "production_efficiency_change": (">=", 0.10), "operating_cost_change": ("<=", -0.15)}
    assert select("digital_workshop", day=dt.date(2021, 5, 1)).name == "chongqing-2018-digital-workshop"
    with pytest.raises(NotFound, match="no rule set of designation ladder_excellent is valid on 2020-01-01"):
        select("ladder_excellent", day=dt.date(2020, 1, 1))
    with pytest.raises(NotFound, match="unknown rule set nope"):
        ruleset("nope")


def test_a_rule_set_of_another_year_is_selected_by_name_or_programme(ws, tmp_path):
    folder = tmp_path / "rules"
    folder.mkdir()
    doc = yaml.safe_load(Path(ruleset("chongqing-2018-digital-workshop").path).read_text("utf-8"))
    doc["ruleset"], doc["version"] = "chongqing-2023-digital-workshop", "2023"
    doc["valid_from"] = "2023-01-01"
    doc["criteria"][1]["threshold"] = 0.70  # a laxer upload rate, to tell the two apart
    (folder / "cq2023.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), "utf-8")
    import os

    from zhizao.portfolio import rulesets

    os.environ["ZHIZAO_RULESETS"] = str(folder)
    try:
        r = rows(recognition_checks(ws, "E1", "digital_workshop", ("2023-01-01", "2023-02-01")))
        assert r.loc["data_upload_rate", "ruleset"] == "chongqing-2023-digital-workshop"  # the latest valid one
        assert r.loc["data_upload_rate", "passed"] is True  # 3/4 >= 0.70
        r = rows(recognition_checks(ws, "E1", "digital_workshop", ("2023-01-01", "2023-02-01"),
                                    rules="chongqing-2018-digital-workshop"))
        assert r.loc["data_upload_rate", "passed"] is False  # 3/4 < 0.90
        r = rows(recognition_checks(ws, "E1", "digital_workshop", ("2022-01-01", "2022-12-31")))
        assert r.loc["data_upload_rate", "ruleset"] == "chongqing-2018-digital-workshop"  # valid then
    finally:
        del os.environ["ZHIZAO_RULESETS"]
        rulesets._all.cache_clear()


def _custom_ladder(monkeypatch, folder: Path, criterion: dict) -> None:
    """The ladder rule set as ``custom-ladder``, its tier-below criterion replaced by ``criterion``."""
    from zhizao.portfolio import rulesets

    doc = yaml.safe_load((rulesets.DATA / "miit-2024-factory-ladder.yaml").read_text("utf-8"))
    doc["ruleset"] = "custom-ladder"
    doc["criteria"][1] = {**doc["criteria"][1], **criterion}
    doc["criteria"][1] = {k: v for k, v in doc["criteria"][1].items() if v is not None}
    folder.mkdir()
    (folder / "custom.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), "utf-8")
    monkeypatch.setenv("ZHIZAO_RULESETS", str(folder))
    rulesets._all.cache_clear()


def test_a_rule_set_criterion_must_say_how_its_threshold_compares(ws, tmp_path, monkeypatch):
    from zhizao.portfolio import rulesets

    try:
        # E1 does not hold the advanced tier (value 0): without an operator it was judged 0 <= 1, a pass
        _custom_ladder(monkeypatch, tmp_path / "a", {"operator": None})
        with pytest.raises(InputError, match="criterion advanced_tier_first: threshold 1 has no operator"):
            recognition_checks(ws, "E1", "ladder_excellent", rules="custom-ladder")
        # a designation_held measure that names no designation was judged against designation None
        _custom_ladder(monkeypatch, tmp_path / "b", {"designation_held": None})
        with pytest.raises(InputError, match="measure designation_held names no designation"):
            recognition_checks(ws, "E1", "ladder_excellent", rules="custom-ladder")
        # a threshold set by the caller for a criterion without one (nor an operator) is refused too
        _custom_ladder(monkeypatch, tmp_path / "c", {"operator": None, "threshold": None})
        r = rows(recognition_checks(ws, "E1", "ladder_excellent", rules="custom-ladder"))
        assert (r.loc["advanced_tier_first", "value"], r.loc["advanced_tier_first", "verdict"]) == (0, "no_data")
        with pytest.raises(InputError, match="criterion advanced_tier_first of rule set custom-ladder has no "
                                             "operator"):
            recognition_checks(ws, "E1", "ladder_excellent", rules="custom-ladder",
                               thresholds={"advanced_tier_first": 1})
        assert rows(recognition_checks(ws, "E1", "ladder_excellent", rules="custom-ladder",
                                       thresholds={"maturity_level": 0}))["verdict"]["maturity_level"] == "no_data"
    finally:
        monkeypatch.delenv("ZHIZAO_RULESETS")
        rulesets._all.cache_clear()


def test_verdict_per_criterion_and_overall_with_confirmations(ws):
    r = recognition_checks(ws, "E1", "digital_workshop", ("2023-01-01", "2023-02-01"), scope="WC1")
    rr = rows(r)
    assert rr.loc["digital_equipment_share", "verdict"] == "pass" and rr.loc["data_upload_rate", "verdict"] == "pass"
    assert rr.loc["mes_coverage", "verdict"] == "pending"
    assert rr.loc["mes_coverage", "text_zh"].startswith("建立制造执行系统")
    assert verdict(r) == {"verdict": "pending", "failed": [],
                          "pending": ["equipment_networked", "mes_coverage", "system_integration"]}
    for crit in ("equipment_networked", "mes_coverage", "system_integration"):
        confirm(ws.con, "E1", "chongqing-2018-digital-workshop", crit, True, "user:ass", scope="WC1",
                evidence="f0001,f0002", comment="site visit 2023-02-10")
    r = recognition_checks(ws, "E1", "digital_workshop", ("2023-01-01", "2023-02-01"), scope="WC1")
    c = rows(r).loc["mes_coverage"]
    assert c["verdict"] == "confirmed" and c["confirmation"]["assessor"] == "user:ass"
    assert c["evidence"] == ["f0001", "f0002"] and "confirmed by user:ass" in c["basis"].text("en")
    assert verdict(r)["verdict"] == "pass"
    # a later refusal wins; the whole enterprise (no scope) has its own confirmations
    confirm(ws.con, "E1", "chongqing-2018-digital-workshop", "mes_coverage", False, "user:ass2", scope="WC1",
            comment="MES covers planning only")
    r = recognition_checks(ws, "E1", "digital_workshop", ("2023-01-01", "2023-02-01"), scope="WC1")
    assert verdict(r) == {"verdict": "fail", "failed": ["mes_coverage"], "pending": []}
    assert rows(recognition_checks(ws, "E1", "digital_workshop"))["verdict"]["mes_coverage"] == "pending"
    with pytest.raises(InputError, match="digital_equipment_share is not a declared criterion"):
        confirm(ws.con, "E1", "chongqing-2018-digital-workshop", "digital_equipment_share", True, "user:x")
    from zhizao.portfolio import audit

    assert audit.entries(ws.con, entity="criterion")["action"].tolist() == ["confirm"] * 3 + ["not_confirm"]


def test_ladder_tier_uses_maturity_and_the_tier_below(ws):
    r = rows(recognition_checks(ws, "E1", "ladder_excellent", rules="miit-2024-factory-ladder"))
    assert r.loc["maturity_level", "verdict"] == "no_data"
    assert "no capability maturity assessment of E1" in r.loc["maturity_level", "basis"].text("en")
    assert r.loc["advanced_tier_first", "value"] == 0 and r.loc["advanced_tier_first", "verdict"] == "fail"
    maturity.record(ws.con, "E1", source="platform", assessed_on="2024-05-01", level=3, score_=3.42, actor="cli:t")
    ws.ingest("designations", _csv(ws, "enterprise_id,scope,name,designation,level,date\n"
                                       "E1,S1,Alpha plant,先进级智能工厂,市级,2024-06-01\n"))
    r = rows(recognition_checks(ws, "E1", "ladder_excellent", rules="miit-2024-factory-ladder"))
    assert (r.loc["maturity_level", "value"], r.loc["maturity_level", "verdict"]) == (3, "pass")
    assert r.loc["advanced_tier_first", "verdict"] == "pass"
    assert r.loc["advanced_tier_first", "evidence"] == ["E1/S1"]


def _csv(ws, text):
    p = Path(ws.path).parent / f"x{abs(hash(text))}.csv"
    p.write_text(text, encoding="utf-8")
    return p


def test_conflicts_of_recognised_plants(ws):
    # test_portfolio's store: E1's workshops WC1, WC2 and its smart factory S1 are recognised;
    # over all data: S1's digital share 2/4 < 65 % fails; WC2 (M3 not digital, M4 unknown) fails 50 %;
    # WC1 passes both; upload: WC2's M3 sent energy, M4 sent states -> 2/2; S1 4/4
    c = recognition_conflicts(ws)
    got = sorted((x.unit, x.criterion, round(x.value, 4)) for x in c.itertuples())
    assert got == [("E1/S1", "digital_equipment_share", 0.5), ("E1/WC2", "digital_equipment_share", 0.0),
                   ("E1/WC2", "digital_equipment_share", 0.0)]  # WC2 recognised at two levels: two records
    assert set(c["ruleset"]) == {"chongqing-2018-smart-factory", "chongqing-2018-digital-workshop"}
    # only computed criteria the data decide are conflicts; a revoked recognition is none
    ws.con.execute("UPDATE designations SET revoked = DATE '2023-12-01' WHERE designation = 'smart_factory'")
    assert "E1/S1" not in set(recognition_conflicts(ws)["unit"])


def test_recognition_command_with_rules(tmp_path):
    w = build_store(tmp_path / "c" / "c.duckdb")
    w.close()
    res = CliRunner().invoke(cli_app, ["recognition", "--db", w.path, "--enterprise", "E1", "--designation",
                                       "digital_workshop", "--rules", "chongqing-2018-digital-workshop",
                                       "--from", "2023-01-01", "--to", "2023-02-01", "--format", "json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["verdict"]["verdict"] == "fail" and out["ruleset"]["ruleset"] == "chongqing-2018-digital-workshop"
    assert {c["criterion"]: c["verdict"] for c in out["criteria"]}["data_upload_rate"] == "fail"
    res = CliRunner().invoke(cli_app, ["recognition", "--db", w.path, "--enterprise", "E1", "--designation",
                                       "digital_workshop", "--rules", "nope"])
    # the error contract: one line and exit code 2
    assert res.exit_code == 2 and "unknown rule set nope" in res.output, res.output


# -- capability maturity ---------------------------------------------------------------------------------

def test_the_shipped_model_is_the_standards_structure_without_invented_texts():
    m = maturity.model()
    assert [lv[1] for lv in m.levels] == ["规划级", "规范级", "集成级", "优化级", "引领级"]
    assert [e[1] for e in m.elements] == ["人员", "技术", "资源", "制造"]
    assert [d[1] for d in m.domains] == ["组织战略", "人员技能", "数据", "集成", "信息安全", "装备", "网络", "设计",
                                         "生产", "物流", "销售", "服务"]
    assert len(m.subdomains) == 20
    assert all(s.source for s in m.subdomains) and all(d[5] for d in m.domains)
    assert not m.has_requirements  # the standard's requirement texts are not shipped ...
    assert "不编造" in m.requirements_note["zh"] and "does not invent" in m.requirements_note["en"]  # ... it says so
    rule = maturity.scoring_rule()
    assert rule["score_values"] == {"full": 1.0, "most": 0.8, "part": 0.5, "none": 0.0}
    assert rule["threshold_value"] == 0.8
    assert rule["scores"]["basis"] == rule["threshold"]["basis"] == "standard"
    assert {rule[k]["basis"] for k in ("subdomain_score", "domain_score", "level_score", "levels_in_order",
                                       "overall_score")} == {"reading"}
    with pytest.raises(InputError, match="no requirement texts yet"):
        maturity.score({})


def _small_model(tmp_path) -> maturity.Model:
    doc = {"model": "small", "version": "t", "title": {"zh": "t", "en": "t"}, "levels": [
        {"level": 1, "zh": "规划级", "en": "Planning"}, {"level": 2, "zh": "规范级", "en": "Standardised"}],
        "elements": [{"id": "e", "zh": "E", "en": "E", "domains": [
            {"id": "d1", "zh": "D1", "en": "D1", "weight": 1, "subdomains": [
                {"id": "s1", "zh": "S1", "en": "S1", "requirements": {1: [{"id": "r1"}, {"id": "r2"}],
                                                                      2: [{"id": "r4"}]}},
                {"id": "s2", "zh": "S2", "en": "S2", "requirements": {2: [{"id": "r5"}]}}]},
            {"id": "d2", "zh": "D2", "en": "D2", "weight": 1, "subdomains": [
                {"id": "s3", "zh": "S3", "en": "S3", "requirements": {1: [{"id": "r3"}], 2: [{"id": "r6"}]}}]}]}]}
    p = tmp_path / "small.yaml"
    p.write_text(yaml.safe_dump(doc, allow_unicode=True), "utf-8")
    return maturity.load_model(p)


def test_scoring_on_hand_computed_cases(tmp_path):
    m = _small_model(tmp_path)
    # level 1: S1 = (1 + 0.5) / 2 = 0.75 -> D1 0.75; S3 = 0.8 -> D2 0.8; level 1 = 0.775 < 0.8: not reached
    s = maturity.score({"r1": 1, "r2": "部分满足", "r3": "most"}, m)
    assert s["levels"][1]["score"] == pytest.approx(0.775) and not s["levels"][1]["reached"]
    assert s["level"] == 0 and s["score"] == pytest.approx(0.775)
    assert s["domain_scores"] == pytest.approx({"d1": 0.75, "d2": 0.8})
    # r2 mostly met: S1 = 0.9, level 1 = 0.85 reached; level 2: S1 = 1, S2 = 0.5 -> D1 0.75, D2 0.8 -> 0.775
    s = maturity.score({"r1": 1, "r2": 0.8, "r3": 0.8, "r4": "全部满足", "r5": 0.5, "r6": 0.8}, m)
    assert (s["level"], s["levels"][1]["reached"], s["levels"][2]["reached"]) == (1, True, False)
    assert s["levels"][2]["score"] == pytest.approx(0.775) and s["score"] == pytest.approx(1.775)
    # a higher level does not count before a lower one: level 2 met in full, level 1 not
    s = maturity.score({"r4": 1, "r5": 1, "r6": 1}, m)
    assert s["levels"][2]["score"] == 1.0 and s["level"] == 0
    # all met: level 2, score 2
    s = maturity.score({r: 1 for r in ("r1", "r2", "r3", "r4", "r5", "r6")}, m)
    assert (s["level"], s["score"]) == (2, 2.0)
    with pytest.raises(InputError, match=r"requirement r1: 0\.7 is not one of the scores"):
        maturity.score({"r1": 0.7}, m)
    with pytest.raises(InputError, match="requirement r9 is not in the model small"):
        maturity.score({"r9": 1}, m)


def test_import_of_the_self_diagnosis_platforms_results(ws, tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "E1-2024.pdf").write_bytes(b"%PDF-1.7\n% report of E1\n")
    (reports / "fake.pdf").write_bytes(b"MZ\x90\x00 not a pdf")
    f = tmp_path / "platform.csv"
    f.write_bytes(("企业编号,评估日期,等级,得分,组织战略,数据,报告\n"
                   "E1,2024-05-10,二级,2.56,0.9,0.7,E1-2024.pdf\n"
                   "E2,2024/06/01,3,3.1,,,\n"
                   "E9,2024-06-01,1,1.2,,,\n"
                   "E3,2024-06-01,六级,,,,\n"
                   "E3,2024-06-02,2,2.2,,,fake.pdf\n").encode("gbk"))
    res = maturity.import_results(ws, f, report_folder=reports, actor="cli:t")
    assert len(res["imported"]) == 2
    assert [(line, m.code) for line, m in res["rejected"]] == [(n, "maturity.import_row") for n in (4, 5, 6)]
    assert "E9 is not registered" in res["rejected"][0][1].text("en")
    assert "六级 is not a maturity level" in res["rejected"][1][1].text("en")
    assert "does not contain what its suffix says" in res["rejected"][2][1].text("en")
    cur = maturity.current_level(ws, "E1")
    assert (cur["level"], cur["score"], cur["source"], cur["date"]) == (2, 2.56, "platform", dt.date(2024, 5, 10))
    assert cur["domain_scores"] == {"organizational_strategy": 0.9, "data": 0.7}
    from zhizao.portfolio import evidence

    a = maturity.assessments(ws, "E1").iloc[0]
    rec = evidence.get(ws.con, a["report_file"], with_content=True)
    assert rec["content"].startswith(b"%PDF") and len(rec["sha256"]) == 64 and rec["enterprise_id"] == "E1"
    # eligibility as data: level 2 is enough for a demonstration application, not for the excellent tier
    e = {r["id"]: r["passed"] for r in maturity.eligibility(ws, "E1", "demonstration_project")}
    assert e == {"programme-demonstration-project": True}
    assert [r["passed"] for r in maturity.eligibility(ws, "E1", "ladder_excellent")] == [False]
    assert [r["passed"] for r in maturity.eligibility(ws, "E3", "demonstration_project")] == [None]


def test_questionnaire_prefills_what_the_data_give(ws):
    q = maturity.questionnaire(ws, "E1")
    f = q["facts"]
    # E1: M1, M2 digital, M3 not, M4 unknown -> 2/4; all four sent data at some time; the store's last record
    # is 2023-01-16 (energy of M3): the 30 days before hold M1, M2, M3 but not M4 (2022-12-05)
    assert (f["n_equipment"], f["digital_equipment_share"], f["equipment_connectivity"]) == (4, 0.5, 1.0)
    assert f["data_upload_rate"] == 0.75
    assert not q["has_requirements"] and q["requirements"] == []
    assert "ERP" in q["systems"] and q["current"] is None


def test_maturity_commands(tmp_path):
    w = build_store(tmp_path / "m" / "m.duckdb")
    w.close()
    f = tmp_path / "p.xlsx"
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.append(["enterprise_id", "assessed_on", "level", "score"])
    wb.active.append(["E2", dt.date(2024, 3, 1), "集成级", 3.3])
    wb.save(f)
    run = CliRunner().invoke
    res = run(cli_app, ["maturity", "import", str(f), "--db", w.path])
    assert res.exit_code == 0 and "1 assessments imported" in res.output, res.output
    res = run(cli_app, ["maturity", "show", "E2", "--db", w.path, "--format", "json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["current"]["level"] == 3 and out["current"]["date"] == "2024-03-01"
    assert out["eligibility"] == [] or all("id" in r for r in out["eligibility"])
    res = run(cli_app, ["maturity", "show", "E2", "--db", w.path])
    assert res.exit_code == 0 and "集成级" in res.output
