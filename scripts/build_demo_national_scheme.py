"""Build the demo national grouping scheme (示范国家分组方案, NOT the official 2.0 library):

    python scripts/build_demo_national_scheme.py [WORKDIR]

A 'national' synthetic region (the demo's disease mix, 80 hospitals, 120 000 cases a year,
2023–2025) gives a directory with the demo policy; its core and comprehensive rows are written
in the national published layout to src/opendip/data/directory/national-scheme-demo.csv, with
the national reference scores. `opendip directory load --format national` localises it.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from opendip.codes import demo_code_tables
from opendip.directory.build import build_directory
from opendip.directory.national import write_national_scheme
from opendip.engine import connect
from opendip.grouping.inputs import diagnosis_codes, procedure_types
from opendip.policy import demo_policy_path, load_policy
from opendip.synth import generate_region

OUT = (
    Path(__file__).resolve().parent.parent
    / "src" / "opendip" / "data" / "directory" / "national-scheme-demo.csv"
)  # fmt: skip
YEARS = (2023, 2024, 2025)


def main(workdir: str | None = None) -> None:
    work = Path(workdir or tempfile.mkdtemp(prefix="opendip-national-"))
    if not (work / "manifest.json").exists():
        generate_region(work, hospitals=80, cases_per_year=120_000, years=YEARS, seed=7)
    con = connect()
    codes = demo_code_tables()
    built = build_directory(
        con.read_parquet([str(work / f"cases_{y}.parquet") for y in YEARS]),
        con.read_parquet(str(work / "hospitals.parquet")),
        procedure_types(con, codes),
        load_policy(demo_policy_path()),
        diagnosis_codes=diagnosis_codes(con, codes),
    )
    write_national_scheme(built.table, OUT, codes)
    print(f"{OUT}: {built.table.num_rows} groups built")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
