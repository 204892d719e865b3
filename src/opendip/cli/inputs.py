"""Shared CLI inputs: code tables, parquet globs, the engine."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import ibis.expr.types as ir
import pyarrow.parquet as pq
import typer
from ibis.backends import BaseBackend

from opendip.cli.common import fail
from opendip.codes import CodeTables, demo_code_tables
from opendip.engine import connect
from opendip.engine import read_parquet as _read_parquet
from opendip.grouping.inputs import diagnosis_codes, procedure_types
from opendip.policy import Policy, PolicyError, PolicyFile


def load_codes(codes_dir: Path | None) -> CodeTables:
    """The region's code tables (written by `opendip codes load`), or the demo tables."""
    if codes_dir is None:
        return demo_code_tables()
    try:
        return CodeTables(
            pq.read_table(codes_dir / "diagnoses.parquet"),
            pq.read_table(codes_dir / "procedures.parquet"),
            source=str(codes_dir),
        )
    except OSError as exc:
        fail(f"无法读取代码表目录 {codes_dir}：{exc}")


def load_policy_file(path: Path) -> tuple[PolicyFile, Policy]:
    try:
        pf = PolicyFile.read(path)
        return pf, pf.at()
    except PolicyError as exc:
        fail(str(exc))


def parquet_files(paths: list[Path]) -> list[str]:
    files: list[str] = []
    for p in paths:
        if p.is_dir():
            files += sorted(str(f) for f in p.glob("cases_*.parquet")) or sorted(
                str(f) for f in p.glob("*.parquet")
            )
        elif p.exists():
            files.append(str(p))
        else:
            fail(f"文件不存在：{p}")
    if not files:
        fail("没有找到输入文件")
    return files


def read_tables(con: BaseBackend, paths: list[Path]) -> ir.Table:
    return _read_parquet(con, parquet_files(paths))


class Engine(StrEnum):
    duckdb = "duckdb"
    spark = "spark"


EngineOpt = Annotated[
    Engine,
    typer.Option(
        "--engine",
        help="计算引擎：duckdb（默认，单机进程内）或 spark（本地或集群，见 docs/scale.md）",
    ),
]


def open_engine(engine: Engine | str = Engine.duckdb) -> BaseBackend:
    """The batch engine chosen with --engine; a clear message when Spark is missing."""
    name = engine.value if isinstance(engine, Engine) else str(engine)
    try:
        return connect(name)  # type: ignore[arg-type]
    except ImportError:
        fail("未安装 Spark 引擎：pip install 'opendip[spark]'，并需要 Java 17（见 docs/scale.md）")
    except Exception as exc:
        if name != "spark":
            raise
        fail(f"无法启动 Spark 会话：{exc}（Java 17 与 Spark 设置见 docs/scale.md）")


__all__ = [
    "Engine",
    "EngineOpt",
    "connect",
    "diagnosis_codes",
    "load_codes",
    "load_policy_file",
    "open_engine",
    "parquet_files",
    "procedure_types",
    "read_tables",
]
