"""Regenerate the shipped demo code tables: python scripts/build_demo_codes.py"""

from __future__ import annotations

import pyarrow.parquet as pq

from opendip.codes.demo_build import build_diagnoses, build_procedures
from opendip.codes.tables import DEMO_DIR


def main() -> None:
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    for name, table in (("diagnoses", build_diagnoses()), ("procedures", build_procedures())):
        pq.write_table(table, DEMO_DIR / f"{name}.parquet", compression="zstd")
        print(f"{name}: {table.num_rows} codes → {DEMO_DIR / (name + '.parquet')}")


if __name__ == "__main__":
    main()
