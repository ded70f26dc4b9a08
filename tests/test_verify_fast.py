"""The fast verification path gives the results of the reference path.

Reference: every project verified on its own (per-scope queries, fresh inputs) with the statsmodels engine
(``OLS(...).fit().get_robustcov_results(cov_type='HAC', ...)``) for every candidate and final model. Fast:
``verify_all_projects`` with the bulk-read cache and the numpy engine, serially and in a process pool.
Estimates, intervals, chosen models, warnings and windows must agree (floating point only).
"""

import functools
import math
import multiprocessing as mp

import numpy as np
import pandas as pd
import pytest

import zhizao
from zhizao.demo import PROGRAMME_ORDER
from zhizao.errors import InputError
from zhizao.simulate import simulate_programme, write_programme
from zhizao.verify import model as M
from zhizao.verify import verify_all_projects, verify_project
from zhizao.verify.series import monthly_output, scope_series

KW = dict(n_projects=8, n_enterprises=4, seed=5, months_before=3, months_after=3)


@pytest.fixture(scope="module")
def programme(tmp_path_factory):
    d = tmp_path_factory.mktemp("fast")
    tables = simulate_programme(**KW)
    paths = write_programme(tables, d / "csv")
    with zhizao.connect(d / "p.duckdb") as ws:
        for t in PROGRAMME_ORDER:
            ws.ingest(t, paths[t])
    return d, pd.read_csv(paths["truth_projects"])


def _copy(d, name):
    import shutil

    shutil.copy(d / "p.duckdb", d / name)
    return zhizao.connect(d / name)


def _same(a, b, path=""):
    """Equal structures; floats to 1e-9 relative (1e-12 absolute)."""
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            _same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, (float, int)):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), (path, a, b)
    else:
        assert a == b, (path, a, b)


@pytest.fixture(scope="module")
def reference(programme):
    d, _truth = programme
    ws = _copy(d, "ref.duckdb")
    mp_ = pytest.MonkeyPatch()
    mp_.setattr(M, "fit", functools.partial(M.fit, engine="statsmodels"))
    mp_.setattr(M, "choose", functools.partial(M.choose, engine="statsmodels"))
    try:
        ids = [p for (p,) in ws.con.execute("SELECT project_id FROM projects ORDER BY 1").fetchall()]
        out = []
        for pid in ids:
            ws.invalidate()  # nothing shared between projects: fresh inputs, per-scope queries
            out += verify_project(ws, pid, store=False)
    finally:
        mp_.undo()
        ws.close()
    return [r.to_dict() for r in out]


def test_bulk_numpy_path_equals_the_reference(programme, reference):
    d, _truth = programme
    with _copy(d, "fast.duckdb") as ws:
        fast = [r.to_dict() for r in verify_all_projects(ws)]
        stored = ws.con.execute("SELECT count(*) FROM verifications").fetchone()[0]
    assert stored == len(fast) == len(reference) == 5 * KW["n_projects"]
    for a, b in zip(reference, fast):
        _same(a, b, f"{a['project_id']}/{a['indicator']}")
    energy = [r for r in fast if r["indicator"] == "unit_energy"]
    assert all(r["ci_low"] is not None for r in energy)
    # the chosen models agree term by term
    assert [r["fit"]["terms"] for r in energy] == [r["fit"]["terms"] for r in reference
                                                   if r["indicator"] == "unit_energy"]


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="the process pool needs fork")
def test_process_pool_gives_the_same_results_in_the_same_order(programme, reference):
    d, _truth = programme
    with _copy(d, "pool.duckdb") as ws:
        seen = []
        fast = [r.to_dict() for r in verify_all_projects(ws, workers=2, progress=lambda i, n: seen.append(i))]
        assert ws.con.execute("SELECT count(*) FROM verifications").fetchone()[0] == len(fast)
    assert seen == list(range(1, KW["n_projects"] + 1))
    for a, b in zip(reference, fast):
        _same(a, b, f"{a['project_id']}/{a['indicator']}")


def test_windows_are_the_months_with_operating_records(programme, reference):
    # the simulator books not_scheduled "no data" states over its site's whole range; the default windows are
    # clipped to the project's own data months, which are the simulator's windows
    _d, truth = programme
    t = truth.set_index("project_id")
    for r in reference:
        row = t.loc[r["project_id"]]
        assert pd.Timestamp(r["baseline_period"][0]) == pd.Timestamp(row["baseline_start"])
        assert pd.Timestamp(r["baseline_period"][1]) == pd.Timestamp(row["baseline_end"])
        assert pd.Timestamp(r["reporting_period"][0]) == pd.Timestamp(row["reporting_start"])
        assert pd.Timestamp(r["reporting_period"][1]) == pd.Timestamp(row["reporting_end"])


def test_monthly_output_equals_the_monthly_elements(programme):
    d, truth = programme
    with _copy(d, "months.duckdb") as ws:
        for _, row in truth.iterrows():
            w = (pd.Timestamp(row["baseline_start"]), pd.Timestamp(row["reporting_end"]))
            a = monthly_output(ws, row["scope"], *w)["gq"]
            b = scope_series(ws, row["scope"], "month", *w)["gq"]
            pd.testing.assert_series_equal(a, b, check_names=False, check_freq=False, rtol=1e-12)


def _design(rng, n, k, dummies):
    X = pd.DataFrame(rng.normal(size=(n, k)) * rng.uniform(0.5, 500, k), columns=[f"x{i}" for i in range(k)])
    for j in range(dummies):
        X[f"d{j}"] = (rng.random(n) < 0.3).astype(float)
    return X


@pytest.mark.parametrize("n,k,dummies,rho", [(30, 1, 0, 0.0), (180, 2, 0, 0.6), (365, 1, 6, 0.3),
                                             (12, 1, 0, 0.0), (500, 3, 2, 0.8), (60, 0, 0, 0.2)])
def test_numpy_engine_equals_statsmodels(n, k, dummies, rho):
    rng = np.random.default_rng(n + k)
    X = _design(rng, n, k, dummies)
    e = np.zeros(n)
    for i in range(1, n):  # AR(1) noise, so that the Newey-West terms matter
        e[i] = rho * e[i - 1] + rng.normal(0, 5)
    y = 100 + X.to_numpy() @ rng.uniform(0.1, 2, X.shape[1]) + e
    a, b = M.fit(y, X), M.fit(y, X, engine="statsmodels")
    scale = np.abs(y).max()
    np.testing.assert_allclose(a.params, b.params, rtol=1e-10)
    np.testing.assert_allclose(a.cov_hac, b.cov_hac, rtol=1e-10, atol=1e-14 * np.abs(b.cov_hac).max())
    np.testing.assert_allclose(a.result.resid, np.asarray(b.result.resid), rtol=1e-10, atol=1e-12 * scale)
    for key in ("r2", "adj_r2", "cv_rmse", "nmbe", "bic", "f_p"):
        if b.stats[key] is None:
            assert a.stats[key] is None
        else:
            assert a.stats[key] == pytest.approx(b.stats[key], rel=1e-10, abs=1e-14), key
    assert a.stats["pvalues"].keys() == b.stats["pvalues"].keys()
    for key, v in b.stats["pvalues"].items():
        assert a.stats["pvalues"][key] == pytest.approx(v, rel=1e-10, abs=1e-15), key
    assert (a.passed, a.failed, a.terms, a.lags) == (b.passed, b.failed, b.terms, b.lags)
    if k:
        Xr = _design(rng, 50, k, dummies)
        yr = 0.8 * (100 + Xr.to_numpy() @ np.ones(Xr.shape[1]))
        for method in ("exact_hac", "ashrae14", "block_bootstrap"):
            sa = M.savings(a, Xr, yr, 0.9, method, n_boot=99, Xb=X, yb=y)
            sb = M.savings(b, Xr, yr, 0.9, method, n_boot=99, Xb=X, yb=y)
            for key in ("adjusted", "savings", "fraction", "frac_low", "frac_high", "se"):
                assert getattr(sa, key) == pytest.approx(getattr(sb, key), rel=1e-10), (method, key)


def test_numpy_engine_chooses_the_statsmodels_model():
    rng = np.random.default_rng(11)
    for case in range(8):
        n = 120 + 30 * case
        X = _design(rng, n, 3, 6)
        X["x2"] = rng.normal(size=n)  # a useless candidate
        y = 50 + 2 * X["x0"].to_numpy() + (3 * X["d1"] if case % 2 else 0) + rng.normal(0, 20, n)
        groups = [["x0"], ["x1"], ["x2"], [f"d{j}" for j in range(6)]]
        fa, wa = M.choose(y, X, groups)
        fb, wb = M.choose(y, X, groups, engine="statsmodels")
        assert fa.terms == fb.terms and wa == wb
        np.testing.assert_allclose(fa.params, fb.params, rtol=1e-10)
        assert fa.stats["bic"] == pytest.approx(fb.stats["bic"], rel=1e-12)


def test_collinear_design_and_unknown_engine():
    x = np.arange(20.0)
    X = pd.DataFrame({"a": x, "b": 2 * x})
    for engine in M.ENGINES:
        with pytest.raises(np.linalg.LinAlgError):
            M.fit(x, X, engine=engine)
    with pytest.raises(InputError, match="unknown engine"):
        M.fit(x, X[["a"]], engine="R")
