"""Dashboard: the DIP share of the inpatient fund, hand-computed on three cases."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from opendip.store.access import CaseScope
from opendip.web.region import RegionData
from tests.web.conftest import REGION


def test_dip_share_of_the_inpatient_fund(tmp_path: Path) -> None:
    data = tmp_path / "region"
    shutil.copytree(REGION, data)
    cases = pq.read_table(data / "cases_2026.parquet")
    h1 = cases.filter(pc.equal(cases["hospital_id"], "H001")).slice(0, 2)
    h2 = cases.filter(pc.equal(cases["hospital_id"], "H002")).slice(0, 1)
    ids = h1["case_id"].to_pylist() + h2["case_id"].to_pylist()
    # DIP: H001 two cases, fund payable 300 + 700 fen; not DIP: H002 one case, fund 3000 fen
    pq.write_table(
        pa.table({"case_id": ids[:2], "hospital_id": ["H001", "H001"], "pool": ["employee"] * 2,
                  "deviation": ["normal"] * 2, "dip_amount_fen": [400, 900],
                  "fund_payable_fen": [300, 700], "ffs_fund_fen": [350, 600],
                  "settled_score": [1.0, 2.0], "point_value": [10.0, 10.0]}),
        data / "scored.parquet",
    )  # fmt: skip
    pq.write_table(
        pa.table({"case_id": ids[2:], "hospital_id": ["H002"], "ffs_fund_fen": [3000]}),
        data / "not_dip.parquet",
    )
    region = RegionData(data)
    whole = region.dashboard(CaseScope())
    # 1000 + 3000 = 4000; 1000 ÷ 4000 = 0.25
    assert (whole["not_dip_fund_fen"], whole["inpatient_fund_fen"]) == (3000, 4000)
    assert whole["dip_fund_share"] == 0.25
    own = region.dashboard(CaseScope(hospital_id="H001"))
    assert (own["inpatient_fund_fen"], own["dip_fund_share"]) == (1000, 1.0)
