"""A simulated programme with known effects: verification from data recovers the average effects.

The bootstrap interval over projects of each indicator's unweighted mean must contain the mean of the known
(drawn) effects of the same projects, and the bulletin must state the verified figures.
"""

import pandas as pd
import pytest

from zhizao.demo import PROGRAMME_INDICATOR_TRUTH, run_programme


@pytest.fixture(scope="module")
def programme(tmp_path_factory):
    out = tmp_path_factory.mktemp("programme")
    return out, run_programme(out, n_projects=30, n_enterprises=15, seed=11)


def test_verified_means_recover_the_known_average_effects(programme):
    _out, prog = programme
    av = prog["statistics"]["averages"]
    av = av[av["basis"] == "verified"].set_index("indicator")
    truth = prog["truth"].set_index("project_id")
    for indicator, col in PROGRAMME_INDICATOR_TRUTH.items():
        row = av.loc[indicator]
        known = truth.loc[list(row["project_ids"]), col].mean()
        assert row["ci_low"] <= known <= row["ci_high"], (indicator, row["mean"], row["ci_low"], row["ci_high"], known)
        assert abs(row["mean"] - known) < 0.05, (indicator, row["mean"], known)


def test_project_results_equal_the_simulators_own_ratios_of_totals(programme):
    # the simulator computes each window's ratio of totals from the data it wrote, without zhizao: zhizao's
    # simple change (the plain ratio of totals beside the standardised figure) equals it; the development
    # cycle has no standardisation, its improvement is that ratio
    out, prog = programme
    import zhizao
    from zhizao.verify import stored_results

    with zhizao.connect(out / "programme.duckdb") as ws:
        res = {(r.project_id, r.indicator): r for r in stored_results(ws)}
    truth = prog["truth"].set_index("project_id")
    for indicator, col, sign in (("production_efficiency", "efficiency_realised", 1),
                                 ("defect_rate", "defect_rate_realised", -1),
                                 ("development_cycle", "development_cycle_realised", -1)):
        ids = [p for (p, i), r in res.items() if i == indicator and r.simple_change is not None]
        assert len(ids) >= 20
        got = pd.Series({p: sign * res[(p, indicator)].simple_change for p in ids})
        pd.testing.assert_series_equal(got.sort_index(), truth.loc[sorted(ids), col], check_names=False,
                                       rtol=1e-9)


def test_declared_figures_are_shown_apart_and_are_optimistic(programme):
    _out, prog = programme
    av = prog["statistics"]["averages"].set_index(["indicator", "basis"])
    for indicator in PROGRAMME_INDICATOR_TRUTH:
        assert av.loc[(indicator, "declared"), "mean"] > av.loc[(indicator, "verified"), "mean"]


def test_bulletins_are_written_and_state_the_verified_means(programme):
    out, prog = programme
    zh = (out / "bulletin" / "bulletin.zh.md").read_text(encoding="utf-8")
    en = (out / "bulletin" / "bulletin.en.md").read_text(encoding="utf-8")
    n = len(prog["truth"])
    assert f"{n}" in zh and "智能化改造" in zh
    # marked from the data's provenance (the demo sets no title flag)
    assert "模拟数据" in zh.splitlines()[0] and "SIMULATED" in en.splitlines()[0]
    av = prog["statistics"]["averages"]
    eff = av[(av["indicator"] == "production_efficiency") & (av["basis"] == "verified")]["mean"].iloc[0]
    assert f"{100 * eff:.1f}" in en and f"{100 * eff:.1f}" in zh
    html = (out / "bulletin" / "bulletin.zh.html").read_text(encoding="utf-8")
    assert "<svg" in html and "https://" not in html.split("</head>")[0]
