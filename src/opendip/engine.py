"""The batch engine: where Ibis expressions run.

Domain modules build Ibis expressions and never know the backend; the backend is chosen
here, at the edge (`--engine duckdb|spark`). DuckDB (in-process) is the default.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Literal

import ibis
import pyarrow as pa
import pyarrow.parquet as pq
from ibis.backends import BaseBackend

EngineName = Literal["duckdb", "spark"]
ENGINES: tuple[str, ...] = ("duckdb", "spark")


def connect(engine: EngineName = "duckdb", database: str | Path | None = None) -> BaseBackend:
    """Open a backend: DuckDB in memory (default) or in a file, or local Spark."""
    if engine == "duckdb":
        con = ibis.duckdb.connect(str(database) if database else ":memory:")
        # Ibis 12 writes list lambdas as `x -> ...`, which DuckDB 2 refuses unless asked.
        con.raw_sql("SET lambda_syntax='ENABLE_SINGLE_ARROW'")
        con.raw_sql("SET enable_progress_bar=false")  # our own Rich bars report progress
        # Tens of millions of cases do not fit in memory at once: DuckDB works within a limit
        # and spills to a temporary directory beyond it (docs/benchmarks.md, 10 M cases).
        con.raw_sql(f"SET memory_limit='{duckdb_memory_limit()}'")
        con.raw_sql(f"SET temp_directory='{duckdb_temp_directory()}'")
        return con
    if engine == "spark":
        from pyspark.sql import SparkSession

        session = (
            SparkSession.builder.master("local[2]")
            .appName("opendip")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "4")
            .getOrCreate()
        )
        return ibis.pyspark.connect(session)
    raise ValueError(f"未知引擎 unknown engine: {engine!r} (choose one of {ENGINES})")


#: Share of the machine's memory DuckDB may use (the rest: Python, Arrow results, the OS).
DUCKDB_MEMORY_SHARE = 0.5


def duckdb_memory_limit() -> str:
    """`OPENDIP_DUCKDB_MEMORY` (e.g. "8GB"), else half of the machine's physical memory."""
    given = os.environ.get("OPENDIP_DUCKDB_MEMORY")
    if given:
        return given
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return "4GB"
    return f"{max(1, int(total * DUCKDB_MEMORY_SHARE / 2**20))}MB"


def duckdb_temp_directory() -> str:
    """`OPENDIP_DUCKDB_TEMP`, else a per-user directory under the system temp directory."""
    given = os.environ.get("OPENDIP_DUCKDB_TEMP")
    path = Path(given) if given else Path(tempfile.gettempdir()) / f"opendip-duckdb-{os.getuid()}"
    path.mkdir(parents=True, exist_ok=True)
    return str(path).replace("'", "''")


def table_from_arrow(con: BaseBackend, table: pa.Table, name: str) -> ibis.Table:
    """Register an Arrow table with the backend and return it as an Ibis table.

    Spark converts in-memory Arrow through pandas, which loses nulls in decimal columns;
    there the table goes through Parquet instead, the same path batch steps use between them.
    """
    if con.name == "pyspark":
        path = Path(tempfile.mkdtemp(prefix="opendip-spark-")) / f"{name}.parquet"
        pq.write_table(table, path)
        return con.read_parquet(str(path), table_name=name)
    return con.create_table(name, table, overwrite=True)


def read_parquet(con: BaseBackend, path: str | Path, name: str | None = None) -> ibis.Table:
    """Read a Parquet file (or a glob of files) into the backend."""
    kwargs: dict[str, Any] = {}
    if name:
        kwargs["table_name"] = name
    return con.read_parquet(str(path), **kwargs)


def to_arrow(expr: ibis.Table) -> pa.Table:
    """Execute an expression and return Arrow."""
    return expr.to_pyarrow()


def write_parquet(expr: ibis.Table | pa.Table, path: str | Path) -> Path:
    """Execute (if needed) and write one Parquet file; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = expr if isinstance(expr, pa.Table) else expr.to_pyarrow()
    pq.write_table(table, path)
    return path
