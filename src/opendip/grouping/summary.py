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


def grouping_summary(grouped: pa.Table, cases: pa.Table | None = None) -> dict[str, Any]:
    """入组率 = cases with a group (any type but 'unmatched') ÷ cases.

    Also: 入组率 of the cases QC did not block (`grouping_rate_qc_clean`), cases by group
    type, unmatched by step and the most frequent reasons; by hospital when `cases`
    (case_id, hospital_id) is given.
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
    if cases is not None:
        # Per hospital in DuckDB (in-process, zero-copy on the Arrow tables): a case id
        # listed twice counts under its smallest hospital id, as every row of it counts.
        import ibis

        flags = pa.table(
            {"case_id": grouped["case_id"], "grouped": pc.cast(pc.invert(is_unmatched), pa.int64())}
        )
        f = ibis.memtable(flags)
        c = ibis.memtable(cases.select(["case_id", "hospital_id"]))
        hosp = c.group_by("case_id").aggregate(hospital_id_min=c.hospital_id.min())
        j = f.left_join(hosp, "case_id")
        per = ibis.duckdb.connect().to_pyarrow(
            j.group_by("hospital_id_min").aggregate(
                grouped_sum=j.grouped.sum(), grouped_count=j.count()
            )
        )
        out["grouping_rate_by_hospital"] = {
            (h or "?"): round(g / c, 4)
            for h, g, c in sorted(
                zip(
                    per["hospital_id_min"].to_pylist(),
                    per["grouped_sum"].to_pylist(),
                    per["grouped_count"].to_pylist(),
                    strict=True,
                ),
                key=lambda r: r[0] or "",
            )
        }
    return out


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
