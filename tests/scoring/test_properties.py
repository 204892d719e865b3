"""Property: the batch path and the single-case path give identical rows (numbers and
explanation) for arbitrary cases, groups, hospitals and policy variants."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import builders as b
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.profiles import examples

D = Decimal
LEVELS = ("tertiary", "secondary", "primary", "unrated")
VARIANTS = [
    {},
    {
        "scoring": {
            "high_formula": "coefficient_folded",
            "extreme": {"multiple": 4, "action": "cap"},
        }
    },
    {"scoring": {"reference_mean": "regional", "score_decimals": 2, "high_excess_share": D("0.7")}},
    {
        "scoring": {
            "reference_mean": "score_times_factor",
            "yuan_per_point": {"employee": D("97.3"), "resident": 80},
            "low_formula": "base",
            "reviewed_score_is": "case_score",
        }
    },
    {  # the whole "coefficient folded" family, inclusive thresholds, rounding once
        "scoring": {
            "high_formula": "coefficient_folded",
            "low_applies_hospital_coefficient": False,
            "extreme": {"multiple": 4, "action": "provisional_base", "inclusive": True},
            "deviation_bands": [
                {
                    "score_max": 100,
                    "high_multiple": 3,
                    "low_multiple": D("0.5"),
                    "high_inclusive": True,
                    "low_inclusive": True,
                },
                {"score_min": 100, "high_multiple": 2, "low_multiple": D("0.4")},
            ],
            "score_decimals": 2,
            "round_case_score_before_coefficient": False,
        }
    },
    {"scoring": {"ratio_decimals": 2, "score_decimals": 2, "reference_mean": "regional"}},
]

_TCM_ENTRY = {
    "code": "TCM-S52",
    "name": "桡骨下端骨折中医正骨",
    "diagnosis_prefixes": ["S52.5"],
    "treatment_codes": ["93.53"],
    "valid_from": dt.date(2026, 3, 1),
    "valid_to": dt.date(2026, 10, 31),
}
_NEW_TECH = [
    {
        "code": "00.9401",
        "name": "新技术甲",
        "valid_from": dt.date(2026, 2, 1),
        "valid_to": dt.date(2026, 12, 31),
        "mode": "added_score",
        "added_score": D("12.5"),
    },
    {
        "code": "00.9501",
        "name": "新技术乙",
        "valid_from": dt.date(2026, 1, 1),
        "valid_to": dt.date(2026, 6, 30),
        "mode": "by_item",
    },
]
#: Special payment rules (中医优势病种 in each mode, 新技术新项目), merged into a variant.
SPECIAL = [
    {},
    {
        "tcm_advantage": {"groups": [{**_TCM_ENTRY, "western_group": "G0"}]},
        "new_technologies": _NEW_TECH,
    },
    {"tcm_advantage": {"mode": "added_score", "added_score": 7, "groups": [_TCM_ENTRY]}},
    {  # 中西医同病同价 whose western group is not in the directory: the case's own score
        "tcm_advantage": {
            "western_group_missing": "own_score",
            "groups": [{**_TCM_ENTRY, "western_group": "G-NONE"}],
        },
    },
    {
        "tcm_advantage": {
            "mode": "coefficient",
            "coefficient": D("1.1234"),
            "groups": [_TCM_ENTRY],
        },
        "new_technologies": _NEW_TECH,
    },
]
DIAGNOSES = ["S52.501", "S52.600", "K35.800"]
PROCEDURES = [None, "93.5301", "00.9401", "00.9501", "79.0201"]

#: low 0.4 and 0.5, high 2 and 3 (score bands), extreme 4 (variants) and 5
EDGE_MULTIPLES = [D("0.4"), D("0.5"), D(2), D(3), D(4), D(5)]
group_kinds = st.sampled_from(["core", "core", "comprehensive", "basic", "bed_day", "fallback"])


@st.composite
def scenario(draw):
    n_groups = draw(st.integers(1, 4))
    groups, kinds = [], []
    for i in range(n_groups):
        kind = draw(group_kinds)
        score = draw(
            st.one_of(
                st.sampled_from([D("99.9999"), D(100)]),
                st.integers(1, 5_000_000).map(lambda u: D(u).scaleb(-4)),
            )
        )
        mean = draw(st.integers(1, 50_000_000))
        levels = {
            f"mean_cost_{lv}_fen": draw(st.none() | st.integers(1, 50_000_000)) for lv in LEVELS
        }
        groups.append(
            b.group(
                f"G{i}",
                group_type="special"
                if kind == "bed_day"
                else "core"
                if kind == "fallback"
                else kind,
                score=score,
                mean_cost_fen=mean,
                score_per_day=D(draw(st.integers(1, 200_000))).scaleb(-4)
                if kind == "bed_day"
                else None,
                **levels,
            )
        )
        kinds.append(kind)
    hospitals = [
        b.hospital(
            f"H00{i}",
            draw(st.sampled_from(LEVELS)),
            bonus_coefficient=draw(st.none() | st.integers(0, 500).map(lambda x: D(x).scaleb(-4))),
        )
        for i in range(1, 4)
    ]
    cases, grouped, reviews = [], [], []
    for j in range(draw(st.integers(1, 25))):
        gi = draw(st.integers(0, n_groups - 1))
        kind = kinds[gi]
        cid = f"C{j:03d}"
        # half of the costs sit on a threshold multiple of one of the group's means, ± 1 fen
        means = [v for k, v in groups[gi].items() if k.startswith("mean_cost") and v]
        if draw(st.booleans()):
            at = draw(st.sampled_from(means)) * draw(st.sampled_from(EDGE_MULTIPLES))
            cost = max(0, int(at) + draw(st.sampled_from([-1, 0, 1])))
        else:
            cost = draw(st.integers(0, 200_000_000))
        cases.append(
            b.case(
                cid,
                hospital_id=draw(st.sampled_from([h["hospital_id"] for h in hospitals])),
                insurance_type=draw(st.sampled_from(["employee", "resident"])),
                total_cost=cost,
                personal_copay=draw(st.integers(0, 1_000_000)),
                personal_selfpay=draw(st.integers(0, 1_000_000)),
                los_days=draw(st.integers(1, 90)),
                discharge_date=dt.date(2026, draw(st.integers(1, 12)), 15),
                main_diagnosis=draw(st.sampled_from(DIAGNOSES)),
                main_procedure=draw(st.sampled_from(PROCEDURES)),
                other_procedures=[p for p in [draw(st.sampled_from(PROCEDURES))] if p],
            )
        )
        if kind == "fallback":
            grouped.append(
                b.grouped(
                    cid,
                    group_code="BLANK",
                    group_type="fallback",
                    base_score=None,
                    aux_coefficient=None,
                )
            )
        else:
            grouped.append(
                b.grouped(
                    cid,
                    group_code=f"G{gi}",
                    group_type="special" if kind == "bed_day" else kind,
                    base_score=groups[gi]["score"],
                    aux_coefficient=D(draw(st.integers(8000, 13000))).scaleb(-4),
                )
            )
        if kind != "fallback" and draw(st.integers(0, 9)) == 0:
            accept = draw(st.booleans())
            reviews.append(
                {
                    "case_id": cid,
                    "decision": "accept" if accept else "reject",
                    "reviewed_score": D(draw(st.integers(0, 9_999_999))).scaleb(-2)
                    if accept
                    else None,
                }
            )
    variant = draw(st.sampled_from(VARIANTS))
    special = draw(st.sampled_from(SPECIAL))
    variant = b.merge(variant, {"scoring": special}) if special else variant
    pv = {
        "employee": D(draw(st.integers(1, 500_000_000))).scaleb(-6),
        "resident": D(draw(st.integers(1, 500_000_000))).scaleb(-6),
    }
    return groups, hospitals, cases, grouped, reviews, variant, pv


@settings(
    # a whole batch run per example: 10 locally, 100 in CI (tests/profiles.py)
    max_examples=examples(dev=10, ci=100),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    # each example is a whole batch run: generate, do not spend minutes shrinking
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(scenario())
def test_batch_equals_single(con, data):
    groups, hospitals, cases, grouped, reviews, variant, pv = data
    pf = b.policy(**variant)
    # score_both asserts that every single-case row equals its batch row.
    rows = b.score_both(
        con, cases, grouped, groups, hospitals, pf, reviews=reviews or None, point_values=pv
    )
    by_item = [
        c
        for c in cases
        if "new_technologies" in variant.get("scoring", {})
        and "00.9501" in [c["main_procedure"], *c["other_procedures"]]
        and c["discharge_date"] <= dt.date(2026, 6, 30)
    ]
    assert len(rows) == len(cases) - len(by_item)
    for r in rows.values():
        assert r["settled_score"] >= 0
        assert r["dip_amount_fen"] >= 0
        assert r["fund_payable_fen"] == r["dip_amount_fen"] - r["personal_share_fen"]
