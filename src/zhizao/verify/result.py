"""The result of a verification: one indicator, one scope, a baseline and a reporting period."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from typing import Any

from zhizao.messages import Message
from zhizao.verify.checks import Check, verdict

#: Indicators and whether a higher value is better (reference/transformation.md, "The indicators").
INDICATORS = {
    "production_efficiency": "up",
    "defect_rate": "down",
    "operating_cost": "down",
    "unit_energy": "down",
    "development_cycle": "down",
    "energy": "down",  # energy consumption itself (whole-facility M&V, IPMVP option C)
}

#: Verdicts (zhizao.verify.checks.verdict).
VERDICTS = ("verified", "indicative", "refused")


def _clean(v: object) -> Any:
    """``v`` as plain JSON values: NaN and infinities None, tuples lists, messages and checks their dicts, numpy
    scalars Python ones."""
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, dict):
        return _clean_dict(v)
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, (Message, Check)):
        return _clean(v.to_dict())
    if hasattr(v, "item"):  # numpy scalars
        return _clean(v.item())
    return v


def _clean_dict(d: dict[str, Any]) -> dict[str, Any]:
    """:func:`_clean` of each value of ``d`` (same keys)."""
    return {k: _clean(x) for k, x in d.items()}


@dataclass
class VerificationResult:
    """One verified indicator.

    Values are fractions, not percent. ``change`` is the signed relative change of the reporting value
    against the adjusted baseline, ``(reporting - adjusted_baseline) / adjusted_baseline``; ``improvement`` is
    the same change signed so that positive is better (for a lower-is-better indicator,
    ``(adjusted_baseline - reporting) / adjusted_baseline``, the DOE SEP / ISO 50006 / IPMVP form);
    ``ci_low`` and ``ci_high`` bound ``improvement`` at ``confidence``, computed by ``interval_method``.
    ``simple_change`` is the raw ratio change ``reporting / baseline - 1`` of the plain ratios of totals,
    shown beside it.

    ``method`` and ``interval_method`` are English texts (stable; stored with the result); the same texts as
    structured messages, translated where they are shown, are ``method_message`` and ``interval_message``
    (:mod:`zhizao.verify.methods`). Either field may be given a message: the text is then its English text.

    ``estimand`` says what the figure estimates (a structured message); ``checks`` lists every check run,
    passed or not; ``verdict`` is ``verified`` when all passed, ``indicative`` (with ``flags``, the codes of
    the failed checks) otherwise, and ``refused`` (no improvement given) when the value would be wrong
    whatever its interval. ``notes`` are information (structured messages); ``adjustments`` the non-routine
    adjustments applied (the audit trail of the adjusted baseline).
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
    method: str | Message  # a Message becomes its English text in __post_init__ (kept as method_message)
    simple_change: float | None = None
    fit: dict[str, Any] = field(default_factory=dict)  # the model's or the ratio's figures (mixed values)
    coverage: dict[str, Any] = field(default_factory=dict)  # counts and shares of the data (mixed values)
    project_id: str | None = None
    estimand: Message | None = None
    interval_method: str | Message | None = None  # likewise (interval_message)
    checks: list[Check] = field(default_factory=list)
    notes: list[Message] = field(default_factory=list)
    adjustments: list[dict[str, Any]] = field(default_factory=list)  # one record per adjustment (mixed values)
    verdict: str = "indicative"
    method_message: Message | None = None
    interval_message: Message | None = None

    def __post_init__(self) -> None:
        if isinstance(self.method, Message):
            self.method_message, self.method = self.method, str(self.method)
        if isinstance(self.interval_method, Message):
            self.interval_message, self.interval_method = self.interval_method, str(self.interval_method)

    def method_text(self, lang: str = "en") -> str:
        """How the figure is computed, in ``lang`` (the stored English text where no message is kept)."""
        return self.method_message.text(lang) if self.method_message is not None else str(self.method)

    def interval_text(self, lang: str = "en") -> str | None:
        """How the interval is computed, in ``lang`` (the stored English text where no message is kept)."""
        if self.interval_message is not None:
            return self.interval_message.text(lang)
        return None if self.interval_method is None else str(self.interval_method)

    def judge(self) -> VerificationResult:
        """Set ``verdict`` from the checks; a refused result keeps no improvement or interval."""
        self.verdict = verdict(self.checks)
        if self.verdict == "refused":
            self.improvement = self.change = self.ci_low = self.ci_high = None
        return self

    @property
    def flags(self) -> list[str]:
        """Codes of the failed checks (empty for a verified result)."""
        return [c.code for c in self.checks if not c.passed]

    @property
    def verified(self) -> bool:
        return self.verdict == "verified"

    @property
    def warnings(self) -> list[Message]:
        """The failed checks' messages, then the notes (what a reader should see beside the figure)."""
        return [c.message for c in self.checks if not c.passed] + list(self.notes)

    def to_dict(self, lang: str = "en") -> dict[str, Any]:
        """Plain JSON-able dict (NaN and infinities become None); messages as ``{code, params, message}``
        rendered in ``lang``, and ``warnings`` as their texts."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["checks"] = [c.to_dict(lang) for c in self.checks]
        d["notes"] = [m.to_dict(lang) for m in self.notes]
        d["estimand"] = self.estimand.to_dict(lang) if self.estimand is not None else None
        for k in ("method_message", "interval_message"):
            d[k] = getattr(self, k).to_dict(lang) if getattr(self, k) is not None else None
        d["flags"] = self.flags
        d["warnings"] = [m.text(lang) for m in self.warnings]
        return _clean_dict(d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VerificationResult:
        """The result of :meth:`to_dict` (also a stored result written before checks existed: it has no
        checks, and its verdict is ``indicative``)."""
        d = dict(d)
        d["baseline_period"] = tuple(d["baseline_period"])
        d["reporting_period"] = tuple(d["reporting_period"])
        d["checks"] = [Check.from_dict(c) for c in d.get("checks") or []]
        notes = d.get("notes")
        if notes is None:  # an old result: free-text warnings
            from zhizao.messages import text

            notes = [{"code": "verify.note.text", "message": w} for w in d.get("warnings") or []]
            d["notes"] = [text("verify.note.text", w) for w in d.get("warnings") or []]
        else:
            d["notes"] = [Message.from_dict(m) for m in notes]
        d["estimand"] = Message.from_dict(d["estimand"]) if d.get("estimand") else None
        for k in ("method_message", "interval_message"):
            d[k] = Message.from_dict(d[k]) if d.get(k) else None
        d["verdict"] = d.get("verdict") or "indicative"
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
