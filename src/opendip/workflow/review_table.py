"""The table scoring consumes: one row per case with a final special-review decision."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

import pyarrow as pa

#: Same columns and types as `opendip.scoring.inputs.REVIEW_SCHEMA`.
REVIEW_SCHEMA = pa.schema(
    [
        ("case_id", pa.string()),
        ("decision", pa.string()),
        ("reviewed_score", pa.decimal128(18, 4)),
    ]
)


def special_review_table(rows: Iterable[tuple[str, str, Decimal | None]]) -> pa.Table:
    """(case_id, accept|reject, reviewed_score) → Arrow; a later row for the same case
    replaces an earlier one (rows come in decision order)."""
    latest: dict[str, tuple[str, Decimal | None]] = {}
    for case_id, decision, score in rows:
        latest[case_id] = (decision, None if decision == "reject" else score)
    ids = sorted(latest)
    return pa.table(
        {
            "case_id": pa.array(ids, pa.string()),
            "decision": pa.array([latest[c][0] for c in ids], pa.string()),
            "reviewed_score": pa.array([latest[c][1] for c in ids], pa.decimal128(18, 4)),
        },
        schema=REVIEW_SCHEMA,
    )
