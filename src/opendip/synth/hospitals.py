"""Synthetic hospitals: levels, sizes, counties and county medical communities (医共体)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pyarrow as pa

from opendip.contract import HOSPITALS

COUNTIES = ("城关区", "东城区", "西城区", "南山县", "北岭县", "河口县", "高原县", "林芝县")
#: Share of hospitals by level; the first ids are the largest (tertiary) hospitals.
LEVEL_SHARES = (("tertiary", 0.15), ("secondary", 0.35), ("primary", 0.40), ("unrated", 0.10))
BEDS = {"tertiary": (800, 2000), "secondary": (200, 600), "primary": (30, 120), "unrated": (20, 80)}
#: Share of privately owned hospitals by level (tertiary hospitals are public here).
PRIVATE_SHARE = {"tertiary": 0.0, "secondary": 0.1, "primary": 0.1, "unrated": 0.8}
LEVEL_NAME = {
    "tertiary": "人民医院",
    "secondary": "县医院",
    "primary": "乡镇卫生院",
    "unrated": "诊所",
}


def make_hospitals(n: int, rng: np.random.Generator) -> pa.Table:
    counts = [round(n * share) for _, share in LEVEL_SHARES]
    counts[2] += n - sum(counts)
    levels = [lvl for (lvl, _), c in zip(LEVEL_SHARES, counts, strict=True) for _ in range(c)]
    ids = [f"H{i + 1:03d}" for i in range(n)]
    counties = [COUNTIES[i % len(COUNTIES)] for i in range(n)]
    beds = [int(rng.integers(*BEDS[lvl])) for lvl in levels]
    private = rng.random(n) < np.array([PRIVATE_SHARE[lvl] for lvl in levels])
    # A county's first secondary hospital leads its primary hospitals' community.
    leader: dict[str, str] = {}
    for hid, lvl, county in zip(ids, levels, counties, strict=True):
        if lvl == "secondary" and county not in leader:
            leader[county] = hid
    community = [
        f"YGT-{leader[c]}" if lvl in ("secondary", "primary") and c in leader else None
        for lvl, c in zip(levels, counties, strict=True)
    ]
    names = [
        f"示范市{c}第{i + 1}{LEVEL_NAME[lvl]}"
        for i, (c, lvl) in enumerate(zip(counties, levels, strict=True))
    ]
    table = pa.table(
        {
            "hospital_id": ids,
            "name": names,
            "level": levels,
            "county": counties,
            "community_id": community,
            "ownership": ["private" if p else "public" for p in private],
            "beds": pa.array(beds, pa.int32()),
            "bonus_coefficient": pa.array([Decimal(0)] * n, pa.decimal128(8, 4)),
        }
    )
    return HOSPITALS.conform(table)
