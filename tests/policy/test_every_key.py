"""No policy key is accepted and then ignored.

The test walks every section of the policy model and lists every key a policy file can write
(`settlement.ffs_bands[].share`, `settlement.budget.<pool>.fund_budget_yuan` …). Then:

1. every key of every section is read by the code outside the policy package (the AST of
   `src/opendip` names it as an attribute or a string): a key nobody reads is a key accepted
   and ignored;
2. every key of `settlement`, and the `scoring` keys listed in SCORING_PROBES, is changed in a
   small region that exercises it (two pools, a 医共体, high/low/extreme/fallback/basic cases,
   a special review, a by-item case, assessment scores) and the annual clearing's outputs
   (point values, hospital lines, units, pools, case scores) must change; a key whose only
   other values are refused (`rounding`) must be refused;
3. where a key cannot apply to the rule it sits in it is refused with its key path
   (tests/policy/test_key_applies.py).

A new settlement key needs a probe here (part 2 fails naming it); a new key in another
section needs only to be read by the code (part 1), and a probe when it is money.
"""

from __future__ import annotations

import ast
import datetime as dt
import itertools
import re
import sys
import types
import typing
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).parents[1] / "scoring"))

import builders as b

from opendip.policy.model import Policy

SRC = Path(__file__).parents[2] / "src" / "opendip"


# ---------------------------------------------------------------------------------------------
# The keys of the policy model


def _models(annotation: Any) -> list[tuple[str, type[BaseModel]]]:
    """(path suffix, model) for the models an annotation holds: "" direct, "[]" list items,
    ".<key>" dict values."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _models(args[0])
    if origin in (typing.Union, types.UnionType):
        return [m for a in args if a is not type(None) for m in _models(a)]
    if origin is list:
        return [("[]" + s, m) for s, m in _models(args[0])]
    if origin is dict:
        return [(".<key>" + s, m) for s, m in _models(args[1])]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [("", annotation)]
    return []


def leaf_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, info in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        nested = _models(info.annotation)
        if not nested:
            out.append(path)
        for suffix, sub in nested:
            out.extend(leaf_keys(sub, path + suffix))
    return out


SECTIONS = {
    name: leaf_keys(sub, name)
    for name, info in Policy.model_fields.items()
    for _, sub in _models(info.annotation)
}


def test_the_walk_sees_every_section() -> None:
    assert {"qc", "directory", "grouping", "scoring", "settlement", "supervision"} <= set(SECTIONS)
    assert "settlement.ffs_bands[].cap_share" in SECTIONS["settlement"]
    assert "settlement.budget.<key>.fund_budget_yuan" in SECTIONS["settlement"]
    assert {"qc.front_page_rule_set", "qc.front_page_submit_days"} <= set(SECTIONS["qc"])


# ---------------------------------------------------------------------------------------------
# 1. Every key is read by the code


def _names_read() -> set[str]:
    """Attribute names and strings of the code, and the words of the packaged rule sets
    (QC rules read their limits as `{param: name}`), policy package and policy files aside."""
    names: set[str] = set()
    for path in SRC.rglob("*.py"):
        if (SRC / "policy") in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Attribute):
                names.add(node.attr)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names.add(node.value)
    for path in (SRC / "data").rglob("*.yaml"):
        if (SRC / "data" / "policies") not in path.parents:
            names.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", path.read_text("utf-8")))
    return names


ALL_KEYS = sorted(k for keys in SECTIONS.values() for k in keys)


@pytest.fixture(scope="module")
def names_read() -> set[str]:
    return _names_read()


def test_every_key_of_every_section_is_read_by_the_code(names_read: set[str]) -> None:
    unread = [k for k in ALL_KEYS if k.rsplit(".", 1)[-1].split("[")[0] not in names_read]
    assert unread == [], f"policy keys no code reads (accepted and ignored): {unread}"


# ---------------------------------------------------------------------------------------------
# 2. Each key changes an output (settlement all keys; scoring the listed keys)

HOSPITALS = [
    b.hospital("H001", "tertiary", community_id="CM1"),  # 国家级重点专科 bonus in the policy
    b.hospital("H2", "secondary", community_id="CM1"),
    b.hospital("H3", "tertiary"),
]


def _case(cid: str, hid: str, month: int, cost: int, fund: int, copay: int, **kw: Any) -> dict:
    return b.case(
        cid,
        hospital_id=hid,
        total_cost=cost * 100,
        fund_paid=fund * 100,
        personal_copay=copay * 100,
        personal_selfpay=(cost - fund - copay) * 100,
        settle_month=f"2026-{month:02d}",
        discharge_date=dt.date(2026, month, 10),
        **kw,
    )


CASES = [
    _case("E1", "H001", 3, 12000, 9000, 2000),  # normal, coefficient 1.02
    _case("E2", "H001", 8, 25000, 20000, 5000),  # high: 2.5 × mean
    # secondary mean 8,000: 2.25 × (regional 1.8); uses new technology 00.9401
    _case("E3", "H2", 3, 18000, 16000, 2000, other_procedures=["00.9401"]),
    _case("E4", "H2", 8, 3000, 2500, 500),  # low: 0.375 × → 37.5 points
    _case("E5", "H3", 5, 60000, 50000, 10000),  # extreme: 6 × mean
    _case("E6", "H2", 6, 9000, 8000, 1000),  # special review accepted, 150 points
    # normal, small fund share; 中医正骨 93.5301 for S52.5 (TCM advantage group)
    _case("E7", "H3", 4, 9500, 5000, 4500, main_diagnosis="S52.501", main_procedure="93.5301"),
    _case("E8", "H3", 10, 45000, 40000, 5000),  # 4.5 × mean: high (extreme above 5 ×)
    _case("R1", "H001", 4, 10000, 6000, 4000, insurance_type="resident"),
    _case("R2", "H3", 9, 20000, 18000, 2000, insurance_type="resident"),
    _case("F1", "H2", 3, 12000, 10000, 2000),  # blank (fallback) group
    _case("J1", "H2", 7, 3000, 2000, 1000, insurance_type="resident"),  # basic group
    _case("U1", "H3", 3, 5000, 4000, 1000),  # unmatched: paid by item
]
GROUPED = [
    *(b.grouped(c) for c in ("E1", "E2", "E3", "E4", "E5", "E6", "E7", "E8", "R1", "R2")),
    b.grouped("F1", "BLANK", group_type="fallback", base_score=None),
    b.grouped("J1", "基层:J18.9", group_type="basic", base_score=Decimal(50)),
    b.grouped("U1", None, group_type="unmatched", base_score=None, match_step="unmatched"),
]
DIRECTORY = [
    b.group("G1"),
    b.group("G-OP", score=Decimal(180)),  # western surgical group of TCM-S52
    b.group(
        "基层:J18.9",
        group_type="basic",
        score=Decimal(50),
        mean_cost_fen=300_000,
        mean_cost_tertiary_fen=300_000,
        mean_cost_secondary_fen=300_000,
        mean_cost_primary_fen=300_000,
    ),
]
REVIEWS = [{"case_id": "E6", "decision": "通过", "reviewed_score": Decimal(150)}]
ASSESSMENT = pa.table({"hospital_id": ["H001", "H2", "H3"], "assessment_score": [95, 85, 50]})

BASE = {
    "scoring": {"special_review_max_share": 1},
    "settlement": {
        # sized to the cases: some units in surplus, some in loss
        "budget": {
            "employee": {"fund_budget_yuan": 175000, "budget_point_value": 100},
            "resident": {"fund_budget_yuan": 28300, "budget_point_value": 80},
        },
        "ffs_bands": [
            {"ratio_min": 1, "rule": "keep_surplus", "share": 0.8, "cap_share": 0.02},
            {"ratio_min": 0.85, "ratio_max": 1, "rule": "pay_dip"},
            {"ratio_max": 0.85, "rule": "share_loss", "share": 0.5},
        ],
    },
}
OVER_RATIO = {
    "settlement": {
        "point_value_formula": "fund_over_ratio",
        "budget": {
            "employee": {"reimbursement_ratio": Decimal("0.8")},
            "resident": {"reimbursement_ratio": Decimal("0.6")},
        },
    }
}
TIMES_FACTOR = {
    "scoring": {
        "reference_mean": "score_times_factor",
        "yuan_per_point": {"employee": 100, "resident": 90},
    }
}


def _band(i: int, **kw: Any) -> dict:
    bands = [dict(x) for x in BASE["settlement"]["ffs_bands"]]
    bands[i].update(kw)
    return {"settlement": {"ffs_bands": bands}}


#: A probe's baseline run without the assessment file (keys for that case).
NO_ASSESSMENT = "_no_assessment_file"
DEFAULT_SCORE = {
    NO_ASSESSMENT: True,
    "settlement": {"deposit_without_assessment": "default_score", "default_assessment_score": 95},
}

BOUNDARY_MOVED = {
    "settlement": {
        "ffs_bands": [
            {"ratio_min": 1, "rule": "keep_surplus", "share": 0.8, "cap_share": 0.02},
            {"ratio_min": Decimal("0.6"), "ratio_max": 1, "rule": "pay_dip"},
            {"ratio_max": Decimal("0.6"), "rule": "share_loss", "share": 0.5},
        ]
    }
}

#: key path → (overrides of the probe's baseline, overrides that change only that key).
SETTLEMENT_PROBES: dict[str, tuple[dict, dict]] = {
    "settlement.budget.<key>.fund_budget_yuan": (
        {},
        {"settlement": {"budget": {"employee": {"fund_budget_yuan": 900000}}}},
    ),
    "settlement.budget.<key>.budget_point_value": (
        {},
        {"settlement": {"budget": {"employee": {"budget_point_value": 90}}}},
    ),
    "settlement.budget.<key>.reimbursement_ratio": (
        OVER_RATIO,
        {"settlement": {"budget": {"employee": {"reimbursement_ratio": Decimal("0.7")}}}},
    ),
    "settlement.reserve_share": ({}, {"settlement": {"reserve_share": Decimal("0.1")}}),
    "settlement.point_value_formula": ({}, {"settlement": {"point_value_formula": "fund_only"}}),
    "settlement.point_value_decimals": ({}, {"settlement": {"point_value_decimals": 2}}),
    "settlement.withholding_share": ({}, {"settlement": {"withholding_share": Decimal("0.1")}}),
    "settlement.assessment_bands[].min_score": (
        {},
        {
            "settlement": {
                "assessment_bands": [
                    {"min_score": 90, "return_share": 1},
                    {"min_score": 86, "return_share": Decimal("0.8")},
                    {"min_score": 0, "return_share": 0},
                ]
            }
        },
    ),
    "settlement.assessment_bands[].return_share": (
        {},
        {
            "settlement": {
                "assessment_bands": [
                    {"min_score": 90, "return_share": 1},
                    {"min_score": 80, "return_share": Decimal("0.5")},
                    {"min_score": 0, "return_share": 0},
                ]
            }
        },
    ),
    # Bands tile the ratio line (overlaps refused; a unit in a gap refused): a bound moves
    # with its neighbour's, so both probes move the shared boundary 0.85 → 0.6.
    "settlement.ffs_bands[].ratio_min": ({}, BOUNDARY_MOVED),
    "settlement.ffs_bands[].ratio_max": ({}, BOUNDARY_MOVED),
    "settlement.ffs_bands[].rule": ({}, _band(2, rule="keep_surplus")),
    "settlement.ffs_bands[].share": ({}, _band(0, share=Decimal("0.5"))),
    "settlement.ffs_bands[].cap_share": ({}, _band(0, cap_share=Decimal("0.01"))),
    "settlement.ffs_basis": ({}, {"settlement": {"ffs_basis": "total"}}),
    "settlement.surplus_clawback_to": ({}, {"settlement": {"surplus_clawback_to": "reserve"}}),
    "settlement.deducted_deposit_to": ({}, {"settlement": {"deducted_deposit_to": "reserve"}}),
    "settlement.community_netting": ({}, {"settlement": {"community_netting": True}}),
    "settlement.deposit_without_assessment": (
        {NO_ASSESSMENT: True},
        {"settlement": {"deposit_without_assessment": "return_all"}},
    ),
    "settlement.default_assessment_score": (
        DEFAULT_SCORE,
        {"settlement": {"default_assessment_score": 85}},
    ),
    "settlement.deduct_non_dip_ffs": ({}, {"settlement": {"deduct_non_dip_ffs": False}}),
}
#: Keys with a single legal value: any other value is refused (so none can be ignored).
SETTLEMENT_REFUSED: dict[str, dict] = {
    "settlement.rounding": {"settlement": {"rounding": "half_even"}},
}

SCORING_PROBES: dict[str, tuple[dict, dict]] = {
    "scoring.reference_mean": ({}, {"scoring": {"reference_mean": "regional"}}),
    "scoring.yuan_per_point": (
        TIMES_FACTOR,
        {"scoring": {"yuan_per_point": {"employee": 80, "resident": 90}}},
    ),
    "scoring.deviation_bands[].high_multiple": (
        {},
        {
            "scoring": {
                "deviation_bands": [
                    {"score_max": 100, "high_multiple": 3, "low_multiple": Decimal("0.5")},
                    {"score_min": 100, "high_multiple": Decimal("2.6"), "low_multiple": 0.5},
                ]
            }
        },
    ),
    "scoring.deviation_bands[].low_multiple": (
        {},
        {
            "scoring": {
                "deviation_bands": [
                    {"score_max": 100, "high_multiple": 3, "low_multiple": Decimal("0.5")},
                    {"score_min": 100, "high_multiple": 2, "low_multiple": Decimal("0.3")},
                ]
            }
        },
    ),
    "scoring.high_formula": ({}, {"scoring": {"high_formula": "coefficient_folded"}}),
    "scoring.high_excess_share": ({}, {"scoring": {"high_excess_share": Decimal("0.5")}}),
    "scoring.low_formula": ({}, {"scoring": {"low_formula": "base"}}),
    "scoring.extreme.multiple": ({}, {"scoring": {"extreme": {"multiple": 4}}}),
    "scoring.extreme.action": ({}, {"scoring": {"extreme": {"action": "cap"}}}),
    "scoring.fallback_fraction": ({}, {"scoring": {"fallback_fraction": Decimal("0.5")}}),
    "scoring.all_case_mean_yuan": ({}, {"scoring": {"all_case_mean_yuan": 9000}}),
    "scoring.hospital_coefficient.levels": (
        {},
        {
            "scoring": {
                "hospital_coefficient": {
                    "levels": {
                        "tertiary": 1,
                        "secondary": Decimal("0.9"),
                        "primary": Decimal("0.75"),
                        "unrated": Decimal("0.7"),
                    }
                }
            }
        },
    ),
    "scoring.hospital_coefficient.bonuses[].coefficient": (
        {},
        {
            "scoring": {
                "hospital_coefficient": {
                    "bonuses": [{"name": "重点专科", "hospital_ids": ["H001"], "coefficient": 0.05}]
                }
            }
        },
    ),
    "scoring.hospital_coefficient.apply_to_basic_groups": (
        {},
        {"scoring": {"hospital_coefficient": {"apply_to_basic_groups": True}}},
    ),
    "scoring.score_decimals": ({}, {"scoring": {"score_decimals": 0}}),
    "scoring.reviewed_score_is": ({}, {"scoring": {"reviewed_score_is": "case_score"}}),
}


def _tcm(mode: str = "same_as_western", **group: Any) -> dict:
    entry = {
        "code": "TCM-S52",
        "name": "桡骨下端骨折中医正骨",
        "diagnosis_prefixes": ["S52.5"],
        "treatment_codes": ["93.5301"],
        "valid_from": dt.date(2026, 1, 1),
    }
    if mode == "same_as_western":
        entry["western_group"] = "G-OP"
    extra = {"added_score": 10} if mode == "added_score" else {}
    if mode == "coefficient":
        extra = {"coefficient": Decimal("1.2")}
    return {"scoring": {"tcm_advantage": {"mode": mode, **extra, "groups": [{**entry, **group}]}}}


def _new_tech(**kw: Any) -> dict:
    entry = {
        "code": "00.9401",
        "name": "示范新技术",
        "valid_from": dt.date(2026, 1, 1),
        "valid_to": dt.date(2026, 12, 31),
        "mode": "added_score",
        "added_score": 20,
    }
    entry.update(kw)
    return {"scoring": {"new_technologies": [{k: v for k, v in entry.items() if v is not None}]}}


SCORING_PROBES.update(
    {
        "scoring.tcm_advantage.mode": (_tcm(), _tcm("added_score")),
        "scoring.tcm_advantage.added_score": (
            _tcm("added_score"),
            {"scoring": {"tcm_advantage": {"added_score": 30}}},
        ),
        "scoring.tcm_advantage.coefficient": (
            _tcm("coefficient"),
            {"scoring": {"tcm_advantage": {"coefficient": Decimal("1.3")}}},
        ),
        "scoring.tcm_advantage.groups[].western_group": (_tcm(), _tcm(western_group="G1")),
        "scoring.tcm_advantage.groups[].diagnosis_prefixes": (
            _tcm(),
            _tcm(diagnosis_prefixes=["K35"]),
        ),
        "scoring.tcm_advantage.groups[].treatment_codes": (_tcm(), _tcm(treatment_codes=["99.92"])),
        "scoring.tcm_advantage.groups[].valid_from": (
            _tcm(),
            _tcm(valid_from=dt.date(2026, 5, 1)),
        ),
        "scoring.tcm_advantage.groups[].valid_to": (_tcm(), _tcm(valid_to=dt.date(2026, 3, 31))),
        "scoring.new_technologies[].mode": (
            _new_tech(),
            _new_tech(mode="by_item", added_score=None),
        ),
        "scoring.new_technologies[].added_score": (_new_tech(), _new_tech(added_score=30)),
        "scoring.new_technologies[].code": (_new_tech(), _new_tech(code="00.9999")),
        "scoring.new_technologies[].valid_from": (
            _new_tech(),
            _new_tech(valid_from=dt.date(2026, 4, 1)),
        ),
        "scoring.new_technologies[].valid_to": (
            _new_tech(),
            _new_tech(valid_to=dt.date(2026, 2, 28)),
        ),
    }
)


def test_tcm_labels_change_the_explanation(con) -> None:
    """The TCM list's labels (code, name, 中医/民族医) are what the explanation names."""
    from opendip.scoring import score_cases
    from opendip.scoring.explain import render

    def note(**group: Any) -> str:
        r = score_cases(
            con.create_table("lc", b.cases_table(CASES), overwrite=True),
            con.create_table("lg", b.grouped_table(GROUPED), overwrite=True),
            con.create_table("ld", b.directory_table(DIRECTORY), overwrite=True),
            con.create_table("lh", b.hospitals_table(HOSPITALS), overwrite=True),
            b.policy(**b.merge(BASE, _tcm(**group))),
            reviews=b.reviews_table(REVIEWS),
        )
        e7 = r.scored.filter(r.scored.case_id == "E7").to_pyarrow().to_pylist()[0]
        return render(e7)  # the batch keeps the facts; the sentence is rendered from them

    base = note()
    assert base.startswith("中医优势病种TCM-S52（桡骨下端骨折中医正骨，中医治疗93.5301）")
    assert note(medicine="ethnic").startswith("民族医优势病种TCM-S52")
    assert note(code="ZY-1", name="藏医正骨").startswith("中医优势病种ZY-1（藏医正骨")


def test_western_group_missing_own_score_or_refused(con) -> None:
    """same_as_western with the western group absent from the directory: own_score pays E7
    (S52.501 + 93.5301) at its own group's score, exactly as without the TCM list, and says
    why; refuse (the default) stops scoring naming the group."""
    from opendip.scoring import score_cases
    from opendip.scoring.errors import InputDataError
    from opendip.scoring.explain import render

    missing = _tcm(western_group="G-NONE")
    own = b.merge(missing, {"scoring": {"tcm_advantage": {"western_group_missing": "own_score"}}})
    assert _scores(con, own, "wm1") == _scores(con, {}, "wm0")
    r = score_cases(
        con.create_table("wc", b.cases_table(CASES), overwrite=True),
        con.create_table("wg", b.grouped_table(GROUPED), overwrite=True),
        con.create_table("wd", b.directory_table(DIRECTORY), overwrite=True),
        con.create_table("wh", b.hospitals_table(HOSPITALS), overwrite=True),
        b.policy(**b.merge(BASE, own)),
        reviews=b.reviews_table(REVIEWS),
    )
    e7 = r.scored.filter(r.scored.case_id == "E7").to_pyarrow().to_pylist()[0]
    assert e7["tcm_group"] == "TCM-S52"
    assert "但西医手术病种G-NONE不在本期病种目录，按政策以本病种基准分值" in render(e7)
    with pytest.raises(InputDataError, match="西医手术病种"):
        _scores(con, missing, "wm2")
    assert [i.path for i in b.policy(**b.merge(_tcm("added_score"), {"scoring": {
        "tcm_advantage": {"western_group_missing": "own_score"}}})).issues()] == [
        "scoring.tcm_advantage.western_group_missing"
    ]  # fmt: skip


def _clearing(con: Any, overrides: dict, tag: str) -> dict[str, Any]:
    """The annual clearing's outputs, comparable across runs."""
    from opendip.settlement import settle_year
    from opendip.settlement.clearing import Inputs

    overrides = dict(overrides)
    with_assessment = not overrides.pop(NO_ASSESSMENT, False)
    pf = b.policy(**b.merge(BASE, overrides))
    inputs = Inputs(
        con.create_table(f"c_{tag}", b.cases_table(CASES), overwrite=True),
        con.create_table(f"g_{tag}", b.grouped_table(GROUPED), overwrite=True),
        con.create_table(f"d_{tag}", b.directory_table(DIRECTORY), overwrite=True),
        con.create_table(f"h_{tag}", b.hospitals_table(HOSPITALS), overwrite=True),
        pf,
        reviews=b.reviews_table(REVIEWS),
    )
    r = settle_year(inputs, 2026, assessment=ASSESSMENT if with_assessment else None)
    return {
        "point_values": r.point_values,
        "hospitals": r.hospitals.to_pylist(),
        "units": r.communities.to_pylist(),
        "pools": r.pools.to_pylist(),
        "cases": r.cases.select(["case_id", "deviation", "settled_score"]).to_pylist(),
    }


def _scores(con: Any, overrides: dict, tag: str) -> list[dict[str, Any]]:
    """The case scores and amounts at fixed point values (scoring keys need no clearing)."""
    from opendip.scoring import score_cases

    result = score_cases(
        con.create_table(f"sc_{tag}", b.cases_table(CASES), overwrite=True),
        con.create_table(f"sg_{tag}", b.grouped_table(GROUPED), overwrite=True),
        con.create_table(f"sd_{tag}", b.directory_table(DIRECTORY), overwrite=True),
        con.create_table(f"sh_{tag}", b.hospitals_table(HOSPITALS), overwrite=True),
        b.policy(**b.merge(BASE, overrides)),
        reviews=b.reviews_table(REVIEWS),
        point_values={"employee": Decimal(100), "resident": Decimal(90)},
    )
    columns = ["case_id", "deviation", "case_score", "settled_score", "dip_amount_fen"]
    return result.contract().select(*columns).order_by("case_id").to_pyarrow().to_pylist()


_counter = itertools.count()


@pytest.fixture(scope="module")
def clearing(con):
    seen: dict[str, dict[str, Any]] = {}

    def run(overrides: dict) -> dict[str, Any]:
        key = repr(overrides)
        if key not in seen:
            seen[key] = _clearing(con, overrides, f"k{next(_counter)}")
        return seen[key]

    return run


@pytest.fixture(scope="module")
def scores(con):
    seen: dict[str, list[dict[str, Any]]] = {}

    def run(overrides: dict) -> list[dict[str, Any]]:
        key = repr(overrides)
        if key not in seen:
            seen[key] = _scores(con, overrides, f"s{next(_counter)}")
        return seen[key]

    return run


@pytest.fixture(scope="module")
def con():
    from opendip.engine import connect

    return connect()


def test_every_settlement_key_has_a_probe() -> None:
    missing = set(SECTIONS["settlement"]) - set(SETTLEMENT_PROBES) - set(SETTLEMENT_REFUSED)
    assert not missing, f"settlement keys with no probe in this test: {sorted(missing)}"


def test_probes_name_real_keys() -> None:
    assert set(SCORING_PROBES) <= set(SECTIONS["scoring"])
    assert set(SETTLEMENT_PROBES) <= set(SECTIONS["settlement"])


@pytest.mark.parametrize("key", sorted(SETTLEMENT_REFUSED))
def test_single_valued_keys_refuse_any_other_value(key: str) -> None:
    issues = b.policy(**SETTLEMENT_REFUSED[key]).issues()
    assert [i.path for i in issues] == [key.replace("[]", "[0]")]


@pytest.mark.parametrize("key", sorted(SETTLEMENT_PROBES))
def test_each_settlement_key_changes_the_clearing(clearing, key: str) -> None:
    base, change = SETTLEMENT_PROBES[key]
    before = clearing(base)
    after = clearing(b.merge(base, change))
    changed = [part for part in before if before[part] != after[part]]
    assert changed, f"{key}: changing it changed no output of the clearing"


@pytest.mark.parametrize("key", sorted(SCORING_PROBES))
def test_each_scoring_key_changes_the_scores(scores, key: str) -> None:
    base, change = SCORING_PROBES[key]
    assert scores(base) != scores(b.merge(base, change)), f"{key}: no case score changed"


def test_a_unit_in_a_gap_between_bands_is_refused(con) -> None:
    """A bound is never ignored: a unit whose ratio lies between two bands stops the
    clearing naming the key (H001 employee at 0.7664 with no band for [0.7, 1))."""
    from opendip.settlement.errors import MissingParameterError

    gap = {
        "settlement": {
            "ffs_bands": [
                {"ratio_min": 1, "rule": "keep_surplus"},
                {"ratio_max": Decimal("0.7"), "rule": "share_loss", "share": 0.5},
            ]
        }
    }
    with pytest.raises(MissingParameterError, match=r"settlement\.ffs_bands"):
        _clearing(con, gap, "gap")


# ---------------------------------------------------------------------------------------------
# 信用评价: each credit key changes the rating (scores, grades, effects), the repair rule or
# the deposit withheld by grade, on the hand-computed region of tests/credit.


def _items(i: int, **kw: Any) -> dict:
    from tests.credit.region import CREDIT

    items = [dict(x) for x in CREDIT["items"]]
    items[i].update(kw)
    return {"items": items}


def _grades(i: int, **kw: Any) -> dict:
    from tests.credit.region import CREDIT

    grades = [dict(x) for x in CREDIT["grades"]]
    grades[i].update(kw)
    return {"grades": grades}


CREDIT_PROBES: dict[str, dict] = {
    "credit.items[].id": _items(0, id="supervision"),
    "credit.items[].name": _items(0, name="监管疑点"),
    "credit.items[].measure": _items(2, measure="late_uploads"),
    "credit.items[].weight": _items(0, weight=25),
    "credit.items[].per_unit": _items(0, per_unit=2),
    "credit.items[].target": _items(4, target=Decimal("0.95")),
    "credit.items[].zero_at": _items(4, zero_at=Decimal("0.7")),
    "credit.total_points": {"total_points": 1000},
    "credit.decimals": {"decimals": 0},
    "credit.grades[].grade": _grades(0, grade="AA"),
    "credit.grades[].min_score": _grades(0, min_score=99),
    "credit.grades[].name": _grades(0, name="守信"),
    "credit.grades[].inspections_per_year": _grades(0, inspections_per_year=2),
    "credit.grades[].supervision_priority": _grades(0, supervision_priority="normal"),
    "credit.grades[].withholding_share": _grades(0, withholding_share=Decimal("0.04")),
    "credit.grades[].prepayment_eligible": _grades(2, prepayment_eligible=True),
    "credit.upload_deadline_day": {"upload_deadline_day": 12},
    "credit.rate_doctors": {"rate_doctors": False},
    "credit.doctor_min_cases": {"doctor_min_cases": 6},
    "credit.repair_steps": {"repair_steps": 2, "repair_highest_grade": "A"},
    "credit.repair_highest_grade": {"repair_highest_grade": "A"},
    "credit.count_lost_disputes": {"count_lost_disputes": True},
}


def _credit_outputs(con, change: dict) -> dict[str, Any]:
    from opendip.credit.engine import rate, repaired_grade
    from opendip.settlement.clearing import settle_month
    from tests.credit.region import CREDIT, policy, region, settle_inputs

    pf = policy(**{k: v for k, v in change.items()})
    pol = pf.at()
    r = rate(region(con), pol, "2026")
    grades = {
        x["hospital_id"]: x["grade"] for x in r.ratings.to_pylist() if x["subject"] == "hospital"
    }
    month = settle_month(settle_inputs(con, pf, grades), "2026-03").hospitals.to_pylist()
    assert CREDIT  # the probes change one key of this scorecard
    return {
        "ratings": r.ratings.to_pylist(),
        "breakdown": r.breakdown.to_pylist(),
        "uploads": r.uploads.to_pylist(),
        "repairs": [repaired_grade(pol.credit, g.grade) for g in pol.credit.grades],
        "month": month,
    }


def test_every_credit_key_has_a_probe() -> None:
    missing = set(SECTIONS["credit"]) - set(CREDIT_PROBES)
    assert not missing, f"credit keys with no probe in this test: {sorted(missing)}"
    assert set(CREDIT_PROBES) <= set(SECTIONS["credit"])


@pytest.fixture(scope="module")
def credit_base(con):
    return _credit_outputs(con, {})


@pytest.mark.parametrize("key", sorted(CREDIT_PROBES))
def test_each_credit_key_changes_the_rating(con, credit_base, key: str) -> None:
    after = _credit_outputs(con, CREDIT_PROBES[key])
    changed = [part for part in credit_base if credit_base[part] != after[part]]
    assert changed, f"{key}: changing it changed no output of the rating"


# ---------------------------------------------------------------------------------------------
# 预付金: each prepayment key changes the prepayment, its monthly recovery or the clearing, on
# the worked example of tests/credit/test_prepayment.py.

PREPAYMENT_PROBES: dict[str, dict] = {
    "prepayment.months": {"months": 2},
    "prepayment.min_assessment_score": {"min_assessment_score": 90},
    "prepayment.recovery": {
        "recovery": "clearing",
        "recovery_months": None,
        "recovery_start_month": None,
    },
    "prepayment.recovery_months": {"recovery_months": 2},
    "prepayment.recovery_start_month": {"recovery_start_month": 1},
}


def _prepayment_outputs(con, change: dict) -> dict[str, Any]:
    from opendip.settlement.clearing import settle_month, settle_year
    from tests.credit.test_prepayment import _inputs

    inp = _inputs(con, "A", **change)
    return {
        "march": settle_month(inp, "2026-03").hospitals.to_pylist(),
        "year": settle_year(inp, 2026).hospitals.to_pylist(),
    }


def test_every_prepayment_key_has_a_probe() -> None:
    assert set(SECTIONS["prepayment"]) == set(PREPAYMENT_PROBES)


@pytest.mark.parametrize("key", sorted(PREPAYMENT_PROBES))
def test_each_prepayment_key_changes_the_money(con, key: str) -> None:
    before = _prepayment_outputs(con, {})
    after = _prepayment_outputs(con, PREPAYMENT_PROBES[key])
    assert before != after, f"{key}: changing it changed no prepayment output"
