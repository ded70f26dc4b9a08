"""Before/after comparison of ratio indicators that are not regressions.

- **Standardised ratio of totals** (:func:`standardised_ratio`): production efficiency (good units per
  production hour) and the defect rate (scrap + rework per produced unit) are ratios ``num / den`` whose
  level differs between equipment and products. A shift of load between machines or products moves the
  plant's ratio of totals without any machine changing. The estimand is the reporting period's rates per
  cell (equipment and product), weighted by the baseline's shares of the denominator (production hours,
  produced units): direct standardisation at the baseline mix. With one cell it is the ratio of totals.
- **Ratio of means** (:func:`ratio_of_means`): the development cycle, a few products per window.

Intervals are analytic: the estimator is linearised per day (its influence function), the variance of each
period's sum of daily influences is the long-run variance of that series (autocorrelation between days
included, :func:`zhizao.verify.uncertainty.sum_variance`), and the interval is a t interval on the log of
the ratio with Welch-Satterthwaite degrees of freedom. The bootstrap helpers below serve the optional
``block_bootstrap`` convention of the regression indicators.

References
----------
.. [1] Kitagawa, E. M. (1964). Standardized comparisons in population research. Demography 1, 296-315
   (direct standardisation).
.. [2] Deville, J.-C. (1999). Variance estimation for complex statistics and estimators: linearization and
   residual techniques. Survey Methodology 25(2), 193-203.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from zhizao.verify.uncertainty import log_ratio_interval, sum_variance, welch_df


def circular_block_indices(n: int, block: int, reps: int, rng: np.random.Generator,
                           length: int | None = None) -> np.ndarray:
    """Index arrays of ``reps`` circular block bootstrap resamples of a series of length ``n``.

    The scheme of Politis and Romano (1992), as arch.bootstrap.CircularBlockBootstrap draws it: blocks of
    ``block`` consecutive positions starting anywhere, wrapping around the end, until ``length`` positions
    (default ``n``) are drawn: a reporting period longer than the baseline draws new blocks, it does not
    repeat the first draws. Vectorised (one array for all resamples).

    Returns
    -------
    numpy.ndarray of int64, shape (reps, length)
    """
    length = n if length is None else int(length)
    k = -(-length // block)
    starts = rng.integers(0, n, size=(reps, k))
    idx = (starts[:, :, None] + np.arange(block)[None, None, :]) % n
    return idx.reshape(reps, k * block)[:, :length]


@dataclass
class StandardisedRatio:
    """A before/after comparison of ``num / den`` at the baseline mix of cells.

    Attributes
    ----------
    baseline : float
        Ratio of totals over the cells in both windows (= the baseline rate at its own mix).
    reporting : float
        The reporting rates of those cells weighted by the baseline's shares of ``den``.
    simple_reporting : float
        The reporting period's plain ratio of totals (all its data).
    simple_baseline : float
        The baseline's plain ratio of totals (all its data).
    ratio : float
        ``reporting / baseline``.
    ratio_low, ratio_high : float
        Interval of ``ratio``.
    log_variance, df : float
        Variance of ``log(ratio)`` and its degrees of freedom.
    cells, dropped, new : list
        Cells used; baseline cells without reporting data; reporting cells without baseline data.
    missing_weight, new_share : float
        Baseline share of ``den`` in ``dropped``; reporting share of ``den`` in ``new``.
    days : (int, int)
        Days with data in each window.
    phi : (float, float)
        Autocorrelation between days of each window's influence series.
    """

    baseline: float
    reporting: float
    simple_baseline: float
    simple_reporting: float
    ratio: float
    ratio_low: float
    ratio_high: float
    log_variance: float
    df: float
    cells: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    missing_weight: float = 0.0
    new_share: float = 0.0
    days: tuple[int, int] = (0, 0)
    phi: tuple[float, float] = (0.0, 0.0)


def _cell_day_sums(cell: np.ndarray, day: np.ndarray, num: np.ndarray, den: np.ndarray, n_cells: int
                   ) -> tuple[NDArray[Any], NDArray[np.float64], NDArray[np.float64]]:
    """Sums of num and den per (cell, day) as dense (days x cells) arrays over the days with data."""
    days, d = np.unique(day, return_inverse=True)
    G = np.zeros((days.size, n_cells))
    A = np.zeros((days.size, n_cells))
    np.add.at(G, (d, cell), num)
    np.add.at(A, (d, cell), den)
    return days, G, A


def standardised_ratio(cells_b: ArrayLike, day_b: ArrayLike, num_b: ArrayLike, den_b: ArrayLike,
                       cells_r: ArrayLike, day_r: ArrayLike, num_r: ArrayLike, den_r: ArrayLike,
                       confidence: float = 0.9) -> StandardisedRatio:
    """Reporting rate of ``num / den`` at the baseline mix of cells against the baseline rate.

    With ``w_c = A_c^B / sum A^B`` (baseline shares of ``den`` over the cells in both windows) and rates
    ``r_c = G_c / A_c`` per window, the baseline value is ``V_B = sum_c w_c r_c^B`` (its ratio of totals) and
    the reporting value ``V_R = sum_c w_c r_c^R``. ``log(V_R / V_B)`` is linearised per day [2]_:

    - reporting day ``t``: ``u_t = sum_c w_c (g_ct - r_c^R a_ct) / A_c^R / V_R``;
    - baseline day ``t``: ``u_t = sum_c a_ct (r_c^R - V_R) / (A^B V_R) - (g_t - V_B a_t) / (A^B V_B)`` (the
      second part is the baseline rate's own noise, the first the noise of the weights);

    each window's variance is that of the sum of its daily ``u`` (autocorrelation between days included),
    and the interval is ``exp(log(V_R / V_B) +- t sqrt(var_B + var_R))`` with Welch-Satterthwaite degrees of
    freedom.

    Parameters
    ----------
    cells_b, day_b, num_b, den_b : arrays, shape (k,)
        Baseline rows: cell label (any hashable), day index (any sortable integer, in time order), numerator
        and denominator of the row.
    cells_r, day_r, num_r, den_r : arrays, shape (l,)
        The same for the reporting window.
    confidence : float

    Returns
    -------
    StandardisedRatio
    """
    cb, cr = np.asarray(cells_b, object), np.asarray(cells_r, object)
    labels, code = np.unique(np.concatenate([cb, cr]).astype(str), return_inverse=True)
    kb, kr = code[:cb.size], code[cb.size:]
    nb_, db_ = np.asarray(num_b, float), np.asarray(den_b, float)
    nr_, dr_ = np.asarray(num_r, float), np.asarray(den_r, float)
    nc = labels.size
    simple_b = nb_.sum() / db_.sum() if db_.sum() > 0 else np.nan
    simple_r = nr_.sum() / dr_.sum() if dr_.sum() > 0 else np.nan
    AB = np.bincount(kb, db_, nc)
    AR = np.bincount(kr, dr_, nc)
    both = (AB > 0) & (AR > 0)
    dropped = [labels[i] for i in np.flatnonzero((AB > 0) & ~(AR > 0))]
    new = [labels[i] for i in np.flatnonzero((AR > 0) & ~(AB > 0))]
    missing_weight = float(AB[~both].sum() / AB.sum()) if AB.sum() > 0 else 1.0
    new_share = float(AR[~both].sum() / AR.sum()) if AR.sum() > 0 else 1.0
    nan = float("nan")
    out = StandardisedRatio(nan, nan, float(simple_b), float(simple_r), nan, nan, nan, nan, nan,
                            cells=[labels[i] for i in np.flatnonzero(both)], dropped=dropped, new=new,
                            missing_weight=missing_weight, new_share=new_share)
    if not both.any():
        return out
    keep_b, keep_r = both[kb], both[kr]
    days_b, G_b, A_b = _cell_day_sums(kb[keep_b], np.asarray(day_b)[keep_b], nb_[keep_b], db_[keep_b], nc)
    days_r, G_r, A_r = _cell_day_sums(kr[keep_r], np.asarray(day_r)[keep_r], nr_[keep_r], dr_[keep_r], nc)
    GB, AB_, GR, AR_ = G_b.sum(0), A_b.sum(0), G_r.sum(0), A_r.sum(0)
    A_tot = AB_.sum()
    w = AB_ / A_tot
    with np.errstate(invalid="ignore", divide="ignore"):
        r_r = np.where(AR_ > 0, GR / AR_, 0.0)
    v_b = float(GB.sum() / A_tot)
    v_r = float(w @ r_r)
    out.baseline, out.reporting = v_b, v_r
    out.days = (int(days_b.size), int(days_r.size))
    if v_b <= 0 or v_r <= 0:
        out.ratio = v_r / v_b if v_b > 0 else nan
        return out
    with np.errstate(invalid="ignore", divide="ignore"):
        u_r = ((G_r - r_r * A_r) * np.where(AR_ > 0, w / AR_, 0.0)).sum(1) / v_r
    u_b = (A_b @ (r_r - v_r)) / (A_tot * v_r) - (G_b.sum(1) - v_b * A_b.sum(1)) / (A_tot * v_b)
    var_b, df_b = sum_variance(u_b, center=False)
    var_r, df_r = sum_variance(u_r, center=False)
    var = var_b + var_r
    df = welch_df([(var_b, df_b), (var_r, df_r)])
    log_ratio = float(np.log(v_r / v_b))
    lo, hi = log_ratio_interval(log_ratio, var, df, confidence)
    from zhizao.verify.uncertainty import long_run_variance

    out.ratio, out.ratio_low, out.ratio_high = float(v_r / v_b), lo, hi
    out.log_variance, out.df = float(var), float(df)
    out.phi = (long_run_variance(u_b, center=False).phi, long_run_variance(u_r, center=False).phi)
    return out


@dataclass
class RatioOfMeans:
    """``mean(x_r) / mean(x_b)`` of two independent samples with its interval (see :func:`ratio_of_means`)."""

    baseline: float
    reporting: float
    ratio: float
    ratio_low: float
    ratio_high: float
    log_variance: float
    df: float
    n: tuple[int, int] = (0, 0)


def ratio_of_means(xb: ArrayLike, xr: ArrayLike, confidence: float = 0.9) -> RatioOfMeans:
    """Ratio of the means of two independent samples, with a t interval on its log.

    ``log(mean_r / mean_b) +- t_nu sqrt(s_r^2 / (n_r mean_r^2) + s_b^2 / (n_b mean_b^2))`` (the delta method
    on the log of each mean) with Welch-Satterthwaite degrees of freedom ``nu`` from ``n - 1`` per sample:
    the small-sample interval for a handful of products (a percentile bootstrap of 8 products is too
    narrow). With fewer than 2 values in a sample the interval is undefined (NaN).
    """
    xb, xr = np.asarray(xb, float), np.asarray(xr, float)
    mb, mr = float(xb.mean()), float(xr.mean())
    nan = float("nan")
    out = RatioOfMeans(mb, mr, mr / mb if mb else nan, nan, nan, nan, nan, (int(xb.size), int(xr.size)))
    if xb.size < 2 or xr.size < 2 or mb <= 0 or mr <= 0:
        return out
    vb = float(xb.var(ddof=1)) / (xb.size * mb * mb)
    vr = float(xr.var(ddof=1)) / (xr.size * mr * mr)
    df = welch_df([(vb, xb.size - 1.0), (vr, xr.size - 1.0)])
    if not np.isfinite(df):
        df = float(xb.size + xr.size - 2)
    lo, hi = log_ratio_interval(float(np.log(mr / mb)), vb + vr, df, confidence)
    out.ratio_low, out.ratio_high, out.log_variance, out.df = lo, hi, vb + vr, df
    return out
