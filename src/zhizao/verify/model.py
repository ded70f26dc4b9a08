"""Adjusted-baseline regression: model choice, validity figures and savings uncertainty.

The baseline model regresses the indicator's numerator (energy, cost, ...) on relevant variables over the
baseline period; the adjusted baseline is its prediction under reporting-period conditions (IPMVP option C,
ISO 50006). Three uncertainty conventions are offered; every result names the one used:

- ``exact_hac`` (default): the exact OLS variance of the summed reporting predictions with a Newey-West (HAC)
  parameter covariance, plus ``m`` times the long-run (HAC) variance of the residuals for the noise of the
  reporting sum: ``Var(S) = 1' X_r V_HAC X_r' 1 + m * lrv(e)``; Student t with n - p degrees of freedom.
- ``ashrae14``: the ASHRAE Guideline 14 fractional savings uncertainty
  ``FSU = 1.26 t CV(RMSE) sqrt((n / n') (1 + 2 / n') / m) / F`` with ``n' = n (1 - rho) / (1 + rho)``.
- ``block_bootstrap``: circular block bootstrap of the baseline days (refit) and of the residuals added to
  the reporting sum (circular blocks as arch.bootstrap.CircularBlockBootstrap draws them); percentile interval.

The least squares, the Newey-West covariance, the p-values, the F-test and the BIC are computed in numpy
(:func:`fit_arrays`, the default engine): the arithmetic of statsmodels' ``OLS(...).fit()`` and
``get_robustcov_results(cov_type='HAC', use_correction=True)`` written out, equal to it to about 1e-12
relative (``tests/test_verify_fast.py``), so the candidate models of :func:`choose` cost a few hundred
microseconds each; ``engine='statsmodels'`` runs statsmodels itself as the reference.

References
----------
.. [1] ASHRAE Guideline 14-2014, Measurement of Energy, Demand, and Water Savings, Annex B.
.. [2] US DOE, Superior Energy Performance EnPI tool: model acceptance criteria.
.. [3] Newey, W. K. and West, K. D. (1987), A simple, positive semi-definite, heteroskedasticity and
   autocorrelation consistent covariance matrix. Econometrica 55(3).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from zhizao.errors import InputError
from zhizao.messages import define

UNKNOWN_ENGINE = define("verify.unknown_engine", "unknown engine '%(engine)s'; one of %(known)s")
UNKNOWN_UNCERTAINTY = define("verify.unknown_uncertainty", "unknown uncertainty method '%(method)s'; one of %(known)s")
from scipy import special, stats

UNCERTAINTY = ("exact_hac", "ashrae14", "block_bootstrap")

#: DOE EnPI acceptance: overall F-test p, each variable's p, at least one variable's p, R2
ACCEPT = {"f_p": 0.10, "var_p": 0.20, "any_var_p": 0.10, "r2": 0.50}


@dataclass
class Fit:
    """A fitted baseline model.

    ``result`` holds the ordinary least-squares figures of the fit (``params``, ``resid``, ``fittedvalues``,
    ``rsquared``, ``bic``): an :class:`OLSFigures` from the numpy engine, or statsmodels' (non-robust)
    results object from the reference engine; both have the same attributes.
    """

    terms: list[str]
    params: np.ndarray
    result: object
    cov_hac: np.ndarray
    lags: int
    n: int
    p: int
    stats: dict = field(default_factory=dict)
    passed: bool = False
    failed: list[str] = field(default_factory=list)


@dataclass
class OLSFigures:
    """The ordinary least-squares figures the verification uses, computed in numpy (see :func:`fit`)."""

    params: np.ndarray
    resid: np.ndarray
    fittedvalues: np.ndarray
    rsquared: float
    rsquared_adj: float
    bic: float
    ssr: float


def hac_lags(n: int) -> int:
    """Newey-West lag truncation ``floor(4 (n / 100)^(2/9))``."""
    return int(np.floor(4 * (n / 100.0) ** (2.0 / 9.0)))


def long_run_variance(e: np.ndarray, lags: int) -> float:
    """Newey-West (Bartlett kernel) long-run variance of a series ``e`` (its mean removed)."""
    e = np.asarray(e, float) - np.mean(e)
    n = e.size
    v = e @ e / n
    for k in range(1, lags + 1):
        w = 1 - k / (lags + 1)
        v += 2 * w * (e[k:] @ e[:-k]) / n
    return float(max(v, e @ e / n * 1e-12))


ENGINES = ("numpy", "statsmodels")


def fit(y: np.ndarray, X: pd.DataFrame, engine: str = "numpy") -> Fit:
    """OLS of ``y`` on ``X`` (with an intercept column ``const``) and its validity figures.

    Parameters
    ----------
    y : array, shape (n,)
        The numerator per bucket of the baseline period (energy [kWh or kgce], cost [CNY], ...).
    X : pandas.DataFrame, shape (n, k)
        Relevant variables of the baseline period (no constant; ``const`` is added first).
    engine : {'numpy', 'statsmodels'}
        ``numpy`` (default): least squares by the singular value decomposition and the Newey-West covariance
        written out in numpy (:func:`fit_arrays`); ``statsmodels``: ``OLS(y, X).fit()`` and
        ``get_robustcov_results(cov_type='HAC', maxlags=hac_lags(n), use_correction=True)``, the reference
        the numpy engine is tested against (equal to about 1e-12 relative).

    Raises
    ------
    numpy.linalg.LinAlgError
        If the design matrix is rank deficient (collinear variables).
    ValueError
        For an unknown engine.

    Returns
    -------
    Fit
        ``stats``: n, p, r2, adj_r2, cv_rmse, nmbe, f_p, pvalues (HAC), terms; ``passed`` by the DOE EnPI
        criteria of :data:`ACCEPT`; ``failed`` lists the broken ones.
    """
    if engine not in ENGINES:
        raise InputError(UNKNOWN_ENGINE, engine=engine, known=list(ENGINES))
    y = np.asarray(y, float)
    names = ["const", *X.columns]
    if engine == "numpy":
        A = np.empty((len(X), len(names)))
        A[:, 0] = 1.0
        if len(names) > 1:
            A[:, 1:] = X.to_numpy(float)
        return fit_arrays(y, A, names)
    return _fit_statsmodels(y, X)


def _fit_statsmodels(y: np.ndarray, X: pd.DataFrame) -> Fit:
    from statsmodels.regression.linear_model import OLS

    Xc = X.copy()
    Xc.insert(0, "const", 1.0)
    n, p = Xc.shape
    if np.linalg.matrix_rank(Xc.to_numpy(float)) < p:
        raise np.linalg.LinAlgError(f"collinear relevant variables: {', '.join(Xc.columns)}")
    res = OLS(y, Xc).fit()
    lags = hac_lags(n)
    robust = res.get_robustcov_results(cov_type="HAC", maxlags=lags, use_correction=True)
    pv = dict(zip(Xc.columns, np.asarray(robust.pvalues, float)))
    f_p = float(robust.f_pvalue) if p > 1 else None
    return _finish(list(Xc.columns), y, np.asarray(res.params, float), np.asarray(res.resid, float), res,
                   np.asarray(robust.cov_params(), float), lags, pv, f_p,
                   float(res.rsquared), float(res.rsquared_adj), float(res.bic))


def fit_arrays(y: np.ndarray, A: np.ndarray, names: list[str]) -> Fit:
    """:func:`fit` on arrays: ``A`` of shape (n, p) with the constant in its first column, ``names`` its p
    column names.

    The same arithmetic as statsmodels (``OLS.fit()`` with its default pseudo-inverse, then
    ``get_robustcov_results(cov_type='HAC', maxlags=L, use_correction=True)``), written out:

    - ``beta = pinv(A) y`` with the SVD pseudo-inverse (singular values below 1e-15 x the largest dropped),
      ``(A'A)^-1 = pinv(A) pinv(A)'``;
    - Newey-West covariance [3]_: ``u_t = a_t e_t``, ``S = sum_t u_t u_t' + sum_{l=1..L} (1 - l / (L + 1))
      (sum_t u_t u_{t-l}' + transpose)``, ``V = n / (n - p) (A'A)^-1 S (A'A)^-1`` with
      ``L = floor(4 (n / 100)^(2/9))``;
    - p-values of the terms from Student t with n - p degrees of freedom on ``beta / sqrt(diag V)``; the
      F-test of all terms but the constant as a Wald test with V, ``F = b' (R V R')^+ b / q`` on F(q, n - p);
    - ``BIC = -2 llf + p log n`` with the Gaussian log-likelihood ``llf = -n/2 (log(2 pi SSR / n) + 1)``.

    Raises
    ------
    numpy.linalg.LinAlgError
        If ``A`` is rank deficient (rank by numpy.linalg.matrix_rank's tolerance).
    """
    n, p = A.shape
    u, sv, vt = np.linalg.svd(A, full_matrices=False)
    smax = sv.max() if sv.size else 0.0
    if int((sv > smax * max(n, p) * np.finfo(float).eps).sum()) < p:
        raise np.linalg.LinAlgError(f"collinear relevant variables: {', '.join(names)}")
    inv = np.where(sv > 1e-15 * smax, 1.0 / np.where(sv > 0, sv, 1.0), 0.0)
    pinv = vt.T @ (inv[:, None] * u.T)
    params = pinv @ y
    ncov = pinv @ pinv.T
    fitted = A @ params
    resid = y - fitted
    lags = hac_lags(n)
    xu = A * resid[:, None]
    S = xu.T @ xu
    for lag in range(1, lags + 1):
        s_ = xu[lag:].T @ xu[:-lag]
        S += (1.0 - lag / (lags + 1.0)) * (s_ + s_.T)
    cov = ncov @ S @ ncov.T
    cov *= n / float(n - p)
    df_resid = float(n - p)
    with np.errstate(divide="ignore", invalid="ignore"):
        tv = params / np.sqrt(np.diag(cov))
    pvals = special.stdtr(df_resid, -np.abs(tv)) * 2
    pv = dict(zip(names, pvals))
    f_p = None
    if p > 1:
        R = np.eye(p)[1:]
        cov_r = R @ cov @ R.T
        J = float(R.shape[0])
        J_rank = np.linalg.matrix_rank(cov_r)
        J = float(J_rank) if J_rank < J else J
        if J > 0:  # a vanishing covariance (no variation left to test) leaves the F-test undefined
            rb = (R @ params[:, None])
            F = float(np.squeeze(rb.T @ np.linalg.pinv(cov_r) @ rb)) / J
            f_p = float(special.fdtrc(J, df_resid, F))
    ssr = float(resid @ resid)
    yc = y - y.mean()
    sst = float(yc @ yc)
    r2 = 1.0 - ssr / sst if sst > 0 else float("nan")  # a constant numerator: R2 undefined
    r2_adj = 1.0 - (n - 1) / df_resid * (1.0 - r2)
    llf = -n / 2.0 * np.log(2 * np.pi) - n / 2.0 * np.log(ssr / n) - n / 2.0
    bic = float(-2 * llf + np.log(n) * p)
    figures = OLSFigures(params, resid, fitted, r2, r2_adj, bic, ssr)
    return _finish(list(names), y, params, resid, figures, cov, lags, pv, f_p, r2, r2_adj, bic)


def _finish(terms, y, params, resid, result, cov_hac, lags, pv, f_p, r2, r2_adj, bic) -> Fit:
    n, p = len(y), len(terms)
    dof = max(n - p, 1)
    ybar = float(np.mean(y))
    rmse = float(np.sqrt(resid @ resid / dof))
    st = {
        "n": int(n), "p": int(p), "terms": list(terms),
        "r2": r2 if p > 1 else 0.0,
        "adj_r2": r2_adj if p > 1 else 0.0,
        "cv_rmse": rmse / ybar if ybar else None,
        "nmbe": float(resid.sum() / (dof * ybar)) if ybar else None,
        "f_p": f_p,
        "pvalues": {k: v for k, v in pv.items() if k != "const"},
        "hac_lags": lags,
        "bic": bic,
    }
    failed = []
    var_p = [v for k, v in pv.items() if k != "const"]
    if p > 1:
        if not (st["f_p"] is not None and st["f_p"] < ACCEPT["f_p"]):
            failed.append(f"F-test p {st['f_p']:.3g} >= {ACCEPT['f_p']}" if st["f_p"] is not None
                          else "F-test undefined")
        if any(v >= ACCEPT["var_p"] for v in var_p):
            failed.append(f"a variable has p >= {ACCEPT['var_p']}")
        if not any(v < ACCEPT["any_var_p"] for v in var_p):
            failed.append(f"no variable has p < {ACCEPT['any_var_p']}")
        if st["r2"] < ACCEPT["r2"]:
            failed.append(f"R2 {st['r2']:.3f} < {ACCEPT['r2']}")
    return Fit(list(terms), params, result, cov_hac, lags, n, p, st, passed=(p > 1 and not failed),
               failed=failed)


def choose(y: np.ndarray, X: pd.DataFrame, groups: list[list[str]], required: list[str] | None = None,
           engine: str = "numpy") -> tuple[Fit, list[str]]:
    """The simplest adequate model: among the models that pass the validity checks, the lowest BIC.

    Candidate driver groups (a group enters or leaves whole, e.g. the dummies of one categorical variable)
    are combined in every way; each model must pass the DOE EnPI checks (:data:`ACCEPT`), and among those the
    Bayesian information criterion trades fit against the number of terms (a term must pay for itself).
    If none passes, the model with all groups is returned with a warning.

    Parameters
    ----------
    y : array, shape (n,)
    X : pandas.DataFrame, shape (n, k)
        Every candidate relevant variable.
    groups : list of list of str
        Columns of ``X`` that enter together.
    required : list of str, optional
        Columns in every candidate.
    engine : {'numpy', 'statsmodels'}
        See :func:`fit`; the numpy engine gives the same estimates, checks and BIC, so the same model.

    Returns
    -------
    (Fit, warnings)
    """
    warnings = []
    required = list(required or [])
    candidates = [(len(required), required)] if required else []
    for k in range(1, len(groups) + 1):
        for combo in itertools.combinations(range(len(groups)), k):
            cols = required + [c for i in combo for c in groups[i]]
            candidates.append((len(cols), cols))
    candidates.sort(key=lambda t: t[0])
    y = np.asarray(y, float)
    if engine == "numpy":
        pos = {c: i + 1 for i, c in enumerate(X.columns)}
        full = np.empty((len(X), len(pos) + 1))
        full[:, 0] = 1.0
        if pos:
            full[:, 1:] = X.to_numpy(float)

        def fit_cols(cols):
            return fit_arrays(y, full[:, [0] + [pos[c] for c in cols]], ["const", *cols])
    else:
        def fit_cols(cols):
            return fit(y, X[cols], engine=engine)
    best = None
    for _n_terms, cols in candidates:
        try:
            f = fit_cols(cols)
        except np.linalg.LinAlgError:
            continue  # collinear drivers (e.g. scheduled hours and weekday dummies): not a candidate
        if f.passed and (best is None or f.stats["bic"] < best.stats["bic"]):
            best = f
    if best is None:
        cols = required + [c for g in groups for c in g]
        while True:
            try:
                best = fit_cols(cols)
                break
            except np.linalg.LinAlgError:
                cols = cols[:-1]  # drop trailing terms until the design has full rank
        if cols:
            warnings.append("no model passed the validity checks (" + "; ".join(best.failed) +
                            "); the model with all candidate variables is used")
    return best, warnings


def _design(f: Fit, Xr: pd.DataFrame) -> np.ndarray:
    D = np.empty((len(Xr), len(f.terms)))
    for j, t in enumerate(f.terms):
        D[:, j] = 1.0 if t == "const" else Xr[t].to_numpy(float)
    return D


def savings(f: Fit, Xr: pd.DataFrame, yr: np.ndarray, confidence: float = 0.9,
            method: str = "exact_hac", n_boot: int = 999, block: int | None = None, seed: int = 0,
            Xb: pd.DataFrame | None = None, yb: np.ndarray | None = None) -> dict:
    """Savings ``S = sum(adjusted baseline) - sum(reporting)`` with its interval.

    Parameters
    ----------
    f : Fit
        Baseline model.
    Xr : pandas.DataFrame, shape (m, k)
        Relevant variables of the reporting period.
    yr : array, shape (m,)
        Measured numerator in the reporting period.
    confidence : float
    method : {'exact_hac', 'ashrae14', 'block_bootstrap'}
    n_boot, block, seed :
        Bootstrap settings (block length defaults to ``hac_lags(n) + 1``).
    Xb, yb :
        Baseline data (needed for the bootstrap).

    Returns
    -------
    dict
        adjusted (sum of predictions), reporting (sum of yr), savings, fraction (savings / adjusted), and the
        interval of the fraction, ``frac_low``, ``frac_high``, with ``se`` (of savings) and ``method``.

    Raises
    ------
    ValueError
        For an unknown method.
    """
    if method not in UNCERTAINTY:
        raise InputError(UNKNOWN_UNCERTAINTY, method=method, known=list(UNCERTAINTY))
    Dr = _design(f, Xr)
    yr = np.asarray(yr, float)
    m = yr.size
    pred = Dr @ f.params
    adjusted, reporting = float(pred.sum()), float(yr.sum())
    s = adjusted - reporting
    frac = s / adjusted if adjusted else np.nan
    alpha = 1 - confidence
    dof = max(f.n - f.p, 1)
    t = stats.t.ppf(1 - alpha / 2, dof)
    resid = np.asarray(f.result.resid, float)
    out = {"adjusted": adjusted, "reporting": reporting, "savings": s, "fraction": frac, "method": method,
           "m": int(m)}
    if method == "exact_hac":
        one = Dr.sum(axis=0)
        var_pred = float(one @ f.cov_hac @ one)
        var_noise = m * long_run_variance(resid, f.lags)
        se = np.sqrt(var_pred + var_noise)
        out.update(se=se, frac_low=(s - t * se) / adjusted, frac_high=(s + t * se) / adjusted,
                   var_prediction=var_pred, var_noise=var_noise)
    elif method == "ashrae14":
        n = f.n
        rho = float(np.corrcoef(resid[1:], resid[:-1])[0, 1]) if n > 2 else 0.0
        n_eff = n * (1 - rho) / (1 + rho) if rho < 1 else 1.0
        cv = f.stats["cv_rmse"]
        fsu = 1.26 * t * cv * np.sqrt((n / n_eff) * (1 + 2 / n_eff) / m) / frac if frac else np.nan
        half = abs(fsu * frac)
        out.update(se=half * adjusted / t, frac_low=frac - half, frac_high=frac + half, fsu=float(fsu),
                   rho=rho)
    else:
        from zhizao.verify.ratios import circular_block_indices

        if Xb is None or yb is None:
            raise ValueError("block_bootstrap needs the baseline data (Xb, yb)")
        Db = _design(f, Xb)
        yb = np.asarray(yb, float)
        block = block or f.lags + 1
        rng = np.random.default_rng(seed)
        ib_all = circular_block_indices(f.n, block, n_boot, rng)
        ir_all = circular_block_indices(f.n, block, n_boot, rng)
        one = Dr.sum(axis=0)
        fr = []
        for ib, ir in zip(ib_all, ir_all):
            beta, *_r = np.linalg.lstsq(Db[ib], yb[ib], rcond=None)
            noise = resid[np.resize(ir, m)].sum()
            adj_b = float(one @ beta) + noise
            fr.append((adj_b - reporting) / adj_b)
        lo, hi = np.quantile(fr, [alpha / 2, 1 - alpha / 2])
        out.update(se=float(np.std(fr)) * adjusted, frac_low=float(lo), frac_high=float(hi), n_boot=n_boot,
                   block=block)
    return out


def extrapolation(Xb: pd.DataFrame, Xr: pd.DataFrame, cols: list[str]) -> list[str]:
    """Warnings for reporting-period drivers outside the baseline range or beyond 3 SD of its mean."""
    out = []
    for c in cols:
        if c not in Xb:
            continue
        xb = Xb[c].to_numpy(float)
        xb = xb[~np.isnan(xb)]  # pandas statistics skip missing values
        if np.unique(xb).size <= 2:  # dummies and shares are not extrapolated
            continue
        xr = Xr[c].to_numpy(float)
        lo, hi = xb.min(), xb.max()
        mu, sd = xb.mean(), xb.std(ddof=1)
        xr_ok = xr[~np.isnan(xr)]
        rmean = xr_ok.mean() if xr_ok.size else np.nan
        outside = ((xr < lo) | (xr > hi)).mean() if xr.size else np.nan
        if not (lo <= rmean <= hi) or (sd > 0 and abs(rmean - mu) > 3 * sd):
            out.append(f"extrapolation: reporting mean of {c} ({rmean:.4g}) is outside the baseline range "
                       f"[{lo:.4g}, {hi:.4g}] or beyond 3 SD of its mean")
        elif outside > 0.1:
            out.append(f"extrapolation: {100 * outside:.0f} % of reporting values "
                       f"of {c} lie outside the baseline range")
    return out
