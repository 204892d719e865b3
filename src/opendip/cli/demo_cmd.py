"""`opendip demo`: the demo region end to end, on embedded DuckDB."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from typing import Annotated, Any

import pyarrow.parquet as pq
import typer
from rich.table import Table

from opendip.bench import BenchContext, StageTiming, peak_rss_mb, run_bench
from opendip.cli.common import console, ensure_dir, progress
from opendip.web.demo_runs import INDEX, settle_demo_months


def demo(
    out: Annotated[Path, typer.Option("--out", help="示范区域输出目录 / output directory")] = Path(
        "demo-data"
    ),
    cases_per_year: Annotated[
        int, typer.Option("--cases-per-year", help="当年病例数（历史年份各一半）")
    ] = 100_000,
    seed: Annotated[int, typer.Option(help="随机种子 / seed")] = 7,
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="完成后启动网页平台 / start the web UI")
    ] = True,
) -> None:
    """生成示范区域并端到端运行全流程 / generate the demo region and run the whole pipeline."""
    ensure_dir(out)
    ctx = BenchContext(workdir=out, n_cases=cases_per_year, seed=seed)
    with progress() as bar:
        task = bar.add_task("示范区域", total=None)
        timings = run_bench(ctx, on_stage=lambda s: bar.update(task, description=s))
        bar.update(task, description="各月月度预结算（平台结算管理）")
        start = time.perf_counter()
        months = settle_demo_months(ctx)
        seconds = time.perf_counter() - start
        bar.update(task, total=1, completed=1, description="完成")
    if months:
        timings.append(
            StageTiming(
                "months",
                "各月月度预结算",
                len(months) - 1,
                seconds,
                peak_rss_mb(),
                f"{len(months) - 1} 个月 + 年终清算登记为平台已公示运行（{INDEX}）",
            )
        )

    table = Table(title=f"示范区域全流程 · {out}")
    for col in ("步骤", "行数", "耗时(秒)", "说明"):
        table.add_column(col)
    for t in timings:
        table.add_row(t.label, f"{t.rows:,}", f"{t.seconds:.2f}", t.note)
    console.print(table)

    summary = {
        "stages": [
            {"stage": t.name, "rows": t.rows, "seconds": round(t.seconds, 3), "note": t.note}
            for t in timings
        ],
        "artifacts": {k: _describe(v) for k, v in sorted(ctx.artifacts.items())},
    }
    (out / "demo-summary.json").write_text(
        json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    console.print(f"摘要已写入 {out / 'demo-summary.json'}")

    if serve:
        if importlib.util.find_spec("opendip.web") is None:
            console.print("[yellow]网页平台模块尚未启用，跳过启动。[/]")
            return
        from opendip.cli import serve_cmd

        serve_cmd.serve(data=out)


def _describe(value: Any) -> Any:
    if isinstance(value, Path) and value.suffix == ".parquet" and value.exists():
        return {"path": str(value), "rows": pq.ParquetFile(value).metadata.num_rows}
    if isinstance(value, Path | str):
        return str(value)
    if isinstance(value, list | tuple):
        return [_describe(v) for v in value]
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return type(value).__name__
