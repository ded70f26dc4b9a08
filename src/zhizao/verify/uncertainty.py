"""Interval algebra of the verification: long-run variances, sums of autocorrelated series, t intervals on
logs, and the tests behind the checks (level shift, effective sample size).

Every interval of zhizao's verification is built from three pieces:

- the **long-run variance** of a series of per-bucket contributions (linearised estimators, regression
  residuals), by AR(1) prewhitening with a bias-corrected coefficient, or as an AR(1) component in white
  noise where the data show one (:func:`long_run_variance`): a sum of ``n`` autocorrelated days carries the
  information of ``n_eff = n (1 - phi) / (1 + phi)`` independent ones;
- Student t quantiles with the effective degrees of freedom (Welch-Satterthwaite when two periods add up,
  :func:`welch_df`), so that short windows give wide intervals, not narrow ones;
- intervals of ratios on the log scale (:func:`log_ratio_interval`), which keeps them inside the ratio's
  range and makes them right for multiplicative noise.

Their calibration is measured, not assumed: ``tests/test_verify_uncertainty.py`` simulates AR(1) series
(phi 0 to 0.8, 20 to 150 points) and checks that the 90 % intervals cover the truth 87 to 93 % of the time;
``benchmarks/verify_coverage.py`` does the same for whole simulated projects.

References
----------
.. [1] Andrews, D. W. K. and Monahan, J. C. (1992). An improved heteroskedasticity and autocorrelation
   consistent covariance matrix estimator. Econometrica 60(4), 953-966 (prewhitening).
.. [2] Kendall, M. G. (1954). Note on bias in the estimation of autocorrelation. Biometrika 41, 403-404
   (``E[phi_hat] = phi - (1 + 3 phi) / n``).
.. [3] Satterthwaite, F. E. (1946). An approximate distribution of estimates of variance components.
   Biometrics Bulletin 2(6), 110-114.
.. [4] Ploberger, W. and Kraemer, W. (1992). The CUSUM test with OLS residuals. Econometrica 60(2), 271-285.
.. [5] Kish, L. (1965). Survey Sampling. Wiley (effective sample size of weighted estimates).
.. [6] Durbin, J. and Watson, G. S. (1950, 1951). Testing for serial correlation in least squares regression
   I, II. Biometrika 37, 409-428; 38, 159-178.
.. [7] Imhof, J. P. (1961). Computing the distribution of quadratic forms in normal variables. Biometrika
   48(3/4), 419-426.
.. [8] Bhargava, A., Franzini, L. and Narendranathan, W. (1982). Serial correlation and the fixed effects
   model. Review of Economic Studies 49(4), 533-549 (the Durbin-Watson statistic pooled over a panel).
.. [9] Dufour, J.-M. (2006). Monte Carlo tests with nuisance parameters: a general approach to finite-sample
   inference and nonstandard asymptotics. Journal of Econometrics 133(2), 443-477 (exact Monte Carlo tests
   of pivotal statistics; Hope, A. C. A. (1968), A simplified Monte Carlo significance test procedure,
   Journal of the Royal Statistical Society B 30(3), 582-598).
.. [10] Harville, D. A. (1974). Bayesian inference for variance components using only error contrasts.
   Biometrika 61(2), 383-385 (the restricted likelihood); Cooper, D. M. and Thompson, R. (1977). A note on
   the estimation of the parameters of the autoregressive-moving average process. Biometrika 64(3), 625-628.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import integrate, special, stats

#: Largest AR(1) coefficient used for prewhitening (a unit root has no long-run variance).
PHI_MAX = 0.95
#: Fewest points for which an autocorrelation is estimated; shorter series are taken as independent.
MIN_POINTS_AR = 16


@dataclass(frozen=True)
class LongRun:
    """The long-run variance of a series and what it rests on.

    Attributes
    ----------
    variance : float
        Long-run variance per point: ``Var(sum of n points) ~= n * variance``.
    phi : float
        The bias-corrected lag-1 autocorrelation used for prewhitening (0 when not estimated).
    n : int
        Points.
    n_eff : float
        Effective number of independent points, ``n (1 - phi) / (1 + phi)`` for ``phi > 0``, else ``n``.
    """

    variance: float
    phi: float
    n: int
    n_eff: float

    @property
    def df(self) -> float:
        """Degrees of freedom of a t quantile for the mean of the series: ``n_eff - 1`` (at least 1)."""
        return max(self.n_eff - 1.0, 1.0)


def ar1_coefficient(u: np.ndarray) -> float:
    """Lag-1 autocorrelation of ``u`` (mean removed) with Kendall's small-sample bias correction [2]_,
    clipped to ``[-PHI_MAX, PHI_MAX]``; 0 for fewer than :data:`MIN_POINTS_AR` points.

    >>> round(ar1_coefficient(np.array([1.0, -1.0] * 10)), 3)
    -0.95
    """
    u = np.asarray(u, float)
    n = u.size
    if n < MIN_POINTS_AR:
        return 0.0
    c = u - u.mean()
    ss = float(c @ c)
    if ss <= 0:
        return 0.0
    r = float(c[1:] @ c[:-1]) / ss
    r = r + (1.0 + 3.0 * r) / n
    return float(min(max(r, -PHI_MAX), PHI_MAX))


def long_run_variance(u: np.ndarray, center: bool = True, ddof: int = 1, noise: bool = True) -> LongRun:
    """Long-run variance of ``u``: AR(1) prewhitening [1]_, or an AR(1) component in white noise where the
    data show one.

    - AR(1): ``phi`` = :func:`ar1_coefficient`; innovations ``e_t = c_t - phi c_{t-1}`` of the (centred)
      series; ``variance = (sum e_t^2 / (n - ddof - 1)) / (1 - phi)^2``, the spectral density at frequency 0
      of an AR(1).
    - AR(1) plus white noise (an ARMA(1, 1): day-to-day noise on top of a persistent component, such as
      binomial counts around a slowly wandering defect rate): the lag-1 autocorrelation is diluted by the
      noise, so AR(1) prewhitening understates the long-run variance. The persistence is read from the decay
      of the autocovariances, ``phi = gamma_2 / gamma_1`` (bias-corrected, at least ``rho_1``), and
      ``variance = gamma_0 + 2 gamma_1 / (1 - phi)``. Used when ``rho_1 > 2 / sqrt(n)`` and ``rho_2 > 0``
      and it gives more than the AR(1) figure.

    With fewer than :data:`MIN_POINTS_AR` points ``phi = 0`` and the variance is the sample variance, so
    that short series give the classical small-sample figures. Measured on AR(1) series with white noise of
    the same variance, 150 points, phi 0.8: 90 % intervals of the mean cover 86 % (AR(1) prewhitening alone
    72 %); on pure AR(1) and white noise both cover 89-91 %.

    Parameters
    ----------
    u : array, shape (n,)
        Contributions per bucket, in time order (buckets without data left out).
    center : bool
        Remove the mean first (False for series that sum to zero by construction, e.g. OLS scores).
    ddof : int
        Degrees of freedom used up before (1 for the mean; ``p`` for the residuals of a model with ``p``
        parameters): the variance divides by ``n - ddof`` (the innovations' by ``n - ddof - 1``).
    noise : bool
        Consider the AR(1)-plus-noise form (default); False for AR(1) prewhitening only (the tests of a
        model's errors, where a misfit should show rather than be absorbed as persistence).

    Returns
    -------
    LongRun
    """
    u = np.asarray(u, float)
    n = u.size
    if n < 2:
        return LongRun(0.0, 0.0, n, float(n))
    c = u - u.mean() if center else u
    phi = ar1_coefficient(c) if n >= MIN_POINTS_AR else 0.0
    if phi == 0.0:
        v = float(c @ c) / max(n - ddof, 1)
        return LongRun(v, 0.0, n, float(n))
    e = c[1:] - phi * c[:-1]
    v = float(e @ e) / max(n - ddof - 1, 1) / (1.0 - phi) ** 2
    n_eff = n * (1 - phi) / (1 + phi) if phi > 0 else float(n)
    out = LongRun(v, phi, n, float(max(n_eff, 2.0)))
    g0, g1, g2 = float(c @ c) / n, float(c[1:] @ c[:-1]) / n, float(c[2:] @ c[:-2]) / n
    if noise and g0 > 0 and g1 / g0 > 2 / np.sqrt(n) and g2 > 0:
        rho = g1 / g0
        p = min(max(g2 / g1, rho), PHI_MAX)
        p = min(p + (1 + 3 * p) / n, PHI_MAX)
        scale = n / max(n - ddof, 1)
        v2 = (g0 + 2 * g1 / (1 - p)) * scale
        if v2 > v:
            g0s = g0 * scale
            r_eff = (v2 - g0s) / (v2 + g0s)  # the AR(1) coefficient with the same ratio of v to g0
            out = LongRun(v2, p, n, float(max(n * (1 - r_eff) / (1 + r_eff), 2.0)))
    return out


def sum_variance(u: np.ndarray, center: bool = True) -> tuple[float, float]:
    """Variance of ``sum(u)`` and its degrees of freedom: ``(n * lrv, n_eff - 1)`` (:func:`long_run_variance`)."""
    lr = long_run_variance(u, center)
    return lr.n * lr.variance, lr.df


def welch_df(parts: list[tuple[float, float]]) -> float:
    """Welch-Satterthwaite degrees of freedom [3]_ of a sum of independent variance estimates
    ``(variance, df)``: ``(sum v)^2 / sum(v^2 / df)``; infinite for a zero total.

    >>> welch_df([(1.0, 10.0), (1.0, 10.0)])
    20.0
    """
    tot = sum(v for v, _ in parts)
    den = sum(v * v / d for v, d in parts if v > 0 and d > 0)
    if tot <= 0 or den <= 0:
        return float("inf")
    return float(tot * tot / den)


def t_quantile(confidence: float, df: float) -> float:
    """Two-sided Student t quantile ``t_{1 - alpha/2, df}`` (the normal one for infinite ``df``)."""
    q = 0.5 + confidence / 2
    if not np.isfinite(df):
        return float(stats.norm.ppf(q))
    return float(special.stdtrit(max(df, 1.0), q))


def log_ratio_interval(log_ratio: float, variance: float, df: float, confidence: float
                       ) -> tuple[float, float]:
    """Interval of ``exp(log_ratio)``: ``exp(log_ratio +- t * sqrt(variance))`` (t on logs)."""
    if not (np.isfinite(log_ratio) and np.isfinite(variance)) or variance < 0:
        return float("nan"), float("nan")
    h = t_quantile(confidence, df) * np.sqrt(variance)
    return float(np.exp(log_ratio - h)), float(np.exp(log_ratio + h))


def level_shift(resid: np.ndarray) -> dict[str, Any]:
    """OLS-CUSUM test for a level shift in a series of regression residuals [4]_.

    ``B(k) = sum_{t <= k} e_t / (sigma_lr sqrt(n))`` with ``sigma_lr^2`` the prewhitened long-run variance
    (:func:`long_run_variance`) of the residuals around the two means that the most likely shift leaves (so
    that autocorrelation alone does not look like a shift, and a shift does not look like autocorrelation
    that would hide it); the statistic
    ``max_k |B(k)|`` has the Kolmogorov distribution (``scipy.stats.kstwobign``) under no shift. The shift
    is dated at the maximum of ``|B|`` and sized as the mean residual after it minus the mean before it.

    Returns
    -------
    dict
        statistic, p_value, index (the first point after the shift), size (in the residuals' unit), n.
    """
    e = np.asarray(resid, float)
    n = e.size
    out = {"statistic": 0.0, "p_value": 1.0, "index": None, "size": 0.0, "n": int(n)}
    if n < MIN_POINTS_AR:
        return out
    c = e - e.mean()
    s = np.cumsum(c)
    k = int(np.argmax(np.abs(s[:-1]))) + 1
    # the long-run variance is taken from the residuals around the two means the shift at k would leave:
    # around one mean, a shift itself looks like strong autocorrelation and would hide itself
    alt = np.r_[c[:k] - c[:k].mean(), c[k:] - c[k:].mean()]
    lr = long_run_variance(alt, center=False, ddof=2, noise=False)
    if lr.variance <= 0:
        return out
    stat = float(np.abs(s[:-1]).max() / np.sqrt(lr.variance * n))
    out.update(statistic=stat, p_value=float(stats.kstwobign.sf(stat)), index=k,
               size=float(c[k:].mean() - c[:k].mean()))
    return out


def effective_n(weights: np.ndarray) -> float:
    """Kish's effective number of points behind an estimate ``sum_i w_i y_i`` [5]_:
    ``(sum |w_i|)^2 / sum w_i^2`` (``n`` for equal weights, about 1 when one point decides it).

    >>> effective_n(np.ones(8))
    8.0
    >>> round(effective_n(np.r_[1.0, np.full(99, 1e-4)]), 2)
    1.02
    """
    w = np.abs(np.asarray(weights, float))
    s2 = float(w @ w)
    return float(w.sum() ** 2 / s2) if s2 > 0 else 0.0


def _imhof_sf(lam: np.ndarray) -> float:
    """``P(sum_i lam_i z_i^2 > 0)`` for independent standard normal ``z_i`` (Imhof's integral [7]_)."""
    lam = lam[np.abs(lam) > 1e-12 * max(float(np.abs(lam).max(initial=0.0)), 1e-300)]
    if lam.size == 0:
        return 0.5
    if (lam > 0).all():
        return 1.0
    if (lam < 0).all():
        return 0.0
    scale = float(np.abs(lam).max())
    lam = lam / scale

    def f(u: float) -> float:
        if u == 0.0:
            return 0.5 * float(lam.sum())
        theta = 0.5 * float(np.arctan(lam * u).sum())
        rho = float(np.exp(0.25 * np.log1p((lam * u) ** 2).sum()))
        return float(np.sin(theta) / (u * rho))

    val, _err = integrate.quad(f, 0.0, np.inf, limit=200)
    return float(min(max(0.5 + val / np.pi, 0.0), 1.0))


def serial_correlation(ys: list[np.ndarray], Xs: list[np.ndarray]) -> dict[str, Any]:
    """Test for positive serial correlation of the errors of regressions fitted to consecutive segments
    (the baseline and the reporting window): the Durbin-Watson problem [6]_ with its exact null distribution.

    Each segment ``k`` is fitted by OLS, ``y_k = X_k b_k + e_k``; the statistic is the lag-1 autocorrelation
    of the residuals within the segments, ``r = sum_k sum_t e_kt e_k,t-1 / sum_k sum_t e_kt^2``. Under
    independent normal errors of one variance, ``r = z' M A M z / z' M z`` with ``M`` the residual maker of
    the block-diagonal design and ``A`` the within-segment lag-1 matrix, so ``P(r >= r_obs) =
    P(z' M (A - r_obs I) M z >= 0)``: a quadratic form in normal variables, computed exactly from its
    eigenvalues by Imhof's integral [7]_ (the exact p-value of the Durbin-Watson test, for any design and
    however few points; ``d = 2 (1 - r)`` up to end terms).

    A handful of months estimate how persistent the noise is only roughly (the cost interval plugs in the
    restricted ML estimate of several such series, :func:`ar1_persistence`); this test says whether the
    residuals drift together within the windows at all.

    Parameters
    ----------
    ys : list of arrays
        The responses of the segments, each in time order.
    Xs : list of arrays, shape (n_k, p_k)
        Their designs (intercept included).

    Returns
    -------
    dict
        r (the residuals' lag-1 autocorrelation), p_value (one-sided, positive correlation), n, df (residual
        degrees of freedom); p_value 1 when there are too few residual degrees of freedom (fewer than 3).
    """
    n = int(sum(len(y) for y in ys))
    blocks, lag = [], np.zeros((n, n))
    i = 0
    for X in Xs:
        X = np.asarray(X, float)
        m = X.shape[0]
        blocks.append((i, m, X))
        for t in range(i + 1, i + m):
            lag[t, t - 1] = lag[t - 1, t] = 0.5
        i += m
    M = np.eye(n)
    for i, m, X in blocks:
        sl = slice(i, i + m)
        M[sl, sl] -= X @ np.linalg.pinv(X)
    y = np.concatenate([np.asarray(v, float) for v in ys])
    e = M @ y
    df = int(round(float(np.trace(M))))
    out = {"r": float("nan"), "p_value": 1.0, "n": n, "df": df}
    ss = float(e @ e)
    if df < 3 or ss <= 0:
        return out
    r = float(e @ lag @ e) / ss
    lam = np.linalg.eigvalsh(M @ (lag - r * np.eye(n)) @ M)
    out.update(r=r, p_value=_imhof_sf(lam))
    return out


def serial_correlation_panel(ys: list[np.ndarray], Xs: list[np.ndarray], n_sim: int = 9999,
                             seed: int = 0) -> dict[str, Any]:
    """Test for positive serial correlation in a panel of short regressions (several cost categories in
    each window): the panel form of the Durbin-Watson test [8]_ with a Monte Carlo p-value [9]_.

    Each series ``k`` is fitted by OLS, ``y_k = X_k b_k + e_k``, and gives the lag-1 autocorrelation of its
    residuals ``r_k = sum_t e_kt e_k,t-1 / sum_t e_kt^2``; the statistic is their mean ``r``. Under the null
    (each series' errors independent normal over time, of any variance, the series independent of each
    other) ``r_k = z' M_k A M_k z / z' M_k z`` does not depend on ``b_k`` or the variance: ``r`` is pivotal,
    so its null distribution is simulated exactly from standard normal ``z`` and the Monte Carlo test
    ``p = (1 + #{r_sim >= r}) / (n_sim + 1)`` has its level exactly (Hope 1968, Dufour 2006 [9]_). Series
    without residual degrees of freedom (fewer than 2) or without residual variation are left out.

    Six months per window hold too little to see AR(1) noise in one series (:func:`serial_correlation`,
    8 residual degrees of freedom); four cost categories booked apart give 32.

    Parameters
    ----------
    ys : list of arrays
        The series, each in time order.
    Xs : list of arrays, shape (n_k, p_k)
        Their designs (intercept included).
    n_sim : int
        Draws of the null distribution.
    seed : int
        Seed of the draws (the p-value of the same data is always the same).

    Returns
    -------
    dict
        r (mean lag-1 autocorrelation of the series' residuals), p_value (one-sided, positive correlation),
        series (used), df (summed residual degrees of freedom); p_value 1 with fewer than 3 degrees of freedom.
    """
    used: list[tuple[np.ndarray, int]] = []
    rs: list[float] = []
    df = 0
    for y, X in zip(ys, Xs):
        y = np.asarray(y, float)
        X = np.asarray(X, float).reshape(len(y), -1)
        M = np.eye(len(y)) - X @ np.linalg.pinv(X)
        k = int(round(float(np.trace(M))))
        e = M @ y
        ss = float(e @ e)
        if k < 2 or not ss > 1e-20 * max(float(y @ y), 1e-300):
            continue
        used.append((M, len(y)))
        rs.append(float(e[1:] @ e[:-1]) / ss)
        df += k
    out: dict[str, Any] = {"r": float("nan"), "p_value": 1.0, "series": len(used), "df": df}
    if not used or df < 3:
        return out
    r = float(np.mean(rs))
    rng = np.random.default_rng(seed)
    sim = np.zeros(n_sim)
    for M, m in used:
        Z = rng.standard_normal((n_sim, m)) @ M
        sim += np.einsum("ij,ij->i", Z[:, 1:], Z[:, :-1]) / np.einsum("ij,ij->i", Z, Z)
    sim /= len(used)
    out.update(r=r, p_value=float((1 + np.count_nonzero(sim >= r - 1e-12)) / (n_sim + 1)))
    return out


#: The AR(1) coefficients at which :func:`ar1_persistence` evaluates the restricted likelihood (evenly spaced).
AR1_GRID = np.round(np.arange(-0.90, 0.9701, 0.01), 2)


def ar1_correlation(n: int, rho: np.ndarray | float) -> np.ndarray:
    """Correlation matrices of ``n`` consecutive points of stationary AR(1) series, ``R_ij = rho^|i - j|``;
    shape ``(n, n)`` for a scalar ``rho``, ``(g, n, n)`` for ``g`` coefficients.

    >>> ar1_correlation(3, 0.5).tolist()
    [[1.0, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 1.0]]
    """
    k = np.abs(np.subtract.outer(np.arange(n), np.arange(n)))
    r = np.asarray(rho, float)
    return np.power.outer(r, k) if r.ndim else np.power(float(r), k).astype(float)


@dataclass(frozen=True)
class RestrictedLikelihood:
    """The restricted log-likelihood of a shared AR(1) coefficient (:func:`ar1_restricted_loglik`).

    Attributes
    ----------
    rho, loglik : array
        The coefficients and the log-likelihood (up to a constant) at each.
    series, df : int
        The series that entered it and their summed residual degrees of freedom (0: the data say nothing).
    """

    rho: np.ndarray
    loglik: np.ndarray
    series: int
    df: int


def ar1_restricted_loglik(ys: list[np.ndarray], Xs: list[np.ndarray], grid: np.ndarray = AR1_GRID
                          ) -> RestrictedLikelihood:
    """Restricted (REML) log-likelihood of one AR(1) coefficient shared by several short regressions, each
    with its own coefficients and error variance [10]_, at every coefficient of ``grid``.

    Series ``k``: ``y_k = X_k b_k + u_k``, ``u_k ~ N(0, s_k^2 R(rho))``. With ``S = R(rho)^-1`` (tridiagonal,
    ``|R| = (1 - rho^2)^(n - 1)``), ``A = X' S X``, ``e`` the GLS residuals and ``s_k^2`` profiled out:
    ``l(rho) = -1/2 sum_k [(n_k - 1) log(1 - rho^2) + log |A_k| + (n_k - p_k) log(e_k' S e_k / (n_k - p_k))]``.
    It is the likelihood of the residuals, free of the ``b_k`` (flat prior on them), so unlike the
    likelihood of the data it is not biased towards 0 by the coefficients fitted in each short series.
    Left out: series without residual degrees of freedom, with a value that is not finite, or fitted exactly
    by their design (residuals at rounding level: their likelihood is unbounded, whatever ``rho``). Each
    series weighs alike, whatever its share of the total's variance.
    """
    rho = np.asarray(grid, float)
    out = np.zeros(rho.size)
    groups: dict[tuple[int, int, bytes], tuple[NDArray[np.float64], list[NDArray[np.float64]]]] = {}
    for y, X in zip(ys, Xs):  # series of one design share its matrices
        y = np.asarray(y, float)
        X = np.asarray(X, float).reshape(y.size, -1)
        if X.shape[0] - X.shape[1] < 1 or not (np.isfinite(y).all() and np.isfinite(X).all()):
            continue
        e = y - X @ np.linalg.lstsq(X, y, rcond=None)[0]
        if not float(e @ e) > 1e-20 * max(float(y @ y), 1e-300):
            continue
        groups.setdefault((*X.shape, X.tobytes()), (X, []))[1].append(y)
    series = df = 0
    for X, yl in groups.values():
        n, p = X.shape
        Y = np.array(yl).T  # (n, k)
        S = np.zeros((rho.size, n, n))
        i = np.arange(n)
        S[:, i, i] = (1 + rho ** 2)[:, None]
        S[:, 0, 0] = S[:, n - 1, n - 1] = 1.0
        S[:, i[1:], i[:-1]] = S[:, i[:-1], i[1:]] = -rho[:, None]
        S /= (1 - rho ** 2)[:, None, None]
        XS = np.einsum("ji,gjk->gik", X, S)  # X' S, (g, p, n)
        A = XS @ X
        E = Y[None] - X @ np.linalg.solve(A, XS @ Y)  # GLS residuals, (g, n, k)
        q = np.einsum("gik,gij,gjk->gk", E, S, E)
        k = Y.shape[1]
        out -= 0.5 * (k * ((n - 1) * np.log(1 - rho ** 2) + np.linalg.slogdet(A)[1])
                      + (n - p) * np.log(q / (n - p)).sum(axis=1))
        series += k
        df += k * (n - p)
    return RestrictedLikelihood(rho, out, series, df)


@dataclass(frozen=True)
class Persistence:
    """What a few short series say about the AR(1) coefficient of their errors (:func:`ar1_persistence`).

    Attributes
    ----------
    rho : float
        The coefficient's restricted ML estimate.
    series, df : int
        The series it rests on and their summed residual degrees of freedom.
    """

    rho: float
    series: int
    df: int


def ar1_persistence(ys: list[np.ndarray], Xs: list[np.ndarray], grid: np.ndarray = AR1_GRID
                    ) -> Persistence | None:
    """The AR(1) coefficient shared by several short regressions: its restricted maximum likelihood estimate
    (:func:`ar1_restricted_loglik` on ``grid``, refined by a parabola through the best point and its
    neighbours, kept inside the grid); None when no series can say anything about it.

    On eight series of six months (four cost categories in two windows, each regressed on its output) the
    estimate is 0.71 +- 0.27 at 0.8 and 0.00 +- 0.30 at 0: unlike the lag-1 autocorrelation of the OLS
    residuals it is not dragged towards 0 (or below) by the coefficients fitted in each short series. Plugged
    into a sum's variance (:func:`ar1_sum_variance`), 90 % intervals of such a cost model cover 87-90 % under
    AR(1) errors at 0.8 and at their level under independent errors (88 % where the estimate is negative, 93 %
    where it is not), where taking the months as independent covers 61-65 % and 89 %. Averaging the variance
    over the restricted likelihood instead (a flat prior on the coefficient) covered 91 % at 0.8 but 94 % on
    the benchmark's projects with independent errors: too wide.

    Raises
    ------
    ValueError
        For a grid that is not evenly spaced inside (-1, 1).
    """
    rho = np.asarray(grid, float)
    step = np.diff(rho)
    if rho.size < 3 or not (np.abs(rho) < 1).all() or not np.allclose(step, step[0]) or not step[0] > 0:
        raise ValueError("the AR(1) grid must hold three or more evenly spaced coefficients inside (-1, 1)")
    rl = ar1_restricted_loglik(ys, Xs, rho)
    if not rl.series:
        return None
    ll = rl.loglik
    j = int(np.argmax(ll))
    r = float(rho[j])
    if 0 < j < rho.size - 1:
        y0, y1, y2 = ll[j - 1], ll[j], ll[j + 1]
        den = y0 - 2 * y1 + y2
        if den < 0:
            r += 0.5 * (y0 - y2) / den * float(step[0])
    return Persistence(float(np.clip(r, rho[0], rho[-1])), rl.series, rl.df)


def ar1_sum_variance(D: np.ndarray, resid: np.ndarray, c: np.ndarray, m: int, rho: float) -> dict[str, float]:
    """Variances of a regression's prediction of a reporting period's sum and of that period's measured sum
    under AR(1) errors with coefficient ``rho`` (an estimate: :func:`ar1_persistence`).

    The baseline's error variance ``s^2 = e'e / tr(M R_b)`` (unbiased under ``R_b = R(rho)``, ``M`` the residual
    maker of ``D``); the prediction ``c' b`` errs by ``w' u`` with ``w = D (D'D)^-1 c``, variance
    ``s^2 w' R_b w``; the reporting sum of ``m`` points varies by ``s^2 1' R_m 1``; degrees of freedom of ``s^2``
    by Satterthwaite [3]_, ``tr(M R_b)^2 / tr((M R_b)^2)``. The baseline's and the reporting period's errors
    are taken as independent (months apart, and the conservative side when they persist), and the points of
    each as consecutive (a month left out for lack of data closes the gap).

    Parameters
    ----------
    D : array, shape (n, p)
        Baseline design.
    resid : array, shape (n,)
        Its OLS residuals.
    c : array, shape (p,)
        The reporting period's summed design row.
    m : int
        Reporting points.
    rho : float
        AR(1) coefficient, in (-1, 1).

    Returns
    -------
    dict
        var_prediction, var_noise, df, s2 (the error variance).

    Examples
    --------
    Independent errors give the classical figures, ``s^2 = 0.04 / 2``, ``c' (D'D)^-1 c = 1``:

    >>> D = np.c_[np.ones(4), [1.0, 2.0, 3.0, 4.0]]
    >>> v = ar1_sum_variance(D, np.array([0.1, -0.1, -0.1, 0.1]), np.array([2.0, 5.0]), 2, 0.0)
    >>> round(v["var_prediction"], 4), round(v["var_noise"], 4), v["df"]
    (0.02, 0.04, 2.0)
    """
    D = np.asarray(D, float)
    n = D.shape[0]
    M = np.eye(n) - D @ np.linalg.pinv(D)
    w = D @ (np.linalg.pinv(D.T @ D) @ np.asarray(c, float))
    Rb = ar1_correlation(n, rho)
    MR = M @ Rb
    tr = float(np.trace(MR))
    s2 = float(resid @ resid) / tr
    return {"var_prediction": s2 * float(w @ Rb @ w), "var_noise": s2 * float(ar1_correlation(m, rho).sum()),
            "df": tr ** 2 / float(np.trace(MR @ MR)), "s2": s2}
