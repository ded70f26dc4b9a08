"""The checks of a verification, their verdict, and the texts of estimands and notes (structured messages).

Every result runs a list of checks; each is a :class:`Check` (passed or not) with a structured message (code
and parameters, :mod:`zhizao.messages`). The verdict (:func:`verdict`):

- ``verified``: every check passed;
- ``indicative``: a value is given, but at least one check failed (their codes are the result's ``flags``);
- ``refused``: the value would be wrong whatever its interval (a non-positive adjusted baseline, an
  improvement outside (-100 %, 100 %) for a reduction indicator, an inverted or undefined interval, a cost
  window that cuts booking periods when proration is refused): no improvement is given.

Thresholds are module constants (:data:`LIMITS`); docs/reference/verification.md explains each check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from zhizao.messages import Message, define

#: Thresholds of the checks.
LIMITS = {
    "coverage_min": 0.90,  # share of expected buckets with data
    "coefficient_n_eff_min": 10.0,  # Kish effective points behind each model coefficient
    "level_shift_p": 0.01,  # CUSUM p-value below which the baseline has a level shift
    "extrapolation_sd": 3.0,  # reporting mean beyond this many baseline SD of a driver
    "extrapolation_share": 0.10,  # share of reporting buckets outside a driver's baseline range
    "mix_missing_max": 0.10,  # baseline share (of the weights) of cells without reporting data
    "mix_new_max": 0.10,  # reporting share of cells without baseline data
    "products_min": 5,  # development cycle: products per window
    "cost_months_min": 4,  # operating cost: baseline months for the regression
    "cost_reporting_months_min": 3,  # operating cost: reporting months (a quarter) for a verified result
    "out_of_sample_p": 0.01,  # out-of-sample bias test: p below which the model's own error is too small
    "serial_correlation_p": 0.10,  # cost months: Durbin-Watson p below which the residuals drift together
}

REFUSALS = frozenset({"verify.check.adjusted_baseline_positive", "verify.check.improvement_range",
                      "verify.check.interval", "verify.check.booking_periods_refused", "verify.check.computable"})


@dataclass(frozen=True)
class Check:
    """One check of a result: whether it passed, and its message (code and parameters)."""

    passed: bool
    message: Message

    @property
    def code(self) -> str:
        return self.message.code

    def to_dict(self, lang: str = "en") -> dict[str, Any]:
        return {"passed": bool(self.passed), **self.message.to_dict(lang)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Check:
        return cls(bool(d["passed"]), Message.from_dict(d))


def verdict(checks: list[Check]) -> str:
    """``refused`` if a refusal check failed, ``indicative`` if another failed, else ``verified``."""
    failed = {c.code for c in checks if not c.passed}
    if failed & REFUSALS:
        return "refused"
    return "indicative" if failed else "verified"


# -- checks ------------------------------------------------------------------------------------------------------
COVERAGE = define("verify.check.data_coverage",
                  "data present in %(present)s of the %(expected)s buckets of the %(period)s window where data "
                  "were expected (%(share)s; at least %(minimum)s)")
OUTAGE = define("verify.check.outage",
                "%(kind)s outage: %(buckets)s buckets of %(equipment)s without data in the %(period)s window "
                "(left out of the computation)")
MODEL_VALIDITY = define("verify.check.model_validity",
                        "the baseline model fails the validity checks: %(failed)s")
EXTRAPOLATION = define("verify.check.extrapolation",
                       "%(driver)s: reporting mean %(mean)s against the baseline range %(low)s .. %(high)s "
                       "(mean %(baseline_mean)s, SD %(sd)s); %(outside)s of the reporting buckets outside it",
                       labels={"driver": lambda t, _lang: term(t) if isinstance(t, str) else t})  # driver: column name
LEVERAGE = define("verify.check.prediction_leverage",
                  "the reporting conditions lie outside the baseline data: leverage of their mean %(leverage)s, "
                  "largest in the baseline %(max_baseline)s")
SUPPORT = define("verify.check.coefficient_support",
                 "%(term)s rests on about %(n_eff)s effective points (at least %(minimum)s)",
                 labels={"term": lambda t, _lang: term(t) if isinstance(t, str) else t})
LEVEL_SHIFT = define("verify.check.level_shift",
                     "the baseline shifts by %(size)s near %(date)s (CUSUM p = %(p)s); if the change is unrelated "
                     "to the project, record a non-routine adjustment")
OUT_OF_SAMPLE = define("verify.check.out_of_sample",
                       "out of sample (%(folds)s blocks of the baseline) the model predicts with NMBE %(nmbe)s and "
                       "CV(RMSE) %(cv_rmse)s against %(cv_rmse_in)s in sample (p = %(p)s)")
#: Where the interval does not rest on the persistence the months show (16 or more baseline months, the other
#: conventions); else a note (NOTE_SERIAL_CORRELATION).
SERIAL_CORRELATION = define("verify.check.serial_correlation",
                            "the monthly residuals of %(series)s drift together (lag-1 autocorrelation %(r)s over "
                            "%(n)s months, Durbin-Watson p = %(p)s < %(limit)s): this interval does not rest on "
                            "the persistence they show")
ADJ_POSITIVE = define("verify.check.adjusted_baseline_positive",
                      "the adjusted baseline is %(value)s: not positive, no improvement can be stated")
IMPROVEMENT_RANGE = define("verify.check.improvement_range",
                           "an improvement of %(value)s is outside (-100 %%, 100 %%) for a reduction indicator")
INTERVAL = define("verify.check.interval",
                  "the interval %(low)s .. %(high)s is not an interval around the estimate %(value)s")
BOOKING_PRORATED = define("verify.check.booking_periods",
                          "the %(period)s window cuts %(n)s booking periods of the costs; their amounts are "
                          "prorated by time")
BOOKING_REFUSED = define("verify.check.booking_periods_refused",
                         "the %(period)s window cuts %(n)s booking periods of the costs (proration refused)")
FALLBACK = define("verify.check.fallback_method",
                  "%(n)s baseline %(unit)s, fewer than the %(minimum)s the model needs: %(method)s, with that "
                  "method's interval")
SAMPLE_SIZE = define("verify.check.sample_size",
                     "%(n)s %(unit)s in the %(period)s window (at least %(minimum)s)")
MIX = define("verify.check.mix_coverage",
             "cells without data in the reporting window hold %(missing)s of the baseline weight; cells new in "
             "the reporting window hold %(new)s of its %(what)s (at most %(maximum)s each)")
PRICE_INDEX = define("verify.check.price_index",
                     "no price_index variable: costs are not deflated to baseline prices")
COMPUTABLE = define("verify.check.computable", "not computed: %(reason)s")
ADJUSTMENT = define("verify.check.adjustment",
                    "non-routine adjustment %(adjustment)s (%(reason)s) could not be applied: %(why)s")

# -- notes (information, not checks) -----------------------------------------------------------------------------
NOTE_WINDOW = define("verify.note.window_shortened",
                     "%(period)s window shortened to the data: %(start)s .. %(end)s (default %(months)s months)")
NOTE_ADJUSTMENT = define("verify.note.adjustment",
                         "non-routine adjustment %(adjustment)s from %(start)s (%(reason)s): %(how)s")
NOTE_MIX_DROPPED = define("verify.note.cells_dropped",
                          "left out of the standardisation (no data in one window): %(cells)s")
NOTE_NO_PRI = define("verify.note.no_pri",
                     "products without a planned run time on %(equipment)s: production time split by units")
NOTE_MODEL = define("verify.note.model",
                    "baseline model of %(y)s per %(bucket)s on %(terms)s")
NOTE_SERIAL_CORRELATION = define("verify.note.serial_correlation",
                                 "the monthly residuals of %(series)s drift together (lag-1 autocorrelation %(r)s "
                                 "over %(n)s months, Durbin-Watson p = %(p)s): the interval takes an AR(1) "
                                 "coefficient of %(phi)s, which these series show together")


#: Words that enter messages as parameters (translated with them). Every English text that a message takes as
#: a parameter is one of these or another message, never a bare string (tests/test_verify_checks.py).
WORDS = {w: define(f"verify.word.{w.replace(' ', '_')}", w) for w in (
    "baseline", "reporting", "counter", "meter", "time", "products", "months", "production hours",
    "produced units", "hour", "day", "week", "month", "a constant", "none", "cost", "development cycle",
    "output and production time", "inspected or produced units", "baseline or reporting", "the total cost",
    "each cost category")}
# -- why a baseline model fails the validity checks (zhizao.verify.model) ---------------------------------------
FAIL_F_TEST = define("verify.model.f_test", "F-test p %(p)s >= %(limit)s")
FAIL_F_UNDEFINED = define("verify.model.f_test_undefined", "F-test undefined")
FAIL_VARIABLE_P = define("verify.model.variable_p", "a variable has p >= %(limit)s")
FAIL_NO_VARIABLE_P = define("verify.model.no_variable_p", "no variable has p < %(limit)s")
FAIL_R2 = define("verify.model.r2", "R2 %(r2)s < %(limit)s")
FAIL_SUPPORT = define("verify.model.coefficient_support",
                      "coefficients resting on fewer than %(minimum)s effective points: %(terms)s")
NO_VALID_MODEL = define("verify.model.no_valid_model",
                        "no model passed the validity checks (%(failed)s); the model with all candidate variables "
                        "is used")
ENERGY_OF = define("verify.word.energy_of", "energy (%(column)s)")
ADJ_FEW_BUCKETS = define("verify.adjustment.few_buckets",
                         "its date leaves fewer than %(minimum)s baseline buckets on one side")
ADJ_ESTIMATED = define("verify.adjustment.estimated", "level shift estimated from the baseline")
ADJ_STATED = define("verify.adjustment.stated", "%(amount)s per day stated")


#: A check's name, for lists of failed checks (a result's flags are the codes of its failed checks).
CHECK_NAMES = {f"verify.check.{code}": define(f"verify.check_name.{code}", name) for code, name in (
    ("data_coverage", "data coverage"),
    ("outage", "meter or counter outage"),
    ("model_validity", "validity of the baseline model"),
    ("extrapolation", "reporting conditions outside the baseline range"),
    ("prediction_leverage", "prediction leverage"),
    ("coefficient_support", "support of the model's coefficients"),
    ("level_shift", "level shift in the baseline"),
    ("out_of_sample", "out-of-sample error"),
    ("serial_correlation", "serial correlation of the residuals"),
    ("adjusted_baseline_positive", "positive adjusted baseline"),
    ("improvement_range", "plausible improvement"),
    ("interval", "confidence interval"),
    ("booking_periods", "booking periods of the costs"),
    ("booking_periods_refused", "booking periods of the costs (proration refused)"),
    ("fallback_method", "fallback method"),
    ("sample_size", "sample size"),
    ("mix_coverage", "coverage of the equipment and product mix"),
    ("price_index", "price index"),
    ("computable", "computability"),
    ("adjustment", "non-routine adjustment"),
)}


#: A failed check in a list of flags: its name, and in English its code too (the code is what programs read).
CHECK_NAMED = define("verify.check_named", "%(name)s (%(code)s)")


def check_name(code: str, lang: str = "zh") -> Message | str:
    """The check ``code`` (a result flag, ``verify.check.extrapolation``) by its name, as a message (in English
    with the code beside it, as English texts have always shown it); an unknown code as it is."""
    kind = CHECK_NAMES.get(code)
    if kind is None:
        return code
    return kind() if lang == "zh" else CHECK_NAMED(name=kind(), code=code)


#: The model's variables by name (a model term is a column name: ``scheduled_hours``, ``run:<equipment>``).
TERMS = {t: define(f"verify.term.{t}", name) for t, name in (
    ("volume", "output"),
    ("output", "good output"),
    ("scheduled_hours", "scheduled hours"),
    ("operating_hours", "operating hours"),
    ("run_hours", "run hours"),
    ("hdd", "heating degree days"),
    ("cdd", "cooling degree days"),
    ("temperature_c", "outdoor temperature"),
    ("energy_kgce", "energy consumption (kgce)"),
    ("energy_kwh", "energy consumption (kWh)"),
)}
RUN_HOURS = define("verify.term.run_hours_of", "run hours of %(equipment)s")


def term(t: str) -> Message | str:
    """A model variable (or the modelled quantity) by its name; a categorical level (``weekday=2``) or an
    unknown column as it is."""
    if t.startswith("run:"):
        return RUN_HOURS(equipment=t[4:])
    kind = TERMS.get(t)
    return kind() if kind is not None else t


def word(w: str) -> Message | str:
    """The message of a word of :data:`WORDS` (``w`` itself if it is none)."""
    kind = WORDS.get(w)
    return kind() if kind is not None else w


def fmt_pct(x: float | None) -> str:
    """A fraction as a percent text for a message parameter (``0.123`` -> ``"12.3%"``, as both languages write it
    in running text)."""
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.1f}%"


def fmt(x: float | None, digits: int = 4) -> str:
    """``digits`` significant figures, without an exponent for ordinary magnitudes (19010, not 1.901e+04)."""
    if x is None or not np.isfinite(x):
        return "n/a"
    text = f"{x:.{digits}g}"
    if "e" in text and 1e-4 <= abs(x) < 1e15:
        text = f"{float(text):f}".rstrip("0").rstrip(".")
    return text


def result_checks(value: float | None, low: float | None, high: float | None, adjusted: float | None,
                  direction: str) -> list[Check]:
    """The checks every result gets: adjusted baseline positive, improvement inside (-1, 1) for a reduction
    indicator, an interval that is an interval around the estimate."""
    out = []
    if adjusted is not None:
        ok = bool(np.isfinite(adjusted) and adjusted > 0)
        out.append(Check(ok, ADJ_POSITIVE(value=fmt(adjusted))))
    if direction == "down" and value is not None:
        ok = bool(np.isfinite(value) and -1 < value < 1)
        out.append(Check(ok, IMPROVEMENT_RANGE(value=fmt_pct(value))))
    ok = (value is not None and low is not None and high is not None and np.isfinite(value)
          and np.isfinite(low) and np.isfinite(high) and low <= value <= high)
    out.append(Check(bool(ok), INTERVAL(low=fmt_pct(low), high=fmt_pct(high), value=fmt_pct(value))))
    return out
