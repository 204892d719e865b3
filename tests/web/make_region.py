"""Regenerate the small test region in tests/web/region (400 current-year cases):

.venv/bin/python -m tests.web.make_region
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from opendip.bench import BenchContext, run_bench

HERE = Path(__file__).resolve().parent / "region"
KEEP = (
    "hospitals.parquet",
    "cases_2026.parquet",
    "directory.parquet",
    "directory.metrics.json",
    "grouped.parquet",
)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ctx = BenchContext(workdir=Path(tmp), n_cases=400)
        run_bench(ctx, only=["synth", "directory", "grouping"])
        HERE.mkdir(exist_ok=True)
        for name in KEEP:
            shutil.copy(Path(tmp) / name, HERE / name)


if __name__ == "__main__":
    main()
