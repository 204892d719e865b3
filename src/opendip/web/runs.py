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
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from opendip.store import Run, Store, User, utcnow
from opendip.store import repositories as repo
from opendip.web.region import RegionData
from opendip.web.run_reports import PUBLICATION, REPORT, RunReports
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
        self.reports = RunReports(store, settings, region)
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

    def start(
        self,
        s: Session,
        user: User,
        kind: str,
        period: str,
        review_cap_override: str | None = None,
    ) -> Run:
        period = (period or "").strip()
        override = (review_cap_override or "").strip() if kind == "annual" else ""
        if kind == "monthly":
            if not MONTH.match(period):
                raise RunRefused("月度预结算的期间须为 YYYY-MM，例如 2026-03")
        elif kind in ("annual", "supervision"):
            if not YEAR.match(period):
                what = "年终清算" if kind == "annual" else "智能监管"
                raise RunRefused(f"{what}的期间须为 YYYY，例如 2026")
        else:
            raise RunRefused(f"未知的运行类型：{kind}")
        busy = s.scalar(
            select(Run).where(
                Run.kind == kind, Run.period == period, Run.status.in_(("queued", "running"))
            )
        )
        if busy is not None:
            raise RunRefused(f"{period} 已有一个运行中的任务（第 {busy.id} 号），请等待其完成")
        params = {"review_cap_override": override} if override else {}
        run = Run(kind=kind, period=period, params=params, status="queued", created_by=user.id)
        s.add(run)
        s.flush()
        repo.audit(s, user, "run.start", "run", run.id, {"kind": kind, "period": period})
        if override:  # the agency's explicit decision, before anything is known to exceed
            repo.audit(s, user, "run.review_cap_override", "run", run.id, {"reason": override})
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
            elif kind == "supervision":
                manifest = self._supervision(run_id, period)
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

    def _group_period(
        self, run_id: int, kind: str, period: str
    ) -> tuple[Path, Any, dict[str, Any]]:
        """Group the period's cases (a month, or a year) into runs/<id>/ and return the run
        directory, the settlement's InputFiles and the manifest's common part."""
        if not settlement_available() or not module_available("opendip.grouping"):
            raise ModuleMissing("结算清算模块（opendip.settlement）尚未启用，无法运行结算")
        from opendip.codes import demo_code_tables
        from opendip.engine import connect, table_from_arrow
        from opendip.grouping.summary import grouping_summary
        from opendip.pipeline import check_and_group
        from opendip.settlement.run import InputFiles, directory_all_case_mean_fen

        out = self.run_dir(run_id)
        policy_file, directory, policy_path = self._inputs()
        year = int(period[:4])
        first_day = dt.date(year, int(period[5:]) if kind == "monthly" else 1, 1)
        hospitals = self.region.data_dir / "hospitals.parquet"
        if not hospitals.exists():
            raise ValueError("区域目录中没有医疗机构表（hospitals.parquet），无法结算")
        with self.store.session() as s:
            uploads = repo.accepted_upload_files(s)
            reviews = special_review_table(repo.final_special_reviews(s))
            # Last year's credit grades in force (repairs applied) set this year's
            # withholding share and prepayment eligibility (policy `credit`).
            from opendip.store.credit import grades_in_force

            grades = grades_in_force(s, str(year - 1))
        self._progress(run_id, 10, "读取病例" if kind == "monthly" else "读取全年病例")
        with self.region._lock:
            cases_expr = self.region.cases_expr(uploads)
            if cases_expr is None:
                raise ValueError("区域目录中没有病例数据")
            in_period = (
                cases_expr.settle_month == period
                if kind == "monthly"
                else cases_expr.settle_month.startswith(f"{period}-")
            )
            cases = cases_expr.filter(in_period).to_pyarrow()
        if cases.num_rows == 0:
            what = f"{period} 年" if kind == "annual" else f"{period} "
            raise ValueError(f"{what}没有结算病例")
        # The engine pipeline (opendip.pipeline), as `opendip demo` and the CLI run it: QC
        # first, QC-blocking cases are not grouped (so not paid by DIP), then settlement.
        con = connect()
        policy = policy_file.at(first_day)
        self._progress(run_id, 25, f"结算清单质控与病例入组（{cases.num_rows:,} 例）")
        checked = check_and_group(
            con,
            table_from_arrow(con, cases, "run_cases"),
            con.read_parquet(str(directory)),
            demo_code_tables(),
            policy,
            policy_path,
            qc_out=out / "qc",
        )
        grouped = checked.grouped
        pq.write_table(cases, out / "cases.parquet")
        pq.write_table(grouped, out / "grouped.parquet")
        pq.write_table(reviews, out / "special_reviews.parquet")
        if grades:
            pq.write_table(
                pa.table({"hospital_id": list(grades), "grade": list(grades.values())}),
                out / "credit_grades.parquet",
            )
        files = InputFiles(
            policy=Path(policy_path),
            cases=out / "cases.parquet",
            grouped=out / "grouped.parquet",
            directory=Path(directory),
            hospitals=hospitals,
            reviews=out / "special_reviews.parquet" if reviews.num_rows else None,
            all_case_mean_fen=directory_all_case_mean_fen(Path(directory))
            or self.region.all_case_mean_fen(),
            credit=out / "credit_grades.parquet" if grades else None,
        )
        if policy.prepayment is not None:
            files.prepayment_base, files.previous_assessment = self._prepayment_inputs(year, out)
        blocking = int(pc.sum(checked.case_status.column("blocking")).as_py() or 0)
        manifest: dict[str, Any] = {
            "period": period,
            "policy": str(policy_path),
            "policy_version": policy.version,
            "directory": str(directory),
            "cases": cases.num_rows,
            "qc_blocking": blocking,
            "grouping_rate": grouping_summary(grouped).get("grouping_rate"),
            "special_reviews": reviews.num_rows,
            "outputs": {
                "cases": str(out / "cases.parquet"),
                "grouped": str(out / "grouped.parquet"),
                "qc": str(out / "qc"),
                "settlement": str(out / "settlement"),
            },
            # The settled cases (SCORED with money): publication, home page, case pages.
            "outputs_scored": str(out / "settlement" / "cases.parquet"),
        }
        return out, files, manifest

    def _prepayment_inputs(self, year: int, out: Path) -> tuple[Path | None, Path | None]:
        """预付金 inputs from last year: its published annual clearing (DIP payment by hospital
        × pool, and its assessment), else the demo's DATA/credit/<year−1>/ files, else last
        year's settlement lists in the region directory (fund payment)."""
        from opendip.settlement.prepayment import write_base

        previous = str(year - 1)
        with self.store.session() as s:
            run = next(
                (r for r in repo.published_runs(s) if r.kind == "annual" and r.period == previous),
                None,
            )
            settlement = self.settlement_dir(run) if run is not None else None
        if settlement is not None:
            write_base(out / "prepayment_base.parquet", clearing=settlement / "hospitals.parquet")
            assessment = settlement.parent / "assessment" / "assessment.parquet"
            return out / "prepayment_base.parquet", assessment if assessment.is_file() else None
        demo = self.region.data_dir / "credit" / previous
        if (demo / "prepayment_base.parquet").is_file():
            assessment = demo / "assessment.parquet"
            return demo / "prepayment_base.parquet", assessment if assessment.is_file() else None
        cases = self.region.data_dir / f"cases_{previous}.parquet"
        if cases.is_file():
            return write_base(out / "prepayment_base.parquet", cases=cases), None
        return None, None

    def _monthly(self, run_id: int, period: str) -> dict[str, Any]:
        from opendip.settlement.run import run_month

        out, files, manifest = self._group_period(run_id, "monthly", period)
        self._progress(run_id, 60, "月度预结算（预算点值、质量保证金、预付）")
        summary = run_month(files, period, out / "settlement", excel=True)
        manifest |= month_manifest(summary)
        self._forecast(run_id, period, out, manifest)
        self._build_reports(run_id, out, manifest)
        return self._finish(out, manifest)

    def _annual(self, run_id: int, period: str) -> dict[str, Any]:
        from opendip.settlement.run import run_year

        out, files, manifest = self._group_period(run_id, "annual", period)
        self._progress(run_id, 60, "年终清算（结算点值、考核、结余留用/超支分担、医共体）")
        with self.store.session() as s:
            run = s.get(Run, run_id)
            override = (run.params or {}).get("review_cap_override") if run else None
            creator = run.created_by if run else None
            # Confirmed supervision leads of the year carry adjustments the clearing applies.
            confirmed = repo.confirmed_findings(s, int(period))
        findings = None
        if confirmed:
            import pyarrow as pa
            import pyarrow.parquet as pq

            findings = out / "findings_input.parquet"
            pq.write_table(pa.Table.from_pylist(confirmed), findings)
            manifest["findings_applied"] = len(confirmed)
        summary = run_year(
            files,
            int(period),
            out / "settlement",
            assessment=self._assess(out, files, int(period), manifest),
            case_excel=False,
            review_cap_override=override,
            findings=findings,
        )
        if summary.get("review_cap_override"):
            with self.store.session() as s:
                user = s.get(User, creator) if creator else None
                repo.audit(
                    s, user, "clearing.review_cap_overridden", "run", run_id,
                    summary["review_cap_override"],
                )  # fmt: skip
                s.commit()
            manifest["review_cap_override"] = summary["review_cap_override"]
        manifest |= year_manifest(summary)
        self._build_reports(run_id, out, manifest)
        return self._finish(out, manifest)

    def _assess(self, out: Path, files: Any, year: int, manifest: dict[str, Any]) -> Path | None:
        """The year's assessment (年度考核) as the engine runs it (`opendip assess`, the demo's
        assessment stage) on the run's cases, grouping and QC status. None when the policy
        has no scorecard, or when the assessment cannot be made (said in the run's notes):
        then settlement.deposit_without_assessment decides the deposit."""
        if not module_available("opendip.assessment"):
            return None
        from opendip.assessment.run import AssessFiles, AssessmentError, run_assess
        from opendip.policy import PolicyFile

        policy = PolicyFile.read(files.policy).periods()[-1][2]
        if policy.assessment is None:
            return None
        previous = self.region.data_dir / f"cases_{year - 1}.parquet"
        front_pages = self._front_pages(out, policy)
        assess = AssessFiles(
            policy=files.policy,
            cases=files.cases,
            grouped=files.grouped,
            hospitals=files.hospitals,
            case_status=out / "qc" / "case_status.parquet",
            previous_cases=previous if previous.is_file() else None,
            front_page_status=front_pages,
        )
        try:
            run_assess(assess, year, out / "assessment")
        except AssessmentError as exc:
            manifest.setdefault("notes", []).append(
                f"年度考核未能进行：{exc}；质量保证金按政策（settlement.deposit_without_assessment）处理"
            )
            return None
        return out / "assessment" / "assessment.parquet"

    def _front_pages(self, out: Path, policy: Any) -> Path | None:
        """The uploaded front pages' QC status (病案首页质控, `front_page_statuses`) beside
        the run (qc/front_page_status.parquet: the assessment, the report's overview), when
        there are any or the scorecard uses them (then empty: the indicator applies to no
        hospital)."""
        import pyarrow.parquet as pq

        from opendip.web.uploads import front_page_statuses

        with self.store.session() as s:
            status = front_page_statuses(s)
        used = any(i.measure == "front_page_qc_pass_rate" for i in policy.assessment.indicators)
        if status.num_rows == 0 and not used:
            return None
        path = out / "qc" / "front_page_status.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(status, path)
        return path

    def _supervision(self, run_id: int, period: str) -> dict[str, Any]:
        """智能监管 of a year: the year's cases against earlier years, with the grouping and
        settled cases of the year's latest succeeded clearing run (else the region's own);
        new leads go into the store (matched on their stable lead_id)."""
        if not module_available("opendip.supervision"):
            raise ModuleMissing("智能监管模块（opendip.supervision）尚未启用")
        from opendip.engine import connect, table_from_arrow
        from opendip.supervision import SupervisionError, SupervisionInputs, supervise

        out = self.run_dir(run_id) / "supervision"
        policy_file, _directory, policy_path = self._inputs()
        year = int(period)
        with self.store.session() as s:
            uploads = repo.accepted_upload_files(s)
            clearing = s.scalar(
                select(Run)
                .where(
                    Run.kind == "annual",
                    Run.period == period,
                    Run.status.in_(("succeeded", "approved", "published")),
                )
                .order_by(Run.id.desc())
            )
            settlement = self.settlement_dir(clearing) if clearing is not None else None
        self._progress(run_id, 10, "读取本年与历史病例")
        with self.region._lock:
            cases_expr = self.region.cases_expr(uploads)
            if cases_expr is None:
                raise ValueError("区域目录中没有病例数据")
            cases = cases_expr.filter(cases_expr.settle_month.startswith(f"{period}-")).to_pyarrow()
        if cases.num_rows == 0:
            raise ValueError(f"{period} 年没有结算病例")
        con = connect()
        history = [
            str(p)
            for p in sorted(self.region.data_dir.glob("cases_*.parquet"))
            if p.stem[6:].isdigit() and int(p.stem[6:]) < year
        ]
        if settlement is not None:
            grouped, scored = settlement.parent / "grouped.parquet", settlement / "cases.parquet"
            source = f"第 {clearing.id} 号年终清算运行"
            check_recorded_input(settlement, "grouped", grouped, source)
        else:
            grouped = self.region.data_dir / "grouped.parquet"
            scored = self.region.data_dir / "scored.parquet"
            source = "区域数据目录"
        hospitals = self.region.data_dir / "hospitals.parquet"
        inputs = SupervisionInputs(
            cases=table_from_arrow(con, cases, "supervision_cases"),
            history=con.read_parquet(history) if history else None,
            hospitals=con.read_parquet(str(hospitals)) if hospitals.exists() else None,
            grouped=con.read_parquet(str(grouped)) if grouped.exists() else None,
            scored=con.read_parquet(str(scored)) if scored.exists() else None,
        )
        self._progress(run_id, 40, f"智能监管（{cases.num_rows:,} 例，历史 {len(history)} 年）")
        try:
            result = supervise(inputs, policy_file.at(dt.date(year, 1, 1)))
        except SupervisionError as exc:
            raise ValueError(str(exc)) from exc
        out.mkdir(parents=True, exist_ok=True)
        pq.write_table(result.leads, out / "leads.parquet")
        pq.write_table(result.indicators, out / "indicators.parquet")
        with self.store.session() as s:
            added = repo.import_leads(s, result.leads.to_pylist())
        by_type = dict(Counter(result.leads.column("type_label").to_pylist()))
        return self._finish(
            self.run_dir(run_id),
            {
                "period": period,
                "policy": str(policy_path),
                "cases": cases.num_rows,
                "history_years": len(history),
                "results_from": source,
                "leads": result.leads.num_rows,
                "leads_added": added,
                "leads_by_type": by_type,
                "indicators": result.indicators.num_rows,
                "outputs": {"supervision": str(out)},
                "notes": list(result.notes or []),
                "steps": ["智能监管"],
            },
        )

    def _forecast(self, run_id: int, period: str, out: Path, manifest: dict[str, Any]) -> None:
        """年终点值预测 from this month and the year's earlier monthly runs (forecast.json
        beside the run, read by the monthly report); never fatal."""
        from opendip.forecast.run import FORECAST_FILE, forecast_from_months, write_forecast
        from opendip.policy import demo_policy_path

        year = period[:4]
        history = sorted(
            p for p in self.region.data_dir.glob("cases_*.parquet") if p.stem[-4:] < year
        )
        if not history:
            return
        with self.store.session() as s:
            earlier = s.scalars(
                select(Run)
                .where(
                    Run.kind == "monthly",
                    Run.period.startswith(f"{year}-"),
                    Run.period < period,
                    Run.status.in_(("succeeded", "approved", "published")),
                )
                .order_by(Run.id)
            ).all()
            dirs = {r.period: self.settlement_dir(r) for r in earlier}
        months = [d for d in dirs.values() if d is not None] + [out / "settlement"]
        policy = self.settings.policy_path or self.region.policy_path() or demo_policy_path()
        try:
            rows = forecast_from_months(Path(policy), months, history)
            write_forecast(rows, out / FORECAST_FILE)
        except Exception as exc:  # the forecast must never fail a settled month
            manifest.setdefault("notes", []).append(f"未能预测年终点值：{exc}")

    def _build_reports(self, run_id: int, out: Path, manifest: dict[str, Any]) -> None:
        """The run's report and publication, built now so their pages open at once; a
        failure is noted on the run (they are built again on first request), never fatal."""
        self._progress(run_id, 90, "生成分析报告与结算公示表")
        try:
            for which in (REPORT, PUBLICATION):
                self.reports.files(run_id, out / "settlement", which)
        except Exception as exc:  # reports must never fail a settled run
            manifest.setdefault("notes", []).append(f"报告未能生成（打开报告页时重试）：{exc}")

    def _finish(self, out: Path, manifest: dict[str, Any]) -> dict[str, Any]:
        (out / "manifest.json").write_text(
            json.dumps(manifest, ensure_ascii=False, indent=2, default=str), encoding="utf-8"
        )
        return manifest

    def show_published(self) -> Run | None:
        """Point the home and case pages at the latest published run's results (grouping and
        settled cases); without one, at the region directory's own results."""
        with self.store.session() as s:
            for run in repo.published_runs(s):
                try:
                    settlement = self.settlement_dir(run)
                except ValueError:  # outputs do not match the manifest: not shown
                    settlement = None
                if settlement is None:
                    continue
                self.region.use_results(
                    settlement.parent / "grouped.parquet",
                    settlement / "cases.parquet",
                    f"第 {run.id} 号运行（{run.period} {run.kind_label}，已公示）",
                )
                return run
        self.region.refresh_results()
        return None

    def settlement_dir(self, run: Run) -> Path | None:
        """The run's settlement directory (None for runs made before settlement was wired)."""
        path = (run.manifest or {}).get("outputs", {}).get("settlement")
        if path and (Path(path) / "manifest.json").is_file():
            from opendip.reports.source import ReportInputError
            from opendip.settlement.output import OutputIntegrityError, verify_outputs

            try:  # outputs changed after the run are never shown, published or reported
                verify_outputs(Path(path))
            except OutputIntegrityError as exc:
                raise ReportInputError(str(exc)) from exc
            return Path(path)
        return None


def check_recorded_input(settlement: Path, key: str, path: Path, source: str) -> None:
    """`path` must be the input `key` the settlement manifest recorded (same SHA-256): a
    run's outputs are verified by `settlement_dir`, its inputs beside it by this."""
    from opendip.settlement.output import sha256_file

    manifest = json.loads((settlement / "manifest.json").read_text(encoding="utf-8"))
    recorded = ((manifest.get("inputs") or {}).get(key) or {}).get("sha256")
    if recorded and path.is_file() and sha256_file(path) != recorded:
        raise ValueError(
            f"{source}的 {path.name} 与其运行清单记录的输入不一致：文件可能被改动，"
            "已拒绝使用（请重新运行年终清算）"
        )


def month_manifest(summary: dict[str, Any]) -> dict[str, Any]:
    """A run manifest's money part from `run_month`'s summary (or its summary.json)."""
    return {
        "scored_cases": int(summary["dip_cases"]),
        "point_values": {k: str(v) for k, v in dict(summary["point_values"]).items()},
        "withholding_share": str(summary["withholding_share"]),
        "totals_fen": {k: int(v) for k, v in dict(summary["totals"]).items()},
        "steps": ["质控", "入组", "计分", "月度预结算"],
    }


def year_manifest(summary: dict[str, Any]) -> dict[str, Any]:
    """A run manifest's money part from `run_year`'s summary (or its summary.json)."""
    pools = list(summary["pools"])
    return {
        "scored_cases": sum(int(p["cases"]) for p in pools),
        "point_values": {k: str(v) for k, v in dict(summary["point_values"]).items()},
        "totals_fen": {
            k: sum(int(p.get(k) or 0) for p in pools)
            for k in (
                "fund_payable_fen",
                "ffs_fund_fen",
                "clearing_total_fen",
                "advances_fen",
                "prepaid_fen",
                "prepayment_outstanding_fen",
                "clearing_payment_fen",
            )
            # prepayment totals only where the clearing prepaid someone
            if not k.startswith("prepa") or any(p.get(k) for p in pools)
        },
        "steps": ["质控", "入组", "计分", "年终清算"],
    }


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
