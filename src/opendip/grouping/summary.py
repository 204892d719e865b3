"""入组率 and unmatched cases by step and reason, overall and by hospital."""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

#: match_step of an unmatched case → Chinese label.
STEP_LABELS = {
    "qc_excluded": "质控阻断",
    "unknown_code": "代码不在医保版代码表",
    "not_for_grouping": "不入组规则",
    "unmatched": "无对应病种",
}
TOP_REASONS = 20


def _counts(table: pa.Table, column: str) -> dict[Any, int]:
    """Rows per value of `column`, most frequent first (ties by value)."""
    if table.num_rows == 0:
        return {}
    vc = pc.value_counts(table[column])  # one hash pass (cheaper than a group_by)
    pairs = zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True)
    return dict(sorted(pairs, key=lambda p: (-p[1], p[0] is None, p[0] or "")))


def _is(values: pa.ChunkedArray | pa.Array, text: str) -> pa.ChunkedArray | pa.Array:
    """values == text. (A pattern, not a scalar: turning a Python value into an Arrow scalar
    imports pandas, ~0.3 s of an `opendip group` that otherwise never needs it.)"""
    return pc.match_substring_regex(values, f"^{re.escape(text)}$")


def grouping_summary(
    grouped: pa.Table, cases: pa.Table | None = None, hospital: pa.Array | None = None
) -> dict[str, Any]:
    """入组率 = cases with a group (any type but 'unmatched') ÷ cases.

    Also: 入组率 of the cases QC did not block (`grouping_rate_qc_clean`), cases by group
    type, unmatched by step and the most frequent reasons; by hospital when the hospitals
    are given: `hospital` (the hospital of each row of `grouped`, e.g. carried through the
    grouping query: nothing read twice) or `cases` (case_id, hospital_id).
    """
    n = grouped.num_rows
    is_unmatched = _is(grouped["group_type"], "unmatched")
    unmatched = grouped.filter(is_unmatched)
    blocked = pc.sum(_is(grouped["match_step"], "qc_excluded")).as_py() or 0
    matched = n - unmatched.num_rows
    clean = n - blocked
    by_step = {STEP_LABELS.get(k, k): v for k, v in _counts(unmatched, "match_step").items()}
    out: dict[str, Any] = {
        "cases": n,
        "grouping_rate": round(matched / n, 6) if n else 0.0,
        "grouping_rate_qc_clean": round(matched / clean, 6) if clean else 0.0,
        "by_type": dict(sorted(_counts(grouped, "group_type").items())),
        "unmatched_by_step": by_step,
        "unmatched_top_reasons": dict(list(_counts(unmatched, "reason").items())[:TOP_REASONS]),
    }
    if hospital is None and cases is not None:
        # The hospital of each grouped row's case id (its smallest, as below).
        ids = _array(cases["case_id"])
        smallest = _smallest_per_case(ids, _array(cases["hospital_id"]))
        at = pc.index_in(grouped["case_id"], value_set=ids)
        hospital = pc.take(smallest, at)
    if hospital is not None:
        out["grouping_rate_by_hospital"] = _rate_by_hospital(
            _array(grouped["case_id"]), _array(hospital), _array(pc.invert(is_unmatched))
        )
    return out


def _array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _smallest_per_case(case_id: pa.Array, hospital: pa.Array) -> pa.Array:
    """For each row, the smallest hospital id among the rows of its case id (null when they
    have none). Vectorised: sort by (case id, hospital), number the runs of equal case ids,
    take each run's first hospital, and put the rows back in their order."""
    n = len(case_id)
    if n == 0:
        return hospital
    keys = pa.Table.from_arrays([case_id, hospital], names=["c", "h"])
    order = pc.sort_indices(keys, sort_keys=[("c", "ascending"), ("h", "ascending")])
    c, h = case_id.take(order), hospital.take(order)
    # A run starts at the first row and wherever the case id changes (null ids: one run).
    first = pc.is_valid(order.slice(0, 1))  # [True], made without a Python value
    same = pc.equal(c.slice(1), c.slice(0, n - 1))  # null when either id is null
    both_null = pc.and_(pc.is_null(c.slice(1)), pc.is_null(c.slice(0, n - 1)))
    start = pa.concat_arrays([first, _array(pc.invert(pc.coalesce(same, both_null)))])
    run = pc.cumulative_sum(pc.cast(start, pa.int64()))  # 1, 1, 2, … (1-based)
    firsts = h.filter(start)
    per_row = pa.concat_arrays([firsts.slice(0, 1), firsts]).take(run)
    return per_row.take(pc.sort_indices(order))  # back to the rows' own order


def _repeated(case_id: pa.Array) -> pa.Array:
    """Whether each row's case id occurs in another row too. Rows sorted by case id (as
    `opendip group` returns them) are compared with their neighbours; otherwise the ids are
    counted (a hash of every id: ~0.4 s for a million)."""
    n = len(case_id)
    if n > 1 and case_id.null_count == 0:
        head, tail = case_id.slice(0, n - 1), case_id.slice(1)
        if pc.all(pc.less_equal(head, tail)).as_py():
            same = pc.equal(head, tail)
            edge = pc.is_null(case_id.slice(0, 1))  # [False], made without a Python value
            return pc.or_(pa.concat_arrays([edge, same]), pa.concat_arrays([same, edge]))
    counts = pc.value_counts(case_id)
    twice = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
    return pc.fill_null(pc.is_in(case_id, value_set=twice), False)


def _rate_by_hospital(case_id: pa.Array, hospital: pa.Array, grouped: pa.Array) -> dict[str, float]:
    """入组率 per hospital, in Arrow (no engine): every row counts, a case id listed twice
    under its smallest hospital id, a row without hospital under "?"."""
    again = _repeated(case_id)
    if pc.any(again).as_py():
        # Rare: only the rows of repeated case ids are looked at again.
        smallest = _smallest_per_case(case_id.filter(again), hospital.filter(again))
        hospital = pc.replace_with_mask(hospital, again, smallest.cast(hospital.type))
    rows = _value_counts(hospital)
    done = _value_counts(hospital.filter(grouped))
    return {
        (h or "?"): round(done.get(h, 0) / c, 4)
        for h, c in sorted(rows.items(), key=lambda r: r[0] or "")
    }


def _value_counts(values: pa.Array) -> dict[Any, int]:
    vc = pc.value_counts(values)
    return dict(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True))


def compare_groupings(old: pa.Table, new: pa.Table) -> pa.Table:
    """Cases whose group or base score differs between two groupings of the same cases.

    Columns: case_id, old_group_code, new_group_code, old_base_score, new_base_score,
    change_pct (score change in %, null when either side has no score).
    """
    cols = ["case_id", "group_code", "base_score"]
    a = old.select(cols).rename_columns(["case_id", "old_group_code", "old_base_score"])
    b = new.select(cols).rename_columns(["case_id", "new_group_code", "new_base_score"])
    j = a.join(b, "case_id", join_type="full outer")
    differs = pc.or_kleene(
        pc.invert(
            pc.equal(pc.fill_null(j["old_group_code"], ""), pc.fill_null(j["new_group_code"], ""))
        ),
        pc.invert(
            pc.equal(
                pc.fill_null(pc.cast(j["old_base_score"], pa.string()), ""),
                pc.fill_null(pc.cast(j["new_base_score"], pa.string()), ""),
            )
        ),
    )
    j = j.filter(differs)
    old_s = pc.cast(j["old_base_score"], pa.float64())
    new_s = pc.cast(j["new_base_score"], pa.float64())
    pct = pc.round(pc.multiply(pc.divide(pc.subtract(new_s, old_s), old_s), 100.0), 2)
    pct = pc.if_else(pc.equal(old_s, 0.0), pa.scalar(None, pa.float64()), pct)
    j = j.append_column("change_pct", pct)
    return j.select(
        [
            "case_id",
            "old_group_code",
            "new_group_code",
            "old_base_score",
            "new_base_score",
            "change_pct",
        ]
    ).sort_by("case_id")
