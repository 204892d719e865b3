"""入组率 and unmatched cases by step and reason, overall and by hospital."""

from __future__ import annotations

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
    is_unmatched = pc.equal(grouped["group_type"], "unmatched")
    unmatched = grouped.filter(is_unmatched)
    blocked = pc.sum(pc.equal(grouped["match_step"], "qc_excluded")).as_py() or 0
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
        per_case = _smallest_hospital(cases["case_id"], cases["hospital_id"])
        hospital = _lookup(grouped["case_id"], per_case)
    if hospital is not None:
        out["grouping_rate_by_hospital"] = _rate_by_hospital(
            grouped["case_id"], _array(hospital), pc.invert(is_unmatched)
        )
    return out


def _smallest_hospital(case_id: pa.ChunkedArray | pa.Array, hospital: pa.Array) -> pa.Table:
    """case_id, hospital_id: each case id's smallest hospital id (null when it has none)."""
    t = pa.table({"case_id": case_id, "hospital_id": hospital})
    per = t.group_by("case_id").aggregate([("hospital_id", "min")])
    return per.select(["case_id", "hospital_id_min"]).rename_columns(["case_id", "hospital_id"])


def _lookup(case_id: pa.ChunkedArray | pa.Array, per_case: pa.Table) -> pa.Array:
    """The hospital of each of `case_id` in `per_case` (null when absent)."""
    at = pc.index_in(case_id, value_set=per_case["case_id"].combine_chunks())
    return pc.take(per_case["hospital_id"], at)


def _array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _repeated(case_id: pa.Array) -> pa.Array:
    """Whether each row's case id occurs in another row too. Rows sorted by case id (as
    `opendip group` returns them) are compared with their neighbours; otherwise the ids are
    counted (a hash of every id: ~0.4 s for a million)."""
    n = len(case_id)
    if n > 1 and case_id.null_count == 0:
        head, tail = case_id.slice(0, n - 1), case_id.slice(1)
        if pc.all(pc.less_equal(head, tail)).as_py():
            same = pc.equal(head, tail)
            edge = pa.array([False])
            return pc.or_(pa.concat_arrays([edge, same]), pa.concat_arrays([same, edge]))
    counts = pc.value_counts(case_id)
    twice = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
    return pc.fill_null(pc.is_in(case_id, value_set=twice), False)


def _rate_by_hospital(
    case_id: pa.ChunkedArray, hospital: pa.Array, grouped: pa.ChunkedArray
) -> dict[str, float]:
    """入组率 per hospital, in Arrow (no engine): every row counts, a case id listed twice
    under its smallest hospital id, a row without hospital under "?"."""
    again = _repeated(_array(case_id))
    if pc.any(again).as_py():
        # Rare: only the rows of repeated case ids are looked at again.
        sub = pa.table({"case_id": case_id, "hospital_id": hospital}).filter(again)
        smallest = _lookup(sub["case_id"], _smallest_hospital(sub["case_id"], sub["hospital_id"]))
        hospital = pc.replace_with_mask(
            _array(hospital), _array(again), _array(smallest).cast(hospital.type)
        )
    t = pa.table({"hospital_id": hospital, "grouped": pc.cast(grouped, pa.int64())})
    per = t.group_by("hospital_id").aggregate([("grouped", "sum"), ("grouped", "count")])
    return {
        (h or "?"): round(g / c, 4)
        for h, g, c in sorted(
            zip(
                per["hospital_id"].to_pylist(),
                per["grouped_sum"].to_pylist(),
                per["grouped_count"].to_pylist(),
                strict=True,
            ),
            key=lambda r: r[0] or "",
        )
    }


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
