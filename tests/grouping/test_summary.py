"""入组率 summary: hand-counted figures, overall and by hospital (a duplicated case id
counts under its smallest hospital id; a case without hospital under "?")."""

from __future__ import annotations

import pyarrow as pa

from opendip.grouping.summary import grouping_summary


def test_summary_counts_by_type_step_reason_and_hospital() -> None:
    grouped = pa.table(
        {
            "case_id": ["a", "b", "c", "d", "e", "a"],
            "group_type": ["core", "unmatched", "comprehensive", "unmatched", "core", "core"],
            "match_step": ["core", "qc_excluded", "comprehensive", "unmatched", "core", "core"],
            "reason": ["r1", "质控", "r2", "无", "r1", "r1"],
        }
    )
    cases = pa.table(
        {
            "case_id": ["a", "b", "c", "d", "e", "a"],
            "hospital_id": ["H2", "H1", "H1", None, "H2", "H1"],
        }
    )
    s = grouping_summary(grouped, cases)
    assert s["cases"] == 6
    assert s["grouping_rate"] == round(4 / 6, 6)
    assert s["grouping_rate_qc_clean"] == round(4 / 5, 6)
    assert s["by_type"] == {"comprehensive": 1, "core": 3, "unmatched": 2}
    assert s["unmatched_by_step"] == {"无对应病种": 1, "质控阻断": 1}
    assert list(s["unmatched_by_step"]) == [
        "质控阻断",
        "无对应病种",
    ]  # ties: qc_excluded < unmatched
    assert s["unmatched_top_reasons"] == {"无": 1, "质控": 1}
    # 'a' (listed twice, hospitals H2 and H1) counts under H1 twice: H1 = a, a, b, c → 3/4;
    # H2 = e → 1/1; no hospital = d → 0/1.
    assert s["grouping_rate_by_hospital"] == {"?": 0.0, "H1": 0.75, "H2": 1.0}


def test_summary_from_hospitals_carried_with_the_rows_equals_the_cases_lookup() -> None:
    """`opendip group` carries each row's hospital through the grouping query (nothing is
    read twice): the figures are the ones above, by hand, also when the repeated case id
    comes first or last and when no case id repeats."""
    grouped = pa.table(
        {
            "case_id": ["a", "b", "c", "d", "e", "a"],
            "group_type": ["core", "unmatched", "comprehensive", "unmatched", "core", "core"],
            "match_step": ["core", "qc_excluded", "comprehensive", "unmatched", "core", "core"],
            "reason": ["r1", "质控", "r2", "无", "r1", "r1"],
        }
    )
    hospital = pa.array(["H2", "H1", "H1", None, "H2", "H1"])
    s = grouping_summary(grouped, hospital=hospital)
    assert s["grouping_rate_by_hospital"] == {"?": 0.0, "H1": 0.75, "H2": 1.0}
    assert s == grouping_summary(
        grouped, pa.table({"case_id": grouped["case_id"], "hospital_id": hospital})
    )
    # Reversed rows: 'a' still counts under H1 (its smallest), twice.
    rev = grouping_summary(
        grouped.take([5, 4, 3, 2, 1, 0]), hospital=hospital.take([5, 4, 3, 2, 1, 0])
    )
    assert rev["grouping_rate_by_hospital"] == {"?": 0.0, "H1": 0.75, "H2": 1.0}
    # Without the repeat: H1 = b, c → 1/2; H2 = a, e → 2/2.
    once = grouping_summary(grouped.slice(0, 5), hospital=hospital.slice(0, 5))
    assert once["grouping_rate_by_hospital"] == {"?": 0.0, "H1": 0.5, "H2": 1.0}
    # Sorted by case id (as `opendip group` returns rows): repeats found by neighbours.
    order = [0, 5, 1, 2, 3, 4]  # a, a, b, c, d, e
    by_id = grouping_summary(grouped.take(order), hospital=hospital.take(order))
    assert by_id == s


def test_smallest_hospital_per_case_id_with_nulls() -> None:
    """x is listed at H2 and H1 → H1 for both rows; the two rows without case id form one
    group (H3, H4 → H3); y has no hospital → none."""
    from opendip.grouping.summary import _smallest_per_case

    ids = pa.array(["x", None, "x", "y", None])
    hospitals = pa.array(["H2", "H3", "H1", None, "H4"])
    got = _smallest_per_case(ids, hospitals).to_pylist()
    assert got == ["H1", "H3", "H1", None, "H3"]
