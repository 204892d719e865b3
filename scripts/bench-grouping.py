"""Grouping throughput at 1 M cases (issue 16 §3): the batch expression in-process, the whole
`opendip group` process, and a plain Python dict loop as the baseline.

    python scripts/bench-grouping.py WORKDIR [--cases 1000000] [--only batch|baseline]

`--only baseline` runs just the plain loop (read + loop) and `--only batch` just the
in-process batch: each is then a whole process to time from outside against
`python -m opendip group` (e.g. with `/usr/bin/time -v`, several runs, medians).

WORKDIR gets a generated region (history 3 × 50 000 for the directory, the current year
with --cases cases). Figures go to stdout as JSON; docs/benchmarks.md records them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq


def baseline(current: Path, directory_path: Path, codes) -> dict[str, object]:
    """A plain Python loop over dicts (exact core key, else comprehensive by category and
    procedure type, else blank) — no QC refusals, no tie-breaks, no explanation: the least
    any grouper must do. Reading the rows is timed apart."""
    out: dict[str, object] = {}
    start = time.perf_counter()
    rows = pq.read_table(
        current, columns=["main_diagnosis", "main_procedure", "other_procedures"]
    ).to_pylist()
    out["baseline_read_s"] = round(time.perf_counter() - start, 2)
    d = pq.read_table(directory_path).to_pylist()
    core = {(r["diagnosis_key"], r["procedure_key"]): r["group_code"] for r in d
            if r["group_type"] in ("core", "basic")}  # fmt: skip
    comp = {(r["diagnosis_key"], r["procedure_key"]): r["group_code"] for r in d
            if r["group_type"] == "comprehensive"}  # fmt: skip
    types = dict(
        zip(codes.procedures["code"].to_pylist(), codes.procedures["procedure_type"].to_pylist(),
            strict=True)
    )  # fmt: skip
    rank = {"diagnostic": 1, "therapeutic": 2, "interventional": 3, "surgery": 3}
    names = {0: "conservative", 1: "diagnostic", 2: "therapeutic", 3: "surgery"}
    start = time.perf_counter()
    groups: list[str] = []
    for r in rows:
        dx = r["main_diagnosis"]
        procs = sorted({p for p in [r["main_procedure"], *(r["other_procedures"] or [])] if p})
        code = core.get((dx[:5], "+".join(procs)))
        if code is None:
            t = names[max((rank.get(types.get(p, ""), 0) for p in procs), default=0)]
            code = comp.get((dx[:3], t), "BLANK")
        groups.append(code)
    out["baseline_loop_s"] = round(time.perf_counter() - start, 2)
    out["baseline_cases_per_s"] = round(len(rows) / out["baseline_loop_s"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--cases", type=int, default=1_000_000)
    ap.add_argument("--only", choices=("batch", "baseline"))
    ap.add_argument("--runs", type=int, default=3, help="warm in-process runs (median quoted)")
    args = ap.parse_args()
    w: Path = args.workdir
    w.mkdir(parents=True, exist_ok=True)

    from opendip.codes import demo_code_tables

    current = w / "cases_2026.parquet"
    directory_path = w / "directory.parquet"
    if args.only == "baseline" and current.exists() and directory_path.exists():
        # A lean process: the loop needs pyarrow and the code tables, nothing else.
        n = pq.read_metadata(current).num_rows
        figures = {"cases": n} | baseline(current, directory_path, demo_code_tables())
        print(json.dumps(figures, ensure_ascii=False, indent=1))
        return

    from opendip.directory import build_directory
    from opendip.engine import connect
    from opendip.grouping import group_cases
    from opendip.grouping.inputs import diagnosis_codes, procedure_types
    from opendip.policy import demo_policy_path, load_policy
    from opendip.synth.region import generate_region

    if not current.exists():
        generate_region(
            w,
            cases_per_year=args.cases,
            years=(2023, 2024, 2025, 2026),
            cases_for_year=lambda y: args.cases if y == 2026 else 50_000,
            seed=7,
        )
    con = connect()
    codes = demo_code_tables()
    policy = load_policy(demo_policy_path())
    if not directory_path.exists():
        built = build_directory(
            con.read_parquet([str(w / f"cases_{y}.parquet") for y in (2023, 2024, 2025)]),
            con.read_parquet(str(w / "hospitals.parquet")),
            procedure_types(con, codes),
            policy,
            diagnosis_codes=diagnosis_codes(con, codes),
        )
        pq.write_table(built.table, directory_path)
    meta = pq.read_metadata(current)
    n = meta.num_rows
    # DuckDB scans a Parquet file one row group per thread: a single-group file (pyarrow's
    # default up to 1 Mi rows, and `opendip synth` before 2026-12-06) groups on one core.
    figures: dict[str, object] = {"cases": n, "row_groups": meta.num_row_groups}
    if args.only == "baseline":
        figures |= baseline(current, directory_path, codes)
        print(json.dumps(figures, ensure_ascii=False, indent=1))
        return

    # In-process: expression built, compiled and run, result as Arrow (one cold run, then
    # --runs warm runs; the median is quoted).
    warm: list[float] = []
    cpu: list[float] = []
    for run in range(args.runs + 1):
        start, start_cpu = time.perf_counter(), time.process_time()
        grouped = group_cases(
            con.read_parquet(str(current)),
            con.read_parquet(str(directory_path)),
            procedure_types(con, codes),
            policy,
            None,
            diagnosis_codes(con, codes),
        ).to_pyarrow()
        seconds = round(time.perf_counter() - start, 2)
        cpu.append(round(time.process_time() - start_cpu, 2))  # all threads of the process
        if run == 0:
            figures["in_process_cold_s"] = seconds
        else:
            warm.append(seconds)
    assert grouped.num_rows == n
    figures["in_process_warm_s"] = warm
    figures["in_process_cpu_s"] = cpu
    figures["in_process_cases_per_s"] = round(n / statistics.median(warm))
    if args.only == "batch":
        print(json.dumps(figures, ensure_ascii=False, indent=1))
        return

    # Whole process: `opendip group`, interpreter start to the Parquet file written.
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "opendip", "group", "--policy", str(demo_policy_path()),
         "--directory", str(directory_path), "--cases", str(current),
         "--out", str(w / "grouped.parquet")],
        check=True, capture_output=True,
    )  # fmt: skip
    figures["whole_process_s"] = round(time.perf_counter() - start, 2)
    figures["whole_process_cases_per_s"] = round(n / figures["whole_process_s"])

    figures |= baseline(current, directory_path, codes)
    print(json.dumps(figures, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
