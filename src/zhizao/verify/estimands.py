"""What each indicator's figure estimates (docs/reference/verification.md, "Estimands").

Every :class:`zhizao.verify.result.VerificationResult` carries its estimand as a structured message. The
simulated programme (:mod:`zhizao.simulate.programme`) defines its known effects as the same quantities, so
that a verification can be scored against them.
"""

from __future__ import annotations

from typing import Any

from zhizao.messages import Message, define

ESTIMANDS = {
    ("production_efficiency", "good_units_per_production_hour"): define(
        "verify.estimand.efficiency_standardised",
        "change of good units per production hour at the baseline mix: the reporting period's rate of each "
        "equipment and product, weighted by the baseline's shares of production hours, against the baseline's "
        "rate (production hours split between the products of an equipment-day by their planned run time)"),
    ("production_efficiency", "standard_hours_per_labour_hour"): define(
        "verify.estimand.efficiency_standard_hours",
        "change of standard hours earned per attendance hour (ratios of totals; standard hours weight the "
        "product mix)"),
    ("production_efficiency", "good_units_per_labour_hour"): define(
        "verify.estimand.efficiency_labour",
        "change of good units per attendance hour (ratios of totals, not standardised for the mix)"),
    ("defect_rate", "scrap_rework_per_produced"): define(
        "verify.estimand.defect_rate_standardised",
        "reduction of the defect rate ((scrap + rework) / produced) at the baseline mix: the reporting "
        "period's rate of each equipment and product, weighted by the baseline's shares of produced units, "
        "against the baseline's rate"),
    ("defect_rate", "failed_per_inspected"): define(
        "verify.estimand.defect_rate_inspected",
        "reduction of failed per inspected units (ratios of totals)"),
    ("unit_energy", None): define(
        "verify.estimand.unit_energy",
        "avoided share of energy at the reporting period's conditions: 1 - reporting energy / adjusted "
        "baseline, the adjusted baseline being what the baseline plant would have used for the reporting "
        "period's output of each equipment (%(drivers)s), plus recorded non-routine adjustments; equal to the "
        "reduction of energy per unit at the reporting output"),
    ("energy", None): define(
        "verify.estimand.energy",
        "avoided share of energy at the reporting period's conditions (IPMVP option C): 1 - reporting energy "
        "/ adjusted baseline (%(drivers)s), plus recorded non-routine adjustments"),
    ("operating_cost", None): define(
        "verify.estimand.operating_cost",
        "avoided share of operating cost per good unit at baseline prices at the reporting period's output: "
        "1 - reporting cost / adjusted baseline cost (monthly cost at baseline prices regressed on good "
        "output)"),
    ("operating_cost", "fallback"): define(
        "verify.estimand.operating_cost_ratio",
        "reduction of operating cost per good unit at baseline prices (ratios of totals over the months)"),
    ("development_cycle", None): define(
        "verify.estimand.development_cycle",
        "reduction of the mean development cycle: 1 - mean days from design start to release of the products "
        "started in the reporting window / mean days of the products released in the baseline window"),
}


def estimand(indicator: str, definition: str | None = None, **params: Any) -> Message:
    """The estimand message of ``indicator`` (and ``definition`` where the definitions differ)."""
    kind = ESTIMANDS.get((indicator, definition)) or ESTIMANDS[(indicator, None)]
    return kind(**params)
