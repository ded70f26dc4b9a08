"""Energy: unit conversion, standard-coal equivalents, and consumption from cumulative registers.

Comprehensive energy consumption (ISO 22400-2 KPI 23) is E = sum_i M_i R_i, with M_i the consumption of
carrier i and R_i its conversion factor to a common unit. In China that unit is kilograms of standard coal
equivalent (kgce); the defaults below are the GB/T 2589 reference values listed in
reference/transformation.md and can be overridden per call (a plant may use its own measured values).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

#: (carrier, unit) -> factor to the carrier's base unit (electricity kWh, natural gas m3, solids and liquids
#: kg, heat and steam MJ, water m3).
UNIT_TO_BASE: dict[tuple[str, str], float] = {
    ("electricity", "kWh"): 1.0,
    ("electricity", "Wh"): 1e-3,
    ("electricity", "MWh"): 1e3,
    ("natural_gas", "m3"): 1.0,
    ("natural_gas", "Nm3"): 1.0,
    ("raw_coal", "kg"): 1.0,
    ("raw_coal", "t"): 1e3,
    ("diesel", "kg"): 1.0,
    ("diesel", "t"): 1e3,
    ("gasoline", "kg"): 1.0,
    ("gasoline", "t"): 1e3,
    ("heat", "MJ"): 1.0,
    ("heat", "GJ"): 1e3,
    ("heat", "kWh"): 3.6,
    ("steam", "MJ"): 1.0,
    ("steam", "GJ"): 1e3,
    ("water", "m3"): 1.0,
    ("water", "t"): 1.0,
}

#: kgce per base unit of each carrier (GB/T 2589 reference values, see reference/transformation.md).
#: Electricity uses the equivalent value 0.1229 kgce/kWh; natural gas the typical 1.2143 kgce/m3.
#: Water is metered but is not an energy carrier here: it has no factor and is left out of kgce.
DEFAULT_KGCE: dict[str, float] = {
    "electricity": 0.1229,
    "natural_gas": 1.2143,
    "raw_coal": 0.7143,
    "diesel": 1.4571,
    "gasoline": 1.4714,
    "heat": 0.03412,
    "steam": 0.03412,
}

#: A positive register step above this multiple of the meter's median step is an implausible jump (a meter
#: swap, a wrong reading): it is flagged and not booked.
JUMP_FACTOR = 50.0


def _cases(pairs: Iterable[tuple[str, float]], key_sql: str) -> str:
    parts = " ".join(f"WHEN {k} THEN {v!r}" for k, v in pairs)
    return f"CASE {key_sql} {parts} ELSE NULL END"


def energy_intervals_sql(kgce: Mapping[str, float] | None = None, source: str = "energy") -> str:
    """SQL (DuckDB) of all energy consumption as intervals, in base units, kWh and kgce.

    Interval readings are taken as they are. Cumulative register readings become the interval from the
    previous reading of the same meter and carrier to this one, with the difference of the readings as
    quantity: the first reading books nothing; a decrease is a counter rollover when the previous value is
    above 90 % of the next power of ten (the register's full scale), else a reset to zero (the new reading is
    the consumption since the reset); a step above ``JUMP_FACTOR`` times the meter's median step is not booked.
    Each such event is flagged in column ``flag``.

    Parameters
    ----------
    kgce : mapping of str to float, optional
        kgce per base unit per carrier; defaults to :data:`DEFAULT_KGCE`.
    source : str
        The energy records read (a table or a parenthesised query): all of them by default; a part must hold a
        cumulative register's readings all or none (register steps and the median step are per meter).

    Returns
    -------
    str
        A query with columns meter_id, equipment_id, scope, carrier, start, end (TIMESTAMPTZ), quantity
        [base unit], kwh [kWh, electricity only, else 0], kgce [kgce, null for carriers without factor] and flag
        (null, 'counter_rollover', 'counter_reset' or 'register_jump').
    """
    factors = {**DEFAULT_KGCE, **(kgce or {})}
    to_base = _cases([(f"'{c}|{u}'", f) for (c, u), f in UNIT_TO_BASE.items()], "carrier || '|' || unit")
    to_kgce = _cases([(f"'{c}'", f) for c, f in factors.items()], "carrier")
    return f"""
    WITH base AS (
        SELECT meter_id, equipment_id, scope, carrier, start, "end", quantity * {to_base} AS q,
               coalesce(reading, 'interval') AS reading
        FROM {source} _zz_energy
    ), cum AS (
        SELECT *, lag("end") OVER w AS prev_end, lag(q) OVER w AS prev_q
        FROM base WHERE reading = 'cumulative'
        WINDOW w AS (PARTITION BY meter_id, carrier ORDER BY "end")
    ), steps AS (
        SELECT *, CASE WHEN q >= prev_q THEN q - prev_q
                       WHEN prev_q >= 0.9 * pow(10, ceil(log10(greatest(prev_q, 1)))) THEN
                            pow(10, ceil(log10(greatest(prev_q, 1)))) - prev_q + q
                       ELSE q END AS dq,
                  CASE WHEN q >= prev_q THEN NULL
                       WHEN prev_q >= 0.9 * pow(10, ceil(log10(greatest(prev_q, 1)))) THEN 'counter_rollover'
                       ELSE 'counter_reset' END AS flag0
        FROM cum WHERE prev_end IS NOT NULL
    ), med AS (
        SELECT meter_id, carrier, median(dq) FILTER (WHERE dq > 0) AS m FROM steps GROUP BY ALL
    ), booked AS (
        SELECT s.meter_id, s.equipment_id, s.scope, s.carrier, s.prev_end AS start, s."end",
               CASE WHEN s.flag0 IS NULL AND m.m > 0 AND s.dq > {JUMP_FACTOR} * m.m THEN NULL ELSE s.dq END AS q,
               CASE WHEN s.flag0 IS NULL AND m.m > 0 AND s.dq > {JUMP_FACTOR} * m.m THEN 'register_jump'
                    ELSE s.flag0 END AS flag
        FROM steps s LEFT JOIN med m USING (meter_id, carrier)
        UNION ALL
        SELECT meter_id, equipment_id, scope, carrier, start, "end", q, NULL FROM base WHERE reading = 'interval'
    )
    SELECT meter_id, equipment_id, scope, carrier, start, "end", q AS quantity,
           CASE WHEN carrier = 'electricity' THEN coalesce(q, 0) ELSE 0 END AS kwh,
           q * {to_kgce} AS kgce, flag
    FROM booked"""
