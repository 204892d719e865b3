"""The batch engine: where Ibis expressions run.

Domain modules build Ibis expressions and never know the backend; the backend is chosen
here, at the edge (`--engine duckdb|spark`). DuckDB (in-process) is the default.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import ibis
import ibis.expr.datatypes as dt
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
        return _spark_backend(spark_session())
    raise ValueError(f"未知引擎 unknown engine: {engine!r} (choose one of {ENGINES})")


def spark_session():
    """The Spark session batch steps run on (docs/scale.md):

    - `OPENDIP_SPARK_REMOTE` (or Spark's own `SPARK_REMOTE`), e.g. `sc://host:15002`: a
      Spark Connect server (a cluster's, or `start-connect-server.sh` on one machine);
    - under `spark-submit` (a cluster's master and resources given on its command line):
      that application's session;
    - otherwise a local Spark in this process, `OPENDIP_SPARK_MASTER` (default `local[2]`).
    """
    from pyspark.sql import SparkSession

    remote = os.environ.get("OPENDIP_SPARK_REMOTE") or os.environ.get("SPARK_REMOTE")
    if remote:
        return _configured(SparkSession.builder.remote(remote).getOrCreate())
    builder = SparkSession.builder.appName("opendip")
    active = SparkSession.getActiveSession()
    if active is not None:
        return _configured(active)
    if not _under_spark_submit():
        builder = (
            builder.master(os.environ.get("OPENDIP_SPARK_MASTER", "local[2]"))
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", os.environ.get("OPENDIP_SPARK_PARTITIONS", "4"))
            .config("spark.driver.memory", os.environ.get("OPENDIP_SPARK_DRIVER_MEMORY", "2g"))
        )
    for key, value in SPARK_SQL_CONF.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel(os.environ.get("OPENDIP_SPARK_LOG_LEVEL", "ERROR"))
    return _configured(session)


#: SQL settings of every OpenDIP Spark session (set at start and on sessions OpenDIP did not
#: start: Spark Connect, an active session).
SPARK_SQL_CONF = {
    "spark.sql.session.timeZone": "UTC",
    # ANSI mode (Spark 4's default) raises on overflow and bad casts instead of nulls;
    # OpenDIP checks its inputs itself and relies on SQL's null semantics as DuckDB has.
    "spark.sql.ansi.enabled": "false",
    # Spark writes each query's plan as text for its listeners; a plan reading cached tables
    # repeats their plans, and supervision's (many small cached tables) ran out of driver
    # memory building that text. The text is only for logs and the UI: cut it at 100 KB.
    "spark.sql.maxPlanStringLength": "100000",
}


def _configured(session: Any) -> Any:
    for key, value in SPARK_SQL_CONF.items():
        session.conf.set(key, value)
    return session


def _under_spark_submit() -> bool:
    """True inside an application started by `spark-submit` (it sets spark.master)."""
    from pyspark import SparkConf

    return "SPARK_SUBMIT" in os.environ or SparkConf().contains("spark.master")


def _spark_backend(session: Any) -> BaseBackend:
    con = ibis.pyspark.connect(session)
    cached = con._create_cached_table

    def create_cached_table(name: str, expr: Any) -> Any:
        # Ibis' Spark backend compiles `.cache()` without registering the in-memory tables
        # (ibis.memtable) the expression uses; execution paths do, so do it here too.
        con._register_in_memory_tables(expr)
        return cached(name, expr)

    con._create_cached_table = create_cached_table  # type: ignore[method-assign]
    return con


#: Share of the machine's memory DuckDB may use (the rest: Python, Arrow results, the OS).
#: A quarter (6 GB on a 24 GB machine): the 10 M-case annual clearing ran as fast with a
#: 6 GB limit as with 12 GB and stayed within 6.4 GB (issue 16 §2, docs/benchmarks.md);
#: beyond the limit DuckDB spills to its temp directory.
DUCKDB_MEMORY_SHARE = 0.25


def duckdb_memory_limit() -> str:
    """`OPENDIP_DUCKDB_MEMORY` (e.g. "8GB"), else a quarter of the physical memory."""
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


def ordered_collect(value: Any, *keys: Any, where: Any = None) -> Any:
    """`value.collect(order_by=keys)` on every engine (Spark's backend cannot order an
    aggregation): collects (keys…, value) structs, sorts them, keeps the values. Keys sort
    ascending; negate a numeric key for descending order."""
    fields = {f"k{i}": key for i, key in enumerate(keys)}
    fields["v"] = value
    return ibis.struct(fields).collect(where=where).sort().map(lambda item: item.v)


@ibis.udf.scalar.builtin(name="xxhash64")
def _xxhash64(value) -> dt.int64:  # type: ignore[empty-body]
    """Spark's 64-bit hash (its `hash` has 32 bits)."""


def hash64(value: ibis.Value, spark: bool = False) -> ibis.IntegerValue:
    """A 64-bit hash of `value`: DuckDB's `hash`, Spark's `xxhash64` (its `hash` has 32
    bits). A join key, never an identity: callers check collisions."""
    return _xxhash64(value) if spark else value.hash()


def table_from_arrow(con: BaseBackend, table: pa.Table, name: str) -> ibis.Table:
    """Register an Arrow table with the backend and return it as an Ibis table.

    Spark converts in-memory Arrow through pandas, which loses nulls in decimal columns;
    there the table goes through Parquet instead, the same path batch steps use between them.
    """
    if con.name == "pyspark":
        path = Path(tempfile.mkdtemp(prefix="opendip-spark-")) / f"{name}.parquet"
        pq.write_table(table, path)
        return con.read_parquet(str(path), table_name=name)
    if con.name == "duckdb":
        # Ibis' create_table goes through ibis.memtable, whose dispatch imports pyarrow.dataset
        # and with it pandas (~0.3 s of every `opendip group`): hand the Arrow table to DuckDB.
        # The table is made as Ibis makes it: its columns typed from the Arrow schema (and
        # NOT NULL where the schema says so), then filled.
        import sqlglot as sg
        import sqlglot.expressions as sge

        raw = con.con  # type: ignore[attr-defined]
        scan = f"opendip_arrow_{next(_arrow_scans)}"
        target = sg.table(name, quoted=True)
        columns = ibis.Schema.from_pyarrow(table.schema).to_sqlglot_column_defs("duckdb")
        create = sge.Create(kind="TABLE", this=sge.Schema(this=target, expressions=columns))
        create.set("replace", True)
        raw.register(scan, table)
        try:
            raw.execute(create.sql("duckdb"))
            raw.execute(f"INSERT INTO {target.sql('duckdb')} SELECT * FROM {scan}")
        finally:
            raw.unregister(scan)
        return con.table(name)
    return con.create_table(name, table, overwrite=True)


_arrow_scans = iter(range(1, 1 << 62))


#: Rows per Parquet row group in the large files OpenDIP writes (cases, grouped cases).
#: DuckDB reads a Parquet file in parallel by row group: a 1 M-row file written as one row
#: group (pyarrow's default is up to 1 Mi rows) is scanned, and every operator fed by that
#: scan runs, on one thread. DuckDB's own row-group size; issue 16 §3, docs/benchmarks.md.
PARQUET_ROW_GROUP_ROWS = 122_880


_spark_views = iter(range(1, 1 << 62))


def read_parquet(
    con: BaseBackend, path: str | Path | Sequence[str | Path], name: str | None = None
) -> ibis.Table:
    """Read a Parquet file, a glob, or a list of files into the backend (one table)."""
    kwargs: dict[str, Any] = {}
    if name:
        kwargs["table_name"] = name
    if isinstance(path, str | Path):
        return con.read_parquet(str(path), **kwargs)
    paths = [str(p) for p in path]
    if con.name == "pyspark":
        # Ibis' Spark backend takes one path; Spark itself reads a list.
        view = name or f"opendip_parquet_{next(_spark_views)}"
        con._session.read.parquet(*paths).createOrReplaceTempView(view)  # type: ignore[attr-defined]
        return con.table(view)
    return con.read_parquet(paths, **kwargs)


def to_arrow(expr: ibis.Table) -> pa.Table:
    """Execute an expression and return Arrow."""
    return expr.to_pyarrow()


def fetch_arrow(expr: ibis.Table) -> pa.Table:
    """Execute an expression and return DuckDB's own Arrow result (other engines: Ibis').

    For callers that read the result's columns by name and cast them themselves (a contract's
    `conform`): Ibis' `to_pyarrow` on DuckDB converts the result to the expression's types
    through a module that imports pandas (~0.3 s of a process such as `opendip group`)."""
    con = expr._find_backend(use_default=True)
    if con.name != "duckdb":
        return expr.to_pyarrow()
    con._run_pre_execute_hooks(expr)  # registers in-memory tables the expression reads
    return con.con.sql(con.compile(expr)).to_arrow_table()  # type: ignore[attr-defined]


def write_parquet(expr: ibis.Table | pa.Table, path: str | Path) -> Path:
    """Execute (if needed) and write one Parquet file, in row groups of
    `PARQUET_ROW_GROUP_ROWS` rows (read back in parallel); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = expr if isinstance(expr, pa.Table) else expr.to_pyarrow()
    pq.write_table(table, path, row_group_size=PARQUET_ROW_GROUP_ROWS)
    return path
