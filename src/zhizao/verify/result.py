"""The result of a verification: one indicator, one scope, a baseline and a reporting period."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

#: Indicators and whether a higher value is better (reference/transformation.md, "The indicators").
INDICATORS = {
    "production_efficiency": "up",
    "defect_rate": "down",
    "operating_cost": "down",
    "unit_energy": "down",
    "development_cycle": "down",
    "energy": "down",  # energy consumption itself (whole-facility M&V, IPMVP option C)
}


def _clean(v):
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if hasattr(v, "item"):  # numpy scalars
        return _clean(v.item())
    return v


@dataclass
class VerificationResult:
    """One verified indicator.

    Values are fractions, not percent. ``change`` is the signed relative change of the reporting value
    against the adjusted baseline, ``(reporting - adjusted_baseline) / adjusted_baseline``; ``improvement`` is
    the same change signed so that positive is better (for a lower-is-better indicator,
    ``(adjusted_baseline - reporting) / adjusted_baseline``, the DOE SEP / ISO 50006 / IPMVP form);
    ``ci_low`` and ``ci_high`` bound ``improvement`` at ``confidence``. ``simple_change`` is the raw ratio
    change ``reporting / baseline - 1`` without normalisation, shown beside it.
    """

    indicator: str
    definition: str
    scope: str
    baseline_period: tuple[str, str]
    reporting_period: tuple[str, str]
    baseline: float | None
    reporting: float | None
    adjusted_baseline: float | None
    change: float | None
    improvement: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float
    method: str
    simple_change: float | None = None
    fit: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    coverage: dict = field(default_factory=dict)
    project_id: str | None = None

    def to_dict(self) -> dict:
        """Plain JSON-able dict (NaN and infinities become None)."""
        return _clean(asdict(self))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict) -> "VerificationResult":
        d = dict(d)
        d["baseline_period"] = tuple(d["baseline_period"])
        d["reporting_period"] = tuple(d["reporting_period"])
        return cls(**d)
