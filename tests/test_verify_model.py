"""The verification statistics against hand computation and published formulas."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from zhizao.verify.model import choose, fit, long_run_variance, savings
from zhizao.verify.ratios import dispersion, proportion_ratio, ratio_of_totals_change


def data(n=200, seed=0, effect=0.0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10, n)
    return x, 10 + 3 * x + rng.normal(0, 2, n), rng


def test_ols_fit_figures_by_hand():
    x, y, _ = data()
    f = fit(y, pd.DataFrame({"x": x}))
    A = np.column_stack([np.ones_like(x), x])
    beta = np.linalg.lstsq(A, y, rcond=None)[0]
    e = y - A @ beta
    n, p = A.shape
    assert np.allclose(f.params, beta)
    assert f.stats["cv_rmse"] == pytest.approx(np.sqrt(e @ e / (n - p)) / y.mean())
    assert f.stats["nmbe"] == pytest.approx(e.sum() / ((n - p) * y.mean()), abs=1e-12)
    assert f.stats["r2"] == pytest.approx(1 - e @ e / ((y - y.mean()) @ (y - y.mean())))
    assert f.passed


def test_choose_takes_the_simplest_valid_model():
    x, y, rng = data()
    X = pd.DataFrame({"x": x, "noise": rng.normal(size=x.size)})
    f, w = choose(y, X, [["noise"], ["x"]])
    assert f.terms == ["const", "x"] and not w
    f, w = choose(rng.normal(size=x.size), X, [["noise"]])
    assert w and "no model passed" in w[0]


def test_exact_savings_variance_by_hand():
    x, y, rng = data()
    f = fit(y, pd.DataFrame({"x": x}))
    xr = rng.uniform(0, 10, 50)
    yr = 0.8 * (10 + 3 * xr)
    s = savings(f, pd.DataFrame({"x": xr}), yr, 0.9, "exact_hac")
    Dr = np.column_stack([np.ones_like(xr), xr])
    one = Dr.sum(axis=0)
    var = one @ f.cov_hac @ one + xr.size * long_run_variance(f.result.resid, f.lags)
    t = stats.t.ppf(0.95, x.size - 2)
    adj = (Dr @ f.params).sum()
    assert s["adjusted"] == pytest.approx(adj)
    assert s["fraction"] == pytest.approx((adj - yr.sum()) / adj)
    assert s["frac_high"] - s["fraction"] == pytest.approx(t * np.sqrt(var) / adj)


def test_long_run_variance_of_white_noise_and_ar1():
    rng = np.random.default_rng(3)
    e = rng.normal(0, 1, 20000)
    assert long_run_variance(e, 10) == pytest.approx(1.0, rel=0.05)
    ar = np.zeros(20000)
    for i in range(1, ar.size):
        ar[i] = 0.5 * ar[i - 1] + e[i]
    # AR(1) with phi 0.5 and unit innovations: long-run variance 1 / (1 - 0.5)^2 = 4
    assert long_run_variance(ar, 60) == pytest.approx(4.0, rel=0.1)


def test_ashrae_guideline_14_fsu_by_hand():
    x, y, rng = data(n=365)
    f = fit(y, pd.DataFrame({"x": x}))
    xr = rng.uniform(0, 10, 365)
    yr = 0.9 * (10 + 3 * xr)
    s = savings(f, pd.DataFrame({"x": xr}), yr, 0.9, "ashrae14")
    e = f.result.resid
    rho = np.corrcoef(e[1:], e[:-1])[0, 1]
    n, m = 365, 365
    n_eff = n * (1 - rho) / (1 + rho)
    F = s["fraction"]
    fsu = 1.26 * stats.t.ppf(0.95, n - 2) * f.stats["cv_rmse"] * np.sqrt((n / n_eff) * (1 + 2 / n_eff) / m) / F
    assert s["fsu"] == pytest.approx(fsu)
    assert s["frac_high"] - F == pytest.approx(abs(fsu * F))


@pytest.mark.parametrize("method", ["exact_hac", "block_bootstrap"])
def test_intervals_cover_a_known_effect_at_about_their_level(method):
    # 30 independent data sets with a true 10 % saving: a 90 % interval should cover it about 27 times
    hits = 0
    for seed in range(30):
        x, y, rng = data(n=365, seed=seed)
        f = fit(y, pd.DataFrame({"x": x}))
        xr = rng.uniform(0, 10, 365)
        yr = 0.9 * (10 + 3 * xr) + 0.9 * rng.normal(0, 2, 365)
        s = savings(f, pd.DataFrame({"x": xr}), yr, 0.9, method, n_boot=200, Xb=pd.DataFrame({"x": x}), yb=y)
        hits += s["frac_low"] < 0.10 < s["frac_high"]
    assert 22 <= hits <= 30


def test_ratio_of_totals_is_not_a_mean_of_ratios():
    num_b, den_b = np.array([10.0, 90.0]), np.array([10.0, 10.0])  # daily ratios 1 and 9; totals 100 / 20 = 5
    num_r, den_r = np.array([60.0, 60.0]), np.array([10.0, 10.0])  # 120 / 20 = 6
    r = ratio_of_totals_change(num_b, den_b, num_r, den_r, n_boot=200)
    assert r["baseline"] == 5 and r["reporting"] == 6 and r["change"] == pytest.approx(0.2)


def test_proportions_score_interval_and_dispersion():
    # no over-dispersion: equal daily rates give phi = 1 and the plain score interval
    cb, nb = np.full(10, 5.0), np.full(10, 100.0)
    cr, nr = np.full(10, 3.0), np.full(10, 100.0)
    assert dispersion(cb, nb) == 1.0
    r = proportion_ratio(cb, nb, cr, nr, 0.9)
    assert r["ratio"] == pytest.approx(0.6)
    from statsmodels.stats.proportion import confint_proportions_2indep

    lo, hi = confint_proportions_2indep(30, 1000, 50, 1000, method="score", compare="ratio", alpha=0.1)
    assert (r["ratio_low"], r["ratio_high"]) == pytest.approx((lo, hi))
    # over-dispersed days widen the interval
    cb2 = np.array([0, 10, 0, 10, 0, 10, 0, 10, 5, 5], float)
    r2 = proportion_ratio(cb2, nb, cr, nr, 0.9)
    assert r2["phi"] > 1 and r2["ratio_high"] - r2["ratio_low"] > hi - lo
