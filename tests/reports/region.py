"""A small generated region run through the pipeline up to supervision (no report stage),
with the demo policy's budgets sized to it by the synth stage, an annual clearing run in `settlement/`,
a monthly pre-settlement run in `settlement-2026-03/` and a special-review file."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from opendip.bench import BenchContext, available_stages
from opendip.settlement.run import InputFiles, run_month

N_CASES = 3000
MONTH = "2026-03"


def make_region(root: Path, n_cases: int = N_CASES, seed: int = 5) -> Path:
    """Generate and run the region; returns the root (annual run in root/settlement)."""
    ctx = BenchContext(workdir=root, n_cases=n_cases, seed=seed)  # budgets sized by synth
    for name, _label, fn in available_stages():
        if name == "report":
            break
        fn(ctx)
    # A monthly run with special-review decisions on three of the month's DIP cases.
    scored = pq.read_table(root / "settlement" / "cases.parquet")
    cases = pq.read_table(root / "cases_2026.parquet", columns=["case_id", "settle_month"])
    in_month = {
        c
        for c, m in zip(
            cases["case_id"].to_pylist(), cases["settle_month"].to_pylist(), strict=True
        )
        if m == MONTH
    }
    ids = [c for c in scored["case_id"].to_pylist() if c in in_month][:3]
    reviews = pa.table(
        {
            "case_id": ids,
            "decision": ["accept", "accept", "reject"],
            "reviewed_score": pa.array(["150.5", "80", None]).cast(pa.decimal128(18, 4)),
        }
    )
    pq.write_table(reviews, root / "reviews.parquet")
    files = InputFiles(
        policy=ctx.policy_path,
        cases=ctx.artifacts["cases"],
        grouped=ctx.artifacts["grouped"],
        directory=ctx.artifacts["directory"],
        hospitals=ctx.artifacts["hospitals"],
        reviews=root / "reviews.parquet",
        all_case_mean_fen=ctx.artifacts["directory_metrics"].get("all_case_mean_fen"),
    )
    run_month(files, MONTH, root / f"settlement-{MONTH}", excel=False)
    return root
