"""Before/after comparison of ratio indicators that are not regressions: ratios of totals and proportions.

- Production efficiency (units or standard hours earned per production or labour hour) is a ratio of totals,
  ``sum(num) / sum(den)``, never a mean of daily ratios; its change gets a paired circular block bootstrap over
  days in each period (:func:`circular_block_indices`).
- A defect rate is a proportion; the ratio of the two proportions gets a score interval
  (statsmodels.stats.proportion.confint_proportions_2indep, ``compare='ratio'``, ``method='score'``), with
  over-dispersion between days handled by a quasi-binomial dispersion factor phi: counts and trials are divided
  by phi (the effective sample size) before the score interval.

References: reference/verification.md, "Ratio KPIs that are not energy".
"""

from __future__ import annotations

import numpy as np
from statsmodels.stats.proportion import confint_proportions_2indep


def _blocks(n: int) -> int:
    return max(1, min(7, n // 4 or 1))


def circular_block_indices(n: int, block: int, reps: int, rng: np.random.Generator) -> np.ndarray:
    """Index arrays of ``reps`` circular block bootstrap resamples of a series of length ``n``.

    The scheme of Politis and Romano (1992), as arch.bootstrap.CircularBlockBootstrap draws it: blocks of
    ``block`` consecutive positions starting anywhere, wrapping around the end, until ``n`` positions are
    drawn. Vectorised (one array for all resamples), so thousands of resamples cost one numpy call.

    Returns
    -------
    numpy.ndarray of int64, shape (reps, n)
    """
    k = -(-n // block)
    starts = rng.integers(0, n, size=(reps, k))
    idx = (starts[:, :, None] + np.arange(block)[None, None, :]) % n
    return idx.reshape(reps, k * block)[:, :n]


def circular_block_starts(n: int, block: int, reps: int, rng: np.random.Generator) -> np.ndarray:
    """The block starts of :func:`circular_block_indices` (the same draws from ``rng``), shape (reps, k)."""
    return rng.integers(0, n, size=(reps, -(-n // block)))


def circular_block_sums(x: np.ndarray, starts: np.ndarray, block: int) -> np.ndarray:
    """Sums over axis 0 of the circular block resamples of ``x`` whose blocks start at ``starts``.

    Equals ``x[circular_block_indices(...)].sum(axis=1)`` for the same draws (up to the order of the floating
    point additions) without building the (reps, n) index array: each start's block sum is computed once
    (the last block of a resample is cut to ``n - (k - 1) block`` positions).

    Parameters
    ----------
    x : array, shape (n, ...)
    starts : array of int, shape (reps, k)
        From :func:`circular_block_starts`.
    block : int

    Returns
    -------
    numpy.ndarray, shape (reps, ...)
    """
    x = np.asarray(x, float)
    n, k = x.shape[0], starts.shape[1]
    last = n - (k - 1) * block
    tiled = x[np.arange(n + block) % n]
    full = np.zeros_like(x)
    for i in range(block):
        full += tiled[i:i + n]
    part = np.zeros_like(x)
    for i in range(last):
        part += tiled[i:i + n]
    out = part[starts[:, -1]]
    if k > 1:
        out = out + full[starts[:, :-1]].sum(axis=1)
    return out


def ratio_of_totals_change(num_b, den_b, num_r, den_r, confidence: float = 0.9, n_boot: int = 2000,
                           block: int | None = None, seed: int = 0) -> dict:
    """Relative change of ``sum(num) / sum(den)`` from baseline to reporting, with a block-bootstrap interval.

    Parameters
    ----------
    num_b, den_b : array, shape (n,)
        Baseline numerator and denominator per day (or shift).
    num_r, den_r : array, shape (m,)
        Reporting period.
    confidence : float
    n_boot : int
    block : int, optional
        Block length in periods (default min(7, n // 4)): keeps the autocorrelation of days.
    seed : int

    Returns
    -------
    dict
        baseline, reporting (ratios of totals), change (reporting / baseline - 1), ci_low, ci_high (of the
        change), n_boot, block.
    """
    num_b, den_b, num_r, den_r = (np.asarray(a, float) for a in (num_b, den_b, num_r, den_r))
    rb = num_b.sum() / den_b.sum() if den_b.sum() else np.nan
    rr = num_r.sum() / den_r.sum() if den_r.sum() else np.nan
    change = rr / rb - 1 if rb else np.nan
    out = {"baseline": rb, "reporting": rr, "change": change, "ci_low": np.nan, "ci_high": np.nan}
    if not np.isfinite(change) or num_b.size < 2 or num_r.size < 2:
        return out
    rng = np.random.default_rng(seed)
    kb, kr = block or _blocks(num_b.size), block or _blocks(num_r.size)
    sb = circular_block_starts(num_b.size, kb, n_boot, rng)  # the draws of circular_block_indices
    sr = circular_block_starts(num_r.size, kr, n_boot, rng)
    b2 = circular_block_sums(np.column_stack([num_b, den_b]), sb, kb)
    r2 = circular_block_sums(np.column_stack([num_r, den_r]), sr, kr)
    with np.errstate(invalid="ignore", divide="ignore"):
        ch = (r2[:, 0] / r2[:, 1]) / (b2[:, 0] / b2[:, 1]) - 1
    alpha = 1 - confidence
    lo, hi = np.nanquantile(ch, [alpha / 2, 1 - alpha / 2])
    out.update(ci_low=float(lo), ci_high=float(hi), n_boot=n_boot, block=block or _blocks(num_b.size))
    return out


def dispersion(counts, trials) -> float:
    """Quasi-binomial dispersion phi = Pearson chi2 / (k - 1) of daily counts around the pooled rate (>= 1)."""
    counts, trials = np.asarray(counts, float), np.asarray(trials, float)
    ok = trials > 0
    counts, trials = counts[ok], trials[ok]
    if counts.size < 2:
        return 1.0
    p = counts.sum() / trials.sum()
    if p <= 0 or p >= 1:
        return 1.0
    chi2 = (((counts - trials * p) ** 2) / (trials * p * (1 - p))).sum()
    return float(max(1.0, chi2 / (counts.size - 1)))


def proportion_ratio(count_b, n_b, count_r, n_r, confidence: float = 0.9) -> dict:
    """Ratio of two proportions (reporting / baseline) with an over-dispersion-adjusted score interval.

    Parameters
    ----------
    count_b, n_b : array, shape (k,)
        Defects and trials (inspected or produced units) per day of the baseline.
    count_r, n_r : array, shape (l,)
        The same for the reporting period.

    Returns
    -------
    dict
        baseline, reporting (pooled proportions), ratio, ratio_low, ratio_high, phi (the dispersion used,
        pooled over both periods), and the effective trials.
    """
    cb, nb, cr, nr = (np.asarray(a, float) for a in (count_b, n_b, count_r, n_r))
    pb, pr = cb.sum() / nb.sum(), cr.sum() / nr.sum()
    phi = max(1.0, (dispersion(cb, nb) * (cb.size - 1) + dispersion(cr, nr) * (cr.size - 1))
              / max(cb.size + cr.size - 2, 1))
    out = {"baseline": pb, "reporting": pr, "ratio": pr / pb if pb else np.nan, "phi": phi,
           "ratio_low": np.nan, "ratio_high": np.nan}
    if pb <= 0:
        return out
    low, high = confint_proportions_2indep(cr.sum() / phi, nr.sum() / phi, cb.sum() / phi, nb.sum() / phi,
                                           method="score", compare="ratio", alpha=1 - confidence)
    out.update(ratio_low=float(low), ratio_high=float(high), effective_trials=(nb.sum() / phi, nr.sum() / phi))
    return out
