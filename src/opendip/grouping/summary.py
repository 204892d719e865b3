"""入组率 and unmatched reasons, overall and by hospital."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pyarrow as pa


def grouping_summary(grouped: pa.Table, cases: pa.Table | None = None) -> dict[str, Any]:
    """入组率 = cases with a group (not 'unmatched') ÷ cases."""
    types = Counter(grouped["group_type"].to_pylist())
    n = grouped.num_rows
    unmatched = Counter(
        r
        for r, t in zip(
            grouped["reason"].to_pylist(), grouped["group_type"].to_pylist(), strict=True
        )
        if t == "unmatched"
    )
    out: dict[str, Any] = {
        "cases": n,
        "grouping_rate": (n - types.get("unmatched", 0)) / n if n else 0.0,
        "by_type": dict(sorted(types.items())),
        "unmatched_by_reason": dict(unmatched.most_common()),
    }
    if cases is not None:
        hosp = dict(
            zip(cases["case_id"].to_pylist(), cases["hospital_id"].to_pylist(), strict=True)
        )
        per: dict[str, list[int]] = {}
        for cid, t in zip(
            grouped["case_id"].to_pylist(), grouped["group_type"].to_pylist(), strict=True
        ):
            acc = per.setdefault(hosp.get(cid, "?"), [0, 0])
            acc[0] += 1
            acc[1] += t != "unmatched"
        out["grouping_rate_by_hospital"] = {h: round(g / c, 4) for h, (c, g) in sorted(per.items())}
    return out
