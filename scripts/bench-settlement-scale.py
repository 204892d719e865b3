"""Annual clearing at N × the cases of a generated region (docs/benchmarks.md, 10 M cases).

    .venv/bin/opendip bench --cases 1000000 --workdir /tmp/bench1m --stage settlement
    .venv/bin/python scripts/bench-settlement-scale.py /tmp/bench1m 10 /tmp/bench10m

With `--replicate-only` it stops after writing the replicated inputs; a later run finding them
in place reuses them, so the clearing can be measured alone (`/usr/bin/time -v` peak RSS).

Replicates the region's current-year cases and grouped cases N times with distinct case ids
(DuckDB, streaming, never in Python memory), scales the policy's budgets to the case count so point values
stay realistic (`opendip.synth.policy.scaled_demo_policy`), then runs `opendip.settlement.run.run_year` and prints seconds, peak RSS and
row counts. Hospitals and the directory are the region's own.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import duckdb

from opendip.settlement.run import InputFiles, run_year
from opendip.synth.policy import scaled_demo_policy


def replicate(src: Path, factor: int, out: Path) -> InputFiles:
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    copies = f"range({factor}) r(k)"
    for name in ("cases_2026", "grouped"):
        con.execute(
            f"""COPY (SELECT * REPLACE (case_id || CASE WHEN k = 0 THEN '' ELSE '-' || k END
                                         AS case_id)
                      FROM read_parquet('{src / (name + ".parquet")}'), {copies}
                      ORDER BY k, case_id)
                TO '{out / (name + ".parquet")}' (FORMAT parquet, COMPRESSION zstd)"""
        )
    # The demo policy with budgets sized to the replicated region.
    (n,) = con.execute(
        f"SELECT count(*) FROM read_parquet('{out / 'cases_2026.parquet'}')"
    ).fetchone()
    scaled_demo_policy(n, out / "policy.yaml")
    return InputFiles(
        policy=out / "policy.yaml",
        cases=out / "cases_2026.parquet",
        grouped=out / "grouped.parquet",
        directory=src / "directory.parquet",
        hospitals=src / "hospitals.parquet",
    )


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    src, factor, out = Path(args[0]), int(args[1]), Path(args[2])
    start = time.perf_counter()
    if (out / "policy.yaml").is_file():
        files = InputFiles(
            policy=out / "policy.yaml",
            cases=out / "cases_2026.parquet",
            grouped=out / "grouped.parquet",
            directory=src / "directory.parquet",
            hospitals=src / "hospitals.parquet",
        )
        print(f"reusing the replicated inputs in {out}", flush=True)
    else:
        files = replicate(src, factor, out)
        print(f"replicated ×{factor} in {time.perf_counter() - start:.1f} s", flush=True)
    if "--replicate-only" in sys.argv:
        return
    start = time.perf_counter()
    # The per-case Excel is opt-in (`--case-excel`); the case table is cases.parquet.
    summary = run_year(files, 2026, out / "settlement", case_excel=False)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"run_year: {seconds:.1f} s, peak RSS {peak:,.0f} MB, cases {summary['cases']}")
    print(f"point values {summary['point_values']}; notes {summary.get('notes')}")
    ok = all(p["cases_equal_hospitals"] and p["clearing_identity"] for p in summary["pools"])
    print("reconciliation:", "一致" if ok else "不一致")


if __name__ == "__main__":
    main()
