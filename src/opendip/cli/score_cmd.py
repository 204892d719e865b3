"""`opendip score`: score grouped cases (病例分值) and write the SCORED table."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

import typer

from opendip.cli.common import console, fail
from opendip.cli.inputs import Engine, EngineOpt, open_engine
from opendip.engine import read_parquet
from opendip.policy import PolicyError, PolicyFile
from opendip.scoring import ScoringError, score_cases
from opendip.settlement.output import write_manifest, write_parquet
from opendip.settlement.run import read_table


def _point_values(items: list[str]) -> dict[str, Decimal] | None:
    if not items:
        return None
    out = {}
    for item in items:
        pool, _, value = item.partition("=")
        try:
            out[pool.strip()] = Decimal(value)
        except InvalidOperation:
            fail(f"--point-value 格式应为 险种=点值（如 employee=12.5），收到 {item!r}")
    return out


def score(
    policy: Annotated[Path, typer.Option("--policy", help="政策文件 / policy YAML")],
    cases: Annotated[Path, typer.Option("--cases", help="病例 Parquet / cases")],
    grouped: Annotated[Path, typer.Option("--grouped", help="入组结果 Parquet / grouped")],
    directory: Annotated[Path, typer.Option("--directory", help="病种目录 Parquet")],
    hospitals: Annotated[Path, typer.Option("--hospitals", help="医疗机构 Parquet")],
    out: Annotated[Path, typer.Option("--out", help="输出目录 / output directory")],
    reviews: Annotated[
        Path | None,
        typer.Option("--reviews", help="特例单议结果（case_id, decision, reviewed_score）"),
    ] = None,
    point_value: Annotated[
        list[str], typer.Option("--point-value", help="按点值计算金额：险种=点值，可重复")
    ] = [],  # noqa: B006
    engine: EngineOpt = Engine.duckdb,
) -> None:
    """计算每个病例的分值（可选按给定点值计算金额）/ score every case."""
    try:
        pf = PolicyFile.read(policy)
        con = open_engine(engine)
        result = score_cases(
            read_parquet(con, cases, "cases"),
            read_parquet(con, grouped, "grouped"),
            read_parquet(con, directory, "directory"),
            read_parquet(con, hospitals, "hospitals"),
            pf,
            reviews=read_table(reviews, "reviews") if reviews else None,
            point_values=_point_values(point_value),
        )
        scored = result.contract().to_pyarrow()
        not_dip = result.not_dip.order_by("case_id").to_pyarrow()
    except (ScoringError, PolicyError) as exc:
        fail(str(exc))
    out.mkdir(parents=True, exist_ok=True)
    outputs = [
        write_parquet(scored, out / "scored.parquet"),
        write_parquet(not_dip, out / "not_dip.parquet"),
    ]
    write_manifest(
        out,
        command="score",
        inputs={
            "cases": cases,
            "grouped": grouped,
            "directory": directory,
            "hospitals": hospitals,
            "reviews": reviews,
        },
        policy=pf,
        parameters={"point_values": _point_values(point_value) or {}},
        row_counts={"dip_cases": scored.num_rows, "not_dip_cases": not_dip.num_rows},
        outputs=outputs,
    )
    counts = {}
    for d in scored.column("deviation").to_pylist():
        counts[d] = counts.get(d, 0) + 1
    console.print(
        f"已计分 {scored.num_rows:,} 例（未入组按项目付费 {not_dip.num_rows:,} 例）；"
        f"偏差类型：{counts}；输出 {out}"
    )
