"""Monthly pre-settlement and annual clearing runs, in a background thread.

A run calls the pipeline modules' public Python APIs (grouping, scoring, settlement) when
they are installed; progress and the manifest live in the store, so a page reload (or
another browser) sees the same state. Runs interrupted by a restart are marked failed.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import re
import threading
import traceback
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from opendip.store import Run, Store, User, utcnow
from opendip.store import repositories as repo
from opendip.web.region import RegionData
from opendip.web.settings import Settings
from opendip.workflow import special_review_table

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
YEAR = re.compile(r"^\d{4}$")


class RunRefused(ValueError):
    """The run cannot be started (Chinese message)."""


class ModuleMissing(RuntimeError):
    """A pipeline module the run needs is not installed yet."""


def module_available(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def settlement_available() -> bool:
    return module_available("opendip.settlement") and module_available("opendip.settlement.run")


class RunService:
    def __init__(self, store: Store, settings: Settings, region: RegionData) -> None:
        self.store = store
        self.settings = settings
        self.region = region
        self._threads: dict[int, threading.Thread] = {}

    # -- lifecycle -------------------------------------------------------------------------
    def recover(self) -> int:
        """Runs left queued/running by a previous process are marked failed."""
        with self.store.session() as s:
            res = s.execute(
                update(Run)
                .where(Run.status.in_(("queued", "running")))
                .values(
                    status="failed", message="服务重启，运行中断，请重新发起", finished_at=utcnow()
                )
            )
            return int(res.rowcount or 0)

    def start(self, s: Session, user: User, kind: str, period: str) -> Run:
        period = (period or "").strip()
        if kind == "monthly":
            if not MONTH.match(period):
                raise RunRefused("月度预结算的期间须为 YYYY-MM，例如 2026-03")
        elif kind == "annual":
            if not YEAR.match(period):
                raise RunRefused("年终清算的期间须为 YYYY，例如 2026")
        else:
            raise RunRefused(f"未知的运行类型：{kind}")
        busy = s.scalar(
            select(Run).where(
                Run.kind == kind, Run.period == period, Run.status.in_(("queued", "running"))
            )
        )
        if busy is not None:
            raise RunRefused(f"{period} 已有一个运行中的任务（第 {busy.id} 号），请等待其完成")
        run = Run(kind=kind, period=period, params={}, status="queued", created_by=user.id)
        s.add(run)
        s.flush()
        repo.audit(s, user, "run.start", "run", run.id, {"kind": kind, "period": period})
        s.commit()
        if self.settings.background_runs:
            thread = threading.Thread(target=self.execute, args=(run.id,), daemon=True)
            self._threads[run.id] = thread
            thread.start()
        else:
            self.execute(run.id)
        return run

    def wait(self, run_id: int, timeout: float = 120) -> None:
        thread = self._threads.get(run_id)
        if thread is not None:
            thread.join(timeout)

    def _progress(self, run_id: int, progress: int, step: str, **values: Any) -> None:
        with self.store.session() as s:
            s.execute(
                update(Run).where(Run.id == run_id).values(progress=progress, step=step, **values)
            )

    def execute(self, run_id: int) -> None:
        with self.store.session() as s:
            run = s.get(Run, run_id)
            if run is None:
                return
            kind, period = run.kind, run.period
        self._progress(run_id, 1, "开始", status="running", started_at=utcnow())
        try:
            if kind == "monthly":
                manifest = self._monthly(run_id, period)
            else:
                manifest = self._annual(run_id, period)
        except (ModuleMissing, ValueError, OSError) as exc:
            self._progress(
                run_id, 100, "失败", status="failed", message=str(exc), finished_at=utcnow()
            )
            return
        except Exception as exc:  # an unexpected pipeline error: keep the trace in the run
            self._progress(
                run_id,
                100,
                "失败",
                status="failed",
                message=f"运行出错：{exc}\n{traceback.format_exc(limit=5)}",
                finished_at=utcnow(),
            )
            return
        self._progress(
            run_id, 100, "完成", status="succeeded", manifest=manifest, finished_at=utcnow()
        )

    def run_dir(self, run_id: int) -> Path:
        path = self.settings.platform_dir / "runs" / str(run_id)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _inputs(self) -> tuple[Any, Any, Any]:
        from opendip.policy import PolicyFile, demo_policy_path

        policy_path = self.settings.policy_path or self.region.policy_path() or demo_policy_path()
        policy_file = PolicyFile.read(policy_path)
        directory = self.region.directory_path(None)
        if directory is None:
            raise ValueError("区域目录中没有病种目录（directory.parquet），请先构建或导入病种目录")
        return policy_file, directory, policy_path

    def _monthly(self, run_id: int, period: str) -> dict[str, Any]:
        if not module_available("opendip.grouping"):
            raise ModuleMissing("病例入组模块尚未启用，无法运行月度预结算")
        from opendip.codes import demo_code_tables
        from opendip.engine import connect, table_from_arrow
        from opendip.grouping import group_cases
        from opendip.grouping.inputs import diagnosis_codes, procedure_types
        from opendip.grouping.summary import grouping_summary

        out = self.run_dir(run_id)
        policy_file, directory, policy_path = self._inputs()
        year, month = (int(x) for x in period.split("-"))
        policy = policy_file.at(dt.date(year, month, 1))
        with self.store.session() as s:
            uploads = repo.accepted_upload_files(s)
            reviews = special_review_table(repo.final_special_reviews(s))
        self._progress(run_id, 10, "读取病例")
        with self.region._lock:
            cases_expr = self.region.cases_expr(uploads)
            if cases_expr is None:
                raise ValueError("区域目录中没有病例数据")
            month_cases = cases_expr.filter(cases_expr.settle_month == period).to_pyarrow()
        if month_cases.num_rows == 0:
            raise ValueError(f"{period} 没有结算病例")
        con = connect()
        cases = table_from_arrow(con, month_cases, "run_cases")
        codes = demo_code_tables()
        self._progress(run_id, 25, f"病例入组（{month_cases.num_rows:,} 例）")
        grouped = group_cases(
            cases,
            con.read_parquet(str(directory)),
            procedure_types(con, codes),
            policy,
            diagnosis_codes=diagnosis_codes(con, codes),
        ).to_pyarrow()
        pq.write_table(grouped, out / "grouped.parquet")
        pq.write_table(month_cases, out / "cases.parquet")
        pq.write_table(reviews, out / "special_reviews.parquet")
        summary = grouping_summary(grouped)
        manifest: dict[str, Any] = {
            "period": period,
            "policy": str(policy_path),
            "policy_version": policy.version,
            "directory": str(directory),
            "cases": month_cases.num_rows,
            "grouping_rate": summary.get("grouping_rate"),
            "special_reviews": reviews.num_rows,
            "outputs": {
                "grouped": str(out / "grouped.parquet"),
                "cases": str(out / "cases.parquet"),
            },
            "steps": ["入组"],
        }
        if (
            module_available("opendip.scoring")
            and (self.region.data_dir / "hospitals.parquet").exists()
        ):
            self._progress(run_id, 60, "分值计算")
            manifest |= self._score(
                con, cases, grouped, directory, policy_file, policy, reviews, out
            )
        else:
            manifest["notes"] = ["分值计算模块尚未启用：本次仅完成入组"]
        if settlement_available():
            manifest.setdefault("notes", []).append("结算模块已安装，月度结算汇总待对接")
        else:
            manifest.setdefault("notes", []).append(
                "结算清算模块尚未启用：未计算月度预付与质量保证金"
            )
        (out / "manifest.json").write_text(
            json.dumps(manifest, ensure_ascii=False, indent=2, default=str), encoding="utf-8"
        )
        return manifest

    def _score(
        self, con, cases, grouped, directory, policy_file, policy, reviews, out
    ) -> dict[str, Any]:
        from opendip.engine import table_from_arrow
        from opendip.scoring import score_cases

        metrics_path = self.region.data_dir / "directory.metrics.json"
        mean_fen = None
        if metrics_path.exists():
            mean_fen = json.loads(metrics_path.read_text(encoding="utf-8")).get("all_case_mean_fen")
        history = sorted(self.region.data_dir.glob("cases_*.parquet"))[:-1]
        point_values: dict[str, Decimal] = budget_point_values(policy, mean_fen, history)
        result = score_cases(
            cases,
            table_from_arrow(con, grouped, "run_grouped"),
            con.read_parquet(str(directory)),
            con.read_parquet(str(self.region.data_dir / "hospitals.parquet")),
            policy_file,
            reviews=reviews if reviews.num_rows else None,
            point_values=point_values,
            all_case_mean_fen=mean_fen,
        )
        scored = result.scored.to_pyarrow()
        pq.write_table(scored, out / "scored.parquet")
        totals: dict[str, int] = {}
        for col in ("dip_amount_fen", "fund_payable_fen", "ffs_fund_fen"):
            if col in scored.column_names:
                totals[col] = int(sum(v or 0 for v in scored.column(col).to_pylist()))
        return {
            "scored_cases": scored.num_rows,
            "point_values": {k: str(v) for k, v in point_values.items()},
            "totals_fen": totals,
            "outputs_scored": str(out / "scored.parquet"),
            "steps": ["入组", "计分"],
        }

    def _annual(self, run_id: int, period: str) -> dict[str, Any]:
        if not settlement_available() or not module_available("opendip.grouping"):
            raise ModuleMissing("年终清算模块（opendip.settlement）尚未启用，无法运行年终清算")
        from opendip.codes import demo_code_tables
        from opendip.engine import connect, table_from_arrow
        from opendip.grouping import group_cases
        from opendip.grouping.inputs import diagnosis_codes, procedure_types
        from opendip.settlement.run import InputFiles, run_year

        out = self.run_dir(run_id)
        policy_file, directory, policy_path = self._inputs()
        year = int(period)
        hospitals = self.region.data_dir / "hospitals.parquet"
        if not hospitals.exists():
            raise ValueError("区域目录中没有医疗机构表（hospitals.parquet），无法年终清算")
        with self.store.session() as s:
            uploads = repo.accepted_upload_files(s)
            reviews = special_review_table(repo.final_special_reviews(s))
        self._progress(run_id, 10, "读取全年病例")
        with self.region._lock:
            cases_expr = self.region.cases_expr(uploads)
            if cases_expr is None:
                raise ValueError("区域目录中没有病例数据")
            year_cases = cases_expr.filter(cases_expr.settle_month.startswith(period)).to_pyarrow()
        if year_cases.num_rows == 0:
            raise ValueError(f"{period} 年没有结算病例")
        con = connect()
        codes = demo_code_tables()
        self._progress(run_id, 25, f"病例入组（{year_cases.num_rows:,} 例）")
        grouped = group_cases(
            table_from_arrow(con, year_cases, "year_cases"),
            con.read_parquet(str(directory)),
            procedure_types(con, codes),
            policy_file.at(dt.date(year, 1, 1)),
            diagnosis_codes=diagnosis_codes(con, codes),
        ).to_pyarrow()
        pq.write_table(year_cases, out / "cases.parquet")
        pq.write_table(grouped, out / "grouped.parquet")
        pq.write_table(reviews, out / "special_reviews.parquet")
        self._progress(run_id, 60, "年终清算（结算点值、考核、结余留用/超支分担、医共体）")
        files = InputFiles(
            policy=Path(policy_path),
            cases=out / "cases.parquet",
            grouped=out / "grouped.parquet",
            directory=Path(directory),
            hospitals=hospitals,
            reviews=out / "special_reviews.parquet" if reviews.num_rows else None,
        )
        summary = run_year(files, year, out / "settlement", case_excel=False)
        manifest = {
            "period": period,
            "policy": str(policy_path),
            "cases": year_cases.num_rows,
            "point_values": {k: str(v) for k, v in dict(summary["point_values"]).items()},
            "outputs": {"settlement": str(out / "settlement")},
            "steps": ["入组", "计分", "年终清算"],
        }
        (out / "manifest.json").write_text(
            json.dumps(manifest, ensure_ascii=False, indent=2, default=str), encoding="utf-8"
        )
        return manifest


def budget_point_values(policy, mean_fen: int | None, history_files: list | None = None) -> dict:
    """预算点值 per pool: the policy's value via the settlement module when present, else
    scoring's rule (history's all-case mean ÷ base score)."""
    out = {}
    for pool in policy.pool_ids:
        try:
            from opendip.settlement.pointvalue import budget_point_value as settle_pv

            out[pool] = settle_pv(policy, pool, None)
            continue
        except (ImportError, ValueError):
            pass
        from opendip.scoring.rules import budget_point_value

        out[pool] = budget_point_value(policy, pool, mean_fen)
    return out
