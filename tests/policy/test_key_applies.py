"""A key that does not apply to the rule it sits in is refused with its key path."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "scoring"))

import builders as b

BANDS = [
    {"ratio_min": 1, "rule": "keep_surplus", "cap_share": 0.1},
    {"ratio_min": 0.85, "ratio_max": 1, "rule": "pay_dip"},
    {"ratio_max": 0.85, "rule": "share_loss", "share": 0.5},
]


def issues(**settlement):
    return [(i.path, i.message_zh) for i in b.policy(settlement=settlement).issues()]


def _band(i, **kw):
    bands = [dict(x) for x in BANDS]
    bands[i].update(kw)
    return bands


@pytest.mark.parametrize(
    "bands,path,words",
    [
        (_band(1, share=0.5), "settlement.ffs_bands[1].share", "不适用于 pay_dip"),
        (_band(1, cap_share=0.1), "settlement.ffs_bands[1].cap_share", "不适用于 pay_dip"),
        (_band(2, cap_share=0.1), "settlement.ffs_bands[2].cap_share", "不适用于 share_loss"),
        (
            [BANDS[0], BANDS[1], {"ratio_max": 0.85, "rule": "share_loss"}],
            "settlement.ffs_bands[2].share",
            "须给出分担比例",
        ),
        (
            [BANDS[0], {"ratio_min": 0.8, "ratio_max": 1, "rule": "pay_dip"}, BANDS[2]],
            "settlement.ffs_bands[1]",
            "重叠",
        ),
        (_band(1, ratio_min=1.2), "settlement.ffs_bands[1].ratio_max", "必须大于 ratio_min"),
    ],
)
def test_band_keys_that_cannot_apply_are_refused(bands, path, words):
    found = issues(ffs_bands=bands)
    assert any(p == path and words in zh for p, zh in found), found


def test_keep_surplus_accepts_share_and_cap():
    assert issues(ffs_bands=_band(0, share=0.5)) == []


def test_reimbursement_ratio_only_with_its_formula():
    budget = {"employee": {"fund_budget_yuan": 1000, "reimbursement_ratio": 0.8}}
    found = issues(budget=budget)
    assert "settlement.budget.employee.reimbursement_ratio" in [p for p, _ in found], found
    ok = issues(budget=budget, point_value_formula="fund_over_ratio")
    assert all("reimbursement_ratio" not in p for p, _ in ok), ok


def test_repeated_assessment_score_line_is_refused():
    bands = [{"min_score": 90, "return_share": 1}, {"min_score": 90, "return_share": 0.5}]
    assert any(p == "settlement" and "互不相同" in zh for p, zh in issues(assessment_bands=bands))


def test_point_value_decimals_beyond_the_column_are_refused_when_checked():
    assert any(p == "settlement.point_value_decimals" for p, _ in issues(point_value_decimals=8))


def _issues(**sections):
    return [(i.path, i.message_zh) for i in b.policy(**sections).issues()]


@pytest.mark.parametrize(
    "sections,path",
    [
        ({"directory": {"trim": {"method": "percentile", "k": 2}}}, "directory.trim.k"),
        (
            {"directory": {"trim": {"method": "log_sd", "lower_pct": 0.1}}},
            "directory.trim.lower_pct",
        ),
        ({"directory": {"trim": {"method": "none", "upper_pct": 0.9}}}, "directory.trim.upper_pct"),
        (
            {
                "directory": {
                    "core_threshold": {"method": "coverage", "min_share": 0.8, "min_cases": 9}
                }
            },
            "directory.core_threshold.min_cases",
        ),
        (
            {"directory": {"core_threshold": {"method": "fixed", "min_share": 0.8}}},
            "directory.core_threshold.min_share",
        ),
        (
            {
                "directory": {
                    "special_groups": [
                        {"code": "DS1", "name": "日间", "kind": "day_surgery", "score_per_day": 3}
                    ]
                }
            },
            "directory.special_groups[0].score_per_day",
        ),
        ({"grouping": {"fallback": {"mode": "unmatched", "name": "x"}}}, "grouping.fallback.name"),
        (
            {"grouping": {"fallback": {"mode": "unmatched", "group_code": "B"}}},
            "grouping.fallback.group_code",
        ),
        (
            {"scoring": {"reference_mean": "regional", "yuan_per_point": {"employee": 100}}},
            "scoring.yuan_per_point",
        ),
        (
            {"scoring": {"reference_mean": "regional", "level_mean_missing": "refuse"}},
            "scoring.level_mean_missing",
        ),
    ],
)
def test_keys_that_cannot_apply_elsewhere_are_refused(sections, path):
    found = _issues(**sections)
    assert any(p == path and ("不适用" in zh or "只用于" in zh) for p, zh in found), found


@pytest.mark.parametrize(
    "sections",
    [
        {"directory": {"trim": {"method": "percentile", "lower_pct": 0.1, "upper_pct": 0.9}}},
        {
            "directory": {
                "core_threshold": {"method": "coverage", "min_cases": None, "min_share": 0.8}
            }
        },
        {"grouping": {"fallback": {"mode": "blank_group", "group_code": "B", "name": "空白"}}},
        {
            "scoring": {
                "reference_mean": "score_times_factor",
                "yuan_per_point": {"employee": 1, "resident": 1},
            }
        },
        {"scoring": {"reference_mean": "same_level", "level_mean_missing": "refuse"}},
    ],
)
def test_the_same_keys_are_accepted_where_they_apply(sections):
    assert _issues(**sections) == []


def test_default_assessment_score_only_with_its_mode():
    found = issues(default_assessment_score=90)
    assert any(p == "settlement.default_assessment_score" and "只用于" in zh for p, zh in found)
    ok = issues(deposit_without_assessment="default_score", default_assessment_score=90)
    assert ok == [], ok
