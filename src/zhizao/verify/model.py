"""Adjusted-baseline regression: model choice, validity figures and savings uncertainty.

The baseline model regresses the indicator's numerator (energy, cost, ...) on relevant variables over the
baseline period; the adjusted baseline is its prediction under reporting-period conditions (IPMVP option C,
ISO 50006). Three uncertainty conventions are offered; every result names the one used:

- ``exact_hac`` (default, calibrated): the exact variance of the OLS prediction of the reporting sum plus the
  noise of the reporting sum, ``Var(S) = lrv(e) (c' (X'X)^-1 c + m)`` with ``c = X_r' 1`` and ``lrv(e)`` the
  long-run variance of the baseline residuals (AR(1)-prewhitened with a bias-corrected coefficient,
  :func:`zhizao.verify.uncertainty.long_run_variance`); Student t with ``n_eff - p`` degrees of freedom.
  Without autocorrelation (and always below 16 points) this is the classical OLS prediction interval of a
  sum, exact for independent normal errors; with autocorrelation the effective sample size shrinks.
- ``ashrae14``: the ASHRAE Guideline 14 fractional savings uncertainty
  ``FSU = 1.26 t CV(RMSE) sqrt((n / n') (1 + 2 / n') / m) / F`` with ``n' = n (1 - rho) / (1 + rho)``. It
  ignores leverage (reporting drivers away from the baseline mean) and cannot be calibrated: offered for
  comparison with other tools, never the default.
- ``block_bootstrap``: circular block bootstrap of the baseline days (refit) and of the residuals added to
  the reporting sum (blocks of ``hac_lags(n) + 1``); percentile interval. Percentile intervals of small
  samples are too narrow; offered for comparison, not the default.

The least squares, the Newey-West covariance, the p-values, the F-test and the BIC are computed in numpy
(:func:`fit_arrays`, the default engine): the arithmetic of statsmodels' ``OLS(...).fit()`` and
``get_robustcov_results(cov_type='HAC', use_correction=True)`` written out, equal to it to about 1e-12
relative (``tests/test_verify_fast.py``), so the candidate models of :func:`choose` cost a few hundred
microseconds each; ``engine='statsmodels'`` runs statsmodels itself as the reference. A candidate whose
coefficient rests on a handful of points (Kish effective sample size of the coefficient's weights below
``LIMITS["coefficient_n_eff_min"]``) is not accepted, whatever its p-value.

References
----------
.. [1] ASHRAE Guideline 14-2014, Measurement of Energy, Demand, and Water Savings, Annex B.
.. [2] US DOE, Superior Energy Performance EnPI tool: model acceptance criteria.
.. [3] Newey, W. K. and West, K. D. (1987), A simple, positive semi-definite, heteroskedasticity and
   autocorrelation consistent covariance matrix. Econometrica 55(3).
.. [4] Granderson, J. et al. (2016), Accuracy of automated measurement and verification (M&V) techniques
   for energy savings in commercial buildings. Applied Energy 173, 296-308 (out-of-sample NMBE and
   CV(RMSE) as the test of a baseline model).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import special, stats

from zhizao.errors import InputError
from zhizao.messages import Message
from zhizao.verify.checks import (
    FAIL_F_TEST,
    FAIL_F_UNDEFINED,
    FAIL_NO_VARIABLE_P,
    FAIL_R2,
    FAIL_SUPPORT,
    FAIL_VARIABLE_P,
    LIMITS,
    NO_VALID_MODEL,
)
from zhizao.verify.uncertainty import (
    MIN_POINTS_AR,
    Persistence,
    ar1_sum_variance,
    effective_n,
    log_ratio_interval,
    long_run_variance,
)

UNCERTAINTY = ("exact_hac", "ashrae14", "block_bootstrap")

#: Fewest points for the coefficient-support check: below, every coefficient rests on a handful of points and
#: the t quantile with n - p degrees of freedom carries that.
SUPPORT_MIN_N = 30

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
    params: NDArray[np.float64]
    result: Any  # OLSFigures, or a statsmodels results object (untyped)
    cov_hac: np.ndarray
    lags: int
    n: int
    p: int
    stats: dict[str, Any] = field(default_factory=dict)  # figures of mixed types (see fit())
    passed: bool = False
    failed: list[Message] = field(default_factory=list)
    xtx_inv: np.ndarray | None = None  #: (X'X)^-1 of the design [p x p]
    support: dict[str, float] = field(default_factory=dict)  #: term -> Kish effective points of its coefficient

    def design(self, X: pd.DataFrame) -> NDArray[np.float64]:
        """The design matrix of ``X`` for this model's terms (``const`` a column of ones)."""
        D = np.empty((len(X), len(self.terms)))
        for j, t in enumerate(self.terms):
            D[:, j] = 1.0 if t == "const" else X[t].to_numpy(float)
        return D

    def predict(self, X: pd.DataFrame) -> NDArray[np.float64]:
        """Predictions of the model for the relevant variables ``X`` (one row per bucket)."""
        return self.design(X) @ self.params

    @property
    def resid(self) -> np.ndarray:
        return np.asarray(self.result.resid, float)


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
        criteria of :data:`ACCEPT`; ``failed`` lists the broken ones (structured messages).
    """
    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r}; one of {', '.join(ENGINES)}")
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
    pinv = np.linalg.pinv(Xc.to_numpy(float))
    return _finish(list(Xc.columns), y, np.asarray(res.params, float), np.asarray(res.resid, float), res,
                   np.asarray(robust.cov_params(), float), lags, pv, f_p,
                   float(res.rsquared), float(res.rsquared_adj), float(res.bic), pinv)


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
    return _finish(list(names), y, params, resid, figures, cov, lags, pv, f_p, r2, r2_adj, bic, pinv)


def _finish(terms: list[str], y: NDArray[np.float64], params: NDArray[np.float64], resid: NDArray[np.float64],
            result: Any, cov_hac: NDArray[np.float64], lags: int, pv: dict[str, float], f_p: float | None, r2: float,
            r2_adj: float, bic: float, pinv: NDArray[np.float64]) -> Fit:
    # result: OLSFigures, or a statsmodels results object (untyped), as Fit.result
    n, p = len(y), len(terms)
    dof = max(n - p, 1)
    ybar = float(np.mean(y))
    rmse = float(np.sqrt(resid @ resid / dof))
    st: dict[str, Any] = {
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
            failed.append(FAIL_F_TEST(p=f"{st['f_p']:.3g}", limit=ACCEPT["f_p"]) if st["f_p"] is not None
                          else FAIL_F_UNDEFINED())
        if any(v >= ACCEPT["var_p"] for v in var_p):
            failed.append(FAIL_VARIABLE_P(limit=ACCEPT["var_p"]))
        if not any(v < ACCEPT["any_var_p"] for v in var_p):
            failed.append(FAIL_NO_VARIABLE_P(limit=ACCEPT["any_var_p"]))
        if st["r2"] < ACCEPT["r2"]:
            failed.append(FAIL_R2(r2=f"{st['r2']:.3f}", limit=ACCEPT["r2"]))
    # a coefficient decided by a handful of points (one cool day for a heating term) is not accepted,
    # whatever its p-value: Kish's effective number of points of its weights row of pinv(X)
    support = {t: effective_n(pinv[j]) for j, t in enumerate(terms) if t != "const"}
    weak = [t for t, v in support.items() if v < LIMITS["coefficient_n_eff_min"]] if n >= SUPPORT_MIN_N else []
    if weak:
        failed.append(FAIL_SUPPORT(minimum=f"{LIMITS['coefficient_n_eff_min']:g}", terms=weak))
    st["support"] = support
    return Fit(list(terms), params, result, cov_hac, lags, n, p, st, passed=(p > 1 and not failed),
               failed=failed, xtx_inv=pinv @ pinv.T, support=support)


def choose(y: np.ndarray, X: pd.DataFrame, groups: list[list[str]], required: list[str] | None = None,
           engine: str = "numpy") -> tuple[Fit, list[Message]]:
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
        ``warnings`` are :class:`zhizao.messages.Message`.
    """
    warnings: list[Message] = []
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

        def fit_cols(cols: list[str]) -> Fit:
            return fit_arrays(y, full[:, [0] + [pos[c] for c in cols]], ["const", *cols])
    else:
        def fit_cols(cols: list[str]) -> Fit:
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
            except np.linalg.LinAlgError:
                cols = cols[:-1]  # drop trailing terms until the design has full rank
                continue
            # a group whose coefficient rests on a handful of points leaves the fallback model too
            weak = {t for t, v in best.support.items() if v < LIMITS["coefficient_n_eff_min"]} \
                if best.n >= SUPPORT_MIN_N else set()
            drop = {c for g in groups if weak & set(g) for c in g} - set(required)
            if not drop:
                break
            cols = [c for c in cols if c not in drop]
        if cols:
            warnings.append(NO_VALID_MODEL(failed=list(best.failed)))
    return best, warnings


@dataclass
class Savings:
    """Savings ``S = adjusted baseline - reporting`` over the reporting period, with their interval.

    Attributes
    ----------
    adjusted, reporting, savings : float
        Sums over the reporting period (the numerator's unit); ``adjusted`` includes non-routine adjustments.
    fraction : float
        ``savings / adjusted`` (the avoided share).
    frac_low, frac_high : float
        Interval of ``fraction`` at the confidence level.
    se : float
        Standard error of ``savings``.
    df : float
        Degrees of freedom of the t quantile (``inf`` for the bootstrap).
    method : str
        The convention (:data:`UNCERTAINTY`).
    m : int
        Reporting buckets.
    details : dict
        The convention's own figures (variances, long-run variance, phi, effective n, FSU, ...).
    """

    adjusted: float
    reporting: float
    savings: float
    fraction: float
    frac_low: float
    frac_high: float
    se: float
    df: float
    method: str
    m: int
    details: dict[str, float] = field(default_factory=dict)


def savings(f: Fit, Xr: pd.DataFrame, yr: np.ndarray, confidence: float = 0.9,
            method: str = "exact_hac", n_boot: int = 999, block: int | None = None, seed: int = 0,
            Xb: pd.DataFrame | None = None, yb: np.ndarray | None = None, adjust: float = 0.0,
            adjust_var: float = 0.0, inflation: float = 1.0, persistence: Persistence | None = None) -> Savings:
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
    adjust, adjust_var : float
        Non-routine adjustment added to the adjusted baseline, and its variance.
    inflation : float
        Factor (>= 1) on the model's error variance when its out-of-sample error is larger than its own
        figures say (:func:`out_of_sample`).
    persistence : Persistence, optional
        The AR(1) coefficient of the errors as related short series estimate it
        (:func:`zhizao.verify.uncertainty.ar1_persistence`). With fewer than ``MIN_POINTS_AR`` baseline points
        (which cannot estimate it themselves) the ``exact_hac`` variances are computed under it
        (:func:`zhizao.verify.uncertainty.ar1_sum_variance`) instead of taking the points as independent; the
        details then give ``phi`` (the coefficient), ``lrv`` (the error variance under it), ``n_eff`` (the
        Satterthwaite degrees of freedom plus ``p``), ``ar1_series`` and ``ar1_df`` (the series and their
        residual degrees of freedom it rests on).

    Returns
    -------
    Savings

    Raises
    ------
    zhizao.errors.InputError
        For an unknown method, or the bootstrap without baseline data.
    """
    if method not in UNCERTAINTY:
        raise InputError(f"unknown uncertainty method {method!r}; one of {', '.join(UNCERTAINTY)}")
    Dr = f.design(Xr)
    yr = np.asarray(yr, float)
    m = yr.size
    c = Dr.sum(axis=0)
    adjusted = float(Dr.sum(axis=0) @ f.params) + adjust
    reporting = float(yr.sum())
    s = adjusted - reporting
    frac = s / adjusted if adjusted else np.nan
    alpha = 1 - confidence
    resid = f.resid
    if method == "exact_hac":
        lr = long_run_variance(resid, ddof=f.p)
        if f.n >= MIN_POINTS_AR and Xb is not None:
            # the prediction error of c'beta is sum_t w_t e_t with w = X (X'X)^-1 c: its long-run variance
            # (prewhitened, with the n / (n - p) correction) keeps regressors that do not move together with
            # the errors from inheriting the errors' autocorrelation
            w = f.design(Xb) @ (f.xtx_inv @ c)
            lv = long_run_variance(w * resid, center=False)
            var_pred = lv.n * lv.variance * f.n / (f.n - f.p) * inflation
        else:  # the classical OLS variance of a prediction
            var_pred = lr.variance * float(c @ f.xtx_inv @ c) * inflation
        var_noise = m * lr.variance * inflation
        df = max(lr.n_eff - f.p, 1.0)
        figures = {"lrv": lr.variance, "phi": lr.phi, "n_eff": lr.n_eff}
        if persistence is not None and f.n < MIN_POINTS_AR and Xb is not None:
            ar = ar1_sum_variance(f.design(Xb), resid, c, m, persistence.rho)
            var_pred, var_noise = ar["var_prediction"] * inflation, ar["var_noise"] * inflation
            df = max(ar["df"], 1.0)
            # what the interval rests on: the error variance under the coefficient, the coefficient, and the
            # effective points whose n_eff - p are the Satterthwaite degrees of freedom
            figures = {"lrv": ar["s2"], "phi": persistence.rho, "n_eff": ar["df"] + f.p,
                       "ar1_series": persistence.series, "ar1_df": persistence.df}
        se = float(np.sqrt(var_pred + var_noise + adjust_var))
        # the fraction is 1 - R / A: an error of the adjusted baseline A moves it by (R / A) dA / A, the
        # reporting noise by dR / A; the interval is taken on log(R / A) (t on logs)
        lo, hi = _fraction_interval(adjusted, reporting, var_pred + adjust_var, var_noise, df, confidence)
        return Savings(adjusted, reporting, s, frac, lo, hi, se, df,
                       method, m, {"var_prediction": var_pred, "var_noise": var_noise, "var_adjustment": adjust_var,
                               "inflation": inflation, **figures})
    if method == "ashrae14":
        n = f.n
        dof = max(f.n - f.p, 1)
        t = float(stats.t.ppf(1 - alpha / 2, dof))
        rho = float(np.corrcoef(resid[1:], resid[:-1])[0, 1]) if n > 2 else 0.0
        n_eff = n * (1 - rho) / (1 + rho) if rho < 1 else 1.0
        cv = f.stats["cv_rmse"]
        fsu = 1.26 * t * cv * np.sqrt((n / n_eff) * (1 + 2 / n_eff) / m) / frac if frac else np.nan
        half = abs(fsu * frac)
        return Savings(adjusted, reporting, s, frac, frac - half, frac + half, half * adjusted / t, float(dof),
                       method, m, {"fsu": float(fsu), "rho": rho, "n_eff": n_eff})
    from zhizao.verify.ratios import circular_block_indices

    if Xb is None or yb is None:
        raise InputError("block_bootstrap needs the baseline data (Xb, yb)")
    Db = f.design(Xb)
    yb = np.asarray(yb, float)
    block = block or f.lags + 1
    rng = np.random.default_rng(seed)
    ib_all = circular_block_indices(f.n, block, n_boot, rng)
    ir_all = circular_block_indices(f.n, block, n_boot, rng, length=m)  # m draws, whatever n
    fr = []
    for ib, ir in zip(ib_all, ir_all):
        beta, *_r = np.linalg.lstsq(Db[ib], yb[ib], rcond=None)
        adj_b = float(c @ beta) + adjust + resid[ir].sum()
        fr.append((adj_b - reporting) / adj_b)
    lo, hi = np.quantile(fr, [alpha / 2, 1 - alpha / 2])
    return Savings(adjusted, reporting, s, frac, float(lo), float(hi), float(np.std(fr)) * adjusted, np.inf,
                   method, m, {"n_boot": n_boot, "block": block})


def _fraction_interval(adjusted: float, reporting: float, var_adjusted: float, var_reporting: float, df: float,
                       confidence: float) -> tuple[float, float]:
    """Interval of ``1 - R / A`` from the variances of the adjusted baseline ``A`` and of the reporting sum
    ``R``: ``log(R / A) +- t sqrt(var_A / A^2 + var_R / R^2)``; NaN unless both sums are positive."""
    if not (adjusted > 0 and reporting > 0):
        return float("nan"), float("nan")
    v = var_adjusted / adjusted ** 2 + var_reporting / reporting ** 2
    lo, hi = log_ratio_interval(float(np.log(reporting / adjusted)), v, df, confidence)
    return 1 - hi, 1 - lo


def out_of_sample(f: Fit, yb: np.ndarray, Xb: pd.DataFrame, folds: int = 5) -> dict[str, Any]:
    """Out-of-sample error of the model's form on the baseline (the LBNL / EVO test of a baseline model [4]_).

    The baseline is cut into ``folds`` contiguous blocks; each is predicted by the same terms fitted on the
    others. Reported: NMBE and CV(RMSE) out of sample, and a test of whether the blocks' summed errors are
    larger than the model's own variance says: ``Q = sum_k E_k^2 / V_k`` with ``V_k = lrv (c_k' (X'X)_(-k)^-1
    c_k + n_k)``, chi-squared with ``folds`` degrees of freedom for a right model; ``inflation = max(1, Q /
    folds)`` is what the model's error variance needs to cover the out-of-sample error.

    Returns
    -------
    dict
        folds, nmbe, cv_rmse (out of sample), q, p_value, inflation; an empty dict for too few points
        (fewer than 8 per block).
    """
    y = np.asarray(yb, float)
    n = y.size
    k = min(folds, n // 8)
    if k < 3:
        return {}
    D = f.design(Xb)
    lr = long_run_variance(f.resid, ddof=f.p, noise=False)
    edges = np.linspace(0, n, k + 1).round().astype(int)
    err = np.empty(n)
    q = 0.0
    for a, b in itertools.pairwise(edges):
        keep = np.r_[0:a, b:n]
        A = D[keep]
        pinv = np.linalg.pinv(A)
        beta = pinv @ y[keep]
        e = y[a:b] - D[a:b] @ beta
        err[a:b] = e
        cf = D[a:b].sum(axis=0)
        v = lr.variance * (float(cf @ (pinv @ pinv.T) @ cf) + (b - a))
        q += float(e.sum()) ** 2 / v if v > 0 else 0.0
    ybar = float(y.mean())
    return {"folds": int(k), "nmbe": float(err.sum() / (n * ybar)) if ybar else None,
            "cv_rmse": float(np.sqrt(err @ err / n) / ybar) if ybar else None, "q": q,
            "p_value": float(stats.chi2.sf(q, k)), "inflation": float(max(1.0, q / k))}


def drivers_outside(Xb: pd.DataFrame, Xr: pd.DataFrame, cols: list[str], share_max: float | None = None,
                    rule: str = "strict") -> list[dict[str, Any]]:
    """Continuous drivers whose reporting mean lies outside the baseline range or beyond
    ``LIMITS['extrapolation_sd']`` baseline SD of its mean (every continuous candidate, chosen or not,
    near-constant ones included: a driver that is constant in the baseline has no range to extrapolate
    into), or, with ``share_max``, with more than that share of the reporting buckets outside the range.

    ``rule="doe"``: the US DOE EnPI rule instead, outside the range *and* beyond the SD limit (a reporting mean
    inside the range or within 3 SD is valid); https://enpilite.lbl.gov/valid-model-requirements.

    Returns
    -------
    list of dict
        driver, mean (reporting), low, high, baseline_mean, sd, outside (share of reporting buckets outside
        the baseline range).
    """
    if rule not in ("strict", "doe"):
        raise InputError(f"unknown extrapolation rule {rule!r}; one of strict, doe")
    out = []
    for col in cols:
        if col not in Xb or col not in Xr:
            continue
        xb = Xb[col].to_numpy(float)
        xb = xb[~np.isnan(xb)]
        xr = Xr[col].to_numpy(float)
        xr = xr[~np.isnan(xr)]
        if not xb.size or not xr.size:
            continue
        lo, hi = float(xb.min()), float(xb.max())
        mu, sd = float(xb.mean()), float(xb.std(ddof=1)) if xb.size > 1 else 0.0
        rmean = float(xr.mean())
        tol = 1e-9 * max(abs(lo), abs(hi), 1.0)
        beyond = abs(rmean - mu) > LIMITS["extrapolation_sd"] * sd + tol
        share = float(((xr < lo - tol) | (xr > hi + tol)).mean())
        outside = rmean < lo - tol or rmean > hi + tol
        flagged = (outside and beyond) if rule == "doe" else (outside or beyond)
        if flagged or (share_max is not None and share > share_max):
            out.append({"driver": col, "mean": rmean, "low": lo, "high": hi, "baseline_mean": mu, "sd": sd,
                        "outside": share})
    return out


def prediction_leverage(f: Fit, Xb: pd.DataFrame, Xr: pd.DataFrame) -> tuple[float, float]:
    """Leverage of the reporting period's mean conditions ``x_r' (X'X)^-1 x_r`` and the largest leverage of
    a baseline bucket; the first above the second means the reporting conditions lie outside the data the
    model was fitted on (jointly, even when each driver is inside its own range)."""
    assert f.xtx_inv is not None  # every fit (fit_model) has it
    xr = f.design(Xr).mean(axis=0)
    Db = f.design(Xb)
    h_b = np.einsum("ij,jk,ik->i", Db, f.xtx_inv, Db)
    return float(xr @ f.xtx_inv @ xr), float(h_b.max()) if h_b.size else float("nan")


def leverage_sd(h: float, n: int) -> float:
    """The Mahalanobis distance, in baseline SD, of conditions with leverage ``h`` in a model with an intercept
    fitted on ``n`` points: ``h = 1 / n + D^2 / (n - 1)`` (the sample covariance with ``n - 1``).

    >>> round(leverage_sd(1 / 6 + 9 / 5, 6), 6)
    3.0
    """
    return float(np.sqrt(max(h - 1.0 / n, 0.0) * (n - 1)))
