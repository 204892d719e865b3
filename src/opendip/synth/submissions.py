"""A synthetic upload log (结算清单上传记录) for the demo region's credit rating: for every
hospital × settlement month with cases, the time the month's first upload arrived.

Most months arrive within the first week of the next month; each hospital has its own
habit (a seeded lateness), so a few hospitals upload late often and most rarely.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def generate_submissions(cases: Path | list[Path], out: Path, seed: int) -> Path:
    """Write hospital_id, settle_month, submitted_at (naive UTC) to `out`."""
    paths = cases if isinstance(cases, list) else [cases]
    import pyarrow.compute as pc

    months = (
        pa.concat_tables([pq.read_table(p, columns=["hospital_id", "settle_month"]) for p in paths])
        .group_by(["hospital_id", "settle_month"])
        .aggregate([])
    )
    months = months.sort_by([("hospital_id", "ascending"), ("settle_month", "ascending")])
    hospitals = sorted(set(months.column("hospital_id").to_pylist()))
    rng = np.random.default_rng(seed + 4242)
    # each hospital's chance that a month arrives after the 10th of the next month
    habit = dict(zip(hospitals, rng.beta(0.6, 6.0, len(hospitals)), strict=True))
    ids = months.column("hospital_id").to_pylist()
    late = rng.random(len(ids)) < np.array([habit[h] for h in ids])
    day = np.where(late, rng.integers(11, 26, len(ids)), rng.integers(1, 10, len(ids)))
    minute = rng.integers(8 * 60, 18 * 60, len(ids))
    starts = pc.strptime(
        pc.binary_join_element_wise(months.column("settle_month"), "-01", ""),
        format="%Y-%m-%d",
        unit="us",
    ).to_pylist()
    times = []
    for start, d, mi in zip(starts, day, minute, strict=True):
        nxt = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        times.append(nxt + dt.timedelta(days=int(d) - 1, minutes=int(mi)))
    table = pa.table(
        {
            "hospital_id": months.column("hospital_id"),
            "settle_month": months.column("settle_month"),
            "submitted_at": pa.array(times, pa.timestamp("us")),
        }
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out)
    return out
