"""Property: for random batches (broken cases included) the single-case findings of every
row are exactly the batch findings of that row."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opendip.qc import load_rule_set
from tests.profiles import examples
from tests.qc.conftest import clean_case, rules_from

# Values at and one step past every limit of the default rules and the test policy
# (run_date 2026-12-31, max_age_years 120, newborn_age_days 28, weights 200–20000 g,
# max_los_days 365, max_total_cost_yuan 5000000, clean case admitted 03-01, out 03-06, 5 days),
# drawn half of the time; the other half is anywhere in a wide range.
EDGE_DATES = st.sampled_from(
    [dt.date(2026, 2, 28), dt.date(2026, 3, 1), dt.date(2026, 3, 2), dt.date(2026, 3, 6),
     dt.date(2026, 3, 7), dt.date(2026, 12, 31), dt.date(2027, 1, 1)]
)  # fmt: skip
DATES = st.one_of(EDGE_DATES, st.dates(dt.date(2025, 12, 1), dt.date(2027, 2, 1)))


def edged(edges: list[int], lo: int, hi: int) -> st.SearchStrategy:
    return st.one_of(st.none(), st.sampled_from(edges), st.integers(lo, hi))


MONEY = edged([-1, 0, 1, 99_999, 100_000, 100_001, 500_000_000, 500_000_001], -20_000, 200_000)
DX = st.sampled_from(
    ["K35.800", "I10.x00", "E11.900", "R50.900", "V89.200", "D25.900", "N40.x00", "P07.300",
     "O80.000", "Z99.999", "", " "]
)  # fmt: skip
OP = st.sampled_from(["47.0100", "88.0100", "68.4900", "60.2900", "99.9999"])
TEXT = st.one_of(st.none(), st.sampled_from(["", " ", "1", "2", "3", "4", "5", "7", "9", "x"]))

MUTATIONS = {
    "case_id": st.one_of(st.none(), st.sampled_from(["A", "B", "C", "D"])),
    "sex": TEXT,
    "age": edged([-1, 0, 11, 12, 120, 121], -1, 130),
    "age_days": edged([-1, 0, 27, 28, 29, 365, 366], -1, 400),
    "newborn_birth_weight_g": edged([199, 200, 20_000, 20_001], 100, 30_000),
    "newborn_admit_weight_g": edged([199, 200, 20_000, 20_001], 100, 30_000),
    "birth_date": st.one_of(st.none(), DATES),
    "admit_date": st.one_of(st.none(), DATES),
    "discharge_date": st.one_of(st.none(), DATES),
    "main_procedure_date": st.one_of(st.none(), DATES),
    "los_days": edged([0, 1, 4, 5, 6, 365, 366], -2, 400),
    "icu_days": edged([-1, 0, 4, 5, 6], 0, 10),
    "admission_route": TEXT,
    "discharge_method": TEXT,
    "insurance_type": st.one_of(TEXT, st.sampled_from(["employee", "resident"])),
    "department": st.one_of(st.none(), st.sampled_from(["", "  ", "内科"])),
    "main_diagnosis": st.one_of(st.none(), DX),
    "other_diagnoses": st.one_of(st.none(), st.lists(st.one_of(st.none(), DX), max_size=4)),
    "main_procedure": st.one_of(st.none(), OP),
    "other_procedures": st.one_of(st.none(), st.lists(OP, max_size=3)),
    "total_cost": MONEY,
    "fee_bed": MONEY,
    "fee_other": MONEY,
    "fund_paid": MONEY,
    "personal_copay": edged([24_999, 25_000, 25_001], 0, 50_000),
    "personal_selfpay": MONEY,
    "out_of_list_cost": edged([4_999, 5_000, 5_001], -1, 10_000),
    "settle_month": st.sampled_from(["2026-03", "2026-3", "2026-13", ""]),
}


@st.composite
def case(draw):
    keys = draw(st.lists(st.sampled_from(sorted(MUTATIONS)), max_size=6, unique=True))
    return clean_case(**{k: draw(MUTATIONS[k]) for k in keys})


DEFAULT_RULES = load_rule_set()
# one batch query per example: 8 locally, hundreds in CI (tests/profiles.py)
SETTINGS = settings(
    max_examples=examples(dev=8, ci=300),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@SETTINGS
@given(st.lists(case(), min_size=1, max_size=12))
def test_default_rules_single_equals_batch(runner, cases):
    runner.both(cases, DEFAULT_RULES)


CONDITION_RULES = rules_from(
    {
        "id": "QC-P-001", "name": "前缀与非", "level": "info", "field": "main_diagnosis",
        "message": "{value} {other_diagnoses} {total_cost} {admit_date} {age}",
        "check": {"type": "conditional",
                  "if": {"any_prefix": {"fields": ["main_diagnosis", "other_diagnoses"], "prefixes": ["P", "O8"]}},
                  "then": {"not": {"in_set": {"field": "sex", "values": ["1"]}}}},
    },
    {
        "id": "QC-P-002", "name": "全部与为空", "level": "warning", "field": "los_days",
        "message": "{value} {left} {right}",
        "check": {"type": "compare", "left": "los_days", "op": "<=",
                  "right": {"days_between": ["birth_date", "discharge_date"]}},
        "when": {"all": [{"is_null": ["icu_days"]}, {"not_empty": "other_procedures"}]},
    },
    {
        "id": "QC-P-003", "name": "金额比较", "level": "error", "field": "fund_paid",
        "message": "{value} {left} {right}",
        "check": {"type": "compare", "left": "fund_paid", "op": "<", "right": {"value": 900}},
    },
)  # fmt: skip


@SETTINGS
@given(st.lists(case(), min_size=1, max_size=12))
def test_condition_primitives_single_equals_batch(runner, cases):
    runner.both(cases, CONDITION_RULES)
