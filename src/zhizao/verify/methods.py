"""How each indicator's figure and its interval are computed, as structured messages (translated where shown).

A :class:`zhizao.verify.result.VerificationResult` keeps ``method`` and ``interval_method`` as English texts
(stable, stored with the result) and the same texts as messages in ``method_message`` and
``interval_message``, which front ends render in the reader's language.
"""

from __future__ import annotations

from zhizao.messages import define

METHODS = {
    "standardised_efficiency": define(
        "verify.method.efficiency_standardised",
        "good units per production hour at the baseline mix of equipment and products (direct standardisation)"),
    "standardised_defect_rate": define(
        "verify.method.defect_rate_standardised",
        "defect rate at the baseline mix of equipment and products (direct standardisation)"),
    "ratio_of_totals": define("verify.method.ratio_of_totals", "ratio of totals %(numerator)s / %(denominator)s"),
    "adjusted_baseline": define("verify.method.adjusted_baseline",
                                "adjusted baseline: OLS of %(y)s per %(bucket)s on %(drivers)s"),
    "adjusted_baseline_cost": define(
        "verify.method.adjusted_baseline_cost",
        "adjusted baseline: OLS of monthly cost at baseline prices on good output"),
    "cost_ratio_of_totals": define(
        "verify.method.cost_ratio_of_totals",
        "ratio of totals (cost per good unit at baseline prices) over the months"),
    "ratio_of_means": define("verify.method.ratio_of_means", "ratio of mean cycle times"),
    "not_verified": define("verify.method.not_verified", "not verified"),
}

INTERVALS = {
    "log_ratio": define(
        "verify.interval.log_ratio",
        "t interval on the log of the ratio; variance of the daily linearised estimator (AR(1)-prewhitened "
        "long-run variance), Welch-Satterthwaite degrees of freedom"),
    "exact_hac": define(
        "verify.interval.exact_hac",
        "exact variance of the predicted reporting sum plus its noise, AR(1)-prewhitened long-run variance, t "
        "with n_eff - p degrees of freedom"),
    "ashrae14": define("verify.interval.ashrae14",
                       "ASHRAE Guideline 14 fractional savings uncertainty (not calibrated)"),
    "block_bootstrap": define("verify.interval.block_bootstrap",
                              "circular block bootstrap, percentile interval (not calibrated)"),
    "inflated": define("verify.interval.inflated", "%(interval)s x out-of-sample inflation"),
    "exact_hac_cost": define(
        "verify.interval.exact_hac_cost",
        "exact variance of the predicted reporting sum plus its noise under AR(1) monthly errors, the "
        "coefficient estimated from the cost categories' monthly series together (restricted maximum "
        "likelihood), t with Satterthwaite degrees of freedom"),
    "cost_ratio_of_totals": define(
        "verify.interval.cost_ratio_of_totals",
        "t interval on the log of the ratio of totals over the months (the fallback's own)"),
    "log_ratio_of_means": define(
        "verify.interval.log_ratio_of_means",
        "t interval on the log of the ratio of means (delta method), Welch-Satterthwaite degrees of freedom"),
}
