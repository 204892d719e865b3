"""`opendip bench`: time each pipeline stage on a generated region.

Each domain module that has a batch stage provides `opendip.<module>.bench:run(ctx)`,
registered in `STAGES` in pipeline order. A stage reads what earlier stages left in
`ctx.artifacts` and records its own outputs there. Stages whose module is not present
are skipped, so the skeleton works before every module exists.
"""

from __future__ import annotations

import importlib
import platform
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opendip.policy import demo_policy_path


@dataclass
class BenchContext:
    workdir: Path
    n_cases: int
    seed: int = 7
    engine: str = "duckdb"
    #: The policy every stage uses (default: the demo region's).
    policy_path: Path = field(default_factory=lambda: demo_policy_path())
    artifacts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StageResult:
    rows: int
    note: str = ""


@dataclass(frozen=True)
class StageTiming:
    name: str
    label: str
    rows: int
    seconds: float
    peak_rss_mb: float
    note: str = ""

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


#: (name, Chinese label, "module:function") in pipeline order.
STAGES: list[tuple[str, str, str]] = [
    ("synth", "生成合成数据", "opendip.synth.bench:run"),
    ("import", "导入与校验", "opendip.ingest.bench:run"),
    ("qc", "结算清单质控", "opendip.qc.bench:run"),
    ("directory", "病种目录构建", "opendip.directory.bench:run"),
    ("grouping", "病例入组", "opendip.grouping.bench:run"),
    ("scoring", "分值计算", "opendip.scoring.bench:run"),
    ("credit_previous", "上年度信用评价", "opendip.credit.bench:run_previous"),
    ("assessment", "年度考核", "opendip.assessment.bench:run"),
    ("settlement", "结算清算", "opendip.settlement.bench:run"),
    ("supervision", "智能监管", "opendip.supervision.bench:run"),
    ("credit", "信用评价", "opendip.credit.bench:run"),
    ("report", "报告生成", "opendip.reports.bench:run"),
]


def _load(target: str) -> Callable[[BenchContext], StageResult] | None:
    module_name, _, func = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            return None
        raise
    return getattr(module, func)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def available_stages() -> list[tuple[str, str, Callable[[BenchContext], StageResult]]]:
    out = []
    for name, label, target in STAGES:
        fn = _load(target)
        if fn is not None:
            out.append((name, label, fn))
    return out


def run_bench(
    ctx: BenchContext,
    only: list[str] | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> list[StageTiming]:
    """Run the available stages in order; `only` limits which are timed and reported
    (earlier stages still run when a later one needs their artifacts)."""
    timings = []
    for name, label, fn in available_stages():
        if on_stage:
            on_stage(label)
        start = time.perf_counter()
        result = fn(ctx)
        seconds = time.perf_counter() - start
        if only is None or name in only:
            timings.append(
                StageTiming(name, label, result.rows, seconds, peak_rss_mb(), result.note)
            )
    return timings


def machine_description() -> str:
    import os

    return f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
