"""Verify stage: before/after change of the headline indicators with an adjusted baseline and a stated
confidence level (IPMVP, ISO 50006, ASHRAE Guideline 14; docs/reference/verification.md)."""

from zhizao.verify.checks import Check
from zhizao.verify.indicators import DEFINITIONS, verify
from zhizao.verify.inputs import VerificationInputs
from zhizao.verify.project import (
                                   PROJECT_INDICATORS,
                                   default_windows,
                                   stored_results,
                                   unverifiable,
                                   verify_all_projects,
                                   verify_project,
)
from zhizao.verify.result import INDICATORS, VERDICTS, VerificationResult

__all__ = [
                                   "DEFINITIONS",
                                   "INDICATORS",
                                   "PROJECT_INDICATORS",
                                   "VERDICTS",
                                   "Check",
                                   "VerificationInputs",
                                   "VerificationResult",
                                   "default_windows",
                                   "stored_results",
                                   "unverifiable",
                                   "verify",
                                   "verify_all_projects",
                                   "verify_project",
]
